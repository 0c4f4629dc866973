//! log-normalizer: the Lambda handler that turns log files landing in S3 into OCSF
//! events in the lake.
//!
//! The handler is a plain async function over the ports of muster-core, so the same
//! code runs in Lambda (S3 adapters), in tests (in-memory fakes) and against moto.
//! Only `main.rs` knows it is in Lambda.

use aws_lambda_events::event::sqs::SqsBatchResponse;
use futures::stream::{self, StreamExt};
use muster_aws::Env;
use muster_core::detect::RuleSet;
use muster_core::digest::{ChainStatus, NoPublicKeys, SignatureStatus, SignatureVerifier};
use muster_core::metrics::all_metrics;
use muster_core::normalize::{normalize_object_with, Settings, Summary};
use muster_core::ports::{DetectionBus, LakeWriter, MetricsSink, ObjectSource, Quarantine};
use muster_core::s3event::{parse_trigger, ObjectRef, Skipped, Trigger, TriggerKind};
use serde::Serialize;
use serde_json::Value;
use std::io::Write;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::{error, info, info_span, warn, Instrument};

/// The function's configuration, read once at cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Bucket of the lake and of quarantine records (`OUTPUT_BUCKET`, required).
    pub output_bucket: String,
    /// Lake prefix (`OCSF_PREFIX`, default `ocsf/`).
    pub ocsf_prefix: String,
    /// Quarantine prefix (`QUARANTINE_PREFIX`, default `quarantine/`).
    pub quarantine_prefix: String,
    /// gzip level of lake files (`GZIP_LEVEL`, 0–9, default 1: codec time dominates).
    pub gzip_level: u32,
    /// CloudWatch namespace of the EMF metrics (`METRICS_NAMESPACE`, default `Muster`).
    pub metrics_namespace: String,
    /// Objects of one invocation normalised at once (`OBJECT_CONCURRENCY`, default 2,
    /// the vCPUs of a Lambda at ~3.5 GB; each object is one blocking thread).
    pub concurrency: usize,
    /// EventBridge bus the rule hits are published to (`DETECTION_BUS`, name or ARN);
    /// unset, no rules are evaluated.
    pub detection_bus: Option<String>,
    /// A rules file merged over the built-in rules (`RULES_FILE`): a rule with a
    /// built-in id replaces it, others are added. Read by [`Config::rules`].
    pub rules_file: Option<std::path::PathBuf>,
    /// Check the signature of each CloudTrail digest that arrives against CloudTrail's
    /// public keys (`DIGEST_SIGNATURES`, default true; needs `cloudtrail:ListPublicKeys`).
    /// Off, or when the keys cannot be fetched, signatures are reported as not checked;
    /// log file hashes and the digest chain are checked either way.
    pub digest_signatures: bool,
}

pub use muster_aws::ConfigError;

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`Config::from_env`], over any variable lookup (tests pass a map).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(var);
        Ok(Config {
            output_bucket: env.required("OUTPUT_BUCKET", "the bucket the lake is written to")?,
            ocsf_prefix: env.prefix("OCSF_PREFIX", "ocsf/")?,
            quarantine_prefix: env.prefix("QUARANTINE_PREFIX", "quarantine/")?,
            gzip_level: env.number("GZIP_LEVEL", 1, 0, 9)? as u32,
            metrics_namespace: env
                .get("METRICS_NAMESPACE")
                .unwrap_or_else(|| "Muster".into()),
            concurrency: env.number("OBJECT_CONCURRENCY", 2, 1, 64)? as usize,
            detection_bus: env.get("DETECTION_BUS"),
            rules_file: env.get("RULES_FILE").map(Into::into),
            digest_signatures: env.flag("DIGEST_SIGNATURES", true)?,
        })
    }

    /// The detection rules: the built-in set, merged with `RULES_FILE` when it is set.
    /// A file that cannot be read or checked stops the function at cold start.
    pub fn rules(&self) -> Result<RuleSet, ConfigError> {
        let builtin = RuleSet::builtin();
        let Some(path) = &self.rules_file else {
            return Ok(builtin);
        };
        let fail = |reason: String| ConfigError {
            variable: "RULES_FILE",
            reason: format!("{}: {reason}", path.display()),
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let extra = RuleSet::from_json(&text).map_err(fail)?;
        Ok(builtin.merged_with(extra))
    }

    /// The normaliser's settings under this configuration.
    pub fn settings(&self) -> Settings {
        Settings {
            gzip_level: self.gzip_level,
            ocsf_prefix: self.ocsf_prefix.clone(),
            quarantine_prefix: self.quarantine_prefix.clone(),
            ..Settings::default()
        }
    }
}

/// The ports the handler works through. Shared with the blocking threads that
/// normalise, hence `Arc` and `Send + Sync`.
#[derive(Clone)]
pub struct Ports {
    pub source: Arc<dyn ObjectSource + Send + Sync>,
    pub lake: Arc<dyn LakeWriter + Send + Sync>,
    pub quarantine: Arc<dyn Quarantine + Send + Sync>,
    pub metrics: Arc<dyn MetricsSink + Send + Sync>,
}

/// EMF documents to stdout, one per line, where CloudWatch Logs picks them up.
pub struct StdoutMetrics;

impl MetricsSink for StdoutMetrics {
    fn publish(&self, emf_document: &str) -> muster_core::Result<()> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{emf_document}")
            .and_then(|()| out.flush())
            .map_err(|e| muster_core::Error::sink("stdout (metrics)", e, true))
    }
}

/// Why an invocation as a whole failed. Lambda retries the invocation on any of them.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The event is none of the triggers we accept.
    #[error(transparent)]
    Trigger(muster_core::Error),
    /// Objects of a direct or EventBridge trigger failed in a way a retry may fix.
    #[error("{failed} object(s) failed and may succeed on retry; first: {first}")]
    Retryable { failed: usize, first: String },
    /// An SQS message failed but carries no messageId to report it by: only failing
    /// the whole batch gets it redelivered.
    #[error("SQS message {index} failed and has no messageId; failing the whole batch")]
    UnidentifiedMessage { index: usize },
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        let error_type = match &e {
            HandlerError::Trigger(_) => "UnrecognisedTrigger",
            HandlerError::Retryable { .. } => "RetryableObjectFailure",
            HandlerError::UnidentifiedMessage { .. } => "UnidentifiedMessage",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// What became of one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Read to the end; its records are in the lake or in quarantine.
    Done,
    /// Deleted before it could be read (NoSuchKey): a warning, not worth a retry.
    Missing,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObjectReport {
    /// Index of the message (SQS) the object came in.
    #[serde(skip)]
    pub message: usize,
    pub object: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// For a CloudTrail digest: what checking it found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integrity: Option<Integrity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub retryable: bool,
}

/// The integrity check of one CloudTrail digest as it arrived.
#[derive(Debug, Clone, Serialize)]
pub struct Integrity {
    /// Absent when the digest could not be parsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainStatus>,
    pub log_files: u64,
    pub verified: u64,
    pub missing: u64,
    pub modified: u64,
    pub unreadable: u64,
    /// Detections published for it.
    pub detections: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct MessageReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub failed: bool,
    /// What in the message itself could not be understood.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// Everything one invocation did; the response is derived from it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub trigger: TriggerKind,
    pub skipped: Skipped,
    pub messages: Vec<MessageReport>,
    pub objects: Vec<ObjectReport>,
}

/// Totals over the objects of a report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub objects: usize,
    pub done: usize,
    pub missing: usize,
    pub failed: usize,
    pub records_in: u64,
    pub records_out: u64,
    pub quarantined: u64,
}

impl Report {
    pub fn totals(&self) -> Totals {
        let mut t = Totals {
            objects: self.objects.len(),
            ..Totals::default()
        };
        for o in &self.objects {
            match o.status {
                Status::Done => t.done += 1,
                Status::Missing => t.missing += 1,
                Status::Failed => t.failed += 1,
            }
            if let Some(s) = &o.summary {
                t.records_in += s.records_in;
                t.records_out += s.records_out;
                t.quarantined += s.quarantined;
            }
        }
        t
    }

    /// The Lambda response. For SQS: `batchItemFailures` naming exactly the failed
    /// messages (their objects' output is idempotent, so redelivery overwrites).
    /// Otherwise a summary, or an error when a retry may fix a failed object.
    pub fn response(&self) -> Result<Value, HandlerError> {
        if self.trigger == TriggerKind::Sqs {
            let mut response = SqsBatchResponse::default();
            for (index, m) in self.messages.iter().enumerate() {
                if !m.failed {
                    continue;
                }
                match &m.id {
                    Some(id) => response.add_failure(id.clone()),
                    None => return Err(HandlerError::UnidentifiedMessage { index }),
                }
            }
            return Ok(serde_json::to_value(response).unwrap_or_default());
        }
        let retryable: Vec<&ObjectReport> = self
            .objects
            .iter()
            .filter(|o| o.status == Status::Failed && o.retryable)
            .collect();
        if let Some(first) = retryable.first() {
            return Err(HandlerError::Retryable {
                failed: retryable.len(),
                first: first.error.clone().unwrap_or_default(),
            });
        }
        let mut summary = serde_json::json!({
            "trigger": self.trigger,
            "totals": self.totals(),
            "skipped": self.skipped,
            "objects": self.objects,
        });
        let errors: Vec<&String> = self.messages.iter().flat_map(|m| &m.errors).collect();
        if !errors.is_empty() {
            summary["errors"] = serde_json::json!(errors);
        }
        Ok(summary)
    }
}

/// The normaliser's Lambda handler.
pub struct Handler {
    config: Config,
    settings: Arc<Settings>,
    ports: Ports,
    detections: Option<Arc<dyn DetectionBus + Send + Sync>>,
    /// Checks digest signatures; kept for the process's life, so its key cache is too.
    signatures: Arc<dyn SignatureVerifier + Send + Sync>,
}

type Verifier = dyn SignatureVerifier + Send + Sync;

impl Handler {
    pub fn new(config: Config, ports: Ports) -> Self {
        let settings = Arc::new(config.settings());
        let why = if config.digest_signatures {
            "no source of CloudTrail public keys is configured"
        } else {
            "DIGEST_SIGNATURES is off"
        };
        Handler {
            config,
            settings,
            ports,
            detections: None,
            signatures: Arc::new(NoPublicKeys(why.into())),
        }
    }

    /// Checks the signatures of arriving CloudTrail digests with the public keys from
    /// `keys` (cached for the handler's life), unless `DIGEST_SIGNATURES` is off.
    pub fn with_public_keys(
        mut self,
        keys: Arc<dyn muster_core::ports::PublicKeySource + Send + Sync>,
    ) -> Self {
        if self.config.digest_signatures {
            self.signatures = Arc::new(muster_aws::DigestSignatures::new(keys));
        }
        self
    }

    /// [`Handler::with_public_keys`] over CloudTrail's ListPublicKeys; `handle` is the
    /// runtime the SDK runs on (the checks block on it from the normaliser's threads).
    pub fn with_cloudtrail_keys(
        self,
        sdk: &aws_config::SdkConfig,
        handle: &tokio::runtime::Handle,
    ) -> Self {
        let client = muster_aws::cloudtrail::client(sdk, None);
        self.with_public_keys(Arc::new(muster_aws::CloudTrailPublicKeys::new(
            client,
            handle.clone(),
        )))
    }

    /// Evaluates `rules` over every object's events and publishes the hits to `bus`.
    /// A failed publish fails the object like a failed lake write: retried, its
    /// detections are published again (consumers key findings on the detection, so
    /// that updates rather than duplicates).
    pub fn with_detections(
        mut self,
        bus: Arc<dyn DetectionBus + Send + Sync>,
        rules: RuleSet,
    ) -> Self {
        let mut settings = (*self.settings).clone();
        settings.rules = Some(Arc::new(rules));
        self.settings = Arc::new(settings);
        self.detections = Some(bus);
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// One invocation: the trigger event in, the Lambda response out.
    pub async fn handle(&self, event: Value) -> Result<Value, HandlerError> {
        let trigger = parse_trigger(&event).map_err(|e| {
            error!(error = %e, "unrecognised trigger event");
            HandlerError::Trigger(e)
        })?;
        let report = self.run(trigger).await;
        let totals = report.totals();
        info!(
            trigger = ?report.trigger,
            messages = report.messages.len(),
            failed_messages = report.messages.iter().filter(|m| m.failed).count(),
            objects = totals.objects,
            done = totals.done,
            missing = totals.missing,
            failed = totals.failed,
            records_in = totals.records_in,
            records_out = totals.records_out,
            quarantined = totals.quarantined,
            skipped_test_events = report.skipped.test_events,
            skipped_not_object_created = report.skipped.not_object_created,
            skipped_empty_objects = report.skipped.empty_objects,
            "invocation done"
        );
        report.response()
    }

    /// Normalises every object of the trigger, `concurrency` at a time.
    pub async fn run(&self, trigger: Trigger) -> Report {
        for (i, m) in trigger.messages.iter().enumerate() {
            for e in &m.errors {
                warn!(message = i, message_id = m.id.as_deref(), error = %e, "part of the trigger could not be understood");
            }
        }
        let jobs: Vec<(usize, Option<String>, ObjectRef)> = trigger
            .messages
            .iter()
            .enumerate()
            .flat_map(|(i, m)| m.objects.iter().map(move |o| (i, m.id.clone(), o.clone())))
            .collect();
        let objects: Vec<ObjectReport> = stream::iter(jobs)
            .map(|(i, id, object)| self.process(i, id, object))
            .buffered(self.config.concurrency.max(1))
            .collect()
            .await;
        let messages = trigger
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| MessageReport {
                id: m.id.clone(),
                failed: !m.errors.is_empty()
                    || objects
                        .iter()
                        .any(|o| o.message == i && o.status == Status::Failed),
                errors: m.errors.clone(),
            })
            .collect();
        Report {
            trigger: trigger.kind,
            skipped: trigger.skipped,
            messages,
            objects,
        }
    }

    async fn process(
        &self,
        message: usize,
        message_id: Option<String>,
        object: ObjectRef,
    ) -> ObjectReport {
        let name = object.display();
        let span = info_span!(
            "object",
            object = %name,
            message_id = message_id.as_deref(),
        );
        let ports = self.ports.clone();
        let settings = self.settings.clone();
        let bus = self.detections.clone();
        let signatures = self.signatures.clone();
        let blocking_span = span.clone();
        let work = tokio::task::spawn_blocking(move || {
            blocking_span.in_scope(|| {
                normalize_one(&ports, &settings, bus.as_deref(), &*signatures, &object)
            })
        });
        let report = async {
            let mut integrity = None;
            let (status, summary, error, retryable) = match work.await {
                Ok(Normalized::Done(summary, checked)) => {
                    integrity = checked;
                    (Status::Done, Some(summary), None, false)
                }
                Ok(Normalized::Missing) => (Status::Missing, None, None, false),
                Ok(Normalized::Failed {
                    summary,
                    error,
                    retryable,
                }) => (Status::Failed, summary, Some(error), retryable),
                // A panic is a bug in the normaliser; it would panic again on retry.
                Err(e) => (
                    Status::Failed,
                    None,
                    Some(format!("normaliser task failed: {e}")),
                    false,
                ),
            };
            self.log_and_publish(status, summary.as_ref(), error.as_deref(), retryable);
            ObjectReport {
                message,
                object: name.clone(),
                status,
                summary,
                integrity,
                error,
                retryable,
            }
        };
        report.instrument(span).await
    }

    fn log_and_publish(
        &self,
        status: Status,
        summary: Option<&Summary>,
        error: Option<&str>,
        retryable: bool,
    ) {
        match (status, summary) {
            (Status::Missing, _) => {
                warn!("object no longer exists (deleted before it was read): nothing to do")
            }
            (_, Some(s)) => {
                let by_class = serde_json::to_string(&s.by_class).unwrap_or_default();
                if let Some(error) = error {
                    error!(
                        source = s.source,
                        compression = ?s.compression,
                        records_in = s.records_in,
                        records_out = s.records_out,
                        quarantined = s.quarantined,
                        skipped = s.skipped,
                        by_class = %by_class,
                        outputs = s.outputs.len(),
                        quarantine_files = s.quarantine_files.len(),
                        digest = s.digest,
                        retryable,
                        error,
                        "object failed"
                    );
                } else {
                    info!(
                        source = s.source,
                        compression = ?s.compression,
                        records_in = s.records_in,
                        records_out = s.records_out,
                        quarantined = s.quarantined,
                        skipped = s.skipped,
                        by_class = %by_class,
                        outputs = s.outputs.len(),
                        quarantine_files = s.quarantine_files.len(),
                        digest = s.digest,
                        detections = s.detections,
                        "object normalized"
                    );
                }
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or_default();
                for doc in all_metrics(&self.config.metrics_namespace, s, now) {
                    if let Err(e) = self.ports.metrics.publish(&doc) {
                        warn!(error = %e, "publishing metrics failed");
                        break;
                    }
                }
            }
            (_, None) => error!(retryable, error, "object failed"),
        }
    }
}

enum Normalized {
    Done(Summary, Option<Integrity>),
    Missing,
    Failed {
        summary: Option<Summary>,
        error: String,
        retryable: bool,
    },
}

/// Opens and normalises one object; runs on a blocking thread.
fn normalize_one(
    ports: &Ports,
    settings: &Settings,
    bus: Option<&(dyn DetectionBus + Send + Sync)>,
    signatures: &Verifier,
    object: &ObjectRef,
) -> Normalized {
    let mut opened =
        match ports
            .source
            .open(&object.bucket, &object.key, object.version_id.as_deref())
        {
            Ok(Some(o)) => o,
            Ok(None) => return Normalized::Missing,
            Err(e) => {
                return Normalized::Failed {
                    summary: None,
                    retryable: e.is_retryable(),
                    error: e.to_string(),
                }
            }
        };
    // The store's metadata wins; the notification's fills what a store leaves out,
    // so the output id is as stable as it can be.
    let meta = &mut opened.meta;
    if meta.etag.is_none() {
        meta.etag = object.etag.clone();
    }
    if meta.version_id.is_none() {
        meta.version_id = object.version_id.clone();
    }
    if meta.size.is_none() {
        meta.size = object.size;
    }
    let outcome = normalize_object_with(
        opened,
        settings,
        ports.lake.as_ref(),
        ports.quarantine.as_ref(),
        bus.map(|b| b as &dyn DetectionBus),
    );
    let mut integrity = None;
    if outcome.error.is_none() && outcome.summary.digest {
        if let Some(bus) = bus {
            match check_digest(ports, bus, signatures, object) {
                Ok(checked) => integrity = Some(checked),
                Err(e) => {
                    return Normalized::Failed {
                        summary: Some(outcome.summary),
                        retryable: e.is_retryable(),
                        error: e.to_string(),
                    }
                }
            }
        }
    }
    match outcome.error {
        None => Normalized::Done(outcome.summary, integrity),
        Some(e) => Normalized::Failed {
            summary: Some(outcome.summary),
            retryable: e.is_retryable(),
            error: e.to_string(),
        },
    }
}

/// A CloudTrail digest just arrived: its signature is checked, its listed log files are
/// hashed from the bucket and its link to the previous digest checked; an invalid
/// signature, a missing or modified log file, or a broken chain, is published as a
/// detection. A signature that could not be checked (keys unavailable) is reported as
/// such and is not a detection: a failed ListPublicKeys is no evidence of tampering.
fn check_digest(
    ports: &Ports,
    bus: &(dyn DetectionBus + Send + Sync),
    signatures: &Verifier,
    object: &ObjectRef,
) -> muster_core::Result<Integrity> {
    let report = muster_core::digest::verify_delivered_signed(
        ports.source.as_ref(),
        &object.bucket,
        &object.key,
        signatures,
    )?;
    let t = &report.totals;
    let digest = report.digests.first();
    let (signature, signature_reason) = match digest.map(|d| &d.signature) {
        Some(SignatureStatus::Valid) => ("valid", ""),
        Some(SignatureStatus::Invalid(why)) => ("invalid", why.as_str()),
        Some(SignatureStatus::NotChecked(why)) => ("not checked", why.as_str()),
        None => ("none", ""),
    };
    info!(
        signature,
        signature_reason,
        log_files = t.log_files,
        verified = t.verified,
        missing = t.missing,
        modified = t.modified,
        unreadable = t.unreadable,
        chain_gaps = t.chain_gaps,
        digests_invalid = t.digests_invalid,
        "digest integrity checked"
    );
    for i in &report.invalid_digests {
        warn!(reason = %i.reason, "digest could not be parsed: its log files are not checked");
    }
    let detections = muster_core::digest::integrity_detections(&report);
    if !detections.is_empty() {
        bus.publish(&detections)?;
    }
    Ok(Integrity {
        signature: digest.map(|d| d.signature.clone()),
        chain: digest.map(|d| d.chain.clone()),
        log_files: t.log_files,
        verified: t.verified,
        missing: t.missing,
        modified: t.modified,
        unreadable: t.unreadable,
        detections: detections.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A root sign-in as CloudTrail delivers it: one CloudWatch.1 detection.
    const ROOT_SIGN_IN: &str = r#"{"Records":[{"eventVersion":"1.09","userIdentity":{"type":"Root","principalId":"111122223333","arn":"arn:aws:iam::111122223333:root","accountId":"111122223333","accessKeyId":""},"eventTime":"2024-05-14T07:45:00Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.99","userAgent":"Mozilla/5.0","requestParameters":null,"responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"MFAUsed":"Yes"},"eventID":"root-1","readOnly":false,"eventType":"AwsConsoleSignIn","managementEvent":true,"recipientAccountId":"111122223333","eventCategory":"Management"}]}"#;
    const ROOT_KEY: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/14/111122223333_CloudTrail_us-east-1_20240514T0745Z_root.json";

    struct OneObject;

    impl ObjectSource for OneObject {
        fn open(
            &self,
            bucket: &str,
            key: &str,
            _version: Option<&str>,
        ) -> muster_core::Result<Option<muster_core::ports::OpenedObject>> {
            Ok(Some(muster_core::ports::OpenedObject {
                meta: muster_core::ports::ObjectMeta {
                    bucket: bucket.into(),
                    key: key.into(),
                    ..Default::default()
                },
                body: Box::new(std::io::Cursor::new(ROOT_SIGN_IN.as_bytes().to_vec())),
            }))
        }
    }

    struct NoMetrics;

    impl MetricsSink for NoMetrics {
        fn publish(&self, _: &str) -> muster_core::Result<()> {
            Ok(())
        }
    }

    /// Records detections, or fails every publish (retryably or not).
    #[derive(Default)]
    struct Bus {
        published: std::sync::Mutex<Vec<String>>,
        fail: Option<bool>,
    }

    impl DetectionBus for Bus {
        fn publish(
            &self,
            detections: &[muster_core::detect::Detection],
        ) -> muster_core::Result<()> {
            if let Some(retryable) = self.fail {
                return Err(muster_core::Error::sink(
                    "EventBridge PutEvents",
                    "throttled",
                    retryable,
                ));
            }
            let mut p = self.published.lock().unwrap();
            p.extend(detections.iter().map(|d| d.rule_id.clone()));
            Ok(())
        }
    }

    #[tokio::test]
    async fn detections_are_published_and_a_failed_publish_fails_the_object() {
        let event = serde_json::json!({"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"logs"},"object":{"key":ROOT_KEY,"size":10}}}]});
        /// Bus fails (retryably?), detections published, Ok(detections counted) or Err
        /// (the invocation fails for a retry).
        type Case = (Option<bool>, Vec<&'static str>, Result<u64, ()>);
        let cases: Vec<Case> = vec![
            (None, vec!["muster.cis.cloudwatch.1"], Ok(1)),
            (Some(true), vec![], Err(())),
            (Some(false), vec![], Ok(0)),
        ];
        for (fail, want_published, want) in cases {
            let config =
                Config::from_lookup(|n| (n == "OUTPUT_BUCKET").then(|| "lake".into())).unwrap();
            let store = muster_core::ports::memory::MemoryStore::new();
            let ports = Ports {
                source: Arc::new(OneObject),
                lake: Arc::new(store.clone()),
                quarantine: Arc::new(store),
                metrics: Arc::new(NoMetrics),
            };
            let bus = Arc::new(Bus {
                fail,
                ..Bus::default()
            });
            let handler =
                Handler::new(config, ports).with_detections(bus.clone(), RuleSet::builtin());
            let got = handler.handle(event.clone()).await;
            assert_eq!(*bus.published.lock().unwrap(), want_published, "{fail:?}");
            match (got, want) {
                (Ok(r), Ok(n)) => {
                    assert_eq!(r["objects"][0]["summary"]["detections"], n, "{r:#}");
                    let failed = fail.is_some();
                    assert_eq!(r["objects"][0]["status"] == "failed", failed, "{r:#}");
                }
                (Err(HandlerError::Retryable { first, .. }), Err(())) => {
                    assert!(first.contains("EventBridge"), "{first}")
                }
                (got, want) => panic!("{fail:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn detection_is_configured_by_bus_and_rules_file() {
        let dir = std::env::temp_dir().join(format!("muster-rules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let extra = dir.join("extra.json");
        std::fs::write(
            &extra,
            r#"{"rules":[{"id":"org.break-glass","title":"Break-glass role used","description":"d","severity":"CRITICAL","types":["TTPs/Privilege Escalation"],"remediation":"https://example.com/runbook","when":{"field":"actor.user.name","equals":"break-glass"}}]}"#,
        )
        .unwrap();
        let broken = dir.join("broken.json");
        std::fs::write(&broken, r#"{"rules":[{"id":"x"}]}"#).unwrap();
        let builtin = RuleSet::builtin().rules.len();
        let extra_path = extra.display().to_string();
        let broken_path = broken.display().to_string();
        let missing_path = dir.join("missing.json").display().to_string();
        /// Variables, the bus, Ok(rule count) or Err(text in the error).
        type Case<'a> = (
            Vec<(&'a str, &'a str)>,
            Option<&'a str>,
            Result<usize, &'a str>,
        );
        let cases: Vec<Case> = vec![
            (vec![], None, Ok(builtin)),
            (
                vec![("DETECTION_BUS", "muster")],
                Some("muster"),
                Ok(builtin),
            ),
            (
                vec![("DETECTION_BUS", "muster"), ("RULES_FILE", &extra_path)],
                Some("muster"),
                Ok(builtin + 1),
            ),
            (vec![("RULES_FILE", &broken_path)], None, Err("RULES_FILE")),
            (
                vec![("RULES_FILE", &missing_path)],
                None,
                Err("missing.json"),
            ),
        ];
        for (vars, bus, want) in cases {
            let mut map: HashMap<&str, &str> = vars.iter().copied().collect();
            map.insert("OUTPUT_BUCKET", "lake");
            let c = Config::from_lookup(|n| map.get(n).map(|v| v.to_string())).unwrap();
            assert_eq!(c.detection_bus.as_deref(), bus, "{vars:?}");
            match (c.rules(), want) {
                (Ok(rules), Ok(n)) => assert_eq!(rules.rules.len(), n, "{vars:?}"),
                (Err(e), Err(text)) => assert!(e.to_string().contains(text), "{e}"),
                (got, want) => panic!(
                    "{vars:?}: got {:?}, want {want:?}",
                    got.map(|r| r.rules.len())
                ),
            }
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn config_has_defaults_and_fails_naming_the_variable() {
        type Want = Result<
            (
                &'static str,
                &'static str,
                &'static str,
                u32,
                &'static str,
                usize,
            ),
            &'static str,
        >;
        let cases: Vec<(&[(&str, &str)], Want)> = vec![
            (&[], Err("OUTPUT_BUCKET")),
            (&[("OUTPUT_BUCKET", "  ")], Err("OUTPUT_BUCKET")),
            (
                &[("OUTPUT_BUCKET", "lake")],
                Ok(("lake", "ocsf/", "quarantine/", 1, "Muster", 2)),
            ),
            (
                &[
                    ("OUTPUT_BUCKET", "lake"),
                    ("OCSF_PREFIX", "data/ocsf"),
                    ("QUARANTINE_PREFIX", "q/"),
                    ("GZIP_LEVEL", "6"),
                    ("METRICS_NAMESPACE", "Sec"),
                    ("OBJECT_CONCURRENCY", "4"),
                ],
                Ok(("lake", "data/ocsf/", "q/", 6, "Sec", 4)),
            ),
            (
                &[("OUTPUT_BUCKET", "lake"), ("GZIP_LEVEL", "10")],
                Err("GZIP_LEVEL"),
            ),
            (
                &[("OUTPUT_BUCKET", "lake"), ("GZIP_LEVEL", "fast")],
                Err("GZIP_LEVEL"),
            ),
            (
                &[("OUTPUT_BUCKET", "lake"), ("OCSF_PREFIX", "/abs")],
                Err("OCSF_PREFIX"),
            ),
            (
                &[("OUTPUT_BUCKET", "lake"), ("OBJECT_CONCURRENCY", "0")],
                Err("OBJECT_CONCURRENCY"),
            ),
        ];
        for (vars, want) in cases {
            let map: HashMap<&str, &str> = vars.iter().copied().collect();
            let got = Config::from_lookup(|n| map.get(n).map(|v| v.to_string()));
            match (got, want) {
                (Ok(c), Ok((bucket, ocsf, quarantine, level, ns, conc))) => {
                    assert_eq!(
                        (
                            c.output_bucket.as_str(),
                            c.ocsf_prefix.as_str(),
                            c.quarantine_prefix.as_str(),
                            c.gzip_level,
                            c.metrics_namespace.as_str(),
                            c.concurrency
                        ),
                        (bucket, ocsf, quarantine, level, ns, conc),
                        "{vars:?}"
                    );
                    let s = c.settings();
                    assert_eq!((s.gzip_level, s.ocsf_prefix.as_str()), (level, ocsf));
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
