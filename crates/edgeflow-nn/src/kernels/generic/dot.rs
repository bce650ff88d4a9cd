//! Inner dot products of int8 vectors held as bytes, wrapping int32 accumulation.
//!
//! The bodies work on 8-byte chunks zipped by value (so LLVM indexes all operands with
//! one counter and unrolls without bounds checks), then a tail of fewer than 8 bytes.
//!
//! The portable reference of the packed kernels in [`crate::kernels::arch::arm_dsp`],
//! and the only inner loops on targets without the Arm DSP extension.

/// Splits the first `n` bytes of `s` into a multiple-of-8 head and the tail.
#[inline(always)]
fn split8(s: &[u8], n: usize) -> (&[u8], &[u8]) {
    s.get(..n).unwrap_or(&[]).split_at(n & !7)
}

/// `a + x * w` on int8 bytes, wrapping.
#[inline(always)]
fn mac(a: i32, x: i32, w: u8) -> i32 {
    a.wrapping_add(x.wrapping_mul(w as i8 as i32))
}

/// `sum(x[i] * w[i])` over the common length.
#[inline(never)]
pub(crate) fn dot1(x: &[u8], w: &[u8]) -> i32 {
    let n = x.len().min(w.len());
    let ((xh, xt), (wh, wt)) = (split8(x, n), split8(w, n));
    let mut a = 0i32;
    for (xc, wc) in xh.chunks_exact(8).zip(wh.chunks_exact(8)) {
        for j in 0..8 {
            a = mac(a, xc[j] as i8 as i32, wc[j]);
        }
    }
    for (&xv, &wv) in xt.iter().zip(wt) {
        a = mac(a, xv as i8 as i32, wv);
    }
    a
}

/// Two dot products sharing `x` (two output channels): each input byte is loaded
/// once for both.
#[inline(never)]
pub(crate) fn dot2(x: &[u8], w0: &[u8], w1: &[u8]) -> (i32, i32) {
    let n = x.len().min(w0.len()).min(w1.len());
    let ((xh, xt), (ph, pt), (qh, qt)) = (split8(x, n), split8(w0, n), split8(w1, n));
    let (mut a0, mut a1) = (0i32, 0i32);
    for ((xc, pc), qc) in xh
        .chunks_exact(8)
        .zip(ph.chunks_exact(8))
        .zip(qh.chunks_exact(8))
    {
        for j in 0..8 {
            let xv = xc[j] as i8 as i32;
            a0 = mac(a0, xv, pc[j]);
            a1 = mac(a1, xv, qc[j]);
        }
    }
    for ((&xv, &p), &q) in xt.iter().zip(pt).zip(qt) {
        let xv = xv as i8 as i32;
        a0 = mac(a0, xv, p);
        a1 = mac(a1, xv, q);
    }
    (a0, a1)
}

/// Two dot products of `x`, little-endian `i16` values (input plus offset, for
/// FULLY_CONNECTED), with int8 `w0` and `w1`.
#[inline(never)]
pub(crate) fn dot2_i16(x: &[u8], w0: &[u8], w1: &[u8]) -> (i32, i32) {
    let n = (x.len() / 2).min(w0.len()).min(w1.len());
    let m = n & !7;
    let (xh, xt) = x.get(..2 * n).unwrap_or(&[]).split_at(2 * m);
    let ((ph, pt), (qh, qt)) = (split8(w0, n), split8(w1, n));
    let (mut a0, mut a1) = (0i32, 0i32);
    for ((xc, pc), qc) in xh
        .chunks_exact(16)
        .zip(ph.chunks_exact(8))
        .zip(qh.chunks_exact(8))
    {
        for j in 0..8 {
            let xv = i16::from_le_bytes([xc[2 * j], xc[2 * j + 1]]) as i32;
            a0 = mac(a0, xv, pc[j]);
            a1 = mac(a1, xv, qc[j]);
        }
    }
    for ((xc, &p), &q) in xt.chunks_exact(2).zip(pt).zip(qt) {
        let xv = i16::from_le_bytes([xc[0], xc[1]]) as i32;
        a0 = mac(a0, xv, p);
        a1 = mac(a1, xv, q);
    }
    (a0, a1)
}

/// Like [`dot2_i16`] for one weight row.
#[inline(never)]
pub(crate) fn dot1_i16(x: &[u8], w: &[u8]) -> i32 {
    let mut a = 0i32;
    for (xc, &wv) in x.chunks_exact(2).zip(w) {
        a = mac(a, i16::from_le_bytes([xc[0], xc[1]]) as i32, wv);
    }
    a
}

/// `sum(w[i])`.
#[inline(always)]
pub(crate) fn sum(w: &[u8]) -> i32 {
    w.iter().fold(0i32, |a, &v| a.wrapping_add(v as i8 as i32))
}
