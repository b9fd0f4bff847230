//! Reading back what a notification sent, from the emulator: SNS messages
//! through an SQS queue subscribed to the topic, SES mails through the
//! harness's `/_rekey/ses_sent`. The webhook stand-in is in `webhook.rs`.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_sqs::types::QueueAttributeName;
use serde::Deserialize;
use serde_json::{Value, json};

use super::moto;

/// An SNS topic `name` and an SQS queue `name` subscribed to it (protocol
/// `sqs`, not raw: message attributes arrive in the SNS envelope); returns
/// `(topic ARN, queue URL)`.
pub async fn topic_with_queue(config: &SdkConfig, name: &str) -> (String, String) {
    let sns = aws_sdk_sns::Client::new(config);
    let sqs = aws_sdk_sqs::Client::new(config);
    let topic_arn = sns
        .create_topic()
        .name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create topic {name}: {e:?}"))
        .topic_arn()
        .expect("topic ARN")
        .to_string();
    let queue_url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create queue {name}: {e:?}"))
        .queue_url()
        .expect("queue URL")
        .to_string();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("get the queue's ARN")
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .expect("QueueArn")
        .clone();
    // moto delivers without it; AWS drops what SNS sends to a queue whose
    // policy does not let the topic in.
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
        }],
    });
    sqs.set_queue_attributes()
        .queue_url(&queue_url)
        .attributes(QueueAttributeName::Policy, policy.to_string())
        .send()
        .await
        .expect("queue policy");
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .send()
        .await
        .expect("subscribe the queue to the topic");
    (topic_arn, queue_url)
}

/// One SNS message as the subscribed queue received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    /// The envelope's `Message`, parsed as JSON (a JSON string when it is
    /// not JSON).
    pub message: Value,
    /// The message attributes: name -> `Value` (Binary ones base64).
    pub attributes: BTreeMap<String, String>,
    pub subject: Option<String>,
}

/// Every message in the queue, oldest first as SQS returns them, each
/// deleted once read: receives until an answer comes back empty.
pub async fn drain(config: &SdkConfig, queue_url: &str) -> Vec<Delivered> {
    let sqs = aws_sdk_sqs::Client::new(config);
    let mut out = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .expect("receive from the queue");
        if received.messages().is_empty() {
            return out;
        }
        for m in received.messages() {
            let body = m.body().expect("message body");
            out.push(envelope(body));
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(m.receipt_handle().expect("receipt handle"))
                .send()
                .await
                .expect("delete the message read");
        }
    }
}

fn envelope(body: &str) -> Delivered {
    let env: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("not an SNS envelope (RawMessageDelivery?): {e}: {body}"));
    let text = env["Message"].as_str().expect("envelope Message");
    let message = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.into()));
    let attributes = env["MessageAttributes"]
        .as_object()
        .map(|attrs| {
            attrs
                .iter()
                .map(|(name, a)| {
                    let value = a["Value"].as_str().unwrap_or_else(|| panic!("{name}: {a}"));
                    (name.clone(), value.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    Delivered {
        message,
        attributes,
        subject: env["Subject"].as_str().map(str::to_string),
    }
}

/// A mail SES v2 SendEmail (Simple content) accepted.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SentMail {
    pub account_id: String,
    pub message_id: String,
    pub source: String,
    /// To, then Cc, then Bcc.
    pub destinations: Vec<String>,
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
}

/// The mails sent from `account_id` (every account's with `None`) in
/// us-east-1, in the order sent within an account.
pub fn ses_sent(account_id: Option<&str>) -> Vec<SentMail> {
    let v = moto().control("ses_sent", json!({ "account_id": account_id }));
    serde_json::from_value(v["messages"].clone()).expect("ses_sent messages")
}

/// Makes `address` (or a domain) a sender SES accepts, through SES v2
/// CreateEmailIdentity; moto needs nothing more (AWS would wait for the
/// address to confirm, or the domain's DKIM records).
pub async fn verify_sender(config: &SdkConfig, address: &str) {
    aws_sdk_sesv2::Client::new(config)
        .create_email_identity()
        .email_identity(address)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create email identity {address}: {e:?}"));
}
