//! Jira Cloud REST v3 against a stub that checks requests as Atlassian documents them.

mod support;

use muster_core::ports::TicketSink;
use muster_core::tickets::{BackendKind, BackendSettings, TicketRef};
use muster_tickets::stub::{StubResponse, StubServer};
use serde_json::json;
use std::collections::BTreeMap;
use support::*;

const EMAIL: &str = "bot@example.com";
const TOKEN: &str = "ATATT3xFfGF0-jira-token-value";

fn settings(stub: &StubServer) -> BackendSettings {
    BackendSettings {
        base_url: format!("{}/", stub.url()),
        secret: Some("jira-creds".into()),
        project: Some("SEC".into()),
        issue_type: Some("Bug".into()),
        labels: vec!["aws".into(), "needs triage".into()],
        assignee: Some("5b10ac8d82e05b22cc7d4ef5".into()),
        ..Default::default()
    }
}

fn secrets() -> Vec<(&'static str, &'static str)> {
    vec![(
        "jira-creds",
        r#"{"email":"bot@example.com","api_token":"ATATT3xFfGF0-jira-token-value"}"#,
    )]
}

fn ticket() -> TicketRef {
    TicketRef {
        backend: BackendKind::Jira,
        key: "SEC-12".into(),
        url: String::new(),
        extra: BTreeMap::new(),
    }
}

fn assert_jira_request(r: &muster_tickets::stub::Recorded) {
    assert_eq!(
        r.basic_auth(),
        Some((EMAIL.to_string(), TOKEN.to_string())),
        "{} {}: Basic email:api_token",
        r.method,
        r.path
    );
    assert_eq!(r.header("user-agent"), Some("muster-test/1"));
    assert!(r
        .header("accept")
        .unwrap_or("")
        .contains("application/json"));
    if !r.body.is_empty() {
        assert_json_request(r);
    }
}

fn transitions() -> StubResponse {
    StubResponse::json(
        200,
        json!({"expand": "transitions", "transitions": [
            {"id": "11", "name": "To Do", "to": {"name": "To Do", "statusCategory": {"key": "new"}}},
            {"id": "21", "name": "In Progress", "to": {"name": "In Progress"}},
            {"id": "31", "name": "Done", "to": {"name": "Done", "statusCategory": {"key": "done"}}}
        ]}),
    )
}

#[test]
fn create_sends_a_v3_issue_with_adf() {
    let stub = StubServer::start().unwrap();
    stub.on(
        "POST",
        "/rest/api/3/issue",
        [StubResponse::json(
            201,
            json!({"id": "10042", "key": "SEC-12", "self": "https://x/rest/api/3/issue/10042"}),
        )],
    );
    let sink = sink(&secrets());
    let mut content = content();
    content.priority = Some("High".into());
    let t = sink
        .create(
            &target(BackendKind::Jira, settings(&stub)),
            &content,
            no_deadline(),
        )
        .unwrap();
    assert_eq!(t.key, "SEC-12");
    assert_eq!(t.url, format!("{}/browse/SEC-12", stub.url()));
    assert_eq!(t.extra.get("id").map(String::as_str), Some("10042"));

    let seen = stub.requests();
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert_jira_request(r);
    let fields = &body(r)["fields"];
    assert_eq!(fields["project"], json!({"key": "SEC"}));
    assert_eq!(fields["issuetype"], json!({"name": "Bug"}));
    assert_eq!(fields["summary"], json!(content.title));
    assert_eq!(fields["priority"], json!({"name": "High"}));
    assert_eq!(
        fields["assignee"],
        json!({"accountId": "5b10ac8d82e05b22cc7d4ef5"})
    );
    assert_eq!(
        fields["labels"],
        json!(["security-hub", "aws", "needs_triage"])
    );
    let d = &fields["description"];
    assert_eq!(d["type"], "doc");
    assert_eq!(d["version"], 1);
    assert_eq!(d["content"][0]["type"], "paragraph");
    assert_eq!(d["content"][0]["content"][0]["type"], "text");
    assert_eq!(d["content"][0]["content"][1]["type"], "hardBreak");
    assert_eq!(d["content"].as_array().map(Vec::len), Some(2));
}

#[test]
fn comment_close_and_reopen() {
    struct Case {
        name: &'static str,
        op: &'static str,
        /// (method, path, answers) the stub serves.
        routes: Vec<(&'static str, &'static str, Vec<StubResponse>)>,
        /// (method, path, expected JSON body or Null) in order.
        want: Vec<(&'static str, &'static str, serde_json::Value)>,
        error: Option<&'static str>,
    }
    let comment_ok = || StubResponse::json(201, json!({"id": "100"}));
    let adf_of = |text: &str| {
        json!({"body": {"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": text}]}
        ]}})
    };
    let cases = vec![
        Case {
            name: "comment",
            op: "comment",
            routes: vec![(
                "POST",
                "/rest/api/3/issue/SEC-12/comment",
                vec![comment_ok()],
            )],
            want: vec![(
                "POST",
                "/rest/api/3/issue/SEC-12/comment",
                adf_of("Severity HIGH -> CRITICAL"),
            )],
            error: None,
        },
        Case {
            name: "close transitions to Done, then comments",
            op: "close",
            routes: vec![
                (
                    "GET",
                    "/rest/api/3/issue/SEC-12/transitions",
                    vec![transitions()],
                ),
                (
                    "POST",
                    "/rest/api/3/issue/SEC-12/transitions",
                    vec![StubResponse::new(204)],
                ),
                (
                    "POST",
                    "/rest/api/3/issue/SEC-12/comment",
                    vec![comment_ok()],
                ),
            ],
            want: vec![
                ("GET", "/rest/api/3/issue/SEC-12/transitions", json!(null)),
                (
                    "POST",
                    "/rest/api/3/issue/SEC-12/transitions",
                    json!({"transition": {"id": "31"}}),
                ),
                (
                    "POST",
                    "/rest/api/3/issue/SEC-12/comment",
                    adf_of("Workflow RESOLVED"),
                ),
            ],
            error: None,
        },
        Case {
            name: "reopen transitions to To Do",
            op: "reopen",
            routes: vec![
                (
                    "GET",
                    "/rest/api/3/issue/SEC-12/transitions",
                    vec![transitions()],
                ),
                (
                    "POST",
                    "/rest/api/3/issue/SEC-12/transitions",
                    vec![StubResponse::new(204)],
                ),
                (
                    "POST",
                    "/rest/api/3/issue/SEC-12/comment",
                    vec![comment_ok()],
                ),
            ],
            want: vec![
                ("GET", "/rest/api/3/issue/SEC-12/transitions", json!(null)),
                (
                    "POST",
                    "/rest/api/3/issue/SEC-12/transitions",
                    json!({"transition": {"id": "11"}}),
                ),
                (
                    "POST",
                    "/rest/api/3/issue/SEC-12/comment",
                    adf_of("active again"),
                ),
            ],
            error: None,
        },
        Case {
            name: "close of an issue already done only comments",
            op: "close",
            routes: vec![
                (
                    "GET",
                    "/rest/api/3/issue/SEC-12/transitions",
                    vec![StubResponse::json(
                        200,
                        json!({"transitions": [{"id": "11", "name": "To Do"}]}),
                    )],
                ),
                (
                    "GET",
                    "/rest/api/3/issue/SEC-12",
                    vec![StubResponse::json(
                        200,
                        json!({"key": "SEC-12", "fields": {"status": {"name": "Done", "statusCategory": {"key": "done"}}}}),
                    )],
                ),
                (
                    "POST",
                    "/rest/api/3/issue/SEC-12/comment",
                    vec![comment_ok()],
                ),
            ],
            want: vec![
                ("GET", "/rest/api/3/issue/SEC-12/transitions", json!(null)),
                ("GET", "/rest/api/3/issue/SEC-12", json!(null)),
                (
                    "POST",
                    "/rest/api/3/issue/SEC-12/comment",
                    adf_of("Workflow RESOLVED"),
                ),
            ],
            error: None,
        },
        Case {
            name: "a workflow without the transition is a clear permanent error",
            op: "close",
            routes: vec![
                (
                    "GET",
                    "/rest/api/3/issue/SEC-12/transitions",
                    vec![StubResponse::json(
                        200,
                        json!({"transitions": [{"id": "5", "name": "Start"}]}),
                    )],
                ),
                (
                    "GET",
                    "/rest/api/3/issue/SEC-12",
                    vec![StubResponse::json(
                        200,
                        json!({"fields": {"status": {"statusCategory": {"key": "new"}}}}),
                    )],
                ),
            ],
            want: vec![
                ("GET", "/rest/api/3/issue/SEC-12/transitions", json!(null)),
                ("GET", "/rest/api/3/issue/SEC-12", json!(null)),
            ],
            error: Some("no transition named \"Done\" (offered: Start)"),
        },
    ];
    for case in cases {
        let stub = StubServer::start().unwrap();
        for (m, p, answers) in case.routes {
            stub.on(m, p, answers);
        }
        let sink = sink(&secrets());
        let t = target(BackendKind::Jira, settings(&stub));
        let result = match case.op {
            "comment" => sink.comment(
                &t,
                &ticket(),
                &change("Severity HIGH -> CRITICAL"),
                no_deadline(),
            ),
            "close" => sink.close(&t, &ticket(), &change("Workflow RESOLVED"), no_deadline()),
            _ => sink.reopen(&t, &ticket(), &change("active again"), no_deadline()),
        };
        match case.error {
            None => assert!(result.is_ok(), "{}: {result:?}", case.name),
            Some(text) => {
                let e = result.expect_err(case.name);
                assert!(!e.is_retryable(), "{}", case.name);
                assert!(e.to_string().contains(text), "{}: {e}", case.name);
            }
        }
        let seen = stub.requests();
        assert_eq!(seen.len(), case.want.len(), "{}: {seen:#?}", case.name);
        for (r, (m, p, b)) in seen.iter().zip(&case.want) {
            assert_eq!(
                (r.method.as_str(), r.path.as_str()),
                (*m, *p),
                "{}",
                case.name
            );
            assert_jira_request(r);
            if !b.is_null() {
                assert_eq!(&body(r), b, "{}", case.name);
            }
        }
    }
}

#[test]
fn error_shapes() {
    let cases = standard_cases(
        StubResponse::json(201, json!({"id": "10042", "key": "SEC-12"})),
        (
            StubResponse::text(401, "Client must be authenticated to access this resource."),
            "Client must be authenticated",
        ),
        (
            StubResponse::json(
                404,
                json!({"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}}),
            ),
            "Issue does not exist",
        ),
    );
    run_cases(cases, "POST", "/rest/api/3/issue", TOKEN, |stub, budget| {
        sink(&secrets())
            .create(
                &target(BackendKind::Jira, settings(stub)),
                &content(),
                budget,
            )
            .map(|_| ())
    });
    // A 400 names the field Jira complains about.
    let stub = StubServer::start().unwrap();
    stub.on(
        "POST",
        "/rest/api/3/issue",
        [StubResponse::json(400, json!({"errorMessages": [], "errors": {"priority": "Specify the Priority (name) in the string format"}}))],
    );
    let e = sink(&secrets())
        .create(
            &target(BackendKind::Jira, settings(&stub)),
            &content(),
            no_deadline(),
        )
        .unwrap_err();
    assert!(!e.is_retryable());
    assert!(
        e.to_string().contains("priority: Specify the Priority"),
        "{e}"
    );
}

#[test]
fn plain_secret_and_missing_settings() {
    let stub = StubServer::start().unwrap();
    stub.on(
        "POST",
        "/rest/api/3/issue",
        [StubResponse::json(201, json!({"id": "1", "key": "SEC-1"}))],
    );
    let plain = sink(&[(
        "jira-creds",
        "bot@example.com:ATATT3xFfGF0-jira-token-value",
    )]);
    plain
        .create(
            &target(BackendKind::Jira, settings(&stub)),
            &content(),
            no_deadline(),
        )
        .unwrap();
    assert_jira_request(&stub.requests()[0]);

    type Secret<'a> = &'a [(&'a str, &'a str)];
    let cases: Vec<(&str, BackendSettings, Secret, &str)> = vec![
        (
            "no project",
            BackendSettings {
                project: None,
                ..settings(&stub)
            },
            &[("jira-creds", "a@b:c")],
            "project",
        ),
        (
            "no secret name",
            BackendSettings {
                secret: None,
                ..settings(&stub)
            },
            &[],
            "secret",
        ),
        ("secret not found", settings(&stub), &[], "no secret named"),
        (
            "plain secret without colon",
            settings(&stub),
            &[("jira-creds", "justatoken")],
            "email:api_token",
        ),
        (
            "json secret without token",
            settings(&stub),
            &[("jira-creds", r#"{"email":"a@b"}"#)],
            "api_token",
        ),
    ];
    for (name, s, secrets, want) in cases {
        let e = sink(secrets)
            .create(&target(BackendKind::Jira, s), &content(), no_deadline())
            .expect_err(name);
        assert!(!e.is_retryable(), "{name}");
        assert!(e.to_string().contains(want), "{name}: {e}");
    }
    assert_eq!(
        stub.requests().len(),
        1,
        "bad settings never reach the server"
    );
}
