//! Element helpers every kernel shares: little-endian element access, TFLite's clamps,
//! zero points and the checks of fused-activation bounds.

use edgeflow_format::graph::{Clamp, DType, TensorDef};

/// The `i`-th little-endian `i32` of `b` (0 past the end; callers index within checked sizes).
#[inline(always)]
pub(crate) fn le_i32(b: &[u8], i: usize) -> i32 {
    match b.get(i.wrapping_mul(4)..i.wrapping_mul(4).wrapping_add(4)) {
        Some(&[a0, a1, a2, a3]) => i32::from_le_bytes([a0, a1, a2, a3]),
        _ => 0,
    }
}

/// The `i`-th little-endian `f32` of `b` (0.0 past the end).
#[inline(always)]
pub(crate) fn le_f32(b: &[u8], i: usize) -> f32 {
    f32::from_bits(le_i32(b, i) as u32)
}

/// A 4-byte chunk as `f32`.
#[inline(always)]
pub(crate) fn f32_of(c: &[u8]) -> f32 {
    match *c {
        [a0, a1, a2, a3] => f32::from_le_bytes([a0, a1, a2, a3]),
        _ => 0.0,
    }
}

/// TFLite's `ActivationFunctionWithMinMax` for floats: `min(max(x, lo), hi)` with the
/// C++ `std::max`/`std::min` semantics (a NaN `x` passes through).
#[inline(always)]
pub(crate) fn clamp_f32(x: f32, lo: f32, hi: f32) -> f32 {
    let y = if x < lo { lo } else { x };
    if hi < y {
        hi
    } else {
        y
    }
}

/// Quantized clamp bounds must be an ordered sub-range of int8.
pub(crate) fn check_clamp_q(c: &Clamp) -> Result<(), &'static str> {
    if c.min_q < -128 || c.max_q > 127 || c.min_q > c.max_q {
        return Err(why!(
            "generic/elem.rs",
            "quantized activation range is not an ordered sub-range of int8"
        ));
    }
    Ok(())
}

/// Float clamp bounds must be ordered (and not NaN).
pub(crate) fn check_clamp_f(c: &Clamp) -> Result<(), &'static str> {
    if c.min_f
        .partial_cmp(&c.max_f)
        .is_none_or(|o| o == core::cmp::Ordering::Greater)
    {
        return Err(why!(
            "generic/elem.rs",
            "float activation range is not ordered"
        ));
    }
    Ok(())
}

/// Zero point of an int8 tensor (validated present by `Model::parse`).
pub(crate) fn zero_point(t: &TensorDef<'_>) -> Result<i32, &'static str> {
    t.quant
        .map(|q| q.zero_point)
        .ok_or(why!("generic/elem.rs", "int8 tensor without quantization"))
}

/// `min(max(x, lo), hi)` on integers, as TFLite writes it (no panic if `lo > hi`).
#[inline(always)]
pub(crate) fn clamp_i32(x: i32, lo: i32, hi: i32) -> i32 {
    let m = if x < lo { lo } else { x };
    if hi < m {
        hi
    } else {
        m
    }
}

/// Fused-activation bounds of a `dtype` op: [`check_clamp_q`] for int8, else
/// [`check_clamp_f`].
pub(crate) fn check_clamp(c: &Clamp, dtype: DType) -> Result<(), &'static str> {
    match dtype {
        DType::I8 => check_clamp_q(c),
        _ => check_clamp_f(c),
    }
}

/// Scratch bytes to plan for a block of `n` int32 accumulators taken by [`acc_block`]:
/// `4 n` plus 3 bytes of slack, so that the block fits at a word boundary wherever the
/// region starts.
pub(crate) const fn acc_block_bytes(n: usize) -> usize {
    n.saturating_mul(4).saturating_add(3)
}

/// `N` int32 accumulators at the first word boundary of `scratch` (a region of at least
/// [`acc_block_bytes`]`(N)` bytes), or `None` when it is shorter. The kernels keep their
/// accumulator blocks here, in planned arena scratch, instead of on the stack (as TFLM's
/// kernels request scratch buffers in `Prepare`); a whole block of the kernel's fixed
/// size, so that its loops compile as they did on a stack array.
#[inline]
pub(crate) fn acc_block<const N: usize>(scratch: &mut [u8]) -> Option<&mut [i32; N]> {
    let skip = scratch.as_ptr().align_offset(4);
    let bytes = scratch.get_mut(skip..skip.checked_add(N.checked_mul(4)?)?)?;
    let words: &mut [i32] = bytemuck::try_cast_slice_mut(bytes).ok()?;
    words.try_into().ok()
}
