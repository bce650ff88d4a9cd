//! MEAN over the axes in `axes_mask`, int8 and f32.
//!
//! int8: TFLM 90b983c2 runs *every* int8 MEAN — the 4-D axes-{1,2} case included — through
//! `reference_ops::QuantizedMeanOrSum<int8_t, int32_t>` (`reduce.h`, via
//! `QuantizedMeanOrSumExtraArgs`; its special 4-D path is float-only). That is: an int32
//! sum of the raw values (wrapping), `sum - input_zp * n` truncated to int32, and one
//! `MultiplyByQuantizedMultiplier` with the multiplier `input_scale / output_scale`
//! folded with `1 / n` as `(multiplier << s) / n`, `shift - s`, `s = min(floor(log2 n),
//! 32, 31 + shift)`; plus the output zero point, clamped.
//!
//! f32: TFLM uses `reference_ops::Mean` (4-D, keep_dims, axes {1,2}) or the generic
//! `reference_ops::Mean<float, float>`. Both add each output's inputs in increasing input
//! order starting from 0.0f and divide by `(float)n`, so one implementation reproduces
//! both.
//!
//! Each output is computed from its own inputs (integer sums are order-independent;
//! float sums keep TFLM's order), so no scratch is needed.

use edgeflow_format::graph::{DType, MeanParams, TensorDef, MAX_RANK};

use super::generic::elem::f32_of as rd_f32;
use super::{TensorIn, TensorOut};
use crate::fixedpoint::multiply_by_quantized_multiplier;

/// Whether bit `i` of the mask is set.
pub(crate) fn is_reduced(axes_mask: u8, i: usize) -> bool {
    i < 8 && (axes_mask >> i) & 1 != 0
}

/// The output shape of a reduction, or an error if the mask names a dim past the rank.
pub(crate) fn reduced_dims(
    input_dims: &[u32],
    axes_mask: u8,
    keep_dims: bool,
) -> Result<([u32; MAX_RANK], usize), &'static str> {
    let rank = input_dims.len();
    if rank < 8 && (axes_mask >> rank) != 0 {
        return Err(why!(
            "mean.rs",
            "axes mask names a dimension past the input rank"
        ));
    }
    let mut dims = [0u32; MAX_RANK];
    let mut n = 0;
    for (i, &d) in input_dims.iter().enumerate() {
        let reduced = is_reduced(axes_mask, i);
        if !reduced || keep_dims {
            let slot = dims.get_mut(n).ok_or(why!("mean.rs", "rank above 6"))?;
            *slot = if reduced { 1 } else { d };
            n += 1;
        }
    }
    Ok((dims, n))
}

pub(crate) fn check(
    p: &MeanParams,
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
) -> Result<(), &'static str> {
    let input = match inputs {
        [input] => input,
        [input, axes] => {
            if axes.dtype != DType::I32 {
                return Err(why!("mean.rs", "the axes input must be int32"));
            }
            input
        }
        _ => {
            return Err(why!(
                "mean.rs",
                "needs one input (and optionally the axes tensor)"
            ))
        }
    };
    if input.dtype != output.dtype {
        return Err(why!("mean.rs", "input and output types differ"));
    }
    let (dims, n) = reduced_dims(input.shape.dims(), p.axes_mask, p.keep_dims)?;
    let out = output.shape.dims();
    // A full reduction without keep_dims is a scalar; accept [] and [1].
    if dims.get(..n) != Some(out) && !(n == 0 && out == [1]) {
        return Err(why!("mean.rs", "output shape does not match the reduction"));
    }
    match input.dtype {
        DType::F32 => Ok(()),
        DType::I8 => {
            let iq = input
                .quant
                .as_ref()
                .ok_or(why!("mean.rs", "int8 input without quantization"))?;
            let oq = output
                .quant
                .as_ref()
                .ok_or(why!("mean.rs", "int8 output without quantization"))?;
            if p.input_zero_point != iq.zero_point || p.output_zero_point != oq.zero_point {
                return Err(why!("mean.rs", "zero points do not match the tensors"));
            }
            // QuantizeMultiplier output: shift >= -31 keeps the folded shift >= -31.
            if p.requant.multiplier < 0 || !(-31..=30).contains(&p.requant.shift) {
                return Err(why!(
                    "mean.rs",
                    "MEAN multiplier negative or shift outside [-31, 30]"
                ));
            }
            Ok(())
        }
        DType::I32 => Err(why!("mean.rs", "only int8 and f32 are supported")),
    }
}

/// A list of up to [`MAX_RANK`] `(extent, stride)` loop dims, outermost first.
#[derive(Clone, Copy)]
struct Loops {
    n: usize,
    dims: [(usize, usize); MAX_RANK],
}

impl Loops {
    const EMPTY: Loops = Loops {
        n: 0,
        dims: [(0, 0); MAX_RANK],
    };

    fn as_slice(&self) -> &[(usize, usize)] {
        self.dims.get(..self.n).unwrap_or(&[])
    }

    /// Adds a dim outside the current outermost one (the list is built innermost first
    /// and reversed at the end); merges it into the last one if `merge`.
    fn push_outer(&mut self, extent: usize, stride: usize, merge: bool) {
        if merge {
            if let Some(last) = self.n.checked_sub(1).and_then(|k| self.dims.get_mut(k)) {
                last.0 = last.0.saturating_mul(extent);
                return;
            }
        }
        if let Some(slot) = self.dims.get_mut(self.n) {
            *slot = (extent, stride);
            self.n += 1;
        }
    }

    fn reverse(&mut self) {
        if let Some(s) = self.dims.get_mut(..self.n) {
            s.reverse();
        }
    }
}

/// The input split into kept and reduced dims, adjacent dims of the same kind merged,
/// extent-1 dims dropped.
struct Plan {
    kept: Loops,
    reduced: Loops,
    /// Elements per output (product of the reduced extents).
    count: usize,
}

impl Plan {
    fn new(input_dims: &[u32], axes_mask: u8) -> Self {
        let mut plan = Plan {
            kept: Loops::EMPTY,
            reduced: Loops::EMPTY,
            count: 1,
        };
        // Walk innermost first, so strides are known; flip at the end.
        let mut stride = 1usize;
        let mut last: Option<bool> = None; // kind of the previous (inner) non-1 dim
        for (i, &d) in input_dims.iter().enumerate().rev() {
            let d = d as usize;
            let reduced = is_reduced(axes_mask, i);
            if reduced {
                plan.count = plan.count.saturating_mul(d);
            }
            if d != 1 {
                let loops = if reduced {
                    &mut plan.reduced
                } else {
                    &mut plan.kept
                };
                loops.push_outer(d, stride, last == Some(reduced));
                last = Some(reduced);
            }
            stride = stride.saturating_mul(d);
        }
        plan.kept.reverse();
        plan.reduced.reverse();
        plan
    }

    /// Calls `f(base)` for each output in order, with the input offset of its first input.
    #[inline(always)]
    fn for_each_output(&self, f: impl FnMut(usize)) {
        odometer(self.kept.as_slice(), f);
    }

    /// Calls `f(offset)` for the inputs of the output at `base`, in increasing order.
    #[inline(always)]
    fn for_each_input(&self, base: usize, mut f: impl FnMut(usize)) {
        let Some((&(len, step), outer)) = self.reduced.as_slice().split_last() else {
            f(base);
            return;
        };
        // Innermost reduced dim as a tight strided loop.
        odometer(outer, |start| {
            let mut off = base.wrapping_add(start);
            for _ in 0..len {
                f(off);
                off = off.wrapping_add(step);
            }
        });
    }
}

/// Visits every multi-index of `loops` in row-major order, passing the strided offset.
#[inline(always)]
fn odometer(loops: &[(usize, usize)], mut f: impl FnMut(usize)) {
    let total: usize = loops.iter().map(|l| l.0).product();
    let mut idx = [0usize; MAX_RANK];
    let mut off = 0usize;
    for _ in 0..total {
        f(off);
        for (i, &(extent, stride)) in idx.iter_mut().zip(loops).rev() {
            *i += 1;
            off = off.wrapping_add(stride);
            if *i < extent {
                break;
            }
            off = off.wrapping_sub(stride.wrapping_mul(extent));
            *i = 0;
        }
    }
}

pub(crate) fn eval(p: &MeanParams, inputs: &[TensorIn<'_, '_>], output: TensorOut<'_, '_>) {
    let Some(input) = inputs.first() else {
        return;
    };
    let dims = input.def.shape.dims();
    let plan = Plan::new(dims, p.axes_mask);
    let (Some(n_in), Some(n_out)) = (
        input.def.shape.num_elements(),
        output.def.shape.num_elements(),
    ) else {
        return;
    };
    let size = input.def.dtype.size();
    let kept_total: usize = plan.kept.as_slice().iter().map(|l| l.0).product();
    if input.data.len() != n_in.wrapping_mul(size)
        || output.data.len() != n_out.wrapping_mul(size)
        || kept_total != n_out
    {
        return;
    }
    let data = input.data;
    match input.def.dtype {
        DType::I8 => {
            let n = plan.count as i64;
            // QuantizedMeanOrSum's folding of 1/n into the multiplier.
            // (check keeps requant.shift in [-31, 30], so shift is in [0, 32] and the folded
            // shift stays >= -31.)
            let shift = (63 - (n as u64).leading_zeros() as i32)
                .min(32)
                .min(p.requant.shift.saturating_add(31))
                .clamp(0, 32);
            let multiplier = (((p.requant.multiplier as i64) << shift) / n.max(1)) as i32;
            let out_shift = p.requant.shift.saturating_sub(shift);
            let offset = (p.input_zero_point as i64).wrapping_mul(n);
            let mut out = output.data.iter_mut();
            plan.for_each_output(|base| {
                let mut sum: i32 = 0;
                plan.for_each_input(base, |off| {
                    if let Some(&x) = data.get(off) {
                        sum = sum.wrapping_add(x as i8 as i32);
                    }
                });
                let shifted_sum = (sum as i64).wrapping_sub(offset) as i32;
                let v = multiply_by_quantized_multiplier(shifted_sum, multiplier, out_shift)
                    .wrapping_add(p.output_zero_point);
                if let Some(o) = out.next() {
                    *o = v.clamp(-128, 127) as i8 as u8;
                }
            });
        }
        DType::F32 => {
            let count = plan.count as f32;
            let mut out = output.data.chunks_exact_mut(4);
            plan.for_each_output(|base| {
                let mut sum = 0.0f32;
                plan.for_each_input(base, |off| {
                    if let Some(c) =
                        data.get(off.wrapping_mul(4)..off.wrapping_mul(4).wrapping_add(4))
                    {
                        sum += rd_f32(c);
                    }
                });
                if let Some(o) = out.next() {
                    o.copy_from_slice(&(sum / count).to_le_bytes());
                }
            });
        }
        DType::I32 => {}
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::kernels::testutil::simple::*;
    use crate::params::elementwise::mean_params;

    /// Computed by TFLM 90b983c2's `QuantizedMeanOrSum<int8_t, int32_t>` (the path TFLM
    /// takes for an int8 4-D mean over axes {1, 2} with keep_dims).
    #[test]
    fn int8_matches_tflm_vector() {
        let (si, so) = (f32::from_bits(0x3e04_aba9), f32::from_bits(0x3c3b_bc43));
        let p = mean_params((si, 32), (so, 36), 0b0110, true);
        assert_eq!((p.requant.multiplier, p.requant.shift), (1517603155, 4));
        let (i, o) = (i8t(&[1, 2, 6, 4], si, 32), i8t(&[1, 1, 1, 4], so, 36));
        check(&p, &[i], &o).unwrap();
        let x = [
            111, 81, -11, 42, 104, 3, -102, 98, 30, -70, 69, 70, 0, -44, -77, -90, -72, 85, 41,
            -62, 7, -98, -67, -98, -88, -49, 72, 50, 17, 51, -74, 89, 85, -25, 61, 16, -94, -7,
            -85, 125, -64, -2, -2, 83, -12, 90, 110, 85,
        ];
        let got = to_i8s(&run(&[(&i, &i8_bytes(&x))], &o, |a, b| eval(&p, a, b)));
        assert_eq!(got, [-128, -128, -128, 59]);
    }

    #[test]
    fn f32_hand_checked() {
        // [2, 3], mean over axis 1 and over axis 0.
        let i = f32t(&[2, 3]);
        let x = f32_bytes(&[1., 2., 3., 4., 5., 7.]);
        let p = mean_params((0.0, 0), (0.0, 0), 0b10, false);
        let o = f32t(&[2]);
        check(&p, &[i], &o).unwrap();
        assert_eq!(
            to_f32s(&run(&[(&i, &x)], &o, |a, b| eval(&p, a, b))),
            [2.0, 16.0 / 3.0]
        );
        let p = mean_params((0.0, 0), (0.0, 0), 0b01, true);
        let o = f32t(&[1, 3]);
        check(&p, &[i], &o).unwrap();
        assert_eq!(
            to_f32s(&run(&[(&i, &x)], &o, |a, b| eval(&p, a, b))),
            [2.5, 3.5, 5.0]
        );
        let p = mean_params((0.0, 0), (0.0, 0), 0b11, false);
        let o = f32t(&[]);
        check(&p, &[i], &o).unwrap();
        assert_eq!(
            to_f32s(&run(&[(&i, &x)], &o, |a, b| eval(&p, a, b))),
            [22.0 / 6.0]
        );
    }

    #[test]
    fn int8_hand_checked() {
        // Global average pool of a 1x2x2x2 tensor, same scale: mean of (zp 1) values.
        let i = i8t(&[1, 2, 2, 2], 0.5, 1);
        let o = i8t(&[1, 1, 1, 2], 0.5, 1);
        let p = mean_params((0.5, 1), (0.5, 1), 0b0110, true);
        check(&p, &[i, tensor(DType::I32, &[2], None)], &o).unwrap();
        // Multiplier 1.0 = (2^30, 1); n = 4 folds to (2^30, -1): x * 2^30 / 2^31 rounded,
        // then a rounding shift by 1 (TFLite's double rounding).
        // channel 0: 1, 3, 5, 8: 17 - 4*1 = 13 -> 13/2 = 6.5 -> 7 -> 7/2 = 3.5 -> 4 -> q 5
        //   (the real mean is 3.25: double rounding gives 4 where a single rounding gives 3).
        // channel 1: -1, -1, -2, -2: -6 - 4 = -10 -> -5 -> -2.5 -> -3 -> q -2.
        let x = i8_bytes(&[1, -1, 3, -1, 5, -2, 8, -2]);
        assert_eq!(
            to_i8s(&run(&[(&i, &x)], &o, |a, b| eval(&p, a, b))),
            [5, -2]
        );
    }

    /// TFLM's QuantizedMeanOrSum, written out with a temp_sum array in input order.
    fn reference_i8(p: &MeanParams, dims: &[u32], x: &[u8]) -> std::vec::Vec<i8> {
        let kept: std::vec::Vec<u32> = dims
            .iter()
            .enumerate()
            .map(|(i, &d)| if p.axes_mask & (1 << i) != 0 { 1 } else { d })
            .collect();
        let n_out: usize = kept.iter().map(|&d| d as usize).product();
        let mut temp = std::vec![0i32; n_out];
        for (k, &v) in x.iter().enumerate() {
            let idx = unravel(k, dims);
            let mut off = 0;
            for (d, &e) in kept.iter().enumerate() {
                off = off * e as usize + if e == 1 { 0 } else { idx[d] };
            }
            temp[off] = temp[off].wrapping_add(v as i8 as i32);
        }
        let n: i64 = dims
            .iter()
            .enumerate()
            .filter(|(i, _)| p.axes_mask & (1 << i) != 0)
            .map(|(_, &d)| d as i64)
            .product();
        let mut shift = 63 - (n as u64).leading_zeros() as i32;
        shift = shift.min(32);
        shift = shift.min(31 + p.requant.shift);
        let m = (((p.requant.multiplier as i64) << shift) / n) as i32;
        let s = p.requant.shift - shift;
        temp.iter()
            .map(|&t| {
                let shifted = (t as i64 - p.input_zero_point as i64 * n) as i32;
                let o = multiply_by_quantized_multiplier(shifted, m, s) + p.output_zero_point;
                o.clamp(-128, 127) as i8
            })
            .collect()
    }

    #[test]
    fn property_matches_reference() {
        let mut rng = Rng(0x5eed);
        for case in 0..500 {
            let r = rng.range(1, 6) as usize;
            let dims: std::vec::Vec<u32> = (0..r).map(|_| rng.range(1, 5) as u32).collect();
            let mask = (rng.next_u64() as u8) & ((1u16 << r) - 1) as u8;
            let keep = rng.range(0, 1) == 1;
            let (od, on) = reduced_dims(&dims, mask, keep).unwrap();
            let (si, so) = (0.01 + rng.unit() as f32, 0.01 + rng.unit() as f32);
            let (zi, zo) = (rng.range(-128, 127) as i32, rng.range(-128, 127) as i32);
            let p = mean_params((si, zi), (so, zo), mask, keep);
            let (i, o) = (i8t(&dims, si, zi), i8t(&od[..on], so, zo));
            check(&p, &[i], &o).unwrap();
            let x = rng.bytes(num(&i));
            let got = to_i8s(&run(&[(&i, &x)], &o, |a, b| eval(&p, a, b)));
            assert_eq!(
                got,
                reference_i8(&p, &dims, &x),
                "case {case}: {dims:?} mask {mask:b}"
            );

            // f32: same order of additions as TFLM's Reduce loop.
            let (fi, fo) = (f32t(&dims), f32t(&od[..on]));
            check(&p, &[fi], &fo).unwrap();
            let xf = rng.f32s(num(&fi) / 4, -3.0, 3.0);
            let got = to_f32s(&run(&[(&fi, &xf)], &fo, |a, b| eval(&p, a, b)));
            let vals = to_f32s(&xf);
            let n_out = got.len();
            let mut sums = std::vec![0.0f32; n_out];
            let kept: std::vec::Vec<u32> = dims
                .iter()
                .enumerate()
                .map(|(k, &d)| if mask & (1 << k) != 0 { 1 } else { d })
                .collect();
            for (k, &v) in vals.iter().enumerate() {
                let idx = unravel(k, &dims);
                let mut off = 0;
                for (d, &e) in kept.iter().enumerate() {
                    off = off * e as usize + if e == 1 { 0 } else { idx[d] };
                }
                sums[off] += v;
            }
            let count = (vals.len() / n_out) as f32;
            for k in 0..n_out {
                assert_eq!(
                    got[k].to_bits(),
                    (sums[k] / count).to_bits(),
                    "f32 case {case}"
                );
            }
        }
    }

    #[test]
    fn checks_reject() {
        let i = i8t(&[1, 4, 4, 3], 0.1, 0);
        let p = mean_params((0.1, 0), (0.1, 0), 0b0110, true);
        assert!(check(&p, &[i], &i8t(&[1, 1, 1, 3], 0.1, 0)).is_ok());
        assert!(check(&p, &[i], &i8t(&[1, 3], 0.1, 0)).is_err());
        let p2 = mean_params((0.1, 0), (0.1, 0), 0b0110, false);
        assert!(check(&p2, &[i], &i8t(&[1, 3], 0.1, 0)).is_ok());
        let p3 = mean_params((0.1, 0), (0.1, 0), 0b10000, false);
        assert!(check(&p3, &[i], &i8t(&[1, 4, 4, 3], 0.1, 0)).is_err());
        assert!(check(&p, &[i], &i8t(&[1, 1, 1, 3], 0.1, 2)).is_err());
        assert!(check(&p, &[i, f32t(&[2])], &i8t(&[1, 1, 1, 3], 0.1, 0)).is_err());
    }
}
