//! What an AWS call is named (`iam:CreateAccessKey`, as IAM policies name
//! actions) and how many were sent: shared by the clients rekey builds
//! (`aws`) and the fault injector of the tests (`faults`), so neither
//! depends on the other for it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

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
