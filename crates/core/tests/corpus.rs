//! The normaliser over every file of the third-party corpus (MUSTER_CORPUS) and our
//! own events/: nothing panics, nothing is lost, every event holds the OCSF invariants.

mod common;

use common::*;
use muster_core::normalize::Settings;
use muster_core::Error;
use std::collections::BTreeMap;

/// What one file gave: its source and how many of its records were quarantined.
struct FileResult {
    source: Option<&'static str>,
    records_out: u64,
    quarantined: u64,
}

fn run_tree(root: &std::path::Path) -> (u64, u64, BTreeMap<String, FileResult>) {
    let settings = Settings::default();
    let (mut objects, mut events) = (0, 0);
    let mut files = BTreeMap::new();
    for path in files_under(root) {
        let bytes = std::fs::read(&path).unwrap();
        let key = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let (outcome, store) = run_bytes(&key, bytes, &settings);
        let s = &outcome.summary;
        if let Some(Error::UnknownSource { .. }) = outcome.error {
            continue; // a source muster does not read (yet): passed over, not misread
        }
        objects += 1;
        assert_eq!(
            s.records_in,
            s.records_out + s.quarantined,
            "{key}: accounting {s:?}"
        );
        let written = lake_events(&store);
        assert_eq!(
            written.len() as u64,
            s.records_out,
            "{key}: events written vs counted"
        );
        assert_eq!(
            quarantine_records(&store).len() as u64,
            s.quarantined + u64::from(outcome.error.is_some()),
            "{key}: quarantine records"
        );
        for (lake_key, e) in &written {
            assert_event_invariants(&format!("{key} -> {lake_key}"), e);
        }
        assert_eq!(
            s.by_class.values().sum::<u64>(),
            s.records_out,
            "{key}: by_class"
        );
        events += s.records_out;
        files.insert(
            key.replace('\\', "/"),
            FileResult {
                source: s.source,
                records_out: s.records_out,
                quarantined: s.quarantined,
            },
        );
    }
    (objects, events, files)
}

/// Corpus files that break their format on purpose (see the corpus README): every other
/// file is well-formed and must map whole, with nothing quarantined.
const MALFORMED: &[(&str, u64, &str)] = &[
    (
        "cloudfront/wafsa_E3HXCM7PFRG6HT.2023-04-24-21.d740d76bCloudFront.gz",
        152,
        "non-standard 19-field lines under a bare `#` header",
    ),
    (
        "cwl-firehose/otel_valid_cloudwatch_log.json",
        3,
        "the CloudTrail JSON inside each log event is truncated",
    ),
];

/// The sources the corpus has real files for; Route 53 Resolver has none published.
const CORPUS_SOURCES: &[&str] = &[
    "cloudtrail",
    "vpcflow",
    "elb",
    "s3access",
    "waf",
    "cloudfront",
    "guardduty",
    "securityhub",
    "cwlogs",
];

#[test]
fn corpus_files_normalise_without_loss() {
    let Some(corpus) = std::env::var_os("MUSTER_CORPUS") else {
        eprintln!("MUSTER_CORPUS is not set: corpus test skipped (scripts/test sets it)");
        return;
    };
    let (objects, events, files) = run_tree(std::path::Path::new(&corpus));
    assert!(
        objects > 0 && events > 0,
        "the corpus yielded nothing: {objects} objects, {events} events"
    );
    for (key, result) in &files {
        let expected = MALFORMED
            .iter()
            .find(|(name, _, _)| name == key)
            .map_or(0, |(_, n, _)| *n);
        assert_eq!(
            result.quarantined, expected,
            "{key}: quarantined records (a well-formed file must map whole)"
        );
    }
    for (name, _, why) in MALFORMED {
        assert!(files.contains_key(*name), "{name} ({why}) was not read");
    }
    for source in CORPUS_SOURCES {
        let events: u64 = files
            .values()
            .filter(|r| r.source == Some(*source))
            .map(|r| r.records_out)
            .sum();
        assert!(events > 0, "no corpus file gave a {source} event");
    }
}

#[test]
fn bundled_events_normalise_without_loss() {
    let (objects, events, _) = run_tree(&events_dir());
    assert!(
        objects > 0 && events > 0,
        "events/ yielded nothing: {objects} objects, {events} events"
    );
}
