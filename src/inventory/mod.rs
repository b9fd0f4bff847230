//! Users and keys of one account. Two sources:
//!
//! - [`Source::Report`] (default): the credential report for last-used data
//!   and root keys, one GetAccountAuthorizationDetails page per 1,000 users
//!   for paths, tags and groups, and one ListAccessKeys per user that has
//!   keys — the one thing the report cannot answer is a key's ID and real
//!   CreateDate (`last_rotated` resets on re-activation, DESIGN.md inv. 6).
//!   GetAccessKeyLastUsed is called only for a key the report does not
//!   describe (created or re-activated after the report was generated).
//! - [`Source::Api`]: the same GetAccountAuthorizationDetails pages, then
//!   ListAccessKeys per user and GetAccessKeyLastUsed per key; root keys
//!   from GetAccountSummary (presence only: AWS gives no root key ID or date
//!   outside the report). Exact and current, at about two requests per key.

use std::str::FromStr;

use aws_sdk_iam::types::{AccessKeyMetadata, EntityType, StatusType};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

mod api;
mod report;

use crate::aws::AccountClients;
use crate::error::{CallError, FailureKind};
use crate::model::{Inventory, Key, KeyStatus, LastUsed, User};

/// Per-user calls of one account run this many at a time.
pub(crate) const USER_CONCURRENCY: usize = 8;

/// Where the inventory comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    #[default]
    Report,
    Api,
}

impl FromStr for Source {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "report" => Ok(Source::Report),
            "api" => Ok(Source::Api),
            other => Err(format!("unknown source `{other}` (report or api)")),
        }
    }
}

/// Collects every user and key of the account the clients are for.
pub async fn collect(
    clients: &AccountClients,
    account_id: &str,
    partition: &str,
    source: Source,
) -> Result<Inventory, CallError> {
    let mut inventory = match source {
        Source::Report => report::collect(clients).await?,
        Source::Api => api::collect(clients, account_id, partition).await?,
    };
    inventory.account_id = account_id.to_string();
    inventory.partition = partition.to_string();
    inventory
        .users
        .sort_by(|a, b| (!a.is_root, &a.user.user_name).cmp(&(!b.is_root, &b.user.user_name)));
    for u in &mut inventory.users {
        u.keys.sort_by_key(|k| k.created);
    }
    Ok(inventory)
}

pub(crate) fn to_time(dt: &aws_smithy_types::DateTime) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(dt.as_nanos()).ok()
}

fn to_key(meta: &AccessKeyMetadata) -> Key {
    Key {
        access_key_id: meta.access_key_id().map(str::to_string),
        status: match meta.status() {
            Some(StatusType::Active) => KeyStatus::Active,
            _ => KeyStatus::Inactive,
        },
        created: meta.create_date().and_then(to_time),
        last_used: None,
    }
}

/// Every user with path, tags and groups: one call per 1,000 users.
pub async fn authorization_details(clients: &AccountClients) -> Result<Vec<User>, CallError> {
    let pages: Vec<_> = clients
        .iam
        .get_account_authorization_details()
        .filter(EntityType::User)
        .max_items(1000)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| CallError::from_sdk("iam:GetAccountAuthorizationDetails", e))?;
    Ok(pages
        .iter()
        .flat_map(|p| p.user_detail_list())
        .map(|u| User {
            user_name: u.user_name().unwrap_or_default().to_string(),
            user_arn: u.arn().unwrap_or_default().to_string(),
            path: u.path().unwrap_or("/").to_string(),
            tags: u
                .tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect(),
            groups: u.group_list().to_vec(),
        })
        .collect())
}

/// A user or key deleted while the account is being read (IAM is not a
/// snapshot: listing users and asking for their keys are separate calls) is
/// left out, not a failure of the whole account: `None` for NoSuchEntity.
pub(crate) fn unless_gone<T>(result: Result<T, CallError>) -> Result<Option<T>, CallError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == FailureKind::NotFound => {
            tracing::info!("left out, deleted while the account was read: {e}");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// `keys` with each key's last use filled in from GetAccessKeyLastUsed,
/// where `known` does not already say it; a key deleted meanwhile is
/// dropped.
pub(crate) async fn with_last_used(
    clients: &AccountClients,
    keys: Vec<Key>,
    known: impl Fn(&Key) -> Option<Option<LastUsed>>,
) -> Result<Vec<Key>, CallError> {
    let mut kept = Vec::with_capacity(keys.len());
    for mut key in keys {
        if let Some(last) = known(&key) {
            key.last_used = last;
        } else if let Some(id) = key.access_key_id.clone() {
            match unless_gone(last_used(clients, &id).await)? {
                Some(last) => key.last_used = last,
                None => continue,
            }
        }
        kept.push(key);
    }
    Ok(kept)
}

/// Every key of `user` (ListAccessKeys, paginated).
pub async fn list_keys(clients: &AccountClients, user: &str) -> Result<Vec<Key>, CallError> {
    let pages: Vec<_> = clients
        .iam
        .list_access_keys()
        .user_name(user)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| CallError::from_sdk("iam:ListAccessKeys", e))?;
    Ok(pages
        .iter()
        .flat_map(|p| p.access_key_metadata())
        .map(to_key)
        .collect())
}

pub(crate) async fn last_used(
    clients: &AccountClients,
    key_id: &str,
) -> Result<Option<LastUsed>, CallError> {
    let out = clients
        .iam
        .get_access_key_last_used()
        .access_key_id(key_id)
        .send()
        .await
        .map_err(|e| CallError::from_sdk("iam:GetAccessKeyLastUsed", e))?;
    Ok(out.access_key_last_used().and_then(|u| {
        Some(LastUsed {
            date: to_time(u.last_used_date()?)?,
            service: known(u.service_name()),
            region: known(u.region()),
        })
    }))
}

/// IAM writes `N/A` (and the report `no_information`, `not_supported`) where
/// it has nothing to say.
pub(crate) fn known(s: &str) -> Option<String> {
    match s.trim() {
        "" | "N/A" | "no_information" | "not_supported" => None,
        s => Some(s.to_string()),
    }
}
