//! The function as an AWS Config custom rule (issue 20): one evaluation per
//! IAM user of the event's account, judged exactly as `rekey audit --view
//! config` judges it (`access-keys-rotated`: NON_COMPLIANT while an active
//! key is older than `maxAccessKeyAge`), put with PutEvaluations.
//!
//! ```text
//! event ──parse──▶ RuleRun (checked; nothing put when it is bad)
//!   │ account: own credentials, or REKEY_ROLE assumed in it
//!   ▼
//! ListUsers (UserIds) + inventory::collect(Api) ──▶ audit::judge ──▶ views::config_evaluations
//!   ▼
//! RuleEvaluation per user (NOT_APPLICABLE on the account without users)
//!   ▼
//! PutEvaluations, ≤100 a call ──▶ {"evaluations", "compliant", …, "calls"}
//! ```
//!
//! Which events: the periodic `ScheduledNotification` the rule is made for,
//! and the change notifications (`ConfigurationItemChangeNotification`,
//! `OversizedConfigurationItemChangeNotification`) too, should the rule be
//! given change triggers: a change to one user re-evaluates the whole
//! account the same way, which is as cheap and can never disagree with the
//! periodic run. A change notification for a resource that left the rule's
//! scope (`eventLeftScope`) or was deleted gets NOT_APPLICABLE for that
//! resource alone, as AWS's "Managing Deleted Resources" guide does, so
//! Config stops reporting it. A periodic event never names a resource; one
//! marked `eventLeftScope` puts nothing.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_lambda_events::event::config::ConfigEvent;
use aws_sdk_config::types::{ComplianceType, Evaluation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Invocation, LambdaError, Shared};
use crate::audit::{self, AccountResult, AccountStatus, AuditReport};
use crate::aws::{Signer, caller_identity, with_credentials};
use crate::error::CallError;
use crate::inventory::{self, Source};
use crate::model::{Inventory, is_account_id};
use crate::names::named_enum;
use crate::policy::{ConfigCompliance, DEFAULT_MAX_AGE_DAYS, Policy, config_compliance};
use crate::report::views::{ConfigEvaluation, config_evaluations};

/// Config's resource type of an IAM user; its resource ID is the UserId.
pub const USER_RESOURCE: &str = "AWS::IAM::User";
/// Config's resource type of an account, judged when it has no users.
pub const ACCOUNT_RESOURCE: &str = "AWS::::Account";
/// PutEvaluations takes at most this many evaluations a call.
pub const MAX_PER_CALL: usize = 100;
/// An annotation is at most this many characters.
pub const MAX_ANNOTATION: usize = 256;

/// Why the rule's evaluations could not be made or put. Never holds a
/// secret; each names the account once it is known.
#[derive(Debug, thiserror::Error)]
pub enum ConfigRuleError {
    #[error("an AWS Config rule's event that cannot be read ({reason}); nothing was put")]
    BadEvent { reason: String },
    #[error("the AWS Config event's {field} cannot be used: {why}; nothing was put")]
    BadField { field: &'static str, why: String },
    #[error(
        "cannot learn the function's own account (sts:GetCallerIdentity), so account {account_id} cannot be reached; nothing was put"
    )]
    OwnIdentity {
        account_id: String,
        #[source]
        source: Box<CallError>,
    },
    #[error(
        "account {account_id}: cannot assume {role_arn} (check REKEY_ROLE and that the role trusts the function's account); nothing was put"
    )]
    AssumeRole {
        account_id: String,
        role_arn: String,
        #[source]
        source: Box<CallError>,
    },
    #[error("account {account_id}: cannot read its IAM users and keys; nothing was put")]
    Inventory {
        account_id: String,
        #[source]
        source: Box<CallError>,
    },
    #[error(
        "account {account_id}: PutEvaluations call {call} of {calls} failed after {put} of {total} evaluations were put; the rule's next run puts them all again"
    )]
    Put {
        account_id: String,
        call: usize,
        calls: usize,
        put: usize,
        total: usize,
        #[source]
        source: Box<CallError>,
    },
    #[error(
        "account {account_id}: AWS Config refused {failed} of {total} evaluations (FailedEvaluations, first: {first}); the rule's next run puts them again"
    )]
    Refused {
        account_id: String,
        failed: usize,
        total: usize,
        first: String,
    },
}

named_enum! {
    /// The kinds of AWS Config notification the rule is invoked with.
    pub enum MessageType as "AWS Config message type" {
        Scheduled = "ScheduledNotification",
        Change = "ConfigurationItemChangeNotification",
        OversizedChange = "OversizedConfigurationItemChangeNotification",
    }
}

named_enum! {
    /// A result PutEvaluations takes, named as Config spells it.
    pub enum Compliance as "Config evaluation result" {
        Compliant = "COMPLIANT",
        NonCompliant = "NON_COMPLIANT",
        NotApplicable = "NOT_APPLICABLE",
    }
}

impl From<ConfigCompliance> for Compliance {
    fn from(c: ConfigCompliance) -> Self {
        match c {
            ConfigCompliance::Compliant => Compliance::Compliant,
            ConfigCompliance::NonCompliant => Compliance::NonCompliant,
        }
    }
}

impl Compliance {
    fn sdk(self) -> ComplianceType {
        match self {
            Compliance::Compliant => ComplianceType::Compliant,
            Compliance::NonCompliant => ComplianceType::NonCompliant,
            Compliance::NotApplicable => ComplianceType::NotApplicable,
        }
    }
}

/// A resource Config named in a change notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub resource_type: String,
    pub resource_id: String,
}

/// What one event asks for, read and checked before any AWS call: a plain
/// value, so a bad event is refused having put nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRun {
    pub account_id: String,
    pub rule_name: Option<String>,
    pub message_type: MessageType,
    pub result_token: String,
    /// `notificationCreationTime`: every evaluation's OrderingTimestamp.
    pub ordering: OffsetDateTime,
    /// `maxAccessKeyAge`, 90 (AWS's managed rule's default) when absent.
    pub max_access_key_age: i64,
    pub subject: Subject,
}

/// What an event has evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// Every IAM user of the account.
    Account,
    /// Only a resource that left the rule's scope or was deleted:
    /// NOT_APPLICABLE for it alone.
    OutOfScope(Resource),
    /// A periodic event marked out of scope: nothing to put.
    Nothing,
}

/// `invokingEvent`, the parts the rule reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InvokingEvent {
    message_type: String,
    notification_creation_time: Option<String>,
    configuration_item: Option<ItemRef>,
    configuration_item_summary: Option<ItemRef>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ItemRef {
    resource_type: Option<String>,
    resource_id: Option<String>,
    configuration_item_status: Option<String>,
}

fn bad(field: &'static str, why: impl Into<String>) -> ConfigRuleError {
    ConfigRuleError::BadField {
        field,
        why: why.into(),
    }
}

impl RuleRun {
    /// Reads a Config rule's event (the shape AWS documents). Pure.
    pub fn parse(event: Value) -> Result<RuleRun, ConfigRuleError> {
        let event: ConfigEvent =
            serde_json::from_value(event).map_err(|e| ConfigRuleError::BadEvent {
                reason: e.to_string(),
            })?;
        let account_id = event.account_id.unwrap_or_default();
        if !is_account_id(&account_id) {
            return Err(bad(
                "accountId",
                format!("`{account_id}` is not a 12-digit account ID"),
            ));
        }
        let result_token = event
            .result_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| bad("resultToken", "it is missing, and PutEvaluations needs it"))?;
        let invoking = event.invoking_event.unwrap_or_default();
        let invoking: InvokingEvent = serde_json::from_str(&invoking).map_err(|e| {
            bad(
                "invokingEvent",
                format!("not the JSON AWS Config sends ({e})"),
            )
        })?;
        let message_type: MessageType = invoking.message_type.parse().map_err(|_| {
            bad(
                "invokingEvent",
                format!(
                    "messageType `{}` is none the rule handles ({})",
                    invoking.message_type,
                    MessageType::ALL
                        .iter()
                        .map(|m| m.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        let created = invoking
            .notification_creation_time
            .as_deref()
            .unwrap_or_default();
        let ordering = OffsetDateTime::parse(created, &Rfc3339).map_err(|_| {
            bad(
                "invokingEvent",
                format!("notificationCreationTime `{created}` is not an RFC 3339 time"),
            )
        })?;
        let max_access_key_age = max_access_key_age(event.rule_parameters.as_deref())?;
        let item = invoking
            .configuration_item
            .or(invoking.configuration_item_summary);
        Ok(RuleRun {
            account_id,
            rule_name: event.config_rule_name,
            message_type,
            result_token,
            ordering,
            max_access_key_age,
            subject: subject(message_type, event.event_left_scope, item),
        })
    }
}

/// `maxAccessKeyAge` of `ruleParameters`: a positive whole number of days,
/// written as Config writes parameters (a string) or as a number; 90 when
/// the rule has no parameters.
fn max_access_key_age(params: Option<&str>) -> Result<i64, ConfigRuleError> {
    let params = params.map(str::trim).filter(|p| !p.is_empty());
    let Some(params) = params else {
        return Ok(DEFAULT_MAX_AGE_DAYS);
    };
    let map: HashMap<String, Value> = serde_json::from_str(params)
        .map_err(|e| bad("ruleParameters", format!("not a JSON object ({e})")))?;
    let value = match map.get("maxAccessKeyAge") {
        None | Some(Value::Null) => return Ok(DEFAULT_MAX_AGE_DAYS),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(other) => other.to_string(),
    };
    value
        .parse::<u32>()
        .ok()
        .filter(|&d| d > 0)
        .map(i64::from)
        .ok_or_else(|| {
            bad(
                "ruleParameters",
                format!("maxAccessKeyAge `{value}` is not a positive whole number of days"),
            )
        })
}

/// What the event has evaluated: the account, unless it is only about a
/// resource out of the rule's scope (`left`) or deleted.
fn subject(kind: MessageType, left: bool, item: Option<ItemRef>) -> Subject {
    if kind == MessageType::Scheduled {
        return if left {
            Subject::Nothing
        } else {
            Subject::Account
        };
    }
    let Some(item) = item else {
        return Subject::Account;
    };
    let deleted = matches!(
        item.configuration_item_status.as_deref(),
        Some("ResourceDeleted" | "ResourceDeletedNotRecorded")
    );
    match (left || deleted, item.resource_type, item.resource_id) {
        (true, Some(resource_type), Some(resource_id)) => Subject::OutOfScope(Resource {
            resource_type,
            resource_id,
        }),
        (true, ..) => Subject::Nothing,
        (false, ..) => Subject::Account,
    }
}

/// One evaluation as data: what PutEvaluations is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleEvaluation {
    pub resource_type: String,
    pub resource_id: String,
    pub compliance: Compliance,
    /// At most [`MAX_ANNOTATION`] characters; key IDs masked.
    pub annotation: String,
}

/// An IAM user as Config knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamUser {
    pub user_name: String,
    pub user_id: String,
}

/// `text` cut to `max` characters on a character boundary, an ellipsis
/// marking the cut. Pure.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The evaluations of an account: one per user in `users`, judged by the
/// Config view of an audit of `inventory` at `now`; NOT_APPLICABLE on the
/// account when it has no users. Pure.
pub fn account_evaluations(
    inventory: &Inventory,
    users: &[IamUser],
    max_access_key_age: i64,
    now: OffsetDateTime,
) -> Vec<RuleEvaluation> {
    let max = max_access_key_age;
    if users.is_empty() {
        return vec![RuleEvaluation {
            resource_type: ACCOUNT_RESOURCE.into(),
            resource_id: inventory.account_id.clone(),
            compliance: Compliance::NotApplicable,
            annotation: format!("The account has no IAM users (maxAccessKeyAge {max})"),
        }];
    }
    let report = config_view_report(inventory, max, now);
    let judged: HashMap<String, ConfigEvaluation> = config_evaluations(&report)
        .into_iter()
        .map(|e| (e.user_name.clone(), e))
        .collect();
    users
        .iter()
        .map(|u| {
            // The view lists users with keys only; one without any is
            // judged on no keys by the same policy function.
            let judged = judged
                .get(&u.user_name)
                .cloned()
                .unwrap_or_else(|| ConfigEvaluation {
                    account_id: inventory.account_id.clone(),
                    partition: inventory.partition.clone(),
                    user_name: u.user_name.clone(),
                    user_arn: String::new(),
                    compliance_type: config_compliance(&[], max, now),
                    max_access_key_age: max,
                    active_keys: 0,
                    stale_keys: vec![],
                });
            RuleEvaluation {
                resource_type: USER_RESOURCE.into(),
                resource_id: u.user_id.clone(),
                compliance: judged.compliance_type.into(),
                annotation: truncate(&judged.annotation(true), MAX_ANNOTATION),
            }
        })
        .collect()
}

/// The audit report `rekey audit --view config` would render for this one
/// account with `max_age_days` = `max`: keys judged by [`audit::judge`]
/// (which also leaves out keys made after `now`).
fn config_view_report(inventory: &Inventory, max: i64, now: OffsetDateTime) -> AuditReport {
    let mut policy = Policy::default();
    policy.max_age_days = max;
    let keys = audit::judge(inventory, &policy, now);
    let account = AccountResult {
        account_id: Some(inventory.account_id.clone()),
        name: None,
        via: "config rule".into(),
        status: AccountStatus::Ok,
        error: None,
        error_code: None,
        partition: Some(inventory.partition.clone()),
        max_age_days: max,
        users: inventory.user_count,
        keys: keys.len(),
        non_compliant_keys: 0,
        aws_calls: 0,
        securityhub_error: None,
        securityhub_error_code: None,
    };
    AuditReport {
        generated_at: now,
        as_of: now,
        source: Source::Api,
        accounts: vec![account],
        keys,
        summary: audit::Summary::default(),
    }
}

/// What the function returns, and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RuleSummary {
    pub evaluations: usize,
    pub compliant: usize,
    pub non_compliant: usize,
    pub not_applicable: usize,
    /// PutEvaluations calls made.
    pub calls: usize,
}

impl RuleSummary {
    fn of(evaluations: &[RuleEvaluation], calls: usize) -> RuleSummary {
        let count = |c| evaluations.iter().filter(|e| e.compliance == c).count();
        RuleSummary {
            evaluations: evaluations.len(),
            compliant: count(Compliance::Compliant),
            non_compliant: count(Compliance::NonCompliant),
            not_applicable: count(Compliance::NotApplicable),
            calls,
        }
    }
}

/// Evaluates the account the event names and puts the evaluations.
pub async fn evaluate(
    shared: &Shared,
    event: Value,
    inv: &Invocation,
) -> Result<Value, LambdaError> {
    let run = RuleRun::parse(event)?;
    let (config, partition) = account_config(shared, &run.account_id).await?;
    let evaluations = match &run.subject {
        Subject::Nothing => vec![],
        Subject::OutOfScope(resource) => vec![RuleEvaluation {
            resource_type: resource.resource_type.clone(),
            resource_id: resource.resource_id.clone(),
            compliance: Compliance::NotApplicable,
            annotation: "The resource left the rule's scope or was deleted".into(),
        }],
        Subject::Account => {
            let (inventory, users) = read_account(shared, &config, &run.account_id, &partition)
                .await
                .map_err(|e| ConfigRuleError::Inventory {
                    account_id: run.account_id.clone(),
                    source: Box::new(e),
                })?;
            account_evaluations(
                &inventory,
                &users,
                run.max_access_key_age,
                shared.clock.now(),
            )
        }
    };
    let client = shared.deps.clients().config_service(&config);
    let calls = put(&client, &run, &evaluations).await?;
    let summary = RuleSummary::of(&evaluations, calls);
    tracing::info!(
        request_id = %inv.request_id,
        account_id = %run.account_id,
        rule = run.rule_name.as_deref().unwrap_or(""),
        message_type = %run.message_type,
        max_access_key_age = run.max_access_key_age,
        evaluations = summary.evaluations,
        compliant = summary.compliant,
        non_compliant = summary.non_compliant,
        not_applicable = summary.not_applicable,
        calls = summary.calls,
        "config rule evaluated the account"
    );
    Ok(serde_json::to_value(summary).expect("a summary of counts is JSON"))
}

/// The configuration the account is read and evaluated with, and its
/// partition: the function's own credentials in its own account, else a
/// session of `REKEY_ROLE` there (assumed once per container).
async fn account_config(
    shared: &Shared,
    account_id: &str,
) -> Result<(SdkConfig, String), ConfigRuleError> {
    let base = shared.deps.base();
    let sts = shared.deps.clients().account(base).sts;
    let own = caller_identity(&sts)
        .await
        .map_err(|e| ConfigRuleError::OwnIdentity {
            account_id: account_id.to_string(),
            source: Box::new(e),
        })?;
    if own.account_id == account_id {
        return Ok((base.clone(), own.partition));
    }
    let role_arn = format!(
        "arn:{}:iam::{account_id}:role/{}",
        own.partition, shared.settings.role
    );
    let session = shared
        .deps
        .role_session(&Signer::Caller, &role_arn, None)
        .await
        .map_err(|e| ConfigRuleError::AssumeRole {
            account_id: account_id.to_string(),
            role_arn: role_arn.clone(),
            source: Box::new(e),
        })?;
    Ok((with_credentials(base, session), own.partition))
}

/// Every IAM user of the account with its UserId (ListUsers), and the
/// account's keys as `audit --source api` reads them. Users are listed
/// first: one created in between has keys but no UserId yet and waits for
/// the next run, rather than being put without one.
async fn read_account(
    shared: &Shared,
    config: &SdkConfig,
    account_id: &str,
    partition: &str,
) -> Result<(Inventory, Vec<IamUser>), CallError> {
    let clients = shared.deps.clients().account(config);
    let pages: Vec<_> = clients
        .iam
        .list_users()
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| CallError::from_sdk("iam:ListUsers", e))?;
    let mut users: Vec<IamUser> = pages
        .iter()
        .flat_map(|p| p.users())
        .map(|u| IamUser {
            user_name: u.user_name().to_string(),
            user_id: u.user_id().to_string(),
        })
        .collect();
    users.sort_by(|a, b| a.user_name.cmp(&b.user_name));
    let inventory = inventory::collect(&clients, account_id, partition, Source::Api).await?;
    Ok((inventory, users))
}

/// Puts `evaluations` in calls of at most [`MAX_PER_CALL`]; the number of
/// calls. Every chunk is tried even when Config refuses some evaluations
/// of another, so one bad evaluation does not hold back the rest.
async fn put(
    client: &aws_sdk_config::Client,
    run: &RuleRun,
    evaluations: &[RuleEvaluation],
) -> Result<usize, ConfigRuleError> {
    let at = aws_smithy_types::DateTime::from_secs_and_nanos(
        run.ordering.unix_timestamp(),
        run.ordering.nanosecond(),
    );
    let chunks: Vec<&[RuleEvaluation]> = evaluations.chunks(MAX_PER_CALL).collect();
    let mut refused: Vec<Evaluation> = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let batch: Vec<Evaluation> = chunk
            .iter()
            .map(|e| {
                Evaluation::builder()
                    .compliance_resource_type(&e.resource_type)
                    .compliance_resource_id(&e.resource_id)
                    .compliance_type(e.compliance.sdk())
                    .annotation(&e.annotation)
                    .ordering_timestamp(at)
                    .build()
                    .expect("every required field of an evaluation is set")
            })
            .collect();
        let out = client
            .put_evaluations()
            .result_token(&run.result_token)
            .set_evaluations(Some(batch))
            .send()
            .await
            .map_err(|e| ConfigRuleError::Put {
                account_id: run.account_id.clone(),
                call: i + 1,
                calls: chunks.len(),
                put: i * MAX_PER_CALL,
                total: evaluations.len(),
                source: Box::new(CallError::from_sdk("config:PutEvaluations", e)),
            })?;
        refused.extend(out.failed_evaluations().iter().cloned());
    }
    if let Some(first) = refused.first() {
        return Err(ConfigRuleError::Refused {
            account_id: run.account_id.clone(),
            failed: refused.len(),
            total: evaluations.len(),
            first: format!(
                "{} {}",
                first.compliance_resource_type(),
                first.compliance_resource_id()
            ),
        });
    }
    Ok(chunks.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Key, KeyStatus, User, UserKeys};
    use serde_json::json;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-08 00:00 UTC);

    fn event(invoking: Value, params: Option<&str>) -> Value {
        let mut e = json!({
            "version": "1.0",
            "invokingEvent": invoking.to_string(),
            "resultToken": "token-1",
            "eventLeftScope": false,
            "executionRoleArn": "arn:aws:iam::111122223333:role/config-role",
            "configRuleArn": "arn:aws:config:us-east-1:111122223333:config-rule/config-rule-0",
            "configRuleName": "rekey-access-keys-rotated",
            "configRuleId": "config-rule-0",
            "accountId": "111122223333",
        });
        if let Some(p) = params {
            e["ruleParameters"] = json!(p);
        }
        e
    }

    fn scheduled() -> Value {
        json!({
            "awsAccountId": "111122223333",
            "notificationCreationTime": "2026-12-08T00:00:00.000Z",
            "messageType": "ScheduledNotification",
            "recordVersion": "1.0",
        })
    }

    fn field_of(e: ConfigRuleError) -> &'static str {
        match e {
            ConfigRuleError::BadField { field, .. } => field,
            other => panic!("not a bad field: {other}"),
        }
    }

    #[test]
    fn a_periodic_event_is_read_with_its_parameters() {
        let run = RuleRun::parse(event(scheduled(), Some(r#"{"maxAccessKeyAge":"30"}"#))).unwrap();
        assert_eq!(run.account_id, "111122223333");
        assert_eq!(run.message_type, MessageType::Scheduled);
        assert_eq!(run.ordering, NOW);
        assert_eq!(run.max_access_key_age, 30);
        assert_eq!(run.result_token, "token-1");
        assert_eq!(run.subject, Subject::Account);
        let run = RuleRun::parse(event(scheduled(), None)).unwrap();
        assert_eq!(run.max_access_key_age, 90, "AWS's managed rule's default");
        let run = RuleRun::parse(event(scheduled(), Some("{}"))).unwrap();
        assert_eq!(run.max_access_key_age, 90);
        let run = RuleRun::parse(event(scheduled(), Some(r#"{"maxAccessKeyAge":45}"#))).unwrap();
        assert_eq!(run.max_access_key_age, 45);
    }

    #[test]
    fn bad_parameters_and_events_name_their_field() {
        for bad in [
            "not json",
            r#"{"maxAccessKeyAge":"0"}"#,
            r#"{"maxAccessKeyAge":"-5"}"#,
            r#"{"maxAccessKeyAge":"9.5"}"#,
            r#"{"maxAccessKeyAge":"ninety"}"#,
            r#"["maxAccessKeyAge"]"#,
        ] {
            let e = RuleRun::parse(event(scheduled(), Some(bad))).unwrap_err();
            let text = e.to_string();
            assert_eq!(field_of(e), "ruleParameters", "{bad}: {text}");
        }
        let mut e = event(scheduled(), None);
        e["invokingEvent"] = json!("{not json");
        assert_eq!(field_of(RuleRun::parse(e).unwrap_err()), "invokingEvent");
        let mut inv = scheduled();
        inv["messageType"] = json!("SomethingElse");
        let e = RuleRun::parse(event(inv, None)).unwrap_err();
        assert!(e.to_string().contains("SomethingElse"), "{e}");
        let mut inv = scheduled();
        inv["notificationCreationTime"] = json!("yesterday");
        assert_eq!(
            field_of(RuleRun::parse(event(inv, None)).unwrap_err()),
            "invokingEvent"
        );
        let mut e = event(scheduled(), None);
        e["accountId"] = json!("12345");
        assert_eq!(field_of(RuleRun::parse(e).unwrap_err()), "accountId");
        let mut e = event(scheduled(), None);
        e.as_object_mut().unwrap().remove("resultToken");
        assert_eq!(field_of(RuleRun::parse(e).unwrap_err()), "resultToken");
    }

    #[test]
    fn a_change_notification_out_of_scope_names_its_resource_alone() {
        let change = |status: &str| {
            json!({
                "configurationItem": {
                    "resourceType": "AWS::IAM::User",
                    "resourceId": "AIDAEXAMPLE",
                    "configurationItemStatus": status,
                },
                "notificationCreationTime": "2026-12-08T00:00:00.000Z",
                "messageType": "ConfigurationItemChangeNotification",
            })
        };
        let run = RuleRun::parse(event(change("OK"), None)).unwrap();
        assert_eq!(
            (run.message_type, run.subject),
            (MessageType::Change, Subject::Account)
        );
        let run = RuleRun::parse(event(change("ResourceDeleted"), None)).unwrap();
        let gone = Resource {
            resource_type: "AWS::IAM::User".into(),
            resource_id: "AIDAEXAMPLE".into(),
        };
        assert_eq!(run.subject, Subject::OutOfScope(gone.clone()));
        let mut e = event(change("OK"), None);
        e["eventLeftScope"] = json!(true);
        assert_eq!(
            RuleRun::parse(e).unwrap().subject,
            Subject::OutOfScope(gone)
        );
        let mut e = event(scheduled(), None);
        e["eventLeftScope"] = json!(true);
        assert_eq!(RuleRun::parse(e).unwrap().subject, Subject::Nothing);
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate("short", 256), "short");
        let long = "é…".repeat(300);
        let cut = truncate(&long, MAX_ANNOTATION);
        assert_eq!(cut.chars().count(), MAX_ANNOTATION);
        assert!(cut.ends_with('…'));
        assert_eq!(truncate(&"a".repeat(256), 256), "a".repeat(256));
    }

    fn user_keys(name: &str, keys: &[(KeyStatus, i64)]) -> UserKeys {
        UserKeys {
            user: User {
                user_name: name.into(),
                user_arn: format!("arn:aws:iam::111122223333:user/{name}"),
                path: "/".into(),
                tags: Default::default(),
                groups: vec![],
            },
            is_root: false,
            keys: keys
                .iter()
                .enumerate()
                .map(|(i, (status, age))| Key {
                    access_key_id: Some(format!("AKIA{name:0>12}{i:04}").to_uppercase()),
                    status: *status,
                    created: Some(NOW - time::Duration::days(*age)),
                    last_used: None,
                })
                .collect(),
        }
    }

    #[test]
    fn each_user_is_judged_as_the_config_view_judges_it() {
        let inventory = Inventory {
            account_id: "111122223333".into(),
            partition: "aws".into(),
            users: vec![
                user_keys("old", &[(KeyStatus::Active, 120)]),
                user_keys("sixty", &[(KeyStatus::Active, 60)]),
                user_keys("parked", &[(KeyStatus::Inactive, 400)]),
            ],
            user_count: 4,
        };
        let users: Vec<IamUser> = ["nokeys", "old", "parked", "sixty"]
            .iter()
            .map(|n| IamUser {
                user_name: n.to_string(),
                user_id: format!("AIDA{}", n.to_uppercase()),
            })
            .collect();
        let at = |max| {
            account_evaluations(&inventory, &users, max, NOW)
                .into_iter()
                .map(|e| (e.resource_id, e.compliance))
                .collect::<Vec<_>>()
        };
        use Compliance::*;
        assert_eq!(
            at(90),
            vec![
                ("AIDANOKEYS".into(), Compliant),
                ("AIDAOLD".into(), NonCompliant),
                ("AIDAPARKED".into(), Compliant),
                ("AIDASIXTY".into(), Compliant),
            ]
        );
        assert_eq!(at(30)[3], ("AIDASIXTY".into(), NonCompliant));
        let evals = account_evaluations(&inventory, &users, 90, NOW);
        assert_eq!(
            evals[1].annotation,
            "Access key AKIA…0000 is 120 days old (maxAccessKeyAge 90)"
        );
        assert!(evals.iter().all(|e| e.resource_type == USER_RESOURCE));
    }
}
