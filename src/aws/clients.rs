//! The one place SDK clients are built: every client rekey makes (IAM and
//! STS for an account, Secrets Manager and SSM for a destination) comes
//! from a [`ClientFactory`], which adds the interceptors every client of a
//! run carries — the fault injector of the tests (feature
//! `fault-injection`, `REKEY_FAULTS`) — once, whatever the service. Before
//! issue 16 that code was written out three times (here, and in the Secrets
//! Manager and SSM destinations).

use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;

use crate::calls::CallCounter;

/// Builds SDK clients that carry the run's interceptors. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ClientFactory {
    interceptors: Vec<SharedInterceptor>,
}

/// A service's client configuration builder that takes interceptors; one
/// line per SDK crate below.
trait Intercepted {
    fn add(&mut self, interceptor: SharedInterceptor);
}

macro_rules! intercepted {
    ($($sdk:ident),+) => {$(
        impl Intercepted for $sdk::config::Builder {
            fn add(&mut self, interceptor: SharedInterceptor) {
                self.push_interceptor(interceptor);
            }
        }
    )+};
}

intercepted!(
    aws_sdk_dynamodb,
    aws_sdk_iam,
    aws_sdk_sts,
    aws_sdk_secretsmanager,
    aws_sdk_sesv2,
    aws_sdk_sns,
    aws_sdk_ssm
);

#[cfg(feature = "lambda")]
intercepted!(aws_sdk_sqs, aws_sdk_config, aws_sdk_s3);

impl ClientFactory {
    /// The factory of this process: with the fault injector when the
    /// build has the feature and `REKEY_FAULTS` is set, else plain.
    pub fn from_env() -> Self {
        #[allow(unused_mut)]
        let mut interceptors = Vec::new();
        #[cfg(feature = "fault-injection")]
        if let Some(faults) = crate::faults::FaultInjector::from_env() {
            interceptors.push(SharedInterceptor::new(faults));
        }
        ClientFactory { interceptors }
    }

    fn intercepted<B: Intercepted>(&self, mut builder: B) -> B {
        for interceptor in &self.interceptors {
            builder.add(interceptor.clone());
        }
        builder
    }

    /// IAM and STS clients for one account, counting their calls.
    pub fn account(&self, config: &SdkConfig) -> AccountClients {
        let calls = CallCounter::default();
        // IAM throttles per account: each account's clients get their own
        // retry token bucket (and adaptive rate limiter, when chosen), so one
        // throttled account never slows the others (the default partition
        // is process-wide). A custom partition carries its own bucket: the
        // name is only a label.
        let partition = aws_sdk_iam::config::retry::RetryPartition::custom("rekey-account").build();
        let iam = aws_sdk_iam::config::Builder::from(config)
            .retry_partition(partition.clone())
            .interceptor(calls.clone());
        let sts = aws_sdk_sts::config::Builder::from(config)
            .retry_partition(partition)
            .interceptor(calls.clone());
        AccountClients {
            iam: aws_sdk_iam::Client::from_conf(self.intercepted(iam).build()),
            sts: aws_sdk_sts::Client::from_conf(self.intercepted(sts).build()),
            calls,
        }
    }

    /// A Secrets Manager client signing as `config` says.
    pub fn secrets_manager(&self, config: &SdkConfig) -> aws_sdk_secretsmanager::Client {
        let builder = aws_sdk_secretsmanager::config::Builder::from(config);
        aws_sdk_secretsmanager::Client::from_conf(self.intercepted(builder).build())
    }

    /// A DynamoDB client (the journal's table) signing as `config` says.
    pub fn dynamodb(&self, config: &SdkConfig) -> aws_sdk_dynamodb::Client {
        let builder = aws_sdk_dynamodb::config::Builder::from(config);
        aws_sdk_dynamodb::Client::from_conf(self.intercepted(builder).build())
    }

    /// An SNS client (notifications) signing as `config` says.
    pub fn sns(&self, config: &SdkConfig) -> aws_sdk_sns::Client {
        let builder = aws_sdk_sns::config::Builder::from(config);
        aws_sdk_sns::Client::from_conf(self.intercepted(builder).build())
    }

    /// An SES v2 client (notifications) signing as `config` says.
    pub fn sesv2(&self, config: &SdkConfig) -> aws_sdk_sesv2::Client {
        let builder = aws_sdk_sesv2::config::Builder::from(config);
        aws_sdk_sesv2::Client::from_conf(self.intercepted(builder).build())
    }

    /// An SSM client signing as `config` says.
    pub fn ssm(&self, config: &SdkConfig) -> aws_sdk_ssm::Client {
        let builder = aws_sdk_ssm::config::Builder::from(config);
        aws_sdk_ssm::Client::from_conf(self.intercepted(builder).build())
    }

    /// An SQS client (the Lambda's fan-out) signing as `config` says.
    #[cfg(feature = "lambda")]
    pub fn sqs(&self, config: &SdkConfig) -> aws_sdk_sqs::Client {
        let builder = aws_sdk_sqs::config::Builder::from(config);
        aws_sdk_sqs::Client::from_conf(self.intercepted(builder).build())
    }

    /// An AWS Config client (the Lambda as a Config rule) signing as
    /// `config` says.
    #[cfg(feature = "lambda")]
    pub fn config_service(&self, config: &SdkConfig) -> aws_sdk_config::Client {
        let builder = aws_sdk_config::config::Builder::from(config);
        aws_sdk_config::Client::from_conf(self.intercepted(builder).build())
    }

    /// An S3 client (the Lambda's rekey.toml at `s3://…`) signing as
    /// `config` says; path-style, as an endpoint override (the emulator)
    /// needs.
    #[cfg(feature = "lambda")]
    pub fn s3(&self, config: &SdkConfig) -> aws_sdk_s3::Client {
        let builder = aws_sdk_s3::config::Builder::from(config).force_path_style(true);
        aws_sdk_s3::Client::from_conf(self.intercepted(builder).build())
    }
}

/// The clients one account is audited (or rotated) with.
#[derive(Debug, Clone)]
pub struct AccountClients {
    pub iam: aws_sdk_iam::Client,
    pub sts: aws_sdk_sts::Client,
    pub calls: CallCounter,
}

impl AccountClients {
    /// [`ClientFactory::account`] of this process's factory.
    pub fn new(config: &SdkConfig) -> Self {
        ClientFactory::from_env().account(config)
    }
}
