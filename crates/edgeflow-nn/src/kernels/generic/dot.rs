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

/// `acc[j] = dot1(x, row j)` for the consecutive `k`-byte rows of `w`, two rows per pass
/// ([`dot2`]); the portable twin of [`crate::kernels::arch::dot_rows`] (CONV_2D).
#[inline(always)]
pub(crate) fn rows(x: &[u8], w: &[u8], k: usize, acc: &mut [i32]) {
    if k == 0 {
        acc.fill(0);
        return;
    }
    let mut ap = acc.chunks_exact_mut(2);
    let mut wp = w.chunks_exact(2 * k);
    for (a, wpair) in (&mut ap).zip(&mut wp) {
        let (w0, w1) = wpair.split_at(k);
        let (s0, s1) = dot2(x, w0, w1);
        if let [a0, a1] = a {
            *a0 = s0;
            *a1 = s1;
        }
    }
    if let [a0] = ap.into_remainder() {
        if let Some(r) = wp.remainder().get(..k) {
            *a0 = dot1(x, r);
        }
    }
}

/// `acc[j] += dot(x, w[j * stride + s0..][..n])` for the `n` little-endian `i16` values
/// of `x`, two rows per pass ([`dot2_i16`]); the portable twin of
/// [`crate::kernels::arch::fc_rows`] (FULLY_CONNECTED).
#[inline(always)]
pub(crate) fn rows_i16_acc(
    x: &[u8],
    w: &[u8],
    stride: usize,
    s0: usize,
    n: usize,
    acc: &mut [i32],
) {
    let x = x.get(..2 * n).unwrap_or(x);
    let row = |j: usize| {
        w.get(j * stride + s0..)
            .and_then(|r| r.get(..n))
            .unwrap_or(&[])
    };
    let mut ap = acc.chunks_exact_mut(2);
    let mut j = 0;
    for a in &mut ap {
        let (d0, d1) = dot2_i16(x, row(j), row(j + 1));
        if let [a0, a1] = a {
            *a0 = a0.wrapping_add(d0);
            *a1 = a1.wrapping_add(d1);
        }
        j += 2;
    }
    if let [a0] = ap.into_remainder() {
        *a0 = a0.wrapping_add(dot1_i16(x, row(j)));
    }
}

/// `acc[j] = sum_t taps[t][c0 + j] * w[t * c + c0 + j]` (3x3 depthwise, one output
/// pixel); the portable twin of [`crate::kernels::arch::dw3x3`].
#[inline(never)]
pub(crate) fn dw3x3(taps: &[&[u8]; 9], w: &[u8], c: usize, c0: usize, acc: &mut [i32]) {
    acc.fill(0);
    for (t, tap) in taps.iter().enumerate() {
        let xs = tap.get(c0..).unwrap_or(&[]);
        let ws = w.get(t * c + c0..).unwrap_or(&[]);
        for ((a, &xv), &wv) in acc.iter_mut().zip(xs).zip(ws) {
            *a = a.wrapping_add((xv as i8 as i32) * (wv as i8 as i32));
        }
    }
}
