//! AVERAGE_POOL_2D and MAX_POOL_2D, int8 and f32, matching TFLM's reference
//! `AveragePool` / `MaxPool` (int8 bit for bit, f32 in accumulation order).
//!
//! Windows are clipped to the image once per output position; the average divides by the
//! number of taps inside the image, rounding half away from zero like TFLM
//! (`(acc ± count/2) / count`, C truncating division). Channels are processed in
//! contiguous chunks with the accumulators on the stack.

use edgeflow_format::graph::{DType, PoolParams, TensorDef};

use super::generic::elem::{
    acc_block, acc_block_bytes, check_clamp_f, check_clamp_q, clamp_f32, f32_of,
};
use super::generic::window::Axis;
use super::{TensorIn, TensorOut};

/// Channels accumulated together per pass.
const CHUNK: usize = 32;

/// Largest window area for which an int8 sum cannot overflow `i32`.
const MAX_AREA: u64 = 1 << 23;

#[derive(Clone, Copy, Debug)]
struct Geom {
    batches: usize,
    h: Axis,
    w: Axis,
    c: usize,
}

fn geom(p: &PoolParams, x: &TensorDef<'_>, out: &TensorDef<'_>) -> Result<Geom, &'static str> {
    if x.shape.rank != 4 || out.shape.rank != 4 {
        return Err(why!("pool.rs", "input and output must be rank 4 (NHWC)"));
    }
    let batches = x.shape.dim(0);
    let c = x.shape.dim(3);
    if out.shape.dim(0) != batches || out.shape.dim(3) != c {
        return Err(why!(
            "pool.rs",
            "input and output batch or channel counts differ"
        ));
    }
    if c == 0 {
        return Err(why!("pool.rs", "zero channels"));
    }
    if (p.filter[0] as u64) * (p.filter[1] as u64) > MAX_AREA {
        return Err(why!("pool.rs", "pooling window too large"));
    }
    let h = Axis::new(
        x.shape.dim(1),
        p.filter[0] as usize,
        p.stride[0],
        1,
        p.pad[0],
        out.shape.dim(1),
    )?;
    let w = Axis::new(
        x.shape.dim(2),
        p.filter[1] as usize,
        p.stride[1],
        1,
        p.pad[1],
        out.shape.dim(2),
    )?;
    Ok(Geom { batches, h, w, c })
}

fn check_common(
    p: &PoolParams,
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
) -> Result<(), &'static str> {
    let [x] = inputs else {
        return Err(why!("pool.rs", "pooling takes exactly one input"));
    };
    geom(p, x, output)?;
    if x.dtype != output.dtype {
        return Err(why!("pool.rs", "input and output types differ"));
    }
    match output.dtype {
        DType::I8 => {
            let (Some(qi), Some(qo)) = (&x.quant, &output.quant) else {
                return Err(why!("pool.rs", "int8 tensor without quantization"));
            };
            // TFLM: |scale_in - scale_out| (in float) <= 1e-6 and equal zero points.
            if f64::from((qi.scale - qo.scale).abs()) > 1.0e-6 || qi.zero_point != qo.zero_point {
                return Err(why!(
                    "pool.rs",
                    "int8 pooling needs the same input and output quantization"
                ));
            }
            check_clamp_q(&p.clamp)
        }
        DType::F32 => check_clamp_f(&p.clamp),
        DType::I32 => Err(why!("pool.rs", "supported types: int8 and f32")),
    }
}

/// Verifies every precondition of [`eval_average`].
pub(crate) fn check_average(
    p: &PoolParams,
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
    scratch_len: usize,
) -> Result<(), &'static str> {
    check_common(p, inputs, output)?;
    if scratch_len < average_scratch_bytes(output) {
        return Err(super::SCRATCH_TOO_SMALL);
    }
    Ok(())
}

/// Scratch an AVERAGE_POOL_2D needs: for int8, a block of [`CHUNK`] int32 sums
/// ([`acc_block_bytes`]), kept in the arena rather than on the stack; f32 needs none.
pub(crate) fn average_scratch_bytes(output: &TensorDef<'_>) -> usize {
    if output.dtype == DType::I8 {
        acc_block_bytes(CHUNK)
    } else {
        0
    }
}

/// Verifies every precondition of [`eval_max`].
pub(crate) fn check_max(
    p: &PoolParams,
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
) -> Result<(), &'static str> {
    check_common(p, inputs, output)
}

/// Executes an AVERAGE_POOL_2D that passed [`check_average`].
///
/// Never inlined: the pool's window state and accumulator block then sit in a frame of
/// their own, not in the op dispatch's frame under every other kernel.
#[inline(never)]
pub(crate) fn eval_average(
    p: &PoolParams,
    inputs: &[TensorIn<'_, '_>],
    output: TensorOut<'_, '_>,
    scratch: &mut [u8],
) {
    eval(p, inputs, output, Kind::Average, scratch);
}

/// Executes a MAX_POOL_2D that passed [`check_max`].
///
/// Never inlined: the pool's window state and accumulator block then sit in a frame of
/// their own, not in the op dispatch's frame under every other kernel.
#[inline(never)]
pub(crate) fn eval_max(p: &PoolParams, inputs: &[TensorIn<'_, '_>], output: TensorOut<'_, '_>) {
    eval(p, inputs, output, Kind::Max, &mut []);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Average,
    Max,
}

#[inline(always)]
fn eval(
    p: &PoolParams,
    inputs: &[TensorIn<'_, '_>],
    output: TensorOut<'_, '_>,
    kind: Kind,
    scratch: &mut [u8],
) {
    let Some(x) = inputs.first() else {
        return;
    };
    let Ok(g) = geom(p, x.def, output.def) else {
        return;
    };
    match (output.def.dtype, kind) {
        (DType::I8, Kind::Average) => {
            if let Some(acc) = acc_block::<CHUNK>(scratch) {
                average_i8(&g, p, x.data, output.data, acc);
            }
        }
        (DType::I8, Kind::Max) => max_i8(&g, p, x.data, output.data),
        #[cfg(edgeflow_f32)]
        (DType::F32, _) => pool_f32(&g, p, x.data, output.data, kind),
        _ => {}
    }
}

/// Calls `f(window, out_pixel)` for every output pixel, in output order.
#[inline(always)]
fn for_each_pixel<F>(g: &Geom, elem: usize, out: &mut [u8], mut f: F)
where
    F: FnMut(&Window, &mut [u8]),
{
    let row = g.w.size * g.c * elem;
    let img = g.h.size * row;
    let step = g.c * elem;
    let mut px = out.chunks_exact_mut(step);
    for b in 0..g.batches {
        for oy in 0..g.h.out {
            let (iy0, ky0, ky1) = g.h.window(oy);
            for ox in 0..g.w.out {
                let (ix0, kx0, kx1) = g.w.window(ox);
                let Some(o) = px.next() else {
                    return;
                };
                let (rows, cols) = (ky1 - ky0, kx1 - kx0);
                let first_row = if rows > 0 && cols > 0 {
                    b * img + g.h.at(iy0, ky0) * row + g.w.at(ix0, kx0) * step
                } else {
                    0
                };
                let win = Window {
                    first_row,
                    rows,
                    cols,
                    row,
                    step,
                };
                f(&win, o);
            }
        }
    }
}

/// The in-image taps of one window: `rows x cols` pixels, `step` bytes apart within a
/// row and `row` bytes apart between rows, the first at byte `first_row`.
struct Window {
    first_row: usize,
    rows: usize,
    cols: usize,
    row: usize,
    step: usize,
}

impl Window {
    /// Visits every tap's slice of `len` bytes starting `offset` bytes into the pixel.
    #[inline(always)]
    fn taps<'x>(&self, x: &'x [u8], offset: usize, len: usize, mut f: impl FnMut(&'x [u8])) {
        for r in 0..self.rows {
            let start = self.first_row + r * self.row + offset;
            for t in 0..self.cols {
                let s = start + t * self.step;
                if let Some(v) = x.get(s..s + len) {
                    f(v);
                }
            }
        }
    }

    fn count(&self) -> usize {
        self.rows * self.cols
    }
}

/// int8 average pooling, summing up to [`CHUNK`] channels at a time in `acc` (scratch).
fn average_i8(g: &Geom, p: &PoolParams, x: &[u8], out: &mut [u8], acc: &mut [i32; CHUNK]) {
    let (lo, hi) = (p.clamp.min_q, p.clamp.max_q);
    for_each_pixel(g, 1, out, |win, o| {
        let count = win.count() as i32;
        let half = count / 2;
        let mut c0 = 0;
        for oc in o.chunks_mut(CHUNK) {
            let n = oc.len();
            let acc = &mut acc[..n];
            acc.fill(0);
            win.taps(x, c0, n, |v| {
                for (a, &xv) in acc.iter_mut().zip(v) {
                    *a = a.wrapping_add(xv as i8 as i32);
                }
            });
            average_out(oc, acc, (half, count), (lo, hi));
            c0 += n;
        }
    });
}

/// TFLM's int8 average from window sums: each sum rounded half away from zero by
/// `half = count / 2`, divided by `count` (truncating), clamped to `lo..=hi`, written to
/// `out` (one byte per sum; `count` 0 gives 0).
#[inline(always)]
fn average_out(out: &mut [u8], sums: &[i32], (half, count): (i32, i32), (lo, hi): (i32, i32)) {
    for (ob, &a) in out.iter_mut().zip(sums) {
        let r = if a > 0 {
            a.wrapping_add(half)
        } else {
            a.wrapping_sub(half)
        };
        let v = r.checked_div(count).unwrap_or(0).clamp(lo, hi);
        *ob = v as i8 as u8;
    }
}

/// Host (`std`): an int8 AVERAGE_POOL_2D that passed [`check_average`] with its window
/// sums on the host's vector kernel (`arch::x86_64::window_sums`: eight channels per
/// instruction; the channels past the last whole eight as [`average_i8`] sums them), the
/// rounding division and clamp as [`average_i8`]'s, so the output is the same bit for
/// bit. Returns `false` (nothing written) where there is no such kernel (not x86_64 with
/// AVX2, `EDGEFLOW_NN_PORTABLE=1`) or the op is not int8; the caller then runs
/// [`eval_average`]. Accumulators on the stack (host only).
#[cfg(any(test, feature = "std"))]
pub(crate) fn eval_average_host(
    p: &PoolParams,
    inputs: &[TensorIn<'_, '_>],
    output: TensorOut<'_, '_>,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use super::arch::{x86_64, Isa};
        if Isa::detect() != Isa::Avx2 || output.def.dtype != DType::I8 {
            return false;
        }
        let Some(x) = inputs.first() else {
            return false;
        };
        let Ok(g) = geom(p, x.def, output.def) else {
            return false;
        };
        let (lo, hi) = (p.clamp.min_q, p.clamp.max_q);
        let xb = x.data;
        for_each_pixel(&g, 1, output.data, |win, o| {
            let count = win.count() as i32;
            let half = count / 2;
            let mut c0 = 0;
            for oc in o.chunks_mut(CHUNK) {
                let n = oc.len();
                let mut acc = [0i32; CHUNK];
                // Whole groups of eight on the vector kernel, the rest as `average_i8`.
                let n8 = n / 8 * 8;
                let taps = (win.first_row + c0, win.rows, win.cols, win.row, win.step);
                let vector = n8 > 0 && x86_64::window_sums(xb, taps, &mut acc[..n8]);
                let from = if vector { n8 } else { 0 };
                if let Some(rest) = acc.get_mut(from..n) {
                    win.taps(xb, c0 + from, n - from, |v| {
                        for (a, &xv) in rest.iter_mut().zip(v) {
                            *a = a.wrapping_add(xv as i8 as i32);
                        }
                    });
                }
                average_out(oc, &acc[..n], (half, count), (lo, hi));
                c0 += n;
            }
        });
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (p, inputs, output);
        false
    }
}

fn max_i8(g: &Geom, p: &PoolParams, x: &[u8], out: &mut [u8]) {
    let (lo, hi) = (p.clamp.min_q as i8, p.clamp.max_q as i8);
    for_each_pixel(g, 1, out, |win, o| {
        let mut c0 = 0;
        for oc in o.chunks_mut(CHUNK) {
            let n = oc.len();
            let mut acc = [i8::MIN; CHUNK];
            let acc = &mut acc[..n];
            win.taps(x, c0, n, |v| {
                for (a, &xv) in acc.iter_mut().zip(v) {
                    *a = (*a).max(xv as i8);
                }
            });
            for (ob, &a) in oc.iter_mut().zip(acc.iter()) {
                *ob = a.max(lo).min(hi) as u8;
            }
            c0 += n;
        }
    });
}

fn pool_f32(g: &Geom, p: &PoolParams, x: &[u8], out: &mut [u8], kind: Kind) {
    let (lo, hi) = (p.clamp.min_f, p.clamp.max_f);
    for_each_pixel(g, 4, out, |win, o| {
        let count = win.count() as f32;
        let mut c0 = 0;
        for oc in o.chunks_mut(CHUNK * 4) {
            let n = oc.len();
            let init = if kind == Kind::Average { 0.0 } else { f32::MIN };
            let mut acc = [init; CHUNK];
            let acc = &mut acc[..n / 4];
            win.taps(x, c0, n, |v| {
                for (a, xv) in acc.iter_mut().zip(v.chunks_exact(4)) {
                    let xv = f32_of(xv);
                    *a = match kind {
                        Kind::Average => *a + xv,
                        Kind::Max => {
                            if *a < xv {
                                xv
                            } else {
                                *a
                            }
                        }
                    };
                }
            });
            for (ob, &a) in oc.chunks_exact_mut(4).zip(acc.iter()) {
                let v = if kind == Kind::Average { a / count } else { a };
                ob.copy_from_slice(&clamp_f32(v, lo, hi).to_le_bytes());
            }
            c0 += n;
        }
    });
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::prelude::rust_2021::*;
    use std::vec;

    use super::*;
    /// The int8 average pool's scratch (its accumulator block).
    const SCR: usize = acc_block_bytes(CHUNK);
    use crate::kernels::testutil::*;
    use edgeflow_format::graph::Clamp;

    /// TFLM's int8 `AveragePool` / `MaxPool` and float versions, transcribed.
    fn reference(
        p: &PoolParams,
        xd: &TensorDef<'_>,
        x: &[u8],
        od: &TensorDef<'_>,
        kind: Kind,
    ) -> Vec<u8> {
        let (n, ih, iw, c) = (
            xd.shape.dim(0),
            xd.shape.dim(1),
            xd.shape.dim(2),
            xd.shape.dim(3),
        );
        let (oh, ow) = (od.shape.dim(1), od.shape.dim(2));
        let f32_io = xd.dtype == DType::F32;
        let mut out = Vec::new();
        for b in 0..n {
            for oy in 0..oh {
                for ox in 0..ow {
                    for ch in 0..c {
                        let x0 = (ox * p.stride[1] as usize) as i64 - p.pad[1] as i64;
                        let y0 = (oy * p.stride[0] as usize) as i64 - p.pad[0] as i64;
                        let fx0 = 0.max(-x0);
                        let fx1 = (p.filter[1] as i64).min(iw as i64 - x0);
                        let fy0 = 0.max(-y0);
                        let fy1 = (p.filter[0] as i64).min(ih as i64 - y0);
                        let mut acc = 0i32;
                        let mut mx = i8::MIN;
                        let mut total = 0.0f32;
                        let mut fmax = f32::MIN;
                        let mut cnt = 0i32;
                        let mut fcnt = 0.0f32;
                        for fy in fy0..fy1 {
                            for fx in fx0..fx1 {
                                let i = ((b * ih + (y0 + fy) as usize) * iw + (x0 + fx) as usize)
                                    * c
                                    + ch;
                                if f32_io {
                                    let v = le_f32_at(x, i);
                                    total += v;
                                    fmax = if fmax < v { v } else { fmax };
                                    fcnt += 1.0;
                                } else {
                                    acc += x[i] as i8 as i32;
                                    mx = mx.max(x[i] as i8);
                                    cnt += 1;
                                }
                            }
                        }
                        if f32_io {
                            let v = if kind == Kind::Average {
                                total / fcnt
                            } else {
                                fmax
                            };
                            out.extend_from_slice(
                                &clamp_f32(v, p.clamp.min_f, p.clamp.max_f).to_le_bytes(),
                            );
                        } else if kind == Kind::Average {
                            assert!(cnt > 0);
                            acc = if acc > 0 {
                                (acc + cnt / 2) / cnt
                            } else {
                                (acc - cnt / 2) / cnt
                            };
                            out.push(acc.max(p.clamp.min_q).min(p.clamp.max_q) as i8 as u8);
                        } else {
                            out.push(mx.max(p.clamp.min_q as i8).min(p.clamp.max_q as i8) as u8);
                        }
                    }
                }
            }
        }
        out
    }

    fn le_f32_at(b: &[u8], i: usize) -> f32 {
        f32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
    }

    fn random_case(
        r: &mut Rng,
        dtype: DType,
    ) -> Option<(PoolParams, TensorDef<'static>, Vec<u8>, TensorDef<'static>)> {
        let n = r.usize(1, 2);
        let (ih, iw) = (r.usize(1, 12), r.usize(1, 12));
        let c = if r.range(0, 4) == 0 {
            r.usize(30, 80)
        } else {
            r.usize(1, 8)
        };
        let (fh, fw) = (r.usize(1, 5), r.usize(1, 5));
        let (sh, sw) = (r.usize(1, 3), r.usize(1, 3));
        let pick = |r: &mut Rng, n: usize, f: usize, s: usize| -> Option<(usize, usize)> {
            if r.bool() {
                let out = n.div_ceil(s);
                let total = ((out - 1) * s + f).saturating_sub(n);
                Some((out, total / 2))
            } else if n >= f {
                Some(((n - f) / s + 1, 0))
            } else {
                None
            }
        };
        let (oh, ph) = pick(r, ih, fh, sh)?;
        let (ow, pw) = pick(r, iw, fw, sw)?;
        let zp = r.range(-128, 127) as i32;
        let xd = tensor(dtype, &[n as u32, ih as u32, iw as u32, c as u32], 0.25, zp);
        let od = tensor(dtype, &[n as u32, oh as u32, ow as u32, c as u32], 0.25, zp);
        let clamp = if dtype == DType::I8 {
            random_clamp_q(r)
        } else {
            random_clamp_f(r)
        };
        let p = PoolParams {
            filter: [fh as u16, fw as u16],
            stride: [sh as u16, sw as u16],
            pad: [ph as u16, pw as u16],
            clamp,
        };
        let data = if dtype == DType::I8 {
            r.bytes(n * ih * iw * c)
        } else {
            r.f32_bytes(n * ih * iw * c)
        };
        Some((p, xd, data, od))
    }

    #[test]
    fn matches_reference_on_random_cases() {
        let mut r = Rng::new(31);
        let mut done = 0;
        while done < 2000 {
            let dtype = if done % 3 == 0 { DType::F32 } else { DType::I8 };
            let Some((p, xd, x, od)) = random_case(&mut r, dtype) else {
                continue;
            };
            for kind in [Kind::Average, Kind::Max] {
                let defs = [xd];
                match kind {
                    Kind::Average => check_average(&p, &defs, &od, SCR).expect("check"),
                    Kind::Max => check_max(&p, &defs, &od).expect("check"),
                }
                let got = run(&defs, core::slice::from_ref(&x), &od, |i, o| match kind {
                    Kind::Average => eval_average(&p, i, o, &mut [0u8; SCR]),
                    Kind::Max => eval_max(&p, i, o),
                });
                assert_eq!(
                    got,
                    reference(&p, &xd, &x, &od, kind),
                    "case {done}: {p:?} {:?}",
                    xd.shape
                );
            }
            done += 1;
        }
    }

    /// An int8 average-pool case of [`random_case`], or (one in five: `range` is inclusive) a global pool over
    /// the whole image, the shape of KWS's last pool (25x5 there).
    fn host_case(
        r: &mut Rng,
    ) -> Option<(PoolParams, TensorDef<'static>, Vec<u8>, TensorDef<'static>)> {
        let (mut p, xd, x, mut od) = random_case(r, DType::I8)?;
        if r.range(0, 4) == 0 {
            let (n, ih, iw, c) = (
                xd.shape.dim(0),
                xd.shape.dim(1),
                xd.shape.dim(2),
                xd.shape.dim(3),
            );
            p.filter = [ih as u16, iw as u16];
            p.stride = [1, 1];
            p.pad = [0, 0];
            od = tensor(
                DType::I8,
                &[n as u32, 1, 1, c as u32],
                0.25,
                xd.quant.as_ref()?.zero_point,
            );
        }
        check_average(&p, &[xd], &od, SCR).ok()?;
        Some((p, xd, x, od))
    }

    specialised_matches_portable!(
        /// The host's AVERAGE_POOL_2D (window sums on AVX2, eight channels per
        /// instruction; the remaining channels scalar) against the portable kernel: odd
        /// channel counts, clipped windows at the borders, strides, global pools, extreme
        /// values. On a CPU without AVX2 it says so and compares the portable kernel with
        /// itself.
        host_average_pool_matches_portable {
            seed: 35,
            cases: 1500,
            generate: host_case,
            portable: |(p, xd, x, od): &(PoolParams, TensorDef<'static>, Vec<u8>, TensorDef<'static>)| {
                run(&[*xd], core::slice::from_ref(x), od, |i, o| {
                    eval_average(p, i, o, &mut [0u8; SCR])
                })
            },
            specialised: |(p, xd, x, od): &(PoolParams, TensorDef<'static>, Vec<u8>, TensorDef<'static>)| {
                run(&[*xd], core::slice::from_ref(x), od, |i, o| {
                    // What the host path itself detects: without `std` (a plain
                    // `cargo test -p edgeflow-nn`) detection reports the portable ISA.
                    let avx2 = crate::kernels::arch::Isa::detect()
                        == crate::kernels::arch::Isa::Avx2;
                    let o2 = TensorOut {
                        def: o.def,
                        data: &mut *o.data,
                    };
                    if !eval_average_host(p, i, o2) {
                        assert!(!avx2, "AVX2 is here, but the host path declined");
                        eval_average(p, i, o, &mut [0u8; SCR]);
                    }
                })
            },
        }
    );

    #[test]
    fn hand_computed_int8_average_rounding() {
        // 1x2x2x1, 2x2 window, SAME stride 1 -> 2x2 with clipped windows.
        let x: Vec<u8> = [1i8, 2, -3, -4].iter().map(|&v| v as u8).collect();
        let p = PoolParams {
            filter: [2, 2],
            stride: [1, 1],
            pad: [0, 0],
            clamp: Clamp::NONE,
        };
        let xd = tensor(DType::I8, &[1, 2, 2, 1], 1.0, 0);
        let od = tensor(DType::I8, &[1, 2, 2, 1], 1.0, 0);
        check_average(&p, &[xd], &od, SCR).unwrap();
        let got: Vec<i8> = run(&[xd], &[x], &od, |i, o| {
            eval_average(&p, i, o, &mut [0u8; SCR])
        })
        .into_iter()
        .map(|v| v as i8)
        .collect();
        // (1+2-3-4)/4 = -1; (2-4)/2 = -1; (-3-4)/2 = -3.5 -> -4; -4.
        assert_eq!(got, vec![-1, -1, -4, -4]);
    }

    #[test]
    fn check_rejects_bad_ops() {
        let p = PoolParams {
            filter: [2, 2],
            stride: [2, 2],
            pad: [0, 0],
            clamp: Clamp::NONE,
        };
        let xd = tensor(DType::I8, &[1, 4, 4, 3], 0.5, 1);
        let od = tensor(DType::I8, &[1, 2, 2, 3], 0.5, 1);
        assert!(check_average(&p, &[xd], &od, SCR).is_ok());
        assert!(check_max(&p, &[xd], &od).is_ok());
        let od2 = tensor(DType::I8, &[1, 2, 2, 3], 0.5, 2);
        assert!(check_average(&p, &[xd], &od2, SCR).is_err());
        let od3 = tensor(DType::I8, &[1, 2, 2, 3], 0.51, 1);
        assert!(check_max(&p, &[xd], &od3).is_err());
        let od4 = tensor(DType::I8, &[1, 3, 2, 3], 0.5, 1);
        assert!(check_max(&p, &[xd], &od4).is_err());
        let od5 = tensor(DType::F32, &[1, 2, 2, 3], 0.5, 1);
        assert!(check_max(&p, &[xd], &od5).is_err());
        let mut bad = p;
        bad.pad = [2, 0];
        assert!(check_average(&bad, &[xd], &od, SCR).is_err());
        let mut bad = p;
        bad.stride = [0, 2];
        assert!(check_average(&bad, &[xd], &od, SCR).is_err());
        assert!(check_average(&p, &[xd, xd], &od, SCR).is_err());
        // int8 average pooling needs its accumulator block in scratch.
        assert!(check_average(&p, &[xd], &od, SCR - 1).is_err());
        assert_eq!(average_scratch_bytes(&od), SCR);
        assert_eq!(average_scratch_bytes(&od5), 0);
    }

    #[test]
    fn eval_never_panics_after_check() {
        let mut r = Rng::new(34);
        let mut evaluated = 0;
        for _ in 0..4000 {
            let dtype = if r.bool() { DType::I8 } else { DType::F32 };
            let Some((mut p, mut xd, _, mut od)) = random_case(&mut r, dtype) else {
                continue;
            };
            for _ in 0..r.usize(1, 3) {
                let i = r.usize(0, 1);
                match r.range(0, 5) {
                    0 => p.stride[i] = fuzz_u16(&mut r),
                    1 => p.filter[i] = fuzz_u16(&mut r),
                    2 => p.pad[i] = fuzz_u16(&mut r),
                    3 => fuzz_dims(&mut r, &mut od),
                    4 => fuzz_dims(&mut r, &mut xd),
                    _ => p.clamp = fuzz_clamp(&mut r),
                }
            }
            let defs = [xd];
            let avg = check_average(&p, &defs, &od, SCR).is_ok();
            let max = check_max(&p, &defs, &od).is_ok();
            let data = fuzz_data(&mut r, &defs);
            if avg {
                run(&defs, &data, &od, |i, o| {
                    eval_average(&p, i, o, &mut [0u8; SCR])
                });
            }
            if max {
                run(&defs, &data, &od, |i, o| eval_max(&p, i, o));
            }
            evaluated += usize::from(avg || max);
        }
        assert!(evaluated > 300, "{evaluated}");
    }
}
