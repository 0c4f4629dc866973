//! CloudFront standard (access) logs delivered to S3, mapped to OCSF 4002 HTTP
//! Activity.
//!
//! A file is W3C extended log format: `#Version: 1.0`, a `#Fields:` line naming the
//! columns, then one tab-separated record a line (`-` where a field does not apply).
//! The `#Fields` line drives the columns, so files with fewer or more fields than
//! today's 33 map alike; a file without one is read in CloudFront's documented
//! order. Values are borrowed from the line; only URL-decoded text allocates.
//!
//! Mapping decisions worth knowing:
//! - `date`+`time` (UTC, when the response ended) → `time`; `time-taken` → `duration`.
//! - `c-ip`/`c-port` → `src_endpoint`; it must be an address: a placeholder such as
//!   `x.x.x.x` (in test data) leaves the event with no client and is quarantined.
//! - The distribution (`cs(Host)`, its `*.cloudfront.net` name) is `dst_endpoint`
//!   with `svc_name` CloudFront; `x-host-header` (the name the viewer asked for) is
//!   the URL's hostname, `cs-protocol` its scheme, `cs-uri-stem`/`cs-uri-query` its
//!   path and query.
//! - `cs(User-Agent)` and `cs(Referer)` are URL-encoded by CloudFront; they are
//!   decoded once, and a second time when the first pass leaves an encoded space
//!   (`%2520` → `%20` → ` `), which is what double-encoding pipelines produce. The
//!   URI stem and query stay as logged: they are what was requested.
//! - `sc-status` → `http_response.code` (`000`, a viewer that left before the
//!   response, is 0); `sc-bytes`/`cs-bytes` → response/request length and traffic
//!   out/in; `ssl-protocol`/`ssl-cipher` → `tls`; `x-edge-request-id` →
//!   `http_request.uid`.
//! - Every other column (`x-edge-location`, result types, cookies, FLE, ...) is kept
//!   in `unmapped` under its W3C name; numbers that do not parse in a field with no
//!   OCSF role are kept as text rather than failing the record.
//! - A line whose field count differs from the header is quarantined with both
//!   counts: its columns cannot be told apart. The published sample with a bare `#`
//!   header and 19 fields ends up this way, line by line.

use super::waf::is_hostname;
use super::{Context, Emit, Rejected};
use crate::error::{Error, Location, Result};
use crate::framing::LineReader;
use crate::ocsf::{
    Class, Cloud, Endpoint, Event, HttpRequest, HttpResponse, Metadata, Product, Str, Tls, Traffic,
    Unmapped, Url,
};
use crate::time::days_from_civil;
use std::borrow::Cow;
use std::io::BufRead;

const DEFAULT_MAX_LINE: usize = 256 * 1024;

/// CloudFront's documented field order, for files that arrive without `#Fields`.
const STANDARD_FIELDS: &str = "date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Date,
    Time,
    ScBytes,
    CIp,
    Method,
    Host,
    UriStem,
    Status,
    Referer,
    UserAgent,
    UriQuery,
    RequestId,
    HostHeader,
    Protocol,
    CsBytes,
    TimeTaken,
    SslProtocol,
    SslCipher,
    ProtocolVersion,
    CPort,
}

const SLOTS: usize = Slot::CPort as usize + 1;

const SLOT_NAMES: [(&str, Slot); SLOTS] = [
    ("date", Slot::Date),
    ("time", Slot::Time),
    ("sc-bytes", Slot::ScBytes),
    ("c-ip", Slot::CIp),
    ("cs-method", Slot::Method),
    ("cs(Host)", Slot::Host),
    ("cs-uri-stem", Slot::UriStem),
    ("sc-status", Slot::Status),
    ("cs(Referer)", Slot::Referer),
    ("cs(User-Agent)", Slot::UserAgent),
    ("cs-uri-query", Slot::UriQuery),
    ("x-edge-request-id", Slot::RequestId),
    ("x-host-header", Slot::HostHeader),
    ("cs-protocol", Slot::Protocol),
    ("cs-bytes", Slot::CsBytes),
    ("time-taken", Slot::TimeTaken),
    ("ssl-protocol", Slot::SslProtocol),
    ("ssl-cipher", Slot::SslCipher),
    ("cs-protocol-version", Slot::ProtocolVersion),
    ("c-port", Slot::CPort),
];

impl Slot {
    const fn name(self) -> &'static str {
        SLOT_NAMES[self as usize].0
    }
}

struct Format {
    /// Each column's name and slot (`None`: kept in `unmapped`).
    columns: Vec<(Box<str>, Option<Slot>)>,
    version: Option<String>,
}

impl Format {
    fn parse(fields: &str, version: Option<String>) -> Format {
        let columns = fields
            .split_ascii_whitespace()
            .map(|name| {
                let slot = SLOT_NAMES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s);
                (name.into(), slot)
            })
            .collect();
        Format { columns, version }
    }
}

struct Bad {
    field: Option<&'static str>,
    reason: String,
}

fn bad(slot: Slot, reason: impl Into<String>) -> Bad {
    Bad {
        field: Some(slot.name()),
        reason: reason.into(),
    }
}

fn shown(v: &str) -> String {
    let end = (0..=v.len().min(64))
        .rev()
        .find(|i| v.is_char_boundary(*i))
        .unwrap_or(0);
    format!("{:?}{}", &v[..end], if end < v.len() { "…" } else { "" })
}

/// `%XX`-decoding; `None` when the result is not UTF-8 (the raw text is kept then).
fn percent_decode(s: &str) -> Option<Cow<'_, str>> {
    if !s.contains('%') {
        return Some(Cow::Borrowed(s));
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// Decodes a URL-encoded header value, twice when it was encoded twice.
fn decoded(s: &str) -> Str<'_> {
    match percent_decode(s) {
        Some(Cow::Owned(once)) if once.contains("%20") && !once.contains(' ') => {
            match percent_decode(&once) {
                Some(twice) => Cow::Owned(twice.into_owned()),
                None => Cow::Owned(once),
            }
        }
        Some(once) => once,
        None => Cow::Borrowed(s),
    }
}

/// `YYYY-MM-DD` and `HH:MM:SS` (UTC) → epoch ms.
fn timestamp(date: &str, time: &str) -> Option<i64> {
    let d = date.as_bytes();
    let t = time.as_bytes();
    if d.len() != 10 || d[4] != b'-' || d[7] != b'-' || t.len() < 8 || t[2] != b':' || t[5] != b':'
    {
        return None;
    }
    let num = |s: &str| -> Option<u32> {
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    let (y, m, day) = (num(&date[0..4])?, num(&date[5..7])?, num(&date[8..10])?);
    let (h, min) = (num(&time[0..2])?, num(&time[3..5])?);
    let sec: f64 = time.get(6..)?.parse().ok()?;
    if !(1..=12).contains(&m)
        || !(1..=31).contains(&day)
        || h > 23
        || min > 59
        || !(0.0..61.0).contains(&sec)
    {
        return None;
    }
    let days = days_from_civil(i64::from(y), m, day);
    Some(
        ((days * 86_400 + i64::from(h) * 3600 + i64::from(min) * 60) * 1000)
            + (sec * 1000.0) as i64,
    )
}

fn activity(method: Option<&str>) -> (u32, &'static str) {
    match method {
        None => (0, "Unknown"),
        Some("CONNECT") => (1, "Connect"),
        Some("DELETE") => (2, "Delete"),
        Some("GET") => (3, "Get"),
        Some("HEAD") => (4, "Head"),
        Some("OPTIONS") => (5, "Options"),
        Some("POST") => (6, "Post"),
        Some("PUT") => (7, "Put"),
        Some("TRACE") => (8, "Trace"),
        Some(_) => (99, "Other"),
    }
}

type Values<'a> = [Option<&'a str>; SLOTS];

fn map_line<'a>(
    format: &'a Format,
    line: &'a str,
    ctx: &'a Context,
    out: &mut dyn Emit,
) -> std::result::Result<Result<()>, Bad> {
    let mut v: Values<'a> = [None; SLOTS];
    let mut unmapped = Unmapped::default();
    let mut count = 0;
    for (i, raw) in line.split('\t').enumerate() {
        count = i + 1;
        let value = raw.trim_matches(' ');
        let present = !value.is_empty() && value != "-";
        match format.columns.get(i) {
            Some((_, Some(slot))) if present => v[*slot as usize] = Some(value),
            Some((name, None)) if present => unmapped.str(Cow::Borrowed(&**name), value),
            _ => {}
        }
    }
    if count != format.columns.len() {
        return Err(Bad {
            field: None,
            reason: format!(
                "{count} tab-separated fields where the {} names {}",
                if format.version.is_some() {
                    "#Fields header"
                } else {
                    "standard format (no #Fields header)"
                },
                format.columns.len()
            ),
        });
    }
    let get = |s: Slot| v[s as usize];

    let (Some(date), Some(time)) = (get(Slot::Date), get(Slot::Time)) else {
        return Err(bad(Slot::Date, "the record has no date and time"));
    };
    let time = timestamp(date, time).ok_or_else(|| {
        bad(
            Slot::Time,
            format!("not a UTC date and time: {} {}", shown(date), shown(time)),
        )
    })?;
    let client =
        get(Slot::CIp).ok_or_else(|| bad(Slot::CIp, "the record has no client address"))?;
    if client.parse::<std::net::IpAddr>().is_err() {
        return Err(bad(
            Slot::CIp,
            format!(
                "{} is not an IP address (a placeholder?): the event would have no client",
                shown(client)
            ),
        ));
    }
    let status = match get(Slot::Status) {
        None => None,
        Some(s) => Some(
            s.parse::<u32>()
                .ok()
                .filter(|c| *c < 1000)
                .ok_or_else(|| bad(Slot::Status, format!("not an HTTP status: {}", shown(s))))?,
        ),
    };
    // Counters and ports with an OCSF role: kept as text when they do not parse.
    let int = |slot: Slot, unmapped: &mut Unmapped<'a>| -> Option<u64> {
        let s = get(slot)?;
        match s.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                unmapped.str(slot.name(), s);
                None
            }
        }
    };
    let sc_bytes = int(Slot::ScBytes, &mut unmapped);
    let cs_bytes = int(Slot::CsBytes, &mut unmapped);
    let port = int(Slot::CPort, &mut unmapped).and_then(|p| u16::try_from(p).ok());
    let duration = get(Slot::TimeTaken).and_then(|t| match t.parse::<f64>() {
        Ok(secs) if (0.0..1e9).contains(&secs) => Some((secs * 1000.0).round() as i64),
        _ => {
            unmapped.str(Slot::TimeTaken.name(), t);
            None
        }
    });

    let method = get(Slot::Method);
    let (activity_id, activity_name) = activity(method);
    let activity_name: Str<'a> = match (activity_id, method) {
        (99, Some(m)) => Cow::Borrowed(m),
        _ => Cow::Borrowed(activity_name),
    };
    let mut metadata = Metadata::new(Product::aws("Amazon CloudFront"));
    metadata.profiles = &["cloud"];
    metadata.log_version = format.version.as_deref().map(Cow::Borrowed);
    let mut event = Event::new(
        Class::HttpActivity,
        activity_id,
        activity_name,
        time,
        metadata,
    );
    event.duration = duration;
    event.cloud = Some(Cloud::aws(
        ctx.key.region.as_deref().map(Cow::Borrowed),
        ctx.key.account.as_deref().map(Cow::Borrowed),
    ));
    event.src_endpoint = Some(Endpoint {
        ip: Some(Cow::Borrowed(client)),
        port,
        ..Endpoint::default()
    });
    let distribution = get(Slot::Host).filter(|h| is_hostname(h));
    if let Some(h) = get(Slot::Host).filter(|_| distribution.is_none()) {
        unmapped.str(Slot::Host.name(), h);
    }
    event.dst_endpoint = Some(Endpoint {
        hostname: distribution.map(Cow::Borrowed),
        svc_name: Some(Cow::Borrowed("CloudFront")),
        ..Endpoint::default()
    });
    let host_header = get(Slot::HostHeader);
    let url_host = host_header.filter(|h| is_hostname(h));
    if let Some(h) = host_header.filter(|_| url_host.is_none()) {
        unmapped.str(Slot::HostHeader.name(), h);
    }
    let scheme = get(Slot::Protocol);
    let url = get(Slot::UriStem).map(|path| Url {
        scheme: scheme.map(Cow::Borrowed),
        hostname: url_host.map(Cow::Borrowed),
        path: Some(Cow::Borrowed(path)),
        query_string: get(Slot::UriQuery).map(Cow::Borrowed),
        ..Url::default()
    });
    if url.is_none() {
        if let Some(q) = get(Slot::UriQuery) {
            unmapped.str(Slot::UriQuery.name(), q);
        }
        if let Some(s) = scheme {
            unmapped.str(Slot::Protocol.name(), s);
        }
    }
    // OCSF 1.1.0 allows only the eight methods of its activities in `http_method`.
    if activity_id == 99 {
        if let Some(m) = method {
            unmapped.str(Slot::Method.name(), m);
        }
    }
    event.http_request = Some(HttpRequest {
        http_method: method.filter(|_| activity_id != 99).map(Cow::Borrowed),
        user_agent: get(Slot::UserAgent).map(decoded),
        referrer: get(Slot::Referer).map(decoded),
        version: get(Slot::ProtocolVersion).map(Cow::Borrowed),
        uid: get(Slot::RequestId).map(Cow::Borrowed),
        length: cs_bytes,
        url,
        ..HttpRequest::default()
    });
    event.http_response = Some(HttpResponse {
        // `000`: the viewer closed the connection before CloudFront answered.
        code: status.unwrap_or(0),
        length: sc_bytes,
        message: None,
    });
    if let Some(version) = get(Slot::SslProtocol) {
        event.tls = Some(Tls {
            version: Cow::Borrowed(version),
            cipher: get(Slot::SslCipher).map(Cow::Borrowed),
            sni: None,
        });
    } else if let Some(cipher) = get(Slot::SslCipher) {
        unmapped.str(Slot::SslCipher.name(), cipher);
    }
    if sc_bytes.is_some() || cs_bytes.is_some() {
        event.traffic = Some(Traffic {
            bytes_in: cs_bytes,
            bytes_out: sc_bytes,
            ..Traffic::default()
        });
    }
    event.unmapped = unmapped;
    Ok(out.event(&event))
}

/// Reads a CloudFront standard log file.
pub fn normalize(input: &mut dyn BufRead, ctx: &Context, out: &mut dyn Emit) -> Result<()> {
    let max_line = match ctx.max_record_bytes {
        0 => DEFAULT_MAX_LINE,
        n => n,
    };
    let mut reader = LineReader::new(input, max_line);
    let mut version: Option<String> = None;
    let mut format: Option<Format> = None;
    loop {
        let reading = reader.line_number() + 1;
        let Some(line) = reader.next_line() else {
            break;
        };
        let line = line.map_err(|source| Error::Read {
            at: Location {
                object: ctx.object.clone(),
                line: Some(reading),
                record: None,
            },
            source,
        })?;
        let (number, bytes) = (line.number, line.bytes);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let reject = |field: Option<&'static str>, reason: String| Rejected {
            line: Some(number),
            record: None,
            field,
            reason,
            raw: bytes,
        };
        if line.truncated {
            out.reject(reject(
                None,
                format!("line is longer than {max_line} bytes"),
            ))?;
            continue;
        }
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                out.reject(reject(
                    None,
                    format!("invalid UTF-8 at byte {}", e.valid_up_to()),
                ))?;
                continue;
            }
        };
        if let Some(directive) = text.strip_prefix('#') {
            // Directives describe the file, not requests: `#Version` and `#Fields`
            // are read; others (and a bare `#`) say nothing.
            if let Some(v) = directive.strip_prefix("Version:") {
                version = Some(v.trim().to_owned());
            } else if let Some(fields) = directive.strip_prefix("Fields:") {
                format = Some(Format::parse(
                    fields,
                    version.clone().or(Some("1.0".into())),
                ));
            }
            continue;
        }
        let format = format.get_or_insert_with(|| Format::parse(STANDARD_FIELDS, None));
        match map_line(format, text, ctx, out) {
            Ok(sent) => sent?,
            Err(b) => out.reject(reject(b.field, b.reason))?,
        }
    }
    Ok(())
}

/// Whether a file name is a CloudFront standard log's,
/// `<distribution-id>.YYYY-MM-DD-HH.<hash>[.gz]` (possibly after a prefix).
pub fn is_log_name(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    let parts: Vec<&str> = name.split('.').collect();
    parts.windows(2).any(|w| {
        let id = w[0].rsplit(['_', '-']).next().unwrap_or("");
        let hour = w[1].as_bytes();
        id.len() >= 8
            && id
                .bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            && hour.len() == 13
            && hour.iter().enumerate().all(|(i, c)| {
                if matches!(i, 4 | 7 | 10) {
                    *c == b'-'
                } else {
                    c.is_ascii_digit()
                }
            })
    })
}
