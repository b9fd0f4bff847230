//! The notification test doubles do what the notification tests rely on:
//! the webhook stand-in records, fails and refuses as told; SNS messages
//! come back through a subscribed queue; SES mails come back from the
//! harness; `/_rekey/fail` fails SendEmail and Publish with codes the SDK
//! for Rust reads.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;

use aws_sdk_sesv2::config::retry::RetryConfig;
use aws_sdk_sesv2::error::ProvideErrorMetadata;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use aws_sdk_sns::types::MessageAttributeValue;
use serde_json::json;

use crate::support::notify::{
    Delivered, SentMail, drain, ses_sent, topic_with_queue, verify_sender,
};
use crate::support::webhook::Webhook;
use crate::support::{moto, sdk_config};

async fn post(url: &str, body: &serde_json::Value) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .expect("POST to the webhook stand-in");
    (r.status().as_u16(), r.text().await.expect("answer body"))
}

#[tokio::test]
async fn webhook_stand_in_records_and_fails_as_told() {
    let hook = Webhook::start();
    let url = hook.url();
    let token = hook.token();
    assert_eq!(token.len(), 24);
    assert!(token.chars().all(|c| c.is_ascii_alphanumeric()), "{token}");
    assert!(
        url.ends_with(&format!("/services/T0REKEY/B0REKEY/{token}")),
        "{url}"
    );
    assert_ne!(
        Webhook::start().token(),
        token,
        "each stand-in has its own secret"
    );

    assert_eq!(
        post(&url, &json!({"text": "one"})).await,
        (200, "ok".into())
    );
    hook.fail_next(2, 500);
    assert_eq!(post(&url, &json!({"text": "lost"})).await.0, 500);
    assert_eq!(post(&url, &json!({"text": "lost"})).await.0, 500);
    assert_eq!(
        post(&url, &json!({"text": "two"})).await,
        (200, "ok".into())
    );
    let wrong = url.replace(token, "AAAAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(
        post(&wrong, &json!({"text": "nope"})).await,
        (404, "no_service".into())
    );
    assert_eq!(
        post(&url, &json!({"username": "rekey"})).await,
        (400, "no_text".into())
    );

    // A chunked body, as a streaming client sends it.
    let chunked = "{\"text\":\"th";
    let rest = "ree\"}";
    let path = &url[url.find("/services/").unwrap()..];
    let mut s = TcpStream::connect(url[7..].split('/').next().unwrap()).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunked}\r\n{:x}\r\n{rest}\r\n0\r\n\r\n",
        chunked.len(),
        rest.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nok"), "{answer}");

    assert_eq!(
        hook.received(),
        vec![
            json!({"text": "one"}),
            json!({"text": "two"}),
            json!({"text": "three"})
        ]
    );
    assert_eq!(
        hook.attempts(),
        7,
        "every POST, the failed and refused ones too"
    );
}

#[tokio::test]
async fn sns_messages_come_back_through_the_subscribed_queue() {
    let account = moto().new_account();
    let config = sdk_config(&account.admin);
    let (topic, queue) = topic_with_queue(&config, "rekey-events").await;
    aws_sdk_sns::Client::new(&config)
        .publish()
        .topic_arn(&topic)
        .subject("Key rotated")
        .message(json!({"event": "rotated", "user": "dev"}).to_string())
        .message_attributes(
            "event",
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value("rotated")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("publish");
    assert_eq!(
        drain(&config, &queue).await,
        vec![Delivered {
            message: json!({"event": "rotated", "user": "dev"}),
            attributes: BTreeMap::from([("event".into(), "rotated".into())]),
            subject: Some("Key rotated".into()),
        }]
    );
    assert_eq!(drain(&config, &queue).await, vec![], "drained");
}

fn mail(
    client: &aws_sdk_sesv2::Client,
) -> aws_sdk_sesv2::operation::send_email::builders::SendEmailFluentBuilder {
    let content = |s: &str| Content::builder().data(s).build().unwrap();
    client
        .send_email()
        .from_email_address("rekey@example.com")
        .destination(
            Destination::builder()
                .to_addresses("owner@example.com")
                .build(),
        )
        .content(
            EmailContent::builder()
                .simple(
                    Message::builder()
                        .subject(content("Key rotated"))
                        .body(
                            Body::builder()
                                .text(content("plain"))
                                .html(content("<p>html</p>"))
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
}

#[tokio::test]
async fn ses_mails_come_back_from_the_harness() {
    let account = moto().new_account();
    let config = sdk_config(&account.admin);
    let ses = aws_sdk_sesv2::Client::new(&config);
    let err = mail(&ses).send().await.expect_err("an unverified sender");
    assert_eq!(err.code(), Some("MessageRejected"), "{err:?}");

    verify_sender(&config, "rekey@example.com").await;
    let sent = mail(&ses).send().await.expect("send");
    assert_eq!(
        ses_sent(Some(&account.account_id)),
        vec![SentMail {
            account_id: account.account_id.clone(),
            message_id: sent.message_id().unwrap().to_string(),
            source: "rekey@example.com".into(),
            destinations: vec!["owner@example.com".into()],
            subject: "Key rotated".into(),
            text: Some("plain".into()),
            html: Some("<p>html</p>".into()),
        }]
    );
    let everyone = ses_sent(None);
    assert!(everyone.iter().any(|m| m.account_id == account.account_id));
}

#[tokio::test]
async fn injected_send_email_and_publish_faults_carry_their_codes() {
    let account = moto().new_account();
    let config = sdk_config(&account.admin);
    verify_sender(&config, "rekey@example.com").await;
    let fail = |action: &str, status: u16, code: &str| {
        moto().control(
            "fail",
            json!({"action": action, "account_id": account.account_id, "count": 1,
                   "status": status, "code": code}),
        );
    };

    // Without retries the one failure is what the caller sees.
    let no_retry = aws_sdk_sesv2::config::Builder::from(&config)
        .retry_config(RetryConfig::disabled())
        .build();
    let ses = aws_sdk_sesv2::Client::from_conf(no_retry);
    fail("ses:SendEmail", 429, "TooManyRequestsException");
    let err = mail(&ses).send().await.expect_err("the injected fault");
    assert_eq!(err.code(), Some("TooManyRequestsException"), "{err:?}");
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_too_many_requests_exception()),
        "{err:?}"
    );
    assert_eq!(ses_sent(Some(&account.account_id)), vec![]);

    // The SDK's standard retries absorb a single throttle.
    fail("ses:SendEmail", 429, "TooManyRequestsException");
    mail(&aws_sdk_sesv2::Client::new(&config))
        .send()
        .await
        .expect("sent on the second attempt");
    assert_eq!(ses_sent(Some(&account.account_id)).len(), 1);

    let (topic, queue) = topic_with_queue(&config, "rekey-events").await;
    let sns_config = aws_sdk_sns::config::Builder::from(&config)
        .retry_config(RetryConfig::disabled())
        .build();
    fail("sns:Publish", 400, "Throttling");
    let err = aws_sdk_sns::Client::from_conf(sns_config)
        .publish()
        .topic_arn(&topic)
        .message("m")
        .send()
        .await
        .expect_err("the injected fault");
    assert_eq!(
        aws_sdk_sns::error::ProvideErrorMetadata::code(&err),
        Some("Throttling"),
        "{err:?}"
    );
    assert_eq!(drain(&config, &queue).await, vec![]);
}
