//! Is this line of Codex output a usage-limit (quota) error?
//!
//! One pure classifier used by `cao run` for every output stream (pipe or PTY), after ANSI escapes
//! are stripped and lines reassembled. The patterns are deliberately narrow: the TypeScript tool
//! matched `/exceeded/i` and `/quota/i`, which switched accounts on "context length exceeded" or
//! on a diff touching `quota.rs`. Here only phrases that mean "this account's allowance is spent"
//! match.

use regex::{Regex, RegexBuilder};

/// The built-in patterns (case-insensitive). Each one is a phrase Codex or the ChatGPT backend
/// really emits when an account's allowance is used up:
/// - `You’ve hit your usage limit` is Codex's own message (typographic apostrophe in 0.169;
///   older builds and some terminals show a plain `'`), also "You have hit your usage limit".
/// - `usage_limit_reached` and `insufficient_quota` are the backend's `error.type` values, seen
///   when Codex prints a raw error body.
/// - `Quota exceeded. Check your plan and billing details` is how Codex renders `insufficient_quota`.
/// - "insufficient credits", "credits exhausted", "out of credits" cover credit-based plans.
pub const BUILTIN_PATTERNS: &[&str] = &[
    r"you(?:['’‘`´]|\s+ha)ve\s+hit\s+your\s+usage\s+limit",
    r"\busage_limit_reached\b",
    r"\binsufficient_quota\b",
    r"quota\s+exceeded\.\s+check\s+your\s+plan\s+and\s+billing",
    r"\binsufficient\s+credits?\b",
    r"\bcredits?\s+(?:are\s+|have\s+been\s+)?exhausted\b",
    r"\bworkspace\s+is\s+out\s+of\s+credits\b",
];

/// A user pattern from `config.toml` that does not compile.
#[derive(Debug, thiserror::Error)]
#[error("quota pattern {pattern:?} is not a valid regular expression: {detail}")]
pub struct BadPattern {
    pub pattern: String,
    pub detail: String,
}

/// The compiled classifier: built-in patterns plus the user's extra ones.
#[derive(Debug, Clone)]
pub struct QuotaClassifier {
    patterns: Vec<Regex>,
}

fn compile(p: &str) -> Result<Regex, BadPattern> {
    RegexBuilder::new(p)
        .case_insensitive(true)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| BadPattern {
            pattern: p.to_string(),
            detail: e
                .to_string()
                .lines()
                .last()
                .unwrap_or_default()
                .trim()
                .to_string(),
        })
}

impl QuotaClassifier {
    /// Built-in patterns plus `extra` (user patterns, case-insensitive). An empty extra pattern is
    /// refused because it would match every line.
    pub fn new(extra: &[String]) -> Result<Self, BadPattern> {
        let mut patterns = Vec::with_capacity(BUILTIN_PATTERNS.len() + extra.len());
        for p in BUILTIN_PATTERNS {
            patterns.push(compile(p)?);
        }
        for p in extra {
            if p.trim().is_empty() {
                return Err(BadPattern {
                    pattern: p.clone(),
                    detail: "an empty pattern would match every line".into(),
                });
            }
            patterns.push(compile(p)?);
        }
        Ok(Self { patterns })
    }

    /// Only the built-in patterns.
    pub fn builtin() -> Self {
        Self {
            patterns: BUILTIN_PATTERNS
                .iter()
                .filter_map(|p| compile(p).ok())
                .collect(),
        }
    }

    /// True when `line` (escape-free text) says an account's usage allowance is spent.
    pub fn is_quota(&self, line: &str) -> bool {
        self.patterns.iter().any(|r| r.is_match(line))
    }
}

impl Default for QuotaClassifier {
    fn default() -> Self {
        Self::builtin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(line: &str) -> bool {
        QuotaClassifier::builtin().is_quota(line)
    }

    #[test]
    fn matches_codex_usage_limit_message_with_both_apostrophes() {
        assert!(q(
            "ERROR: You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/settings/usage to purchase more credits or try again at 7:37 AM."
        ));
        assert!(q("You've hit your usage limit. Try again later."));
        assert!(q("■ you’ve HIT your usage limit for GPT-6 Sol."));
        assert!(q("You have hit your usage limit."));
    }

    #[test]
    fn matches_backend_error_types_and_credit_phrases() {
        assert!(q(
            r#"unexpected status 429 Too Many Requests: {"error":{"type":"usage_limit_reached","resets_at":1}}"#
        ));
        assert!(q(r#"{"error":{"code":"insufficient_quota"}}"#));
        assert!(q(
            "ERROR: Quota exceeded. Check your plan and billing details."
        ));
        assert!(q("Insufficient credits to complete this request"));
        assert!(q("Your credits are exhausted"));
        assert!(q("credits exhausted"));
        assert!(q(
            "Your workspace is out of credits. Add credits to continue."
        ));
    }

    #[test]
    fn ignores_ordinary_errors_that_say_exceeded_or_quota() {
        for line in [
            "Error: context length exceeded",
            "RecursionError: maximum recursion depth exceeded while calling a Python object",
            "exceeded retry limit, last status: 500",
            "Codex ran out of room in the model's context window.",
            "Edited src/policy/quota.rs (+12 -3)",
            "disk quota for /home is 80% used",
            "usage: codex [OPTIONS] [PROMPT]",
            "rate limit: try again in 1.2s",
            "",
        ] {
            assert!(!q(line), "should not match: {line}");
        }
    }

    #[test]
    fn user_patterns_extend_and_bad_ones_are_named() {
        let c = QuotaClassifier::new(&["plan limit hit".into()]).unwrap();
        assert!(c.is_quota("ERROR: PLAN LIMIT HIT"));
        assert!(c.is_quota("You’ve hit your usage limit."));
        let err = QuotaClassifier::new(&["(unclosed".into()]).unwrap_err();
        assert_eq!(err.pattern, "(unclosed");
        assert!(err.to_string().contains("(unclosed"), "{err}");
        assert!(QuotaClassifier::new(&["  ".into()]).is_err());
    }
}
