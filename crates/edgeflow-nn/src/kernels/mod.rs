//! The kernels, one module per op family, each with an int8 and an f32 variant.
//!
//! Every op has two entry points, wired up by [`check`] and [`eval`]:
//! - `check(params, inputs, output, scratch_len) -> Result<(), &'static str>` runs once
//!   at parse time and verifies every precondition `eval` relies on (shapes agree, dtypes
//!   are supported, parameter arrays have the right length, scratch is big enough);
//! - `eval(params, inputs, output, scratch)` computes, and must not panic on any op that
//!   passed `check` (slices are indexed within the shapes `check` verified).
//!
//! `scratch_bytes` tells the host planner how much scratch an op needs.

use edgeflow_format::graph::{Op, TensorDef};

/// An input tensor as a kernel sees it: its description and its bytes.
#[derive(Clone, Copy, Debug)]
pub struct TensorIn<'d, 'a> {
    /// The validated description.
    pub def: &'d TensorDef<'a>,
    /// `num_elements * dtype.size()` bytes, little-endian elements.
    pub data: &'d [u8],
}

/// The output tensor as a kernel sees it.
#[derive(Debug)]
pub struct TensorOut<'d, 'a> {
    /// The validated description.
    pub def: &'d TensorDef<'a>,
    /// `num_elements * dtype.size()` bytes to fill.
    pub data: &'d mut [u8],
}

mod activation;
#[cfg_attr(not(any(test, edgeflow_arm_dsp)), allow(dead_code))]
mod arm;
mod concat;
mod conv;
mod depthwise;
mod elementwise;
mod fully_connected;
mod gemmlowp;
mod mean;
mod pad;
mod pool;
mod quantize;
mod reshape;
mod softmax;

/// Verifies an op's preconditions (see the module docs).
pub fn check(
    op: &Op<'_>,
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
    scratch_len: usize,
) -> Result<(), &'static str> {
    match op {
        Op::Conv2d(p) => conv::check(p, inputs, output, scratch_len),
        Op::DepthwiseConv2d(p) => depthwise::check(p, inputs, output, scratch_len),
        Op::FullyConnected(p) => fully_connected::check(p, inputs, output, scratch_len),
        Op::AveragePool2d(p) => pool::check_average(p, inputs, output),
        Op::MaxPool2d(p) => pool::check_max(p, inputs, output),
        Op::Add(p) => elementwise::check_add(p, inputs, output),
        Op::Mul(p) => elementwise::check_mul(p, inputs, output),
        Op::Reshape => reshape::check(inputs, output),
        Op::Softmax(p) => softmax::check(p, inputs, output),
        Op::Quantize(p) => quantize::check_quantize(p, inputs, output),
        Op::Dequantize => quantize::check_dequantize(inputs, output),
        Op::Concatenation(p) => concat::check(p, inputs, output),
        Op::Pad(p) => pad::check(p, inputs, output),
        Op::Mean(p) => mean::check(p, inputs, output),
        Op::Logistic(p) => activation::check_logistic(p, inputs, output),
        Op::Tanh(p) => activation::check_tanh(p, inputs, output),
    }
}

/// Scratch bytes an op needs in the arena while it runs (0 for most ops).
pub fn scratch_bytes(op: &Op<'_>, inputs: &[TensorDef<'_>], output: &TensorDef<'_>) -> usize {
    match op {
        Op::Conv2d(p) => conv::scratch_bytes(p, inputs, output),
        Op::DepthwiseConv2d(p) => depthwise::scratch_bytes(p, inputs, output),
        Op::FullyConnected(p) => fully_connected::scratch_bytes(p, inputs, output),
        Op::Add(_) => elementwise::add_scratch_bytes(output),
        _ => 0,
    }
}

/// Executes an op whose [`check`] passed.
pub fn eval(
    op: &Op<'_>,
    inputs: &[TensorIn<'_, '_>],
    output: TensorOut<'_, '_>,
    scratch: &mut [u8],
) {
    match op {
        Op::Conv2d(p) => conv::eval(p, inputs, output, scratch),
        Op::DepthwiseConv2d(p) => depthwise::eval(p, inputs, output, scratch),
        Op::FullyConnected(p) => fully_connected::eval(p, inputs, output, scratch),
        Op::AveragePool2d(p) => pool::eval_average(p, inputs, output),
        Op::MaxPool2d(p) => pool::eval_max(p, inputs, output),
        Op::Add(p) => elementwise::eval_add(p, inputs, output, scratch),
        Op::Mul(p) => elementwise::eval_mul(p, inputs, output),
        Op::Reshape => reshape::eval(inputs, output),
        Op::Softmax(p) => softmax::eval(p, inputs, output),
        Op::Quantize(p) => quantize::eval_quantize(p, inputs, output),
        Op::Dequantize => quantize::eval_dequantize(inputs, output),
        Op::Concatenation(p) => concat::eval(p, inputs, output),
        Op::Pad(p) => pad::eval(p, inputs, output),
        Op::Mean(p) => mean::eval(p, inputs, output),
        Op::Logistic(p) => activation::eval_logistic(p, inputs, output),
        Op::Tanh(p) => activation::eval_tanh(p, inputs, output),
    }
}
