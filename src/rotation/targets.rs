//! Which keys `rekey rotate --profile …` rotates: each requested profile is
//! followed to the profile whose static key it uses (a role profile's
//! `source_profile`), and profiles holding the same key are grouped, so one
//! new key replaces it everywhere. Pure: reads parsed files, calls nothing.

use std::collections::BTreeMap;

use crate::awsfiles::{FileKind, ProfileKind, Profiles};

/// One key to rotate and every profile of the credentials file holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTarget {
    pub access_key_id: String,
    /// The profile whose settings (region, endpoint) the IAM calls use.
    pub holder: String,
    /// Every profile of the credentials file holding the key, file order.
    pub profiles: Vec<String>,
    /// Every profile of the config file holding it too: the AWS CLI reads
    /// keys from there as well, so they are rewritten with the rest
    /// (issue 9 #4).
    pub config_profiles: Vec<String>,
    /// The profiles the user named that led here.
    pub requested: Vec<String>,
    /// IAM calls must be made under an MFA session with this device.
    pub mfa_serial: Option<String>,
}

/// Why a profile cannot be rotated.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("profile `{profile}` not found; known profiles: {known}")]
    Unknown { profile: String, known: String },
    #[error(
        "profile `{profile}` holds temporary credentials (aws_session_token); only long-term access keys can be rotated"
    )]
    SessionToken { profile: String },
    #[error(
        "profile `{profile}` uses AWS SSO; its credentials are short-lived and need no rotation"
    )]
    Sso { profile: String },
    #[error(
        "profile `{profile}` gets credentials from credential_process; rotate them where that process reads them"
    )]
    CredentialProcess { profile: String },
    #[error("profile `{profile}` uses a web identity token; there is no access key to rotate")]
    WebIdentity { profile: String },
    #[error(
        "profile `{profile}` assumes a role with credential_source; there is no access key to rotate"
    )]
    CredentialSource { profile: String },
    #[error("profile `{profile}` has no access key")]
    NoKeys { profile: String },
    #[error(
        "profile `{profile}`'s access key is in the config file; rekey rotates keys in the credentials file only — move it there"
    )]
    KeysInConfigFile { profile: String },
    #[error("no profile of the credentials file holds static access keys")]
    NothingToRotate,
    #[error(transparent)]
    File(#[from] crate::awsfiles::FileError),
}

impl TargetError {
    /// The profile that was not found, or holds no key: what a file moved
    /// away mid-rotation looks like.
    pub fn missing_profile(&self) -> Option<&str> {
        match self {
            TargetError::Unknown { profile, .. } | TargetError::NoKeys { profile } => Some(profile),
            _ => None,
        }
    }
}

/// Resolves the requested profiles (or, with `all`, every profile of the
/// credentials file with static keys) into keys to rotate.
pub fn resolve(
    profiles: &Profiles,
    requested: &[String],
    all: bool,
) -> Result<Vec<KeyTarget>, TargetError> {
    let names: Vec<String> = if all {
        let statics: Vec<String> = profiles
            .credentials()
            .profile_names()
            .filter(|n| {
                profiles
                    .get(n)
                    .is_some_and(|p| matches!(p.kind(), Ok(ProfileKind::StaticKeys)))
            })
            .map(str::to_string)
            .collect();
        if statics.is_empty() {
            return Err(TargetError::NothingToRotate);
        }
        statics
    } else {
        requested.to_vec()
    };
    let mut by_key: BTreeMap<String, KeyTarget> = BTreeMap::new();
    let mut order = Vec::new();
    for name in &names {
        let (holder, mfa) = key_holder(profiles, name)?;
        let profile = profiles.get(&holder).ok_or_else(|| TargetError::NoKeys {
            profile: holder.clone(),
        })?;
        let key_id = profile
            .get("aws_access_key_id")
            .ok_or_else(|| TargetError::NoKeys {
                profile: holder.clone(),
            })?
            .to_string();
        let holding = profiles.holding_key(&key_id);
        if holding.is_empty() {
            return Err(TargetError::KeysInConfigFile { profile: holder });
        }
        let entry = by_key.entry(key_id.clone()).or_insert_with(|| {
            order.push(key_id.clone());
            KeyTarget {
                access_key_id: key_id.clone(),
                holder: holder.clone(),
                profiles: holding,
                config_profiles: profiles.holding_key_in_config(&key_id),
                requested: vec![],
                mfa_serial: None,
            }
        });
        if !entry.requested.contains(name) {
            entry.requested.push(name.clone());
        }
        if entry.mfa_serial.is_none() {
            entry.mfa_serial = mfa;
        }
    }
    Ok(order
        .into_iter()
        .filter_map(|k| by_key.remove(&k))
        .collect())
}

/// The profile whose static key `name` uses, and the MFA device its calls
/// need (the requested profile's `mfa_serial`, else the holder's).
fn key_holder(profiles: &Profiles, name: &str) -> Result<(String, Option<String>), TargetError> {
    let Some(profile) = profiles.get(name) else {
        return Err(TargetError::Unknown {
            profile: name.to_string(),
            known: profiles.names_for_message(),
        });
    };
    let own_mfa = profile.mfa_serial().map(str::to_string);
    let chain = profiles.source_chain(name)?;
    let holder_name = chain.last().cloned().unwrap_or_else(|| name.to_string());
    let holder = profiles
        .get(&holder_name)
        .ok_or_else(|| TargetError::NoKeys {
            profile: holder_name.clone(),
        })?;
    let p = holder_name.clone();
    match holder.kind()? {
        ProfileKind::StaticKeys => {}
        ProfileKind::AssumeRole { .. } if holder.get("aws_access_key_id").is_some() => {}
        ProfileKind::SessionToken => return Err(TargetError::SessionToken { profile: p }),
        ProfileKind::Sso => return Err(TargetError::Sso { profile: p }),
        ProfileKind::CredentialProcess => {
            return Err(TargetError::CredentialProcess { profile: p });
        }
        ProfileKind::WebIdentity => return Err(TargetError::WebIdentity { profile: p }),
        ProfileKind::AssumeRole { .. } => return Err(TargetError::CredentialSource { profile: p }),
        ProfileKind::NoCredentials => return Err(TargetError::NoKeys { profile: p }),
    }
    let in_credentials_file = profiles
        .credentials()
        .profile_names()
        .any(|n| n == holder_name);
    if !in_credentials_file || profiles.credentials().kind() != FileKind::Credentials {
        return Err(TargetError::KeysInConfigFile {
            profile: holder_name,
        });
    }
    let mfa = own_mfa.or_else(|| holder.mfa_serial().map(str::to_string));
    Ok((holder_name, mfa))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::awsfiles::SharedFile;
    use std::path::Path;

    fn load(credentials: &str, config: &str) -> Profiles {
        Profiles::from_files(
            SharedFile::parse(Path::new("credentials"), credentials).unwrap(),
            SharedFile::parse_as(FileKind::Config, Path::new("config"), config).unwrap(),
        )
    }

    const CREDS: &str = "[dev]\naws_access_key_id = AKIADEVDEVDEVDEV0001\naws_secret_access_key = s1\n\
[dev-copy]\naws_access_key_id = AKIADEVDEVDEVDEV0001\naws_secret_access_key = s1\n\
[ops]\naws_access_key_id = AKIAOPSOPSOPSOPS0002\naws_secret_access_key = s2\n\
[temp]\naws_access_key_id = ASIATEMPTEMPTEMP0003\naws_secret_access_key = s3\naws_session_token = t\n";

    const CONFIG: &str = "[profile admin]\nrole_arn = arn:aws:iam::111111111111:role/Admin\nsource_profile = ops\nmfa_serial = arn:aws:iam::222222222222:mfa/ops\n\
[profile sso]\nsso_session = corp\nsso_account_id = 111111111111\nsso_role_name = R\n\
[profile proc]\ncredential_process = /bin/creds\n\
[profile bare]\nregion = eu-west-1\n";

    #[test]
    fn profiles_sharing_a_key_are_one_target() {
        let t = resolve(
            &load(CREDS, CONFIG),
            &["dev".into(), "dev-copy".into()],
            false,
        )
        .unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].profiles, ["dev", "dev-copy"]);
        assert_eq!(t[0].requested, ["dev", "dev-copy"]);
    }

    #[test]
    fn a_role_profile_rotates_its_source_with_its_mfa() {
        let t = resolve(&load(CREDS, CONFIG), &["admin".into()], false).unwrap();
        assert_eq!(t[0].holder, "ops");
        assert_eq!(t[0].access_key_id, "AKIAOPSOPSOPSOPS0002");
        assert_eq!(
            t[0].mfa_serial.as_deref(),
            Some("arn:aws:iam::222222222222:mfa/ops")
        );
    }

    #[test]
    fn the_same_key_in_the_config_file_is_rewritten_too() {
        let config = format!(
            "{CONFIG}[profile legacy]\naws_access_key_id = AKIADEVDEVDEVDEV0001\naws_secret_access_key = s1\n"
        );
        let t = resolve(&load(CREDS, &config), &["dev".into()], false).unwrap();
        assert_eq!(t[0].profiles, ["dev", "dev-copy"]);
        assert_eq!(t[0].config_profiles, ["legacy"]);
    }

    #[test]
    fn all_profiles_takes_static_keys_only() {
        let t = resolve(&load(CREDS, CONFIG), &[], true).unwrap();
        let ids: Vec<&str> = t.iter().map(|t| t.access_key_id.as_str()).collect();
        assert_eq!(ids, ["AKIADEVDEVDEVDEV0001", "AKIAOPSOPSOPSOPS0002"]);
    }

    #[test]
    fn unrotatable_profiles_say_why() {
        let p = load(CREDS, CONFIG);
        let err = |name: &str| resolve(&p, &[name.to_string()], false).unwrap_err();
        assert!(matches!(err("temp"), TargetError::SessionToken { .. }));
        assert!(matches!(err("sso"), TargetError::Sso { .. }));
        assert!(matches!(err("proc"), TargetError::CredentialProcess { .. }));
        assert!(matches!(err("bare"), TargetError::NoKeys { .. }));
        assert!(matches!(err("ghost"), TargetError::Unknown { .. }));
        let keys_in_config = load(
            "",
            "[profile c]\naws_access_key_id = AKIACONFCONFCONF0004\naws_secret_access_key = x\n",
        );
        assert!(matches!(
            resolve(&keys_in_config, &["c".into()], false).unwrap_err(),
            TargetError::KeysInConfigFile { .. }
        ));
    }
}
