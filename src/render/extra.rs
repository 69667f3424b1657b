//! Per-account extras slotted into every view: the place where usage bars (engineer E,
//! `render/usage.rs`) plug in without touching the layouts. Each function returns nothing
//! until something fills it.

use super::RenderOpts;
use crate::store::inspect::AccountView;

/// Extra lines under an account in the dashboard and the full view (already styled, no
/// indentation; the caller indents and frames them). `width` is the space available.
pub fn account_lines(view: &AccountView, r: &RenderOpts, width: usize) -> Vec<String> {
    super::usage::lines(view.status.usage.as_ref(), r, width)
}

/// A short extra column for the compact one-liner (e.g. `usage: 5h 42%`).
pub fn compact_suffix(view: &AccountView, r: &RenderOpts) -> Option<String> {
    super::usage::short(view.status.usage.as_ref(), r.now_ms).map(|s| format!("usage: {s}"))
}

/// Extra fields for the account's JSON record.
pub fn json_fields(
    view: &AccountView,
    r: &RenderOpts,
) -> serde_json::Map<String, serde_json::Value> {
    super::usage::json(view.status.usage.as_ref(), r.now_ms)
}
