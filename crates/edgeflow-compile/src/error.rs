use thiserror::Error;

/// Why a model could not be compiled.
#[derive(Debug, Error)]
pub enum CompileError {
    /// The file is not a valid TFLite flatbuffer.
    #[error("not a valid .tflite flatbuffer: {0}")]
    Flatbuffer(String),
    /// The model as a whole is outside what edgeflow supports.
    #[error("{0}")]
    Model(String),
    /// A tensor is unsupported or inconsistent.
    #[error("tensor {index} ({name:?}): {reason}")]
    Tensor {
        /// Index in the source model.
        index: usize,
        /// Name in the source model.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// An op is unsupported or inconsistent.
    #[error("op {index} ({op}): {reason}")]
    Op {
        /// Index in the source model.
        index: usize,
        /// Op name and version.
        op: String,
        /// What is wrong or missing.
        reason: String,
    },
    /// The compiled artifact failed the run-time's own validation (a compiler bug).
    #[error("the compiled artifact does not validate: {0}")]
    Validate(#[from] edgeflow_nn::Error),
    /// Serialisation failed.
    #[error("could not encode the artifact: {0}")]
    Encode(#[from] postcard::Error),
}
