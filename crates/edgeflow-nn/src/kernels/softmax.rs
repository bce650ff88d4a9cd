//! SOFTMAX over the last dimension.
//!
//! int8 -> int8 reproduces TFLM's `reference_ops::Softmax<int8_t, int8_t>`
//! (`softmax.h`): differences to the row maximum at or above `diff_min` are rescaled
//! into Q5.26 (`MultiplyByQuantizedMultiplierGreaterThanOne`), exponentiated with
//! gemmlowp's `exp_on_negative_values`, summed in Q12.19, inverted with `GetReciprocal`
//! and scaled to the output (scale 1/256, zero point -128, as TFLM's Prepare demands).
//! f32 reproduces the float `reference_ops::Softmax`: `expf((x - max) * beta)` in f32,
//! summed in order, each divided by the sum.

use edgeflow_format::graph::{DType, SoftmaxParams, TensorDef};

use super::generic::elem::f32_of as rd_f32;
use super::generic::gemmlowp::{exp_on_negative_values, get_reciprocal};
use super::{TensorIn, TensorOut};
use crate::fixedpoint::{
    multiply_by_quantized_multiplier_greater_than_one, rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
};

/// Integer bits of the scaled differences (TFLite's `kScaledDiffIntegerBits`).
const SCALED_DIFF_INTEGER_BITS: u32 = 5;
/// Integer bits of the sum of exponentials (`kAccumulationIntegerBits`).
const ACCUMULATION_INTEGER_BITS: i32 = 12;

pub(crate) fn check(
    p: &SoftmaxParams,
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
) -> Result<(), &'static str> {
    let [input] = inputs else {
        return Err(why!("softmax.rs", "needs exactly one input"));
    };
    if input.dtype != output.dtype {
        return Err(why!("softmax.rs", "input and output types differ"));
    }
    if input.shape.dims().is_empty() {
        return Err(why!("softmax.rs", "input must have rank >= 1"));
    }
    if input.shape.dims() != output.shape.dims() {
        return Err(why!("softmax.rs", "input and output shapes differ"));
    }
    match input.dtype {
        DType::F32 => {
            if p.beta.is_nan() {
                return Err(why!("softmax.rs", "beta is NaN"));
            }
        }
        DType::I8 => {
            let q = output
                .quant
                .as_ref()
                .ok_or(why!("softmax.rs", "int8 output without quantization"))?;
            if q.zero_point != -128 || q.scale != 1.0 / 256.0 {
                return Err(why!(
                    "softmax.rs",
                    "int8 softmax output must have scale 1/256 and zero point -128"
                ));
            }
            // QuantizeMultiplierGreaterThanOne of a value in (1, 2^31 - 1].
            if !(1..=31).contains(&p.input_left_shift) || p.input_multiplier < 0 {
                return Err(why!(
                    "softmax.rs",
                    "softmax input multiplier or left shift out of range"
                ));
            }
            // diff_min = -CalculateInputRadius(5, input_left_shift): exactly this, so that
            // every rescaled difference fits in an i32.
            let radius = ((31i64 << 26) >> p.input_left_shift) as i32;
            if p.diff_min != -radius {
                return Err(why!(
                    "softmax.rs",
                    "softmax diff_min does not match the input left shift"
                ));
            }
        }
        DType::I32 => return Err(why!("softmax.rs", "only int8 and f32 are supported")),
    }
    Ok(())
}

pub(crate) fn eval(p: &SoftmaxParams, inputs: &[TensorIn<'_, '_>], output: TensorOut<'_, '_>) {
    let [input] = inputs else {
        return;
    };
    let depth = input.def.shape.dims().last().copied().unwrap_or(1) as usize;
    // Bytes per row; never zero for a checked op (dims are >= 1).
    let row_bytes = depth.saturating_mul(input.def.dtype.size());
    if row_bytes == 0 || input.data.len() != output.data.len() {
        return;
    }
    let rows = input
        .data
        .chunks_exact(row_bytes)
        .zip(output.data.chunks_exact_mut(row_bytes));
    match input.def.dtype {
        DType::I8 => {
            for (row, out) in rows {
                softmax_row_i8(p, row, out);
            }
        }
        #[cfg(edgeflow_f32)]
        DType::F32 => {
            for (row, out) in rows {
                softmax_row_f32(p.beta, row, out);
            }
        }
        _ => {}
    }
}

/// `exp(scaled difference)` in Q0 for a difference to the row maximum.
#[inline(always)]
fn exp_of_diff(p: &SoftmaxParams, diff: i32) -> i32 {
    let rescaled = multiply_by_quantized_multiplier_greater_than_one(
        diff,
        p.input_multiplier,
        p.input_left_shift,
    );
    exp_on_negative_values(rescaled, SCALED_DIFF_INTEGER_BITS)
}

fn softmax_row_i8(p: &SoftmaxParams, row: &[u8], out: &mut [u8]) {
    let max_in_row = row.iter().fold(i8::MIN, |m, &x| m.max(x as i8)) as i32;

    let mut sum_of_exps: i32 = 0; // Q12.19
    for &x in row {
        let diff = x as i8 as i32 - max_in_row;
        if diff >= p.diff_min {
            // Rescale<12> of a Q0 value: a rounding right shift by 12.
            sum_of_exps =
                sum_of_exps.wrapping_add(rounding_divide_by_pot(exp_of_diff(p, diff), 12));
        }
    }

    let (shifted_scale, num_bits_over_unit) =
        get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS);
    // TFLM checks 0 <= exponent <= 31 and aborts otherwise, which needs a sum of
    // exponentials >= 512 (>= 512 entries of a row at the maximum). The exponent is never
    // negative; above 31 every output rounds to zero (the product is below 2^31), which is
    // what is computed here instead of aborting.
    let exponent = num_bits_over_unit + 31 - 8;
    for (o, &x) in out.iter_mut().zip(row) {
        let diff = x as i8 as i32 - max_in_row;
        *o = if diff >= p.diff_min {
            let unsat = if exponent > 31 {
                0
            } else {
                rounding_divide_by_pot(
                    saturating_rounding_doubling_high_mul(shifted_scale, exp_of_diff(p, diff)),
                    exponent,
                )
            };
            let shifted = unsat.wrapping_add(-128);
            shifted.clamp(-128, 127) as i8 as u8
        } else {
            i8::MIN as u8
        };
    }
}

fn softmax_row_f32(beta: f32, row: &[u8], out: &mut [u8]) {
    // std::max(max, x) is `(max < x) ? x : max`, starting from the lowest finite float.
    let mut max = f32::MIN;
    for c in row.chunks_exact(4) {
        let x = rd_f32(c);
        if max < x {
            max = x;
        }
    }
    let mut sum = 0.0f32;
    for (o, c) in out.chunks_exact_mut(4).zip(row.chunks_exact(4)) {
        let e = libm::expf((rd_f32(c) - max) * beta);
        o.copy_from_slice(&e.to_le_bytes());
        sum += e;
    }
    for o in out.chunks_exact_mut(4) {
        let v = rd_f32(o) / sum;
        o.copy_from_slice(&v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::kernels::testutil::simple::*;
    use crate::params::elementwise::softmax_params;

    /// Computed by TFLM 90b983c2's `reference_ops::Softmax<int8_t, int8_t>` with the
    /// parameters of `CalculateSoftmaxParams`.
    #[test]
    fn int8_matches_tflm_vector() {
        let (beta, scale) = (f32::from_bits(0x3f82_4019), f32::from_bits(0x3df3_c608));
        let p = softmax_params(beta, scale);
        assert_eq!(
            (p.input_multiplier, p.input_left_shift, p.diff_min),
            (2080872800, 23, -248)
        );
        let input = i8t(&[21], scale, 66);
        let output = i8t(&[21], 1.0 / 256.0, -128);
        check(&p, &[input], &output).unwrap();
        let x = [
            68, 29, -118, -83, 28, -54, 72, 87, -38, 118, 92, -90, 79, -33, 77, -35, -109, 13, 20,
            -40, 89,
        ];
        let want = [
            -127, -128, -128, -128, -128, -128, -127, -123, -128, 101, -118, -128, -126, -128,
            -126, -128, -128, -128, -128, -128, -121,
        ];
        let got = to_i8s(&run(&[(&input, &i8_bytes(&x))], &output, |i, o| {
            eval(&p, i, o)
        }));
        assert_eq!(got, want);
    }

    #[test]
    fn f32_hand_checked() {
        let t = f32t(&[2, 3]);
        let p = softmax_params(1.0, 0.0);
        check(&p, &[t], &t).unwrap();
        let got = to_f32s(&run(
            &[(&t, &f32_bytes(&[1., 2., 3., 0., 0., 0.]))],
            &t,
            |i, o| eval(&p, i, o),
        ));
        let e = [1f64.exp(), 2f64.exp(), 3f64.exp()];
        let s: f64 = e.iter().sum();
        for k in 0..3 {
            assert!((got[k] as f64 - e[k] / s).abs() < 1e-6);
            assert!((got[3 + k] - 1.0 / 3.0).abs() < 1e-7);
        }
        // Beta scales the logits.
        let p = softmax_params(2.0, 0.0);
        let got = to_f32s(&run(
            &[(&t, &f32_bytes(&[0., 1., 0., 0., 0., 0.]))],
            &t,
            |i, o| eval(&p, i, o),
        ));
        let e2 = 2f64.exp();
        assert!((got[1] as f64 - e2 / (e2 + 2.0)).abs() < 1e-6);
    }

    #[test]
    fn int8_hand_checked() {
        let input = i8t(&[1, 4], 0.1, 0);
        let output = i8t(&[1, 4], 1.0 / 256.0, -128);
        let p = softmax_params(1.0, 0.1);
        check(&p, &[input], &output).unwrap();
        // Equal logits: 1/4 each -> 64/256 -> q = 64 - 128 = -64.
        let got = to_i8s(&run(
            &[(&input, &i8_bytes(&[5, 5, 5, 5]))],
            &output,
            |i, o| eval(&p, i, o),
        ));
        assert_eq!(got, [-64; 4]);
        // One dominant logit (diff -255 * 0.1 = -25.5: exp ~ 8e-12) -> 1.0 saturates to 127.
        let got = to_i8s(&run(
            &[(&input, &i8_bytes(&[127, -128, -128, -128]))],
            &output,
            |i, o| eval(&p, i, o),
        ));
        assert_eq!(got, [127, -128, -128, -128]);
    }

    #[test]
    fn int8_property_close_to_real_softmax() {
        let mut rng = Rng(99);
        for case in 0..300 {
            let depth = rng.range(1, 40) as u32;
            let rows = rng.range(1, 4) as u32;
            let scale = 0.005 + 0.3 * rng.unit() as f32;
            let beta = if rng.range(0, 1) == 0 {
                1.0
            } else {
                0.5 + rng.unit() as f32
            };
            let zp = rng.range(-128, 127) as i32;
            let input = i8t(&[rows, depth], scale, zp);
            let output = i8t(&[rows, depth], 1.0 / 256.0, -128);
            let p = softmax_params(beta, scale);
            check(&p, &[input], &output).unwrap();
            let x = rng.bytes(num(&input));
            let got = to_i8s(&run(&[(&input, &x)], &output, |i, o| eval(&p, i, o)));
            for r in 0..rows as usize {
                let row: std::vec::Vec<f64> = x[r * depth as usize..][..depth as usize]
                    .iter()
                    .map(|&v| (v as i8 as i32 - zp) as f64 * scale as f64 * beta as f64)
                    .collect();
                let m = row.iter().cloned().fold(f64::MIN, f64::max);
                let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
                for c in 0..depth as usize {
                    let want = ((row[c] - m).exp() / s * 256.0 - 128.0)
                        .round()
                        .clamp(-128.0, 127.0);
                    let g = got[r * depth as usize + c] as f64;
                    assert!((g - want).abs() <= 1.0, "case {case}: {g} vs {want}");
                }
            }
        }
    }

    #[test]
    fn checks_reject_and_no_panic_on_long_rows() {
        let input = i8t(&[1, 4], 0.1, 0);
        let p = softmax_params(1.0, 0.1);
        assert!(check(&p, &[input], &i8t(&[1, 4], 1.0 / 255.0, -128)).is_err());
        assert!(check(&p, &[input], &i8t(&[1, 4], 1.0 / 256.0, 0)).is_err());
        assert!(check(&p, &[input], &i8t(&[4], 1.0 / 256.0, -128)).is_err());
        let mut bad = p;
        bad.diff_min -= 1;
        assert!(check(&bad, &[input], &i8t(&[1, 4], 1.0 / 256.0, -128)).is_err());
        // 5000 equal logits: the Q12.19 sum overflows (TFLM would abort); must not panic.
        let input = i8t(&[5000], 0.1, 0);
        let output = i8t(&[5000], 1.0 / 256.0, -128);
        check(&p, &[input], &output).unwrap();
        run(&[(&input, &std::vec![3u8; 5000])], &output, |i, o| {
            eval(&p, i, o)
        });
        // 1000 equal logits (TFLM aborts: exponent 32): 1/1000 rounds to -128.
        let input = i8t(&[1000], 0.1, 0);
        let output = i8t(&[1000], 1.0 / 256.0, -128);
        let got = run(&[(&input, &std::vec![3u8; 1000])], &output, |i, o| {
            eval(&p, i, o)
        });
        assert!(got.iter().all(|&v| v as i8 == -128));
    }
}
