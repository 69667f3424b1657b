use super::Ctx;
use crate::cli::{SwitchArgs, UseArgs};
use anyhow::Result;
pub fn switch(_ctx: &Ctx, _a: &SwitchArgs) -> Result<i32> {
    anyhow::bail!("not implemented yet")
}
pub fn use_account(_ctx: &Ctx, _a: &UseArgs) -> Result<i32> {
    anyhow::bail!("not implemented yet")
}
