//! The findings-importer Lambda: wiring only. Everything it does is in the library.

use findings_importer::{Config, Handler, Ports};
use lambda_runtime::{service_fn, LambdaEvent};
use muster_aws::{securityhub, AwsConfig, S3ObjectSource, SecurityHubSink};
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
    let handle = tokio::runtime::Handle::current();
    let ports = Ports {
        source: Arc::new(S3ObjectSource::new(
            aws.s3_client_from(&sdk),
            handle.clone(),
        )),
        sink: Arc::new(SecurityHubSink::new(
            securityhub::client(&sdk, None),
            handle,
        )),
    };
    let handler = Handler::new(config, ports);
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        handler.handle(event.payload)
    }))
    .await
}
