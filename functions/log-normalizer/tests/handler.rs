//! Handler tests: the Lambda handler over in-memory fakes of the ports, for every
//! trigger shape S3 reaches us by.

use flate2::write::GzEncoder;
use log_normalizer::{Config, Handler, HandlerError, Ports, Status};
use muster_core::ports::{
    LakeWriter, MetricsSink, ObjectMeta, ObjectSource, OpenedObject, OutputFile, Quarantine,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::{Cursor, Write};
use std::sync::{Arc, Mutex};

const BUCKET: &str = "central-logs";
const LAKE: &str = "lake";

const DIGEST_KEY: &str = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/05/14/111122223333_CloudTrail-Digest_us-east-1_org-trail_us-east-1_20240514T120000Z.json.gz";
const UNKNOWN_KEY: &str = "misc/notes.txt";
const CORRUPT_KEY: &str = "misc/corrupt.log.gz";
const EMPTY_KEY: &str = "misc/empty.log";
const FLAKY_KEY: &str = "misc/flaky.log.gz";
const GONE_KEY: &str = "misc/deleted before read.log.gz";
const CT_KEY: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/14/111122223333_CloudTrail_us-east-1_20240514T1200Z_abcdEFGH1234.json.gz";
const CT_TRUNCATED_KEY: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/14/111122223333_CloudTrail_us-east-1_20240514T1205Z_truncated.json.gz";

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn digest() -> Vec<u8> {
    gz(json!({
        "awsAccountId": "111122223333",
        "digestStartTime": "2024-05-14T11:00:00Z",
        "digestEndTime": "2024-05-14T12:00:00Z",
        "digestS3Bucket": BUCKET,
        "digestS3Object": DIGEST_KEY,
        "digestPublicKeyFingerprint": "809a5ae4b1d6e3a6d8ff31c9a8e2b0e4",
        "digestSignatureAlgorithm": "SHA256withRSA",
        "newestEventTime": "2024-05-14T11:59:59Z",
        "oldestEventTime": "2024-05-14T11:00:01Z",
        "previousDigestS3Bucket": BUCKET,
        "previousDigestS3Object": null,
        "previousDigestHashValue": null,
        "previousDigestHashAlgorithm": null,
        "previousDigestSignature": null,
        "logFiles": []
    })
    .to_string()
    .as_bytes())
}

/// A gzip member cut in half: what a crashed upload or a bad copy leaves.
fn truncated_gzip(text: &[u8]) -> Vec<u8> {
    let full = gz(text);
    full[..full.len() / 2].to_vec()
}

fn cloudtrail_record(i: usize) -> Value {
    json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::111122223333:user/alice", "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLE", "userName": "alice"},
        "eventTime": "2024-05-14T12:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "ListBuckets",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": null,
        "responseElements": null,
        "requestID": format!("REQ{i:08}"),
        "eventID": format!("00000000-0000-4000-8000-{i:012}"),
        "readOnly": true,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": "111122223333",
        "eventCategory": "Management"
    })
}

fn cloudtrail_file(n: usize) -> Vec<u8> {
    let records: Vec<Value> = (0..n).map(cloudtrail_record).collect();
    json!({ "Records": records }).to_string().into_bytes()
}

// ---- fakes of the ports ----

#[derive(Default)]
struct MemSource {
    objects: HashMap<String, Vec<u8>>,
    /// Keys whose open fails, and whether that failure is retryable.
    failing: HashMap<String, bool>,
}

impl MemSource {
    fn with(mut self, key: &str, bytes: Vec<u8>) -> Self {
        self.objects.insert(key.to_owned(), bytes);
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
        version_id: Option<&str>,
    ) -> muster_core::Result<Option<OpenedObject>> {
        if let Some(&retryable) = self.failing.get(key) {
            return Err(muster_core::Error::Open {
                object: format!("s3://{bucket}/{key}"),
                message: "connection reset".into(),
                retryable,
            });
        }
        let Some(bytes) = self.objects.get(key) else {
            return Ok(None);
        };
        Ok(Some(OpenedObject {
            meta: ObjectMeta {
                bucket: bucket.into(),
                key: key.into(),
                etag: Some(format!("etag-{}", bytes.len())),
                version_id: version_id.map(str::to_owned),
                size: Some(bytes.len() as u64),
                content_encoding: None,
                content_type: None,
                ..ObjectMeta::default()
            },
            body: Box::new(Cursor::new(bytes.clone())),
        }))
    }
}

type Files = Arc<Mutex<BTreeMap<String, Vec<u8>>>>;

#[derive(Default, Clone)]
struct MemLake {
    files: Files,
}

struct MemFile {
    key: String,
    buf: Vec<u8>,
    files: Files,
}

impl Write for MemFile {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl OutputFile for MemFile {
    fn commit(self: Box<Self>) -> muster_core::Result<()> {
        self.files.lock().unwrap().insert(self.key, self.buf);
        Ok(())
    }
}

impl MemLake {
    fn file(&self, key: &str) -> Box<dyn OutputFile + '_> {
        Box::new(MemFile {
            key: key.into(),
            buf: Vec::new(),
            files: self.files.clone(),
        })
    }
    fn keys(&self) -> Vec<String> {
        self.files.lock().unwrap().keys().cloned().collect()
    }
    fn lines(&self, key: &str) -> Vec<Value> {
        let files = self.files.lock().unwrap();
        let raw = &files[key];
        let mut text = String::new();
        if raw.starts_with(&[0x1f, 0x8b]) {
            use std::io::Read;
            flate2::read::MultiGzDecoder::new(&raw[..])
                .read_to_string(&mut text)
                .unwrap();
        } else {
            text = String::from_utf8(raw.clone()).unwrap();
        }
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl LakeWriter for MemLake {
    fn create(&self, key: &str) -> muster_core::Result<Box<dyn OutputFile + '_>> {
        Ok(self.file(key))
    }
}

impl Quarantine for MemLake {
    fn create(&self, key: &str) -> muster_core::Result<Box<dyn OutputFile + '_>> {
        Ok(self.file(key))
    }
}

#[derive(Default)]
struct MemMetrics(Mutex<Vec<Value>>);

impl MetricsSink for MemMetrics {
    fn publish(&self, emf_document: &str) -> muster_core::Result<()> {
        self.0
            .lock()
            .unwrap()
            .push(serde_json::from_str(emf_document).unwrap());
        Ok(())
    }
}

struct Fixture {
    handler: Handler,
    lake: MemLake,
    metrics: Arc<MemMetrics>,
}

fn fixture(source: MemSource) -> Fixture {
    let config = Config::from_lookup(|name| (name == "OUTPUT_BUCKET").then(|| LAKE.to_owned()))
        .expect("config");
    let lake = MemLake::default();
    let metrics = Arc::new(MemMetrics::default());
    let ports = Ports {
        source: Arc::new(source),
        lake: Arc::new(lake.clone()),
        quarantine: Arc::new(lake.clone()),
        metrics: metrics.clone(),
    };
    Fixture {
        handler: Handler::new(config, ports),
        lake,
        metrics,
    }
}

// ---- trigger events, after AWS's documented shapes ----

fn url_encode(key: &str) -> String {
    // Form encoding as S3 writes it: space as '+', reserved bytes as %XX, '/' kept.
    let mut out = String::new();
    for b in key.bytes() {
        match b {
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b'*' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn s3_record(key: &str, size: u64) -> Value {
    json!({
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2024-05-14T12:05:00.000Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AROAEXAMPLE:cloudtrail"},
        "requestParameters": {"sourceIPAddress": "203.0.113.10"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "log-normalizer",
            "bucket": {"name": BUCKET, "ownerIdentity": {"principalId": "A3NL1KOZZKExample"}, "arn": format!("arn:aws:s3:::{BUCKET}")},
            "object": {"key": url_encode(key), "size": size, "eTag": "0123456789abcdef0123456789abcdef", "sequencer": "0A1B2C3D4E5F678901"}
        }
    })
}

fn s3_event(keys: &[&str]) -> Value {
    json!({ "Records": keys.iter().map(|k| s3_record(k, 100)).collect::<Vec<_>>() })
}

fn sqs_event(messages: &[(&str, String)]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|(id, body)| {
            json!({
                "messageId": id,
                "receiptHandle": "MessageReceiptHandle",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1715688300000", "SenderId": "AIDAIENQZJOLO23YVJ4VO", "ApproximateFirstReceiveTimestamp": "1715688300001"},
                "messageAttributes": {},
                "md5OfBody": "7b270e59b47ff90a553787216d55d91d",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:111122223333:log-notifications",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

fn eventbridge_event(detail_type: &str, key: &str) -> Value {
    json!({
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": "111122223333",
        "time": "2024-05-14T12:05:00Z",
        "region": "us-east-1",
        "resources": [format!("arn:aws:s3:::{BUCKET}")],
        "detail": {
            "version": "0",
            "bucket": {"name": BUCKET},
            "object": {"key": url_encode(key), "size": 100, "etag": "b1946ac92492d2347c6235b4d2611184", "sequencer": "617f08299329d189"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "111122223333",
            "source-ip-address": "203.0.113.10",
            "reason": "PutObject"
        }
    })
}

fn test_event() -> Value {
    json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2024-05-14T12:00:00.000Z", "Bucket": BUCKET, "RequestId": "5582815E1AEA5ADF", "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"})
}

fn failures(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .expect("an SQS response")
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect()
}

fn base_source() -> MemSource {
    MemSource::default()
        .with(DIGEST_KEY, digest())
        .with(UNKNOWN_KEY, b"hello, this is not a log\n".to_vec())
        .with(
            CORRUPT_KEY,
            truncated_gzip(&b"0123456789abcdef\n".repeat(50_000)),
        )
        .with(EMPTY_KEY, Vec::new())
        .failing(FLAKY_KEY, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_notification_reports_each_object() {
    let f = fixture(base_source());
    let response = f
        .handler
        .handle(s3_event(&[DIGEST_KEY, UNKNOWN_KEY, GONE_KEY, EMPTY_KEY]))
        .await
        .expect("no failure here is worth a retry");
    assert_eq!(response["trigger"], "s3");
    let totals = &response["totals"];
    assert_eq!(
        (
            &totals["objects"],
            &totals["done"],
            &totals["missing"],
            &totals["failed"]
        ),
        (&json!(4), &json!(2), &json!(1), &json!(1)),
        "{response:#}"
    );
    let objects = response["objects"].as_array().unwrap();
    let status: Vec<(&str, &str)> = objects
        .iter()
        .map(|o| (o["object"].as_str().unwrap(), o["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        status,
        vec![
            (format!("s3://{BUCKET}/{DIGEST_KEY}").as_str(), "done"),
            (format!("s3://{BUCKET}/{UNKNOWN_KEY}").as_str(), "failed"),
            (format!("s3://{BUCKET}/{GONE_KEY}").as_str(), "missing"),
            (format!("s3://{BUCKET}/{EMPTY_KEY}").as_str(), "done"),
        ]
    );
    assert_eq!(objects[0]["summary"]["digest"], true);
    assert!(objects[1]["error"]
        .as_str()
        .unwrap()
        .contains("cannot tell the log source"));
    assert!(f.lake.keys().is_empty(), "{:?}", f.lake.keys());
    // The digest has a source, so it is measured; the unknown object has none.
    let metrics = f.metrics.0.lock().unwrap();
    assert_eq!(metrics.len(), 1);
    assert_eq!(metrics[0]["Source"], "cloudtrail-digest");
    assert_eq!(
        metrics[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "Muster"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_retryable_failure_fails_the_invocation() {
    let f = fixture(base_source());
    let err = f
        .handler
        .handle(s3_event(&[DIGEST_KEY, FLAKY_KEY]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HandlerError::Retryable { failed: 1, first } if first.contains("connection reset")),
        "{err}"
    );
    // A permanent failure of the same kind is reported, not retried.
    let f = fixture(MemSource::default().failing(FLAKY_KEY, false));
    let response = f.handler.handle(s3_event(&[FLAKY_KEY])).await.unwrap();
    assert_eq!(response["totals"]["failed"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_batch_reports_exactly_the_failed_messages() {
    let f = fixture(base_source());
    let event = sqs_event(&[
        ("m-ok", s3_event(&[DIGEST_KEY]).to_string()),
        ("m-corrupt", s3_event(&[CORRUPT_KEY]).to_string()),
        ("m-gone", s3_event(&[GONE_KEY]).to_string()),
        ("m-test", test_event().to_string()),
        ("m-garbled", "{\"Records\": [".to_string()),
        (
            "m-eventbridge",
            eventbridge_event("Object Created", DIGEST_KEY).to_string(),
        ),
        ("m-mixed", s3_event(&[DIGEST_KEY, FLAKY_KEY]).to_string()),
        ("m-empty", s3_event(&[EMPTY_KEY]).to_string()),
    ]);
    let response = f
        .handler
        .handle(event)
        .await
        .expect("SQS never fails whole");
    assert_eq!(
        failures(&response),
        vec!["m-corrupt", "m-garbled", "m-mixed"],
        "{response:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_all_good_reports_no_failures() {
    let f = fixture(base_source());
    let event = sqs_event(&[
        ("m-1", s3_event(&[DIGEST_KEY]).to_string()),
        ("m-2", test_event().to_string()),
    ]);
    let response = f.handler.handle(event).await.unwrap();
    assert_eq!(response, json!({"batchItemFailures": []}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_failed_message_without_id_fails_the_batch() {
    let f = fixture(base_source());
    let mut event = sqs_event(&[("m-1", s3_event(&[CORRUPT_KEY]).to_string())]);
    event["Records"][0]
        .as_object_mut()
        .unwrap()
        .remove("messageId");
    let err = f.handler.handle(event).await.unwrap_err();
    assert!(
        matches!(err, HandlerError::UnidentifiedMessage { index: 0 }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventbridge_object_created_is_processed_and_others_skipped() {
    let f = fixture(base_source());
    let response = f
        .handler
        .handle(eventbridge_event("Object Created", DIGEST_KEY))
        .await
        .unwrap();
    assert_eq!(response["trigger"], "eventbridge");
    assert_eq!(response["totals"]["done"], 1);
    assert_eq!(response["objects"][0]["summary"]["digest"], true);

    let response = f
        .handler
        .handle(eventbridge_event("Object Deleted", DIGEST_KEY))
        .await
        .unwrap();
    assert_eq!(response["totals"]["objects"], 0);
    assert_eq!(response["skipped"]["not_object_created"], 1);

    let err = f
        .handler
        .handle(eventbridge_event("Object Created", FLAKY_KEY))
        .await
        .unwrap_err();
    assert!(matches!(err, HandlerError::Retryable { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_events_and_unknown_triggers() {
    let f = fixture(base_source());
    let response = f.handler.handle(test_event()).await.unwrap();
    assert_eq!(response["skipped"]["test_events"], 1);
    assert_eq!(response["totals"]["objects"], 0);

    let err = f
        .handler
        .handle(json!({"hello": "world"}))
        .await
        .unwrap_err();
    assert!(matches!(err, HandlerError::Trigger(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_groups_objects_by_message() {
    let f = fixture(base_source());
    let event = sqs_event(&[
        ("m-1", s3_event(&[DIGEST_KEY, GONE_KEY]).to_string()),
        ("m-2", s3_event(&[UNKNOWN_KEY]).to_string()),
    ]);
    let trigger = muster_core::s3event::parse_trigger(&event).unwrap();
    let report = f.handler.run(trigger).await;
    let got: Vec<(usize, Status)> = report
        .objects
        .iter()
        .map(|o| (o.message, o.status))
        .collect();
    assert_eq!(
        got,
        vec![(0, Status::Done), (0, Status::Missing), (1, Status::Failed)]
    );
    let failed: Vec<bool> = report.messages.iter().map(|m| m.failed).collect();
    assert_eq!(failed, vec![false, true]);
}

/// A sample from the repository's events/ folder.
fn event_sample(path: &str) -> Vec<u8> {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

const VPC_SAMPLE: &str = "events/vpcflow/AWSLogs/111122223333/vpcflowlogs/us-east-1/2024/05/14/111122223333_vpcflowlogs_us-east-1_fl-0123456789abcdef0_20240514T0000Z_muster01.log.gz";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_batch_of_logs_only_the_truncated_file_fails() {
    let vpc_key = VPC_SAMPLE.trim_start_matches("events/vpcflow/");
    let source = MemSource::default()
        .with(CT_KEY, gz(&cloudtrail_file(25)))
        .with(CT_TRUNCATED_KEY, truncated_gzip(&cloudtrail_file(4000)))
        .with(vpc_key, event_sample(VPC_SAMPLE));
    let f = fixture(source);
    let event = sqs_event(&[
        ("m-good", s3_event(&[CT_KEY]).to_string()),
        ("m-truncated", s3_event(&[CT_TRUNCATED_KEY]).to_string()),
        ("m-vpc", s3_event(&[vpc_key]).to_string()),
    ]);
    let response = f.handler.handle(event.clone()).await.unwrap();
    assert_eq!(failures(&response), vec!["m-truncated"]);

    let keys = f.lake.keys();
    let lake: Vec<&String> = keys.iter().filter(|k| k.starts_with("ocsf/")).collect();
    let good: Vec<&&String> = lake
        .iter()
        .filter(|k| {
            k.starts_with(
                "ocsf/cloudtrail/region=us-east-1/accountId=111122223333/eventDay=20240514/",
            )
        })
        .collect();
    assert!(!good.is_empty(), "{keys:?}");
    assert!(
        lake.iter().any(|k| k.starts_with(
            "ocsf/vpcflow/region=us-east-1/accountId=111122223333/eventDay=20240514/"
        )),
        "{keys:?}"
    );
    let ct_events: usize = good.iter().map(|k| f.lake.lines(k).len()).sum();
    assert!(ct_events > 25, "{ct_events}");
    // The truncated file's records before the cut are kept too: 25 + some.
    let events: usize = lake.iter().map(|k| f.lake.lines(k).len()).sum();
    assert!(
        keys.iter().any(|k| k.starts_with("quarantine/cloudtrail/")),
        "{keys:?}"
    );

    // Redelivery overwrites: the same keys, no more events.
    let again = f.handler.handle(event).await.unwrap();
    assert_eq!(failures(&again), vec!["m-truncated"]);
    assert_eq!(f.lake.keys(), keys);
    let events_again: usize = lake.iter().map(|k| f.lake.lines(k).len()).sum();
    assert_eq!(events_again, events);
}
