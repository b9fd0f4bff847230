//! [`JobSpec`]: one rotation's unit of work as a value — whose key, how
//! IAM is reached, every destination holding the key, and the rules the
//! job asks for — with no live client in it, so it can be printed as a
//! plan, put on a queue or stored, and opened later by [`Job::open`], the
//! one constructor, over the run's [`Deps`](crate::aws::Deps) (issue 16).
//! A fresh rotation's spec is made from what a person named (profiles,
//! bindings); a resumed one's from the journal ([`JobSpec::resumed`]);
//! both open the same way.
//!
//! # JSON
//!
//! ```json
//! {
//!   "label": "user ci-bot in account 222222222222",
//!   "subject": {"kind": "user", "account_id": "222222222222",
//!               "user_arn": "arn:aws:iam::222222222222:user/ci-bot"},
//!   "access": {"kind": "role",
//!              "role": "arn:aws:iam::222222222222:role/OrganizationAccountAccessRole"},
//!   "destinations": [
//!     {"kind": "secretsmanager", "secret_id": "ci/bot", "region": null,
//!      "role": "arn:aws:iam::222222222222:role/OrganizationAccountAccessRole"}
//!   ],
//!   "old_key": "keep",
//!   "max_age_days": 90
//! }
//! ```
//!
//! - `label`: how messages name the job (`profile dev`, `user U in account
//!   A`, `rotation #7`).
//! - `subject` ([`Subject`]), tagged by `kind`: `of_key` (the user of the
//!   key the first destination holds, asked of STS), `known` (`account_id`,
//!   `user_arn`, `old_key_id`: the first destination must hold that key),
//!   `user` (`account_id`, `user_arn`: the key the first destination holds,
//!   read under the user's lease).
//! - `access` ([`Access`]), tagged by `kind`: `old_key`, `mfa_session`
//!   (`serial`; never the code), `caller`, `profile` (`name`), `role`
//!   (`role`, a name or an ARN; `external_id` when the trust asks for one).
//! - `destinations`: the journal's [`DestinationSpec`]s, first one read
//!   back — `shared_file` (`file`: `credentials` or `config`, an absolute
//!   `path`, `profiles`), `secretsmanager` (`secret_id`, `region`, `role`,
//!   `external_id`), `ssm` (`path`, `form`: `json`, `pair` or null,
//!   `region`, `role`, `external_id`), or a string written before
//!   destinations were typed (`credentials:PATH#a,b`).
//! - optional, left out when unset: `settings_profile` (the shared-file
//!   profile whose `region` and `endpoint_url` the job's AWS calls use),
//!   `old_key` (`keep`, `deactivate` or `delete`; else the run's), and
//!   `max_age_days` (rotate only an older key; else the run's).
//!
//! An access or destination of a kind this build does not know (a newer
//! rekey wrote it) is kept as it was read, and refused by name when the
//! job is opened or run. Nothing in a spec is a secret.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::access::Access;
use super::job::Subject;
use super::targets::KeyTarget;
use crate::awsfiles::{FileKind, Profiles};
use crate::destination::DestinationSpec;
use crate::journal::{OldKeyAction, Rotation};

/// One key to rotate, as data: see the module docs for its JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// For messages: `profiles dev, ci`, `user ci-bot in account A`.
    pub label: String,
    pub subject: Subject,
    pub access: Access,
    /// Every destination holding the key; the first one is read back.
    pub destinations: Vec<DestinationSpec>,
    /// The shared-file profile whose region and endpoint the job's AWS
    /// calls use (a credentials-file job's key holder); None: the caller's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings_profile: Option<String>,
    /// What becomes of the old key, when this job asks otherwise than the
    /// run (a `[[service]]` entry's `old_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_key: Option<OldKeyAction>,
    /// Rotate only a key older than this many days, when this job asks
    /// otherwise than the run (rekey.toml's `max_age` for its account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_days: Option<i64>,
    /// Why the policy exempts its user (`tag rekey:exempt=true`): an
    /// exempt job is reported and never rotated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exempt: Option<String>,
}

impl JobSpec {
    /// A job with the run's rules, its calls in the caller's region.
    pub fn new(
        label: String,
        subject: Subject,
        access: Access,
        destinations: Vec<DestinationSpec>,
    ) -> JobSpec {
        JobSpec {
            label,
            subject,
            access,
            destinations,
            settings_profile: None,
            old_key: None,
            max_age_days: None,
            exempt: None,
        }
    }

    /// The job of one key of the shared credentials file: every profile
    /// holding it (and every profile of the config file holding it too),
    /// its calls made with the holder profile's region and endpoint. The
    /// key's user is asked of STS. Pure.
    pub fn of_key(key: &KeyTarget, profiles: &Profiles, access: Access, label: String) -> JobSpec {
        let file = |kind, path: &Path, names: &[String]| DestinationSpec::SharedFile {
            file: kind,
            // Absolute, so a run started elsewhere finds the same file.
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            profiles: names.to_vec(),
        };
        let credentials = profiles.credentials().path();
        let mut destinations = vec![file(FileKind::Credentials, credentials, &key.profiles)];
        if !key.config_profiles.is_empty() {
            let config = profiles.config().path();
            destinations.push(file(FileKind::Config, config, &key.config_profiles));
        }
        JobSpec {
            settings_profile: Some(key.holder.clone()),
            ..JobSpec::new(label, Subject::OfKey, access, destinations)
        }
    }

    /// The job that finishes or undoes rotation `r`, which an earlier run
    /// left unfinished: its user and old key, the way in and the
    /// destinations it was begun with, its old-key action, its calls made
    /// with the region and endpoint of the first profile it delivers to.
    /// Pure.
    pub fn resumed(r: &Rotation) -> JobSpec {
        let first_profile = r.destinations.iter().find_map(|d| match d {
            DestinationSpec::SharedFile { profiles, .. } => profiles.first().cloned(),
            _ => None,
        });
        JobSpec {
            settings_profile: first_profile,
            old_key: Some(r.old_key_action),
            ..JobSpec::new(
                format!("rotation #{}", r.id),
                Subject::Known {
                    account_id: r.account_id.clone(),
                    user_arn: r.user_arn.clone(),
                    old_key_id: r.old_key_id.clone(),
                },
                Access::from(&r.access),
                r.destinations.clone(),
            )
        }
    }
}

#[cfg(test)]
mod tests;
