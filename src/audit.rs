//! `audit`: every key of every selected account, judged against the policy.
//! Accounts are audited concurrently; one account failing is recorded in
//! its [`AccountResult`] and never stops the others.

use std::collections::BTreeMap;

use futures::{StreamExt, stream};
use serde::Serialize;
use time::OffsetDateTime;

use crate::aws::{AccountClients, AwsOptions, assume_role, with_credentials};
use crate::config::Policies;
use crate::discovery::{Access, Discovery, Target};
use crate::error::{CallError, error_chain};
use crate::inventory::{Source, collect};
use crate::model::{Inventory, KeyStatus, UserKeys};
use crate::policy::{Finding, Verdict, existed_at, judge_user};

/// What to audit and how; built by the CLI (or the Lambda) from its inputs.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    pub source: Source,
    pub concurrency: usize,
    /// The moment keys are judged at (`--as-of`).
    pub as_of: OffsetDateTime,
    /// The real time, stamped on the report.
    pub now: OffsetDateTime,
    pub policies: Policies,
    pub aws: AwsOptions,
}

/// The outcome of one account.
#[derive(Debug, Clone, Serialize)]
pub struct AccountResult {
    /// `None` only when a profile's credentials failed before the account
    /// could be learned.
    pub account_id: Option<String>,
    pub name: Option<String>,
    /// How rekey reached the account: `profile dev`, `role X`, `base`.
    pub via: String,
    pub status: AccountStatus,
    pub error: Option<String>,
    pub error_code: Option<String>,
    pub partition: Option<String>,
    pub max_age_days: i64,
    pub users: usize,
    pub keys: usize,
    pub non_compliant_keys: usize,
    /// AWS requests sent for this account, retries included.
    pub aws_calls: u64,
    /// Why the account's findings did not reach its Security Hub
    /// (`--to-security-hub`). The audit itself went well: `status` stays
    /// `ok`, and the failure is counted apart (issue 15).
    pub securityhub_error: Option<String>,
    pub securityhub_error_code: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    Ok,
    Error,
}

/// One key and its judgement.
#[derive(Debug, Clone, Serialize)]
pub struct KeyRow {
    pub account_id: String,
    pub partition: String,
    pub user_name: String,
    pub user_arn: String,
    pub path: String,
    pub is_root: bool,
    pub groups: Vec<String>,
    pub tags: BTreeMap<String, String>,
    /// Full ID (machine formats); `None` for a root key, whose ID AWS never
    /// lists.
    pub access_key_id: Option<String>,
    pub status: KeyStatus,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created: Option<OffsetDateTime>,
    pub age_days: Option<i64>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used: Option<OffsetDateTime>,
    pub last_used_service: Option<String>,
    pub last_used_region: Option<String>,
    pub unused_days: Option<i64>,
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
    pub exempt_reason: Option<String>,
}

/// Counts over the whole audit.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub accounts: usize,
    pub accounts_ok: usize,
    pub accounts_failed: usize,
    /// Accounts audited whose Security Hub import failed; not among
    /// `accounts_failed` (issue 15).
    pub securityhub_failed: usize,
    pub users_with_keys: usize,
    pub keys: usize,
    pub active_keys: usize,
    pub compliant: usize,
    pub non_compliant: usize,
    pub exempt: usize,
    pub findings: BTreeMap<&'static str, usize>,
    pub aws_calls: u64,
}

/// Everything an audit found; what every output format renders.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub as_of: OffsetDateTime,
    pub source: Source,
    pub accounts: Vec<AccountResult>,
    pub keys: Vec<KeyRow>,
    pub summary: Summary,
}

/// Audits every target of `discovery`, `opts.concurrency` at a time.
/// `on_done` is called once per finished account (progress display).
pub async fn run(
    discovery: Discovery,
    opts: &AuditOptions,
    on_done: &(dyn Fn() + Sync),
) -> AuditReport {
    let Discovery { base, targets } = discovery;
    let base = base.as_ref();
    let mut outcomes: Vec<(AccountResult, Vec<KeyRow>)> = stream::iter(targets)
        .map(|target| async move {
            let out = audit_target(target, base, opts).await;
            on_done();
            out
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    outcomes.sort_by(|a, b| (&a.0.account_id, &a.0.via).cmp(&(&b.0.account_id, &b.0.via)));
    let mut accounts = Vec::new();
    let mut keys = Vec::new();
    for (account, rows) in outcomes {
        accounts.push(account);
        keys.extend(rows);
    }
    let summary = summarize(&accounts, &keys);
    AuditReport {
        generated_at: opts.now,
        as_of: opts.as_of,
        source: opts.source,
        accounts,
        keys,
        summary,
    }
}

async fn audit_target(
    target: Target,
    base: Option<&aws_config::SdkConfig>,
    opts: &AuditOptions,
) -> (AccountResult, Vec<KeyRow>) {
    let policy = opts.policies.for_account(target.account_id.as_deref());
    let mut result = AccountResult {
        account_id: target.account_id.clone(),
        name: target.name.clone(),
        via: target.via.clone(),
        status: AccountStatus::Ok,
        error: None,
        error_code: None,
        partition: None,
        max_age_days: policy.max_age_days,
        users: 0,
        keys: 0,
        non_compliant_keys: 0,
        aws_calls: 0,
        securityhub_error: None,
        securityhub_error_code: None,
    };
    let (clients, partition, account_id) = match target.access {
        Access::Ready {
            config, identity, ..
        } => (
            AccountClients::new(&config),
            identity.partition,
            identity.account_id,
        ),
        Access::AssumeRole {
            role_arn,
            external_id,
            partition,
        } => {
            let base = base.expect("role targets come with base credentials");
            let entry = AccountClients::new(base);
            let assumed = assume_role(&entry.sts, &role_arn, external_id.as_deref()).await;
            result.aws_calls += entry.calls.total();
            match assumed {
                Ok(creds) => (
                    AccountClients::new(&with_credentials(base, creds)),
                    partition,
                    target.account_id.clone().unwrap_or_default(),
                ),
                Err(e) => return (failed(result, &e), vec![]),
            }
        }
        Access::Failed(e) => return (failed(result, &e), vec![]),
    };
    result.partition = Some(partition.clone());
    let collected = collect(&clients, &account_id, &partition, opts.source).await;
    result.aws_calls += clients.calls.total();
    match collected {
        Ok(inventory) => {
            let rows = judge(&inventory, policy, opts.as_of);
            result.users = inventory.user_count;
            result.keys = rows.len();
            result.non_compliant_keys = rows
                .iter()
                .filter(|r| r.verdict == Verdict::NonCompliant)
                .count();
            (result, rows)
        }
        Err(e) => (failed(result, &e), vec![]),
    }
}

fn failed(mut result: AccountResult, e: &CallError) -> AccountResult {
    result.status = AccountStatus::Error;
    result.error = Some(error_chain(e));
    result.error_code = e.code().map(str::to_string);
    result
}

/// Judges every key of an inventory.
pub fn judge(
    inventory: &Inventory,
    policy: &crate::policy::Policy,
    as_of: OffsetDateTime,
) -> Vec<KeyRow> {
    let mut rows = Vec::new();
    for user in &inventory.users {
        // Keys made after `as_of` did not exist then: left out of every
        // view, and of the user's count of active keys.
        let user = &UserKeys {
            keys: user
                .keys
                .iter()
                .filter(|k| existed_at(k, as_of))
                .cloned()
                .collect(),
            ..user.clone()
        };
        for (key, j) in user.keys.iter().zip(judge_user(user, policy, as_of)) {
            rows.push(KeyRow {
                account_id: inventory.account_id.clone(),
                partition: inventory.partition.clone(),
                user_name: user.user.user_name.clone(),
                user_arn: user.user.user_arn.clone(),
                path: user.user.path.clone(),
                is_root: user.is_root,
                groups: user.user.groups.clone(),
                tags: user.user.tags.clone(),
                access_key_id: key.access_key_id.clone(),
                status: key.status,
                created: key.created,
                age_days: j.age_days,
                last_used: key.last_used.as_ref().map(|u| u.date),
                last_used_service: key.last_used.as_ref().and_then(|u| u.service.clone()),
                last_used_region: key.last_used.as_ref().and_then(|u| u.region.clone()),
                unused_days: j.unused_days,
                verdict: j.verdict,
                findings: j.findings,
                exempt_reason: j.exempt_reason,
            });
        }
    }
    rows
}

fn summarize(accounts: &[AccountResult], keys: &[KeyRow]) -> Summary {
    let mut s = Summary {
        accounts: accounts.len(),
        accounts_ok: accounts
            .iter()
            .filter(|a| a.status == AccountStatus::Ok)
            .count(),
        accounts_failed: accounts
            .iter()
            .filter(|a| a.status == AccountStatus::Error)
            .count(),
        keys: keys.len(),
        active_keys: keys
            .iter()
            .filter(|k| k.status == KeyStatus::Active)
            .count(),
        aws_calls: accounts.iter().map(|a| a.aws_calls).sum(),
        ..Summary::default()
    };
    let mut users = std::collections::BTreeSet::new();
    for k in keys {
        users.insert((&k.account_id, &k.user_name));
        match k.verdict {
            Verdict::Compliant => s.compliant += 1,
            Verdict::NonCompliant => s.non_compliant += 1,
            Verdict::Exempt => s.exempt += 1,
        }
        if k.verdict == Verdict::NonCompliant {
            for f in &k.findings {
                *s.findings.entry(f.as_str()).or_default() += 1;
            }
        }
    }
    s.users_with_keys = users.len();
    s
}
