//! Shared helpers for the end-to-end tests: a moto server per test, S3 clients
//! pointed at it, and small readers for what the lake holds afterwards.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root (this crate lives in `tests/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Smallest multipart part moto accepts from the servers started here. Real S3
/// wants 5 MiB; a small one lets a test produce many parts from little data.
pub const MOTO_MIN_PART_SIZE: usize = 64 * 1024;

/// A moto server on a free loopback port, killed when dropped.
pub struct MotoServer {
    child: Child,
    pub endpoint: String,
    log: PathBuf,
}

impl MotoServer {
    /// Starts `.venv/bin/moto_server` and waits until it answers. Panics, saying how
    /// to fix it, when the venv is missing or the server does not come up.
    pub fn start() -> MotoServer {
        let root = repo_root();
        let moto = root.join(".venv/bin/moto_server");
        if !moto.exists() {
            panic!(
                "{} is missing: run scripts/python-env first (it creates .venv with the \
                 pinned moto server from requirements-dev.txt)",
                moto.display()
            );
        }
        // A free port can be taken by another process between our probe and moto's
        // bind (parallel tests, another test run): moto then exits, and we try again
        // on another port rather than talk to whoever holds it.
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            let log = std::env::temp_dir().join(format!("muster-moto-{port}.log"));
            let log_file = std::fs::File::create(&log).expect("create moto log file");
            let child = Command::new(&moto)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("S3_UPLOAD_PART_MIN_SIZE", MOTO_MIN_PART_SIZE.to_string())
                // Never reach for real credentials or a real account from a test.
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .env("AWS_DEFAULT_REGION", "us-east-1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", moto.display()));
            let mut server = MotoServer {
                child,
                endpoint: format!("http://127.0.0.1:{port}"),
                log,
            };
            match server.wait_until_ready(port, Duration::from_secs(60)) {
                Ok(()) => return server,
                Err(log) => last_log = log,
            }
        }
        panic!("moto server exited early five times; its last log:\n{last_log}");
    }

    /// Ready = our child is alive, the port answers, and the child is still alive after
    /// the time moto takes to bind (so the answer was not another process's).
    /// `Err(log)` when the child exited: the caller retries on another port.
    fn wait_until_ready(&mut self, port: u16, timeout: Duration) -> Result<(), String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let start = Instant::now();
        loop {
            if self.child.try_wait().expect("poll moto server").is_some() {
                return Err(self.log_tail());
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                std::thread::sleep(Duration::from_millis(300));
                if self.child.try_wait().expect("poll moto server").is_some() {
                    return Err(self.log_tail());
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return Ok(());
                }
            }
            if start.elapsed() > timeout {
                panic!(
                    "moto server did not answer on {addr} within {timeout:?}; its log:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The end of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        text[text
            .char_indices()
            .find(|(i, _)| *i >= start)
            .map_or(0, |(i, _)| i)..]
            .to_owned()
    }

    /// An S3 client for this server, built the way the Lambda builds its own
    /// (`muster_aws::AwsConfig`, endpoint override, path-style), with static test
    /// credentials in us-east-1.
    pub fn s3_client(&self) -> aws_sdk_s3::Client {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "test",
                "test",
                None,
                None,
                "muster-e2e",
            )))
            .build();
        let config = muster_aws::AwsConfig::from_lookup(|name| {
            (name == "MUSTER_S3_ENDPOINT").then(|| self.endpoint.clone())
        })
        .expect("endpoint config");
        config.s3_client_from(&sdk)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// Every key under `prefix`, following continuation tokens.
pub async fn list_keys(client: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token)
            .send()
            .await
            .expect("ListObjectsV2");
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        match page.next_continuation_token() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    keys.sort();
    keys
}

pub async fn get_bytes(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObject {key}: {e:?}"));
    out.body
        .collect()
        .await
        .expect("read body")
        .into_bytes()
        .to_vec()
}

/// The JSON lines of a lake or quarantine file, gunzipped when it is gzip.
pub fn json_lines(bytes: &[u8]) -> Vec<serde_json::Value> {
    let mut text = String::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_string(&mut text)
            .expect("gunzip");
    } else {
        text = String::from_utf8(bytes.to_vec()).expect("UTF-8");
    }
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}
