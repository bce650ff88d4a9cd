//! The portable layer: what every kernel builds on, in plain Rust for every target.
//!
//! - [`elem`]: little-endian element access, TFLite's clamps, zero points;
//! - [`requant`]: the requantization arithmetic of int32 accumulators to int8
//!   (TFLM's `MultiplyByQuantizedMultiplier` and its single-shift form; the per-channel
//!   epilogue built on it is [`super::epilogue::OutQ`]);
//! - [`window`]: the window geometry of conv, depthwise and pooling ([`window::Axis`]);
//! - [`broadcast`]: NumPy broadcasting for the element-wise binary ops;
//! - [`gemmlowp`]: gemmlowp's fixed-point `exp` and reciprocal (softmax, logistic, tanh);
//! - [`dot`]: the portable inner dot products, the reference of the per-architecture
//!   kernels in [`super::arch`].
//!
//! No `unsafe` here; the per-architecture specialisations live in [`super::arch`].

pub(crate) mod broadcast;
pub(crate) mod dot;
pub(crate) mod elem;
pub(crate) mod gemmlowp;
pub(crate) mod requant;
pub(crate) mod window;
