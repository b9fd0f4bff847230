//! The function as an AWS Config custom rule (periodic): one evaluation
//! per IAM user of the account, judged as `rekey audit --view config`
//! judges it (`access-keys-rotated`). TO BE WRITTEN (issue 20).

use serde_json::Value;

use super::{Invocation, LambdaError, Shared};

/// Why the rule's evaluations could not be made or put.
#[derive(Debug, thiserror::Error)]
pub enum ConfigRuleError {
    #[error("not built yet")]
    NotBuilt,
}

/// Evaluates the account the event names and puts the evaluations.
pub async fn evaluate(
    _shared: &Shared,
    _event: Value,
    _inv: &Invocation,
) -> Result<Value, LambdaError> {
    Err(ConfigRuleError::NotBuilt.into())
}
