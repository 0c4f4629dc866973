//! AWS WAF (v2) logs delivered to S3: one JSON object a line, mapped to OCSF 4002
//! HTTP Activity with the `security_control` profile.
//!
//! Each line is read into borrowed `(key, &RawValue)` pairs: the fields with an OCSF
//! home are decoded from those, every other field is copied verbatim into `unmapped`
//! under its own name (JSON `null`s, which WAF writes for absent fields, are dropped).
//!
//! Mapping decisions worth knowing:
//! - `action` is the terminating decision: ALLOW → action Allowed / disposition
//!   Allowed; BLOCK → Denied / Blocked; CAPTCHA and CHALLENGE → Denied / Captcha or
//!   Challenge (a request that ends on one of them was answered with the puzzle, not
//!   forwarded); COUNT → Allowed / Count. Any other value → Other / Other, and the
//!   value stays in `unmapped.action`.
//! - `terminatingRuleId`/`terminatingRuleType` → `firewall_rule.uid`/`type`; the rule
//!   group lists, rate-based rules, non-terminating matches, match details and
//!   `labels` have no OCSF 1.1.0 home and stay in `unmapped` as WAF wrote them.
//! - HTTP Activity requires `http_response` with a `code`, but WAF only answers the
//!   requests it stops: `responseCodeSent` when a custom response was configured,
//!   otherwise WAF's documented defaults (BLOCK 403, CAPTCHA 405, CHALLENGE 202).
//!   A forwarded request's response comes from the origin and is not in the log: its
//!   code is written as 0 with `http_response.message` saying so.
//! - `httpRequest.clientIp` must be an address. AWS's documentation and test samples
//!   carry placeholders such as `X.X.X.X`; such a record has no client to put in
//!   `src_endpoint` (required, and needing at least an address or a name), so it is
//!   quarantined with the reason rather than written with an invented client.
//! - The destination is the web ACL's protected resource: the `Host` header (without
//!   a port) as `dst_endpoint.hostname`, `httpSourceName` (ALB, APIGW, CF, APPSYNC,
//!   ...) as `svc_name` and `httpSourceId` as `uid`.
//! - Region and account come from `webaclId` (an ARN; CloudFront web ACLs are
//!   `global` and live in us-east-1), falling back to the object key.

use super::json::{bad, integer, keep, text, Bad, Fields};
use super::{Context, Emit, Rejected};
use crate::error::{Error, Location, Result};
use crate::framing::LineReader;
use crate::ocsf::{
    Class, Cloud, Endpoint, Event, FirewallRule, HttpHeader, HttpRequest, HttpResponse,
    Location as GeoLocation, Metadata, Product, Str, Unmapped, Url, Value,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::io::BufRead;

/// Used when the context leaves the limit unset (0). WAF logs every header of a
/// request, so lines of tens of KB occur; 1 MiB leaves room without being unbounded.
const DEFAULT_MAX_LINE: usize = 1024 * 1024;

/// OCSF's timestamp range in epoch ms: [2000-01-01, 2100-01-01).
const MIN_MS: i64 = 946_684_800_000;
const MAX_MS: i64 = 4_102_444_800_000;

/// Whether `s` is a hostname by the OCSF `hostname_t` rule: dot-separated labels of
/// letters, digits and inner hyphens.
pub(super) fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

/// The `Host` header without its port, when it is a hostname.
fn host_name(host: &str) -> Option<&str> {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    is_hostname(name).then_some(name)
}

/// What a terminating action means: (action_id, action, disposition_id, disposition,
/// the response code WAF sends by default when it stops the request).
fn decision(action: &str) -> (u32, &'static str, u32, &'static str, Option<u32>) {
    match action {
        "ALLOW" => (1, "Allowed", 1, "Allowed", None),
        "BLOCK" => (2, "Denied", 2, "Blocked", Some(403)),
        "COUNT" => (1, "Allowed", 20, "Count", None),
        "CAPTCHA" => (2, "Denied", 22, "Captcha", Some(405)),
        "CHALLENGE" => (2, "Denied", 23, "Challenge", Some(202)),
        _ => (99, "Other", 99, "Other", None),
    }
}

/// Region and account of a web ACL ARN, `arn:aws:wafv2:<region>:<account>:<scope>/...`.
fn arn_parts(arn: &str) -> (Option<&str>, Option<&str>) {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_), Some(_), region, account) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return (None, None);
    };
    let account = account.filter(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()));
    (region.filter(|r| !r.is_empty()), account)
}

/// The parts of `httpRequest` with an OCSF home; the rest is kept.
#[derive(Default)]
struct Request<'a> {
    client_ip: Option<Str<'a>>,
    country: Option<Str<'a>>,
    headers: Vec<HttpHeader<'a>>,
    uri: Option<Str<'a>>,
    args: Option<Str<'a>>,
    version: Option<Str<'a>>,
    method: Option<Str<'a>>,
    request_id: Option<Str<'a>>,
    rest: Unmapped<'a>,
}

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    value: Option<Cow<'a, str>>,
}

fn request<'a>(raw: &'a RawValue) -> std::result::Result<Request<'a>, Bad> {
    let fields: Fields<'a> = serde_json::from_str(raw.get())
        .map_err(|e| bad("httpRequest", format!("not a JSON object: {e}")))?;
    let mut r = Request::default();
    for (key, value) in fields.0 {
        match key {
            "clientIp" => r.client_ip = text("httpRequest.clientIp", value)?,
            "country" => r.country = text("httpRequest.country", value)?.filter(|c| c != "-"),
            "uri" => r.uri = text("httpRequest.uri", value)?,
            "args" => r.args = text("httpRequest.args", value)?,
            "httpVersion" => r.version = text("httpRequest.httpVersion", value)?,
            "httpMethod" => r.method = text("httpRequest.httpMethod", value)?,
            "requestId" => r.request_id = text("httpRequest.requestId", value)?,
            "headers" if value.get() != "null" => {
                let headers: Vec<Header<'a>> = serde_json::from_str(value.get()).map_err(|e| {
                    bad(
                        "httpRequest.headers",
                        format!("not a list of name/value pairs: {e}"),
                    )
                })?;
                r.headers = headers
                    .into_iter()
                    .map(|h| HttpHeader {
                        name: h.name,
                        // A header sent without a value is still a header.
                        value: h.value.unwrap_or(Cow::Borrowed("")),
                    })
                    .collect();
            }
            _ => keep(&mut r.rest, key, value),
        }
    }
    Ok(r)
}

/// Maps one WAF record and sends it; `Err(Bad)` when it cannot be mapped.
fn map_record<'a>(
    fields: Fields<'a>,
    ctx: &'a Context,
    out: &mut dyn Emit,
) -> std::result::Result<Result<()>, Bad> {
    let mut time = None;
    let mut action_raw = None;
    let mut rule_id = None;
    let mut rule_type = None;
    let mut source_name = None;
    let mut source_id = None;
    let mut webacl = None;
    let mut format_version = None;
    let mut response_code = None;
    let mut req = None;
    let mut unmapped = Unmapped::default();
    for (key, value) in fields.0 {
        match key {
            "timestamp" => time = integer("timestamp", value)?,
            "action" => {
                action_raw = text("action", value)?;
            }
            "terminatingRuleId" => rule_id = text("terminatingRuleId", value)?,
            "terminatingRuleType" => rule_type = text("terminatingRuleType", value)?,
            "httpSourceName" => source_name = text("httpSourceName", value)?,
            "httpSourceId" => source_id = text("httpSourceId", value)?,
            "formatVersion" => format_version = integer("formatVersion", value)?,
            "responseCodeSent" => response_code = integer("responseCodeSent", value)?,
            "httpRequest" => req = Some(request(value)?),
            "webaclId" => {
                webacl = text("webaclId", value)?;
                unmapped.raw(key, value);
            }
            _ => keep(&mut unmapped, key, value),
        }
    }
    let time = time.ok_or_else(|| bad("timestamp", "the record has no timestamp"))?;
    if !(MIN_MS..MAX_MS).contains(&time) {
        return Err(bad(
            "timestamp",
            format!("{time} is not a time in epoch milliseconds between 2000 and 2100"),
        ));
    }
    let action_text = action_raw.ok_or_else(|| bad("action", "the record has no action"))?;
    let Some(mut req) = req else {
        return Err(bad("httpRequest", "the record has no httpRequest"));
    };
    let client_ip = req
        .client_ip
        .take()
        .ok_or_else(|| bad("httpRequest.clientIp", "the request has no client address"))?;
    if client_ip.parse::<std::net::IpAddr>().is_err() {
        return Err(bad(
            "httpRequest.clientIp",
            format!(
                "{client_ip:.64} is not an IP address (a documentation placeholder?): \
                 the event would have no client"
            ),
        ));
    }
    let response_code = response_code
        .map(|c| {
            u32::try_from(c)
                .ok()
                .filter(|c| (100..1000).contains(c))
                .ok_or_else(|| bad("responseCodeSent", format!("{c} is not an HTTP status")))
        })
        .transpose()?;

    let (activity_id, activity_name) = crate::ocsf::http_activity(req.method.as_deref());
    // 99 Other is named after the method itself (PATCH, PROPFIND, ...).
    let activity_name: Str<'a> = match (activity_id, &req.method) {
        (99, Some(method)) => method.clone(),
        _ => Cow::Borrowed(activity_name),
    };

    let mut metadata = Metadata::new(Product::aws("AWS WAF"));
    metadata.profiles = &["cloud", "security_control"];
    metadata.log_version = format_version.map(|v| Cow::Owned(v.to_string()));

    let mut event = Event::new(
        Class::HttpActivity,
        activity_id,
        activity_name,
        time,
        metadata,
    );
    let (action_id, action, disposition_id, disposition, default_code) = decision(&action_text);
    event.action_id = Some(action_id);
    event.action = Some(action);
    event.disposition_id = Some(disposition_id);
    event.disposition = Some(disposition);
    if action_id == 99 {
        unmapped.str("action", action_text);
    }

    let (arn_region, arn_account) = webacl.as_deref().map(arn_parts).unwrap_or((None, None));
    // CloudFront (global) web ACLs are managed in us-east-1.
    let region = match arn_region {
        Some("global") => Some("us-east-1".to_owned()),
        Some(r) => Some(r.to_owned()),
        None => ctx.key.region.clone(),
    };
    let account = arn_account
        .map(str::to_owned)
        .or_else(|| ctx.key.account.clone());
    event.cloud = Some(Cloud::aws(region.map(Cow::Owned), account.map(Cow::Owned)));

    event.firewall_rule = (rule_id.is_some() || rule_type.is_some()).then(|| FirewallRule {
        uid: rule_id.clone(),
        name: rule_id.is_none().then(|| rule_type.clone()).flatten(),
        type_: rule_type,
        ..FirewallRule::default()
    });

    event.src_endpoint = Some(Endpoint {
        ip: Some(client_ip),
        location: req.country.take().map(|country| GeoLocation {
            country: Some(country),
        }),
        ..Endpoint::default()
    });

    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.clone())
            .filter(|v| !v.is_empty())
    };
    let host = header("host");
    let user_agent = header("user-agent");
    let referrer = header("referer");
    let hostname = host.as_deref().and_then(host_name).map(|h| h.to_owned());
    event.dst_endpoint = Some(Endpoint {
        hostname: hostname.clone().map(Cow::Owned),
        svc_name: source_name,
        uid: source_id.clone(),
        ..Endpoint::default()
    });
    if hostname.is_none()
        && source_id.is_none()
        && event
            .dst_endpoint
            .as_ref()
            .is_some_and(|e| e.svc_name.is_none())
    {
        return Err(bad(
            "httpRequest.headers",
            "neither a Host header, httpSourceName nor httpSourceId names the destination",
        ));
    }

    let url = req.uri.take().map(|path| Url {
        hostname: hostname.map(Cow::Owned),
        path: Some(path),
        query_string: req.args.take(),
        ..Url::default()
    });
    // OCSF 1.1.0 allows only the eight methods of its activities in `http_method`;
    // any other (PATCH, WebDAV verbs) is the activity name and kept as WAF wrote it.
    let method = match (activity_id, req.method.take()) {
        (99, Some(other)) => {
            req.rest.str("httpMethod", other);
            None
        }
        (_, m) => m,
    };
    if let Some(args) = req.args.take() {
        req.rest.str("args", args);
    }
    event.http_request = Some(HttpRequest {
        http_method: method,
        version: req.version.take(),
        uid: req.request_id.take(),
        user_agent,
        referrer,
        url,
        http_headers: (!req.headers.is_empty()).then(|| std::mem::take(&mut req.headers)),
        ..HttpRequest::default()
    });
    event.http_response = Some(match response_code.or(default_code) {
        Some(code) => HttpResponse {
            code,
            length: None,
            message: None,
        },
        None => HttpResponse {
            code: 0,
            length: None,
            message: Some(Cow::Borrowed(
                "not logged: AWS WAF forwarded the request to the protected resource",
            )),
        },
    });

    if !req.rest.is_empty() {
        unmapped
            .0
            .push((Cow::Borrowed("httpRequest"), Value::Map(req.rest)));
    }
    event.unmapped = unmapped;
    Ok(out.event(&event))
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

/// Reads a WAF log file: one JSON record a line.
pub fn normalize(input: &mut dyn BufRead, ctx: &Context, out: &mut dyn Emit) -> Result<()> {
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
        let line = line.map_err(|e| read_error(ctx, reading, e))?;
        let (number, bytes) = (line.number, line.bytes);
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
        let fields: Fields<'_> = match serde_json::from_str(text) {
            Ok(f) => f,
            Err(e) => {
                out.reject(reject(None, format!("not a JSON object: {e}")))?;
                continue;
            }
        };
        match map_record(fields, ctx, out) {
            Ok(sent) => sent?,
            Err(b) => out.reject(reject(Some(b.field), b.reason))?,
        }
    }
    Ok(())
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
            panic!("WAF logs have no rows to skip: {reason}");
        }
    }

    fn ctx() -> Context {
        Context {
            object: "bucket/waf.log".into(),
            key: KeyInfo {
                source: Some(SourceKind::Waf),
                account: Some("999988887777".into()),
                region: Some("eu-west-1".into()),
            },
            max_record_bytes: 0,
        }
    }

    fn run(input: &[u8]) -> Collect {
        let mut out = Collect::default();
        let mut reader = input;
        normalize(&mut reader, &ctx(), &mut out).expect("a WAF file never fails as a whole");
        for e in &out.events {
            check_invariants(e);
        }
        out
    }

    /// What every WAF event must satisfy whatever the record.
    fn check_invariants(e: &Json) {
        assert_eq!(e["class_uid"], 4002, "{e}");
        assert_eq!(
            e["type_uid"].as_u64().unwrap(),
            400_200 + e["activity_id"].as_u64().unwrap()
        );
        assert_eq!(
            e["metadata"]["profiles"],
            json!(["cloud", "security_control"])
        );
        assert!(
            e["action_id"].is_u64() && e["disposition_id"].is_u64(),
            "{e}"
        );
        assert!(e["http_response"]["code"].is_u64(), "{e}");
        assert!(e["src_endpoint"]["ip"].is_string(), "{e}");
        assert!(!e.to_string().contains(":null"), "{e}");
    }

    /// A documented WAF record, changed by `edit`.
    fn record(edit: impl FnOnce(&mut Json)) -> String {
        let mut r = json!({
            "timestamp": 1715680801000u64, "formatVersion": 1,
            "webaclId": "arn:aws:wafv2:us-west-2:111122223333:regional/webacl/acl/abc",
            "terminatingRuleId": "Default_Action", "terminatingRuleType": "REGULAR",
            "action": "ALLOW", "terminatingRuleMatchDetails": [],
            "httpSourceName": "ALB", "httpSourceId": "111122223333-app/alb/0123",
            "ruleGroupList": [], "rateBasedRuleList": [], "nonTerminatingMatchingRules": [],
            "requestHeadersInserted": null, "responseCodeSent": null,
            "httpRequest": {
                "clientIp": "203.0.113.9", "country": "US",
                "headers": [{"name": "host", "value": "api.example.com:8443"},
                            {"name": "user-agent", "value": "curl/8.4.0"}],
                "uri": "/v1/items", "args": "a=1&b=2", "httpVersion": "HTTP/1.1",
                "httpMethod": "GET", "requestId": "req-1"
            }
        });
        edit(&mut r);
        r.to_string()
    }

    fn at<'j>(e: &'j Json, pointer: &str) -> &'j Json {
        e.pointer(pointer).unwrap_or(&Json::Null)
    }

    #[test]
    fn records_map_to_http_activity() {
        /// (name, change to the documented record, expected values by JSON pointer)
        type Case = (&'static str, fn(&mut Json), Vec<(&'static str, Json)>);
        let cases: Vec<Case> = vec![
            (
                "allowed by the default action",
                |_| {},
                vec![
                    ("/activity_id", json!(3)),
                    ("/action", json!("Allowed")),
                    ("/disposition", json!("Allowed")),
                    ("/http_response/code", json!(0)),
                    ("/cloud/region", json!("us-west-2")),
                    ("/cloud/account/uid", json!("111122223333")),
                    ("/src_endpoint/ip", json!("203.0.113.9")),
                    ("/src_endpoint/location/country", json!("US")),
                    ("/dst_endpoint/hostname", json!("api.example.com")),
                    ("/dst_endpoint/svc_name", json!("ALB")),
                    ("/http_request/url/path", json!("/v1/items")),
                    ("/http_request/url/query_string", json!("a=1&b=2")),
                    ("/http_request/user_agent", json!("curl/8.4.0")),
                    (
                        "/http_request/http_headers/0/value",
                        json!("api.example.com:8443"),
                    ),
                    ("/firewall_rule/uid", json!("Default_Action")),
                    ("/unmapped/requestHeadersInserted", Json::Null),
                    ("/unmapped/responseCodeSent", Json::Null),
                ],
            ),
            (
                "blocked, with labels and rule groups kept",
                |r| {
                    r["action"] = json!("BLOCK");
                    r["terminatingRuleId"] = json!("AWS-AWSManagedRulesSQLiRuleSet");
                    r["terminatingRuleType"] = json!("MANAGED_RULE_GROUP");
                    r["labels"] =
                        json!([{"name": "awswaf:managed:aws:sql-database:SQLi_QueryArguments"}]);
                    r["ruleGroupList"] = json!([{"ruleGroupId": "AWS#AWSManagedRulesSQLiRuleSet", "terminatingRule": {"ruleId": "SQLi_QUERYARGUMENTS", "action": "BLOCK"}}]);
                },
                vec![
                    ("/action_id", json!(2)),
                    ("/disposition_id", json!(2)),
                    ("/http_response/code", json!(403)),
                    ("/firewall_rule/type", json!("MANAGED_RULE_GROUP")),
                    (
                        "/unmapped/labels/0/name",
                        json!("awswaf:managed:aws:sql-database:SQLi_QueryArguments"),
                    ),
                    (
                        "/unmapped/ruleGroupList/0/terminatingRule/ruleId",
                        json!("SQLi_QUERYARGUMENTS"),
                    ),
                ],
            ),
            (
                "custom response code, IPv6 client, HTTP/2 POST",
                |r| {
                    r["action"] = json!("BLOCK");
                    r["responseCodeSent"] = json!(429);
                    r["httpRequest"]["clientIp"] = json!("2001:db8::7");
                    r["httpRequest"]["httpMethod"] = json!("POST");
                    r["httpRequest"]["httpVersion"] = json!("HTTP/2.0");
                },
                vec![
                    ("/activity_id", json!(6)),
                    ("/http_response/code", json!(429)),
                    ("/src_endpoint/ip", json!("2001:db8::7")),
                    ("/http_request/version", json!("HTTP/2.0")),
                ],
            ),
            (
                "CAPTCHA and CHALLENGE stop the request",
                |r| r["action"] = json!("CAPTCHA"),
                vec![
                    ("/action", json!("Denied")),
                    ("/disposition", json!("Captcha")),
                    ("/http_response/code", json!(405)),
                ],
            ),
            (
                "CHALLENGE",
                |r| r["action"] = json!("CHALLENGE"),
                vec![
                    ("/disposition_id", json!(23)),
                    ("/http_response/code", json!(202)),
                ],
            ),
            (
                "COUNT",
                |r| r["action"] = json!("COUNT"),
                vec![
                    ("/action", json!("Allowed")),
                    ("/disposition", json!("Count")),
                ],
            ),
            (
                "an unknown action is Other and kept",
                |r| r["action"] = json!("EXCLUDED_AS_COUNT"),
                vec![
                    ("/action_id", json!(99)),
                    ("/disposition", json!("Other")),
                    ("/unmapped/action", json!("EXCLUDED_AS_COUNT")),
                ],
            ),
            (
                "PATCH is activity Other, the method kept",
                |r| r["httpRequest"]["httpMethod"] = json!("PATCH"),
                vec![
                    ("/activity_id", json!(99)),
                    ("/activity_name", json!("PATCH")),
                    ("/http_request/http_method", Json::Null),
                    ("/unmapped/httpRequest/httpMethod", json!("PATCH")),
                ],
            ),
            (
                "CloudFront web ACLs are global, in us-east-1; no Host header",
                |r| {
                    r["webaclId"] =
                        json!("arn:aws:wafv2:us-east-1:111122223333:global/webacl/cf/abc");
                    r["httpSourceName"] = json!("CF");
                    r["httpRequest"]["headers"] = json!([]);
                    r["httpRequest"]["args"] = json!("");
                },
                vec![
                    ("/cloud/region", json!("us-east-1")),
                    ("/dst_endpoint/svc_name", json!("CF")),
                    ("/dst_endpoint/hostname", Json::Null),
                    ("/http_request/http_headers", Json::Null),
                    ("/http_request/url/query_string", Json::Null),
                ],
            ),
            (
                "no web ACL id: the key's account and region",
                |r| {
                    r.as_object_mut().unwrap().remove("webaclId");
                    r["httpRequest"]["country"] = json!("-");
                    r["httpRequest"]["newField"] = json!({"x": 1});
                },
                vec![
                    ("/cloud/region", json!("eu-west-1")),
                    ("/cloud/account/uid", json!("999988887777")),
                    ("/src_endpoint/location", Json::Null),
                    ("/unmapped/httpRequest/newField/x", json!(1)),
                ],
            ),
        ];
        for (name, edit, expected) in cases {
            let out = run(record(edit).as_bytes());
            assert!(out.rejects.is_empty(), "{name}: {:?}", out.rejects);
            assert_eq!(out.events.len(), 1, "{name}");
            for (pointer, want) in expected {
                assert_eq!(at(&out.events[0], pointer), &want, "{name}: {pointer}");
            }
        }
    }

    #[test]
    fn bad_records_are_quarantined_with_the_field() {
        type Edit = fn(&mut Json);
        let cases: Vec<(&str, Edit, &str, &str)> = vec![
            (
                "documentation placeholder address",
                |r| r["httpRequest"]["clientIp"] = json!("X.X.X.X"),
                "httpRequest.clientIp",
                "not an IP address",
            ),
            (
                "no timestamp",
                |r| {
                    r.as_object_mut().unwrap().remove("timestamp");
                },
                "timestamp",
                "no timestamp",
            ),
            (
                "timestamp in seconds",
                |r| r["timestamp"] = json!(1715680801),
                "timestamp",
                "epoch milliseconds",
            ),
            (
                "no action",
                |r| r["action"] = json!(null),
                "action",
                "no action",
            ),
            (
                "headers not a list",
                |r| r["httpRequest"]["headers"] = json!("host: x"),
                "httpRequest.headers",
                "name/value",
            ),
            (
                "response code out of range",
                |r| r["responseCodeSent"] = json!(70000),
                "responseCodeSent",
                "not an HTTP status",
            ),
        ];
        for (name, edit, field, reason) in cases {
            let out = run(record(edit).as_bytes());
            assert!(out.events.is_empty(), "{name}");
            assert_eq!(out.rejects.len(), 1, "{name}");
            let (line, f, r) = &out.rejects[0];
            assert_eq!(*line, Some(1), "{name}");
            assert_eq!(f.as_deref(), Some(field), "{name}");
            assert!(r.contains(reason), "{name}: {r}");
        }
    }

    #[test]
    fn broken_lines_do_not_stop_the_file() {
        let good = record(|_| {});
        let input = format!(
            "{good}\n\n{{\"timestamp\": 1,\nnot json\n{}\n{good}",
            &good[..40]
        );
        let out = run(input.as_bytes());
        assert_eq!(out.events.len(), 2);
        let lines: Vec<Option<u64>> = out.rejects.iter().map(|r| r.0).collect();
        assert_eq!(lines, vec![Some(3), Some(4), Some(5)]);
        let mut invalid: &[u8] = b"\xff\xfe{}\n";
        let mut out = Collect::default();
        normalize(&mut invalid, &ctx(), &mut out).unwrap();
        assert!(out.rejects[0].2.contains("UTF-8"));
    }

    #[test]
    fn keys_and_content_name_the_source() {
        let key =
            "logs/AWSLogs/111122223333/WAFLogs/us-east-1/muster-acl/2024/05/14/10/05/x.log.gz";
        let info = crate::sources::detect_from_key(key);
        assert_eq!(info.source, Some(SourceKind::Waf));
        assert_eq!(info.account.as_deref(), Some("111122223333"));
        assert_eq!(info.region.as_deref(), Some("us-east-1"));
        let cf = "AWSLogs/111122223333/WAFLogs/cloudfront/muster-cf-acl/2024/05/14/10/05/x.log.gz";
        assert_eq!(crate::sources::detect_from_key(cf).region, None);
        assert_eq!(
            crate::sources::sniff(record(|_| {}).as_bytes()),
            Some(SourceKind::Waf)
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
        let text = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut s = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&bytes[..]), &mut s)
                .unwrap();
            s
        } else {
            bytes
        };
        run(&text)
    }

    #[test]
    fn our_samples_map_without_quarantine() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/waf");
        let logs: Vec<PathBuf> = files_under(&dir)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "log" || e == "gz"))
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
            assert_eq!(key.source, Some(SourceKind::Waf));
        }
    }

    /// The third-party samples under $MUSTER_CORPUS/waf: (file, events).
    #[test]
    fn corpus_samples() {
        let Some(corpus) = std::env::var_os("MUSTER_CORPUS") else {
            eprintln!("MUSTER_CORPUS is not set: skipping the WAF corpus test");
            return;
        };
        let known = [("clo_waf.log", 2), ("loki_waflog.log.gz", 1)];
        for path in files_under(&Path::new(&corpus).join("waf")) {
            let name = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
            let out = run_file(&path);
            assert!(out.rejects.is_empty(), "{name}: {:?}", out.rejects);
            if let Some((_, n)) = known.iter().find(|(k, _)| *k == name) {
                assert_eq!(out.events.len(), *n, "{name}");
            }
        }
    }
}
