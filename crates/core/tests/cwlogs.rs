//! CloudWatch Logs subscription data delivered by Firehose: our samples in
//! events/cwlogs, the third-party ones in MUSTER_CORPUS/cwl-firehose, and the odd
//! cases, each through the whole normaliser (detection, framing, routing, lake,
//! quarantine).

mod common;

use common::*;
use muster_core::normalize::{Settings, Summary};
use muster_core::Error;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What one object gave: the summary, its events and its quarantine records.
struct Run {
    summary: Summary,
    error: Option<String>,
    events: Vec<(String, Value)>,
    quarantine: Vec<Value>,
}

fn run_with(key: &str, bytes: Vec<u8>, settings: &Settings) -> Run {
    let (outcome, store) = run_bytes(key, bytes, settings);
    let run = Run {
        summary: outcome.summary,
        error: outcome.error.map(|e| e.to_string()),
        events: lake_events(&store),
        quarantine: quarantine_records(&store),
    };
    let s = &run.summary;
    assert_eq!(s.records_in, s.records_out + s.quarantined, "{key}: {s:?}");
    assert_eq!(run.events.len() as u64, s.records_out, "{key}");
    for (lake_key, e) in &run.events {
        assert_event_invariants(&format!("{key} -> {lake_key}"), e);
    }
    run
}

fn run(key: &str, bytes: Vec<u8>) -> Run {
    run_with(key, bytes, &Settings::default())
}

fn classes(s: &Summary) -> Vec<(u32, u64)> {
    s.by_class.iter().map(|(k, v)| (*k, *v)).collect()
}

const KEY: &str = "firehose/2026/11/20/10/muster-cwl-1-2026-11-20-10-00-00-00000000-0000-4000-8000-000000000000.gz";

fn payload(kind: &str, owner: &str, group: &str, stream: &str, events: &[Value]) -> Value {
    json!({
        "messageType": kind, "owner": owner, "logGroup": group, "logStream": stream,
        "subscriptionFilters": ["f"], "logEvents": events,
    })
}

fn ev(n: u64, message: &str) -> Value {
    json!({"id": format!("{n:056}"), "timestamp": 1_795_168_500_000u64 + n, "message": message})
}

fn data(group: &str, events: &[Value]) -> Value {
    payload("DATA_MESSAGE", "111122223333", group, "s", events)
}

/// Payloads as Firehose writes them: one gzip member each, no separator.
fn firehose(payloads: &[Value]) -> Vec<u8> {
    payloads
        .iter()
        .flat_map(|p| gzip(p.to_string().as_bytes()))
        .collect()
}

fn plain(payloads: &[Value]) -> Vec<u8> {
    payloads
        .iter()
        .flat_map(|p| p.to_string().into_bytes())
        .collect()
}

const FLOW: &str = "2 111122223333 eni-0a1b2c3d4e5f67890 10.0.1.25 52.94.133.131 49761 443 6 24 5210 1795168500 1795168560 ACCEPT OK";
const RESOLVER: &str = r#"{"version":"1.100000","account_id":"111122223333","region":"eu-west-1","vpc_id":"vpc-1","query_timestamp":"2026-11-20T10:00:00Z","query_name":"nope.example.com.","query_type":"A","query_class":"IN","rcode":"NXDOMAIN","answers":[],"srcaddr":"10.0.1.23","srcport":"53421","transport":"UDP","srcids":{"instance":"i-0abc"}}"#;

#[test]
fn our_samples_map_as_written() {
    // (file under events/cwlogs, in, out, quarantined, skipped, by class)
    type Case = (&'static str, u64, u64, u64, u64, &'static [(u32, u64)]);
    let cases: &[Case] = &[
        (
            "firehose/2026/11/20/10/muster-cwl-1-2026-11-20-10-00-00-6f1c2a4e-8b3d-4f5a-9c7e-0d1e2f3a4b5c.gz",
            18, 18, 0, 2,
            // 4 flow rows (+1 NODATA skipped), 5 Resolver records, 5 CloudTrail
            // records (2 sign-ins, 1 account change, 2 API calls), 4 application lines.
            &[(0, 4), (3001, 1), (3002, 2), (4001, 4), (4003, 5), (6003, 2)],
        ),
        (
            "firehose-plain/2026/11/20/10/muster-cwl-plain-1-2026-11-20-10-05-00-0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d",
            3, 3, 0, 1,
            &[(0, 1), (4001, 2)],
        ),
    ];
    let root = events_dir().join("cwlogs");
    for (file, records_in, out, quarantined, skipped, by_class) in cases {
        let bytes = std::fs::read(root.join(file)).unwrap();
        let r = run(file, bytes);
        let s = &r.summary;
        assert_eq!(s.source, Some("cwlogs"), "{file}: detected by content");
        assert_eq!(r.error, None, "{file}");
        assert_eq!(
            (s.records_in, s.records_out, s.quarantined, s.skipped),
            (*records_in, *out, *quarantined, *skipped),
            "{file}: {:?}",
            r.quarantine
        );
        assert_eq!(classes(s), by_class.to_vec(), "{file}");
    }
}

#[test]
fn each_message_lands_where_its_source_says() {
    let file = "firehose/2026/11/20/10/muster-cwl-1-2026-11-20-10-00-00-6f1c2a4e-8b3d-4f5a-9c7e-0d1e2f3a4b5c.gz";
    let r = run(
        file,
        std::fs::read(events_dir().join("cwlogs").join(file)).unwrap(),
    );
    let mut partitions: BTreeMap<(u64, String), u64> = BTreeMap::new();
    for (key, e) in &r.events {
        let part = key.split('/').nth(2).unwrap_or("").to_string()
            + "/"
            + key.split('/').nth(3).unwrap_or("");
        *partitions
            .entry((e["class_uid"].as_u64().unwrap(), part))
            .or_default() += 1;
    }
    let want: BTreeMap<(u64, String), u64> = [
        // Flow rows carry no region: unknown, as the Firehose key has none.
        (
            (4001, "region=unknown/accountId=111122223333".to_string()),
            4,
        ),
        (
            (4003, "region=us-east-1/accountId=111122223333".to_string()),
            5,
        ),
        (
            (3001, "region=us-east-1/accountId=111122223333".to_string()),
            1,
        ),
        (
            (3002, "region=us-east-1/accountId=111122223333".to_string()),
            2,
        ),
        (
            (6003, "region=us-east-1/accountId=111122223333".to_string()),
            2,
        ),
        // The application's payload comes from the second account: its owner.
        ((0, "region=unknown/accountId=444455556666".to_string()), 4),
    ]
    .into_iter()
    .collect();
    assert_eq!(partitions, want);

    let raw: Vec<&Value> = r
        .events
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e["class_uid"] == 0)
        .collect();
    let stack = raw
        .iter()
        .find(|e| {
            e["raw_data"]
                .as_str()
                .is_some_and(|m| m.starts_with("java.lang"))
        })
        .expect("the stack trace is kept");
    let checks = [
        ("/class_name", json!("Base Event")),
        ("/category_name", json!("Uncategorized")),
        ("/type_name", json!("Base Event: Unknown")),
        ("/severity_id", json!(0)),
        ("/time", json!(1_795_168_522_000u64)),
        ("/metadata/log_name", json!("/ecs/checkout-service")),
        ("/metadata/uid", json!("00000001795168522000000000000000000000000000000000000018")),
        ("/metadata/profiles", json!(["cloud"])),
        ("/cloud/account/uid", json!("444455556666")),
        ("/raw_data", json!("java.lang.IllegalStateException: cart is empty\n\tat c.e.checkout.Cart.total(Cart.java:88)\n\tat c.e.checkout.Api.pay(Api.java:41)")),
        ("/unmapped/logStream", json!("ecs/checkout/3f2a9c1e0b7d4e5fa6b7c8d9e0f1a2b3")),
        ("/unmapped/subscriptionFilters", json!(["muster-cwl"])),
    ];
    for (pointer, want) in checks {
        assert_eq!(stack.pointer(pointer), Some(&want), "{pointer}: {stack}");
    }
    assert!(raw.iter().any(|e| e["raw_data"]
        .as_str()
        .is_some_and(|m| m.contains("“Kaffee”"))));
}

#[test]
fn payload_extras_and_extracted_fields_are_kept() {
    let file = "firehose-plain/2026/11/20/10/muster-cwl-plain-1-2026-11-20-10-05-00-0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d";
    let r = run(
        file,
        std::fs::read(events_dir().join("cwlogs").join(file)).unwrap(),
    );
    let web = r
        .events
        .iter()
        .map(|(_, e)| e)
        .find(|e| e["class_uid"] == 0)
        .expect("the nginx line is kept raw");
    assert_eq!(web["unmapped"]["policyLevel"], "ACCOUNT_LEVEL_POLICY");
    assert_eq!(
        web["unmapped"]["extractedFields"],
        json!({"ip": "192.0.2.44", "status": "200"})
    );
    assert_eq!(web["metadata"]["log_name"], "/var/log/nginx/access");
}

#[test]
fn odd_payloads_are_mapped_skipped_or_rejected_with_their_reason() {
    let long = "x".repeat(1500);
    // (name, input, out, skipped, [(field, record, reason fragment)] of the rejects)
    type Case = (
        &'static str,
        Vec<u8>,
        u64,
        u64,
        Vec<(Option<&'static str>, Option<u64>, &'static str)>,
    );
    let cases: Vec<Case> = vec![
        (
            "CONTROL_MESSAGE is counted, never an event",
            firehose(&[payload("CONTROL_MESSAGE", "CloudwatchLogs", "g", "s", &[json!({"id": "", "timestamp": 1, "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."})])]),
            0, 1, vec![],
        ),
        (
            "the same payloads plain and back to back read as gzip members do",
            plain(&[data("/aws/vpc/flowlogs", &[ev(1, FLOW)]), data("dns", &[ev(2, RESOLVER)]), data("app", &[ev(3, "hello")])]),
            3, 0, vec![],
        ),
        (
            "flow rows: NODATA skipped, a bad action rejected naming the field",
            firehose(&[data("/aws/vpc/flowlogs", &[
                ev(1, "2 111122223333 eni-1 - - - - - - - 1795168500 1795168560 - NODATA"),
                ev(2, &FLOW.replace("ACCEPT", "ALLOW")),
                ev(3, FLOW),
            ])]),
            1, 1, vec![(Some("action"), Some(1), "logEvents[1] of log group `/aws/vpc/flowlogs`, read as a VPC flow log row: expected ACCEPT or REJECT")],
        ),
        (
            "a Resolver record without its time is rejected by the Resolver mapper",
            firehose(&[data("dns", &[ev(1, &RESOLVER.replace("\"query_timestamp\":\"2026-11-20T10:00:00Z\",", "").replace("\"version\"", "\"query_timestamp\":null,\"version\""))])]),
            0, 0, vec![(Some("query_timestamp"), Some(0), "read as a Route 53 Resolver query log record")],
        ),
        (
            "a CloudTrail record cut short is rejected, not kept raw",
            firehose(&[data("CloudTrail", &[ev(1, r#"{"eventVersion":"1.03","userIdentity":{"type":"Root"}"#)])]),
            0, 0, vec![(None, Some(0), "read as a CloudTrail record: not valid JSON")],
        ),
        (
            "JSON in a CloudTrail log group that is no record goes to the CloudTrail mapper",
            firehose(&[data("aws-cloudtrail-logs", &[ev(1, r#"{"hello":"world"}"#)])]),
            0, 0, vec![(Some("eventTime"), Some(0), "read as a CloudTrail record")],
        ),
        (
            "custom-format flow rows without header are kept raw",
            firehose(&[data("/aws/vpc/flowlogs", &[ev(1, "2 eni-1235b8ca123456789 172.31.16.139 172.31.16.21")])]),
            1, 0, vec![],
        ),
        (
            "a log event without message, one without timestamp, one out of range",
            firehose(&[data("app", &[
                json!({"id": "1", "timestamp": 1_795_168_500_000u64}),
                json!({"id": "2", "message": "m"}),
                json!({"id": "3", "timestamp": 1_795_168_500u64, "message": "seconds, not ms"}),
                json!("not an event"),
                ev(5, "fine"),
            ])]),
            1, 0, vec![
                (Some("message"), Some(0), "the log event has no message"),
                (Some("timestamp"), Some(1), "no timestamp"),
                (Some("timestamp"), Some(2), "not epoch milliseconds"),
                (None, Some(3), "not a log event"),
            ],
        ),
        (
            "an unknown messageType, a DATA_MESSAGE without logEvents, junk between payloads",
            [
                plain(&[payload("SOMETHING_ELSE", "1", "g", "s", &[])]),
                plain(&[json!({"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "g"})]),
                b"\nnot json at all\n".to_vec(),
                plain(&[data("app", &[ev(1, "after the junk")])]),
            ]
            .concat(),
            1, 0, vec![
                (Some("messageType"), None, "payload 0: messageType `SOMETHING_ELSE` is neither"),
                (Some("logEvents"), None, "payload 1: a DATA_MESSAGE without logEvents"),
                (Some("messageType"), None, "payload 2: not a CloudWatch Logs subscription payload"),
            ],
        ),
        (
            "an oversized payload is rejected and the next one read",
            plain(&[data("app", &[ev(1, &long)]), data("app", &[ev(2, "small")])]),
            1, 0, vec![(None, None, "over the limit of 1024 bytes; only its beginning is kept")],
        ),
        (
            "an object cut inside its last payload",
            [plain(&[data("app", &[ev(1, "whole")])]), br#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"#.to_vec()].concat(),
            1, 0, vec![(None, None, "payload 1: the object ends inside this payload (truncated file?)")],
        ),
    ];
    let settings = Settings {
        max_record_bytes: 1024,
        ..Settings::default()
    };
    for (name, input, out, skipped, rejects) in cases {
        let r = run_with(KEY, input, &settings);
        let s = &r.summary;
        assert_eq!(s.source, Some("cwlogs"), "{name}");
        assert_eq!(r.error, None, "{name}");
        assert_eq!(
            (s.records_out, s.skipped),
            (out, skipped),
            "{name}: {:?}",
            r.quarantine
        );
        let got: Vec<(Option<&str>, Option<u64>, &str)> = r
            .quarantine
            .iter()
            .map(|q| {
                (
                    q["field"].as_str(),
                    q["record"].as_u64(),
                    q["reason"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(got.len(), rejects.len(), "{name}: {got:?}");
        for ((field, record, reason), (wf, wr, wreason)) in got.iter().zip(&rejects) {
            assert_eq!((field, record), (wf, wr), "{name}: {reason}");
            assert!(
                reason.contains(wreason),
                "{name}: `{reason}` lacks `{wreason}`"
            );
        }
    }
}

#[test]
fn rejects_name_the_line_of_their_log_event() {
    let text = "{\n \"messageType\": \"DATA_MESSAGE\",\n \"owner\": \"1\",\n \"logGroup\": \"/aws/vpc/flowlogs\",\n \"logEvents\": [\n  {\"id\": \"1\", \"timestamp\": 1795168500000, \"message\": \"2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1795168500 1795168560 MAYBE OK\"},\n\n  {\"id\": \"2\", \"timestamp\": 1795168500000, \"message\": \"2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1795168500 1795168560 MAYBE OK\"}\n ]\n}";
    let r = run(KEY, text.as_bytes().to_vec());
    let lines: Vec<Option<u64>> = r.quarantine.iter().map(|q| q["line"].as_u64()).collect();
    assert_eq!(lines, vec![Some(6), Some(8)]);
}

/// The published samples: the truncated CloudTrail JSON is quarantined with its
/// reason, the health check skipped, the 4-field custom flow rows kept raw, and the
/// two S3 notifications (trigger events) not taken for CloudWatch Logs data.
#[test]
fn corpus_samples() {
    let Some(corpus) = std::env::var_os("MUSTER_CORPUS") else {
        eprintln!("MUSTER_CORPUS is not set: corpus test skipped (scripts/test sets it)");
        return;
    };
    let dir = std::path::Path::new(&corpus).join("cwl-firehose");
    // (file, source, out, quarantined, skipped, by class)
    type Case = (
        &'static str,
        Option<&'static str>,
        u64,
        u64,
        u64,
        &'static [(u32, u64)],
    );
    let cases: &[Case] = &[
        (
            "otel_valid_cloudwatch_log.json",
            Some("cwlogs"),
            0,
            3,
            0,
            &[],
        ),
        (
            "otel_valid_cloudwatch_log_control.json",
            Some("cwlogs"),
            0,
            0,
            1,
            &[],
        ),
        (
            "otel_valid_vpc_flow_cw_custom.json",
            Some("cwlogs"),
            2,
            0,
            0,
            &[(0, 2)],
        ),
        ("rust_example-s3-event.json", None, 0, 0, 0, &[]),
        ("loki_eventbridge-s3-event.json", None, 0, 0, 0, &[]),
    ];
    for (file, source, out, quarantined, skipped, by_class) in cases {
        let (outcome, store) = run_bytes(
            file,
            std::fs::read(dir.join(file)).unwrap(),
            &Settings::default(),
        );
        let s = &outcome.summary;
        assert_eq!(s.source, *source, "{file}");
        if source.is_none() {
            assert!(
                matches!(outcome.error, Some(Error::UnknownSource { .. })),
                "{file}"
            );
            continue;
        }
        assert!(outcome.error.is_none(), "{file}: {:?}", outcome.error);
        assert_eq!(
            (s.records_out, s.quarantined, s.skipped),
            (*out, *quarantined, *skipped),
            "{file}"
        );
        assert_eq!(classes(s), by_class.to_vec(), "{file}");
        for q in quarantine_records(&store) {
            let reason = q["reason"].as_str().unwrap_or("");
            assert!(
                reason.contains("read as a CloudTrail record: not valid JSON"),
                "{file}: {reason}"
            );
        }
        for (_, e) in lake_events(&store) {
            assert_eq!(
                e["cloud"]["account"]["uid"], "123456789012",
                "{file}: owner is the account"
            );
            assert_eq!(e["metadata"]["log_name"], "/aws/vpc/flowlogs");
        }
    }
}

/// Our samples with bytes flipped, dropped and repeated: nothing panics, every
/// object ends and the accounting holds (checked in `run_with`).
#[test]
fn mutated_payloads_never_panic() {
    let root = events_dir().join("cwlogs");
    let mut seeds = Vec::new();
    for path in files_under(&root) {
        if path.extension().is_some_and(|e| e == "py") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut text = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::MultiGzDecoder::new(&bytes[..]),
                &mut text,
            )
            .unwrap();
            seeds.push(text);
        }
        seeds.push(bytes);
    }
    let settings = Settings {
        source: Some(muster_core::sources::SourceKind::CloudWatchLogs),
        max_record_bytes: 2048,
        ..Settings::default()
    };
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..400 {
        let mut bytes = seeds[next() as usize % seeds.len()].clone();
        for _ in 0..(1 + next() % 8) {
            if bytes.is_empty() {
                break;
            }
            let at = next() as usize % bytes.len();
            match next() % 4 {
                0 => bytes[at] = b"{}[]\"\\:, x\n"[next() as usize % 11],
                1 => {
                    bytes.remove(at);
                }
                2 => bytes.truncate(at),
                _ => {
                    let end = (at + 1 + next() as usize % 64).min(bytes.len());
                    let piece = bytes[at..end].to_vec();
                    bytes.splice(at..at, piece);
                }
            }
        }
        run_with(KEY, bytes, &settings);
    }
}
