//! gemmlowp's fixed-point transcendental functions, on raw `i32` values, as TFLite
//! Micro's reference kernels call them (`exp_on_negative_values`, `logistic`, `tanh`,
//! `one_over_one_plus_x_for_x_in_0_1`, and TFLite's `GetReciprocal` on top).
//!
//! A value in "Q`m`" format (gemmlowp's `FixedPoint<int32_t, m>`) is a raw `i32` `r`
//! meaning `r / 2^(31 - m)`. Q0 `i32::MAX` stands for 1.0.
//!
//! gemmlowp's plain fixed-point `+`/`-` do not saturate (overflow is undefined in C++);
//! here they wrap, which is what every compiler we compare against emits. Products are
//! `SaturatingRoundingDoublingHighMul`, power-of-two rescales are saturating left shifts
//! or rounding right shifts, exactly as in gemmlowp. Nothing here panics.

use crate::fixedpoint::{rounding_divide_by_pot, saturating_rounding_doubling_high_mul};

/// Fixed-point product (the integer bits of the operands add up).
#[inline(always)]
fn fmul(a: i32, b: i32) -> i32 {
    saturating_rounding_doubling_high_mul(a, b)
}

/// gemmlowp `SaturatingRoundingMultiplyByPOT<e>` for `e >= 0`: a left shift by `e` that
/// saturates to `i32::MIN`/`i32::MAX` when the result does not fit. `e` must be `<= 30`.
#[inline(always)]
pub(crate) fn saturating_shl(x: i32, e: u32) -> i32 {
    if e == 0 {
        return x;
    }
    let threshold: i32 = (1i32 << (31 - e.min(30))) - 1;
    if x > threshold {
        i32::MAX
    } else if x < -threshold {
        i32::MIN
    } else {
        x.wrapping_shl(e)
    }
}

/// gemmlowp `RoundingHalfSum` for `i32`: `(a + b) / 2` rounded half away from zero.
#[inline(always)]
pub(crate) fn rounding_half_sum(a: i32, b: i32) -> i32 {
    let sum = a as i64 + b as i64;
    let sign: i64 = if sum >= 0 { 1 } else { -1 };
    ((sum + sign) / 2) as i32
}

/// `exp(a)` for Q0 `a` in `[-1/4, 0)`, by a Taylor expansion around `-1/8`; Q0 result.
#[inline]
pub(crate) fn exp_on_interval_between_negative_one_quarter_and_0_excl(a: i32) -> i32 {
    const EXP_MINUS_ONE_EIGHTH: i32 = 1_895_147_668; // exp(-1/8) in Q0
    const ONE_THIRD: i32 = 715_827_883; // 1/3 in Q0
    let x = a.wrapping_add(1 << 28); // a + 1/8
    let x2 = fmul(x, x);
    let x3 = fmul(x2, x);
    let x4 = fmul(x2, x2);
    let x4_over_4 = rounding_divide_by_pot(x4, 2);
    let poly = rounding_divide_by_pot(
        fmul(x4_over_4.wrapping_add(x3), ONE_THIRD).wrapping_add(x2),
        1,
    );
    EXP_MINUS_ONE_EIGHTH.wrapping_add(fmul(EXP_MINUS_ONE_EIGHTH, x.wrapping_add(poly)))
}

/// `exp(a)` for `a <= 0` given in Q`integer_bits` (`integer_bits` in `0..=29`); Q0 result.
///
/// gemmlowp's `exp_on_negative_values<int32_t, integer_bits>`: the input is split into
/// its residue in `[-1/4, 0)` (handled by a polynomial) and a multiple of 1/4 whose bits
/// select factors `exp(-2^k)` from a barrel shifter. Callers pass a literal
/// `integer_bits`, so the branches fold away.
#[inline(always)]
pub(crate) fn exp_on_negative_values(a: i32, integer_bits: u32) -> i32 {
    let ib = integer_bits.min(29);
    let frac_bits = 31 - ib;
    let one_quarter: i32 = 1i32 << (frac_bits - 2);
    let mask = one_quarter - 1;
    let a_mod_quarter_minus_one_quarter = (a & mask).wrapping_sub(one_quarter);
    let mut result = exp_on_interval_between_negative_one_quarter_and_0_excl(saturating_shl(
        a_mod_quarter_minus_one_quarter,
        ib,
    ));
    let remainder = a_mod_quarter_minus_one_quarter.wrapping_sub(a);

    // (exponent k, exp(-2^k) in Q0) for k = -2..=4.
    const BARREL: [(i32, i32); 7] = [
        (-2, 1_672_461_947),
        (-1, 1_302_514_674),
        (0, 790_015_084),
        (1, 290_630_308),
        (2, 39_332_535),
        (3, 720_401),
        (4, 242),
    ];
    for &(k, multiplier) in BARREL.iter() {
        if (ib as i32) > k {
            let bit = (frac_bits as i32 + k) as u32;
            if remainder & (1i32 << bit) != 0 {
                result = fmul(result, multiplier);
            }
        }
    }
    if ib > 5 {
        // Inputs below -32 give exactly zero.
        let clamp = -(1i32 << (36 - ib));
        if a < clamp {
            result = 0;
        }
    }
    if a == 0 {
        result = i32::MAX;
    }
    result
}

/// Newton-Raphson reciprocal shared by the two `..._for_x_in_0_1` functions: returns
/// `1 / (1 + a)` in Q2 for Q0 `a` in `[0, 1)`.
#[inline(always)]
fn reciprocal_one_plus_x_q2(a: i32) -> i32 {
    const FORTY_EIGHT_OVER_17: i32 = 1_515_870_810; // Q2
    const NEG_THIRTY_TWO_OVER_17: i32 = -1_010_580_540; // Q2
    const ONE_Q2: i32 = 1 << 29;
    let half_denominator = rounding_half_sum(a, i32::MAX);
    let mut x = FORTY_EIGHT_OVER_17.wrapping_add(fmul(half_denominator, NEG_THIRTY_TWO_OVER_17));
    for _ in 0..3 {
        let half_denominator_times_x = fmul(half_denominator, x);
        let one_minus = ONE_Q2.wrapping_sub(half_denominator_times_x);
        x = x.wrapping_add(saturating_shl(fmul(x, one_minus), 2));
    }
    x
}

/// gemmlowp `one_over_one_plus_x_for_x_in_0_1`: `1 / (1 + a)` for Q0 `a` in `[0, 1)`; Q0.
#[inline]
pub(crate) fn one_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    // x / 2 is exact in Q1 (same raw value); rescaling Q1 -> Q0 is a saturating << 1.
    saturating_shl(reciprocal_one_plus_x_q2(a), 1)
}

/// gemmlowp `one_minus_x_over_one_plus_x_for_x_in_0_1`: `(1 - a) / (1 + a)`; Q0.
#[inline]
pub(crate) fn one_minus_x_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    const ONE_Q2: i32 = 1 << 29;
    saturating_shl(reciprocal_one_plus_x_q2(a).wrapping_sub(ONE_Q2), 2)
}

/// gemmlowp `logistic` for a Q`integer_bits` input: `1 / (1 + exp(-a))` in Q0.
#[inline(always)]
pub(crate) fn logistic(a: i32, integer_bits: u32) -> i32 {
    let positive = a > 0;
    let abs_input = if positive { a } else { a.wrapping_neg() };
    let result_if_positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(
        abs_input.wrapping_neg(),
        integer_bits,
    ));
    if a == 0 {
        1 << 30
    } else if positive {
        result_if_positive
    } else {
        i32::MAX.wrapping_sub(result_if_positive)
    }
}

/// gemmlowp `tanh` for a Q`integer_bits` input (`integer_bits <= 29`); Q0 result.
#[inline(always)]
pub(crate) fn tanh(a: i32, integer_bits: u32) -> i32 {
    let negative = a < 0;
    let n = if negative { a } else { a.wrapping_neg() };
    // -tanh(n) for n <= 0: exp(2n) with 2n read in one more integer bit (exact).
    let t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1));
    if a == 0 {
        0
    } else if negative {
        t.wrapping_neg()
    } else {
        t
    }
}

/// TFLite `GetReciprocal`: for a positive `x` in Q`x_integer_digits`, returns
/// `(1 / x) * 2^num_bits_over_unit` in Q0 and `num_bits_over_unit`.
///
/// `x <= 0` is outside TFLite's contract (it cannot happen in SOFTMAX unless the sum of
/// exponentials overflowed); the result is then well defined here but meaningless.
#[inline]
pub(crate) fn get_reciprocal(x: i32, x_integer_digits: i32) -> (i32, i32) {
    let headroom_plus_one = (x as u32).leading_zeros();
    let num_bits_over_unit = x_integer_digits - headroom_plus_one as i32;
    let shifted_sum_minus_one = (x as u32)
        .checked_shl(headroom_plus_one)
        .unwrap_or(0)
        .wrapping_sub(1u32 << 31) as i32;
    (
        one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one),
        num_bits_over_unit,
    )
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    fn q(raw: i32, integer_bits: u32) -> f64 {
        raw as f64 / (1u64 << (31 - integer_bits)) as f64
    }

    fn to_q(x: f64, integer_bits: u32) -> i32 {
        libm::round(x * (1u64 << (31 - integer_bits)) as f64) as i32
    }

    /// Known values, computed by hand from gemmlowp's definitions.
    #[test]
    fn exact_known_values() {
        assert_eq!(exp_on_negative_values(0, 5), i32::MAX);
        assert_eq!(exp_on_negative_values(0, 4), i32::MAX);
        assert_eq!(logistic(0, 4), 1 << 30);
        assert_eq!(tanh(0, 4), 0);
        assert_eq!(rounding_half_sum(3, 4), 4);
        assert_eq!(rounding_half_sum(-3, -4), -4);
        assert_eq!(rounding_half_sum(0, i32::MAX), 1 << 30);
        assert_eq!(saturating_shl(1 << 29, 2), i32::MAX);
        assert_eq!(saturating_shl(-(1 << 29), 2), i32::MIN);
        assert_eq!(saturating_shl(-(1 << 28), 2), -(1 << 30));
        assert_eq!(saturating_shl(12345, 0), 12345);
        // 1 / (1 + 0) saturates to the Q0 maximum (within one Newton step of 1.0).
        let one = one_over_one_plus_x_for_x_in_0_1(0);
        assert!(one >= i32::MAX - 4, "{one}");
    }

    /// Outputs of gemmlowp 719139ce (the version TFLM 90b983c2 builds with) and of TFLite's
    /// `GetReciprocal`, compiled from the C++ sources.
    #[test]
    fn bit_exact_against_gemmlowp() {
        let e5 = [
            (-23960, 2146716581),
            (-1850978261, 0),
            (-1208314901, 33),
            (-430133155, 3534488),
            (-8587, 2147208392),
            (-963953854, 1241),
        ];
        let e4 = [
            (-23960, 2147099834),
            (-1850978261, 2201),
            (-1208314901, 264320),
            (-430133155, 87122078),
            (-8587, 2147345770),
            (-963953854, 1632375),
        ];
        let l4 = [
            (-23960, 1073645865),
            (-1850978261, 2203),
            (1208314901, 2147219358),
            (-430133155, 83725391),
            (-8587, 1073707351),
            (-963953854, 1631135),
        ];
        let t4 = [
            (-23960, -383604),
            (-1850978261, -2147483647),
            (1208314901, 2147483584),
            (-430133155, -2140426288),
            (-8587, -137632),
            (-963953854, -2147481168),
        ];
        let r0 = [
            (2147459688, 1073747816),
            (296505387, 1886950374),
            (1208314901, 1374244000),
            (877346841, 1524609738),
            (2147475061, 1073743966),
        ];
        for (x, want) in e5 {
            assert_eq!(exp_on_negative_values(x, 5), want, "exp5({x})");
        }
        for (x, want) in e4 {
            assert_eq!(exp_on_negative_values(x, 4), want, "exp4({x})");
        }
        for (x, want) in l4 {
            assert_eq!(logistic(x, 4), want, "logistic({x})");
        }
        for (x, want) in t4 {
            assert_eq!(tanh(x, 4), want, "tanh({x})");
        }
        for (x, want) in r0 {
            assert_eq!(one_over_one_plus_x_for_x_in_0_1(x), want, "1/(1+{x})");
        }
        let gr = [
            (262141, 1073754110, -2),
            (1, 2147483647, -19),
            (151039362, 1908312984, 8),
            (13102, 1342709974, -6),
            (206, 1334358772, -12),
            (536868765, 1073746118, 9),
        ];
        for (x, want, bits) in gr {
            assert_eq!(get_reciprocal(x, 12), (want, bits), "GetReciprocal({x})");
        }
    }

    #[test]
    fn exp_on_negative_values_matches_f64() {
        for &ib in &[4u32, 5] {
            let mut x = -((1u64 << ib) as f64) + 1e-3;
            while x < 0.0 {
                let raw = to_q(x, ib);
                let got = q(exp_on_negative_values(raw, ib), 0);
                let want = libm::exp(q(raw, ib));
                assert!((got - want).abs() < 3e-7, "ib {ib} x {x}: {got} vs {want}");
                x += 0.013_7;
            }
        }
        // Multiples of 1/4 (the polynomial at the end of its interval, times the barrel
        // shifter's constants).
        for x in [-0.25f64, -0.5, -1.0, -2.0, -4.0, -8.0, -16.0] {
            let got = q(exp_on_negative_values(to_q(x, 5), 5), 0);
            assert!((got - libm::exp(x)).abs() < 3e-7, "{x}: {got}");
        }
        // Most negative representable input: exp(-32) rounds to zero in Q0.
        assert!(exp_on_negative_values(i32::MIN, 5) <= 1);
    }

    #[test]
    fn reciprocal_matches_f64() {
        let mut a = 0.0f64;
        while a < 1.0 {
            let raw = to_q(a, 0);
            let got = q(one_over_one_plus_x_for_x_in_0_1(raw), 0);
            assert!((got - 1.0 / (1.0 + a)).abs() < 1e-8, "{a}: {got}");
            let got = q(one_minus_x_over_one_plus_x_for_x_in_0_1(raw), 0);
            assert!((got - (1.0 - a) / (1.0 + a)).abs() < 1e-8, "{a}: {got}");
            a += 0.0071;
        }
        for &x in &[1.0f64, 1.5, 2.0, 3.7, 100.0, 4095.9] {
            let raw = to_q(x, 12);
            let (r, bits) = get_reciprocal(raw, 12);
            let got = q(r, 0) * 2f64.powi(-bits);
            let want = 1.0 / q(raw, 12);
            assert!((got - want).abs() / want < 1e-8, "{x}: {got} vs {want}");
        }
    }

    #[test]
    fn logistic_and_tanh_accurate_monotone_saturating() {
        let mut prev_l = i32::MIN;
        let mut prev_t = i32::MIN;
        let mut raw: i64 = i32::MIN as i64;
        let step: i64 = 1 << 18;
        while raw <= i32::MAX as i64 {
            let r = raw as i32;
            let x = q(r, 4);
            let l = logistic(r, 4);
            let t = tanh(r, 4);
            assert!(l >= prev_l, "logistic not monotone at {x}");
            assert!(t >= prev_t, "tanh not monotone at {x}");
            prev_l = l;
            prev_t = t;
            let want_l = 1.0 / (1.0 + libm::exp(-x));
            assert!(
                (q(l, 0) - want_l).abs() < 1e-7,
                "logistic({x}) = {} vs {want_l}",
                q(l, 0)
            );
            assert!(
                (q(t, 0) - libm::tanh(x)).abs() < 2e-7,
                "tanh({x}) = {}",
                q(t, 0)
            );
            raw += step;
        }
        // Saturation at the ends of the Q4 range.
        assert!(logistic(i32::MAX, 4) > i32::MAX - 300);
        assert!(logistic(i32::MIN + 1, 4) < 300);
        assert!(tanh(i32::MAX, 4) > i32::MAX - 300);
        assert!(tanh(i32::MIN + 1, 4) < i32::MIN + 300);
        // Odd symmetry of tanh, point symmetry of logistic.
        for &r in &[1, 1000, 1 << 20, 123_456_789, i32::MAX] {
            assert_eq!(tanh(-r, 4), -tanh(r, 4));
            assert_eq!(logistic(-r, 4), i32::MAX - logistic(r, 4));
        }
    }
}
