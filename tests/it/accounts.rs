//! `cao add` on the real binary: a private account dir, `codex login` with its `CODEX_HOME`, names
//! refused, and what a failed or missing Codex says. The other account commands are in
//! [`super::accounts_manage`], import in [`super::accounts_import`], the data-dir guarantees and
//! the TypeScript tool's files in [`super::accounts_files`].
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns too

use crate::common;
use crate::common::accounts::{read_json, registry};
use crate::common::files::{chmod, mode};

use std::fs;
use std::path::PathBuf;

use common::{TestEnv, now_secs};
use predicates::prelude::*;
use serde_json::json;

/// A fake `codex` that logs each call (args + CODEX_HOME) to `<dir>/codex.log`.
/// `login status` succeeds when auth.json exists; `login` writes one (mode 0644, to check that
/// cao tightens it) unless `FAKE_LOGIN_EXIT` is set, in which case it exits with that code.
fn fake_codex(env: &TestEnv) -> PathBuf {
    let path = env.dir.path().join("fake-codex");
    let log = env.dir.path().join("codex.log");
    let auth = serde_json::to_string(&common::auth_json(
        "acc-new",
        "new@example.com",
        now_secs() + 86_400 * 10,
    ))
    .unwrap();
    let script = format!(
        r#"#!/bin/sh
echo "$* CODEX_HOME=$CODEX_HOME" >> '{log}'
if [ "$1 $2" = "login status" ]; then
  [ -f "$CODEX_HOME/auth.json" ] && {{ echo "Logged in using ChatGPT"; exit 0; }}
  echo "Not logged in"; exit 1
fi
if [ "$1" = "login" ]; then
  [ -n "$FAKE_LOGIN_EXIT" ] && exit "$FAKE_LOGIN_EXIT"
  printf '%s' '{auth}' > "$CODEX_HOME/auth.json"
  chmod 644 "$CODEX_HOME/auth.json"
  exit 0
fi
exit 2
"#,
        log = log.display()
    );
    fs::write(&path, script).unwrap();
    chmod(&path, 0o755);
    path
}

fn codex_log(env: &TestEnv) -> String {
    fs::read_to_string(env.dir.path().join("codex.log")).unwrap_or_default()
}

#[test]
fn add_creates_a_private_account_and_the_first_becomes_default() {
    let env = TestEnv::new();
    env.cao()
        .args(["add", "work", "--no-login"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Added account: work"))
        .stdout(predicate::str::contains("Default account: work"));
    env.cao()
        .args(["add", "home", "--no-login"])
        .assert()
        .success();
    let data = env.data_dir();
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("work")), 0o700);
    assert_eq!(mode(&data.join("registry.json")), 0o600);
    assert_eq!(
        fs::read_to_string(data.join("work/config.toml")).unwrap(),
        "# Codex config for this account\ncli_auth_credentials_store = \"file\"\nforced_login_method = \"chatgpt\"\n"
    );
    assert_eq!(
        registry(&env),
        json!({"default_account": "work", "accounts": ["work", "home"]})
    );
    // Adding again changes nothing.
    env.cao()
        .args(["add", "home", "--no-login"])
        .assert()
        .success()
        .stdout(predicate::str::contains("already registered"));
    assert_eq!(registry(&env)["accounts"], json!(["work", "home"]));
}

#[test]
fn add_never_overwrites_an_existing_config_toml() {
    let env = TestEnv::new();
    let dir = env.data_dir().join("work");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("config.toml"), "model = \"o3\"\n").unwrap();
    env.cao()
        .args(["add", "work", "--no-login"])
        .assert()
        .success();
    assert_eq!(
        fs::read_to_string(dir.join("config.toml")).unwrap(),
        "model = \"o3\"\n"
    );
}

#[test]
fn bad_names_are_refused_and_nothing_is_created_outside_the_data_dir() {
    let env = TestEnv::new();
    let long = "x".repeat(65);
    for name in [
        "../evil",
        "a/b",
        "a b",
        "..",
        ".",
        "",
        "é",
        long.as_str(),
        "/tmp/abs",
    ] {
        env.cao()
            .args(["add", name, "--no-login"])
            .assert()
            .failure()
            .stderr(predicate::str::contains("invalid account name"));
        for cmd in [
            vec!["use", name],
            vec!["remove", name],
            vec!["switch", name],
        ] {
            env.cao().args(&cmd).assert().failure();
        }
    }
    let mut left: Vec<String> = fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert!(left.iter().all(|n| n == "data" || n == "home"), "{left:?}");
    assert!(!env.dir.path().join("evil").exists());
    if env.data_dir().exists() {
        assert_eq!(
            fs::read_dir(env.data_dir())
                .unwrap()
                .filter(|e| e.as_ref().unwrap().path().is_dir())
                .count(),
            0
        );
    }
}

#[test]
fn add_runs_codex_login_with_codex_home_and_tightens_auth_json() {
    let env = TestEnv::new();
    let codex = fake_codex(&env);
    env.cao()
        .args(["add", "work", "--codex"])
        .arg(&codex)
        .assert()
        .success()
        .stdout(predicate::str::contains("Logged in: work"));
    let home = env.data_dir().join("work");
    let log = codex_log(&env);
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        vec![
            format!("login status CODEX_HOME={}", home.display()),
            format!("login CODEX_HOME={}", home.display()),
        ]
    );
    assert_eq!(mode(&home.join("auth.json")), 0o600);
    env.cao()
        .arg("list")
        .assert()
        .success()
        .stdout("* work (ready)\n");
}

#[test]
fn add_skips_login_when_codex_login_status_succeeds() {
    let env = TestEnv::new();
    let codex = fake_codex(&env);
    common::write_account(&env.data_dir(), "work", "acc-w", now_secs() + 86_400);
    env.cao()
        .args(["add", "work", "--codex"])
        .arg(&codex)
        .assert()
        .success()
        .stdout(predicate::str::contains("Already logged in"));
    let log = codex_log(&env);
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(log.starts_with("login status"));
}

#[test]
fn add_device_auth_passes_the_flag() {
    let env = TestEnv::new();
    let codex = fake_codex(&env);
    env.cao()
        .args(["add", "work", "--device-auth", "--codex"])
        .arg(&codex)
        .assert()
        .success();
    assert!(codex_log(&env).contains("login --device-auth CODEX_HOME="));
}

#[test]
fn add_logs_in_again_when_a_refresh_failed_for_good() {
    let env = TestEnv::new();
    let codex = fake_codex(&env);
    common::write_account(&env.data_dir(), "work", "acc-w", now_secs() + 86_400);
    fs::write(
        env.data_dir().join("account_status.json"),
        r#"{"statuses":{"work":{"needsLogin":true,"lastError":"refresh_token_reused"}}}"#,
    )
    .unwrap();
    env.cao()
        .args(["add", "work", "--codex"])
        .arg(&codex)
        .assert()
        .success();
    assert!(
        codex_log(&env)
            .lines()
            .any(|l| l.starts_with("login CODEX_HOME="))
    );
    let st = read_json(&env.data_dir().join("account_status.json"));
    assert!(st["statuses"]["work"].get("needsLogin").is_none(), "{st}");
    assert_eq!(st["statuses"]["work"]["lastError"], "refresh_token_reused");
}

#[test]
fn failed_login_returns_codex_exit_code() {
    let env = TestEnv::new();
    let codex = fake_codex(&env);
    env.cao()
        .args(["add", "work", "--codex"])
        .arg(&codex)
        .env("FAKE_LOGIN_EXIT", "3")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("codex login failed"));
}

#[test]
fn missing_codex_says_how_to_install_and_creates_nothing() {
    let env = TestEnv::new();
    env.cao()
        .args(["add", "work"])
        .env("PATH", env.dir.path().join("empty-bin"))
        .assert()
        .failure()
        .stderr(predicate::str::contains("npm install -g @openai/codex"));
    env.cao()
        .args(["add", "work", "--codex", "/nonexistent/codex"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("/nonexistent/codex"));
    assert!(!env.data_dir().join("work").exists());
}
