//! PagerDuty, Events API v2.
//!
//! Settings: `base_url` (`https://events.pagerduty.com`), `secret` (the integration's
//! routing key; it travels in the body, there is no auth header), `priority` (severity
//! label -> `critical|error|warning|info`; default CRITICAL critical, HIGH error,
//! MEDIUM warning, LOW and INFORMATIONAL info).
//!
//! - create: `POST /v2/enqueue` with `event_action: trigger` and
//!   `dedup_key = "muster-" + sha256(finding id)[..16 bytes, hex]`: the same on every
//!   delivery, so PagerDuty itself folds repeats into one alert. The ticket key is the
//!   dedup_key; there is no link (the incident URL is not in the answer).
//! - comment: triggers again with the same dedup_key and the change as the summary.
//!   While the alert is open PagerDuty dedups it into the alert's log (no new page);
//!   the Events API has no comments.
//! - close: `event_action: resolve` with the dedup_key.
//! - reopen: `trigger` with the same dedup_key, which opens a new alert once the old
//!   one is resolved.
//!
//! 202 is success; 400 (invalid event, bad routing key) is permanent; 429 and 5xx are
//! retried.

use crate::http::{truncate, Auth, Call, Req, Verdict};
use crate::Ctx;
use muster_core::error::Result;
use muster_core::ports::Budget;
use muster_core::tickets::{BackendKind, TicketChange, TicketContent, TicketRef};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// `payload.summary` is cut by PagerDuty at 1024 characters.
const MAX_SUMMARY: usize = 1024;
const MAX_DETAIL: usize = 8000;

/// The dedup key of a finding: stable and short (dedup keys are at most 255 characters).
pub fn dedup_key(finding_id: &str) -> String {
    format!("muster-{}", crate::stable_id(&[finding_id]))
}

fn severity(label: &str, mapped: Option<&str>) -> &'static str {
    const ALLOWED: [&str; 4] = ["critical", "error", "warning", "info"];
    if let Some(m) = mapped {
        if let Some(s) = ALLOWED.iter().find(|a| a.eq_ignore_ascii_case(m.trim())) {
            return s;
        }
    }
    match label.to_ascii_uppercase().as_str() {
        "CRITICAL" => "critical",
        "HIGH" => "error",
        "MEDIUM" => "warning",
        _ => "info",
    }
}

fn accepted(reply: &crate::http::Reply) -> Verdict {
    // The API answers 202; treat any 2xx whose body does not say otherwise as accepted.
    match reply
        .json()
        .and_then(|v| v.get("status").and_then(Value::as_str).map(str::to_string))
    {
        Some(status) if status != "success" => Verdict::Fail(format!(
            "HTTP {}: {}",
            reply.status,
            crate::http::error_message(reply)
        )),
        _ => Verdict::Done,
    }
}

fn enqueue(
    cx: &Ctx<'_>,
    op: &'static str,
    finding_id: &str,
    mut event: Value,
    budget: Budget,
) -> Result<()> {
    event["routing_key"] = json!(cx.secret_field("routing_key")?);
    let call = Call {
        backend: "pagerduty",
        op,
        finding_id,
    };
    let req = Req::new(
        Method::POST,
        format!("{}/v2/enqueue", cx.base()),
        Auth::None,
    )
    .json(&event);
    // The routing key is in the body, not in an auth header: scrub it by hand.
    cx.sender
        .send(&call, budget, &req, &accepted)
        .map_err(|e| scrub_key(e, &event))?;
    Ok(())
}

fn scrub_key(e: muster_core::error::Error, event: &Value) -> muster_core::error::Error {
    let key = event
        .get("routing_key")
        .and_then(Value::as_str)
        .unwrap_or("");
    match e {
        muster_core::error::Error::Sink {
            what,
            message,
            retryable,
        } if key.len() >= 6 && message.contains(key) => muster_core::error::Error::Sink {
            what,
            message: message.replace(key, "***"),
            retryable,
        },
        other => other,
    }
}

pub(crate) fn create(cx: &Ctx<'_>, content: &TicketContent, budget: Budget) -> Result<TicketRef> {
    let key = dedup_key(&content.finding_id);
    let source = format!("aws:{}:{}", content.account, content.region);
    let event = json!({
        "event_action": "trigger",
        "dedup_key": key,
        "client": "muster",
        "payload": {
            "summary": truncate(&content.title, MAX_SUMMARY),
            "source": source,
            "severity": severity(&content.severity, content.priority.as_deref()),
            "component": content.account,
            "group": content.region,
            "class": "security-finding",
            "custom_details": {
                "finding_id": content.finding_id,
                "severity": content.severity,
                "description": truncate(&content.body, MAX_DETAIL),
                "labels": crate::labels(content, cx.settings()),
            }
        }
    });
    enqueue(cx, "create", &content.finding_id, event, budget)?;
    let mut extra = BTreeMap::new();
    // A later trigger (comment, reopen) needs a summary and a source; TicketChange has neither.
    extra.insert("source".to_string(), source);
    extra.insert("summary".to_string(), truncate(&content.title, 250));
    Ok(TicketRef {
        backend: BackendKind::PagerDuty,
        key,
        url: String::new(),
        extra,
    })
}

pub(crate) fn trigger_again(
    cx: &Ctx<'_>,
    ticket: &TicketRef,
    change: &TicketChange,
    op: &'static str,
    budget: Budget,
) -> Result<()> {
    let title = ticket.extra.get("summary").cloned().unwrap_or_default();
    let summary = if title.is_empty() {
        change.text.clone()
    } else {
        format!("{title} — {}", change.text)
    };
    let event = json!({
        "event_action": "trigger",
        "dedup_key": ticket.key,
        "client": "muster",
        "payload": {
            "summary": truncate(&summary, MAX_SUMMARY),
            "source": ticket.extra.get("source").map_or("muster", String::as_str),
            "severity": severity(&change.severity, None),
            "custom_details": {
                "finding_id": change.finding_id,
                "severity": change.severity,
                "change": truncate(&change.text, MAX_DETAIL),
            }
        }
    });
    enqueue(cx, op, &change.finding_id, event, budget)
}

pub(crate) fn resolve(
    cx: &Ctx<'_>,
    ticket: &TicketRef,
    change: &TicketChange,
    budget: Budget,
) -> Result<()> {
    let event = json!({
        "event_action": "resolve",
        "dedup_key": ticket.key,
    });
    enqueue(cx, "close", &change.finding_id, event, budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities() {
        let cases: &[(&str, Option<&str>, &str)] = &[
            ("CRITICAL", None, "critical"),
            ("HIGH", None, "error"),
            ("MEDIUM", None, "warning"),
            ("LOW", None, "info"),
            ("INFORMATIONAL", None, "info"),
            ("LOW", Some("Critical"), "critical"),
            ("HIGH", Some("P1"), "error"),
        ];
        for (label, mapped, want) in cases {
            assert_eq!(severity(label, *mapped), *want, "{label} {mapped:?}");
        }
    }

    #[test]
    fn dedup_keys_are_stable_and_short() {
        let id = "arn:aws:securityhub:us-east-1:123456789012:subscription/x/".repeat(6);
        assert_eq!(dedup_key(&id), dedup_key(&id));
        assert_ne!(dedup_key(&id), dedup_key("other"));
        assert!(dedup_key(&id).len() <= 255);
    }
}
