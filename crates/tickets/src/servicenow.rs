//! ServiceNow, Table API on the `incident` table.
//!
//! Settings: `base_url` (`https://<instance>.service-now.com`), `secret` (username +
//! password, Basic auth), `project` (assignment group: sys_id or name), `assignee`
//! (`assigned_to`: user sys_id or user name), `priority` (severity label -> either a
//! priority `1`..`5`, sent as the impact/urgency pair that yields it in the default
//! priority matrix, or an explicit `impact/urgency` such as `2/1`), `close_transition`
//! (the close code, default `Solution provided`). `labels` and the finding id go into
//! the description and `correlation_id` (the finding id, or a hash of it when longer
//! than the field's 100 characters).
//!
//! - create: `POST /api/now/table/incident` -> `result.sys_id`, `result.number`.
//! - comment: `PATCH /api/now/table/incident/{sys_id}` with `work_notes`.
//! - close: the same PATCH with `state` 6 (Resolved), `close_code`, `close_notes`.
//! - reopen: the same PATCH with `state` 2 (In Progress) and `work_notes`.
//!
//! PATCHes set absolute values, so a retried close or reopen is harmless.

use crate::http::{segment, truncate, Auth, Call, Req, Verdict};
use crate::Ctx;
use muster_core::error::Result;
use muster_core::ports::Budget;
use muster_core::tickets::{BackendKind, TicketChange, TicketContent, TicketRef};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// `short_description` is 160 characters in the default dictionary.
const MAX_SHORT: usize = 160;
const MAX_CORRELATION: usize = 100;
const MAX_TEXT: usize = 32_000;

/// Incident states of the default `incident` table.
const STATE_IN_PROGRESS: &str = "2";
const STATE_RESOLVED: &str = "6";

fn auth(cx: &Ctx<'_>) -> Result<Auth> {
    let (user, password) = cx.secret_pair("username", "password")?;
    Ok(Auth::Basic { user, password })
}

fn done(_: &crate::http::Reply) -> Verdict {
    Verdict::Done
}

/// (impact, urgency) for a severity, or for the route's mapping of it.
fn impact_urgency(severity: &str, mapped: Option<&str>) -> (String, String) {
    if let Some(m) = mapped.map(str::trim) {
        if let Some((i, u)) = m.split_once('/') {
            return (i.trim().to_string(), u.trim().to_string());
        }
        let pair = match m {
            "1" => Some(("1", "1")),
            "2" => Some(("1", "2")),
            "3" => Some(("2", "2")),
            "4" => Some(("2", "3")),
            "5" => Some(("3", "3")),
            _ => None,
        };
        if let Some((i, u)) = pair {
            return (i.to_string(), u.to_string());
        }
    }
    let (i, u) = match severity.to_ascii_uppercase().as_str() {
        "CRITICAL" => ("1", "1"),
        "HIGH" => ("1", "2"),
        "MEDIUM" => ("2", "2"),
        "LOW" => ("2", "3"),
        _ => ("3", "3"),
    };
    (i.to_string(), u.to_string())
}

fn correlation_id(finding_id: &str) -> String {
    if finding_id.chars().count() <= MAX_CORRELATION {
        finding_id.to_string()
    } else {
        format!("muster-{}", crate::stable_id(&[finding_id]))
    }
}

pub(crate) fn create(cx: &Ctx<'_>, content: &TicketContent, budget: Budget) -> Result<TicketRef> {
    let settings = cx.settings();
    let (impact, urgency) = impact_urgency(&content.severity, content.priority.as_deref());
    let labels = crate::labels(content, settings);
    let mut description = content.body.clone();
    description.push_str(&format!("\n\nFinding: {}", content.finding_id));
    if !labels.is_empty() {
        description.push_str(&format!("\nLabels: {}", labels.join(", ")));
    }
    let mut body = json!({
        "short_description": truncate(content.title.trim(), MAX_SHORT),
        "description": truncate(&description, MAX_TEXT),
        "impact": impact,
        "urgency": urgency,
        "category": "security",
        "correlation_id": correlation_id(&content.finding_id),
        "correlation_display": "muster",
    });
    if let Some(group) = settings.project.as_deref().filter(|g| !g.is_empty()) {
        body["assignment_group"] = json!(group);
    }
    if let Some(who) = settings.assignee.as_deref().filter(|a| !a.is_empty()) {
        body["assigned_to"] = json!(who);
    }
    let call = Call {
        backend: "servicenow",
        op: "create",
        finding_id: &content.finding_id,
    };
    let req = Req::new(
        Method::POST,
        format!("{}/api/now/table/incident", cx.base()),
        auth(cx)?,
    )
    .json(&body);
    let reply = cx.sender.send(&call, budget, &req, &done)?;
    let answer = reply.json().unwrap_or(Value::Null);
    let sys_id = answer
        .pointer("/result/sys_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            call.permanent(format!(
                "HTTP {}: the answer has no result.sys_id",
                reply.status
            ))
        })?;
    let mut extra = BTreeMap::new();
    if let Some(number) = answer.pointer("/result/number").and_then(Value::as_str) {
        extra.insert("number".to_string(), number.to_string());
    }
    Ok(TicketRef {
        backend: BackendKind::ServiceNow,
        key: sys_id.to_string(),
        url: format!("{}/incident.do?sys_id={}", cx.base(), segment(sys_id)),
        extra,
    })
}

fn patch(
    cx: &Ctx<'_>,
    ticket: &TicketRef,
    op: &'static str,
    finding_id: &str,
    body: Value,
    budget: Budget,
) -> Result<()> {
    let call = Call {
        backend: "servicenow",
        op,
        finding_id,
    };
    let url = format!(
        "{}/api/now/table/incident/{}",
        cx.base(),
        segment(&ticket.key)
    );
    let req = Req::new(Method::PATCH, url, auth(cx)?).json(&body);
    cx.sender.send(&call, budget, &req, &done)?;
    Ok(())
}

pub(crate) fn comment(
    cx: &Ctx<'_>,
    ticket: &TicketRef,
    change: &TicketChange,
    budget: Budget,
) -> Result<()> {
    let body = json!({"work_notes": truncate(&change.text, MAX_TEXT)});
    patch(cx, ticket, "comment", &change.finding_id, body, budget)
}

pub(crate) fn resolve(
    cx: &Ctx<'_>,
    ticket: &TicketRef,
    change: &TicketChange,
    budget: Budget,
) -> Result<()> {
    let code = cx
        .settings()
        .close_transition
        .as_deref()
        .filter(|c| !c.is_empty())
        .unwrap_or("Solution provided");
    let body = json!({
        "state": STATE_RESOLVED,
        "close_code": code,
        "close_notes": truncate(&change.text, MAX_TEXT),
    });
    patch(cx, ticket, "close", &change.finding_id, body, budget)
}

pub(crate) fn reopen(
    cx: &Ctx<'_>,
    ticket: &TicketRef,
    change: &TicketChange,
    budget: Budget,
) -> Result<()> {
    let body = json!({
        "state": STATE_IN_PROGRESS,
        "work_notes": truncate(&change.text, MAX_TEXT),
    });
    patch(cx, ticket, "reopen", &change.finding_id, body, budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impact_and_urgency() {
        let cases: &[(&str, Option<&str>, (&str, &str))] = &[
            ("CRITICAL", None, ("1", "1")),
            ("HIGH", None, ("1", "2")),
            ("MEDIUM", None, ("2", "2")),
            ("LOW", None, ("2", "3")),
            ("INFORMATIONAL", None, ("3", "3")),
            ("LOW", Some("1"), ("1", "1")),
            ("LOW", Some("2/1"), ("2", "1")),
            ("HIGH", Some("whatever"), ("1", "2")),
        ];
        for (sev, mapped, (i, u)) in cases {
            assert_eq!(
                impact_urgency(sev, *mapped),
                (i.to_string(), u.to_string()),
                "{sev} {mapped:?}"
            );
        }
    }

    #[test]
    fn correlation_ids_fit() {
        assert_eq!(correlation_id("short"), "short");
        let long = "arn:aws:securityhub:us-east-1:123456789012:".repeat(4);
        let id = correlation_id(&long);
        assert!(id.len() <= MAX_CORRELATION && id.starts_with("muster-"));
        assert_eq!(id, correlation_id(&long));
    }
}
