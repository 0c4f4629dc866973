//! The EMF documents for our CloudTrail samples carry exactly the authentication and
//! data-access counts of their records, counted here from the raw records on their own.

mod common;

use common::*;
use muster_core::metrics::all_metrics;
use muster_core::normalize::Settings;
use std::collections::BTreeMap;
use std::io::Read;

const SAMPLES: &[&str] = &[
    "cloudtrail/AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/14/111122223333_CloudTrail_us-east-1_20240514T0000Z_muster01.json.gz",
    "cloudtrail/AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/15/111122223333_CloudTrail_us-east-1_20240515T1200Z_rules01.json.gz",
];

#[derive(Debug, Default, PartialEq)]
struct Counts {
    success: u64,
    failure: u64,
    data_access: BTreeMap<String, u64>,
}

/// Straight from CloudTrail's documented fields: a console sign-in's outcome is
/// `responseElements.ConsoleLogin`; a data event has `managementEvent: false`, and its
/// resource type is the type of the first of its `resources`.
fn count_records(records: &[serde_json::Value]) -> Counts {
    let mut c = Counts::default();
    for r in records {
        if r["eventName"] == "ConsoleLogin" {
            match r["responseElements"]["ConsoleLogin"].as_str() {
                Some("Success") => c.success += 1,
                Some("Failure") => c.failure += 1,
                other => panic!("a ConsoleLogin without an outcome: {other:?}"),
            }
        }
        if r["managementEvent"] == false {
            let t = r["resources"][0]["type"]
                .as_str()
                .expect("data events name resources");
            *c.data_access.entry(t.to_string()).or_default() += 1;
        }
    }
    c
}

fn count_emf(docs: &[String], namespace: &str, timestamp: i64) -> Counts {
    let mut c = Counts::default();
    for doc in docs {
        let d: serde_json::Value = serde_json::from_str(doc).unwrap();
        let spec = &d["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(d["_aws"]["Timestamp"], timestamp, "{d}");
        assert_eq!(spec["Namespace"], namespace, "{d}");
        let dims = spec["Dimensions"][0].as_array().unwrap();
        // EMF: every dimension and metric named in the directive is a member of the document.
        for dim in dims {
            assert!(d[dim.as_str().unwrap()].is_string(), "{d}");
        }
        for m in spec["Metrics"].as_array().unwrap() {
            assert!(d[m["Name"].as_str().unwrap()].is_u64(), "{d}");
            assert_eq!(m["Unit"], "Count");
        }
        let metric = spec["Metrics"][0]["Name"].as_str().unwrap();
        match metric {
            "AuthenticationAttempts" => {
                assert_eq!(dims.len(), 1);
                assert_eq!(dims[0], "Result");
                let n = d[metric].as_u64().unwrap();
                match d["Result"].as_str() {
                    Some("Success") => c.success += n,
                    Some("Failure") => c.failure += n,
                    other => panic!("Result {other:?}"),
                }
            }
            "DataAccess" => {
                assert_eq!(dims.len(), 1);
                assert_eq!(dims[0], "ResourceType");
                let t = d["ResourceType"].as_str().unwrap().to_string();
                assert!(
                    c.data_access
                        .insert(t, d[metric].as_u64().unwrap())
                        .is_none(),
                    "one document per resource type: {d}"
                );
            }
            "RecordsIn" => {}
            other => panic!("unexpected metric {other}: {d}"),
        }
    }
    c
}

#[test]
fn emf_counts_match_the_records() {
    for sample in SAMPLES {
        let bytes = std::fs::read(events_dir().join(sample)).unwrap();
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let want = count_records(doc["Records"].as_array().unwrap());
        assert!(
            want.success > 0 && want.failure > 0 && !want.data_access.is_empty(),
            "{sample}: the sample should exercise every metric: {want:?}"
        );

        let key = sample.strip_prefix("cloudtrail/").unwrap();
        let (outcome, _) = run_bytes(key, bytes, &Settings::default());
        assert!(outcome.error.is_none(), "{sample}: {:?}", outcome.error);
        let docs = all_metrics("Muster/Test", &outcome.summary, 1_715_774_400_000);
        let got = count_emf(&docs, "Muster/Test", 1_715_774_400_000);
        assert_eq!(got, want, "{sample}");
    }
}
