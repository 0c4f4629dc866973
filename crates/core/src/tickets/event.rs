//! Security Hub EventBridge events ("Security Hub Findings - Imported" / "- Custom Action")
//! reduced to the fields the forwarder routes, hashes and renders on. The ASFF finding is
//! much larger; everything else is ignored on purpose so a new ASFF field never breaks us.

use crate::error::{Error, Location, Result};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The forwarder's view of one ASFF finding. String fields are empty when absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FindingView {
    pub id: String,
    pub product_arn: String,
    pub product_name: String,
    pub generator_id: String,
    pub aws_account_id: String,
    pub region: String,
    pub title: String,
    pub description: String,
    /// CRITICAL, HIGH, MEDIUM, LOW or INFORMATIONAL (upper case; derived from
    /// `Severity.Normalized` when a product sends no label).
    pub severity_label: String,
    /// NEW, NOTIFIED, RESOLVED or SUPPRESSED (from the deprecated `WorkflowState` when
    /// `Workflow.Status` is absent).
    pub workflow_status: String,
    /// ACTIVE or ARCHIVED.
    pub record_state: String,
    pub compliance_status: Option<String>,
    pub resource_types: Vec<String>,
    pub resource_ids: Vec<String>,
    pub types: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    pub source_url: Option<String>,
    pub user_defined_fields: BTreeMap<String, String>,
    pub note_text: Option<String>,
}

/// Which EventBridge detail-type delivered the findings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// "Security Hub Findings - Imported" (also bare findings replayed from files).
    Imported,
    /// "Security Hub Findings - Custom Action": a person chose the action in the console.
    CustomAction { action_name: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityHubEvent {
    pub kind: EventKind,
    pub findings: Vec<FindingView>,
}

pub const DETAIL_TYPE_IMPORTED: &str = "Security Hub Findings - Imported";
pub const DETAIL_TYPE_CUSTOM_ACTION: &str = "Security Hub Findings - Custom Action";

/// Parses one EventBridge envelope, or a bare ASFF finding / `{"Findings": [...]}`
/// (treated as Imported, as `muster import` and BatchImportFindings requests look).
pub fn parse_event(text: &str) -> Result<SecurityHubEvent> {
    let at = Location::object("event");
    let value: Value = serde_json::from_str(text).map_err(|e| Error::Format {
        at: Location {
            line: Some(e.line() as u64),
            ..at.clone()
        },
        reason: format!("not JSON: {e}"),
    })?;
    event_from_value(&value, &at)
}

/// Parses a file of events: one JSON document (an event, a bare finding, a
/// `{"Findings": [...]}` or an array of any of these) or JSON lines (one per line).
/// Each result is one event; errors name `origin`, the line and the field.
pub fn parse_events(text: &str, origin: &str) -> Vec<Result<SecurityHubEvent>> {
    let trimmed = text.trim_start_matches('\u{feff}');
    if trimmed.trim().is_empty() {
        return Vec::new();
    }
    match serde_json::from_str::<Value>(trimmed) {
        Ok(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                event_from_value(
                    v,
                    &Location {
                        object: origin.to_string(),
                        line: None,
                        record: Some(i as u64),
                    },
                )
            })
            .collect(),
        Ok(v) => vec![event_from_value(&v, &Location::object(origin))],
        // Not one document: JSON lines. A single-line file that failed above fails the same
        // way below, with its line number.
        Err(_) => trimmed
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| {
                let at = Location {
                    object: origin.to_string(),
                    line: Some(i as u64 + 1),
                    record: None,
                };
                match serde_json::from_str::<Value>(line) {
                    Ok(v) => event_from_value(&v, &at),
                    Err(e) => Err(Error::Format {
                        at,
                        reason: format!("not JSON (column {}): {e}", e.column()),
                    }),
                }
            })
            .collect(),
    }
}

fn format_err(at: &Location, reason: impl Into<String>) -> Error {
    Error::Format {
        at: at.clone(),
        reason: reason.into(),
    }
}

/// The shapes `parse_event` accepts, from an already parsed value (the Lambda runtime
/// hands the adapter a `serde_json::Value`).
pub fn event_from_value(value: &Value, at: &Location) -> Result<SecurityHubEvent> {
    let Some(obj) = value.as_object() else {
        return Err(format_err(
            at,
            "expected a JSON object (an EventBridge event or an ASFF finding)",
        ));
    };
    if obj.contains_key("detail-type") || obj.contains_key("detail") {
        return envelope(obj, at);
    }
    if let Some(findings) = obj.get("Findings") {
        let Some(items) = findings.as_array() else {
            return Err(format_err(at, "field `Findings`: expected an array"));
        };
        return Ok(SecurityHubEvent {
            kind: EventKind::Imported,
            findings: findings_of(items, "Findings", None, at)?,
        });
    }
    if obj.contains_key("Id") || obj.contains_key("SchemaVersion") {
        return Ok(SecurityHubEvent {
            kind: EventKind::Imported,
            findings: vec![finding(obj, "", None, at)?],
        });
    }
    Err(format_err(
        at,
        "neither an EventBridge event (`detail-type`), a `Findings` array nor an ASFF finding (`Id`)",
    ))
}

fn envelope(obj: &Map<String, Value>, at: &Location) -> Result<SecurityHubEvent> {
    let detail_type = opt_str(obj, "detail-type", "", at)?.unwrap_or_default();
    let Some(detail) = obj.get("detail").and_then(Value::as_object) else {
        return Err(format_err(at, "field `detail`: missing or not an object"));
    };
    let kind = match detail_type {
        DETAIL_TYPE_IMPORTED => EventKind::Imported,
        DETAIL_TYPE_CUSTOM_ACTION => EventKind::CustomAction {
            action_name: opt_str(detail, "actionName", "detail.", at)?
                .unwrap_or_default()
                .to_string(),
        },
        other => {
            return Err(format_err(
                at,
                format!(
                    "field `detail-type`: {other:?} is not \"{DETAIL_TYPE_IMPORTED}\" or \"{DETAIL_TYPE_CUSTOM_ACTION}\""
                ),
            ))
        }
    };
    let Some(items) = detail.get("findings").and_then(Value::as_array) else {
        return Err(format_err(
            at,
            "field `detail.findings`: missing or not an array",
        ));
    };
    let region = opt_str(obj, "region", "", at)?.filter(|r| !r.is_empty());
    Ok(SecurityHubEvent {
        kind,
        findings: findings_of(items, "detail.findings", region, at)?,
    })
}

fn findings_of(
    items: &[Value],
    path: &str,
    envelope_region: Option<&str>,
    at: &Location,
) -> Result<Vec<FindingView>> {
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let prefix = format!("{path}[{i}].");
            match v.as_object() {
                Some(obj) => finding(obj, &prefix, envelope_region, at),
                None => Err(format_err(
                    at,
                    format!("field `{path}[{i}]`: expected an object"),
                )),
            }
        })
        .collect()
}

/// A string field: absent or null is `None`; any other non-string is an error naming the field.
fn opt_str<'v>(
    obj: &'v Map<String, Value>,
    key: &str,
    prefix: &str,
    at: &Location,
) -> Result<Option<&'v str>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format_err(
            at,
            format!(
                "field `{prefix}{key}`: expected a string, found {}",
                kind_of(other)
            ),
        )),
    }
}

fn string(obj: &Map<String, Value>, key: &str, prefix: &str, at: &Location) -> Result<String> {
    Ok(opt_str(obj, key, prefix, at)?
        .unwrap_or_default()
        .to_string())
}

fn opt_obj<'v>(
    obj: &'v Map<String, Value>,
    key: &str,
    prefix: &str,
    at: &Location,
) -> Result<Option<&'v Map<String, Value>>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(other) => Err(format_err(
            at,
            format!(
                "field `{prefix}{key}`: expected an object, found {}",
                kind_of(other)
            ),
        )),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// ASFF's documented mapping of `Severity.Normalized` to a label, for products that
/// send only the number.
fn label_from_normalized(n: i64) -> &'static str {
    match n {
        i64::MIN..=0 => "INFORMATIONAL",
        1..=39 => "LOW",
        40..=69 => "MEDIUM",
        70..=89 => "HIGH",
        _ => "CRITICAL",
    }
}

/// `arn:aws:securityhub:us-east-1::product/aws/guardduty` -> `us-east-1`.
fn arn_region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

fn finding(
    obj: &Map<String, Value>,
    prefix: &str,
    envelope_region: Option<&str>,
    at: &Location,
) -> Result<FindingView> {
    let id = string(obj, "Id", prefix, at)?;
    if id.is_empty() {
        return Err(format_err(
            at,
            format!("field `{prefix}Id`: missing or empty"),
        ));
    }
    let product_arn = string(obj, "ProductArn", prefix, at)?;
    let product_fields = opt_obj(obj, "ProductFields", prefix, at)?;
    let mut product_name = string(obj, "ProductName", prefix, at)?;
    if product_name.is_empty() {
        product_name = product_fields
            .and_then(|p| p.get("aws/securityhub/ProductName"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| {
                product_arn
                    .rsplit('/')
                    .next()
                    .filter(|_| product_arn.contains("product/"))
                    .unwrap_or_default()
                    .to_string()
            });
    }

    let severity_prefix = format!("{prefix}Severity.");
    let severity_label = match opt_obj(obj, "Severity", prefix, at)? {
        Some(sev) => match opt_str(sev, "Label", &severity_prefix, at)? {
            Some(label) if !label.is_empty() => label.to_ascii_uppercase(),
            _ => sev
                .get("Normalized")
                .and_then(Value::as_f64)
                .map(|n| label_from_normalized(n.round() as i64).to_string())
                .unwrap_or_default(),
        },
        None => String::new(),
    };

    let workflow_prefix = format!("{prefix}Workflow.");
    let workflow_status = match opt_obj(obj, "Workflow", prefix, at)?
        .map(|w| opt_str(w, "Status", &workflow_prefix, at))
        .transpose()?
        .flatten()
    {
        Some(s) if !s.is_empty() => s.to_ascii_uppercase(),
        // The deprecated WorkflowState has other values; RESOLVED is the one that closes.
        _ => match opt_str(obj, "WorkflowState", prefix, at)? {
            Some(s) if s.eq_ignore_ascii_case("RESOLVED") => "RESOLVED".to_string(),
            Some(s) if !s.is_empty() => "NEW".to_string(),
            _ => String::new(),
        },
    };

    let compliance_prefix = format!("{prefix}Compliance.");
    let compliance_status = opt_obj(obj, "Compliance", prefix, at)?
        .map(|c| opt_str(c, "Status", &compliance_prefix, at))
        .transpose()?
        .flatten()
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_uppercase);

    let mut resource_types = Vec::new();
    let mut resource_ids = Vec::new();
    let mut resource_region = None;
    match obj.get("Resources") {
        None | Some(Value::Null) => {}
        Some(Value::Array(resources)) => {
            for (i, r) in resources.iter().enumerate() {
                let rp = format!("{prefix}Resources[{i}].");
                let Some(r) = r.as_object() else {
                    return Err(format_err(
                        at,
                        format!("field `{prefix}Resources[{i}]`: expected an object"),
                    ));
                };
                resource_types.push(string(r, "Type", &rp, at)?);
                resource_ids.push(string(r, "Id", &rp, at)?);
                if resource_region.is_none() {
                    resource_region = opt_str(r, "Region", &rp, at)?
                        .filter(|s| !s.is_empty())
                        .map(str::to_string);
                }
            }
        }
        Some(other) => {
            return Err(format_err(
                at,
                format!(
                    "field `{prefix}Resources`: expected an array, found {}",
                    kind_of(other)
                ),
            ))
        }
    }

    let types = match obj.get("Types") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, t)| {
                t.as_str().map(str::to_string).ok_or_else(|| {
                    format_err(at, format!("field `{prefix}Types[{i}]`: expected a string"))
                })
            })
            .collect::<Result<Vec<_>>>()?,
        Some(other) => {
            return Err(format_err(
                at,
                format!(
                    "field `{prefix}Types`: expected an array, found {}",
                    kind_of(other)
                ),
            ))
        }
    };

    // Region: the finding's own (newer ASFF), else its first resource's, else the
    // envelope's, else the product ARN's.
    let mut region = string(obj, "Region", prefix, at)?;
    if region.is_empty() {
        region = resource_region
            .or_else(|| envelope_region.map(str::to_string))
            .or_else(|| arn_region(&product_arn).map(str::to_string))
            .unwrap_or_default();
    }

    let mut user_defined_fields = BTreeMap::new();
    if let Some(udf) = opt_obj(obj, "UserDefinedFields", prefix, at)? {
        for (k, v) in udf {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            user_defined_fields.insert(k.clone(), v);
        }
    }

    let note_prefix = format!("{prefix}Note.");
    let note_text = opt_obj(obj, "Note", prefix, at)?
        .map(|n| opt_str(n, "Text", &note_prefix, at))
        .transpose()?
        .flatten()
        .map(str::to_string);

    Ok(FindingView {
        id,
        product_arn,
        product_name,
        generator_id: string(obj, "GeneratorId", prefix, at)?,
        aws_account_id: string(obj, "AwsAccountId", prefix, at)?,
        region,
        title: string(obj, "Title", prefix, at)?,
        description: string(obj, "Description", prefix, at)?,
        severity_label,
        workflow_status,
        record_state: string(obj, "RecordState", prefix, at)?.to_ascii_uppercase(),
        compliance_status,
        resource_types,
        resource_ids,
        types,
        created_at: string(obj, "CreatedAt", prefix, at)?,
        updated_at: string(obj, "UpdatedAt", prefix, at)?,
        source_url: opt_str(obj, "SourceUrl", prefix, at)?
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        user_defined_fields,
        note_text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(json: &str) -> FindingView {
        let e = parse_event(json).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(e.kind, EventKind::Imported);
        e.findings.into_iter().next().unwrap()
    }

    #[test]
    fn derived_fields() {
        // finding JSON, severity, workflow, region, product name
        let cases = [
            (
                r#"{"Id":"a","Severity":{"Normalized":0}}"#,
                "INFORMATIONAL",
                "",
                "",
                "",
            ),
            (
                r#"{"Id":"a","Severity":{"Normalized":39}}"#,
                "LOW",
                "",
                "",
                "",
            ),
            (
                r#"{"Id":"a","Severity":{"Normalized":40.4}}"#,
                "MEDIUM",
                "",
                "",
                "",
            ),
            (
                r#"{"Id":"a","Severity":{"Normalized":89}}"#,
                "HIGH",
                "",
                "",
                "",
            ),
            (
                r#"{"Id":"a","Severity":{"Normalized":100}}"#,
                "CRITICAL",
                "",
                "",
                "",
            ),
            (
                r#"{"Id":"a","Severity":{"Label":"high","Normalized":1}}"#,
                "HIGH",
                "",
                "",
                "",
            ),
            (
                r#"{"Id":"a","WorkflowState":"IN_PROGRESS"}"#,
                "",
                "NEW",
                "",
                "",
            ),
            (
                r#"{"Id":"a","WorkflowState":"RESOLVED"}"#,
                "",
                "RESOLVED",
                "",
                "",
            ),
            (
                r#"{"Id":"a","WorkflowState":"RESOLVED","Workflow":{"Status":"suppressed"}}"#,
                "",
                "SUPPRESSED",
                "",
                "",
            ),
            (
                r#"{"Id":"a","ProductArn":"arn:aws:securityhub:eu-west-1::product/aws/guardduty"}"#,
                "",
                "",
                "eu-west-1",
                "guardduty",
            ),
            (
                r#"{"Id":"a","Region":"ap-south-1","ProductName":"Inspector","Resources":[{"Type":"T","Id":"i","Region":"us-east-2"}]}"#,
                "",
                "",
                "ap-south-1",
                "Inspector",
            ),
            (
                r#"{"Id":"a","Resources":[{"Type":"T","Id":"i","Region":"us-east-2"}],"ProductFields":{"aws/securityhub/ProductName":"Config"}}"#,
                "",
                "",
                "us-east-2",
                "Config",
            ),
        ];
        for (json, sev, wf, region, product) in cases {
            let f = one(json);
            assert_eq!(
                [
                    f.severity_label.as_str(),
                    f.workflow_status.as_str(),
                    f.region.as_str(),
                    f.product_name.as_str()
                ],
                [sev, wf, region, product],
                "{json}"
            );
        }
    }

    #[test]
    fn envelope_region_is_the_last_resort() {
        let e = parse_event(
            r#"{"detail-type":"Security Hub Findings - Imported","region":"sa-east-1",
                "detail":{"findings":[{"Id":"a","UserDefinedFields":{"n":1,"s":"x"}}]}}"#,
        )
        .unwrap();
        let f = &e.findings[0];
        assert_eq!(f.region, "sa-east-1");
        assert_eq!(f.user_defined_fields["n"], "1");
        assert_eq!(f.user_defined_fields["s"], "x");
    }

    #[test]
    fn empty_input_has_no_events() {
        assert!(parse_events("", "x").is_empty());
        assert!(parse_events("\n  \n", "x").is_empty());
    }
}
