//! log-normalizer: the Lambda handler that turns log files landing in S3 into OCSF
//! events in the lake.
//!
//! The handler is a plain async function over the ports of muster-core, so the same
//! code runs in Lambda (S3 adapters), in tests (in-memory fakes) and against moto.
//! Only `main.rs` knows it is in Lambda.

use aws_lambda_events::event::sqs::SqsBatchResponse;
use futures::stream::{self, StreamExt};
use muster_core::metrics::all_metrics;
use muster_core::normalize::{normalize_object, Settings, Summary};
use muster_core::ports::{LakeWriter, MetricsSink, ObjectSource, Quarantine};
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
}

/// A configuration variable that is missing or invalid: the function must not start.
#[derive(thiserror::Error)]
#[error("configuration: {variable}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

/// `main` returns this error, and the runtime prints it with `Debug`: make that the
/// sentence a person needs, not a struct dump.
impl std::fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`Config::from_env`], over any variable lookup (tests pass a map).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let output_bucket = get("OUTPUT_BUCKET").ok_or(ConfigError {
            variable: "OUTPUT_BUCKET",
            reason: "is required: the bucket the lake is written to".into(),
        })?;
        let prefix = |name: &'static str, default: &str| -> Result<String, ConfigError> {
            let mut p = get(name).unwrap_or_else(|| default.to_owned());
            if p.starts_with('/') {
                return Err(ConfigError {
                    variable: name,
                    reason: format!("{p:?} must not start with '/'"),
                });
            }
            if !p.ends_with('/') {
                p.push('/');
            }
            Ok(p)
        };
        let number = |name: &'static str, default: u64, max: u64, min: u64| match get(name) {
            None => Ok(default),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(ConfigError {
                    variable: name,
                    reason: format!("{v:?} is not an integer from {min} to {max}"),
                }),
            },
        };
        Ok(Config {
            output_bucket,
            ocsf_prefix: prefix("OCSF_PREFIX", "ocsf/")?,
            quarantine_prefix: prefix("QUARANTINE_PREFIX", "quarantine/")?,
            gzip_level: number("GZIP_LEVEL", 1, 9, 0)? as u32,
            metrics_namespace: get("METRICS_NAMESPACE").unwrap_or_else(|| "Muster".into()),
            concurrency: number("OBJECT_CONCURRENCY", 2, 64, 1)? as usize,
        })
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub retryable: bool,
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
}

impl Handler {
    pub fn new(config: Config, ports: Ports) -> Self {
        let settings = Arc::new(config.settings());
        Handler {
            config,
            settings,
            ports,
        }
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
        let blocking_span = span.clone();
        let work = tokio::task::spawn_blocking(move || {
            blocking_span.in_scope(|| normalize_one(&ports, &settings, &object))
        });
        let report = async {
            let (status, summary, error, retryable) = match work.await {
                Ok(Normalized::Done(summary)) => (Status::Done, Some(summary), None, false),
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
    Done(Summary),
    Missing,
    Failed {
        summary: Option<Summary>,
        error: String,
        retryable: bool,
    },
}

/// Opens and normalises one object; runs on a blocking thread.
fn normalize_one(ports: &Ports, settings: &Settings, object: &ObjectRef) -> Normalized {
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
    let outcome = normalize_object(
        opened,
        settings,
        ports.lake.as_ref(),
        ports.quarantine.as_ref(),
    );
    match outcome.error {
        None => Normalized::Done(outcome.summary),
        Some(e) => Normalized::Failed {
            summary: Some(outcome.summary),
            retryable: e.is_retryable(),
            error: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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
