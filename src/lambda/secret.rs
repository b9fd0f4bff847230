//! The function as a Secrets Manager rotation function, for a secret that
//! holds an IAM user's key pair (`AccessKeyId`, `SecretAccessKey`). The
//! user is bound by the secret's tag `rekey:user` (`USER`, in the secret's
//! account, or the user's ARN), else by a `[[service]]` entry of rekey.toml
//! whose `to` names the secret.
//!
//! Each of Secrets Manager's four events is one stretch of the library's
//! drive ([`crate::rotation::stepwise`]), journaled in the DynamoDB journal
//! under the user's lease, so a step retried, or a container killed
//! between steps, resumes from what the journal says:
//!
//! | step | does |
//! |---|---|
//! | createSecret | the new key, made once per token and delivered as the token's version, staged AWSPENDING (an open rotation of another token is finished or undone first; a key at the two-key limit that nothing holds and nobody uses is deleted, as any rotation frees a slot) |
//! | setSecret | nothing: an IAM key needs no second system told |
//! | testSecret | GetCallerIdentity with the new key, until IAM accepts it, and its ARN checked |
//! | finishSecret | AWSCURRENT moved to the token's version (AWSPREVIOUS follows), read back, the rotation finished |
//!
//! The old key stays active: enforce's retire stage deactivates it after
//! its grace, as it does every key a rotation replaced.
//!
//! Before every step: the secret's rotation must be enabled and the token
//! one of its versions; a token already AWSCURRENT returns at once, one
//! that is not AWSPENDING fails. What AWSPENDING holds before createSecret
//! (AWS: nothing; the emulator: a copy of AWSCURRENT) is never taken for
//! the new key: only the journal's rotation of this token says one exists.

// One error per step: its size is no cost.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{Invocation, LambdaError, Shared};
use crate::config::ConfigFile;
use crate::destination::{Binding, DestinationSpec};
use crate::error::CallError;
use crate::journal::{Holder, Journal, JournalError, Rotation};
use crate::model::mask_key_id;
use crate::request::journal::{JournalChoice, Use, open as open_journal};
use crate::request::rotate::{DEFAULT_PROPAGATION_TIMEOUT, VERIFY_SUCCESSES, lease_ttl};
use crate::rotation::access::Access;
use crate::rotation::engine::{Engine, NoPrompt, RotateError, Status};
use crate::rotation::service::{ServiceError, service_job};
use crate::rotation::stepwise::{Stepped, Until};
use crate::rotation::{OldKeyAction, RotateOptions};

/// The tag binding a secret to its IAM user.
pub const USER_TAG: &str = "rekey:user";

const CURRENT: &str = "AWSCURRENT";
const PENDING: &str = "AWSPENDING";

/// A step of Secrets Manager's rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationStep {
    Create,
    Set,
    Test,
    Finish,
}

impl RotationStep {
    /// `createSecret` as Secrets Manager writes it, or `create_secret`.
    pub fn parse(text: &str) -> Option<RotationStep> {
        let plain: String = text
            .chars()
            .filter(|c| *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        match plain.as_str() {
            "createsecret" => Some(RotationStep::Create),
            "setsecret" => Some(RotationStep::Set),
            "testsecret" => Some(RotationStep::Test),
            "finishsecret" => Some(RotationStep::Finish),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RotationStep::Create => "createSecret",
            RotationStep::Set => "setSecret",
            RotationStep::Test => "testSecret",
            RotationStep::Finish => "finishSecret",
        }
    }
}

/// The event, as Secrets Manager sends it.
#[derive(Debug, Clone)]
pub struct RotationEvent {
    pub step: RotationStep,
    pub secret_id: String,
    pub token: String,
    /// Present for a function in another account than the secret's.
    pub rotation_token: Option<String>,
}

impl RotationEvent {
    /// The event's fields, checked.
    pub fn parse(event: &Value) -> Result<RotationEvent, SecretError> {
        let text = |k: &str| event.get(k).and_then(Value::as_str).map(str::to_string);
        let step_text = text("Step").unwrap_or_default();
        let step = RotationStep::parse(&step_text).ok_or(SecretError::BadStep(step_text))?;
        let secret_id = text("SecretId").filter(|s| !s.is_empty());
        let token = text("ClientRequestToken").filter(|s| !s.is_empty());
        let (Some(secret_id), Some(token)) = (secret_id, token) else {
            return Err(SecretError::BadEvent(
                "SecretId and ClientRequestToken must be non-empty strings",
            ));
        };
        Ok(RotationEvent {
            step,
            secret_id,
            token,
            rotation_token: text("RotationToken"),
        })
    }
}

/// Why a step failed: Secrets Manager retries it, and marks the rotation
/// failed after its retries. Never a secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("`{0}` is not a rotation step: createSecret, setSecret, testSecret or finishSecret")]
    BadStep(String),
    #[error("a rotation event without its fields: {0}")]
    BadEvent(&'static str),
    #[error("secret {secret}: cannot describe it")]
    Describe {
        secret: String,
        #[source]
        source: CallError,
    },
    #[error(
        "secret {secret}: its rotation is not enabled; rekey rotates a secret only as its rotation function when rotation is on"
    )]
    NotEnabled { secret: String },
    #[error("secret {secret}: version {token} is not one of its versions")]
    NoSuchVersion { secret: String, token: String },
    #[error(
        "secret {secret}: version {token} is not staged AWSPENDING (another rotation may have started since)"
    )]
    NotPending { secret: String, token: String },
    #[error(
        "secret {secret}: bound to no IAM user; tag it {USER_TAG}=USER (or the user's ARN), or name it in a [[service]] entry's `to`"
    )]
    Unbound { secret: String },
    #[error("secret {secret}: tag {USER_TAG} `{value}` is neither a user name nor a user's ARN")]
    BadTag { secret: String, value: String },
    #[error(
        "secret {secret}: tag {USER_TAG} names {tagged}, but a [[service]] entry binds it to {entry}; bind it once"
    )]
    BoundTwice {
        secret: String,
        tagged: String,
        entry: String,
    },
    #[error(
        "secret {secret}: {step} found no rotation of rekey's for version {token}; createSecret has not made its key"
    )]
    NotBegun {
        secret: String,
        step: &'static str,
        token: String,
    },
    #[error("secret {secret}: {step} ended the rotation without finishing it ({status})")]
    Undone {
        secret: String,
        step: &'static str,
        status: String,
    },
    #[error("secret {secret}: cannot read rekey.toml")]
    Config {
        secret: String,
        #[source]
        source: crate::error::InputError,
    },
    #[error(transparent)]
    Settings(#[from] super::SettingsError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Job(#[from] ServiceError),
    #[error(transparent)]
    Rotate(#[from] RotateError),
}

/// What DescribeSecret says of the secret.
struct Described {
    arn: String,
    name: String,
    enabled: bool,
    stages: HashMap<String, Vec<String>>,
    tags: Vec<(String, String)>,
}

/// One step of the secret's rotation.
pub async fn rotate(
    shared: &Shared,
    event: &Value,
    inv: &Invocation,
) -> Result<Value, LambdaError> {
    let e = RotationEvent::parse(event)?;
    let span = tracing::info_span!("secret", secret = %e.secret_id, step = e.step.as_str());
    let _entered = span.enter();
    Ok(step(shared, &e, inv).await?)
}

async fn step(shared: &Shared, e: &RotationEvent, inv: &Invocation) -> Result<Value, SecretError> {
    let said = |what: &str| json!({"step": e.step.as_str(), "secret": e.secret_id, "did": what});
    let d = describe(shared, &e.secret_id).await?;
    if !d.enabled {
        return Err(SecretError::NotEnabled {
            secret: e.secret_id.clone(),
        });
    }
    let Some(stages) = d.stages.get(&e.token) else {
        return Err(SecretError::NoSuchVersion {
            secret: e.secret_id.clone(),
            token: e.token.clone(),
        });
    };
    let current = stages.iter().any(|s| s == CURRENT);
    if current && e.step != RotationStep::Finish {
        return Ok(said("nothing: the version is AWSCURRENT already"));
    }
    if !current && !stages.iter().any(|s| s == PENDING) {
        return Err(SecretError::NotPending {
            secret: e.secret_id.clone(),
            token: e.token.clone(),
        });
    }
    if e.step == RotationStep::Set {
        return Ok(said("nothing: an IAM key is live once made"));
    }
    let (account, user) = bound_user(shared, &d).await?;
    let journal_spec =
        crate::journal::JournalSpec::parse(shared.settings.journal()?).map_err(|err| {
            SecretError::Settings(super::SettingsError::Bad {
                var: "REKEY_JOURNAL",
                value: err.to_string(),
                why: "is not a journal",
            })
        })?;
    let choice = JournalChoice {
        spec: journal_spec,
        role: None,
    };
    let journal = open_journal(
        &choice,
        Use::Write,
        shared.deps.base(),
        shared.clock.clone(),
    )
    .await?;
    let ours = open_rotation(journal.as_ref(), (&account, &user), &d, &e.token).await?;
    let opts = options(inv);
    let engine = Engine {
        journal: journal.as_ref(),
        clock: shared.clock.as_ref(),
        opts: &opts,
        prompt: &NoPrompt,
        holder: Holder::current(opts.run_id.clone()),
    };
    let ctx = StepContext {
        shared,
        engine: &engine,
        event: e,
        described: &d,
    };
    match e.step {
        RotationStep::Create => ctx.create((&account, &user), ours).await,
        RotationStep::Test => {
            ctx.advance(ours, Until::Promote, "proved the new key")
                .await
        }
        RotationStep::Finish if current && matches!(ours, Open::None) => {
            Ok(said("nothing: the version is AWSCURRENT already"))
        }
        RotationStep::Finish => {
            ctx.advance(ours, Until::End, "made the new key current")
                .await
        }
        RotationStep::Set => unreachable!("answered above"),
    }
}

/// The options of a rotation function's rotation: the old key kept (for
/// enforce's retire stage), a slot freed at the two-key limit when nothing
/// holds or uses the other key.
fn options(inv: &Invocation) -> RotateOptions {
    let propagation = std::time::Duration::from_secs(
        DEFAULT_PROPAGATION_TIMEOUT
            .trim_end_matches('s')
            .parse()
            .unwrap_or(60),
    );
    RotateOptions {
        old_key: OldKeyAction::Keep,
        delete_other_active: true,
        max_age_days: None,
        propagation_timeout: propagation,
        verify_successes: VERIFY_SUCCESSES,
        lease_ttl: lease_ttl(propagation),
        run_id: format!("lambda-{}", inv.request_id),
        as_of: None,
    }
}

struct StepContext<'a> {
    shared: &'a Shared,
    engine: &'a Engine<'a>,
    event: &'a RotationEvent,
    described: &'a Described,
}

impl StepContext<'_> {
    fn said(&self, what: String) -> Value {
        json!({"step": self.event.step.as_str(), "secret": self.event.secret_id, "did": what})
    }

    /// createSecret: this token's rotation carried on to its staged
    /// delivery, or (none, or it could not go on) a new one begun, after
    /// any other open rotation of the user was finished or undone.
    async fn create(
        &self,
        (account, user): (&str, &str),
        ours: Open,
    ) -> Result<Value, SecretError> {
        match ours {
            Open::Ours(r) => {
                let stepped =
                    Box::pin(self.engine.advance(&r, &self.shared.deps, Until::Verify)).await?;
                if let Stepped::Open { id } = stepped {
                    return Ok(self.said(format!("the new key of rotation {id} is staged")));
                }
            }
            Open::Other(r) => {
                // Secrets Manager gave up that token (one version is
                // AWSPENDING at a time): it is finished if its key went
                // current, else undone; a live run's lease refuses.
                tracing::info!(rotation = %r.id, "finishing or undoing the user's other open rotation first");
                Box::pin(self.engine.advance(&r, &self.shared.deps, Until::End)).await?;
            }
            Open::None => {}
        }
        let job = self.job(account, user).await?;
        match Box::pin(self.engine.begin_until(&job, Until::Verify)).await? {
            Stepped::Open { id } => {
                let r = self.engine.journal.get(id).await?;
                let new = r.new_key_id.as_deref().map(mask_key_id).unwrap_or_default();
                tracing::info!(rotation = %id, new_key = %new, "new key staged");
                Ok(self.said(format!("made key {new} and staged it (rotation {id})")))
            }
            Stepped::Ended(report) => Err(self.undone(report.status)),
        }
    }

    /// testSecret and finishSecret: this token's rotation driven on.
    async fn advance(&self, ours: Open, until: Until, did: &str) -> Result<Value, SecretError> {
        let Open::Ours(r) = ours else {
            return Err(SecretError::NotBegun {
                secret: self.event.secret_id.clone(),
                step: self.event.step.as_str(),
                token: self.event.token.clone(),
            });
        };
        match Box::pin(self.engine.advance(&r, &self.shared.deps, until)).await? {
            Stepped::Open { id } => Ok(self.said(format!("{did} (rotation {id})"))),
            Stepped::Ended(report) if report.status == Status::Rotated => Ok(self.said(format!(
                "{did}; rotation {} finished, the old key left for enforce to retire",
                r.id
            ))),
            Stepped::Ended(report) => Err(self.undone(report.status)),
        }
    }

    fn undone(&self, status: Status) -> SecretError {
        SecretError::Undone {
            secret: self.event.secret_id.clone(),
            step: self.event.step.as_str(),
            status: serde_json::to_value(status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        }
    }

    /// The user's job, delivering to this token's version of the secret.
    async fn job(&self, account: &str, user: &str) -> Result<crate::rotation::Job, SecretError> {
        let deps = &self.shared.deps;
        let me = crate::aws::caller_identity(&deps.clients().account(deps.base()).sts)
            .await
            .map_err(|source| ServiceError::Call {
                doing: "asking STS who the function is".into(),
                source,
            })?;
        let access = if me.account_id == account {
            Access::Caller
        } else {
            Access::Role {
                role: self.shared.settings.role.clone(),
                external_id: None,
            }
        };
        let to = [Binding::SecretsManager(self.described.arn.clone())];
        let job = service_job(deps, account, user, access, &to, None).await?;
        let mut spec = job.spec.clone();
        for d in &mut spec.destinations {
            if let DestinationSpec::SecretsManager { rotation_token, .. } = d {
                *rotation_token = Some(self.event.token.clone());
            }
        }
        crate::rotation::Job::open(spec, deps)
            .await
            .map_err(|source| {
                SecretError::Job(ServiceError::Open {
                    user: user.to_string(),
                    source,
                })
            })
    }
}

/// The user's open rotation, if any: this token's (delivering into this
/// secret's version `token`), or another.
enum Open {
    None,
    Ours(Box<Rotation>),
    Other(Box<Rotation>),
}

async fn open_rotation(
    journal: &dyn Journal,
    (account, user): (&str, &str),
    d: &Described,
    token: &str,
) -> Result<Open, SecretError> {
    let rotations = journal.of_user(account, user).await?;
    let Some(open) = rotations.into_iter().rev().find(|r| !r.is_finished()) else {
        return Ok(Open::None);
    };
    let ours = open.destinations.iter().any(|dest| {
        matches!(dest, DestinationSpec::SecretsManager { secret_id, rotation_token, .. }
            if rotation_token.as_deref() == Some(token) && (secret_id == &d.arn || secret_id == &d.name))
    });
    Ok(if ours {
        Open::Ours(Box::new(open))
    } else {
        Open::Other(Box::new(open))
    })
}

async fn describe(shared: &Shared, secret_id: &str) -> Result<Described, SecretError> {
    let mut config = shared.deps.base().clone();
    if let Some(region) = crate::destination::secrets_manager::region_of_arn(secret_id) {
        config = config
            .into_builder()
            .region(aws_config::Region::new(region.to_string()))
            .build();
    }
    let client = shared.deps.clients().secrets_manager(&config);
    let out = client
        .describe_secret()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| SecretError::Describe {
            secret: secret_id.to_string(),
            source: CallError::from_sdk("secretsmanager:DescribeSecret", e),
        })?;
    Ok(Described {
        arn: out.arn().unwrap_or(secret_id).to_string(),
        name: out.name().unwrap_or(secret_id).to_string(),
        enabled: out.rotation_enabled() == Some(true),
        stages: out.version_ids_to_stages().cloned().unwrap_or_default(),
        tags: (out.tags().iter())
            .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
            .collect(),
    })
}

/// The (account, user name) the secret is bound to: its tag, else a
/// `[[service]]` entry naming it.
async fn bound_user(shared: &Shared, d: &Described) -> Result<(String, String), SecretError> {
    let secret_account = d.arn.split(':').nth(4).unwrap_or_default().to_string();
    let tagged = match d.tags.iter().find(|(k, _)| k == USER_TAG) {
        Some((_, value)) => {
            Some(
                user_of_tag(value, &secret_account).ok_or_else(|| SecretError::BadTag {
                    secret: d.name.clone(),
                    value: value.clone(),
                })?,
            )
        }
        None => None,
    };
    let entry = match &shared.config_path {
        Some(path) => {
            let file = ConfigFile::load(path).map_err(|source| SecretError::Config {
                secret: d.name.clone(),
                source,
            })?;
            file.services
                .iter()
                .find(|s| {
                    s.to.iter().any(|to| {
                        let id = to.strip_prefix("secretsmanager:").unwrap_or_default();
                        id == d.arn || id == d.name
                    })
                })
                .map(|s| (s.account.clone(), s.user.clone()))
        }
        None => None,
    };
    match (tagged, entry) {
        (Some(t), Some(e)) if t != e => Err(SecretError::BoundTwice {
            secret: d.name.clone(),
            tagged: format!("{} in {}", t.1, t.0),
            entry: format!("{} in {}", e.1, e.0),
        }),
        (Some(t), _) => Ok(t),
        (None, Some(e)) => Ok(e),
        (None, None) => Err(SecretError::Unbound {
            secret: d.name.clone(),
        }),
    }
}

/// `USER` (in `secret_account`) or `arn:PARTITION:iam::ACCOUNT:user/PATH/USER`. Pure.
fn user_of_tag(value: &str, secret_account: &str) -> Option<(String, String)> {
    if let Some(rest) = value.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        let [_, service, _, account, resource] = parts[..] else {
            return None;
        };
        let user = resource.strip_prefix("user/")?.rsplit('/').next()?;
        let ok = service == "iam" && crate::model::is_account_id(account) && !user.is_empty();
        return ok.then(|| (account.to_string(), user.to_string()));
    }
    let ok = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    (ok && !secret_account.is_empty()).then(|| (secret_account.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_are_read_in_camel_and_snake_case() {
        for (text, step) in [
            ("createSecret", RotationStep::Create),
            ("create_secret", RotationStep::Create),
            ("setSecret", RotationStep::Set),
            ("test_secret", RotationStep::Test),
            ("finishSecret", RotationStep::Finish),
            ("FINISH_SECRET", RotationStep::Finish),
        ] {
            assert_eq!(RotationStep::parse(text), Some(step), "{text}");
        }
        assert_eq!(RotationStep::parse("deleteSecret"), None);
        let e = RotationEvent::parse(
            &json!({"Step": "rotate", "SecretId": "s", "ClientRequestToken": "t"}),
        );
        assert!(
            e.unwrap_err()
                .to_string()
                .contains("`rotate` is not a rotation step")
        );
        let e = RotationEvent::parse(
            &json!({"Step": "createSecret", "SecretId": "", "ClientRequestToken": "t"}),
        );
        assert!(matches!(e, Err(SecretError::BadEvent(_))));
    }

    #[test]
    fn the_tag_names_a_user_of_the_secret_s_account_or_by_its_arn() {
        let acct = "111111111111";
        assert_eq!(
            user_of_tag("ci-bot", acct),
            Some((acct.into(), "ci-bot".into()))
        );
        assert_eq!(
            user_of_tag("arn:aws:iam::222222222222:user/team/ci-bot", acct),
            Some(("222222222222".into(), "ci-bot".into()))
        );
        for bad in [
            "",
            "ci bot",
            "arn:aws:iam::2222:user/x",
            "arn:aws:iam::222222222222:role/x",
            "arn:aws:s3:::b",
        ] {
            assert_eq!(user_of_tag(bad, acct), None, "{bad}");
        }
    }
}
