//! The log normaliser end to end against moto server: log files uploaded to a bucket,
//! the Lambda handler run with the real aws-sdk-s3 adapters for each trigger shape
//! (the files in events/triggers/), and the lake read back and checked.

use log_normalizer::{Config, Handler, Ports, Status};
use muster_aws::{S3LakeWriter, S3ObjectSource};
use muster_core::ports::MetricsSink;
use muster_core::s3event::parse_trigger;
use muster_e2e::{
    get_bytes, gzip, json_lines, list_keys, repo_root, MotoServer, MOTO_MIN_PART_SIZE,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::runtime::Handle;

/// The bucket the trigger files in events/triggers/ name.
const LOGS: &str = "muster-central-logs";
const LAKE: &str = "muster-lake";

/// Samples from events/ and the keys they are uploaded to: the keys the trigger files
/// name, laid out as CloudTrail and VPC Flow Logs deliver to S3 (one behind a trail
/// prefix with a space, which its notification carries URL-encoded as `org+trail/`).
const UPLOADS: &[(&str, &str)] = &[
    (
        "events/cloudtrail/AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/14/111122223333_CloudTrail_us-east-1_20240514T0000Z_muster01.json.gz",
        "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/14/111122223333_CloudTrail_us-east-1_20240514T0000Z_muster01.json.gz",
    ),
    (
        "events/cloudtrail/AWSLogs/444455556666/CloudTrail/eu-west-1/2024/05/14/444455556666_CloudTrail_eu-west-1_20240514T1200Z_muster03.json.gz",
        "org trail/AWSLogs/444455556666/CloudTrail/eu-west-1/2024/05/14/444455556666_CloudTrail_eu-west-1_20240514T1200Z_muster03.json.gz",
    ),
    (
        "events/vpcflow/AWSLogs/111122223333/vpcflowlogs/us-east-1/2024/05/14/111122223333_vpcflowlogs_us-east-1_fl-0123456789abcdef0_20240514T0000Z_muster01.log.gz",
        "AWSLogs/111122223333/vpcflowlogs/us-east-1/2024/05/14/111122223333_vpcflowlogs_us-east-1_fl-0123456789abcdef0_20240514T0000Z_muster01.log.gz",
    ),
    (
        "events/vpcflow/AWSLogs/444455556666/vpcflowlogs/eu-west-1/2024/05/14/444455556666_vpcflowlogs_eu-west-1_fl-0fedcba9876543210_20240514T0005Z_muster02.log.gz",
        "AWSLogs/444455556666/vpcflowlogs/eu-west-1/2024/05/14/444455556666_vpcflowlogs_eu-west-1_fl-0fedcba9876543210_20240514T0005Z_muster02.log.gz",
    ),
];

const TRIGGERS: &[&str] = &[
    "events/triggers/s3-put.json",
    "events/triggers/sqs-s3.json",
    "events/triggers/eventbridge-object-created.json",
];

#[derive(Default)]
struct Emf(Mutex<Vec<Value>>);

impl MetricsSink for Emf {
    fn publish(&self, doc: &str) -> muster_core::Result<()> {
        self.0
            .lock()
            .unwrap()
            .push(serde_json::from_str(doc).unwrap());
        Ok(())
    }
}

fn handler(client: &aws_sdk_s3::Client, part_size: usize, metrics: Arc<Emf>) -> Handler {
    let config =
        Config::from_lookup(|name| (name == "OUTPUT_BUCKET").then(|| LAKE.into())).expect("config");
    let lake = Arc::new(
        S3LakeWriter::new(client.clone(), Handle::current(), LAKE).with_part_size(part_size),
    );
    Handler::new(
        config,
        Ports {
            source: Arc::new(S3ObjectSource::new(client.clone(), Handle::current())),
            lake: lake.clone(),
            quarantine: lake,
            metrics,
        },
    )
}

fn read_json(path: &str) -> Value {
    let full = repo_root().join(path);
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A sample as a log delivery would upload it: gzip, whatever its form in events/.
fn sample(path: &str) -> Vec<u8> {
    let full = repo_root().join(path);
    let bytes = std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()));
    if bytes.starts_with(&[0x1f, 0x8b]) {
        bytes
    } else {
        gzip(&bytes)
    }
}

async fn create_bucket(client: &aws_sdk_s3::Client, bucket: &str) {
    client
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateBucket {bucket}: {e:?}"));
}

async fn put(client: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutObject {key}: {e:?}"));
}

/// A lake key split into its partition values:
/// `ocsf/<source>/region=<r>/accountId=<a>/eventDay=<YYYYMMDD>/<id>.jsonl.gz`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Partition {
    source: String,
    region: String,
    account: String,
    day: String,
}

fn partition(key: &str) -> Partition {
    let parts: Vec<&str> = key.split('/').collect();
    assert_eq!(parts.len(), 6, "{key}");
    assert_eq!(parts[0], "ocsf", "{key}");
    let value = |i: usize, name: &str| {
        parts[i]
            .strip_prefix(&format!("{name}="))
            .unwrap_or_else(|| panic!("{key}: segment {i} is not {name}="))
            .to_owned()
    };
    let day = value(4, "eventDay");
    assert!(
        day.len() == 8 && day.bytes().all(|b| b.is_ascii_digit()),
        "{key}"
    );
    let file = parts[5];
    let id = file
        .strip_suffix(".jsonl.gz")
        .unwrap_or_else(|| panic!("{key}"));
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{key}"
    );
    Partition {
        source: parts[1].to_owned(),
        region: value(2, "region"),
        account: value(3, "accountId"),
        day,
    }
}

fn day_of(epoch_ms: i64) -> String {
    muster_core::time::event_day(epoch_ms)
}

/// Reads the whole lake back and checks every event against its partition; returns
/// events per partition.
async fn read_lake(client: &aws_sdk_s3::Client) -> BTreeMap<String, (Partition, Vec<Value>)> {
    let mut lake = BTreeMap::new();
    for key in list_keys(client, LAKE, "ocsf/").await {
        let p = partition(&key);
        let events = json_lines(&get_bytes(client, LAKE, &key).await);
        assert!(!events.is_empty(), "{key} is empty");
        for e in &events {
            let class = e["class_uid"]
                .as_u64()
                .unwrap_or_else(|| panic!("{key}: {e}"));
            let activity = e["activity_id"].as_u64().unwrap();
            assert!(
                matches!(class, 3001 | 3002 | 4001 | 6003),
                "{key}: class {class}"
            );
            assert_eq!(
                e["type_uid"].as_u64(),
                Some(class * 100 + activity),
                "{key}"
            );
            assert_eq!(e["category_uid"].as_u64(), Some(class / 1000), "{key}");
            assert_eq!(e["metadata"]["version"], "1.1.0", "{key}");
            let time = e["time"]
                .as_i64()
                .unwrap_or_else(|| panic!("{key}: time {e}"));
            assert_eq!(day_of(time), p.day, "{key}: event day");
            if let Some(region) = e["cloud"]["region"].as_str() {
                assert_eq!(region, p.region, "{key}");
            }
            if let Some(account) = e["cloud"]["account"]["uid"].as_str() {
                assert_eq!(account, p.account, "{key}");
            }
            let want_class: &[u64] = match p.source.as_str() {
                "cloudtrail" => &[3001, 3002, 6003],
                "vpcflow" => &[4001],
                other => panic!("{key}: unexpected source {other}"),
            };
            assert!(want_class.contains(&class), "{key}: {class}");
            assert_eq!(e["cloud"]["provider"], "AWS", "{key}");
            match p.source.as_str() {
                "cloudtrail" => {
                    assert!(e["metadata"]["uid"].is_string(), "{key}: eventID {e}");
                    assert!(e["api"]["operation"].is_string(), "{key}: {e}");
                }
                _ => {
                    assert!(e["src_endpoint"]["ip"].is_string(), "{key}: {e}");
                    assert!(e["dst_endpoint"]["ip"].is_string(), "{key}: {e}");
                }
            }
        }
        lake.insert(key, (p, events));
    }
    lake
}

fn trigger_keys(trigger: &Value) -> Vec<String> {
    parse_trigger(trigger)
        .expect("trigger parses")
        .objects()
        .map(|o| {
            assert_eq!(o.bucket, LOGS);
            o.key.clone()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_fill_the_lake_idempotently() {
    let moto = MotoServer::start();
    let client = moto.s3_client();
    create_bucket(&client, LOGS).await;
    create_bucket(&client, LAKE).await;
    for (path, key) in UPLOADS {
        put(&client, LOGS, key, sample(path)).await;
    }
    // The trigger files name exactly the uploaded samples (keys URL-decoded).
    let mut named: Vec<String> = TRIGGERS
        .iter()
        .flat_map(|t| trigger_keys(&read_json(t)))
        .collect();
    named.sort();
    named.dedup();
    let mut uploaded: Vec<String> = UPLOADS.iter().map(|(_, k)| k.to_string()).collect();
    uploaded.sort();
    assert_eq!(named, uploaded);

    let metrics = Arc::new(Emf::default());
    let h = handler(&client, muster_aws::s3::DEFAULT_PART_SIZE, metrics.clone());

    // records_out per object. Each trigger is run twice (for its report, then for its
    // Lambda response), so the second run is already a redelivery.
    let mut per_object: BTreeMap<String, u64> = BTreeMap::new();
    for path in TRIGGERS {
        let event = read_json(path);
        let report = h.run(parse_trigger(&event).unwrap()).await;
        assert!(!report.objects.is_empty(), "{path}");
        for o in &report.objects {
            assert_eq!(o.status, Status::Done, "{path}: {o:?}");
            let s = o.summary.as_ref().unwrap();
            assert_eq!(s.records_in, s.records_out + s.quarantined, "{path}: {s:?}");
            assert!(s.records_out > 0, "{path}: {s:?}");
            let seen = per_object.insert(o.object.clone(), s.records_out);
            assert!(seen.is_none() || seen == Some(s.records_out), "{path}");
        }
        // The Lambda response for the same event: nothing to retry, nothing failed.
        let response = h
            .handle(event)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        if report.trigger == muster_core::s3event::TriggerKind::Sqs {
            assert_eq!(response, json!({"batchItemFailures": []}), "{path}");
        } else {
            assert_eq!(response["totals"]["failed"], 0, "{path}: {response:#}");
        }
    }
    assert_eq!(per_object.len(), UPLOADS.len());
    // Every object was normalised twice above; the lake holds one copy.
    let lake = read_lake(&client).await;
    let events: u64 = lake.values().map(|(_, e)| e.len() as u64).sum();
    assert_eq!(events, per_object.values().sum::<u64>());
    let sources: Vec<&str> = lake.values().map(|(p, _)| p.source.as_str()).collect();
    assert!(sources.contains(&"cloudtrail"), "{sources:?}");
    assert!(sources.contains(&"vpcflow"), "{sources:?}");
    assert!(lake
        .values()
        .any(|(p, _)| p.source == "vpcflow" && p.region == "eu-west-1"));

    // Redelivery of everything: same keys, same events.
    let before: Vec<String> = lake.keys().cloned().collect();
    for path in TRIGGERS {
        h.handle(read_json(path)).await.unwrap();
    }
    let after = read_lake(&client).await;
    assert_eq!(after.keys().cloned().collect::<Vec<_>>(), before);
    let events_after: u64 = after.values().map(|(_, e)| e.len() as u64).sum();
    assert_eq!(events_after, events);

    // EMF: record counts by Source for every object, and authentication attempts
    // by Result from the CloudTrail sign-ins.
    let docs = metrics.0.lock().unwrap();
    let mut dimensions = BTreeMap::new();
    for d in docs.iter() {
        let definition = &d["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(definition["Namespace"], "Muster", "{d}");
        let dimension = definition["Dimensions"][0][0].as_str().unwrap().to_owned();
        let value = d[&dimension]
            .as_str()
            .unwrap_or_else(|| panic!("{d}"))
            .to_owned();
        *dimensions.entry((dimension, value)).or_insert(0) += 1;
    }
    let sources: Vec<&str> = dimensions
        .keys()
        .filter(|(d, _)| d == "Source")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(sources, vec!["cloudtrail", "vpcflow"], "{dimensions:?}");
    assert!(
        dimensions.keys().any(|(d, _)| d == "Result"),
        "{dimensions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_event_missing_object_and_corrupt_file() {
    let moto = MotoServer::start();
    let client = moto.s3_client();
    create_bucket(&client, LOGS).await;
    create_bucket(&client, LAKE).await;
    let h = handler(&client, muster_aws::s3::DEFAULT_PART_SIZE, Arc::default());

    let response = h
        .handle(read_json("events/triggers/s3-test-event.json"))
        .await
        .unwrap();
    assert_eq!(response["skipped"]["test_events"], 1);

    // Nothing was uploaded: every object named is gone (NoSuchKey), a warning only.
    let response = h
        .handle(read_json("events/triggers/s3-put.json"))
        .await
        .unwrap();
    assert_eq!(response["totals"]["missing"], 1, "{response:#}");
    let response = h
        .handle(read_json("events/triggers/sqs-s3.json"))
        .await
        .unwrap();
    assert_eq!(response, json!({"batchItemFailures": []}));

    // A truncated gzip in one SQS message fails that message only.
    let (ct_path, ct_key) = UPLOADS[0];
    let good = sample(ct_path);
    put(&client, LOGS, ct_key, good.clone()).await;
    let broken_key = ct_key.replace("muster01", "truncated");
    put(&client, LOGS, &broken_key, good[..good.len() / 2].to_vec()).await;
    let notification = |key: &str| {
        let mut n = read_json("events/triggers/s3-put.json");
        n["Records"][0]["s3"]["object"]["key"] = json!(key);
        n.to_string()
    };
    let mut sqs = read_json("events/triggers/sqs-s3.json");
    sqs["Records"][0]["body"] = json!(notification(ct_key));
    sqs["Records"][1]["body"] = json!(notification(&broken_key));
    let broken_id = sqs["Records"][1]["messageId"].clone();
    let response = h.handle(sqs).await.unwrap();
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": broken_id}]})
    );
    // The broken file's reason is kept in quarantine beside what it cost.
    let quarantine = list_keys(&client, LAKE, "quarantine/").await;
    assert!(
        quarantine.iter().any(|k| k.contains("truncated")),
        "{quarantine:?}"
    );
}

/// Enough CloudTrail that the lake file outgrows several parts of the test part size.
fn large_cloudtrail(records: usize) -> Vec<u8> {
    let mut out = String::from("{\"Records\":[");
    for i in 0..records {
        if i > 0 {
            out.push(',');
        }
        // Distinct ids and addresses, so the output does not compress to nothing.
        out.push_str(
            &json!({
                "eventVersion": "1.08",
                "userIdentity": {"type": "AssumedRole", "principalId": format!("AROAEXAMPLE:session-{i}"), "arn": format!("arn:aws:sts::111122223333:assumed-role/app/session-{i}"), "accountId": "111122223333", "accessKeyId": format!("ASIA{i:016}"), "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE", "arn": "arn:aws:iam::111122223333:role/app", "accountId": "111122223333", "userName": "app"}, "attributes": {"creationDate": "2024-05-14T11:00:00Z", "mfaAuthenticated": "false"}}},
                "eventTime": format!("2024-05-14T12:{:02}:{:02}Z", (i / 60) % 60, i % 60),
                "eventSource": "s3.amazonaws.com",
                "eventName": "GetObject",
                "awsRegion": "us-east-1",
                "sourceIPAddress": format!("198.51.{}.{}", (i / 256) % 256, i % 256),
                "userAgent": format!("aws-sdk-java/2.20.{i}"),
                "requestParameters": {"bucketName": "data", "key": format!("objects/{i:08x}.parquet")},
                "responseElements": null,
                "requestID": format!("{:016X}", (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                "eventID": format!("{:08x}-0000-4000-8000-{:012x}", i, (i as u64).wrapping_mul(2_654_435_761)),
                "readOnly": true,
                "resources": [{"type": "AWS::S3::Object", "ARN": format!("arn:aws:s3:::data/objects/{i:08x}.parquet")}],
                "eventType": "AwsApiCall",
                "managementEvent": false,
                "recipientAccountId": "111122223333",
                "eventCategory": "Data"
            })
            .to_string(),
        );
    }
    out.push_str("]}");
    gzip(out.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_output_goes_out_as_multipart_upload() {
    let moto = MotoServer::start();
    let client = moto.s3_client();
    create_bucket(&client, LOGS).await;
    create_bucket(&client, LAKE).await;
    let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/14/111122223333_CloudTrail_us-east-1_20240514T1300Z_large.json.gz";
    let records = 6000;
    put(&client, LOGS, key, large_cloudtrail(records)).await;
    let h = handler(&client, MOTO_MIN_PART_SIZE, Arc::default());
    let mut event = read_json("events/triggers/eventbridge-object-created.json");
    event["detail"]["object"]["key"] = json!(key);
    let response = h.handle(event.clone()).await.unwrap();
    assert_eq!(response["totals"]["records_out"], records, "{response:#}");

    let keys = list_keys(&client, LAKE, "ocsf/").await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let head = client
        .head_object()
        .bucket(LAKE)
        .key(&keys[0])
        .send()
        .await
        .unwrap();
    let etag = head.e_tag().unwrap_or("").trim_matches('"').to_owned();
    let parts: u32 = etag
        .rsplit_once('-')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or_else(|| panic!("not a multipart ETag: {etag}"));
    assert!(parts >= 3, "{parts} parts");
    assert!(
        head.content_length().unwrap_or(0) as usize > 2 * MOTO_MIN_PART_SIZE,
        "{head:?}"
    );
    let lake = read_lake(&client).await;
    let (p, events) = lake.values().next().unwrap();
    assert_eq!(
        (
            p.source.as_str(),
            p.region.as_str(),
            p.account.as_str(),
            p.day.as_str()
        ),
        ("cloudtrail", "us-east-1", "111122223333", "20240514")
    );
    assert_eq!(events.len(), records);

    // Again: the same key, the same events, and no upload left open.
    h.handle(event).await.unwrap();
    assert_eq!(list_keys(&client, LAKE, "ocsf/").await, keys);
    let uploads = client
        .list_multipart_uploads()
        .bucket(LAKE)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty());
}
