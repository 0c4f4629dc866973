//! Secrets Manager behind the forwarder's `Secrets`: backend credentials by name, read
//! once and cached for the life of the container (with a time-to-live, so a rotated
//! secret is picked up without a redeploy).
//!
//! Values are never logged or put into errors: an error names the secret, never its value.

use crate::error::Error;
use crate::retry::call_error;
use aws_sdk_secretsmanager::Client;
use muster_core::ports::Secrets;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;

/// How long a value read is used before it is read again.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);

/// Builds a Secrets Manager client; `endpoint` overrides where it is sent (moto server in
/// tests), otherwise the SDK's configuration applies (`AWS_ENDPOINT_URL_SECRETS_MANAGER`).
pub fn client(sdk: &aws_config::SdkConfig, endpoint: Option<&str>) -> Client {
    let mut builder = aws_sdk_secretsmanager::config::Builder::from(sdk);
    if let Some(url) = endpoint {
        builder = builder.endpoint_url(url);
    }
    Client::from_conf(builder.build())
}

/// Not `Debug` on purpose: a value must have no way into a log line.
struct Cached {
    value: String,
    read_at: Instant,
}

/// Backend credentials from Secrets Manager: the secret `<prefix><name>`, its
/// `SecretString` (or a UTF-8 `SecretBinary`).
pub struct SecretsManagerSecrets {
    client: Client,
    handle: Handle,
    prefix: String,
    ttl: Duration,
    cache: Mutex<HashMap<String, Cached>>,
}

impl std::fmt::Debug for SecretsManagerSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsManagerSecrets")
            .field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl SecretsManagerSecrets {
    /// `handle` is the runtime the SDK's connections live on; `get` must then be called
    /// off it (from `spawn_blocking` or another thread), as it blocks.
    pub fn new(client: Client, handle: Handle, prefix: impl Into<String>) -> Self {
        SecretsManagerSecrets {
            client,
            handle,
            prefix: prefix.into(),
            ttl: DEFAULT_TTL,
            cache: Mutex::default(),
        }
    }

    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The secret id a backend's secret name resolves to.
    pub fn secret_id(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn fetch(&self, id: &str) -> Result<String, Error> {
        let request = self.client.get_secret_value().secret_id(id);
        let out = self.handle.block_on(request.send()).map_err(|e| {
            match call_error("SecretsManager", "GetSecretValue", e) {
                Error::Service {
                    service,
                    operation,
                    code,
                    message,
                    retryable,
                } => Error::Service {
                    service,
                    operation,
                    code,
                    message: format!("secret {id}: {message}"),
                    retryable,
                },
                other => other,
            }
        })?;
        if let Some(v) = out.secret_string {
            return Ok(v);
        }
        let refused = |reason: &str| Error::Service {
            service: "SecretsManager",
            operation: "GetSecretValue",
            code: None,
            message: format!("secret {id}: {reason}"),
            retryable: false,
        };
        match out.secret_binary {
            Some(blob) => String::from_utf8(blob.into_inner())
                .map_err(|_| refused("SecretBinary is not UTF-8 text")),
            None => Err(refused("has neither SecretString nor SecretBinary")),
        }
    }
}

impl Secrets for SecretsManagerSecrets {
    fn get(&self, name: &str) -> muster_core::Result<String> {
        let id = self.secret_id(name);
        {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = cache.get(&id).filter(|c| c.read_at.elapsed() < self.ttl) {
                return Ok(c.value.clone());
            }
        }
        // Two threads missing at once both read: harmless, and simpler than a per-key lock.
        let value = self.fetch(&id)?;
        tracing::debug!(secret = %id, "secret read");
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(
            id,
            Cached {
                value: value.clone(),
                read_at: Instant::now(),
            },
        );
        Ok(value)
    }
}
