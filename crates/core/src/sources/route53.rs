//! Route 53 Resolver query logs delivered to S3: one JSON object a line, mapped to
//! OCSF 4003 DNS Activity.
//!
//! The fields are AWS's documented list (version, account_id, region, vpc_id,
//! query_timestamp, query_name, query_type, query_class, rcode, answers, srcaddr,
//! srcport, transport, srcids, and the DNS Firewall fields); anything else is kept
//! verbatim in `unmapped`, nested `null`s removed.
//!
//! Mapping decisions worth knowing:
//! - Activity 6 Traffic. OCSF 1.1.0 has 1 Query, 2 Response and 6 Traffic
//!   ("bidirectional DNS request and response traffic"); a Resolver record holds both
//!   the question (name, type, class, who asked) and Resolver's answer (rcode,
//!   answers), so it is neither a bare query nor a bare response.
//! - `rcode` → `rcode_id` and OCSF's caption (NOERROR → 0 NoError, NXDOMAIN → 3
//!   NXDomain, ...); a code OCSF does not list → 99 Other with AWS's text as `rcode`.
//! - `query_name` → `query.hostname` without its trailing dot. OCSF requires a
//!   `hostname_t` there (letters, digits, inner hyphens); a name that is not one
//!   (`_dmarc.example.com`, labels with other bytes) leaves `query` out and stays
//!   in `unmapped.query_name`, rather than failing the event or rewriting the name.
//!   The same applies to answers whose `Rdata` is missing: they are left out of
//!   `answers` and the whole list stays in `unmapped.answers`.
//! - `srcaddr`/`srcport`, `vpc_id` and `srcids.instance` → `src_endpoint`; the
//!   destination is Route 53 Resolver itself (`dst_endpoint.svc_name`).
//! - `transport` → `connection_info.protocol_name`/`protocol_num`. The direction,
//!   which OCSF requires there, is Inbound for queries that came through an inbound
//!   Resolver endpoint (`srcids.resolver_endpoint`, from outside the VPC) and
//!   Outbound for queries from the VPC's own resources.
//! - `firewall_rule_action` (DNS Firewall) → `security_control` profile: ALLOW →
//!   Allowed/Allowed, BLOCK → Denied/Blocked, ALERT → Allowed/Alert; the rule group
//!   is `firewall_rule.uid`, the domain list `firewall_rule.condition`. Records
//!   without it carry no action and no profile (which would require `action_id`).

use super::json::{bad, keep, text, Bad, Fields};
use super::{Context, Emit, Rejected};
use crate::error::{Error, Location, Result};
use crate::framing::LineReader;
use crate::ocsf::{
    Class, Cloud, ConnectionInfo, DnsAnswer, DnsQuery, Endpoint, Event, Feature, FirewallRule,
    Metadata, Product, Unmapped, Value,
};
use crate::time::parse_rfc3339_ms;
use serde::Deserialize;
use std::borrow::Cow;
use std::io::BufRead;

/// Used when the context leaves the limit unset (0); a record is well under 4 KB
/// unless a response has many answers.
const DEFAULT_MAX_LINE: usize = 256 * 1024;

const RESOLVER: &str = "Route 53 Resolver";

/// OCSF `rcode_id` and caption for a DNS response code name as Resolver writes it.
fn rcode(name: &str) -> (u32, Option<&'static str>) {
    match name.to_ascii_uppercase().as_str() {
        "NOERROR" => (0, Some("NoError")),
        "FORMERR" => (1, Some("FormError")),
        "SERVFAIL" => (2, Some("ServError")),
        "NXDOMAIN" => (3, Some("NXDomain")),
        "NOTIMP" => (4, Some("NotImp")),
        "REFUSED" => (5, Some("Refused")),
        "YXDOMAIN" => (6, Some("YXDomain")),
        "YXRRSET" => (7, Some("YXRRSet")),
        "NXRRSET" => (8, Some("NXRRSet")),
        "NOTAUTH" => (9, Some("NotAuth")),
        "NOTZONE" => (10, Some("NotZone")),
        "DSOTYPENI" => (11, Some("DSOTYPENI")),
        "BADVERS" | "BADSIG" => (16, Some("BADSIG_VERS")),
        "BADKEY" => (17, Some("BADKEY")),
        "BADTIME" => (18, Some("BADTIME")),
        "BADMODE" => (19, Some("BADMODE")),
        "BADNAME" => (20, Some("BADNAME")),
        "BADALG" => (21, Some("BADALG")),
        "BADTRUNC" => (22, Some("BADTRUNC")),
        "BADCOOKIE" => (23, Some("BADCOOKIE")),
        _ => (99, None),
    }
}

/// `name` without the root's trailing dot, when it is an OCSF `hostname_t`.
fn query_hostname(name: &str) -> Option<&str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        });
    ok.then_some(name)
}

#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(rename = "Rdata", borrow, default)]
    rdata: Option<Cow<'a, str>>,
    #[serde(rename = "Type", borrow, default)]
    type_: Option<Cow<'a, str>>,
    #[serde(rename = "Class", borrow, default)]
    class: Option<Cow<'a, str>>,
}

/// Maps one record and sends it; `Err(Bad)` when it cannot be mapped.
fn map_record<'a>(
    fields: Fields<'a>,
    ctx: &'a Context,
    out: &mut dyn Emit,
) -> std::result::Result<Result<()>, Bad> {
    let mut unmapped = Unmapped::default();
    let mut time = None;
    let mut version = None;
    let mut account = None;
    let mut region = None;
    let mut vpc = None;
    let mut name = None;
    let mut qtype = None;
    let mut qclass = None;
    let mut code = None;
    let mut answers = None;
    let mut srcaddr = None;
    let mut srcport = None;
    let mut transport = None;
    let mut instance = None;
    let mut inbound_endpoint = false;
    let mut fw_action = None;
    let mut fw_group = None;
    let mut fw_list = None;
    for (key, value) in fields.0 {
        match key {
            "query_timestamp" => {
                let t = text("query_timestamp", value)?
                    .ok_or_else(|| bad("query_timestamp", "the record has no query time"))?;
                time = Some(parse_rfc3339_ms(&t).ok_or_else(|| {
                    bad("query_timestamp", format!("not an RFC 3339 time: {t:.64}"))
                })?);
            }
            "version" => version = text("version", value)?,
            "account_id" => account = text("account_id", value)?,
            "region" => region = text("region", value)?,
            "vpc_id" => vpc = text("vpc_id", value)?,
            "query_name" => {
                name = text("query_name", value)?;
                if name.as_deref().and_then(query_hostname).is_none() {
                    keep(&mut unmapped, key, value);
                }
            }
            "query_type" => qtype = text("query_type", value)?,
            "query_class" => qclass = text("query_class", value)?,
            "rcode" => code = text("rcode", value)?,
            "answers" if value.get() != "null" => {
                let list: Vec<Answer<'a>> = serde_json::from_str(value.get())
                    .map_err(|e| bad("answers", format!("not a list of Rdata/Type/Class: {e}")))?;
                if list.iter().any(|a| a.rdata.is_none()) {
                    keep(&mut unmapped, key, value);
                }
                answers = Some(list);
            }
            "srcaddr" => srcaddr = text("srcaddr", value)?,
            "srcport" => {
                // Documented as a string; accepted as a number too.
                let json = value.get();
                let digits = json.trim_matches('"');
                if json != "null" && !digits.is_empty() && digits != "-" {
                    srcport =
                        Some(digits.parse::<u16>().map_err(|_| {
                            bad("srcport", format!("not a port number: {json:.64}"))
                        })?);
                }
            }
            "transport" => transport = text("transport", value)?,
            "srcids" if value.get() != "null" => {
                let ids: Fields<'a> = serde_json::from_str(value.get())
                    .map_err(|e| bad("srcids", format!("not a JSON object: {e}")))?;
                let mut rest = Unmapped::default();
                for (k, v) in ids.0 {
                    match k {
                        "instance" => instance = text("srcids.instance", v)?,
                        "resolver_endpoint" => {
                            inbound_endpoint = v.get() != "null";
                            keep(&mut rest, k, v);
                        }
                        _ => keep(&mut rest, k, v),
                    }
                }
                if !rest.is_empty() {
                    unmapped.0.push((Cow::Borrowed("srcids"), Value::Map(rest)));
                }
            }
            "firewall_rule_action" => fw_action = text("firewall_rule_action", value)?,
            "firewall_rule_group_id" => fw_group = text("firewall_rule_group_id", value)?,
            "firewall_domain_list_id" => fw_list = text("firewall_domain_list_id", value)?,
            _ => keep(&mut unmapped, key, value),
        }
    }
    let time = time.ok_or_else(|| bad("query_timestamp", "the record has no query time"))?;
    let srcaddr = srcaddr.ok_or_else(|| bad("srcaddr", "the record has no source address"))?;
    if srcaddr.parse::<std::net::IpAddr>().is_err() {
        return Err(bad(
            "srcaddr",
            format!("{srcaddr:.64} is not an IP address"),
        ));
    }

    let mut metadata = Metadata::new(Product {
        feature: Some(Feature {
            name: Cow::Borrowed("Resolver query logs"),
        }),
        ..Product::aws("Amazon Route 53")
    });
    metadata.log_version = version;
    metadata.profiles = if fw_action.is_some() {
        &["cloud", "security_control"]
    } else {
        &["cloud"]
    };
    let mut event = Event::new(Class::DnsActivity, 6, "Traffic", time, metadata);
    event.cloud = Some(Cloud::aws(
        region.or_else(|| ctx.key.region.as_deref().map(Cow::Borrowed)),
        account.or_else(|| ctx.key.account.as_deref().map(Cow::Borrowed)),
    ));

    if let Some(action) = fw_action {
        let (action_id, action_name, disposition_id, disposition) = match action.as_ref() {
            "ALLOW" => (1, "Allowed", 1, "Allowed"),
            "BLOCK" => (2, "Denied", 2, "Blocked"),
            "ALERT" => (1, "Allowed", 19, "Alert"),
            _ => (99, "Other", 99, "Other"),
        };
        event.action_id = Some(action_id);
        event.action = Some(action_name);
        event.disposition_id = Some(disposition_id);
        event.disposition = Some(disposition);
        if action_id == 99 {
            unmapped.str("firewall_rule_action", action);
        }
        event.firewall_rule = Some(FirewallRule {
            uid: fw_group.clone(),
            name: fw_group.is_none().then_some(Cow::Borrowed("DNS Firewall")),
            type_: Some(Cow::Borrowed("DNS Firewall rule group")),
            condition: fw_list.clone(),
        });
    } else {
        // Without an action the firewall ids have no home of their own.
        if let Some(g) = fw_group {
            unmapped.str("firewall_rule_group_id", g);
        }
        if let Some(l) = fw_list {
            unmapped.str("firewall_domain_list_id", l);
        }
    }

    if let Some(hostname) = name.as_deref().and_then(query_hostname) {
        event.query = Some(DnsQuery {
            hostname: Cow::Owned(hostname.to_owned()),
            type_: qtype,
            class: qclass,
        });
    } else {
        if let Some(t) = qtype {
            unmapped.str("query_type", t);
        }
        if let Some(c) = qclass {
            unmapped.str("query_class", c);
        }
    }
    if let Some(code) = code {
        let (id, caption) = rcode(&code);
        event.rcode_id = Some(id);
        event.rcode = Some(caption.map(Cow::Borrowed).unwrap_or(code));
    }
    let answers: Vec<DnsAnswer<'a>> = answers
        .into_iter()
        .flatten()
        .filter_map(|a| {
            Some(DnsAnswer {
                rdata: a.rdata.filter(|r| !r.is_empty())?,
                type_: a.type_,
                class: a.class,
            })
        })
        .collect();
    event.answers = (!answers.is_empty()).then_some(answers);

    event.src_endpoint = Some(Endpoint {
        ip: Some(srcaddr),
        port: srcport,
        vpc_uid: vpc,
        instance_uid: instance,
        ..Endpoint::default()
    });
    event.dst_endpoint = Some(Endpoint {
        svc_name: Some(Cow::Borrowed(RESOLVER)),
        ..Endpoint::default()
    });
    let (direction_id, direction) = if inbound_endpoint {
        (1, "Inbound")
    } else {
        (2, "Outbound")
    };
    let (protocol_num, protocol_name) = match transport.as_deref() {
        Some(t) if t.eq_ignore_ascii_case("UDP") => (Some(17), Some("udp")),
        Some(t) if t.eq_ignore_ascii_case("TCP") => (Some(6), Some("tcp")),
        Some(_) => (None, None),
        None => (None, None),
    };
    if protocol_num.is_none() {
        if let Some(t) = transport {
            unmapped.str("transport", t);
        }
    }
    event.connection_info = Some(ConnectionInfo {
        protocol_num,
        protocol_name,
        direction_id: Some(direction_id),
        direction: Some(direction),
        ..ConnectionInfo::default()
    });
    event.unmapped = unmapped;
    Ok(out.event(&event))
}

/// Reads a Resolver query log file: one JSON record a line.
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
        let line = line.map_err(|source| Error::Read {
            at: Location {
                object: ctx.object.clone(),
                line: Some(reading),
                record: None,
            },
            source,
        })?;
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
        map_json(text, number, ctx, out)?;
    }
    Ok(())
}

/// Maps one record's JSON text, as a line of a file or alone (CloudWatch Logs
/// subscriptions carry one record a log event): an event, or a reject at `line`
/// naming the field.
pub(crate) fn map_json(text: &str, line: u64, ctx: &Context, out: &mut dyn Emit) -> Result<()> {
    let reject = |field: Option<&'static str>, reason: String| Rejected {
        line: Some(line),
        record: None,
        field,
        reason,
        raw: text.as_bytes(),
    };
    let fields: Fields<'_> = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(e) => return out.reject(reject(None, format!("not a JSON object: {e}"))),
    };
    match map_record(fields, ctx, out) {
        Ok(sent) => sent,
        Err(b) => out.reject(reject(Some(b.field), b.reason)),
    }
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
            panic!("Resolver query logs have no rows to skip: {reason}");
        }
    }

    fn ctx() -> Context {
        Context {
            object: "bucket/resolver.log".into(),
            key: KeyInfo {
                source: Some(SourceKind::Route53Resolver),
                account: Some("999988887777".into()),
                region: None,
            },
            max_record_bytes: 0,
        }
    }

    fn run(input: &[u8]) -> Collect {
        let mut out = Collect::default();
        let mut reader = input;
        normalize(&mut reader, &ctx(), &mut out).expect("a Resolver file never fails whole");
        for e in &out.events {
            assert_eq!(e["class_uid"], 4003, "{e}");
            assert_eq!(e["type_uid"], 400306, "{e}");
            assert!(e["connection_info"]["direction_id"].is_u64(), "{e}");
            assert!(!e.to_string().contains(":null"), "{e}");
            let secured = e["metadata"]["profiles"]
                .as_array()
                .unwrap()
                .contains(&json!("security_control"));
            assert_eq!(secured, e["action_id"].is_u64(), "{e}");
        }
        out
    }

    /// AWS's documented example record, changed by `edit`.
    fn record(edit: impl FnOnce(&mut Json)) -> String {
        let mut r = json!({
            "version": "1.100000", "account_id": "111122223333", "region": "us-east-1",
            "vpc_id": "vpc-0123456789abcdef0", "query_timestamp": "2021-02-04T17:51:55Z",
            "query_name": "example.com.", "query_type": "A", "query_class": "IN",
            "rcode": "NOERROR",
            "answers": [{"Rdata": "203.0.113.9", "Type": "A", "Class": "IN"}],
            "srcaddr": "172.31.20.52", "srcport": "46577", "transport": "UDP",
            "srcids": {"instance": "i-0d15cd0d3example"}
        });
        edit(&mut r);
        r.to_string()
    }

    #[test]
    fn records_map_to_dns_activity() {
        /// (name, change to the documented record, expected values by JSON pointer)
        type Case = (&'static str, fn(&mut Json), Vec<(&'static str, Json)>);
        let cases: Vec<Case> = vec![
            (
                "the documented example",
                |_| {},
                vec![
                    ("/time", json!(1612461115000i64)),
                    ("/query/hostname", json!("example.com")),
                    ("/query/type", json!("A")),
                    ("/query/class", json!("IN")),
                    ("/rcode_id", json!(0)),
                    ("/rcode", json!("NoError")),
                    ("/answers/0/rdata", json!("203.0.113.9")),
                    ("/answers/0/type", json!("A")),
                    ("/src_endpoint/ip", json!("172.31.20.52")),
                    ("/src_endpoint/port", json!(46577)),
                    ("/src_endpoint/instance_uid", json!("i-0d15cd0d3example")),
                    ("/src_endpoint/vpc_uid", json!("vpc-0123456789abcdef0")),
                    ("/connection_info/protocol_num", json!(17)),
                    ("/connection_info/direction", json!("Outbound")),
                    ("/cloud/region", json!("us-east-1")),
                    ("/cloud/account/uid", json!("111122223333")),
                    ("/metadata/log_version", json!("1.100000")),
                    ("/metadata/profiles", json!(["cloud"])),
                    ("/action_id", Json::Null),
                ],
            ),
            (
                "NXDOMAIN without answers",
                |r| {
                    r["rcode"] = json!("NXDOMAIN");
                    r["answers"] = json!([]);
                },
                vec![
                    ("/rcode_id", json!(3)),
                    ("/rcode", json!("NXDomain")),
                    ("/answers", Json::Null),
                ],
            ),
            (
                "an rcode OCSF does not list",
                |r| r["rcode"] = json!("WEIRD"),
                vec![("/rcode_id", json!(99)), ("/rcode", json!("WEIRD"))],
            ),
            (
                "inbound endpoint, TCP, numeric port",
                |r| {
                    r["srcids"] = json!({"resolver_endpoint": "rslvr-in-1", "resolver_network_interface": "rni-1"});
                    r["transport"] = json!("TCP");
                    r["srcport"] = json!(53);
                },
                vec![
                    ("/connection_info/direction_id", json!(1)),
                    ("/connection_info/protocol_name", json!("tcp")),
                    ("/src_endpoint/port", json!(53)),
                    ("/src_endpoint/instance_uid", Json::Null),
                    ("/unmapped/srcids/resolver_endpoint", json!("rslvr-in-1")),
                    (
                        "/unmapped/srcids/resolver_network_interface",
                        json!("rni-1"),
                    ),
                ],
            ),
            (
                "DNS Firewall block",
                |r| {
                    r["firewall_rule_action"] = json!("BLOCK");
                    r["firewall_rule_group_id"] = json!("rslvr-frg-1");
                    r["firewall_domain_list_id"] = json!("rslvr-fdl-1");
                },
                vec![
                    ("/action", json!("Denied")),
                    ("/disposition", json!("Blocked")),
                    ("/firewall_rule/uid", json!("rslvr-frg-1")),
                    ("/firewall_rule/condition", json!("rslvr-fdl-1")),
                    ("/metadata/profiles", json!(["cloud", "security_control"])),
                ],
            ),
            (
                "DNS Firewall alert",
                |r| r["firewall_rule_action"] = json!("ALERT"),
                vec![
                    ("/action", json!("Allowed")),
                    ("/disposition_id", json!(19)),
                    ("/firewall_rule/name", json!("DNS Firewall")),
                ],
            ),
            (
                "a name that is no OCSF hostname stays unmapped",
                |r| {
                    r["query_name"] = json!("_dmarc.example.com.");
                    r["query_type"] = json!("TXT");
                },
                vec![
                    ("/query", Json::Null),
                    ("/unmapped/query_name", json!("_dmarc.example.com.")),
                    ("/unmapped/query_type", json!("TXT")),
                ],
            ),
            (
                "answers without Rdata are left out, the list kept",
                |r| r["answers"] = json!([{"Type": "A", "Class": "IN"}, {"Rdata": "192.0.2.1", "Type": "A", "Class": "IN"}]),
                vec![
                    ("/answers/0/rdata", json!("192.0.2.1")),
                    ("/answers/1", Json::Null),
                    ("/unmapped/answers/0/Type", json!("A")),
                ],
            ),
            (
                "no account or region in the record: the key's account",
                |r| {
                    let o = r.as_object_mut().unwrap();
                    o.remove("account_id");
                    o.remove("region");
                    o.insert("firewall_protection".into(), json!("DGA"));
                },
                vec![
                    ("/cloud/account/uid", json!("999988887777")),
                    ("/cloud/region", Json::Null),
                    ("/unmapped/firewall_protection", json!("DGA")),
                ],
            ),
        ];
        for (name, edit, expected) in cases {
            let out = run(record(edit).as_bytes());
            assert!(out.rejects.is_empty(), "{name}: {:?}", out.rejects);
            assert_eq!(out.events.len(), 1, "{name}");
            for (pointer, want) in expected {
                let got = out.events[0].pointer(pointer).unwrap_or(&Json::Null);
                assert_eq!(got, &want, "{name}: {pointer}");
            }
        }
    }

    #[test]
    fn bad_records_are_quarantined_with_the_field() {
        type Case = (&'static str, fn(&mut Json), &'static str, &'static str);
        let cases: Vec<Case> = vec![
            (
                "no time",
                |r| {
                    r.as_object_mut().unwrap().remove("query_timestamp");
                },
                "query_timestamp",
                "no query time",
            ),
            (
                "time not RFC 3339",
                |r| r["query_timestamp"] = json!("04/Feb/2021"),
                "query_timestamp",
                "RFC 3339",
            ),
            (
                "placeholder address",
                |r| r["srcaddr"] = json!("X.X.X.X"),
                "srcaddr",
                "not an IP address",
            ),
            (
                "port out of range",
                |r| r["srcport"] = json!("70000"),
                "srcport",
                "not a port",
            ),
            (
                "answers not a list",
                |r| r["answers"] = json!("203.0.113.9"),
                "answers",
                "not a list",
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
        let input = format!("{good}\r\n\nnot json\n[1,2]\n{good}\n");
        let out = run(input.as_bytes());
        assert_eq!(out.events.len(), 2);
        let lines: Vec<Option<u64>> = out.rejects.iter().map(|r| r.0).collect();
        assert_eq!(lines, vec![Some(3), Some(4)]);
    }

    #[test]
    fn keys_and_content_name_the_source() {
        let key = "AWSLogs/111122223333/vpcdnsquerylogs/vpc-0123456789abcdef0/2024/05/14/x.log.gz";
        let info = crate::sources::detect_from_key(key);
        assert_eq!(info.source, Some(SourceKind::Route53Resolver));
        assert_eq!(info.account.as_deref(), Some("111122223333"));
        assert_eq!(info.region, None);
        let head = r#"{"version":"1.100000","account_id":"1","region":"us-east-1","vpc_id":"vpc-1","query_timestamp":"2021-02-04T17:51:55Z","query_name":"example.com."}"#;
        assert_eq!(
            crate::sources::sniff(head.as_bytes()),
            Some(SourceKind::Route53Resolver)
        );
    }

    #[test]
    fn our_samples_map_without_quarantine() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/route53");
        let mut stack = vec![dir];
        let mut logs: Vec<PathBuf> = Vec::new();
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|e| e == "gz") {
                    logs.push(p);
                }
            }
        }
        assert!(!logs.is_empty());
        for path in logs {
            let bytes = std::fs::read(&path).unwrap();
            let mut text = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::MultiGzDecoder::new(&bytes[..]),
                &mut text,
            )
            .unwrap();
            let out = run(&text);
            assert!(
                out.rejects.is_empty(),
                "{}: {:?}",
                path.display(),
                out.rejects
            );
            assert_eq!(out.events.len(), 8, "{}", path.display());
            let key = crate::sources::detect_from_key(&path.display().to_string());
            assert_eq!(key.source, Some(SourceKind::Route53Resolver));
        }
    }
}
