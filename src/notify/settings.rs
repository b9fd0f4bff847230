//! `[notify]` and `[[owner]]` of rekey.toml, and the flags that win over
//! them, checked before anything runs: a bad value is named where it was
//! written, and nothing is sent.
//!
//! ```toml
//! [notify]
//! sns_topic = "arn:aws:sns:us-east-1:111111111111:rekey"
//! email_from = "rekey@example.com"      # SES v2, to each key's owner
//! webhook = "env:REKEY_WEBHOOK_URL"     # or "secretsmanager:rekey/webhook"
//! owner_tags = ["owner", "email"]       # the user tags read, in order
//! default_email = "security@example.com"
//! templates = "notify-templates"        # relative to this file
//! role = "arn:aws:iam::222222222222:role/RekeyNotify"  # SNS/SES/the secret elsewhere
//! region = "eu-west-1"
//! renotify_after = "7d"                 # default: never
//! lookback = "30d"                      # stages older than this are not told
//!
//! [[owner]]
//! users = "svc-*"                       # glob on the user name or path + name
//! account = "111111111111"              # optional
//! email = "platform@example.com"
//! ```
//!
//! The webhook's URL is a secret: it is read from the environment or from
//! Secrets Manager, never written in the file or on the command line, and
//! never shown.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::Duration;

use super::owner::{DEFAULT_OWNER_TAGS, OwnerEntry, Owners, single_address};
use super::render::{TemplateError, Templates};
use super::stage::{DEFAULT_LOOKBACK_DAYS, Resend};
use crate::config::Days;
use crate::error::{InputError, Origin};

/// `[notify]` as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {
    pub sns_topic: Option<String>,
    pub email_from: Option<String>,
    pub webhook: Option<String>,
    pub owner_tags: Option<Vec<String>>,
    pub default_email: Option<String>,
    pub templates: Option<PathBuf>,
    pub role: Option<String>,
    pub region: Option<String>,
    pub renotify_after: Option<Days>,
    pub lookback: Option<Days>,
}

/// The flags (or a JSON request's fields) that win over `[notify]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyInput {
    pub notify_sns: Option<String>,
    pub notify_email_from: Option<String>,
    /// `env:VAR` or `secretsmanager:NAME`.
    pub notify_webhook: Option<String>,
    /// `7d`.
    pub renotify_after: Option<String>,
    /// Send nothing this run (what is owed stays owed).
    pub no_notify: bool,
}

/// Where the webhook's URL is read.
#[derive(Debug, Clone)]
pub enum WebhookSource {
    /// An environment variable, read when the request is made.
    Env {
        var: String,
        url: secrecy::SecretString,
    },
    /// A Secrets Manager secret (its name or ARN), read when sending.
    Secret { name: String },
}

impl WebhookSource {
    /// Where it comes from, for messages (never the URL).
    pub fn describe(&self) -> String {
        match self {
            WebhookSource::Env { var, .. } => format!("env:{var}"),
            WebhookSource::Secret { name } => format!("secretsmanager:{name}"),
        }
    }
}

/// Retries of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub attempts: u32,
    /// The first wait; each next one doubles.
    pub backoff: std::time::Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 3,
            backoff: std::time::Duration::from_millis(200),
        }
    }
}

/// Notifications, decided: which channels, who owns what, the templates.
#[derive(Debug, Clone)]
pub struct NotifyRequest {
    pub sns_topic: Option<String>,
    pub email_from: Option<String>,
    pub webhook: Option<WebhookSource>,
    pub owners: Owners,
    pub templates: Arc<Templates>,
    /// A role assumed (from the run's credentials) for SNS, SES and the
    /// webhook's secret.
    pub role: Option<String>,
    pub region: Option<String>,
    pub resend: Resend,
    pub retry: Retry,
}

/// A notification setting that cannot be used. Nothing was sent.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("{origin}: `{value}` is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)")]
    BadTopic { origin: Origin, value: String },
    #[error("{origin}: `{value}` is not one email address")]
    BadAddress { origin: Origin, value: String },
    #[error(
        "{origin}: a webhook's URL is a secret and is never written in a file or on a command line; give env:VARIABLE (an environment variable holding it) or secretsmanager:NAME (a secret holding it)"
    )]
    WebhookUrlGiven { origin: Origin },
    #[error("{origin}: `{value}` is not env:VARIABLE or secretsmanager:NAME")]
    BadWebhook { origin: Origin, value: String },
    #[error("{origin}: the environment variable {var} is not set")]
    WebhookUnset { origin: Origin, var: String },
    #[error(
        "{origin}: the environment variable {var} does not hold a webhook URL (https://…, or http:// on this machine only)"
    )]
    WebhookNotUrl { origin: Origin, var: String },
    #[error("{origin}: `{value}` is not an IAM role ARN")]
    BadRole { origin: Origin, value: String },
    #[error("{origin}: `{value}` is not a region")]
    BadRegion { origin: Origin, value: String },
    #[error("{origin}: name at least one tag key")]
    NoOwnerTags { origin: Origin },
    #[error("{}: {source}", path.display())]
    BadOwner {
        path: PathBuf,
        #[source]
        source: super::owner::BadOwnerEntry,
    },
    #[error(transparent)]
    Template(#[from] TemplateError),
}

/// Whether `url` may be a webhook: https, or http to this machine.
pub fn is_webhook_url(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    let local = matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    u.scheme() == "https" || (u.scheme() == "http" && local)
}

/// What decides a request: the file's settings and owners (and its path,
/// for names and relative paths), the flags and how they are named.
pub struct Sources<'a> {
    pub file: Option<(&'a Path, &'a NotifySettings, &'a [OwnerEntry])>,
    pub input: &'a NotifyInput,
    pub name: &'a dyn Fn(crate::request::Setting) -> Origin,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl NotifyRequest {
    /// The request, or None when no channel is configured (or
    /// `--no-notify`). Every value is checked, and the templates loaded.
    pub fn decide(src: &Sources) -> Result<Option<NotifyRequest>, NotifyError> {
        use crate::request::Setting;
        let empty = NotifySettings::default();
        let (path, set, owners) = match src.file {
            Some((p, s, o)) => (Some(p), s, o),
            None => (None, &empty, &[][..]),
        };
        let at = |key: &str| match path {
            Some(p) => Origin::file(p, format!("[notify] {key}")),
            None => Origin::Flag(key.into()),
        };
        // The flag when given, else the file's value.
        let pick = |flag: &Option<String>, setting, file: &Option<String>, key: &str| match flag {
            Some(v) => Some((v.clone(), (src.name)(setting))),
            None => file.clone().map(|v| (v, at(key))),
        };
        let input = src.input;
        let sns = pick(
            &input.notify_sns,
            Setting::NotifySns,
            &set.sns_topic,
            "sns_topic",
        );
        let from = pick(
            &input.notify_email_from,
            Setting::NotifyEmailFrom,
            &set.email_from,
            "email_from",
        );
        let hook = pick(
            &input.notify_webhook,
            Setting::NotifyWebhook,
            &set.webhook,
            "webhook",
        );
        if let Some((v, origin)) = &sns {
            check_topic(v, origin)?;
        }
        if let Some((v, origin)) = &from
            && single_address(v).is_none()
        {
            return Err(NotifyError::BadAddress {
                origin: origin.clone(),
                value: v.clone(),
            });
        }
        let webhook = match &hook {
            Some((v, origin)) => Some(webhook_source(v, origin, src.env)?),
            None => None,
        };
        if let Some(d) = &set.default_email
            && single_address(d).is_none()
        {
            return Err(NotifyError::BadAddress {
                origin: at("default_email"),
                value: d.clone(),
            });
        }
        if let Some(r) = &set.role
            && !(r.starts_with("arn:") && r.contains(":iam::") && r.contains(":role/"))
        {
            return Err(NotifyError::BadRole {
                origin: at("role"),
                value: r.clone(),
            });
        }
        if let Some(r) = &set.region
            && !is_region(r)
        {
            return Err(NotifyError::BadRegion {
                origin: at("region"),
                value: r.clone(),
            });
        }
        let tags = match &set.owner_tags {
            Some(t) if t.is_empty() || t.iter().any(|k| k.trim().is_empty()) => {
                return Err(NotifyError::NoOwnerTags {
                    origin: at("owner_tags"),
                });
            }
            Some(t) => t.clone(),
            None => DEFAULT_OWNER_TAGS.iter().map(|s| s.to_string()).collect(),
        };
        let owners = Owners::new(tags, owners, set.default_email.clone()).map_err(|source| {
            NotifyError::BadOwner {
                path: path.map(Path::to_path_buf).unwrap_or_default(),
                source,
            }
        })?;
        let renotify_after = match (&input.renotify_after, &set.renotify_after) {
            (Some(v), _) => Some(crate::policy::parse_days(
                &(src.name)(Setting::RenotifyAfter),
                v,
            )?),
            (None, Some(d)) => Some(d.days_from(&at("renotify_after"))?),
            (None, None) => None,
        };
        let lookback = match &set.lookback {
            Some(d) => d.days_from(&at("lookback"))?,
            None => DEFAULT_LOOKBACK_DAYS,
        };
        let dir = set
            .templates
            .as_ref()
            .map(|d| match path.and_then(Path::parent) {
                Some(base) if d.is_relative() => base.join(d),
                _ => d.clone(),
            });
        let templates = Templates::load(dir.as_deref())?;
        if input.no_notify || (sns.is_none() && from.is_none() && webhook.is_none()) {
            return Ok(None);
        }
        Ok(Some(NotifyRequest {
            sns_topic: sns.map(|(v, _)| v),
            email_from: from.map(|(v, _)| v.trim().to_string()),
            webhook,
            owners,
            templates: Arc::new(templates),
            role: set.role.clone(),
            region: set.region.clone(),
            resend: Resend {
                lookback: Duration::days(lookback),
                renotify_after: renotify_after.map(Duration::days),
            },
            retry: Retry::default(),
        }))
    }
}

fn check_topic(v: &str, origin: &Origin) -> Result<(), NotifyError> {
    let parts: Vec<&str> = v.split(':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "sns"
        && is_region(parts[3])
        && crate::model::is_account_id(parts[4])
        && !parts[5].is_empty();
    match ok {
        true => Ok(()),
        false => Err(NotifyError::BadTopic {
            origin: origin.clone(),
            value: v.to_string(),
        }),
    }
}

fn is_region(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 32
        && r.split('-').count() >= 3
        && r.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `env:VAR` (read now) or `secretsmanager:NAME`; a URL is refused
/// without being repeated.
fn webhook_source(
    v: &str,
    origin: &Origin,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<WebhookSource, NotifyError> {
    if v.contains("://") {
        return Err(NotifyError::WebhookUrlGiven {
            origin: origin.clone(),
        });
    }
    if let Some(var) = v.strip_prefix("env:").filter(|s| !s.is_empty()) {
        let url = env(var).ok_or_else(|| NotifyError::WebhookUnset {
            origin: origin.clone(),
            var: var.to_string(),
        })?;
        if !is_webhook_url(url.trim()) {
            return Err(NotifyError::WebhookNotUrl {
                origin: origin.clone(),
                var: var.to_string(),
            });
        }
        return Ok(WebhookSource::Env {
            var: var.to_string(),
            url: secrecy::SecretString::from(url.trim().to_string()),
        });
    }
    if let Some(name) = v.strip_prefix("secretsmanager:").filter(|s| !s.is_empty()) {
        return Ok(WebhookSource::Secret {
            name: name.to_string(),
        });
    }
    Err(NotifyError::BadWebhook {
        origin: origin.clone(),
        value: v.to_string(),
    })
}
