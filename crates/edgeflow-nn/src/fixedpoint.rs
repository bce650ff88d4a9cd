//! Fixed-point arithmetic exactly as TFLite Micro's reference kernels do it
//! (gemmlowp's `SaturatingRoundingDoublingHighMul` / `RoundingDivideByPOT` and TFLite's
//! double-rounding `MultiplyByQuantizedMultiplier`, the default build of TFLM).
//!
//! Also the host-side derivations of the parameters (`quantize_multiplier`, activation
//! ranges), so that the compiler and the kernels share one definition. None of these
//! functions panic; integer overflow wraps where C++ would be undefined, which is what
//! the TFLM build does on every target we compare against.

/// `round(a * b / 2^31)` with gemmlowp's rounding, saturating the single overflow case
/// `a == b == i32::MIN`.
#[inline(always)]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == b && a == i32::MIN {
        return i32::MAX;
    }
    let ab = (a as i64) * (b as i64);
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // C++ integer division truncates towards zero; so does Rust's.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// Divides by `2^exponent` rounding half away from zero (gemmlowp `RoundingDivideByPOT`).
/// `exponent` must be in `0..=31`; larger values are clamped to 31.
#[inline(always)]
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    let e = exponent.clamp(0, 31) as u32;
    let mask: i32 = ((1i64 << e) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> e) + i32::from(remainder > threshold)
}

/// TFLite's `MultiplyByQuantizedMultiplier` (double rounding): `x * m * 2^(shift-31)`.
#[inline(always)]
pub fn multiply_by_quantized_multiplier(x: i32, quantized_multiplier: i32, shift: i32) -> i32 {
    let left_shift = if shift > 0 { shift } else { 0 };
    // saturating: a shift of i32::MIN must not overflow (it rounds everything to 0 or -1).
    let right_shift = if shift > 0 { 0 } else { shift.saturating_neg() };
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(
            x.wrapping_mul(1i32.wrapping_shl(left_shift as u32)),
            quantized_multiplier,
        ),
        right_shift,
    )
}

/// TFLite's `MultiplyByQuantizedMultiplierSmallerThanOneExp`.
#[inline(always)]
pub fn multiply_by_quantized_multiplier_smaller_than_one_exp(
    x: i32,
    quantized_multiplier: i32,
    left_shift: i32,
) -> i32 {
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(x, quantized_multiplier),
        left_shift.saturating_neg(),
    )
}

/// TFLite's `MultiplyByQuantizedMultiplierGreaterThanOne`.
#[inline(always)]
pub fn multiply_by_quantized_multiplier_greater_than_one(
    x: i32,
    quantized_multiplier: i32,
    left_shift: i32,
) -> i32 {
    saturating_rounding_doubling_high_mul(
        x.wrapping_mul(1i32.wrapping_shl(left_shift.clamp(0, 31) as u32)),
        quantized_multiplier,
    )
}

/// TFLite's `QuantizeMultiplier`: encodes a positive real multiplier as a Q31 value and
/// a power-of-two exponent so that `real ≈ q * 2^(shift - 31)`. Host-side (uses f64).
pub fn quantize_multiplier(real: f64) -> (i32, i32) {
    if real == 0.0 {
        return (0, 0);
    }
    let (q, mut shift) = libm::frexp(real);
    let mut q_fixed = libm::round(q * (1i64 << 31) as f64) as i64;
    if q_fixed == (1i64 << 31) {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        shift = 0;
        q_fixed = 0;
    }
    (q_fixed as i32, shift)
}

/// TFLite's `QuantizeMultiplierSmallerThanOneExp`: like [`quantize_multiplier`] for
/// `0 < real < 1`, returning a non-positive left shift.
pub fn quantize_multiplier_smaller_than_one_exp(real: f64) -> (i32, i32) {
    quantize_multiplier(real)
}

/// The quantized clamp bounds of a fused activation (TFLite's
/// `CalculateActivationRangeQuantized` for int8): `None` → `[-128, 127]`,
/// otherwise the real bounds quantized with `round(x / scale) + zero_point` and
/// intersected with the int8 range.
pub fn activation_range_int8(
    real_min: Option<f32>,
    real_max: Option<f32>,
    scale: f32,
    zero_point: i32,
) -> (i32, i32) {
    let quantize = |f: f32| zero_point.saturating_add(libm::roundf(f / scale) as i32);
    let lo = real_min.map_or(-128, |m| quantize(m).max(-128));
    let hi = real_max.map_or(127, |m| quantize(m).min(127));
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srdhm_matches_definition() {
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN),
            i32::MAX
        );
        assert_eq!(
            saturating_rounding_doubling_high_mul(1 << 30, 1 << 30),
            1 << 29
        );
        // 3 * 2^30 * 2 / 2^32 = 1.5 -> 2, and -1.5 -> -1: gemmlowp's nudge sends ties up.
        assert_eq!(saturating_rounding_doubling_high_mul(3, 1 << 30), 2);
        assert_eq!(saturating_rounding_doubling_high_mul(-3, 1 << 30), -1);
        assert_eq!(saturating_rounding_doubling_high_mul(-5, 1 << 30), -2);
    }

    #[test]
    fn rdbp_rounds_half_away_from_zero() {
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(4, 1), 2);
        assert_eq!(rounding_divide_by_pot(-6, 2), -2);
        assert_eq!(rounding_divide_by_pot(7, 0), 7);
    }

    #[test]
    fn quantize_multiplier_roundtrips() {
        for &r in &[0.5f64, 0.75, 1.0, 1e-3, 3.7, 0.999_999_999_9] {
            let (m, s) = quantize_multiplier(r);
            let back = m as f64 * 2f64.powi(s - 31);
            assert!((back - r).abs() / r < 1e-9, "{r} -> {m} {s}");
            assert!(m >= 1 << 30, "{r} normalised");
        }
        assert_eq!(quantize_multiplier(0.0), (0, 0));
        assert_eq!(quantize_multiplier(1e-12), (0, 0));
    }

    #[test]
    fn mbqm_scales() {
        let (m, s) = quantize_multiplier(0.25);
        assert_eq!(multiply_by_quantized_multiplier(100, m, s), 25);
        assert_eq!(multiply_by_quantized_multiplier(-102, m, s), -26);
        let (m, s) = quantize_multiplier(3.0);
        assert_eq!(multiply_by_quantized_multiplier(-7, m, s), -21);
        // Extreme shifts are total (no overflow panic in debug builds).
        let _ = multiply_by_quantized_multiplier(i32::MAX, i32::MAX, i32::MIN);
        let _ = multiply_by_quantized_multiplier(i32::MIN, i32::MAX, i32::MAX);
        let _ = multiply_by_quantized_multiplier_smaller_than_one_exp(5, 7, i32::MIN);
    }
}
