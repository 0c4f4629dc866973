//! What every backend test shares: fixtures, a sink pointed at a stub server, and the
//! table of error shapes every backend must handle (401, 404, 429 + Retry-After, 500
//! then success, 500 until the deadline).
#![allow(dead_code)]

use muster_core::error::{Error, Result};
use muster_core::ports::Budget;
use muster_core::tickets::{BackendKind, BackendSettings, Target, TicketChange, TicketContent};
use muster_tickets::stub::{StaticSecrets, StubResponse, StubServer};
use muster_tickets::{HttpOptions, HttpTickets};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A finding Id as Security Hub writes them: long, with slashes.
pub const FINDING_ID: &str =
    "arn:aws:securityhub:us-east-1:123456789012:subscription/aws-foundational-security-best-practices/v/1.0.0/S3.8/finding/4e4b3b4a-1f2c-4d5e-9a8b-7c6d5e4f3a2b";

pub fn sink(secrets: &[(&str, &str)]) -> HttpTickets {
    HttpTickets::new(
        Arc::new(StaticSecrets::new(secrets.iter().copied())),
        HttpOptions {
            timeout: Duration::from_secs(5),
            max_attempts: 10,
            user_agent: "muster-test/1".into(),
        },
    )
    .expect("client builds")
}

pub fn target(backend: BackendKind, settings: BackendSettings) -> Target {
    Target {
        route: "test-route".into(),
        backend,
        settings,
    }
}

pub fn content() -> TicketContent {
    TicketContent {
        finding_id: FINDING_ID.into(),
        title: "[HIGH] S3 bucket allows public <write> & read".into(),
        body: "S3 general purpose buckets should block public access.\nAccount: 123456789012\n\nResource: arn:aws:s3:::example-bucket".into(),
        severity: "HIGH".into(),
        priority: None,
        labels: vec!["security-hub".into()],
        account: "123456789012".into(),
        region: "us-east-1".into(),
    }
}

pub fn change(text: &str) -> TicketChange {
    TicketChange {
        finding_id: FINDING_ID.into(),
        text: text.into(),
        severity: "CRITICAL".into(),
    }
}

pub fn no_deadline() -> Budget {
    Budget { deadline: None }
}

/// How a scripted call must end.
pub enum Expect {
    /// Succeeds after exactly `requests` requests, the last at least `min_gap_ms`
    /// after the one before.
    Ok { requests: usize, min_gap_ms: u64 },
    /// Fails for good after one request, naming `contains`.
    Permanent { contains: &'static str },
    /// Keeps failing until the budget's deadline: a retryable error, every attempt
    /// started before the deadline, more than one attempt.
    Deadline,
}

pub struct Case {
    pub name: &'static str,
    pub script: Vec<StubResponse>,
    pub expect: Expect,
}

/// The error shapes every backend answers with, in the backend's own error body.
/// `ok` is its success answer; `unauthorized` / `not_found` its documented 401 / 404.
pub fn standard_cases(
    ok: StubResponse,
    unauthorized: (StubResponse, &'static str),
    not_found: (StubResponse, &'static str),
) -> Vec<Case> {
    vec![
        Case {
            name: "401 is permanent",
            script: vec![unauthorized.0],
            expect: Expect::Permanent {
                contains: unauthorized.1,
            },
        },
        Case {
            name: "404 is permanent",
            script: vec![not_found.0],
            expect: Expect::Permanent {
                contains: not_found.1,
            },
        },
        Case {
            name: "429 waits for Retry-After",
            script: vec![
                StubResponse::json(429, serde_json::json!({"message": "slow down"}))
                    .header("Retry-After", "1"),
                ok.clone(),
            ],
            expect: Expect::Ok {
                requests: 2,
                min_gap_ms: 1000,
            },
        },
        Case {
            name: "500 then success is retried",
            script: vec![
                StubResponse::text(500, "upstream broke"),
                StubResponse::text(503, "still broken"),
                ok,
            ],
            expect: Expect::Ok {
                requests: 3,
                min_gap_ms: 0,
            },
        },
        Case {
            name: "500 until the deadline is a retryable error",
            script: vec![StubResponse::text(500, "down")],
            expect: Expect::Deadline,
        },
    ]
}

/// Runs each case against a fresh stub: `route` scripts the endpoint under test
/// (`method path`), `call` makes the call with the given budget.
pub fn run_cases(
    cases: Vec<Case>,
    method: &str,
    path: &str,
    secret: &str,
    call: impl Fn(&StubServer, Budget) -> Result<()>,
) {
    for case in cases {
        let stub = StubServer::start().expect("stub starts");
        stub.on(method, path, case.script);
        let deadline_in = Duration::from_millis(1500);
        let budget = match case.expect {
            Expect::Deadline => Budget {
                deadline: Some(Instant::now() + deadline_in),
            },
            _ => no_deadline(),
        };
        let result = call(&stub, budget);
        let seen = stub.requests_to(method, path);
        match case.expect {
            Expect::Ok {
                requests,
                min_gap_ms,
            } => {
                if let Err(e) = &result {
                    panic!("{}: expected success, got {e}", case.name);
                }
                assert_eq!(seen.len(), requests, "{}: requests", case.name);
                let gap = seen[requests - 1].at.duration_since(seen[requests - 2].at);
                assert!(
                    gap >= Duration::from_millis(min_gap_ms),
                    "{}: waited only {gap:?}",
                    case.name
                );
            }
            Expect::Permanent { contains } => {
                let e = result
                    .err()
                    .unwrap_or_else(|| panic!("{}: expected an error", case.name));
                assert!(!e.is_retryable(), "{}: {e} should be permanent", case.name);
                let text = e.to_string();
                assert!(
                    text.contains(contains),
                    "{}: {text:?} lacks {contains:?}",
                    case.name
                );
                assert_no_secret(&e, secret);
                assert_eq!(
                    seen.len(),
                    1,
                    "{}: a permanent error is not retried",
                    case.name
                );
            }
            Expect::Deadline => {
                let e = result
                    .err()
                    .unwrap_or_else(|| panic!("{}: expected an error", case.name));
                assert!(e.is_retryable(), "{}: {e} should be retryable", case.name);
                assert_no_secret(&e, secret);
                assert!(
                    seen.len() >= 2,
                    "{}: only {} attempt(s)",
                    case.name,
                    seen.len()
                );
                let first = seen[0].at;
                for r in &seen {
                    assert!(
                        r.at.duration_since(first) < deadline_in,
                        "{}: an attempt started after the deadline",
                        case.name
                    );
                }
            }
        }
    }
}

pub fn assert_no_secret(e: &Error, secret: &str) {
    let text = format!("{e} {e:?}");
    assert!(!text.contains(secret), "error leaks the secret: {text}");
}

/// The JSON body of a recorded request, or a clear failure.
pub fn body(r: &muster_tickets::stub::Recorded) -> serde_json::Value {
    let v = r.json();
    assert!(
        !v.is_null(),
        "{} {}: body is not JSON: {}",
        r.method,
        r.path,
        r.body_text()
    );
    v
}

/// Checks what every JSON request we send carries.
pub fn assert_json_request(r: &muster_tickets::stub::Recorded) {
    let ct = r.header("content-type").unwrap_or("");
    assert!(
        ct.starts_with("application/json"),
        "{} {}: content-type {ct:?}",
        r.method,
        r.path
    );
    assert_eq!(r.header("user-agent"), Some("muster-test/1"));
    assert_eq!(r.header("accept").map(|a| !a.is_empty()), Some(true));
}
