//! The pool forecast line of every `cao status` view:
//! `pool: about 3h 10m left at the last hour's pace; weekly 41 % used`.

use super::time;
use crate::policy::forecast::{PoolForecast, pool_forecast};
use crate::store::inspect::Overview;

/// The forecast over the accounts that can serve (logged in, no new login needed, not cooling).
pub fn pool(o: &Overview, now_ms: i64) -> Option<PoolForecast> {
    let usable: Vec<_> = o
        .accounts
        .iter()
        .filter(|v| v.logged_in() && v.status.needs_login != Some(true))
        .filter(|v| v.status.active_cooldown(now_ms).is_none())
        .filter_map(|v| v.status.usage.as_ref())
        .collect();
    pool_forecast(&usable, now_ms)
}

/// `pool: about 3h 10m left at the last hour's pace; weekly 41 % used`, or nothing when no
/// account's usage is known.
pub fn pool_line(o: &Overview, now_ms: i64) -> Option<String> {
    let p = pool(o, now_ms)?;
    Some(words(&p))
}

/// The words for a pool forecast.
pub fn words(p: &PoolForecast) -> String {
    let mut out = match p.left_ms {
        Some(ms) => format!(
            "pool: about {} left at the last hour's pace",
            time::duration(ms)
        ),
        None => format!(
            "pool: {:.0} % of {} short window{} left; no use in the last hour",
            p.room_percent / p.accounts as f64,
            p.accounts,
            if p.accounts == 1 { "" } else { "s" }
        ),
    };
    if let Some(w) = p.weekly_used_percent {
        out.push_str(&format!("; weekly {w:.0} % used"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_the_issue_says() {
        let p = PoolForecast {
            accounts: 3,
            room_percent: 190.0,
            pace_per_hour: 60.0,
            left_ms: Some((3 * 60 + 10) * 60_000),
            weekly_used_percent: Some(41.2),
        };
        assert_eq!(
            words(&p),
            "pool: about 3h 10m left at the last hour's pace; weekly 41 % used"
        );
        let idle = PoolForecast {
            left_ms: None,
            weekly_used_percent: None,
            ..p
        };
        assert_eq!(
            words(&idle),
            "pool: 63 % of 3 short windows left; no use in the last hour"
        );
    }
}
