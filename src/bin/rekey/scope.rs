//! The flags that choose accounts, keys and the policy, shared by `audit`
//! and `enforce` (`rekey enforce` plans over what `rekey audit` sees).

use std::path::PathBuf;

use rekey::inventory::Source;
use rekey::request::AuditInput;

use crate::GlobalArgs;

#[derive(Debug, clap::Args)]
pub struct ScopeArgs {
    /// The account of this named profile (repeatable).
    #[arg(long = "profile", value_name = "NAME")]
    profiles: Vec<String>,
    /// This account, entered through --role (repeatable).
    #[arg(long = "account", value_name = "ID")]
    accounts: Vec<String>,
    /// File with one account ID per line (# comments), entered through --role.
    #[arg(long = "accounts", value_name = "FILE")]
    accounts_file: Option<PathBuf>,
    /// Every ACTIVE account of the AWS Organization.
    #[arg(long)]
    org: bool,
    /// With --org: only accounts in this OU and the OUs below it (repeatable).
    #[arg(long = "ou", value_name = "ID")]
    ous: Vec<String>,
    /// Skip this account (repeatable).
    #[arg(long = "exclude-account", value_name = "ID")]
    exclude: Vec<String>,
    /// Role assumed in each account (default with --org: OrganizationAccountAccessRole).
    #[arg(long, value_name = "NAME")]
    role: Option<String>,
    /// External ID passed to AssumeRole.
    #[arg(long, value_name = "X")]
    external_id: Option<String>,
    /// Where users and keys come from: the credential report (fewest calls) or per-user API calls.
    #[arg(long, value_name = "report|api")]
    source: Option<Source>,
    /// Accounts read at once (default 32).
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,
    /// An active key older than this is too old (default 90d).
    #[arg(long, value_name = "DAYS")]
    max_age: Option<String>,
    /// An active key unused this long is unused (default 45d).
    #[arg(long, value_name = "DAYS")]
    unused: Option<String>,
    /// Users with this tag set to `true` are exempt (default rekey:exempt).
    #[arg(long, value_name = "KEY")]
    exempt_tag: Option<String>,
    /// Members of this group are exempt (repeatable).
    #[arg(long = "exempt-group", value_name = "GROUP")]
    exempt_groups: Vec<String>,
    /// Users whose name or path+name match this glob are exempt (repeatable).
    #[arg(long = "exempt-user", value_name = "GLOB")]
    exempt_users: Vec<String>,
    /// As of this moment: YYYY-MM-DD, RFC 3339, +Nd or -Nd.
    // `--as-of -30d` as two words: the value starts with `-` (issue 10 #2).
    #[arg(long, value_name = "WHEN", allow_hyphen_values = true)]
    as_of: Option<String>,
    /// Settings file (rekey.toml); flags win over it.
    #[arg(long, value_name = "FILE", env = "REKEY_CONFIG")]
    config: Option<PathBuf>,
}

impl ScopeArgs {
    /// The flags as given, the rest of the input left at its defaults.
    pub fn input(self, global: &GlobalArgs) -> AuditInput {
        AuditInput {
            profiles: self.profiles,
            accounts: self.accounts,
            accounts_file: self.accounts_file,
            org: self.org,
            ous: self.ous,
            exclude_accounts: self.exclude,
            role: self.role,
            external_id: self.external_id,
            source: self.source,
            concurrency: self.concurrency,
            max_age: self.max_age,
            unused: self.unused,
            exempt_tag: self.exempt_tag,
            exempt_groups: self.exempt_groups,
            exempt_users: self.exempt_users,
            as_of: self.as_of,
            config: self.config,
            endpoint_url: global.endpoint_url.clone(),
            region: global.region.clone(),
            ..AuditInput::default()
        }
    }
}
