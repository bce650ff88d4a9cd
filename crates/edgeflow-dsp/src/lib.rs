//! Feature extraction for microcontrollers and for training, from one description.
//!
//! A feature pipeline is data ([`PipelineDesc`]): what the input is (a stream of
//! multi-axis samples, a vector, tokens or an image), a list of blocks, optional parallel
//! branches whose outputs are concatenated, and how the result becomes the model's input
//! tensor (frames stacked, int8 quantization). The description lives in the artifact's
//! `FeaturePipeline` section (postcard) and, on the host, in TOML files.
//!
//! `no_std`, no `alloc`, no panics, no `unsafe`. The contract, as in `edgeflow-nn`:
//! **once [`Pipeline::new`] returns `Ok`, running it cannot fail on a parameter and no
//! kernel can panic or index out of bounds.** `Pipeline::new` checks every parameter (errors
//! name the block and parameter: window longer than the FFT, FFT size not a power of two,
//! more mel bands than FFT bins, zero stride...) and computes every block's input and
//! output shape and its table, state and scratch needs, so [`Pipeline::workspace_len`]
//! tells the caller the one buffer to allocate statically.
//!
//! # Bit-identical everywhere
//!
//! The kernels use a fixed operation order, plain `+ - * /` (Rust never contracts them to
//! fused multiply-add), `libm` for every transcendental function and `microfft` for FFTs,
//! so x86_64, Cortex-M4F and Cortex-M3 (soft float) produce the same bits; the test suite
//! checks this on emulated hardware.
//!
//! ```
//! use edgeflow_dsp::{Pipeline, PipelineDesc, Runtime, Input, Block, Stat, Output};
//! # fn main() -> Result<(), edgeflow_dsp::Error> {
//! let mut stats = heapless::Vec::new();
//! let _ = stats.push(Stat::Mean);
//! let _ = stats.push(Stat::Rms);
//! let mut blocks = heapless::Vec::new();
//! let _ = blocks.push(Block::Stats { stats });
//! let desc = PipelineDesc {
//!     input: Input::Signal { axes: 1, rate_hz: 100.0, window: 4, stride: 4 },
//!     stream: Default::default(),
//!     blocks,
//!     branches: Default::default(),
//!     post: Default::default(),
//!     output: Output::default(),
//! };
//! let pipeline = Pipeline::new(desc)?;
//! let mut ws = [0.0f32; 64];
//! let mut rt = Runtime::new(&pipeline, &mut ws[..pipeline.workspace_len()])?;
//! let mut out = [0u8; 8];
//! let mut got = [0.0f32; 2];
//! rt.feed(&[1.0, -1.0, 1.0, -1.0], &mut out, |o| {
//!     got[0] = f32::from_le_bytes([o[0], o[1], o[2], o[3]]);
//!     got[1] = f32::from_le_bytes([o[4], o[5], o[6], o[7]]);
//! })?;
//! assert_eq!(got, [0.0, 1.0]);
//! # Ok(()) }
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
// The panic audit (issue 19), enforced by `cargo xtask test` (clippy on the no_std build):
// no unwrap/expect/panic anywhere; no unchecked indexing or arithmetic outside the modules
// that allow it below, each with its reason.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod desc;
mod error;
// Framing over the validated window/stride (bounded by MAX_ELEMENTS, see `kernels`).
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod frame;
// The fixed-point front end: buffers are cut to the plan's sizes on entry (sizes bounded by
// MAX_FFT and 64 channels) and every index read from a table is bounds-checked; the
// integer arithmetic that wraps in the C reference wraps here too (`wrapping_*`).
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod frontend;
// DSP kernels run on buffers whose lengths the validated plan fixes (every size bounded by
// MAX_ELEMENTS = 2^22 when the pipeline is built), so indices are in bounds and products
// of sizes fit in usize even on 32-bit targets.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
pub mod kernels;
// Size arithmetic on dimensions already bounded by MAX_ELEMENTS (2^22) and block counts
// bounded by MAX_TOTAL_BLOCKS; the checked helpers in this module guard the rest.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod plan;
// The executor works in the workspace the validated plan sized (see `kernels`).
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod runtime;

mod feed;
#[cfg(feature = "std")]
pub mod host;

pub use desc::{
    Block, Branch, Butterworth, F32s, FilterKind, Frontend, FrontendOpts, Input, Interpolation,
    LogBase, MelNorm, MelScale, Output, PipelineDesc, Quantize, Reduce, Stat, Tokens, WindowKind,
};
pub use error::{At, Error, Stage};
pub use feed::Feed;
pub use frame::{Framer, Push};
pub use plan::{Kind, OutputType, Pipeline, Shape, MAX_ELEMENTS, MAX_TOTAL_BLOCKS};
pub use runtime::Runtime;

#[cfg(test)]
mod tests;
