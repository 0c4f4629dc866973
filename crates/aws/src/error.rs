//! muster-aws's one error type: which call failed on which object, and whether a
//! retry can help. It becomes a `muster_core::Error` at the port boundary.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use std::fmt;

type HttpResponse = aws_sdk_s3::config::http::HttpResponse;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An S3 call failed (after the SDK's own retries).
    #[error("s3://{bucket}/{key}: {operation} failed: {message}")]
    S3 {
        operation: &'static str,
        bucket: String,
        key: String,
        /// The service's error code (`AccessDenied`, `SlowDown`, …) when it sent one.
        code: Option<String>,
        message: String,
        retryable: bool,
    },

    /// A multipart output would need more parts than S3 allows.
    #[error("s3://{bucket}/{key}: output needs more than {max_parts} parts of {part_size} bytes; raise the part size")]
    TooManyParts {
        bucket: String,
        key: String,
        part_size: usize,
        max_parts: i32,
    },

    /// An output file was written to after it failed: its upload is being abandoned.
    #[error("s3://{bucket}/{key}: output file already failed: {reason}")]
    Poisoned {
        bucket: String,
        key: String,
        reason: String,
    },

    /// A configuration variable is invalid.
    #[error("configuration: {variable}: {reason}")]
    Config {
        variable: &'static str,
        reason: String,
    },

    /// An EventBridge or Security Hub call failed, or entries of it still failed after
    /// their retries.
    #[error("{service} {operation}: {message}")]
    Service {
        service: &'static str,
        operation: &'static str,
        /// The service's error code (`ThrottlingException`, `InternalFailure`, …) when it sent one.
        code: Option<String>,
        message: String,
        retryable: bool,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether doing the same again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::S3 { retryable, .. } | Error::Service { retryable, .. } => *retryable,
            Error::Poisoned { .. } => true,
            Error::TooManyParts { .. } | Error::Config { .. } => false,
        }
    }

    /// Classifies a failed SDK call on `bucket`/`key`.
    pub fn s3<E>(
        operation: &'static str,
        bucket: &str,
        key: &str,
        err: SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let (code, retryable) = match &err {
            SdkError::ServiceError(ctx) => {
                let code = ctx.err().code().map(str::to_owned);
                let status = ctx.raw().status().as_u16();
                (
                    code.clone(),
                    retryable_service_error(status, code.as_deref()),
                )
            }
            // The request was never built: a bug or a bad argument, not a passing fault.
            SdkError::ConstructionFailure(_) => (None, false),
            // Timeouts, connection failures and unreadable responses pass.
            _ => (None, true),
        };
        Error::S3 {
            operation,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            code,
            message: DisplayErrorContext(&err).to_string(),
            retryable,
        }
    }

    /// The object this error is about, as `s3://bucket/key`.
    pub fn object(&self) -> Option<String> {
        match self {
            Error::S3 { bucket, key, .. }
            | Error::TooManyParts { bucket, key, .. }
            | Error::Poisoned { bucket, key, .. } => Some(format!("s3://{bucket}/{key}")),
            Error::Config { .. } | Error::Service { .. } => None,
        }
    }

    /// As the core's error for a failed read of an input object.
    pub fn into_open_error(self) -> muster_core::Error {
        muster_core::Error::Open {
            object: self.object().unwrap_or_default(),
            retryable: self.is_retryable(),
            message: DisplayMessage(&self).to_string(),
        }
    }
}

/// At the port boundary every failure of ours is a failure of the store behind the port.
impl From<Error> for muster_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Config { .. } => muster_core::Error::Config(e.to_string()),
            Error::Service {
                service,
                operation,
                message,
                retryable,
                ..
            } => muster_core::Error::sink(format!("{service} {operation}"), message, retryable),
            _ => {
                let what = e.object().unwrap_or_else(|| "s3".into());
                let retryable = e.is_retryable();
                muster_core::Error::sink(what, DisplayMessage(&e), retryable)
            }
        }
    }
}

/// The error's text without the `s3://bucket/key:` prefix that `Sink` already carries.
struct DisplayMessage<'a>(&'a Error);

impl fmt::Display for DisplayMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Error::S3 {
                operation, message, ..
            } => write!(f, "{operation} failed: {message}"),
            other => {
                let text = other.to_string();
                let prefix = other.object().map(|o| format!("{o}: "));
                match prefix.as_deref().and_then(|p| text.strip_prefix(p)) {
                    Some(rest) => f.write_str(rest),
                    None => f.write_str(&text),
                }
            }
        }
    }
}

/// Throttling and server-side faults pass; everything else S3 refuses (access denied,
/// archived object, bad request) stays refused however often it is asked.
fn retryable_service_error(status: u16, code: Option<&str>) -> bool {
    let transient_code = matches!(
        code,
        Some(
            "SlowDown"
                | "RequestTimeout"
                | "RequestTimeTooSkewed"
                | "InternalError"
                | "ServiceUnavailable"
                | "Throttling"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "OperationAborted"
        )
    );
    transient_code || status >= 500 || status == 429 || status == 408
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_errors_are_classified_by_status_and_code() {
        let cases = [
            (503, Some("SlowDown"), true),
            (500, Some("InternalError"), true),
            (500, None, true),
            (429, None, true),
            (400, Some("RequestTimeout"), true),
            (403, Some("AccessDenied"), false),
            (403, Some("InvalidObjectState"), false),
            (400, Some("InvalidRequest"), false),
            (404, Some("NoSuchBucket"), false),
        ];
        for (status, code, want) in cases {
            assert_eq!(
                retryable_service_error(status, code),
                want,
                "{status} {code:?}"
            );
        }
    }

    #[test]
    fn errors_keep_the_object_and_retryability_into_core() {
        let cases = [
            (
                Error::S3 {
                    operation: "PutObject",
                    bucket: "lake".into(),
                    key: "ocsf/x.gz".into(),
                    code: Some("SlowDown".into()),
                    message: "slow down".into(),
                    retryable: true,
                },
                "s3://lake/ocsf/x.gz: PutObject failed: slow down",
                true,
            ),
            (
                Error::TooManyParts {
                    bucket: "lake".into(),
                    key: "k".into(),
                    part_size: 5,
                    max_parts: 10_000,
                },
                "s3://lake/k: output needs more than 10000 parts of 5 bytes; raise the part size",
                false,
            ),
        ];
        for (err, text, retryable) in cases {
            assert_eq!(err.is_retryable(), retryable);
            let core: muster_core::Error = err.into();
            assert_eq!(core.to_string(), text);
            assert_eq!(core.is_retryable(), retryable);
        }
        let open = Error::S3 {
            operation: "GetObject",
            bucket: "logs".into(),
            key: "a b.gz".into(),
            code: Some("AccessDenied".into()),
            message: "denied".into(),
            retryable: false,
        }
        .into_open_error();
        assert!(
            matches!(&open, muster_core::Error::Open { object, retryable: false, .. } if object == "s3://logs/a b.gz")
        );
    }
}
