//! The log-normalizer Lambda: wiring only. Everything it does is in the library.

use lambda_runtime::{service_fn, LambdaEvent};
use log_normalizer::{Config, Handler, Ports, StdoutMetrics};
use muster_aws::{AwsConfig, S3LakeWriter, S3ObjectSource};
use std::sync::Arc;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_ansi(false)
        .with_current_span(true)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let config = Config::from_env()?;
    let aws = AwsConfig::from_env()?;
    let s3 = aws.s3_client().await;
    let handle = tokio::runtime::Handle::current();
    let lake = Arc::new(
        S3LakeWriter::new(s3.clone(), handle.clone(), &config.output_bucket)
            .with_part_size(aws.part_size),
    );
    let ports = Ports {
        source: Arc::new(S3ObjectSource::new(s3, handle)),
        lake: lake.clone(),
        quarantine: lake,
        metrics: Arc::new(StdoutMetrics),
    };
    let handler = Handler::new(config, ports);
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        handler.handle(event.payload)
    }))
    .await
}
