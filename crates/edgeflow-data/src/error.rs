//! The one error type of the crate.
//!
//! Every variant that comes from a file names the file, and every variant that comes from
//! one record of a file also names the record, so a message alone is enough to find the
//! bad bytes.

use std::path::PathBuf;

/// A boxed error returned by a user function (a fallible `map`, say).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while building or iterating a dataset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error while opening, reading or writing `path`.
    #[error("{path}: {error}")]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying error (part of the message, so not repeated as a source).
        error: std::io::Error,
    },
    /// The file as a whole is unusable (bad magic, bad header, unsupported variant).
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// One record of a file is corrupt: a malformed CSV row, a truncated TFRecord, a bad
    /// checksum, an undecodable image.
    #[error("{path}: record {record}{}: {reason}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    Record {
        /// The file.
        path: PathBuf,
        /// 0-based index of the record within the file.
        record: u64,
        /// 1-based line number, for text formats.
        line: Option<u64>,
        /// What is wrong with it.
        reason: String,
    },
    /// A glob pattern is malformed.
    #[error("pattern {pattern:?}: {reason}")]
    Pattern {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A user function failed on one element.
    #[error("{op}: element {index}: {source}")]
    User {
        /// The operator that called the function (`try_map`, …).
        op: &'static str,
        /// 0-based index of the element within the epoch, as seen by that operator.
        index: u64,
        /// The function's error.
        #[source]
        source: BoxError,
    },
    /// An element does not fit an operator (a sequence longer than a fixed padded shape,
    /// batches of unequal shapes, …), or an operator was configured wrongly.
    #[error("{op}: {reason}")]
    Invalid {
        /// The operator.
        op: &'static str,
        /// What does not fit.
        reason: String,
    },
    /// A worker thread of a parallel operator panicked (in a user function).
    #[error("{op}: a worker thread panicked")]
    WorkerPanicked {
        /// The operator.
        op: &'static str,
    },
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error: source,
        }
    }

    /// An [`Error::File`] for `path`.
    pub fn file(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::File {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// An [`Error::Record`] for record `record` (0-based) of `path`.
    pub fn record(path: impl Into<PathBuf>, record: u64, reason: impl Into<String>) -> Self {
        Error::Record {
            path: path.into(),
            record,
            line: None,
            reason: reason.into(),
        }
    }

    /// An [`Error::Record`] for record `record` (0-based) at 1-based `line` of `path`.
    pub fn line(
        path: impl Into<PathBuf>,
        record: u64,
        line: u64,
        reason: impl Into<String>,
    ) -> Self {
        Error::Record {
            path: path.into(),
            record,
            line: Some(line),
            reason: reason.into(),
        }
    }

    /// An [`Error::Invalid`].
    pub fn invalid(op: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            op,
            reason: reason.into(),
        }
    }

    /// An equivalent error for a second place in the output: same variant and fields,
    /// message identical; a wrapped I/O error keeps its kind, a user function's error
    /// keeps its message (its source chain is flattened into text). Used where one bad
    /// input item spoils several outputs (overlapping windows).
    pub fn duplicate(&self) -> Error {
        match self {
            Error::Io { path, error } => Error::Io {
                path: path.clone(),
                error: std::io::Error::new(error.kind(), error.to_string()),
            },
            Error::File { path, reason } => Error::File {
                path: path.clone(),
                reason: reason.clone(),
            },
            Error::Record {
                path,
                record,
                line,
                reason,
            } => Error::Record {
                path: path.clone(),
                record: *record,
                line: *line,
                reason: reason.clone(),
            },
            Error::Pattern { pattern, reason } => Error::Pattern {
                pattern: pattern.clone(),
                reason: reason.clone(),
            },
            Error::User { op, index, source } => Error::User {
                op,
                index: *index,
                source: source.to_string().into(),
            },
            Error::Invalid { op, reason } => Error::Invalid {
                op,
                reason: reason.clone(),
            },
            Error::WorkerPanicked { op } => Error::WorkerPanicked { op },
        }
    }

    /// Whether this error concerns one record only, so that a reader can go on with the
    /// next record ([`Error::Record`] and [`Error::User`]).
    pub fn is_record_level(&self) -> bool {
        matches!(self, Error::Record { .. } | Error::User { .. })
    }
}
