use super::Ctx;
use crate::cli::ListArgs;
use anyhow::Result;
pub fn list(_ctx: &Ctx, _a: &ListArgs) -> Result<i32> {
    anyhow::bail!("not implemented yet")
}
pub fn current(_ctx: &Ctx, _a: &ListArgs) -> Result<i32> {
    anyhow::bail!("not implemented yet")
}
