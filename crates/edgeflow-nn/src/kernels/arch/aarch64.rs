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
    int8x8_t, vcombine_s8, vdup_n_s32, vdup_n_s8, vmax_s8, vmin_s8, vqaddq_s16, vqmovn_high_s32,
    vreinterpret_s8_s32, vst1q_s8,
};
use core::arch::aarch64::{
    vaddw_high_s8, vaddw_s8, vdupq_n_s8, vmaxq_s8, vminq_s8, vqmovn_high_s16,
};
use core::arch::aarch64::{
    vandq_s32, vmvnq_s32, vqaddq_s32, vqrdmulhq_s32, vrshlq_s32, vshrq_n_s32,
};
use core::arch::aarch64::{vdupq_n_s16, vmlal_high_n_s16, vmlal_n_s16, vreinterpretq_s8_s32};
use core::arch::aarch64::{vmlal_high_laneq_s16, vmlal_laneq_s16, vqmovn_s16, vqmovn_s32};
use core::arch::aarch64::{
    vmovl_high_s16, vmovl_high_s8, vmovl_s16, vmovn_high_s16, vmovn_high_s32, vshlq_s32,
    vsraq_n_s32,
};

use crate::kernels::generic::dot;
use crate::kernels::generic::requant::{requant_soa_portable, Soa};
use crate::kernels::packed::PixelGrid;

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

macro_rules! ld1x4 {
    ($name:ident, $insn:literal, $r0:tt, $r1:tt, $r2:tt, $r3:tt) => {
        /// `LD1` of four registers: the 64 bytes at `*p`, `*p` advanced past them (fixed
        /// registers: `LD1` takes consecutive ones, which inline assembly cannot ask
        /// for; the two variants use different ones so that both can be live).
        ///
        /// # Safety
        ///
        /// 64 bytes at `*p` are readable (`LD1` has no alignment requirement).
        #[inline(always)]
        unsafe fn $name(p: &mut *const u8) -> [int8x16_t; 4] {
            let (v0, v1, v2, v3): (int8x16_t, int8x16_t, int8x16_t, int8x16_t);
            // SAFETY: reads the 64 bytes the caller guarantees; no stack or flag access.
            unsafe {
                core::arch::asm!(
                    $insn,
                    p = inout(reg) *p,
                    out($r0) v0,
                    out($r1) v1,
                    out($r2) v2,
                    out($r3) v3,
                    options(pure, readonly, nostack, preserves_flags),
                );
            }
            [v0, v1, v2, v3]
        }
    };
}
ld1x4!(
    ld1x4_lo,
    "ld1 {{v24.16b, v25.16b, v26.16b, v27.16b}}, [{p}], #64",
    "v24",
    "v25",
    "v26",
    "v27"
);
ld1x4!(
    ld1x4_hi,
    "ld1 {{v28.16b, v29.16b, v30.16b, v31.16b}}, [{p}], #64",
    "v28",
    "v29",
    "v30",
    "v31"
);

/// One step of four groups of one block for four rows: the block's 128 bytes of weights
/// by two `LD1` of four registers (`*w` advanced past them), then 32 `SDOT` by element
/// (row `r`'s group `j` against group `j`'s two vectors onto `acc[r]`). In one assembly
/// block: `LD1` needs consecutive registers, which only fixed ones (`v24`-`v31`, here
/// clobbered) give, and fixed registers as outputs cost moves around the kernel's
/// 16 accumulators.
///
/// # Safety
///
/// The CPU has the dot-product extension; 128 bytes at `*w` are readable (`LD1` has no
/// alignment requirement).
#[inline(always)]
unsafe fn sdot_step4(acc: &mut [[int32x4_t; 2]; 4], x: &[int8x16_t; 4], w: &mut *const u8) {
    let [[mut a0, mut b0], [mut a1, mut b1], [mut a2, mut b2], [mut a3, mut b3]] = *acc;
    // SAFETY: reads the 128 bytes the caller guarantees; `SDOT` is of the extension the
    // caller guarantees; no stack or flag access.
    unsafe {
        core::arch::asm!(
            ".arch_extension dotprod",
            "ld1 {{v24.16b, v25.16b, v26.16b, v27.16b}}, [{w}], #64",
            "ld1 {{v28.16b, v29.16b, v30.16b, v31.16b}}, [{w}], #64",
            "sdot {a0:v}.4s, v24.16b, {x0:v}.4b[0]",
            "sdot {b0:v}.4s, v25.16b, {x0:v}.4b[0]",
            "sdot {a1:v}.4s, v24.16b, {x1:v}.4b[0]",
            "sdot {b1:v}.4s, v25.16b, {x1:v}.4b[0]",
            "sdot {a2:v}.4s, v24.16b, {x2:v}.4b[0]",
            "sdot {b2:v}.4s, v25.16b, {x2:v}.4b[0]",
            "sdot {a3:v}.4s, v24.16b, {x3:v}.4b[0]",
            "sdot {b3:v}.4s, v25.16b, {x3:v}.4b[0]",
            "sdot {a0:v}.4s, v26.16b, {x0:v}.4b[1]",
            "sdot {b0:v}.4s, v27.16b, {x0:v}.4b[1]",
            "sdot {a1:v}.4s, v26.16b, {x1:v}.4b[1]",
            "sdot {b1:v}.4s, v27.16b, {x1:v}.4b[1]",
            "sdot {a2:v}.4s, v26.16b, {x2:v}.4b[1]",
            "sdot {b2:v}.4s, v27.16b, {x2:v}.4b[1]",
            "sdot {a3:v}.4s, v26.16b, {x3:v}.4b[1]",
            "sdot {b3:v}.4s, v27.16b, {x3:v}.4b[1]",
            "sdot {a0:v}.4s, v28.16b, {x0:v}.4b[2]",
            "sdot {b0:v}.4s, v29.16b, {x0:v}.4b[2]",
            "sdot {a1:v}.4s, v28.16b, {x1:v}.4b[2]",
            "sdot {b1:v}.4s, v29.16b, {x1:v}.4b[2]",
            "sdot {a2:v}.4s, v28.16b, {x2:v}.4b[2]",
            "sdot {b2:v}.4s, v29.16b, {x2:v}.4b[2]",
            "sdot {a3:v}.4s, v28.16b, {x3:v}.4b[2]",
            "sdot {b3:v}.4s, v29.16b, {x3:v}.4b[2]",
            "sdot {a0:v}.4s, v30.16b, {x0:v}.4b[3]",
            "sdot {b0:v}.4s, v31.16b, {x0:v}.4b[3]",
            "sdot {a1:v}.4s, v30.16b, {x1:v}.4b[3]",
            "sdot {b1:v}.4s, v31.16b, {x1:v}.4b[3]",
            "sdot {a2:v}.4s, v30.16b, {x2:v}.4b[3]",
            "sdot {b2:v}.4s, v31.16b, {x2:v}.4b[3]",
            "sdot {a3:v}.4s, v30.16b, {x3:v}.4b[3]",
            "sdot {b3:v}.4s, v31.16b, {x3:v}.4b[3]",
            w = inout(reg) *w,
            a0 = inout(vreg) a0,
            b0 = inout(vreg) b0,
            a1 = inout(vreg) a1,
            b1 = inout(vreg) b1,
            a2 = inout(vreg) a2,
            b2 = inout(vreg) b2,
            a3 = inout(vreg) a3,
            b3 = inout(vreg) b3,
            x0 = in(vreg) x[0],
            x1 = in(vreg) x[1],
            x2 = in(vreg) x[2],
            x3 = in(vreg) x[3],
            out("v24") _,
            out("v25") _,
            out("v26") _,
            out("v27") _,
            out("v28") _,
            out("v29") _,
            out("v30") _,
            out("v31") _,
            options(pure, readonly, nostack, preserves_flags),
        );
    }
    *acc = [[a0, b0], [a1, b1], [a2, b2], [a3, b3]];
}

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

// ---------------------------------------------------------------------------------------
// Packed weights, rows given as pieces read in place (an indirect GEMM), the epilogue
// fused while the accumulators are in registers
// ---------------------------------------------------------------------------------------

/// Epilogue constant pieces per block of eight channels ([`pre8`]).
pub(crate) const PRE8: usize = 3;

/// The fused kernels' epilogue constants of eight channels ([`gemm_fused`]), as
/// little-endian `i32` lanes: the fold (bias plus the input-offset correction, which
/// the accumulators start from: addition modulo 2^32 is associative, so starting from
/// it equals adding it after the sums), the multiplier, and `!r1 = -(r1 + 1)`, the
/// negative shift `SRSHL` takes (the same values [`requant4`] computes per call).
pub(crate) fn pre8(fold: [i32; 8], mult: [i32; 8], r1: [u32; 8]) -> [[u8; 32]; PRE8] {
    let lanes = |v: [i32; 8]| {
        let mut p = [0u8; 32];
        for (d, x) in p.chunks_exact_mut(4).zip(v) {
            d.copy_from_slice(&x.to_le_bytes());
        }
        p
    };
    [lanes(fold), lanes(mult), lanes(r1.map(|r| !(r as i32)))]
}

/// Where block `b`'s group 0 starts in `w` (null past its end: the callers checked the
/// lengths).
#[inline(always)]
fn first_piece(packing: Packing, w: &[[u8; 32]], b: usize, k4: usize) -> *const u8 {
    w.get(packing.piece(b, 0, k4)..)
        .map_or(core::ptr::null(), |r| r.as_ptr().cast())
}

/// Accumulators of `BP` blocks (two vectors of four channels each) for `NP` rows.
type Accs<const NP: usize, const BP: usize> = [[[int32x4_t; 2]; BP]; NP];

/// Where a pass's rows are: [`RowSrc::at`]`(p, t)` is where row `p`'s piece `t` starts
/// (a null pointer for a row or piece the source does not hold; the callers checked).
trait RowSrc: Copy {
    fn at(&self, p: usize, t: usize) -> *const u8;
}

/// Rows given as a list of pieces: row `p`'s piece `t` is `rows[p * taps + t]`.
#[derive(Clone, Copy)]
struct List<'a> {
    rows: &'a [&'a [[u8; 4]]],
    taps: usize,
}

impl RowSrc for List<'_> {
    #[inline(always)]
    fn at(&self, p: usize, t: usize) -> *const u8 {
        self.rows
            .get(p * self.taps + t)
            .map_or(core::ptr::null(), |s| s.as_ptr().cast())
    }
}

/// Rows of up to four pixels of a [`PixelGrid`]: row `p`'s piece `t` starts `t * step`
/// bytes after `base[p]` ([`gemm_fused_grid`] checked every such piece is inside the
/// input).
#[derive(Clone, Copy)]
struct Strided {
    base: [*const u8; 4],
    step: usize,
}

impl RowSrc for Strided {
    #[inline(always)]
    fn at(&self, p: usize, t: usize) -> *const u8 {
        self.base
            .get(p)
            .map_or(core::ptr::null(), |b| b.wrapping_add(t * self.step))
    }
}

/// Where rows and weights are for one pass of a kernel: row `p`'s piece `t`
/// (`rows.at(p, t)`) holds at least `s4` groups of 4 bytes, and the weights of the
/// pass's first block, group 0, are at `w`.
#[derive(Clone, Copy)]
struct Pass<R> {
    rows: R,
    taps: usize,
    s4: usize,
    k4: usize,
    w: *const u8,
}

/// Row `p`'s piece `t` (a null pointer past the source: the callers checked it).
#[inline(always)]
fn piece_at<R: RowSrc>(ps: &Pass<R>, p: usize, t: usize) -> *const u8 {
    ps.rows.at(p, t)
}

/// `SDOT` accumulation of one pass: for each tap piece, four groups at a time with each
/// row's 16 bytes loaded once and `SDOT` by element (`x.4b[j]`) against group `j`'s two
/// weight vectors of each of the `BP` blocks, then the `s4 % 4` last groups with the
/// row group loaded and replicated (`LD1R`) and plain `SDOT`.
///
/// # Safety
///
/// The dot-product extension is available; every piece of the `NP` rows holds at least
/// `s4` groups, `taps * s4 == k4`, and `w` has the [`Packing::Sdot`] pieces of the `BP`
/// blocks from the pass's first (block `i` at `32 * i * k4` bytes from `w`).
#[inline(always)]
unsafe fn acc_sdot<const NP: usize, const BP: usize, R: RowSrc>(
    ps: &Pass<R>,
    mut a: Accs<NP, BP>,
) -> Accs<NP, BP> {
    let (s4, k4) = (ps.s4, ps.k4);
    let q4 = s4 / 4;
    for t in 0..ps.taps {
        let rp: [*const u8; NP] = core::array::from_fn(|p| piece_at(ps, p, t));
        // SAFETY (all below): the offsets stay inside the pieces and weights the caller
        // guarantees; `LD1`/`LD1R` have no alignment requirement.
        let wt = unsafe { ps.w.add(32 * t * s4) };
        // One row: each block's four groups of a step are 128 consecutive bytes, loaded
        // by two `LD1` of four registers (groups 0-1, 2-3) that advance the block's
        // pointer, instead of four `LDP` and the pointer arithmetic (43 instructions per
        // step of four blocks instead of 54: AD 48.5 K -> 44.0 K per inference on
        // cortex-a76). Four rows: the same loads inside one assembly block with the
        // block's 32 `SDOT` ([`sdot_step4`]; 74 instructions per step of two blocks
        // instead of 80); the loads as fixed-register outputs, as for one row, cost more
        // moves than they saved there (IC +21 %). Two or three rows keep the `LDP`.
        let mut wb: [*const u8; BP] = core::array::from_fn(|i| unsafe { wt.add(32 * i * k4) });
        for q in 0..q4 {
            let x: [int8x16_t; NP] =
                core::array::from_fn(|p| unsafe { vld1q_s8(rp[p].add(16 * q).cast()) });
            if NP == 1 {
                for i in 0..BP {
                    let (g01, g23) = unsafe { (ld1x4_lo(&mut wb[i]), ld1x4_hi(&mut wb[i])) };
                    for p in 0..NP {
                        unsafe {
                            a[p][i][0] = sdot_l0(a[p][i][0], g01[0], x[p]);
                            a[p][i][1] = sdot_l0(a[p][i][1], g01[1], x[p]);
                            a[p][i][0] = sdot_l1(a[p][i][0], g01[2], x[p]);
                            a[p][i][1] = sdot_l1(a[p][i][1], g01[3], x[p]);
                            a[p][i][0] = sdot_l2(a[p][i][0], g23[0], x[p]);
                            a[p][i][1] = sdot_l2(a[p][i][1], g23[1], x[p]);
                            a[p][i][0] = sdot_l3(a[p][i][0], g23[2], x[p]);
                            a[p][i][1] = sdot_l3(a[p][i][1], g23[3], x[p]);
                        }
                    }
                }
                continue;
            }
            if NP == 4 {
                let x4: [int8x16_t; 4] = core::array::from_fn(|p| x[p % NP]);
                for i in 0..BP {
                    let mut acc: [[int32x4_t; 2]; 4] = core::array::from_fn(|p| a[p % NP][i]);
                    unsafe { sdot_step4(&mut acc, &x4, &mut wb[i]) };
                    for p in 0..NP {
                        a[p][i] = acc[p];
                    }
                }
                continue;
            }
            let wq = unsafe { wt.add(128 * q) };
            macro_rules! group {
                ($j:literal, $f:ident) => {
                    for i in 0..BP {
                        let pw = unsafe { wq.add(32 * (i * k4 + $j)) };
                        let (w0, w1) =
                            unsafe { (vld1q_s8(pw.cast()), vld1q_s8(pw.add(16).cast())) };
                        for p in 0..NP {
                            unsafe {
                                a[p][i][0] = $f(a[p][i][0], w0, x[p]);
                                a[p][i][1] = $f(a[p][i][1], w1, x[p]);
                            }
                        }
                    }
                };
            }
            group!(0, sdot_l0);
            group!(1, sdot_l1);
            group!(2, sdot_l2);
            group!(3, sdot_l3);
        }
        for g in 4 * q4..s4 {
            let x: [int8x16_t; NP] = core::array::from_fn(|p| unsafe {
                // `read_unaligned`: a piece starts at any byte offset, and
                // `vld1q_dup_s32` is a plain (4-aligned) `*const i32` read in Rust.
                vreinterpretq_s8_s32(vdupq_n_s32(rp[p].add(4 * g).cast::<i32>().read_unaligned()))
            });
            for i in 0..BP {
                let pw = unsafe { wt.add(32 * (i * k4 + g)) };
                let (w0, w1) = unsafe { (vld1q_s8(pw.cast()), vld1q_s8(pw.add(16).cast())) };
                for p in 0..NP {
                    unsafe {
                        a[p][i][0] = sdot(a[p][i][0], x[p], w0);
                        a[p][i][1] = sdot(a[p][i][1], x[p], w1);
                    }
                }
            }
        }
    }
    a
}

/// `SMLAL` accumulation of one pass (baseline NEON): for each tap piece, two groups at a
/// time with each row's 8 bytes loaded once and widened (`SXTL`), then `SMLAL`/`SMLAL2`
/// by element (lane `j`) against tap `j`'s eight `i16` weights of each of the `BP`
/// blocks; an odd last group from its 4 bytes loaded and replicated (`LD1R`), widened.
///
/// # Safety
///
/// As [`acc_sdot`] (without the extension), on [`Packing::Smlal`] pieces (block `i` at
/// `64 * i * k4` bytes from `w`).
#[inline(always)]
unsafe fn acc_smlal<const NP: usize, const BP: usize, R: RowSrc>(
    ps: &Pass<R>,
    mut a: Accs<NP, BP>,
) -> Accs<NP, BP> {
    let (s4, k4) = (ps.s4, ps.k4);
    let q2 = s4 / 2;
    for t in 0..ps.taps {
        let rp: [*const u8; NP] = core::array::from_fn(|p| piece_at(ps, p, t));
        // SAFETY (all below): as in `acc_sdot`.
        let wt = unsafe { ps.w.add(64 * t * s4) };
        macro_rules! tap {
            ($x:ident, $wg:ident, $j:literal) => {
                for i in 0..BP {
                    let wv = unsafe { vld1q_s16($wg.add(64 * i * k4 + 16 * $j).cast()) };
                    for p in 0..NP {
                        a[p][i][0] = vmlal_laneq_s16::<$j>(a[p][i][0], vget_low_s16(wv), $x[p]);
                        a[p][i][1] = vmlal_high_laneq_s16::<$j>(a[p][i][1], wv, $x[p]);
                    }
                }
            };
        }
        for q in 0..q2 {
            let x: [int16x8_t; NP] =
                core::array::from_fn(|p| vmovl_s8(unsafe { vld1_s8(rp[p].add(8 * q).cast()) }));
            let wg = unsafe { wt.add(128 * q) };
            tap!(x, wg, 0);
            tap!(x, wg, 1);
            tap!(x, wg, 2);
            tap!(x, wg, 3);
            tap!(x, wg, 4);
            tap!(x, wg, 5);
            tap!(x, wg, 6);
            tap!(x, wg, 7);
        }
        if s4 % 2 == 1 {
            let g = s4 - 1;
            let x: [int16x8_t; NP] = core::array::from_fn(|p| {
                // `read_unaligned`: as in `acc_sdot`'s tail.
                vmovl_s8(vreinterpret_s8_s32(vdup_n_s32(unsafe {
                    rp[p].add(4 * g).cast::<i32>().read_unaligned()
                })))
            });
            let wg = unsafe { wt.add(64 * g) };
            tap!(x, wg, 0);
            tap!(x, wg, 1);
            tap!(x, wg, 2);
            tap!(x, wg, 3);
        }
    }
    a
}

/// One pass's accumulation on `packing`'s kernel.
///
/// # Safety
///
/// As [`acc_sdot`] (for [`Packing::Sdot`]) or [`acc_smlal`].
#[inline(always)]
unsafe fn acc_pass<const NP: usize, const BP: usize, R: RowSrc>(
    packing: Packing,
    ps: &Pass<R>,
    a: Accs<NP, BP>,
) -> Accs<NP, BP> {
    // SAFETY: the caller's.
    unsafe {
        match packing {
            Packing::Sdot => acc_sdot::<NP, BP, R>(ps, a),
            Packing::Smlal => acc_smlal::<NP, BP, R>(ps, a),
        }
    }
}

/// The output stage of [`gemm_fused`]: offset, clamp bounds (as `i16` and `i8` lanes).
#[derive(Clone, Copy)]
struct Stage {
    off: int16x8_t,
    lo: int8x8_t,
    hi: int8x8_t,
}

/// The [`Stage`] of the output offset `off` and the clamp `[lo, max(lo, hi)]` (all in
/// the int8 range: the callers check).
#[inline]
#[target_feature(enable = "neon")]
fn stage(off: i32, lo: i32, hi: i32) -> Stage {
    Stage {
        off: vdupq_n_s16(off as i16),
        lo: vdup_n_s8(lo as i8),
        hi: vdup_n_s8(hi.max(lo) as i8),
    }
}

/// Four channels requantized (single shift) from `x` (fold already added), with the
/// multiplier `m` and the negative shift `sh = !r1`: [`requant4`] without the offset, in
/// three instructions. The shift is always at least 1 (`sh <= -1`, `r1 >= 0`), so
/// [`requant4`]'s `(h & sh) >> 31` is `h >> 31`, and `h + (h >> 31)` cannot overflow
/// (`h > i32::MIN`, see [`requant_soa`]), so the saturating add is the plain one `SSRA`
/// does (shift right by 31 and accumulate).
#[inline]
#[target_feature(enable = "neon")]
fn requant4_sh(x: int32x4_t, m: int32x4_t, sh: int32x4_t) -> int32x4_t {
    let h = vqrdmulhq_s32(x, m);
    vrshlq_s32(vsraq_n_s32::<31>(h, h), sh)
}

/// Eight channels of one row to bytes: requantized, narrowed to `i16` with saturation,
/// plus the offset with saturation, narrowed to `i8` with saturation, clamped (when not
/// `FULL`). Equal to the portable `clamp(v + off, lo, hi) as i8` because `|v| <= 2^30`
/// (the shift is at least 1), and the offset and bounds are int8 values
/// ([`gemm_fused`] checks): saturating `v` to `i16`, then `v + off` to `i16` and `i8`,
/// changes no value inside `[-128, 127]` and moves the others to the same side of it.
#[inline]
#[target_feature(enable = "neon")]
fn out8<const FULL: bool>(
    a: [int32x4_t; 2],
    (m0, m1): (int32x4_t, int32x4_t),
    (s0, s1): (int32x4_t, int32x4_t),
    st: &Stage,
) -> int8x8_t {
    let v0 = requant4_sh(a[0], m0, s0);
    let v1 = requant4_sh(a[1], m1, s1);
    let h = vqaddq_s16(vqmovn_high_s32(vqmovn_s32(v0), v1), st.off);
    let o = vqmovn_s16(h);
    if FULL {
        o
    } else {
        vmin_s8(vmax_s8(o, st.lo), st.hi)
    }
}

/// One pass of [`gemm_fused`]: blocks `b0..b0 + BP` of `NP` rows, the accumulators
/// started from the fold, the epilogue on them in registers, eight bytes stored per
/// block and row (through a stack copy for a last block of fewer than 8 channels).
///
/// # Safety
///
/// As [`acc_pass`] for the pass; `pre` holds [`PRE8`] pieces for every block of the
/// pass, and each `outs[p]` (`p < NP`) points to `oc` writable bytes.
#[inline(always)]
unsafe fn fused_pass<const NP: usize, const BP: usize, const FULL: bool, R: RowSrc>(
    packing: Packing,
    ps: &Pass<R>,
    (b0, oc): (usize, usize),
    pre: &[[u8; 32]],
    st: &Stage,
    outs: &[*mut u8; NP],
) {
    let ld = |b: usize, piece: usize, h: usize| -> int32x4_t {
        match pre.get(PRE8 * b + piece) {
            // SAFETY: 32 readable bytes; `LD1` has no alignment requirement.
            Some(pc) => unsafe { vld1q_s32(pc.as_ptr().add(16 * h).cast()) },
            None => vdupq_n_s32(0),
        }
    };
    let init: [[int32x4_t; 2]; BP] = core::array::from_fn(|i| [ld(b0 + i, 0, 0), ld(b0 + i, 0, 1)]);
    // SAFETY: the caller's.
    let a = unsafe { acc_pass::<NP, BP, R>(packing, ps, [init; NP]) };
    for i in 0..BP {
        let b = b0 + i;
        let m = (ld(b, 1, 0), ld(b, 1, 1));
        let s = (ld(b, 2, 0), ld(b, 2, 1));
        let at = 8 * b;
        for p in 0..NP {
            let o = out8::<FULL>(a[p][i], m, s, st);
            if at + 8 <= oc {
                // SAFETY: `at + 8 <= oc` bytes of row `p` are writable (the caller's);
                // `ST1` has no alignment requirement.
                unsafe { vst1_s8(outs[p].add(at).cast(), o) };
            } else {
                let mut tmp = [0i8; 8];
                // SAFETY: `tmp` is 8 writable bytes.
                unsafe { vst1_s8(tmp.as_mut_ptr(), o) };
                let n = oc.saturating_sub(at).min(8);
                // SAFETY: `at + n <= oc` (the caller's), `tmp` holds 8 bytes.
                unsafe { core::ptr::copy_nonoverlapping(tmp.as_ptr().cast(), outs[p].add(at), n) };
            }
        }
    }
}

/// All blocks of `NP` rows: two blocks (16 channels, `4 * NP` accumulators) per pass,
/// four for a single row, then the odd last block alone.
///
/// # Safety
///
/// As [`fused_pass`] for every block of the op (`w` from block 0).
#[inline(always)]
unsafe fn fused_rows<const NP: usize, const FULL: bool, R: RowSrc>(
    packing: Packing,
    rows: R,
    (taps, s4, k4): (usize, usize, usize),
    w: &[[u8; 32]],
    oc: usize,
    pre: &[[u8; 32]],
    st: &Stage,
    outs: &[*mut u8; NP],
) {
    let blocks = oc.div_ceil(8);
    let pass = |b: usize| Pass {
        rows,
        taps,
        s4,
        k4,
        w: first_piece(packing, w, b, k4),
    };
    let mut b = 0;
    // SAFETY (all below): the caller's, for blocks `b..b + BP <= blocks`.
    if NP == 1 {
        while b + 4 <= blocks {
            unsafe { fused_pass::<NP, 4, FULL, R>(packing, &pass(b), (b, oc), pre, st, outs) };
            b += 4;
        }
    }
    while b + 2 <= blocks {
        unsafe { fused_pass::<NP, 2, FULL, R>(packing, &pass(b), (b, oc), pre, st, outs) };
        b += 2;
    }
    if b < blocks {
        unsafe { fused_pass::<NP, 1, FULL, R>(packing, &pass(b), (b, oc), pre, st, outs) };
    }
}

/// Whether every slice of `v` holds at least `n` elements (a plain loop with an early
/// exit: the per-call check of [`gemm_fused`]).
#[inline(always)]
fn all_len<T: AsRef<[E]>, E>(v: &[T], n: usize) -> bool {
    for s in v {
        if s.as_ref().len() < n {
            return false;
        }
    }
    true
}

/// Whether the output offset and both clamp bounds of `(off, lo, hi)` are in the int8
/// range (the fused epilogues' domain, [`stage`]).
#[inline(always)]
fn int8_clamp((off, lo, hi): (i32, i32, i32)) -> bool {
    // `v as i8 as i32 == v`: one `CMP ..., SXTB` each (a range test took two).
    off as i8 as i32 == off && lo as i8 as i32 == lo && hi as i8 as i32 == hi
}

/// The checks [`gemm_fused`] and [`gemm_fused_grid`] share: `n` rows and `oc` channels
/// (neither 0), `taps * s4 == k4`, the packed weights of `ceil(oc / 8)` blocks of `k4`
/// groups in `w`, [`PRE8`] pieces per block in `pre`, an int8 offset and clamp
/// ([`int8_clamp`]) and, for [`Packing::Sdot`], the CPU's dot-product extension. Where
/// the rows are read and the outputs written each caller checks itself.
#[inline(always)]
fn fused_fits(
    packing: Packing,
    n: usize,
    (taps, s4, k4): (usize, usize, usize),
    oc: usize,
    w: &[[u8; 32]],
    pre: &[[u8; 32]],
    clamp: (i32, i32, i32),
) -> bool {
    let blocks = oc.div_ceil(8);
    n > 0
        && oc > 0
        && int8_clamp(clamp)
        && taps.checked_mul(s4) == Some(k4)
        && packing.pieces(blocks, k4).is_some_and(|v| v <= w.len())
        && blocks.checked_mul(PRE8).is_some_and(|v| v <= pre.len())
        && (packing != Packing::Sdot || dotprod_available())
}

/// `NP` rows of [`gemm_fused`] with its checks done: the `CPU` feature's kernel.
///
/// # Safety
///
/// The caller ([`gemm_fused`]) has checked the pieces, weights, constants and outputs
/// against the shape `tsk`/`oc` and, for [`Packing::Sdot`], that the CPU has the
/// dot-product extension.
///
/// Never inlined: three of its four instances inlined into [`gemm_fused`] made that
/// function's frame larger and cost AD about 20 instructions per FULLY_CONNECTED call on
/// cortex-a76 (`bench/aarch64_insns/run.sh`).
#[inline(never)]
#[target_feature(enable = "neon")]
unsafe fn fused_group<const NP: usize>(
    packing: Packing,
    rows: &[&[[u8; 4]]],
    tsk: (usize, usize, usize),
    w: &[[u8; 32]],
    oc: usize,
    pre: &[[u8; 32]],
    clamp: (i32, i32, i32),
    outs: &mut [&mut [u8]],
) {
    let (off, lo, hi) = clamp;
    let st = stage(off, lo, hi);
    let op: [*mut u8; NP] = core::array::from_fn(|p| {
        outs.get_mut(p)
            .map_or(core::ptr::null_mut(), |o| o.as_mut_ptr())
    });
    let full = lo == -128 && hi == 127;
    let rows = List { rows, taps: tsk.0 };
    // SAFETY: `gemm_fused` checked the slices (pieces, weights, constants, outputs) and,
    // for `Packing::Sdot`, the CPU feature.
    unsafe {
        match (packing, full) {
            (Packing::Sdot, true) => fused_rows_sdot::<NP, true>(rows, tsk, w, oc, pre, &st, &op),
            (Packing::Sdot, false) => fused_rows_sdot::<NP, false>(rows, tsk, w, oc, pre, &st, &op),
            (Packing::Smlal, true) => {
                fused_rows::<NP, true, _>(Packing::Smlal, rows, tsk, w, oc, pre, &st, &op)
            }
            (Packing::Smlal, false) => {
                fused_rows::<NP, false, _>(Packing::Smlal, rows, tsk, w, oc, pre, &st, &op)
            }
        }
    }
}

/// [`fused_rows`] on [`Packing::Sdot`] in a function compiled for the dot-product
/// extension (so that the kernel's code is generated once per feature set).
///
/// # Safety
///
/// As [`fused_rows`], and the CPU has the dot-product extension.
#[target_feature(enable = "neon,dotprod")]
unsafe fn fused_rows_sdot<const NP: usize, const FULL: bool>(
    rows: List<'_>,
    tsk: (usize, usize, usize),
    w: &[[u8; 32]],
    oc: usize,
    pre: &[[u8; 32]],
    st: &Stage,
    outs: &[*mut u8; NP],
) {
    // SAFETY: the caller's.
    unsafe { fused_rows::<NP, FULL, _>(Packing::Sdot, rows, tsk, w, oc, pre, st, outs) }
}

/// [`gemm_fused`] for the pixels `p0..p0 + n` of a [`PixelGrid`] (pixel `p`'s window
/// read in place from `x`, the output pixels' `oc` bytes consecutive in `out`): one call
/// for a whole op (or a thread's part of it) instead of one per eight pixels, the row
/// pointers of each pass computed from the grid's steps (no piece lists), every length
/// checked once. Returns `false`, writing nothing, where [`gemm_fused`] would (CPU
/// feature, short slices, offset or bounds outside the int8 range), when `taps * s4 !=
/// k4`, or when a window of the grid's last image would end past `x`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_fused_grid(
    packing: Packing,
    x: &[u8],
    grid: &PixelGrid,
    (p0, n): (usize, usize),
    w: &[[u8; 32]],
    (k4, oc): (usize, usize),
    pre: &[[u8; 32]],
    clamp: (i32, i32, i32),
    out: &mut [u8],
) -> bool {
    let g = grid;
    let per_img = g.rows.checked_mul(g.cols).unwrap_or(0);
    // The farthest byte any pixel of the images `p0..p0 + n` reaches: the last image's
    // last row and column (each step is non-negative, so no window of an earlier pixel
    // reaches farther), plus the last piece.
    let reach = || -> Option<usize> {
        let last_img = (p0.checked_add(n)? - 1) / per_img;
        last_img
            .checked_mul(g.img_step)?
            .checked_add((g.rows - 1).checked_mul(g.row_step)?)?
            .checked_add((g.cols - 1).checked_mul(g.col_step)?)?
            .checked_add((g.taps - 1).checked_mul(g.tap_step)?)?
            .checked_add(g.s4.checked_mul(4)?)
    };
    // `n > 0` (in `fused_fits`) and `per_img > 0` before `reach`, which needs them.
    let fits = fused_fits(packing, n, (g.taps, g.s4, k4), oc, w, pre, clamp)
        && per_img > 0
        && g.taps > 0
        && g.s4 > 0
        && reach().is_some_and(|r| r <= x.len())
        && n.checked_mul(oc).is_some_and(|v| v <= out.len());
    if !fits {
        return false;
    }
    let full = clamp.1 == -128 && clamp.2 == 127;
    let args = (x, g, (p0, n), w, (k4, oc), pre, clamp, out);
    // SAFETY: NEON is part of the aarch64 baseline; the lengths were checked above and,
    // for `Packing::Sdot`, the CPU feature.
    unsafe {
        match (packing, full) {
            (Packing::Sdot, true) => grid_sdot::<true>(args),
            (Packing::Sdot, false) => grid_sdot::<false>(args),
            // The constant, not `packing`: no never-run SDOT copy inside the SMLAL path.
            (Packing::Smlal, true) => grid_neon::<true>(Packing::Smlal, args),
            (Packing::Smlal, false) => grid_neon::<false>(Packing::Smlal, args),
        }
    }
    true
}

/// The arguments of [`gemm_fused_grid`] after its checks.
type GridArgs<'a, 'b> = (
    &'a [u8],
    &'a PixelGrid,
    (usize, usize),
    &'a [[u8; 32]],
    (usize, usize),
    &'a [[u8; 32]],
    (i32, i32, i32),
    &'b mut [u8],
);

/// [`grid_all`] compiled for the dot-product extension.
///
/// # Safety
///
/// As [`grid_all`], and the CPU has the dot-product extension.
#[target_feature(enable = "neon,dotprod")]
unsafe fn grid_sdot<const FULL: bool>(args: GridArgs<'_, '_>) {
    // SAFETY: the caller's.
    unsafe { grid_all::<FULL>(Packing::Sdot, args) }
}

/// [`grid_all`] on baseline NEON.
///
/// # Safety
///
/// As [`grid_all`].
#[target_feature(enable = "neon")]
unsafe fn grid_neon<const FULL: bool>(packing: Packing, args: GridArgs<'_, '_>) {
    // SAFETY: the caller's.
    unsafe { grid_all::<FULL>(packing, args) }
}

/// The pixels of [`gemm_fused_grid`] four at a time (the last one to three together):
/// each pass's row pointers stepped along the grid (column, then row, then image).
///
/// # Safety
///
/// [`gemm_fused_grid`]'s checks hold for `args`; for [`Packing::Sdot`] the CPU has the
/// dot-product extension.
#[inline(always)]
unsafe fn grid_all<const FULL: bool>(
    packing: Packing,
    (x, g, (p0, n), w, (k4, oc), pre, (off, lo, hi), out): GridArgs<'_, '_>,
) {
    let st = stage(off, lo, hi);
    let tsk = (g.taps, g.s4, k4);
    let per_img = g.rows * g.cols;
    let (mut b, rem) = (p0 / per_img, p0 % per_img);
    let (mut oy, mut ox) = (rem / g.cols, rem % g.cols);
    let xp = x.as_ptr();
    let op = out.as_mut_ptr();
    let mut done = 0;
    while done < n {
        let m = (n - done).min(4);
        let mut base = [xp; 4];
        let mut outs = [core::ptr::null_mut(); 4];
        for p in 0..m {
            // SAFETY (all below): `gemm_fused_grid` checked that every piece of every
            // window of these images is inside `x` and that `n * oc` bytes of `out` are
            // writable.
            base[p] = unsafe { xp.add(b * g.img_step + oy * g.row_step + ox * g.col_step) };
            outs[p] = unsafe { op.add((done + p) * oc) };
            ox += 1;
            if ox == g.cols {
                ox = 0;
                oy += 1;
                if oy == g.rows {
                    oy = 0;
                    b += 1;
                }
            }
        }
        let rows = Strided {
            base,
            step: g.tap_step,
        };
        unsafe {
            match m {
                1 => fused_rows::<1, FULL, _>(packing, rows, tsk, w, oc, pre, &st, &[outs[0]]),
                2 => fused_rows::<2, FULL, _>(
                    packing,
                    rows,
                    tsk,
                    w,
                    oc,
                    pre,
                    &st,
                    &[outs[0], outs[1]],
                ),
                3 => fused_rows::<3, FULL, _>(
                    packing,
                    rows,
                    tsk,
                    w,
                    oc,
                    pre,
                    &st,
                    &[outs[0], outs[1], outs[2]],
                ),
                _ => fused_rows::<4, FULL, _>(packing, rows, tsk, w, oc, pre, &st, &outs),
            }
        }
        done += m;
    }
}

/// `out[p][c] = clamp(requant(fold[c] + sum_t piece(p, t) . w(c, t)) + off)` for every
/// channel `c < oc` of `n` rows, each given as `taps` pieces of `s4` groups of 4 int8
/// bytes (`segs[p * taps + t]`, read where they are: an indirect GEMM; a contiguous row
/// is one piece of `k4` groups), on the whole op's packed weights `w` ([`Packing`]
/// layout, `ceil(oc / 8)` blocks of `k4 = taps * s4` groups) with the epilogue fused:
/// the accumulators start from the fold and are requantized in registers with the
/// [`pre8`] constants `pre` ([`PRE8`] pieces per block: the same arithmetic as
/// [`requant_soa`]), never stored as `i32`. Rows are taken four at a time (two blocks,
/// 16 accumulators per pass; a single row four blocks). Returns `false`, writing
/// nothing, without the CPU feature, when a slice is shorter than the shapes need, or
/// when the output offset or a clamp bound is outside the int8 range (the caller then
/// runs the unfused kernels).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_fused(
    packing: Packing,
    segs: &[&[[u8; 4]]],
    n: usize,
    (taps, s4): (usize, usize),
    w: &[[u8; 32]],
    (k4, oc): (usize, usize),
    pre: &[[u8; 32]],
    clamp: (i32, i32, i32),
    outs: &mut [&mut [u8]],
) -> bool {
    // The rows and outputs first, then the shared checks: in this order the check costs
    // no more instructions than it did written out (AD on cortex-a76).
    let fits = taps
        .checked_mul(n)
        .and_then(|m| segs.get(..m))
        .is_some_and(|v| all_len(v, s4))
        && outs.get(..n).is_some_and(|v| all_len(v, oc))
        && fused_fits(packing, n, (taps, s4, k4), oc, w, pre, clamp);
    if !fits {
        return false;
    }
    let tsk = (taps, s4, k4);
    let mut p0 = 0;
    while p0 < n {
        let m = (n - p0).min(4);
        let (Some(rows), Some(os)) = (segs.get(p0 * taps..), outs.get_mut(p0..)) else {
            return false;
        };
        // SAFETY: NEON is part of the aarch64 baseline; the slices and the CPU feature
        // were checked above (`fits`), as `fused_group` requires.
        unsafe {
            match m {
                1 => fused_group::<1>(packing, rows, tsk, w, oc, pre, clamp, os),
                2 => fused_group::<2>(packing, rows, tsk, w, oc, pre, clamp, os),
                3 => fused_group::<3>(packing, rows, tsk, w, oc, pre, clamp, os),
                _ => fused_group::<4>(packing, rows, tsk, w, oc, pre, clamp, os),
            }
        }
        p0 += m;
    }
    true
}

/// [`gemm_tile`] with each row given as `taps` pieces of `s4` groups read where they
/// are (`segs[p * taps + t]`, `taps * s4 == k4`), for `nb` (at most 4) blocks from `w`
/// (the chunk's first piece): the unfused twin of [`gemm_fused`] (same accumulation,
/// from zero, stored into `acc[p][8b..8b + 8]`). Returns `false` (computing nothing)
/// without the CPU feature or when a slice is shorter than the shapes need.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_tile_taps<const NP: usize>(
    packing: Packing,
    segs: &[&[[u8; 4]]],
    taps: usize,
    s4: usize,
    w: &[[u8; 32]],
    k4: usize,
    nb: usize,
    acc: &mut [[i32; 32]; NP],
) -> bool {
    let fits = nb <= 4
        && taps.checked_mul(s4) == Some(k4)
        && taps.checked_mul(NP).is_some_and(|n| n <= segs.len())
        && segs.iter().take(taps * NP).all(|s| s.len() >= s4)
        && packing.pieces(nb, k4).is_some_and(|v| v <= w.len());
    if !fits || (packing == Packing::Sdot && !dotprod_available()) {
        return false;
    }
    // SAFETY: NEON is part of the aarch64 baseline.
    let z = unsafe { vdupq_n_s32(0) };
    for b in 0..nb {
        let ps = Pass {
            rows: List { rows: segs, taps },
            taps,
            s4,
            k4,
            w: first_piece(packing, w, b, k4),
        };
        // SAFETY: the slices checked above; the dot-product extension checked for SDOT.
        let a = unsafe {
            match packing {
                Packing::Sdot => taps_sdot::<NP>(&ps, [[[z; 2]; 1]; NP]),
                Packing::Smlal => acc_smlal::<NP, 1, List<'_>>(&ps, [[[z; 2]; 1]; NP]),
            }
        };
        for p in 0..NP {
            // SAFETY: as above.
            unsafe { store_block(&mut acc[p], b, a[p][0][0], a[p][0][1]) };
        }
    }
    true
}

/// [`acc_sdot`] of one block in a function compiled for the dot-product extension.
///
/// # Safety
///
/// As [`acc_sdot`].
#[target_feature(enable = "neon,dotprod")]
unsafe fn taps_sdot<const NP: usize>(ps: &Pass<List<'_>>, a: Accs<NP, 1>) -> Accs<NP, 1> {
    // SAFETY: the caller's.
    unsafe { acc_sdot::<NP, 1, List<'_>>(ps, a) }
}

/// DEPTHWISE_CONV_2D 3x3 (depth multiplier 1) of one output pixel, every channel, with
/// the epilogue fused: `out[ch] = clamp(requant(fold[ch] + sum_t taps[t][ch] *
/// w[t * c + ch]) + off)` for `c = out.len()` channels, the nine int8 tap slices (input
/// pixels, or the zero-point row), the `[1, 3, 3, c]` filter and the [`Soa`] parameters
/// (the same arithmetic as [`dw3x3`] then [`requant_soa`]). Sixteen channels per step
/// (`SMULL`/`SMULL2`, `SADDW`/`SADDW2` onto accumulators started from the fold, then
/// [`out8`]'s stage on them in registers), then eight, then the last `c % 8` through
/// stack copies. Returns `false`, writing nothing, when a slice is shorter than `c`
/// needs or the offset or a clamp bound is outside the int8 range.
pub(crate) fn dw3x3_fused(
    taps: &[&[u8]; 9],
    w: &[u8],
    p: &Soa<'_>,
    clamp: (i32, i32, i32),
    out: &mut [u8],
) -> bool {
    let c = out.len();
    let fits = dw_fits(c, w, p, clamp) && taps.iter().all(|t| t.len() >= c);
    if !fits {
        return false;
    }
    let (off, lo, hi) = clamp;
    // SAFETY: NEON is part of the aarch64 baseline.
    let st = unsafe { stage(off, lo, hi) };
    // SAFETY: NEON is part of the aarch64 baseline; the lengths are checked above.
    unsafe {
        if lo == -128 && hi == 127 {
            dw_fused_neon::<true>(taps, w, p, &st, out);
        } else {
            dw_fused_neon::<false>(taps, w, p, &st, out);
        }
    }
    true
}

/// The checks [`dw3x3_fused`], [`dw3x3_run`] and [`dw3x3_frame`] share for `c`
/// channels: `c > 0`, an int8 offset and clamp ([`int8_clamp`]), the `[1, 3, 3, c]`
/// filter in `w` and `c` values in each [`Soa`] array. Where the taps are read and the
/// outputs written each caller checks itself.
#[inline(always)]
fn dw_fits(c: usize, w: &[u8], p: &Soa<'_>, clamp: (i32, i32, i32)) -> bool {
    c > 0
        && int8_clamp(clamp)
        && c.checked_mul(9).is_some_and(|v| v <= w.len())
        && [p.fold, p.mult, p.r1].iter().all(|a| a.len() / 4 >= c)
}

/// Pointers of one depthwise step: the nine taps and filter rows at the step's first
/// channel, and its fold, multiplier and `r1` (`i32` lanes).
#[derive(Clone, Copy)]
struct DwAt {
    x: [*const i8; 9],
    w: [*const i8; 9],
    k: [*const i32; 3],
}

impl DwAt {
    /// The pointers `j` channels on.
    #[inline(always)]
    fn add(&self, j: usize) -> DwAt {
        DwAt {
            x: self.x.map(|p| p.wrapping_add(j)),
            w: self.w.map(|p| p.wrapping_add(j)),
            k: self.k.map(|p| p.wrapping_add(j)),
        }
    }
    /// The taps `j` bytes on (the next pixel's), the filter and constants unchanged.
    #[inline(always)]
    fn add_x(&self, j: usize) -> DwAt {
        DwAt {
            x: self.x.map(|p| p.wrapping_add(j)),
            ..*self
        }
    }
}

/// Eight channels of [`dw3x3_fused`] at `at`.
///
/// # Safety
///
/// Eight bytes (`i32`s for the constants) readable from each pointer of `at`.
#[inline(always)]
unsafe fn dw_step8<const FULL: bool>(at: &DwAt, st: &Stage) -> int8x8_t {
    // SAFETY (all loads): the caller's; `LD1` has no alignment requirement.
    let (mut s0, mut s1) = unsafe { (vld1q_s32(at.k[0]), vld1q_s32(at.k[0].add(4))) };
    for t in 0..9 {
        let p = unsafe { vmull_s8(vld1_s8(at.x[t]), vld1_s8(at.w[t])) };
        s0 = vaddw_s16(s0, vget_low_s16(p));
        s1 = vaddw_high_s16(s1, p);
    }
    let m = unsafe { (vld1q_s32(at.k[1]), vld1q_s32(at.k[1].add(4))) };
    let sh = unsafe {
        (
            vmvnq_s32(vld1q_s32(at.k[2])),
            vmvnq_s32(vld1q_s32(at.k[2].add(4))),
        )
    };
    out8::<FULL>([s0, s1], m, sh, st)
}

/// Sixteen channels of [`dw3x3_fused`] at `at`.
///
/// # Safety
///
/// Sixteen bytes (`i32`s for the constants) readable from each pointer of `at`.
#[inline(always)]
unsafe fn dw_step16<const FULL: bool>(at: &DwAt, st: &Stage) -> int8x16_t {
    // SAFETY (all loads): the caller's; `LD1` has no alignment requirement.
    let mut s: [int32x4_t; 4] = core::array::from_fn(|i| unsafe { vld1q_s32(at.k[0].add(4 * i)) });
    for t in 0..9 {
        let (xv, wv) = unsafe { (vld1q_s8(at.x[t]), vld1q_s8(at.w[t])) };
        let lo = vmull_s8(vget_low_s8(xv), vget_low_s8(wv));
        let hi = vmull_high_s8(xv, wv);
        s[0] = vaddw_s16(s[0], vget_low_s16(lo));
        s[1] = vaddw_high_s16(s[1], lo);
        s[2] = vaddw_s16(s[2], vget_low_s16(hi));
        s[3] = vaddw_high_s16(s[3], hi);
    }
    let m: [int32x4_t; 4] = core::array::from_fn(|i| unsafe { vld1q_s32(at.k[1].add(4 * i)) });
    let sh: [int32x4_t; 4] =
        core::array::from_fn(|i| vmvnq_s32(unsafe { vld1q_s32(at.k[2].add(4 * i)) }));
    let a = out8::<FULL>([s[0], s[1]], (m[0], m[1]), (sh[0], sh[1]), st);
    let b = out8::<FULL>([s[2], s[3]], (m[2], m[3]), (sh[2], sh[3]), st);
    vcombine_s8(a, b)
}

/// # Safety
///
/// Every tap holds at least `c = out.len()` bytes, `w` at least `9 * c`, and each
/// [`Soa`] array `4 * c` (what [`dw3x3_fused`] checks).
#[target_feature(enable = "neon")]
unsafe fn dw_fused_neon<const FULL: bool>(
    taps: &[&[u8]; 9],
    w: &[u8],
    p: &Soa<'_>,
    st: &Stage,
    out: &mut [u8],
) {
    let c = out.len();
    let at = DwAt {
        x: taps.map(|t| t.as_ptr().cast()),
        w: core::array::from_fn(|t| w.as_ptr().wrapping_add(t * c).cast()),
        k: [p.fold, p.mult, p.r1].map(|a| a.as_ptr().cast()),
    };
    // SAFETY: the caller's.
    unsafe { dw_pixel::<FULL>(&at, c, st, out.as_mut_ptr()) };
}

/// The `c` channels of one pixel at `at` into `op`: 16 per step, then 8, then the last
/// `c % 8` through zero-padded stack copies.
///
/// # Safety
///
/// `c` bytes readable from each tap and filter pointer of `at`, `c` `i32`s from each
/// constant pointer (any alignment), `c` bytes writable at `op`.
#[inline(always)]
unsafe fn dw_pixel<const FULL: bool>(at: &DwAt, c: usize, st: &Stage, op: *mut u8) {
    let mut j = 0;
    while j + 16 <= c {
        // SAFETY: `j + 16 <= c`: inside every slice (the contract).
        unsafe { vst1q_s8(op.add(j).cast(), dw_step16::<FULL>(&at.add(j), st)) };
        j += 16;
    }
    if j + 8 <= c {
        // SAFETY: `j + 8 <= c`, as above.
        unsafe { vst1_s8(op.add(j).cast(), dw_step8::<FULL>(&at.add(j), st)) };
        j += 8;
    }
    if j < c {
        // The last `c - j < 8` channels through zero-padded stack copies.
        let n = c - j;
        let mut xs = [[0u8; 8]; 9];
        let mut ws = [[0u8; 8]; 9];
        let mut ks = [[0i32; 8]; 3];
        for t in 0..9 {
            // SAFETY: `j + n = c` bytes are readable from each tap and filter row.
            unsafe {
                core::ptr::copy_nonoverlapping(at.x[t].add(j).cast::<u8>(), xs[t].as_mut_ptr(), n);
                core::ptr::copy_nonoverlapping(at.w[t].add(j).cast::<u8>(), ws[t].as_mut_ptr(), n);
            }
        }
        for (d, s) in ks.iter_mut().zip(at.k) {
            // SAFETY: `4 * c` bytes are readable from each constant array (copied as
            // bytes: the arrays need not be 4-byte aligned).
            unsafe {
                core::ptr::copy_nonoverlapping(
                    s.add(j).cast::<u8>(),
                    d.as_mut_ptr().cast::<u8>(),
                    4 * n,
                )
            };
        }
        let tail = DwAt {
            x: core::array::from_fn(|t| xs[t].as_ptr().cast()),
            w: core::array::from_fn(|t| ws[t].as_ptr().cast()),
            k: core::array::from_fn(|i| ks[i].as_ptr()),
        };
        let mut o = [0i8; 8];
        // SAFETY: every stack copy holds eight values.
        unsafe {
            vst1_s8(o.as_mut_ptr(), dw_step8::<FULL>(&tail, st));
            core::ptr::copy_nonoverlapping(o.as_ptr().cast(), op.add(j), n);
        }
    }
}

/// A run of `n` neighbouring output pixels of a 3x3 depthwise op (depth multiplier 1)
/// whose windows are all inside the input, with the epilogue fused ([`dw3x3_fused`] on
/// each): `rows[ky]` starts at the first pixel's tap `(ky, 0)`; pixel `i`'s tap `(ky, kx)`
/// is the `c` bytes at `rows[ky][i * step + kx * dx..]` (`step` = stride times `c`, `dx`
/// = dilation times `c`); pixel `i`'s output `out[i * c..(i + 1) * c]`, `c = out.len() /
/// n`. The tap pointers step from pixel to pixel (no window arithmetic per pixel). With
/// eight channels and `step == 8` (stride 1), two neighbouring pixels are one 16-lane
/// step: their taps are adjacent, and the weights and constants are repeated twice.
/// Returns `false`, writing nothing, when a slice is shorter than the shapes need or
/// the offset or a clamp bound is outside the int8 range.
#[allow(clippy::too_many_arguments)]
pub(crate) fn dw3x3_run(
    rows: [&[u8]; 3],
    (step, dx): (usize, usize),
    n: usize,
    w: &[u8],
    p: &Soa<'_>,
    clamp: (i32, i32, i32),
    out: &mut [u8],
) -> bool {
    let c = out.len().checked_div(n).unwrap_or(0);
    // The last byte read in each row: pixel `n - 1`'s tap `kx = 2`, `c` bytes.
    let span = (n.max(1) - 1)
        .checked_mul(step)
        .and_then(|v| v.checked_add(dx.checked_mul(2)?))
        .and_then(|v| v.checked_add(c));
    let fits = dw_fits(c, w, p, clamp)
        && out.len() == n * c
        && span.is_some_and(|e| rows.iter().all(|r| r.len() >= e));
    if !fits {
        return false;
    }
    // SAFETY: the lengths are checked above.
    unsafe { dw_run_clamped(rows, (step, dx), n, c, w, p, clamp, out) };
    true
}

/// [`dw3x3_run`] for every output row of a depthwise op whose windows are all inside
/// `x` (a zero-point frame around the input): `rows` output rows (`per_img` per image)
/// of `n` pixels of `c = out.len() / (rows * n)` channels; output row `r`'s filter row
/// `ky` starts at byte `(r / per_img) * img + (r % per_img) * row_step + ky * tap_row`
/// of `x`. The lengths are checked once for all rows (no per-row call with its checks).
/// Returns `false`, writing nothing, where [`dw3x3_run`] would, or when the last row's
/// taps would end past `x`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn dw3x3_frame(
    x: &[u8],
    (img, row_step, tap_row): (usize, usize, usize),
    (rows, per_img): (usize, usize),
    (step, dx): (usize, usize),
    n: usize,
    w: &[u8],
    p: &Soa<'_>,
    clamp: (i32, i32, i32),
    out: &mut [u8],
) -> bool {
    let c = rows
        .checked_mul(n)
        .and_then(|v| out.len().checked_div(v))
        .unwrap_or(0);
    // The farthest byte read: the last image's last row's third filter row, pixel
    // `n - 1`'s tap `kx = 2` (every step is non-negative).
    let reach = || -> Option<usize> {
        let last = rows.checked_sub(1)?;
        (last / per_img)
            .checked_mul(img)?
            .checked_add((per_img - 1).checked_mul(row_step)?)?
            .checked_add(tap_row.checked_mul(2)?)?
            .checked_add((n.checked_sub(1)?).checked_mul(step)?)?
            .checked_add(dx.checked_mul(2)?)?
            .checked_add(c)
    };
    // `per_img > 0` before `reach`, which divides by it.
    let fits = dw_fits(c, w, p, clamp)
        && per_img > 0
        && rows.checked_mul(n).and_then(|v| v.checked_mul(c)) == Some(out.len())
        && reach().is_some_and(|r| r <= x.len());
    if !fits {
        return false;
    }
    for (r, o) in out.chunks_exact_mut(n * c).enumerate() {
        let at = (r / per_img) * img + (r % per_img) * row_step;
        let rs: [&[u8]; 3] = core::array::from_fn(|ky| x.get(at + ky * tap_row..).unwrap_or(&[]));
        // SAFETY: every row's taps are inside `x` (`reach`, each step non-negative) and
        // its output is `n * c` bytes, as `dw_run_clamped` requires.
        unsafe { dw_run_clamped(rs, (step, dx), n, c, w, p, clamp, o) };
    }
    true
}

/// One run of [`dw3x3_run`] with its checks done: the clamp's [`stage`], then
/// [`dw_run_neon`] without (`-128..=127`) or with the clamp.
///
/// # Safety
///
/// What [`dw3x3_run`] checks, for `c` channels.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn dw_run_clamped(
    rows: [&[u8]; 3],
    steps: (usize, usize),
    n: usize,
    c: usize,
    w: &[u8],
    p: &Soa<'_>,
    (off, lo, hi): (i32, i32, i32),
    out: &mut [u8],
) {
    // SAFETY: NEON is part of the aarch64 baseline; the rest is the caller's.
    unsafe {
        let st = stage(off, lo, hi);
        if lo == -128 && hi == 127 {
            dw_run_neon::<true>(rows, steps, n, c, w, p, &st, out);
        } else {
            dw_run_neon::<false>(rows, steps, n, c, w, p, &st, out);
        }
    }
}

/// # Safety
///
/// What [`dw3x3_run`] checks.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "neon")]
unsafe fn dw_run_neon<const FULL: bool>(
    rows: [&[u8]; 3],
    (step, dx): (usize, usize),
    n: usize,
    c: usize,
    w: &[u8],
    p: &Soa<'_>,
    st: &Stage,
    out: &mut [u8],
) {
    let at = DwAt {
        x: core::array::from_fn(|t| rows[t / 3].as_ptr().wrapping_add((t % 3) * dx).cast()),
        w: core::array::from_fn(|t| w.as_ptr().wrapping_add(t * c).cast()),
        k: [p.fold, p.mult, p.r1].map(|a| a.as_ptr().cast()),
    };
    let op = out.as_mut_ptr();
    let mut i = 0;
    if c == 8 && step == 8 && n >= 2 {
        // Two pixels per 16-lane step: each tap's 16 bytes are both pixels' 8 channels.
        let mut w2 = [[0u8; 16]; 9];
        let mut k2 = [[0i32; 16]; 3];
        for t in 0..9 {
            for h in 0..2 {
                // SAFETY: 8 bytes of filter row `t` are readable (`9 * c <= w.len()`).
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        at.w[t].cast::<u8>(),
                        w2[t][8 * h..].as_mut_ptr(),
                        8,
                    )
                };
            }
        }
        for (d, s) in k2.iter_mut().zip(at.k) {
            for h in 0..2 {
                // SAFETY: 8 `i32`s (32 bytes) are readable from each constant array.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        s.cast::<u8>(),
                        d[8 * h..].as_mut_ptr().cast::<u8>(),
                        32,
                    )
                };
            }
        }
        let pair = DwAt {
            x: at.x,
            w: core::array::from_fn(|t| w2[t].as_ptr().cast()),
            k: core::array::from_fn(|j| k2[j].as_ptr()),
        };
        while i + 2 <= n {
            // SAFETY: pixels `i` and `i + 1` (< n): 16 bytes from pixel `i`'s taps are
            // both pixels' (stride 1, 8 channels), inside the rows by the checks; the
            // output's 16 bytes are inside `out`.
            unsafe {
                let v = dw_step16::<FULL>(&pair.add_x(i * 8), st);
                vst1q_s8(op.add(i * 8).cast(), v);
            }
            i += 2;
        }
    }
    if i == 0 && c.is_multiple_of(16) {
        // Sixteen channels at a time over every pixel of the run, their nine weight
        // vectors and epilogue constants held in registers across the pixels.
        let mut j = 0;
        while j < c {
            // SAFETY: `j + 16 <= c`: the constants and filter rows hold 16 more values,
            // and every pixel's taps and output 16 more bytes (the checked lengths).
            unsafe { dw_chunk16::<FULL>(&at.add(j), (step, c), n, st, op.add(j)) };
            j += 16;
        }
        return;
    }
    while i < n {
        // SAFETY: pixel `i < n`: its taps and output are inside the checked lengths.
        unsafe { dw_pixel::<FULL>(&at.add_x(i * step), c, st, op.add(i * c)) };
        i += 1;
    }
}

/// Sixteen channels (from `at`) of `n` pixels: pixel `i`'s taps `i * step` bytes on,
/// its output at `op + i * c`. [`dw_step16`] with the weights, fold, multipliers and
/// shifts loaded once.
///
/// # Safety
///
/// 16 bytes (`i32`s for the constants) readable from each pointer of `at` (the taps
/// for every pixel `i < n`, `i * step` bytes on), 16 writable at `op + i * c`.
#[inline(always)]
unsafe fn dw_chunk16<const FULL: bool>(
    at: &DwAt,
    (step, c): (usize, usize),
    n: usize,
    st: &Stage,
    op: *mut u8,
) {
    // SAFETY (all loads and stores): the caller's; `LD1`/`ST1` have no alignment
    // requirement.
    let wv: [int8x16_t; 9] = core::array::from_fn(|t| unsafe { vld1q_s8(at.w[t]) });
    let ld4 = |p: *const i32| -> [int32x4_t; 4] {
        core::array::from_fn(|i| unsafe { vld1q_s32(p.add(4 * i)) })
    };
    let (f, m) = (ld4(at.k[0]), ld4(at.k[1]));
    let sh = ld4(at.k[2]).map(|r| vmvnq_s32(r));
    for i in 0..n {
        let mut s = f;
        for t in 0..9 {
            let xv = unsafe { vld1q_s8(at.x[t].add(i * step)) };
            let lo = vmull_s8(vget_low_s8(xv), vget_low_s8(wv[t]));
            let hi = vmull_high_s8(xv, wv[t]);
            s[0] = vaddw_s16(s[0], vget_low_s16(lo));
            s[1] = vaddw_high_s16(s[1], lo);
            s[2] = vaddw_s16(s[2], vget_low_s16(hi));
            s[3] = vaddw_high_s16(s[3], hi);
        }
        let a = out8::<FULL>([s[0], s[1]], (m[0], m[1]), (sh[0], sh[1]), st);
        let b = out8::<FULL>([s[2], s[3]], (m[2], m[3]), (sh[2], sh[3]), st);
        unsafe { vst1q_s8(op.add(i * c).cast(), vcombine_s8(a, b)) };
    }
}

// ---------------------------------------------------------------------------------------
// int8 ADD of two tensors of the same shape
// ---------------------------------------------------------------------------------------

/// TFLite's `MultiplyByQuantizedMultiplierSmallerThanOneExp(x, m, shift)` on four lanes,
/// `m >= 0`, `sh = shift` in `-31..=0`: `SQRDMULH` (gemmlowp's
/// `SaturatingRoundingDoublingHighMul`, see [`requant_soa`]), then `RoundingDivideByPOT`
/// by `-sh` as `SRSHL` of `h - [h < 0]` (the correction masked off when `sh == 0`, where
/// there is nothing to round; `SQADD` cannot saturate, `h > i32::MIN`).
#[inline]
#[target_feature(enable = "neon")]
fn rescale4(x: int32x4_t, m: int32x4_t, sh: int32x4_t) -> int32x4_t {
    let h = vqrdmulhq_s32(x, m);
    let fix = vshrq_n_s32::<31>(vandq_s32(h, sh));
    vrshlq_s32(vqaddq_s32(h, fix), sh)
}

/// int8 ADD of two tensors of the same shape, 16 elements per step in the vector
/// registers (no tables): each input's `(x + offset) << left_shift` (wrapping, as TFLM's
/// `AddFunc`) rescaled by [`rescale4`], the two summed (wrapping), the sum rescaled with
/// the output multiplier, plus the output offset (wrapping), clamped as `clamp_i32`
/// (`min(max(v, lo), hi)`) and narrowed (exact: the bounds are int8 values). Writes
/// `out[..16 * n]` for the `n` whole steps `a`, `b` and `out` all hold and returns
/// `16 * n`; returns 0 (writing nothing) when a multiplier is negative, a shift is not
/// in `-31..=0`, `left_shift` is not in `0..=23` or a clamp bound is not an int8 value.
/// The caller computes the rest on `eval_add`'s element loop, the reference this is
/// tested against.
pub(crate) fn add_same_shape(
    p: &edgeflow_format::graph::AddParams,
    a: &[u8],
    b: &[u8],
    out: &mut [u8],
) -> usize {
    let ok =
        |m: &edgeflow_format::graph::Multiplier| m.multiplier >= 0 && (-31..=0).contains(&m.shift);
    let i8r = -128..=127;
    let fits = ok(&p.input1)
        && ok(&p.input2)
        && ok(&p.output)
        && (0..=23).contains(&p.left_shift)
        && i8r.contains(&p.clamp.min_q)
        && i8r.contains(&p.clamp.max_q);
    if !fits {
        return 0;
    }
    // SAFETY (all): NEON is part of the aarch64 baseline.
    if p.output.shift == 0 || !offsets_i16(p) {
        return unsafe { add_neon(p, a, b, out) };
    }
    unsafe {
        match (p.input1.shift == 0, p.input2.shift == 0) {
            (false, false) => add_neon_neg::<false, false>(p, a, b, out),
            (false, true) => add_neon_neg::<false, true>(p, a, b, out),
            (true, false) => add_neon_neg::<true, false>(p, a, b, out),
            (true, true) => add_neon_neg::<true, true>(p, a, b, out),
        }
    }
}

/// [`rescale4`] of an input of [`add_neon_neg`]: `SQRDMULH` alone for the shift 0
/// (`Z`: rounding by 2^0 is the identity), else [`requant4_sh`] (a shift of at most -1:
/// [`rescale4`]'s masked correction is then the sign).
#[inline]
#[target_feature(enable = "neon")]
fn rescale4_in<const Z: bool>(x: int32x4_t, m: int32x4_t, sh: int32x4_t) -> int32x4_t {
    if Z {
        vqrdmulhq_s32(x, m)
    } else {
        requant4_sh(x, m, sh)
    }
}

/// Whether [`add_neon_neg`]'s 16-bit steps hold for `p`'s offsets: each input offset
/// plus an int8 value fits `i16`, and the output offset is an int8 value.
fn offsets_i16(p: &edgeflow_format::graph::AddParams) -> bool {
    let r = -32640..=32640;
    r.contains(&p.input1_offset)
        && r.contains(&p.input2_offset)
        && (-128..=127).contains(&p.output_offset)
}

/// [`add_neon`] when the output's shift is at most -1 (TFLite's ADD: its multiplier is
/// far below 1) and [`offsets_i16`] holds; `Z1`/`Z2`: input 1's / 2's shift is 0 (else
/// at most -1, as [`add_same_shape`] checked): the same values in fewer instructions.
/// Each input's offset is added while widening to `i16` (`SADDW`, exact by
/// [`offsets_i16`]); each rescale is [`rescale4_in`] or, for the sum, [`requant4_sh`]
/// (three instructions instead of five), so that `|rescaled sum| <= 2^30`, and the
/// output offset and clamp are [`out8`]'s saturating `i16`/`i8` steps, equal to the
/// wrapping `i32` add and clamp for such values and int8 offset and bounds (see
/// [`out8`]).
#[target_feature(enable = "neon")]
fn add_neon_neg<const Z1: bool, const Z2: bool>(
    p: &edgeflow_format::graph::AddParams,
    a: &[u8],
    b: &[u8],
    out: &mut [u8],
) -> usize {
    let rs =
        |m: &edgeflow_format::graph::Multiplier| (vdupq_n_s32(m.multiplier), vdupq_n_s32(m.shift));
    let (r1, r2, ro) = (rs(&p.input1), rs(&p.input2), rs(&p.output));
    let (off1, off2, off) = (
        vdupq_n_s16(p.input1_offset as i16),
        vdupq_n_s16(p.input2_offset as i16),
        vdupq_n_s16(p.output_offset as i16),
    );
    let ls = vdupq_n_s32(p.left_shift);
    let (lo, hi) = (
        vdupq_n_s8(p.clamp.min_q as i8),
        vdupq_n_s8(p.clamp.max_q as i8),
    );
    // Sixteen int8 values as four `i32` vectors, each `(x + off) << left_shift`, rescaled.
    let widen = |x: &[u8; 16], off: int16x8_t| {
        let v = ld16(x);
        let (l, h) = (vaddw_s8(off, vget_low_s8(v)), vaddw_high_s8(off, v));
        [
            vshlq_s32(vmovl_s16(vget_low_s16(l)), ls),
            vshlq_s32(vmovl_high_s16(l), ls),
            vshlq_s32(vmovl_s16(vget_low_s16(h)), ls),
            vshlq_s32(vmovl_high_s16(h), ls),
        ]
    };
    let (ab, _) = a.as_chunks::<16>();
    let (bb, _) = b.as_chunks::<16>();
    let (ob, _) = out.as_chunks_mut::<16>();
    let mut n = 0;
    for ((x, y), o) in ab.iter().zip(bb).zip(ob) {
        let x = widen(x, off1).map(|v| rescale4_in::<Z1>(v, r1.0, r1.1));
        let y = widen(y, off2).map(|v| rescale4_in::<Z2>(v, r2.0, r2.1));
        let v: [int32x4_t; 4] =
            core::array::from_fn(|i| requant4_sh(vaddq_s32(x[i], y[i]), ro.0, ro.1));
        let h0 = vqaddq_s16(vqmovn_high_s32(vqmovn_s32(v[0]), v[1]), off);
        let h1 = vqaddq_s16(vqmovn_high_s32(vqmovn_s32(v[2]), v[3]), off);
        let bytes = vminq_s8(vmaxq_s8(vqmovn_high_s16(vqmovn_s16(h0), h1), lo), hi);
        // SAFETY: `o` is 16 writable bytes; `ST1` has no alignment requirement.
        unsafe { vst1q_s8(o.as_mut_ptr().cast(), bytes) };
        n += 16;
    }
    n
}

#[target_feature(enable = "neon")]
fn add_neon(p: &edgeflow_format::graph::AddParams, a: &[u8], b: &[u8], out: &mut [u8]) -> usize {
    let rs =
        |m: &edgeflow_format::graph::Multiplier| (vdupq_n_s32(m.multiplier), vdupq_n_s32(m.shift));
    let (r1, r2, ro) = (rs(&p.input1), rs(&p.input2), rs(&p.output));
    let (off1, off2, off) = (
        vdupq_n_s32(p.input1_offset),
        vdupq_n_s32(p.input2_offset),
        vdupq_n_s32(p.output_offset),
    );
    let ls = vdupq_n_s32(p.left_shift);
    let (lo, hi) = (vdupq_n_s32(p.clamp.min_q), vdupq_n_s32(p.clamp.max_q));
    // Sixteen int8 values as four `i32` vectors, each `(x + off) << left_shift`, rescaled.
    let pre = |x: &[u8; 16], off: int32x4_t, (m, sh): (int32x4_t, int32x4_t)| {
        let v = ld16(x);
        let (l, h) = (vmovl_s8(vget_low_s8(v)), vmovl_high_s8(v));
        let w = [
            vmovl_s16(vget_low_s16(l)),
            vmovl_high_s16(l),
            vmovl_s16(vget_low_s16(h)),
            vmovl_high_s16(h),
        ];
        w.map(|w| rescale4(vshlq_s32(vaddq_s32(w, off), ls), m, sh))
    };
    let (ab, _) = a.as_chunks::<16>();
    let (bb, _) = b.as_chunks::<16>();
    let (ob, _) = out.as_chunks_mut::<16>();
    let mut n = 0;
    for ((x, y), o) in ab.iter().zip(bb).zip(ob) {
        let (x, y) = (pre(x, off1, r1), pre(y, off2, r2));
        let v: [int32x4_t; 4] = core::array::from_fn(|i| {
            let s = rescale4(vaddq_s32(x[i], y[i]), ro.0, ro.1);
            vminq_s32(vmaxq_s32(vaddq_s32(s, off), lo), hi)
        });
        let h0 = vmovn_high_s32(vmovn_s32(v[0]), v[1]);
        let h1 = vmovn_high_s32(vmovn_s32(v[2]), v[3]);
        let bytes = vmovn_high_s16(vmovn_s16(h0), h1);
        // SAFETY: `o` is 16 writable bytes; `ST1` has no alignment requirement.
        unsafe { vst1q_s8(o.as_mut_ptr().cast(), bytes) };
        n += 16;
    }
    n
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

    /// Random epilogue parameters for `n` channels in `write_soa`'s struct-of-arrays
    /// layout (fold, multiplier, `r1` per channel): right shifts only (the vector
    /// epilogue's domain), folds any 32-bit value or within `±fold_span`.
    fn random_soa(r: &mut Rng, n: usize, fold_span: i64) -> Vec<u8> {
        let mut soa = std::vec![0u8; 12 * n];
        for (j, (m, s)) in r.multipliers(n).into_iter().enumerate() {
            let (m, s) = if s >= 0 { (0, 0) } else { (m, s) };
            let fold = if r.bool() {
                r.u32() as i32
            } else {
                r.range(-fold_span, fold_span) as i32
            };
            let r1 = s.unsigned_abs().saturating_sub(1);
            soa[4 * j..4 * j + 4].copy_from_slice(&fold.to_le_bytes());
            soa[4 * (n + j)..4 * (n + j) + 4].copy_from_slice(&m.to_le_bytes());
            soa[4 * (2 * n + j)..4 * (2 * n + j) + 4].copy_from_slice(&r1.to_le_bytes());
        }
        soa
    }

    /// A random `(output zero point, lo, hi)`: a third of the cases without activation
    /// (-128..=127, the saturating-narrowing path), the others a random `lo <= hi`.
    fn random_clamp(r: &mut Rng) -> (i32, i32, i32) {
        let (a, b) = (r.range(-128, 127) as i32, r.range(-128, 127) as i32);
        let (a, b) = if r.range(0, 2) == 0 {
            (-128, 127)
        } else {
            (a.min(b), a.max(b))
        };
        (r.range(-128, 127) as i32, a, b)
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
        let soa = random_soa(r, n, 5000);
        Some(Epi {
            acc,
            soa,
            n,
            clamp: random_clamp(r),
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
    /// An indirect-GEMM case: the packing, `(taps, s4)`, `oc`, `n` rows of `taps` pieces
    /// (each its own allocation, some longer than `s4` groups), the packed weights of
    /// every block, the per-channel fold, multiplier and `r1`, the clamp.
    #[derive(Debug)]
    struct Ind {
        packing: Packing,
        taps: usize,
        s4: usize,
        oc: usize,
        n: usize,
        pieces: Vec<Vec<[u8; 4]>>,
        w: Vec<[u8; 32]>,
        soa: Vec<u8>,
        clamp: (i32, i32, i32),
    }

    fn packed_weights(r: &mut Rng, packing: Packing, pieces: usize) -> Vec<[u8; 32]> {
        let raw = match packing {
            Packing::Sdot => bytes(r, 32 * pieces),
            // i16 weights in the int8 range, as the packing writes them.
            Packing::Smlal => bytes(r, 16 * pieces)
                .iter()
                .flat_map(|&b| i16::from(b as i8).to_le_bytes())
                .collect(),
        };
        raw.chunks_exact(32)
            .map(|c| <[u8; 32]>::try_from(c).unwrap())
            .collect()
    }

    fn ind_case(r: &mut Rng) -> Option<Ind> {
        let packing = if r.bool() && dotprod_available() {
            Packing::Sdot
        } else {
            Packing::Smlal
        };
        let taps = r.usize(1, 5);
        let s4 = if r.bool() {
            r.usize(1, 6)
        } else {
            r.usize(1, 40)
        };
        let oc = r.usize(1, 70);
        let n = r.usize(1, 8);
        let pieces = (0..n * taps)
            .map(|_| {
                let extra = r.usize(0, 3);
                bytes(r, 4 * (s4 + extra))
                    .chunks_exact(4)
                    .map(|c| [c[0], c[1], c[2], c[3]])
                    .collect()
            })
            .collect();
        let w = packed_weights(r, packing, packing.pieces(oc.div_ceil(8), taps * s4)?);
        let soa = random_soa(r, oc, 50_000);
        let clamp = random_clamp(r);
        Some(Ind {
            packing,
            taps,
            s4,
            oc,
            n,
            pieces,
            w,
            soa,
            clamp,
        })
    }

    /// Row `p` of a case joined into one contiguous row of `taps * s4` groups.
    fn joined(c: &Ind, p: usize) -> Vec<[u8; 4]> {
        (0..c.taps)
            .flat_map(|t| c.pieces[p * c.taps + t][..c.s4].to_vec())
            .collect()
    }

    /// The reference: each row joined, each block summed by the portable twin of the
    /// packed kernel, then the portable epilogue.
    fn ind_portable(c: &Ind) -> Vec<u8> {
        let k4 = c.taps * c.s4;
        let soa = Soa::new(&c.soa, c.oc);
        let mut out = std::vec![0xA5u8; c.n * c.oc];
        for (p, o) in out.chunks_exact_mut(c.oc).enumerate() {
            let row = joined(c, p);
            for b in 0..c.oc.div_ceil(8) {
                let mut acc = [[0i32; 32]; 1];
                let w = &c.w[c.packing.piece(b, 0, k4)..];
                crate::kernels::packed::tile_portable(c.packing, &[&row[..]], w, k4, 1, &mut acc);
                let m = (c.oc - 8 * b).min(8);
                requant_soa_portable(
                    &acc[0][..m],
                    &soa.from(8 * b),
                    c.clamp,
                    &mut o[8 * b..8 * b + m],
                );
            }
        }
        out
    }

    /// The fused kernels' epilogue constants ([`pre8`]) of a case's parameters.
    fn ind_pre(c: &Ind) -> Vec<[u8; 32]> {
        let at = |a: &[u8], j: usize| i32::from_le_bytes(a[4 * j..4 * j + 4].try_into().unwrap());
        let soa = Soa::new(&c.soa, c.oc);
        let ch = |a: &[u8], j: usize| if j < c.oc { at(a, j) } else { 0 };
        (0..c.oc.div_ceil(8))
            .flat_map(|g| {
                pre8(
                    core::array::from_fn(|j| ch(soa.fold, 8 * g + j)),
                    core::array::from_fn(|j| ch(soa.mult, 8 * g + j)),
                    core::array::from_fn(|j| ch(soa.r1, 8 * g + j) as u32),
                )
            })
            .collect()
    }

    fn ind_fused(c: &Ind) -> Vec<u8> {
        let pre = ind_pre(c);
        let segs: Vec<&[[u8; 4]]> = c.pieces.iter().map(|v| &v[..]).collect();
        let mut out = std::vec![0xA5u8; c.n * c.oc];
        let mut outs: Vec<&mut [u8]> = out.chunks_exact_mut(c.oc).collect();
        let kn = (c.taps * c.s4, c.oc);
        assert!(gemm_fused(
            c.packing,
            &segs,
            c.n,
            (c.taps, c.s4),
            &c.w,
            kn,
            &pre,
            c.clamp,
            &mut outs
        ));
        out
    }

    specialised_matches_portable!(
        /// The fused indirect kernels (rows as pieces read in place; `SDOT` where the CPU
        /// has the dot-product extension, `SMLAL` otherwise; the epilogue on the
        /// accumulators in registers, output offset and clamp included) against the
        /// portable packed kernel on the joined rows and the portable epilogue: 1 to 8
        /// rows, odd channel counts (a partial last block), odd group counts.
        packed_gemm_fused_matches_portable {
            seed: 57,
            cases: 1500,
            generate: ind_case,
            portable: ind_portable,
            specialised: ind_fused,
        }
    );

    /// A grid case: an [`Ind`] case's packing, shapes, weights and parameters with its
    /// rows taken from an input `x` as the windows of a [`PixelGrid`] (random steps,
    /// windows overlapping or not, 1 to 3 images), pixels `p0..p0 + ind.n`.
    #[derive(Debug)]
    struct GridCase {
        ind: Ind,
        x: Vec<u8>,
        grid: PixelGrid,
        imgs: usize,
        p0: usize,
    }

    fn grid_case(r: &mut Rng) -> Option<GridCase> {
        let mut ind = ind_case(r)?;
        let (taps, s4) = (ind.taps, ind.s4);
        let span = 4 * s4;
        let (imgs, rows, cols) = (r.usize(1, 3), r.usize(1, 4), r.usize(1, 7));
        let tap_step = r.usize(0, 2 * span);
        let col_step = r.usize(0, span + 8);
        let row_step = r.usize(0, cols * col_step + 16);
        let img_step = r.usize(0, rows * row_step + taps * tap_step + 16);
        let grid = PixelGrid {
            rows,
            cols,
            img_step,
            row_step,
            col_step,
            taps,
            tap_step,
            s4,
        };
        let total = imgs * rows * cols;
        let p0 = r.usize(0, total - 1);
        ind.n = r.usize(1, total - p0);
        let len = (imgs - 1) * img_step
            + (rows - 1) * row_step
            + (cols - 1) * col_step
            + (taps - 1) * tap_step
            + span;
        let x = bytes(r, len);
        ind.pieces = (p0..p0 + ind.n)
            .flat_map(|p| {
                let (b, rem) = (p / (rows * cols), p % (rows * cols));
                let at = b * img_step + rem / cols * row_step + rem % cols * col_step;
                (0..taps)
                    .map(|t| {
                        x[at + t * tap_step..at + t * tap_step + span]
                            .chunks_exact(4)
                            .map(|c| [c[0], c[1], c[2], c[3]])
                            .collect()
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        Some(GridCase {
            ind,
            x,
            grid,
            imgs,
            p0,
        })
    }

    /// [`gemm_fused_grid`] on a case's grid, pixels, weights and constants, with the
    /// input `x` and the clamp given (the case's, or a short input or a bad clamp).
    fn grid_call(c: &GridCase, x: &[u8], clamp: (i32, i32, i32), out: &mut [u8]) -> bool {
        let i = &c.ind;
        let (pre, kn) = (ind_pre(i), (i.taps * i.s4, i.oc));
        gemm_fused_grid(
            i.packing,
            x,
            &c.grid,
            (c.p0, i.n),
            &i.w,
            kn,
            &pre,
            clamp,
            out,
        )
    }

    fn grid_fused(c: &GridCase) -> Vec<u8> {
        let mut out = std::vec![0xA5u8; c.ind.n * c.ind.oc];
        assert!(grid_call(c, &c.x, c.ind.clamp, &mut out));
        out
    }

    specialised_matches_portable!(
        /// The fused kernel on a grid of windows read in place (one call for all the
        /// pixels, row pointers stepped along the grid) against the portable packed
        /// kernel on each window's pieces joined and the portable epilogue.
        packed_gemm_fused_grid_matches_portable {
            seed: 59,
            cases: 1500,
            generate: grid_case,
            portable: |c: &GridCase| ind_portable(&c.ind),
            specialised: grid_fused,
        }
    );

    /// The grid kernel declines (writing nothing) when the last image's last window
    /// would end one byte past the input or the offset or a clamp bound is outside
    /// int8, and runs on the full input.
    #[test]
    fn gemm_fused_grid_declines_a_short_input() {
        let mut r = Rng::new(60);
        let mut checked = 0;
        while checked < 200 {
            let Some(c) = grid_case(&mut r) else {
                continue;
            };
            let per_img = c.grid.rows * c.grid.cols;
            // Only ranges that reach into the last image: then the last window ends at
            // the input's end.
            if (c.p0 + c.ind.n - 1) / per_img != c.imgs - 1 {
                continue;
            }
            let (x, clamp) = (&c.x[..], c.ind.clamp);
            let mut out = std::vec![0xA5u8; c.ind.n * c.ind.oc];
            assert!(grid_call(&c, x, clamp, &mut out));
            out.fill(0xA5);
            let short = &x[..x.len() - 1];
            assert!(!grid_call(&c, short, clamp, &mut out) && out.iter().all(|&v| v == 0xA5));
            // An offset or clamp bound outside int8 (on the full input): declined too.
            let (off, lo, hi) = clamp;
            for bad in [(128, lo, hi), (off, -129, hi), (off, lo, 128)] {
                assert!(!grid_call(&c, x, bad, &mut out) && out.iter().all(|&v| v == 0xA5));
            }
            checked += 1;
        }
    }

    /// The first three rows of a case (at least three) through the unfused kernel, or
    /// joined through its portable twin, on up to four blocks.
    fn ind_taps(c: &Ind, portable: bool) -> Vec<i32> {
        let k4 = c.taps * c.s4;
        let nb = c.oc.div_ceil(8).min(4);
        let mut acc = [[7i32; 32]; 3];
        if portable {
            let rows: Vec<Vec<[u8; 4]>> = (0..3).map(|p| joined(c, p)).collect();
            let r: [&[[u8; 4]]; 3] = [&rows[0], &rows[1], &rows[2]];
            crate::kernels::packed::tile_portable(c.packing, &r, &c.w, k4, nb, &mut acc);
        } else {
            let segs: Vec<&[[u8; 4]]> = c.pieces.iter().map(|v| &v[..]).collect();
            let (t, s4) = (c.taps, c.s4);
            assert!(gemm_tile_taps::<3>(
                c.packing, &segs, t, s4, &c.w, k4, nb, &mut acc
            ));
        }
        acc.iter().flat_map(|a| a[..8 * nb].to_vec()).collect()
    }

    specialised_matches_portable!(
        /// The unfused indirect kernel (the accumulators stored) against the portable
        /// packed kernel on the joined rows.
        packed_gemm_tile_taps_matches_portable {
            seed: 58,
            cases: 1500,
            generate: |r: &mut Rng| ind_case(r).filter(|c| c.n >= 3),
            portable: |c: &Ind| ind_taps(c, true),
            specialised: |c: &Ind| ind_taps(c, false),
        }
    );
    /// A fused depthwise case: nine taps (each `c` bytes or a few more), the filter, the
    /// [`Soa`] parameters of `c` channels and the clamp.
    #[derive(Debug)]
    struct DwF {
        taps: Vec<Vec<u8>>,
        w: Vec<u8>,
        soa: Vec<u8>,
        c: usize,
        clamp: (i32, i32, i32),
    }

    fn dwf_case(r: &mut Rng) -> Option<DwF> {
        let c = if r.bool() {
            r.usize(1, 40)
        } else {
            r.usize(1, 300)
        };
        let taps = (0..9)
            .map(|_| {
                let extra = r.usize(0, 20);
                bytes(r, c + extra)
            })
            .collect();
        // The epilogue parameters as `epi_case` makes them, for `c` channels.
        let e = loop {
            let e = epi_case(r)?;
            if e.n >= 1 {
                break e;
            }
        };
        let mut soa = std::vec![0u8; 12 * c];
        for j in 0..c {
            let k = j % e.n;
            for a in 0..3 {
                let (d, s) = (4 * (a * c + j), 4 * (a * e.n + k));
                soa[d..d + 4].copy_from_slice(&e.soa[s..s + 4]);
            }
        }
        Some(DwF {
            taps,
            w: bytes(r, 9 * c),
            soa,
            c,
            clamp: e.clamp,
        })
    }

    specialised_matches_portable!(
        /// The 3x3 depthwise kernel with the epilogue fused (16, then 8 channels per
        /// step, the rest through stack copies) against the portable sums and epilogue.
        neon_dw3x3_fused_matches_portable {
            seed: 59,
            cases: 2000,
            generate: dwf_case,
            portable: |d: &DwF| {
                let t: [&[u8]; 9] = core::array::from_fn(|i| &d.taps[i][..]);
                let mut acc = std::vec![0i32; d.c];
                dot::dw3x3(&t, &d.w, d.c, 0, &mut acc);
                let mut out = std::vec![0xA5u8; d.c];
                requant_soa_portable(&acc, &Soa::new(&d.soa, d.c), d.clamp, &mut out);
                out
            },
            specialised: |d: &DwF| {
                let t: [&[u8]; 9] = core::array::from_fn(|i| &d.taps[i][..]);
                let mut out = std::vec![0xA5u8; d.c];
                assert!(dw3x3_fused(&t, &d.w, &Soa::new(&d.soa, d.c), d.clamp, &mut out));
                out
            },
        }
    );
    /// A depthwise run case: three input rows, `(stride, dilation)` along the row, `n`
    /// pixels, and a [`DwF`] for the filter, parameters, clamp and `c`.
    #[derive(Debug)]
    struct DwRun {
        rows: Vec<Vec<u8>>,
        sd: (usize, usize),
        n: usize,
        f: DwF,
    }

    fn dwrun_case(r: &mut Rng) -> Option<DwRun> {
        let f = dwf_case(r)?;
        // Eight channels at stride 1 half the time (the two-pixel step).
        let (f, sd) = if r.bool() {
            let f = DwF {
                c: 8,
                w: bytes(r, 72),
                soa: eight(&f),
                ..f
            };
            (f, (1, 1))
        } else {
            (f, (r.usize(1, 3), r.usize(1, 2)))
        };
        let n = r.usize(1, 12);
        let len = ((n - 1) * sd.0 + 2 * sd.1 + 1) * f.c + r.usize(0, 5);
        let rows = (0..3).map(|_| bytes(r, len)).collect();
        Some(DwRun { rows, sd, n, f })
    }

    /// The first eight channels' parameters of a case.
    fn eight(f: &DwF) -> Vec<u8> {
        let c = f.c;
        let mut soa = std::vec![0u8; 96];
        for j in 0..8 {
            let k = j % c;
            for a in 0..3 {
                soa[4 * (a * 8 + j)..4 * (a * 8 + j) + 4]
                    .copy_from_slice(&f.soa[4 * (a * c + k)..4 * (a * c + k) + 4]);
            }
        }
        soa
    }

    specialised_matches_portable!(
        /// A run of depthwise pixels with stepped tap pointers (and two pixels per
        /// 16-lane step for eight channels at stride 1) against the portable sums and
        /// epilogue pixel by pixel.
        neon_dw3x3_run_matches_portable {
            seed: 60,
            cases: 2000,
            generate: dwrun_case,
            portable: |d: &DwRun| {
                let (c, (st, dl)) = (d.f.c, d.sd);
                let mut out = std::vec![0xA5u8; d.n * c];
                for (i, o) in out.chunks_exact_mut(c).enumerate() {
                    let t: [&[u8]; 9] =
                        core::array::from_fn(|t| &d.rows[t / 3][(i * st + (t % 3) * dl) * c..]);
                    let mut acc = std::vec![0i32; c];
                    dot::dw3x3(&t, &d.f.w, c, 0, &mut acc);
                    requant_soa_portable(&acc, &Soa::new(&d.f.soa, c), d.f.clamp, o);
                }
                out
            },
            specialised: |d: &DwRun| {
                let c = d.f.c;
                let rows = [&d.rows[0][..], &d.rows[1][..], &d.rows[2][..]];
                let mut out = std::vec![0xA5u8; d.n * c];
                let steps = (d.sd.0 * c, d.sd.1 * c);
                let p = Soa::new(&d.f.soa, c);
                assert!(dw3x3_run(rows, steps, d.n, &d.f.w, &p, d.f.clamp, &mut out));
                out
            },
        }
    );
    /// [`dw3x3_frame`] on one output row (the three rows laid end to end, the last cut
    /// at its last read byte) gives [`dw3x3_run`]'s bytes; both decline, writing
    /// nothing, an offset or clamp bound outside int8, a filter or a parameter array one
    /// value short, and rows (the frame) one byte short.
    #[test]
    fn neon_dw3x3_run_and_frame_decline_what_they_cannot_read() {
        let mut r = Rng::new(61);
        let mut checked = 0;
        while checked < 300 {
            let Some(d) = dwrun_case(&mut r) else {
                continue;
            };
            let (c, n, len) = (d.f.c, d.n, d.rows[0].len());
            let steps = (d.sd.0 * c, d.sd.1 * c);
            let span = (n - 1) * steps.0 + 2 * steps.1 + c;
            let mut x = d.rows.concat();
            x.truncate(2 * len + span);
            let rows = [&d.rows[0][..], &d.rows[1][..], &d.rows[2][..]];
            let run = |rows: [&[u8]; 3], w: &[u8], p: &Soa<'_>, clamp| {
                let mut o = std::vec![0xA5u8; n * c];
                (dw3x3_run(rows, steps, n, w, p, clamp, &mut o), o)
            };
            let frame = |x: &[u8], w: &[u8], p: &Soa<'_>, clamp| {
                let mut o = std::vec![0xA5u8; n * c];
                let xy = (3 * len, 0, len);
                (dw3x3_frame(x, xy, (1, 1), steps, n, w, p, clamp, &mut o), o)
            };
            let declined = |(ran, o): (bool, Vec<u8>)| !ran && o.iter().all(|&v| v == 0xA5);
            let (w, p, clamp) = (&d.f.w[..], Soa::new(&d.f.soa, c), d.f.clamp);
            let (ran, by_run) = run(rows, w, &p, clamp);
            assert!(ran);
            assert_eq!(frame(&x, w, &p, clamp), (true, by_run));
            let (off, lo, hi) = clamp;
            for bad in [(128, lo, hi), (off, -129, hi), (off, lo, 128)] {
                assert!(declined(run(rows, w, &p, bad)));
                assert!(declined(frame(&x, w, &p, bad)));
            }
            let short_w = &w[..9 * c - 1];
            assert!(declined(run(rows, short_w, &p, clamp)));
            assert!(declined(frame(&x, short_w, &p, clamp)));
            for a in 0..3 {
                // Parameter array `a` (fold, multiplier, `r1`) one byte short of `c` values.
                let mut q = p;
                let Some(s) = [&mut q.fold, &mut q.mult, &mut q.r1].into_iter().nth(a) else {
                    unreachable!()
                };
                *s = &s[..4 * c - 1];
                assert!(declined(run(rows, w, &q, clamp)));
                assert!(declined(frame(&x, w, &q, clamp)));
            }
            for k in 0..3 {
                let mut rs = rows;
                rs[k] = &rs[k][..span - 1];
                assert!(declined(run(rs, w, &p, clamp)));
            }
            assert!(declined(frame(&x[..x.len() - 1], w, &p, clamp)));
            checked += 1;
        }
    }

    /// A same-shape ADD case: parameters anywhere in the kernel's range (multipliers
    /// from 0 to `i32::MAX`, every shift, every left shift, any offsets, clamp bounds
    /// in either order), `n` elements of each input.
    #[derive(Debug)]
    struct AddK {
        p: edgeflow_format::graph::AddParams,
        a: Vec<u8>,
        b: Vec<u8>,
    }

    fn addk_case(r: &mut Rng) -> Option<AddK> {
        use edgeflow_format::graph::{AddParams, Clamp, Multiplier};
        let mult = |r: &mut Rng| Multiplier {
            multiplier: match r.range(0, 4) {
                0 => i32::MAX,
                1 => r.range(0, 3) as i32,
                _ => r.range(1 << 30, i32::MAX as i64) as i32,
            },
            // 0 (an input's identity rescale, `add_neon_neg`'s Z1/Z2 paths, and the
            // output's, the general path) one time in three, else -31..=-1 as TFLite's.
            shift: if r.range(0, 2) == 0 {
                0
            } else {
                r.range(-31, -1) as i32
            },
        };
        let (i1, i2, o) = (mult(r), mult(r), mult(r));
        let off = |r: &mut Rng| r.range(-128, 128) as i32;
        let (x, y) = (r.range(-128, 127) as i32, r.range(-128, 127) as i32);
        let clamp = Clamp {
            min_q: x,
            max_q: if r.bool() { y } else { 127 },
            ..Clamp::NONE
        };
        let p = AddParams {
            left_shift: if r.bool() { 20 } else { r.range(0, 23) as i32 },
            input1_offset: off(r),
            input2_offset: off(r),
            output_offset: off(r),
            input1: i1,
            input2: i2,
            output: o,
            clamp,
        };
        let n = r.usize(0, 100);
        Some(AddK {
            p,
            a: bytes(r, n),
            b: bytes(r, n),
        })
    }

    specialised_matches_portable!(
        /// int8 ADD of same-shape tensors (16 elements per step, every rescale in the
        /// vector registers) against TFLM's element formula, on the prefix it writes.
        neon_add_same_shape_matches_portable {
            seed: 62,
            cases: 3000,
            generate: addk_case,
            portable: |c: &AddK| {
                use crate::fixedpoint::multiply_by_quantized_multiplier_smaller_than_one_exp as mq;
                let p = &c.p;
                let pre = |x: u8, off: i32, m: &edgeflow_format::graph::Multiplier| {
                    let s = off.wrapping_add(x as i8 as i32).wrapping_shl(p.left_shift as u32);
                    mq(s, m.multiplier, m.shift)
                };
                let n = c.a.len() / 16 * 16;
                let out: Vec<u8> = c.a[..n]
                    .iter()
                    .zip(&c.b)
                    .map(|(&x, &y)| {
                        let s = pre(x, p.input1_offset, &p.input1)
                            .wrapping_add(pre(y, p.input2_offset, &p.input2));
                        let v = mq(s, p.output.multiplier, p.output.shift).wrapping_add(p.output_offset);
                        crate::kernels::generic::elem::clamp_i32(v, p.clamp.min_q, p.clamp.max_q) as i8 as u8
                    })
                    .collect();
                (n, out)
            },
            specialised: |c: &AddK| {
                let mut out = std::vec![0xA5u8; c.a.len()];
                let n = add_same_shape(&c.p, &c.a, &c.b, &mut out);
                out.truncate(n);
                (n, out)
            },
        }
    );
}
