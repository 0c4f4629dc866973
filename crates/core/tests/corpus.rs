//! The normaliser over every file of the third-party corpus (MUSTER_CORPUS) and our
//! own events/: nothing panics, nothing is lost, every event holds the OCSF invariants.

mod common;

use common::*;
use muster_core::normalize::Settings;
use muster_core::Error;

fn run_tree(root: &std::path::Path) -> (u64, u64) {
    let settings = Settings::default();
    let (mut objects, mut events) = (0, 0);
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
    }
    (objects, events)
}

#[test]
fn corpus_files_normalise_without_loss() {
    let Some(corpus) = std::env::var_os("MUSTER_CORPUS") else {
        eprintln!("MUSTER_CORPUS is not set: corpus test skipped (scripts/test sets it)");
        return;
    };
    let (objects, events) = run_tree(std::path::Path::new(&corpus));
    assert!(
        objects > 0 && events > 0,
        "the corpus yielded nothing: {objects} objects, {events} events"
    );
}

#[test]
fn bundled_events_normalise_without_loss() {
    let (objects, events) = run_tree(&events_dir());
    assert!(
        objects > 0 && events > 0,
        "events/ yielded nothing: {objects} objects, {events} events"
    );
}
