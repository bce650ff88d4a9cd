//! ONNX → IR: float ONNX models (opset 11 and later) onto the same [`Graph`] the `.tflite`
//! importer produces, so that `edgeflow quantize` (calibration, PTQ) and `convert`/`run`
//! work on them unchanged.
//!
//! The protobuf is decoded by tract-onnx (its `ModelProto`); edgeflow then maps each node
//! onto an edgeflow-nn op itself, because the mapping is where the layout work happens:
//!
//! * **Layouts.** ONNX is channels-first (NCHW, and NCL for 1-D convolutions); the run-time
//!   is channels-last (NHWC). Activations that reach a Conv or a pooling op are stored
//!   channels-last (`[N, C, H, W]` → `[N, H, W, C]`, `[N, C, L]` → `[N, 1, L, C]`); weights
//!   are permuted at import (Conv `OIHW` → `OHWI`, depthwise `[C·M, 1, kh, kw]` →
//!   `[1, kh, kw, C·M]`), per-channel constants of Add/Mul are permuted the same way, and
//!   axes of Concat / Pad / ReduceMean / Softmax are renumbered. A Transpose that only
//!   converts between the two layouts is folded away (no op); a Flatten/Reshape of a
//!   channels-last activation into `[N, C·H·W]` becomes a permutation of the input
//!   columns of the Gemm/MatMul that consumes it. So the device never transposes.
//!   A graph input or output of rank 3/4 that is stored channels-last is channels-last in
//!   the artifact too (`[N, H, W, C]`, `[N, 1, L, C]`): feed NHWC data.
//! * **Folding.** BatchNormalization after a Conv (its only consumer) is folded into the
//!   Conv's weights and bias; otherwise it becomes a per-channel Mul and Add. Relu/Clip
//!   are fused into the producing Conv/Gemm/Add/Mul/pool as its clamp when that op has no
//!   other consumer; otherwise they become a 1×1 MAX_POOL_2D with the clamp. Shape
//!   arithmetic on constants (Shape, Gather, Unsqueeze, Concat, Cast …, as PyTorch exports
//!   `x.view(x.size(0), -1)`) is evaluated at import.
//!
//! Supported ops: Conv (group 1, or group = channels as depthwise), Gemm, MatMul (constant
//! right operand), BatchNormalization, Relu, Clip, Sigmoid, Tanh, MaxPool, AveragePool,
//! GlobalAveragePool, GlobalMaxPool, Add, Mul, Sub, Div (constant divisor), Reshape,
//! Flatten, Squeeze, Unsqueeze, Transpose (folded when it only converts layouts, else a
//! TRANSPOSE op), Slice (constant starts/ends/axes/steps), Concat, Pad (constant, value 0),
//! ReduceMean, ReduceMax, Softmax, LeakyRelu, HardSwish, Max and Min (with broadcasting;
//! three or more inputs become a chain of binary ops), Split (one STRIDED_SLICE per output), Resize (nearest, in the coordinate
//! modes TFLite's kernel computes), Identity, Dropout, Constant, QuantizeLinear, DequantizeLinear. Every other op,
//! attribute value or symbolic dimension is an [`OnnxError::Node`] naming the node, its op
//! type and what is missing.
//!
//! * **QDQ models.** QuantizeLinear / DequantizeLinear pairs around float ops (ONNX
//!   Runtime's `quantize_static` with `QuantFormat.QDQ`) are the identity in the imported
//!   float graph; the parameters they fix (per-tensor int8 activations, int8 weights with
//!   per-output-channel or per-tensor scales) are returned in [`OnnxModel::qdq`] for
//!   [`crate::quantize::quantize_qdq`]. Parameters outside TFLite's int8 scheme (uint8,
//!   per-axis activations, asymmetric weights, scales along another axis) are a node error.

use std::collections::HashMap;

use edgeflow_format::graph::{
    Clamp, ConcatParams, ConvParams, DType, FullyConnectedParams, MeanParams, Op, PadParams,
    PoolParams, ReduceMaxParams, ResizeNearestParams, StridedSliceParams, TransposeParams,
    MAX_RANK,
};
use edgeflow_nn::params;
use thiserror::Error;
use tract_onnx::pb;
use tract_onnx::prelude::Framework;

use crate::ir::{Graph, IrOp, IrTensor};
use crate::reference::f32_bytes;

/// Why an ONNX model could not be imported.
#[derive(Debug, Error)]
pub enum OnnxError {
    /// The bytes are not an ONNX `ModelProto`.
    #[error("not a valid ONNX model (protobuf): {0:#}")]
    Decode(tract_onnx::prelude::TractError),
    /// The `ModelProto` has no graph.
    #[error("the model has no graph")]
    NoGraph,
    /// The model's default-domain opset is older than 11.
    #[error("opset {0} is below 11; re-export with opset_version >= 11")]
    Opset(i64),
    /// A constant initializer cannot be read (external data, wrong value count, type).
    #[error("initializer {name:?}: {reason}")]
    Initializer {
        /// The initializer's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A graph input is not a float32 tensor of fixed, positive shape.
    #[error("graph input {name:?}: {reason}")]
    GraphInput {
        /// The input's name in the ONNX graph.
        name: String,
        /// What is wrong with its type or shape.
        reason: String,
    },
    /// A graph output cannot be stored as edgeflow computes it.
    #[error("graph output {name:?} {problem}")]
    GraphOutput {
        /// The output's name in the ONNX graph.
        name: String,
        /// What is wrong.
        problem: OutputProblem,
    },
    /// The copy of a graph output that is also an input cannot be made (its shape).
    #[error("graph output {name:?}: {reason}")]
    OutputTensor {
        /// The output's name in the ONNX graph.
        name: String,
        /// What is wrong with its shape.
        reason: String,
    },
    /// A node is unsupported or inconsistent.
    #[error("node {index} {name:?} ({op_type}): {reason}")]
    Node {
        /// Position of the node in the graph.
        index: usize,
        /// The node's name (may be empty in the file).
        name: String,
        /// ONNX op type.
        op_type: String,
        /// What is unsupported or missing.
        reason: String,
    },
}

/// Why a graph output cannot be stored (see [`OnnxError::GraphOutput`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum OutputProblem {
    /// A flattened channels-first tensor: edgeflow stores it channels-last, in another order.
    #[error("is a flattened channels-first tensor, which edgeflow stores in channels-last order; add a Gemm/MatMul after it or flatten after a transpose to NHWC")]
    FlatChannelsFirst,
    /// The output is an activation no op computes (folded to a constant on import).
    #[error("is not computed by any op (a constant)")]
    NotComputed,
    /// The output is a constant initializer.
    #[error("is a constant")]
    Constant,
    /// No node writes the output.
    #[error("is never computed")]
    NeverComputed,
}

/// How an activation's IR data relates to its ONNX (logical) shape.
#[derive(Clone, Debug, PartialEq)]
enum Layout {
    /// IR shape = ONNX shape, same element order.
    Plain,
    /// Channels-last: ONNX `[N, C, H, W]` stored `[N, H, W, C]`; ONNX `[N, C, L]` stored
    /// `[N, 1, L, C]`.
    Cl,
    /// ONNX `[N, F]` whose IR row element `j` is ONNX row element `perm[j]` (a flattened
    /// channels-last tensor).
    Flat(Vec<usize>),
}

#[derive(Clone, Debug)]
struct Act {
    t: usize,
    shape: Vec<usize>,
    layout: Layout,
}

#[derive(Clone, Debug)]
enum Val {
    F32(Vec<usize>, Vec<f32>),
    I64(Vec<usize>, Vec<i64>),
    Act(Act),
}

type R<T> = Result<T, String>;

fn numel(s: &[usize]) -> usize {
    s.iter().product()
}

/// IR shape of an ONNX shape in `layout`.
fn ir_shape(shape: &[usize], layout: &Layout) -> Vec<usize> {
    match (layout, shape.len()) {
        (Layout::Cl, 4) => vec![shape[0], shape[2], shape[3], shape[1]],
        (Layout::Cl, 3) => vec![shape[0], 1, shape[2], shape[1]],
        _ => shape.to_vec(),
    }
}

/// IR axis of ONNX axis `a` of a rank-`r` channels-last tensor.
fn cl_axis(a: usize, r: usize) -> usize {
    match (r, a) {
        (4, 1) | (3, 1) => 3,
        (4, 2) => 1,
        (4, 3) | (3, 2) => 2,
        _ => a,
    }
}

/// Row-major NCHW (rank 4) or NCL (rank 3) data of ONNX `shape` permuted to the
/// channels-last order edgeflow stores (NHWC, N·1·L·C); other ranks are returned as they are.
pub fn nchw_to_nhwc<T: Copy>(shape: &[usize], v: &[T]) -> Vec<T> {
    to_cl(shape, v)
}

fn to_cl<T: Copy>(shape: &[usize], v: &[T]) -> Vec<T> {
    let (n, c, h, w) = match shape.len() {
        4 => (shape[0], shape[1], shape[2], shape[3]),
        3 => (shape[0], shape[1], 1, shape[2]),
        _ => return v.to_vec(),
    };
    let mut out = Vec::with_capacity(v.len());
    for b in 0..n {
        for y in 0..h {
            for x in 0..w {
                for ch in 0..c {
                    out.push(v[((b * c + ch) * h + y) * w + x]);
                }
            }
        }
    }
    out
}

fn attr<'a>(n: &'a pb::NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}
fn attr_i(n: &pb::NodeProto, name: &str, d: i64) -> i64 {
    attr(n, name).map_or(d, |a| a.i)
}
fn attr_f(n: &pb::NodeProto, name: &str, d: f32) -> f32 {
    attr(n, name).map_or(d, |a| a.f)
}
fn attr_ints(n: &pb::NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(n, name).map(|a| a.ints.clone())
}
fn attr_s(n: &pb::NodeProto, name: &str) -> Option<String> {
    attr(n, name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

fn dims_of(t: &pb::TensorProto) -> R<Vec<usize>> {
    t.dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("negative dimension {d}")))
        .collect()
}

/// A constant `TensorProto` (float32, int64 or int32; raw or typed fields).
fn tensor_val(t: &pb::TensorProto) -> R<Val> {
    if t.data_location == Some(1) || !t.external_data.is_empty() {
        return Err(format!(
            "tensor {:?} keeps its data in an external file; save the model with the weights inside",
            t.name
        ));
    }
    let dims = dims_of(t)?;
    let n = numel(&dims);
    let raw = &t.raw_data;
    let check = |len: usize| -> R<()> {
        if len != n {
            return Err(format!(
                "tensor {:?} has {len} values for shape {dims:?}",
                t.name
            ));
        }
        Ok(())
    };
    match t.data_type {
        1 => {
            let v: Vec<f32> = if !raw.is_empty() {
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            } else {
                t.float_data.clone()
            };
            check(v.len())?;
            Ok(Val::F32(dims, v))
        }
        7 => {
            let v: Vec<i64> = if !raw.is_empty() {
                raw.chunks_exact(8)
                    .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect()
            } else {
                t.int64_data.clone()
            };
            check(v.len())?;
            Ok(Val::I64(dims, v))
        }
        6 => {
            let v: Vec<i64> = if !raw.is_empty() {
                raw.chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                    .collect()
            } else {
                t.int32_data.iter().map(|&x| x as i64).collect()
            };
            check(v.len())?;
            Ok(Val::I64(dims, v))
        }
        3 | 2 => {
            let v: Vec<i64> = if !raw.is_empty() {
                raw.iter()
                    .map(|&b| if t.data_type == 3 { b as i8 as i64 } else { b as i64 })
                    .collect()
            } else {
                t.int32_data.iter().map(|&x| x as i64).collect()
            };
            check(v.len())?;
            Ok(Val::I64(dims, v))
        }
        dt => Err(format!(
            "tensor {:?} has ONNX data type {dt}; supported: float32 (1), int64 (7), int32 (6), int8 (3), uint8 (2)",
            t.name
        )),
    }
}

/// NumPy broadcast of two shapes.
fn broadcast(a: &[usize], b: &[usize]) -> R<Vec<usize>> {
    let r = a.len().max(b.len());
    let at = |s: &[usize], i: usize| {
        if i + s.len() >= r {
            s[i + s.len() - r]
        } else {
            1
        }
    };
    (0..r)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            (x, y) => Err(format!(
                "shapes {a:?} and {b:?} do not broadcast ({x} vs {y})"
            )),
        })
        .collect()
}

fn norm_axis(a: i64, r: usize) -> R<usize> {
    let ax = if a < 0 { a + r as i64 } else { a };
    if ax < 0 || ax >= r as i64 {
        return Err(format!("axis {a} out of range for rank {r}"));
    }
    Ok(ax as usize)
}

/// Quantization parameters a QDQ model (QuantizeLinear / DequantizeLinear pairs, as ONNX
/// Runtime's `quantize_static` with `QuantFormat.QDQ` writes them) fixes, keyed by IR
/// tensor index of the imported float graph; [`crate::quantize::quantize_qdq`] lowers the
/// graph onto int8 kernels with them instead of calibrating.
#[derive(Clone, Debug, Default)]
pub struct QdqParams {
    /// Activation tensors: `(scale, zero_point)` of the QuantizeLinear that reads them
    /// (int8, per tensor).
    pub activations: HashMap<usize, (f32, i64)>,
    /// Weight tensors of Conv / Gemm / MatMul: one scale per output channel (int8,
    /// symmetric; a per-tensor scale is repeated), from their DequantizeLinear.
    pub weights: HashMap<usize, Vec<f32>>,
    /// `node INDEX "NAME" (OP_TYPE)` per ONNX node, for messages (IR ops keep their ONNX
    /// node index in `source_index`).
    pub nodes: Vec<String>,
}

/// A constant produced by a DequantizeLinear (its quantized form).
#[derive(Clone, Debug)]
struct QConst {
    /// ONNX data type of the quantized values (3 int8, 2 uint8, 6 int32).
    dtype: i32,
    scales: Vec<f32>,
    zero_points: Vec<i64>,
    axis: usize,
}

fn onnx_type_name(t: i32) -> String {
    match t {
        1 => "float32".into(),
        2 => "uint8".into(),
        3 => "int8".into(),
        4 => "uint16".into(),
        5 => "int16".into(),
        6 => "int32".into(),
        7 => "int64".into(),
        other => format!("ONNX data type {other}"),
    }
}

struct Importer {
    g: Graph,
    vals: HashMap<String, Val>,
    /// ONNX data types of constants (initializers and Constant outputs).
    ctypes: HashMap<String, i32>,
    /// Constants that are DequantizeLinear outputs, by ONNX name.
    qconst: HashMap<String, QConst>,
    /// QDQ parameters found so far.
    qdq: QdqParams,
    /// Weight scales for the next fully-connected weight tensor [`Importer::fc`] creates.
    pending_w: Option<Vec<f32>>,
    uses: HashMap<String, usize>,
    producer: Vec<Option<usize>>,
    opset: i64,
    node: usize,
}

fn float_clamp(lo: f32, hi: f32) -> Clamp {
    Clamp {
        min_f: lo,
        max_f: hi,
        ..Clamp::NONE
    }
}

impl Importer {
    fn tensor(&mut self, name: &str, shape: &[usize], data: Option<Vec<f32>>) -> R<usize> {
        let shape: Vec<u32> = shape
            .iter()
            .map(|&d| u32::try_from(d).map_err(|_| format!("dimension {d} too large")))
            .collect::<R<_>>()?;
        if shape.len() > MAX_RANK {
            return Err(format!(
                "rank {} above the run-time's {MAX_RANK}",
                shape.len()
            ));
        }
        let index = self.g.tensors.len();
        self.g.tensors.push(IrTensor {
            index: index as u32,
            name: name.to_string(),
            dtype: DType::F32,
            shape,
            quant: None,
            data: data.map(|d| f32_bytes(&d)),
        });
        self.producer.push(None);
        Ok(index)
    }

    fn push(&mut self, op: Op<'static>, inputs: Vec<usize>, output: usize) {
        let mut o = IrOp::new(inputs, output);
        o.op = op;
        o.source_index = self.node as u32;
        self.producer[output] = Some(self.g.ops.len());
        self.g.ops.push(o);
    }

    fn val(&self, name: &str) -> R<&Val> {
        self.vals
            .get(name)
            .ok_or_else(|| format!("input {name:?} is not defined before this node"))
    }

    fn act(&self, name: &str) -> R<Act> {
        match self.val(name)? {
            Val::Act(a) => Ok(a.clone()),
            _ => Err(format!(
                "input {name:?} is a constant where edgeflow needs a computed tensor"
            )),
        }
    }

    fn konst(&self, name: &str) -> R<(Vec<usize>, Vec<f32>)> {
        match self.val(name)? {
            Val::F32(d, v) => Ok((d.clone(), v.clone())),
            Val::I64(d, v) => Ok((d.clone(), v.iter().map(|&x| x as f32).collect())),
            Val::Act(_) => Err(format!(
                "input {name:?} must be a constant (an initializer); computed weights are not supported"
            )),
        }
    }

    fn ints(&self, name: &str) -> R<Vec<i64>> {
        match self.val(name)? {
            Val::I64(_, v) => Ok(v.clone()),
            Val::F32(_, v) => Ok(v.iter().map(|&x| x as i64).collect()),
            Val::Act(_) => Err(format!(
                "input {name:?} must be a constant (shape, axes or pads computed at run time are not supported)"
            )),
        }
    }

    /// The int8 per-output-channel scales of weights `name` when a DequantizeLinear
    /// produced them (`None` for float weights); `out_axis` is the output-channel axis of
    /// the ONNX weight tensor, `o` the output channel count.
    fn weight_scales(&self, name: &str, out_axis: usize, o: usize) -> R<Option<Vec<f32>>> {
        let Some(q) = self.qconst.get(name) else {
            return Ok(None);
        };
        if q.dtype != 3 {
            return Err(format!(
                "weights {name:?} are quantized as {}; TFLite's int8 scheme needs int8 weights",
                onnx_type_name(q.dtype)
            ));
        }
        if let Some((c, z)) = q.zero_points.iter().enumerate().find(|(_, &z)| z != 0) {
            return Err(format!(
                "weights {name:?} have zero point {z} (channel {c}); TFLite's int8 scheme needs symmetric weights (zero point 0)"
            ));
        }
        match q.scales.len() {
            1 => Ok(Some(vec![q.scales[0]; o])),
            n if n == o && q.axis == out_axis => Ok(Some(q.scales.clone())),
            n => Err(format!(
                "weights {name:?} have {n} scales along axis {}; TFLite's int8 scheme needs one scale per tensor or per output channel (axis {out_axis}, {o} channels)",
                q.axis
            )),
        }
    }

    /// The `(scale, zero point)` operands of a QuantizeLinear / DequantizeLinear:
    /// per-tensor int8 only.
    fn qparams(&self, n: &pb::NodeProto) -> R<(f32, i64)> {
        let sname = n.input.get(1).ok_or("input 1 (scale) is missing")?;
        let (_, s) = self.konst(sname)?;
        let zname = n.input.get(2).filter(|s| !s.is_empty());
        let ztype = zname.map_or(2, |z| self.ctypes.get(z).copied().unwrap_or(3));
        if ztype != 3 {
            return Err(format!(
                "{} activations (zero point type{}); TFLite's int8 scheme needs int8 activations (quantize with activation_type=QuantType.QInt8)",
                onnx_type_name(ztype),
                if zname.is_none() { " uint8 by default" } else { "" }
            ));
        }
        let z = match zname {
            Some(z) => self.ints(z)?,
            None => vec![0],
        };
        if s.len() != 1 || z.len() != 1 {
            return Err(format!(
                "{} scales / {} zero points: activations are quantized per tensor in TFLite's int8 scheme",
                s.len(),
                z.len()
            ));
        }
        if !(s[0].is_finite() && s[0] > 0.0) {
            return Err(format!("scale {} is not positive and finite", s[0]));
        }
        Ok((s[0], z[0]))
    }

    /// QuantizeLinear / DequantizeLinear. On a computed tensor the pair is the identity
    /// in the float graph and fixes the tensor's int8 parameters; on a constant it is
    /// evaluated (DequantizeLinear of int8 weights remembers their scales).
    fn qdq_node(&mut self, n: &pb::NodeProto, quantize: bool) -> R<Val> {
        let xname = n.input.first().ok_or("input 0 is missing")?.clone();
        match self.val(&xname)?.clone() {
            Val::Act(a) => {
                let p = self.qparams(n)?;
                if quantize {
                    self.qdq.activations.insert(a.t, p);
                } else if self.qdq.activations.get(&a.t) != Some(&p) {
                    return Err(format!(
                        "dequantizes {xname:?} with scale {}, zero point {}, which no QuantizeLinear quantized with those parameters",
                        p.0, p.1
                    ));
                }
                Ok(Val::Act(a))
            }
            Val::F32(d, v) if quantize => {
                let (s, z) = self.qparams(n)?;
                let q = v
                    .iter()
                    .map(|&x| ((x / s).round_ties_even() as i64 + z).clamp(-128, 127))
                    .collect();
                if let Some(o) = n.output.first() {
                    self.ctypes.insert(o.clone(), 3);
                }
                Ok(Val::I64(d, q))
            }
            Val::I64(d, q) if !quantize => {
                let dtype = self.ctypes.get(&xname).copied().unwrap_or(7);
                let (_, scales) =
                    self.konst(n.input.get(1).ok_or("input 1 (scale) is missing")?)?;
                let zps = match n.input.get(2).filter(|s| !s.is_empty()) {
                    Some(z) => self.ints(z)?,
                    None => vec![0; scales.len()],
                };
                let r = d.len();
                let axis = if scales.len() == 1 {
                    0
                } else {
                    norm_axis(attr_i(n, "axis", 1), r.max(1))?
                };
                if zps.len() != scales.len()
                    || (scales.len() != 1 && d.get(axis) != Some(&scales.len()))
                {
                    return Err(format!(
                        "{} scales and {} zero points for {xname:?} of shape {d:?} along axis {axis}",
                        scales.len(),
                        zps.len()
                    ));
                }
                let inner: usize = d.get(axis + 1..).map_or(1, numel);
                let ch = |i: usize| {
                    if scales.len() == 1 {
                        0
                    } else {
                        (i / inner) % scales.len()
                    }
                };
                let v = q
                    .iter()
                    .enumerate()
                    .map(|(i, &x)| (x - zps[ch(i)]) as f32 * scales[ch(i)])
                    .collect();
                if let Some(o) = n.output.first() {
                    self.qconst.insert(
                        o.clone(),
                        QConst {
                            dtype,
                            scales,
                            zero_points: zps,
                            axis,
                        },
                    );
                }
                Ok(Val::F32(d, v))
            }
            _ => Err(format!(
                "{} of a {} constant is not supported",
                n.op_type,
                if quantize { "non-float" } else { "float" }
            )),
        }
    }

    /// A constant as an IR tensor laid out like `like` (broadcast rank, channels-last).
    fn const_tensor(&mut self, name: &str, dims: &[usize], v: &[f32], like: &Act) -> R<usize> {
        let r = like.shape.len();
        if dims.len() > r {
            return Err(format!(
                "constant {name:?} of shape {dims:?} has a higher rank than the activation {:?}",
                like.shape
            ));
        }
        let mut full = vec![1; r - dims.len()];
        full.extend_from_slice(dims);
        match &like.layout {
            Layout::Cl if full.len() >= 3 => {
                let d = to_cl(&full, v);
                let s = ir_shape(&full, &Layout::Cl);
                self.tensor(name, &s, Some(d))
            }
            Layout::Flat(_) if full.get(1).copied().unwrap_or(1) != 1 => Err(format!(
                "constant {name:?} varies along a flattened channels-first axis; not supported"
            )),
            _ => self.tensor(name, &full, Some(v.to_vec())),
        }
    }

    /// An activation in channels-last layout (reinterpreting a plain one when its data
    /// order is the same: one channel, or all spatial sizes 1).
    fn need_cl(&mut self, a: Act) -> R<Act> {
        match a.layout {
            Layout::Cl => Ok(a),
            Layout::Plain if matches!(a.shape.len(), 3 | 4) => {
                let same = a.shape[1] == 1 || a.shape[2..].iter().all(|&d| d == 1);
                if !same {
                    return Err(format!(
                        "the input of shape {:?} is channels-first data that no layout conversion reaches (transpose it to NHWC before this node, or feed the model's input here)",
                        a.shape
                    ));
                }
                let s = ir_shape(&a.shape, &Layout::Cl);
                let t = self.reshape(a.t, &s)?;
                Ok(Act {
                    t,
                    shape: a.shape,
                    layout: Layout::Cl,
                })
            }
            _ => Err(format!(
                "needs a rank-3 or rank-4 (N, C, …) input, got shape {:?}",
                a.shape
            )),
        }
    }

    /// A RESHAPE of IR tensor `t` to `shape` (returns `t` when the shape is already that).
    fn reshape(&mut self, t: usize, shape: &[usize]) -> R<usize> {
        if self.g.tensors[t]
            .shape
            .iter()
            .map(|&d| d as usize)
            .eq(shape.iter().copied())
        {
            return Ok(t);
        }
        let name = format!("{}/reshape", self.g.tensors[t].name);
        let o = self.tensor(&name, shape, None)?;
        self.push(Op::Reshape, vec![t], o);
        Ok(o)
    }

    /// An activation with the plain (ONNX) element order.
    fn need_plain(&mut self, a: Act) -> R<Act> {
        match &a.layout {
            Layout::Plain => Ok(a),
            Layout::Cl if a.shape[2..].iter().all(|&d| d == 1) || a.shape[1] == 1 => {
                let t = self.reshape(a.t, &a.shape)?;
                Ok(Act {
                    t,
                    shape: a.shape,
                    layout: Layout::Plain,
                })
            }
            _ => Err(format!(
                "needs its input in ONNX (channels-first) element order, but the tensor of shape {:?} is stored channels-last and the run-time has no TRANSPOSE",
                a.shape
            )),
        }
    }

    /// Fuses `[lo, hi]` into the producer of `x` when possible; returns the fused output.
    fn try_fuse(&mut self, x_name: &str, x: &Act, lo: f32, hi: f32) -> bool {
        if self.uses.get(x_name).copied().unwrap_or(0) != 1 || self.g.outputs.contains(&x.t) {
            return false;
        }
        let Some(p) = self.producer[x.t] else {
            return false;
        };
        let op = &mut self.g.ops[p].op;
        let c = match op {
            Op::Conv2d(p) | Op::DepthwiseConv2d(p) => &mut p.clamp,
            Op::FullyConnected(p) => &mut p.clamp,
            Op::Add(p) => &mut p.clamp,
            Op::Mul(p) => &mut p.clamp,
            Op::MaxPool2d(p) | Op::AveragePool2d(p) => &mut p.clamp,
            _ => return false,
        };
        let lo = lo.max(c.min_f);
        let hi = hi.min(c.max_f);
        if lo > hi {
            return false;
        }
        *c = float_clamp(lo, hi);
        true
    }

    fn clamp_op(&mut self, x_name: &str, out: &str, lo: f32, hi: f32) -> R<Val> {
        let x = self.act(x_name)?;
        if self.try_fuse(x_name, &x, lo, hi) {
            return Ok(Val::Act(x));
        }
        let irs = self.g.tensors[x.t].shape.clone();
        if irs.len() > 4 {
            return Err(format!(
                "a standalone clip on rank {} is not supported",
                irs.len()
            ));
        }
        let mut s4 = vec![1usize; 4 - irs.len()];
        s4.extend(irs.iter().map(|&d| d as usize));
        let xin = self.reshape(x.t, &s4)?;
        let o = self.tensor(out, &s4, None)?;
        self.push(
            Op::MaxPool2d(PoolParams {
                filter: [1, 1],
                stride: [1, 1],
                pad: [0, 0],
                clamp: float_clamp(lo, hi),
            }),
            vec![xin],
            o,
        );
        let back: Vec<usize> = irs.iter().map(|&d| d as usize).collect();
        let t = self.reshape(o, &back)?;
        Ok(Val::Act(Act { t, ..x }))
    }

    fn node(&mut self, n: &pb::NodeProto) -> R<Vec<Val>> {
        let op = n.op_type.as_str();
        let inp = |i: usize| -> Option<&str> {
            n.input.get(i).map(String::as_str).filter(|s| !s.is_empty())
        };
        let req = |i: usize| -> R<&str> { inp(i).ok_or_else(|| format!("input {i} is missing")) };
        let out0 = n.output.first().cloned().unwrap_or_default();
        if !n.domain.is_empty() && n.domain != "ai.onnx" {
            return Err(format!(
                "domain {:?} is not supported (only the default ONNX domain)",
                n.domain
            ));
        }
        // Constant folding of shape arithmetic.
        let all_const = (0..n.input.len())
            .filter_map(inp)
            .all(|i| matches!(self.vals.get(i), Some(Val::F32(..) | Val::I64(..))));
        match op {
            "Constant" => {
                if let Some(t) = attr(n, "value").and_then(|a| a.t.as_ref()) {
                    self.ctypes.insert(out0.clone(), t.data_type);
                    return Ok(vec![tensor_val(t)?]);
                }
                if let Some(a) = attr(n, "value_float") {
                    return Ok(vec![Val::F32(vec![], vec![a.f])]);
                }
                if let Some(a) = attr(n, "value_floats") {
                    return Ok(vec![Val::F32(vec![a.floats.len()], a.floats.clone())]);
                }
                if let Some(a) = attr(n, "value_int") {
                    return Ok(vec![Val::I64(vec![], vec![a.i])]);
                }
                if let Some(a) = attr(n, "value_ints") {
                    return Ok(vec![Val::I64(vec![a.ints.len()], a.ints.clone())]);
                }
                return Err("only tensor, float(s) and int(s) constants are supported".into());
            }
            "Identity" | "Dropout" => {
                return Ok(vec![self.val(req(0)?)?.clone()]);
            }
            "QuantizeLinear" | "DequantizeLinear" => {
                if attr_i(n, "saturate", 1) != 1 {
                    return Err("saturate = 0 is not supported".into());
                }
                return Ok(vec![self.qdq_node(n, op == "QuantizeLinear")?]);
            }
            "Shape" => {
                let s = match self.val(req(0)?)? {
                    Val::Act(a) => a.shape.clone(),
                    Val::F32(d, _) | Val::I64(d, _) => d.clone(),
                };
                if attr(n, "start").is_some() || attr(n, "end").is_some() {
                    return Err("the start/end attributes are not supported".into());
                }
                return Ok(vec![Val::I64(
                    vec![s.len()],
                    s.iter().map(|&d| d as i64).collect(),
                )]);
            }
            _ => {}
        }
        if all_const
            && matches!(
                op,
                "Gather"
                    | "Unsqueeze"
                    | "Squeeze"
                    | "Concat"
                    | "Cast"
                    | "Reshape"
                    | "Mul"
                    | "Add"
                    | "Sub"
                    | "Div"
                    | "Flatten"
            )
        {
            return self.fold(n).map(|v| vec![v]);
        }
        let v = match op {
            "Conv" => self.conv(n)?,
            "BatchNormalization" => self.batchnorm(n, &out0)?,
            "Relu" => self.clamp_op(req(0)?, &out0, 0.0, f32::MAX)?,
            "Clip" => {
                let (lo, hi) = if self.opset < 11 {
                    (attr_f(n, "min", f32::MIN), attr_f(n, "max", f32::MAX))
                } else {
                    let b = |i: usize, d: f32| -> R<f32> {
                        match inp(i) {
                            None => Ok(d),
                            Some(name) => {
                                let (_, v) = self.konst(name)?;
                                v.first().copied().ok_or_else(|| format!("input {i} is empty"))
                            }
                        }
                    };
                    (b(1, f32::MIN)?, b(2, f32::MAX)?)
                };
                // ONNX: y = min(max(x, min), max), so min > max gives max everywhere.
                self.clamp_op(req(0)?, &out0, lo.min(hi), hi)?
            }
            "Sigmoid" | "Tanh" => {
                let x = self.act(req(0)?)?;
                let s: Vec<usize> = self.g.tensors[x.t].shape.iter().map(|&d| d as usize).collect();
                let o = self.tensor(&out0, &s, None)?;
                let p = params::elementwise::logistic_params(1.0, 0);
                self.push(
                    if op == "Sigmoid" { Op::Logistic(p) } else { Op::Tanh(p) },
                    vec![x.t],
                    o,
                );
                Val::Act(Act { t: o, ..x })
            }
            "LeakyRelu" | "HardSwish" => {
                let x = self.act(req(0)?)?;
                let s: Vec<usize> = self.g.tensors[x.t].shape.iter().map(|&d| d as usize).collect();
                let o = self.tensor(&out0, &s, None)?;
                let p = if op == "LeakyRelu" {
                    let alpha = attr_f(n, "alpha", 0.01);
                    if !alpha.is_finite() {
                        return Err(format!("alpha {alpha} is not a finite number"));
                    }
                    Op::LeakyRelu(params::elementwise::leaky_relu_params(alpha, (1.0, 0), (1.0, 0)))
                } else {
                    Op::HardSwish(params::elementwise::hard_swish_params((1.0, 0), (1.0, 0)))
                };
                self.push(p, vec![x.t], o);
                Val::Act(Act { t: o, ..x })
            }
            "Max" | "Min" if n.input.len() == 1 => Val::Act(self.act(req(0)?)?),
            "Max" | "Min" if n.input.len() > 2 => {
                // A chain of binary ops, left to right: ((a ⊕ b) ⊕ c) ⊕ … (max and min
                // are associative and exact, so the order changes no value).
                let mut acc = n.input[0].clone();
                let last = n.input.len() - 1;
                let mut result = None;
                for (k, b) in n.input.iter().enumerate().skip(1) {
                    let mut pair = n.clone();
                    pair.input = vec![acc.clone(), b.clone()];
                    let name = if k == last {
                        out0.clone()
                    } else {
                        format!("{out0}/{op}{k}")
                    };
                    let v = self.binary(&pair, op, &name)?;
                    if k == last {
                        result = Some(v);
                    } else {
                        self.vals.insert(name.clone(), v);
                        acc = name;
                    }
                }
                result.ok_or("no inputs")?
            }
            "MaxPool" | "AveragePool" => self.pool(n, op == "MaxPool", &out0)?,
            "GlobalAveragePool" | "GlobalMaxPool" => {
                let x = self.act(req(0)?)?;
                let x = self.need_cl(x)?;
                let irs = ir_shape(&x.shape, &Layout::Cl);
                let mut shape = x.shape.clone();
                for d in &mut shape[2..] {
                    *d = 1;
                }
                let o_ir = ir_shape(&shape, &Layout::Cl);
                let o = self.tensor(&out0, &o_ir, None)?;
                if op == "GlobalAveragePool" {
                    self.push(
                        Op::Mean(params::elementwise::mean_params((1.0, 0), (1.0, 0), 0b110, true)),
                        vec![x.t],
                        o,
                    );
                } else {
                    let f = |d: usize| u16::try_from(d).map_err(|_| "window too large".to_string());
                    self.push(
                        Op::MaxPool2d(PoolParams {
                            filter: [f(irs[1])?, f(irs[2])?],
                            stride: [1, 1],
                            pad: [0, 0],
                            clamp: Clamp::NONE,
                        }),
                        vec![x.t],
                        o,
                    );
                }
                Val::Act(Act {
                    t: o,
                    shape,
                    layout: Layout::Cl,
                })
            }
            "Add" | "Mul" | "Sub" | "Div" | "Max" | "Min" => self.binary(n, op, &out0)?,
            "Gemm" => self.gemm(n, &out0)?,
            "MatMul" => {
                let x = self.act(req(0)?)?;
                let (bd, b) = self.konst(req(1)?)?;
                if bd.len() != 2 {
                    return Err(format!(
                        "the right operand must be a constant matrix (rank 2), got shape {bd:?}"
                    ));
                }
                let (k, m) = (bd[0], bd[1]);
                self.pending_w = self.weight_scales(req(1)?, 1, m)?;
                let mut w = vec![0f32; k * m];
                for i in 0..k {
                    for j in 0..m {
                        w[j * k + i] = b[i * m + j];
                    }
                }
                self.fc(x, w, m, k, None, &out0)?
            }
            "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" => {
                let x = self.act(req(0)?)?;
                let target = self.target_shape(n, op, &x.shape)?;
                self.reshape_act(x, target, &out0)?
            }
            "Transpose" => self.transpose(n, &out0)?,
            "Slice" => self.slice(n, &out0)?,
            "Split" => return self.split(n),
            "Resize" => self.resize(n, &out0)?,
            "Concat" => self.concat(n, &out0)?,
            "Pad" => self.pad(n, &out0)?,
            "ReduceMean" => self.reduce_mean(n, &out0, false)?,
            "ReduceMax" => self.reduce_mean(n, &out0, true)?,
            "Softmax" => {
                let x = self.act(req(0)?)?;
                let r = x.shape.len();
                let default = if self.opset < 13 { 1 } else { -1 };
                let ax = norm_axis(attr_i(n, "axis", default), r)?;
                let ir_ax = if x.layout == Layout::Cl { cl_axis(ax, r) } else { ax };
                let irs = self.g.tensors[x.t].shape.clone();
                if matches!(x.layout, Layout::Flat(_))
                    || ir_ax + 1 != irs.len()
                    || (self.opset < 13 && ax + 1 != r)
                {
                    return Err(format!(
                        "softmax over axis {ax} of shape {:?} is not over the last stored dimension; the run-time's SOFTMAX works on the last dimension",
                        x.shape
                    ));
                }
                let s: Vec<usize> = irs.iter().map(|&d| d as usize).collect();
                let o = self.tensor(&out0, &s, None)?;
                self.push(
                    Op::Softmax(params::elementwise::softmax_params(1.0, 1.0)),
                    vec![x.t],
                    o,
                );
                Val::Act(Act { t: o, ..x })
            }
            other => {
                return Err(format!(
                    "op type {other} is not supported by edgeflow's ONNX importer (see the list in `edgeflow_compile::onnx`)"
                ))
            }
        };
        Ok(vec![v])
    }

    fn fold(&mut self, n: &pb::NodeProto) -> R<Val> {
        let get = |i: usize| -> R<Val> {
            let name = n
                .input
                .get(i)
                .ok_or_else(|| format!("input {i} is missing"))?;
            self.val(name).cloned()
        };
        let dims_vals = |v: Val| -> (Vec<usize>, Vec<f64>, bool) {
            match v {
                Val::F32(d, x) => (d, x.iter().map(|&y| y as f64).collect(), false),
                Val::I64(d, x) => (d, x.iter().map(|&y| y as f64).collect(), true),
                Val::Act(_) => (vec![], vec![], false),
            }
        };
        let mk = |d: Vec<usize>, v: Vec<f64>, int: bool| {
            if int {
                Val::I64(d, v.iter().map(|&x| x as i64).collect())
            } else {
                Val::F32(d, v.iter().map(|&x| x as f32).collect())
            }
        };
        match n.op_type.as_str() {
            "Gather" => {
                let (d, v, int) = dims_vals(get(0)?);
                let (id, iv, _) = dims_vals(get(1)?);
                if d.len() != 1 || attr_i(n, "axis", 0) != 0 {
                    return Err("constant Gather is supported on 1-D data along axis 0 only".into());
                }
                let out = iv
                    .iter()
                    .map(|&i| {
                        let i = if i < 0.0 { i + d[0] as f64 } else { i } as usize;
                        v.get(i)
                            .copied()
                            .ok_or_else(|| format!("index {i} out of range"))
                    })
                    .collect::<R<Vec<_>>>()?;
                Ok(mk(id, out, int))
            }
            "Unsqueeze" | "Squeeze" | "Reshape" | "Flatten" => {
                let (d, v, int) = dims_vals(get(0)?);
                let s = self.target_shape(n, &n.op_type, &d)?;
                Ok(mk(s, v, int))
            }
            "Concat" => {
                let mut d0 = 0;
                let mut out = vec![];
                let mut int = true;
                for i in 0..n.input.len() {
                    let (d, v, isint) = dims_vals(get(i)?);
                    if d.len() > 1 {
                        return Err("constant Concat is supported on 1-D data only".into());
                    }
                    int &= isint;
                    d0 += v.len();
                    out.extend(v);
                }
                Ok(mk(vec![d0], out, int))
            }
            "Cast" => {
                let (d, v, _) = dims_vals(get(0)?);
                match attr_i(n, "to", 1) {
                    1 => Ok(mk(d, v, false)),
                    6 | 7 => Ok(mk(d, v.iter().map(|x| x.trunc()).collect(), true)),
                    t => Err(format!("constant Cast to ONNX type {t} is not supported")),
                }
            }
            op @ ("Add" | "Sub" | "Mul" | "Div") => {
                let (da, a, ia) = dims_vals(get(0)?);
                let (db, b, ib) = dims_vals(get(1)?);
                let s = broadcast(&da, &db)?;
                let idx = |d: &[usize], flat: usize| -> usize {
                    // Index into a broadcast operand.
                    let mut rem = flat;
                    let mut off = 0;
                    let mut stride = 1;
                    for k in (0..s.len()).rev() {
                        let i = rem % s[k];
                        rem /= s[k];
                        if k + d.len() >= s.len() {
                            let dk = d[k + d.len() - s.len()];
                            if dk != 1 {
                                off += i * stride;
                            }
                            stride *= dk;
                        }
                    }
                    off
                };
                let out: Vec<f64> = (0..numel(&s))
                    .map(|f| {
                        let (x, y) = (a[idx(&da, f)], b[idx(&db, f)]);
                        match op {
                            "Add" => x + y,
                            "Sub" => x - y,
                            "Mul" => x * y,
                            _ if ia && ib => (x / y).floor(),
                            _ => x / y,
                        }
                    })
                    .collect();
                Ok(mk(s, out, ia && ib))
            }
            other => Err(format!("constant folding of {other} is not supported")),
        }
    }

    /// The output shape of Reshape / Flatten / Squeeze / Unsqueeze on a `shape` input.
    fn target_shape(&self, n: &pb::NodeProto, op: &str, shape: &[usize]) -> R<Vec<usize>> {
        let r = shape.len();
        match op {
            "Reshape" => {
                let spec = self.ints(n.input.get(1).ok_or("input 1 (shape) is missing")?)?;
                let allowzero = attr_i(n, "allowzero", 0) != 0;
                let mut out: Vec<i64> = spec
                    .iter()
                    .enumerate()
                    .map(|(i, &d)| {
                        if d == 0 && !allowzero {
                            shape.get(i).map(|&x| x as i64).ok_or_else(|| {
                                format!("0 at {i} copies a dimension the input does not have")
                            })
                        } else {
                            Ok(d)
                        }
                    })
                    .collect::<R<_>>()?;
                let known: i64 = out.iter().filter(|&&d| d != -1).product();
                let total = numel(shape) as i64;
                if let Some(p) = out.iter().position(|&d| d == -1) {
                    if known == 0 || total % known != 0 {
                        return Err(format!("cannot infer -1 reshaping {shape:?} to {spec:?}"));
                    }
                    out[p] = total / known;
                }
                if out.iter().any(|&d| d < 0) || out.iter().product::<i64>() != total {
                    return Err(format!("cannot reshape {shape:?} to {spec:?}"));
                }
                Ok(out.iter().map(|&d| d as usize).collect())
            }
            "Flatten" => {
                let a = attr_i(n, "axis", 1);
                let a = if a < 0 { a + r as i64 } else { a };
                if a < 0 || a > r as i64 {
                    return Err(format!("axis {a} out of range for rank {r}"));
                }
                let a = a as usize;
                Ok(vec![numel(&shape[..a]), numel(&shape[a..])])
            }
            "Squeeze" | "Unsqueeze" => {
                let axes = if self.opset >= 13 {
                    match n.input.get(1).filter(|s| !s.is_empty()) {
                        Some(name) => Some(self.ints(name)?),
                        None => None,
                    }
                } else {
                    attr_ints(n, "axes")
                };
                if op == "Squeeze" {
                    let axes = match axes {
                        Some(a) => a.iter().map(|&x| norm_axis(x, r)).collect::<R<Vec<_>>>()?,
                        None => (0..r).filter(|&i| shape[i] == 1).collect(),
                    };
                    if let Some(&a) = axes.iter().find(|&&a| shape[a] != 1) {
                        return Err(format!("cannot squeeze axis {a} of size {}", shape[a]));
                    }
                    Ok((0..r)
                        .filter(|i| !axes.contains(i))
                        .map(|i| shape[i])
                        .collect())
                } else {
                    let axes = axes.ok_or("Unsqueeze needs axes")?;
                    let ro = r + axes.len();
                    let axes = axes
                        .iter()
                        .map(|&x| norm_axis(x, ro))
                        .collect::<R<Vec<_>>>()?;
                    let mut it = shape.iter();
                    Ok((0..ro)
                        .map(|i| {
                            if axes.contains(&i) {
                                1
                            } else {
                                *it.next().unwrap_or(&1)
                            }
                        })
                        .collect())
                }
            }
            _ => Err(format!("{op} is not a reshape")),
        }
    }

    fn reshape_act(&mut self, x: Act, target: Vec<usize>, out: &str) -> R<Val> {
        match &x.layout {
            Layout::Cl if !(x.shape[2..].iter().all(|&d| d == 1) || x.shape[1] == 1) => {
                // [N, C, H, W] → [N, C·H·W]: keep the channels-last data, remember the order.
                if target.len() == 2 && target[0] == x.shape[0] {
                    let (c, h, w) = match x.shape.len() {
                        4 => (x.shape[1], x.shape[2], x.shape[3]),
                        _ => (x.shape[1], 1, x.shape[2]),
                    };
                    let mut perm = Vec::with_capacity(c * h * w);
                    for y in 0..h {
                        for xx in 0..w {
                            for ch in 0..c {
                                perm.push((ch * h + y) * w + xx);
                            }
                        }
                    }
                    let t = self.reshape(x.t, &target)?;
                    return Ok(Val::Act(Act {
                        t,
                        shape: target,
                        layout: Layout::Flat(perm),
                    }));
                }
                Err(format!(
                    "reshaping a channels-first tensor of shape {:?} to {target:?} needs a TRANSPOSE on the device; only [N, C·H·W] (flatten before a Gemm/MatMul) is supported",
                    x.shape
                ))
            }
            Layout::Flat(_) => {
                Err("reshaping a flattened channels-first tensor again is not supported".into())
            }
            _ => {
                let x = self.need_plain(x)?;
                let t = self.tensor(out, &target, None)?;
                self.push(Op::Reshape, vec![x.t], t);
                Ok(Val::Act(Act {
                    t,
                    shape: target,
                    layout: Layout::Plain,
                }))
            }
        }
    }

    fn fc(
        &mut self,
        x: Act,
        mut w: Vec<f32>,
        o: usize,
        k: usize,
        bias: Option<Vec<f32>>,
        out: &str,
    ) -> R<Val> {
        let last = *x.shape.last().ok_or("scalar input")?;
        if last != k {
            return Err(format!(
                "input of shape {:?} has {last} features, the weights expect {k}",
                x.shape
            ));
        }
        let x = match &x.layout {
            Layout::Flat(perm) => {
                // Permute the input columns instead of the data.
                let mut pw = vec![0f32; o * k];
                for r in 0..o {
                    for (j, &p) in perm.iter().enumerate() {
                        pw[r * k + j] = w[r * k + p];
                    }
                }
                w = pw;
                Act {
                    layout: Layout::Plain,
                    ..x
                }
            }
            _ => self.need_plain(x)?,
        };
        let wt = self.tensor(&format!("{out}/weights"), &[o, k], Some(w))?;
        if let Some(s) = self.pending_w.take() {
            self.qdq.weights.insert(wt, s);
        }
        let b = self.tensor(
            &format!("{out}/bias"),
            &[o],
            Some(bias.unwrap_or(vec![0.0; o])),
        )?;
        let mut shape = x.shape.clone();
        *shape.last_mut().ok_or("scalar input")? = o;
        let t = self.tensor(out, &shape, None)?;
        self.push(
            Op::FullyConnected(FullyConnectedParams {
                clamp: Clamp::NONE,
                requant: None,
            }),
            vec![x.t, wt, b],
            t,
        );
        Ok(Val::Act(Act {
            t,
            shape,
            layout: Layout::Plain,
        }))
    }

    fn gemm(&mut self, n: &pb::NodeProto, out: &str) -> R<Val> {
        let x = self.act(&n.input[0])?;
        if attr_i(n, "transA", 0) != 0 {
            return Err("transA = 1 is not supported".into());
        }
        if x.shape.len() != 2 {
            return Err(format!("input A must be rank 2, got {:?}", x.shape));
        }
        let (bd, b) = self.konst(n.input.get(1).ok_or("input B is missing")?)?;
        if bd.len() != 2 {
            return Err(format!("B must be rank 2, got {bd:?}"));
        }
        let alpha = attr_f(n, "alpha", 1.0);
        let beta = attr_f(n, "beta", 1.0);
        let trans_b = attr_i(n, "transB", 0) != 0;
        let (k, o) = if trans_b {
            (bd[1], bd[0])
        } else {
            (bd[0], bd[1])
        };
        let bname = n.input.get(1).ok_or("input B is missing")?;
        let scales = self.weight_scales(bname, usize::from(!trans_b), o)?;
        if scales.is_some() && alpha != 1.0 {
            return Err(format!(
                "alpha = {alpha} on int8 weights {bname:?} is not supported"
            ));
        }
        let mut w = vec![0f32; o * k];
        for r in 0..o {
            for j in 0..k {
                let v = if trans_b { b[r * k + j] } else { b[j * o + r] };
                w[r * k + j] = alpha * v;
            }
        }
        let bias = match n.input.get(2).filter(|s| !s.is_empty()) {
            None => None,
            Some(name) => {
                let (cd, c) = self.konst(name)?;
                let v: Vec<f32> = match (numel(&cd), cd.as_slice()) {
                    (1, _) => vec![c[0] * beta; o],
                    (m, [_]) | (m, [1, _]) if m == o => c.iter().map(|&v| v * beta).collect(),
                    _ => {
                        return Err(format!(
                            "bias C of shape {cd:?} is not [{o}], [1, {o}] or a scalar"
                        ))
                    }
                };
                Some(v)
            }
        };
        self.pending_w = scales;
        self.fc(x, w, o, k, bias, out)
    }

    fn conv(&mut self, n: &pb::NodeProto) -> R<Val> {
        let out = n.output.first().cloned().unwrap_or_default();
        let x = self.act(&n.input[0])?;
        let x = self.need_cl(x)?;
        let (wd, w) = self.konst(n.input.get(1).ok_or("input W is missing")?)?;
        let sp = x.shape.len() - 2;
        if wd.len() != x.shape.len() {
            return Err(format!(
                "weights of shape {wd:?} for an input of shape {:?}",
                x.shape
            ));
        }
        let c = x.shape[1];
        let o = wd[0];
        let group = attr_i(n, "group", 1) as usize;
        let depthwise = group != 1;
        if depthwise && (group != c || o % c != 0 || wd[1] != 1) {
            return Err(format!(
                "group = {group} is not supported (only 1, or the input channel count {c} as depthwise)"
            ));
        }
        if !depthwise && wd[1] != c {
            return Err(format!(
                "weights expect {} input channels, the input has {c}",
                wd[1]
            ));
        }
        let ks: Vec<usize> = wd[2..].to_vec();
        if let Some(k) = attr_ints(n, "kernel_shape") {
            if k.iter().map(|&v| v as usize).ne(ks.iter().copied()) {
                return Err(format!(
                    "kernel_shape {k:?} differs from the weights' {ks:?}"
                ));
            }
        }
        let ints = |name: &str, d: i64, len: usize| -> R<Vec<usize>> {
            let v = attr_ints(n, name).unwrap_or(vec![d; len]);
            if v.len() != len || v.iter().any(|&x| x < 0) {
                return Err(format!(
                    "attribute {name} = {v:?} is not {len} non-negative values"
                ));
            }
            Ok(v.iter().map(|&x| x as usize).collect())
        };
        let strides = ints("strides", 1, sp)?;
        let dil = ints("dilations", 1, sp)?;
        let spatial: Vec<usize> = x.shape[2..].to_vec();
        let (pb_, _pe, outs) = self.window(n, &spatial, &ks, &strides, &dil, false)?;
        // Weights in the run-time layout; 1-D convolutions get a height of 1.
        let (kh, kw) = if sp == 2 { (ks[0], ks[1]) } else { (1, ks[0]) };
        let wi = wd[1];
        let mut wl = Vec::with_capacity(w.len());
        let filter_shape;
        if depthwise {
            for y in 0..kh {
                for xx in 0..kw {
                    for oc in 0..o {
                        wl.push(w[(oc * kh + y) * kw + xx]);
                    }
                }
            }
            filter_shape = vec![1, kh, kw, o];
        } else {
            for oc in 0..o {
                for y in 0..kh {
                    for xx in 0..kw {
                        for ic in 0..wi {
                            wl.push(w[((oc * wi + ic) * kh + y) * kw + xx]);
                        }
                    }
                }
            }
            filter_shape = vec![o, kh, kw, wi];
        }
        let bias = match n.input.get(2).filter(|s| !s.is_empty()) {
            Some(name) => {
                let (bd, b) = self.konst(name)?;
                if numel(&bd) != o {
                    return Err(format!("bias of shape {bd:?} for {o} output channels"));
                }
                b
            }
            None => vec![0.0; o],
        };
        let wt = self.tensor(&format!("{out}/weights"), &filter_shape, Some(wl))?;
        if let Some(s) = self.weight_scales(&n.input[1], 0, o)? {
            self.qdq.weights.insert(wt, s);
        }
        let bt = self.tensor(&format!("{out}/bias"), &[o], Some(bias))?;
        let mut shape = vec![x.shape[0], o];
        shape.extend(&outs);
        let t = self.tensor(&out, &ir_shape(&shape, &Layout::Cl), None)?;
        let u = |v: usize| u16::try_from(v).map_err(|_| format!("{v} does not fit 16 bits"));
        let (stride, dilation, pad) = if sp == 2 {
            (
                [u(strides[0])?, u(strides[1])?],
                [u(dil[0])?, u(dil[1])?],
                [u(pb_[0])?, u(pb_[1])?],
            )
        } else {
            ([1, u(strides[0])?], [1, u(dil[0])?], [0, u(pb_[0])?])
        };
        let p = ConvParams {
            stride,
            dilation,
            pad,
            depth_multiplier: if depthwise { u(o / c)? } else { 1 },
            clamp: Clamp::NONE,
            requant: None,
        };
        self.push(
            if depthwise {
                Op::DepthwiseConv2d(p)
            } else {
                Op::Conv2d(p)
            },
            vec![x.t, wt, bt],
            t,
        );
        Ok(Val::Act(Act {
            t,
            shape,
            layout: Layout::Cl,
        }))
    }

    /// Leading pads, trailing pads and output sizes of a windowed op.
    #[allow(clippy::type_complexity)]
    fn window(
        &self,
        n: &pb::NodeProto,
        spatial: &[usize],
        ks: &[usize],
        strides: &[usize],
        dil: &[usize],
        ceil: bool,
    ) -> R<(Vec<usize>, Vec<usize>, Vec<usize>)> {
        let sp = spatial.len();
        let auto = attr_s(n, "auto_pad").unwrap_or_else(|| "NOTSET".into());
        let mut pb_ = vec![0; sp];
        let mut pe = vec![0; sp];
        let mut outs = vec![0; sp];
        for i in 0..sp {
            if strides[i] == 0 || dil[i] == 0 || ks[i] == 0 {
                return Err("zero stride, dilation or kernel size".into());
            }
            let eff = (ks[i] - 1) * dil[i] + 1;
            match auto.as_str() {
                "NOTSET" => {
                    let pads = attr_ints(n, "pads").unwrap_or(vec![0; 2 * sp]);
                    if pads.len() != 2 * sp || pads.iter().any(|&p| p < 0) {
                        return Err(format!(
                            "pads {pads:?} is not {} non-negative values",
                            2 * sp
                        ));
                    }
                    pb_[i] = pads[i] as usize;
                    pe[i] = pads[i + sp] as usize;
                    let span = spatial[i] + pb_[i] + pe[i];
                    if span < eff {
                        return Err(format!(
                            "the window {eff} is larger than the padded input {span}"
                        ));
                    }
                    outs[i] = if ceil {
                        let mut o = (span - eff).div_ceil(strides[i]) + 1;
                        // A window must start inside the input or the leading pad.
                        if (o - 1) * strides[i] >= spatial[i] + pb_[i] {
                            o -= 1;
                        }
                        o
                    } else {
                        (span - eff) / strides[i] + 1
                    };
                }
                "VALID" => {
                    if spatial[i] < eff {
                        return Err("the window is larger than the input".into());
                    }
                    outs[i] = (spatial[i] - eff) / strides[i] + 1;
                }
                "SAME_UPPER" | "SAME_LOWER" => {
                    outs[i] = spatial[i].div_ceil(strides[i]);
                    let total = ((outs[i] - 1) * strides[i] + eff).saturating_sub(spatial[i]);
                    pb_[i] = if auto == "SAME_UPPER" {
                        total / 2
                    } else {
                        total - total / 2
                    };
                    pe[i] = total - pb_[i];
                }
                other => return Err(format!("auto_pad {other:?} is not supported")),
            }
            if pb_[i] >= eff || pe[i] >= eff {
                return Err(format!(
                    "padding ({}, {}) is not smaller than the window {eff}; the run-time pads inside the window only",
                    pb_[i], pe[i]
                ));
            }
        }
        Ok((pb_, pe, outs))
    }

    fn pool(&mut self, n: &pb::NodeProto, max: bool, out: &str) -> R<Val> {
        if n.output.len() > 1 && n.output.get(1).is_some_and(|s| !s.is_empty()) {
            return Err("the Indices output of MaxPool is not supported".into());
        }
        let x = self.act(&n.input[0])?;
        let x = self.need_cl(x)?;
        let sp = x.shape.len() - 2;
        let ks: Vec<usize> = attr_ints(n, "kernel_shape")
            .ok_or("kernel_shape is missing")?
            .iter()
            .map(|&v| v.max(0) as usize)
            .collect();
        if ks.len() != sp {
            return Err(format!("kernel_shape {ks:?} for {sp} spatial dimensions"));
        }
        let strides: Vec<usize> = attr_ints(n, "strides")
            .unwrap_or(vec![1; sp])
            .iter()
            .map(|&v| v.max(0) as usize)
            .collect();
        if strides.len() != sp {
            return Err("strides has the wrong length".into());
        }
        if attr_ints(n, "dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
            return Err("dilations other than 1 are not supported in pooling".into());
        }
        let spatial: Vec<usize> = x.shape[2..].to_vec();
        let ceil = attr_i(n, "ceil_mode", 0) != 0;
        let (pb_, pe, outs) = self.window(n, &spatial, &ks, &strides, &vec![1; sp], ceil)?;
        if !max && attr_i(n, "count_include_pad", 0) != 0 && pb_.iter().chain(&pe).any(|&p| p > 0) {
            return Err("count_include_pad = 1 with padding is not supported (the run-time averages over the valid cells, as TFLite)".into());
        }
        let mut shape = vec![x.shape[0], x.shape[1]];
        shape.extend(&outs);
        let t = self.tensor(out, &ir_shape(&shape, &Layout::Cl), None)?;
        let u = |v: usize| u16::try_from(v).map_err(|_| format!("{v} does not fit 16 bits"));
        let p = if sp == 2 {
            PoolParams {
                filter: [u(ks[0])?, u(ks[1])?],
                stride: [u(strides[0])?, u(strides[1])?],
                pad: [u(pb_[0])?, u(pb_[1])?],
                clamp: Clamp::NONE,
            }
        } else {
            PoolParams {
                filter: [1, u(ks[0])?],
                stride: [1, u(strides[0])?],
                pad: [0, u(pb_[0])?],
                clamp: Clamp::NONE,
            }
        };
        self.push(
            if max {
                Op::MaxPool2d(p)
            } else {
                Op::AveragePool2d(p)
            },
            vec![x.t],
            t,
        );
        Ok(Val::Act(Act {
            t,
            shape,
            layout: Layout::Cl,
        }))
    }

    fn batchnorm(&mut self, n: &pb::NodeProto, out: &str) -> R<Val> {
        if n.output.iter().skip(1).any(|s| !s.is_empty()) {
            return Err("training-mode outputs (running mean/var) are not supported".into());
        }
        if attr_i(n, "training_mode", 0) != 0 {
            return Err("training_mode = 1 is not supported".into());
        }
        let x_name = n.input[0].clone();
        let x = self.act(&x_name)?;
        let eps = attr_f(n, "epsilon", 1e-5);
        let get = |i: usize| -> R<Vec<f32>> {
            let name = n
                .input
                .get(i)
                .ok_or_else(|| format!("input {i} is missing"))?;
            Ok(self.konst(name)?.1)
        };
        let (scale, bias, mean, var) = (get(1)?, get(2)?, get(3)?, get(4)?);
        let c = *x.shape.get(1).ok_or("input has no channel dimension")?;
        if [&scale, &bias, &mean, &var].iter().any(|v| v.len() != c) {
            return Err(format!("scale/B/mean/var must have {c} values"));
        }
        // y = x * a + b' with a = scale / sqrt(var + eps), b' = B - mean * a.
        let a: Vec<f32> = (0..c)
            .map(|i| (scale[i] as f64 / (var[i] as f64 + eps as f64).sqrt()) as f32)
            .collect();
        let b: Vec<f32> = (0..c).map(|i| bias[i] - mean[i] * a[i]).collect();
        // Fold into the producing convolution when it has no other consumer.
        if self.uses.get(&x_name).copied() == Some(1) && !self.g.outputs.contains(&x.t) {
            if let Some(p) = self.producer[x.t] {
                let op = &self.g.ops[p];
                let conv = match op.op {
                    Op::Conv2d(cp) if cp.clamp == Clamp::NONE => Some(false),
                    Op::DepthwiseConv2d(cp) if cp.clamp == Clamp::NONE => Some(true),
                    _ => None,
                };
                if let (Some(dw), [_, wt, bt]) = (conv, op.inputs.as_slice()) {
                    let (wt, bt) = (*wt, *bt);
                    let mut w = crate::reference::bytes_f32(
                        self.g.tensors[wt].data.as_deref().unwrap_or(&[]),
                    );
                    let per = w.len() / c;
                    for (i, v) in w.iter_mut().enumerate() {
                        let ch = if dw { i % c } else { i / per };
                        *v *= a[ch];
                    }
                    let mut bb = crate::reference::bytes_f32(
                        self.g.tensors[bt].data.as_deref().unwrap_or(&[]),
                    );
                    for ch in 0..c {
                        bb[ch] = bb[ch] * a[ch] + b[ch];
                    }
                    self.g.tensors[wt].data = Some(f32_bytes(&w));
                    self.g.tensors[bt].data = Some(f32_bytes(&bb));
                    // Folded int8 weights are no longer the QDQ model's: requantized.
                    self.qdq.weights.remove(&wt);
                    return Ok(Val::Act(x));
                }
            }
        }
        // Otherwise a per-channel MUL and ADD.
        let mut cd = vec![c];
        cd.extend(std::iter::repeat_n(1, x.shape.len().saturating_sub(2)));
        let at = self.const_tensor(&format!("{out}/scale"), &cd, &a, &x)?;
        let bt = self.const_tensor(&format!("{out}/shift"), &cd, &b, &x)?;
        let s: Vec<usize> = self.g.tensors[x.t]
            .shape
            .iter()
            .map(|&d| d as usize)
            .collect();
        let m = self.tensor(&format!("{out}/mul"), &s, None)?;
        self.push(
            Op::Mul(params::elementwise::mul_params(
                (1.0, 0),
                (1.0, 0),
                (1.0, 0),
                Clamp::NONE,
            )),
            vec![x.t, at],
            m,
        );
        let o = self.tensor(out, &s, None)?;
        self.push(
            Op::Add(params::elementwise::add_params(
                (1.0, 0),
                (1.0, 0),
                (1.0, 0),
                Clamp::NONE,
            )),
            vec![m, bt],
            o,
        );
        Ok(Val::Act(Act { t: o, ..x }))
    }

    fn binary(&mut self, n: &pb::NodeProto, op: &str, out: &str) -> R<Val> {
        let (an, bn) = (&n.input[0], n.input.get(1).ok_or("input B is missing")?);
        let (a, b) = (self.val(an)?.clone(), self.val(bn)?.clone());
        let as_f = |v: &Val| match v {
            Val::F32(d, x) => Some((d.clone(), x.clone())),
            Val::I64(d, x) => Some((d.clone(), x.iter().map(|&y| y as f32).collect())),
            Val::Act(_) => None,
        };
        let (x, other, swapped) = match (&a, &b) {
            (Val::Act(x), _) => (x.clone(), b.clone(), false),
            (_, Val::Act(y)) => (y.clone(), a.clone(), true),
            _ => return Err("both inputs constant".into()),
        };
        let (mut op, mut other) = (op, other);
        // Sub/Div by a constant become Add/Mul of its negation/reciprocal.
        if let Some((d, v)) = as_f(&other) {
            match (op, swapped) {
                ("Sub", false) => {
                    other = Val::F32(d, v.iter().map(|&z| -z).collect());
                    op = "Add";
                }
                ("Div", false) => {
                    other = Val::F32(d, v.iter().map(|&z| 1.0 / z).collect());
                    op = "Mul";
                }
                ("Sub" | "Div", true) => {
                    return Err(format!(
                        "{op} with a constant left operand is not supported"
                    ))
                }
                _ => {}
            }
        } else if matches!(op, "Sub" | "Div") {
            return Err(format!(
                "{op} of two computed tensors is not supported (no SUB/DIV kernel)"
            ));
        }
        let (xt, yt, shape) = match &other {
            Val::Act(y) => {
                let (mut x, mut y) = (x.clone(), y.clone());
                if x.layout != y.layout {
                    if x.layout != Layout::Plain {
                        y = if x.layout == Layout::Cl {
                            self.need_cl(y)?
                        } else {
                            return Err("operands stored in different layouts".into());
                        };
                    } else if y.layout == Layout::Cl {
                        x = self.need_cl(x)?;
                    } else {
                        return Err("operands stored in different layouts".into());
                    }
                }
                if matches!(x.layout, Layout::Flat(_)) && x.layout != y.layout {
                    return Err("operands stored in different layouts".into());
                }
                let s = broadcast(&x.shape, &y.shape)?;
                if x.layout == Layout::Cl && x.shape.len() != y.shape.len() {
                    return Err("channels-last operands of different rank".into());
                }
                (x.t, y.t, s)
            }
            c => {
                let (d, v) = as_f(c).ok_or("constant expected")?;
                let s = broadcast(&x.shape, &d)?;
                if s != x.shape {
                    return Err(format!(
                        "the constant of shape {d:?} would enlarge the tensor of shape {:?}",
                        x.shape
                    ));
                }
                let ct = self.const_tensor(&format!("{out}/const"), &d, &v, &x)?;
                (x.t, ct, s)
            }
        };
        let irs = broadcast(
            &self.g.tensors[xt]
                .shape
                .iter()
                .map(|&d| d as usize)
                .collect::<Vec<_>>(),
            &self.g.tensors[yt]
                .shape
                .iter()
                .map(|&d| d as usize)
                .collect::<Vec<_>>(),
        )?;
        let t = self.tensor(out, &irs, None)?;
        let one = (1.0, 0);
        let p = match op {
            "Add" => Op::Add(params::elementwise::add_params(one, one, one, Clamp::NONE)),
            "Max" => Op::Maximum,
            "Min" => Op::Minimum,
            _ => Op::Mul(params::elementwise::mul_params(one, one, one, Clamp::NONE)),
        };
        let ins = if swapped && matches!(other, Val::Act(_)) {
            vec![yt, xt]
        } else {
            vec![xt, yt]
        };
        self.push(p, ins, t);
        Ok(Val::Act(Act {
            t,
            shape,
            layout: x.layout,
        }))
    }

    fn transpose(&mut self, n: &pb::NodeProto, out: &str) -> R<Val> {
        let x = self.act(&n.input[0])?;
        let r = x.shape.len();
        let perm: Vec<usize> = match attr_ints(n, "perm") {
            Some(p) => p.iter().map(|&a| norm_axis(a, r)).collect::<R<_>>()?,
            None => (0..r).rev().collect(),
        };
        let mut sorted = perm.clone();
        sorted.sort_unstable();
        if sorted != (0..r).collect::<Vec<_>>() {
            return Err(format!("perm {perm:?} is not a permutation of 0..{r}"));
        }
        let shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
        match (&x.layout, r, perm.as_slice()) {
            // Channels-last data read as NHWC: nothing moves.
            (Layout::Cl, 4, [0, 2, 3, 1]) => {
                return Ok(Val::Act(Act {
                    t: x.t,
                    shape,
                    layout: Layout::Plain,
                }))
            }
            (Layout::Cl, 3, [0, 2, 1]) => {
                let t = self.reshape(x.t, &shape)?;
                return Ok(Val::Act(Act {
                    t,
                    shape,
                    layout: Layout::Plain,
                }));
            }
            // NHWC data read as NCHW: it is the channels-last form of the result.
            (Layout::Plain, 4, [0, 3, 1, 2]) => {
                return Ok(Val::Act(Act {
                    t: x.t,
                    shape,
                    layout: Layout::Cl,
                }))
            }
            (Layout::Plain, 3, [0, 2, 1]) => {
                let s = ir_shape(&shape, &Layout::Cl);
                let t = self.reshape(x.t, &s)?;
                return Ok(Val::Act(Act {
                    t,
                    shape,
                    layout: Layout::Cl,
                }));
            }
            _ => {}
        }
        // A permutation that only moves size-1 dimensions is a reshape.
        let order = |p: &[usize]| -> Vec<usize> {
            p.iter().copied().filter(|&a| x.shape[a] != 1).collect()
        };
        let moved = order(&perm);
        let kept = order(&(0..r).collect::<Vec<_>>());
        if moved == kept {
            let x = self.need_plain(x)?;
            let t = self.tensor(out, &shape, None)?;
            self.push(Op::Reshape, vec![x.t], t);
            return Ok(Val::Act(Act {
                t,
                shape,
                layout: Layout::Plain,
            }));
        }
        // A permutation that moves data: one TRANSPOSE op on the stored layout. For a
        // channels-last input, ONNX dimension `a` is stored at position `pos[a]`.
        let (src, pos): (usize, Vec<usize>) = match (&x.layout, r) {
            (Layout::Plain, _) => (x.t, (0..r).collect()),
            (Layout::Cl, 4) => (x.t, vec![0, 3, 1, 2]),
            (Layout::Cl, 3) => {
                // Stored [N, 1, L, C]: the same bytes as [N, L, C].
                let t = self.reshape(x.t, &[x.shape[0], x.shape[2], x.shape[1]])?;
                (t, vec![0, 2, 1])
            }
            _ => {
                let x = self.need_plain(x.clone())?;
                (x.t, (0..r).collect())
            }
        };
        let mut p = TransposeParams {
            perm: core::array::from_fn(|i| i as u8),
        };
        for (i, &a) in perm.iter().enumerate() {
            p.perm[i] = pos[a] as u8;
        }
        let t = self.tensor(out, &shape, None)?;
        self.push(Op::Transpose(p), vec![src], t);
        Ok(Val::Act(Act {
            t,
            shape,
            layout: Layout::Plain,
        }))
    }

    /// ONNX Slice (opset 10 and later: starts, ends, axes and steps as constant inputs;
    /// opset < 10: attributes) as one STRIDED_SLICE on the stored layout (a channels-last
    /// input is sliced along its stored axes and stays channels-last). Starts and ends are
    /// clamped as ONNX specifies (negative values count from the end).
    fn slice(&mut self, n: &pb::NodeProto, out: &str) -> R<Val> {
        let x = self.act(&n.input[0])?;
        let r = x.shape.len();
        let inp = |i: usize| n.input.get(i).map(String::as_str).filter(|s| !s.is_empty());
        let (starts, ends, axes, steps) = if self.opset < 10 {
            (
                attr_ints(n, "starts").ok_or("the starts attribute is missing")?,
                attr_ints(n, "ends").ok_or("the ends attribute is missing")?,
                attr_ints(n, "axes"),
                None,
            )
        } else {
            let get =
                |i: usize| -> R<Option<Vec<i64>>> { inp(i).map(|s| self.ints(s)).transpose() };
            (
                get(1)?.ok_or("input 1 (starts) is missing")?,
                get(2)?.ok_or("input 2 (ends) is missing")?,
                get(3)?,
                get(4)?,
            )
        };
        let axes: Vec<usize> = match axes {
            Some(a) => a.iter().map(|&a| norm_axis(a, r)).collect::<R<_>>()?,
            None => (0..starts.len()).collect(),
        };
        let steps = steps.unwrap_or_else(|| vec![1; axes.len()]);
        if starts.len() != axes.len() || ends.len() != axes.len() || steps.len() != axes.len() {
            return Err(format!(
                "starts ({}), ends ({}), axes ({}) and steps ({}) differ in length",
                starts.len(),
                ends.len(),
                axes.len(),
                steps.len()
            ));
        }
        let (mut begin, mut step, mut count) = (vec![0i64; r], vec![1i64; r], x.shape.clone());
        let mut seen = vec![false; r];
        for k in 0..axes.len() {
            let a = axes[k];
            if std::mem::replace(&mut seen[a], true) {
                return Err(format!("axis {a} is sliced twice"));
            }
            let (size, st) = (x.shape[a] as i64, steps[k]);
            if st == 0 {
                return Err(format!("step of axis {a} is 0"));
            }
            if i32::try_from(st).is_err() {
                return Err(format!("step {st} of axis {a} is outside int32"));
            }
            let adj = |v: i64| if v < 0 { v.saturating_add(size) } else { v };
            let (b, e) = if st > 0 {
                (adj(starts[k]).clamp(0, size), adj(ends[k]).clamp(0, size))
            } else {
                (
                    adj(starts[k]).clamp(0, size - 1),
                    adj(ends[k]).clamp(-1, size - 1),
                )
            };
            let c = if st > 0 {
                (e - b + st - 1).div_euclid(st)
            } else {
                (b - e - st - 1).div_euclid(-st)
            };
            if c <= 0 {
                return Err(format!(
                    "the slice of axis {a} is empty (edgeflow has no empty tensors)"
                ));
            }
            begin[a] = b;
            step[a] = st;
            count[a] = c as usize;
        }
        let (src, ir_axis): (usize, Vec<usize>) = match (&x.layout, r) {
            (Layout::Plain, _) => (x.t, (0..r).collect()),
            (Layout::Cl, 4 | 3) => (x.t, (0..r).map(|a| cl_axis(a, r)).collect()),
            _ => {
                let x = self.need_plain(x.clone())?;
                (x.t, (0..r).collect())
            }
        };
        let layout = if matches!(x.layout, Layout::Cl) && matches!(r, 3 | 4) {
            Layout::Cl
        } else {
            Layout::Plain
        };
        let ir_rank = self.g.tensors[src].shape.len();
        let mut p = StridedSliceParams {
            begin: [0; MAX_RANK],
            stride: [1; MAX_RANK],
            count: [1; MAX_RANK],
        };
        for d in 0..ir_rank {
            p.count[d] = self.g.tensors[src].shape[d];
        }
        for a in 0..r {
            let d = ir_axis[a];
            p.begin[d] = begin[a] as i32;
            p.stride[d] = step[a] as i32;
            p.count[d] = count[a] as u32;
        }
        let shape = count;
        let t = self.tensor(out, &ir_shape(&shape, &layout), None)?;
        self.push(Op::StridedSlice(p), vec![src], t);
        Ok(Val::Act(Act { t, shape, layout }))
    }

    /// Split: one STRIDED_SLICE per output along the (stored) axis. Part sizes from the
    /// `split` input (opset 13+) or attribute (earlier), else equal parts — the last one
    /// smaller when the axis does not divide, as opset 18's `num_outputs` splits.
    fn split(&mut self, n: &pb::NodeProto) -> R<Vec<Val>> {
        let x = self.act(&n.input[0])?;
        let r = x.shape.len();
        let axis = norm_axis(attr_i(n, "axis", 0), r)?;
        let size = x.shape[axis];
        let outs = n.output.len();
        let given = match n.input.get(1).filter(|s| !s.is_empty()) {
            Some(name) if self.opset >= 13 => Some(self.ints(name)?),
            _ => attr_ints(n, "split"),
        };
        let parts: Vec<usize> = match given {
            Some(v) => v
                .iter()
                .map(|&p| usize::try_from(p).map_err(|_| format!("split size {p} is negative")))
                .collect::<R<_>>()?,
            None => {
                let each = size.div_ceil(outs.max(1));
                (0..outs)
                    .map(|k| each.min(size.saturating_sub(k * each)))
                    .collect()
            }
        };
        if parts.len() != outs || parts.iter().sum::<usize>() != size || parts.contains(&0) {
            return Err(format!(
                "split sizes {parts:?} do not cut axis {axis} of size {size} into {outs} non-empty parts"
            ));
        }
        let (src, ir_axis, layout) = match (&x.layout, r) {
            (Layout::Plain, _) => (x.t, axis, Layout::Plain),
            (Layout::Cl, 4 | 3) => (x.t, cl_axis(axis, r), Layout::Cl),
            _ => {
                let p = self.need_plain(x.clone())?;
                (p.t, axis, Layout::Plain)
            }
        };
        let ir_src = self.g.tensors[src].shape.clone();
        let mut vals = Vec::with_capacity(outs);
        let mut begin = 0usize;
        for (k, &part) in parts.iter().enumerate() {
            let mut p = StridedSliceParams {
                begin: [0; MAX_RANK],
                stride: [1; MAX_RANK],
                count: [1; MAX_RANK],
            };
            for (d, &e) in ir_src.iter().enumerate() {
                p.count[d] = e;
            }
            p.begin[ir_axis] = begin as i32;
            p.count[ir_axis] = part as u32;
            let mut shape = x.shape.clone();
            shape[axis] = part;
            let t = self.tensor(&n.output[k], &ir_shape(&shape, &layout), None)?;
            self.push(Op::StridedSlice(p), vec![src], t);
            vals.push(Val::Act(Act {
                t,
                shape,
                layout: layout.clone(),
            }));
            begin += part;
        }
        Ok(vals)
    }

    /// Resize (nearest) of a rank-4 NCHW tensor onto RESIZE_NEAREST_NEIGHBOR. The
    /// coordinate transformation and rounding pairs that TFLite's kernel computes map onto
    /// it: `asymmetric` + `floor` (what PyTorch exports for `nn.Upsample(mode="nearest")`),
    /// `align_corners` + `round_prefer_ceil`, and `half_pixel` / `pytorch_half_pixel` +
    /// `round_prefer_ceil` or `tf_half_pixel_for_nn` + `floor` (half-pixel centres). Other
    /// pairs (ONNX's default `half_pixel` + `round_prefer_floor` rounds ties down, TFLite up),
    /// the linear and cubic modes, `axes`, aspect-ratio policies and regions of interest are
    /// refused naming the attribute.
    fn resize(&mut self, n: &pb::NodeProto, out: &str) -> R<Val> {
        let s_or = |name: &str, d: &str| attr_s(n, name).unwrap_or_else(|| d.to_string());
        let mode = s_or("mode", "nearest");
        if mode != "nearest" {
            return Err(format!(
                "mode {mode:?}: only nearest-neighbour resizing maps onto the run-time (no RESIZE_BILINEAR)"
            ));
        }
        if attr_ints(n, "axes").is_some() {
            return Err("the axes attribute is not supported".into());
        }
        let policy = s_or("keep_aspect_ratio_policy", "stretch");
        if policy != "stretch" {
            return Err(format!(
                "keep_aspect_ratio_policy {policy:?} is not supported"
            ));
        }
        let ctm = s_or("coordinate_transformation_mode", "half_pixel");
        let nearest = s_or("nearest_mode", "round_prefer_floor");
        let (align_corners, half_pixel_centers) = match (ctm.as_str(), nearest.as_str()) {
            ("asymmetric", "floor") => (false, false),
            ("align_corners", "round_prefer_ceil") => (true, false),
            ("half_pixel" | "pytorch_half_pixel", "round_prefer_ceil")
            | ("tf_half_pixel_for_nn", "floor") => (false, true),
            _ => {
                return Err(format!(
                    "coordinate_transformation_mode {ctm:?} with nearest_mode {nearest:?} is not what TFLite's nearest-neighbour kernel computes (it maps asymmetric + floor, align_corners + round_prefer_ceil, half_pixel + round_prefer_ceil, tf_half_pixel_for_nn + floor)"
                ))
            }
        };
        let inp = |i: usize| n.input.get(i).map(String::as_str).filter(|s| !s.is_empty());
        if self.opset >= 11
            && inp(1).is_some_and(|roi| self.konst(roi).is_ok_and(|(_, v)| !v.is_empty()))
        {
            return Err("a region of interest (roi) is not supported".into());
        }
        let x = self.act(&n.input[0])?;
        if x.shape.len() != 4 {
            return Err(format!("input of shape {:?} is not rank 4 (NCHW)", x.shape));
        }
        let sizes: Vec<usize> = if let Some(sz) = inp(if self.opset >= 11 { 3 } else { 99 }) {
            self.ints(sz)?
                .iter()
                .map(|&v| usize::try_from(v).map_err(|_| format!("size {v} is negative")))
                .collect::<R<_>>()?
        } else {
            let sc = inp(if self.opset >= 11 { 2 } else { 1 })
                .ok_or("neither scales nor sizes is given")?;
            let (_, scales) = self.konst(sc)?;
            if scales.len() != 4 {
                return Err(format!(
                    "scales {scales:?} do not have one value per dimension"
                ));
            }
            resize_sizes_from_scales(&x.shape, &scales)?
        };
        if sizes.len() != 4 || sizes[0] != x.shape[0] || sizes[1] != x.shape[1] {
            return Err(format!(
                "output size {sizes:?} resizes more than the spatial dimensions of {:?}",
                x.shape
            ));
        }
        if sizes.contains(&0) {
            return Err(format!("output size {sizes:?} is empty"));
        }
        let x = self.need_cl(x)?;
        let shape = sizes;
        let t = self.tensor(out, &ir_shape(&shape, &Layout::Cl), None)?;
        self.push(
            Op::ResizeNearest(ResizeNearestParams {
                align_corners,
                half_pixel_centers,
            }),
            vec![x.t],
            t,
        );
        Ok(Val::Act(Act {
            t,
            shape,
            layout: Layout::Cl,
        }))
    }

    fn concat(&mut self, n: &pb::NodeProto, out: &str) -> R<Val> {
        let mut acts = vec![];
        for name in n.input.iter().filter(|s| !s.is_empty()) {
            acts.push(self.act(name)?);
        }
        let first = acts.first().ok_or("no inputs")?.clone();
        let r = first.shape.len();
        let ax = norm_axis(attr_i(n, "axis", 1), r)?;
        let layout = if acts.iter().any(|a| a.layout == Layout::Cl) {
            Layout::Cl
        } else {
            Layout::Plain
        };
        let mut ts = vec![];
        let mut shape = first.shape.clone();
        shape[ax] = 0;
        for a in acts {
            if a.shape.len() != r || (0..r).any(|i| i != ax && a.shape[i] != first.shape[i]) {
                return Err(format!(
                    "input shapes {:?} and {:?} differ outside axis {ax}",
                    first.shape, a.shape
                ));
            }
            shape[ax] += a.shape[ax];
            let a = if layout == Layout::Cl {
                self.need_cl(a)?
            } else {
                self.need_plain(a)?
            };
            ts.push(a.t);
        }
        let ir_ax = if layout == Layout::Cl {
            cl_axis(ax, r)
        } else {
            ax
        };
        let t = self.tensor(out, &ir_shape(&shape, &layout), None)?;
        self.push(
            Op::Concatenation(ConcatParams {
                axis: ir_ax as u8,
                clamp: Clamp::NONE,
            }),
            ts,
            t,
        );
        Ok(Val::Act(Act { t, shape, layout }))
    }

    fn pad(&mut self, n: &pb::NodeProto, out: &str) -> R<Val> {
        let x = self.act(&n.input[0])?;
        let r = x.shape.len();
        let mode = attr_s(n, "mode").unwrap_or_else(|| "constant".into());
        if mode != "constant" {
            return Err(format!("mode {mode:?} is not supported (constant only)"));
        }
        let pads = if self.opset < 11 {
            attr_ints(n, "pads").ok_or("pads is missing")?
        } else {
            self.ints(n.input.get(1).ok_or("input pads is missing")?)?
        };
        if let Some(v) = n.input.get(2).filter(|s| !s.is_empty()) {
            if self.konst(v)?.1.iter().any(|&z| z != 0.0) {
                return Err("a constant_value other than 0 is not supported".into());
            }
        }
        if self.opset < 11 && attr_f(n, "value", 0.0) != 0.0 {
            return Err("a value other than 0 is not supported".into());
        }
        if n.input.get(3).is_some_and(|s| !s.is_empty()) {
            return Err("the axes input is not supported".into());
        }
        if pads.len() != 2 * r || pads.iter().any(|&p| p < 0) {
            return Err(format!(
                "pads {pads:?} is not {} non-negative values",
                2 * r
            ));
        }
        let mut shape = x.shape.clone();
        for i in 0..r {
            shape[i] += (pads[i] + pads[i + r]) as usize;
        }
        if matches!(x.layout, Layout::Flat(_)) {
            return Err("padding a flattened channels-first tensor is not supported".into());
        }
        let irs = ir_shape(&shape, &x.layout);
        let mut p = PadParams {
            before: [0; MAX_RANK],
            after: [0; MAX_RANK],
        };
        for i in 0..r {
            let ia = if x.layout == Layout::Cl {
                cl_axis(i, r)
            } else {
                i
            };
            p.before[ia] = pads[i] as u32;
            p.after[ia] = pads[i + r] as u32;
        }
        let t = self.tensor(out, &irs, None)?;
        self.push(Op::Pad(p), vec![x.t], t);
        Ok(Val::Act(Act {
            t,
            shape,
            layout: x.layout,
        }))
    }

    /// ReduceMean, or ReduceMax with `max` (the same axes, keepdims and layout handling).
    fn reduce_mean(&mut self, n: &pb::NodeProto, out: &str, max: bool) -> R<Val> {
        let x = self.act(&n.input[0])?;
        let r = x.shape.len();
        let axes = if self.opset >= 18 {
            match n.input.get(1).filter(|s| !s.is_empty()) {
                Some(a) => Some(self.ints(a)?),
                None => None,
            }
        } else {
            attr_ints(n, "axes")
        };
        let axes: Vec<usize> = match axes {
            Some(a) if !a.is_empty() => a.iter().map(|&v| norm_axis(v, r)).collect::<R<_>>()?,
            _ if attr_i(n, "noop_with_empty_axes", 0) != 0 => {
                return Ok(Val::Act(x));
            }
            _ => (0..r).collect(),
        };
        let keep = attr_i(n, "keepdims", 1) != 0;
        if matches!(x.layout, Layout::Flat(_)) {
            return Err("reducing a flattened channels-first tensor is not supported".into());
        }
        let cl = x.layout == Layout::Cl;
        let irs = self.g.tensors[x.t].shape.clone();
        let mut mask = 0u8;
        for &a in &axes {
            mask |= 1 << if cl { cl_axis(a, r) } else { a };
        }
        if cl && r == 3 && !keep {
            mask |= 1 << 1;
        }
        let shape: Vec<usize> = if keep {
            (0..r)
                .map(|i| if axes.contains(&i) { 1 } else { x.shape[i] })
                .collect()
        } else {
            (0..r)
                .filter(|i| !axes.contains(i))
                .map(|i| x.shape[i])
                .collect()
        };
        let ir_out: Vec<usize> = if keep {
            (0..irs.len())
                .map(|i| {
                    if mask & (1 << i) != 0 {
                        1
                    } else {
                        irs[i] as usize
                    }
                })
                .collect()
        } else {
            (0..irs.len())
                .filter(|&i| mask & (1 << i) == 0)
                .map(|i| irs[i] as usize)
                .collect()
        };
        let layout = if keep {
            x.layout.clone()
        } else if cl {
            // The remaining stored dims must be in ONNX order.
            let kept_onnx: Vec<usize> = (0..r).filter(|i| !axes.contains(i)).collect();
            let mut kept_ir: Vec<usize> = kept_onnx.iter().map(|&a| cl_axis(a, r)).collect();
            let in_order = kept_ir.windows(2).all(|w| w[0] < w[1]);
            kept_ir.sort_unstable();
            if !in_order && kept_onnx.iter().any(|&a| a >= 2 && x.shape[a] != 1) {
                return Err(format!(
                    "reducing axes {axes:?} of a channels-first tensor of shape {:?} without keepdims leaves data in another order; not supported",
                    x.shape
                ));
            }
            Layout::Plain
        } else {
            Layout::Plain
        };
        let t = self.tensor(out, &ir_out, None)?;
        if !keep && layout == Layout::Plain && numel(&ir_out) != numel(&shape) {
            return Err("internal: reduced shape mismatch".into());
        }
        let op = if max {
            Op::ReduceMax(ReduceMaxParams {
                axes_mask: mask,
                keep_dims: keep,
            })
        } else {
            Op::Mean(MeanParams {
                keep_dims: keep,
                ..params::elementwise::mean_params((1.0, 0), (1.0, 0), mask, keep)
            })
        };
        self.push(op, vec![x.t], t);
        let t = if !keep && cl && ir_out != shape {
            self.reshape(t, &shape)?
        } else {
            t
        };
        Ok(Val::Act(Act { t, shape, layout }))
    }
}

/// Imports an ONNX model (the bytes of a `.onnx` file) into the IR.
///
/// Contract: float32 inputs/outputs with static shapes; constant weights (initializers or
/// Constant nodes); default ONNX domain, opset 11 or later. Inputs and outputs of rank
/// 3/4 that pass through convolutions/pooling are channels-last in the result (see the
/// module docs). `macs` are filled in as for `.tflite` imports.
///
/// Errors: [`OnnxError::Decode`] for bytes that are not a `ModelProto`;
/// [`OnnxError::Model`] for an opset below 11, a symbolic or non-float input, or an output
/// that is not computed by an op; [`OnnxError::Node`] naming the node, its op type and
/// what is missing for everything a node asks that edgeflow cannot do.
pub fn import(bytes: &[u8]) -> Result<Graph, OnnxError> {
    import_model(bytes).map(|m| m.graph)
}

/// An imported ONNX model with the layout of its inputs and outputs.
#[derive(Clone, Debug)]
pub struct OnnxModel {
    /// The IR graph.
    pub graph: Graph,
    /// Per graph input: its ONNX shape and whether edgeflow stores it channels-last
    /// (then feed [`nchw_to_nhwc`] of the ONNX data).
    pub inputs: Vec<(Vec<usize>, bool)>,
    /// Per graph output: its ONNX shape and whether it is channels-last.
    pub outputs: Vec<(Vec<usize>, bool)>,
    /// For a QDQ model (one whose activations pass through QuantizeLinear /
    /// DequantizeLinear pairs): the int8 parameters it fixes. `graph` is then the float graph with the pairs removed and
    /// the weights dequantized; lower it with [`crate::quantize::quantize_qdq`].
    pub qdq: Option<QdqParams>,
}

/// As [`import`], also returning the ONNX shapes and layouts of inputs and outputs.
///
/// Errors: as [`import`].
pub fn import_model(bytes: &[u8]) -> Result<OnnxModel, OnnxError> {
    let mut io_in = vec![];
    let mut io_out = vec![];
    let model = tract_onnx::onnx()
        .proto_model_for_read(&mut &bytes[..])
        .map_err(OnnxError::Decode)?;
    let graph = model.graph.as_ref().ok_or(OnnxError::NoGraph)?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(1, |o| o.version);
    if opset < 11 {
        return Err(OnnxError::Opset(opset));
    }
    let mut im = Importer {
        g: Graph {
            tensors: vec![],
            inputs: vec![],
            outputs: vec![],
            ops: vec![],
            description: format!("ONNX {} {}", model.producer_name, model.producer_version)
                .trim()
                .to_string(),
        },
        vals: HashMap::new(),
        ctypes: HashMap::new(),
        qconst: HashMap::new(),
        qdq: QdqParams::default(),
        pending_w: None,
        uses: HashMap::new(),
        producer: vec![],
        opset,
        node: 0,
    };
    for t in &graph.initializer {
        let v = tensor_val(t).map_err(|reason| OnnxError::Initializer {
            name: t.name.clone(),
            reason,
        })?;
        im.vals.insert(t.name.clone(), v);
        im.ctypes.insert(t.name.clone(), t.data_type);
    }
    for n in &graph.node {
        for i in n.input.iter().filter(|s| !s.is_empty()) {
            *im.uses.entry(i.clone()).or_default() += 1;
        }
    }
    for o in &graph.output {
        *im.uses.entry(o.name.clone()).or_default() += 1;
    }
    // Graph inputs (initializers listed as inputs by older exporters are constants).
    let spatial_ops = [
        "Conv",
        "MaxPool",
        "AveragePool",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "BatchNormalization",
        "Resize",
    ];
    for vi in &graph.input {
        if im.vals.contains_key(&vi.name) {
            continue;
        }
        let bad = |reason: String| OnnxError::GraphInput {
            name: vi.name.clone(),
            reason,
        };
        let Some(pb::type_proto::Value::TensorType(tt)) =
            vi.r#type.as_ref().and_then(|t| t.value.as_ref())
        else {
            return Err(bad("not a tensor".into()));
        };
        if tt.elem_type != 1 {
            return Err(bad(format!(
                "element type {} is not float32 (1)",
                tt.elem_type
            )));
        }
        let dims = tt.shape.as_ref().ok_or_else(|| bad("no shape".into()))?;
        let shape: Vec<usize> = dims
            .dim
            .iter()
            .enumerate()
            .map(|(i, d)| match &d.value {
                Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)) if *v > 0 => Ok(*v as usize),
                Some(pb::tensor_shape_proto::dimension::Value::DimParam(p)) => Err(bad(format!(
                    "dimension {i} is symbolic ({p:?}); export with a fixed shape (e.g. batch 1, no dynamic_axes)"
                ))),
                _ => Err(bad(format!("dimension {i} is unknown or not positive"))),
            })
            .collect::<Result<_, _>>()?;
        // Through QuantizeLinear / DequantizeLinear pairs (QDQ models) to the real consumer.
        let mut names = vec![vi.name.clone()];
        let mut feeds_spatial = false;
        while let Some(name) = names.pop() {
            for n in graph.node.iter().filter(|n| n.input.first() == Some(&name)) {
                match n.op_type.as_str() {
                    "QuantizeLinear" | "DequantizeLinear" | "Identity" => {
                        names.extend(n.output.first().cloned())
                    }
                    op => feeds_spatial |= spatial_ops.contains(&op),
                }
            }
        }
        let layout = if matches!(shape.len(), 3 | 4) && feeds_spatial {
            Layout::Cl
        } else {
            Layout::Plain
        };
        let t = im
            .tensor(&vi.name, &ir_shape(&shape, &layout), None)
            .map_err(bad)?;
        im.g.inputs.push(t);
        io_in.push((shape.clone(), layout == Layout::Cl));
        im.vals
            .insert(vi.name.clone(), Val::Act(Act { t, shape, layout }));
    }
    for (i, n) in graph.node.iter().enumerate() {
        im.node = i;
        let vals = im.node(n).map_err(|reason| OnnxError::Node {
            index: i,
            name: n.name.clone(),
            op_type: n.op_type.clone(),
            reason,
        })?;
        for (name, v) in n.output.iter().zip(vals) {
            if !name.is_empty() {
                im.vals.insert(name.clone(), v);
            }
        }
    }
    for o in &graph.output {
        match im.vals.get(&o.name).cloned() {
            Some(Val::Act(a)) => {
                if matches!(a.layout, Layout::Flat(_)) {
                    return Err(OnnxError::GraphOutput {
                        name: o.name.clone(),
                        problem: OutputProblem::FlatChannelsFirst,
                    });
                }
                let a = if im.g.inputs.contains(&a.t) {
                    // An output that is an input (Identity, Dropout): a copy.
                    let s: Vec<usize> = im.g.tensors[a.t]
                        .shape
                        .iter()
                        .map(|&d| d as usize)
                        .collect();
                    let t =
                        im.tensor(&o.name, &s, None)
                            .map_err(|reason| OnnxError::OutputTensor {
                                name: o.name.clone(),
                                reason,
                            })?;
                    im.push(Op::Reshape, vec![a.t], t);
                    Act { t, ..a.clone() }
                } else {
                    a.clone()
                };
                if im.producer[a.t].is_none() {
                    return Err(OnnxError::GraphOutput {
                        name: o.name.clone(),
                        problem: OutputProblem::NotComputed,
                    });
                }
                im.g.tensors[a.t].name = o.name.clone();
                im.g.outputs.push(a.t);
                io_out.push((a.shape.clone(), a.layout == Layout::Cl));
            }
            Some(_) => {
                return Err(OnnxError::GraphOutput {
                    name: o.name.clone(),
                    problem: OutputProblem::Constant,
                })
            }
            None => {
                return Err(OnnxError::GraphOutput {
                    name: o.name.clone(),
                    problem: OutputProblem::NeverComputed,
                })
            }
        }
    }
    for i in 0..im.g.ops.len() {
        im.g.ops[i].macs = crate::macs(&im.g, &im.g.ops[i]);
    }
    // Weight-only quantization (DequantizeLinear on constants, float activations) stays a
    // float model with dequantized weights.
    let qdq = (!im.qdq.activations.is_empty()).then(|| {
        let mut q = im.qdq;
        q.nodes = graph
            .node
            .iter()
            .enumerate()
            .map(|(i, n)| format!("node {i} {:?} ({})", n.name, n.op_type))
            .collect();
        q
    });
    Ok(OnnxModel {
        graph: im.g,
        inputs: io_in,
        outputs: io_out,
        qdq,
    })
}

/// Whether `bytes` plausibly are an ONNX `ModelProto` (field 1, `ir_version`, as a varint
/// first, as every exporter writes it). Not a validation: [`import`] decides.
pub fn looks_like_onnx(bytes: &[u8]) -> bool {
    bytes.first() == Some(&0x08) && bytes.get(1).is_some_and(|&v| (3..=20).contains(&v))
}

/// The output sizes of an ONNX `Resize` given `scales` (one per dimension of `shape`),
/// refused unless every scaled size is a whole number.
///
/// ONNX maps output coordinates through the given scale, TFLite's nearest-neighbour kernel
/// through `in / out`; they agree only when `in * scale` is whole (then `out / in` is the
/// scale). Otherwise — 10 × 0.35 = 3.5 → 3 rows: ONNX samples rows 0, 2, 5, TFLite 0, 3, 6 —
/// the import would be silently different, so it is an error naming the scale and size.
fn resize_sizes_from_scales(shape: &[usize], scales: &[f32]) -> R<Vec<usize>> {
    let mut sizes = Vec::with_capacity(shape.len());
    for (&d, &s) in shape.iter().zip(scales) {
        let exact = d as f64 * f64::from(s);
        if !exact.is_finite() || exact < 0.0 || exact.fract() != 0.0 {
            return Err(format!(
                "scale {s} on a dimension of {d} gives {exact}, not a whole number of pixels: \
                 ONNX then maps coordinates by the scale and TFLite's kernel by the size ratio; \
                 give `sizes` instead, or scales that divide the input evenly"
            ));
        }
        sizes.push(exact as usize);
    }
    Ok(sizes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_scales_must_give_whole_sizes() {
        assert_eq!(
            resize_sizes_from_scales(&[1, 3, 10, 8], &[1.0, 1.0, 2.0, 0.5]).expect("whole"),
            vec![1, 3, 20, 4]
        );
        // 10 x 0.35 = 3.5: ONNX and TFLite would sample different rows.
        let e = resize_sizes_from_scales(&[1, 3, 10, 10], &[1.0, 1.0, 0.35, 0.35])
            .expect_err("not whole");
        assert!(
            e.contains("scale 0.35 on a dimension of 10") && e.contains("sizes"),
            "{e}"
        );
        assert!(resize_sizes_from_scales(&[1, 1, 4, 4], &[1.0, 1.0, f32::NAN, 1.0]).is_err());
        assert!(resize_sizes_from_scales(&[1, 1, 4, 4], &[1.0, 1.0, -1.0, 1.0]).is_err());
    }

    #[test]
    fn channels_last_permutation() {
        // [1, 2, 2, 3] NCHW: value = c*100 + h*10 + w.
        let shape = [1, 2, 2, 3];
        let v: Vec<i32> = (0..2)
            .flat_map(|c| (0..2).flat_map(move |h| (0..3).map(move |w| c * 100 + h * 10 + w)))
            .collect();
        let cl = nchw_to_nhwc(&shape, &v);
        assert_eq!(&cl[..4], &[0, 100, 1, 101]);
        assert_eq!(cl[2 * 3 * 2 - 1], 112);
        // NCL: [1, 2, 3] -> [1, 1, 3, 2].
        assert_eq!(
            nchw_to_nhwc(&[1, 2, 3], &[0, 1, 2, 10, 11, 12]),
            vec![0, 10, 1, 11, 2, 12]
        );
        assert_eq!(ir_shape(&[1, 2, 5, 7], &Layout::Cl), vec![1, 5, 7, 2]);
        assert_eq!(ir_shape(&[1, 2, 5], &Layout::Cl), vec![1, 1, 5, 2]);
        assert_eq!((cl_axis(1, 4), cl_axis(2, 4), cl_axis(3, 4)), (3, 1, 2));
    }

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast(&[2, 1, 4], &[3, 1]).expect("ok"), vec![2, 3, 4]);
        assert_eq!(broadcast(&[], &[5]).expect("ok"), vec![5]);
        assert!(broadcast(&[2, 3], &[4]).is_err());
    }

    #[test]
    fn garbage_is_a_decode_error() {
        assert!(matches!(
            import(b"\xff\xff\xff\xff"),
            Err(OnnxError::Decode(_)) | Err(OnnxError::NoGraph)
        ));
        assert!(!looks_like_onnx(b"TFL3"));
    }
}
