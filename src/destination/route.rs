//! How an AWS destination (a secret, a parameter) is reached: the run's
//! credentials in the destination's region, or a role (with the external ID
//! its trust asks for) assumed with them. The role is journaled with the
//! destination, so a resumed run reaches the same account; credentials
//! never are.

use aws_config::{Region, SdkConfig};
use aws_credential_types::Credentials;
use tokio::sync::OnceCell;

use crate::error::CallError;

/// Region and role of an AWS destination, over `base`'s credentials.
#[derive(Clone)]
pub(crate) struct Route {
    base: SdkConfig,
    pub region: Option<String>,
    /// A role ARN and its external ID.
    pub role: Option<(String, Option<String>)>,
}

impl Route {
    pub fn new(base: &SdkConfig, region: Option<String>) -> Self {
        Route {
            base: base.clone(),
            region,
            role: None,
        }
    }

    pub fn role_arn(&self) -> Option<String> {
        self.role.as_ref().map(|(arn, _)| arn.clone())
    }

    pub fn external_id(&self) -> Option<String> {
        self.role.as_ref().and_then(|(_, id)| id.clone())
    }

    /// `base` in the destination's region.
    fn regional(&self) -> SdkConfig {
        let mut config = self.base.to_builder();
        if let Some(region) = &self.region {
            config = config.region(Region::new(region.clone()));
        }
        config.build()
    }

    /// What the destination's calls are signed with: `base`, or the role
    /// assumed with it (one AssumeRole).
    pub async fn config(&self) -> Result<SdkConfig, CallError> {
        let config = self.regional();
        let Some((role, external_id)) = &self.role else {
            return Ok(config);
        };
        let sts = aws_sdk_sts::Client::new(&config);
        let creds = crate::aws::assume_role(&sts, role, external_id.as_deref()).await?;
        Ok(crate::aws::with_credentials(&config, creds))
    }

    /// The role's session the run already has open: no second AssumeRole.
    fn with_session(&self, session: &Credentials) -> SdkConfig {
        crate::aws::with_credentials(&self.regional(), session.clone())
    }
}

/// A destination's SDK client (`C`), built once over its [`Route`]: from
/// the run's open role session when it has one, else on first use.
pub(crate) struct RoutedClient<C> {
    pub route: Route,
    client: OnceCell<C>,
    build: fn(&SdkConfig) -> C,
}

impl<C> RoutedClient<C> {
    pub fn new(route: Route, build: fn(&SdkConfig) -> C) -> Self {
        RoutedClient {
            route,
            client: OnceCell::new(),
            build,
        }
    }

    /// The role's session is already open: no second AssumeRole. The role
    /// is still journaled, so a resumed run assumes it again.
    pub fn with_session(self, session: &Credentials) -> Self {
        let _ = self
            .client
            .set((self.build)(&self.route.with_session(session)));
        self
    }

    /// The client; the first use may assume the route's role.
    pub async fn get(&self) -> Result<&C, CallError> {
        self.client
            .get_or_try_init(|| async { Ok((self.build)(&self.route.config().await?)) })
            .await
    }
}
