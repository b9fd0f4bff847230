//! Jobs for every bound service user of the selected accounts (`rekey
//! rotate --service`, issue 7): accounts come from discovery as audit finds
//! them, users and tags from one GetAccountAuthorizationDetails page per
//! 1,000 users; a user bound by its `rekey:destination` tag or a
//! `[[service]]` entry becomes a [`Job`] for [`Subject::User`], with no
//! further call: its ARN comes from that listing, and the account's role
//! session is the job's way in (unless its entry names another role). One
//! account's or one user's failure never stops the others.

// See engine.rs: one error per job, built once; its size is no cost.
#![allow(clippy::result_large_err)]

use aws_config::SdkConfig;
use futures::{StreamExt, stream};

use super::access::{Access, Opened};
use super::bindings::{Binding, DESTINATION_TAG, TagError, parse_tag};
use super::engine::{Report, Status};
use super::job::{Job, Subject};
use crate::aws::{AccountClients, assume_role, with_credentials};
use crate::config::ServiceEntry;
use crate::destination::{Reach, SecretRole};
use crate::discovery::{self, Discovery, Target};
use crate::error::CallError;
use crate::inventory::authorization_details;
use crate::journal::{AccessSpec, OldKeyAction};
use crate::model::{User, is_account_id};

/// One user to rotate, as its bindings say. Pure data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    pub user_name: String,
    /// The `[[service]]` entry's first, then the tag's; the first is read
    /// back and names the key rotated.
    pub destinations: Vec<Binding>,
    /// From the `[[service]]` entry; else the way the account was entered.
    pub role: Option<String>,
    pub old_key: Option<OldKeyAction>,
    /// From the `[[service]]` entry; else the run's. Never from the tag.
    pub secret_role: Option<SecretRole>,
}

/// Why an account or a user got no job. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum BoundError {
    #[error("account {account}: cannot enter it")]
    Enter {
        account: String,
        #[source]
        source: CallError,
    },
    #[error("account {account}: cannot read its users and their tags")]
    Users {
        account: String,
        #[source]
        source: CallError,
    },
    // The tag's error is the source: the chain says it, once.
    #[error("account {account}")]
    Tag {
        account: String,
        #[source]
        source: TagError,
    },
    #[error("account {account}: user {user} of a [[service]] entry does not exist")]
    NoSuchUser { account: String, user: String },
}

impl BoundError {
    /// What the run's report says of the account or user that got no job
    /// (issue 15 #4): a bad binding is refused, an account that could not
    /// be read failed.
    pub fn report(&self) -> Report {
        let (account, user, status) = match self {
            BoundError::Enter { account, .. } | BoundError::Users { account, .. } => {
                (account, None, Status::Failed)
            }
            BoundError::Tag { account, source } => (account, Some(source.user()), Status::Refused),
            BoundError::NoSuchUser { account, user } => {
                (account, Some(user.as_str()), Status::Refused)
            }
        };
        let target = match user {
            Some(user) => format!("user {user} in account {account}"),
            None => format!("account {account}"),
        };
        Report {
            account_id: is_account_id(account).then(|| account.clone()),
            user_name: user.map(str::to_string),
            ..Report::failed(&target, status)
        }
    }

    /// Whether a whole account got no job (it could not be entered or
    /// read), rather than one user.
    pub fn is_account_wide(&self) -> bool {
        matches!(self, BoundError::Enter { .. } | BoundError::Users { .. })
    }
}

/// The bound users of one account: every user with a `rekey:destination`
/// tag or a `[[service]]` entry (of this account). Pure.
pub fn bindings_of(
    account_id: &str,
    users: &[User],
    entries: &[ServiceEntry],
) -> (Vec<Bound>, Vec<BoundError>) {
    let mut bound = Vec::new();
    let mut errors = Vec::new();
    let entries: Vec<&ServiceEntry> = entries.iter().filter(|e| e.account == account_id).collect();
    for e in &entries {
        if !users.iter().any(|u| u.user_name == e.user) {
            errors.push(BoundError::NoSuchUser {
                account: account_id.to_string(),
                user: e.user.clone(),
            });
        }
    }
    for user in users {
        let entry = entries.iter().find(|e| e.user == user.user_name);
        let tagged = match user.tags.get(DESTINATION_TAG) {
            None => Vec::new(),
            Some(value) => match parse_tag(&user.user_name, value) {
                Ok(b) => b,
                Err(source) => {
                    errors.push(BoundError::Tag {
                        account: account_id.to_string(),
                        source,
                    });
                    continue;
                }
            },
        };
        let mut destinations = entry.map(|e| e.bindings()).unwrap_or_default();
        for b in tagged {
            if !destinations.contains(&b) {
                destinations.push(b);
            }
        }
        if destinations.is_empty() {
            continue;
        }
        bound.push(Bound {
            user_name: user.user_name.clone(),
            destinations,
            role: entry.and_then(|e| e.role.clone()),
            old_key: entry.and_then(|e| e.old_key),
            secret_role: entry.and_then(|e| e.secret_role()),
        });
    }
    (bound, errors)
}

/// Every job of the discovered accounts (each with the old-key action its
/// `[[service]]` entry asks for), `concurrency` accounts at a time, and why
/// the others got none. `base` is the caller (roles are assumed with it);
/// `external_id` goes with every role; `secret_role` reaches secrets kept
/// in another account than their user's, unless an entry names its own.
pub async fn bound_jobs(
    discovery: Discovery,
    base: &SdkConfig,
    entries: &[ServiceEntry],
    external_id: Option<&str>,
    secret_role: Option<&SecretRole>,
    concurrency: usize,
) -> (Vec<Job>, Vec<BoundError>) {
    let results: Vec<_> = stream::iter(discovery.targets)
        .map(|target| account_jobs(target, base, entries, external_id, secret_role))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut jobs = Vec::new();
    let mut errors = Vec::new();
    for (j, e) in results {
        jobs.extend(j);
        errors.extend(e);
    }
    // A stable order, whatever account answered first.
    jobs.sort_by(|a, b| a.label.cmp(&b.label));
    (jobs, errors)
}

/// An account as entered: its credentials, the caller a job's role is
/// assumed with, the way in a job takes when its entry names no role (a
/// profile's by its name, so a resumed rotation opens that profile
/// again), and the account's role session when it was entered through
/// one — opened once, shared by its users' jobs and their destinations.
struct Entered {
    account: String,
    config: SdkConfig,
    caller: SdkConfig,
    access: Access,
    session: Option<(String, Option<String>, aws_credential_types::Credentials)>,
}

/// Enters the account `target` names, as discovery says to.
async fn enter(target: Target, base: &SdkConfig) -> Result<Entered, BoundError> {
    let account = target.account_id.clone().unwrap_or_default();
    match target.access {
        discovery::Access::Ready {
            config, profile, ..
        } => {
            let access = profile.map_or(Access::Caller, |name| Access::Profile { name });
            Ok(Entered {
                account,
                config: *config.clone(),
                caller: *config,
                access,
                session: None,
            })
        }
        discovery::Access::AssumeRole {
            role_arn,
            external_id: ext,
            ..
        } => {
            let sts = AccountClients::new(base).sts;
            match assume_role(&sts, &role_arn, ext.as_deref()).await {
                Ok(creds) => Ok(Entered {
                    account,
                    config: with_credentials(base, creds.clone()),
                    caller: base.clone(),
                    access: Access::Role {
                        role: role_arn.clone(),
                        external_id: ext.clone(),
                    },
                    session: Some((role_arn, ext, creds)),
                }),
                Err(source) => Err(BoundError::Enter { account, source }),
            }
        }
        discovery::Access::Failed(source) => {
            let account = if account.is_empty() {
                target.via
            } else {
                account
            };
            Err(BoundError::Enter { account, source })
        }
    }
}

async fn account_jobs(
    target: Target,
    base: &SdkConfig,
    entries: &[ServiceEntry],
    external_id: Option<&str>,
    secret_role: Option<&SecretRole>,
) -> (Vec<Job>, Vec<BoundError>) {
    let entered = match enter(target, base).await {
        Ok(entered) => entered,
        Err(e) => return (vec![], vec![e]),
    };
    let account = entered.account.clone();
    let users = match authorization_details(&AccountClients::new(&entered.config)).await {
        Ok(users) => users,
        Err(source) => return (vec![], vec![BoundError::Users { account, source }]),
    };
    let (bound, errors) = bindings_of(&account, &users, entries);
    let jobs = bound
        .iter()
        .filter_map(|b| {
            // The user's ARN (with its path) comes from the same listing.
            let user = users.iter().find(|u| u.user_name == b.user_name)?;
            Some(user_job(
                &entered,
                b,
                &user.user_arn,
                external_id,
                secret_role,
            ))
        })
        .collect();
    (jobs, errors)
}

/// The job of the bound user `b` (of ARN `user_arn`) of the account
/// `entered`.
fn user_job(
    entered: &Entered,
    b: &Bound,
    user_arn: &str,
    external_id: Option<&str>,
    secret_role: Option<&SecretRole>,
) -> Job {
    let account = &entered.account;
    let (access, opened) = match &b.role {
        Some(role) => (
            Access::Role {
                role: role.clone(),
                external_id: external_id.map(str::to_string),
            },
            None,
        ),
        None => (
            entered.access.clone(),
            entered
                .session
                .as_ref()
                .map(|(role_arn, ext, creds)| Opened {
                    spec: AccessSpec::Role {
                        role_arn: role_arn.clone(),
                        external_id: ext.clone(),
                    },
                    session: Some(creds.clone()),
                }),
        ),
    };
    // The secret role comes from the run or the entry, never from the
    // user's tag: whoever may tag users would then choose what rekey
    // assumes (a confused deputy).
    let secret_role = b.secret_role.as_ref().or(secret_role);
    // Destinations in an account entered through a role are reached
    // through that role (its open session), journaled with each: a
    // resumed rotation then reaches them the same way, not with the run's
    // own credentials (another account's).
    let own = match &entered.session {
        Some((arn, ext, creds)) => Reach::Role {
            arn,
            external_id: ext.as_deref(),
            session: Some(creds),
        },
        None => Reach::With(&entered.config),
    };
    let destinations = b
        .destinations
        .iter()
        .map(|d| d.open(account, secret_role, own, &entered.caller))
        .collect();
    let job = Job::new(
        Subject::User {
            account_id: account.clone(),
            user_arn: user_arn.to_string(),
        },
        access,
        destinations,
        entered.caller.clone(),
        format!("user {} in account {account}", b.user_name),
    )
    .with_old_key(b.old_key);
    if let Some(opened) = opened {
        let _ = job.opened.set(opened);
    }
    job
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::error::error_chain;

    fn user(name: &str, tag: Option<&str>) -> User {
        User {
            user_name: name.into(),
            user_arn: format!("arn:aws:iam::111111111111:user/{name}"),
            path: "/".into(),
            tags: tag
                .map(|t| BTreeMap::from([(DESTINATION_TAG.to_string(), t.to_string())]))
                .unwrap_or_default(),
            groups: vec![],
        }
    }

    fn entry(account: &str, user: &str, to: &[&str]) -> ServiceEntry {
        ServiceEntry {
            account: account.into(),
            user: user.into(),
            to: to.iter().map(|t| t.to_string()).collect(),
            role: Some("Rotator".into()),
            old_key: Some(OldKeyAction::Delete),
            secret_role: None,
            secret_external_id: None,
        }
    }

    #[test]
    fn a_bad_tag_is_said_once_along_the_chain() {
        let (_, errors) = bindings_of("111111111111", &[user("broken", Some("ssm:nope"))], &[]);
        let e = errors.into_iter().next().expect("the bad tag's error");
        let chain = error_chain(&e);
        assert!(
            chain.starts_with(
                "account 111111111111: user broken: tag rekey:destination holds `ssm:nope`"
            ),
            "{chain}"
        );
        // anyhow's `{:#}` (the CLI's error line) joins every message as it is.
        let printed = format!("{:#}", anyhow::Error::new(e));
        assert_eq!(printed, chain);
    }

    #[test]
    fn tagged_users_and_entries_of_the_account_are_bound_a_bad_tag_skips_only_its_user() {
        let users = [
            user("tagged", Some("ssm:/a secretsmanager:b")),
            user("both", Some("ssm:/tag ssm:/entry")),
            user("plain", None),
            user("broken", Some("ssm:nope")),
        ];
        let entries = [
            entry("111111111111", "both", &["ssm:/entry"]),
            entry("222222222222", "plain", &["ssm:/elsewhere"]),
            entry("111111111111", "gone", &["ssm:/x"]),
        ];
        let (bound, errors) = bindings_of("111111111111", &users, &entries);
        let names: Vec<&str> = bound.iter().map(|b| b.user_name.as_str()).collect();
        assert_eq!(names, ["tagged", "both"]);
        assert_eq!(
            bound[1].destinations,
            [Binding::Ssm("/entry".into()), Binding::Ssm("/tag".into())]
        );
        assert_eq!(bound[1].role.as_deref(), Some("Rotator"));
        assert_eq!(bound[0].role, None);
        let said: Vec<String> = errors.iter().map(|e| error_chain(e)).collect();
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(
            said.iter()
                .any(|e| e.contains("user gone of a [[service]] entry")),
            "{said:?}"
        );
        assert!(
            said.iter()
                .any(|e| e.contains("user broken: tag rekey:destination holds `ssm:nope`")),
            "{said:?}"
        );
    }
}
