//! `cao status` in every mode, and the deprecated `cao doctor` / `cao report`.

use std::io::{IsTerminal, Write};

use anyhow::Result;

use super::Ctx;
use crate::cli::{DoctorArgs, HealthArgs, ReportArgs, ReportFormat, StatusArgs};
use crate::policy::health::GatewayIssue;
use crate::policy::health::HealthOptions;
use crate::render::{RenderOpts, dashboard, doctor, records, report, text};
use crate::store::inspect::Overview;

/// Which view to print. Precedence as in the TypeScript tool: report, doctor, json, compact,
/// full, pretty (or a terminal), compact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Report { format: ReportFormat, private: bool },
    Doctor { json: bool },
    Json,
    Compact,
    Full,
    Pretty,
}

fn mode(a: &StatusArgs, stdout_is_tty: bool) -> Mode {
    if let Some(format) = a.report {
        Mode::Report {
            format,
            private: a.private,
        }
    } else if a.doctor {
        Mode::Doctor { json: a.json }
    } else if a.json {
        Mode::Json
    } else if a.compact {
        Mode::Compact
    } else if a.full || (a.account.is_some() && !a.pretty) {
        // One named account: every detail.
        Mode::Full
    } else if a.pretty || stdout_is_tty {
        Mode::Pretty
    } else {
        Mode::Compact
    }
}

fn health_options(ctx: &Ctx, h: &HealthArgs) -> HealthOptions {
    let options = HealthOptions::new(h.expires_within_hours, h.max_failures);
    match saved_switch_at(ctx) {
        Some(p) => options.with_switch_at(p),
        None => options,
    }
}

/// The gateway's saved `switchAt` (gateway.json), so `usage_high` warns at the threshold the
/// gateway actually routes by. A missing or unreadable file means the default; `cao gateway`
/// reports problems with that file itself.
fn saved_switch_at(ctx: &Ctx) -> Option<f64> {
    ctx.store
        .load_gateway()
        .ok()?
        .switch_at
        .filter(|p| (0.0..=100.0).contains(p))
}

/// Terminal width for the dashboard (88 when stdout is not a terminal, as the TS tool).
fn width(stdout_is_tty: bool) -> usize {
    if stdout_is_tty {
        terminal_width(88)
    } else {
        88
    }
}

/// The terminal's real width in columns, else `fallback` (not a terminal, or unknown).
pub fn terminal_width(fallback: usize) -> usize {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return fallback;
    }
    crossterm::terminal::size()
        .ok()
        .map(|(cols, _)| usize::from(cols))
        .filter(|&c| c > 0)
        .unwrap_or(fallback)
}

/// `cao status`.
pub fn run(ctx: &Ctx, a: &StatusArgs) -> Result<i32> {
    let tty = std::io::stdout().is_terminal();
    if a.watch {
        return super::status_watch::run(ctx, a.interval, &health_options(ctx, &a.health));
    }
    let mode = mode(a, tty);
    if a.refresh {
        super::status_refresh::refresh(ctx, a.base_url.as_deref())?;
    }
    let mut overview = ctx.store.inspect()?;
    if let Some(name) = &a.account {
        overview.accounts.retain(|v| &v.name == name);
        if overview.accounts.is_empty() {
            return Err(crate::store::StoreError::UnknownAccount { name: name.clone() }.into());
        }
    }
    let r = RenderOpts::now(width(tty));
    let gateway = gateway_section(ctx, mode, r.now_ms);
    let (text, code) = render(
        &overview,
        mode,
        &health_options(ctx, &a.health),
        &r,
        &gateway,
    );
    anstream::stdout().write_all(text.as_bytes())?;
    Ok(code)
}

/// Doctor's and the report's gateway section (the HTTPS Codex is routed to); other views
/// leave it out.
fn gateway_section(ctx: &Ctx, mode: Mode, now_ms: i64) -> Vec<GatewayIssue> {
    match mode {
        Mode::Doctor { .. } | Mode::Report { .. } => {
            super::doctor_gateway::issues(&ctx.store, now_ms)
        }
        _ => Vec::new(),
    }
}

/// Render one view; returns the text and the exit code (doctor: 0/1/2, else 0).
fn render(
    o: &Overview,
    mode: Mode,
    opts: &HealthOptions,
    r: &RenderOpts,
    gateway: &[GatewayIssue],
) -> (String, i32) {
    let health = |o: &Overview| {
        let mut h = o.health(opts, r.now_ms);
        h.add_gateway(gateway.to_vec());
        h
    };
    if o.accounts.is_empty() {
        // Machine-readable modes still print valid JSON.
        let empty = match mode {
            Mode::Json => "[]\n".to_string(),
            Mode::Report {
                format: ReportFormat::Json,
                private,
            } => records::report_json(o, r, private),
            Mode::Doctor { json: true } => doctor::json(o, &health(o), opts, r),
            Mode::Doctor { json: false } => {
                text::NO_ACCOUNTS.to_string() + &doctor::gateway_text(&health(o))
            }
            _ => text::NO_ACCOUNTS.to_string(),
        };
        let code = match mode {
            Mode::Doctor { .. } => health(o).exit_code(),
            _ => 0,
        };
        return (empty, code);
    }
    match mode {
        Mode::Json => (records::status_json(o, r), 0),
        Mode::Compact => (text::compact(o, r), 0),
        Mode::Full => (text::full(o, r), 0),
        Mode::Pretty => (dashboard::render(o, &o.health(opts, r.now_ms), r), 0),
        Mode::Report {
            format: ReportFormat::Json,
            private,
        } => (records::report_json(o, r, private), 0),
        Mode::Report {
            format: ReportFormat::Md,
            ..
        } => (report::markdown(o, &health(o), r), 0),
        Mode::Doctor { json } => {
            let h = health(o);
            let out = if json {
                doctor::json(o, &h, opts, r)
            } else {
                doctor::text(o, &h, opts, r.now_ms)
            };
            (out, h.exit_code())
        }
    }
}

/// Deprecated `cao doctor`: same as `cao status --doctor`.
pub fn doctor_deprecated(ctx: &Ctx, a: &DoctorArgs) -> Result<i32> {
    deprecated(
        ctx,
        "doctor",
        Mode::Doctor { json: a.json },
        &health_options(ctx, &a.health),
    )
}

/// Deprecated `cao report`: same as `cao status --report`.
pub fn report_deprecated(ctx: &Ctx, a: &ReportArgs) -> Result<i32> {
    deprecated(
        ctx,
        "report",
        Mode::Report {
            format: a.format,
            private: false,
        },
        &HealthOptions::default(),
    )
}

/// Say that `cao <old>` is deprecated in favour of `cao status --<old>`, then do it.
fn deprecated(ctx: &Ctx, old: &str, mode: Mode, opts: &HealthOptions) -> Result<i32> {
    super::say::warn(&format!(
        "`cao {old}` is deprecated; use `cao status --{old}`"
    ));
    let overview = ctx.store.inspect()?;
    let r = RenderOpts::now(88);
    let gateway = gateway_section(ctx, mode, r.now_ms);
    let (text, code) = render(&overview, mode, opts, &r, &gateway);
    anstream::stdout().write_all(text.as_bytes())?;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn status_args(args: &[&str]) -> StatusArgs {
        let mut argv = vec!["cao", "status"];
        argv.extend_from_slice(args);
        match crate::cli::Cli::parse_from(argv).command {
            crate::cli::Command::Status(a) => a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn mode_precedence() {
        assert_eq!(mode(&status_args(&[]), false), Mode::Compact);
        assert_eq!(mode(&status_args(&[]), true), Mode::Pretty);
        assert_eq!(mode(&status_args(&["--full"]), true), Mode::Full);
        assert_eq!(mode(&status_args(&["work"]), true), Mode::Full);
        assert_eq!(mode(&status_args(&["work", "--json"]), true), Mode::Json);
        assert_eq!(
            mode(&status_args(&["--doctor", "--json"]), false),
            Mode::Doctor { json: true }
        );
        assert_eq!(
            mode(&status_args(&["--report", "json", "--private"]), false),
            Mode::Report {
                format: ReportFormat::Json,
                private: true
            }
        );
    }

    #[test]
    fn conflicting_views_are_usage_errors() {
        for args in [
            &["--json", "--compact"][..],
            &["--doctor", "--report"],
            &["--watch", "--json"],
            &["--interval", "5"],
            &["--compact", "--full"],
            &["--private"],
            &["work", "--doctor"],
        ] {
            let mut argv = vec!["cao", "status"];
            argv.extend_from_slice(args);
            let err = crate::cli::Cli::try_parse_from(argv).err();
            assert!(
                err.as_ref().is_some_and(|e| e.exit_code() == 2),
                "{args:?} should be a usage error"
            );
        }
    }
}
