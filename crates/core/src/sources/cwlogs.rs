//! CloudWatch Logs subscription data delivered to S3 by Kinesis Data Firehose.
//!
//! CloudWatch Logs sends a subscription's data as JSON payloads
//! `{messageType, owner, logGroup, logStream, subscriptionFilters, logEvents:[{id,
//! timestamp, message}]}`, each gzipped; Firehose writes the records of a batch one
//! after another into one object, so the object is several gzip members whose
//! payloads follow each other with no separator (`}{`). The decoder reads every
//! member; [`json_objects`] splits the payloads, each bounded in size, so the object
//! is never held whole. Firehose set to decompress writes the same payloads as plain
//! concatenated JSON, which reads the same way.
//!
//! - `CONTROL_MESSAGE` payloads are CloudWatch Logs checking that the destination is
//!   reachable: counted as skipped, one a payload, never events.
//! - Each log event of a `DATA_MESSAGE` is one record. It goes to the mapper of the
//!   source it holds where that can be told, and is mapped, skipped or rejected
//!   exactly as a record of that source's own files: a VPC flow log row of the
//!   default format, a Route 53 Resolver query log record or a CloudTrail record.
//!   The payload's `owner` is the account for records that do not name their own;
//!   the region comes from the record, or stays unknown (the Firehose key has none).
//! - Any other message is kept as it is, as an OCSF Base Event (class 0, the class
//!   OCSF 1.1.0 provides for events of no category): `raw_data` is the message,
//!   `time` the log event's timestamp, `metadata.log_name` the log group,
//!   `metadata.uid` the log event id, and `unmapped` the log stream, the
//!   subscription filters and whatever else the payload carries.
//!
//! Which source a message holds is decided by its content first: the names of log
//! groups are chosen by their owners and prove nothing. A log group or stream named
//! after CloudTrail or Route 53 Resolver only sends a JSON message that does not
//! look like a record of that source to its mapper anyway, so that a broken record
//! (CloudWatch Logs cuts events over 256 KB) is rejected with the reason rather than
//! kept as if it were some unknown application's log.
//!
//! VPC flow log rows in a custom format are kept raw. A flow log's custom format is
//! part of the flow log's configuration: files in S3 start with a header naming the
//! fields, but CloudWatch Logs delivers the rows alone. Reading the columns by guess
//! (`2 eni-… 172.31.16.139 172.31.16.21` could be `version interface-id srcaddr
//! dstaddr` or `version interface-id pkt-srcaddr pkt-dstaddr`) would write wrong
//! facts into the lake; kept raw, the row loses nothing and can be mapped later by
//! whoever knows the format.

use super::json::Fields;
use super::{route53, vpcflow, Context, Emit, KeyInfo, Rejected, SourceKind};
use crate::error::{Error, Location, Result};
use crate::framing::{count_newlines, json_objects, ElementEnd, SplitError};
use crate::ocsf::{Class, Cloud, Event, Metadata, Product, Severity, Unmapped};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::io::BufRead;

/// Used when the context leaves the limit unset (0). A subscription payload holds
/// at most a PutLogEvents batch (1 MiB of messages), which JSON escaping can swell.
const DEFAULT_MAX_PAYLOAD: usize = 4 * 1024 * 1024;

/// OCSF's timestamp range in epoch ms: [2000-01-01, 2100-01-01).
const MIN_TIME_MS: i64 = 946_684_800_000;
const MAX_TIME_MS: i64 = 4_102_444_800_000;

const PRODUCT: &str = "Amazon CloudWatch Logs";

/// Whether `text` (the start of an object) is a subscription payload: AWS writes
/// `messageType` first, but a payload re-serialised may order its keys otherwise.
pub fn looks_like_payload(text: &str) -> bool {
    text.trim_start().starts_with('{')
        && text.contains("\"messageType\"")
        && text.contains("\"logGroup\"")
        && (text.contains("DATA_MESSAGE") || text.contains("CONTROL_MESSAGE"))
}

/// A JSON string, borrowed from the payload unless it had escapes to undo.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

#[derive(Deserialize)]
struct LogEvent<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(default)]
    timestamp: Option<i64>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
    /// Present when the subscription filter's pattern names fields.
    #[serde(rename = "extractedFields", borrow, default)]
    extracted_fields: Option<&'a RawValue>,
}

/// A payload's own fields; the log events stay unparsed until their turn, so that
/// one bad event costs only itself.
#[derive(Default)]
struct Payload<'a> {
    message_type: Option<Cow<'a, str>>,
    owner: Option<Cow<'a, str>>,
    log_group: Option<Cow<'a, str>>,
    log_stream: Option<Cow<'a, str>>,
    subscription_filters: Option<&'a RawValue>,
    log_events: Option<Vec<&'a RawValue>>,
    /// Keys CloudWatch Logs may add (e.g. `policyLevel`), kept for raw events.
    other: Vec<(&'a str, &'a RawValue)>,
}

/// Why a payload could not be read: the field and the reason.
type Bad = (&'static str, String);

fn text<'a>(
    field: &'static str,
    raw: &'a RawValue,
) -> std::result::Result<Option<Cow<'a, str>>, Bad> {
    if raw.get() == "null" {
        return Ok(None);
    }
    serde_json::from_str::<Text<'a>>(raw.get())
        .map(|t| Some(t.0))
        .map_err(|e| (field, format!("{field} is not a string: {e}")))
}

fn parse_payload(bytes: &[u8]) -> std::result::Result<Payload<'_>, Bad> {
    let fields: Fields<'_> = serde_json::from_slice(bytes).map_err(|e| {
        (
            "messageType",
            format!("not a CloudWatch Logs subscription payload (a JSON object): {e}"),
        )
    })?;
    let mut p = Payload::default();
    for (key, value) in fields.0 {
        match key {
            "messageType" => p.message_type = text("messageType", value)?,
            "owner" => p.owner = text("owner", value)?,
            "logGroup" => p.log_group = text("logGroup", value)?,
            "logStream" => p.log_stream = text("logStream", value)?,
            "subscriptionFilters" if value.get() != "null" => p.subscription_filters = Some(value),
            "logEvents" if value.get() != "null" => {
                p.log_events = Some(
                    serde_json::from_str(value.get())
                        .map_err(|e| ("logEvents", format!("logEvents is not a list: {e}")))?,
                );
            }
            _ if value.get() != "null" => p.other.push((key, value)),
            _ => {}
        }
    }
    Ok(p)
}

/// The source a log event's message holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    VpcFlow,
    Route53,
    CloudTrail,
    Raw,
}

/// The start of `s`, at most `n` bytes, cut on a character boundary: enough to
/// see a record's first keys without searching a 256 KB message.
fn head(s: &str, n: usize) -> &str {
    let mut end = s.len().min(n);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn names(group: &str, stream: &str, needles: &[&str]) -> bool {
    let (g, s) = (group.to_ascii_lowercase(), stream.to_ascii_lowercase());
    needles.iter().any(|n| g.contains(n) || s.contains(n))
}

/// A default-format flow log row, checked beyond its field count so that an
/// application's line of 14 words starting with `2` is not taken for one.
fn is_default_flow_row(line: &str) -> bool {
    if !vpcflow::DefaultRows::is_row(line) {
        return false;
    }
    let mut tokens = line.split_ascii_whitespace();
    let account = tokens.nth(1).unwrap_or("");
    let status = line.split_ascii_whitespace().last().unwrap_or("");
    (account == "-" || (!account.is_empty() && account.bytes().all(|b| b.is_ascii_digit())))
        && matches!(status, "OK" | "NODATA" | "SKIPDATA")
}

fn route(group: &str, stream: &str, message: &str) -> Route {
    let trimmed = message.trim();
    if trimmed.starts_with('{') {
        let h = head(trimmed, 4096);
        if h.contains("\"query_timestamp\"") && h.contains("\"query_name\"") {
            return Route::Route53;
        }
        if h.contains("\"eventVersion\"")
            && [
                "\"eventSource\"",
                "\"eventName\"",
                "\"userIdentity\"",
                "\"eventTime\"",
            ]
            .iter()
            .any(|k| h.contains(k))
        {
            return Route::CloudTrail;
        }
        // CloudTrail names its stream `<account>_CloudTrail_<region>`.
        if names(group, stream, &["cloudtrail"]) {
            return Route::CloudTrail;
        }
        if names(group, stream, &["route53", "resolver", "dnsquery"]) {
            return Route::Route53;
        }
        return Route::Raw;
    }
    if is_default_flow_row(trimmed) {
        return Route::VpcFlow;
    }
    Route::Raw
}

/// Sends rejects of a routed mapper on with the place of the log event in the
/// object and the log group it came from.
struct Located<'o> {
    out: &'o mut dyn Emit,
    line: u64,
    record: u64,
    index: usize,
    group: &'o str,
    route: &'static str,
}

impl Emit for Located<'_> {
    fn event(&mut self, event: &Event<'_>) -> Result<()> {
        self.out.event(event)
    }

    fn reject(&mut self, r: Rejected<'_>) -> Result<()> {
        self.out.reject(Rejected {
            line: Some(self.line),
            record: Some(self.record),
            field: r.field,
            reason: format!(
                "logEvents[{}] of log group `{}`, read as {}: {}",
                self.index, self.group, self.route, r.reason
            ),
            raw: r.raw,
        })
    }

    fn skip(&mut self, reason: &'static str) {
        self.out.skip(reason);
    }
}

fn format_error(ctx: &Context, line: u64, record: Option<u64>, reason: String) -> Error {
    Error::Format {
        at: Location {
            object: ctx.object.clone(),
            line: Some(line),
            record,
        },
        reason,
    }
}

/// Reads an object of subscription payloads, one log event a record.
pub fn normalize(input: &mut dyn BufRead, ctx: &Context, out: &mut dyn Emit) -> Result<()> {
    let max = match ctx.max_record_bytes {
        0 => DEFAULT_MAX_PAYLOAD,
        n => n,
    };
    let mut split = json_objects(input, max);
    let mut flow = vpcflow::DefaultRows::new();
    // Log events so far, across payloads: the record number of rejects.
    let mut records: u64 = 0;
    loop {
        let line = split.line();
        let value = match split.next_value() {
            Ok(Some(value)) => value,
            Ok(None) => return Ok(()),
            Err(SplitError::Io(source)) => {
                return Err(Error::Read {
                    at: Location {
                        object: ctx.object.clone(),
                        line: Some(line),
                        record: None,
                    },
                    source,
                })
            }
            Err(SplitError::Format {
                line,
                record,
                reason,
            }) => return Err(format_error(ctx, line, record, reason)),
        };
        let (index, line, bytes) = (value.index, value.line, value.bytes);
        let reject = |field: Option<&'static str>, reason: String| Rejected {
            line: Some(line),
            record: None,
            field,
            reason: format!("payload {index}: {reason}"),
            raw: bytes,
        };
        match value.end {
            ElementEnd::Complete => {}
            ElementEnd::Oversized { len } => {
                out.reject(reject(
                    None,
                    format!(
                        "{len} bytes, over the limit of {max} bytes; only its beginning is kept"
                    ),
                ))?;
                continue;
            }
            ElementEnd::Truncated => {
                out.reject(reject(
                    None,
                    "the object ends inside this payload (truncated file?)".into(),
                ))?;
                continue;
            }
        }
        let payload = match parse_payload(bytes) {
            Ok(p) => p,
            Err((field, reason)) => {
                out.reject(reject(Some(field), reason))?;
                continue;
            }
        };
        match payload.message_type.as_deref() {
            Some("DATA_MESSAGE") => {}
            Some("CONTROL_MESSAGE") => {
                out.skip("cwl-control-message");
                continue;
            }
            Some(other) => {
                out.reject(reject(
                    Some("messageType"),
                    format!(
                        "messageType `{:.64}` is neither DATA_MESSAGE nor CONTROL_MESSAGE",
                        other
                    ),
                ))?;
                continue;
            }
            None => {
                out.reject(reject(
                    Some("messageType"),
                    "not a CloudWatch Logs subscription payload: it has no messageType".into(),
                ))?;
                continue;
            }
        }
        let Some(events) = payload.log_events.as_deref() else {
            out.reject(reject(
                Some("logEvents"),
                "a DATA_MESSAGE without logEvents".into(),
            ))?;
            continue;
        };
        // The owner of a DATA_MESSAGE is the account of the log group.
        let account = payload
            .owner
            .as_deref()
            .filter(|o| !o.is_empty() && o.bytes().all(|b| b.is_ascii_digit()));
        let inner = Context {
            object: ctx.object.clone(),
            key: KeyInfo {
                source: Some(SourceKind::CloudWatchLogs),
                account: account.map(str::to_owned),
                region: ctx.key.region.clone(),
            },
            max_record_bytes: ctx.max_record_bytes,
        };
        let group = payload.log_group.as_deref().unwrap_or("");
        let stream = payload.log_stream.as_deref().unwrap_or("");
        // Lines of a pretty-printed payload, counted on from one log event to the next.
        let (mut seen, mut line) = (0usize, line);
        for (i, raw) in events.iter().enumerate() {
            let record = records;
            records += 1;
            let at = (raw.get().as_ptr() as usize).wrapping_sub(bytes.as_ptr() as usize);
            if let Some(between) = bytes.get(seen..at) {
                line += count_newlines(between);
                seen = at;
            }
            let event_reject = |field: Option<&'static str>, reason: String| Rejected {
                line: Some(line),
                record: Some(record),
                field,
                reason: format!("logEvents[{i}] of log group `{group}`: {reason}"),
                raw: raw.get().as_bytes(),
            };
            let log_event: LogEvent<'_> = match serde_json::from_str(raw.get()) {
                Ok(e) => e,
                Err(e) => {
                    out.reject(event_reject(
                        None,
                        format!("not a log event {{id, timestamp, message}}: {e}"),
                    ))?;
                    continue;
                }
            };
            let Some(message) = log_event.message.as_deref() else {
                out.reject(event_reject(
                    Some("message"),
                    "the log event has no message".into(),
                ))?;
                continue;
            };
            let which = route(group, stream, message);
            let mut located = Located {
                out: &mut *out,
                line,
                record,
                index: i,
                group,
                route: match which {
                    Route::VpcFlow => "a VPC flow log row",
                    Route::Route53 => "a Route 53 Resolver query log record",
                    Route::CloudTrail => "a CloudTrail record",
                    Route::Raw => "a raw log event",
                },
            };
            match which {
                Route::VpcFlow => flow.map_line(message.trim(), line, &inner, &mut located)?,
                Route::Route53 => route53::map_json(message, line, &inner, &mut located)?,
                Route::CloudTrail => super::cloudtrail::map_json(
                    message.as_bytes(),
                    line,
                    record,
                    &inner,
                    &mut located,
                )?,
                Route::Raw => {
                    let time = match log_event.timestamp {
                        Some(t) if (MIN_TIME_MS..MAX_TIME_MS).contains(&t) => t,
                        Some(t) => {
                            out.reject(event_reject(
                                Some("timestamp"),
                                format!("timestamp {t} is not epoch milliseconds in 2000..2100"),
                            ))?;
                            continue;
                        }
                        None => {
                            out.reject(event_reject(
                                Some("timestamp"),
                                "the log event has no timestamp".into(),
                            ))?;
                            continue;
                        }
                    };
                    let event = raw_event(&payload, &log_event, message, time, &inner);
                    out.event(&event)?;
                }
            }
        }
    }
}

/// A message of no known source, kept whole as an OCSF Base Event.
fn raw_event<'a>(
    payload: &'a Payload<'a>,
    log_event: &'a LogEvent<'a>,
    message: &'a str,
    time: i64,
    inner: &'a Context,
) -> Event<'a> {
    let mut metadata = Metadata::new(Product::aws(PRODUCT));
    metadata.log_name = payload.log_group.as_deref().map(Cow::Borrowed);
    metadata.uid = log_event
        .id
        .as_deref()
        .filter(|id| !id.is_empty())
        .map(Cow::Borrowed);
    metadata.profiles = &["cloud"];
    let mut event = Event::new(Class::ApiActivity, 0, "Unknown", time, metadata);
    // `Class` lists the classes muster maps to, which all have a category; the Base
    // Event (class 0, category 0 Uncategorized, activity 0 Unknown) is set here.
    event.class_uid = 0;
    event.class_name = "Base Event";
    event.category_uid = 0;
    event.category_name = "Uncategorized";
    event.type_uid = 0;
    event.type_name.class = "Base Event";
    // Nothing is known of what the message means, least of all how grave it is.
    event.set_severity(Severity::Unknown);
    event.cloud = Some(Cloud::aws(
        inner.key.region.as_deref().map(Cow::Borrowed),
        inner.key.account.as_deref().map(Cow::Borrowed),
    ));
    event.raw_data = Some(Cow::Borrowed(message));
    let mut unmapped = Unmapped::default();
    if let Some(stream) = payload.log_stream.as_deref() {
        unmapped.str("logStream", stream);
    }
    if let Some(filters) = payload.subscription_filters {
        unmapped.raw("subscriptionFilters", filters);
    }
    if let Some(fields) = log_event.extracted_fields {
        unmapped.raw("extractedFields", fields);
    }
    // An owner that is no account id (never seen in a DATA_MESSAGE) is kept as said.
    if let Some(owner) = payload.owner.as_deref() {
        if inner.key.account.is_none() && !owner.is_empty() {
            unmapped.str("owner", owner);
        }
    }
    for (key, value) in &payload.other {
        unmapped.raw(*key, value);
    }
    event.unmapped = unmapped;
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_routed_by_content_then_by_name() {
        let cases = [
            ("/aws/vpc/flowlogs", "eni-1", "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK", Route::VpcFlow),
            ("app", "s", "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA", Route::VpcFlow),
            ("/aws/vpc/flowlogs", "eni-1", "2 eni-1235b8ca123456789 172.31.16.139 172.31.16.21", Route::Raw),
            ("app", "s", "2 apples and 11 other words make fourteen words in this line OK", Route::Raw),
            ("dns", "s", r#"{"version":"1.100000","query_timestamp":"2026-11-20T10:00:00Z","query_name":"a.example."}"#, Route::Route53),
            ("/aws/route53resolver/q", "vpc-1", r#"{"version":"1.1"}"#, Route::Route53),
            ("CloudTrail", "1_CloudTrail_us-east-1", r#"{"eventVersion":"1.03","userIdentity":{"type":"Root"}"#, Route::CloudTrail),
            ("org", "s", r#"{"eventVersion":"1.08","eventSource":"s3.amazonaws.com"}"#, Route::CloudTrail),
            ("app", "s", r#"{"level":"info","msg":"started"}"#, Route::Raw),
            ("cloudtrail-like", "s", "plain text", Route::Raw),
        ];
        for (group, stream, message, want) in cases {
            assert_eq!(route(group, stream, message), want, "{group} {message}");
        }
    }

    #[test]
    fn head_cuts_on_a_character_boundary() {
        assert_eq!(head("héllo", 2), "h");
        assert_eq!(head("abc", 10), "abc");
    }
}
