//! IR → `.tflite`: writes an edgeflow graph (int8 or float32, e.g. an artifact read back
//! by [`crate::load::load`]) as a TFLite flatbuffer that TFLite and TFLite Micro run with
//! the same outputs, so a model quantized by edgeflow can leave it.
//!
//! The file follows the public TFLite schema (`schema.fbs`, schema version 3): one
//! subgraph, one buffer per constant (buffer 0 is the empty sentinel), TFLite's
//! quantization parameters on every int8/int32 tensor (per-channel scales with their
//! `quantized_dimension`), and for each op its builtin code and options. edgeflow stores
//! explicit leading paddings and fused clamps; TFLite stores SAME/VALID and a fused
//! activation function, so each is mapped back (a convolution's padding that SAME cannot
//! express becomes an explicit PAD before a VALID window) and an op whose padding or clamp
//! has no TFLite form is an error. The fixed-point parameters (requantization multipliers and
//! shifts) are not written: TFLite derives them from the scales exactly as edgeflow's
//! importer does, which is what makes the round trip bit-exact.
//!
//! Field slots are written as the vtable offsets `4 + 2n` of field number `n`, the same
//! numbering [`crate::tflite`] reads.

use flatbuffers::{FlatBufferBuilder, WIPOffset};
use thiserror::Error;

use edgeflow_format::graph::{Clamp, DType, Op};

use crate::ir::{Graph, IrTensor};

/// Why a graph could not be written as `.tflite`.
#[derive(Debug, Error)]
pub enum ExportError {
    /// An op (its position and name) has no TFLite form.
    #[error("op {index} ({op}): {reason}")]
    Op {
        /// Position of the op in the graph.
        index: usize,
        /// Op name.
        op: &'static str,
        /// What cannot be expressed.
        reason: String,
    },
    /// A tensor dimension does not fit the flatbuffer's `int32` shape field.
    #[error("dimension {0} above i32::MAX")]
    Dimension(u32),
}

/// The vtable slot of field number `n`.
const fn slot(n: u16) -> u16 {
    4 + 2 * n
}

/// TFLite `TensorType`.
fn tensor_type(d: DType) -> i8 {
    match d {
        DType::F32 => 0,
        DType::I32 => 2,
        DType::I8 => 9,
    }
}

/// TFLite `ActivationFunctionType` of a fused clamp (by its real-valued bounds).
fn activation(c: &Clamp) -> Result<i8, String> {
    match (c.min_f, c.max_f) {
        (lo, hi) if lo == f32::MIN && hi == f32::MAX => Ok(0),
        (lo, hi) if lo == 0.0 && hi == f32::MAX => Ok(1),
        (lo, hi) if lo == -1.0 && hi == 1.0 => Ok(2),
        (lo, hi) if lo == 0.0 && hi == 6.0 => Ok(3),
        (lo, hi) => Err(format!(
            "fused clamp [{lo}, {hi}] is none of TFLite's fused activations (none, RELU, RELU_N1_TO_1, RELU6)"
        )),
    }
}

/// A windowed op's geometry along its two spatial axes (height, width), as edgeflow
/// stores it: input and output sizes, filter size, stride, dilation and leading pads.
#[derive(Clone, Copy, Debug)]
struct Window {
    input: [u32; 2],
    filter: [u32; 2],
    stride: [u16; 2],
    dilation: [u16; 2],
    pad: [u16; 2],
    output: [u32; 2],
}

/// One axis of a [`Window`], widened: input size, stride (0 read as 1), the dilated
/// window's extent `(filter - 1) * dilation + 1`, leading pad and output size.
struct Axis {
    input: u64,
    stride: u64,
    extent: u64,
    lead: u64,
    output: u64,
}

impl Window {
    fn axis(&self, d: usize) -> Axis {
        Axis {
            input: u64::from(self.input[d]),
            stride: u64::from(self.stride[d].max(1)),
            extent: u64::from(self.filter[d].saturating_sub(1))
                * u64::from(self.dilation[d].max(1))
                + 1,
            lead: u64::from(self.pad[d]),
            output: u64::from(self.output[d]),
        }
    }

    /// The geometry, for error messages.
    fn describe(&self) -> String {
        format!(
            "padding {:?} (input {:?}, filter {:?}, stride {:?}, output {:?})",
            self.pad, self.input, self.filter, self.stride, self.output
        )
    }

    /// TFLite `Padding` (0 SAME, 1 VALID) that reproduces edgeflow's leading pads, or an
    /// error when neither does.
    fn padding_kind(&self) -> Result<i8, String> {
        let fits = |same: bool| {
            (0..2).all(|d| {
                let a = self.axis(d);
                let (i, s, eff) = (a.input, a.stride, a.extent);
                let o = if same {
                    i.div_ceil(s)
                } else {
                    (i + s).checked_sub(eff).map_or(0, |v| v / s)
                };
                let lead = if same {
                    (o.saturating_sub(1) * s + eff).saturating_sub(i) / 2
                } else {
                    0
                };
                o == a.output && lead == a.lead
            })
        };
        if fits(false) {
            Ok(1)
        } else if fits(true) {
            Ok(0)
        } else {
            Err(format!(
                "{} is neither TFLite's SAME nor VALID",
                self.describe()
            ))
        }
    }

    /// The `[before, after]` paddings, per spatial dimension, of an explicit TFLite PAD
    /// that makes a VALID window over the padded input give `output` with edgeflow's
    /// leading pads: `before` is the leading pad, `after` is what the last window needs
    /// beyond the input and the leading pad (0 when it needs none). Errs when no such PAD
    /// exists (the output is not the VALID output size of the padded input).
    fn explicit_pads(&self) -> Result<[[u32; 2]; 2], String> {
        let mut out = [[0u32; 2]; 2];
        for (d, pads) in out.iter_mut().enumerate() {
            let a = self.axis(d);
            let need = a.output.saturating_sub(1) * a.stride + a.extent;
            let trail = need.saturating_sub(a.input + a.lead);
            let padded = a.input + a.lead + trail;
            let valid = padded.checked_sub(a.extent).map_or(0, |v| v / a.stride + 1);
            if a.output == 0 || valid != a.output {
                return Err(format!(
                    "{} is neither TFLite's SAME nor VALID, nor a PAD before a VALID window",
                    self.describe()
                ));
            }
            let to_u32 = |v: u64| u32::try_from(v).map_err(|_| format!("padding {v} above u32"));
            *pads = [to_u32(a.lead)?, to_u32(trail)?];
        }
        Ok(out)
    }
}

fn hw(t: &IrTensor) -> Result<[u32; 2], String> {
    match t.shape.as_slice() {
        [_, h, w, _] => Ok([*h, *w]),
        s => Err(format!("tensor {:?} of shape {s:?} is not NHWC", t.name)),
    }
}

/// A tensor to write: the IR's, or one the exporter adds (RESHAPE shapes, PAD paddings,
/// MEAN axes).
struct Out {
    name: String,
    dtype: DType,
    shape: Vec<i32>,
    quant: Option<crate::ir::IrQuant>,
    data: Option<Vec<u8>>,
}

/// An op to write.
struct OutOp {
    code: i32,
    inputs: Vec<i32>,
    outputs: Vec<i32>,
    /// `(BuiltinOptions union type, fields)`; each field is (field number, value).
    options: Option<(u8, Vec<(u16, Field)>)>,
}

enum Field {
    Byte(i8),
    Int(i32),
    Float(f32),
    Bool(bool),
    Ints(Vec<i32>),
}

fn i32s(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Writes `g` as a TFLite flatbuffer (file identifier `TFL3`).
///
/// Supported ops: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, AVERAGE_POOL_2D,
/// MAX_POOL_2D, ADD, MUL, RESHAPE, SOFTMAX, QUANTIZE, DEQUANTIZE, CONCATENATION, PAD,
/// MEAN, LOGISTIC, TANH, TRANSPOSE, STRIDED_SLICE, LEAKY_RELU, HARD_SWISH, MAXIMUM,
/// MINIMUM, REDUCE_MAX, RESIZE_NEAREST_NEIGHBOR — every op edgeflow runs (a SPLIT or
/// SPLIT_V was imported as STRIDED_SLICEs and is written as those).
///
/// A CONV_2D or DEPTHWISE_CONV_2D whose leading pads are neither SAME's nor VALID's (e.g.
/// PyTorch's symmetric `padding=1` under stride 2) is written as a PAD (paddings: the
/// op's leading pads, and the trailing pads that make the VALID window give the op's
/// output shape) into a new tensor with the input's quantization, then the op with VALID
/// padding; TFLite's PAD fills int8 with that zero point and f32 with 0, the values
/// edgeflow's convolutions pad with. Pools get no PAD (TFLite's pools skip padded cells,
/// a PAD would put values in them).
///
/// Errors: [`ExportError::Op`] naming the op whose padding or fused clamp TFLite cannot
/// express; [`ExportError::Dimension`] for a shape dimension above `i32::MAX`.
pub fn export_tflite(g: &Graph) -> Result<Vec<u8>, ExportError> {
    let dim = |d: u32| i32::try_from(d).map_err(|_| ExportError::Dimension(d));
    let mut tensors: Vec<Out> = Vec::with_capacity(g.tensors.len());
    for t in &g.tensors {
        tensors.push(Out {
            name: t.name.clone(),
            dtype: t.dtype,
            shape: t.shape.iter().map(|&d| dim(d)).collect::<Result<_, _>>()?,
            quant: t.quant.clone(),
            data: t.data.clone(),
        });
    }
    let add_const = |tensors: &mut Vec<Out>, name: String, shape: Vec<i32>, v: &[i32]| {
        tensors.push(Out {
            name,
            dtype: DType::I32,
            shape,
            quant: None,
            data: Some(i32s(v)),
        });
        (tensors.len() - 1) as i32
    };
    let mut ops = Vec::with_capacity(g.ops.len());
    for (index, op) in g.ops.iter().enumerate() {
        let err = |reason: String| ExportError::Op {
            index,
            op: op.op.name(),
            reason,
        };
        let x = &g.tensors[op.inputs[0]];
        let out = &g.tensors[op.output];
        let mut inputs: Vec<i32> = op.inputs.iter().map(|&i| i as i32).collect();
        let act = |c: &Clamp| activation(c).map_err(err);
        let (code, options) = match &op.op {
            Op::Conv2d(p) | Op::DepthwiseConv2d(p) => {
                let dw = matches!(op.op, Op::DepthwiseConv2d(_));
                let w = &g.tensors[op.inputs[1]];
                let f = [w.shape[1], w.shape[2]];
                let (ihw, ohw) = (hw(x).map_err(err)?, hw(out).map_err(err)?);
                let window = Window {
                    input: ihw,
                    filter: f,
                    stride: p.stride,
                    dilation: p.dilation,
                    pad: p.pad,
                    output: ohw,
                };
                let pad = match window.padding_kind() {
                    Ok(k) => k,
                    // Padding TFLite's SAME cannot express (PyTorch's symmetric
                    // `padding=1` under stride 2, say): an explicit PAD into a new
                    // tensor with the input's quantization, then a VALID window. TFLite's
                    // int8 PAD fills with the zero point (the real 0), as edgeflow's
                    // convolution pads, and f32 with 0.
                    Err(_) => {
                        let pads = window.explicit_pads().map_err(err)?;
                        let mut shape = tensors[op.inputs[0]].shape.clone();
                        for d in 0..2 {
                            let grown =
                                u64::from(ihw[d]) + u64::from(pads[d][0]) + u64::from(pads[d][1]);
                            shape[1 + d] = i32::try_from(grown).map_err(|_| {
                                err(format!("padded dimension {grown} above i32::MAX"))
                            })?;
                        }
                        let v: Vec<i32> = [[0, 0], pads[0], pads[1], [0, 0]]
                            .iter()
                            .flat_map(|&[a, b]| [a as i32, b as i32])
                            .collect();
                        let pt = add_const(
                            &mut tensors,
                            format!("{}/paddings", out.name),
                            vec![4, 2],
                            &v,
                        );
                        tensors.push(Out {
                            name: format!("{}/padded", out.name),
                            dtype: x.dtype,
                            shape,
                            quant: x.quant.clone(),
                            data: None,
                        });
                        let padded = (tensors.len() - 1) as i32;
                        ops.push(OutOp {
                            code: 34,
                            inputs: vec![inputs[0], pt],
                            outputs: vec![padded],
                            options: Some((22, vec![])),
                        });
                        inputs[0] = padded;
                        1
                    }
                };
                let a = act(&p.clamp)?;
                let mut fields = vec![
                    (0, Field::Byte(pad)),
                    (1, Field::Int(i32::from(p.stride[1]))),
                    (2, Field::Int(i32::from(p.stride[0]))),
                ];
                if dw {
                    fields.extend([
                        (3, Field::Int(i32::from(p.depth_multiplier))),
                        (4, Field::Byte(a)),
                        (5, Field::Int(i32::from(p.dilation[1]))),
                        (6, Field::Int(i32::from(p.dilation[0]))),
                    ]);
                    (4, Some((2, fields)))
                } else {
                    fields.extend([
                        (3, Field::Byte(a)),
                        (4, Field::Int(i32::from(p.dilation[1]))),
                        (5, Field::Int(i32::from(p.dilation[0]))),
                    ]);
                    (3, Some((1, fields)))
                }
            }
            Op::FullyConnected(p) => {
                let keep = out.shape.len() != 2;
                (
                    9,
                    Some((
                        8,
                        vec![(0, Field::Byte(act(&p.clamp)?)), (2, Field::Bool(keep))],
                    )),
                )
            }
            Op::AveragePool2d(p) | Op::MaxPool2d(p) => {
                let f = [u32::from(p.filter[0]), u32::from(p.filter[1])];
                let pad = Window {
                    input: hw(x).map_err(err)?,
                    filter: f,
                    stride: p.stride,
                    dilation: [1, 1],
                    pad: p.pad,
                    output: hw(out).map_err(err)?,
                }
                .padding_kind()
                .map_err(err)?;
                let code = if matches!(op.op, Op::MaxPool2d(_)) {
                    17
                } else {
                    1
                };
                (
                    code,
                    Some((
                        5,
                        vec![
                            (0, Field::Byte(pad)),
                            (1, Field::Int(i32::from(p.stride[1]))),
                            (2, Field::Int(i32::from(p.stride[0]))),
                            (3, Field::Int(i32::from(p.filter[1]))),
                            (4, Field::Int(i32::from(p.filter[0]))),
                            (5, Field::Byte(act(&p.clamp)?)),
                        ],
                    )),
                )
            }
            Op::Add(p) => (0, Some((11, vec![(0, Field::Byte(act(&p.clamp)?))]))),
            Op::Mul(p) => (18, Some((21, vec![(0, Field::Byte(act(&p.clamp)?))]))),
            Op::Reshape => {
                let shape: Vec<i32> = out
                    .shape
                    .iter()
                    .map(|&d| dim(d))
                    .collect::<Result<_, _>>()?;
                inputs.truncate(1);
                let s = add_const(
                    &mut tensors,
                    format!("{}/shape", out.name),
                    vec![shape.len() as i32],
                    &shape,
                );
                inputs.push(s);
                (22, Some((17, vec![(0, Field::Ints(shape))])))
            }
            Op::Softmax(p) => (25, Some((9, vec![(0, Field::Float(p.beta))]))),
            Op::Quantize(_) => (114, None),
            Op::Dequantize => (6, None),
            Op::Logistic(_) => (14, None),
            Op::Tanh(_) => (28, None),
            Op::Concatenation(p) => (
                2,
                Some((
                    10,
                    vec![
                        (0, Field::Int(i32::from(p.axis))),
                        (1, Field::Byte(act(&p.clamp)?)),
                    ],
                )),
            ),
            Op::Pad(p) => {
                if inputs.len() == 1 {
                    let r = x.shape.len();
                    let v: Vec<i32> = (0..r)
                        .flat_map(|d| [p.before[d] as i32, p.after[d] as i32])
                        .collect();
                    let t = add_const(
                        &mut tensors,
                        format!("{}/paddings", out.name),
                        vec![r as i32, 2],
                        &v,
                    );
                    inputs.push(t);
                }
                (34, Some((22, vec![])))
            }
            Op::Transpose(p) => {
                inputs.truncate(1);
                let r = x.shape.len();
                let perm: Vec<i32> = p.perm[..r].iter().map(|&a| i32::from(a)).collect();
                let t = add_const(
                    &mut tensors,
                    format!("{}/perm", out.name),
                    vec![r as i32],
                    &perm,
                );
                inputs.push(t);
                (39, Some((26, vec![])))
            }
            Op::StridedSlice(p) => {
                inputs.truncate(1);
                let r = x.shape.len();
                let (mut begin, mut end, mut strides) = (vec![], vec![], vec![]);
                let (mut end_mask, mut shrink) = (0i32, 0i32);
                // Dimensions of count 1 that the output shape drops are shrunk axes.
                let mut j = 0;
                for d in 0..r {
                    let (b, s, c) = (p.begin[d], p.stride[d], p.count[d] as i32);
                    let last = b + (c - 1) * s;
                    begin.push(b);
                    strides.push(s);
                    if out.shape.get(j) == Some(&(c as u32)) {
                        j += 1;
                    } else if c == 1 {
                        shrink |= 1 << d;
                    } else {
                        return Err(err(format!(
                            "output shape {:?} is not the slice's counts with dimensions of one dropped",
                            out.shape
                        )));
                    }
                    if s > 0 {
                        end.push(last + 1);
                    } else if last >= 1 {
                        end.push(last - 1);
                    } else {
                        // One past index 0 going backwards is -1, which TFLite would
                        // read as the last index: the end mask says "to the start".
                        end.push(0);
                        end_mask |= 1 << d;
                    }
                }
                if j != out.shape.len() {
                    return Err(err(format!(
                        "output shape {:?} is not the slice's counts with dimensions of one dropped",
                        out.shape
                    )));
                }
                for (what, v) in [("begin", &begin), ("end", &end), ("strides", &strides)] {
                    let t = add_const(
                        &mut tensors,
                        format!("{}/{what}", out.name),
                        vec![r as i32],
                        v,
                    );
                    inputs.push(t);
                }
                (
                    45,
                    Some((
                        32,
                        vec![
                            (0, Field::Int(0)),
                            (1, Field::Int(end_mask)),
                            (4, Field::Int(shrink)),
                        ],
                    )),
                )
            }
            Op::LeakyRelu(p) => (98, Some((75, vec![(0, Field::Float(p.alpha))]))),
            Op::HardSwish(_) => (117, None),
            Op::Maximum => (55, Some((39, vec![]))),
            Op::Minimum => (57, Some((39, vec![]))),
            Op::ReduceMax(p) => {
                inputs.truncate(1);
                let axes: Vec<i32> = (0..x.shape.len() as i32)
                    .filter(|&a| p.axes_mask & (1 << a) != 0)
                    .collect();
                let t = add_const(
                    &mut tensors,
                    format!("{}/axes", out.name),
                    vec![axes.len() as i32],
                    &axes,
                );
                inputs.push(t);
                (82, Some((27, vec![(0, Field::Bool(p.keep_dims))])))
            }
            Op::ResizeNearest(p) => {
                inputs.truncate(1);
                let [_, h, w, _] = out.shape[..] else {
                    return Err(err(format!("output shape {:?} is not NHWC", out.shape)));
                };
                let t = add_const(
                    &mut tensors,
                    format!("{}/size", out.name),
                    vec![2],
                    &[dim(h)?, dim(w)?],
                );
                inputs.push(t);
                (
                    97,
                    Some((
                        74,
                        vec![
                            (0, Field::Bool(p.align_corners)),
                            (1, Field::Bool(p.half_pixel_centers)),
                        ],
                    )),
                )
            }
            Op::Mean(p) => {
                if inputs.len() == 1 {
                    let axes: Vec<i32> = (0..x.shape.len() as i32)
                        .filter(|&a| p.axes_mask & (1 << a) != 0)
                        .collect();
                    let t = add_const(
                        &mut tensors,
                        format!("{}/axes", out.name),
                        vec![axes.len() as i32],
                        &axes,
                    );
                    inputs.push(t);
                }
                (40, Some((27, vec![(0, Field::Bool(p.keep_dims))])))
            }
        };
        ops.push(OutOp {
            code,
            inputs,
            outputs: vec![op.output as i32],
            options,
        });
    }

    let mut b = FlatBufferBuilder::with_capacity(1024);
    // Buffers: 0 is the empty sentinel, then one per constant.
    let mut buffers = vec![{
        let s = b.start_table();
        b.end_table(s)
    }];
    let mut buffer_of = vec![0u32; tensors.len()];
    for (i, t) in tensors.iter().enumerate() {
        if let Some(d) = &t.data {
            let v = b.create_vector(d);
            let s = b.start_table();
            b.push_slot_always(slot(0), v);
            buffers.push(b.end_table(s));
            buffer_of[i] = (buffers.len() - 1) as u32;
        }
    }
    let mut tensor_offs = Vec::with_capacity(tensors.len());
    for (i, t) in tensors.iter().enumerate() {
        let shape = b.create_vector(&t.shape);
        let name = b.create_string(&t.name);
        let quant = t.quant.as_ref().map(|q| {
            let sc = b.create_vector(&q.scales);
            let zp = b.create_vector(&q.zero_points);
            let s = b.start_table();
            b.push_slot_always(slot(2), sc);
            b.push_slot_always(slot(3), zp);
            b.push_slot(slot(6), q.axis as i32, 0);
            b.end_table(s)
        });
        let s = b.start_table();
        b.push_slot_always(slot(0), shape);
        b.push_slot(slot(1), tensor_type(t.dtype), 0);
        b.push_slot(slot(2), buffer_of[i], 0);
        b.push_slot_always(slot(3), name);
        if let Some(q) = quant {
            b.push_slot_always(slot(4), q);
        }
        tensor_offs.push(b.end_table(s));
    }
    let mut codes: Vec<i32> = Vec::new();
    let mut op_offs = Vec::with_capacity(ops.len());
    for o in &ops {
        let ci = match codes.iter().position(|&c| c == o.code) {
            Some(p) => p,
            None => {
                codes.push(o.code);
                codes.len() - 1
            }
        };
        let ins = b.create_vector(&o.inputs);
        let outs = b.create_vector(&o.outputs);
        let opts = o.options.as_ref().map(|(ty, fields)| {
            let vecs: Vec<Option<WIPOffset<_>>> = fields
                .iter()
                .map(|(_, f)| match f {
                    Field::Ints(v) => Some(b.create_vector(v)),
                    _ => None,
                })
                .collect();
            let s = b.start_table();
            for ((n, f), v) in fields.iter().zip(vecs) {
                match f {
                    Field::Byte(x) => b.push_slot_always(slot(*n), *x),
                    Field::Int(x) => b.push_slot_always(slot(*n), *x),
                    Field::Float(x) => b.push_slot_always(slot(*n), *x),
                    Field::Bool(x) => b.push_slot_always(slot(*n), *x),
                    Field::Ints(_) => {
                        if let Some(v) = v {
                            b.push_slot_always(slot(*n), v);
                        }
                    }
                }
            }
            (*ty, b.end_table(s))
        });
        let s = b.start_table();
        b.push_slot(slot(0), ci as u32, 0);
        b.push_slot_always(slot(1), ins);
        b.push_slot_always(slot(2), outs);
        if let Some((ty, t)) = opts {
            b.push_slot(slot(3), ty, 0);
            b.push_slot_always(slot(4), t);
        }
        op_offs.push(b.end_table(s));
    }
    let code_offs: Vec<_> = codes
        .iter()
        .map(|&c| {
            let s = b.start_table();
            b.push_slot(slot(0), c.min(127) as i8, 0);
            b.push_slot(slot(2), 1i32, 1);
            b.push_slot(slot(3), c, 0);
            b.end_table(s)
        })
        .collect();
    let tv = b.create_vector(&tensor_offs);
    let gi: Vec<i32> = g.inputs.iter().map(|&i| i as i32).collect();
    let go: Vec<i32> = g.outputs.iter().map(|&i| i as i32).collect();
    let iv = b.create_vector(&gi);
    let ov = b.create_vector(&go);
    let opv = b.create_vector(&op_offs);
    let sg_name = b.create_string("main");
    let s = b.start_table();
    b.push_slot_always(slot(0), tv);
    b.push_slot_always(slot(1), iv);
    b.push_slot_always(slot(2), ov);
    b.push_slot_always(slot(3), opv);
    b.push_slot_always(slot(4), sg_name);
    let sg = b.end_table(s);
    let sgs = b.create_vector(&[sg]);
    let cv = b.create_vector(&code_offs);
    let bv = b.create_vector(&buffers);
    let desc = b.create_string(if g.description.is_empty() {
        "edgeflow export"
    } else {
        &g.description
    });
    let s = b.start_table();
    b.push_slot(slot(0), 3u32, 0);
    b.push_slot_always(slot(1), cv);
    b.push_slot_always(slot(2), sgs);
    b.push_slot_always(slot(3), desc);
    b.push_slot_always(slot(4), bv);
    let m = b.end_table(s);
    b.finish(m, Some("TFL3"));
    Ok(b.finished_data().to_vec())
}

#[cfg(test)]
mod tests {
    use super::Window;

    #[test]
    fn pytorch_stride_two_padding_is_an_explicit_pad_before_a_valid_window() {
        // 3x3, stride 2, pads 1 on every side (PyTorch's padding=1): 12 rows give 6
        // (SAME would pad 0 before), 11 columns give 6 (SAME's own padding).
        let window = |input, output| Window {
            input,
            filter: [3, 3],
            stride: [2, 2],
            dilation: [1, 1],
            pad: [1, 1],
            output,
        };
        assert!(window([12, 11], [6, 6]).padding_kind().is_err());
        // Rows: 1 + 12 + 0 = 13 = 5 * 2 + 3; columns: 1 + 11 + 1 = 13.
        assert_eq!(
            window([12, 11], [6, 6]).explicit_pads(),
            Ok([[1, 0], [1, 1]])
        );
        // 32 -> 16 (the MobileNet-style model): PyTorch's trailing pixel is never read.
        let e = window([32, 32], [16, 16]).explicit_pads();
        assert_eq!(e, Ok([[1, 0], [1, 0]]));
        // A larger output takes more trailing padding (as edgeflow's window reads zeros
        // there); an output smaller than the padded input gives is refused, naming it.
        assert_eq!(
            window([32, 32], [17, 16]).explicit_pads(),
            Ok([[1, 2], [1, 0]])
        );
        let e = window([32, 32], [10, 16]).explicit_pads().unwrap_err();
        assert!(
            e.contains("output [10, 16]") && e.contains("nor a PAD"),
            "{e}"
        );
    }
}
