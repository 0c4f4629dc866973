//! ASFF (AWS Security Finding Format) findings: built from detections and from the
//! organisation's own tools' findings, validated against Security Hub's limits before
//! they are sent, and batched the way BatchImportFindings takes them.

pub mod import;

use crate::detect::{Detection, SeverityLabel};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const SCHEMA_VERSION: &str = "2018-10-08";
pub const MAX_TITLE_CHARS: usize = 256;
pub const MAX_DESCRIPTION_CHARS: usize = 1024;
pub const MAX_FINDING_BYTES: usize = 240 * 1024;
pub const MAX_BATCH_FINDINGS: usize = 100;
pub const MAX_BATCH_BYTES: usize = 6 * 1024 * 1024;
pub const MAX_RESOURCES: usize = 32;
pub const MAX_PRODUCT_FIELDS: usize = 50;
const MAX_PRODUCT_FIELD_VALUE: usize = 2048;
const TRUNCATED: &str = " …[truncated]";

/// The finding-type namespaces Security Hub accepts (`namespace/category/classifier`).
pub const TYPE_NAMESPACES: &[&str] = &[
    "Software and Configuration Checks",
    "TTPs",
    "Effects",
    "Unusual Behaviors",
    "Sensitive Data Identifications",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Finding {
    pub schema_version: String,
    pub id: String,
    pub product_arn: String,
    pub generator_id: String,
    pub aws_account_id: String,
    pub types: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_observed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_observed_at: Option<String>,
    pub severity: Severity,
    pub title: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<Remediation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub product_fields: BTreeMap<String, String>,
    pub resources: Vec<Resource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Severity {
    pub label: SeverityLabel,
    pub normalized: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Remediation {
    pub recommendation: Recommendation,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Recommendation {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Resource {
    #[serde(rename = "Type")]
    pub type_: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// Where findings are imported: the account and region of the Security Hub that
/// receives them, which name the default ProductArn.
#[derive(Debug, Clone)]
pub struct ImportTarget {
    pub account: String,
    pub region: String,
    pub partition: String,
}

impl ImportTarget {
    /// `arn:aws:securityhub:<region>:<account>:product/<account>/default`.
    pub fn product_arn(&self) -> String {
        format!(
            "arn:{}:securityhub:{}:{}:product/{}/default",
            self.partition, self.region, self.account, self.account
        )
    }
}

/// A finding from one of the organisation's own tools, in muster's simple shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomFinding {
    /// Identifies the finding across re-sends: the same id updates, not duplicates.
    pub correlation_id: String,
    /// INFORMATIONAL, LOW, MEDIUM, HIGH or CRITICAL.
    pub severity: String,
    pub title: String,
    pub description: String,
    pub resource_id: String,
    /// An ASFF resource type (AwsS3Bucket, AwsEc2Instance, Other, …).
    pub resource_type: String,
    #[serde(default)]
    pub source_url: Option<String>,
    pub account: String,
    #[serde(default)]
    pub region: Option<String>,
    /// ASFF types (`namespace/category/classifier`).
    pub types: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
    /// The tool that raised it: the finding's GeneratorId.
    #[serde(default)]
    pub generator: Option<String>,
    #[serde(default)]
    pub remediation_url: Option<String>,
    #[serde(default)]
    pub product_fields: BTreeMap<String, String>,
}

/// A finding that cannot be imported, with the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{id}: {field}: {reason}")]
pub struct Invalid {
    /// The finding's Id or correlation id, or its index when it has neither.
    pub id: String,
    pub field: String,
    pub reason: String,
}

fn invalid(id: &str, field: &str, reason: impl Into<String>) -> Invalid {
    Invalid {
        id: id.to_string(),
        field: field.to_string(),
        reason: reason.into(),
    }
}

fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..16])
}

/// A detection as an ASFF finding. The Id derives from the rule and the matched
/// events, so the same detection (on a retry or a re-run) updates one finding.
pub fn from_detection(d: &Detection, target: &ImportTarget, now: &str) -> Finding {
    let mut uids = d.event_uids.clone();
    uids.sort();
    let mut parts: Vec<&str> = vec![d.rule_id.as_str(), d.account.as_str()];
    parts.extend(uids.iter().map(String::as_str));
    let id = format!("muster/{}/{}", d.rule_id, digest(&parts));
    let mut fields = BTreeMap::new();
    fields.insert("muster/rule_id".to_string(), d.rule_id.clone());
    fields.insert(
        "muster/event_count".to_string(),
        d.event_uids.len().to_string(),
    );
    fields.insert("muster/event_uids".to_string(), d.event_uids.join(","));
    // Security Hub takes a default-product finding only for the calling account, so the
    // finding belongs to the account muster runs in; the account the events came from
    // is kept here and on the resource.
    fields.insert("muster/source_account".to_string(), d.account.clone());
    for (k, v) in [
        ("muster/actor", &d.actor),
        ("muster/src_ip", &d.src_ip),
        ("muster/operation", &d.operation),
    ] {
        if let Some(v) = v {
            fields.insert(k.to_string(), v.clone());
        }
    }
    Finding {
        schema_version: SCHEMA_VERSION.into(),
        id,
        product_arn: target.product_arn(),
        generator_id: d.rule_id.clone(),
        aws_account_id: target.account.clone(),
        types: d.types.clone(),
        created_at: d.first_seen.clone(),
        updated_at: now.to_string(),
        first_observed_at: Some(d.first_seen.clone()),
        last_observed_at: Some(d.time.clone()),
        severity: Severity {
            label: d.severity,
            normalized: d.severity.normalized(),
        },
        title: d.title.clone(),
        description: d.description.clone(),
        remediation: Some(Remediation {
            recommendation: Recommendation {
                text: format!("See the remediation for {}.", d.rule_id),
                url: Some(d.remediation.clone()),
            },
        }),
        source_url: None,
        product_fields: fields,
        resources: vec![Resource {
            type_: d.resource.type_.clone(),
            id: d.resource.id.clone(),
            partition: Some(target.partition.clone()),
            region: Some(d.region.clone()).filter(|r| r != "unknown"),
        }],
        record_state: Some("ACTIVE".into()),
        product_name: Some("muster".into()),
        company_name: Some("muster".into()),
    }
}

fn parse_severity(id: &str, s: &str) -> Result<SeverityLabel, Invalid> {
    serde_json::from_value(serde_json::Value::String(s.to_ascii_uppercase())).map_err(|_| {
        invalid(
            id,
            "severity",
            format!("'{s}' is not one of INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL"),
        )
    })
}

/// A custom finding as an ASFF finding, or the first field that stops it.
pub fn from_custom(
    c: &CustomFinding,
    target: &ImportTarget,
    now: &str,
) -> Result<Finding, Invalid> {
    let cid = c.correlation_id.trim();
    if cid.is_empty() {
        return Err(invalid(
            "(no correlation_id)",
            "correlation_id",
            "must not be empty",
        ));
    }
    let severity = parse_severity(cid, &c.severity)?;
    let created = crate::time::parse_rfc3339_ms(&c.created_at).ok_or_else(|| {
        invalid(
            cid,
            "created_at",
            format!("'{}' is not an RFC 3339 time", c.created_at),
        )
    })?;
    let generator = c
        .generator
        .clone()
        .filter(|g| !g.trim().is_empty())
        .unwrap_or_else(|| "custom".into());
    let mut fields = c.product_fields.clone();
    fields.insert("muster/correlation_id".into(), cid.to_string());
    let finding = Finding {
        schema_version: SCHEMA_VERSION.into(),
        id: format!("{generator}/{}", digest(&[&generator, cid])),
        product_arn: target.product_arn(),
        generator_id: generator,
        aws_account_id: c.account.clone(),
        types: c.types.clone(),
        created_at: crate::time::format_rfc3339_ms(created),
        updated_at: now.to_string(),
        first_observed_at: None,
        last_observed_at: None,
        severity: Severity {
            label: severity,
            normalized: severity.normalized(),
        },
        title: c.title.clone(),
        description: c.description.clone(),
        remediation: c.remediation_url.as_ref().map(|u| Remediation {
            recommendation: Recommendation {
                text: "See the remediation link.".into(),
                url: Some(u.clone()),
            },
        }),
        source_url: c.source_url.clone(),
        product_fields: fields,
        resources: vec![Resource {
            type_: c.resource_type.clone(),
            id: c.resource_id.clone(),
            partition: Some(target.partition.clone()),
            region: c.region.clone(),
        }],
        record_state: Some("ACTIVE".into()),
        product_name: Some("muster".into()),
        company_name: Some("muster".into()),
    };
    Ok(finding)
}

fn truncate_chars(s: &mut String, max: usize) -> bool {
    if s.chars().count() <= max {
        return false;
    }
    let keep = max - TRUNCATED.chars().count();
    let cut = s.char_indices().nth(keep).map_or(s.len(), |(i, _)| i);
    s.truncate(cut);
    s.push_str(TRUNCATED);
    true
}

/// Checks a finding against what BatchImportFindings requires and fits it to the
/// limits: Title and Description are truncated with a marker (not rejected), long
/// ProductFields values likewise. Returns what was adjusted, or the field at fault.
pub fn validate(f: &mut Finding) -> Result<Vec<String>, Invalid> {
    let id = f.id.clone();
    let required = [
        ("SchemaVersion", &f.schema_version),
        ("Id", &f.id),
        ("ProductArn", &f.product_arn),
        ("GeneratorId", &f.generator_id),
        ("AwsAccountId", &f.aws_account_id),
        ("CreatedAt", &f.created_at),
        ("UpdatedAt", &f.updated_at),
        ("Title", &f.title),
        ("Description", &f.description),
    ];
    for (field, value) in required {
        if value.trim().is_empty() {
            return Err(invalid(&id, field, "is required"));
        }
    }
    if f.schema_version != SCHEMA_VERSION {
        return Err(invalid(
            &id,
            "SchemaVersion",
            format!("must be {SCHEMA_VERSION}"),
        ));
    }
    if f.id.len() > 512 || f.generator_id.len() > 512 {
        return Err(invalid(
            &id,
            "Id",
            "Id and GeneratorId are at most 512 characters",
        ));
    }
    if f.aws_account_id.len() != 12 || !f.aws_account_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            &id,
            "AwsAccountId",
            format!("'{}' is not a 12-digit account id", f.aws_account_id),
        ));
    }
    for (field, value) in [
        ("CreatedAt", Some(&f.created_at)),
        ("UpdatedAt", Some(&f.updated_at)),
        ("FirstObservedAt", f.first_observed_at.as_ref()),
        ("LastObservedAt", f.last_observed_at.as_ref()),
    ] {
        if let Some(v) = value {
            if crate::time::parse_rfc3339_ms(v).is_none() {
                return Err(invalid(
                    &id,
                    field,
                    format!("'{v}' is not an RFC 3339 time"),
                ));
            }
        }
    }
    if f.types.is_empty() || f.types.len() > 50 {
        return Err(invalid(&id, "Types", "needs 1 to 50 types"));
    }
    for t in &f.types {
        let namespace = t.split('/').next().unwrap_or("");
        if !TYPE_NAMESPACES.contains(&namespace) {
            return Err(invalid(
                &id,
                "Types",
                format!(
                    "'{t}' does not start with one of: {}",
                    TYPE_NAMESPACES.join(", ")
                ),
            ));
        }
    }
    if f.resources.is_empty() || f.resources.len() > MAX_RESOURCES {
        return Err(invalid(
            &id,
            "Resources",
            format!(
                "needs 1 to {MAX_RESOURCES} resources, has {}",
                f.resources.len()
            ),
        ));
    }
    for (i, r) in f.resources.iter().enumerate() {
        if r.id.trim().is_empty() || r.type_.trim().is_empty() {
            return Err(invalid(
                &id,
                &format!("Resources[{i}]"),
                "needs Type and Id",
            ));
        }
    }
    if f.product_fields.len() > MAX_PRODUCT_FIELDS {
        return Err(invalid(
            &id,
            "ProductFields",
            format!(
                "at most {MAX_PRODUCT_FIELDS} entries, has {}",
                f.product_fields.len()
            ),
        ));
    }
    let mut adjusted = Vec::new();
    if truncate_chars(&mut f.title, MAX_TITLE_CHARS) {
        adjusted.push(format!("Title truncated to {MAX_TITLE_CHARS} characters"));
    }
    if truncate_chars(&mut f.description, MAX_DESCRIPTION_CHARS) {
        adjusted.push(format!(
            "Description truncated to {MAX_DESCRIPTION_CHARS} characters"
        ));
    }
    for (k, v) in f.product_fields.iter_mut() {
        if truncate_chars(v, MAX_PRODUCT_FIELD_VALUE) {
            adjusted.push(format!("ProductFields.{k} truncated"));
        }
    }
    let size = serde_json::to_vec(f).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > MAX_FINDING_BYTES {
        // Name the member that makes it big: that is what the sender has to cut.
        let (field, bytes) = largest_member(f).unwrap_or(("(finding)".into(), size));
        return Err(invalid(
            &id,
            &field,
            format!(
                "the finding is {size} bytes, over Security Hub's {MAX_FINDING_BYTES}-byte limit; \
                 {field} is {bytes} bytes of it"
            ),
        ));
    }
    Ok(adjusted)
}

/// The finding's largest top-level member as serialised, and its size in bytes.
fn largest_member(f: &Finding) -> Option<(String, usize)> {
    let serde_json::Value::Object(members) = serde_json::to_value(f).ok()? else {
        return None;
    };
    members
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string().len()))
        .max_by_key(|(_, n)| *n)
}

/// Splits findings into BatchImportFindings calls: at most 100 findings and 6 MB each.
pub fn batches(findings: Vec<Finding>) -> Vec<Vec<Finding>> {
    let mut out: Vec<Vec<Finding>> = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for f in findings {
        let size = serde_json::to_vec(&f)
            .map(|v| v.len())
            .unwrap_or(MAX_FINDING_BYTES)
            + 1;
        if !current.is_empty()
            && (current.len() == MAX_BATCH_FINDINGS || bytes + size > MAX_BATCH_BYTES)
        {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(f);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests;
