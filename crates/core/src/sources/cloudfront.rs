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
    let (activity_id, activity_name) = crate::ocsf::http_activity(method);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::{KeyInfo, SourceKind};
    use serde_json::{json, Value as Json};
    use std::path::{Path, PathBuf};

    #[derive(Default)]
    struct Collect {
        events: Vec<Json>,
        /// (line, field, reason)
        rejects: Vec<(Option<u64>, Option<String>, String)>,
    }

    impl Emit for Collect {
        fn event(&mut self, event: &Event<'_>) -> Result<()> {
            self.events
                .push(serde_json::to_value(event).expect("an event serialises"));
            Ok(())
        }
        fn reject(&mut self, r: Rejected<'_>) -> Result<()> {
            self.rejects
                .push((r.line, r.field.map(str::to_owned), r.reason));
            Ok(())
        }
        fn skip(&mut self, reason: &'static str) {
            panic!("CloudFront logs have no rows to skip: {reason}");
        }
    }

    fn run(input: &[u8]) -> Collect {
        let ctx = Context {
            object: "bucket/E2EXAMPLE12345.2024-05-14-10.a1b2c3d4.gz".into(),
            key: KeyInfo {
                source: Some(SourceKind::CloudFront),
                ..KeyInfo::default()
            },
            max_record_bytes: 0,
        };
        let mut out = Collect::default();
        let mut reader = input;
        normalize(&mut reader, &ctx, &mut out).expect("a CloudFront file never fails whole");
        for e in &out.events {
            assert_eq!(e["class_uid"], 4002, "{e}");
            assert!(e["http_response"]["code"].is_u64(), "{e}");
            assert!(e["src_endpoint"]["ip"].is_string(), "{e}");
            assert_eq!(e["dst_endpoint"]["svc_name"], "CloudFront", "{e}");
        }
        out
    }

    const HEADER: &str = "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end\n";

    /// AWS's documented example line (33 fields), with `edits` as (column, value).
    fn line(edits: &[(usize, &str)]) -> String {
        let mut v: Vec<&str> = "2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\td111111abcdef8.cloudfront.net\t/index.html\t200\t-\tMozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36%20(KHTML,%20like%20Gecko)%20Chrome/78.0.3904.108%20Safari/537.36\t-\t-\tHit\tSOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==\td111111abcdef8.cloudfront.net\thttps\t23\t0.001\t-\tTLSv1.2\tECDHE-RSA-AES128-GCM-SHA256\tHit\tHTTP/2.0\t-\t-\t11040\t0.001\tHit\ttext/html\t78\t-\t-"
            .split('\t')
            .collect();
        for (i, value) in edits {
            v[*i] = value;
        }
        v.join("\t")
    }

    #[test]
    fn lines_map_to_http_activity() {
        /// (name, column edits, expected values by JSON pointer)
        type Case = (
            &'static str,
            Vec<(usize, &'static str)>,
            Vec<(&'static str, Json)>,
        );
        let cases: Vec<Case> = vec![
            (
                "the documented example",
                vec![],
                vec![
                    ("/time", json!(1575493351000i64)),
                    ("/duration", json!(1)),
                    ("/activity_id", json!(3)),
                    ("/src_endpoint/ip", json!("192.0.2.100")),
                    ("/src_endpoint/port", json!(11040)),
                    ("/dst_endpoint/hostname", json!("d111111abcdef8.cloudfront.net")),
                    ("/http_request/url/scheme", json!("https")),
                    ("/http_request/url/path", json!("/index.html")),
                    ("/http_request/url/query_string", Json::Null),
                    ("/http_request/user_agent", json!("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/78.0.3904.108 Safari/537.36")),
                    ("/http_request/version", json!("HTTP/2.0")),
                    ("/http_request/length", json!(23)),
                    ("/http_response/code", json!(200)),
                    ("/http_response/length", json!(392)),
                    ("/tls/version", json!("TLSv1.2")),
                    ("/traffic/bytes_out", json!(392)),
                    ("/metadata/log_version", json!("1.0")),
                    ("/unmapped/x-edge-location", json!("LAX1")),
                    ("/unmapped/cs(Cookie)", Json::Null),
                ],
            ),
            (
                "double-encoded user agent (%2520)",
                vec![(10, "Mozilla/5.0%2520(compatible;%2520bingbot/2.0)")],
                vec![("/http_request/user_agent", json!("Mozilla/5.0 (compatible; bingbot/2.0)"))],
            ),
            (
                "a literal %20 decoded once stays",
                vec![(10, "curl/8%2520x%20y")],
                vec![("/http_request/user_agent", json!("curl/8%20x y"))],
            ),
            (
                "query string, referer, IPv6 viewer, POST",
                vec![(11, "a=1&b=%20x"), (9, "https://www.example.com/a%3Fb"), (4, "2001:db8::1"), (5, "POST")],
                vec![
                    ("/http_request/url/query_string", json!("a=1&b=%20x")),
                    ("/http_request/referrer", json!("https://www.example.com/a?b")),
                    ("/src_endpoint/ip", json!("2001:db8::1")),
                    ("/activity_name", json!("Post")),
                ],
            ),
            (
                "000 status, plain HTTP, no TLS",
                vec![(8, "000"), (16, "http"), (20, "-"), (21, "-")],
                vec![
                    ("/http_response/code", json!(0)),
                    ("/tls", Json::Null),
                    ("/http_request/url/scheme", json!("http")),
                ],
            ),
            (
                "PATCH is Other, the method kept",
                vec![(5, "PATCH")],
                vec![
                    ("/activity_id", json!(99)),
                    ("/activity_name", json!("PATCH")),
                    ("/http_request/http_method", Json::Null),
                    ("/unmapped/cs-method", json!("PATCH")),
                ],
            ),
            (
                "numbers with no role kept as text; a leading space before -",
                vec![(30, "570129.76"), (25, " -"), (18, "1.1000590226167435")],
                vec![
                    ("/unmapped/sc-content-len", json!("570129.76")),
                    ("/unmapped/fle-encrypted-fields", Json::Null),
                    ("/duration", json!(1100)),
                ],
            ),
        ];
        for (name, edits, expected) in cases {
            let input = format!("{HEADER}{}\n", line(&edits));
            let out = run(input.as_bytes());
            assert!(out.rejects.is_empty(), "{name}: {:?}", out.rejects);
            assert_eq!(out.events.len(), 1, "{name}");
            for (pointer, want) in expected {
                let got = out.events[0].pointer(pointer).unwrap_or(&Json::Null);
                assert_eq!(got, &want, "{name}: {pointer}");
            }
        }
    }

    #[test]
    fn bad_lines_are_quarantined_with_the_field() {
        let cases: Vec<(&str, String, Option<&str>, &str)> = vec![
            (
                "placeholder client",
                line(&[(4, "x.x.x.x")]),
                Some("c-ip"),
                "not an IP address",
            ),
            (
                "bad date",
                line(&[(0, "04/12/2019")]),
                Some("time"),
                "not a UTC date",
            ),
            (
                "bad status",
                line(&[(8, "OK")]),
                Some("sc-status"),
                "not an HTTP status",
            ),
            (
                "short line",
                line(&[])
                    .split('\t')
                    .take(19)
                    .collect::<Vec<_>>()
                    .join("\t"),
                None,
                "19 tab-separated fields where the #Fields header names 33",
            ),
        ];
        for (name, l, field, reason) in cases {
            let out = run(format!("{HEADER}{l}\n").as_bytes());
            assert!(out.events.is_empty(), "{name}");
            assert_eq!(out.rejects.len(), 1, "{name}");
            let (n, f, r) = &out.rejects[0];
            assert_eq!(*n, Some(3), "{name}");
            assert_eq!(f.as_deref(), field, "{name}");
            assert!(r.contains(reason), "{name}: {r}");
        }
    }

    #[test]
    fn the_fields_header_drives_the_columns() {
        let input = "#Version: 1.0\r\n#Fields: c-ip date sc-status time\r\n192.0.2.1\t2024-05-14\t302\t10:00:00\r\n";
        let out = run(input.as_bytes());
        assert!(out.rejects.is_empty(), "{:?}", out.rejects);
        assert_eq!(out.events[0]["http_response"]["code"], 302);
        assert_eq!(out.events[0]["time"], 1715680800000i64);
        // Without any #Fields line, CloudFront's documented order applies.
        let out = run(format!("#\n{}\n", line(&[])).as_bytes());
        assert_eq!(out.events.len(), 1, "{:?}", out.rejects);
    }

    #[test]
    fn keys_and_content_name_the_source() {
        for (key, want) in [
            ("logs/www/E2EXAMPLE12345.2024-05-14-10.a1b2c3d4.gz", true),
            (
                "wafsa_E3HXCM7PFRG6HT.2023-04-24-21.d740d76bCloudFront.gz",
                true,
            ),
            ("logs/index.2024-05-14.gz", false),
        ] {
            let got = crate::sources::detect_from_key(key).source == Some(SourceKind::CloudFront);
            assert_eq!(got, want, "{key}");
        }
        assert_eq!(
            crate::sources::sniff(HEADER.as_bytes()),
            Some(SourceKind::CloudFront)
        );
    }

    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
        out.sort();
        out
    }

    fn run_file(path: &Path) -> Collect {
        let bytes = std::fs::read(path).unwrap();
        let mut text = Vec::new();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            std::io::Read::read_to_end(
                &mut flate2::read::MultiGzDecoder::new(&bytes[..]),
                &mut text,
            )
            .unwrap();
        } else {
            text = bytes;
        }
        run(&text)
    }

    #[test]
    fn our_samples_map_without_quarantine() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/cloudfront");
        let logs: Vec<PathBuf> = files_under(&dir)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "gz"))
            .collect();
        assert!(!logs.is_empty());
        for path in logs {
            let out = run_file(&path);
            assert!(
                out.rejects.is_empty(),
                "{}: {:?}",
                path.display(),
                out.rejects
            );
            assert_eq!(out.events.len(), 7, "{}", path.display());
            let key = crate::sources::detect_from_key(&path.display().to_string());
            assert_eq!(key.source, Some(SourceKind::CloudFront));
        }
    }

    /// The third-party samples under $MUSTER_CORPUS/cloudfront: (file, events,
    /// quarantined). The `wafsa_` file is not a standard log (a bare `#` header, 19
    /// fields, `x.x.x.x` clients): every line of it is quarantined, with its reason.
    #[test]
    fn corpus_samples() {
        let Some(corpus) = std::env::var_os("MUSTER_CORPUS") else {
            eprintln!("MUSTER_CORPUS is not set: skipping the CloudFront corpus test");
            return;
        };
        let known = [
            ("clo_cloudfront.log", 2, 0),
            ("clo_microbatch_cloudfront.log.gz", 2, 0),
            (
                "wafsa_E3HXCM7PFRG6HT.2023-04-24-21.d740d76bCloudFront.gz",
                0,
                152,
            ),
        ];
        for path in files_under(&Path::new(&corpus).join("cloudfront")) {
            let name = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
            let out = run_file(&path);
            match known.iter().find(|(k, _, _)| *k == name) {
                Some((_, events, quarantined)) => {
                    assert_eq!(
                        out.events.len(),
                        *events,
                        "{name}: {:?}",
                        out.rejects.first()
                    );
                    assert_eq!(out.rejects.len(), *quarantined, "{name}");
                    assert!(out
                        .rejects
                        .iter()
                        .all(|r| r.2.contains("19 tab-separated fields")));
                }
                None => assert!(out.rejects.is_empty(), "{name}: {:?}", out.rejects),
            }
        }
    }
}
