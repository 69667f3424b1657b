//! `cao gateway verify` and the check `cao run --gateway` and `cao gateway enable` make before
//! pointing Codex (and its bearer) at a gateway: is it this user's cao gateway
//! ([`crate::gateway::identity`])?

use std::io::Write;

use anyhow::{Result, bail};

use super::Ctx;
use super::gateway_routing::{normalize_url, require_ours};
use crate::cli::gateway::GatewayVerifyArgs;

/// `cao gateway verify [--url URL] [--quiet]`: exit 0 when the gateway is this user's, else 1
/// with the reason. The shim runs it before every Codex start.
pub fn verify(ctx: &Ctx, args: &GatewayVerifyArgs) -> Result<i32> {
    let url = match &args.url {
        Some(u) => normalize_url(u)?,
        None => normalize_url(&crate::gateway::running::find_url(&ctx.store))?,
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
