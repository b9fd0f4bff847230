//! Jobs for service users named by account and user name (`rekey rotate
//! --account A --user U --to …`), not by a key in a credentials file: IAM is
//! reached through a role in the user's account (or the caller's own
//! credentials, only when the user's account is the caller's: checked
//! against GetCallerIdentity before anything else, issue 15 #1), and the
//! key rotated is the one the
//! first destination holds, which must be one of the user's active keys
//! ([`Subject::User`]: read once, under the user's lease; a destination
//! holding none gets the user's only active key). Building a job reads
//! neither the destination nor the user's keys: the rotation does, right
//! before it acts.

// See engine.rs: one error per job, built once; its size is no cost.
#![allow(clippy::result_large_err)]

use super::access::{Access, AccessError};
use super::engine::{Remedy, Status};
use super::job::{Job, Subject};
use super::spec::JobSpec;
use crate::aws::{AccountClients, Deps, Identity, caller_identity, with_credentials};
use crate::destination::{Binding, DestinationError, KeyPair, SecretRole};
use crate::error::CallError;
use crate::model::is_account_id;

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
    #[error("user {user}: cannot open a destination")]
    Open {
        user: String,
        #[source]
        source: DestinationError,
    },
    #[error("`{account_id}` is not a 12-digit AWS account ID")]
    NotAnAccountId { account_id: String },
    /// The caller's own credentials reach only the caller's own account:
    /// a user of the same name there is not the user asked for.
    #[error(
        "user {user} in account {account_id}: your credentials are of account {caller_account}, and without a role they reach only users of that account; nothing was changed"
    )]
    OtherAccount {
        user: String,
        account_id: String,
        caller_account: String,
    },
}

impl ServiceError {
    /// How the job that could not be built ends in the run's report:
    /// refused when rekey would not act, failed when a call failed.
    pub fn status(&self) -> Status {
        match self {
            ServiceError::Refused { .. }
            | ServiceError::NotAnAccountId { .. }
            | ServiceError::OtherAccount { .. } => Status::Refused,
            ServiceError::Access { .. } | ServiceError::Call { .. } | ServiceError::Open { .. } => {
                Status::Failed
            }
        }
    }

    /// What to do next, when there is something to do.
    pub fn remedy(&self) -> Option<Remedy> {
        match self {
            ServiceError::OtherAccount { .. } => Some(Remedy::Role),
            _ => None,
        }
    }
}

/// Builds the job rotating `user_name`'s key in `account_id` into the
/// destinations `to` names (reached with the caller's credentials; a
/// secret of another account through `secret_role` there), reaching IAM
/// with `access` (a role or the caller). With the caller's own
/// credentials, `account_id` must be the caller's account.
pub async fn service_job(
    deps: &Deps,
    account_id: &str,
    user_name: &str,
    access: Access,
    to: &[Binding],
    secret_role: Option<&SecretRole>,
) -> Result<Job, ServiceError> {
    if !is_account_id(account_id) {
        return Err(ServiceError::NotAnAccountId {
            account_id: account_id.to_string(),
        });
    }
    let caller = deps.base();
    let me = caller_identity(&AccountClients::new(caller).sts)
        .await
        .map_err(|source| ServiceError::Call {
            doing: "asking STS who the caller is".into(),
            source,
        })?;
    if access == Access::Caller && me.account_id != account_id {
        return Err(ServiceError::OtherAccount {
            user: user_name.to_string(),
            account_id: account_id.to_string(),
            caller_account: me.account_id,
        });
    }
    let user_identity = Identity {
        account_id: account_id.to_string(),
        arn: format!("arn:{}:iam::{account_id}:user/{user_name}", me.partition),
        partition: me.partition.clone(),
    };
    // Only the caller's way in needs no key: the old key is not known yet.
    // The job opens it again (a role's session is kept in `deps`).
    let nobody = KeyPair {
        access_key_id: String::new(),
        secret: String::new().into(),
    };
    let opened = access
        .open(deps, caller, &nobody, &user_identity)
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
    if to.is_empty() {
        return Err(ServiceError::Refused {
            user: user_name.to_string(),
            why: "no destination given".into(),
        });
    }
    let spec = JobSpec::new(
        format!("user {user_name} in account {account_id}"),
        Subject::User {
            account_id: account_id.to_string(),
            user_arn,
        },
        access,
        to.iter()
            .map(|b| b.spec(account_id, secret_role, None))
            .collect(),
    );
    Job::open(spec, deps)
        .await
        .map_err(|source| ServiceError::Open {
            user: user_name.to_string(),
            source,
        })
}
