//! Bad input gets a clear error or a quarantine record, and nothing else in the
//! file is lost.

mod common;

use common::*;
use muster_core::normalize::Settings;
use muster_core::Error;

const VPC_KEY: &str = "AWSLogs/111122223333/vpcflowlogs/us-east-1/2024/05/14/111122223333_vpcflowlogs_us-east-1_fl-1_20240514T0000Z_x.log.gz";
const CT_KEY: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/14/111122223333_CloudTrail_us-east-1_20240514T0000Z_x.json.gz";
const V2_HEADER: &str = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status";

fn vpc_row(i: u32) -> String {
    format!("2 111122223333 eni-0a1b2c3d4e5f67890 10.0.1.{} 203.0.113.12 4{:04} 443 6 10 8400 1715644800 1715644860 ACCEPT OK", i % 250, i % 10000)
}

fn ct_record(i: u32) -> String {
    format!(
        r#"{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::111122223333:user/alice","accountId":"111122223333","userName":"alice"}},"eventTime":"2024-05-14T00:00:{:02}Z","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.7","userAgent":"aws-cli/2","requestParameters":null,"responseElements":null,"requestID":"req-{i}","eventID":"evt-{i}","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333","eventCategory":"Management"}}"#,
        i % 60
    )
}

#[test]
fn truncated_gzip_keeps_what_came_before_and_says_where_it_broke() {
    let mut text = format!("{V2_HEADER}\n");
    for i in 0..5000 {
        text.push_str(&vpc_row(i));
        text.push('\n');
    }
    let gz = gzip(text.as_bytes());
    let cut = gz[..gz.len() * 2 / 3].to_vec();
    let (outcome, store) = run_bytes(VPC_KEY, cut, &Settings::default());
    let err = outcome.error.expect("a truncated gzip is an error");
    assert!(matches!(err, Error::Decompress { .. }), "{err}");
    assert!(
        !err.is_retryable(),
        "corrupt data does not improve with retries"
    );
    let s = &outcome.summary;
    assert!(
        s.records_out > 1000,
        "records before the cut are kept: {s:?}"
    );
    assert_eq!(s.records_in, s.records_out + s.quarantined);
    assert_eq!(lake_events(&store).len() as u64, s.records_out);
    let q = quarantine_records(&store);
    assert!(
        q.iter().any(|r| r["reason"]
            .as_str()
            .unwrap_or("")
            .contains("corrupt or truncated")),
        "{q:?}"
    );
}

#[test]
fn a_bad_line_in_the_middle_is_quarantined_and_its_neighbours_kept() {
    let text = format!(
        "{V2_HEADER}\n{}\nthis is not a flow log row\n{}\n",
        vpc_row(1),
        vpc_row(2)
    );
    let (outcome, store) = run_bytes(VPC_KEY, gzip(text.as_bytes()), &Settings::default());
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(
        (
            outcome.summary.records_in,
            outcome.summary.records_out,
            outcome.summary.quarantined
        ),
        (3, 2, 1)
    );
    let q = quarantine_records(&store);
    assert_eq!(q[0]["line"], 3);
    assert_eq!(q[0]["raw"], "this is not a flow log row");
    assert!(!q[0]["reason"].as_str().unwrap().is_empty());
}

#[test]
fn a_broken_cloudtrail_record_is_quarantined_and_its_neighbours_kept() {
    let doc = format!(
        "{{\"Records\":[{},{{\"eventVersion\":\"1.08\",\"eventTime\":\"yesterday\"}},{}]}}",
        ct_record(1),
        ct_record(2)
    );
    let (outcome, store) = run_bytes(CT_KEY, gzip(doc.as_bytes()), &Settings::default());
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(
        (
            outcome.summary.records_in,
            outcome.summary.records_out,
            outcome.summary.quarantined
        ),
        (3, 2, 1)
    );
    let q = quarantine_records(&store);
    assert_eq!(q[0]["record"], 1);
    assert_eq!(q[0]["field"], "eventTime");
}

#[test]
fn invalid_utf8_is_quarantined_not_fatal() {
    let mut bytes = format!("{V2_HEADER}\n{}\n", vpc_row(1)).into_bytes();
    bytes.extend_from_slice(b"2 111122223333 eni-\xff\xfe 10.0.0.1 10.0.0.2 1 2 6 1 1 1715644800 1715644860 ACCEPT OK\n");
    bytes.extend_from_slice(format!("{}\n", vpc_row(2)).as_bytes());
    let (outcome, store) = run_bytes(VPC_KEY, bytes, &Settings::default());
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(
        (outcome.summary.records_out, outcome.summary.quarantined),
        (2, 1)
    );
    assert_eq!(quarantine_records(&store)[0]["line"], 3);

    let mut doc = format!("{{\"Records\":[{},", ct_record(1)).into_bytes();
    doc.extend_from_slice(b"{\"eventName\":\"\xff\xfe\",\"eventTime\":\"2024-05-14T00:00:00Z\"},");
    doc.extend_from_slice(format!("{}]}}", ct_record(2)).as_bytes());
    let (outcome, _) = run_bytes(CT_KEY, doc, &Settings::default());
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(
        (outcome.summary.records_out, outcome.summary.quarantined),
        (2, 1)
    );
}

#[test]
fn empty_objects_are_counted_not_failed() {
    for bytes in [Vec::new(), gzip(b"")] {
        let (outcome, store) = run_bytes(CT_KEY, bytes, &Settings::default());
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
        assert!(outcome.summary.empty);
        assert!(store.files().is_empty());
    }
}

#[test]
fn a_wrong_header_is_a_clear_error() {
    let text = "this is not a header\n1 2 3\n";
    let (outcome, _) = run_bytes(VPC_KEY, gzip(text.as_bytes()), &Settings::default());
    let err = outcome
        .error
        .expect("a file without a flow-log header is an error");
    let msg = err.to_string();
    assert!(
        msg.contains(VPC_KEY) && msg.contains(":1"),
        "the error names the object and line: {msg}"
    );

    let (outcome, _) = run_bytes(CT_KEY, gzip(b"{\"NotRecords\": 1}"), &Settings::default());
    let err = outcome
        .error
        .expect("a CloudTrail file without Records is an error");
    assert!(err.to_string().contains("Records"), "{err}");
}

#[test]
fn an_unknown_source_is_named() {
    let (outcome, _) = run_bytes(
        "some/other/file.txt",
        b"hello".to_vec(),
        &Settings::default(),
    );
    assert!(matches!(outcome.error, Some(Error::UnknownSource { .. })));
    assert!(outcome
        .summary
        .error
        .unwrap()
        .contains("some/other/file.txt"));
}
