//! ServiceNow Table API (incident) against a stub that checks requests as documented.

mod support;

use muster_core::ports::TicketSink;
use muster_core::tickets::{BackendKind, BackendSettings, TicketRef};
use muster_tickets::stub::{StubResponse, StubServer};
use serde_json::json;
use support::*;

const USER: &str = "muster.integration";
const PASSWORD: &str = "s3rvic3-n0w-pa55word";
const SYS_ID: &str = "9d385017c611228701d22104cc95c371";

fn settings(stub: &StubServer) -> BackendSettings {
    BackendSettings {
        base_url: stub.url(),
        secret: Some("snow".into()),
        project: Some("Security Operations".into()),
        assignee: Some("abel.tuter".into()),
        priority: [("HIGH".to_string(), "2".to_string())].into(),
        ..Default::default()
    }
}

fn secrets() -> Vec<(&'static str, &'static str)> {
    vec![("snow", "muster.integration:s3rvic3-n0w-pa55word")]
}

fn ticket() -> TicketRef {
    TicketRef {
        backend: BackendKind::ServiceNow,
        key: SYS_ID.into(),
        url: String::new(),
        extra: [("number".to_string(), "INC0010042".to_string())].into(),
    }
}

fn created() -> StubResponse {
    StubResponse::json(
        201,
        json!({"result": {"sys_id": SYS_ID, "number": "INC0010042", "state": "1", "short_description": "x"}}),
    )
}

fn assert_snow_request(r: &muster_tickets::stub::Recorded) {
    assert_eq!(
        r.basic_auth(),
        Some((USER.to_string(), PASSWORD.to_string()))
    );
    assert!(r
        .header("accept")
        .unwrap_or("")
        .contains("application/json"));
    assert_json_request(r);
}

#[test]
fn create_posts_an_incident() {
    let stub = StubServer::start().unwrap();
    stub.on("POST", "/api/now/table/incident", [created()]);
    let mut content = content();
    content.priority = Some("2".into());
    let t = sink(&secrets())
        .create(
            &target(BackendKind::ServiceNow, settings(&stub)),
            &content,
            no_deadline(),
        )
        .unwrap();
    assert_eq!(t.key, SYS_ID);
    assert_eq!(
        t.extra.get("number").map(String::as_str),
        Some("INC0010042")
    );
    assert_eq!(t.url, format!("{}/incident.do?sys_id={SYS_ID}", stub.url()));

    let r = &stub.requests()[0];
    assert_snow_request(r);
    let b = body(r);
    assert_eq!(b["short_description"], json!(content.title));
    assert!(b["description"]
        .as_str()
        .unwrap()
        .starts_with("S3 general purpose buckets"));
    assert!(b["description"].as_str().unwrap().contains(FINDING_ID));
    assert_eq!(
        (b["impact"].as_str(), b["urgency"].as_str()),
        (Some("1"), Some("2"))
    );
    assert_eq!(b["assignment_group"], "Security Operations");
    assert_eq!(b["assigned_to"], "abel.tuter");
    let correlation = b["correlation_id"].as_str().unwrap();
    assert!(
        correlation.len() <= 100 && correlation.starts_with("muster-"),
        "{correlation}"
    );
}

#[test]
fn updates_are_patches_of_the_incident() {
    let path = format!("/api/now/table/incident/{SYS_ID}");
    let cases = [
        (
            "comment",
            json!({"work_notes": "Severity HIGH -> CRITICAL"}),
        ),
        (
            "close",
            json!({"state": "6", "close_code": "Solution provided", "close_notes": "Severity HIGH -> CRITICAL"}),
        ),
        (
            "reopen",
            json!({"state": "2", "work_notes": "Severity HIGH -> CRITICAL"}),
        ),
    ];
    for (op, want) in cases {
        let stub = StubServer::start().unwrap();
        stub.on(
            "PATCH",
            &path,
            [StubResponse::json(
                200,
                json!({"result": {"sys_id": SYS_ID}}),
            )],
        );
        let sink = sink(&secrets());
        let t = target(BackendKind::ServiceNow, settings(&stub));
        let c = change("Severity HIGH -> CRITICAL");
        let result = match op {
            "comment" => sink.comment(&t, &ticket(), &c, no_deadline()),
            "close" => sink.close(&t, &ticket(), &c, no_deadline()),
            _ => sink.reopen(&t, &ticket(), &c, no_deadline()),
        };
        assert!(result.is_ok(), "{op}: {result:?}");
        let seen = stub.requests();
        assert_eq!(seen.len(), 1, "{op}");
        assert_eq!(
            (seen[0].method.as_str(), seen[0].path.as_str()),
            ("PATCH", path.as_str())
        );
        assert_snow_request(&seen[0]);
        assert_eq!(body(&seen[0]), want, "{op}");
    }
}

#[test]
fn error_shapes() {
    let cases = standard_cases(
        created(),
        (
            StubResponse::json(
                401,
                json!({"error": {"message": "User Not Authenticated", "detail": "Required to provide Auth information"}, "status": "failure"}),
            ),
            "User Not Authenticated",
        ),
        (
            StubResponse::json(
                404,
                json!({"error": {"message": "Invalid table incidentx", "detail": null}, "status": "failure"}),
            ),
            "Invalid table",
        ),
    );
    run_cases(
        cases,
        "POST",
        "/api/now/table/incident",
        PASSWORD,
        |stub, budget| {
            sink(&secrets())
                .create(
                    &target(BackendKind::ServiceNow, settings(stub)),
                    &content(),
                    budget,
                )
                .map(|_| ())
        },
    );
}

#[test]
fn json_secret() {
    let stub = StubServer::start().unwrap();
    stub.on("POST", "/api/now/table/incident", [created()]);
    sink(&[(
        "snow",
        r#"{"username":"muster.integration","password":"s3rvic3-n0w-pa55word"}"#,
    )])
    .create(
        &target(BackendKind::ServiceNow, settings(&stub)),
        &content(),
        no_deadline(),
    )
    .unwrap();
    assert_snow_request(&stub.requests()[0]);
}
