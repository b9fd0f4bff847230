//! The three channels, each message retried with backoff: SNS Publish,
//! SES v2 SendEmail (to one address), and an HTTP POST to the webhook.
//!
//! What a failure says never holds the webhook's URL (reqwest's errors
//! name it: they are stripped of it) nor any secret.

use secrecy::{ExposeSecret, SecretString};

use super::render::Email;
use super::settings::{NotifyRequest, Retry, WebhookSource, is_webhook_url};
use crate::aws::{Deps, assume_role, with_credentials};
use crate::error::error_chain;

/// One message, ready to go.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "channel", rename_all = "snake_case")]
pub enum Message {
    Sns {
        subject: String,
        /// The `rekey.notification/1` JSON.
        message: serde_json::Value,
        /// Name → value, all of type String.
        attributes: Vec<(String, String)>,
    },
    Email {
        to: String,
        #[serde(flatten)]
        email: Email,
    },
    /// Slack's `text` and `blocks`.
    Webhook { body: serde_json::Value },
}

/// The channels as reached for this run.
pub struct Outbox {
    sns: Option<(aws_sdk_sns::Client, String)>,
    ses: Option<(aws_sdk_sesv2::Client, String)>,
    /// The URL, or why there is none this run.
    webhook: Option<Result<SecretString, String>>,
    http: reqwest::Client,
    retry: Retry,
}

impl Outbox {
    /// Reaches the channels `req` names: with its role (assumed from the
    /// run's credentials) and region if it has them; the webhook's URL
    /// read from its secret. What cannot be reached fails its messages,
    /// not the run.
    pub async fn open(req: &NotifyRequest, deps: &Deps) -> Result<Outbox, String> {
        let mut config = deps.base().clone();
        if let Some(region) = &req.region {
            config = (config.into_builder())
                .region(aws_config::Region::new(region.clone()))
                .build();
        }
        let clients = deps.clients();
        if let Some(role) = &req.role {
            let sts = clients.account(&config).sts;
            let session = assume_role(&sts, role, None).await.map_err(|e| {
                format!(
                    "assuming the notifications' role {role}: {}",
                    error_chain(&e)
                )
            })?;
            config = with_credentials(&config, session);
        }
        let webhook = match &req.webhook {
            None => None,
            Some(WebhookSource::Env { url, .. }) => Some(Ok(url.clone())),
            Some(WebhookSource::Secret { name }) => {
                Some(webhook_from_secret(&clients.secrets_manager(&config), name).await)
            }
        };
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot make an HTTP client: {}", e.without_url()))?;
        Ok(Outbox {
            sns: req.sns_topic.clone().map(|t| (clients.sns(&config), t)),
            ses: req.email_from.clone().map(|f| (clients.sesv2(&config), f)),
            webhook,
            http,
            retry: req.retry,
        })
    }

    /// Sends `m`, retried `retry.attempts` times with doubling waits; the
    /// last failure's words.
    pub async fn send(&self, m: &Message) -> Result<(), String> {
        let mut wait = self.retry.backoff;
        let mut last = String::new();
        for attempt in 1..=self.retry.attempts.max(1) {
            match self.send_once(m).await {
                Ok(()) => return Ok(()),
                Err(Failure::Final(why)) => return Err(why),
                Err(Failure::Again(why)) => last = why,
            }
            if attempt < self.retry.attempts {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
        Err(format!(
            "{last} (tried {} times)",
            self.retry.attempts.max(1)
        ))
    }

    async fn send_once(&self, m: &Message) -> Result<(), Failure> {
        match m {
            Message::Sns {
                subject,
                message,
                attributes,
            } => {
                let (client, topic) = self
                    .sns
                    .as_ref()
                    .ok_or(Failure::Final("no SNS topic".into()))?;
                let mut call = client
                    .publish()
                    .topic_arn(topic)
                    .subject(subject)
                    .message(message.to_string());
                for (name, value) in attributes {
                    let attr = aws_sdk_sns::types::MessageAttributeValue::builder()
                        .data_type("String")
                        .string_value(value)
                        .build()
                        .map_err(|e| Failure::Final(e.to_string()))?;
                    call = call.message_attributes(name, attr);
                }
                call.send().await.map(|_| ()).map_err(|e| {
                    Failure::Again(format!("SNS Publish to {topic}: {}", error_chain(&e)))
                })
            }
            Message::Email { to, email } => {
                let (client, from) = self
                    .ses
                    .as_ref()
                    .ok_or(Failure::Final("no sender".into()))?;
                send_email(client, from, to, email)
                    .await
                    .map_err(Failure::Again)
            }
            Message::Webhook { body } => {
                let url = match &self.webhook {
                    None => return Err(Failure::Final("no webhook".into())),
                    Some(Err(why)) => return Err(Failure::Final(why.clone())),
                    Some(Ok(url)) => url,
                };
                let answer = self
                    .http
                    .post(url.expose_secret())
                    .json(body)
                    .send()
                    .await
                    .map_err(|e| Failure::Again(format!("the webhook: {}", reqwest_words(e))))?;
                let status = answer.status();
                match status.is_success() {
                    true => Ok(()),
                    false => Err(Failure::Again(format!("the webhook answered {status}"))),
                }
            }
        }
    }
}

/// Why a message did not go: worth trying again, or not.
enum Failure {
    Again(String),
    Final(String),
}

/// reqwest's error and its causes, without the URL.
fn reqwest_words(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut words = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        words.push_str(": ");
        words.push_str(&s.to_string());
        source = s.source();
    }
    words
}

async fn webhook_from_secret(
    sm: &aws_sdk_secretsmanager::Client,
    name: &str,
) -> Result<SecretString, String> {
    let out = sm
        .get_secret_value()
        .secret_id(name)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .map_err(|e| format!("reading the webhook's secret {name}: {}", error_chain(&e)))?;
    let url = out.secret_string().unwrap_or_default().trim().to_string();
    match is_webhook_url(&url) {
        true => Ok(SecretString::from(url)),
        false => Err(format!(
            "the secret {name} does not hold a webhook URL (https://…, or http:// on this machine only)"
        )),
    }
}

async fn send_email(
    client: &aws_sdk_sesv2::Client,
    from: &str,
    to: &str,
    email: &Email,
) -> Result<(), String> {
    use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent};
    let content = |data: &str| {
        Content::builder()
            .data(data)
            .charset("UTF-8")
            .build()
            .map_err(|e| e.to_string())
    };
    let message = aws_sdk_sesv2::types::Message::builder()
        .subject(content(&email.subject)?)
        .body(
            Body::builder()
                .text(content(&email.text)?)
                .html(content(&email.html)?)
                .build(),
        )
        .build();
    client
        .send_email()
        .from_email_address(from)
        .destination(Destination::builder().to_addresses(to).build())
        .content(EmailContent::builder().simple(message).build())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("SES SendEmail to {to}: {}", error_chain(&e)))
}
