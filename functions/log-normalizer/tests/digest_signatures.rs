//! A CloudTrail digest arriving at the normalizer has its signature checked: the hex
//! signature S3 keeps in `x-amz-meta-signature`, against CloudTrail's public keys from
//! the public-key port (a fake here, serving events/cloudtrail-digest/public-keys.json,
//! the throwaway key the samples are signed with). An invalid signature is a detection;
//! keys that cannot be fetched leave it "not checked", never a detection.

use log_normalizer::{Config, Handler, HandlerError, Ports};
use muster_core::detect::{Detection, RuleSet};
use muster_core::ports::memory::MemoryStore;
use muster_core::ports::{
    DetectionBus, MetricsSink, ObjectMeta, ObjectSource, OpenedObject, PublicKey, PublicKeySource,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const BUCKET: &str = "amzn-s3-demo-bucket";
const DIR: &str = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/05";
const D2: &str = "14/111122223333_CloudTrail-Digest_us-east-1_management-events_us-east-1_20240514T100000Z.json.gz";
const D3: &str = "15/111122223333_CloudTrail-Digest_us-east-1_management-events_us-east-1_20240515T130000Z.json.gz";

fn events() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

/// The sample mirror as a bucket; digests carry their `.sig` sidecar as S3 metadata.
struct Bucket {
    objects: HashMap<String, (Vec<u8>, Option<String>)>,
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
                        let sig = std::fs::read_to_string(format!("{}.sig", p.display()))
                            .ok()
                            .map(|s| s.trim().to_owned());
                        objects.insert(key, (std::fs::read(&p).unwrap(), sig));
                    }
                }
            }
        }
        Bucket { objects }
    }

    fn set_signature(&mut self, key: &str, signature: Option<String>) {
        self.objects.get_mut(key).expect("sample digest").1 = signature;
    }

    fn signature(&self, key: &str) -> String {
        self.objects[key].1.clone().expect("sample signature")
    }
}

impl ObjectSource for Bucket {
    fn open(
        &self,
        bucket: &str,
        key: &str,
        _: Option<&str>,
    ) -> muster_core::Result<Option<OpenedObject>> {
        Ok(self.objects.get(key).map(|(b, sig)| OpenedObject {
            meta: ObjectMeta {
                bucket: bucket.into(),
                key: key.into(),
                signature: sig.clone(),
                signature_algorithm: sig.as_ref().map(|_| "SHA256withRSA".into()),
                ..Default::default()
            },
            body: Box::new(std::io::Cursor::new(b.clone())),
        }))
    }
}

/// What ListPublicKeys answers.
#[derive(Clone)]
enum Keys {
    /// The sample keys (public-keys.json).
    Samples,
    /// Keys, but none with the digests' fingerprint.
    Others,
    /// Fails, retryably (throttled) or not (AccessDenied).
    Fails(bool),
}

/// The region and time range (epoch ms) a call asked about.
type Asked = (String, Option<(i64, i64)>);

struct FakeKeys {
    answer: Keys,
    calls: AtomicUsize,
    asked: Mutex<Vec<Asked>>,
}

impl FakeKeys {
    fn new(answer: Keys) -> Self {
        FakeKeys {
            answer,
            calls: AtomicUsize::new(0),
            asked: Mutex::new(Vec::new()),
        }
    }
}

fn sample_keys() -> Vec<PublicKey> {
    let text =
        std::fs::read_to_string(events().join("cloudtrail-digest/public-keys.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["PublicKeyList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| PublicKey {
            fingerprint: k["Fingerprint"].as_str().unwrap().into(),
            der: aws_smithy_types::base64::decode(k["Value"].as_str().unwrap()).unwrap(),
        })
        .collect()
}

impl PublicKeySource for FakeKeys {
    fn public_keys(
        &self,
        region: &str,
        range: Option<(i64, i64)>,
    ) -> muster_core::Result<Vec<PublicKey>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.asked.lock().unwrap().push((region.into(), range));
        match self.answer {
            Keys::Samples => Ok(sample_keys()),
            Keys::Others => Ok(sample_keys()
                .into_iter()
                .map(|k| PublicKey {
                    fingerprint: "00000000000000000000000000000000".into(),
                    ..k
                })
                .collect()),
            Keys::Fails(true) => Err(muster_core::Error::sink(
                "CloudTrail ListPublicKeys",
                "ThrottlingException: Rate exceeded",
                true,
            )),
            Keys::Fails(false) => Err(muster_core::Error::sink(
                "CloudTrail ListPublicKeys",
                "AccessDeniedException: not authorized to perform cloudtrail:ListPublicKeys",
                false,
            )),
        }
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

/// One hex digit of a signature changed.
fn tampered(sig: &str) -> String {
    let mut s = sig.to_owned();
    let last = if s.ends_with('0') { "1" } else { "0" };
    s.replace_range(s.len() - 1.., last);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arriving_digest_has_its_signature_checked_against_cloudtrails_keys() {
    type Change = fn(&mut Bucket);
    /// Case, DIGEST_SIGNATURES, what ListPublicKeys answers, change to the bucket,
    /// signature status and text in its reason, detection titles.
    type Case<'a> = (
        &'a str,
        &'a str,
        Keys,
        Change,
        (&'a str, &'a str),
        &'a [&'a str],
    );
    let cases: Vec<Case> = vec![
        ("valid", "true", Keys::Samples, |_| {}, ("valid", ""), &[]),
        (
            "tampered signature",
            "true",
            Keys::Samples,
            |b| {
                let key = format!("{DIR}/{D3}");
                let sig = tampered(&b.signature(&key));
                b.set_signature(&key, Some(sig));
            },
            ("invalid", "does not match"),
            &["CloudTrail digest signature invalid"],
        ),
        (
            "signature not hex",
            "true",
            Keys::Samples,
            |b| b.set_signature(&format!("{DIR}/{D3}"), Some("not-hex".into())),
            ("invalid", "not hex"),
            &["CloudTrail digest signature invalid"],
        ),
        (
            "no key with the digest's fingerprint",
            "true",
            Keys::Others,
            |_| {},
            ("invalid", "no public key with fingerprint"),
            &["CloudTrail digest signature invalid"],
        ),
        (
            "keys throttled",
            "true",
            Keys::Fails(true),
            |_| {},
            ("not_checked", "ThrottlingException"),
            &[],
        ),
        (
            "keys access denied",
            "true",
            Keys::Fails(false),
            |_| {},
            ("not_checked", "AccessDenied"),
            &[],
        ),
        (
            "checks off",
            "false",
            Keys::Samples,
            |_| {},
            ("not_checked", "DIGEST_SIGNATURES is off"),
            &[],
        ),
        (
            "no signature metadata",
            "true",
            Keys::Samples,
            |b| b.set_signature(&format!("{DIR}/{D3}"), None),
            ("not_checked", "x-amz-meta-signature"),
            &[],
        ),
        (
            "previous digest's signature replaced",
            "true",
            Keys::Samples,
            |b| {
                let key = format!("{DIR}/{D2}");
                let sig = tampered(&b.signature(&key));
                b.set_signature(&key, Some(sig));
            },
            ("valid", ""),
            &["CloudTrail digest chain broken"],
        ),
    ];
    for (name, flag, keys, change, (status, reason), titles) in cases {
        let mut bucket = Bucket::samples();
        change(&mut bucket);
        let config = Config::from_lookup(|n| match n {
            "OUTPUT_BUCKET" => Some("lake".into()),
            "DIGEST_SIGNATURES" => Some(flag.into()),
            _ => None,
        })
        .expect("config");
        let store = Arc::new(MemoryStore::new());
        let bus = Arc::new(Bus::default());
        let fake = Arc::new(FakeKeys::new(keys.clone()));
        let handler = Handler::new(
            config,
            Ports {
                source: Arc::new(bucket),
                lake: store.clone(),
                quarantine: store.clone(),
                metrics: Arc::new(NoMetrics),
            },
        )
        .with_detections(bus.clone(), RuleSet::builtin())
        .with_public_keys(fake.clone());
        // Twice: the second arrival (a redelivery) is served from the key cache.
        for round in 0..2 {
            let r = match handler.handle(s3_event(&format!("{DIR}/{D3}"))).await {
                Ok(r) => r,
                Err(HandlerError::Retryable { first, .. }) => {
                    panic!("{name}: a signature problem must not fail the object: {first}")
                }
                Err(e) => panic!("{name}: {e}"),
            };
            let object = &r["objects"][0];
            assert_eq!(object["status"], "done", "{name}: {r:#}");
            let signature = &object["integrity"]["signature"];
            assert_eq!(signature["status"], status, "{name}: {r:#}");
            let why = signature["reason"].as_str().unwrap_or_default();
            assert!(why.contains(reason), "{name}: {why}");
            // Hashes are checked whatever became of the signature.
            assert_eq!(object["integrity"]["verified"], 1, "{name}: {r:#}");
            assert_eq!(
                object["integrity"]["detections"],
                titles.len(),
                "{name} round {round}: {r:#}"
            );
        }
        let published = bus.0.lock().unwrap();
        let got: Vec<&str> = published.iter().map(|d| d.title.as_str()).collect();
        assert_eq!(got.len(), 2 * titles.len(), "{name}: {got:?}");
        for (g, t) in got.iter().zip(titles.iter().cycle()) {
            assert!(g.starts_with(t), "{name}: {g}");
        }
        for d in published.iter() {
            assert_eq!(d.rule_id, "cloudtrail-log-file-integrity");
            assert_eq!(d.severity, muster_core::detect::SeverityLabel::High);
        }
        let calls = fake.calls.load(Ordering::SeqCst);
        let asked = fake.asked.lock().unwrap();
        let want_calls = match (flag, &keys) {
            // No signature to check with a key: no key is asked for.
            _ if ["signature not hex", "no signature metadata"].contains(&name) => 0,
            ("false", _) => 0,
            // Found the first time, then cached.
            (_, Keys::Samples) => 1,
            // The digest's hour, then the current keys; twice, as nothing was found.
            (_, Keys::Others) => 4,
            // Failures are not cached: the next digest asks again.
            (_, Keys::Fails(_)) => 2,
        };
        assert_eq!(calls, want_calls, "{name}: {asked:?}");
        if let Some((region, range)) = asked.first() {
            assert_eq!(region, "us-east-1", "{name}");
            // digestStartTime..digestEndTime of the 13:00 digest.
            assert_eq!(
                *range,
                Some((1_715_774_400_000, 1_715_778_000_000)),
                "{name}"
            );
        }
    }
}
