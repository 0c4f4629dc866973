//! Elastic Load Balancing access logs: Application (ALB), Network (NLB, TLS
//! listeners) and Classic (CLB) load balancers, one space-separated record a line.
//!
//! - ALB lines start with the request type (`http https h2 grpcs ws wss`) and have
//!   grown from 25 to 29, 30 and more fields; every field past the ones mapped here is
//!   kept in `unmapped` by its documented name (or `field_<n>` when AWS adds new ones).
//! - NLB lines start with `tls 2.0`: a TLS connection, not an HTTP request, so they map
//!   to 4001 Network Activity (activity 6 Traffic).
//! - Classic lines have 15 fields and no type: the first field is the time.
//! - ALB and Classic map to 4002 HTTP Activity, the activity taken from the method.
//!   An ELB status of 4xx/5xx is a Failure: the client did not get what it asked for.
//! - `-` means "no value" and `-1` is what AWS writes for a processing time it could not
//!   measure: both are left out.
//! - Account and region come from the key when AWS delivered the file, otherwise from
//!   the ARNs in the line (target group or certificate).

use super::{Context, Emit, Rejected};
use crate::error::{Error, Location, Result};
use crate::framing::LineReader;
use crate::ocsf::{
    Class, Cloud, ConnectionInfo, Endpoint, Event, Feature, HttpRequest, HttpResponse,
    LoadBalancer, Metadata, Product, Status, Tls, Traffic, Unmapped, Url,
};
use std::borrow::Cow;
use std::io::BufRead;

const DEFAULT_MAX_LINE: usize = 64 * 1024;

/// Splits a log line into fields: separated by single spaces, `"..."` fields may hold
/// spaces (their quotes are removed; a quote ends a field only when a space or the end
/// of the line follows, which keeps NLB's `"h2","http/1.1"` whole), and `[...]` keeps
/// S3's bracketed time together. Err names the field that never closed.
pub(crate) fn split_fields<'a>(
    line: &'a str,
    out: &mut Vec<&'a str>,
) -> std::result::Result<(), usize> {
    out.clear();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b' ' {
            i += 1;
            continue;
        }
        match b[i] {
            b'"' => {
                let start = i + 1;
                let mut j = start;
                loop {
                    match memchr::memchr(b'"', &b[j..]) {
                        Some(k) => {
                            let q = j + k;
                            // `\"` inside a quoted field is an escaped quote.
                            let escaped = q > start && b[q - 1] == b'\\';
                            if !escaped && (q + 1 == b.len() || b[q + 1] == b' ') {
                                out.push(&line[start..q]);
                                i = q + 1;
                                break;
                            }
                            j = q + 1;
                        }
                        None => return Err(out.len()),
                    }
                }
            }
            b'[' => {
                let Some(k) = memchr::memchr(b']', &b[i..]) else {
                    return Err(out.len());
                };
                let end = memchr::memchr(b' ', &b[i + k..]).map_or(b.len(), |s| i + k + s);
                out.push(&line[i..end]);
                i = end;
            }
            _ => {
                let end = memchr::memchr(b' ', &b[i..]).map_or(b.len(), |s| i + s);
                out.push(&line[i..end]);
                i = end;
            }
        }
    }
    Ok(())
}

/// `None` for AWS's "no value" markers.
pub(crate) fn value(s: &str) -> Option<&str> {
    match s {
        "" | "-" | "-1" => None,
        v => Some(v),
    }
}

/// `ip:port`, `[v6]:port`, or `-`.
fn endpoint<'a>(field: &'static str, s: &'a str) -> std::result::Result<Option<Endpoint<'a>>, Bad> {
    if value(s).is_none() {
        return Ok(None);
    }
    let (ip, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((ip, port)) = rest.split_once("]:") else {
            return Err(Bad(field, format!("`{s}` is not [ipv6]:port")));
        };
        (ip, port)
    } else {
        match s.rsplit_once(':') {
            Some(p) => p,
            None => return Err(Bad(field, format!("`{s}` is not ip:port"))),
        }
    };
    if ip.parse::<std::net::IpAddr>().is_err() {
        return Err(Bad(field, format!("`{ip}` is not an IP address")));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| Bad(field, format!("`{port}` is not a port number")))?;
    Ok(Some(Endpoint {
        ip: Some(Cow::Borrowed(ip)),
        port: Some(port),
        ..Endpoint::default()
    }))
}

/// A field that could not be read: its name and why.
#[derive(Debug)]
pub(crate) struct Bad(pub &'static str, pub String);

fn count(field: &'static str, s: &str) -> std::result::Result<Option<u64>, Bad> {
    match value(s) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| Bad(field, format!("`{v}` is not a byte count"))),
    }
}

fn status_code(field: &'static str, s: &str) -> std::result::Result<Option<u32>, Bad> {
    match value(s) {
        None => Ok(None),
        Some(v) => match v.parse::<u32>() {
            Ok(c) if (100..1000).contains(&c) => Ok(Some(c)),
            _ => Err(Bad(field, format!("`{v}` is not an HTTP status code"))),
        },
    }
}

/// ISO 8601 time; NLB writes it without a zone, which AWS documents as UTC.
fn time(field: &'static str, s: &str) -> std::result::Result<i64, Bad> {
    crate::time::parse_rfc3339_ms(s)
        .or_else(|| {
            let b = s.as_bytes();
            (b.len() >= 19
                && !s.ends_with('Z')
                && s.get(19..).is_some_and(|z| !z.contains(['+', '-'])))
            .then(|| crate::time::parse_rfc3339_ms(&format!("{s}Z")))
            .flatten()
        })
        .ok_or_else(|| Bad(field, format!("`{s}` is not an ISO 8601 time")))
}

/// Parts of an absolute or origin-form URL; nothing is decoded.
pub(crate) fn url(s: &str) -> Url<'_> {
    let mut u = Url {
        url_string: Some(Cow::Borrowed(s)),
        ..Url::default()
    };
    let mut rest = s;
    if let Some((scheme, after)) = s.split_once("://") {
        u.scheme = Some(Cow::Borrowed(scheme));
        let end = after.find(['/', '?']).unwrap_or(after.len());
        let authority = &after[..end];
        let host = match authority.rsplit_once(':') {
            Some((h, p)) if !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()) => {
                u.port = p.parse().ok();
                h
            }
            _ => authority,
        };
        if !host.is_empty() {
            u.hostname = Some(Cow::Borrowed(host));
        }
        rest = &after[end..];
    }
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if !path.is_empty() {
        u.path = Some(Cow::Borrowed(path));
    }
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        u.query_string = Some(Cow::Borrowed(q));
    }
    u
}

/// `"METHOD url HTTP/x"`; `- - -` when the load balancer could not read one.
fn request(s: &str) -> (Option<&str>, Option<&str>, Option<&str>) {
    let mut parts = s.splitn(3, ' ');
    let method = parts.next().and_then(value);
    let target = parts.next().and_then(value);
    let version = parts.next().and_then(value);
    (method, target, version)
}

/// Region and account from `arn:aws:<service>:<region>:<account>:...`.
fn arn_scope(arn: &str) -> Option<(&str, &str)> {
    let mut p = arn.split(':');
    (p.next()? == "arn").then_some(())?;
    let _partition = p.next()?;
    let _service = p.next()?;
    let region = p.next().filter(|r| !r.is_empty())?;
    let account = p
        .next()
        .filter(|a| a.len() == 12 && a.bytes().all(|c| c.is_ascii_digit()))?;
    Some((region, account))
}

fn cloud<'a>(ctx: &'a Context, arns: &[&'a str]) -> Cloud<'a> {
    let from_arn = arns.iter().find_map(|a| arn_scope(a));
    let region = ctx
        .key
        .region
        .as_deref()
        .or(from_arn.map(|(r, _)| r))
        .map(Cow::Borrowed);
    let account = ctx
        .key
        .account
        .as_deref()
        .or(from_arn.map(|(_, a)| a))
        .map(Cow::Borrowed);
    Cloud::aws(region, account)
}

fn metadata<'a>(feature: &'static str) -> Metadata<'a> {
    let mut product = Product::aws("Elastic Load Balancing");
    product.feature = Some(Feature {
        name: Cow::Borrowed(feature),
    });
    let mut m = Metadata::new(product);
    m.profiles = &["cloud", "load_balancer"];
    m.log_name = Some(Cow::Borrowed("access_log"));
    m
}

/// `app/<name>/<id>` → `<name>`; a Classic name is the name.
fn lb_name(elb: &str) -> &str {
    let mut p = elb.split('/');
    match (p.next(), p.next(), p.next()) {
        (Some(_), Some(name), Some(_)) => name,
        _ => elb,
    }
}

const ALB_NAMES: [&str; 30] = [
    "type",
    "time",
    "elb",
    "client:port",
    "target:port",
    "request_processing_time",
    "target_processing_time",
    "response_processing_time",
    "elb_status_code",
    "target_status_code",
    "received_bytes",
    "sent_bytes",
    "request",
    "user_agent",
    "ssl_cipher",
    "ssl_protocol",
    "target_group_arn",
    "trace_id",
    "domain_name",
    "chosen_cert_arn",
    "matched_rule_priority",
    "request_creation_time",
    "actions_executed",
    "redirect_url",
    "error_reason",
    "target:port_list",
    "target_status_code_list",
    "classification",
    "classification_reason",
    "conn_trace_id",
];

const NLB_NAMES: [&str; 22] = [
    "type",
    "version",
    "time",
    "elb",
    "listener",
    "client:port",
    "destination:port",
    "connection_time",
    "tls_handshake_time",
    "received_bytes",
    "sent_bytes",
    "incoming_tls_alert",
    "chosen_cert_arn",
    "chosen_cert_serial",
    "tls_cipher_suite",
    "tls_protocol_version",
    "tls_named_group",
    "domain_name",
    "alpn_fe_protocol",
    "alpn_be_protocol",
    "alpn_client_preference_list",
    "tls_connection_creation_time",
];

const CLB_NAMES: [&str; 15] = [
    "time",
    "elb",
    "client:port",
    "backend:port",
    "request_processing_time",
    "backend_processing_time",
    "response_processing_time",
    "elb_status_code",
    "backend_status_code",
    "received_bytes",
    "sent_bytes",
    "request",
    "user_agent",
    "ssl_cipher",
    "ssl_protocol",
];

/// Keeps the fields at `indices` (when they hold a value) in `unmapped`, and every field
/// past the known names too.
fn keep<'a>(unmapped: &mut Unmapped<'a>, names: &[&'static str], f: &[&'a str], indices: &[usize]) {
    for &i in indices {
        if let Some(v) = f.get(i).copied().and_then(value) {
            unmapped.str(names[i], v);
        }
    }
    for (i, v) in f.iter().enumerate().skip(names.len()) {
        if let Some(v) = value(v) {
            unmapped.str(format!("field_{}", i + 1), v);
        }
    }
}

fn tls<'a>(version: &'a str, cipher: &'a str, sni: Option<&'a str>) -> Option<Tls<'a>> {
    value(version).map(|v| Tls {
        version: Cow::Borrowed(v),
        cipher: value(cipher).map(Cow::Borrowed),
        sni: sni.and_then(value).map(Cow::Borrowed),
    })
}

/// The HTTP part common to ALB and Classic lines, from the indices of their fields.
struct HttpLayout {
    time: usize,
    elb: usize,
    client: usize,
    target: usize,
    elb_status: usize,
    received: usize,
    sent: usize,
    request: usize,
    user_agent: usize,
    cipher: usize,
    protocol: usize,
}

const ALB: HttpLayout = HttpLayout {
    time: 1,
    elb: 2,
    client: 3,
    target: 4,
    elb_status: 8,
    received: 10,
    sent: 11,
    request: 12,
    user_agent: 13,
    cipher: 14,
    protocol: 15,
};

const CLB: HttpLayout = HttpLayout {
    time: 0,
    elb: 1,
    client: 2,
    target: 3,
    elb_status: 7,
    received: 9,
    sent: 10,
    request: 11,
    user_agent: 12,
    cipher: 13,
    protocol: 14,
};

fn http_event<'a>(
    ctx: &'a Context,
    f: &[&'a str],
    l: &HttpLayout,
    alb: bool,
) -> std::result::Result<Event<'a>, Bad> {
    let names: &[&'static str] = if alb { &ALB_NAMES } else { &CLB_NAMES };
    let time = time(names[l.time], f[l.time])?;
    let (method, target, version) = request(f[l.request]);
    let (activity_id, activity_name) =
        method.map_or((99, "Other"), |m| crate::ocsf::http_activity(Some(m)));
    let feature = if alb {
        "Application Load Balancer"
    } else {
        "Classic Load Balancer"
    };
    let mut e = Event::new(
        Class::HttpActivity,
        activity_id,
        activity_name,
        time,
        metadata(feature),
    );
    let arns: Vec<&str> = if alb {
        [16, 19].iter().filter_map(|i| f.get(*i).copied()).collect()
    } else {
        Vec::new()
    };
    e.cloud = Some(cloud(ctx, &arns));
    e.src_endpoint = endpoint(names[l.client], f[l.client])?;
    let target_ep = endpoint(names[l.target], f[l.target])?;
    let parsed_url = target.map(url);
    // 4002 requires a destination. Without a target (the load balancer answered
    // itself: 4xx/5xx, redirects, fixed responses) the request's destination is the
    // load balancer, named by the host the client asked for, or by its id.
    e.dst_endpoint = target_ep.clone().or_else(|| {
        Some(match parsed_url.as_ref().and_then(|u| u.hostname.clone()) {
            Some(host) => Endpoint {
                hostname: Some(host),
                port: parsed_url.as_ref().and_then(|u| u.port),
                ..Endpoint::default()
            },
            None => Endpoint {
                uid: Some(Cow::Borrowed(f[l.elb])),
                ..Endpoint::default()
            },
        })
    });
    let code = status_code(names[l.elb_status], f[l.elb_status])?;
    let received = count(names[l.received], f[l.received])?;
    let sent = count(names[l.sent], f[l.sent])?;
    match code {
        Some(c) if c >= 400 => e.set_status(Status::Failure),
        Some(_) => e.set_status(Status::Success),
        None => e.set_status(Status::Unknown),
    }
    if let Some(c) = code {
        e.status_code = Some(Cow::Owned(c.to_string()));
        e.http_response = Some(HttpResponse {
            code: c,
            length: sent,
            message: None,
        });
    }
    let trace = if alb {
        f.get(17).copied().and_then(value)
    } else {
        None
    };
    e.http_request = Some(HttpRequest {
        user_agent: value(f[l.user_agent]).map(Cow::Borrowed),
        http_method: method.map(Cow::Borrowed),
        version: version.map(Cow::Borrowed),
        uid: trace.map(Cow::Borrowed),
        url: parsed_url,
        length: received,
        ..HttpRequest::default()
    });
    let sni = if alb { f.get(18).copied() } else { None };
    e.tls = tls(f[l.protocol], f[l.cipher], sni);
    if received.is_some() || sent.is_some() {
        e.traffic = Some(Traffic {
            bytes_in: received,
            bytes_out: sent,
            bytes: received.zip(sent).map(|(r, s)| r + s),
            packets: None,
        });
    }
    let elb = f[l.elb];
    e.load_balancer = Some(LoadBalancer {
        name: Some(Cow::Borrowed(lb_name(elb))),
        uid: alb.then_some(Cow::Borrowed(elb)),
        code,
        dst_endpoint: target_ep,
        error_message: if alb {
            f.get(24).copied().and_then(value).map(Cow::Borrowed)
        } else {
            None
        },
    });
    if alb {
        if let Some(start) = f.get(21).copied().and_then(value) {
            let start = crate::time::parse_rfc3339_ms(start).ok_or_else(|| {
                Bad(
                    "request_creation_time",
                    format!("`{start}` is not an ISO 8601 time"),
                )
            })?;
            e.start_time = Some(start);
            e.end_time = Some(time);
            if time >= start {
                e.duration = Some(time - start);
            }
        }
        e.unmapped.str("type", f[0]);
        keep(
            &mut e.unmapped,
            names,
            f,
            &[5, 6, 7, 9, 16, 19, 20, 22, 23, 25, 26, 27, 28, 29],
        );
    } else {
        keep(&mut e.unmapped, names, f, &[4, 5, 6, 8]);
    }
    Ok(e)
}

fn nlb_event<'a>(ctx: &'a Context, f: &[&'a str]) -> std::result::Result<Event<'a>, Bad> {
    let time = time("time", f[2])?;
    let mut e = Event::new(
        Class::NetworkActivity,
        6,
        "Traffic",
        time,
        metadata("Network Load Balancer"),
    );
    e.cloud = Some(cloud(ctx, &[f[12]]));
    e.src_endpoint = endpoint("client:port", f[5])?;
    e.dst_endpoint = endpoint("destination:port", f[6])?;
    let received = count("received_bytes", f[9])?;
    let sent = count("sent_bytes", f[10])?;
    if received.is_some() || sent.is_some() {
        e.traffic = Some(Traffic {
            bytes_in: received,
            bytes_out: sent,
            bytes: received.zip(sent).map(|(r, s)| r + s),
            packets: None,
        });
    }
    // A TLS alert from the client means the handshake or the session broke.
    let alert = value(f[11]);
    e.set_status(if alert.is_some() {
        Status::Failure
    } else {
        Status::Success
    });
    e.connection_info = Some(ConnectionInfo {
        protocol_num: Some(6),
        protocol_name: Some("tcp"),
        // Clients connect in to the listener.
        direction_id: Some(1),
        direction: Some("Inbound"),
        ..ConnectionInfo::default()
    });
    e.tls = tls(f[15], f[14], Some(f[17]));
    if let Some(start) = value(f[21]) {
        let start = self::time("tls_connection_creation_time", start)?;
        e.start_time = Some(start);
    }
    e.load_balancer = Some(LoadBalancer {
        name: Some(Cow::Borrowed(lb_name(f[3]))),
        uid: Some(Cow::Borrowed(f[3])),
        error_message: alert.map(Cow::Borrowed),
        ..LoadBalancer::default()
    });
    e.unmapped.str("type", f[0]);
    e.unmapped.str("version", f[1]);
    keep(
        &mut e.unmapped,
        &NLB_NAMES,
        f,
        &[4, 7, 8, 12, 13, 16, 18, 19],
    );
    // A list of quoted names: the splitter took off the outer quotes only, so they go
    // back on to keep the list as AWS wrote it.
    if let Some(list) = value(f[20]) {
        e.unmapped
            .str("alpn_client_preference_list", format!("\"{list}\""));
    }
    Ok(e)
}

fn map_line<'a>(ctx: &'a Context, f: &[&'a str]) -> std::result::Result<Event<'a>, Bad> {
    let first = f.first().copied().unwrap_or("");
    match first {
        "http" | "https" | "h2" | "grpcs" | "ws" | "wss" => {
            if f.len() < 16 {
                return Err(Bad(
                    "type",
                    format!("ALB line has {} fields, at least 16 expected", f.len()),
                ));
            }
            http_event(ctx, f, &ALB, true)
        }
        "tls" => {
            if f.len() < NLB_NAMES.len() {
                return Err(Bad(
                    "type",
                    format!(
                        "NLB line has {} fields, at least {} expected",
                        f.len(),
                        NLB_NAMES.len()
                    ),
                ));
            }
            nlb_event(ctx, f)
        }
        _ if first.as_bytes().first().is_some_and(u8::is_ascii_digit) => {
            if f.len() != CLB_NAMES.len() {
                return Err(Bad(
                    "time",
                    format!("Classic ELB line has {} fields, 15 expected", f.len()),
                ));
            }
            http_event(ctx, f, &CLB, false)
        }
        _ => Err(Bad(
            "type",
            format!("`{first}` is not an ALB request type, `tls` (NLB) or a Classic ELB time"),
        )),
    }
}

/// Whether `line` looks like an ELB access log line (for the content sniff).
pub fn looks_like_line(line: &str) -> bool {
    let mut t = line.split(' ');
    let first = t.next().unwrap_or("");
    let second = t.next().unwrap_or("");
    match first {
        "http" | "https" | "h2" | "grpcs" | "ws" | "wss" => {
            crate::time::parse_rfc3339_ms(second).is_some()
        }
        "tls" => second.starts_with(|c: char| c.is_ascii_digit()),
        _ => {
            crate::time::parse_rfc3339_ms(first).is_some()
                && t.next()
                    .is_some_and(|c| endpoint("", c).ok().flatten().is_some())
        }
    }
}

/// Reads an ELB access log file, one record a line.
pub fn normalize(input: &mut dyn BufRead, ctx: &Context, out: &mut dyn Emit) -> Result<()> {
    lines(input, ctx, out, map_line)
}

/// The line loop shared with S3 access logs: reads, splits and maps each line, and
/// sends it to exactly one of `event` or `reject`.
pub(crate) fn lines(
    input: &mut dyn BufRead,
    ctx: &Context,
    out: &mut dyn Emit,
    map: for<'a> fn(&'a Context, &[&'a str]) -> std::result::Result<Event<'a>, Bad>,
) -> Result<()> {
    let max_line = match ctx.max_record_bytes {
        0 => DEFAULT_MAX_LINE,
        n => n,
    };
    let mut reader = LineReader::new(input, max_line);
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
        let number = line.number;
        let bytes = line.bytes;
        if bytes.iter().all(|b| matches!(b, b' ' | b'\t')) {
            continue;
        }
        let reject = |reason: String, field: Option<&'static str>| Rejected {
            line: Some(number),
            record: None,
            field,
            reason,
            raw: bytes,
        };
        if line.truncated {
            out.reject(reject(
                format!("line is longer than {max_line} bytes"),
                None,
            ))?;
            continue;
        }
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t.trim_start_matches('\u{feff}'),
            Err(e) => {
                out.reject(reject(
                    format!("invalid UTF-8 at byte {}", e.valid_up_to()),
                    None,
                ))?;
                continue;
            }
        };
        let mut fields: Vec<&str> = Vec::with_capacity(40);
        if let Err(n) = split_fields(text, &mut fields) {
            out.reject(reject(
                format!("field {} opens a quote or bracket that never closes", n + 1),
                None,
            ))?;
            continue;
        }
        match map(ctx, &fields) {
            Ok(event) => out.event(&event)?,
            Err(Bad(field, reason)) => out.reject(reject(reason, Some(field)))?,
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sources::{KeyInfo, SourceKind};
    use serde_json::Value;
    use std::path::{Path, PathBuf};

    #[derive(Default)]
    pub(crate) struct Collect {
        pub events: Vec<Value>,
        pub rejects: Vec<(Option<u64>, Option<String>, String)>,
        pub skips: usize,
    }

    impl Emit for Collect {
        fn event(&mut self, event: &Event<'_>) -> Result<()> {
            let v = serde_json::to_value(event).expect("an event serialises");
            assert!(!v.to_string().contains("null"), "{v}");
            self.events.push(v);
            Ok(())
        }
        fn reject(&mut self, r: Rejected<'_>) -> Result<()> {
            self.rejects
                .push((r.line, r.field.map(str::to_owned), r.reason));
            Ok(())
        }
        fn skip(&mut self, _: &'static str) {
            self.skips += 1;
        }
    }

    pub(crate) fn ctx(source: SourceKind) -> Context {
        Context {
            object: "bucket/test.log".into(),
            key: KeyInfo {
                source: Some(source),
                account: None,
                region: None,
            },
            max_record_bytes: 8192,
        }
    }

    pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
                let path = entry.expect("directory entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    out.push(path);
                }
            }
        }
        out.sort();
        out
    }

    pub(crate) fn run_file(
        path: &Path,
        source: SourceKind,
        f: fn(&mut dyn BufRead, &Context, &mut dyn Emit) -> Result<()>,
    ) -> Collect {
        let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.display().to_string();
        let mut decoded = crate::framing::decode(file, None, None, &name).expect("decodes");
        let mut ctx = ctx(source);
        ctx.key = crate::sources::detect_from_key(&name);
        ctx.object = name.clone();
        let mut out = Collect::default();
        let result = f(decoded.reader.as_mut(), &ctx, &mut out);
        assert!(result.is_ok(), "{name}: {result:?}");
        out
    }

    const ALB29: &str = r#"https 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.086 0.048 0.037 200 200 0 57 "GET https://www.example.com:443/a?b=c HTTP/1.1" "curl/7.46.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337281-1d84f3d73c47ec4e58577259" "www.example.com" "arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012" 1 2018-07-02T22:22:48.364000Z "authenticate,forward" "-" "-" "10.0.0.1:80" "200" "-" "-""#;

    fn run_text(text: &str, source: SourceKind) -> Collect {
        let mut out = Collect::default();
        let mut input = text.as_bytes();
        normalize(&mut input, &ctx(source), &mut out).expect("no sink error");
        out
    }

    /// (name, line, Ok(json pointer checks) or Err(field that is rejected))
    #[test]
    fn lines_map_or_reject_as_the_table_says() {
        let h2 = ALB29
            .replacen("https ", "h2 ", 1)
            .replace("HTTP/1.1", "HTTP/2.0");
        let v6 = ALB29
            .replace("192.168.131.39:2817", "[2001:db8::7]:443")
            .replace(" 10.0.0.1:80 ", " [fe80::1]:80 ");
        let failed = ALB29
            .replace(" 0.048 0.037 200 200 ", " -1 -1 502 - ")
            .replace("\"GET ", "\"POST ");
        let quoted_ua = ALB29.replace(
            "\"curl/7.46.0\"",
            "\"Mozilla/5.0 (X11; Linux x86_64) \\\"quoted\\\" ok\"",
        );
        let unparsed = ALB29.replace("GET https://www.example.com:443/a?b=c HTTP/1.1", "- - -");
        let longer = format!("{ALB29} TID_1 \"host.example\" \"-\" new_field");
        let short25 = ALB29.rsplitn(5, ' ').last().unwrap_or_default().to_string();
        let clb = r#"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 - 0.000086 0.001048 0.001337 200 200 0 57 "PUT https://www.example.com:443/x HTTP/1.1" "curl/7.38.0" - -"#;
        let clb_tcp = "2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.001069 0.000028 0.000041 - - 82 305 \"- - - \" \"-\" - -";
        let nlb = r#"tls 2.0 2020-04-01T08:51:42 net/my-network-loadbalancer/c6e77e28c25b2234 g3d4b5e8bb8464cd 72.21.218.154:51341 172.100.100.185:443 5 2 98 246 - arn:aws:acm:us-east-2:671290407336:certificate/2a108f19-aded-46b0-8493-c63eb1ef4a99 - ECDHE-RSA-AES128-SHA tlsv12 - my-network-loadbalancer-c6e77e28c25b2234.elb.us-east-2.amazonaws.com h2 h2 "h2","http/1.1" 2020-04-01T08:51:20"#;
        let nlb_alert = nlb.replace(" 98 246 - ", " 0 0 40 ");
        type Check = &'static [(&'static str, &'static str)];
        let cases: Vec<(&str, String, std::result::Result<Check, &str>)> = vec![
            (
                "alb 29 fields",
                ALB29.into(),
                Ok(&[
                    ("/class_uid", "4002"),
                    ("/activity_id", "3"),
                    ("/status_id", "1"),
                    ("/src_endpoint/ip", "\"192.168.131.39\""),
                    ("/dst_endpoint/port", "80"),
                    ("/http_request/url/hostname", "\"www.example.com\""),
                    ("/http_request/url/query_string", "\"b=c\""),
                    ("/http_response/code", "200"),
                    ("/tls/sni", "\"www.example.com\""),
                    ("/cloud/region", "\"us-east-2\""),
                    ("/cloud/account/uid", "\"123456789012\""),
                    ("/load_balancer/name", "\"my-loadbalancer\""),
                    ("/duration", "11822"),
                    ("/unmapped/actions_executed", "\"authenticate,forward\""),
                ]),
            ),
            (
                "h2",
                h2,
                Ok(&[
                    ("/http_request/version", "\"HTTP/2.0\""),
                    ("/unmapped/type", "\"h2\""),
                ]),
            ),
            (
                "ipv6",
                v6,
                Ok(&[
                    ("/src_endpoint/ip", "\"2001:db8::7\""),
                    ("/src_endpoint/port", "443"),
                    ("/dst_endpoint/ip", "\"fe80::1\""),
                ]),
            ),
            (
                "502 with -1 times",
                failed,
                Ok(&[
                    ("/status_id", "2"),
                    ("/activity_id", "6"),
                    ("/http_response/code", "502"),
                ]),
            ),
            (
                "quoted user agent",
                quoted_ua,
                Ok(&[(
                    "/http_request/user_agent",
                    "\"Mozilla/5.0 (X11; Linux x86_64) \\\\\\\"quoted\\\\\\\" ok\"",
                )]),
            ),
            ("unparsed request", unparsed, Ok(&[("/activity_id", "99")])),
            (
                "30+ fields",
                longer,
                Ok(&[
                    ("/unmapped/conn_trace_id", "\"TID_1\""),
                    ("/unmapped/field_33", "\"new_field\""),
                ]),
            ),
            ("25 fields", short25, Ok(&[("/activity_id", "3")])),
            (
                "classic",
                clb.into(),
                Ok(&[
                    ("/activity_id", "7"),
                    (
                        "/metadata/product/feature/name",
                        "\"Classic Load Balancer\"",
                    ),
                ]),
            ),
            (
                "classic tcp",
                clb_tcp.into(),
                Ok(&[("/activity_id", "99"), ("/status_id", "0")]),
            ),
            (
                "nlb tls",
                nlb.into(),
                Ok(&[
                    ("/class_uid", "4001"),
                    ("/time", "1585731102000"),
                    ("/tls/version", "\"tlsv12\""),
                    (
                        "/unmapped/alpn_client_preference_list",
                        "\"\\\"h2\\\",\\\"http/1.1\\\"\"",
                    ),
                    ("/cloud/account/uid", "\"671290407336\""),
                ]),
            ),
            (
                "nlb alert",
                nlb_alert,
                Ok(&[
                    ("/status_id", "2"),
                    ("/load_balancer/error_message", "\"40\""),
                ]),
            ),
            (
                "bad ip",
                ALB29.replace("192.168.131.39:2817", "x.x.x.x:1"),
                Err("client:port"),
            ),
            (
                "bad time",
                ALB29.replace("2018-07-02T22:23:00.186641Z", "yesterday"),
                Err("time"),
            ),
            (
                "bad status",
                ALB29.replace(" 200 200 0 57", " 2x0 200 0 57"),
                Err("elb_status_code"),
            ),
            (
                "too short",
                "https 2018-07-02T22:23:00Z x".into(),
                Err("type"),
            ),
            ("unknown type", "gopher 1 2 3".into(), Err("type")),
            ("classic wrong width", format!("{clb} extra"), Err("time")),
        ];
        for (name, line, want) in cases {
            let out = run_text(&line, SourceKind::Elb);
            match want {
                Ok(checks) => {
                    assert!(out.rejects.is_empty(), "{name}: {:?}", out.rejects);
                    assert_eq!(out.events.len(), 1, "{name}");
                    let e = &out.events[0];
                    for (ptr, want) in checks {
                        let got = e.pointer(ptr).map(|v| v.to_string());
                        assert_eq!(got.as_deref(), Some(*want), "{name} {ptr}: {e}");
                    }
                }
                Err(field) => {
                    assert!(out.events.is_empty(), "{name}");
                    assert_eq!(out.rejects.len(), 1, "{name}");
                    assert_eq!(
                        out.rejects[0].1.as_deref(),
                        Some(field),
                        "{name}: {:?}",
                        out.rejects
                    );
                }
            }
        }
    }

    #[test]
    fn fields_split_on_spaces_quotes_and_brackets() {
        let cases: [(&str, std::result::Result<&[&str], usize>); 6] = [
            (r#"a "b c" d"#, Ok(&["a", "b c", "d"])),
            (r#""h2","http/1.1" x"#, Ok(&["h2\",\"http/1.1", "x"])),
            (
                "[06/Feb/2019:00:00:38 +0000] y",
                Ok(&["[06/Feb/2019:00:00:38 +0000]", "y"]),
            ),
            ("[::1]:80 z", Ok(&["[::1]:80", "z"])),
            (r#"a "open"#, Err(1)),
            (r#""" -"#, Ok(&["", "-"])),
        ];
        for (line, want) in cases {
            let mut f = Vec::new();
            let got = split_fields(line, &mut f).map(|_| f.clone());
            assert_eq!(got.as_deref().map_err(|e| *e), want, "{line}");
        }
    }

    #[test]
    fn our_samples_map_whole() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/elb");
        let mut total = 0;
        for path in files_under(&dir) {
            let key = crate::sources::detect_from_key(&path.display().to_string());
            assert_eq!(key.source, Some(SourceKind::Elb), "{}", path.display());
            assert!(
                key.account.is_some() && key.region.is_some(),
                "{}",
                path.display()
            );
            let out = run_file(&path, SourceKind::Elb, normalize);
            assert!(
                out.rejects.is_empty(),
                "{}: {:?}",
                path.display(),
                out.rejects
            );
            total += out.events.len();
        }
        assert_eq!(total, 9);
    }

    /// $MUSTER_CORPUS/{alb,nlb,elb}: counts per the samples README, none quarantined.
    #[test]
    fn corpus_samples() {
        let Some(corpus) = std::env::var_os("MUSTER_CORPUS") else {
            eprintln!("MUSTER_CORPUS is not set: skipping the ELB corpus test");
            return;
        };
        let known = [
            ("otel_alb_al_valid_logs.log", 2),
            ("clo_elb.log", 2),
            ("clo_elb.log.gz", 2),
            ("clo_microbatch_alb.log.gz", 2),
            ("otel_nlb_al_valid_logs.log", 1),
            ("otel_clb_al_valid_logs.log", 2),
        ];
        let mut seen = 0;
        for sub in ["alb", "nlb", "elb"] {
            for path in files_under(&Path::new(&corpus).join(sub)) {
                let name = path
                    .file_name()
                    .and_then(|f| f.to_str())
                    .unwrap_or("")
                    .to_owned();
                let out = run_file(&path, SourceKind::Elb, normalize);
                assert!(out.rejects.is_empty(), "{name}: {:?}", out.rejects);
                if let Some((_, n)) = known.iter().find(|(k, _)| *k == name) {
                    assert_eq!(out.events.len(), *n, "{name}");
                    seen += 1;
                }
            }
        }
        assert_eq!(seen, known.len());
    }
}
