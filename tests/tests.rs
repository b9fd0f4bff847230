//! The integration tests: the `rekey` binary and library against moto
//! (started once for this binary by `support`), each test in its own
//! accounts. One binary, so the AWS SDK is linked once.

mod support;

mod audit;
mod enforce;
#[cfg(feature = "fault-injection")]
mod faults;
mod findings;
mod first_run;
mod history;
mod journal;
mod journal_conformance;
mod journal_dynamo;
#[cfg(feature = "lambda")]
mod lambda;
#[cfg(feature = "lambda")]
mod lambda_config;
#[cfg(feature = "lambda")]
mod lambda_runtime;
mod library_run;
mod notify;
mod notify_support;
mod permissions;
mod plan;
mod promises;
mod rotate;
mod rotate_word;
mod rotation_safety;
#[cfg(feature = "fault-injection")]
mod safety;
mod schedule;
mod service_access;
mod service_keys;
mod service_matrix;
mod service_runs;
mod throttling;
