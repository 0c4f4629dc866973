//! The ticket-forwarder Lambda: wiring only. Everything it does is in the library.

use lambda_runtime::{service_fn, LambdaEvent};
use muster_aws::AwsConfig;
use ticket_forwarder::Config;
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
    // Routes, clients and the HTTP pool once per container; a bad routes file stops here.
    let handler = ticket_forwarder::on_aws(config, &sdk, &aws, None).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        handler.handle(event.payload, Some(event.context.deadline()))
    }))
    .await
}
