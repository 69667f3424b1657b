//! Which token set an account converges on when several gateways share it (`--state`): this
//! replica's auth.json, or the set published in the shared state.
//!
//! Every refresh token that stopped being the account's current one was first *retired* in the
//! shared state (marked "being spent" before it was sent, or "replaced" when a new login was
//! published over it). So a set whose refresh token is retired is never the one to keep, and a
//! set nobody retired that differs from the published one is news: a new login on this replica,
//! or tokens this replica rotated and saved while the shared state was unreachable.

/// One side of the comparison: a token set, known by its refresh token's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side<'a> {
    pub fp: &'a str,
    /// The shared state holds a "being spent" or "replaced" mark for this refresh token.
    pub retired: bool,
    /// `iat` of the set's access token (seconds), when it says.
    pub issued_at: Option<i64>,
}

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    /// Neither side has a login.
    Nothing,
    /// Both hold the same set. `clear_local_mark`: this replica marked the token as being spent
    /// in its own ledger, but the shared mark was never set, so it was never sent.
    Same { clear_local_mark: bool },
    /// The current refresh token may have been spent by a holder whose answer was lost: it must
    /// never be sent again (the account needs a new login).
    Interrupted,
    /// Write the published set into this replica's auth.json. `spent`: its refresh token is
    /// retired too (then the account needs a new login after adopting).
    Adopt { spent: bool },
    /// Publish this replica's set. `first`: nothing is published yet; else the published set is
    /// replaced (retire it first).
    Publish { first: bool },
}

/// Decide between this replica's set and the published one. `local_interrupted`: this
/// replica's own ledger says its current refresh token was being spent when a process died.
pub fn reconcile(
    local: Option<&Side<'_>>,
    local_interrupted: bool,
    published: Option<&Side<'_>>,
) -> Sync {
    match (local, published) {
        (None, None) => Sync::Nothing,
        (Some(l), None) if l.retired || local_interrupted => Sync::Interrupted,
        (Some(_), None) => Sync::Publish { first: true },
        (None, Some(p)) => Sync::Adopt { spent: p.retired },
        (Some(l), Some(p)) if l.fp == p.fp => {
            if p.retired {
                Sync::Interrupted
            } else {
                Sync::Same {
                    clear_local_mark: local_interrupted,
                }
            }
        }
        (Some(l), Some(p)) => {
            if l.retired {
                Sync::Adopt { spent: p.retired }
            } else if p.retired {
                Sync::Publish { first: false }
            } else {
                match (l.issued_at, p.issued_at) {
                    (Some(li), Some(pi)) if li > pi => Sync::Publish { first: false },
                    (Some(_), None) => Sync::Publish { first: false },
                    // The published set is the authority when nothing says ours is newer.
                    _ => Sync::Adopt { spent: false },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(fp: &str, retired: bool, issued_at: Option<i64>) -> Side<'_> {
        Side {
            fp,
            retired,
            issued_at,
        }
    }

    #[test]
    fn the_first_replica_publishes_unless_its_token_may_be_spent() {
        assert_eq!(reconcile(None, false, None), Sync::Nothing);
        let l = side("a", false, None);
        assert_eq!(
            reconcile(Some(&l), false, None),
            Sync::Publish { first: true }
        );
        assert_eq!(reconcile(Some(&l), true, None), Sync::Interrupted);
        let spent = side("a", true, None);
        assert_eq!(reconcile(Some(&spent), false, None), Sync::Interrupted);
    }

    #[test]
    fn the_same_set_is_in_sync_unless_a_holder_died_spending_it() {
        let l = side("a", false, None);
        assert_eq!(
            reconcile(Some(&l), false, Some(&side("a", false, None))),
            Sync::Same {
                clear_local_mark: false
            }
        );
        // Our ledger's mark without a shared one: killed before the shared mark, never sent.
        assert_eq!(
            reconcile(Some(&l), true, Some(&side("a", false, None))),
            Sync::Same {
                clear_local_mark: true
            }
        );
        let marked = side("a", true, None);
        assert_eq!(
            reconcile(Some(&marked), false, Some(&marked)),
            Sync::Interrupted
        );
    }

    #[test]
    fn a_retired_local_copy_adopts_the_published_set() {
        let old = side("a", true, Some(10));
        let p = side("b", false, Some(5));
        assert_eq!(
            reconcile(Some(&old), false, Some(&p)),
            Sync::Adopt { spent: false }
        );
        let p_spent = side("b", true, None);
        assert_eq!(
            reconcile(Some(&old), false, Some(&p_spent)),
            Sync::Adopt { spent: true }
        );
        assert_eq!(
            reconcile(None, false, Some(&p)),
            Sync::Adopt { spent: false }
        );
    }

    #[test]
    fn a_set_nobody_retired_replaces_a_retired_published_one() {
        // Saved here while the shared state was unreachable: the published token was spent.
        let ours = side("b", false, None);
        let p = side("a", true, None);
        assert_eq!(
            reconcile(Some(&ours), false, Some(&p)),
            Sync::Publish { first: false }
        );
    }

    #[test]
    fn between_two_live_sets_the_newer_login_wins_and_the_published_one_breaks_ties() {
        let p = side("a", false, Some(100));
        assert_eq!(
            reconcile(Some(&side("b", false, Some(200))), false, Some(&p)),
            Sync::Publish { first: false }
        );
        assert_eq!(
            reconcile(Some(&side("b", false, Some(50))), false, Some(&p)),
            Sync::Adopt { spent: false }
        );
        assert_eq!(
            reconcile(Some(&side("b", false, None)), false, Some(&p)),
            Sync::Adopt { spent: false }
        );
        assert_eq!(
            reconcile(
                Some(&side("b", false, Some(1))),
                false,
                Some(&side("a", false, None))
            ),
            Sync::Publish { first: false }
        );
    }
}
