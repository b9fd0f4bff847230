//! One account's keys → the plan's actions (issue 17). Pure: the facts
//! are gathered first ([`super::gather`]); here each key gets what its
//! lifecycle makes due, as an action or as a skip that says why and when
//! its next stage falls due. A bound service user's rotation is the
//! rotation engine's own plan ([`crate::rotation::plan::rotate_actions`]),
//! taken as it planned it.

use time::OffsetDateTime;

use super::KeyAction;
use super::exempt::{Exempt, Exemptions};
use super::lifecycle::{Due, KeyFacts, Lifecycle, due};
use super::record::Recorded;
use crate::model::{KeyStatus, User};
use crate::policy::Policy;
use crate::rotation::access::Access;
use crate::rotation::plan::{Action, PlanFinding, SkipReason};

/// One key as gathered: IAM's facts and the journal's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatheredKey {
    pub key_id: String,
    /// IAM no longer lists it: only a journal's open act on it is left to
    /// settle.
    pub gone: bool,
    pub facts: KeyFacts,
    pub recorded: Recorded,
}

/// One user as gathered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatheredUser {
    pub user: User,
    pub keys: Vec<GatheredKey>,
    /// The rotation engine's actions for this user (a bound service
    /// user's), as its dry run planned them.
    pub rotation: Vec<Action>,
    /// The user's binding (its destinations), if it is bound.
    pub bound: Option<crate::rotation::JobSpec>,
}

/// One account as gathered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatheredAccount {
    pub account_id: String,
    /// The OUs the account is in (its own, then those above it), when an
    /// exemption names OUs.
    pub ous: Vec<String>,
    pub access: Access,
    pub users: Vec<GatheredUser>,
}

/// What governs an account's plan.
pub struct Rules<'a> {
    pub lifecycle: &'a Lifecycle,
    pub policy: &'a Policy,
    pub exemptions: &'a Exemptions,
    /// The moment exemptions are judged at (the plan's moment).
    pub exempt_at: OffsetDateTime,
}

/// The lifecycle facts of a key with the journal's, as the lifecycle reads
/// them: an act whose outcome the journal does not know (a dead run's
/// `Begin`, a call whose answer was lost) counts as done when IAM shows
/// it done. Pure.
pub fn facts_with_records(facts: &KeyFacts, r: &Recorded) -> KeyFacts {
    let mut f = facts.clone();
    f.replaced_at = r.replaced_at;
    f.reactivated_at = r.reactivated_at;
    f.deactivated_by_rekey_at = r.deactivated_at;
    if let Some((op, super::record::UnsettledAt(at))) = r.unsettled {
        match (op.deactivates(), f.status) {
            (true, KeyStatus::Inactive) => f.deactivated_by_rekey_at = Some(at),
            (false, KeyStatus::Active) if op == crate::journal::KeyOp::Reactivate => {
                f.reactivated_at = Some(at);
                f.deactivated_by_rekey_at = None;
            }
            _ => {}
        }
    }
    f
}

/// The actions of one account at `now`, and what the planning found (an
/// expired exemption). Pure.
pub fn plan_account(
    account: &GatheredAccount,
    rules: &Rules<'_>,
    now: OffsetDateTime,
) -> (Vec<Action>, Vec<PlanFinding>) {
    let mut actions = Vec::new();
    let mut findings = Vec::new();
    for u in &account.users {
        let exempt = rules.exemptions.of(
            rules.policy,
            (&account.account_id, &account.ous),
            &u.user,
            rules.exempt_at,
        );
        let lapsed = match exempt {
            Err(e) => {
                let why = e.to_string();
                actions.extend(u.keys.iter().map(|k| {
                    skip(
                        account,
                        u,
                        &k.key_id,
                        SkipReason::Refused { why: why.clone() },
                    )
                }));
                continue;
            }
            Ok(Exempt::Yes(e)) => {
                let until = e.until.map(|d| format!(", until {d}")).unwrap_or_default();
                let why = format!("{}: {}{until}", e.by, e.reason);
                actions.extend((u.keys.iter()).map(|k| {
                    skip(
                        account,
                        u,
                        &k.key_id,
                        SkipReason::Exempt { why: why.clone() },
                    )
                }));
                continue;
            }
            Ok(Exempt::Expired(e)) => {
                findings.push(PlanFinding {
                    account_id: account.account_id.clone(),
                    user_name: u.user.user_name.clone(),
                    finding: "exemption_expired".into(),
                    detail: format!(
                        "{} ({}) ended on {}",
                        e.by,
                        e.reason,
                        e.until.map(|d| d.to_string()).unwrap_or_default()
                    ),
                });
                Some(e)
            }
            Ok(Exempt::No) => None,
        };
        if let Some(reason) = unplanned_rotation(u) {
            actions.extend((u.keys.iter()).map(|k| skip(account, u, &k.key_id, reason.clone())));
            continue;
        }
        let mut mine = Vec::new();
        for k in &u.keys {
            mine.extend(key_actions(account, u, k, rules.lifecycle, (now, &lapsed)));
        }
        // A key a rotation frees its slot by deleting is deleted by it (its
        // first step), not by a delete of its own as well.
        let freed: Vec<String> = (mine.iter())
            .filter_map(|a| match a {
                Action::FreeSlot { key_id, .. } => Some(key_id.clone()),
                _ => None,
            })
            .collect();
        mine.retain(|a| !matches!(a, Action::Delete(k) if freed.contains(&k.key_id)));
        actions.extend(mine);
    }
    (actions, findings)
}

/// What one key's lifecycle makes due at `now`, as actions. Pure.
fn key_actions(
    account: &GatheredAccount,
    u: &GatheredUser,
    k: &GatheredKey,
    rules: &Lifecycle,
    (now, lapsed): (OffsetDateTime, &Option<super::exempt::Exemption>),
) -> Vec<Action> {
    let facts = facts_with_records(&k.facts, &k.recorded);
    let due = due(&facts, rules, now);
    let action = |due: Due| KeyAction {
        label: KeyAction::label_of(&account.account_id, &u.user.user_name, &k.key_id),
        account_id: account.account_id.clone(),
        user_name: u.user.user_name.clone(),
        user_arn: u.user.user_arn.clone(),
        key_id: k.key_id.clone(),
        access: account.access.clone(),
        facts: facts.clone(),
        recorded: k.recorded.clone(),
        rules: rules.clone(),
        due,
        as_of: now,
        lapsed: lapsed.clone(),
        bound: u.bound.clone(),
    };
    if k.gone {
        return match k.recorded.open {
            Some(_) => vec![Action::Settle(action(Due::Nothing { next: None }))],
            None => Vec::new(),
        };
    }
    // A replaced key that a destination holds again: something put it
    // back; retiring it would lock that destination's readers out.
    if facts.replaced_at.is_some() && facts.has_destination && facts.status == KeyStatus::Active {
        let why = "a destination holds this replaced key again: it is left active; put the new key back or rotate the user".to_string();
        return vec![skip(account, u, &k.key_id, SkipReason::Refused { why })];
    }
    let planned = planned(account, u, k, (&due, &facts), action);
    if let Some(why) = frees_what_it_must_not(&planned, u, rules, now) {
        return vec![skip(account, u, &k.key_id, SkipReason::Refused { why })];
    }
    // An act a dead run left open is settled even when nothing else is
    // due: its Begin is closed by what IAM shows.
    if k.recorded.open.is_some() && planned.iter().all(|a| matches!(a, Action::Skip { .. })) {
        return vec![Action::Settle(action(Due::Nothing { next: None }))];
    }
    planned
}

/// The actions `due` makes for key `k` (`action` builds one). Pure.
fn planned(
    account: &GatheredAccount,
    u: &GatheredUser,
    k: &GatheredKey,
    (due, facts): (&Due, &KeyFacts),
    action: impl Fn(Due) -> KeyAction,
) -> Vec<Action> {
    let key_id = k.key_id.clone();
    let one = |a: Action| vec![a];
    match due {
        Due::Nothing { next } => one(skip(
            account,
            u,
            &key_id,
            SkipReason::Waiting {
                key_id: key_id.clone(),
                next: *next,
                facts: facts.clone(),
            },
        )),
        Due::Warn { at } if k.recorded.warned_for == Some(*at) => one(skip(
            account,
            u,
            &key_id,
            SkipReason::Warned {
                key_id: key_id.clone(),
                at: *at,
            },
        )),
        Due::Warn { .. } => one(Action::Warn(action(due.clone()))),
        Due::StillInUse { last_used, until } if k.recorded.reported_use == Some(last_used.date) => {
            one(skip(
                account,
                u,
                &key_id,
                SkipReason::InUseReported {
                    key_id: key_id.clone(),
                    last_used: last_used.clone(),
                    until: *until,
                },
            ))
        }
        Due::StillInUse { .. } => one(Action::StillInUse(action(due.clone()))),
        Due::Retire { .. } => one(Action::Retire(action(due.clone()))),
        Due::Deactivate { .. } => one(Action::Deactivate(action(due.clone()))),
        Due::Delete { .. } => one(Action::Delete(action(due.clone()))),
        Due::Rotate { .. } => {
            let planned = rotation_of(&u.rotation, &key_id);
            if planned.is_empty() {
                one(skip(
                    account,
                    u,
                    &key_id,
                    SkipReason::Failed {
                        why: "due for rotation, but the rotation engine planned nothing for it"
                            .into(),
                    },
                ))
            } else {
                planned
            }
        }
    }
}

/// Why a rotation may not free its slot as its engine planned, if so: the
/// key it would delete is the lifecycle's to delete — only once it is due
/// for deletion (deactivated by rekey, its recovery window over, unused
/// since). A key a person deactivated, or one still in its recovery
/// window, is never deleted to make room; an orphan of an undone rotation
/// is. Pure.
fn frees_what_it_must_not(
    planned: &[Action],
    u: &GatheredUser,
    rules: &Lifecycle,
    now: OffsetDateTime,
) -> Option<String> {
    planned.iter().find_map(|a| {
        let Action::FreeSlot { key_id, why, .. } = a else {
            return None;
        };
        if *why == crate::rotation::plan::FreeWhy::Orphan {
            return None;
        }
        let freed = u.keys.iter().find(|k| &k.key_id == key_id)?;
        let f = facts_with_records(&freed.facts, &freed.recorded);
        match due(&f, rules, now) {
            Due::Delete { .. } => None,
            other => Some(format!(
                "the user is at the two-key limit and its other key {} is not due for deletion ({}); rotated once it is",
                crate::model::mask_key_id(key_id),
                match other {
                    Due::Nothing { next: Some(at) } => format!("not before {}", at.date()),
                    Due::Nothing { next: None } => "rekey did not deactivate it".to_string(),
                    d => d.stage().to_string(),
                }
            )),
        }
    })
}

/// The rotation engine's actions for key `key_id`: its rotation with the
/// slot and orphans it frees first, or why it would not rotate it.
/// Why a bound user's rotation could not even be planned (a destination
/// that cannot be read, its access denied), if it could not: what the
/// destination holds is then unknown, so none of the user's keys is acted
/// on, neither warned nor deactivated as if it had no destination. Pure.
fn unplanned_rotation(u: &GatheredUser) -> Option<SkipReason> {
    u.bound.as_ref()?;
    u.rotation.iter().find_map(|a| match a {
        Action::Skip {
            old_key_id: None,
            reason,
            ..
        } => Some(reason.clone()),
        _ => None,
    })
}

fn rotation_of(rotation: &[Action], key_id: &str) -> Vec<Action> {
    let Some(i) = rotation.iter().position(|a| match a {
        Action::Rotate { plan, .. } => plan.old_key_id == key_id,
        Action::Skip { old_key_id, .. } => old_key_id.as_deref() == Some(key_id),
        _ => false,
    }) else {
        return Vec::new();
    };
    let job = match &rotation[i] {
        Action::Rotate { job, .. } => Some(job),
        _ => None,
    };
    let frees = rotation[..i].iter().filter(|a| match a {
        Action::FreeSlot { job: of, .. } => Some(of) == job,
        _ => false,
    });
    frees.chain([&rotation[i]]).cloned().collect()
}

fn skip(account: &GatheredAccount, u: &GatheredUser, key_id: &str, reason: SkipReason) -> Action {
    Action::Skip {
        target: KeyAction::label_of(&account.account_id, &u.user.user_name, key_id),
        job: None,
        account_id: Some(account.account_id.clone()),
        user_name: Some(u.user.user_name.clone()),
        old_key_id: Some(key_id.to_string()),
        reason,
    }
}

#[cfg(test)]
mod tests;
