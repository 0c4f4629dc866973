//! Ticketing: the finding as the forwarder sees it, routing rules, the ledger's
//! state machine and the forwarding loop. No HTTP here: backends implement
//! [`TicketSink`](crate::ports::TicketSink) in muster-tickets, the ledger and the
//! write-back are adapters over DynamoDB / Security Hub (or local files in the CLI).

pub mod event;
pub mod forward;
pub mod lifecycle;
pub mod memory;
pub mod routes;

pub use event::{parse_event, parse_events, EventKind, FindingView, SecurityHubEvent};
pub use forward::{ForwardFailure, ForwardSummary, Forwarder};
pub use lifecycle::{decide, Action};
pub use routes::Routes;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The ticket and chat systems muster talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Jira,
    ServiceNow,
    GitHub,
    Slack,
    PagerDuty,
    Webhook,
}

impl BackendKind {
    pub const fn name(self) -> &'static str {
        match self {
            BackendKind::Jira => "jira",
            BackendKind::ServiceNow => "servicenow",
            BackendKind::GitHub => "github",
            BackendKind::Slack => "slack",
            BackendKind::PagerDuty => "pagerduty",
            BackendKind::Webhook => "webhook",
        }
    }
}

/// A backend and its settings, as a route selects them. Which fields a backend
/// reads is documented on each backend; unknown keys in the routes file are errors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSettings {
    /// Base URL of the API (e.g. `https://acme.atlassian.net`, `https://api.github.com`,
    /// `https://slack.com/api`, `https://events.pagerduty.com`, the webhook URL): a setting
    /// so tests and the CLI can point any backend at a local server.
    pub base_url: String,
    /// Name of the secret that holds the credentials (Secrets Manager name in Lambda,
    /// env var / file entry in the CLI). The value is never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Jira project key, ServiceNow assignment group, GitHub `owner/repo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Jira issue type (default "Bug"/"Task" is the backend's choice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_type: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Severity label (CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL) -> the backend's priority value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub priority: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// Slack channel id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Jira: name of the transition that closes / reopens (defaults "Done" / "To Do").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_transition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reopen_transition: Option<String>,
    /// Webhook: header that carries the HMAC-SHA256 signature (default `X-Muster-Signature`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_header: Option<String>,
}

/// What a route chose for a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// The matching rule's name (kept in the ledger, shown in summaries).
    pub route: String,
    pub backend: BackendKind,
    pub settings: BackendSettings,
}

/// A ticket (or chat thread, or PagerDuty incident) as its backend identifies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRef {
    pub backend: BackendKind,
    /// Jira issue key, ServiceNow sys_id, GitHub issue number, Slack message `ts`,
    /// PagerDuty dedup_key, webhook delivery id.
    pub key: String,
    /// A human link for the write-back note (may be empty where the backend has none).
    #[serde(default)]
    pub url: String,
    /// Anything else the backend needs to find the ticket again (Slack channel, ServiceNow number…).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

/// What a new ticket says. Built from the finding by the forwarder, rendered by each backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TicketContent {
    pub finding_id: String,
    /// `[HIGH] <title>`-style summary line, ≤ 255 chars.
    pub title: String,
    /// Plain text body: description, account, region, resources, product, link to the finding.
    pub body: String,
    /// ASFF severity label.
    pub severity: String,
    /// The route's priority mapping applied to the severity, if any.
    pub priority: Option<String>,
    pub labels: Vec<String>,
    pub account: String,
    pub region: String,
}

/// Why a ticket is being commented on, closed or reopened, with the text to post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TicketChange {
    pub finding_id: String,
    /// Plain text: which fields changed, old -> new.
    pub text: String,
    pub severity: String,
}

/// Where a finding's ticket is in its life, as the ledger records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TicketState {
    /// Claimed by a delivery that is creating the ticket now (or crashed doing so:
    /// `lease_until` says when another delivery may take over).
    Creating,
    Open,
    Closed,
}

/// One ledger item, keyed by the finding Id. `version` makes every write conditional:
/// a writer names the version it read, and loses if someone wrote in between.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub finding_id: String,
    pub state: TicketState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<TicketRef>,
    /// The route that made the ticket.
    pub route: String,
    /// Fingerprint of the fields that matter (severity, workflow, record state, compliance)
    /// as last handled: [`lifecycle::state_hash`], a readable `["HIGH","NEW","ACTIVE","FAILED"]`
    /// so comments can say what changed. Opaque to the stores.
    pub state_hash: String,
    /// Hash the finding will have once our own write-back lands: an Imported event with
    /// this hash is our echo and is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_back_hash: Option<String>,
    /// Epoch seconds until which a `Creating` claim belongs to its writer.
    #[serde(default)]
    pub lease_until: i64,
    /// Epoch seconds after which the store may expire the item (DynamoDB TTL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// RFC 3339 time of the last write.
    pub updated_at: String,
    /// Starts at 1 on the first put; each conditional update writes `version + 1`.
    pub version: u64,
}

/// What to write back to Security Hub for one finding (BatchUpdateFindings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WriteBack {
    pub finding_id: String,
    pub product_arn: String,
    /// Note text (≤ 512 chars), e.g. `Ticket PROJ-12: https://…`.
    pub note: String,
    /// Set Workflow.Status to NOTIFIED (only when the finding is NEW: never undo RESOLVED/SUPPRESSED).
    pub set_notified: bool,
    /// UserDefinedFields to merge, e.g. {"muster_ticket": "PROJ-12", "muster_ticket_url": "…"}.
    pub user_defined_fields: BTreeMap<String, String>,
}
