use super::*;
use crate::usage::{UsageSource, newest_wins};
use crate::usage_history::MAX_SAMPLES;

const NOW: i64 = 1_800_000_000_000;

/// Record what `windows` say, as a snapshot does.
fn record(history: &mut Vec<UsageSeries>, windows: &[UsageWindow], at_ms: i64) {
    let points = windows
        .iter()
        .map(|w| (w.family.as_str(), w.slot.as_str(), w.used_percent));
    crate::usage_history::record(history, points, at_ms);
}
const MIN: i64 = 60_000;

fn w(slot: &str, used: f64, minutes: i64, reset_in_ms: Option<i64>) -> UsageWindow {
    UsageWindow {
        family: "codex".into(),
        slot: slot.into(),
        label: None,
        used_percent: used,
        window_minutes: Some(minutes),
        resets_at_ms: reset_in_ms.map(|r| NOW + r),
    }
}

/// A synthetic series: `points` (minutes before NOW, used %) of the 5-hour window, plus a
/// weekly window at `weekly` %, folded in through the one model's merge.
fn account(points: &[(i64, f64)], weekly: f64) -> UsageSnapshot {
    let mut known: Option<UsageSnapshot> = None;
    for (ago, used) in points {
        let snap = UsageSnapshot {
            windows: vec![
                w("primary", *used, 300, Some(4 * 60 * MIN)),
                w("secondary", weekly, 10_080, Some(3 * 24 * 60 * MIN)),
            ],
            credits: None,
            plan_type: None,
            limit_reached: None,
            seen_at_ms: NOW - ago * MIN,
            source: UsageSource::Endpoint,
            history: Vec::new(),
        };
        newest_wins(&mut known, snap);
    }
    known.unwrap_or_else(|| unreachable!())
}

#[test]
fn the_series_is_bounded_and_coalesces_close_points() {
    let mut h = Vec::new();
    for i in 0..200 {
        record(
            &mut h,
            &[w("primary", i as f64 / 4.0, 300, None)],
            NOW + i * MIN,
        );
    }
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].samples.len(), MAX_SAMPLES);
    assert_eq!(h[0].samples.last().map(|s| s.at_ms), Some(NOW + 199 * MIN));
    // Points seconds apart replace the newest one.
    let mut h = Vec::new();
    for i in 0..10 {
        record(
            &mut h,
            &[w("primary", 10.0 + i as f64, 300, None)],
            NOW + i * 1000,
        );
    }
    let got: Vec<f64> = h[0].samples.iter().map(|s| s.used_percent).collect();
    assert_eq!(got, [10.0, 19.0]);
}

#[test]
fn a_reset_starts_a_new_series_and_late_points_are_ignored() {
    let mut h = Vec::new();
    record(&mut h, &[w("primary", 80.0, 300, None)], NOW);
    record(&mut h, &[w("primary", 90.0, 300, None)], NOW + 5 * MIN);
    record(&mut h, &[w("primary", 50.0, 300, None)], NOW + MIN);
    assert_eq!(
        h[0].samples.len(),
        2,
        "older than the newest point: dropped"
    );
    record(&mut h, &[w("primary", 3.0, 300, None)], NOW + 10 * MIN);
    assert_eq!(h[0].samples.len(), 1);
    assert_eq!(h[0].samples[0].used_percent, 3.0);
}

#[test]
fn pace_over_the_last_hour() {
    // 10 % an hour for the last hour; older points (a faster pace) do not count.
    let u = account(
        &[(180, 0.0), (90, 30.0), (60, 40.0), (30, 45.0), (0, 50.0)],
        20.0,
    );
    let f = account_forecast(&u, NOW);
    assert_eq!(f[0].pace_per_hour, Some(10.0));
    // 50 % left at 10 %/h: 5 hours, but the window resets in 4: it does not run out.
    assert_eq!(f[0].runs_out_at_ms, None);
    let fast = account(&[(60, 20.0), (0, 60.0)], 20.0);
    let f = account_forecast(&fast, NOW);
    assert_eq!(f[0].pace_per_hour, Some(40.0));
    assert_eq!(f[0].runs_out_at_ms, Some(NOW + 60 * MIN));
    // One point is no pace.
    let once = account(&[(0, 60.0)], 20.0);
    assert_eq!(account_forecast(&once, NOW)[0].pace_per_hour, None);
}

#[test]
fn the_pool_runs_out_when_the_summed_room_is_used_at_the_summed_pace() {
    // a: 60 % used, 40 %/h; b: 30 % used, 20 %/h; c idle at 0 %: 210 points of room at 60/h.
    let a = account(&[(60, 20.0), (0, 60.0)], 50.0);
    let b = account(&[(60, 10.0), (0, 30.0)], 30.0);
    let c = account(&[(30, 0.0), (0, 0.0)], 43.0);
    let p = pool_forecast(&[&a, &b, &c], NOW).unwrap_or_else(|| unreachable!());
    assert_eq!(p.accounts, 3);
    assert_eq!(p.room_percent, 210.0);
    assert_eq!(p.pace_per_hour, 60.0);
    assert_eq!(p.left_ms, Some(210 * MIN));
    assert_eq!(p.weekly_used_percent, Some(41.0));
    // Nothing used in the last hour: no time left to speak of.
    let p = pool_forecast(&[&c], NOW).unwrap_or_else(|| unreachable!());
    assert_eq!(p.left_ms, None);
    assert_eq!(pool_forecast(&[], NOW), None);
}
