//! Per-architecture specialisations of the portable kernels in [`super::generic`], one
//! module per architecture: the only place in this crate allowed `unsafe` (inline
//! assembly, SIMD intrinsics), and each function there has a checked portable twin it is
//! tested against (`testutil::specialised_matches_portable!`, and for the Cortex-M
//! kernels the QEMU conformance run, where device output must equal host output).
//!
//! - [`arm_dsp`]: Cortex-M4/M7 (`thumbv7em`, build-script cfg `edgeflow_arm_dsp`), the
//!   packed 16-bit `SMLAD`/`SXTB16` inner loops. Compiled on every target (its data
//!   layout is planned on the host, and its blocking is tested there on the portable
//!   twins of the instructions).
//! - `x86_64` (AVX2) and `aarch64` (NEON): host kernels for Linux boards and servers
//!   (`edgeflow serve`, `edgeflow run`), compiled with the `std` feature only (the
//!   instruction set is detected at run time, which needs `std`), so the `no_std`
//!   Cortex-M build never sees them.
//!
//! Which family runs is an [`Isa`], chosen once per op evaluation by [`Isa::detect`];
//! the specialised host kernels are reached through the dispatching functions below
//! ([`dot_rows`], [`fc_rows`], [`dw3x3`]), whose `Isa::Portable` arm is the reference.

#[cfg_attr(not(any(test, edgeflow_arm_dsp)), allow(dead_code))]
pub(crate) mod arm_dsp;

#[cfg(all(target_arch = "x86_64", any(test, feature = "std")))]
pub(crate) mod x86_64;

#[cfg(all(target_arch = "aarch64", any(test, feature = "std")))]
pub(crate) mod aarch64;

use super::generic::dot;

/// The inner-kernel family an int8 weighted op runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// The portable kernels of [`super::generic`] (the reference).
    Portable,
    /// The packed 16-bit kernels of [`arm_dsp`] (Cortex-M4/M7; on the host only in tests,
    /// on the portable twins of the instructions).
    ArmDsp,
    /// x86_64 AVX2 (`VPMOVSXBW` + `VPMADDWD`), detected at run time.
    #[allow(dead_code)]
    Avx2,
    /// aarch64 NEON (`SMULL`/`SMLAL` + `SADALP`).
    #[allow(dead_code)]
    Neon,
    /// aarch64 NEON with the dot-product extension (`SDOT`), detected at run time.
    #[allow(dead_code)]
    NeonDot,
}

impl Isa {
    /// The fastest family this machine runs: the DSP kernels on `thumbv7em`; with `std`,
    /// AVX2 on x86_64 CPUs that have it, NEON (with `SDOT` where present) on aarch64;
    /// otherwise the portable kernels.
    #[inline]
    pub(crate) fn detect() -> Isa {
        if cfg!(edgeflow_arm_dsp) {
            return Isa::ArmDsp;
        }
        #[cfg(all(target_arch = "x86_64", feature = "std"))]
        if x86_64::available() {
            return Isa::Avx2;
        }
        #[cfg(all(target_arch = "aarch64", feature = "std"))]
        {
            return if aarch64::dotprod_available() {
                Isa::NeonDot
            } else {
                Isa::Neon
            };
        }
        #[allow(unreachable_code)]
        Isa::Portable
    }

    /// Whether this family can run on this machine (tests of a family skip otherwise).
    #[cfg(test)]
    pub(crate) fn runs_here(self) -> bool {
        match self {
            Isa::Portable | Isa::ArmDsp => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86_64::available(),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => true,
            #[cfg(target_arch = "aarch64")]
            Isa::NeonDot => aarch64::dotprod_available(),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The host SIMD families (tests check each against the portable kernels).
    #[cfg(test)]
    pub(crate) const HOST: [Isa; 3] = [Isa::Avx2, Isa::Neon, Isa::NeonDot];
}

/// `acc[j] = dot(x, row j of w)` for the int8 byte vector `x` (`k` values) and the
/// consecutive `k`-byte int8 rows of `w`, as many rows as `acc` and `w` hold (wrapping
/// int32 sums; rows that `w` does not hold leave `acc` unchanged). CONV_2D's inner
/// kernel (one patch against a block of filters).
#[inline]
pub(crate) fn dot_rows(isa: Isa, x: &[u8], w: &[u8], k: usize, acc: &mut [i32]) {
    match isa {
        #[cfg(all(target_arch = "x86_64", any(test, feature = "std")))]
        Isa::Avx2 => x86_64::dot_rows(x, w, k, acc),
        #[cfg(all(target_arch = "aarch64", any(test, feature = "std")))]
        Isa::Neon => aarch64::dot_rows(x, w, k, acc),
        #[cfg(all(target_arch = "aarch64", any(test, feature = "std")))]
        Isa::NeonDot => aarch64::dot_rows_sdot(x, w, k, acc),
        _ => dot::rows(x, w, k, acc),
    }
}

/// FULLY_CONNECTED's inner kernel: `acc[j] += dot(x, w[j * stride + s0..][..n])` for the
/// `n` little-endian `i16` values of `x` (input plus offset) and int8 rows `stride` bytes
/// apart, as many rows as `acc` holds (rows `w` does not hold contribute nothing).
#[inline]
pub(crate) fn fc_rows(
    isa: Isa,
    x: &[u8],
    w: &[u8],
    stride: usize,
    s0: usize,
    n: usize,
    acc: &mut [i32],
) {
    match isa {
        #[cfg(all(target_arch = "x86_64", any(test, feature = "std")))]
        Isa::Avx2 => x86_64::fc_rows(x, w, stride, s0, n, acc),
        #[cfg(all(target_arch = "aarch64", any(test, feature = "std")))]
        Isa::Neon | Isa::NeonDot => aarch64::fc_rows(x, w, stride, s0, n, acc),
        _ => dot::rows_i16_acc(x, w, stride, s0, n, acc),
    }
}

/// DEPTHWISE_CONV_2D 3x3 (depth multiplier 1): `acc[j] = sum_t taps[t][c0 + j] *
/// w[t * c + c0 + j]` for the nine int8 tap slices of one output pixel and the
/// `[1, 3, 3, c]` int8 filter `w` (wrapping int32 sums), as many channels as `acc` holds
/// (channels a tap or `w` does not hold count as 0).
#[inline]
pub(crate) fn dw3x3(isa: Isa, taps: &[&[u8]; 9], w: &[u8], c: usize, c0: usize, acc: &mut [i32]) {
    match isa {
        #[cfg(all(target_arch = "x86_64", any(test, feature = "std")))]
        Isa::Avx2 => x86_64::dw3x3(taps, w, c, c0, acc),
        #[cfg(all(target_arch = "aarch64", any(test, feature = "std")))]
        Isa::Neon | Isa::NeonDot => aarch64::dw3x3(taps, w, c, c0, acc),
        _ => dot::dw3x3(taps, w, c, c0, acc),
    }
}
