//! What an upstream answer means and what the gateway does next. Pure: the clock comes in as
//! `now_ms`, randomness as `jitter_ms`.

use serde_json::{Value, json};

/// How long an account rests after 401/403 that a refresh did not fix (a brief cooldown, so a
/// broken login does not eat every request, yet recovers quickly after a re-login).
pub const AUTH_FAILURE_COOLDOWN_MS: i64 = 60_000;

/// How long a spent account rests when no reset time is known: 15 minutes, the TypeScript
/// tool's default (`--cooldown-seconds` for the gateway; `cao run` uses it too).
pub const DEFAULT_COOLDOWN_S: u64 = 15 * 60;

/// The meaning of one upstream answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Anything to hand to the client as is (2xx, 3xx, 4xx other than below).
    Pass,
    /// 429 `usage_limit_reached`: the account is spent until the reset (ms since epoch), if known.
    UsageLimit { resets_at_ms: Option<i64> },
    /// Any other 429: a short rate limit; try another account, no long cooldown.
    RateLimited,
    /// 401/403: the token is not accepted.
    AuthFailed,
    /// 5xx: retry with backoff, then report as sent.
    ServerError,
}

/// Whether an answer with this status may be retried or replayed (so its body must be kept
/// until the decision is made).
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 401 | 403 | 429) || (500..600).contains(&status)
}

/// Classify an upstream answer. `body` is the (bounded) body of a 429 (the only status whose body
/// the classification reads).
pub fn classify(status: u16, body: Option<&[u8]>, now_ms: i64) -> Outcome {
    match status {
        429 => {
            let err = body
                .and_then(|b| serde_json::from_slice::<Value>(b).ok())
                .and_then(|v| v.get("error").cloned());
            let kind = err
                .as_ref()
                .and_then(|e| e.get("type").or_else(|| e.get("code")))
                .and_then(Value::as_str);
            if kind == Some("usage_limit_reached") {
                Outcome::UsageLimit {
                    resets_at_ms: err.as_ref().and_then(|e| reset_ms(e, now_ms)),
                }
            } else {
                Outcome::RateLimited
            }
        }
        401 | 403 => Outcome::AuthFailed,
        500..=599 => Outcome::ServerError,
        _ => Outcome::Pass,
    }
}

/// `resets_at` (unix seconds), else `now + resets_in_seconds`, as ms; `None` if neither is a
/// sane number.
fn reset_ms(err: &Value, now_ms: i64) -> Option<i64> {
    let num = |k: &str| err.get(k).and_then(Value::as_f64).filter(|f| f.is_finite());
    if let Some(at) = num("resets_at").filter(|s| *s > 0.0 && *s < 1.0e11) {
        return Some((at * 1000.0) as i64);
    }
    num("resets_in_seconds")
        .filter(|s| *s >= 0.0 && *s < 1.0e9)
        .map(|s| now_ms + (s * 1000.0) as i64)
}

/// Until when a spent account cools: the reported reset if it is in the future, else
/// `default_cooldown_s` from now.
pub fn usage_cooldown_until(
    resets_at_ms: Option<i64>,
    now_ms: i64,
    default_cooldown_s: u64,
) -> i64 {
    match resets_at_ms {
        Some(r) if r > now_ms => r,
        _ => now_ms.saturating_add((default_cooldown_s as i64).saturating_mul(1000)),
    }
}

/// What to do after an answer, given how far this request has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Hand this answer to the client.
    Deliver,
    /// Retry the same account after `delay_ms` (5xx / connection error).
    RetrySame { delay_ms: u64 },
    /// Refresh this account's token once, then retry it.
    RefreshAndRetry,
    /// Put the account in cooldown until `until_ms` (if any) and try the next account.
    NextAccount { cooldown_until_ms: Option<i64> },
}

/// Retry settings (from the gateway config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub retries: u32,
    pub base_ms: u64,
    pub max_ms: u64,
    pub default_cooldown_s: u64,
}

/// Per-account progress within one client request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attempt {
    /// 5xx/connection-error retries already spent on this account.
    pub retries_used: u32,
    /// Whether the token was already refreshed for this account in this request.
    pub refreshed: bool,
}

/// Decide the next step. `outcome` is `None` for a connection error (no answer at all).
pub fn next_step(
    outcome: Option<&Outcome>,
    attempt: Attempt,
    policy: &RetryPolicy,
    now_ms: i64,
    jitter_ms: u64,
) -> Next {
    match outcome {
        Some(Outcome::Pass) => Next::Deliver,
        Some(Outcome::UsageLimit { resets_at_ms }) => Next::NextAccount {
            cooldown_until_ms: Some(usage_cooldown_until(
                *resets_at_ms,
                now_ms,
                policy.default_cooldown_s,
            )),
        },
        Some(Outcome::RateLimited) => Next::NextAccount {
            cooldown_until_ms: None,
        },
        Some(Outcome::AuthFailed) if !attempt.refreshed => Next::RefreshAndRetry,
        Some(Outcome::AuthFailed) => Next::NextAccount {
            cooldown_until_ms: Some(now_ms + AUTH_FAILURE_COOLDOWN_MS),
        },
        Some(Outcome::ServerError) | None if attempt.retries_used < policy.retries => {
            Next::RetrySame {
                delay_ms: backoff_ms(
                    attempt.retries_used,
                    policy.base_ms,
                    policy.max_ms,
                    jitter_ms,
                ),
            }
        }
        Some(Outcome::ServerError) | None => Next::Deliver,
    }
}

/// Exponential backoff: `base * 2^retry`, capped at `max`, plus jitter.
pub fn backoff_ms(retry: u32, base_ms: u64, max_ms: u64, jitter_ms: u64) -> u64 {
    if base_ms == 0 {
        return jitter_ms;
    }
    let exp = base_ms.saturating_mul(1u64 << retry.min(32));
    exp.min(max_ms).saturating_add(jitter_ms)
}

/// The body the gateway answers when every account is spent: the same shape upstream uses for
/// one spent account, so Codex shows its usual usage-limit message with the earliest reset.
pub fn all_spent_body(
    earliest_reset_ms: Option<i64>,
    now_ms: i64,
    default_cooldown_s: u64,
) -> Value {
    let reset_ms = earliest_reset_ms
        .filter(|r| *r > now_ms)
        .unwrap_or(now_ms + (default_cooldown_s as i64) * 1000);
    let resets_at = (reset_ms + 999) / 1000;
    let resets_in = ((reset_ms - now_ms).max(0) + 999) / 1000;
    json!({
        "error": {
            "type": "usage_limit_reached",
            "message": "The usage limit has been reached on every account cao manages",
            "resets_at": resets_at,
            "resets_in_seconds": resets_in,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;
    const P: RetryPolicy = RetryPolicy {
        retries: 2,
        base_ms: 200,
        max_ms: 2000,
        default_cooldown_s: 900,
    };

    fn body(v: Value) -> Vec<u8> {
        v.to_string().into_bytes()
    }

    #[test]
    fn usage_limit_prefers_resets_at_then_resets_in() {
        let b = body(
            json!({"error": {"type": "usage_limit_reached", "resets_at": 1_800_000_600, "resets_in_seconds": 5}}),
        );
        assert_eq!(
            classify(429, Some(&b), NOW),
            Outcome::UsageLimit {
                resets_at_ms: Some(1_800_000_600_000)
            }
        );
        let b = body(json!({"error": {"type": "usage_limit_reached", "resets_in_seconds": 30}}));
        assert_eq!(
            classify(429, Some(&b), NOW),
            Outcome::UsageLimit {
                resets_at_ms: Some(NOW + 30_000)
            }
        );
        let b = body(json!({"error": {"type": "usage_limit_reached"}}));
        assert_eq!(
            classify(429, Some(&b), NOW),
            Outcome::UsageLimit { resets_at_ms: None }
        );
    }

    #[test]
    fn other_429s_are_short_rate_limits() {
        let b = body(json!({"error": {"type": "rate_limit_exceeded"}}));
        assert_eq!(classify(429, Some(&b), NOW), Outcome::RateLimited);
        assert_eq!(classify(429, Some(b"not json"), NOW), Outcome::RateLimited);
        assert_eq!(classify(429, None, NOW), Outcome::RateLimited);
    }

    #[test]
    fn statuses_map_to_outcomes() {
        assert_eq!(classify(200, None, NOW), Outcome::Pass);
        assert_eq!(classify(404, None, NOW), Outcome::Pass);
        assert_eq!(classify(401, None, NOW), Outcome::AuthFailed);
        assert_eq!(classify(403, None, NOW), Outcome::AuthFailed);
        assert_eq!(classify(503, None, NOW), Outcome::ServerError);
        assert!(is_retryable_status(502) && !is_retryable_status(400));
    }

    #[test]
    fn cooldown_uses_reset_unless_in_the_past() {
        assert_eq!(usage_cooldown_until(Some(NOW + 5), NOW, 900), NOW + 5);
        assert_eq!(usage_cooldown_until(Some(NOW - 5), NOW, 900), NOW + 900_000);
        assert_eq!(usage_cooldown_until(None, NOW, 0), NOW);
    }

    #[test]
    fn decisions_follow_the_rules() {
        let a = Attempt::default();
        assert_eq!(
            next_step(Some(&Outcome::Pass), a, &P, NOW, 0),
            Next::Deliver
        );
        assert_eq!(
            next_step(
                Some(&Outcome::UsageLimit { resets_at_ms: None }),
                a,
                &P,
                NOW,
                0
            ),
            Next::NextAccount {
                cooldown_until_ms: Some(NOW + 900_000)
            }
        );
        assert_eq!(
            next_step(Some(&Outcome::RateLimited), a, &P, NOW, 0),
            Next::NextAccount {
                cooldown_until_ms: None
            }
        );
        assert_eq!(
            next_step(Some(&Outcome::AuthFailed), a, &P, NOW, 0),
            Next::RefreshAndRetry
        );
        let refreshed = Attempt {
            refreshed: true,
            ..a
        };
        assert_eq!(
            next_step(Some(&Outcome::AuthFailed), refreshed, &P, NOW, 0),
            Next::NextAccount {
                cooldown_until_ms: Some(NOW + AUTH_FAILURE_COOLDOWN_MS)
            }
        );
        assert_eq!(
            next_step(None, a, &P, NOW, 7),
            Next::RetrySame { delay_ms: 207 }
        );
        let spent = Attempt {
            retries_used: 2,
            ..a
        };
        assert_eq!(
            next_step(Some(&Outcome::ServerError), spent, &P, NOW, 0),
            Next::Deliver
        );
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff_ms(0, 200, 2000, 0), 200);
        assert_eq!(backoff_ms(1, 200, 2000, 0), 400);
        assert_eq!(backoff_ms(5, 200, 2000, 10), 2010);
        assert_eq!(backoff_ms(60, 200, 2000, 0), 2000);
        assert_eq!(backoff_ms(3, 0, 2000, 5), 5);
    }

    #[test]
    fn all_spent_body_looks_like_upstreams() {
        let v = all_spent_body(Some(NOW + 90_500), NOW, 900);
        assert_eq!(v["error"]["type"], "usage_limit_reached");
        assert_eq!(v["error"]["resets_in_seconds"], 91);
        assert_eq!(v["error"]["resets_at"], 1_800_000_091);
        let v = all_spent_body(None, NOW, 60);
        assert_eq!(v["error"]["resets_in_seconds"], 60);
    }
}
