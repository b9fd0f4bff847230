//! Pure: an audit's findings for one account × what Security Hub already
//! holds → the ASFF findings to send with BatchImportFindings (issue 6).
//!
//! Every finding has a stable ID (see [`crate::report::security`]), so a
//! second run updates the same finding in place. A finding rekey reported
//! before whose key is no longer non-compliant (rotated, deleted, exempted)
//! is sent once more with Compliance PASSED and RecordState ARCHIVED — the
//! way a finding provider resolves its own findings. Findings of other
//! generators or accounts are never touched.

use aws_sdk_securityhub::types::{
    AwsIamAccessKeyDetails, AwsIamAccessKeyStatus, AwsIamUserDetails, AwsSecurityFinding,
    Compliance, ComplianceStatus, Partition, RecordState, Resource, ResourceDetails, Severity,
    SeverityLabel,
};
use time::OffsetDateTime;

use crate::audit::KeyRow;
use crate::names::named_enum;
use crate::report::security;

/// Identifies rekey's findings among everything else in Security Hub.
pub const GENERATOR_ID: &str = "rekey/access-key-rotation";
/// The only ASFF schema version Security Hub accepts.
pub const SCHEMA_VERSION: &str = "2018-10-08";

/// The Security Hub findings of one account go to: its own default product
/// in one region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hub {
    pub partition: String,
    pub region: String,
    pub account_id: String,
}

impl Hub {
    /// The default product ARN, which only the account itself may import to.
    pub fn product_arn(&self) -> String {
        let Hub {
            partition,
            region,
            account_id,
        } = self;
        format!("arn:{partition}:securityhub:{region}:{account_id}:product/{account_id}/default")
    }
}

named_enum! {
    /// What one import does to Security Hub.
    pub enum Change as "change" {
        /// A non-compliant key rekey had not reported before.
        New = "new",
        /// A finding rekey reported before, still non-compliant (or again).
        Updated = "updated",
        /// A finding rekey reported before whose key is now fine or gone.
        Archived = "archived",
    }
}

/// One finding to import, and why.
#[derive(Debug, Clone)]
pub struct Import {
    pub change: Change,
    pub finding: AwsSecurityFinding,
}

/// The findings to import so that Security Hub matches the audit of one
/// account: `rows` are the account's non-compliant keys with their IDs,
/// `existing` what GetFindings returned for rekey in that account. Sorted
/// by finding ID.
pub fn plan(
    hub: &Hub,
    rows: &[(String, &KeyRow)],
    existing: &[AwsSecurityFinding],
    now: OffsetDateTime,
) -> Vec<Import> {
    let now = timestamp(now);
    let ours: Vec<&AwsSecurityFinding> = existing
        .iter()
        .filter(|f| {
            f.generator_id() == Some(GENERATOR_ID)
                && f.aws_account_id() == Some(hub.account_id.as_str())
                && f.product_arn() == Some(hub.product_arn().as_str())
        })
        .collect();
    let find = |id: &str| ours.iter().copied().find(|f| f.id() == Some(id));
    let mut imports: Vec<Import> = rows
        .iter()
        .map(|(id, row)| {
            let before = find(id);
            Import {
                change: if before.is_some() {
                    Change::Updated
                } else {
                    Change::New
                },
                finding: active(hub, id, row, before, &now),
            }
        })
        .collect();
    for f in ours {
        let still_found = rows.iter().any(|(id, _)| f.id() == Some(id.as_str()));
        let archived = f.record_state() == Some(&RecordState::Archived);
        if !still_found && !archived {
            imports.push(Import {
                change: Change::Archived,
                finding: resolved(f, &now),
            });
        }
    }
    imports.sort_by(|a, b| a.finding.id().cmp(&b.finding.id()));
    imports
}

/// ASFF timestamps: ISO 8601, UTC.
fn timestamp(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a UTC time formats as RFC 3339")
}

fn rfc3339(t: Option<OffsetDateTime>) -> Option<String> {
    t.map(timestamp)
}

/// A non-compliant key as an ACTIVE, FAILED finding; CreatedAt and
/// FirstObservedAt stay those of the finding it updates.
fn active(
    hub: &Hub,
    id: &str,
    row: &KeyRow,
    before: Option<&AwsSecurityFinding>,
    now: &str,
) -> AwsSecurityFinding {
    let severity = security::severity(row);
    let created = before.and_then(|f| f.created_at()).unwrap_or(now);
    let first = before.and_then(|f| f.first_observed_at()).unwrap_or(now);
    let findings: Vec<&str> = row.findings.iter().map(|f| f.as_str()).collect();
    let controls: Vec<String> = row
        .findings
        .iter()
        .map(|f| security::cis_control(*f).to_string())
        .collect();
    let mut builder = AwsSecurityFinding::builder()
        .schema_version(SCHEMA_VERSION)
        .id(id)
        .product_arn(hub.product_arn())
        .product_name("rekey")
        .company_name("rekey")
        .generator_id(GENERATOR_ID)
        .aws_account_id(&row.account_id)
        .region(&hub.region)
        .set_types(Some(
            controls
                .iter()
                .map(|c| {
                    format!(
                        "Software and Configuration Checks/Industry and Regulatory Standards/{c}"
                    )
                })
                .collect(),
        ))
        .created_at(created)
        .first_observed_at(first)
        .last_observed_at(now)
        .updated_at(now)
        .severity(
            Severity::builder()
                .label(SeverityLabel::from(severity.as_str()))
                .original(severity.as_str())
                .build(),
        )
        .title(security::title(row))
        .description(security::description(row))
        .compliance(
            Compliance::builder()
                .status(ComplianceStatus::Failed)
                .set_related_requirements(Some(controls.clone()))
                .build(),
        )
        .record_state(RecordState::Active)
        .product_fields("rekey/Findings", findings.join(","))
        .product_fields("rekey/UserName", &row.user_name)
        .resources(key_resource(hub, row));
    if let Some(key) = &row.access_key_id {
        builder = builder.product_fields("rekey/AccessKeyId", key);
    }
    if !row.is_root {
        builder = builder.resources(user_resource(hub, row));
    }
    builder.build()
}

fn key_resource(hub: &Hub, row: &KeyRow) -> Resource {
    let details = AwsIamAccessKeyDetails::builder()
        .status(AwsIamAccessKeyStatus::from(row.status.as_str()))
        .set_created_at(rfc3339(row.created))
        .principal_name(&row.user_name)
        .principal_type(if row.is_root { "Root" } else { "IAMUser" })
        .account_id(&row.account_id)
        .set_access_key_id(row.access_key_id.clone())
        .build();
    let (kind, id) = match (&row.access_key_id, row.is_root) {
        (Some(key), false) => ("AwsIamAccessKey", key.clone()),
        // AWS never lists a root key's ID; the account is what to fix.
        _ => ("AwsAccount", format!("AWS::::Account:{}", row.account_id)),
    };
    Resource::builder()
        .r#type(kind)
        .id(id)
        .partition(Partition::from(row.partition.as_str()))
        .region(&hub.region)
        .details(
            ResourceDetails::builder()
                .aws_iam_access_key(details)
                .build(),
        )
        .build()
}

fn user_resource(hub: &Hub, row: &KeyRow) -> Resource {
    Resource::builder()
        .r#type("AwsIamUser")
        .id(&row.user_arn)
        .partition(Partition::from(row.partition.as_str()))
        .region(&hub.region)
        .details(
            ResourceDetails::builder()
                .aws_iam_user(
                    AwsIamUserDetails::builder()
                        .user_name(&row.user_name)
                        .path(&row.path)
                        .build(),
                )
                .build(),
        )
        .build()
}

/// An earlier finding, resolved: PASSED, ARCHIVED, INFORMATIONAL (as
/// Security Hub's own controls label passed checks); the rest as it was.
fn resolved(before: &AwsSecurityFinding, now: &str) -> AwsSecurityFinding {
    let mut f = before.clone();
    f.updated_at = Some(now.to_string());
    f.record_state = Some(RecordState::Archived);
    f.compliance = Some(
        Compliance::builder()
            .status(ComplianceStatus::Passed)
            .set_related_requirements(
                before
                    .compliance()
                    .map(|c| c.related_requirements().to_vec()),
            )
            .build(),
    );
    f.severity = Some(
        Severity::builder()
            .label(SeverityLabel::Informational)
            .set_original(
                before
                    .severity()
                    .and_then(|s| s.original())
                    .map(str::to_string),
            )
            .build(),
    );
    // Fields only Security Hub or the customer set (BatchUpdateFindings)
    // are not the provider's to send back.
    f.workflow = None;
    f.workflow_state = None;
    f.processed_at = None;
    f.note = None;
    f.user_defined_fields = None;
    f.verification_state = None;
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture::{self, ids};
    use crate::report::security::non_compliant;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-26 12:00 UTC);
    const LATER: OffsetDateTime = datetime!(2026-11-27 12:00 UTC);

    fn hub() -> Hub {
        Hub {
            partition: "aws".into(),
            region: "eu-west-1".into(),
            account_id: fixture::OK_ACCOUNT.into(),
        }
    }

    fn first_run() -> Vec<Import> {
        let report = fixture::report();
        plan(&hub(), &non_compliant(&report), &[], NOW)
    }

    #[test]
    fn product_arn_is_the_accounts_default_product() {
        assert_eq!(
            hub().product_arn(),
            "arn:aws:securityhub:eu-west-1:111111111111:product/111111111111/default"
        );
    }

    #[test]
    fn first_run_creates_one_failed_active_finding_per_key() {
        let imports = first_run();
        assert_eq!(imports.len(), fixture::report().summary.non_compliant);
        assert!(imports.iter().all(|i| i.change == Change::New));
        let alice = imports
            .iter()
            .find(|i| i.finding.id().unwrap().ends_with(ids::ALICE))
            .unwrap();
        let f = &alice.finding;
        assert_eq!(f.aws_account_id(), Some(fixture::OK_ACCOUNT));
        assert_eq!(f.generator_id(), Some(GENERATOR_ID));
        assert_eq!(f.schema_version(), Some(SCHEMA_VERSION));
        assert_eq!(f.record_state(), Some(&RecordState::Active));
        assert_eq!(
            f.compliance().unwrap().status(),
            Some(&ComplianceStatus::Failed)
        );
        assert_eq!(f.severity().unwrap().label(), Some(&SeverityLabel::Medium));
        assert_eq!(f.resources()[0].id(), Some(ids::ALICE));
        assert_eq!(f.resources()[0].r#type(), Some("AwsIamAccessKey"));
        assert_eq!(
            f.resources()[1].id(),
            Some("arn:aws:iam::111111111111:user/alice")
        );
        assert_eq!(
            f.product_fields().unwrap().get("rekey/Findings").unwrap(),
            "too_old"
        );
        assert_eq!(f.created_at(), Some("2026-11-26T12:00:00Z"));
    }

    #[test]
    fn a_second_run_updates_in_place_and_archives_what_was_fixed() {
        let before: Vec<AwsSecurityFinding> = first_run().into_iter().map(|i| i.finding).collect();
        let report = fixture::report();
        let rows: Vec<_> = non_compliant(&report)
            .into_iter()
            .filter(|(_, r)| r.access_key_id.as_deref() != Some(ids::ALICE))
            .collect();
        let imports = plan(&hub(), &rows, &before, LATER);
        assert_eq!(imports.len(), before.len());
        let alice = imports
            .iter()
            .find(|i| i.finding.id().unwrap().ends_with(ids::ALICE))
            .unwrap();
        assert_eq!(alice.change, Change::Archived);
        assert_eq!(alice.finding.record_state(), Some(&RecordState::Archived));
        assert_eq!(
            alice.finding.compliance().unwrap().status(),
            Some(&ComplianceStatus::Passed)
        );
        assert_eq!(alice.finding.created_at(), Some("2026-11-26T12:00:00Z"));
        assert_eq!(alice.finding.updated_at(), Some("2026-11-27T12:00:00Z"));
        for other in imports.iter().filter(|i| i.change != Change::Archived) {
            assert_eq!(other.change, Change::Updated);
            assert_eq!(other.finding.created_at(), Some("2026-11-26T12:00:00Z"));
            assert_eq!(other.finding.record_state(), Some(&RecordState::Active));
        }
        // Once archived, a fixed key is left alone.
        let after: Vec<AwsSecurityFinding> = imports.into_iter().map(|i| i.finding).collect();
        let third = plan(&hub(), &rows, &after, LATER);
        assert!(third.iter().all(|i| i.change == Change::Updated));
        assert_eq!(third.len(), rows.len());
    }

    #[test]
    fn findings_of_other_generators_and_accounts_are_never_touched() {
        let foreign = AwsSecurityFinding::builder()
            .id("someone-else/finding")
            .generator_id("aws-foundational-security-best-practices")
            .aws_account_id(fixture::OK_ACCOUNT)
            .product_arn(hub().product_arn())
            .record_state(RecordState::Active)
            .build();
        let mut elsewhere = first_run().remove(0).finding;
        elsewhere.aws_account_id = Some("999999999999".into());
        assert!(plan(&hub(), &[], &[foreign, elsewhere], NOW).is_empty());
    }
}
