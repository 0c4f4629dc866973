//! Amazon GuardDuty findings, mapped to OCSF 2004 Detection Finding.
//!
//! Inputs taken, one event per finding:
//! - GuardDuty's export to S3 (`AWSLogs/<account>/GuardDuty/<region>/YYYY/MM/DD/<uuid>.jsonl.gz`):
//!   JSON lines of bare findings;
//! - EventBridge "GuardDuty Finding" events, one a line, as a rule's Firehose target
//!   writes them (the finding is `detail`);
//! - a JSON array of findings, or a `{"findings":[...]}` document (GetFindings output),
//!   streamed element by element.
//!
//! The framing is chosen from the first bytes by the Security Hub source's
//! [`read_json_records`](super::securityhub).
//!
//! Mapping decisions worth knowing:
//! - `finding_info.uid` is the finding's ARN (its `id` when it has none); `metadata.uid`
//!   its `id`. `type` → `finding_info.types`, `service.eventFirstSeen`/`eventLastSeen`
//!   → `first_seen_time`/`last_seen_time`, `createdAt`/`updatedAt` →
//!   `created_time`/`modified_time`; `time` is `updatedAt`.
//! - activity: GuardDuty keeps one finding per (type, resource, actor) and updates it
//!   in place each time the activity recurs: `service.count` goes up and `updatedAt`
//!   moves, and the finding is published (and exported) again. So a finding whose
//!   `updatedAt` is later than its `createdAt`, or whose count is over 1, is 2 Update
//!   of the finding the lake already holds under the same uid; otherwise 1 Create.
//!   An archived finding (`service.archived`, by hand or by a suppression rule) is
//!   3 Close, with status 3 Suppressed; any other is status 1 New (GuardDuty has no
//!   workflow of its own).
//! - severity: GuardDuty's number, 1.0–3.9 Low, 4.0–6.9 Medium, 7.0–8.9 High,
//!   9.0 and up Critical (under 1 Informational); the number stays in
//!   `unmapped.severity`.
//! - resources: one per detail object GuardDuty gives (`instanceDetails`,
//!   `accessKeyDetails`, each of `s3BucketDetails`, EKS/ECS clusters, containers,
//!   RDS instances, Lambda functions), typed as Security Hub types them
//!   (`AwsEc2Instance`, `AwsIamAccessKey`, ...) and with the detail object verbatim
//!   in `data`; `resourceType` and details without an id stay in `unmapped.resource`.
//! - `service.action`, `evidence`, `additionalInfo`, `detectorId` and everything
//!   else of `service` stay verbatim in `unmapped.service`; an EventBridge
//!   envelope's fields in `unmapped.eventbridge`.
//! - The partition (account, region) is the finding's own `accountId`/`region`,
//!   then the envelope's, then the object key's: findings of a GuardDuty
//!   administrator account's export name their member accounts.

use super::json::{bad, keep, number, object, text, timestamp, Bad, Fields};
use super::securityhub::{arn_partition_region, envelope, read_json_records, At, Envelope};
use super::{Context, Emit};
use crate::error::Result;
use crate::ocsf::{
    Class, Cloud, Event, FindingInfo, Metadata, Product, Resource, Severity, Str, Unmapped, Value,
};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::io::BufRead;

const PROFILES: &[&str] = &["cloud"];

pub fn normalize(input: &mut dyn BufRead, ctx: &Context, out: &mut dyn Emit) -> Result<()> {
    read_json_records(input, ctx, FINDINGS_KEYS, out, &mut |at, text, out| {
        record(at, text, ctx, out)
    })
}

/// The API writes `findings`; the AWS CLI and SDKs `Findings`.
const FINDINGS_KEYS: &[&str] = &["findings", "Findings"];

/// GuardDuty's JSON names its fields in camelCase (`accountId`); the AWS CLI and
/// SDKs print the same findings in PascalCase (`AccountId`). Both are read by
/// comparing names with their first letter in lower case.
fn camel(key: &str) -> Cow<'_, str> {
    match key.as_bytes().first() {
        Some(b) if b.is_ascii_uppercase() => {
            let mut owned = String::with_capacity(key.len());
            owned.push(b.to_ascii_lowercase() as char);
            owned.push_str(&key[1..]);
            Cow::Owned(owned)
        }
        _ => Cow::Borrowed(key),
    }
}

/// One JSON record: an EventBridge event, a `{"findings":[...]}` document or a
/// bare finding.
fn record(at: At, text: &str, ctx: &Context, out: &mut dyn Emit) -> Result<()> {
    let fields: Fields<'_> = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(e) => {
            return out.reject(at.reject(None, format!("not a JSON object: {e}"), text.as_bytes()))
        }
    };
    if fields.0.iter().any(|(k, _)| *k == "detail-type") {
        let (env, detail) = match envelope(fields) {
            Ok(parts) => parts,
            Err(b) => return out.reject(at.reject(Some(b.field), b.reason, text.as_bytes())),
        };
        let detail_type = env.detail_type.as_deref().unwrap_or("");
        if detail_type != "GuardDuty Finding" {
            return out.reject(at.reject(
                Some("detail-type"),
                format!(
                    "an EventBridge event of detail-type {detail_type:?}, not a GuardDuty finding"
                ),
                text.as_bytes(),
            ));
        }
        let mapped = detail
            .ok_or_else(|| bad("detail", "the event has no detail"))
            .and_then(|d| object("detail", d))
            .and_then(|f| map_finding(f, Some(&env), ctx));
        return match mapped {
            Ok(event) => out.event(&event),
            Err(b) => out.reject(at.reject(Some(b.field), b.reason, text.as_bytes())),
        };
    }
    if let Some((_, findings)) = fields.0.iter().find(|(k, _)| FINDINGS_KEYS.contains(k)) {
        let items: Vec<&RawValue> = match serde_json::from_str(findings.get()) {
            Ok(items) => items,
            Err(_) => {
                return out.reject(at.reject(
                    Some("findings"),
                    "expected an array of findings".into(),
                    text.as_bytes(),
                ))
            }
        };
        if items.is_empty() {
            out.skip("a document without findings");
        }
        for (i, item) in items.into_iter().enumerate() {
            match object("findings", item).and_then(|f| map_finding(f, None, ctx)) {
                Ok(event) => out.event(&event)?,
                Err(b) => out.reject(at.reject(
                    Some(b.field),
                    format!("finding {i} of the record: {}", b.reason),
                    item.get().as_bytes(),
                ))?,
            }
        }
        return Ok(());
    }
    match map_finding(fields, None, ctx) {
        Ok(event) => out.event(&event),
        Err(b) => out.reject(at.reject(Some(b.field), b.reason, text.as_bytes())),
    }
}

#[derive(Default)]
struct Finding<'a> {
    schema_version: Option<Str<'a>>,
    account: Option<Str<'a>>,
    region: Option<Str<'a>>,
    partition: Option<Str<'a>>,
    id: Option<Str<'a>>,
    arn: Option<Str<'a>>,
    type_: Option<Str<'a>>,
    resource: Option<(&'a str, &'a RawValue)>,
    /// With its name as written (`service` or `Service`).
    service: Option<(&'a str, &'a RawValue)>,
    severity: Option<f64>,
    created: Option<i64>,
    updated: Option<i64>,
    title: Option<Str<'a>>,
    description: Option<Str<'a>>,
}

fn map_finding<'a>(
    fields: Fields<'a>,
    env: Option<&Envelope<'a>>,
    ctx: &Context,
) -> Result<Event<'a>, Bad> {
    let mut f = Finding::default();
    let mut unmapped = Unmapped::default();
    for (k, v) in fields.0 {
        match camel(k).as_ref() {
            "schemaVersion" => f.schema_version = text("schemaVersion", v)?,
            "accountId" => f.account = text("accountId", v)?,
            "region" => f.region = text("region", v)?,
            "partition" => f.partition = text("partition", v)?,
            "id" => f.id = text("id", v)?,
            "arn" => f.arn = text("arn", v)?,
            "type" => f.type_ = text("type", v)?,
            "resource" => f.resource = Some((k, v)),
            "service" => f.service = Some((k, v)),
            "severity" => {
                f.severity = number("severity", v)?;
                keep(&mut unmapped, k, v);
            }
            "createdAt" => f.created = timestamp("createdAt", v)?,
            "updatedAt" => f.updated = timestamp("updatedAt", v)?,
            "title" => f.title = text("title", v)?,
            "description" => f.description = text("description", v)?,
            _ => keep(&mut unmapped, k, v),
        }
    }
    let id = f.id.take();
    let uid = f
        .arn
        .take()
        .or_else(|| id.clone())
        .ok_or_else(|| bad("id", "the finding has neither an arn nor an id"))?;
    let title = f
        .title
        .take()
        .ok_or_else(|| bad("title", "the finding has no title"))?;
    let time = f.updated.or(f.created).ok_or_else(|| {
        bad(
            "updatedAt",
            "the finding has neither updatedAt nor createdAt",
        )
    })?;

    let mut service = Service::default();
    if let Some((name, raw)) = f.service {
        service = read_service(name, raw, &mut unmapped)?;
    }

    let (activity_id, activity) = if service.archived {
        (3, "Close")
    } else if service.count.is_some_and(|c| c > 1)
        || matches!((f.created, f.updated), (Some(c), Some(u)) if u > c)
    {
        (2, "Update")
    } else {
        (1, "Create")
    };

    let (arn_partition, arn_region) = arn_partition_region(&uid);
    let partition = f
        .partition
        .take()
        .or_else(|| arn_partition.map(|p| Cow::Owned(p.to_string())));
    let region = f
        .region
        .take()
        .or_else(|| arn_region.map(|r| Cow::Owned(r.to_string())))
        .or_else(|| env.and_then(|e| e.region.clone()))
        .or_else(|| ctx.key.region.clone().map(Cow::Owned));
    let account = f
        .account
        .take()
        .or_else(|| env.and_then(|e| e.account.clone()))
        .or_else(|| ctx.key.account.clone().map(Cow::Owned));
    // Security Hub's name for GuardDuty, which is how other tools refer to it.
    let product_uid = region.as_deref().map(|r| {
        Cow::Owned(format!(
            "arn:{}:securityhub:{r}::product/aws/guardduty",
            partition.as_deref().unwrap_or("aws")
        ))
    });

    let mut metadata = Metadata::new(Product {
        uid: product_uid.clone(),
        ..Product::aws("Amazon GuardDuty")
    });
    metadata.uid = id.or_else(|| Some(uid.clone()));
    metadata.log_version = f.schema_version.take();
    metadata.log_provider = Some(Cow::Borrowed("GuardDuty"));
    metadata.log_name = env.and_then(|e| e.detail_type.clone());
    metadata.profiles = PROFILES;

    let mut event = Event::new(
        Class::DetectionFinding,
        activity_id,
        activity,
        time,
        metadata,
    );
    event.set_severity(severity(f.severity));
    let (status_id, status) = if service.archived {
        (3, "Suppressed")
    } else {
        (1, "New")
    };
    event.status_id = Some(status_id);
    event.status = Some(Cow::Borrowed(status));
    event.count = service.count;
    event.message = Some(title.clone());
    event.cloud = Some(Cloud::aws(region.clone(), account));
    event.finding_info = Some(FindingInfo {
        uid,
        title,
        desc: f.description.take(),
        types: f.type_.take().map(|t| vec![t]),
        created_time: f.created,
        modified_time: f.updated,
        first_seen_time: service.first_seen,
        last_seen_time: service.last_seen,
        product_uid,
        analytic: None,
    });
    if let Some((name, raw)) = f.resource {
        let resources = read_resource(
            name,
            raw,
            region.as_ref(),
            partition.as_ref(),
            &mut unmapped,
        )?;
        if !resources.is_empty() {
            event.resources = Some(resources);
        }
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

fn severity(n: Option<f64>) -> Severity {
    match n {
        None => Severity::Unknown,
        Some(n) if n < 1.0 => Severity::Informational,
        Some(n) if n < 4.0 => Severity::Low,
        Some(n) if n < 7.0 => Severity::Medium,
        Some(n) if n < 9.0 => Severity::High,
        Some(_) => Severity::Critical,
    }
}

#[derive(Default)]
struct Service {
    first_seen: Option<i64>,
    last_seen: Option<i64>,
    count: Option<u64>,
    archived: bool,
}

/// The mapped fields of `service`; the rest goes to `unmapped.service` as it was.
fn read_service<'a>(
    name: &'a str,
    raw: &'a RawValue,
    unmapped: &mut Unmapped<'a>,
) -> Result<Service, Bad> {
    let mut s = Service::default();
    let mut rest = Unmapped::default();
    for (k, v) in object("service", raw)?.0 {
        match camel(k).as_ref() {
            "eventFirstSeen" => s.first_seen = timestamp("service.eventFirstSeen", v)?,
            "eventLastSeen" => s.last_seen = timestamp("service.eventLastSeen", v)?,
            "count" => {
                s.count = number("service.count", v)?
                    .filter(|c| *c >= 0.0 && c.fract() == 0.0)
                    .map(|c| c as u64)
            }
            "archived" => {
                s.archived = match v.get() {
                    "true" => true,
                    "false" | "null" => false,
                    other => {
                        return Err(bad(
                            "service.archived",
                            format!("expected true or false, found {other:.32}"),
                        ))
                    }
                }
            }
            _ => keep(&mut rest, k, v),
        }
    }
    if !rest.is_empty() {
        unmapped.0.push((Cow::Borrowed(name), Value::Map(rest)));
    }
    Ok(s)
}

/// GuardDuty's detail objects: (key, resource type as Security Hub names it,
/// the key of its id, the key of its name).
const DETAILS: &[(&str, &str, &str, &str)] = &[
    ("instanceDetails", "AwsEc2Instance", "instanceId", ""),
    ("accessKeyDetails", "AwsIamAccessKey", "accessKeyId", ""),
    ("s3BucketDetails", "AwsS3Bucket", "arn", "name"),
    ("eksClusterDetails", "AwsEksCluster", "arn", "name"),
    ("ecsClusterDetails", "AwsEcsCluster", "arn", "name"),
    ("containerDetails", "Container", "id", "name"),
    (
        "rdsDbInstanceDetails",
        "AwsRdsDbInstance",
        "dbInstanceArn",
        "dbInstanceIdentifier",
    ),
    (
        "lambdaDetails",
        "AwsLambdaFunction",
        "functionArn",
        "functionName",
    ),
];

/// One resource per detail object that names one; what names none stays in
/// `unmapped.resource`.
fn read_resource<'a>(
    name: &'a str,
    raw: &'a RawValue,
    region: Option<&Str<'a>>,
    partition: Option<&Str<'a>>,
    unmapped: &mut Unmapped<'a>,
) -> Result<Vec<Resource<'a>>, Bad> {
    let mut out = Vec::new();
    let mut rest = Unmapped::default();
    for (k, v) in object("resource", raw)?.0 {
        let Some(&(_, type_, id_key, name_key)) = DETAILS.iter().find(|d| d.0 == camel(k)) else {
            keep(&mut rest, k, v);
            continue;
        };
        // s3BucketDetails is a list; every other detail one object.
        let items: Vec<&'a RawValue> = if v.get().starts_with('[') {
            serde_json::from_str(v.get())
                .map_err(|_| bad("resource", format!("{k} is not an array of objects")))?
        } else {
            vec![v]
        };
        let before = out.len();
        for item in items {
            if item.get() == "null" {
                continue;
            }
            let fields = object("resource", item)?;
            let lookup = |key: &str| -> Result<Option<Str<'a>>, Bad> {
                match fields
                    .0
                    .iter()
                    .find(|(k, _)| !key.is_empty() && camel(k) == key)
                {
                    Some((_, v)) => text("resource", v),
                    None => Ok(None),
                }
            };
            let (uid, name) = (lookup(id_key)?, lookup(name_key)?);
            if uid.is_none() && name.is_none() {
                continue;
            }
            out.push(Resource {
                uid,
                name,
                type_: Some(Cow::Borrowed(type_)),
                region: region.cloned(),
                cloud_partition: partition.cloned(),
                data: verbatim(item),
                ..Resource::default()
            });
        }
        if out.len() == before {
            keep(&mut rest, k, v);
        }
    }
    if !rest.is_empty() {
        unmapped.0.push((Cow::Borrowed(name), Value::Map(rest)));
    }
    Ok(out)
}

/// `raw` as `unmapped` would keep it (nulls dropped).
fn verbatim(raw: &RawValue) -> Option<Value<'_>> {
    let mut one = Unmapped::default();
    keep(&mut one, "", raw);
    one.0.pop().map(|(_, v)| v)
}

/// Whether the decoded head of an object looks like GuardDuty findings (and not
/// like Security Hub's copy of them, which names GuardDuty too).
pub fn looks_like(head: &str) -> bool {
    let compact: String = head
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(2048)
        .collect();
    if compact.contains("\"source\":\"aws.securityhub\"")
        || compact.contains("\"SchemaVersion\":\"2018-10-08\"")
    {
        return false;
    }
    compact.contains("\"source\":\"aws.guardduty\"")
        || compact.contains("\"detail-type\":\"GuardDutyFinding\"")
        || ((compact.contains("\"arn\":\"arn:") || compact.contains("\"Arn\":\"arn:"))
            && compact.contains(":guardduty:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_bands_follow_guardduty() {
        let cases = [
            (None, Severity::Unknown),
            (Some(0.5), Severity::Informational),
            (Some(1.0), Severity::Low),
            (Some(3.9), Severity::Low),
            (Some(4.0), Severity::Medium),
            (Some(6.9), Severity::Medium),
            (Some(7.0), Severity::High),
            (Some(8.9), Severity::High),
            (Some(9.0), Severity::Critical),
            (Some(10.0), Severity::Critical),
        ];
        for (n, want) in cases {
            assert_eq!(severity(n), want, "{n:?}");
        }
    }

    #[test]
    fn pascal_case_names_read_as_camel_case() {
        for (key, want) in [
            ("AccountId", "accountId"),
            ("accountId", "accountId"),
            ("S3BucketDetails", "s3BucketDetails"),
            ("EventFirstSeen", "eventFirstSeen"),
            ("", ""),
        ] {
            assert_eq!(camel(key), want);
        }
    }

    #[test]
    fn content_sniffing_tells_guardduty_findings() {
        let cases = [
            ("{\"version\":\"0\",\"id\":\"1\",\"detail-type\":\"GuardDuty Finding\",\"source\":\"aws.guardduty\"", true),
            ("{\"schemaVersion\":\"2.0\",\"accountId\":\"1\",\"region\":\"us-east-1\",\"partition\":\"aws\",\"id\":\"x\",\"arn\":\"arn:aws:guardduty:us-east-1:1:detector/d/finding/x\"", true),
            ("{\n    \"Findings\": [\n        {\n            \"AccountId\": \"1\",\n            \"Arn\": \"arn:aws:guardduty:us-east-1:1:detector/d/finding/x\"", true),
            ("[{\"arn\":\"arn:aws-cn:guardduty:cn-north-1:1:detector/d/finding/x\"", true),
            // Security Hub's copy of a GuardDuty finding is Security Hub's.
            ("{\"SchemaVersion\":\"2018-10-08\",\"Id\":\"arn:aws:guardduty:us-east-1:1:detector/d/finding/x\",\"Arn\":\"arn:aws:guardduty:x\"", false),
            ("{\"detail-type\":\"Security Hub Findings - Imported\",\"source\":\"aws.securityhub\",\"detail\":{\"findings\":[{\"Id\":\"arn:aws:guardduty:x\"", false),
            ("{\"Records\":[]}", false),
        ];
        for (head, want) in cases {
            assert_eq!(looks_like(head), want, "{head}");
        }
    }
}
