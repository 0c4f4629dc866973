//! Helpers shared by muster-core's integration tests.
#![allow(dead_code)]

use flate2::read::MultiGzDecoder;
use muster_core::normalize::{normalize_object, Outcome, Settings};
use muster_core::ports::memory::MemoryStore;
use muster_core::ports::{ObjectMeta, OpenedObject};
use std::io::Read;
use std::path::{Path, PathBuf};

pub fn run_bytes(key: &str, bytes: Vec<u8>, settings: &Settings) -> (Outcome, MemoryStore) {
    let store = MemoryStore::new();
    let meta = ObjectMeta {
        bucket: "test-bucket".into(),
        key: key.into(),
        size: Some(bytes.len() as u64),
        ..Default::default()
    };
    let outcome = normalize_object(
        OpenedObject {
            meta,
            body: Box::new(std::io::Cursor::new(bytes)),
        },
        settings,
        &store,
        &store,
    );
    (outcome, store)
}

/// Every event line of every lake file in the store, parsed.
pub fn lake_events(store: &MemoryStore) -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    for (key, bytes) in store.files() {
        if !key.starts_with("ocsf/") {
            continue;
        }
        let mut text = String::new();
        MultiGzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .expect("lake files are valid gzip UTF-8");
        for line in text.lines() {
            out.push((
                key.clone(),
                serde_json::from_str(line).expect("lake lines are JSON"),
            ));
        }
    }
    out
}

/// Every quarantine record in the store, parsed.
pub fn quarantine_records(store: &MemoryStore) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for (key, bytes) in store.files() {
        if key.starts_with("quarantine/") {
            for line in String::from_utf8(bytes)
                .expect("quarantine is UTF-8")
                .lines()
            {
                out.push(serde_json::from_str(line).expect("quarantine lines are JSON"));
            }
        }
    }
    out
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Files under a directory, recursively, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

pub fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

/// Checks the invariants every event must hold, whatever its source.
pub fn assert_event_invariants(where_: &str, e: &serde_json::Value) {
    let class_uid = e["class_uid"]
        .as_u64()
        .unwrap_or_else(|| panic!("{where_}: class_uid missing: {e}"));
    assert!(
        // 0: Base Event, for CloudWatch Logs messages of no known source.
        [0, 2001, 2003, 2004, 3001, 3002, 4001, 4002, 4003, 6003].contains(&class_uid),
        "{where_}: class_uid {class_uid}"
    );
    let activity = e["activity_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("{where_}: activity_id missing"));
    assert_eq!(
        e["type_uid"].as_u64(),
        Some(class_uid * 100 + activity),
        "{where_}: type_uid"
    );
    assert_eq!(
        e["category_uid"].as_u64(),
        Some(class_uid / 1000),
        "{where_}: category_uid"
    );
    let time = e["time"]
        .as_i64()
        .unwrap_or_else(|| panic!("{where_}: time is not an integer: {}", e["time"]));
    assert!(
        time > 946_684_800_000 && time < 4_102_444_800_000,
        "{where_}: time {time} is not epoch ms"
    );
    assert_eq!(e["metadata"]["version"], "1.1.0", "{where_}");
    assert!(
        e["metadata"]["product"]["name"].is_string(),
        "{where_}: metadata.product.name"
    );
}
