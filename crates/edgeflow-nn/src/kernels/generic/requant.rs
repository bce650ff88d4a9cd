//! Requantization to int8 as TFLM does it after an int32 accumulation:
//! `clamp(MultiplyByQuantizedMultiplier(acc, m, s) + output_offset)`, per output channel,
//! in TFLM's two-step form and, where every shift is a right shift, a single-shift form
//! that is equal bit for bit (tested against [`crate::fixedpoint`]).

use edgeflow_format::graph::{Requant, TensorDef};

use super::elem::{le_i32, zero_point};

/// Checks an int8 op's requantization record: present, offsets consistent with the tensor
/// zero points, one multiplier and shift per output channel (or exactly one for all).
pub(crate) fn check_requant(
    rq: Option<&Requant<'_>>,
    channels: usize,
    input: &TensorDef<'_>,
    output: &TensorDef<'_>,
) -> Result<(), &'static str> {
    let rq = rq.ok_or(why!(
        "generic/requant.rs",
        "int8 op without requantization parameters"
    ))?;
    let (m, s) = (rq.multipliers.0.len(), rq.shifts.0.len());
    if m % 4 != 0 || s % 4 != 0 || m != s {
        return Err(why!(
            "generic/requant.rs",
            "requantization multiplier and shift arrays differ or are not i32 arrays"
        ));
    }
    let n = m / 4;
    if n != 1 && n != channels {
        return Err(why!(
            "generic/requant.rs",
            "requantization arrays must have one entry per output channel, or one"
        ));
    }
    if rq
        .shifts
        .0
        .chunks_exact(4)
        .any(|c| !SHIFT_RANGE.contains(&le_i32(c, 0)))
    {
        return Err(why!(
            "generic/requant.rs",
            "requantization shift outside [-31, 30]"
        ));
    }
    if rq.multipliers.0.chunks_exact(4).any(|c| le_i32(c, 0) < 0) {
        return Err(why!(
            "generic/requant.rs",
            "requantization multiplier negative"
        ));
    }
    if rq.input_offset != -zero_point(input)? {
        return Err(why!(
            "generic/requant.rs",
            "requantization input offset is not minus the input zero point"
        ));
    }
    if rq.output_offset != zero_point(output)? {
        return Err(why!(
            "generic/requant.rs",
            "requantization output offset is not the output zero point"
        ));
    }
    Ok(())
}

/// TFLM's `MultiplyByQuantizedMultiplier` (double rounding), for shifts in `[-31, 30]` and
/// non-negative multipliers (the domain `check` admits), restated with fewer operations;
/// equal to [`crate::fixedpoint::multiply_by_quantized_multiplier`] there (tested).
#[inline(always)]
pub(crate) fn requant_mul(x: i32, m: i32, shift: i32) -> i32 {
    let (left, right) = split_shift(shift);
    requant_core(x, m, left, right)
}

/// A TFLite shift as `(left shift, right exponent)`, each in `0..=31`.
#[inline(always)]
pub(crate) fn split_shift(shift: i32) -> (u32, u32) {
    if shift > 0 {
        ((shift as u32).min(31), 0)
    } else {
        (0, (shift.wrapping_neg() as u32).min(31))
    }
}

/// `RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x << left, m), right)` for a
/// non-negative multiplier `m` (what `QuantizeMultiplier` produces; `check` requires it).
///
/// gemmlowp's `SaturatingRoundingDoublingHighMul` computes `trunc((ab + nudge) / 2^31)`
/// with `nudge = 2^30` for `ab >= 0` and `1 - 2^30` otherwise; in both cases that is
/// `floor((ab + 2^30) / 2^31)`, an arithmetic shift (for `ab < 0`,
/// `trunc(n / 2^31) = floor((n + 2^31 - 1) / 2^31)` with `n = ab + 1 - 2^30`). Its one
/// saturating case, `a = b = i32::MIN`, needs a negative multiplier. `RoundingDivideByPOT`
/// is kept as is.
#[inline(always)]
pub(crate) fn requant_core(x: i32, m: i32, left: u32, right: u32) -> i32 {
    let x = x.wrapping_shl(left);
    let h = (((x as i64) * (m as i64) + (1i64 << 30)) >> 31) as i32;
    let mask = 1u32.wrapping_shl(right).wrapping_sub(1) as i32;
    let threshold = (mask >> 1) + i32::from(h < 0);
    h.wrapping_shr(right) + i32::from((h & mask) > threshold)
}

/// The 64-bit rounding constant of [`requant_single`] for a right exponent `right` in
/// `1..=31`: `2^30 + 2^(30 + right)`.
#[inline(always)]
pub(crate) fn single_shift_nudge(right: u32) -> i64 {
    (1i64 << 30) + (1i64 << (30 + right.clamp(1, 31)))
}

/// For a TFLite shift in `-31..=-1` (or any shift with a zero multiplier): the low and
/// high words of [`single_shift_nudge`] and `right - 1`, the parameters of
/// [`requant_single`].
#[inline(always)]
pub(crate) fn single_shift_params(shift: i32) -> (u32, i32, u32) {
    let right = (shift.wrapping_neg() as u32).clamp(1, 31);
    let k = single_shift_nudge(right);
    (k as u32, (k >> 32) as i32, right - 1)
}

/// [`requant_core`] for `left == 0` and `right >= 1` as one rounding and one shift,
/// with `nudge = single_shift_nudge(right)` and `r1 = right - 1`.
///
/// With `P = x * m` (`m >= 0`), `h = floor((P + 2^30) / 2^31)` and
/// `RoundingDivideByPOT(h, r) = floor((h + 2^(r-1) - [h < 0]) / 2^r)` (round half away
/// from zero), so the result is `floor((P + 2^30 + 2^(30+r) - [h < 0] * 2^31) / 2^(31+r))`
/// (nested floors of integer divisions combine). `[h < 0]` may be replaced by `[x < 0]`:
/// they differ only when `-2^30 <= P <= 0`, where `h = 0` and both forms give 0. The
/// 64-bit sum cannot overflow (`|P| < 2^62`), and since `31 + r >= 32` the result is
/// the high word shifted right by `r - 1`.
#[inline(always)]
#[cfg_attr(edgeflow_arm_dsp, allow(dead_code))]
pub(crate) fn requant_single(x: i32, m: i32, nudge: i64, r1: u32) -> i32 {
    let q = (x as i64) * (m as i64) + nudge - (i64::from(x < 0) << 31);
    ((q >> 32) as i32).wrapping_shr(r1)
}

/// Shift range on which TFLM's `MultiplyByQuantizedMultiplier` is defined.
pub(crate) const SHIFT_RANGE: core::ops::RangeInclusive<i32> = -31..=30;

/// The struct-of-arrays epilogue parameters of `n` channels inside a scratch region:
/// `fold[n]`, `m[n]` and `r1[n]` (little-endian `i32` arrays: the value added to the
/// accumulator, the multiplier, and the right exponent minus one of
/// [`requant_single`]). Only for ops where
/// [`OutQ::fast`](crate::kernels::epilogue::OutQ::fast) holds.
#[derive(Clone, Copy)]
pub(crate) struct Soa<'a> {
    pub(crate) fold: &'a [u8],
    pub(crate) mult: &'a [u8],
    pub(crate) r1: &'a [u8],
}

impl<'a> Soa<'a> {
    /// The view of `n` channels' parameters written by
    /// [`OutQ::write_soa`](crate::kernels::epilogue::OutQ::write_soa) into `area`.
    pub(crate) fn new(area: &'a [u8], n: usize) -> Self {
        let (fold, rest) = area.split_at((4 * n).min(area.len()));
        let (mult, rest) = rest.split_at((4 * n).min(rest.len()));
        let r1 = rest.get(..4 * n).unwrap_or(rest);
        Soa { fold, mult, r1 }
    }

    /// The parameters from channel `c0` on.
    pub(crate) fn from(&self, c0: usize) -> Self {
        let at = |s: &'a [u8]| s.get(4 * c0..).unwrap_or(&[]);
        Soa {
            fold: at(self.fold),
            mult: at(self.mult),
            r1: at(self.r1),
        }
    }
}

/// The portable twin of the host SIMD epilogue ([`OutQ::finish_soa`](crate::kernels::epilogue::OutQ::finish_soa)): `out[j] =
/// clamp(requant_single(acc[j] + fold[j], m[j], nudge(r1[j] + 1), r1[j]) + off)` to
/// `[lo, hi]`.
pub(crate) fn requant_soa_portable(
    acc: &[i32],
    p: &Soa<'_>,
    (off, lo, hi): (i32, i32, i32),
    out: &mut [u8],
) {
    for ((((o, &a), f), m), r) in out
        .iter_mut()
        .zip(acc)
        .zip(p.fold.chunks_exact(4))
        .zip(p.mult.chunks_exact(4))
        .zip(p.r1.chunks_exact(4))
    {
        let r1 = le_i32(r, 0) as u32;
        let x = a.wrapping_add(le_i32(f, 0));
        let nudge = single_shift_nudge(r1.wrapping_add(1));
        let v = requant_single(x, le_i32(m, 0), nudge, r1.min(31));
        *o = v.wrapping_add(off).clamp(lo, hi.max(lo)) as i8 as u8;
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::prelude::rust_2021::*;

    use super::*;
    use crate::fixedpoint::multiply_by_quantized_multiplier;
    use crate::kernels::testutil::*;

    #[test]
    fn requant_single_equals_fixedpoint() {
        let mut r = Rng::new(6);
        let specials = [
            i32::MIN,
            i32::MIN + 1,
            -(1 << 30) - 1,
            -(1 << 30),
            -(1 << 30) + 1,
            -3,
            -2,
            -1,
            0,
            1,
            2,
            3,
            1 << 30,
            i32::MAX - 1,
            i32::MAX,
        ];
        let check = |x: i32, m: i32, s: i32| {
            let right = (-s) as u32;
            let k = single_shift_nudge(right);
            let want = multiply_by_quantized_multiplier(x, m, s);
            assert_eq!(requant_single(x, m, k, right - 1), want, "{x} {m} {s}");
            let (klo, khi) = (k as u32, (k >> 32) as i32);
            assert_eq!(
                crate::kernels::arch::arm_dsp::ops::portable::requant_single(
                    x,
                    m,
                    klo,
                    khi,
                    right - 1
                ),
                want,
                "{x} {m} {s}"
            );
        };
        for i in 0..400_000 {
            let x = if i % 7 == 0 {
                specials[r.usize(0, specials.len() - 1)]
            } else {
                r.u32() as i32 >> r.range(0, 31)
            };
            let m = if i % 5 == 0 {
                specials[r.usize(0, specials.len() - 1)].max(0)
            } else {
                (r.u32() >> 1) as i32
            };
            check(x, m, r.range(-31, -1) as i32);
        }
        for &x in &specials {
            for &m in specials.iter().filter(|&&m| m >= 0) {
                for s in -31..=-1 {
                    check(x, m, s);
                }
            }
        }
        // Values whose product lands next to every rounding boundary.
        for s in -31..=-1 {
            let m = 1 << 30;
            for base in [-(1i64 << 31), -(1 << 20), 0, 1 << 20, (1 << 31) - 1] {
                for d in -4..=4 {
                    let x = (base + (d << (-s))).clamp(i32::MIN.into(), i32::MAX.into()) as i32;
                    check(x, m, s);
                    check(x.wrapping_add(1 << (-s - 1)), m, s);
                }
            }
        }
    }

    #[test]
    fn requant_mul_equals_fixedpoint() {
        let mut r = Rng::new(5);
        let specials = [
            i32::MIN,
            i32::MIN + 1,
            -(1 << 30),
            -3,
            -2,
            -1,
            0,
            1,
            2,
            3,
            1 << 30,
            i32::MAX,
        ];
        for i in 0..400_000 {
            let x = if i % 7 == 0 {
                specials[r.usize(0, 11)]
            } else {
                r.u32() as i32 >> r.range(0, 31)
            };
            let m = if i % 5 == 0 {
                specials[r.usize(0, 11)].max(0)
            } else {
                (r.u32() >> 1) as i32
            };
            let s = r.range(-31, 30) as i32;
            assert_eq!(
                requant_mul(x, m, s),
                multiply_by_quantized_multiplier(x, m, s),
                "{x} {m} {s}"
            );
        }
        for &x in &specials {
            for &m in specials.iter().filter(|&&m| m >= 0) {
                for s in SHIFT_RANGE {
                    assert_eq!(
                        requant_mul(x, m, s),
                        multiply_by_quantized_multiplier(x, m, s),
                        "{x} {m} {s}"
                    );
                }
            }
        }
    }
}
