//! Where service users' keys live in the emulator — Secrets Manager secrets
//! and SSM parameters holding `AccessKeyId` + `SecretAccessKey` JSON — and
//! the checks a user makes of them: what a store holds, whether that key
//! works, whether a secret leaked into a file — and a member account with
//! those stores, where the tests' service users live.

use std::path::Path;

use serde_json::{Value, json};

use super::{Creds, Org, Seeder, member_config, sdk_config};

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

/// The secret's JSON at `stage`, None when no version has that stage (or
/// no such secret exists); any other error fails the test, so a secret
/// that cannot be read is never taken for one without that stage.
pub async fn secret_at(
    client: &aws_sdk_secretsmanager::Client,
    id: &str,
    stage: &str,
) -> Option<Value> {
    let out = match client
        .get_secret_value()
        .secret_id(id)
        .version_stage(stage)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            return None;
        }
        Err(e) => panic!("get secret {id} at {stage}: {e:?}"),
    };
    Some(serde_json::from_str(out.secret_string().expect("secret string")).unwrap())
}

/// The secret's JSON at AWSCURRENT.
pub async fn secret_current(client: &aws_sdk_secretsmanager::Client, id: &str) -> Value {
    secret_at(client, id, "AWSCURRENT")
        .await
        .unwrap_or_else(|| panic!("{id} has no AWSCURRENT"))
}

/// The key AWSCURRENT holds.
pub async fn secret_key(client: &aws_sdk_secretsmanager::Client, id: &str) -> Creds {
    creds_of(&secret_current(client, id).await)
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
    put_param_text(client, name, &key_json(key).to_string(), Some(PARAM_KEY)).await;
}

/// A parameter holding `value`: a SecureString under `kms_key`, or a
/// plain String without one.
pub async fn put_param_text(
    client: &aws_sdk_ssm::Client,
    name: &str,
    value: &str,
    kms_key: Option<&str>,
) {
    let kind = match kms_key {
        Some(_) => aws_sdk_ssm::types::ParameterType::SecureString,
        None => aws_sdk_ssm::types::ParameterType::String,
    };
    client
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(kind)
        .set_key_id(kms_key.map(str::to_string))
        // A test may rewrite a parameter under a running rotation.
        .overwrite(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("put parameter {name}: {e:?}"));
}

/// The parameter as GetParameter returns it, decrypted.
pub async fn param(client: &aws_sdk_ssm::Client, name: &str) -> aws_sdk_ssm::types::Parameter {
    let out = client
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get parameter {name}: {e:?}"));
    out.parameter().expect("parameter").clone()
}

/// The parameter's value, as text.
pub async fn param_text(client: &aws_sdk_ssm::Client, name: &str) -> String {
    param(client, name)
        .await
        .value()
        .expect("value")
        .to_string()
}

/// The parameter's JSON and version.
pub async fn param_at(client: &aws_sdk_ssm::Client, name: &str) -> (Value, i64) {
    let p = param(client, name).await;
    (
        serde_json::from_str(p.value().expect("value")).unwrap(),
        p.version(),
    )
}

/// The key the parameter holds.
pub async fn param_key(client: &aws_sdk_ssm::Client, name: &str) -> Creds {
    creds_of(&param_at(client, name).await.0)
}

/// The KMS key the parameter is encrypted with.
pub async fn param_kms_key(client: &aws_sdk_ssm::Client, name: &str) -> Option<String> {
    let filter = aws_sdk_ssm::types::ParameterStringFilter::builder()
        .key("Name")
        .option("Equals")
        .values(name)
        .build()
        .unwrap();
    let out = client
        .describe_parameters()
        .parameter_filters(filter)
        .send()
        .await
        .unwrap_or_else(|e| panic!("describe parameter {name}: {e:?}"));
    out.parameters()[0].key_id().map(str::to_string)
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

/// A member account of an organization, entered through its role: its IAM
/// users and the stores its service users' keys live in.
pub struct ServiceAccount {
    pub account_id: String,
    pub seeder: Seeder,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub ssm: aws_sdk_ssm::Client,
}

impl ServiceAccount {
    pub async fn enter(org: &Org, account_id: &str) -> ServiceAccount {
        let config = member_config(org, account_id).await;
        ServiceAccount {
            account_id: account_id.to_string(),
            seeder: Seeder::new(account_id, &config),
            secrets: aws_sdk_secretsmanager::Client::new(&config),
            ssm: aws_sdk_ssm::Client::new(&config),
        }
    }

    /// Member `i` of `org`.
    pub async fn of(org: &Org, i: usize) -> ServiceAccount {
        ServiceAccount::enter(org, &org.members[i].account_id).await
    }

    /// A service user whose key, `age_days` old, may only ask STS who it
    /// is; bound by its `rekey:destination` tag when `tag` is given.
    pub async fn user(&self, name: &str, age_days: i64, tag: Option<&str>) -> Creds {
        let key = self.seeder.service_user(name, age_days).await;
        if let Some(value) = tag {
            self.seeder.tag_destination(name, value).await;
        }
        key
    }

    /// A user bound by tag to a secret of its own name, holding its key.
    pub async fn user_in_secret(&self, name: &str, age_days: i64) -> Creds {
        let key = self
            .user(name, age_days, Some(&format!("secretsmanager:{name}")))
            .await;
        create_secret(&self.secrets, name, &key).await;
        key
    }

    /// The user's keys, `(id, Active|Inactive)`, sorted.
    pub async fn keys(&self, user: &str) -> Vec<(String, String)> {
        let mut keys = self.seeder.keys(user).await;
        keys.sort();
        keys
    }
}

/// Nothing was written to secret `id`: the same versions as `versions`, no
/// AWSPENDING, and AWSCURRENT still holds `key_id`.
pub async fn assert_secret_untouched(
    client: &aws_sdk_secretsmanager::Client,
    id: &str,
    versions: &[(String, Vec<String>)],
    key_id: &str,
) {
    assert_eq!(
        secret_versions(client, id).await,
        versions,
        "{id}: versions"
    );
    assert_eq!(secret_at(client, id, "AWSPENDING").await, None, "{id}");
    assert_eq!(secret_key(client, id).await.access_key_id, key_id, "{id}");
}
