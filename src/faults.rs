//! Fault injection for the rotation tests (feature `fault-injection`, off
//! in normal builds): an SDK interceptor that fails chosen AWS calls, and a
//! hook that kills the process right after a chosen journal record — the
//! two ways a rotation can be interrupted in real life.
//!
//! The interceptor is attached to every client in one place, the client
//! factory ([`crate::aws::ClientFactory`]). Both are driven by environment
//! variables so the tests can run the real `rekey` binary:
//! - `REKEY_FAULTS=iam:CreateAccessKey@after,sts:GetCallerIdentity@before*3`:
//!   fail the call before it is sent (`@before`: nothing happened) or after
//!   its answer arrived (`@after`: it happened, the answer is lost), the
//!   first N times (`*N`, default 1; `*0` = every time), after letting the
//!   first K matching calls through (`+K`, default 0). `@kill` aborts the
//!   process before the call is sent: `ssm:PutParameter@kill+1` dies
//!   between a destination's first and second write (issue 15 #9), which
//!   no journal record sits between. `@wait` holds the call until the
//!   file `REKEY_WAIT_FILE` names exists, after creating that name with
//!   `.waiting` appended: a test lets another run go first, then this one
//!   on — two runs interleaved exactly (issue 15 #10).
//! - `REKEY_CRASH_AT=create_key:done`: abort the process (no destructors,
//!   like `kill -9`) right after that step and phase are journaled;
//!   `deliver:effect` aborts after the step's side effect took place but
//!   before its Done is journaled — the instant a resumed run must redo a
//!   step that in fact happened.

/// Kills the process if `REKEY_CRASH_AT` names this record (`step`,
/// `phase` as the journal writes them: `create_key`, `done`).
pub fn crash_point(step: &str, phase: &str) {
    #[cfg(feature = "fault-injection")]
    if let Ok(at) = std::env::var("REKEY_CRASH_AT")
        && at == format!("{step}:{phase}")
    {
        eprintln!("rekey: fault injection: crashing at {at}");
        std::process::abort();
    }
    #[cfg(not(feature = "fault-injection"))]
    let _ = (step, phase);
}

/// Kills the process if `REKEY_CRASH_AT` names `STEP:effect`: the side
/// effect happened, the journal does not know it yet.
pub fn crash_after_effect(step: &str) {
    crash_point(step, "effect");
}

#[cfg(feature = "fault-injection")]
pub use interceptor::FaultInjector;

#[cfg(feature = "fault-injection")]
mod interceptor {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    use aws_smithy_runtime_api::box_error::BoxError;
    use aws_smithy_runtime_api::client::interceptors::Intercept;
    use aws_smithy_runtime_api::client::interceptors::context::{
        BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    };
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_types::config_bag::ConfigBag;

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    enum When {
        Before,
        After,
        /// Abort the process before the call is sent.
        Kill,
        /// Hold the call until `REKEY_WAIT_FILE` exists.
        Wait,
    }

    /// Per (operation, when): calls still to let through, then failures
    /// still to inject. Process-wide, so every client of the run shares it.
    type Budget = HashMap<(String, When), (u32, u32)>;

    fn budget() -> &'static Mutex<Budget> {
        static BUDGET: OnceLock<Mutex<Budget>> = OnceLock::new();
        BUDGET.get_or_init(|| {
            let spec = std::env::var("REKEY_FAULTS").unwrap_or_default();
            let mut map = HashMap::new();
            for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (rest, count) = item.split_once('*').unwrap_or((item, "1"));
                let (rest, skip) = rest.split_once('+').unwrap_or((rest, "0"));
                let (op, when) = match rest.split_once('@') {
                    Some((op, "after")) => (op, When::After),
                    Some((op, "kill")) => (op, When::Kill),
                    Some((op, "wait")) => (op, When::Wait),
                    Some((op, _)) => (op, When::Before),
                    None => (rest, When::Before),
                };
                let n: u32 = count.parse().unwrap_or(1);
                let skip: u32 = skip.parse().unwrap_or(0);
                map.insert(
                    (op.to_string(), when),
                    (skip, if n == 0 { u32::MAX } else { n }),
                );
            }
            Mutex::new(map)
        })
    }

    fn take(cfg: &ConfigBag, when: When) -> Result<(), BoxError> {
        let Some(op) = crate::calls::operation_name(cfg) else {
            return Ok(());
        };
        let mut budget = budget().lock().expect("fault budget");
        match budget.get_mut(&(op.clone(), when)) {
            Some((skip, _)) if *skip > 0 => {
                *skip -= 1;
                Ok(())
            }
            Some((_, n)) if *n > 0 => {
                if *n != u32::MAX {
                    *n -= 1;
                }
                Err(format!("fault injected into {op} ({when:?})").into())
            }
            _ => Ok(()),
        }
    }

    /// Says it is waiting (`REKEY_WAIT_FILE` + `.waiting`), then blocks
    /// this thread until `REKEY_WAIT_FILE` exists.
    fn wait_for_file() {
        let Some(file) = std::env::var_os("REKEY_WAIT_FILE").map(std::path::PathBuf::from) else {
            return;
        };
        let mut waiting = file.clone().into_os_string();
        waiting.push(".waiting");
        let _ = std::fs::write(&waiting, b"");
        eprintln!("rekey: fault injection: waiting for {}", file.display());
        while !file.exists() {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Fails the calls `REKEY_FAULTS` names.
    #[derive(Debug, Default, Clone)]
    pub struct FaultInjector;

    impl FaultInjector {
        /// An injector when `REKEY_FAULTS` is set.
        pub fn from_env() -> Option<Self> {
            std::env::var_os("REKEY_FAULTS").map(|_| FaultInjector)
        }
    }

    impl Intercept for FaultInjector {
        fn name(&self) -> &'static str {
            "rekey::FaultInjector"
        }

        fn read_before_transmit(
            &self,
            _context: &BeforeTransmitInterceptorContextRef<'_>,
            _components: &RuntimeComponents,
            cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            if let Err(e) = take(cfg, When::Kill) {
                // Like kill -9: no destructors, no answer, no journal record.
                eprintln!("rekey: fault injection: crashing before the call: {e}");
                std::process::abort();
            }
            if take(cfg, When::Wait).is_err() {
                wait_for_file();
            }
            take(cfg, When::Before)
        }

        fn read_before_deserialization(
            &self,
            _context: &BeforeDeserializationInterceptorContextRef<'_>,
            _components: &RuntimeComponents,
            cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            take(cfg, When::After)
        }
    }
}
