//! A job: one key to rotate, as a front end hands it to [`super::run`] —
//! its [`JobSpec`] (data: the subject, whose key; how IAM is reached;
//! every destination holding the key), opened by [`Job::open`], the one
//! constructor, whether the rotation is fresh or resumed: the opened
//! destinations and the job's AWS configuration, over the run's [`Deps`].

// See engine.rs: one error per key, its size is no cost.
#![allow(clippy::result_large_err)]

use std::sync::{Arc, OnceLock};

use aws_config::SdkConfig;
use serde::{Deserialize, Serialize};

use super::access::{Access, AccessError, Opened};
use super::error::RotateError;
use super::spec::JobSpec;
use crate::aws::{Deps, Identity, Signer};
use crate::destination::{self, Destination, DestinationError, KeyPair, Reach};
use crate::journal::{AccessSpec, OldKeyAction};
use crate::model::mask_key_id;

/// Whose key a job rotates.
///
/// JSON: an object tagged by `"kind"` — `{"kind": "of_key"}`,
/// `{"kind": "known", "account_id", "user_arn", "old_key_id"}`,
/// `{"kind": "user", "account_id", "user_arn"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
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

    /// The user's name, when the caller named the user (from the ARN).
    pub fn user_name(&self) -> Option<&str> {
        match self {
            Subject::OfKey => None,
            Subject::Known { user_arn, .. } | Subject::User { user_arn, .. } => {
                super::user_name_of(user_arn)
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

/// One key to rotate: its spec, and what opening the spec made — its
/// destinations and AWS configuration, over the run's [`Deps`]. A `Job`
/// reads as its spec (`job.label`, `job.subject`, …: [`std::ops::Deref`]);
/// it cannot be built any other way than by [`Job::open`].
pub struct Job {
    pub spec: JobSpec,
    /// Every destination holding the key, opened from the spec's; the
    /// first one is read back.
    pub destinations: Vec<Arc<dyn Destination>>,
    /// Region and endpoint of the job's profile, and for a job reaching
    /// IAM through a profile, its credentials (the old key's or a
    /// session's replace them for IAM calls).
    pub config: SdkConfig,
    deps: Deps,
    /// The way in, once opened (by the run, after the subject is known).
    pub(super) opened: OnceLock<Opened>,
}

impl std::ops::Deref for Job {
    type Target = JobSpec;

    fn deref(&self) -> &JobSpec {
        &self.spec
    }
}

impl Job {
    /// Opens `spec`, fresh or resumed alike: the job's configuration (a
    /// profile's way in loads that profile, as discovery does; else the
    /// caller's, with the region and endpoint of the spec's
    /// `settings_profile`) and each destination ([`destination::open`]),
    /// reached with it. Makes no AWS call: clients are built, sessions
    /// assumed on first use. A destination that cannot be opened (a kind
    /// this build does not know, an old string naming a file that is gone)
    /// is the error.
    pub async fn open(spec: JobSpec, deps: &Deps) -> Result<Job, DestinationError> {
        let (config, signer) = match &spec.access {
            Access::Profile { name } => (deps.profile(name).await, Signer::Profile(name.clone())),
            _ => (
                deps.settings_of(spec.settings_profile.as_deref()),
                Signer::Caller,
            ),
        };
        let reach = Reach {
            config: config.clone(),
            signer,
            deps: deps.clone(),
            user_account: spec.subject.account_id().map(str::to_string),
        };
        let destinations = spec
            .destinations
            .iter()
            .map(|d| destination::open(d, &reach))
            .collect::<Result<_, _>>()?;
        Ok(Job {
            spec,
            destinations,
            config,
            deps: deps.clone(),
            opened: OnceLock::new(),
        })
    }

    /// This job with its own old-key action instead of the run's.
    pub fn with_old_key(mut self, action: Option<OldKeyAction>) -> Self {
        self.spec.old_key = action;
        self
    }

    /// This job rotating only a key older than `days` (None: as the run
    /// says).
    pub fn with_max_age(mut self, days: Option<i64>) -> Self {
        self.spec.max_age_days = days;
        self
    }

    /// Opens the spec's way in to IAM for the user `identity` names, once.
    pub(super) async fn open_access(
        &self,
        old: &KeyPair,
        identity: &Identity,
    ) -> Result<(), AccessError> {
        if self.opened.get().is_some() {
            return Ok(());
        }
        let opened = (self.spec.access)
            .open(&self.deps, &self.config, old, identity)
            .await?;
        let _ = self.opened.set(opened);
        Ok(())
    }

    /// Reopens the way in a journaled rotation of a user of `account` went.
    pub(super) async fn reopen_access(
        &self,
        spec: &AccessSpec,
        account: &str,
    ) -> Result<(), AccessError> {
        let opened = Access::reopen(spec, &self.deps, &self.config, account).await?;
        let _ = self.opened.set(opened);
        Ok(())
    }

    /// What the journal keeps of the way in.
    pub(super) fn access_spec(&self) -> AccessSpec {
        self.opened
            .get()
            .map_or(AccessSpec::OldKey, |o| o.spec.clone())
    }
}
