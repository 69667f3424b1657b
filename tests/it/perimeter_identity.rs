//! Port squatting: whatever answers on the gateway's address must prove it is this user's cao
//! gateway (an HMAC over a fresh nonce with the data dir's 0600 secret, and on Linux the
//! listening socket's owner) before cao sends it anything: `cao run --gateway`, `gateway enable`,
//! the shim (`gateway verify`), `gateway status` and `status --watch` (which would otherwise
//! send the access key and show what the imposter says).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::TestEnv;
use common::gateway::{GatewayProc, cao_command, free_port, two_accounts, watch_until};
use serde_json::Value;

const KEY: &str = "the-users-own-access-key-0123";

/// Something else on `port` (0: any) that claims to be cao: `/health` answers like a cao
/// gateway (with a made-up proof) and `/status` with a live view naming an account
/// `imposter-acct`. Returns its URL and every request it got.
fn squatter_on(port: u16) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            let body = if request.starts_with("GET /status") {
                r#"{"service":"cao-gateway","accounts":[{"name":"imposter-acct"}]}"#
            } else {
                r#"{"status":"ok","service":"cao-gateway","version":"0.1.0","accounts":9,"ready":9,"uptimeSeconds":1,"proof":"00"}"#
            };
            log.lock().unwrap().push(request);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, seen)
}

fn squatter() -> (String, Arc<Mutex<Vec<String>>>) {
    squatter_on(0)
}

/// What the squatter got, with connection checks that send nothing left out. Asserts that it
/// is nothing but identity probes: no credential, no access key, no other path.
fn assert_only_probes(seen: &Arc<Mutex<Vec<String>>>) -> usize {
    let got: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| !r.is_empty())
        .cloned()
        .collect();
    for r in &got {
        assert!(r.starts_with("GET /health?nonce="), "{r}");
        let lower = r.to_ascii_lowercase();
        assert!(!lower.contains("authorization"), "{r}");
        assert!(!lower.contains("x-cao-key"), "{r}");
        assert!(!r.contains(KEY), "{r}");
    }
    got.len()
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

fn save_port(env: &TestEnv, port: u16) {
    std::fs::write(
        env.data_dir().join("gateway.json"),
        format!(r#"{{"port": {port}}}"#),
    )
    .unwrap();
}

#[test]
fn run_gateway_and_enable_refuse_a_port_squatter() {
    let env = two_accounts();
    // This user has run a gateway before, so the data dir holds a secret to check a proof with.
    drop(GatewayProc::start(&env, &[]));
    let (url, seen) = squatter();
    let out = cao_command(&env)
        .args([
            "run",
            "--gateway",
            "--gateway-url",
            &url,
            "--codex",
            "/bin/true",
        ])
        .args(["--", "exec", "hi"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to send your Codex login") && err.contains("not your cao gateway"),
        "{err}"
    );
    let home = env.dir.path().join("home");
    let out = cao_command(&env)
        .env("CODEX_HOME", home.join(".codex"))
        .args(["gateway", "enable", "--base-url", &url])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        !home.join(".codex/config.toml").exists(),
        "enable changed config.toml"
    );
    assert!(
        !home.join(".local/bin/codex").exists(),
        "enable installed the shim"
    );
    let verify = cao_command(&env)
        .args(["gateway", "verify", "--url", &url])
        .output()
        .unwrap();
    assert!(!verify.status.success());
    // Nothing but the health probes went there, and never a credential.
    assert!(assert_only_probes(&seen) >= 3);
}

#[test]
fn gateway_status_and_watch_send_the_key_only_to_a_gateway_that_proves_it_is_yours() {
    let env = two_accounts();
    drop(GatewayProc::start(&env, &[]));
    let (url, seen) = squatter();
    save_port(&env, port_of(&url));
    let status = |json: bool| {
        let mut cmd = cao_command(&env);
        cmd.env("CAO_GATEWAY_KEY", KEY).args(["gateway", "status"]);
        if json {
            cmd.arg("--json");
        }
        cmd.output().unwrap()
    };
    let out = status(true);
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["live"].is_null(), "the imposter's view was shown: {v}");
    let why = v["notOurs"].as_str().unwrap_or_default();
    assert!(why.contains("not your cao gateway"), "{v}");
    assert!(
        why.contains("without the proof") || why.contains("does not match"),
        "{v}"
    );
    assert!(!v.to_string().contains("imposter-acct"), "{v}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning:") && err.contains("sent it nothing"),
        "{err}"
    );
    let out = status(false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("that is not your cao gateway"), "{text}");
    assert!(!text.contains("running at"), "{text}");

    // `status --watch` says so in its footer instead of drawing the imposter's view.
    let mut watch = cao_command(&env);
    watch.env("CAO_GATEWAY_KEY", KEY);
    let drawn = watch_until(watch, &["not your cao gateway"]);
    assert!(drawn.contains("not your cao gateway"), "{drawn}");
    assert!(!drawn.contains("imposter-acct"), "{drawn}");
    assert!(assert_only_probes(&seen) >= 3);

    // The control: the user's own gateway on a saved port gets the key and is shown.
    let port = free_port().to_string();
    let g = GatewayProc::try_start_with(
        &env,
        &["--port", &port, "--save"],
        &[("CAO_GATEWAY_KEY", KEY)],
    )
    .unwrap();
    let out = status(true);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["live"]["health"]["status"], "ok", "{v}");
    assert!(
        v["live"]["status"].is_object(),
        "/status (which needs the key) was read: {v}"
    );
    assert!(v.get("notOurs").is_none(), "{v}");
    drop(g);
}

fn write_exe(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn the_shim_refuses_an_imposter_that_took_the_gateways_port() {
    let env = two_accounts();
    let home = env.dir.path().join("home");
    let real_bin = env.dir.path().join("real-bin");
    // A stand-in for the real Codex that says when it runs.
    write_exe(
        &real_bin.join("codex"),
        "#!/bin/sh\necho CODEX-RAN \"$@\"\n",
    );
    let path = std::env::join_paths([
        home.join(".local/bin"),
        real_bin.clone(),
        "/usr/bin".into(),
        "/bin".into(),
    ])
    .unwrap();
    let g = GatewayProc::start(&env, &[]);
    let out = cao_command(&env)
        .env_remove("CODEX_HOME")
        .env("PATH", &path)
        .args(["gateway", "enable", "--base-url", &g.url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let codex = || {
        std::process::Command::new("codex")
            .env("PATH", &path)
            .env("HOME", &home)
            .args(["exec", "hi"])
            .output()
            .unwrap()
    };
    let ok = codex();
    assert!(
        String::from_utf8_lossy(&ok.stdout).contains("CODEX-RAN"),
        "{ok:?}"
    );
    // The gateway stops and something else takes its port.
    let port = port_of(&g.url);
    assert!(g.stop().success());
    let (_url, seen) = squatter_on(port);
    let out = codex();
    assert!(!out.status.success(), "{out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("CODEX-RAN"),
        "{out:?}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not your cao gateway"), "{err}");
    assert!(assert_only_probes(&seen) >= 1);
}

#[test]
fn a_real_gateway_of_another_data_dir_is_not_ours() {
    let mine = two_accounts();
    let theirs = two_accounts();
    let g = GatewayProc::start(&theirs, &[]);
    let ok = cao_command(&theirs)
        .args(["gateway", "verify", "--url", &g.url])
        .output()
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");
    // `mine` has never started a gateway: no secret at all.
    let no = cao_command(&mine)
        .args(["gateway", "verify", "--url", &g.url])
        .output()
        .unwrap();
    assert!(!no.status.success());
    // With a secret of its own (a gateway was started once), the proof does not match.
    drop(GatewayProc::start(&mine, &[]));
    let no = cao_command(&mine)
        .args(["gateway", "verify", "--url", &g.url])
        .output()
        .unwrap();
    assert!(!no.status.success());
    let err = String::from_utf8_lossy(&no.stderr);
    assert!(err.contains("does not match"), "{err}");
    let secret = theirs.data_dir().join("gateway-secret");
    assert_eq!(cao::store::fsutil::mode_of(&secret), Some(0o600));
    // `gateway status` on `mine`, pointed at their gateway, neither shows it nor sends the key.
    save_port(&mine, port_of(&g.url));
    let out = cao_command(&mine)
        .env("CAO_GATEWAY_KEY", KEY)
        .args(["gateway", "status", "--json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["live"].is_null(), "{v}");
    assert!(
        v["notOurs"]
            .as_str()
            .unwrap_or_default()
            .contains("does not match"),
        "{v}"
    );
}
