//! What a running gateway shows other local users and asks of the system: the access key
//! stays out of its command line when it comes from `CAO_GATEWAY_KEY` or a key file, short keys
//! and keyless network binds are refused before anything is bound, and the soft open-file limit
//! is raised to the hard one at start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use cao::mock::Scenario;
use common::gateway::{GatewayProc, cao_command, mock, two_accounts};

const KEY: &str = "a-key-nobody-else-may-read-0123";

/// The command line of a running process as `ps` shows it to every user.
fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_from_the_environment_or_a_file_is_not_in_the_command_line() {
    let env = two_accounts();
    let m = mock(Scenario::default()).await;
    let (base, token) = (m.base_url(), m.token_url());
    let up = ["--base-url", base.as_str(), "--token-url", token.as_str()];
    let g = GatewayProc::try_start_with(&env, &up, &[("CAO_GATEWAY_KEY", KEY)]).unwrap();
    let seen = cmdline(g.child.id());
    assert!(seen.contains("gateway start"), "{seen}");
    assert!(!seen.contains(KEY), "{seen}");
    assert!(!g.log().contains(KEY), "{}", g.log());
    let r = common::gateway::get(&g.url, "/models", &[("x-cao-key", KEY)]).await;
    assert_eq!(r.status, 200, "the key from the environment is in force");
    let r = common::gateway::get(&g.url, "/models", &[]).await;
    assert_eq!(r.status, 401);
    drop(g);

    let file = env.dir.path().join("gateway.key");
    std::fs::write(&file, format!("{KEY}\n")).unwrap();
    let f = file.to_str().unwrap();
    let g = GatewayProc::start(&env, &[&up[..], &["--access-key-file", f]].concat());
    let seen = cmdline(g.child.id());
    assert!(seen.contains("--access-key-file"), "{seen}");
    assert!(!seen.contains(KEY), "{seen}");
    let r = common::gateway::get(&g.url, "/models", &[("x-cao-key", KEY)]).await;
    assert_eq!(r.status, 200);
}

#[test]
fn short_keys_and_keyless_network_binds_are_refused_before_binding() {
    let env = two_accounts();
    for (args, vars, says) in [
        (
            vec!["--bind", "0.0.0.0", "--access-key", "short"],
            vec![],
            "at least 16",
        ),
        (
            vec!["--bind", "0.0.0.0"],
            vec![("CAO_GATEWAY_KEY", "0123456789")],
            "at least 16",
        ),
        (vec!["--bind", "0.0.0.0"], vec![], "without an access key"),
    ] {
        let out = cao_command(&env)
            .args(["gateway", "start", "--port", "0"])
            .args(&args)
            .envs(vars)
            .stdout(Stdio::piped())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}: {out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        // The one line `gateway start` prints once it listens.
        assert!(!stdout.contains("\"url\""), "{args:?} bound: {stdout}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("0123456789"), "the key was echoed: {err}");
    }
}

/// `Max open files` (soft, hard) from `/proc/PID/limits`.
fn open_files(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_string();
    let cols: Vec<&str> = line.split_whitespace().collect();
    (cols[3].to_string(), cols[4].to_string())
}

#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
    let env = two_accounts();
    // Started with a soft limit of 64 (what a login shell may give), through `exec`, so the
    // shell's pid is the gateway's.
    let cao = cao_command(&env);
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", "ulimit -Sn 64 && exec \"$0\" \"$@\""])
        .arg(cao.get_program())
        .args(cao.get_args())
        .args(["gateway", "start", "--port", "0"])
        .envs(cao.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .env_remove("CAO_GATEWAY_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    let before = open_files(pid);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    let after = open_files(pid);
    let _ = child.kill();
    let _ = child.wait();
    assert!(first.starts_with("{\"url\":\"http://127.0.0.1:"), "{first}");
    assert_ne!(after.1, "64", "the hard limit is higher on this machine");
    assert_eq!(
        after.0, after.1,
        "soft limit not raised (started at {before:?})"
    );
}
