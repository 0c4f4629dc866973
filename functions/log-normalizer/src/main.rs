//! The log-normalizer Lambda: wiring only. Everything it does is in the library.

use lambda_runtime::{service_fn, LambdaEvent};
use log_normalizer::{Config, Handler, Ports, StdoutMetrics};
use muster_aws::{eventbridge, AwsConfig, EventBridgeBus, S3LakeWriter, S3ObjectSource};
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
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let (s3, handle) = (aws.s3_client_from(&sdk), tokio::runtime::Handle::current());
    let lake = Arc::new(
        S3LakeWriter::new(s3.clone(), handle.clone(), &config.output_bucket)
            .with_part_size(aws.part_size),
    );
    let ports = Ports {
        source: Arc::new(S3ObjectSource::new(s3, handle.clone())),
        lake: lake.clone(),
        quarantine: lake,
        metrics: Arc::new(StdoutMetrics),
    };
    let mut handler = Handler::new(config.clone(), ports).with_cloudtrail_keys(&sdk, &handle);
    if let Some(bus) = &config.detection_bus {
        let bus = EventBridgeBus::new(eventbridge::client(&sdk, None), handle, bus);
        handler = handler.with_detections(Arc::new(bus), config.rules()?);
    }
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        handler.handle(event.payload)
    }))
    .await
}
