//! Who the gateway asks the usage endpoint about next, and when. Pure.
//!
//! The gateway polls idle accounts one at a time (`--usage-poll SECONDS`): an account is due one
//! interval after whatever told us its usage last (live traffic, a stream event, an earlier poll,
//! a failed poll), never while it needs a login, and not for [`AUTH_BACKOFF_MS`] after the
//! endpoint refused its credentials (401/403). Polls of different accounts are spread across the
//! interval (`interval / accounts`, with jitter), so the backend sees a trickle, never a burst.
//! Reading the endpoint does not start a usage window; nothing here ever sends a model call.

/// Back-off after the usage endpoint answered 401 or 403 for an account.
pub const AUTH_BACKOFF_MS: i64 = 5 * 60 * 1000;

/// Below this interval `cao gateway start` warns: each poll is a request the backend sees.
pub const WARN_BELOW_SECONDS: u64 = 60;

/// The default `--usage-poll`.
pub const DEFAULT_INTERVAL_SECONDS: u64 = 300;

/// One account as the poller sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PollAccount<'a> {
    pub name: &'a str,
    /// No usable login: never polled.
    pub needs_login: bool,
    /// When usage was last reported for it by any source (ms since the epoch).
    pub usage_seen_ms: Option<i64>,
    /// When the poller last asked about it (success or not).
    pub polled_ms: Option<i64>,
    /// No poll before this (after a 401/403).
    pub backoff_until_ms: Option<i64>,
}

/// What the poller should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollNext<'a> {
    /// Ask about this account now.
    Poll(&'a str),
    /// Nothing to do before this time (ms since the epoch).
    WaitUntil(i64),
    /// No account can be polled at all (none, or all need a login).
    Idle,
}

/// The knobs and the moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PollParams {
    pub interval_ms: i64,
    pub now_ms: i64,
    /// When the poller last asked about any account.
    pub last_poll_ms: Option<i64>,
    /// A random number in `[0, 1)`: the spacing between two polls is 75..125 % of
    /// `interval / accounts`.
    pub jitter: f64,
}

/// When `a` is due: one interval after the latest news about it, or after its back-off.
pub fn due_at(a: &PollAccount<'_>, interval_ms: i64) -> i64 {
    let news = a.usage_seen_ms.max(a.polled_ms);
    let due = news.map_or(i64::MIN, |t| t.saturating_add(interval_ms));
    due.max(a.backoff_until_ms.unwrap_or(i64::MIN))
}

/// The next poll: the account due first (ties: pool order), once the spacing since the last
/// poll of any account has passed.
pub fn next<'a>(accounts: &[PollAccount<'a>], p: &PollParams) -> PollNext<'a> {
    let pollable: Vec<&PollAccount<'a>> = accounts.iter().filter(|a| !a.needs_login).collect();
    let Some(first) = pollable
        .iter()
        .min_by_key(|a| due_at(a, p.interval_ms))
        .copied()
    else {
        return PollNext::Idle;
    };
    let jitter = p.jitter.clamp(0.0, 1.0);
    let spacing = (p.interval_ms as f64 / pollable.len() as f64 * (0.75 + 0.5 * jitter)) as i64;
    let spaced = p
        .last_poll_ms
        .map_or(i64::MIN, |t| t.saturating_add(spacing));
    let at = due_at(first, p.interval_ms).max(spaced);
    if at <= p.now_ms {
        PollNext::Poll(first.name)
    } else {
        PollNext::WaitUntil(at)
    }
}

/// What a poll's answer means for the next ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollOutcome {
    /// Usage read.
    Ok,
    /// The endpoint refused the credentials (401/403, also after a token refresh).
    AuthRefused,
    /// Anything else (network, 5xx, a deactivated account, junk): try again next interval.
    Failed,
}

/// The back-off to set after `outcome` at `now_ms`.
pub fn backoff_after(outcome: PollOutcome, now_ms: i64) -> Option<i64> {
    (outcome == PollOutcome::AuthRefused).then(|| now_ms.saturating_add(AUTH_BACKOFF_MS))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;
    const MIN: i64 = 60_000;

    fn acct(name: &str) -> PollAccount<'_> {
        PollAccount {
            name,
            ..Default::default()
        }
    }

    fn params(last: Option<i64>) -> PollParams {
        PollParams {
            interval_ms: 5 * MIN,
            now_ms: NOW,
            last_poll_ms: last,
            jitter: 0.5,
        }
    }

    #[test]
    fn never_seen_accounts_are_polled_first_in_pool_order() {
        let a = [acct("a"), acct("b")];
        assert_eq!(next(&a, &params(None)), PollNext::Poll("a"));
    }

    #[test]
    fn polls_are_spread_across_the_interval() {
        // Three accounts, 5 minutes: one poll every 100 s (75..125 s with jitter).
        let mut a = [acct("a"), acct("b"), acct("c")];
        a[0].polled_ms = Some(NOW);
        let p = PollParams {
            now_ms: NOW + 1,
            ..params(Some(NOW))
        };
        assert_eq!(next(&a, &p), PollNext::WaitUntil(NOW + 100_000));
        let early = PollParams { jitter: 0.0, ..p };
        assert_eq!(next(&a, &early), PollNext::WaitUntil(NOW + 75_000));
        let late = PollParams { jitter: 1.0, ..p };
        assert_eq!(next(&a, &late), PollNext::WaitUntil(NOW + 125_000));
        let later = PollParams {
            now_ms: NOW + 100_000,
            ..p
        };
        assert_eq!(next(&a, &later), PollNext::Poll("b"));
    }

    #[test]
    fn live_usage_within_the_interval_means_no_poll() {
        let mut a = [acct("a")];
        a[0].usage_seen_ms = Some(NOW - MIN);
        assert_eq!(next(&a, &params(None)), PollNext::WaitUntil(NOW + 4 * MIN));
        a[0].usage_seen_ms = Some(NOW - 5 * MIN);
        assert_eq!(next(&a, &params(None)), PollNext::Poll("a"));
    }

    #[test]
    fn at_most_once_per_account_per_interval() {
        let mut a = [acct("a"), acct("b")];
        a[0].polled_ms = Some(NOW - 4 * MIN);
        a[1].polled_ms = Some(NOW - 3 * MIN);
        assert_eq!(
            next(&a, &params(Some(NOW - 3 * MIN))),
            PollNext::WaitUntil(NOW + MIN)
        );
    }

    #[test]
    fn needs_login_is_skipped_and_alone_is_idle() {
        let mut a = [acct("a"), acct("b")];
        a[0].needs_login = true;
        assert_eq!(next(&a, &params(None)), PollNext::Poll("b"));
        a[1].needs_login = true;
        assert_eq!(next(&a, &params(None)), PollNext::Idle);
        assert_eq!(next(&[], &params(None)), PollNext::Idle);
    }

    #[test]
    fn auth_refusals_back_off_five_minutes() {
        assert_eq!(
            backoff_after(PollOutcome::AuthRefused, NOW),
            Some(NOW + 5 * MIN)
        );
        assert_eq!(backoff_after(PollOutcome::Failed, NOW), None);
        assert_eq!(backoff_after(PollOutcome::Ok, NOW), None);
        // A 1-second interval does not shorten the back-off.
        let mut a = [acct("a"), acct("b")];
        a[0].polled_ms = Some(NOW - 2_000);
        a[0].backoff_until_ms = Some(NOW + 5 * MIN - 2_000);
        let p = PollParams {
            interval_ms: 1_000,
            ..params(Some(NOW - 2_000))
        };
        assert_eq!(next(&a, &p), PollNext::Poll("b"));
        a[1].polled_ms = Some(NOW);
        let p = PollParams {
            now_ms: NOW + 2_000,
            last_poll_ms: Some(NOW),
            ..p
        };
        assert_eq!(next(&a, &p), PollNext::Poll("b"));
    }
}
