//! Handler tests: the importer over in-memory fakes of its ports, for every shape it
//! accepts (direct invoke, detection event, S3 notifications in their three forms).

use findings_importer::{Config, Handler, HandlerError, Ports};
use muster_core::asff::Finding;
use muster_core::ports::{FailedFinding, FindingsSink, ObjectMeta, ObjectSource, OpenedObject};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

const BUCKET: &str = "muster-central-logs";
const ACCOUNT: &str = "111122223333";

fn repo_file(path: &str) -> String {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn read_json(path: &str) -> Value {
    serde_json::from_str(&repo_file(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

// ---- fakes of the ports ----

#[derive(Default)]
struct MemSource {
    objects: HashMap<String, Vec<u8>>,
    /// Keys whose open fails, and whether that failure is retryable.
    failing: HashMap<String, bool>,
    opened: Mutex<Vec<String>>,
}

impl MemSource {
    fn with(mut self, key: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.objects.insert(key.to_owned(), bytes.into());
        self
    }
    fn failing(mut self, key: &str, retryable: bool) -> Self {
        self.failing.insert(key.to_owned(), retryable);
        self
    }
}

impl ObjectSource for MemSource {
    fn open(
        &self,
        bucket: &str,
        key: &str,
        _version_id: Option<&str>,
    ) -> muster_core::Result<Option<OpenedObject>> {
        self.opened.lock().unwrap().push(key.to_owned());
        if let Some(&retryable) = self.failing.get(key) {
            return Err(muster_core::Error::Open {
                object: format!("s3://{bucket}/{key}"),
                message: "connection reset".into(),
                retryable,
            });
        }
        Ok(self.objects.get(key).map(|bytes| OpenedObject {
            meta: ObjectMeta {
                bucket: bucket.into(),
                key: key.into(),
                size: Some(bytes.len() as u64),
                ..ObjectMeta::default()
            },
            body: Box::new(Cursor::new(bytes.clone())),
        }))
    }
}

/// Security Hub in memory: findings by Id (a re-import replaces), and refusals.
#[derive(Default)]
struct FakeHub {
    findings: Mutex<BTreeMap<String, Finding>>,
    calls: Mutex<usize>,
    /// Finding ids (or correlation ids in ProductFields) refused, with the code and
    /// whether a retry may help.
    refuse: HashMap<String, (&'static str, bool)>,
    /// Every call fails as a whole with this error.
    down: Option<bool>,
}

impl FakeHub {
    fn refusing(mut self, correlation_id: &str, code: &'static str, retryable: bool) -> Self {
        self.refuse.insert(correlation_id.into(), (code, retryable));
        self
    }
    fn ids(&self) -> Vec<String> {
        self.findings.lock().unwrap().keys().cloned().collect()
    }
    fn all(&self) -> Vec<Finding> {
        self.findings.lock().unwrap().values().cloned().collect()
    }
}

impl FindingsSink for FakeHub {
    fn import(&self, findings: &[Finding]) -> muster_core::Result<Vec<FailedFinding>> {
        *self.calls.lock().unwrap() += 1;
        if let Some(retryable) = self.down {
            return Err(muster_core::Error::sink(
                "SecurityHub BatchImportFindings",
                "InvalidAccessException: Account is not subscribed to AWS Security Hub",
                retryable,
            ));
        }
        let mut failed = Vec::new();
        for f in findings {
            let key = f
                .product_fields
                .get("muster/correlation_id")
                .or(f.product_fields.get("muster/rule_id"))
                .cloned()
                .unwrap_or_default();
            match self.refuse.get(&key) {
                Some((code, retryable)) => failed.push(FailedFinding {
                    id: f.id.clone(),
                    error_code: code.to_string(),
                    error_message: format!("{code} for {key}"),
                    retryable: *retryable,
                }),
                None => {
                    self.findings
                        .lock()
                        .unwrap()
                        .insert(f.id.clone(), f.clone());
                }
            }
        }
        Ok(failed)
    }
}

fn config(extra: &[(&str, &str)]) -> Config {
    let mut vars: HashMap<&str, &str> = [("AWS_ACCOUNT_ID", ACCOUNT), ("AWS_REGION", "us-east-1")]
        .into_iter()
        .collect();
    vars.extend(extra.iter().copied());
    Config::from_lookup(|n| vars.get(n).map(|v| v.to_string())).unwrap()
}

fn handler(source: MemSource, hub: Arc<FakeHub>, extra: &[(&str, &str)]) -> Handler {
    Handler::new(
        config(extra),
        Ports {
            source: Arc::new(source),
            sink: hub,
        },
    )
}

fn custom(correlation_id: &str) -> Value {
    json!({
        "correlation_id": correlation_id,
        "severity": "LOW",
        "title": format!("finding {correlation_id}"),
        "description": "d",
        "resource_id": "i-0123456789abcdef0",
        "resource_type": "AwsEc2Instance",
        "account": ACCOUNT,
        "types": ["Software and Configuration Checks/Vulnerabilities/CVE"],
        "created_at": "2024-05-14T00:00:00Z",
        "generator": "scanner"
    })
}

fn detection_event() -> Value {
    json!({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "muster.detection",
        "source": "muster",
        "account": ACCOUNT,
        "time": "2024-05-14T12:00:05Z",
        "region": "us-east-1",
        "resources": ["arn:aws:iam::111122223333:root"],
        "detail": {
            "rule_id": "root-account-use", "title": "Root account used", "description": "The root user signed in.",
            "severity": "HIGH", "types": ["TTPs/Privilege Escalation"],
            "remediation": "https://docs.aws.amazon.com/securityhub/latest/userguide/cloudwatch-controls.html#cloudwatch-1",
            "event_uids": ["uid-1", "uid-2"], "account": ACCOUNT, "region": "us-east-1",
            "time": "2024-05-14T12:00:05.000Z", "first_seen": "2024-05-14T12:00:00.000Z",
            "actor": "arn:aws:iam::111122223333:root", "src_ip": "203.0.113.5", "operation": "ConsoleLogin",
            "resource": {"id": "arn:aws:iam::111122223333:root", "type": "Other"}, "class_uid": 3002
        }
    })
}

/// An S3 notification of `key` (size as uploaded) in the shape of `trigger`.
fn notification(trigger: &str, key: &str, size: usize) -> Value {
    let mut t = read_json(trigger);
    match trigger {
        "events/triggers/s3-put.json" => {
            t["Records"][0]["s3"]["object"]["key"] = json!(key);
            t["Records"][0]["s3"]["object"]["size"] = json!(size);
        }
        "events/triggers/eventbridge-object-created.json" => {
            t["detail"]["object"]["key"] = json!(key);
            t["detail"]["object"]["size"] = json!(size);
        }
        other => panic!("no notification from {other}"),
    }
    t
}

fn sqs(bodies: &[(&str, Value)]) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .map(|(id, body)| {
            json!({
                "messageId": id,
                "receiptHandle": "h",
                "body": body.to_string(),
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:111122223333:findings",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

#[tokio::test]
async fn direct_invoke_answers_per_finding() {
    let hub = Arc::new(FakeHub::default());
    let h = handler(MemSource::default(), hub.clone(), &[]);
    let response = h
        .handle(read_json("events/findings/custom-findings.json"))
        .await
        .unwrap();
    assert_eq!(
        (
            response["imported"].clone(),
            response["invalid"].clone(),
            response["failed"].clone()
        ),
        (json!(2), json!(0), json!(0)),
        "{response:#}"
    );
    let results = response["results"].as_array().unwrap();
    assert!(results
        .iter()
        .all(|r| r["status"] == "imported" && r["id"].is_string()));
    let stored = hub.all();
    assert_eq!(stored.len(), 2);
    for f in &stored {
        assert_eq!(f.generator_id, "acme-scanner");
        assert_eq!(
            f.product_arn,
            "arn:aws:securityhub:us-east-1:111122223333:product/111122223333/default"
        );
        assert!(f.product_fields.contains_key("muster/correlation_id"));
    }
    // The same payload again updates the same findings.
    let before = hub.ids();
    h.handle(read_json("events/findings/custom-findings.json"))
        .await
        .unwrap();
    assert_eq!(hub.ids(), before);
}

#[tokio::test]
async fn payload_outcomes() {
    // (payload, hub, Ok((imported, invalid, failed)) or Err(error kind))
    type Want = Result<(u64, u64, u64), &'static str>;
    let invalid_severity = {
        let mut c = custom("c-bad");
        c["severity"] = json!("SEVERE");
        c
    };
    let cases: Vec<(&str, Value, FakeHub, Want)> = vec![
        (
            "an invalid finding is reported, the rest import",
            json!({"findings": [custom("c-1"), invalid_severity, {"correlation_id": "c-3"}, custom("c-4")]}),
            FakeHub::default(),
            Ok((2, 2, 0)),
        ),
        (
            "a finding refused for good is reported, the invocation succeeds",
            json!({"findings": [custom("c-1"), custom("c-2")]}),
            FakeHub::default().refusing("c-2", "InvalidInput", false),
            Ok((1, 0, 1)),
        ),
        (
            "a finding that may import on retry fails the invocation",
            json!({"findings": [custom("c-1"), custom("c-2")]}),
            FakeHub::default().refusing("c-2", "InternalFailure", true),
            Err("retryable"),
        ),
        (
            "Security Hub refusing the whole call fails the invocation",
            json!({"findings": [custom("c-1")]}),
            FakeHub {
                down: Some(false),
                ..FakeHub::default()
            },
            Err("import"),
        ),
        (
            "a detection event becomes one finding",
            detection_event(),
            FakeHub::default(),
            Ok((1, 0, 0)),
        ),
        (
            "an empty list is nothing to do",
            json!({"findings": []}),
            FakeHub::default(),
            Ok((0, 0, 0)),
        ),
        (
            "findings must be a list",
            json!({"findings": {"correlation_id": "x"}}),
            FakeHub::default(),
            Err("unrecognised"),
        ),
        (
            "a detection event without its detail is an invalid item",
            json!({"detail-type": "muster.detection", "source": "muster", "detail": {"rule_id": "r"}}),
            FakeHub::default(),
            Ok((0, 1, 0)),
        ),
    ];
    for (name, payload, hub, want) in cases {
        let hub = Arc::new(hub);
        let h = handler(MemSource::default(), hub.clone(), &[]);
        let got = h.handle(payload).await;
        match (got, want) {
            (Ok(r), Ok((imported, invalid, failed))) => {
                assert_eq!(
                    (
                        r["imported"].as_u64(),
                        r["invalid"].as_u64(),
                        r["failed"].as_u64()
                    ),
                    (Some(imported), Some(invalid), Some(failed)),
                    "{name}: {r:#}"
                );
                assert_eq!(hub.ids().len() as u64, imported, "{name}");
                let results = r["results"].as_array().unwrap();
                assert_eq!(results.len() as u64, imported + invalid + failed, "{name}");
                for res in results.iter().filter(|r| r["status"] != "imported") {
                    assert!(res["error"].is_string(), "{name}: {res}");
                }
            }
            (Err(e), Err(kind)) => {
                let got_kind = match e {
                    HandlerError::Retryable { .. } => "retryable",
                    HandlerError::Import { .. } => "import",
                    HandlerError::Unrecognised(_) => "unrecognised",
                    HandlerError::UnidentifiedMessage { .. } => "unidentified",
                };
                assert_eq!(got_kind, kind, "{name}: {e}");
            }
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
}

#[tokio::test]
async fn invalid_findings_name_their_field() {
    let hub = Arc::new(FakeHub::default());
    let h = handler(MemSource::default(), hub, &[]);
    let mut no_title = custom("c-2");
    no_title.as_object_mut().unwrap().remove("title");
    let mut bad_account = custom("c-3");
    bad_account["account"] = json!("12345");
    let r = h
        .handle(json!({"findings": [custom("c-1"), no_title, bad_account]}))
        .await
        .unwrap();
    let results = r["results"].as_array().unwrap();
    assert_eq!(results[1]["status"], "invalid");
    assert_eq!(results[1]["field"], "title");
    assert_eq!(results[1]["reference"], "c-2");
    assert_eq!(results[2]["status"], "invalid");
    assert_eq!(results[2]["field"], "AwsAccountId");
}

#[tokio::test]
async fn detections_keep_rule_and_event_uids() {
    let hub = Arc::new(FakeHub::default());
    let h = handler(MemSource::default(), hub.clone(), &[]);
    h.handle(detection_event()).await.unwrap();
    let f = &hub.all()[0];
    assert_eq!(f.generator_id, "root-account-use");
    assert_eq!(f.product_fields["muster/event_uids"], "uid-1,uid-2");
    assert_eq!(f.resources[0].id, "arn:aws:iam::111122223333:root");
}

#[tokio::test]
async fn s3_objects_under_the_prefix_are_imported() {
    let lines = format!("{}\n{}\n", custom("s3-1"), custom("s3-2"));
    let array = json!([custom("s3-3"), detection_event()]).to_string();
    for trigger in [
        "events/triggers/s3-put.json",
        "events/triggers/eventbridge-object-created.json",
    ] {
        let cases: Vec<(&str, &str, Result<Value, &str>)> = vec![
            (
                "findings/scanner/2024-05-14.jsonl",
                &lines,
                Ok(json!({"imported": 2, "status": "done"})),
            ),
            (
                "findings/array.json",
                &array,
                Ok(json!({"imported": 2, "status": "done"})),
            ),
            (
                "findings/mixed.jsonl",
                "not json\n",
                Ok(json!({"invalid": 1, "status": "done"})),
            ),
            (
                "elsewhere/x.json",
                &lines,
                Ok(json!({"imported": 0, "status": "ignored"})),
            ),
            ("findings/gone.json", "", Ok(json!({"status": "missing"}))),
            (
                "findings/binary.json",
                "\u{0}\u{0}\u{0}",
                Ok(json!({"invalid": 1, "status": "done"})),
            ),
        ];
        for (key, body, want) in cases {
            let hub = Arc::new(FakeHub::default());
            let source = if key.ends_with("gone.json") {
                MemSource::default()
            } else {
                MemSource::default().with(key, body.as_bytes())
            };
            let h = handler(source, hub.clone(), &[]);
            let got = h
                .handle(notification(trigger, key, body.len().max(1)))
                .await;
            let want = want.unwrap();
            let r = got.unwrap_or_else(|e| panic!("{trigger} {key}: {e}"));
            let object = &r["objects"][0];
            for (field, value) in want.as_object().unwrap() {
                assert_eq!(&object[field], value, "{trigger} {key}: {field}: {r:#}");
            }
            assert_eq!(object["object"], format!("s3://{BUCKET}/{key}"));
            if let Some(n) = want.get("imported") {
                assert_eq!(hub.ids().len() as u64, n.as_u64().unwrap(), "{key}");
            }
        }
    }
}

#[tokio::test]
async fn oversized_objects_are_refused_without_reading_them_all() {
    let key = "findings/huge.jsonl";
    let body = format!("{}\n", custom("big")).repeat(200);
    let limit = "1000";
    // Announced too large: refused before opening.
    let source = MemSource::default().with(key, body.as_bytes());
    let hub = Arc::new(FakeHub::default());
    let h = handler(source, hub.clone(), &[("MAX_OBJECT_BYTES", limit)]);
    let r = h
        .handle(notification("events/triggers/s3-put.json", key, body.len()))
        .await
        .unwrap();
    let o = &r["objects"][0];
    assert_eq!(o["status"], "failed", "{r:#}");
    assert!(
        o["error"].as_str().unwrap().contains("MAX_OBJECT_BYTES"),
        "{o}"
    );
    assert!(o.get("retryable").is_none(), "a retry cannot shrink it");
    // Announced small but larger when read: the read stops past the limit.
    let r = h
        .handle(notification("events/triggers/s3-put.json", key, 10))
        .await
        .unwrap();
    assert_eq!(r["objects"][0]["status"], "failed", "{r:#}");
    assert!(hub.ids().is_empty());
}

#[tokio::test]
async fn sqs_reports_exactly_the_failed_messages() {
    let good = "findings/good.jsonl";
    let flaky = "findings/flaky.jsonl";
    let body = format!("{}\n", custom("q-1"));
    let source = MemSource::default()
        .with(good, body.as_bytes())
        .failing(flaky, true);
    let hub = Arc::new(FakeHub::default());
    let h = handler(source, hub.clone(), &[]);
    let event = sqs(&[
        (
            "m-good",
            notification("events/triggers/s3-put.json", good, body.len()),
        ),
        (
            "m-flaky",
            notification("events/triggers/s3-put.json", flaky, body.len()),
        ),
        (
            "m-ignored",
            notification("events/triggers/s3-put.json", "other/x.json", 5),
        ),
    ]);
    let r = h.handle(event).await.unwrap();
    assert_eq!(
        r,
        json!({"batchItemFailures": [{"itemIdentifier": "m-flaky"}]})
    );
    assert_eq!(hub.ids().len(), 1);
}

#[tokio::test]
async fn s3_failures_that_may_pass_fail_the_invocation() {
    let key = "findings/x.jsonl";
    let body = format!("{}\n{}\n", custom("r-1"), custom("r-2"));
    type Case = (&'static str, MemSource, FakeHub, Result<(), &'static str>);
    let cases: Vec<Case> = vec![
        (
            "the object cannot be read, for now",
            MemSource::default().failing(key, true),
            FakeHub::default(),
            Err("retryable"),
        ),
        (
            "the object cannot be read, ever",
            MemSource::default().failing(key, false),
            FakeHub::default(),
            Ok(()),
        ),
        (
            "a finding may import on retry",
            MemSource::default().with(key, body.as_bytes()),
            FakeHub::default().refusing("r-2", "ThrottlingException", true),
            Err("retryable"),
        ),
        (
            "Security Hub is unreachable",
            MemSource::default().with(key, body.as_bytes()),
            FakeHub {
                down: Some(true),
                ..FakeHub::default()
            },
            Err("retryable"),
        ),
    ];
    for (name, source, hub, want) in cases {
        let h = handler(source, Arc::new(hub), &[]);
        let got = h
            .handle(notification(
                "events/triggers/eventbridge-object-created.json",
                key,
                body.len(),
            ))
            .await;
        match (got, want) {
            (Ok(r), Ok(())) => assert_eq!(r["objects"][0]["status"], "failed", "{name}: {r:#}"),
            (Err(HandlerError::Retryable { failed, first }), Err("retryable")) => {
                assert_eq!(failed, 1, "{name}");
                assert!(first.contains(key), "{name}: {first}");
            }
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
}

#[tokio::test]
async fn unknown_events_are_refused() {
    let h = handler(MemSource::default(), Arc::default(), &[]);
    for event in [json!({"hello": "world"}), json!([1, 2]), json!("findings")] {
        match h.handle(event.clone()).await {
            Err(HandlerError::Unrecognised(_)) => {}
            other => panic!("{event}: {other:?}"),
        }
    }
    // Another EventBridge event is an invalid item: reported, not retried forever.
    let r = h
        .handle(json!({"detail-type": "Something Else", "source": "x", "detail": {}}))
        .await
        .unwrap();
    assert_eq!(r["invalid"], 1, "{r:#}");
    assert_eq!(r["results"][0]["field"], "detail-type");
}
