//! The S3 adapters against a local moto server: streaming reads, NoSuchKey, single
//! and multipart writes, and the abort of an abandoned upload.

use muster_aws::{S3LakeWriter, S3ObjectSource};
use muster_core::ports::{LakeWriter, ObjectSource, Quarantine};
use muster_e2e::{get_bytes, list_keys, MotoServer, MOTO_MIN_PART_SIZE};
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;

const BUCKET: &str = "adapter-test";

/// Bytes that do not repeat, so a misplaced or duplicated part changes the result.
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

async fn setup() -> (MotoServer, aws_sdk_s3::Client) {
    let moto = MotoServer::start();
    let client = moto.s3_client();
    client
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("CreateBucket");
    (moto, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_source_streams_bodies_and_metadata() {
    let (_moto, client) = setup().await;
    let body = pattern(3 * 1024 * 1024 + 17);
    client
        .put_object()
        .bucket(BUCKET)
        .key("dir/a b+c.log.gz")
        .content_encoding("gzip")
        .content_type("application/octet-stream")
        .body(body.clone().into())
        .send()
        .await
        .expect("PutObject");

    let source = S3ObjectSource::new(client.clone(), Handle::current());
    let (meta, read) = tokio::task::spawn_blocking(move || {
        let opened = source
            .open(BUCKET, "dir/a b+c.log.gz", None)
            .expect("open")
            .expect("exists");
        let mut body = opened.body;
        let mut read = Vec::new();
        body.read_to_end(&mut read).expect("read");
        let missing = source
            .open(BUCKET, "dir/never written", None)
            .expect("open");
        assert!(missing.is_none(), "NoSuchKey is Ok(None)");
        (opened.meta, read)
    })
    .await
    .unwrap();
    assert_eq!(read.len(), body.len());
    assert!(read == body, "body differs");
    assert_eq!(meta.size, Some(body.len() as u64));
    assert_eq!(meta.content_encoding.as_deref(), Some("gzip"));
    assert_eq!(
        meta.content_type.as_deref(),
        Some("application/octet-stream")
    );
    let etag = meta.etag.expect("etag");
    assert!(!etag.contains('"'), "{etag}");
    assert_eq!(meta.version_id, None, "unversioned bucket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_source_reads_the_notified_version() {
    let (_moto, client) = setup().await;
    client
        .put_bucket_versioning()
        .bucket(BUCKET)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("PutBucketVersioning");
    let first = client
        .put_object()
        .bucket(BUCKET)
        .key("v.log")
        .body(b"first\n".to_vec().into())
        .send()
        .await
        .expect("put 1");
    client
        .put_object()
        .bucket(BUCKET)
        .key("v.log")
        .body(b"second\n".to_vec().into())
        .send()
        .await
        .expect("put 2");
    let v1 = first.version_id().expect("version").to_owned();
    let source = S3ObjectSource::new(client, Handle::current());
    let (text, version) = tokio::task::spawn_blocking(move || {
        let opened = source.open(BUCKET, "v.log", Some(&v1)).unwrap().unwrap();
        let mut text = String::new();
        let mut body = opened.body;
        body.read_to_string(&mut text).unwrap();
        (text, opened.meta.version_id)
    })
    .await
    .unwrap();
    assert_eq!(text, "first\n");
    assert!(version.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lake_writer_puts_small_files_and_goes_multipart_past_a_part() {
    let (_moto, client) = setup().await;
    let part = MOTO_MIN_PART_SIZE;
    let writer = S3LakeWriter::new(client.clone(), Handle::current(), BUCKET).with_part_size(part);
    let cases: Vec<(&str, usize)> = vec![
        ("ocsf/empty.jsonl.gz", 0),
        ("ocsf/small.jsonl.gz", 1000),
        ("ocsf/exactly-one-part.jsonl.gz", part),
        ("ocsf/three-and-a-bit.jsonl.gz", 3 * part + 123),
        ("quarantine/q.json", 2 * part),
    ];
    let expected: Vec<(String, Vec<u8>)> = cases
        .iter()
        .map(|(k, n)| (k.to_string(), pattern(*n)))
        .collect();
    let to_write = expected.clone();
    tokio::task::spawn_blocking(move || {
        for (key, data) in to_write {
            let mut file = if key.starts_with("quarantine/") {
                Quarantine::create(&writer, &key).unwrap()
            } else {
                LakeWriter::create(&writer, &key).unwrap()
            };
            // Uneven writes, as a gzip encoder makes them.
            for chunk in data.chunks(7919) {
                file.write_all(chunk).unwrap();
            }
            file.commit().unwrap();
        }
    })
    .await
    .unwrap();
    for (key, data) in &expected {
        let got = get_bytes(&client, BUCKET, key).await;
        assert_eq!(got.len(), data.len(), "{key}");
        assert!(got == *data, "{key}: content differs");
    }
    // A multipart upload's ETag says how many parts it had: "<md5>-<parts>".
    let head = client
        .head_object()
        .bucket(BUCKET)
        .key("ocsf/three-and-a-bit.jsonl.gz")
        .send()
        .await
        .unwrap();
    assert!(
        head.e_tag().unwrap_or("").trim_matches('"').ends_with("-4"),
        "{:?}",
        head.e_tag()
    );
    assert_eq!(head.content_type(), Some("application/gzip"));
    let head = client
        .head_object()
        .bucket(BUCKET)
        .key("ocsf/small.jsonl.gz")
        .send()
        .await
        .unwrap();
    assert!(
        !head.e_tag().unwrap_or("").contains('-'),
        "single PutObject"
    );
    let uploads = client
        .list_multipart_uploads()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "no upload left open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_output_is_not_written_and_its_upload_is_aborted() {
    let (_moto, client) = setup().await;
    let part = MOTO_MIN_PART_SIZE;
    let writer = S3LakeWriter::new(client.clone(), Handle::current(), BUCKET).with_part_size(part);
    tokio::task::spawn_blocking(move || {
        let mut small = LakeWriter::create(&writer, "ocsf/abandoned-small.jsonl.gz").unwrap();
        small.write_all(b"never committed").unwrap();
        drop(small);
        let mut big = LakeWriter::create(&writer, "ocsf/abandoned-big.jsonl.gz").unwrap();
        big.write_all(&pattern(2 * part + 1)).unwrap();
        drop(big);
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let uploads = client
            .list_multipart_uploads()
            .bucket(BUCKET)
            .send()
            .await
            .unwrap();
        if uploads.uploads().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "upload not aborted: {uploads:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(list_keys(&client, BUCKET, "").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_name_the_object_and_say_whether_to_retry() {
    let (_moto, client) = setup().await;
    let writer = S3LakeWriter::new(client.clone(), Handle::current(), "no-such-bucket");
    let source = S3ObjectSource::new(client, Handle::current());
    let (write_err, read_err) = tokio::task::spawn_blocking(move || {
        let mut f = LakeWriter::create(&writer, "ocsf/x.jsonl.gz").unwrap();
        f.write_all(b"x").unwrap();
        let write_err = f.commit().unwrap_err();
        let read_err = match source.open("no-such-bucket", "k", None) {
            Err(e) => e,
            Ok(_) => panic!("a missing bucket is not a missing object"),
        };
        (write_err, read_err)
    })
    .await
    .unwrap();
    let text = write_err.to_string();
    assert!(
        text.contains("s3://no-such-bucket/ocsf/x.jsonl.gz"),
        "{text}"
    );
    assert!(text.contains("PutObject"), "{text}");
    assert!(!write_err.is_retryable(), "{text}");
    let text = read_err.to_string();
    assert!(text.contains("s3://no-such-bucket/k"), "{text}");
    assert!(!read_err.is_retryable(), "{text}");
}
