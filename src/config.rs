//! `rekey.toml`: which accounts to audit, the policy, and per-account policy
//! overrides. Command-line flags win over the file; the file wins over the
//! built-in defaults. Everything is validated before any AWS call.
//!
//! ```toml
//! [policy]
//! max_age = "90d"          # or 90
//! unused = "45d"
//! exempt_tag = "rekey:exempt"
//! exempt_groups = ["break-glass"]
//! exempt_users = ["svc-legacy-*", "/system/*"]
//!
//! [audit]
//! org = true
//! role = "OrganizationAccountAccessRole"
//! source = "report"
//! concurrency = 32
//!
//! [accounts."111111111111"]   # overrides for one account
//! max_age = "30d"
//!
//! [rotate]                     # defaults of `rekey rotate --service`
//! secret_role = "SecretsWriter" # reaches secrets named by an ARN of another account
//! secret_external_id = "..."
//!
//! [[service]]                  # a service user bound to its destinations
//! account = "111111111111"
//! user = "ci-bot"
//! to = ["secretsmanager:ci/bot", "ssm:/ci/bot"]
//! role = "RekeyRotator"        # optional: the way into the account
//! old_key = "keep"             # optional: keep (default), deactivate, delete
//! secret_role = "arn:aws:iam::333333333333:role/SecretsWriter"  # optional
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::destination::Binding;
use crate::destination::SecretRole;
use crate::enforce::exempt::ExemptEntry;
use crate::enforce::lifecycle::{Lifecycle, OnGraceMax};
use crate::error::{InputError, Origin};
use crate::inventory::Source;
use crate::journal::OldKeyAction;
use crate::model::is_account_id;
use crate::policy::{
    DEFAULT_EXEMPT_TAG, DEFAULT_MAX_AGE_DAYS, DEFAULT_UNUSED_DAYS, Policy, parse_days,
};

/// A number of days written as `90` or `"90d"`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Days {
    Number(i64),
    Text(String),
}

impl Days {
    /// The days, written at `origin` (`rekey.toml [policy] max_age`,
    /// `--max-age`): a bad value's error names it.
    pub fn days_from(&self, origin: &Origin) -> Result<i64, InputError> {
        match self {
            Days::Number(n) => parse_days(origin, &n.to_string()),
            Days::Text(s) => parse_days(origin, s),
        }
    }
}

/// Policy settings as written; any may be absent and is then inherited.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PolicySettings {
    pub max_age: Option<Days>,
    pub unused: Option<Days>,
    pub exempt_tag: Option<String>,
    pub exempt_groups: Option<Vec<String>>,
    pub exempt_users: Option<Vec<String>>,
    /// `[accounts."ID".enforce]`: the account's lifecycle overrides.
    #[serde(default)]
    pub enforce: Option<EnforceSettings>,
}

/// `[enforce]`: the lifecycle's spans and choices (issue 17), any of which
/// may be absent and is then inherited (`[accounts."ID".enforce]` ←
/// `[enforce]` ← the defaults), and the exemptions (top level only). The
/// max age and the unused span are the policy's (`max_age`, `unused`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EnforceSettings {
    pub warn_before: Option<Days>,
    pub grace: Option<Days>,
    pub grace_max: Option<Days>,
    pub on_grace_max: Option<OnGraceMax>,
    pub deactivate_after: Option<Days>,
    pub deactivate_unused: Option<bool>,
    pub recovery: Option<Days>,
    #[serde(default)]
    pub exempt: Vec<ExemptEntry>,
}

impl EnforceSettings {
    /// `self` with every setting `over` has replaced (exemptions stay).
    pub fn overlay(&self, over: &EnforceSettings) -> EnforceSettings {
        let pick = |a: &Option<Days>, b: &Option<Days>| b.clone().or_else(|| a.clone());
        EnforceSettings {
            warn_before: pick(&self.warn_before, &over.warn_before),
            grace: pick(&self.grace, &over.grace),
            grace_max: pick(&self.grace_max, &over.grace_max),
            on_grace_max: over.on_grace_max.or(self.on_grace_max),
            deactivate_after: pick(&self.deactivate_after, &over.deactivate_after),
            deactivate_unused: over.deactivate_unused.or(self.deactivate_unused),
            recovery: pick(&self.recovery, &over.recovery),
            exempt: self.exempt.clone(),
        }
    }

    /// The lifecycle these settings make over `policy`'s max age and
    /// unused span; `origin` names where a value under a key was written.
    pub fn lifecycle(
        &self,
        policy: &Policy,
        origin: impl Fn(&str) -> Origin,
    ) -> Result<Lifecycle, InputError> {
        let base = Lifecycle::default();
        let days = |d: &Option<Days>, key: &str, default: i64| match d {
            Some(d) => d.days_from(&origin(key)),
            None => Ok(default),
        };
        Ok(Lifecycle {
            max_age_days: policy.max_age_days,
            unused_days: policy.unused_days,
            warn_before_days: days(&self.warn_before, "warn_before", base.warn_before_days)?,
            grace_days: days(&self.grace, "grace", base.grace_days)?,
            grace_max_days: days(&self.grace_max, "grace_max", base.grace_max_days)?,
            on_grace_max: self.on_grace_max.unwrap_or(base.on_grace_max),
            deactivate_after_days: days(
                &self.deactivate_after,
                "deactivate_after",
                base.deactivate_after_days,
            )?,
            deactivate_unused: self.deactivate_unused.unwrap_or(base.deactivate_unused),
            recovery_days: days(&self.recovery, "recovery", base.recovery_days)?,
        })
    }
}

impl PolicySettings {
    /// `self` with every setting `over` has replaced.
    pub fn overlay(&self, over: &PolicySettings) -> PolicySettings {
        PolicySettings {
            max_age: over.max_age.clone().or_else(|| self.max_age.clone()),
            unused: over.unused.clone().or_else(|| self.unused.clone()),
            exempt_tag: over.exempt_tag.clone().or_else(|| self.exempt_tag.clone()),
            exempt_groups: over
                .exempt_groups
                .clone()
                .or_else(|| self.exempt_groups.clone()),
            exempt_users: over
                .exempt_users
                .clone()
                .or_else(|| self.exempt_users.clone()),
            enforce: over.enforce.clone().or_else(|| self.enforce.clone()),
        }
    }

    /// Checks the values written in `table` (`[policy]`,
    /// `[accounts."ID"]`) of the file at `path`; an error names the file and
    /// the key, not the flag that would override it (issue 15).
    pub fn check_in_file(&self, path: &Path, table: &str) -> Result<(), InputError> {
        self.check(|key| Origin::file(path, format!("{table} {key}")))
    }

    /// Checks the values; `origin` says where the one under `key`
    /// (`max_age`, `unused`) was written, for the error.
    pub fn check(&self, origin: impl Fn(&str) -> Origin) -> Result<(), InputError> {
        if let Some(d) = &self.max_age {
            d.days_from(&origin("max_age"))?;
        }
        if let Some(d) = &self.unused {
            d.days_from(&origin("unused"))?;
        }
        Ok(())
    }

    /// The policy these settings make. Values are checked where they are
    /// read ([`PolicySettings::check`]); one that was not is named by its
    /// key.
    pub fn to_policy(&self) -> Result<Policy, InputError> {
        let days = |d: &Days, key: &str| d.days_from(&Origin::Flag(key.into()));
        Policy::new(
            self.max_age
                .as_ref()
                .map_or(Ok(DEFAULT_MAX_AGE_DAYS), |d| days(d, "max_age"))?,
            self.unused
                .as_ref()
                .map_or(Ok(DEFAULT_UNUSED_DAYS), |d| days(d, "unused"))?,
            self.exempt_tag
                .clone()
                .unwrap_or_else(|| DEFAULT_EXEMPT_TAG.into()),
            self.exempt_groups.clone().unwrap_or_default(),
            self.exempt_users.clone().unwrap_or_default(),
        )
    }
}

/// Which accounts to audit and how, as written in the file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    pub profiles: Option<Vec<String>>,
    pub accounts: Option<Vec<String>>,
    pub accounts_file: Option<PathBuf>,
    pub org: Option<bool>,
    pub ous: Option<Vec<String>>,
    pub exclude_accounts: Option<Vec<String>>,
    pub role: Option<String>,
    pub external_id: Option<String>,
    pub source: Option<Source>,
    pub concurrency: Option<usize>,
}

/// Defaults of `rekey rotate --service` (`[rotate]`); a flag wins.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RotateSettings {
    /// The role reaching a secret named by an ARN of another account than
    /// its user's (a name, in the secret's account, or an ARN).
    pub secret_role: Option<String>,
    pub secret_external_id: Option<String>,
}

impl RotateSettings {
    /// The secret role, if one is set.
    pub fn secret_role(&self) -> Option<SecretRole> {
        secret_role(&self.secret_role, &self.secret_external_id)
    }
}

/// One `[[service]]` entry: a service user and where its key lives.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServiceEntry {
    // Absent reads as empty, so that the entry's error can name the entry
    // and what it lacks instead of toml's `missing field` (issue 15).
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub user: String,
    /// `secretsmanager:NAME|ARN` or `ssm:/PATH`, at least one.
    #[serde(default)]
    pub to: Vec<String>,
    /// The role to enter the account with, instead of the run's.
    pub role: Option<String>,
    pub old_key: Option<OldKeyAction>,
    /// The role reaching its secrets kept in another account, instead of
    /// the run's.
    #[serde(default)]
    pub secret_role: Option<String>,
    #[serde(default)]
    pub secret_external_id: Option<String>,
}

fn secret_role(role: &Option<String>, external_id: &Option<String>) -> Option<SecretRole> {
    role.as_ref().map(|role| SecretRole {
        role: role.clone(),
        external_id: external_id.clone(),
    })
}

/// Why an external ID without its role cannot be used. Pure.
fn lone_external_id(role: &Option<String>, external_id: &Option<String>) -> Option<String> {
    (role.is_none() && external_id.is_some())
        .then(|| "secret_external_id is set without secret_role".to_string())
}

impl ServiceEntry {
    /// The destinations, parsed (checked when the file is read).
    pub fn bindings(&self) -> Vec<Binding> {
        self.to.iter().filter_map(|t| Binding::parse(t)).collect()
    }

    /// The role reaching its secrets kept in another account, if it names one.
    pub fn secret_role(&self) -> Option<SecretRole> {
        secret_role(&self.secret_role, &self.secret_external_id)
    }

    /// Why the entry cannot be used, if it cannot. Pure.
    fn problem(&self) -> Option<String> {
        if self.account.trim().is_empty() {
            return Some("no `account`: give the 12-digit ID of the user's account".into());
        }
        if self.user.trim().is_empty() {
            return Some("no `user`: give the name of the IAM user whose key it rotates".into());
        }
        if !is_account_id(&self.account) {
            return Some(format!(
                "account `{}` is not a 12-digit AWS account ID",
                self.account
            ));
        }
        if self.to.is_empty() {
            return Some("`to` names no destination".into());
        }
        if let Some(bad) = self.to.iter().find(|t| Binding::parse(t).is_none()) {
            return Some(format!(
                "`to` holds `{bad}`, which is not secretsmanager:NAME, secretsmanager:ARN or ssm:/PATH"
            ));
        }
        lone_external_id(&self.secret_role, &self.secret_external_id)
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub policy: PolicySettings,
    #[serde(default)]
    pub audit: AuditSettings,
    #[serde(default)]
    pub rotate: RotateSettings,
    /// Per-account policy overrides, keyed by account ID.
    #[serde(default)]
    pub accounts: BTreeMap<String, PolicySettings>,
    /// Service users bound to destinations (`[[service]]`).
    #[serde(default, rename = "service")]
    pub services: Vec<ServiceEntry>,
    #[serde(default)]
    pub enforce: EnforceSettings,
    /// The journal every run with this file uses: a path (relative to the
    /// file), `sqlite:PATH` or `dynamodb:TABLE[?region=R]` (issue 18).
    pub journal: Option<String>,
    /// How long a DynamoDB journal keeps finished records (`400d`, the
    /// default), unless its name says `retention=`.
    pub journal_retention: Option<String>,
    /// `[notify]`: the channels (issue 19).
    #[serde(default)]
    pub notify: crate::notify::settings::NotifySettings,
    /// `[[owner]]`: who owns which users' keys.
    #[serde(default, rename = "owner")]
    pub owners: Vec<crate::notify::owner::OwnerEntry>,
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<ConfigFile, InputError> {
        let text = std::fs::read_to_string(path).map_err(|source| InputError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut file = Self::parse(path, &text)?;
        // A path in the file is relative to the file, as in other tools'
        // config files, not to wherever rekey runs (issue 10 #6).
        if let Some(accounts) = &mut file.audit.accounts_file {
            *accounts = relative_to(path, accounts);
        }
        Ok(file)
    }

    pub fn parse(path: &Path, text: &str) -> Result<ConfigFile, InputError> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| {
            // toml renders a multi-line snippet; one line with a position
            // reads better in a terminal and in logs.
            let offset = e.span().map_or(0, |s| s.start).min(text.len());
            let before = &text[..offset];
            InputError::BadConfig {
                path: path.to_path_buf(),
                line: before.matches('\n').count() + 1,
                column: offset - before.rfind('\n').map_or(0, |i| i + 1) + 1,
                message: e.message().to_string(),
            }
        })?;
        for id in file.accounts.keys() {
            if !is_account_id(id) {
                return Err(InputError::BadAccountId {
                    origin: Origin::file(path, "[accounts]"),
                    value: id.clone(),
                });
            }
        }
        file.policy.check_in_file(path, "[policy]")?;
        for (id, over) in &file.accounts {
            over.check_in_file(path, &format!("[accounts.\"{id}\"]"))?;
        }
        file.check_enforce(path, text)?;
        if file.audit.concurrency == Some(0) {
            return Err(InputError::ZeroCount {
                origin: Origin::file(path, "[audit] concurrency"),
            });
        }
        if let Some(why) =
            lone_external_id(&file.rotate.secret_role, &file.rotate.secret_external_id)
        {
            let table = text
                .lines()
                .position(|l| l.trim_start().starts_with("[rotate]"));
            return Err(InputError::BadConfig {
                path: path.to_path_buf(),
                line: table.map_or(1, |i| i + 1),
                column: 1,
                message: format!("[rotate]: {why}"),
            });
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, entry) in file.services.iter().enumerate() {
            let bad = |why: String| InputError::BadServiceEntry {
                path: path.to_path_buf(),
                number: i + 1,
                account: entry.account.clone(),
                user: entry.user.clone(),
                why,
            };
            if let Some(why) = entry.problem() {
                return Err(bad(why));
            }
            if !seen.insert((&entry.account, &entry.user)) {
                return Err(bad(format!(
                    "user {} of account {} has an earlier entry; put all its destinations in one `to`",
                    entry.user, entry.account
                )));
            }
        }
        Ok(file)
    }
}

impl ConfigFile {
    /// `[enforce]` and each `[accounts."ID".enforce]`, checked up front:
    /// a bad span is named as written, exemptions only at the top.
    fn check_enforce(&self, path: &Path, text: &str) -> Result<(), InputError> {
        // The line a table starts on (1 when it cannot be found).
        let line_of = |header: &str, nth: usize| {
            (text.lines().enumerate())
                .filter(|(_, l)| l.trim_start().starts_with(header))
                .nth(nth)
                .map_or(1, |(i, _)| i + 1)
        };
        let at = |table: String| move |key: &str| Origin::file(path, format!("{table} {key}"));
        let policy = Policy::default();
        self.enforce.lifecycle(&policy, at("[enforce]".into()))?;
        if self.policy.enforce.is_some() {
            return Err(InputError::BadConfig {
                path: path.to_path_buf(),
                line: line_of("[policy.enforce]", 0),
                column: 1,
                message: "[policy.enforce]: write the lifecycle in [enforce]".into(),
            });
        }
        crate::enforce::exempt::Exemptions::new(&self.enforce.exempt).map_err(|e| {
            let crate::enforce::exempt::ExemptError::Entry { number, .. } = &e else {
                unreachable!("entries give entry errors")
            };
            InputError::BadConfig {
                path: path.to_path_buf(),
                line: line_of("[[enforce.exempt]]", number - 1),
                column: 1,
                message: e.to_string(),
            }
        })?;
        for (id, over) in &self.accounts {
            let Some(e) = &over.enforce else { continue };
            let table = format!("[accounts.\"{id}\".enforce]");
            if !e.exempt.is_empty() {
                return Err(InputError::BadConfig {
                    path: path.to_path_buf(),
                    line: line_of(&format!("[[accounts.\"{id}\".enforce.exempt]]"), 0),
                    column: 1,
                    message: format!(
                        "{table}: exemptions go in [[enforce.exempt]], with account = \"{id}\""
                    ),
                });
            }
            self.enforce.overlay(e).lifecycle(&policy, at(table))?;
        }
        Ok(())
    }

    /// The lifecycle of every account: the policy's max age and unused
    /// span (as `policies` resolved them) with `[enforce]` and the
    /// account's `[accounts."ID".enforce]` over the defaults.
    pub fn lifecycles(&self, policies: &Policies) -> Result<Lifecycles, InputError> {
        let none = |_: &str| Origin::Flag("[enforce]".into());
        let default = self.enforce.lifecycle(policies.for_account(None), none)?;
        let mut per_account = BTreeMap::new();
        for (id, over) in &self.accounts {
            let settings = match &over.enforce {
                Some(e) => self.enforce.overlay(e),
                None => self.enforce.clone(),
            };
            per_account.insert(
                id.clone(),
                settings.lifecycle(policies.for_account(Some(id)), none)?,
            );
        }
        Ok(Lifecycles {
            default,
            per_account,
        })
    }
}

/// The lifecycle of every account.
#[derive(Debug, Clone, Default)]
pub struct Lifecycles {
    default: Lifecycle,
    per_account: BTreeMap<String, Lifecycle>,
}

impl Lifecycles {
    pub fn for_account(&self, account_id: &str) -> &Lifecycle {
        self.per_account.get(account_id).unwrap_or(&self.default)
    }
}

/// `path` as written in the config file at `file`: relative paths hang from
/// the file's directory.
fn relative_to(file: &Path, path: &Path) -> PathBuf {
    match file.parent() {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_path_buf(),
    }
}

/// How old a key must be before `rotate --service` rotates it, as
/// rekey.toml says: `max_age` of the account's `[accounts."ID"]`, else of
/// `[policy]`; None where neither sets one (every bound key is rotated).
/// Unlike audit's policy there is no default: a rotation is due when asked
/// for, unless a max age says otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaxAges {
    default: Option<i64>,
    per_account: BTreeMap<String, i64>,
}

impl MaxAges {
    pub fn for_account(&self, account_id: Option<&str>) -> Option<i64> {
        account_id
            .and_then(|id| self.per_account.get(id).copied())
            .or(self.default)
    }
}

impl ConfigFile {
    /// Every `max_age` of the file (read from `path`), checked up front: a
    /// bad one is named as written there (`[policy] max_age`), with the
    /// file.
    pub fn max_ages(&self, path: &Path) -> Result<MaxAges, InputError> {
        let days = |key: String, d: &Days| d.days_from(&Origin::file(path, key));
        let default = match &self.policy.max_age {
            Some(d) => Some(days("[policy] max_age".into(), d)?),
            None => None,
        };
        let mut per_account = BTreeMap::new();
        for (id, o) in &self.accounts {
            if let Some(d) = &o.max_age {
                per_account.insert(id.clone(), days(format!("[accounts.\"{id}\"] max_age"), d)?);
            }
        }
        Ok(MaxAges {
            default,
            per_account,
        })
    }
}

/// The policy of every account: defaults ← file ← per-account file
/// override ← command-line flags.
#[derive(Debug, Clone, Default)]
pub struct Policies {
    default: Policy,
    per_account: BTreeMap<String, Policy>,
}

impl Policies {
    /// Resolves and validates every combination up front, so a bad value in
    /// any override is reported before anything runs.
    pub fn resolve(file: &ConfigFile, flags: &PolicySettings) -> Result<Policies, InputError> {
        let default = file.policy.overlay(flags).to_policy()?;
        let per_account = file
            .accounts
            .iter()
            .map(|(id, o)| {
                Ok((
                    id.clone(),
                    file.policy.overlay(o).overlay(flags).to_policy()?,
                ))
            })
            .collect::<Result<_, InputError>>()?;
        Ok(Policies {
            default,
            per_account,
        })
    }

    pub fn for_account(&self, account_id: Option<&str>) -> &Policy {
        account_id
            .and_then(|id| self.per_account.get(id))
            .unwrap_or(&self.default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfigFile, InputError> {
        ConfigFile::parse(Path::new("rekey.toml"), text)
    }

    #[test]
    fn flags_win_over_account_overrides_which_win_over_the_file() {
        let file = parse(
            r#"
            [policy]
            max_age = "60d"
            unused = 30
            [accounts."111111111111"]
            max_age = 10
            "#,
        )
        .unwrap();
        let p = Policies::resolve(&file, &PolicySettings::default()).unwrap();
        assert_eq!(p.for_account(Some("222222222222")).max_age_days, 60);
        assert_eq!(p.for_account(Some("111111111111")).max_age_days, 10);
        assert_eq!(p.for_account(Some("111111111111")).unused_days, 30);
        let flags = PolicySettings {
            max_age: Some(Days::Text("5d".into())),
            ..Default::default()
        };
        let p = Policies::resolve(&file, &flags).unwrap();
        assert_eq!(p.for_account(Some("111111111111")).max_age_days, 5);
    }

    #[test]
    fn accounts_file_is_relative_to_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("conf/rekey.toml");
        std::fs::create_dir_all(conf.parent().unwrap()).unwrap();
        std::fs::write(&conf, "[audit]\naccounts_file = \"ids.txt\"\n").unwrap();
        let file = ConfigFile::load(&conf).unwrap();
        assert_eq!(
            file.audit.accounts_file,
            Some(dir.path().join("conf/ids.txt"))
        );
        std::fs::write(&conf, "[audit]\naccounts_file = \"/etc/ids.txt\"\n").unwrap();
        let file = ConfigFile::load(&conf).unwrap();
        assert_eq!(
            file.audit.accounts_file,
            Some(PathBuf::from("/etc/ids.txt"))
        );
    }

    #[test]
    fn a_byte_order_mark_is_read_past_as_toml_allows() {
        let file = parse("\u{feff}[policy]\nmax_age = 30\n").unwrap();
        assert_eq!(file.policy.max_age, Some(Days::Number(30)));
    }

    #[test]
    fn service_entries_bind_users_to_destinations() {
        let file = parse(
            r#"
            [[service]]
            account = "111111111111"
            user = "ci-bot"
            to = ["secretsmanager:ci/bot", "ssm:/ci/bot"]
            [[service]]
            account = "222222222222"
            user = "ci-bot"
            to = ["ssm:/x"]
            role = "Rotator"
            old_key = "deactivate"
            "#,
        )
        .unwrap();
        assert_eq!(file.services.len(), 2);
        assert_eq!(
            file.services[0].bindings(),
            vec![
                Binding::SecretsManager("ci/bot".into()),
                Binding::Ssm("/ci/bot".into())
            ]
        );
        assert_eq!(file.services[0].old_key, None);
        assert_eq!(file.services[1].role.as_deref(), Some("Rotator"));
        assert_eq!(file.services[1].old_key, Some(OldKeyAction::Deactivate));
        assert_eq!(file.services[1].secret_role(), None);
    }

    #[test]
    fn the_secret_role_is_set_per_entry_or_for_every_service_user() {
        let file = parse(
            r#"
            [rotate]
            secret_role = "SecretsWriter"
            [[service]]
            account = "111111111111"
            user = "ci-bot"
            to = ["secretsmanager:arn:aws:secretsmanager:us-east-1:333333333333:secret:ci-AbCdEf"]
            secret_role = "arn:aws:iam::333333333333:role/Hub"
            secret_external_id = "x-1"
            "#,
        )
        .unwrap();
        assert_eq!(
            file.rotate.secret_role(),
            Some(SecretRole {
                role: "SecretsWriter".into(),
                external_id: None
            })
        );
        assert_eq!(
            file.services[0].secret_role(),
            Some(SecretRole {
                role: "arn:aws:iam::333333333333:role/Hub".into(),
                external_id: Some("x-1".into())
            })
        );
        let lone = "[[service]]\naccount = \"111111111111\"\nuser = \"u\"\nto = [\"ssm:/x\"]\nsecret_external_id = \"x\"\n";
        let e = parse(lone).unwrap_err();
        assert!(
            e.to_string()
                .contains("entry 1 (account 111111111111, user u): secret_external_id is set without secret_role"),
            "{e}"
        );
        let e = parse("[rotate]\nsecret_external_id = \"x\"\n").unwrap_err();
        assert!(
            e.to_string().contains("[rotate]: secret_external_id"),
            "{e}"
        );
        assert!(matches!(
            parse("[rotate]\nsecret_rol = \"R\"\n"),
            Err(InputError::BadConfig { .. })
        ));
    }

    #[test]
    fn a_bad_service_entry_is_named_with_what_is_wrong() {
        let entry = |body: &str| format!("[[service]]\n{body}\n");
        for (body, says) in [
            (
                r#"account = "12"
                user = "u"
                to = ["ssm:/x"]"#,
                "entry 1 (account 12, user u): account `12` is not a 12-digit",
            ),
            (
                r#"account = "111111111111"
                user = "u"
                to = []"#,
                "entry 1 (account 111111111111, user u): `to` names no destination",
            ),
            (
                r#"account = "111111111111"
                user = "u"
                to = ["ssm:/x", "s3://b"]"#,
                "entry 1 (account 111111111111, user u): `to` holds `s3://b`",
            ),
        ] {
            let e = parse(&entry(body)).unwrap_err();
            assert!(matches!(e, InputError::BadServiceEntry { .. }), "{e}");
            assert!(e.to_string().contains(says), "{e}");
        }
        let twice = format!(
            "{}{}",
            entry("account = \"111111111111\"\nuser = \"u\"\nto = [\"ssm:/x\"]"),
            entry("account = \"111111111111\"\nuser = \"u\"\nto = [\"ssm:/y\"]")
        );
        let e = parse(&twice).unwrap_err();
        assert!(
            e.to_string()
                .contains("entry 2 (account 111111111111, user u)"),
            "{e}"
        );
        // A missing key is named with the entry, not as toml's `1:1 missing
        // field` (issue 15).
        let missing_user = format!(
            "{}{}",
            entry("account = \"111111111111\"\nuser = \"u\"\nto = [\"ssm:/x\"]"),
            entry("account = \"222222222222\"\nto = [\"ssm:/x\"]")
        );
        let e = parse(&missing_user).unwrap_err();
        assert_eq!(
            e.to_string(),
            "rekey.toml: [[service]] entry 2 (account 222222222222): no `user`: give the name of the IAM user whose key it rotates"
        );
        let e = parse(&entry("user = \"u\"\nto = [\"ssm:/x\"]")).unwrap_err();
        assert!(
            e.to_string().contains("entry 1 (user u): no `account`"),
            "{e}"
        );
        let e = parse(&entry("account = \"111111111111\"\nuser = \"u\"")).unwrap_err();
        assert!(
            e.to_string()
                .contains("entry 1 (account 111111111111, user u): `to` names no destination"),
            "{e}"
        );
        let e = parse(&entry("")).unwrap_err();
        assert!(e.to_string().contains("entry 1: no `account`"), "{e}");
        for bad in [
            "[[service]]\naccount = \"111111111111\"\nuser = \"u\"\nto = [\"ssm:/x\"]\nold_key = \"shred\"\n",
            "[[service]]\naccount = \"111111111111\"\nuser = \"u\"\nto = [\"ssm:/x\"]\nrol = \"R\"\n",
        ] {
            assert!(
                matches!(parse(bad), Err(InputError::BadConfig { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn rotation_max_ages_come_from_the_account_then_the_policy() {
        let path = Path::new("/etc/rekey.toml");
        let none = parse("").unwrap().max_ages(path).unwrap();
        assert_eq!(none.for_account(Some("111111111111")), None);
        let file = parse(
            "[policy]\nmax_age = \"30d\"\n[accounts.\"111111111111\"]\nmax_age = 2\n[accounts.\"222222222222\"]\nunused = 9\n",
        )
        .unwrap();
        let ages = file.max_ages(path).unwrap();
        assert_eq!(ages.for_account(Some("111111111111")), Some(2));
        assert_eq!(ages.for_account(Some("222222222222")), Some(30));
        assert_eq!(ages.for_account(None), Some(30));
        // A bad value never gets this far: reading the file refuses it,
        // naming the file and the key (next test).
        assert!(parse("[policy]\nmax_age = \"abc\"\n").is_err());
    }

    #[test]
    fn a_bad_value_names_the_file_and_its_key_not_a_flag() {
        let said = |text: &str| parse(text).unwrap_err().to_string();
        assert_eq!(
            said("[policy]\nmax_age = \"abc\""),
            "rekey.toml [policy] max_age: `abc` is not a number of days between 1 and 36500 (write e.g. 90d or 12w)"
        );
        assert!(
            said("[policy]\nunused = 0").starts_with("rekey.toml [policy] unused: `0` is not"),
            "{}",
            said("[policy]\nunused = 0")
        );
        let over = said("[accounts.\"111111111111\"]\nmax_age = \"-3d\"");
        assert!(
            over.starts_with("rekey.toml [accounts.\"111111111111\"] max_age: `-3d`"),
            "{over}"
        );
        assert_eq!(
            said("[audit]\nconcurrency = 0"),
            "rekey.toml [audit] concurrency must be at least 1, not 0"
        );
        for text in ["[policy]\nmax_age = \"abc\"", "[audit]\nconcurrency = 0"] {
            assert!(!said(text).contains("--"), "{}", said(text));
        }
        // An option's own bad value is named as its front end names it.
        let flags = PolicySettings {
            max_age: Some(Days::Text("soon".into())),
            ..Default::default()
        };
        let e = flags
            .check(|key| Origin::Flag(format!("--{}", key.replace('_', "-"))))
            .unwrap_err();
        assert!(e.to_string().starts_with("--max-age: `soon`"), "{e}");
    }

    #[test]
    fn the_lifecycle_comes_from_enforce_over_the_defaults_per_account() {
        let file = parse(
            r#"
            [policy]
            max_age = "60d"
            [enforce]
            grace = "3d"
            on_grace_max = "deactivate"
            [accounts."111111111111"]
            unused = 20
            [accounts."111111111111".enforce]
            grace = 10
            deactivate_unused = true
            [[enforce.exempt]]
            group = "break-glass"
            reason = "incident access"
            "#,
        )
        .unwrap();
        let policies = Policies::resolve(&file, &PolicySettings::default()).unwrap();
        let all = file.lifecycles(&policies).unwrap();
        let other = all.for_account("222222222222");
        assert_eq!((other.max_age_days, other.grace_days), (60, 3));
        assert_eq!(other.on_grace_max, OnGraceMax::Deactivate);
        assert_eq!((other.warn_before_days, other.recovery_days), (14, 7));
        assert!(!other.deactivate_unused);
        let one = all.for_account("111111111111");
        assert_eq!((one.grace_days, one.unused_days), (10, 20));
        assert!(one.deactivate_unused);
        assert_eq!(one.on_grace_max, OnGraceMax::Deactivate, "inherited");
    }

    #[test]
    fn a_bad_enforce_setting_is_named_where_it_was_written() {
        let said = |text: &str| parse(text).unwrap_err().to_string();
        assert!(
            said("[enforce]\ngrace = \"soon\"").starts_with("rekey.toml [enforce] grace: `soon`"),
            "{}",
            said("[enforce]\ngrace = \"soon\"")
        );
        let over = said("[accounts.\"111111111111\".enforce]\nrecovery = 0");
        assert!(
            over.starts_with("rekey.toml [accounts.\"111111111111\".enforce] recovery: `0`"),
            "{over}"
        );
        let bad = said("[enforce]\non_grace_max = \"shrug\"");
        assert!(bad.contains("shrug"), "{bad}");
        let entry = said(
            "[[enforce.exempt]]\ngroup = \"a\"\nreason = \"r\"\n\n[[enforce.exempt]]\nuser = \"x\"\nreason = \"\"",
        );
        assert_eq!(
            entry,
            "rekey.toml:5:1: not a valid rekey config file: [[enforce.exempt]] entry 2: give a reason"
        );
        let misplaced = said("[policy.enforce]\ngrace = 3");
        assert!(
            misplaced.contains("write the lifecycle in [enforce]"),
            "{misplaced}"
        );
        let per_account =
            said("[[accounts.\"111111111111\".enforce.exempt]]\ngroup = \"g\"\nreason = \"r\"");
        assert!(
            per_account
                .contains("exemptions go in [[enforce.exempt]], with account = \"111111111111\""),
            "{per_account}"
        );
        assert!(said("[enforce]\ncolour = 1").contains("unknown field `colour`"));
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        assert!(matches!(
            parse("[policy]\nmax_age = \"soon\""),
            Err(InputError::BadDuration { .. })
        ));
        assert!(matches!(
            parse("[polcy]\n"),
            Err(InputError::BadConfig { .. })
        ));
        assert!(matches!(
            parse("[accounts.\"12\"]\n"),
            Err(InputError::BadAccountId { .. })
        ));
        assert!(matches!(
            parse("[audit]\nsource = \"magic\"\n"),
            Err(InputError::BadConfig { .. })
        ));
    }
}
