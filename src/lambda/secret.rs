//! The function as a Secrets Manager rotation function for a secret bound
//! to an IAM user. TO BE WRITTEN (issue 20).

use serde_json::Value;

use super::{Invocation, LambdaError, Shared};

/// Why a rotation step failed (Secrets Manager retries it).
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("not built yet")]
    NotBuilt,
}

/// One step of the secret's rotation.
pub async fn rotate(
    _shared: &Shared,
    _event: &Value,
    _inv: &Invocation,
) -> Result<Value, LambdaError> {
    Err(SecretError::NotBuilt.into())
}
