//! Jobs for service users named by account and user name (`rekey rotate
//! --account A --user U --to …`), not by a key in a credentials file: IAM is
//! reached through a role in the user's account (or the caller's own
//! credentials in the caller's account), and the key rotated is the one the
//! first destination holds, which must be one of the user's active keys
//! ([`Subject::User`]: read once, under the user's lease; a destination
//! holding none gets the user's only active key). Building a job reads
//! neither the destination nor the user's keys: the rotation does, right
//! before it acts.

// See engine.rs: one error per job, built once; its size is no cost.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use aws_config::SdkConfig;

use super::access::{Access, AccessError};
use super::job::{Job, Subject};
use crate::aws::{AccountClients, Identity, caller_identity, with_credentials};
use crate::destination::{Destination, KeyPair};
use crate::error::CallError;

/// Why no job could be built for a service user. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot reach IAM in account {account_id}")]
    Access {
        account_id: String,
        #[source]
        source: AccessError,
    },
    #[error("{doing}")]
    Call {
        doing: String,
        #[source]
        source: CallError,
    },
    #[error("user {user}: {why}")]
    Refused { user: String, why: String },
}

/// Builds the job rotating `user_name`'s key in `account_id` into
/// `destinations`, reaching IAM with `access` (a role or the caller).
pub async fn service_job(
    caller: &SdkConfig,
    account_id: &str,
    user_name: &str,
    access: Access,
    destinations: Vec<Arc<dyn Destination>>,
) -> Result<Job, ServiceError> {
    let me = caller_identity(&AccountClients::new(caller).sts)
        .await
        .map_err(|source| ServiceError::Call {
            doing: "asking STS who the caller is".into(),
            source,
        })?;
    let user_identity = Identity {
        account_id: account_id.to_string(),
        arn: format!("arn:{}:iam::{account_id}:user/{user_name}", me.partition),
        partition: me.partition.clone(),
    };
    // Only the caller's way in needs no key: the old key is not known yet.
    let nobody = KeyPair {
        access_key_id: String::new(),
        secret: String::new().into(),
    };
    let opened = access
        .open(caller, caller, &nobody, &user_identity)
        .await
        .map_err(|source| ServiceError::Access {
            account_id: account_id.to_string(),
            source,
        })?;
    let config = match &opened.session {
        Some(session) => with_credentials(caller, session.clone()),
        None => caller.clone(),
    };
    let iam = AccountClients::new(&config);
    let user = iam
        .iam
        .get_user()
        .user_name(user_name)
        .send()
        .await
        .map_err(|e| ServiceError::Call {
            doing: format!("reading user {user_name} in account {account_id}"),
            source: CallError::from_sdk("iam:GetUser", e),
        })?;
    let user_arn = user
        .user()
        .map(|u| u.arn().to_string())
        .unwrap_or(user_identity.arn);
    if destinations.is_empty() {
        return Err(ServiceError::Refused {
            user: user_name.to_string(),
            why: "no destination given".into(),
        });
    }
    let label = format!("user {user_name} in account {account_id}");
    let subject = Subject::User {
        account_id: account_id.to_string(),
        user_arn,
    };
    let job = Job::new(subject, access, destinations, caller.clone(), label);
    let _ = job.opened.set(opened);
    Ok(job)
}
