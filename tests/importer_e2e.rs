//! Detections and findings end to end against moto server: a CloudTrail file with a
//! root sign-in and a burst of failed sign-ins is normalised by the log-normalizer's
//! handler with the EventBridge bus attached; the `muster.detection` events reach an
//! SQS queue through an EventBridge rule (moto delivers rule targets); the importer's
//! handler takes those events, a direct invoke of custom findings and a findings file
//! dropped in S3, and Security Hub's GetFindings returns them all, once each, however
//! often they are imported.
//!
//! moto implements everything used here (EventBridge buses, rules and SQS targets;
//! Security Hub's EnableSecurityHub, BatchImportFindings and GetFindings), so no stub
//! server stands in. moto does not check findings against the ASFF model; the unit
//! tests of muster-core's `asff` module do that.

use findings_importer::Handler as Importer;
use log_normalizer::{Config as NormalizerConfig, Handler as Normalizer, Ports as NormalizerPorts};
use muster_aws::retry::Backoff;
use muster_aws::{
    eventbridge, securityhub, EventBridgeBus, S3LakeWriter, S3ObjectSource, SecurityHubSink,
};
use muster_core::detect::RuleSet;
use muster_core::ports::MetricsSink;
use muster_e2e::{gzip, repo_root, MotoServer};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;

const LOGS: &str = "muster-central-logs";
const LAKE: &str = "muster-lake";
const BUS: &str = "muster-detections";
const QUEUE: &str = "muster-detections-tap";
const ACCOUNT: &str = "111122223333";
const CT_SAMPLE: &str = "events/cloudtrail/AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/14/111122223333_CloudTrail_us-east-1_20240514T0000Z_muster01.json.gz";
const CT_KEY: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/14/111122223333_CloudTrail_us-east-1_20240514T0800Z_burst.json.gz";

struct NoMetrics;

impl MetricsSink for NoMetrics {
    fn publish(&self, _doc: &str) -> muster_core::Result<()> {
        Ok(())
    }
}

/// The SDK configuration every client of the test uses: moto's endpoint, static test
/// credentials, us-east-1.
fn sdk(moto: &MotoServer) -> aws_config::SdkConfig {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "test",
            "test",
            None,
            None,
            "muster-e2e",
        )))
        .endpoint_url(&moto.endpoint)
        .build()
}

fn read_json(path: &str) -> Value {
    let full = repo_root().join(path);
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The CloudTrail sample (a root sign-in, a sign-in without MFA, one failed sign-in,
/// an AccessDenied call, IAM changes) plus four more failed sign-ins from the same
/// address within a minute: with the sample's one, the five the repeated-failures rule
/// needs within its five minutes.
fn cloudtrail_with_burst() -> Vec<u8> {
    let bytes = std::fs::read(repo_root().join(CT_SAMPLE)).expect("CloudTrail sample");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
        .unwrap();
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    let records = doc["Records"].as_array_mut().unwrap();
    let failed = records
        .iter()
        .find(|r| {
            r["eventName"] == "ConsoleLogin" && r["responseElements"]["ConsoleLogin"] == "Failure"
        })
        .expect("the sample has a failed sign-in")
        .clone();
    for i in 1..=4 {
        let mut r = failed.clone();
        r["eventTime"] = json!(format!("2024-05-14T08:02:{:02}Z", 40 + i * 5));
        r["eventID"] = json!(format!("3b0e1d6a-6a4e-4a5c-9a1e-0000000b0{i:03}"));
        records.push(r);
    }
    gzip(doc.to_string().as_bytes())
}

/// Creates the bus, a queue, and a rule on the bus that sends `muster.detection` events
/// to the queue. Returns the queue URL.
async fn tap_the_bus(sdk: &aws_config::SdkConfig) -> String {
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    events
        .create_event_bus()
        .name(BUS)
        .send()
        .await
        .expect("CreateEventBus");
    let queue_url = sqs
        .create_queue()
        .queue_name(QUEUE)
        .send()
        .await
        .expect("CreateQueue")
        .queue_url()
        .expect("queue URL")
        .to_owned();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes");
    let queue_arn = attributes
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .expect("queue ARN")
        .clone();
    events
        .put_rule()
        .name("muster-detections-to-queue")
        .event_bus_name(BUS)
        .event_pattern(
            json!({"source": ["muster"], "detail-type": ["muster.detection"]}).to_string(),
        )
        .send()
        .await
        .expect("PutRule");
    events
        .put_targets()
        .rule("muster-detections-to-queue")
        .event_bus_name(BUS)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(queue_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("PutTargets");
    queue_url
}

/// Every message in the queue (deleted as read).
async fn drain(sdk: &aws_config::SdkConfig, queue_url: &str) -> Vec<Value> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut out = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("ReceiveMessage");
        if got.messages().is_empty() {
            return out;
        }
        for m in got.messages() {
            out.push(serde_json::from_str(m.body().unwrap_or("")).expect("message body is JSON"));
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("DeleteMessage");
        }
    }
}

async fn all_findings(
    client: &aws_sdk_securityhub::Client,
) -> Vec<aws_sdk_securityhub::types::AwsSecurityFinding> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .get_findings()
            .max_results(100)
            .set_next_token(token)
            .send()
            .await
            .expect("GetFindings");
        out.extend(page.findings().iter().cloned());
        match page.next_token().filter(|t| !t.is_empty()) {
            Some(t) => token = Some(t.to_owned()),
            None => return out,
        }
    }
}

fn normalizer(sdk: &aws_config::SdkConfig, s3: &aws_sdk_s3::Client) -> Normalizer {
    let config = NormalizerConfig::from_lookup(|name| match name {
        "OUTPUT_BUCKET" => Some(LAKE.into()),
        "DETECTION_BUS" => Some(BUS.into()),
        _ => None,
    })
    .expect("normalizer config");
    assert_eq!(config.detection_bus.as_deref(), Some(BUS));
    let lake = Arc::new(S3LakeWriter::new(s3.clone(), Handle::current(), LAKE));
    let bus =
        EventBridgeBus::new(eventbridge::client(sdk, None), Handle::current(), BUS).with_backoff(
            Backoff::new(3, Duration::from_millis(50), Duration::from_millis(200)),
        );
    Normalizer::new(
        config,
        NormalizerPorts {
            source: Arc::new(S3ObjectSource::new(s3.clone(), Handle::current())),
            lake: lake.clone(),
            quarantine: lake,
            metrics: Arc::new(NoMetrics),
        },
    )
    .with_detections(Arc::new(bus), RuleSet::builtin())
}

fn importer(sdk: &aws_config::SdkConfig, s3: &aws_sdk_s3::Client) -> Importer {
    let config = findings_importer::Config::from_lookup(|name| match name {
        "AWS_ACCOUNT_ID" => Some(ACCOUNT.into()),
        "AWS_REGION" => Some("us-east-1".into()),
        _ => None,
    })
    .expect("importer config");
    let sink =
        SecurityHubSink::new(securityhub::client(sdk, None), Handle::current()).with_backoff(
            Backoff::new(3, Duration::from_millis(50), Duration::from_millis(200)),
        );
    Importer::new(
        config,
        findings_importer::Ports {
            source: Arc::new(S3ObjectSource::new(s3.clone(), Handle::current())),
            sink: Arc::new(sink),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detections_flow_from_the_lake_through_the_bus_into_security_hub() {
    let moto = MotoServer::start();
    let sdk = sdk(&moto);
    let s3 = moto.s3_client();
    for bucket in [LOGS, LAKE] {
        s3.create_bucket()
            .bucket(bucket)
            .send()
            .await
            .expect("CreateBucket");
    }
    let log = cloudtrail_with_burst();
    s3.put_object()
        .bucket(LOGS)
        .key(CT_KEY)
        .body(log.clone().into())
        .send()
        .await
        .expect("PutObject");
    let queue_url = tap_the_bus(&sdk).await;

    // 1. The normaliser publishes the rule hits over the file's events.
    let mut notification = read_json("events/triggers/s3-put.json");
    notification["Records"][0]["s3"]["object"]["key"] = json!(CT_KEY);
    notification["Records"][0]["s3"]["object"]["size"] = json!(log.len());
    let normalizer = normalizer(&sdk, &s3);
    let response = normalizer
        .handle(notification.clone())
        .await
        .expect("normalizer");
    let summary = &response["objects"][0]["summary"];
    assert_eq!(response["objects"][0]["status"], "done", "{response:#}");
    let published = summary["detections"].as_u64().expect("detections counted");

    let events = drain(&sdk, &queue_url).await;
    assert_eq!(events.len() as u64, published, "{events:#?}");
    let mut by_rule: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in &events {
        assert_eq!(e["source"], "muster", "{e}");
        assert_eq!(e["detail-type"], "muster.detection", "{e}");
        let d = &e["detail"];
        for field in [
            "rule_id",
            "title",
            "severity",
            "event_uids",
            "account",
            "region",
            "time",
            "resource",
        ] {
            assert!(!d[field].is_null(), "detail.{field} missing: {d}");
        }
        assert_eq!(d["account"], ACCOUNT);
        let uids: Vec<String> = d["event_uids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u.as_str().unwrap().to_owned())
            .collect();
        assert!(!uids.is_empty(), "{d}");
        by_rule
            .entry(d["rule_id"].as_str().unwrap().to_owned())
            .or_default()
            .extend(uids);
    }
    for rule in [
        "muster.cis.cloudwatch.1",       // the root sign-in
        "muster.cis.cloudwatch.3",       // a console sign-in without MFA
        "muster.cis.cloudwatch.6",       // console authentication failures
        "muster.auth.repeated-failures", // five from one address in five minutes
    ] {
        assert!(
            by_rule.contains_key(rule),
            "{rule} did not fire: {by_rule:#?}"
        );
    }
    // The threshold rule carries every event of the burst.
    let burst = &by_rule["muster.auth.repeated-failures"];
    assert_eq!(burst.len(), 5, "{burst:?}");
    assert!(
        burst.iter().any(|u| u.ends_with("000000000002")),
        "the sample's own failure: {burst:?}"
    );

    // 2. The importer takes the events as EventBridge delivers them, custom findings by
    //    direct invoke, and a findings file dropped under findings/.
    let hub = aws_sdk_securityhub::Client::new(&sdk);
    hub.enable_security_hub()
        .send()
        .await
        .expect("EnableSecurityHub");
    let importer = importer(&sdk, &s3);
    for e in &events {
        let r = importer
            .handle(e.clone())
            .await
            .unwrap_or_else(|err| panic!("{err}: {e}"));
        assert_eq!(
            (r["imported"].as_u64(), r["invalid"].as_u64()),
            (Some(1), Some(0)),
            "{r:#}"
        );
    }
    let custom = read_json("events/findings/custom-findings.json");
    let r = importer
        .handle(custom.clone())
        .await
        .expect("direct invoke");
    assert_eq!(
        (r["imported"].as_u64(), r["failed"].as_u64()),
        (Some(2), Some(0)),
        "{r:#}"
    );

    let dropped_key = "findings/acme-scanner/2024-05-14.jsonl";
    let lines: String = custom["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let mut f = f.clone();
            f["correlation_id"] =
                json!(format!("dropped/{}", f["correlation_id"].as_str().unwrap()));
            format!("{f}\n")
        })
        .collect();
    s3.put_object()
        .bucket(LOGS)
        .key(dropped_key)
        .body(lines.clone().into_bytes().into())
        .send()
        .await
        .expect("PutObject");
    let mut drop = read_json("events/triggers/eventbridge-object-created.json");
    drop["detail"]["object"]["key"] = json!(dropped_key);
    drop["detail"]["object"]["size"] = json!(lines.len());
    let r = importer.handle(drop.clone()).await.expect("S3 drop");
    assert_eq!(r["imported"], 2, "{r:#}");

    // 3. Security Hub has them all: a detection's GeneratorId is its rule, its
    //    ProductFields carry the uids of the events that matched.
    let findings = all_findings(&hub).await;
    let expected = events.len() + 4;
    assert_eq!(
        findings.len(),
        expected,
        "{:#?}",
        findings.iter().map(|f| f.id()).collect::<Vec<_>>()
    );
    let product_arn = format!("arn:aws:securityhub:us-east-1:{ACCOUNT}:product/{ACCOUNT}/default");
    let mut detection_findings = 0;
    for f in &findings {
        assert_eq!(f.product_arn(), Some(product_arn.as_str()));
        assert_eq!(f.schema_version(), Some("2018-10-08"));
        let fields = f.product_fields().expect("ProductFields");
        match fields.get("muster/rule_id") {
            Some(rule) => {
                detection_findings += 1;
                assert_eq!(f.generator_id(), Some(rule.as_str()));
                let uids: BTreeSet<&str> = fields["muster/event_uids"].split(',').collect();
                let want: BTreeSet<&str> = by_rule[rule].iter().map(String::as_str).collect();
                assert!(uids.is_subset(&want), "{rule}: {uids:?} not in {want:?}");
                if rule == "muster.auth.repeated-failures" {
                    assert_eq!(uids.len(), 5);
                }
            }
            None => {
                assert_eq!(f.generator_id(), Some("acme-scanner"));
                assert!(fields.contains_key("muster/correlation_id"), "{fields:?}");
            }
        }
    }
    assert_eq!(detection_findings, events.len());

    // 4. Everything again: the same normaliser run (its detections), the same payloads.
    //    Ids are deterministic, so Security Hub updates, never duplicates.
    let before: BTreeMap<String, String> = findings
        .iter()
        .map(|f| {
            (
                f.id().unwrap().to_owned(),
                f.updated_at().unwrap().to_owned(),
            )
        })
        .collect();
    normalizer
        .handle(notification)
        .await
        .expect("normalizer again");
    let again = drain(&sdk, &queue_url).await;
    assert_eq!(again.len(), events.len());
    for e in &again {
        importer.handle(e.clone()).await.expect("detection again");
    }
    importer.handle(custom).await.expect("direct invoke again");
    importer.handle(drop).await.expect("S3 drop again");
    let after = all_findings(&hub).await;
    assert_eq!(after.len(), expected);
    for f in &after {
        let id = f.id().unwrap();
        let was = before
            .get(id)
            .unwrap_or_else(|| panic!("new finding {id} on re-import"));
        assert!(
            f.updated_at().unwrap() >= was.as_str(),
            "{id}: UpdatedAt went back"
        );
    }
}
