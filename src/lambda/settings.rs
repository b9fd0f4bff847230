//! The function's configuration, from its environment variables (README,
//! "rekey in AWS Lambda"):
//!
//! | variable | means | default |
//! |---|---|---|
//! | `REKEY_JOURNAL` | the journal (`dynamodb:TABLE[?region=R]`) | none: the queue's and the rotation's handlers refuse to run without one |
//! | `REKEY_QUEUE_URL` | the fan-out queue the schedule sends to | none: the schedule refuses |
//! | `REKEY_ROLE` | the role assumed in each member account | `OrganizationAccountAccessRole` |
//! | `REKEY_OUS` | the OUs (or root) the schedule covers, comma-separated, over rekey.toml's `[audit] ous` | the whole organization |
//! | `REKEY_CONFIG` | rekey.toml: a path, `s3://BUCKET/KEY` or `ssm:/PATH` | none (rekey's defaults) |
//! | `REKEY_NOTIFY_SNS`, `REKEY_NOTIFY_EMAIL_FROM`, `REKEY_NOTIFY_WEBHOOK`, `REKEY_RENOTIFY_AFTER` | the notification settings, over rekey.toml's `[notify]` | rekey.toml's |
//! | `REKEY_NO_NOTIFY` | `true`: send nothing | false |
//!
//! Read once, when the container starts; a bad value is an error naming
//! the variable, before any AWS call.

use std::path::PathBuf;

use crate::aws::Deps;
use crate::config::ConfigFile;
use crate::error::CallError;
use crate::notify::settings::NotifyInput;

/// The member role unless `REKEY_ROLE` names another.
pub const DEFAULT_ROLE: &str = "OrganizationAccountAccessRole";

/// Where rekey.toml is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    Path(PathBuf),
    S3 {
        bucket: String,
        key: String,
    },
    /// An SSM parameter's name (`/rekey/config`), its value the file.
    Ssm(String),
}

/// The function's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub journal: Option<String>,
    pub queue_url: Option<String>,
    pub role: String,
    pub config: Option<ConfigSource>,
    /// The OUs (or the root) the schedule covers; none: the organization.
    pub ous: Vec<String>,
    pub notify: NotifyInput,
}

/// A setting that cannot be used, or rekey.toml that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{var}: `{value}` {why}")]
    Bad {
        var: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("{var} is not set: {why}")]
    Missing {
        var: &'static str,
        why: &'static str,
    },
    #[error("REKEY_CONFIG {source_name}: cannot read it")]
    Fetch {
        source_name: String,
        #[source]
        source: CallError,
    },
    #[error("REKEY_CONFIG {source_name}: {why}")]
    Unusable { source_name: String, why: String },
}

impl Settings {
    /// The settings `env` holds (`std::env::var`, or a test's).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, SettingsError> {
        let get = |var: &str| env(var).filter(|v| !v.trim().is_empty());
        let journal = get("REKEY_JOURNAL");
        if let Some(j) = &journal
            && !j.starts_with("dynamodb:")
        {
            return Err(SettingsError::Bad {
                var: "REKEY_JOURNAL",
                value: j.clone(),
                why: "is not a DynamoDB table: write dynamodb:TABLE (a Lambda's file system is gone after each container, so a file journal would forget every lease and rotation)",
            });
        }
        let config = get("REKEY_CONFIG").map(|v| parse_source(&v)).transpose()?;
        let role = get("REKEY_ROLE").unwrap_or_else(|| DEFAULT_ROLE.into());
        if role.contains(char::is_whitespace) {
            return Err(SettingsError::Bad {
                var: "REKEY_ROLE",
                value: role,
                why: "is not a role name (it holds a space)",
            });
        }
        let no_notify = match get("REKEY_NO_NOTIFY").as_deref() {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(other) => {
                return Err(SettingsError::Bad {
                    var: "REKEY_NO_NOTIFY",
                    value: other.into(),
                    why: "is not true or false",
                });
            }
        };
        let ous = parse_ous(get("REKEY_OUS").as_deref().unwrap_or(""))?;
        Ok(Settings {
            journal,
            queue_url: get("REKEY_QUEUE_URL"),
            role,
            config,
            ous,
            notify: NotifyInput {
                notify_sns: get("REKEY_NOTIFY_SNS"),
                notify_email_from: get("REKEY_NOTIFY_EMAIL_FROM"),
                notify_webhook: get("REKEY_NOTIFY_WEBHOOK"),
                renotify_after: get("REKEY_RENOTIFY_AFTER"),
                no_notify,
            },
        })
    }

    /// The journal, which the handlers that act need.
    pub fn journal(&self) -> Result<&str, SettingsError> {
        self.journal.as_deref().ok_or(SettingsError::Missing {
            var: "REKEY_JOURNAL",
            why: "acting needs the DynamoDB journal (dynamodb:TABLE) for its leases and its record",
        })
    }
}

/// `REKEY_OUS`: OU or root IDs, comma-separated (a deploy template's
/// list parameter joined). Pure.
fn parse_ous(value: &str) -> Result<Vec<String>, SettingsError> {
    let ids: Vec<String> = (value.split(','))
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(String::from)
        .collect();
    for id in &ids {
        let body = id.strip_prefix("ou-").or_else(|| id.strip_prefix("r-"));
        if !body.is_some_and(|b| {
            !b.is_empty()
                && b.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        }) {
            return Err(SettingsError::Bad {
                var: "REKEY_OUS",
                value: id.clone(),
                why: "is not an OU ID (ou-…) or a root ID (r-…)",
            });
        }
    }
    Ok(ids)
}

/// `s3://BUCKET/KEY`, `ssm:/PATH` or a path. Pure.
fn parse_source(v: &str) -> Result<ConfigSource, SettingsError> {
    let bad = |why| SettingsError::Bad {
        var: "REKEY_CONFIG",
        value: v.into(),
        why,
    };
    if let Some(rest) = v.strip_prefix("s3://") {
        return match rest.split_once('/') {
            Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok(ConfigSource::S3 {
                bucket: bucket.into(),
                key: key.into(),
            }),
            _ => Err(bad("is not s3://BUCKET/KEY")),
        };
    }
    if let Some(name) = v.strip_prefix("ssm:") {
        if !name.starts_with('/') || name.len() < 2 {
            return Err(bad("is not ssm:/PATH (a parameter's full name)"));
        }
        return Ok(ConfigSource::Ssm(name.into()));
    }
    if v.contains("://") {
        return Err(bad("is neither a path, s3://BUCKET/KEY nor ssm:/PATH"));
    }
    Ok(ConfigSource::Path(PathBuf::from(v)))
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigSource::Path(p) => write!(f, "{}", p.display()),
            ConfigSource::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
            ConfigSource::Ssm(name) => write!(f, "ssm:{name}"),
        }
    }
}

/// rekey.toml as a local file: a path as it is; an S3 object or an SSM
/// parameter fetched once into the container's temporary directory
/// (owner-only). Checked here, so a bad file fails the container's first
/// invocation, naming where it came from.
pub async fn fetch_config(source: &ConfigSource, deps: &Deps) -> Result<PathBuf, SettingsError> {
    let name = source.to_string();
    let text = match source {
        ConfigSource::Path(path) => {
            ConfigFile::load(path).map_err(|e| SettingsError::Unusable {
                source_name: name.clone(),
                why: crate::error::error_chain(&e),
            })?;
            return Ok(path.clone());
        }
        ConfigSource::S3 { bucket, key } => {
            let s3 = deps.clients().s3(deps.base());
            let out = (s3.get_object().bucket(bucket).key(key).send().await).map_err(|e| {
                SettingsError::Fetch {
                    source_name: name.clone(),
                    source: CallError::from_sdk("s3:GetObject", e),
                }
            })?;
            let bytes = out
                .body
                .collect()
                .await
                .map_err(|e| SettingsError::Unusable {
                    source_name: name.clone(),
                    why: format!("its body could not be read: {e}"),
                })?;
            String::from_utf8(bytes.to_vec()).map_err(|_| SettingsError::Unusable {
                source_name: name.clone(),
                why: "it is not UTF-8 text".into(),
            })?
        }
        ConfigSource::Ssm(parameter) => {
            let ssm = deps.clients().ssm(deps.base());
            let out = (ssm.get_parameter().name(parameter).with_decryption(true))
                .send()
                .await
                .map_err(|e| SettingsError::Fetch {
                    source_name: name.clone(),
                    source: CallError::from_sdk("ssm:GetParameter", e),
                })?;
            (out.parameter().and_then(|p| p.value()))
                .unwrap_or_default()
                .to_string()
        }
    };
    let dir = std::env::temp_dir().join(format!("rekey-config-{}", std::process::id()));
    let path = dir.join("rekey.toml");
    let unusable = |why: String| SettingsError::Unusable {
        source_name: name.clone(),
        why,
    };
    ConfigFile::parse(&path, &text).map_err(|e| unusable(crate::error::error_chain(&e)))?;
    std::fs::create_dir_all(&dir).map_err(|e| unusable(format!("cannot keep it: {e}")))?;
    crate::atomic::write(&path, text.as_bytes(), 0o600, None)
        .map_err(|e| unusable(format!("cannot keep it: {e}")))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_env(&move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn the_environment_decides_the_settings_and_a_bad_value_names_its_variable() {
        let s = settings(&[
            ("REKEY_JOURNAL", "dynamodb:rekey-journal"),
            ("REKEY_CONFIG", "s3://my-bucket/conf/rekey.toml"),
            ("REKEY_NOTIFY_SNS", "arn:aws:sns:us-east-1:111111111111:t"),
        ])
        .unwrap();
        assert_eq!(s.role, DEFAULT_ROLE);
        assert_eq!(
            s.config,
            Some(ConfigSource::S3 {
                bucket: "my-bucket".into(),
                key: "conf/rekey.toml".into()
            })
        );
        assert_eq!(
            settings(&[("REKEY_CONFIG", "ssm:/rekey/config")])
                .unwrap()
                .config,
            Some(ConfigSource::Ssm("/rekey/config".into()))
        );
        for (var, value, says) in [
            ("REKEY_JOURNAL", "/tmp/j.db", "is not a DynamoDB table"),
            ("REKEY_CONFIG", "s3://bucket-only", "is not s3://BUCKET/KEY"),
            ("REKEY_CONFIG", "ssm:rekey", "is not ssm:/PATH"),
            ("REKEY_CONFIG", "https://x/y", "is neither a path"),
            ("REKEY_NO_NOTIFY", "yes", "is not true or false"),
            ("REKEY_ROLE", "My Role", "holds a space"),
            ("REKEY_OUS", "ou-ab12-cdef3456,Sales", "is not an OU ID"),
        ] {
            let e = settings(&[(var, value)]).unwrap_err().to_string();
            assert!(e.starts_with(var) && e.contains(says), "{e}");
        }
        assert_eq!(
            settings(&[("REKEY_OUS", " ou-ab12-cdef3456, ,r-ab12")])
                .unwrap()
                .ous,
            ["ou-ab12-cdef3456", "r-ab12"]
        );
        let none = settings(&[]).unwrap();
        assert!(none.ous.is_empty());
        assert!(
            none.journal()
                .unwrap_err()
                .to_string()
                .contains("REKEY_JOURNAL is not set")
        );
    }
}
