//! `rekey enforce` (issue 17): an organization's access-key lifecycle,
//! per key, from recorded facts — warn, rotate, retire, report a key still
//! in use, deactivate, delete — planned first (a [`Plan`] of `rekey.plan/1`
//! extended with [`KeyAction`]s), applied on request, journaled.
//!
//! - [`lifecycle`]: what is due for one key (pure);
//! - [`exempt`]: who is left alone, with reason and expiry (pure);
//! - [`record`]: what the journal says of a key (pure);
//! - [`plan`]: an account's keys → actions (pure);
//! - [`gather`]: the facts of each account (IAM, the journal, the
//!   rotation engine's dry run for bound service users);
//! - [`act`]: carries out one key action, re-checked under the user's
//!   lease, journaled;
//! - [`run`]: the whole command: plan, waves, apply.
//!
//! [`Plan`]: crate::rotation::plan::Plan

pub mod act;
pub mod exempt;
pub mod gather;
pub mod lifecycle;
pub mod plan;
pub mod record;
pub mod run;
pub mod words;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::rotation::access::Access;
use exempt::Exemption;
use lifecycle::{Due, KeyFacts, Lifecycle};
use record::Recorded;

/// One act on one key, as data: whose key, how IAM is reached, the facts
/// and rules it was decided from, and what they made due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAction {
    /// For messages: `key AKIA…MPLE of user U in account A` (masked).
    pub label: String,
    pub account_id: String,
    pub user_name: String,
    pub user_arn: String,
    pub key_id: String,
    /// How IAM of the account is reached.
    pub access: Access,
    pub facts: KeyFacts,
    /// What the journal said of it (warnings, reports, acts left open).
    pub recorded: Recorded,
    pub rules: Lifecycle,
    pub due: Due,
    /// The moment it was decided for (`--as-of`; else when planned).
    #[serde(with = "time::serde::rfc3339")]
    pub as_of: OffsetDateTime,
    /// An exemption that no longer holds (reported with the action).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lapsed: Option<Exemption>,
    /// The user's binding, when a destination holds one of its keys: a
    /// deactivation reads every destination back first and is refused
    /// while one holds this key (DESIGN.md invariant 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound: Option<crate::rotation::JobSpec>,
}

impl KeyAction {
    /// The label of key `key_id` of `user` in `account`.
    pub fn label_of(account: &str, user: &str, key_id: &str) -> String {
        format!(
            "key {} of user {user} in account {account}",
            crate::model::mask_key_id(key_id)
        )
    }
}
