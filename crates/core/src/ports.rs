//! The traits adapters implement. Each is named for its role and is as narrow as
//! the pipeline needs. They are synchronous on purpose: the normaliser runs on a
//! blocking thread (inflate and parse are CPU work), and an async adapter bridges
//! with its runtime handle there.

use crate::error::Result;
use std::io::{Read, Write};

/// What is known about an input object before reading it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    /// S3 bucket, or empty for a local file.
    pub bucket: String,
    /// S3 key (already URL-decoded), or the local path.
    pub key: String,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub size: Option<u64>,
    pub content_encoding: Option<String>,
    pub content_type: Option<String>,
    /// S3 user metadata `x-amz-meta-signature`: CloudTrail puts a digest file's hex
    /// signature there. `None` for other objects and for local files.
    pub signature: Option<String>,
    /// S3 user metadata `x-amz-meta-signature-algorithm` (`SHA256withRSA` on digests).
    pub signature_algorithm: Option<String>,
}

impl ObjectMeta {
    /// `s3://bucket/key`, or the path for a local file: how errors name the object.
    pub fn display(&self) -> String {
        if self.bucket.is_empty() {
            self.key.clone()
        } else {
            format!("s3://{}/{}", self.bucket, self.key)
        }
    }
}

/// An object opened for reading: its metadata as the store reports it, and its bytes.
pub struct OpenedObject {
    pub meta: ObjectMeta,
    pub body: Box<dyn Read + Send>,
}

/// Opens objects as byte streams.
pub trait ObjectSource {
    /// `Ok(None)` when the object no longer exists (deleted between the
    /// notification and the read): not an error worth retrying.
    fn open(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<OpenedObject>>;
}

/// A file being written to a store. Dropping it without `commit` abandons it, so a
/// failed run never leaves a half-written object behind.
pub trait OutputFile: Write + Send {
    fn commit(self: Box<Self>) -> Result<()>;
}

/// Writes the lake's partition files. The same key written twice overwrites: that
/// is what makes re-processing idempotent.
pub trait LakeWriter {
    fn create(&self, key: &str) -> Result<Box<dyn OutputFile + '_>>;
}

/// Keeps what could not be mapped, with the reason, for people to look at.
pub trait Quarantine {
    fn create(&self, key: &str) -> Result<Box<dyn OutputFile + '_>>;
}

/// Publishes detections (EventBridge `muster.detection` events in AWS, JSON lines locally).
pub trait DetectionBus {
    fn publish(&self, detections: &[crate::detect::Detection]) -> Result<()>;
}

/// A finding Security Hub (or the stand-in) did not take, and whether sending it again can help.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailedFinding {
    pub id: String,
    pub error_code: String,
    pub error_message: String,
    pub retryable: bool,
}

/// Imports ASFF findings (BatchImportFindings in AWS, files locally). The sink does the
/// batching, throttling and retries; what it returns failed for good.
pub trait FindingsSink {
    fn import(&self, findings: &[crate::asff::Finding]) -> Result<Vec<FailedFinding>>;
}

/// Publishes CloudWatch embedded-metric-format documents (stdout in Lambda, files locally).
pub trait MetricsSink {
    fn publish(&self, emf_document: &str) -> Result<()>;
}

/// The time budget of one call to a remote system: a backend retries (429 Retry-After,
/// 5xx, timeouts) only while the deadline allows, then reports a retryable error.
#[derive(Debug, Clone, Copy, Default)]
pub struct Budget {
    pub deadline: Option<std::time::Instant>,
}

/// Creates and keeps in sync tickets in one or more ticket/chat systems; which one is
/// `target.backend`. Errors are `Error::Sink` with `retryable` set as the backend's
/// answer warrants (401/404/400 permanent; 429/5xx/timeouts retryable).
pub trait TicketSink: Send + Sync {
    fn create(
        &self,
        target: &crate::tickets::Target,
        content: &crate::tickets::TicketContent,
        budget: Budget,
    ) -> Result<crate::tickets::TicketRef>;
    /// Adds a comment (a thread reply in Slack; a no-op where the backend has no comments,
    /// e.g. PagerDuty, which the backend documents).
    fn comment(
        &self,
        target: &crate::tickets::Target,
        ticket: &crate::tickets::TicketRef,
        change: &crate::tickets::TicketChange,
        budget: Budget,
    ) -> Result<()>;
    fn close(
        &self,
        target: &crate::tickets::Target,
        ticket: &crate::tickets::TicketRef,
        change: &crate::tickets::TicketChange,
        budget: Budget,
    ) -> Result<()>;
    fn reopen(
        &self,
        target: &crate::tickets::Target,
        ticket: &crate::tickets::TicketRef,
        change: &crate::tickets::TicketChange,
        budget: Budget,
    ) -> Result<()>;
}

/// finding Id -> ticket state, with conditional writes (DynamoDB in Lambda, a file in the CLI).
pub trait Ledger: Send + Sync {
    fn get(&self, finding_id: &str) -> Result<Option<crate::tickets::LedgerEntry>>;
    /// Writes `entry` only if no item exists for its finding Id (`entry.version` is 1).
    /// `Ok(false)`: someone else holds it; read it again.
    fn put_new(&self, entry: &crate::tickets::LedgerEntry) -> Result<bool>;
    /// Writes `entry` (whose `version` is `expected_version + 1`) only if the stored
    /// item still has `expected_version`. `Ok(false)`: lost the race.
    fn replace(&self, entry: &crate::tickets::LedgerEntry, expected_version: u64) -> Result<bool>;
}

/// BatchUpdateFindings in AWS. Returns the findings it could not update.
pub trait FindingsWriteBack: Send + Sync {
    fn write_back(&self, updates: &[crate::tickets::WriteBack]) -> Result<Vec<FailedFinding>>;
}

/// One of CloudTrail's public keys for digest signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// What a digest's `digestPublicKeyFingerprint` names it by.
    pub fingerprint: String,
    /// DER PKCS#1 RSAPublicKey.
    pub der: Vec<u8>,
}

/// CloudTrail's public keys of one region (ListPublicKeys in Lambda): the keys in use at
/// some time in `range` (epoch ms, inclusive), or the current key when `range` is `None`.
/// Errors say whether a retry can help (throttling) or not (AccessDenied).
pub trait PublicKeySource {
    fn public_keys(&self, region: &str, range: Option<(i64, i64)>) -> Result<Vec<PublicKey>>;
}

/// Backend credentials by name (Secrets Manager in Lambda, env or a file in the CLI).
/// Implementations cache, and never log the value.
pub trait Secrets: Send + Sync {
    fn get(&self, name: &str) -> Result<String>;
}

/// In-memory implementations of the output ports: for handler tests, and for
/// callers that want the output in hand rather than in a store.
pub mod memory {
    use super::{LakeWriter, OutputFile, Quarantine};
    use crate::error::Result;
    use std::collections::BTreeMap;
    use std::io::{self, Write};
    use std::sync::{Arc, Mutex};

    /// Committed files by key. Cloning shares the same store.
    #[derive(Clone, Default)]
    pub struct MemoryStore {
        files: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    }

    impl MemoryStore {
        pub fn new() -> Self {
            Self::default()
        }

        /// Every committed file, by key.
        pub fn files(&self) -> BTreeMap<String, Vec<u8>> {
            self.files.lock().unwrap_or_else(|e| e.into_inner()).clone()
        }

        pub fn get(&self, key: &str) -> Option<Vec<u8>> {
            self.files
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(key)
                .cloned()
        }

        fn open(&self, key: &str) -> Box<dyn OutputFile + '_> {
            Box::new(MemoryFile {
                key: key.to_string(),
                buf: Vec::new(),
                store: self.files.clone(),
            })
        }
    }

    struct MemoryFile {
        key: String,
        buf: Vec<u8>,
        store: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    }

    impl Write for MemoryFile {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.buf.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl OutputFile for MemoryFile {
        fn commit(self: Box<Self>) -> Result<()> {
            let MemoryFile { key, buf, store } = *self;
            store
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, buf);
            Ok(())
        }
    }

    impl LakeWriter for MemoryStore {
        fn create(&self, key: &str) -> Result<Box<dyn OutputFile + '_>> {
            Ok(self.open(key))
        }
    }

    impl Quarantine for MemoryStore {
        fn create(&self, key: &str) -> Result<Box<dyn OutputFile + '_>> {
            Ok(self.open(key))
        }
    }
}
