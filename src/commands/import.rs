use super::Ctx;
use crate::cli::ImportCodexAuthArgs;
use anyhow::Result;
pub fn codex_auth(_ctx: &Ctx, _a: &ImportCodexAuthArgs) -> Result<i32> {
    anyhow::bail!("not implemented yet")
}
