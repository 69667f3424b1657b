//! What `cao status --doctor`'s gateway section looks at, read from disk: the routes
//! `cao gateway enable` set up (Codex's config.toml, the `codex` shim), Codex's CA bundle and
//! the server certificate. Read only: doctor never makes or renews anything. The decisions are
//! [`crate::policy::health::gateway`]'s.

use std::path::Path;

use crate::codex::shim;
use crate::gateway::tls::{self, bundle as tls_bundle, urls as tls_urls};
use crate::policy::health::GatewayIssue;
use crate::policy::health::gateway::{self, Bundle, GatewayInput, Route};
use crate::store::Store;

/// The gateway section's findings at `now_ms` (none when nothing is routed).
pub fn issues(store: &Store, now_ms: i64) -> Vec<GatewayIssue> {
    gateway::evaluate(&input(store), now_ms)
}

/// Everything the gateway section needs, from the data dir, `$CODEX_HOME` and `~/.local/bin`.
pub fn input(store: &Store) -> GatewayInput {
    let paths = tls::TlsPaths::new(store.root());
    let bundle_of = |path: &Path| Bundle {
        path: path.display().to_string(),
        state: tls_bundle::state(path, &paths.ca_cert),
    };
    let mut routes = Vec::new();
    if let Ok(home) = super::gateway_routing::codex_home()
        && let Some(url) = super::gateway_routing::recorded_url(&home)
    {
        routes.push(route(
            home.join("config.toml").display().to_string(),
            url,
            None,
        ));
    }
    if let Ok(home) = crate::store::home_dir("")
        && let Some(s) = shim::installed(&home)
    {
        let bundle = s.ca_bundle.as_deref().map(bundle_of);
        routes.push(route(s.path.display().to_string(), s.base_url, bundle));
    }
    GatewayInput {
        routes,
        bundle: Some(bundle_of(&paths.bundle)),
        leaf: tls::leaf_not_after_ms(&paths)
            .map(|until| (paths.leaf_cert.display().to_string(), until)),
    }
}

fn route(place: String, url: String, bundle: Option<Bundle>) -> Route {
    Route {
        place,
        loopback: url::Url::parse(&url).is_ok_and(|u| tls_urls::is_loopback(&u)),
        https_twin: tls_urls::https_for(&url),
        url,
        bundle,
    }
}
