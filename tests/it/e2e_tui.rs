//! The real Codex CLI's interactive UI (npm `@openai/codex@0.169.0`, no subcommand) driven like a
//! person at a terminal: inside tmux (a real terminal emulator, so the screen can be read back),
//! typing prompts and pressing keys, against the mock upstream on 127.0.0.1 where account 1 is
//! spent (429 `usage_limit_reached`) and account 2 answers.
//!
//! Every wait polls the screen against a deadline; on failure the screen is in the message.
//! Skipped (returns early) when the real codex or tmux is missing locally.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::time::Duration;

use cao::mock::Scenario;

use crate::common::tui::{Setup, Tmux, scenario, stop_daemon, tui_ready};

/// The TUI routed through a real `cao gateway start` with the `-c` overrides `cao run --gateway`
/// and the shim use. Codex runs logged in as account 1 (as `cao run --gateway` runs it with the
/// default account's CODEX_HOME); the gateway meets account 1's limit and answers from account 2.
#[test]
fn tui_through_the_gateway_gets_its_answer_from_account_two() {
    let Some(s) = Setup::new(0) else { return };
    let Some((gw, home, t)) = s.tui_through_gateway("gw", "acct-1") else {
        return;
    };
    let context = || s.gateway_context(&gw);
    t.wait_for("the TUI to start", &context, tui_ready);

    s.hello_from_account_two(&t, &context);
    let screen = t.screen();
    assert!(!screen.contains("usage limit"), "{screen}");
    assert!(!screen.contains("Hello from acct-1."), "{screen}");

    // Over WebSocket (no HTTP fallback): account 1 refuses the prewarm once; from then on
    // account 2 serves the session.
    assert!(
        s.http_model_calls().is_empty(),
        "no HTTP model call: {:?}",
        s.http_model_calls()
    );
    let turns = s.ws_turns();
    assert_eq!(
        turns
            .iter()
            .filter(|c| c.starts_with("acct-1:"))
            .collect::<Vec<_>>(),
        ["acct-1:prewarm:error:usage_limit_reached"],
        "account 1 asked once: {turns:?}"
    );
    assert!(
        turns
            .iter()
            .any(|c| c.starts_with("acct-2:") && c.ends_with(":completed")),
        "{turns:?}"
    );
    s.assert_bearer_matches_header();
    // Nothing the TUI calls (plugins, MCP, settings, analytics, ...) met the perimeter.
    assert_eq!(gw.refusals(), Vec::<String>::new(), "{}", context());
    // The TUI's start-up workspace check went through the gateway too.
    s.assert_workspace_checked();

    s.leave(t, &home, &context);
    gw.stop();
}

/// Why the gateway serves HTTPS: the backend answers a personal account's workspace check with
/// `NO_CONSTRAINT` (the mock's default), and the TUI then refuses a plain-http
/// `chatgpt_base_url`. Routed over `http://` exactly as before issue 16, it never gets to a
/// prompt, and no model call is made.
#[test]
fn tui_routed_over_plain_http_refuses_to_start_for_a_personal_account() {
    let Some(s) = Setup::new(0) else { return };
    let Some((gw, home, t)) = s.tui_through_gateway_over("plain", "acct-1", false) else {
        return;
    };
    let context = || format!("upstream saw:\n{}", s.requests_text());
    // Codex 0.171 prints "Error: account/read failed: account/read failed: workspace backend
    // must use an HTTPS origin without credentials (code -32603)" and exits 1.
    t.wait_for("Codex's refusal", &context, |scr| scr.contains("[exited "));
    let screen = t.screen();
    assert!(
        screen.contains("workspace backend must use an HTTPS origin without credentials"),
        "{screen}"
    );
    assert!(screen.contains("[exited 1]"), "{screen}");
    assert!(s.model_calls().is_empty(), "{:?}", s.model_calls());
    drop(t);
    stop_daemon(&s.codex, &home);
    gw.stop();
}

/// `cao run -- <routing flags>` (interactive: no prompt, no subcommand) on a terminal, without
/// the gateway. Account 1 answers the first prompt, then hits its limit on the next; cao notices
/// the limit message live and says so; after the person quits Codex, cao starts Codex again on
/// account 2 with `resume <session id>`, so the conversation goes on there.
#[test]
fn cao_run_interactive_resumes_the_conversation_on_account_two() {
    // Codex goes straight to the mock's plain http here (no gateway, so no HTTPS): the mock
    // names an https workspace origin, which Codex only validates.
    let Some(s) = Setup::with_scenario(Scenario {
        workspace_backend_origin: cao::mock::LOOPBACK_HTTPS_ORIGIN.into(),
        ..scenario(1)
    }) else {
        return;
    };
    let base = s.mock().base_url();
    let cao = assert_cmd::cargo::cargo_bin("cao");
    let argv = vec![
        cao.display().to_string(),
        "--data-dir".into(),
        s.env.data_dir().display().to_string(),
        "run".into(),
        "--codex".into(),
        s.codex.display().to_string(),
        "--".into(),
        "-c".into(),
        format!("openai_base_url=\"{base}\""),
        "-c".into(),
        format!("chatgpt_base_url=\"{base}/backend-api\""),
    ];
    let mut env = s.term_env(None);
    env.push(("NO_COLOR", "1".into()));
    let Some(t) = Tmux::start("run", &s.work(), &env, &argv) else {
        return;
    };
    let context = || format!("upstream saw:\n{}", s.requests_text());
    t.wait_for("the TUI to start on account one", &context, tui_ready);
    t.submit("first question");
    t.wait_for("account 1's answer", &context, |scr| {
        scr.contains("Hello from acct-1.")
    });
    t.submit("second question");
    // Codex shows the limit; cao, watching the output live, says what happens next.
    t.wait_for("cao's note about the limit", &context, |scr| {
        scr.contains("hit your usage limit")
            && scr.contains("[cao] account one hit its usage limit")
    });

    // The person leaves Codex; cao continues the conversation on account two. The resumed UI
    // clears the screen and draws the same conversation again, so the switch is seen in the raw
    // terminal output and upstream (account two's start-up calls).
    let two_started = || {
        s.mock()
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/accounts/check") && r.account() == Some("acct-2"))
    };
    t.press_until("C-c", |_| t.raw().contains("[cao] using account two"));
    t.wait_for("Codex to start again on account two", &context, |_| {
        two_started()
    });
    let raw = t.raw();
    assert!(
        raw.contains("[cao] continuing the same conversation (session"),
        "{raw}"
    );
    std::thread::sleep(Duration::from_secs(3));
    t.wait_for("the resumed UI", &context, tui_ready);
    // The earlier exchange is on screen again (the rollout was carried over).
    let screen = t.screen();
    assert!(screen.contains("Hello from acct-1."), "{screen}");
    assert!(screen.contains("second question"), "{screen}");
    t.submit("third question");
    t.wait_for("account 2's answer", &context, |scr| {
        scr.contains("Hello from acct-2.")
    });

    t.quit_codex(&context);
    let raw = t.raw();
    let after = raw.rsplit("[cao] using account two").next().unwrap();
    // Account two was not taken for spent because the old limit message was drawn again.
    assert!(!after.contains("hit its usage limit"), "{after}");
    assert!(after.contains("[exited 0]"), "{after}");

    // Upstream: account 1 answered once and then refused; account 2 answered after that, with
    // the conversation's history (same session); tokens and account ids never mixed.
    let calls = s.model_calls();
    assert_eq!(
        calls.first().map(String::as_str),
        Some("acct-1:200"),
        "{calls:?}"
    );
    assert!(calls.iter().any(|c| c == "acct-1:429"), "{calls:?}");
    assert!(calls.iter().all(|c| c != "acct-2:429"), "{calls:?}");
    assert_eq!(
        calls.last().map(String::as_str),
        Some("acct-2:200"),
        "{calls:?}"
    );
    s.assert_bearer_matches_header();
    // The conversation account one left is the one resumed on account two.
    let raw = t.raw();
    let id = raw
        .split("[cao] continuing the same conversation (session ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap()
        .to_string();
    let before = raw.split("[cao] using account two").next().unwrap();
    assert!(before.contains(&format!("codex resume {id}")), "{raw}");

    // cao recorded account one's limit, not account two's.
    let status: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(s.env.data_dir().join("account_status.json")).unwrap(),
    )
    .unwrap();
    assert!(
        status["statuses"]["one"]["cooldownUntilMs"].is_number(),
        "{status}"
    );
    assert!(
        !status["statuses"]["two"]["cooldownUntilMs"].is_number(),
        "{status}"
    );
    drop(t);
    for name in ["one", "two"] {
        stop_daemon(&s.codex, &s.env.data_dir().join(name));
    }
}

/// Routed the way `cao gateway enable` routes a person's own Codex (logged in as an account cao
/// does not hold, `acct-user`). At start-up the TUI asks `GET /backend-api/wham/accounts/check`
/// and looks for its own account in the answer; the gateway forwards that one call with the
/// client's own credentials (no account swap), so the TUI starts, and its model calls are then
/// served by account 2 while account 1 is spent.
#[test]
fn tui_logged_in_as_its_own_account_starts_through_the_gateway() {
    let Some(s) = Setup::new(0) else { return };
    let Some((gw, home, t)) = s.tui_through_gateway("user", "acct-user") else {
        return;
    };
    let context = || s.gateway_context(&gw);
    t.wait_for("the TUI to start (or fail)", &context, |scr| {
        tui_ready(scr) || scr.contains("[exited ") || scr.contains("Error: ")
    });
    t.submit("say hello");
    let failed = |scr: &str| scr.contains("routing discovery") || scr.contains("Error: ");
    t.wait_for(
        "the answer from account 2 (or a failure)",
        &context,
        |scr| scr.contains("Hello from acct-2.") || failed(scr),
    );
    let screen = t.screen();
    assert!(!failed(&screen), "{screen}");
    // The workspace check went upstream as the client itself (bearer and header agreeing); model
    // calls never carried the client's account.
    let reqs = s.mock().requests();
    let check = reqs
        .iter()
        .find(|r| r.path.ends_with("/accounts/check"))
        .unwrap_or_else(|| panic!("no accounts/check upstream\n{}", context()));
    assert_eq!(
        check.bearer_account.as_deref(),
        Some("acct-user"),
        "{check:?}"
    );
    assert_eq!(
        check.header_account.as_deref(),
        Some("acct-user"),
        "{check:?}"
    );
    assert!(
        reqs.iter()
            .filter(|r| r.is_model_call())
            .all(|r| r.account() != Some("acct-user")),
        "{}",
        context()
    );
    assert!(
        s.mock()
            .ws_frames()
            .iter()
            .all(|f| f.account.as_deref() != Some("acct-user")),
        "{}",
        context()
    );
    s.leave(t, &home, &context);
    gw.stop();
}

/// Routed like `cao gateway enable` (the shim's `-c` overrides), logged in as an account cao
/// does not hold, over Responses-over-WebSocket: two turns on account 1 as deltas on one
/// socket, account 1 spent on the third, which account 2 answers with nothing on screen, and
/// the turn after that a delta again, on account 2. No HTTP model call at all.
#[test]
fn tui_over_websocket_switches_accounts_mid_session_and_keeps_deltas() {
    // Account 1 serves three responses: turns 1 and 2 and the side request the TUI makes on a
    // second socket of its own (a full request after its own prewarm).
    let Some(s) = Setup::new(3) else { return };
    let Some((gw, home, t)) = s.tui_through_gateway("ws", "acct-own") else {
        return;
    };
    let context = || {
        format!(
            "upstream saw:\n{}\nframes:\n{}\ngateway log:\n{}",
            s.requests_text(),
            s.ws_frames_text(),
            gw.log()
        )
    };
    t.wait_for("the TUI to start", &context, tui_ready);
    let from = ["acct-1", "acct-1", "acct-2", "acct-2", "acct-2"];
    for (n, acct) in from.iter().enumerate() {
        t.submit(&format!("question {n}"));
        let want = format!("Hello from {acct}.");
        let times = from[..=n].iter().filter(|a| *a == acct).count();
        t.wait_for(&format!("answer {n} from {acct}"), &context, |scr| {
            scr.matches(&want).count() >= times
        });
    }
    let screen = t.screen();
    assert!(!screen.contains("usage limit"), "{screen}");
    assert!(!screen.to_lowercase().contains("reconnecting"), "{screen}");
    assert!(
        s.http_model_calls().is_empty(),
        "no HTTP fallback: {:?}",
        s.http_model_calls()
    );
    let turns: Vec<String> = s
        .ws_turns()
        .into_iter()
        .filter(|t| !t.contains(":prewarm:"))
        .collect();
    let hit = turns
        .iter()
        .position(|t| t.ends_with("usage_limit_reached"))
        .unwrap_or_else(|| panic!("no usage limit met: {}", context()));
    assert_eq!(
        turns[hit],
        "acct-1:delta:error:usage_limit_reached",
        "{}",
        context()
    );
    assert_eq!(
        turns.iter().filter(|t| t.contains("error")).count(),
        1,
        "{}",
        context()
    );
    assert!(
        turns[..hit]
            .iter()
            .all(|t| t.starts_with("acct-1:") && t.ends_with(":completed")),
        "{}",
        context()
    );
    assert!(
        turns[..hit]
            .iter()
            .filter(|t| t.contains(":delta:"))
            .count()
            >= 2,
        "turns 1-2 are deltas on account 1: {}",
        context()
    );
    // The spent turn, expanded for account 2, then deltas there again.
    assert_eq!(turns[hit + 1], "acct-2:full:completed", "{}", context());
    assert_eq!(
        &turns[hit + 2..],
        ["acct-2:delta:completed", "acct-2:delta:completed"],
        "{}",
        context()
    );
    s.assert_bearer_matches_header();
    for f in s.mock().ws_frames() {
        assert_ne!(
            f.account.as_deref(),
            Some("acct-own"),
            "the client's own account served a turn: {f:?}"
        );
    }
    assert!(!gw.log().contains("status=426"), "{}", gw.log());
    s.leave(t, &home, &context);
    gw.stop();
}
