//! Slack Web API chat.postMessage against a stub that checks requests as documented,
//! including Slack's HTTP-200 `{"ok":false}` errors.

mod support;

use muster_core::ports::TicketSink;
use muster_core::tickets::{BackendKind, BackendSettings, TicketRef};
use muster_tickets::stub::{StubResponse, StubServer};
use serde_json::json;
use support::*;

const TOKEN: &str = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy";
const POST: &str = "/api/chat.postMessage";

fn settings(stub: &StubServer) -> BackendSettings {
    BackendSettings {
        base_url: format!("{}/api", stub.url()),
        secret: Some("slack-bot".into()),
        channel: Some("C0123SECOPS".into()),
        ..Default::default()
    }
}

fn secrets() -> Vec<(&'static str, &'static str)> {
    vec![("slack-bot", TOKEN)]
}

fn posted() -> StubResponse {
    StubResponse::json(
        200,
        json!({"ok": true, "channel": "C0123SECOPS", "ts": "1503435956.000247", "message": {"text": "x"}}),
    )
}

fn slack_error(error: &str) -> StubResponse {
    StubResponse::json(200, json!({"ok": false, "error": error}))
}

fn ticket() -> TicketRef {
    TicketRef {
        backend: BackendKind::Slack,
        key: "1503435956.000247".into(),
        url: String::new(),
        extra: [("channel".to_string(), "C0123SECOPS".to_string())].into(),
    }
}

fn assert_slack_request(r: &muster_tickets::stub::Recorded) {
    assert_eq!(r.bearer(), Some(TOKEN));
    if r.method == "POST" {
        assert_json_request(r);
    }
}

#[test]
fn create_posts_a_message_with_blocks() {
    let stub = StubServer::start().unwrap();
    stub.on("POST", POST, [posted()]);
    stub.on(
        "GET",
        "/api/chat.getPermalink",
        [StubResponse::json(200, json!({"ok": true, "channel": "C0123SECOPS", "permalink": "https://acme.slack.com/archives/C0123SECOPS/p1503435956000247"}))],
    );
    let content = content();
    let t = sink(&secrets())
        .create(
            &target(BackendKind::Slack, settings(&stub)),
            &content,
            no_deadline(),
        )
        .unwrap();
    assert_eq!(t.key, "1503435956.000247");
    assert_eq!(
        t.extra.get("channel").map(String::as_str),
        Some("C0123SECOPS")
    );
    assert_eq!(
        t.url,
        "https://acme.slack.com/archives/C0123SECOPS/p1503435956000247"
    );

    let seen = stub.requests();
    assert_eq!(seen.len(), 2);
    assert_slack_request(&seen[0]);
    let b = body(&seen[0]);
    assert_eq!(b["channel"], "C0123SECOPS");
    assert!(b["text"]
        .as_str()
        .unwrap()
        .starts_with("[HIGH] S3 bucket allows public &lt;write&gt; &amp; read"));
    assert_eq!(b["blocks"][0]["text"]["text"], json!(content.title));
    assert_eq!(b["blocks"][0]["type"], "header");
    assert_eq!(b["blocks"][0]["text"]["type"], "plain_text");
    assert_eq!(b["blocks"][1]["type"], "section");
    assert_eq!(b["blocks"][1]["text"]["type"], "mrkdwn");
    // mrkdwn control characters are escaped as Slack documents.
    assert!(!b["blocks"][1]["text"]["text"]
        .as_str()
        .unwrap()
        .contains('<'));
    assert_eq!(b["blocks"][2]["type"], "context");
    assert!(b.get("thread_ts").is_none());

    let r = &seen[1];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("GET", "/api/chat.getPermalink")
    );
    assert_slack_request(r);
    assert_eq!(r.query_param("channel"), Some("C0123SECOPS"));
    assert_eq!(r.query_param("message_ts"), Some("1503435956.000247"));
}

#[test]
fn a_failing_permalink_does_not_fail_the_ticket() {
    let stub = StubServer::start().unwrap();
    stub.on("POST", POST, [posted()]);
    stub.on(
        "GET",
        "/api/chat.getPermalink",
        [StubResponse::text(500, "boom")],
    );
    let t = sink(&secrets())
        .create(
            &target(BackendKind::Slack, settings(&stub)),
            &content(),
            no_deadline(),
        )
        .unwrap();
    assert_eq!(t.key, "1503435956.000247");
    assert_eq!(t.url, "");
    assert_eq!(
        stub.requests_to("POST", POST).len(),
        1,
        "the message is posted once"
    );
}

#[test]
fn updates_are_thread_replies() {
    let cases = [
        ("comment", false, ":information_source: Updated"),
        ("close", false, ":white_check_mark: Closed"),
        ("reopen", true, ":rotating_light: Reopened"),
    ];
    for (op, broadcast, prefix) in cases {
        let stub = StubServer::start().unwrap();
        stub.on("POST", POST, [posted()]);
        let sink = sink(&secrets());
        // The thread's channel comes from the ticket, even if the route changed channel.
        let mut s = settings(&stub);
        s.channel = Some("C0NEWCHAN".into());
        let t = target(BackendKind::Slack, s);
        let c = change("Severity HIGH -> CRITICAL");
        let result = match op {
            "comment" => sink.comment(&t, &ticket(), &c, no_deadline()),
            "close" => sink.close(&t, &ticket(), &c, no_deadline()),
            _ => sink.reopen(&t, &ticket(), &c, no_deadline()),
        };
        assert!(result.is_ok(), "{op}: {result:?}");
        let seen = stub.requests();
        assert_eq!(seen.len(), 1, "{op}");
        assert_slack_request(&seen[0]);
        let b = body(&seen[0]);
        assert_eq!(b["channel"], "C0123SECOPS", "{op}");
        assert_eq!(b["thread_ts"], "1503435956.000247", "{op}");
        assert_eq!(b["reply_broadcast"], broadcast, "{op}");
        let text = b["text"].as_str().unwrap();
        assert!(
            text.starts_with(prefix) && text.contains("Severity HIGH -&gt; CRITICAL"),
            "{op}: {text}"
        );
    }
}

#[test]
fn error_shapes() {
    let mut cases = standard_cases(
        posted(),
        (
            StubResponse::json(401, json!({"ok": false, "error": "not_authed"})),
            "not_authed",
        ),
        (StubResponse::text(404, "Not Found"), "Not Found"),
    );
    let ok_false: [(&str, &str); 5] = [
        ("invalid_auth", "slack error invalid_auth"),
        ("channel_not_found", "slack error channel_not_found"),
        ("not_in_channel", "slack error not_in_channel"),
        ("token_revoked", "slack error token_revoked"),
        ("invalid_blocks", "slack error invalid_blocks"),
    ];
    for (error, contains) in ok_false {
        cases.push(Case {
            name: error,
            script: vec![slack_error(error)],
            expect: Expect::Permanent { contains },
        });
    }
    cases.push(Case {
        name: "ok:false ratelimited is retried after Retry-After",
        script: vec![
            slack_error("ratelimited").header("Retry-After", "1"),
            posted(),
        ],
        expect: Expect::Ok {
            requests: 2,
            min_gap_ms: 1000,
        },
    });
    cases.push(Case {
        name: "ok:false internal_error is retried",
        script: vec![slack_error("internal_error"), posted()],
        expect: Expect::Ok {
            requests: 2,
            min_gap_ms: 0,
        },
    });
    run_cases(cases, "POST", POST, TOKEN, |stub, budget| {
        sink(&secrets())
            .create(
                &target(BackendKind::Slack, settings(stub)),
                &content(),
                budget,
            )
            .map(|_| ())
    });
}

#[test]
fn channel_is_required() {
    let stub = StubServer::start().unwrap();
    let mut s = settings(&stub);
    s.channel = None;
    let e = sink(&secrets())
        .create(&target(BackendKind::Slack, s), &content(), no_deadline())
        .unwrap_err();
    assert!(
        !e.is_retryable() && e.to_string().contains("channel"),
        "{e}"
    );
    assert!(stub.requests().is_empty());
}
