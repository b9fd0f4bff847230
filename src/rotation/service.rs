//! Jobs for service users named by account and user name (`rekey rotate
//! --account A --user U --to …`), not by a key in a credentials file: IAM is
//! reached through a role in the user's account (or the caller's own
//! credentials in the caller's account), and the key rotated is the one the
//! first destination holds, which must be one of the user's active keys.

// See engine.rs: one error per job, built once; its size is no cost.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use aws_config::SdkConfig;

use super::access::{Access, AccessError};
use super::job::{Job, Subject};
use super::steps;
use super::{Refusal, only_active_key};
use crate::aws::{AccountClients, Identity, caller_identity, with_credentials};
use crate::destination::{Destination, DestinationError, KeyPair};
use crate::error::CallError;
use crate::model::{Key, KeyStatus, mask_key_id};

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
    #[error("cannot read {what}")]
    Destination {
        what: String,
        #[source]
        source: DestinationError,
    },
    #[error("user {user}: {why}")]
    Refused { user: String, why: String },
    #[error(transparent)]
    Refusal(Refusal),
}

/// Which key a service job rotates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OldKey {
    /// The key the first destination holds, an active key of the user.
    Held(String),
    /// The destination holds no key pair yet: a first delivery, of the
    /// user's only active key, picked under the user's lease once earlier
    /// runs' leftovers are gone ([`super::only_active_key`]).
    FirstDelivery,
}

/// The key to rotate: the one the destination holds, which must be an
/// active key of the user; with nothing held, a first delivery, unless the
/// user has no active key at all. Pure.
pub fn pick_old_key(
    user: &str,
    what: &str,
    keys: &[Key],
    held: Option<&str>,
) -> Result<OldKey, ServiceError> {
    let refuse = |why: String| ServiceError::Refused {
        user: user.to_string(),
        why,
    };
    let Some(held) = held else {
        // Several active keys may be one plus a key an interrupted run
        // made, which this run deletes first: decided under the lease.
        return match only_active_key(user, what, keys, &[]) {
            Err(refusal @ Refusal::NoActiveKey { .. }) => Err(ServiceError::Refusal(refusal)),
            _ => Ok(OldKey::FirstDelivery),
        };
    };
    match keys
        .iter()
        .find(|k| k.access_key_id.as_deref() == Some(held))
    {
        None => Err(refuse(format!(
            "{what} holds {}, which is not one of the user's keys",
            mask_key_id(held)
        ))),
        Some(k) if k.status != KeyStatus::Active => Err(refuse(format!(
            "{what} holds {}, which is inactive",
            mask_key_id(held)
        ))),
        Some(_) => Ok(OldKey::Held(held.to_string())),
    }
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
    let keys = steps::list_keys(&iam, user_name)
        .await
        .map_err(|source| ServiceError::Call {
            doing: format!("listing the keys of {user_name} in account {account_id}"),
            source,
        })?;
    let first = destinations.first().ok_or_else(|| ServiceError::Refused {
        user: user_name.to_string(),
        why: "no destination given".into(),
    })?;
    let what = first.describe();
    let held = first
        .current_key_id()
        .await
        .map_err(|source| ServiceError::Destination {
            what: what.clone(),
            source,
        })?;
    let label = format!("user {user_name} in account {account_id}");
    let account_id = account_id.to_string();
    let subject = match pick_old_key(user_name, &what, &keys, held.as_deref())? {
        OldKey::Held(old_key_id) => Subject::Known {
            account_id,
            user_arn,
            old_key_id,
        },
        OldKey::FirstDelivery => Subject::FirstDelivery {
            account_id,
            user_arn,
        },
    };
    let job = Job::new(subject, access, destinations, caller.clone(), label);
    let _ = job.opened.set(opened);
    Ok(job)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, status: KeyStatus) -> Key {
        Key {
            access_key_id: Some(id.into()),
            status,
            created: None,
            last_used: None,
        }
    }

    const A: &str = "AKIAAAAAAAAAAAAAAAA1";
    const B: &str = "AKIABBBBBBBBBBBBBBB2";

    #[test]
    fn the_key_the_destination_holds_is_rotated_if_it_is_an_active_key_of_the_user() {
        let keys = [key(A, KeyStatus::Active), key(B, KeyStatus::Inactive)];
        assert_eq!(
            pick_old_key("svc", "s", &keys, Some(A)).unwrap(),
            OldKey::Held(A.into())
        );
        for held in [Some(B), Some("AKIAOTHER")] {
            let e = pick_old_key("svc", "secretsmanager:ci", &keys, held).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("user svc: secretsmanager:ci holds"),
                "{e}"
            );
        }
    }

    #[test]
    fn an_empty_destination_is_a_first_delivery_unless_the_user_has_no_active_key() {
        let one = [key(A, KeyStatus::Active), key(B, KeyStatus::Inactive)];
        assert_eq!(
            pick_old_key("svc", "ssm:/ci", &one, None).unwrap(),
            OldKey::FirstDelivery
        );
        let none = [key(B, KeyStatus::Inactive)];
        let e = pick_old_key("svc", "ssm:/ci", &none, None).unwrap_err();
        assert!(
            matches!(e, ServiceError::Refusal(Refusal::NoActiveKey { .. })),
            "{e}"
        );
    }
}
