use super::Ctx;
use crate::cli::RemoveArgs;
use anyhow::Result;
pub fn run(_ctx: &Ctx, _a: &RemoveArgs) -> Result<i32> {
    anyhow::bail!("not implemented yet")
}
