//! Account commands on the real binary: add, list, current, switch, use, remove, import, the
//! data-dir guarantees (modes, locking, corrupt files) and compatibility with the TypeScript tool.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns too

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{TestEnv, now_secs};
use predicates::prelude::*;
use serde_json::{Value, json};

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn chmod(p: &Path, m: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(p).unwrap()).unwrap()
}

fn registry(env: &TestEnv) -> Value {
    read_json(&env.data_dir().join("registry.json"))
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

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

fn snapshot_source(env: &TestEnv) -> PathBuf {
    let src = env.dir.path().join("codex/accounts");
    fs::create_dir_all(&src).unwrap();
    for (name, acc) in [("work", "acc-work"), ("personal", "acc-personal")] {
        let auth = common::auth_json(acc, &format!("{name}@example.com"), now_secs() + 86_400);
        fs::write(
            src.join(format!("{name}.json")),
            serde_json::to_string_pretty(&auth).unwrap(),
        )
        .unwrap();
    }
    fs::write(src.join("bad name.json"), "{}").unwrap();
    fs::write(src.join("broken.json"), "{not json").unwrap();
    fs::write(src.join("notes.txt"), "ignored").unwrap();
    // codex-auth marks the active snapshot next to the accounts dir.
    fs::write(src.parent().unwrap().join(".current"), "personal\n").unwrap();
    src
}

#[test]
fn import_codex_auth_snapshots() {
    let env = TestEnv::new();
    let src = snapshot_source(&env);
    // Two snapshots could not be imported: the import says so and exits 1 for scripts.
    env.cao()
        .args(["import", "codex-auth", "--source"])
        .arg(&src)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "Import complete. Imported: 2, skipped: 0, errors: 2.",
        ))
        .stdout(predicate::str::contains("Default account set to: personal"))
        .stderr(predicate::str::contains(
            "Skipping snapshot 'bad name.json'",
        ))
        .stderr(predicate::str::contains(
            "Skipping snapshot 'broken.json': invalid JSON",
        ));
    let data = env.data_dir();
    for name in ["work", "personal"] {
        let auth = data.join(name).join("auth.json");
        assert_eq!(mode(&auth), 0o600);
        assert_eq!(mode(&data.join(name)), 0o700);
        assert_eq!(
            read_json(&auth),
            read_json(&src.join(format!("{name}.json")))
        );
        assert!(data.join(name).join("config.toml").exists());
    }
    assert_eq!(
        registry(&env),
        json!({"default_account": "personal", "accounts": ["personal", "work"]})
    );
    // Again: existing auth.json files are kept unless --overwrite.
    fs::remove_file(src.parent().unwrap().join(".current")).unwrap();
    env.cao()
        .args(["import", "codex-auth", "--source"])
        .arg(&src)
        .assert()
        .code(1) // the source holds two broken snapshots
        .stdout(predicate::str::contains(
            "Imported: 0, skipped: 2, errors: 2.",
        ));
    env.cao()
        .args([
            "import",
            "codex-auth",
            "--overwrite",
            "--default",
            "work",
            "--source",
        ])
        .arg(&src)
        .assert()
        .code(1) // the source holds two broken snapshots
        .stdout(predicate::str::contains(
            "Imported: 2, skipped: 0, errors: 2.",
        ))
        .stdout(predicate::str::contains("Default account set to: work"));
    env.cao()
        .args(["import", "codex-auth", "--current", "ghost", "--source"])
        .arg(&src)
        .assert()
        .code(1) // the source holds two broken snapshots
        .stderr(predicate::str::contains("'ghost' not found"));
}

#[test]
fn import_default_source_and_active_marker_in_source() {
    let env = TestEnv::new();
    let src = env.dir.path().join("home/.codex/accounts");
    fs::create_dir_all(&src).unwrap();
    // Two different logins (two copies of one login are refused: see custody.rs).
    for (n, id) in [("one", "acc-1"), ("two", "acc-2")] {
        let auth = common::auth_json(id, &format!("{n}@example.com"), now_secs() + 86_400);
        fs::write(src.join(format!("{n}.json")), auth.to_string()).unwrap();
    }
    fs::write(src.join("active"), "two.json").unwrap();
    env.cao()
        .args(["import", "codex-auth"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Imported: 2, skipped: 0, errors: 0.",
        ));
    env.cao().arg("current").assert().success().stdout("two\n");
    env.cao()
        .args(["import", "codex-auth", "--source", "/nonexistent/dir"])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("/nonexistent/dir").and(predicate::str::contains("--source")),
        );
}

#[test]
fn corrupt_registry_is_backed_up_rebuilt_and_reported_once() {
    let env = TestEnv::new();
    env.add_logged_in("alpha", "acc-a", now_secs() + 86_400);
    env.add_logged_in("beta", "acc-b", now_secs() + 86_400);
    fs::create_dir_all(env.data_dir().join("stray-dir-without-files")).unwrap();
    let reg = env.data_dir().join("registry.json");
    fs::write(&reg, "{\"accounts\": [\"alpha\",").unwrap();
    env.cao()
        .arg("list")
        .assert()
        .success()
        .stdout("* alpha (ready)\n  beta (ready)\n")
        .stderr(
            predicate::str::contains("was not valid JSON").and(predicate::str::contains("rebuilt")),
        );
    let backups: Vec<PathBuf> = fs::read_dir(env.data_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("registry.json.corrupt-"))
        .collect();
    assert_eq!(backups.len(), 1);
    assert_eq!(
        fs::read_to_string(&backups[0]).unwrap(),
        "{\"accounts\": [\"alpha\","
    );
    assert_eq!(
        registry(&env),
        json!({"default_account": "alpha", "accounts": ["alpha", "beta"]})
    );
    // Repaired: no second warning, no second backup.
    env.cao().arg("list").assert().success().stderr("");
    // A write on a corrupt registry rebuilds it too.
    fs::write(&reg, "garbage").unwrap();
    env.cao()
        .args(["add", "gamma", "--no-login"])
        .assert()
        .success()
        .stderr(predicate::str::contains("rebuilt"));
    assert_eq!(
        registry(&env)["accounts"],
        json!(["alpha", "beta", "gamma"])
    );
}

#[test]
fn corrupt_status_file_is_backed_up_and_reported_once() {
    let env = TestEnv::new();
    env.add_logged_in("alpha", "acc-a", now_secs() + 86_400);
    let st = env.data_dir().join("account_status.json");
    fs::write(&st, "{\"statuses\": nope").unwrap();
    env.cao()
        .arg("status")
        .assert()
        .success()
        .stdout(predicate::str::contains("alpha"))
        .stderr(
            predicate::str::contains("account_status.json was not valid JSON")
                .and(predicate::str::contains(".corrupt-")),
        );
    let backups = fs::read_dir(env.data_dir())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("account_status.json.corrupt-")
        })
        .count();
    assert_eq!(backups, 1);
    env.cao().arg("status").assert().success().stderr("");
}

#[test]
fn thirty_concurrent_adds_keep_every_account() {
    let env = TestEnv::new();
    let bin = assert_cmd::cargo::cargo_bin("cao");
    let children: Vec<_> = (0..30)
        .map(|i| {
            std::process::Command::new(&bin)
                .arg("--data-dir")
                .arg(env.data_dir())
                .args(["add", &format!("acct-{i:02}"), "--no-login"])
                .env("HOME", env.dir.path().join("home"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let reg = registry(&env);
    let mut names: Vec<String> = reg["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 30, "{reg}");
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 30);
    assert!(names.contains(&reg["default_account"].as_str().unwrap().to_string()));
}

/// Copy a fixture data dir written by the TypeScript tool; auth.json gets 0600 as Codex writes it.
fn ts_fixture(env: &TestEnv, name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ts-v1.4.2")
        .join(name);
    copy_dir(&src, &env.data_dir());
    for e in fs::read_dir(env.data_dir()).unwrap() {
        let auth = e.unwrap().path().join("auth.json");
        if auth.exists() {
            chmod(&auth, 0o600);
        }
    }
    env.data_dir()
}

fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_dir(&e.path(), &dst.join(e.file_name()));
        } else {
            fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
}

fn snapshot_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(snapshot_files(&p));
        } else if !p.ends_with(".cao.lock") {
            out.push((p.clone(), fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn typescript_data_dir_works_unchanged() {
    let env = TestEnv::new();
    let data = ts_fixture(&env, "basic");
    let before = snapshot_files(&data);
    env.cao()
        .arg("list")
        .assert()
        .success()
        .stdout("  alpha (ready)\n* beta (cooling)\n  gamma (needs-login)\n  delta (ready)\n");
    env.cao().arg("current").assert().success().stdout("beta\n");
    let out = env.cao().args(["status", "--json"]).output().unwrap();
    assert!(out.status.success());
    let recs: Value = serde_json::from_slice(&out.stdout).unwrap();
    let alpha = &recs[0];
    assert_eq!(alpha["accountId"], "acc-alpha");
    assert_eq!(alpha["organizationId"], "org-alpha");
    assert_eq!(alpha["email"], "alpha@example.com");
    assert_eq!(alpha["planType"], "plus");
    assert_eq!(alpha["tokenExpiresAtMs"], 4_102_444_800_000i64);
    assert_eq!(alpha["lastRefreshAtIso"], "2026-11-01T08:00:00.000Z");
    assert_eq!(alpha["lastSuccessAtMs"], 1_764_000_005_000i64);
    let beta = &recs[1];
    assert_eq!(beta["isDefault"], true);
    assert_eq!(beta["cooldownUntilMs"], 4_102_444_800_000i64);
    assert_eq!(beta["consecutiveFailures"], 3);
    assert_eq!(beta["lastError"], "usage_limit_reached");
    assert_eq!(recs[2]["loggedIn"], false);
    assert_eq!(recs[3]["tokenExpiresAtMs"], Value::Null);
    // Reading never rewrites the user's files.
    env.cao().arg("status").assert().success();
    env.cao().args(["status", "--doctor"]).assert().code(2);
    assert_eq!(before, snapshot_files(&data));
}

/// Read registry.json and account_status.json with the TypeScript tool's rules
/// (registry_store.ts, account_status_store.ts) and fail where it would lose data.
fn assert_ts_readable(data: &Path) {
    let reg = read_json(&data.join("registry.json"));
    let accounts = reg["accounts"].as_array().expect("accounts array");
    for a in accounts {
        let s = a.as_str().expect("string name");
        assert!(
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }
    match &reg["default_account"] {
        Value::Null => assert!(accounts.is_empty()),
        Value::String(d) => assert!(accounts.iter().any(|a| a == d)),
        other => panic!("default_account {other}"),
    }
    let st_path = data.join("account_status.json");
    if st_path.exists() {
        let st = read_json(&st_path);
        for (_, s) in st["statuses"].as_object().expect("statuses object") {
            for key in [
                "lastAttemptAtMs",
                "lastSuccessAtMs",
                "lastQuotaAtMs",
                "cooldownUntilMs",
                "consecutiveFailures",
            ] {
                if let Some(v) = s.get(key) {
                    assert!(v.as_f64().is_some_and(|f| f >= 0.0), "{key}: {v}");
                }
            }
            if let Some(e) = s.get("lastError") {
                assert!(e.is_string());
            }
        }
    }
    for a in accounts {
        let auth = data.join(a.as_str().unwrap()).join("auth.json");
        if auth.exists() {
            let v = read_json(&auth);
            assert!(v["tokens"]["access_token"].is_string());
        }
    }
}

/// The TypeScript tool itself, when installed next to this checkout (`CAO_TS_TOOL` or
/// `../tools/node_modules/.bin/codex-account-orchestrator`).
fn ts_tool() -> Option<PathBuf> {
    let p = std::env::var_os("CAO_TS_TOOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tools/node_modules/.bin/codex-account-orchestrator")
        });
    p.exists().then_some(p)
}

#[test]
fn files_written_by_cao_are_readable_by_the_typescript_tool() {
    let env = TestEnv::new();
    let data = ts_fixture(&env, "basic");
    env.cao()
        .args(["add", "epsilon", "--no-login"])
        .assert()
        .success();
    env.cao().args(["use", "alpha"]).assert().success();
    env.cao().args(["remove", "gamma"]).assert().success();
    let src = snapshot_source(&env);
    env.cao()
        .args(["import", "codex-auth", "--source"])
        .arg(&src)
        .assert()
        .code(1); // two broken snapshots in the source
    // A field cao adds to account_status.json must not break the old tool.
    let st_path = data.join("account_status.json");
    let mut st = read_json(&st_path);
    st["statuses"]["alpha"]["needsLogin"] = json!(true);
    fs::write(&st_path, st.to_string()).unwrap();
    assert_ts_readable(&data);
    let cao_list = stdout(&env.cao().arg("list").output().unwrap());
    if let Some(ts) = ts_tool() {
        let out = std::process::Command::new(ts)
            .arg("--data-dir")
            .arg(&data)
            .arg("list")
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), cao_list);
        assert_eq!(stderr(&out), "");
    } else {
        eprintln!("note: TypeScript tool not installed; checked its rules only");
    }
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

#[test]
fn hand_edited_typescript_files_are_read_like_the_typescript_tool() {
    let env = TestEnv::new();
    let data = ts_fixture(&env, "messy");
    // Duplicates, padded and invalid names dropped; an unregistered default falls back to the
    // first account; junk status values ignored (as registry_store.ts / account_status_store.ts).
    let list = "* work (ready)\n  home (needs-login)\n";
    env.cao()
        .arg("list")
        .assert()
        .success()
        .stdout(list)
        .stderr("");
    if let Some(ts) = ts_tool() {
        let out = std::process::Command::new(ts)
            .arg("--data-dir")
            .arg(&data)
            .arg("list")
            .output()
            .unwrap();
        assert_eq!(stdout(&out), list);
    }
    let out = env.cao().args(["status", "--json"]).output().unwrap();
    let recs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(recs[0]["lastAttemptAtMs"], 1_764_000_000_000i64);
    assert_eq!(recs[0]["cooldownUntilMs"], Value::Null);
    assert_eq!(recs[0]["consecutiveFailures"], 0);
    assert_eq!(recs[0]["lastError"], Value::Null);
    assert_eq!(recs[1]["lastQuotaAtMs"], Value::Null);
    assert_eq!(recs[1]["consecutiveFailures"], 2);
    assert_eq!(recs[1]["lastError"], "exit_code_1");
    // The first write stores the normalized registry.
    env.cao().args(["use", "home"]).assert().success();
    assert_eq!(
        registry(&env),
        json!({"default_account": "home", "accounts": ["work", "home"]})
    );
}
