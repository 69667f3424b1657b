//! The command line in odd surroundings: closed pipes, no HOME, a data dir that is a file or
//! written with `~`, existing directories cao did not create.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::{TestEnv, now_secs};

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// `cao --data-dir <dir>` with the test environment's HOME.
fn cao_at(env: &TestEnv, dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("cao").unwrap();
    cmd.arg("--data-dir").arg(dir);
    cmd.env("HOME", env.dir.path().join("home"))
        .env("NO_COLOR", "1");
    cmd.env_remove("CAO_DATA_DIR");
    cmd
}

/// Run `cao <args>` with stdout a pipe whose reader is already closed; returns (code, stderr).
fn into_closed_pipe(env: &TestEnv, args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(assert_cmd::cargo::cargo_bin("cao"))
        .arg("--data-dir")
        .arg(env.data_dir())
        .env("HOME", env.dir.path().join("home"))
        .env("NO_COLOR", "1")
        .args(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn output_into_a_closed_pipe_exits_quietly() {
    let env = TestEnv::new();
    env.add_logged_in("work", "acc-1", now_secs() + 3600);
    for args in [
        &["gateway", "status"][..],
        &["completions", "fish"],
        &["status", "--json"],
        &["status"],
        &["list"],
        &["status", "--doctor"],
    ] {
        let (code, stderr) = into_closed_pipe(&env, args);
        let expected = if args.contains(&"--doctor") {
            None
        } else {
            Some(0)
        };
        if let Some(expected) = expected {
            assert_eq!(code, Some(expected), "cao {args:?}: {stderr}");
        }
        assert!(
            stderr.is_empty(),
            "cao {args:?} must say nothing about the closed pipe, said: {stderr}"
        );
    }
}

#[test]
fn no_home_is_refused_with_advice_instead_of_writing_under_root() {
    let env = TestEnv::new();
    let run = |args: &[&str]| {
        let mut cmd = env.cao();
        cmd.env_remove("HOME").env_remove("CODEX_HOME").args(args);
        cmd.output().unwrap()
    };
    // The data dir default needs HOME.
    let mut cmd = assert_cmd::Command::cargo_bin("cao").unwrap();
    let out = cmd
        .env_remove("HOME")
        .env_remove("CAO_DATA_DIR")
        .args(["list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("HOME is not set; pass --data-dir"),
        "stderr: {err}"
    );
    assert!(!Path::new("/.codex-account-orchestrator").exists());

    // `gateway enable` needs CODEX_HOME (or HOME) to find Codex's config.
    let out = run(&["gateway", "enable"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("HOME is not set; pass --data-dir / set CODEX_HOME"),
        "stderr: {err}"
    );
    assert!(!Path::new("/.codex/config.toml").exists());

    // Commands that do not use the data dir still work.
    let out = run(&["completions", "bash"]);
    assert!(out.status.success());
}

#[test]
fn a_data_dir_that_is_a_file_is_an_error() {
    let env = TestEnv::new();
    let file = env.dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    for args in [&["list"][..], &["status"], &["add", "work", "--no-login"]] {
        let out = cao_at(&env, &file).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("is not a directory") && err.contains(&*file.to_string_lossy()),
            "{args:?}: {err}"
        );
        assert!(String::from_utf8_lossy(&out.stdout).is_empty());
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}

#[test]
fn a_leading_tilde_in_cao_data_dir_is_the_home_directory() {
    let env = TestEnv::new();
    let home = env.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let cao = || {
        let mut cmd = assert_cmd::Command::cargo_bin("cao").unwrap();
        cmd.env("HOME", &home).env("NO_COLOR", "1");
        cmd.current_dir(env.dir.path());
        cmd
    };
    cao()
        .env("CAO_DATA_DIR", "~/cao-data")
        .args(["add", "work", "--no-login"])
        .assert()
        .success();
    assert!(home.join("cao-data/work/config.toml").is_file());
    assert!(!env.dir.path().join("~").exists(), "no literal ~ directory");
    // `--data-dir=~/x` (no shell expansion after `=`) too.
    cao()
        .arg("--data-dir=~/cao-data")
        .args(["list"])
        .assert()
        .success()
        .stdout(predicates::str::contains("work"));
    // `~user` is refused rather than guessed.
    let out = cao()
        .env("CAO_DATA_DIR", "~nobody/x")
        .args(["list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only a leading `~/`"));
}

#[test]
fn existing_directories_keep_their_mode_new_ones_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let shared = env.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    cao_at(&env, &shared)
        .args(["add", "work", "--no-login"])
        .assert()
        .success();
    assert_eq!(
        mode(&shared),
        0o755,
        "a directory cao did not create is left alone"
    );
    assert_eq!(mode(&shared.join("work")), 0o700);
    // A fresh data dir (and its missing parents) is created private.
    let fresh = env.dir.path().join("a/b/data");
    cao_at(&env, &fresh)
        .args(["add", "work", "--no-login"])
        .assert()
        .success();
    assert_eq!(mode(&fresh), 0o700);
    assert_eq!(mode(&env.dir.path().join("a")), 0o700);
}

fn registry_backups(env: &TestEnv) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(env.data_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("registry.json.corrupt-"))
        .collect()
}

fn read_registry(env: &TestEnv) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(env.data_dir().join("registry.json")).unwrap())
        .unwrap()
}

#[test]
fn a_registry_of_the_wrong_shape_is_backed_up_and_rebuilt_keeping_the_default() {
    for (text, default_kept) in [
        (
            r#"{"default_account": "beta", "accounts": "alpha,beta,gamma"}"#,
            true,
        ),
        (r#"[{"name": "alpha"}, {"name": "beta"}]"#, false),
        (r#"{"default_account": "beta", "accounts": ["alp"#, true),
    ] {
        let env = TestEnv::new();
        for (i, n) in ["alpha", "beta", "gamma"].iter().enumerate() {
            env.add_logged_in(n, &format!("acc-{i}"), now_secs() + 86_400);
        }
        let reg = env.data_dir().join("registry.json");
        std::fs::write(&reg, text).unwrap();
        // The next `add` must not drop the three accounts.
        let out = env
            .cao()
            .args(["add", "delta", "--no-login"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("backed up to") && err.contains("rebuilt"),
            "{text}: {err}"
        );
        if default_kept {
            assert!(err.contains("kept the default account beta"), "{err}");
        } else {
            assert!(
                err.contains("could not be recovered, so alpha is the default"),
                "{err}"
            );
        }
        let backups = registry_backups(&env);
        assert_eq!(backups.len(), 1, "{text}");
        assert_eq!(std::fs::read_to_string(&backups[0]).unwrap(), text);
        assert_eq!(
            read_registry(&env),
            serde_json::json!({
                "default_account": if default_kept { "beta" } else { "alpha" },
                "accounts": ["alpha", "beta", "gamma", "delta"]
            }),
            "{text}"
        );
        env.cao().arg("list").assert().success().stderr("");
    }
}

#[test]
fn a_missing_registry_is_rebuilt_from_logged_in_dirs_and_other_dirs_are_reported() {
    let env = TestEnv::new();
    for (i, n) in ["alpha", "beta"].iter().enumerate() {
        env.add_logged_in(n, &format!("acc-{i}"), now_secs() + 86_400);
    }
    env.cao()
        .args(["add", "fresh", "--no-login"])
        .assert()
        .success();
    std::fs::remove_file(env.data_dir().join("registry.json")).unwrap();
    let out = env.cao().arg("list").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "* alpha (ready)\n  beta (ready)\n"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("was missing; rebuilt it") && err.contains("alpha, beta"),
        "{err}"
    );
    assert_eq!(
        read_registry(&env),
        serde_json::json!({"default_account": "alpha", "accounts": ["alpha", "beta"]})
    );
    // Without a registry, a directory that was never logged in is reported, not hidden.
    std::fs::remove_file(env.data_dir().join("alpha/auth.json")).unwrap();
    std::fs::remove_file(env.data_dir().join("beta/auth.json")).unwrap();
    std::fs::remove_file(env.data_dir().join("registry.json")).unwrap();
    let out = env.cao().arg("status").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not registered: alpha, beta, fresh") && err.contains("cao add <name>"),
        "{err}"
    );
    // A fresh data dir says nothing.
    let env = TestEnv::new();
    env.cao()
        .args(["add", "work", "--no-login"])
        .assert()
        .success()
        .stderr("");
}

/// Make `env`'s whole temp dir belong to `nobody` except `beta/auth.json`, which stays
/// root-owned 0600 (as after `sudo codex login`): then `cao` run as nobody (see [`as_nobody`])
/// can read every file but that one. The tests run as root, for whom nothing is unreadable,
/// so a second uid is the honest way to get an unreadable file.
fn one_auth_json_owned_by_root(env: &TestEnv) {
    for (i, n) in ["alpha", "beta", "gamma"].iter().enumerate() {
        env.add_logged_in(n, &format!("acc-{i}"), now_secs() + 86_400);
    }
    std::fs::create_dir_all(env.dir.path().join("home")).unwrap();
    let ok = Command::new("chown")
        .arg("-R")
        .arg("nobody:nogroup")
        .arg(env.dir.path())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let beta = env.data_dir().join("beta/auth.json");
    std::os::unix::fs::chown(&beta, Some(0), Some(0)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&beta, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// `cao <args>` on `env`'s data dir, run as the user `nobody` (setpriv from util-linux).
fn as_nobody(env: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]);
    cmd.arg(assert_cmd::cargo::cargo_bin("cao"));
    cmd.arg("--data-dir").arg(env.data_dir()).args(args);
    cmd.env("HOME", env.dir.path().join("home"))
        .env("NO_COLOR", "1")
        .env_remove("CAO_DATA_DIR")
        .env_remove("CAO_LOG")
        .env_remove("CAO_GATEWAY_KEY");
    cmd
}

fn output(mut cmd: Command) -> (Option<i32>, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_unreadable_auth_json_is_reported_like_a_corrupt_one_and_the_rest_carries_on() {
    let env = TestEnv::new();
    one_auth_json_owned_by_root(&env);
    let beta = env.data_dir().join("beta/auth.json");
    let fix = format!("sudo chown \"$USER\" {}", beta.display());

    let (code, out, err) = output(as_nobody(&env, &["list"]));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out,
        "* alpha (ready)\n  beta (unreadable)\n  gamma (ready)\n"
    );

    let (code, out, err) = output(as_nobody(&env, &["status", "--doctor", "--json"]));
    assert_eq!(code, Some(2), "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let issues = doc.to_string();
    assert!(issues.contains("auth_unreadable"), "{out}");
    assert!(issues.contains("chmod 600"), "{out}");
    let (code, out, _) = output(as_nobody(&env, &["status", "--doctor"]));
    assert_eq!(code, Some(2));
    assert!(out.contains(&fix), "{out}");

    let (code, out, err) = output(as_nobody(&env, &["status", "--pretty"]));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("auth.json unreadable"), "{out}");
    assert!(out.contains("alpha") && out.contains("gamma"));

    let (code, out, err) = output(as_nobody(&env, &["status", "--json"]));
    assert_eq!(code, Some(0), "{err}");
    let recs: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(recs.as_array().unwrap().len(), 3);
    assert_eq!(recs[1]["loggedIn"], false);

    let (code, out, err) = output(as_nobody(&env, &["gateway", "status"]));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("beta") && out.contains(&fix), "{out}");

    // The gateway starts without that account.
    let mut cmd = as_nobody(
        &env,
        &[
            "gateway",
            "start",
            "--port",
            "0",
            "--base-url",
            "http://127.0.0.1:9",
        ],
    );
    cmd.env("CAO_LOG", "info");
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut first).unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        first.contains("\"url\":\"http://127.0.0.1:"),
        "stdout: {first}; log: {log}"
    );
    assert!(log.contains("beta") && log.contains("unusable"), "{log}");
}

#[test]
fn conflicting_ineffective_and_out_of_range_flags_are_usage_errors() {
    let env = TestEnv::new();
    for args in [
        &["status", "--json", "--compact"][..],
        &["status", "--doctor", "--report"],
        &["status", "--watch", "--json"],
        &["status", "--interval", "5"],
        &["status", "--private"],
        &["run", "--gateway-url", "http://127.0.0.1:4319"],
        &["run", "--gateway", "--no-fallback"],
        &["add", "x", "--device-auth", "--no-login"],
        &["gateway", "start", "--switch-at", "150"],
        &["gateway", "start", "--switch-at", "-5"],
        &["gateway", "start", "--timeout-ms", "0"],
        &["gateway", "start", "--bind", "nonsense"],
        &["gateway", "start", "--base-url", "chatgpt.com"],
        &["gateway", "start", "--cooldown-seconds", "-1"],
        &["gateway", "enable", "--base-url", "ftp://x"],
        &["run", "--max-passes", "0"],
    ] {
        let out = env.cao().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.starts_with("error: "),
            "clap's format for {args:?}: {err}"
        );
        assert!(
            err.contains("Usage:") || err.contains("--help"),
            "{args:?}: {err}"
        );
    }
    assert!(!env.data_dir().exists(), "a usage error touches nothing");
}

#[test]
fn codex_arguments_without_the_separator_get_a_tip() {
    let env = TestEnv::new();
    let out = env
        .cao()
        .args(["run", "exec", "hi there"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tip: Codex's own arguments go after `--`: cao run -- exec \"hi there\""),
        "{err}"
    );
}

#[test]
fn help_has_examples_and_one_way_of_writing_defaults() {
    let env = TestEnv::new();
    for cmd in [
        &["add"][..],
        &["status"],
        &["gateway", "start"],
        &["gateway", "enable"],
        &["import", "codex-auth"],
        &["completions"],
        &["run"],
    ] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let out = env.cao().args(&args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{cmd:?}");
        assert!(
            text.contains("Examples") || text.contains("e.g."),
            "{cmd:?}:\n{text}"
        );
        assert!(
            !text.contains("(default "),
            "defaults are written `[default: x]` everywhere, {cmd:?}:\n{text}"
        );
    }
    let out = env.cao().args(["completions", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("~/.config/fish/completions/cao.fish"));
}

#[test]
fn new_account_names_refuse_a_leading_dash_and_case_twins() {
    let env = TestEnv::new();
    env.cao()
        .args(["add", "Work", "--no-login"])
        .assert()
        .success();
    let out = env
        .cao()
        .args(["add", "--no-login", "--", "-x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not starting with '-'"));
    let out = env
        .cao()
        .args(["add", "work", "--no-login"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("only in letter case") && err.contains("\"Work\""),
        "{err}"
    );
    assert!(!env.data_dir().join("work").exists() || env.data_dir().join("Work").exists());
    // Adding the same account again (to log in) is still fine.
    env.cao()
        .args(["add", "Work", "--no-login"])
        .assert()
        .success();
    assert_eq!(read_registry(&env)["accounts"], serde_json::json!(["Work"]));
}

#[test]
fn import_skips_json_that_is_not_a_login_and_fails_on_errors_or_a_missing_default() {
    let env = TestEnv::new();
    let src = env.dir.path().join("snapshots");
    std::fs::create_dir_all(&src).unwrap();
    let auth = crate::common::auth_json("acc-1", "one@example.com", now_secs() + 86_400);
    std::fs::write(src.join("one.json"), auth.to_string()).unwrap();
    std::fs::write(src.join("settings.json"), r#"{"theme": "dark"}"#).unwrap();
    let out = env
        .cao()
        .args(["import", "codex-auth", "--source"])
        .arg(&src)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("Skipping 'settings.json': not a Codex auth.json"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Imported: 1, skipped: 1, errors: 0"));
    assert!(!env.data_dir().join("settings").exists());
    // A missing --default, and a broken snapshot, make it fail.
    let out = env
        .cao()
        .args(["import", "codex-auth", "--default", "nobody", "--source"])
        .arg(&src)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    std::fs::write(src.join("broken.json"), "{nope").unwrap();
    let out = env
        .cao()
        .args(["import", "codex-auth", "--source"])
        .arg(&src)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("errors: 1"));
}

#[test]
fn remove_confirms_on_a_terminal_and_says_files_were_deleted() {
    use crate::common::pty::Pty;
    let env = TestEnv::new();
    env.add_logged_in("work", "acc-w", now_secs() + 86_400);
    env.add_logged_in("home", "acc-h", now_secs() + 86_400);
    // "n": nothing removed.
    let mut pty = Pty::spawn(&env, &["remove", "work"], 24, 100, &[]);
    pty.wait_for("[y/N]");
    pty.send(b"n\r");
    let (out, code) = pty.finish();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Nothing removed"), "{out}");
    assert!(env.data_dir().join("work/auth.json").is_file());
    // "y": removed, and it says the files are gone.
    let mut pty = Pty::spawn(&env, &["remove", "work"], 24, 100, &[]);
    pty.wait_for("[y/N]");
    pty.send(b"y\r");
    let (out, code) = pty.finish();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Deleted ") && out.contains("auth.json"),
        "{out}"
    );
    assert!(!env.data_dir().join("work").exists());
    // --yes asks nothing; without a terminal nothing is asked either (scripts).
    let pty = Pty::spawn(&env, &["remove", "home", "--yes"], 24, 100, &[]);
    let (out, code) = pty.finish();
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("[y/N]"));
}

#[test]
fn ctrl_c_during_the_login_of_add_says_what_state_the_account_is_in() {
    use crate::common::pty::Pty;
    let env = TestEnv::new();
    let codex = env.dir.path().join("fake-codex");
    std::fs::write(
        &codex,
        "#!/bin/sh\n[ \"$2\" = status ] && exit 1\necho 'open this link to log in'\nsleep 30\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&codex, std::fs::Permissions::from_mode(0o755)).unwrap();
    let codex = codex.to_string_lossy().into_owned();
    let mut pty = Pty::spawn(&env, &["add", "work", "--codex", &codex], 24, 120, &[]);
    pty.wait_for("open this link to log in");
    pty.send(b"\x03");
    let (out, code) = pty.finish();
    assert_eq!(code, 130, "{out}");
    assert!(
        out.contains("Login interrupted: account work is registered but not logged in")
            && out.contains("`cao add work`"),
        "{out}"
    );
}

#[test]
fn the_shareable_report_uses_absolute_times_and_leaves_out_who_and_where() {
    let env = TestEnv::new();
    env.add_logged_in("work", "acc-secret", now_secs() + 5 * 86_400);
    let out = env.cao().args(["status", "--report"]).output().unwrap();
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(!md.contains(" in 23h") && !md.contains(" ago"), "{md}");
    assert!(md.contains("1 account: 1 ok."), "{md}");
    let out = env
        .cao()
        .args(["status", "--report", "json"])
        .output()
        .unwrap();
    let json = String::from_utf8_lossy(&out.stdout);
    for secret in [
        "work@example.com",
        "acc-secret",
        "org-",
        &*env.data_dir().to_string_lossy(),
    ] {
        assert!(!json.contains(secret), "{secret} leaked: {json}");
    }
    let out = env
        .cao()
        .args(["status", "--report", "json", "--private"])
        .output()
        .unwrap();
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(
        json.contains("work@example.com") && json.contains("acc-secret"),
        "{json}"
    );
}

#[test]
fn status_with_a_name_shows_that_account_in_full() {
    let env = TestEnv::new();
    env.add_logged_in("work", "acc-w", now_secs() + 86_400);
    env.add_logged_in("home", "acc-h", now_secs() + 86_400);
    let out = env.cao().args(["status", "home"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("home") && text.contains("home@example.com"),
        "{text}"
    );
    assert!(!text.contains("work"), "{text}");
    let out = env
        .cao()
        .args(["status", "home", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    env.cao()
        .args(["status", "nobody"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("does not exist"));
}

/// Lines of a terminal transcript with escapes and carriage returns removed.
fn screen_lines(out: &str) -> Vec<String> {
    let plain = String::from_utf8(strip_ansi(out.as_bytes())).unwrap();
    plain
        .split('\n')
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect()
}

fn strip_ansi(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0x1b {
            i += 1;
            if i < bytes.len() && bytes[i] == b'[' {
                i += 1;
                while i < bytes.len() && !(0x40..=0x7e).contains(&bytes[i]) {
                    i += 1;
                }
            }
            i += 1;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[test]
fn the_dashboard_uses_the_real_terminal_width_and_never_cuts_a_value() {
    use crate::common::pty::Pty;
    let env = TestEnv::new();
    env.add_logged_in("work", "acc-w", now_secs() + 86_400 * 5);
    env.add_logged_in(
        "personal-with-a-long-name",
        "acc-p",
        now_secs() + 86_400 * 5,
    );
    for cols in [60u16, 80, 200] {
        let (out, code) = Pty::spawn(&env, &["status"], 40, cols, &[]).finish();
        assert_eq!(code, 0, "{out}");
        let lines = screen_lines(&out);
        for l in &lines {
            assert!(
                l.chars().count() <= usize::from(cols),
                "{cols} columns: {l:?}\n{out}"
            );
        }
        let text = lines.join("\n");
        assert!(!text.contains('…'), "nothing cut at {cols}: {text}");
        assert!(
            text.contains(&*env.data_dir().to_string_lossy()) || cols < 80,
            "{text}"
        );
        if cols < 70 {
            assert!(!text.contains('│'), "frameless below 70 columns: {text}");
        } else {
            assert!(text.contains('│'), "{text}");
        }
    }
}

#[test]
fn many_accounts_are_one_row_each() {
    let env = TestEnv::new();
    for i in 0..40 {
        env.add_logged_in(
            &format!("acct-{i:02}"),
            &format!("acc-{i}"),
            now_secs() + 86_400 * 5,
        );
    }
    let out = env.cao().args(["status", "--pretty"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 43, "{text}");
    assert!(text.contains("40 accounts: 40 ok"), "{text}");
}

#[test]
fn the_demo_fits_an_80_column_terminal() {
    use crate::common::pty::Pty;
    let env = TestEnv::new();
    let (out, code) = Pty::spawn(&env, &["demo"], 50, 80, &[]).finish();
    assert_eq!(code, 0, "{out}");
    // The drawn parts (the dashboard's frame and rows) fit; prose lines may be wrapped by the
    // terminal between words.
    let drawn: Vec<String> = screen_lines(&out)
        .into_iter()
        .filter(|l| l.contains('│') || l.contains('─'))
        .collect();
    assert!(!drawn.is_empty(), "{out}");
    for l in drawn {
        assert!(
            l.chars().count() <= 80,
            "{} columns: {l:?}",
            l.chars().count()
        );
    }
}

#[test]
fn commands_without_a_data_dir_run_without_home_and_without_resolving_one() {
    let env = TestEnv::new();
    let bare = |args: &[&str]| {
        let mut cmd = assert_cmd::Command::cargo_bin("cao").unwrap();
        cmd.env_remove("HOME")
            .env_remove("CAO_DATA_DIR")
            .args(args)
            .output()
            .unwrap()
    };
    let key = env.dir.path().join("state.key");
    let out = bare(&["gateway", "state-key", key.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(key.is_file());
    // Before the command, the option is accepted by every command (an alias), also where it
    // changes nothing (tests/it/cli_data_dir.rs: after the name only where it is used).
    let file = env.dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let other = env.dir.path().join("other.key");
    let out = bare(&[
        "--data-dir",
        file.to_str().unwrap(),
        "gateway",
        "state-key",
        other.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let help = bare(&["--help"]);
    assert!(
        String::from_utf8_lossy(&help.stdout).contains("`gateway state-key` ignore it"),
        "{}",
        String::from_utf8_lossy(&help.stdout)
    );
}
