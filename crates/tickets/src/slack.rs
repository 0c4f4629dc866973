//! Slack, Web API `chat.postMessage`.
//!
//! Settings: `base_url` (`https://slack.com/api`), `secret` (a bot token, `xoxb-…`, with
//! `chat:write`), `channel` (channel id, required).
//!
//! - create: a message with blocks (header, body, context) in the channel; the ticket
//!   is the message `ts` (and its channel in `extra`). The link comes from
//!   `chat.getPermalink`, best effort: a failure there leaves the link empty rather than
//!   failing a message that was posted (a retry would post it twice).
//! - comment / close / reopen: replies in the message's thread (`thread_ts`).
//!
//! Slack answers HTTP 200 with `{"ok":false,"error":"…"}`: `ratelimited`,
//! `internal_error`, `fatal_error`, `service_unavailable`, `request_timeout` are retried;
//! every other error (`invalid_auth`, `not_authed`, `token_revoked`, `account_inactive`,
//! `channel_not_found`, `not_in_channel`, `is_archived`, `missing_scope`, `invalid_blocks`,
//! `msg_too_long`…) is permanent. HTTP 429 with Retry-After is honoured as everywhere.

use crate::http::{truncate, Auth, Call, Reply, Req, Verdict};
use crate::Ctx;
use muster_core::error::Result;
use muster_core::ports::Budget;
use muster_core::tickets::{BackendKind, TicketChange, TicketContent, TicketRef};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Header blocks take 150 characters, section text 3000.
const MAX_HEADER: usize = 150;
const MAX_SECTION: usize = 3000;
/// Slack truncates `text` past 40 000 characters; stay well inside.
const MAX_TEXT: usize = 4000;

const TRANSIENT: &[&str] = &[
    "ratelimited",
    "rate_limited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

/// Slack's own verdict inside an HTTP 200.
fn check(reply: &Reply) -> Verdict {
    let body = reply.json().unwrap_or(Value::Null);
    if body.get("ok").and_then(Value::as_bool) == Some(true) {
        return Verdict::Done;
    }
    let error = body
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("answer without \"ok\":true")
        .to_string();
    if TRANSIENT.contains(&error.as_str()) {
        Verdict::Retry {
            reason: format!("slack error {error}"),
            after: crate::http::retry_after(&reply.headers),
        }
    } else {
        Verdict::Fail(format!("slack error {error}"))
    }
}

fn post(cx: &Ctx<'_>, method: &str, body: &Value) -> Result<Req> {
    Ok(Req::new(
        Method::POST,
        format!("{}/{method}", cx.base()),
        Auth::Bearer(cx.secret_field("token")?),
    )
    .json(body))
}

fn channel<'c>(cx: &'c Ctx<'_>, ticket: Option<&'c TicketRef>) -> Result<&'c str> {
    ticket
        .and_then(|t| t.extra.get("channel"))
        .map(String::as_str)
        .or(cx.settings().channel.as_deref())
        .filter(|c| !c.is_empty())
        .ok_or_else(|| cx.config_error("`channel` (the Slack channel id) is required"))
}

/// Slack mrkdwn treats `&`, `<`, `>` as markup.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub(crate) fn create(cx: &Ctx<'_>, content: &TicketContent, budget: Budget) -> Result<TicketRef> {
    let channel = channel(cx, None)?.to_string();
    let mut context = format!(
        "Severity *{}* · account {} · {}",
        escape(&content.severity),
        escape(&content.account),
        escape(&content.region)
    );
    let labels = crate::labels(content, cx.settings());
    if !labels.is_empty() {
        context.push_str(&format!(" · {}", escape(&labels.join(", "))));
    }
    let body_text = if content.body.trim().is_empty() {
        "(no description)".to_string()
    } else {
        truncate(&escape(&content.body), MAX_SECTION)
    };
    let message = json!({
        "channel": channel,
        "text": truncate(&escape(&format!("{}\n{}", content.title, content.body)), MAX_TEXT),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": truncate(&content.title, MAX_HEADER), "emoji": true}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body_text}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(&context, MAX_SECTION)}]}
        ],
        "unfurl_links": false,
        "unfurl_media": false,
    });
    let call = Call {
        backend: "slack",
        op: "create",
        finding_id: &content.finding_id,
    };
    let reply = cx.sender.send(
        &call,
        budget,
        &post(cx, "chat.postMessage", &message)?,
        &check,
    )?;
    let answer = reply.json().unwrap_or(Value::Null);
    let ts = answer
        .get("ts")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| call.permanent("the answer has no message ts"))?
        .to_string();
    let channel = answer
        .get("channel")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map_or(channel, str::to_string);
    let url = permalink(cx, &channel, &ts, &content.finding_id, budget);
    let mut extra = BTreeMap::new();
    extra.insert("channel".to_string(), channel);
    Ok(TicketRef {
        backend: BackendKind::Slack,
        key: ts,
        url,
        extra,
    })
}

/// The message's link, or empty: one attempt, never an error.
fn permalink(cx: &Ctx<'_>, channel: &str, ts: &str, finding_id: &str, budget: Budget) -> String {
    let call = Call {
        backend: "slack",
        op: "permalink",
        finding_id,
    };
    let once = crate::http::Sender {
        client: cx.sender.client.clone(),
        timeout: cx.sender.timeout,
        max_attempts: 1,
    };
    // A read method: GET with query parameters (JSON bodies are for write methods).
    let token = match cx.secret_field("token") {
        Ok(t) => t,
        Err(_) => return String::new(),
    };
    let url = format!(
        "{}/chat.getPermalink?channel={}&message_ts={}",
        cx.base(),
        crate::http::segment(channel),
        crate::http::segment(ts)
    );
    let req = Req::new(Method::GET, url, Auth::Bearer(token));
    match once.send(&call, budget, &req, &check) {
        Ok(reply) => reply
            .json()
            .and_then(|v| {
                v.get("permalink")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default(),
        Err(e) => {
            tracing::info!(error = %e, "slack: no permalink for the message; the ticket link stays empty");
            String::new()
        }
    }
}

/// What a thread reply announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Update,
    Close,
    Reopen,
}

pub(crate) fn reply(
    cx: &Ctx<'_>,
    ticket: &TicketRef,
    change: &TicketChange,
    kind: Kind,
    budget: Budget,
) -> Result<()> {
    let channel = channel(cx, Some(ticket))?.to_string();
    let (op, prefix) = match kind {
        Kind::Update => ("comment", ":information_source: Updated"),
        Kind::Close => ("close", ":white_check_mark: Closed"),
        Kind::Reopen => ("reopen", ":rotating_light: Reopened"),
    };
    let text = truncate(
        &format!(
            "{prefix} ({}): {}",
            escape(&change.severity),
            escape(&change.text)
        ),
        MAX_TEXT,
    );
    let message = json!({
        "channel": channel,
        "thread_ts": ticket.key,
        "text": text,
        // A reopen is news for the whole channel, not just the thread.
        "reply_broadcast": kind == Kind::Reopen,
        "unfurl_links": false,
    });
    let call = Call {
        backend: "slack",
        op,
        finding_id: &change.finding_id,
    };
    cx.sender.send(
        &call,
        budget,
        &post(cx, "chat.postMessage", &message)?,
        &check,
    )?;
    Ok(())
}
