//! The scheduled fan-out and its workers (DESIGN.md, "Scale"): an
//! EventBridge schedule lists the organization's accounts and sends one
//! SQS message per account ([`schedule`]); each message is one account's
//! `enforce --apply`, run by the same function triggered by the queue
//! ([`work`]). Lambda's concurrency is the workers, the queue's redrive
//! policy sends a message that keeps failing to its dead-letter queue, and
//! the DynamoDB journal's leases keep two deliveries of one message from
//! acting twice: SQS delivers at least once, and enforcing an account
//! whose work is done plans nothing and changes nothing.
//!
//! The message ([`Message`], schema `rekey.enforce-message/1`):
//!
//! ```json
//! {"schema": "rekey.enforce-message/1",
//!  "account_id": "222222222222", "account_name": "dev",
//!  "schedule_id": "<the EventBridge event's id>",
//!  "scheduled_at": "2026-12-08T03:00:00Z",
//!  "request": {"scope": {"accounts": ["222222222222"],
//!                        "role": "OrganizationAccountAccessRole"},
//!              "apply": true}}
//! ```
//!
//! `request` is an enforce request as `rekey enforce` takes it
//! ([`EnforceInput`]) for that one account. The journal, rekey.toml and
//! the notification settings are the function's own (its environment),
//! never a message's: a message naming them is refused.

// One error per message, said once: its size is no cost.
#![allow(clippy::result_large_err)]

use std::time::Instant;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::{StreamExt, stream};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::Instrument;

use super::metrics::AccountMetrics;
use super::{Invocation, LambdaError, Shared};
use crate::discovery::{Access, discover_with};
use crate::enforce::run::{EnforceOutcome, Result_, run_with};
use crate::error::{CallError, InputError, error_chain};
use crate::request::audit::AuditRequest;
use crate::request::enforce::{EnforceError, EnforceInput, EnforceRequest};
use crate::request::{AuditInput, Context, field};

/// The schema of a fan-out message.
pub const MESSAGE_SCHEMA: &str = "rekey.enforce-message/1";

/// SendMessageBatch's limit.
const BATCH: usize = 10;

/// SendMessageBatch calls in flight at once.
const SENDING: usize = 8;

/// How long before the invocation's deadline a worker stops starting
/// actions, besides one rotation's propagation wait: what it started
/// finishes, and the message comes back before Lambda stops it.
const DEADLINE_MARGIN: time::Duration = time::Duration::seconds(30);

/// One account's enforce request, as the schedule sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub schema: String,
    pub account_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    pub schedule_id: String,
    pub scheduled_at: String,
    pub request: EnforceInput,
}

/// Why the schedule could not send every account's message. Nothing is
/// half-said: the accounts whose message went are counted.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("REKEY_QUEUE_URL is not set: the schedule sends each account's request to that queue")]
    NoQueue,
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(
        "{failed} of {accounts} accounts' messages could not be sent to the queue ({sent} were): {first}"
    )]
    NotSent {
        failed: usize,
        sent: usize,
        accounts: usize,
        first: String,
    },
}

/// Why one message was not carried out (it comes back, and after the
/// queue's `maxReceiveCount`, lands in the dead-letter queue).
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("the message is not a {MESSAGE_SCHEMA} document: {0}")]
    Unreadable(String),
    #[error("the message's schema is `{0}`; this function reads {MESSAGE_SCHEMA}")]
    Schema(String),
    #[error("the message's request {0}")]
    Refused(String),
    #[error(transparent)]
    Enforce(#[from] EnforceError),
    #[error("the invocation's deadline came before the account's work could start")]
    Deadline,
    #[error("account {account}: {summary}")]
    Unfinished { account: String, summary: String },
}

/// The scheduled event: every selected account's message sent.
pub async fn schedule(
    shared: &Shared,
    event: &Value,
    inv: &Invocation,
) -> Result<Value, LambdaError> {
    let started = Instant::now();
    let queue = (shared.settings.queue_url.as_deref()).ok_or(ScheduleError::NoQueue)?;
    let now = shared.clock.now();
    let audit = AuditRequest::from_input(&selection(shared, vec![], true), &context(now))
        .map_err(ScheduleError::Input)?;
    let found = discover_with(
        &audit.selection,
        &audit.options.aws,
        Some(shared.deps.base()),
    )
    .await
    .map_err(ScheduleError::Input)?;
    let schedule_id = (event.get("id").and_then(Value::as_str))
        .unwrap_or(&inv.request_id)
        .to_string();
    let scheduled_at = (event
        .get("time")
        .and_then(Value::as_str)
        .map(str::to_string))
    .unwrap_or_else(|| now.format(&Rfc3339).expect("a time formats"));
    let messages: Vec<Message> = (found.targets.iter())
        .filter(|t| !matches!(t.access, Access::Failed(_)))
        .filter_map(|t| {
            let account_id = t.account_id.clone()?;
            Some(Message {
                schema: MESSAGE_SCHEMA.into(),
                request: EnforceInput {
                    scope: AuditInput {
                        accounts: vec![account_id.clone()],
                        role: Some(shared.settings.role.clone()),
                        ..AuditInput::default()
                    },
                    apply: true,
                    ..EnforceInput::default()
                },
                account_id,
                account_name: t.name.clone(),
                schedule_id: schedule_id.clone(),
                scheduled_at: scheduled_at.clone(),
            })
        })
        .collect();
    let sqs = shared.deps.clients().sqs(shared.deps.base());
    let fifo = queue.ends_with(".fifo");
    let sent = send_all(&sqs, queue, &messages, fifo).await?;
    tracing::info!(
        accounts = messages.len(),
        batches = sent,
        ms = started.elapsed().as_millis() as u64,
        "sent one enforce message per account"
    );
    Ok(json!({
        "schedule_id": schedule_id,
        "accounts": messages.len(),
        "batches": sent,
    }))
}

/// The accounts as audit selects them: the organization (with rekey.toml's
/// OUs and exclusions) for the schedule, `accounts` for a worker; through
/// the function's role, with its rekey.toml and endpoint.
fn selection(shared: &Shared, accounts: Vec<String>, org: bool) -> AuditInput {
    AuditInput {
        accounts,
        org,
        ous: match org {
            true => shared.settings.ous.clone(),
            false => Vec::new(),
        },
        role: Some(shared.settings.role.clone()),
        config: shared.config_path.clone(),
        endpoint_url: shared.deps.aws().endpoint_url.clone(),
        region: shared.deps.aws().region.clone(),
        ..AuditInput::default()
    }
}

/// A JSON request's context: its fields name its options.
fn context(now: OffsetDateTime) -> Context<'static> {
    Context {
        names: field,
        env: &env_var,
        now,
        stdout_is_terminal: false,
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Sends `messages` in batches of ten, [`SENDING`] batches at a time; an
/// entry the queue refuses is sent once more in a batch of its own kind.
/// Returns the number of SendMessageBatch calls.
async fn send_all(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    messages: &[Message],
    fifo: bool,
) -> Result<usize, ScheduleError> {
    let batches: Vec<&[Message]> = messages.chunks(BATCH).collect();
    let outcomes: Vec<Result<(usize, Vec<String>), CallError>> = stream::iter(batches)
        .map(|batch| send_batch(sqs, queue, batch, fifo))
        .buffer_unordered(SENDING)
        .collect()
        .await;
    let mut calls = 0;
    let mut failed: Vec<String> = Vec::new();
    for outcome in outcomes {
        match outcome {
            Ok((n, refused)) => {
                calls += n;
                failed.extend(refused);
            }
            Err(e) => failed.push(error_chain(&e)),
        }
    }
    if let Some(first) = failed.first() {
        return Err(ScheduleError::NotSent {
            failed: failed.len(),
            sent: messages.len().saturating_sub(failed.len()),
            accounts: messages.len(),
            first: first.clone(),
        });
    }
    Ok(calls)
}

/// One batch, its refused entries sent again once: the calls made and
/// what stayed refused (an entry per refused message; a failed call
/// fails the whole batch).
async fn send_batch(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    batch: &[Message],
    fifo: bool,
) -> Result<(usize, Vec<String>), CallError> {
    let mut left: Vec<(usize, &Message)> = batch.iter().enumerate().collect();
    let mut calls = 0;
    let mut why = Vec::new();
    for _attempt in 0..2 {
        if left.is_empty() {
            break;
        }
        let mut send = sqs.send_message_batch().queue_url(queue);
        for (i, m) in &left {
            send = send.entries(entry(*i, m, fifo));
        }
        calls += 1;
        let out = send
            .send()
            .await
            .map_err(|e| CallError::from_sdk("sqs:SendMessageBatch", e))?;
        why = (out.failed().iter())
            .map(|f| format!("{}: {}", f.code(), f.message().unwrap_or_default()))
            .collect();
        let refused: Vec<&str> = out.failed().iter().map(|f| f.id()).collect();
        left.retain(|(i, _)| refused.contains(&format!("m{i}").as_str()));
    }
    Ok((calls, if left.is_empty() { Vec::new() } else { why }))
}

fn entry(i: usize, m: &Message, fifo: bool) -> aws_sdk_sqs::types::SendMessageBatchRequestEntry {
    let body = serde_json::to_string(m).expect("a message serializes");
    let mut e = aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
        .id(format!("m{i}"))
        .message_body(body);
    if fifo {
        // One group per account: accounts run side by side, one account's
        // messages one after the other; a schedule's message once.
        e = e
            .message_group_id(&m.account_id)
            .message_deduplication_id(format!("{}-{}", m.schedule_id, m.account_id));
    }
    e.build().expect("id and body are set")
}

/// The queue's batch: each message's account enforced; the messages that
/// failed are returned as `batchItemFailures`, so only they come back.
pub async fn work(shared: &Shared, event: Value, inv: &Invocation) -> Result<Value, LambdaError> {
    let batch: SqsEvent = serde_json::from_value(event).map_err(|e| LambdaError::BadEvent {
        kind: "SQS",
        reason: e.to_string(),
    })?;
    let failed: Vec<String> = stream::iter(batch.records.iter())
        .map(|record| async move {
            let id = record.message_id.clone().unwrap_or_default();
            match Box::pin(one_message(shared, record, inv)).await {
                Ok(()) => None,
                Err(e) => {
                    tracing::warn!(message_id = %id, error = %error_chain(&e), "message not done: it comes back");
                    Some(id)
                }
            }
        })
        .buffer_unordered(WORKERS)
        .filter_map(|f| async move { f })
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    for id in failed {
        let mut f = BatchItemFailure::default();
        f.item_identifier = id;
        response.batch_item_failures.push(f);
    }
    Ok(serde_json::to_value(response).expect("a response serializes"))
}

/// Messages of one batch carried out at once.
const WORKERS: usize = 4;

/// One message: its account's enforce run, journaled; Ok when every
/// action went well (a notification left owed goes with the next run).
async fn one_message(
    shared: &Shared,
    record: &SqsMessage,
    inv: &Invocation,
) -> Result<(), MessageError> {
    let body = record.body.as_deref().unwrap_or_default();
    let message: Message =
        serde_json::from_str(body).map_err(|e| MessageError::Unreadable(e.to_string()))?;
    if message.schema != MESSAGE_SCHEMA {
        return Err(MessageError::Schema(message.schema));
    }
    let span = tracing::info_span!("account", account_id = %message.account_id);
    async {
        let started = Instant::now();
        let req = request_of(shared, &message, inv)?;
        if req.deadline.is_some_and(|d| shared.clock.now() >= d) {
            return Err(MessageError::Deadline);
        }
        // On the heap: an enforce run's future is deep, and Lambda's worker
        // threads have small stacks.
        let outcome = Box::pin(run_with(&req, &shared.deps, shared.clock.clone())).await?;
        let metrics = metrics_of(&message.account_id, &outcome, started);
        metrics.emit(shared.clock.now());
        let summary = crate::enforce::words::summary(&outcome);
        tracing::info!(summary = %summary.trim_end(), "enforced");
        match outcome.exit_code() {
            0 | 4 => Ok(()),
            _ => Err(MessageError::Unfinished {
                account: message.account_id.clone(),
                summary: summary.trim_end().to_string(),
            }),
        }
    }
    .instrument(span)
    .await
}

/// The message's request, with the function's journal, rekey.toml,
/// notification settings and endpoint, checked: one account, nothing a
/// message must not choose.
fn request_of(
    shared: &Shared,
    m: &Message,
    inv: &Invocation,
) -> Result<EnforceRequest, MessageError> {
    let r = &m.request;
    let refuse = |why: &str| Err(MessageError::Refused(why.to_string()));
    if r.scope.accounts != [m.account_id.clone()] || r.scope.org || !r.scope.profiles.is_empty() {
        return refuse("must select exactly the message's account (scope.accounts = [account_id])");
    }
    if r.journal.is_some() || r.journal_role.is_some() || r.scope.config.is_some() {
        return refuse(
            "names a journal or a rekey.toml: those are the function's own (REKEY_JOURNAL, REKEY_CONFIG)",
        );
    }
    if r.apply_plan.is_some()
        || r.plan_out.is_some()
        || r.scope.out.is_some()
        || r.scope.accounts_file.is_some()
    {
        return refuse("names a file: a message names none");
    }
    let journal = shared
        .settings
        .journal()
        .map_err(|e| MessageError::Refused(e.to_string()))?;
    let scope = AuditInput {
        config: shared.config_path.clone(),
        endpoint_url: shared.deps.aws().endpoint_url.clone(),
        region: shared.deps.aws().region.clone(),
        ..r.scope.clone()
    };
    let input = EnforceInput {
        scope,
        journal: Some(journal.into()),
        run_id: Some(format!("lambda-{}-{}", inv.request_id, m.account_id)),
        notify: shared.settings.notify.clone(),
        ..r.clone()
    };
    let mut req = EnforceRequest::from_input(&input, &context(shared.clock.now()))?;
    let margin = DEADLINE_MARGIN
        + time::Duration::try_from(req.rotate.propagation_timeout).unwrap_or(time::Duration::ZERO);
    req.deadline = Some(inv.deadline - margin);
    Ok(req)
}

/// What one account's run did, as metrics.
fn metrics_of(account: &str, outcome: &EnforceOutcome, started: Instant) -> AccountMetrics {
    let count = |names: &[&str], result: Result_| {
        (outcome.results.iter())
            .filter(|r| names.contains(&r.action) && r.result == result)
            .count() as u64
    };
    AccountMetrics {
        account_id: account.to_string(),
        rotated: count(&["rotate"], Result_::Done),
        retired: count(&["retire", "deactivate", "delete"], Result_::Done),
        failed: (outcome.results.iter())
            .filter(|r| r.result == Result_::Failed)
            .count() as u64,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
    }
}

/// Reads the queue's messages back (tests, the benchmark): the documents
/// a schedule sent.
pub fn parse_message(body: &str) -> Result<Message, MessageError> {
    serde_json::from_str(body).map_err(|e| MessageError::Unreadable(e.to_string()))
}
