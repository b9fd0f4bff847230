//! The enforce run.
