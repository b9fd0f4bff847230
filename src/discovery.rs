//! Which accounts to audit, and how to get credentials for each: named
//! profiles, an account list entered through a role, or every active account
//! of an AWS Organization (optionally narrowed to OUs). Selectors combine;
//! an account reached twice is audited once, preferring the most direct
//! credentials (a profile, then the base credentials, then a role).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use aws_config::SdkConfig;

use crate::aws::{
    AccountClients, AwsOptions, Identity, caller_identity, credential_sources,
    credentials_misconfigured, found_no_credentials, load_config, sdk_unreadable_lines,
};
use crate::awsfiles::{BOM, ProfileKind, Profiles};
use crate::error::{CallError, FailureKind, InputError, Origin};
use crate::model::is_account_id;
use crate::request::{Names, Setting};

/// The accounts the user asked for, before any AWS call.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub profiles: Vec<String>,
    pub accounts: Vec<String>,
    pub org: bool,
    pub ous: Vec<String>,
    pub exclude: Vec<String>,
    pub role: Option<String>,
    pub external_id: Option<String>,
}

/// How credentials for one account are obtained.
#[derive(Debug)]
pub enum Access {
    /// Credentials in hand (a profile, or the base credentials).
    Ready {
        config: Box<SdkConfig>,
        identity: Identity,
        /// The profile they come from (the first, when several reach one
        /// account); None for the base credentials. A rotation journals it,
        /// so a later run resumes with the same credentials.
        profile: Option<String>,
    },
    /// AssumeRole from the base credentials.
    AssumeRole {
        role_arn: String,
        external_id: Option<String>,
        partition: String,
    },
    /// The profile's credentials did not work; reported, not audited.
    Failed(CallError),
}

/// One account to audit.
#[derive(Debug)]
pub struct Target {
    pub account_id: Option<String>,
    pub name: Option<String>,
    pub via: String,
    pub access: Access,
}

/// The resolved selection.
#[derive(Debug, Default)]
pub struct Discovery {
    /// The base credentials' configuration, when roles are assumed from it.
    pub base: Option<SdkConfig>,
    pub targets: Vec<Target>,
}

/// Reads an accounts file: one 12-digit ID per line, `#` starts a comment.
pub fn read_accounts_file(path: &Path) -> Result<Vec<String>, InputError> {
    let text = std::fs::read_to_string(path).map_err(|source| InputError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    // Invisible in most editors, and otherwise reported as a bad ID.
    if text.starts_with(BOM) {
        return Err(InputError::ByteOrderMark {
            path: path.to_path_buf(),
        });
    }
    let mut ids = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let id = line.split('#').next().unwrap_or("").trim();
        if id.is_empty() {
            continue;
        }
        if !is_account_id(id) {
            return Err(InputError::BadAccountId {
                origin: Origin::Line {
                    path: path.to_path_buf(),
                    line: n + 1,
                },
                value: id.to_string(),
            });
        }
        ids.push(id.to_string());
    }
    Ok(ids)
}

/// Checks everything that can be checked without AWS; an error names the
/// option as `names` says the front end calls it.
pub fn validate(sel: &Selection, profiles: &Profiles, names: Names) -> Result<(), InputError> {
    check_account_ids(&sel.accounts, &names(Setting::Accounts))?;
    check_account_ids(&sel.exclude, &names(Setting::ExcludeAccounts))?;
    if !sel.ous.is_empty() && !sel.org {
        return Err(InputError::OusWithoutOrg {
            origin: names(Setting::Ous),
            org: names(Setting::Org),
        });
    }
    if !sel.accounts.is_empty() && sel.role.is_none() {
        return Err(InputError::RoleRequired {
            origin: Origin::AnyOf(vec![names(Setting::Accounts), names(Setting::AccountsFile)]),
            role: names(Setting::Role),
        });
    }
    if let Some(role) = &sel.role {
        let ok = !role.is_empty()
            && !role.starts_with('/')
            && role
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c));
        if !ok {
            return Err(InputError::BadRoleName {
                origin: names(Setting::Role),
                role: role.clone(),
            });
        }
    }
    for name in &sel.profiles {
        check_profile(profiles, name)?;
    }
    if let Ok(name) = std::env::var("AWS_PROFILE")
        && needs_base(sel)
        && !name.is_empty()
    {
        check_profile(profiles, &name)?;
    }
    Ok(())
}

/// Every ID must be 12 digits; `origin` says where they were written (an
/// option, a file), so the error names what the user typed.
pub fn check_account_ids(ids: &[String], origin: &Origin) -> Result<(), InputError> {
    match ids.iter().find(|id| !is_account_id(id)) {
        Some(bad) => Err(InputError::BadAccountId {
            origin: origin.clone(),
            value: bad.clone(),
        }),
        None => Ok(()),
    }
}

/// An unknown profile, or one that cannot yield credentials, is bad input.
pub fn check_profile(profiles: &Profiles, name: &str) -> Result<(), InputError> {
    let Some(profile) = profiles.get(name) else {
        return Err(InputError::UnknownProfile {
            profile: name.to_string(),
            files: format!(
                "{} and {}",
                profiles.credentials().path().display(),
                profiles.config().path().display()
            ),
            known: profiles.names_for_message(),
        });
    };
    if matches!(profile.kind()?, ProfileKind::NoCredentials) {
        return Err(InputError::ProfileWithoutCredentials {
            profile: name.to_string(),
        });
    }
    Ok(())
}

fn needs_base(sel: &Selection) -> bool {
    sel.org || !sel.accounts.is_empty() || sel.profiles.is_empty()
}

/// Turns an early failure into bad input: nothing has been audited yet, so
/// missing credentials, an unreachable endpoint or dead base credentials
/// stop the run.
fn fatal(e: CallError, opts: &AwsOptions, profile: Option<String>) -> InputError {
    if found_no_credentials(&e) {
        // The SDK's own error is a dump of every provider it tried; where
        // it looked is what the user can act on (issue 9, item 9).
        return InputError::NoCredentials {
            looked_in: credential_sources(profile.as_deref()),
        };
    }
    if credentials_misconfigured(&e) {
        // The SDK reports this as a failed dispatch, which would read as an
        // unreachable endpoint; the fault is in the files.
        let lines = sdk_unreadable_lines();
        return if lines.is_empty() {
            InputError::CredentialsMisconfigured { source: e }
        } else {
            InputError::SdkUnreadableFiles { lines }
        };
    }
    match e.kind() {
        FailureKind::Unreachable => InputError::Unreachable {
            endpoint: opts.endpoint(),
            endpoint_from: None,
            source: e,
        },
        _ => InputError::BaseCredentials { profile, source: e },
    }
}

/// Resolves the selection into targets, with as few calls as possible:
/// GetCallerIdentity per profile and for the base credentials, and
/// Organizations listings for `--org`.
pub async fn discover(sel: &Selection, opts: &AwsOptions) -> Result<Discovery, InputError> {
    discover_with(sel, opts, None).await
}

/// [`discover`], the base credentials' configuration given (`base`: a
/// caller that loaded it once, the Lambda; None: loaded here, from the
/// default chain).
pub async fn discover_with(
    sel: &Selection,
    opts: &AwsOptions,
    base: Option<&SdkConfig>,
) -> Result<Discovery, InputError> {
    let (mut by_account, failed) = profile_targets(sel, opts).await?;
    let mut base_config = None;
    if needs_base(sel) {
        base_config = Some(base_targets(sel, opts, base, &mut by_account).await?);
    }
    for id in &sel.exclude {
        by_account.remove(id);
    }
    let mut targets: Vec<Target> = by_account.into_values().collect();
    targets.extend(failed);
    Ok(Discovery {
        base: base_config,
        targets,
    })
}

/// The accounts of the selected profiles, by account ID, and the profiles
/// whose credentials did not work.
async fn profile_targets(
    sel: &Selection,
    opts: &AwsOptions,
) -> Result<(BTreeMap<String, Target>, Vec<Target>), InputError> {
    let mut by_account: BTreeMap<String, Target> = BTreeMap::new();
    let mut profiles_of: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut failed = Vec::new();
    for name in &sel.profiles {
        let config = load_config(Some(name), opts).await;
        let clients = AccountClients::new(&config);
        match caller_identity(&clients.sts).await {
            Ok(identity) => {
                let id = identity.account_id.clone();
                // Two profiles of one account: audited once, with the first
                // profile's credentials, and labelled with both (issue 10 #1).
                let names = profiles_of.entry(id.clone()).or_default();
                names.push(name);
                let target = by_account.entry(id.clone()).or_insert(Target {
                    account_id: Some(id),
                    name: None,
                    via: String::new(),
                    access: Access::Ready {
                        config: Box::new(config),
                        identity,
                        profile: Some(name.clone()),
                    },
                });
                target.via = profiles_label(names);
            }
            Err(e) if e.kind() == FailureKind::Unreachable => {
                return Err(fatal(e, opts, Some(name.clone())));
            }
            Err(e) => failed.push(Target {
                account_id: None,
                name: None,
                via: format!("profile {name}"),
                access: Access::Failed(e),
            }),
        }
    }
    Ok((by_account, failed))
}

/// Adds the accounts the base credentials reach to `by_account` (those a
/// profile reaches keep the profile): their own, the listed ones and the
/// organization's, each but their own through the role. Returns the base
/// credentials' configuration.
async fn base_targets(
    sel: &Selection,
    opts: &AwsOptions,
    base: Option<&SdkConfig>,
    by_account: &mut BTreeMap<String, Target>,
) -> Result<SdkConfig, InputError> {
    let base_profile = std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty());
    let config = match base {
        Some(config) => config.clone(),
        None => load_config(None, opts).await,
    };
    let clients = AccountClients::new(&config);
    let identity = caller_identity(&clients.sts)
        .await
        .map_err(|e| fatal(e, opts, base_profile.clone()))?;
    let partition = identity.partition.clone();
    let base_id = identity.account_id.clone();
    let mut wanted: BTreeMap<String, Option<String>> =
        sel.accounts.iter().map(|a| (a.clone(), None)).collect();
    if sel.org {
        for (id, name) in org_accounts(&config, &sel.ous).await? {
            wanted.insert(id, Some(name));
        }
    }
    if sel.profiles.is_empty() && wanted.is_empty() {
        wanted.insert(base_id.clone(), None);
    }
    let excluded: BTreeSet<&String> = sel.exclude.iter().collect();
    let role = sel
        .role
        .clone()
        .unwrap_or_else(|| "OrganizationAccountAccessRole".into());
    for (id, name) in wanted {
        if excluded.contains(&id) || by_account.contains_key(&id) {
            continue;
        }
        let target = if id == base_id {
            Target {
                account_id: Some(id.clone()),
                name,
                via: "base credentials".into(),
                access: Access::Ready {
                    config: Box::new(config.clone()),
                    identity: identity.clone(),
                    profile: None,
                },
            }
        } else {
            Target {
                account_id: Some(id.clone()),
                name,
                via: format!("role {role}"),
                access: Access::AssumeRole {
                    role_arn: format!("arn:{partition}:iam::{id}:role/{role}"),
                    external_id: sel.external_id.clone(),
                    partition: partition.clone(),
                },
            }
        };
        by_account.insert(id, target);
    }
    Ok(config)
}

/// `profile dev`, or `profiles dev, dev2` when both reach one account.
fn profiles_label(names: &[&str]) -> String {
    match names {
        [one] => format!("profile {one}"),
        many => format!("profiles {}", many.join(", ")),
    }
}

/// Every ACTIVE account of the organization, or of the given OUs and the
/// OUs below them.
async fn org_accounts(
    config: &SdkConfig,
    ous: &[String],
) -> Result<Vec<(String, String)>, InputError> {
    let org = aws_sdk_organizations::Client::new(config);
    let wrap = |source| InputError::Organizations { source };
    let pages: Vec<_> = org
        .list_accounts()
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| wrap(CallError::from_sdk("organizations:ListAccounts", e)))?;
    let active: BTreeMap<String, String> = pages
        .iter()
        .flat_map(|p| p.accounts())
        .filter(|a| is_active(a))
        .filter_map(|a| {
            Some((
                a.id()?.to_string(),
                a.name().unwrap_or_default().to_string(),
            ))
        })
        .collect();
    if ous.is_empty() {
        return Ok(active.into_iter().collect());
    }
    let mut inside = BTreeSet::new();
    let mut queue: Vec<String> = ous.to_vec();
    while let Some(parent) = queue.pop() {
        let accounts: Vec<_> = org
            .list_accounts_for_parent()
            .parent_id(&parent)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| {
                wrap(CallError::from_sdk(
                    "organizations:ListAccountsForParent",
                    e,
                ))
            })?;
        inside.extend(
            accounts
                .iter()
                .flat_map(|p| p.accounts())
                .filter_map(|a| a.id().map(str::to_string)),
        );
        let children: Vec<_> = org
            .list_organizational_units_for_parent()
            .parent_id(&parent)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| {
                wrap(CallError::from_sdk(
                    "organizations:ListOrganizationalUnitsForParent",
                    e,
                ))
            })?;
        queue.extend(
            children
                .iter()
                .flat_map(|p| p.organizational_units())
                .filter_map(|ou| ou.id().map(str::to_string)),
        );
    }
    Ok(active
        .into_iter()
        .filter(|(id, _)| inside.contains(id))
        .collect())
}

fn is_active(a: &aws_sdk_organizations::types::Account) -> bool {
    use aws_sdk_organizations::types::{AccountState, AccountStatus};
    match (a.state(), a.status()) {
        (Some(state), _) => *state == AccountState::Active,
        (None, Some(status)) => *status == AccountStatus::Active,
        (None, None) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_file_skips_comments_and_names_the_bad_line() {
        let dir = std::env::temp_dir().join(format!("rekey-acct-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good");
        std::fs::write(&good, "# prod\n111111111111  # main\n\n222222222222\n").unwrap();
        assert_eq!(
            read_accounts_file(&good).unwrap(),
            vec!["111111111111", "222222222222"]
        );
        let bad = dir.join("bad");
        std::fs::write(&bad, "111111111111\n12345\n").unwrap();
        let err = read_accounts_file(&bad).unwrap_err().to_string();
        assert!(err.contains(":2") && err.contains("12345"), "{err}");
        let bom = dir.join("bom");
        std::fs::write(&bom, "\u{feff}111111111111\n").unwrap();
        let err = read_accounts_file(&bom).unwrap_err().to_string();
        assert!(err.contains("byte-order mark (BOM)"), "{err}");
    }
}
