use super::Ctx;
use crate::cli::RunArgs;
use anyhow::Result;
pub fn run(_ctx: &Ctx, _a: RunArgs) -> Result<i32> {
    anyhow::bail!("not implemented yet")
}
