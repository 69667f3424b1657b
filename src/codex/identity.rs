//! How the Codex CLI introduces itself to the backend, so cao's own calls (usage polling, token
//! refresh) look like the Codex they stand in for. The one place these headers are made.
//!
//! Captured from Codex 0.171.0 (`codex exec` against a local server; tests/it/identity.rs holds
//! cao to it with the real binary): every backend call, and its token refresh, carries
//! `originator: codex_exec`; the token refresh and the first calls carry `user-agent:
//! codex_exec/0.171.0 (Debian 12.0.0; x86_64) xterm`, that is `<originator>/<version> (<os> <os
//! version>; <arch>) <terminal>`, and the backend calls of the running session the same plus
//! ` (codex_exec; 0.171.0)`; its `/backend-api/wham/*` calls carry no `originator`. Re-check on
//! each Codex upgrade.

/// The Codex release whose headers these are.
pub const CODEX_VERSION: &str = "0.171.0";

/// The `originator` header `codex exec` sends.
pub const ORIGINATOR: &str = "codex_exec";

/// The `user-agent` Codex sends from this machine.
pub fn user_agent() -> String {
    user_agent_on(std::env::var("TERM").ok().as_deref())
}

/// The `user-agent` of Codex's calls to the ChatGPT backend once its session runs (the plain
/// one plus ` (codex_exec; 0.171.0)`), which cao's usage calls wear. Its calls to the `wham`
/// family (accounts/check, settings/user: the usage endpoint's) carry no `originator`.
pub(crate) fn backend_user_agent() -> String {
    format!("{} ({ORIGINATOR}; {CODEX_VERSION})", user_agent())
}

/// The `user-agent` Codex sends from this machine on a terminal whose `TERM` is `term`: on its
/// token refresh and its first backend calls.
pub fn user_agent_on(term: Option<&str>) -> String {
    let term = term
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty() && t.is_ascii())
        .unwrap_or_else(|| "unknown".to_string());
    format!(
        "{ORIGINATOR}/{CODEX_VERSION} ({}; {}) {term}",
        os_words(),
        std::env::consts::ARCH
    )
}

/// `Debian 12.0.0`, `Ubuntu 24.4.0`, `Mac OS`, ... (what Codex's `os_info` prints, as near as
/// `/etc/os-release` tells).
fn os_words() -> String {
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let field = |key: &str| {
        release.lines().find_map(|l| {
            l.strip_prefix(key)
                .and_then(|v| v.strip_prefix('='))
                .map(|v| v.trim().trim_matches('"').to_string())
        })
    };
    let name = field("NAME")
        .and_then(|n| n.split_whitespace().next().map(str::to_string))
        .filter(|n| n.is_ascii());
    match (name, field("VERSION_ID")) {
        (Some(n), Some(v)) => format!("{n} {}", semver_words(&v)),
        (Some(n), None) => n,
        _ => match std::env::consts::OS {
            "macos" => "Mac OS".to_string(),
            "windows" => "Windows".to_string(),
            other => other.to_string(),
        },
    }
}

/// `12` -> `12.0.0`, `24.04` -> `24.4.0`.
fn semver_words(v: &str) -> String {
    let mut parts: Vec<String> = v
        .split('.')
        .map(|p| p.parse::<u64>().map_or(p.to_string(), |n| n.to_string()))
        .collect();
    while parts.len() < 3 {
        parts.push("0".to_string());
    }
    parts.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agent_has_codex_shape() {
        let ua = user_agent();
        assert!(ua.starts_with("codex_exec/0.171.0 ("), "{ua}");
        assert!(
            ua.contains(&format!("; {}) ", std::env::consts::ARCH)),
            "{ua}"
        );
        assert_eq!(semver_words("12"), "12.0.0");
        assert_eq!(semver_words("24.04"), "24.4.0");
    }
}
