//! `cao run`: run Codex with one account's `CODEX_HOME`; when that account's usage limit is hit,
//! run it again with the next one.
//!
//! The order and every fallback decision come from [`crate::policy::run_plan`]; launching and
//! watching Codex from [`crate::codex::launch`]; this file wires them to the data dir and tells
//! the person what is happening on stderr.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use jiff::tz::TimeZone;

use super::Ctx;
use super::run_store::{
    continue_session, ensure_account_config, load_classifier, readable, record_status,
};
use super::say::say;
use crate::cli::RunArgs;
use crate::clock::now_ms;
use crate::codex::launch::{self, Launch};
use crate::codex::scan::{QuotaHit, QuotaWatch};
use crate::codex::session::{Session, latest_session};
use crate::policy::codex_args::{drop_codex_word, is_interactive};
use crate::policy::order::rotation;
use crate::policy::run_plan::{
    self, Attempt, ExitReason, PlanOptions, RunPlan, Step, cooldown_until,
};
use crate::store::status::StatusEvent;
use crate::store::{Store, StoreError};

/// Exit code when the person interrupts a wait (like a shell's 128 + SIGINT).
const INTERRUPTED_EXIT: i32 = 130;

/// `cao run`: Codex runs with `CODEX_REFRESH_TOKEN_URL_OVERRIDE` pointing at a loopback token
/// broker cao serves for the length of the run, so every refresh of an account (Codex's own
/// included) goes through one custodian and no refresh token is spent twice.
pub fn run(ctx: &Ctx, args: RunArgs) -> Result<i32> {
    let broker = crate::gateway::tokens::endpoint::Loopback::start(&ctx.store)?;
    let env = vec![(
        crate::gateway::tokens::endpoint::TOKEN_URL_ENV.to_string(),
        std::ffi::OsString::from(broker.url()),
    )];
    let result = if args.gateway {
        super::run_gateway::run(ctx, args, env)
    } else {
        run_direct(ctx, args, env)
    };
    if broker.in_flight() > 0 {
        say("waiting for a token refresh to finish");
    }
    match (result, broker.stop()) {
        (r, Ok(())) => r,
        (Ok(_), Err(e)) => Err(e),
        (Err(e), Err(rescue)) => {
            say(&format!("{rescue:#}"));
            Err(e)
        }
    }
}

fn run_direct(ctx: &Ctx, args: RunArgs, env: Vec<(String, std::ffi::OsString)>) -> Result<i32> {
    let store = &ctx.store;
    let codex_args = drop_codex_word(&args.codex_args);
    let registry = store.load_registry()?;
    if registry.accounts.is_empty() {
        anyhow::bail!("no accounts registered; add one with `cao add <name>`");
    }
    let mut order: Vec<String> = rotation(&registry.accounts, registry.default_account.as_deref())
        .into_iter()
        .map(str::to_string)
        .collect();
    let statuses = store.load_statuses()?;
    let now = now_ms();
    let mut cooldowns: BTreeMap<String, i64> = statuses
        .statuses
        .iter()
        .filter_map(|(n, s)| s.active_cooldown(now).map(|u| (n.clone(), u)))
        .collect();

    // `--no-fallback` without `--account` means the default account and nothing else.
    let only = args.account.clone().or_else(|| {
        if args.no_fallback {
            registry.default_account.clone()
        } else {
            None
        }
    });
    if let Some(name) = &only {
        store.check_name(name)?;
        if !registry.contains(name) {
            return Err(StoreError::UnknownAccount { name: name.clone() }.into());
        }
        if !store.auth_path(name).is_file() {
            return Err(StoreError::NotLoggedIn { name: name.clone() }.into());
        }
        if let Err(e) = std::fs::File::open(store.auth_path(name)) {
            anyhow::bail!(
                "{}",
                crate::policy::health::no_access_message(
                    &store.auth_path(name).to_string_lossy(),
                    &e.to_string()
                )
            );
        }
        // A named account runs even if cao thinks it is cooling down: the person knows best.
        // With --no-fallback the cooldown holds: cao says so and exits (or waits with --wait).
        if !args.no_fallback
            && let Some(until) = cooldowns.remove(name)
        {
            say(&format!(
                "account {name} hit its usage limit earlier; it should reset {}. Trying it anyway because --account names it.",
                when(until, now)
            ));
        }
        order = vec![name.clone()];
    } else {
        let needs_login = |n: &String| {
            statuses
                .statuses
                .get(n)
                .is_some_and(|s| s.needs_login == Some(true))
        };
        let (ready, skipped): (Vec<String>, Vec<String>) = order
            .into_iter()
            .partition(|n| readable(&store.auth_path(n)) && !needs_login(n));
        for n in &skipped {
            let path = store.auth_path(n);
            if path.is_file() && !readable(&path) {
                say(&format!(
                    "skipping account {n}: {}",
                    crate::policy::health::no_access_message(
                        &path.to_string_lossy(),
                        "permission denied"
                    )
                ));
                continue;
            }
            let why = if needs_login(n) {
                "its token refresh failed for good"
            } else {
                "it has no auth.json"
            };
            say(&format!(
                "skipping account {n}: {why} (log it in again with `cao add {n}`)"
            ));
        }
        if ready.is_empty() {
            anyhow::bail!("no account is logged in; log one in with `cao add <name>`");
        }
        order = ready;
    }

    let classifier = load_classifier(store)?;
    let program = launch::find_codex(&args.codex)?;
    let pty = launch::on_terminal();
    let interactive = pty && is_interactive(&codex_args);
    // The conversation that hit a limit, to continue on the next account.
    let mut carry: Option<Session> = None;
    // The limit messages already in that conversation: a resumed Codex shows them again.
    let mut replayed: Vec<QuotaHit> = Vec::new();
    let mut plan_attempts = 0u32;
    let tz = TimeZone::system();
    launch::catch_signals();

    let mut plan = RunPlan::new(
        order,
        cooldowns,
        PlanOptions {
            fallback: !args.no_fallback,
            wait: args.wait,
            max_passes: args.max_passes,
            retry_delay_ms: i64::try_from(args.retry_delay.saturating_mul(1000))
                .unwrap_or(i64::MAX),
        },
    );
    loop {
        let now = now_ms();
        match plan.next(now) {
            Step::Run { account, skipped } => {
                // Ctrl-C between two runs (while cao itself had the terminal) stops here.
                if launch::take_interrupt() {
                    say("interrupted");
                    return Ok(INTERRUPTED_EXIT);
                }
                for (name, until) in skipped {
                    say(&format!(
                        "skipping account {name}: usage limit, resets {}",
                        when(until, now)
                    ));
                }
                ensure_account_config(store, &account)?;
                let attempt_at = now_ms();
                store.update_account_status(&account, |s| {
                    s.apply(&StatusEvent::Attempted, attempt_at)
                })?;
                say(&format!("using account {account}"));
                if plan_attempts > 0 && crate::codex::stdin_tee::truncated() {
                    say("stdin was larger than 64 MB; this attempt gets only its first 64 MB");
                }
                plan_attempts += 1;
                let args_now = match &carry {
                    Some(session) => continue_session(store, session, &account, &codex_args),
                    None => codex_args.clone(),
                };
                if args_now == codex_args {
                    // A new conversation: nothing is replayed.
                    replayed.clear();
                }
                let launch = Launch {
                    program: program.clone(),
                    args: args_now,
                    codex_home: store.account_dir(&account),
                    pty,
                    env: env.clone(),
                };
                let watch = QuotaWatch::new(classifier.clone(), tz.clone()).ignoring(&replayed);
                let fallback = !args.no_fallback;
                let mut tell = |hit: &QuotaHit, in_pty: bool| {
                    if in_pty && interactive {
                        tell_in_tui(&account, hit, fallback);
                    }
                };
                let outcome = launch::run_once(&launch, watch, &mut tell)?;
                let attempt = run_plan::classify(
                    outcome.code,
                    outcome.interrupted,
                    outcome.quota.as_ref().map(|h| h.reset_at_ms),
                    interactive,
                );
                record_status(store, &account, attempt, outcome.quota.as_ref(), attempt_at)?;
                if let Attempt::Quota { reset_at_ms, .. } = attempt {
                    if let Some(s) = latest_session(&store.account_dir(&account), attempt_at) {
                        carry = Some(s);
                    }
                    replayed.extend(outcome.quota.clone());
                    let reset = cooldown_until(reset_at_ms, now_ms());
                    say(&format!(
                        "account {account} hit its usage limit (resets {})",
                        when(reset, now_ms())
                    ));
                }
                plan.record(&account, attempt, now_ms());
            }
            Step::Sleep { ms } => {
                let who = match &only {
                    Some(name) => format!("account {name}"),
                    None => "every account".to_string(),
                };
                say(&format!(
                    "{who} hit its usage limit; trying again in {}",
                    crate::render::time::duration(ms)
                ));
                if !sleep_interruptibly(ms, None) {
                    return Ok(INTERRUPTED_EXIT);
                }
            }
            Step::Wait { account, until_ms } => {
                say(&format!(
                    "every account is cooling down; waiting for {account}, which resets {} (Ctrl-C to stop)",
                    when(until_ms, now)
                ));
                if !sleep_interruptibly(until_ms - now, Some(&account)) {
                    return Ok(INTERRUPTED_EXIT);
                }
            }
            Step::Exit {
                code,
                reason,
                soonest,
            } => {
                match &only {
                    Some(name) => {
                        let flag = if args.account.is_some() {
                            "--account"
                        } else {
                            "--no-fallback"
                        };
                        explain_single_exit(store, name, flag, reason, soonest, code);
                    }
                    None => explain_exit(reason, soonest, code),
                }
                return Ok(code);
            }
        }
    }
}

/// "at 14:05 (in 2h 3m)" in the system's time zone.
fn when(ms: i64, now: i64) -> String {
    crate::render::time::clock_with_relative(ms, now, &TimeZone::system())
}

/// Tell the person inside the Codex UI (raw mode: `\r\n`, cursor saved and restored so the UI is
/// disturbed as little as possible) that cao will move on when they leave.
fn tell_in_tui(account: &str, hit: &QuotaHit, fallback: bool) {
    let reset = hit
        .reset_at_ms
        .map(|r| format!(" (resets {})", when(r, now_ms())))
        .unwrap_or_default();
    let next = if fallback {
        "leave Codex (/quit or Ctrl-C twice) and cao continues on the next account"
    } else {
        "--no-fallback is set, so cao will not switch accounts"
    };
    let mut err = std::io::stderr();
    let _ = write!(
        err,
        "\x1b7\r\n\x1b[1m[cao]\x1b[0m account {account} hit its usage limit{reset}; {next}.\r\n\x1b8"
    );
    let _ = err.flush();
}

/// Sleep up to `ms`, showing a countdown when `countdown_for` names the account being waited
/// for. Returns false if the person pressed Ctrl-C.
fn sleep_interruptibly(ms: i64, countdown_for: Option<&str>) -> bool {
    use std::io::IsTerminal;
    let end = now_ms() + ms.max(0);
    let live = std::io::stderr().is_terminal();
    let mut last_print: Option<i64> = None;
    loop {
        let now = now_ms();
        if launch::take_interrupt() {
            if live {
                eprintln!();
            }
            say("interrupted");
            return false;
        }
        if now >= end {
            break;
        }
        if let Some(account) = countdown_for {
            // On a terminal redraw every second; in a log once a minute.
            let every = if live { 1_000 } else { 60_000 };
            if last_print.is_none_or(|t| now - t >= every) {
                last_print = Some(now);
                let left = crate::render::time::duration(end - now);
                if live {
                    eprint!("\r\x1b[2K[cao] waiting for {account}: {left} left");
                } else {
                    eprintln!("[cao] waiting for {account}: {left} left");
                }
            }
        }
        std::thread::sleep(
            Duration::from_millis(100)
                .min(Duration::from_millis(u64::try_from(end - now).unwrap_or(0))),
        );
    }
    if countdown_for.is_some() && live {
        eprintln!("\r\x1b[2K[cao] done waiting");
    }
    true
}

/// Why a run limited to one account (`--account` or `--no-fallback`) stopped, and which other
/// accounts are free (never "every account hit its limit" when only one was tried).
fn explain_single_exit(
    store: &Store,
    name: &str,
    flag: &str,
    reason: ExitReason,
    soonest: Option<(String, i64)>,
    code: i32,
) {
    let now = now_ms();
    let free: Vec<String> = store
        .load_registry()
        .map(|r| r.accounts)
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a != name && readable(&store.auth_path(a)))
        .filter(|a| {
            store
                .load_statuses()
                .ok()
                .and_then(|f| f.statuses.get(a).map(|s| s.active_cooldown(now).is_none()))
                .unwrap_or(true)
        })
        .collect();
    let others = if free.is_empty() {
        String::new()
    } else {
        format!(
            " Not cooling: {}; run without {flag} to fall back to {}.",
            free.join(", "),
            if free.len() == 1 { "it" } else { "them" }
        )
    };
    let resets = soonest
        .filter(|(a, _)| a == name)
        .map(|(_, u)| format!(", resets {}", when(u, now)))
        .unwrap_or_default();
    match reason {
        ExitReason::Success | ExitReason::Failed | ExitReason::Interrupted => {}
        ExitReason::QuotaNoFallback | ExitReason::PassesSpent => say(&format!(
            "account {name} hit its usage limit; exiting with codex's status {code}.{others}"
        )),
        ExitReason::AllCooling => say(&format!(
            "account {name} is cooling down after a usage limit{resets}. Run with --wait to wait for it.{others}"
        )),
    }
}

fn explain_exit(reason: ExitReason, soonest: Option<(String, i64)>, code: i32) {
    let now = now_ms();
    let soonest_text = soonest
        .map(|(a, u)| format!("; {a} resets first, {}", when(u, now)))
        .unwrap_or_default();
    match reason {
        ExitReason::Success | ExitReason::Failed | ExitReason::Interrupted => {}
        ExitReason::QuotaNoFallback => say(&format!(
            "usage limit reached and --no-fallback is set; exiting with codex's status {code}"
        )),
        ExitReason::PassesSpent => say(&format!(
            "every account hit its usage limit{soonest_text}. Run again later, or with --wait to wait for it."
        )),
        ExitReason::AllCooling => say(&format!(
            "every account is cooling down after a usage limit{soonest_text}. Run with --wait to wait for it."
        )),
    }
}
