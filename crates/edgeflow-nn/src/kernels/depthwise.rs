//! DEPTHWISE_CONV_2D, int8 (per-channel requantization) and f32, matching TFLM's reference
//! `DepthwiseConvPerChannel` / `DepthwiseConv` bit for bit (int8) and in accumulation
//! order (f32).
//!
//! Output channel `oc = ic * M + m` reads input channel `ic`; the filter is `[1, H, W, C*M]`.
//!
//! int8 strategy (depth multiplier 1): for each output pixel, up to [`CHUNK`] channels are
//! accumulated together (the 3x3 kernel: in a block of planned scratch; other filters: on
//! the stack), one filter tap at a time over contiguous channel slices. With `off = -input_zero_point`, `sum(w * (x + off)) = sum(w * x) + off * sum(w)`:
//! the second term plus the bias is precomputed once per call per channel (in scratch,
//! with the requantization parameters), and taps outside the image read a row of input
//! zero points, which contributes `w * zp + off * w = 0`. So every window takes the same
//! path without per-tap padding tests, and the wrapping int32 sums equal TFLM's
//! accumulator exactly. Depth multipliers above 1 use a simpler per-channel loop.
//!
//! The 3x3 kernel (the MLPerf Tiny shape) keeps each channel's nine weights in its
//! record; on targets with the DSP extension it instead sums four channels at a time
//! with [`arm::ops::dw3x3`] on weights widened once per call (the `c % 4` last channels
//! take the portable loop). Every int8 epilogue uses the single-shift requantization
//! ([`OutQ::finish_fast_in`]) when the op's shifts allow it.

use edgeflow_format::graph::{Clamp, ConvParams, Requant, TensorDef};

use super::arch::arm_dsp as arm;
use super::arch::{self, Isa};
use super::epilogue::{OutQ, Params, REC};
use super::generic::elem::{acc_block, acc_block_bytes, clamp_f32, le_f32, le_i32};
use super::generic::requant::Soa;
use super::generic::window::Axis;
use super::weighted::Weighted;

/// Channels accumulated together per pass (accumulator block size).
const CHUNK: usize = 64;

/// Whether the depthwise kernels for other shapes than 3x3 with depth multiplier 1 and a
/// multiple of 4 channels are linked ([`general`], [`eval_mult1`], and the `c % 4`
/// channel tail of the DSP 3x3 kernel). A DSP build (Cortex-M4/M7) with
/// `EDGEFLOW_NN_DW_GENERAL=0` (build.rs) leaves them out, and [`geom`] then rejects those
/// shapes; every other build links them.
const GENERAL_LINKED: bool = !cfg!(all(edgeflow_arm_dsp, not(edgeflow_dw_general)));

/// Validated DEPTHWISE_CONV_2D geometry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geom {
    batches: usize,
    h: Axis,
    w: Axis,
    /// Input channels.
    in_c: usize,
    /// Depth multiplier.
    mult: usize,
    /// Output channels (`in_c * mult`).
    out_c: usize,
}

fn geom(
    p: &ConvParams<'_>,
    x: &TensorDef<'_>,
    w: &TensorDef<'_>,
    out: &TensorDef<'_>,
) -> Result<Geom, &'static str> {
    if x.shape.rank != 4 || w.shape.rank != 4 || out.shape.rank != 4 {
        return Err(why!(
            "depthwise.rs",
            "input, filter and output must be rank 4"
        ));
    }
    if w.shape.dim(0) != 1 {
        return Err(why!(
            "depthwise.rs",
            "depthwise filter must be [1, H, W, C*M]"
        ));
    }
    let batches = x.shape.dim(0);
    if out.shape.dim(0) != batches {
        return Err(why!("depthwise.rs", "input and output batch sizes differ"));
    }
    let mult = p.depth_multiplier as usize;
    if mult == 0 {
        return Err(why!("depthwise.rs", "depth multiplier must be at least 1"));
    }
    let in_c = x.shape.dim(3);
    let out_c = w.shape.dim(3);
    if in_c.checked_mul(mult) != Some(out_c) {
        return Err(why!(
            "depthwise.rs",
            "filter depth is not input depth times the depth multiplier"
        ));
    }
    if out.shape.dim(3) != out_c {
        return Err(why!(
            "depthwise.rs",
            "output depth differs from the filter depth"
        ));
    }
    if !GENERAL_LINKED
        && (mult != 1 || w.shape.dim(1) != 3 || w.shape.dim(2) != 3 || !in_c.is_multiple_of(4))
    {
        return Err("only 3x3 DEPTHWISE_CONV_2D with depth multiplier 1 and a multiple of 4 channels is linked into this build (EDGEFLOW_NN_DW_GENERAL=0 at build time)");
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
    Ok(Geom {
        batches,
        h,
        w: wa,
        in_c,
        mult,
        out_c,
    })
}

/// DEPTHWISE_CONV_2D as a [`Weighted`] op (checked, planned and run by
/// [`super::weighted`]).
pub(crate) struct Depthwise<'p, 'a>(pub(crate) &'p ConvParams<'a>);

impl Weighted for Depthwise<'_, '_> {
    type Geom = Geom;
    const ARITY: &'static str = why!(
        "depthwise.rs",
        "DEPTHWISE_CONV_2D takes input, filter and an optional bias"
    );
    fn geom(
        &self,
        x: &TensorDef<'_>,
        w: &TensorDef<'_>,
        out: &TensorDef<'_>,
    ) -> Result<Geom, &'static str> {
        geom(self.0, x, w, out)
    }
    fn channels(g: &Geom) -> usize {
        g.out_c
    }
    /// int8 needs the widened 3x3 weights ([`wide_bytes`]), for 3x3 a block of
    /// accumulators ([`acc3_bytes`]), one record per output channel (see [`rec_bytes`])
    /// and a row of input zero points (`C` bytes).
    fn int8_scratch(g: &Geom) -> usize {
        wide_bytes(g)
            .saturating_add(acc3_bytes(g))
            .saturating_add(g.out_c.saturating_mul(rec_bytes(g)))
            .saturating_add(g.in_c)
    }
    fn requant(&self) -> Option<&Requant<'_>> {
        self.0.requant.as_ref()
    }
    fn clamp(&self) -> &Clamp {
        &self.0.clamp
    }
    #[inline(always)]
    fn eval_i8(
        g: &Geom,
        rq: &Requant<'_>,
        clamp: &Clamp,
        xwb: (&[u8], &[u8], Option<&[u8]>),
        out: &mut [u8],
        scratch: &mut [u8],
        isa: Isa,
    ) {
        eval_i8(g, rq, clamp, xwb, out, scratch, isa);
    }
    fn eval_f32(g: &Geom, clamp: &Clamp, x: &[u8], w: &[u8], bias: Option<&[u8]>, out: &mut [u8]) {
        eval_f32(g, clamp, x, w, bias, out);
    }
}

/// Bytes of the widened 3x3 weights of the packed path ([`arm::widen_dw3x3`]; sized on
/// every target, so the host plans for the device): one [`arm::DW_GROUP`] per four
/// channels. They come first in scratch, so they are word aligned when it is.
fn wide_bytes(g: &Geom) -> usize {
    if is_3x3(g) {
        (g.in_c / 4).saturating_mul(arm::DW_GROUP)
    } else {
        0
    }
}

/// Bytes of the 3x3 kernel's accumulator block in scratch (after the widened weights):
/// [`CHUNK`] int32 sums ([`acc_block_bytes`]), kept in the arena rather than on the
/// stack under the pixel loop.
fn acc3_bytes(g: &Geom) -> usize {
    if is_3x3(g) {
        acc_block_bytes(CHUNK)
    } else {
        0
    }
}

/// Bytes per output channel record: the 3x3 kernel keeps the channel's nine weights
/// (and three pad bytes) in front of the epilogue record.
fn rec_bytes(g: &Geom) -> usize {
    if is_3x3(g) {
        REC3
    } else {
        REC
    }
}

/// Record size of the 3x3 kernel.
const REC3: usize = 12 + REC;

/// Whether the specialised 3x3 kernel applies (depth multiplier 1, 3x3 filter).
fn is_3x3(g: &Geom) -> bool {
    g.mult == 1 && g.h.filter == 3 && g.w.filter == 3
}

/// Portable inner kernels over contiguous channel slices (replaceable by DSP versions).
mod tap {
    use super::super::epilogue::OutQ;
    use super::REC3;

    /// One output pixel of the 3x3 kernel: `out[c] = finish(sum_t taps[t][c] * w_t[c])`
    /// with the weights and epilogue taken from the channel's [`REC3`]-byte record.
    #[inline(never)]
    pub(super) fn pixel_3x3(taps: &[&[u8]; 9], recs: &[u8], out: &mut [u8], q: &OutQ<'_>) {
        match (q.fast, q.full) {
            (true, true) => pixel_3x3_in::<true, true>(taps, recs, out, q),
            (true, false) => pixel_3x3_in::<true, false>(taps, recs, out, q),
            _ => pixel_3x3_in::<false, false>(taps, recs, out, q),
        }
    }

    /// [`pixel_3x3`] with the epilogue [`OutQ::finish_fast_in`] (`FAST`) or
    /// [`OutQ::finish`].
    #[inline(always)]
    fn pixel_3x3_in<const FAST: bool, const FULL: bool>(
        taps: &[&[u8]; 9],
        recs: &[u8],
        out: &mut [u8],
        q: &OutQ<'_>,
    ) {
        let [t0, t1, t2, t3, t4, t5, t6, t7, t8] = *taps;
        let it = out
            .iter_mut()
            .zip(recs.chunks_exact(REC3))
            .zip(t0)
            .zip(t1)
            .zip(t2)
            .zip(t3)
            .zip(t4)
            .zip(t5)
            .zip(t6)
            .zip(t7)
            .zip(t8);
        for ((((((((((o, r), &x0), &x1), &x2), &x3), &x4), &x5), &x6), &x7), &x8) in it {
            if let [w0, w1, w2, w3, w4, w5, w6, w7, w8, _, _, _, ref e @ ..] = *r {
                let p = |x: u8, w: u8| (x as i8 as i32) * (w as i8 as i32);
                let acc = p(x0, w0)
                    .wrapping_add(p(x1, w1))
                    .wrapping_add(p(x2, w2))
                    .wrapping_add(p(x3, w3))
                    .wrapping_add(p(x4, w4))
                    .wrapping_add(p(x5, w5))
                    .wrapping_add(p(x6, w6))
                    .wrapping_add(p(x7, w7))
                    .wrapping_add(p(x8, w8));
                *o = if FAST {
                    q.finish_fast_in::<FULL>(acc, e)
                } else {
                    q.finish(acc, e)
                };
            }
        }
    }

    /// `acc[j] += x[j] * w[j]` over the common length. Not inlined: it gets the whole
    /// register file, and its 8-wide chunks zipped by value compile without bounds checks.
    #[inline(never)]
    pub(super) fn mac(acc: &mut [i32], x: &[u8], w: &[u8]) {
        let n = acc.len().min(x.len()).min(w.len());
        let m = n & !7;
        let (Some(acc), Some(x), Some(w)) = (acc.get_mut(..n), x.get(..n), w.get(..n)) else {
            return;
        };
        let ((ah, at), (xh, xt), (wh, wt)) = (acc.split_at_mut(m), x.split_at(m), w.split_at(m));
        for ((a, xc), wc) in ah
            .chunks_exact_mut(8)
            .zip(xh.chunks_exact(8))
            .zip(wh.chunks_exact(8))
        {
            for j in 0..8 {
                a[j] = a[j].wrapping_add((xc[j] as i8 as i32) * (wc[j] as i8 as i32));
            }
        }
        for ((a, &xv), &wv) in at.iter_mut().zip(xt).zip(wt) {
            *a = a.wrapping_add((xv as i8 as i32) * (wv as i8 as i32));
        }
    }
}

#[inline(always)]
fn eval_i8(
    g: &Geom,
    rq: &Requant<'_>,
    clamp: &Clamp,
    (x, w, bias): (&[u8], &[u8], Option<&[u8]>),
    out: &mut [u8],
    scratch: &mut [u8],
    isa: Isa,
) {
    let oc_n = g.out_c;
    if oc_n == 0 {
        return;
    }
    let q = OutQ::new(rq, clamp);
    let off = rq.input_offset;
    if GENERAL_LINKED && g.mult != 1 {
        general(g, &q, off, x, w, bias, out);
        return;
    }
    // Without the general kernels, `geom` admitted only 3x3 with multiplier 1.
    if !GENERAL_LINKED || is_3x3(g) {
        eval_3x3(g, &q, off, (x, w, bias), out, scratch, isa);
        return;
    }
    eval_mult1(g, &q, off, (x, w, bias), out, scratch);
}

/// Depth multiplier 1, any filter but 3x3: per output pixel, up to [`CHUNK`] channels at
/// a time accumulated tap by tap, then requantized with the per-channel records. Its own
/// frame (never inlined), so its accumulators do not sit in the op dispatch's frame
/// under every other kernel.
#[inline(never)]
fn eval_mult1(
    g: &Geom,
    q: &OutQ<'_>,
    off: i32,
    (x, w, bias): (&[u8], &[u8], Option<&[u8]>),
    out: &mut [u8],
    scratch: &mut [u8],
) {
    let (oc_n, c) = (g.out_c, g.in_c);
    let Some(scratch) = scratch.get_mut(..oc_n * REC + c) else {
        return;
    };
    let (recs, zp_row) = scratch.split_at_mut(oc_n * REC);
    // Per channel: bias + off * sum over taps of w[tap][oc], and the requantization. The
    // sums use the pixel loop's accumulators (each pixel zeroes them before use).
    let mut acc = [0i32; CHUNK];
    let mut c0 = 0;
    for rc in recs.chunks_mut(CHUNK * REC) {
        let n = rc.len() / REC;
        let ws = &mut acc[..n];
        ws.fill(0);
        for wt in w.chunks_exact(oc_n) {
            for (a, &v) in ws.iter_mut().zip(wt.get(c0..).unwrap_or(&[])) {
                *a = a.wrapping_add(v as i8 as i32);
            }
        }
        let ch = c0;
        q.write_records(rc, REC, ch, |j| {
            let b = bias.map_or(0, |b| le_i32(b, ch + j));
            b.wrapping_add(off.wrapping_mul(ws.get(j).copied().unwrap_or(0)))
        });
        c0 += n;
    }
    zp_row.fill((-off) as i8 as u8);
    let recs: &[u8] = recs;
    let zp_row: &[u8] = zp_row;
    let row = g.w.size * c;
    let img = g.h.size * row;
    let fw = g.w.filter;
    let mut out_px = out.chunks_exact_mut(oc_n);
    for b in 0..g.batches {
        for oy in 0..g.h.out {
            let (iy0, ky0, ky1) = g.h.window(oy);
            for ox in 0..g.w.out {
                let (ix0, kx0, kx1) = g.w.window(ox);
                let Some(o) = out_px.next() else {
                    return;
                };
                let mut c0 = 0;
                for (oc, rc) in o.chunks_mut(CHUNK).zip(recs.chunks(CHUNK * REC)) {
                    let n = oc.len();
                    let acc = &mut acc[..n];
                    acc.fill(0);
                    let Some(zp) = zp_row.get(c0..c0 + n) else {
                        return;
                    };
                    for ky in 0..g.h.filter {
                        let inside_y = ky >= ky0 && ky < ky1;
                        let xrow = if inside_y {
                            b * img + g.h.at(iy0, ky) * row + c0
                        } else {
                            0
                        };
                        let wrow = ky * fw * c + c0;
                        for kx in 0..fw {
                            let xs = if inside_y && kx >= kx0 && kx < kx1 {
                                let s = xrow + g.w.at(ix0, kx) * c;
                                match x.get(s..s + n) {
                                    Some(v) => v,
                                    None => return,
                                }
                            } else {
                                zp
                            };
                            let ws = wrow + kx * c;
                            let Some(ws) = w.get(ws..ws + n) else {
                                return;
                            };
                            tap::mac(acc, xs, ws);
                        }
                    }
                    q.finish_all(acc, rc, REC, oc);
                    c0 += n;
                }
            }
        }
    }
}

/// Depth multiplier 1, 3x3 filter (any stride, dilation, padding): per output pixel the
/// nine taps are nine contiguous channel slices of the input (or of the zero-point row
/// for taps outside the image), and each channel's nine weights sit transposed in its
/// record, so one pass over the channels accumulates in a register and requantizes
/// right away.
///
/// With [`Isa::ArmDsp`], groups of four channels take the DSP kernel
/// ([`arm::ops::dw3x3`]) on weights widened to 16 bits once per call, then the records'
/// epilogue; the `c % 4` last channels take the portable loop. With a host SIMD family
/// (AVX2, NEON) the channels are summed by [`arch::dw3x3`] straight from the filter, then
/// requantized with the records.
///
/// Inlined into the op's outlined frame (`kernels::eval`), so the setup and the pixel
/// loop share one frame.
#[inline(always)]
fn eval_3x3(
    g: &Geom,
    q: &OutQ<'_>,
    off: i32,
    (x, w, bias): (&[u8], &[u8], Option<&[u8]>),
    out: &mut [u8],
    scratch: &mut [u8],
    isa: Isa,
) {
    let packed = isa == Isa::ArmDsp;
    let host_simd = isa.host_simd();
    let c = g.in_c;
    let wb = wide_bytes(g);
    let ab = acc3_bytes(g);
    let Some(scratch) = scratch.get_mut(..wb + ab + c * REC3 + c) else {
        return;
    };
    let (wide, scratch) = scratch.split_at_mut(wb);
    let (acc, scratch) = scratch.split_at_mut(ab);
    let Some(acc) = acc_block::<CHUNK>(acc) else {
        return;
    };
    if packed {
        arm::widen_dw3x3(w, c, wide);
    }
    let wide: &[u8] = wide;
    let (recs, zp_row) = scratch.split_at_mut(c * REC3);
    // Host SIMD with the single-shift requantization: the vector epilogue's arrays (the
    // sums read the filter in place); otherwise transposed weights and records.
    let soa = host_simd && q.fast;
    if soa {
        write_dw_soa(q, off, (w, bias), c, recs);
    }
    // Transposed weights and, per channel, bias + off * sum of its nine weights. The
    // per-channel sums use the pixel loop's accumulators (one block in scratch, not
    // two: every pixel kernel below writes the accumulators before reading them).
    // Out of line: the records loop's temporaries are not in the frame the pixel loop
    // runs under.
    super::outlined(|| {
        let mut c0 = 0;
        for rc in recs
            .chunks_mut(CHUNK * REC3)
            .take(if soa { 0 } else { usize::MAX })
        {
            let n = rc.len() / REC3;
            let ws = &mut acc[..n];
            ws.fill(0);
            for (t, wt) in w.chunks_exact(c).enumerate().take(9) {
                for ((r, a), &v) in rc
                    .chunks_exact_mut(REC3)
                    .zip(ws.iter_mut())
                    .zip(wt.get(c0..).unwrap_or(&[]))
                {
                    if let Some(slot) = r.get_mut(t) {
                        *slot = v;
                    }
                    *a = a.wrapping_add(v as i8 as i32);
                }
            }
            let ch = c0;
            q.write_records(rc, REC3, ch, |j| {
                let b = bias.map_or(0, |b| le_i32(b, ch + j));
                b.wrapping_add(off.wrapping_mul(ws.get(j).copied().unwrap_or(0)))
            });
            c0 += n;
        }
    });
    zp_row.fill((-off) as i8 as u8);
    let recs: &[u8] = recs;
    let params = if soa {
        Params::Soa(Soa::new(recs, c))
    } else {
        Params::Recs(recs, REC3)
    };
    let zp: &[u8] = zp_row;
    // aarch64 with the vector epilogue: the pixels whose windows are inside the input in
    // runs along each output row (`arch::dw3x3_run`), the others one by one.
    #[cfg(any(test, feature = "std"))]
    if soa && cfg!(target_arch = "aarch64") {
        if let Params::Soa(p) = &params {
            // The arena path (`Runtime::invoke`) allocates nothing: no framed copy here.
            eval_3x3_runs(g, isa, (x, w, zp), p, &params, q, out, acc);
            return;
        }
    }
    let row = g.w.size * c;
    let img = g.h.size * row;
    let mut out_px = out.chunks_exact_mut(c);
    for b in 0..g.batches {
        for oy in 0..g.h.out {
            let (iy0, ky0, ky1) = g.h.window(oy);
            for ox in 0..g.w.out {
                let (ix0, kx0, kx1) = g.w.window(ox);
                let Some(o) = out_px.next() else {
                    return;
                };
                let mut taps: [&[u8]; 9] = [zp; 9];
                for (t, tap) in taps.iter_mut().enumerate() {
                    let (ky, kx) = (t / 3, t % 3);
                    if ky >= ky0 && ky < ky1 && kx >= kx0 && kx < kx1 {
                        let s = b * img + g.h.at(iy0, ky) * row + g.w.at(ix0, kx) * c;
                        match x.get(s..s + c) {
                            Some(v) => *tap = v,
                            None => return,
                        }
                    }
                }
                if packed || !GENERAL_LINKED {
                    pixel_3x3_packed(&taps, wide, recs, o, q, acc);
                } else if host_simd {
                    pixel_3x3_simd(isa, &taps, w, &params, o, q, acc);
                } else {
                    tap::pixel_3x3(&taps, recs, o, q);
                }
            }
        }
    }
}

/// The vector epilogue's arrays ([`Soa`]: per channel, the fold `bias + off * sum of
/// its nine weights`, the multiplier and the shift) of a `[1, 3, 3, c]` filter `w` into
/// `area` (`12 * c` bytes).
fn write_dw_soa(
    q: &OutQ<'_>,
    off: i32,
    (w, bias): (&[u8], Option<&[u8]>),
    c: usize,
    area: &mut [u8],
) {
    q.write_soa(area, c, 0, |j| {
        let s = w.chunks_exact(c).take(9).fold(0i32, |a, t| {
            a.wrapping_add(t.get(j).map_or(0, |&v| v as i8 as i32))
        });
        let b = bias.map_or(0, |b| le_i32(b, j));
        b.wrapping_add(off.wrapping_mul(s))
    });
}

/// Channels up to which [`eval_soa`] keeps its zero-point row on the stack.
#[cfg(any(test, feature = "std"))]
const SOA_MAX_C: usize = 1024;

/// aarch64 hosts: the [`Soa`] arrays (`12 * c` bytes) of an int8 3x3 DEPTHWISE_CONV_2D
/// with depth multiplier 1, computed once per model for [`eval_soa`] (the values
/// [`eval_3x3`] otherwise writes at every call). `None` on other machines, for other
/// shapes or types, a requantization that is not the single-shift kind, more than
/// [`SOA_MAX_C`] channels, or short slices.
#[cfg(any(test, feature = "std"))]
pub(crate) fn pack_soa(
    p: &ConvParams<'_>,
    (xd, wd, od): (&TensorDef<'_>, &TensorDef<'_>, &TensorDef<'_>),
    w: &[u8],
    bias: Option<&[u8]>,
) -> Option<std::vec::Vec<u8>> {
    use edgeflow_format::graph::DType;
    let g = geom(p, xd, wd, od).ok()?;
    let rq = p.requant.as_ref()?;
    let q = OutQ::new(rq, &p.clamp);
    let c = g.in_c;
    if !cfg!(target_arch = "aarch64")
        || !Isa::detect().host_simd()
        || !q.fast
        || !is_3x3(&g)
        || [xd.dtype, wd.dtype, od.dtype] != [DType::I8; 3]
        || c > SOA_MAX_C
        || w.len() < c.checked_mul(9)?
        || bias.is_some_and(|b| b.len() < 4 * c)
    {
        return None;
    }
    let mut area = std::vec![0u8; 12 * c];
    write_dw_soa(&q, rq.input_offset, (w, bias), c, &mut area);
    Some(area)
}

/// The op [`pack_soa`] prepared `area` for, on the input `x` and filter `w`: with
/// padding, every output row from a framed copy of the input in `work` (the host path's
/// work buffer, grown as needed) by [`padded_runs`]; otherwise, or if that declines,
/// through [`eval_3x3_runs`] (what [`eval_3x3`] does on aarch64, without recomputing
/// the arrays). `false`, having written nothing, when the op or `area` do not match
/// (the caller then runs [`eval_3x3`]).
#[cfg(any(test, feature = "std"))]
pub(crate) fn eval_soa(
    p: &ConvParams<'_>,
    area: &[u8],
    (xd, wd, od): (&TensorDef<'_>, &TensorDef<'_>, &TensorDef<'_>),
    (x, w): (&[u8], &[u8]),
    out: &mut [u8],
    work: &mut std::vec::Vec<u8>,
) -> bool {
    let (Ok(g), Some(rq)) = (geom(p, xd, wd, od), p.requant.as_ref()) else {
        return false;
    };
    let q = OutQ::new(rq, &p.clamp);
    let isa = Isa::detect();
    let c = g.in_c;
    if !cfg!(target_arch = "aarch64")
        || !isa.host_simd()
        || !q.fast
        || !is_3x3(&g)
        || c > SOA_MAX_C
        || area.len() != 12 * c
        || w.len() < 9 * c
    {
        return false;
    }
    let mut zp = [0u8; SOA_MAX_C];
    zp[..c].fill((-rq.input_offset) as i8 as u8);
    let soa = Soa::new(area, c);
    // Padding (some windows reach outside the input): the input copied once into a
    // zero-point frame in `work` in which every window is inside, then every output row
    // as one run; the per-pixel path below only if the copy or a run is refused. Here
    // only, on the packed host path (`Runtime::invoke`'s arena path, `eval_3x3`, has no
    // work buffer and allocates nothing).
    if let Some(&pad_byte) = zp[..c].first() {
        if padded_runs(&g, isa, x, pad_byte, w, &soa, &q, out, work) {
            return true;
        }
    }
    let mut acc = [0i32; CHUNK];
    let params = Params::Soa(soa);
    eval_3x3_runs(&g, isa, (x, w, &zp[..c]), &soa, &params, &q, out, &mut acc);
    true
}

/// [`eval_3x3`]'s pixel loop on a host SIMD family with the vector epilogue: in each
/// output row whose filter rows are inside the input, the pixels whose windows are
/// inside it too (an interval of columns, the same in every row) as one run
/// ([`arch::dw3x3_run`]: tap pointers stepped from pixel to pixel, no window arithmetic);
/// every other pixel, or a run the kernel declines, by [`pixel_3x3_simd`].
#[cfg(any(test, feature = "std"))]
#[allow(clippy::too_many_arguments)]
fn eval_3x3_runs(
    g: &Geom,
    isa: Isa,
    (x, w, zp): (&[u8], &[u8], &[u8]),
    p: &Soa<'_>,
    params: &Params<'_>,
    q: &OutQ<'_>,
    out: &mut [u8],
    acc: &mut [i32; CHUNK],
) {
    let c = g.in_c;
    let row = g.w.size * c;
    let img = g.h.size * row;
    let full_x = |ox: usize| {
        let (_, k0, k1) = g.w.window(ox);
        g.w.full(k0, k1)
    };
    // The interior columns: first one and count.
    let cols = (0..g.w.out).find(|&o| full_x(o)).map(|lo| {
        let n = (lo..g.w.out).take_while(|&o| full_x(o)).count();
        (lo, n)
    });
    let steps = (g.w.stride * c, g.w.dilation * c);
    let mut at = 0;
    for b in 0..g.batches {
        for oy in 0..g.h.out {
            let (iy0, ky0, ky1) = g.h.window(oy);
            let inside_y = g.h.full(ky0, ky1);
            let mut ox = 0;
            while ox < g.w.out {
                let (ix0, kx0, kx1) = g.w.window(ox);
                if let Some((_, n)) = cols.filter(|&(lo, _)| inside_y && lo == ox) {
                    let rows: [&[u8]; 3] = core::array::from_fn(|ky| {
                        let s = b * img + g.h.at(iy0, ky) * row + g.w.at(ix0, 0) * c;
                        x.get(s..).unwrap_or(&[])
                    });
                    if let Some(o) = out.get_mut(at..at + n * c) {
                        if arch::dw3x3_run(isa, rows, steps, n, w, p, q.stage(), o) {
                            at += n * c;
                            ox += n;
                            continue;
                        }
                    }
                }
                let Some(o) = out.get_mut(at..at + c) else {
                    return;
                };
                let mut taps: [&[u8]; 9] = [zp; 9];
                for (t, tap) in taps.iter_mut().enumerate() {
                    let (ky, kx) = (t / 3, t % 3);
                    if ky >= ky0 && ky < ky1 && kx >= kx0 && kx < kx1 {
                        let s = b * img + g.h.at(iy0, ky) * row + g.w.at(ix0, kx) * c;
                        match x.get(s..s + c) {
                            Some(v) => *tap = v,
                            None => return,
                        }
                    }
                }
                pixel_3x3_simd(isa, &taps, w, params, o, q, acc);
                at += c;
                ox += 1;
            }
        }
    }
}

/// [`eval_soa`] for an op with padding (undilated): the input copied into a frame of
/// `pad_byte` (the input zero point, whose `x + off` is 0: the taps outside the image)
/// large enough that every window is inside it ([`Axis::framed`], in `work`, grown as
/// needed), then every output row in one checked call of `arch::dw3x3_frame` (runs of
/// `arch::dw3x3_run`'s arithmetic). `false` when the op has no padding, is dilated, the
/// frame would be larger than the input by more than a few rows and columns (it never is
/// for a valid op), the framed copy does not fit, or the kernel declines a run (the
/// caller, [`eval_soa`], then falls back to `eval_3x3_runs`: runs where they fit,
/// pixel by pixel elsewhere).
#[cfg(any(test, feature = "std"))]
#[allow(clippy::too_many_arguments)]
fn padded_runs(
    g: &Geom,
    isa: Isa,
    x: &[u8],
    pad_byte: u8,
    w: &[u8],
    p: &Soa<'_>,
    q: &OutQ<'_>,
    out: &mut [u8],
    work: &mut std::vec::Vec<u8>,
) -> bool {
    let (h, wd, c) = (&g.h, &g.w, g.in_c);
    if h.dilation != 1 || wd.dilation != 1 || (h.pad == 0 && wd.pad == 0) {
        return false;
    }
    let framed = |a: &Axis| Some(a.framed()).filter(|&n| n <= a.size + 2 * a.filter);
    let (Some(fh), Some(fw)) = (framed(h), framed(wd)) else {
        return false;
    };
    let row = fw * c;
    let img = fh * row;
    let Some(len) = g.batches.checked_mul(img) else {
        return false;
    };
    if work.len() < len {
        work.resize(len, 0);
    }
    let xf = &mut work[..len];
    let copied = super::generic::window::copy_framed(
        xf,
        x,
        (g.batches, h, wd),
        (c, c),
        (fh, fw),
        pad_byte,
        |d, s| d.copy_from_slice(s),
    );
    if !copied {
        return false;
    }
    let xf: &[u8] = xf;
    let steps = (wd.stride * c, c);
    let rows = (g.batches * h.out, h.out);
    let xy = (img, h.stride * row, row);
    let n = wd.out;
    let Some(o) = out.get_mut(..rows.0 * n * c) else {
        return false;
    };
    arch::dw3x3_frame(isa, xf, xy, rows, steps, n, w, p, q.stage(), o)
}

/// One output pixel of the 3x3 kernel on the packed path: up to [`CHUNK`] channels at
/// a time summed by [`arm::ops::dw3x3`] into stack accumulators and requantized, then
/// the `c % 4` last channels by [`tap::pixel_3x3`].
#[inline(never)]
fn pixel_3x3_packed(
    taps: &[&[u8]; 9],
    wide: &[u8],
    recs: &[u8],
    out: &mut [u8],
    q: &OutQ<'_>,
    acc: &mut [i32; CHUNK],
) {
    let c = out.len();
    let c4 = c & !3;
    let mut c0 = 0;
    while c0 < c4 {
        let n = (c4 - c0).min(CHUNK);
        let (Some(ws), Some(rs), Some(os)) = (
            wide.get(c0 / 4 * arm::DW_GROUP..),
            recs.get(c0 * REC3..),
            out.get_mut(c0..c0 + n),
        ) else {
            return;
        };
        let acc = &mut acc[..n];
        arm::ops::dw3x3(taps, c0, ws, acc);
        q.finish_all(acc, rs, REC3, os);
        c0 += n;
    }
    if GENERAL_LINKED && c4 < c {
        pixel_3x3_tail(taps, c4, recs, out, q);
    }
}

/// The `c % 4` last channels of [`pixel_3x3_packed`] by [`tap::pixel_3x3`]: out of line,
/// so the shifted tap list is not in the frame of every pixel.
#[inline(never)]
fn pixel_3x3_tail(taps: &[&[u8]; 9], c4: usize, recs: &[u8], out: &mut [u8], q: &OutQ<'_>) {
    let tail = taps.map(|t| t.get(c4..).unwrap_or(&[]));
    let (Some(rs), Some(os)) = (recs.get(c4 * REC3..), out.get_mut(c4..)) else {
        return;
    };
    tap::pixel_3x3(&tail, rs, os, q);
}

/// One output pixel of the 3x3 kernel on a host SIMD family: up to [`CHUNK`] channels at
/// a time summed by [`arch::dw3x3`] from the `[1, 3, 3, c]` filter `w` into stack
/// accumulators, then requantized with `params` (arrays for the vector epilogue, or the
/// [`REC3`] records).
#[inline(never)]
fn pixel_3x3_simd(
    isa: Isa,
    taps: &[&[u8]; 9],
    w: &[u8],
    params: &Params<'_>,
    out: &mut [u8],
    q: &OutQ<'_>,
    acc: &mut [i32; CHUNK],
) {
    // All channels with the epilogue fused, where the family has that kernel.
    if let Params::Soa(p) = params {
        if arch::dw3x3_fused(isa, taps, w, p, q.stage(), out) {
            return;
        }
    }
    let c = out.len();
    for (i, os) in out.chunks_mut(CHUNK).enumerate() {
        let acc = &mut acc[..os.len()];
        arch::dw3x3(isa, taps, w, c, i * CHUNK, acc);
        q.finish_params(isa, acc, &params.from(i * CHUNK), os);
    }
}

/// Packs an int8 3x3 DEPTHWISE_CONV_2D's (depth multiplier 1) filter and bias for the
/// host kernels (`super::packed::Dw`); `None` for other shapes, f32, a requantization
/// that is not the single-shift kind, or a machine without packed kernels.
#[cfg(any(test, feature = "std"))]
pub(crate) fn pack(
    p: &ConvParams<'_>,
    (xd, wd, od): (&TensorDef<'_>, &TensorDef<'_>, &TensorDef<'_>),
    w: &[u8],
    bias: Option<&[u8]>,
) -> Option<super::packed::Dw> {
    use edgeflow_format::graph::DType;
    let g = geom(p, xd, wd, od).ok()?;
    if !is_3x3(&g) || [xd.dtype, wd.dtype, od.dtype] != [DType::I8; 3] {
        return None;
    }
    super::packed::Dw::new(w, g.in_c, bias, p.requant.as_ref()?, &p.clamp)
}

/// int8 3x3 DEPTHWISE_CONV_2D on packed weights `dw` (from [`pack`] for this op): per
/// output pixel, the nine taps (input pixels, or the zero-point row outside the image)
/// to [`super::packed::Dw::pixel`]. Returns `false`, having written nothing, when `dw`
/// does not match the op (the caller then runs the unpacked kernels).
#[cfg(any(test, feature = "std"))]
pub(crate) fn eval_packed(
    p: &ConvParams<'_>,
    dw: &super::packed::Dw,
    (xd, wd, od): (&TensorDef<'_>, &TensorDef<'_>, &TensorDef<'_>),
    x: &[u8],
    out: &mut [u8],
) -> bool {
    let Ok(g) = geom(p, xd, wd, od) else {
        return false;
    };
    let c = g.in_c;
    if !is_3x3(&g)
        || dw.channels() != c
        || out.len() != g.batches * g.h.out * g.w.out * c
        || x.len() != g.batches * g.h.size * g.w.size * c
    {
        return false;
    }
    let zp = dw.zp();
    let row = g.w.size * c;
    let img = g.h.size * row;
    // Each pixel's output and taps run to the end of their tensors, so that the block
    // kernel reads and writes whole vectors past the last channel (see `Dw::pixel`).
    // 8 or 16 channels, stride and dilation 1 along the row: `r` neighbouring pixels
    // whose windows are inside the row share one block (`Dw::pixels`).
    let r = if g.w.stride == 1 && g.w.dilation == 1 {
        dw.pixels_per_block()
    } else {
        1
    };
    // Stride and dilation 1 along the row: whole output rows, each input column's taps
    // interleaved once for the three pixels that read it (`Dw::row`), where it applies.
    let by_row = g.w.stride == 1 && g.w.dilation == 1;
    // 8 or 16 channels, dilation 1 along the row: the output columns whose windows are
    // inside the row (an interval) as one run of blocks per output row (`Dw::rep_run`).
    let full_x = |ox: usize| {
        let (_, k0, k1) = g.w.window(ox);
        g.w.full(k0, k1)
    };
    let run_cols = (0..g.w.out)
        .find(|&ox| full_x(ox))
        .filter(|_| dw.pixels_per_block() > 1 && g.w.dilation == 1)
        .map(|lo| (lo, (lo..g.w.out).take_while(|&ox| full_x(ox)).count()));
    let mut at = 0;
    for b in 0..g.batches {
        for oy in 0..g.h.out {
            let (iy0, ky0, ky1) = g.h.window(oy);
            let in_rows: [Option<&[u8]>; 3] = core::array::from_fn(|ky| {
                if ky < ky0 || ky >= ky1 {
                    return None;
                }
                let s = b * img + g.h.at(iy0, ky) * row;
                x.get(s..s + row)
            });
            if by_row {
                let rows: [Option<&[u8]>; 3] = core::array::from_fn(|ky| {
                    if ky < ky0 || ky >= ky1 {
                        return None;
                    }
                    let s = b * img + g.h.at(iy0, ky) * row;
                    x.get(s..s + row)
                });
                let n = g.w.out * c;
                if let Some(o) = out.get_mut(at..at + n) {
                    if dw.row(&rows, g.w.size, g.w.pad, o) {
                        at += n;
                        continue;
                    }
                }
            }
            let mut ox = 0;
            while ox < g.w.out {
                let (ix0, kx0, kx1) = g.w.window(ox);
                let Some(o) = out.get_mut(at..) else {
                    return true;
                };
                if let Some((lo, n)) = run_cols.filter(|&(lo, _)| lo == ox) {
                    let done = dw.rep_run(&in_rows, g.w.size, (g.w.stride, ix0 as usize), n, o);
                    if done > 0 {
                        ox = lo + done;
                        at += done * c;
                        continue;
                    }
                }
                if r > 1 && ox + r <= g.w.out && g.w.full(kx0, kx1) {
                    let (_, kx0e, kx1e) = g.w.window(ox + r - 1);
                    if g.w.full(kx0e, kx1e) {
                        let mut taps: [&[u8]; 9] = [zp; 9];
                        for (t, tap) in taps.iter_mut().enumerate() {
                            let (ky, kx) = (t / 3, t % 3);
                            if ky >= ky0 && ky < ky1 {
                                let s = b * img + g.h.at(iy0, ky) * row + g.w.at(ix0, kx) * c;
                                if let Some(v) = x.get(s..) {
                                    *tap = v;
                                }
                            }
                        }
                        if dw.pixels(&taps, o) {
                            ox += r;
                            at += r * c;
                            continue;
                        }
                    }
                }
                // 8 or 16 channels where the taps are not adjacent (stride or dilation
                // along the row, or a window crossing the row's border): the taps of up
                // to `rep` pixels gathered into one block (`Dw::pixels`), not one pixel
                // per 32-lane block.
                let rep = dw.pixels_per_block();
                if rep > 1 {
                    // (Up to the run's first column, which `Dw::rep_run` starts at.)
                    let to = run_cols.map_or(g.w.out, |(lo, _)| if lo > ox { lo } else { g.w.out });
                    let n = rep.min(to - ox);
                    let win = (b * img, row, iy0, ky0, ky1);
                    let done = match c {
                        8 => gathered::<8>(dw, &g, x, win, ox, n, o),
                        16 => gathered::<16>(dw, &g, x, win, ox, n, o),
                        _ => false,
                    };
                    if done {
                        ox += n;
                        at += n * c;
                        continue;
                    }
                }
                let mut taps: [&[u8]; 9] = [zp; 9];
                for (t, tap) in taps.iter_mut().enumerate() {
                    let (ky, kx) = (t / 3, t % 3);
                    if ky >= ky0 && ky < ky1 && kx >= kx0 && kx < kx1 {
                        let s = b * img + g.h.at(iy0, ky) * row + g.w.at(ix0, kx) * c;
                        if let Some(v) = x.get(s..) {
                            *tap = v;
                        }
                    }
                }
                dw.pixel(&taps, o);
                at += c;
                ox += 1;
            }
        }
    }
    true
}

/// Output pixels `ox..ox + n` (`n` at most [`super::packed::Dw::pixels_per_block`]) of
/// one output row of a packed 3x3 depthwise op with `C` (8 or 16) channels, on one block
/// of `Dw::pixels`: each tap's `C` bytes of the `n` pixels copied side by side into a
/// 32-byte row (the input pixel, or the zero point outside the image; the lanes past
/// `n` pixels hold zero points and their outputs are dropped). `win` is the image's
/// first byte, the bytes per input row, and the output row's window along the height
/// (`g.h.window`). Writes `out[..n * C]`; `false` (nothing written) when the block
/// kernel does not apply or `out` is short.
#[cfg(any(test, feature = "std"))]
fn gathered<const C: usize>(
    dw: &super::packed::Dw,
    g: &Geom,
    x: &[u8],
    (img0, row, iy0, ky0, ky1): (usize, usize, isize, usize, usize),
    ox: usize,
    n: usize,
    out: &mut [u8],
) -> bool {
    use super::packed::DW_BLOCK;
    let Some(zp) = dw.zp().first_chunk::<C>() else {
        return false;
    };
    if n == 0 || n * C > DW_BLOCK || out.len() < n * C {
        return false;
    }
    let mut buf = [[0u8; DW_BLOCK]; 9];
    for (j, oxj) in (ox..ox + DW_BLOCK / C).enumerate() {
        let (ix0, kx0, kx1) = if j < n { g.w.window(oxj) } else { (0, 0, 0) };
        for (t, tap) in buf.iter_mut().enumerate() {
            let (ky, kx) = (t / 3, t % 3);
            let src = if ky >= ky0 && ky < ky1 && kx >= kx0 && kx < kx1 {
                let s = img0 + g.h.at(iy0, ky) * row + g.w.at(ix0, kx) * C;
                x.get(s..).and_then(|v| v.first_chunk::<C>()).unwrap_or(zp)
            } else {
                zp
            };
            if let Some(d) = tap.get_mut(j * C..).and_then(|d| d.first_chunk_mut::<C>()) {
                *d = *src;
            }
        }
    }
    let taps: [&[u8]; 9] = core::array::from_fn(|t| &buf[t][..]);
    if n * C == DW_BLOCK {
        if let Some(o) = out.get_mut(..DW_BLOCK) {
            return dw.pixels(&taps, o);
        }
    }
    let mut o = [0u8; DW_BLOCK];
    if !dw.pixels(&taps, &mut o) {
        return false;
    }
    match (out.get_mut(..n * C), o.get(..n * C)) {
        (Some(d), Some(s)) => {
            d.copy_from_slice(s);
            true
        }
        _ => false,
    }
}

/// Any depth multiplier, one output channel at a time over the in-image taps:
/// `bias + sum(w * (x + off))`, as TFLM writes it.
fn general(
    g: &Geom,
    q: &OutQ<'_>,
    off: i32,
    x: &[u8],
    w: &[u8],
    bias: Option<&[u8]>,
    out: &mut [u8],
) {
    let row = g.w.size * g.in_c;
    let img = g.h.size * row;
    let mut out_px = out.chunks_exact_mut(g.out_c);
    for b in 0..g.batches {
        for oy in 0..g.h.out {
            let (iy0, ky0, ky1) = g.h.window(oy);
            for ox in 0..g.w.out {
                let (ix0, kx0, kx1) = g.w.window(ox);
                let Some(o) = out_px.next() else {
                    return;
                };
                let win = Win {
                    img: b * img,
                    row,
                    iy0,
                    ky0,
                    ky1,
                    ix0,
                    kx0,
                    kx1,
                };
                general_pixel(g, &win, x, w, bias, off, q, o);
            }
        }
    }
}

/// One output pixel's window.
struct Win {
    img: usize,
    row: usize,
    iy0: isize,
    ky0: usize,
    ky1: usize,
    ix0: isize,
    kx0: usize,
    kx1: usize,
}

/// One output pixel, any depth multiplier, one output channel at a time.
#[allow(clippy::too_many_arguments)]
fn general_pixel(
    g: &Geom,
    win: &Win,
    x: &[u8],
    w: &[u8],
    bias: Option<&[u8]>,
    off: i32,
    q: &OutQ<'_>,
    out: &mut [u8],
) {
    let oc_n = g.out_c;
    for (oc, (ob, qc)) in out.iter_mut().zip(q.channels(0)).enumerate() {
        let ic = oc / g.mult;
        let mut acc = bias.map_or(0, |b| le_i32(b, oc));
        for ky in win.ky0..win.ky1 {
            let xrow = win.img + g.h.at(win.iy0, ky) * win.row + ic;
            for kx in win.kx0..win.kx1 {
                let xv = x
                    .get(xrow + g.w.at(win.ix0, kx) * g.in_c)
                    .map_or(0, |&v| v as i8 as i32);
                let wv = w
                    .get((ky * g.w.filter + kx) * oc_n + oc)
                    .map_or(0, |&v| v as i8 as i32);
                acc = acc.wrapping_add(xv.wrapping_add(off).wrapping_mul(wv));
            }
        }
        *ob = q.apply(acc, qc);
    }
}

#[inline(always)]
fn eval_f32(g: &Geom, clamp: &Clamp, x: &[u8], w: &[u8], bias: Option<&[u8]>, out: &mut [u8]) {
    let c = g.in_c;
    let row = g.w.size * c;
    let img = g.h.size * row;
    let fw = g.w.filter;
    let mut outs = out.chunks_exact_mut(4);
    for b in 0..g.batches {
        for oy in 0..g.h.out {
            let (iy0, ky0, ky1) = g.h.window(oy);
            for ox in 0..g.w.out {
                let (ix0, kx0, kx1) = g.w.window(ox);
                for oc in 0..g.out_c {
                    let ic = oc / g.mult;
                    let mut total = 0.0f32;
                    for ky in ky0..ky1 {
                        let xrow = b * img + g.h.at(iy0, ky) * row + ic;
                        for kx in kx0..kx1 {
                            let xv = le_f32(x, xrow + g.w.at(ix0, kx) * c);
                            let wv = le_f32(w, (ky * fw + kx) * g.out_c + oc);
                            total += xv * wv;
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

#[cfg(test)]
mod tests {
    extern crate std;
    use std::prelude::rust_2021::*;
    use std::vec;

    use super::*;
    use crate::fixedpoint::multiply_by_quantized_multiplier;
    use crate::kernels::arch::Isa;
    use crate::kernels::testutil::*;
    use crate::kernels::weighted;
    use crate::kernels::{TensorIn, TensorOut};
    use edgeflow_format::graph::Clamp;
    use edgeflow_format::graph::DType;

    fn scratch_bytes(p: &ConvParams<'_>, defs: &[TensorDef<'_>], out: &TensorDef<'_>) -> usize {
        weighted::scratch_bytes(&Depthwise(p), defs, out)
    }

    fn check(
        p: &ConvParams<'_>,
        defs: &[TensorDef<'_>],
        out: &TensorDef<'_>,
        scratch_len: usize,
    ) -> Result<(), &'static str> {
        weighted::check(&Depthwise(p), defs, out, scratch_len)
    }

    fn eval_with(
        p: &ConvParams<'_>,
        inputs: &[TensorIn<'_, '_>],
        output: TensorOut<'_, '_>,
        scratch: &mut [u8],
        isa: Isa,
    ) {
        weighted::eval(&Depthwise(p), inputs, output, scratch, isa);
    }

    /// TFLM's `DepthwiseConvPerChannel`, transcribed loop for loop.
    fn reference_i8(
        p: &ConvParams<'_>,
        defs: &[TensorDef<'_>],
        data: &[Vec<u8>],
        od: &TensorDef<'_>,
    ) -> Vec<u8> {
        let rq = p.requant.as_ref().unwrap();
        let (x, w) = (&data[0], &data[1]);
        let bias = data.get(2);
        let xd = &defs[0];
        let (n, ih, iw, ic_n) = (
            xd.shape.dim(0),
            xd.shape.dim(1),
            xd.shape.dim(2),
            xd.shape.dim(3),
        );
        let (fh, fw, oc_n) = (
            defs[1].shape.dim(1),
            defs[1].shape.dim(2),
            defs[1].shape.dim(3),
        );
        let (oh, ow) = (od.shape.dim(1), od.shape.dim(2));
        let m_n = p.depth_multiplier as usize;
        let nmul = rq.multipliers.len_i32();
        let mut out = vec![0u8; n * oh * ow * oc_n];
        for b in 0..n {
            for oy in 0..oh {
                for ox in 0..ow {
                    for ic in 0..ic_n {
                        for m in 0..m_n {
                            let oc = m + ic * m_n;
                            let x0 = (ox * p.stride[1] as usize) as i64 - p.pad[1] as i64;
                            let y0 = (oy * p.stride[0] as usize) as i64 - p.pad[0] as i64;
                            let mut acc = 0i32;
                            for fy in 0..fh {
                                for fx in 0..fw {
                                    let xx = x0 + (p.dilation[1] as usize * fx) as i64;
                                    let yy = y0 + (p.dilation[0] as usize * fy) as i64;
                                    if xx >= 0 && xx < iw as i64 && yy >= 0 && yy < ih as i64 {
                                        let iv = x[((b * ih + yy as usize) * iw + xx as usize)
                                            * ic_n
                                            + ic]
                                            as i8
                                            as i32;
                                        let fv = w[(fy * fw + fx) * oc_n + oc] as i8 as i32;
                                        acc =
                                            acc.wrapping_add(fv.wrapping_mul(iv + rq.input_offset));
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
        }
        out
    }

    /// TFLM's float `DepthwiseConv`, transcribed.
    fn reference_f32(
        p: &ConvParams<'_>,
        defs: &[TensorDef<'_>],
        data: &[Vec<u8>],
        od: &TensorDef<'_>,
    ) -> Vec<u8> {
        let (x, w) = (&data[0], &data[1]);
        let bias = data.get(2);
        let xd = &defs[0];
        let (n, ih, iw, ic_n) = (
            xd.shape.dim(0),
            xd.shape.dim(1),
            xd.shape.dim(2),
            xd.shape.dim(3),
        );
        let (fh, fw, oc_n) = (
            defs[1].shape.dim(1),
            defs[1].shape.dim(2),
            defs[1].shape.dim(3),
        );
        let (oh, ow) = (od.shape.dim(1), od.shape.dim(2));
        let m_n = p.depth_multiplier as usize;
        let mut out = vec![0u8; n * oh * ow * oc_n * 4];
        for b in 0..n {
            for oy in 0..oh {
                for ox in 0..ow {
                    for ic in 0..ic_n {
                        for m in 0..m_n {
                            let oc = m + ic * m_n;
                            let x0 = (ox * p.stride[1] as usize) as i64 - p.pad[1] as i64;
                            let y0 = (oy * p.stride[0] as usize) as i64 - p.pad[0] as i64;
                            let mut total = 0.0f32;
                            for fy in 0..fh {
                                for fx in 0..fw {
                                    let xx = x0 + (p.dilation[1] as usize * fx) as i64;
                                    let yy = y0 + (p.dilation[0] as usize * fy) as i64;
                                    if xx >= 0 && xx < iw as i64 && yy >= 0 && yy < ih as i64 {
                                        let iv = le_f32(
                                            x,
                                            ((b * ih + yy as usize) * iw + xx as usize) * ic_n + ic,
                                        );
                                        let fv = le_f32(w, (fy * fw + fx) * oc_n + oc);
                                        total += iv * fv;
                                    }
                                }
                            }
                            let bv = bias.map_or(0.0, |bb| le_f32(bb, oc));
                            let v = clamp_f32(total + bv, p.clamp.min_f, p.clamp.max_f);
                            let o = ((b * oh + oy) * ow + ox) * oc_n + oc;
                            out[o * 4..o * 4 + 4].copy_from_slice(&v.to_le_bytes());
                        }
                    }
                }
            }
        }
        out
    }

    struct Case {
        p: ConvParams<'static>,
        defs: Vec<TensorDef<'static>>,
        data: Vec<Vec<u8>>,
        out: TensorDef<'static>,
    }

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

    fn random_case(r: &mut Rng, dtype: DType) -> Option<Case> {
        let n = r.usize(1, 2);
        let (ih, iw) = (r.usize(1, 10), r.usize(1, 10));
        let ic = match r.range(0, 6) {
            0 => r.usize(60, 140),
            // The packed host kernels' several-pixels-per-block channel counts.
            1 => [8, 16][r.usize(0, 1)],
            _ => r.usize(1, 9),
        };
        let m = if r.range(0, 2) == 0 { r.usize(2, 4) } else { 1 };
        let oc = ic * m;
        let (fh, fw) = if r.bool() {
            (3, 3)
        } else {
            (r.usize(1, 4), r.usize(1, 4))
        };
        let (sh, sw) = (r.usize(1, 3), r.usize(1, 3));
        let (dh, dw) = if r.range(0, 3) == 0 {
            (r.usize(1, 3), r.usize(1, 3))
        } else {
            (1, 1)
        };
        let (oh, ph) = out_and_pad(r, ih, fh, sh, dh)?;
        let (ow, pw) = out_and_pad(r, iw, fw, sw, dw)?;
        let (in_zp, out_zp) = (r.range(-128, 127) as i32, r.range(-128, 127) as i32);
        let xd = tensor(
            dtype,
            &[n as u32, ih as u32, iw as u32, ic as u32],
            0.5,
            in_zp,
        );
        let wd = tensor(dtype, &[1, fh as u32, fw as u32, oc as u32], 0.5, 0);
        let od = tensor(
            dtype,
            &[n as u32, oh as u32, ow as u32, oc as u32],
            0.5,
            out_zp,
        );
        let mut p = ConvParams {
            stride: [sh as u16, sw as u16],
            dilation: [dh as u16, dw as u16],
            pad: [ph as u16, pw as u16],
            depth_multiplier: m as u16,
            clamp: Clamp::NONE,
            requant: None,
        };
        let mut defs = vec![xd, wd];
        let mut data;
        if dtype == DType::I8 {
            let mults: Vec<(i32, i32)> = {
                let n = if r.range(0, 3) == 0 { 1 } else { oc };
                r.multipliers(n)
            };
            p.requant = Some(requant(in_zp, out_zp, &mults));
            p.clamp = random_clamp_q(r);
            let mut xb = r.bytes(n * ih * iw * ic);
            if r.range(0, 4) == 0 {
                for v in xb.iter_mut() {
                    *v = if r.bool() { 0x80 } else { 0x7f };
                }
            }
            data = vec![xb, r.bytes(fh * fw * oc)];
            if r.range(0, 3) != 0 {
                let bias: Vec<i32> = (0..oc)
                    .map(|_| {
                        if r.range(0, 5) == 0 {
                            r.u32() as i32
                        } else {
                            r.range(-5000, 5000) as i32
                        }
                    })
                    .collect();
                defs.push(tensor(DType::I32, &[oc as u32], 1.0, 0));
                data.push(i32_bytes(&bias));
            }
        } else {
            p.clamp = random_clamp_f(r);
            data = vec![r.f32_bytes(n * ih * iw * ic), r.f32_bytes(fh * fw * oc)];
            if r.range(0, 3) != 0 {
                defs.push(tensor(DType::F32, &[oc as u32], 1.0, 0));
                data.push(r.f32_bytes(oc));
            }
        }
        Some(Case {
            p,
            defs,
            data,
            out: od,
        })
    }

    fn run_case(c: &Case) -> Vec<u8> {
        run_case_with(c, Isa::Portable)
    }

    specialised_matches_portable!(
        /// The packed 3x3 kernel (`SXTB16` + `SMLABB`/`SMLATT` on Cortex-M4/M7) against
        /// the portable taps, on generated int8 depthwise convolutions (3x3 and others).
        packed_kernels_match_portable {
            seed: 11,
            cases: 1500,
            generate: |r: &mut Rng| random_case(r, DType::I8),
            portable: |c: &Case| run_case_with(c, Isa::Portable),
            specialised: |c: &Case| run_case_with(c, Isa::ArmDsp),
        }
    );

    #[cfg(target_arch = "x86_64")]
    specialised_matches_portable!(
        /// The AVX2 kernels (x86_64 hosts, `arch::x86_64`) against the portable ones.
        avx2_kernels_match_portable {
            seed: 107,
            cases: 1500,
            generate: |r: &mut Rng| random_case(r, DType::I8),
            portable: |c: &Case| run_case_with(c, Isa::Portable),
            specialised: |c: &Case| run_case_with(c, host_isa(Isa::Avx2)),
        }
    );

    #[cfg(target_arch = "aarch64")]
    specialised_matches_portable!(
        /// The NEON kernels (aarch64 hosts, `arch::aarch64`) against the portable ones.
        neon_kernels_match_portable {
            seed: 107,
            cases: 1500,
            generate: |r: &mut Rng| random_case(r, DType::I8),
            portable: |c: &Case| run_case_with(c, Isa::Portable),
            specialised: |c: &Case| run_case_with(c, host_isa(Isa::Neon)),
        }
    );

    #[cfg(target_arch = "aarch64")]
    specialised_matches_portable!(
        /// The NEON kernels with the dot-product extension (`SDOT`) against the portable
        /// ones.
        neon_dot_kernels_match_portable {
            seed: 207,
            cases: 1500,
            generate: |r: &mut Rng| random_case(r, DType::I8),
            portable: |c: &Case| run_case_with(c, Isa::Portable),
            specialised: |c: &Case| run_case_with(c, host_isa(Isa::NeonDot)),
        }
    );

    /// A generated int8 case the packed host kernels take (3x3, depth multiplier 1,
    /// single-shift requantization).
    fn packable_case(r: &mut Rng) -> Option<Case> {
        let c = random_case(r, DType::I8)?;
        let g = geom(&c.p, &c.defs[0], &c.defs[1], &c.out).ok()?;
        let fast = OutQ::new(c.p.requant.as_ref()?, &c.p.clamp).fast;
        (is_3x3(&g) && fast).then_some(c)
    }

    specialised_matches_portable!(
        /// The packed host kernels (`kernels::packed::Dw`: 32 channels per block, taps
        /// interleaved four to a lane, `VPDPBUSD` with AVX-VNNI, else `VPMADDWD`), whole
        /// ops with padding, strides, dilation, channel counts that are not multiples of
        /// 32, extreme inputs and offsets, against the portable kernels.
        packed_weights_match_portable {
            seed: 109,
            cases: 800,
            generate: packable_case,
            portable: |c: &Case| run_case_with(c, Isa::Portable),
            specialised: |c: &Case| {
                // Packed on x86_64 (`packed::Dw`); on aarch64 the epilogue arrays
                // computed once (`PackedOp::DwSoa`, the unpacked NEON kernels) where the
                // NEON kernels are detected (`std`; without it `Isa::detect` is portable).
                let must = cfg!(target_arch = "x86_64")
                    || (cfg!(target_arch = "aarch64") && Isa::detect().host_simd());
                run_packed(&depthwise_op(c), &c.defs, &c.data, &c.out, 1, must)
            },
        }
    );

    #[cfg(target_arch = "x86_64")]
    specialised_matches_portable!(
        /// The same on the AVX2 layout (`i16` weight pairs, `VPMADDWD`), which a CPU
        /// with AVX-VNNI would not choose by itself.
        packed_avx2_layout_matches_portable {
            seed: 110,
            cases: 500,
            generate: packable_case,
            portable: |c: &Case| run_case_with(c, Isa::Portable),
            specialised: |c: &Case| {
                use crate::kernels::packed::{Dw, Packing};
                if !crate::kernels::arch::x86_64::available() {
                    std::println!("SKIPPED: no AVX2; the portable kernels");
                    return run_case_with(c, Isa::Portable);
                }
                let rq = c.p.requant.as_ref().unwrap();
                let bias = c.data.get(2).map(|b| &b[..]);
                let ch = c.defs[0].shape.dim(3);
                let dw = Dw::with_packing(Packing::Avx2, &c.data[1], ch, bias, rq, &c.p.clamp)
                    .expect("packable");
                run(&c.defs, &c.data, &c.out, |i, o| {
                    assert!(eval_packed(&c.p, &dw, (i[0].def, i[1].def, o.def), i[0].data, o.data));
                })
            },
        }
    );

    fn depthwise_op(c: &Case) -> edgeflow_format::graph::Op<'static> {
        edgeflow_format::graph::Op::DepthwiseConv2d(c.p)
    }

    fn run_case_with(c: &Case, isa: Isa) -> Vec<u8> {
        let sb = scratch_bytes(&c.p, &c.defs, &c.out);
        check(&c.p, &c.defs, &c.out, sb).expect("check");
        let mut scratch = vec![0x5Au8; sb];
        run(&c.defs, &c.data, &c.out, |i, o| {
            eval_with(&c.p, i, o, &mut scratch, isa)
        })
    }

    #[test]
    fn int8_matches_reference_on_random_cases() {
        let mut r = Rng::new(11);
        let mut done = 0;
        while done < 1500 {
            let Some(c) = random_case(&mut r, DType::I8) else {
                continue;
            };
            assert_eq!(
                run_case(&c),
                reference_i8(&c.p, &c.defs, &c.data, &c.out),
                "case {done}: {:?}",
                c.p
            );
            done += 1;
        }
    }

    #[test]
    fn f32_matches_reference_on_random_cases() {
        let mut r = Rng::new(12);
        let mut done = 0;
        while done < 600 {
            let Some(c) = random_case(&mut r, DType::F32) else {
                continue;
            };
            assert_eq!(
                run_case(&c),
                reference_f32(&c.p, &c.defs, &c.data, &c.out),
                "case {done}"
            );
            done += 1;
        }
    }

    #[test]
    fn hand_computed_int8_m2() {
        // 1x2x2x1 input (zp 1) -> values 0,1,2,3; 2x2 filter, M = 2; VALID -> 1x1x1x2.
        let x: Vec<u8> = [1i8, 2, 3, 4].iter().map(|&v| v as u8).collect();
        // taps (0,0),(0,1),(1,0),(1,1), each [m0, m1]
        let w: Vec<u8> = [1i8, 2, 1, 2, 1, 2, 1, -2]
            .iter()
            .map(|&v| v as u8)
            .collect();
        let (m, s) = crate::fixedpoint::quantize_multiplier(0.25);
        let p = ConvParams {
            stride: [1, 1],
            dilation: [1, 1],
            pad: [0, 0],
            depth_multiplier: 2,
            clamp: Clamp::NONE,
            requant: Some(requant(1, 0, &[(m, s)])),
        };
        let defs = vec![
            tensor(DType::I8, &[1, 2, 2, 1], 1.0, 1),
            tensor(DType::I8, &[1, 2, 2, 2], 1.0, 0),
            tensor(DType::I32, &[2], 1.0, 0),
        ];
        let out = tensor(DType::I8, &[1, 1, 1, 2], 1.0, 0);
        let c = Case {
            p,
            defs,
            data: vec![x, w, i32_bytes(&[10, -3])],
            out,
        };
        let got: Vec<i8> = run_case(&c).into_iter().map(|v| v as i8).collect();
        // m0: 0+1+2+3 + 10 = 16 -> 4; m1: 0+2+4-6 - 3 = -3 -> -0.75 -> -1.
        assert_eq!(got, vec![4, -1]);
    }

    #[test]
    fn check_rejects_bad_ops() {
        let mut r = Rng::new(13);
        let c = loop {
            if let Some(c) = random_case(&mut r, DType::I8) {
                break c;
            }
        };
        let sb = scratch_bytes(&c.p, &c.defs, &c.out);
        assert!(check(&c.p, &c.defs, &c.out, sb).is_ok());
        assert!(check(&c.p, &c.defs, &c.out, sb - 1).is_err());
        let mut p = c.p;
        p.depth_multiplier += 1;
        assert!(check(&p, &c.defs, &c.out, sb * 4).is_err());
        let mut p = c.p;
        p.depth_multiplier = 0;
        assert!(check(&p, &c.defs, &c.out, sb).is_err());
        let mut defs = c.defs.clone();
        defs[1].shape.dims[0] = 2;
        assert!(check(&c.p, &defs, &c.out, sb).is_err());
        let mut p = c.p;
        p.dilation = [1, 0];
        assert!(check(&p, &c.defs, &c.out, sb).is_err());
        let mut out = c.out;
        out.shape.dims[2] += 4;
        assert!(check(&c.p, &c.defs, &out, sb).is_err());
    }

    #[test]
    fn eval_never_panics_after_check() {
        let mut r = Rng::new(14);
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
                    _ => c.p.depth_multiplier = r.range(0, 4) as u16,
                }
            }
            let sb = scratch_bytes(&c.p, &c.defs, &c.out);
            if check(&c.p, &c.defs, &c.out, sb).is_err() {
                continue;
            }
            let data = fuzz_data(&mut r, &c.defs);
            let mut scratch = vec![0u8; sb + r.usize(0, 8)];
            for isa in [Isa::Portable, Isa::ArmDsp]
                .into_iter()
                .chain(Isa::HOST.into_iter().filter(|i| i.runs_here()))
            {
                run(&c.defs, &data, &c.out, |i, o| {
                    eval_with(&c.p, i, o, &mut scratch, isa)
                });
            }
            evaluated += 1;
        }
        assert!(evaluated > 300, "{evaluated}");
    }
}
