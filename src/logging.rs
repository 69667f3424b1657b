//! Logging set-up: `tracing` to stderr, filtered by `CAO_LOG` (default `info`, which is where the
//! gateway's one-line-per-request log lives).
//!
//! Lines are handed to a background writer thread so a slow or unbuffered stderr never sits on
//! the gateway's request path; the writer blocks rather than drops when it falls behind, so no
//! line is lost. Colour only when stderr is a terminal and `NO_COLOR` is unset.

use std::io::IsTerminal;

/// The background writer's buffer. It flushes whenever it has written every line waiting, so a
/// quiet gateway's lines appear at once, and a busy one's leave in a few large writes instead
/// of one `write` per request line.
const LOG_BUFFER: usize = 64 * 1024;

/// Keeps the background log writer alive; dropping it flushes every pending line.
pub(crate) type LogGuard = tracing_appender::non_blocking::WorkerGuard;

/// Install the stderr subscriber. Hold the returned guard until the process ends.
pub fn init() -> Option<LogGuard> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::BufWriter::with_capacity(
            LOG_BUFFER,
            std::io::stderr(),
        ));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(false)
        .compact()
        .try_init()
        .ok()
        .map(|()| guard)
}

/// Install the stderr subscriber writing directly (no background thread). For the short
/// commands (`status`, `list`, `add`, ...): starting and joining the writer thread costs more
/// than all of `cao status --json`'s own work (about 2-3 ms of its 5 ms budget here).
pub fn init_direct() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .compact()
        .try_init();
}
