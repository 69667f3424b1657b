//! The everyday routes of issue 16 end to end with the real Codex 0.171 TUI under tmux, the mock
//! answering the workspace check as the backend answers a personal account (`NO_CONSTRAINT`, so
//! Codex insists on an `https://` `chatgpt_base_url`), account 1 spent and account 2 answering:
//! - after `cao gateway enable`, the plain `codex` a person types (the shim cao installed in
//!   `~/.local/bin`, which sets `CODEX_CA_CERTIFICATE` to cao's bundle) starts and gets its
//!   answer from account 2;
//! - `cao run --gateway` with no gateway running starts one inside cao, serving HTTPS, and the
//!   TUI it runs does the same.
//!
//! Uses the tmux harness of [`super::e2e_tui`]; skipped when the real codex or tmux is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::gateway::{GatewayProc, cao_command, free_port};

use crate::common::tui::{Setup, Tmux, codex_home, stop_daemon, tui_ready};

/// Account 1 asked once and refused (429), account 2 answered, never a mixed credential.
fn assert_served_by_account_two(s: &Setup) {
    let calls = s.model_calls();
    assert!(calls.iter().any(|c| c == "acct-2:200"), "{calls:?}");
    assert!(calls.iter().all(|c| c != "acct-1:200"), "{calls:?}");
    s.assert_bearer_matches_header();
    s.assert_workspace_checked();
}

#[test]
fn the_everyday_codex_through_the_shim_starts_and_is_served_over_https() {
    let Some(s) = Setup::new(0) else { return };
    let gw = GatewayProc::start(
        &s.env,
        &[
            "--base-url",
            &s.mock().base_url(),
            "--token-url",
            &s.mock().token_url(),
        ],
    );
    let https = gw.tls_url.clone().expect("https on loopback");
    // The person's own Codex home and login (an account cao does not hold).
    let home = s.env.dir.path().join("user-codex-home");
    codex_home(&home, "acct-user");
    let term = s.term_env(Some(&home));
    let var = |k: &str| term.iter().find(|(n, _)| *n == k).unwrap().1.clone();
    let out = cao_command(&s.env)
        .args(["gateway", "enable", "--base-url", &https])
        .env("HOME", var("HOME"))
        .env("PATH", var("PATH"))
        .env("CODEX_HOME", &home)
        .env_remove("CODEX_CA_CERTIFICATE")
        .env_remove("SSL_CERT_FILE")
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("  shim:   "), "{said}");
    // The person's shell: ~/.local/bin first on PATH, typing `codex`.
    let bin = std::path::Path::new(&var("HOME")).join(".local/bin");
    let mut env = term.clone();
    for (k, v) in env.iter_mut() {
        if *k == "PATH" {
            *v = format!("{}:{v}", bin.display());
        }
    }
    let shim = bin.join("codex");
    assert!(cao::codex::shim::file_is_cao_shim(&shim));
    let Some(t) = Tmux::start("shim", &s.work(), &env, &[shim.display().to_string()]) else {
        return;
    };
    let context = || s.gateway_context(&gw);
    t.wait_for("the TUI to start (or fail)", &context, |scr| {
        tui_ready(scr) || scr.contains("[exited ")
    });
    let screen = t.screen();
    assert!(tui_ready(&screen), "{screen}\n{}", context());
    s.hello_from_account_two(&t, &context);
    assert_served_by_account_two(&s);
    s.leave(t, &home, &context);
    gw.stop();
}

#[test]
fn cao_run_gateway_starts_an_https_gateway_inside_cao_and_the_tui_is_served() {
    let Some(s) = Setup::new(0) else { return };
    // The embedded gateway takes the saved settings: the mock upstream.
    std::fs::write(
        s.env.data_dir().join("gateway.json"),
        serde_json::json!({
            "baseUrl": s.mock().base_url(),
            "tokenUrl": s.mock().token_url(),
        })
        .to_string(),
    )
    .unwrap();
    let nobody = format!("https://127.0.0.1:{}", free_port());
    let cao = assert_cmd::cargo::cargo_bin("cao");
    let argv = vec![
        cao.display().to_string(),
        "--data-dir".into(),
        s.env.data_dir().display().to_string(),
        "run".into(),
        "--gateway".into(),
        "--gateway-url".into(),
        nobody.clone(),
        "--codex".into(),
        s.codex.display().to_string(),
    ];
    let mut env = s.term_env(None);
    env.push(("NO_COLOR", "1".into()));
    let Some(t) = Tmux::start("rungw", &s.work(), &env, &argv) else {
        return;
    };
    let context = || {
        format!(
            "upstream saw:\n{}\nrun-gateway.log:\n{}",
            s.requests_text(),
            std::fs::read_to_string(s.env.data_dir().join("run-gateway.log")).unwrap_or_default()
        )
    };
    t.wait_for("the TUI to start (or fail)", &context, |scr| {
        tui_ready(scr) || scr.contains("[exited ")
    });
    let raw = t.raw();
    assert!(
        raw.contains(&format!(
            "no gateway answers at {nobody}; started one for this run at https://127.0.0.1:"
        )),
        "{raw}"
    );
    let screen = t.screen();
    assert!(tui_ready(&screen), "{screen}\n{}", context());
    s.hello_from_account_two(&t, &context);
    assert_served_by_account_two(&s);
    t.quit_codex(&context);
    drop(t);
    for name in ["one", "two"] {
        stop_daemon(&s.codex, &s.env.data_dir().join(name));
    }
}
