//! rekey-lambda: every rekey function behind one binary (README, "rekey in
//! AWS Lambda"). The clients and settings are built once per container;
//! each event goes to the library's handler for its shape.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use rekey::clock::SystemClock;
use rekey::lambda::{Invocation, Settings, Shared, handle};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    rekey::lambda::logs::init();
    let settings = Settings::from_env(&|k| std::env::var(k).ok())?;
    let shared = Arc::new(Shared::new(settings, Arc::new(SystemClock)).await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let shared = shared.clone();
        async move {
            let inv = Invocation::of(&event.context);
            Ok::<Value, Error>(handle(&shared, event.payload, &inv).await?)
        }
    }))
    .await
}
