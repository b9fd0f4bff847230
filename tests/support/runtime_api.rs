//! A stand-in for the Lambda Runtime API (2018-06-01), enough to run the
//! `rekey-lambda` binary as Lambda would: an HTTP/1.1 server on 127.0.0.1,
//! on its own std threads (tests run many tokio runtimes, so it depends on
//! none), whose address goes in the child's `AWS_LAMBDA_RUNTIME_API`.
//!
//! | request | answer |
//! |---|---|
//! | `GET /2018-06-01/runtime/invocation/next` | waits for a queued event ([`RuntimeApi::invoke`]), then serves it with `Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms`, `-Invoked-Function-Arn`, `-Trace-Id` |
//! | `POST …/invocation/{id}/response` | 202; the body is that invocation's [`Outcome::Response`] |
//! | `POST …/invocation/{id}/error` | 202; the body (`errorType`, `errorMessage`) is its [`Outcome::Error`] |
//! | `POST /2018-06-01/runtime/init/error` | 202; the body is the [`RuntimeApi::init_error`] |
//!
//! Like Lambda, it answers a second outcome for one invocation, or one for
//! an ID it never served, with 400; anything off the protocol is kept as a
//! [`RuntimeApi::problems`] line for the test to assert on. Connections
//! are kept alive (the runtime's client pools them).

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::http::{Request, read_request, reason};

/// The ARN every invocation names.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:rekey";

/// How long an invocation may run, as its deadline header says.
const TIMEOUT: Duration = Duration::from_secs(300);

const NEXT: &str = "/2018-06-01/runtime/invocation/next";
const INVOCATION: &str = "/2018-06-01/runtime/invocation/";
const INIT_ERROR: &str = "/2018-06-01/runtime/init/error";

/// What the function answered to one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `/response`: the handler's result (JSON, or a string if the body
    /// is not JSON).
    Response(Value),
    /// `/error`: the body and the `Lambda-Runtime-Function-Error-Type`
    /// header, if sent.
    Error {
        body: Value,
        error_type: Option<String>,
    },
}

/// What the function reported before its first invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct InitError {
    pub body: Value,
    pub error_type: Option<String>,
}

/// A running stand-in; stopped when dropped.
pub struct RuntimeApi {
    port: u16,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled on every change of `state`.
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Events not yet handed out: (request ID, body).
    queue: VecDeque<(String, Vec<u8>)>,
    /// Request IDs handed out by `/next`, in order.
    served: Vec<String>,
    outcomes: HashMap<String, Outcome>,
    init_error: Option<InitError>,
    /// `/next` requests received (a runtime that polls has finished its
    /// start).
    polls: usize,
    problems: Vec<String>,
    stop: bool,
}

impl RuntimeApi {
    /// Binds 127.0.0.1 on a free port and serves until dropped.
    pub fn start() -> RuntimeApi {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind the runtime API stand-in");
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("runtime-api-{port}"))
                .spawn(move || {
                    for stream in listener.incoming() {
                        if shared.lock().stop {
                            break;
                        }
                        let Ok(stream) = stream else { continue };
                        let shared = shared.clone();
                        // One thread per connection: `/next` blocks its own.
                        std::thread::spawn(move || {
                            // A client that goes away (the child killed)
                            // is no problem; a malformed request is.
                            if let Err(e) = serve(stream, &shared)
                                && e.kind() == io::ErrorKind::InvalidData
                            {
                                shared.problem(format!("connection: {e}"));
                            }
                        });
                    }
                })
                .expect("spawn the runtime API thread")
        };
        RuntimeApi {
            port,
            shared,
            thread: Some(thread),
        }
    }

    /// `host:port`, as `AWS_LAMBDA_RUNTIME_API` takes it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Queues `event` for the function; returns its request ID.
    pub fn invoke(&self, event: &Value) -> String {
        let id = request_id();
        let mut state = self.shared.lock();
        state
            .queue
            .push_back((id.clone(), event.to_string().into_bytes()));
        drop(state);
        self.shared.changed.notify_all();
        id
    }

    /// The outcome of invocation `id`, waiting up to `timeout` for it.
    pub fn wait_outcome(&self, id: &str, timeout: Duration) -> Option<Outcome> {
        self.wait(timeout, |s| s.outcomes.get(id).cloned())
    }

    /// The init error, waiting up to `timeout` for one.
    pub fn wait_init_error(&self, timeout: Duration) -> Option<InitError> {
        self.wait(timeout, |s| s.init_error.clone())
    }

    /// The init error reported so far, if any.
    pub fn init_error(&self) -> Option<InitError> {
        self.shared.lock().init_error.clone()
    }

    /// How many times the function asked for its next event.
    pub fn polls(&self) -> usize {
        self.shared.lock().polls
    }

    /// The request IDs served, in order.
    pub fn served(&self) -> Vec<String> {
        self.shared.lock().served.clone()
    }

    /// Requests that broke the protocol (unknown path, an outcome for an
    /// ID never served or already answered, a malformed request).
    pub fn problems(&self) -> Vec<String> {
        self.shared.lock().problems.clone()
    }

    /// `found(state)` once it says something, or None after `timeout`.
    fn wait<T>(&self, timeout: Duration, found: impl Fn(&State) -> Option<T>) -> Option<T> {
        let end = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            if let Some(t) = found(&state) {
                return Some(t);
            }
            let left = end.checked_duration_since(Instant::now())?;
            state = (self.shared.changed.wait_timeout(state, left))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        // Wakes the accept loop so it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn problem(&self, what: String) {
        self.lock().problems.push(what);
        self.changed.notify_all();
    }
}

/// Requests on one connection until the client closes it.
fn serve(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    loop {
        let request = read_request(&mut reader, &stream)?;
        let Some(answer) = answer(&request, shared) else {
            // Stopping: leave the waiting runtime without an event.
            return Ok(());
        };
        write!(
            stream,
            "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            answer.status,
            reason(answer.status),
            answer.body.len()
        )?;
        for (name, value) in &answer.headers {
            write!(stream, "{name}: {value}\r\n")?;
        }
        stream.write_all(b"\r\n")?;
        stream.write_all(&answer.body)?;
        stream.flush()?;
        if request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        {
            return Ok(());
        }
    }
}

struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn json(status: u16, body: &str) -> Answer {
        Answer {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }
}

/// The answer to one request; None when the server stops while the
/// request waits for an event.
fn answer(request: &Request, shared: &Shared) -> Option<Answer> {
    let accepted = || Answer::json(202, r#"{"status":"OK"}"#);
    let path = request.path.as_str();
    match (request.method.as_str(), path) {
        ("GET", NEXT) => next_event(shared),
        ("POST", INIT_ERROR) => {
            let mut state = shared.lock();
            if state.init_error.is_some() || !state.served.is_empty() {
                state.problems.push("init error after init".into());
            }
            state.init_error = Some(InitError {
                body: json_or_string(&request.body),
                error_type: request
                    .header("lambda-runtime-function-error-type")
                    .map(str::to_string),
            });
            drop(state);
            shared.changed.notify_all();
            Some(accepted())
        }
        ("POST", _) if path.starts_with(INVOCATION) => {
            let rest = &path[INVOCATION.len()..];
            let (id, outcome) = match rest.rsplit_once('/') {
                Some((id, "response")) => (id, Outcome::Response(json_or_string(&request.body))),
                Some((id, "error")) => (
                    id,
                    Outcome::Error {
                        body: json_or_string(&request.body),
                        error_type: request
                            .header("lambda-runtime-function-error-type")
                            .map(str::to_string),
                    },
                ),
                _ => return Some(off_protocol(shared, request)),
            };
            let mut state = shared.lock();
            if !state.served.iter().any(|s| s == id) {
                state
                    .problems
                    .push(format!("{} for an ID never served", request.path));
                return Some(Answer::json(
                    400,
                    r#"{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}"#,
                ));
            }
            if state.outcomes.contains_key(id) {
                state
                    .problems
                    .push(format!("{} after its outcome", request.path));
                return Some(Answer::json(
                    400,
                    r#"{"errorMessage":"Invalid state transition","errorType":"InvalidStateTransition"}"#,
                ));
            }
            state.outcomes.insert(id.to_string(), outcome);
            drop(state);
            shared.changed.notify_all();
            Some(accepted())
        }
        _ => Some(off_protocol(shared, request)),
    }
}

fn off_protocol(shared: &Shared, request: &Request) -> Answer {
    shared.problem(format!("{} {}", request.method, request.path));
    Answer::json(
        404,
        r#"{"errorMessage":"not found","errorType":"NotFound"}"#,
    )
}

/// Blocks until an event is queued (as Lambda holds `/next` until there is
/// one) and serves it.
fn next_event(shared: &Shared) -> Option<Answer> {
    let mut state = shared.lock();
    state.polls += 1;
    shared.changed.notify_all();
    let (id, body) = loop {
        if state.stop {
            return None;
        }
        if let Some(event) = state.queue.pop_front() {
            break event;
        }
        state = shared
            .changed
            .wait(state)
            .unwrap_or_else(|e| e.into_inner());
    };
    state.served.push(id.clone());
    drop(state);
    let deadline = SystemTime::now() + TIMEOUT;
    let deadline_ms = deadline.duration_since(UNIX_EPOCH).unwrap().as_millis();
    Some(Answer {
        status: 200,
        headers: vec![
            ("Lambda-Runtime-Aws-Request-Id", id),
            ("Lambda-Runtime-Deadline-Ms", deadline_ms.to_string()),
            ("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN.into()),
            ("Lambda-Runtime-Trace-Id", trace_id()),
        ],
        body,
    })
}

fn json_or_string(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// `n` random hex digits (std only: each `RandomState` is seeded afresh).
fn hex(n: usize) -> String {
    let state = RandomState::new();
    (0..n)
        .map(|i| {
            let mut h = state.build_hasher();
            h.write_usize(i);
            char::from_digit((h.finish() % 16) as u32, 16).unwrap()
        })
        .collect()
}

/// A UUID-shaped request ID, as Lambda's.
fn request_id() -> String {
    format!("{}-{}-4{}-a{}-{}", hex(8), hex(4), hex(3), hex(3), hex(12))
}

/// An X-Ray trace header, as Lambda sends it.
fn trace_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    format!("Root=1-{secs:08x}-{};Parent={};Sampled=0", hex(24), hex(16))
}
