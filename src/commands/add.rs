use super::Ctx;
use crate::cli::AddArgs;
use anyhow::Result;
pub fn run(_ctx: &Ctx, _a: &AddArgs) -> Result<i32> {
    anyhow::bail!("not implemented yet")
}
