//! `cao run` with fake codex programs that write sessions: the conversation resumes on the next
//! account, and only a served turn clears a cooldown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::run::{Fixture, MSG, now_ms, run_on_pty};

use predicates::prelude::*;

// ---- continuing the conversation on the next account ----------------------------------------

const SESSION: &str = "01a20f6c-5deb-7bf0-b88f-0458697f3e9a";

/// On account a: record a session like Codex does (a rollout under $CODEX_HOME/sessions) with
/// or without a model answer in it, then hit the limit. On b: report whether the rollout is
/// visible there.
fn session_fake(model_answered: bool) -> String {
    let answer = if model_answered {
        r#"{"type":"response_item","payload":{"type":"message","role":"assistant","content":[]}}"#
    } else {
        r#"{"type":"event_msg","payload":{"type":"task_started"}}"#
    };
    format!(
        r#"f="$CODEX_HOME/sessions/2026/11/24/rollout-2026-11-24T21-18-09-{SESSION}.jsonl"
if [ $acct = a ]; then
  mkdir -p "$(dirname "$f")"
  echo '{{"type":"response_item","payload":{{"type":"message","role":"user","content":[]}}}}' > "$f"
  echo '{answer}' >> "$f"
  echo 'ERROR: {MSG}' >&2; exit 1
fi
[ -f "$f" ] && echo "session visible on $acct" || echo "no session on $acct""#
    )
}

#[test]
fn the_conversation_continues_on_the_next_account_with_exec_resume() {
    let f = Fixture::new(&["a", "b"], &session_fake(true));
    f.cao()
        .args(["--", "-c", "x=1", "exec", "--json", "do the thing"])
        .assert()
        .success()
        .stdout("session visible on b\n")
        .stderr(predicate::str::contains(format!(
            "continuing the same conversation (session {SESSION}) on account b"
        )));
    assert_eq!(
        f.calls(),
        vec![
            "a -c x=1 exec --json do the thing".to_string(),
            format!("b -c x=1 exec --json resume {SESSION} do the thing"),
        ]
    );
}

#[test]
fn a_session_the_model_never_answered_is_simply_run_again() {
    let f = Fixture::new(&["a", "b"], &session_fake(false));
    f.cao()
        .args(["--", "exec", "do it"])
        .assert()
        .success()
        .stdout("session visible on b\n");
    assert_eq!(f.calls(), vec!["a exec do it", "b exec do it"]);
}

#[test]
fn the_interactive_ui_resumes_the_session_on_the_next_account() {
    let f = Fixture::new(&["a", "b"], &session_fake(true));
    let (out, code) = run_on_pty(&f, &["--", "-m", "gpt-5", "fix the bug"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("session visible on b"), "{out}");
    assert_eq!(
        f.calls(),
        vec![
            "a -m gpt-5 fix the bug".to_string(),
            format!("b -m gpt-5 resume {SESSION}"),
        ]
    );
}

/// A fake codex that answers like the backend served a turn: it records a session whose
/// rollout holds an assistant message (as the real Codex does under `$CODEX_HOME/sessions`).
const SERVED_TURN: &str = r#"d="$CODEX_HOME/sessions/2026/12/01"; mkdir -p "$d"
echo '{"type":"response_item","payload":{"type":"message","role":"assistant"}}' > "$d/rollout-2026-12-01T00-00-00-0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b.jsonl"
echo served"#;

#[test]
fn a_local_codex_command_does_not_clear_a_cooldown_only_a_served_turn_does() {
    let f = Fixture::new(&["a", "b"], "echo codex-cli 0.171.0");
    let until = now_ms() + 3_600_000;
    f.set_cooldown("a", until);
    f.cao()
        .args(["--account", "a", "--", "--version"])
        .assert()
        .success()
        .stdout("codex-cli 0.171.0\n");
    let a = f.status("a");
    assert_eq!(a["cooldownUntilMs"], until, "{a}");
    assert_eq!(a["lastError"], "usage_limit_reached", "{a}");

    let f = Fixture::new(&["a", "b"], SERVED_TURN);
    f.set_cooldown("a", until);
    f.cao()
        .args(["--account", "a", "--", "exec", "hi"])
        .assert()
        .success();
    let a = f.status("a");
    assert!(a.get("cooldownUntilMs").is_none(), "{a}");
    assert!(a.get("lastError").is_none(), "{a}");
    assert!(a["lastSuccessAtMs"].is_i64(), "{a}");
}
