//! The Lambda function as the tests invoke it in-process: its shared
//! state (what a container builds once) signing as given credentials, and
//! an invocation's context.

use std::path::PathBuf;
use std::sync::Arc;

use rekey::aws::{AwsOptions, Deps};
use rekey::clock::SystemClock;
use rekey::lambda::{Invocation, Settings, Shared};

use super::{Creds, moto, sdk_config};

/// The function the invocations name.
pub const FUNCTION: &str = "arn:aws:lambda:us-east-1:111111111111:function:rekey";

/// The container's shared state, signing as `base`, with the settings
/// `vars` holds and rekey.toml at `config`.
pub fn shared_as(base: &Creds, vars: &[(&str, &str)], config: Option<PathBuf>) -> Shared {
    let vars: Vec<(String, String)> = (vars.iter())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let settings =
        Settings::from_env(&move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
            .expect("settings");
    let aws = AwsOptions {
        endpoint_url: Some(moto().endpoint()),
        region: Some("us-east-1".into()),
    };
    Shared {
        settings,
        deps: Deps::new(sdk_config(base), aws, None),
        clock: Arc::new(SystemClock),
        config_path: config,
    }
}

/// Invocation `id`, 15 minutes from its deadline.
pub fn invocation(id: &str) -> Invocation {
    Invocation {
        request_id: id.to_string(),
        deadline: time::OffsetDateTime::now_utc() + time::Duration::minutes(15),
        function_arn: Some(FUNCTION.into()),
    }
}
