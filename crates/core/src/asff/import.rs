//! What the findings importer accepts, and what it answers per finding.
//!
//! Three shapes arrive: EventBridge `muster.detection` events (from the normaliser),
//! a direct invoke `{"findings":[{...}]}` of custom findings, and JSON / JSON-lines
//! documents dropped under `findings/` in S3 (or given to `muster import`) holding any
//! of those. Each item is judged on its own: one bad finding never stops its batch.

use super::{from_custom, from_detection, validate, CustomFinding, Finding, ImportTarget, Invalid};
use crate::detect::{Detection, DETAIL_TYPE};
use serde::Serialize;
use serde_json::Value;

/// One thing to import, before it becomes ASFF.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Detection(Box<Detection>),
    Custom(Box<CustomFinding>),
}

/// The answer for one input item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemResult {
    /// Position of the item in its input (0-based; for documents, across lines).
    pub index: usize,
    /// The ASFF Id, when one could be built.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The custom finding's correlation id or the detection's rule id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub status: ItemStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Adjustments made to fit Security Hub's limits (truncations).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub adjusted: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// Valid and handed to Security Hub (set to `Imported` or `Failed` after the call).
    Ready,
    Imported,
    Invalid,
    Failed,
}

/// The field a serde error is about, from its "missing field `x`" / "unknown field `x`" text.
fn serde_field(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    msg.split('`')
        .nth(1)
        .map(str::to_string)
        .unwrap_or_else(|| "(finding)".into())
}

fn item_from_value(index: usize, v: Value) -> Result<Item, Invalid> {
    let at = || format!("item {index}");
    if v.get("detail-type").and_then(Value::as_str) == Some(DETAIL_TYPE) {
        let detail = v.get("detail").cloned().unwrap_or(Value::Null);
        return serde_json::from_value::<Detection>(detail)
            .map(|d| Item::Detection(Box::new(d)))
            .map_err(|e| Invalid {
                id: at(),
                field: format!("detail.{}", serde_field(&e)),
                reason: e.to_string(),
            });
    }
    if v.get("detail-type").is_some() {
        let dt = v["detail-type"].as_str().unwrap_or("?").to_string();
        return Err(Invalid {
            id: at(),
            field: "detail-type".into(),
            reason: format!("'{dt}' is not a {DETAIL_TYPE} event"),
        });
    }
    if !v.is_object() {
        return Err(Invalid {
            id: at(),
            field: "(finding)".into(),
            reason: "a finding is a JSON object".into(),
        });
    }
    let reference = v
        .get("correlation_id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(at);
    serde_json::from_value::<CustomFinding>(v)
        .map(|c| Item::Custom(Box::new(c)))
        .map_err(|e| Invalid {
            id: reference,
            field: serde_field(&e),
            reason: e.to_string(),
        })
}

/// Items of a direct invoke payload or an EventBridge event. `Err` when the payload is
/// none of the accepted shapes.
pub fn parse_invoke(payload: &Value) -> Result<Vec<Result<Item, Invalid>>, String> {
    if let Some(findings) = payload.get("findings") {
        let list = findings.as_array().ok_or("\"findings\" must be an array")?;
        return Ok(list
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, v)| item_from_value(i, v))
            .collect());
    }
    if payload.get("detail-type").is_some() {
        return Ok(vec![item_from_value(0, payload.clone())]);
    }
    Err("expected {\"findings\":[...]} or a muster.detection EventBridge event".into())
}

/// Items of a document: a JSON array, one JSON object (a finding, an event or
/// `{"findings":[...]}`), or JSON lines of those. A line that is not JSON is an invalid
/// item naming its line; the other lines still count.
pub fn parse_document(text: &str) -> Vec<Result<Item, Invalid>> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        return match serde_json::from_str::<Vec<Value>>(trimmed) {
            Ok(list) => list
                .into_iter()
                .enumerate()
                .map(|(i, v)| item_from_value(i, v))
                .collect(),
            Err(e) => vec![Err(Invalid {
                id: "document".into(),
                field: "(document)".into(),
                reason: format!("not a JSON array: {e}"),
            })],
        };
    }
    // One object (possibly pretty-printed) or clean JSON lines: a stream of values covers both.
    let values: Result<Vec<Value>, _> = serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .collect();
    let values = match values {
        Ok(values) => values.into_iter().map(Ok).collect::<Vec<_>>(),
        // Broken somewhere: read it as JSON lines, each line on its own, so one bad line
        // costs only itself and is named by its number.
        Err(_) => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(n, l)| {
                serde_json::from_str::<Value>(l).map_err(|e| Invalid {
                    id: format!("line {}", n + 1),
                    field: "(json)".into(),
                    reason: e.to_string(),
                })
            })
            .collect(),
    };
    let mut out = Vec::new();
    for v in values {
        match v {
            Ok(v) if v.get("findings").is_some() => match parse_invoke(&v) {
                Ok(items) => out.extend(items),
                Err(reason) => out.push(Err(Invalid {
                    id: format!("item {}", out.len()),
                    field: "findings".into(),
                    reason,
                })),
            },
            Ok(v) => {
                let i = out.len();
                out.push(item_from_value(i, v));
            }
            Err(inv) => out.push(Err(inv)),
        }
    }
    out
}

/// ASFF findings for the items, validated and fitted, and a result for every item.
/// Items that share an Id (the same detection or correlation id twice) are imported
/// once, the last one winning, as Security Hub would keep it.
pub fn build(
    items: Vec<Result<Item, Invalid>>,
    target: &ImportTarget,
    now: &str,
) -> (Vec<Finding>, Vec<ItemResult>) {
    let mut findings: Vec<Finding> = Vec::new();
    let mut results = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let (reference, built) = match item {
            Ok(Item::Detection(d)) => {
                (Some(d.rule_id.clone()), Ok(from_detection(&d, target, now)))
            }
            Ok(Item::Custom(c)) => (Some(c.correlation_id.clone()), from_custom(&c, target, now)),
            Err(inv) => (None, Err(inv)),
        };
        let result = built.and_then(|mut f| validate(&mut f).map(|adjusted| (f, adjusted)));
        match result {
            Ok((f, adjusted)) => {
                results.push(ItemResult {
                    index,
                    id: Some(f.id.clone()),
                    reference,
                    status: ItemStatus::Ready,
                    field: None,
                    error: None,
                    adjusted,
                });
                match findings.iter_mut().find(|g| g.id == f.id) {
                    Some(existing) => *existing = f,
                    None => findings.push(f),
                }
            }
            Err(inv) => results.push(ItemResult {
                index,
                id: None,
                reference: reference.or(Some(inv.id.clone())),
                status: ItemStatus::Invalid,
                field: Some(inv.field.clone()),
                error: Some(inv.to_string()),
                adjusted: Vec::new(),
            }),
        }
    }
    (findings, results)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> ImportTarget {
        ImportTarget {
            account: "111122223333".into(),
            region: "us-east-1".into(),
            partition: "aws".into(),
        }
    }

    const GOOD: &str = r#"{"correlation_id":"c-1","severity":"LOW","title":"t","description":"d","resource_id":"i-1","resource_type":"AwsEc2Instance","account":"111122223333","types":["Software and Configuration Checks/Vulnerabilities"],"created_at":"2024-05-14T00:00:00Z"}"#;

    #[test]
    fn an_invalid_finding_is_named_and_the_rest_of_the_batch_goes_on() {
        let payload: Value = serde_json::from_str(&format!(
            r#"{{"findings":[{GOOD},{{"correlation_id":"c-2","severity":"LOW"}},{}]}}"#,
            GOOD.replace("c-1", "c-3").replace("LOW", "BAD")
        ))
        .unwrap();
        let items = parse_invoke(&payload).unwrap();
        let (findings, results) = build(items, &target(), "2024-05-14T01:00:00Z");
        assert_eq!(findings.len(), 1);
        assert_eq!(results[0].status, ItemStatus::Ready);
        assert_eq!(
            (results[1].status, results[1].field.as_deref()),
            (ItemStatus::Invalid, Some("title"))
        );
        assert_eq!(results[1].reference.as_deref(), Some("c-2"));
        assert_eq!(
            (results[2].status, results[2].field.as_deref()),
            (ItemStatus::Invalid, Some("severity"))
        );
    }

    #[test]
    fn documents_take_arrays_objects_and_json_lines() {
        assert_eq!(parse_document(&format!("[{GOOD},{GOOD}]")).len(), 2);
        assert_eq!(parse_document(&format!("{GOOD}\n{GOOD}\n")).len(), 2);
        assert_eq!(
            parse_document(&format!("{{\"findings\":[{GOOD}]}}")).len(),
            1
        );
        let mixed = parse_document(&format!("{GOOD}\nnot json\n{GOOD}\n"));
        assert_eq!(mixed.len(), 3, "{mixed:?}");
        assert!(mixed[0].is_ok() && mixed[2].is_ok());
        assert_eq!(mixed[1].as_ref().unwrap_err().id, "line 2");
    }

    #[test]
    fn detection_events_round_trip_through_eventbridge_shape() {
        let d: Detection = serde_json::from_value(serde_json::json!({
            "rule_id":"r","title":"t","description":"d","severity":"HIGH","types":["TTPs/Discovery"],"remediation":"https://x",
            "event_uids":["e1"],"account":"111122223333","region":"us-east-1","time":"2024-05-14T00:00:00.000Z",
            "first_seen":"2024-05-14T00:00:00.000Z","actor":null,"src_ip":null,"operation":"GetObject",
            "resource":{"id":"AWS::::Account:111122223333","type":"AwsAccount"},"class_uid":6003
        }))
        .unwrap();
        let event = d.to_eventbridge_event();
        let items = parse_invoke(&event).unwrap();
        assert_eq!(items, vec![Ok(Item::Detection(Box::new(d)))]);
        let (findings, results) = build(items, &target(), "2024-05-14T01:00:00Z");
        assert_eq!(findings[0].generator_id, "r");
        assert_eq!(results[0].status, ItemStatus::Ready);
        let other: Value = serde_json::json!({"detail-type":"Something Else","detail":{}});
        assert_eq!(
            parse_invoke(&other).unwrap()[0].as_ref().unwrap_err().field,
            "detail-type"
        );
    }

    #[test]
    fn the_same_finding_twice_is_imported_once() {
        let items = parse_document(&format!("{GOOD}\n{}\n", GOOD.replace("\"t\"", "\"t2\"")));
        let (findings, results) = build(items, &target(), "2024-05-14T01:00:00Z");
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].title, "t2");
        assert_eq!(results.len(), 2);
    }
}
