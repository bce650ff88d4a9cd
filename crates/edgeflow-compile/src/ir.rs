//! The compiler's intermediate representation: owned tensors and lowered ops.

use edgeflow_format::graph::{DType, Op};

/// Quantization of an imported tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct IrQuant {
    /// One scale, or one per channel along `axis`.
    pub scales: Vec<f32>,
    /// Zero points (same length as `scales`).
    pub zero_points: Vec<i64>,
    /// The quantized dimension (per-channel only).
    pub axis: u32,
}

/// A tensor of the imported model.
#[derive(Clone, Debug)]
pub struct IrTensor {
    /// Index in the source model.
    pub index: u32,
    /// Name in the source model.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<u32>,
    /// Quantization, if any.
    pub quant: Option<IrQuant>,
    /// Constant data (little-endian), for weights and biases.
    pub data: Option<Vec<u8>>,
}

impl IrTensor {
    /// Size in bytes, or `None` when it overflows `usize` (the importer rejects every
    /// tensor above 4 GiB, so an imported graph never gives `None`).
    pub fn bytes(&self) -> Option<usize> {
        shape_bytes(&self.shape, self.dtype)
    }
}

/// Elements of `shape` (1 for rank 0), or `None` when the product overflows `usize`.
pub fn shape_elements(shape: &[u32]) -> Option<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(usize::try_from(d).ok()?))
}

/// Bytes of a `shape` of `dtype`, or `None` when the size overflows `usize`.
pub fn shape_bytes(shape: &[u32], dtype: DType) -> Option<usize> {
    shape_elements(shape)?.checked_mul(dtype.size())
}

/// Per-channel requantization, owned until the artifact is written.
#[derive(Clone, Debug)]
pub struct OwnedRequant {
    /// `-input_zero_point`.
    pub input_offset: i32,
    /// Output zero point.
    pub output_offset: i32,
    /// Little-endian i32 multipliers.
    pub multipliers: Vec<u8>,
    /// Little-endian i32 shifts.
    pub shifts: Vec<u8>,
}

/// A lowered op.
#[derive(Clone, Debug)]
pub struct IrOp {
    /// Index in the source model.
    pub source_index: u32,
    /// The op with its parameters (requant arrays are attached at emit time).
    pub op: Op<'static>,
    /// The requantization arrays for CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED.
    pub requant: Option<OwnedRequant>,
    /// Input tensor indices (optional inputs that are absent are omitted).
    pub inputs: Vec<usize>,
    /// Output tensor index.
    pub output: usize,
    /// Multiply-accumulates.
    pub macs: u64,
}

impl IrOp {
    /// A placeholder op (RESHAPE, no parameters) reading `inputs` and writing `output`;
    /// set `op` (and `requant`, `macs`) before use.
    pub fn new(inputs: Vec<usize>, output: usize) -> Self {
        IrOp {
            source_index: 0,
            op: Op::Reshape,
            requant: None,
            inputs,
            output,
            macs: 0,
        }
    }
}

/// An imported model.
#[derive(Clone, Debug)]
pub struct Graph {
    /// All tensors of the source model.
    pub tensors: Vec<IrTensor>,
    /// Graph input tensor indices.
    pub inputs: Vec<usize>,
    /// Graph output tensor indices.
    pub outputs: Vec<usize>,
    /// Ops in execution order.
    pub ops: Vec<IrOp>,
    /// The model's description string.
    pub description: String,
}
