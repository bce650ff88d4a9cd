use core::fmt;

use edgeflow_format::FormatError;

/// Why a model was rejected or an inference could not run.
///
/// Every variant names where the problem is (op index in the source model, tensor id)
/// and, for memory, how many bytes are needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The artifact container is malformed (header, CRC, sections).
    Format(FormatError),
    /// The graph header could not be decoded.
    BadGraphHeader,
    /// Op record number `position` could not be decoded.
    BadOpRecord {
        /// Position of the record in execution order.
        position: u32,
    },
    /// Op record number `position` could not be decoded, and the artifact was written by
    /// a newer minor version of the format than this reader's: it most likely uses an op
    /// this build of the run-time does not know.
    NewerOp {
        /// Position of the record in execution order.
        position: u32,
        /// The record's op tag (the numbering of `edgeflow_format::decode::OP_NAMES`;
        /// a tag past that list is an op added after this reader), `None` when the
        /// record is too short to hold one.
        tag: Option<u32>,
        /// The artifact's format version (major, minor).
        artifact: (u16, u16),
        /// The newest format version this reader knows (major, minor).
        reader: (u16, u16),
    },
    /// The graph section holds bytes after the last op record.
    TrailingGraphBytes,
    /// A tensor description is inconsistent (rank, length, location out of bounds).
    BadTensor {
        /// Source op index (`u32::MAX` for graph inputs/outputs).
        op: u32,
        /// Tensor id in the source model.
        tensor: u32,
        /// What is wrong: the text with the `std` feature; on a device build (no `std`)
        /// the check's source file and line, e.g. `"model.rs:139"` (see the crate's
        /// `why!`; messages naming a build flag keep their text).
        reason: &'static str,
    },
    /// An op's parameters or tensors fail the kernel's preconditions.
    InvalidOp {
        /// Source op index.
        op: u32,
        /// TFLite op name.
        name: &'static str,
        /// The failed check: the text with the `std` feature; on a device build (no
        /// `std`) its source file and line, e.g. `"conv.rs:65"` (see the crate's `why!`;
        /// messages naming a build flag keep their text).
        reason: &'static str,
    },
    /// An op's scratch region is smaller than its kernel needs, in an artifact of a format
    /// version older than [`edgeflow_format::PLAN_SCRATCH_MINOR`]: it was compiled by an
    /// older edgeflow, whose memory plans kept the kernels' accumulator blocks out of the
    /// scratch region, and must be compiled again.
    OlderPlan {
        /// Source op index.
        op: u32,
        /// TFLite op name.
        name: &'static str,
        /// The artifact's format version (major, minor).
        artifact: (u16, u16),
        /// The format version this reader writes (major, minor).
        reader: (u16, u16),
    },
    /// The caller's arena is smaller than the memory plan.
    ArenaTooSmall {
        /// Bytes the plan needs.
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// The caller's arena start is not aligned as the plan requires.
    ArenaMisaligned {
        /// Alignment required, in bytes.
        align: usize,
    },
    /// A graph input or output index past the number the model has.
    NoSuchTensor {
        /// The index asked for.
        index: usize,
        /// How many the model has.
        count: usize,
    },
}

impl From<FormatError> for Error {
    fn from(e: FormatError) -> Self {
        Error::Format(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Format(e) => e.fmt(f),
            Error::BadGraphHeader => write!(f, "graph section header is malformed"),
            Error::BadOpRecord { position } => {
                write!(f, "op record #{position} in the graph section is malformed")
            }
            Error::NewerOp {
                position,
                tag,
                artifact,
                reader,
            } => {
                write!(f, "op record #{position}")?;
                if let Some(t) = tag {
                    write!(f, " (op tag {t})")?;
                }
                // The advice only on the host: a device build says what and where in
                // fewer bytes of flash (BENCHMARKS.md, "Footprint: code size, fifth pass").
                if cfg!(any(test, feature = "std")) {
                    write!(
                        f,
                        " does not decode: the artifact is format {}.{}, newer than this run-time's {}.{}, and uses an op it does not know (rebuild the firmware with a newer edgeflow-nn)",
                        artifact.0, artifact.1, reader.0, reader.1
                    )
                } else {
                    write!(
                        f,
                        " does not decode: artifact format {}.{} is newer than the run-time's {}.{}",
                        artifact.0, artifact.1, reader.0, reader.1
                    )
                }
            }
            Error::TrailingGraphBytes => {
                write!(f, "graph section has bytes after the last op record")
            }
            Error::BadTensor { op, tensor, reason } if op == u32::MAX => {
                write!(f, "graph input/output tensor {tensor}: {reason}")
            }
            Error::BadTensor { op, tensor, reason } => {
                write!(f, "op {op}, tensor {tensor}: {reason}")
            }
            Error::InvalidOp { op, name, reason } => write!(f, "op {op} ({name}): {reason}"),
            Error::OlderPlan {
                op,
                name,
                artifact,
                reader,
            } => {
                // A device build (no `std`) says what and where in fewer bytes of flash.
                if cfg!(any(test, feature = "std")) {
                    write!(
                        f,
                        "op {op} ({name}): scratch region smaller than the kernel needs: the artifact is format {}.{}, compiled by an older edgeflow than this run-time (format {}.{}); compile the model again (`edgeflow convert` or `edgeflow quantize`)",
                        artifact.0, artifact.1, reader.0, reader.1
                    )
                } else {
                    write!(
                        f,
                        "op {op} ({name}): scratch too small: artifact format {}.{} is older than the run-time's {}.{}; recompile it",
                        artifact.0, artifact.1, reader.0, reader.1
                    )
                }
            }
            Error::ArenaTooSmall { needed, got } => write!(
                f,
                "arena too small: the model needs {needed} bytes, {got} were given"
            ),
            Error::ArenaMisaligned { align } => {
                write!(f, "arena start must be aligned to {align} bytes")
            }
            Error::NoSuchTensor { index, count } => {
                write!(f, "no graph tensor #{index}: the model has {count}")
            }
        }
    }
}

impl core::error::Error for Error {}
