//! LEAKY_RELU and HARD_SWISH, int8 and f32.
//!
//! int8 LEAKY_RELU reproduces TFLite's `reference_ops::QuantizeLeakyRelu`: the input
//! minus its zero point is rescaled with `MultiplyByQuantizedMultiplier` by the identity
//! multiplier where it is non-negative and by the alpha multiplier elsewhere, the output
//! zero point added and the result saturated. int8 HARD_SWISH reproduces TFLite's
//! `reference_ops::HardSwish` for int8, a 16-bit fixed-point computation (its own
//! non-rounding `SaturatingDoublingHighMul` and `SaturatingLeftShift`, gemmlowp's int16
//! `SaturatingRoundingDoublingHighMul` and `RoundingDivideByPOT`), reproduced here with
//! C++'s integer conversions (narrowing to `int16_t` wraps). Both int8 results are pure
//! functions of the input byte.
//!
//! f32: LEAKY_RELU is `x > 0 ? x : x * alpha` and HARD_SWISH
//! `x * min(6, max(0, x + 3)) / 6`, in that order, as TFLite's reference kernels compute
//! them.

use edgeflow_format::graph::{DType, HardSwishParams, LeakyReluParams, TensorDef};

use super::generic::elem::f32_of as rd_f32;
use super::{TensorIn, TensorOut};
use crate::fixedpoint::multiply_by_quantized_multiplier;

/// Shared checks: one input, same dtype and shape as the output, int8 or f32, quantized
/// int8 tensors with the zero points the parameters record.
fn check_unary(
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
    zero_points: (i32, i32),
) -> Result<(), &'static str> {
    let [input] = inputs else {
        return Err(why!("piecewise.rs", "needs exactly one input"));
    };
    if input.dtype != output.dtype {
        return Err(why!("piecewise.rs", "input and output types differ"));
    }
    if input.shape.dims() != output.shape.dims() {
        return Err(why!("piecewise.rs", "input and output shapes differ"));
    }
    match input.dtype {
        DType::F32 => Ok(()),
        DType::I8 => {
            let iq = input
                .quant
                .as_ref()
                .ok_or(why!("piecewise.rs", "int8 input without quantization"))?;
            let oq = output
                .quant
                .as_ref()
                .ok_or(why!("piecewise.rs", "int8 output without quantization"))?;
            if (iq.zero_point, oq.zero_point) != zero_points {
                return Err(why!(
                    "piecewise.rs",
                    "zero points do not match the input and output tensors"
                ));
            }
            Ok(())
        }
        DType::I32 => Err(why!("piecewise.rs", "only int8 and f32 are supported")),
    }
}

/// Verifies every precondition of [`eval_leaky_relu`].
pub(crate) fn check_leaky_relu(
    p: &LeakyReluParams,
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
) -> Result<(), &'static str> {
    check_unary(inputs, output, (p.input_zero_point, p.output_zero_point))?;
    if inputs.first().is_some_and(|t| t.dtype == DType::I8) {
        for m in [p.identity, p.alpha_q] {
            // QuantizeMultiplier's range: a non-negative Q31 value, shifts TFLite forms.
            if m.multiplier < 0 || !(-31..=30).contains(&m.shift) {
                return Err(why!(
                    "piecewise.rs",
                    "a LEAKY_RELU multiplier or shift is out of range"
                ));
            }
        }
    } else if !p.alpha.is_finite() {
        return Err(why!("piecewise.rs", "alpha is not a finite number"));
    }
    Ok(())
}

/// One int8 element of LEAKY_RELU, as TFLite computes it.
#[inline(always)]
fn q_leaky(p: &LeakyReluParams, x: i8) -> i8 {
    let v = i32::from(x).wrapping_sub(p.input_zero_point);
    let m = if v >= 0 { p.identity } else { p.alpha_q };
    let y = p
        .output_zero_point
        .wrapping_add(multiply_by_quantized_multiplier(v, m.multiplier, m.shift));
    y.clamp(-128, 127) as i8
}

/// Runs LEAKY_RELU on a checked op.
pub(crate) fn eval_leaky_relu(
    p: &LeakyReluParams,
    inputs: &[TensorIn<'_, '_>],
    output: TensorOut<'_, '_>,
) {
    let [input] = inputs else {
        return;
    };
    match input.def.dtype {
        DType::I8 => map_i8(input.data, output.data, |x| q_leaky(p, x)),
        DType::F32 => map_f32(input.data, output.data, |x| {
            if x > 0.0 {
                x
            } else {
                x * p.alpha
            }
        }),
        DType::I32 => {}
    }
}

/// Verifies every precondition of [`eval_hard_swish`].
pub(crate) fn check_hard_swish(
    p: &HardSwishParams,
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
) -> Result<(), &'static str> {
    check_unary(inputs, output, (p.input_zero_point, p.output_zero_point))?;
    if inputs.first().is_some_and(|t| t.dtype == DType::I8) {
        let q15 = 0..=i32::from(i16::MAX);
        if !q15.contains(&p.reluish_multiplier) || !q15.contains(&p.output_multiplier) {
            return Err(why!(
                "piecewise.rs",
                "a HARD_SWISH multiplier is not a non-negative 16-bit value"
            ));
        }
        // TFLite requires a non-positive output exponent; both shifts act on 16-bit
        // values, so larger magnitudes have no meaning.
        if !(-15..=0).contains(&p.output_exponent) {
            return Err(why!(
                "piecewise.rs",
                "HARD_SWISH output exponent outside [-15, 0]"
            ));
        }
        if !(-15..=16).contains(&p.reluish_exponent) {
            return Err(why!(
                "piecewise.rs",
                "HARD_SWISH reluish exponent outside [-15, 16]"
            ));
        }
    }
    Ok(())
}

/// gemmlowp's int16 `SaturatingRoundingDoublingHighMul`.
#[inline(always)]
fn srdhm16(a: i16, b: i16) -> i16 {
    if a == b && a == i16::MIN {
        return i16::MAX;
    }
    let ab = i32::from(a) * i32::from(b);
    let nudge = if ab >= 0 { 1 << 14 } else { 1 - (1 << 14) };
    // |ab| <= 2^30, so the sum fits; C++ division truncates, as Rust's does.
    ((ab + nudge) / (1 << 15)) as i16
}

/// TFLite's non-rounding int16 `SaturatingDoublingHighMul` (hard_swish.h).
#[inline(always)]
fn sdhm16(a: i16, b: i16) -> i16 {
    if a == b && a == i16::MIN {
        return i16::MAX;
    }
    ((i32::from(a) * i32::from(b)) / (1 << 15)) as i16
}

/// TFLite's int16 `SaturatingLeftShift` (hard_swish.h); `amount` in `0..=15`.
#[inline(always)]
fn sat_shl16(v: i16, amount: i32) -> i16 {
    let r = i64::from(v) * (1i64 << amount.clamp(0, 31));
    r.clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16
}

/// gemmlowp's `RoundingDivideByPOT` on `int16_t`; `exponent` in `0..=15`.
#[inline(always)]
fn rdbpot16(x: i16, exponent: i32) -> i16 {
    let e = exponent.clamp(0, 15) as u32;
    let mask = ((1i32 << e) - 1) as i16;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i16::from(x < 0);
    (x >> e) + i16::from(remainder > threshold)
}

/// One int8 element of HARD_SWISH, as TFLite's reference kernel computes it.
#[inline(always)]
fn q_hard_swish(p: &HardSwishParams, x: i8) -> i8 {
    // |x - zp| <= 255, so `* 128` stays within i16 (checked zero points are int8).
    let input_value = (i32::from(x).wrapping_sub(p.input_zero_point)) as i16;
    let hires = input_value.wrapping_mul(1 << 7);
    let preshift_out = srdhm16(hires, p.output_multiplier as i16);
    let mut reluish = hires;
    if p.reluish_exponent > 0 {
        reluish = sat_shl16(reluish, p.reluish_exponent - 1);
    }
    reluish = srdhm16(reluish, p.reluish_multiplier as i16);
    if p.reluish_exponent > 0 {
        reluish = sat_shl16(reluish, 1);
    }
    if p.reluish_exponent < 0 {
        reluish = rdbpot16(reluish, -p.reluish_exponent);
    }
    // [-1, 1] in Q15 to [0, 1]: computed in int, stored back into int16_t.
    let reluish = ((i32::from(reluish) + (1 << 15)) >> 1) as i16;
    let preshift = sdhm16(reluish, preshift_out);
    let out = rdbpot16(preshift, -p.output_exponent).wrapping_add(p.output_zero_point as i16);
    out.clamp(i16::from(i8::MIN), i16::from(i8::MAX)) as i8
}

/// Runs HARD_SWISH on a checked op.
pub(crate) fn eval_hard_swish(
    p: &HardSwishParams,
    inputs: &[TensorIn<'_, '_>],
    output: TensorOut<'_, '_>,
) {
    let [input] = inputs else {
        return;
    };
    match input.def.dtype {
        DType::I8 => map_i8(input.data, output.data, |x| q_hard_swish(p, x)),
        DType::F32 => map_f32(input.data, output.data, |x| {
            let r = x + 3.0;
            let r = if r < 0.0 { 0.0 } else { r };
            let r = if 6.0 < r { 6.0 } else { r };
            x * r / 6.0
        }),
        DType::I32 => {}
    }
}

/// Applies a function of the input byte to every element, through a 256-entry table for
/// tensors long enough to repay building it.
fn map_i8(input: &[u8], output: &mut [u8], f: impl Fn(i8) -> i8) {
    if input.len() >= 512 {
        let mut table = [0u8; 256];
        for (byte, t) in table.iter_mut().enumerate() {
            *t = f(byte as u8 as i8) as u8;
        }
        for (o, &x) in output.iter_mut().zip(input) {
            *o = table[usize::from(x)];
        }
    } else {
        for (o, &x) in output.iter_mut().zip(input) {
            *o = f(x as i8) as u8;
        }
    }
}

fn map_f32(input: &[u8], output: &mut [u8], f: impl Fn(f32) -> f32) {
    for (o, c) in output.chunks_exact_mut(4).zip(input.chunks_exact(4)) {
        o.copy_from_slice(&f(rd_f32(c)).to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;
    use crate::kernels::testutil::simple::*;
    use crate::params::elementwise::{hard_swish_params, leaky_relu_params};

    /// HARD_SWISH int8 reference written from the float definition in exact rational
    /// arithmetic: the fixed-point kernel must stay within one step of the correctly
    /// rounded result (TFLite's own test tolerance for this kernel is a few steps).
    fn hard_swish_exact(x: i8, si: f32, zi: i32, so: f32, zo: i32) -> i32 {
        let r = f64::from(si) * f64::from(i32::from(x) - zi);
        let y = r * (r + 3.0).clamp(0.0, 6.0) / 6.0;
        ((y / f64::from(so)).round() as i32 + zo).clamp(-128, 127)
    }

    #[test]
    fn hard_swish_int8_is_close_to_the_real_function_over_every_byte() {
        for &(si, zi, so, zo) in &[
            (0.05f32, 3, 0.03f32, -100),
            (0.02, -10, 0.02, -120),
            (0.1, 0, 0.07, -110),
            (0.004, 20, 0.003, -50),
        ] {
            let p = hard_swish_params((si, zi), (so, zo));
            let (i, o) = (i8t(&[256], si, zi), i8t(&[256], so, zo));
            check_hard_swish(&p, &[i], &o).unwrap();
            for b in 0..=255u8 {
                let x = b as i8;
                let got = i32::from(q_hard_swish(&p, x));
                let want = hard_swish_exact(x, si, zi, so, zo);
                assert!(
                    (got - want).abs() <= 1,
                    "x {x}: {got} vs {want} ({si} {zi} {so} {zo})"
                );
            }
        }
    }

    #[test]
    fn leaky_relu_int8_hand_checked() {
        // input scale 0.5, output scale 0.25, alpha 0.5: identity x2, alpha x1.
        let p = leaky_relu_params(0.5, (0.5, 10), (0.25, -5));
        let (i, o) = (i8t(&[4], 0.5, 10), i8t(&[4], 0.25, -5));
        check_leaky_relu(&p, &[i], &o).unwrap();
        let got: Vec<i8> = [10i8, 13, 4, 127].iter().map(|&x| q_leaky(&p, x)).collect();
        // 0 -> -5; 3 -> 6 - 5; -6 -> -6 - 5; 117 -> 234 - 5 saturates.
        assert_eq!(got, [-5, 1, -11, 127]);
    }

    #[test]
    fn float_kernels_follow_the_reference_formulas() {
        let p = leaky_relu_params(0.2, (1.0, 0), (1.0, 0));
        let (t, o) = (f32t(&[4]), f32t(&[4]));
        check_leaky_relu(&p, &[t], &o).unwrap();
        let xs = [-2.0f32, -0.0, 0.5, 3.0];
        let input = f32_bytes(&xs);
        let mut out = [0u8; 16];
        eval_leaky_relu(
            &p,
            &[TensorIn {
                def: &t,
                data: &input,
            }],
            TensorOut {
                def: &o,
                data: &mut out,
            },
        );
        assert_eq!(out.to_vec(), f32_bytes(&[-2.0 * 0.2, -0.0 * 0.2, 0.5, 3.0]));
        let hp = hard_swish_params((1.0, 0), (1.0, 0));
        eval_hard_swish(
            &hp,
            &[TensorIn {
                def: &t,
                data: &input,
            }],
            TensorOut {
                def: &o,
                data: &mut out,
            },
        );
        let hs = |x: f32| x * (x + 3.0).clamp(0.0, 6.0) / 6.0;
        assert_eq!(out.to_vec(), f32_bytes(&xs.map(hs)));
    }

    #[test]
    fn checks_reject_and_eval_never_panics() {
        let p = leaky_relu_params(0.1, (0.5, 0), (0.5, 0));
        let (i, o) = (i8t(&[3], 0.5, 0), i8t(&[3], 0.5, 1));
        assert!(
            check_leaky_relu(&p, &[i], &o).is_err(),
            "output zero point differs"
        );
        assert!(check_leaky_relu(&p, &[i, i], &i).is_err());
        assert!(check_leaky_relu(&p, &[i], &i8t(&[4], 0.5, 0)).is_err());
        let mut hp = hard_swish_params((0.05, 0), (0.05, 0));
        hp.output_exponent = 3;
        assert!(check_hard_swish(&hp, &[i], &i).is_err());
        // Every parameter extreme that passes the checks runs without panicking.
        let mut r = Rng(7);
        for _ in 0..2000 {
            let hp = HardSwishParams {
                input_zero_point: r.range(-128, 127) as i32,
                output_zero_point: r.range(-128, 127) as i32,
                reluish_multiplier: r.range(0, 32767) as i32,
                reluish_exponent: r.range(-15, 16) as i32,
                output_multiplier: r.range(0, 32767) as i32,
                output_exponent: r.range(-15, 0) as i32,
            };
            for b in 0..=255u8 {
                let _ = q_hard_swish(&hp, b as i8);
            }
            let lp = LeakyReluParams {
                alpha: 0.0,
                input_zero_point: r.range(-128, 127) as i32,
                output_zero_point: r.range(-128, 127) as i32,
                identity: edgeflow_format::graph::Multiplier {
                    multiplier: r.range(0, i64::from(i32::MAX)) as i32,
                    shift: r.range(-31, 30) as i32,
                },
                alpha_q: edgeflow_format::graph::Multiplier {
                    multiplier: r.range(0, i64::from(i32::MAX)) as i32,
                    shift: r.range(-31, 30) as i32,
                },
            };
            for b in 0..=255u8 {
                let _ = q_leaky(&lp, b as i8);
            }
        }
    }
}
