//! The attempt loop of `cao run`, as pure decisions: which account next, when a pass is over,
//! when to give up, when every account is cooling down.
//!
//! The command asks [`RunPlan::next`] what to do, does it (run Codex, sleep, wait, exit), and
//! reports each attempt back with [`RunPlan::record`].

use std::collections::{BTreeMap, BTreeSet};

/// Cooldown after a usage limit when Codex printed no reset time (the gateway's default too).
pub const DEFAULT_COOLDOWN_MS: i64 = super::upstream::DEFAULT_COOLDOWN_S as i64 * 1000;

/// How one Codex run ended, as far as fallback is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Exit 0 and no usage limit: done.
    Success,
    /// The account's usage limit was hit (`reset_at_ms` when Codex said when it resets).
    Quota { code: i32, reset_at_ms: Option<i64> },
    /// Any other failure: Codex's own error, not the account's allowance. No fallback.
    Failed { code: i32 },
    /// The person pressed Ctrl-C (or cao/Codex got SIGTERM): stop, keep Codex's status.
    Interrupted { code: i32 },
}

/// Classify one run. A usage-limit message counts when Codex failed, or when it ran its
/// interactive UI under a PTY (the TUI shows the message, keeps running, and exits 0 when the
/// person leaves). A successful `exec` whose output merely quotes the message is a success.
pub fn classify(
    code: i32,
    interrupted: bool,
    quota_reset: Option<Option<i64>>,
    interactive: bool,
) -> Attempt {
    if interrupted {
        return Attempt::Interrupted { code };
    }
    match quota_reset {
        Some(reset_at_ms) if code != 0 || interactive => Attempt::Quota { code, reset_at_ms },
        _ if code == 0 => Attempt::Success,
        _ => Attempt::Failed { code },
    }
}

/// When a quota-hit account may be tried again: the reset Codex printed, else the default.
pub fn cooldown_until(reset_at_ms: Option<i64>, now_ms: i64) -> i64 {
    reset_at_ms.unwrap_or(now_ms + DEFAULT_COOLDOWN_MS)
}

/// What the command should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Run Codex with this account. `skipped` lists accounts passed over in this pass because
    /// they are cooling down (to tell the person once).
    Run {
        account: String,
        skipped: Vec<(String, i64)>,
    },
    /// A pass is over with every account at its limit and more passes remain: sleep this long
    /// (the retry delay), then ask again.
    Sleep { ms: i64 },
    /// Every account is cooling down and `--wait` was given: wait until `until_ms` (when
    /// `account` resets), then ask again.
    Wait { account: String, until_ms: i64 },
    /// Stop with this exit code. `soonest` is the cooling account that resets first, if the
    /// stop is because every account is cooling.
    Exit {
        code: i32,
        reason: ExitReason,
        soonest: Option<(String, i64)>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    Success,
    Failed,
    Interrupted,
    /// `--no-fallback` and the one account hit its limit.
    QuotaNoFallback,
    /// Every pass was spent with every account at its limit.
    PassesSpent,
    /// Every account is cooling down (and no `--wait`).
    AllCooling,
}

/// The attempt loop's state.
#[derive(Debug, Clone)]
pub struct RunPlan {
    accounts: Vec<String>,
    cooldowns: BTreeMap<String, i64>,
    fallback: bool,
    wait: bool,
    max_passes: u32,
    retry_delay_ms: i64,
    pass: u32,
    tried_this_pass: BTreeSet<String>,
    reported_skips: BTreeSet<String>,
    attempts: u32,
    last_code: Option<i32>,
    done: Option<(i32, ExitReason)>,
    slept_for_pass: bool,
}

/// Options for [`RunPlan::new`].
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub fallback: bool,
    pub wait: bool,
    pub max_passes: u32,
    pub retry_delay_ms: i64,
}

impl RunPlan {
    /// `accounts` in rotation order; `cooldowns` the stored cooldown ends (already-expired ones
    /// are harmless). Pass no cooldown for an account the person named explicitly.
    pub fn new(accounts: Vec<String>, cooldowns: BTreeMap<String, i64>, o: PlanOptions) -> Self {
        Self {
            accounts,
            cooldowns,
            fallback: o.fallback,
            wait: o.wait,
            max_passes: o.max_passes.max(1),
            retry_delay_ms: o.retry_delay_ms.max(0),
            pass: 0,
            tried_this_pass: BTreeSet::new(),
            reported_skips: BTreeSet::new(),
            attempts: 0,
            last_code: None,
            done: None,
            slept_for_pass: false,
        }
    }

    fn cooling(&self, now_ms: i64) -> Vec<(String, i64)> {
        self.accounts
            .iter()
            .filter_map(|a| {
                self.cooldowns
                    .get(a)
                    .filter(|&&u| u > now_ms)
                    .map(|&u| (a.clone(), u))
            })
            .collect()
    }

    fn soonest(&self, now_ms: i64) -> Option<(String, i64)> {
        self.cooling(now_ms)
            .into_iter()
            .fold(None, |best: Option<(String, i64)>, c| match best {
                Some(b) if b.1 <= c.1 => Some(b),
                _ => Some(c),
            })
    }

    /// The next thing to do at `now_ms`.
    pub fn next(&mut self, now_ms: i64) -> Step {
        if let Some((code, reason)) = self.done {
            return Step::Exit {
                code,
                reason,
                soonest: None,
            };
        }
        let mut skipped = Vec::new();
        for a in &self.accounts {
            if self.tried_this_pass.contains(a) {
                continue;
            }
            match self.cooldowns.get(a).filter(|&&u| u > now_ms) {
                Some(&until) => {
                    if self.reported_skips.insert(a.clone()) {
                        skipped.push((a.clone(), until));
                    }
                }
                None => {
                    return Step::Run {
                        account: a.clone(),
                        skipped,
                    };
                }
            }
        }
        // Nothing runnable in this pass.
        let untried_cooling = self
            .accounts
            .iter()
            .any(|a| !self.tried_this_pass.contains(a));
        if self.tried_this_pass.is_empty() || untried_cooling && self.attempts == 0 {
            // Nothing could even start: every account is cooling.
            return self.all_cooling(now_ms);
        }
        // The pass is over and every account tried in it hit its limit.
        if self.pass + 1 >= self.max_passes {
            return Step::Exit {
                code: self.spent_code(),
                reason: ExitReason::PassesSpent,
                soonest: self.soonest(now_ms),
            };
        }
        if self.retry_delay_ms > 0 && !self.slept_for_pass {
            self.slept_for_pass = true;
            return Step::Sleep {
                ms: self.retry_delay_ms,
            };
        }
        self.pass += 1;
        self.slept_for_pass = false;
        self.tried_this_pass.clear();
        self.reported_skips.clear();
        match self.next_ready(now_ms) {
            Some(step) => step,
            None => self.all_cooling(now_ms),
        }
    }

    fn next_ready(&mut self, now_ms: i64) -> Option<Step> {
        match self.next(now_ms) {
            s @ Step::Run { .. } => Some(s),
            _ => None,
        }
    }

    /// Exit code when every account is spent: the last Codex code, but never 0 (a TUI exits 0
    /// after showing the limit).
    fn spent_code(&self) -> i32 {
        self.last_code.filter(|&c| c != 0).unwrap_or(1)
    }

    fn all_cooling(&self, now_ms: i64) -> Step {
        match self.soonest(now_ms) {
            Some((account, until_ms)) if self.wait => Step::Wait { account, until_ms },
            soonest => Step::Exit {
                code: self.spent_code(),
                reason: if self.attempts == 0 {
                    ExitReason::AllCooling
                } else {
                    ExitReason::PassesSpent
                },
                soonest,
            },
        }
    }

    /// Report how the attempt with `account` ended, at `now_ms`.
    pub fn record(&mut self, account: &str, attempt: Attempt, now_ms: i64) {
        self.attempts += 1;
        self.tried_this_pass.insert(account.to_string());
        match attempt {
            Attempt::Success => self.done = Some((0, ExitReason::Success)),
            Attempt::Failed { code } => self.done = Some((code, ExitReason::Failed)),
            Attempt::Interrupted { code } => self.done = Some((code, ExitReason::Interrupted)),
            Attempt::Quota { code, reset_at_ms } => {
                self.last_code = Some(code);
                self.cooldowns
                    .insert(account.to_string(), cooldown_until(reset_at_ms, now_ms));
                if !self.fallback {
                    self.done = Some((code, ExitReason::QuotaNoFallback));
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "run_plan_tests.rs"]
mod tests;
