//! `cao status --watch` on a real pseudo-terminal: the alternate screen (left on `q` and on
//! Ctrl-C, cursor shown again), frames that fit the terminal's rows and columns, the running
//! gateway found through its runtime file, the pool line, and no epoch milliseconds.
use crate::common;

use common::gateway::GatewayProc;
use common::pty::Pty;
use common::{TestEnv, now_secs};

const ENTER_ALT: &str = "\x1b[?1049h";
const LEAVE_ALT: &str = "\x1b[?1049l";
const SHOW_CURSOR: &str = "\x1b[?25h";

/// The last complete frame: the text from the last "home" to the "clear below" after it, as
/// lines without escapes.
fn last_frame(out: &str) -> Vec<String> {
    let end = out.rfind("\x1b[J").expect("a frame");
    let start = out[..end].rfind("\x1b[H").expect("a frame start") + 3;
    out[start..end].split("\r\n").map(strip).collect()
}

fn strip(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if ('\x40'..='\x7e').contains(&d) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// 13 digits in a row: an epoch-milliseconds value shown to a person.
fn has_epoch_ms(text: &str) -> bool {
    let mut run = 0;
    for c in text.chars() {
        run = if c.is_ascii_digit() { run + 1 } else { 0 };
        if run >= 13 {
            return true;
        }
    }
    false
}

fn left_cleanly(out: &str) {
    let entered = out.find(ENTER_ALT).expect("the alternate screen");
    let left = out.rfind(LEAVE_ALT).expect("left the alternate screen");
    assert!(left > entered, "{out:?}");
    assert!(
        out.rfind(SHOW_CURSOR).is_some_and(|s| s > entered),
        "cursor hidden: {out:?}"
    );
}

fn seed_usage(env: &TestEnv, names: &[&str]) {
    let mut statuses = serde_json::Map::new();
    for (i, n) in names.iter().enumerate() {
        statuses.insert(
            n.to_string(),
            serde_json::json!({"usage": {"windows": [{"family": "codex", "slot": "primary",
                "usedPercent": 10.0 + i as f64, "windowMinutes": 300,
                "resetsAtMs": (now_secs() + 3600) * 1000}],
                "seenAtMs": now_secs() * 1000, "source": "headers"}}),
        );
    }
    std::fs::write(
        env.data_dir().join("account_status.json"),
        serde_json::json!({ "statuses": statuses }).to_string(),
    )
    .unwrap();
}

#[test]
fn q_leaves_the_alternate_screen_and_shows_the_cursor() {
    let env = TestEnv::new();
    env.add_logged_in("work", "acc-1", now_secs() + 86_400);
    env.add_logged_in("home", "acc-2", now_secs() + 86_400);
    seed_usage(&env, &["work", "home"]);
    let mut pty = Pty::spawn(&env, &["status", "--watch", "--interval", "1"], 30, 80, &[]);
    pty.wait_for("q or Ctrl-C quits");
    pty.send(b"q");
    let (out, code) = pty.finish();
    assert_eq!(code, 0, "{out}");
    left_cleanly(&out);
    let frame = last_frame(&out);
    assert!(frame.len() <= 30, "{frame:#?}");
    assert!(frame.iter().all(|l| l.chars().count() <= 80), "{frame:#?}");
    assert!(frame.iter().any(|l| l.contains("pool: ")), "{frame:#?}");
    assert!(!has_epoch_ms(&strip(&out)), "{out}");
}

#[test]
fn ctrl_c_quits_cleanly_too() {
    let env = TestEnv::new();
    env.add_logged_in("work", "acc-1", now_secs() + 86_400);
    let mut pty = Pty::spawn(&env, &["status", "--watch"], 24, 80, &[]);
    pty.wait_for("q or Ctrl-C quits");
    pty.send(b"\x03");
    let (out, code) = pty.finish();
    assert_eq!(code, 0, "{out}");
    left_cleanly(&out);
}

#[test]
fn forty_accounts_fit_a_small_terminal_with_the_gateway_footer() {
    let env = TestEnv::new();
    let names: Vec<String> = (0..40).map(|i| format!("acct-{i:02}")).collect();
    for (i, n) in names.iter().enumerate() {
        env.add_logged_in(n, &format!("acc-{i}"), now_secs() + 86_400);
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    seed_usage(&env, &refs);
    // Another port, no --save: found through the runtime file.
    let gw = GatewayProc::start(&env, &[]);
    let mut pty = Pty::spawn(&env, &["status", "--watch", "--interval", "1"], 20, 60, &[]);
    pty.wait_for(&format!("Gateway {}", gw.url));
    pty.wait_for("q or Ctrl-C quits");
    pty.send(b"q");
    let (out, code) = pty.finish();
    assert_eq!(code, 0, "{out}");
    left_cleanly(&out);
    let frame = last_frame(&out);
    assert!(frame.len() <= 20, "{} lines: {frame:#?}", frame.len());
    assert!(frame.iter().all(|l| l.chars().count() <= 60), "{frame:#?}");
    assert!(
        frame.iter().any(|l| l.contains("more accounts")),
        "{frame:#?}"
    );
    assert!(frame.iter().any(|l| l.starts_with("pool: ")), "{frame:#?}");
    assert!(frame.iter().any(|l| l.contains("Gateway")), "{frame:#?}");
    assert!(!has_epoch_ms(&strip(&out)), "{out}");
    gw.stop();
}
