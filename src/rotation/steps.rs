//! The AWS side effects of a rotation, each one call (or one proof) with the
//! retries it needs. IAM is eventually consistent: a new key may be rejected
//! for seconds after CreateAccessKey, so verification wants several
//! successes in a row and calls signed with the new key are retried with
//! backoff (DESIGN.md invariant 1).

use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_sdk_iam::types::StatusType;
use secrecy::{ExposeSecret, SecretString};

use crate::aws::{AccountClients, caller_identity, with_credentials};
use crate::destination::KeyPair;
use crate::error::{CallError, FailureKind};
use crate::model::mask_key_id;

/// First pause between attempts; doubles up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(5);

/// Clients that sign with `pair`.
pub fn clients_for(base: &SdkConfig, pair: &KeyPair) -> AccountClients {
    AccountClients::new(&with_credentials(base, credentials(pair)))
}

pub fn credentials(pair: &KeyPair) -> Credentials {
    Credentials::new(
        &pair.access_key_id,
        pair.secret.expose_secret(),
        None,
        None,
        "rekey-rotation",
    )
}

/// Every key of `user`.
pub use crate::inventory::list_keys;

/// CreateAccessKey. The secret goes straight into a [`SecretString`].
pub async fn create_key(clients: &AccountClients, user: &str) -> Result<KeyPair, CallError> {
    let out = clients
        .iam
        .create_access_key()
        .user_name(user)
        .send()
        .await
        .map_err(|e| CallError::from_sdk("iam:CreateAccessKey", e))?;
    let key = out.access_key().ok_or_else(|| CallError::Other {
        call: "iam:CreateAccessKey",
        source: "the answer held no key".into(),
    })?;
    Ok(KeyPair {
        access_key_id: key.access_key_id().to_string(),
        secret: SecretString::from(key.secret_access_key().to_string()),
    })
}

/// Whether a failed CreateAccessKey certainly made no key: IAM answered
/// with a client error (LimitExceeded, AccessDenied, throttling…). A lost
/// answer (no answer, a broken one) or a server fault may come after the
/// key was made (issue 15 #10, #11). Pure.
pub fn made_nothing(e: &CallError) -> bool {
    match e {
        CallError::Service { code, .. } => !matches!(
            code.as_str(),
            "ServiceFailure"
                | "ServiceFailureException"
                | "InternalFailure"
                | "InternalError"
                | "ServiceUnavailable"
                | "ServiceUnavailableException"
                | "RequestTimeout"
                | "RequestTimeoutException"
        ),
        CallError::Unreachable { .. } | CallError::Other { .. } => false,
    }
}

/// DeleteAccessKey; a key already gone counts as deleted.
pub async fn delete_key(
    clients: &AccountClients,
    user: &str,
    key_id: &str,
) -> Result<(), CallError> {
    match clients
        .iam
        .delete_access_key()
        .user_name(user)
        .access_key_id(key_id)
        .send()
        .await
        .map_err(|e| CallError::from_sdk("iam:DeleteAccessKey", e))
    {
        Err(e) if e.kind() == FailureKind::NotFound => Ok(()),
        other => other.map(|_| ()),
    }
}

/// UpdateAccessKey to Inactive.
pub async fn deactivate_key(
    clients: &AccountClients,
    user: &str,
    key_id: &str,
) -> Result<(), CallError> {
    clients
        .iam
        .update_access_key()
        .user_name(user)
        .access_key_id(key_id)
        .status(StatusType::Inactive)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| CallError::from_sdk("iam:UpdateAccessKey", e))
}

/// Why a new key was not proven to work.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the new key was not accepted {needed} times in a row within {}s", timeout.as_secs())]
    Timeout {
        needed: u32,
        timeout: Duration,
        #[source]
        last: Option<CallError>,
    },
    #[error("the new key belongs to {got}, not {expected}")]
    WrongIdentity { expected: String, got: String },
}

/// STS GetCallerIdentity with the new key must return `expected_arn`
/// `needed` times in a row, retried with backoff until `timeout`. Before
/// each pause, `waiting` hears how many times in a row it was accepted so
/// far: a wait of up to `timeout` is then not silence.
pub async fn verify(
    base: &SdkConfig,
    pair: &KeyPair,
    expected_arn: &str,
    needed: u32,
    timeout: Duration,
    waiting: &(dyn Fn(u32) + Sync),
) -> Result<(), VerifyError> {
    let clients = clients_for(base, pair);
    let deadline = Instant::now() + timeout;
    let mut streak = 0;
    let mut delay = FIRST_DELAY;
    let mut last: Option<CallError>;
    loop {
        match caller_identity(&clients.sts).await {
            Ok(id) if id.arn == expected_arn => {
                streak += 1;
                if streak >= needed {
                    return Ok(());
                }
                // Spread the proofs out a little: one lucky answer from a
                // single IAM replica is not propagation.
                waiting(streak);
                tokio::time::sleep(FIRST_DELAY).await;
                continue;
            }
            Ok(id) => {
                return Err(VerifyError::WrongIdentity {
                    expected: expected_arn.into(),
                    got: id.arn,
                });
            }
            Err(e) => {
                streak = 0;
                last = Some(e);
            }
        }
        if Instant::now() + delay > deadline {
            return Err(VerifyError::Timeout {
                needed,
                timeout,
                last,
            });
        }
        waiting(streak);
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_DELAY);
    }
}

/// What a verification waiting for IAM says: the new key (masked), and
/// how many times in a row of `needed` it has been accepted. Pure.
pub fn waiting_line(key_id: &str, accepted: u32, needed: u32) -> String {
    format!(
        "waiting for IAM to accept {} ({accepted}/{needed})",
        mask_key_id(key_id)
    )
}

/// Runs `call` until it succeeds, retrying while IAM may not yet accept the
/// key it is signed with (bad credentials, access denied, throttling) until
/// `timeout`.
pub async fn retry_while_propagating<F, Fut, T>(
    timeout: Duration,
    mut call: F,
) -> Result<T, CallError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, CallError>>,
{
    let deadline = Instant::now() + timeout;
    let mut delay = FIRST_DELAY;
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e)
                if matches!(
                    e.kind(),
                    FailureKind::BadCredentials
                        | FailureKind::Denied
                        | FailureKind::Throttled
                        | FailureKind::Unreachable
                ) && Instant::now() + delay <= deadline =>
            {
                tracing::info!("retrying while the new key propagates: {e}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_DELAY);
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_for_iam_names_the_masked_key_and_how_far_it_got() {
        assert_eq!(
            waiting_line("AKIAIOSFODNN7EXAMPLE", 2, 3),
            "waiting for IAM to accept AKIA…MPLE (2/3)"
        );
        assert_eq!(
            waiting_line("AKIAIOSFODNN7EXAMPLE", 0, 3),
            "waiting for IAM to accept AKIA…MPLE (0/3)"
        );
    }
}
