//! The user tag binding service users to destinations (issue 7):
//! `rekey:destination`, holding [`Binding`]s (`secretsmanager:NAME|ARN`,
//! `ssm:/PATH`) separated by spaces, as `[[service]]` entries of rekey.toml
//! name them too. Pure. A tag names where a key goes, never how it is
//! reached: it never names a role.

pub use crate::destination::Binding;

/// The tag binding a user to its destinations, separated by spaces (an IAM
/// tag value allows no commas).
pub const DESTINATION_TAG: &str = "rekey:destination";

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

impl TagError {
    /// The user whose tag it is.
    pub fn user(&self) -> &str {
        match self {
            TagError::Empty { user } | TagError::BadEntry { user, .. } => user,
        }
    }
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
