//! The library's errors. Two families: [`InputError`] — something the user
//! gave is wrong, nothing was done, fix the input — and [`CallError`] — an
//! AWS call failed, with the code AWS gave and how to read it. Every error
//! names what it concerns; none ever holds a secret.
//!
//! A bad value is named by its [`Origin`], where it was written: a key of
//! rekey.toml, a line of an accounts file, or an option of the request as
//! its front end names it. The library never spells a command-line flag:
//! the CLI names its own (`src/bin/rekey/main.rs`, `flag`), a JSON request
//! its fields ([`crate::request::field`]).

use std::path::PathBuf;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Where a value was written: what an error about it names (issue 16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// An option of a request, as the front end that set it names it: the
    /// CLI's `--max-age`, a JSON request's `max_age`.
    Flag(String),
    /// A key of a settings file: `rekey.toml [policy] max_age`.
    File { path: PathBuf, key: String },
    /// A line of a list file: `ids.txt:3`.
    Line { path: PathBuf, line: usize },
    /// Any of several options: `--account/--accounts`.
    AnyOf(Vec<Origin>),
}

impl Origin {
    /// `key` of the settings file at `path`.
    pub fn file(path: &std::path::Path, key: impl Into<String>) -> Origin {
        Origin::File {
            path: path.to_path_buf(),
            key: key.into(),
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag(name) => f.write_str(name),
            Origin::File { path, key } => write!(f, "{} {key}", path.display()),
            Origin::Line { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::AnyOf(all) => {
                let names: Vec<String> = all.iter().map(Origin::to_string).collect();
                f.write_str(&names.join("/"))
            }
        }
    }
}

/// Bad input: reported as one line, exit code 2, nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// `origin` names where the value was written: `--max-age`, or
    /// `rekey.toml [policy] max_age` (issue 15).
    #[error(
        "{origin}: `{value}` is not a number of days between 1 and 36500 (write e.g. 90d or 12w)"
    )]
    BadDuration { origin: Origin, value: String },
    #[error("{origin}: `{value}` is not a date; write YYYY-MM-DD, an RFC 3339 time, +Nd or -Nd")]
    BadAsOf { origin: Origin, value: String },
    #[error("{origin}: `{value}` is not a duration between 1s and 60m (write e.g. 60s or 2m)")]
    BadWait { origin: Origin, value: String },
    #[error("exemption pattern `{pattern}` is not a valid glob")]
    BadGlob {
        pattern: String,
        #[source]
        source: globset::Error,
    },
    #[error("{origin}: `{value}` is not a 12-digit AWS account ID")]
    BadAccountId { origin: Origin, value: String },
    #[error(
        "{origin}: an OU only narrows the organization's accounts, which are listed only with {org}: add {org}, or leave the OU out"
    )]
    OusWithoutOrg { origin: Origin, org: Origin },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{}: starts with a UTF-8 byte-order mark (BOM); save it as UTF-8 without BOM",
        path.display()
    )]
    ByteOrderMark { path: PathBuf },
    #[error("{}:{line}:{column}: not a valid rekey config file: {message}", path.display())]
    BadConfig {
        path: PathBuf,
        line: usize,
        column: usize,
        /// toml's own one-line description of the problem.
        message: String,
    },
    /// A `[[service]]` entry that says something impossible (issue 7), or
    /// leaves out what it must say (issue 15).
    #[error("{}: [[service]] entry {number}{}: {why}", path.display(), entry_label(account, user))]
    BadServiceEntry {
        path: PathBuf,
        /// 1-based, in file order.
        number: usize,
        /// As written; empty when the entry has none.
        account: String,
        user: String,
        why: String,
    },
    #[error(transparent)]
    SharedFile(#[from] crate::awsfiles::FileError),
    #[error("profile `{profile}` not found in {files}; known profiles: {known}")]
    UnknownProfile {
        profile: String,
        files: String,
        known: String,
    },
    #[error(
        "profile `{profile}` has no credentials: add aws_access_key_id/aws_secret_access_key, role_arn or sso settings to it"
    )]
    ProfileWithoutCredentials { profile: String },
    /// Accounts named by ID are entered through a role: `origin` is where
    /// they were named, `role` the option that names the role.
    #[error(
        "{origin} needs {role} NAME (the role rekey assumes in each account, e.g. OrganizationAccountAccessRole)"
    )]
    RoleRequired { origin: Origin, role: Origin },
    #[error(
        "{origin} `{role}` is not a role name (letters, digits and +=,.@_- only, optionally with a /path/)"
    )]
    BadRoleName { origin: Origin, role: String },
    /// A count that is 0: `--concurrency`, `rekey.toml [audit] concurrency`.
    #[error("{origin} must be at least 1, not 0")]
    ZeroCount { origin: Origin },
    /// `endpoint_from` is the option that sets the endpoint, once the
    /// request that set it has named it ([`InputError::named`]).
    #[error("cannot reach the AWS endpoint{} (check {}AWS_ENDPOINT_URL and the network)", endpoint.as_deref().map(|e| format!(" {e}")).unwrap_or_default(), endpoint_from.as_ref().map(|o| format!("{o}, ")).unwrap_or_default())]
    Unreachable {
        endpoint: Option<String>,
        // Boxed: rare, and it keeps every InputError small.
        endpoint_from: Option<Box<Origin>>,
        #[source]
        source: CallError,
    },
    #[error(
        "no AWS credentials found; looked in {}; run `aws configure` or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)",
        looked_in.join(", ")
    )]
    NoCredentials { looked_in: Vec<String> },
    #[error(
        "the AWS SDK cannot read the shared AWS files: {} (it takes `#` and `;` in a [section] header for a comment, though the AWS CLI accepts them); rename those profiles",
        lines.join("; ")
    )]
    SdkUnreadableFiles { lines: Vec<String> },
    #[error("the AWS SDK cannot build credentials from the shared AWS files or the environment")]
    CredentialsMisconfigured {
        #[source]
        source: CallError,
    },
    #[error("the base credentials{} do not work", profile.as_deref().map(|p| format!(" (profile `{p}`)")).unwrap_or_default())]
    BaseCredentials {
        profile: Option<String>,
        #[source]
        source: CallError,
    },
    #[error("cannot list the accounts of the AWS Organization")]
    Organizations {
        #[source]
        source: CallError,
    },
}

impl InputError {
    /// This error with the options of the request that led to it named by
    /// `names`, where the code that found it could not know them (an
    /// unreachable endpoint, found calling AWS).
    pub fn named(self, names: crate::request::Names) -> InputError {
        match self {
            InputError::Unreachable {
                endpoint,
                endpoint_from: None,
                source,
            } => InputError::Unreachable {
                endpoint,
                endpoint_from: Some(Box::new(names(crate::request::Setting::EndpointUrl))),
                source,
            },
            other => other,
        }
    }
}

/// ` (account A, user U)`, leaving out what an entry does not say.
fn entry_label(account: &str, user: &str) -> String {
    let parts: Vec<String> = [("account", account), ("user", user)]
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// How a failed AWS call should be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The caller lacks permission (or the resource's policy says no).
    Denied,
    /// The credentials themselves are bad, expired or inactive.
    BadCredentials,
    /// Throttled even after the SDK's adaptive retries.
    Throttled,
    /// The endpoint could not be reached or timed out.
    Unreachable,
    /// The thing asked for does not exist.
    NotFound,
    Other,
}

/// One failed AWS call.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{call}: {code}: {message}{}", hint(*kind))]
    Service {
        call: &'static str,
        code: String,
        message: String,
        kind: FailureKind,
    },
    #[error("{call}: no answer from AWS")]
    Unreachable {
        call: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{call} failed")]
    Other {
        call: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn hint(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Denied => " (grant the permission or check SCPs)",
        FailureKind::BadCredentials => " (the key is wrong, inactive, deleted or expired)",
        // Deep in a call, no option is at hand: the remedy in words.
        FailureKind::Throttled => " (throttled; retry later or with fewer accounts at once)",
        _ => "",
    }
}

impl CallError {
    pub fn kind(&self) -> FailureKind {
        match self {
            CallError::Service { kind, .. } => *kind,
            CallError::Unreachable { .. } => FailureKind::Unreachable,
            CallError::Other { .. } => FailureKind::Other,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            CallError::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Wraps an SDK error, keeping the AWS error code when there is one.
    pub fn from_sdk<E, R>(call: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        match &err {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => CallError::Unreachable {
                call,
                source: Box::new(err),
            },
            _ => match err.code() {
                Some(code) => CallError::Service {
                    call,
                    code: code.to_string(),
                    message: err.message().unwrap_or("").to_string(),
                    kind: classify(code),
                },
                None => CallError::Other {
                    call,
                    source: Box::new(err),
                },
            },
        }
    }
}

/// Reads an AWS error code the way IAM, STS and Organizations use them.
pub fn classify(code: &str) -> FailureKind {
    match code {
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "AWSOrganizationsNotInUseException" => FailureKind::Denied,
        "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "UnrecognizedClientException"
        | "InvalidAccessKeyId" => FailureKind::BadCredentials,
        "Throttling"
        | "ThrottlingException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "LimitExceededException" => FailureKind::Throttled,
        "NoSuchEntity"
        | "NoSuchEntityException"
        | "AccountNotFoundException"
        | "ParentNotFoundException" => FailureKind::NotFound,
        _ => FailureKind::Other,
    }
}

/// `{:#}`-style "a: b: c" of an error and its sources.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    s
}
