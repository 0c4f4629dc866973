//! findings-importer: the Lambda handler that turns muster's detections and the
//! organisation's own findings into ASFF findings in Security Hub.
//!
//! It accepts three shapes:
//! - an EventBridge `muster.detection` event (the normaliser's rule hits);
//! - a direct invoke `{"findings":[{...}]}` of custom findings, answered with a result
//!   per finding: `{"imported":n,"invalid":n,"failed":n,"results":[...]}`;
//! - S3 notifications (direct, through SQS, or EventBridge "Object Created") for JSON or
//!   JSON-lines objects under the findings prefix, read through the `ObjectSource` port.
//!
//! An invalid finding never fails the invocation: it is reported and the rest go on.
//! A failure a retry may fix (Security Hub throttling us past our retries, an object
//! that could not be read) fails it, so Lambda or EventBridge sends it again; finding
//! Ids are deterministic, so the re-send updates findings rather than duplicating them.
//! The handler is a plain async function over the ports: only `main.rs` knows Lambda.

use muster_aws::Env;
use muster_core::asff::import::{self, ItemResult, ItemStatus};
use muster_core::asff::ImportTarget;
use muster_core::detect::DETAIL_TYPE;
use muster_core::ports::{FailedFinding, FindingsSink, ObjectSource};
use muster_core::s3event::{parse_trigger, ObjectRef, Skipped, TriggerKind};
use serde::Serialize;
use serde_json::{json, Value};
use std::io::Read;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::{error, info, info_span, warn};

/// Largest findings object read by default: a JSON-lines file of this size holds tens of
/// thousands of findings, and the whole text is parsed at once.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 32 * 1024 * 1024;

/// The function's configuration, read once at cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Account whose Security Hub receives the findings (`AWS_ACCOUNT_ID`, required: set
    /// it in the template from `AWS::AccountId`). Read from the environment rather than
    /// asked of STS at cold start: no extra call, no extra permission, nothing to fail.
    pub account: String,
    /// Region of that Security Hub (`AWS_REGION`, which Lambda always sets).
    pub region: String,
    /// ARN partition, from the region (`aws`, `aws-cn`, `aws-us-gov`).
    pub partition: String,
    /// Only objects under this prefix are read (`FINDINGS_PREFIX`, default `findings/`).
    pub findings_prefix: String,
    /// Objects larger than this are refused, not read (`MAX_OBJECT_BYTES`, default 32 MiB).
    pub max_object_bytes: u64,
}

pub use muster_aws::ConfigError;

fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`Config::from_env`], over any variable lookup (tests pass a map).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(var);
        let account = env.required(
            "AWS_ACCOUNT_ID",
            "the account whose Security Hub receives the findings",
        )?;
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError {
                variable: "AWS_ACCOUNT_ID",
                reason: format!("{account:?} is not a 12-digit account id"),
            });
        }
        let region = env.required(
            "AWS_REGION",
            "the region of the Security Hub that receives the findings",
        )?;
        let findings_prefix = env.prefix("FINDINGS_PREFIX", "findings/")?;
        let max_object_bytes =
            env.number("MAX_OBJECT_BYTES", DEFAULT_MAX_OBJECT_BYTES, 1, u64::MAX)?;
        Ok(Config {
            partition: partition_of(&region).into(),
            account,
            region,
            findings_prefix,
            max_object_bytes,
        })
    }

    /// Where findings go: names the default ProductArn.
    pub fn target(&self) -> ImportTarget {
        ImportTarget {
            account: self.account.clone(),
            region: self.region.clone(),
            partition: self.partition.clone(),
        }
    }
}

/// The ports the handler works through. Used from blocking threads (the adapters block
/// on the runtime), hence `Arc` and `Send + Sync`.
#[derive(Clone)]
pub struct Ports {
    pub source: Arc<dyn ObjectSource + Send + Sync>,
    pub sink: Arc<dyn FindingsSink + Send + Sync>,
}

/// Why an invocation as a whole failed. Lambda (and EventBridge) retry it.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The event is none of the shapes we accept.
    #[error("unrecognised event: {0}")]
    Unrecognised(String),
    /// Findings or objects failed in a way a retry may fix. Sending the same event again
    /// is safe: finding Ids are deterministic, so imported ones are updated, not doubled.
    #[error("{failed} finding(s) or object(s) failed and may succeed on retry; first: {first}")]
    Retryable { failed: usize, first: String },
    /// Security Hub refused or failed the import as a whole (access denied, not enabled,
    /// throttled past our retries). It fails the invocation even when a retry cannot
    /// help, so the event is kept (retries, then the dead-letter destination), not lost.
    #[error("import failed: {message}")]
    Import { message: String, retryable: bool },
    /// An SQS message failed but carries no messageId to report it by.
    #[error("SQS message {index} failed and has no messageId; failing the whole batch")]
    UnidentifiedMessage { index: usize },
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        let error_type = match &e {
            HandlerError::Unrecognised(_) => "UnrecognisedEvent",
            HandlerError::Retryable { .. } => "RetryableImportFailure",
            HandlerError::Import { .. } => "ImportFailure",
            HandlerError::UnidentifiedMessage { .. } => "UnidentifiedMessage",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// What became of one batch of items (a payload, an event or an object's content).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    pub imported: usize,
    pub invalid: usize,
    pub failed: usize,
    pub results: Vec<ItemResult>,
    /// Failed findings a retry may import.
    #[serde(skip)]
    pub retryable: Vec<String>,
}

impl Outcome {
    /// The outcome after the sink's answer: each ready item imported or failed.
    fn settle(mut results: Vec<ItemResult>, failed: &[FailedFinding]) -> Outcome {
        let mut retryable = Vec::new();
        for r in results.iter_mut().filter(|r| r.status == ItemStatus::Ready) {
            match failed.iter().find(|f| Some(&f.id) == r.id.as_ref()) {
                Some(f) => {
                    r.status = ItemStatus::Failed;
                    r.error = Some(format!("{}: {}", f.error_code, f.error_message));
                    if f.retryable {
                        retryable.push(format!("{}: {}: {}", f.id, f.error_code, f.error_message));
                    }
                }
                None => r.status = ItemStatus::Imported,
            }
        }
        let count = |s: ItemStatus| results.iter().filter(|r| r.status == s).count();
        Outcome {
            imported: count(ItemStatus::Imported),
            invalid: count(ItemStatus::Invalid),
            failed: count(ItemStatus::Failed),
            results,
            retryable,
        }
    }
}

/// Status of one S3 object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Read and parsed; its findings are imported, invalid or failed as counted.
    Done,
    /// Not under the findings prefix: not ours to read.
    Ignored,
    /// Deleted before it could be read: a warning, not worth a retry.
    Missing,
    /// Could not be read, was too large, or its import failed as a whole.
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObjectReport {
    #[serde(skip)]
    pub message: usize,
    pub object: String,
    pub status: Status,
    pub imported: usize,
    pub invalid: usize,
    pub failed: usize,
    /// The items that were not imported (every item would make the answer as large as
    /// the object).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<ItemResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub retryable: bool,
}

/// The importer's Lambda handler.
pub struct Handler {
    config: Config,
    target: ImportTarget,
    ports: Ports,
}

fn now_rfc3339() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    muster_core::time::format_rfc3339_ms(ms)
}

impl Handler {
    pub fn new(config: Config, ports: Ports) -> Self {
        Handler {
            target: config.target(),
            config,
            ports,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// One invocation: the event in, the Lambda response out.
    pub async fn handle(&self, event: Value) -> Result<Value, HandlerError> {
        // Any EventBridge event but S3's is ours to judge item by item: a detection
        // imports, another detail-type is an invalid item (reported, never retried).
        let from_s3 = event.get("source").and_then(Value::as_str) == Some("aws.s3");
        if event.get("findings").is_some() || (event.get("detail-type").is_some() && !from_s3) {
            return self.handle_payload(&event).await;
        }
        let trigger = parse_trigger(&event).map_err(|e| {
            error!(error = %e, "unrecognised event");
            HandlerError::Unrecognised(format!(
                "expected a {DETAIL_TYPE} event, {{\"findings\":[...]}} or an S3 notification: {e}"
            ))
        })?;
        let kind = trigger.kind;
        let skipped = trigger.skipped;
        for (i, m) in trigger.messages.iter().enumerate() {
            for e in &m.errors {
                warn!(message = i, message_id = m.id.as_deref(), error = %e, "part of the trigger could not be understood");
            }
        }
        let mut objects = Vec::new();
        for (i, m) in trigger.messages.iter().enumerate() {
            for o in &m.objects {
                objects.push(self.object(i, o.clone()).await);
            }
        }
        let response = s3_response(kind, &skipped, &trigger.messages, &objects);
        info!(
            trigger = ?kind,
            objects = objects.len(),
            imported = objects.iter().map(|o| o.imported).sum::<usize>(),
            invalid = objects.iter().map(|o| o.invalid).sum::<usize>(),
            failed = objects.iter().map(|o| o.failed).sum::<usize>(),
            failed_objects = objects.iter().filter(|o| o.status == Status::Failed).count(),
            "invocation done"
        );
        response
    }

    /// A direct invoke or a detection event: items in the event itself.
    async fn handle_payload(&self, event: &Value) -> Result<Value, HandlerError> {
        let items = import::parse_invoke(event).map_err(HandlerError::Unrecognised)?;
        let (findings, results) = import::build(items, &self.target, &now_rfc3339());
        for r in results.iter().filter(|r| r.status == ItemStatus::Invalid) {
            warn!(
                index = r.index,
                reference = r.reference.as_deref(),
                error = r.error.as_deref(),
                "invalid finding"
            );
        }
        let sink = self.ports.sink.clone();
        let answer = tokio::task::spawn_blocking(move || sink.import(&findings))
            .await
            .map_err(|e| HandlerError::Retryable {
                failed: 1,
                first: format!("import task failed: {e}"),
            })?;
        let failed = answer.map_err(|e| {
            error!(error = %e, retryable = e.is_retryable(), "import failed");
            HandlerError::Import {
                message: e.to_string(),
                retryable: e.is_retryable(),
            }
        })?;
        let outcome = Outcome::settle(results, &failed);
        info!(
            imported = outcome.imported,
            invalid = outcome.invalid,
            failed = outcome.failed,
            "invocation done"
        );
        if let Some(first) = outcome.retryable.first() {
            return Err(HandlerError::Retryable {
                failed: outcome.retryable.len(),
                first: first.clone(),
            });
        }
        Ok(serde_json::to_value(&outcome).unwrap_or_default())
    }

    async fn object(&self, message: usize, object: ObjectRef) -> ObjectReport {
        let name = object.display();
        let mut report = ObjectReport {
            message,
            object: name.clone(),
            status: Status::Done,
            imported: 0,
            invalid: 0,
            failed: 0,
            problems: Vec::new(),
            error: None,
            retryable: false,
        };
        if !object.key.starts_with(&self.config.findings_prefix) {
            warn!(object = %name, prefix = %self.config.findings_prefix, "not under the findings prefix: ignored");
            report.status = Status::Ignored;
            return report;
        }
        let span = info_span!("object", object = %name);
        let ports = self.ports.clone();
        let target = self.target.clone();
        let limit = self.config.max_object_bytes;
        let work = tokio::task::spawn_blocking(move || {
            span.in_scope(|| import_object(&ports, &target, limit, &object))
        });
        match work.await {
            Ok(Ok(Some(outcome))) => {
                report.imported = outcome.imported;
                report.invalid = outcome.invalid;
                report.failed = outcome.failed;
                if let Some(first) = outcome.retryable.first() {
                    report.status = Status::Failed;
                    report.retryable = true;
                    report.error = Some(format!(
                        "{} finding(s) may import on retry; first: {first}",
                        outcome.retryable.len()
                    ));
                }
                report.problems = outcome
                    .results
                    .into_iter()
                    .filter(|r| r.status != ItemStatus::Imported)
                    .collect();
            }
            Ok(Ok(None)) => report.status = Status::Missing,
            Ok(Err(e)) => {
                report.status = Status::Failed;
                report.retryable = e.is_retryable();
                report.error = Some(e.to_string());
            }
            // A panic is a bug; it would panic again on retry.
            Err(e) => {
                report.status = Status::Failed;
                report.error = Some(format!("import task failed: {e}"));
            }
        }
        match report.status {
            Status::Failed => {
                error!(object = %name, error = report.error.as_deref(), retryable = report.retryable, "object failed")
            }
            Status::Missing => warn!(object = %name, "object no longer exists: nothing to import"),
            _ => {
                info!(object = %name, imported = report.imported, invalid = report.invalid, failed = report.failed, "object imported")
            }
        }
        report
    }
}

/// Reads one findings object (bounded), parses it and imports its findings. Runs on a
/// blocking thread. `Ok(None)` when the object is gone.
fn import_object(
    ports: &Ports,
    target: &ImportTarget,
    limit: u64,
    object: &ObjectRef,
) -> muster_core::Result<Option<Outcome>> {
    let name = object.display();
    let too_large = |size: u64| {
        muster_core::Error::Format {
        at: muster_core::error::Location::object(name.clone()),
        reason: format!(
            "the object is {size} bytes, over the importer's limit of {limit} (MAX_OBJECT_BYTES): split it into smaller files"
        ),
    }
    };
    if let Some(size) = object.size.filter(|s| *s > limit) {
        return Err(too_large(size));
    }
    let Some(opened) =
        ports
            .source
            .open(&object.bucket, &object.key, object.version_id.as_deref())?
    else {
        return Ok(None);
    };
    if let Some(size) = opened.meta.size.filter(|s| *s > limit) {
        return Err(too_large(size));
    }
    let decoded = muster_core::framing::decode(
        opened.body,
        opened.meta.content_encoding.as_deref(),
        opened.meta.content_type.as_deref(),
        &name,
    )?;
    let errors = decoded.errors;
    // Read one byte past the limit to tell "exactly the limit" from "over it", whatever
    // the object (or its decompressed content) claims to be.
    let mut bytes = Vec::new();
    decoded
        .reader
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| errors.classify(muster_core::error::Location::object(name.clone()), e))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    let text = String::from_utf8(bytes).map_err(|e| muster_core::Error::Format {
        at: muster_core::error::Location::object(name.clone()),
        reason: format!("not UTF-8 text: {e}"),
    })?;
    let (findings, results) = import::build(import::parse_document(&text), target, &now_rfc3339());
    let failed = ports.sink.import(&findings)?;
    Ok(Some(Outcome::settle(results, &failed)))
}

fn s3_response(
    kind: TriggerKind,
    skipped: &Skipped,
    messages: &[muster_core::s3event::Message],
    objects: &[ObjectReport],
) -> Result<Value, HandlerError> {
    if kind == TriggerKind::Sqs {
        let mut failures = Vec::new();
        for (index, m) in messages.iter().enumerate() {
            let failed = !m.errors.is_empty()
                || objects
                    .iter()
                    .any(|o| o.message == index && o.status == Status::Failed);
            if failed {
                match &m.id {
                    Some(id) => failures.push(json!({"itemIdentifier": id})),
                    None => return Err(HandlerError::UnidentifiedMessage { index }),
                }
            }
        }
        return Ok(json!({"batchItemFailures": failures}));
    }
    let retryable: Vec<&ObjectReport> = objects
        .iter()
        .filter(|o| o.status == Status::Failed && o.retryable)
        .collect();
    if let Some(first) = retryable.first() {
        return Err(HandlerError::Retryable {
            failed: retryable.len(),
            first: format!("{}: {}", first.object, first.error.as_deref().unwrap_or("")),
        });
    }
    let mut response = json!({
        "trigger": kind,
        "imported": objects.iter().map(|o| o.imported).sum::<usize>(),
        "invalid": objects.iter().map(|o| o.invalid).sum::<usize>(),
        "failed": objects.iter().map(|o| o.failed).sum::<usize>(),
        "skipped": skipped,
        "objects": objects,
    });
    let errors: Vec<&String> = messages.iter().flat_map(|m| &m.errors).collect();
    if !errors.is_empty() {
        response["errors"] = json!(errors);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn config_has_defaults_and_fails_naming_the_variable() {
        type Want =
            Result<(&'static str, &'static str, &'static str, &'static str, u64), &'static str>;
        let base = [
            ("AWS_ACCOUNT_ID", "111122223333"),
            ("AWS_REGION", "eu-west-1"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str)> {
            base.iter().chain(extra).copied().collect()
        };
        let cases: Vec<(Vec<(&str, &str)>, Want)> = vec![
            (vec![], Err("AWS_ACCOUNT_ID")),
            (vec![("AWS_REGION", "us-east-1")], Err("AWS_ACCOUNT_ID")),
            (vec![("AWS_ACCOUNT_ID", "111122223333")], Err("AWS_REGION")),
            (
                vec![("AWS_ACCOUNT_ID", "1111"), ("AWS_REGION", "us-east-1")],
                Err("AWS_ACCOUNT_ID"),
            ),
            (
                with(&[]),
                Ok((
                    "111122223333",
                    "eu-west-1",
                    "aws",
                    "findings/",
                    DEFAULT_MAX_OBJECT_BYTES,
                )),
            ),
            (
                vec![
                    ("AWS_ACCOUNT_ID", "111122223333"),
                    ("AWS_REGION", "cn-north-1"),
                    ("FINDINGS_PREFIX", "in/custom"),
                    ("MAX_OBJECT_BYTES", "1024"),
                ],
                Ok(("111122223333", "cn-north-1", "aws-cn", "in/custom/", 1024)),
            ),
            (
                vec![
                    ("AWS_ACCOUNT_ID", "111122223333"),
                    ("AWS_REGION", "us-gov-west-1"),
                ],
                Ok((
                    "111122223333",
                    "us-gov-west-1",
                    "aws-us-gov",
                    "findings/",
                    DEFAULT_MAX_OBJECT_BYTES,
                )),
            ),
            (with(&[("FINDINGS_PREFIX", "/abs")]), Err("FINDINGS_PREFIX")),
            (with(&[("MAX_OBJECT_BYTES", "0")]), Err("MAX_OBJECT_BYTES")),
            (
                with(&[("MAX_OBJECT_BYTES", "lots")]),
                Err("MAX_OBJECT_BYTES"),
            ),
        ];
        for (vars, want) in cases {
            let map: HashMap<&str, &str> = vars.iter().copied().collect();
            let got = Config::from_lookup(|n| map.get(n).map(|v| v.to_string()));
            match (got, want) {
                (Ok(c), Ok((account, region, partition, prefix, max))) => {
                    assert_eq!(
                        (
                            c.account.as_str(),
                            c.region.as_str(),
                            c.partition.as_str(),
                            c.findings_prefix.as_str(),
                            c.max_object_bytes
                        ),
                        (account, region, partition, prefix, max),
                        "{vars:?}"
                    );
                    assert_eq!(
                        c.target().product_arn(),
                        format!("arn:{partition}:securityhub:{region}:{account}:product/{account}/default")
                    );
                }
                (Err(e), Err(variable)) => {
                    assert_eq!(e.variable, variable, "{vars:?}");
                    assert!(e.to_string().contains(variable), "{e}");
                }
                (got, want) => panic!("{vars:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
