//! When the gateway's private CA and its server certificate (the leaf) are made again.
//!
//! Pure: validity times come in as milliseconds since the epoch, and so does `now`. The files
//! and the signing live in `gateway::tls`.

/// One day in milliseconds.
pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// How long a new CA is valid. Codex trusts it through the bundle (`CODEX_CA_CERTIFICATE`), so a
/// new CA means every Codex must be started again; it is made rarely.
pub const CA_LIFETIME_DAYS: i64 = 10 * 365;
/// A CA with less than this left is replaced (and with it the leaf and the bundle).
pub const CA_RENEW_BEFORE_DAYS: i64 = 365;

/// How long a new leaf is valid.
pub const LEAF_LIFETIME_DAYS: i64 = 180;
/// A leaf with less than this left is renewed: at every gateway start, by a running gateway
/// (checked hourly), and by `gateway enable` / `run --gateway`. Well before expiry, so a gateway
/// left running for weeks never serves an expired certificate.
pub const LEAF_RENEW_BEFORE_DAYS: i64 = 60;
/// `status --doctor` warns when the leaf has less than this left: it should have been renewed a
/// month earlier, so something stops cao from renewing it (a read-only data dir, no gateway
/// started for months with a stale one still running).
pub const LEAF_WARN_BEFORE_DAYS: i64 = 30;

/// How a stored certificate should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertAction {
    /// Valid long enough: use it.
    Keep,
    /// Not yet valid, expired, or too close to expiry: make a new one.
    Renew,
}

/// Should a certificate valid from `not_before_ms` to `not_after_ms` be renewed at `now_ms`,
/// given that it must have at least `renew_before_days` left?
pub fn renewal(
    not_before_ms: i64,
    not_after_ms: i64,
    renew_before_days: i64,
    now_ms: i64,
) -> CertAction {
    // A clock set back (or a file from the future) makes a not-yet-valid certificate that no
    // client accepts: renew it too.
    if now_ms < not_before_ms || not_after_ms.saturating_sub(now_ms) < renew_before_days * DAY_MS {
        CertAction::Renew
    } else {
        CertAction::Keep
    }
}

/// The validity window of a certificate made at `now_ms` for `lifetime_days`. It starts an hour
/// early, so a client whose clock runs a little behind still accepts it.
pub fn validity(lifetime_days: i64, now_ms: i64) -> (i64, i64) {
    let start = now_ms - 60 * 60 * 1000;
    (start, now_ms + lifetime_days * DAY_MS)
}

/// True when the leaf (valid until `not_after_ms`) is close enough to expiry for a warning.
pub fn leaf_expiring(not_after_ms: i64, now_ms: i64) -> bool {
    not_after_ms.saturating_sub(now_ms) < LEAF_WARN_BEFORE_DAYS * DAY_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn a_fresh_leaf_is_kept_and_renewed_well_before_expiry() {
        let (from, until) = validity(LEAF_LIFETIME_DAYS, NOW);
        assert!(from < NOW);
        assert_eq!(
            renewal(from, until, LEAF_RENEW_BEFORE_DAYS, NOW),
            CertAction::Keep
        );
        // 121 days later it still has 59 days left: renewed, a month before doctor would warn.
        let later = NOW + 121 * DAY_MS;
        assert_eq!(
            renewal(from, until, LEAF_RENEW_BEFORE_DAYS, later),
            CertAction::Renew
        );
        assert!(!leaf_expiring(until, later));
        assert!(leaf_expiring(until, NOW + 151 * DAY_MS));
    }

    #[test]
    fn expired_and_not_yet_valid_certificates_are_renewed() {
        let (from, until) = validity(LEAF_LIFETIME_DAYS, NOW);
        assert_eq!(
            renewal(from, until, LEAF_RENEW_BEFORE_DAYS, until + 1),
            CertAction::Renew
        );
        assert_eq!(
            renewal(from, until, LEAF_RENEW_BEFORE_DAYS, from - DAY_MS),
            CertAction::Renew
        );
        assert!(leaf_expiring(until, until + 1));
    }

    #[test]
    fn the_ca_lives_years_and_is_replaced_a_year_before_it_ends() {
        let (from, until) = validity(CA_LIFETIME_DAYS, NOW);
        assert_eq!(
            renewal(from, until, CA_RENEW_BEFORE_DAYS, NOW + 8 * 365 * DAY_MS),
            CertAction::Keep
        );
        assert_eq!(
            renewal(
                from,
                until,
                CA_RENEW_BEFORE_DAYS,
                NOW + 9 * 365 * DAY_MS + DAY_MS
            ),
            CertAction::Renew
        );
    }
}
