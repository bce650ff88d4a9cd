use thiserror::Error;

/// Why a model could not be compiled.
#[derive(Debug, Error)]
pub enum CompileError {
    /// The file is not a valid TFLite flatbuffer.
    #[error("not a valid .tflite flatbuffer: {0}")]
    Flatbuffer(#[from] flatbuffers::InvalidFlatbuffer),
    /// The `.tflite` model has no subgraph.
    #[error("the model has no subgraph")]
    NoSubgraph,
    /// The `.tflite` model has more than one subgraph (control flow, several signatures).
    #[error(
        "the model has {0} subgraphs; control flow (WHILE/IF) and multi-signature models are not supported"
    )]
    Subgraphs(usize),
    /// The `.tflite` subgraph has no tensor table.
    #[error("the subgraph has no tensors")]
    NoTensors,
    /// A graph input/output or an op operand names a tensor index outside the tensor table.
    #[error("{role} refers to tensor {index}, which does not exist")]
    MissingTensor {
        /// Which list the index is in ("graph input", "graph output", "op input", "op output").
        role: &'static str,
        /// The index as stored in the model.
        index: i32,
    },
    /// An artifact's graph describes one tensor id twice, differently.
    #[error("tensor id {id} is described twice with different shape, type or quantization")]
    TensorRedefined {
        /// The tensor id in the artifact's graph section.
        id: u32,
    },
    /// An artifact's op record has no output tensor.
    #[error("op {index} has no output")]
    OpWithoutOutput {
        /// Position of the op in the artifact's graph section.
        index: usize,
    },
    /// A graph input is a constant tensor (nothing would be read from the caller).
    #[error("graph input {0} is a constant")]
    ConstantInput(usize),
    /// A graph output is never written by any op.
    #[error("graph output {0} is never written")]
    UnwrittenOutput(usize),
    /// A non-constant tensor has no place in the memory plan (a planner bug).
    #[error("tensor {0} has no place in the plan")]
    Unplanned(usize),
    /// The reference evaluator got a different number of inputs than the graph has.
    #[error("{given} inputs given, the model has {expected}")]
    InputCount {
        /// Buffers given.
        given: usize,
        /// Graph inputs.
        expected: usize,
    },
    /// The reference evaluator got an input buffer of the wrong length.
    #[error("input tensor {tensor} ({name}) needs {want} bytes, got {got}")]
    InputSize {
        /// Tensor index in the graph.
        tensor: usize,
        /// Tensor name in the graph.
        name: String,
        /// Bytes the tensor's shape and type need.
        want: usize,
        /// Bytes given.
        got: usize,
    },
    /// A tensor's byte size overflows `usize`, so the reference evaluator cannot hold it.
    #[error("{role} tensor {tensor} is too large to evaluate")]
    TooLargeToEvaluate {
        /// "input" or "output".
        role: &'static str,
        /// Tensor index in the graph.
        tensor: usize,
    },
    /// A size or count exceeds what the artifact format can store.
    #[error("{0}")]
    Limit(#[from] Limit),
    /// The artifact given to be re-assembled does not parse.
    #[error("not a valid artifact: {0}")]
    Artifact(#[source] edgeflow_format::FormatError),
    /// The artifact the compiler just wrote does not parse (a compiler bug).
    #[error("emitted artifact does not parse: {0}")]
    Emitted(#[source] edgeflow_format::FormatError),
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

/// A size or count that exceeds what the artifact format stores (`u32` offsets and counts,
/// `u64` MACs, the graph header's fixed-capacity tensor lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Limit {
    /// The weights section would be 4 GiB or more.
    #[error("the weights section would exceed 4 GiB")]
    Weights,
    /// The arena would be 4 GiB or more.
    #[error("the arena would exceed 4 GiB")]
    Arena,
    /// The graph has 2^32 ops or more.
    #[error("more than 2^32 ops")]
    Ops,
    /// The multiply-accumulate count does not fit `u64`.
    #[error("the MAC count overflows u64")]
    Macs,
    /// A graph input/output list is longer than the header's capacity.
    #[error("more than {max} tensors in one list")]
    TensorList {
        /// The list capacity.
        max: usize,
    },
}
