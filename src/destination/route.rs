//! How an AWS destination (a secret, a parameter) is reached: its job's
//! configuration in the destination's region, or a role (with the external
//! ID its trust asks for) assumed with it. The role is journaled with the
//! destination, so a resumed run reaches the same account; credentials
//! never are. Sessions and clients come from the run's [`Deps`]: a role
//! the run has assumed already (the account a `--service` job entered
//! through it) is not assumed again.

use aws_config::{Region, SdkConfig};
use tokio::sync::OnceCell;

use crate::aws::{ClientFactory, Deps, Signer};
use crate::error::CallError;

/// What a job's destinations are opened with: the job's configuration
/// (region, endpoint, and the credentials its destinations sign with),
/// who those credentials are (roles are assumed with them), the run's
/// [`Deps`], and the account of the job's user, when known.
#[derive(Clone)]
pub struct Reach {
    pub config: SdkConfig,
    pub signer: Signer,
    pub deps: Deps,
    /// A secret of another account is reached through a role there; a
    /// call it denies says which account it is in.
    pub user_account: Option<String>,
}

/// Region and role of an AWS destination, over its [`Reach`].
#[derive(Clone)]
pub(crate) struct Route {
    reach: Reach,
    pub region: Option<String>,
    /// A role ARN and its external ID.
    pub role: Option<(String, Option<String>)>,
}

impl Route {
    pub fn new(reach: &Reach, region: Option<String>) -> Self {
        Route {
            reach: reach.clone(),
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

    pub fn user_account(&self) -> Option<&str> {
        self.reach.user_account.as_deref()
    }

    /// The job's configuration in the destination's region.
    fn regional(&self) -> SdkConfig {
        let mut config = self.reach.config.to_builder();
        if let Some(region) = &self.region {
            config = config.region(Region::new(region.clone()));
        }
        config.build()
    }

    /// What the destination's calls are signed with: the job's
    /// credentials, or the role's session (assumed once per run).
    pub async fn config(&self) -> Result<SdkConfig, CallError> {
        let config = self.regional();
        let Some((role, external_id)) = &self.role else {
            return Ok(config);
        };
        let deps = &self.reach.deps;
        let session = deps
            .role_session(&self.reach.signer, role, external_id.as_deref())
            .await?;
        Ok(crate::aws::with_credentials(&config, session))
    }
}

/// A destination's SDK client (`C`), built on first use over its
/// [`Route`] by the run's one [`ClientFactory`].
pub(crate) struct RoutedClient<C> {
    pub route: Route,
    client: OnceCell<C>,
    build: fn(&ClientFactory, &SdkConfig) -> C,
}

impl<C> RoutedClient<C> {
    pub fn new(route: Route, build: fn(&ClientFactory, &SdkConfig) -> C) -> Self {
        RoutedClient {
            route,
            client: OnceCell::new(),
            build,
        }
    }

    /// The client; the first use may assume the route's role.
    pub async fn get(&self) -> Result<&C, CallError> {
        self.client
            .get_or_try_init(|| async {
                let config = self.route.config().await?;
                Ok((self.build)(self.route.reach.deps.clients(), &config))
            })
            .await
    }
}
