//! Building AWS clients: the base configuration (profile, region, endpoint,
//! retries, timeouts), configurations for assumed-role sessions, and the
//! call counter every client carries so audits can say what they cost.
//!
//! - `clients`: the one client factory ([`ClientFactory`]): every SDK
//!   client with the run's interceptors (fault injection in tests).
//! - `deps`: [`Deps`], the live things a run opens jobs with, built
//!   once: the caller's configuration, the shared files, the factory, and
//!   the role sessions and profile configurations opened so far.

use std::time::Duration;

use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::{RetryConfig, RetryMode};
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;

mod clients;
mod deps;

pub use crate::calls::CallCounter;
use crate::error::CallError;
use crate::model::partition_of;
pub use clients::{AccountClients, ClientFactory};
pub use deps::{Deps, Signer, profile_config};

/// IAM and STS are global; SigV4 still wants a region. This is the one the
/// AWS CLI would pick for the `aws` partition when none is configured.
const FALLBACK_REGION: &str = "us-east-1";

/// rekey's retry mode and attempts per call when the environment names
/// none, chosen by measurement (issue 8; figures in the README, "Retries and
/// throttling"): through 30% throttling, adaptive mode's client-side rate
/// limiter collapsed each throttled account to a trickle (86 s for 6
/// accounts, 0.4 s clean), while standard mode with 10 attempts and the
/// backoff below took 0.8 s (3.3 s with `--source api`), every account right.
const DEFAULT_MODE: RetryMode = RetryMode::Standard;
const DEFAULT_MAX_ATTEMPTS: u32 = 10;
/// Full-jitter exponential backoff: attempt n waits a random time up to
/// `INITIAL_BACKOFF * 2^(n-1)`, never more than `MAX_BACKOFF`.
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How calls are retried: `AWS_RETRY_MODE` and `AWS_MAX_ATTEMPTS` with their
/// AWS CLI meaning, each falling back to rekey's default on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySettings {
    pub mode: RetryMode,
    /// Attempts per call, the first one included.
    pub max_attempts: u32,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            mode: DEFAULT_MODE,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }
}

/// A variable's value, `None` when unset or empty.
fn set(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// An unusable `AWS_RETRY_MODE` or `AWS_MAX_ATTEMPTS`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetrySettingsError {
    #[error("AWS_RETRY_MODE is `{0}`; expected standard, adaptive or legacy")]
    Mode(String),
    #[error("AWS_MAX_ATTEMPTS is `{0}`; expected a whole number of attempts, 1 or more")]
    MaxAttempts(String),
}

impl RetrySettings {
    /// The settings the two variables' values ask for (`None` or empty:
    /// unset). Setting one never changes the other from rekey's default.
    /// `legacy`, an AWS CLI mode the Rust SDK lacks, is read as `standard`.
    pub fn resolve(
        mode: Option<&str>,
        max_attempts: Option<&str>,
    ) -> Result<RetrySettings, RetrySettingsError> {
        let mut settings = RetrySettings::default();
        if let Some(m) = set(mode) {
            settings.mode = match m.to_ascii_lowercase().as_str() {
                "standard" | "legacy" => RetryMode::Standard,
                "adaptive" => RetryMode::Adaptive,
                _ => return Err(RetrySettingsError::Mode(m.to_string())),
            };
        }
        if let Some(n) = set(max_attempts) {
            settings.max_attempts = n
                .parse()
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| RetrySettingsError::MaxAttempts(n.to_string()))?;
        }
        Ok(settings)
    }

    /// [`RetrySettings::resolve`] of this process's environment.
    pub fn from_env() -> Result<RetrySettings, RetrySettingsError> {
        let var = |name| std::env::var(name).ok();
        Self::resolve(
            var("AWS_RETRY_MODE").as_deref(),
            var("AWS_MAX_ATTEMPTS").as_deref(),
        )
    }

    fn retry_config(self) -> RetryConfig {
        let config = match self.mode {
            RetryMode::Adaptive => RetryConfig::adaptive(),
            _ => RetryConfig::standard(),
        };
        config
            .with_max_attempts(self.max_attempts)
            .with_initial_backoff(INITIAL_BACKOFF)
            .with_max_backoff(MAX_BACKOFF)
    }
}

/// Where and how to reach AWS, beyond what the environment says.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    /// Overrides `AWS_ENDPOINT_URL` (used for the emulator).
    pub endpoint_url: Option<String>,
    /// Overrides `AWS_REGION` and the profile's region.
    pub region: Option<String>,
}

impl AwsOptions {
    /// The endpoint in force, for error messages.
    pub fn endpoint(&self) -> Option<String> {
        self.endpoint_url
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
    }
}

/// Loads the configuration of a named profile (its credentials only, never
/// the environment's keys), or of the default chain (environment variables,
/// `AWS_PROFILE`, `[default]`, …) when `profile` is `None` — exactly as the
/// AWS CLI resolves them. Retries follow [`RetrySettings::from_env`]; the
/// CLI rejects unusable values before any work, so here they fall back to
/// rekey's defaults.
pub async fn load_config(profile: Option<&str>, opts: &AwsOptions) -> SdkConfig {
    let retries = RetrySettings::from_env().unwrap_or_default();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retries.retry_config())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(p) = profile {
        loader = loader.profile_name(p);
    }
    if let Some(e) = &opts.endpoint_url {
        loader = loader.endpoint_url(e);
    }
    if let Some(r) = &opts.region {
        loader = loader.region(Region::new(r.clone()));
    }
    let config = loader.load().await;
    let region = config
        .region()
        .cloned()
        .unwrap_or_else(|| Region::new(FALLBACK_REGION));
    let mut builder = config.into_builder().region(region.clone());
    if let Some(p) = profile {
        // The SDK's default chain reads AWS_ACCESS_KEY_ID before any
        // profile, so `--profile prod` would audit the environment key's
        // account under prod's name. A named profile means that profile's
        // credentials only, as with `aws --profile` (issue 10 #1).
        let provider_config = ProviderConfig::default().with_region(Some(region));
        let provider = ProfileFileCredentialsProvider::builder()
            .configure(&provider_config)
            .profile_name(p)
            .build();
        builder = builder.credentials_provider(SharedCredentialsProvider::new(provider));
    }
    builder.build()
}

/// Whether a call failed because the SDK's default chain found no
/// credentials anywhere, rather than because AWS refused the ones it found.
/// An instance metadata service that does not answer counts as "none
/// there": it is the chain's last stop, and the AWS CLI reads it the same
/// way ("Unable to locate credentials").
pub fn found_no_credentials(e: &CallError) -> bool {
    use aws_config::imds::client::error::ImdsError;
    use aws_credential_types::provider::error::CredentialsError;
    caused_by(e, |err| {
        matches!(
            err.downcast_ref::<CredentialsError>(),
            Some(CredentialsError::CredentialsNotLoaded(_))
        ) || err.downcast_ref::<ImdsError>().is_some()
    })
}

/// Whether the SDK refused to build a credentials provider from its
/// configuration (a shared file it cannot parse, a profile that names no
/// way to get credentials): a fault in the files, not in the network.
pub fn credentials_misconfigured(e: &CallError) -> bool {
    use aws_credential_types::provider::error::CredentialsError;
    caused_by(e, |err| {
        matches!(
            err.downcast_ref::<CredentialsError>(),
            Some(CredentialsError::InvalidConfiguration(_))
        )
    })
}

/// Whether `e` or any error in its source chain is one `hit` recognises.
fn caused_by(e: &CallError, hit: impl Fn(&(dyn std::error::Error + 'static)) -> bool) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if hit(err) {
            return true;
        }
        next = err.source();
    }
    false
}

/// Section headers of the shared credentials and config files that the AWS
/// SDK for Rust cannot parse, each as "PATH line N: HEADER" (see
/// [`crate::awsfiles::sdk_unreadable_headers`]). A file that cannot be read
/// adds nothing: the SDK's own error covers it.
pub fn sdk_unreadable_lines() -> Vec<String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    [
        crate::awsfiles::credentials_path(&env),
        crate::awsfiles::config_path(&env),
    ]
    .into_iter()
    .flatten()
    .filter_map(|path| Some((std::fs::read_to_string(&path).ok()?, path)))
    .flat_map(|(text, path)| {
        crate::awsfiles::sdk_unreadable_headers(&text)
            .into_iter()
            .map(move |(line, header)| format!("{} line {line}: {header}", path.display()))
    })
    .collect()
}

/// Where the SDK's default chain looks for the credentials of `profile`
/// (`None`: `AWS_PROFILE`, else `default`), in its order, as a user would
/// check them.
pub fn credential_sources(profile: Option<&str>) -> Vec<String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let file = |path: Result<std::path::PathBuf, _>, fallback: &str| {
        path.map_or_else(|_| fallback.to_string(), |p| p.display().to_string())
    };
    let profile = profile
        .map(str::to_string)
        .or_else(|| env("AWS_PROFILE"))
        .unwrap_or_else(|| "default".into());
    let imds = if env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        "EC2 instance metadata (disabled by AWS_EC2_METADATA_DISABLED)"
    } else {
        "EC2 instance metadata"
    };
    vec![
        "environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)".into(),
        format!(
            "shared credentials file {} and config file {} (profile `{profile}`)",
            file(crate::awsfiles::credentials_path(&env), "~/.aws/credentials"),
            file(crate::awsfiles::config_path(&env), "~/.aws/config"),
        ),
        "web identity token (AWS_WEB_IDENTITY_TOKEN_FILE)".into(),
        "container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, AWS_CONTAINER_CREDENTIALS_FULL_URI)".into(),
        imds.into(),
    ]
}

/// The same configuration, signing with other credentials.
pub fn with_credentials(base: &SdkConfig, credentials: Credentials) -> SdkConfig {
    base.to_builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build()
}

/// Who a set of credentials belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub account_id: String,
    pub arn: String,
    pub partition: String,
}

/// STS GetCallerIdentity, reduced to what rekey needs.
pub async fn caller_identity(sts: &aws_sdk_sts::Client) -> Result<Identity, CallError> {
    let out = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| CallError::from_sdk("sts:GetCallerIdentity", e))?;
    let arn = out.arn().unwrap_or_default().to_string();
    Ok(Identity {
        account_id: out.account().unwrap_or_default().to_string(),
        partition: partition_of(&arn).unwrap_or("aws").to_string(),
        arn,
    })
}

/// Assumes `role_arn` with session name `rekey` and returns the session's
/// credentials.
pub async fn assume_role(
    sts: &aws_sdk_sts::Client,
    role_arn: &str,
    external_id: Option<&str>,
) -> Result<Credentials, CallError> {
    let out = sts
        .assume_role()
        .role_arn(role_arn)
        .role_session_name("rekey")
        .set_external_id(external_id.map(str::to_string))
        .send()
        .await
        .map_err(|e| CallError::from_sdk("sts:AssumeRole", e))?;
    let c = out.credentials().ok_or_else(|| CallError::Other {
        call: "sts:AssumeRole",
        source: "the answer held no credentials".into(),
    })?;
    let expiry = std::time::SystemTime::try_from(*c.expiration()).ok();
    Ok(Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        expiry,
        "rekey-assume-role",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(mode: Option<&str>, attempts: Option<&str>) -> RetrySettings {
        RetrySettings::resolve(mode, attempts).expect("valid settings")
    }

    #[test]
    fn neither_variable_gives_rekeys_default() {
        let d = resolve(None, None);
        assert_eq!((d.mode, d.max_attempts), (RetryMode::Standard, 10));
        assert_eq!(resolve(Some(""), Some(" ")), d, "empty counts as unset");
    }

    #[test]
    fn a_mode_alone_keeps_rekeys_attempts() {
        // Issue 8: setting the mode used to drop attempts to the SDK's 3.
        let s = resolve(Some("adaptive"), None);
        assert_eq!((s.mode, s.max_attempts), (RetryMode::Adaptive, 10));
        let s = resolve(Some("Standard"), None);
        assert_eq!((s.mode, s.max_attempts), (RetryMode::Standard, 10));
        let s = resolve(Some("legacy"), None);
        assert_eq!((s.mode, s.max_attempts), (RetryMode::Standard, 10));
    }

    #[test]
    fn attempts_alone_keep_rekeys_mode() {
        let s = resolve(None, Some("3"));
        assert_eq!((s.mode, s.max_attempts), (RetryMode::Standard, 3));
        let s = resolve(None, Some("1"));
        assert_eq!(s.max_attempts, 1, "1: no retries, as with the AWS CLI");
    }

    #[test]
    fn both_variables_are_followed() {
        let s = resolve(Some("adaptive"), Some("7"));
        assert_eq!((s.mode, s.max_attempts), (RetryMode::Adaptive, 7));
    }

    #[test]
    fn unusable_values_are_named() {
        assert_eq!(
            RetrySettings::resolve(Some("fast"), None),
            Err(RetrySettingsError::Mode("fast".into()))
        );
        for bad in ["0", "-1", "ten", "2.5"] {
            assert_eq!(
                RetrySettings::resolve(Some("standard"), Some(bad)),
                Err(RetrySettingsError::MaxAttempts(bad.into())),
                "{bad}"
            );
        }
        let e = RetrySettings::resolve(None, Some("0")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "AWS_MAX_ATTEMPTS is `0`; expected a whole number of attempts, 1 or more"
        );
    }

    #[test]
    fn the_sdk_config_carries_the_settings() {
        let c = resolve(Some("adaptive"), Some("4")).retry_config();
        assert_eq!((c.mode(), c.max_attempts()), (RetryMode::Adaptive, 4));
        assert_eq!(c.initial_backoff(), INITIAL_BACKOFF);
        assert_eq!(c.max_backoff(), MAX_BACKOFF);
    }
}
