//! The running gateway's runtime file and what `cao gateway start` prints: one JSON line on
//! stdout, next steps on stderr; `--save` only after a successful bind, with the real port;
//! `gateway status` and `run --gateway` find a gateway started on another port without `--save`.
use crate::common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TestEnv;
use common::gateway::{GatewayProc, cao_command};

fn runtime_file(env: &TestEnv) -> std::path::PathBuf {
    env.data_dir().join("gateway.runtime.json")
}

fn wait_until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn start_prints_one_json_line_writes_the_runtime_file_and_removes_it_on_exit() {
    let env = TestEnv::new();
    env.add_logged_in("alice", "acc-1", common::now_secs() + 3600);
    let mut cmd = cao_command(&env);
    cmd.args(["gateway", "start", "--port", "0"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let line: serde_json::Value = serde_json::from_str(&first).expect("a JSON line");
    let url = line["url"].as_str().unwrap().to_string();
    let port = line["port"].as_u64().unwrap();
    assert!(
        port > 0 && url == format!("http://127.0.0.1:{port}"),
        "{line}"
    );
    assert_eq!(line["pid"].as_u64(), Some(u64::from(child.id())));
    assert!(
        line["httpsUrl"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://127.0.0.1:"))
    );

    wait_until("the runtime file", || runtime_file(&env).exists());
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runtime_file(&env)).unwrap()).unwrap();
    assert_eq!(record["pid"].as_u64(), Some(u64::from(child.id())));
    assert_eq!(record["port"].as_u64(), Some(port));
    assert_eq!(record["url"].as_str(), Some(url.as_str()));
    assert!(
        !env.data_dir().join("gateway.json").exists(),
        "no --save, nothing saved"
    );

    // Another port, no --save: `gateway status` still finds it, through the runtime file.
    let status = env.cao().args(["gateway", "status"]).output().unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains(&format!(
            "Live: running at {url} (pid {}, 1 of 1 account ready",
            child.id()
        )),
        "{text}"
    );
    let json = env
        .cao()
        .args(["gateway", "status", "--json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["running"]["port"].as_u64(), Some(port));
    assert!(json["live"]["health"].is_object(), "{json}");

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(rest, "", "exactly one line on stdout");
    assert!(
        stderr.contains(&format!(
            "cao gateway is running (pid {}): {url} and https://127.0.0.1:{port} on the same port",
            child.id()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("options: command line (--port), defaults for the rest"),
        "{stderr}"
    );
    assert!(
        stderr.contains("accounts: 1 of 1 account ready: alice"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("status page: {url}/")), "{stderr}");
    assert!(
        stderr.contains("cao gateway enable") && stderr.contains("cao run --gateway"),
        "{stderr}"
    );
    assert!(!runtime_file(&env).exists(), "removed on exit");

    // Nothing runs now: gateway status says so at the saved (default) address.
    let status = env.cao().args(["gateway", "status"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&status.stdout)
            .contains("Live: no gateway answers at http://127.0.0.1:4319"),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
}

#[test]
fn a_killed_gateways_runtime_file_is_stale_and_ignored() {
    let env = TestEnv::new();
    let gw = GatewayProc::start(&env, &[]);
    wait_until("the runtime file", || runtime_file(&env).exists());
    let status = gw.stop_with("-KILL");
    assert!(!status.success());
    assert!(runtime_file(&env).exists(), "SIGKILL leaves the file");
    let out = env.cao().args(["gateway", "status"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Live: no gateway answers at http://127.0.0.1:4319"),
        "{text}"
    );
}

#[test]
fn save_stores_the_port_actually_bound_never_zero() {
    let env = TestEnv::new();
    let gw = GatewayProc::start(&env, &["--save"]);
    let port: u64 = gw.url.rsplit(':').next().unwrap().parse().unwrap();
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(env.data_dir().join("gateway.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["port"].as_u64(), Some(port), "{saved}");
    let log = gw.log_when(|l| l.contains("Ctrl-C stops it"));
    assert!(
        log.contains(&format!("saved: port {port} is now the default")),
        "{log}"
    );
    gw.stop();
}

#[test]
fn save_writes_nothing_when_the_port_cannot_be_bound() {
    let env = TestEnv::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = cao_command(&env)
        .args(["gateway", "start", "--port", &port, "--save"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("could not listen on"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!env.data_dir().join("gateway.json").exists());
    assert!(out.stdout.is_empty(), "no listening line");
    assert!(!runtime_file(&env).exists());
}

#[test]
fn run_gateway_uses_the_gateway_running_on_another_port_instead_of_starting_one() {
    let env = TestEnv::new();
    env.add_logged_in("alice", "acc-1", common::now_secs() + 3600);
    let gw = GatewayProc::start(&env, &[]);
    let https = gw.tls_url.clone().expect("https on the same port");
    wait_until("the runtime file", || runtime_file(&env).exists());
    // A stand-in for Codex: prints its arguments.
    let fake = env.dir.path().join("fake-codex");
    std::fs::write(
        &fake,
        "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = env
        .cao()
        .args(["run", "--gateway", "--codex"])
        .arg(&fake)
        .args(["--", "exec", "hi"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("using your gateway at {https}")),
        "{stderr}"
    );
    assert!(!stderr.contains("started one for this run"), "{stderr}");
    assert!(stdout.contains(&https), "{stdout}");
    wait_until("the gateway still runs", || runtime_file(&env).exists());
    gw.stop();
}
