//! rekey-lambda as Lambda runs it (issue 20): the debug binary, started
//! with nothing but a Lambda function's environment, under the stand-in
//! of the Lambda Runtime API (`support::runtime_api`), its AWS calls going
//! to the emulator with one account's key as the function's credentials.
//! What Lambda would show — an invocation's error, an init error, the log
//! lines — is asserted on, and that the key's secret is in none of it.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::runtime_api::{InitError, Outcome, RuntimeApi};
use crate::support::{self, Account};

/// How long the function may take to start or to answer (a debug build on
/// a loaded two-core machine).
const WAIT: Duration = Duration::from_secs(60);

/// The binary running as a function, its output collected line by line.
struct Function {
    child: Child,
    lines: Arc<Mutex<Vec<Line>>>,
    readers: Vec<JoinHandle<()>>,
    _home: tempfile::TempDir,
}

#[derive(Debug, Clone)]
struct Line {
    stream: &'static str,
    text: String,
}

impl Function {
    /// Starts rekey-lambda polling `api`, with `account`'s key as the
    /// function's credentials, the emulator as its endpoint and `env` over
    /// the defaults. Nothing of the test's own environment is passed.
    fn start(api: &RuntimeApi, account: &Account, env: &[(&str, &str)]) -> Function {
        let home = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rekey-lambda"));
        cmd.env_clear()
            .env("HOME", home.path())
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", "rekey")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/rekey")
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/01/01/[$LATEST]0123456789abcdef",
            )
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", support::moto().endpoint())
            .env("AWS_ACCESS_KEY_ID", &account.admin.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &account.admin.secret_access_key)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", home.path().join("config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                home.path().join("credentials"),
            )
            .env("TMPDIR", home.path())
            .envs(env.iter().copied())
            .current_dir(home.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start rekey-lambda");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect("stdout", child.stdout.take().unwrap(), &lines),
            collect("stderr", child.stderr.take().unwrap(), &lines),
        ];
        Function {
            child,
            lines,
            readers,
            _home: home,
        }
    }

    /// The outcome of invocation `id`; panics, with the function's output,
    /// if the function exits or does not answer in [`WAIT`].
    fn outcome(&mut self, api: &RuntimeApi, id: &str) -> Outcome {
        self.until(|| api.wait_outcome(id, Duration::from_millis(200)))
            .unwrap_or_else(|why| panic!("invocation {id}: {why}\n{}", self.said()))
    }

    /// `found()` once it says something; Err if the function exits first
    /// (with what it left) or [`WAIT`] passes.
    fn until<T>(&mut self, found: impl Fn() -> Option<T>) -> Result<T, String> {
        let end = Instant::now() + WAIT;
        while Instant::now() < end {
            if let Some(t) = found() {
                return Ok(t);
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                return found().ok_or(format!("the function exited ({status}) first"));
            }
        }
        Err(format!("nothing after {WAIT:?}"))
    }

    /// Waits for the function to exit by itself.
    fn exit_status(&mut self) -> ExitStatus {
        let end = Instant::now() + WAIT;
        while Instant::now() < end {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the function still runs after {WAIT:?}\n{}", self.said());
    }

    /// Stops the function (Lambda freezes, then ends, an idle one) and
    /// returns every line it wrote.
    fn stop(mut self) -> Vec<Line> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        self.lines.lock().unwrap().clone()
    }

    /// The output so far, for a failure's message.
    fn said(&self) -> String {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .map(|l| format!("[{}] {}", l.stream, l.text))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(
    stream: &'static str,
    from: impl Read + Send + 'static,
    lines: &Arc<Mutex<Vec<Line>>>,
) -> JoinHandle<()> {
    let lines = lines.clone();
    std::thread::spawn(move || {
        for text in BufReader::new(from).lines().map_while(Result::ok) {
            lines.lock().unwrap().push(Line { stream, text });
        }
    })
}

/// An `/error` outcome's message; panics on a response.
fn error_message(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Error { body, .. } => body["errorMessage"]
            .as_str()
            .unwrap_or_else(|| panic!("an error without errorMessage: {body}"))
            .to_string(),
        Outcome::Response(v) => panic!("a response where an error was due: {v}"),
    }
}

/// The line's JSON object; panics naming a line that is not one.
fn json_object(line: &Line) -> serde_json::Map<String, Value> {
    match serde_json::from_str::<Value>(&line.text) {
        Ok(Value::Object(o)) => o,
        _ => panic!(
            "a log line that is not a JSON object: [{}] {}",
            line.stream, line.text
        ),
    }
}

/// The `requestId` of the invocation span (lambda_runtime's "Lambda
/// runtime invoke") a log line was written in, if any.
fn request_id_of(line: &serde_json::Map<String, Value>) -> Option<String> {
    let spans = std::iter::once(line.get("span"))
        .chain(
            line.get("spans")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(Some),
        )
        .flatten();
    spans
        .filter_map(|s| s.get("requestId").and_then(Value::as_str))
        .map(str::to_string)
        .next()
}

#[test]
fn an_event_of_unknown_shape_is_answered_with_an_error_naming_its_fields() {
    let api = RuntimeApi::start();
    let account = support::moto().new_account();
    let mut function = Function::start(&api, &account, &[]);

    let first = api.invoke(&json!({"hello": "world", "zeta": [1, 2]}));
    let outcome = function.outcome(&api, &first);
    let message = error_message(&outcome);
    assert!(
        message.contains("no shape rekey-lambda knows") && message.contains("hello, zeta"),
        "{message}"
    );
    let Outcome::Error { body, .. } = &outcome else {
        unreachable!()
    };
    assert!(
        body["errorType"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );

    // An SQS-looking batch from another source is no SQS batch; and the
    // function goes on serving after an invocation's error.
    let second = api.invoke(&json!({"Records": [{"eventSource": "aws:s3"}]}));
    let message = error_message(&function.outcome(&api, &second));
    assert!(message.contains("its fields: Records)"), "{message}");

    assert_eq!(api.served(), vec![first, second]);
    assert!(api.init_error().is_none());
    assert_eq!(api.problems(), Vec::<String>::new());
    function.stop();
}

#[test]
fn a_bad_setting_at_start_is_an_init_error_naming_its_variable() {
    let api = RuntimeApi::start();
    let account = support::moto().new_account();
    let mut function = Function::start(&api, &account, &[("REKEY_JOURNAL", "/tmp/x.db")]);

    // The function stops at start, whether or not it reports why.
    let status = function.exit_status();
    let lines = function.stop();
    let said: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert!(!status.success(), "{status}");
    // It never asked for an event with settings it cannot use.
    assert_eq!(api.polls(), 0);
    assert!(
        said.iter()
            .any(|l| l.contains("REKEY_JOURNAL") && l.contains("/tmp/x.db")),
        "the logs name the variable and its value: {said:#?}"
    );
    let secret = account.admin.secret_access_key.as_str();
    assert!(!said.iter().any(|l| l.contains(secret)), "{said:#?}");

    // What Lambda shows for a failed start: the init error the runtime
    // reported (without one, only "Runtime.ExitError" and the log).
    let Some(InitError { body, error_type }) = api.init_error() else {
        panic!(
            "rekey-lambda exited without POSTing /runtime/init/error (lambda_runtime 1.x \
             reports init errors only under SnapStart: the binary must report its own). \
             It said: {said:#?}"
        );
    };
    let message = body["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("REKEY_JOURNAL") && message.contains("/tmp/x.db"),
        "{body}"
    );
    assert!(
        message.contains("dynamodb:TABLE"),
        "says what to write: {body}"
    );
    assert!(error_type.is_some(), "{body}");
    assert!(!body.to_string().contains(secret));
    // Said in the log as JSON too, as everything the function logs.
    for line in &lines {
        json_object(line);
    }
    assert_eq!(api.problems(), Vec::<String>::new());
}

#[test]
fn log_lines_are_json_objects_carrying_the_request_id_and_no_secret() {
    let api = RuntimeApi::start();
    let account = support::moto().new_account();
    // rekey.toml from SSM: one signed AWS call at start, so the
    // credentials are used (and at debug level, logged about) before any
    // invocation.
    let ssm = aws_sdk_ssm::Client::new(&support::sdk_config(&account.admin));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(
        ssm.put_parameter()
            .name("/rekey/lambda-test/config")
            .value("[policy]\nmax_age = \"90d\"\n")
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send(),
    )
    .expect("put the rekey.toml parameter");
    let mut function = Function::start(
        &api,
        &account,
        &[
            ("REKEY_CONFIG", "ssm:/rekey/lambda-test/config"),
            ("RUST_LOG", "debug"),
        ],
    );

    let ids: Vec<String> = (0..2)
        .map(|i| api.invoke(&json!({ "unexpected": i })))
        .collect();
    let outcomes: Vec<Outcome> = ids.iter().map(|id| function.outcome(&api, id)).collect();
    for outcome in &outcomes {
        assert!(error_message(outcome).contains("unexpected"), "{outcome:?}");
    }
    let lines = function.stop();

    assert!(!lines.is_empty(), "the function logged nothing");
    let objects: Vec<_> = lines.iter().map(json_object).collect();
    for id in &ids {
        let in_span = objects
            .iter()
            .filter(|o| request_id_of(o).as_deref() == Some(id.as_str()))
            .count();
        assert!(in_span > 0, "no log line carries requestId {id}");
    }
    for o in &objects {
        assert!(
            o.get("level").and_then(Value::as_str).is_some() && o.get("timestamp").is_some(),
            "a log line without level or timestamp: {o:?}"
        );
    }
    let secret = &account.admin.secret_access_key;
    for line in &lines {
        assert!(
            !line.text.contains(secret.as_str()),
            "the secret in [{}] {}",
            line.stream,
            line.text
        );
    }
    for outcome in &outcomes {
        assert!(!format!("{outcome:?}").contains(secret.as_str()));
    }
    assert_eq!(api.problems(), Vec::<String>::new());
}
