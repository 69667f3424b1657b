//! Logging set-up: `tracing` to stderr, filtered by `CAO_LOG` (default `info` for the gateway's
//! request lines, quiet elsewhere).

/// Install the stderr subscriber. Safe to call more than once.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .compact()
        .try_init();
}
