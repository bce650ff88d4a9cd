//! FULLY_CONNECTED, int8 (per-tensor or per-channel requantization) and f32, matching
//! TFLM's reference `FullyConnected` / `FullyConnectedPerChannel` bit for bit (int8) and
//! in accumulation order (f32).
//!
//! The input is any shape whose element count is `rows * in_features`; weights are
//! `[out, in]`; the output is `[..., out]` with `rows * out` elements. int8 adds the input
//! offset once per input element (into up to [`SEG`] 16-bit values in scratch), then
//! computes two output channels per pass over them. No weight sums are needed, so there
//! is no extra pass over the weights, which matters for the usual single-row case. The
//! int32 sums wrap, so they equal TFLM's accumulator exactly whatever the order.

use edgeflow_format::graph::{Clamp, FullyConnectedParams, Requant, TensorDef};

use super::arch::arm_dsp as arm;
use super::arch::{self, Isa};
use super::epilogue::OutQ;
use super::generic::elem::{acc_block, acc_block_bytes, clamp_f32, f32_of, le_f32, le_i32};
use super::weighted::Weighted;

/// `(rows, in_features, out_features)` of a valid op.
fn dims(
    x: &TensorDef<'_>,
    w: &TensorDef<'_>,
    out: &TensorDef<'_>,
) -> Result<(usize, usize, usize), &'static str> {
    if w.shape.rank != 2 {
        return Err(why!(
            "fully_connected.rs",
            "weights must be rank 2 [out, in]"
        ));
    }
    let (o, i) = (w.shape.dim(0), w.shape.dim(1));
    let r = out.shape.rank as usize;
    if r == 0 || out.shape.dim(r - 1) != o {
        return Err(why!(
            "fully_connected.rs",
            "output's last dimension differs from the number of weight rows"
        ));
    }
    if o == 0 || i == 0 {
        return Err(why!("fully_connected.rs", "zero-sized weights"));
    }
    let out_n = out
        .shape
        .num_elements()
        .ok_or(why!("fully_connected.rs", "output too large"))?;
    let rows = out_n / o;
    if rows.checked_mul(i)
        != Some(
            x.shape
                .num_elements()
                .ok_or(why!("fully_connected.rs", "input too large"))?,
        )
    {
        return Err(why!(
            "fully_connected.rs",
            "input element count is not rows * in_features"
        ));
    }
    Ok((rows, i, o))
}

/// Input elements offset into 16 bits per pass (bounds the scratch).
const SEG: usize = 128;

/// FULLY_CONNECTED as a [`Weighted`] op (checked, planned and run by
/// [`super::weighted`]); its geometry is `(rows, in_features, out_features)`.
pub(crate) struct FullyConnected<'p, 'a>(pub(crate) &'p FullyConnectedParams<'a>);

impl Weighted for FullyConnected<'_, '_> {
    type Geom = (usize, usize, usize);
    const ARITY: &'static str = why!(
        "fully_connected.rs",
        "FULLY_CONNECTED takes input, weights and an optional bias"
    );
    fn geom(
        &self,
        x: &TensorDef<'_>,
        w: &TensorDef<'_>,
        out: &TensorDef<'_>,
    ) -> Result<Self::Geom, &'static str> {
        dims(x, w, out)
    }
    fn channels(g: &Self::Geom) -> usize {
        g.2
    }
    /// int8 needs up to [`SEG`] input values with the input offset added, as
    /// little-endian `i16`, then a block of [`OUT_BLOCK`] int32 accumulators
    /// ([`acc_block_bytes`]; in the arena rather than on the stack).
    fn int8_scratch(g: &Self::Geom) -> usize {
        (2 * g.1.min(SEG)).saturating_add(acc_block_bytes(OUT_BLOCK))
    }
    fn requant(&self) -> Option<&Requant<'_>> {
        self.0.requant.as_ref()
    }
    fn clamp(&self) -> &Clamp {
        &self.0.clamp
    }
    #[inline(always)]
    fn eval_i8(
        g: &Self::Geom,
        rq: &Requant<'_>,
        clamp: &Clamp,
        xwb: (&[u8], &[u8], Option<&[u8]>),
        out: &mut [u8],
        scratch: &mut [u8],
        isa: Isa,
    ) {
        eval_i8((g.1, g.2), rq, clamp, xwb, out, scratch, isa);
    }
    #[inline(always)]
    fn eval_f32(
        g: &Self::Geom,
        clamp: &Clamp,
        x: &[u8],
        w: &[u8],
        bias: Option<&[u8]>,
        out: &mut [u8],
    ) {
        eval_f32(g.1, g.2, clamp, x, w, bias, out);
    }
}

/// int8 FULLY_CONNECTED on the inner kernels of `isa`: [`Isa::ArmDsp`] selects the packed
/// 16-bit kernels ([`super::arch::arm_dsp`]); otherwise each segment goes through
/// [`arch::fc_rows`] (AVX2 / NEON on hosts that have them, else the portable dot
/// products).
fn eval_i8(
    (i, o): (usize, usize),
    rq: &Requant<'_>,
    clamp: &Clamp,
    (x, w, bias): (&[u8], &[u8], Option<&[u8]>),
    out: &mut [u8],
    scratch: &mut [u8],
    isa: Isa,
) {
    let packed = isa == Isa::ArmDsp;
    // Only the epilogue's two flags are held across the blocks; `finish` rebuilds the
    // `OutQ` (32 B) in its own frame, so it is not in the frame `fc_block` runs under.
    // The single-shift copies of `finish` only for per-tensor requantization
    // (FULLY_CONNECTED's usual form: TFLite's converter writes one multiplier); a
    // per-channel one takes the general loop, whose `apply` is exact for every shift.
    let (fast, full) = epilogue_flags(rq, clamp);
    let off = rq.input_offset;
    let Some((x16, acc)) = scratch.split_at_mut_checked(2 * i.min(SEG)) else {
        return;
    };
    let Some(acc) = acc_block::<OUT_BLOCK>(acc) else {
        return;
    };
    for (xr, orow) in x.chunks_exact(i).zip(out.chunks_exact_mut(o)) {
        let mut oc = 0;
        for (wb, ob) in w.chunks(OUT_BLOCK * i).zip(orow.chunks_mut(OUT_BLOCK)) {
            let acc = &mut acc[..ob.len()];
            acc.fill(0);
            // The row in segments: x + off as i16 once per segment, then two output
            // channels per pass over it.
            let mut s0 = 0;
            for xs in xr.chunks(SEG) {
                let seg = &mut x16[..2 * xs.len().min(SEG)];
                let n = xs.len();
                // AVX-VNNI: the int8 segment as is (the offset folded in), no widening.
                if arch::fc_rows_i8(isa, xs, off, wb, i, s0, acc) {
                    s0 += n;
                    continue;
                }
                if packed {
                    // A q15 column (see `arm`), two output channels per pass.
                    let (g, t) = seg.split_at_mut(n / 4 * arm::GROUP);
                    arm::widen(xs, off as i16, g, arm::Lane::Single, t);
                    arm::fc_block(seg, wb, i, s0, n, acc);
                    s0 += n;
                    continue;
                }
                for (d, &v) in seg.chunks_exact_mut(2).zip(xs) {
                    d.copy_from_slice(&((v as i8 as i16).wrapping_add(off as i16)).to_le_bytes());
                }
                arch::fc_rows(isa, seg, wb, i, s0, n, acc);
                s0 += n;
            }
            let bs = bias.and_then(|b| b.get(4 * oc..)).unwrap_or(&[]);
            match (fast, full) {
                (true, true) => finish::<true, true>((rq, clamp), acc, bs, oc, ob),
                (true, false) => finish::<true, false>((rq, clamp), acc, bs, oc, ob),
                _ => finish::<false, false>((rq, clamp), acc, bs, oc, ob),
            }
            oc += ob.len();
        }
    }
}

/// [`eval_i8`]'s epilogue flags: whether `finish` takes a single-shift copy (per-tensor
/// requantization and [`OutQ::fast`]) and whether the clamp is the int8 range.
///
/// Never inlined on the size class (`cfg(edgeflow_size)`): inlined at opt-level "s", the
/// checks' iterator states (88 B) stayed in the op's frame, under `fc_block` (AD's
/// deepest chain; BENCHMARKS.md (j3)).
#[cfg_attr(edgeflow_size, inline(never))]
#[cfg_attr(not(edgeflow_size), inline(always))]
fn epilogue_flags(rq: &Requant<'_>, clamp: &Clamp) -> (bool, bool) {
    let q = OutQ::new(rq, clamp);
    (q.fast && rq.multipliers.0.len() <= 4, q.full)
}

/// `out[j] = requant(acc[j] + bias[j])` with the `(multiplier, shift)`s of output
/// channels `oc, oc + 1, ...` (taken here, not carried across the blocks by the caller:
/// the channel iterator then is not in the frame `fc_block` runs under)
/// (`bias` empty: none), on [`OutQ::finish_single`] (`FAST`: per-tensor requantization
/// and [`OutQ::fast`] holds) or [`OutQ::apply`].
#[inline(never)]
fn finish<const FAST: bool, const FULL: bool>(
    (rq, clamp): (&Requant<'_>, &Clamp),
    acc: &[i32],
    bias: &[u8],
    oc: usize,
    out: &mut [u8],
) {
    // `FAST` and `FULL` are `OutQ::new(rq, clamp)`'s flags, computed once by the caller,
    // which takes the `FAST` copies for per-tensor requantization only.
    let q = OutQ::with_flags(rq, clamp, FAST, FULL);
    if FAST {
        // Per-tensor: the one (multiplier, shift), its rounding constant once for the
        // block. (Only this loop in the two `FAST` copies: FULLY_CONNECTED's
        // requantization was three copies of two loops, 1.46 KB in AD's firmware.)
        let (m, s) = (le_i32(rq.multipliers.0, 0), le_i32(rq.shifts.0, 0));
        let (klo, khi, r1) = super::generic::requant::single_shift_params(s);
        for (j, (o, &a)) in out.iter_mut().zip(acc).enumerate() {
            let a = a.wrapping_add(le_i32(bias, j));
            *o = q.finish_single::<FULL>(a, m, klo, khi, r1);
        }
        return;
    }
    for (j, ((o, &a), qc)) in out.iter_mut().zip(acc).zip(q.channels(oc)).enumerate() {
        let a = a.wrapping_add(le_i32(bias, j));
        *o = q.apply(a, qc);
    }
}

/// Packs an int8 FULLY_CONNECTED's `[out, in]` weights and bias for the host kernels;
/// `None` for f32, shapes that do not check, or a machine without packed kernels.
#[cfg(any(test, feature = "std"))]
pub(crate) fn pack(
    p: &FullyConnectedParams<'_>,
    (xd, wd, od): (&TensorDef<'_>, &TensorDef<'_>, &TensorDef<'_>),
    w: &[u8],
    bias: Option<&[u8]>,
) -> Option<super::packed::Gemm> {
    let (_, i, o) = dims(xd, wd, od).ok()?;
    if od.dtype != edgeflow_format::graph::DType::I8 {
        return None;
    }
    super::packed::Gemm::new(w, i, o, bias, p.requant.as_ref()?, &p.clamp)
}

/// int8 FULLY_CONNECTED on packed weights `gm` (from [`pack`] for this op): input rows
/// [`super::packed::TILE`] at a time, each copied into a row of `work` (grown as
/// needed). Returns `false`, having written nothing, when `gm` does not match the op.
#[cfg(any(test, feature = "std"))]
pub(crate) fn eval_packed(
    p: &FullyConnectedParams<'_>,
    gm: &super::packed::Gemm,
    (xd, wd, od): (&TensorDef<'_>, &TensorDef<'_>, &TensorDef<'_>),
    x: &[u8],
    out: &mut [u8],
    work: &mut std::vec::Vec<u8>,
) -> bool {
    use super::packed::TILE;
    // Batch 1 (the usual case) on the fused matrix-vector kernel, straight from the
    // input, before any other set-up: `gm` was packed from this op's `[o, i]` weights, so
    // `x` holding `i` bytes and `out` `o` bytes is the one-row case (the kernel checks
    // every length itself).
    if out.len() == gm.oc() && gm.gemv_i8(x, out) {
        return true;
    }
    let Ok((rows, i, o)) = dims(xd, wd, od) else {
        return false;
    };
    let Some(rq) = p.requant.as_ref() else {
        return false;
    };
    if gm.k() != i || gm.oc() != o || out.len() != rows * o || x.len() != rows * i {
        return false;
    }
    let q = OutQ::new(rq, &p.clamp);
    let rb = gm.row_bytes();
    if work.len() < TILE * rb {
        work.resize(TILE * rb, 0);
    }
    // Batch 1 (the usual case): the one row straight to the kernel.
    if rows == 1 {
        let Some(buf) = work.get_mut(..rb) else {
            return false;
        };
        if let Some(d) = buf.get_mut(..i) {
            d.copy_from_slice(x);
        }
        gm.prep(buf);
        gm.rows(&[&*buf], &mut [&mut *out], &q);
        return true;
    }
    for (xt, ot) in x.chunks(TILE * i).zip(out.chunks_mut(TILE * o)) {
        let mut n = 0;
        for (xr, buf) in xt.chunks_exact(i).zip(work.chunks_exact_mut(rb)) {
            if let Some(d) = buf.get_mut(..i) {
                d.copy_from_slice(xr);
            }
            gm.prep(buf);
            n += 1;
        }
        let mut rs: [&[u8]; TILE] = [&[]; TILE];
        for (r, buf) in rs.iter_mut().zip(work.chunks_exact(rb)) {
            *r = buf;
        }
        let mut os: [&mut [u8]; TILE] = Default::default();
        for (slot, orow) in os.iter_mut().zip(ot.chunks_exact_mut(o)) {
            *slot = orow;
        }
        gm.rows(&rs[..n], &mut os[..n], &q);
    }
    true
}

/// Output channels accumulated per block before requantizing them.
const OUT_BLOCK: usize = 32;

fn eval_f32(
    i: usize,
    o: usize,
    clamp: &Clamp,
    x: &[u8],
    w: &[u8],
    bias: Option<&[u8]>,
    out: &mut [u8],
) {
    for (xr, orow) in x.chunks_exact(i * 4).zip(out.chunks_exact_mut(o * 4)) {
        for (oc, (wr, ob)) in w
            .chunks_exact(i * 4)
            .zip(orow.chunks_exact_mut(4))
            .enumerate()
        {
            let mut total = 0.0f32;
            for (xv, wv) in xr.chunks_exact(4).zip(wr.chunks_exact(4)) {
                total += f32_of(xv) * f32_of(wv);
            }
            let bv = bias.map_or(0.0, |b| le_f32(b, oc));
            ob.copy_from_slice(&clamp_f32(total + bv, clamp.min_f, clamp.max_f).to_le_bytes());
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

    fn scratch_bytes(
        p: &FullyConnectedParams<'_>,
        defs: &[TensorDef<'_>],
        out: &TensorDef<'_>,
    ) -> usize {
        weighted::scratch_bytes(&FullyConnected(p), defs, out)
    }

    fn check(
        p: &FullyConnectedParams<'_>,
        defs: &[TensorDef<'_>],
        out: &TensorDef<'_>,
        scratch_len: usize,
    ) -> Result<(), &'static str> {
        weighted::check(&FullyConnected(p), defs, out, scratch_len)
    }

    fn eval_with(
        p: &FullyConnectedParams<'_>,
        inputs: &[TensorIn<'_, '_>],
        output: TensorOut<'_, '_>,
        scratch: &mut [u8],
        isa: Isa,
    ) {
        weighted::eval(&FullyConnected(p), inputs, output, scratch, isa);
    }

    /// TFLM's `FullyConnectedPerChannel` (per-tensor: the same with one multiplier).
    fn reference_i8(p: &FullyConnectedParams<'_>, data: &[Vec<u8>], i: usize, o: usize) -> Vec<u8> {
        let rq = p.requant.as_ref().unwrap();
        let (x, w) = (&data[0], &data[1]);
        let rows = x.len() / i;
        let nmul = rq.multipliers.len_i32();
        let mut out = vec![0u8; rows * o];
        for b in 0..rows {
            for oc in 0..o {
                let mut acc = 0i32;
                for d in 0..i {
                    let iv = x[b * i + d] as i8 as i32;
                    let fv = w[oc * i + d] as i8 as i32;
                    acc = acc.wrapping_add(fv.wrapping_mul(iv + rq.input_offset));
                }
                if let Some(bb) = data.get(2) {
                    acc = acc.wrapping_add(le_i32(bb, oc));
                }
                let k = if nmul == 1 { 0 } else { oc };
                let mut v = multiply_by_quantized_multiplier(
                    acc,
                    rq.multipliers.i32_at(k).unwrap(),
                    rq.shifts.i32_at(k).unwrap(),
                );
                v = v.wrapping_add(rq.output_offset);
                v = v.max(p.clamp.min_q).min(p.clamp.max_q);
                out[oc + o * b] = v as i8 as u8;
            }
        }
        out
    }

    fn reference_f32(
        p: &FullyConnectedParams<'_>,
        data: &[Vec<u8>],
        i: usize,
        o: usize,
    ) -> Vec<u8> {
        let (x, w) = (&data[0], &data[1]);
        let rows = x.len() / 4 / i;
        let mut out = Vec::new();
        for b in 0..rows {
            for oc in 0..o {
                let mut total = 0.0f32;
                for d in 0..i {
                    total += le_f32(x, b * i + d) * le_f32(w, oc * i + d);
                }
                let bv = data.get(2).map_or(0.0, |bb| le_f32(bb, oc));
                out.extend_from_slice(
                    &clamp_f32(total + bv, p.clamp.min_f, p.clamp.max_f).to_le_bytes(),
                );
            }
        }
        out
    }

    struct Case {
        p: FullyConnectedParams<'static>,
        defs: Vec<TensorDef<'static>>,
        data: Vec<Vec<u8>>,
        out: TensorDef<'static>,
        i: usize,
        o: usize,
    }

    fn random_case(r: &mut Rng, dtype: DType) -> Case {
        random_case_in(r, dtype, 20, 4)
    }

    /// A random case with up to `max_o` outputs and `max_rows` rows.
    fn random_case_in(r: &mut Rng, dtype: DType, max_o: usize, max_rows: usize) -> Case {
        let i = if r.range(0, 3) == 0 {
            r.usize(100, 700)
        } else {
            r.usize(1, 40)
        };
        let o = r.usize(1, max_o);
        let rows = r.usize(1, max_rows);
        // Input shapes: [rows, i], [rows/2.., ...], or 4-D with the same element count.
        let xdims: Vec<u32> = match r.range(0, 2) {
            0 => vec![rows as u32, i as u32],
            1 => vec![1, rows as u32, 1, i as u32],
            _ => vec![(rows * i) as u32],
        };
        let odims: Vec<u32> = if r.bool() {
            vec![rows as u32, o as u32]
        } else {
            vec![1, rows as u32, o as u32]
        };
        let (in_zp, out_zp) = (r.range(-128, 127) as i32, r.range(-128, 127) as i32);
        let xd = tensor(dtype, &xdims, 0.5, in_zp);
        let wd = tensor(dtype, &[o as u32, i as u32], 0.5, 0);
        let od = tensor(dtype, &odims, 0.5, out_zp);
        let mut p = FullyConnectedParams {
            clamp: Clamp::NONE,
            requant: None,
        };
        let mut defs = vec![xd, wd];
        let mut data;
        if dtype == DType::I8 {
            let mults: Vec<(i32, i32)> = {
                let n = if r.bool() { 1 } else { o };
                r.multipliers(n)
            };
            p.requant = Some(requant(in_zp, out_zp, &mults));
            p.clamp = random_clamp_q(r);
            let mut xb = r.bytes(rows * i);
            if r.range(0, 4) == 0 {
                for v in xb.iter_mut() {
                    *v = if r.bool() { 0x80 } else { 0x7f };
                }
            }
            data = vec![xb, r.bytes(o * i)];
            if r.range(0, 3) != 0 {
                let bias: Vec<i32> = (0..o)
                    .map(|_| {
                        if r.range(0, 5) == 0 {
                            r.u32() as i32
                        } else {
                            r.range(-5000, 5000) as i32
                        }
                    })
                    .collect();
                defs.push(tensor(DType::I32, &[o as u32], 1.0, 0));
                data.push(i32_bytes(&bias));
            }
        } else {
            p.clamp = random_clamp_f(r);
            data = vec![r.f32_bytes(rows * i), r.f32_bytes(o * i)];
            if r.range(0, 3) != 0 {
                defs.push(tensor(DType::F32, &[o as u32], 1.0, 0));
                data.push(r.f32_bytes(o));
            }
        }
        Case {
            p,
            defs,
            data,
            out: od,
            i,
            o,
        }
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
        /// The packed 16-bit kernels (row pairs, `SMLAD` on Cortex-M4/M7) against the
        /// portable dot products, on generated int8 fully-connected layers.
        packed_kernels_match_portable {
            seed: 23,
            cases: 1500,
            generate: |r: &mut Rng| Some(random_case(r, DType::I8)),
            portable: |c: &Case| run_case_with(c, Isa::Portable),
            specialised: |c: &Case| run_case_with(c, Isa::ArmDsp),
        }
    );

    #[cfg(target_arch = "x86_64")]
    specialised_matches_portable!(
        /// The AVX2 kernels (x86_64 hosts, `arch::x86_64`) against the portable ones.
        avx2_kernels_match_portable {
            seed: 108,
            cases: 1500,
            generate: |r: &mut Rng| Some(random_case(r, DType::I8)),
            portable: |c: &Case| run_case_with(c, Isa::Portable),
            specialised: |c: &Case| run_case_with(c, host_isa(Isa::Avx2)),
        }
    );

    #[cfg(target_arch = "aarch64")]
    specialised_matches_portable!(
        /// The NEON kernels (aarch64 hosts, `arch::aarch64`) against the portable ones.
        neon_kernels_match_portable {
            seed: 108,
            cases: 1500,
            generate: |r: &mut Rng| Some(random_case(r, DType::I8)),
            portable: |c: &Case| run_case_with(c, Isa::Portable),
            specialised: |c: &Case| run_case_with(c, host_isa(Isa::Neon)),
        }
    );

    #[cfg(target_arch = "aarch64")]
    specialised_matches_portable!(
        /// The NEON kernels with the dot-product extension (`SDOT`) against the portable
        /// ones.
        neon_dot_kernels_match_portable {
            seed: 208,
            cases: 1500,
            generate: |r: &mut Rng| Some(random_case(r, DType::I8)),
            portable: |c: &Case| run_case_with(c, Isa::Portable),
            specialised: |c: &Case| run_case_with(c, host_isa(Isa::NeonDot)),
        }
    );

    specialised_matches_portable!(
        /// The packed-weight host kernels (eight outputs per vector, four rows per pass;
        /// AVX-VNNI or AVX2) against the portable kernels: odd and wide output counts,
        /// input lengths not a multiple of 4, several rows, extreme offsets.
        packed_weights_match_portable {
            seed: 308,
            cases: 1500,
            generate: |r: &mut Rng| Some(random_case_in(r, DType::I8, 70, 9)),
            portable: |c: &Case| run_case_with(c, Isa::Portable),
            specialised: |c: &Case| {
                let op = edgeflow_format::graph::Op::FullyConnected(c.p);
                run_packed(&op, &c.defs, &c.data, &c.out, 1, true)
            },
        }
    );

    #[test]
    fn int8_matches_reference_on_random_cases() {
        let mut r = Rng::new(21);
        for n in 0..1500 {
            let c = random_case(&mut r, DType::I8);
            assert_eq!(
                run_case(&c),
                reference_i8(&c.p, &c.data, c.i, c.o),
                "case {n}"
            );
        }
    }

    #[test]
    fn f32_matches_reference_on_random_cases() {
        let mut r = Rng::new(22);
        for n in 0..600 {
            let c = random_case(&mut r, DType::F32);
            assert_eq!(
                run_case(&c),
                reference_f32(&c.p, &c.data, c.i, c.o),
                "case {n}"
            );
        }
    }

    #[test]
    fn hand_computed_int8() {
        // x = [3, -1] with zp -1 -> [4, 0]; w = [[1, 2], [-3, 5], [2, 2]]; bias [1, 0, -2].
        let x: Vec<u8> = [3i8, -1].iter().map(|&v| v as u8).collect();
        let w: Vec<u8> = [1i8, 2, -3, 5, 2, 2].iter().map(|&v| v as u8).collect();
        let (m, s) = crate::fixedpoint::quantize_multiplier(0.5);
        let p = FullyConnectedParams {
            clamp: Clamp {
                min_q: -5,
                max_q: 127,
                ..Clamp::NONE
            },
            requant: Some(requant(-1, 2, &[(m, s)])),
        };
        let defs = vec![
            tensor(DType::I8, &[1, 2], 1.0, -1),
            tensor(DType::I8, &[3, 2], 1.0, 0),
            tensor(DType::I32, &[3], 1.0, 0),
        ];
        let out = tensor(DType::I8, &[1, 3], 1.0, 2);
        let c = Case {
            p,
            defs,
            data: vec![x, w, i32_bytes(&[1, 0, -2])],
            out,
            i: 2,
            o: 3,
        };
        let got: Vec<i8> = run_case(&c).into_iter().map(|v| v as i8).collect();
        // 4+1 = 5 -> 2.5 -> 3 (+2) = 5; -12 -> -6 (+2) = -4; 8-2 = 6 -> 3 (+2) = 5.
        assert_eq!(got, vec![5, -4, 5]);
    }

    #[test]
    fn check_rejects_bad_ops() {
        let mut r = Rng::new(23);
        let c = random_case(&mut r, DType::I8);
        let sb = scratch_bytes(&c.p, &c.defs, &c.out);
        assert!(check(&c.p, &c.defs, &c.out, sb).is_ok());
        assert!(check(&c.p, &c.defs, &c.out, sb - 1).is_err());
        let mut out = c.out;
        let last = out.shape.rank as usize - 1;
        out.shape.dims[last] += 1;
        assert!(check(&c.p, &c.defs, &out, 4096).is_err());
        let mut defs = c.defs.clone();
        defs[0].shape = edgeflow_format::graph::Shape::new(&[c.i as u32 + 1]).unwrap();
        assert!(check(&c.p, &defs, &c.out, 4096).is_err());
        let mut defs = c.defs.clone();
        defs[1].quant.as_mut().unwrap().zero_point = 3;
        assert!(check(&c.p, &defs, &c.out, 4096).is_err());
        let mut p = c.p;
        p.requant = None;
        assert!(check(&p, &c.defs, &c.out, 4096).is_err());
        let mut defs = c.defs.clone();
        defs[1].shape = edgeflow_format::graph::Shape::new(&[1, c.o as u32, c.i as u32]).unwrap();
        assert!(check(&c.p, &defs, &c.out, 4096).is_err());
    }

    #[test]
    fn eval_never_panics_after_check() {
        let mut r = Rng::new(24);
        let mut evaluated = 0;
        for _ in 0..3000 {
            let dtype = if r.bool() { DType::I8 } else { DType::F32 };
            let mut c = random_case(&mut r, dtype);
            for _ in 0..r.usize(1, 3) {
                match r.range(0, 5) {
                    0 => fuzz_dims(&mut r, &mut c.out),
                    1 => fuzz_dims(&mut r, &mut c.defs[0]),
                    2 => fuzz_dims(&mut r, &mut c.defs[1]),
                    3 => c.p.requant = Some(fuzz_requant(&mut r, c.o, 0, 0)),
                    _ => c.p.clamp = fuzz_clamp(&mut r),
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
