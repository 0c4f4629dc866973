//! A CloudTrail digest arriving at the normalizer: its log files are checked against
//! the bucket and a missing or modified one, or a broken chain, is published as a
//! detection. The bucket is the sample mirror (events/cloudtrail-digest + events/cloudtrail).

use log_normalizer::{Config, Handler, HandlerError, Ports};
use muster_core::detect::{Detection, RuleSet};
use muster_core::ports::memory::MemoryStore;
use muster_core::ports::{DetectionBus, MetricsSink, ObjectMeta, ObjectSource, OpenedObject};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const BUCKET: &str = "amzn-s3-demo-bucket";
const DIR: &str = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/05";
const D2: &str = "14/111122223333_CloudTrail-Digest_us-east-1_management-events_us-east-1_20240514T100000Z.json.gz";
const D3: &str = "15/111122223333_CloudTrail-Digest_us-east-1_management-events_us-east-1_20240515T130000Z.json.gz";
const LOG3: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/15/111122223333_CloudTrail_us-east-1_20240515T1200Z_rules01.json.gz";

fn events() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

struct Bucket {
    objects: HashMap<String, Vec<u8>>,
    throttled: Option<String>,
}

impl Bucket {
    fn samples() -> Self {
        let mut objects = HashMap::new();
        for root in [
            events().join("cloudtrail-digest"),
            events().join("cloudtrail"),
        ] {
            let mut stack = vec![root.join("AWSLogs")];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).unwrap().flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if p.to_string_lossy().ends_with(".json.gz") {
                        let key = p
                            .strip_prefix(&root)
                            .unwrap()
                            .to_string_lossy()
                            .into_owned();
                        objects.insert(key, std::fs::read(&p).unwrap());
                    }
                }
            }
        }
        Bucket {
            objects,
            throttled: None,
        }
    }
}

impl ObjectSource for Bucket {
    fn open(
        &self,
        bucket: &str,
        key: &str,
        _: Option<&str>,
    ) -> muster_core::Result<Option<OpenedObject>> {
        if self.throttled.as_deref() == Some(key) {
            return Err(muster_core::Error::Open {
                object: key.into(),
                message: "SlowDown".into(),
                retryable: true,
            });
        }
        Ok(self.objects.get(key).map(|b| OpenedObject {
            meta: ObjectMeta {
                bucket: bucket.into(),
                key: key.into(),
                ..Default::default()
            },
            body: Box::new(std::io::Cursor::new(b.clone())),
        }))
    }
}

#[derive(Default)]
struct Bus(Mutex<Vec<Detection>>);

impl DetectionBus for Bus {
    fn publish(&self, detections: &[Detection]) -> muster_core::Result<()> {
        self.0.lock().unwrap().extend_from_slice(detections);
        Ok(())
    }
}

struct NoMetrics;

impl MetricsSink for NoMetrics {
    fn publish(&self, _: &str) -> muster_core::Result<()> {
        Ok(())
    }
}

fn s3_event(key: &str) -> Value {
    json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2024-05-15T13:05:00.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": BUCKET, "arn": format!("arn:aws:s3:::{BUCKET}")},
            "object": {"key": key, "size": 1000, "eTag": "0123456789abcdef0123456789abcdef"}
        }
    }]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_digest_publishes_a_detection_for_each_integrity_problem() {
    type Change = fn(&mut Bucket);
    let cases: [(&str, Change, &[&str], bool); 4] = [
        ("clean", |_| {}, &[], false),
        (
            "log file deleted",
            |b| {
                b.objects.remove(LOG3);
            },
            &["CloudTrail log file missing"],
            false,
        ),
        (
            "previous digest deleted",
            |b| {
                b.objects.remove(&format!("{DIR}/{D2}"));
            },
            &["CloudTrail digest chain broken"],
            false,
        ),
        (
            "log read throttled",
            |b| b.throttled = Some(LOG3.into()),
            &[],
            true,
        ),
    ];
    for (name, change, titles, retry) in cases {
        let mut bucket = Bucket::samples();
        change(&mut bucket);
        let config = Config::from_lookup(|n| (n == "OUTPUT_BUCKET").then(|| "lake".to_owned()))
            .expect("config");
        let store = Arc::new(MemoryStore::new());
        let bus = Arc::new(Bus::default());
        let handler = Handler::new(
            config,
            Ports {
                source: Arc::new(bucket),
                lake: store.clone(),
                quarantine: store.clone(),
                metrics: Arc::new(NoMetrics),
            },
        )
        .with_detections(bus.clone(), RuleSet::builtin());
        let response = handler.handle(s3_event(&format!("{DIR}/{D3}"))).await;
        match (response, retry) {
            (Err(HandlerError::Retryable { .. }), true) => {}
            (Ok(r), false) => assert_eq!(r["objects"][0]["status"], "done", "{name}: {r}"),
            (other, _) => panic!("{name}: {other:?}"),
        }
        let published = bus.0.lock().unwrap();
        let got: Vec<&str> = published.iter().map(|d| d.title.as_str()).collect();
        assert_eq!(got.len(), titles.len(), "{name}: {got:?}");
        for (g, t) in got.iter().zip(titles) {
            assert!(g.starts_with(t), "{name}: {g}");
        }
        for d in published.iter() {
            assert_eq!(d.rule_id, "cloudtrail-log-file-integrity");
            assert_eq!(d.account, "111122223333");
        }
    }
}
