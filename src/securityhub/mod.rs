//! Sending an audit's findings to AWS Security Hub (issue 6): each audited
//! account's non-compliant keys become ASFF findings in that account's own
//! Security Hub, imported with BatchImportFindings under the account's
//! default product ARN — which only the account itself may import to, so
//! every account is reached again with its own credentials (its profile, or
//! the role the audit assumed).
//!
//! ```text
//!   discovery ──► Senders::from_discovery ─┐
//!   audit ──► AuditReport ─────────────────┴─► publish ──► Vec<Published>
//!                                     per account: GetFindings (rekey's own)
//!                                                  → asff::plan (pure)
//!                                                  → BatchImportFindings
//! ```
//!
//! One account failing to import never stops the others; [`record`] notes
//! it in the report, apart from the audit's own failures (the account was
//! audited), so it shows there and in the exit code.

pub mod asff;

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_securityhub::types::{
    AwsSecurityFinding, AwsSecurityFindingFilters, StringFilter, StringFilterComparison,
};
use futures::{StreamExt, stream};
use serde::Serialize;
use time::OffsetDateTime;

use crate::audit::{AccountStatus, AuditReport};
use crate::aws::{AccountClients, assume_role, with_credentials};
use crate::discovery::{Access, Discovery};
use crate::error::{CallError, error_chain};
use crate::report::security::non_compliant;
use asff::{Change, GENERATOR_ID, Hub, plan};

/// BatchImportFindings takes at most 100 findings per call.
const IMPORT_BATCH: usize = 100;

/// How to reach one account's own credentials again after its audit.
#[derive(Debug, Clone)]
enum Entry {
    Ready(Box<SdkConfig>),
    AssumeRole {
        role_arn: String,
        external_id: Option<String>,
    },
}

/// Every audited account's way in, taken from the discovery before the
/// audit consumes it.
#[derive(Debug, Clone, Default)]
pub struct Senders {
    base: Option<SdkConfig>,
    accounts: BTreeMap<String, Entry>,
}

impl Senders {
    pub fn from_discovery(discovery: &Discovery) -> Senders {
        let mut accounts = BTreeMap::new();
        for target in &discovery.targets {
            let Some(id) = &target.account_id else {
                continue;
            };
            let entry = match &target.access {
                Access::Ready { config, .. } => Entry::Ready(config.clone()),
                Access::AssumeRole {
                    role_arn,
                    external_id,
                    ..
                } => Entry::AssumeRole {
                    role_arn: role_arn.clone(),
                    external_id: external_id.clone(),
                },
                Access::Failed(_) => continue,
            };
            accounts.insert(id.clone(), entry);
        }
        Senders {
            base: discovery.base.clone(),
            accounts,
        }
    }
}

/// Why one account's findings did not arrive.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("no credentials of account {account_id} to send its findings with")]
    NoWayIn { account_id: String },
    #[error("cannot enter account {account_id} to send its findings")]
    Enter {
        account_id: String,
        #[source]
        source: CallError,
    },
    #[error(
        "Security Hub is not enabled in account {account_id}, region {region}: enable it there, or leave the account out"
    )]
    NotEnabled {
        account_id: String,
        region: String,
        #[source]
        source: CallError,
    },
    #[error("cannot read rekey's earlier findings in account {account_id}")]
    Read {
        account_id: String,
        #[source]
        source: CallError,
    },
    #[error("cannot import findings into account {account_id}")]
    Import {
        account_id: String,
        #[source]
        source: CallError,
    },
    #[error(
        "Security Hub rejected {count} finding(s) of account {account_id}; the first, {id}: {code}: {message}"
    )]
    Rejected {
        account_id: String,
        count: usize,
        id: String,
        code: String,
        message: String,
    },
}

impl PublishError {
    fn code(&self) -> Option<String> {
        match self {
            PublishError::NoWayIn { .. } => None,
            PublishError::Rejected { code, .. } => Some(code.clone()),
            PublishError::Enter { source, .. }
            | PublishError::NotEnabled { source, .. }
            | PublishError::Read { source, .. }
            | PublishError::Import { source, .. } => source.code().map(str::to_string),
        }
    }
}

/// What happened in one account.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    pub account_id: String,
    pub region: Option<String>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Sent {
        new: usize,
        updated: usize,
        archived: usize,
    },
    Failed {
        error: String,
        code: Option<String>,
    },
}

/// Sends the findings of every account audited without error,
/// `concurrency` accounts at a time. Sorted by account.
pub async fn publish(
    report: &AuditReport,
    senders: &Senders,
    concurrency: usize,
) -> Vec<Published> {
    let findings = non_compliant(report);
    let mut out: Vec<Published> = stream::iter(
        report
            .accounts
            .iter()
            .filter(|a| a.status == AccountStatus::Ok),
    )
    .filter_map(|a| async move { a.account_id.clone().map(|id| (id, a.partition.clone())) })
    .map(|(account_id, partition)| {
        let rows: Vec<_> = findings
            .iter()
            .filter(|(_, r)| r.account_id == account_id)
            .map(|(id, r)| (id.clone(), *r))
            .collect();
        async move {
            let (region, result) =
                publish_account(senders, &account_id, partition, &rows, report.generated_at).await;
            let outcome = match result {
                Ok((new, updated, archived)) => Outcome::Sent {
                    new,
                    updated,
                    archived,
                },
                Err(e) => Outcome::Failed {
                    code: e.code(),
                    error: error_chain(&e),
                },
            };
            Published {
                account_id,
                region,
                outcome,
            }
        }
    })
    .buffer_unordered(concurrency.max(1))
    .collect()
    .await;
    out.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    out
}

type Counts = (usize, usize, usize);

async fn publish_account(
    senders: &Senders,
    account_id: &str,
    partition: Option<String>,
    rows: &[(String, &crate::audit::KeyRow)],
    now: OffsetDateTime,
) -> (Option<String>, Result<Counts, PublishError>) {
    let config = match config_for(senders, account_id).await {
        Ok(c) => c,
        Err(e) => return (None, Err(e)),
    };
    let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    let hub = Hub {
        partition: partition.unwrap_or_else(|| "aws".into()),
        region: region.clone(),
        account_id: account_id.to_string(),
    };
    let client = aws_sdk_securityhub::Client::new(&config);
    let result = async {
        let existing = existing_findings(&client, &hub).await?;
        let imports = plan(&hub, rows, &existing, now);
        let count = |c: Change| imports.iter().filter(|i| i.change == c).count();
        let counts = (
            count(Change::New),
            count(Change::Updated),
            count(Change::Archived),
        );
        let findings: Vec<AwsSecurityFinding> = imports.into_iter().map(|i| i.finding).collect();
        for batch in findings.chunks(IMPORT_BATCH) {
            import(&client, &hub, batch).await?;
        }
        Ok(counts)
    }
    .await;
    (Some(region), result)
}

/// The account's own credentials: its profile's, or the audit's role
/// assumed once more from the base credentials.
async fn config_for(senders: &Senders, account_id: &str) -> Result<SdkConfig, PublishError> {
    let no_way_in = || PublishError::NoWayIn {
        account_id: account_id.to_string(),
    };
    match senders.accounts.get(account_id).ok_or_else(no_way_in)? {
        Entry::Ready(config) => Ok((**config).clone()),
        Entry::AssumeRole {
            role_arn,
            external_id,
        } => {
            let base = senders.base.as_ref().ok_or_else(no_way_in)?;
            let sts = AccountClients::new(base).sts;
            let creds = assume_role(&sts, role_arn, external_id.as_deref())
                .await
                .map_err(|source| PublishError::Enter {
                    account_id: account_id.to_string(),
                    source,
                })?;
            Ok(with_credentials(base, creds))
        }
    }
}

fn equals(value: impl Into<String>) -> StringFilter {
    StringFilter::builder()
        .value(value)
        .comparison(StringFilterComparison::Equals)
        .build()
}

/// rekey's findings in the account's hub, archived ones included.
async fn existing_findings(
    client: &aws_sdk_securityhub::Client,
    hub: &Hub,
) -> Result<Vec<AwsSecurityFinding>, PublishError> {
    let filters = AwsSecurityFindingFilters::builder()
        .product_arn(equals(hub.product_arn()))
        .generator_id(equals(GENERATOR_ID))
        .aws_account_id(equals(&hub.account_id))
        .build();
    let pages: Result<Vec<_>, _> = client
        .get_findings()
        .filters(filters)
        .max_results(100)
        .into_paginator()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect();
    let pages = pages.map_err(|e| {
        let source = CallError::from_sdk("securityhub:GetFindings", e);
        not_enabled(hub, source).unwrap_or_else(|source| PublishError::Read {
            account_id: hub.account_id.clone(),
            source,
        })
    })?;
    Ok(pages
        .into_iter()
        .flat_map(|p| p.findings.unwrap_or_default())
        .collect())
}

/// Security Hub answers InvalidAccessException while it is not enabled.
fn not_enabled(hub: &Hub, source: CallError) -> Result<PublishError, CallError> {
    if source.code() == Some("InvalidAccessException") {
        Ok(PublishError::NotEnabled {
            account_id: hub.account_id.clone(),
            region: hub.region.clone(),
            source,
        })
    } else {
        Err(source)
    }
}

async fn import(
    client: &aws_sdk_securityhub::Client,
    hub: &Hub,
    batch: &[AwsSecurityFinding],
) -> Result<(), PublishError> {
    let out = client
        .batch_import_findings()
        .set_findings(Some(batch.to_vec()))
        .send()
        .await
        .map_err(|e| {
            let source = CallError::from_sdk("securityhub:BatchImportFindings", e);
            not_enabled(hub, source).unwrap_or_else(|source| PublishError::Import {
                account_id: hub.account_id.clone(),
                source,
            })
        })?;
    match out.failed_findings().first() {
        None => Ok(()),
        Some(first) => Err(PublishError::Rejected {
            account_id: hub.account_id.clone(),
            count: out.failed_findings().len(),
            id: first.id().unwrap_or_default().to_string(),
            code: first.error_code().unwrap_or_default().to_string(),
            message: first.error_message().unwrap_or_default().to_string(),
        }),
    }
}

/// Notes every account whose findings did not arrive in the report. Its
/// audit succeeded, so it stays `ok` and its keys stay listed; the import
/// failure is counted apart (`securityhub_failed`, issue 15) and shows in
/// every human format and in the exit code.
pub fn record(report: &mut AuditReport, published: &[Published]) {
    for p in published {
        let Outcome::Failed { error, code } = &p.outcome else {
            continue;
        };
        for a in report
            .accounts
            .iter_mut()
            .filter(|a| a.account_id.as_deref() == Some(p.account_id.as_str()))
        {
            a.securityhub_error = Some(error.clone());
            a.securityhub_error_code = code.clone();
        }
    }
    report.summary.securityhub_failed = report
        .accounts
        .iter()
        .filter(|a| a.securityhub_error.is_some())
        .count();
}

/// One line per account, for stderr.
pub fn summary_line(p: &Published) -> String {
    let region = p.region.as_deref().unwrap_or("-");
    match &p.outcome {
        Outcome::Sent {
            new,
            updated,
            archived,
        } => format!(
            "Security Hub {}/{region}: {new} new, {updated} updated, {archived} archived",
            p.account_id
        ),
        Outcome::Failed { error, .. } => {
            format!("Security Hub {}/{region}: failed: {error}", p.account_id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn a_failed_import_is_counted_apart_from_failed_audits() {
        let mut report = fixture::report();
        assert_eq!(report.summary.accounts_failed, 1);
        assert_eq!(
            crate::report::views::exit_code(&report, crate::report::View::Keys),
            2
        );
        report.accounts.retain(|a| a.status == AccountStatus::Ok);
        report.summary.accounts_failed = 0;
        assert_eq!(
            crate::report::views::exit_code(&report, crate::report::View::Keys),
            1
        );
        let published = vec![Published {
            account_id: fixture::OK_ACCOUNT.into(),
            region: Some("us-east-1".into()),
            outcome: Outcome::Failed {
                error: "cannot import findings".into(),
                code: Some("AccessDeniedException".into()),
            },
        }];
        record(&mut report, &published);
        let a = report
            .accounts
            .iter()
            .find(|a| a.account_id.as_deref() == Some(fixture::OK_ACCOUNT))
            .unwrap();
        assert_eq!(a.status, AccountStatus::Ok, "its audit succeeded");
        assert_eq!(a.error, None);
        assert_eq!(
            a.securityhub_error.as_deref(),
            Some("cannot import findings")
        );
        assert_eq!(
            a.securityhub_error_code.as_deref(),
            Some("AccessDeniedException")
        );
        assert_eq!(report.summary.accounts_failed, 0);
        assert_eq!(report.summary.accounts_ok, 1);
        assert_eq!(report.summary.securityhub_failed, 1);
        assert_eq!(
            crate::report::views::exit_code(&report, crate::report::View::Keys),
            2
        );
        assert!(!report.keys.is_empty(), "the audit's keys stay listed");
    }
}
