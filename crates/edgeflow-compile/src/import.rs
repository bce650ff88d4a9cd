//! `.tflite` → edgeflow IR: every op, version, option and tensor type is checked; anything
//! the run-time cannot compute exactly is an error naming the op, its index and what is
//! missing.

use edgeflow_format::graph::{
    Clamp, ConcatParams, ConvParams, DType, FullyConnectedParams, MeanParams, Op, PadParams,
    PoolParams, ReduceMaxParams, ResizeNearestParams, StridedSliceParams, TransposeParams,
    MAX_OP_INPUTS, MAX_RANK,
};
use edgeflow_nn::fixedpoint::activation_range_int8;
use edgeflow_nn::params;

use crate::error::CompileError;
use crate::ir::{Graph, IrOp, IrQuant, IrTensor, OwnedRequant};
use crate::tflite;

/// TFLite builtin operator codes edgeflow runs, with the highest op version accepted.
///
/// Versions above these add features (int16 activations, int4 weights, sparse or hybrid
/// kernels …) that the run-time does not implement; features inside accepted versions
/// are still checked op by op below.
pub const SUPPORTED_OPS: &[(i32, &str, i32)] = &[
    (0, "ADD", 5),
    (1, "AVERAGE_POOL_2D", 3),
    (2, "CONCATENATION", 4),
    (3, "CONV_2D", 8),
    (4, "DEPTHWISE_CONV_2D", 7),
    (6, "DEQUANTIZE", 6),
    (9, "FULLY_CONNECTED", 13),
    (14, "LOGISTIC", 3),
    (17, "MAX_POOL_2D", 3),
    (18, "MUL", 7),
    (22, "RESHAPE", 2),
    (25, "SOFTMAX", 3),
    (28, "TANH", 3),
    (34, "PAD", 4),
    (39, "TRANSPOSE", 6),
    (40, "MEAN", 3),
    (43, "SQUEEZE", 2),
    (45, "STRIDED_SLICE", 8),
    (49, "SPLIT", 4),
    (55, "MAXIMUM", 4),
    (57, "MINIMUM", 4),
    (65, "SLICE", 6),
    (82, "REDUCE_MAX", 3),
    (97, "RESIZE_NEAREST_NEIGHBOR", 4),
    (98, "LEAKY_RELU", 2),
    (102, "SPLIT_V", 2),
    (114, "QUANTIZE", 3),
    (117, "HARD_SWISH", 1),
];

/// A few other builtin names, so that errors about unsupported ops are readable.
fn builtin_name(code: i32) -> String {
    if let Some((_, n, _)) = SUPPORTED_OPS.iter().find(|(c, _, _)| *c == code) {
        return (*n).to_string();
    }
    let known: &[(i32, &str)] = &[
        (5, "DEPTH_TO_SPACE"),
        (7, "EMBEDDING_LOOKUP"),
        (8, "FLOOR"),
        (16, "LSTM"),
        (19, "RELU"),
        (21, "RELU6"),
        (23, "RESIZE_BILINEAR"),
        (27, "SPACE_TO_DEPTH"),
        (32, "CUSTOM"),
        (41, "SUB"),
        (42, "DIV"),
        (53, "CAST"),
        (56, "ARG_MAX"),
        (60, "PADV2"),
        (67, "TRANSPOSE_CONV"),
        (74, "SUM"),
        (75, "SQRT"),
        (76, "RSQRT"),
        (83, "PACK"),
        (88, "UNPACK"),
        (126, "BATCH_MATMUL"),
    ];
    known
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, n)| (*n).to_string())
        .unwrap_or_else(|| format!("builtin #{code}"))
}

/// Reads a `.tflite` buffer into the IR.
pub fn import(bytes: &[u8]) -> Result<Graph, CompileError> {
    let model = tflite::parse(bytes)?;
    let subgraphs = model.subgraphs().ok_or(CompileError::NoSubgraph)?;
    if subgraphs.len() != 1 {
        return Err(CompileError::Subgraphs(subgraphs.len()));
    }
    let sg = subgraphs.get(0);
    let buffers = model.buffers();
    let codes = model.operator_codes();

    let fb_tensors = sg.tensors().ok_or(CompileError::NoTensors)?;
    let mut tensors = Vec::with_capacity(fb_tensors.len());
    for (i, t) in fb_tensors.iter().enumerate() {
        tensors.push(import_tensor(i, &t, buffers.as_ref())?);
    }
    let index = |v: i32, role: &'static str| -> Result<usize, CompileError> {
        usize::try_from(v)
            .ok()
            .filter(|&i| i < tensors.len())
            .ok_or(CompileError::MissingTensor { role, index: v })
    };
    let inputs = sg
        .inputs()
        .map(|v| {
            v.iter()
                .map(|i| index(i, "graph input"))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    let outputs = sg
        .outputs()
        .map(|v| {
            v.iter()
                .map(|i| index(i, "graph output"))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();

    let mut ops = Vec::new();
    if let Some(fb_ops) = sg.operators() {
        for (op_index, op) in fb_ops.iter().enumerate() {
            let code_index = op.opcode_index() as usize;
            let code = codes
                .as_ref()
                .filter(|c| code_index < c.len())
                .map(|c| c.get(code_index))
                .ok_or_else(|| CompileError::Op {
                    index: op_index,
                    op: "?".into(),
                    reason: format!("operator code index {code_index} does not exist"),
                })?;
            let builtin = code.builtin_code();
            let version = code.version();
            let name = if builtin == 32 {
                format!("CUSTOM({})", code.custom_code().unwrap_or("?"))
            } else {
                builtin_name(builtin)
            };
            let err = |reason: String| CompileError::Op {
                index: op_index,
                op: format!("{name} v{version}"),
                reason,
            };
            let Some(&(_, _, max_version)) = SUPPORTED_OPS.iter().find(|(c, _, _)| *c == builtin)
            else {
                let list: Vec<&str> = SUPPORTED_OPS.iter().map(|(_, n, _)| *n).collect();
                return Err(err(format!(
                    "operator not supported; edgeflow runs {}",
                    list.join(", ")
                )));
            };
            if version > max_version {
                return Err(err(format!(
                    "version {version} not supported (highest supported: {max_version})"
                )));
            }
            let mut ins = Vec::new();
            if let Some(v) = op.inputs() {
                for i in v.iter() {
                    ins.push(if i < 0 {
                        None
                    } else {
                        Some(index(i, "op input").map_err(|e| err(e.to_string()))?)
                    });
                }
            }
            let outs = op
                .outputs()
                .map(|v| {
                    v.iter()
                        .map(|i| index(i, "op output"))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()
                .map_err(|e| err(e.to_string()))?
                .unwrap_or_default();
            if op.intermediates().is_some_and(|v| !v.is_empty()) {
                return Err(err("intermediate tensors are not supported".into()));
            }
            if builtin == 49 || builtin == 102 {
                // SPLIT / SPLIT_V: one STRIDED_SLICE per output (the bytes move
                // unchanged, as TFLite's reference kernels move them).
                let num_splits = op.builtin_options().map_or(0, |o| o.int(0, 0));
                let lowered = if builtin == 49 {
                    lower_split(num_splits, &ins, &outs, &tensors)
                } else {
                    lower_split_v(num_splits, &ins, &outs, &tensors)
                };
                for lowered in lowered.map_err(err)? {
                    ops.push(IrOp {
                        source_index: op_index as u32,
                        ..lowered
                    });
                }
                continue;
            }
            let lowered = lower(builtin, &op, &ins, &outs, &tensors).map_err(err)?;
            ops.push(IrOp {
                source_index: op_index as u32,
                ..lowered
            });
        }
    }
    let name = model.description().unwrap_or("").to_string();
    Ok(Graph {
        tensors,
        inputs,
        outputs,
        ops,
        description: name,
    })
}

fn import_tensor(
    i: usize,
    t: &tflite::Tensor<'_>,
    buffers: Option<&flatbuffers::Vector<'_, flatbuffers::ForwardsUOffset<tflite::Buffer<'_>>>>,
) -> Result<IrTensor, CompileError> {
    let name = t.name().unwrap_or("").to_string();
    let bad = |reason: String| CompileError::Tensor {
        index: i,
        name: name.clone(),
        reason,
    };
    let dtype = match t.tensor_type() {
        0 => DType::F32,
        2 => DType::I32,
        9 => DType::I8,
        other => {
            let n = match other {
                1 => "FLOAT16",
                3 => "UINT8",
                4 => "INT64",
                5 => "STRING",
                6 => "BOOL",
                7 => "INT16",
                10 => "FLOAT64",
                17 => "INT4",
                _ => "an unsupported type",
            };
            return Err(bad(format!(
                "element type {n} ({other}) is not supported; edgeflow handles FLOAT32, INT8 and INT32"
            )));
        }
    };
    if t.is_sparse() {
        return Err(bad("sparse tensors are not supported".into()));
    }
    if t.is_variable() {
        return Err(bad("variable (stateful) tensors are not supported".into()));
    }
    let mut shape = Vec::new();
    if let Some(s) = t.shape() {
        for d in s.iter() {
            if d <= 0 {
                return Err(bad(format!(
                    "dimension {d} is not positive (dynamic shapes are not supported)"
                )));
            }
            shape.push(d as u32);
        }
    }
    // Every size below is computed from this one checked figure: offsets in the
    // artifact are u32, so a tensor above 4 GiB can never be placed.
    let tensor_bytes = crate::ir::shape_bytes(&shape, dtype)
        .filter(|&n| u32::try_from(n).is_ok())
        .ok_or_else(|| {
            bad(format!(
                "shape {shape:?} of {dtype:?} overflows: more than 4 GiB (the artifact's offsets are 32-bit)"
            ))
        })?;
    if shape.len() > MAX_RANK {
        return Err(bad(format!(
            "rank {} exceeds the maximum of {MAX_RANK}",
            shape.len()
        )));
    }
    let quant = match t.quantization() {
        Some(q) if q.scale().is_some_and(|s| !s.is_empty()) => {
            if q.details_type() != 0 {
                return Err(bad("custom quantization details are not supported".into()));
            }
            let mut scales: Vec<f32> = q.scale().map(|v| v.iter().collect()).unwrap_or_default();
            let mut zero_points: Vec<i64> = q
                .zero_point()
                .map(|v| v.iter().collect())
                .unwrap_or_default();
            // One zero point for several per-channel scales (older converters): TFLite
            // Micro's per-channel kernels never index the zero points per channel, so the
            // one value holds for every channel.
            if zero_points.len() == 1 && scales.len() > 1 {
                zero_points = vec![zero_points[0]; scales.len()];
            }
            if zero_points.len() != scales.len() && !zero_points.is_empty() {
                return Err(bad(format!(
                    "{} scales but {} zero points",
                    scales.len(),
                    zero_points.len()
                )));
            }
            let mut axis = q.quantized_dimension();
            if scales.len() > 1
                && (axis < 0
                    || axis as usize >= shape.len()
                    || shape[axis as usize] as usize != scales.len())
            {
                if dtype != DType::I32 {
                    return Err(bad(format!(
                        "{} per-channel scales do not match dimension {axis} of shape {shape:?}",
                        scales.len()
                    )));
                }
                // An int32 tensor (a bias) whose per-channel parameters name a dimension it
                // does not have, as older converters wrote them (the filter's quantized
                // dimension, 3 for depthwise). TFLite Micro never reads an int32 tensor's
                // quantization (the bias is added as stored; its scale is implied by
                // input scale × filter scale), so neither does edgeflow: one per-tensor
                // record is kept.
                scales.truncate(1);
                zero_points.truncate(1);
                axis = 0;
            }
            // int8 zero points lie in the int8 range (TFLite's spec); any other must fit an
            // i32 that can be negated (the requantization stores -zero_point).
            let zp_ok = |z: &i64| match dtype {
                DType::I8 => (-128..=127).contains(z),
                _ => (-i64::from(i32::MAX)..=i64::from(i32::MAX)).contains(z),
            };
            if let Some(z) = zero_points.iter().find(|z| !zp_ok(z)) {
                return Err(bad(format!(
                    "zero point {z} is outside the range of a {dtype:?} quantization"
                )));
            }
            if scales.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
                return Err(bad(
                    "a quantization scale is not a positive finite number".into()
                ));
            }
            Some(IrQuant {
                scales,
                zero_points: if zero_points.is_empty() {
                    vec![0]
                } else {
                    zero_points
                },
                axis: axis.max(0) as u32,
            })
        }
        _ => None,
    };
    if dtype == DType::I8 && quant.is_none() {
        return Err(bad("int8 tensor without quantization parameters".into()));
    }
    let data = match buffers {
        Some(b) if t.buffer() != 0 => {
            let bi = t.buffer() as usize;
            if bi >= b.len() {
                return Err(bad(format!("buffer {bi} does not exist")));
            }
            let buf = b.get(bi);
            if buf.offset() != 0 || buf.size() != 0 {
                return Err(bad(
                    "external buffer data (models over 2 GB) is not supported".into(),
                ));
            }
            match buf.data() {
                Some(d) if !d.is_empty() => {
                    let expected = tensor_bytes;
                    if d.len() != expected {
                        return Err(bad(format!(
                            "constant data has {} bytes, shape {shape:?} of {dtype:?} needs {expected}",
                            d.len()
                        )));
                    }
                    Some(d.bytes().to_vec())
                }
                _ => None,
            }
        }
        _ => None,
    };
    Ok(IrTensor {
        index: i as u32,
        name,
        dtype,
        shape,
        quant,
        data,
    })
}

type Lowered = Result<IrOp, String>;

fn fused(act: i8) -> Result<(Option<f32>, Option<f32>), String> {
    Ok(match act {
        0 => (None, None),
        1 => (Some(0.0), None),
        2 => (Some(-1.0), Some(1.0)),
        3 => (Some(0.0), Some(6.0)),
        4 => return Err("fused activation TANH is not supported".into()),
        5 => return Err("fused activation SIGN_BIT is not supported".into()),
        other => return Err(format!("unknown fused activation {other}")),
    })
}

fn clamp_for(act: i8, out: &IrTensor) -> Result<Clamp, String> {
    let (lo, hi) = fused(act)?;
    Ok(clamp_range(lo, hi, out))
}

/// The clamp of a fused activation with real bounds `lo..hi` (`None`: unbounded) for an
/// output tensor: int8 bounds as TFLite's `CalculateActivationRangeQuantized`.
fn clamp_range(lo: Option<f32>, hi: Option<f32>, out: &IrTensor) -> Clamp {
    let (min_q, max_q) = match &out.quant {
        Some(q) if out.dtype == DType::I8 => {
            activation_range_int8(lo, hi, q.scales[0], q.zero_points[0] as i32)
        }
        _ => (-128, 127),
    };
    Clamp {
        min_q,
        max_q,
        min_f: lo.unwrap_or(f32::MIN),
        max_f: hi.unwrap_or(f32::MAX),
    }
}

/// The same fused activation re-derived for a (newly quantized) output tensor.
fn reclamp(c: &Clamp, out: &IrTensor) -> Clamp {
    let lo = (c.min_f != f32::MIN).then_some(c.min_f);
    let hi = (c.max_f != f32::MAX).then_some(c.max_f);
    clamp_range(lo, hi, out)
}

/// Re-derives every fixed-point parameter of `ir` from the quantization now attached to
/// its tensors, with the same derivations the importer uses for an int8 `.tflite`
/// (TFLite Micro's `Prepare`). Used by the quantizer after it assigns scales and zero
/// points to a float graph; the op's real-valued parameters (strides, paddings, fused
/// activation bounds, softmax beta, reduction axes) are kept.
///
/// Errors: a string naming what is inconsistent (the caller adds the op).
pub(crate) fn derive_int8(ir: &IrOp, tensors: &[IrTensor]) -> Result<IrOp, String> {
    let t = |i: usize| -> Result<&IrTensor, String> {
        ir.inputs
            .get(i)
            .map(|&k| &tensors[k])
            .ok_or_else(|| format!("input {i} is missing"))
    };
    let out = &tensors[ir.output];
    let x = t(0)?;
    let mut new = ir.clone();
    new.requant = None;
    let filter_scales = |w: &IrTensor| -> Result<Vec<f32>, String> {
        w.quant
            .as_ref()
            .map(|q| q.scales.clone())
            .ok_or_else(|| "weights are not quantized".to_string())
    };
    new.op = match ir.op {
        Op::Conv2d(p) | Op::DepthwiseConv2d(p) => {
            new.requant = Some(conv_requant(x, &filter_scales(t(1)?)?, out));
            let p = ConvParams {
                clamp: reclamp(&p.clamp, out),
                requant: None,
                ..p
            };
            if matches!(ir.op, Op::Conv2d(_)) {
                Op::Conv2d(p)
            } else {
                Op::DepthwiseConv2d(p)
            }
        }
        Op::FullyConnected(p) => {
            new.requant = Some(conv_requant(x, &filter_scales(t(1)?)?, out));
            Op::FullyConnected(FullyConnectedParams {
                clamp: reclamp(&p.clamp, out),
                requant: None,
            })
        }
        Op::AveragePool2d(p) => Op::AveragePool2d(PoolParams {
            clamp: reclamp(&p.clamp, out),
            ..p
        }),
        Op::MaxPool2d(p) => Op::MaxPool2d(PoolParams {
            clamp: reclamp(&p.clamp, out),
            ..p
        }),
        Op::Add(p) => Op::Add(params::elementwise::add_params(
            scale_zp(x),
            scale_zp(t(1)?),
            scale_zp(out),
            reclamp(&p.clamp, out),
        )),
        Op::Mul(p) => Op::Mul(params::elementwise::mul_params(
            scale_zp(x),
            scale_zp(t(1)?),
            scale_zp(out),
            reclamp(&p.clamp, out),
        )),
        Op::Softmax(p) => Op::Softmax(params::elementwise::softmax_params(p.beta, scale_zp(x).0)),
        Op::Quantize(_) => Op::Quantize(params::elementwise::quantize_params(
            scale_zp(x),
            scale_zp(out),
        )),
        Op::Concatenation(p) => Op::Concatenation(ConcatParams {
            axis: p.axis,
            clamp: reclamp(&p.clamp, out),
        }),
        Op::Mean(p) => Op::Mean(params::elementwise::mean_params(
            scale_zp(x),
            scale_zp(out),
            p.axes_mask,
            p.keep_dims,
        )),
        Op::Logistic(_) => {
            let (s, z) = scale_zp(x);
            Op::Logistic(params::elementwise::logistic_params(s, z))
        }
        Op::Tanh(_) => {
            let (s, z) = scale_zp(x);
            Op::Tanh(params::elementwise::tanh_params(s, z))
        }
        Op::LeakyRelu(p) => Op::LeakyRelu(params::elementwise::leaky_relu_params(
            p.alpha,
            scale_zp(x),
            scale_zp(out),
        )),
        Op::HardSwish(_) => Op::HardSwish(params::elementwise::hard_swish_params(
            scale_zp(x),
            scale_zp(out),
        )),
        other @ (Op::Reshape
        | Op::Dequantize
        | Op::Pad(_)
        | Op::Transpose(_)
        | Op::StridedSlice(_)
        | Op::Maximum
        | Op::Minimum
        | Op::ReduceMax(_)
        | Op::ResizeNearest(_)) => other,
    };
    Ok(new)
}

/// TFLite's output size and leading padding for one spatial dimension.
fn padding(
    same: bool,
    input: u32,
    filter: u32,
    stride: u32,
    dilation: u32,
    output: u32,
) -> Result<u16, String> {
    // u64: the u32 operands cannot overflow these products and sums.
    let (input, filter, stride, dilation) = (
        u64::from(input),
        u64::from(filter),
        u64::from(stride.max(1)),
        u64::from(dilation),
    );
    let eff = filter.saturating_sub(1) * dilation + 1;
    let expected = if same {
        input.div_ceil(stride)
    } else {
        (input + stride).checked_sub(eff).map_or(0, |v| v / stride)
    };
    let output = u64::from(output);
    if expected != output {
        return Err(format!(
            "output size {output} does not match input {input}, filter {filter}, stride {stride}, dilation {dilation} ({} padding gives {expected})",
            if same { "SAME" } else { "VALID" }
        ));
    }
    if !same {
        return Ok(0);
    }
    let total = (output.saturating_sub(1) * stride + eff).saturating_sub(input);
    u16::try_from(total / 2).map_err(|_| "padding too large".to_string())
}

fn padding_kind(p: i8) -> Result<bool, String> {
    match p {
        0 => Ok(true),
        1 => Ok(false),
        other => Err(format!("unknown padding {other}")),
    }
}

fn positive_u16(v: i32, what: &str) -> Result<u16, String> {
    u16::try_from(v)
        .ok()
        .filter(|&v| v > 0)
        .ok_or_else(|| format!("{what} {v} must be a positive number below 65536"))
}

fn scale_zp(t: &IrTensor) -> (f32, i32) {
    t.quant
        .as_ref()
        .map_or((1.0, 0), |q| (q.scales[0], q.zero_points[0] as i32))
}

fn lower(
    builtin: i32,
    op: &tflite::Operator<'_>,
    ins: &[Option<usize>],
    outs: &[usize],
    tensors: &[IrTensor],
) -> Lowered {
    let opts = op.builtin_options();
    let byte = |n: u16, d: i8| opts.map_or(d, |o| o.byte(n, d));
    let int = |n: u16, d: i32| opts.map_or(d, |o| o.int(n, d));
    if outs.len() != 1 {
        return Err(format!("{} outputs; exactly 1 is supported", outs.len()));
    }
    let out = &tensors[outs[0]];
    if out.data.is_some() {
        return Err("output tensor has constant data".into());
    }
    let input = |i: usize| -> Result<&IrTensor, String> {
        ins.get(i)
            .copied()
            .flatten()
            .map(|t| &tensors[t])
            .ok_or_else(|| format!("required input {i} is missing"))
    };
    let x = input(0)?;
    let int8 = x.dtype == DType::I8;
    let same_types = |ts: &[&IrTensor]| -> Result<(), String> {
        for t in ts {
            if t.dtype != x.dtype {
                return Err(format!(
                    "tensor {} ({}) is {:?} but the op input is {:?}",
                    t.index, t.name, t.dtype, x.dtype
                ));
            }
        }
        if !matches!(x.dtype, DType::I8 | DType::F32) {
            return Err(format!(
                "{:?} inputs are not supported (int8 or float32 only)",
                x.dtype
            ));
        }
        Ok(())
    };
    let per_tensor = |ts: &[&IrTensor]| -> Result<(), String> {
        for t in ts {
            if let Some(q) = &t.quant {
                if q.scales.len() != 1 && t.dtype == DType::I8 {
                    return Err(format!(
                        "tensor {} ({}) must be quantized per tensor",
                        t.index, t.name
                    ));
                }
            }
        }
        Ok(())
    };
    let mut ir = IrOp::new(vec![ins[0].unwrap_or(0)], outs[0]);
    let inputs_of = |n: usize| -> Vec<usize> { ins.iter().take(n).flatten().copied().collect() };

    let (op, requant) = match builtin {
        3 | 4 => {
            let depthwise = builtin == 4;
            let w = input(1)?;
            let bias = ins.get(2).copied().flatten().map(|b| &tensors[b]);
            same_types(&[w, out])?;
            per_tensor(&[x, out])?;
            if x.shape.len() != 4 || w.shape.len() != 4 || out.shape.len() != 4 {
                return Err("input, filter and output must be 4-D (NHWC)".into());
            }
            if w.data.is_none() {
                return Err("non-constant filters are not supported".into());
            }
            let (o_axis, in_c, out_c) = (if depthwise { 3 } else { 0 }, x.shape[3], out.shape[3]);
            let depth_multiplier = if depthwise {
                if w.shape[0] != 1 || w.shape[3] != out_c || out_c % in_c != 0 {
                    return Err(format!(
                        "depthwise filter {:?} does not fit input channels {in_c} and output channels {out_c}",
                        w.shape
                    ));
                }
                let m = out_c / in_c;
                let opt = int(3, 0);
                if opt != 0 && opt as u32 != m {
                    return Err(format!(
                        "depth_multiplier option {opt} disagrees with the shapes ({m})"
                    ));
                }
                m
            } else {
                if w.shape[3] != in_c {
                    return Err(format!(
                        "grouped convolution (filter expects {} input channels, input has {in_c}) is not supported",
                        w.shape[3]
                    ));
                }
                if w.shape[0] != out_c {
                    return Err(format!(
                        "filter has {} output channels, output has {out_c}",
                        w.shape[0]
                    ));
                }
                1
            };
            let (act_slot, dil_slot) = if depthwise { (4, 5) } else { (3, 4) };
            let same = padding_kind(byte(0, 0))?;
            let stride = [
                positive_u16(int(2, 1), "stride_h")?,
                positive_u16(int(1, 1), "stride_w")?,
            ];
            let dilation = [
                positive_u16(int(dil_slot + 1, 1), "dilation_h")?,
                positive_u16(int(dil_slot, 1), "dilation_w")?,
            ];
            let (kh, kw) = (w.shape[1], w.shape[2]);
            let pad = [
                padding(
                    same,
                    x.shape[1],
                    kh,
                    stride[0] as u32,
                    dilation[0] as u32,
                    out.shape[1],
                )?,
                padding(
                    same,
                    x.shape[2],
                    kw,
                    stride[1] as u32,
                    dilation[1] as u32,
                    out.shape[2],
                )?,
            ];
            if x.shape[0] != out.shape[0] {
                return Err("batch sizes of input and output differ".into());
            }
            let requant = if int8 {
                let wq = w.quant.as_ref().ok_or("int8 filter without quantization")?;
                if wq.zero_points.iter().any(|&z| z != 0) {
                    return Err("int8 filter zero points must be 0 (symmetric)".into());
                }
                if wq.scales.len() > 1 && wq.axis != o_axis {
                    return Err(format!(
                        "per-channel filter quantized on axis {} (expected {o_axis})",
                        wq.axis
                    ));
                }
                Some(conv_requant(x, &wq.scales, out))
            } else {
                None
            };
            if let Some(b) = bias {
                check_bias(b, int8, out_c)?;
            }
            ir.inputs = inputs_of(3);
            ir.macs = out
                .shape
                .iter()
                .chain([kh, kw, if depthwise { 1 } else { in_c }].iter())
                .try_fold(1u64, |n, &d| n.checked_mul(u64::from(d)))
                .ok_or("the MAC count overflows u64")?;
            let p = ConvParams {
                stride,
                dilation,
                pad,
                depth_multiplier: depth_multiplier as u16,
                clamp: clamp_for(byte(act_slot, 0), out)?,
                requant: None,
            };
            (
                if depthwise {
                    Op::DepthwiseConv2d(p)
                } else {
                    Op::Conv2d(p)
                },
                requant,
            )
        }
        9 => {
            let w = input(1)?;
            let bias = ins.get(2).copied().flatten().map(|b| &tensors[b]);
            same_types(&[w, out])?;
            per_tensor(&[x, out])?;
            if byte(1, 0) != 0 {
                return Err("shuffled weights format is not supported".into());
            }
            if byte(3, 0) != 0 {
                return Err("asymmetric_quantize_inputs (hybrid) is not supported".into());
            }
            if w.shape.len() != 2 {
                return Err(format!("weights must be 2-D [out, in], got {:?}", w.shape));
            }
            if w.data.is_none() {
                return Err("non-constant weights are not supported".into());
            }
            let (units, depth) = (w.shape[0], w.shape[1]);
            let n_in: u64 = x.shape.iter().map(|&d| d as u64).product();
            if n_in % depth as u64 != 0 {
                return Err(format!(
                    "input of {n_in} elements is not a multiple of the {depth} input features"
                ));
            }
            let rows = n_in / depth as u64;
            let n_out: u64 = out.shape.iter().map(|&d| d as u64).product();
            if Some(n_out) != rows.checked_mul(u64::from(units)) || out.shape.last() != Some(&units)
            {
                return Err(format!(
                    "output shape {:?} does not match {rows} rows x {units} units",
                    out.shape
                ));
            }
            let requant = if int8 {
                let wq = w
                    .quant
                    .as_ref()
                    .ok_or("int8 weights without quantization")?;
                if wq.zero_points.iter().any(|&z| z != 0) {
                    return Err("int8 weight zero points must be 0 (symmetric)".into());
                }
                if wq.scales.len() > 1 && wq.axis != 0 {
                    return Err(format!(
                        "per-channel weights quantized on axis {} (expected 0)",
                        wq.axis
                    ));
                }
                Some(conv_requant(x, &wq.scales, out))
            } else {
                None
            };
            if let Some(b) = bias {
                check_bias(b, int8, units)?;
            }
            ir.inputs = inputs_of(3);
            ir.macs = rows
                .checked_mul(u64::from(units))
                .and_then(|n| n.checked_mul(u64::from(depth)))
                .ok_or("the MAC count overflows u64")?;
            (
                Op::FullyConnected(FullyConnectedParams {
                    clamp: clamp_for(byte(0, 0), out)?,
                    requant: None,
                }),
                requant,
            )
        }
        1 | 17 => {
            same_types(&[out])?;
            per_tensor(&[x, out])?;
            if x.shape.len() != 4 || out.shape.len() != 4 {
                return Err("input and output must be 4-D (NHWC)".into());
            }
            if int8 && scale_zp(x) != scale_zp(out) {
                return Err("int8 pooling needs identical input and output quantization".into());
            }
            let same = padding_kind(byte(0, 0))?;
            let stride = [
                positive_u16(int(2, 1), "stride_h")?,
                positive_u16(int(1, 1), "stride_w")?,
            ];
            let filter = [
                positive_u16(int(4, 1), "filter_height")?,
                positive_u16(int(3, 1), "filter_width")?,
            ];
            let pad = [
                padding(
                    same,
                    x.shape[1],
                    filter[0] as u32,
                    stride[0] as u32,
                    1,
                    out.shape[1],
                )?,
                padding(
                    same,
                    x.shape[2],
                    filter[1] as u32,
                    stride[1] as u32,
                    1,
                    out.shape[2],
                )?,
            ];
            let p = PoolParams {
                filter,
                stride,
                pad,
                clamp: clamp_for(byte(5, 0), out)?,
            };
            (
                if builtin == 1 {
                    Op::AveragePool2d(p)
                } else {
                    Op::MaxPool2d(p)
                },
                None,
            )
        }
        0 | 18 => {
            let y = input(1)?;
            same_types(&[y, out])?;
            per_tensor(&[x, y, out])?;
            ir.inputs = inputs_of(2);
            let clamp = clamp_for(byte(0, 0), out)?;
            if builtin == 0 {
                (
                    Op::Add(params::elementwise::add_params(
                        scale_zp(x),
                        scale_zp(y),
                        scale_zp(out),
                        clamp,
                    )),
                    None,
                )
            } else {
                (
                    Op::Mul(params::elementwise::mul_params(
                        scale_zp(x),
                        scale_zp(y),
                        scale_zp(out),
                        clamp,
                    )),
                    None,
                )
            }
        }
        22 | 43 => {
            if x.dtype != out.dtype {
                return Err("input and output types differ".into());
            }
            if crate::ir::shape_elements(&x.shape) != crate::ir::shape_elements(&out.shape) {
                return Err(format!(
                    "output shape {:?} does not hold the {:?} input's elements",
                    out.shape, x.shape
                ));
            }
            (Op::Reshape, None)
        }
        39 => {
            movement_types(x, out)?;
            let perm = const_i32s(input(1)?, "perm")?;
            let rank = x.shape.len();
            if perm.len() != rank || out.shape.len() != rank {
                return Err(format!(
                    "perm {perm:?} does not match the input rank {rank} (output shape {:?})",
                    out.shape
                ));
            }
            let mut p = TransposeParams {
                perm: core::array::from_fn(|i| i as u8),
            };
            let mut seen = [false; MAX_RANK];
            for (i, &a) in perm.iter().enumerate() {
                let a = usize::try_from(a)
                    .ok()
                    .filter(|&a| a < rank && !seen[a])
                    .ok_or_else(|| format!("perm {perm:?} is not a permutation of 0..{rank}"))?;
                seen[a] = true;
                if out.shape[i] != x.shape[a] {
                    return Err(format!(
                        "output shape {:?} is not the input shape {:?} permuted by {perm:?}",
                        out.shape, x.shape
                    ));
                }
                p.perm[i] = a as u8;
            }
            (Op::Transpose(p), None)
        }
        45 | 65 => {
            movement_types(x, out)?;
            let rank = x.shape.len();
            let begin = const_i32s(input(1)?, "begin")?;
            let end = const_i32s(input(2)?, if builtin == 45 { "end" } else { "size" })?;
            let strides = if builtin == 45 {
                const_i32s(input(3)?, "strides")?
            } else {
                vec![1; rank]
            };
            if begin.len() != rank || end.len() != rank || strides.len() != rank {
                return Err(format!(
                    "begin, end and strides must have one entry per input dimension ({rank})"
                ));
            }
            let (mut bm, mut em, mut sm) = (0, 0, 0);
            if builtin == 45 {
                (bm, em, sm) = (int(0, 0), int(1, 0), int(4, 0));
                if int(2, 0) != 0 || int(3, 0) != 0 {
                    return Err("ellipsis_mask and new_axis_mask are not supported".into());
                }
            }
            let mut p = StridedSliceParams {
                begin: [0; MAX_RANK],
                stride: [1; MAX_RANK],
                count: [1; MAX_RANK],
            };
            let mut kept = Vec::new();
            for d in 0..rank {
                let size = i64::from(x.shape[d]);
                let (b, st) = (i64::from(begin[d]), i64::from(strides[d]));
                let (start, count) = if builtin == 65 {
                    // SLICE: begin and size (-1: to the end), as TFLite's `GetBeginAndSizeVectors`.
                    let n = if end[d] == -1 {
                        size - b
                    } else {
                        i64::from(end[d])
                    };
                    if b < 0 || n < 0 || b + n > size {
                        return Err(format!(
                            "slice begin {b}, size {} outside dimension {d} of size {size}",
                            end[d]
                        ));
                    }
                    (b, n)
                } else {
                    if st == 0 {
                        return Err(format!("stride of dimension {d} is 0"));
                    }
                    slice_range(
                        b,
                        i64::from(end[d]),
                        st,
                        size,
                        bm >> d & 1 != 0,
                        em >> d & 1 != 0,
                        sm >> d & 1 != 0,
                        byte(5, 0) != 0,
                    )
                };
                if count <= 0 {
                    return Err(format!(
                        "the slice of dimension {d} is empty (edgeflow has no empty tensors)"
                    ));
                }
                if sm >> d & 1 == 0 {
                    kept.push(count as u32);
                }
                p.begin[d] = start as i32;
                p.stride[d] = st as i32;
                p.count[d] = count as u32;
            }
            if kept != out.shape {
                return Err(format!(
                    "output shape {:?} is not the slice's {kept:?}",
                    out.shape
                ));
            }
            (Op::StridedSlice(p), None)
        }
        25 => {
            same_types(&[out])?;
            per_tensor(&[x, out])?;
            let beta = opts.map_or(1.0, |o| o.float(0, 1.0));
            (
                Op::Softmax(params::elementwise::softmax_params(beta, scale_zp(x).0)),
                None,
            )
        }
        114 => {
            if out.dtype != DType::I8 || !matches!(x.dtype, DType::F32 | DType::I8) {
                return Err(format!(
                    "QUANTIZE from {:?} to {:?} is not supported (float32 or int8 to int8 only)",
                    x.dtype, out.dtype
                ));
            }
            per_tensor(&[x, out])?;
            (
                Op::Quantize(params::elementwise::quantize_params(
                    scale_zp(x),
                    scale_zp(out),
                )),
                None,
            )
        }
        6 => {
            if x.dtype != DType::I8 || out.dtype != DType::F32 {
                return Err(format!(
                    "DEQUANTIZE from {:?} to {:?} is not supported (int8 to float32 only)",
                    x.dtype, out.dtype
                ));
            }
            per_tensor(&[x])?;
            (Op::Dequantize, None)
        }
        2 => {
            let all: Vec<&IrTensor> = ins.iter().flatten().map(|&i| &tensors[i]).collect();
            if all.len() > MAX_OP_INPUTS {
                return Err(format!(
                    "{} inputs exceed the run-time limit of {MAX_OP_INPUTS}",
                    all.len()
                ));
            }
            same_types(&all)?;
            same_types(&[out])?;
            per_tensor(&all)?;
            let rank = out.shape.len() as i32;
            let mut axis = int(0, 0);
            if axis < 0 {
                axis += rank;
            }
            if axis < 0 || axis >= rank {
                return Err(format!("axis {} out of range for rank {rank}", int(0, 0)));
            }
            if byte(1, 0) != 0 {
                return Err("a fused activation on CONCATENATION is not supported (TFLite Micro rejects it too)".into());
            }
            ir.inputs = ins.iter().flatten().copied().collect();
            (
                Op::Concatenation(ConcatParams {
                    axis: axis as u8,
                    clamp: clamp_for(byte(1, 0), out)?,
                }),
                None,
            )
        }
        34 => {
            same_types(&[out])?;
            per_tensor(&[x, out])?;
            let p = input(1)?;
            let data = p
                .data
                .as_ref()
                .ok_or("non-constant paddings are not supported")?;
            let rank = x.shape.len();
            if p.dtype != DType::I32 || p.shape != [rank as u32, 2] {
                return Err(format!("paddings must be an int32 [{rank}, 2] tensor"));
            }
            if out.shape.len() != rank || data.len() != rank * 8 {
                return Err(format!(
                    "output tensor {} ({}) has shape {:?}, rank {}; the input's rank is {rank}",
                    out.index,
                    out.name,
                    out.shape,
                    out.shape.len()
                ));
            }
            if int8 && scale_zp(x) != scale_zp(out) {
                return Err("int8 PAD needs identical input and output quantization".into());
            }
            let mut pp = PadParams {
                before: [0; MAX_RANK],
                after: [0; MAX_RANK],
            };
            for d in 0..rank {
                let read = |k: usize| {
                    i32::from_le_bytes([
                        data[4 * k],
                        data[4 * k + 1],
                        data[4 * k + 2],
                        data[4 * k + 3],
                    ])
                };
                let (b, a) = (read(2 * d), read(2 * d + 1));
                if b < 0 || a < 0 {
                    return Err("negative paddings are not supported".into());
                }
                pp.before[d] = b as u32;
                pp.after[d] = a as u32;
                let padded = u64::from(x.shape[d]) + u64::from(b as u32) + u64::from(a as u32);
                if padded != u64::from(out.shape[d]) {
                    return Err(format!(
                        "padded dimension {d} does not match the output shape"
                    ));
                }
            }
            (Op::Pad(pp), None)
        }
        40 => {
            same_types(&[out])?;
            per_tensor(&[x, out])?;
            let a = input(1)?;
            let data = a
                .data
                .as_ref()
                .ok_or("non-constant axes are not supported")?;
            if a.dtype != DType::I32 {
                return Err("axes must be int32".into());
            }
            let rank = x.shape.len() as i32;
            let mut mask = 0u8;
            for c in data.chunks_exact(4) {
                let mut v = i32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                if v < 0 {
                    v += rank;
                }
                if v < 0 || v >= rank {
                    return Err(format!("axis {v} out of range for rank {rank}"));
                }
                mask |= 1 << v;
            }
            let keep_dims = byte(0, 0) != 0;
            let p: MeanParams =
                params::elementwise::mean_params(scale_zp(x), scale_zp(out), mask, keep_dims);
            (Op::Mean(p), None)
        }
        14 | 28 => {
            same_types(&[out])?;
            per_tensor(&[x, out])?;
            let (s, z) = scale_zp(x);
            if builtin == 14 {
                (
                    Op::Logistic(params::elementwise::logistic_params(s, z)),
                    None,
                )
            } else {
                (Op::Tanh(params::elementwise::tanh_params(s, z)), None)
            }
        }
        98 | 117 => {
            same_types(&[out])?;
            per_tensor(&[x, out])?;
            if out.shape != x.shape {
                return Err(format!(
                    "output shape {:?} differs from the input's {:?}",
                    out.shape, x.shape
                ));
            }
            if builtin == 98 {
                let alpha = opts.map_or(0.0, |o| o.float(0, 0.0));
                if !alpha.is_finite() {
                    return Err(format!("alpha {alpha} is not a finite number"));
                }
                (
                    Op::LeakyRelu(params::elementwise::leaky_relu_params(
                        alpha,
                        scale_zp(x),
                        scale_zp(out),
                    )),
                    None,
                )
            } else {
                let p = params::elementwise::hard_swish_params(scale_zp(x), scale_zp(out));
                if int8 && p.output_exponent > 0 {
                    return Err(format!(
                        "output scale {} is below input scale / 128 ({}); TFLite's int8 kernel refuses it too",
                        scale_zp(out).0,
                        scale_zp(x).0 / 128.0
                    ));
                }
                (Op::HardSwish(p), None)
            }
        }
        55 | 57 => {
            let y = input(1)?;
            same_types(&[y, out])?;
            per_tensor(&[x, y, out])?;
            if int8 && (scale_zp(x) != scale_zp(out) || scale_zp(y) != scale_zp(out)) {
                return Err(format!(
                    "int8 inputs ({:?}, {:?}) and output ({:?}) must share one scale and zero point (the kernel compares stored values)",
                    scale_zp(x),
                    scale_zp(y),
                    scale_zp(out)
                ));
            }
            ir.inputs = inputs_of(2);
            (
                if builtin == 55 {
                    Op::Maximum
                } else {
                    Op::Minimum
                },
                None,
            )
        }
        82 => {
            movement_types(x, out)?;
            let axes = const_i32s(input(1)?, "axes")?;
            let rank = x.shape.len() as i32;
            let mut mask = 0u8;
            for &a in &axes {
                let v = if a < 0 { a + rank } else { a };
                if v < 0 || v >= rank {
                    return Err(format!("axis {a} out of range for rank {rank}"));
                }
                mask |= 1 << v;
            }
            let keep_dims = byte(0, 0) != 0;
            let want: Vec<u32> = (0..x.shape.len())
                .filter_map(|d| match (mask >> d & 1 != 0, keep_dims) {
                    (false, _) => Some(x.shape[d]),
                    (true, true) => Some(1),
                    (true, false) => None,
                })
                .collect();
            if out.shape != want && !(want.is_empty() && out.shape == [1]) {
                return Err(format!(
                    "output shape {:?} is not the reduction's {want:?}",
                    out.shape
                ));
            }
            (
                Op::ReduceMax(ReduceMaxParams {
                    axes_mask: mask,
                    keep_dims,
                }),
                None,
            )
        }
        97 => {
            movement_types(x, out)?;
            if x.shape.len() != 4 || out.shape.len() != 4 {
                return Err("input and output must be 4-D (NHWC)".into());
            }
            let size = const_i32s(input(1)?, "size")?;
            let want = [out.shape[1] as i32, out.shape[2] as i32];
            if size != want || out.shape[0] != x.shape[0] || out.shape[3] != x.shape[3] {
                return Err(format!(
                    "output shape {:?} is not the input {:?} resized to {size:?}",
                    out.shape, x.shape
                ));
            }
            let p = ResizeNearestParams {
                align_corners: byte(0, 0) != 0,
                half_pixel_centers: byte(1, 0) != 0,
            };
            if p.align_corners && p.half_pixel_centers {
                return Err("align_corners and half_pixel_centers are both set".into());
            }
            (Op::ResizeNearest(p), None)
        }
        _ => return Err("operator not supported".into()),
    };
    ir.op = op;
    ir.requant = requant;
    Ok(ir)
}

/// SPLIT (`ins`: the constant int32 axis, then the data) as one STRIDED_SLICE per output:
/// output `i` takes the `i`-th of `num_splits` equal parts along the axis.
fn lower_split(
    num_splits: i32,
    ins: &[Option<usize>],
    outs: &[usize],
    tensors: &[IrTensor],
) -> Result<Vec<IrOp>, String> {
    let (Some(Some(a)), Some(Some(v))) = (ins.first(), ins.get(1)) else {
        return Err("SPLIT needs the axis and the data inputs".into());
    };
    let x = &tensors[*v];
    let d = split_axis(&tensors[*a], x.shape.len())?;
    let n = usize::try_from(num_splits)
        .ok()
        .filter(|&n| n > 0 && n == outs.len())
        .ok_or_else(|| {
            format!(
                "num_splits {num_splits} does not match the {} outputs",
                outs.len()
            )
        })?;
    if x.shape[d] as usize % n != 0 {
        return Err(format!(
            "dimension {d} of size {} does not split into {n} equal parts",
            x.shape[d]
        ));
    }
    let part = x.shape[d] / n as u32;
    split_slices(*v, d, &vec![part; n], outs, tensors)
}

/// SPLIT_V (`ins`: the data, the constant int32 part sizes, the constant int32 axis) as
/// one STRIDED_SLICE per output: output `i` takes the `i`-th part, of `size_splits[i]`
/// elements along the axis. At most one size may be -1: it takes what the others leave
/// (TFLite's `split_v` Prepare). The sizes must cover the dimension exactly.
fn lower_split_v(
    num_splits: i32,
    ins: &[Option<usize>],
    outs: &[usize],
    tensors: &[IrTensor],
) -> Result<Vec<IrOp>, String> {
    let (Some(Some(v)), Some(Some(s)), Some(Some(a))) = (ins.first(), ins.get(1), ins.get(2))
    else {
        return Err("SPLIT_V needs the data, size_splits and axis inputs".into());
    };
    let x = &tensors[*v];
    let d = split_axis(&tensors[*a], x.shape.len())?;
    let sizes = const_i32s(&tensors[*s], "size_splits")?;
    if usize::try_from(num_splits).ok() != Some(outs.len()) || sizes.len() != outs.len() {
        return Err(format!(
            "num_splits {num_splits} and size_splits {sizes:?} do not match the {} outputs",
            outs.len()
        ));
    }
    let dim = i64::from(x.shape[d]);
    let inferred: Vec<usize> = (0..sizes.len()).filter(|&i| sizes[i] == -1).collect();
    if inferred.len() > 1 || sizes.iter().any(|&z| z < -1) {
        return Err(format!(
            "size_splits {sizes:?}: sizes must be >= 0, with at most one -1"
        ));
    }
    let known: i64 = sizes
        .iter()
        .filter(|&&z| z >= 0)
        .map(|&z| i64::from(z))
        .sum();
    let mut parts: Vec<u32> = sizes.iter().map(|&z| z.max(0) as u32).collect();
    if let [i] = inferred[..] {
        parts[i] = u32::try_from(dim - known)
            .map_err(|_| format!("size_splits {sizes:?} exceed dimension {d} of size {dim}"))?;
    } else if known != dim {
        return Err(format!(
            "size_splits {sizes:?} add up to {known}, dimension {d} has size {dim}"
        ));
    }
    split_slices(*v, d, &parts, outs, tensors)
}

/// A SPLIT / SPLIT_V axis (a constant int32 scalar or one-element vector), made
/// non-negative for rank `rank`.
fn split_axis(t: &IrTensor, rank: usize) -> Result<usize, String> {
    let axis = const_i32s(t, "axis")?;
    let [axis] = axis[..] else {
        return Err(format!("axis must be one value, got {axis:?}"));
    };
    usize::try_from(if axis < 0 { axis + rank as i32 } else { axis })
        .ok()
        .filter(|&d| d < rank)
        .ok_or_else(|| format!("axis {axis} out of range for rank {rank}"))
}

/// One STRIDED_SLICE of tensor `v` per output: output `i` takes `parts[i]` elements of
/// dimension `d`, after those of the outputs before it.
fn split_slices(
    v: usize,
    d: usize,
    parts: &[u32],
    outs: &[usize],
    tensors: &[IrTensor],
) -> Result<Vec<IrOp>, String> {
    let x = &tensors[v];
    let mut ops = Vec::with_capacity(outs.len());
    let mut begin = 0u32;
    for (i, (&o, &part)) in outs.iter().zip(parts).enumerate() {
        let out = &tensors[o];
        if out.data.is_some() {
            return Err(format!(
                "output {i} (tensor {o}, {:?}) has constant data",
                out.name
            ));
        }
        movement_types(x, out)
            .map_err(|e| format!("output {i} (tensor {o}, {:?}): {e}", out.name))?;
        let mut want = x.shape.clone();
        want[d] = part;
        if out.shape != want {
            return Err(format!(
                "output {i} has shape {:?}, the split gives {want:?}",
                out.shape
            ));
        }
        if part == 0 {
            return Err(format!(
                "output {i} is empty (0 elements along dimension {d}); edgeflow has no zero-sized tensors"
            ));
        }
        let mut p = StridedSliceParams {
            begin: [0; MAX_RANK],
            stride: [1; MAX_RANK],
            count: [1; MAX_RANK],
        };
        for (k, &e) in x.shape.iter().enumerate() {
            p.count[k] = e;
        }
        p.begin[d] = begin as i32;
        p.count[d] = part;
        begin += part;
        let mut ir = IrOp::new(vec![v], o);
        ir.op = Op::StridedSlice(p);
        ops.push(ir);
    }
    Ok(ops)
}

/// TRANSPOSE / STRIDED_SLICE: the output has the input's type and (int8) quantization,
/// since TFLite's kernels move the bytes unchanged.
fn movement_types(x: &IrTensor, out: &IrTensor) -> Result<(), String> {
    if x.dtype != out.dtype {
        return Err(format!(
            "input is {:?} but output is {:?}",
            x.dtype, out.dtype
        ));
    }
    if x.dtype == DType::I8 && scale_zp(x) != scale_zp(out) {
        return Err(
            "int8 input and output quantizations differ (the kernel moves bytes unchanged)".into(),
        );
    }
    if x.dtype == DType::I8 && x.quant.as_ref().is_some_and(|q| q.scales.len() != 1) {
        return Err("int8 data must be quantized per tensor".into());
    }
    Ok(())
}

/// The values of a constant int32 tensor (`what` names it in errors).
fn const_i32s(t: &IrTensor, what: &str) -> Result<Vec<i32>, String> {
    if t.dtype != DType::I32 {
        return Err(format!("{what} must be int32, got {:?}", t.dtype));
    }
    let d = t
        .data
        .as_ref()
        .ok_or_else(|| format!("non-constant {what} is not supported"))?;
    Ok(d.chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// First index and element count of one dimension of a STRIDED_SLICE, as TFLite resolves
/// them (`StridedSliceStartForAxis` / `StridedSliceEndForAxis` of its
/// `strided_slice_logic.h`): negative indices count from the end, indices are clamped to
/// the dimension, a begin/end mask takes the whole range, `offset` makes `end` relative to
/// the start, and a shrunk axis takes the one element at the start.
#[allow(clippy::too_many_arguments)]
pub(crate) fn slice_range(
    begin: i64,
    end: i64,
    stride: i64,
    size: i64,
    begin_masked: bool,
    end_masked: bool,
    shrink: bool,
    offset: bool,
) -> (i64, i64) {
    let clamp = |v: i64| {
        let v = if v < 0 { v + size } else { v };
        if stride > 0 {
            v.clamp(0, size)
        } else {
            v.clamp(-1, size - 1)
        }
    };
    let mut start = clamp(begin);
    if begin_masked {
        start = if stride > 0 { 0 } else { size - 1 };
    }
    let stop = if shrink {
        if start >= size {
            start
        } else {
            start + 1
        }
    } else if end_masked {
        if stride > 0 {
            size
        } else {
            -1
        }
    } else {
        clamp(if offset { end + start } else { end })
    };
    let count = if stride > 0 {
        (stop - start + stride - 1).div_euclid(stride)
    } else {
        (start - stop + (-stride) - 1).div_euclid(-stride)
    };
    (start, count.max(0))
}

fn check_bias(b: &IrTensor, int8: bool, channels: u32) -> Result<(), String> {
    let want = if int8 { DType::I32 } else { DType::F32 };
    if b.dtype != want {
        return Err(format!("bias is {:?}, expected {want:?}", b.dtype));
    }
    if b.data.is_none() {
        return Err("non-constant bias is not supported".into());
    }
    if crate::ir::shape_elements(&b.shape) != Some(channels as usize) {
        return Err(format!(
            "bias has shape {:?}, expected {channels} values",
            b.shape
        ));
    }
    Ok(())
}

fn conv_requant(x: &IrTensor, filter_scales: &[f32], out: &IrTensor) -> OwnedRequant {
    let (s_in, z_in) = scale_zp(x);
    let (s_out, z_out) = scale_zp(out);
    let mut multipliers = Vec::with_capacity(filter_scales.len() * 4);
    let mut shifts = Vec::with_capacity(filter_scales.len() * 4);
    for &fs in filter_scales {
        let m = params::conv::channel_multiplier(s_in, fs, s_out);
        multipliers.extend_from_slice(&m.multiplier.to_le_bytes());
        shifts.extend_from_slice(&m.shift.to_le_bytes());
    }
    OwnedRequant {
        input_offset: -z_in,
        output_offset: z_out,
        multipliers,
        shifts,
    }
}
