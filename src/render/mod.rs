//! Rendering: dashboard, compact, full, JSON, Markdown, doctor text. No decisions in here.
//!
//! Every renderer returns a `String`; commands print it. Human views carry ANSI styles that
//! `anstream` strips when stdout is not a terminal or `NO_COLOR` is set.
pub(crate) mod dashboard;
pub(crate) mod doctor;
pub(crate) mod extra;
pub(crate) mod forecast;
pub(crate) mod records;
pub(crate) mod report;
#[cfg(test)]
mod snapshot_tests;
pub(crate) mod style;
pub(crate) mod table;
pub(crate) mod text;
pub(crate) mod time;
pub(crate) mod usage;
pub(crate) mod watch;

/// What every renderer needs besides the data: the time, the user's time zone and the width.
/// Passed in (never read inside) so snapshot tests are stable.
#[derive(Debug, Clone)]
pub struct RenderOpts {
    pub now_ms: i64,
    pub tz: jiff::tz::TimeZone,
    /// Terminal columns (the dashboard clamps this to 72..=120).
    pub width: usize,
}

impl RenderOpts {
    /// Now, in the system time zone, for a terminal `width` columns wide.
    pub fn now(width: usize) -> Self {
        Self {
            now_ms: crate::clock::now_ms(),
            tz: local_tz(),
            width,
        }
    }
}

/// The user's time zone, cheaply. `jiff::tz::TimeZone::system()` walks the whole zoneinfo
/// directory to learn the zone's name (~2 ms, more than all the rest of `cao status`), and
/// views only need its rules and abbreviation: so read `/etc/localtime` directly unless `TZ`
/// is set.
pub fn local_tz() -> jiff::tz::TimeZone {
    if std::env::var_os("TZ").is_some_and(|v| !v.is_empty()) {
        return jiff::tz::TimeZone::system();
    }
    std::fs::read("/etc/localtime")
        .ok()
        .and_then(|bytes| jiff::tz::TimeZone::tzif("Local", &bytes).ok())
        .unwrap_or_else(jiff::tz::TimeZone::system)
}
