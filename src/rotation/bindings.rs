//! Bindings of service users to destinations (issue 7): the user tag
//! `rekey:destination` and `[[service]]` entries of rekey.toml both name
//! destinations as `secretsmanager:NAME|ARN` or `ssm:/PATH`. Parsing is
//! pure; opening a destination only builds its client. A binding names
//! where a key goes, never how it is reached: a tag never names a role.

use std::sync::Arc;

use aws_config::SdkConfig;

use crate::destination::{Destination, Reach, SecretRole, SecretsManagerSecret, SsmParameter};

/// The tag binding a user to its destinations, separated by spaces (an IAM
/// tag value allows no commas).
pub const DESTINATION_TAG: &str = "rekey:destination";

/// One destination as a binding names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// A secret by name, or by ARN (then possibly in another account).
    SecretsManager(String),
    /// One JSON parameter, or a pair under this path.
    Ssm(String),
}

impl Binding {
    /// `secretsmanager:NAME|ARN` or `ssm:/PATH`; None when it is neither.
    pub fn parse(text: &str) -> Option<Binding> {
        match text.split_once(':') {
            Some(("secretsmanager", id)) if !id.is_empty() => {
                Some(Binding::SecretsManager(id.to_string()))
            }
            Some(("ssm", path)) if path.starts_with('/') && path.len() > 1 => {
                Some(Binding::Ssm(path.to_string()))
            }
            _ => None,
        }
    }

    /// The destination of a user of `user_account`, reached as `own` says
    /// (that account's credentials, or the role it was entered with),
    /// except a secret named by an ARN of another account: that one
    /// through `secret_role` there, assumed with `caller` (see
    /// [`SecretsManagerSecret::of_user`]).
    pub fn open(
        &self,
        user_account: &str,
        secret_role: Option<&SecretRole>,
        own: Reach<'_>,
        caller: &SdkConfig,
    ) -> Arc<dyn Destination> {
        match self {
            Binding::SecretsManager(id) => Arc::new(SecretsManagerSecret::of_user(
                id,
                user_account,
                secret_role,
                own,
                caller,
            )),
            Binding::Ssm(path) => match own {
                Reach::With(config) => Arc::new(SsmParameter::new(path, None, None, config)),
                Reach::Role {
                    arn,
                    external_id,
                    session,
                } => {
                    let parameter = SsmParameter::new(path, None, None, caller)
                        .with_role(Some(arn.to_string()), external_id.map(str::to_string));
                    Arc::new(match session {
                        Some(session) => parameter.with_session(session),
                        None => parameter,
                    })
                }
            },
        }
    }
}

/// A `rekey:destination` tag that does not parse. The user is skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error(
        "user {user}: tag {DESTINATION_TAG} is empty; expected secretsmanager:NAME, secretsmanager:ARN or ssm:/PATH, separated by spaces"
    )]
    Empty { user: String },
    #[error(
        "user {user}: tag {DESTINATION_TAG} holds `{entry}`, which is not secretsmanager:NAME, secretsmanager:ARN or ssm:/PATH (entries are separated by spaces)"
    )]
    BadEntry { user: String, entry: String },
}

/// The destinations a `rekey:destination` tag value names, in order,
/// duplicates dropped. Pure.
pub fn parse_tag(user: &str, value: &str) -> Result<Vec<Binding>, TagError> {
    let mut out: Vec<Binding> = Vec::new();
    for entry in value.split_whitespace() {
        let binding = Binding::parse(entry).ok_or_else(|| TagError::BadEntry {
            user: user.to_string(),
            entry: entry.to_string(),
        })?;
        if !out.contains(&binding) {
            out.push(binding);
        }
    }
    if out.is_empty() {
        return Err(TagError::Empty {
            user: user.to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_names_secrets_and_parameters_separated_by_spaces() {
        let arn = "arn:aws:secretsmanager:us-east-1:111111111111:secret:ci/svc-AbCdEf";
        let got = parse_tag(
            "svc",
            &format!("  secretsmanager:ci/svc ssm:/app/key\tsecretsmanager:{arn} ssm:/app/key"),
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                Binding::SecretsManager("ci/svc".into()),
                Binding::Ssm("/app/key".into()),
                Binding::SecretsManager(arn.into()),
            ]
        );
    }

    #[test]
    fn a_malformed_tag_names_the_user_the_tag_and_the_entry() {
        for (value, entry) in [
            ("secretsmanager:ci/svc ssm:app", "ssm:app"),
            ("ssm:app/key", "ssm:app/key"),
            ("secretsmanager:", "secretsmanager:"),
            ("s3://bucket/key", "s3://bucket/key"),
            ("ssm:/", "ssm:/"),
        ] {
            let e = parse_tag("svc", value).unwrap_err();
            let text = e.to_string();
            assert!(
                text.starts_with("user svc: tag rekey:destination"),
                "{text}"
            );
            assert!(text.contains(&format!("`{entry}`")), "{text}");
        }
        assert_eq!(
            parse_tag("svc", "   ").unwrap_err(),
            TagError::Empty { user: "svc".into() }
        );
    }
}
