//! LOGISTIC and TANH, int8 and f32.
//!
//! int8 reproduces TFLM's `reference_integer_ops::Logistic` (`integer_ops/logistic.h`)
//! and `reference_integer_ops::Tanh` (`integer_ops/tanh.h`): inputs farther than
//! `input_range_radius` from the zero point saturate; the others are rescaled into Q4.27
//! with `MultiplyByQuantizedMultiplier`, passed through gemmlowp's `logistic` / `tanh` and
//! rounded to the int8 output (logistic: scale 1/256, zero point -128; tanh: scale 1/128,
//! zero point 0). As the result is a pure function of the input byte, large tensors go
//! through a 256-entry table built with the same function.
//!
//! f32 reproduces `reference_ops::Logistic` (TFLM's cut-off formula with `expf`) and
//! `reference_ops::Tanh` (`tanhf`), using `libm` so results are identical on every target.

use edgeflow_format::graph::{ActivationParams, DType, TensorDef};

use super::generic::elem::f32_of as rd_f32;
use super::generic::gemmlowp;
use super::{TensorIn, TensorOut};
use crate::fixedpoint::{multiply_by_quantized_multiplier, rounding_divide_by_pot};

/// Integer bits of the rescaled input (TFLite's `kInputIntegerBits` for int8).
const INPUT_INTEGER_BITS: u32 = 4;

/// Tensors at least this long are mapped through a 256-entry table.
const TABLE_MIN_ELEMENTS: usize = 512;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Logistic,
    Tanh,
}

fn check_common(
    kind: Kind,
    p: &ActivationParams,
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
) -> Result<(), &'static str> {
    let [input] = inputs else {
        return Err(why!("activation.rs", "needs exactly one input"));
    };
    if input.dtype != output.dtype {
        return Err(why!("activation.rs", "input and output types differ"));
    }
    if input.shape.dims() != output.shape.dims() {
        return Err(why!("activation.rs", "input and output shapes differ"));
    }
    match input.dtype {
        DType::F32 => Ok(()),
        DType::I8 => {
            let iq = input
                .quant
                .as_ref()
                .ok_or(why!("activation.rs", "int8 input without quantization"))?;
            let oq = output
                .quant
                .as_ref()
                .ok_or(why!("activation.rs", "int8 output without quantization"))?;
            if p.input_zero_point != iq.zero_point {
                return Err(why!(
                    "activation.rs",
                    "input zero point does not match the input tensor"
                ));
            }
            // The kernels write a fixed output quantization (TFLite's int8 op spec; TFLM
            // checks the logistic zero point).
            let (scale, zp) = match kind {
                Kind::Logistic => (1.0 / 256.0, -128),
                Kind::Tanh => (1.0 / 128.0, 0),
            };
            if oq.zero_point != zp || oq.scale != scale {
                return Err(match kind {
                    Kind::Logistic => {
                        why!(
                            "activation.rs",
                            "int8 logistic output must have scale 1/256 and zero point -128"
                        )
                    }
                    Kind::Tanh => why!(
                        "activation.rs",
                        "int8 tanh output must have scale 1/128 and zero point 0"
                    ),
                });
            }
            // frexp of input_scale * 2^27: a shift whose radius keeps |input| << shift
            // inside an i32 (shifts of 31 and more give radius 0: everything saturates).
            if !(0..=62).contains(&p.input_left_shift) || p.input_multiplier < 0 {
                return Err(why!(
                    "activation.rs",
                    "activation input multiplier or left shift out of range"
                ));
            }
            let radius = ((15i64 << 27) >> p.input_left_shift) as i32;
            if p.input_range_radius != radius {
                return Err(why!(
                    "activation.rs",
                    "activation input radius does not match the input left shift"
                ));
            }
            Ok(())
        }
        DType::I32 => Err(why!("activation.rs", "only int8 and f32 are supported")),
    }
}

pub(crate) fn check_logistic(
    p: &ActivationParams,
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
) -> Result<(), &'static str> {
    check_common(Kind::Logistic, p, inputs, output)
}

pub(crate) fn check_tanh(
    p: &ActivationParams,
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
) -> Result<(), &'static str> {
    check_common(Kind::Tanh, p, inputs, output)
}

/// One int8 element, exactly as TFLM computes it.
#[inline(always)]
fn q_activation(kind: Kind, p: &ActivationParams, x: i8) -> i8 {
    let input = (x as i32).wrapping_sub(p.input_zero_point);
    if input <= p.input_range_radius.wrapping_neg() {
        return i8::MIN;
    }
    if input >= p.input_range_radius {
        return i8::MAX;
    }
    let input_in_q4 =
        multiply_by_quantized_multiplier(input, p.input_multiplier, p.input_left_shift);
    match kind {
        Kind::Logistic => {
            let output_in_q0 = gemmlowp::logistic(input_in_q4, INPUT_INTEGER_BITS);
            // Q0.31 -> Q23.8, then the -128 zero point.
            let v = rounding_divide_by_pot(output_in_q0, 31 - 8).wrapping_add(-128);
            v.clamp(-128, 127) as i8
        }
        Kind::Tanh => {
            let output_in_q0 = gemmlowp::tanh(input_in_q4, INPUT_INTEGER_BITS);
            // Q0.31 -> Q24.7.
            rounding_divide_by_pot(output_in_q0, 31 - 7).clamp(-128, 127) as i8
        }
    }
}

fn eval_i8(kind: Kind, p: &ActivationParams, input: &[u8], output: &mut [u8]) {
    if input.len() >= TABLE_MIN_ELEMENTS {
        let mut table = [0u8; 256];
        for (byte, t) in table.iter_mut().enumerate() {
            *t = q_activation(kind, p, byte as u8 as i8) as u8;
        }
        for (o, &x) in output.iter_mut().zip(input) {
            *o = table[x as usize];
        }
    } else {
        for (o, &x) in output.iter_mut().zip(input) {
            *o = q_activation(kind, p, x as i8) as u8;
        }
    }
}

/// TFLM's float logistic: 1 above 16.619047164916992188, `exp(x)` below -9,
/// `1 / (1 + exp(-x))` between.
#[inline(always)]
fn logistic_f32(x: f32) -> f32 {
    #[allow(clippy::excessive_precision)] // TFLM's literal, kept verbatim
    const CUTOFF_UPPER: f32 = 16.619_047_164_916_992_188;
    const CUTOFF_LOWER: f32 = -9.0;
    if x > CUTOFF_UPPER {
        1.0
    } else if x < CUTOFF_LOWER {
        libm::expf(x)
    } else {
        1.0 / (1.0 + libm::expf(-x))
    }
}

fn eval_f32(f: impl Fn(f32) -> f32, input: &[u8], output: &mut [u8]) {
    for (o, c) in output.chunks_exact_mut(4).zip(input.chunks_exact(4)) {
        o.copy_from_slice(&f(rd_f32(c)).to_le_bytes());
    }
}

fn eval_common(
    kind: Kind,
    p: &ActivationParams,
    inputs: &[TensorIn<'_, '_>],
    output: TensorOut<'_, '_>,
) {
    let [input] = inputs else {
        return;
    };
    if input.data.len() != output.data.len() {
        return;
    }
    match (input.def.dtype, kind) {
        (DType::I8, _) => eval_i8(kind, p, input.data, output.data),
        (DType::F32, Kind::Logistic) => eval_f32(logistic_f32, input.data, output.data),
        (DType::F32, Kind::Tanh) => eval_f32(libm::tanhf, input.data, output.data),
        (DType::I32, _) => {}
    }
}

pub(crate) fn eval_logistic(
    p: &ActivationParams,
    inputs: &[TensorIn<'_, '_>],
    output: TensorOut<'_, '_>,
) {
    eval_common(Kind::Logistic, p, inputs, output);
}

pub(crate) fn eval_tanh(
    p: &ActivationParams,
    inputs: &[TensorIn<'_, '_>],
    output: TensorOut<'_, '_>,
) {
    eval_common(Kind::Tanh, p, inputs, output);
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::kernels::testutil::simple::*;
    use crate::params::elementwise::{logistic_params, tanh_params};

    /// Computed by TFLM 90b983c2's `reference_integer_ops::Logistic` / `Tanh` with the
    /// parameters of their Prepare functions.
    #[test]
    fn int8_matches_tflm_vectors() {
        let s = f32::from_bits(0x3d47_b26a);
        let p = logistic_params(s, -124);
        assert_eq!(
            (p.input_multiplier, p.input_left_shift, p.input_range_radius),
            (1675179264, 23, 240)
        );
        let (i, o) = (i8t(&[5], s, -124), i8t(&[5], 1.0 / 256.0, -128));
        check_logistic(&p, &[i], &o).unwrap();
        let got = to_i8s(&run(
            &[(&i, &i8_bytes(&[16, -26, -115, 84, -80]))],
            &o,
            |a, b| eval_logistic(&p, a, b),
        ));
        assert_eq!(got, [127, 126, 28, 127, 101]);

        let s = f32::from_bits(0x3c88_2f16);
        let p = tanh_params(s, -63);
        assert_eq!(
            (p.input_multiplier, p.input_left_shift, p.input_range_radius),
            (1142393600, 22, 480)
        );
        let (i, o) = (i8t(&[6], s, -63), i8t(&[6], 1.0 / 128.0, 0));
        check_tanh(&p, &[i], &o).unwrap();
        let got = to_i8s(&run(
            &[(&i, &i8_bytes(&[-47, 36, -10, 95, 60, -93]))],
            &o,
            |a, b| eval_tanh(&p, a, b),
        ));
        assert_eq!(got, [33, 119, 90, 127, 124, -59]);
    }

    #[test]
    fn f32_values() {
        let t = f32t(&[6]);
        let p = logistic_params(0.0, 0);
        let x = [0.0f32, 1.0, -10.0, 20.0, -2.5, 16.0];
        let got = to_f32s(&run(&[(&t, &f32_bytes(&x))], &t, |i, o| {
            eval_logistic(&p, i, o)
        }));
        assert_eq!(got[0], 0.5);
        assert_eq!(got[3], 1.0);
        assert_eq!(got[2], libm::expf(-10.0));
        for k in 0..6 {
            let want = 1.0 / (1.0 + (-(x[k] as f64)).exp());
            assert!(
                (got[k] as f64 - want).abs() <= 1e-6 * want.max(1e-30) + 1e-7,
                "{k}"
            );
        }
        let got = to_f32s(&run(&[(&t, &f32_bytes(&x))], &t, |i, o| {
            eval_tanh(&p, i, o)
        }));
        for k in 0..6 {
            assert!((got[k] as f64 - (x[k] as f64).tanh()).abs() < 1e-7);
        }
    }

    #[test]
    fn int8_hand_checked() {
        // scale 1/16, zp 0: logistic(0) = 0.5 -> 128/256 -> 0; tanh(0) = 0.
        let i = i8t(&[5], 1.0 / 16.0, 0);
        let ol = i8t(&[5], 1.0 / 256.0, -128);
        let ot = i8t(&[5], 1.0 / 128.0, 0);
        let p = logistic_params(1.0 / 16.0, 0);
        check_logistic(&p, &[i], &ol).unwrap();
        let pt = tanh_params(1.0 / 16.0, 0);
        check_tanh(&pt, &[i], &ot).unwrap();
        // inputs 0, 16 (=1.0), -16, 127 (7.94), -128 (-8, radius 120 -> saturates)
        let x = i8_bytes(&[0, 16, -16, 127, -128]);
        let got = to_i8s(&run(&[(&i, &x)], &ol, |a, o| eval_logistic(&p, a, o)));
        // logistic(1) = 0.7311 -> 187.16 -> 187 - 128 = 59; logistic(-1) -> 68.84 -> -59.
        assert_eq!(got, [0, 59, -59, 127, -128]);
        let got = to_i8s(&run(&[(&i, &x)], &ot, |a, o| eval_tanh(&pt, a, o)));
        // tanh(1) = 0.76159 -> 97.48 -> 97.
        assert_eq!(got, [0, 97, -97, 127, -128]);
    }

    #[test]
    fn int8_property_close_to_real_and_table_consistent() {
        let mut rng = Rng(4242);
        for case in 0..200 {
            let scale = 0.002 + 0.2 * rng.unit() as f32;
            let zp = rng.range(-128, 127) as i32;
            let n = if case % 2 == 0 { 300 } else { 700 };
            let i = i8t(&[n], scale, zp);
            let ol = i8t(&[n], 1.0 / 256.0, -128);
            let ot = i8t(&[n], 1.0 / 128.0, 0);
            let (pl, pt) = (logistic_params(scale, zp), tanh_params(scale, zp));
            check_logistic(&pl, &[i], &ol).unwrap();
            check_tanh(&pt, &[i], &ot).unwrap();
            let x = rng.bytes(n as usize);
            let gl = to_i8s(&run(&[(&i, &x)], &ol, |a, o| eval_logistic(&pl, a, o)));
            let gt = to_i8s(&run(&[(&i, &x)], &ot, |a, o| eval_tanh(&pt, a, o)));
            for k in 0..n as usize {
                let xi = x[k] as i8;
                assert_eq!(gl[k], q_activation(Kind::Logistic, &pl, xi));
                assert_eq!(gt[k], q_activation(Kind::Tanh, &pt, xi));
                let r = (xi as i32 - zp) as f64 * scale as f64;
                let wl = (256.0 / (1.0 + (-r).exp()) - 128.0)
                    .round()
                    .clamp(-128.0, 127.0);
                let wt = (128.0 * r.tanh()).round().clamp(-128.0, 127.0);
                assert!(
                    (gl[k] as f64 - wl).abs() <= 1.0,
                    "case {case} logistic({r}) {} vs {wl}",
                    gl[k]
                );
                assert!(
                    (gt[k] as f64 - wt).abs() <= 1.0,
                    "case {case} tanh({r}) {} vs {wt}",
                    gt[k]
                );
            }
        }
    }

    #[test]
    fn checks_reject() {
        let i = i8t(&[5], 0.1, 3);
        let p = logistic_params(0.1, 3);
        assert!(check_logistic(&p, &[i], &i8t(&[5], 1.0 / 256.0, -128)).is_ok());
        assert!(check_logistic(&p, &[i], &i8t(&[5], 1.0 / 256.0, 0)).is_err());
        assert!(check_tanh(&p, &[i], &i8t(&[5], 1.0 / 256.0, -128)).is_err());
        assert!(check_tanh(&p, &[i], &i8t(&[5], 1.0 / 128.0, 0)).is_ok());
        assert!(check_logistic(
            &logistic_params(0.1, 4),
            &[i],
            &i8t(&[5], 1.0 / 256.0, -128)
        )
        .is_err());
        let mut bad = p;
        bad.input_range_radius += 1;
        assert!(check_logistic(&bad, &[i], &i8t(&[5], 1.0 / 256.0, -128)).is_err());
        assert!(check_logistic(&p, &[i], &i8t(&[6], 1.0 / 256.0, -128)).is_err());
        assert!(check_logistic(&p, &[f32t(&[5])], &f32t(&[5])).is_ok());
    }

    #[test]
    fn extreme_scales_do_not_panic() {
        for &s in &[1e-8f32, 1e-3, 1.0, 100.0, 1e6] {
            let p = logistic_params(s, 0);
            let i = i8t(&[256], s, 0);
            let o = i8t(&[256], 1.0 / 256.0, -128);
            if check_logistic(&p, &[i], &o).is_ok() {
                let x: std::vec::Vec<u8> = (0..=255).collect();
                let got = to_i8s(&run(&[(&i, &x)], &o, |a, o| eval_logistic(&p, a, o)));
                // Monotone in the input value.
                let mut by_value: std::vec::Vec<(i8, i8)> =
                    x.iter().map(|&b| b as i8).zip(got).collect();
                by_value.sort();
                assert!(by_value.windows(2).all(|w| w[0].1 <= w[1].1), "scale {s}");
            }
        }
    }
}
