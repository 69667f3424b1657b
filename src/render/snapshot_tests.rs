//! Snapshot tests of every human view with fixed data and a fixed clock (`cargo insta review`
//! to update after an intended change).

use std::path::PathBuf;

use super::{RenderOpts, dashboard, doctor, records, report, style, text};
use crate::policy::health::HealthOptions;
use crate::store::AccountStatus;
use crate::store::auth_file::Claims;
use crate::store::inspect::{AccountView, AuthView, Overview};

const NOW: i64 = 1_800_000_000_000; // 2027-01-15T08:00:00Z
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

fn view(
    name: &str,
    is_default: bool,
    auth: AuthView,
    exp_ms: Option<i64>,
    status: AccountStatus,
) -> AccountView {
    let logged_in = auth == AuthView::LoggedIn;
    AccountView {
        name: name.to_string(),
        is_default,
        account_dir: PathBuf::from(format!("/data/{name}")),
        auth_path: PathBuf::from(format!("/data/{name}/auth.json")),
        auth,
        claims: if logged_in {
            Claims {
                exp: exp_ms.map(|e| e / 1000),
                iat: None,
                email: Some(format!("{name}@example.com")),
                chatgpt_account_id: Some(format!("acc-{name}")),
                plan_type: Some("plus".into()),
                user_id: None,
                organization_id: Some("org-1".into()),
            }
        } else {
            Claims::default()
        },
        last_refresh_ms: logged_in.then_some(NOW - 3 * 24 * HOUR),
        status,
        auth_mode: Some(0o600),
        has_refresh_token: false,
        held: None,
        shared_with: Vec::new(),
    }
}

fn overview() -> Overview {
    let mut loose = view(
        "loose",
        false,
        AuthView::LoggedIn,
        Some(NOW + 3 * HOUR + 12 * MIN),
        AccountStatus::default(),
    );
    loose.auth_mode = Some(0o644);
    Overview {
        data_dir: PathBuf::from("/data"),
        default_account: Some("work".into()),
        accounts: vec![
            view(
                "work",
                true,
                AuthView::LoggedIn,
                Some(NOW + 9 * 24 * HOUR),
                AccountStatus {
                    last_attempt_at_ms: Some(NOW - 5 * MIN),
                    last_success_at_ms: Some(NOW - 5 * MIN),
                    consecutive_failures: Some(0),
                    ..Default::default()
                },
            ),
            view(
                "spent",
                false,
                AuthView::LoggedIn,
                Some(NOW + 2 * 24 * HOUR),
                AccountStatus {
                    last_attempt_at_ms: Some(NOW - 20 * MIN),
                    last_quota_at_ms: Some(NOW - 20 * MIN),
                    cooldown_until_ms: Some(NOW + 2 * HOUR + 40 * MIN),
                    consecutive_failures: Some(3),
                    last_error: Some("usage_limit_reached".into()),
                    ..Default::default()
                },
            ),
            loose,
            view(
                "expired",
                false,
                AuthView::LoggedIn,
                Some(NOW - HOUR),
                AccountStatus {
                    needs_login: Some(true),
                    ..Default::default()
                },
            ),
            view(
                "new",
                false,
                AuthView::Missing,
                None,
                AccountStatus::default(),
            ),
        ],
    }
}

fn opts() -> RenderOpts {
    RenderOpts {
        now_ms: NOW,
        tz: jiff::tz::TimeZone::UTC,
        width: 100,
    }
}

#[test]
fn dashboard_view() {
    let o = overview();
    let h = o.health(&HealthOptions::default(), NOW);
    insta::assert_snapshot!(style::strip(&dashboard::render(&o, &h, &opts())));
}

#[test]
fn compact_view() {
    insta::assert_snapshot!(text::compact(&overview(), &opts()));
}

#[test]
fn full_view() {
    insta::assert_snapshot!(style::strip(&text::full(&overview(), &opts())));
}

#[test]
fn list_view() {
    insta::assert_snapshot!(text::list(&overview(), NOW));
}

#[test]
fn markdown_report() {
    let o = overview();
    let h = o.health(&HealthOptions::default(), NOW);
    insta::assert_snapshot!(report::markdown(&o, &h, &opts()));
}

#[test]
fn doctor_text_and_json() {
    let o = overview();
    let options = HealthOptions::default();
    let h = o.health(&options, NOW);
    insta::assert_snapshot!(style::strip(&doctor::text(&o, &h, &options, NOW)));
    insta::assert_snapshot!(doctor::json(&o, &h, &options, &opts()));
}

#[test]
fn status_json_record() {
    let o = overview();
    let json = records::status_json(&o, &opts());
    let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
    insta::assert_snapshot!(serde_json::to_string_pretty(&v[1]).unwrap_or_default());
}

#[test]
fn narrow_terminals_get_no_frame_and_wide_ones_a_bounded_one() {
    let o = overview();
    let h = o.health(&HealthOptions::default(), NOW);
    let out = style::strip(&dashboard::render(&o, &h, &at_width(40)));
    assert!(out.lines().all(|l| l.chars().count() <= 40), "{out}");
    assert!(!out.contains('│'), "{out}");
    let out = style::strip(&dashboard::render(&o, &h, &at_width(500)));
    assert!(
        out.lines()
            .all(|l| l.chars().count() == dashboard::MAX_WIDTH),
        "{out}"
    );
}

fn at_width(width: usize) -> RenderOpts {
    RenderOpts { width, ..opts() }
}

/// Every line fits `width` columns (nothing drawn past the edge, nothing cut).
fn assert_fits(text: &str, width: usize) {
    for line in text.lines() {
        assert!(
            line.chars().count() <= width,
            "{} columns > {width}: {line}",
            line.chars().count()
        );
    }
}

#[test]
fn dashboard_at_60_80_and_200_columns() {
    let o = overview();
    let h = o.health(&HealthOptions::default(), NOW);
    for (width, name) in [
        (60, "dashboard_60"),
        (80, "dashboard_80"),
        (200, "dashboard_200"),
    ] {
        let text = style::strip(&dashboard::render(&o, &h, &at_width(width)));
        assert_fits(&text, width);
        // Nothing is cut with an ellipsis: long values wrap.
        assert!(!text.contains('…'), "{text}");
        insta::assert_snapshot!(name, text);
    }
}

#[test]
fn dashboard_with_40_accounts_is_one_row_each_problems_first() {
    let mut accounts = Vec::new();
    for i in 0..40 {
        let mut status = AccountStatus::default();
        if i % 13 == 5 {
            status.cooldown_until_ms = Some(NOW + 2 * HOUR + 3 * MIN);
            status.last_quota_at_ms = Some(NOW - 20 * MIN);
            status.last_error = Some("usage_limit_reached".into());
        }
        let auth = if i == 17 {
            AuthView::Missing
        } else {
            AuthView::LoggedIn
        };
        accounts.push(view(
            &format!("acct-{i:02}"),
            i == 0,
            auth,
            Some(NOW + 5 * 24 * HOUR),
            status,
        ));
    }
    let o = Overview {
        data_dir: PathBuf::from("/data"),
        default_account: Some("acct-00".into()),
        accounts,
    };
    let h = o.health(&HealthOptions::default(), NOW);
    let text = style::strip(&dashboard::render(&o, &h, &at_width(80)));
    assert_fits(&text, 80);
    assert_eq!(
        text.lines().count(),
        40 + 3,
        "a header, column names, 40 rows, a hint"
    );
    let first_rows: Vec<&str> = text.lines().skip(2).take(4).collect();
    assert!(first_rows[0].contains("acct-17"), "problems first: {text}");
    insta::assert_snapshot!(text);
}
