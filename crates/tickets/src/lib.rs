//! muster's ticket and chat backends: [`HttpTickets`] implements
//! [`TicketSink`] over HTTP for Jira Cloud, ServiceNow, GitHub Issues, Slack,
//! PagerDuty and a signed generic webhook, picking the backend from `target.backend`.
//!
//! The port is synchronous (the forwarder calls it from blocking threads), so this
//! uses reqwest's blocking client: [`HttpTickets::new`] may be called anywhere (also
//! in `async fn main`), its calls belong on blocking threads (`spawn_blocking`).
//! TLS is rustls on the aws-lc-rs provider with the system's root certificates.
//!
//! # Credentials
//!
//! `settings.secret` names the secret; its value comes from [`Secrets`] and is never
//! logged nor put in an error. A value is either a plain string or a JSON object:
//!
//! | backend    | plain value            | JSON object                                   |
//! |------------|------------------------|-----------------------------------------------|
//! | jira       | `email:api_token`      | `{"email": "...", "api_token": "..."}`        |
//! | servicenow | `username:password`    | `{"username": "...", "password": "..."}`      |
//! | github     | token                  | `{"token": "..."}`                            |
//! | slack      | bot token (`xoxb-…`)   | `{"token": "..."}`                            |
//! | pagerduty  | integration routing key| `{"routing_key": "..."}`                      |
//! | webhook    | HMAC signing secret    | `{"secret": "..."}`                           |
//!
//! # Settings each backend reads
//!
//! See the module docs of [`jira`], [`servicenow`], [`github`], [`slack`],
//! [`pagerduty`] and [`webhook`].

use muster_core::error::{Error, Result};
use muster_core::ports::{Budget, Secrets, TicketSink};
use muster_core::tickets::{BackendKind, Target, TicketChange, TicketContent, TicketRef};
use std::sync::Arc;
use std::time::Duration;

pub mod github;
mod http;
pub mod jira;
pub mod pagerduty;
pub mod servicenow;
pub mod slack;
pub mod webhook;

#[cfg(feature = "test-support")]
pub mod stub;

pub use webhook::{hmac_sha256, signature};

/// How the HTTP client behaves.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Per request (connect + answer); never longer than what the budget leaves.
    pub timeout: Duration,
    /// Attempts per request, the first included (at least 1).
    pub max_attempts: u32,
    pub user_agent: String,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            timeout: Duration::from_secs(10),
            max_attempts: 5,
            user_agent: concat!("muster/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// The ticket sink over HTTP: one connection pool for every backend.
pub struct HttpTickets {
    sender: http::Sender,
    secrets: Arc<dyn Secrets>,
}

impl HttpTickets {
    pub fn new(secrets: Arc<dyn Secrets>, options: HttpOptions) -> Result<Self> {
        // reqwest is built without a bundled provider; use the aws-lc-rs one the AWS SDK
        // already links. If the process installed one already, that one stays.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        // reqwest's blocking client refuses to be built inside an async runtime (it blocks
        // while its own runtime thread starts). Building it on a thread of its own makes
        // `new` safe to call from `async fn main` too; calls still belong on blocking threads.
        let builder = reqwest::blocking::Client::builder()
            .user_agent(options.user_agent.clone())
            .timeout(options.timeout)
            .connect_timeout(options.timeout);
        let client = std::thread::spawn(move || builder.build())
            .join()
            .map_err(|_| Error::Config("ticket HTTP client: building it panicked".into()))?
            .map_err(|e| Error::Config(format!("ticket HTTP client: {}", e.without_url())))?;
        Ok(HttpTickets {
            sender: http::Sender {
                client,
                timeout: options.timeout,
                max_attempts: options.max_attempts,
            },
            secrets,
        })
    }

    /// The secret value named by the target's settings.
    fn secret(&self, target: &Target) -> Result<String> {
        let name = target.settings.secret.as_deref().ok_or_else(|| {
            Error::Config(format!(
                "route {:?}: backend {} needs `secret` (the name of its credentials)",
                target.route,
                target.backend.name()
            ))
        })?;
        self.secrets.get(name)
    }

    fn ctx<'a>(&'a self, target: &'a Target) -> Result<Ctx<'a>> {
        Ok(Ctx {
            sender: &self.sender,
            target,
            secret: self.secret(target)?,
        })
    }
}

/// What a backend needs for one operation.
pub(crate) struct Ctx<'a> {
    pub sender: &'a http::Sender,
    pub target: &'a Target,
    pub secret: String,
}

impl Ctx<'_> {
    pub fn settings(&self) -> &muster_core::tickets::BackendSettings {
        &self.target.settings
    }

    /// `base_url` without its trailing slash.
    pub fn base(&self) -> &str {
        self.target.settings.base_url.trim_end_matches('/')
    }

    pub fn config_error(&self, message: impl std::fmt::Display) -> Error {
        Error::Config(format!(
            "route {:?} ({}): {message}",
            self.target.route,
            self.target.backend.name()
        ))
    }

    /// A field of a JSON secret, or the plain value.
    pub fn secret_field(&self, field: &str) -> Result<String> {
        let value = self.secret.trim();
        if value.starts_with('{') {
            let parsed: serde_json::Value = serde_json::from_str(value)
                .map_err(|_| self.config_error("the secret is not valid JSON"))?;
            parsed
                .get(field)
                .and_then(|v| v.as_str())
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .ok_or_else(|| self.config_error(format!("the secret has no string `{field}`")))
        } else if value.is_empty() {
            Err(self.config_error("the secret is empty"))
        } else {
            Ok(value.to_string())
        }
    }

    /// A `{first, second}` JSON secret or a plain `first:second` value.
    pub fn secret_pair(&self, first: &str, second: &str) -> Result<(String, String)> {
        let value = self.secret.trim();
        if value.starts_with('{') {
            Ok((self.secret_field(first)?, self.secret_field(second)?))
        } else {
            match value.split_once(':') {
                Some((a, b)) if !a.is_empty() && !b.is_empty() => {
                    Ok((a.to_string(), b.to_string()))
                }
                _ => Err(self.config_error(format!(
                    "the secret must be `{first}:{second}` or JSON {{\"{first}\",\"{second}\"}}"
                ))),
            }
        }
    }
}

/// The labels of a ticket: the content's, then the route's, once each.
pub(crate) fn labels(
    content: &TicketContent,
    settings: &muster_core::tickets::BackendSettings,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in content.labels.iter().chain(settings.labels.iter()) {
        if !l.is_empty() && !out.contains(l) {
            out.push(l.clone());
        }
    }
    out
}

/// A short stable id for a finding (PagerDuty dedup_key, ServiceNow correlation id,
/// webhook delivery ids): finding Ids are long ARNs, these must be short and the same
/// on every delivery.
pub(crate) fn stable_id(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..16])
}

impl TicketSink for HttpTickets {
    fn create(
        &self,
        target: &Target,
        content: &TicketContent,
        budget: Budget,
    ) -> Result<TicketRef> {
        let cx = self.ctx(target)?;
        match target.backend {
            BackendKind::Jira => jira::create(&cx, content, budget),
            BackendKind::ServiceNow => servicenow::create(&cx, content, budget),
            BackendKind::GitHub => github::create(&cx, content, budget),
            BackendKind::Slack => slack::create(&cx, content, budget),
            BackendKind::PagerDuty => pagerduty::create(&cx, content, budget),
            BackendKind::Webhook => webhook::create(&cx, content, budget),
        }
    }

    fn comment(
        &self,
        target: &Target,
        ticket: &TicketRef,
        change: &TicketChange,
        budget: Budget,
    ) -> Result<()> {
        let cx = self.ctx(target)?;
        match target.backend {
            BackendKind::Jira => jira::comment(&cx, ticket, change, budget),
            BackendKind::ServiceNow => servicenow::comment(&cx, ticket, change, budget),
            BackendKind::GitHub => github::comment(&cx, ticket, change, budget),
            BackendKind::Slack => slack::reply(&cx, ticket, change, slack::Kind::Update, budget),
            BackendKind::PagerDuty => {
                pagerduty::trigger_again(&cx, ticket, change, "comment", budget)
            }
            BackendKind::Webhook => {
                webhook::change(&cx, ticket, change, webhook::Action::Updated, budget)
            }
        }
    }

    fn close(
        &self,
        target: &Target,
        ticket: &TicketRef,
        change: &TicketChange,
        budget: Budget,
    ) -> Result<()> {
        let cx = self.ctx(target)?;
        match target.backend {
            BackendKind::Jira => jira::transition(&cx, ticket, change, jira::Goal::Close, budget),
            BackendKind::ServiceNow => servicenow::resolve(&cx, ticket, change, budget),
            BackendKind::GitHub => {
                github::set_state(&cx, ticket, change, github::State::Closed, budget)
            }
            BackendKind::Slack => slack::reply(&cx, ticket, change, slack::Kind::Close, budget),
            BackendKind::PagerDuty => pagerduty::resolve(&cx, ticket, change, budget),
            BackendKind::Webhook => {
                webhook::change(&cx, ticket, change, webhook::Action::Closed, budget)
            }
        }
    }

    fn reopen(
        &self,
        target: &Target,
        ticket: &TicketRef,
        change: &TicketChange,
        budget: Budget,
    ) -> Result<()> {
        let cx = self.ctx(target)?;
        match target.backend {
            BackendKind::Jira => jira::transition(&cx, ticket, change, jira::Goal::Reopen, budget),
            BackendKind::ServiceNow => servicenow::reopen(&cx, ticket, change, budget),
            BackendKind::GitHub => {
                github::set_state(&cx, ticket, change, github::State::Open, budget)
            }
            BackendKind::Slack => slack::reply(&cx, ticket, change, slack::Kind::Reopen, budget),
            BackendKind::PagerDuty => {
                pagerduty::trigger_again(&cx, ticket, change, "reopen", budget)
            }
            BackendKind::Webhook => {
                webhook::change(&cx, ticket, change, webhook::Action::Reopened, budget)
            }
        }
    }
}
