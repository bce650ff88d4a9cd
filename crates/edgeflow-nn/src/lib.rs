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
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod fixedpoint;
pub mod kernels;
mod model;
pub mod params;
mod runtime;

pub use edgeflow_format as format;
pub use error::Error;
pub use model::{Model, OpIter};
pub use runtime::Runtime;
