//! The per-user API source: ListUsers, then ListAccessKeys, ListUserTags,
//! ListGroupsForUser and GetAccessKeyLastUsed per user and key; root keys
//! from GetAccountSummary.

use std::collections::BTreeMap;

use aws_sdk_iam::types::SummaryKeyType;
use futures::{StreamExt, TryStreamExt, stream};

use super::{USER_CONCURRENCY, last_used, list_keys};
use crate::aws::AccountClients;
use crate::error::CallError;
use crate::model::{Inventory, Key, KeyStatus, ROOT_USER, User, UserKeys};

pub(super) async fn collect(
    clients: &AccountClients,
    account_id: &str,
    partition: &str,
) -> Result<Inventory, CallError> {
    let pages: Vec<_> = clients
        .iam
        .list_users()
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| CallError::from_sdk("iam:ListUsers", e))?;
    let listed: Vec<(String, String, String)> = pages
        .iter()
        .flat_map(|p| p.users())
        .map(|u| {
            (
                u.user_name().to_string(),
                u.arn().to_string(),
                u.path().to_string(),
            )
        })
        .collect();
    let user_count = listed.len();
    let users: Vec<UserKeys> = stream::iter(listed)
        .map(|(name, arn, path)| async move {
            let mut keys = list_keys(clients, &name).await?;
            if keys.is_empty() {
                return Ok(None);
            }
            for key in &mut keys {
                if let Some(id) = key.access_key_id.clone() {
                    key.last_used = last_used(clients, &id).await?;
                }
            }
            let tags = user_tags(clients, &name).await?;
            let groups = user_groups(clients, &name).await?;
            Ok::<_, CallError>(Some(UserKeys {
                user: User {
                    user_name: name,
                    user_arn: arn,
                    path,
                    tags,
                    groups,
                },
                is_root: false,
                keys,
            }))
        })
        .buffer_unordered(USER_CONCURRENCY)
        .try_filter_map(|u| async move { Ok(u) })
        .try_collect()
        .await?;
    let mut all = users;
    if let Some(root) = root_from_summary(clients, account_id, partition).await? {
        all.push(root);
    }
    Ok(Inventory {
        users: all,
        user_count,
        ..Inventory::default()
    })
}

async fn user_tags(
    clients: &AccountClients,
    user: &str,
) -> Result<BTreeMap<String, String>, CallError> {
    let pages: Vec<_> = clients
        .iam
        .list_user_tags()
        .user_name(user)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| CallError::from_sdk("iam:ListUserTags", e))?;
    Ok(pages
        .iter()
        .flat_map(|p| p.tags())
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect())
}

async fn user_groups(clients: &AccountClients, user: &str) -> Result<Vec<String>, CallError> {
    let pages: Vec<_> = clients
        .iam
        .list_groups_for_user()
        .user_name(user)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| CallError::from_sdk("iam:ListGroupsForUser", e))?;
    Ok(pages
        .iter()
        .flat_map(|p| p.groups())
        .map(|g| g.group_name().to_string())
        .collect())
}

/// GetAccountSummary says only whether root has keys; one key of unknown
/// age stands for them.
async fn root_from_summary(
    clients: &AccountClients,
    account_id: &str,
    partition: &str,
) -> Result<Option<UserKeys>, CallError> {
    let out = clients
        .iam
        .get_account_summary()
        .send()
        .await
        .map_err(|e| CallError::from_sdk("iam:GetAccountSummary", e))?;
    let present = out
        .summary_map()
        .and_then(|m| m.get(&SummaryKeyType::AccountAccessKeysPresent))
        .copied()
        .unwrap_or(0);
    Ok((present > 0).then(|| UserKeys {
        user: User {
            user_name: ROOT_USER.into(),
            user_arn: format!("arn:{partition}:iam::{account_id}:root"),
            path: "/".into(),
            tags: BTreeMap::new(),
            groups: vec![],
        },
        is_root: true,
        keys: vec![Key {
            access_key_id: None,
            status: KeyStatus::Active,
            created: None,
            last_used: None,
        }],
    }))
}
