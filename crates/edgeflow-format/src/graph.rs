//! The graph section: tensors, ops and their parameters, as postcard records.
//!
//! The section is a [`GraphHeader`] followed by `op_count` [`OpDef`] records, in
//! execution order. Every op record carries complete descriptions of its input and
//! output tensors, so a device walks the ops front to back and never needs a tensor
//! table in RAM. All integer quantization parameters a kernel needs (fixed-point
//! multipliers, shifts, activation ranges) are computed on the host and stored here:
//! int8 inference does no floating-point work on the device.
//!
//! These types only describe; they do not validate. `edgeflow-nn`'s `Model::parse` checks
//! every field before any kernel runs.

use serde::{Deserialize, Serialize};

/// Highest tensor rank the run-time handles.
pub const MAX_RANK: usize = 6;
/// Most inputs an op may have (CONCATENATION is the only op that uses more than 3).
pub const MAX_OP_INPUTS: usize = 8;
/// Most outputs an op may have.
pub const MAX_OP_OUTPUTS: usize = 1;
/// Most graph inputs or outputs.
pub const MAX_GRAPH_IO: usize = 4;

/// A borrowed byte string, encoded as postcard bytes (length prefix + raw bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Bytes<'a>(pub &'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Bytes<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'de [u8]>::deserialize(d).map(Bytes)
    }
}

impl<'a> Bytes<'a> {
    /// Number of little-endian 32-bit words (the length must be a multiple of 4; checked at parse).
    pub fn len_i32(&self) -> usize {
        self.0.len() / 4
    }
    /// The `i`-th little-endian `i32`, or `None` past the end.
    #[inline]
    pub fn i32_at(&self, i: usize) -> Option<i32> {
        let b = self
            .0
            .get(i.checked_mul(4)?..i.checked_mul(4)?.checked_add(4)?)?;
        Some(i32::from_le_bytes(*b.first_chunk::<4>()?))
    }
    /// The `i`-th little-endian `f32`, or `None` past the end.
    #[inline]
    pub fn f32_at(&self, i: usize) -> Option<f32> {
        self.i32_at(i).map(|v| f32::from_bits(v as u32))
    }
}

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DType {
    /// Signed 8-bit integer (quantized).
    I8,
    /// IEEE-754 single precision.
    F32,
    /// Signed 32-bit integer (biases, shapes).
    I32,
}

impl DType {
    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::F32 | DType::I32 => 4,
        }
    }
}

/// A tensor shape of rank `0..=MAX_RANK`; unused trailing dims are zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Shape {
    /// Number of dimensions.
    pub rank: u8,
    /// Extents, outermost first (NHWC for images).
    pub dims: [u32; MAX_RANK],
}

impl Shape {
    /// Builds a shape; `None` if `dims` has more than [`MAX_RANK`] entries.
    pub fn new(dims: &[u32]) -> Option<Self> {
        if dims.len() > MAX_RANK {
            return None;
        }
        let mut s = Shape {
            rank: dims.len() as u8,
            dims: [0; MAX_RANK],
        };
        s.dims.get_mut(..dims.len())?.copy_from_slice(dims);
        Some(s)
    }
    /// The used dims. A corrupt `rank` is clamped to [`MAX_RANK`] (parse rejects it anyway).
    pub fn dims(&self) -> &[u32] {
        let r = (self.rank as usize).min(MAX_RANK);
        self.dims.get(..r).unwrap_or(&self.dims)
    }
    /// Product of the dims, or `None` on overflow of `usize`.
    pub fn num_elements(&self) -> Option<usize> {
        self.dims()
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d as usize))
    }
    /// Dim `i`, or 0 past the rank.
    pub fn dim(&self, i: usize) -> usize {
        self.dims().get(i).copied().unwrap_or(0) as usize
    }
}

/// Per-channel quantization scales (informational on the device; kernels use [`Requant`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PerChannel<'a> {
    /// The quantized dimension.
    pub axis: u8,
    /// One little-endian `f32` scale per channel.
    #[serde(borrow)]
    pub scales: Bytes<'a>,
}

/// Affine quantization of a tensor: `real = scale * (q - zero_point)`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quant<'a> {
    /// Scale (the first channel's when per-channel).
    pub scale: f32,
    /// Zero point.
    pub zero_point: i32,
    /// Per-channel scales, when the tensor is quantized per channel.
    #[serde(borrow)]
    pub per_channel: Option<PerChannel<'a>>,
}

/// Where a tensor's bytes live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Location {
    /// In the caller's arena at this byte offset (placed by the offline memory plan).
    Arena {
        /// Byte offset in the arena.
        offset: u32,
    },
    /// In the artifact's weights section at this byte offset (read-only).
    Const {
        /// Byte offset in the weights section.
        offset: u32,
    },
}

/// A tensor as an op sees it. Its byte length is `num_elements * dtype.size()`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorDef<'a> {
    /// Index of the tensor in the source model (for messages and tooling).
    pub id: u32,
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Shape,
    /// Quantization, for quantized tensors.
    #[serde(borrow)]
    pub quant: Option<Quant<'a>>,
    /// Where the bytes live.
    pub location: Location,
}

/// A clamp applied to an op's output (fused activation): integer bounds for quantized
/// outputs (already in the output's quantized domain), float bounds for f32 outputs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Clamp {
    /// Lower bound for quantized outputs.
    pub min_q: i32,
    /// Upper bound for quantized outputs.
    pub max_q: i32,
    /// Lower bound for float outputs.
    pub min_f: f32,
    /// Upper bound for float outputs.
    pub max_f: f32,
}

impl Clamp {
    /// No fused activation: the int8 range, and for floats TFLite's
    /// `[lowest finite, max finite]` (so an overflow saturates to `f32::MAX` as in TFLite).
    pub const NONE: Clamp = Clamp {
        min_q: -128,
        max_q: 127,
        min_f: f32::MIN,
        max_f: f32::MAX,
    };
}

/// A fixed-point multiplier as TFLite encodes it: `real ≈ multiplier * 2^(shift - 31)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Multiplier {
    /// Q31 multiplier.
    pub multiplier: i32,
    /// Power-of-two exponent (positive: left shift).
    pub shift: i32,
}

/// Per-output-channel requantization of an int32 accumulator to int8.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Requant<'a> {
    /// `-input_zero_point`, added to every input value.
    pub input_offset: i32,
    /// The output zero point.
    pub output_offset: i32,
    /// One little-endian `i32` Q31 multiplier per output channel (or exactly one for all).
    #[serde(borrow)]
    pub multipliers: Bytes<'a>,
    /// One little-endian `i32` shift per output channel (or exactly one for all).
    #[serde(borrow)]
    pub shifts: Bytes<'a>,
}

/// CONV_2D and DEPTHWISE_CONV_2D parameters. Padding is resolved to explicit offsets.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvParams<'a> {
    /// Stride (height, width).
    pub stride: [u16; 2],
    /// Dilation (height, width).
    pub dilation: [u16; 2],
    /// Padding before the first row and column (top, left).
    pub pad: [u16; 2],
    /// Output channels per input channel (depthwise only; 1 for CONV_2D).
    pub depth_multiplier: u16,
    /// Fused activation.
    pub clamp: Clamp,
    /// int8 requantization (absent for f32).
    #[serde(borrow)]
    pub requant: Option<Requant<'a>>,
}

/// FULLY_CONNECTED parameters. Inputs: data, weights `[out, in]`, optional bias.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FullyConnectedParams<'a> {
    /// Fused activation.
    pub clamp: Clamp,
    /// int8 requantization (absent for f32).
    #[serde(borrow)]
    pub requant: Option<Requant<'a>>,
}

/// AVERAGE_POOL_2D and MAX_POOL_2D parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolParams {
    /// Filter (height, width).
    pub filter: [u16; 2],
    /// Stride (height, width).
    pub stride: [u16; 2],
    /// Padding before the first row and column (top, left).
    pub pad: [u16; 2],
    /// Fused activation.
    pub clamp: Clamp,
}

/// ADD parameters (TFLite's int8 scheme: both inputs rescaled to a common scale with
/// `left_shift` bits of headroom, summed, then rescaled to the output).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AddParams {
    /// Headroom shift applied to both inputs (20 for int8).
    pub left_shift: i32,
    /// `-zero_point` of input 1.
    pub input1_offset: i32,
    /// `-zero_point` of input 2.
    pub input2_offset: i32,
    /// Output zero point.
    pub output_offset: i32,
    /// Rescale of input 1.
    pub input1: Multiplier,
    /// Rescale of input 2.
    pub input2: Multiplier,
    /// Rescale of the sum to the output.
    pub output: Multiplier,
    /// Fused activation.
    pub clamp: Clamp,
}

/// MUL parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MulParams {
    /// `-zero_point` of input 1.
    pub input1_offset: i32,
    /// `-zero_point` of input 2.
    pub input2_offset: i32,
    /// Output zero point.
    pub output_offset: i32,
    /// `scale1 * scale2 / scale_out`.
    pub output: Multiplier,
    /// Fused activation.
    pub clamp: Clamp,
}

/// SOFTMAX parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SoftmaxParams {
    /// Beta (float kernels).
    pub beta: f32,
    /// int8: input multiplier from `beta * input_scale` (TFLite's PreprocessSoftmaxScaling).
    pub input_multiplier: i32,
    /// int8: input left shift.
    pub input_left_shift: i32,
    /// int8: smallest difference from the row maximum that still contributes.
    pub diff_min: i32,
}

/// LOGISTIC and TANH int8 parameters (TFLite's fixed-point scheme).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivationParams {
    /// Input zero point.
    pub input_zero_point: i32,
    /// Inputs further than this from the zero point saturate.
    pub input_range_radius: i32,
    /// Input rescale multiplier.
    pub input_multiplier: i32,
    /// Input rescale left shift.
    pub input_left_shift: i32,
}

/// QUANTIZE parameters. f32 -> int8 uses the output tensor's scale and zero point;
/// int8 -> int8 requantizes with `requant`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantizeParams {
    /// int8 -> int8: `input_scale / output_scale`.
    pub requant: Multiplier,
    /// Input zero point.
    pub input_zero_point: i32,
    /// Output zero point.
    pub output_zero_point: i32,
}

/// CONCATENATION parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConcatParams {
    /// Axis (non-negative, < rank).
    pub axis: u8,
    /// Fused activation (float only; TFLite forbids it on int8).
    pub clamp: Clamp,
}

/// PAD parameters: elements added before and after each dimension; the pad value is the
/// output zero point (int8) or 0.0 (f32).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PadParams {
    /// Elements before, per dim.
    pub before: [u32; MAX_RANK],
    /// Elements after, per dim.
    pub after: [u32; MAX_RANK],
}

/// MEAN parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeanParams {
    /// Bit `i` set: dimension `i` is reduced.
    pub axes_mask: u8,
    /// int8: `input_scale / output_scale` (with the element count folded in by the kernel).
    pub requant: Multiplier,
    /// Input zero point.
    pub input_zero_point: i32,
    /// Output zero point.
    pub output_zero_point: i32,
    /// Input scale (kept for kernels that follow TFLite's float rescale).
    pub input_scale: f32,
    /// Output scale.
    pub output_scale: f32,
    /// Keep reduced dimensions (as size 1) in the output shape.
    pub keep_dims: bool,
}

/// TRANSPOSE parameters: output dimension `i` is input dimension `perm[i]`.
///
/// Input and output have the same rank `r <= MAX_RANK`; `perm[..r]` is a permutation of
/// `0..r` and `perm[i] == i` for `i >= r` (checked at parse).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransposeParams {
    /// The permutation, one entry per dimension.
    pub perm: [u8; MAX_RANK],
}

/// STRIDED_SLICE parameters, resolved at compile time from TFLite's begin/end/strides and
/// masks (or ONNX's Slice): along input dimension `d` the op reads the `count[d]` indices
/// `begin[d] + k * stride[d]`, `k = 0..count[d]`. Every index lies inside the input
/// dimension and `count[d] >= 1` (checked at parse). The output holds the selected
/// elements in row-major order; its shape may drop dimensions of count 1 (TFLite's
/// `shrink_axis_mask`), so only its element count must equal `product(count)`.
/// Dimensions past the input rank have `begin 0, stride 1, count 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StridedSliceParams {
    /// First index read, per input dimension (non-negative).
    pub begin: [i32; MAX_RANK],
    /// Step between indices, per input dimension (non-zero; negative walks backwards).
    pub stride: [i32; MAX_RANK],
    /// Indices read, per input dimension (at least 1).
    pub count: [u32; MAX_RANK],
}

/// LEAKY_RELU parameters: `x` where `x >= 0`, `alpha * x` elsewhere.
///
/// int8 follows TFLite's `QuantizeLeakyRelu`: the input minus its zero point is rescaled
/// by `identity` (`input_scale / output_scale`) where it is non-negative and by `alpha_q`
/// (`input_scale * alpha / output_scale`) elsewhere, then the output zero point is added
/// and the result saturated to int8.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeakyReluParams {
    /// The slope for negative inputs (float kernels; kept for export).
    pub alpha: f32,
    /// int8: input zero point.
    pub input_zero_point: i32,
    /// int8: output zero point.
    pub output_zero_point: i32,
    /// int8: `input_scale / output_scale`.
    pub identity: Multiplier,
    /// int8: `input_scale * alpha / output_scale`.
    pub alpha_q: Multiplier,
}

/// HARD_SWISH parameters: `x * relu6(x + 3) / 6`.
///
/// int8 follows TFLite's reference `HardSwish` (16-bit fixed point): the two multipliers
/// are TFLite's `QuantizeMultiplier` results downscaled to Q15
/// (`DownScaleInt32ToInt16Multiplier`), each with its power-of-two exponent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardSwishParams {
    /// Input zero point.
    pub input_zero_point: i32,
    /// Output zero point.
    pub output_zero_point: i32,
    /// Q15 multiplier of `(input_scale / 128) / (3 / 32768)` (an `i16` value).
    pub reluish_multiplier: i32,
    /// Its exponent (positive: left shift).
    pub reluish_exponent: i32,
    /// Q15 multiplier of `(input_scale / 128) / output_scale` (an `i16` value).
    pub output_multiplier: i32,
    /// Its exponent (never positive).
    pub output_exponent: i32,
}

/// REDUCE_MAX parameters. int8 compares the stored values, so input and output share one
/// quantization (checked at parse), as TFLite's converter writes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReduceMaxParams {
    /// Bit `i` set: dimension `i` is reduced.
    pub axes_mask: u8,
    /// Keep reduced dimensions (as size 1) in the output shape.
    pub keep_dims: bool,
}

/// RESIZE_NEAREST_NEIGHBOR parameters (NHWC; the output height and width are the output
/// tensor's). Source index per output row/column as TFLite's `GetNearestNeighbor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResizeNearestParams {
    /// Scale by `(in - 1) / (out - 1)` and round instead of `in / out` and floor.
    pub align_corners: bool,
    /// Sample at pixel centres (offset 0.5).
    pub half_pixel_centers: bool,
}

/// One operation and its parameters.
///
/// New variants are appended at the end, so that the postcard tag of every older op keeps
/// its value and older artifacts still parse.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op<'a> {
    /// CONV_2D. Inputs: data NHWC, filter OHWI, optional bias `[O]`.
    Conv2d(#[serde(borrow)] ConvParams<'a>),
    /// DEPTHWISE_CONV_2D. Inputs: data NHWC, filter `[1, H, W, I*M]`, optional bias.
    DepthwiseConv2d(#[serde(borrow)] ConvParams<'a>),
    /// FULLY_CONNECTED.
    FullyConnected(#[serde(borrow)] FullyConnectedParams<'a>),
    /// AVERAGE_POOL_2D.
    AveragePool2d(PoolParams),
    /// MAX_POOL_2D.
    MaxPool2d(PoolParams),
    /// ADD with NumPy broadcasting.
    Add(AddParams),
    /// MUL with NumPy broadcasting.
    Mul(MulParams),
    /// RESHAPE (a copy unless planned in place).
    Reshape,
    /// SOFTMAX over the last dimension.
    Softmax(SoftmaxParams),
    /// QUANTIZE (f32 -> int8, or int8 -> int8 requantize).
    Quantize(QuantizeParams),
    /// DEQUANTIZE (int8 -> f32).
    Dequantize,
    /// CONCATENATION.
    Concatenation(ConcatParams),
    /// PAD.
    Pad(PadParams),
    /// MEAN over the axes in the mask.
    Mean(MeanParams),
    /// LOGISTIC.
    Logistic(ActivationParams),
    /// TANH.
    Tanh(ActivationParams),
    /// TRANSPOSE (any dtype; int8 bytes are moved unchanged, as TFLite's reference kernel
    /// does).
    Transpose(TransposeParams),
    /// STRIDED_SLICE (also TFLite's SLICE and ONNX's Slice; any dtype, bytes moved
    /// unchanged).
    StridedSlice(StridedSliceParams),
    /// LEAKY_RELU (format 1.1).
    LeakyRelu(LeakyReluParams),
    /// HARD_SWISH (format 1.1).
    HardSwish(HardSwishParams),
    /// MAXIMUM with NumPy broadcasting; int8 inputs and output share one quantization
    /// (format 1.1).
    Maximum,
    /// MINIMUM with NumPy broadcasting, as MAXIMUM (format 1.1).
    Minimum,
    /// REDUCE_MAX over the axes in the mask (format 1.1).
    ReduceMax(ReduceMaxParams),
    /// RESIZE_NEAREST_NEIGHBOR on NHWC tensors, any dtype, values copied (format 1.1).
    ResizeNearest(ResizeNearestParams),
}

impl Op<'_> {
    /// The TFLite name of the op.
    ///
    /// Never inlined: inlined, each caller got its own two 24-entry tables (pointers and
    /// lengths, 192 B), four to six copies in a one-model Cortex-M firmware, on error and
    /// reporting paths (BENCHMARKS.md, "Footprint: code size, fifth pass").
    #[inline(never)]
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv2d(_) => "CONV_2D",
            Op::DepthwiseConv2d(_) => "DEPTHWISE_CONV_2D",
            Op::FullyConnected(_) => "FULLY_CONNECTED",
            Op::AveragePool2d(_) => "AVERAGE_POOL_2D",
            Op::MaxPool2d(_) => "MAX_POOL_2D",
            Op::Add(_) => "ADD",
            Op::Mul(_) => "MUL",
            Op::Reshape => "RESHAPE",
            Op::Softmax(_) => "SOFTMAX",
            Op::Quantize(_) => "QUANTIZE",
            Op::Dequantize => "DEQUANTIZE",
            Op::Concatenation(_) => "CONCATENATION",
            Op::Pad(_) => "PAD",
            Op::Mean(_) => "MEAN",
            Op::Logistic(_) => "LOGISTIC",
            Op::Tanh(_) => "TANH",
            Op::Transpose(_) => "TRANSPOSE",
            Op::StridedSlice(_) => "STRIDED_SLICE",
            Op::LeakyRelu(_) => "LEAKY_RELU",
            Op::HardSwish(_) => "HARD_SWISH",
            Op::Maximum => "MAXIMUM",
            Op::Minimum => "MINIMUM",
            Op::ReduceMax(_) => "REDUCE_MAX",
            Op::ResizeNearest(_) => "RESIZE_NEAREST_NEIGHBOR",
        }
    }
}

/// A scratch region of the arena an op may use while it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scratch {
    /// Byte offset in the arena.
    pub offset: u32,
    /// Length in bytes.
    pub len: u32,
}

/// One op record: the op, full descriptions of its tensors, and its scratch region.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpDef<'a> {
    /// Index of the op in the source model (for messages).
    pub source_index: u32,
    /// The operation.
    #[serde(borrow)]
    pub op: Op<'a>,
    /// Inputs, in TFLite order (absent optional inputs are omitted; see the op docs).
    #[serde(borrow)]
    pub inputs: heapless::Vec<TensorDef<'a>, MAX_OP_INPUTS>,
    /// Outputs.
    #[serde(borrow)]
    pub outputs: heapless::Vec<TensorDef<'a>, MAX_OP_OUTPUTS>,
    /// Scratch space, if the kernel needs any.
    pub scratch: Option<Scratch>,
}

/// The start of the graph section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphHeader<'a> {
    /// Arena bytes the memory plan needs.
    pub arena_bytes: u32,
    /// Alignment (bytes) the plan assumes for the arena start; offsets are multiples of it.
    pub arena_align: u32,
    /// Number of [`OpDef`] records that follow.
    pub op_count: u32,
    /// Graph inputs.
    #[serde(borrow)]
    pub inputs: heapless::Vec<TensorDef<'a>, MAX_GRAPH_IO>,
    /// Graph outputs.
    #[serde(borrow)]
    pub outputs: heapless::Vec<TensorDef<'a>, MAX_GRAPH_IO>,
    /// Multiply-accumulates per inference (computed on the host).
    pub macs: u64,
    /// A name for the model (source file stem).
    pub name: &'a str,
}
