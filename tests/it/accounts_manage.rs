//! Account commands after `add`, on the real binary: list, current, use, switch (with the picker
//! on a terminal), remove, and the completion scripts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns too

use crate::common;
use crate::common::accounts::{read_json, registry};

use std::fs;

use common::{TestEnv, now_secs};
use predicates::prelude::*;
use serde_json::{Value, json};

#[test]
fn list_current_use_and_switch() {
    let env = TestEnv::new();
    env.cao()
        .arg("list")
        .assert()
        .success()
        .stdout(predicate::str::contains("No accounts registered"));
    env.cao()
        .arg("current")
        .assert()
        .success()
        .stdout("No default account set.\n");
    env.add_logged_in("alpha", "acc-a", now_secs() + 86_400);
    env.cao()
        .args(["add", "beta", "--no-login"])
        .assert()
        .success();
    env.cao()
        .arg("list")
        .assert()
        .success()
        .stdout("* alpha (ready)\n  beta (needs-login)\n");
    let out = env.cao().args(["list", "--json"]).output().unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        json!([{"name": "alpha", "isDefault": true, "loggedIn": true, "state": "ready"}, {"name": "beta", "isDefault": false, "loggedIn": false, "state": "needs-login"}])
    );
    env.cao()
        .arg("current")
        .assert()
        .success()
        .stdout("alpha\n");
    env.cao()
        .args(["use", "beta"])
        .assert()
        .success()
        .stdout("Default account set to: beta\n");
    env.cao().arg("current").assert().success().stdout("beta\n");
    env.cao().args(["switch", "alpha"]).assert().success();
    env.cao()
        .arg("current")
        .assert()
        .success()
        .stdout("alpha\n");
    env.cao().args(["use", "nope"]).assert().failure().stderr(
        predicate::str::contains("\"nope\" does not exist")
            .and(predicate::str::contains("cao list")),
    );
    // No name and no terminal: a clear error naming the accounts.
    env.cao().arg("switch").assert().failure().stderr(
        predicate::str::contains("cao switch <name>").and(predicate::str::contains("alpha, beta")),
    );
    env.cao()
        .arg("current")
        .assert()
        .success()
        .stdout("alpha\n");
}

#[test]
fn remove_deletes_files_status_and_moves_the_default() {
    let env = TestEnv::new();
    env.add_logged_in("alpha", "acc-a", now_secs() + 86_400);
    env.add_logged_in("beta", "acc-b", now_secs() + 86_400);
    env.add_logged_in("gamma", "acc-c", now_secs() + 86_400);
    fs::write(
        env.data_dir().join("account_status.json"),
        r#"{"statuses":{"alpha":{"consecutiveFailures":2},"beta":{"lastError":"x"}}}"#,
    )
    .unwrap();
    env.cao()
        .args(["remove", "alpha"])
        .assert()
        .success()
        .stdout(format!(
            "Removed account: alpha\nDeleted {} (its auth.json and config.toml)\nDefault account: beta\n",
            env.data_dir().join("alpha").display()
        ));
    assert!(!env.data_dir().join("alpha").exists());
    let st = read_json(&env.data_dir().join("account_status.json"));
    assert_eq!(st, json!({"statuses": {"beta": {"lastError": "x"}}}));
    env.cao()
        .args(["remove", "beta", "--keep-files"])
        .assert()
        .success();
    assert!(env.data_dir().join("beta/auth.json").exists());
    assert_eq!(
        registry(&env),
        json!({"default_account": "gamma", "accounts": ["gamma"]})
    );
    env.cao()
        .args(["remove", "beta"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("does not exist"));
    env.cao()
        .args(["remove", "gamma"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Default account: (none)"));
    assert_eq!(
        registry(&env),
        json!({"default_account": null, "accounts": []})
    );
}

#[test]
fn completions_for_every_shell() {
    let env = TestEnv::new();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        env.cao()
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(predicate::str::contains("cao").and(predicate::str::contains("status")));
    }
    env.cao().args(["completions", "tcsh"]).assert().failure();
}

/// Run `cao <args>` on a pseudo-terminal, typing `keys` once `prompt` has appeared.
/// Returns what reached the terminal and the exit code.
fn on_pty(
    env: &TestEnv,
    args: &[&str],
    prompt: &str,
    keys: &[u8],
    no_color: bool,
) -> (String, u32) {
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};
    let pair = portable_pty::native_pty_system()
        .openpty(portable_pty::PtySize {
            rows: 30,
            cols: 100,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut cmd = portable_pty::CommandBuilder::new(assert_cmd::cargo::cargo_bin("cao"));
    cmd.arg("--data-dir");
    cmd.arg(env.data_dir());
    cmd.args(args);
    cmd.env("HOME", env.dir.path().join("home"));
    cmd.env("TERM", "xterm-256color");
    cmd.cwd(env.dir.path());
    if no_color {
        cmd.env("NO_COLOR", "1");
    } else {
        cmd.env_remove("NO_COLOR");
    }
    let mut child = pair.slave.spawn_command(cmd).unwrap();
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().unwrap();
    let mut writer = pair.master.take_writer().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let collector = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    if !keys.is_empty() {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !String::from_utf8_lossy(&seen.lock().unwrap()).contains(prompt) {
            assert!(
                std::time::Instant::now() < deadline,
                "no prompt: {}",
                String::from_utf8_lossy(&seen.lock().unwrap())
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        writer.write_all(keys).unwrap();
        writer.flush().unwrap();
    }
    let status = child.wait().unwrap();
    drop(pair.master);
    drop(writer);
    let _ = collector.join();
    let out = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    (out, status.exit_code())
}

#[test]
fn switch_without_a_name_picks_on_a_terminal() {
    let env = TestEnv::new();
    env.add_logged_in("alpha", "acc-a", now_secs() + 86_400);
    env.add_logged_in("beta", "acc-b", now_secs() + 86_400);
    // Down arrow, Enter: the second account.
    let (out, code) = on_pty(&env, &["switch"], "Default account", b"\x1b[B\r", true);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Default account set to: beta"), "{out}");
    env.cao().arg("current").assert().success().stdout("beta\n");
    // Esc cancels and changes nothing.
    let (out, code) = on_pty(&env, &["switch"], "Default account", b"\x1b", true);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("No account selected; the default is still beta."),
        "{out}"
    );
    env.cao().arg("current").assert().success().stdout("beta\n");
}
