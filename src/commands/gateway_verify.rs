//! `cao gateway verify` and the check `cao run --gateway` and `cao gateway enable` make before
//! pointing Codex (and its bearer) at a gateway: is it this user's cao gateway
//! ([`crate::gateway::identity`])?

use std::io::Write;

use anyhow::{Result, bail};

use super::Ctx;
use super::gateway_routing::normalize_url;
use crate::cli::GatewayVerifyArgs;
use crate::gateway::identity::{self, Verdict};
use crate::store::Store;

/// Whether this user's cao gateway runs at `url` (`Ok(true)`), nothing listens there
/// (`Ok(false)`), or something else does: an error saying so, as no token may go there.
pub fn require_ours(store: &Store, url: &str) -> Result<bool> {
    match identity::verify(store, url) {
        Verdict::Ours => Ok(true),
        Verdict::NothingListening => Ok(false),
        Verdict::NotOurs(why) => bail!(
            "refusing to send your Codex login to {url}: something answers there that is not your cao gateway ({why}). \
             Stop whatever listens there, or start your gateway on another port (`cao gateway start --port N --save`) and use that URL"
        ),
    }
}

/// `cao gateway verify [--url URL] [--quiet]`: exit 0 when the gateway is this user's, else 1
/// with the reason. The shim runs it before every Codex start.
pub fn verify(ctx: &Ctx, args: &GatewayVerifyArgs) -> Result<i32> {
    let url = match &args.url {
        Some(u) => normalize_url(u)?,
        None => normalize_url(&crate::gateway::live::find_url(&ctx.store))?,
    };
    if !require_ours(&ctx.store, &url)? {
        bail!(
            "no cao gateway answers at {url}; start it with `cao gateway start` (or undo the routing with `cao gateway disable`)"
        );
    }
    if !args.quiet {
        writeln!(std::io::stdout(), "{url} is your cao gateway")?;
    }
    Ok(0)
}
