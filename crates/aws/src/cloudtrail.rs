//! CloudTrail digest signatures: CloudTrail's public keys (ListPublicKeys) behind the
//! core's `PublicKeySource`, and the SHA256withRSA check the Lambda and the CLI share.
//!
//! Keys are per region and rotate: a digest names its key by fingerprint, and the key
//! is looked up among those of the digest's region in use over the digest's hour. Keys
//! are cached by fingerprint for the life of the process (a Lambda's cold start), so a
//! digest an hour costs one ListPublicKeys per key rotation, not per digest.

use crate::retry::call_error;
use aws_lc_rs::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use aws_sdk_cloudtrail::config::Region;
use aws_sdk_cloudtrail::Client;
use aws_smithy_types::DateTime;
use muster_core::digest::{Digest, SignatureCheck, SignatureVerifier};
use muster_core::ports::{PublicKey, PublicKeySource};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::runtime::Handle;

/// SHA256withRSA (PKCS#1 v1.5) over `message` with `der`, a DER PKCS#1 RSAPublicKey as
/// CloudTrail hands them out; `fingerprint` names the key in the outcome.
pub fn rsa_sha256_check(
    der: &[u8],
    fingerprint: &str,
    message: &[u8],
    signature: &[u8],
) -> SignatureCheck {
    match UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der).verify(message, signature) {
        Ok(()) => SignatureCheck::Valid,
        Err(_) => SignatureCheck::Invalid(format!(
            "the SHA256withRSA signature does not match the digest (key {fingerprint})"
        )),
    }
}

/// The CloudTrail client over an already loaded SDK configuration; `endpoint` overrides
/// the service's URL (tests, emulators). The region is chosen per call.
pub fn client(sdk: &aws_config::SdkConfig, endpoint: Option<&str>) -> Client {
    let mut builder = aws_sdk_cloudtrail::config::Builder::from(sdk);
    if let Some(url) = endpoint {
        builder = builder.endpoint_url(url);
    }
    Client::from_conf(builder.build())
}

/// CloudTrail's public keys through ListPublicKeys, one client per region asked about.
pub struct CloudTrailPublicKeys {
    client: Client,
    handle: Handle,
    by_region: Mutex<HashMap<String, Client>>,
}

impl CloudTrailPublicKeys {
    /// `handle` is the runtime the SDK's connections live on; `public_keys` must then be
    /// called off it (from `spawn_blocking` or another thread), as it blocks.
    pub fn new(client: Client, handle: Handle) -> Self {
        CloudTrailPublicKeys {
            client,
            handle,
            by_region: Mutex::new(HashMap::new()),
        }
    }

    fn client_for(&self, region: &str) -> Client {
        let mut clients = self.by_region.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry(region.to_owned())
            .or_insert_with(|| {
                let conf = self
                    .client
                    .config()
                    .to_builder()
                    .region(Region::new(region.to_owned()))
                    .build();
                Client::from_conf(conf)
            })
            .clone()
    }
}

impl PublicKeySource for CloudTrailPublicKeys {
    fn public_keys(
        &self,
        region: &str,
        range: Option<(i64, i64)>,
    ) -> muster_core::Result<Vec<PublicKey>> {
        let client = self.client_for(region);
        let (start, end) = match range {
            Some((s, e)) => (
                Some(DateTime::from_millis(s)),
                Some(DateTime::from_millis(e)),
            ),
            None => (None, None),
        };
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        // NextToken pages; a bound keeps a misbehaving endpoint from looping forever.
        for _ in 0..100 {
            let request = client
                .list_public_keys()
                .set_start_time(start)
                .set_end_time(end)
                .set_next_token(token.take());
            let out = self
                .handle
                .block_on(request.send())
                .map_err(|e| call_error("CloudTrail", "ListPublicKeys", e))?;
            for k in out.public_key_list() {
                let (Some(fingerprint), Some(value)) = (k.fingerprint(), k.value()) else {
                    continue;
                };
                keys.push(PublicKey {
                    fingerprint: fingerprint.to_owned(),
                    der: value.as_ref().to_vec(),
                });
            }
            match out.next_token().filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t.to_owned()),
                None => return Ok(keys),
            }
        }
        Ok(keys)
    }
}

/// Checks digest signatures with keys from a [`PublicKeySource`], cached by region and
/// fingerprint. When the keys cannot be fetched (throttling, AccessDenied) the signature
/// is reported as not checked, with why: a failure to ask is no evidence of tampering.
pub struct DigestSignatures {
    keys: Arc<dyn PublicKeySource + Send + Sync>,
    cache: Mutex<HashMap<(String, String), Vec<u8>>>,
}

impl DigestSignatures {
    pub fn new(keys: Arc<dyn PublicKeySource + Send + Sync>) -> Self {
        DigestSignatures {
            keys,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, region: &str, fingerprint: &str) -> Option<Vec<u8>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(&(region.to_owned(), fingerprint.to_ascii_lowercase()))
            .cloned()
    }

    /// Fetches the keys of `region` over `range` into the cache; the error's text if not.
    fn fetch(&self, region: &str, range: Option<(i64, i64)>) -> Result<(), String> {
        let keys = self
            .keys
            .public_keys(region, range)
            .map_err(|e| format!("CloudTrail public keys of {region} unavailable: {e}"))?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            cache.insert(
                (region.to_owned(), k.fingerprint.to_ascii_lowercase()),
                k.der,
            );
        }
        Ok(())
    }
}

impl SignatureVerifier for DigestSignatures {
    /// Without the digest there is no region or time to look keys up by: only a key
    /// already fetched can serve.
    fn verify(&self, fingerprint: &str, message: &[u8], signature: &[u8]) -> SignatureCheck {
        let fp = fingerprint.to_ascii_lowercase();
        let found = {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache
                .iter()
                .find(|((_, f), _)| *f == fp)
                .map(|(_, der)| der.clone())
        };
        match found {
            Some(der) => rsa_sha256_check(&der, fingerprint, message, signature),
            None => SignatureCheck::Unavailable(format!(
                "no CloudTrail public key with fingerprint {fingerprint} at hand"
            )),
        }
    }

    fn verify_digest(&self, digest: &Digest, message: &[u8], signature: &[u8]) -> SignatureCheck {
        let fingerprint = digest.digest_public_key_fingerprint.as_str();
        let Some(region) = digest.region() else {
            return SignatureCheck::Unavailable(format!(
                "no region in the digest's key {}: CloudTrail's public keys are per region",
                digest.digest_s3_object
            ));
        };
        let range = match (
            muster_core::time::parse_rfc3339_ms(&digest.digest_start_time),
            muster_core::time::parse_rfc3339_ms(&digest.digest_end_time),
        ) {
            (Some(s), Some(e)) if s <= e => Some((s, e)),
            _ => None,
        };
        if let Some(der) = self.cached(region, fingerprint) {
            return rsa_sha256_check(&der, fingerprint, message, signature);
        }
        // The keys in use over the digest's hour; then the current one, for a digest
        // signed just after a rotation.
        for lookup in [range, None] {
            if let Err(why) = self.fetch(region, lookup) {
                return SignatureCheck::Unavailable(why);
            }
            if let Some(der) = self.cached(region, fingerprint) {
                return rsa_sha256_check(&der, fingerprint, message, signature);
            }
            if range.is_none() {
                break;
            }
        }
        // CloudTrail answered, and none of its keys for this region and time is the one
        // the digest names: CloudTrail did not sign it (the AWS CLI's validator says
        // INVALID here too).
        SignatureCheck::Invalid(format!(
            "CloudTrail has no public key with fingerprint {fingerprint} in {region} for {}..{}",
            digest.digest_start_time, digest.digest_end_time
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use muster_core::digest::{parse, signing_string};
    use std::io::Read;
    use std::path::{Path, PathBuf};

    fn samples() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/cloudtrail-digest")
    }

    const D3: &str = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/05/15/111122223333_CloudTrail-Digest_us-east-1_management-events_us-east-1_20240515T130000Z.json.gz";

    /// The sample digest, its signing string and its signature.
    fn sample() -> (Digest, Vec<u8>, Vec<u8>) {
        let path = samples().join(D3);
        let file = std::fs::File::open(&path).unwrap();
        let mut bytes = Vec::new();
        muster_core::framing::decode(file, None, None, D3)
            .unwrap()
            .reader
            .read_to_end(&mut bytes)
            .unwrap();
        let parsed = parse(D3, &bytes).unwrap();
        let sig = std::fs::read_to_string(format!("{}.sig", path.display())).unwrap();
        let message = signing_string(&parsed.digest, &parsed.sha256).into_bytes();
        (parsed.digest, message, hex_decode(sig.trim()))
    }

    fn hex_decode(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn sample_key() -> PublicKey {
        let text = std::fs::read_to_string(samples().join("public-keys.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let k = &v["PublicKeyList"][0];
        PublicKey {
            fingerprint: k["Fingerprint"].as_str().unwrap().to_uppercase(),
            der: aws_smithy_types::base64::decode(k["Value"].as_str().unwrap()).unwrap(),
        }
    }

    /// Serves the sample key in one region only, and counts the calls.
    struct OneRegion(&'static str, Mutex<Vec<String>>);

    impl PublicKeySource for OneRegion {
        fn public_keys(
            &self,
            region: &str,
            _: Option<(i64, i64)>,
        ) -> muster_core::Result<Vec<PublicKey>> {
            self.1.lock().unwrap().push(region.to_owned());
            Ok(if region == self.0 {
                vec![sample_key()]
            } else {
                vec![]
            })
        }
    }

    #[test]
    fn signatures_are_checked_with_the_key_of_the_digests_region() {
        let (digest, message, signature) = sample();
        let mut bad = signature.clone();
        bad[0] ^= 1;
        let mut elsewhere = digest.clone();
        elsewhere.digest_s3_object = D3.replace("/us-east-1/", "/eu-west-1/");
        let mut nowhere = digest.clone();
        nowhere.digest_s3_object = "digest.json.gz".into();
        /// Case, digest, signature, outcome as text, regions asked.
        type Case<'a> = (&'a str, &'a Digest, &'a [u8], &'a str, Vec<&'a str>);
        let cases: Vec<Case> = vec![
            ("valid", &digest, &signature, "Valid", vec!["us-east-1"]),
            ("bad signature", &digest, &bad, "Invalid", vec!["us-east-1"]),
            (
                "key of another region",
                &elsewhere,
                &signature,
                "Invalid",
                vec!["eu-west-1", "eu-west-1"],
            ),
            ("no region", &nowhere, &signature, "Unavailable", vec![]),
        ];
        for (name, d, sig, want, regions) in cases {
            let keys = Arc::new(OneRegion("us-east-1", Mutex::new(Vec::new())));
            let v = DigestSignatures::new(keys.clone());
            let got = v.verify_digest(d, &message, sig);
            assert!(format!("{got:?}").starts_with(want), "{name}: {got:?}");
            // Asked again, the cache answers (fingerprints compare case-insensitively).
            let again = v.verify_digest(d, &message, sig);
            assert_eq!(got, again, "{name}");
            let asked = keys.1.lock().unwrap().clone();
            let want_asked: Vec<&str> = match want {
                // Nothing found: asked again the second time.
                "Invalid" if name != "bad signature" => {
                    regions.iter().chain(&regions).copied().collect()
                }
                _ => regions,
            };
            assert_eq!(asked, want_asked, "{name}");
        }
        assert!(matches!(
            rsa_sha256_check(b"not a key", "fp", &message, &signature),
            SignatureCheck::Invalid(_)
        ));
    }
}
