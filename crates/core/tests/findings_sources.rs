//! GuardDuty and Security Hub findings through the whole normaliser: our samples in
//! events/ (written after AWS's documented formats), the third-party corpus
//! (MUSTER_CORPUS), and the odd inputs real files hold.

mod common;

use common::*;
use muster_core::normalize::Settings;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// (where, path, source, records_out, quarantined, skipped, events by class).
type FileCase = (
    Where,
    &'static str,
    &'static str,
    u64,
    u64,
    u64,
    &'static [(u32, u64)],
);

#[derive(Clone, Copy)]
enum Where {
    Events,
    Corpus,
}

const FILES: &[FileCase] = &[
    (Where::Events, "guardduty/AWSLogs/123456789012/GuardDuty/us-east-1/2026/11/20/4d1c5a2e-8f3b-4c6d-9e0f-1a2b3c4d5e6f.jsonl.gz", "guardduty", 8, 0, 0, &[(2004, 8)]),
    (Where::Events, "guardduty/AWSLogs/123456789012/GuardDuty/eu-west-1/2026/11/20/7e8f9a0b-1c2d-4e3f-8a5b-6c7d8e9f0a1b.jsonl.gz", "guardduty", 1, 0, 0, &[(2004, 1)]),
    (Where::Events, "guardduty/cli/get-findings.json", "guardduty", 2, 0, 0, &[(2004, 2)]),
    (Where::Events, "guardduty/array/findings.json", "guardduty", 2, 0, 0, &[(2004, 2)]),
    (Where::Events, "securityhub/firehose/2026/11/20/12/muster-securityhub-1-2026-11-20-12-35-00-3b4c5d6e-7f80-4a91-b2c3-d4e5f6a7b8c9.gz", "securityhub", 5, 0, 0, &[(2003, 3), (2004, 2)]),
    (Where::Events, "securityhub/firehose-newline/2026/11/20/12/muster-securityhub-nl-1-2026-11-20-12-35-00-8c9d0e1f-2a3b-4c5d-9e6f-7a8b9c0d1e2f.gz", "securityhub", 3, 0, 0, &[(2003, 1), (2004, 2)]),
    (Where::Events, "securityhub/get-findings/findings.json", "securityhub", 2, 0, 0, &[(2004, 2)]),
    (Where::Corpus, "guardduty/foxsec_guardduty-sample-findings.jsonl", "guardduty", 20, 0, 0, &[(2004, 20)]),
    (Where::Corpus, "guardduty/foxsec_guardduty-sample-findings-with-duplicates.jsonl", "guardduty", 5, 0, 0, &[(2004, 5)]),
    (Where::Corpus, "securityhub/asr_eb_imported_CIS-1.4.json", "securityhub", 1, 0, 0, &[(2003, 1)]),
    (Where::Corpus, "securityhub/asr_eb_customaction_CIS_1-6-multi-select.json", "securityhub", 2, 0, 0, &[(2003, 2)]),
    (Where::Corpus, "securityhub/asr_asff_afsbp-rds.5.json", "securityhub", 1, 0, 0, &[(2003, 1)]),
    (Where::Corpus, "securityhub/asr_asff_afsbp-ec2.2.json", "securityhub", 1, 0, 0, &[(2003, 1)]),
];

fn root(w: Where) -> Option<PathBuf> {
    match w {
        Where::Events => Some(events_dir()),
        Where::Corpus => std::env::var_os("MUSTER_CORPUS").map(PathBuf::from),
    }
}

/// Every event of every file above, by (`finding_info.uid`, product name), last
/// one wins (GuardDuty's findings come again through Security Hub, under the same id).
fn all_events() -> BTreeMap<(String, String), Value> {
    let mut by_uid = BTreeMap::new();
    for (w, path, ..) in FILES {
        let Some(root) = root(*w) else { continue };
        let bytes = std::fs::read(root.join(path)).unwrap();
        let (_, store) = run_bytes(path, bytes, &Settings::default());
        for (_, e) in lake_events(&store) {
            let uid = e["finding_info"]["uid"].as_str().unwrap().to_string();
            let product = e["metadata"]["product"]["name"]
                .as_str()
                .unwrap()
                .to_string();
            by_uid.insert((uid, product), e);
        }
    }
    by_uid
}

#[test]
fn sample_files_map_every_finding() {
    let mut seen = 0;
    for (w, path, source, out, quarantined, skipped, classes) in FILES {
        let Some(root) = root(*w) else {
            eprintln!("MUSTER_CORPUS is not set: {path} skipped");
            continue;
        };
        seen += 1;
        let bytes = std::fs::read(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        let (outcome, store) = run_bytes(path, bytes, &Settings::default());
        let s = &outcome.summary;
        assert!(outcome.error.is_none(), "{path}: {:?}", outcome.error);
        assert_eq!(s.source, Some(*source), "{path}: source");
        assert_eq!(
            (s.records_in, s.records_out, s.quarantined, s.skipped),
            (out + quarantined, *out, *quarantined, *skipped),
            "{path}: in/out/quarantined/skipped; quarantine: {:?}",
            quarantine_records(&store)
        );
        let want: BTreeMap<u32, u64> = classes.iter().copied().collect();
        assert_eq!(s.by_class, want, "{path}: classes");
        for (key, e) in lake_events(&store) {
            let here = format!("{path} -> {key}");
            assert_event_invariants(&here, &e);
            assert_finding_invariants(&here, &e);
        }
    }
    assert!(seen > 0);
}

/// What every finding event must hold, whatever its source.
fn assert_finding_invariants(here: &str, e: &Value) {
    let class = e["class_uid"].as_u64().unwrap();
    assert!(class == 2003 || class == 2004, "{here}: class {class}");
    let fi = &e["finding_info"];
    assert!(
        fi["uid"].is_string() && fi["title"].is_string(),
        "{here}: finding_info {fi}"
    );
    assert_eq!(
        e["metadata"]["profiles"],
        serde_json::json!(["cloud"]),
        "{here}"
    );
    assert_eq!(e["cloud"]["provider"], "AWS", "{here}");
    assert_eq!(
        e["time"], fi["modified_time"],
        "{here}: time is the finding's update"
    );
    if class == 2003 {
        assert!(
            e["compliance"]["standards"]
                .as_array()
                .is_some_and(|s| !s.is_empty()),
            "{here}"
        );
        assert!(
            e.get("resources").is_none(),
            "{here}: 2003 has one resource"
        );
    } else {
        assert!(e.get("compliance").is_none(), "{here}");
    }
    let json = e.to_string();
    assert!(!json.contains("null"), "{here}: a null was written: {json}");
}

/// (uid ending, class, activity, severity_id, status_id, account, region, resource types,
/// product name)
type Expect = (
    &'static str,
    u64,
    u64,
    u64,
    u64,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static str,
);

#[test]
fn findings_are_mapped_as_documented() {
    let events = all_events();
    let cases: &[Expect] = &[
        // GuardDuty: first sighting, Low.
        ("finding/a1b2c3d4e5f60718293a4b5c6d7e8f90", 2004, 1, 2, 1, "123456789012", "us-east-1", &["AwsEc2Instance"], "Amazon GuardDuty"),
        // Count 7 and a later updatedAt: Update (this one from the AWS CLI's PascalCase).
        ("finding/b2c3d4e5f60718293a4b5c6d7e8f90a1", 2004, 2, 3, 1, "123456789012", "us-east-1", &["AwsEc2Instance"], "Amazon GuardDuty"),
        ("finding/c3d4e5f60718293a4b5c6d7e8f90a1b2", 2004, 2, 4, 1, "123456789012", "us-east-1", &["AwsIamAccessKey", "AwsS3Bucket", "AwsS3Bucket"], "Amazon GuardDuty"),
        ("finding/e5f60718293a4b5c6d7e8f90a1b2c3d4", 2004, 1, 5, 1, "123456789012", "us-east-1", &["AwsEksCluster"], "Amazon GuardDuty"),
        // Archived by a suppression rule: Close, Suppressed.
        ("finding/f60718293a4b5c6d7e8f90a1b2c3d4e5", 2004, 3, 3, 3, "123456789012", "us-east-1", &["AwsEc2Instance"], "Amazon GuardDuty"),
        ("finding/0718293a4b5c6d7e8f90a1b2c3d4e5f6", 2004, 1, 4, 1, "123456789012", "us-east-1", &["AwsLambdaFunction"], "Amazon GuardDuty"),
        ("finding/18293a4b5c6d7e8f90a1b2c3d4e5f607", 2004, 1, 3, 1, "123456789012", "us-east-1", &["AwsRdsDbInstance"], "Amazon GuardDuty"),
        // An administrator's export: the member account's partition.
        ("finding/293a4b5c6d7e8f90a1b2c3d4e5f60718", 2004, 1, 4, 1, "210987654321", "eu-west-1", &["AwsEc2Instance"], "Amazon GuardDuty"),
        // Corpus: a sample finding, High, on an instance.
        ("finding/e4fcb9e378ce3a8a3f3b3f2021df82e3", 2004, 2, 4, 1, "123456789012", "us-west-2", &["AwsEc2Instance"], "Amazon GuardDuty"),
        // Security Hub: consolidated control check, NOTIFIED.
        ("security-control/S3.8/finding/4f2d7c1e-9a0b-4c3d-8e5f-6a7b8c9d0e1f", 2003, 2, 4, 2, "123456789012", "us-east-1", &["AwsS3Bucket"], "Security Hub"),
        // Archived: Close; RESOLVED.
        ("EC2.19/finding/9e8d7c6b-5a49-4382-9170-a6b5c4d3e2f1", 2003, 3, 1, 4, "123456789012", "us-east-1", &["AwsEc2SecurityGroup"], "Security Hub"),
        // A third-party product through a Custom Action; SUPPRESSED.
        ("prowler-iam_root_mfa_enabled-123456789012-us-east-1-root", 2003, 1, 5, 3, "123456789012", "us-east-1", &["AwsAccount"], "Prowler"),
        ("inspector2:us-east-1:123456789012:finding/0f1e2d3c4b5a69788796a5b4c3d2e1f0", 2004, 2, 5, 1, "123456789012", "us-east-1", &["AwsEcrContainerImage"], "Inspector"),
        // Severity from Normalized only; region from the ProductArn.
        ("analyzer/org-analyzer/arn:aws:s3:::acme-public", 2004, 1, 4, 1, "123456789012", "us-east-1", &["AwsS3Bucket"], "IAM Access Analyzer"),
        ("3b2c1d0e9f8a7b6c5d", 2004, 1, 4, 1, "123456789012", "us-east-1", &["AwsS3Object"], "Macie"),
        ("cis-aws-foundations-benchmark/v/1.2.0/1.6/finding/524d1058-d8af-4549-80e6-e85872ea571e", 2003, 2, 1, 4, "111111111111", "us-east-1", &["AwsAccount"], "Security Hub"),
    ];
    for (uid_end, class, activity, severity, status, account, region, types, product) in cases {
        let Some(((uid, _), e)) = events
            .iter()
            .find(|((uid, p), _)| uid.ends_with(uid_end) && p == product)
        else {
            if uid_end.contains("e4fcb9e378ce") || uid_end.contains("524d1058") {
                continue; // corpus finding, MUSTER_CORPUS unset
            }
            panic!("no event for {uid_end}");
        };
        let got_types: Vec<&str> = match e.get("resources") {
            Some(r) => r
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["type"].as_str().unwrap())
                .collect(),
            None => vec![e["resource"]["type"].as_str().unwrap()],
        };
        assert_eq!(
            (
                e["class_uid"].as_u64().unwrap(),
                e["activity_id"].as_u64().unwrap(),
                e["severity_id"].as_u64().unwrap(),
                e["status_id"].as_u64().unwrap(),
                e["cloud"]["account"]["uid"].as_str().unwrap(),
                e["cloud"]["region"].as_str().unwrap(),
                got_types,
                e["metadata"]["product"]["name"].as_str().unwrap(),
            ),
            (
                *class,
                *activity,
                *severity,
                *status,
                *account,
                *region,
                types.to_vec(),
                *product
            ),
            "{uid}"
        );
    }
}

#[test]
fn details_land_where_documented() {
    let events = all_events();
    let get = |end: &str, product: &str| {
        events
            .iter()
            .find(|((uid, p), _)| uid.ends_with(end) && p == product)
            .map(|(_, e)| e.clone())
            .unwrap_or_else(|| panic!("no event for {end}"))
    };
    let gd = get(
        "finding/b2c3d4e5f60718293a4b5c6d7e8f90a1",
        "Amazon GuardDuty",
    );
    assert_eq!(gd["count"], 7);
    assert_eq!(
        gd["finding_info"]["types"],
        serde_json::json!(["Recon:EC2/PortProbeUnprotectedPort"])
    );
    assert_eq!(gd["finding_info"]["first_seen_time"], 1_795_126_181_000_i64);
    // The AWS CLI's copy (read last) keeps its own PascalCase names in `unmapped`.
    assert_eq!(
        gd["unmapped"]["Service"]["Action"]["ActionType"],
        "PORT_PROBE"
    );
    let rds = get(
        "finding/18293a4b5c6d7e8f90a1b2c3d4e5f607",
        "Amazon GuardDuty",
    );
    assert_eq!(
        rds["unmapped"]["service"]["action"]["actionType"],
        "RDS_LOGIN_ATTEMPT"
    );
    assert_eq!(rds["unmapped"]["resource"]["resourceType"], "RDSDBInstance");
    assert_eq!(
        rds["unmapped"]["resource"]["rdsDbUserDetails"]["user"],
        "app_admin"
    );
    assert_eq!(gd["resources"][0]["uid"], "i-0abcd1234ef567890");
    assert_eq!(gd["resources"][0]["cloud_partition"], "aws");
    assert_eq!(
        gd["finding_info"]["product_uid"],
        "arn:aws:securityhub:us-east-1::product/aws/guardduty"
    );

    // Escapes in strings, and nulls dropped from the verbatim details.
    let creds = get(
        "finding/d4e5f60718293a4b5c6d7e8f90a1b2c3",
        "Amazon GuardDuty",
    );
    assert_eq!(
        creds["finding_info"]["title"],
        "Credentials for instance role \"web-role\" used from external IP address."
    );
    assert!(creds["finding_info"]["desc"]
        .as_str()
        .unwrap()
        .contains("web-role\nhave been used"));
    let ssh = get(
        "finding/a1b2c3d4e5f60718293a4b5c6d7e8f90",
        "Amazon GuardDuty",
    );
    assert!(ssh["resources"][0]["data"].get("platform").is_none());

    let control = get(
        "security-control/S3.8/finding/4f2d7c1e-9a0b-4c3d-8e5f-6a7b8c9d0e1f",
        "Security Hub",
    );
    assert_eq!(
        control["compliance"],
        serde_json::json!({
            "standards": ["standards/aws-foundational-security-best-practices/v/1.0.0", "standards/cis-aws-foundations-benchmark/v/3.0.0"],
            "control": "S3.8",
            "requirements": ["CIS AWS Foundations Benchmark v3.0.0/2.1.4"],
            "status_id": 3,
            "status": "Fail",
        })
    );
    assert_eq!(control["comment"], "Ticket SEC-1042 opened");
    assert_eq!(
        control["remediation"]["references"][0],
        "https://docs.aws.amazon.com/console/securityhub/S3.8/remediation"
    );
    assert_eq!(
        control["finding_info"]["analytic"]["uid"],
        "security-control/S3.8"
    );
    assert_eq!(
        control["metadata"]["log_name"],
        "Security Hub Findings - Imported"
    );
    assert_eq!(
        control["unmapped"]["eventbridge"]["id"],
        "6a1b2c3d-0001-4e5f-8a9b-0c1d2e3f4a5b"
    );

    let prowler = get(
        "prowler-iam_root_mfa_enabled-123456789012-us-east-1-root",
        "Prowler",
    );
    assert_eq!(prowler["metadata"]["product"]["vendor_name"], "Prowler");
    assert_eq!(prowler["confidence_score"], 80);
    assert_eq!(
        prowler["unmapped"]["eventbridge"]["actionName"],
        "Send to ticket"
    );
    assert_eq!(
        prowler["compliance"]["standards"],
        serde_json::json!(["prowler-iam_root_mfa_enabled"])
    );

    let gd_via_sh = get(
        "detector/12abc34d567e8fa901bc2d34e56789f0/finding/a1b2c3d4e5f60718293a4b5c6d7e8f90",
        "GuardDuty",
    );
    assert_eq!(gd_via_sh["metadata"]["product"]["vendor_name"], "AWS");
    assert_eq!(gd_via_sh["resources"][0]["data"]["Tags"]["Name"], "web-1");
    assert_eq!(gd_via_sh["unmapped"]["Network"]["DestinationPort"], 22);
}

/// (name, key, bytes, records_out, quarantined, skipped, a reason each quarantined
/// record's text must contain, in order)
type OddCase = (
    &'static str,
    &'static str,
    Vec<u8>,
    u64,
    u64,
    u64,
    &'static [&'static str],
);

fn gd_finding(id: &str, extra: &str) -> String {
    format!(
        r#"{{"schemaVersion":"2.0","accountId":"123456789012","region":"us-east-1","partition":"aws","id":"{id}","arn":"arn:aws:guardduty:us-east-1:123456789012:detector/d/finding/{id}","type":"Recon:EC2/Portscan","resource":{{"resourceType":"Instance","instanceDetails":{{"instanceId":"i-1"}}}},"service":{{"count":1,"archived":false}},"severity":5,"createdAt":"2026-11-20T08:00:00Z","updatedAt":"2026-11-20T08:00:00Z","title":"t {id}"{extra}}}"#
    )
}

fn sh_finding(id: &str) -> String {
    format!(
        r#"{{"SchemaVersion":"2018-10-08","Id":"{id}","ProductArn":"arn:aws:securityhub:us-east-1::product/aws/macie","GeneratorId":"g","AwsAccountId":"123456789012","Types":["t"],"CreatedAt":"2026-11-20T08:00:00Z","UpdatedAt":"2026-11-20T08:00:00Z","Severity":{{"Label":"LOW"}},"Title":"title {id}","Description":"d","Resources":[{{"Type":"Other","Id":"r"}}]}}"#
    )
}

fn sh_envelope(findings: &[String]) -> String {
    format!(
        r#"{{"version":"0","id":"e","detail-type":"Security Hub Findings - Imported","source":"aws.securityhub","account":"123456789012","time":"2026-11-20T08:00:01Z","region":"us-east-1","resources":[],"detail":{{"findings":[{}]}}}}"#,
        findings.join(",")
    )
}

const GD_KEY: &str = "AWSLogs/123456789012/GuardDuty/us-east-1/2026/11/20/x.jsonl.gz";

#[test]
fn odd_inputs_are_mapped_or_quarantined_with_their_reason() {
    let (a, b, c) = (
        gd_finding("a", ""),
        gd_finding("b", ""),
        gd_finding("c", ""),
    );
    let cases: Vec<OddCase> = vec![
        (
            "GuardDuty lines with a line of junk and a cut-short last line",
            GD_KEY,
            gzip(format!("{a}\nnot json at all\n{b}\n{}", &c[..c.len() / 2]).as_bytes()),
            2,
            2,
            0,
            &["not JSON", "not JSON"],
        ),
        (
            "GuardDuty findings without a title, with a bad timestamp, with a string severity",
            GD_KEY,
            format!(
                "{}\n{}\n{}\n",
                a.replace(r#","title":"t a""#, ""),
                gd_finding("d", r#","x":1"#).replace("2026-11-20T08:00:00Z\",\"title", "yesterday\",\"title"),
                gd_finding("e", "").replace(r#""severity":5"#, r#""severity":"7.5""#),
            )
            .into_bytes(),
            1,
            2,
            0,
            &["no title", "not an RFC 3339 timestamp"],
        ),
        (
            "an EventBridge event of another detail-type in a GuardDuty file",
            GD_KEY,
            format!(r#"{{"detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","detail":{{}}}}{}{a}{}"#, "\n", "\n").into_bytes(),
            1,
            1,
            0,
            &["not a GuardDuty finding"],
        ),
        (
            "GuardDuty {\"findings\":[...]} with a broken element",
            "gd/get-findings.json",
            format!(r#"{{"findings":[{a},{{"schemaVersion":"2.0","arn":"arn:aws:guardduty:x",{b}]}}"#).into_bytes(),
            2,
            1,
            0,
            &["not JSON"],
        ),
        (
            "Firehose: Security Hub events concatenated, the last cut short",
            "sh/2026/11/20/12/stream-1-2026-11-20-12-00-00-x",
            gzip(format!(
                "{}{}{}",
                sh_envelope(&[sh_finding("1"), sh_finding("2")]),
                sh_envelope(&[sh_finding("3")]),
                &sh_envelope(&[sh_finding("4")])[..200]
            ).as_bytes()),
            3,
            1,
            0,
            &["truncated"],
        ),
        (
            "an event with no findings is skipped; a finding without an Id is quarantined alone",
            "sh/2026/11/20/12/stream-2",
            format!(
                "{}\n{}\n",
                sh_envelope(&[]),
                sh_envelope(&[sh_finding("5"), sh_finding("6").replace(r#""Id":"6","#, "")])
            ).into_bytes(),
            1,
            1,
            1,
            &["no Id"],
        ),
        (
            "bare ASFF findings, pretty-printed one after another",
            "sh/asff.json",
            format!(
                "{}\n{}\n",
                serde_json::to_string_pretty(&serde_json::from_str::<Value>(&sh_finding("7")).unwrap()).unwrap(),
                serde_json::to_string_pretty(&serde_json::from_str::<Value>(&sh_finding("8")).unwrap()).unwrap(),
            ).into_bytes(),
            2,
            0,
            0,
            &[],
        ),
        (
            "findings as one JSON array",
            "sh/array.json",
            format!("[{},{}]", sh_finding("9"), sh_finding("10")).into_bytes(),
            2,
            0,
            0,
            &[],
        ),
    ];
    for (name, key, bytes, out, quarantined, skipped, reasons) in cases {
        let (outcome, store) = run_bytes(key, bytes, &Settings::default());
        let s = &outcome.summary;
        let q = quarantine_records(&store);
        assert!(outcome.error.is_none(), "{name}: {:?}", outcome.error);
        assert_eq!(
            (s.records_in, s.records_out, s.quarantined, s.skipped),
            (out + quarantined, out, quarantined, skipped),
            "{name}: {q:?}"
        );
        assert_eq!(q.len(), reasons.len(), "{name}: {q:?}");
        for (record, want) in q.iter().zip(reasons.iter()) {
            let reason = record["reason"].as_str().unwrap();
            assert!(
                reason.contains(want),
                "{name}: {reason:?} should say {want:?}"
            );
            assert!(record["line"].is_u64(), "{name}: {record}");
        }
        for (k, e) in lake_events(&store) {
            assert_event_invariants(&format!("{name} -> {k}"), &e);
            assert_finding_invariants(&format!("{name} -> {k}"), &e);
        }
    }
}

#[test]
fn an_oversized_record_is_quarantined_not_buffered() {
    let settings = Settings {
        max_record_bytes: 2048,
        ..Settings::default()
    };
    let big = sh_finding("big").replace(
        r#""Description":"d""#,
        &format!(r#""Description":"{}""#, "x".repeat(5000)),
    );
    let bytes = format!("{}{}{}", sh_finding("1"), big, sh_finding("2")).into_bytes();
    let (outcome, store) = run_bytes("sh/stream", bytes, &settings);
    let s = &outcome.summary;
    assert_eq!((s.records_out, s.quarantined), (2, 1));
    let q = quarantine_records(&store);
    assert!(
        q[0]["reason"]
            .as_str()
            .unwrap()
            .contains("over the limit of 2048 bytes"),
        "{q:?}"
    );
}

/// Mutated samples never panic either source, and nothing is lost (robustness.rs
/// does the same for the log sources).
#[test]
fn mutated_findings_never_panic_and_lose_nothing() {
    use muster_core::sources::SourceKind;
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for (source, dir) in [
        (SourceKind::GuardDuty, "guardduty"),
        (SourceKind::SecurityHub, "securityhub"),
    ] {
        let settings = Settings {
            source: Some(source),
            max_record_bytes: 4096,
            ..Settings::default()
        };
        for path in files_under(&events_dir().join(dir)) {
            if path.extension().is_some_and(|e| e == "py") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let mut text = Vec::new();
            if std::io::Read::read_to_end(
                &mut flate2::read::MultiGzDecoder::new(&bytes[..]),
                &mut text,
            )
            .is_err()
            {
                text = bytes;
            }
            for round in 0..150 {
                let mut input = text.clone();
                for _ in 0..=(next() % 6) {
                    if input.is_empty() {
                        break;
                    }
                    let at = (next() % input.len() as u64) as usize;
                    match next() % 4 {
                        0 => input[at] = next() as u8,
                        1 => input.truncate(at),
                        2 => {
                            input.remove(at);
                        }
                        _ => input.insert(at, b"{}[]\",:\\\n"[(next() % 9) as usize]),
                    }
                }
                let (outcome, store) = run_bytes("x", input, &settings);
                let s = &outcome.summary;
                let here = format!("{} round {round}", path.display());
                assert_eq!(s.records_in, s.records_out + s.quarantined, "{here}");
                let events = lake_events(&store);
                assert_eq!(events.len() as u64, s.records_out, "{here}");
                for (_, e) in events {
                    assert_event_invariants(&here, &e);
                }
            }
        }
    }
}
