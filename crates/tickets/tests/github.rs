//! GitHub Issues REST API against a stub that checks requests as documented.

mod support;

use muster_core::ports::TicketSink;
use muster_core::tickets::{BackendKind, BackendSettings, TicketRef};
use muster_tickets::stub::{StubResponse, StubServer};
use serde_json::json;
use support::*;

const TOKEN: &str = "ghp_16C7e42F292c6912E7710c838347Ae178B4a";

fn settings(stub: &StubServer) -> BackendSettings {
    BackendSettings {
        base_url: stub.url(),
        secret: Some("gh".into()),
        project: Some("acme/security-findings".into()),
        labels: vec!["aws".into()],
        assignee: Some("octocat".into()),
        ..Default::default()
    }
}

fn secrets() -> Vec<(&'static str, &'static str)> {
    vec![("gh", TOKEN)]
}

fn ticket() -> TicketRef {
    TicketRef {
        backend: BackendKind::GitHub,
        key: "1347".into(),
        url: "https://github.com/acme/security-findings/issues/1347".into(),
        extra: [("repo".to_string(), "acme/security-findings".to_string())].into(),
    }
}

fn created() -> StubResponse {
    StubResponse::json(
        201,
        json!({"id": 1, "number": 1347, "state": "open", "html_url": "https://github.com/acme/security-findings/issues/1347"}),
    )
}

fn assert_github_request(r: &muster_tickets::stub::Recorded) {
    assert_eq!(r.bearer(), Some(TOKEN), "{} {}", r.method, r.path);
    assert_eq!(r.header("accept"), Some("application/vnd.github+json"));
    assert_eq!(r.header("x-github-api-version"), Some("2022-11-28"));
    assert_json_request(r);
}

#[test]
fn create_opens_an_issue() {
    let stub = StubServer::start().unwrap();
    stub.on("POST", "/repos/acme/security-findings/issues", [created()]);
    let mut content = content();
    content.priority = Some("P1".into());
    let t = sink(&secrets())
        .create(
            &target(BackendKind::GitHub, settings(&stub)),
            &content,
            no_deadline(),
        )
        .unwrap();
    assert_eq!(t.key, "1347");
    assert_eq!(
        t.url,
        "https://github.com/acme/security-findings/issues/1347"
    );
    let r = &stub.requests()[0];
    assert_github_request(r);
    let b = body(r);
    assert_eq!(b["title"], json!(content.title));
    assert!(b["body"].as_str().unwrap().contains(FINDING_ID));
    assert_eq!(b["labels"], json!(["security-hub", "aws", "P1"]));
    assert_eq!(b["assignees"], json!(["octocat"]));
}

#[test]
fn comment_close_reopen() {
    let issue = "/repos/acme/security-findings/issues/1347";
    let comments = "/repos/acme/security-findings/issues/1347/comments";
    let cases = [
        ("comment", vec![("POST", comments, json!({"body": "why"}))]),
        (
            "close",
            vec![
                (
                    "PATCH",
                    issue,
                    json!({"state": "closed", "state_reason": "completed"}),
                ),
                ("POST", comments, json!({"body": "why"})),
            ],
        ),
        (
            "reopen",
            vec![
                ("PATCH", issue, json!({"state": "open"})),
                ("POST", comments, json!({"body": "why"})),
            ],
        ),
    ];
    for (op, want) in cases {
        let stub = StubServer::start().unwrap();
        stub.on(
            "POST",
            comments,
            [StubResponse::json(201, json!({"id": 7}))],
        );
        stub.on(
            "PATCH",
            issue,
            [StubResponse::json(200, json!({"number": 1347}))],
        );
        let sink = sink(&secrets());
        // The ticket's own repo wins over the route's, which may have moved since.
        let mut s = settings(&stub);
        s.project = Some("acme/elsewhere".into());
        let t = target(BackendKind::GitHub, s);
        let result = match op {
            "comment" => sink.comment(&t, &ticket(), &change("why"), no_deadline()),
            "close" => sink.close(&t, &ticket(), &change("why"), no_deadline()),
            _ => sink.reopen(&t, &ticket(), &change("why"), no_deadline()),
        };
        assert!(result.is_ok(), "{op}: {result:?}");
        let seen = stub.requests();
        assert_eq!(seen.len(), want.len(), "{op}");
        for (r, (m, p, b)) in seen.iter().zip(&want) {
            assert_eq!((r.method.as_str(), r.path.as_str()), (*m, *p), "{op}");
            assert_github_request(r);
            assert_eq!(&body(r), b, "{op}");
        }
    }
}

#[test]
fn error_shapes() {
    let mut cases = standard_cases(
        created(),
        (
            StubResponse::json(
                401,
                json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}),
            ),
            "Bad credentials",
        ),
        (
            StubResponse::json(
                404,
                json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest/issues/issues#create-an-issue"}),
            ),
            "Not Found",
        ),
    );
    cases.push(Case {
        name: "422 names the invalid field",
        script: vec![StubResponse::json(
            422,
            json!({"message": "Validation Failed", "errors": [{"resource": "Issue", "code": "invalid", "field": "assignees"}]}),
        )],
        expect: Expect::Permanent {
            contains: "Validation Failed; assignees invalid",
        },
    });
    cases.push(Case {
        name: "403 secondary rate limit waits for Retry-After",
        script: vec![
            StubResponse::json(
                403,
                json!({"message": "You have exceeded a secondary rate limit."}),
            )
            .header("Retry-After", "1"),
            created(),
        ],
        expect: Expect::Ok {
            requests: 2,
            min_gap_ms: 1000,
        },
    });
    cases.push(Case {
        name: "403 without a rate limit is permanent",
        script: vec![StubResponse::json(
            403,
            json!({"message": "Resource not accessible by integration"}),
        )],
        expect: Expect::Permanent {
            contains: "Resource not accessible",
        },
    });
    run_cases(
        cases,
        "POST",
        "/repos/acme/security-findings/issues",
        TOKEN,
        |stub, budget| {
            sink(&secrets())
                .create(
                    &target(BackendKind::GitHub, settings(stub)),
                    &content(),
                    budget,
                )
                .map(|_| ())
        },
    );
}

#[test]
fn bad_repository_settings() {
    for bad in [
        "acme",
        "acme/",
        "acme/../x",
        "acme/repo/issues",
        "../etc/passwd",
    ] {
        let stub = StubServer::start().unwrap();
        let mut s = settings(&stub);
        s.project = Some(bad.into());
        let e = sink(&secrets())
            .create(&target(BackendKind::GitHub, s), &content(), no_deadline())
            .expect_err(bad);
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("owner/repo"), "{bad}: {e}");
        assert!(stub.requests().is_empty());
    }
    // A JSON secret works the same.
    let stub = StubServer::start().unwrap();
    stub.on("POST", "/repos/acme/security-findings/issues", [created()]);
    sink(&[(
        "gh",
        r#"{"token":"ghp_16C7e42F292c6912E7710c838347Ae178B4a"}"#,
    )])
    .create(
        &target(BackendKind::GitHub, settings(&stub)),
        &content(),
        no_deadline(),
    )
    .unwrap();
    assert_github_request(&stub.requests()[0]);
}
