//! GitHub Issues, REST API 2022-11-28.
//!
//! Settings: `base_url` (`https://api.github.com`, or `https://<host>/api/v3` for GitHub
//! Enterprise Server), `secret` (a token with issues:write), `project` (`owner/repo`,
//! required), `labels`, `assignee` (a login). The content's priority, when the route maps
//! one, is added as a label.
//!
//! - create: `POST /repos/{owner}/{repo}/issues {title, body, labels, assignees}`.
//! - comment: `POST /repos/{owner}/{repo}/issues/{n}/comments {body}`.
//! - close / reopen: `PATCH /repos/{owner}/{repo}/issues/{n}` with
//!   `{"state":"closed","state_reason":"completed"}` / `{"state":"open"}`, then the reason as
//!   a comment (the PATCH is idempotent, so a retried close comments once).
//!
//! Rate limits: 429 or 403 with Retry-After, or 403 with `x-ratelimit-remaining: 0`
//! (waits until `x-ratelimit-reset`), are retried like any 429.

use crate::http::{segment, truncate, Auth, Call, Req, Verdict};
use crate::Ctx;
use muster_core::error::Result;
use muster_core::ports::Budget;
use muster_core::tickets::{BackendKind, TicketChange, TicketContent, TicketRef};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const MAX_TITLE: usize = 256;
/// GitHub's limit on an issue or comment body.
const MAX_BODY: usize = 65_000;

fn done(_: &crate::http::Reply) -> Verdict {
    Verdict::Done
}

fn req(cx: &Ctx<'_>, method: Method, path: String) -> Result<Req> {
    Ok(Req::new(
        method,
        format!("{}{path}", cx.base()),
        Auth::Bearer(cx.secret_field("token")?),
    )
    .header("accept", "application/vnd.github+json")
    .header("x-github-api-version", "2022-11-28"))
}

/// `owner/repo`, checked so it cannot turn into another path.
fn repo(cx: &Ctx<'_>, ticket: Option<&TicketRef>) -> Result<String> {
    let value = ticket
        .and_then(|t| t.extra.get("repo"))
        .map(String::as_str)
        .or(cx.settings().project.as_deref())
        .unwrap_or("");
    let ok_part = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    match value.split_once('/') {
        Some((owner, name)) if ok_part(owner) && ok_part(name) => Ok(format!("{owner}/{name}")),
        _ => Err(cx.config_error(format!(
            "`project` must be the repository as owner/repo, not {value:?}"
        ))),
    }
}

pub(crate) fn create(cx: &Ctx<'_>, content: &TicketContent, budget: Budget) -> Result<TicketRef> {
    let settings = cx.settings();
    let repo = repo(cx, None)?;
    let mut labels = crate::labels(content, settings);
    if let Some(p) = content.priority.as_deref().filter(|p| !p.is_empty()) {
        if !labels.iter().any(|l| l == p) {
            labels.push(p.to_string());
        }
    }
    let mut body = json!({
        "title": truncate(content.title.trim(), MAX_TITLE),
        "body": truncate(&format!("{}\n\nFinding: `{}`", content.body, content.finding_id), MAX_BODY),
        "labels": labels,
    });
    if let Some(who) = settings.assignee.as_deref().filter(|a| !a.is_empty()) {
        body["assignees"] = json!([who]);
    }
    let call = Call {
        backend: "github",
        op: "create",
        finding_id: &content.finding_id,
    };
    let reply = cx.sender.send(
        &call,
        budget,
        &req(cx, Method::POST, format!("/repos/{repo}/issues"))?.json(&body),
        &done,
    )?;
    let answer = reply.json().unwrap_or(Value::Null);
    let number = answer
        .get("number")
        .and_then(Value::as_u64)
        .ok_or_else(|| {
            call.permanent(format!(
                "HTTP {}: the answer has no issue number",
                reply.status
            ))
        })?;
    let url = answer
        .get("html_url")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut extra = BTreeMap::new();
    // The ticket keeps its repository even if the route later points elsewhere.
    extra.insert("repo".to_string(), repo);
    Ok(TicketRef {
        backend: BackendKind::GitHub,
        key: number.to_string(),
        url,
        extra,
    })
}

fn issue_path(cx: &Ctx<'_>, ticket: &TicketRef) -> Result<String> {
    let repo = repo(cx, Some(ticket))?;
    Ok(format!("/repos/{repo}/issues/{}", segment(&ticket.key)))
}

fn post_comment(
    cx: &Ctx<'_>,
    ticket: &TicketRef,
    change: &TicketChange,
    op: &'static str,
    budget: Budget,
) -> Result<()> {
    let call = Call {
        backend: "github",
        op,
        finding_id: &change.finding_id,
    };
    let path = format!("{}/comments", issue_path(cx, ticket)?);
    let body = json!({"body": truncate(&change.text, MAX_BODY)});
    cx.sender.send(
        &call,
        budget,
        &req(cx, Method::POST, path)?.json(&body),
        &done,
    )?;
    Ok(())
}

pub(crate) fn comment(
    cx: &Ctx<'_>,
    ticket: &TicketRef,
    change: &TicketChange,
    budget: Budget,
) -> Result<()> {
    post_comment(cx, ticket, change, "comment", budget)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Open,
    Closed,
}

pub(crate) fn set_state(
    cx: &Ctx<'_>,
    ticket: &TicketRef,
    change: &TicketChange,
    state: State,
    budget: Budget,
) -> Result<()> {
    let (op, body) = match state {
        State::Closed => (
            "close",
            json!({"state": "closed", "state_reason": "completed"}),
        ),
        State::Open => ("reopen", json!({"state": "open"})),
    };
    let call = Call {
        backend: "github",
        op,
        finding_id: &change.finding_id,
    };
    cx.sender.send(
        &call,
        budget,
        &req(cx, Method::PATCH, issue_path(cx, ticket)?)?.json(&body),
        &done,
    )?;
    post_comment(cx, ticket, change, op, budget)
}
