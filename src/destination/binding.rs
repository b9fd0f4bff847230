//! A destination as a person names it — `secretsmanager:NAME|ARN` or
//! `ssm:/PATH`, in a `--to` flag, a `[[service]]` entry or a user's
//! `rekey:destination` tag — and the destination it opens. Parsing is pure;
//! opening only builds a client. A binding names where a key goes, never
//! how it is reached: the caller says that.

use std::sync::Arc;

use aws_config::SdkConfig;

use super::{Destination, Reach, SecretRole, SecretsManagerSecret, SsmParameter};

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
