//! Export of a trained model to edgeflow-compile's IR as a float32 graph, in TFLite's
//! conventions (NHWC activations, OHWI conv filters, `[1, H, W, C*M]` depthwise filters,
//! `[out, in]` dense weights). Batch norm is folded into the preceding conv/dense
//! (`scale = gamma / sqrt(var + eps)`, `w' = w * scale`, `b' = (b - mean) * scale + beta`,
//! computed in f64), ReLU/ReLU6 become the fused activation of the op before them, dropout
//! disappears. The graph is then written by edgeflow-compile's planner and writer, so the
//! result is an ordinary artifact that `edgeflow run`/`inspect` and the quantizer read.

use burn::tensor::Tensor;
use edgeflow_compile::ir::{Graph, IrOp, IrTensor};
use edgeflow_format::graph::{Clamp, ConvParams, DType, FullyConnectedParams, Op, PoolParams};

use crate::config::Layer;
use crate::error::TrainError;
use crate::model::{Net, Plan, Shape};

/// Values of a tensor on the host.
pub fn values<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, TrainError> {
    let data = t.into_data();
    data.as_slice::<f32>()
        .map(|s| s.to_vec())
        .map_err(|e| TrainError::Backend {
            doing: "reading a tensor".into(),
            message: format!("{e:?}"),
        })
}

struct Builder {
    tensors: Vec<IrTensor>,
    ops: Vec<IrOp>,
}

impl Builder {
    fn tensor(&mut self, name: String, shape: Vec<u32>, data: Option<&[f32]>) -> usize {
        let i = self.tensors.len();
        self.tensors.push(IrTensor {
            index: i as u32,
            name,
            dtype: DType::F32,
            shape,
            quant: None,
            data: data.map(|d| d.iter().flat_map(|v| v.to_le_bytes()).collect()),
        });
        i
    }
    fn op(&mut self, source: usize, op: Op<'static>, inputs: Vec<usize>, output: usize, macs: u64) {
        self.ops.push(IrOp {
            source_index: source as u32,
            op,
            requant: None,
            inputs,
            output,
            macs,
        });
    }
}

/// Per-output-channel batch-norm fold factors `(scale, shift)`: `y = x * scale + shift`.
fn bn_fold(net: &Net, i: usize, eps: f64) -> Result<(Vec<f64>, Vec<f64>), TrainError> {
    let bn = &net.bn[i];
    let gamma = values(bn.gamma.val())?;
    let beta = values(bn.beta.val())?;
    let mean = values(bn.running_mean.value())?;
    let var = values(bn.running_var.value())?;
    let scale: Vec<f64> = gamma
        .iter()
        .zip(&var)
        .map(|(&g, &v)| g as f64 / (v as f64 + eps).sqrt())
        .collect();
    let shift = beta
        .iter()
        .zip(&mean)
        .zip(&scale)
        .map(|((&b, &m), &s)| b as f64 - m as f64 * s)
        .collect();
    Ok((scale, shift))
}

/// Builds the float32 IR graph of a trained model (`net` in inference form).
pub fn to_graph(plan: &Plan, net: &Net, name: &str) -> Result<Graph, TrainError> {
    let mut b = Builder {
        tensors: Vec::new(),
        ops: Vec::new(),
    };
    let input = b.tensor("input".into(), plan.input.nhwc(), None);
    let mut x = input;
    let n = plan.layers.len();
    for (i, p) in plan.layers.iter().enumerate() {
        let fold = match plan.layers.get(i + 1).map(|q| (&q.layer, q.param)) {
            Some((Layer::BatchNorm { epsilon, .. }, j)) if i + 1 < n => {
                Some(bn_fold(net, j, *epsilon)?)
            }
            _ => None,
        };
        let out_shape = p.output.nhwc();
        match &p.layer {
            Layer::Dense { units } => {
                let lin = &net.dense[p.param];
                let w = values(lin.weight.val())?; // [in, out]
                let inn = p.input.len();
                let units = *units;
                let bias = match &lin.bias {
                    Some(bp) => values(bp.val())?,
                    None => vec![0.0; units],
                };
                let mut wt = vec![0f32; units * inn];
                let mut bt = vec![0f32; units];
                for o in 0..units {
                    let (s, sh) = fold.as_ref().map_or((1.0, 0.0), |(s, sh)| (s[o], sh[o]));
                    for k in 0..inn {
                        wt[o * inn + k] = (w[k * units + o] as f64 * s) as f32;
                    }
                    bt[o] = (bias[o] as f64 * s + sh) as f32;
                }
                let wi = b.tensor(
                    format!("dense{i}/weights"),
                    vec![units as u32, inn as u32],
                    Some(&wt),
                );
                let bi = b.tensor(format!("dense{i}/bias"), vec![units as u32], Some(&bt));
                let y = b.tensor(format!("dense{i}"), out_shape, None);
                b.op(
                    i,
                    Op::FullyConnected(FullyConnectedParams {
                        clamp: Clamp::NONE,
                        requant: None,
                    }),
                    vec![x, wi, bi],
                    y,
                    (units * inn) as u64,
                );
                x = y;
            }
            Layer::Conv1d { .. }
            | Layer::Conv2d { .. }
            | Layer::DepthwiseConv1d { .. }
            | Layer::DepthwiseConv2d { .. } => {
                let conv = &net.conv[p.param];
                let w = values(conv.weight.val())?;
                let [o_ch, i_per_g, kh, kw] = conv.weight.val().dims();
                let bias = match &conv.bias {
                    Some(bp) => values(bp.val())?,
                    None => vec![0.0; o_ch],
                };
                let (stride2, depthwise, mult) = match &p.layer {
                    Layer::Conv1d { stride, .. } => ([1, *stride], false, 1),
                    Layer::Conv2d { stride, .. } => (*stride, false, 1),
                    Layer::DepthwiseConv1d {
                        stride, multiplier, ..
                    } => ([1, *stride], true, *multiplier),
                    Layer::DepthwiseConv2d {
                        stride, multiplier, ..
                    } => (*stride, true, *multiplier),
                    _ => unreachable_layer()?,
                };
                let mut wt = vec![0f32; w.len()];
                let mut bt = vec![0f32; o_ch];
                for o in 0..o_ch {
                    let (s, sh) = fold.as_ref().map_or((1.0, 0.0), |(s, sh)| (s[o], sh[o]));
                    for ci in 0..i_per_g {
                        for y in 0..kh {
                            for xx in 0..kw {
                                let v =
                                    (w[((o * i_per_g + ci) * kh + y) * kw + xx] as f64 * s) as f32;
                                if depthwise {
                                    // [1, kh, kw, C*M]
                                    wt[(y * kw + xx) * o_ch + o] = v;
                                } else {
                                    // OHWI
                                    wt[((o * kh + y) * kw + xx) * i_per_g + ci] = v;
                                }
                            }
                        }
                    }
                    bt[o] = (bias[o] as f64 * s + sh) as f32;
                }
                let fshape = if depthwise {
                    vec![1, kh as u32, kw as u32, o_ch as u32]
                } else {
                    vec![o_ch as u32, kh as u32, kw as u32, i_per_g as u32]
                };
                let wi = b.tensor(format!("conv{i}/filter"), fshape, Some(&wt));
                let bi = b.tensor(format!("conv{i}/bias"), vec![o_ch as u32], Some(&bt));
                let y = b.tensor(format!("conv{i}"), out_shape.clone(), None);
                let params = ConvParams {
                    stride: [stride2[0] as u16, stride2[1] as u16],
                    dilation: [1, 1],
                    pad: [p.pad[0] as u16, p.pad[1] as u16],
                    depth_multiplier: mult as u16,
                    clamp: Clamp::NONE,
                    requant: None,
                };
                let positions: u64 = out_shape
                    .iter()
                    .skip(1)
                    .take(2)
                    .map(|&d| d as u64)
                    .product();
                let macs =
                    positions * (o_ch * kh * kw * if depthwise { 1 } else { i_per_g }) as u64;
                let op = if depthwise {
                    Op::DepthwiseConv2d(params)
                } else {
                    Op::Conv2d(params)
                };
                b.op(i, op, vec![x, wi, bi], y, macs);
                x = y;
            }
            Layer::MaxPool1d { size, stride } | Layer::AvgPool1d { size, stride } => {
                let pp = PoolParams {
                    filter: [1, *size as u16],
                    stride: [1, stride.unwrap_or(*size) as u16],
                    pad: [0, 0],
                    clamp: Clamp::NONE,
                };
                let y = b.tensor(format!("pool{i}"), out_shape, None);
                let op = if matches!(p.layer, Layer::MaxPool1d { .. }) {
                    Op::MaxPool2d(pp)
                } else {
                    Op::AveragePool2d(pp)
                };
                b.op(i, op, vec![x], y, 0);
                x = y;
            }
            Layer::MaxPool2d { size, stride } | Layer::AvgPool2d { size, stride } => {
                let s = stride.unwrap_or(*size);
                let pp = PoolParams {
                    filter: [size[0] as u16, size[1] as u16],
                    stride: [s[0] as u16, s[1] as u16],
                    pad: [0, 0],
                    clamp: Clamp::NONE,
                };
                let y = b.tensor(format!("pool{i}"), out_shape, None);
                let op = if matches!(p.layer, Layer::MaxPool2d { .. }) {
                    Op::MaxPool2d(pp)
                } else {
                    Op::AveragePool2d(pp)
                };
                b.op(i, op, vec![x], y, 0);
                x = y;
            }
            Layer::GlobalAvgPool {} => {
                let Shape::Map { h, w, c } = p.input else {
                    return unreachable_layer();
                };
                let pp = PoolParams {
                    filter: [h as u16, w as u16],
                    stride: [1, 1],
                    pad: [0, 0],
                    clamp: Clamp::NONE,
                };
                let pooled = b.tensor(format!("pool{i}"), vec![1, 1, 1, c as u32], None);
                b.op(i, Op::AveragePool2d(pp), vec![x], pooled, 0);
                let y = b.tensor(format!("flat{i}"), out_shape, None);
                b.op(i, Op::Reshape, vec![pooled], y, 0);
                x = y;
            }
            Layer::Flatten {} => {
                if let Shape::Map { .. } = p.input {
                    let y = b.tensor(format!("flat{i}"), out_shape, None);
                    b.op(i, Op::Reshape, vec![x], y, 0);
                    x = y;
                }
            }
            Layer::Relu {} | Layer::Relu6 {} => {
                let hi = if matches!(p.layer, Layer::Relu6 {}) {
                    6.0
                } else {
                    f32::MAX
                };
                let clamp = match b.ops.last_mut().map(|o| &mut o.op) {
                    Some(Op::Conv2d(c)) | Some(Op::DepthwiseConv2d(c)) => &mut c.clamp,
                    Some(Op::FullyConnected(f)) => &mut f.clamp,
                    Some(Op::MaxPool2d(pp)) | Some(Op::AveragePool2d(pp)) => &mut pp.clamp,
                    _ => {
                        return Err(TrainError::Layer {
                            index: i,
                            kind: p.layer.kind(),
                            reason: "nothing to fuse the activation into".into(),
                        })
                    }
                };
                clamp.min_f = clamp.min_f.max(0.0);
                clamp.max_f = clamp.max_f.min(hi);
            }
            Layer::BatchNorm { .. } | Layer::Dropout { .. } => {}
            Layer::Softmax {} => {
                let y = b.tensor("probabilities".into(), out_shape, None);
                b.op(
                    i,
                    Op::Softmax(edgeflow_nn::params::elementwise::softmax_params(1.0, 1.0)),
                    vec![x],
                    y,
                    0,
                );
                x = y;
            }
        }
    }
    if b.ops.is_empty() {
        return Err(TrainError::Unsupported("the model has no operations"));
    }
    Ok(Graph {
        tensors: b.tensors,
        inputs: vec![input],
        outputs: vec![x],
        ops: b.ops,
        description: name.to_string(),
    })
}

fn unreachable_layer<T>() -> Result<T, TrainError> {
    Err(TrainError::Unsupported(
        "internal: layer kind changed during export",
    ))
}
