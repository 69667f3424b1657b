use super::Ctx;
use crate::cli::{GatewayDisableArgs, GatewayEnableArgs, GatewayStartArgs, GatewayStatusArgs};
use anyhow::Result;
pub fn start(_ctx: &Ctx, _a: GatewayStartArgs) -> Result<i32> {
    anyhow::bail!("not implemented yet")
}
pub fn status(_ctx: &Ctx, _a: &GatewayStatusArgs) -> Result<i32> {
    anyhow::bail!("not implemented yet")
}
pub fn enable(ctx: &Ctx, a: &GatewayEnableArgs) -> Result<i32> {
    super::gateway_routing::enable(ctx, a)
}
pub fn disable(ctx: &Ctx, a: &GatewayDisableArgs) -> Result<i32> {
    super::gateway_routing::disable(ctx, a)
}
