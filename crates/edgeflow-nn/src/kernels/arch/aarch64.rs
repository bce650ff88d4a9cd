//! aarch64 NEON int8 kernels for the host run-time on ARM Linux boards (`edgeflow serve`,
//! `edgeflow run`): the inner kernels of CONV_2D, FULLY_CONNECTED and the 3x3
//! DEPTHWISE_CONV_2D, the vector epilogue, and [`gemm_tile`], the packed-weight kernel
//! of CONV_2D and FULLY_CONNECTED (`kernels::packed`; `SDOT` or `SMLAL` layouts). NEON is part of the aarch64 baseline; the
//! dot-product extension (`SDOT`, Armv8.2-A and later: Cortex-A55/A76, Raspberry Pi 5)
//! is detected at run time (`is_aarch64_feature_detected!("dotprod")`) and used by
//! [`dot_rows_sdot`] through inline assembly (its intrinsic is not stable Rust yet).
//!
//! Arithmetic: `SMULL`/`SMULL2` form exact 16-bit products of int8 values and
//! `SADALP`/`SADDW` accumulate them into 32-bit lanes (a sum of two such products can
//! reach 32768, so they are never summed in 16 bits); `SDOT` sums four exact products
//! into each 32-bit lane; `SMLAL` multiplies `i16` inputs (input plus offset, in
//! `[-255, 255]`) by widened weights into 32-bit lanes. Every lane sum wraps as the
//! portable kernels' `wrapping_add` does, so results equal the portable twins' bit for
//! bit (tested below and on whole ops, under `qemu-aarch64` on x86_64 machines).
//!
//! Each public function checks the slice lengths it relies on (and the CPU, for
//! `SDOT`) and falls back to its portable twin otherwise; `unsafe` is only the loads and
//! stores on fixed-size arrays, the `SDOT` assembly, and the depthwise kernel's loads at
//! offsets inside the lengths [`dw3x3`] checked.
#![allow(unsafe_code)]

extern crate std;

use core::arch::aarch64::{
    int16x8_t, int32x4_t, int8x16_t, vaddq_s32, vaddvq_s32, vaddw_high_s16, vaddw_s16,
    vcombine_s16, vdupq_n_s32, vget_low_s16, vget_low_s8, vld1_s8, vld1q_s16, vld1q_s32, vld1q_s8,
    vmaxq_s32, vminq_s32, vmlal_high_s16, vmlal_s16, vmovl_s8, vmovn_s16, vmovn_s32, vmull_high_s8,
    vmull_s8, vpadalq_s16, vst1_s8, vst1q_s32,
};

use core::arch::aarch64::{
    vandq_s32, vmvnq_s32, vqaddq_s32, vqrdmulhq_s32, vrshlq_s32, vshrq_n_s32,
};
use core::arch::aarch64::{vdupq_n_s16, vmlal_high_n_s16, vmlal_n_s16, vreinterpretq_s8_s32};
use core::arch::aarch64::{vmlal_high_laneq_s16, vmlal_laneq_s16, vqmovn_s16, vqmovn_s32};

use crate::kernels::generic::dot;
use crate::kernels::generic::requant::{requant_soa_portable, Soa};

/// Whether this CPU has the dot-product extension (detected once by `std`).
#[inline]
pub(crate) fn dotprod_available() -> bool {
    std::arch::is_aarch64_feature_detected!("dotprod")
}

/// Loads 16 int8 values.
#[inline]
#[target_feature(enable = "neon")]
fn ld16(b: &[u8; 16]) -> int8x16_t {
    // SAFETY: `b` is 16 readable bytes; `LD1` has no alignment requirement.
    unsafe { vld1q_s8(b.as_ptr().cast()) }
}

/// Loads 8 int8 values widened to 16 bits.
#[inline]
#[target_feature(enable = "neon")]
fn ld8w(b: &[u8; 8]) -> int16x8_t {
    // SAFETY: `b` is 8 readable bytes; `LD1` has no alignment requirement.
    vmovl_s8(unsafe { vld1_s8(b.as_ptr().cast()) })
}

/// Loads 8 little-endian `i16`s.
#[inline]
#[target_feature(enable = "neon")]
fn ld8h(b: &[u8; 16]) -> int16x8_t {
    // SAFETY: `b` is 16 readable bytes; `LD1` has no alignment requirement (and aarch64
    // Linux is little-endian, as the bytes are).
    unsafe { vld1q_s16(b.as_ptr().cast()) }
}

/// Stores four lanes.
#[inline]
#[target_feature(enable = "neon")]
fn st4(d: &mut [i32; 4], v: int32x4_t) {
    // SAFETY: `d` is 16 writable bytes; `ST1` has no alignment requirement.
    unsafe { vst1q_s32(d.as_mut_ptr(), v) }
}

/// `acc + sum of the products of x and w`, two exact 16-bit products per pairwise add.
#[inline]
#[target_feature(enable = "neon")]
fn mac16(acc: int32x4_t, x: int8x16_t, w: int8x16_t) -> int32x4_t {
    let acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(x), vget_low_s8(w)));
    vpadalq_s16(acc, vmull_high_s8(x, w))
}

/// `SDOT acc.4s, x.16b, w.16b`: each lane plus the sum of four exact products.
///
/// # Safety
///
/// The CPU must have the dot-product extension ([`dotprod_available`]).
#[inline(always)]
unsafe fn sdot(acc: int32x4_t, x: int8x16_t, w: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: a register-only instruction of the dot-product extension, which the caller
    // guarantees; no memory, stack or flag access.
    unsafe {
        core::arch::asm!(
            ".arch_extension dotprod",
            "sdot {a:v}.4s, {x:v}.16b, {w:v}.16b",
            a = inout(vreg) acc,
            x = in(vreg) x,
            w = in(vreg) w,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

// ---------------------------------------------------------------------------------------
// CONV_2D: one int8 patch against a block of int8 filter rows
// ---------------------------------------------------------------------------------------

/// [`dot::rows`] on NEON (`SMULL` + `SADALP`): four rows per pass over the patch, then
/// single rows; a scalar tail for `k % 16`. Falls back to [`dot::rows`] if `x` is shorter
/// than `k`.
pub(crate) fn dot_rows(x: &[u8], w: &[u8], k: usize, acc: &mut [i32]) {
    match x.get(..k) {
        // SAFETY: NEON is part of the aarch64 baseline (every aarch64 Linux target has it).
        Some(x) if k > 0 => unsafe { rows_with::<false>(x, w, k, acc) },
        _ => dot::rows(x, w, k, acc),
    }
}

/// [`dot::rows`] with `SDOT` (four products per lane per instruction). Falls back to
/// [`dot_rows`] without the dot-product extension.
pub(crate) fn dot_rows_sdot(x: &[u8], w: &[u8], k: usize, acc: &mut [i32]) {
    match x.get(..k) {
        // SAFETY: NEON is baseline; the dot-product extension is available (checked).
        Some(x) if k > 0 && dotprod_available() => unsafe { rows_with::<true>(x, w, k, acc) },
        _ => dot_rows(x, w, k, acc),
    }
}

/// `acc + the products of x and w` on `SDOT` (`SDOT`, only when the CPU has the
/// dot-product extension) or [`mac16`].
#[inline]
#[target_feature(enable = "neon")]
fn mac<const SDOT: bool>(acc: int32x4_t, x: int8x16_t, w: int8x16_t) -> int32x4_t {
    if SDOT {
        // SAFETY: `SDOT` is true only after `dotprod_available()` (see `dot_rows_sdot`).
        unsafe { sdot(acc, x, w) }
    } else {
        mac16(acc, x, w)
    }
}

/// The row blocking shared by [`dot_rows`] and [`dot_rows_sdot`] (`SDOT`: only when the
/// CPU has the dot-product extension), lanes summed at the end.
#[target_feature(enable = "neon")]
fn rows_with<const SDOT: bool>(x: &[u8], w: &[u8], k: usize, acc: &mut [i32]) {
    let (xh, xt) = x.as_chunks::<16>();
    let mut rows = w.chunks_exact(k);
    let mut quads = acc.chunks_exact_mut(4);
    for a in &mut quads {
        let (Some(r0), Some(r1), Some(r2), Some(r3)) =
            (rows.next(), rows.next(), rows.next(), rows.next())
        else {
            return;
        };
        let (h0, t0) = r0.as_chunks::<16>();
        let (h1, t1) = r1.as_chunks::<16>();
        let (h2, t2) = r2.as_chunks::<16>();
        let (h3, t3) = r3.as_chunks::<16>();
        let z = vdupq_n_s32(0);
        let (mut s0, mut s1, mut s2, mut s3) = (z, z, z, z);
        for ((((xc, c0), c1), c2), c3) in xh.iter().zip(h0).zip(h1).zip(h2).zip(h3) {
            let xv = ld16(xc);
            s0 = mac::<SDOT>(s0, xv, ld16(c0));
            s1 = mac::<SDOT>(s1, xv, ld16(c1));
            s2 = mac::<SDOT>(s2, xv, ld16(c2));
            s3 = mac::<SDOT>(s3, xv, ld16(c3));
        }
        for ((a, s), t) in a.iter_mut().zip([s0, s1, s2, s3]).zip([t0, t1, t2, t3]) {
            *a = vaddvq_s32(s).wrapping_add(dot::dot1(xt, t));
        }
    }
    for (a, r) in quads.into_remainder().iter_mut().zip(rows) {
        let (h, t) = r.as_chunks::<16>();
        let mut s = vdupq_n_s32(0);
        for (xc, c) in xh.iter().zip(h) {
            s = mac::<SDOT>(s, ld16(xc), ld16(c));
        }
        *a = vaddvq_s32(s).wrapping_add(dot::dot1(xt, t));
    }
}

// ---------------------------------------------------------------------------------------
// FULLY_CONNECTED: an i16 segment (input plus offset) against int8 rows
// ---------------------------------------------------------------------------------------

/// [`dot::rows_i16_acc`] on NEON (`SMLAL`/`SMLAL2` on widened weights): four rows per
/// pass, 8 values per step, a scalar tail for `n % 8`. Falls back to the portable twin if
/// a slice is shorter than the rows need.
pub(crate) fn fc_rows(x: &[u8], w: &[u8], stride: usize, s0: usize, n: usize, acc: &mut [i32]) {
    let need = acc
        .len()
        .checked_sub(1)
        .and_then(|r| r.checked_mul(stride))
        .and_then(|v| v.checked_add(s0))
        .and_then(|v| v.checked_add(n));
    let fits = matches!(need, Some(v) if v <= w.len()) && n <= stride;
    let Some(x) = x.get(..n.saturating_mul(2)).filter(|_| fits && n > 0) else {
        return dot::rows_i16_acc(x, w, stride, s0, n, acc);
    };
    // SAFETY: NEON is part of the aarch64 baseline.
    unsafe { fc_rows_neon(x, w, stride, s0, n, acc) }
}

/// `s + x * w` over eight `i16` lanes, into four 32-bit lanes.
#[inline]
#[target_feature(enable = "neon")]
fn mac8(s: int32x4_t, xv: int16x8_t, wv: int16x8_t) -> int32x4_t {
    vmlal_high_s16(vmlal_s16(s, vget_low_s16(xv), vget_low_s16(wv)), xv, wv)
}

#[target_feature(enable = "neon")]
fn fc_rows_neon(x: &[u8], w: &[u8], stride: usize, s0: usize, n: usize, acc: &mut [i32]) {
    let row = |j: usize| {
        w.get(j * stride + s0..)
            .and_then(|r| r.get(..n))
            .unwrap_or(&[])
    };
    let (xh, xt) = x.as_chunks::<16>();
    let mut quads = acc.chunks_exact_mut(4);
    let mut j = 0;
    for a in &mut quads {
        let (h0, t0) = row(j).as_chunks::<8>();
        let (h1, t1) = row(j + 1).as_chunks::<8>();
        let (h2, t2) = row(j + 2).as_chunks::<8>();
        let (h3, t3) = row(j + 3).as_chunks::<8>();
        let z = vdupq_n_s32(0);
        let (mut v0, mut v1, mut v2, mut v3) = (z, z, z, z);
        for ((((xc, c0), c1), c2), c3) in xh.iter().zip(h0).zip(h1).zip(h2).zip(h3) {
            let xv = ld8h(xc);
            v0 = mac8(v0, xv, ld8w(c0));
            v1 = mac8(v1, xv, ld8w(c1));
            v2 = mac8(v2, xv, ld8w(c2));
            v3 = mac8(v3, xv, ld8w(c3));
        }
        for ((a, v), t) in a.iter_mut().zip([v0, v1, v2, v3]).zip([t0, t1, t2, t3]) {
            *a = a
                .wrapping_add(vaddvq_s32(v))
                .wrapping_add(dot::dot1_i16(xt, t));
        }
        j += 4;
    }
    for a in quads.into_remainder() {
        let (h, t) = row(j).as_chunks::<8>();
        let mut v = vdupq_n_s32(0);
        for (xc, c) in xh.iter().zip(h) {
            v = mac8(v, ld8h(xc), ld8w(c));
        }
        *a = a
            .wrapping_add(vaddvq_s32(v))
            .wrapping_add(dot::dot1_i16(xt, t));
        j += 1;
    }
}

// ---------------------------------------------------------------------------------------
// DEPTHWISE_CONV_2D 3x3: 16 channels per step
// ---------------------------------------------------------------------------------------

/// [`dot::dw3x3`] on NEON: 16 channels per step, each tap's products formed exactly in
/// 16 bits (`SMULL`/`SMULL2`) and added into four 32-bit accumulators (`SADDW`/`SADDW2`);
/// then one step of 8 if at least 8 channels are left, and the `n % 8` last channels on
/// the portable twin. Falls back to it if a tap or `w` is
/// shorter than the channels need.
pub(crate) fn dw3x3(taps: &[&[u8]; 9], w: &[u8], c: usize, c0: usize, acc: &mut [i32]) {
    let n = acc.len();
    let fits = match c0.checked_add(n) {
        Some(e) => {
            taps.iter().all(|t| t.len() >= e)
                && c.checked_mul(8)
                    .and_then(|v| v.checked_add(e))
                    .is_some_and(|v| v <= w.len())
                && e <= c
        }
        None => false,
    };
    if !fits {
        return dot::dw3x3(taps, w, c, c0, acc);
    }
    // SAFETY: NEON is part of the aarch64 baseline; the lengths are checked above.
    unsafe { dw3x3_neon(taps, w, c, c0, acc) }
}

/// # Safety
///
/// Every tap holds at least `c0 + acc.len()` bytes and `w` at least `8 * c + c0 +
/// acc.len()` (what [`dw3x3`] checks).
#[target_feature(enable = "neon")]
unsafe fn dw3x3_neon(taps: &[&[u8]; 9], w: &[u8], c: usize, c0: usize, acc: &mut [i32]) {
    // Channel `c0` of each tap and of each filter row. The loads below read bytes
    // `c0 + j .. c0 + j + 16` (or `+ 8`) with `j + 16 <= acc.len()` (`j + 8 <= ...`): in
    // bounds by the contract.
    let xp: [*const i8; 9] = core::array::from_fn(|t| taps[t].as_ptr().wrapping_add(c0).cast());
    let wp: [*const i8; 9] = core::array::from_fn(|t| w.as_ptr().wrapping_add(t * c + c0).cast());
    let (blocks, _) = acc.as_chunks_mut::<16>();
    let mut done = 0;
    for a in blocks.iter_mut() {
        let z = vdupq_n_s32(0);
        let mut s = [z; 4];
        for t in 0..9 {
            // SAFETY: `done + 16 <= n`, so both 16-byte reads are inside the slices (the
            // contract); `LD1` has no alignment requirement.
            let (xv, wv) = unsafe { (vld1q_s8(xp[t].add(done)), vld1q_s8(wp[t].add(done))) };
            let lo = vmull_s8(vget_low_s8(xv), vget_low_s8(wv));
            let hi = vmull_high_s8(xv, wv);
            s[0] = vaddw_s16(s[0], vget_low_s16(lo));
            s[1] = vaddw_high_s16(s[1], lo);
            s[2] = vaddw_s16(s[2], vget_low_s16(hi));
            s[3] = vaddw_high_s16(s[3], hi);
        }
        let (d, _) = a.as_chunks_mut::<4>();
        for (d, s) in d.iter_mut().zip(s) {
            st4(d, s);
        }
        done += 16;
    }
    // Eight more channels (layers of 8 + 16k channels).
    if let Some(a) = acc.get_mut(done..).and_then(|v| v.first_chunk_mut::<8>()) {
        let z = vdupq_n_s32(0);
        let (mut s0, mut s1) = (z, z);
        for t in 0..9 {
            // SAFETY: `done + 8 <= n` (the chunk exists), so both 8-byte reads are inside
            // the slices (the contract); `LD1` has no alignment requirement.
            let p = unsafe { vmull_s8(vld1_s8(xp[t].add(done)), vld1_s8(wp[t].add(done))) };
            s0 = vaddw_s16(s0, vget_low_s16(p));
            s1 = vaddw_high_s16(s1, p);
        }
        let (d, _) = a.as_chunks_mut::<4>();
        for (d, s) in d.iter_mut().zip([s0, s1]) {
            st4(d, s);
        }
        done += 8;
    }
    if let Some(rest) = acc.get_mut(done..) {
        if !rest.is_empty() {
            dot::dw3x3(taps, w, c, c0 + done, rest);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The int8 epilogue (single-shift requantization), eight channels per step
// ---------------------------------------------------------------------------------------

/// [`requant_soa_portable`] on NEON, eight channels per step, in the fixed-point
/// instructions NEON has for exactly this rounding (as TFLite's optimized kernels use
/// them): `SQRDMULH` is gemmlowp's `SaturatingRoundingDoublingHighMul`, `h =
/// floor((x * m + 2^30) / 2^31)` (it saturates only for `x = m = i32::MIN`, and the
/// multipliers are non-negative: `check_requant`); then `RoundingDivideByPOT(h, r)`, round
/// half away from zero, as `SRSHL` (round half up, exact in wider precision) of `h - [h <
/// 0]` (`SQADD` of the sign, which cannot saturate: `h > i32::MIN`), with the shift
/// `-r = !r1` (`r1 = r - 1`, one `MVN`). That is [`requant_single`]'s result
/// ([`crate::kernels::generic::requant`] proves the single-shift form equal to the
/// two-step one; with a zero multiplier both give 0). Then offset, clamp, narrowing; the
/// `n % 8` last channels on the portable twin. The clamp `[-128, 127]` (no activation)
/// is two saturating narrowings.
///
/// [`requant_single`]: crate::kernels::generic::requant::requant_single
pub(crate) fn requant_soa(acc: &[i32], p: &Soa<'_>, clamp: (i32, i32, i32), out: &mut [u8]) {
    // SAFETY: NEON is part of the aarch64 baseline.
    unsafe { requant_soa_neon(acc, p, clamp, out) }
}

/// Four channels of [`requant_soa`] up to the offset: `x = acc + fold`, multiplier `m`,
/// `r1`; returns the requantized value plus `offv`.
#[inline]
#[target_feature(enable = "neon")]
fn requant4(x: int32x4_t, m: int32x4_t, r1: int32x4_t, offv: int32x4_t) -> int32x4_t {
    let h = vqrdmulhq_s32(x, m);
    let sh = vmvnq_s32(r1);
    let fix = vshrq_n_s32::<31>(vandq_s32(h, sh));
    vaddq_s32(vrshlq_s32(vqaddq_s32(h, fix), sh), offv)
}

#[target_feature(enable = "neon")]
fn requant_soa_neon(acc: &[i32], p: &Soa<'_>, (off, lo, hi): (i32, i32, i32), out: &mut [u8]) {
    let n = acc
        .len()
        .min(out.len())
        .min(p.fold.len() / 4)
        .min(p.mult.len() / 4)
        .min(p.r1.len() / 4);
    let n8 = n & !7;
    if lo == -128 && hi == 127 {
        // SAFETY: `n8 <= n` and the lengths as above.
        unsafe { requant_soa_blocks::<true>(acc, p, (off, lo, hi), out, n8) };
    } else {
        // SAFETY: as above.
        unsafe { requant_soa_blocks::<false>(acc, p, (off, lo, hi), out, n8) };
    }
    if let (Some(a), Some(o)) = (acc.get(n8..n), out.get_mut(n8..n)) {
        if !a.is_empty() {
            requant_soa_portable(a, &p.from(n8), (off, lo, hi), o);
        }
    }
}

/// Channels `0..n8` (a multiple of 8) of [`requant_soa`]; with `FULL` (only for the
/// clamp `[-128, 127]`) the clamp and narrowing are saturating narrowings (`SQXTN`),
/// otherwise `SMAX`/`SMIN` to `[lo, max(lo, hi)]` and truncating narrowings (as the
/// portable `as i8`).
///
/// # Safety
///
/// `n8 <= acc.len()`, `n8 <= out.len()` and `4 * n8 <=` each of the [`Soa`] arrays'
/// lengths (the loads and the store read and write inside them).
#[target_feature(enable = "neon")]
unsafe fn requant_soa_blocks<const FULL: bool>(
    acc: &[i32],
    p: &Soa<'_>,
    (off, lo, hi): (i32, i32, i32),
    out: &mut [u8],
    n8: usize,
) {
    let (offv, lov, hiv) = (vdupq_n_s32(off), vdupq_n_s32(lo), vdupq_n_s32(hi.max(lo)));
    let (ap, op) = (acc.as_ptr(), out.as_mut_ptr());
    let (fp, mp, rp) = (
        p.fold.as_ptr().cast::<i32>(),
        p.mult.as_ptr().cast::<i32>(),
        p.r1.as_ptr().cast::<i32>(),
    );
    let mut i = 0;
    while i < n8 {
        // SAFETY: `i + 8 <= n8`, inside every array by the contract; `LD1`/`ST1` have no
        // alignment requirement (the `Soa` bytes are little-endian `i32`s, as aarch64
        // Linux is).
        unsafe {
            let x0 = vaddq_s32(vld1q_s32(ap.add(i)), vld1q_s32(fp.add(i)));
            let x1 = vaddq_s32(vld1q_s32(ap.add(i + 4)), vld1q_s32(fp.add(i + 4)));
            let v0 = requant4(x0, vld1q_s32(mp.add(i)), vld1q_s32(rp.add(i)), offv);
            let v1 = requant4(x1, vld1q_s32(mp.add(i + 4)), vld1q_s32(rp.add(i + 4)), offv);
            let b = if FULL {
                vqmovn_s16(vcombine_s16(vqmovn_s32(v0), vqmovn_s32(v1)))
            } else {
                let v0 = vminq_s32(vmaxq_s32(v0, lov), hiv);
                let v1 = vminq_s32(vmaxq_s32(v1, lov), hiv);
                vmovn_s16(vcombine_s16(vmovn_s32(v0), vmovn_s32(v1)))
            };
            vst1_s8(op.add(i).cast(), b);
        }
        i += 8;
    }
}

// ---------------------------------------------------------------------------------------
// Packed weights (host only, `super::super::packed`): eight output channels per block
// ---------------------------------------------------------------------------------------

/// The packed-weight layouts of [`gemm_tile`] on aarch64 (chosen once per model, see
/// `kernels::packed`). The rows stay int8 as they are (`SDOT` is signed by signed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Packing {
    /// With the dot-product extension: per block of 8 output channels and group of 4
    /// taps, 32 bytes (channel `c`'s four int8 weights at `4c..4c + 4`: two vectors of
    /// four channels); each row group is broadcast and one `SDOT` per vector adds its
    /// four exact products to each channel's lane.
    Sdot,
    /// Baseline NEON: per block and group, 64 bytes: tap `j`'s eight weights as `i16` at
    /// `16j..16j + 16`; each tap of a row multiplies them with `SMLAL`/`SMLAL2` by
    /// element.
    Smlal,
}

impl Packing {
    /// The best packing this CPU runs (NEON is baseline, so always one).
    pub(crate) fn detect() -> Option<Packing> {
        Some(if dotprod_available() {
            Packing::Sdot
        } else {
            Packing::Smlal
        })
    }

    /// Whether the rows are `x XOR 0x80` (never on aarch64).
    pub(crate) fn unsigned_rows(self) -> bool {
        false
    }

    /// The 32-byte piece of block `b`, group `g` (of `k4`) in the packed weights (the
    /// first of two for [`Packing::Smlal`]).
    #[inline]
    pub(crate) fn piece(self, b: usize, g: usize, k4: usize) -> usize {
        match self {
            Packing::Sdot => b * k4 + g,
            Packing::Smlal => 2 * (b * k4 + g),
        }
    }

    /// Pieces of packed weights for `blocks` blocks of `k4` groups.
    pub(crate) fn pieces(self, blocks: usize, k4: usize) -> Option<usize> {
        match self {
            Packing::Sdot => blocks.checked_mul(k4),
            Packing::Smlal => blocks.checked_mul(k4)?.checked_mul(2),
        }
    }
}

/// `acc[p][8 * b + c] = sum_g sum_j row_p[4g + j] * w(b, g, c, j)` (wrapping int32) for
/// `NP` int8 rows of `k4` groups of 4 bytes and `nb` (at most 4) consecutive packed
/// blocks `w` of 8 channels each; each vector lane is one output channel. Returns
/// `false` (computing nothing) without the CPU feature or when a slice is shorter than
/// `k4` and `nb` need.
pub(crate) fn gemm_tile<const NP: usize>(
    packing: Packing,
    rows: &[&[[u8; 4]]; NP],
    w: &[[u8; 32]],
    k4: usize,
    nb: usize,
    acc: &mut [[i32; 32]; NP],
) -> bool {
    let fits = nb <= 4
        && rows.iter().all(|r| r.len() >= k4)
        && packing.pieces(nb, k4).is_some_and(|v| v <= w.len());
    if !fits {
        return false;
    }
    match packing {
        Packing::Sdot if dotprod_available() => {
            // SAFETY: the dot-product extension is available (checked).
            unsafe { tile_sdot(rows, w, k4, nb, acc) };
            true
        }
        Packing::Smlal => {
            // SAFETY: NEON is part of the aarch64 baseline.
            unsafe { tile_smlal(rows, w, k4, nb, acc) };
            true
        }
        Packing::Sdot => false,
    }
}

/// Stores two vectors into lanes `8b..8b + 8` of `a`.
#[inline]
#[target_feature(enable = "neon")]
fn store_block(a: &mut [i32; 32], b: usize, lo: int32x4_t, hi: int32x4_t) {
    if let Some(d) = a.get_mut(8 * b..8 * b + 8) {
        let (d0, d1) = d.split_at_mut(4);
        if let (Ok(d0), Ok(d1)) = (<&mut [i32; 4]>::try_from(d0), <&mut [i32; 4]>::try_from(d1)) {
            st4(d0, lo);
            st4(d1, hi);
        }
    }
}

/// `SDOT acc.4s, w.16b, x.4b[LANE]`: each lane of `acc` plus the four exact products of
/// its four weights in `w` with the four int8 values of `x`'s 32-bit element `LANE`.
macro_rules! sdot_lane {
    ($name:ident, $insn:literal) => {
        /// # Safety
        ///
        /// The CPU must have the dot-product extension ([`dotprod_available`]).
        #[inline(always)]
        unsafe fn $name(acc: int32x4_t, w: int8x16_t, x: int8x16_t) -> int32x4_t {
            let mut acc = acc;
            // SAFETY: a register-only instruction of the dot-product extension, which the
            // caller guarantees; no memory, stack or flag access.
            unsafe {
                core::arch::asm!(
                    ".arch_extension dotprod",
                    $insn,
                    a = inout(vreg) acc,
                    w = in(vreg) w,
                    x = in(vreg) x,
                    options(pure, nomem, nostack, preserves_flags),
                );
            }
            acc
        }
    };
}
sdot_lane!(sdot_l0, "sdot {a:v}.4s, {w:v}.16b, {x:v}.4b[0]");
sdot_lane!(sdot_l1, "sdot {a:v}.4s, {w:v}.16b, {x:v}.4b[1]");
sdot_lane!(sdot_l2, "sdot {a:v}.4s, {w:v}.16b, {x:v}.4b[2]");
sdot_lane!(sdot_l3, "sdot {a:v}.4s, {w:v}.16b, {x:v}.4b[3]");

/// The two weight vectors (channels 0-3, 4-7) of one packed piece.
#[inline]
#[target_feature(enable = "neon")]
fn piece_w(piece: &[u8; 32]) -> (int8x16_t, int8x16_t) {
    let (h0, h1) = piece.split_at(16);
    match (<&[u8; 16]>::try_from(h0), <&[u8; 16]>::try_from(h1)) {
        (Ok(h0), Ok(h1)) => (ld16(h0), ld16(h1)),
        _ => (
            vreinterpretq_s8_s32(vdupq_n_s32(0)),
            vreinterpretq_s8_s32(vdupq_n_s32(0)),
        ),
    }
}

/// Four groups at a time: each row's 16 bytes (groups `4q..4q + 4`) loaded once, and
/// `SDOT` by element (`x.4b[j]`) against group `j`'s two weight vectors; the `k4 % 4`
/// last groups with the row group broadcast (`DUP`) and plain `SDOT`.
///
/// # Safety
///
/// The CPU must have the dot-product extension ([`dotprod_available`]).
#[target_feature(enable = "neon")]
unsafe fn tile_sdot<const NP: usize>(
    rows: &[&[[u8; 4]]; NP],
    w: &[[u8; 32]],
    k4: usize,
    nb: usize,
    acc: &mut [[i32; 32]; NP],
) {
    let z = vdupq_n_s32(0);
    for b in 0..nb {
        let Some(wb) = w.get(b * k4..(b + 1) * k4) else {
            return;
        };
        let (mut lo, mut hi) = ([z; NP], [z; NP]);
        let (quads, tail) = wb.as_chunks::<4>();
        for (q, [p0, p1, p2, p3]) in quads.iter().enumerate() {
            let xs: [int8x16_t; NP] = core::array::from_fn(|p| {
                match rows[p]
                    .get(4 * q..4 * q + 4)
                    .and_then(|g| g.as_flattened().first_chunk::<16>())
                {
                    Some(x) => ld16(x),
                    None => vreinterpretq_s8_s32(z),
                }
            });
            let ((a0, b0), (a1, b1), (a2, b2), (a3, b3)) =
                (piece_w(p0), piece_w(p1), piece_w(p2), piece_w(p3));
            for p in 0..NP {
                let x = xs[p];
                // SAFETY: the caller guarantees the dot-product extension.
                unsafe {
                    lo[p] = sdot_l3(sdot_l2(sdot_l1(sdot_l0(lo[p], a0, x), a1, x), a2, x), a3, x);
                    hi[p] = sdot_l3(sdot_l2(sdot_l1(sdot_l0(hi[p], b0, x), b1, x), b2, x), b3, x);
                }
            }
        }
        let g0 = 4 * quads.len();
        for (i, piece) in tail.iter().enumerate() {
            let (w0, w1) = piece_w(piece);
            for p in 0..NP {
                let xg = rows[p].get(g0 + i).map_or(0, |v| i32::from_le_bytes(*v));
                let x = vreinterpretq_s8_s32(vdupq_n_s32(xg));
                // SAFETY: the caller guarantees the dot-product extension.
                unsafe {
                    lo[p] = sdot(lo[p], x, w0);
                    hi[p] = sdot(hi[p], x, w1);
                }
            }
        }
        for p in 0..NP {
            store_block(&mut acc[p], b, lo[p], hi[p]);
        }
    }
}

/// Tap `h` (0 or 1) of a [`Packing::Smlal`] piece: eight `i16` weights.
#[inline]
#[target_feature(enable = "neon")]
fn smlal_tap(p: &[u8; 32], h: usize) -> int16x8_t {
    match p.get(16 * h..16 * h + 16).map(<&[u8; 16]>::try_from) {
        Some(Ok(b)) => ld8h(b),
        _ => vdupq_n_s16(0),
    }
}

/// Two groups (eight taps) at a time: each row's 8 bytes loaded once and widened
/// (`SXTL`), then `SMLAL`/`SMLAL2` by element (lane `j` of the row) against tap `j`'s
/// eight weights; the last odd group tap by tap with the row value broadcast.
#[target_feature(enable = "neon")]
fn tile_smlal<const NP: usize>(
    rows: &[&[[u8; 4]]; NP],
    w: &[[u8; 32]],
    k4: usize,
    nb: usize,
    acc: &mut [[i32; 32]; NP],
) {
    let z = vdupq_n_s32(0);
    for b in 0..nb {
        let Some(wb) = w.get(2 * b * k4..2 * (b + 1) * k4) else {
            return;
        };
        let (groups, _) = wb.as_chunks::<2>();
        let (pairs, tail) = groups.as_chunks::<2>();
        let (mut lo, mut hi) = ([z; NP], [z; NP]);
        for (q, [[a01, a23], [b01, b23]]) in pairs.iter().enumerate() {
            let t = [
                smlal_tap(a01, 0),
                smlal_tap(a01, 1),
                smlal_tap(a23, 0),
                smlal_tap(a23, 1),
                smlal_tap(b01, 0),
                smlal_tap(b01, 1),
                smlal_tap(b23, 0),
                smlal_tap(b23, 1),
            ];
            for p in 0..NP {
                let x = match rows[p]
                    .get(2 * q..2 * q + 2)
                    .and_then(|g| g.as_flattened().first_chunk::<8>())
                {
                    Some(x) => ld8w(x),
                    None => vdupq_n_s16(0),
                };
                macro_rules! tap {
                    ($j:literal) => {
                        lo[p] = vmlal_laneq_s16::<$j>(lo[p], vget_low_s16(t[$j]), x);
                        hi[p] = vmlal_high_laneq_s16::<$j>(hi[p], t[$j], x);
                    };
                }
                tap!(0);
                tap!(1);
                tap!(2);
                tap!(3);
                tap!(4);
                tap!(5);
                tap!(6);
                tap!(7);
            }
        }
        let g0 = 2 * pairs.len();
        for (i, [p01, p23]) in tail.iter().enumerate() {
            let t = [
                smlal_tap(p01, 0),
                smlal_tap(p01, 1),
                smlal_tap(p23, 0),
                smlal_tap(p23, 1),
            ];
            for p in 0..NP {
                let x = rows[p].get(g0 + i).copied().unwrap_or([0; 4]);
                for (tj, &xj) in t.iter().zip(&x) {
                    let xv = i16::from(xj as i8);
                    lo[p] = vmlal_n_s16(lo[p], vget_low_s16(*tj), xv);
                    hi[p] = vmlal_high_n_s16(hi[p], *tj, xv);
                }
            }
        }
        for p in 0..NP {
            store_block(&mut acc[p], b, lo[p], hi[p]);
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;
    use crate::kernels::testutil::{specialised_matches_portable, Rng};

    fn bytes(r: &mut Rng, n: usize) -> Vec<u8> {
        match r.range(0, 5) {
            0 => std::vec![0x80; n],
            1 => std::vec![0x7f; n],
            _ => r.bytes(n),
        }
    }

    type Conv = (usize, Vec<u8>, Vec<u8>, usize);

    fn conv_case(r: &mut Rng) -> Option<Conv> {
        let k = if r.bool() {
            r.usize(0, 40)
        } else {
            r.usize(0, 600)
        };
        let rows = r.usize(1, 11);
        Some((k, bytes(r, k), bytes(r, rows * k), rows))
    }

    fn conv_run(c: &Conv, f: fn(&[u8], &[u8], usize, &mut [i32])) -> Vec<i32> {
        let (k, x, w, rows) = c;
        let mut acc = std::vec![7; *rows];
        f(x, w, *k, &mut acc);
        acc
    }

    specialised_matches_portable!(
        /// CONV_2D's patch-against-rows kernel (`SMULL` + `SADALP`).
        neon_dot_rows_matches_portable {
            seed: 51,
            cases: 2000,
            generate: conv_case,
            portable: |c: &Conv| conv_run(c, dot::rows),
            specialised: |c: &Conv| conv_run(c, dot_rows),
        }
    );

    specialised_matches_portable!(
        /// The same with `SDOT` (where the CPU has it; otherwise [`dot_rows`] again).
        neon_sdot_rows_matches_portable {
            seed: 52,
            cases: 2000,
            generate: conv_case,
            portable: |c: &Conv| conv_run(c, dot::rows),
            specialised: |c: &Conv| {
                if !dotprod_available() {
                    std::println!("SKIPPED: no dot-product extension on this CPU");
                }
                conv_run(c, dot_rows_sdot)
            },
        }
    );

    #[derive(Debug)]
    struct Fc {
        x: Vec<u8>,
        w: Vec<u8>,
        stride: usize,
        s0: usize,
        n: usize,
        rows: usize,
    }

    fn fc_case(r: &mut Rng) -> Option<Fc> {
        let n = if r.bool() {
            r.usize(0, 40)
        } else {
            r.usize(0, 700)
        };
        let s0 = r.usize(0, 9);
        let stride = s0 + n + r.usize(0, 5);
        let rows = r.usize(1, 11);
        let x = (0..n)
            .flat_map(|_| {
                match r.range(0, 4) {
                    0 => 255i16,
                    1 => -255,
                    _ => r.range(-255, 255) as i16,
                }
                .to_le_bytes()
            })
            .collect();
        Some(Fc {
            x,
            w: bytes(r, rows * stride),
            stride,
            s0,
            n,
            rows,
        })
    }

    specialised_matches_portable!(
        /// FULLY_CONNECTED's segment-against-rows kernel, onto non-zero sums.
        neon_fc_rows_matches_portable {
            seed: 53,
            cases: 2000,
            generate: fc_case,
            portable: |f: &Fc| {
                let mut acc: Vec<i32> = (0..f.rows as i32).collect();
                dot::rows_i16_acc(&f.x, &f.w, f.stride, f.s0, f.n, &mut acc);
                acc
            },
            specialised: |f: &Fc| {
                let mut acc: Vec<i32> = (0..f.rows as i32).collect();
                fc_rows(&f.x, &f.w, f.stride, f.s0, f.n, &mut acc);
                acc
            },
        }
    );

    type Dw = (Vec<Vec<u8>>, Vec<u8>, usize, usize, usize);
    type DwFn = fn(&[&[u8]; 9], &[u8], usize, usize, &mut [i32]);

    fn dw_case(r: &mut Rng) -> Option<Dw> {
        let c = r.usize(1, 90);
        let c0 = r.usize(0, c - 1);
        let n = r.usize(0, c - c0);
        let taps = (0..9).map(|_| bytes(r, c)).collect();
        Some((taps, bytes(r, 9 * c), c, c0, n))
    }

    fn dw_run(d: &Dw, f: DwFn) -> Vec<i32> {
        let (taps, w, c, c0, n) = d;
        let t: [&[u8]; 9] = core::array::from_fn(|i| &taps[i][..]);
        let mut acc = std::vec![7; *n];
        f(&t, w, *c, *c0, &mut acc);
        acc
    }

    specialised_matches_portable!(
        /// The 3x3 depthwise kernel (16 channels per step, any channel range).
        neon_dw3x3_matches_portable {
            seed: 54,
            cases: 2000,
            generate: dw_case,
            portable: |d: &Dw| dw_run(d, dot::dw3x3),
            specialised: |d: &Dw| dw_run(d, dw3x3),
        }
    );

    #[derive(Debug)]
    struct Epi {
        acc: Vec<i32>,
        soa: Vec<u8>,
        n: usize,
        clamp: (i32, i32, i32),
    }

    fn epi_case(r: &mut Rng) -> Option<Epi> {
        let n = r.usize(0, 70);
        let acc = (0..n)
            .map(|_| match r.range(0, 6) {
                0 => i32::MIN,
                1 => i32::MAX,
                2 => r.u32() as i32,
                _ => r.range(-300_000, 300_000) as i32,
            })
            .collect();
        let mut soa = std::vec![0u8; 12 * n];
        for (j, (m, s)) in r.multipliers(n).into_iter().enumerate() {
            let (m, s) = if s >= 0 { (0, 0) } else { (m, s) };
            let fold = if r.bool() {
                r.u32() as i32
            } else {
                r.range(-5000, 5000) as i32
            };
            let r1 = s.unsigned_abs().saturating_sub(1);
            soa[4 * j..4 * j + 4].copy_from_slice(&fold.to_le_bytes());
            soa[4 * (n + j)..4 * (n + j) + 4].copy_from_slice(&m.to_le_bytes());
            soa[4 * (2 * n + j)..4 * (2 * n + j) + 4].copy_from_slice(&r1.to_le_bytes());
        }
        let (a, b) = (r.range(-128, 127) as i32, r.range(-128, 127) as i32);
        // A third of the cases without activation (the saturating-narrowing path).
        let (a, b) = if r.range(0, 2) == 0 {
            (-128, 127)
        } else {
            (a.min(b), a.max(b))
        };
        Some(Epi {
            acc,
            soa,
            n,
            clamp: (r.range(-128, 127) as i32, a, b),
        })
    }

    specialised_matches_portable!(
        /// The vector epilogue (single-shift requantization, offset, clamp, narrowing).
        neon_requant_soa_matches_portable {
            seed: 55,
            cases: 3000,
            generate: epi_case,
            portable: |e: &Epi| {
                let mut out = std::vec![0xA5u8; e.n];
                requant_soa_portable(&e.acc, &Soa::new(&e.soa, e.n), e.clamp, &mut out);
                out
            },
            specialised: |e: &Epi| {
                let mut out = std::vec![0xA5u8; e.n];
                requant_soa(&e.acc, &Soa::new(&e.soa, e.n), e.clamp, &mut out);
                out
            },
        }
    );

    /// The epilogue on the rounding edges the random cases rarely reach: every right
    /// shift, multipliers 0, 1, 2^30 and i32::MAX, and accumulators around powers of two
    /// (where `SQRDMULH` and the round-half-away-from-zero shift meet ties), both signs.
    #[test]
    fn neon_requant_soa_rounding_edges() {
        let mut xs = std::vec![i32::MIN, i32::MIN + 1, i32::MAX, i32::MAX - 1, 0, 1, -1];
        for k in 0..31 {
            for d in [-1i64, 0, 1] {
                let v = (1i64 << k) + d;
                xs.push(v as i32);
                xs.push((-v) as i32);
            }
        }
        let n = xs.len();
        for m in [0, 1, 1 << 30, i32::MAX, 0x5555_5555] {
            for r1 in 0i32..31 {
                for fold in [0i32, -7, 1 << 20] {
                    let mut soa = std::vec![0u8; 12 * n];
                    for j in 0..n {
                        soa[4 * j..4 * j + 4].copy_from_slice(&fold.to_le_bytes());
                        soa[4 * (n + j)..4 * (n + j) + 4].copy_from_slice(&m.to_le_bytes());
                        soa[4 * (2 * n + j)..4 * (2 * n + j) + 4]
                            .copy_from_slice(&r1.to_le_bytes());
                    }
                    let soa = Soa::new(&soa, n);
                    let (mut want, mut got) = (std::vec![0u8; n], std::vec![0u8; n]);
                    requant_soa_portable(&xs, &soa, (3, -128, 127), &mut want);
                    requant_soa(&xs, &soa, (3, -128, 127), &mut got);
                    assert_eq!(got, want, "m {m} r1 {r1} fold {fold}");
                }
            }
        }
    }

    /// A packed-kernel case: the packing, `k4`, `nb`, three rows (`k4` groups) and the
    /// packed blocks of weights.
    type Tile = (Packing, usize, usize, Vec<Vec<[u8; 4]>>, Vec<[u8; 32]>);

    fn tile_case(r: &mut Rng) -> Option<Tile> {
        let packing = if r.bool() && dotprod_available() {
            Packing::Sdot
        } else {
            Packing::Smlal
        };
        let k4 = if r.bool() {
            r.usize(1, 6)
        } else {
            r.usize(1, 200)
        };
        let nb = r.usize(1, 4);
        let rows = (0..3)
            .map(|_| {
                bytes(r, 4 * k4)
                    .chunks_exact(4)
                    .map(|c| [c[0], c[1], c[2], c[3]])
                    .collect()
            })
            .collect();
        let n = packing.pieces(nb, k4).unwrap();
        let raw = match packing {
            Packing::Sdot => bytes(r, 32 * n),
            // i16 weights in the int8 range, as the packing writes them.
            Packing::Smlal => bytes(r, 16 * n)
                .iter()
                .flat_map(|&b| i16::from(b as i8).to_le_bytes())
                .collect(),
        };
        let w = raw
            .chunks_exact(32)
            .map(|c| <[u8; 32]>::try_from(c).unwrap())
            .collect();
        Some((packing, k4, nb, rows, w))
    }

    fn tile_run(t: &Tile, portable: bool) -> Vec<i32> {
        let (packing, k4, nb, rows, w) = t;
        let r: [&[[u8; 4]]; 3] = [&rows[0], &rows[1], &rows[2]];
        let mut acc = [[7i32; 32]; 3];
        if portable {
            crate::kernels::packed::tile_portable(*packing, &r, w, *k4, *nb, &mut acc);
        } else {
            assert!(gemm_tile::<3>(*packing, &r, w, *k4, *nb, &mut acc));
        }
        acc.iter().flat_map(|a| a[..8 * nb].to_vec()).collect()
    }

    specialised_matches_portable!(
        /// The packed-weight kernels (`SDOT` on broadcast row groups where the CPU has
        /// the dot-product extension, `SMLAL` by element otherwise; eight channels per
        /// two vectors, several rows per pass) against their portable twin on the same
        /// layout, extreme values included.
        packed_gemm_tile_matches_portable {
            seed: 56,
            cases: 2000,
            generate: tile_case,
            portable: |t: &Tile| tile_run(t, true),
            specialised: |t: &Tile| tile_run(t, false),
        }
    );
}
