//! The pieces of `cao demo`: its accounts, the mock scenario, the requests it sends through the
//! gateway, and how it narrates them.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use crate::gateway::GatewayHandle;
use crate::mock::{AccountFaults, MockUpstream, QuotaFault, Scenario};
use crate::net::HttpClient;
use crate::render::{style, time};
use crate::store::auth_file::{AuthFile, TokenSet, make_unsigned_jwt};
use crate::store::{self, Store, fsutil};

/// One demo account.
pub struct DemoAccount {
    pub name: &'static str,
    pub account_id: &'static str,
    pub email: &'static str,
    /// What the mock does with it, shown when the demo starts.
    pub story: &'static str,
}

pub const DEMO_ACCOUNTS: [DemoAccount; 3] = [
    DemoAccount {
        name: "work",
        account_id: "demo-acc-1",
        email: "work@example.com",
        story: "usage limit already reached (resets in 2h 14m)",
    },
    DemoAccount {
        name: "personal",
        account_id: "demo-acc-2",
        email: "me@example.com",
        story: "two answers left before its limit",
    },
    DemoAccount {
        name: "side-project",
        account_id: "demo-acc-3",
        email: "side@example.com",
        story: "plenty left",
    },
];

/// The demo account an upstream account id belongs to.
fn by_account_id(id: Option<&str>) -> Option<&'static DemoAccount> {
    DEMO_ACCOUNTS.iter().find(|a| Some(a.account_id) == id)
}

/// Seconds until account 1's reset, as the mock reports it.
const ACCOUNT1_RESET_S: i64 = 2 * 3600 + 14 * 60;
/// Seconds until account 2's reset once it is spent.
const ACCOUNT2_RESET_S: i64 = 47 * 60;

/// Write the three accounts (auth.json with unsigned JWTs valid for ten days, config.toml) and
/// the registry, through the store like `cao add` does.
pub fn create_accounts(store: &Store) -> Result<()> {
    store.ensure_root()?;
    let exp = crate::clock::now_ms() / 1000 + 10 * 86_400;
    for a in DEMO_ACCOUNTS {
        let store_name = store.check_name(a.name)?;
        let auth_claims = json!({
            "chatgpt_account_id": a.account_id,
            "chatgpt_plan_type": "plus",
            "chatgpt_user_id": format!("user-{}", a.account_id),
        });
        let tokens = TokenSet {
            id_token: Some(make_unsigned_jwt(&json!({
                "email": a.email, "exp": exp, "https://api.openai.com/auth": auth_claims,
            }))),
            access_token: make_unsigned_jwt(&json!({
                "exp": exp, "https://api.openai.com/auth": auth_claims,
            })),
            refresh_token: Some(format!("rt-{}-0", a.account_id)),
            account_id: Some(a.account_id.to_string()),
        };
        let now = jiff::Timestamp::now().to_string();
        store.save_auth(store_name, &AuthFile::new_chatgpt(&tokens, &now))?;
        fsutil::write_atomic(
            &store.account_config_path(store_name),
            store::DEFAULT_ACCOUNT_CONFIG.as_bytes(),
            fsutil::SECRET_FILE_MODE,
        )?;
        store.update_registry(|r| {
            r.add(store_name);
            Ok(())
        })?;
    }
    Ok(())
}

/// Account 1 spent; account 2 spent after two more answers; account 3 fine. Every answer
/// carries usage headers so the dashboard has something to show. Events are spaced so the
/// streaming is visible.
pub fn scenario(now_ms: i64) -> Scenario {
    let usage = |pct: &str| {
        [
            ("x-codex-primary-used-percent", pct.to_string()),
            ("x-codex-primary-window-minutes", "300".to_string()),
            (
                "x-codex-primary-reset-at",
                (now_ms / 1000 + 3 * 3600).to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    };
    Scenario {
        reply: "Hello from {account}, streamed through the cao gateway.".into(),
        deltas: 5,
        event_delay_ms: 70,
        ..Scenario::default()
    }
    .with_account(
        DEMO_ACCOUNTS[0].account_id,
        AccountFaults::spent(ACCOUNT1_RESET_S),
    )
    .with_account(
        DEMO_ACCOUNTS[1].account_id,
        AccountFaults {
            quota: Some(QuotaFault {
                resets_in_seconds: Some(ACCOUNT2_RESET_S),
                after_requests: 2,
                ..Default::default()
            }),
            headers: usage("93"),
            ..Default::default()
        },
    )
    .with_account(
        DEMO_ACCOUNTS[2].account_id,
        AccountFaults {
            headers: usage("12"),
            ..Default::default()
        },
    )
}

/// One Codex turn the demo sends.
pub struct Step {
    pub caption: &'static str,
    pub session: &'static str,
    pub prompt: &'static str,
}

pub fn steps() -> Vec<Step> {
    vec![
        Step {
            caption: "new session, first turn (the default account, work, is spent)",
            session: "demo-session-a",
            prompt: "Explain this repository in one sentence.",
        },
        Step {
            caption: "same session, second turn (stays on the account that answered)",
            session: "demo-session-a",
            prompt: "Now list its commands.",
        },
        Step {
            caption: "another session (personal reaches its limit now)",
            session: "demo-session-b",
            prompt: "Write a haiku about rate limits.",
        },
    ]
}

/// Send one Codex-shaped streamed request (headers as Codex 0.169 sends them) through the
/// gateway; narrate what upstream saw, then stream the answer's text as it arrives. Returns how
/// many upstream requests have been narrated so far.
pub async fn send_and_narrate(
    client: &HttpClient,
    gateway: &GatewayHandle,
    mock: &MockUpstream,
    step: &Step,
    seen: usize,
) -> Result<usize> {
    let mut out = anstream::stdout();
    let body = json!({
        "model": "gpt-5-codex",
        "instructions": "You are Codex.",
        "input": [{"type": "message", "role": "user",
                   "content": [{"type": "input_text", "text": step.prompt}]}],
        "stream": true,
        "store": false,
    });
    // The client's own credentials: the gateway replaces both with the chosen account's.
    let req = http::Request::post(format!("{}/responses", gateway.base_url()))
        .header("authorization", "Bearer client-token-the-gateway-replaces")
        .header("chatgpt-account-id", "client-account")
        .header("accept", "text/event-stream")
        .header("content-type", "application/json")
        .header("originator", "codex_exec")
        .header("session-id", step.session)
        .header("x-client-request-id", format!("demo-{}", fastrand::u32(..)))
        .body(Full::new(Bytes::from(body.to_string())))
        .context("building the demo request")?;
    let resp = tokio::time::timeout(Duration::from_secs(15), client.request(req))
        .await
        .context("the gateway did not answer within 15 s")?
        .context("could not reach the demo gateway")?;

    // What reached upstream for this request, in order.
    let log: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.is_model_call())
        .collect();
    let new = log.get(seen..).unwrap_or_default();
    let now = crate::clock::now_ms();
    let tz = jiff::tz::TimeZone::system();
    for (i, r) in new.iter().enumerate() {
        let acct = by_account_id(r.account());
        let name = acct.map_or("?", |a| a.name);
        if i > 0 {
            writeln!(
                out,
                "      {} gateway switched to the next account and replayed the request",
                style::yellow("↪")
            )?;
        }
        if r.status == 429 {
            // The reset the gateway took from upstream's 429 body.
            let pool = gateway.state().pool();
            let until = pool
                .accounts
                .iter()
                .find(|a| a.name == name)
                .and_then(|a| a.cooldown_until());
            let reset = until.map_or_else(
                || "unknown".to_string(),
                |u| {
                    format!(
                        "{} (in {})",
                        time::local(u, &tz),
                        time::duration((u - now).max(0))
                    )
                },
            );
            writeln!(
                out,
                "      upstream  {name:<13} {}  usage_limit_reached, resets {reset}",
                style::red("429"),
            )?;
        } else {
            writeln!(
                out,
                "      upstream  {name:<13} {}",
                style::green(&r.status.to_string())
            )?;
        }
    }
    if new.len() == 1 {
        writeln!(
            out,
            "      {} no switch needed",
            style::dim("(session affinity)")
        )?;
    }
    let status = resp.status();
    write!(out, "      Codex got {}: ", style::bold(status.as_str()))?;
    out.flush()?;
    stream_text(resp.into_body(), &mut out).await?;
    writeln!(out)?;
    Ok(log.len())
}

/// Print the text deltas of an SSE answer as they arrive.
async fn stream_text(mut body: crate::net::client::Body, out: &mut impl Write) -> Result<()> {
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .context("the answer stalled for 15 s")?;
        let Some(frame) = frame else { break };
        let frame = frame.context("the answer stream broke")?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.push_str(&String::from_utf8_lossy(&data));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            for line in event.lines() {
                let Some(payload) = line.strip_prefix("data:") else {
                    continue;
                };
                let Ok(v) = serde_json::from_str::<Value>(payload.trim()) else {
                    continue;
                };
                match v.get("type").and_then(Value::as_str) {
                    Some("response.output_text.delta") => {
                        write!(out, "{}", v["delta"].as_str().unwrap_or_default())?;
                        out.flush()?;
                    }
                    Some("error") | None => {
                        // A JSON error answer (not SSE) or an error event: show its message.
                        if let Some(m) = v.pointer("/error/message").and_then(Value::as_str) {
                            write!(out, "{m}")?;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// Show the accounts the gateway is resting, with their reset times.
pub fn print_cooldowns(handle: &GatewayHandle) -> Result<()> {
    let mut out = anstream::stdout();
    let now = crate::clock::now_ms();
    let tz = jiff::tz::TimeZone::system();
    let pool = handle.state().pool();
    let cooling: Vec<String> = pool
        .accounts
        .iter()
        .filter_map(|a| {
            let until = a.cooldown_until().filter(|u| *u > now)?;
            Some(format!(
                "{} until {} ({} left)",
                a.name,
                time::local(until, &tz),
                time::duration(until - now)
            ))
        })
        .collect();
    if !cooling.is_empty() {
        writeln!(
            out,
            "      {} {}",
            style::dim("cooling down:"),
            cooling.join("; ")
        )?;
    }
    Ok(())
}

/// `--with-codex`: run the real `codex exec` (from PATH) through the demo gateway, with a
/// throw-away CODEX_HOME holding a fake login and the routing given as `-c` overrides.
pub async fn drive_real_codex(
    gateway_url: &str,
    token_url: &str,
    data: &std::path::Path,
) -> Result<()> {
    let mut out = anstream::stdout();
    let Some(codex) = find_on_path("codex") else {
        writeln!(
            out,
            "{} --with-codex: no `codex` on PATH; install it with `npm install -g @openai/codex`",
            style::yellow("skipped")
        )?;
        return Ok(());
    };
    writeln!(
        out,
        "{} real Codex ({}) through the gateway: codex exec \"Say hello\"",
        style::bold("[codex]"),
        codex.display()
    )?;
    out.flush()?;
    // A fake login of its own: the gateway puts the chosen account's token on every request.
    // Beside the data dir, not in it (a dir holding auth.json would look like an account).
    let home = data.parent().unwrap_or(data).join("codex-home");
    fsutil::ensure_private_dir(&home)?;
    let auth = std::fs::read_to_string(
        data.join(DEMO_ACCOUNTS[2].name)
            .join(crate::store::AUTH_FILE),
    )
    .context("reading a demo auth.json for the Codex home")?;
    fsutil::write_atomic(
        &home.join("auth.json"),
        auth.as_bytes(),
        fsutil::SECRET_FILE_MODE,
    )?;
    let mut cmd = tokio::process::Command::new(&codex);
    cmd.args(crate::codex::config_edit::cli_overrides(gateway_url))
        .args([
            "exec",
            "--skip-git-repo-check",
            "--sandbox",
            "read-only",
            "Say hello",
        ])
        .env("CODEX_HOME", &home)
        .env("CODEX_REFRESH_TOKEN_URL_OVERRIDE", token_url)
        .current_dir(data)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .context("codex did not finish within 90 s")?
        .with_context(|| format!("could not run {}", codex.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        writeln!(out, "      codex> {line}")?;
    }
    writeln!(
        out,
        "      codex exited with {}\n",
        output.status.code().unwrap_or(-1)
    )?;
    Ok(())
}

fn find_on_path(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
