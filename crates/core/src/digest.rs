//! CloudTrail log file integrity: digest files parsed and checked after AWS's documented
//! format and algorithm (cloudtrail-log-file-validation-digest-file-structure.html and
//! cloudtrail-log-file-custom-validation.html).
//!
//! Each hourly digest lists the log files delivered in its hour with the SHA-256 of their
//! uncompressed bytes, and links to the previous digest by that digest's SHA-256 and
//! signature; the digest itself is signed (SHA256withRSA) over a documented string, the
//! signature kept in the object's `x-amz-meta-signature`. Here that is pure logic: the
//! caller supplies the digests' bytes and signatures, a way to hash each listed log file
//! ([`LogFiles`]) and an RSA check ([`SignatureVerifier`]), so the same code serves the
//! CLI over a local mirror and the Lambda over S3 without a crypto crate in the core.

use crate::error::{Error, Location};
use crate::time::parse_rfc3339_ms;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::io::{self, Read};

/// The only signature algorithm CloudTrail documents.
pub const SIGNATURE_ALGORITHM: &str = "SHA256withRSA";
/// The only hash algorithm CloudTrail documents for log files and previous digests.
pub const HASH_ALGORITHM: &str = "SHA-256";

/// One digest file's JSON, typed after the documented structure.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Digest {
    pub aws_account_id: String,
    pub digest_start_time: String,
    /// Kept verbatim: it is the first line of the signed string.
    pub digest_end_time: String,
    pub digest_s3_bucket: String,
    pub digest_s3_object: String,
    pub digest_public_key_fingerprint: String,
    pub digest_signature_algorithm: String,
    #[serde(default)]
    pub newest_event_time: Option<String>,
    #[serde(default)]
    pub oldest_event_time: Option<String>,
    /// All `previousDigest*` fields are null in the first digest of a chain.
    #[serde(default)]
    pub previous_digest_s3_bucket: Option<String>,
    #[serde(default)]
    pub previous_digest_s3_object: Option<String>,
    #[serde(default)]
    pub previous_digest_hash_value: Option<String>,
    #[serde(default)]
    pub previous_digest_hash_algorithm: Option<String>,
    #[serde(default)]
    pub previous_digest_signature: Option<String>,
    /// Null or empty when no log file was delivered in the digest's hour.
    #[serde(default)]
    pub log_files: Option<Vec<LogFileEntry>>,
}

/// One log file listed in a digest.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LogFileEntry {
    pub s3_bucket: String,
    pub s3_object: String,
    /// Hex SHA-256 of the log file's uncompressed bytes.
    pub hash_value: String,
    pub hash_algorithm: String,
    #[serde(default)]
    pub newest_event_time: Option<String>,
    #[serde(default)]
    pub oldest_event_time: Option<String>,
}

impl Digest {
    pub fn log_files(&self) -> &[LogFileEntry] {
        self.log_files.as_deref().unwrap_or_default()
    }

    /// The region whose CloudTrail signed this digest (the key's
    /// `CloudTrail-Digest/<region>/` segment): public keys are per region.
    pub fn region(&self) -> Option<&str> {
        const MARK: &str = "CloudTrail-Digest/";
        let key = self.digest_s3_object.as_str();
        let at = key.find(MARK)? + MARK.len();
        key[at..].split('/').next().filter(|r| !r.is_empty())
    }

    /// `s3://bucket/key` of this digest.
    pub fn s3_uri(&self) -> String {
        format!("s3://{}/{}", self.digest_s3_bucket, self.digest_s3_object)
    }

    fn previous(&self) -> Option<(&str, &str)> {
        Some((
            self.previous_digest_s3_bucket.as_deref()?,
            self.previous_digest_s3_object.as_deref()?,
        ))
    }
}

/// A digest as read: its fields, where it was read from, and the SHA-256 of its
/// uncompressed bytes (which both its signature and the next digest's link cover).
#[derive(Debug, Clone)]
pub struct ParsedDigest {
    pub object: String,
    pub digest: Digest,
    pub sha256: String,
}

/// Parses the uncompressed bytes of a digest file; `object` names it in errors.
/// Malformed timestamps and hashes are errors naming the field: CloudTrail never writes
/// them, so such a file was not written by CloudTrail as it stands.
pub fn parse(object: &str, uncompressed: &[u8]) -> Result<ParsedDigest, Error> {
    let digest: Digest = serde_json::from_slice(uncompressed).map_err(|e| Error::Format {
        at: Location {
            object: object.to_string(),
            line: Some(e.line() as u64),
            record: None,
        },
        reason: format!("not a CloudTrail digest file: {e}"),
    })?;
    let bad = |field: String, value: &str, what: &str| Error::Format {
        at: Location::object(object),
        reason: format!("field {field}: {value:?} is not {what}"),
    };
    let timestamp = "a UTC timestamp (YYYY-MM-DDTHH:MM:SSZ)";
    let hash = "a hex SHA-256 (64 hex digits)";
    for (field, value) in [
        ("digestStartTime", Some(&digest.digest_start_time)),
        ("digestEndTime", Some(&digest.digest_end_time)),
        ("newestEventTime", digest.newest_event_time.as_ref()),
        ("oldestEventTime", digest.oldest_event_time.as_ref()),
    ] {
        if let Some(v) = value.filter(|v| parse_rfc3339_ms(v).is_none()) {
            return Err(bad(field.into(), v, timestamp));
        }
    }
    if let Some(v) = digest
        .previous_digest_hash_value
        .as_ref()
        .filter(|v| !is_sha256_hex(v))
    {
        return Err(bad("previousDigestHashValue".into(), v, hash));
    }
    for (i, f) in digest.log_files().iter().enumerate() {
        if !is_sha256_hex(&f.hash_value) {
            return Err(bad(format!("logFiles[{i}].hashValue"), &f.hash_value, hash));
        }
        for (name, value) in [
            ("newestEventTime", f.newest_event_time.as_ref()),
            ("oldestEventTime", f.oldest_event_time.as_ref()),
        ] {
            if let Some(v) = value.filter(|v| parse_rfc3339_ms(v).is_none()) {
                return Err(bad(format!("logFiles[{i}].{name}"), v, timestamp));
            }
        }
    }
    Ok(ParsedDigest {
        object: object.to_string(),
        digest,
        sha256: hex::encode(Sha256::digest(uncompressed)),
    })
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Hex SHA-256 of everything `reader` yields (streamed: log files can be large).
pub fn sha256_hex(mut reader: impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The documented data-signing string: end time, `bucket/key`, the digest's own hex
/// SHA-256, and the previous digest's signature (the word `null` for the first digest
/// of a chain, as CloudTrail's own validators sign it).
pub fn signing_string(digest: &Digest, sha256_hex: &str) -> String {
    format!(
        "{}\n{}/{}\n{}\n{}",
        digest.digest_end_time,
        digest.digest_s3_bucket,
        digest.digest_s3_object,
        sha256_hex,
        digest
            .previous_digest_signature
            .as_deref()
            .unwrap_or("null")
    )
}

/// A digest to verify, with what S3 (or its local stand-in) knows about it.
#[derive(Debug, Clone)]
pub struct DigestInput {
    pub parsed: ParsedDigest,
    /// The hex `x-amz-meta-signature`, or why it is not known.
    pub signature: Result<String, String>,
    /// The key (or path) the digest was read from, when known: a digest that is not at
    /// the key it names has been moved, and its place in the chain cannot be trusted.
    pub found_at: Option<String>,
}

/// What looking up one listed log file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogFileLookup {
    /// Hex SHA-256 of the uncompressed bytes.
    Found(String),
    Missing,
    /// It is there but could not be read or decompressed.
    Unreadable(String),
}

/// Hashes the log files a digest lists (S3 GetObject, a local mirror, a fake).
pub trait LogFiles {
    fn sha256(&mut self, bucket: &str, key: &str) -> LogFileLookup;
}

/// The outcome of one RSA check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    Valid,
    Invalid(String),
    /// No check was possible (no key with that fingerprint, no keys given).
    Unavailable(String),
}

/// Checks a SHA256withRSA signature with the CloudTrail public key of `fingerprint`.
pub trait SignatureVerifier {
    fn verify(&self, fingerprint: &str, message: &[u8], signature: &[u8]) -> SignatureCheck;

    /// Checks `digest`'s signature. Verifiers that look keys up by region and time
    /// (ListPublicKeys in the Lambda) need the digest, not just its fingerprint.
    fn verify_digest(&self, digest: &Digest, message: &[u8], signature: &[u8]) -> SignatureCheck {
        self.verify(&digest.digest_public_key_fingerprint, message, signature)
    }
}

/// A verifier for when no public keys are at hand: every signature is reported as not
/// checked, with the reason given, never as verified.
pub struct NoPublicKeys(pub String);

impl SignatureVerifier for NoPublicKeys {
    fn verify(&self, _: &str, _: &[u8], _: &[u8]) -> SignatureCheck {
        SignatureCheck::Unavailable(self.0.clone())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "snake_case")]
pub enum SignatureStatus {
    Valid,
    Invalid(String),
    NotChecked(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ChainStatus {
    /// The first digest of a chain (no previous digest), with nothing older given.
    Start,
    /// The previous digest is present and matches the recorded hash and signature.
    Linked { previous: String },
    /// The previous digest is not among those given, and neither is anything older:
    /// the start of the range checked, not evidence of a deletion.
    RangeStart { previous: String },
    /// The chain is broken here.
    Gap {
        previous: Option<String>,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum LogFileStatus {
    Verified,
    Missing,
    Modified { expected: String, actual: String },
    Unreadable { reason: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct DigestReport {
    /// `s3://bucket/key` the digest names itself by.
    pub digest: String,
    /// Where it was read from.
    pub object: String,
    pub account_id: String,
    pub start_time: String,
    pub end_time: String,
    pub log_files: usize,
    pub signature: SignatureStatus,
    pub chain: ChainStatus,
    /// Set when the digest was read from somewhere other than the key it names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved_from_key: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LogFileReport {
    /// `s3://bucket/key` of the log file.
    pub log_file: String,
    /// The digest that lists it.
    pub digest: String,
    #[serde(flatten)]
    pub status: LogFileStatus,
}

/// A digest file that could not be read or parsed at all.
#[derive(Debug, Clone, Serialize)]
pub struct InvalidDigest {
    pub object: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub digests: u64,
    pub digests_invalid: u64,
    pub signatures_valid: u64,
    pub signatures_invalid: u64,
    pub signatures_not_checked: u64,
    pub chain_gaps: u64,
    pub digests_moved: u64,
    pub log_files: u64,
    pub verified: u64,
    pub missing: u64,
    pub modified: u64,
    pub unreadable: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub totals: Totals,
    pub digests: Vec<DigestReport>,
    pub log_files: Vec<LogFileReport>,
    pub invalid_digests: Vec<InvalidDigest>,
}

impl Report {
    /// Adds a digest file that could not be parsed (it counts against a clean result).
    pub fn add_invalid(&mut self, object: impl Into<String>, reason: impl Into<String>) {
        self.invalid_digests.push(InvalidDigest {
            object: object.into(),
            reason: reason.into(),
        });
        self.recount();
    }

    /// True when nothing is missing, modified, unreadable, gapped, moved or badly
    /// signed. Signatures that could not be checked do not count against it; they are
    /// reported as such.
    pub fn is_clean(&self) -> bool {
        let t = &self.totals;
        t.digests_invalid == 0
            && t.signatures_invalid == 0
            && t.chain_gaps == 0
            && t.digests_moved == 0
            && t.missing == 0
            && t.modified == 0
            && t.unreadable == 0
    }

    fn recount(&mut self) {
        let mut t = Totals {
            digests: self.digests.len() as u64,
            digests_invalid: self.invalid_digests.len() as u64,
            log_files: self.log_files.len() as u64,
            ..Totals::default()
        };
        for d in &self.digests {
            match d.signature {
                SignatureStatus::Valid => t.signatures_valid += 1,
                SignatureStatus::Invalid(_) => t.signatures_invalid += 1,
                SignatureStatus::NotChecked(_) => t.signatures_not_checked += 1,
            }
            if matches!(d.chain, ChainStatus::Gap { .. }) {
                t.chain_gaps += 1;
            }
            if d.moved_from_key.is_some() {
                t.digests_moved += 1;
            }
        }
        for f in &self.log_files {
            match f.status {
                LogFileStatus::Verified => t.verified += 1,
                LogFileStatus::Missing => t.missing += 1,
                LogFileStatus::Modified { .. } => t.modified += 1,
                LogFileStatus::Unreadable { .. } => t.unreadable += 1,
            }
        }
        self.totals = t;
    }
}

/// Digests of one trail in one region form one chain; the key says which:
/// `…/CloudTrail-Digest/<region>/<y>/<m>/<d>/<account>_CloudTrail-Digest_<region>_<trail>_<home>_<time>.json.gz`.
fn chain_id(d: &Digest) -> String {
    let key = d.digest_s3_object.as_str();
    let (dir, file) = key.rsplit_once('/').unwrap_or(("", key));
    let trail = file.rsplit_once('_').map_or(file, |(t, _)| t);
    const MARK: &str = "CloudTrail-Digest/";
    let prefix = match dir.find(MARK) {
        Some(i) => {
            let region = dir[i + MARK.len()..].split('/').next().unwrap_or("");
            &dir[..i + MARK.len() + region.len()]
        }
        None => dir,
    };
    format!("{}/{prefix}/{trail}", d.digest_s3_bucket)
}

fn end_ms(d: &Digest) -> i64 {
    parse_rfc3339_ms(&d.digest_end_time).unwrap_or(i64::MIN)
}

fn is_at_key(found_at: &str, key: &str) -> bool {
    found_at == key
        || found_at
            .strip_suffix(key)
            .is_some_and(|rest| rest.ends_with('/') || rest.ends_with('\\'))
}

/// Verifies a set of digests: each one's signature and place in its chain, and each log
/// file it lists. Digests are reported oldest first within each chain.
pub fn verify(
    inputs: &[DigestInput],
    logs: &mut dyn LogFiles,
    verifier: &dyn SignatureVerifier,
) -> Report {
    let mut order: Vec<usize> = (0..inputs.len()).collect();
    let chains: Vec<String> = inputs.iter().map(|i| chain_id(&i.parsed.digest)).collect();
    order.sort_by(|&a, &b| {
        (&chains[a], end_ms(&inputs[a].parsed.digest))
            .cmp(&(&chains[b], end_ms(&inputs[b].parsed.digest)))
    });
    let mut by_key: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, input) in inputs.iter().enumerate() {
        let d = &input.parsed.digest;
        by_key
            .entry((&d.digest_s3_bucket, &d.digest_s3_object))
            .or_insert(i);
    }
    let mut oldest: HashMap<&str, i64> = HashMap::new();
    for (i, input) in inputs.iter().enumerate() {
        let e = oldest.entry(&chains[i]).or_insert(i64::MAX);
        *e = (*e).min(end_ms(&input.parsed.digest));
    }

    let mut report = Report::default();
    for &i in &order {
        let input = &inputs[i];
        let d = &input.parsed.digest;
        let has_older = oldest
            .get(chains[i].as_str())
            .is_some_and(|&o| o < end_ms(d));
        let chain = chain_status(d, has_older, inputs, &by_key);
        report.digests.push(DigestReport {
            digest: d.s3_uri(),
            object: input.parsed.object.clone(),
            account_id: d.aws_account_id.clone(),
            start_time: d.digest_start_time.clone(),
            end_time: d.digest_end_time.clone(),
            log_files: d.log_files().len(),
            signature: signature_status(input, verifier),
            chain,
            moved_from_key: input
                .found_at
                .as_ref()
                .filter(|f| !is_at_key(f, &d.digest_s3_object))
                .cloned(),
        });
        for f in d.log_files() {
            let status = if f.hash_algorithm != HASH_ALGORITHM {
                LogFileStatus::Unreadable {
                    reason: format!("unsupported hashAlgorithm {:?}", f.hash_algorithm),
                }
            } else {
                match logs.sha256(&f.s3_bucket, &f.s3_object) {
                    LogFileLookup::Found(actual) if actual.eq_ignore_ascii_case(&f.hash_value) => {
                        LogFileStatus::Verified
                    }
                    LogFileLookup::Found(actual) => LogFileStatus::Modified {
                        expected: f.hash_value.to_ascii_lowercase(),
                        actual,
                    },
                    LogFileLookup::Missing => LogFileStatus::Missing,
                    LogFileLookup::Unreadable(reason) => LogFileStatus::Unreadable { reason },
                }
            };
            report.log_files.push(LogFileReport {
                log_file: format!("s3://{}/{}", f.s3_bucket, f.s3_object),
                digest: d.s3_uri(),
                status,
            });
        }
    }
    report.recount();
    report
}

fn signature_status(input: &DigestInput, verifier: &dyn SignatureVerifier) -> SignatureStatus {
    let d = &input.parsed.digest;
    if d.digest_signature_algorithm != SIGNATURE_ALGORITHM {
        return SignatureStatus::NotChecked(format!(
            "unsupported digestSignatureAlgorithm {:?}",
            d.digest_signature_algorithm
        ));
    }
    let hex_signature = match &input.signature {
        Ok(s) => s.trim(),
        Err(why) => return SignatureStatus::NotChecked(why.clone()),
    };
    let Ok(signature) = hex::decode(hex_signature) else {
        return SignatureStatus::Invalid("the signature is not hex".into());
    };
    let message = signing_string(d, &input.parsed.sha256);
    match verifier.verify_digest(d, message.as_bytes(), &signature) {
        SignatureCheck::Valid => SignatureStatus::Valid,
        SignatureCheck::Invalid(why) => SignatureStatus::Invalid(why),
        SignatureCheck::Unavailable(why) => SignatureStatus::NotChecked(why),
    }
}

fn chain_status(
    d: &Digest,
    has_older: bool,
    inputs: &[DigestInput],
    by_key: &HashMap<(&str, &str), usize>,
) -> ChainStatus {
    let Some((bucket, key)) = d.previous() else {
        return if has_older {
            ChainStatus::Gap {
                previous: None,
                reason: "the chain restarts here (no previous digest) although older digests \
                         of this trail are present: logging or validation was off in between"
                    .into(),
            }
        } else {
            ChainStatus::Start
        };
    };
    let previous = format!("s3://{bucket}/{key}");
    let gap = |reason: String| ChainStatus::Gap {
        previous: Some(previous.clone()),
        reason,
    };
    if let Some(alg) = d
        .previous_digest_hash_algorithm
        .as_deref()
        .filter(|a| *a != HASH_ALGORITHM)
    {
        return gap(format!("unsupported previousDigestHashAlgorithm {alg:?}"));
    }
    let Some(&p) = by_key.get(&(bucket, key)) else {
        return if has_older {
            gap("the previous digest is missing".into())
        } else {
            ChainStatus::RangeStart { previous }
        };
    };
    let prev = &inputs[p];
    match d.previous_digest_hash_value.as_deref() {
        None => return gap("previousDigestHashValue is absent".into()),
        Some(h) if !h.eq_ignore_ascii_case(&prev.parsed.sha256) => {
            return gap(format!(
                "the previous digest's SHA-256 is {}, this digest recorded {}: it was changed",
                prev.parsed.sha256, h
            ))
        }
        Some(_) => {}
    }
    if let (Ok(sig), Some(recorded)) = (&prev.signature, &d.previous_digest_signature) {
        if !sig.trim().eq_ignore_ascii_case(recorded) {
            return gap(
                "the previous digest's signature differs from this digest's previousDigestSignature"
                    .into(),
            );
        }
    }
    ChainStatus::Linked { previous }
}

/// Generator id of the detections [`integrity_detections`] makes.
pub const INTEGRITY_RULE_ID: &str = "cloudtrail-log-file-integrity";
const INTEGRITY_DOC: &str =
    "https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-validation-intro.html";

/// One detection per log file that is missing or was modified after delivery, per
/// digest whose signature is invalid, and per break in a digest chain. Each is identified by the object it is about, so a re-run
/// updates the same finding rather than adding one. Unreadable log files are not
/// reported here: a read failure is not evidence of tampering.
pub fn integrity_detections(report: &Report) -> Vec<crate::detect::Detection> {
    use crate::detect::{Detection, DetectionResource, SeverityLabel};
    let digests: HashMap<&str, &DigestReport> = report
        .digests
        .iter()
        .map(|d| (d.digest.as_str(), d))
        .collect();
    let make = |digest: &DigestReport, object: &str, title: String, description: String| {
        let time = parse_rfc3339_ms(&digest.end_time)
            .map(crate::time::format_rfc3339_ms)
            .unwrap_or_else(|| digest.end_time.clone());
        let arn_path = object.strip_prefix("s3://").unwrap_or(object);
        Detection {
            rule_id: INTEGRITY_RULE_ID.into(),
            title,
            description,
            severity: SeverityLabel::High,
            types: vec!["TTPs/Defense Evasion/CloudTrail log file integrity".into()],
            remediation: INTEGRITY_DOC.into(),
            event_uids: vec![object.to_string()],
            account: digest.account_id.clone(),
            region: region_of(&digest.digest).unwrap_or("unknown").to_string(),
            time: time.clone(),
            first_seen: time,
            actor: None,
            src_ip: None,
            operation: None,
            resource: DetectionResource {
                id: format!("arn:aws:s3:::{arn_path}"),
                type_: "AwsS3Object".into(),
            },
            // CloudTrail's records are mostly API Activity; the class keeps the schema.
            class_uid: 6003,
        }
    };
    let mut out = Vec::new();
    for f in &report.log_files {
        let Some(d) = digests.get(f.digest.as_str()) else {
            continue;
        };
        let (title, description) = match &f.status {
            LogFileStatus::Missing => (
                format!("CloudTrail log file missing: {}", f.log_file),
                format!(
                    "The CloudTrail digest {} lists {}, which is no longer in the bucket: \
                     a delivered log file was deleted.",
                    f.digest, f.log_file
                ),
            ),
            LogFileStatus::Modified { expected, actual } => (
                format!(
                    "CloudTrail log file modified after delivery: {}",
                    f.log_file
                ),
                format!(
                    "The CloudTrail digest {} records SHA-256 {expected} for {}, but the file \
                     now hashes to {actual}: it was changed after CloudTrail delivered it.",
                    f.digest, f.log_file
                ),
            ),
            LogFileStatus::Verified | LogFileStatus::Unreadable { .. } => continue,
        };
        out.push(make(d, &f.log_file, title, description));
    }
    for d in &report.digests {
        if let SignatureStatus::Invalid(why) = &d.signature {
            out.push(make(
                d,
                &d.digest,
                format!("CloudTrail digest signature invalid: {}", d.digest),
                format!(
                    "The signature of the CloudTrail digest {} does not verify with CloudTrail's \
                     public key: the digest was changed or forged after delivery ({why}).",
                    d.digest
                ),
            ));
        }
        if let ChainStatus::Gap { previous, reason } = &d.chain {
            let previous = previous.as_deref().unwrap_or("none");
            out.push(make(
                d,
                &d.digest,
                format!("CloudTrail digest chain broken at {}", d.digest),
                format!(
                    "The CloudTrail digest {} does not link to its previous digest ({previous}): {reason}.",
                    d.digest
                ),
            ));
        }
    }
    out
}

/// The region segment of `…/CloudTrail-Digest/<region>/…`.
fn region_of(uri: &str) -> Option<&str> {
    const MARK: &str = "/CloudTrail-Digest/";
    let at = uri.find(MARK)? + MARK.len();
    uri[at..].split('/').next().filter(|r| !r.is_empty())
}

/// Hashes log files read through an [`ObjectSource`](crate::ports::ObjectSource) (S3 in
/// the Lambda). A failure a retry may fix is kept, so the caller fails the object rather
/// than report a file it could not read.
struct SourceLogs<'a> {
    source: &'a dyn crate::ports::ObjectSource,
    retryable: Option<Error>,
}

impl LogFiles for SourceLogs<'_> {
    fn sha256(&mut self, bucket: &str, key: &str) -> LogFileLookup {
        match self.source.open(bucket, key, None) {
            Ok(None) => LogFileLookup::Missing,
            Ok(Some(o)) => {
                let display = o.meta.display();
                let hashed = crate::framing::decode(
                    o.body,
                    o.meta.content_encoding.as_deref(),
                    o.meta.content_type.as_deref(),
                    &display,
                )
                .and_then(|d| {
                    let errors = d.errors.clone();
                    sha256_hex(d.reader).map_err(|e| errors.classify(Location::object(&display), e))
                });
                match hashed {
                    Ok(h) => LogFileLookup::Found(h),
                    Err(e) => self.unreadable(e),
                }
            }
            Err(e) => self.unreadable(e),
        }
    }
}

impl SourceLogs<'_> {
    fn unreadable(&mut self, e: Error) -> LogFileLookup {
        let reason = e.to_string();
        if e.is_retryable() && self.retryable.is_none() {
            self.retryable = Some(e);
        }
        LogFileLookup::Unreadable(reason)
    }
}

/// A digest object as read: its name, uncompressed bytes and signature (or why not).
type DigestObject = (String, Vec<u8>, Result<String, String>);

/// Reads and decodes a whole digest object (digests are small; `limit` bounds them).
fn read_digest_object(
    source: &dyn crate::ports::ObjectSource,
    bucket: &str,
    key: &str,
    limit: u64,
) -> Result<Option<DigestObject>, Error> {
    let Some(o) = source.open(bucket, key, None)? else {
        return Ok(None);
    };
    let display = o.meta.display();
    let signature = signature_of(&o.meta);
    let d = crate::framing::decode(
        o.body,
        o.meta.content_encoding.as_deref(),
        o.meta.content_type.as_deref(),
        &display,
    )?;
    let errors = d.errors.clone();
    let mut bytes = Vec::new();
    d.reader
        .take(limit)
        .read_to_end(&mut bytes)
        .map_err(|e| errors.classify(Location::object(&display), e))?;
    Ok(Some((display, bytes, signature)))
}

/// The signature S3 keeps with a digest, or why there is none to check.
fn signature_of(meta: &crate::ports::ObjectMeta) -> Result<String, String> {
    if let Some(alg) = meta
        .signature_algorithm
        .as_deref()
        .filter(|a| *a != SIGNATURE_ALGORITHM)
    {
        return Err(format!(
            "unsupported x-amz-meta-signature-algorithm {alg:?}"
        ));
    }
    meta.signature
        .clone()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| "the object has no x-amz-meta-signature".to_string())
}

/// Checks the signature of one digest only.
struct OnlyDigest<'a> {
    current: Option<&'a Digest>,
    inner: &'a dyn SignatureVerifier,
}

impl SignatureVerifier for OnlyDigest<'_> {
    fn verify(&self, _: &str, _: &[u8], _: &[u8]) -> SignatureCheck {
        SignatureCheck::Unavailable("not the digest being checked".into())
    }

    fn verify_digest(&self, digest: &Digest, message: &[u8], signature: &[u8]) -> SignatureCheck {
        if self.current == Some(digest) {
            self.inner.verify_digest(digest, message, signature)
        } else {
            self.verify("", message, signature)
        }
    }
}

/// Digest objects larger than this are not CloudTrail's (an hour's list of log files).
pub const MAX_DIGEST_BYTES: u64 = 64 << 20;

/// Verifies a digest that has just been delivered to `bucket/key`: each log file it lists
/// (read through `source`) and its link to the previous digest, which must be in the
/// bucket. Signatures are reported as not checked (see [`verify_delivered_signed`]).
/// `Err` only for failures a retry may fix, or the digest itself unreadable.
pub fn verify_delivered(
    source: &dyn crate::ports::ObjectSource,
    bucket: &str,
    key: &str,
) -> Result<Report, Error> {
    let verifier = NoPublicKeys("signatures are not checked here".into());
    verify_delivered_signed(source, bucket, key, &verifier)
}

/// As [`verify_delivered`], and the digest's signature (its `x-amz-meta-signature`) is
/// checked with `verifier`; the previous digest's signature, read the same way, must be
/// the one this digest recorded. A verifier that cannot get at the keys reports the
/// signature as not checked, which is not an integrity problem.
pub fn verify_delivered_signed(
    source: &dyn crate::ports::ObjectSource,
    bucket: &str,
    key: &str,
    verifier: &dyn SignatureVerifier,
) -> Result<Report, Error> {
    let mut report = Report::default();
    let Some((display, bytes, signature)) =
        read_digest_object(source, bucket, key, MAX_DIGEST_BYTES)?
    else {
        return Ok(report);
    };
    let parsed = match parse(&display, &bytes) {
        Ok(p) => p,
        Err(e) => {
            report.add_invalid(display, e.to_string());
            return Ok(report);
        }
    };
    let current = parsed.digest.s3_uri();
    let mut inputs = Vec::new();
    let mut previous_missing = false;
    if let Some((pb, pk)) = parsed.digest.previous() {
        match read_digest_object(source, pb, pk, MAX_DIGEST_BYTES) {
            Ok(Some((pd, pbytes, psignature))) => {
                if let Ok(mut prev) = parse(&pd, &pbytes) {
                    // Its log files were checked when it arrived; only the link is wanted.
                    prev.digest.log_files = None;
                    inputs.push(DigestInput {
                        parsed: prev,
                        signature: psignature,
                        found_at: None,
                    });
                }
            }
            Ok(None) => previous_missing = true,
            Err(e) if e.is_retryable() => return Err(e),
            // Unreadable (another bucket without access, say): the link goes unchecked.
            Err(_) => {}
        }
    }
    inputs.push(DigestInput {
        parsed,
        signature,
        found_at: Some(key.to_string()),
    });
    let mut logs = SourceLogs {
        source,
        retryable: None,
    };
    // Only the arriving digest's signature is reported; the previous one's was checked
    // when it arrived, so it is not looked up again.
    let current_digest = inputs.last().map(|i| i.parsed.digest.clone());
    let verifier = OnlyDigest {
        current: current_digest.as_ref(),
        inner: verifier,
    };
    report = verify(&inputs, &mut logs, &verifier);
    if let Some(e) = logs.retryable {
        return Err(e);
    }
    report.digests.retain(|d| d.digest == current);
    if previous_missing {
        for d in &mut report.digests {
            if let ChainStatus::RangeStart { previous } = &d.chain {
                d.chain = ChainStatus::Gap {
                    previous: Some(previous.clone()),
                    reason: "the previous digest is missing from the bucket".into(),
                };
            }
        }
    }
    report.recount();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn samples() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/cloudtrail-digest")
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// The sample chain, oldest first: (key, uncompressed bytes, signature).
    fn chain() -> Vec<(String, Vec<u8>, String)> {
        let dir = samples().join("AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/05");
        let mut files = Vec::new();
        for day in ["14", "15"] {
            let mut names: Vec<_> = std::fs::read_dir(dir.join(day))
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(".json.gz"))
                .collect();
            names.sort();
            files.extend(names);
        }
        files
            .into_iter()
            .map(|p| {
                let key = p
                    .strip_prefix(samples())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let sig = std::fs::read_to_string(format!("{}.sig", p.display())).unwrap();
                (key, gunzip(&std::fs::read(&p).unwrap()), sig)
            })
            .collect()
    }

    /// Log files as a map from key to hash; anything else is missing.
    struct Logs(HashMap<String, LogFileLookup>);
    impl LogFiles for Logs {
        fn sha256(&mut self, _bucket: &str, key: &str) -> LogFileLookup {
            self.0.get(key).cloned().unwrap_or(LogFileLookup::Missing)
        }
    }

    fn real_logs() -> Logs {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/cloudtrail");
        let mut m = HashMap::new();
        for (_, bytes, _) in chain() {
            let d = parse("x", &bytes).unwrap().digest;
            for f in d.log_files() {
                let raw = std::fs::read(root.join(&f.s3_object)).unwrap();
                let h = sha256_hex(flate2::read::MultiGzDecoder::new(&raw[..])).unwrap();
                m.insert(f.s3_object.clone(), LogFileLookup::Found(h));
            }
        }
        Logs(m)
    }

    /// Stands in for RSA (the CLI tests run the real check): a signature is valid when
    /// it is the one the sample generator wrote for exactly this signing string.
    struct FakeRsa(HashMap<Vec<u8>, Vec<u8>>);
    impl FakeRsa {
        fn new(inputs: &[DigestInput]) -> Self {
            let mut m = HashMap::new();
            for i in inputs {
                let message = signing_string(&i.parsed.digest, &i.parsed.sha256);
                m.insert(
                    message.into_bytes(),
                    hex::decode(i.signature.as_ref().unwrap()).unwrap(),
                );
            }
            FakeRsa(m)
        }
    }
    impl SignatureVerifier for FakeRsa {
        fn verify(&self, fp: &str, message: &[u8], signature: &[u8]) -> SignatureCheck {
            if fp != "6fddd908678a4fe3b299851e8d2ebcee" {
                return SignatureCheck::Unavailable(format!("no key {fp}"));
            }
            if self.0.get(message).is_some_and(|s| s == signature) {
                SignatureCheck::Valid
            } else {
                SignatureCheck::Invalid("mismatch".into())
            }
        }
    }

    fn inputs(chain: &[(String, Vec<u8>, String)]) -> Vec<DigestInput> {
        chain
            .iter()
            .map(|(key, bytes, sig)| DigestInput {
                parsed: parse(key, bytes).unwrap(),
                signature: Ok(sig.trim().to_string()),
                found_at: Some(key.clone()),
            })
            .collect()
    }

    #[test]
    fn samples_parse_and_sign_the_documented_string() {
        let c = chain();
        assert_eq!(c.len(), 3);
        let first = parse(&c[0].0, &c[0].1).unwrap();
        assert_eq!(first.digest.previous_digest_signature, None);
        assert_eq!(first.digest.log_files().len(), 1);
        let s = signing_string(&first.digest, &first.sha256);
        let lines: Vec<&str> = s.split('\n').collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], "2024-05-14T09:00:00Z");
        assert_eq!(lines[1], format!("amzn-s3-demo-bucket/{}", c[0].0));
        assert_eq!(lines[2], first.sha256);
        assert_eq!(lines[3], "null");
        let third = parse(&c[2].0, &c[2].1).unwrap();
        assert_eq!(
            third.digest.previous_digest_signature.as_deref(),
            Some(c[1].2.trim())
        );
        assert_eq!(parse(&c[1].0, &c[1].1).unwrap().digest.log_files().len(), 0);
    }

    #[test]
    fn parse_errors_name_the_file_and_field() {
        let corpus = std::env::var_os("MUSTER_CORPUS")
            .map(|c| PathBuf::from(c).join("cloudtrail/otel_cloudtrail_digest.json"));
        let mut cases: Vec<(String, Vec<u8>, &str)> = vec![
            ("empty".into(), b"".to_vec(), "not a CloudTrail digest file"),
            (
                "array".into(),
                b"[]".to_vec(),
                "not a CloudTrail digest file",
            ),
            (
                "no-end".into(),
                br#"{"awsAccountId":"1","digestStartTime":"2024-05-14T08:00:00Z"}"#.to_vec(),
                "digestEndTime",
            ),
            (
                "bad-hash".into(),
                chain()[0]
                    .1
                    .clone()
                    .replace_all("\"hashValue\":\"", "\"hashValue\":\"zz"),
                "field logFiles[0].hashValue",
            ),
            (
                "bad-time".into(),
                chain()[0].1.clone().replace_all(
                    "\"digestEndTime\":\"2024-05-14T",
                    "\"digestEndTime\":\"2024-05-14TT",
                ),
                "field digestEndTime",
            ),
        ];
        if let Some(path) = corpus.filter(|p| p.exists()) {
            cases.push((
                "otel".into(),
                std::fs::read(path).unwrap(),
                "field logFiles[0].newestEventTime: \"2025-10-21TT00:52:27Z\"",
            ));
        }
        for (name, bytes, expect) in cases {
            let err = parse(&name, &bytes).unwrap_err().to_string();
            assert!(err.starts_with(&name), "{name}: {err}");
            assert!(err.contains(expect), "{name}: {err}");
        }
    }

    trait ReplaceAll {
        fn replace_all(self, from: &str, to: &str) -> Vec<u8>;
    }
    impl ReplaceAll for Vec<u8> {
        fn replace_all(self, from: &str, to: &str) -> Vec<u8> {
            String::from_utf8(self)
                .unwrap()
                .replace(from, to)
                .into_bytes()
        }
    }

    #[test]
    fn verification_reports_each_kind_of_tampering() {
        let c = chain();
        let log0 = parse("x", &c[0].1).unwrap().digest.log_files()[0]
            .s3_object
            .clone();
        struct Case {
            name: &'static str,
            drop_digest: Option<usize>,
            log0: Option<LogFileLookup>,
            tamper_signature: bool,
            moved: bool,
            expect: Totals,
            chains: [&'static str; 3],
        }
        let clean = Totals {
            digests: 3,
            signatures_valid: 3,
            log_files: 2,
            verified: 2,
            ..Totals::default()
        };
        let cases = [
            Case {
                name: "clean chain",
                drop_digest: None,
                log0: None,
                tamper_signature: false,
                moved: false,
                expect: clean.clone(),
                chains: ["start", "linked", "linked"],
            },
            Case {
                name: "modified log file",
                drop_digest: None,
                log0: Some(LogFileLookup::Found("00".repeat(32))),
                tamper_signature: false,
                moved: false,
                expect: Totals {
                    verified: 1,
                    modified: 1,
                    ..clean.clone()
                },
                chains: ["start", "linked", "linked"],
            },
            Case {
                name: "missing log file",
                drop_digest: None,
                log0: Some(LogFileLookup::Missing),
                tamper_signature: false,
                moved: false,
                expect: Totals {
                    verified: 1,
                    missing: 1,
                    ..clean.clone()
                },
                chains: ["start", "linked", "linked"],
            },
            Case {
                name: "deleted middle digest",
                drop_digest: Some(1),
                log0: None,
                tamper_signature: false,
                moved: false,
                expect: Totals {
                    digests: 2,
                    signatures_valid: 2,
                    chain_gaps: 1,
                    ..clean.clone()
                },
                chains: ["start", "gap", ""],
            },
            Case {
                name: "first digest outside the range",
                drop_digest: Some(0),
                log0: None,
                tamper_signature: false,
                moved: false,
                expect: Totals {
                    digests: 2,
                    signatures_valid: 2,
                    log_files: 1,
                    verified: 1,
                    ..clean.clone()
                },
                chains: ["range_start", "linked", ""],
            },
            Case {
                name: "bad signature",
                drop_digest: None,
                log0: None,
                tamper_signature: true,
                moved: false,
                expect: Totals {
                    signatures_valid: 2,
                    signatures_invalid: 1,
                    chain_gaps: 1,
                    ..clean.clone()
                },
                chains: ["start", "linked", "gap"],
            },
            Case {
                name: "moved digest",
                drop_digest: None,
                log0: None,
                tamper_signature: false,
                moved: true,
                expect: Totals {
                    digests_moved: 1,
                    ..clean.clone()
                },
                chains: ["start", "linked", "linked"],
            },
        ];
        for case in cases {
            let mut ins = inputs(&c);
            let rsa = FakeRsa::new(&ins);
            if case.tamper_signature {
                // The middle digest's signature no longer matches what it signs, nor
                // what the next digest recorded as its predecessor's signature.
                ins[1].signature = Ok("ab".repeat(32));
            }
            if case.moved {
                ins[2].found_at = Some("elsewhere/digest.json.gz".into());
            }
            if let Some(i) = case.drop_digest {
                ins.remove(i);
            }
            let mut logs = real_logs();
            if let Some(l) = case.log0 {
                logs.0.insert(log0.clone(), l);
            }
            let report = verify(&ins, &mut logs, &rsa);
            assert_eq!(report.totals, case.expect, "{}", case.name);
            let chains: Vec<String> = report
                .digests
                .iter()
                .map(|d| {
                    serde_json::to_value(&d.chain).unwrap()["status"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect();
            let want: Vec<&str> = case
                .chains
                .iter()
                .copied()
                .filter(|s| !s.is_empty())
                .collect();
            assert_eq!(chains, want, "{}", case.name);
            let problems = Totals {
                digests: 0,
                signatures_valid: 0,
                log_files: 0,
                verified: 0,
                ..case.expect
            };
            assert_eq!(
                report.is_clean(),
                problems == Totals::default(),
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn signatures_without_keys_or_metadata_are_not_checked_never_valid() {
        let c = chain();
        let mut ins = inputs(&c);
        ins[0].signature = Err("no x-amz-meta-signature".into());
        ins[1].signature = Ok("not hex".into());
        let report = verify(
            &ins,
            &mut real_logs(),
            &NoPublicKeys("no keys given".into()),
        );
        let statuses: Vec<_> = report.digests.iter().map(|d| d.signature.clone()).collect();
        assert_eq!(
            statuses,
            [
                SignatureStatus::NotChecked("no x-amz-meta-signature".into()),
                SignatureStatus::Invalid("the signature is not hex".into()),
                SignatureStatus::NotChecked("no keys given".into()),
            ]
        );
    }

    /// The sample bucket as an object store: digests and log files by key; a key can
    /// be made to fail (retryably or not).
    struct Bucket {
        objects: HashMap<String, Vec<u8>>,
        failing: Option<(String, bool)>,
    }

    impl Bucket {
        fn samples() -> Self {
            let mut objects = HashMap::new();
            for root in [samples(), samples().join("../cloudtrail")] {
                let mut stack = vec![root.join("AWSLogs")];
                while let Some(d) = stack.pop() {
                    for e in std::fs::read_dir(&d).unwrap().flatten() {
                        let p = e.path();
                        if p.is_dir() {
                            stack.push(p);
                        } else if p.to_string_lossy().ends_with(".json.gz") {
                            let key = p
                                .strip_prefix(&root)
                                .unwrap()
                                .to_string_lossy()
                                .into_owned();
                            objects.insert(key, std::fs::read(&p).unwrap());
                        }
                    }
                }
            }
            Bucket {
                objects,
                failing: None,
            }
        }
    }

    impl crate::ports::ObjectSource for Bucket {
        fn open(
            &self,
            bucket: &str,
            key: &str,
            _: Option<&str>,
        ) -> crate::Result<Option<crate::ports::OpenedObject>> {
            if let Some((k, retryable)) = &self.failing {
                if k == key {
                    return Err(Error::Open {
                        object: key.into(),
                        message: "SlowDown".into(),
                        retryable: *retryable,
                    });
                }
            }
            Ok(self.objects.get(key).map(|b| crate::ports::OpenedObject {
                meta: crate::ports::ObjectMeta {
                    bucket: bucket.into(),
                    key: key.into(),
                    ..Default::default()
                },
                body: Box::new(std::io::Cursor::new(b.clone())),
            }))
        }
    }

    #[test]
    fn a_delivered_digest_is_checked_against_the_bucket_and_problems_become_detections() {
        let c = chain();
        let (d1, d2, d3) = (c[0].0.clone(), c[1].0.clone(), c[2].0.clone());
        let log1 = parse("x", &c[0].1).unwrap().digest.log_files()[0]
            .s3_object
            .clone();
        let log3 = parse("x", &c[2].1).unwrap().digest.log_files()[0]
            .s3_object
            .clone();
        // (case, digest that arrives, change to the bucket, detection titles, Err retryable)
        type Change = Box<dyn Fn(&mut Bucket)>;
        type Case<'a> = (&'a str, &'a str, Change, Vec<&'a str>, Option<bool>);
        let cases: Vec<Case> = vec![
            ("clean first", &d1, Box::new(|_| {}), vec![], None),
            ("clean linked", &d3, Box::new(|_| {}), vec![], None),
            (
                "log deleted",
                &d3,
                Box::new({
                    let k = log3.clone();
                    move |b| {
                        b.objects.remove(&k);
                    }
                }),
                vec!["CloudTrail log file missing"],
                None,
            ),
            (
                "log modified",
                &d1,
                Box::new({
                    let k = log1.clone();
                    move |b| {
                        b.objects.insert(k.clone(), b"{\"Records\":[]}".to_vec());
                    }
                }),
                vec!["CloudTrail log file modified after delivery"],
                None,
            ),
            (
                "previous digest deleted",
                &d3,
                Box::new({
                    let k = d2.clone();
                    move |b| {
                        b.objects.remove(&k);
                    }
                }),
                vec!["CloudTrail digest chain broken"],
                None,
            ),
            (
                "previous digest edited",
                &d3,
                Box::new({
                    let k = d2.clone();
                    move |b| {
                        b.objects.insert(k.clone(), c_bytes_edited());
                    }
                }),
                vec!["CloudTrail digest chain broken"],
                None,
            ),
            (
                "throttled log read",
                &d3,
                Box::new({
                    let k = log3.clone();
                    move |b| b.failing = Some((k.clone(), true))
                }),
                vec![],
                Some(true),
            ),
            (
                "log read refused",
                &d3,
                Box::new({
                    let k = log3.clone();
                    move |b| b.failing = Some((k.clone(), false))
                }),
                vec![],
                None,
            ),
        ];
        for (name, key, change, titles, err) in cases {
            let mut bucket = Bucket::samples();
            change(&mut bucket);
            let result = verify_delivered(&bucket, "amzn-s3-demo-bucket", key);
            match (result, err) {
                (Err(e), Some(retryable)) => {
                    assert_eq!(e.is_retryable(), retryable, "{name}: {e}");
                    continue;
                }
                (Err(e), None) => panic!("{name}: {e}"),
                (Ok(r), Some(_)) => panic!("{name}: expected an error, got {:?}", r.totals),
                (Ok(report), None) => {
                    assert_eq!(report.digests.len(), 1, "{name}");
                    assert!(matches!(
                        report.digests[0].signature,
                        SignatureStatus::NotChecked(_)
                    ));
                    let found = integrity_detections(&report);
                    let got: Vec<&str> = found.iter().map(|d| d.title.as_str()).collect();
                    assert_eq!(got.len(), titles.len(), "{name}: {got:?}");
                    for (g, t) in got.iter().zip(&titles) {
                        assert!(g.starts_with(t), "{name}: {g}");
                    }
                    for d in &found {
                        assert_eq!(d.account, "111122223333");
                        assert_eq!(d.region, "us-east-1");
                        assert!(d
                            .resource
                            .id
                            .starts_with("arn:aws:s3:::amzn-s3-demo-bucket/AWSLogs/"));
                        assert_eq!(d.event_uids.len(), 1);
                        let target = crate::asff::ImportTarget {
                            account: "111122223333".into(),
                            region: "us-east-1".into(),
                            partition: "aws".into(),
                        };
                        let mut finding =
                            crate::asff::from_detection(d, &target, "2024-05-15T14:00:00.000Z");
                        crate::asff::validate(&mut finding)
                            .unwrap_or_else(|e| panic!("{name}: not valid ASFF: {e:?}"));
                    }
                }
            }
        }
    }

    /// The 10:00 digest with one byte changed (still valid JSON).
    fn c_bytes_edited() -> Vec<u8> {
        String::from_utf8(chain()[1].1.clone())
            .unwrap()
            .replace("\"logFiles\":[]", "\"logFiles\":[] ")
            .into_bytes()
    }
}
