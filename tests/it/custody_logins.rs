//! One login in two places (issue 11, failure mode 1): `add` and `import` refuse a login
//! already held elsewhere, doctor reports `shared_login` naming both places and the fix,
//! `gateway enable` never advises copying an auth.json, and the running gateway's
//! `/oauth/token` makes a routed Codex refresh through cao's custodian (STRICT endpoint).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;
use std::time::Duration;

use cao::mock::Scenario;
use common::gateway::send;
use common::{TestEnv, now_secs};
use serde_json::{Value, json};

use crate::custody::{
    assert_login_alive, assert_no_spent_token_presented, gw, mock, saved_refresh_token,
};

fn write_snapshot(dir: &Path, name: &str, v: &Value) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), serde_json::to_string_pretty(v).unwrap()).unwrap();
}

#[test]
fn import_refuses_duplicate_snapshots_and_copies_of_codex_s_own_login() {
    let env = TestEnv::new();
    let src = env.dir.path().join("snapshots");
    let work = common::auth_json("acc-1", "w@example.com", now_secs() + 3600);
    write_snapshot(&src, "work.json", &work);
    write_snapshot(&src, "work-copy.json", &work);
    write_snapshot(
        &src,
        "personal.json",
        &common::auth_json("acc-2", "p@example.com", now_secs() + 3600),
    );
    // The active snapshot is a copy of Codex's own ~/.codex/auth.json.
    let own = common::auth_json("acc-3", "me@example.com", now_secs() + 3600);
    write_snapshot(&env.dir.path().join("home/.codex"), "auth.json", &own);
    write_snapshot(&src, "mine.json", &own);
    let out = env
        .cao()
        .env_remove("CODEX_HOME")
        .args(["import", "codex-auth", "--source"])
        .arg(&src)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Imported: 2"), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("Skipping snapshot 'work-copy.json': the same login is already held by")
            || stderr.contains("Skipping snapshot 'work.json': the same login is already held by"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "Skipping snapshot 'mine.json': the same login is already held by {}",
            env.dir.path().join("home/.codex/auth.json").display()
        )),
        "{stderr}"
    );
    assert!(!env.data_dir().join("mine/auth.json").exists());
}

#[test]
fn add_refuses_an_account_dir_holding_a_copy_of_another_login() {
    let env = TestEnv::new();
    env.add_logged_in("a1", "acc-1", now_secs() + 3600);
    let copy_dir = env.data_dir().join("a2");
    std::fs::create_dir_all(&copy_dir).unwrap();
    std::fs::copy(
        env.data_dir().join("a1/auth.json"),
        copy_dir.join("auth.json"),
    )
    .unwrap();
    let out = env
        .cao()
        .env_remove("CODEX_HOME")
        .args(["add", "a2", "--no-login"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "holds the same login as {}",
            env.data_dir().join("a1/auth.json").display()
        )),
        "{stderr}"
    );
}

/// Doctor's `shared_login` issues as (account, message).
fn shared_login_issues(env: &TestEnv) -> (Vec<(String, String)>, i32) {
    let out = env
        .cao()
        .env_remove("CODEX_HOME")
        .args(["status", "--doctor", "--json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let issues = v["issues"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["code"] == "shared_login")
        .map(|i| {
            assert_eq!(i["severity"], "error", "{i}");
            (
                i["account"].as_str().unwrap().to_string(),
                i["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (issues, out.status.code().unwrap())
}

#[test]
fn doctor_reports_one_login_in_two_places_naming_both_and_the_fix() {
    let env = TestEnv::new();
    let data = env.data_dir();
    let codex_auth = env.dir.path().join("home/.codex/auth.json");
    env.add_logged_in("solo", "acc-solo", now_secs() + 10 * 86_400);
    assert_eq!(shared_login_issues(&env), (vec![], 0));

    // a2 holds a copy of a1's login (written behind cao's back: `add` would refuse it).
    env.add_logged_in("a1", "acc-1", now_secs() + 10 * 86_400);
    env.add_logged_in("a2", "acc-1", now_secs() + 10 * 86_400);
    // Codex's own ~/.codex/auth.json is a copy of a3's login.
    env.add_logged_in("a3", "acc-3", now_secs() + 10 * 86_400);
    write_snapshot(
        codex_auth.parent().unwrap(),
        "auth.json",
        &serde_json::from_str(&std::fs::read_to_string(data.join("a3/auth.json")).unwrap())
            .unwrap(),
    );
    let (issues, code) = shared_login_issues(&env);
    assert_eq!(code, 2, "{issues:?}");
    let of = |name: &str| -> Vec<String> {
        issues
            .iter()
            .filter(|(a, _)| a == name)
            .map(|(_, m)| m.clone())
            .collect()
    };
    assert!(of("solo").is_empty(), "{issues:?}");
    let (a1, a2, a3) = (
        data.join("a1/auth.json"),
        data.join("a2/auth.json"),
        data.join("a3/auth.json"),
    );
    for (name, this, other) in [("a1", &a1, &a2), ("a2", &a2, &a1), ("a3", &a3, &codex_auth)] {
        let msgs = of(name);
        assert_eq!(msgs.len(), 1, "{name}: {issues:?}");
        let m = &msgs[0];
        assert!(
            m.contains(&format!(
                "{} holds the same login (refresh token) as {}",
                this.display(),
                other.display()
            )),
            "{m}"
        );
        assert!(m.contains(&format!("`rm {}`", this.display())), "{m}");
        assert!(m.contains(&format!("`cao add {name}`")), "{m}");
    }

    // A symlink into ~/.codex: cao writes through it, but Codex refreshes that file too.
    std::fs::remove_file(&a3).unwrap();
    std::os::unix::fs::symlink(&codex_auth, &a3).unwrap();
    let (issues, _) = shared_login_issues(&env);
    let linked: Vec<_> = issues.iter().filter(|(a, _)| a == "a3").collect();
    assert_eq!(linked.len(), 1, "{issues:?}");
    assert!(
        linked[0].1.contains(&format!(
            "{} leads to the same file as {} (a symlink)",
            a3.display(),
            codex_auth.display()
        )),
        "{}",
        linked[0].1
    );
    // The human view says it too.
    let out = env
        .cao()
        .env_remove("CODEX_HOME")
        .args(["status", "--doctor"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("shared_login"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn gateway_enable_never_advises_copying_an_account_s_auth_json() {
    let env = TestEnv::new();
    env.add_logged_in("a1", "acc-1", now_secs() + 3600);
    let home = env.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let out = env
        .cao()
        .env_remove("CODEX_HOME")
        .env("PATH", "/usr/bin:/bin")
        .args(["gateway", "enable", "--base-url", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // ~/.codex has no login: cao says to log in there on its own, never to copy one in.
    assert!(stderr.contains("run `codex login` there"), "{stderr}");
    assert!(
        stderr.contains("never copy an account's auth.json"),
        "{stderr}"
    );
    assert!(
        !stderr
            .to_lowercase()
            .contains("copy an account's auth.json into")
            && !stderr.contains("cp "),
        "{stderr}"
    );
}

/// `POST <gateway>/oauth/token` the way Codex refreshes.
async fn refresh_at(url: &str, refresh_token: &str) -> common::gateway::Answer {
    let body = json!({
        "client_id": "app_EMoamEEZ73f0CkXaXp7hrann",
        "grant_type": "refresh_token",
        "refresh_reason": "proactive_expiry",
        "refresh_token": refresh_token,
    });
    send(
        "POST",
        &format!("{url}/oauth/token"),
        &[
            ("content-type", "application/json"),
            ("originator", "codex_exec"),
        ],
        body.to_string().as_bytes(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_s_token_endpoint_keeps_one_custodian_and_passes_other_logins_on() {
    let env = TestEnv::new();
    env.add_logged_in("a1", "acc-1", now_secs() + 3600);
    let m = mock(Scenario::default()).await;
    let g = gw(&env, &m);
    let auth = env.data_dir().join("a1/auth.json");
    // A routed Codex holding a copy of a1's login refreshes it: cao spends it once, saves the
    // new login for a1 and hands it to Codex.
    let first = refresh_at(&g.url, "rt-acc-1-0").await;
    assert_eq!(first.status, 200, "{}\n{}", first.body, g.log());
    let new_rt = first.json()["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(new_rt, "rt-acc-1-0");
    assert!(first.json()["access_token"].as_str().is_some());
    assert_eq!(saved_refresh_token(&auth), new_rt);
    // Another copy still holding the old token gets the current login back: no second spend.
    let again = refresh_at(&g.url, "rt-acc-1-0").await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["refresh_token"], new_rt.as_str());
    assert_eq!(m.refresh_count("acc-1"), 1, "{:?}", m.presented_tokens());
    // The person's own, separate login is passed on to the real token endpoint untouched.
    let own = refresh_at(&g.url, "rt-acc-home-0").await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(m.refresh_count("acc-home"), 1);
    let p = m
        .presented_tokens()
        .into_iter()
        .find(|p| p.token == "rt-acc-home-0")
        .unwrap();
    assert_eq!(p.originator.as_deref(), Some("codex_exec"));
    assert_eq!(saved_refresh_token(&auth), new_rt, "a1 is not touched");
    assert_no_spent_token_presented(&m);
    assert!(g.stop().success());
    assert_login_alive(&m, &auth).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_routed_codex_holding_a_copy_of_a_login_refreshes_through_the_gateway() {
    let Some(codex) = common::real_codex() else {
        return;
    };
    let env = TestEnv::new();
    // Both copies expired: the gateway and Codex each need a refresh of the same login.
    env.add_logged_in("a1", "acc-1", now_secs() - 60);
    let codex_home = env.dir.path().join("home/.codex");
    std::fs::create_dir_all(&codex_home).unwrap();
    let copy = codex_home.join("auth.json");
    std::fs::copy(env.data_dir().join("a1/auth.json"), &copy).unwrap();
    let m = mock(Scenario {
        reply: "Hello from {account}.".into(),
        ..Scenario::default()
    })
    .await;
    let g = gw(&env, &m);
    // What the shim gives Codex: the gateway's URLs, its CA, and its token endpoint.
    let url = g
        .tls_url
        .clone()
        .expect("the gateway serves https on loopback");
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let mut c = assert_cmd::Command::new(&codex);
    c.env("HOME", env.dir.path().join("home"))
        .env("CODEX_HOME", &codex_home)
        .env(
            "CODEX_CA_CERTIFICATE",
            env.data_dir().join("tls/codex-ca-bundle.pem"),
        )
        .env(
            "CODEX_REFRESH_TOKEN_URL_OVERRIDE",
            format!("{url}/oauth/token"),
        )
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OPENAI_API_KEY")
        .current_dir(&work)
        .args(cao::codex::config_edit::cli_overrides(&url))
        .args(["exec", "--skip-git-repo-check", "say hi"])
        .timeout(Duration::from_secs(120));
    let out = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "{stdout}\n{stderr}\n{:?}\n{}",
        m.presented_tokens(),
        g.log()
    );
    assert!(stdout.contains("Hello from acc-1"), "{stdout}\n{stderr}");
    // One spend of the shared login, whoever asked first; both places hold the live login.
    assert_no_spent_token_presented(&m);
    assert_eq!(m.refresh_count("acc-1"), 1, "{:?}", m.presented_tokens());
    assert!(g.stop().success());
    let a1 = env.data_dir().join("a1/auth.json");
    // Codex's copy moved on with a1: it got the new login from the gateway's /oauth/token
    // (over https, trusting cao's CA), the only place that could give it.
    assert_eq!(saved_refresh_token(&copy), saved_refresh_token(&a1));
    assert_ne!(saved_refresh_token(&copy), "rt-acc-1-0");
    assert_login_alive(&m, &a1).await;
}
