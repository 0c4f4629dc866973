//! The `muster` binary as a user runs it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn muster() -> Command {
    Command::new(env!("CARGO_BIN_EXE_muster"))
}

fn events() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("muster-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(
                    e.path()
                        .strip_prefix(dir)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    out
}

#[test]
fn normalize_json_summary_accounts_for_every_record() {
    let out = temp_dir("json");
    let run = muster()
        .args(["normalize", "--json", "--out"])
        .arg(&out)
        .arg(events())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    for key in [
        "objects",
        "records_in",
        "records_out",
        "quarantined",
        "by_source",
        "by_class",
    ] {
        assert!(s.get(key).is_some(), "summary lacks {key}: {s}");
    }
    let n = |k: &str| s[k].as_u64().unwrap();
    assert_eq!(n("records_in"), n("records_out") + n("quarantined"));
    assert!(n("records_out") > 0);
    assert!(
        s["by_source"]["cloudtrail"]["records_out"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(s["by_source"]["vpcflow"]["records_out"].as_u64().unwrap() > 0);
    let by_class: u64 = s["by_class"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(by_class, n("records_out"));
    // Trigger events and findings in events/ are not logs: passed over, listed.
    assert!(s["unrecognised"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p.as_str().unwrap().contains("triggers")));

    let files = files_under(&out);
    let lake: Vec<&String> = files.iter().filter(|f| f.starts_with("ocsf/")).collect();
    assert!(!lake.is_empty());
    for f in &lake {
        let parts: Vec<&str> = f.split('/').collect();
        assert_eq!(parts.len(), 6, "{f}");
        assert!(
            parts[2].starts_with("region=")
                && parts[3].starts_with("accountId=")
                && parts[4].starts_with("eventDay="),
            "{f}"
        );
        assert!(parts[5].ends_with(".jsonl.gz"), "{f}");
    }
    assert!(
        files.iter().any(|f| f.starts_with("metrics/")),
        "EMF documents are written"
    );
    assert!(
        files.iter().any(|f| f.starts_with("detections/")),
        "detections are written"
    );

    // Re-running overwrites: the same lake files, no more.
    let again = muster()
        .args(["normalize", "--json", "--out"])
        .arg(&out)
        .arg(events())
        .output()
        .unwrap();
    assert!(again.status.success());
    let lake_again: Vec<String> = files_under(&out)
        .into_iter()
        .filter(|f| f.starts_with("ocsf/"))
        .collect();
    assert_eq!(lake_again.iter().collect::<Vec<_>>(), lake);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn detections_from_the_samples_import_as_findings() {
    let out = temp_dir("detect");
    let run = muster()
        .args(["normalize", "--json", "--out"])
        .arg(&out)
        .arg(events().join("cloudtrail"))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert!(
        s["detections"].as_u64().unwrap() > 0,
        "the CloudTrail samples hold root, no-MFA and failed sign-ins: {s}"
    );
    let imported = muster()
        .args(["import", "--json", "--out"])
        .arg(&out)
        .arg(out.join("detections"))
        .output()
        .unwrap();
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&imported.stdout).unwrap();
    assert_eq!(r["imported"], s["detections"]);
    assert_eq!(r["invalid"], 0);
    assert!(files_under(&out.join("findings")).len() as u64 >= 1);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn unreadable_inputs_fail_naming_the_path() {
    let out = temp_dir("missing");
    let run = muster()
        .args(["normalize", "--out"])
        .arg(&out)
        .arg("/no/such/file.log.gz")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("/no/such/file.log.gz") && err.contains("cannot read"),
        "{err}"
    );

    // A file named on the command line whose source cannot be told is an error too.
    let odd = out.join("odd.txt");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(&odd, "hello").unwrap();
    let run = muster()
        .args(["normalize", "--out"])
        .arg(&out)
        .arg(&odd)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).contains("odd.txt"));
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn custom_findings_import_and_bad_ones_are_named() {
    let out = temp_dir("import");
    let run = muster()
        .args(["import", "--json", "--out"])
        .arg(&out)
        .arg(events().join("findings"))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(r["imported"], 2);
    let bad = out.join("bad.jsonl");
    std::fs::write(&bad, "{\"correlation_id\":\"x\",\"severity\":\"LOW\"}\n").unwrap();
    let run = muster()
        .args(["import", "--out"])
        .arg(&out)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("missing field"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    std::fs::remove_dir_all(&out).unwrap();
}
