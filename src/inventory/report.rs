//! The credential-report source: last-used data and root keys from the
//! report, paths/tags/groups from GetAccountAuthorizationDetails, key IDs
//! and CreateDate from ListAccessKeys.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_iam::types::ReportStateType;
use futures::{StreamExt, TryStreamExt, stream};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{
    USER_CONCURRENCY, authorization_details, known, list_keys, unless_gone, with_last_used,
};
use crate::aws::AccountClients;
use crate::error::CallError;
use crate::model::{Inventory, Key, KeyStatus, LastUsed, ROOT_USER, User, UserKeys};

/// How long to wait for IAM to generate a credential report.
const REPORT_TIMEOUT: Duration = Duration::from_secs(120);

pub(super) async fn collect(clients: &AccountClients) -> Result<Inventory, CallError> {
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
                let keys =
                    unless_gone(list_keys(clients, &user.user_name).await)?.unwrap_or_default();
                let keys = with_last_used(clients, keys, |key| {
                    row.and_then(|r| r.describe(key))
                        .map(|slot| slot.last_used.clone())
                })
                .await?;
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
