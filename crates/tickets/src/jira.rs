//! Jira Cloud, REST API v3.
//!
//! Settings: `base_url` (`https://<site>.atlassian.net`), `secret` (email + API token,
//! Basic auth), `project` (project key, required), `issue_type` (default `Task`),
//! `labels`, `priority` (severity label -> Jira priority name), `assignee` (Atlassian
//! accountId), `close_transition` / `reopen_transition` (transition names, defaults
//! `Done` / `To Do`, matched case-insensitively against the transition's name or the
//! status it leads to).
//!
//! - create: `POST /rest/api/3/issue`; the description is Atlassian Document Format.
//! - comment: `POST /rest/api/3/issue/{key}/comment` with an ADF body.
//! - close / reopen: `GET /rest/api/3/issue/{key}/transitions`, then
//!   `POST /rest/api/3/issue/{key}/transitions {"transition":{"id"}}`, then the reason as a
//!   comment. The transition goes first so a retried close never comments twice: when
//!   the transition is no longer offered, the issue's status category says whether it
//!   is already where we want it.

use crate::http::{segment, truncate, Auth, Call, Req, Verdict};
use crate::Ctx;
use muster_core::error::Result;
use muster_core::ports::Budget;
use muster_core::tickets::{BackendKind, TicketChange, TicketContent, TicketRef};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Jira rejects longer summaries.
const MAX_SUMMARY: usize = 255;
/// Jira's limit on a text field (description, comment body).
const MAX_TEXT: usize = 32_000;

fn auth(cx: &Ctx<'_>) -> Result<Auth> {
    let (user, password) = cx.secret_pair("email", "api_token")?;
    Ok(Auth::Basic { user, password })
}

fn issue_url(cx: &Ctx<'_>, key: &str, tail: &str) -> String {
    format!("{}/rest/api/3/issue/{}{tail}", cx.base(), segment(key))
}

fn done(_: &crate::http::Reply) -> Verdict {
    Verdict::Done
}

pub(crate) fn create(cx: &Ctx<'_>, content: &TicketContent, budget: Budget) -> Result<TicketRef> {
    let settings = cx.settings();
    let project = settings
        .project
        .as_deref()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| cx.config_error("`project` (the Jira project key) is required"))?;
    let mut fields = json!({
        "project": {"key": project},
        "summary": summary(&content.title),
        "issuetype": {"name": settings.issue_type.as_deref().unwrap_or("Task")},
        "description": adf(&content.body),
        "labels": crate::labels(content, settings).iter().map(|l| label(l)).collect::<Vec<_>>(),
    });
    if let Some(priority) = content.priority.as_deref().filter(|p| !p.is_empty()) {
        fields["priority"] = json!({"name": priority});
    }
    if let Some(assignee) = settings.assignee.as_deref().filter(|a| !a.is_empty()) {
        fields["assignee"] = json!({"accountId": assignee});
    }
    let call = Call {
        backend: "jira",
        op: "create",
        finding_id: &content.finding_id,
    };
    let req = Req::new(
        Method::POST,
        format!("{}/rest/api/3/issue", cx.base()),
        auth(cx)?,
    )
    .json(&json!({"fields": fields}));
    let reply = cx.sender.send(&call, budget, &req, &done)?;
    let body = reply.json().unwrap_or(Value::Null);
    let key = body
        .get("key")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            call.permanent(format!(
                "HTTP {}: the answer has no issue key",
                reply.status
            ))
        })?;
    let mut extra = BTreeMap::new();
    if let Some(id) = body.get("id").and_then(Value::as_str) {
        extra.insert("id".to_string(), id.to_string());
    }
    Ok(TicketRef {
        backend: BackendKind::Jira,
        key: key.to_string(),
        url: format!("{}/browse/{key}", cx.base()),
        extra,
    })
}

pub(crate) fn comment(
    cx: &Ctx<'_>,
    ticket: &TicketRef,
    change: &TicketChange,
    budget: Budget,
) -> Result<()> {
    post_comment(
        cx,
        ticket,
        &change.text,
        "comment",
        &change.finding_id,
        budget,
    )
}

fn post_comment(
    cx: &Ctx<'_>,
    ticket: &TicketRef,
    text: &str,
    op: &'static str,
    finding_id: &str,
    budget: Budget,
) -> Result<()> {
    let call = Call {
        backend: "jira",
        op,
        finding_id,
    };
    let req = Req::new(
        Method::POST,
        issue_url(cx, &ticket.key, "/comment"),
        auth(cx)?,
    )
    .json(&json!({"body": adf(text)}));
    cx.sender.send(&call, budget, &req, &done)?;
    Ok(())
}

/// Where a transition should take the issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    Close,
    Reopen,
}

pub(crate) fn transition(
    cx: &Ctx<'_>,
    ticket: &TicketRef,
    change: &TicketChange,
    goal: Goal,
    budget: Budget,
) -> Result<()> {
    let settings = cx.settings();
    let (wanted, op) = match goal {
        Goal::Close => (
            settings.close_transition.as_deref().unwrap_or("Done"),
            "close",
        ),
        Goal::Reopen => (
            settings.reopen_transition.as_deref().unwrap_or("To Do"),
            "reopen",
        ),
    };
    let call = Call {
        backend: "jira",
        op,
        finding_id: &change.finding_id,
    };
    let url = issue_url(cx, &ticket.key, "/transitions");
    let reply = cx.sender.send(
        &call,
        budget,
        &Req::new(Method::GET, url.clone(), auth(cx)?),
        &done,
    )?;
    let list = reply.json().unwrap_or(Value::Null);
    let transitions = list
        .get("transitions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let found = transitions.iter().find(|t| {
        let name = t.get("name").and_then(Value::as_str).unwrap_or("");
        let to = t.pointer("/to/name").and_then(Value::as_str).unwrap_or("");
        name.eq_ignore_ascii_case(wanted) || to.eq_ignore_ascii_case(wanted)
    });
    match found.and_then(|t| t.get("id")).and_then(|id| {
        id.as_str()
            .map(str::to_string)
            .or_else(|| id.as_u64().map(|n| n.to_string()))
    }) {
        Some(id) => {
            let req =
                Req::new(Method::POST, url, auth(cx)?).json(&json!({"transition": {"id": id}}));
            cx.sender.send(&call, budget, &req, &done)?;
        }
        None => {
            // Not offered: fine if the issue is already there (a retried close), else a
            // workflow that does not match the settings.
            let status_url = format!("{}?fields=status", issue_url(cx, &ticket.key, ""));
            let reply = cx.sender.send(
                &call,
                budget,
                &Req::new(Method::GET, status_url, auth(cx)?),
                &done,
            )?;
            let issue = reply.json().unwrap_or(Value::Null);
            let category = issue
                .pointer("/fields/status/statusCategory/key")
                .and_then(Value::as_str)
                .unwrap_or("");
            let already = match goal {
                Goal::Close => category == "done",
                Goal::Reopen => !category.is_empty() && category != "done",
            };
            if !already {
                let names: Vec<&str> = transitions
                    .iter()
                    .filter_map(|t| t.get("name").and_then(Value::as_str))
                    .collect();
                return Err(call.permanent(format!(
                    "{}: no transition named {wanted:?} (offered: {}); set `{}_transition` in the route",
                    ticket.key,
                    if names.is_empty() { "none".to_string() } else { names.join(", ") },
                    op
                )));
            }
        }
    }
    post_comment(cx, ticket, &change.text, op, &change.finding_id, budget)
}

/// One line, within Jira's limit.
fn summary(title: &str) -> String {
    let one_line: String = title
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = one_line.trim();
    let summary = truncate(trimmed, MAX_SUMMARY);
    if summary.is_empty() {
        "Security Hub finding".to_string()
    } else {
        summary
    }
}

/// Jira labels cannot contain spaces.
fn label(l: &str) -> String {
    truncate(&l.split_whitespace().collect::<Vec<_>>().join("_"), 255)
}

/// Plain text as an Atlassian Document Format document: a paragraph per blank-line
/// separated block, hard breaks between its lines. ADF forbids empty text nodes.
pub fn adf(text: &str) -> Value {
    let text = truncate(text, MAX_TEXT);
    let mut paragraphs = Vec::new();
    for block in text.split("\n\n") {
        let mut nodes = Vec::new();
        for line in block.lines() {
            let line = line.trim_end();
            if line.is_empty() {
                continue;
            }
            if !nodes.is_empty() {
                nodes.push(json!({"type": "hardBreak"}));
            }
            nodes.push(json!({"type": "text", "text": line}));
        }
        if !nodes.is_empty() {
            paragraphs.push(json!({"type": "paragraph", "content": nodes}));
        }
    }
    if paragraphs.is_empty() {
        paragraphs.push(json!({"type": "paragraph", "content": []}));
    }
    json!({"type": "doc", "version": 1, "content": paragraphs})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adf_shapes() {
        assert_eq!(
            adf("a\nb\n\nc"),
            json!({"type":"doc","version":1,"content":[
                {"type":"paragraph","content":[{"type":"text","text":"a"},{"type":"hardBreak"},{"type":"text","text":"b"}]},
                {"type":"paragraph","content":[{"type":"text","text":"c"}]}
            ]})
        );
        assert_eq!(
            adf("\n\n"),
            json!({"type":"doc","version":1,"content":[{"type":"paragraph","content":[]}]})
        );
    }

    #[test]
    fn summaries_and_labels() {
        assert_eq!(summary("[HIGH] a\nb"), "[HIGH] a b");
        assert_eq!(summary(""), "Security Hub finding");
        assert_eq!(summary(&"x".repeat(300)).chars().count(), 255);
        assert_eq!(label("security hub"), "security_hub");
    }
}
