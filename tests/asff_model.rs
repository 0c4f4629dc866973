//! Every ASFF finding muster builds, checked against Security Hub's own API model
//! (botocore's `securityhub` service JSON in the project venv): the checker walks the
//! `AwsSecurityFinding` shape and knows no field of its own, so a member muster adds
//! later is checked the same way.
//!
//! The model states some limits as shape traits (`enum`, `min`, `max`, `pattern`,
//! `required`) and others only in member documentation ("Length Constraints: Maximum
//! length of 256.", "Array Members: Maximum number of 32 items."): both are enforced.

use muster_core::asff::import::{build, parse_document, parse_invoke};
use muster_core::asff::{self, Finding, ImportTarget, Resource};
use muster_core::detect::{Detection, RuleSet, SeverityLabel};
use muster_core::normalize::{normalize_object_with, Settings};
use muster_core::ports::memory::MemoryStore;
use muster_core::ports::{DetectionBus, ObjectMeta, OpenedObject};
use muster_e2e::repo_root;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A change made to a finding for one case of a table.
type Change<T> = Box<dyn Fn(&mut T)>;

const ROOT_SHAPE: &str = "AwsSecurityFinding";
const NOW: &str = "2024-05-15T13:00:00.000Z";

/// The newest securityhub model botocore ships in `.venv`.
fn model_path() -> PathBuf {
    let lib = repo_root().join(".venv/lib");
    let mut found = Vec::new();
    for python in std::fs::read_dir(&lib).into_iter().flatten().flatten() {
        let dir = python
            .path()
            .join("site-packages/botocore/data/securityhub");
        for version in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            for name in ["service-2.json", "service-2.json.gz"] {
                let p = version.path().join(name);
                if p.is_file() {
                    found.push(p);
                }
            }
        }
    }
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!(
            "botocore's securityhub model (service-2.json[.gz]) is not under {}: \
             run scripts/python-env first (it installs requirements-dev.txt into .venv)",
            lib.display()
        )
    })
}

fn load_model() -> Value {
    let path = model_path();
    let bytes = std::fs::read(&path).unwrap();
    let text = if path.extension().is_some_and(|e| e == "gz") {
        let mut s = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut s)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        s
    } else {
        String::from_utf8(bytes).unwrap()
    };
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The number after `before` in documentation, e.g. after "Maximum length of ".
fn doc_number(doc: &str, before: &str) -> Option<usize> {
    let at = doc.find(before)? + before.len();
    let digits: String = doc[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The model's documentation without its HTML tags.
fn plain(doc: Option<&Value>) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in doc.and_then(Value::as_str).unwrap_or("").chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

struct Checker {
    shapes: serde_json::Map<String, Value>,
}

impl Checker {
    fn new(model: &Value) -> Self {
        let shapes = model["shapes"]
            .as_object()
            .expect("the model has shapes")
            .clone();
        assert!(
            shapes.contains_key(ROOT_SHAPE),
            "no {ROOT_SHAPE} in the model"
        );
        Checker { shapes }
    }

    /// Every way `value` breaks the model's `AwsSecurityFinding`.
    fn check_finding(&self, value: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.check(value, ROOT_SHAPE, "", "", &mut errors);
        errors
    }

    fn check(&self, v: &Value, shape_name: &str, doc: &str, path: &str, errors: &mut Vec<String>) {
        let shape = &self.shapes[shape_name];
        let mut fail = |what: String| errors.push(format!("{path}: {what} (shape {shape_name})"));
        let kind = shape["type"].as_str().unwrap_or("");
        let limit = |key: &str| shape[key].as_u64().map(|n| n as usize);
        match kind {
            "structure" if shape["document"] == true => {}
            "structure" => {
                let Some(obj) = v.as_object() else {
                    return fail(format!("expected an object, got {v}"));
                };
                let members = shape["members"].as_object().unwrap();
                for req in shape["required"].as_array().into_iter().flatten() {
                    let req = req.as_str().unwrap();
                    if !obj.contains_key(req) {
                        fail(format!("required member {req} is missing"));
                    }
                }
                if shape["union"] == true && obj.len() > 1 {
                    fail("a union sets more than one member".into());
                }
                for (key, value) in obj {
                    match members.get(key) {
                        Some(m) => self.check(
                            value,
                            m["shape"].as_str().unwrap(),
                            &plain(m.get("documentation")),
                            &format!("{path}.{key}"),
                            errors,
                        ),
                        None => errors.push(format!(
                            "{path}: {key} is not a member of {shape_name} (members: {})",
                            members.keys().cloned().collect::<Vec<_>>().join(", ")
                        )),
                    }
                }
            }
            "list" => {
                let Some(items) = v.as_array() else {
                    return fail(format!("expected a list, got {v}"));
                };
                let min =
                    limit("min").or_else(|| doc_number(doc, "Array Members: Minimum number of "));
                let max = limit("max")
                    .or_else(|| doc_number(doc, "Maximum number of "))
                    .or_else(|| doc_number(doc, "Array Members: Fixed number of "));
                check_count(items.len(), min, max, "items", &mut fail);
                let member = shape["member"]["shape"].as_str().unwrap();
                for (i, item) in items.iter().enumerate() {
                    self.check(item, member, "", &format!("{path}[{i}]"), errors);
                }
            }
            "map" => {
                let Some(obj) = v.as_object() else {
                    return fail(format!("expected a map, got {v}"));
                };
                let max = limit("max").or_else(|| doc_number(doc, "contain up to "));
                check_count(obj.len(), limit("min"), max, "entries", &mut fail);
                let key_max = doc_number(doc, "key can contain up to ");
                let value_max = doc_number(doc, "value can contain up to ");
                let key_shape = shape["key"]["shape"].as_str().unwrap();
                let value_shape = shape["value"]["shape"].as_str().unwrap();
                for (k, item) in obj {
                    let at = format!("{path}[{k:?}]");
                    if let Some(max) = key_max.filter(|m| k.chars().count() > *m) {
                        errors.push(format!("{at}: key is over {max} characters"));
                    }
                    if let (Some(max), Some(s)) = (value_max, item.as_str()) {
                        if s.chars().count() > max {
                            errors.push(format!("{at}: value is over {max} characters"));
                        }
                    }
                    self.check(
                        &Value::String(k.clone()),
                        key_shape,
                        "",
                        &format!("{at} (key)"),
                        errors,
                    );
                    self.check(item, value_shape, "", &at, errors);
                }
            }
            "string" => {
                let Some(s) = v.as_str() else {
                    return fail(format!("expected a string, got {v}"));
                };
                if let Some(allowed) = shape["enum"].as_array() {
                    if !allowed.iter().any(|a| a == s) {
                        fail(format!("{s:?} is not one of {allowed:?}"));
                    }
                }
                let chars = s.chars().count();
                let exact = doc_number(doc, "Length Constraints: ").filter(|_| {
                    !doc.contains("Length Constraints: Minimum")
                        && !doc.contains("Length Constraints: Maximum")
                });
                let min = limit("min")
                    .or_else(|| doc_number(doc, "Minimum length of "))
                    .or(exact);
                let max = limit("max")
                    .or_else(|| doc_number(doc, "Maximum length of "))
                    .or(exact);
                check_count(chars, min, max, "characters", &mut fail);
                if let Some(p) = shape["pattern"].as_str() {
                    let re = regex_lite::Regex::new(p).unwrap_or_else(|e| {
                        panic!("{path}: the checker cannot read pattern {p:?}: {e}")
                    });
                    if !re.is_match(s) {
                        fail(format!("{s:?} does not match {p:?}"));
                    }
                }
                // Security Hub's time members are strings documented as timestamps.
                if doc.contains("formatting of timestamp fields")
                    && muster_core::time::parse_rfc3339_ms(s).is_none()
                {
                    fail(format!("{s:?} is not an RFC 3339 timestamp"));
                }
            }
            "timestamp" => match v.as_str() {
                Some(s) if muster_core::time::parse_rfc3339_ms(s).is_some() => {}
                _ => fail(format!("expected an RFC 3339 timestamp string, got {v}")),
            },
            "integer" | "long" => {
                let Some(n) = v.as_i64() else {
                    return fail(format!("expected an integer, got {v}"));
                };
                let (lo, hi) = (shape["min"].as_i64(), shape["max"].as_i64());
                let (lo, hi) = match doc.find("integer between ") {
                    Some(_) => (
                        lo.or(doc_number(doc, "integer between ").map(|n| n as i64)),
                        hi.or_else(|| {
                            let rest = &doc[doc.find("integer between ")?..];
                            doc_number(rest, " and ").map(|n| n as i64)
                        }),
                    ),
                    None => (lo, hi),
                };
                if lo.is_some_and(|lo| n < lo) || hi.is_some_and(|hi| n > hi) {
                    fail(format!("{n} is outside {lo:?}..={hi:?}"));
                }
            }
            "double" | "float" => {
                if !v.is_number() {
                    fail(format!("expected a number, got {v}"));
                }
            }
            "boolean" => {
                if !v.is_boolean() {
                    fail(format!("expected a boolean, got {v}"));
                }
            }
            other => fail(format!("the checker does not know shape type {other:?}")),
        }
    }
}

fn check_count(
    n: usize,
    min: Option<usize>,
    max: Option<usize>,
    what: &str,
    fail: &mut impl FnMut(String),
) {
    if let Some(min) = min.filter(|m| n < *m) {
        fail(format!("{n} {what}, the minimum is {min}"));
    }
    if let Some(max) = max.filter(|m| n > *m) {
        fail(format!("{n} {what}, the maximum is {max}"));
    }
}

fn target() -> ImportTarget {
    ImportTarget {
        account: "111122223333".into(),
        region: "us-east-1".into(),
        partition: "aws".into(),
    }
}

#[derive(Default)]
struct Collect(Mutex<Vec<Detection>>);

impl DetectionBus for Collect {
    fn publish(&self, detections: &[Detection]) -> muster_core::Result<()> {
        self.0.lock().unwrap().extend_from_slice(detections);
        Ok(())
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else if p.to_string_lossy().ends_with(".json.gz") {
            out.push(p);
        }
    }
}

/// Every detection the built-in rules raise over our CloudTrail samples (the rules
/// sample holds a record for each rule).
fn sample_detections() -> Vec<Detection> {
    let root = repo_root().join("events/cloudtrail");
    let mut files = Vec::new();
    files_under(&root, &mut files);
    files.sort();
    let settings = Settings {
        rules: Some(Arc::new(RuleSet::builtin())),
        ..Settings::default()
    };
    let bus = Collect::default();
    for path in files {
        let key = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let store = MemoryStore::new();
        let object = OpenedObject {
            meta: ObjectMeta {
                bucket: "lake".into(),
                key,
                ..ObjectMeta::default()
            },
            body: Box::new(std::io::Cursor::new(std::fs::read(&path).unwrap())),
        };
        let outcome = normalize_object_with(object, &settings, &store, &store, Some(&bus));
        assert!(
            outcome.error.is_none(),
            "{}: {:?}",
            path.display(),
            outcome.error
        );
    }
    bus.0.into_inner().unwrap()
}

/// Findings as the importer builds them from `items`, all of which must be valid.
fn built(items: Vec<Result<muster_core::asff::import::Item, asff::Invalid>>) -> Vec<Finding> {
    let n = items.len();
    let (findings, results) = build(items, &target(), NOW);
    let invalid: Vec<_> = results.iter().filter(|r| r.error.is_some()).collect();
    assert!(invalid.is_empty(), "{invalid:#?}");
    assert!(!findings.is_empty() && findings.len() <= n);
    findings
}

fn assert_valid(checker: &Checker, what: &str, findings: &[Finding]) {
    let mut all = Vec::new();
    for f in findings {
        let v = serde_json::to_value(f).unwrap();
        for e in checker.check_finding(&v) {
            all.push(format!("{what} {}: {e}", f.id));
        }
    }
    assert!(all.is_empty(), "\n{}", all.join("\n"));
}

#[test]
fn findings_from_every_rule_detection_satisfy_the_model() {
    let checker = Checker::new(&load_model());
    let detections = sample_detections();
    let rules: std::collections::BTreeSet<&str> =
        detections.iter().map(|d| d.rule_id.as_str()).collect();
    for rule in RuleSet::builtin().rules {
        assert!(
            rules.contains(rule.id.as_str()),
            "no detection of {}",
            rule.id
        );
    }
    // Through the importer's EventBridge path, as the normaliser publishes them.
    let items = detections
        .iter()
        .flat_map(|d| parse_invoke(&d.to_eventbridge_event()).unwrap())
        .collect();
    let findings = built(items);
    assert_eq!(findings.len(), detections.len());
    assert_valid(&checker, "detection", &findings);
}

#[test]
fn findings_from_the_custom_findings_sample_satisfy_the_model() {
    let checker = Checker::new(&load_model());
    let path = repo_root().join("events/findings/custom-findings.json");
    let findings = built(parse_document(&std::fs::read_to_string(&path).unwrap()));
    assert_valid(&checker, "custom", &findings);
}

#[test]
fn edge_case_findings_satisfy_the_model() {
    let checker = Checker::new(&load_model());
    let text =
        std::fs::read_to_string(repo_root().join("events/findings/custom-findings.json")).unwrap();
    let base = built(parse_document(&text)).remove(0);
    let cases: Vec<(&str, Change<Finding>)> = vec![
        ("a long title", Box::new(|f| f.title = "T".repeat(1000))),
        (
            "a multi-byte title",
            Box::new(|f| f.title = "é".repeat(257)),
        ),
        (
            "a 300 KB description",
            Box::new(|f| f.description = "d ".repeat(150 * 1024)),
        ),
        (
            "32 resources",
            Box::new(|f| {
                f.resources = (0..32)
                    .map(|i| Resource {
                        type_: "AwsS3Bucket".into(),
                        id: format!("arn:aws:s3:::bucket-{i}"),
                        partition: Some("aws".into()),
                        region: Some("us-east-1".into()),
                    })
                    .collect()
            }),
        ),
        (
            "50 product fields with long values",
            Box::new(|f| {
                f.product_fields = (0..50)
                    .map(|i| (format!("acme/field{i}"), "v".repeat(3000)))
                    .collect()
            }),
        ),
        (
            "CRITICAL at the top of Normalized",
            Box::new(|f| {
                f.severity.label = SeverityLabel::Critical;
                f.severity.normalized = SeverityLabel::Critical.normalized();
            }),
        ),
    ];
    let mut findings = Vec::new();
    for (what, change) in cases {
        let mut f = base.clone();
        change(&mut f);
        asff::validate(&mut f).unwrap_or_else(|e| panic!("{what}: {e}"));
        findings.push(f);
    }
    assert_valid(&checker, "edge case", &findings);
}

/// The checker itself catches the mistakes it is for (a member in the wrong case, a
/// missing required member, an unknown enum value, text or lists over the documented
/// limits, a wrong type), so a pass above means something.
#[test]
fn the_checker_catches_what_the_model_forbids() {
    let checker = Checker::new(&load_model());
    let text =
        std::fs::read_to_string(repo_root().join("events/findings/custom-findings.json")).unwrap();
    let base = serde_json::to_value(built(parse_document(&text)).remove(0)).unwrap();
    assert_eq!(checker.check_finding(&base), Vec::<String>::new());
    let cases: Vec<(&str, Change<Value>, &str)> = vec![
        (
            "wrong case",
            Box::new(|v| {
                let t = v["Title"].take();
                v.as_object_mut().unwrap().remove("Title");
                v["title"] = t;
            }),
            "title is not a member",
        ),
        (
            "unknown member",
            Box::new(|v| v["Resources"][0]["Arn"] = "x".into()),
            ".Resources[0]: Arn is not a member",
        ),
        (
            "required",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("GeneratorId");
            }),
            "GeneratorId is missing",
        ),
        (
            "enum",
            Box::new(|v| v["Severity"]["Label"] = "SEVERE".into()),
            "\"SEVERE\" is not one of",
        ),
        (
            "record state",
            Box::new(|v| v["RecordState"] = "active".into()),
            ".RecordState",
        ),
        (
            "partition",
            Box::new(|v| v["Resources"][0]["Partition"] = "aws-eu".into()),
            ".Resources[0].Partition",
        ),
        (
            "long title",
            Box::new(|v| v["Title"] = "t".repeat(257).into()),
            "the maximum is 256",
        ),
        (
            "long description",
            Box::new(|v| v["Description"] = "d".repeat(1025).into()),
            "the maximum is 1024",
        ),
        (
            "account id",
            Box::new(|v| v["AwsAccountId"] = "12345".into()),
            ".AwsAccountId: 5 characters, the minimum is 12",
        ),
        (
            "blank",
            Box::new(|v| v["Id"] = " ".into()),
            "does not match",
        ),
        (
            "33 resources",
            Box::new(|v| {
                let r = v["Resources"][0].clone();
                v["Resources"] = Value::Array(vec![r; 33]);
            }),
            "33 items, the maximum is 32",
        ),
        (
            "no resources",
            Box::new(|v| v["Resources"] = Value::Array(vec![])),
            "0 items, the minimum is 1",
        ),
        (
            "51 types",
            Box::new(|v| v["Types"] = Value::Array(vec!["TTPs/Discovery".into(); 51])),
            "51 items, the maximum is 50",
        ),
        (
            "type",
            Box::new(|v| v["Severity"]["Normalized"] = "50".into()),
            "expected an integer",
        ),
        (
            "range",
            Box::new(|v| v["Severity"]["Normalized"] = 101.into()),
            "101 is outside",
        ),
        (
            "list type",
            Box::new(|v| v["Types"] = "TTPs/Discovery".into()),
            "expected a list",
        ),
        (
            "map value",
            Box::new(|v| v["ProductFields"]["k"] = 1.into()),
            "expected a string",
        ),
        (
            "long map value",
            Box::new(|v| v["ProductFields"]["k"] = "v".repeat(2049).into()),
            "value is over 2048",
        ),
        (
            "time",
            Box::new(|v| v["UpdatedAt"] = "yesterday".into()),
            "not an RFC 3339 timestamp",
        ),
    ];
    for (what, change, want) in cases {
        let mut v = base.clone();
        change(&mut v);
        let errors = checker.check_finding(&v);
        assert!(
            errors.iter().any(|e| e.contains(want)),
            "{what}: wanted an error containing {want:?}, got {errors:#?}"
        );
    }
}
