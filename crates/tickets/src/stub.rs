//! A recording stub HTTP server for tests (feature `test-support`).
//!
//! It listens on 127.0.0.1 on a free port, answers each request from a script chosen by
//! method and path, and records every request (method, path, query, headers, body, and
//! the instant it arrived) so a test can check what a backend sent and when.
//!
//! ```ignore
//! let stub = StubServer::start()?;
//! stub.on("POST", "/rest/api/3/issue", [
//!     StubResponse::json(500, json!({})),
//!     StubResponse::json(201, json!({"id": "10001", "key": "SEC-1"})),
//! ]);
//! stub.on_fn("POST", "/repos/acme/app/issues/{}/comments", |req| StubResponse::json(201, json!({"id": 1})));
//! // ... point a route's base_url at stub.url() ...
//! let seen = stub.requests_to("POST", "/rest/api/3/issue");
//! ```
//!
//! Scripts: each request to a route takes the next response of its list; the last one
//! answers every request after it. `{}` in a route's path matches one path segment.
//! Routes are tried newest first; a request no route matches gets 404
//! `{"message":"no stub route for METHOD PATH"}` (and is recorded too). Every answer
//! closes its connection, so each request arrives on a fresh one. Plain HTTP/1.1 with
//! `Content-Length` bodies, which is what reqwest sends.

use serde_json::Value;
use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Requests larger than this are answered 413 and recorded without a body.
const MAX_REQUEST_BODY: usize = 8 << 20;

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct StubResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Waits this long before answering (to provoke client timeouts).
    pub delay: Duration,
}

impl StubResponse {
    pub fn new(status: u16) -> Self {
        StubResponse {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    /// A JSON answer with `Content-Type: application/json`.
    pub fn json(status: u16, body: Value) -> Self {
        let mut r = StubResponse::new(status);
        r.body = serde_json::to_vec(&body).unwrap_or_default();
        r.headers
            .push(("Content-Type".into(), "application/json".into()));
        r
    }

    pub fn text(status: u16, body: &str) -> Self {
        let mut r = StubResponse::new(status);
        r.body = body.as_bytes().to_vec();
        r.headers.push(("Content-Type".into(), "text/plain".into()));
        r
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request as the stub received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The path without the query string, as sent (still percent-encoded).
    pub path: String,
    /// The query string without `?`, or empty.
    pub query: String,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Recorded {
    /// The first header with this name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The user and password of a Basic Authorization header.
    pub fn basic_auth(&self) -> Option<(String, String)> {
        let value = self.header("authorization")?.strip_prefix("Basic ")?;
        let decoded = String::from_utf8(base64_decode(value.trim())?).ok()?;
        let (user, password) = decoded.split_once(':')?;
        Some((user.to_string(), password.to_string()))
    }

    /// The token of a Bearer Authorization header.
    pub fn bearer(&self) -> Option<&str> {
        self.header("authorization")?.strip_prefix("Bearer ")
    }

    /// A query parameter's raw (still encoded) value.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

type Handler = Arc<dyn Fn(&Recorded) -> StubResponse + Send + Sync>;

enum Answer {
    Script(VecDeque<StubResponse>),
    Fn(Handler),
}

struct Route {
    method: String,
    path: String,
    answer: Answer,
}

#[derive(Default)]
struct State {
    routes: Vec<Route>,
    requests: Vec<Recorded>,
}

/// The server. Dropping it stops it.
pub struct StubServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StubServer {
    pub fn start() -> io::Result<StubServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = state.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("stub-http".into())
                .spawn(move || {
                    for conn in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(conn) = conn else { continue };
                        let state = state.clone();
                        let _ = std::thread::Builder::new()
                            .name("stub-http-conn".into())
                            .spawn(move || {
                                let _ = serve(conn, &state);
                            });
                    }
                })?
        };
        Ok(StubServer {
            addr,
            state,
            stop,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Answers `method path` with `responses` in turn, the last one from then on.
    pub fn on(&self, method: &str, path: &str, responses: impl IntoIterator<Item = StubResponse>) {
        let script: VecDeque<StubResponse> = responses.into_iter().collect();
        self.lock().routes.push(Route {
            method: method.to_ascii_uppercase(),
            path: path.to_string(),
            answer: Answer::Script(script),
        });
    }

    /// Answers `method path` with whatever `f` returns for the request.
    pub fn on_fn(
        &self,
        method: &str,
        path: &str,
        f: impl Fn(&Recorded) -> StubResponse + Send + Sync + 'static,
    ) {
        self.lock().routes.push(Route {
            method: method.to_ascii_uppercase(),
            path: path.to_string(),
            answer: Answer::Fn(Arc::new(f)),
        });
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// The requests whose method and path match (`{}` matches a segment).
    pub fn requests_to(&self, method: &str, path: &str) -> Vec<Recorded> {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && path_matches(path, &r.path))
            .cloned()
            .collect()
    }

    /// Forgets the recorded requests (routes stay).
    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// Forgets routes and requests.
    pub fn reset(&self) {
        let mut state = self.lock();
        state.routes.clear();
        state.requests.clear();
    }
}

impl Drop for StubServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn path_matches(pattern: &str, path: &str) -> bool {
    let mut p = pattern.split('/');
    let mut q = path.split('/');
    loop {
        match (p.next(), q.next()) {
            (None, None) => return true,
            (Some("{}"), Some(seg)) if !seg.is_empty() => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

fn serve(conn: TcpStream, state: &Mutex<State>) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Ok(());
    };
    let method = method.to_string();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.to_string(), String::new()),
    };
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 {
            break;
        }
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = Vec::new();
    let too_large = length > MAX_REQUEST_BODY;
    if !too_large {
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    }
    let recorded = Recorded {
        method,
        path,
        query,
        headers,
        body,
        at: Instant::now(),
    };
    let response = if too_large {
        StubResponse::text(413, "request body too large for the stub")
    } else {
        answer(state, &recorded)
    };
    state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .requests
        .push(recorded);
    if !response.delay.is_zero() {
        std::thread::sleep(response.delay);
    }
    let mut out = conn;
    let reason = match response.status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", response.status);
    for (n, v) in &response.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        response.body.len()
    ));
    out.write_all(head.as_bytes())?;
    out.write_all(&response.body)?;
    out.flush()
}

fn answer(state: &Mutex<State>, req: &Recorded) -> StubResponse {
    let handler = {
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        let route = state.routes.iter_mut().rev().find(|r| {
            r.method.eq_ignore_ascii_case(&req.method) && path_matches(&r.path, &req.path)
        });
        match route {
            None => {
                return StubResponse::json(
                    404,
                    serde_json::json!({"message": format!("no stub route for {} {}", req.method, req.path)}),
                )
            }
            Some(route) => match &mut route.answer {
                Answer::Script(script) => {
                    let next = if script.len() > 1 {
                        script.pop_front()
                    } else {
                        script.front().cloned()
                    };
                    return next.unwrap_or_else(|| StubResponse::new(500));
                }
                Answer::Fn(f) => f.clone(),
            },
        }
    };
    // Called without the lock, so a handler may look at the stub itself.
    handler(req)
}

/// Standard base64 (with or without padding), for checking Basic auth.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Secrets from a fixed map, for tests: `StaticSecrets::new([("jira", "me@x.io:tok")])`.
#[derive(Debug, Clone, Default)]
pub struct StaticSecrets {
    values: std::collections::BTreeMap<String, String>,
}

impl StaticSecrets {
    pub fn new<'a>(values: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        StaticSecrets {
            values: values
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

impl muster_core::ports::Secrets for StaticSecrets {
    fn get(&self, name: &str) -> muster_core::error::Result<String> {
        self.values
            .get(name)
            .cloned()
            .ok_or_else(|| muster_core::error::Error::Config(format!("no secret named {name:?}")))
    }
}
