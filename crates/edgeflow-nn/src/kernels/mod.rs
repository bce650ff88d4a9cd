//! The kernels, one module per op family, each with an int8 and an f32 variant, layered
//! as tract's linalg is:
//!
//! - [`generic`]: the portable layer every kernel builds on (element helpers,
//!   requantization arithmetic, window geometry, broadcasting, the portable dot
//!   products); no `unsafe`;
//! - [`arch`]: one module per architecture ([`arch::arm_dsp`] today), the only place
//!   allowed `unsafe`; each function there has a portable twin it is tested against
//!   (`testutil::specialised_matches_portable!`);
//! - [`epilogue`] (the int8 requantize-and-store, on `generic` arithmetic with `arch`
//!   instructions) and [`weighted`] (the one check / scratch / eval skeleton of CONV_2D,
//!   DEPTHWISE_CONV_2D and FULLY_CONNECTED);
//! - the op files: `conv.rs` holds convolution, `depthwise.rs` depthwise convolution, and
//!   so on. Imports go down the list, never up: no cycles;
//! - [`packed`] (host only, `std`): CONV_2D and FULLY_CONNECTED weights packed once per
//!   model (eight output channels per vector), and 3x3 DEPTHWISE_CONV_2D weights (32
//!   channels per vector), run by [`eval_host`] for
//!   [`crate::Runtime::invoke_packed`]; the device path ([`eval`]) never uses it.
//!
//! Every op has two entry points, wired up by [`check`] and [`eval`]:
//! - `check(params, inputs, output, scratch_len) -> Result<(), &'static str>` runs once
//!   at parse time and verifies every precondition `eval` relies on (shapes agree, dtypes
//!   are supported, parameter arrays have the right length, scratch is big enough);
//! - `eval(params, inputs, output, scratch)` computes, and must not panic on any op that
//!   passed `check` (slices are indexed within the shapes `check` verified).
//!
//! `scratch_bytes` tells the host planner how much scratch an op needs. The module is
//! private; outside the crate, ops run through [`crate::op`], which checks first.

// With only some ops linked (EDGEFLOW_NN_OPS), or without the f32 variants
// (EDGEFLOW_NN_F32=0), the others' kernels are unused.
#![cfg_attr(
    any(edgeflow_op_subset, not(edgeflow_f32)),
    allow(dead_code, unused_imports, unused_variables)
)]

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

// The portable layer and the per-architecture layer under it (tract linalg's split), and
// the parts the weighted ops share; then one module per op family.
mod arch;
mod epilogue;
mod generic;
#[cfg(any(test, feature = "std"))]
pub(crate) mod packed;
#[cfg(test)]
mod testutil;
mod weighted;

mod activation;
mod concat;
mod conv;
mod depthwise;
mod elementwise;
mod fully_connected;
mod mean;
mod minmax;
mod movement;
mod pad;
mod piecewise;
mod pool;
mod quantize;
mod reshape;
mod resize;
mod softmax;

use conv::Conv;
use depthwise::Depthwise;
use fully_connected::FullyConnected;

/// [`check`]'s answer for an op whose kernel the build left out (`EDGEFLOW_NN_OPS`, see
/// build.rs).
pub(crate) const NOT_LINKED: &str =
    "this op's kernel is not linked into this build (EDGEFLOW_NN_OPS at build time leaves it out)";

/// [`check`]'s answer for an op whose scratch region is smaller than its kernel needs
/// (an artifact planned before format 1.2 gave kernels their accumulator blocks as
/// scratch gets this; `Model::parse` then reports [`crate::Error::OlderPlan`]).
pub(crate) const SCRATCH_TOO_SMALL: &str = why!(
    "kernels/mod.rs",
    "scratch region smaller than the kernel needs"
);

/// [`check`]'s answer for an f32 use of an op whose f32 variant the build left out
/// (`EDGEFLOW_NN_F32=0`, see build.rs).
#[cfg(not(edgeflow_f32))]
const F32_NOT_LINKED: &str =
    "this op's f32 kernel is not linked into this build (EDGEFLOW_NN_F32=0 at build time)";

/// The most inputs an op of this build takes, the capacity of the input list
/// [`crate::Runtime::invoke`] keeps on the stack: [`MAX_OP_INPUTS`] with CONCATENATION
/// linked, else 4 (STRIDED_SLICE's input, begin, end and strides; every other op takes
/// at most 3). [`check`] rejects an op with more.
///
/// [`MAX_OP_INPUTS`]: edgeflow_format::graph::MAX_OP_INPUTS
pub(crate) const RUN_INPUTS: usize = if cfg!(edgeflow_op = "CONCATENATION") {
    edgeflow_format::graph::MAX_OP_INPUTS
} else {
    4
};

/// Verifies an op's preconditions (see the module docs).
pub fn check(
    op: &Op<'_>,
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
    scratch_len: usize,
) -> Result<(), &'static str> {
    if inputs.len() > RUN_INPUTS {
        return Err(
            "more inputs than any op linked into this build takes (CONCATENATION is not linked)",
        );
    }
    #[cfg(not(edgeflow_f32))]
    if output.dtype == edgeflow_format::graph::DType::F32
        && matches!(
            op,
            Op::Conv2d(_)
                | Op::DepthwiseConv2d(_)
                | Op::FullyConnected(_)
                | Op::AveragePool2d(_)
                | Op::MaxPool2d(_)
                | Op::Softmax(_)
        )
    {
        return Err(F32_NOT_LINKED);
    }
    match op {
        #[cfg(edgeflow_op = "CONV_2D")]
        Op::Conv2d(p) => weighted::check(&Conv(p), inputs, output, scratch_len),
        #[cfg(edgeflow_op = "DEPTHWISE_CONV_2D")]
        Op::DepthwiseConv2d(p) => weighted::check(&Depthwise(p), inputs, output, scratch_len),
        #[cfg(edgeflow_op = "FULLY_CONNECTED")]
        Op::FullyConnected(p) => weighted::check(&FullyConnected(p), inputs, output, scratch_len),
        #[cfg(edgeflow_op = "AVERAGE_POOL_2D")]
        Op::AveragePool2d(p) => pool::check_average(p, inputs, output, scratch_len),
        #[cfg(edgeflow_op = "MAX_POOL_2D")]
        Op::MaxPool2d(p) => pool::check_max(p, inputs, output),
        #[cfg(edgeflow_op = "ADD")]
        Op::Add(p) => elementwise::check_add(p, inputs, output),
        #[cfg(edgeflow_op = "MUL")]
        Op::Mul(p) => elementwise::check_mul(p, inputs, output),
        #[cfg(edgeflow_op = "RESHAPE")]
        Op::Reshape => reshape::check(inputs, output),
        #[cfg(edgeflow_op = "SOFTMAX")]
        Op::Softmax(p) => softmax::check(p, inputs, output),
        #[cfg(edgeflow_op = "QUANTIZE")]
        Op::Quantize(p) => quantize::check_quantize(p, inputs, output),
        #[cfg(edgeflow_op = "DEQUANTIZE")]
        Op::Dequantize => quantize::check_dequantize(inputs, output),
        #[cfg(edgeflow_op = "CONCATENATION")]
        Op::Concatenation(p) => concat::check(p, inputs, output),
        #[cfg(edgeflow_op = "PAD")]
        Op::Pad(p) => pad::check(p, inputs, output),
        #[cfg(edgeflow_op = "MEAN")]
        Op::Mean(p) => mean::check(p, inputs, output),
        #[cfg(edgeflow_op = "LOGISTIC")]
        Op::Logistic(p) => activation::check_logistic(p, inputs, output),
        #[cfg(edgeflow_op = "TANH")]
        Op::Tanh(p) => activation::check_tanh(p, inputs, output),
        #[cfg(edgeflow_op = "TRANSPOSE")]
        Op::Transpose(p) => movement::check_transpose(p, inputs, output),
        #[cfg(edgeflow_op = "STRIDED_SLICE")]
        Op::StridedSlice(p) => movement::check_strided_slice(p, inputs, output),
        #[cfg(edgeflow_op = "LEAKY_RELU")]
        Op::LeakyRelu(p) => piecewise::check_leaky_relu(p, inputs, output),
        #[cfg(edgeflow_op = "HARD_SWISH")]
        Op::HardSwish(p) => piecewise::check_hard_swish(p, inputs, output),
        #[cfg(edgeflow_op = "MAXIMUM")]
        Op::Maximum => minmax::check_max_min(inputs, output),
        #[cfg(edgeflow_op = "MINIMUM")]
        Op::Minimum => minmax::check_max_min(inputs, output),
        #[cfg(edgeflow_op = "REDUCE_MAX")]
        Op::ReduceMax(p) => minmax::check_reduce_max(p, inputs, output),
        #[cfg(edgeflow_op = "RESIZE_NEAREST_NEIGHBOR")]
        Op::ResizeNearest(p) => resize::check(p, inputs, output),
        #[cfg(edgeflow_op_subset)]
        _ => Err(NOT_LINKED),
    }
}

/// Scratch bytes an op needs in the arena while it runs (0 for most ops).
pub fn scratch_bytes(op: &Op<'_>, inputs: &[TensorDef<'_>], output: &TensorDef<'_>) -> usize {
    match op {
        #[cfg(edgeflow_op = "CONV_2D")]
        Op::Conv2d(p) => weighted::scratch_bytes(&Conv(p), inputs, output),
        #[cfg(edgeflow_op = "DEPTHWISE_CONV_2D")]
        Op::DepthwiseConv2d(p) => weighted::scratch_bytes(&Depthwise(p), inputs, output),
        #[cfg(edgeflow_op = "FULLY_CONNECTED")]
        Op::FullyConnected(p) => weighted::scratch_bytes(&FullyConnected(p), inputs, output),
        #[cfg(edgeflow_op = "AVERAGE_POOL_2D")]
        Op::AveragePool2d(_) => pool::average_scratch_bytes(output),
        #[cfg(edgeflow_op = "ADD")]
        Op::Add(_) => elementwise::add_scratch_bytes(output),
        #[allow(unreachable_patterns)]
        _ => 0,
    }
}

/// Runs `f` in a frame of its own, never inlined into [`eval`] ([`Ready`]'s
/// [`Runner::outlined`]).
///
/// Where [`eval`] is the device loop (the speed class's [`crate::Runtime::invoke`]; the
/// size class's loop runs each op through `runtime::Step` instead, every kernel inside
/// its `run_op`), every op's kernel runs this way (the pools' entry points are never
/// inlined themselves; FULLY_CONNECTED only in builds that link a convolution,
/// `FC_OUTLINED`: in an FC-only speed-class build it is the deepest op and costs less
/// stack inlined), so that the op dispatch, inlined into `invoke`'s loop, keeps only the
/// loop's state in its frame: inlined, each kernel's locals (a weighted op's geometry and
/// requantization state, ADD's parameter blocks) sat in `invoke`'s frame under every
/// other op's kernel (on Cortex-M4 with the KWS model's ops only, `invoke`'s own frame
/// was 576 B; see BENCHMARKS.md, footprint, fifth pass).
#[inline(never)]
fn outlined<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Whether FULLY_CONNECTED runs in a frame of its own ([`outlined`]) rather than inlined
/// into the dispatch: when a convolution is linked, the deepest op is a convolution,
/// under which FULLY_CONNECTED's inlined setup would sit (KWS: 900 B peak stack in
/// `invoke` inlined, 860 B outlined); in a build whose only weighted op is
/// FULLY_CONNECTED, it is the deepest, and its setup costs less inlined than in a frame
/// of its own stacked on the kernel's (AD: 596 B inlined, 668 B outlined; emulated M4F,
/// BENCHMARKS.md, footprint, fifth pass). Only [`Ready`] (that is, [`eval`]) reads it.
/// On the size class (`cfg(edgeflow_size)`, opt-level "s") it is always set, for
/// [`eval`]'s callers (`op::eval`, the host): the size class's device loop runs every
/// kernel inside its own `runtime::Step` frame, where outlined and direct are the same
/// (before that loop, the inlined setup had made `invoke`'s frame 376 B: AD 784 B
/// inlined, 676 B outlined; BENCHMARKS.md, footprint (j)).
const FC_OUTLINED: bool = cfg!(any(
    edgeflow_size,
    edgeflow_op = "CONV_2D",
    edgeflow_op = "DEPTHWISE_CONV_2D"
));

/// Executes an op whose [`check`] passed.
pub fn eval(
    op: &Op<'_>,
    inputs: &[TensorIn<'_, '_>],
    output: TensorOut<'_, '_>,
    scratch: &mut [u8],
) {
    dispatch(
        op,
        Ready {
            inputs,
            output,
            scratch,
        },
    )
}

/// What [`dispatch`] runs an op's kernel with: the caller's way of providing the
/// kernel's arguments.
///
/// [`eval`] has them ready ([`Ready`]); the size class's device loop
/// ([`crate::Runtime::invoke`], `runtime::Step`) cuts them out of the arena only inside a
/// never-inlined function of its own per weighted or pool op kind (one shared by the
/// light ops), so that the op's input list and arena slices are in that op's frame,
/// merged with its kernel's, rather than in `invoke`'s frame under every op.
pub(crate) trait Runner {
    /// What running an op returns.
    type Out;
    /// Runs `kernel`, whose locals should not sit in the dispatching function's frame
    /// (a frame of its own for [`Ready`], see [`outlined`]).
    fn outlined(
        self,
        kernel: impl FnOnce(&[TensorIn<'_, '_>], TensorOut<'_, '_>, &mut [u8]),
    ) -> Self::Out;
    /// Runs `kernel`, which has a frame of its own already or is the build's deepest op
    /// (inlined for [`Ready`]).
    fn direct(
        self,
        kernel: impl FnOnce(&[TensorIn<'_, '_>], TensorOut<'_, '_>, &mut [u8]),
    ) -> Self::Out;
    /// Runs `kernel`, a light op's (every op but the weighted ones and the pools: its
    /// frames are shallow), as [`Runner::outlined`] unless the runner shares one path
    /// among those ops (`runtime::Step`, through a `&dyn Fn`: the size class then does
    /// not carry an argument preparation per light op kind).
    #[inline(always)]
    fn light(self, kernel: impl Fn(&[TensorIn<'_, '_>], TensorOut<'_, '_>, &mut [u8])) -> Self::Out
    where
        Self: Sized,
    {
        self.outlined(kernel)
    }
    /// An op this build does not link: never reached (`check` refuses it at
    /// [`crate::Model::parse`]), and so carrying no kernel and no argument preparation
    /// (a `light` call here linked the shared light path into builds without a light op).
    #[allow(
        dead_code,
        reason = "called only by builds linking a subset of the ops (`edgeflow_op`)"
    )]
    fn unlinked(self) -> Self::Out;
}

/// [`eval`]'s [`Runner`]: the arguments, ready.
struct Ready<'i, 'd, 'a> {
    inputs: &'i [TensorIn<'d, 'a>],
    output: TensorOut<'d, 'a>,
    scratch: &'d mut [u8],
}

impl Runner for Ready<'_, '_, '_> {
    type Out = ();

    #[inline(always)]
    fn outlined(self, kernel: impl FnOnce(&[TensorIn<'_, '_>], TensorOut<'_, '_>, &mut [u8])) {
        outlined(|| kernel(self.inputs, self.output, self.scratch))
    }

    #[inline(always)]
    fn direct(self, kernel: impl FnOnce(&[TensorIn<'_, '_>], TensorOut<'_, '_>, &mut [u8])) {
        kernel(self.inputs, self.output, self.scratch)
    }

    #[inline(always)]
    fn unlinked(self) {}
}

/// Runs the kernel of `op` (whose [`check`] passed) through `r`.
///
/// The int8 weighted ops' inner kernels: the Arm DSP ones on `thumbv7em`, AVX2 or NEON on
/// hosts that have them (see `arch::Isa::detect`), else the portable ones. Detected
/// inside each kernel: a constant on devices, which a value carried into the closure
/// would not be for LLVM.
#[inline(always)]
pub(crate) fn dispatch<R: Runner>(op: &Op<'_>, r: R) -> R::Out {
    use arch::Isa;
    match op {
        #[cfg(edgeflow_op = "CONV_2D")]
        Op::Conv2d(p) => r.outlined(|i, o, s| weighted::eval(&Conv(p), i, o, s, Isa::detect())),
        #[cfg(edgeflow_op = "DEPTHWISE_CONV_2D")]
        Op::DepthwiseConv2d(p) => {
            r.outlined(|i, o, s| weighted::eval(&Depthwise(p), i, o, s, Isa::detect()))
        }
        #[cfg(edgeflow_op = "FULLY_CONNECTED")]
        Op::FullyConnected(p) => {
            if FC_OUTLINED {
                r.outlined(|i, o, s| weighted::eval(&FullyConnected(p), i, o, s, Isa::detect()))
            } else {
                r.direct(|i, o, s| weighted::eval(&FullyConnected(p), i, o, s, Isa::detect()))
            }
        }
        #[cfg(edgeflow_op = "AVERAGE_POOL_2D")]
        Op::AveragePool2d(p) => r.direct(|i, o, s| pool::eval_average(p, i, o, s)),
        #[cfg(edgeflow_op = "MAX_POOL_2D")]
        Op::MaxPool2d(p) => r.direct(|i, o, _| pool::eval_max(p, i, o)),
        #[cfg(edgeflow_op = "ADD")]
        Op::Add(p) => r.light(|i, o, s| elementwise::eval_add(p, i, o, s, Isa::detect())),
        #[cfg(edgeflow_op = "MUL")]
        Op::Mul(p) => r.light(|i, o, _| elementwise::eval_mul(p, i, o)),
        #[cfg(edgeflow_op = "RESHAPE")]
        Op::Reshape => r.light(|i, o, _| reshape::eval(i, o)),
        #[cfg(edgeflow_op = "SOFTMAX")]
        Op::Softmax(p) => r.light(|i, o, _| softmax::eval(p, i, o)),
        #[cfg(edgeflow_op = "QUANTIZE")]
        Op::Quantize(p) => r.light(|i, o, _| quantize::eval_quantize(p, i, o)),
        #[cfg(edgeflow_op = "DEQUANTIZE")]
        Op::Dequantize => r.light(|i, o, _| quantize::eval_dequantize(i, o)),
        #[cfg(edgeflow_op = "CONCATENATION")]
        Op::Concatenation(p) => r.light(|i, o, _| concat::eval(p, i, o)),
        #[cfg(edgeflow_op = "PAD")]
        Op::Pad(p) => r.light(|i, o, _| pad::eval(p, i, o)),
        #[cfg(edgeflow_op = "MEAN")]
        Op::Mean(p) => r.light(|i, o, _| mean::eval(p, i, o)),
        #[cfg(edgeflow_op = "LOGISTIC")]
        Op::Logistic(p) => r.light(|i, o, _| activation::eval_logistic(p, i, o)),
        #[cfg(edgeflow_op = "TANH")]
        Op::Tanh(p) => r.light(|i, o, _| activation::eval_tanh(p, i, o)),
        #[cfg(edgeflow_op = "TRANSPOSE")]
        Op::Transpose(p) => r.light(|i, o, _| movement::eval_transpose(p, i, o)),
        #[cfg(edgeflow_op = "STRIDED_SLICE")]
        Op::StridedSlice(p) => r.light(|i, o, _| movement::eval_strided_slice(p, i, o)),
        #[cfg(edgeflow_op = "LEAKY_RELU")]
        Op::LeakyRelu(p) => r.light(|i, o, _| piecewise::eval_leaky_relu(p, i, o)),
        #[cfg(edgeflow_op = "HARD_SWISH")]
        Op::HardSwish(p) => r.light(|i, o, _| piecewise::eval_hard_swish(p, i, o)),
        #[cfg(edgeflow_op = "MAXIMUM")]
        Op::Maximum => r.light(|i, o, _| minmax::eval_max_min(true, i, o)),
        #[cfg(edgeflow_op = "MINIMUM")]
        Op::Minimum => r.light(|i, o, _| minmax::eval_max_min(false, i, o)),
        #[cfg(edgeflow_op = "REDUCE_MAX")]
        Op::ReduceMax(p) => r.light(|i, o, _| minmax::eval_reduce_max(p, i, o)),
        #[cfg(edgeflow_op = "RESIZE_NEAREST_NEIGHBOR")]
        Op::ResizeNearest(p) => r.light(|i, o, _| resize::eval(p, i, o)),
        // Never reached: `check` rejected the op at parse time.
        #[cfg(edgeflow_op_subset)]
        _ => r.unlinked(),
    }
}

/// Whether [`eval`] runs a host SIMD family here ([`arch::Isa::detect`]; false with
/// `EDGEFLOW_NN_PORTABLE=1`).
#[cfg(feature = "std")]
pub(crate) fn host_simd() -> bool {
    arch::Isa::detect().host_simd()
}

/// A weighted op's host-only packed weights ([`packed`]; `std` hosts with AVX2 or NEON).
#[cfg(any(test, feature = "std"))]
#[derive(Debug)]
pub(crate) enum PackedOp {
    /// An ungrouped int8 CONV_2D.
    Conv(packed::Gemm),
    /// An int8 FULLY_CONNECTED.
    Fc(packed::Gemm),
    /// An int8 3x3 DEPTHWISE_CONV_2D with depth multiplier 1.
    Dw(packed::Dw),
    /// aarch64: an int8 3x3 DEPTHWISE_CONV_2D's (depth multiplier 1) vector-epilogue
    /// parameters, computed once per model (`depthwise::pack_soa`).
    DwSoa(std::vec::Vec<u8>),
}

#[cfg(any(test, feature = "std"))]
#[cfg_attr(not(feature = "std"), allow(dead_code))]
impl PackedOp {
    /// Bytes of packed weights and constants.
    pub(crate) fn bytes(&self) -> usize {
        match self {
            PackedOp::Conv(g) | PackedOp::Fc(g) => g.bytes(),
            PackedOp::Dw(d) => d.bytes(),
            PackedOp::DwSoa(a) => a.len(),
        }
    }
}

/// Packs `op`'s weights for the host kernels when it is a weighted int8 op whose weights
/// (and bias) are constants (`consts[i]`: the bytes of input `i` when constant); `None`
/// otherwise, or when this machine has no packed kernels. Only for ops that passed
/// [`check`].
#[cfg(any(test, feature = "std"))]
pub(crate) fn pack(
    op: &Op<'_>,
    inputs: &[TensorDef<'_>],
    consts: &[Option<&[u8]>],
    output: &TensorDef<'_>,
) -> Option<PackedOp> {
    let (x, w) = (inputs.first()?, inputs.get(1)?);
    let wb = (*consts.get(1)?)?;
    let bias = match inputs.get(2) {
        Some(_) => Some((*consts.get(2)?)?),
        None => None,
    };
    match op {
        Op::Conv2d(p) => conv::pack(p, (x, w, output), wb, bias).map(PackedOp::Conv),
        Op::FullyConnected(p) => {
            fully_connected::pack(p, (x, w, output), wb, bias).map(PackedOp::Fc)
        }
        Op::DepthwiseConv2d(p) => depthwise::pack(p, (x, w, output), wb, bias)
            .map(PackedOp::Dw)
            .or_else(|| depthwise::pack_soa(p, (x, w, output), wb, bias).map(PackedOp::DwSoa)),
        _ => None,
    }
}

/// [`eval`], with `packed` weights for a weighted op where [`pack`] prepared them (the
/// packed kernels, `work` grown as they need, CONV_2D split over up to `threads` threads
/// when large); AVERAGE_POOL_2D on the host's vector kernel where it applies
/// ([`pool::eval_average_host`]); every other op, or packed weights that do not match
/// the op, on [`eval`].
#[cfg(any(test, feature = "std"))]
pub(crate) fn eval_host(
    op: &Op<'_>,
    packed: Option<&PackedOp>,
    inputs: &[TensorIn<'_, '_>],
    output: TensorOut<'_, '_>,
    scratch: &mut [u8],
    work: &mut std::vec::Vec<u8>,
    threads: usize,
) {
    let done = match (op, packed, inputs) {
        (Op::Conv2d(p), Some(PackedOp::Conv(g)), [x, w, ..]) => conv::eval_packed(
            p,
            g,
            (x.def, w.def, output.def),
            x.data,
            &mut *output.data,
            work,
            threads,
        ),
        (Op::FullyConnected(p), Some(PackedOp::Fc(g)), [x, w, ..]) => fully_connected::eval_packed(
            p,
            g,
            (x.def, w.def, output.def),
            x.data,
            &mut *output.data,
            work,
        ),
        (Op::DepthwiseConv2d(p), Some(PackedOp::Dw(d)), [x, w, ..]) => {
            depthwise::eval_packed(p, d, (x.def, w.def, output.def), x.data, &mut *output.data)
        }
        (Op::DepthwiseConv2d(p), Some(PackedOp::DwSoa(a)), [x, w, ..]) => {
            let defs = (x.def, w.def, output.def);
            depthwise::eval_soa(p, a, defs, (x.data, w.data), &mut *output.data, work)
        }
        (Op::AveragePool2d(p), _, _) => pool::eval_average_host(
            p,
            inputs,
            TensorOut {
                def: output.def,
                data: &mut *output.data,
            },
        ),
        _ => false,
    };
    if !done {
        eval(op, inputs, output, scratch);
    }
}
