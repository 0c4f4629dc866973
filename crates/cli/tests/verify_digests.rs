//! `muster verify-digests` over a copy of the sample mirror (events/cloudtrail-digest +
//! events/cloudtrail), one tampering per case, with the real RSA check.

use std::path::{Path, PathBuf};
use std::process::Command;

const D1: &str = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/05/14/111122223333_CloudTrail-Digest_us-east-1_management-events_us-east-1_20240514T090000Z.json.gz";
const D2: &str = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/05/14/111122223333_CloudTrail-Digest_us-east-1_management-events_us-east-1_20240514T100000Z.json.gz";
const LOG1: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/14/111122223333_CloudTrail_us-east-1_20240514T0000Z_muster01.json.gz";
const LOG3: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/15/111122223333_CloudTrail_us-east-1_20240515T1200Z_rules01.json.gz";

fn events() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// A fresh mirror: digests (with .sig sidecars) in `digests/`, log files in `logs/`.
fn mirror(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("muster-verify-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_tree(&events().join("cloudtrail-digest"), &dir.join("digests"));
    copy_tree(&events().join("cloudtrail"), &dir.join("logs"));
    dir
}

fn gunzip_digest(path: &Path) -> String {
    // The digests are small; `muster` reads a plain JSON digest as well as a gzip one,
    // so a tampered copy can be written back uncompressed.
    let out = Command::new("gzip").arg("-dc").arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

struct Case {
    name: &'static str,
    tamper: fn(&Path),
    public_keys: bool,
    exit: i32,
    /// (totals field, expected value)
    totals: &'static [(&'static str, u64)],
    /// The chain status of each digest, oldest first.
    chain: &'static [&'static str],
    /// Text that must appear somewhere in the JSON report.
    mentions: &'static [&'static str],
}

#[test]
fn tampering_is_reported_and_a_clean_chain_verifies() {
    let cases = [
        Case {
            name: "clean",
            tamper: |_| {},
            public_keys: true,
            exit: 0,
            totals: &[
                ("digests", 3),
                ("signatures_valid", 3),
                ("log_files", 2),
                ("verified", 2),
                ("chain_gaps", 0),
            ],
            chain: &["start", "linked", "linked"],
            mentions: &[],
        },
        Case {
            name: "modified-log",
            tamper: |m| std::fs::write(m.join("logs").join(LOG1), b"{\"Records\":[]}").unwrap(),
            public_keys: true,
            exit: 1,
            totals: &[
                ("signatures_valid", 3),
                ("verified", 1),
                ("modified", 1),
                ("missing", 0),
            ],
            chain: &["start", "linked", "linked"],
            mentions: &["\"status\": \"modified\"", "muster01"],
        },
        Case {
            name: "missing-log",
            tamper: |m| std::fs::remove_file(m.join("logs").join(LOG3)).unwrap(),
            public_keys: true,
            exit: 1,
            totals: &[
                ("signatures_valid", 3),
                ("verified", 1),
                ("missing", 1),
                ("modified", 0),
            ],
            chain: &["start", "linked", "linked"],
            mentions: &["\"status\": \"missing\"", "rules01"],
        },
        Case {
            name: "deleted-digest",
            tamper: |m| std::fs::remove_file(m.join("digests").join(D2)).unwrap(),
            public_keys: true,
            exit: 1,
            totals: &[
                ("digests", 2),
                ("signatures_valid", 2),
                ("chain_gaps", 1),
                ("verified", 2),
            ],
            chain: &["start", "gap"],
            mentions: &["the previous digest is missing", "20240514T100000Z"],
        },
        Case {
            name: "bad-signature",
            tamper: |m| {
                let sig = m.join("digests").join(format!("{D1}.sig"));
                let s = std::fs::read_to_string(&sig).unwrap();
                let flipped = if s.starts_with('0') { "1" } else { "0" };
                std::fs::write(&sig, format!("{flipped}{}", &s[1..])).unwrap();
            },
            public_keys: true,
            exit: 1,
            // The next digest recorded the original signature, so its link breaks too.
            totals: &[
                ("signatures_valid", 2),
                ("signatures_invalid", 1),
                ("chain_gaps", 1),
                ("verified", 2),
            ],
            chain: &["start", "gap", "linked"],
            mentions: &[
                "signature does not match",
                "differs from this digest's previousDigestSignature",
            ],
        },
        Case {
            name: "tampered-digest",
            tamper: |m| {
                let path = m.join("digests").join(D1);
                let mut text = gunzip_digest(&path);
                // Change one digit of the listed log file's hash, as someone covering up
                // a change to that log file would.
                let at = text.find("\"hashValue\":\"").unwrap() + "\"hashValue\":\"".len();
                let digit = if &text[at..=at] == "0" { "1" } else { "0" };
                text.replace_range(at..=at, digit);
                std::fs::write(&path, text).unwrap();
            },
            public_keys: true,
            exit: 1,
            totals: &[
                ("signatures_valid", 2),
                ("signatures_invalid", 1),
                ("chain_gaps", 1),
                ("modified", 1),
                ("verified", 1),
            ],
            chain: &["start", "gap", "linked"],
            mentions: &["it was changed"],
        },
        Case {
            name: "no-public-keys",
            tamper: |_| {},
            public_keys: false,
            exit: 0,
            totals: &[
                ("signatures_valid", 0),
                ("signatures_not_checked", 3),
                ("verified", 2),
            ],
            chain: &["start", "linked", "linked"],
            mentions: &["no --public-keys given"],
        },
        Case {
            name: "no-sidecar",
            tamper: |m| std::fs::remove_file(m.join("digests").join(format!("{D2}.sig"))).unwrap(),
            public_keys: true,
            exit: 0,
            totals: &[
                ("signatures_valid", 2),
                ("signatures_not_checked", 1),
                ("chain_gaps", 0),
            ],
            chain: &["start", "linked", "linked"],
            mentions: &["no signature: neither", "x-amz-meta-signature"],
        },
    ];
    for case in cases {
        let m = mirror(case.name);
        (case.tamper)(&m);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_muster"));
        cmd.args(["verify-digests", "--json"]);
        if case.public_keys {
            cmd.arg("--public-keys")
                .arg(m.join("digests/public-keys.json"));
        }
        let run = cmd
            .arg(m.join("digests"))
            .arg(m.join("logs"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert_eq!(
            run.status.code(),
            Some(case.exit),
            "{}: {stdout}\n{}",
            case.name,
            String::from_utf8_lossy(&run.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
        for (field, want) in case.totals {
            assert_eq!(
                report["totals"][field].as_u64(),
                Some(*want),
                "{}: {field}\n{stdout}",
                case.name
            );
        }
        let chain: Vec<&str> = report["digests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["chain"]["status"].as_str().unwrap())
            .collect();
        assert_eq!(chain, case.chain, "{}\n{stdout}", case.name);
        for text in case.mentions {
            assert!(
                stdout.contains(text),
                "{}: no {text:?} in\n{stdout}",
                case.name
            );
        }
        if !case.public_keys {
            assert!(
                !stdout.contains("\"valid\""),
                "{}: nothing is valid without keys",
                case.name
            );
        }
        std::fs::remove_dir_all(&m).unwrap();
    }
}

#[test]
fn a_digest_named_at_its_mirror_path_finds_its_logs_and_the_table_says_why() {
    let m = mirror("direct");
    // Digests and logs in one mirror root, as `aws s3 sync` of the bucket lays them out.
    copy_tree(&m.join("logs/AWSLogs"), &m.join("digests/AWSLogs"));
    let run = Command::new(env!("CARGO_BIN_EXE_muster"))
        .args(["verify-digests", "--public-keys"])
        .arg(m.join("digests/public-keys.json"))
        .arg(m.join("digests").join(D1))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}");
    assert!(stdout.contains("1 verified, 0 missing"), "{stdout}");
    assert!(stdout.contains("valid        start"), "{stdout}");
    std::fs::remove_dir_all(&m).unwrap();
}

#[test]
fn a_malformed_digest_is_an_error_naming_the_field_not_a_panic() {
    let mut files: Vec<(PathBuf, &str)> = Vec::new();
    let dir = std::env::temp_dir().join(format!("muster-verify-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let not_json = dir.join("not-json.json");
    std::fs::write(&not_json, b"{\"awsAccountId\": ").unwrap();
    files.push((not_json, "not a CloudTrail digest file"));
    if let Some(corpus) = std::env::var_os("MUSTER_CORPUS") {
        files.push((
            PathBuf::from(corpus).join("cloudtrail/otel_cloudtrail_digest.json"),
            "field logFiles[0].newestEventTime: \\\"2025-10-21TT00:52:27Z\\\" is not a UTC timestamp",
        ));
    } else {
        eprintln!("MUSTER_CORPUS is not set: the corpus digest case is skipped");
    }
    for (file, expect) in files {
        let run = Command::new(env!("CARGO_BIN_EXE_muster"))
            .args(["verify-digests", "--json"])
            .arg(&file)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert_eq!(run.status.code(), Some(1), "{}: {stdout}", file.display());
        let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
        assert_eq!(report["totals"]["digests_invalid"], 1, "{stdout}");
        assert!(
            stdout.contains(expect),
            "{}: no {expect:?} in {stdout}",
            file.display()
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
