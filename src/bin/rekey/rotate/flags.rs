//! `rekey rotate`'s flags, as clap reads them; [`RotateArgs::input`]
//! hands them to the library as given.

use std::path::PathBuf;

use rekey::journal::{OldKeyAction, RotationId};
use rekey::request::RotateInput;

use crate::GlobalArgs;

#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    /// Rotate the key this profile uses (repeatable). A role profile rotates its source_profile's key.
    #[arg(long = "profile", value_name = "NAME")]
    pub(super) profiles: Vec<String>,
    /// A service user's account (with --user and --to); with --service, an
    /// account to look for bound users in (repeatable), entered through --role.
    #[arg(long = "account", value_name = "ACCOUNT_ID", conflicts_with_all = ["all_profiles", "abandon"])]
    pub(super) accounts: Vec<String>,
    /// Rotate every service user bound to destinations (by its
    /// rekey:destination tag or a [[service]] entry of --config) in the
    /// accounts selected as audit selects them: --org [--ou]
    /// [--exclude-account], --account/--accounts with --role, --profile.
    #[arg(long, conflicts_with_all = ["user", "to", "all_profiles", "abandon"])]
    pub(super) service: bool,
    /// With --service: a file with one account ID per line (# comments).
    #[arg(long = "accounts", value_name = "FILE", requires = "service")]
    pub(super) accounts_file: Option<PathBuf>,
    /// With --service: every ACTIVE account of the AWS Organization.
    #[arg(long, requires = "service")]
    pub(super) org: bool,
    /// With --service --org: only accounts in this OU and below (repeatable).
    #[arg(long = "ou", value_name = "ID", requires = "org")]
    pub(super) ous: Vec<String>,
    /// With --service: skip this account (repeatable).
    #[arg(long = "exclude-account", value_name = "ID", requires = "service")]
    pub(super) exclude: Vec<String>,
    /// With --service: the settings file whose [[service]] entries bind users.
    #[arg(long, value_name = "FILE", env = "REKEY_CONFIG", requires = "service")]
    pub(super) config: Option<PathBuf>,
    /// Rotate this IAM user's key (in --account) into the --to destinations;
    /// the key rotated is the one the first destination holds.
    #[arg(long, value_name = "NAME", requires_all = ["accounts", "to"], conflicts_with_all = ["profiles"])]
    pub(super) user: Option<String>,
    /// Where the service user's key lives (repeatable):
    /// secretsmanager:NAME, secretsmanager:ARN, or ssm:/PATH (one JSON
    /// SecureString parameter, or PATH/access_key_id + PATH/secret_access_key).
    #[arg(long, value_name = "DESTINATION", requires = "user")]
    pub(super) to: Vec<String>,
    /// Rotate every profile of the credentials file that holds static keys.
    #[arg(long)]
    pub(super) all_profiles: bool,
    /// The shared credentials file (default: AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials).
    #[arg(long, value_name = "FILE")]
    pub(super) credentials_file: Option<PathBuf>,
    /// Rotate only keys older than this (e.g. 90d), so a daily schedule rotates when due.
    #[arg(long, value_name = "DAYS")]
    pub(super) max_age: Option<String>,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub(super) dry_run: bool,
    /// Show each key and ask before each step.
    #[arg(short, long)]
    pub(super) interactive: bool,
    /// What to do with the old key once the new one works (default:
    /// deactivate for profiles; keep for --to, whose readers re-read on
    /// their own schedule).
    #[arg(long, value_name = "keep|deactivate|delete")]
    pub(super) old_key: Option<OldKeyAction>,
    /// At the two-key limit, delete the user's other *active* key to make room.
    #[arg(long)]
    pub(super) delete_other_active: bool,
    /// How long to wait for IAM to accept the new key (e.g. 60s, 2m; default 60s).
    #[arg(long, value_name = "DURATION")]
    pub(super) propagation_timeout: Option<String>,
    /// Reach IAM through this role in the key's account (a name, or an
    /// ARN), assumed with your own credentials (the default chain); the
    /// profile's key is still the one rotated.
    #[arg(long, value_name = "NAME_OR_ARN", conflicts_with = "abandon")]
    pub(super) role: Option<String>,
    /// The external ID the role's trust policy asks for.
    #[arg(long, value_name = "ID", requires = "role")]
    pub(super) external_id: Option<String>,
    /// With --to or --service: reach a secretsmanager: destination named by
    /// an ARN of another account than its user's through this role in the
    /// secret's account (a name, or an ARN), assumed with your own
    /// credentials. Never taken from a user's tag.
    #[arg(long, value_name = "NAME_OR_ARN")]
    pub(super) secret_role: Option<String>,
    /// The external ID the secret role's trust policy asks for.
    #[arg(long, value_name = "ID", requires = "secret_role")]
    pub(super) secret_external_id: Option<String>,
    /// MFA code for profiles with mfa_serial (asked for on a terminal when absent).
    #[arg(long, value_name = "CODE")]
    pub(super) mfa_code: Option<String>,
    /// The journal: a file, sqlite:PATH, or dynamodb:TABLE[?region=R] shared by
    /// many runners (default: $XDG_STATE_HOME/rekey/journal.sqlite3).
    #[arg(long, value_name = "JOURNAL")]
    pub(super) journal: Option<PathBuf>,
    /// A role to assume for a DynamoDB journal kept in another account.
    #[arg(long, value_name = "ARN")]
    pub(super) journal_role: Option<String>,
    /// Keys rotated at once (default 4; each user is still rotated by one run at a time).
    #[arg(long, value_name = "N")]
    pub(super) concurrency: Option<usize>,
    /// The way out for an unfinished rotation whose destination is gone:
    /// delete the keys rotation ID made (never the old key) and close it as
    /// undone. IAM is reached with --profile's key, else the default chain.
    #[arg(long, value_name = "ID", conflicts_with_all = ["all_profiles", "dry_run", "interactive"])]
    pub(super) abandon: Option<RotationId>,
    /// text (default) or json.
    #[arg(long, short = 'o', default_value = "text", value_name = "FORMAT")]
    pub(super) output: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum OutputFormat {
    Text,
    Json,
}

impl RotateArgs {
    /// The flags as given, for the library to decide the rest.
    pub(super) fn input(self, global: &GlobalArgs) -> RotateInput {
        RotateInput {
            profiles: self.profiles,
            all_profiles: self.all_profiles,
            accounts: self.accounts,
            user: self.user,
            to: self.to,
            service: self.service,
            accounts_file: self.accounts_file,
            org: self.org,
            ous: self.ous,
            exclude_accounts: self.exclude,
            config: self.config,
            credentials_file: self.credentials_file,
            max_age: self.max_age,
            dry_run: self.dry_run,
            interactive: self.interactive,
            old_key: self.old_key,
            delete_other_active: self.delete_other_active,
            propagation_timeout: self.propagation_timeout,
            role: self.role,
            external_id: self.external_id,
            secret_role: self.secret_role,
            secret_external_id: self.secret_external_id,
            mfa_code: self.mfa_code,
            journal: self.journal,
            journal_role: self.journal_role,
            concurrency: self.concurrency,
            abandon: self.abandon,
            run_id: None,
            endpoint_url: global.endpoint_url.clone(),
            region: global.region.clone(),
        }
    }
}
