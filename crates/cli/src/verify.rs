//! `muster verify-digests`: CloudTrail log file integrity over a local mirror of the
//! log bucket (the `AWSLogs/...` layout), after AWS's documented validation steps.
//!
//! A local copy carries no S3 metadata, so each digest's signature (S3's
//! `x-amz-meta-signature`) is read from a sidecar `<digest file>.sig` holding the hex
//! signature, or from a `--signatures` JSON map; the public keys are the JSON that
//! `aws cloudtrail list-public-keys` prints. Without either, signatures are reported as
//! not checked, with the reason, never as valid.

use muster_core::digest::{
    self, ChainStatus, DigestInput, LogFileLookup, LogFileStatus, LogFiles, NoPublicKeys, Report,
    SignatureCheck, SignatureStatus, SignatureVerifier,
};
use muster_core::framing;
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

/// Digest files are small (an hour's list of log files); anything far larger is not one.
const MAX_DIGEST_BYTES: u64 = 64 << 20;

#[derive(clap::Args)]
pub struct Args {
    /// The JSON output of `aws cloudtrail list-public-keys` (covering the digests' time
    /// range and region). Without it signatures are reported as not checked.
    #[arg(long)]
    public_keys: Option<PathBuf>,
    /// A JSON object mapping a digest's key (`s3://bucket/key`, `bucket/key` or `key`)
    /// to its hex signature (S3's x-amz-meta-signature), for digests without a
    /// `<digest file>.sig` sidecar.
    #[arg(long)]
    signatures: Option<PathBuf>,
    /// Print the report as JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Digest files, or directories searched for `CloudTrail-Digest/` files. Directories
    /// are also where the listed log files are looked up, by their S3 key (`<dir>/<key>`
    /// or `<dir>/<bucket>/<key>`).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

pub fn run(args: Args) -> ExitCode {
    match verify(&args) {
        Ok(report) => {
            if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("muster verify-digests: {e}");
                        return ExitCode::from(2);
                    }
                }
            } else {
                print_table(&report);
            }
            if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("muster verify-digests: {e}");
            ExitCode::from(2)
        }
    }
}

fn verify(args: &Args) -> Result<Report, String> {
    let verifier: Box<dyn SignatureVerifier> = match &args.public_keys {
        Some(path) => Box::new(PublicKeys::load(path)?),
        None => Box::new(NoPublicKeys(
            "no --public-keys given (the JSON of `aws cloudtrail list-public-keys`)".into(),
        )),
    };
    let signatures = match &args.signatures {
        Some(path) => load_signatures(path)?,
        None => HashMap::new(),
    };

    let mut roots: Vec<PathBuf> = Vec::new();
    // (file, key relative to the directory it was found under, if any)
    let mut files: Vec<(PathBuf, Option<String>)> = Vec::new();
    for path in &args.paths {
        if path.is_dir() {
            roots.push(path.clone());
            for f in digest_files_under(path) {
                let rel = f
                    .strip_prefix(path)
                    .ok()
                    .map(|r| r.to_string_lossy().replace('\\', "/"));
                files.push((f, rel));
            }
        } else if path.is_file() {
            files.push((path.clone(), None));
        } else {
            return Err(format!("{}: no such file or directory", path.display()));
        }
    }
    let mut seen = BTreeSet::new();
    files.retain(|(f, _)| seen.insert(f.canonicalize().unwrap_or_else(|_| f.clone())));

    let mut inputs = Vec::new();
    let mut invalid = Vec::new();
    for (file, rel) in files {
        let shown = file.display().to_string();
        let parsed = match read_digest(&file)
            .and_then(|bytes| digest::parse(&shown, &bytes).map_err(|e| e.to_string()))
        {
            Ok(p) => p,
            Err(reason) => {
                invalid.push((shown, reason));
                continue;
            }
        };
        let d = &parsed.digest;
        // A digest found under a directory must sit at the key it names there; one named
        // on the command line at its mirror path also says where the mirror's root is, so
        // its log files are found without naming that root. Elsewhere, where it came from
        // is unknown rather than wrong.
        let found_at = match rel {
            Some(rel) => Some(rel),
            None => {
                let path = shown.replace('\\', "/");
                let root = path
                    .strip_suffix(d.digest_s3_object.as_str())
                    .filter(|r| r.is_empty() || r.ends_with('/'))
                    .map(|r| PathBuf::from(if r.is_empty() { "." } else { r }));
                match root {
                    Some(root) => {
                        if !roots.contains(&root) {
                            roots.push(root);
                        }
                        Some(d.digest_s3_object.clone())
                    }
                    None => None,
                }
            }
        };
        let signature = signature_for(&file, d, &signatures);
        inputs.push(DigestInput {
            parsed,
            signature,
            found_at,
        });
    }

    let mut logs = MirrorLogs { roots };
    let mut report = digest::verify(&inputs, &mut logs, verifier.as_ref());
    for (object, reason) in invalid {
        report.add_invalid(object, reason);
    }
    Ok(report)
}

fn digest_files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let s = p.to_string_lossy().replace('\\', "/");
            if s.contains("/CloudTrail-Digest/")
                && (s.ends_with(".json.gz") || s.ends_with(".json"))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn read_digest(file: &Path) -> Result<Vec<u8>, String> {
    let shown = file.display().to_string();
    let f = File::open(file).map_err(|e| format!("{shown}: {e}"))?;
    let mut decoded =
        framing::decode(f.take(MAX_DIGEST_BYTES), None, None, &shown).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    decoded
        .reader
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{shown}: cannot read or decompress: {e}"))?;
    Ok(bytes)
}

fn signature_for(
    file: &Path,
    d: &digest::Digest,
    map: &HashMap<String, String>,
) -> Result<String, String> {
    let mut sidecar = file.as_os_str().to_owned();
    sidecar.push(".sig");
    let sidecar = PathBuf::from(sidecar);
    if let Ok(s) = std::fs::read_to_string(&sidecar) {
        return Ok(s.trim().to_string());
    }
    let bucket_key = format!("{}/{}", d.digest_s3_bucket, d.digest_s3_object);
    [format!("s3://{bucket_key}"), bucket_key, d.digest_s3_object.clone()]
        .iter()
        .find_map(|k| map.get(k))
        .map(|s| s.trim().to_string())
        .ok_or_else(|| {
            format!(
                "no signature: neither {} nor a --signatures entry (S3 keeps it in x-amz-meta-signature)",
                sidecar.display()
            )
        })
}

fn load_signatures(path: &Path) -> Result<HashMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}: expected a JSON object of digest key to hex signature: {e}",
            path.display()
        )
    })
}

/// Log files looked up under the given directories by their S3 key.
struct MirrorLogs {
    roots: Vec<PathBuf>,
}

impl LogFiles for MirrorLogs {
    fn sha256(&mut self, bucket: &str, key: &str) -> LogFileLookup {
        let rel = Path::new(key);
        // Keys come from the digest's data: never let one reach outside the mirror.
        if key.is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return LogFileLookup::Unreadable(format!("refusing the key {key:?}"));
        }
        let candidates = self
            .roots
            .iter()
            .flat_map(|r| [r.join(rel), r.join(bucket).join(rel)]);
        for path in candidates {
            let Ok(f) = File::open(&path) else {
                continue;
            };
            let shown = path.display().to_string();
            return match framing::decode(f, None, None, &shown)
                .map_err(|e| e.to_string())
                .and_then(|d| {
                    digest::sha256_hex(d.reader)
                        .map_err(|e| format!("{shown}: cannot read or decompress: {e}"))
                }) {
                Ok(h) => LogFileLookup::Found(h),
                Err(e) => LogFileLookup::Unreadable(e),
            };
        }
        LogFileLookup::Missing
    }
}

#[derive(Deserialize)]
struct PublicKeyList {
    #[serde(rename = "PublicKeyList")]
    keys: Vec<PublicKeyEntry>,
}

#[derive(Deserialize)]
struct PublicKeyEntry {
    #[serde(rename = "Value")]
    value: String,
    #[serde(rename = "Fingerprint")]
    fingerprint: String,
}

/// CloudTrail's public keys by fingerprint: DER PKCS#1 RSAPublicKey, base64 in the
/// CLI's JSON.
struct PublicKeys {
    file: String,
    by_fingerprint: HashMap<String, Vec<u8>>,
}

impl PublicKeys {
    fn load(path: &Path) -> Result<Self, String> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: {e}"))?;
        let list: PublicKeyList = serde_json::from_str(&text).map_err(|e| {
            format!("{file}: expected the JSON of `aws cloudtrail list-public-keys`: {e}")
        })?;
        let mut by_fingerprint = HashMap::new();
        for (i, k) in list.keys.into_iter().enumerate() {
            let der = base64_decode(&k.value)
                .ok_or_else(|| format!("{file}: PublicKeyList[{i}].Value is not base64"))?;
            by_fingerprint.insert(k.fingerprint.to_ascii_lowercase(), der);
        }
        Ok(PublicKeys {
            file,
            by_fingerprint,
        })
    }
}

impl SignatureVerifier for PublicKeys {
    fn verify(&self, fingerprint: &str, message: &[u8], signature: &[u8]) -> SignatureCheck {
        let Some(der) = self.by_fingerprint.get(&fingerprint.to_ascii_lowercase()) else {
            return SignatureCheck::Unavailable(format!(
                "no public key with fingerprint {fingerprint} in {}",
                self.file
            ));
        };
        // The same check as the Lambda's (ListPublicKeys keys), in one place.
        muster_aws::cloudtrail::rsa_sha256_check(der, fingerprint, message, signature)
    }
}

/// Standard base64 (with or without padding); the one place the CLI needs it.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn print_table(r: &Report) {
    let t = &r.totals;
    println!(
        "CloudTrail digests: {} read, {} unreadable; signatures {} valid, {} invalid, {} not checked; {} chain gaps; {} moved",
        t.digests, t.digests_invalid, t.signatures_valid, t.signatures_invalid,
        t.signatures_not_checked, t.chain_gaps, t.digests_moved
    );
    if !r.digests.is_empty() {
        println!(
            "{:<22} {:<12} {:<12} {:>5}  DIGEST",
            "END TIME", "SIGNATURE", "CHAIN", "LOGS"
        );
    }
    let mut notes = Vec::new();
    for d in &r.digests {
        let sig = match &d.signature {
            SignatureStatus::Valid => "valid",
            SignatureStatus::Invalid(why) => {
                notes.push(format!("{}: signature INVALID: {why}", d.digest));
                "INVALID"
            }
            SignatureStatus::NotChecked(why) => {
                notes.push(format!("{}: signature not checked: {why}", d.digest));
                "not checked"
            }
        };
        let chain = match &d.chain {
            ChainStatus::Start => "start",
            ChainStatus::Linked { .. } => "linked",
            ChainStatus::RangeStart { previous } => {
                notes.push(format!(
                    "{}: previous digest {previous} not given: start of the range checked",
                    d.digest
                ));
                "range start"
            }
            ChainStatus::Gap { reason, .. } => {
                notes.push(format!("{}: CHAIN GAP: {reason}", d.digest));
                "GAP"
            }
        };
        if let Some(at) = &d.moved_from_key {
            notes.push(format!(
                "{}: MOVED: read from {at}, not from the key it names",
                d.digest
            ));
        }
        println!(
            "{:<22} {:<12} {:<12} {:>5}  {}",
            d.end_time, sig, chain, d.log_files, d.digest
        );
    }
    println!(
        "Log files: {} listed: {} verified, {} missing, {} modified, {} unreadable",
        t.log_files, t.verified, t.missing, t.modified, t.unreadable
    );
    for f in &r.log_files {
        match &f.status {
            LogFileStatus::Verified => {}
            LogFileStatus::Missing => println!("  MISSING     {}", f.log_file),
            LogFileStatus::Modified { expected, actual } => println!(
                "  MODIFIED    {} (digest has SHA-256 {expected}, file has {actual})",
                f.log_file
            ),
            LogFileStatus::Unreadable { reason } => {
                println!("  UNREADABLE  {} ({reason})", f.log_file)
            }
        }
    }
    for i in &r.invalid_digests {
        // The reason already starts with the file it is about.
        notes.push(format!("DIGEST UNREADABLE: {}", i.reason));
    }
    for n in notes {
        println!("{n}");
    }
    println!(
        "{}",
        if r.is_clean() {
            "Result: no log file missing or modified, no chain gap."
        } else {
            "Result: integrity problems found (see above)."
        }
    );
}

#[cfg(test)]
mod tests {
    use super::base64_decode;

    #[test]
    fn base64_decodes_with_and_without_padding() {
        for (text, bytes) in [
            ("", &b""[..]),
            ("TQ==", b"M"),
            ("TWE=", b"Ma"),
            ("TWFu", b"Man"),
            ("TWE", b"Ma"),
            ("+/8=", &[0xfb, 0xff][..]),
        ] {
            assert_eq!(base64_decode(text).as_deref(), Some(bytes), "{text}");
        }
        assert_eq!(base64_decode("a*b"), None);
    }
}
