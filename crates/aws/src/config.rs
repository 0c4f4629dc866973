//! The adapters' configuration, read once from the environment at cold start.

use crate::error::{Error, Result};
use crate::s3::{DEFAULT_PART_SIZE, MIN_PART_SIZE};
use aws_config::BehaviorVersion;

/// Where and how to reach AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsConfig {
    /// Endpoint override for S3 (moto server, LocalStack, a VPC endpoint). When set,
    /// requests use path-style addressing: emulators do not serve bucket subdomains.
    pub s3_endpoint: Option<String>,
    /// Part size of multipart lake uploads, in bytes: the most an output file buffers.
    pub part_size: usize,
}

impl Default for AwsConfig {
    fn default() -> Self {
        AwsConfig {
            s3_endpoint: None,
            part_size: DEFAULT_PART_SIZE,
        }
    }
}

impl AwsConfig {
    /// Reads `MUSTER_S3_ENDPOINT` (or the SDK's own `AWS_ENDPOINT_URL_S3` /
    /// `AWS_ENDPOINT_URL`) and `MUSTER_S3_PART_SIZE` (bytes, at least 5 MiB, S3's
    /// minimum part). Region and credentials come from the SDK's default chain.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`AwsConfig::from_env`], over any variable lookup (tests pass a map).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let s3_endpoint = set("MUSTER_S3_ENDPOINT")
            .or_else(|| set("AWS_ENDPOINT_URL_S3"))
            .or_else(|| set("AWS_ENDPOINT_URL"));
        if let Some(url) = &s3_endpoint {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(Error::Config {
                    variable: "MUSTER_S3_ENDPOINT",
                    reason: format!("{url:?} is not an http(s) URL"),
                });
            }
        }
        let part_size = match set("MUSTER_S3_PART_SIZE") {
            None => DEFAULT_PART_SIZE,
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if n >= MIN_PART_SIZE => n,
                _ => {
                    return Err(Error::Config {
                        variable: "MUSTER_S3_PART_SIZE",
                        reason: format!("{v:?} is not a byte count of at least {MIN_PART_SIZE}"),
                    })
                }
            },
        };
        Ok(AwsConfig {
            s3_endpoint,
            part_size,
        })
    }

    /// Builds the S3 client once; clone it freely (clones share connections).
    pub async fn s3_client(&self) -> aws_sdk_s3::Client {
        let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
        self.s3_client_from(&sdk)
    }

    /// The S3 client over an already loaded SDK configuration.
    pub fn s3_client_from(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
        let mut builder = aws_sdk_s3::config::Builder::from(sdk);
        if let Some(url) = &self.s3_endpoint {
            builder = builder.endpoint_url(url).force_path_style(true);
        }
        aws_sdk_s3::Client::from_conf(builder.build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn config_comes_from_variables_and_fails_naming_them() {
        /// The variables set, and the endpoint and part size wanted (or the variable named).
        type Case<'a> = (
            &'a [(&'a str, &'a str)],
            Result<(Option<&'a str>, usize), &'a str>,
        );
        let cases: [Case; 6] = [
            (&[], Ok((None, DEFAULT_PART_SIZE))),
            (
                &[("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")],
                Ok((Some("http://127.0.0.1:5000"), DEFAULT_PART_SIZE)),
            ),
            (
                &[
                    ("AWS_ENDPOINT_URL", "http://a:1"),
                    ("MUSTER_S3_ENDPOINT", "http://b:2"),
                    ("MUSTER_S3_PART_SIZE", "16777216"),
                ],
                Ok((Some("http://b:2"), 16 * 1024 * 1024)),
            ),
            (
                &[("MUSTER_S3_ENDPOINT", "  ")],
                Ok((None, DEFAULT_PART_SIZE)),
            ),
            (
                &[("MUSTER_S3_ENDPOINT", "localhost:5000")],
                Err("MUSTER_S3_ENDPOINT"),
            ),
            (
                &[("MUSTER_S3_PART_SIZE", "1024")],
                Err("MUSTER_S3_PART_SIZE"),
            ),
        ];
        for (vars, want) in cases {
            let map: HashMap<&str, &str> = vars.iter().copied().collect();
            let got = AwsConfig::from_lookup(|n| map.get(n).map(|v| v.to_string()));
            match (got, want) {
                (Ok(c), Ok((endpoint, part))) => {
                    assert_eq!(c.s3_endpoint.as_deref(), endpoint, "{vars:?}");
                    assert_eq!(c.part_size, part, "{vars:?}");
                }
                (Err(e), Err(variable)) => {
                    assert!(e.to_string().contains(variable), "{e}");
                }
                (got, want) => panic!("{vars:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
