//! The facts of each account, for the planner (issue 17): its users and
//! keys as audit collects them (the same source, the same calls), the
//! journal's records of each key, the bound service users' jobs, the OU
//! the account is in (only when an exemption names OUs), and — for the
//! keys that could be retired, deactivated or deleted — a fresh
//! GetAccessKeyLastUsed: the credential report's may be hours old, and no
//! key is retired on a stale word.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use time::OffsetDateTime;

use super::exempt::Exemptions;
use super::lifecycle::{Due, KeyFacts, Lifecycle, due};
use super::plan::{GatheredAccount, GatheredKey, GatheredUser, facts_with_records};
use super::record::recorded;
use crate::aws::{AccountClients, Deps};
use crate::config::{Policies, ServiceEntry};
use crate::destination::SecretRole;
use crate::discovery::{self, Target};
use crate::error::error_chain;
use crate::inventory::{Source, collect, last_used};
use crate::journal::Journal;
use crate::rotation::JobSpec;
use crate::rotation::bound::{bound_specs, enter};

/// What gathering needs.
pub struct Context<'a> {
    pub deps: &'a Deps,
    pub journal: &'a dyn Journal,
    pub entries: &'a [ServiceEntry],
    pub policies: &'a Policies,
    pub exemptions: &'a Exemptions,
    pub source: Source,
    pub external_id: Option<&'a str>,
    pub secret_role: Option<&'a SecretRole>,
    /// The moment exemptions are judged at.
    pub now: OffsetDateTime,
}

/// One account's facts, with the bound users' job specs and the
/// configuration its IAM is reached with.
pub struct Gathered {
    pub account: GatheredAccount,
    /// The account's name, as discovery found it (Organizations).
    pub name: Option<String>,
    pub specs: Vec<JobSpec>,
    /// Users whose binding cannot be read, with why: nothing is done to
    /// their keys (a service key must not be taken for a person's).
    pub refused: BTreeMap<String, String>,
    pub config: SdkConfig,
    /// AWS requests made for it.
    pub calls: u64,
}

/// An account that could not be read: said in the plan, nothing done.
#[derive(Debug, Clone)]
pub struct Unreached {
    pub label: String,
    pub account_id: Option<String>,
    pub why: String,
}

/// Gathers the account `target` names.
pub async fn account(target: Target, cx: &Context<'_>) -> Result<Gathered, Unreached> {
    let label = target
        .account_id
        .clone()
        .unwrap_or_else(|| target.via.clone());
    let account_id = target.account_id.clone();
    let name = target.name.clone();
    let unreached = |why: String| Unreached {
        label: format!("account {label}"),
        account_id: account_id.clone(),
        why,
    };
    let partition = match &target.access {
        discovery::Access::Ready { identity, .. } => identity.partition.clone(),
        discovery::Access::AssumeRole { partition, .. } => partition.clone(),
        discovery::Access::Failed(_) => "aws".into(),
    };
    let ready_id = match &target.access {
        discovery::Access::Ready { identity, .. } => Some(identity.account_id.clone()),
        _ => None,
    };
    let entered = enter(target, cx.deps)
        .await
        .map_err(|e| unreached(error_chain(&e)))?;
    let account = ready_id.or(account_id.clone()).unwrap_or_default();
    let clients = cx.deps.clients().account(&entered.config);
    let inventory = collect(&clients, &account, &partition, cx.source)
        .await
        .map_err(|e| {
            unreached(format!(
                "cannot read its users and keys: {}",
                error_chain(&e)
            ))
        })?;
    let users: Vec<crate::model::User> = (inventory.users.iter())
        .filter(|u| !u.is_root)
        .map(|u| u.user.clone())
        .collect();
    let (specs, errors) = bound_specs(
        &account,
        &users,
        (cx.entries, cx.policies, cx.now),
        &entered,
        (cx.external_id, cx.secret_role),
    );
    let mut refused = BTreeMap::new();
    for e in &errors {
        if let Some(user) = e.report().user_name {
            refused.insert(user, error_chain(e));
        }
    }
    let gathered_users = users_of(cx, (&account, &partition), &inventory)
        .await
        .map_err(|e| unreached(error_chain(&e)))?;
    let ous = match cx.exemptions.names_ous() {
        true => ous_of(cx.deps, &account).await.map_err(unreached)?,
        false => Vec::new(),
    };
    Ok(Gathered {
        account: GatheredAccount {
            account_id: account,
            ous,
            access: entered.access.clone(),
            users: gathered_users,
        },
        name,
        specs,
        refused,
        calls: clients.calls.total(),
        config: entered.config,
    })
}

/// The account's users with their keys and what the journal says of
/// each key; and users IAM lists no key of with an act a dead run left
/// open on one of their keys (only that is left to settle).
async fn users_of(
    cx: &Context<'_>,
    (account, partition): (&str, &str),
    inventory: &crate::model::Inventory,
) -> Result<Vec<GatheredUser>, crate::journal::JournalError> {
    let events = cx.journal.key_events_in(account).await?;
    let mut gathered_users = Vec::new();
    for u in inventory.users.iter().filter(|u| !u.is_root) {
        let name = &u.user.user_name;
        let rotations = cx.journal.of_user(account, name).await?;
        let mine: Vec<crate::journal::KeyEvent> = (events.iter())
            .filter(|e| &e.user_name == name)
            .cloned()
            .collect();
        let mut keys: Vec<GatheredKey> = (u.keys.iter())
            .filter_map(|k| {
                let key_id = k.access_key_id.clone()?;
                Some(GatheredKey {
                    gone: false,
                    recorded: recorded(&key_id, &mine, &rotations),
                    facts: KeyFacts {
                        last_used: k.last_used.clone(),
                        ..unknown_key(k.status, k.created)
                    },
                    key_id,
                })
            })
            .collect();
        keys.extend(gone_keys(&mine, &keys));
        gathered_users.push(GatheredUser {
            user: u.user.clone(),
            keys,
            rotation: Vec::new(),
            bound: None,
        });
    }
    // Users IAM lists no key of (or no longer lists) with an act a dead
    // run left open on one of their keys: only that is left to settle.
    let mut others: Vec<&str> = (events.iter())
        .map(|e| e.user_name.as_str())
        .filter(|n| !gathered_users.iter().any(|u| u.user.user_name == *n))
        .collect();
    others.sort();
    others.dedup();
    for name in others {
        let mine: Vec<crate::journal::KeyEvent> = (events.iter())
            .filter(|e| e.user_name == name)
            .cloned()
            .collect();
        let keys = gone_keys(&mine, &[]);
        if keys.is_empty() {
            continue;
        }
        gathered_users.push(GatheredUser {
            user: crate::model::User {
                user_name: name.to_string(),
                user_arn: format!("arn:{partition}:iam::{account}:user/{name}"),
                path: "/".into(),
                tags: BTreeMap::new(),
                groups: Vec::new(),
            },
            keys,
            rotation: Vec::new(),
            bound: None,
        });
    }
    Ok(gathered_users)
}

/// A key's facts before the journal's and the destinations' are added.
fn unknown_key(status: crate::model::KeyStatus, created: Option<OffsetDateTime>) -> KeyFacts {
    KeyFacts {
        status,
        created,
        last_used: None,
        has_destination: false,
        replaced_at: None,
        deactivated_by_rekey_at: None,
        reactivated_at: None,
    }
}

/// The keys of one user's records (`events`) that IAM does not list
/// (`listed`) and that an act a dead run left open concerns.
fn gone_keys(events: &[crate::journal::KeyEvent], listed: &[GatheredKey]) -> Vec<GatheredKey> {
    let mut ids: Vec<&str> = (events.iter())
        .map(|e| e.key_id.as_str())
        .filter(|k| !listed.iter().any(|l| l.key_id == *k))
        .collect();
    ids.sort();
    ids.dedup();
    (ids.into_iter())
        .map(|key_id| GatheredKey {
            key_id: key_id.to_string(),
            gone: true,
            facts: unknown_key(crate::model::KeyStatus::Inactive, None),
            recorded: recorded(key_id, events, &[]),
        })
        .filter(|k| k.recorded.open.is_some())
        .collect()
}

/// The OUs account `id` is in, its own first, up to the root (one
/// ListParents per level), asked of Organizations with the caller's
/// credentials.
async fn ous_of(deps: &Deps, id: &str) -> Result<Vec<String>, String> {
    let org = aws_sdk_organizations::Client::new(deps.base());
    let mut ous = Vec::new();
    let mut child = id.to_string();
    // OUs nest at most five deep under the root.
    for _ in 0..6 {
        let out = (org.list_parents().child_id(&child).send().await).map_err(|e| {
            let e = crate::error::CallError::from_sdk("organizations:ListParents", e);
            format!(
                "cannot ask Organizations which OU it is in: {}",
                error_chain(&e)
            )
        })?;
        let Some(parent) = (out.parents().iter())
            .filter_map(|p| p.id())
            .find(|p| p.starts_with("ou-"))
        else {
            break;
        };
        ous.push(parent.to_string());
        child = parent.to_string();
    }
    Ok(ous)
}

/// Whether the planner must see the key's use as IAM says it now: it
/// was replaced, or what is due would take it out of use.
pub fn needs_fresh_use(k: &GatheredKey, rules: &Lifecycle, now: OffsetDateTime) -> bool {
    let facts = facts_with_records(&k.facts, &k.recorded);
    facts.replaced_at.is_some()
        || matches!(
            due(&facts, rules, now),
            Due::Retire { .. }
                | Due::StillInUse { .. }
                | Due::Deactivate { .. }
                | Due::Delete { .. }
        )
}

/// Reads the last use of every key of `g` that [`needs_fresh_use`], with
/// the account's own clients; one that cannot be read is said, and that
/// key is left as it was (its skip says why).
pub async fn refresh_use(
    g: &mut Gathered,
    deps: &Deps,
    rules: &Lifecycle,
    now: OffsetDateTime,
) -> Vec<(String, String)> {
    let clients: AccountClients = deps.clients().account(&g.config);
    let mut failed = Vec::new();
    for u in &mut g.account.users {
        for k in &mut u.keys {
            if k.gone || !needs_fresh_use(k, rules, now) {
                continue;
            }
            match last_used(&clients, &k.key_id).await {
                Ok(used) => k.facts.last_used = used,
                Err(e) => failed.push((k.key_id.clone(), error_chain(&e))),
            }
        }
    }
    g.calls += clients.calls.total();
    failed
}
