//! Adapters over aws-sdk-* implementing the ports of muster-core.
//!
//! The ports are synchronous (the normaliser runs on a blocking thread), the SDK is
//! async: every adapter holds a tokio runtime [`Handle`](tokio::runtime::Handle) and
//! blocks on it. So call them from `tokio::task::spawn_blocking` or a plain thread,
//! never from inside an async task.

pub mod cloudtrail;
pub mod config;
pub mod dynamodb;
pub mod env;
pub mod error;
pub mod eventbridge;
pub mod retry;
pub mod s3;
pub mod secrets;
pub mod securityhub;
pub mod writeback;

pub use cloudtrail::{CloudTrailPublicKeys, DigestSignatures};
pub use config::AwsConfig;
pub use dynamodb::DynamoLedger;
pub use env::{ConfigError, Env};
pub use error::{Error, Result};
pub use eventbridge::EventBridgeBus;
pub use s3::{S3LakeWriter, S3ObjectSource};
pub use secrets::SecretsManagerSecrets;
pub use securityhub::SecurityHubSink;
pub use writeback::SecurityHubWriteBack;
