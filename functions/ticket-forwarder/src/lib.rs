//! ticket-forwarder: the Lambda handler that turns Security Hub findings into tickets and
//! chat messages, exactly one ticket per finding, kept in sync with the finding's life.
//!
//! EventBridge rules deliver "Security Hub Findings - Imported" and "Security Hub
//! Findings - Custom Action" events (up to 100 findings each). The handler parses them
//! with the core parser and runs the core [`Forwarder`] over the ports: the ledger
//! (DynamoDB), the ticket backends (HTTP), the write-back (BatchUpdateFindings).
//!
//! EventBridge invokes asynchronously: an error makes Lambda retry the event (twice),
//! then send it to the dead-letter queue. So the handler fails the invocation when a
//! failure may pass (throttled backend, 5xx, ledger contention), and only then: the
//! ledger makes the retry safe, as findings already ticketed are not ticketed again.
//! Failures a retry cannot fix (a 401 from a backend, a finding Security Hub refuses to
//! update) are logged and reported in the answer. The handler is a plain async function
//! over the ports: only `main.rs` knows Lambda.

use muster_aws::Env;
use muster_core::error::Location;
use muster_core::ports::{Budget, FindingsWriteBack, Ledger, ObjectSource, TicketSink};
use muster_core::tickets::event::event_from_value;
use muster_core::tickets::{ForwardSummary, Forwarder, Routes};
use serde_json::Value;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tracing::{error, info, info_span, warn, Instrument};

pub use muster_aws::ConfigError;

/// Largest routes file read: routing rules are kilobytes; anything near this is a mistake.
pub const MAX_ROUTES_BYTES: u64 = 1024 * 1024;

/// Where the routing rules live (`ROUTES_URI`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutesUri {
    S3 { bucket: String, key: String },
    File(PathBuf),
}

impl RoutesUri {
    /// `s3://bucket/key`, or a file path (packaged with the function, or local in tests).
    pub fn parse(uri: &str) -> Result<RoutesUri, String> {
        match uri.strip_prefix("s3://") {
            Some(rest) => match rest.split_once('/') {
                Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok(RoutesUri::S3 {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                }),
                _ => Err(format!("{uri:?} is not s3://bucket/key")),
            },
            None if uri.contains("://") => Err(format!(
                "{uri:?}: only s3://bucket/key or a file path is supported"
            )),
            None => Ok(RoutesUri::File(PathBuf::from(uri))),
        }
    }
}

impl std::fmt::Display for RoutesUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RoutesUri::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
            RoutesUri::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The function's configuration, read once at cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// DynamoDB table of the ledger (`LEDGER_TABLE`, required; partition key
    /// `finding_id` (S), TTL on `expires_at`).
    pub ledger_table: String,
    /// The routing rules (`ROUTES_URI`, required: `s3://bucket/key` or a file path).
    pub routes_uri: RoutesUri,
    /// Secrets Manager names are `<prefix><secret name in the routes file>`
    /// (`SECRETS_PREFIX`, default `muster/`).
    pub secrets_prefix: String,
    /// Write the ticket link back onto the finding (`WRITE_BACK`, default true).
    pub write_back: bool,
    /// Ledger items expire this many days after their last write; 0 keeps them forever
    /// (`LEDGER_TTL_DAYS`, default 400: past Security Hub's 90-day finding retention,
    /// so a finding that comes back within a year reopens its ticket).
    pub ledger_ttl_days: u32,
    /// Findings of one event handled at once (`FORWARD_CONCURRENCY`, 1–32, default 4).
    pub concurrency: usize,
    /// How long a delivery owns a finding it is creating a ticket for (`LEASE_SECONDS`,
    /// 10–86400, default 900, Lambda's longest timeout): a crashed delivery's claim is
    /// taken over after it, and never while a slow create may still finish. Backend calls
    /// stop at the invocation's deadline, so the function's timeout is enough; set it to
    /// that, or a crashed create keeps its finding from the async retries until it passes.
    pub lease_seconds: i64,
    /// Kept free of the invocation's remaining time for the ledger writes and the
    /// write-back after the backends' last retry (`DEADLINE_MARGIN_MS`, default 3000).
    pub deadline_margin: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`Config::from_env`], over any variable lookup (tests pass a map).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(var);
        let ledger_table = env.required(
            "LEDGER_TABLE",
            "the DynamoDB table that maps finding Ids to tickets",
        )?;
        let uri = env.required(
            "ROUTES_URI",
            "the routing rules, as s3://bucket/key or a file path",
        )?;
        let routes_uri = RoutesUri::parse(&uri).map_err(|reason| ConfigError {
            variable: "ROUTES_URI",
            reason,
        })?;
        let secrets_prefix = env
            .get("SECRETS_PREFIX")
            .unwrap_or_else(|| "muster/".into());
        let write_back = env.flag("WRITE_BACK", true)?;
        let ledger_ttl_days = env.number("LEDGER_TTL_DAYS", 400, 0, 36_500)? as u32;
        let concurrency = env.number("FORWARD_CONCURRENCY", 4, 1, 32)? as usize;
        let lease_seconds = env.number("LEASE_SECONDS", 900, 10, 86_400)? as i64;
        let deadline_margin =
            Duration::from_millis(env.number("DEADLINE_MARGIN_MS", 3000, 0, 60_000)?);
        Ok(Config {
            ledger_table,
            routes_uri,
            secrets_prefix,
            write_back,
            ledger_ttl_days,
            concurrency,
            lease_seconds,
            deadline_margin,
        })
    }

    /// Reads and validates the routing rules: at cold start, so a bad file stops the
    /// function with the reason in its first log line instead of dropping findings.
    /// `s3` opens `s3://` URIs; it blocks, so call this off the async runtime.
    pub fn load_routes(&self, s3: &dyn ObjectSource) -> Result<Routes, ConfigError> {
        let fail = |reason: String| ConfigError {
            variable: "ROUTES_URI",
            reason: format!("{}: {reason}", self.routes_uri),
        };
        let reader: Box<dyn Read> = match &self.routes_uri {
            RoutesUri::File(path) => {
                Box::new(std::fs::File::open(path).map_err(|e| fail(e.to_string()))?)
            }
            RoutesUri::S3 { bucket, key } => match s3.open(bucket, key, None) {
                Ok(Some(o)) => o.body,
                Ok(None) => return Err(fail("no such object".into())),
                Err(e) => return Err(fail(e.to_string())),
            },
        };
        let mut bytes = Vec::new();
        reader
            .take(MAX_ROUTES_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| fail(e.to_string()))?;
        if bytes.len() as u64 > MAX_ROUTES_BYTES {
            return Err(fail(format!("larger than {MAX_ROUTES_BYTES} bytes")));
        }
        let text = String::from_utf8(bytes).map_err(|_| fail("not UTF-8 text".into()))?;
        Routes::from_json(&text, &self.routes_uri.to_string()).map_err(|e| ConfigError {
            variable: "ROUTES_URI",
            reason: e.to_string(),
        })
    }
}

/// The ports the handler works through, used from blocking threads.
#[derive(Clone)]
pub struct Ports {
    pub ledger: Arc<dyn Ledger>,
    pub tickets: Arc<dyn TicketSink>,
    /// `None` (or `WRITE_BACK=false`): findings are not updated.
    pub write_back: Option<Arc<dyn FindingsWriteBack>>,
}

/// Why an invocation failed. EventBridge's async invoke retries it, then the DLQ keeps it.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Not a Security Hub findings event: kept (through the retries, in the DLQ) for a
    /// person to look at, never silently dropped.
    #[error("unrecognised event: {0}")]
    Unrecognised(String),
    /// Findings failed in a way a retry may fix. Delivering the event again is safe: the
    /// ledger keeps findings already ticketed from being ticketed twice.
    #[error("{failed} finding(s) failed and may succeed on retry; first: {first}")]
    Retryable { failed: usize, first: String },
    /// The forwarding task itself failed (a bug).
    #[error("forwarding task failed: {0}")]
    Task(String),
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        let error_type = match &e {
            HandlerError::Unrecognised(_) => "UnrecognisedEvent",
            HandlerError::Retryable { .. } => "RetryableForwardFailure",
            HandlerError::Task(_) => "ForwardTaskFailure",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// The budget for backend calls: the invocation's deadline less `margin`, but never
/// less than half the time left, so a short timeout (Lambda's default 3 s, the local
/// emulator's) still gets its calls made. Without a deadline (not in Lambda) the
/// backends' own attempt limits bound the time; so with a deadline already past when
/// the event arrives, which Lambda never sends but `cargo lambda watch` does.
pub fn budget(deadline: Option<SystemTime>, margin: Duration) -> Budget {
    let deadline = deadline.and_then(|d| {
        let left = d.duration_since(SystemTime::now()).ok()?;
        Some(Instant::now() + left.saturating_sub(margin.min(left / 2)))
    });
    Budget { deadline }
}

/// The handler over the AWS adapters: routes from `config.routes_uri`, the ledger in
/// DynamoDB, credentials from Secrets Manager, tickets over HTTP, the write-back with
/// BatchUpdateFindings (to `securityhub_endpoint` when given: a stub in tests). Reads the
/// routes and builds reqwest's blocking client off the runtime, as both block.
pub async fn on_aws(
    config: Config,
    sdk: &aws_config::SdkConfig,
    aws: &muster_aws::AwsConfig,
    securityhub_endpoint: Option<&str>,
) -> Result<Handler, Box<dyn std::error::Error + Send + Sync>> {
    use muster_aws::{dynamodb, secrets, securityhub};
    let handle = tokio::runtime::Handle::current();
    let s3 = muster_aws::S3ObjectSource::new(aws.s3_client_from(sdk), handle.clone());
    let secrets = muster_aws::SecretsManagerSecrets::new(
        secrets::client(sdk, None),
        handle.clone(),
        &config.secrets_prefix,
    );
    let c = config.clone();
    let (routes, tickets) = tokio::task::spawn_blocking(move || {
        let routes = c.load_routes(&s3)?;
        let options = muster_tickets::HttpOptions::default();
        let tickets = muster_tickets::HttpTickets::new(Arc::new(secrets), options)?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((routes, tickets))
    })
    .await??;
    let ledger = muster_aws::DynamoLedger::new(
        dynamodb::client(sdk, None),
        handle.clone(),
        &config.ledger_table,
    );
    let write_back = muster_aws::SecurityHubWriteBack::new(
        securityhub::client(sdk, securityhub_endpoint),
        handle,
    );
    let ports = Ports {
        ledger: Arc::new(ledger),
        tickets: Arc::new(tickets),
        write_back: Some(Arc::new(write_back)),
    };
    Ok(Handler::new(config, routes, ports))
}

/// The forwarder's Lambda handler.
pub struct Handler {
    config: Config,
    routes: Arc<Routes>,
    ports: Ports,
}

impl Handler {
    pub fn new(config: Config, routes: Routes, ports: Ports) -> Self {
        Handler {
            config,
            routes: Arc::new(routes),
            ports,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// One invocation: the EventBridge event in, the summary out. `deadline` is the
    /// invocation's (Lambda's context), or `None` outside Lambda.
    pub async fn handle(
        &self,
        event: Value,
        deadline: Option<SystemTime>,
    ) -> Result<Value, HandlerError> {
        let text = |k: &str| {
            event
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let span = info_span!(
            "event",
            event_id = %text("id"),
            detail_type = %text("detail-type"),
            findings = tracing::field::Empty,
        );
        self.forward(event, deadline, span.clone())
            .instrument(span)
            .await
    }

    async fn forward(
        &self,
        event: Value,
        deadline: Option<SystemTime>,
        span: tracing::Span,
    ) -> Result<Value, HandlerError> {
        let parsed = event_from_value(&event, &Location::object("event")).map_err(|e| {
            error!(error = %e, "unrecognised event");
            HandlerError::Unrecognised(e.to_string())
        })?;
        drop(event);
        span.record("findings", parsed.findings.len());
        let budget = budget(deadline, self.config.deadline_margin);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        let routes = self.routes.clone();
        let ports = self.ports.clone();
        let write_back = self.config.write_back;
        let ttl_days = (self.config.ledger_ttl_days > 0).then_some(self.config.ledger_ttl_days);
        let concurrency = self.config.concurrency;
        let lease_seconds = self.config.lease_seconds;
        let summary: ForwardSummary = tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                Forwarder {
                    routes: &routes,
                    ledger: ports.ledger.as_ref(),
                    tickets: ports.tickets.as_ref(),
                    write_back: ports.write_back.as_deref().filter(|_| write_back),
                    ttl_days,
                    concurrency,
                    lease_seconds,
                }
                .forward(&parsed, now, budget)
            })
        })
        .await
        .map_err(|e| HandlerError::Task(e.to_string()))?;
        for f in &summary.failures {
            if f.retryable {
                warn!(finding = %f.finding_id, error = %f.error, "finding failed; the event will be retried");
            } else {
                error!(finding = %f.finding_id, error = %f.error, "finding failed; a retry cannot help");
            }
        }
        info!(
            findings = summary.findings,
            created = summary.created,
            updated = summary.updated,
            closed = summary.closed,
            reopened = summary.reopened,
            unchanged = summary.unchanged,
            unrouted = summary.unrouted,
            failed = summary.failed,
            write_back_failed = summary.write_back_failed,
            "event forwarded"
        );
        if summary.has_retryable_failures() {
            let retryable: Vec<_> = summary.failures.iter().filter(|f| f.retryable).collect();
            return Err(HandlerError::Retryable {
                failed: retryable.len(),
                first: retryable
                    .first()
                    .map(|f| format!("{}: {}", f.finding_id, f.error))
                    .unwrap_or_default(),
            });
        }
        Ok(serde_json::to_value(&summary).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn config_has_defaults_and_fails_naming_the_variable() {
        /// (table, routes, prefix, write_back, ttl days, concurrency, lease, margin ms)
        type Want = Result<
            (
                &'static str,
                RoutesUri,
                &'static str,
                bool,
                u32,
                usize,
                i64,
                u64,
            ),
            &'static str,
        >;
        let base = [
            ("LEDGER_TABLE", "muster-ledger"),
            ("ROUTES_URI", "s3://cfg/routes.json"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str)> {
            base.iter().chain(extra).copied().collect()
        };
        let s3 = || RoutesUri::S3 {
            bucket: "cfg".into(),
            key: "routes.json".into(),
        };
        let cases: Vec<(Vec<(&str, &str)>, Want)> = vec![
            (vec![], Err("LEDGER_TABLE")),
            (vec![("LEDGER_TABLE", "t")], Err("ROUTES_URI")),
            (
                with(&[]),
                Ok(("muster-ledger", s3(), "muster/", true, 400, 4, 900, 3000)),
            ),
            (
                vec![
                    ("LEDGER_TABLE", "t"),
                    ("ROUTES_URI", "/var/task/routes.json"),
                    ("SECRETS_PREFIX", "prod/tickets/"),
                    ("WRITE_BACK", "false"),
                    ("LEDGER_TTL_DAYS", "0"),
                    ("FORWARD_CONCURRENCY", "1"),
                    ("LEASE_SECONDS", "120"),
                    ("DEADLINE_MARGIN_MS", "500"),
                ],
                Ok((
                    "t",
                    RoutesUri::File("/var/task/routes.json".into()),
                    "prod/tickets/",
                    false,
                    0,
                    1,
                    120,
                    500,
                )),
            ),
            (
                with(&[("ROUTES_URI", "s3://bucket-only")]),
                Err("ROUTES_URI"),
            ),
            (with(&[("ROUTES_URI", "s3:///key")]), Err("ROUTES_URI")),
            (
                with(&[("ROUTES_URI", "https://example.com/r.json")]),
                Err("ROUTES_URI"),
            ),
            (with(&[("WRITE_BACK", "sometimes")]), Err("WRITE_BACK")),
            (with(&[("LEDGER_TTL_DAYS", "-1")]), Err("LEDGER_TTL_DAYS")),
            (
                with(&[("FORWARD_CONCURRENCY", "0")]),
                Err("FORWARD_CONCURRENCY"),
            ),
            (
                with(&[("FORWARD_CONCURRENCY", "33")]),
                Err("FORWARD_CONCURRENCY"),
            ),
            (with(&[("LEASE_SECONDS", "5")]), Err("LEASE_SECONDS")),
            (
                with(&[("DEADLINE_MARGIN_MS", "soon")]),
                Err("DEADLINE_MARGIN_MS"),
            ),
        ];
        for (vars, want) in cases {
            let map: HashMap<&str, &str> = vars.iter().copied().collect();
            let got = Config::from_lookup(|n| map.get(n).map(|v| v.to_string()));
            match (got, want) {
                (Ok(c), Ok((table, uri, prefix, write_back, ttl, conc, lease, margin))) => {
                    assert_eq!(
                        (
                            c.ledger_table.as_str(),
                            c.routes_uri,
                            c.secrets_prefix.as_str(),
                            c.write_back,
                            c.ledger_ttl_days,
                            c.concurrency,
                            c.lease_seconds,
                            c.deadline_margin
                        ),
                        (
                            table,
                            uri,
                            prefix,
                            write_back,
                            ttl,
                            conc,
                            lease,
                            Duration::from_millis(margin)
                        ),
                        "{vars:?}"
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

    #[test]
    fn the_budget_is_the_remaining_time_less_the_margin() {
        let margin = Duration::from_secs(3);
        assert!(budget(None, margin).deadline.is_none());
        // A timeout no longer than twice the margin keeps half its time for the calls:
        // with 3 s left the budget was once 0, and no ticket was ever attempted.
        let cases = [(60, 57.0), (3, 1.5), (1, 0.5)];
        for (remaining, want) in cases {
            let before = Instant::now();
            let b = budget(
                Some(SystemTime::now() + Duration::from_secs(remaining)),
                margin,
            );
            let left = b.deadline.unwrap().saturating_duration_since(before);
            assert!(
                left.as_secs_f64() > want - 0.4 && left.as_secs_f64() < want + 0.4,
                "{remaining}s left: budget {left:?}"
            );
        }
        // A deadline already past at the start is no deadline: the attempt limits bound
        // the calls (cargo lambda watch sends one; Lambda never does).
        let past = budget(Some(SystemTime::now() - Duration::from_secs(5)), margin);
        assert!(past.deadline.is_none());
    }
}
