//! Running `cao gateway start` as a child process and talking HTTP to it (for tests/it/gateway.rs,
//! tests/it/e2e_gateway.rs and anyone else who needs a live gateway).

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use cao::mock::{AccountFaults, MockUpstream, Scenario};
use serde_json::Value;

use super::{TestEnv, now_secs};

/// A `cao gateway start --port 0` child process. Killed on drop if still running.
pub struct GatewayProc {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// `https://127.0.0.1:PORT` (the same port) when the gateway serves HTTPS.
    pub tls_url: Option<String>,
    /// Everything the gateway wrote on stderr so far (its log).
    pub stderr: Arc<Mutex<String>>,
}

/// A `std::process::Command` for the real `cao` binary on this env's data dir.
pub fn cao_command(env: &TestEnv) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("cao"));
    cmd.arg("--data-dir").arg(env.data_dir());
    cmd.env("HOME", env.dir.path().join("home"));
    cmd.env("NO_COLOR", "1");
    cmd.env_remove("CAO_DATA_DIR");
    cmd.env_remove("CAO_GATEWAY_KEY");
    // Never this machine's real GUI environment (see TestEnv::cao).
    cmd.env("CAO_NO_APP_ENV", "1");
    cmd.env("CAO_LOG", "info,cao=debug");
    cmd
}

impl GatewayProc {
    /// Start `cao gateway start --port 0 <args>` and wait for its one JSON line on stdout.
    pub fn start(env: &TestEnv, args: &[&str]) -> Self {
        Self::try_start(env, args).unwrap_or_else(|e| panic!("gateway did not start: {e}"))
    }

    /// Like [`GatewayProc::start`], but returns the exit status and stderr if it fails to start.
    pub fn try_start(env: &TestEnv, args: &[&str]) -> Result<Self, String> {
        Self::try_start_with(env, args, &[])
    }

    /// Like [`GatewayProc::try_start`], with extra environment variables.
    pub fn try_start_with(
        env: &TestEnv,
        args: &[&str],
        vars: &[(&str, &str)],
    ) -> Result<Self, String> {
        let mut cmd = cao_command(env);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.args(["gateway", "start"]);
        if !args.contains(&"--port") {
            cmd.args(["--port", "0"]);
        }
        cmd.args(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| e.to_string())?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(out).lines();
            for line in lines.by_ref().map_while(Result::ok) {
                // One JSON line: {"url": "http://…", "httpsUrl": "https://…" | null, …}.
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if let Some(url) = v["url"].as_str() {
                    let _ = tx.send(url.to_string());
                }
                if let Some(url) = v["httpsUrl"].as_str() {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(url) => Ok(Self {
                tls_url: rx
                    .recv_timeout(Duration::from_secs(2))
                    .ok()
                    .filter(|u| u.starts_with("https://")),
                child,
                url,
                stderr,
            }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().map_err(|e| e.to_string())?;
                std::thread::sleep(Duration::from_millis(100));
                Err(format!("{status}: {}", stderr.lock().unwrap()))
            }
        }
    }

    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The log once `pred` holds, waiting up to 10 s: a request's log line is written after its
    /// answer has gone out, by a background writer, so it may trail the client by a moment.
    pub fn log_when(&self, pred: impl Fn(&str) -> bool) -> String {
        eventually(10, || pred(&self.log()));
        self.log()
    }

    /// The perimeter's refusals in the log so far (`refused peer=… path=… kind=…` lines): a
    /// real Codex must never meet one.
    pub fn refusals(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains(" refused peer="))
            .map(str::to_string)
            .collect()
    }

    /// SIGTERM, then wait (bounded) for the exit.
    pub fn stop(self) -> ExitStatus {
        self.stop_with("-TERM")
    }

    /// Send `signal` (as `kill` spells it, e.g. `-INT`), then wait (bounded) for the exit.
    pub fn stop_with(mut self, signal: &str) -> ExitStatus {
        let _ = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("gateway did not exit within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for GatewayProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Send one request (headers as pairs) and read the whole answer. A body that breaks off
/// mid-way is returned with what arrived plus a final `\n<<stream error: ...>>` marker.
pub async fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let client = cao::net::connector::http_client().unwrap();
    let mut b = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(Full::new(Bytes::copy_from_slice(body))).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(60), client.request(req))
        .await
        .expect("answer within 60 s")
        .expect("request sent");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = read_text(resp.into_body()).await;
    Answer {
        status,
        headers,
        body,
    }
}

/// Read a whole answer body as text, frame by frame (each within 60 s). A body that breaks off
/// mid-way is returned with what arrived plus a final `\n<<stream error: ...>>` marker.
pub async fn read_text(mut body: cao::net::client::Body) -> String {
    let mut text = String::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(60), body.frame()).await {
            Err(_) => panic!("body stalled for 60 s"),
            Ok(None) => break,
            Ok(Some(Ok(f))) => {
                if let Ok(d) = f.into_data() {
                    text.push_str(&String::from_utf8_lossy(&d));
                }
            }
            Ok(Some(Err(e))) => {
                text.push_str(&format!("\n<<stream error: {e}>>"));
                break;
            }
        }
    }
    text
}

/// A Codex-shaped model call through the gateway (client credentials of its own, which the
/// gateway must replace).
pub async fn model_call(gw_url: &str, session: Option<&str>) -> Answer {
    let mut h = vec![
        ("authorization", "Bearer client-own-token"),
        ("chatgpt-account-id", "client-own-account"),
        ("cookie", "client=1"),
        ("content-type", "application/json"),
        ("accept", "text/event-stream"),
        ("originator", "codex_exec"),
    ];
    if let Some(s) = session {
        h.push(("session-id", s));
    }
    send(
        "POST",
        &format!("{gw_url}/responses"),
        &h,
        br#"{"model":"gpt-5","input":[],"stream":true}"#,
    )
    .await
}

/// Poll `f` until it returns true or `secs` pass.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// [`eventually`] for a check that awaits (a request to the gateway's `/metrics` or `/status`):
/// poll `f` until it returns true or `secs` pass.
pub async fn eventually_async<F, Fut>(secs: u64, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f().await
}

// ---- A gateway in front of the mock upstream (shared by tests/it/gateway.rs and friends) ----

/// Two logged-in accounts: a1 (default, ChatGPT account acc-1) and a2 (acc-2).
pub fn two_accounts() -> TestEnv {
    let env = TestEnv::new();
    env.add_logged_in("a1", "acc-1", now_secs() + 3600);
    env.add_logged_in("a2", "acc-2", now_secs() + 3600);
    env
}

pub async fn mock(scenario: Scenario) -> MockUpstream {
    MockUpstream::spawn("127.0.0.1", 0, scenario).await.unwrap()
}

/// An account that serves `n` model calls, then is spent for an hour.
pub fn spent_after(n: u32) -> AccountFaults {
    AccountFaults {
        quota: Some(cao::mock::QuotaFault {
            after_requests: n,
            resets_in_seconds: Some(3600),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A mock where only acc-1 has faults.
pub async fn mock_acc1(faults: AccountFaults) -> MockUpstream {
    mock(Scenario::default().with_account("acc-1", faults)).await
}

pub fn gw(env: &TestEnv, m: &MockUpstream, extra: &[&str]) -> GatewayProc {
    gw_with(env, m, extra, &[])
}

/// [`gw`] with extra environment variables.
pub fn gw_with(
    env: &TestEnv,
    m: &MockUpstream,
    extra: &[&str],
    vars: &[(&str, &str)],
) -> GatewayProc {
    gw_at(env, &m.base_url(), &m.token_url(), extra, vars)
}

/// [`gw_with`] with the upstream at `base` and its token endpoint at `token` (e.g. `https://`).
pub fn gw_at(
    env: &TestEnv,
    base: &str,
    token: &str,
    extra: &[&str],
    vars: &[(&str, &str)],
) -> GatewayProc {
    let mut args = vec![
        "--base-url",
        base,
        "--token-url",
        token,
        "--upstream-retry-base-ms",
        "10",
        "--upstream-retry-max-ms",
        "50",
        "--upstream-retry-jitter-ms",
        "5",
    ];
    args.extend_from_slice(extra);
    GatewayProc::try_start_with(env, &args, vars)
        .unwrap_or_else(|e| panic!("gateway did not start: {e}"))
}

/// Model calls the mock answered, as (account, status).
pub fn model_calls(m: &MockUpstream) -> Vec<(String, u16)> {
    m.requests()
        .iter()
        .filter(|r| r.is_model_call())
        .map(|r| (r.account().unwrap_or("-").to_string(), r.status))
        .collect()
}

/// Upstream never saw a bearer of one account next to another account's id, nor the client's.
pub fn assert_no_mismatch(m: &MockUpstream) {
    for r in m.requests().iter().filter(|r| r.path != "/oauth/token") {
        assert_eq!(
            r.bearer_account, r.header_account,
            "mismatched credentials on {r:?}"
        );
        assert_ne!(r.header_account.as_deref(), Some("client-own-account"));
        assert!(
            !r.cookie.as_deref().unwrap_or("").contains("client=1"),
            "client cookie leaked upstream: {r:?}"
        );
    }
}

/// `GET <gateway><path>` with the given headers.
pub async fn get(gw_url: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    send("GET", &format!("{gw_url}{path}"), headers, b"").await
}

pub fn status_file(env: &TestEnv) -> Value {
    std::fs::read_to_string(env.data_dir().join("account_status.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null)
}

/// A free loopback port (free a moment ago), for a gateway that must keep one port across a
/// restart or be found through a saved `gateway.json`.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Run `cmd` (a [`cao_command`], with whatever environment the test needs) as
/// `status --watch --interval 1` until its output contains every `want` (or 20 s pass), then
/// stop it. Returns what it printed.
pub fn watch_until(mut cmd: Command, want: &[&str]) -> String {
    let mut child = cmd
        .args(["status", "--watch", "--interval", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut pipe = child.stdout.take().unwrap();
    let seen = Arc::new(Mutex::new(String::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = pipe.read(&mut buf) {
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    eventually(20, || {
        let s = seen.lock().unwrap();
        want.iter().all(|w| s.contains(w))
    });
    let _ = child.kill();
    let _ = child.wait();
    seen.lock().unwrap().clone()
}
