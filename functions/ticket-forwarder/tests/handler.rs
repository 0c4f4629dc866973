//! The forwarder's handler over the core's in-memory ledger, ticket system and
//! write-back, fed the Security Hub event samples in events/ and the third-party ones
//! under MUSTER_CORPUS.

use muster_core::ports::{ObjectMeta, ObjectSource, OpenedObject};
use muster_core::tickets::memory::{MemoryLedger, RecordingTickets, RecordingWriteBack};
use muster_core::tickets::{Routes, TicketState};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use ticket_forwarder::{Config, Handler, HandlerError, Ports, RoutesUri};

const ROUTES: &str = r#"{
  "backends": {
    "jira": {"type": "jira", "base_url": "http://127.0.0.1:9", "secret": "jira", "project": "SEC",
             "priority": {"CRITICAL": "Highest", "HIGH": "High"}},
    "chat": {"type": "slack", "base_url": "http://127.0.0.1:9", "secret": "slack", "channel": "C0123456789"}
  },
  "routes": [
    {"name": "console", "match": {"event": ["custom_action"]}, "backend": "jira"},
    {"name": "quiet", "match": {"severity": ["INFORMATIONAL"]}, "drop": true},
    {"name": "high", "match": {"severity": ["CRITICAL", "HIGH"]}, "backend": "jira"},
    {"name": "rest", "default": true, "backend": "chat"}
  ]
}"#;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sample(name: &str) -> Value {
    let path = repo().join("events/securityhub-events").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn config(write_back: bool) -> Config {
    let vars: HashMap<&str, &str> = HashMap::from([
        ("LEDGER_TABLE", "ledger"),
        ("ROUTES_URI", "routes.json"),
        ("WRITE_BACK", if write_back { "true" } else { "false" }),
    ]);
    Config::from_lookup(|n| vars.get(n).map(|v| v.to_string())).unwrap()
}

struct Fakes {
    ledger: Arc<MemoryLedger>,
    tickets: Arc<RecordingTickets>,
    write_back: Arc<RecordingWriteBack>,
    handler: Arc<Handler>,
}

fn fakes_with(tickets: RecordingTickets, write_back: bool) -> Fakes {
    let ledger = Arc::new(MemoryLedger::new());
    let tickets = Arc::new(tickets);
    let wb = Arc::new(RecordingWriteBack::new());
    let ports = Ports {
        ledger: ledger.clone(),
        tickets: tickets.clone(),
        write_back: Some(wb.clone()),
    };
    let routes = Routes::from_json(ROUTES, "test routes").unwrap();
    Fakes {
        ledger,
        tickets,
        write_back: wb,
        handler: Arc::new(Handler::new(config(write_back), routes, ports)),
    }
}

fn fakes() -> Fakes {
    fakes_with(RecordingTickets::new(), true)
}

fn deadline() -> Option<SystemTime> {
    Some(SystemTime::now() + Duration::from_secs(60))
}

fn count(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {v}"))
}

#[tokio::test]
async fn one_ticket_per_finding_with_the_link_written_back() {
    let f = fakes();
    let event = sample("imported_guardduty_high.json");
    let id = event["detail"]["findings"][0]["Id"]
        .as_str()
        .unwrap()
        .to_owned();

    let first = f.handler.handle(event.clone(), deadline()).await.unwrap();
    assert_eq!(
        (count(&first, "findings"), count(&first, "created")),
        (1, 1),
        "{first}"
    );
    let creates = f.tickets.calls_of("create");
    assert_eq!(creates.len(), 1);
    assert_eq!(
        (creates[0].route.as_str(), creates[0].priority.as_deref()),
        ("high", Some("High"))
    );
    let updates = f.write_back.updates();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].finding_id, id);
    assert!(updates[0].set_notified, "a NEW finding becomes NOTIFIED");
    assert!(
        updates[0].note.contains(&creates[0].key),
        "{}",
        updates[0].note
    );
    assert_eq!(f.ledger.entries()[&id].state, TicketState::Open);

    // The same event again: nothing new anywhere.
    let again = f.handler.handle(event, deadline()).await.unwrap();
    assert_eq!(
        (count(&again, "created"), count(&again, "unchanged")),
        (0, 1),
        "{again}"
    );
    assert_eq!(f.tickets.calls().len(), 1);
    assert_eq!(f.write_back.updates().len(), 1);

    // Our own write-back comes back as an Imported event: no comment, no second write-back.
    let echo = f
        .handler
        .handle(sample("imported_writeback_echo.json"), deadline())
        .await
        .unwrap();
    assert_eq!(count(&echo, "unchanged"), 1, "{echo}");
    assert_eq!(f.tickets.calls().len(), 1, "{:?}", f.tickets.calls());
    assert_eq!(f.write_back.updates().len(), 1);
}

#[tokio::test]
async fn the_same_event_three_times_twice_at_once_makes_one_ticket() {
    // A slow backend widens the window in which the concurrent deliveries overlap.
    let f = fakes_with(
        RecordingTickets::with_delay(Duration::from_millis(200)),
        true,
    );
    let event = sample("imported_multi_three_products.json");
    let n = event["detail"]["findings"].as_array().unwrap().len();
    let (a, b) = tokio::join!(
        f.handler.handle(event.clone(), deadline()),
        f.handler.handle(event.clone(), deadline())
    );
    let third = f.handler.handle(event, deadline()).await;
    let created: u64 = [a, b, third]
        .into_iter()
        .map(|r| match r {
            Ok(v) => count(&v, "created"),
            // The loser of a race may find the claim still being created: it asks for a
            // retry rather than guess, and the retry finds the ticket.
            Err(HandlerError::Retryable { .. }) => 0,
            Err(e) => panic!("{e}"),
        })
        .sum();
    let creates = f.tickets.calls_of("create");
    let mut ids: Vec<&str> = creates.iter().map(|c| c.finding_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        creates.len(),
        ids.len(),
        "a finding got two tickets: {creates:?}"
    );
    assert_eq!(created as usize, creates.len());
    assert_eq!(
        creates.len(),
        n,
        "every finding has its ticket after the third delivery"
    );
}

#[tokio::test]
async fn retryable_failures_fail_the_invocation_and_the_retry_creates_once() {
    let f = fakes();
    let event = sample("imported_guardduty_high.json");
    f.tickets.fail_next(1, true);
    match f.handler.handle(event.clone(), deadline()).await {
        Err(e @ HandlerError::Retryable { failed: 1, .. }) => {
            assert!(e.to_string().contains("503"), "{e}");
            let d: lambda_runtime::Diagnostic = e.into();
            assert_eq!(d.error_type, "RetryableForwardFailure");
        }
        other => panic!("{other:?}"),
    }
    assert!(f.write_back.updates().is_empty());
    // EventBridge delivers it again: the released claim is taken, one ticket results.
    let retry = f.handler.handle(event.clone(), deadline()).await.unwrap();
    assert_eq!(count(&retry, "created"), 1, "{retry}");
    let again = f.handler.handle(event, deadline()).await.unwrap();
    assert_eq!(count(&again, "created"), 0, "{again}");
    assert_eq!(f.tickets.calls_of("create").len(), 1);
}

#[tokio::test]
async fn failures_a_retry_cannot_fix_are_reported_not_retried() {
    let f = fakes();
    f.tickets.fail_next(1, false);
    let got = f
        .handler
        .handle(sample("imported_guardduty_high.json"), deadline())
        .await
        .unwrap();
    assert_eq!(count(&got, "failed"), 1, "{got}");
    assert_eq!(got["failures"][0]["retryable"], json!(false), "{got}");
    assert!(f.tickets.calls().is_empty());
}

#[tokio::test]
async fn write_back_can_be_turned_off() {
    let f = fakes_with(RecordingTickets::new(), false);
    let got = f
        .handler
        .handle(sample("imported_guardduty_high.json"), deadline())
        .await
        .unwrap();
    assert_eq!(count(&got, "created"), 1);
    assert!(f.write_back.updates().is_empty());
}

#[tokio::test]
async fn events_that_are_not_security_hub_findings_fail_so_the_dlq_keeps_them() {
    let f = fakes();
    let cases = [
        json!({"hello": "world"}),
        json!({"detail-type": "GuardDuty Finding", "source": "aws.guardduty", "detail": {}}),
        json!({"detail-type": "Security Hub Findings - Imported", "detail": {"findings": "none"}}),
        json!([1, 2, 3]),
    ];
    for event in cases {
        match f.handler.handle(event.clone(), deadline()).await {
            Err(e @ HandlerError::Unrecognised(_)) => {
                let d: lambda_runtime::Diagnostic = e.into();
                assert_eq!(d.error_type, "UnrecognisedEvent");
            }
            other => panic!("{event}: {other:?}"),
        }
    }
    assert!(f.tickets.calls().is_empty());
}

/// Every Security Hub sample, ours and third-party: each goes through without an error
/// a retry could fix, and every finding is counted once.
#[tokio::test]
async fn every_security_hub_sample_is_forwarded() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("events/securityhub-events"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    match std::env::var_os("MUSTER_CORPUS") {
        Some(corpus) => files.extend(
            std::fs::read_dir(Path::new(&corpus).join("securityhub"))
                .unwrap()
                .flatten()
                .map(|e| e.path()),
        ),
        None => eprintln!("MUSTER_CORPUS is not set: third-party samples skipped"),
    }
    files.retain(|p| p.extension().is_some_and(|e| e == "json" || e == "jsonl"));
    files.sort();
    assert!(files.len() >= 7, "{files:?}");
    for path in files {
        let f = fakes();
        let text = std::fs::read_to_string(&path).unwrap();
        let events: Vec<Value> = match serde_json::from_str(&text) {
            Ok(v) => vec![v],
            Err(_) => text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
        };
        for event in events {
            let got = f
                .handler
                .handle(event, deadline())
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let outcomes: u64 = [
                "created",
                "updated",
                "closed",
                "reopened",
                "unchanged",
                "unrouted",
                "failed",
            ]
            .iter()
            .map(|k| count(&got, k))
            .sum();
            assert_eq!(
                outcomes,
                count(&got, "findings"),
                "{}: {got}",
                path.display()
            );
            assert_eq!(count(&got, "failed"), 0, "{}: {got}", path.display());
        }
    }
}

/// An `ObjectSource` over a map, for routes in "S3".
struct Objects(HashMap<(String, String), Vec<u8>>);

impl ObjectSource for Objects {
    fn open(
        &self,
        bucket: &str,
        key: &str,
        _v: Option<&str>,
    ) -> muster_core::Result<Option<OpenedObject>> {
        Ok(self
            .0
            .get(&(bucket.to_owned(), key.to_owned()))
            .map(|b| OpenedObject {
                meta: ObjectMeta {
                    bucket: bucket.into(),
                    key: key.into(),
                    ..Default::default()
                },
                body: Box::new(std::io::Cursor::new(b.clone())),
            }))
    }
}

#[test]
fn routes_load_from_a_file_or_s3_and_errors_name_the_variable_and_the_field() {
    let example = repo().join("events/routes/routes.example.json");
    let s3 = Objects(HashMap::from([
        (("cfg".into(), "routes.json".into()), std::fs::read(&example).unwrap()),
        (("cfg".into(), "typo.json".into()), br#"{"backends": {"j": {"type": "jira", "base_url": "ftp://x"}}, "routes": [{"name": "a", "default": true, "backend": "j"}]}"#.to_vec()),
        (("cfg".into(), "big.json".into()), vec![b' '; 2 * 1024 * 1024]),
    ]));
    let load = |uri: &str| {
        let mut c = config(true);
        c.routes_uri = RoutesUri::parse(uri).unwrap();
        c.load_routes(&s3)
    };
    let example_uri = example.to_string_lossy().into_owned();
    let cases: [(&str, Result<(), &str>); 6] = [
        (&example_uri, Ok(())),
        ("s3://cfg/routes.json", Ok(())),
        (
            "s3://cfg/missing.json",
            Err("s3://cfg/missing.json: no such object"),
        ),
        ("s3://cfg/typo.json", Err("base_url")),
        ("s3://cfg/big.json", Err("larger than")),
        ("/nonexistent/routes.json", Err("/nonexistent/routes.json")),
    ];
    for (uri, want) in cases {
        match (load(uri), want) {
            (Ok(routes), Ok(())) => assert!(!routes.rule_names().is_empty()),
            (Err(e), Err(text)) => {
                assert_eq!(e.variable, "ROUTES_URI", "{uri}");
                assert!(e.to_string().contains(text), "{uri}: {e}");
            }
            (got, want) => panic!("{uri}: got {:?}, want {want:?}", got.map(|_| ())),
        }
    }
}
