//! Derivation of kernel parameters from tensor scales and zero points, exactly as TFLite
//! Micro's `Prepare` functions compute them. Used by the host compiler when it writes an
//! artifact; pure functions, no allocation. Host-only: compiled with the `std` feature (and
//! in this crate's tests), never into a device build.

pub mod conv;
pub mod elementwise;
