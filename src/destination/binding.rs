//! A destination as a person names it — `secretsmanager:NAME|ARN` or
//! `ssm:/PATH`, in a `--to` flag, a `[[service]]` entry or a user's
//! `rekey:destination` tag — and the [`DestinationSpec`] it stands for.
//! Both are pure: a binding names where a key goes, the caller says how it
//! is reached (the role of the user's account it entered through, the role
//! reaching secrets of another account), and the spec is opened like any
//! other ([`super::open`]), fresh or resumed.

use super::secrets_manager::region_of_arn;
use super::{DestinationSpec, SecretRole};

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

    /// The destination of a user of `user_account`, reached with the job's
    /// credentials, or through `own_role` (a role ARN of the user's account
    /// and its external ID: the role the account was entered with) when
    /// there is one — except a secret named by an ARN of another account:
    /// that one through `secret_role` there (see [`SecretRole::arn_for`]).
    /// The region of a secret's ARN is its region. Pure.
    pub fn spec(
        &self,
        user_account: &str,
        secret_role: Option<&SecretRole>,
        own_role: Option<(&str, Option<&str>)>,
    ) -> DestinationSpec {
        let own = own_role.map(|(arn, id)| (arn.to_string(), id.map(str::to_string)));
        match self {
            Binding::SecretsManager(id) => {
                let by_secret_role = secret_role
                    .and_then(|r| Some((r.arn_for(id, user_account)?, r.external_id.clone())));
                let (role, external_id) = by_secret_role.or(own).unzip();
                DestinationSpec::SecretsManager {
                    secret_id: id.clone(),
                    region: region_of_arn(id).map(str::to_string),
                    role,
                    external_id: external_id.flatten(),
                    rotation_token: None,
                }
            }
            Binding::Ssm(path) => {
                let (role, external_id) = own.unzip();
                DestinationSpec::Ssm {
                    path: path.trim_end_matches('/').to_string(),
                    form: None,
                    region: None,
                    role,
                    external_id: external_id.flatten(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CENTRAL: &str = "arn:aws:secretsmanager:eu-west-1:333333333333:secret:ci/bot-AbCdEf";
    const ENTERED: &str = "arn:aws:iam::222222222222:role/OrganizationAccountAccessRole";

    fn secret_role() -> SecretRole {
        SecretRole {
            role: "SecretsWriter".into(),
            external_id: Some("x-1".into()),
        }
    }

    #[test]
    fn a_binding_is_reached_through_the_role_its_account_was_entered_with() {
        let own = Some((ENTERED, Some("ext")));
        assert_eq!(
            Binding::Ssm("/ci/bot/".into()).spec("222222222222", None, own),
            DestinationSpec::Ssm {
                path: "/ci/bot".into(),
                form: None,
                region: None,
                role: Some(ENTERED.into()),
                external_id: Some("ext".into()),
            }
        );
        assert_eq!(
            Binding::SecretsManager("ci/bot".into()).spec("222222222222", None, None),
            DestinationSpec::SecretsManager {
                secret_id: "ci/bot".into(),
                region: None,
                role: None,
                external_id: None,
                rotation_token: None,
            }
        );
    }

    #[test]
    fn a_secret_of_another_account_is_reached_through_the_secret_role_there() {
        let secret = Binding::SecretsManager(CENTRAL.into());
        let own = Some((ENTERED, None));
        assert_eq!(
            secret.spec("222222222222", Some(&secret_role()), own),
            DestinationSpec::SecretsManager {
                secret_id: CENTRAL.into(),
                region: Some("eu-west-1".into()),
                role: Some("arn:aws:iam::333333333333:role/SecretsWriter".into()),
                external_id: Some("x-1".into()),
                rotation_token: None,
            }
        );
        // In the user's own account the secret role is not for it.
        let DestinationSpec::SecretsManager { role, .. } =
            secret.spec("333333333333", Some(&secret_role()), own)
        else {
            panic!()
        };
        assert_eq!(role.as_deref(), Some(ENTERED));
    }
}
