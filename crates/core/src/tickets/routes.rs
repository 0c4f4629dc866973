//! Routing rules: which backend (and with which settings) a finding's ticket goes to.
//! Loaded once at cold start and validated completely, so a typo fails the deployment
//! rather than silently dropping findings at 3 a.m.
//!
//! ```json
//! {
//!   "backends": {
//!     "jira-sec": {"type": "jira", "base_url": "https://acme.atlassian.net",
//!                  "secret": "jira", "project": "SEC",
//!                  "priority": {"CRITICAL": "Highest", "HIGH": "High"}},
//!     "chat": {"type": "slack", "base_url": "https://slack.com/api",
//!              "secret": "slack", "channel": "C0123456789"}
//!   },
//!   "routes": [
//!     {"name": "prod-critical",
//!      "match": {"severity": ["CRITICAL", "HIGH"], "account": ["111111111111"]},
//!      "backend": "jira-sec", "labels": ["prod"]},
//!     {"name": "ignore-informational", "match": {"severity": ["INFORMATIONAL"]}, "drop": true},
//!     {"name": "everything-else", "default": true, "backend": "chat"}
//!   ]
//! }
//! ```
//!
//! Rules are tried in order; the first whose every condition holds wins. A condition is a
//! list of accepted values (any of them); values compare case-insensitively and a trailing
//! `*` matches a prefix. `title` is a regular expression (regex-lite syntax). A rule with
//! `"default": true` matches everything and must be the last one; a rule with
//! `"drop": true` (instead of a backend) drops what it matches on purpose. Findings no
//! rule matches are dropped too, and counted as unrouted.

use super::event::{EventKind, FindingView};
use super::{BackendKind, BackendSettings, Target};
use crate::error::{Error, Result};
use regex_lite::Regex;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub const SEVERITY_LABELS: [&str; 5] = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL"];
pub const WORKFLOW_STATUSES: [&str; 4] = ["NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED"];
pub const RECORD_STATES: [&str; 2] = ["ACTIVE", "ARCHIVED"];
pub const COMPLIANCE_STATUSES: [&str; 4] = ["PASSED", "WARNING", "FAILED", "NOT_AVAILABLE"];
pub const EVENT_KINDS: [&str; 2] = ["imported", "custom_action"];

/// The validated routing table.
#[derive(Debug, Clone)]
pub struct Routes {
    rules: Vec<Rule>,
    backends: BTreeMap<String, (BackendKind, BackendSettings)>,
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    conditions: Conditions,
    is_default: bool,
    /// `None`: a drop rule.
    target: Option<Target>,
}

/// One accepted value: exact (case-insensitive) or, with a trailing `*`, a prefix.
#[derive(Debug, Clone)]
struct Pattern {
    lower: String,
    prefix: bool,
}

impl Pattern {
    fn new(raw: &str) -> Self {
        let (body, prefix) = match raw.strip_suffix('*') {
            Some(body) => (body, true),
            None => (raw, false),
        };
        Pattern {
            lower: body.to_ascii_lowercase(),
            prefix,
        }
    }

    fn matches(&self, value: &str) -> bool {
        if self.prefix {
            value.len() >= self.lower.len()
                && value.is_char_boundary(self.lower.len())
                && value[..self.lower.len()].eq_ignore_ascii_case(&self.lower)
        } else {
            value.eq_ignore_ascii_case(&self.lower)
        }
    }
}

fn any(patterns: &Option<Vec<Pattern>>, values: &[&str]) -> bool {
    match patterns {
        None => true,
        Some(ps) => ps.iter().any(|p| values.iter().any(|v| p.matches(v))),
    }
}

#[derive(Debug, Clone, Default)]
struct Conditions {
    severity: Option<Vec<Pattern>>,
    account: Option<Vec<Pattern>>,
    region: Option<Vec<Pattern>>,
    /// Product name or product ARN.
    product: Option<Vec<Pattern>>,
    generator: Option<Vec<Pattern>>,
    resource_type: Option<Vec<Pattern>>,
    workflow_status: Option<Vec<Pattern>>,
    record_state: Option<Vec<Pattern>>,
    compliance_status: Option<Vec<Pattern>>,
    title: Option<Regex>,
    event: Option<Vec<Pattern>>,
    action_name: Option<Vec<Pattern>>,
}

impl Conditions {
    fn matches(&self, kind: &EventKind, f: &FindingView) -> bool {
        let (event, action) = match kind {
            EventKind::Imported => ("imported", ""),
            EventKind::CustomAction { action_name } => ("custom_action", action_name.as_str()),
        };
        let resource_types: Vec<&str> = f.resource_types.iter().map(String::as_str).collect();
        any(&self.severity, &[&f.severity_label])
            && any(&self.account, &[&f.aws_account_id])
            && any(&self.region, &[&f.region])
            && any(&self.product, &[&f.product_name, &f.product_arn])
            && any(&self.generator, &[&f.generator_id])
            && any(&self.resource_type, &resource_types)
            && any(&self.workflow_status, &[&f.workflow_status])
            && any(&self.record_state, &[&f.record_state])
            && any(
                &self.compliance_status,
                &[f.compliance_status.as_deref().unwrap_or("")],
            )
            && self.title.as_ref().is_none_or(|re| re.is_match(&f.title))
            && any(&self.event, &[event])
            && any(&self.action_name, &[action])
    }
}

// ---- the file as written -------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    backends: Option<OrderedMap>,
    #[serde(default)]
    routes: Option<Vec<Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    name: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default, rename = "match")]
    match_: Option<RawMatch>,
    #[serde(default)]
    default: bool,
    #[serde(default)]
    drop: bool,
    #[serde(default)]
    backend: Option<String>,
    // Overrides of the backend's settings for this rule.
    #[serde(default)]
    labels: Option<Vec<String>>,
    #[serde(default)]
    priority: Option<BTreeMap<String, String>>,
    #[serde(default)]
    assignee: Option<String>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    issue_type: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    severity: Option<Vec<String>>,
    account: Option<Vec<String>>,
    region: Option<Vec<String>>,
    product: Option<Vec<String>>,
    generator: Option<Vec<String>>,
    resource_type: Option<Vec<String>>,
    workflow_status: Option<Vec<String>>,
    record_state: Option<Vec<String>>,
    compliance_status: Option<Vec<String>>,
    title: Option<String>,
    event: Option<Vec<String>>,
    action_name: Option<Vec<String>>,
}

impl RawMatch {
    fn is_empty(&self) -> bool {
        self.severity.is_none()
            && self.account.is_none()
            && self.region.is_none()
            && self.product.is_none()
            && self.generator.is_none()
            && self.resource_type.is_none()
            && self.workflow_status.is_none()
            && self.record_state.is_none()
            && self.compliance_status.is_none()
            && self.title.is_none()
            && self.event.is_none()
            && self.action_name.is_none()
    }
}

/// A JSON object kept in file order with its duplicate keys (serde_json's map would
/// silently keep the last of two backends with the same name).
struct OrderedMap(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for OrderedMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of named backends")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<OrderedMap, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    out.push((k, v));
                }
                Ok(OrderedMap(out))
            }
        }
        d.deserialize_map(V)
    }
}

fn config(origin: &str, msg: impl fmt::Display) -> Error {
    Error::Config(format!("routes file {origin}: {msg}"))
}

fn enum_list(
    values: Option<Vec<String>>,
    allowed: &[&str],
    what: &str,
    field: &str,
) -> std::result::Result<Option<Vec<Pattern>>, String> {
    let Some(values) = values else {
        return Ok(None);
    };
    if values.is_empty() {
        return Err(format!("field `match.{field}`: empty list matches nothing"));
    }
    for v in &values {
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(v)) {
            return Err(format!(
                "field `match.{field}`: unknown {what} {v:?} (expected one of {})",
                allowed.join(", ")
            ));
        }
    }
    Ok(Some(values.iter().map(|v| Pattern::new(v)).collect()))
}

fn free_list(
    values: Option<Vec<String>>,
    field: &str,
) -> std::result::Result<Option<Vec<Pattern>>, String> {
    let Some(values) = values else {
        return Ok(None);
    };
    if values.is_empty() {
        return Err(format!("field `match.{field}`: empty list matches nothing"));
    }
    if values.iter().any(|v| v.is_empty() || v == "*") {
        return Err(format!(
            "field `match.{field}`: empty or bare `*` value; leave the field out to match anything"
        ));
    }
    Ok(Some(values.iter().map(|v| Pattern::new(v)).collect()))
}

fn conditions(m: RawMatch) -> std::result::Result<Conditions, String> {
    let title = match m.title {
        None => None,
        Some(t) => Some(
            Regex::new(&t)
                .map_err(|e| format!("field `match.title`: bad regular expression {t:?}: {e}"))?,
        ),
    };
    Ok(Conditions {
        severity: enum_list(m.severity, &SEVERITY_LABELS, "severity label", "severity")?,
        account: free_list(m.account, "account")?,
        region: free_list(m.region, "region")?,
        product: free_list(m.product, "product")?,
        generator: free_list(m.generator, "generator")?,
        resource_type: free_list(m.resource_type, "resource_type")?,
        workflow_status: enum_list(
            m.workflow_status,
            &WORKFLOW_STATUSES,
            "workflow status",
            "workflow_status",
        )?,
        record_state: enum_list(
            m.record_state,
            &RECORD_STATES,
            "record state",
            "record_state",
        )?,
        compliance_status: enum_list(
            m.compliance_status,
            &COMPLIANCE_STATUSES,
            "compliance status",
            "compliance_status",
        )?,
        title,
        event: enum_list(m.event, &EVENT_KINDS, "event kind", "event")?,
        action_name: free_list(m.action_name, "action_name")?,
    })
}

fn check_priority(map: &BTreeMap<String, String>, field: &str) -> std::result::Result<(), String> {
    for k in map.keys() {
        if !SEVERITY_LABELS.contains(&k.as_str()) {
            return Err(format!(
                "field `{field}`: unknown severity label {k:?} (expected one of {}, upper case)",
                SEVERITY_LABELS.join(", ")
            ));
        }
    }
    Ok(())
}

/// What each backend cannot work without, checked on the settings a rule ends up with.
fn check_target(kind: BackendKind, s: &BackendSettings) -> std::result::Result<(), String> {
    match kind {
        BackendKind::Jira if s.project.as_deref().unwrap_or("").is_empty() => {
            Err("jira needs `project` (the project key)".to_string())
        }
        BackendKind::GitHub
            if !s.project.as_deref().is_some_and(|p| {
                p.split_once('/')
                    .is_some_and(|(o, r)| !o.is_empty() && !r.is_empty())
            }) =>
        {
            Err("github needs `project` as \"owner/repo\"".to_string())
        }
        BackendKind::Slack if s.channel.as_deref().unwrap_or("").is_empty() => {
            Err("slack needs `channel` (a channel id)".to_string())
        }
        _ => Ok(()),
    }
}

fn backend(
    name: &str,
    value: Value,
) -> std::result::Result<(BackendKind, BackendSettings), String> {
    let Value::Object(mut obj) = value else {
        return Err(format!("backend {name:?}: expected an object"));
    };
    let kind = match obj.remove("type") {
        None => return Err(format!("backend {name:?}: field `type` is missing")),
        Some(t) => serde_json::from_value::<BackendKind>(t.clone()).map_err(|_| {
            format!(
                "backend {name:?}: field `type`: unknown backend {t} (expected one of jira, servicenow, github, slack, pagerduty, webhook)"
            )
        })?,
    };
    let settings: BackendSettings =
        serde_json::from_value(Value::Object(obj)).map_err(|e| format!("backend {name:?}: {e}"))?;
    let url = settings.base_url.as_str();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(format!(
            "backend {name:?}: field `base_url`: {url:?} is not an http(s) URL"
        ));
    }
    if settings.secret.as_deref() == Some("") {
        return Err(format!("backend {name:?}: field `secret`: empty name"));
    }
    check_priority(&settings.priority, "priority").map_err(|e| format!("backend {name:?}: {e}"))?;
    Ok((kind, settings))
}

impl Routes {
    /// Parses and validates a routes file. Errors name the file, the rule (by index and
    /// name) or backend, and the field.
    pub fn from_json(text: &str, origin: &str) -> Result<Routes> {
        let raw: RawFile = serde_json::from_str(text).map_err(|e| config(origin, e))?;

        let Some(raw_backends) = raw.backends.filter(|b| !b.0.is_empty()) else {
            return Err(config(
                origin,
                "no backends: `backends` must name at least one",
            ));
        };
        let mut backends = BTreeMap::new();
        for (name, value) in raw_backends.0 {
            if name.is_empty() {
                return Err(config(origin, "a backend has an empty name"));
            }
            let parsed = backend(&name, value).map_err(|e| config(origin, e))?;
            if backends.insert(name.clone(), parsed).is_some() {
                return Err(config(origin, format!("backend {name:?} is defined twice")));
            }
        }

        let raw_routes = raw.routes.unwrap_or_default();
        if raw_routes.is_empty() {
            return Err(config(
                origin,
                "no routes: `routes` must hold at least one rule (every finding would be dropped)",
            ));
        }
        let count = raw_routes.len();
        let mut names = BTreeSet::new();
        let mut rules = Vec::with_capacity(count);
        for (i, value) in raw_routes.into_iter().enumerate() {
            let label = match value.get("name").and_then(Value::as_str) {
                Some(n) => format!("routes[{i}] {n:?}"),
                None => format!("routes[{i}]"),
            };
            let err = |msg: String| config(origin, format!("{label}: {msg}"));
            let r: RawRoute = serde_json::from_value(value).map_err(|e| err(e.to_string()))?;
            if r.name.is_empty() {
                return Err(err("field `name`: empty".to_string()));
            }
            if !names.insert(r.name.clone()) {
                return Err(err(format!("duplicate rule name {:?}", r.name)));
            }
            let has_match = r.match_.as_ref().is_some_and(|m| !m.is_empty());
            if r.default {
                if has_match {
                    return Err(err(
                        "a `default` rule matches everything: remove `match`".to_string()
                    ));
                }
                if i + 1 != count {
                    return Err(err(
                        "the `default` rule must be the last one (the rules after it could never match)"
                            .to_string(),
                    ));
                }
            } else if !has_match {
                return Err(err(
                    "field `match`: missing or empty; a rule that matches everything must say `\"default\": true`"
                        .to_string(),
                ));
            }
            if r.drop
                && (r.labels.is_some()
                    || r.priority.is_some()
                    || r.assignee.is_some()
                    || r.channel.is_some()
                    || r.project.is_some()
                    || r.issue_type.is_some())
            {
                return Err(err("a `drop` rule takes no backend settings".to_string()));
            }
            let conditions = conditions(r.match_.unwrap_or_default()).map_err(err)?;
            let target = match (r.drop, r.backend) {
                (true, Some(_)) => {
                    return Err(err("`drop` and `backend` exclude each other".to_string()))
                }
                (true, None) => None,
                (false, None) => {
                    return Err(err(
                        "field `backend` is missing (or say `\"drop\": true`)".to_string()
                    ))
                }
                (false, Some(b)) => {
                    let Some((kind, base)) = backends.get(&b) else {
                        return Err(err(format!(
                            "field `backend`: unknown backend {b:?} (defined: {})",
                            backends.keys().cloned().collect::<Vec<_>>().join(", ")
                        )));
                    };
                    let mut settings = base.clone();
                    if let Some(labels) = r.labels {
                        for l in labels {
                            if !settings.labels.contains(&l) {
                                settings.labels.push(l);
                            }
                        }
                    }
                    if let Some(priority) = r.priority {
                        check_priority(&priority, "priority").map_err(err)?;
                        settings.priority.extend(priority);
                    }
                    settings.assignee = r.assignee.or(settings.assignee);
                    settings.channel = r.channel.or(settings.channel);
                    settings.project = r.project.or(settings.project);
                    settings.issue_type = r.issue_type.or(settings.issue_type);
                    check_target(*kind, &settings)
                        .map_err(|e| err(format!("backend {b:?}: {e}")))?;
                    Some(Target {
                        route: r.name.clone(),
                        backend: *kind,
                        settings,
                    })
                }
            };
            rules.push(Rule {
                name: r.name,
                conditions,
                is_default: r.default,
                target,
            });
        }
        Ok(Routes { rules, backends })
    }

    /// The first matching rule's target, treating the finding as Imported. `None`:
    /// unrouted (no rule matched, or a `drop` rule did).
    pub fn route(&self, f: &FindingView) -> Option<Target> {
        self.route_event(&EventKind::Imported, f)
    }

    /// As [`route`](Self::route), for findings of a given event kind (rules may match
    /// `event` / `action_name`).
    pub fn route_event(&self, kind: &EventKind, f: &FindingView) -> Option<Target> {
        self.matching_rule(kind, f).and_then(|r| r.target.clone())
    }

    /// The name of the rule that decides the finding (drop rules included), if any.
    pub fn rule_name(&self, kind: &EventKind, f: &FindingView) -> Option<&str> {
        self.matching_rule(kind, f).map(|r| r.name.as_str())
    }

    fn matching_rule(&self, kind: &EventKind, f: &FindingView) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| r.is_default || r.conditions.matches(kind, f))
    }

    /// The target of the rule with this name: how a ticket made by that rule is found
    /// again for comments, closing and reopening.
    pub fn target_by_name(&self, route: &str) -> Option<Target> {
        self.rules
            .iter()
            .find(|r| r.name == route)
            .and_then(|r| r.target.clone())
    }

    /// The names of every secret the backends need (to fetch them at cold start).
    pub fn secret_names(&self) -> Vec<String> {
        let set: BTreeSet<String> = self
            .backends
            .values()
            .filter_map(|(_, s)| s.secret.clone())
            .collect();
        set.into_iter().collect()
    }

    /// Rule names in order.
    pub fn rule_names(&self) -> Vec<&str> {
        self.rules.iter().map(|r| r.name.as_str()).collect()
    }
}
