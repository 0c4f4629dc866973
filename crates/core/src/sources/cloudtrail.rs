//! CloudTrail log files (`{"Records":[...]}`, management, data and Insights
//! events) read record by record and mapped to OCSF 1.1.0:
//!
//! - sign-in events (`ConsoleLogin`, `CheckMfa`, IAM Identity Center sign-in
//!   steps, anything of eventType `AwsConsoleSignIn`) → 3002 Authentication;
//! - changes to IAM users, roles, groups, their policies, passwords, access keys
//!   and MFA devices → 3001 Account Change;
//! - everything else → 6003 API Activity, its activity from the verb of `eventName`.
//!
//! The file is never held whole: [`JsonArraySplitter`] hands over one record's
//! bytes at a time, and the record is parsed into borrowed fields (strings point
//! into the record; fields that have no OCSF home stay `&RawValue` and are copied
//! verbatim into `unmapped`). Nothing of the record is dropped: what is not mapped
//! is kept, including keys this module has never heard of, and the parts of
//! `userIdentity` without a home under `unmapped.userIdentity`, nested as they
//! were. Fields that are mapped are not repeated there (`recipientAccountId` is
//! `cloud.account.uid`, `eventCategory` is `metadata.log_name`, `eventType` is
//! `metadata.event_code`); empty strings count as absent.
//!
//! API Activity requires an actor and a source endpoint. A record without a
//! `userIdentity` (some `AwsServiceEvent`s) has its account as the actor; an
//! Insights event has none of either, and is CloudTrail's own
//! (`cloudtrail.amazonaws.com` as `actor.invoked_by` and `src_endpoint.svc_name`),
//! while `api` names the call it is about. A `sourceIPAddress` that is no address
//! (`ec2.amazonaws.com`, `AWS Internal`) is the calling service: `svc_name`.
//!
//! Severity (CloudTrail has none of its own), chosen so that the events worth a
//! look stand out from the millions of routine calls:
//! - any sign-in as the root user → High (AWS and CIS advise against root use);
//! - a failed sign-in → Medium;
//! - an API call refused for lack of permission (`AccessDenied*`,
//!   `*UnauthorizedOperation`) → Low, as is every Insights event (an anomaly);
//! - the rest → Informational.

use super::{Context, Emit, Rejected};
use crate::error::{Error, Location, Result};
use crate::framing::{ElementEnd, JsonArraySplitter, Resync, SplitError};
use crate::ocsf::{
    Account, Actor, Api, ApiRequest, ApiResponse, Class, Cloud, Endpoint, Event, HttpRequest, Idp,
    Metadata, Policy, Product, Resource, ResourceOwner, Service, Session, Severity, Status, Str,
    Unmapped, User, Value,
};
use crate::time::parse_rfc3339_ms;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::io::BufRead;

/// Used when the context leaves the limit unset (0).
const DEFAULT_MAX_RECORD_BYTES: usize = 8 * 1024 * 1024;

/// Where CloudTrail Insights events come from: they have no caller of their own.
const INSIGHTS_SERVICE: &str = "cloudtrail.amazonaws.com";

pub fn normalize(input: &mut dyn BufRead, ctx: &Context, out: &mut dyn Emit) -> Result<()> {
    let max = match ctx.max_record_bytes {
        0 => DEFAULT_MAX_RECORD_BYTES,
        n => n,
    };
    // AWS writes `eventVersion` first in every record; the splitter learns the
    // real first key from the first whole record anyway.
    let mut split = JsonArraySplitter::new(input, "Records", max).with_resync_key("eventVersion");
    loop {
        // Most records lie whole in the decoder's buffer: parsed there, serde
        // finds where they end, and the splitter neither scans nor copies them.
        let peeked = match split.peek_element() {
            Ok(Some(peeked)) => peeked,
            Ok(None) => return Ok(()),
            Err(e) => return Err(split_error(e, ctx, split.line())),
        };
        let (len, records) = in_place(peeked.bytes, peeked.index, peeked.line, max, ctx, out)?;
        if records > 0 {
            if let Err(e) = split.commit(len, records) {
                return Err(split_error(e, ctx, split.line()));
            }
            continue;
        }
        // The record runs past the buffer, or is broken or too long: the
        // splitter finds its end and hands over a copy.
        let element = match split.next_element() {
            Ok(Some(element)) => element,
            Ok(None) => return Ok(()),
            Err(e) => {
                // Keep what was read of the record the stream broke off in.
                if let (SplitError::Io(cause), Some((index, line, raw))) =
                    (&e, split.interrupted_element())
                {
                    if !raw.is_empty() {
                        out.reject(Rejected {
                            line: Some(line),
                            record: Some(index),
                            field: None,
                            reason: format!("the input broke off inside this record: {cause}"),
                            raw,
                        })?;
                    }
                }
                return Err(split_error(e, ctx, split.line()));
            }
        };
        let (index, line) = (element.index, element.line);
        let broken = match element.end {
            ElementEnd::Oversized { len } => {
                out.reject(Rejected {
                    line: Some(line),
                    record: Some(index),
                    field: None,
                    reason: format!(
                        "record is {len} bytes, over the limit of {max} bytes; only its beginning is kept"
                    ),
                    raw: element.bytes,
                })?;
                continue;
            }
            ElementEnd::Truncated => {
                "the file ends inside this record (truncated file?)".to_string()
            }
            ElementEnd::Complete => match process(element.bytes, ctx) {
                Processed::Event(event) => {
                    out.event(&event)?;
                    continue;
                }
                Processed::Unmappable { field, reason } => {
                    out.reject(Rejected {
                        line: Some(line),
                        record: Some(index),
                        field: Some(field),
                        reason,
                        raw: element.bytes,
                    })?;
                    continue;
                }
                Processed::Broken(reason) => reason,
            },
        };
        // Broken JSON may have swallowed the records after it, or ended early
        // and left the rest of itself behind: the splitter finds where the next
        // record starts, so that one broken record is one reject.
        let (reason, failed) = match split.resync() {
            Ok(Resync::Cut(_)) => (
                format!("{broken}; the records after it were read again"),
                None,
            ),
            Ok(Resync::Skipped(n)) => (
                format!(
                    "{broken}; the {n} bytes after it, up to the next record, are kept with it"
                ),
                None,
            ),
            Ok(Resync::Nothing) => (broken, None),
            Err(e) => (broken, Some(e)),
        };
        out.reject(Rejected {
            line: Some(line),
            record: Some(index),
            field: None,
            reason,
            raw: split.element_bytes(),
        })?;
        if let Some(e) = failed {
            return Err(split_error(e, ctx, split.line()));
        }
    }
}

/// Maps one record that comes alone rather than in a `Records` array (CloudWatch
/// Logs subscriptions carry one record a log event): an event, or a reject with
/// the reason a record of a file would get. `line` and `record` say where it was.
pub(crate) fn map_json(
    bytes: &[u8],
    line: u64,
    record: u64,
    ctx: &Context,
    out: &mut dyn Emit,
) -> Result<()> {
    let (field, reason) = match process(bytes, ctx) {
        Processed::Event(event) => return out.event(&event),
        Processed::Unmappable { field, reason } => (Some(field), reason),
        Processed::Broken(reason) => (None, reason),
    };
    out.reject(Rejected {
        line: Some(line),
        record: Some(record),
        field,
        reason,
        raw: bytes,
    })
}

fn split_error(e: SplitError, ctx: &Context, line: u64) -> Error {
    match e {
        SplitError::Io(source) => Error::Read {
            at: Location {
                object: ctx.object.clone(),
                line: Some(line),
                record: None,
            },
            source,
        },
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

/// Parses, maps and emits the records that lie whole at the start of `bytes`
/// (the reader's buffer from a record's first byte on), and steps over the
/// separators after them; how many bytes and records it took. It stops at
/// whatever it cannot take whole (a record running past the buffer, broken or
/// oversized JSON, the end of the array) and leaves that to the careful path,
/// which also says precisely what is wrong with it.
fn in_place(
    bytes: &[u8],
    index: u64,
    line: u64,
    max: usize,
    ctx: &Context,
    out: &mut dyn Emit,
) -> Result<(usize, u64)> {
    // One UTF-8 check for the whole buffer rather than serde's one per string. A
    // character cut by the buffer's end is left out: only a record running past
    // the end can hold it.
    let whole = match bytes.iter().rev().take(4).position(|b| b & 0xC0 != 0x80) {
        Some(p) if bytes[bytes.len() - 1 - p] >= 0x80 => bytes.len() - 1 - p,
        _ => bytes.len(),
    };
    let text = match std::str::from_utf8(&bytes[..whole]) {
        Ok(text) => text,
        // Invalid UTF-8 inside: take what comes before it.
        Err(e) => match std::str::from_utf8(&bytes[..e.valid_up_to()]) {
            Ok(text) => text,
            Err(_) => return Ok((0, 0)),
        },
    };
    let mut pos = 0;
    let mut records = 0;
    while text.as_bytes().get(pos) == Some(&b'{') {
        let rest = &text[pos..];
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<InPlace>();
        let Some(Ok(InPlace(record))) = stream.next() else {
            break;
        };
        let len = stream.byte_offset();
        if len > max {
            break;
        }
        match map_record(record, ctx) {
            Ok(event) => out.event(&event)?,
            Err(Unmappable { field, reason }) => out.reject(Rejected {
                line: Some(line + crate::framing::count_newlines(&bytes[..pos])),
                record: Some(index + records),
                field: Some(field),
                reason,
                raw: &rest.as_bytes()[..len],
            })?,
        }
        records += 1;
        pos += len;
        pos += text.as_bytes()[pos..]
            .iter()
            .position(|&b| !(b.is_ascii_whitespace() || b == b','))
            .unwrap_or(text.len() - pos);
    }
    Ok((pos, records))
}

/// A record for the in-place path, which does not need to know which field
/// failed: the careful path parses a failing record again and says.
struct InPlace<'a>(Record<'a>);

impl<'de> Deserialize<'de> for InPlace<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let failed = Cell::new(None);
        d.deserialize_map(RecordVisitor { failed: &failed })
            .map(InPlace)
    }
}

enum Processed<'a> {
    Event(Box<Event<'a>>),
    /// Valid JSON that cannot be mapped: which field, and why.
    Unmappable {
        field: &'static str,
        reason: String,
    },
    /// Not valid JSON.
    Broken(String),
}

fn process<'a>(bytes: &'a [u8], ctx: &'a Context) -> Processed<'a> {
    let failed = Cell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = de
        .deserialize_map(RecordVisitor { failed: &failed })
        .and_then(|record| de.end().map(|()| record));
    match parsed {
        Ok(record) => match map_record(record, ctx) {
            Ok(event) => Processed::Event(Box::new(event)),
            Err(Unmappable { field, reason }) => Processed::Unmappable { field, reason },
        },
        // A wrong type is the record's fault only if the record is JSON at all:
        // a lost quote can turn a string into a number before the real damage.
        Err(e) if e.is_data() => {
            match (serde_json::from_slice::<IgnoredAny>(bytes), failed.get()) {
                (Ok(_), Some(field)) => Processed::Unmappable {
                    field,
                    reason: format!("{field}: {e} of the record"),
                },
                // JSON, but no object: a piece of a record that broke before it.
                (Ok(_), None) => {
                    Processed::Broken(format!("not a CloudTrail record: {e} of the record"))
                }
                (Err(syntax), _) => {
                    Processed::Broken(format!("not valid JSON: {syntax} of the record"))
                }
            }
        }
        Err(e) => Processed::Broken(format!("not valid JSON: {e} of the record")),
    }
}

// ---------------------------------------------------------------------------
// The record, parsed borrowed
// ---------------------------------------------------------------------------

/// A JSON string, borrowed from the record unless it had escapes to undo.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A JSON string or `null`, read in one step (a string field of CloudTrail is
/// `null` as often as it is absent).
struct OptText<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for OptText<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OptText<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or null")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(OptText(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(OptText(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(OptText(Some(Cow::Owned(v))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OptText(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Verbatim fields in the order they were met, ready to become `unmapped`.
type Kept<'a> = Vec<(Str<'a>, Value<'a>)>;

/// Keeps `raw` under `key` unless it is `null`; a repeated key replaces the
/// earlier value, because duplicate keys would make the output invalid JSON.
fn keep<'a>(kept: &mut Kept<'a>, key: Cow<'a, str>, value: Value<'a>) {
    if matches!(value, Value::Raw(raw) if raw.get() == "null") {
        return;
    }
    match kept.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => kept.push((key, value)),
    }
}

/// The dotted path of the field whose value had the wrong type, for the reject.
type Failed<'c> = &'c Cell<Option<&'static str>>;

fn note<'c, E>(failed: Failed<'c>, field: &'static str) -> impl FnOnce(E) -> E + 'c {
    move |e| {
        if failed.get().is_none() {
            failed.set(Some(field));
        }
        e
    }
}

fn text<'de, A: MapAccess<'de>>(
    map: &mut A,
    failed: Failed<'_>,
    field: &'static str,
) -> Result<Option<Cow<'de, str>>, A::Error> {
    map.next_value::<OptText<'de>>()
        .map(|t| t.0)
        .map_err(note(failed, field))
}

fn raw<'de, A: MapAccess<'de>>(map: &mut A) -> Result<&'de RawValue, A::Error> {
    map.next_value::<&'de RawValue>()
}

#[derive(Default)]
struct Record<'a> {
    event_version: Option<Cow<'a, str>>,
    user_identity: Option<UserIdentity<'a>>,
    event_time: Option<Cow<'a, str>>,
    event_source: Option<Cow<'a, str>>,
    event_name: Option<Cow<'a, str>>,
    aws_region: Option<Cow<'a, str>>,
    source_ip: Option<Cow<'a, str>>,
    user_agent: Option<Cow<'a, str>>,
    error_code: Option<Cow<'a, str>>,
    error_message: Option<Cow<'a, str>>,
    request_id: Option<Cow<'a, str>>,
    event_id: Option<Cow<'a, str>>,
    event_type: Option<Cow<'a, str>>,
    api_version: Option<Cow<'a, str>>,
    recipient_account_id: Option<Cow<'a, str>>,
    shared_event_id: Option<Cow<'a, str>>,
    event_category: Option<Cow<'a, str>>,
    request_parameters: Option<&'a RawValue>,
    response_elements: Option<&'a RawValue>,
    additional_event_data: Option<&'a RawValue>,
    service_event_details: Option<&'a RawValue>,
    insight_details: Option<&'a RawValue>,
    resources: Option<&'a RawValue>,
    /// Fields with no OCSF home, in input order, known or not.
    kept: Kept<'a>,
}

struct RecordVisitor<'c> {
    failed: Failed<'c>,
}

impl<'de> Visitor<'de> for RecordVisitor<'_> {
    type Value = Record<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a CloudTrail record (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record<'de>, A::Error> {
        let failed = self.failed;
        let mut r = Record {
            kept: Vec::with_capacity(12),
            ..Record::default()
        };
        while let Some(Text(key)) = map.next_key()? {
            match &*key {
                "eventVersion" => r.event_version = text(&mut map, failed, "eventVersion")?,
                "userIdentity" => {
                    r.user_identity = map
                        .next_value_seed(Nullable(IdentitySeed { failed }))
                        .map_err(note(failed, "userIdentity"))?
                }
                "eventTime" => r.event_time = text(&mut map, failed, "eventTime")?,
                "eventSource" => r.event_source = text(&mut map, failed, "eventSource")?,
                "eventName" => r.event_name = text(&mut map, failed, "eventName")?,
                "awsRegion" => r.aws_region = text(&mut map, failed, "awsRegion")?,
                "sourceIPAddress" => r.source_ip = text(&mut map, failed, "sourceIPAddress")?,
                "userAgent" => r.user_agent = text(&mut map, failed, "userAgent")?,
                "errorCode" => r.error_code = text(&mut map, failed, "errorCode")?,
                "errorMessage" => r.error_message = text(&mut map, failed, "errorMessage")?,
                "requestID" => r.request_id = text(&mut map, failed, "requestID")?,
                "eventID" => r.event_id = text(&mut map, failed, "eventID")?,
                "eventType" => r.event_type = text(&mut map, failed, "eventType")?,
                "apiVersion" => r.api_version = text(&mut map, failed, "apiVersion")?,
                "recipientAccountId" => {
                    r.recipient_account_id = text(&mut map, failed, "recipientAccountId")?
                }
                "sharedEventID" => r.shared_event_id = text(&mut map, failed, "sharedEventID")?,
                "eventCategory" => r.event_category = text(&mut map, failed, "eventCategory")?,
                "resources" => r.resources = Some(raw(&mut map)?),
                // Kept verbatim and also looked into by some mappings.
                "requestParameters"
                | "responseElements"
                | "additionalEventData"
                | "serviceEventDetails"
                | "insightDetails" => {
                    let value = raw(&mut map)?;
                    let slot = match &*key {
                        "requestParameters" => &mut r.request_parameters,
                        "responseElements" => &mut r.response_elements,
                        "additionalEventData" => &mut r.additional_event_data,
                        "serviceEventDetails" => &mut r.service_event_details,
                        _ => &mut r.insight_details,
                    };
                    *slot = Some(value);
                    keep(&mut r.kept, key, Value::Raw(value));
                }
                // readOnly, managementEvent, tlsDetails, vpcEndpointId, ... and
                // whatever CloudTrail adds next.
                _ => {
                    let value = raw(&mut map)?;
                    keep(&mut r.kept, key, Value::Raw(value));
                }
            }
        }
        Ok(r)
    }
}

/// `null` → `None`, anything else through the inner seed.
struct Nullable<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Nullable<S> {
    type Value = Option<S::Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V<S>(S);
        impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for V<S> {
            type Value = Option<S::Value>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object or null")
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                self.0.deserialize(d).map(Some)
            }
        }
        d.deserialize_option(V(self.0))
    }
}

#[derive(Default)]
struct UserIdentity<'a> {
    type_: Option<Cow<'a, str>>,
    principal_id: Option<Cow<'a, str>>,
    arn: Option<Cow<'a, str>>,
    account_id: Option<Cow<'a, str>>,
    access_key_id: Option<Cow<'a, str>>,
    user_name: Option<Cow<'a, str>>,
    invoked_by: Option<Cow<'a, str>>,
    identity_provider: Option<Cow<'a, str>>,
    /// IAM Identity Center users have a `userId` instead of a `principalId`.
    user_id: Option<Cow<'a, str>>,
    issuer_arn: Option<Cow<'a, str>>,
    issuer_user_name: Option<Cow<'a, str>>,
    creation_date: Option<Cow<'a, str>>,
    mfa_authenticated: Option<Cow<'a, str>>,
    kept: Kept<'a>,
    session_kept: Kept<'a>,
    issuer_kept: Kept<'a>,
    attributes_kept: Kept<'a>,
}

#[derive(Clone, Copy)]
struct IdentitySeed<'c> {
    failed: Failed<'c>,
}

impl<'de> DeserializeSeed<'de> for IdentitySeed<'_> {
    type Value = UserIdentity<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for IdentitySeed<'_> {
    type Value = UserIdentity<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a userIdentity object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let failed = self.failed;
        let mut u = UserIdentity::default();
        while let Some(Text(key)) = map.next_key()? {
            match &*key {
                "type" => u.type_ = text(&mut map, failed, "userIdentity.type")?,
                "principalId" => {
                    u.principal_id = text(&mut map, failed, "userIdentity.principalId")?
                }
                "arn" => u.arn = text(&mut map, failed, "userIdentity.arn")?,
                "accountId" => u.account_id = text(&mut map, failed, "userIdentity.accountId")?,
                "accessKeyId" => {
                    u.access_key_id = text(&mut map, failed, "userIdentity.accessKeyId")?
                }
                "userName" => u.user_name = text(&mut map, failed, "userIdentity.userName")?,
                "invokedBy" => u.invoked_by = text(&mut map, failed, "userIdentity.invokedBy")?,
                "identityProvider" => {
                    u.identity_provider = text(&mut map, failed, "userIdentity.identityProvider")?
                }
                "userId" => u.user_id = text(&mut map, failed, "userIdentity.userId")?,
                "sessionContext" => {
                    map.next_value_seed(Nullable(SessionSeed {
                        failed,
                        identity: &mut u,
                    }))
                    .map_err(note(failed, "userIdentity.sessionContext"))?;
                }
                _ => {
                    let value = raw(&mut map)?;
                    keep(&mut u.kept, key, Value::Raw(value));
                }
            }
        }
        Ok(u)
    }
}

/// Reads `sessionContext` into the identity it belongs to.
struct SessionSeed<'c, 'u, 'de> {
    failed: Failed<'c>,
    identity: &'u mut UserIdentity<'de>,
}

impl<'de> DeserializeSeed<'de> for SessionSeed<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for SessionSeed<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sessionContext object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (failed, u) = (self.failed, self.identity);
        while let Some(Text(key)) = map.next_key()? {
            match &*key {
                "sessionIssuer" => map
                    .next_value_seed(Nullable(Inner {
                        failed,
                        identity: &mut *u,
                        part: Part::Issuer,
                    }))
                    .map(drop)
                    .map_err(note(failed, "userIdentity.sessionContext.sessionIssuer"))?,
                "attributes" => map
                    .next_value_seed(Nullable(Inner {
                        failed,
                        identity: &mut *u,
                        part: Part::Attributes,
                    }))
                    .map(drop)
                    .map_err(note(failed, "userIdentity.sessionContext.attributes"))?,
                _ => {
                    let value = raw(&mut map)?;
                    keep(&mut u.session_kept, key, Value::Raw(value));
                }
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Part {
    Issuer,
    Attributes,
}

/// `sessionIssuer` or `attributes` of a `sessionContext`.
struct Inner<'c, 'u, 'de> {
    failed: Failed<'c>,
    identity: &'u mut UserIdentity<'de>,
    part: Part,
}

impl<'de> DeserializeSeed<'de> for Inner<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Inner<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (failed, u) = (self.failed, self.identity);
        while let Some(Text(key)) = map.next_key()? {
            match (self.part, &*key) {
                (Part::Issuer, "arn") => {
                    u.issuer_arn = text(
                        &mut map,
                        failed,
                        "userIdentity.sessionContext.sessionIssuer.arn",
                    )?
                }
                // The role's name: the user's name when it has none of its own
                // (see identity_leftovers).
                (Part::Issuer, "userName") => {
                    u.issuer_user_name = text(
                        &mut map,
                        failed,
                        "userIdentity.sessionContext.sessionIssuer.userName",
                    )?
                }
                (Part::Attributes, "creationDate") => {
                    u.creation_date = text(
                        &mut map,
                        failed,
                        "userIdentity.sessionContext.attributes.creationDate",
                    )?
                }
                (Part::Attributes, "mfaAuthenticated") => {
                    u.mfa_authenticated = text(
                        &mut map,
                        failed,
                        "userIdentity.sessionContext.attributes.mfaAuthenticated",
                    )?
                }
                (Part::Issuer, _) => {
                    let value = raw(&mut map)?;
                    keep(&mut u.issuer_kept, key, Value::Raw(value));
                }
                (Part::Attributes, _) => {
                    let value = raw(&mut map)?;
                    keep(&mut u.attributes_kept, key, Value::Raw(value));
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Looking into verbatim fields (only for the few records that need it)
// ---------------------------------------------------------------------------

/// A value looked up in a verbatim field.
enum Scalar<'a> {
    Str(Cow<'a, str>),
    Bool(bool),
    Other,
}

impl<'a> Scalar<'a> {
    fn into_str(self) -> Option<Cow<'a, str>> {
        match self {
            Scalar::Str(s) if !s.is_empty() => Some(s),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Scalar::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// The values of `keys` in the JSON object `raw` (all `None` if it is not one).
fn pick<'a, const N: usize>(raw: Option<&'a RawValue>, keys: [&str; N]) -> [Option<Scalar<'a>>; N] {
    struct V<'k, const N: usize>([&'k str; N]);
    impl<'de, const N: usize> Visitor<'de> for V<'_, N> {
        type Value = [Option<Scalar<'de>>; N];
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found: [Option<Scalar<'de>>; N] = std::array::from_fn(|_| None);
            while let Some(Text(key)) = map.next_key()? {
                match self.0.iter().position(|k| *k == key) {
                    Some(i) => found[i] = Some(map.next_value()?),
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(found)
        }
    }
    raw.and_then(|raw| {
        serde_json::Deserializer::from_str(raw.get())
            .deserialize_map(V(keys))
            .ok()
    })
    .unwrap_or_else(|| std::array::from_fn(|_| None))
}

/// One entry of `resources`.
#[derive(Default)]
struct ResourceEntry<'a> {
    arn: Option<Cow<'a, str>>,
    arn_prefix: Option<Cow<'a, str>>,
    type_: Option<Cow<'a, str>>,
    account_id: Option<Cow<'a, str>>,
    /// Keys besides these: the entry cannot be rebuilt from the OCSF resource.
    other: bool,
}

impl<'de> Deserialize<'de> for ResourceEntry<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ResourceEntry<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a resource object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut e = ResourceEntry::default();
                while let Some(Text(key)) = map.next_key()? {
                    let slot = match &*key {
                        "ARN" => &mut e.arn,
                        "ARNPrefix" => &mut e.arn_prefix,
                        "type" => &mut e.type_,
                        "accountId" => &mut e.account_id,
                        _ => {
                            e.other = true;
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = map.next_value::<OptText>()?.0;
                }
                Ok(e)
            }
        }
        d.deserialize_map(V)
    }
}

/// OCSF resources from `resources`, and whether the original must be kept too
/// because something in it has no place in them.
fn resources(raw: &RawValue) -> (Option<Vec<Resource<'_>>>, bool) {
    let Ok(entries) = serde_json::from_str::<Vec<ResourceEntry>>(raw.get()) else {
        return (None, raw.get() != "null");
    };
    let mut lossy = false;
    let mapped: Vec<Resource> = entries
        .into_iter()
        .filter_map(|e| {
            // An ARNPrefix names a set of objects (S3 prefix), not one: it is
            // searchable as the uid, and the original keeps what it was.
            lossy |=
                e.other || e.arn_prefix.is_some() || (e.arn.is_none() && e.arn_prefix.is_none());
            let uid = nonempty(e.arn).or(nonempty(e.arn_prefix))?;
            Some(Resource {
                uid: Some(uid),
                type_: nonempty(e.type_),
                owner: nonempty(e.account_id).map(|a| ResourceOwner {
                    account: Account::aws(a),
                }),
                ..Resource::default()
            })
        })
        .collect();
    ((!mapped.is_empty()).then_some(mapped), lossy)
}

// ---------------------------------------------------------------------------
// Mapping
// ---------------------------------------------------------------------------

struct Unmappable {
    field: &'static str,
    reason: String,
}

fn nonempty(s: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    s.filter(|s| !s.is_empty())
}

/// What kind of OCSF event a record becomes.
enum Kind {
    SignIn {
        activity: (u32, &'static str),
    },
    AccountChange {
        activity: Option<(u32, &'static str)>,
    },
    Api {
        activity: Option<(u32, &'static str)>,
    },
    Insight,
}

const SIGN_IN_EVENTS: &[&str] = &[
    "ConsoleLogin",
    "CheckMfa",
    "ExternalIdPDirectoryLogin",
    "UserAuthentication",
    "CredentialChallenge",
    "CredentialVerification",
];

fn classify(r: &Record<'_>, operation: &str) -> Kind {
    if r.insight_details.is_some() || r.event_type.as_deref() == Some("AwsCloudTrailInsight") {
        return Kind::Insight;
    }
    if r.event_type.as_deref() == Some("AwsConsoleSignIn") || SIGN_IN_EVENTS.contains(&operation) {
        let activity = if operation.contains("Logout") || operation.contains("Logoff") {
            (2, "Logoff")
        } else {
            (1, "Logon")
        };
        return Kind::SignIn { activity };
    }
    if r.event_source.as_deref() == Some("iam.amazonaws.com") {
        if let Some(activity) = account_change(operation, r.request_parameters) {
            return Kind::AccountChange { activity };
        }
    }
    Kind::Api {
        activity: api_activity(operation),
    }
}

/// The 3001 activity of an IAM call that changes a principal, its credentials or
/// its permissions: `Some(None)` for such a change that OCSF has no activity for
/// (99 Other, named by the call), `None` for calls that are not account changes.
fn account_change(
    operation: &str,
    request: Option<&RawValue>,
) -> Option<Option<(u32, &'static str)>> {
    const CREATE: (u32, &str) = (1, "Create");
    const ENABLE: (u32, &str) = (2, "Enable");
    const PASSWORD_CHANGE: (u32, &str) = (3, "Password Change");
    const PASSWORD_RESET: (u32, &str) = (4, "Password Reset");
    const DISABLE: (u32, &str) = (5, "Disable");
    const DELETE: (u32, &str) = (6, "Delete");
    const ATTACH: (u32, &str) = (7, "Attach Policy");
    const DETACH: (u32, &str) = (8, "Detach Policy");
    const MFA_ENABLE: (u32, &str) = (10, "MFA Factor Enable");
    const MFA_DISABLE: (u32, &str) = (11, "MFA Factor Disable");
    Some(match operation {
        "CreateUser" | "CreateRole" | "CreateServiceLinkedRole" | "CreateGroup" => Some(CREATE),
        "DeleteUser" | "DeleteRole" | "DeleteServiceLinkedRole" | "DeleteGroup" => Some(DELETE),
        // A login profile is the console password: creating one opens the door,
        // deleting it closes it; an administrator setting it is a reset.
        "CreateLoginProfile" => Some(ENABLE),
        "DeleteLoginProfile" => Some(DISABLE),
        "UpdateLoginProfile" => Some(PASSWORD_RESET),
        "ChangePassword" => Some(PASSWORD_CHANGE),
        "AttachUserPolicy"
        | "AttachRolePolicy"
        | "AttachGroupPolicy"
        | "PutUserPolicy"
        | "PutRolePolicy"
        | "PutGroupPolicy"
        | "PutUserPermissionsBoundary"
        | "PutRolePermissionsBoundary" => Some(ATTACH),
        "DetachUserPolicy"
        | "DetachRolePolicy"
        | "DetachGroupPolicy"
        | "DeleteUserPolicy"
        | "DeleteRolePolicy"
        | "DeleteGroupPolicy"
        | "DeleteUserPermissionsBoundary"
        | "DeleteRolePermissionsBoundary" => Some(DETACH),
        "EnableMFADevice" => Some(MFA_ENABLE),
        "DeactivateMFADevice" => Some(MFA_DISABLE),
        // Access keys are credentials of an account, not accounts: OCSF 1.1.0 has
        // no activity for creating or deleting them, but turning one on or off is
        // what Enable and Disable mean.
        "UpdateAccessKey" => {
            let [status] = pick(request, ["status"]);
            match status.and_then(Scalar::into_str).as_deref() {
                Some("Active") => Some(ENABLE),
                Some("Inactive") => Some(DISABLE),
                _ => None,
            }
        }
        "CreateAccessKey"
        | "DeleteAccessKey"
        | "UpdateUser"
        | "UpdateRole"
        | "UpdateRoleDescription"
        | "UpdateAssumeRolePolicy"
        | "AddUserToGroup"
        | "RemoveUserFromGroup"
        | "UpdateGroup"
        | "TagUser"
        | "UntagUser"
        | "TagRole"
        | "UntagRole"
        | "ResyncMFADevice"
        | "CreateVirtualMFADevice"
        | "DeleteVirtualMFADevice"
        | "UploadSSHPublicKey"
        | "UpdateSSHPublicKey"
        | "DeleteSSHPublicKey"
        | "CreateServiceSpecificCredential"
        | "UpdateServiceSpecificCredential"
        | "DeleteServiceSpecificCredential"
        | "ResetServiceSpecificCredential"
        | "UploadSigningCertificate"
        | "UpdateSigningCertificate"
        | "DeleteSigningCertificate" => None,
        _ => return None,
    })
}

/// The 6003 activity from the verb that starts a CloudTrail event name
/// (`DescribeInstances` → Describe → Read); `None` for verbs that fit none of
/// Create, Read, Update, Delete (`AssumeRole`, `Decrypt`, `Publish`), which
/// become 99 Other named by the call.
fn api_activity(operation: &str) -> Option<(u32, &'static str)> {
    let verb = leading_word(operation);
    let rest = &operation[verb.len()..];
    // BatchGetItem reads, BatchDeleteImage deletes: the verb follows Batch.
    if verb == "Batch" && !rest.is_empty() {
        return api_activity(rest);
    }
    Some(match verb {
        "Create" | "Put" | "Run" | "Start" | "Add" | "Allocate" | "Import" | "Register"
        | "Copy" | "Upload" | "Launch" | "Authorize" | "Request" | "Issue" | "Insert" | "Post" => {
            (1, "Create")
        }
        "Get" | "Describe" | "List" | "Head" | "Lookup" | "Search" | "Query" | "Scan"
        | "Select" | "Filter" | "Download" | "View" | "Preview" | "Retrieve" | "Read" | "Fetch" => {
            (2, "Read")
        }
        "Update" | "Modify" | "Set" | "Attach" | "Detach" | "Change" | "Edit" | "Enable"
        | "Disable" | "Replace" | "Reset" | "Tag" | "Untag" | "Associate" | "Disassociate"
        | "Apply" | "Patch" | "Stop" | "Reboot" | "Restore" | "Rename" | "Move" | "Activate"
        | "Deactivate" | "Rotate" => (3, "Update"),
        "Delete" | "Remove" | "Terminate" | "Revoke" | "Deregister" | "Purge" | "Release"
        | "Cancel" | "Destroy" | "Unregister" | "Abort" => (4, "Delete"),
        _ => return None,
    })
}

/// `DescribeInstances` → `Describe`: the first capitalised word.
fn leading_word(s: &str) -> &str {
    let b = s.as_bytes();
    let end = b
        .iter()
        .skip(1)
        .position(|c| !c.is_ascii_lowercase())
        .map_or(b.len(), |p| p + 1);
    &s[..end]
}

fn is_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

/// `userIdentity.type` → OCSF user type.
fn user_type<'a>(t: Option<&Cow<'a, str>>) -> (Option<u32>, Option<Str<'a>>) {
    match t.map(|t| t.as_ref()) {
        None | Some("") => (None, None),
        Some("IAMUser") => (Some(1), Some(Cow::Borrowed("User"))),
        Some("Root") => (Some(2), Some(Cow::Borrowed("Admin"))),
        // AssumedRole, FederatedUser, AWSService, AWSAccount, IdentityCenterUser,
        // SAMLUser, WebIdentityUser...: kept by name as Other.
        Some(_) => (Some(99), t.cloned()),
    }
}

/// The principal of `userIdentity`, if it names one (OCSF wants at least one of
/// uid, name, account).
fn identity_user<'a>(u: &UserIdentity<'a>) -> Option<User<'a>> {
    let (type_id, type_) = user_type(u.type_.as_ref());
    let user = User {
        uid: nonempty(u.principal_id.clone()).or_else(|| nonempty(u.user_id.clone())),
        uid_alt: nonempty(u.arn.clone()),
        name: nonempty(u.user_name.clone()).or_else(|| nonempty(u.issuer_user_name.clone())),
        type_id,
        type_,
        credential_uid: nonempty(u.access_key_id.clone()),
        account: nonempty(u.account_id.clone()).map(Account::aws),
    };
    (user.uid.is_some() || user.name.is_some() || user.account.is_some()).then_some(user)
}

fn identity_session<'a>(u: &UserIdentity<'a>) -> Option<Session<'a>> {
    let created_time = u.creation_date.as_deref().and_then(parse_rfc3339_ms);
    let is_mfa = match u.mfa_authenticated.as_deref() {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    };
    let issuer = nonempty(u.issuer_arn.clone());
    (created_time.is_some() || is_mfa.is_some() || issuer.is_some()).then(|| Session {
        issuer,
        created_time,
        is_mfa,
        ..Session::default()
    })
}

/// What is left of `userIdentity` after mapping, nested as it was. `user_mapped`
/// says whether the identity became an OCSF user (which holds its type).
fn identity_leftovers<'a>(u: &mut UserIdentity<'a>, user_mapped: bool) -> Option<Value<'a>> {
    let mut attributes = std::mem::take(&mut u.attributes_kept);
    // Values that did not parse are kept as they were rather than lost.
    if let Some(date) = &u.creation_date {
        if parse_rfc3339_ms(date).is_none() {
            keep(
                &mut attributes,
                Cow::Borrowed("creationDate"),
                Value::Str(date.clone()),
            );
        }
    }
    if let Some(mfa) = &u.mfa_authenticated {
        if !matches!(mfa.as_ref(), "true" | "false") {
            keep(
                &mut attributes,
                Cow::Borrowed("mfaAuthenticated"),
                Value::Str(mfa.clone()),
            );
        }
    }
    let mut session = std::mem::take(&mut u.session_kept);
    let mut issuer = std::mem::take(&mut u.issuer_kept);
    // The issuer's name is kept unless it became the user's name.
    if nonempty(u.user_name.clone()).is_some() || !user_mapped {
        if let Some(name) = nonempty(u.issuer_user_name.clone()) {
            keep(&mut issuer, Cow::Borrowed("userName"), Value::Str(name));
        }
    }
    if !issuer.is_empty() {
        keep(
            &mut session,
            Cow::Borrowed("sessionIssuer"),
            Value::Map(Unmapped(issuer)),
        );
    }
    if !attributes.is_empty() {
        keep(
            &mut session,
            Cow::Borrowed("attributes"),
            Value::Map(Unmapped(attributes)),
        );
    }
    let mut identity = std::mem::take(&mut u.kept);
    if !user_mapped {
        if let Some(t) = nonempty(u.type_.clone()) {
            keep(&mut identity, Cow::Borrowed("type"), Value::Str(t));
        }
    }
    // With a principalId, Identity Center's userId is a second id with no other home.
    if u.principal_id.as_deref().is_some_and(|p| !p.is_empty()) {
        if let Some(id) = nonempty(u.user_id.clone()) {
            keep(&mut identity, Cow::Borrowed("userId"), Value::Str(id));
        }
    }
    if !session.is_empty() {
        keep(
            &mut identity,
            Cow::Borrowed("sessionContext"),
            Value::Map(Unmapped(session)),
        );
    }
    (!identity.is_empty()).then_some(Value::Map(Unmapped(identity)))
}

fn is_access_denied(code: &str) -> bool {
    code.contains("AccessDenied") || code.contains("UnauthorizedOperation")
}

fn map_record<'a>(mut r: Record<'a>, ctx: &'a Context) -> Result<Event<'a>, Unmappable> {
    let Some(time_text) = r.event_time.take() else {
        return Err(Unmappable {
            field: "eventTime",
            reason: "eventTime is missing".into(),
        });
    };
    let Some(time) = parse_rfc3339_ms(&time_text) else {
        return Err(Unmappable {
            field: "eventTime",
            reason: format!("eventTime is not an RFC 3339 time: {time_text:?}"),
        });
    };

    // Insights records carry the call they are about inside insightDetails.
    let [insight_source, insight_name, insight_type] = if r.insight_details.is_some() {
        pick(
            r.insight_details,
            ["eventSource", "eventName", "insightType"],
        )
    } else {
        [None, None, None]
    };
    let operation = nonempty(r.event_name.take())
        .or_else(|| insight_name.and_then(Scalar::into_str))
        .ok_or_else(|| Unmappable {
            field: "eventName",
            reason: "eventName is missing: the record names no API call".into(),
        })?;
    let kind = classify(&r, &operation);
    let service =
        nonempty(r.event_source.take()).or_else(|| insight_source.and_then(Scalar::into_str));

    let mut identity = r.user_identity.take();
    let account = nonempty(r.recipient_account_id.take())
        .or_else(|| {
            identity
                .as_ref()
                .and_then(|u| nonempty(u.account_id.clone()))
        })
        .or_else(|| ctx.key.account.as_deref().map(Cow::Borrowed));
    let region =
        nonempty(r.aws_region.take()).or_else(|| ctx.key.region.as_deref().map(Cow::Borrowed));
    let event_version = nonempty(r.event_version.take());

    let mut metadata = Metadata::new(Product {
        version: event_version,
        ..Product::aws("CloudTrail")
    });
    metadata.uid = nonempty(r.event_id.take());
    metadata.correlation_uid =
        nonempty(r.shared_event_id.take()).or_else(|| nonempty(r.request_id.clone()));
    metadata.log_name = nonempty(r.event_category.take()).or_else(|| {
        Some(Cow::Borrowed(
            match (&kind, r.kept.iter().find(|(k, _)| k == "managementEvent")) {
                (Kind::Insight, _) => "Insight",
                (_, Some((_, Value::Raw(v)))) if v.get() == "false" => "Data",
                _ => "Management",
            },
        ))
    });
    metadata.event_code = nonempty(r.event_type.take());
    metadata.log_provider = Some(Cow::Borrowed("CloudTrail"));
    metadata.profiles = &["cloud"];

    let (class, (activity_id, activity_name)) = match &kind {
        Kind::SignIn { activity } => (
            Class::Authentication,
            (activity.0, Cow::Borrowed(activity.1)),
        ),
        Kind::AccountChange { activity } => (
            Class::AccountChange,
            activity.map_or((99, operation.clone()), |(id, name)| {
                (id, Cow::Borrowed(name))
            }),
        ),
        Kind::Api { activity } => (
            Class::ApiActivity,
            activity.map_or((99, operation.clone()), |(id, name)| {
                (id, Cow::Borrowed(name))
            }),
        ),
        Kind::Insight => (
            Class::ApiActivity,
            (
                99,
                insight_type
                    .and_then(Scalar::into_str)
                    .unwrap_or(Cow::Borrowed("Insight")),
            ),
        ),
    };
    metadata.original_time = Some(time_text);
    let mut event = Event::new(class, activity_id, activity_name, time, metadata);
    event.cloud = Some(Cloud::aws(region, account.clone()));

    // Who did it.
    let user = identity.as_ref().and_then(identity_user);
    let user_mapped = user.is_some();
    let session = identity.as_ref().and_then(identity_session);
    let invoked_by = identity
        .as_ref()
        .and_then(|u| nonempty(u.invoked_by.clone()));
    let idp = identity
        .as_ref()
        .and_then(|u| nonempty(u.identity_provider.clone()))
        .map(|name| Idp { name });
    let is_root = identity.as_ref().and_then(|u| u.type_.as_deref()) == Some("Root");

    // Where from: an address, or the AWS service that made the call for the caller.
    let source = nonempty(r.source_ip.take());
    event.src_endpoint = match source {
        Some(ip) if is_ip(&ip) => Some(Endpoint {
            ip: Some(ip),
            ..Endpoint::default()
        }),
        Some(name) => Some(Endpoint {
            svc_name: Some(name),
            ..Endpoint::default()
        }),
        None => invoked_by
            .clone()
            .or_else(|| matches!(kind, Kind::Insight).then_some(Cow::Borrowed(INSIGHTS_SERVICE)))
            .map(|name| Endpoint {
                svc_name: Some(name),
                ..Endpoint::default()
            }),
    };
    event.http_request = nonempty(r.user_agent.take()).map(|ua| HttpRequest {
        user_agent: Some(ua),
        ..HttpRequest::default()
    });

    let error_code = nonempty(r.error_code.take());
    let error_message = nonempty(r.error_message.take());
    event.api = Some(Api {
        operation: operation.clone(),
        service: service.clone().map(|name| Service { name }),
        version: nonempty(r.api_version.take()),
        request: nonempty(r.request_id.take()).map(|uid| ApiRequest { uid }),
        response: (error_code.is_some() || error_message.is_some()).then(|| ApiResponse {
            error: error_code.clone(),
            error_message: error_message.clone(),
        }),
    });
    event.status_code = error_code.clone();
    event.status_detail = error_message.clone();

    let failed = error_code.is_some() || error_message.is_some();
    let mut severity = if error_code.as_deref().is_some_and(is_access_denied) {
        Severity::Low
    } else {
        Severity::Informational
    };

    match kind {
        Kind::SignIn { .. } => {
            // The outcome is under the event's own name: {"ConsoleLogin":"Failure"}
            // in responseElements, or in serviceEventDetails for Identity Center.
            let [outcome] = pick(r.response_elements, [operation.as_ref()]);
            let outcome = outcome.and_then(Scalar::into_str).or_else(|| {
                let [outcome] = pick(r.service_event_details, [operation.as_ref()]);
                outcome.and_then(Scalar::into_str)
            });
            let status = match outcome.as_deref() {
                Some("Failure") => Status::Failure,
                _ if failed => Status::Failure,
                Some("Success") => Status::Success,
                _ => Status::Unknown,
            };
            event.set_status(status);
            let [mfa_used] = pick(r.additional_event_data, ["MFAUsed"]);
            event.is_mfa = match mfa_used {
                Some(Scalar::Bool(b)) => Some(b),
                Some(Scalar::Str(s)) => match s.as_ref() {
                    "Yes" | "yes" | "true" => Some(true),
                    "No" | "no" | "false" => Some(false),
                    _ => None,
                },
                _ => None,
            };
            if status == Status::Failure {
                severity = Severity::Medium;
            }
            if is_root {
                severity = Severity::High;
            }
            event.service = Some(Service {
                name: service.unwrap_or(Cow::Borrowed("signin.amazonaws.com")),
            });
            // The user signing in is the event's subject; the actor keeps only
            // what describes how (session, invoking service, identity provider).
            let subject = subject(user, &account)?;
            event.actor = actor(None, session, invoked_by, idp.clone()).or_else(|| {
                idp.map(|idp| Actor {
                    user: Some(subject.clone()),
                    idp: Some(idp),
                    ..Actor::default()
                })
            });
            event.user = Some(subject);
        }
        Kind::AccountChange { .. } => {
            event.set_status(if failed {
                Status::Failure
            } else {
                Status::Success
            });
            let [user_name, role_name, group_name, policy_arn, policy_name] = pick(
                r.request_parameters,
                [
                    "userName",
                    "roleName",
                    "groupName",
                    "policyArn",
                    "policyName",
                ],
            );
            let target =
                |name: Option<Scalar<'a>>, type_id: u32, type_: &'static str| -> Option<User<'a>> {
                    name.and_then(Scalar::into_str).map(|name| User {
                        name: Some(name),
                        type_id: Some(type_id),
                        type_: Some(Cow::Borrowed(type_)),
                        account: account.clone().map(Account::aws),
                        ..User::default()
                    })
                };
            // The principal changed: named in the request, else the caller
            // changing itself (ChangePassword, CreateAccessKey without userName).
            let named = target(user_name, 1, "User")
                .or_else(|| target(role_name, 99, "Role"))
                .or_else(|| target(group_name, 99, "Group"));
            event.user = Some(match named {
                Some(named) => named,
                None => subject(user.clone(), &account)?,
            });
            let policy_arn = policy_arn.and_then(Scalar::into_str);
            let policy_name = policy_name.and_then(Scalar::into_str).or_else(|| {
                policy_arn
                    .as_deref()
                    .and_then(|arn| arn.rsplit('/').next())
                    .map(|name| Cow::Owned(name.to_owned()))
            });
            if policy_arn.is_some() || policy_name.is_some() {
                event.policy = Some(Policy {
                    uid: policy_arn,
                    name: policy_name,
                });
            }
            event.actor = actor(user, session, invoked_by, idp);
        }
        Kind::Api { .. } | Kind::Insight => {
            if matches!(kind, Kind::Insight) {
                severity = Severity::Low;
            } else {
                event.set_status(if failed {
                    Status::Failure
                } else {
                    Status::Success
                });
            }
            // API Activity requires an actor and a source: a record without a
            // userIdentity still belongs to an account, and Insights events are
            // CloudTrail's own.
            let user = user.or_else(|| {
                (!matches!(kind, Kind::Insight) && invoked_by.is_none() && session.is_none())
                    .then(|| account.clone().map(|a| account_only(Some(a))))
                    .flatten()
            });
            let invoked_by = invoked_by.or_else(|| {
                (matches!(kind, Kind::Insight) && user.is_none())
                    .then_some(Cow::Borrowed(INSIGHTS_SERVICE))
            });
            event.actor = actor(user, session, invoked_by, idp);
            if event.actor.is_none() {
                return Err(Unmappable {
                    field: "userIdentity",
                    reason: "no actor: the record has no userIdentity and no account".into(),
                });
            }
            if event.src_endpoint.is_none() {
                return Err(Unmappable {
                    field: "sourceIPAddress",
                    reason: "no source: the record has no sourceIPAddress and no invoking service"
                        .into(),
                });
            }
            if let Some(raw) = r.resources.take() {
                let (mapped, lossy) = resources(raw);
                event.resources = mapped;
                if lossy {
                    keep(&mut r.kept, Cow::Borrowed("resources"), Value::Raw(raw));
                }
            }
        }
    }
    // Resources of sign-ins and account changes have no OCSF attribute: keep them.
    if let Some(raw) = r.resources.take() {
        keep(&mut r.kept, Cow::Borrowed("resources"), Value::Raw(raw));
    }
    event.set_severity(severity);

    let mut kept = std::mem::take(&mut r.kept);
    if let Some(leftovers) = identity
        .as_mut()
        .and_then(|u| identity_leftovers(u, user_mapped))
    {
        keep(&mut kept, Cow::Borrowed("userIdentity"), leftovers);
    }
    event.unmapped = Unmapped(kept);
    Ok(event)
}

fn account_only(account: Option<Str<'_>>) -> User<'_> {
    User {
        account: account.map(Account::aws),
        ..User::default()
    }
}

/// The user an Authentication or Account Change event is about (required by
/// both classes): the identity, else at least the account it happened in.
fn subject<'a>(user: Option<User<'a>>, account: &Option<Str<'a>>) -> Result<User<'a>, Unmappable> {
    match (user, account) {
        (Some(user), _) => Ok(user),
        (None, Some(account)) => Ok(account_only(Some(account.clone()))),
        (None, None) => Err(Unmappable {
            field: "userIdentity",
            reason: "no user: the record has no userIdentity and no account".into(),
        }),
    }
}

fn actor<'a>(
    user: Option<User<'a>>,
    session: Option<Session<'a>>,
    invoked_by: Option<Str<'a>>,
    idp: Option<Idp<'a>>,
) -> Option<Actor<'a>> {
    (user.is_some() || session.is_some() || invoked_by.is_some()).then(|| Actor {
        user,
        session,
        invoked_by,
        idp,
        ..Actor::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::KeyInfo;
    use serde_json::{json, Value as Json};

    /// (line, record, field, reason, raw) of a rejected record.
    type Reject = (Option<u64>, Option<u64>, Option<String>, String, String);

    /// Keeps what a source emits, as the pipeline would see it.
    #[derive(Default)]
    struct Collect {
        events: Vec<Json>,
        rejects: Vec<Reject>,
    }

    impl Emit for Collect {
        fn event(&mut self, event: &Event<'_>) -> Result<()> {
            let text = serde_json::to_string(event).expect("serialisable");
            self.events
                .push(serde_json::from_str(&text).expect("valid JSON"));
            Ok(())
        }
        fn reject(&mut self, r: Rejected<'_>) -> Result<()> {
            self.rejects.push((
                r.line,
                r.record,
                r.field.map(str::to_string),
                r.reason,
                String::from_utf8_lossy(r.raw).into_owned(),
            ));
            Ok(())
        }
        fn skip(&mut self, _reason: &'static str) {
            panic!("CloudTrail has nothing to skip");
        }
    }

    fn ctx() -> Context {
        Context {
            object: "test-bucket/AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/14/f.json.gz"
                .into(),
            key: KeyInfo {
                source: Some(crate::sources::SourceKind::CloudTrail),
                account: Some("111122223333".into()),
                region: Some("us-east-1".into()),
            },
            max_record_bytes: 64 * 1024,
        }
    }

    /// Runs `input` with a large buffer (records parsed in place) and a tiny one
    /// (every record split and copied first): both must give the same output.
    fn run_with(input: &[u8], ctx: &Context) -> (Collect, Result<()>) {
        let runs = [64 * 1024, 7].map(|capacity| {
            let mut out = Collect::default();
            let mut reader = std::io::BufReader::with_capacity(capacity, input);
            let result = normalize(&mut reader, ctx, &mut out);
            (out, result)
        });
        let [(a, ra), (b, rb)] = &runs;
        assert_eq!(a.events, b.events, "in place vs split");
        assert_eq!(a.rejects, b.rejects, "in place vs split");
        assert_eq!(format!("{ra:?}"), format!("{rb:?}"), "in place vs split");
        let [(out, result), _] = runs;
        for e in &out.events {
            check_invariants(e);
        }
        (out, result)
    }

    fn run(input: &str) -> (Collect, Result<()>) {
        run_with(input.as_bytes(), &ctx())
    }

    fn doc(records: &[&str]) -> String {
        format!("{{\"Records\":[{}]}}", records.join(","))
    }

    /// What every event must satisfy, whatever its input.
    fn check_invariants(e: &Json) {
        let class = e["class_uid"].as_u64().expect("class_uid");
        let activity = e["activity_id"].as_u64().expect("activity_id");
        assert_eq!(e["type_uid"].as_u64(), Some(class * 100 + activity), "{e}");
        assert!(e["time"].is_i64(), "{e}");
        assert_eq!(e["metadata"]["version"], "1.1.0");
        assert_eq!(e["metadata"]["profiles"], json!(["cloud"]));
        assert_eq!(e["cloud"]["provider"], "AWS");
        if class == 6003 {
            for required in ["actor", "api", "src_endpoint"] {
                assert!(e.get(required).is_some(), "6003 without {required}: {e}");
            }
        }
        if class == 3001 || class == 3002 {
            assert!(e.get("user").is_some(), "{e}");
        }
        fn no_nulls(path: &str, v: &Json) {
            match v {
                Json::Null => panic!("null at {path}"),
                Json::Array(a) => a.iter().for_each(|v| no_nulls(path, v)),
                Json::Object(o) => o
                    .iter()
                    .for_each(|(k, v)| no_nulls(&format!("{path}/{k}"), v)),
                _ => {}
            }
        }
        no_nulls("", e);
    }

    const FAILED_LOGIN: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDACKCEVSQ6C2EXAMPLE","accountId":"111122223333","accessKeyId":"","userName":"alice"},"eventTime":"2024-05-14T08:01:02Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.7","userAgent":"Mozilla/5.0 (X11; Linux x86_64)","errorMessage":"Failed authentication","requestParameters":null,"responseElements":{"ConsoleLogin":"Failure"},"additionalEventData":{"LoginTo":"https://console.aws.amazon.com/console/home","MobileVersion":"No","MFAUsed":"No"},"eventID":"1b7a1a8e-0000-4000-8000-000000000001","readOnly":false,"eventType":"AwsConsoleSignIn","managementEvent":true,"recipientAccountId":"111122223333","eventCategory":"Management"}"#;

    const ROOT_LOGIN: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"Root","principalId":"111122223333","arn":"arn:aws:iam::111122223333:root","accountId":"111122223333","accessKeyId":""},"eventTime":"2024-05-14T08:05:00Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.9","userAgent":"Mozilla/5.0","requestParameters":null,"responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"LoginTo":"https://console.aws.amazon.com/console/home","MobileVersion":"No","MFAUsed":"Yes"},"eventID":"1b7a1a8e-0000-4000-8000-000000000002","readOnly":false,"eventType":"AwsConsoleSignIn","managementEvent":true,"recipientAccountId":"111122223333","eventCategory":"Management"}"#;

    const LOGIN_NO_MFA: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDACKCEVSQ6C2EXAMPLE","arn":"arn:aws:iam::111122223333:user/alice","accountId":"111122223333","userName":"alice"},"eventTime":"2024-05-14T08:02:00Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"2001:db8::7","userAgent":"Mozilla/5.0","requestParameters":null,"responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"MFAUsed":"No"},"eventID":"1b7a1a8e-0000-4000-8000-000000000003","eventType":"AwsConsoleSignIn","recipientAccountId":"111122223333"}"#;

    const IDC_LOGIN: &str = r#"{"eventVersion":"1.09","userIdentity":{"type":"IdentityCenterUser","userId":"d-12345abcde","identityStoreArn":"arn:aws:identitystore::111122223333:identitystore/d-12345abcde","arn":"arn:aws:iam::111122223333:user/idc-user","accountId":"111122223333","accessKeyId":""},"eventTime":"2024-05-14T08:03:00Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.1","userAgent":"Mozilla/5.0","requestParameters":null,"responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"MFAUsed":true},"requestID":"a1b2c3d4-5678-90ab-cdef-EXAMPLE11111","eventID":"a1b2c3d4-5678-90ab-cdef-EXAMPLE22222","eventType":"AwsConsoleSignIn","recipientAccountId":"111122223333","eventCategory":"Management","tlsDetails":{"tlsVersion":"TLSv1.3"}}"#;

    const ASSUME_ROLE: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLEROLE:bob","arn":"arn:aws:sts::111122223333:assumed-role/Deploy/bob","accountId":"111122223333","accessKeyId":"ASIAEXAMPLEKEY","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROAEXAMPLEROLE","arn":"arn:aws:iam::111122223333:role/Deploy","accountId":"111122223333","userName":"Deploy"},"webIdFederationData":{},"attributes":{"creationDate":"2024-05-14T07:00:00Z","mfaAuthenticated":"true"}}},"eventTime":"2024-05-14T08:10:00Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRole","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.20","userAgent":"aws-cli/2.15.0","requestParameters":{"roleArn":"arn:aws:iam::444455556666:role/Audit","roleSessionName":"bob"},"responseElements":{"credentials":{"accessKeyId":"ASIANEWKEY","expiration":"May 14, 2024, 9:10:00 AM"}},"requestID":"req-assume-1","eventID":"evt-assume-1","readOnly":true,"resources":[{"ARN":"arn:aws:iam::444455556666:role/Audit","accountId":"444455556666","type":"AWS::IAM::Role"}],"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333","sharedEventID":"shared-1","eventCategory":"Management"}"#;

    const ACCESS_DENIED: &str = r#"{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::111122223333:user/carol","accountId":"111122223333","accessKeyId":"AKIAEXAMPLE","userName":"carol"},"eventTime":"2024-05-14T08:20:00.250Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.30","userAgent":"aws-cli/2.15.0","errorCode":"AccessDenied","errorMessage":"User: arn:aws:iam::111122223333:user/carol is not authorized to perform: s3:ListAllMyBuckets","requestParameters":{"Host":"s3.amazonaws.com"},"responseElements":null,"requestID":"req-denied","eventID":"evt-denied","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333","eventCategory":"Management"}"#;

    const NULL_IDENTITY_FIELDS: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":null,"arn":null,"accountId":"111122223333","accessKeyId":"","userName":null,"sessionContext":null},"eventTime":"2024-05-14T08:30:00Z","eventSource":"ec2.amazonaws.com","eventName":"DescribeRegions","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.31","requestID":"r","eventID":"e","eventType":"AwsApiCall","recipientAccountId":"111122223333"}"#;

    const NO_IDENTITY: &str = r#"{"eventVersion":"1.08","eventTime":"2024-05-14T08:31:00Z","eventSource":"kms.amazonaws.com","eventName":"RotateKey","awsRegion":"us-west-2","sourceIPAddress":"AWS Internal","userAgent":"AWS Internal","requestParameters":null,"responseElements":null,"eventID":"evt-rotate","readOnly":false,"resources":[{"accountId":"111122223333","type":"AWS::KMS::Key","ARN":"arn:aws:kms:us-west-2:111122223333:key/1234abcd"}],"eventType":"AwsServiceEvent","recipientAccountId":"111122223333","serviceEventDetails":{"rotationType":"AUTOMATIC"},"eventCategory":"Management"}"#;

    const SERVICE_IDENTITY: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"AWSService","invokedBy":"ssm.amazonaws.com"},"eventTime":"2024-05-14T08:32:00Z","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","awsRegion":"us-east-1","sourceIPAddress":"ssm.amazonaws.com","userAgent":"ssm.amazonaws.com","requestParameters":{"instancesSet":{}},"responseElements":null,"requestID":"r2","eventID":"e2","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333"}"#;

    const INSIGHT: &str = r#"{"eventVersion":"1.08","eventTime":"2024-05-14T09:00:00Z","awsRegion":"us-east-1","eventID":"evt-insight","eventType":"AwsCloudTrailInsight","recipientAccountId":"111122223333","sharedEventID":"shared-insight","insightDetails":{"state":"Start","eventSource":"ssm.amazonaws.com","eventName":"UpdateInstanceInformation","insightType":"ApiCallRateInsight","insightContext":{"statistics":{"baseline":{"average":84.4},"insight":{"average":669}}}},"eventCategory":"Insight"}"#;

    const CREATE_USER: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAMARY","arn":"arn:aws:iam::111122223333:user/Mary","accountId":"111122223333","accessKeyId":"AKIAMARY","userName":"Mary"},"eventTime":"2024-05-14T09:10:00Z","eventSource":"iam.amazonaws.com","eventName":"CreateUser","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.50","userAgent":"aws-cli/2.13.5","requestParameters":{"userName":"Richard"},"responseElements":{"user":{"path":"/","arn":"arn:aws:iam::111122223333:user/Richard","userId":"AIDARICHARD","userName":"Richard"}},"requestID":"req-cu","eventID":"evt-cu","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333","eventCategory":"Management"}"#;

    const ATTACH_ROLE_POLICY: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAMARY","arn":"arn:aws:iam::111122223333:user/Mary","accountId":"111122223333","userName":"Mary"},"eventTime":"2024-05-14T09:11:00Z","eventSource":"iam.amazonaws.com","eventName":"AttachRolePolicy","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.50","requestParameters":{"roleName":"Deploy","policyArn":"arn:aws:iam::aws:policy/AdministratorAccess"},"responseElements":null,"requestID":"req-arp","eventID":"evt-arp","eventType":"AwsApiCall","recipientAccountId":"111122223333"}"#;

    const DISABLE_KEY: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAMARY","accountId":"111122223333","userName":"Mary"},"eventTime":"2024-05-14T09:12:00Z","eventSource":"iam.amazonaws.com","eventName":"UpdateAccessKey","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.50","requestParameters":{"accessKeyId":"AKIAOLD","status":"Inactive"},"responseElements":null,"requestID":"req-uak","eventID":"evt-uak","eventType":"AwsApiCall","recipientAccountId":"111122223333"}"#;

    const CHANGE_OWN_PASSWORD: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAMARY","accountId":"111122223333","userName":"Mary"},"eventTime":"2024-05-14T09:13:00Z","eventSource":"iam.amazonaws.com","eventName":"ChangePassword","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.50","requestParameters":null,"responseElements":null,"requestID":"req-cp","eventID":"evt-cp","eventType":"AwsApiCall","recipientAccountId":"111122223333"}"#;

    const S3_GET: &str = r#"{"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","principalId":"AROAAPP:i-0abc","arn":"arn:aws:sts::111122223333:assumed-role/App/i-0abc","accountId":"111122223333","accessKeyId":"ASIAAPP","sessionContext":{"attributes":{"creationDate":"2024-05-14T06:00:00Z","mfaAuthenticated":"false"},"ec2RoleDelivery":"2.0"}},"eventTime":"2024-05-14T09:20:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","sourceIPAddress":"10.0.1.15","userAgent":"[aws-sdk-java/1.12.0]","requestParameters":{"bucketName":"acme-data","Host":"acme-data.s3.us-east-1.amazonaws.com","key":"reports/2024/05/q.csv"},"responseElements":null,"additionalEventData":{"bytesTransferredOut":1024},"requestID":"S3REQ1","eventID":"evt-s3","readOnly":true,"resources":[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::acme-data/reports/2024/05/q.csv"},{"accountId":"111122223333","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::acme-data"}],"eventType":"AwsApiCall","managementEvent":false,"recipientAccountId":"111122223333","vpcEndpointId":"vpce-0123","eventCategory":"Data","someFutureField":{"x":[1,2]},"someFutureField":"second"}"#;

    const S3_LIST_PREFIX: &str = r#"{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","principalId":"AIDAX","accountId":"111122223333","userName":"x"},"eventTime":"2024-05-14T09:21:00Z","eventSource":"s3.amazonaws.com","eventName":"BatchGetObjectAttributes","awsRegion":"us-east-1","sourceIPAddress":"10.0.1.16","requestID":"r","eventID":"e","resources":[{"type":"AWS::S3::Object","ARNPrefix":"arn:aws:s3:::acme-data/reports/"}],"eventType":"AwsApiCall","managementEvent":false,"recipientAccountId":"111122223333"}"#;

    #[test]
    fn records_map_to_their_class_and_fields() {
        // (case, record, [(JSON pointer, expected value)]); Null means "absent".
        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, Json)]);
        let cases: &[Case] = &[
            ("failed console login", FAILED_LOGIN, &[
                ("/class_uid", json!(3002)), ("/activity_id", json!(1)), ("/activity_name", json!("Logon")),
                ("/status_id", json!(2)), ("/status", json!("Failure")), ("/status_detail", json!("Failed authentication")),
                ("/severity_id", json!(3)), ("/is_mfa", json!(false)),
                ("/user/name", json!("alice")), ("/user/type_id", json!(1)), ("/user/type", json!("User")),
                ("/user/uid", json!("AIDACKCEVSQ6C2EXAMPLE")), ("/user/credential_uid", Json::Null),
                ("/service/name", json!("signin.amazonaws.com")), ("/src_endpoint/ip", json!("198.51.100.7")),
                ("/http_request/user_agent", json!("Mozilla/5.0 (X11; Linux x86_64)")),
                ("/time", json!(1_715_673_662_000i64)), ("/metadata/original_time", json!("2024-05-14T08:01:02Z")),
                ("/metadata/event_code", json!("AwsConsoleSignIn")), ("/metadata/uid", json!("1b7a1a8e-0000-4000-8000-000000000001")),
                ("/metadata/product/version", json!("1.08")), ("/metadata/log_name", json!("Management")),
                ("/unmapped/responseElements", json!({"ConsoleLogin": "Failure"})),
                ("/unmapped/additionalEventData/MFAUsed", json!("No")), ("/unmapped/readOnly", json!(false)),
                ("/unmapped/requestParameters", Json::Null), ("/actor", Json::Null),
            ]),
            ("root console login", ROOT_LOGIN, &[
                ("/class_uid", json!(3002)), ("/status_id", json!(1)), ("/severity_id", json!(4)), ("/severity", json!("High")),
                ("/user/type_id", json!(2)), ("/user/type", json!("Admin")), ("/user/uid", json!("111122223333")),
                ("/user/uid_alt", json!("arn:aws:iam::111122223333:root")), ("/is_mfa", json!(true)),
            ]),
            ("console login without MFA", LOGIN_NO_MFA, &[
                ("/class_uid", json!(3002)), ("/status_id", json!(1)), ("/severity_id", json!(1)), ("/is_mfa", json!(false)),
                ("/src_endpoint/ip", json!("2001:db8::7")), ("/metadata/log_name", json!("Management")),
            ]),
            ("Identity Center user login with MFA", IDC_LOGIN, &[
                ("/class_uid", json!(3002)), ("/status_id", json!(1)), ("/is_mfa", json!(true)),
                ("/user/uid", json!("d-12345abcde")), ("/user/type_id", json!(99)), ("/user/type", json!("IdentityCenterUser")),
                ("/user/account/uid", json!("111122223333")),
                ("/unmapped/userIdentity/identityStoreArn", json!("arn:aws:identitystore::111122223333:identitystore/d-12345abcde")),
                ("/unmapped/tlsDetails/tlsVersion", json!("TLSv1.3")),
                ("/api/request/uid", json!("a1b2c3d4-5678-90ab-cdef-EXAMPLE11111")),
                ("/metadata/correlation_uid", json!("a1b2c3d4-5678-90ab-cdef-EXAMPLE11111")),
            ]),
            ("AssumeRole by an assumed role", ASSUME_ROLE, &[
                ("/class_uid", json!(6003)), ("/activity_id", json!(99)), ("/activity_name", json!("AssumeRole")),
                ("/status_id", json!(1)), ("/severity_id", json!(1)),
                ("/actor/user/type_id", json!(99)), ("/actor/user/type", json!("AssumedRole")),
                ("/actor/user/uid", json!("AROAEXAMPLEROLE:bob")), ("/actor/user/uid_alt", json!("arn:aws:sts::111122223333:assumed-role/Deploy/bob")),
                ("/actor/user/name", json!("Deploy")), ("/actor/user/credential_uid", json!("ASIAEXAMPLEKEY")),
                ("/actor/session/issuer", json!("arn:aws:iam::111122223333:role/Deploy")),
                ("/actor/session/created_time", json!(1_715_670_000_000i64)), ("/actor/session/is_mfa", json!(true)),
                ("/api/operation", json!("AssumeRole")), ("/api/service/name", json!("sts.amazonaws.com")),
                ("/api/request/uid", json!("req-assume-1")), ("/metadata/correlation_uid", json!("shared-1")),
                ("/resources/0/uid", json!("arn:aws:iam::444455556666:role/Audit")), ("/resources/0/type", json!("AWS::IAM::Role")),
                ("/resources/0/owner/account/uid", json!("444455556666")),
                ("/cloud/account/uid", json!("111122223333")), ("/cloud/region", json!("us-east-1")),
                ("/unmapped/requestParameters/roleSessionName", json!("bob")),
                ("/unmapped/userIdentity/sessionContext/sessionIssuer/principalId", json!("AROAEXAMPLEROLE")),
                ("/unmapped/userIdentity/sessionContext/sessionIssuer/userName", Json::Null),
                ("/unmapped/userIdentity/sessionContext/webIdFederationData", json!({})),
                ("/unmapped/userIdentity/sessionContext/attributes", Json::Null),
                ("/unmapped/resources", Json::Null),
            ]),
            ("AccessDenied", ACCESS_DENIED, &[
                ("/class_uid", json!(6003)), ("/activity_id", json!(2)), ("/activity_name", json!("Read")),
                ("/status_id", json!(2)), ("/status_code", json!("AccessDenied")), ("/severity_id", json!(2)),
                ("/api/response/error", json!("AccessDenied")),
                ("/api/response/error_message", json!("User: arn:aws:iam::111122223333:user/carol is not authorized to perform: s3:ListAllMyBuckets")),
                ("/time", json!(1_715_674_800_250i64)), ("/unmapped/responseElements", Json::Null),
            ]),
            ("null userIdentity fields", NULL_IDENTITY_FIELDS, &[
                ("/class_uid", json!(6003)), ("/activity_id", json!(2)),
                ("/actor/user/account/uid", json!("111122223333")), ("/actor/user/type_id", json!(1)),
                ("/actor/user/uid", Json::Null), ("/actor/user/credential_uid", Json::Null), ("/actor/session", Json::Null),
                ("/http_request", Json::Null), ("/unmapped/userIdentity", Json::Null),
            ]),
            ("no userIdentity at all", NO_IDENTITY, &[
                ("/class_uid", json!(6003)), ("/activity_id", json!(3)), ("/activity_name", json!("Update")),
                ("/actor/user/account/uid", json!("111122223333")), ("/src_endpoint/svc_name", json!("AWS Internal")),
                ("/cloud/region", json!("us-west-2")), ("/metadata/event_code", json!("AwsServiceEvent")),
                ("/unmapped/serviceEventDetails/rotationType", json!("AUTOMATIC")),
                ("/resources/0/uid", json!("arn:aws:kms:us-west-2:111122223333:key/1234abcd")),
            ]),
            ("a service calling for a service", SERVICE_IDENTITY, &[
                ("/class_uid", json!(6003)), ("/activity_id", json!(2)),
                ("/actor/invoked_by", json!("ssm.amazonaws.com")), ("/actor/user", Json::Null),
                ("/src_endpoint/svc_name", json!("ssm.amazonaws.com")), ("/src_endpoint/ip", Json::Null),
                ("/unmapped/userIdentity/type", json!("AWSService")),
            ]),
            ("Insights event", INSIGHT, &[
                ("/class_uid", json!(6003)), ("/activity_id", json!(99)), ("/activity_name", json!("ApiCallRateInsight")),
                ("/severity_id", json!(2)), ("/status_id", Json::Null),
                ("/api/operation", json!("UpdateInstanceInformation")), ("/api/service/name", json!("ssm.amazonaws.com")),
                ("/actor/invoked_by", json!("cloudtrail.amazonaws.com")), ("/src_endpoint/svc_name", json!("cloudtrail.amazonaws.com")),
                ("/metadata/log_name", json!("Insight")), ("/metadata/correlation_uid", json!("shared-insight")),
                ("/unmapped/insightDetails/insightContext/statistics/insight/average", json!(669)),
            ]),
            ("CreateUser", CREATE_USER, &[
                ("/class_uid", json!(3001)), ("/activity_id", json!(1)), ("/activity_name", json!("Create")),
                ("/status_id", json!(1)), ("/user/name", json!("Richard")), ("/user/type_id", json!(1)),
                ("/user/account/uid", json!("111122223333")), ("/actor/user/name", json!("Mary")),
                ("/api/operation", json!("CreateUser")), ("/unmapped/responseElements/user/userId", json!("AIDARICHARD")),
            ]),
            ("AttachRolePolicy", ATTACH_ROLE_POLICY, &[
                ("/class_uid", json!(3001)), ("/activity_id", json!(7)), ("/activity_name", json!("Attach Policy")),
                ("/user/name", json!("Deploy")), ("/user/type", json!("Role")), ("/user/type_id", json!(99)),
                ("/policy/uid", json!("arn:aws:iam::aws:policy/AdministratorAccess")), ("/policy/name", json!("AdministratorAccess")),
            ]),
            ("UpdateAccessKey to Inactive", DISABLE_KEY, &[
                ("/class_uid", json!(3001)), ("/activity_id", json!(5)), ("/activity_name", json!("Disable")),
                ("/user/name", json!("Mary")),
            ]),
            ("ChangePassword of one's own", CHANGE_OWN_PASSWORD, &[
                ("/class_uid", json!(3001)), ("/activity_id", json!(3)), ("/user/name", json!("Mary")),
                ("/actor/user/name", json!("Mary")),
            ]),
            ("S3 data event", S3_GET, &[
                ("/class_uid", json!(6003)), ("/activity_id", json!(2)), ("/metadata/log_name", json!("Data")),
                ("/src_endpoint/ip", json!("10.0.1.15")),
                ("/actor/session/is_mfa", json!(false)), ("/actor/session/issuer", Json::Null),
                ("/resources/0/uid", json!("arn:aws:s3:::acme-data/reports/2024/05/q.csv")), ("/resources/0/owner", Json::Null),
                ("/resources/1/owner/account/uid", json!("111122223333")),
                ("/unmapped/vpcEndpointId", json!("vpce-0123")), ("/unmapped/managementEvent", json!(false)),
                ("/unmapped/someFutureField", json!("second")),
                ("/unmapped/userIdentity/sessionContext/ec2RoleDelivery", json!("2.0")),
                ("/unmapped/resources", Json::Null),
            ]),
            ("Batch call and an ARN prefix", S3_LIST_PREFIX, &[
                ("/class_uid", json!(6003)), ("/activity_id", json!(2)),
                ("/resources/0/uid", json!("arn:aws:s3:::acme-data/reports/")),
                ("/unmapped/resources/0/ARNPrefix", json!("arn:aws:s3:::acme-data/reports/")),
            ]),
        ];
        let mut all = Vec::new();
        for (name, record, expected) in cases {
            let (out, result) = run(&doc(&[record]));
            result.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(out.rejects.is_empty(), "{name}: {:?}", out.rejects);
            assert_eq!(out.events.len(), 1, "{name}");
            let event = &out.events[0];
            for (pointer, want) in *expected {
                let got = event.pointer(pointer).unwrap_or(&Json::Null);
                assert_eq!(got, want, "{name}: {pointer} in {event}");
            }
            all.extend(out.events);
        }
        dump("cloudtrail-unit-cases", &all);
    }

    #[test]
    fn api_verbs_choose_the_activity() {
        let cases = [
            ("CreateBucket", Some(1)),
            ("PutObject", Some(1)),
            ("RunInstances", Some(1)),
            ("StartInstances", Some(1)),
            ("GetObject", Some(2)),
            ("DescribeInstances", Some(2)),
            ("ListObjectsV2", Some(2)),
            ("HeadObject", Some(2)),
            ("LookupEvents", Some(2)),
            ("BatchGetItem", Some(2)),
            ("ListFunctions20150331", Some(2)),
            ("UpdateTrail", Some(3)),
            ("ModifyInstanceAttribute", Some(3)),
            ("SetDefaultPolicyVersion", Some(3)),
            ("AttachVolume", Some(3)),
            ("DeleteBucket", Some(4)),
            ("RemoveTags", Some(4)),
            ("TerminateInstances", Some(4)),
            ("BatchDeleteImage", Some(4)),
            ("AssumeRole", None),
            ("Decrypt", None),
            ("Batch", None),
            ("Getaway", None),
            ("", None),
            ("eventName1", None),
        ];
        for (name, want) in cases {
            assert_eq!(api_activity(name).map(|a| a.0), want, "{name}");
        }
    }

    #[test]
    fn unmappable_records_are_rejected_with_their_field() {
        let good = CREATE_USER;
        let cases: &[(&str, String, &str, &str)] = &[
            (
                "no eventTime",
                ACCESS_DENIED.replace(r#""eventTime":"2024-05-14T08:20:00.250Z","#, ""),
                "eventTime",
                "eventTime is missing",
            ),
            (
                "bad eventTime",
                ACCESS_DENIED.replace("2024-05-14T08:20:00.250Z", "yesterday"),
                "eventTime",
                "not an RFC 3339 time",
            ),
            (
                "eventTime a number",
                ACCESS_DENIED.replace(r#""2024-05-14T08:20:00.250Z""#, "1715674800"),
                "eventTime",
                "invalid type: integer",
            ),
            (
                "userIdentity a string",
                ACCESS_DENIED.replace(r#""userIdentity":{"#, r#""userIdentity":"me","x":{"#),
                "userIdentity",
                "invalid type: string",
            ),
            (
                "creationDate a number",
                ASSUME_ROLE.replace(r#""2024-05-14T07:00:00Z""#, "5"),
                "userIdentity.sessionContext.attributes.creationDate",
                "invalid type: integer",
            ),
            (
                "no eventName",
                ACCESS_DENIED.replace(r#""eventName":"ListBuckets","#, ""),
                "eventName",
                "eventName is missing",
            ),
            (
                "no actor, no account",
                NO_IDENTITY.replace(r#""recipientAccountId":"111122223333","#, ""),
                "userIdentity",
                "no actor",
            ),
        ];
        for (name, record, field, reason) in cases {
            let mut ctx = ctx();
            ctx.key.account = None;
            let input = doc(&[good, record, good]);
            let (out, result) = run_with(input.as_bytes(), &ctx);
            result.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(out.events.len(), 2, "{name}: neighbours kept");
            assert_eq!(out.rejects.len(), 1, "{name}");
            let (line, index, got_field, got_reason, raw) = &out.rejects[0];
            assert_eq!((*line, *index), (Some(1), Some(1)), "{name}");
            assert_eq!(got_field.as_deref(), Some(*field), "{name}: {got_reason}");
            assert!(got_reason.contains(reason), "{name}: {got_reason}");
            assert_eq!(raw, record, "{name}");
        }
    }

    #[test]
    fn pretty_and_compact_files_give_the_same_events() {
        let records = [FAILED_LOGIN, ASSUME_ROLE, INSIGHT, S3_GET, CREATE_USER];
        let compact = doc(&records);
        let value: Json = serde_json::from_str(&compact).unwrap();
        // Another key before Records, as some tools write.
        let pretty = format!(
            "{{\n  \"Meta\": {{\"Records\": []}},\n  \"Records\": {}\n}}\n",
            serde_json::to_string_pretty(&value["Records"]).unwrap()
        );
        let (a, ra) = run(&compact);
        let (b, rb) = run(&pretty);
        ra.unwrap();
        rb.unwrap();
        assert_eq!(a.events.len(), 5);
        assert!(b.rejects.is_empty());
        // serde_json re-serialises the same (sorted) keys, so the events are equal
        // but for the order inside unmapped, which is the input's.
        assert_eq!(a.events, b.events);
    }

    #[test]
    fn broken_records_are_quarantined_and_their_neighbours_kept() {
        // (case, input, events, [(line, record, reason)] of the rejects)
        type Case<'a> = (&'a str, String, usize, &'a [(u64, u64, &'a str)]);
        let cases: &[Case] = &[
            (
                "syntax error inside a record",
                format!("{{\"Records\":[\n{CREATE_USER},\n{{\"eventVersion\":\"1.08\",\"eventTime\" \"x\"}},\n{ACCESS_DENIED}\n]}}"),
                2,
                &[(3, 1, "not valid JSON: expected `:`")],
            ),
            (
                "a record cut short swallows the next until resync",
                format!("{{\"Records\":[\n{CREATE_USER},\n{{\"eventVersion\":\"1.08\",\"eventTime\":\"2024-05-14T00:00:00Z\",\n{ACCESS_DENIED},\n{INSIGHT}\n]}}"),
                3,
                &[(3, 1, "the records after it were read again")],
            ),
            (
                "an element that is no object",
                format!("{{\"Records\":[\n{CREATE_USER},\n42,\n{ACCESS_DENIED}\n]}}"),
                2,
                &[(3, 1, "not a CloudTrail record: invalid type: integer `42`")],
            ),
            (
                "a line of garbage",
                format!("{{\"Records\":[\n{CREATE_USER},\nthis is not json,\n{ACCESS_DENIED}\n]}}"),
                2,
                &[(3, 1, "not valid JSON: expected ident at line 1 column 2 of the record")],
            ),
            (
                "invalid UTF-8",
                format!("{{\"Records\":[\n{CREATE_USER},\n{}\n]}}", CREATE_USER.replace("Richard", "Ric\u{fffd}hard")).replace('\u{fffd}', "\u{1}"),
                1,
                &[(3, 1, "not valid JSON: control character")],
            ),
        ];
        for (name, input, events, rejects) in cases {
            let (out, result) = run(input);
            result.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(out.events.len(), *events, "{name}: {:?}", out.rejects);
            let got: Vec<_> = out
                .rejects
                .iter()
                .map(|r| (r.0.unwrap(), r.1.unwrap(), r.3.clone()))
                .collect();
            assert_eq!(got.len(), rejects.len(), "{name}: {got:?}");
            for ((line, index, reason), (want_line, want_index, want_reason)) in
                got.iter().zip(rejects.iter())
            {
                assert_eq!(
                    (*line, *index),
                    (*want_line, *want_index),
                    "{name}: {reason}"
                );
                assert!(reason.contains(want_reason), "{name}: {reason}");
            }
        }
        // Raw bytes that are not UTF-8 at all.
        let mut input = doc(&[CREATE_USER, CREATE_USER]).into_bytes();
        let at = input.windows(7).position(|w| w == b"Richard").unwrap();
        input[at] = 0xff;
        let (out, result) = run_with(&input, &ctx());
        result.unwrap();
        assert_eq!((out.events.len(), out.rejects.len()), (1, 1));
        assert!(
            out.rejects[0].3.contains("invalid unicode"),
            "{}",
            out.rejects[0].3
        );
    }

    #[test]
    fn documents_that_are_not_cloudtrail_files_are_format_errors() {
        let cases: &[(&str, String, usize, &str)] = &[
            (
                "no Records",
                r#"{"awsAccountId":"111122223333","logFiles":[]}"#.into(),
                0,
                "no \"Records\" array",
            ),
            ("empty", String::new(), 0, "empty document"),
            (
                "truncated",
                doc(&[CREATE_USER, CREATE_USER])[..CREATE_USER.len() * 2].to_string(),
                1,
                "truncated",
            ),
            (
                "JSON lines instead",
                format!("{CREATE_USER}\n{CREATE_USER}\n"),
                0,
                "no \"Records\" array",
            ),
        ];
        for (name, input, events, reason) in cases {
            let (out, result) = run(input);
            assert_eq!(out.events.len(), *events, "{name}");
            match result {
                Err(Error::Format { at, reason: got }) => {
                    assert!(got.contains(reason), "{name}: {got}");
                    assert_eq!(at.object, ctx().object);
                    assert!(at.line.is_some(), "{name}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        // The cut-off record itself is quarantined, not lost.
        let (out, _) = run(&doc(&[CREATE_USER, CREATE_USER])[..CREATE_USER.len() * 2]);
        assert_eq!(out.rejects.len(), 1);
        assert!(out.rejects[0].3.contains("file ends inside this record"));
    }

    #[test]
    fn corrupted_documents_never_panic_and_both_paths_agree() {
        let records = [FAILED_LOGIN, ASSUME_ROLE, INSIGHT, S3_GET, IDC_LOGIN];
        let compact = doc(&records);
        let value: Json = serde_json::from_str(&compact).unwrap();
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        const BYTES: &[u8] = b"{}[]\",:\\ \n0a\xff\xc3";
        let mut ctx = ctx();
        ctx.max_record_bytes = 3000;
        for round in 0..400 {
            let mut input = if round % 2 == 0 {
                compact.clone()
            } else {
                pretty.clone()
            }
            .into_bytes();
            let mutations = 1 + next() % 4;
            for _ in 0..mutations {
                let at = (next() % input.len() as u64) as usize;
                match next() % 4 {
                    0 => input[at] = BYTES[(next() % BYTES.len() as u64) as usize],
                    1 => {
                        input.remove(at);
                    }
                    2 => input.insert(at, BYTES[(next() % BYTES.len() as u64) as usize]),
                    _ => input.truncate(at.max(1)),
                }
            }
            // run_with checks that both paths give the same events and rejects.
            let (out, _) = run_with(&input, &ctx);
            assert!(
                out.events.len() + out.rejects.len() <= records.len() + 2 * mutations as usize,
                "round {round}: {} events, {:?}",
                out.events.len(),
                out.rejects
                    .iter()
                    .map(|r| (r.1, r.3.clone(), r.4.chars().take(50).collect::<String>()))
                    .collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn oversized_records_are_rejected_not_buffered() {
        let mut ctx = ctx();
        ctx.max_record_bytes = 2048;
        let big = S3_GET.replace("reports/2024/05/q.csv", &"x".repeat(4000));
        let input = doc(&[CREATE_USER, &big, ACCESS_DENIED]);
        let (out, result) = run_with(input.as_bytes(), &ctx);
        result.unwrap();
        assert_eq!(out.events.len(), 2);
        assert_eq!(out.rejects.len(), 1);
        let (_, index, _, reason, raw) = &out.rejects[0];
        assert_eq!(*index, Some(1));
        assert!(
            reason.contains(&format!(
                "record is {} bytes, over the limit of 2048",
                big.len()
            )),
            "{reason}"
        );
        assert_eq!(raw.len(), 2048);
    }

    #[test]
    fn a_stream_breaking_off_keeps_what_came_before() {
        struct Breaking(Vec<u8>, usize);
        impl std::io::Read for Breaking {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.1 >= self.0.len() {
                    return Err(std::io::Error::other("connection reset"));
                }
                let n = buf.len().min(self.0.len() - self.1);
                buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
                self.1 += n;
                Ok(n)
            }
        }
        let whole = doc(&[CREATE_USER, ACCESS_DENIED, INSIGHT]).into_bytes();
        let cut = whole.len() - INSIGHT.len() / 2;
        let mut reader = std::io::BufReader::with_capacity(512, Breaking(whole[..cut].to_vec(), 0));
        let mut out = Collect::default();
        let err = normalize(&mut reader, &ctx(), &mut out).unwrap_err();
        assert!(matches!(err, Error::Read { .. }), "{err}");
        assert_eq!(out.events.len(), 2);
        assert_eq!(out.rejects.len(), 1);
        let (_, index, _, reason, raw) = &out.rejects[0];
        assert_eq!(*index, Some(2));
        assert!(reason.contains("broke off inside this record"), "{reason}");
        assert!(INSIGHT.starts_with(raw.as_str()), "{raw}");
    }

    #[test]
    fn read_errors_are_read_errors() {
        struct Failing;
        impl std::io::Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("connection reset"))
            }
        }
        let mut reader = std::io::BufReader::new(Failing);
        let err = normalize(&mut reader, &ctx(), &mut Collect::default()).unwrap_err();
        assert!(matches!(err, Error::Read { .. }), "{err}");
    }

    fn files_under(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                files_under(&path, out);
            } else {
                out.push(path);
            }
        }
    }

    /// Normalises a file as the pipeline would (decoded, key-derived context) and,
    /// when MUSTER_OCSF_DUMP names a directory, writes its events there for
    /// `ocsf-validate`.
    fn normalize_file(path: &std::path::Path, key: &str) -> (Collect, Result<()>) {
        let file = std::fs::File::open(path).unwrap();
        let mut decoded = crate::framing::decode(file, None, None, key).unwrap();
        let ctx = Context {
            object: key.to_string(),
            key: crate::sources::detect_from_key(key),
            max_record_bytes: 8 << 20,
        };
        let mut out = Collect::default();
        let result = normalize(decoded.reader.as_mut(), &ctx, &mut out);
        out.events.iter().for_each(check_invariants);
        dump(&key.replace('/', "_"), &out.events);
        (out, result)
    }

    /// Writes events to MUSTER_OCSF_DUMP, when set, for `ocsf-validate`.
    fn dump(name: &str, events: &[Json]) {
        if let (Ok(dir), false) = (std::env::var("MUSTER_OCSF_DUMP"), events.is_empty()) {
            std::fs::create_dir_all(&dir).unwrap();
            let lines: String = events.iter().map(|e| format!("{e}\n")).collect();
            std::fs::write(
                std::path::Path::new(&dir).join(format!("{name}.ocsf.jsonl")),
                lines,
            )
            .unwrap();
        }
    }

    #[test]
    fn our_samples_map_without_rejects() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/cloudtrail");
        let mut files = Vec::new();
        files_under(&root, &mut files);
        let want: &[(&str, usize)] = &[
            (
                "111122223333_CloudTrail_us-east-1_20240514T0000Z_muster01.json.gz",
                14,
            ),
            (
                "111122223333_CloudTrail-Insight_us-east-1_20240514T0000Z_muster02.json.gz",
                2,
            ),
            (
                "444455556666_CloudTrail_eu-west-1_20240514T1200Z_muster03.json.gz",
                4,
            ),
        ];
        let mut by_class = std::collections::BTreeMap::new();
        for (name, count) in want {
            let path = files
                .iter()
                .find(|p| p.ends_with(name))
                .unwrap_or_else(|| panic!("{name} missing"));
            let key = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let (out, result) = normalize_file(path, &key);
            result.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(out.rejects.is_empty(), "{name}: {:?}", out.rejects);
            assert_eq!(out.events.len(), *count, "{name}");
            for e in &out.events {
                *by_class
                    .entry(e["class_uid"].as_u64().unwrap())
                    .or_insert(0) += 1;
            }
        }
        assert_eq!(
            by_class,
            [(3001, 3), (3002, 6), (6003, 11)].into_iter().collect()
        );
    }

    #[test]
    fn third_party_corpus() {
        let Ok(corpus) = std::env::var("MUSTER_CORPUS") else {
            eprintln!("MUSTER_CORPUS is not set: skipping the third-party CloudTrail samples");
            return;
        };
        let dir = std::path::Path::new(&corpus).join("cloudtrail");
        // (file, records, whether it is a CloudTrail log file at all)
        let want: &[(&str, usize, bool)] = &[
            ("otel_cloudtrail_log.json", 7, true),
            ("clo_cloudtrail.log", 4, true),
            ("ctpl_SerializerTestFileCompact.json.gz", 6, true),
            ("otel_cloudtrail_digest.json", 0, false),
        ];
        for (name, count, is_log) in want {
            let path = dir.join(name);
            let (out, result) = normalize_file(&path, &format!("corpus/{name}"));
            assert!(out.rejects.is_empty(), "{name}: {:?}", out.rejects);
            assert_eq!(out.events.len(), *count, "{name}");
            if *is_log {
                result.unwrap_or_else(|e| panic!("{name}: {e}"));
            } else {
                assert!(
                    matches!(result, Err(Error::Format { .. })),
                    "{name}: {result:?}"
                );
            }
        }
    }
}

/// `MUSTER_BENCH_CT=<dir of .json.gz> cargo test --release -p muster-core --lib -- --ignored --nocapture cloudtrail_throughput`
/// prints MB/s (uncompressed) for inflate alone, + splitting, + parse and map, +
/// serialising, + gzip level 1 output. A quick look, not the benchmark.
#[cfg(test)]
mod throughput {
    use super::*;
    use std::io::Write;

    /// Nanoseconds this thread has been on a CPU: steadier than wall time on a
    /// shared machine.
    #[derive(Clone, Copy)]
    struct Instant(u64);

    impl Instant {
        fn now() -> Self {
            let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
            Instant(
                stat.split_whitespace()
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
            )
        }
        fn elapsed(&self) -> std::time::Duration {
            std::time::Duration::from_nanos(Instant::now().0 - self.0)
        }
    }

    struct Sink {
        buf: Vec<u8>,
        gz: Option<flate2::write::GzEncoder<std::io::Sink>>,
        serialize: bool,
        events: u64,
        out_bytes: u64,
    }

    impl Emit for Sink {
        fn event(&mut self, event: &Event<'_>) -> Result<()> {
            self.events += 1;
            if self.serialize {
                self.buf.clear();
                serde_json::to_writer(&mut self.buf, event).expect("serialisable");
                self.buf.push(b'\n');
                self.out_bytes += self.buf.len() as u64;
                if self.events == 1 && std::env::var_os("MUSTER_BENCH_SHOW").is_some() {
                    eprintln!("{}", String::from_utf8_lossy(&self.buf));
                }
                if let Some(gz) = &mut self.gz {
                    gz.write_all(&self.buf).expect("sink");
                }
            }
            Ok(())
        }
        fn reject(&mut self, r: Rejected<'_>) -> Result<()> {
            panic!("reject: {r:?}");
        }
        fn skip(&mut self, _: &'static str) {}
    }

    #[test]
    #[ignore]
    fn cloudtrail_throughput() {
        let Ok(dir) = std::env::var("MUSTER_BENCH_CT") else {
            eprintln!("MUSTER_BENCH_CT is not set");
            return;
        };
        let mut files = Vec::new();
        let mut stack = vec![std::path::PathBuf::from(dir)];
        while let Some(p) = stack.pop() {
            if p.is_dir() {
                stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            } else {
                files.push(std::fs::read(&p).unwrap());
            }
        }
        let open = |data: &Vec<u8>| {
            crate::framing::decode(std::io::Cursor::new(data.clone()), None, None, "bench").unwrap()
        };
        let mut total = 0u64;
        let start = Instant::now();
        for data in &files {
            let mut d = open(data);
            total += std::io::copy(&mut d.reader, &mut std::io::sink()).unwrap();
        }
        let mb = total as f64 / 1e6;
        let report = |what: &str, start: Instant| {
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "{what:<28} {:>7.1} MB/s {:>6.2} s/GB",
                mb / secs,
                secs * 1000.0 / mb
            );
        };
        report("inflate", start);
        let start = Instant::now();
        let mut n = 0;
        for data in &files {
            let mut d = open(data);
            let mut s = JsonArraySplitter::new(d.reader.as_mut(), "Records", 8 << 20);
            while s.next_element().unwrap().is_some() {
                n += 1;
            }
        }
        report("+ split", start);
        let ctx = Context {
            object: "bench".into(),
            max_record_bytes: 8 << 20,
            ..Context::default()
        };
        // MUSTER_BENCH_ONLY=map|full: one stage, for a profiler.
        let stages: &[(&str, bool, bool)] = match std::env::var("MUSTER_BENCH_ONLY").as_deref() {
            Ok("map") => &[("+ parse + map", false, false)],
            Ok("full") => &[("+ gzip 1 out", true, true)],
            _ => &[
                ("+ parse + map", false, false),
                ("+ serialise", true, false),
                ("+ gzip 1 out", true, true),
            ],
        };
        for &(what, serialize, gzip) in stages {
            let start = Instant::now();
            let mut sink = Sink {
                buf: Vec::with_capacity(8192),
                gz: gzip.then(|| {
                    flate2::write::GzEncoder::new(std::io::sink(), flate2::Compression::new(1))
                }),
                serialize,
                events: 0,
                out_bytes: 0,
            };
            for data in &files {
                let mut d = open(data);
                normalize(d.reader.as_mut(), &ctx, &mut sink).unwrap();
            }
            if let Some(gz) = sink.gz.take() {
                gz.finish().unwrap();
            }
            eprintln!("  output JSON: {:.1} MB", sink.out_bytes as f64 / 1e6);
            assert_eq!(sink.events, n);
            report(what, start);
        }
        eprintln!("{n} records, {mb:.1} MB");
    }
}
