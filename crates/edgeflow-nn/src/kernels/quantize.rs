//! QUANTIZE (f32 -> int8, int8 -> int8) and DEQUANTIZE (int8 -> f32).
//!
//! - f32 -> int8: TFLM `reference_ops::AffineQuantize`: `round(x / scale) + zero_point`
//!   with the division in f32 (`static_cast<float>` of the double-held output scale gives
//!   back the f32 scale), `TfLiteRound` = round half away from zero, then clamped.
//! - int8 -> int8: TFLM `reference_ops::Requantize`: `MultiplyByQuantizedMultiplier` of
//!   `x - input_zp` plus the output zero point, clamped.
//! - int8 -> f32: TFLM `reference_ops::Dequantize`: `(float)(double(scale) * (x - zp))`.

use edgeflow_format::graph::{DType, QuantizeParams, TensorDef};

use super::generic::elem::f32_of as rd_f32;
use super::{TensorIn, TensorOut};
use crate::fixedpoint::multiply_by_quantized_multiplier;

fn quant(t: &TensorDef<'_>) -> Result<(f32, i32), &'static str> {
    t.quant
        .as_ref()
        .map(|q| (q.scale, q.zero_point))
        .ok_or(why!(
            "quantize.rs",
            "quantized tensor without quantization parameters"
        ))
}

fn check_unary_shapes<'a, 'b>(
    inputs: &'a [TensorDef<'b>],
    output: &TensorDef<'_>,
) -> Result<&'a TensorDef<'b>, &'static str> {
    let [input] = inputs else {
        return Err(why!("quantize.rs", "needs exactly one input"));
    };
    if input.shape.dims() != output.shape.dims() {
        return Err(why!("quantize.rs", "input and output shapes differ"));
    }
    Ok(input)
}

pub(crate) fn check_quantize(
    p: &QuantizeParams,
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
) -> Result<(), &'static str> {
    let input = check_unary_shapes(inputs, output)?;
    if output.dtype != DType::I8 {
        return Err(why!("quantize.rs", "QUANTIZE output must be int8"));
    }
    let (scale, zp) = quant(output)?;
    if output
        .quant
        .as_ref()
        .is_some_and(|q| q.per_channel.is_some())
    {
        return Err(why!("quantize.rs", "per-channel QUANTIZE is not supported"));
    }
    if p.output_zero_point != zp {
        return Err(why!(
            "quantize.rs",
            "output zero point does not match the output tensor"
        ));
    }
    match input.dtype {
        DType::F32 => {
            if !(scale.is_finite() && scale > 0.0) {
                return Err(why!(
                    "quantize.rs",
                    "output scale is not a positive finite number"
                ));
            }
            Ok(())
        }
        DType::I8 => {
            if p.input_zero_point != quant(input)?.1 {
                return Err(why!(
                    "quantize.rs",
                    "input zero point does not match the input tensor"
                ));
            }
            if p.requant.multiplier < 0 || !(-31..=30).contains(&p.requant.shift) {
                return Err(why!(
                    "quantize.rs",
                    "requantize multiplier negative or shift outside [-31, 30]"
                ));
            }
            Ok(())
        }
        DType::I32 => Err(why!("quantize.rs", "QUANTIZE input must be f32 or int8")),
    }
}

pub(crate) fn eval_quantize(
    p: &QuantizeParams,
    inputs: &[TensorIn<'_, '_>],
    output: TensorOut<'_, '_>,
) {
    let [input] = inputs else {
        return;
    };
    match input.def.dtype {
        DType::F32 => {
            let Some(q) = output.def.quant.as_ref() else {
                return;
            };
            let (scale, zp) = (q.scale, q.zero_point);
            for (o, c) in output.data.iter_mut().zip(input.data.chunks_exact(4)) {
                // static_cast<int32_t>(float) is saturating (NaN -> 0) on Arm, as `as` is.
                let unclamped = (libm::roundf(rd_f32(c) / scale) as i32).saturating_add(zp);
                *o = unclamped.clamp(-128, 127) as i8 as u8;
            }
        }
        DType::I8 => {
            let (m, s) = (p.requant.multiplier, p.requant.shift);
            let (in_zp, out_zp) = (p.input_zero_point, p.output_zero_point);
            for (o, &x) in output.data.iter_mut().zip(input.data) {
                let v =
                    multiply_by_quantized_multiplier((x as i8 as i32).wrapping_sub(in_zp), m, s)
                        .wrapping_add(out_zp);
                *o = v.clamp(-128, 127) as i8 as u8;
            }
        }
        DType::I32 => {}
    }
}

pub(crate) fn check_dequantize(
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
) -> Result<(), &'static str> {
    let input = check_unary_shapes(inputs, output)?;
    if input.dtype != DType::I8 || output.dtype != DType::F32 {
        return Err(why!("quantize.rs", "DEQUANTIZE must be int8 -> f32"));
    }
    if input
        .quant
        .as_ref()
        .is_some_and(|q| q.per_channel.is_some())
    {
        return Err(why!(
            "quantize.rs",
            "per-channel DEQUANTIZE is not supported"
        ));
    }
    quant(input).map(|_| ())
}

pub(crate) fn eval_dequantize(inputs: &[TensorIn<'_, '_>], output: TensorOut<'_, '_>) {
    let [input] = inputs else {
        return;
    };
    let Some(q) = input.def.quant.as_ref() else {
        return;
    };
    let (scale, zp) = (q.scale, q.zero_point);
    for (o, &x) in output.data.chunks_exact_mut(4).zip(input.data) {
        // TFLM computes double(scale) * (x - zp) and rounds to float. |x - zp| <= 255 has
        // at most 9 significant bits and the scale 24, so the double product is exact and
        // the result is the correctly rounded product — which an f32 multiply of the exact
        // operands also is. Same bits, without soft-float doubles on the device.
        let v = scale * (x as i8 as i32).wrapping_sub(zp) as f32;
        o.copy_from_slice(&v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::kernels::testutil::simple::*;
    use crate::params::elementwise::quantize_params;

    #[test]
    fn quantize_f32_hand_checked() {
        let i = f32t(&[7]);
        let o = i8t(&[7], 0.5, -3);
        let p = quantize_params((0.0, 0), (0.5, -3));
        check_quantize(&p, &[i], &o).unwrap();
        let x = f32_bytes(&[0.0, 0.25, -0.25, 0.74, 1000.0, -1000.0, f32::NAN]);
        let got = to_i8s(&run(&[(&i, &x)], &o, |a, b| eval_quantize(&p, a, b)));
        // 0.5 rounds away from zero: 1 - 3 = -2 and -1 - 3 = -4.
        assert_eq!(got, [-3, -2, -4, -2, 127, -128, -3]);
    }

    #[test]
    fn requantize_hand_checked() {
        let i = i8t(&[4], 0.5, 2);
        let o = i8t(&[4], 0.25, -1);
        let p = quantize_params((0.5, 2), (0.25, -1));
        check_quantize(&p, &[i], &o).unwrap();
        let got = to_i8s(&run(&[(&i, &i8_bytes(&[2, 3, -10, 127]))], &o, |a, b| {
            eval_quantize(&p, a, b)
        }));
        assert_eq!(got, [-1, 1, -25, 127]);
    }

    #[test]
    fn dequantize_matches_double_formula() {
        let mut rng = Rng(31337);
        for _ in 0..200 {
            let scale =
                (rng.unit() * 10f64.powi(rng.range(-12, 6) as i32)) as f32 + f32::MIN_POSITIVE;
            let zp = rng.range(-128, 127) as i32;
            let i = i8t(&[256], scale, zp);
            let o = f32t(&[256]);
            check_dequantize(&[i], &o).unwrap();
            let x: std::vec::Vec<u8> = (0..=255).collect();
            let got = to_f32s(&run(&[(&i, &x)], &o, eval_dequantize));
            for (k, &b) in x.iter().enumerate() {
                let want = (scale as f64 * (b as i8 as i32 - zp) as f64) as f32;
                assert_eq!(got[k].to_bits(), want.to_bits());
            }
        }
    }

    #[test]
    fn property_roundtrip_and_reference() {
        let mut rng = Rng(2718);
        for _ in 0..200 {
            let scale = 0.001 + rng.unit() as f32;
            let zp = rng.range(-128, 127) as i32;
            let i = f32t(&[64]);
            let o = i8t(&[64], scale, zp);
            let p = quantize_params((0.0, 0), (scale, zp));
            check_quantize(&p, &[i], &o).unwrap();
            let x = rng.f32s(64, -200.0 * scale, 200.0 * scale);
            let got = to_i8s(&run(&[(&i, &x)], &o, |a, b| eval_quantize(&p, a, b)));
            for (k, v) in to_f32s(&x).into_iter().enumerate() {
                let want = ((v / scale).round() as i32 + zp).clamp(-128, 127) as i8;
                assert_eq!(got[k], want);
            }
            // int8 -> int8 against the real-valued rescale.
            let so = 0.001 + rng.unit() as f32;
            let zo = rng.range(-128, 127) as i32;
            let (ii, oo) = (i8t(&[64], scale, zp), i8t(&[64], so, zo));
            let p = quantize_params((scale, zp), (so, zo));
            check_quantize(&p, &[ii], &oo).unwrap();
            let xb = rng.bytes(64);
            let got = to_i8s(&run(&[(&ii, &xb)], &oo, |a, b| eval_quantize(&p, a, b)));
            for (k, &b) in xb.iter().enumerate() {
                let real = (b as i8 as i32 - zp) as f64 * scale as f64 / so as f64;
                let want = (real.round() + zo as f64).clamp(-128.0, 127.0);
                assert!((got[k] as f64 - want).abs() <= 1.0);
            }
        }
    }

    #[test]
    fn checks_reject() {
        let p = quantize_params((0.5, 0), (0.5, 0));
        assert!(check_quantize(&p, &[f32t(&[3])], &i8t(&[3], 0.5, 0)).is_ok());
        assert!(check_quantize(&p, &[f32t(&[3])], &i8t(&[3], 0.5, 1)).is_err());
        assert!(check_quantize(&p, &[f32t(&[3])], &f32t(&[3])).is_err());
        assert!(check_quantize(&p, &[f32t(&[3])], &i8t(&[4], 0.5, 0)).is_err());
        assert!(check_quantize(&p, &[i8t(&[3], 0.5, 2)], &i8t(&[3], 0.5, 0)).is_err());
        assert!(check_dequantize(&[f32t(&[3])], &f32t(&[3])).is_err());
        assert!(check_dequantize(&[i8t(&[3], 0.5, 0)], &i8t(&[3], 0.5, 0)).is_err());
    }
}
