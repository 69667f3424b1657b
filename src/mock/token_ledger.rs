//! The strict token endpoint's memory ([`Ledger`]) and what it records of each presented
//! refresh token ([`Presented`], [`Verdict`]). Plain data: the handler in `token.rs` decides.

use std::collections::{HashMap, HashSet};

/// What the strict endpoint made of one presented refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Live token: rotated (spent), new tokens answered (maybe in a faulty 2xx).
    Rotated,
    /// The token had been spent before: reuse, the family is now revoked.
    Reused,
    /// The token's family was revoked earlier.
    Revoked,
    /// An injected error answer (the token is not spent).
    Refused,
    /// No refresh token, or not one this mock can attribute to an account.
    Unknown,
}

/// One refresh token presented to the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    pub token: String,
    pub account: Option<String>,
    pub verdict: Verdict,
    /// The status answered.
    pub status: u16,
    /// The `user-agent`, `originator` headers and the body's `refresh_reason`, as sent.
    pub user_agent: Option<String>,
    pub originator: Option<String>,
    pub refresh_reason: Option<String>,
}

/// The endpoint's memory: which tokens are spent, which families revoked.
#[derive(Default)]
pub(super) struct Ledger {
    pub spent: HashSet<String>,
    pub revoked: HashSet<String>,
    pub presented: Vec<Presented>,
    pub refreshes: HashMap<String, u32>,
    /// Injected faults fired so far, per account (for `refresh_fault_times`).
    pub faults_fired: HashMap<String, u32>,
    pub issued_access_tokens: HashSet<String>,
    pub next_seq: u64,
}

impl Ledger {
    /// Forget the fault counters (when a test replaces the faults).
    pub fn reset_faults(&mut self, account: Option<&str>) {
        match account {
            Some(a) => {
                self.faults_fired.remove(a);
            }
            None => self.faults_fired.clear(),
        }
    }
}
