//! Where service users' keys live in the emulator — Secrets Manager secrets
//! and SSM parameters holding `AccessKeyId` + `SecretAccessKey` JSON — and
//! the checks a user makes of them: what a store holds, whether that key
//! works, whether a secret leaked into a file.

use std::path::Path;

use serde_json::{Value, json};

use super::{Creds, sdk_config};

/// The KMS key the tests' SecureString parameters are encrypted with.
pub const PARAM_KEY: &str = "alias/ci-secrets";

/// The JSON a store holds for `key`, with one field of the application's
/// own that rotation must keep.
pub fn key_json(key: &Creds) -> Value {
    json!({
        "AccessKeyId": key.access_key_id,
        "SecretAccessKey": key.secret_access_key,
        "Endpoint": "db.internal:5432",
    })
}

pub fn creds_of(value: &Value) -> Creds {
    Creds {
        access_key_id: value["AccessKeyId"].as_str().expect("AccessKeyId").into(),
        secret_access_key: value["SecretAccessKey"]
            .as_str()
            .expect("SecretAccessKey")
            .into(),
    }
}

/// Whether STS accepts `key` now (the harness rejects inactive keys and,
/// when asked, keys IAM is still propagating).
pub async fn works(key: &Creds) -> bool {
    aws_sdk_sts::Client::new(&sdk_config(key))
        .get_caller_identity()
        .send()
        .await
        .is_ok()
}

/// A secret holding `key`; returns its ARN.
pub async fn create_secret(
    client: &aws_sdk_secretsmanager::Client,
    name: &str,
    key: &Creds,
) -> String {
    let out = client
        .create_secret()
        .name(name)
        .secret_string(key_json(key).to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("create secret {name}: {e:?}"));
    out.arn().expect("arn").to_string()
}

/// The secret's JSON at `stage`, None when no version has that stage.
pub async fn secret_at(
    client: &aws_sdk_secretsmanager::Client,
    id: &str,
    stage: &str,
) -> Option<Value> {
    let out = client
        .get_secret_value()
        .secret_id(id)
        .version_stage(stage)
        .send()
        .await
        .ok()?;
    Some(serde_json::from_str(out.secret_string().expect("secret string")).unwrap())
}

/// The key AWSCURRENT holds.
pub async fn secret_key(client: &aws_sdk_secretsmanager::Client, id: &str) -> Creds {
    creds_of(
        &secret_at(client, id, "AWSCURRENT")
            .await
            .unwrap_or_else(|| panic!("{id} has no AWSCURRENT")),
    )
}

/// Every version of the secret with its stages, sorted: equal before and
/// after a run that changed nothing.
pub async fn secret_versions(
    client: &aws_sdk_secretsmanager::Client,
    id: &str,
) -> Vec<(String, Vec<String>)> {
    let out = client
        .list_secret_version_ids()
        .secret_id(id)
        .include_deprecated(true)
        .send()
        .await
        .expect("list secret versions");
    let mut versions: Vec<(String, Vec<String>)> = out
        .versions()
        .iter()
        .map(|v| {
            let mut stages = v.version_stages().to_vec();
            stages.sort();
            (v.version_id().unwrap_or_default().to_string(), stages)
        })
        .collect();
    versions.sort();
    versions
}

/// A SecureString parameter holding `key` as JSON, under [`PARAM_KEY`].
pub async fn put_param(client: &aws_sdk_ssm::Client, name: &str, key: &Creds) {
    client
        .put_parameter()
        .name(name)
        .value(key_json(key).to_string())
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .key_id(PARAM_KEY)
        .send()
        .await
        .unwrap_or_else(|e| panic!("put parameter {name}: {e:?}"));
}

/// The parameter's JSON and version.
pub async fn param_at(client: &aws_sdk_ssm::Client, name: &str) -> (Value, i64) {
    let out = client
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get parameter {name}: {e:?}"));
    let p = out.parameter().expect("parameter");
    (
        serde_json::from_str(p.value().expect("value")).unwrap(),
        p.version(),
    )
}

/// The key the parameter holds.
pub async fn param_key(client: &aws_sdk_ssm::Client, name: &str) -> Creds {
    creds_of(&param_at(client, name).await.0)
}

/// No file directly in `dir` (the journal, its WAL) holds any of
/// `secrets`, searched in its raw bytes.
pub fn assert_no_secret_in(dir: &Path, secrets: &[&str]) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        for secret in secrets {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds a secret",
                path.display()
            );
        }
    }
}
