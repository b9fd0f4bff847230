//! rekey-lambda: every rekey function behind one binary (README, "rekey in
//! AWS Lambda"). The clients and settings are built once per container;
//! each event goes to the library's handler for its shape.

use std::sync::Arc;

use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use rekey::clock::SystemClock;
use rekey::lambda::{Invocation, LambdaError, Settings, Shared, handle};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    rekey::lambda::logs::init();
    let shared = match start().await {
        Ok(shared) => Arc::new(shared),
        Err(e) => {
            rekey::lambda::report_init_error(&e).await;
            std::process::exit(1);
        }
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let shared = shared.clone();
        async move {
            let inv = Invocation::of(&event.context);
            // The error as Lambda shows it: a type a reader can tell apart
            // and the whole chain of causes (never a secret).
            handle(&shared, event.payload, &inv)
                .await
                .map_err(|e| Diagnostic {
                    error_type: "rekey.LambdaError".into(),
                    error_message: rekey::error::error_chain(&e),
                })
        }
    }))
    .await
}

async fn start() -> Result<Shared, LambdaError> {
    let settings = Settings::from_env(&|k| std::env::var(k).ok())?;
    Shared::new(settings, Arc::new(SystemClock)).await
}
