//! The signed generic webhook: the stub verifies the HMAC over the exact bytes received.

mod support;

use muster_core::ports::TicketSink;
use muster_core::tickets::{BackendKind, BackendSettings};
use muster_tickets::stub::{Recorded, StubResponse, StubServer};
use muster_tickets::{hmac_sha256, signature};
use serde_json::json;
use support::*;

const SECRET: &str = "whsec_5WbX5kEWLlfzsGNjH64I8lOOqUB6e8FH";
const HOOK: &str = "/hooks/muster";

fn settings(stub: &StubServer, header: Option<&str>) -> BackendSettings {
    BackendSettings {
        base_url: format!("{}{HOOK}", stub.url()),
        secret: Some("hook".into()),
        signature_header: header.map(str::to_string),
        ..Default::default()
    }
}

fn secrets() -> Vec<(&'static str, &'static str)> {
    vec![("hook", SECRET)]
}

/// What a receiver does: recompute the HMAC over the raw body and compare.
fn verify(r: &Recorded, header: &str) {
    let got = r
        .header(header)
        .unwrap_or_else(|| panic!("no {header} header"));
    let want = format!(
        "sha256={}",
        hex::encode(hmac_sha256(SECRET.as_bytes(), &r.body))
    );
    assert_eq!(got, want, "signature over the received bytes");
    assert_eq!(got, signature(SECRET.as_bytes(), &r.body));
    let ts: u64 = r.header("x-muster-timestamp").unwrap().parse().unwrap();
    assert_eq!(body(r)["timestamp"], json!(ts));
    let delivery = r.header("x-muster-delivery").unwrap();
    assert_eq!(r.header("idempotency-key"), Some(delivery));
    assert_eq!(body(r)["delivery_id"], json!(delivery));
    assert!(r.header("authorization").is_none());
    assert_json_request(r);
}

#[test]
fn every_action_is_a_signed_post() {
    struct Case {
        header: Option<&'static str>,
        expect_header: &'static str,
        answer: StubResponse,
        key: &'static str,
        url: &'static str,
    }
    let cases = [
        Case {
            header: None,
            expect_header: "X-Muster-Signature",
            answer: StubResponse::new(204),
            key: "",
            url: "",
        },
        Case {
            header: Some("X-Hub-Signature-256"),
            expect_header: "X-Hub-Signature-256",
            answer: StubResponse::json(
                201,
                json!({"key": "OPS-7", "url": "https://tickets.example/OPS-7"}),
            ),
            key: "OPS-7",
            url: "https://tickets.example/OPS-7",
        },
    ];
    for case in cases {
        let stub = StubServer::start().unwrap();
        stub.on("POST", HOOK, [case.answer]);
        let sink = sink(&secrets());
        let t = target(BackendKind::Webhook, settings(&stub, case.header));
        let ticket = sink.create(&t, &content(), no_deadline()).unwrap();
        if case.key.is_empty() {
            assert!(ticket.key.starts_with("muster-"), "{}", ticket.key);
        } else {
            assert_eq!(ticket.key, case.key);
        }
        assert_eq!(ticket.url, case.url);
        sink.comment(
            &t,
            &ticket,
            &change("Severity HIGH -> CRITICAL"),
            no_deadline(),
        )
        .unwrap();
        sink.close(&t, &ticket, &change("Workflow RESOLVED"), no_deadline())
            .unwrap();
        sink.reopen(&t, &ticket, &change("active again"), no_deadline())
            .unwrap();

        let seen = stub.requests();
        assert_eq!(seen.len(), 4);
        let want = [
            ("created", None),
            ("updated", Some("Severity HIGH -> CRITICAL")),
            ("closed", Some("Workflow RESOLVED")),
            ("reopened", Some("active again")),
        ];
        for (r, (action, text)) in seen.iter().zip(want) {
            verify(r, case.expect_header);
            let b = body(r);
            assert_eq!(b["action"], action);
            assert_eq!(b["finding_id"], FINDING_ID);
            assert_eq!(b["route"], "test-route");
            match text {
                None => {
                    let c = content();
                    assert_eq!(b["title"], json!(c.title));
                    assert_eq!(b["body"], json!(c.body));
                    assert_eq!(b["severity"], "HIGH");
                    assert_eq!(b["account"], "123456789012");
                    assert_eq!(b["labels"], json!(["security-hub"]));
                }
                Some(t) => {
                    assert_eq!(b["text"], t);
                    assert_eq!(b["ticket_key"], json!(ticket.key));
                    assert_eq!(b["severity"], "CRITICAL");
                }
            }
        }
        let ids: std::collections::BTreeSet<_> = seen
            .iter()
            .filter_map(|r| r.header("x-muster-delivery").map(str::to_string))
            .collect();
        assert_eq!(ids.len(), 4, "each delivery has its own id");
    }
}

#[test]
fn a_retried_delivery_keeps_its_id_and_signature() {
    let stub = StubServer::start().unwrap();
    stub.on(
        "POST",
        HOOK,
        [
            StubResponse::text(502, "bad gateway"),
            StubResponse::new(200),
        ],
    );
    let t = target(BackendKind::Webhook, settings(&stub, None));
    sink(&secrets())
        .create(&t, &content(), no_deadline())
        .unwrap();
    let seen = stub.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body, seen[1].body);
    assert_eq!(
        seen[0].header("x-muster-delivery"),
        seen[1].header("x-muster-delivery")
    );
    verify(&seen[1], "x-muster-signature");
}

#[test]
fn error_shapes() {
    let cases = standard_cases(
        StubResponse::new(204),
        (
            StubResponse::json(401, json!({"message": "signature mismatch"})),
            "signature mismatch",
        ),
        (StubResponse::text(404, "no such hook"), "no such hook"),
    );
    run_cases(cases, "POST", HOOK, SECRET, |stub, budget| {
        sink(&secrets())
            .create(
                &target(BackendKind::Webhook, settings(stub, None)),
                &content(),
                budget,
            )
            .map(|_| ())
    });
}

#[test]
fn a_timeout_is_retried() {
    let stub = StubServer::start().unwrap();
    stub.on(
        "POST",
        HOOK,
        [
            StubResponse::new(200).delay(std::time::Duration::from_millis(1500)),
            StubResponse::new(200),
        ],
    );
    let sink = muster_tickets::HttpTickets::new(
        std::sync::Arc::new(muster_tickets::stub::StaticSecrets::new(secrets())),
        muster_tickets::HttpOptions {
            timeout: std::time::Duration::from_millis(300),
            max_attempts: 3,
            user_agent: "muster-test/1".into(),
        },
    )
    .unwrap();
    sink.create(
        &target(BackendKind::Webhook, settings(&stub, None)),
        &content(),
        no_deadline(),
    )
    .unwrap();
    assert_eq!(stub.requests().len(), 2);
}

#[test]
fn bad_settings() {
    let stub = StubServer::start().unwrap();
    let cases: Vec<(BackendSettings, &str)> = vec![
        (settings(&stub, Some("bad header\n")), "signature_header"),
        (
            BackendSettings {
                secret: None,
                ..settings(&stub, None)
            },
            "secret",
        ),
    ];
    for (s, want) in cases {
        let e = sink(&secrets())
            .create(&target(BackendKind::Webhook, s), &content(), no_deadline())
            .unwrap_err();
        assert!(!e.is_retryable() && e.to_string().contains(want), "{e}");
    }
    assert!(stub.requests().is_empty());
}

/// The Lambda builds its clients in `async fn main`; reqwest's blocking client would
/// panic there if `new` built it on the calling thread.
#[tokio::test]
async fn the_sink_can_be_built_inside_a_runtime() {
    let stub = StubServer::start().unwrap();
    stub.on("POST", HOOK, [StubResponse::new(204)]);
    let sink = std::sync::Arc::new(sink(&secrets()));
    let t = target(BackendKind::Webhook, settings(&stub, None));
    let worker = sink.clone();
    tokio::task::spawn_blocking(move || worker.create(&t, &content(), no_deadline()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stub.requests().len(), 1);
    // Dropped on a blocking thread, as the forwarder does at shutdown.
    tokio::task::spawn_blocking(move || drop(sink))
        .await
        .unwrap();
}
