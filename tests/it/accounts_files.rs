//! The data dir's guarantees on the real binary: corrupt files backed up and reported once,
//! concurrent writers under the lock, and compatibility with the TypeScript tool's files both ways.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns too

use crate::common;
use crate::common::accounts::{read_json, registry, snapshot_source, stderr, stdout};
use crate::common::files::chmod;

use std::fs;
use std::path::{Path, PathBuf};

use common::{TestEnv, now_secs};
use predicates::prelude::*;
use serde_json::{Value, json};

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
