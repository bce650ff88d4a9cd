//! Post-training int8 quantization of a float IR [`Graph`] (PTQ).
//!
//! The result follows the TFLite quantization spec that `edgeflow-nn` is bit-exact with:
//! per-channel symmetric int8 weights (`zero_point = 0`, range `[-127, 127]`, scale
//! `max|w| / 127` per output channel), asymmetric int8 activations (scale and zero point
//! from a calibrated real range that always contains 0, nudged as TFLite's
//! `GetAsymmetricQuantizationParams` / MLIR `getNudgedScaleAndZeroPoint` do), int32
//! biases with scale `input_scale * weight_scale[c]` and zero point 0, values rounded
//! half away from zero. The fixed-point parameters of every op are then derived by the
//! same code the `.tflite` importer uses ([`crate::import`]), i.e. TFLite Micro's
//! `Prepare`.
//!
//! Activation ranges come from a calibration set: every sample is run through the float
//! graph with `edgeflow-nn`'s own f32 kernels ([`crate::reference::Evaluator`]) and every
//! intermediate tensor is observed. [`RangeMethod`] picks how an observed distribution
//! becomes a range.
//!
//! Op constraints follow TFLite's int8 spec: SOFTMAX and LOGISTIC outputs are fixed at
//! `1/256, -128`, TANH at `1/128, 0`; RESHAPE, MAX_POOL_2D, AVERAGE_POOL_2D and PAD keep
//! their input's parameters. CONCATENATION, MAXIMUM and MINIMUM share one scale and zero
//! point between their inputs and output: the output's calibrated range, given back to
//! the producers of the inputs as the TFLite converter does (a constant input is
//! quantized with it; an input whose parameters are fixed otherwise is requantized by an
//! inserted int8 → int8 QUANTIZE). With min/max ranges, an activation that the
//! converter's calibration interpreter overwrites in place (an ADD / MUL input, see
//! `in_place_inputs`) gets the union of its range and the overwriting op's output range,
//! as the converter records it, so that the parameters equal the converter's.
//!
//! Bias correction ([`QuantizeOptions::bias_correction`], on by default): before a
//! conv / fully-connected bias is quantized, the mean output shift its layer's int8
//! weights cause on the calibration set is subtracted from it ([`bias_corrections`]).
//!
//! Batch normalisation: the IR has no batch-norm op; the TFLite converter and the
//! trainer fold it into the preceding convolution's weights and bias before the graph
//! reaches this module.

use std::collections::HashMap;

use edgeflow_format::graph::{Clamp, DType, Op, QuantizeParams};
use thiserror::Error;

use crate::error::CompileError;
use crate::import::derive_int8;
use crate::ir::{Graph, IrOp, IrQuant, IrTensor};
use crate::reference::{bytes_f32, f32_bytes, Evaluator};

/// How an observed activation distribution becomes a real range `[lo, hi]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RangeMethod {
    /// The smallest and largest value seen (TFLite converter's calibration).
    MinMax,
    /// The given lower/upper percentiles of all values seen, e.g. `99.99` keeps values
    /// between the 0.01 % and the 99.99 % quantile.
    Percentile(f64),
    /// The range (the min/max range shrunk by a common factor) whose int8 round trip
    /// has the least mean squared error over the observed histogram.
    Mse,
    /// Entropy calibration as TensorRT describes it (Migacz, "8-bit Inference with
    /// TensorRT", GTC 2017): the clipping threshold whose quantized distribution has the
    /// least Kullback–Leibler divergence from the observed one ([`entropy_calibration`]).
    /// A tensor that is never negative is searched over its own histogram with 256
    /// levels, giving `[0, T]`; any other over the histogram of `|x|` with 128 levels
    /// (TensorRT's symmetric int8), giving `[-T, T]` cut to the observed `[min, max]`.
    /// The first bin (exact zeros, which int8 holds at any threshold) is given the
    /// second bin's count first, as NVIDIA's pytorch-quantization does.
    Kl,
}

impl std::str::FromStr for RangeMethod {
    type Err = String;
    /// `minmax`, `mse`, `kl` (or `entropy`), `percentile` (99.99) or `percentile:P`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "minmax" => Ok(Self::MinMax),
            "mse" => Ok(Self::Mse),
            "kl" | "entropy" => Ok(Self::Kl),
            "percentile" => Ok(Self::Percentile(99.99)),
            _ => match s.strip_prefix("percentile:").map(str::parse::<f64>) {
                Some(Ok(p)) if p > 50.0 && p <= 100.0 => Ok(Self::Percentile(p)),
                _ => Err(format!(
                    "unknown range method {s:?}; use minmax, mse, kl, percentile or percentile:P with 50 < P <= 100"
                )),
            },
        }
    }
}

/// Quantizer options.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuantizeOptions {
    /// Activation range method.
    pub method: RangeMethod,
    /// Per-channel weight scales (`false`: one scale per weight tensor).
    pub per_channel: bool,
    /// Keep float32 input and output, with QUANTIZE / DEQUANTIZE at the edges.
    pub float_io: bool,
    /// Empirical bias correction ([`bias_corrections`]): subtract from every CONV_2D /
    /// DEPTHWISE_CONV_2D / FULLY_CONNECTED bias the mean shift its int8 weights cause on
    /// the calibration set, before the bias is quantized.
    pub bias_correction: bool,
}

/// The default is [`RangeMethod::Mse`] ranges with bias correction on, chosen by
/// measurement on the calibration samples only (BENCHMARKS.md, "Quantizer"): of the eight
/// combinations of the four range methods with and without bias correction it has the
/// highest float-vs-int8 output SNR on the calibration set averaged over the three
/// peer-comparison models (best on the DS-CNN, within 0.1 dB of the best on the other two).
/// [`RangeMethod::MinMax`] without bias correction reproduces the TFLite converter's
/// parameters exactly.
impl Default for QuantizeOptions {
    fn default() -> Self {
        Self {
            method: RangeMethod::Mse,
            per_channel: true,
            float_io: false,
            bias_correction: true,
        }
    }
}

/// Why a graph could not be quantized.
#[derive(Debug, Error)]
pub enum QuantizeError {
    /// No calibration sample.
    #[error("the calibration set is empty; at least one sample is needed")]
    EmptyCalibration,
    /// A calibration sample does not fit the model input.
    #[error("calibration sample {index}: {reason}")]
    Sample {
        /// Sample position in the calibration set.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// The model has an op or tensor the quantizer cannot handle.
    #[error("op {index} ({op}): {reason}")]
    Unsupported {
        /// Op position in the graph.
        index: usize,
        /// Op name.
        op: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The model does not have exactly one input and one output.
    #[error("the quantizer handles models with one input and one output; this one has {inputs} and {outputs}")]
    Arity {
        /// Graph inputs.
        inputs: usize,
        /// Graph outputs.
        outputs: usize,
    },
    /// A QDQ model's graph input is not followed by a `QuantizeLinear`.
    #[error("the graph input {0:?} has no QuantizeLinear; a QDQ model quantizes its input")]
    UnquantizedInput(String),
    /// Evaluating or re-deriving the graph failed.
    #[error(transparent)]
    Compile(#[from] CompileError),
}

/// Observed values of one activation tensor.
#[derive(Clone, Debug)]
struct Observer {
    min: f32,
    max: f32,
    /// `BINS` counts over `[min(min, 0), max(max, 0)]`.
    hist: Vec<u64>,
    /// `BINS` counts of `|x|` over `[0, max(|min|, |max|)]` (for [`RangeMethod::Kl`]).
    abs_hist: Vec<u64>,
}

const BINS: usize = 2048;

impl Observer {
    fn new() -> Self {
        Self {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            hist: Vec::new(),
            abs_hist: Vec::new(),
        }
    }
    fn abs_max(&self) -> f64 {
        let (lo, hi) = self.lo_hi();
        (-lo).max(hi)
    }
    fn abs_bin(&self, v: f32) -> usize {
        let w = self.abs_max() / BINS as f64;
        if w <= 0.0 {
            return 0;
        }
        (((v as f64).abs() / w) as usize).min(BINS - 1)
    }
    fn lo_hi(&self) -> (f64, f64) {
        ((self.min as f64).min(0.0), (self.max as f64).max(0.0))
    }
    fn bin(&self, v: f32) -> usize {
        let (lo, hi) = self.lo_hi();
        let w = (hi - lo) / BINS as f64;
        if w <= 0.0 {
            return 0;
        }
        (((v as f64 - lo) / w) as usize).min(BINS - 1)
    }
    fn bin_center(&self, i: usize) -> f64 {
        let (lo, hi) = self.lo_hi();
        lo + (i as f64 + 0.5) * (hi - lo) / BINS as f64
    }
}

/// TFLite's asymmetric int8 parameters for a real range (extended to contain 0):
/// `scale = (max - min) / 255` (stored as computed in `f32`), the zero point from whichever end has the smaller
/// representation error, nudged into `[-128, 127]` and rounded half away from zero.
/// An empty range gives `(1.0, 0)`.
pub fn asymmetric_params(min: f64, max: f64) -> (f32, i64) {
    let (rmin, rmax) = (min.min(0.0), max.max(0.0));
    if (rmax - rmin).abs() < f64::EPSILON {
        return (1.0, 0);
    }
    let (qmin, qmax) = (-128.0f64, 127.0f64);
    let scale = (rmax - rmin) / (qmax - qmin);
    let zp_from_min = qmin - rmin / scale;
    let zp_from_max = qmax - rmax / scale;
    let err_min = qmin.abs() + (rmin / scale).abs();
    let err_max = qmax.abs() + (rmax / scale).abs();
    let zp = if err_min < err_max {
        zp_from_min
    } else {
        zp_from_max
    };
    let nudged = if zp < qmin {
        qmin
    } else if zp > qmax {
        qmax
    } else {
        zp.round()
    };
    // The converter stores the scale computed in single precision (measured on the
    // conformance fixtures: `f32(max - min) / 255f32` matches every input scale, the
    // double-precision quotient rounded to f32 is 1 ulp off on 9 of 24), while the zero
    // point comes from the double-precision scale (e.g. [-1, 1] gives zero point -1).
    (((rmax - rmin) as f32) / 255.0f32, nudged as i64)
}

fn fake_quant_err(obs: &Observer, lo: f64, hi: f64) -> f64 {
    let (s, zp) = asymmetric_params(lo, hi);
    let s = s as f64;
    let mut err = 0.0;
    for (i, &c) in obs.hist.iter().enumerate() {
        if c == 0 {
            continue;
        }
        let v = obs.bin_center(i);
        let q = ((v / s).round() + zp as f64).clamp(-128.0, 127.0);
        let d = v - (q - zp as f64) * s;
        err += c as f64 * d * d;
    }
    err
}

/// The outcome of [`entropy_calibration`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EntropyChoice {
    /// Bins kept below the threshold (`levels ..= hist.len()`): the threshold is the upper
    /// edge of bin `bins - 1`, i.e. `bins × bin width` (all of the histogram's range when
    /// `bins == hist.len()`).
    pub bins: usize,
    /// KL(P ‖ Q) at that threshold, in nats.
    pub divergence: f64,
}

/// TensorRT's entropy calibration on one histogram (Migacz, "8-bit Inference with
/// TensorRT", GTC 2017): the candidate of [`entropy_divergences`] with the least
/// divergence; among equal ones the largest (the least clipping, as NVIDIA's
/// pytorch-quantization takes the last minimum). `None` when the histogram is empty or has
/// fewer than `levels` bins, or no candidate is finite. `levels` is 128 for TensorRT's
/// symmetric int8 (a histogram of `|x|`), 256 for a tensor that is never negative.
pub fn entropy_calibration(hist: &[u64], levels: usize) -> Option<EntropyChoice> {
    let mut best: Option<EntropyChoice> = None;
    for (k, kl) in entropy_divergences(hist, levels).into_iter().enumerate() {
        if kl.is_finite() && best.is_none_or(|b| kl <= b.divergence) {
            best = Some(EntropyChoice {
                bins: levels + k,
                divergence: kl,
            });
        }
    }
    best
}

/// The divergence of every candidate threshold of [`entropy_calibration`]: element `k` is
/// for keeping `i = levels + k` bins (`levels ..= hist.len()`), computed as
///
/// - P is `hist[..i]` with the count of every bin at or above `i` (the values the
///   threshold would clip) added to its last bin;
/// - Q quantizes `hist[..i]` into `levels` groups — bin `j` goes to group
///   `j × levels / i` (integer division) — and expands each group back over its bins,
///   its total shared equally by the bins that are not empty (empty bins stay empty);
/// - both are normalised and `KL(P ‖ Q) = Σ P ln(P / Q)` (nats) over the bins where
///   P > 0, infinite where P > 0 and Q = 0 (a clipped tail landing on an empty bin).
///
/// Empty when the histogram is empty or has fewer than `levels` bins. Checked against
/// `crates/edgeflow-compile/tests/kl/make_kl_goldens.py` (numpy + `scipy.stats.entropy`).
pub fn entropy_divergences(hist: &[u64], levels: usize) -> Vec<f64> {
    let n = hist.len();
    let total: u64 = hist.iter().sum();
    if levels == 0 || n < levels || total == 0 {
        return Vec::new();
    }
    // Suffix sums: the counts a threshold at bin i clips.
    let mut above = vec![0u64; n + 1];
    for j in (0..n).rev() {
        above[j] = above[j + 1] + hist[j];
    }
    let mut out = Vec::with_capacity(n - levels + 1);
    let mut q = vec![0f64; n];
    for i in levels..=n {
        // Q: group totals and non-empty counts, expanded back over the bins.
        let mut start = 0;
        while start < i {
            let g = start * levels / i;
            let mut end = start;
            let (mut sum, mut nonzero) = (0u64, 0u64);
            while end < i && end * levels / i == g {
                sum += hist[end];
                nonzero += u64::from(hist[end] != 0);
                end += 1;
            }
            for (qj, &h) in q[start..end].iter_mut().zip(&hist[start..end]) {
                *qj = if h != 0 {
                    sum as f64 / nonzero as f64
                } else {
                    0.0
                };
            }
            start = end;
        }
        let q_total: f64 = q[..i].iter().sum();
        // P sums to `total` (the clipped tail is folded into bin i - 1).
        let p_total = total as f64;
        let mut kl = 0.0f64;
        for (j, (&h, &qj)) in hist[..i].iter().zip(&q[..i]).enumerate() {
            let p = if j + 1 == i { h + above[i] } else { h } as f64;
            if p == 0.0 {
                continue;
            }
            if qj == 0.0 {
                kl = f64::INFINITY;
                break;
            }
            let (p, qn) = (p / p_total, qj / q_total);
            kl += p * (p / qn).ln();
        }
        out.push(kl);
    }
    out
}

fn range_of(obs: &Observer, method: RangeMethod) -> (f64, f64) {
    let (lo, hi) = obs.lo_hi();
    match method {
        RangeMethod::MinMax => (lo, hi),
        RangeMethod::Percentile(p) => {
            let total: u64 = obs.hist.iter().sum();
            if total == 0 {
                return (lo, hi);
            }
            let tail = ((100.0 - p) / 100.0 * total as f64).floor() as u64;
            let (mut acc, mut plo) = (0u64, 0usize);
            for (i, &c) in obs.hist.iter().enumerate() {
                acc += c;
                if acc > tail {
                    plo = i;
                    break;
                }
            }
            let (mut acc, mut phi) = (0u64, BINS - 1);
            for (i, &c) in obs.hist.iter().enumerate().rev() {
                acc += c;
                if acc > tail {
                    phi = i;
                    break;
                }
            }
            let w = (hi - lo) / BINS as f64;
            let qlo = if plo == 0 { lo } else { lo + plo as f64 * w };
            let qhi = if phi == BINS - 1 {
                hi
            } else {
                lo + (phi + 1) as f64 * w
            };
            (qlo.min(0.0), qhi.max(0.0))
        }
        RangeMethod::Mse => {
            let mut best = (fake_quant_err(obs, lo, hi), lo, hi);
            for k in 1..90 {
                let a = 1.0 - k as f64 * 0.01;
                let e = fake_quant_err(obs, lo * a, hi * a);
                if e < best.0 {
                    best = (e, lo * a, hi * a);
                }
            }
            (best.1, best.2)
        }
        RangeMethod::Kl => {
            // The first bin holds the exact zeros a ReLU writes (often most values), which
            // int8 represents exactly at any threshold; left as they are they dominate the
            // divergence and push the threshold far down (measured: the DS-CNN of
            // bench/quantizer gave 23.2 %, min/max 92.4 %). As NVIDIA's pytorch-quantization
            // does, the first bin takes the second's count before the search.
            let flat_zero = |h: &[u64]| {
                let mut h = h.to_vec();
                if h.len() > 1 {
                    h[0] = h[1];
                }
                h
            };
            if lo >= 0.0 {
                // Never negative: [0, T] over the tensor's own histogram, 256 levels.
                match entropy_calibration(&flat_zero(&obs.hist), 256) {
                    Some(c) => (0.0, hi * c.bins as f64 / BINS as f64),
                    None => (lo, hi),
                }
            } else {
                match entropy_calibration(&flat_zero(&obs.abs_hist), 128) {
                    Some(c) => {
                        let t = obs.abs_max() * c.bins as f64 / BINS as f64;
                        (lo.max(-t), hi.min(t))
                    }
                    None => (lo, hi),
                }
            }
        }
    }
}

/// Runs every calibration sample through the float graph and observes every activation.
fn calibrate(
    graph: &Graph,
    samples: &[Vec<f32>],
    histograms: bool,
) -> Result<Vec<Observer>, QuantizeError> {
    let eval = Evaluator::new(graph)?;
    let mut obs = vec![Observer::new(); graph.tensors.len()];
    let passes = if histograms { 2 } else { 1 };
    for pass in 0..passes {
        if pass == 1 {
            for o in &mut obs {
                o.hist = vec![0; BINS];
                o.abs_hist = vec![0; BINS];
            }
        }
        for s in samples {
            let values = eval.run(&[&f32_bytes(s)])?;
            for (t, v) in values.iter().enumerate() {
                let Some(v) = v else { continue };
                let o = &mut obs[t];
                for x in bytes_f32(v) {
                    if pass == 0 {
                        o.min = o.min.min(x);
                        o.max = o.max.max(x);
                    } else {
                        let b = o.bin(x);
                        o.hist[b] += 1;
                        let a = o.abs_bin(x);
                        o.abs_hist[a] += 1;
                    }
                }
            }
        }
    }
    Ok(obs)
}

/// Ops whose int8 output takes its (first) input's scale and zero point, as TFLite's
/// int8 kernels require: RESHAPE, the pools, PAD, TRANSPOSE, STRIDED_SLICE, REDUCE_MAX,
/// RESIZE_NEAREST_NEIGHBOR.
fn keeps_input_params(op: &Op) -> bool {
    matches!(
        op,
        Op::Reshape
            | Op::MaxPool2d(_)
            | Op::AveragePool2d(_)
            | Op::Pad(_)
            | Op::Transpose(_)
            | Op::StridedSlice(_)
            | Op::ReduceMax(_)
            | Op::ResizeNearest(_)
    )
}

/// Ops whose int8 inputs must have the output's parameters (an input with others is
/// requantized by an inserted int8 → int8 QUANTIZE).
fn same_scale_inputs(op: &Op) -> bool {
    matches!(op, Op::Concatenation(_) | Op::Maximum | Op::Minimum)
}

/// Ops whose int8 output parameters are fixed by TFLite's int8 spec, whatever the range.
fn fixed_output(op: &Op) -> bool {
    matches!(op, Op::Softmax(_) | Op::Logistic(_) | Op::Tanh(_))
}

/// The "tie ranges" step: parameters forced on activations by the ops whose int8 inputs
/// must share their output's scale and zero point ([`same_scale_inputs`]: CONCATENATION,
/// MAXIMUM, MINIMUM). As in the TFLite converter (whose quantization driver gives these
/// ops their output's statistics and drops their inputs'), the output's calibrated
/// parameters (`params_of`) go back to each non-constant input, through ops that keep
/// their input's parameters ([`keeps_input_params`]), to the op or graph input that sets
/// them. Ops are visited last to first: a chain of them shares the last one's range, and a
/// tensor read by two of them takes the later one's (the earlier one then requantizes
/// it). A tensor with fixed parameters (SOFTMAX, LOGISTIC, TANH) or that is a graph
/// output is left alone and requantized by `lower`; a constant input is quantized with
/// the output's parameters there. Checked against the converter by the op fixtures
/// `concat_through_reshape`, `concat_shared_input`, `maximum_shared_input`,
/// `maximum_of_branches`, `minimum_after_leaky` (test `op_conformance`).
///
/// The same step gives a QDQ model's inner MAXIMUM / MINIMUM of a chain (the importer's
/// form of an ONNX Max / Min of three or more inputs, whose inner results have no
/// QuantizeLinear) the parameters of the chain's last op: `params_of` there is the model's
/// own parameters, and an output without any (`None`) forces nothing.
///
/// Returns, per tensor, the parameters forced on it (`None`: its own range decides).
fn tie_same_scale(
    graph: &Graph,
    params_of: &dyn Fn(usize) -> Option<(f32, i64)>,
) -> Vec<Option<(f32, i64)>> {
    let mut forced: Vec<Option<(f32, i64)>> = vec![None; graph.tensors.len()];
    for op in graph.ops.iter().rev() {
        if !same_scale_inputs(&op.op) {
            continue;
        }
        if forced[op.output].is_none() {
            forced[op.output] = params_of(op.output);
        }
        let Some(p) = forced[op.output] else {
            continue;
        };
        for &t in &op.inputs {
            if graph.tensors[t].data.is_some() {
                continue;
            }
            let mut u = t;
            while let Some(o) = graph.ops.iter().find(|o| o.output == u) {
                if !keeps_input_params(&o.op) {
                    break;
                }
                u = o.inputs[0];
            }
            let fixed = graph
                .ops
                .iter()
                .any(|o| o.output == u && fixed_output(&o.op));
            if !fixed && forced[u].is_none() && !graph.outputs.contains(&u) {
                forced[u] = Some(p);
            }
        }
    }
    forced
}

/// The activations whose range the TFLite converter records as the union of their own
/// values and those of the op that reads them, as `(tensor, that op's output)`.
///
/// The converter calibrates by running the float model in TFLite's interpreter and
/// recording each op's input and output tensors after the op has run. The interpreter
/// runs ADD and MUL in place (their output written over an input's buffer) when that
/// input has the output's shape, is read by no other op and is neither a graph input nor
/// a graph output, and the op's output is not a graph output; the first such input (in
/// input order) is the one overwritten. Recorded after the op, that input's buffer holds
/// the op's output, so its range becomes the union of both. Seen with tensorflow 2.21 (the
/// shared buffer shows in the interpreter's tensor addresses) and 2.20, and checked by the
/// op fixtures `add_in_place_on_mul`, `mul_in_place_on_add` and the `*_not_in_place`
/// controls (test `op_conformance`).
///
/// Only inputs whose producer sets its own range are listed: a fixed-range producer
/// (SOFTMAX, LOGISTIC, TANH) is not affected, and a producer that keeps its input's
/// parameters (RESHAPE, the pools, …) has not been compared with the converter.
fn in_place_inputs(graph: &Graph) -> Vec<(usize, usize)> {
    let readers = |t: usize| -> usize {
        graph
            .ops
            .iter()
            .map(|o| o.inputs.iter().filter(|&&i| i == t).count())
            .sum()
    };
    let mut out = Vec::new();
    for op in &graph.ops {
        if !matches!(op.op, Op::Add(_) | Op::Mul(_)) || graph.outputs.contains(&op.output) {
            continue;
        }
        let shape = &graph.tensors[op.output].shape;
        let shared = op.inputs.iter().copied().find(|&t| {
            graph.tensors[t].data.is_none()
                && graph.tensors[t].shape == *shape
                && !graph.inputs.contains(&t)
                && !graph.outputs.contains(&t)
                && readers(t) == 1
        });
        let Some(t) = shared else { continue };
        let free = graph
            .ops
            .iter()
            .find(|o| o.output == t)
            .is_some_and(|p| !fixed_output(&p.op) && !keeps_input_params(&p.op));
        if free {
            out.push((t, op.output));
        }
    }
    out
}

fn check_float(graph: &Graph) -> Result<(), QuantizeError> {
    if graph.inputs.len() != 1 || graph.outputs.len() != 1 {
        return Err(QuantizeError::Arity {
            inputs: graph.inputs.len(),
            outputs: graph.outputs.len(),
        });
    }
    for (i, op) in graph.ops.iter().enumerate() {
        let bad = |reason: String| QuantizeError::Unsupported {
            index: i,
            op: op.op.name(),
            reason,
        };
        if matches!(op.op, Op::Quantize(_) | Op::Dequantize) {
            return Err(bad(
                "the model is already (partly) quantized; give the float model".into(),
            ));
        }
        for &t in op.inputs.iter().chain(std::iter::once(&op.output)) {
            let tensor = &graph.tensors[t];
            let allowed = tensor.dtype == DType::F32
                || (tensor.dtype == DType::I32
                    && tensor.data.is_some()
                    && matches!(
                        op.op,
                        Op::Pad(_) | Op::Mean(_) | Op::ReduceMax(_) | Op::ResizeNearest(_)
                    ));
            if !allowed {
                return Err(bad(format!(
                    "tensor {t} ({:?}) is {:?}; a float model has float32 tensors only",
                    tensor.name, tensor.dtype
                )));
            }
        }
    }
    Ok(())
}

/// Symmetric int8 weights along `axis` (`None`: one scale for the tensor): returns
/// the int8 bytes and the scales.
fn quantize_weights(t: &IrTensor, axis: Option<usize>) -> (Vec<u8>, Vec<f32>) {
    let w = bytes_f32(t.data.as_deref().unwrap_or(&[]));
    let dims: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
    let (channels, inner) = match axis {
        Some(a) => (dims[a], dims[a + 1..].iter().product::<usize>()),
        None => (1, w.len().max(1)),
    };
    let channel_of = |i: usize| (i / inner) % channels;
    let mut max_abs = vec![0f32; channels];
    for (i, &v) in w.iter().enumerate() {
        let c = channel_of(i);
        max_abs[c] = max_abs[c].max(v.abs());
    }
    let scales64: Vec<f64> = max_abs
        .iter()
        .map(|&m| if m > 0.0 { 2.0 * m as f64 / 254.0 } else { 1.0 })
        .collect();
    let q: Vec<u8> = w
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let s = scales64[channel_of(i)];
            ((v as f64 / s).round().clamp(-127.0, 127.0) as i8) as u8
        })
        .collect();
    (q, scales64.iter().map(|&s| s as f32).collect())
}

/// Int8 weights with the given per-channel scales along `axis` (a QDQ model's own:
/// `round(w / s)` gives back its int8 values, since `w` is their dequantization).
fn weights_with_scales(t: &IrTensor, axis: usize, scales: &[f32]) -> Vec<u8> {
    let w = bytes_f32(t.data.as_deref().unwrap_or(&[]));
    let dims: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
    let inner = dims
        .get(axis + 1..)
        .map_or(1, |d| d.iter().product::<usize>());
    let channels = scales.len().max(1);
    w.iter()
        .enumerate()
        .map(|(i, &v)| {
            let s = scales
                .get((i / inner.max(1)) % channels)
                .copied()
                .unwrap_or(1.0);
            ((v as f64 / s as f64).round().clamp(-128.0, 127.0) as i8) as u8
        })
        .collect()
}

fn per_tensor(scale: f32, zp: i64) -> IrQuant {
    IrQuant {
        scales: vec![scale],
        zero_points: vec![zp],
        axis: 0,
    }
}

/// Quantizes a float graph with a calibration set.
///
/// `samples`: one `Vec<f32>` per calibration sample, each with exactly as many values as
/// the model's single input tensor (row-major, the input's shape). The float graph must
/// hold float32 tensors only (int32 constants for PAD paddings and MEAN axes).
///
/// Errors: [`QuantizeError::EmptyCalibration`], [`QuantizeError::Sample`] (wrong length,
/// non-finite value), [`QuantizeError::Unsupported`] (an op or tensor type the quantizer
/// cannot handle, naming the op), [`QuantizeError::Arity`].
pub fn quantize(
    graph: &Graph,
    samples: &[Vec<f32>],
    opts: &QuantizeOptions,
) -> Result<Graph, QuantizeError> {
    check_float(graph)?;
    if samples.is_empty() {
        return Err(QuantizeError::EmptyCalibration);
    }
    let input = &graph.tensors[graph.inputs[0]];
    let n = input.shape.iter().map(|&d| d as usize).product::<usize>();
    for (index, s) in samples.iter().enumerate() {
        if s.len() != n {
            return Err(QuantizeError::Sample {
                index,
                reason: format!(
                    "{} values, the model input {:?} has shape {:?} = {n} values",
                    s.len(),
                    input.name,
                    input.shape
                ),
            });
        }
        if let Some(p) = s.iter().position(|v| !v.is_finite()) {
            return Err(QuantizeError::Sample {
                index,
                reason: format!("value {p} is not finite ({})", s[p]),
            });
        }
    }
    let obs = calibrate(graph, samples, opts.method != RangeMethod::MinMax)?;

    // Activation parameters, in op order so that constraints can copy from inputs.
    let mut params: Vec<Option<(f32, i64)>> = vec![None; graph.tensors.len()];
    // With min/max ranges (the converter's method), a tensor that TFLite's float
    // interpreter overwrites in place has the union of its own range and the overwriting
    // op's output range, as the converter records it ([`in_place_inputs`]).
    let mut widened: HashMap<usize, (f64, f64)> = HashMap::new();
    if opts.method == RangeMethod::MinMax {
        for (t, by) in in_place_inputs(graph) {
            let ((a, b), (c, d)) = (obs[t].lo_hi(), obs[by].lo_hi());
            widened.insert(t, (a.min(c), b.max(d)));
        }
    }
    let from_obs = |t: usize| {
        let (lo, hi) = widened
            .get(&t)
            .copied()
            .unwrap_or_else(|| range_of(&obs[t], opts.method));
        asymmetric_params(lo, hi)
    };
    let forced = tie_same_scale(graph, &|t| Some(from_obs(t)));
    params[graph.inputs[0]] =
        Some(forced[graph.inputs[0]].unwrap_or_else(|| from_obs(graph.inputs[0])));
    for op in &graph.ops {
        let x = op.inputs[0];
        if let Some(p) = forced[op.output] {
            params[op.output] = Some(p);
            continue;
        }
        let p = match op.op {
            Op::Softmax(_) | Op::Logistic(_) => (1.0 / 256.0, -128),
            Op::Tanh(_) => (1.0 / 128.0, 0),
            ref o if keeps_input_params(o) => params[x].unwrap_or_else(|| from_obs(x)),
            _ => from_obs(op.output),
        };
        params[op.output] = Some(p);
    }
    if opts.bias_correction {
        let mut corrected = graph.clone();
        for (b, shift) in bias_corrections(graph, samples, opts.per_channel)? {
            let vals = bytes_f32(graph.tensors[b].data.as_deref().unwrap_or(&[]));
            let new: Vec<f32> = vals
                .iter()
                .zip(&shift)
                .map(|(&v, &d)| (v as f64 - d) as f32)
                .collect();
            corrected.tensors[b].data = Some(f32_bytes(&new));
        }
        return lower(&corrected, &params, &HashMap::new(), opts);
    }
    lower(graph, &params, &HashMap::new(), opts)
}

/// Empirical bias correction (Nagel et al., "Data-Free Quantization Through Weight
/// Equalization and Bias Correction", ICCV 2019, §4.2, with the expectation taken over the
/// calibration set instead of batch-norm statistics): for every CONV_2D, DEPTHWISE_CONV_2D
/// and FULLY_CONNECTED with a float bias, the per-output-channel mean of `(Ŵ − W) ∗ x`,
/// where `Ŵ` is the weights after the int8 round trip this quantizer applies
/// (`per_channel` as in [`QuantizeOptions`]) and `x` the op's float input on each
/// calibration sample (every output position of every sample counts once). The op is run
/// by the reference evaluator with the weights `Ŵ − W`, no bias and no fused activation,
/// so the shift is the pre-activation error the int8 weights add on average; subtracting
/// it from the bias removes that mean error.
///
/// Returns `(bias tensor, shift per output channel)` for each such op. Errors as
/// [`quantize`] (a graph the evaluator rejects).
pub fn bias_corrections(
    graph: &Graph,
    samples: &[Vec<f32>],
    per_channel: bool,
) -> Result<Vec<(usize, Vec<f64>)>, QuantizeError> {
    // One single-op graph per layer: input, weights Ŵ − W, zero bias, output.
    let mut layers: Vec<(usize, usize, Graph)> = Vec::new();
    for op in &graph.ops {
        let axis = match op.op {
            Op::Conv2d(_) | Op::FullyConnected(_) => 0,
            Op::DepthwiseConv2d(_) => 3,
            _ => continue,
        };
        let (Some(&w), Some(&b)) = (op.inputs.get(1), op.inputs.get(2)) else {
            continue;
        };
        let (wt, bt) = (&graph.tensors[w], &graph.tensors[b]);
        if wt.dtype != DType::F32 || bt.dtype != DType::F32 || bt.data.is_none() {
            continue;
        }
        let (q, scales) = quantize_weights(wt, per_channel.then_some(axis));
        let dims: Vec<usize> = wt.shape.iter().map(|&d| d as usize).collect();
        let (channels, inner) = if per_channel {
            (dims[axis], dims[axis + 1..].iter().product::<usize>())
        } else {
            (1, 1)
        };
        let delta: Vec<f32> = bytes_f32(wt.data.as_deref().unwrap_or(&[]))
            .iter()
            .zip(&q)
            .enumerate()
            .map(|(i, (&v, &qi))| {
                let s = scales[(i / inner.max(1)) % channels.max(1)] as f64;
                ((qi as i8) as f64 * s - v as f64) as f32
            })
            .collect();
        let n_bias = bytes_f32(bt.data.as_deref().unwrap_or(&[])).len();
        let tensor = |index: u32, from: &IrTensor, data: Option<Vec<u8>>| IrTensor {
            index,
            name: from.name.clone(),
            dtype: DType::F32,
            shape: from.shape.clone(),
            quant: None,
            data,
        };
        let mut one = op.clone();
        one.inputs = vec![0, 1, 2];
        one.output = 3;
        one.requant = None;
        match &mut one.op {
            Op::Conv2d(p) | Op::DepthwiseConv2d(p) => p.clamp = Clamp::NONE,
            Op::FullyConnected(p) => p.clamp = Clamp::NONE,
            _ => {}
        }
        let g = Graph {
            tensors: vec![
                tensor(0, &graph.tensors[op.inputs[0]], None),
                tensor(1, wt, Some(f32_bytes(&delta))),
                tensor(2, bt, Some(f32_bytes(&vec![0.0; n_bias]))),
                tensor(3, &graph.tensors[op.output], None),
            ],
            inputs: vec![0],
            outputs: vec![3],
            ops: vec![one],
            description: String::new(),
        };
        layers.push((op.inputs[0], b, g));
    }
    let evals = layers
        .iter()
        .map(|(_, _, g)| Evaluator::new(g))
        .collect::<Result<Vec<_>, _>>()?;
    let mut sums: Vec<Vec<f64>> = layers
        .iter()
        .map(|(_, b, _)| {
            vec![0.0; bytes_f32(graph.tensors[*b].data.as_deref().unwrap_or(&[])).len()]
        })
        .collect();
    let mut counts = vec![0u64; layers.len()];
    let eval = Evaluator::new(graph)?;
    for s in samples {
        let values = eval.run(&[&f32_bytes(s)])?;
        for (k, ((input, _, _), e)) in layers.iter().zip(&evals).enumerate() {
            let Some(x) = &values[*input] else { continue };
            let out = e.run(&[x])?;
            let err = bytes_f32(out[3].as_deref().unwrap_or(&[]));
            let c = sums[k].len().max(1);
            for (i, &v) in err.iter().enumerate() {
                sums[k][i % c] += v as f64;
            }
            counts[k] += (err.len() / c) as u64;
        }
    }
    Ok(layers
        .iter()
        .zip(sums)
        .zip(counts)
        .map(|(((_, b, _), sum), n)| (*b, sum.iter().map(|v| v / n.max(1) as f64).collect()))
        .collect())
}

/// Lowers a float QDQ graph (from [`crate::onnx::import_model`], `qdq` its parameters)
/// onto the int8 kernels with the model's own quantization parameters: no calibration.
/// Every activation takes the `(scale, zero point)` of its QuantizeLinear, every
/// Conv / Gemm / MatMul weight its int8 values and per-channel scales; biases are
/// re-derived as `round(b / (input_scale · weight_scale))` (ONNX Runtime's own bias
/// scale, so its int32 values come back); other float constants (Add / Mul operands) are
/// quantized per tensor from their values. RESHAPE, MAX_POOL_2D, AVERAGE_POOL_2D and PAD
/// take their input's parameters, SOFTMAX / LOGISTIC output `1/256, -128` and TANH
/// `1/128, 0`, as TFLite's int8 kernels require; a QDQ model that quantizes those
/// outputs otherwise is refused. MAXIMUM / MINIMUM (whose int8 kernels compare stored
/// values) keep their output's parameters: an input quantized otherwise is requantized
/// to them by an inserted int8 → int8 QUANTIZE, a constant input is quantized with them,
/// and the inner results of a Max / Min of three or more inputs take them too. With `float_io` the input is quantized and the output
/// dequantized on the device (the QDQ model's float interface).
///
/// Errors: [`QuantizeError::Unsupported`] naming the ONNX node, the tensor and what
/// does not fit TFLite's int8 scheme (a missing QuantizeLinear, parameters an op cannot
/// have); [`QuantizeError::UnquantizedInput`]; [`QuantizeError::Arity`] for a graph that is
/// not a one-input, one-output float graph.
#[cfg(feature = "onnx")]
pub fn quantize_qdq(
    graph: &Graph,
    qdq: &crate::onnx::QdqParams,
    float_io: bool,
) -> Result<Graph, QuantizeError> {
    check_float(graph)?;
    let mut params: Vec<Option<(f32, i64)>> = vec![None; graph.tensors.len()];
    let input = graph.inputs[0];
    params[input] = Some(
        *qdq.activations
            .get(&input)
            .ok_or_else(|| QuantizeError::UnquantizedInput(graph.tensors[input].name.clone()))?,
    );
    let same = |a: (f32, i64), b: (f32, i64)| a.1 == b.1 && (a.0 - b.0).abs() <= 1e-6 * b.0;
    // Inner ops of a MAXIMUM / MINIMUM chain (no QuantizeLinear of their own) take the
    // parameters the same-scale step forces on them; the model's own ones come first.
    let forced = tie_same_scale(graph, &|t| qdq.activations.get(&t).copied());
    for (i, op) in graph.ops.iter().enumerate() {
        let node = qdq
            .nodes
            .get(op.source_index as usize)
            .cloned()
            .unwrap_or_else(|| format!("node {}", op.source_index));
        let bad = |reason: String| QuantizeError::Unsupported {
            index: i,
            op: op.op.name(),
            reason: format!("ONNX {node}: {reason}"),
        };
        let out = op.output;
        let name = &graph.tensors[out].name;
        let fixed = qdq.activations.get(&out).copied().or(forced[out]);
        let required = match op.op {
            Op::Softmax(_) | Op::Logistic(_) => Some(((1.0 / 256.0), -128)),
            Op::Tanh(_) => Some((1.0 / 128.0, 0)),
            Op::Reshape
            | Op::MaxPool2d(_)
            | Op::AveragePool2d(_)
            | Op::Pad(_)
            | Op::Transpose(_)
            | Op::StridedSlice(_)
            | Op::ReduceMax(_)
            | Op::ResizeNearest(_) => params[op.inputs[0]],
            _ => None,
        };
        let p = match (required, fixed) {
            (Some(r), Some(f)) if !same(r, f) => {
                return Err(bad(format!(
                    "the model quantizes {name:?} with scale {}, zero point {}; TFLite's int8 {} needs scale {}, zero point {} {}",
                    f.0,
                    f.1,
                    op.op.name(),
                    r.0,
                    r.1,
                    if matches!(op.op, Op::Softmax(_) | Op::Logistic(_) | Op::Tanh(_)) {
                        "(fixed by the kernel)"
                    } else {
                        "(its input's)"
                    }
                )))
            }
            (Some(r), _) => r,
            (None, Some(f)) => f,
            (None, None) => {
                return Err(bad(format!(
                    "{name:?} has no QuantizeLinear / DequantizeLinear pair; a QDQ model must quantize every activation (or convert the float model and calibrate it with `edgeflow quantize`)"
                )))
            }
        };
        params[out] = Some(p);
    }
    let opts = QuantizeOptions {
        method: RangeMethod::MinMax,
        per_channel: true,
        float_io,
        bias_correction: false,
    };
    lower(graph, &params, &qdq.weights, &opts)
}

/// The int8 graph from activation parameters (`params`, per tensor) and, for weights
/// in `weight_scales`, the given per-output-channel scales (others: symmetric from their
/// values, per `opts.per_channel`).
fn lower(
    graph: &Graph,
    params: &[Option<(f32, i64)>],
    weight_scales: &HashMap<usize, Vec<f32>>,
    opts: &QuantizeOptions,
) -> Result<Graph, QuantizeError> {
    let mut g = graph.clone();
    for (t, p) in params.iter().enumerate() {
        if let (Some((s, zp)), None) = (p, &graph.tensors[t].data) {
            g.tensors[t].dtype = DType::I8;
            g.tensors[t].quant = Some(per_tensor(*s, *zp));
        }
    }
    // Weights and biases.
    for op in &graph.ops {
        let axis = match op.op {
            Op::Conv2d(_) | Op::FullyConnected(_) => 0,
            Op::DepthwiseConv2d(_) => 3,
            _ => continue,
        };
        let (w, b) = (op.inputs[1], op.inputs.get(2).copied());
        if g.tensors[w].dtype == DType::F32 {
            let (q, scales) = match weight_scales.get(&w) {
                Some(s) => (weights_with_scales(&graph.tensors[w], axis, s), s.clone()),
                None => quantize_weights(&graph.tensors[w], opts.per_channel.then_some(axis)),
            };
            let t = &mut g.tensors[w];
            t.dtype = DType::I8;
            t.data = Some(q);
            t.quant = Some(IrQuant {
                zero_points: vec![0; scales.len()],
                scales,
                axis: axis as u32,
            });
        }
        if let Some(b) = b.filter(|&b| g.tensors[b].dtype == DType::F32) {
            let s_in = g.tensors[op.inputs[0]]
                .quant
                .as_ref()
                .map_or(1.0, |q| q.scales[0]);
            let ws = g.tensors[w]
                .quant
                .as_ref()
                .map(|q| q.scales.clone())
                .unwrap_or_default();
            let vals = bytes_f32(graph.tensors[b].data.as_deref().unwrap_or(&[]));
            let scales: Vec<f32> = (0..vals.len())
                .map(|c| (s_in as f64 * ws[if ws.len() > 1 { c } else { 0 }] as f64) as f32)
                .collect();
            let data = vals
                .iter()
                .zip(&scales)
                .flat_map(|(&v, &s)| {
                    let q = (v as f64 / s as f64)
                        .round()
                        .clamp(i32::MIN as f64, i32::MAX as f64) as i32;
                    q.to_le_bytes()
                })
                .collect();
            let t = &mut g.tensors[b];
            t.dtype = DType::I32;
            t.data = Some(data);
            t.quant = Some(IrQuant {
                zero_points: vec![0; scales.len()],
                axis: 0,
                scales,
            });
        }
    }
    let quantize_const = |t: &mut IrTensor, v: &[f32], s: f32, zp: i64| {
        t.data = Some(
            v.iter()
                .map(|&x| {
                    (((x as f64 / s as f64).round() + zp as f64).clamp(-128.0, 127.0) as i8) as u8
                })
                .collect(),
        );
        t.dtype = DType::I8;
        t.quant = Some(per_tensor(s, zp));
    };
    // A constant MAXIMUM / MINIMUM operand: with the op's output parameters (values
    // outside its range clamp, as the converter quantizes it).
    for op in &graph.ops {
        if let (Op::Maximum | Op::Minimum, Some((s, zp))) = (&op.op, params[op.output]) {
            for &c in &op.inputs {
                let t = &mut g.tensors[c];
                if let (DType::F32, Some(d)) = (t.dtype, &t.data) {
                    let v = bytes_f32(d);
                    quantize_const(t, &v, s, zp);
                }
            }
        }
    }
    // Any other float constant (an ADD / MUL / CONCATENATION operand): per-tensor
    // asymmetric from its own values.
    for t in &mut g.tensors {
        if t.dtype == DType::F32 {
            if let Some(d) = &t.data {
                let v = bytes_f32(d);
                let lo = v.iter().copied().fold(0f32, f32::min) as f64;
                let hi = v.iter().copied().fold(0f32, f32::max) as f64;
                let (s, zp) = asymmetric_params(lo, hi);
                quantize_const(t, &v, s, zp);
            }
        }
    }

    // Ops: requantize concatenation inputs, then derive every fixed-point parameter.
    let mut ops: Vec<IrOp> = Vec::with_capacity(g.ops.len());
    let old_ops = std::mem::take(&mut g.ops);
    let new_tensor = |g: &mut Graph, like: usize, dtype: DType, quant: Option<IrQuant>| {
        let mut t = g.tensors[like].clone();
        // A fresh id: ids of a loaded artifact need not be dense.
        t.index = g.tensors.iter().map(|t| t.index + 1).max().unwrap_or(0);
        t.name = format!(
            "{}/{}",
            t.name,
            if dtype == DType::F32 {
                "float"
            } else {
                "requant"
            }
        );
        t.dtype = dtype;
        t.quant = quant;
        t.data = None;
        g.tensors.push(t);
        g.tensors.len() - 1
    };
    let quantize_op = |from: usize, to: usize, source: u32| IrOp {
        source_index: source,
        op: Op::Quantize(QuantizeParams {
            requant: Default::default(),
            input_zero_point: 0,
            output_zero_point: 0,
        }),
        requant: None,
        inputs: vec![from],
        output: to,
        macs: 0,
    };
    if opts.float_io {
        let q = g.inputs[0];
        let f = new_tensor(&mut g, q, DType::F32, None);
        g.inputs[0] = f;
        ops.push(quantize_op(f, q, 0));
    }
    // CONCATENATION / MAXIMUM / MINIMUM inputs whose parameters differ: requantized right
    // after they are produced (where the converter puts its QUANTIZE), to the parameters
    // of the first such op that reads them; another such op that reads them at other
    // parameters requantizes them itself.
    let mut requant_of: Vec<Option<(usize, Option<(f32, i64)>)>> = vec![None; graph.tensors.len()];
    for mut op in old_ops {
        if same_scale_inputs(&op.op) {
            for k in 0..op.inputs.len() {
                let t = op.inputs[k];
                let want = params[op.output];
                if params[t] == want || g.tensors[t].data.is_some() {
                    continue;
                }
                match requant_of[t] {
                    Some((r, p)) if p == want => op.inputs[k] = r,
                    _ => {
                        // A graph input read directly by the op, or a tensor an earlier
                        // same-scale op requantized to its own parameters.
                        let oq = g.tensors[op.output].quant.clone();
                        let r = new_tensor(&mut g, t, DType::I8, oq);
                        ops.push(quantize_op(t, r, op.source_index));
                        op.inputs[k] = r;
                    }
                }
            }
        }
        let (out, source) = (op.output, op.source_index);
        ops.push(op);
        let first = graph.ops.iter().find(|o| {
            same_scale_inputs(&o.op) && o.inputs.contains(&out) && params[out] != params[o.output]
        });
        if let Some(c) = first {
            let oq = g.tensors[c.output].quant.clone();
            let r = new_tensor(&mut g, out, DType::I8, oq);
            ops.push(quantize_op(out, r, source));
            requant_of[out] = Some((r, params[c.output]));
        }
    }
    if opts.float_io {
        let q = g.outputs[0];
        let f = new_tensor(&mut g, q, DType::F32, None);
        g.outputs[0] = f;
        let mut d = IrOp::new(vec![q], f);
        d.op = Op::Dequantize;
        d.source_index = ops.last().map_or(0, |o| o.source_index);
        ops.push(d);
    }
    for (i, op) in ops.iter_mut().enumerate() {
        *op = derive_int8(op, &g.tensors).map_err(|reason| QuantizeError::Unsupported {
            index: i,
            op: op.op.name(),
            reason,
        })?;
        if matches!(op.op, Op::Maximum | Op::Minimum) {
            let q = |t: usize| {
                g.tensors[t]
                    .quant
                    .as_ref()
                    .map(|q| (q.scales.clone(), q.zero_points.clone()))
            };
            if let Some(&t) = op.inputs.iter().find(|&&t| q(t) != q(op.output)) {
                return Err(QuantizeError::Unsupported {
                    index: i,
                    op: op.op.name(),
                    reason: format!(
                        "input tensor {t} ({:?}) and the output must share one scale and zero point (the kernel compares stored values), and it could not be requantized",
                        g.tensors[t].name
                    ),
                });
            }
        }
    }
    g.ops = ops;
    Ok(g)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use edgeflow_format::graph::FullyConnectedParams;

    /// x[1,3] -> FULLY_CONNECTED(2 units, ReLU) -> y[1,2].
    fn fc_graph() -> Graph {
        let t = |index: u32, shape: Vec<u32>, data: Option<Vec<f32>>| IrTensor {
            index,
            name: format!("t{index}"),
            dtype: DType::F32,
            shape,
            quant: None,
            data: data.map(|d| f32_bytes(&d)),
        };
        let mut op = IrOp::new(vec![0, 1, 2], 3);
        op.op = Op::FullyConnected(FullyConnectedParams {
            clamp: Clamp {
                min_f: 0.0,
                ..Clamp::NONE
            },
            requant: None,
        });
        Graph {
            tensors: vec![
                t(0, vec![1, 3], None),
                t(1, vec![2, 3], Some(vec![0.5, -1.0, 0.25, 2.0, 0.1, -0.3])),
                t(2, vec![2], Some(vec![0.1, -0.2])),
                t(3, vec![1, 2], None),
            ],
            inputs: vec![0],
            outputs: vec![3],
            ops: vec![op],
            description: String::new(),
        }
    }

    #[test]
    fn asymmetric_params_follow_tflite_nudging() {
        // [-1, 1]: zero point from the double-precision scale, -0.5 rounds away from 0.
        assert_eq!(asymmetric_params(-1.0, 1.0), (2.0f32 / 255.0, -1));
        // Positive-only ranges are extended to 0: zero point at qmin.
        assert_eq!(asymmetric_params(0.5, 2.55).1, -128);
        assert_eq!(asymmetric_params(0.0, 0.0), (1.0, 0));
    }

    #[test]
    fn weights_are_symmetric_per_channel() {
        let g = fc_graph();
        let (q, s) = quantize_weights(&g.tensors[1], Some(0));
        assert_eq!(
            s,
            vec![(2.0f64 * 1.0 / 254.0) as f32, (2.0f64 * 2.0 / 254.0) as f32]
        );
        let q: Vec<i8> = q.iter().map(|&b| b as i8).collect();
        assert_eq!(q, vec![64, -127, 32, 127, 6, -19]);
    }

    #[test]
    fn quantized_graph_tracks_the_float_graph() {
        let g = fc_graph();
        let samples: Vec<Vec<f32>> = (0..50)
            .map(|i| {
                let x = i as f32 / 25.0 - 1.0;
                vec![x, -x * 0.5, x * x]
            })
            .collect();
        let q = quantize(&g, &samples, &QuantizeOptions::default()).unwrap();
        assert_eq!(q.tensors[3].dtype, DType::I8);
        let art = crate::emit(&q, "fc").unwrap();
        let model = edgeflow_nn::Model::parse(&art.artifact).unwrap();
        let float = Evaluator::new(&g).unwrap();
        let (s_in, z_in) = (
            q.tensors[0].quant.as_ref().unwrap().scales[0],
            q.tensors[0].quant.as_ref().unwrap().zero_points[0],
        );
        let (s_out, z_out) = (
            q.tensors[3].quant.as_ref().unwrap().scales[0],
            q.tensors[3].quant.as_ref().unwrap().zero_points[0],
        );
        for s in &samples {
            let want = bytes_f32(float.run(&[&f32_bytes(s)]).unwrap()[3].as_ref().unwrap());
            let mut arena = vec![0u8; model.arena_bytes() + 16];
            let off = arena.as_ptr().align_offset(16);
            let mut rt = edgeflow_nn::Runtime::new(&model, &mut arena[off..]).unwrap();
            let inp: Vec<u8> = s
                .iter()
                .map(|&v| ((v / s_in).round() as i64 + z_in).clamp(-128, 127) as i8 as u8)
                .collect();
            rt.input_mut(0).unwrap().copy_from_slice(&inp);
            rt.invoke().unwrap();
            for (o, w) in rt.output(0).unwrap().iter().zip(&want) {
                let got = (*o as i8 as i64 - z_out) as f32 * s_out;
                assert!((got - w).abs() <= 2.0 * s_out + s_in * 3.0, "{got} vs {w}");
            }
        }
    }

    /// x[1,4] -> LOGISTIC -> MAXIMUM(., c) -> y: the LOGISTIC output is fixed at
    /// `1/256, -128`, so it is requantized to the MAXIMUM's output parameters by an
    /// inserted QUANTIZE; the constant takes them too; the result tracks the float graph.
    #[test]
    fn maximum_after_a_fixed_range_op_requantizes_its_input() {
        let t = |index: u32, data: Option<Vec<f32>>| IrTensor {
            index,
            name: format!("t{index}"),
            dtype: DType::F32,
            shape: vec![1, 4],
            quant: None,
            data: data.map(|d| f32_bytes(&d)),
        };
        let mut sig = IrOp::new(vec![0], 1);
        sig.op = Op::Logistic(edgeflow_nn::params::elementwise::logistic_params(1.0, 0));
        let mut max = IrOp::new(vec![1, 2], 3);
        max.op = Op::Maximum;
        let g = Graph {
            tensors: vec![
                t(0, None),
                t(1, None),
                t(2, Some(vec![0.3, 0.6, 0.9, 1.5])),
                t(3, None),
            ],
            inputs: vec![0],
            outputs: vec![3],
            ops: vec![sig, max],
            description: String::new(),
        };
        let samples: Vec<Vec<f32>> = (0..40)
            .map(|i| {
                let x = i as f32 / 5.0 - 4.0;
                vec![x, -x, x * 0.5, 1.0]
            })
            .collect();
        let opts = QuantizeOptions {
            method: RangeMethod::MinMax,
            ..QuantizeOptions::default()
        };
        let q = quantize(&g, &samples, &opts).unwrap();
        let names: Vec<&str> = q.ops.iter().map(|o| o.op.name()).collect();
        assert_eq!(names, ["LOGISTIC", "QUANTIZE", "MAXIMUM"]);
        let qp = |t: usize| q.tensors[t].quant.clone().unwrap();
        let m = &q.ops[2];
        let out = qp(m.output);
        // The output's range: [min(0, .), max] of max(sigmoid(x), c) = [0, 1.5].
        assert_eq!(
            (out.scales[0], out.zero_points[0]),
            asymmetric_params(0.0, 1.5)
        );
        for &i in &m.inputs {
            assert_eq!(qp(i).scales, out.scales);
            assert_eq!(qp(i).zero_points, out.zero_points);
        }
        assert_eq!(qp(q.ops[0].output).scales[0], 1.0 / 256.0);
        let art = crate::emit(&q, "max").unwrap();
        let model = edgeflow_nn::Model::parse(&art.artifact).unwrap();
        let float = Evaluator::new(&g).unwrap();
        let (s_in, z_in) = (qp(0).scales[0], qp(0).zero_points[0]);
        let (s_out, z_out) = (out.scales[0], out.zero_points[0]);
        for s in &samples {
            let want = bytes_f32(float.run(&[&f32_bytes(s)]).unwrap()[3].as_ref().unwrap());
            let mut arena = vec![0u8; model.arena_bytes() + 16];
            let off = arena.as_ptr().align_offset(16);
            let mut rt = edgeflow_nn::Runtime::new(&model, &mut arena[off..]).unwrap();
            let inp: Vec<u8> = s
                .iter()
                .map(|&v| ((v / s_in).round() as i64 + z_in).clamp(-128, 127) as i8 as u8)
                .collect();
            rt.input_mut(0).unwrap().copy_from_slice(&inp);
            rt.invoke().unwrap();
            for (o, w) in rt.output(0).unwrap().iter().zip(&want) {
                let got = (*o as i8 as i64 - z_out) as f32 * s_out;
                // Input rounding through the sigmoid (slope <= 1/4), the sigmoid's and the
                // requantization's steps.
                assert!(
                    (got - w).abs() <= s_in / 4.0 + 1.0 / 256.0 + 1.5 * s_out,
                    "{got} vs {w}"
                );
            }
        }
    }

    #[test]
    fn bias_correction_removes_the_mean_weight_error() {
        // Per-tensor weights make the int8 error large enough to see.
        let g = fc_graph();
        let samples: Vec<Vec<f32>> = (0..40)
            .map(|i| {
                let x = i as f32 / 20.0;
                vec![x, 1.0 - x, 0.5 + x * x]
            })
            .collect();
        let w = bytes_f32(g.tensors[1].data.as_deref().unwrap());
        for per_channel in [true, false] {
            let (q, s) = quantize_weights(&g.tensors[1], per_channel.then_some(0));
            let shifts = bias_corrections(&g, &samples, per_channel).unwrap();
            assert_eq!(shifts.len(), 1);
            assert_eq!(shifts[0].0, 2);
            // By hand: FC is linear, so the mean shift is (Ŵ − W) · mean(x).
            let mean: Vec<f64> = (0..3)
                .map(|j| samples.iter().map(|r| r[j] as f64).sum::<f64>() / 40.0)
                .collect();
            for c in 0..2 {
                let sc = s[if per_channel { c } else { 0 }] as f64;
                let want: f64 = (0..3)
                    .map(|j| {
                        let k = c * 3 + j;
                        ((q[k] as i8) as f64 * sc - w[k] as f64) * mean[j]
                    })
                    .sum();
                let got = shifts[0].1[c];
                assert!(
                    (got - want).abs() <= 1e-6,
                    "{per_channel} {c}: {got} vs {want}"
                );
            }
            if !per_channel {
                assert!(shifts[0].1.iter().any(|v| v.abs() > 1e-4), "{shifts:?}");
            }
        }
        // The option applies it: the int8 bias is round((b − shift) / (s_in · s_w)).
        let opts = QuantizeOptions {
            per_channel: false,
            bias_correction: true,
            ..QuantizeOptions::default()
        };
        let q = quantize(&g, &samples, &opts).unwrap();
        let plain = quantize(
            &g,
            &samples,
            &QuantizeOptions {
                bias_correction: false,
                ..opts
            },
        )
        .unwrap();
        assert_ne!(q.tensors[2].data, plain.tensors[2].data);
        let shift = &bias_corrections(&g, &samples, false).unwrap()[0].1;
        let bq = q.tensors[2].quant.as_ref().unwrap().scales.clone();
        let b = bytes_f32(g.tensors[2].data.as_deref().unwrap());
        let got: Vec<i32> = q.tensors[2]
            .data
            .as_ref()
            .unwrap()
            .chunks(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        for c in 0..2 {
            let v = ((b[c] as f64 - shift[c]) as f32) as f64 / bq[c] as f64;
            assert_eq!(got[c], v.round() as i32);
        }
    }

    #[test]
    fn bad_calibration_is_named() {
        let g = fc_graph();
        let o = QuantizeOptions::default();
        assert!(matches!(
            quantize(&g, &[], &o),
            Err(QuantizeError::EmptyCalibration)
        ));
        let e = quantize(&g, &[vec![0.0; 3], vec![0.0; 4]], &o).unwrap_err();
        assert!(matches!(e, QuantizeError::Sample { index: 1, .. }), "{e}");
        assert!(e.to_string().contains("4 values"), "{e}");
        let e = quantize(&g, &[vec![0.0, f32::NAN, 1.0]], &o).unwrap_err();
        assert!(e.to_string().contains("not finite"), "{e}");
    }

    #[test]
    fn already_quantized_or_non_float_is_rejected() {
        let mut g = fc_graph();
        g.tensors[3].dtype = DType::I8;
        let e = quantize(&g, &[vec![0.0; 3]], &QuantizeOptions::default()).unwrap_err();
        assert!(
            matches!(
                e,
                QuantizeError::Unsupported {
                    index: 0,
                    op: "FULLY_CONNECTED",
                    ..
                }
            ),
            "{e}"
        );
        let mut g = fc_graph();
        g.ops[0].op = Op::Dequantize;
        let e = quantize(&g, &[vec![0.0; 3]], &QuantizeOptions::default()).unwrap_err();
        assert!(e.to_string().contains("already"), "{e}");
    }

    #[test]
    fn range_methods_parse_and_shrink() {
        assert_eq!(
            "minmax".parse::<RangeMethod>().unwrap(),
            RangeMethod::MinMax
        );
        assert_eq!(
            "percentile:99.9".parse::<RangeMethod>().unwrap(),
            RangeMethod::Percentile(99.9)
        );
        assert_eq!("kl".parse::<RangeMethod>().unwrap(), RangeMethod::Kl);
        assert!("kld".parse::<RangeMethod>().is_err());
        // One outlier among many small values: percentile and MSE clip it, min/max keeps it.
        let mut o = Observer::new();
        let vals: Vec<f32> = (0..10_000)
            .map(|i| (i % 100) as f32 / 100.0)
            .chain([50.0])
            .collect();
        for &v in &vals {
            o.min = o.min.min(v);
            o.max = o.max.max(v);
        }
        o.hist = vec![0; BINS];
        o.abs_hist = vec![0; BINS];
        for &v in &vals {
            let b = o.bin(v);
            o.hist[b] += 1;
            let a = o.abs_bin(v);
            o.abs_hist[a] += 1;
        }
        assert_eq!(range_of(&o, RangeMethod::MinMax).1, 50.0);
        assert!(range_of(&o, RangeMethod::Percentile(99.9)).1 < 2.0);
        assert!(range_of(&o, RangeMethod::Mse).1 < 50.0);
        // KL cannot clip here: the values fill 41 of the 2048 bins, and a threshold
        // below 256 bins (levels) is never a candidate; every candidate that clips puts
        // the outlier on an empty bin (infinite divergence). So it keeps the range.
        assert_eq!(range_of(&o, RangeMethod::Kl), (0.0, 50.0));
        // Values spread over [0, 20) (820 bins) and the outlier: KL clips it.
        let mut o = Observer::new();
        let vals: Vec<f32> = (0..20_000)
            .map(|i| (i * 7 % 1000) as f32 / 50.0)
            .chain([50.0])
            .collect();
        for &v in &vals {
            o.min = o.min.min(v);
            o.max = o.max.max(v);
        }
        o.hist = vec![0; BINS];
        o.abs_hist = vec![0; BINS];
        for &v in &vals {
            let b = o.bin(v);
            o.hist[b] += 1;
            let a = o.abs_bin(v);
            o.abs_hist[a] += 1;
        }
        let (lo, hi) = range_of(&o, RangeMethod::Kl);
        assert_eq!(lo, 0.0);
        assert!((19.9..21.0).contains(&hi), "{hi}");
        // The same values with a negative one: the symmetric search over |x| clips the
        // outlier and keeps the observed lower end.
        o.min = -1.0;
        let (lo, hi) = range_of(&o, RangeMethod::Kl);
        assert_eq!(lo, -1.0);
        assert!((19.9..21.0).contains(&hi), "{hi}");
    }

    #[test]
    fn kl_is_not_pulled_down_by_relu_zeros() {
        // A ReLU of N(0.3, 1) as counts of the density (no randomness): 38 % of the
        // values are exact zeros in the first bin, the rest a smooth decreasing tail.
        let (n, max) = (50_000.0f64, 4.5f64);
        let w = max / BINS as f64;
        let pdf =
            |x: f64| (-(x - 0.3) * (x - 0.3) / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let mut o = Observer::new();
        o.min = 0.0;
        o.max = max as f32;
        o.hist = (0..BINS)
            .map(|j| (n * pdf((j as f64 + 0.5) * w) * w).round() as u64)
            .collect();
        o.hist[0] += 18_932;
        o.abs_hist = o.hist.clone();
        let raw = entropy_calibration(&o.hist, 256).unwrap().bins;
        let mut flat = o.hist.clone();
        flat[0] = flat[1];
        let kept = entropy_calibration(&flat, 256).unwrap().bins;
        // The spike pulls the raw search's threshold down; range_of searches without it.
        assert!(raw < kept, "{raw} {kept}");
        let (lo, hi) = range_of(&o, RangeMethod::Kl);
        assert_eq!(lo, 0.0);
        assert_eq!(hi, max * kept as f64 / BINS as f64);
    }

    #[test]
    fn entropy_calibration_edge_cases() {
        assert_eq!(entropy_calibration(&[], 128), None);
        assert_eq!(entropy_calibration(&[0; 2048], 128), None);
        assert_eq!(entropy_calibration(&[1; 100], 128), None);
        // A flat histogram: no threshold loses nothing but the full range.
        let c = entropy_calibration(&[5; 2048], 128).unwrap();
        assert_eq!(c.bins, 2048);
        assert!(c.divergence.abs() < 1e-12, "{c:?}");
    }
}
