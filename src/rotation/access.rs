//! How a rotation reaches IAM: with the key being rotated (today's way for
//! a developer's own key), with an MFA session of that key, through a role
//! assumed in the user's account with the caller's own credentials (a team
//! rotating service users' keys), or with a named profile's credentials
//! (`rotate --service --profile P`). Whatever the way in, the subject stays
//! the key's user and verification signs with the new key. The way in is
//! journaled ([`AccessSpec`]), so a resumed rotation goes the same way.

use aws_config::SdkConfig;
use aws_credential_types::Credentials;

use super::steps::clients_for;
use crate::aws::{AccountClients, Identity, assume_role, caller_identity, with_credentials};
use crate::destination::KeyPair;
use crate::error::CallError;
use crate::journal::AccessSpec;

/// How IAM is reached for one job.
#[derive(Clone, PartialEq, Eq)]
pub enum Access {
    /// Signed with the key being rotated, then with the new key.
    OldKey,
    /// GetSessionToken with the old key and this device's code.
    MfaSession { serial: String, code: String },
    /// The caller's own credentials (the user is in the caller's account).
    Caller,
    /// The credentials of profile `name`: the job's `config` is loaded
    /// from it (the user is in that profile's account).
    Profile { name: String },
    /// AssumeRole with the caller's credentials. `role` is an ARN, or a
    /// role name (with an optional path) in the user's own account.
    Role {
        role: String,
        external_id: Option<String>,
    },
}

impl std::fmt::Debug for Access {
    // Never the MFA code: it opens a session for a while.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Access::OldKey => f.write_str("OldKey"),
            Access::Caller => f.write_str("Caller"),
            Access::Profile { name } => f.debug_struct("Profile").field("name", name).finish(),
            Access::MfaSession { serial, .. } => f
                .debug_struct("MfaSession")
                .field("serial", serial)
                .field("code", &"<redacted>")
                .finish(),
            Access::Role { role, external_id } => f
                .debug_struct("Role")
                .field("role", role)
                .field("external_id", external_id)
                .finish(),
        }
    }
}

/// The ARN of `role` for the user `identity` names: an ARN is kept, a name
/// is a role of the user's own account. Pure.
pub fn role_arn(role: &str, identity: &Identity) -> String {
    if role.starts_with("arn:") {
        return role.to_string();
    }
    let name = role.trim_start_matches('/');
    format!(
        "arn:{}:iam::{}:role/{name}",
        identity.partition, identity.account_id
    )
}

/// A way in, opened: what the journal keeps of it, and the session IAM
/// calls sign with (none: the key itself signs).
pub struct Opened {
    pub spec: AccessSpec,
    pub session: Option<Credentials>,
}

/// Why IAM cannot be reached the way a job asked.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("cannot start an MFA session with {serial}")]
    Mfa {
        serial: String,
        #[source]
        source: CallError,
    },
    #[error("cannot assume the role {role_arn}")]
    Role {
        role_arn: String,
        #[source]
        source: CallError,
    },
    #[error("cannot read the caller's own credentials")]
    Caller(#[source] aws_credential_types::provider::error::CredentialsError),
    #[error("cannot read the credentials of profile {name}")]
    Profile {
        name: String,
        #[source]
        source: aws_credential_types::provider::error::CredentialsError,
    },
    #[error("the journal names an access mode this build of rekey does not know: {0}")]
    Unknown(String),
    #[error("cannot ask STS whose credentials these are")]
    Identity(#[source] CallError),
    #[error(
        "these credentials ({via}) are of account {reached}, not of account {account} whose user the rotation concerns; it is left for a run with credentials of account {account}"
    )]
    OtherAccount {
        via: String,
        reached: String,
        account: String,
    },
}

impl Access {
    /// Opens the way in for the user of `old` (`identity`): `config` holds
    /// the region and endpoint (for a profile, its credentials too),
    /// `caller` the credentials roles are assumed with.
    pub async fn open(
        &self,
        config: &SdkConfig,
        caller: &SdkConfig,
        old: &KeyPair,
        identity: &Identity,
    ) -> Result<Opened, AccessError> {
        match self {
            Access::OldKey => Ok(Opened {
                spec: AccessSpec::OldKey,
                session: None,
            }),
            Access::Caller => Ok(Opened {
                spec: AccessSpec::Caller,
                session: Some(caller_credentials(caller).await?),
            }),
            Access::Profile { name } => Ok(Opened {
                spec: AccessSpec::Profile { name: name.clone() },
                session: Some(profile_credentials(name, config).await?),
            }),
            Access::MfaSession { serial, code } => {
                let session = mfa_session(config, old, serial, code)
                    .await
                    .map_err(|source| AccessError::Mfa {
                        serial: serial.clone(),
                        source,
                    })?;
                Ok(Opened {
                    spec: AccessSpec::MfaSession {
                        serial: serial.clone(),
                    },
                    session: Some(session),
                })
            }
            Access::Role { role, external_id } => {
                let role_arn = role_arn(role, identity);
                let session = assume(caller, &role_arn, external_id.as_deref()).await?;
                Ok(Opened {
                    spec: AccessSpec::Role {
                        role_arn,
                        external_id: external_id.clone(),
                    },
                    session: Some(session),
                })
            }
        }
    }

    /// Reopens the way a journaled rotation of a user of `account` went,
    /// for a run resuming it: `config` is the resumed job's (for a profile,
    /// loaded from it — see `recovery::resume_config`), `caller` the
    /// resuming run's own. The caller's or a profile's credentials are
    /// refused unless they are of `account`: they may be another account's
    /// now, where a user of the same name must not be touched. An MFA
    /// session cannot be reopened without a code: the new key (or, undoing,
    /// the old one) signs instead, as it always has.
    pub async fn reopen(
        spec: &AccessSpec,
        config: &SdkConfig,
        caller: &SdkConfig,
        account: &str,
    ) -> Result<Opened, AccessError> {
        let session = match spec {
            AccessSpec::OldKey | AccessSpec::MfaSession { .. } => None,
            AccessSpec::Caller => {
                let session = caller_credentials(caller).await?;
                same_account(caller, &session, account, "the run's own").await?;
                Some(session)
            }
            AccessSpec::Profile { name } => {
                let session = profile_credentials(name, config).await?;
                same_account(config, &session, account, &format!("profile {name}")).await?;
                Some(session)
            }
            AccessSpec::Role {
                role_arn,
                external_id,
            } => Some(assume(caller, role_arn, external_id.as_deref()).await?),
            AccessSpec::Unknown(text) => return Err(AccessError::Unknown(text.clone())),
        };
        Ok(Opened {
            spec: spec.clone(),
            session,
        })
    }
}

async fn caller_credentials(caller: &SdkConfig) -> Result<Credentials, AccessError> {
    use aws_credential_types::provider::ProvideCredentials;
    let Some(provider) = caller.credentials_provider() else {
        return Err(AccessError::Caller(
            aws_credential_types::provider::error::CredentialsError::not_loaded(
                "no credentials provider is configured",
            ),
        ));
    };
    provider
        .provide_credentials()
        .await
        .map_err(AccessError::Caller)
}

/// Refuses `session` unless it is of `account` (one STS GetCallerIdentity).
async fn same_account(
    config: &SdkConfig,
    session: &Credentials,
    account: &str,
    via: &str,
) -> Result<(), AccessError> {
    let sts = AccountClients::new(&with_credentials(config, session.clone())).sts;
    let me = caller_identity(&sts).await.map_err(AccessError::Identity)?;
    if me.account_id == account {
        return Ok(());
    }
    Err(AccessError::OtherAccount {
        via: via.to_string(),
        reached: me.account_id,
        account: account.to_string(),
    })
}

/// The credentials of `config`, which was loaded from profile `name`.
async fn profile_credentials(name: &str, config: &SdkConfig) -> Result<Credentials, AccessError> {
    caller_credentials(config).await.map_err(|e| match e {
        AccessError::Caller(source) => AccessError::Profile {
            name: name.to_string(),
            source,
        },
        other => other,
    })
}

async fn assume(
    caller: &SdkConfig,
    role_arn: &str,
    external_id: Option<&str>,
) -> Result<Credentials, AccessError> {
    let sts = AccountClients::new(caller).sts;
    assume_role(&sts, role_arn, external_id)
        .await
        .map_err(|source| AccessError::Role {
            role_arn: role_arn.to_string(),
            source,
        })
}

/// GetSessionToken signed with the old key; the session lasts 15 minutes.
async fn mfa_session(
    config: &SdkConfig,
    old: &KeyPair,
    serial: &str,
    code: &str,
) -> Result<Credentials, CallError> {
    let out = clients_for(config, old)
        .sts
        .get_session_token()
        .serial_number(serial)
        .token_code(code)
        .duration_seconds(900)
        .send()
        .await
        .map_err(|e| CallError::from_sdk("sts:GetSessionToken", e))?;
    let c = out.credentials().ok_or_else(|| CallError::Other {
        call: "sts:GetSessionToken",
        source: "the answer held no credentials".into(),
    })?;
    Ok(Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        None,
        "rekey-mfa-session",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Identity {
        Identity {
            account_id: "222222222222".into(),
            arn: "arn:aws:iam::222222222222:user/alice".into(),
            partition: "aws".into(),
        }
    }

    #[test]
    fn a_role_name_is_a_role_of_the_users_own_account() {
        assert_eq!(
            role_arn("OrganizationAccountAccessRole", &alice()),
            "arn:aws:iam::222222222222:role/OrganizationAccountAccessRole"
        );
        assert_eq!(
            role_arn("/ops/Rotator", &alice()),
            "arn:aws:iam::222222222222:role/ops/Rotator"
        );
        let arn = "arn:aws:iam::333333333333:role/Rotator";
        assert_eq!(role_arn(arn, &alice()), arn);
    }

    #[test]
    fn the_mfa_code_never_prints() {
        let a = Access::MfaSession {
            serial: "arn:aws:iam::1:mfa/dev".into(),
            code: "123456".into(),
        };
        assert!(!format!("{a:?}").contains("123456"));
    }
}
