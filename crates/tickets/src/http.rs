//! One request with retries, shared by every backend.
//!
//! What is retried: 429 (after its Retry-After), GitHub's rate-limit 403, 408, 5xx,
//! connection failures and timeouts, and whatever a backend's own check says is
//! transient (Slack's `{"ok":false,"error":"ratelimited"}`). Waits are exponential
//! with full jitter, or exactly the server's Retry-After; no wait and no request
//! timeout ever reaches past the budget's deadline. When the attempts or the budget
//! run out the error is retryable, so the caller (EventBridge, the DLQ) tries later.
//!
//! Errors never carry a credential: the URL is stripped from transport errors, the
//! Authorization header is never printed, and every message is scrubbed of the
//! secret values of the call before it leaves this module.

use muster_core::error::{Error, Result};
use muster_core::ports::Budget;
use reqwest::blocking::Client;
use reqwest::header::{HeaderMap, ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use std::time::{Duration, Instant, SystemTime};

/// First backoff step; attempt n waits a random time in `[0, BASE * 2^(n-1)]`, capped.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// Without a deadline, a Retry-After longer than this is not slept through on a
/// blocking thread: the call fails retryable and the event is delivered again later.
const MAX_WAIT_WITHOUT_DEADLINE: Duration = Duration::from_secs(60);
/// A request is not started with less time than this left: it could not finish.
const MIN_REQUEST_TIME: Duration = Duration::from_millis(50);
/// Bodies are read up to this size: answers we parse are small, error pages are not.
const MAX_BODY: u64 = 1 << 20;
/// Backend error messages are cut to this many characters.
const MAX_MESSAGE: usize = 300;

/// Characters escaped in a URL path segment built from data (issue keys, sys_ids):
/// everything but RFC 3986 unreserved characters.
pub(crate) const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One path segment, escaped.
pub(crate) fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// How a request authenticates.
pub(crate) enum Auth {
    None,
    Basic { user: String, password: String },
    Bearer(String),
}

/// A request as data, so it can be sent again unchanged and logged without secrets.
pub(crate) struct Req {
    pub method: Method,
    pub url: String,
    pub auth: Auth,
    pub headers: Vec<(String, String)>,
    /// A JSON body, already serialised (the webhook signs these exact bytes).
    pub body: Option<Vec<u8>>,
}

impl Req {
    pub fn new(method: Method, url: String, auth: Auth) -> Self {
        Req {
            method,
            url,
            auth,
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn json(mut self, value: &serde_json::Value) -> Self {
        self.body = Some(serde_json::to_vec(value).unwrap_or_default());
        self
    }

    fn secrets(&self) -> Vec<&str> {
        match &self.auth {
            Auth::None => Vec::new(),
            Auth::Basic { user, password } => vec![password.as_str(), user.as_str()],
            Auth::Bearer(token) => vec![token.as_str()],
        }
    }
}

/// A backend's answer, read in full (bounded).
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// What to do with an answer.
pub(crate) enum Verdict {
    Done,
    /// Transient; `after` is the server's own wait when it named one.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    Fail(String),
}

/// Names the call in errors and logs: `jira create <finding id>`.
pub(crate) struct Call<'a> {
    pub backend: &'static str,
    pub op: &'static str,
    pub finding_id: &'a str,
}

impl Call<'_> {
    pub fn what(&self) -> String {
        format!("{} {} {}", self.backend, self.op, self.finding_id)
    }

    pub fn permanent(&self, message: impl std::fmt::Display) -> Error {
        Error::sink(self.what(), message, false)
    }

    pub fn retryable(&self, message: impl std::fmt::Display) -> Error {
        Error::sink(self.what(), message, true)
    }
}

pub(crate) struct Sender {
    pub client: Client,
    pub timeout: Duration,
    pub max_attempts: u32,
}

impl Sender {
    /// Sends `req` until the status check says done, or fails for good, or the
    /// attempts or the budget run out. `check` sees every answer after the generic
    /// status rules passed it as a success (Slack's `ok:false` lives there).
    pub fn send(
        &self,
        call: &Call<'_>,
        budget: Budget,
        req: &Req,
        check: &dyn Fn(&Reply) -> Verdict,
    ) -> Result<Reply> {
        let secrets = req.secrets();
        let scrub = |m: String| scrub(m, &secrets);
        let max_attempts = self.max_attempts.max(1);
        let mut last = String::from("no attempt made");
        for attempt in 1..=max_attempts {
            let mut timeout = self.timeout;
            if let Some(deadline) = budget.deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left < MIN_REQUEST_TIME {
                    return Err(call.retryable(scrub(format!(
                        "deadline reached after {} attempt(s); last: {last}",
                        attempt - 1
                    ))));
                }
                timeout = timeout.min(left);
            }
            let verdict = match self.once(req, timeout) {
                Ok(reply) => {
                    let verdict = match classify(&reply) {
                        Verdict::Done => check(&reply),
                        other => other,
                    };
                    if let Verdict::Done = verdict {
                        tracing::debug!(call = %call.what(), status = %reply.status, attempt, "ticket backend answered");
                        return Ok(reply);
                    }
                    verdict
                }
                Err(reason) => Verdict::Retry {
                    reason,
                    after: None,
                },
            };
            let (reason, after) = match verdict {
                Verdict::Fail(message) => return Err(call.permanent(scrub(message))),
                Verdict::Retry { reason, after } => (reason, after),
                Verdict::Done => continue,
            };
            last = scrub(reason);
            if attempt == max_attempts {
                break;
            }
            // A Retry-After of 0 would spin through the attempts; honour it with a floor.
            let wait = after
                .map(|a| a.max(MIN_REQUEST_TIME))
                .unwrap_or_else(|| backoff(attempt));
            match budget.deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if wait + MIN_REQUEST_TIME > left {
                        return Err(call.retryable(format!(
                            "{last}; next attempt in {} ms would pass the deadline ({} ms left) after {attempt} attempt(s)",
                            wait.as_millis(),
                            left.as_millis()
                        )));
                    }
                }
                None if wait > MAX_WAIT_WITHOUT_DEADLINE => {
                    return Err(call.retryable(format!(
                        "{last}; server asks to wait {} s, longer than this call waits",
                        wait.as_secs()
                    )));
                }
                None => {}
            }
            tracing::warn!(call = %call.what(), attempt, wait_ms = wait.as_millis() as u64, reason = %last, "ticket backend: retrying");
            std::thread::sleep(wait);
        }
        Err(call.retryable(format!(
            "gave up after {max_attempts} attempt(s); last: {last}"
        )))
    }

    /// One attempt. `Err` is a transport failure (always transient), described
    /// without the URL.
    fn once(&self, req: &Req, timeout: Duration) -> std::result::Result<Reply, String> {
        let mut builder = self
            .client
            .request(req.method.clone(), &req.url)
            .timeout(timeout);
        if !req
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("accept"))
        {
            builder = builder.header(ACCEPT, "application/json");
        }
        builder = match &req.auth {
            Auth::None => builder,
            Auth::Basic { user, password } => builder.basic_auth(user, Some(password)),
            Auth::Bearer(token) => builder.bearer_auth(token),
        };
        for (name, value) in &req.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(body) = &req.body {
            builder = builder
                .header(CONTENT_TYPE, "application/json; charset=utf-8")
                .body(body.clone());
        }
        let response = builder.send().map_err(describe)?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        use std::io::Read;
        response
            .take(MAX_BODY)
            .read_to_end(&mut body)
            .map_err(|e| format!("reading the answer failed (HTTP {status}): {e}"))?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // Display of a reqwest error names the URL, which may hold a token (webhook URLs often do).
    let e = e.without_url();
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    format!("{kind}: {detail}")
}

/// The generic status rules.
fn classify(reply: &Reply) -> Verdict {
    let status = reply.status;
    if status.is_success() {
        return Verdict::Done;
    }
    let message = error_message(reply);
    let code = status.as_u16();
    if code == 429 {
        return Verdict::Retry {
            reason: format!("HTTP 429 (rate limited): {message}"),
            after: retry_after(&reply.headers),
        };
    }
    // GitHub signals rate limits with 403 and either Retry-After (secondary limits) or
    // x-ratelimit-remaining: 0 with the reset time.
    if code == 403 {
        if let Some(after) = retry_after(&reply.headers) {
            return Verdict::Retry {
                reason: format!("HTTP 403 (rate limited): {message}"),
                after: Some(after),
            };
        }
        if header(&reply.headers, "x-ratelimit-remaining") == Some("0") {
            return Verdict::Retry {
                reason: format!("HTTP 403 (rate limit exhausted): {message}"),
                after: ratelimit_reset(&reply.headers),
            };
        }
    }
    if code == 408 || status.is_server_error() {
        return Verdict::Retry {
            reason: format!("HTTP {code}: {message}"),
            after: retry_after(&reply.headers),
        };
    }
    Verdict::Fail(format!("HTTP {code}: {message}"))
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Retry-After as seconds or as an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = header(headers, RETRY_AFTER.as_str())?;
    parse_retry_after(value, SystemTime::now())
}

pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs.min(86_400.0)));
        }
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn ratelimit_reset(headers: &HeaderMap) -> Option<Duration> {
    let reset: u64 = header(headers, "x-ratelimit-reset")?.parse().ok()?;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(Duration::from_secs(reset.saturating_sub(now)))
}

/// Full jitter: a random wait in `[0, min(cap, base * 2^(attempt-1))]`.
fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(BACKOFF_CAP);
    let ms = ceiling.as_millis() as u64;
    Duration::from_millis(fastrand::u64(0..=ms))
}

/// The error text a backend put in its answer, in whichever of the documented shapes
/// it came: Jira `errorMessages`/`errors`, ServiceNow `error.message`/`error.detail`,
/// GitHub `message`/`errors`, Slack `error`, PagerDuty `message`/`errors`.
pub(crate) fn error_message(reply: &Reply) -> String {
    let text = match reply.json() {
        Some(v) => message_from_json(&v).unwrap_or_else(|| raw_text(&reply.body)),
        None => raw_text(&reply.body),
    };
    let text = if text.is_empty() {
        reply
            .status
            .canonical_reason()
            .unwrap_or("no message")
            .to_string()
    } else {
        text
    };
    truncate(&text, MAX_MESSAGE)
}

fn message_from_json(v: &serde_json::Value) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    let s = |v: &serde_json::Value| v.as_str().map(str::to_string);
    match v.get("error") {
        // ServiceNow: {"error":{"message","detail"},"status":"failure"}
        Some(serde_json::Value::Object(e)) => {
            parts.extend(e.get("message").and_then(s));
            parts.extend(e.get("detail").and_then(s).filter(|d| !d.is_empty()));
        }
        // Slack: {"ok":false,"error":"channel_not_found"}
        Some(serde_json::Value::String(e)) => parts.push(e.clone()),
        _ => {}
    }
    // Jira: {"errorMessages":[..],"errors":{"field":"message"}}
    if let Some(list) = v.get("errorMessages").and_then(|m| m.as_array()) {
        parts.extend(list.iter().filter_map(s));
    }
    if let Some(msg) = v.get("message").and_then(s) {
        parts.push(msg);
    }
    match v.get("errors") {
        Some(serde_json::Value::Object(map)) => {
            for (field, m) in map {
                if let Some(m) = m.as_str() {
                    parts.push(format!("{field}: {m}"));
                }
            }
        }
        // GitHub: [{"resource","field","code"}]; PagerDuty: ["..."]
        Some(serde_json::Value::Array(list)) => {
            for item in list {
                match item {
                    serde_json::Value::String(m) => parts.push(m.clone()),
                    serde_json::Value::Object(o) => {
                        let field = o.get("field").and_then(|f| f.as_str()).unwrap_or("");
                        let code = o
                            .get("message")
                            .or_else(|| o.get("code"))
                            .and_then(|c| c.as_str())
                            .unwrap_or("");
                        parts.push(format!("{field} {code}").trim().to_string());
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    parts.retain(|p| !p.is_empty());
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn raw_text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Cuts `s` to at most `max` characters, marking the cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((at, _)) => {
            let keep = s[..at]
                .char_indices()
                .nth(max.saturating_sub(1))
                .map_or(at, |(i, _)| i);
            format!("{}…", &s[..keep])
        }
    }
}

/// Removes every secret value of the call from a message (a backend may echo a token back).
fn scrub(mut message: String, secrets: &[&str]) -> String {
    for secret in secrets {
        // Short values ("x", a user name like "admin") would mangle messages; they are
        // not what leaks.
        if secret.len() >= 6 && message.contains(secret) {
            message = message.replace(secret, "***");
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let cases: &[(&str, Option<u64>)] = &[
            ("120", Some(120)),
            ("0", Some(0)),
            ("1.5", Some(1)),
            ("Wed, 21 Oct 2015 07:28:30 GMT", Some(30)),
            ("Wed, 21 Oct 2015 07:27:00 GMT", Some(0)),
            ("soon", None),
            ("-3", None),
        ];
        for (value, want) in cases {
            let got = parse_retry_after(value, now).map(|d| d.as_secs());
            assert_eq!(got, *want, "{value}");
        }
    }

    #[test]
    fn backoff_stays_under_its_ceiling() {
        for attempt in 1..40 {
            let ceiling = BACKOFF_BASE
                .saturating_mul(1u32 << (attempt - 1).min(16))
                .min(BACKOFF_CAP);
            assert!(backoff(attempt) <= ceiling);
        }
    }

    #[test]
    fn messages_from_documented_error_shapes() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"errorMessages":["Issue does not exist or you do not have permission to see it."],"errors":{}}"#,
                "Issue does not exist or you do not have permission to see it.",
            ),
            (
                r#"{"errorMessages":[],"errors":{"project":"valid project is required"}}"#,
                "project: valid project is required",
            ),
            (
                r#"{"error":{"message":"User Not Authenticated","detail":"Required to provide Auth information"},"status":"failure"}"#,
                "User Not Authenticated; Required to provide Auth information",
            ),
            (
                r#"{"message":"Validation Failed","errors":[{"resource":"Issue","code":"invalid","field":"assignees"}],"documentation_url":"https://docs.github.com/rest"}"#,
                "Validation Failed; assignees invalid",
            ),
            (r#"{"ok":false,"error":"channel_not_found"}"#, "channel_not_found"),
            (
                r#"{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect (should be 32 characters)"]}"#,
                "Event object is invalid; Length of 'routing_key' is incorrect (should be 32 characters)",
            ),
            ("<html>\n<body>Bad   Gateway</body></html>", "<html> <body>Bad Gateway</body></html>"),
        ];
        for (body, want) in cases {
            let reply = Reply {
                status: StatusCode::BAD_REQUEST,
                headers: HeaderMap::new(),
                body: body.as_bytes().to_vec(),
            };
            assert_eq!(error_message(&reply), *want);
        }
    }

    #[test]
    fn scrub_and_truncate() {
        assert_eq!(
            scrub("bad token xoxb-123456 given".into(), &["xoxb-123456"]),
            "bad token *** given"
        );
        assert_eq!(truncate("abcdef", 3), "ab…");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("ééé", 2), "é…");
    }
}
