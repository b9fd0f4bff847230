//! Building AWS clients: the base configuration (profile, region, endpoint,
//! adaptive retries, timeouts), configurations for assumed-role sessions, and
//! the call counter every client carries so audits can say what they cost.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::error::CallError;
use crate::model::partition_of;

/// IAM and STS are global; SigV4 still wants a region. This is the one the
/// AWS CLI would pick for the `aws` partition when none is configured.
const FALLBACK_REGION: &str = "us-east-1";

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
/// AWS CLI resolves them.
pub async fn load_config(profile: Option<&str>, opts: &AwsOptions) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    // Adaptive retry slows down when an account throttles, instead of
    // failing the audit of that account — unless the user chose a retry
    // mode with the standard AWS_RETRY_MODE / AWS_MAX_ATTEMPTS.
    if std::env::var_os("AWS_RETRY_MODE").is_none()
        && std::env::var_os("AWS_MAX_ATTEMPTS").is_none()
    {
        loader = loader.retry_config(RetryConfig::adaptive().with_max_attempts(5));
    }
    let mut loader = loader.timeout_config(
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
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if matches!(
            err.downcast_ref::<CredentialsError>(),
            Some(CredentialsError::CredentialsNotLoaded(_))
        ) || err.downcast_ref::<ImdsError>().is_some()
        {
            return true;
        }
        next = err.source();
    }
    false
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

/// Counts the HTTP requests (retries included) a set of clients sends, by
/// `service:Operation`.
#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<Mutex<BTreeMap<String, u64>>>);

impl CallCounter {
    pub fn total(&self) -> u64 {
        self.0.lock().expect("counter lock").values().sum()
    }

    pub fn by_operation(&self) -> BTreeMap<String, u64> {
        self.0.lock().expect("counter lock").clone()
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "rekey::CallCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = operation_name(cfg).unwrap_or_else(|| "unknown".into());
        *self.0.lock().expect("counter lock").entry(op).or_default() += 1;
        Ok(())
    }
}

/// `service:Operation` (e.g. `iam:ListUsers`) of the call an interceptor
/// sees, as IAM policies name actions.
pub(crate) fn operation_name(cfg: &ConfigBag) -> Option<String> {
    cfg.load::<Metadata>()
        // "Secrets Manager" → `secretsmanager`, as IAM names its actions.
        .map(|m| {
            format!(
                "{}:{}",
                m.service().to_ascii_lowercase().replace(' ', ""),
                m.name()
            )
        })
}

/// The clients one account is audited (or rotated) with.
#[derive(Debug, Clone)]
pub struct AccountClients {
    pub iam: aws_sdk_iam::Client,
    pub sts: aws_sdk_sts::Client,
    pub calls: CallCounter,
}

impl AccountClients {
    pub fn new(config: &SdkConfig) -> Self {
        let calls = CallCounter::default();
        // IAM throttles per account: each account's clients get their own
        // token bucket and adaptive rate limiter, so one throttled account
        // never slows the others (the default partition is process-wide).
        let partition = aws_sdk_iam::config::retry::RetryPartition::custom("rekey-account").build();
        let iam = aws_sdk_iam::config::Builder::from(config)
            .retry_partition(partition.clone())
            .interceptor(calls.clone());
        let sts = aws_sdk_sts::config::Builder::from(config)
            .retry_partition(partition)
            .interceptor(calls.clone());
        #[cfg(feature = "fault-injection")]
        let (iam, sts) = match crate::faults::FaultInjector::from_env() {
            Some(faults) => (iam.interceptor(faults.clone()), sts.interceptor(faults)),
            None => (iam, sts),
        };
        let (iam, sts) = (iam.build(), sts.build());
        AccountClients {
            iam: aws_sdk_iam::Client::from_conf(iam),
            sts: aws_sdk_sts::Client::from_conf(sts),
            calls,
        }
    }
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
