//! A job: one key to rotate, as a front end hands it to [`super::run`].
//! It names its subject (whose key), how IAM is reached, and every
//! destination holding the key.

// See engine.rs: one error per key, its size is no cost.
#![allow(clippy::result_large_err)]

use std::sync::{Arc, OnceLock};

use aws_config::SdkConfig;

use super::access::{Access, Opened};
use super::error::RotateError;
use crate::destination::Destination;
use crate::journal::{AccessSpec, OldKeyAction};
use crate::model::mask_key_id;

/// Whose key a job rotates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// The user of the key the job's first destination holds, asked of STS
    /// with that key (a credentials-file profile).
    OfKey,
    /// Named by the caller (from an inventory): the first destination must
    /// hold `old_key_id`, else nothing is done.
    Known {
        account_id: String,
        user_arn: String,
        old_key_id: String,
    },
    /// A user named by the caller (a binding, `--user`): the key rotated
    /// is the one the first destination holds, read once under the user's
    /// lease, which must be an active key of the user. A destination
    /// holding none yet gets a first delivery of the user's only active
    /// key (issue 7). IAM is reached through the job's session; nothing
    /// signs with the old key.
    User {
        account_id: String,
        user_arn: String,
    },
}

impl Subject {
    /// The key the caller named, if it named one.
    pub fn named_key(&self) -> Option<&str> {
        match self {
            Subject::OfKey | Subject::User { .. } => None,
            Subject::Known { old_key_id, .. } => Some(old_key_id),
        }
    }

    /// The account the caller named, if it named one.
    pub fn account_id(&self) -> Option<&str> {
        match self {
            Subject::OfKey => None,
            Subject::Known { account_id, .. } | Subject::User { account_id, .. } => {
                Some(account_id)
            }
        }
    }

    /// Refuses a destination holding another key than the one named.
    pub(super) fn check(&self, label: &str, holds: &str) -> Result<(), RotateError> {
        match self {
            Subject::Known { old_key_id, .. } if old_key_id != holds => {
                Err(RotateError::NotTheNamedKey {
                    target: label.to_string(),
                    named: mask_key_id(old_key_id),
                    holds: mask_key_id(holds),
                })
            }
            _ => Ok(()),
        }
    }
}

/// One key to rotate, naming its three things: the subject, how IAM is
/// reached, and every destination holding the key.
pub struct Job {
    pub subject: Subject,
    /// Every destination holding the key; the first one is read back.
    pub destinations: Vec<Arc<dyn Destination>>,
    pub access: Access,
    /// Region and endpoint of the profile (credentials are replaced).
    pub config: SdkConfig,
    /// For messages: `profiles dev, ci`.
    pub label: String,
    /// What becomes of the old key, when this job asks otherwise than the
    /// run (a `[[service]]` entry's `old_key`).
    pub old_key: Option<OldKeyAction>,
    /// Rotate only a key older than this many days, when this job asks
    /// otherwise than the run (rekey.toml's `max_age` for its account).
    pub max_age_days: Option<i64>,
    /// The way in, once opened (by the run, after the subject is known).
    pub(super) opened: OnceLock<Opened>,
}

impl Job {
    pub fn new(
        subject: Subject,
        access: Access,
        destinations: Vec<Arc<dyn Destination>>,
        config: SdkConfig,
        label: String,
    ) -> Self {
        Job {
            subject,
            destinations,
            access,
            config,
            label,
            old_key: None,
            max_age_days: None,
            opened: OnceLock::new(),
        }
    }

    /// This job with its own old-key action instead of the run's.
    pub fn with_old_key(mut self, action: Option<OldKeyAction>) -> Self {
        self.old_key = action;
        self
    }

    /// This job rotating only a key older than `days` (None: as the run
    /// says).
    pub fn with_max_age(mut self, days: Option<i64>) -> Self {
        self.max_age_days = days;
        self
    }

    /// What the journal keeps of the way in.
    pub(super) fn access_spec(&self) -> AccessSpec {
        self.opened
            .get()
            .map_or(AccessSpec::OldKey, |o| o.spec.clone())
    }
}
