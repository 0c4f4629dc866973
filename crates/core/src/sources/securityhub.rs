//! AWS Security Hub findings (ASFF) exported to S3, mapped to OCSF 2004 Detection
//! Finding, or 2003 Compliance Finding for the result of a control check.
//!
//! Inputs taken, one event per finding:
//! - EventBridge events "Security Hub Findings - Imported" and "- Custom Action"
//!   (`detail.findings[]`, up to 100 findings an event), as a Firehose delivery
//!   stream writes them to S3: concatenated with nothing between them, or one a line;
//! - bare ASFF finding objects, one after another or pretty-printed;
//! - a `{"Findings":[...]}` document (BatchImportFindings input, GetFindings output),
//!   streamed element by element.
//!
//! The framing (which of these the file is) is chosen once from its first bytes, by
//! [`read_json_records`], which the GuardDuty source shares.
//!
//! Mapping decisions worth knowing:
//! - Class: a finding with a `Compliance` object (or `ProductFields.StandardsControlArn`)
//!   is the result of a standard's control check → 2003 Compliance Finding, with
//!   `compliance` {status (PASSED Pass, WARNING Warning, FAILED Fail, else Other),
//!   control, standards, requirements, status_code/status_detail from
//!   `StatusReasons`} and its first resource as `resource` (2003 has no list).
//!   Every other finding → 2004 Detection Finding with all its `resources`.
//! - `compliance.standards` is required: `Compliance.AssociatedStandards`, else
//!   `ProductFields.StandardsArn`/`StandardsGuideArn`, else the standard part of
//!   `GeneratorId` (`aws-foundational-security-best-practices/v/1.0.0/EC2.2` →
//!   `aws-foundational-security-best-practices/v/1.0.0`), else `GeneratorId` whole.
//! - activity: `RecordState` ARCHIVED → 3 Close; `UpdatedAt` later than `CreatedAt`
//!   → 2 Update (Security Hub re-imports a finding under the same Id whenever it
//!   changes); otherwise 1 Create. `time` is `UpdatedAt`.
//! - status (of the finding, not of the event): `Workflow.Status` (else the
//!   deprecated `WorkflowState`): NEW New, NOTIFIED In Progress (someone was told and
//!   is on it), SUPPRESSED Suppressed, RESOLVED Resolved, anything else Other.
//! - severity from `Severity.Label`, else `Severity.Normalized` (0 Informational,
//!   1–39 Low, 40–69 Medium, 70–89 High, 90–100 Critical).
//! - `GeneratorId` → `finding_info.analytic` (a Rule); `ProductArn` →
//!   `finding_info.product_uid` and `metadata.product.uid`; product name from
//!   `ProductName`, `ProductFields["aws/securityhub/ProductName"]` or the ARN.
//! - `Resources[]`: `Type`, `Id` → uid, `Region`, `Partition` → cloud_partition; the
//!   rest (`Details`, `Tags`, ...) verbatim in the resource's `data`.
//! - Kept verbatim in `unmapped` (no OCSF home, or only partly mapped): `Severity`,
//!   `ProductFields`, `Note` (whose text is also `comment`), `RecordState`,
//!   `WorkflowState`, `CompanyName`, `FindingProviderFields`, and every field not
//!   named above; an EventBridge envelope's own fields under `unmapped.eventbridge`.
//! - Account from `AwsAccountId`, region from `Region`, the `ProductArn`, the
//!   envelope, or the object key, in that order.

use super::json::{bad, keep, number, object, text, texts, timestamp, Bad, Fields};
use super::{Context, Emit, Rejected};
use crate::error::{Error, Location, Result};
use crate::framing::{json_objects, ElementEnd, JsonArraySplitter, LineReader, SplitError};
use crate::ocsf::{
    Analytic, Class, Cloud, Compliance, Event, FindingInfo, Metadata, Product, Remediation,
    Resource, Severity, Str, Unmapped, Value,
};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::io::BufRead;

/// Used when the context leaves the limit unset (0). An EventBridge event is at
/// most 256 KB, a finding at most 240 KB; a Firehose record at most 1000 KiB.
const DEFAULT_MAX_RECORD_BYTES: usize = 8 * 1024 * 1024;

const PROFILES: &[&str] = &["cloud"];

// ---------------------------------------------------------------------------
// Framing, shared with the GuardDuty source
// ---------------------------------------------------------------------------

/// Where a JSON record was read: its first line, and its 0-based index among the
/// records of the file when the file is not one record a line.
#[derive(Debug, Clone, Copy)]
pub(super) struct At {
    pub line: u64,
    pub record: Option<u64>,
}

impl At {
    pub(super) fn reject<'a>(
        self,
        field: Option<&'a str>,
        reason: String,
        raw: &'a [u8],
    ) -> Rejected<'a> {
        Rejected {
            line: Some(self.line),
            record: self.record,
            field,
            reason,
            raw,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `{"<array key>": [...]}`: streamed element by element.
    Array(&'static str),
    /// One or more whole JSON values a line.
    Lines,
    /// JSON values one after another however they are laid out (concatenated,
    /// pretty-printed, or in a top-level array).
    Objects,
}

/// Tells the framing from the first decoded bytes.
fn framing_of(head: &[u8], array_keys: &[&'static str]) -> Framing {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    let head = &head[start..];
    if let Some(rest) = head.strip_prefix(b"{") {
        let rest = trim_start(rest);
        for key in array_keys {
            if let Some(rest) = rest
                .strip_prefix(b"\"")
                .and_then(|r| r.strip_prefix(key.as_bytes()))
                .and_then(|r| r.strip_prefix(b"\""))
            {
                if trim_start(rest).starts_with(b":") {
                    return Framing::Array(key);
                }
            }
        }
    }
    // JSON lines when the first line is a whole object: a Firehose file of
    // records with no separator is one endless line, and a pretty-printed
    // document's first line is a lone `{`.
    if let Some(end) = memchr::memchr(b'\n', head) {
        let first = head[..end].trim_ascii();
        if first.len() > 1 && first.starts_with(b"{") && first.ends_with(b"}") {
            return Framing::Lines;
        }
    }
    Framing::Objects
}

fn trim_start(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    &b[start..]
}

fn read_error(ctx: &Context, line: u64, source: std::io::Error) -> Error {
    Error::Read {
        at: Location {
            object: ctx.object.clone(),
            line: Some(line),
            record: None,
        },
        source,
    }
}

fn split_error(e: SplitError, ctx: &Context, line: u64) -> Error {
    match e {
        SplitError::Io(source) => read_error(ctx, line, source),
        SplitError::Format {
            line,
            record,
            reason,
        } => Error::Format {
            at: Location {
                object: ctx.object.clone(),
                line: Some(line),
                record,
            },
            reason,
        },
    }
}

/// The handler of one JSON record (its text and where it was).
pub(super) type Each<'h> = dyn FnMut(At, &str, &mut dyn Emit) -> Result<()> + 'h;

/// Frames a findings file into JSON records, bounded by the context's record limit,
/// and hands each well-framed UTF-8 record to `each`; what cannot be framed (cut
/// short, over the limit, not UTF-8, bytes between records that are no JSON) is
/// rejected here. A document `{"<one of array_keys>":[...]}` is streamed element
/// by element.
pub(super) fn read_json_records(
    input: &mut dyn BufRead,
    ctx: &Context,
    array_keys: &[&'static str],
    out: &mut dyn Emit,
    each: &mut Each<'_>,
) -> Result<()> {
    let max = match ctx.max_record_bytes {
        0 => DEFAULT_MAX_RECORD_BYTES,
        n => n,
    };
    let framing = {
        let head = loop {
            match input.fill_buf() {
                Ok(head) => break head,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(ctx, 1, e)),
            }
        };
        framing_of(head, array_keys)
    };
    match framing {
        Framing::Lines => read_lines(input, ctx, max, out, each),
        Framing::Objects => read_objects(input, ctx, max, out, each),
        Framing::Array(key) => read_array(input, ctx, key, max, out, each),
    }
}

fn utf8<'a>(at: At, bytes: &'a [u8], out: &mut dyn Emit) -> Result<Option<&'a str>> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(Some(text)),
        Err(e) => {
            out.reject(at.reject(
                None,
                format!("invalid UTF-8 at byte {}", e.valid_up_to()),
                bytes,
            ))?;
            Ok(None)
        }
    }
}

fn oversized(len: u64, max: usize) -> String {
    format!("record is {len} bytes, over the limit of {max} bytes; only its beginning is kept")
}

/// One or more JSON values a line: a line holding several (`}{`) gives several
/// records; junk after the last whole value on a line is one record of its own.
fn read_lines(
    input: &mut dyn BufRead,
    ctx: &Context,
    max: usize,
    out: &mut dyn Emit,
    each: &mut Each<'_>,
) -> Result<()> {
    let mut reader = LineReader::new(input, max);
    loop {
        let reading = reader.line_number() + 1;
        let Some(line) = reader.next_line() else {
            return Ok(());
        };
        let line = line.map_err(|e| read_error(ctx, reading, e))?;
        let bytes = line.bytes;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let at = At {
            line: line.number,
            record: None,
        };
        if line.truncated {
            out.reject(at.reject(None, format!("line is longer than {max} bytes"), bytes))?;
            continue;
        }
        let Some(text) = utf8(at, bytes, out)? else {
            continue;
        };
        let mut values = serde_json::Deserializer::from_str(text).into_iter::<IgnoredAny>();
        let mut start = 0;
        let mut index = 0u64;
        loop {
            match values.next() {
                None => break,
                Some(Ok(IgnoredAny)) => {
                    let end = values.byte_offset();
                    let at = At {
                        record: (index > 0 || end < text.trim_end().len()).then_some(index),
                        ..at
                    };
                    each(at, text[start..end].trim(), out)?;
                    start = end;
                    index += 1;
                }
                Some(Err(e)) => {
                    let rest = text[start..].trim();
                    let at = At {
                        record: (index > 0).then_some(index),
                        ..at
                    };
                    out.reject(at.reject(None, format!("not JSON: {e}"), rest.as_bytes()))?;
                    break;
                }
            }
        }
    }
}

fn read_objects(
    input: &mut dyn BufRead,
    ctx: &Context,
    max: usize,
    out: &mut dyn Emit,
    each: &mut Each<'_>,
) -> Result<()> {
    let mut split = json_objects(input, max);
    loop {
        let value = match split.next_value() {
            Ok(Some(value)) => value,
            Ok(None) => return Ok(()),
            Err(e) => return Err(split_error(e, ctx, split.line())),
        };
        let at = At {
            line: value.line,
            record: Some(value.index),
        };
        match value.end {
            ElementEnd::Complete => {
                if let Some(text) = utf8(at, value.bytes, out)? {
                    each(at, text, out)?;
                }
            }
            ElementEnd::Oversized { len } => {
                out.reject(at.reject(None, oversized(len, max), value.bytes))?
            }
            ElementEnd::Truncated => out.reject(at.reject(
                None,
                "the file ends inside this record (truncated file?)".into(),
                value.bytes,
            ))?,
        }
    }
}

fn read_array(
    input: &mut dyn BufRead,
    ctx: &Context,
    key: &str,
    max: usize,
    out: &mut dyn Emit,
    each: &mut Each<'_>,
) -> Result<()> {
    let mut split = JsonArraySplitter::new(input, key, max);
    loop {
        let element = match split.next_element() {
            Ok(Some(element)) => element,
            Ok(None) => return Ok(()),
            Err(e) => return Err(split_error(e, ctx, split.line())),
        };
        let at = At {
            line: element.line,
            record: Some(element.index),
        };
        match element.end {
            ElementEnd::Complete => {
                let Some(text) = utf8(at, element.bytes, out)? else {
                    continue;
                };
                // A broken element may have swallowed its neighbours: check it
                // before handing it on, so the splitter can find the next one.
                if let Err(e) = serde_json::from_str::<IgnoredAny>(text) {
                    let reason = format!("not JSON: {e}");
                    let resynced = split.resync();
                    out.reject(at.reject(None, reason, split.element_bytes()))?;
                    resynced.map_err(|e| split_error(e, ctx, split.line()))?;
                    continue;
                }
                each(at, text, out)?;
            }
            ElementEnd::Oversized { len } => {
                out.reject(at.reject(None, oversized(len, max), element.bytes))?
            }
            ElementEnd::Truncated => out.reject(at.reject(
                None,
                "the file ends inside this record (truncated file?)".into(),
                element.bytes,
            ))?,
        }
    }
}

// ---------------------------------------------------------------------------
// Value helpers, shared with the GuardDuty source
// ---------------------------------------------------------------------------

/// `arn:<partition>:<service>:<region>:<account>:<resource>` → (partition, region).
pub(super) fn arn_partition_region(arn: &str) -> (Option<&str>, Option<&str>) {
    let mut parts = arn.splitn(6, ':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("arn"), partition, Some(_), region) => (
            partition.filter(|p| !p.is_empty()),
            region.filter(|r| !r.is_empty()),
        ),
        _ => (None, None),
    }
}

/// An EventBridge envelope's fields other than `detail`, for the events of its
/// findings.
#[derive(Default, Clone)]
pub(super) struct Envelope<'a> {
    pub detail_type: Option<Str<'a>>,
    pub account: Option<Str<'a>>,
    pub region: Option<Str<'a>>,
    pub kept: Unmapped<'a>,
}

/// Splits an EventBridge event into its envelope and `detail`.
pub(super) fn envelope<'a>(
    fields: Fields<'a>,
) -> Result<(Envelope<'a>, Option<&'a RawValue>), Bad> {
    let mut env = Envelope::default();
    let mut detail = None;
    for (k, v) in fields.0 {
        match k {
            "detail" => detail = Some(v),
            "detail-type" => {
                env.detail_type = text("detail-type", v)?;
                keep(&mut env.kept, k, v);
            }
            "account" => {
                env.account = text("account", v)?;
                keep(&mut env.kept, k, v);
            }
            "region" => {
                env.region = text("region", v)?;
                keep(&mut env.kept, k, v);
            }
            _ => keep(&mut env.kept, k, v),
        }
    }
    Ok((env, detail))
}

// ---------------------------------------------------------------------------
// Security Hub
// ---------------------------------------------------------------------------

pub fn normalize(input: &mut dyn BufRead, ctx: &Context, out: &mut dyn Emit) -> Result<()> {
    read_json_records(input, ctx, FINDINGS_KEYS, out, &mut |at, text, out| {
        record(at, text, ctx, out)
    })
}

/// BatchImportFindings and GetFindings write `Findings`; muster's own importer
/// takes `findings`.
const FINDINGS_KEYS: &[&str] = &["Findings", "findings"];

/// One JSON record: an EventBridge event, a `{"Findings":[...]}` document or a
/// bare finding.
fn record(at: At, text: &str, ctx: &Context, out: &mut dyn Emit) -> Result<()> {
    let fields: Fields<'_> = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(e) => {
            return out.reject(at.reject(None, format!("not a JSON object: {e}"), text.as_bytes()))
        }
    };
    let is_envelope = fields.0.iter().any(|(k, _)| *k == "detail-type");
    if is_envelope {
        let (env, detail) = match envelope(fields) {
            Ok(parts) => parts,
            Err(b) => return out.reject(at.reject(Some(b.field), b.reason, text.as_bytes())),
        };
        let detail_type = env.detail_type.as_deref().unwrap_or("");
        if !detail_type.starts_with("Security Hub Findings") {
            return out.reject(at.reject(
                Some("detail-type"),
                format!("an EventBridge event of detail-type {detail_type:?}, not Security Hub findings"),
                text.as_bytes(),
            ));
        }
        // The custom action's name and description say why the analyst sent it:
        // the detail's other fields go with the envelope's.
        let mut env = env;
        let mut findings = None;
        if let Some(Ok(d)) = detail.map(|d| object("detail", d)) {
            for (k, v) in d.0 {
                if k == "findings" {
                    findings = Some(v);
                } else {
                    keep(&mut env.kept, k, v);
                }
            }
        }
        let Some(findings) = findings else {
            return out.reject(at.reject(
                Some("detail.findings"),
                "the event has no detail.findings array".into(),
                text.as_bytes(),
            ));
        };
        return findings_array(at, findings, Some(&env), ctx, out);
    }
    if let Some((_, findings)) = fields.0.iter().find(|(k, _)| FINDINGS_KEYS.contains(k)) {
        return findings_array(at, findings, None, ctx, out);
    }
    match map_finding(fields, None, ctx) {
        Ok(event) => out.event(&event),
        Err(b) => out.reject(at.reject(Some(b.field), b.reason, text.as_bytes())),
    }
}

/// Each finding of an array is one record of its own.
fn findings_array(
    at: At,
    findings: &RawValue,
    env: Option<&Envelope<'_>>,
    ctx: &Context,
    out: &mut dyn Emit,
) -> Result<()> {
    let items: Vec<&RawValue> = match serde_json::from_str(findings.get()) {
        Ok(items) => items,
        Err(_) => {
            return out.reject(at.reject(
                Some("findings"),
                format!(
                    "expected an array of findings, found {:.64}",
                    findings.get()
                ),
                findings.get().as_bytes(),
            ))
        }
    };
    if items.is_empty() {
        out.skip("an EventBridge event or document without findings");
    }
    for (i, item) in items.into_iter().enumerate() {
        let mapped = object("findings", item).and_then(|f| map_finding(f, env, ctx));
        match mapped {
            Ok(event) => out.event(&event)?,
            Err(b) => out.reject(at.reject(
                Some(b.field),
                format!("finding {i} of the record: {}", b.reason),
                item.get().as_bytes(),
            ))?,
        }
    }
    Ok(())
}

#[derive(Default)]
struct Asff<'a> {
    id: Option<Str<'a>>,
    product_arn: Option<Str<'a>>,
    product_name: Option<Str<'a>>,
    company_name: Option<Str<'a>>,
    region: Option<Str<'a>>,
    generator_id: Option<Str<'a>>,
    account: Option<Str<'a>>,
    types: Vec<Str<'a>>,
    first_observed: Option<i64>,
    last_observed: Option<i64>,
    created: Option<i64>,
    updated: Option<i64>,
    severity: Option<&'a RawValue>,
    confidence: Option<f64>,
    title: Option<Str<'a>>,
    description: Option<Str<'a>>,
    remediation: Option<&'a RawValue>,
    resources: Option<&'a RawValue>,
    compliance: Option<&'a RawValue>,
    workflow_status: Option<Str<'a>>,
    workflow_state: Option<Str<'a>>,
    record_state: Option<Str<'a>>,
    note: Option<Str<'a>>,
    product_fields: Option<Fields<'a>>,
    schema_version: Option<Str<'a>>,
}

fn map_finding<'a>(
    fields: Fields<'a>,
    env: Option<&Envelope<'a>>,
    ctx: &Context,
) -> Result<Event<'a>, Bad> {
    let mut f = Asff::default();
    let mut unmapped = Unmapped::default();
    for (k, v) in fields.0 {
        match k {
            "SchemaVersion" => f.schema_version = text("SchemaVersion", v)?,
            "Id" => f.id = text("Id", v)?,
            "ProductArn" => f.product_arn = text("ProductArn", v)?,
            "ProductName" => f.product_name = text("ProductName", v)?,
            "CompanyName" => {
                f.company_name = text("CompanyName", v)?;
                keep(&mut unmapped, k, v);
            }
            "Region" => f.region = text("Region", v)?,
            "GeneratorId" => f.generator_id = text("GeneratorId", v)?,
            "AwsAccountId" => f.account = text("AwsAccountId", v)?,
            "Types" => f.types = texts("Types", v)?,
            "FirstObservedAt" => f.first_observed = timestamp("FirstObservedAt", v)?,
            "LastObservedAt" => f.last_observed = timestamp("LastObservedAt", v)?,
            "CreatedAt" => f.created = timestamp("CreatedAt", v)?,
            "UpdatedAt" => f.updated = timestamp("UpdatedAt", v)?,
            "Severity" => {
                f.severity = Some(v);
                keep(&mut unmapped, k, v);
            }
            "Confidence" => f.confidence = number("Confidence", v)?,
            "Title" => f.title = text("Title", v)?,
            "Description" => f.description = text("Description", v)?,
            "Remediation" => f.remediation = Some(v),
            "Resources" => f.resources = Some(v),
            "Compliance" if v.get() != "null" => f.compliance = Some(v),
            "Workflow" => {
                f.workflow_status = object("Workflow", v)?
                    .0
                    .into_iter()
                    .find(|(k, _)| *k == "Status")
                    .map(|(_, s)| text("Workflow.Status", s))
                    .transpose()?
                    .flatten();
            }
            "WorkflowState" => {
                f.workflow_state = text("WorkflowState", v)?;
                keep(&mut unmapped, k, v);
            }
            "RecordState" => {
                f.record_state = text("RecordState", v)?;
                keep(&mut unmapped, k, v);
            }
            "Note" => {
                f.note = object("Note", v)?
                    .0
                    .into_iter()
                    .find(|(k, _)| *k == "Text")
                    .map(|(_, s)| text("Note.Text", s))
                    .transpose()?
                    .flatten();
                keep(&mut unmapped, k, v);
            }
            "ProductFields" => {
                f.product_fields = Some(object("ProductFields", v)?);
                keep(&mut unmapped, k, v);
            }
            _ => keep(&mut unmapped, k, v),
        }
    }
    let id =
        f.id.take()
            .ok_or_else(|| bad("Id", "the finding has no Id"))?;
    let title = f
        .title
        .take()
        .ok_or_else(|| bad("Title", "the finding has no Title"))?;
    let time = f.updated.or(f.created).ok_or_else(|| {
        bad(
            "UpdatedAt",
            "the finding has neither UpdatedAt nor CreatedAt",
        )
    })?;
    let product_field = |name: &str| -> Option<Str<'a>> {
        let pf = f.product_fields.as_ref()?;
        let (_, v) = pf.0.iter().find(|(k, _)| *k == name)?;
        text("ProductFields", v).ok().flatten()
    };

    let compliance_check = f.compliance.is_some() || product_field("StandardsControlArn").is_some();
    let class = if compliance_check {
        Class::ComplianceFinding
    } else {
        Class::DetectionFinding
    };
    let (activity_id, activity) = if f
        .record_state
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("ARCHIVED"))
    {
        (3, "Close")
    } else if matches!((f.created, f.updated), (Some(c), Some(u)) if u > c) {
        (2, "Update")
    } else {
        (1, "Create")
    };

    // Product
    let (arn_partition, arn_region) = f
        .product_arn
        .as_deref()
        .map(arn_partition_region)
        .unwrap_or_default();
    let arn_partition = arn_partition.map(|p| Cow::Owned(p.to_string()));
    let arn_region = arn_region.map(|r| Cow::Owned(r.to_string()));
    let product_name = f
        .product_name
        .take()
        .or_else(|| product_field("aws/securityhub/ProductName"))
        .or_else(|| {
            f.product_arn
                .as_deref()
                .and_then(product_from_arn)
                .map(Cow::Owned)
        })
        .unwrap_or(Cow::Borrowed("Security Hub"));
    // Security Hub names AWS's own products' company "AWS" or "Amazon".
    let vendor = f
        .company_name
        .take()
        .or_else(|| product_field("aws/securityhub/CompanyName"))
        .filter(|c| c.as_ref() != "Amazon")
        .unwrap_or(Cow::Borrowed("AWS"));
    let mut metadata = Metadata::new(Product {
        uid: f.product_arn.clone(),
        vendor_name: vendor,
        ..Product::aws(product_name)
    });
    metadata.uid = Some(id.clone());
    metadata.log_version = f.schema_version.take();
    metadata.log_provider = Some(Cow::Borrowed("Security Hub"));
    metadata.log_name = env.and_then(|e| e.detail_type.clone());
    metadata.profiles = PROFILES;

    let mut event = Event::new(class, activity_id, activity, time, metadata);
    event.set_severity(severity(f.severity)?);
    if let Some(c) = f.confidence {
        if (0.0..=100.0).contains(&c) {
            event.confidence_score = Some(c as u32);
        }
    }
    let status = f.workflow_status.take().or(f.workflow_state.take());
    if let Some(s) = status {
        let (id, caption) = workflow_status(&s);
        event.status_id = Some(id);
        event.status = Some(if id == 99 { s } else { Cow::Borrowed(caption) });
    }
    event.message = Some(title.clone());
    event.comment = f.note.take();

    let region = f
        .region
        .take()
        .or(arn_region)
        .or_else(|| env.and_then(|e| e.region.clone()))
        .or_else(|| ctx.key.region.clone().map(Cow::Owned));
    let account = f
        .account
        .take()
        .or_else(|| env.and_then(|e| e.account.clone()))
        .or_else(|| ctx.key.account.clone().map(Cow::Owned));
    event.cloud = Some(Cloud::aws(region.clone(), account));

    let analytic = f.generator_id.clone().map(|g| Analytic {
        uid: Some(g),
        name: None,
        type_id: 1,
        type_: Some("Rule"),
    });
    event.finding_info = Some(FindingInfo {
        uid: id,
        title,
        desc: f.description.take(),
        types: (!f.types.is_empty()).then(|| std::mem::take(&mut f.types)),
        created_time: f.created,
        modified_time: f.updated,
        first_seen_time: f.first_observed,
        last_seen_time: f.last_observed,
        product_uid: f.product_arn.take(),
        analytic,
    });

    if let Some(raw) = f.remediation {
        match remediation(raw)? {
            Some(r) => event.remediation = Some(r),
            None => keep(&mut unmapped, "Remediation", raw),
        }
    }

    let mut resources = match f.resources {
        Some(raw) => resources(raw, arn_partition.as_ref())?,
        None => Vec::new(),
    };
    if compliance_check {
        let compliance = compliance(
            f.compliance,
            &product_field,
            f.generator_id.as_deref(),
            &mut unmapped,
        )?;
        event.compliance = Some(compliance);
        if resources.len() > 1 {
            // 2003 names one resource: the others stay as Security Hub wrote them.
            if let Some(raw) = f.resources {
                keep(&mut unmapped, "Resources", raw);
            }
        }
        if !resources.is_empty() {
            event.resource = Some(resources.swap_remove(0));
        }
    } else if !resources.is_empty() {
        event.resources = Some(resources);
    }

    if let Some(env) = env {
        if !env.kept.is_empty() {
            unmapped
                .0
                .push((Cow::Borrowed("eventbridge"), Value::Map(env.kept.clone())));
        }
    }
    event.unmapped = unmapped;
    Ok(event)
}

/// Severity from `Label`, else `Normalized`.
fn severity(raw: Option<&RawValue>) -> Result<Severity, Bad> {
    let Some(raw) = raw else {
        return Ok(Severity::Unknown);
    };
    let fields = object("Severity", raw)?;
    let mut normalized = None;
    for (k, v) in fields.0 {
        match k {
            "Label" => {
                if let Some(label) = text("Severity.Label", v)? {
                    return Ok(match label.to_ascii_uppercase().as_str() {
                        "INFORMATIONAL" => Severity::Informational,
                        "LOW" => Severity::Low,
                        "MEDIUM" => Severity::Medium,
                        "HIGH" => Severity::High,
                        "CRITICAL" => Severity::Critical,
                        _ => Severity::Unknown,
                    });
                }
            }
            "Normalized" => normalized = number("Severity.Normalized", v)?,
            _ => {}
        }
    }
    Ok(match normalized {
        None => Severity::Unknown,
        Some(n) if n < 1.0 => Severity::Informational,
        Some(n) if n < 40.0 => Severity::Low,
        Some(n) if n < 70.0 => Severity::Medium,
        Some(n) if n < 90.0 => Severity::High,
        Some(_) => Severity::Critical,
    })
}

/// OCSF finding status of a Security Hub workflow status (or WorkflowState).
fn workflow_status(s: &str) -> (u32, &'static str) {
    match s.to_ascii_uppercase().as_str() {
        "NEW" => (1, "New"),
        "NOTIFIED" | "ASSIGNED" | "IN_PROGRESS" => (2, "In Progress"),
        "SUPPRESSED" | "DEFERRED" => (3, "Suppressed"),
        "RESOLVED" => (4, "Resolved"),
        _ => (99, "Other"),
    }
}

/// `Remediation.Recommendation` {Text, Url}; `None` when it has no text.
fn remediation(raw: &RawValue) -> Result<Option<Remediation<'_>>, Bad> {
    let fields = object("Remediation", raw)?;
    let Some((_, rec)) = fields.0.into_iter().find(|(k, _)| *k == "Recommendation") else {
        return Ok(None);
    };
    let (mut desc, mut url) = (None, None);
    for (k, v) in object("Remediation.Recommendation", rec)?.0 {
        match k {
            "Text" => desc = text("Remediation.Recommendation.Text", v)?,
            "Url" => url = text("Remediation.Recommendation.Url", v)?,
            _ => {}
        }
    }
    Ok(desc.map(|desc| Remediation {
        desc,
        references: url.map(|u| vec![u]),
    }))
}

/// `Resources[]`; resources with neither `Id` nor a name are left out (OCSF needs one).
fn resources<'a>(raw: &'a RawValue, partition: Option<&Str<'a>>) -> Result<Vec<Resource<'a>>, Bad> {
    if raw.get() == "null" {
        return Ok(Vec::new());
    }
    let items: Vec<&'a RawValue> = serde_json::from_str(raw.get()).map_err(|_| {
        bad(
            "Resources",
            format!("expected an array, found {:.64}", raw.get()),
        )
    })?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let mut r = Resource::default();
        let mut rest = Unmapped::default();
        for (k, v) in object("Resources", item)?.0 {
            match k {
                "Id" => r.uid = text("Resources.Id", v)?,
                "Type" => r.type_ = text("Resources.Type", v)?,
                "Region" => r.region = text("Resources.Region", v)?,
                "Partition" => r.cloud_partition = text("Resources.Partition", v)?,
                _ => keep(&mut rest, k, v),
            }
        }
        if r.uid.is_none() {
            continue;
        }
        if r.cloud_partition.is_none() {
            r.cloud_partition = partition.cloned();
        }
        if !rest.is_empty() {
            r.data = Some(Value::Map(rest));
        }
        out.push(r);
    }
    Ok(out)
}

#[derive(Deserialize)]
struct StatusReason<'a> {
    #[serde(rename = "ReasonCode", borrow, default)]
    code: Option<Cow<'a, str>>,
    #[serde(rename = "Description", borrow, default)]
    description: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct AssociatedStandard<'a> {
    #[serde(rename = "StandardsId", borrow, default)]
    id: Option<Cow<'a, str>>,
}

/// The `compliance` object of a control check.
fn compliance<'a>(
    raw: Option<&'a RawValue>,
    product_field: &dyn Fn(&str) -> Option<Str<'a>>,
    generator_id: Option<&str>,
    unmapped: &mut Unmapped<'a>,
) -> Result<Compliance<'a>, Bad> {
    let mut c = Compliance::default();
    let mut standards = Vec::new();
    let mut rest = Unmapped::default();
    if let Some(raw) = raw {
        for (k, v) in object("Compliance", raw)?.0 {
            match k {
                "Status" => {
                    if let Some(s) = text("Compliance.Status", v)? {
                        let (id, caption) = match s.to_ascii_uppercase().as_str() {
                            "PASSED" => (1, "Pass"),
                            "WARNING" => (2, "Warning"),
                            "FAILED" => (3, "Fail"),
                            _ => (99, "Other"),
                        };
                        c.status_id = Some(id);
                        c.status = Some(if id == 99 { s } else { Cow::Borrowed(caption) });
                    }
                }
                "StatusReasons" => {
                    let reasons: Vec<StatusReason<'a>> = serde_json::from_str(v.get())
                        .map_err(|e| bad("Compliance.StatusReasons", e.to_string()))?;
                    let codes: Vec<_> = reasons.iter().filter_map(|r| r.code.as_deref()).collect();
                    let details: Vec<_> = reasons
                        .iter()
                        .filter_map(|r| r.description.as_deref())
                        .collect();
                    c.status_code = (!codes.is_empty()).then(|| Cow::Owned(codes.join("; ")));
                    c.status_detail = (!details.is_empty()).then(|| Cow::Owned(details.join("; ")));
                    if reasons.len() > 1 {
                        keep(&mut rest, k, v);
                    }
                }
                "RelatedRequirements" => {
                    let reqs = texts("Compliance.RelatedRequirements", v)?;
                    c.requirements = (!reqs.is_empty()).then_some(reqs);
                }
                "SecurityControlId" => c.control = text("Compliance.SecurityControlId", v)?,
                "AssociatedStandards" => {
                    let list: Vec<AssociatedStandard<'a>> = serde_json::from_str(v.get())
                        .map_err(|e| bad("Compliance.AssociatedStandards", e.to_string()))?;
                    standards.extend(
                        list.into_iter()
                            .filter_map(|s| s.id)
                            .filter(|s| !s.is_empty()),
                    );
                }
                _ => keep(&mut rest, k, v),
            }
        }
    }
    if !rest.is_empty() {
        unmapped
            .0
            .push((Cow::Borrowed("Compliance"), Value::Map(rest)));
    }
    if c.control.is_none() {
        c.control = product_field("ControlId").or_else(|| product_field("RuleId"));
    }
    if standards.is_empty() {
        if let Some(s) =
            product_field("StandardsArn").or_else(|| product_field("StandardsGuideArn"))
        {
            standards.push(s);
        }
    }
    if standards.is_empty() {
        if let Some(g) = generator_id {
            let (standard, control) = standard_of_generator(g);
            standards.push(Cow::Owned(standard.to_string()));
            if c.control.is_none() {
                c.control = control.map(|s| Cow::Owned(s.to_string()));
            }
        }
    }
    if standards.is_empty() {
        return Err(bad(
            "Compliance",
            "a control check with no standard: no AssociatedStandards, StandardsArn or GeneratorId",
        ));
    }
    c.standards = standards;
    Ok(c)
}

/// The standard and control a control check's `GeneratorId` names:
/// `<standard>/v/<version>/<control>` or `arn:...:ruleset/<standard>/v/<version>/rule/<control>`;
/// anything else is its own standard.
fn standard_of_generator(g: &str) -> (&str, Option<&str>) {
    if let Some((standard, control)) = g.rsplit_once("/rule/") {
        return (standard, Some(control));
    }
    if let Some(v) = g.find("/v/") {
        if let Some(slash) = g[v + 3..].find('/') {
            let cut = v + 3 + slash;
            return (&g[..cut], Some(&g[cut + 1..]).filter(|c| !c.is_empty()));
        }
    }
    (g, None)
}

/// The product's name from `arn:aws:securityhub:<region>::product/<company>/<product>`.
fn product_from_arn(arn: &str) -> Option<String> {
    let name = arn.rsplit_once("product/")?.1.rsplit('/').next()?;
    let known = match name {
        "securityhub" => "Security Hub",
        "guardduty" => "GuardDuty",
        "inspector" => "Inspector",
        "macie" => "Macie",
        "access-analyzer" => "IAM Access Analyzer",
        "config" => "Config",
        "firewall-manager" => "Firewall Manager",
        "health" => "Health",
        "detective" => "Detective",
        "ssm-patch-manager" => "Systems Manager Patch Manager",
        "" => return None,
        other => return Some(other.to_string()),
    };
    Some(known.to_string())
}

/// Whether the decoded head of an object looks like Security Hub findings.
pub fn looks_like(head: &str) -> bool {
    let compact: String = head
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(2048)
        .collect();
    compact.contains("\"source\":\"aws.securityhub\"")
        || compact.contains("\"detail-type\":\"SecurityHubFindings-")
        || compact.starts_with("{\"SchemaVersion\":\"2018-10-08\"")
        || compact.starts_with("{\"Findings\":[")
        || (compact.contains("\"SchemaVersion\":\"2018-10-08\"")
            && compact.contains("\"ProductArn\":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_is_told_from_the_first_bytes() {
        let cases: &[(&str, &[u8], Framing)] = &[
            (
                "GetFindings document",
                b"{\"Findings\": [{\"Id\":1}]}",
                Framing::Array("Findings"),
            ),
            (
                "importer document, pretty",
                b"\xEF\xBB\xBF\n{\n  \"findings\" :\n [",
                Framing::Array("findings"),
            ),
            ("JSON lines", b"{\"a\":1}\n{\"b\":2}\n", Framing::Lines),
            ("JSON lines, CRLF", b"{\"a\":1}\r\n", Framing::Lines),
            (
                "Firehose, no separator",
                b"{\"a\":1}{\"b\":2}{\"c\":3}",
                Framing::Objects,
            ),
            (
                "pretty-printed object",
                b"{\n  \"version\": \"0\",\n",
                Framing::Objects,
            ),
            ("a top-level array", b"[\n{\"a\":1}\n]", Framing::Objects),
            (
                "a key that only starts like Findings",
                b"{\"FindingsX\":[]}\n",
                Framing::Lines,
            ),
        ];
        for (name, head, want) in cases {
            assert_eq!(framing_of(head, FINDINGS_KEYS), *want, "{name}");
        }
    }

    #[test]
    fn severity_comes_from_the_label_then_the_normalized_score() {
        let cases = [
            (
                r#"{"Label":"INFORMATIONAL","Normalized":0}"#,
                Severity::Informational,
            ),
            (r#"{"Label":"low"}"#, Severity::Low),
            (r#"{"Normalized":40,"Label":"MEDIUM"}"#, Severity::Medium),
            (r#"{"Label":"HIGH","Normalized":10}"#, Severity::High),
            (r#"{"Label":"CRITICAL"}"#, Severity::Critical),
            (r#"{"Label":"SEVERE"}"#, Severity::Unknown),
            (r#"{"Normalized":39}"#, Severity::Low),
            (r#"{"Normalized":75}"#, Severity::High),
            (r#"{"Normalized":90}"#, Severity::Critical),
            (r#"{"Product":3}"#, Severity::Unknown),
        ];
        for (json, want) in cases {
            let raw: Box<RawValue> = RawValue::from_string(json.into()).unwrap();
            assert_eq!(severity(Some(&raw)).unwrap(), want, "{json}");
        }
        assert_eq!(severity(None).unwrap(), Severity::Unknown);
    }

    #[test]
    fn a_control_checks_generator_names_its_standard_and_control() {
        let cases = [
            (
                "aws-foundational-security-best-practices/v/1.0.0/EC2.2",
                "aws-foundational-security-best-practices/v/1.0.0",
                Some("EC2.2"),
            ),
            (
                "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0/rule/1.6",
                "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0",
                Some("1.6"),
            ),
            (
                "pci-dss/v/3.2.1/PCI.IAM.6",
                "pci-dss/v/3.2.1",
                Some("PCI.IAM.6"),
            ),
            ("security-control/S3.8", "security-control/S3.8", None),
            (
                "prowler-iam_root_mfa_enabled",
                "prowler-iam_root_mfa_enabled",
                None,
            ),
        ];
        for (generator, standard, control) in cases {
            assert_eq!(
                standard_of_generator(generator),
                (standard, control),
                "{generator}"
            );
        }
    }

    #[test]
    fn workflow_and_product_names() {
        for (s, want) in [
            ("NEW", (1, "New")),
            ("NOTIFIED", (2, "In Progress")),
            ("SUPPRESSED", (3, "Suppressed")),
            ("RESOLVED", (4, "Resolved")),
            ("PAUSED", (99, "Other")),
        ] {
            assert_eq!(workflow_status(s), want, "{s}");
        }
        for (arn, want) in [
            (
                "arn:aws:securityhub:us-east-1::product/aws/securityhub",
                Some("Security Hub"),
            ),
            (
                "arn:aws:securityhub:us-east-1::product/aws/guardduty",
                Some("GuardDuty"),
            ),
            (
                "arn:aws:securityhub:us-east-1::product/prowler/prowler",
                Some("prowler"),
            ),
            ("not an arn", None),
        ] {
            assert_eq!(product_from_arn(arn).as_deref(), want, "{arn}");
        }
    }

    #[test]
    fn content_sniffing_tells_security_hub_findings() {
        let cases = [
            ("{\n  \"version\": \"0\",\n  \"id\": \"x\",\n  \"detail-type\": \"Security Hub Findings - Imported\",\n  \"source\": \"aws.securityhub\"", true),
            ("{\"SchemaVersion\":\"2018-10-08\",\"Id\":\"x\",\"ProductArn\":\"arn\"}", true),
            ("{\"Findings\":[{\"SchemaVersion\":\"2018-10-08\"", true),
            ("{\"Id\":\"x\",\"SchemaVersion\":\"2018-10-08\",\"ProductArn\":\"arn\"}", true),
            ("{\"findings\":[{\"correlation_id\":\"acme\",\"title\":\"t\"}]}", false),
            ("{\"source\":\"aws.guardduty\",\"detail-type\":\"GuardDuty Finding\"}", false),
        ];
        for (head, want) in cases {
            assert_eq!(looks_like(head), want, "{head}");
        }
    }
}
