//! How a rotation reaches IAM: with the key being rotated (today's way for
//! a developer's own key), with an MFA session of that key, through a role
//! assumed in the user's account with the caller's own credentials (a team
//! rotating service users' keys), or with a named profile's credentials
//! (`rotate --service --profile P`). Whatever the way in, the subject stays
//! the key's user and verification signs with the new key. The way in is
//! journaled ([`AccessSpec`]), so a resumed rotation goes the same way.

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use secrecy::ExposeSecret;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::steps::clients_for;
use crate::aws::{AccountClients, Deps, Identity, Signer, caller_identity, with_credentials};
use crate::destination::KeyPair;
use crate::error::CallError;
use crate::journal::AccessSpec;

/// How IAM is reached for one job: data, part of its
/// [`JobSpec`](super::JobSpec). Never a secret: an MFA session names its
/// device, and the code the person typed is kept in the run's [`Deps`].
///
/// JSON: an object tagged by `"kind"` — `{"kind": "old_key"}`,
/// `{"kind": "mfa_session", "serial": ARN}`, `{"kind": "caller"}`,
/// `{"kind": "profile", "name": NAME}`, `{"kind": "role", "role":
/// NAME_OR_ARN, "external_id": ID}` (`external_id` left out when none).
/// Another kind (a newer rekey wrote it) is kept as it was read and
/// refused by name when a run must act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Signed with the key being rotated, then with the new key.
    OldKey,
    /// GetSessionToken with the old key and the code of this device.
    MfaSession { serial: String },
    /// The caller's own credentials (the user is in the caller's account).
    Caller,
    /// The credentials of profile `name`: the job's configuration is
    /// loaded from it (the user is in that profile's account).
    Profile { name: String },
    /// AssumeRole with the caller's credentials. `role` is an ARN, or a
    /// role name (with an optional path) in the user's own account.
    Role {
        role: String,
        external_id: Option<String>,
    },
    /// A kind this build does not know, as JSON text.
    Unknown(String),
}

/// The kinds this build knows, as serde writes them.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Known {
    OldKey,
    MfaSession {
        serial: String,
    },
    Caller,
    Profile {
        name: String,
    },
    Role {
        role: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        external_id: Option<String>,
    },
}

const KINDS: &[&str] = &["old_key", "mfa_session", "caller", "profile", "role"];

impl Serialize for Access {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let known = match self.clone() {
            Access::OldKey => Known::OldKey,
            Access::MfaSession { serial } => Known::MfaSession { serial },
            Access::Caller => Known::Caller,
            Access::Profile { name } => Known::Profile { name },
            Access::Role { role, external_id } => Known::Role { role, external_id },
            Access::Unknown(text) => {
                let raw: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
                return raw.serialize(s);
            }
        };
        known.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Access {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        let kind = value.get("kind").and_then(Value::as_str);
        if !kind.is_some_and(|k| KINDS.contains(&k)) {
            if kind.is_none() {
                return Err(serde::de::Error::custom("an access without a kind"));
            }
            return Ok(Access::Unknown(value.to_string()));
        }
        Ok(
            match serde_json::from_value(value).map_err(serde::de::Error::custom)? {
                Known::OldKey => Access::OldKey,
                Known::MfaSession { serial } => Access::MfaSession { serial },
                Known::Caller => Access::Caller,
                Known::Profile { name } => Access::Profile { name },
                Known::Role { role, external_id } => Access::Role { role, external_id },
            },
        )
    }
}

impl From<&AccessSpec> for Access {
    /// The way a journaled rotation went, as a job's spec names it.
    fn from(spec: &AccessSpec) -> Access {
        match spec {
            AccessSpec::OldKey => Access::OldKey,
            AccessSpec::MfaSession { serial } => Access::MfaSession {
                serial: serial.clone(),
            },
            AccessSpec::Caller => Access::Caller,
            AccessSpec::Profile { name } => Access::Profile { name: name.clone() },
            AccessSpec::Role {
                role_arn,
                external_id,
            } => Access::Role {
                role: role_arn.clone(),
                external_id: external_id.clone(),
            },
            AccessSpec::Unknown(text) => Access::Unknown(text.clone()),
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
    #[error("an access mode this build of rekey does not know: {0}")]
    Unknown(String),
    /// The run was given no code for the device (the front end asks for
    /// one before the job is opened).
    #[error("no MFA code was given for {serial}")]
    NoMfaCode { serial: String },
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
    /// the region and endpoint (for a profile, its credentials too);
    /// roles are assumed with the caller's credentials, once per run
    /// ([`Deps::role_session`]); an MFA session takes the code the person
    /// gave for its device.
    pub async fn open(
        &self,
        deps: &Deps,
        config: &SdkConfig,
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
                session: Some(caller_credentials(deps.base()).await?),
            }),
            Access::Profile { name } => Ok(Opened {
                spec: AccessSpec::Profile { name: name.clone() },
                session: Some(profile_credentials(name, config).await?),
            }),
            Access::MfaSession { serial } => {
                let code = deps
                    .mfa_code(serial)
                    .ok_or_else(|| AccessError::NoMfaCode {
                        serial: serial.clone(),
                    })?;
                let session = mfa_session(config, old, serial, code.expose_secret())
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
                let session = assume(deps, &role_arn, external_id.as_deref()).await?;
                Ok(Opened {
                    spec: AccessSpec::Role {
                        role_arn,
                        external_id: external_id.clone(),
                    },
                    session: Some(session),
                })
            }
            Access::Unknown(text) => Err(AccessError::Unknown(text.clone())),
        }
    }

    /// Reopens the way a journaled rotation of a user of `account` went,
    /// for a run resuming it: `config` is the resumed job's (for a profile,
    /// loaded from it). The caller's or a profile's credentials are
    /// refused unless they are of `account`: they may be another account's
    /// now, where a user of the same name must not be touched. An MFA
    /// session cannot be reopened without a code: the new key (or, undoing,
    /// the old one) signs instead, as it always has.
    pub async fn reopen(
        spec: &AccessSpec,
        deps: &Deps,
        config: &SdkConfig,
        account: &str,
    ) -> Result<Opened, AccessError> {
        let session = match spec {
            AccessSpec::OldKey | AccessSpec::MfaSession { .. } => None,
            AccessSpec::Caller => {
                let session = caller_credentials(deps.base()).await?;
                same_account(deps.base(), &session, account, "the run's own").await?;
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
            } => Some(assume(deps, role_arn, external_id.as_deref()).await?),
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

/// The caller's session of `role_arn`, assumed once per run.
async fn assume(
    deps: &Deps,
    role_arn: &str,
    external_id: Option<&str>,
) -> Result<Credentials, AccessError> {
    deps.role_session(&Signer::Caller, role_arn, external_id)
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
    fn an_access_of_a_newer_kind_is_kept_as_it_was_read() {
        let raw = r#"{"kind":"carrier_pigeon","loft":"north"}"#;
        let access: Access = serde_json::from_str(raw).unwrap();
        assert!(matches!(&access, Access::Unknown(_)));
        assert_eq!(
            serde_json::to_value(&access).unwrap(),
            serde_json::from_str::<Value>(raw).unwrap()
        );
        assert!(serde_json::from_str::<Access>(r#"{"role":"x"}"#).is_err());
    }

    #[test]
    fn a_journaled_way_in_is_the_same_way_in_a_spec() {
        let journaled = AccessSpec::Role {
            role_arn: "arn:aws:iam::1:role/Rotator".into(),
            external_id: Some("x-1".into()),
        };
        assert_eq!(
            Access::from(&journaled),
            Access::Role {
                role: "arn:aws:iam::1:role/Rotator".into(),
                external_id: Some("x-1".into()),
            }
        );
        let mfa = AccessSpec::MfaSession {
            serial: "arn:aws:iam::1:mfa/dev".into(),
        };
        assert_eq!(
            serde_json::to_string(&Access::from(&mfa)).unwrap(),
            r#"{"kind":"mfa_session","serial":"arn:aws:iam::1:mfa/dev"}"#
        );
    }
}
