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
    /// Whether this is a host SIMD family (AVX2, NEON), which takes the struct-of-arrays
    /// epilogue when the requantization allows it. Always `false` without `std` (the
    /// families are only detected with it), as a constant, so that device builds drop the
    /// host-only paths (ADD's vector runs, the struct-of-arrays epilogues) at compile time.
    #[inline]
    pub(crate) fn host_simd(self) -> bool {
        cfg!(any(test, feature = "std")) && matches!(self, Isa::Avx2 | Isa::Neon | Isa::NeonDot)
    }

    /// The fastest family this machine runs: the DSP kernels on `thumbv7em`; with `std`,
    /// AVX2 on x86_64 CPUs that have it, NEON (with `SDOT` where present) on aarch64;
    /// otherwise the portable kernels. With `std`, the environment variable
    /// `EDGEFLOW_NN_PORTABLE=1` (read once) forces the portable kernels on the host, as
    /// the build-time variable of the same name does on Arm (for comparisons).
    #[inline]
    pub(crate) fn detect() -> Isa {
        if cfg!(edgeflow_arm_dsp) {
            return Isa::ArmDsp;
        }
        #[cfg(all(any(target_arch = "x86_64", target_arch = "aarch64"), feature = "std"))]
        {
            host_detect()
        }
        #[cfg(not(all(any(target_arch = "x86_64", target_arch = "aarch64"), feature = "std")))]
        {
            Isa::Portable
        }
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

/// [`Isa::detect`] on a std host, decided once and cached.
#[cfg(all(any(target_arch = "x86_64", target_arch = "aarch64"), feature = "std"))]
fn host_detect() -> Isa {
    use core::sync::atomic::{AtomicU8, Ordering};
    extern crate std;
    static CACHE: AtomicU8 = AtomicU8::new(0);
    const ALL: [Isa; 4] = [Isa::Portable, Isa::Avx2, Isa::Neon, Isa::NeonDot];
    if let Some(&isa) = ALL.get(usize::from(CACHE.load(Ordering::Relaxed)).wrapping_sub(1)) {
        return isa;
    }
    let portable = std::env::var_os("EDGEFLOW_NN_PORTABLE").is_some_and(|v| v == "1");
    #[cfg(target_arch = "x86_64")]
    let best = if x86_64::available() {
        Isa::Avx2
    } else {
        Isa::Portable
    };
    #[cfg(target_arch = "aarch64")]
    let best = if aarch64::dotprod_available() {
        Isa::NeonDot
    } else {
        Isa::Neon
    };
    let isa = if portable { Isa::Portable } else { best };
    let code = ALL
        .iter()
        .position(|&i| i == isa)
        .map_or(0, |p| p as u8 + 1);
    CACHE.store(code, Ordering::Relaxed);
    isa
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

/// FULLY_CONNECTED's inner kernel on int8 inputs where `isa` has one (x86_64 with
/// AVX-VNNI): `acc[j] += dot(x + off, w[j * stride + s0..][..x.len()])` for the int8
/// segment `x` and the input offset `off`, as many rows as `acc` holds. Returns `false`
/// (and does nothing) where there is no such kernel; [`fc_rows`] on the widened segment
/// is the fallback and the reference.
#[inline]
pub(crate) fn fc_rows_i8(
    isa: Isa,
    x: &[u8],
    off: i32,
    w: &[u8],
    stride: usize,
    s0: usize,
    acc: &mut [i32],
) -> bool {
    match isa {
        #[cfg(all(target_arch = "x86_64", any(test, feature = "std")))]
        Isa::Avx2 => x86_64::fc_rows_i8(x, off, w, stride, s0, acc),
        _ => {
            let _ = (x, off, w, stride, s0, acc);
            false
        }
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

/// DEPTHWISE_CONV_2D 3x3 (depth multiplier 1) of one output pixel, all `out.len()`
/// channels, with the epilogue fused, where `isa` has such a kernel (aarch64 NEON:
/// `aarch64::dw3x3_fused`): [`dw3x3`] then [`requant_soa`] on the [`Soa`] parameters `p`
/// and `clamp = (offset, lo, hi)`. Returns `false` (nothing written) elsewhere or when
/// the kernel declines; the caller then runs those two.
///
/// [`Soa`]: super::generic::requant::Soa
#[inline]
pub(crate) fn dw3x3_fused(
    isa: Isa,
    taps: &[&[u8]; 9],
    w: &[u8],
    p: &super::generic::requant::Soa<'_>,
    clamp: (i32, i32, i32),
    out: &mut [u8],
) -> bool {
    match isa {
        #[cfg(all(target_arch = "aarch64", any(test, feature = "std")))]
        Isa::Neon | Isa::NeonDot => aarch64::dw3x3_fused(taps, w, p, clamp, out),
        _ => {
            let _ = (taps, w, p, clamp, out);
            false
        }
    }
}

/// A run of `n` neighbouring output pixels of a 3x3 DEPTHWISE_CONV_2D with depth
/// multiplier 1 whose windows are inside the input, with the epilogue fused, where `isa`
/// has such a kernel (aarch64 NEON: `aarch64::dw3x3_run`, which documents the
/// arguments). Returns `false` (nothing written) elsewhere or when the kernel declines;
/// the caller then runs the pixels one by one.
#[cfg(any(test, feature = "std"))]
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) fn dw3x3_run(
    isa: Isa,
    rows: [&[u8]; 3],
    steps: (usize, usize),
    n: usize,
    w: &[u8],
    p: &super::generic::requant::Soa<'_>,
    clamp: (i32, i32, i32),
    out: &mut [u8],
) -> bool {
    match isa {
        #[cfg(all(target_arch = "aarch64", any(test, feature = "std")))]
        Isa::Neon | Isa::NeonDot => aarch64::dw3x3_run(rows, steps, n, w, p, clamp, out),
        _ => {
            let _ = (rows, steps, n, w, p, clamp, out);
            false
        }
    }
}

/// [`dw3x3_run`] for every output row of an op whose windows are all inside `x` (see
/// `aarch64::dw3x3_frame`); `false` where `isa` has no such kernel.
#[cfg(any(test, feature = "std"))]
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) fn dw3x3_frame(
    isa: Isa,
    x: &[u8],
    steps_xy: (usize, usize, usize),
    rows: (usize, usize),
    steps: (usize, usize),
    n: usize,
    w: &[u8],
    p: &super::generic::requant::Soa<'_>,
    clamp: (i32, i32, i32),
    out: &mut [u8],
) -> bool {
    match isa {
        #[cfg(all(target_arch = "aarch64", any(test, feature = "std")))]
        Isa::Neon | Isa::NeonDot => {
            aarch64::dw3x3_frame(x, steps_xy, rows, steps, n, w, p, clamp, out)
        }
        _ => {
            let _ = (x, steps_xy, rows, steps, n, w, p, clamp, out);
            false
        }
    }
}

/// int8 ADD of two tensors of the output's shape where `isa` has a vector kernel for it
/// (x86_64 with AVX-512 F, aarch64 NEON): writes `out[..n]` for a prefix of `n` elements (a whole
/// number of vector steps) and returns `n`; 0 elsewhere, or when the parameters are
/// outside the kernel's range (the caller computes the rest on its element loop).
#[inline]
pub(crate) fn add_same_shape(
    isa: Isa,
    p: &edgeflow_format::graph::AddParams,
    a: &[u8],
    b: &[u8],
    out: &mut [u8],
) -> usize {
    match isa {
        #[cfg(all(target_arch = "x86_64", any(test, feature = "std")))]
        Isa::Avx2 => x86_64::add_same_shape(p, a, b, out),
        #[cfg(all(target_arch = "aarch64", any(test, feature = "std")))]
        Isa::Neon | Isa::NeonDot => aarch64::add_same_shape(p, a, b, out),
        _ => {
            let _ = (p, a, b, out);
            0
        }
    }
}

/// The int8 epilogue on struct-of-arrays parameters
/// ([`super::epilogue::OutQ::finish_soa`]): `out[j] = clamp(requant_single(acc[j] +
/// fold[j], m[j], r1[j]) + off, lo, hi)` for as many channels as all hold.
#[inline]
pub(crate) fn requant_soa(
    isa: Isa,
    acc: &[i32],
    p: &super::generic::requant::Soa<'_>,
    clamp: (i32, i32, i32),
    out: &mut [u8],
) {
    match isa {
        #[cfg(all(target_arch = "x86_64", any(test, feature = "std")))]
        Isa::Avx2 => x86_64::requant_soa(acc, p, clamp, out),
        #[cfg(all(target_arch = "aarch64", any(test, feature = "std")))]
        Isa::Neon | Isa::NeonDot => aarch64::requant_soa(acc, p, clamp, out),
        _ => super::generic::requant::requant_soa_portable(acc, p, clamp, out),
    }
}
