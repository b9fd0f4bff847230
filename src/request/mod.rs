//! What a person asked for, decided in one place (issue 16): a front end
//! hands over its options as given — an [`AuditInput`] or a [`RotateInput`],
//! every option absent unless given — and `from_input` turns them into a
//! complete request ([`AuditRequest`], [`RotateRequest`]): rekey.toml merged
//! in, every default decided, every value checked before any AWS call. The
//! model is ripgrep's `HiArgs::from_low_args`.
//!
//! ```text
//!   CLI flags ──┐                          ┌─> audit::run / rotation::run
//!               ├─> *Input ─ from_input ─> *Request
//!   JSON ───────┘   (as given)  (defaults,  (complete, checked)
//!                                checks)
//! ```
//!
//! The CLI fills an input from its flags; the Lambda will deserialize the
//! same input from JSON (serde, the field names below; every field may be
//! left out), so both get the same defaults and the same checks:
//!
//! ```json
//! {"profiles": ["dev"], "max_age": "90d", "dry_run": true}
//! ```
//!
//! An error about a bad value names where it was written ([`Origin`]): a
//! key of rekey.toml by the library, an option by the front end's
//! [`Names`] — the CLI's are its flags (`--max-age`), a JSON request's are
//! its fields ([`field`]: `max_age`).

use crate::error::Origin;
use crate::names::named_enum;

pub mod audit;
pub mod enforce;
pub mod journal;
pub mod rotate;

pub use audit::{AuditInput, AuditRequest};
pub use rotate::{RotateInput, RotateRequest};

named_enum! {
    /// An option of a request, named as a JSON request's field.
    pub enum Setting as "setting" {
        Profiles = "profiles",
        AllProfiles = "all_profiles",
        Accounts = "accounts",
        AccountsFile = "accounts_file",
        Org = "org",
        Ous = "ous",
        ExcludeAccounts = "exclude_accounts",
        Role = "role",
        ExternalId = "external_id",
        Source = "source",
        Concurrency = "concurrency",
        MaxAge = "max_age",
        Unused = "unused",
        AsOf = "as_of",
        Config = "config",
        User = "user",
        To = "to",
        Service = "service",
        CredentialsFile = "credentials_file",
        DryRun = "dry_run",
        Interactive = "interactive",
        OldKey = "old_key",
        DeleteOtherActive = "delete_other_active",
        PropagationTimeout = "propagation_timeout",
        SecretRole = "secret_role",
        SecretExternalId = "secret_external_id",
        MfaCode = "mfa_code",
        Journal = "journal",
        JournalRole = "journal_role",
        Abandon = "abandon",
        EndpointUrl = "endpoint_url",
        Apply = "apply",
        PlanOut = "plan_out",
        ApplyPlan = "apply_plan",
        PlanMaxAge = "plan_max_age",
        Only = "only",
        Canary = "canary",
        MaxActions = "max_actions",
        MaxFailureRate = "max_failure_rate",
        Reactivate = "reactivate",
        Output = "output",
        NotifySns = "notify_sns",
        NotifyEmailFrom = "notify_email_from",
        NotifyWebhook = "notify_webhook",
        RenotifyAfter = "renotify_after",
        NoNotify = "no_notify",
    }
}

/// How a front end names its options, for errors: the CLI maps each to
/// its flag, a JSON request to its field ([`field`]).
pub type Names = fn(Setting) -> Origin;

/// A JSON request's names: each option by its field (`max_age`).
pub fn field(setting: Setting) -> Origin {
    Origin::Flag(setting.as_str().to_string())
}

/// What a front end knows that no option says: how it names options, the
/// environment, the time, and whether someone sits at a terminal.
pub struct Context<'a> {
    pub names: Names,
    /// The environment (`std::env::var`, or a test's).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub now: time::OffsetDateTime,
    /// stdout is a terminal: the audit's default format is a table there.
    pub stdout_is_terminal: bool,
}

impl Context<'_> {
    /// What the front end calls `setting`.
    pub fn name(&self, setting: Setting) -> Origin {
        (self.names)(setting)
    }
}

/// `v`, unless it is empty.
fn non_empty(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}
