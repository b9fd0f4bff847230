//! [`Deps`]: the live things a run opens its jobs with, built once (the
//! CLI once per command, the Lambda once per container) and lent to every
//! job, so a job itself stays data ([`crate::rotation::JobSpec`]):
//!
//! - the caller's own configuration (region, endpoint, retries, and the
//!   credentials roles are assumed with) and the [`AwsOptions`] it came from;
//! - the shared credentials and config files, for the region and endpoint
//!   of a profile's job;
//! - the one [`ClientFactory`] every client comes from;
//! - what was opened so far, so it is opened once per run: role sessions
//!   (by who assumed them, role and external ID; assumed again shortly
//!   before they expire) and profiles' configurations;
//! - the MFA codes the person typed, by device: never in a spec, never
//!   printed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::{Region, SdkConfig};
use aws_credential_types::Credentials;
use secrecy::SecretString;

use super::{AwsOptions, ClientFactory, assume_role, load_config};
use crate::awsfiles::Profiles;
use crate::error::CallError;

/// Whose credentials assume a role: the caller's own, or those of a named
/// profile (a `--service` account reached through its profile).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Signer {
    Caller,
    Profile(String),
}

/// A role session assumed once, for everyone who asks for the same one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SessionKey {
    signer: Signer,
    role_arn: String,
    external_id: Option<String>,
}

type Slot = Arc<tokio::sync::Mutex<Option<Credentials>>>;

/// A session this close to its expiry is assumed again.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Everything live a run needs besides its journal. Cheap to clone (one
/// shared inside), so each opened job and destination holds one.
#[derive(Clone)]
pub struct Deps {
    inner: Arc<Inner>,
}

struct Inner {
    base: SdkConfig,
    aws: AwsOptions,
    profiles: Option<Arc<Profiles>>,
    clients: ClientFactory,
    sessions: Mutex<HashMap<SessionKey, Slot>>,
    profile_configs: tokio::sync::Mutex<HashMap<String, SdkConfig>>,
    mfa_codes: Mutex<HashMap<String, SecretString>>,
}

impl std::fmt::Debug for Deps {
    // Never an MFA code, never credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps")
            .field("aws", &self.inner.aws)
            .field("profiles", &self.inner.profiles.is_some())
            .finish_non_exhaustive()
    }
}

impl Deps {
    /// `base` is the caller's configuration, loaded from `aws`; `profiles`
    /// the shared files, when the run reads them.
    pub fn new(base: SdkConfig, aws: AwsOptions, profiles: Option<Arc<Profiles>>) -> Deps {
        Deps {
            inner: Arc::new(Inner {
                base,
                aws,
                profiles,
                clients: ClientFactory::from_env(),
                sessions: Mutex::default(),
                profile_configs: tokio::sync::Mutex::default(),
                mfa_codes: Mutex::default(),
            }),
        }
    }

    /// The caller's own configuration.
    pub fn base(&self) -> &SdkConfig {
        &self.inner.base
    }

    pub fn aws(&self) -> &AwsOptions {
        &self.inner.aws
    }

    pub fn profiles(&self) -> Option<&Profiles> {
        self.inner.profiles.as_deref()
    }

    pub fn clients(&self) -> &ClientFactory {
        &self.inner.clients
    }

    /// The caller's configuration with the region and endpoint of
    /// `profile` (see [`profile_config`]); the caller's own without one.
    pub fn settings_of(&self, profile: Option<&str>) -> SdkConfig {
        match self.profiles() {
            Some(profiles) => profile_config(self.base(), profiles, profile, self.aws()),
            None => self.base().clone(),
        }
    }

    /// The configuration of profile `name`, its credentials included, as
    /// discovery loads it: loaded once per run.
    pub async fn profile(&self, name: &str) -> SdkConfig {
        let mut loaded = self.inner.profile_configs.lock().await;
        if let Some(config) = loaded.get(name) {
            return config.clone();
        }
        let config = load_config(Some(name), self.aws()).await;
        loaded.insert(name.to_string(), config.clone());
        config
    }

    /// Keeps `config`, loaded from profile `name` by someone else (discovery),
    /// so [`Deps::profile`] does not load it again.
    pub async fn remember_profile(&self, name: &str, config: SdkConfig) {
        let mut loaded = self.inner.profile_configs.lock().await;
        loaded.entry(name.to_string()).or_insert(config);
    }

    /// The configuration `signer` assumes roles with.
    pub async fn signer_config(&self, signer: &Signer) -> SdkConfig {
        match signer {
            Signer::Caller => self.base().clone(),
            Signer::Profile(name) => self.profile(name).await,
        }
    }

    /// A session of `role_arn` assumed by `signer`: one AssumeRole per run
    /// for everyone who asks (an account entered through a role, its
    /// users' jobs and their destinations), again only near its expiry.
    pub async fn role_session(
        &self,
        signer: &Signer,
        role_arn: &str,
        external_id: Option<&str>,
    ) -> Result<Credentials, CallError> {
        let key = SessionKey {
            signer: signer.clone(),
            role_arn: role_arn.to_string(),
            external_id: external_id.map(str::to_string),
        };
        let slot = {
            let mut sessions = self.inner.sessions.lock().expect("sessions lock");
            sessions.entry(key).or_default().clone()
        };
        let mut held = slot.lock().await;
        if let Some(session) = held.as_ref().filter(|s| lasts(s)) {
            return Ok(session.clone());
        }
        let config = self.signer_config(signer).await;
        let sts = self.clients().account(&config).sts;
        let session = assume_role(&sts, role_arn, external_id).await?;
        *held = Some(session.clone());
        Ok(session)
    }

    /// Keeps the MFA code the person gave for device `serial`, for the
    /// jobs whose way in is an MFA session of it.
    pub fn remember_mfa_code(&self, serial: &str, code: SecretString) {
        let mut codes = self.inner.mfa_codes.lock().expect("codes lock");
        codes.insert(serial.to_string(), code);
    }

    /// The MFA code given for device `serial`.
    pub fn mfa_code(&self, serial: &str) -> Option<SecretString> {
        let codes = self.inner.mfa_codes.lock().expect("codes lock");
        codes.get(serial).cloned()
    }
}

/// Whether a session is good for a while yet (one without an expiry is).
fn lasts(session: &Credentials) -> bool {
    session
        .expiry()
        .is_none_or(|at| at > SystemTime::now() + EXPIRY_MARGIN)
}

/// `base` with the region and endpoint of `profile`, unless a flag or the
/// environment already chose them.
pub fn profile_config(
    base: &SdkConfig,
    profiles: &Profiles,
    profile: Option<&str>,
    aws: &AwsOptions,
) -> SdkConfig {
    let Some(p) = profile.and_then(|name| profiles.get(name)) else {
        return base.clone();
    };
    let mut config = base.to_builder();
    let chosen =
        |flag: &Option<String>, env: &str| flag.is_some() || std::env::var_os(env).is_some();
    if !chosen(&aws.endpoint_url, "AWS_ENDPOINT_URL")
        && let Some(url) = p.endpoint_url()
    {
        config = config.endpoint_url(url);
    }
    if !chosen(&aws.region, "AWS_REGION")
        && let Some(region) = p.region()
    {
        config = config.region(Region::new(region.to_string()));
    }
    config.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn deps() -> Deps {
        Deps::new(SdkConfig::builder().build(), AwsOptions::default(), None)
    }

    #[test]
    fn an_mfa_code_is_kept_by_device_and_never_printed() {
        let deps = deps();
        deps.remember_mfa_code("arn:aws:iam::1:mfa/dev", "123456".to_string().into());
        let code = deps.mfa_code("arn:aws:iam::1:mfa/dev").expect("kept");
        assert_eq!(code.expose_secret(), "123456");
        assert!(deps.mfa_code("arn:aws:iam::1:mfa/other").is_none());
        assert!(!format!("{deps:?}").contains("123456"));
    }

    #[test]
    fn a_session_near_its_expiry_is_assumed_again() {
        let session = |expiry| Credentials::new("ASIA", "s", Some("t".into()), expiry, "test");
        assert!(lasts(&session(None)));
        let soon = SystemTime::now() + Duration::from_secs(60);
        assert!(!lasts(&session(Some(soon))));
        let later = SystemTime::now() + Duration::from_secs(3600);
        assert!(lasts(&session(Some(later))));
    }
}
