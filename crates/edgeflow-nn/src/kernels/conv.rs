//! CONV_2D, int8 (per-channel requantization) and f32, matching TFLM's reference
//! `ConvPerChannel` / `Conv` bit for bit (int8) and in accumulation order (f32).
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

use edgeflow_format::graph::{Clamp, ConvParams, Requant, TensorDef};

use super::arch::arm_dsp::{self as arm, widen, Lane};
use super::arch::{self, Isa};
use super::epilogue::{OutQ, Params, REC};
use super::generic::dot;
use super::generic::elem::{acc_block, acc_block_bytes, clamp_f32, f32_of, le_f32, le_i32};
use super::generic::requant::Soa;
use super::generic::window::Axis;
use super::weighted::Weighted;

// ---------------------------------------------------------------------------------------
// CONV_2D
// ---------------------------------------------------------------------------------------

/// Validated CONV_2D geometry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geom {
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

/// Whether grouped convolutions (input depth a multiple > 1 of the filter depth) can run:
/// they take [`conv_generic`], which the Cortex-M4 build otherwise never calls (its
/// ungrouped convolutions take [`conv_pairs`]). A DSP build with
/// `EDGEFLOW_NN_GROUPED_CONV=0` (build.rs) leaves `conv_generic` out, and [`geom`] then
/// rejects grouped convolutions; every other build links it.
const GROUPED_LINKED: bool = !cfg!(all(edgeflow_arm_dsp, not(edgeflow_grouped_conv)));

fn geom(
    p: &ConvParams<'_>,
    x: &TensorDef<'_>,
    w: &TensorDef<'_>,
    out: &TensorDef<'_>,
) -> Result<Geom, &'static str> {
    if x.shape.rank != 4 || w.shape.rank != 4 || out.shape.rank != 4 {
        return Err(why!(
            "conv.rs",
            "input, filter and output must be rank 4 (NHWC, OHWI)"
        ));
    }
    let batches = x.shape.dim(0);
    if out.shape.dim(0) != batches {
        return Err(why!("conv.rs", "input and output batch sizes differ"));
    }
    let (in_c, out_c, f_c) = (x.shape.dim(3), w.shape.dim(0), w.shape.dim(3));
    if out.shape.dim(3) != out_c {
        return Err(why!(
            "conv.rs",
            "output depth differs from the number of filters"
        ));
    }
    if f_c == 0 || in_c % f_c != 0 {
        return Err(why!(
            "conv.rs",
            "input depth is not a multiple of the filter depth"
        ));
    }
    let groups = in_c / f_c;
    if groups == 0 || out_c % groups != 0 {
        return Err(why!(
            "conv.rs",
            "output depth is not a multiple of the number of groups"
        ));
    }
    if groups != 1 && !GROUPED_LINKED {
        return Err("grouped CONV_2D is not linked into this build (EDGEFLOW_NN_GROUPED_CONV=0 at build time)");
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
        .ok_or(why!("conv.rs", "filter too large"))?;
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

/// CONV_2D as a [`Weighted`] op (checked, planned and run by [`super::weighted`]).
pub(crate) struct Conv<'p, 'a>(pub(crate) &'p ConvParams<'a>);

impl Weighted for Conv<'_, '_> {
    type Geom = Geom;
    const ARITY: &'static str = why!(
        "conv.rs",
        "CONV_2D takes input, filter and an optional bias"
    );
    fn geom(
        &self,
        x: &TensorDef<'_>,
        w: &TensorDef<'_>,
        out: &TensorDef<'_>,
    ) -> Result<Geom, &'static str> {
        if self.0.depth_multiplier != 1 {
            return Err(why!("conv.rs", "CONV_2D depth multiplier must be 1"));
        }
        geom(self.0, x, w, out)
    }
    fn channels(g: &Geom) -> usize {
        g.out_c
    }
    /// int8 needs one [`REC`]-byte epilogue record per output channel, one patch of `k`
    /// bytes and, without groups, a pair of q15 columns for the packed kernels
    /// ([`pairs_bytes`]; sized on every target, so the host plans for the device).
    fn int8_scratch(g: &Geom) -> usize {
        g.out_c
            .saturating_mul(REC)
            .saturating_add(g.k)
            .saturating_add(pairs_bytes(g))
            .saturating_add(pair_acc_bytes(g))
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

/// Bytes of the interleaved column pair of the packed path (none with groups, which
/// keeps the portable path).
fn pairs_bytes(g: &Geom) -> usize {
    if g.in_c == g.f_c {
        arm::col_bytes(g.k).saturating_mul(2)
    } else {
        0
    }
}

/// Bytes of the two accumulator blocks of [`conv_pairs`] (one per pixel of a pair,
/// [`OUT_BLOCK`] channels each; [`acc_block_bytes`]), planned in the arena rather than
/// kept on the stack; none with groups, like [`pairs_bytes`].
fn pair_acc_bytes(g: &Geom) -> usize {
    if g.in_c == g.f_c {
        acc_block_bytes(OUT_BLOCK).saturating_mul(2)
    } else {
        0
    }
}

/// int8 CONV_2D on the inner kernels of `isa`: [`Isa::ArmDsp`] selects the packed 16-bit
/// kernels ([`super::arch::arm_dsp`]) for ungrouped convolutions (on the host only in
/// tests: the instructions are emulated); otherwise every patch goes through
/// [`arch::dot_rows`] (AVX2 / NEON on hosts that have them, else the portable dot
/// products).
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
    let k = g.k;
    if k == 0 || g.per_group == 0 {
        return;
    }
    let q = OutQ::new(rq, clamp);
    let ab = pair_acc_bytes(g);
    let Some(scratch) = scratch.get_mut(..g.out_c * REC + k + pairs_bytes(g) + ab) else {
        return;
    };
    // Records, then the column pair (word aligned when the scratch is: records are 12
    // bytes each), then the pair's accumulator blocks, then the patch.
    let (recs, rest) = scratch.split_at_mut(g.out_c * REC);
    let (cols, rest) = rest.split_at_mut(pairs_bytes(g));
    let (accs, patch) = rest.split_at_mut(ab);
    let off = rq.input_offset;
    // Per output channel: bias + off * sum(filter row), and the requantization.
    let mut rows = w.chunks_exact(k);
    let fold = |oc| {
        let b = bias.map_or(0, |b| le_i32(b, oc));
        let s = rows.next().map_or(0, dot::sum);
        b.wrapping_add(off.wrapping_mul(s))
    };
    // Host SIMD with the single-shift requantization: parameters as arrays (vector
    // epilogue); otherwise one record per channel.
    let soa = isa.host_simd() && q.fast;
    if soa {
        q.write_soa(recs, g.out_c, 0, fold);
    } else {
        // Out of line: the records loop's temporaries are not in the frame the pixel
        // loop runs under.
        super::outlined(|| q.write_records(recs, REC, 0, fold));
    }
    let recs: &[u8] = recs;
    let params = if soa {
        Params::Soa(Soa::new(recs, g.out_c))
    } else {
        Params::Recs(recs, REC)
    };
    let pad_byte = (-off) as i8 as u8;
    let groups = g.in_c / g.f_c;
    if isa == Isa::ArmDsp && groups == 1 {
        // The two accumulator blocks, in scratch (see `pair_acc_bytes`).
        let (acc_a, acc_b) = accs.split_at_mut(acc_block_bytes(OUT_BLOCK).min(accs.len()));
        let (Some(acc_a), Some(acc_b)) =
            (acc_block::<OUT_BLOCK>(acc_a), acc_block::<OUT_BLOCK>(acc_b))
        else {
            return;
        };
        conv_pairs(&mut PairJob {
            g,
            q: &q,
            x,
            w,
            recs,
            cols,
            patch,
            acc_a,
            acc_b,
            out,
            pad_byte,
            pointwise: false,
        });
        return;
    }
    if !GROUPED_LINKED {
        return; // grouped (a DSP build, so `isa` is `ArmDsp`): rejected by `geom`
    }
    conv_generic(g, &q, isa, (x, w), &params, patch, pad_byte, out);
}

/// int8 CONV_2D one output pixel (and group) at a time: the receptive field in place or
/// gathered into `patch`, then [`conv_channels`]. Its own frame (never inlined), so its
/// locals and accumulator block do not sit in the op dispatch's frame under the other
/// kernels (on Cortex-M4 an ungrouped convolution takes [`conv_pairs`] instead).
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn conv_generic(
    g: &Geom,
    q: &OutQ<'_>,
    isa: Isa,
    (x, w): (&[u8], &[u8]),
    params: &Params<'_>,
    patch: &mut [u8],
    pad_byte: u8,
    out: &mut [u8],
) {
    let k = g.k;
    let groups = g.in_c / g.f_c;
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
                    let (Some(wg), Some(og)) = (
                        w.get(oc0 * k..(oc0 + g.per_group) * k),
                        o.get_mut(oc0..oc0 + g.per_group),
                    ) else {
                        return;
                    };
                    conv_channels(isa, pt, wg, k, &params.from(oc0), og, q);
                }
            }
        }
    }
}

/// What [`conv_pairs`] and the functions it calls work on, built once per call in the
/// op's frame and passed by reference: the pixel loop then holds a pointer and a pixel
/// index across its calls instead of a dozen slices (each spilled to its own frame and
/// passed again as stack arguments to every call; peak stack, BENCHMARKS.md (h3)).
struct PairJob<'j, 'a> {
    g: &'j Geom,
    q: &'j OutQ<'a>,
    /// Input image(s), NHWC int8.
    x: &'a [u8],
    /// Filter, OHWI int8 (`out_c` rows of `k` bytes).
    w: &'a [u8],
    /// The [`REC`]-byte epilogue records, one per output channel.
    recs: &'a [u8],
    /// The interleaved q15 column pair: `k / 4` [`arm::PAIR`]-byte groups, then lane
    /// A's (or the single column's) tail, then lane B's (`2 * (k % 4)` bytes each).
    cols: &'j mut [u8],
    /// The gathered int8 patch of one pixel (`k` bytes).
    patch: &'j mut [u8],
    /// Accumulators of the pair's two pixels, one block of output channels.
    acc_a: &'j mut [i32; OUT_BLOCK],
    acc_b: &'j mut [i32; OUT_BLOCK],
    /// Output, NHWC int8.
    out: &'j mut [u8],
    /// The input zero point as a byte (out-of-image taps).
    pad_byte: u8,
    /// A 1x1 filter, stride 1 and no padding: output pixel `p`'s field is input pixel
    /// `p` (`k == in_c` bytes at `p * k`), taken without the window arithmetic (set by
    /// [`conv_pairs`]).
    pointwise: bool,
}

/// Ungrouped int8 CONV_2D on the packed 16-bit kernels: output pixels two at a time, each
/// pixel's receptive field (the input in place, or a gathered patch) widened into one
/// lane of an interleaved q15 column pair, then two output channels per kernel call
/// (2x2 blocking: each weight word is unpacked once for two pixels, each column word
/// used for two channels). An odd last pixel takes a single column.
#[inline(never)]
fn conv_pairs(j: &mut PairJob<'_, '_>) {
    let g = j.g;
    j.pointwise = g.h.filter == 1
        && g.w.filter == 1
        && g.h.stride == 1
        && g.w.stride == 1
        && g.h.pad == 0
        && g.w.pad == 0
        && g.h.out == g.h.size
        && g.w.out == g.w.size;
    let pixels = g.batches * g.h.out * g.w.out;
    let mut p = 0;
    while p < pixels {
        let pair = p + 1 < pixels;
        // The size-class build widens an odd last pixel into lane A too and runs it on
        // `block_2` (lane B's stale values give sums that are not used): `block_1`'s frame
        // at opt-level "s" made that the deepest chain (BENCHMARKS.md, footprint (j2)).
        let lane = if pair || cfg!(edgeflow_size) {
            Lane::A
        } else {
            Lane::Single
        };
        if !widen_field(j, p, lane) || pair && !widen_field(j, p + 1, Lane::B) {
            return;
        }
        if !pair_channels(j, p, pair) {
            return;
        }
        p += 2;
    }
}

/// Every output channel of pixel `p` (and `p + 1` if `pair`) from the widened column(s)
/// in `j.cols`, [`OUT_BLOCK`] channels per kernel call, each block requantized into the
/// output. `false` only for ranges out of bounds (excluded by `check`).
#[inline(always)]
fn pair_channels(j: &mut PairJob<'_, '_>, p: usize, pair: bool) -> bool {
    let (k, out_c) = (j.g.k, j.g.out_c);
    let mut c0 = 0;
    while c0 < out_c {
        let n = (out_c - c0).min(OUT_BLOCK);
        let (Some(wb), Some(rb)) = (
            j.w.get(c0 * k..(c0 + n) * k),
            j.recs.get(c0 * REC..(c0 + n) * REC),
        ) else {
            return false;
        };
        let oa = p * out_c + c0;
        if pair || cfg!(edgeflow_size) {
            arm::block_2(j.cols, wb, k, &mut j.acc_a[..n], &mut j.acc_b[..n]);
        } else {
            arm::block_1(j.cols, wb, k, &mut j.acc_a[..n]);
        }
        let Some(o) = j.out.get_mut(oa..oa + n) else {
            return false;
        };
        finish_block(&j.acc_a[..n], rb, o, j.q);
        if pair {
            let ob = oa + out_c;
            let Some(o) = j.out.get_mut(ob..ob + n) else {
                return false;
            };
            finish_block(&j.acc_b[..n], rb, o, j.q);
        }
        c0 += n;
    }
    true
}

/// Widens output pixel `p`'s receptive field (ungrouped, `k` values in OHWI tap order,
/// out-of-image taps set to the input zero point `j.pad_byte`) into `lane` of the column
/// pair `j.cols`: from the input in place for a pointwise convolution; row by row from
/// the input when the channel count is a multiple of 4 and the filter is not dilated
/// along the width ([`widen_rows`]: every run then fills whole groups); otherwise via
/// the gathered int8 patch ([`widen_gathered`]). Each
/// path is a function of its own, so the deepest (a row's padding under `widen_rows`)
/// does not carry the others' locals. `false` only for ranges out of bounds (excluded by
/// `check`).
#[inline(always)]
fn widen_field(j: &mut PairJob<'_, '_>, p: usize, lane: Lane) -> bool {
    if j.pointwise {
        widen_pointwise(j, p, lane)
    } else if j.g.in_c.is_multiple_of(4) && (j.g.w.dilation == 1 || j.g.w.filter == 1) {
        widen_rows(j, p, lane)
    } else {
        widen_gathered(j, p, lane)
    }
}

/// [`widen_field`] for a pointwise convolution: input pixel `p`, in place.
#[inline(never)]
fn widen_pointwise(j: &mut PairJob<'_, '_>, p: usize, lane: Lane) -> bool {
    let (g, x) = (j.g, j.x);
    let (cg, t) = lane_cols(j.cols, g.k, lane);
    let start = p * g.k;
    match x.get(start..start + g.k) {
        Some(s) => {
            widen(s, 0, cg, lane, t);
            true
        }
        None => false,
    }
}

/// `lane`'s part of the column pair `cols` of `k` values: the groups (all `k / 4` of
/// them, interleaved with the other lane's unless `lane` is [`Lane::Single`]) and the
/// lane's tail (`2 * (k % 4)` bytes: lane A's, or the single column's, then lane B's).
#[inline(always)]
fn lane_cols(cols: &mut [u8], k: usize, lane: Lane) -> (&mut [u8], &mut [u8]) {
    let (n4, r) = (k / 4, k % 4);
    let (cg, ct) = cols.split_at_mut((n4 * lane.pitch()).min(cols.len()));
    let (ta, tb) = ct.split_at_mut((2 * r).min(ct.len()));
    (cg, if lane == Lane::B { tb } else { ta })
}

/// Output pixel `p`'s window: the byte offset of its batch image, then per axis the
/// first tap's input coordinate and the range of taps inside the input
/// ([`Axis::window`]).
#[inline(always)]
fn field_window(g: &Geom, p: usize) -> (usize, (isize, usize, usize), (isize, usize, usize)) {
    let per_img = g.h.out * g.w.out;
    let (b, rem) = (p / per_img, p % per_img);
    let (oy, ox) = (rem / g.w.out, rem % g.w.out);
    let img = b * g.h.size * g.w.size * g.in_c;
    (img, g.h.window(oy), g.w.window(ox))
}

/// [`widen_field`] for a channel count that is a multiple of 4 and no dilation along
/// the width: the filter rows outside the image as padding, each row inside it as
/// padding before and after the run of taps inside the image (adjacent in the input),
/// widened from the input in place.
#[inline(never)]
fn widen_rows(j: &mut PairJob<'_, '_>, p: usize, lane: Lane) -> bool {
    let (g, x, pad_byte) = (j.g, j.x, j.pad_byte);
    let (cg, _) = lane_cols(j.cols, g.k, lane);
    let (img, (iy0, ky0, ky1), (ix0, kx0, kx1)) = field_window(g, p);
    let c = g.in_c;
    let row_bytes = g.w.size * c;
    let pad = i16::from(pad_byte as i8);
    let tap = c / 4 * lane.pitch();
    let rg_len = g.w.filter * tap;
    // The filter rows above and below the image as one padding run each, then the
    // rows inside it; empty runs are skipped (no call).
    let (top, rest) = cg.split_at_mut((ky0 * rg_len).min(cg.len()));
    let (inside, bottom) = rest.split_at_mut(((ky1 - ky0) * rg_len).min(rest.len()));
    if !top.is_empty() {
        arm::fill(top, lane, pad);
    }
    let bottom = bottom
        .get_mut(..(g.h.filter - ky1) * rg_len)
        .unwrap_or_default();
    if !bottom.is_empty() {
        arm::fill(bottom, lane, pad);
    }
    if ky1 == ky0 {
        return true;
    }
    let mut row = img + g.h.at(iy0, ky0) * row_bytes;
    let row_step = g.h.dilation * row_bytes;
    // Per row: padding before and after (if any), the run of `kx1 - kx0` taps from the
    // input between them.
    let (pre, run) = (kx0 * tap, (kx1 - kx0) * tap);
    let src = (kx1 - kx0) * c;
    let col = if kx1 > kx0 { g.w.at(ix0, kx0) * c } else { 0 };
    for rg in inside.chunks_mut(rg_len) {
        let (before, rest) = rg.split_at_mut(pre.min(rg.len()));
        let (mid, after) = rest.split_at_mut(run.min(rest.len()));
        if !before.is_empty() {
            arm::fill(before, lane, pad);
        }
        if !after.is_empty() {
            arm::fill(after, lane, pad);
        }
        if src > 0 {
            let start = row + col;
            match x.get(start..start + src) {
                Some(s) => widen(s, 0, mid, lane, &mut []),
                None => return false,
            }
        }
        row = row.wrapping_add(row_step);
    }
    true
}

/// [`widen_field`] for a channel count that is not a multiple of 4 (a first layer's 1-3
/// channels) or a filter dilated along the width: the input in place when the window is inside the image and one
/// contiguous run (1xN filters), otherwise the patch gathered into `j.patch`, widened.
/// The window arithmetic and the gather run in [`field_source`], a frame of its own
/// popped before `widen` runs.
#[inline(never)]
fn widen_gathered(j: &mut PairJob<'_, '_>, p: usize, lane: Lane) -> bool {
    let k = j.g.k;
    let src = match field_source(j, p) {
        Source::InPlace(start) => j.x.get(start..start + k),
        Source::Patch => Some(&*j.patch),
        Source::OutOfBounds => None,
    };
    let Some(src) = src else {
        return false;
    };
    let (cg, t) = lane_cols(j.cols, k, lane);
    widen(src, 0, cg, lane, t);
    true
}

/// Where [`field_source`] left output pixel's receptive field.
enum Source {
    /// In the input, `k` bytes from this offset.
    InPlace(usize),
    /// In `j.patch`, gathered.
    Patch,
    /// A range out of bounds (excluded by `check`).
    OutOfBounds,
}

/// Output pixel `p`'s receptive field (ungrouped): in place when the window is inside
/// the image and one contiguous run (1xN filters), otherwise gathered into `j.patch`.
#[inline(never)]
fn field_source(j: &mut PairJob<'_, '_>, p: usize) -> Source {
    let (g, x, pad_byte) = (j.g, j.x, j.pad_byte);
    let (img, (iy0, ky0, ky1), (ix0, kx0, kx1)) = field_window(g, p);
    let c = g.in_c;
    let row_bytes = g.w.size * c;
    let direct_ok = g.h.filter == 1 && (g.w.filter == 1 || g.w.dilation == 1);
    let full = g.h.full(ky0, ky1) && g.w.full(kx0, kx1);
    if direct_ok && full {
        return Source::InPlace(img + g.h.at(iy0, 0) * row_bytes + g.w.at(ix0, 0) * c);
    }
    let dims = Gather {
        img,
        row_bytes,
        groups: 1,
        grp: 0,
        pad_byte,
    };
    if gather(g, &dims, x, j.patch, (iy0, ky0, ky1), (ix0, kx0, kx1)) {
        Source::Patch
    } else {
        Source::OutOfBounds
    }
}

/// `out[j] = finish(acc[j])` with the [`REC`]-byte records of consecutive channels.
#[inline(never)]
fn finish_block(acc: &[i32], recs: &[u8], out: &mut [u8], q: &OutQ<'_>) {
    q.finish_all(acc, recs, REC, out);
}

/// Output channels accumulated per block before requantizing them (stack accumulators).
const OUT_BLOCK: usize = 32;

/// Computes `out[j] = requant(fold[j] + dot(patch, w_j))` for consecutive output channels
/// (`params` holds their epilogue parameters): per block of channels, first the dot products
/// ([`arch::dot_rows`] on `isa`) into stack accumulators, then the requantization in a
/// separate tight loop (keeps register pressure low in both).
#[inline(always)]
fn conv_channels(
    isa: Isa,
    patch: &[u8],
    w: &[u8],
    k: usize,
    params: &Params<'_>,
    out: &mut [u8],
    q: &OutQ<'_>,
) {
    let mut acc = [0i32; OUT_BLOCK];
    for (i, (wb, ob)) in w
        .chunks(OUT_BLOCK * k)
        .zip(out.chunks_mut(OUT_BLOCK))
        .enumerate()
    {
        let acc = &mut acc[..ob.len()];
        arch::dot_rows(isa, patch, wb, k, acc);
        q.finish_params(isa, acc, &params.from(i * OUT_BLOCK), ob);
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

/// `d.copy_from_slice(s)` for the short runs of a patch row (a first layer's 1-3
/// channels times the filter width), as a byte loop kept out of `memcpy`: the empty
/// `black_box` in the loop is a side effect the compiler cannot turn into a `memcpy`
/// call, whose 92 B frame was the deepest on the Cortex-M conv path (BENCHMARKS.md
/// (h2)). Copies `min(d.len(), s.len())` bytes (the caller passes equal lengths).
#[inline(always)]
fn copy_short(d: &mut [u8], s: &[u8]) {
    for (d, &s) in d.iter_mut().zip(s) {
        *d = s;
        core::hint::black_box(());
    }
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
                    Some(s) => copy_short(mid, s),
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

// ---------------------------------------------------------------------------------------
// Host only: packed weights (see `super::packed`)
// ---------------------------------------------------------------------------------------

/// Multiply-accumulates below which an op is not split over threads (handing a part to
/// a pool thread and waiting for it costs several microseconds).
#[cfg(all(not(test), feature = "std"))]
const PARALLEL_MIN_MACS: usize = 1 << 20;
/// Tests split every op they ask to split (every op has at least one).
#[cfg(test)]
const PARALLEL_MIN_MACS: usize = 1;

/// Packs an ungrouped int8 CONV_2D's filters (`w`, OHWI) and bias for the host kernels;
/// `None` for f32, grouped convolutions, shapes that do not check, or a machine without
/// packed kernels.
#[cfg(any(test, feature = "std"))]
pub(crate) fn pack(
    p: &ConvParams<'_>,
    defs: (&TensorDef<'_>, &TensorDef<'_>, &TensorDef<'_>),
    w: &[u8],
    bias: Option<&[u8]>,
) -> Option<super::packed::Gemm> {
    let (xd, wd, od) = defs;
    let g = Conv(p).geom(xd, wd, od).ok()?;
    if od.dtype != edgeflow_format::graph::DType::I8 || g.in_c != g.f_c {
        return None;
    }
    let gm = super::packed::Gemm::new(w, g.k, g.out_c, bias, p.requant.as_ref()?, &p.clamp)?;
    // Depth padded to a multiple of 4 (zero weights), so that the windows are read in
    // place as `filter_h` pieces by the indirect kernel instead of gathered pixel by pixel.
    if let Some(c4) = padded_depth(&g).filter(|_| gm.reads_taps()) {
        let taps = g.h.filter * g.w.filter;
        let mut w4 = std::vec![0u8; g.out_c * taps * c4];
        for (d, s) in w4.chunks_exact_mut(c4).zip(w.chunks_exact(g.in_c)) {
            d[..g.in_c].copy_from_slice(s);
        }
        let padded =
            super::packed::Gemm::new(&w4, taps * c4, g.out_c, bias, p.requant.as_ref()?, &p.clamp);
        return padded.filter(|pm| pm.reads_taps()).or(Some(gm));
    }
    Some(gm)
}

/// The input depth to which the host path pads a convolution's input and filters (the
/// next multiple of 4; zero weights on the added channels) when that lets the indirect
/// kernel read its windows in place: filters of 2..=[`MAX_PIECES`] rows, taps adjacent
/// along the row, a filter row of `filter_w * in_c` bytes that is not a multiple of 4
/// (e.g. the 3-channel first layers of image models), and at most 4/3 the
/// multiply-accumulates. `None` otherwise.
#[cfg(any(test, feature = "std"))]
fn padded_depth(g: &Geom) -> Option<usize> {
    let c4 = g.in_c.next_multiple_of(4);
    let fits = g.in_c == g.f_c
        && c4 != g.in_c
        && 3 * c4 <= 4 * g.in_c
        && g.w.dilation == 1
        && (2..=MAX_PIECES).contains(&g.h.filter)
        && !(g.w.filter * g.in_c).is_multiple_of(4);
    fits.then_some(c4)
}

/// int8 CONV_2D on packed weights `gm` (from [`pack`] for this op): output pixels
/// [`super::packed::TILE`] at a time, each pixel's receptive field copied or gathered
/// into a row of `work` (grown as needed), split by output pixels over up to `threads`
/// threads of rayon's pool when the op is large (each part writes its own pixels, so the
/// result does not depend on the split). Returns `false`, having written nothing, when `gm` does not
/// match the op (the caller then runs the unpacked kernels).
#[cfg(any(test, feature = "std"))]
pub(crate) fn eval_packed(
    p: &ConvParams<'_>,
    gm: &super::packed::Gemm,
    (xd, wd, od): (&TensorDef<'_>, &TensorDef<'_>, &TensorDef<'_>),
    x: &[u8],
    out: &mut [u8],
    work: &mut std::vec::Vec<u8>,
    threads: usize,
) -> bool {
    let Ok(g) = Conv(p).geom(xd, wd, od) else {
        return false;
    };
    let Some(rq) = p.requant.as_ref() else {
        return false;
    };
    let pixels = g.batches * g.h.out * g.w.out;
    // The depth the weights were packed for: the input's, or padded ([`pack`]).
    let c4 = match padded_depth(&g) {
        Some(c4) if gm.k() != g.k && gm.k() == g.h.filter * g.w.filter * c4 => c4,
        _ => g.in_c,
    };
    let in_pixels = g.batches * g.h.size * g.w.size;
    if g.in_c != g.f_c
        || g.h.filter * g.w.filter * c4 != gm.k()
        || g.out_c != gm.oc()
        || out.len() != pixels * g.out_c
        || x.len() != in_pixels * g.in_c
    {
        return false;
    }
    let q = OutQ::new(rq, &p.clamp);
    // The kernel's form of the input (`x XOR 0x80` for VNNI), made once per op: rows are
    // then read from it in place or gathered from it, never transformed per pixel.
    let flip = gm.flip();
    let pad_byte = ((-rq.input_offset) as i8 as u8) ^ flip;
    let per_thread = super::packed::TILE * gm.row_bytes();
    let macs = pixels.saturating_mul(gm.k()).saturating_mul(g.out_c);
    let threads = if macs >= PARALLEL_MIN_MACS {
        threads.clamp(1, pixels.div_ceil(super::packed::TILE).max(1))
    } else {
        1
    };
    // Windows read in place by the indirect kernel: the input is then copied with its
    // zero-point padding around it (once per op, with the flip and the depth padding), so
    // that every window is inside the copy and no pixel is gathered at the border.
    // Undilated windows only: with a dilated height the padded copy would grow with the
    // dilation (a hostile artifact could ask for gigabytes), not with the output.
    let in_place = gm.reads_taps()
        && g.w.dilation == 1
        && g.h.dilation == 1
        && (g.w.filter * c4).is_multiple_of(4)
        && (2..=MAX_PIECES).contains(&g.h.filter);
    let padded = |a: Axis| Axis {
        size: a.framed(),
        pad: 0,
        ..a
    };
    let (h2, w2) = if in_place {
        (padded(g.h), padded(g.w))
    } else {
        (g.h, g.w)
    };
    let reshaped = c4 != g.in_c
        || h2.size != g.h.size
        || w2.size != g.w.size
        || h2.pad != g.h.pad
        || w2.pad != g.w.pad;
    let xin_len = if flip == 0 && !reshaped {
        0
    } else {
        g.batches * h2.size * w2.size * c4
    };
    if work.len() < xin_len + threads * per_thread {
        work.resize(xin_len + threads * per_thread, 0);
    }
    let (xin, work) = work.split_at_mut(xin_len);
    let x: &[u8] = if xin_len == 0 {
        x
    } else if !reshaped {
        // The rest after the vector part as slices from `done` on (see the framed copy
        // below for why not `zip(..).skip(done)`).
        let done = xor_copy(xin, x, flip);
        let d = xin.get_mut(done..).unwrap_or_default();
        for (d, &v) in d.iter_mut().zip(x.get(done..).unwrap_or_default()) {
            *d = v ^ flip;
        }
        xin
    } else {
        let in_c = g.in_c;
        let framed = super::generic::window::copy_framed(
            xin,
            x,
            (g.batches, &g.h, &g.w),
            (in_c, c4),
            (h2.size, w2.size),
            pad_byte,
            move |dst, src| {
                // The rest after the vector part (`done`) as slices from `done` on, not
                // `zip(..).skip(done)`: that form was neither vectorised nor, on aarch64
                // (flip 0, `done` 0), turned into a copy (IC: 0.5 M instructions per
                // inference in this copy on cortex-a76).
                if c4 == in_c {
                    let done = xor_copy(dst, src, flip);
                    let d = dst.get_mut(done..).unwrap_or_default();
                    for (d, &v) in d.iter_mut().zip(src.get(done..).unwrap_or_default()) {
                        *d = v ^ flip;
                    }
                } else if in_c == 3 && c4 == 4 {
                    let fl = u32::from_le_bytes([flip, flip, flip, 0]);
                    let pad = u32::from(pad_byte) << 24;
                    let done = expand3to4(dst, src, flip, pad_byte);
                    let d = dst
                        .as_chunks_mut::<4>()
                        .0
                        .get_mut(done..)
                        .unwrap_or_default();
                    let s = src.as_chunks::<3>().0.get(done..).unwrap_or_default();
                    for (d, s) in d.iter_mut().zip(s) {
                        *d = ((u32::from_le_bytes([s[0], s[1], s[2], 0]) ^ fl) | pad).to_le_bytes();
                    }
                } else {
                    // Each pixel's channels; the `c4 - in_c` bytes after them keep
                    // `pad_byte` (their weights are 0).
                    for (d, s) in dst.chunks_exact_mut(c4).zip(src.chunks_exact(in_c)) {
                        for (a, &v) in d.iter_mut().zip(s) {
                            *a = v ^ flip;
                        }
                    }
                }
            },
        );
        if !framed {
            return false;
        }
        xin
    };
    let g = Geom {
        h: h2,
        w: w2,
        in_c: c4,
        f_c: c4,
        k: gm.k(),
        ..g
    };
    if threads == 1 {
        conv_range(&g, gm, &q, pad_byte, x, 0, out, work);
        return true;
    }
    let per = pixels.div_ceil(threads);
    // Rayon's pool (started once per process) rather than new threads per op: waking a
    // pool thread costs microseconds, starting one tens.
    rayon::scope(|s| {
        let mut parts = out
            .chunks_mut(per * g.out_c)
            .zip(work.chunks_mut(per_thread))
            .enumerate();
        // The first part on this thread, the others on the pool.
        let first = parts.next();
        for (i, (o, wk)) in parts {
            let (g, q) = (&g, &q);
            s.spawn(move |_| conv_range(g, gm, q, pad_byte, x, i * per, o, wk));
        }
        if let Some((_, (o, wk))) = first {
            conv_range(&g, gm, &q, pad_byte, x, 0, o, wk);
        }
    });
    true
}

/// Where a pixel's row is: in place in the (flipped) input, or gathered into a buffer.
#[cfg(any(test, feature = "std"))]
#[derive(Clone, Copy)]
enum RowAt {
    Input(usize),
    Buf(usize),
}

/// Steps the output pixel `(b, oy, ox)` (batch, row, column) on by `n` columns of its
/// row, to the next row (and batch) at the row's end. `ox + n` must not pass the row's
/// end: [`conv_range`] steps one pixel, or a run that ends at most there.
#[cfg(any(test, feature = "std"))]
#[inline(always)]
fn next_pixels(g: &Geom, (b, oy, ox): (&mut usize, &mut usize, &mut usize), n: usize) {
    *ox += n;
    if *ox == g.w.out {
        *ox = 0;
        *oy += 1;
        if *oy == g.h.out {
            *oy = 0;
            *b += 1;
        }
    }
}

/// Output pixels `p0, p0 + 1, …` into the consecutive `out_c`-byte rows of `out`, from
/// the input `x` already in the kernel's form ([`super::packed::Gemm::flip`] applied;
/// `pad_byte` too). A pixel whose receptive field is one contiguous run of the input is
/// read in place ([`super::packed::Gemm::row_bytes`] bytes from its start: the bytes
/// past `k` meet zero weights); the others are gathered into `work`.
#[cfg(any(test, feature = "std"))]
#[allow(clippy::too_many_arguments)]
fn conv_range(
    g: &Geom,
    gm: &super::packed::Gemm,
    q: &OutQ<'_>,
    pad_byte: u8,
    x: &[u8],
    p0: usize,
    out: &mut [u8],
    work: &mut [u8],
) {
    use super::packed::TILE;
    // Every window inside the input: all pixels in one call where the kernel has that
    // entry (aarch64 only: elsewhere not even the grid is worked out), no per-tile piece
    // lists.
    #[cfg(target_arch = "aarch64")]
    if let Some(grid) = pixel_grid(g, gm) {
        if gm.grid(x, &grid, p0, out) {
            return;
        }
    }
    let rb = gm.row_bytes();
    // 1x1, stride 1, no padding: output pixel `p` reads input pixel `p` in place.
    let pointwise = g.h.filter == 1
        && g.w.filter == 1
        && g.h.stride == 1
        && g.w.stride == 1
        && g.h.pad == 0
        && g.w.pad == 0;
    let (p0, out) = if pointwise {
        let done = conv_pointwise(g, gm, q, x, p0, out);
        (p0 + done, out.get_mut(done * g.out_c..).unwrap_or(&mut []))
    } else {
        (p0, out)
    };
    // The output rows not written yet (`out_c` bytes per pixel), taken from the front.
    let mut rest: &mut [u8] = out;
    // The pixel's coordinates, stepped (no division per pixel).
    let per_img = g.h.out * g.w.out;
    let (mut b, rem) = (p0 / per_img.max(1), p0 % per_img.max(1));
    let (mut oy, mut ox) = (rem / g.w.out.max(1), rem % g.w.out.max(1));
    let direct_ok = g.h.filter == 1 && (g.w.filter == 1 || g.w.dilation == 1);
    // Filters of several rows on a kernel that reads pieces in place: a pixel whose
    // window is inside the image is read as `filter_h` pieces of the input (each filter
    // row's taps are adjacent there), no copy; only the pixels at the border are gathered.
    let piece = g.w.filter * g.in_c;
    let pieces = !direct_ok
        && gm.reads_taps()
        && g.w.dilation == 1
        && piece.is_multiple_of(4)
        && (2..=MAX_PIECES).contains(&g.h.filter);
    let row_step = g.h.dilation * g.w.size * g.in_c;
    let fh = g.h.filter;
    // The pieces of a run of pixels read in place (see below), reused from run to run.
    let mut run: [&[[u8; 4]]; MAX_PIECES * TILE] = [&[]; MAX_PIECES * TILE];
    // The output columns whose windows are inside the image along the row (an
    // interval: the window's start grows with the column), and whether a row's are.
    let full_x = |ox: usize| {
        let (_, k0, k1) = g.w.window(ox);
        g.w.full(k0, k1)
    };
    let full_y = |oy: usize| {
        let (_, k0, k1) = g.h.window(oy);
        g.h.full(k0, k1)
    };
    let cols = (0..g.w.out).find(|&c| full_x(c)).and_then(|lo| {
        let hi = (lo..g.w.out).take_while(|&c| full_x(c)).last()?;
        Some((lo, hi))
    });
    // How many pixels from `(oy, ox)` on form a run read in place: windows inside the
    // image, along one output row, at most TILE.
    let run_len = |oy: usize, ox: usize| match cols {
        Some((lo, hi)) if pieces && (lo..=hi).contains(&ox) && full_y(oy) => {
            Some((hi + 1 - ox).min(TILE))
        }
        _ => None,
    };
    loop {
        // A whole run of windows inside the image along this output row in one call of
        // the strided-run kernel, where it applies (its pieces' offsets stepped inside).
        // (One filter row read in place, `direct_ok`: one piece per pixel, e.g. the 1x1
        // stride-2 shortcut convolutions of ResNets.)
        if let Some(whole) = cols
            .filter(|&(lo, hi)| (pieces || direct_ok) && (lo..=hi).contains(&ox) && full_y(oy))
            .map(|(_, hi)| hi + 1 - ox)
        {
            let n = whole.min(rest.len() / g.out_c.max(1));
            let step = g.w.stride * g.in_c;
            let taps = if pieces { fh } else { 1 };
            if let Some(s0) = conv_inside(g, (b, oy, ox)).filter(|_| n > 0) {
                // (The kernel writes the first `n` rows of `rest`, or nothing.)
                if gm.run(x, (s0, step, row_step), taps, n, rest) {
                    take_rows(&mut rest, n, g.out_c);
                    if n < whole {
                        return;
                    }
                    next_pixels(g, (&mut b, &mut oy, &mut ox), n);
                    continue;
                }
            }
        }
        // A run: the pieces' offsets stepped from the first pixel's, no per-pixel window
        // arithmetic or gathering.
        if let Some(len) = run_len(oy, ox) {
            let Some(s0) = conv_inside(g, (b, oy, ox)) else {
                return;
            };
            let mut os: [&mut [u8]; TILE] = Default::default();
            let mut n = 0;
            let mut chunk = take_rows(&mut rest, len, g.out_c).chunks_exact_mut(g.out_c);
            for slot in os.iter_mut().take(len) {
                let Some(o) = chunk.next() else {
                    break;
                };
                *slot = o;
                n += 1;
            }
            if n == 0 {
                return;
            }
            let step = g.w.stride * g.in_c;
            for (p, row) in run[..n * fh].chunks_exact_mut(fh).enumerate() {
                for (ky, seg) in row.iter_mut().enumerate() {
                    let at = s0 + p * step + ky * row_step;
                    *seg = x
                        .get(at..at + piece)
                        .map_or(&[][..], |s| s.as_chunks::<4>().0);
                }
            }
            gm.taps(&run[..n * fh], fh, n, &mut os[..n], q);
            if n < len {
                return;
            }
            next_pixels(g, (&mut b, &mut oy, &mut ox), n);
            continue;
        }
        let mut os: [&mut [u8]; TILE] = Default::default();
        let mut at = [RowAt::Buf(0); TILE];
        let mut n = 0;
        let mut exhausted = false;
        for ((slot, a), (i, buf)) in os
            .iter_mut()
            .zip(at.iter_mut())
            .zip(work.chunks_exact_mut(rb).enumerate())
        {
            if n > 0 && run_len(oy, ox).is_some() {
                break;
            }
            let o = take_rows(&mut rest, 1, g.out_c);
            if o.is_empty() {
                exhausted = true;
                break;
            }
            let direct = if direct_ok {
                conv_direct(g, (b, oy, ox)).filter(|&s| s + rb <= x.len())
            } else if pieces {
                conv_inside(g, (b, oy, ox))
            } else {
                None
            };
            match direct {
                Some(s) => *a = RowAt::Input(s),
                None => {
                    // A window inside the image (taps adjacent along the row): its
                    // filter rows copied without calls (short rows, e.g. 3x3x3 = 9
                    // bytes, made memcpy/memset calls the larger part of the cost).
                    let inside = if g.w.dilation == 1 {
                        conv_inside(g, (b, oy, ox))
                    } else {
                        None
                    };
                    if !inside.is_some_and(|s| copy_window(g, x, s, buf, gm.row_bytes())) {
                        if !conv_field(g, (b, oy, ox), x, pad_byte, buf) {
                            return;
                        }
                        gm.prep_tail(buf);
                    }
                    *a = RowAt::Buf(i);
                }
            }
            *slot = o;
            n += 1;
            next_pixels(g, (&mut b, &mut oy, &mut ox), 1);
        }
        if n == 0 {
            return;
        }
        if pieces {
            let mut segs: [&[[u8; 4]]; MAX_PIECES * TILE] = [&[]; MAX_PIECES * TILE];
            for (row, a) in segs.chunks_exact_mut(fh).zip(at).take(n) {
                for (ky, seg) in row.iter_mut().enumerate() {
                    let s = match a {
                        RowAt::Input(s) => x.get(s + ky * row_step..s + ky * row_step + piece),
                        RowAt::Buf(i) => work.get(i * rb + ky * piece..i * rb + (ky + 1) * piece),
                    };
                    *seg = s.map_or(&[][..], |s| s.as_chunks::<4>().0);
                }
            }
            gm.taps(&segs, fh, n, &mut os[..n], q);
            if exhausted {
                return;
            }
            continue;
        }
        let mut rows: [&[u8]; TILE] = [&[]; TILE];
        for (r, a) in rows.iter_mut().zip(at).take(n) {
            *r = match a {
                RowAt::Input(s) => x.get(s..s + rb).unwrap_or(&[]),
                RowAt::Buf(i) => work.get(i * rb..(i + 1) * rb).unwrap_or(&[]),
            };
        }
        gm.rows(&rows[..n], &mut os[..n], q);
        if n < TILE {
            return;
        }
    }
}

/// The [`super::packed::PixelGrid`] of an ungrouped convolution without padding whose
/// windows are all inside the input and whose filter rows are contiguous runs of the
/// input (undilated along the width): one piece per window of `k` bytes (rounded up to
/// 4, read in place) for a single filter row, else one piece per filter row (its
/// `filter_w * in_c` bytes a multiple of 4). `None` for other geometries. aarch64 only
/// (the one grid kernel, [`super::packed::Gemm::grid`]).
#[cfg(all(any(test, feature = "std"), target_arch = "aarch64"))]
fn pixel_grid(g: &Geom, gm: &super::packed::Gemm) -> Option<super::packed::PixelGrid> {
    let inside = |a: &Axis| {
        a.pad == 0
            && a.out > 0
            && (a.out - 1)
                .checked_mul(a.stride)
                .and_then(|v| v.checked_add((a.filter - 1).checked_mul(a.dilation)?))
                .is_some_and(|v| v < a.size)
    };
    if g.in_c != g.f_c || g.w.dilation != 1 || !inside(&g.h) || !inside(&g.w) || g.k != gm.k() {
        return None;
    }
    let row = g.w.size * g.in_c;
    let piece = g.w.filter * g.in_c;
    let (taps, s4) = if g.h.filter == 1 {
        (1, gm.row_bytes() / 4)
    } else if piece.is_multiple_of(4) && g.h.filter * piece == gm.k() {
        (g.h.filter, piece / 4)
    } else {
        return None;
    };
    Some(super::packed::PixelGrid {
        rows: g.h.out,
        cols: g.w.out,
        img_step: g.h.size * row,
        row_step: g.h.stride * row,
        col_step: g.w.stride * g.in_c,
        taps,
        tap_step: g.h.dilation * row,
        s4,
    })
}

/// `dst[i] = src[i] ^ flip` for a leading part of the slices on the host's vector
/// instructions (`arch::x86_64::xor_copy`); returns its length (0 elsewhere: the caller
/// does the rest).
#[cfg(any(test, feature = "std"))]
fn xor_copy(dst: &mut [u8], src: &[u8], flip: u8) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        super::arch::x86_64::xor_copy(dst, src, flip)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (dst, src, flip);
        0
    }
}

/// 3-byte pixels widened to 4 (`[s0 ^ flip, s1 ^ flip, s2 ^ flip, pad]`) for a leading
/// part of the pixels on the host's vector instructions (`arch::x86_64::expand3to4`);
/// returns how many pixels (0 elsewhere: the caller does the rest).
#[cfg(any(test, feature = "std"))]
fn expand3to4(dst: &mut [u8], src: &[u8], flip: u8, pad: u8) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        super::arch::x86_64::expand3to4(dst, src, flip, pad)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (dst, src, flip, pad);
        0
    }
}

/// Takes the output rows of the next `n` pixels (`c` bytes each; fewer at the end) off
/// the front of `rest`.
#[cfg(any(test, feature = "std"))]
fn take_rows<'o>(rest: &mut &'o mut [u8], n: usize, c: usize) -> &'o mut [u8] {
    let n = n.min(rest.len() / c.max(1)) * c;
    let (o, r) = core::mem::take(rest).split_at_mut(n);
    *rest = r;
    o
}

/// [`conv_range`] for a 1x1 convolution with stride 1 and no padding: output pixels
/// `p0, p0 + 1, …` read input pixel `p`'s [`super::packed::Gemm::row_bytes`] bytes in
/// place (no window arithmetic), [`super::packed::TILE`] at a time, as long as those
/// bytes are inside `x` (the bytes past `k` meet zero weights). Returns how many
/// pixels it wrote (the caller does the rest, near the end of the input).
#[cfg(any(test, feature = "std"))]
fn conv_pointwise(
    g: &Geom,
    gm: &super::packed::Gemm,
    q: &OutQ<'_>,
    x: &[u8],
    p0: usize,
    out: &mut [u8],
) -> usize {
    use super::packed::TILE;
    let (c, rb) = (g.in_c, gm.row_bytes());
    // Every pixel whose row is inside `x` in one call of the strided-run kernel (rows
    // `c` bytes apart, one piece each), where it applies; the loop below does the rest.
    let inside = x
        .len()
        .checked_sub(rb)
        .map_or(0, |v| v / c.max(1) + 1)
        .saturating_sub(p0);
    let n = inside.min(out.len() / g.out_c.max(1));
    let mut done = if n > 0 && gm.run(x, (p0 * c, c, 0), 1, n, out) {
        n
    } else {
        0
    };
    let mut outs = out
        .get_mut(done * g.out_c..)
        .unwrap_or(&mut [])
        .chunks_exact_mut(g.out_c);
    loop {
        let mut os: [&mut [u8]; TILE] = Default::default();
        let mut rows: [&[u8]; TILE] = [&[]; TILE];
        let mut n = 0;
        for (slot, r) in os.iter_mut().zip(rows.iter_mut()) {
            let s = (p0 + done + n) * c;
            let Some(v) = x.get(s..s + rb) else {
                break;
            };
            let Some(o) = outs.next() else {
                break;
            };
            (*r, *slot) = (v, o);
            n += 1;
        }
        if n == 0 {
            return done;
        }
        gm.rows(&rows[..n], &mut os[..n], q);
        done += n;
        if n < TILE {
            return done;
        }
    }
}

/// Copies the window that starts at input byte `s` (inside the image, taps adjacent
/// along the row: `filter_h` runs of `filter_w * in_c` bytes, `dilation_h` input rows
/// apart) into the first `k` bytes of `buf` and zeroes `buf[k..rb]`, 8 bytes at a time
/// (fixed-size moves, no library calls). `false` (nothing copied) if a range is short.
#[cfg(any(test, feature = "std"))]
fn copy_window(g: &Geom, x: &[u8], s: usize, buf: &mut [u8], rb: usize) -> bool {
    let piece = g.w.filter * g.in_c;
    let step = g.h.dilation * g.w.size * g.in_c;
    let last = s + (g.h.filter - 1) * step + piece;
    if x.len() < last || buf.len() < rb || rb < g.k {
        return false;
    }
    let (dst, tail) = buf.split_at_mut(g.k);
    for (ky, d) in dst.chunks_exact_mut(piece).enumerate() {
        let Some(src) = x.get(s + ky * step..s + ky * step + piece) else {
            return false;
        };
        let (mut dc, mut sc) = (d.chunks_exact_mut(8), src.chunks_exact(8));
        for (a, b) in (&mut dc).zip(&mut sc) {
            a.copy_from_slice(b);
        }
        for (a, &b) in dc.into_remainder().iter_mut().zip(sc.remainder()) {
            *a = b;
        }
    }
    for v in tail.iter_mut().take(rb - g.k) {
        *v = 0;
    }
    true
}

/// Filter rows up to which [`conv_range`] reads a pixel's window as pieces in place
/// (12: KWS's first layer has 10).
#[cfg(any(test, feature = "std"))]
const MAX_PIECES: usize = 12;

/// Where the window of the output pixel at `(batch, oy, ox)` starts in the input (its
/// first tap's first byte) when the whole window is inside the image; `None` otherwise.
#[cfg(any(test, feature = "std"))]
fn conv_inside(g: &Geom, (b, oy, ox): (usize, usize, usize)) -> Option<usize> {
    let (iy0, ky0, ky1) = g.h.window(oy);
    let (ix0, kx0, kx1) = g.w.window(ox);
    if !(g.h.full(ky0, ky1) && g.w.full(kx0, kx1)) {
        return None;
    }
    let row_bytes = g.w.size * g.in_c;
    Some(b * g.h.size * row_bytes + g.h.at(iy0, 0) * row_bytes + g.w.at(ix0, 0) * g.in_c)
}

/// Where the receptive field of the output pixel at `(batch, oy, ox)` starts in the
/// input when it is one contiguous run of `k` bytes (ungrouped, one filter row, whole
/// window inside the image, taps adjacent); `None` otherwise.
#[cfg(any(test, feature = "std"))]
fn conv_direct(g: &Geom, (b, oy, ox): (usize, usize, usize)) -> Option<usize> {
    let (iy0, ky0, ky1) = g.h.window(oy);
    let (ix0, kx0, kx1) = g.w.window(ox);
    let direct_ok = g.h.filter == 1 && (g.w.filter == 1 || g.w.dilation == 1);
    if !(direct_ok && g.h.full(ky0, ky1) && g.w.full(kx0, kx1)) {
        return None;
    }
    let row_bytes = g.w.size * g.in_c;
    Some(b * g.h.size * row_bytes + g.h.at(iy0, 0) * row_bytes + g.w.at(ix0, 0) * g.in_c)
}

/// Copies the receptive field of the output pixel at `(batch, oy, ox)` (ungrouped, `k`
/// bytes in OHWI tap order, out-of-image taps set to `pad_byte`) into the start of
/// `buf`. `false` only for ranges out of bounds (excluded by `check`).
#[cfg(any(test, feature = "std"))]
fn conv_field(
    g: &Geom,
    (b, oy, ox): (usize, usize, usize),
    x: &[u8],
    pad_byte: u8,
    buf: &mut [u8],
) -> bool {
    let (iy0, ky0, ky1) = g.h.window(oy);
    let (ix0, kx0, kx1) = g.w.window(ox);
    let c = g.in_c;
    let row_bytes = g.w.size * c;
    let img = b * g.h.size * row_bytes;
    let Some(dst) = buf.get_mut(..g.k) else {
        return false;
    };
    if let Some(start) = conv_direct(g, (b, oy, ox)) {
        return match x.get(start..start + g.k) {
            Some(s) => {
                dst.copy_from_slice(s);
                true
            }
            None => false,
        };
    }
    let dims = Gather {
        img,
        row_bytes,
        groups: 1,
        grp: 0,
        pad_byte,
    };
    gather(g, &dims, x, dst, (iy0, ky0, ky1), (ix0, kx0, kx1))
}

#[inline(always)]
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
        weighted::scratch_bytes(&Conv(p), defs, out)
    }

    fn check(
        p: &ConvParams<'_>,
        defs: &[TensorDef<'_>],
        out: &TensorDef<'_>,
        scratch_len: usize,
    ) -> Result<(), &'static str> {
        weighted::check(&Conv(p), defs, out, scratch_len)
    }

    fn eval_with(
        p: &ConvParams<'_>,
        inputs: &[TensorIn<'_, '_>],
        output: TensorOut<'_, '_>,
        scratch: &mut [u8],
        isa: Isa,
    ) {
        weighted::eval(&Conv(p), inputs, output, scratch, isa);
    }

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
        random_case_in(r, dtype, 7, 6)
    }

    /// A random case with filter depth up to `max_fc` and up to `max_oc` output channels
    /// per group.
    fn random_case_in(r: &mut Rng, dtype: DType, max_fc: usize, max_oc: usize) -> Option<Case> {
        random_case_shaped(r, dtype, max_fc, max_oc, 4)
    }

    /// [`random_case_in`] with filters up to `max_f` taps high and wide (images up to
    /// `max_f + 5` pixels).
    fn random_case_shaped(
        r: &mut Rng,
        dtype: DType,
        max_fc: usize,
        max_oc: usize,
        max_f: usize,
    ) -> Option<Case> {
        random_case_general(r, dtype, max_fc, max_oc, max_f, false)
    }

    /// A 1x1 stride-1 convolution (one group) with a multiple of 4 input channels (up to
    /// `max_fc`) and of 8 output channels (up to `max_oc`): the shape the host's packed
    /// pointwise path runs as one strided run over the whole tensor (`Gemm::run`).
    fn random_pointwise_case(r: &mut Rng, max_fc: usize, max_oc: usize) -> Option<Case> {
        random_case_general(r, DType::I8, max_fc, max_oc, 1, true)
    }

    /// [`random_case_shaped`]; with `pointwise`, the shape of [`random_pointwise_case`]
    /// (the other draws unchanged).
    fn random_case_general(
        r: &mut Rng,
        dtype: DType,
        max_fc: usize,
        max_oc: usize,
        max_f: usize,
        pointwise: bool,
    ) -> Option<Case> {
        let n = r.usize(1, 2);
        let side = 9.max(max_f + 5);
        let (ih, iw) = (r.usize(1, side), r.usize(1, side));
        let groups = if pointwise {
            1
        } else if r.range(0, 5) == 0 {
            r.usize(1, 3)
        } else {
            1
        };
        let fc = if pointwise {
            4 * r.usize(1, (max_fc / 4).max(1))
        } else {
            r.usize(1, max_fc)
        };
        let ic = fc * groups;
        let oc = if pointwise {
            8 * r.usize(1, (max_oc / 8).max(1))
        } else {
            groups * r.usize(1, max_oc)
        };
        let (fh, fw) = (r.usize(1, max_f), r.usize(1, max_f));
        let (sh, sw) = if pointwise {
            (1, 1)
        } else {
            (r.usize(1, 3), r.usize(1, 3))
        };
        let (dh, dw) = if pointwise {
            (1, 1)
        } else if r.range(0, 3) == 0 {
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
        run_case_with(c, Isa::Portable)
    }

    /// Runs a case on the inner kernels of `isa`.
    fn run_case_with(c: &Case, isa: Isa) -> Vec<u8> {
        let sb = scratch_bytes(&c.p, &c.defs, &c.out);
        check(&c.p, &c.defs, &c.out, sb).expect("check");
        let mut scratch = vec![0x5Au8; sb];
        run(&c.defs, &c.data, &c.out, |i, o| {
            eval_with(&c.p, i, o, &mut scratch, isa)
        })
    }

    specialised_matches_portable!(
        /// The packed 16-bit kernels (column pairs, `SMLAD` on Cortex-M4/M7) against the
        /// portable dot products, on generated int8 convolutions.
        packed_kernels_match_portable {
            seed: 6,
            cases: 1500,
            generate: |r: &mut Rng| random_case(r, DType::I8),
            portable: |c: &Case| run_case_with(c, Isa::Portable),
            specialised: |c: &Case| run_case_with(c, Isa::ArmDsp),
        }
    );

    specialised_matches_portable!(
        /// The same on wide layers: more than 32 output channels (the column pairs' second
        /// and later channel blocks), filter depths up to 45 (the row path's multiples of
        /// 4, dilated widths), and tall and wide filters up to 9x9 with padding on every
        /// side.
        packed_kernels_match_portable_wide {
            seed: 61,
            cases: 600,
            generate: |r: &mut Rng| match r.usize(0, 2) {
                0 => random_case_in(r, DType::I8, 40, 45),
                1 => random_case_in(r, DType::I8, 12, 70),
                _ => random_case_shaped(r, DType::I8, 9, 20, 9),
            },
            portable: |c: &Case| run_case_with(c, Isa::Portable),
            specialised: |c: &Case| run_case_with(c, Isa::ArmDsp),
        }
    );

    #[cfg(target_arch = "x86_64")]
    specialised_matches_portable!(
        /// The AVX2 kernels (x86_64 hosts, `arch::x86_64`) against the portable ones.
        avx2_kernels_match_portable {
            seed: 106,
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
            seed: 106,
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
            seed: 206,
            cases: 1500,
            generate: |r: &mut Rng| random_case(r, DType::I8),
            portable: |c: &Case| run_case_with(c, Isa::Portable),
            specialised: |c: &Case| run_case_with(c, host_isa(Isa::NeonDot)),
        }
    );

    /// Runs a case with its weights packed for the host kernels (`kernels::packed`).
    fn run_case_packed(c: &Case, threads: usize) -> Vec<u8> {
        let groups = c.defs[0].shape.dim(3) / c.defs[1].shape.dim(3);
        let op = edgeflow_format::graph::Op::Conv2d(c.p);
        run_packed(&op, &c.defs, &c.data, &c.out, threads, groups == 1)
    }

    specialised_matches_portable!(
        /// The packed-weight host kernels (eight output channels per vector, four pixels
        /// per pass; AVX-VNNI or AVX2) against the portable kernels, on generated
        /// convolutions: small and wide depths (odd channel counts, `k` not a multiple
        /// of 4), padding, strides, dilation, groups (unpacked), extreme offsets.
        packed_weights_match_portable {
            seed: 306,
            cases: 1500,
            generate: |r: &mut Rng| if r.bool() {
                random_case(r, DType::I8)
            } else {
                random_case_in(r, DType::I8, 40, 45)
            },
            portable: |c: &Case| run_case_with(c, Isa::Portable),
            specialised: |c: &Case| run_case_packed(c, 1),
        }
    );

    specialised_matches_portable!(
        /// The packed-weight host kernels on 1x1 stride-1 convolutions with 4k input and
        /// 8k output channels: on x86_64 with AVX-512 VNNI one strided run over the whole
        /// tensor (`Gemm::run`), elsewhere the tile path.
        packed_pointwise_match_portable {
            seed: 309,
            cases: 300,
            generate: |r: &mut Rng| random_pointwise_case(r, 48, 72),
            portable: |c: &Case| run_case_with(c, Isa::Portable),
            specialised: |c: &Case| run_case_packed(c, 1),
        }
    );

    specialised_matches_portable!(
        /// The packed-weight host kernels on tall and wide filters (up to 13x13: windows
        /// of up to 12 rows are read in place as pieces, taller ones gathered), e.g. KWS's
        /// 10x4 first layer.
        packed_tall_filters_match_portable {
            seed: 308,
            cases: 600,
            generate: |r: &mut Rng| random_case_shaped(r, DType::I8, 5, 20, 13),
            portable: |c: &Case| run_case_with(c, Isa::Portable),
            specialised: |c: &Case| run_case_packed(c, 1),
        }
    );

    specialised_matches_portable!(
        /// The packed kernels split over three threads: identical to one thread's (and so
        /// to the portable kernels).
        packed_threads_match_portable {
            seed: 307,
            cases: 400,
            generate: |r: &mut Rng| random_case_in(r, DType::I8, 24, 40),
            portable: |c: &Case| run_case_with(c, Isa::Portable),
            specialised: |c: &Case| run_case_packed(c, 3),
        }
    );

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
