use super::Ctx;
use crate::cli::{DemoArgs, MockUpstreamArgs};
use anyhow::Result;
pub fn demo(_ctx: &Ctx, _a: &DemoArgs) -> Result<i32> {
    anyhow::bail!("not implemented yet")
}
pub fn mock_upstream(_a: &MockUpstreamArgs) -> Result<i32> {
    anyhow::bail!("not implemented yet")
}
