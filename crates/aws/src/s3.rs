//! S3 behind the normaliser's ports: objects read as streams, lake and quarantine
//! files written with bounded memory.

use crate::error::Error;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use muster_core::ports::{
    LakeWriter, ObjectMeta, ObjectSource, OpenedObject, OutputFile, Quarantine,
};
use std::io::{self, Write};
use tokio::runtime::Handle;
use tokio_util::io::SyncIoBridge;

/// Part size of multipart uploads unless configured: large enough that most lake
/// files go out in one PutObject, small enough to keep a partition's buffer modest.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;
/// S3 refuses parts smaller than this (except the last one of an upload).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
/// S3's limit on the parts of one upload.
pub const MAX_PARTS: i32 = 10_000;

/// Opens S3 objects as byte streams for the synchronous normaliser.
#[derive(Clone)]
pub struct S3ObjectSource {
    client: Client,
    handle: Handle,
}

impl S3ObjectSource {
    /// `handle` is the runtime the SDK's connections live on; `open` must then be
    /// called off it (from `spawn_blocking` or another thread), as it blocks.
    pub fn new(client: Client, handle: Handle) -> Self {
        S3ObjectSource { client, handle }
    }
}

impl ObjectSource for S3ObjectSource {
    fn open(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> muster_core::Result<Option<OpenedObject>> {
        let request = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned));
        let out = match self.handle.block_on(request.send()) {
            Ok(out) => out,
            Err(e) if is_gone(&e) => return Ok(None),
            Err(e) => return Err(Error::s3("GetObject", bucket, key, e).into_open_error()),
        };
        let meta = ObjectMeta {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            etag: out.e_tag().map(unquote_etag),
            version_id: out
                .version_id()
                .filter(|v| !v.is_empty() && *v != "null")
                .map(str::to_owned),
            size: out.content_length().and_then(|n| u64::try_from(n).ok()),
            content_encoding: out.content_encoding().map(str::to_owned),
            content_type: out.content_type().map(str::to_owned),
            // User metadata, where CloudTrail keeps a digest's signature.
            signature: user_metadata(&out, "signature"),
            signature_algorithm: user_metadata(&out, "signature-algorithm"),
        };
        // The body streams: the normaliser pulls bytes as it inflates and parses, so
        // a 5 GB object never sits in memory.
        let body = SyncIoBridge::new_with_handle(out.body.into_async_read(), self.handle.clone());
        Ok(Some(OpenedObject {
            meta,
            body: Box::new(body),
        }))
    }
}

/// One `x-amz-meta-<name>` value; the SDK hands them over without the prefix.
fn user_metadata(
    out: &aws_sdk_s3::operation::get_object::GetObjectOutput,
    name: &str,
) -> Option<String> {
    out.metadata()
        .and_then(|m| m.get(name))
        .map(|v| v.trim().to_owned())
}

/// An object deleted (or a version removed) between the notification and the read.
fn is_gone(
    err: &aws_sdk_s3::error::SdkError<GetObjectError, aws_sdk_s3::config::http::HttpResponse>,
) -> bool {
    use aws_sdk_s3::error::ProvideErrorMetadata;
    match err.as_service_error() {
        Some(GetObjectError::NoSuchKey(_)) => true,
        Some(e) => matches!(e.code(), Some("NoSuchKey" | "NoSuchVersion")),
        None => false,
    }
}

/// GetObject returns the ETag quoted, notifications do not: one form keeps the
/// output ids the same whichever the metadata came from.
fn unquote_etag(etag: &str) -> String {
    etag.trim_matches('"').to_owned()
}

/// Writes lake and quarantine files to one bucket. Keys arrive with their prefix
/// (`ocsf/…`, `quarantine/…`) already applied.
#[derive(Clone)]
pub struct S3LakeWriter {
    client: Client,
    handle: Handle,
    bucket: String,
    part_size: usize,
}

impl S3LakeWriter {
    pub fn new(client: Client, handle: Handle, bucket: impl Into<String>) -> Self {
        S3LakeWriter {
            client,
            handle,
            bucket: bucket.into(),
            part_size: DEFAULT_PART_SIZE,
        }
    }

    /// Sets the multipart part size. S3 needs at least [`MIN_PART_SIZE`]; smaller
    /// sizes are for emulators configured to accept them (tests).
    pub fn with_part_size(mut self, part_size: usize) -> Self {
        self.part_size = part_size.max(1);
        self
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn file(&self, key: &str) -> Box<dyn OutputFile + '_> {
        Box::new(S3OutputFile {
            writer: self,
            key: key.to_owned(),
            buf: Vec::new(),
            upload: None,
            failed: None,
        })
    }
}

impl LakeWriter for S3LakeWriter {
    fn create(&self, key: &str) -> muster_core::Result<Box<dyn OutputFile + '_>> {
        Ok(self.file(key))
    }
}

impl Quarantine for S3LakeWriter {
    fn create(&self, key: &str) -> muster_core::Result<Box<dyn OutputFile + '_>> {
        Ok(self.file(key))
    }
}

struct Multipart {
    upload_id: String,
    parts: Vec<CompletedPart>,
}

/// One output object. Up to one part is buffered: an output that stays within it
/// goes out in a single PutObject on commit; a larger one becomes a multipart upload,
/// each full buffer one part. Dropped without commit, the upload is aborted.
struct S3OutputFile<'w> {
    writer: &'w S3LakeWriter,
    key: String,
    buf: Vec<u8>,
    upload: Option<Multipart>,
    /// After a failed part the upload is abandoned; later writes must not pretend.
    failed: Option<String>,
}

impl S3OutputFile<'_> {
    fn content_type(&self) -> &'static str {
        if self.key.ends_with(".gz") {
            "application/gzip"
        } else {
            "application/x-ndjson"
        }
    }

    fn s3_error<E>(
        &self,
        operation: &'static str,
        e: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> Error
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        Error::s3(operation, &self.writer.bucket, &self.key, e)
    }

    fn upload_part(&mut self) -> Result<(), Error> {
        let w = self.writer;
        if self.upload.is_none() {
            let created = w
                .handle
                .block_on(
                    w.client
                        .create_multipart_upload()
                        .bucket(&w.bucket)
                        .key(&self.key)
                        .content_type(self.content_type())
                        .checksum_algorithm(ChecksumAlgorithm::Crc32)
                        .send(),
                )
                .map_err(|e| self.s3_error("CreateMultipartUpload", e))?;
            let upload_id = created.upload_id().unwrap_or_default().to_owned();
            if upload_id.is_empty() {
                return Err(Error::S3 {
                    operation: "CreateMultipartUpload",
                    bucket: w.bucket.clone(),
                    key: self.key.clone(),
                    code: None,
                    message: "the response carries no UploadId".into(),
                    retryable: true,
                });
            }
            self.upload = Some(Multipart {
                upload_id,
                parts: Vec::new(),
            });
        }
        let upload = self.upload.as_ref().expect("created above");
        let number = upload.parts.len() as i32 + 1;
        if number > MAX_PARTS {
            return Err(Error::TooManyParts {
                bucket: w.bucket.clone(),
                key: self.key.clone(),
                part_size: w.part_size,
                max_parts: MAX_PARTS,
            });
        }
        let body = std::mem::replace(&mut self.buf, Vec::with_capacity(w.part_size));
        let done = w
            .handle
            .block_on(
                w.client
                    .upload_part()
                    .bucket(&w.bucket)
                    .key(&self.key)
                    .upload_id(&upload.upload_id)
                    .part_number(number)
                    .checksum_algorithm(ChecksumAlgorithm::Crc32)
                    .body(ByteStream::from(body))
                    .send(),
            )
            .map_err(|e| self.s3_error("UploadPart", e))?;
        let part = CompletedPart::builder()
            .part_number(number)
            .set_e_tag(done.e_tag().map(str::to_owned))
            .set_checksum_crc32(done.checksum_crc32().map(str::to_owned))
            .build();
        self.upload
            .as_mut()
            .expect("created above")
            .parts
            .push(part);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Error> {
        if let Some(reason) = &self.failed {
            return Err(self.poisoned(reason));
        }
        let w = self.writer;
        if self.upload.is_none() {
            let body = std::mem::take(&mut self.buf);
            w.handle
                .block_on(
                    w.client
                        .put_object()
                        .bucket(&w.bucket)
                        .key(&self.key)
                        .content_type(self.content_type())
                        .body(ByteStream::from(body))
                        .send(),
                )
                .map_err(|e| self.s3_error("PutObject", e))?;
            return Ok(());
        }
        if !self.buf.is_empty() {
            self.upload_part()?;
        }
        let upload = self.upload.as_ref().expect("checked above");
        w.handle
            .block_on(
                w.client
                    .complete_multipart_upload()
                    .bucket(&w.bucket)
                    .key(&self.key)
                    .upload_id(&upload.upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(upload.parts.clone()))
                            .build(),
                    )
                    .send(),
            )
            .map_err(|e| self.s3_error("CompleteMultipartUpload", e))?;
        self.upload = None;
        Ok(())
    }

    fn poisoned(&self, reason: &str) -> Error {
        Error::Poisoned {
            bucket: self.writer.bucket.clone(),
            key: self.key.clone(),
            reason: reason.to_owned(),
        }
    }
}

impl Write for S3OutputFile<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some(reason) = &self.failed {
            return Err(io::Error::other(self.poisoned(reason)));
        }
        let room = self.writer.part_size - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= self.writer.part_size {
            if let Err(e) = self.upload_part() {
                self.failed = Some(e.to_string());
                return Err(io::Error::other(e));
            }
        }
        Ok(n)
    }

    /// Parts go out when full, not on flush: S3 has no partial parts to flush into.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl OutputFile for S3OutputFile<'_> {
    fn commit(mut self: Box<Self>) -> muster_core::Result<()> {
        self.finish().map_err(muster_core::Error::from)
    }
}

impl Drop for S3OutputFile<'_> {
    /// An abandoned multipart upload keeps its parts (and their cost) until aborted.
    /// The abort is spawned rather than awaited: drop may run on any thread, and a
    /// leftover (a frozen or killed function) is what the bucket's
    /// AbortIncompleteMultipartUpload lifecycle rule is for.
    fn drop(&mut self) {
        let Some(upload) = self.upload.take() else {
            return;
        };
        let w = self.writer;
        let abort = w
            .client
            .abort_multipart_upload()
            .bucket(&w.bucket)
            .key(&self.key)
            .upload_id(upload.upload_id);
        let key = self.key.clone();
        w.handle.spawn(async move {
            if let Err(e) = abort.send().await {
                tracing::warn!(key, error = %aws_sdk_s3::error::DisplayErrorContext(&e), "aborting an abandoned multipart upload failed");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_lose_their_quotes() {
        for (raw, want) in [
            (
                "\"d41d8cd98f00b204e9800998ecf8427e\"",
                "d41d8cd98f00b204e9800998ecf8427e",
            ),
            (
                "d41d8cd98f00b204e9800998ecf8427e",
                "d41d8cd98f00b204e9800998ecf8427e",
            ),
            (
                "\"4af981f98d22a0b9979da24b259e5e42-12\"",
                "4af981f98d22a0b9979da24b259e5e42-12",
            ),
        ] {
            assert_eq!(unquote_etag(raw), want);
        }
    }
}
