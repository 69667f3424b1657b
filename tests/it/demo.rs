//! `cao demo` and `cao mock-upstream`: the real binary, offline, on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TestEnv;
use common::gateway::send;

/// `cao demo` with TMPDIR inside the test's temp dir, so we can see what it leaves behind.
fn demo(env: &TestEnv, args: &[&str]) -> (bool, String, String) {
    let tmp = env.dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let out = env
        .cao()
        .arg("demo")
        .args(args)
        .env("TMPDIR", &tmp)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn leftovers(env: &TestEnv) -> Vec<String> {
    std::fs::read_dir(env.dir.path().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn demo_shows_the_switch_and_the_cooldown_then_removes_its_dir() {
    let env = TestEnv::new();
    let (ok, out, err) = demo(&env, &[]);
    assert!(ok, "demo failed:\n{out}\n{err}");
    // The default account is spent: upstream says so, the gateway switches and replays.
    assert!(
        out.contains("work          429  usage_limit_reached, resets"),
        "{out}"
    );
    assert!(
        out.contains("gateway switched to the next account"),
        "{out}"
    );
    assert!(
        out.contains("Codex got 200: Hello from demo-acc-2, streamed through the cao gateway."),
        "{out}"
    );
    // The second turn of the session stays on the account that answered.
    assert!(out.contains("(session affinity) no switch needed"), "{out}");
    // The second account runs out on the third request, the third answers.
    assert!(out.contains("Hello from demo-acc-3"), "{out}");
    assert!(out.contains("cooling down: work until"), "{out}");
    assert!(out.contains("personal until"), "{out}");
    // The dashboard, from the files the gateway wrote.
    assert!(out.contains("CAO Status"), "{out}");
    assert!(out.contains("cooling until"), "{out}");
    assert!(out.contains("Removed the demo data dir"), "{out}");
    assert_eq!(leftovers(&env), Vec::<String>::new());
    // Nothing of the demo lands in the user's own data dir.
    assert!(!env.data_dir().exists());
    // No token in the output.
    assert!(!out.contains("eyJ"), "a token was printed:\n{out}");
}

#[test]
fn demo_keep_leaves_a_data_dir_cao_can_read() {
    let env = TestEnv::new();
    let (ok, out, err) = demo(&env, &["--keep"]);
    assert!(ok, "demo failed:\n{out}\n{err}");
    let left = leftovers(&env);
    assert_eq!(left.len(), 1, "{left:?}");
    let data = env.dir.path().join("tmp").join(&left[0]).join("data");
    assert!(out.contains(&data.display().to_string()), "{out}");
    let status = assert_cmd::Command::cargo_bin("cao")
        .unwrap()
        .env("NO_COLOR", "1")
        .arg("--data-dir")
        .arg(&data)
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert!(status.status.success());
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["work", "personal", "side-project"], "{v}");
}

#[test]
fn demo_with_codex_drives_the_real_codex_through_the_gateway() {
    let Some(codex) = common::real_codex() else {
        eprintln!("skipped: the real codex is not installed (scripts/test installs it)");
        return;
    };
    let env = TestEnv::new();
    let bin = env.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(&codex, bin.join("codex")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let tmp = env.dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let out = env
        .cao()
        .args(["demo", "--with-codex"])
        .env("TMPDIR", &tmp)
        .env("PATH", path)
        .timeout(Duration::from_secs(180))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("codex> Hello from demo-acc-3"),
        "codex did not get the mock's answer through the gateway:\n{stdout}"
    );
    assert!(stdout.contains("codex exited with 0"), "{stdout}");
    assert_eq!(leftovers(&env), Vec::<String>::new());
}

/// A running `cao mock-upstream`; killed on drop.
struct MockProc {
    child: std::process::Child,
    url: String,
}

impl Drop for MockProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mock_upstream(env: &TestEnv, scenario: &std::path::Path) -> MockProc {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("cao"))
        .arg("--data-dir")
        .arg(env.data_dir())
        .args(["mock-upstream", "--port", "0", "--scenario"])
        .arg(scenario)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("mock upstream listening on ") {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("mock-upstream printed its URL");
    MockProc { child, url }
}

fn bearer_for(account: &str) -> String {
    let claims = serde_json::json!({
        "exp": common::now_secs() + 3600,
        "https://api.openai.com/auth": {"chatgpt_account_id": account},
    });
    format!("Bearer {}", common::jwt(claims))
}

async fn model_call_as(url: &str, account: &str) -> common::gateway::Answer {
    let bearer = bearer_for(account);
    send(
        "POST",
        &format!("{url}/responses"),
        &[
            ("authorization", &bearer),
            ("chatgpt-account-id", account),
            ("accept", "text/event-stream"),
        ],
        br#"{"model":"gpt-5","input":[],"stream":true}"#,
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn mock_upstream_serves_the_documented_example_scenario_and_stops_on_sigint() {
    let env = TestEnv::new();
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/scenario-example.json");
    let mut mock = mock_upstream(&env, &example);

    let spent = model_call_as(&mock.url, "acc-spent").await;
    assert_eq!(spent.status, 429, "{}", spent.body);
    let err = &spent.json()["error"];
    assert_eq!(err["type"], "usage_limit_reached");
    assert_eq!(err["resets_in_seconds"], 3600);

    let flaky = model_call_as(&mock.url, "acc-flaky").await;
    assert_eq!(flaky.status, 503);

    let ok = model_call_as(&mock.url, "acc-anyone").await;
    assert_eq!(ok.status, 200);
    assert!(
        ok.body.contains("Mock reply from acc-anyone."),
        "{}",
        ok.body
    );
    assert!(ok.body.contains("response.completed"), "{}", ok.body);

    let later = model_call_as(&mock.url, "acc-later").await;
    assert_eq!(later.status, 200);
    assert_eq!(later.headers["x-codex-primary-used-percent"], "87");

    let dropped = model_call_as(&mock.url, "acc-drop").await;
    assert!(
        !dropped.body.contains("response.completed"),
        "{}",
        dropped.body
    );

    // Ctrl-C stops it cleanly.
    Command::new("kill")
        .args(["-INT", &mock.child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = mock.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "mock-upstream ignored SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

#[test]
fn mock_upstream_refuses_a_scenario_with_a_typo_and_names_the_doc() {
    let env = TestEnv::new();
    let bad = env.dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"accounts":{"a":{"qouta":{}}}}"#).unwrap();
    let out = env
        .cao()
        .args(["mock-upstream", "--scenario"])
        .arg(&bad)
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.json"), "{err}");
    assert!(err.contains("docs/mock-upstream.md"), "{err}");
    assert!(err.contains("qouta"), "{err}");
}
