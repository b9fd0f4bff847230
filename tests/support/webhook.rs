//! A stand-in for a Slack-compatible incoming webhook: an HTTP/1.1 server
//! on 127.0.0.1, on its own std thread (tests run many tokio runtimes, so
//! it depends on none), that records what was posted to its secret URL.
//!
//! Like Slack, a POST to the URL with a JSON body holding `text`, `blocks`
//! or `attachments` is answered 200 `ok`; a body that is not JSON gets 400
//! `invalid_payload`, one without any of those fields 400 `no_text`, and
//! any other path 404 `no_service` (a wrong or leaked-and-revoked token).
//! Only 200 answers count as delivered. Each answer closes the connection
//! (`Connection: close`).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use super::http::{Request, read_request, reason};

/// The path before the token, as in `https://hooks.slack.com/services/…`.
const PREFIX: &str = "/services/T0REKEY/B0REKEY/";

/// A running stand-in; stopped when dropped.
pub struct Webhook {
    port: u16,
    token: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct State {
    /// Bodies answered 200, in order.
    received: Vec<Value>,
    /// Every POST, whatever its path and answer.
    attempts: usize,
    /// The next `.0` POSTs to the URL are answered with status `.1`.
    fail: (usize, u16),
}

impl Webhook {
    /// Binds 127.0.0.1 on a free port and serves until dropped.
    pub fn start() -> Webhook {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind the webhook stand-in");
        let port = listener.local_addr().expect("local address").port();
        let token = random_token(24);
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (path, state, stop) = (format!("{PREFIX}{token}"), state.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("webhook-{port}"))
                .spawn(move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(stream) = stream else { continue };
                        let (path, state) = (path.clone(), state.clone());
                        // One thread per connection: a client that opens a
                        // connection and sends nothing blocks no other.
                        std::thread::spawn(move || {
                            let _ = serve(stream, &path, &state);
                        });
                    }
                })
                .expect("spawn the webhook thread")
        };
        Webhook {
            port,
            token,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// The secret URL: `http://127.0.0.1:PORT/services/T0REKEY/B0REKEY/TOKEN`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}{PREFIX}{}", self.port, self.token)
    }

    /// The random part of [`Webhook::url`], which stands for the secret in
    /// a real webhook URL: rekey must never print it.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The next `n` POSTs to the URL are answered with `status` (e.g. 500)
    /// and not delivered. Replaces an earlier `fail_next` still pending.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.state.lock().unwrap().fail = (n, status);
    }

    /// The bodies of the POSTs answered 200, in order.
    pub fn received(&self) -> Vec<Value> {
        self.state.lock().unwrap().received.clone()
    }

    /// Every POST seen, to any path and whatever its answer.
    pub fn attempts(&self) -> usize {
        self.state.lock().unwrap().attempts
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One request, one answer, then the connection is closed.
fn serve(stream: TcpStream, path: &str, state: &Mutex<State>) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let request = read_request(&mut reader, &stream)?;
    let (status, body) = answer(&request, path, state);
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} {}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        reason(status),
        body.len()
    )?;
    stream.flush()
}

fn answer(request: &Request, path: &str, state: &Mutex<State>) -> (u16, &'static str) {
    let mut state = state.lock().unwrap();
    if request.method != "POST" {
        return (405, "invalid_method");
    }
    state.attempts += 1;
    if request.path != path {
        return (404, "no_service");
    }
    if state.fail.0 > 0 {
        state.fail.0 -= 1;
        return (state.fail.1, "injected_failure");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
        return (400, "invalid_payload");
    };
    if ["text", "blocks", "attachments"]
        .iter()
        .all(|k| body.get(k).is_none())
    {
        return (400, "no_text");
    }
    state.received.push(body);
    (200, "ok")
}

/// `n` random ASCII letters and digits (std only: each `RandomState` is
/// seeded afresh by the OS).
fn random_token(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let state = RandomState::new();
    (0..n)
        .map(|i| {
            let mut h = state.build_hasher();
            h.write_usize(i);
            ALPHABET[(h.finish() % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}
