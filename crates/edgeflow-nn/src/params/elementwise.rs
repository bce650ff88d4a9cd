//! Parameters of the element-wise, activation, softmax, mean and quantize ops, derived
//! exactly as TFLite Micro's `Prepare` functions derive them (double-precision
//! arithmetic on the float scales, in the same order, with the same rounding).
//!
//! Tuples are `(scale, zero_point)` of a tensor's affine quantization. None of these
//! functions allocate or panic, whatever the inputs; degenerate scales give parameters
//! that the kernels' `check` then rejects.

use edgeflow_format::graph::{
    ActivationParams, AddParams, Clamp, HardSwishParams, LeakyReluParams, MeanParams, MulParams,
    Multiplier, QuantizeParams, SoftmaxParams,
};

use crate::fixedpoint::{quantize_multiplier, quantize_multiplier_smaller_than_one_exp};

/// Integer bits of the scaled input difference in the int8 softmax (TFLite's
/// `kScaledDiffIntegerBits`).
const SOFTMAX_SCALED_DIFF_INTEGER_BITS: i32 = 5;
/// Integer bits of the rescaled input of the int8 logistic and tanh kernels.
const ACTIVATION_INPUT_INTEGER_BITS: i32 = 4;
/// Headroom shift of the int8 ADD (TFLite uses 20 for int8, 15 for int16).
const ADD_INT8_LEFT_SHIFT: i32 = 20;

fn multiplier((multiplier, shift): (i32, i32)) -> Multiplier {
    Multiplier { multiplier, shift }
}

/// C++ `std::max(a, b)` on floats: `(a < b) ? b : a`.
fn cpp_max(a: f32, b: f32) -> f32 {
    if a < b {
        b
    } else {
        a
    }
}

/// TFLite's `CalculateInputRadius(input_integer_bits, input_left_shift, total_signed_bits)`
/// (float build): `floor((2^ib - 1) * 2^(total - ib) / 2^shift)`, saturated to `i32`.
pub fn calculate_input_radius(
    input_integer_bits: i32,
    input_left_shift: i32,
    total_signed_bits: i32,
) -> i32 {
    let max_input_rescaled = 1.0
        * (((1i64 << input_integer_bits.clamp(0, 62)) - 1) as f64)
        * libm::ldexp(1.0, total_signed_bits.saturating_sub(input_integer_bits))
        / libm::ldexp(1.0, input_left_shift);
    libm::floor(max_input_rescaled) as i32
}

/// ADD: TFLM `CalculateOpDataAdd` for int8 (`add_common.cc`). Both inputs are rescaled
/// to `2 * max(scale1, scale2)` with 20 bits of headroom, summed, and the sum rescaled to
/// the output scale; the three multipliers come from `QuantizeMultiplierSmallerThanOneExp`.
/// `clamp` is the fused activation (`CalculateActivationRangeQuantized` for int8, the float
/// range for f32; TFLite's "no activation" float range is `±f32::MAX`, not infinity).
/// For f32 models only `clamp` matters.
pub fn add_params(in1: (f32, i32), in2: (f32, i32), out: (f32, i32), clamp: Clamp) -> AddParams {
    let twice_max_input_scale = 2.0 * cpp_max(in1.0, in2.0) as f64;
    let real_input1_multiplier = in1.0 as f64 / twice_max_input_scale;
    let real_input2_multiplier = in2.0 as f64 / twice_max_input_scale;
    let real_output_multiplier =
        twice_max_input_scale / ((1i64 << ADD_INT8_LEFT_SHIFT) as f64 * out.0 as f64);
    AddParams {
        left_shift: ADD_INT8_LEFT_SHIFT,
        input1_offset: in1.1.wrapping_neg(),
        input2_offset: in2.1.wrapping_neg(),
        output_offset: out.1,
        input1: multiplier(quantize_multiplier_smaller_than_one_exp(
            real_input1_multiplier,
        )),
        input2: multiplier(quantize_multiplier_smaller_than_one_exp(
            real_input2_multiplier,
        )),
        output: multiplier(quantize_multiplier_smaller_than_one_exp(
            real_output_multiplier,
        )),
        clamp,
    }
}

/// MUL: TFLM `CalculateOpDataMul` (`mul_common.cc`): `QuantizeMultiplier` of
/// `scale1 * scale2 / scale_out` (in double, in that order). For f32 only `clamp` matters.
pub fn mul_params(in1: (f32, i32), in2: (f32, i32), out: (f32, i32), clamp: Clamp) -> MulParams {
    let real_multiplier = in1.0 as f64 * in2.0 as f64 / out.0 as f64;
    MulParams {
        input1_offset: in1.1.wrapping_neg(),
        input2_offset: in2.1.wrapping_neg(),
        output_offset: out.1,
        output: multiplier(quantize_multiplier(real_multiplier)),
        clamp,
    }
}

/// SOFTMAX: TFLM `CalculateSoftmaxParams` (`softmax_common.cc`) for int8 input:
/// `PreprocessSoftmaxScaling(beta, input_scale, 5)` — `QuantizeMultiplierGreaterThanOne` of
/// `min(beta * input_scale * 2^26, 2^31 - 1)` — and
/// `diff_min = -CalculateInputRadius(5, input_left_shift, 31)`. `beta` is kept for the
/// f32 kernel (which uses only `beta`).
pub fn softmax_params(beta: f32, input_scale: f32) -> SoftmaxParams {
    let max_real_multiplier = (1i64 << 31) as f64 - 1.0;
    let product =
        beta as f64 * input_scale as f64 * (1i64 << (31 - SOFTMAX_SCALED_DIFF_INTEGER_BITS)) as f64;
    // std::min<double>(a, b) is `(b < a) ? b : a`.
    let real = if max_real_multiplier < product {
        max_real_multiplier
    } else {
        product
    };
    let (input_multiplier, input_left_shift) = quantize_multiplier(real);
    let radius = calculate_input_radius(SOFTMAX_SCALED_DIFF_INTEGER_BITS, input_left_shift, 31);
    SoftmaxParams {
        beta,
        input_multiplier,
        input_left_shift,
        // TFLM: `diff_min = -1.0 * CalculateInputRadius(...)`, exact in double.
        diff_min: -(radius as f64) as i32,
    }
}

/// The int8 LOGISTIC / TANH input rescale shared by TFLM's `CalculateArithmeticOpDataLogistic`
/// (`logistic_common.cc`) and `CalculateArithmeticOpData` (`tanh.cc`): `frexp` of
/// `input_scale * 2^27` (not `QuantizeMultiplier`: the mantissa is rounded with
/// `TfLiteRound` and never renormalised), and the radius `CalculateInputRadius(4, shift, 31)`.
fn q4_activation_params(input_scale: f32, input_zero_point: i32) -> ActivationParams {
    let input_real_multiplier =
        input_scale as f64 * (1i64 << (31 - ACTIVATION_INPUT_INTEGER_BITS)) as f64;
    let (q, input_left_shift) = libm::frexp(input_real_multiplier);
    let input_multiplier = libm::round(q * (1i64 << 31) as f64) as i32;
    ActivationParams {
        input_zero_point,
        input_range_radius: calculate_input_radius(
            ACTIVATION_INPUT_INTEGER_BITS,
            input_left_shift,
            31,
        ),
        input_multiplier,
        input_left_shift,
    }
}

/// LOGISTIC (int8): TFLM `CalculateArithmeticOpDataLogistic`; see the shared rescale above.
pub fn logistic_params(input_scale: f32, input_zero_point: i32) -> ActivationParams {
    q4_activation_params(input_scale, input_zero_point)
}

/// TANH (int8): TFLM `tanh.cc` `CalculateArithmeticOpData` (same derivation as LOGISTIC).
pub fn tanh_params(input_scale: f32, input_zero_point: i32) -> ActivationParams {
    q4_activation_params(input_scale, input_zero_point)
}

/// MEAN: TFLM `PrepareMeanOrSumHelper` (`reduce_common.cc`): `QuantizeMultiplier` of
/// `input_scale / output_scale`; the kernel folds in `1 / num_elements` at run time as
/// `QuantizedMeanOrSum` does. Scales and zero points are recorded as given.
pub fn mean_params(
    input: (f32, i32),
    output: (f32, i32),
    axes_mask: u8,
    keep_dims: bool,
) -> MeanParams {
    let real_multiplier = input.0 as f64 / output.0 as f64;
    MeanParams {
        axes_mask,
        requant: multiplier(quantize_multiplier(real_multiplier)),
        input_zero_point: input.1,
        output_zero_point: output.1,
        input_scale: input.0,
        output_scale: output.0,
        keep_dims,
    }
}

/// LEAKY_RELU: TFLite's `LeakyReluPrepare` (`activations.cc`; TFLM's
/// `CalculateOpDataLeakyRelu` is the same): `QuantizeMultiplier` of
/// `input_scale * alpha / output_scale` and of `input_scale / output_scale`, each quotient
/// computed in single precision (the scales and alpha are `float`) and then widened.
/// For f32 models only `alpha` matters.
pub fn leaky_relu_params(alpha: f32, input: (f32, i32), output: (f32, i32)) -> LeakyReluParams {
    let alpha_multiplier = f64::from(input.0 * alpha / output.0);
    let identity_multiplier = f64::from(input.0 / output.0);
    LeakyReluParams {
        alpha,
        input_zero_point: input.1,
        output_zero_point: output.1,
        identity: multiplier(quantize_multiplier(identity_multiplier)),
        alpha_q: multiplier(quantize_multiplier(alpha_multiplier)),
    }
}

/// TFLite's `DownScaleInt32ToInt16Multiplier`: a Q31 multiplier rounded to Q15
/// (saturating at `i16::MAX`).
fn down_scale_to_q15(m: i32) -> i32 {
    const ROUNDING: i32 = 1 << 15;
    if m >= i32::MAX - ROUNDING {
        return i32::from(i16::MAX);
    }
    (m + ROUNDING) >> 16
}

/// HARD_SWISH: TFLite's `HardSwishPrepare` (`activations.cc`; TFLM's `hard_swish_common.cc`
/// is the same): the input on a 128-times finer "hires" scale, the output multiplier
/// `hires_scale / output_scale` and the reluish multiplier `hires_scale / (3 / 32768)`,
/// quotients in single precision, each through `QuantizeMultiplier` and downscaled to Q15.
/// The kernel's check refuses the parameters when the output multiplier's exponent is
/// positive (as TFLite's Prepare does).
pub fn hard_swish_params(input: (f32, i32), output: (f32, i32)) -> HardSwishParams {
    let hires_input_scale = (1.0f32 / 128.0) * input.0;
    let reluish_scale = 3.0f32 / 32768.0;
    let (om, oe) = quantize_multiplier(f64::from(hires_input_scale / output.0));
    let (rm, re) = quantize_multiplier(f64::from(hires_input_scale / reluish_scale));
    HardSwishParams {
        input_zero_point: input.1,
        output_zero_point: output.1,
        reluish_multiplier: down_scale_to_q15(rm),
        reluish_exponent: re,
        output_multiplier: down_scale_to_q15(om),
        output_exponent: oe,
    }
}

/// QUANTIZE: TFLM `PrepareQuantizeReference` (`quantize_common.cc`): for int8 -> int8,
/// `QuantizeMultiplier` of `input_scale / output_scale` (used by `Requantize`). For
/// f32 -> int8 the kernel uses the output tensor's own scale and zero point
/// (`AffineQuantize`); the input tuple is then ignored except for its zero point.
pub fn quantize_params(input: (f32, i32), output: (f32, i32)) -> QuantizeParams {
    let effective_scale = input.0 as f64 / output.0 as f64;
    QuantizeParams {
        requant: multiplier(quantize_multiplier(effective_scale)),
        input_zero_point: input.1,
        output_zero_point: output.1,
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    #[test]
    fn add_int8_typical() {
        let p = add_params((0.5, 3), (0.25, -7), (1.0, 10), Clamp::NONE);
        assert_eq!(p.left_shift, 20);
        assert_eq!(
            (p.input1_offset, p.input2_offset, p.output_offset),
            (-3, 7, 10)
        );
        // 0.5 / 1.0 = 0.5 -> (2^30, 0); 0.25 / 1.0 -> (2^30, -1).
        assert_eq!(
            p.input1,
            Multiplier {
                multiplier: 1 << 30,
                shift: 0
            }
        );
        assert_eq!(
            p.input2,
            Multiplier {
                multiplier: 1 << 30,
                shift: -1
            }
        );
        // 1.0 / (2^20 * 1.0) = 2^-20 -> (2^30, -19).
        assert_eq!(
            p.output,
            Multiplier {
                multiplier: 1 << 30,
                shift: -19
            }
        );
    }

    #[test]
    fn mul_int8_typical() {
        let p = mul_params((0.5, 1), (0.5, 2), (0.125, -3), Clamp::NONE);
        // 0.25 / 0.125 = 2 -> (2^30, 2).
        assert_eq!(
            p.output,
            Multiplier {
                multiplier: 1 << 30,
                shift: 2
            }
        );
        assert_eq!(
            (p.input1_offset, p.input2_offset, p.output_offset),
            (-1, -2, -3)
        );
    }

    #[test]
    fn softmax_typical() {
        // beta 1, scale 1/16: 2^-4 * 2^26 = 2^22 -> (2^30, 23); radius floor(31*2^26/2^23) = 248.
        let p = softmax_params(1.0, 1.0 / 16.0);
        assert_eq!(
            (p.input_multiplier, p.input_left_shift, p.diff_min),
            (1 << 30, 23, -248)
        );
        // A huge beta*scale is capped at 2^31 - 1.
        let p = softmax_params(1e9, 1.0);
        assert_eq!((p.input_multiplier, p.input_left_shift), (i32::MAX, 31));
        assert_eq!(p.diff_min, 0);
    }

    #[test]
    fn logistic_typical() {
        // scale 1/16: 2^-4 * 2^27 = 2^23 -> frexp (0.5, 24); radius floor(15*2^27/2^24) = 120.
        let p = logistic_params(1.0 / 16.0, -5);
        assert_eq!(p.input_multiplier, 1 << 30);
        assert_eq!(p.input_left_shift, 24);
        assert_eq!(p.input_range_radius, 120);
        assert_eq!(p.input_zero_point, -5);
        assert_eq!(tanh_params(1.0 / 16.0, -5), p);
        // scale 0.1: 0.1 * 2^27 = 13421772.8 -> frexp mantissa 0.8, exponent 24.
        let p = logistic_params(0.1, 0);
        assert_eq!(p.input_left_shift, 24);
        assert_eq!(
            p.input_multiplier,
            libm::round(0.1f32 as f64 * 2f64.powi(27) / 2f64.powi(24) * 2f64.powi(31)) as i32
        );
        assert_eq!(p.input_range_radius, 120);
    }

    #[test]
    fn radius_matches_integer_form() {
        for shift in 0..=62 {
            let want = ((31i64 << 26) >> shift) as i32;
            assert_eq!(calculate_input_radius(5, shift, 31), want, "{shift}");
            let want = ((15i64 << 27) >> shift) as i32;
            assert_eq!(calculate_input_radius(4, shift, 31), want, "{shift}");
        }
    }

    #[test]
    fn mean_and_quantize() {
        let p = mean_params((0.5, 1), (0.25, 2), 0b0110, true);
        assert_eq!(
            p.requant,
            Multiplier {
                multiplier: 1 << 30,
                shift: 2
            }
        );
        assert_eq!(
            (
                p.input_zero_point,
                p.output_zero_point,
                p.axes_mask,
                p.keep_dims
            ),
            (1, 2, 6, true)
        );
        let q = quantize_params((0.5, 1), (0.25, 2));
        assert_eq!(
            q.requant,
            Multiplier {
                multiplier: 1 << 30,
                shift: 2
            }
        );
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        for &s in &[
            0.0f32,
            -1.0,
            f32::NAN,
            f32::INFINITY,
            f32::MIN_POSITIVE,
            1e-45,
            f32::MAX,
        ] {
            let _ = add_params((s, 0), (s, 0), (s, 0), Clamp::NONE);
            let _ = mul_params((s, 0), (s, 0), (s, 0), Clamp::NONE);
            let _ = softmax_params(s, s);
            let _ = logistic_params(s, 0);
            let _ = tanh_params(s, 0);
            let _ = mean_params((s, 0), (s, 0), 1, false);
            let _ = quantize_params((s, 0), (s, 0));
        }
    }
}
