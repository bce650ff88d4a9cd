//! Errors of training and evaluation.

use std::path::PathBuf;

/// Everything that can go wrong in `edgeflow train` / `edgeflow evaluate`.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The config file is invalid (unknown key, wrong type, impossible value).
    #[error("{origin}: {message}")]
    Config {
        /// The file (or other origin) of the config.
        origin: String,
        /// What is wrong, with key and line where known.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A data source could not be read.
    #[error("reading {what}: {source}")]
    Data {
        /// What was being read.
        what: String,
        /// The reader's error (names file and record).
        source: edgeflow_data::Error,
    },
    /// The data is unusable for training (one class, NaN, empty split …).
    #[error("{0}")]
    BadData(String),
    /// The feature pipeline is invalid or failed on an input.
    #[error("feature pipeline {}: {message}", path.display())]
    Pipeline {
        /// The pipeline file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The model does not fit the pipeline's output, or cannot run on the device.
    #[error("model: {0}")]
    Model(String),
    /// The tensor backend failed (a bug or an unsupported operation).
    #[error("training backend: {0}")]
    Backend(String),
    /// Writing the artifact failed.
    #[error("writing the artifact: {0}")]
    Compile(#[from] edgeflow_compile::CompileError),
    /// The artifact could not be run.
    #[error("running the artifact: {0}")]
    Run(String),
}
