//! Account commands after `add`, on the real binary: list, current, use, switch (with the picker
//! on a terminal), remove, and the completion scripts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns too

use crate::common;
use crate::common::accounts::{read_json, registry};
use crate::common::pty::Pty;

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

/// Run `cao <args>` on a 30 x 100 pseudo-terminal, typing `keys` once `prompt` has appeared.
/// Returns what reached the terminal and the exit code. The terminal is plain text
/// ([`Pty`] sets `NO_COLOR`), which every caller asks for.
fn on_pty(
    env: &TestEnv,
    args: &[&str],
    prompt: &str,
    keys: &[u8],
    no_color: bool,
) -> (String, u32) {
    assert!(no_color, "common::pty::Pty runs cao with NO_COLOR set");
    let mut pty = Pty::spawn(env, args, 30, 100, &[]);
    if !keys.is_empty() {
        pty.wait_for(prompt);
        pty.send(keys);
    }
    pty.finish()
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
