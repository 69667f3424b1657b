//! Doctor's gateway section: is the HTTPS Codex is routed to going to work?
//!
//! Not about any one account: whether the routes `cao gateway enable` set up (Codex's
//! `config.toml` and the `codex` shim) point at the gateway's `https://` (which the TUI of a
//! personal account requires since Codex 0.156), whether Codex's CA bundle is there and holds
//! the current CA, and whether the server certificate is close to expiry. The edge gathers what
//! is on disk into a [`GatewayInput`]; this decides. Pure: the time comes in.

use super::{Severity, issue::IssueCode};
use crate::cert;

/// One way Codex is routed to the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Where the routing lives, for the message (`~/.codex/config.toml`, `~/.local/bin/codex`).
    pub place: String,
    /// The gateway URL it points at.
    pub url: String,
    /// Whether the URL is the gateway's own loopback address (its `https://` needs cao's CA).
    pub loopback: bool,
    /// The URL's `https://` twin on the same port, when the gateway serves one there.
    pub https_twin: Option<String>,
    /// The CA bundle this route gives Codex, when the route says (the shim does).
    pub bundle: Option<Bundle>,
}

/// Codex's CA bundle as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub path: String,
    pub state: BundleState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleState {
    /// Present and holding the CA the gateway's leaf is signed by.
    Current,
    Missing,
    /// Present, but without the current CA (Codex would refuse the gateway's certificate).
    Stale,
}

/// What doctor knows about the gateway's HTTPS and Codex's routing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayInput {
    pub routes: Vec<Route>,
    /// The data dir's bundle (what `config.toml` routing relies on: the desktop app, an IDE).
    pub bundle: Option<Bundle>,
    /// The leaf on disk and when it ends (`None`: none made yet, or unreadable; the next
    /// gateway start makes one).
    pub leaf: Option<(String, i64)>,
}

use super::issue::GatewayIssue;

/// The gateway section's findings at `now_ms`.
pub fn evaluate(input: &GatewayInput, now_ms: i64) -> Vec<GatewayIssue> {
    let mut issues = Vec::new();
    let mut push = |code, message: String| {
        issues.push(GatewayIssue {
            severity: Severity::Warn,
            code,
            message,
        })
    };
    for route in &input.routes {
        if url_scheme(&route.url) == Some("http") {
            let fix = match &route.https_twin {
                Some(twin) => format!(
                    "run `cao gateway enable` again to route it to {twin} (the same gateway, over HTTPS)"
                ),
                None => "route it to an https:// URL".to_string(),
            };
            push(
                IssueCode::RoutingPlainHttp,
                format!(
                    "{} routes Codex to {} over plain http; the Codex TUI of a personal account refuses that (\"workspace backend must use an HTTPS origin\"): {fix}.",
                    route.place, route.url
                ),
            );
        }
    }
    let https: Vec<&Route> = input
        .routes
        .iter()
        .filter(|r| r.loopback && url_scheme(&r.url) == Some("https"))
        .collect();
    if https.is_empty() {
        return issues;
    }
    // Every bundle an https route relies on: the one it names, else the data dir's.
    let mut bundles: Vec<(&str, &Bundle)> = Vec::new();
    for route in &https {
        if let Some(b) = route.bundle.as_ref().or(input.bundle.as_ref())
            && !bundles.iter().any(|(_, seen)| seen.path == b.path)
        {
            bundles.push((route.place.as_str(), b));
        }
    }
    for (place, bundle) in bundles {
        match bundle.state {
            BundleState::Current => {}
            BundleState::Missing => push(
                IssueCode::CaBundleMissing,
                format!(
                    "Codex's CA bundle {} is missing, so Codex routed by {place} cannot trust the gateway's https; run `cao gateway enable` again (or start the gateway, which writes it).",
                    bundle.path
                ),
            ),
            BundleState::Stale => push(
                IssueCode::CaBundleStale,
                format!(
                    "Codex's CA bundle {} does not hold the gateway's current CA, so Codex routed by {place} refuses its certificate; run `cao gateway enable` again (or restart the gateway) and restart Codex.",
                    bundle.path
                ),
            ),
        }
    }
    if let Some((path, until)) = &input.leaf
        && cert::leaf_expiring(*until, now_ms)
    {
        let when = if *until <= now_ms {
            "has expired".to_string()
        } else {
            format!("expires in {}", crate::duration::days(until - now_ms))
        };
        push(
            IssueCode::TlsLeafExpiring,
            format!(
                "The gateway's server certificate {path} {when}; cao renews it {} days before, so something stopped that: start the gateway (every start renews it) and check that its directory is writable.",
                cert::LEAF_RENEW_BEFORE_DAYS
            ),
        );
    }
    issues
}

fn url_scheme(url: &str) -> Option<&str> {
    url.split_once("://").map(|(s, _)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn route(place: &str, url: &str, bundle: Option<Bundle>) -> Route {
        Route {
            place: place.into(),
            url: url.into(),
            loopback: true,
            https_twin: url
                .strip_prefix("http://")
                .map(|rest| format!("https://{rest}")),
            bundle,
        }
    }

    fn bundle(path: &str, state: BundleState) -> Bundle {
        Bundle {
            path: path.into(),
            state,
        }
    }

    fn codes(issues: &[GatewayIssue]) -> Vec<IssueCode> {
        issues.iter().map(|i| i.code).collect()
    }

    #[test]
    fn nothing_routed_says_nothing_even_with_an_old_certificate() {
        let input = GatewayInput {
            leaf: Some(("gateway.pem".into(), NOW - 1)),
            ..GatewayInput::default()
        };
        assert!(evaluate(&input, NOW).is_empty());
    }

    #[test]
    fn https_routing_with_a_current_bundle_and_a_fresh_leaf_is_healthy() {
        let input = GatewayInput {
            routes: vec![route("config.toml", "https://127.0.0.1:4319", None)],
            bundle: Some(bundle("b.pem", BundleState::Current)),
            leaf: Some(("gateway.pem".into(), NOW + 100 * cert::DAY_MS)),
        };
        assert!(evaluate(&input, NOW).is_empty());
    }

    #[test]
    fn plain_http_routing_is_named_with_its_https_twin() {
        let input = GatewayInput {
            routes: vec![route("config.toml", "http://127.0.0.1:4319", None)],
            ..GatewayInput::default()
        };
        let issues = evaluate(&input, NOW);
        assert_eq!(codes(&issues), [IssueCode::RoutingPlainHttp]);
        assert_eq!(issues[0].severity, Severity::Warn);
        assert!(
            issues[0].message.contains("https://127.0.0.1:4319"),
            "{issues:?}"
        );
        // No bundle needed for plain http: nothing about it.
        let remote = GatewayInput {
            routes: vec![Route {
                loopback: false,
                https_twin: None,
                ..route("shim", "http://10.0.0.2:4319", None)
            }],
            ..GatewayInput::default()
        };
        let issues = evaluate(&remote, NOW);
        assert!(issues[0].message.contains("an https:// URL"), "{issues:?}");
    }

    #[test]
    fn a_missing_or_stale_bundle_is_reported_once_per_file() {
        let input = GatewayInput {
            routes: vec![
                route("config.toml", "https://127.0.0.1:4319", None),
                route(
                    "shim",
                    "https://127.0.0.1:4319",
                    Some(bundle("b.pem", BundleState::Missing)),
                ),
            ],
            bundle: Some(bundle("b.pem", BundleState::Missing)),
            leaf: None,
        };
        assert_eq!(codes(&evaluate(&input, NOW)), [IssueCode::CaBundleMissing]);
        let input = GatewayInput {
            routes: vec![
                route("config.toml", "https://127.0.0.1:4319", None),
                route(
                    "shim",
                    "https://127.0.0.1:4319",
                    Some(bundle("other.pem", BundleState::Current)),
                ),
            ],
            bundle: Some(bundle("b.pem", BundleState::Stale)),
            leaf: None,
        };
        assert_eq!(codes(&evaluate(&input, NOW)), [IssueCode::CaBundleStale]);
    }

    #[test]
    fn a_leaf_near_or_past_expiry_warns_while_https_is_in_use() {
        let mut input = GatewayInput {
            routes: vec![route("config.toml", "https://127.0.0.1:4319", None)],
            bundle: Some(bundle("b.pem", BundleState::Current)),
            leaf: Some(("gateway.pem".into(), NOW + 10 * cert::DAY_MS)),
        };
        let issues = evaluate(&input, NOW);
        assert_eq!(codes(&issues), [IssueCode::TlsLeafExpiring]);
        assert!(issues[0].message.contains("in 10 day(s)"), "{issues:?}");
        input.leaf = Some(("gateway.pem".into(), NOW - 1));
        assert!(evaluate(&input, NOW)[0].message.contains("has expired"));
        // 31 days left: renewal is overdue but not yet worth a warning.
        input.leaf = Some(("gateway.pem".into(), NOW + 31 * cert::DAY_MS));
        assert!(evaluate(&input, NOW).is_empty());
    }
}
