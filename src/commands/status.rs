use super::Ctx;
use crate::cli::{DoctorArgs, ReportArgs, StatusArgs};
use anyhow::Result;
pub fn run(_ctx: &Ctx, _a: &StatusArgs) -> Result<i32> {
    anyhow::bail!("not implemented yet")
}
pub fn doctor_deprecated(_ctx: &Ctx, _a: &DoctorArgs) -> Result<i32> {
    anyhow::bail!("not implemented yet")
}
pub fn report_deprecated(_ctx: &Ctx, _a: &ReportArgs) -> Result<i32> {
    anyhow::bail!("not implemented yet")
}
