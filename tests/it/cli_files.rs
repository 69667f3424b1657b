//! The command line over damaged data files: a registry of the wrong shape or missing, an
//! auth.json it cannot read; backed up, rebuilt or reported, and the rest carries on.

use crate::common::accounts::registry as read_registry;

use std::process::{Command, Stdio};

use crate::common::{TestEnv, now_secs};

fn registry_backups(env: &TestEnv) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(env.data_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("registry.json.corrupt-"))
        .collect()
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
