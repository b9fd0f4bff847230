//! The scheduled fan-out and its workers. TO BE WRITTEN (issue 20).

use serde_json::Value;

use super::{Invocation, LambdaError, Shared};

/// Why the schedule could not send the accounts' messages.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("not built yet")]
    NotBuilt,
}

/// Lists the organization's accounts and sends one message per account.
pub async fn schedule(
    _shared: &Shared,
    _event: &Value,
    _inv: &Invocation,
) -> Result<Value, LambdaError> {
    Err(ScheduleError::NotBuilt.into())
}

/// Enforces each message's account.
pub async fn work(
    _shared: &Shared,
    _event: Value,
    _inv: &Invocation,
) -> Result<Value, LambdaError> {
    Err(ScheduleError::NotBuilt.into())
}
