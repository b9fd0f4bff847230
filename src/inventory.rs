//! Users and keys of one account. Two sources:
//!
//! - [`Source::Report`] (default): the credential report for last-used data
//!   and root keys, one GetAccountAuthorizationDetails page per 1,000 users
//!   for paths, tags and groups, and one ListAccessKeys per user that has
//!   keys — the one thing the report cannot answer is a key's ID and real
//!   CreateDate (`last_rotated` resets on re-activation, DESIGN.md inv. 6).
//!   GetAccessKeyLastUsed is called only for a key the report does not
//!   describe (created or re-activated after the report was generated).
//! - [`Source::Api`]: ListUsers, then per user ListAccessKeys, ListUserTags,
//!   ListGroupsForUser, and per key GetAccessKeyLastUsed; root keys from
//!   GetAccountSummary (presence only: AWS gives no root key ID or date
//!   outside the report). What most scripts do: exact, and slow.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::time::Duration;

use aws_sdk_iam::types::{
    AccessKeyMetadata, EntityType, ReportStateType, StatusType, SummaryKeyType,
};
use futures::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::aws::AccountClients;
use crate::error::CallError;
use crate::model::{Inventory, Key, KeyStatus, LastUsed, ROOT_USER, User, UserKeys};

/// Per-user calls of one account run this many at a time.
const USER_CONCURRENCY: usize = 8;
/// How long to wait for IAM to generate a credential report.
const REPORT_TIMEOUT: Duration = Duration::from_secs(120);

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
        Source::Report => from_report(clients).await?,
        Source::Api => from_api(clients, account_id, partition).await?,
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

fn to_time(dt: &aws_smithy_types::DateTime) -> Option<OffsetDateTime> {
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

async fn list_keys(clients: &AccountClients, user: &str) -> Result<Vec<Key>, CallError> {
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

async fn last_used(clients: &AccountClients, key_id: &str) -> Result<Option<LastUsed>, CallError> {
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
fn known(s: &str) -> Option<String> {
    match s.trim() {
        "" | "N/A" | "no_information" | "not_supported" => None,
        s => Some(s.to_string()),
    }
}

// ---- credential report -------------------------------------------------

async fn from_report(clients: &AccountClients) -> Result<Inventory, CallError> {
    let csv = credential_report(clients).await?;
    let rows = parse_report(&csv)?;
    let users = authorization_details(clients).await?;

    let reported: HashMap<&str, &ReportRow> = rows.iter().map(|r| (r.user.as_str(), r)).collect();
    let mut out = Vec::new();
    if let Some(root) = reported.get(ROOT_USER) {
        let keys = root
            .slots
            .iter()
            .flatten()
            .map(|s| s.as_root_key())
            .collect::<Vec<_>>();
        if !keys.is_empty() {
            out.push(UserKeys {
                user: User {
                    user_name: ROOT_USER.into(),
                    user_arn: root.arn.clone(),
                    path: "/".into(),
                    tags: BTreeMap::new(),
                    groups: vec![],
                },
                is_root: true,
                keys,
            });
        }
    }
    // A user missing from the report was created after it: ask IAM.
    let wanted: Vec<&User> = users
        .iter()
        .filter(|u| {
            reported
                .get(u.user_name.as_str())
                .is_none_or(|r| r.has_keys())
        })
        .collect();
    let user_count = users.len();
    let with_keys: Vec<UserKeys> = stream::iter(wanted)
        .map(|user| {
            let row = reported.get(user.user_name.as_str()).copied();
            async move {
                let mut keys = list_keys(clients, &user.user_name).await?;
                for key in &mut keys {
                    match row.and_then(|r| r.describe(key)) {
                        Some(slot) => key.last_used = slot.last_used.clone(),
                        None => {
                            if let Some(id) = key.access_key_id.clone() {
                                key.last_used = last_used(clients, &id).await?;
                            }
                        }
                    }
                }
                Ok::<_, CallError>(UserKeys {
                    user: user.clone(),
                    is_root: false,
                    keys,
                })
            }
        })
        .buffer_unordered(USER_CONCURRENCY)
        .try_collect()
        .await?;
    out.extend(with_keys.into_iter().filter(|u| !u.keys.is_empty()));
    Ok(Inventory {
        users: out,
        user_count,
        ..Inventory::default()
    })
}

/// Generates the credential report, polling with backoff while IAM works.
async fn credential_report(clients: &AccountClients) -> Result<String, CallError> {
    let started = std::time::Instant::now();
    let mut delay = Duration::from_millis(200);
    loop {
        let state = clients
            .iam
            .generate_credential_report()
            .send()
            .await
            .map_err(|e| CallError::from_sdk("iam:GenerateCredentialReport", e))?;
        if state.state() == Some(&ReportStateType::Complete) {
            match clients.iam.get_credential_report().send().await {
                Ok(out) => {
                    let bytes = out
                        .content()
                        .map(|b| b.as_ref().to_vec())
                        .unwrap_or_default();
                    return String::from_utf8(bytes).map_err(|e| CallError::Other {
                        call: "iam:GetCredentialReport",
                        source: Box::new(e),
                    });
                }
                // Expired or regenerating between our two calls: go round.
                Err(e) => {
                    let err = CallError::from_sdk("iam:GetCredentialReport", e);
                    let transient = matches!(
                        err.code(),
                        Some("ReportInProgress" | "ReportNotPresent" | "ReportExpired")
                    );
                    if !transient {
                        return Err(err);
                    }
                }
            }
        }
        if started.elapsed() > REPORT_TIMEOUT {
            return Err(CallError::Other {
                call: "iam:GenerateCredentialReport",
                source: format!(
                    "the report was not ready after {}s",
                    REPORT_TIMEOUT.as_secs()
                )
                .into(),
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(4));
    }
}

/// One access-key slot of a credential report row.
#[derive(Debug, Clone, PartialEq)]
struct Slot {
    active: bool,
    last_rotated: Option<OffsetDateTime>,
    last_used: Option<LastUsed>,
}

impl Slot {
    fn as_root_key(&self) -> Key {
        Key {
            access_key_id: None,
            status: if self.active {
                KeyStatus::Active
            } else {
                KeyStatus::Inactive
            },
            created: self.last_rotated,
            last_used: self.last_used.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct ReportRow {
    user: String,
    arn: String,
    slots: [Option<Slot>; 2],
}

impl ReportRow {
    fn has_keys(&self) -> bool {
        self.slots.iter().any(Option::is_some)
    }

    /// The slot that describes `key`: same status and `last_rotated` equal
    /// to its CreateDate (to the second, the report's precision). A key
    /// re-activated or created since the report matches no slot.
    fn describe(&self, key: &Key) -> Option<&Slot> {
        let created = key.created?.unix_timestamp();
        self.slots.iter().flatten().find(|s| {
            s.active == (key.status == KeyStatus::Active)
                && s.last_rotated.map(|t| t.unix_timestamp()) == Some(created)
        })
    }
}

fn report_time(s: &str) -> Option<OffsetDateTime> {
    known(s).and_then(|s| OffsetDateTime::parse(&s, &Rfc3339).ok())
}

fn bad_report(why: String) -> CallError {
    CallError::Other {
        call: "iam:GetCredentialReport",
        source: why.into(),
    }
}

fn parse_report(text: &str) -> Result<Vec<ReportRow>, CallError> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| bad_report(format!("unreadable header: {e}")))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| bad_report(format!("the report has no `{name}` column")))
    };
    let user = col("user")?;
    let arn = col("arn")?;
    let mut slot_cols = Vec::new();
    for n in 1..=2 {
        slot_cols.push([
            col(&format!("access_key_{n}_active"))?,
            col(&format!("access_key_{n}_last_rotated"))?,
            col(&format!("access_key_{n}_last_used_date"))?,
            col(&format!("access_key_{n}_last_used_service"))?,
            col(&format!("access_key_{n}_last_used_region"))?,
        ]);
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let r = record.map_err(|e| bad_report(format!("unreadable row: {e}")))?;
        let field = |i: usize| r.get(i).unwrap_or("");
        let slot = |c: &[usize; 5]| {
            let active = field(c[0]) == "true";
            let last_rotated = report_time(field(c[1]));
            (active || last_rotated.is_some()).then(|| Slot {
                active,
                last_rotated,
                last_used: report_time(field(c[2])).map(|date| LastUsed {
                    date,
                    service: known(field(c[3])),
                    region: known(field(c[4])),
                }),
            })
        };
        rows.push(ReportRow {
            user: field(user).to_string(),
            arn: field(arn).to_string(),
            slots: [slot(&slot_cols[0]), slot(&slot_cols[1])],
        });
    }
    Ok(rows)
}

/// Every user with path, tags and groups: one call per 1,000 users.
async fn authorization_details(clients: &AccountClients) -> Result<Vec<User>, CallError> {
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

// ---- per-user API calls ------------------------------------------------

async fn from_api(
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

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated
<root_account>,arn:aws:iam::123456789012:root,2020-01-01T00:00:00+00:00,not_supported,no_information,not_supported,not_supported,false,true,2021-03-04T05:06:07+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A
alice,arn:aws:iam::123456789012:user/alice,2020-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2026-01-02T03:04:05+00:00,2026-11-01T00:00:00+00:00,eu-west-1,s3,false,2025-01-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,false,N/A
bob,arn:aws:iam::123456789012:user/bob,2020-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A
";

    #[test]
    fn report_rows_parse_into_slots() {
        let rows = parse_report(REPORT).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].user, ROOT_USER);
        assert!(rows[0].slots[0].as_ref().unwrap().active);
        assert!(rows[0].slots[1].is_none());
        let alice = &rows[1];
        let s1 = alice.slots[0].as_ref().unwrap();
        let used = s1.last_used.as_ref().unwrap();
        assert_eq!(used.service.as_deref(), Some("s3"));
        assert_eq!(used.region.as_deref(), Some("eu-west-1"));
        assert!(!alice.slots[1].as_ref().unwrap().active);
        assert!(!rows[2].has_keys());
    }

    #[test]
    fn a_key_matches_the_slot_with_its_create_date_and_status() {
        let rows = parse_report(REPORT).unwrap();
        let key = |status, created: &str| Key {
            access_key_id: Some("AKIAIOSFODNN7EXAMPLE".into()),
            status,
            created: OffsetDateTime::parse(created, &Rfc3339).ok(),
            last_used: None,
        };
        let alice = &rows[1];
        assert!(
            alice
                .describe(&key(KeyStatus::Active, "2026-01-02T03:04:05Z"))
                .is_some()
        );
        assert!(
            alice
                .describe(&key(KeyStatus::Inactive, "2025-01-01T00:00:00Z"))
                .is_some()
        );
        // Re-activated since the report: not described, so asked for.
        assert!(
            alice
                .describe(&key(KeyStatus::Active, "2025-01-01T00:00:00Z"))
                .is_none()
        );
        assert!(
            alice
                .describe(&key(KeyStatus::Active, "2026-05-05T00:00:00Z"))
                .is_none()
        );
    }

    #[test]
    fn a_report_without_its_columns_is_an_error() {
        assert!(parse_report("user,arn\nalice,arn:aws:iam::1:user/alice\n").is_err());
    }
}
