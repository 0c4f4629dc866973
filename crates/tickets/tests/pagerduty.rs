//! PagerDuty Events API v2 against a stub that checks events as documented.

mod support;

use muster_core::ports::TicketSink;
use muster_core::tickets::{BackendKind, BackendSettings};
use muster_tickets::pagerduty::dedup_key;
use muster_tickets::stub::{StubResponse, StubServer};
use serde_json::json;
use support::*;

const ROUTING_KEY: &str = "R0ut1ngK3yR0ut1ngK3yR0ut1ngK3y12";
const ENQUEUE: &str = "/v2/enqueue";

fn settings(stub: &StubServer) -> BackendSettings {
    BackendSettings {
        base_url: stub.url(),
        secret: Some("pd".into()),
        ..Default::default()
    }
}

fn secrets() -> Vec<(&'static str, &'static str)> {
    vec![(
        "pd",
        r#"{"routing_key":"R0ut1ngK3yR0ut1ngK3yR0ut1ngK3y12"}"#,
    )]
}

fn accepted() -> StubResponse {
    StubResponse::json(
        202,
        json!({"status": "success", "message": "Event processed", "dedup_key": "x"}),
    )
}

fn assert_event(r: &muster_tickets::stub::Recorded) -> serde_json::Value {
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", ENQUEUE));
    assert!(
        r.header("authorization").is_none(),
        "the Events API takes the key in the body"
    );
    assert_json_request(r);
    let b = body(r);
    assert_eq!(b["routing_key"], ROUTING_KEY);
    assert_eq!(b["dedup_key"], json!(dedup_key(FINDING_ID)));
    b
}

#[test]
fn the_lifecycle_is_trigger_and_resolve_on_one_dedup_key() {
    let stub = StubServer::start().unwrap();
    stub.on("POST", ENQUEUE, [accepted()]);
    let sink = sink(&secrets());
    let t = target(BackendKind::PagerDuty, settings(&stub));
    let ticket = sink.create(&t, &content(), no_deadline()).unwrap();
    assert_eq!(ticket.key, dedup_key(FINDING_ID));
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
    let events: Vec<_> = seen.iter().map(assert_event).collect();
    let cases: [(&str, Option<&str>, Option<&str>); 4] = [
        ("trigger", Some("error"), Some("[HIGH] S3 bucket")),
        (
            "trigger",
            Some("critical"),
            Some("Severity HIGH -> CRITICAL"),
        ),
        ("resolve", None, None),
        ("trigger", Some("critical"), Some("active again")),
    ];
    for (i, (event, (action, severity, summary))) in events.iter().zip(cases).enumerate() {
        assert_eq!(event["event_action"], action, "event {i}");
        match severity {
            Some(s) => {
                assert_eq!(event["payload"]["severity"], s, "event {i}");
                assert_eq!(
                    event["payload"]["source"], "aws:123456789012:us-east-1",
                    "event {i}"
                );
                let got = event["payload"]["summary"].as_str().unwrap();
                assert!(got.contains(summary.unwrap()), "event {i}: {got}");
                assert_eq!(
                    event["payload"]["custom_details"]["finding_id"], FINDING_ID,
                    "event {i}"
                );
            }
            None => assert!(
                event.get("payload").is_none(),
                "event {i}: resolve has no payload"
            ),
        }
    }
}

#[test]
fn error_shapes() {
    let invalid = |status| {
        StubResponse::json(
            status,
            json!({"status": "invalid event", "message": "Event object is invalid", "errors": ["'payload.severity' is invalid (must be one of the following: 'critical', 'warning', 'error' or 'info')"]}),
        )
    };
    let mut cases = standard_cases(
        accepted(),
        (
            StubResponse::json(
                401,
                json!({"status": "unauthorized", "message": "Unauthorized"}),
            ),
            "Unauthorized",
        ),
        (
            StubResponse::json(404, json!({"message": "Not Found"})),
            "Not Found",
        ),
    );
    cases.push(Case {
        name: "400 invalid event is permanent, with PagerDuty's reasons",
        script: vec![invalid(400)],
        expect: Expect::Permanent {
            contains: "Event object is invalid; 'payload.severity' is invalid",
        },
    });
    cases.push(Case {
        name: "429 without Retry-After backs off and retries",
        script: vec![StubResponse::new(429), accepted()],
        expect: Expect::Ok {
            requests: 2,
            min_gap_ms: 0,
        },
    });
    run_cases(cases, "POST", ENQUEUE, ROUTING_KEY, |stub, budget| {
        sink(&secrets())
            .create(
                &target(BackendKind::PagerDuty, settings(stub)),
                &content(),
                budget,
            )
            .map(|_| ())
    });
}

#[test]
fn a_routing_key_echoed_back_is_not_in_the_error() {
    let stub = StubServer::start().unwrap();
    stub.on(
        "POST",
        ENQUEUE,
        [StubResponse::json(400, json!({"status": "invalid event", "message": "Unknown routing key R0ut1ngK3yR0ut1ngK3yR0ut1ngK3y12"}))],
    );
    let e = sink(&secrets())
        .create(
            &target(BackendKind::PagerDuty, settings(&stub)),
            &content(),
            no_deadline(),
        )
        .unwrap_err();
    assert_no_secret(&e, ROUTING_KEY);
    assert!(e.to_string().contains("Unknown routing key ***"), "{e}");
}
