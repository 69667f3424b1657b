//! The interactive `cao switch` picker on a real pseudo-terminal: every account's state, type
//! to filter, a number picks, Esc / Ctrl-C cancel with exit 1 / 130 and leave the cursor shown.
use crate::common;

use common::pty::Pty;
use common::{TestEnv, now_secs};

/// alpha (default, ready), beta (cooling for an hour), gamma (registered, never logged in).
fn three_accounts() -> TestEnv {
    let env = TestEnv::new();
    env.add_logged_in("alpha", "acc-a", now_secs() + 86_400);
    env.add_logged_in("beta", "acc-b", now_secs() + 86_400);
    env.cao()
        .args(["add", "gamma", "--no-login"])
        .assert()
        .success();
    let statuses = serde_json::json!({"statuses": {"beta": {
        "cooldownUntilMs": (now_secs() + 3600) * 1000, "lastError": "usage_limit_reached"}}});
    std::fs::write(
        env.data_dir().join("account_status.json"),
        statuses.to_string(),
    )
    .unwrap();
    env
}

fn current(env: &TestEnv) -> String {
    let out = env.cao().arg("current").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The cursor was hidden while picking and is shown again at the end.
fn cursor_restored(out: &str) {
    let hidden = out.rfind("\x1b[?25l").expect("the picker hides the cursor");
    let shown = out.rfind("\x1b[?25h").expect("and shows it again");
    assert!(shown > hidden, "cursor left hidden: {out:?}");
}

#[test]
fn the_picker_shows_every_accounts_state_and_a_number_picks() {
    let env = three_accounts();
    let mut pty = Pty::spawn(&env, &["switch"], 24, 80, &[]);
    pty.wait_for("Esc cancels");
    pty.wait_for("needs-login");
    let shown = pty.output();
    assert!(
        shown.contains("alpha") && shown.contains("ready"),
        "{shown}"
    );
    assert!(
        shown.contains("beta") && shown.contains("cooling"),
        "{shown}"
    );
    pty.send(b"2\r");
    let (out, code) = pty.finish();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Default account set to: beta"), "{out}");
    cursor_restored(&out);
    assert_eq!(current(&env), "beta");
}

#[test]
fn typing_filters_by_name_and_enter_picks_the_match() {
    let env = three_accounts();
    let mut pty = Pty::spawn(&env, &["switch"], 24, 80, &[]);
    pty.wait_for("Esc cancels");
    pty.send(b"gam");
    pty.wait_for("[gam]");
    pty.send(b"\r");
    let (out, code) = pty.finish();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Default account set to: gamma"), "{out}");
    assert_eq!(current(&env), "gamma");
}

#[test]
fn ctrl_c_cancels_with_130_changes_nothing_and_restores_the_cursor() {
    let env = three_accounts();
    let mut pty = Pty::spawn(&env, &["switch"], 24, 80, &[]);
    pty.wait_for("Esc cancels");
    pty.send(b"\x1b[B");
    pty.send(b"\x03");
    let (out, code) = pty.finish();
    assert_eq!(code, 130, "{out}");
    assert!(
        out.contains("Interrupted; the default is still alpha."),
        "{out}"
    );
    cursor_restored(&out);
    assert_eq!(current(&env), "alpha");
}
