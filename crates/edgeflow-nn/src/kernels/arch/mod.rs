//! Per-architecture specialisations of the portable kernels in [`super::generic`], one
//! module per architecture: the only place in this crate allowed `unsafe` (inline
//! assembly), and each function there has a checked portable twin it is tested against
//! (`testutil::specialised_matches_portable!` and the QEMU conformance
//! run, where device output must equal host output).
//!
//! - [`arm_dsp`]: Cortex-M4/M7 (`thumbv7em`, build-script cfg `edgeflow_arm_dsp`), the
//!   packed 16-bit `SMLAD`/`SXTB16` inner loops. Compiled on every target (its data
//!   layout is planned on the host, and its blocking is tested there on the portable
//!   twins of the instructions).
//!
//! Next (from the serving issue): `aarch64` (NEON) and `x86_64` (AVX2), beside it.

#[cfg_attr(not(any(test, edgeflow_arm_dsp)), allow(dead_code))]
pub(crate) mod arm_dsp;
