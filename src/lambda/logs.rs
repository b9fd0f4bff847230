//! Logs as JSON lines (tracing), one object per event: its level, its
//! message and fields, and the spans it happened in — the invocation's
//! (`request_id`), and where there is one the account's and the user's.
//! No secret is ever a field: key IDs are masked where they are logged.

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber, at `RUST_LOG`'s level (default `info`).
/// Once per process; a second call does nothing.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(true)
        .with_target(false)
        .try_init();
}
