//! The library's errors. Two families: [`InputError`] — something the user
//! gave is wrong, nothing was done, fix the input — and [`CallError`] — an
//! AWS call failed, with the code AWS gave and how to read it. Every error
//! names what it concerns; none ever holds a secret.

use std::path::PathBuf;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Bad input: reported as one line, exit code 2, nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// `origin` names where the value was written: `--max-age`, or
    /// `rekey.toml [policy] max_age` (issue 15).
    #[error(
        "{origin}: `{value}` is not a number of days between 1 and 36500 (write e.g. 90d or 12w)"
    )]
    BadDuration { origin: String, value: String },
    #[error("--as-of: `{value}` is not a date; write YYYY-MM-DD, an RFC 3339 time, +Nd or -Nd")]
    BadAsOf { value: String },
    #[error("exemption pattern `{pattern}` is not a valid glob")]
    BadGlob {
        pattern: String,
        #[source]
        source: globset::Error,
    },
    #[error("{origin}: `{value}` is not a 12-digit AWS account ID")]
    BadAccountId { origin: String, value: String },
    #[error(
        "{origin}: an OU only narrows the organization's accounts, which are listed only with {org}: add {org}, or leave the OU out"
    )]
    OusWithoutOrg { origin: String, org: &'static str },
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
    #[error(
        "{flag} needs --role NAME (the role rekey assumes in each account, e.g. OrganizationAccountAccessRole)"
    )]
    RoleRequired { flag: &'static str },
    #[error(
        "--role `{role}` is not a role name (letters, digits and +=,.@_- only, optionally with a /path/)"
    )]
    BadRoleName { role: String },
    #[error("--{what} must be at least 1")]
    ZeroCount { what: &'static str },
    /// A count of rekey.toml that is 0: `origin` is the file and its key.
    #[error("{origin} must be at least 1, not 0")]
    ZeroSetting { origin: String },
    #[error("cannot reach the AWS endpoint{} (check --endpoint-url, AWS_ENDPOINT_URL and the network)", endpoint.as_deref().map(|e| format!(" {e}")).unwrap_or_default())]
    Unreachable {
        endpoint: Option<String>,
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
        FailureKind::Throttled => " (throttled; retry later or lower --concurrency)",
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
