//! rekey inside AWS Lambda (issue 20): one binary (`rekey-lambda`, feature
//! `lambda`) serves every function, telling the events apart by their
//! shape ([`Kind::of`]). This module holds the handlers; the binary only
//! wires them to the Lambda Runtime API.
//!
//! | event | handler | does |
//! |---|---|---|
//! | EventBridge scheduled | [`fanout::schedule`] | lists the organization, sends one SQS message per account |
//! | SQS batch | [`fanout::work`] | `enforce --apply` for each message's account; failures as `batchItemFailures` |
//! | Secrets Manager rotation | [`secret::rotate`] | one step of a secret's rotation for its IAM user |
//! | AWS Config periodic | [`config_rule::evaluate`] | one evaluation per IAM user (PutEvaluations) |
//!
//! Everything live is built once per container ([`Shared::new`]) and lent
//! to each invocation: the clients ([`Deps`]), the settings read from the
//! environment ([`Settings`]), rekey.toml fetched once.

// One error per invocation, returned once: its size is no cost.
#![allow(clippy::result_large_err)]

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use time::OffsetDateTime;

use crate::aws::{AwsOptions, Deps, load_config};
use crate::clock::Clock;

pub mod config_rule;
pub mod fanout;
pub mod logs;
pub mod metrics;
pub mod secret;
pub mod settings;

pub use settings::{ConfigSource, Settings, SettingsError};

/// What the runtime says of one invocation, as plain data (the binary
/// fills it from `lambda_runtime::Context`; tests write it).
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    /// When Lambda stops the invocation.
    pub deadline: OffsetDateTime,
    /// The function's ARN, for the Config rule's and the logs' sake.
    pub function_arn: Option<String>,
}

impl Invocation {
    /// The runtime's context of this invocation.
    pub fn of(ctx: &lambda_runtime::Context) -> Invocation {
        let millis = i128::from(ctx.deadline) * 1_000_000;
        Invocation {
            request_id: ctx.request_id.clone(),
            deadline: OffsetDateTime::from_unix_timestamp_nanos(millis)
                .unwrap_or_else(|_| OffsetDateTime::now_utc()),
            function_arn: Some(ctx.invoked_function_arn.clone()).filter(|a| !a.is_empty()),
        }
    }
}

/// Which handler an event is for, told by its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// EventBridge (`"detail-type": "Scheduled Event"`, or any event with
    /// `source` and `detail-type`: a rule's custom input too).
    Scheduled,
    /// `{"Records": [{"eventSource": "aws:sqs", …}]}`.
    Queue,
    /// `{"Step", "SecretId", "ClientRequestToken"}`.
    SecretRotation,
    /// `{"invokingEvent", "resultToken", "configRuleName", …}`.
    ConfigRule,
}

impl Kind {
    /// The handler `event` is for; an event of no known shape says which
    /// it has.
    pub fn of(event: &Value) -> Result<Kind, LambdaError> {
        let has = |k: &str| event.get(k).is_some();
        if let Some(records) = event.get("Records").and_then(Value::as_array) {
            let sqs = records
                .iter()
                .all(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs"));
            if sqs {
                return Ok(Kind::Queue);
            }
        }
        if has("Step") && has("SecretId") && has("ClientRequestToken") {
            return Ok(Kind::SecretRotation);
        }
        if has("invokingEvent") && has("resultToken") {
            return Ok(Kind::ConfigRule);
        }
        if has("detail-type") && has("source") {
            return Ok(Kind::Scheduled);
        }
        let keys: Vec<&str> = match event.as_object() {
            Some(o) => o.keys().map(String::as_str).collect(),
            None => Vec::new(),
        };
        Err(LambdaError::UnknownEvent {
            keys: keys.join(", "),
        })
    }
}

/// Why an invocation failed as a whole (a partial SQS failure is a
/// result, not this). Never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    #[error(
        "an event of no shape rekey-lambda knows (its fields: {keys}); it takes an EventBridge scheduled event, an SQS batch, a Secrets Manager rotation step or an AWS Config rule's event"
    )]
    UnknownEvent { keys: String },
    #[error("a {kind} event that cannot be read: {reason}")]
    BadEvent { kind: &'static str, reason: String },
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Schedule(#[from] fanout::ScheduleError),
    #[error(transparent)]
    Secret(#[from] secret::SecretError),
    #[error(transparent)]
    ConfigRule(#[from] config_rule::ConfigRuleError),
}

/// What every invocation of one container shares: built once.
pub struct Shared {
    pub settings: Settings,
    pub deps: Deps,
    pub clock: Arc<dyn Clock>,
    /// rekey.toml as a local file (fetched from S3 or SSM at start), if
    /// `REKEY_CONFIG` names one.
    pub config_path: Option<PathBuf>,
}

impl Shared {
    /// The clients, from the function's own credentials; rekey.toml read
    /// (and fetched, from S3 or SSM) and checked once.
    pub async fn new(settings: Settings, clock: Arc<dyn Clock>) -> Result<Shared, LambdaError> {
        let aws = AwsOptions::default();
        let deps = Deps::new(load_config(None, &aws).await, aws, None);
        let config_path = match &settings.config {
            Some(source) => Some(settings::fetch_config(source, &deps).await?),
            None => None,
        };
        Ok(Shared {
            settings,
            deps,
            clock,
            config_path,
        })
    }
}

/// Handles one event: the response Lambda returns to its caller (SQS's
/// `batchItemFailures`, a rotation step's nothing, …).
pub async fn handle(shared: &Shared, event: Value, inv: &Invocation) -> Result<Value, LambdaError> {
    // Each handler's future on the heap: they are deep (an enforce run, a
    // rotation's drive), and Lambda's worker threads have small stacks.
    match Kind::of(&event)? {
        Kind::Scheduled => Box::pin(fanout::schedule(shared, &event, inv)).await,
        Kind::Queue => Box::pin(fanout::work(shared, event, inv)).await,
        Kind::SecretRotation => Box::pin(secret::rotate(shared, &event, inv)).await,
        Kind::ConfigRule => Box::pin(config_rule::evaluate(shared, event, inv)).await,
    }
}

/// Tells Lambda why the container could not start, and logs it:
/// `POST /runtime/init/error`, as the Runtime API asks of a runtime that
/// fails before its first `/next` (lambda_runtime 1.x does it only under
/// SnapStart). Without it, Lambda shows only `Runtime.ExitError`.
pub async fn report_init_error(e: &LambdaError) {
    let message = crate::error::error_chain(e);
    tracing::error!(error = %message, "cannot start");
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        return;
    };
    let body = serde_json::json!({ "errorType": "Runtime.InitError", "errorMessage": message });
    let sent = reqwest::Client::new()
        .post(format!("http://{api}/2018-06-01/runtime/init/error"))
        .header("Lambda-Runtime-Function-Error-Type", "Runtime.InitError")
        .json(&body)
        .send()
        .await;
    if let Err(e) = sent {
        tracing::error!(error = %e, "the init error could not be reported");
    }
}
