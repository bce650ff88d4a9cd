//! int8 / f32 inference for microcontrollers: kernels bit-exact with TensorFlow Lite
//! Micro's reference kernels, and an executor that runs an edgeflow artifact inside a
//! caller-provided arena.
//!
//! `no_std`, no `alloc`, no heap. The contract, in the style of smoltcp's `wire`:
//! **once [`Model::parse`] returns `Ok`, no kernel can panic or read out of bounds,
//! whatever the artifact bytes were.** `parse` walks every op record once and checks
//! every shape, offset, length and parameter a kernel relies on; [`Runtime::invoke`]
//! then only executes.
//!
//! ```no_run
//! # fn demo(artifact: &[u8], input: &[u8]) -> Result<(), edgeflow_nn::Error> {
//! let model = edgeflow_nn::Model::parse(artifact)?;
//! let mut arena = [0u8; 16 * 1024];
//! let mut rt = edgeflow_nn::Runtime::new(&model, &mut arena)?;
//! rt.input_mut(0)?.copy_from_slice(input);
//! rt.invoke()?;
//! let _scores: &[u8] = rt.output(0)?;
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
// Tests may unwrap, loop over indices and take many arguments: one allowance for every
// test module (the panic audit above does not apply to test builds).
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::needless_range_loop,
        clippy::too_many_arguments
    )
)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

// Tests of the no_std build use `std` (the host-only packed kernels are compiled for them).
#[cfg(all(test, not(feature = "std")))]
extern crate std;

/// A failed check's reason, `why!("conv.rs", "text")`, as the `&'static str` that
/// [`Error::InvalidOp`] and [`Error::BadTensor`] carry: the text with `std` (the host, where
/// every message is read; and in this crate's tests); on a device build the file and line
/// of the check, `"conv.rs:65"` (`src/kernels/` or `src/` of the same edgeflow-nn version),
/// which names the same check in a tenth of the flash. The ~190 texts were about 4 KB of
/// read-only data in a one-model Cortex-M firmware (BENCHMARKS.md, "Footprint: code size,
/// fifth pass"). Messages that name a build flag (an op or variant not linked) keep their
/// text everywhere: a device user needs the flag to rebuild.
macro_rules! why {
    ($file:literal, $text:literal) => {
        if cfg!(any(test, feature = "std")) {
            $text
        } else {
            concat!($file, ":", line!())
        }
    };
}

#[cfg(feature = "std")]
mod arena;
mod error;
#[cfg(feature = "std")]
mod host;
// TFLite Micro's fixed-point math: the arithmetic is the reference's, on operands whose
// ranges the reference proves (saturating where it saturates); bit-exactness tests pin it.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
pub mod fixedpoint;
// Kernels index and compute with the shapes, offsets and parameters `Model::parse` and
// `kernels::check` validated (every length, product and range checked there), so indices
// are in bounds and sizes do not overflow; conformance, mutation and fuzz tests hold them.
// Crate-private: a kernel is sound only after its `check`; outside the crate ops run
// through `op`, which checks first.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod kernels;
mod model;
pub mod op;
// Host-side parameter derivation (run at compile time from finite, positive scales, in
// f64): host-only, so behind `std` (and in this crate's tests); a device build never
// carries it.
#[cfg(any(test, feature = "std"))]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
pub mod params;
mod runtime;

#[cfg(feature = "std")]
pub use arena::HostArena;
pub use edgeflow_format as format;
pub use error::Error;
#[cfg(feature = "std")]
pub use host::PackedModel;
pub use model::{Model, OpIter};
pub use runtime::Runtime;
