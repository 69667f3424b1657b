//! `cao run --gateway`: run Codex routed through the local gateway (owned by the gateway-routing
//! work; this is a placeholder until it lands).

use anyhow::Result;

use super::Ctx;
use crate::cli::RunArgs;

/// Run Codex through the gateway at `args.gateway_url`.
pub fn run(_ctx: &Ctx, _args: RunArgs) -> Result<i32> {
    anyhow::bail!("gateway routing not implemented yet")
}
