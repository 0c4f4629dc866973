//! A generic webhook: one signed JSON POST per ticket event.
//!
//! Settings: `base_url` (the full URL to POST to), `secret` (the HMAC key, required:
//! receivers must be able to tell our deliveries from anyone's), `signature_header`
//! (default `X-Muster-Signature`), `labels`.
//!
//! Body: `{"action": "created"|"updated"|"closed"|"reopened", "delivery_id", "ticket_key",
//! "finding_id", "route", "severity", "timestamp", "title", "body", "priority", "labels",
//! "account", "region"}` for `created`, and `{"action", "delivery_id", "ticket_key",
//! "finding_id", "route", "severity", "timestamp", "text"}` for the others.
//!
//! Headers: the signature header = `sha256=` + hex(HMAC-SHA256(secret, raw body)),
//! `X-Muster-Timestamp` (Unix seconds, also in the body, so the receiver can refuse old
//! deliveries), `X-Muster-Delivery` and `Idempotency-Key`: the delivery id, a hash of the
//! finding, the action and the text, so a redelivery of the same change carries the same
//! id and the receiver can drop it.
//!
//! The ticket key is `muster-` + a hash of the finding id, unless the receiver answers
//! the `created` delivery with a JSON object holding `key` (or `id`) and `url`: then
//! those are the ticket's.

use crate::http::{Auth, Call, Req, Verdict};
use crate::Ctx;
use muster_core::error::Result;
use muster_core::ports::Budget;
use muster_core::tickets::{BackendKind, TicketChange, TicketContent, TicketRef};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const DEFAULT_SIGNATURE_HEADER: &str = "X-Muster-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Muster-Timestamp";
pub const DELIVERY_HEADER: &str = "X-Muster-Delivery";

/// HMAC-SHA256 (RFC 2104). By hand over sha2 0.10: the `hmac` crate in the lock file
/// is built on digest 0.11 and does not fit the workspace's sha2.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block_key = [0u8; BLOCK];
    if key.len() > BLOCK {
        block_key[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block_key[..key.len()].copy_from_slice(key);
    }
    let mut ipad = [0x36u8; BLOCK];
    let mut opad = [0x5cu8; BLOCK];
    for i in 0..BLOCK {
        ipad[i] ^= block_key[i];
        opad[i] ^= block_key[i];
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

/// The signature header's value for a body: `sha256=<hex>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hex::encode(hmac_sha256(secret, body)))
}

/// What happened to the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Updated,
    Closed,
    Reopened,
}

impl Action {
    pub const fn name(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Closed => "closed",
            Action::Reopened => "reopened",
        }
    }

    const fn op(self) -> &'static str {
        match self {
            Action::Created => "create",
            Action::Updated => "comment",
            Action::Closed => "close",
            Action::Reopened => "reopen",
        }
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn done(_: &crate::http::Reply) -> Verdict {
    Verdict::Done
}

fn deliver(
    cx: &Ctx<'_>,
    action: Action,
    finding_id: &str,
    delivery_id: &str,
    mut body: Value,
    budget: Budget,
) -> Result<crate::http::Reply> {
    let secret = cx.secret_field("secret")?;
    let timestamp = now_secs();
    body["action"] = json!(action.name());
    body["delivery_id"] = json!(delivery_id);
    body["finding_id"] = json!(finding_id);
    body["route"] = json!(cx.target.route);
    body["timestamp"] = json!(timestamp);
    // The exact bytes signed are the bytes sent, on every attempt.
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let header = cx
        .settings()
        .signature_header
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| DEFAULT_SIGNATURE_HEADER.to_string());
    if reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err() {
        return Err(cx.config_error(format!(
            "`signature_header` {header:?} is not a header name"
        )));
    }
    let mut req = Req::new(Method::POST, cx.settings().base_url.clone(), Auth::None)
        .header(header, signature(secret.as_bytes(), &bytes))
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(DELIVERY_HEADER, delivery_id)
        .header("idempotency-key", delivery_id);
    req.body = Some(bytes);
    let call = Call {
        backend: "webhook",
        op: action.op(),
        finding_id,
    };
    cx.sender.send(&call, budget, &req, &done)
}

pub(crate) fn create(cx: &Ctx<'_>, content: &TicketContent, budget: Budget) -> Result<TicketRef> {
    let key = format!("muster-{}", crate::stable_id(&[&content.finding_id]));
    let delivery_id = crate::stable_id(&[&content.finding_id, "created"]);
    let body = json!({
        "ticket_key": key,
        "severity": content.severity,
        "title": content.title,
        "body": content.body,
        "priority": content.priority,
        "labels": crate::labels(content, cx.settings()),
        "account": content.account,
        "region": content.region,
    });
    let reply = deliver(
        cx,
        Action::Created,
        &content.finding_id,
        &delivery_id,
        body,
        budget,
    )?;
    let answer = reply.json().unwrap_or(Value::Null);
    let their_key = answer
        .get("key")
        .or_else(|| answer.get("id"))
        .and_then(|k| {
            k.as_str()
                .map(str::to_string)
                .or_else(|| k.as_u64().map(|n| n.to_string()))
        })
        .filter(|k| !k.is_empty());
    let url = answer
        .get("url")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Ok(TicketRef {
        backend: BackendKind::Webhook,
        key: their_key.unwrap_or(key),
        url,
        extra: BTreeMap::new(),
    })
}

pub(crate) fn change(
    cx: &Ctx<'_>,
    ticket: &TicketRef,
    change: &TicketChange,
    action: Action,
    budget: Budget,
) -> Result<()> {
    let delivery_id = crate::stable_id(&[&change.finding_id, action.name(), &change.text]);
    let body = json!({
        "ticket_key": ticket.key,
        "severity": change.severity,
        "text": change.text,
    });
    deliver(cx, action, &change.finding_id, &delivery_id, body, budget)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test cases 1, 2 and 6 (a key longer than the block).
    #[test]
    fn hmac_matches_rfc_4231() {
        let cases: &[(&[u8], &[u8], &str)] = &[
            (
                &[0x0b; 20],
                b"Hi There",
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
        ];
        for (key, data, want) in cases {
            assert_eq!(hex::encode(hmac_sha256(key, data)), *want);
        }
    }
}
