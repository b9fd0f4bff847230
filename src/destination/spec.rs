//! What a destination is, as the journal keeps it: structured data, so a
//! resumed run rebuilds exactly the destinations a rotation began with,
//! whatever their names hold (`#`, `,`, spaces, unicode) — issue 9 #3.
//!
//! Three shapes can be read back:
//! - a typed object, `{"kind": "shared_file", "file": "credentials", "path": "/abs", "profiles": ["dev#1"]}`;
//! - a plain string, written by rekey before destinations were typed
//!   (`credentials:PATH#a,b`), parsed as well as that format allows;
//! - an object of a kind this build does not know (a newer rekey wrote it):
//!   kept verbatim and refused by name when a run must act on it, never
//!   dropped.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};

use crate::awsfiles::FileKind;

/// One destination of a rotation, as journaled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestinationSpec {
    /// Profiles of one shared credentials or config file that hold the key.
    SharedFile {
        file: FileKind,
        /// Absolute, so a run started elsewhere finds the same file.
        path: PathBuf,
        profiles: Vec<String>,
    },
    /// A Secrets Manager secret, by name or ARN, with the region it is in
    /// and the role (an ARN) assumed to reach it (a central secrets
    /// account), with its external ID. Never its value, never credentials.
    SecretsManager {
        secret_id: String,
        region: Option<String>,
        role: Option<String>,
        /// Absent from rows written before it was journaled: None.
        external_id: Option<String>,
        /// The version a Secrets Manager rotation asked for (the event's
        /// `ClientRequestToken`), when rekey is the secret's own rotation
        /// function (the Lambda): the new pair goes into that version, and
        /// the secret's rotation being enabled is expected, not refused.
        /// None: rekey rotates the secret itself (a version of its own).
        rotation_token: Option<String>,
    },
    /// An SSM parameter (one JSON parameter, or a pair under the path),
    /// with its region and the role (an ARN, with its external ID) that
    /// reached it, if any. Never its value, never credentials.
    Ssm {
        path: String,
        /// None: not known yet; found on first use.
        form: Option<super::ssm::SsmForm>,
        region: Option<String>,
        /// Absent from rows written before it was journaled: None.
        role: Option<String>,
        external_id: Option<String>,
    },
    /// `credentials:PATH#a,b`, written before destinations were typed.
    Legacy(String),
    /// A kind this build does not know, kept as it was read.
    Unknown { kind: String, raw: Value },
}

const SHARED_FILE: &str = "shared_file";
const SECRETS_MANAGER: &str = "secretsmanager";
const SSM: &str = "ssm";

fn file_name(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Credentials => "credentials",
        FileKind::Config => "config",
    }
}

impl DestinationSpec {
    fn to_value(&self) -> Value {
        match self {
            DestinationSpec::SharedFile {
                file,
                path,
                profiles,
            } => json!({
                "kind": SHARED_FILE,
                "file": file_name(*file),
                // Lossy only for paths that are not UTF-8, which the AWS
                // CLI cannot be pointed at either.
                "path": path.to_string_lossy(),
                "profiles": profiles,
            }),
            DestinationSpec::SecretsManager {
                secret_id,
                region,
                role,
                external_id,
                rotation_token,
            } => {
                let mut value = json!({
                    "kind": SECRETS_MANAGER,
                    "secret_id": secret_id,
                    "region": region,
                    "role": role,
                });
                if let Some(id) = external_id {
                    value["external_id"] = json!(id);
                }
                if let Some(token) = rotation_token {
                    value["rotation_token"] = json!(token);
                }
                value
            }
            DestinationSpec::Ssm {
                path,
                form,
                region,
                role,
                external_id,
            } => {
                let mut value = json!({
                    "kind": SSM,
                    "path": path,
                    "form": form.map(|f| f.as_str()),
                    "region": region,
                });
                if let Some(role) = role {
                    value["role"] = json!(role);
                }
                if let Some(id) = external_id {
                    value["external_id"] = json!(id);
                }
                value
            }
            DestinationSpec::Legacy(text) => Value::String(text.clone()),
            DestinationSpec::Unknown { raw, .. } => raw.clone(),
        }
    }

    fn from_value(value: Value) -> Result<Self, String> {
        let object = match value {
            Value::String(text) => return Ok(DestinationSpec::Legacy(text)),
            Value::Object(ref object) => object,
            other => return Err(format!("a destination must be an object, not {other}")),
        };
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .ok_or("a destination without a kind")?
            .to_string();
        let text = |name: &str| object.get(name).and_then(Value::as_str).map(str::to_string);
        if kind == SECRETS_MANAGER {
            return Ok(DestinationSpec::SecretsManager {
                secret_id: text("secret_id")
                    .ok_or("a secretsmanager destination without a secret_id")?,
                region: text("region"),
                role: text("role"),
                external_id: text("external_id"),
                rotation_token: text("rotation_token"),
            });
        }
        if kind == SSM {
            let form = match text("form") {
                None => None,
                Some(f) => {
                    Some(super::ssm::SsmForm::parse(&f).ok_or(format!("unknown ssm form {f:?}"))?)
                }
            };
            return Ok(DestinationSpec::Ssm {
                path: text("path").ok_or("an ssm destination without a path")?,
                form,
                region: text("region"),
                role: text("role"),
                external_id: text("external_id"),
            });
        }
        if kind != SHARED_FILE {
            return Ok(DestinationSpec::Unknown { kind, raw: value });
        }
        let file = match object.get("file").and_then(Value::as_str) {
            Some("credentials") => FileKind::Credentials,
            Some("config") => FileKind::Config,
            other => return Err(format!("unknown shared file {other:?}")),
        };
        let path = object
            .get("path")
            .and_then(Value::as_str)
            .ok_or("a shared_file destination without a path")?;
        let profiles = object
            .get("profiles")
            .and_then(Value::as_array)
            .ok_or("a shared_file destination without profiles")?
            .iter()
            .map(|p| p.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or("a profile name that is not a string")?;
        Ok(DestinationSpec::SharedFile {
            file,
            path: PathBuf::from(path),
            profiles,
        })
    }
}

impl Serialize for DestinationSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for DestinationSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        DestinationSpec::from_value(Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_profile_name_round_trips() {
        let spec = DestinationSpec::SharedFile {
            file: FileKind::Config,
            path: PathBuf::from("/home/ü ser/.aws/config"),
            profiles: vec!["dev#1".into(), "ci,dev".into(), "a b".into(), "é".into()],
        };
        let text = serde_json::to_string(&spec).unwrap();
        assert_eq!(
            serde_json::from_str::<DestinationSpec>(&text).unwrap(),
            spec
        );
    }

    #[test]
    fn a_secret_round_trips_by_name_region_and_role() {
        let spec = DestinationSpec::SecretsManager {
            secret_id: "arn:aws:secretsmanager:eu-west-1:222222222222:secret:ci/bot-AbCdEf".into(),
            region: Some("eu-west-1".into()),
            role: Some("arn:aws:iam::222222222222:role/rekey".into()),
            external_id: Some("rekey-x".into()),
            rotation_token: Some("c9b4a2f0-6a8e-4b7e-9d5e-0123456789ab".into()),
        };
        let text = serde_json::to_string(&spec).unwrap();
        assert_eq!(
            serde_json::from_str::<DestinationSpec>(&text).unwrap(),
            spec
        );
        let bare: DestinationSpec =
            serde_json::from_str(r#"{"kind":"secretsmanager","secret_id":"ci/bot"}"#).unwrap();
        assert!(matches!(
            bare,
            DestinationSpec::SecretsManager {
                region: None,
                role: None,
                external_id: None,
                ..
            }
        ));
    }

    #[test]
    fn a_parameter_round_trips_by_path_form_and_region() {
        for form in [None, Some(super::super::ssm::SsmForm::Pair)] {
            let spec = DestinationSpec::Ssm {
                path: "/ci/bot".into(),
                form,
                region: Some("eu-west-1".into()),
                role: form.map(|_| "arn:aws:iam::222222222222:role/Rotator".into()),
                external_id: form.map(|_| "x-1".into()),
            };
            let text = serde_json::to_string(&spec).unwrap();
            assert_eq!(
                serde_json::from_str::<DestinationSpec>(&text).unwrap(),
                spec
            );
        }
    }

    #[test]
    fn old_strings_and_unknown_kinds_are_kept_not_dropped() {
        let old: DestinationSpec =
            serde_json::from_str(r#""credentials:/h/.aws/credentials#dev""#).unwrap();
        assert_eq!(
            old,
            DestinationSpec::Legacy("credentials:/h/.aws/credentials#dev".into())
        );
        let raw = r#"{"kind":"carrier_pigeon","loft":"north"}"#;
        let unknown: DestinationSpec = serde_json::from_str(raw).unwrap();
        assert!(
            matches!(&unknown, DestinationSpec::Unknown { kind, .. } if kind == "carrier_pigeon")
        );
        assert_eq!(
            serde_json::to_value(&unknown).unwrap(),
            serde_json::from_str::<Value>(raw).unwrap()
        );
        assert!(serde_json::from_str::<DestinationSpec>("42").is_err());
    }
}
