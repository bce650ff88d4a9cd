//! CONV_2D, int8 (per-channel requantization) and f32, matching TFLM's reference
//! `ConvPerChannel` / `Conv` bit for bit (int8) and in accumulation order (f32).
//!
//! Also holds the helpers the other windowed kernels share (window geometry, clamps,
//! requantization, little-endian element access, the portable inner dot kernels).
//!
//! int8 strategy: for every output pixel the receptive field is gathered into a patch in
//! scratch (an im2col of one pixel) with out-of-image taps set to the input zero point, so
//! every patch has the full `filter_h * filter_w * filter_c` length and matches the OHWI
//! filter row byte for byte. Then, with `off = -input_zero_point`,
//! `sum(w * (x + off)) = sum(w * x) + off * sum(w)`: the second term (plus the bias) is
//! precomputed once per call per output channel, and padded taps contribute
//! `w * zp + off * w = 0`. All int32 arithmetic wraps, so the result equals TFLM's
//! accumulator exactly (addition modulo 2^32 is associative). When the window lies
//! inside the image and is one contiguous run of input bytes (1xN filters, in particular
//! 1x1), the input is used in place and no patch is built.

use edgeflow_format::graph::{Clamp, ConvParams, DType, Requant, TensorDef};

use super::arm::{self, widen, Lane};
use super::{TensorIn, TensorOut};

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

/// The `i`-th little-endian `i32` of `b` (0 past the end; callers index within checked sizes).
#[inline(always)]
pub(crate) fn le_i32(b: &[u8], i: usize) -> i32 {
    match b.get(i.wrapping_mul(4)..i.wrapping_mul(4).wrapping_add(4)) {
        Some(&[a0, a1, a2, a3]) => i32::from_le_bytes([a0, a1, a2, a3]),
        _ => 0,
    }
}

/// The `i`-th little-endian `f32` of `b` (0.0 past the end).
#[inline(always)]
pub(crate) fn le_f32(b: &[u8], i: usize) -> f32 {
    f32::from_bits(le_i32(b, i) as u32)
}

/// A 4-byte chunk as `f32`.
#[inline(always)]
pub(crate) fn f32_of(c: &[u8]) -> f32 {
    match *c {
        [a0, a1, a2, a3] => f32::from_le_bytes([a0, a1, a2, a3]),
        _ => 0.0,
    }
}

/// TFLite's `ActivationFunctionWithMinMax` for floats: `min(max(x, lo), hi)` with the
/// C++ `std::max`/`std::min` semantics (a NaN `x` passes through).
#[inline(always)]
pub(crate) fn clamp_f32(x: f32, lo: f32, hi: f32) -> f32 {
    let y = if x < lo { lo } else { x };
    if hi < y {
        hi
    } else {
        y
    }
}

/// Quantized clamp bounds must be an ordered sub-range of int8.
pub(crate) fn check_clamp_q(c: &Clamp) -> Result<(), &'static str> {
    if c.min_q < -128 || c.max_q > 127 || c.min_q > c.max_q {
        return Err("quantized activation range is not an ordered sub-range of int8");
    }
    Ok(())
}

/// Float clamp bounds must be ordered (and not NaN).
pub(crate) fn check_clamp_f(c: &Clamp) -> Result<(), &'static str> {
    if c.min_f
        .partial_cmp(&c.max_f)
        .is_none_or(|o| o == core::cmp::Ordering::Greater)
    {
        return Err("float activation range is not ordered");
    }
    Ok(())
}

/// Zero point of an int8 tensor (validated present by `Model::parse`).
pub(crate) fn zero_point(t: &TensorDef<'_>) -> Result<i32, &'static str> {
    t.quant
        .map(|q| q.zero_point)
        .ok_or("int8 tensor without quantization")
}

/// Checks an int8 op's requantization record: present, offsets consistent with the tensor
/// zero points, one multiplier and shift per output channel (or exactly one for all).
pub(crate) fn check_requant(
    rq: Option<&Requant<'_>>,
    channels: usize,
    input: &TensorDef<'_>,
    output: &TensorDef<'_>,
) -> Result<(), &'static str> {
    let rq = rq.ok_or("int8 op without requantization parameters")?;
    let (m, s) = (rq.multipliers.0.len(), rq.shifts.0.len());
    if m % 4 != 0 || s % 4 != 0 || m != s {
        return Err("requantization multiplier and shift arrays differ or are not i32 arrays");
    }
    let n = m / 4;
    if n != 1 && n != channels {
        return Err("requantization arrays must have one entry per output channel, or one");
    }
    if rq
        .shifts
        .0
        .chunks_exact(4)
        .any(|c| !SHIFT_RANGE.contains(&le_i32(c, 0)))
    {
        return Err("requantization shift outside [-31, 30]");
    }
    if rq.multipliers.0.chunks_exact(4).any(|c| le_i32(c, 0) < 0) {
        return Err("requantization multiplier negative");
    }
    if rq.input_offset != -zero_point(input)? {
        return Err("requantization input offset is not minus the input zero point");
    }
    if rq.output_offset != zero_point(output)? {
        return Err("requantization output offset is not the output zero point");
    }
    Ok(())
}

/// The weights of an int8 convolution must be symmetric (zero point 0).
pub(crate) fn check_symmetric_weights(w: &TensorDef<'_>) -> Result<(), &'static str> {
    if zero_point(w)? != 0 {
        return Err("int8 weights must have zero point 0");
    }
    Ok(())
}

/// The checks shared by CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED once their shapes
/// and types are known (the type is the output's): an optional bias of `channels` elements of the right type, and for int8
/// symmetric weights, a requantization matching the tensors and an int8 clamp; for f32
/// no requantization and an ordered float clamp.
pub(crate) fn check_weighted_op(
    input: &TensorDef<'_>,
    weights: &TensorDef<'_>,
    bias: Option<&TensorDef<'_>>,
    output: &TensorDef<'_>,
    requant: Option<&Requant<'_>>,
    clamp: &Clamp,
    channels: usize,
) -> Result<(), &'static str> {
    let dtype = output.dtype;
    check_bias(bias, dtype, channels)?;
    if dtype == DType::I8 {
        check_symmetric_weights(weights)?;
        check_requant(requant, channels, input, output)?;
        check_clamp_q(clamp)
    } else {
        if requant.is_some() {
            return Err("f32 op with int8 requantization parameters");
        }
        check_clamp_f(clamp)
    }
}

/// Checks an optional bias input: `O` elements of `I32` (int8 ops) or `F32` (f32 ops).
pub(crate) fn check_bias(
    bias: Option<&TensorDef<'_>>,
    dtype: DType,
    channels: usize,
) -> Result<(), &'static str> {
    if let Some(b) = bias {
        let want = if dtype == DType::I8 {
            DType::I32
        } else {
            DType::F32
        };
        if b.dtype != want {
            return Err("bias must be I32 for int8 ops and F32 for f32 ops");
        }
        if b.shape.num_elements() != Some(channels) {
            return Err("bias must have one element per output channel");
        }
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

/// Bytes of one output channel's epilogue record (see [`OutQ::write_records`]).
pub(crate) const REC: usize = 20;

/// Shift range on which TFLM's `MultiplyByQuantizedMultiplier` is defined.
pub(crate) const SHIFT_RANGE: core::ops::RangeInclusive<i32> = -31..=30;

/// Per-output-channel requantization to int8, as TFLM does it after the accumulation:
/// `clamp(MultiplyByQuantizedMultiplier(acc, m, s) + output_offset)`.
#[derive(Clone, Copy)]
pub(crate) struct OutQ<'a> {
    mult: &'a [u8],
    shift: &'a [u8],
    per_channel: bool,
    out_off: i32,
    lo: i32,
    hi: i32,
    /// Every channel has `left == 0` and `right >= 1`, or a zero multiplier (its result
    /// is 0 whatever the shift): [`OutQ::finish_fast_in`] applies.
    pub(crate) fast: bool,
    /// The clamp is the whole int8 range (a saturation).
    pub(crate) full: bool,
}

/// The `(multiplier, shift)` pairs of consecutive output channels: one pair repeated
/// (per-tensor) or one per channel.
pub(crate) enum Channels<'a> {
    One(i32, i32),
    Each(
        core::slice::ChunksExact<'a, u8>,
        core::slice::ChunksExact<'a, u8>,
    ),
}

impl Iterator for Channels<'_> {
    type Item = (i32, i32);
    #[inline(always)]
    fn next(&mut self) -> Option<(i32, i32)> {
        match self {
            Channels::One(m, s) => Some((*m, *s)),
            Channels::Each(m, s) => match (m.next(), s.next()) {
                (Some(&[a0, a1, a2, a3]), Some(&[b0, b1, b2, b3])) => Some((
                    i32::from_le_bytes([a0, a1, a2, a3]),
                    i32::from_le_bytes([b0, b1, b2, b3]),
                )),
                _ => None,
            },
        }
    }
}

impl<'a> OutQ<'a> {
    pub(crate) fn new(rq: &Requant<'a>, clamp: &Clamp) -> Self {
        OutQ {
            mult: rq.multipliers.0,
            shift: rq.shifts.0,
            per_channel: rq.multipliers.0.len() > 4,
            out_off: rq.output_offset,
            lo: clamp.min_q,
            hi: clamp.max_q,
            fast: !rq.shifts.0.is_empty()
                && rq
                    .multipliers
                    .0
                    .chunks_exact(4)
                    .zip(rq.shifts.0.chunks_exact(4))
                    .all(|(m, s)| le_i32(m, 0) == 0 || (-31..=-1).contains(&le_i32(s, 0))),
            full: clamp.min_q == -128 && clamp.max_q == 127,
        }
    }

    /// The `(multiplier, shift)` of output channels `start, start + 1, ...`.
    #[inline(always)]
    pub(crate) fn channels(&self, start: usize) -> Channels<'a> {
        if self.per_channel {
            let from = start.saturating_mul(4);
            Channels::Each(
                self.mult.get(from..).unwrap_or(&[]).chunks_exact(4),
                self.shift.get(from..).unwrap_or(&[]).chunks_exact(4),
            )
        } else {
            Channels::One(le_i32(self.mult, 0), le_i32(self.shift, 0))
        }
    }

    /// Requantizes one accumulator to an int8 byte.
    #[inline(always)]
    pub(crate) fn apply(&self, acc: i32, (m, s): (i32, i32)) -> u8 {
        self.clamp(requant_mul(acc, m, s))
    }

    /// [`OutQ::apply`] when [`OutQ::fast`] holds, on [`requant_single`] (the rounding
    /// constant computed here); the clamp a saturation with `FULL` (only when
    /// [`OutQ::full`] holds).
    #[inline(always)]
    pub(crate) fn apply_fast<const FULL: bool>(&self, acc: i32, (m, s): (i32, i32)) -> u8 {
        let (klo, khi, r1) = single_shift_params(s);
        self.finish_single::<FULL>(acc, m, klo, khi, r1)
    }

    /// `clamp(requant_single(acc, m, k, r1) + output_offset)` with `k`'s low and high
    /// words ([`single_shift_params`]); a saturation with `FULL` (only when
    /// [`OutQ::full`] holds).
    #[inline(always)]
    pub(crate) fn finish_single<const FULL: bool>(
        &self,
        acc: i32,
        m: i32,
        klo: u32,
        khi: i32,
        r1: u32,
    ) -> u8 {
        self.clamp_in::<FULL>(arm::ops::requant_single(acc, m, klo, khi, r1))
    }

    #[inline(always)]
    fn clamp(&self, v: i32) -> u8 {
        self.clamp_in::<false>(v)
    }

    /// `clamp(v + output_offset)`; with `FULL` (only when [`OutQ::full`] holds) a
    /// saturation to int8.
    #[inline(always)]
    fn clamp_in<const FULL: bool>(&self, v: i32) -> u8 {
        let v = v.wrapping_add(self.out_off);
        if FULL {
            return arm::ops::ssat8(v) as u8;
        }
        let v = if v < self.lo { self.lo } else { v };
        let v = if v > self.hi { self.hi } else { v };
        v as i8 as u8
    }

    /// Fills one [`REC`]-byte record per output channel from channel `start` on, in the
    /// last [`REC`] bytes of each `stride`-byte chunk of `recs` (as many as it holds):
    /// `fold(j)` for the `j`-th of them (an `i32` added to the accumulator), the
    /// multiplier, the rounding constant of [`requant_single`] (low and high word), and
    /// the shift split into a left shift, a right exponent and that exponent minus one
    /// (one byte each). Built once per call, so the per-output epilogue
    /// ([`OutQ::finish`], [`OutQ::finish_fast_in`]) streams a single array.
    pub(crate) fn write_records(
        &self,
        recs: &mut [u8],
        stride: usize,
        start: usize,
        mut fold: impl FnMut(usize) -> i32,
    ) {
        if stride < REC {
            return;
        }
        for (j, (chunk, (m, s))) in recs
            .chunks_exact_mut(stride)
            .zip(self.channels(start))
            .enumerate()
        {
            let (left, right) = split_shift(s);
            let f = fold(j).to_le_bytes();
            let m = m.to_le_bytes();
            let k = single_shift_nudge(right).to_le_bytes();
            let rec = [
                f[0],
                f[1],
                f[2],
                f[3],
                m[0],
                m[1],
                m[2],
                m[3],
                k[0],
                k[1],
                k[2],
                k[3],
                k[4],
                k[5],
                k[6],
                k[7],
                left as u8,
                right as u8,
                right.saturating_sub(1) as u8,
                0,
            ];
            if let Some(r) = chunk.get_mut(stride - REC..) {
                r.copy_from_slice(&rec);
            }
        }
    }

    /// Requantizes `acc + fold` with the channel's record.
    #[inline(always)]
    pub(crate) fn finish(&self, acc: i32, rec: &[u8]) -> u8 {
        match *rec {
            [f0, f1, f2, f3, m0, m1, m2, m3, _, _, _, _, _, _, _, _, left, right, ..] => {
                let acc = acc.wrapping_add(i32::from_le_bytes([f0, f1, f2, f3]));
                let m = i32::from_le_bytes([m0, m1, m2, m3]);
                self.clamp(requant_core(acc, m, u32::from(left), u32::from(right)))
            }
            _ => 0,
        }
    }

    /// [`OutQ::finish`] when [`OutQ::fast`] holds (every channel has `left == 0` and
    /// `right >= 1`): one multiply-accumulate with the record's 64-bit rounding constant
    /// and one shift ([`requant_single`]).
    /// The clamp is a saturation with `FULL` (only when [`OutQ::full`] holds).
    #[inline(always)]
    pub(crate) fn finish_fast_in<const FULL: bool>(&self, acc: i32, rec: &[u8]) -> u8 {
        match *rec {
            [f0, f1, f2, f3, m0, m1, m2, m3, k0, k1, k2, k3, k4, k5, k6, k7, _, _, r1, ..] => {
                let x = acc.wrapping_add(i32::from_le_bytes([f0, f1, f2, f3]));
                let m = i32::from_le_bytes([m0, m1, m2, m3]);
                let klo = u32::from_le_bytes([k0, k1, k2, k3]);
                let khi = i32::from_le_bytes([k4, k5, k6, k7]);
                self.clamp_in::<FULL>(arm::ops::requant_single(x, m, klo, khi, u32::from(r1)))
            }
            _ => 0,
        }
    }

    /// `out[j] = finish(acc[j])` with the `stride`-byte records of consecutive channels
    /// (record at the end of each chunk), on the fast path when it applies.
    #[inline(always)]
    pub(crate) fn finish_all(&self, acc: &[i32], recs: &[u8], stride: usize, out: &mut [u8]) {
        match (self.fast, self.full) {
            (true, true) => finish_run::<true, true>(self, acc, recs, stride, out),
            (true, false) => finish_run::<true, false>(self, acc, recs, stride, out),
            _ => finish_run::<false, false>(self, acc, recs, stride, out),
        }
    }
}

/// [`OutQ::finish_all`] on one epilogue: [`OutQ::finish_fast_in`] (`FAST`) or
/// [`OutQ::finish`]. Not inlined, so the loop gets the whole register file.
#[inline(never)]
fn finish_run<const FAST: bool, const FULL: bool>(
    q: &OutQ<'_>,
    acc: &[i32],
    recs: &[u8],
    stride: usize,
    out: &mut [u8],
) {
    if stride < REC {
        return;
    }
    for ((o, &a), r) in out.iter_mut().zip(acc).zip(recs.chunks_exact(stride)) {
        let r = r.get(stride - REC..).unwrap_or(&[]);
        *o = if FAST {
            q.finish_fast_in::<FULL>(a, r)
        } else {
            q.finish(a, r)
        };
    }
}

/// Largest extent the window arithmetic handles; keeps every intermediate in `isize`
/// range on 32-bit targets.
const MAX_EXTENT: u64 = 1 << 30;

/// One spatial axis of a windowed op (conv, depthwise, pool), validated by [`Axis::new`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Axis {
    /// Input extent.
    pub(crate) size: usize,
    /// Filter extent (taps).
    pub(crate) filter: usize,
    pub(crate) stride: usize,
    pub(crate) dilation: usize,
    /// Padding before the first element.
    pub(crate) pad: usize,
    /// Output extent.
    pub(crate) out: usize,
}

impl Axis {
    /// Validates the geometry of one axis.
    ///
    /// Besides positivity and range, requires the output extent to be one TFLite's
    /// SAME/VALID rules (or any explicit padding below a full dilated filter on each side)
    /// can produce: with `eff = (filter - 1) * dilation + 1` and the implied trailing
    /// padding `after = (out - 1) * stride + eff - size - pad`, it needs `pad < eff` and
    /// `-stride < after < eff`. Windows are clipped to the image in any case.
    pub(crate) fn new(
        size: usize,
        filter: usize,
        stride: u16,
        dilation: u16,
        pad: u16,
        out: usize,
    ) -> Result<Self, &'static str> {
        if stride == 0 || dilation == 0 {
            return Err("stride and dilation must be at least 1");
        }
        if size == 0 || filter == 0 || out == 0 {
            return Err("zero-sized spatial dimension");
        }
        let (s, d, p) = (stride as u64, dilation as u64, pad as u64);
        let (n, f, o) = (size as u64, filter as u64, out as u64);
        if n > MAX_EXTENT || f > MAX_EXTENT || o > MAX_EXTENT {
            return Err("spatial dimension too large");
        }
        let eff = (f - 1) * d + 1;
        let span = (o - 1) * s + eff;
        if eff > MAX_EXTENT || span > MAX_EXTENT {
            return Err("filter or output extent too large");
        }
        if p >= eff {
            return Err("padding covers a whole filter window");
        }
        let after = span as i64 - n as i64 - p as i64;
        if after >= eff as i64 || after <= -(s as i64) {
            return Err("output size does not match input, filter, stride, dilation and padding");
        }
        Ok(Axis {
            size,
            filter,
            stride: stride as usize,
            dilation: dilation as usize,
            pad: pad as usize,
            out,
        })
    }

    /// For output position `o`: the input coordinate of the window's first tap (may be
    /// negative) and the half-open range `[start, end)` of taps inside the input
    /// (possibly empty, then `start == end`).
    #[inline(always)]
    pub(crate) fn window(&self, o: usize) -> (isize, usize, usize) {
        let origin = (o * self.stride) as isize - self.pad as isize;
        let size = self.size as isize;
        if self.dilation == 1 {
            let start = if origin < 0 { (-origin) as usize } else { 0 };
            let room = size - origin;
            let end = if room <= 0 {
                0
            } else {
                (room as usize).min(self.filter)
            };
            (origin, start.min(end), end)
        } else {
            let d = self.dilation as isize;
            let start = if origin < 0 {
                ((-origin + d - 1) / d) as usize
            } else {
                0
            };
            let end = if origin >= size {
                0
            } else {
                (((size - 1 - origin) / d + 1) as usize).min(self.filter)
            };
            (origin, start.min(end), end)
        }
    }

    /// Whether the window of output `o` is entirely inside the input.
    #[inline(always)]
    pub(crate) fn full(&self, start: usize, end: usize) -> bool {
        start == 0 && end == self.filter
    }

    /// Input coordinate of tap `k` of a window starting at `origin` (`k` inside the window).
    #[inline(always)]
    pub(crate) fn at(&self, origin: isize, k: usize) -> usize {
        (origin + (k * self.dilation) as isize) as usize
    }
}

// ---------------------------------------------------------------------------------------
// Portable inner kernels: the reference, and the only path without the Arm DSP
// extension. With it (build-script cfg `edgeflow_arm_dsp`), ungrouped int8 CONV_2D and
// FULLY_CONNECTED use the packed 16-bit kernels of `super::arm` instead (`conv_pairs`).
// ---------------------------------------------------------------------------------------

/// Inner dot products of int8 vectors held as bytes, wrapping int32 accumulation.
///
/// The bodies work on 8-byte chunks zipped by value (so LLVM indexes all operands with
/// one counter and unrolls without bounds checks), then a tail of fewer than 8 bytes.
pub(crate) mod dot {
    /// Splits the first `n` bytes of `s` into a multiple-of-8 head and the tail.
    #[inline(always)]
    fn split8(s: &[u8], n: usize) -> (&[u8], &[u8]) {
        s.get(..n).unwrap_or(&[]).split_at(n & !7)
    }

    /// `a + x * w` on int8 bytes, wrapping.
    #[inline(always)]
    fn mac(a: i32, x: i32, w: u8) -> i32 {
        a.wrapping_add(x.wrapping_mul(w as i8 as i32))
    }

    /// `sum(x[i] * w[i])` over the common length.
    #[inline(never)]
    pub(crate) fn dot1(x: &[u8], w: &[u8]) -> i32 {
        let n = x.len().min(w.len());
        let ((xh, xt), (wh, wt)) = (split8(x, n), split8(w, n));
        let mut a = 0i32;
        for (xc, wc) in xh.chunks_exact(8).zip(wh.chunks_exact(8)) {
            for j in 0..8 {
                a = mac(a, xc[j] as i8 as i32, wc[j]);
            }
        }
        for (&xv, &wv) in xt.iter().zip(wt) {
            a = mac(a, xv as i8 as i32, wv);
        }
        a
    }

    /// Two dot products sharing `x` (two output channels): each input byte is loaded
    /// once for both.
    #[inline(never)]
    pub(crate) fn dot2(x: &[u8], w0: &[u8], w1: &[u8]) -> (i32, i32) {
        let n = x.len().min(w0.len()).min(w1.len());
        let ((xh, xt), (ph, pt), (qh, qt)) = (split8(x, n), split8(w0, n), split8(w1, n));
        let (mut a0, mut a1) = (0i32, 0i32);
        for ((xc, pc), qc) in xh
            .chunks_exact(8)
            .zip(ph.chunks_exact(8))
            .zip(qh.chunks_exact(8))
        {
            for j in 0..8 {
                let xv = xc[j] as i8 as i32;
                a0 = mac(a0, xv, pc[j]);
                a1 = mac(a1, xv, qc[j]);
            }
        }
        for ((&xv, &p), &q) in xt.iter().zip(pt).zip(qt) {
            let xv = xv as i8 as i32;
            a0 = mac(a0, xv, p);
            a1 = mac(a1, xv, q);
        }
        (a0, a1)
    }

    /// Two dot products of `x`, little-endian `i16` values (input plus offset, for
    /// FULLY_CONNECTED), with int8 `w0` and `w1`.
    #[inline(never)]
    pub(crate) fn dot2_i16(x: &[u8], w0: &[u8], w1: &[u8]) -> (i32, i32) {
        let n = (x.len() / 2).min(w0.len()).min(w1.len());
        let m = n & !7;
        let (xh, xt) = x.get(..2 * n).unwrap_or(&[]).split_at(2 * m);
        let ((ph, pt), (qh, qt)) = (split8(w0, n), split8(w1, n));
        let (mut a0, mut a1) = (0i32, 0i32);
        for ((xc, pc), qc) in xh
            .chunks_exact(16)
            .zip(ph.chunks_exact(8))
            .zip(qh.chunks_exact(8))
        {
            for j in 0..8 {
                let xv = i16::from_le_bytes([xc[2 * j], xc[2 * j + 1]]) as i32;
                a0 = mac(a0, xv, pc[j]);
                a1 = mac(a1, xv, qc[j]);
            }
        }
        for ((xc, &p), &q) in xt.chunks_exact(2).zip(pt).zip(qt) {
            let xv = i16::from_le_bytes([xc[0], xc[1]]) as i32;
            a0 = mac(a0, xv, p);
            a1 = mac(a1, xv, q);
        }
        (a0, a1)
    }

    /// Like [`dot2_i16`] for one weight row.
    #[inline(never)]
    pub(crate) fn dot1_i16(x: &[u8], w: &[u8]) -> i32 {
        let mut a = 0i32;
        for (xc, &wv) in x.chunks_exact(2).zip(w) {
            a = mac(a, i16::from_le_bytes([xc[0], xc[1]]) as i32, wv);
        }
        a
    }

    /// `sum(w[i])`.
    #[inline(always)]
    pub(crate) fn sum(w: &[u8]) -> i32 {
        w.iter().fold(0i32, |a, &v| a.wrapping_add(v as i8 as i32))
    }
}

// ---------------------------------------------------------------------------------------
// CONV_2D
// ---------------------------------------------------------------------------------------

/// Validated CONV_2D geometry.
#[derive(Clone, Copy, Debug)]
struct Geom {
    batches: usize,
    h: Axis,
    w: Axis,
    /// Input channels.
    in_c: usize,
    /// Output channels.
    out_c: usize,
    /// Filter input depth (`in_c / groups`).
    f_c: usize,
    /// Output channels per group.
    per_group: usize,
    /// Taps per output channel: `filter_h * filter_w * f_c`.
    k: usize,
}

fn geom(
    p: &ConvParams<'_>,
    x: &TensorDef<'_>,
    w: &TensorDef<'_>,
    out: &TensorDef<'_>,
) -> Result<Geom, &'static str> {
    if x.shape.rank != 4 || w.shape.rank != 4 || out.shape.rank != 4 {
        return Err("input, filter and output must be rank 4 (NHWC, OHWI)");
    }
    let batches = x.shape.dim(0);
    if out.shape.dim(0) != batches {
        return Err("input and output batch sizes differ");
    }
    let (in_c, out_c, f_c) = (x.shape.dim(3), w.shape.dim(0), w.shape.dim(3));
    if out.shape.dim(3) != out_c {
        return Err("output depth differs from the number of filters");
    }
    if f_c == 0 || in_c % f_c != 0 {
        return Err("input depth is not a multiple of the filter depth");
    }
    let groups = in_c / f_c;
    if groups == 0 || out_c % groups != 0 {
        return Err("output depth is not a multiple of the number of groups");
    }
    let h = Axis::new(
        x.shape.dim(1),
        w.shape.dim(1),
        p.stride[0],
        p.dilation[0],
        p.pad[0],
        out.shape.dim(1),
    )?;
    let wa = Axis::new(
        x.shape.dim(2),
        w.shape.dim(2),
        p.stride[1],
        p.dilation[1],
        p.pad[1],
        out.shape.dim(2),
    )?;
    let k = h
        .filter
        .checked_mul(wa.filter)
        .and_then(|v| v.checked_mul(f_c))
        .ok_or("filter too large")?;
    Ok(Geom {
        batches,
        h,
        w: wa,
        in_c,
        out_c,
        f_c,
        per_group: out_c / groups,
        k,
    })
}

/// Scratch bytes: int8 needs one [`REC`]-byte epilogue record per output channel, one
/// patch of `k` bytes and, without groups, a pair of q15 columns for the packed kernels
/// ([`pairs_bytes`]; sized on every target, so the host plans for the device); f32
/// needs none.
pub(crate) fn scratch_bytes(
    p: &ConvParams<'_>,
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
) -> usize {
    let (Some(x), Some(w)) = (inputs.first(), inputs.get(1)) else {
        return 0;
    };
    if output.dtype != DType::I8 {
        return 0;
    }
    match geom(p, x, w, output) {
        Ok(g) => g
            .out_c
            .saturating_mul(REC)
            .saturating_add(g.k)
            .saturating_add(pairs_bytes(&g)),
        Err(_) => 0,
    }
}

/// Bytes of the interleaved column pair of the packed path (none with groups, which
/// keeps the portable path).
fn pairs_bytes(g: &Geom) -> usize {
    if g.in_c == g.f_c {
        arm::col_bytes(g.k).saturating_mul(2)
    } else {
        0
    }
}

/// Verifies every precondition of [`eval`].
pub(crate) fn check(
    p: &ConvParams<'_>,
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
    scratch_len: usize,
) -> Result<(), &'static str> {
    if inputs.len() != 2 && inputs.len() != 3 {
        return Err("CONV_2D takes input, filter and an optional bias");
    }
    let (x, w) = (&inputs[0], &inputs[1]);
    if p.depth_multiplier != 1 {
        return Err("CONV_2D depth multiplier must be 1");
    }
    let g = geom(p, x, w, output)?;
    let dt = output.dtype;
    if x.dtype != dt || w.dtype != dt || !matches!(dt, DType::I8 | DType::F32) {
        return Err("supported types: all int8 (bias int32) or all f32");
    }
    check_weighted_op(
        x,
        w,
        inputs.get(2),
        output,
        p.requant.as_ref(),
        &p.clamp,
        g.out_c,
    )?;
    if scratch_len < scratch_bytes(p, inputs, output) {
        return Err("scratch region smaller than the kernel needs");
    }
    Ok(())
}

/// Executes a CONV_2D that passed [`check`] (on the packed kernels where the target has
/// the DSP extension).
pub(crate) fn eval(
    p: &ConvParams<'_>,
    inputs: &[TensorIn<'_, '_>],
    output: TensorOut<'_, '_>,
    scratch: &mut [u8],
) {
    eval_with(p, inputs, output, scratch, cfg!(edgeflow_arm_dsp));
}

/// [`eval`], with the int8 inner kernels chosen by `packed`.
fn eval_with(
    p: &ConvParams<'_>,
    inputs: &[TensorIn<'_, '_>],
    output: TensorOut<'_, '_>,
    scratch: &mut [u8],
    packed: bool,
) {
    let (Some(x), Some(w)) = (inputs.first(), inputs.get(1)) else {
        return;
    };
    let bias = inputs.get(2).map(|b| b.data);
    let Ok(g) = geom(p, x.def, w.def, output.def) else {
        return;
    };
    match output.def.dtype {
        DType::I8 => {
            if let Some(rq) = &p.requant {
                eval_i8(
                    &g,
                    rq,
                    &p.clamp,
                    (x.data, w.data, bias),
                    output.data,
                    scratch,
                    packed,
                );
            }
        }
        DType::F32 => eval_f32(&g, &p.clamp, x.data, w.data, bias, output.data),
        DType::I32 => {}
    }
}

/// int8 CONV_2D; `packed` selects the packed 16-bit kernels ([`super::arm`]) for
/// ungrouped convolutions (on the host only in tests: the instructions are emulated).
fn eval_i8(
    g: &Geom,
    rq: &Requant<'_>,
    clamp: &Clamp,
    (x, w, bias): (&[u8], &[u8], Option<&[u8]>),
    out: &mut [u8],
    scratch: &mut [u8],
    packed: bool,
) {
    let k = g.k;
    if k == 0 || g.per_group == 0 {
        return;
    }
    let q = OutQ::new(rq, clamp);
    let Some(scratch) = scratch.get_mut(..g.out_c * REC + k + pairs_bytes(g)) else {
        return;
    };
    // Records, then the column pair (word aligned when the scratch is: records are 12
    // bytes each), then the patch.
    let (recs, rest) = scratch.split_at_mut(g.out_c * REC);
    let (cols, patch) = rest.split_at_mut(pairs_bytes(g));
    let off = rq.input_offset;
    // Per output channel: bias + off * sum(filter row), and the requantization.
    let mut rows = w.chunks_exact(k);
    q.write_records(recs, REC, 0, |oc| {
        let b = bias.map_or(0, |b| le_i32(b, oc));
        let s = rows.next().map_or(0, dot::sum);
        b.wrapping_add(off.wrapping_mul(s))
    });
    let recs: &[u8] = recs;
    let pad_byte = (-off) as i8 as u8;
    let groups = g.in_c / g.f_c;
    if packed && groups == 1 {
        conv_pairs(g, &q, x, w, recs, patch, cols, pad_byte, out);
        return;
    }
    let (fh, fw, c) = (g.h.filter, g.w.filter, g.in_c);
    let row_bytes = g.w.size * c;
    let img_bytes = g.h.size * row_bytes;
    // A full window is one contiguous run of input bytes when it has a single row whose
    // taps are adjacent and span every channel.
    let direct_ok = groups == 1 && fh == 1 && (fw == 1 || g.w.dilation == 1);
    let mut out_px = out.chunks_exact_mut(g.out_c);
    for b in 0..g.batches {
        let img = b * img_bytes;
        for oy in 0..g.h.out {
            let (iy0, ky0, ky1) = g.h.window(oy);
            for ox in 0..g.w.out {
                let (ix0, kx0, kx1) = g.w.window(ox);
                let Some(o) = out_px.next() else {
                    return;
                };
                let full = g.h.full(ky0, ky1) && g.w.full(kx0, kx1);
                for grp in 0..groups {
                    let pt: &[u8] = if full && direct_ok {
                        let start = img + g.h.at(iy0, 0) * row_bytes + g.w.at(ix0, 0) * c;
                        match x.get(start..start + k) {
                            Some(s) => s,
                            None => return,
                        }
                    } else {
                        let dims = Gather {
                            img,
                            row_bytes,
                            groups,
                            grp,
                            pad_byte,
                        };
                        if !gather(g, &dims, x, patch, (iy0, ky0, ky1), (ix0, kx0, kx1)) {
                            return;
                        }
                        patch
                    };
                    let oc0 = grp * g.per_group;
                    let (Some(wg), Some(og), Some(fg)) = (
                        w.get(oc0 * k..(oc0 + g.per_group) * k),
                        o.get_mut(oc0..oc0 + g.per_group),
                        recs.get(oc0 * REC..(oc0 + g.per_group) * REC),
                    ) else {
                        return;
                    };
                    conv_channels(pt, wg, k, fg, og, &q);
                }
            }
        }
    }
}

/// Ungrouped int8 CONV_2D on the packed 16-bit kernels: output pixels two at a time, each
/// pixel's receptive field (the input in place, or a gathered patch) widened into one
/// lane of an interleaved q15 column pair, then two output channels per kernel call
/// (2x2 blocking: each weight word is unpacked once for two pixels, each column word
/// used for two channels). An odd last pixel takes a single column.
#[allow(clippy::too_many_arguments)]
fn conv_pairs(
    g: &Geom,
    q: &OutQ<'_>,
    x: &[u8],
    w: &[u8],
    recs: &[u8],
    patch: &mut [u8],
    cols: &mut [u8],
    pad_byte: u8,
    out: &mut [u8],
) {
    let k = g.k;
    let (n4, r) = (k / 4, k % 4);
    let pixels = g.batches * g.h.out * g.w.out;
    let mut outs = out.chunks_exact_mut(g.out_c);
    let (mut acc_a, mut acc_b) = ([0i32; OUT_BLOCK], [0i32; OUT_BLOCK]);
    let mut p = 0;
    while p < pixels {
        let Some(oa) = outs.next() else {
            return;
        };
        let pair = p + 1 < pixels;
        let lane = if pair { Lane::A } else { Lane::Single };
        // The groups, then lane A's (or the single column's) tail, then lane B's.
        let (cg, ct) = cols.split_at_mut((n4 * lane.pitch()).min(cols.len()));
        let (ta, tb) = ct.split_at_mut((2 * r).min(ct.len()));
        if !widen_field(g, p, x, patch, pad_byte, (cg, lane, ta)) {
            return;
        }
        if !pair {
            for ((wb, rb), ob) in w
                .chunks(OUT_BLOCK * k)
                .zip(recs.chunks(OUT_BLOCK * REC))
                .zip(oa.chunks_mut(OUT_BLOCK))
            {
                let acc = &mut acc_a[..ob.len()];
                arm::block_1(cols, wb, k, acc);
                finish_block(acc, rb, ob, q);
            }
            return;
        }
        let Some(ob) = outs.next() else {
            return;
        };
        if !widen_field(g, p + 1, x, patch, pad_byte, (cg, Lane::B, tb)) {
            return;
        }
        for (((wb, rb), oa), ob) in w
            .chunks(OUT_BLOCK * k)
            .zip(recs.chunks(OUT_BLOCK * REC))
            .zip(oa.chunks_mut(OUT_BLOCK))
            .zip(ob.chunks_mut(OUT_BLOCK))
        {
            let (acc_a, acc_b) = (&mut acc_a[..oa.len()], &mut acc_b[..oa.len()]);
            arm::block_2(cols, wb, k, acc_a, acc_b);
            finish_block(acc_a, rb, oa, q);
            finish_block(acc_b, rb, ob, q);
        }
        p += 2;
    }
}

/// Widens output pixel `p`'s receptive field (ungrouped, `k` values in OHWI tap order,
/// out-of-image taps set to the input zero point `pad_byte`) into `lane` of the column
/// groups `cg` and the tail `t`: from the input in place when the window is inside the
/// image and one contiguous run (1xN filters); row by row from the input when the
/// channel count is a multiple of 4 (every run then fills whole groups); otherwise via
/// a gathered int8 `patch`. `false` only for ranges out of bounds (excluded by `check`).
fn widen_field(
    g: &Geom,
    p: usize,
    x: &[u8],
    patch: &mut [u8],
    pad_byte: u8,
    (cg, lane, t): (&mut [u8], Lane, &mut [u8]),
) -> bool {
    let per_img = g.h.out * g.w.out;
    let (b, rem) = (p / per_img, p % per_img);
    let (oy, ox) = (rem / g.w.out, rem % g.w.out);
    let (iy0, ky0, ky1) = g.h.window(oy);
    let (ix0, kx0, kx1) = g.w.window(ox);
    let c = g.in_c;
    let row_bytes = g.w.size * c;
    let img = b * g.h.size * row_bytes;
    let direct_ok = g.h.filter == 1 && (g.w.filter == 1 || g.w.dilation == 1);
    let full = g.h.full(ky0, ky1) && g.w.full(kx0, kx1);
    if direct_ok && full {
        let start = img + g.h.at(iy0, 0) * row_bytes + g.w.at(ix0, 0) * c;
        return match x.get(start..start + g.k) {
            Some(s) => {
                widen(s, 0, cg, lane, t);
                true
            }
            None => false,
        };
    }
    if c % 4 == 0 {
        let pad = i16::from(pad_byte as i8);
        let tap = c / 4 * lane.pitch();
        for (ky, rg) in cg.chunks_mut(g.w.filter * tap).take(g.h.filter).enumerate() {
            if ky < ky0 || ky >= ky1 {
                arm::fill(rg, lane, pad);
                continue;
            }
            let row = img + g.h.at(iy0, ky) * row_bytes;
            if g.w.dilation == 1 {
                let (pre, rest) = rg.split_at_mut((kx0 * tap).min(rg.len()));
                let (mid, post) = rest.split_at_mut(((kx1 - kx0) * tap).min(rest.len()));
                arm::fill(pre, lane, pad);
                arm::fill(post, lane, pad);
                if kx1 > kx0 {
                    let start = row + g.w.at(ix0, kx0) * c;
                    match x.get(start..start + (kx1 - kx0) * c) {
                        Some(s) => widen(s, 0, mid, lane, &mut []),
                        None => return false,
                    }
                }
            } else {
                for (kx, tg) in rg.chunks_mut(tap).enumerate() {
                    if kx < kx0 || kx >= kx1 {
                        arm::fill(tg, lane, pad);
                    } else {
                        let start = row + g.w.at(ix0, kx) * c;
                        match x.get(start..start + c) {
                            Some(s) => widen(s, 0, tg, lane, &mut []),
                            None => return false,
                        }
                    }
                }
            }
        }
        return true;
    }
    let dims = Gather {
        img,
        row_bytes,
        groups: 1,
        grp: 0,
        pad_byte,
    };
    if !gather(g, &dims, x, patch, (iy0, ky0, ky1), (ix0, kx0, kx1)) {
        return false;
    }
    widen(patch, 0, cg, lane, t);
    true
}

/// `out[j] = finish(acc[j])` with the [`REC`]-byte records of consecutive channels.
#[inline(never)]
fn finish_block(acc: &[i32], recs: &[u8], out: &mut [u8], q: &OutQ<'_>) {
    q.finish_all(acc, recs, REC, out);
}

/// Output channels accumulated per block before requantizing them (stack accumulators).
const OUT_BLOCK: usize = 32;

/// Computes `out[j] = requant(fold[j] + dot(patch, w_j))` for consecutive output channels
/// (`recs` holds their epilogue records): per block of channels, first the dot products
/// (two channels per pass over the patch) into stack accumulators, then the
/// requantization in a separate tight loop (keeps register pressure low in both).
#[inline(always)]
fn conv_channels(patch: &[u8], w: &[u8], k: usize, recs: &[u8], out: &mut [u8], q: &OutQ<'_>) {
    let mut acc = [0i32; OUT_BLOCK];
    for ((wb, rb), ob) in w
        .chunks(OUT_BLOCK * k)
        .zip(recs.chunks(OUT_BLOCK * REC))
        .zip(out.chunks_mut(OUT_BLOCK))
    {
        let acc = &mut acc[..ob.len()];
        let mut ap = acc.chunks_exact_mut(2);
        let mut wp = wb.chunks_exact(2 * k);
        for (a, wpair) in (&mut ap).zip(&mut wp) {
            let (w0, w1) = wpair.split_at(k);
            let (s0, s1) = dot::dot2(patch, w0, w1);
            if let [a0, a1] = a {
                *a0 = s0;
                *a1 = s1;
            }
        }
        if let [a0] = ap.into_remainder() {
            *a0 = dot::dot1(patch, wp.remainder());
        }
        q.finish_all(acc, rb, REC, ob);
    }
}

/// Where one group's receptive field lives in the input.
struct Gather {
    /// Byte offset of the batch image.
    img: usize,
    /// Bytes per input row.
    row_bytes: usize,
    groups: usize,
    grp: usize,
    /// Input zero point (taps outside the image).
    pad_byte: u8,
}

/// Builds the patch of one output pixel (and group): `filter_h * filter_w * f_c` bytes in
/// OHWI tap order, out-of-image taps set to the input zero point. Returns `false` only
/// if a range is out of bounds (excluded by `check`).
fn gather(
    g: &Geom,
    d: &Gather,
    x: &[u8],
    patch: &mut [u8],
    (iy0, ky0, ky1): (isize, usize, usize),
    (ix0, kx0, kx1): (isize, usize, usize),
) -> bool {
    let (fw, fc, c) = (g.w.filter, g.f_c, g.in_c);
    let prow_len = fw * fc;
    let contiguous = d.groups == 1 && g.w.dilation == 1;
    for (ky, prow) in patch
        .chunks_exact_mut(prow_len)
        .take(g.h.filter)
        .enumerate()
    {
        if ky < ky0 || ky >= ky1 {
            prow.fill(d.pad_byte);
            continue;
        }
        let row = d.img + g.h.at(iy0, ky) * d.row_bytes;
        if contiguous {
            // f_c == c: the valid taps of this row are adjacent in the input.
            let (pre, rest) = prow.split_at_mut(kx0 * fc);
            let (mid, post) = rest.split_at_mut((kx1 - kx0) * fc);
            pre.fill(d.pad_byte);
            post.fill(d.pad_byte);
            if kx1 > kx0 {
                let start = row + g.w.at(ix0, kx0) * c;
                match x.get(start..start + mid.len()) {
                    Some(s) => mid.copy_from_slice(s),
                    None => return false,
                }
            }
        } else {
            for (kx, tap) in prow.chunks_exact_mut(fc).enumerate() {
                if kx < kx0 || kx >= kx1 {
                    tap.fill(d.pad_byte);
                } else {
                    let start = row + g.w.at(ix0, kx) * c + d.grp * fc;
                    match x.get(start..start + fc) {
                        Some(s) => tap.copy_from_slice(s),
                        None => return false,
                    }
                }
            }
        }
    }
    true
}

fn eval_f32(g: &Geom, clamp: &Clamp, x: &[u8], w: &[u8], bias: Option<&[u8]>, out: &mut [u8]) {
    let (fw, fc, c) = (g.w.filter, g.f_c, g.in_c);
    let row_len = g.w.size * c;
    let img_len = g.h.size * row_len;
    let mut outs = out.chunks_exact_mut(4);
    for b in 0..g.batches {
        for oy in 0..g.h.out {
            let (iy0, ky0, ky1) = g.h.window(oy);
            for ox in 0..g.w.out {
                let (ix0, kx0, kx1) = g.w.window(ox);
                for oc in 0..g.out_c {
                    let grp = oc / g.per_group;
                    let Some(wf) = w.get(oc * g.k * 4..(oc + 1) * g.k * 4) else {
                        return;
                    };
                    let mut total = 0.0f32;
                    for ky in ky0..ky1 {
                        let row = b * img_len + g.h.at(iy0, ky) * row_len;
                        for kx in kx0..kx1 {
                            let xs = (row + g.w.at(ix0, kx) * c + grp * fc) * 4;
                            let ws = (ky * fw + kx) * fc * 4;
                            let (Some(xs), Some(ws)) =
                                (x.get(xs..xs + fc * 4), wf.get(ws..ws + fc * 4))
                            else {
                                return;
                            };
                            for (xv, wv) in xs.chunks_exact(4).zip(ws.chunks_exact(4)) {
                                total += f32_of(xv) * f32_of(wv);
                            }
                        }
                    }
                    let bv = bias.map_or(0.0, |bb| le_f32(bb, oc));
                    let Some(o) = outs.next() else {
                        return;
                    };
                    o.copy_from_slice(
                        &clamp_f32(total + bv, clamp.min_f, clamp.max_f).to_le_bytes(),
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Test support shared by the kernel modules
// ---------------------------------------------------------------------------------------

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::needless_range_loop,
    clippy::too_many_arguments
)]
pub(crate) mod testutil {
    extern crate std;
    use std::prelude::rust_2021::*;
    use std::vec;

    use edgeflow_format::graph::{Bytes, Clamp, DType, Location, Quant, Requant, Shape, TensorDef};

    use crate::kernels::{TensorIn, TensorOut};

    /// A tiny seeded xorshift64* generator.
    pub(crate) struct Rng(u64);

    impl Rng {
        pub(crate) fn new(seed: u64) -> Self {
            Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        }
        pub(crate) fn next_u64(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        pub(crate) fn u32(&mut self) -> u32 {
            (self.next_u64() >> 32) as u32
        }
        /// Uniform in `lo..=hi`.
        pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
            lo + (self.next_u64() % ((hi - lo + 1) as u64)) as i64
        }
        pub(crate) fn usize(&mut self, lo: usize, hi: usize) -> usize {
            self.range(lo as i64, hi as i64) as usize
        }
        pub(crate) fn bool(&mut self) -> bool {
            self.next_u64() & 1 == 1
        }
        pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.u32() as u8).collect()
        }
        /// f32 in [-1, 1).
        pub(crate) fn unit(&mut self) -> f32 {
            (self.u32() >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        }
        pub(crate) fn f32_bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).flat_map(|_| self.unit().to_le_bytes()).collect()
        }
        /// A requantization multiplier like QuantizeMultiplier produces (or, rarely, any i32).
        /// Per-channel multipliers for `n` channels: half of the time all in the domain
        /// of the single-shift epilogue (right shifts only, some zero multipliers with
        /// shift 0), otherwise [`Rng::multiplier`]s.
        pub(crate) fn multipliers(&mut self, n: usize) -> Vec<(i32, i32)> {
            let fast = self.bool();
            (0..n)
                .map(|_| {
                    let (m, s) = self.multiplier();
                    if !fast {
                        (m, s)
                    } else if self.range(0, 10) == 0 {
                        (0, 0)
                    } else {
                        (m, s.min(-1))
                    }
                })
                .collect()
        }

        pub(crate) fn multiplier(&mut self) -> (i32, i32) {
            if self.range(0, 20) == 0 {
                return ((self.u32() >> 1) as i32, self.range(-31, 30) as i32);
            }
            let m = self.range(1 << 30, (1i64 << 31) - 1) as i32;
            (m, self.range(-20, 3) as i32)
        }
    }

    pub(crate) fn tensor(dtype: DType, dims: &[u32], scale: f32, zp: i32) -> TensorDef<'static> {
        TensorDef {
            id: 0,
            dtype,
            shape: Shape::new(dims).expect("rank"),
            quant: if dtype == DType::I8 {
                Some(Quant {
                    scale,
                    zero_point: zp,
                    per_channel: None,
                })
            } else {
                None
            },
            location: Location::Arena { offset: 0 },
        }
    }

    pub(crate) fn i32_bytes(v: &[i32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// A u16 parameter value for mutation tests: mostly small, sometimes extreme.
    pub(crate) fn fuzz_u16(r: &mut Rng) -> u16 {
        match r.range(0, 5) {
            0 => 0,
            1 => 65535,
            2 => r.u32() as u16,
            _ => r.range(0, 4) as u16,
        }
    }

    /// Nudges one dimension of a shape by -2..=+2 (kept >= 1).
    pub(crate) fn fuzz_dims(r: &mut Rng, t: &mut TensorDef<'_>) {
        let rank = t.shape.rank as usize;
        if rank == 0 {
            return;
        }
        let d = r.usize(0, rank - 1);
        let v = t.shape.dims[d] as i64 + r.range(-2, 2);
        t.shape.dims[d] = v.max(1) as u32;
    }

    /// Random bytes for every tensor, sized by its (possibly mutated) description.
    pub(crate) fn fuzz_data(r: &mut Rng, defs: &[TensorDef<'_>]) -> Vec<Vec<u8>> {
        defs.iter()
            .map(|d| r.bytes(d.shape.num_elements().unwrap() * d.dtype.size()))
            .collect()
    }

    /// A random requantization record (lengths and offsets not necessarily consistent).
    pub(crate) fn fuzz_requant(r: &mut Rng, n: usize, in_zp: i32, out_zp: i32) -> Requant<'static> {
        let len = match r.range(0, 3) {
            0 => 1,
            1 => n + 1,
            _ => n,
        };
        let mults: Vec<(i32, i32)> = (0..len)
            .map(|_| (r.u32() as i32, r.range(-64, 64) as i32))
            .collect();
        let mut rq = requant(in_zp, out_zp, &mults);
        if r.range(0, 5) == 0 {
            rq.input_offset = r.u32() as i32;
        }
        rq
    }

    pub(crate) fn fuzz_clamp(r: &mut Rng) -> Clamp {
        Clamp {
            min_q: r.range(-300, 300) as i32,
            max_q: r.range(-300, 300) as i32,
            min_f: if r.bool() { f32::NAN } else { r.unit() },
            max_f: if r.bool() { f32::INFINITY } else { r.unit() },
        }
    }

    /// Leaks a byte vector (tests only) so it can back `Bytes<'static>`.
    pub(crate) fn leak(v: Vec<u8>) -> &'static [u8] {
        Box::leak(v.into_boxed_slice())
    }

    pub(crate) fn requant(input_zp: i32, output_zp: i32, mults: &[(i32, i32)]) -> Requant<'static> {
        let m: Vec<i32> = mults.iter().map(|x| x.0).collect();
        let s: Vec<i32> = mults.iter().map(|x| x.1).collect();
        Requant {
            input_offset: -input_zp,
            output_offset: output_zp,
            multipliers: Bytes(leak(i32_bytes(&m))),
            shifts: Bytes(leak(i32_bytes(&s))),
        }
    }

    pub(crate) fn random_clamp_q(r: &mut Rng) -> Clamp {
        let (a, b) = (r.range(-128, 127) as i32, r.range(-128, 127) as i32);
        let (lo, hi) = if r.range(0, 2) == 0 {
            (-128, 127)
        } else {
            (a.min(b), a.max(b))
        };
        Clamp {
            min_q: lo,
            max_q: hi,
            ..Clamp::NONE
        }
    }

    pub(crate) fn random_clamp_f(r: &mut Rng) -> Clamp {
        match r.range(0, 3) {
            0 => Clamp::NONE,
            1 => Clamp {
                min_f: 0.0,
                ..Clamp::NONE
            },
            2 => Clamp {
                min_f: 0.0,
                max_f: 0.5,
                ..Clamp::NONE
            },
            _ => Clamp {
                min_f: -0.25,
                max_f: 0.25,
                ..Clamp::NONE
            },
        }
    }

    /// Runs a kernel's `eval` on owned buffers.
    pub(crate) fn run<F>(
        defs: &[TensorDef<'_>],
        data: &[Vec<u8>],
        out: &TensorDef<'_>,
        f: F,
    ) -> Vec<u8>
    where
        F: FnOnce(&[TensorIn<'_, '_>], TensorOut<'_, '_>),
    {
        let ins: Vec<TensorIn<'_, '_>> = defs
            .iter()
            .zip(data)
            .map(|(d, b)| TensorIn { def: d, data: b })
            .collect();
        let n = out.shape.num_elements().expect("size") * out.dtype.size();
        // Poison the output so unwritten elements show up.
        let mut o = vec![0xA5u8; n];
        f(
            &ins,
            TensorOut {
                def: out,
                data: &mut o,
            },
        );
        o
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::needless_range_loop,
    clippy::too_many_arguments
)]
mod tests {
    extern crate std;
    use std::prelude::rust_2021::*;
    use std::vec;

    use super::testutil::*;
    use super::*;
    use crate::fixedpoint::multiply_by_quantized_multiplier;
    use edgeflow_format::graph::Clamp;

    /// TFLM's `ConvPerChannel`, transcribed loop for loop.
    #[allow(clippy::too_many_arguments)]
    fn reference_i8(
        p: &ConvParams<'_>,
        xd: &TensorDef<'_>,
        x: &[u8],
        wd: &TensorDef<'_>,
        w: &[u8],
        bias: Option<&[u8]>,
        od: &TensorDef<'_>,
    ) -> Vec<u8> {
        let rq = p.requant.as_ref().unwrap();
        let (n, ih, iw, ic) = (
            xd.shape.dim(0),
            xd.shape.dim(1),
            xd.shape.dim(2),
            xd.shape.dim(3),
        );
        let (oc_n, fh, fw, fc) = (
            wd.shape.dim(0),
            wd.shape.dim(1),
            wd.shape.dim(2),
            wd.shape.dim(3),
        );
        let (oh, ow) = (od.shape.dim(1), od.shape.dim(2));
        let groups = ic / fc;
        let fpg = oc_n / groups;
        let mut out = vec![0u8; n * oh * ow * oc_n];
        let nmul = rq.multipliers.len_i32();
        for b in 0..n {
            for oy in 0..oh {
                let y0 = (oy * p.stride[0] as usize) as i64 - p.pad[0] as i64;
                for ox in 0..ow {
                    let x0 = (ox * p.stride[1] as usize) as i64 - p.pad[1] as i64;
                    for oc in 0..oc_n {
                        let grp = oc / fpg;
                        let mut acc = 0i32;
                        for fy in 0..fh {
                            let y = y0 + (p.dilation[0] as usize * fy) as i64;
                            for fx in 0..fw {
                                let xx = x0 + (p.dilation[1] as usize * fx) as i64;
                                if !(xx >= 0 && xx < iw as i64 && y >= 0 && y < ih as i64) {
                                    continue;
                                }
                                for c in 0..fc {
                                    let iv = x[((b * ih + y as usize) * iw + xx as usize) * ic
                                        + c
                                        + grp * fc]
                                        as i8 as i32;
                                    let fv = w[((oc * fh + fy) * fw + fx) * fc + c] as i8 as i32;
                                    acc = acc.wrapping_add(fv.wrapping_mul(iv + rq.input_offset));
                                }
                            }
                        }
                        if let Some(bb) = bias {
                            acc = acc.wrapping_add(le_i32(bb, oc));
                        }
                        let i = if nmul == 1 { 0 } else { oc };
                        let mut v = multiply_by_quantized_multiplier(
                            acc,
                            rq.multipliers.i32_at(i).unwrap(),
                            rq.shifts.i32_at(i).unwrap(),
                        );
                        v = v.wrapping_add(rq.output_offset);
                        v = v.max(p.clamp.min_q).min(p.clamp.max_q);
                        out[((b * oh + oy) * ow + ox) * oc_n + oc] = v as i8 as u8;
                    }
                }
            }
        }
        out
    }

    /// TFLM's float `Conv`, transcribed.
    fn reference_f32(
        p: &ConvParams<'_>,
        xd: &TensorDef<'_>,
        x: &[u8],
        wd: &TensorDef<'_>,
        w: &[u8],
        bias: Option<&[u8]>,
        od: &TensorDef<'_>,
    ) -> Vec<u8> {
        let (n, ih, iw, ic) = (
            xd.shape.dim(0),
            xd.shape.dim(1),
            xd.shape.dim(2),
            xd.shape.dim(3),
        );
        let (oc_n, fh, fw, fc) = (
            wd.shape.dim(0),
            wd.shape.dim(1),
            wd.shape.dim(2),
            wd.shape.dim(3),
        );
        let (oh, ow) = (od.shape.dim(1), od.shape.dim(2));
        let fpg = oc_n / (ic / fc);
        let mut out = Vec::new();
        for b in 0..n {
            for oy in 0..oh {
                let y0 = (oy * p.stride[0] as usize) as i64 - p.pad[0] as i64;
                for ox in 0..ow {
                    let x0 = (ox * p.stride[1] as usize) as i64 - p.pad[1] as i64;
                    for oc in 0..oc_n {
                        let grp = oc / fpg;
                        let mut total = 0.0f32;
                        for fy in 0..fh {
                            let y = y0 + (p.dilation[0] as usize * fy) as i64;
                            for fx in 0..fw {
                                let xx = x0 + (p.dilation[1] as usize * fx) as i64;
                                if !(xx >= 0 && xx < iw as i64 && y >= 0 && y < ih as i64) {
                                    continue;
                                }
                                for c in 0..fc {
                                    let iv = le_f32(
                                        x,
                                        ((b * ih + y as usize) * iw + xx as usize) * ic
                                            + c
                                            + grp * fc,
                                    );
                                    let fv = le_f32(w, ((oc * fh + fy) * fw + fx) * fc + c);
                                    total += iv * fv;
                                }
                            }
                        }
                        let bv = bias.map_or(0.0, |bb| le_f32(bb, oc));
                        out.extend_from_slice(
                            &clamp_f32(total + bv, p.clamp.min_f, p.clamp.max_f).to_le_bytes(),
                        );
                    }
                }
            }
        }
        out
    }

    fn params(
        stride: [u16; 2],
        dilation: [u16; 2],
        pad: [u16; 2],
        clamp: Clamp,
        requant: Option<Requant<'static>>,
    ) -> ConvParams<'static> {
        ConvParams {
            stride,
            dilation,
            pad,
            depth_multiplier: 1,
            clamp,
            requant,
        }
    }

    /// TFLite SAME/VALID output size and leading padding.
    fn out_and_pad(r: &mut Rng, n: usize, f: usize, s: usize, d: usize) -> Option<(usize, usize)> {
        let eff = (f - 1) * d + 1;
        if r.bool() {
            let out = n.div_ceil(s);
            let total = ((out - 1) * s + eff).saturating_sub(n);
            Some((out, total / 2))
        } else {
            if n < eff {
                return None;
            }
            Some(((n - eff) / s + 1, 0))
        }
    }

    struct Case {
        p: ConvParams<'static>,
        defs: Vec<TensorDef<'static>>,
        data: Vec<Vec<u8>>,
        out: TensorDef<'static>,
    }

    fn random_case(r: &mut Rng, dtype: DType) -> Option<Case> {
        let n = r.usize(1, 2);
        let (ih, iw) = (r.usize(1, 9), r.usize(1, 9));
        let groups = if r.range(0, 5) == 0 { r.usize(1, 3) } else { 1 };
        let fc = r.usize(1, 7);
        let ic = fc * groups;
        let oc = groups * r.usize(1, 6);
        let (fh, fw) = (r.usize(1, 4), r.usize(1, 4));
        let (sh, sw) = (r.usize(1, 3), r.usize(1, 3));
        let (dh, dw) = if r.range(0, 3) == 0 {
            (r.usize(1, 3), r.usize(1, 3))
        } else {
            (1, 1)
        };
        let (oh, ph) = out_and_pad(r, ih, fh, sh, dh)?;
        let (ow, pw) = out_and_pad(r, iw, fw, sw, dw)?;
        let in_zp = r.range(-128, 127) as i32;
        let out_zp = r.range(-128, 127) as i32;
        let xd = tensor(
            dtype,
            &[n as u32, ih as u32, iw as u32, ic as u32],
            0.5,
            in_zp,
        );
        let wd = tensor(dtype, &[oc as u32, fh as u32, fw as u32, fc as u32], 0.5, 0);
        let od = tensor(
            dtype,
            &[n as u32, oh as u32, ow as u32, oc as u32],
            0.5,
            out_zp,
        );
        let with_bias = r.range(0, 3) != 0;
        let (p, data, bias) = if dtype == DType::I8 {
            let per_tensor = r.range(0, 3) == 0;
            let mults: Vec<(i32, i32)> = r.multipliers(if per_tensor { 1 } else { oc });
            let rq = requant(in_zp, out_zp, &mults);
            let p = params(
                [sh as u16, sw as u16],
                [dh as u16, dw as u16],
                [ph as u16, pw as u16],
                random_clamp_q(r),
                Some(rq),
            );
            let mut xb = r.bytes(n * ih * iw * ic);
            if r.range(0, 4) == 0 {
                // Extreme values to exercise wrapping.
                for v in xb.iter_mut() {
                    *v = if r.bool() { 0x80 } else { 0x7f };
                }
            }
            let wb = r.bytes(oc * fh * fw * fc);
            let bias: Vec<i32> = (0..oc)
                .map(|_| {
                    if r.range(0, 5) == 0 {
                        r.u32() as i32
                    } else {
                        r.range(-5000, 5000) as i32
                    }
                })
                .collect();
            (p, vec![xb, wb], i32_bytes(&bias))
        } else {
            let p = params(
                [sh as u16, sw as u16],
                [dh as u16, dw as u16],
                [ph as u16, pw as u16],
                random_clamp_f(r),
                None,
            );
            let xb = r.f32_bytes(n * ih * iw * ic);
            let wb = r.f32_bytes(oc * fh * fw * fc);
            let bias = r.f32_bytes(oc);
            (p, vec![xb, wb], bias)
        };
        let mut defs = vec![xd, wd];
        let mut data = data;
        if with_bias {
            let bt = if dtype == DType::I8 {
                DType::I32
            } else {
                DType::F32
            };
            defs.push(tensor(bt, &[oc as u32], 1.0, 0));
            data.push(bias);
        }
        Some(Case {
            p,
            defs,
            data,
            out: od,
        })
    }

    fn run_case(c: &Case) -> Vec<u8> {
        run_case_with(c, false)
    }

    /// Runs a case on the portable (`packed == false`) or packed 16-bit kernels.
    fn run_case_with(c: &Case, packed: bool) -> Vec<u8> {
        let sb = scratch_bytes(&c.p, &c.defs, &c.out);
        check(&c.p, &c.defs, &c.out, sb).expect("check");
        let mut scratch = vec![0x5Au8; sb];
        run(&c.defs, &c.data, &c.out, |i, o| {
            eval_with(&c.p, i, o, &mut scratch, packed)
        })
    }

    #[test]
    fn int8_packed_kernels_match_reference_on_random_cases() {
        let mut r = Rng::new(6);
        let mut done = 0;
        while done < 1500 {
            let Some(c) = random_case(&mut r, DType::I8) else {
                continue;
            };
            let got = run_case_with(&c, true);
            let want = reference_i8(
                &c.p,
                &c.defs[0],
                &c.data[0],
                &c.defs[1],
                &c.data[1],
                c.data.get(2).map(|v| &v[..]),
                &c.out,
            );
            assert_eq!(
                got, want,
                "case {done}: {:?} {:?} {:?}",
                c.p, c.defs[0].shape, c.defs[1].shape
            );
            done += 1;
        }
    }

    #[test]
    fn int8_matches_reference_on_random_cases() {
        let mut r = Rng::new(1);
        let mut done = 0;
        while done < 1500 {
            let Some(c) = random_case(&mut r, DType::I8) else {
                continue;
            };
            let got = run_case(&c);
            let want = reference_i8(
                &c.p,
                &c.defs[0],
                &c.data[0],
                &c.defs[1],
                &c.data[1],
                c.data.get(2).map(|v| &v[..]),
                &c.out,
            );
            assert_eq!(
                got, want,
                "case {done}: {:?} {:?} {:?}",
                c.p, c.defs[0].shape, c.defs[1].shape
            );
            done += 1;
        }
    }

    #[test]
    fn f32_matches_reference_on_random_cases() {
        let mut r = Rng::new(2);
        let mut done = 0;
        while done < 600 {
            let Some(c) = random_case(&mut r, DType::F32) else {
                continue;
            };
            let got = run_case(&c);
            let want = reference_f32(
                &c.p,
                &c.defs[0],
                &c.data[0],
                &c.defs[1],
                &c.data[1],
                c.data.get(2).map(|v| &v[..]),
                &c.out,
            );
            // Same operations in the same order: bit-identical.
            assert_eq!(got, want, "case {done}");
            done += 1;
        }
    }

    #[test]
    fn hand_computed_int8_3x3_same() {
        // 1x3x3x1 input 1..9 (zp 0), one 3x3 filter of ones, multiplier 0.5, SAME padding.
        let x: Vec<u8> = (1..=9).map(|v: i8| v as u8).collect();
        let w = vec![1u8; 9];
        let (m, s) = crate::fixedpoint::quantize_multiplier(0.5);
        let p = params(
            [1, 1],
            [1, 1],
            [1, 1],
            Clamp::NONE,
            Some(requant(0, 3, &[(m, s)])),
        );
        let defs = vec![
            tensor(DType::I8, &[1, 3, 3, 1], 1.0, 0),
            tensor(DType::I8, &[1, 3, 3, 1], 1.0, 0),
            tensor(DType::I32, &[1], 1.0, 0),
        ];
        let out = tensor(DType::I8, &[1, 3, 3, 1], 1.0, 3);
        let c = Case {
            p,
            defs,
            data: vec![x, w, i32_bytes(&[1])],
            out,
        };
        let got: Vec<i8> = run_case(&c).into_iter().map(|v| v as i8).collect();
        // Window sums + bias 1: [13,22,17, 28,46,34, 25,40,29]; halved (round half away
        // from zero) plus zero point 3.
        assert_eq!(got, vec![10, 14, 12, 17, 26, 20, 16, 23, 18]);
    }

    #[test]
    fn hand_computed_int8_input_offset_and_clamp() {
        // input zp 5: padded taps must contribute nothing; values x - 5.
        let x: Vec<u8> = [5i8, 6, 7, 8].iter().map(|&v| v as u8).collect(); // 1x2x2x1 -> 0,1,2,3
        let w: Vec<u8> = [1i8, -1, 2, 2].iter().map(|&v| v as u8).collect(); // 1x2x2x1
        let (m, s) = crate::fixedpoint::quantize_multiplier(1.0);
        let p = params(
            [1, 1],
            [1, 1],
            [0, 0],
            Clamp {
                min_q: -2,
                max_q: 100,
                ..Clamp::NONE
            },
            Some(requant(5, -10, &[(m, s)])),
        );
        // SAME 2x2 on 2x2: out 2x2, total pad 1 -> before 0.
        let defs = vec![
            tensor(DType::I8, &[1, 2, 2, 1], 1.0, 5),
            tensor(DType::I8, &[1, 2, 2, 1], 1.0, 0),
        ];
        let out = tensor(DType::I8, &[1, 2, 2, 1], 1.0, -10);
        let c = Case {
            p,
            defs,
            data: vec![x, w],
            out,
        };
        let got: Vec<i8> = run_case(&c).into_iter().map(|v| v as i8).collect();
        // (0,0): 0*1 + 1*-1 + 2*2 + 3*2 = 9 -> -1; (0,1): 1*1 + 3*2 = 7 -> -3 -> clamp -2;
        // (1,0): 2*1 + 3*-1 = -1 -> -11 -> -2; (1,1): 3 -> -7 -> -2.
        assert_eq!(got, vec![-1, -2, -2, -2]);
    }

    #[test]
    fn check_rejects_bad_ops() {
        let mut r = Rng::new(3);
        let c = loop {
            if let Some(c) = random_case(&mut r, DType::I8) {
                if c.defs.len() == 3 {
                    break c;
                }
            }
        };
        let sb = scratch_bytes(&c.p, &c.defs, &c.out);
        assert!(check(&c.p, &c.defs, &c.out, sb).is_ok());
        // Multipliers must be non-negative and shifts in TFLM's [-31, 30].
        let n = c.out.shape.dim(3);
        for (m, sh) in [(-1, 0), (i32::MIN, 0), (1 << 30, 31), (1 << 30, -32)] {
            let mut p = c.p;
            let mut mults = vec![(1 << 30, -3); n];
            mults[n - 1] = (m, sh);
            let rq = requant(
                -p.requant.unwrap().input_offset,
                p.requant.unwrap().output_offset,
                &mults,
            );
            p.requant = Some(rq);
            assert!(check(&p, &c.defs, &c.out, sb).is_err(), "{m} {sh}");
            mults[n - 1] = (1 << 30, -3);
            p.requant = Some(requant(-rq.input_offset, rq.output_offset, &mults));
            assert!(check(&p, &c.defs, &c.out, sb).is_ok());
        }
        if sb > 0 {
            assert!(check(&c.p, &c.defs, &c.out, sb - 1).is_err());
        }
        let mut p = c.p;
        p.stride = [0, 1];
        assert!(check(&p, &c.defs, &c.out, sb).is_err());
        let mut p = c.p;
        p.requant = None;
        assert!(check(&p, &c.defs, &c.out, sb).is_err());
        let mut p = c.p;
        p.clamp.min_q = 5;
        p.clamp.max_q = 4;
        assert!(check(&p, &c.defs, &c.out, sb).is_err());
        let mut p = c.p;
        if let Some(rq) = &mut p.requant {
            rq.input_offset += 1;
        }
        assert!(check(&p, &c.defs, &c.out, sb).is_err());
        let mut p = c.p;
        if let Some(rq) = &mut p.requant {
            rq.multipliers = edgeflow_format::graph::Bytes(&[
                0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6,
                7,
            ]);
        }
        assert!(check(&p, &c.defs, &c.out, sb).is_err());
        // Wrong output size.
        let mut out = c.out;
        out.shape.dims[1] += 3;
        assert!(check(&c.p, &c.defs, &out, sb + 10000).is_err());
        // Filter with non-zero zero point.
        let mut defs = c.defs.clone();
        defs[1].quant.as_mut().unwrap().zero_point = 1;
        assert!(check(&c.p, &defs, &c.out, sb).is_err());
        // Bias of the wrong type or length.
        let mut defs = c.defs.clone();
        defs[2].dtype = DType::F32;
        assert!(check(&c.p, &defs, &c.out, sb).is_err());
        let mut defs = c.defs.clone();
        defs[2].shape.dims[0] += 1;
        assert!(check(&c.p, &defs, &c.out, sb).is_err());
        // Mixed types.
        let mut defs = c.defs.clone();
        defs[0].dtype = DType::F32;
        assert!(check(&c.p, &defs, &c.out, sb).is_err());
        assert!(check(&c.p, &c.defs[..1], &c.out, sb).is_err());
    }

    #[test]
    fn window_clips_to_image() {
        let a = Axis::new(5, 3, 2, 2, 2, 3).unwrap();
        // origins -2, 0, 2; taps at origin + 2k.
        assert_eq!(a.window(0), (-2, 1, 3));
        assert_eq!(a.window(1), (0, 0, 3));
        assert_eq!(a.window(2), (2, 0, 2));
        let b = Axis::new(4, 3, 1, 1, 1, 4).unwrap();
        assert_eq!(b.window(0), (-1, 1, 3));
        assert_eq!(b.window(3), (2, 0, 2));
        // SAME with a dilated filter wider than the input: taps at -1 and 2, both outside.
        let c = Axis::new(1, 2, 1, 3, 1, 1).unwrap();
        assert_eq!(c.window(0), (-1, 1, 1));
        assert!(Axis::new(5, 3, 1, 1, 3, 5).is_err());
        assert!(Axis::new(5, 3, 1, 1, 0, 6).is_err());
        assert!(Axis::new(5, 3, 1, 1, 0, 4).is_ok());
        assert!(Axis::new(5, 3, 1, 1, 0, 3).is_ok());
        assert!(Axis::new(5, 3, 1, 1, 0, 2).is_err());
    }

    #[test]
    fn eval_never_panics_after_check() {
        let mut r = Rng::new(4);
        let mut evaluated = 0;
        for _ in 0..4000 {
            let dtype = if r.bool() { DType::I8 } else { DType::F32 };
            let Some(mut c) = random_case(&mut r, dtype) else {
                continue;
            };
            for _ in 0..r.usize(1, 3) {
                let i = r.usize(0, 1);
                match r.range(0, 9) {
                    0 => c.p.stride[i] = fuzz_u16(&mut r),
                    1 => c.p.dilation[i] = fuzz_u16(&mut r),
                    2 => c.p.pad[i] = fuzz_u16(&mut r),
                    3 => fuzz_dims(&mut r, &mut c.out),
                    4 => fuzz_dims(&mut r, &mut c.defs[0]),
                    5 => fuzz_dims(&mut r, &mut c.defs[1]),
                    6 => c.p.requant = Some(fuzz_requant(&mut r, c.out.shape.dim(3), 0, 0)),
                    7 => c.p.clamp = fuzz_clamp(&mut r),
                    _ => c.p.depth_multiplier = fuzz_u16(&mut r),
                }
            }
            let sb = scratch_bytes(&c.p, &c.defs, &c.out);
            if check(&c.p, &c.defs, &c.out, sb).is_err() {
                continue;
            }
            let data = fuzz_data(&mut r, &c.defs);
            let mut scratch = vec![0u8; sb + r.usize(0, 8)];
            // Both inner-kernel families must stay in bounds.
            for packed in [false, true] {
                run(&c.defs, &data, &c.out, |i, o| {
                    eval_with(&c.p, i, o, &mut scratch, packed)
                });
            }
            evaluated += 1;
        }
        assert!(evaluated > 300, "{evaluated}");
    }

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
                arm::ops::portable::requant_single(x, m, klo, khi, right - 1),
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
