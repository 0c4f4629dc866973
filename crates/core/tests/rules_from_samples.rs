//! Every built-in detection rule over our own CloudTrail sample written for them
//! (events/cloudtrail/…/2024/05/15/…_rules01.json.gz, see make-samples.py): for each
//! rule a record that must fire it and a near miss that must not, as the mapper
//! really shapes them.

mod common;

use common::*;
use muster_core::detect::{Detection, RuleSet};
use muster_core::normalize::{normalize_object_with, Settings};
use muster_core::ports::memory::MemoryStore;
use muster_core::ports::{DetectionBus, ObjectMeta, OpenedObject};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::{Arc, Mutex};

const RULES_SAMPLE: &str = "cloudtrail/AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/15/111122223333_CloudTrail_us-east-1_20240515T1200Z_rules01.json.gz";

#[derive(Default)]
struct Collect(Mutex<Vec<Detection>>);

impl DetectionBus for Collect {
    fn publish(&self, detections: &[Detection]) -> muster_core::Result<()> {
        self.0.lock().unwrap().extend_from_slice(detections);
        Ok(())
    }
}

fn uid(n: u32) -> String {
    format!("5d2c7a10-3b4e-4f6a-9c8d-{n:012}")
}

const CW: &str = "muster.cis.cloudwatch.";
const ORGS: &str = "muster.cis.organizations";
const BURST: &str = "muster.auth.repeated-failures";

/// eventID number → the rules that must fire on that record; an empty list is a near
/// miss that must fire nothing.
fn expected() -> Vec<(u32, Vec<String>, &'static str)> {
    let cw = |n: u32| format!("{CW}{n}");
    let mut table = vec![
        (1, vec![cw(1)], "root calls GetAccountSummary itself"),
        (
            2,
            vec![],
            "root's LookupEvents invoked by support.amazonaws.com",
        ),
        (
            3,
            vec![cw(2)],
            "StopLogging refused (AccessDenied): not CloudWatch.5",
        ),
        (4, vec![cw(2)], "RunInstances Client.UnauthorizedOperation"),
        (
            5,
            vec![],
            "DescribeSecurityGroups failed with InvalidGroup.NotFound",
        ),
        (6, vec![cw(3)], "IAM user console sign-in without MFA"),
        (7, vec![], "IAM user console sign-in with MFA"),
        (8, vec![cw(4)], "PutUserPolicy"),
        (9, vec![], "GetPolicy"),
        (10, vec![cw(5)], "StopLogging"),
        (11, vec![], "DescribeTrails"),
        (12, vec![cw(6)], "one failed sign-in"),
        (13, vec![cw(7)], "DisableKey"),
        (14, vec![], "DescribeKey"),
        (15, vec![cw(8)], "PutBucketPolicy"),
        (16, vec![], "GetBucketPolicy"),
        (17, vec![cw(9)], "StopConfigurationRecorder"),
        (18, vec![], "DescribeConfigurationRecorders"),
        (19, vec![cw(10)], "AuthorizeSecurityGroupIngress"),
        (20, vec![], "DescribeSecurityGroups"),
        (21, vec![cw(11)], "CreateNetworkAclEntry"),
        (22, vec![], "DescribeNetworkAcls"),
        (23, vec![cw(12)], "AttachInternetGateway"),
        (24, vec![], "DescribeInternetGateways"),
        (25, vec![cw(13)], "CreateRoute"),
        (26, vec![], "DescribeRouteTables"),
        (27, vec![cw(14)], "ModifyVpcAttribute"),
        (28, vec![], "DescribeVpcs"),
        (29, vec![ORGS.into()], "organizations AttachPolicy"),
        (30, vec![], "organizations ListAccounts"),
        (31, vec![], "S3 GetObject data event"),
        (32, vec![], "Lambda Invoke data event"),
    ];
    for n in 40..45 {
        table.push((n, vec![cw(6), BURST.into()], "5 failures from 203.0.113.50"));
    }
    for n in 50..54 {
        table.push((n, vec![cw(6)], "4 failures from 203.0.113.51: no burst"));
    }
    table
}

fn sample_records() -> Vec<serde_json::Value> {
    let path = events_dir().join(RULES_SAMPLE);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["Records"].as_array().unwrap().clone()
}

fn detect(key: &str) -> (Vec<Detection>, MemoryStore, u64) {
    let bytes = std::fs::read(events_dir().join(key)).unwrap();
    let key = key.strip_prefix("cloudtrail/").unwrap();
    let settings = Settings {
        rules: Some(Arc::new(RuleSet::builtin())),
        ..Settings::default()
    };
    let store = MemoryStore::new();
    let bus = Collect::default();
    let object = OpenedObject {
        meta: ObjectMeta {
            bucket: "test-bucket".into(),
            key: key.into(),
            size: Some(bytes.len() as u64),
            ..ObjectMeta::default()
        },
        body: Box::new(std::io::Cursor::new(bytes)),
    };
    let outcome = normalize_object_with(object, &settings, &store, &store, Some(&bus));
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    let s = &outcome.summary;
    assert_eq!(s.quarantined, 0, "every record maps: {s:?}");
    assert_eq!(s.records_in, s.records_out);
    (bus.0.into_inner().unwrap(), store, s.detections)
}

#[test]
fn every_rule_fires_on_its_record_and_not_on_its_near_miss() {
    let records = sample_records();
    let table = expected();
    // The table covers the file exactly: no record goes unchecked.
    let in_file: BTreeSet<String> = records
        .iter()
        .map(|r| r["eventID"].as_str().unwrap().to_string())
        .collect();
    let in_table: BTreeSet<String> = table.iter().map(|(n, _, _)| uid(*n)).collect();
    assert_eq!(in_file, in_table, "records vs table");
    assert_eq!(in_file.len(), records.len(), "event ids are unique");

    // Every built-in rule has a record that fires it.
    let covered: BTreeSet<&str> = table
        .iter()
        .flat_map(|(_, rules, _)| rules.iter().map(String::as_str))
        .collect();
    for rule in RuleSet::builtin().rules {
        assert!(
            covered.contains(rule.id.as_str()),
            "{} has no matching record",
            rule.id
        );
    }

    let (detections, store, published) = detect(RULES_SAMPLE);
    assert_eq!(published, detections.len() as u64);
    assert_eq!(lake_events(&store).len(), records.len());
    let mut fired: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for d in &detections {
        for u in &d.event_uids {
            fired
                .entry(u.clone())
                .or_default()
                .insert(d.rule_id.clone());
        }
    }
    let mut wrong = Vec::new();
    for (n, want, what) in &table {
        let want: BTreeSet<String> = want.iter().cloned().collect();
        let got = fired.remove(&uid(*n)).unwrap_or_default();
        if got != want {
            wrong.push(format!(
                "{} ({what}): fired {got:?}, want {want:?}",
                uid(*n)
            ));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
    assert!(fired.is_empty(), "uids outside the file: {fired:?}");
}

#[test]
fn the_burst_is_one_detection_with_all_five_uids() {
    let (detections, _, _) = detect(RULES_SAMPLE);
    let bursts: Vec<&Detection> = detections.iter().filter(|d| d.rule_id == BURST).collect();
    assert_eq!(bursts.len(), 1, "{bursts:#?}");
    let d = bursts[0];
    assert_eq!(d.event_uids, (40..45).map(uid).collect::<Vec<_>>());
    assert_eq!(d.src_ip.as_deref(), Some("203.0.113.50"));
    assert_eq!(d.first_seen, "2024-05-15T12:20:00.000Z");
    assert_eq!(d.time, "2024-05-15T12:20:40.000Z");
    assert_eq!(
        (d.account.as_str(), d.region.as_str()),
        ("111122223333", "us-east-1")
    );
    // Each detection points at something a finding can name.
    for d in &detections {
        assert!(
            !d.resource.id.is_empty() && !d.resource.type_.is_empty(),
            "{d:?}"
        );
    }
}
