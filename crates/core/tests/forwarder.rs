//! The ticket forwarder's core against our Security Hub event samples and the
//! third-party corpus: parsing, routing, the lifecycle, exactly one ticket per finding
//! under repeated and concurrent deliveries, and no loop on our own write-back.

use muster_core::ports::{Budget, Ledger};
use muster_core::tickets::memory::{MemoryLedger, RecordingTickets, RecordingWriteBack};
use muster_core::tickets::{
    parse_events, EventKind, ForwardSummary, Forwarder, LedgerEntry, Routes, SecurityHubEvent,
    TicketState,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

const NOW: i64 = 1_795_000_000;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ours(name: &str) -> PathBuf {
    repo().join("events/securityhub-events").join(name)
}

fn events_of(path: &Path) -> Vec<SecurityHubEvent> {
    let text = std::fs::read_to_string(path).unwrap();
    parse_events(&text, &path.display().to_string())
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

fn event(name: &str) -> SecurityHubEvent {
    let mut all = events_of(&ours(name));
    assert_eq!(all.len(), 1, "{name}");
    all.remove(0)
}

fn example_routes() -> Routes {
    let path = repo().join("events/routes/routes.example.json");
    Routes::from_json(
        &std::fs::read_to_string(&path).unwrap(),
        &path.display().to_string(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Everything to Jira, except what the test wants unrouted.
const SIMPLE_ROUTES: &str = r#"{
  "backends": {"jira": {"type": "jira", "base_url": "http://127.0.0.1:9", "project": "SEC",
                        "priority": {"HIGH": "High", "CRITICAL": "Highest"}}},
  "routes": [
    {"name": "no-low", "match": {"severity": ["LOW", "INFORMATIONAL"]}, "drop": true},
    {"name": "all", "default": true, "backend": "jira"}
  ]
}"#;

fn simple_routes() -> Routes {
    Routes::from_json(SIMPLE_ROUTES, "simple").unwrap()
}

struct World {
    routes: Routes,
    ledger: MemoryLedger,
    tickets: RecordingTickets,
    write_back: RecordingWriteBack,
}

impl World {
    fn new(routes: Routes, tickets: RecordingTickets) -> Self {
        World {
            routes,
            ledger: MemoryLedger::new(),
            tickets,
            write_back: RecordingWriteBack::new(),
        }
    }

    fn forwarder(&self) -> Forwarder<'_> {
        Forwarder {
            routes: &self.routes,
            ledger: &self.ledger,
            tickets: &self.tickets,
            write_back: Some(&self.write_back),
            ttl_days: Some(400),
            concurrency: 4,
            lease_seconds: 900,
        }
    }

    fn forward(&self, e: &SecurityHubEvent, now: i64) -> ForwardSummary {
        self.forwarder().forward(e, now, Budget::default())
    }
}

/// (created, updated, closed, reopened, unchanged, unrouted, failed)
fn counts(s: &ForwardSummary) -> [usize; 7] {
    [
        s.created,
        s.updated,
        s.closed,
        s.reopened,
        s.unchanged,
        s.unrouted,
        s.failed,
    ]
}

// ---- parsing --------------------------------------------------------------------------

#[test]
fn our_samples_parse() {
    // file, events, findings per event, custom action name
    let table: &[(&str, usize, &[usize], Option<&str>)] = &[
        ("imported_guardduty_high.json", 1, &[1], None),
        ("imported_multi_three_products.json", 1, &[3], None),
        ("imported_archived.json", 1, &[1], None),
        ("imported_resolved.json", 1, &[1], None),
        ("imported_writeback_echo.json", 1, &[1], None),
        (
            "customaction_send_to_ticket.json",
            1,
            &[2],
            Some("Send to ticket"),
        ),
        ("lifecycle_s3_2.jsonl", 5, &[1, 1, 1, 1, 1], None),
    ];
    let mut seen = 0;
    for entry in std::fs::read_dir(ours("")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.ends_with(".json") || name.ends_with(".jsonl")) {
            continue;
        }
        let (_, n, per_event, action) = table
            .iter()
            .find(|t| t.0 == name)
            .unwrap_or_else(|| panic!("{name}: a new sample needs a row in this table"));
        let events = events_of(&path);
        assert_eq!(events.len(), *n, "{name}");
        for (e, want) in events.iter().zip(per_event.iter()) {
            assert_eq!(e.findings.len(), *want, "{name}");
            match (&e.kind, action) {
                (EventKind::Imported, None) => {}
                (EventKind::CustomAction { action_name }, Some(a)) => assert_eq!(action_name, a),
                (k, a) => panic!("{name}: kind {k:?}, expected action {a:?}"),
            }
            for f in &e.findings {
                for (field, v) in [
                    ("id", &f.id),
                    ("region", &f.region),
                    ("severity", &f.severity_label),
                    ("workflow", &f.workflow_status),
                    ("record state", &f.record_state),
                    ("account", &f.aws_account_id),
                    ("product", &f.product_name),
                ] {
                    assert!(!v.is_empty(), "{name}: {} has no {field}", f.id);
                }
            }
        }
        seen += 1;
    }
    assert_eq!(seen, table.len(), "a sample in the table is missing");

    let multi = event("imported_multi_three_products.json");
    let f = &multi.findings[1];
    assert_eq!(
        (
            f.product_name.as_str(),
            f.region.as_str(),
            f.aws_account_id.as_str(),
            f.severity_label.as_str()
        ),
        ("Inspector", "us-east-1", "444455556666", "CRITICAL")
    );
    assert_eq!(f.resource_types, ["AwsEcrContainerImage"]);
    let echo = event("imported_writeback_echo.json");
    assert_eq!(
        echo.findings[0].user_defined_fields["muster_ticket"],
        "SEC-101"
    );
    assert!(echo.findings[0]
        .note_text
        .as_deref()
        .unwrap()
        .starts_with("Ticket SEC-101"));
}

#[test]
fn corpus_samples_parse() {
    let Some(corpus) = std::env::var_os("MUSTER_CORPUS") else {
        eprintln!("MUSTER_CORPUS is not set: corpus test skipped (scripts/test sets it)");
        return;
    };
    let dir = Path::new(&corpus).join("securityhub");
    // file, kind (custom action name), findings, (first finding: severity, workflow, compliance, region, resource type, product)
    type Row<'a> = (&'a str, Option<&'a str>, usize, [&'a str; 6]);
    let table: &[Row] = &[
        (
            "asr_eb_imported_CIS-1.4.json",
            None,
            1,
            [
                "MEDIUM",
                "NEW",
                "WARNING",
                "us-east-1",
                "AwsAccount",
                "Security Hub",
            ],
        ),
        (
            "asr_eb_customaction_CIS_1-6-multi-select.json",
            Some("CIS 1.5 - 1.11 RR"),
            2,
            [
                "MEDIUM",
                "NEW",
                "WARNING",
                "us-east-1",
                "AwsAccount",
                "Security Hub",
            ],
        ),
        (
            "asr_asff_afsbp-rds.5.json",
            None,
            1,
            [
                "MEDIUM",
                "NEW",
                "FAILED",
                "us-east-1",
                "AwsRdsDbInstance",
                "Security Hub",
            ],
        ),
        (
            "asr_asff_afsbp-ec2.2.json",
            None,
            1,
            [
                "INFORMATIONAL",
                "NEW",
                "FAILED",
                "us-east-1",
                "AwsEc2SecurityGroup",
                "Security Hub",
            ],
        ),
    ];
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let events = events_of(&path);
        assert!(!events.is_empty(), "{name}: no events");
        files += 1;
        let Some((_, action, n, first)) = table.iter().find(|t| t.0 == name) else {
            continue; // a new corpus file: parsing is what is checked
        };
        assert_eq!(events.len(), 1, "{name}");
        let e = &events[0];
        match (&e.kind, action) {
            (EventKind::Imported, None) => {}
            (EventKind::CustomAction { action_name }, Some(a)) => assert_eq!(action_name, a),
            (k, a) => panic!("{name}: kind {k:?}, expected {a:?}"),
        }
        assert_eq!(e.findings.len(), *n, "{name}");
        let f = &e.findings[0];
        let got = [
            f.severity_label.as_str(),
            f.workflow_status.as_str(),
            f.compliance_status.as_deref().unwrap_or(""),
            f.region.as_str(),
            f.resource_types.first().map(String::as_str).unwrap_or(""),
            f.product_name.as_str(),
        ];
        assert_eq!(got, *first, "{name}");
    }
    assert!(files >= table.len(), "{}: files missing", dir.display());
}

#[test]
fn bad_events_are_rejected_with_origin_line_and_field() {
    let good = std::fs::read_to_string(ours("imported_guardduty_high.json")).unwrap();
    let compact: serde_json::Value = serde_json::from_str(&good).unwrap();
    let line = serde_json::to_string(&compact).unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        ("not json", "{oops".into(), "bad.json:1"),
        (
            "array of non-objects",
            "[1]".into(),
            "expected a JSON object",
        ),
        (
            "other detail-type",
            line.replace(
                "Security Hub Findings - Imported",
                "Security Hub Insight Results",
            ),
            "field `detail-type`",
        ),
        (
            "findings not an array",
            r#"{"detail-type":"Security Hub Findings - Imported","detail":{"findings":{}}}"#.into(),
            "field `detail.findings`",
        ),
        (
            "finding without Id",
            r#"{"Findings":[{"Title":"x"}]}"#.into(),
            "field `Findings[0].Id`: missing",
        ),
        (
            "title of the wrong type",
            line.replace(r#""Title":"EC2 instance"#, r#""Title":5,"X":"EC2 instance"#),
            "field `detail.findings[0].Title`: expected a string, found a number",
        ),
        (
            "resources not an array",
            r#"{"Id":"a","Resources":{}}"#.into(),
            "field `Resources`: expected an array",
        ),
        (
            "second json line broken",
            format!("{line}\n{{\"detail\": 1\n"),
            "bad.json:2",
        ),
        (
            "neither shape",
            r#"{"hello":"world"}"#.into(),
            "neither an EventBridge event",
        ),
    ];
    for (name, text, want) in cases {
        let results = parse_events(&text, "bad.json");
        let err = results
            .iter()
            .find_map(|r| r.as_ref().err())
            .unwrap_or_else(|| panic!("{name}: accepted"));
        let msg = err.to_string();
        assert!(msg.contains(want), "{name}: {msg:?} lacks {want:?}");
        assert!(
            msg.starts_with("bad.json"),
            "{name}: {msg:?} lacks the origin"
        );
    }
    // A JSON array of events (and bare findings) is one document of several events.
    let array = parse_events(
        &format!(r#"[{line}, {{"Id": "bare-1", "Severity": {{"Normalized": 75}}}}]"#),
        "array",
    );
    let kinds: Vec<_> = array
        .iter()
        .map(|r| {
            r.as_ref()
                .map(|e| e.findings[0].severity_label.clone())
                .unwrap()
        })
        .collect();
    assert_eq!(kinds, ["HIGH", "HIGH"]);
    // The good line still parses next to the bad one.
    let mixed = parse_events(&format!("{line}\n{{\"detail\": 1\n\n{line}\n"), "mixed");
    assert_eq!(
        mixed.iter().map(Result::is_ok).collect::<Vec<_>>(),
        [true, false, true]
    );
}

// ---- routing --------------------------------------------------------------------------

#[test]
fn example_routes_route_the_samples() {
    let routes = example_routes();
    assert_eq!(
        routes.secret_names(),
        [
            "github-token",
            "jira",
            "pagerduty-routing-key",
            "servicenow",
            "slack-bot-token",
            "webhook-hmac-key"
        ]
    );
    // file, finding index, expected route (None: unrouted)
    let table: &[(&str, usize, Option<&str>)] = &[
        ("imported_guardduty_high.json", 0, Some("guardduty-high")),
        ("imported_multi_three_products.json", 0, Some("s3-controls")),
        // CRITICAL in 444455556666: not prod, not GuardDuty, not S3 -> the default rule.
        (
            "imported_multi_three_products.json",
            1,
            Some("everything-else"),
        ),
        // LOW: dropped on purpose.
        ("imported_multi_three_products.json", 2, None),
        // Custom action: the first rule wins over guardduty-high, even for a LOW finding.
        (
            "customaction_send_to_ticket.json",
            0,
            Some("console-send-to-ticket"),
        ),
        (
            "customaction_send_to_ticket.json",
            1,
            Some("console-send-to-ticket"),
        ),
    ];
    for (file, i, want) in table {
        let e = event(file);
        let got = routes.route_event(&e.kind, &e.findings[*i]);
        assert_eq!(got.as_ref().map(|t| t.route.as_str()), *want, "{file}[{i}]");
    }
    // Overrides: the rule's labels are added to the backend's; priority comes from the backend.
    let gd = event("imported_guardduty_high.json");
    let t = routes.route(&gd.findings[0]).unwrap();
    assert_eq!(t.settings.labels, ["security-hub", "threat-detection"]);
    assert_eq!(
        t.settings.assignee.as_deref(),
        Some("5b10a2844c20165700ede21g")
    );
    assert_eq!(t.settings.priority["HIGH"], "High");
    // route() treats findings as Imported: the custom-action rule does not apply.
    let ca = event("customaction_send_to_ticket.json");
    assert_eq!(
        routes.route(&ca.findings[0]).map(|t| t.route),
        Some("guardduty-high".to_string())
    );
}

#[test]
fn routing_by_each_condition() {
    let base = event("imported_guardduty_high.json").findings[0].clone();
    let rules = |m: &str| {
        format!(
            r#"{{"backends": {{"w": {{"type": "webhook", "base_url": "http://127.0.0.1:9"}}}},
                "routes": [{{"name": "hit", "match": {m}, "backend": "w"}}]}}"#
        )
    };
    // match, does the GuardDuty finding match?
    let table: &[(&str, bool)] = &[
        (r#"{"severity": ["high"]}"#, true),
        (r#"{"severity": ["LOW"]}"#, false),
        (r#"{"account": ["111122223333"]}"#, true),
        (r#"{"account": ["444455556666"]}"#, false),
        (r#"{"region": ["us-*"]}"#, true),
        (r#"{"region": ["eu-*"]}"#, false),
        (r#"{"product": ["guardduty"]}"#, true),
        (
            r#"{"product": ["arn:aws:securityhub:us-west-2::product/aws/guardduty"]}"#,
            true,
        ),
        (r#"{"product": ["Inspector"]}"#, false),
        (r#"{"generator": ["arn:aws:guardduty:*"]}"#, true),
        (r#"{"generator": ["security-control/*"]}"#, false),
        (
            r#"{"resource_type": ["AwsS3Bucket", "AwsEc2Instance"]}"#,
            true,
        ),
        (r#"{"resource_type": ["AwsS3Bucket"]}"#, false),
        (r#"{"workflow_status": ["NEW"]}"#, true),
        (r#"{"workflow_status": ["NOTIFIED"]}"#, false),
        (r#"{"record_state": ["ACTIVE"]}"#, true),
        (r#"{"record_state": ["ARCHIVED"]}"#, false),
        (r#"{"title": "command and control"}"#, true),
        (r#"{"title": "^S3"}"#, false),
        (r#"{"event": ["imported"]}"#, true),
        (r#"{"event": ["custom_action"]}"#, false),
        (r#"{"severity": ["HIGH"], "region": ["eu-west-1"]}"#, false),
    ];
    for (m, want) in table {
        let routes = Routes::from_json(&rules(m), "t").unwrap_or_else(|e| panic!("{m}: {e}"));
        assert_eq!(routes.route(&base).is_some(), *want, "{m}");
    }
}

#[test]
fn routes_validation_errors_name_rule_and_field() {
    let ok = r#"{"backends": {"j": {"type": "jira", "base_url": "https://x", "project": "P"}},
                 "routes": [{"name": "a", "match": {"severity": ["HIGH"]}, "backend": "j"},
                            {"name": "d", "default": true, "backend": "j"}]}"#;
    Routes::from_json(ok, "ok.json").unwrap();
    let table: &[(&str, &str, &str)] = &[
        ("not json", "{", "ok.json"),
        (
            "unknown top-level key",
            r#"{"backends": {}, "rutes": []}"#,
            "unknown field `rutes`",
        ),
        ("no backends", r#"{"routes": []}"#, "no backends"),
        (
            "no routes",
            r#"{"backends": {"j": {"type": "jira", "base_url": "https://x", "project": "P"}}}"#,
            "no routes",
        ),
        (
            "unknown backend type",
            r#"{"backends": {"j": {"type": "trello", "base_url": "https://x"}}, "routes": []}"#,
            "backend \"j\": field `type`: unknown backend \"trello\"",
        ),
        (
            "backend without type",
            r#"{"backends": {"j": {"base_url": "https://x"}}, "routes": []}"#,
            "backend \"j\": field `type` is missing",
        ),
        (
            "unknown backend setting",
            r#"{"backends": {"j": {"type": "jira", "base_url": "https://x", "projekt": "P"}}, "routes": []}"#,
            "backend \"j\": unknown field `projekt`",
        ),
        (
            "bad base_url",
            r#"{"backends": {"j": {"type": "jira", "base_url": "acme.atlassian.net"}}, "routes": []}"#,
            "field `base_url`",
        ),
        (
            "duplicate backend",
            r#"{"backends": {"j": {"type": "webhook", "base_url": "https://x"}, "j": {"type": "webhook", "base_url": "https://y"}}, "routes": []}"#,
            "backend \"j\" is defined twice",
        ),
        (
            "unknown severity in backend priority",
            r#"{"backends": {"j": {"type": "webhook", "base_url": "https://x", "priority": {"SEVERE": "1"}}}, "routes": []}"#,
            "unknown severity label \"SEVERE\"",
        ),
        (
            "unknown backend in rule",
            &ok.replace(r#""backend": "j"}"#, r#""backend": "k"}"#),
            "routes[0] \"a\": field `backend`: unknown backend \"k\"",
        ),
        (
            "unknown severity in match",
            &ok.replace(r#"["HIGH"]"#, r#"["SEVERE"]"#),
            "routes[0] \"a\": field `match.severity`: unknown severity label \"SEVERE\"",
        ),
        (
            "unknown workflow status",
            &ok.replace(r#""severity": ["HIGH"]"#, r#""workflow_status": ["OPEN"]"#),
            "field `match.workflow_status`: unknown workflow status \"OPEN\"",
        ),
        (
            "bad regex",
            &ok.replace(r#""severity": ["HIGH"]"#, r#""title": "(unclosed""#),
            "routes[0] \"a\": field `match.title`: bad regular expression",
        ),
        (
            "unknown match key",
            &ok.replace(r#""severity""#, r#""sevrity""#),
            "routes[0] \"a\": unknown field `sevrity`",
        ),
        (
            "unknown rule key",
            &ok.replace(r#""name": "a","#, r#""name": "a", "priorty": {},"#),
            "routes[0] \"a\": unknown field `priorty`",
        ),
        (
            "duplicate rule name",
            &ok.replace(r#""name": "d""#, r#""name": "a""#),
            "routes[1] \"a\": duplicate rule name",
        ),
        (
            "default not last",
            r#"{"backends": {"j": {"type": "webhook", "base_url": "https://x"}},
                "routes": [{"name": "d", "default": true, "backend": "j"},
                           {"name": "a", "match": {"severity": ["HIGH"]}, "backend": "j"}]}"#,
            "routes[0] \"d\": the `default` rule must be the last one",
        ),
        (
            "match-all without default",
            &ok.replace(r#""match": {"severity": ["HIGH"]}, "#, ""),
            "routes[0] \"a\": field `match`: missing or empty",
        ),
        (
            "empty value list",
            &ok.replace(r#"["HIGH"]"#, "[]"),
            "field `match.severity`: empty list",
        ),
        (
            "drop with a backend",
            &ok.replace(r#""backend": "j"}"#, r#""backend": "j", "drop": true}"#),
            "`drop` and `backend` exclude each other",
        ),
        (
            "no backend, no drop",
            &ok.replace(r#", "backend": "j"}"#, "}"),
            "field `backend` is missing",
        ),
        (
            "jira without project",
            &ok.replace(r#", "project": "P""#, ""),
            "routes[0] \"a\": backend \"j\": jira needs `project`",
        ),
        (
            "github project not owner/repo",
            r#"{"backends": {"g": {"type": "github", "base_url": "https://api.github.com", "project": "repo"}},
                "routes": [{"name": "d", "default": true, "backend": "g"}]}"#,
            "github needs `project` as \"owner/repo\"",
        ),
        (
            "slack without channel",
            r#"{"backends": {"s": {"type": "slack", "base_url": "https://slack.com/api"}},
                "routes": [{"name": "d", "default": true, "backend": "s"}]}"#,
            "slack needs `channel`",
        ),
    ];
    for (name, text, want) in table {
        let err = Routes::from_json(text, "ok.json")
            .err()
            .unwrap_or_else(|| panic!("{name}: accepted"))
            .to_string();
        assert!(err.contains(want), "{name}: {err:?} lacks {want:?}");
        assert!(err.contains("ok.json"), "{name}: {err:?} lacks the origin");
    }
    // A rule may supply what its backend lacks (here the Slack channel).
    Routes::from_json(
        r#"{"backends": {"s": {"type": "slack", "base_url": "https://slack.com/api"}},
            "routes": [{"name": "d", "default": true, "backend": "s", "channel": "C1"}]}"#,
        "ok.json",
    )
    .unwrap();
}

// ---- forwarding -----------------------------------------------------------------------

#[test]
fn same_event_three_times_twice_concurrently_makes_one_ticket() {
    // Both concurrent deliveries read "no entry" before either claims (slow ledger reads),
    // and the backend is slow: only the conditional put keeps the second from creating.
    let mut w = World::new(
        simple_routes(),
        RecordingTickets::with_delay(Duration::from_millis(100)),
    );
    w.ledger = MemoryLedger::with_read_delay(Duration::from_millis(50));
    let e = event("imported_guardduty_high.json");
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| w.forward(&e, NOW));
        let b = s.spawn(|| w.forward(&e, NOW));
        (a.join().unwrap(), b.join().unwrap())
    });
    let c = w.forward(&e, NOW + 60);
    let mut total = ForwardSummary::default();
    for s in [a, b, c] {
        total.merge(s);
    }
    assert_eq!(
        w.tickets.calls_of("create").len(),
        1,
        "{:?}",
        w.tickets.calls()
    );
    assert_eq!(counts(&total), [1, 0, 0, 0, 2, 0, 0], "{total:?}");
    assert!(!total.has_retryable_failures());
    assert_eq!(w.write_back.updates().len(), 1);
    let entry = w.ledger.get(&e.findings[0].id).unwrap().unwrap();
    assert_eq!(entry.state, TicketState::Open);
    assert_eq!(entry.ticket.unwrap().key, "MEM-1");
}

#[test]
fn many_findings_in_parallel_each_get_one_ticket() {
    let w = World::new(
        simple_routes(),
        RecordingTickets::with_delay(Duration::from_millis(5)),
    );
    let mut e = event("imported_guardduty_high.json");
    let proto = e.findings[0].clone();
    e.findings = (0..40)
        .map(|i| {
            let mut f = proto.clone();
            f.id = format!("{}-{i}", proto.id);
            f
        })
        .collect();
    // The same finding twice in one event: still one ticket.
    e.findings.push(e.findings[0].clone());
    let s = w.forward(&e, NOW);
    assert_eq!(counts(&s), [40, 0, 0, 0, 1, 0, 0], "{s:?}");
    let mut keys: Vec<_> = w
        .tickets
        .calls_of("create")
        .into_iter()
        .map(|c| c.finding_id)
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 40);
    assert_eq!(w.write_back.updates().len(), 40);
}

#[test]
fn lifecycle_create_comment_nothing_close_reopen() {
    let w = World::new(simple_routes(), RecordingTickets::new());
    let steps = events_of(&ours("lifecycle_s3_2.jsonl"));
    // expected counts, ticket calls so far, text the last call must contain
    let table: &[([usize; 7], &[&str], &str)] = &[
        (
            [1, 0, 0, 0, 0, 0, 0],
            &["create"],
            "[MEDIUM] S3 general purpose",
        ),
        (
            [0, 1, 0, 0, 0, 0, 0],
            &["create", "comment"],
            // Workflow NEW -> NOTIFIED is our write-back's doing: not in the comment.
            "Security Hub finding changed: Severity: MEDIUM -> HIGH.",
        ),
        ([0, 0, 0, 0, 1, 0, 0], &["create", "comment"], ""),
        (
            [0, 0, 1, 0, 0, 0, 0],
            &["create", "comment", "close"],
            "closed (Compliance PASSED, Workflow RESOLVED)",
        ),
        (
            [0, 0, 0, 1, 0, 0, 0],
            &["create", "comment", "close", "reopen"],
            "active again: Workflow: RESOLVED -> NEW; Compliance: PASSED -> FAILED",
        ),
    ];
    assert_eq!(steps.len(), table.len());
    for (i, (e, (want, ops, text))) in steps.iter().zip(table).enumerate() {
        let s = w.forward(e, NOW + i as i64 * 3600);
        assert_eq!(counts(&s), *want, "step {i}: {s:?}");
        let calls = w.tickets.calls();
        assert_eq!(
            calls.iter().map(|c| c.op).collect::<Vec<_>>(),
            *ops,
            "step {i}"
        );
        let last = calls.last().unwrap();
        assert!(last.text.contains(text), "step {i}: {:?}", last.text);
        assert!(calls.iter().all(|c| c.key == "MEM-1"), "step {i}");
    }
    let entry = w.ledger.get(&steps[0].findings[0].id).unwrap().unwrap();
    assert_eq!(entry.state, TicketState::Open);
    assert_eq!(entry.expires_at, Some(NOW + 4 * 3600 + 400 * 86_400));
    // Write-backs: the create and the reopen, both setting NOTIFIED from NEW.
    let wbs = w.write_back.updates();
    assert_eq!(
        wbs.iter()
            .map(|u| (u.note.as_str(), u.set_notified))
            .collect::<Vec<_>>(),
        [
            ("Ticket MEM-1: https://tickets.example/browse/MEM-1", true),
            (
                "Ticket MEM-1 reopened: https://tickets.example/browse/MEM-1",
                true
            )
        ]
    );
}

#[test]
fn our_write_back_echo_does_nothing() {
    // Echo as Security Hub sends it back (our sample), and the echo of what we actually wrote.
    let w = World::new(simple_routes(), RecordingTickets::new());
    let first = event("imported_guardduty_high.json");
    assert_eq!(counts(&w.forward(&first, NOW)), [1, 0, 0, 0, 0, 0, 0]);
    let wb = w.write_back.updates().remove(0);
    assert!(wb.set_notified);
    assert_eq!(wb.user_defined_fields["muster_ticket"], "MEM-1");

    let sample_echo = event("imported_writeback_echo.json");
    let mut applied = first.clone();
    let f = &mut applied.findings[0];
    f.workflow_status = "NOTIFIED".into();
    f.note_text = Some(wb.note.clone());
    f.user_defined_fields = wb.user_defined_fields.clone();
    f.updated_at = "2026-11-20T10:16:09.000Z".into();
    for (name, echo) in [("sample", &sample_echo), ("applied", &applied)] {
        let s = w.forward(echo, NOW + 5);
        assert_eq!(counts(&s), [0, 0, 0, 0, 1, 0, 0], "{name}: {s:?}");
    }
    assert_eq!(w.tickets.calls().len(), 1, "{:?}", w.tickets.calls());
    assert_eq!(w.write_back.updates().len(), 1, "no write-back for an echo");

    // A real change after the echo is still seen, and described without the echo's field.
    let mut worse = applied.clone();
    worse.findings[0].severity_label = "CRITICAL".into();
    assert_eq!(counts(&w.forward(&worse, NOW + 10)), [0, 1, 0, 0, 0, 0, 0]);
    assert!(w.tickets.calls()[1]
        .text
        .starts_with("Security Hub finding changed: Severity: HIGH -> CRITICAL."));
}

#[test]
fn failed_create_then_retry_makes_one_ticket() {
    // retryable?, what the summary says
    for retryable in [true, false] {
        let w = World::new(simple_routes(), RecordingTickets::new());
        let e = event("imported_guardduty_high.json");
        w.tickets.fail_next(1, retryable);
        let s = w.forward(&e, NOW);
        assert_eq!(counts(&s), [0, 0, 0, 0, 0, 0, 1], "{s:?}");
        assert_eq!(s.has_retryable_failures(), retryable);
        assert_eq!(s.failures[0].finding_id, e.findings[0].id);
        assert!(s.failures[0].error.contains("injected"), "{:?}", s.failures);
        // The claim is released, not left to block the retry until its lease runs out.
        let claim = w.ledger.get(&e.findings[0].id).unwrap().unwrap();
        assert_eq!((claim.state, claim.lease_until), (TicketState::Creating, 0));

        let s = w.forward(&e, NOW + 30);
        assert_eq!(counts(&s), [1, 0, 0, 0, 0, 0, 0], "{s:?}");
        let s = w.forward(&e, NOW + 60);
        assert_eq!(counts(&s), [0, 0, 0, 0, 1, 0, 0], "{s:?}");
        assert_eq!(w.tickets.calls_of("create").len(), 1);
    }
}

fn claim_for(e: &SecurityHubEvent, lease_until: i64, severity: &str) -> LedgerEntry {
    let mut f = e.findings[0].clone();
    f.severity_label = severity.into();
    LedgerEntry {
        finding_id: f.id.clone(),
        state: TicketState::Creating,
        ticket: None,
        route: "all".into(),
        state_hash: muster_core::tickets::lifecycle::state_hash(&f),
        write_back_hash: None,
        lease_until,
        expires_at: None,
        updated_at: "2026-11-20T10:00:00.000Z".into(),
        version: 3,
    }
}

#[test]
fn claims_left_by_other_deliveries() {
    let e = event("imported_guardduty_high.json");
    // claim lease, claim's severity, expected counts, retryable failure?, creates
    type Row<'a> = (&'a str, i64, &'a str, [usize; 7], bool, usize);
    let table: &[Row] = &[
        (
            "crashed delivery: lease expired -> take over",
            NOW - 1,
            "HIGH",
            [1, 0, 0, 0, 0, 0, 0],
            false,
            1,
        ),
        (
            "live claim, same state -> leave it",
            NOW + 100,
            "HIGH",
            [0, 0, 0, 0, 1, 0, 0],
            false,
            0,
        ),
        (
            "live claim, other state -> retry later",
            NOW + 100,
            "LOW",
            [0, 0, 0, 0, 0, 0, 1],
            true,
            0,
        ),
    ];
    for (name, lease, sev, want, retry, creates) in table {
        let w = World::new(simple_routes(), RecordingTickets::new());
        w.ledger.insert(claim_for(&e, *lease, sev));
        let s = w.forward(&e, NOW);
        assert_eq!(counts(&s), *want, "{name}: {s:?}");
        assert_eq!(s.has_retryable_failures(), *retry, "{name}");
        assert_eq!(w.tickets.calls_of("create").len(), *creates, "{name}");
        if *creates == 1 {
            let entry = w.ledger.get(&e.findings[0].id).unwrap().unwrap();
            assert_eq!(
                (entry.state, entry.version),
                (TicketState::Open, 5),
                "{name}"
            );
        }
    }
}

#[test]
fn failed_close_is_retried_and_closes_once() {
    let w = World::new(simple_routes(), RecordingTickets::new());
    let multi = event("imported_multi_three_products.json");
    let s = w.forward(&multi, NOW);
    // S3.8 HIGH and Inspector CRITICAL ticketed; IAM.6 LOW dropped by rule.
    assert_eq!(counts(&s), [2, 0, 0, 0, 0, 1, 0], "{s:?}");
    let resolved = event("imported_resolved.json");
    w.tickets.fail_next(1, true);
    let s = w.forward(&resolved, NOW + 10);
    assert_eq!(counts(&s), [0, 0, 0, 0, 0, 0, 1], "{s:?}");
    assert!(s.has_retryable_failures());
    // The ledger went back to Open, so the retry closes the ticket.
    let entry = w.ledger.get(&resolved.findings[0].id).unwrap().unwrap();
    assert_eq!(entry.state, TicketState::Open);
    let s = w.forward(&resolved, NOW + 20);
    assert_eq!(counts(&s), [0, 0, 1, 0, 0, 0, 0], "{s:?}");
    // Archived after resolved: the ticket is closed already.
    let s = w.forward(&event("imported_archived.json"), NOW + 30);
    assert_eq!(counts(&s), [0, 0, 0, 0, 1, 0, 0], "{s:?}");
    assert_eq!(w.tickets.calls_of("close").len(), 1);
}

#[test]
fn closed_findings_never_ticketed_make_no_ticket() {
    let w = World::new(simple_routes(), RecordingTickets::new());
    for file in ["imported_resolved.json", "imported_archived.json"] {
        let s = w.forward(&event(file), NOW);
        assert_eq!(counts(&s), [0, 0, 0, 0, 1, 0, 0], "{file}: {s:?}");
    }
    assert!(w.tickets.calls().is_empty());
    assert!(w.ledger.entries().is_empty());
}

#[test]
fn unrouted_findings_are_counted_and_leave_no_trace() {
    let routes = Routes::from_json(
        r#"{"backends": {"w": {"type": "webhook", "base_url": "http://127.0.0.1:9"}},
            "routes": [{"name": "critical", "match": {"severity": ["CRITICAL"]}, "backend": "w"}]}"#,
        "t",
    )
    .unwrap();
    let w = World::new(routes, RecordingTickets::new());
    let s = w.forward(&event("imported_multi_three_products.json"), NOW);
    assert_eq!(counts(&s), [1, 0, 0, 0, 0, 2, 0], "{s:?}");
    assert_eq!(s.findings, 3);
    assert_eq!(w.ledger.entries().len(), 1);
    assert_eq!(w.tickets.calls()[0].route, "critical");
    assert_eq!(w.tickets.calls()[0].priority, None);
}

#[test]
fn write_back_failures_are_reported_not_retried() {
    let w = World::new(simple_routes(), RecordingTickets::new());
    w.write_back.fail_next(1);
    let s = w.forward(&event("imported_guardduty_high.json"), NOW);
    assert_eq!(counts(&s), [1, 0, 0, 0, 0, 0, 0], "{s:?}");
    assert_eq!(s.write_back_failed, 1);
    assert!(!s.has_retryable_failures());
    assert!(s.failures[0].error.starts_with("write-back:"));
}

#[test]
fn summary_serialises_with_the_cli_fields() {
    let w = World::new(simple_routes(), RecordingTickets::new());
    let s = w.forward(&event("imported_multi_three_products.json"), NOW);
    let v = serde_json::to_value(&s).unwrap();
    for k in [
        "findings",
        "created",
        "updated",
        "closed",
        "reopened",
        "unchanged",
        "unrouted",
        "failed",
        "failures",
    ] {
        assert!(v.get(k).is_some(), "{k} missing from {v}");
    }
    assert_eq!(v["created"], 2);
    assert_eq!(v["unrouted"], 1);
    let inspector = w
        .tickets
        .calls_of("create")
        .into_iter()
        .find(|c| c.finding_id.contains(":inspector2:"))
        .unwrap();
    assert_eq!(inspector.priority.as_deref(), Some("Highest"));
    assert!(inspector.text.starts_with("[CRITICAL] CVE-2024-3094"));
}
