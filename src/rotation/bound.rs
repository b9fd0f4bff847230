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

use futures::{StreamExt, stream};
use time::OffsetDateTime;

use super::access::Access;
use super::bindings::{Binding, DESTINATION_TAG, TagError, parse_tag};
use super::engine::{Report, Status};
use super::job::{Job, Subject};
use super::spec::JobSpec;
use crate::aws::{AccountClients, Deps, Signer, with_credentials};
use crate::config::{Policies, ServiceEntry};
use crate::destination::{DestinationError, SecretRole};
use crate::discovery::{self, Discovery, Target};
use crate::error::CallError;
use crate::inventory::authorization_details;
use crate::journal::OldKeyAction;
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
    #[error("account {account}: user {user}: cannot open a destination")]
    Open {
        account: String,
        user: String,
        #[source]
        source: DestinationError,
    },
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
            BoundError::Open { account, user, .. } => {
                (account, Some(user.as_str()), Status::Failed)
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
/// `[[service]]` entry asks for, and marked exempt where its account's
/// policy exempts its user: tag, group or name, as audit judges it),
/// `concurrency` accounts at a time, and why
/// the others got none. Roles are assumed with the caller's credentials
/// (`deps`' base), once per run: an account entered through a role lends
/// that session to its users' jobs and their destinations. `external_id`
/// goes with every role; `secret_role` reaches secrets kept in another
/// account than their user's, unless an entry names its own.
pub async fn bound_jobs(
    discovery: Discovery,
    deps: &Deps,
    rules: (&[ServiceEntry], &Policies, OffsetDateTime),
    external_id: Option<&str>,
    secret_role: Option<&SecretRole>,
    concurrency: usize,
) -> (Vec<Job>, Vec<BoundError>) {
    let results: Vec<_> = stream::iter(discovery.targets)
        .map(|target| account_jobs(target, deps, rules, external_id, secret_role))
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

/// How an account was entered: the way in its users' jobs take when their
/// entry names no role (a profile by its name, so a resumed rotation opens
/// that profile again), the role it was entered through, if any, and the
/// credentials its users are listed with.
pub(crate) struct Entered {
    pub(crate) access: Access,
    pub(crate) role: Option<(String, Option<String>)>,
    pub(crate) config: aws_config::SdkConfig,
}

/// Enters the account `target` names: with its credentials in hand, or
/// through its role (one AssumeRole, kept in `deps` for its jobs).
pub(crate) async fn enter(target: Target, deps: &Deps) -> Result<Entered, BoundError> {
    let account = target.account_id.clone().unwrap_or_default();
    match target.access {
        discovery::Access::Ready {
            config, profile, ..
        } => {
            let access = match profile {
                Some(name) => {
                    deps.remember_profile(&name, *config.clone()).await;
                    Access::Profile { name }
                }
                None => Access::Caller,
            };
            Ok(Entered {
                access,
                role: None,
                config: *config,
            })
        }
        discovery::Access::AssumeRole {
            role_arn,
            external_id,
            ..
        } => {
            let session = deps
                .role_session(&Signer::Caller, &role_arn, external_id.as_deref())
                .await
                .map_err(|source| BoundError::Enter {
                    account: account.clone(),
                    source,
                })?;
            Ok(Entered {
                access: Access::Role {
                    role: role_arn.clone(),
                    external_id: external_id.clone(),
                },
                role: Some((role_arn, external_id)),
                config: with_credentials(deps.base(), session),
            })
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
    deps: &Deps,
    rules: (&[ServiceEntry], &Policies, OffsetDateTime),
    external_id: Option<&str>,
    secret_role: Option<&SecretRole>,
) -> (Vec<Job>, Vec<BoundError>) {
    let account = target.account_id.clone().unwrap_or_default();
    let entered = match enter(target, deps).await {
        Ok(entered) => entered,
        Err(e) => return (vec![], vec![e]),
    };
    let users = match authorization_details(&AccountClients::new(&entered.config)).await {
        Ok(users) => users,
        Err(source) => return (vec![], vec![BoundError::Users { account, source }]),
    };
    let (specs, mut errors) = bound_specs(
        &account,
        &users,
        rules,
        &entered,
        (external_id, secret_role),
    );
    let mut jobs = Vec::new();
    for spec in specs {
        let user = spec.subject.user_name().unwrap_or_default().to_string();
        match Job::open(spec, deps).await {
            Ok(job) => jobs.push(job),
            Err(source) => errors.push(BoundError::Open {
                account: account.clone(),
                user,
                source,
            }),
        }
    }
    (jobs, errors)
}

/// The jobs of the bound users among `users` of `account` (entered as
/// `entered` says), each with its exemption at `now`, as data; what cannot
/// be bound is said in the errors. Pure.
pub(crate) fn bound_specs(
    account: &str,
    users: &[User],
    (entries, policies, now): (&[ServiceEntry], &Policies, OffsetDateTime),
    entered: &Entered,
    (external_id, secret_role): (Option<&str>, Option<&SecretRole>),
) -> (Vec<JobSpec>, Vec<BoundError>) {
    let (bound, errors) = bindings_of(account, users, entries);
    let mut specs = Vec::new();
    for b in bound {
        // The user's ARN (with its path) comes from the same listing.
        let Some(user) = users.iter().find(|u| u.user_name == b.user_name) else {
            continue;
        };
        specs.push(JobSpec {
            exempt: policies.for_account(Some(account)).exempts(user, now),
            ..bound_spec(&b, user, account, entered, external_id, secret_role)
        });
    }
    (specs, errors)
}

/// The job of bound user `b` (`user`, of `account`, entered as `entered`
/// says). Pure.
fn bound_spec(
    b: &Bound,
    user: &User,
    account: &str,
    entered: &Entered,
    external_id: Option<&str>,
    secret_role: Option<&SecretRole>,
) -> JobSpec {
    let access = match &b.role {
        Some(role) => Access::Role {
            role: role.clone(),
            external_id: external_id.map(str::to_string),
        },
        None => entered.access.clone(),
    };
    // The secret role comes from the run or the entry, never from the
    // user's tag: whoever may tag users would then choose what rekey
    // assumes (a confused deputy).
    let secret_role = b.secret_role.as_ref().or(secret_role);
    // Destinations in an account entered through a role are reached
    // through that role, journaled with each: a resumed rotation then
    // reaches them the same way, not with the run's own credentials
    // (another account's).
    let own = (entered.role.as_ref()).map(|(arn, id)| (arn.as_str(), id.as_deref()));
    let destinations = (b.destinations.iter())
        .map(|d| d.spec(account, secret_role, own))
        .collect();
    JobSpec {
        old_key: b.old_key,
        ..JobSpec::new(
            format!("user {} in account {account}", b.user_name),
            Subject::User {
                account_id: account.to_string(),
                user_arn: user.user_arn.clone(),
            },
            access,
            destinations,
        )
    }
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
