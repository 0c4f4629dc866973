//! One module per log source: detection, parsing and OCSF mapping.

pub mod cloudfront;
pub mod cloudtrail;
pub mod cwlogs;
pub mod elb;
pub mod guardduty;
mod json;
pub mod route53;
pub mod s3access;
pub mod securityhub;
pub mod vpcflow;
pub mod waf;

use crate::error::{Error, Result};
use crate::ocsf::Event;
use std::io::BufRead;

/// The log sources muster knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKind {
    CloudTrail,
    /// CloudTrail digest files: recognised and counted, not parsed as logs.
    CloudTrailDigest,
    VpcFlow,
    /// ALB, NLB (TLS) and Classic ELB access logs.
    Elb,
    /// S3 server access logs.
    S3Access,
    Waf,
    /// Route 53 Resolver query logs.
    Route53Resolver,
    /// CloudFront standard (access) logs.
    CloudFront,
    /// GuardDuty findings (S3 export, EventBridge events).
    GuardDuty,
    /// Security Hub findings (EventBridge events through Firehose, ASFF).
    SecurityHub,
    /// CloudWatch Logs subscription data delivered by Firehose.
    CloudWatchLogs,
}

impl SourceKind {
    /// The lake's `<source>` path segment and the name in summaries and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            SourceKind::CloudTrail => "cloudtrail",
            SourceKind::CloudTrailDigest => "cloudtrail-digest",
            SourceKind::VpcFlow => "vpcflow",
            SourceKind::Elb => "elb",
            SourceKind::S3Access => "s3access",
            SourceKind::Waf => "waf",
            SourceKind::Route53Resolver => "route53",
            SourceKind::CloudFront => "cloudfront",
            SourceKind::GuardDuty => "guardduty",
            SourceKind::SecurityHub => "securityhub",
            SourceKind::CloudWatchLogs => "cwlogs",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "cloudtrail" => Some(SourceKind::CloudTrail),
            "cloudtrail-digest" => Some(SourceKind::CloudTrailDigest),
            "vpcflow" | "vpc" | "vpcflowlogs" => Some(SourceKind::VpcFlow),
            "elb" | "alb" | "nlb" | "clb" | "elasticloadbalancing" => Some(SourceKind::Elb),
            "s3access" | "s3" => Some(SourceKind::S3Access),
            "waf" | "wafv2" | "waflogs" => Some(SourceKind::Waf),
            "route53" | "route53resolver" | "vpcdnsquerylogs" => Some(SourceKind::Route53Resolver),
            "cloudfront" => Some(SourceKind::CloudFront),
            "guardduty" => Some(SourceKind::GuardDuty),
            "securityhub" | "asff" => Some(SourceKind::SecurityHub),
            "cwlogs" | "cloudwatchlogs" | "cwl" => Some(SourceKind::CloudWatchLogs),
            _ => None,
        }
    }

    /// Whether this source is parsed into events at all.
    pub const fn is_log(self) -> bool {
        !matches!(self, SourceKind::CloudTrailDigest)
    }
}

/// What the key says about an object delivered by AWS:
/// `[prefix/]AWSLogs/[o-org/]<account>/<Service>/<region>/YYYY/MM/DD/<file>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyInfo {
    pub source: Option<SourceKind>,
    pub account: Option<String>,
    pub region: Option<String>,
}

/// Reads source, account and region from an AWS log delivery key.
pub fn detect_from_key(key: &str) -> KeyInfo {
    let parts: Vec<&str> = key.split('/').collect();
    let Some(awslogs) = parts.iter().position(|p| *p == "AWSLogs") else {
        // CloudFront names its files after the distribution, under any prefix.
        if cloudfront::is_log_name(key) {
            return KeyInfo {
                source: Some(SourceKind::CloudFront),
                ..KeyInfo::default()
            };
        }
        return KeyInfo::default();
    };
    let mut i = awslogs + 1;
    // Organisation trails insert the organisation id before the account.
    if parts.get(i).is_some_and(|p| p.starts_with("o-")) {
        i += 1;
    }
    let account = parts
        .get(i)
        .filter(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()))
        .map(|a| a.to_string());
    let service = parts.get(i + 1).copied().unwrap_or("");
    let region = parts
        .get(i + 2)
        .filter(|r| looks_like_region(r))
        // Resolver query logs put the VPC id there, which can look like a region.
        .filter(|_| service != "vpcdnsquerylogs")
        .map(|r| r.to_string());
    let source = match service {
        "CloudTrail" | "CloudTrail-Insight" => Some(SourceKind::CloudTrail),
        "CloudTrail-Digest" => Some(SourceKind::CloudTrailDigest),
        "vpcflowlogs" => Some(SourceKind::VpcFlow),
        "elasticloadbalancing" => Some(SourceKind::Elb),
        "WAFLogs" => Some(SourceKind::Waf),
        "vpcdnsquerylogs" => Some(SourceKind::Route53Resolver),
        "GuardDuty" => Some(SourceKind::GuardDuty),
        _ => None,
    };
    KeyInfo {
        source,
        account,
        region,
    }
}

fn looks_like_region(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.contains(&b'-')
        && b.last().is_some_and(u8::is_ascii_digit)
}

/// Tells the source from the first decoded bytes when the key says nothing.
pub fn sniff(head: &[u8]) -> Option<SourceKind> {
    let text = String::from_utf8_lossy(&head[..head.len().min(4096)]);
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        let compact: String = trimmed
            .chars()
            .filter(|c| !c.is_whitespace())
            .take(512)
            .collect();
        if compact.contains("\"digestStartTime\"") || compact.contains("\"digestS3Object\"") {
            return Some(SourceKind::CloudTrailDigest);
        }
        if compact.starts_with("{\"Records\":") {
            // S3 event notifications (trigger events, not logs) share the shape;
            // CloudTrail names S3 `s3.amazonaws.com`, never `aws:s3`.
            if compact.contains("\"eventSource\":\"aws:s3\"") {
                return None;
            }
            return Some(SourceKind::CloudTrail);
        }
        if cwlogs::looks_like_payload(trimmed) {
            return Some(SourceKind::CloudWatchLogs);
        }
        // WAF writes `webaclId` third, but a re-serialised record may sort it last.
        if trimmed.contains("\"webaclId\"") {
            return Some(SourceKind::Waf);
        }
        if compact.contains("\"query_timestamp\":") && compact.contains("\"query_name\":") {
            return Some(SourceKind::Route53Resolver);
        }
        if guardduty::looks_like(trimmed) {
            return Some(SourceKind::GuardDuty);
        }
        if securityhub::looks_like(trimmed) {
            return Some(SourceKind::SecurityHub);
        }
        return None;
    }
    // Findings as one JSON array.
    if trimmed.starts_with('[') {
        if guardduty::looks_like(trimmed) {
            return Some(SourceKind::GuardDuty);
        }
        if securityhub::looks_like(trimmed) {
            return Some(SourceKind::SecurityHub);
        }
    }
    if trimmed.starts_with("#Version: 1.0")
        && trimmed.contains("#Fields: date time x-edge-location")
    {
        return Some(SourceKind::CloudFront);
    }
    if vpcflow::looks_like_header(trimmed.lines().next().unwrap_or("")) {
        return Some(SourceKind::VpcFlow);
    }
    let first = trimmed.lines().next().unwrap_or("");
    if elb::looks_like_line(first) {
        return Some(SourceKind::Elb);
    }
    if s3access::looks_like_line(first) {
        return Some(SourceKind::S3Access);
    }
    None
}

/// What a source module knows about the object it is reading.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// How errors and quarantine records name the object.
    pub object: String,
    /// Account and region from the key, for records that do not carry their own.
    pub key: KeyInfo,
    /// Longest line or record kept whole; longer ones are quarantined.
    pub max_record_bytes: usize,
}

/// A record that could not be mapped: where it was, which field, why, and its text.
#[derive(Debug, Clone)]
pub struct Rejected<'a> {
    pub line: Option<u64>,
    pub record: Option<u64>,
    pub field: Option<&'a str>,
    pub reason: String,
    pub raw: &'a [u8],
}

/// Where a source module sends what it read. Every record goes to exactly one of
/// `event` or `reject`, which is what makes `records_in = records_out + quarantined`
/// hold by construction.
pub trait Emit {
    fn event(&mut self, event: &Event<'_>) -> Result<()>;
    fn reject(&mut self, rejected: Rejected<'_>) -> Result<()>;
    /// Rows that carry no record by design (VPC NODATA/SKIPDATA), counted apart.
    fn skip(&mut self, reason: &'static str);
}

/// Runs the parser of `kind` over a decoded stream.
pub fn run(
    kind: SourceKind,
    input: &mut dyn BufRead,
    ctx: &Context,
    out: &mut dyn Emit,
) -> Result<()> {
    match kind {
        SourceKind::CloudTrail => cloudtrail::normalize(input, ctx, out),
        SourceKind::VpcFlow => vpcflow::normalize(input, ctx, out),
        SourceKind::Elb => elb::normalize(input, ctx, out),
        SourceKind::S3Access => s3access::normalize(input, ctx, out),
        SourceKind::Waf => waf::normalize(input, ctx, out),
        SourceKind::Route53Resolver => route53::normalize(input, ctx, out),
        SourceKind::CloudFront => cloudfront::normalize(input, ctx, out),
        SourceKind::GuardDuty => guardduty::normalize(input, ctx, out),
        SourceKind::SecurityHub => securityhub::normalize(input, ctx, out),
        SourceKind::CloudWatchLogs => cwlogs::normalize(input, ctx, out),
        SourceKind::CloudTrailDigest => Err(Error::Format {
            at: crate::error::Location::object(ctx.object.clone()),
            reason: "CloudTrail digest files are counted, not parsed as logs".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_source_account_and_region() {
        let cases = [
            ("AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/14/111122223333_CloudTrail_us-east-1_20240514T0000Z_abc.json.gz", Some(SourceKind::CloudTrail), Some("111122223333"), Some("us-east-1")),
            ("trail/AWSLogs/o-abc123/111122223333/CloudTrail/eu-west-1/2024/05/14/x.json.gz", Some(SourceKind::CloudTrail), Some("111122223333"), Some("eu-west-1")),
            ("AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/05/14/x.json.gz", Some(SourceKind::CloudTrailDigest), Some("111122223333"), Some("us-east-1")),
            ("AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2024/05/14/x.json.gz", Some(SourceKind::CloudTrail), Some("111122223333"), Some("us-east-1")),
            ("AWSLogs/111122223333/vpcflowlogs/ap-southeast-2/2024/05/14/x.log.gz", Some(SourceKind::VpcFlow), Some("111122223333"), Some("ap-southeast-2")),
            ("AWSLogs/111122223333/elasticloadbalancing/us-east-2/2024/05/14/111122223333_elasticloadbalancing_us-east-2_app.my-lb.50dc6c495c0c9188_20240514T0000Z_192.0.2.1_abc.log.gz", Some(SourceKind::Elb), Some("111122223333"), Some("us-east-2")),
            ("AWSLogs/123456789012/GuardDuty/us-east-1/2026/11/20/4d1c5a2e-8f3b-4c6d-9e0f-1a2b3c4d5e6f.jsonl.gz", Some(SourceKind::GuardDuty), Some("123456789012"), Some("us-east-1")),
            ("random/file.json", None, None, None),
        ];
        for (key, source, account, region) in cases {
            let info = detect_from_key(key);
            assert_eq!(info.source, source, "{key}");
            assert_eq!(info.account.as_deref(), account, "{key}");
            assert_eq!(info.region.as_deref(), region, "{key}");
        }
    }

    #[test]
    fn content_sniffing_is_the_fallback() {
        assert_eq!(
            sniff(b"{\"Records\":[{\"eventVersion\":\"1.08\"}]}"),
            Some(SourceKind::CloudTrail)
        );
        assert_eq!(
            sniff(b"{\n  \"Records\" : [\n"),
            Some(SourceKind::CloudTrail)
        );
        assert_eq!(sniff(b"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n"), Some(SourceKind::VpcFlow));
        assert_eq!(sniff(b"{\"awsAccountId\":\"1\",\"digestStartTime\":\"x\",\"digestEndTime\":\"y\",\"logFiles\":[]}"), Some(SourceKind::CloudTrailDigest));
        assert_eq!(sniff(b"h2 2024-05-14T00:00:01.000000Z app/a/b 192.0.2.1:1 - -1 -1 -1 400 - 0 0 \"- - -\" \"-\" - -"), Some(SourceKind::Elb));
        assert_eq!(
            sniff(b"tls 2.0 2020-04-01T08:51:42 net/a/b l 192.0.2.1:1 192.0.2.2:443"),
            Some(SourceKind::Elb)
        );
        assert_eq!(
            sniff(b"2015-05-13T23:39:43.945958Z my-lb 192.0.2.1:2817 - 0.1"),
            Some(SourceKind::Elb)
        );
        assert_eq!(sniff(b"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be bucket [06/Feb/2019:00:00:38 +0000] 192.0.2.3"), Some(SourceKind::S3Access));
        assert_eq!(sniff(b"{\"version\":\"0\",\"id\":\"1\",\"detail-type\":\"GuardDuty Finding\",\"source\":\"aws.guardduty\"}"), Some(SourceKind::GuardDuty));
        assert_eq!(sniff(b"{\n  \"SchemaVersion\": \"2018-10-08\",\n  \"Id\": \"x\",\n  \"ProductArn\": \"arn\""), Some(SourceKind::SecurityHub));
        assert_eq!(sniff(b"hello world"), None);
        assert_eq!(
            sniff(b"{\"Records\":[{\"eventVersion\":\"2.1\",\"eventSource\":\"aws:s3\"}]}"),
            None
        );
        assert_eq!(
            sniff(
                b"{\"messageType\":\"DATA_MESSAGE\",\"owner\":\"111122223333\",\"logGroup\":\"g\"}"
            ),
            Some(SourceKind::CloudWatchLogs)
        );
    }
}
