//! Amazon S3 server access logs, mapped to OCSF 6003 API Activity.
//!
//! Why API Activity and not HTTP Activity: each record is one S3 API operation
//! (`REST.GET.OBJECT`, `REST.PUT.ACL`, `BATCH.DELETE.OBJECT`, lifecycle `S3.EXPIRE.OBJECT`)
//! on a bucket or object, by a requester identity, with S3's request id and error
//! code: the shape of an API call on a resource, as CloudTrail data events record the
//! same operations. Some records (lifecycle, replication) carry no HTTP request at all.
//!
//! Format: space-separated, time in brackets (`[06/Feb/2019:00:00:38 +0000]`), the
//! request line, referrer and user agent quoted (they may hold spaces), and fields
//! AWS appended over the years (signature version ... access point ARN, ACL required)
//! optional at the end. Files are delivered under a prefix the bucket owner chose, not
//! under `AWSLogs/`, so the content sniff finds them.

use super::elb::{lines, url, value, Bad};
use super::{Context, Emit};
use crate::error::Result;
use crate::ocsf::{
    Actor, Api, ApiRequest, ApiResponse, Class, Cloud, Endpoint, Event, HttpRequest, Metadata,
    Product, Resource, Service, Status, User,
};
use std::borrow::Cow;
use std::io::BufRead;

const NAMES: [&str; 26] = [
    "bucket_owner",
    "bucket",
    "time",
    "remote_ip",
    "requester",
    "request_id",
    "operation",
    "key",
    "request_uri",
    "http_status",
    "error_code",
    "bytes_sent",
    "object_size",
    "total_time",
    "turn_around_time",
    "referer",
    "user_agent",
    "version_id",
    "host_id",
    "signature_version",
    "cipher_suite",
    "authentication_type",
    "host_header",
    "tls_version",
    "access_point_arn",
    "acl_required",
];

/// Records before `user_agent` existed had 16 fields... we require the ones every
/// documented version has: up to `turn_around_time`.
const MIN_FIELDS: usize = 15;

/// `[06/Feb/2019:00:00:38 +0000]` → epoch ms.
fn bracket_time(s: &str) -> Option<i64> {
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    let (stamp, zone) = inner.split_once(' ')?;
    let b = stamp.as_bytes();
    // ASCII only, so that the byte slices below fall on character boundaries.
    if !stamp.is_ascii()
        || !zone.is_ascii()
        || b.len() != 20
        || b[2] != b'/'
        || b[6] != b'/'
        || b[11] != b':'
    {
        return None;
    }
    let month = match &stamp[3..6] {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let zb = zone.as_bytes();
    if zb.len() != 5 || !matches!(zb[0], b'+' | b'-') {
        return None;
    }
    let iso = format!(
        "{}-{:02}-{}T{}{}:{}",
        &stamp[7..11],
        month,
        &stamp[0..2],
        &stamp[12..],
        &zone[..3],
        &zone[3..]
    );
    crate::time::parse_rfc3339_ms(&iso)
}

/// API Activity: 1 Create, 2 Read, 3 Update, 4 Delete, 99 Other.
fn activity(operation: &str) -> (u32, &'static str) {
    let verb = operation.split('.').nth(1).unwrap_or("");
    match verb {
        "GET" | "HEAD" | "OPTIONS" => (2, "Read"),
        "PUT" | "POST" | "COPY" => (1, "Create"),
        "DELETE" | "EXPIRE" => (4, "Delete"),
        "TRANSITION" => (3, "Update"),
        _ => (99, "Other"),
    }
}

/// Region from the host header (`<bucket>.s3.<region>.amazonaws.com`, `s3-<region>`).
fn region_of_host(host: &str) -> Option<&str> {
    let mut parts = host.split('.').rev();
    (parts.next()? == "com").then_some(())?;
    (parts.next()? == "amazonaws").then_some(())?;
    let candidate = parts.next()?;
    let r = candidate.strip_prefix("s3-").unwrap_or(candidate);
    (r.contains('-') && r.ends_with(|c: char| c.is_ascii_digit())).then_some(r)
}

fn map_line<'a>(ctx: &'a Context, f: &[&'a str]) -> std::result::Result<Event<'a>, Bad> {
    if f.len() < MIN_FIELDS {
        return Err(Bad(
            "bucket_owner",
            format!(
                "S3 access log line has {} fields, at least {MIN_FIELDS} expected",
                f.len()
            ),
        ));
    }
    let get = |i: usize| f.get(i).copied().and_then(value);
    let time = bracket_time(f[2]).ok_or_else(|| {
        Bad(
            "time",
            format!("`{}` is not [dd/Mon/yyyy:HH:MM:SS +zzzz]", f[2]),
        )
    })?;
    let operation = f[6];
    let (activity_id, activity_name) = activity(operation);
    let mut metadata = Metadata::new(Product::aws("Amazon S3"));
    metadata.profiles = &["cloud"];
    metadata.log_name = Some(Cow::Borrowed("server_access_log"));
    metadata.uid = get(5).map(Cow::Borrowed);
    let mut e = Event::new(
        Class::ApiActivity,
        activity_id,
        activity_name,
        time,
        metadata,
    );

    let status = match get(9) {
        None => None,
        Some(s) => match s.parse::<u32>() {
            Ok(c) if (100..1000).contains(&c) => Some(c),
            _ => {
                return Err(Bad(
                    "http_status",
                    format!("`{s}` is not an HTTP status code"),
                ))
            }
        },
    };
    match status {
        Some(c) if c >= 400 => e.set_status(Status::Failure),
        Some(_) => e.set_status(Status::Success),
        None => e.set_status(Status::Unknown),
    }
    e.status_code = get(9).map(Cow::Borrowed);
    for (i, name) in [
        (11, "bytes_sent"),
        (12, "object_size"),
        (13, "total_time"),
        (14, "turn_around_time"),
    ] {
        if let Some(v) = get(i) {
            let n: i64 = v
                .parse()
                .map_err(|_| Bad(name, format!("`{v}` is not a number")))?;
            if i == 13 {
                e.duration = Some(n);
            }
            e.unmapped.int(name, n);
        }
    }

    let access_point = get(24);
    let region = ctx
        .key
        .region
        .as_deref()
        .or_else(|| {
            access_point
                .and_then(|a| a.split(':').nth(3))
                .filter(|r| !r.is_empty())
        })
        .or_else(|| get(22).and_then(region_of_host));
    let account = ctx.key.account.as_deref().or_else(|| {
        access_point
            .and_then(|a| a.split(':').nth(4))
            .filter(|a| a.len() == 12)
    });
    e.cloud = Some(Cloud::aws(
        region.map(Cow::Borrowed),
        account.map(Cow::Borrowed),
    ));

    // Anonymous requests have `-` as requester; the actor is still required.
    let requester = get(4).unwrap_or("anonymous");
    let is_arn = requester.starts_with("arn:");
    e.actor = Some(Actor {
        user: Some(User {
            uid: Some(Cow::Borrowed(requester)),
            type_id: (requester == "anonymous").then_some(99),
            type_: (requester == "anonymous").then_some(Cow::Borrowed("Anonymous")),
            name: is_arn
                .then(|| requester.rsplit('/').next())
                .flatten()
                .map(Cow::Borrowed),
            ..User::default()
        }),
        ..Actor::default()
    });
    e.src_endpoint = Some(Endpoint {
        ip: get(3)
            .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
            .map(Cow::Borrowed),
        // S3 itself (lifecycle, replication) acts without a client address.
        svc_name: get(3)
            .is_none()
            .then_some(Cow::Borrowed("s3.amazonaws.com")),
        ..Endpoint::default()
    });
    if let Some(ip) = get(3).filter(|ip| ip.parse::<std::net::IpAddr>().is_err()) {
        return Err(Bad("remote_ip", format!("`{ip}` is not an IP address")));
    }
    if let Some(host) = get(22) {
        e.dst_endpoint = Some(Endpoint {
            hostname: Some(Cow::Borrowed(host)),
            ..Endpoint::default()
        });
    }
    let error = get(10);
    e.api = Some(Api {
        operation: Cow::Borrowed(operation),
        service: Some(Service {
            name: Cow::Borrowed("s3.amazonaws.com"),
        }),
        request: get(5).map(|id| ApiRequest {
            uid: Cow::Borrowed(id),
        }),
        response: error.map(|code| ApiResponse {
            error: Some(Cow::Borrowed(code)),
            error_message: None,
        }),
        version: None,
    });

    let (method, target, version) = match get(8) {
        Some(req) => {
            // The URI may itself hold spaces: the method is the first word and the
            // version the last, the rest is the target.
            let (method, rest) = req.split_once(' ').unwrap_or((req, ""));
            let (target, version) = match rest.rsplit_once(' ') {
                Some((t, v)) if v.starts_with("HTTP/") => (t, Some(v)),
                _ => (rest, None),
            };
            (value(method), value(target), version)
        }
        None => (None, None, None),
    };
    if method.is_some() || get(16).is_some() {
        e.http_request = Some(HttpRequest {
            http_method: method.map(Cow::Borrowed),
            url: target.map(url),
            version: version.map(Cow::Borrowed),
            user_agent: get(16).map(Cow::Borrowed),
            referrer: get(15).map(Cow::Borrowed),
            ..HttpRequest::default()
        });
    }

    let bucket = get(1);
    let mut resources = Vec::new();
    if let Some(b) = bucket {
        resources.push(Resource {
            name: Some(Cow::Borrowed(b)),
            type_: Some(Cow::Borrowed("AWS::S3::Bucket")),
            ..Resource::default()
        });
    }
    if let Some(k) = get(7) {
        resources.push(Resource {
            name: Some(Cow::Borrowed(k)),
            uid: get(17).map(Cow::Borrowed),
            type_: Some(Cow::Borrowed("AWS::S3::Object")),
            ..Resource::default()
        });
    }
    if !resources.is_empty() {
        e.resources = Some(resources);
    }
    for i in [0, 18, 19, 20, 21, 23, 24, 25] {
        if let Some(v) = get(i) {
            e.unmapped.str(NAMES[i], v);
        }
    }
    for (i, v) in f.iter().enumerate().skip(NAMES.len()) {
        if let Some(v) = value(v) {
            e.unmapped.str(format!("field_{}", i + 1), v);
        }
    }
    Ok(e)
}

/// Whether `line` looks like an S3 server access log record: a canonical user id
/// (hex) as bucket owner, a bucket name, then the bracketed time.
pub fn looks_like_line(line: &str) -> bool {
    let mut t = line.splitn(3, ' ');
    let owner = t.next().unwrap_or("");
    let _bucket = t.next();
    let rest = t.next().unwrap_or("");
    owner.len() >= 32
        && owner.bytes().all(|c| c.is_ascii_hexdigit())
        && rest
            .split_once(']')
            .is_some_and(|(t, _)| bracket_time(&format!("{t}]")).is_some())
}

/// Reads an S3 server access log file, one record a line.
pub fn normalize(input: &mut dyn BufRead, ctx: &Context, out: &mut dyn Emit) -> Result<()> {
    lines(input, ctx, out, map_line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::elb::tests::{ctx, files_under, run_file, Collect};
    use crate::sources::SourceKind;
    use std::path::Path;

    const DOC: &str = r#"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be amzn-s3-demo-bucket1 [06/Feb/2019:00:00:38 +0000] 192.0.2.3 79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be 3E57427F3EXAMPLE REST.GET.VERSIONING - "GET /amzn-s3-demo-bucket1?versioning HTTP/1.1" 200 - 113 - 7 - "-" "S3Console/0.4" - s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader amzn-s3-demo-bucket1.s3.us-west-1.amazonaws.com TLSV1.2 arn:aws:s3:us-west-1:123456789012:accesspoint/example-AP Yes"#;

    #[test]
    fn lines_map_or_reject_as_the_table_says() {
        let spaces = DOC
            .replace("REST.GET.VERSIONING -", "REST.PUT.OBJECT my%20photo.jpg")
            .replace(
                "GET /amzn-s3-demo-bucket1?versioning",
                "PUT /amzn-s3-demo-bucket1/my photo.jpg?x=1",
            );
        let denied = DOC
            .replace(" 200 - 113 ", " 403 AccessDenied 243 ")
            .replace(
                "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be 3E57",
                "- 3E57",
            );
        let v6 = DOC.replace("192.0.2.3", "2001:db8::1");
        let old = DOC.splitn(21, ' ').take(20).collect::<Vec<_>>().join(" ");
        let lifecycle = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be bucket [06/Feb/2019:00:00:38 +0000] - AmazonS3 3E57427F3EXAMPLE S3.EXPIRE.OBJECT old.log \"-\" - - - 512 - - \"-\" \"-\" - - - - - - - - -";
        let more = format!("{DOC} future1");
        type Check = &'static [(&'static str, &'static str)];
        let cases: Vec<(&str, String, std::result::Result<Check, &str>)> = vec![
            (
                "doc example",
                DOC.into(),
                Ok(&[
                    ("/class_uid", "6003"),
                    ("/activity_id", "2"),
                    ("/time", "1549411238000"),
                    ("/api/operation", "\"REST.GET.VERSIONING\""),
                    ("/cloud/region", "\"us-west-1\""),
                    ("/cloud/account/uid", "\"123456789012\""),
                    ("/http_request/url/query_string", "\"versioning\""),
                    ("/status_id", "1"),
                    ("/unmapped/acl_required", "\"Yes\""),
                ]),
            ),
            (
                "uri with spaces",
                spaces,
                Ok(&[
                    ("/activity_id", "1"),
                    (
                        "/http_request/url/path",
                        "\"/amzn-s3-demo-bucket1/my photo.jpg\"",
                    ),
                    ("/http_request/version", "\"HTTP/1.1\""),
                    ("/resources/1/name", "\"my%20photo.jpg\""),
                ]),
            ),
            (
                "anonymous denied",
                denied,
                Ok(&[
                    ("/status_id", "2"),
                    ("/api/response/error", "\"AccessDenied\""),
                    ("/actor/user/type_id", "99"),
                ]),
            ),
            ("ipv6", v6, Ok(&[("/src_endpoint/ip", "\"2001:db8::1\"")])),
            (
                "17 fields (older format)",
                old,
                Ok(&[("/http_request/user_agent", "\"S3Console/0.4\"")]),
            ),
            (
                "lifecycle",
                lifecycle.into(),
                Ok(&[("/activity_id", "4"), ("/status_id", "0")]),
            ),
            (
                "appended field",
                more,
                Ok(&[("/unmapped/field_27", "\"future1\"")]),
            ),
            (
                "bad time",
                DOC.replace("06/Feb/2019", "06/Fev/2019"),
                Err("time"),
            ),
            (
                "bad status",
                DOC.replace(" 200 - 113", " OK - 113"),
                Err("http_status"),
            ),
            (
                "short",
                "abc def [06/Feb/2019:00:00:38 +0000]".into(),
                Err("bucket_owner"),
            ),
            (
                "bad ip",
                DOC.replace("192.0.2.3", "X.X.X.X"),
                Err("remote_ip"),
            ),
        ];
        for (name, line, want) in cases {
            let mut out = Collect::default();
            let mut input = line.as_bytes();
            normalize(&mut input, &ctx(SourceKind::S3Access), &mut out).expect("no sink error");
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
    fn sniffing_and_times() {
        assert!(looks_like_line(DOC));
        assert!(!looks_like_line("hello world [x]"));
        assert_eq!(
            bracket_time("[06/Feb/2019:02:00:38 +0200]"),
            Some(1_549_411_238_000)
        );
        assert_eq!(bracket_time("[06/Feb/2019:00:00:38]"), None);
    }

    #[test]
    fn our_samples_map_whole() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/s3access");
        let mut total = 0;
        for path in files_under(&dir) {
            let out = run_file(&path, SourceKind::S3Access, normalize);
            assert!(
                out.rejects.is_empty(),
                "{}: {:?}",
                path.display(),
                out.rejects
            );
            total += out.events.len();
        }
        assert_eq!(total, 6);
    }

    #[test]
    fn corpus_samples() {
        let Some(corpus) = std::env::var_os("MUSTER_CORPUS") else {
            eprintln!("MUSTER_CORPUS is not set: skipping the S3 access log corpus test");
            return;
        };
        let known = [
            ("otel_valid_s3_access_log.log", 1),
            ("loki_s3accesslog.log", 1),
        ];
        let mut seen = 0;
        for path in files_under(&Path::new(&corpus).join("s3access")) {
            let name = path
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or("")
                .to_owned();
            let out = run_file(&path, SourceKind::S3Access, normalize);
            assert!(out.rejects.is_empty(), "{name}: {:?}", out.rejects);
            if let Some((_, n)) = known.iter().find(|(k, _)| *k == name) {
                assert_eq!(out.events.len(), *n, "{name}");
                seen += 1;
            }
        }
        assert_eq!(seen, known.len());
    }
}
