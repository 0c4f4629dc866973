use std::fmt;

/// Where in an input a problem was found: enough to go and look at it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// `bucket/key` in S3 or a path on disk.
    pub object: String,
    /// 1-based line of the input (after decompression), when known.
    pub line: Option<u64>,
    /// 0-based record index inside the object, when known.
    pub record: Option<u64>,
}

impl Location {
    pub fn object(object: impl Into<String>) -> Self {
        Self {
            object: object.into(),
            line: None,
            record: None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.object)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(record) = self.record {
            write!(f, " (record {record})")?;
        }
        Ok(())
    }
}

/// muster-core's one error type. Each variant says where, and whether a retry can help.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes of the object could not be read (a failing stream underneath us).
    #[error("{at}: reading failed: {source}")]
    Read {
        at: Location,
        source: std::io::Error,
    },

    /// The compressed stream is corrupt or truncated; what was decoded before it is kept.
    #[error("{at}: corrupt or truncated compressed data: {source}")]
    Decompress {
        at: Location,
        source: std::io::Error,
    },

    /// The object is not in the shape its source requires (e.g. a CloudTrail file without `Records`).
    #[error("{at}: {reason}")]
    Format { at: Location, reason: String },

    /// The log source could not be told from the key or the content.
    #[error("{object}: cannot tell the log source from the key or the content; pass --source")]
    UnknownSource { object: String },

    /// The store behind an `ObjectSource` refused or failed to open an input object
    /// (S3 GetObject, a local open); whether a retry can help depends on why.
    #[error("{object}: cannot open: {message}")]
    Open {
        object: String,
        message: String,
        retryable: bool,
    },

    /// A port (lake, quarantine) failed to accept output.
    #[error("{what}: {message}")]
    Sink {
        what: String,
        message: String,
        retryable: bool,
    },

    /// An event we produced could not be serialised (a bug, not bad input).
    #[error("{at}: cannot serialise event: {source}")]
    Serialize {
        at: Location,
        source: serde_json::Error,
    },

    /// A trigger event that is not one of the shapes we accept.
    #[error("unrecognised trigger event: {0}")]
    Trigger(String),

    /// A configuration value is missing or invalid.
    #[error("configuration: {0}")]
    Config(String),
}

impl Error {
    /// Whether processing the same input again may succeed. Bad input never gets
    /// better by retrying; a failing stream or store might.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Read { .. } => true,
            Error::Sink { retryable, .. } | Error::Open { retryable, .. } => *retryable,
            Error::Decompress { .. }
            | Error::Format { .. }
            | Error::UnknownSource { .. }
            | Error::Serialize { .. }
            | Error::Trigger(_)
            | Error::Config(_) => false,
        }
    }

    pub fn sink(what: impl Into<String>, message: impl fmt::Display, retryable: bool) -> Self {
        Error::Sink {
            what: what.into(),
            message: message.to_string(),
            retryable,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
