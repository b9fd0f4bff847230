//! The per-user API source: one GetAccountAuthorizationDetails page per
//! 1,000 users (names, paths, tags, groups), then ListAccessKeys per user
//! and GetAccessKeyLastUsed per key; root keys from GetAccountSummary.
//! About two requests per key, what a careful per-user script makes
//! (issue 9: ListUsers + ListUserTags + ListGroupsForUser per user made 3.8).

use std::collections::BTreeMap;

use aws_sdk_iam::types::SummaryKeyType;
use futures::{StreamExt, TryStreamExt, stream};

use super::{USER_CONCURRENCY, authorization_details, list_keys, unless_gone, with_last_used};
use crate::aws::AccountClients;
use crate::error::CallError;
use crate::model::{Inventory, Key, KeyStatus, ROOT_USER, User, UserKeys};

pub(super) async fn collect(
    clients: &AccountClients,
    account_id: &str,
    partition: &str,
) -> Result<Inventory, CallError> {
    let users = authorization_details(clients).await?;
    let user_count = users.len();
    let mut with_keys: Vec<UserKeys> = stream::iter(users)
        .map(|user| async move {
            let Some(keys) = unless_gone(list_keys(clients, &user.user_name).await)? else {
                return Ok(None);
            };
            let keys = with_last_used(clients, keys, |_| None).await?;
            if keys.is_empty() {
                return Ok(None);
            }
            Ok::<_, CallError>(Some(UserKeys {
                user,
                is_root: false,
                keys,
            }))
        })
        .buffer_unordered(USER_CONCURRENCY)
        .try_filter_map(|u| async move { Ok(u) })
        .try_collect()
        .await?;
    if let Some(root) = root_from_summary(clients, account_id, partition).await? {
        with_keys.push(root);
    }
    Ok(Inventory {
        users: with_keys,
        user_count,
        ..Inventory::default()
    })
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
