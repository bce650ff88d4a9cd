//! The int8 epilogue of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED: per-channel
//! requantization of the int32 accumulators ([`OutQ`]), clamp and store.
//!
//! It sits above both layers: the arithmetic is [`super::generic::requant`]'s, and the
//! instructions are chosen per architecture ([`super::arch::arm_dsp::ops`]: `SMLAL` +
//! shift and `SSAT` on Cortex-M4/M7, their portable twins elsewhere).

use edgeflow_format::graph::{Clamp, Requant};

use super::arch::arm_dsp as arm;
use super::generic::elem::le_i32;
use super::generic::requant::{requant_core, requant_mul, single_shift_nudge, split_shift, Soa};

/// Bytes of one output channel's epilogue record (see [`OutQ::write_records`]).
pub(crate) const REC: usize = 20;

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

    /// [`OutQ::new`] with [`OutQ::fast`] and [`OutQ::full`] given rather than checked
    /// (`fast` over every channel): for a caller that took them from [`OutQ::new`] of
    /// the same `rq` and `clamp` and rebuilds
    /// the `OutQ` per block (FULLY_CONNECTED's `finish`, to keep it out of the frame
    /// its dot products run under). Wrong flags give wrong outputs, never a panic.
    #[inline(always)]
    pub(crate) fn with_flags(rq: &Requant<'a>, clamp: &Clamp, fast: bool, full: bool) -> Self {
        OutQ {
            mult: rq.multipliers.0,
            shift: rq.shifts.0,
            per_channel: rq.multipliers.0.len() > 4,
            out_off: rq.output_offset,
            lo: clamp.min_q,
            hi: clamp.max_q,
            fast,
            full,
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

    /// `clamp(requant_single(acc, m, k, r1) + output_offset)` with `k`'s low and high
    /// words ([`single_shift_params`](super::generic::requant::single_shift_params)); a
    /// saturation with `FULL` (only when [`OutQ::full`] holds).
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
    /// multiplier, the rounding constant of [`requant_single`](super::generic::requant::requant_single) (low and high word), and
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
    /// and one shift ([`requant_single`](super::generic::requant::requant_single)).
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

impl OutQ<'_> {
    /// Writes the [`Soa`] parameters of channels `start..start + n` into the first
    /// `12 * n` bytes (at most [`REC`] per channel, so a record area holds them) of `area` (`fold(j)` for the `j`-th of them), the layout of the host
    /// SIMD epilogue ([`OutQ::finish_soa`]). Meaningful only when [`OutQ::fast`] holds.
    pub(crate) fn write_soa(
        &self,
        area: &mut [u8],
        n: usize,
        start: usize,
        mut fold: impl FnMut(usize) -> i32,
    ) {
        let (f, rest) = area.split_at_mut((4 * n).min(area.len()));
        let (m, rest) = rest.split_at_mut((4 * n).min(rest.len()));
        let r_len = (4 * n).min(rest.len());
        let r = &mut rest[..r_len];
        for (j, (((f, m), r), (mq, s))) in f
            .chunks_exact_mut(4)
            .zip(m.chunks_exact_mut(4))
            .zip(r.chunks_exact_mut(4))
            .zip(self.channels(start))
            .enumerate()
        {
            let (_, right) = split_shift(s);
            f.copy_from_slice(&fold(j).to_le_bytes());
            m.copy_from_slice(&mq.to_le_bytes());
            r.copy_from_slice(&right.saturating_sub(1).to_le_bytes());
        }
    }

    /// The output offset and clamp bounds `(offset, lo, hi)`, as the host SIMD epilogue
    /// kernels take them.
    pub(crate) fn stage(&self) -> (i32, i32, i32) {
        (self.out_off, self.lo, self.hi)
    }

    /// `out[j] = clamp(requant_single(acc[j] + fold[j], m[j], r1[j]) + output_offset)`
    /// with the [`Soa`] parameters of the same channels, on `isa`'s vector kernel
    /// ([`super::arch::requant_soa`]; the portable loop otherwise). Only when
    /// [`OutQ::fast`] holds (equal to [`OutQ::finish_fast_in`] then).
    #[inline]
    pub(crate) fn finish_soa(
        &self,
        isa: super::arch::Isa,
        acc: &[i32],
        p: &Soa<'_>,
        out: &mut [u8],
    ) {
        super::arch::requant_soa(isa, acc, p, (self.out_off, self.lo, self.hi), out);
    }
}

/// Where an op's per-channel epilogue parameters are: [`REC`]-style records `stride`
/// bytes apart (record at the end of each), or [`Soa`] arrays (host SIMD, fast
/// requantization only).
#[derive(Clone, Copy)]
pub(crate) enum Params<'a> {
    Recs(&'a [u8], usize),
    Soa(Soa<'a>),
}

impl<'a> Params<'a> {
    /// The parameters from channel `c0` on.
    pub(crate) fn from(&self, c0: usize) -> Self {
        match *self {
            Params::Recs(r, stride) => {
                Params::Recs(r.get(c0.saturating_mul(stride)..).unwrap_or(&[]), stride)
            }
            Params::Soa(s) => Params::Soa(s.from(c0)),
        }
    }
}

impl OutQ<'_> {
    /// `out[j] = requant(acc[j])` with the parameters `p` of the same channels
    /// ([`OutQ::finish_all`] or [`OutQ::finish_soa`]).
    #[inline]
    pub(crate) fn finish_params(
        &self,
        isa: super::arch::Isa,
        acc: &[i32],
        p: &Params<'_>,
        out: &mut [u8],
    ) {
        match p {
            Params::Recs(r, stride) => self.finish_all(acc, r, *stride, out),
            Params::Soa(s) => self.finish_soa(isa, acc, s, out),
        }
    }
}
