//! What the command line says to people: usage errors, tips, help with examples, names it
//! refuses, confirmations, and what an interrupted login leaves.

use crate::common::accounts::registry as read_registry;

use crate::common::{TestEnv, now_secs};

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
