//! x86_64 AVX2 int8 kernels for the host run-time (`edgeflow serve`, `edgeflow run`):
//! the inner kernels of CONV_2D (1x1 convolutions included: a patch against a block of
//! filter rows), FULLY_CONNECTED and the 3x3 DEPTHWISE_CONV_2D, selected at run time
//! (`is_x86_feature_detected!("avx2")`, cached by `std`); and the kernels of the
//! packed-weight host path (`kernels::packed`): [`gemm_tile`] (AVX-512 VNNI, AVX-VNNI or
//! AVX2 layouts, eight or sixteen output channels per vector), [`dw_block`] (3x3
//! depthwise, 32 channels per block) and [`requant_pre`] (the epilogue on constants made
//! at packing time).
//!
//! Arithmetic: int8 values are sign-extended to 16 bits (`VPMOVSXBW`) and multiplied in
//! pairs into 32-bit lanes (`VPMADDWD`): every product of two int8 values, or of an
//! int8 weight and an `i16` input-plus-offset in `[-255, 255]`, and every sum of two of
//! them, is exact in 32 bits, and the lane sums wrap exactly as the portable kernels'
//! `wrapping_add` does (addition modulo 2^32 is associative and commutative), so every
//! result equals the portable twin's bit for bit (tested below and on whole ops in
//! `conv.rs`, `depthwise.rs` and `fully_connected.rs`).
//!
//! Each public function checks the CPU and the slice lengths it relies on, and falls back
//! to its portable twin in [`crate::kernels::generic::dot`] otherwise; the `unsafe`
//! blocks are only the calls into `#[target_feature(enable = "avx2")]` functions (after
//! the check) and the unaligned loads and stores (on fixed-size arrays).
#![allow(unsafe_code)]

extern crate std;

use core::arch::x86_64::{
    __m128i, __m256i, _mm256_add_epi32, _mm256_castsi256_si128, _mm256_cvtepi8_epi16,
    _mm256_extracti128_si256, _mm256_hadd_epi32, _mm256_madd_epi16, _mm256_permute2x128_si256,
    _mm256_setzero_si256, _mm256_storeu_si256, _mm256_unpackhi_epi16, _mm256_unpacklo_epi16,
    _mm_add_epi32, _mm_cvtepi8_epi16, _mm_cvtsi128_si32, _mm_extract_epi32, _mm_hadd_epi32,
    _mm_loadl_epi64, _mm_loadu_si128, _mm_madd_epi16, _mm_setzero_si128, _mm_unpackhi_epi16,
    _mm_unpacklo_epi16,
};

use core::arch::x86_64::{
    _mm256_add_epi64, _mm256_and_si256, _mm256_blend_epi32, _mm256_dpbusd_avx_epi32,
    _mm256_max_epi32, _mm256_min_epi32, _mm256_mul_epi32, _mm256_packs_epi16, _mm256_packs_epi32,
    _mm256_set1_epi32, _mm256_set1_epi64x, _mm256_set1_epi8, _mm256_sllv_epi64, _mm256_srai_epi32,
    _mm256_srav_epi32, _mm256_srli_epi64, _mm256_sub_epi32, _mm256_sub_epi64, _mm256_xor_si256,
    _mm_dpbusd_avx_epi32, _mm_set1_epi8, _mm_sub_epi32, _mm_xor_si128,
};

use core::arch::x86_64::{
    _mm256_loadu2_m128i, _mm256_loadu_si256, _mm256_set_epi64x, _mm512_castsi512_si256,
    _mm512_cmplt_epi32_mask, _mm512_inserti64x4, _mm512_mask_sub_epi32, _mm512_maskz_loadu_epi8,
    _mm512_maskz_permutexvar_epi8, _mm512_mullo_epi32, _mm512_set1_epi8, _mm512_sra_epi32,
    _mm512_xor_si512, _mm_cvtsi32_si128,
};

use core::arch::x86_64::{
    __m512i, _mm512_add_epi32, _mm512_add_epi64, _mm512_and_si512, _mm512_cvtsepi32_epi8,
    _mm512_dpbusd_epi32, _mm512_loadu_si512, _mm512_mask_blend_epi32, _mm512_max_epi32,
    _mm512_min_epi32, _mm512_mul_epi32, _mm512_set1_epi32, _mm512_set1_epi64, _mm512_setzero_si512,
    _mm512_srai_epi32, _mm512_srav_epi32, _mm512_srli_epi64, _mm512_storeu_si512, _mm512_sub_epi64,
    _mm_storel_epi64, _mm_storeu_si128,
};

use core::arch::x86_64::{
    _mm256_cvtepi8_epi32, _mm512_cvtepi8_epi32, _mm512_sllv_epi32, _mm512_sllv_epi64,
};

use core::arch::x86_64::{
    _mm256_slli_epi16, _mm256_srai_epi16, _mm256_unpackhi_epi8, _mm256_unpacklo_epi8,
};

use crate::kernels::generic::dot;
use crate::kernels::generic::requant::{requant_soa_portable, Soa};

/// Whether this CPU runs AVX2 (detected once by `std`, then an atomic load).
#[inline]
pub(crate) fn available() -> bool {
    std::is_x86_feature_detected!("avx2")
}

/// Loads 16 bytes (unaligned).
#[inline(always)]
fn load16(b: &[u8; 16]) -> __m128i {
    // SAFETY: `b` is 16 readable bytes; `_mm_loadu_si128` has no alignment requirement
    // and SSE2 is part of the x86_64 baseline.
    unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
}

/// Loads 8 bytes (unaligned) into the low half.
#[inline(always)]
fn load8(b: &[u8; 8]) -> __m128i {
    // SAFETY: `b` is 8 readable bytes; `_mm_loadl_epi64` reads exactly 8 bytes, with no
    // alignment requirement (SSE2, x86_64 baseline).
    unsafe { _mm_loadl_epi64(b.as_ptr().cast()) }
}

/// Loads 32 bytes (unaligned).
#[inline]
#[target_feature(enable = "avx2")]
fn load32(b: &[u8; 32]) -> __m256i {
    // SAFETY: `b` is 32 readable bytes; `_mm256_loadu_si256` has no alignment
    // requirement, and this function only runs with AVX2 enabled.
    unsafe { core::arch::x86_64::_mm256_loadu_si256(b.as_ptr().cast()) }
}

/// Stores eight lanes into `d`.
#[inline]
#[target_feature(enable = "avx2")]
fn store8(d: &mut [i32; 8], v: __m256i) {
    // SAFETY: `d` is 32 writable bytes; `_mm256_storeu_si256` has no alignment
    // requirement, and this function only runs with AVX2 enabled.
    unsafe { _mm256_storeu_si256(d.as_mut_ptr().cast(), v) }
}

/// The four lanes of `v`.
#[inline]
#[target_feature(enable = "avx2")]
fn lanes4(v: __m128i) -> [i32; 4] {
    [
        _mm_extract_epi32::<0>(v),
        _mm_extract_epi32::<1>(v),
        _mm_extract_epi32::<2>(v),
        _mm_extract_epi32::<3>(v),
    ]
}

/// `[sum(a), sum(b), sum(c), sum(d)]` of four vectors of eight lanes (wrapping).
#[inline]
#[target_feature(enable = "avx2")]
fn hsum4(a: __m256i, b: __m256i, c: __m256i, d: __m256i) -> __m128i {
    let ab = _mm256_hadd_epi32(a, b);
    let cd = _mm256_hadd_epi32(c, d);
    let s = _mm256_hadd_epi32(ab, cd);
    _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256::<1>(s))
}

/// The sum of the eight lanes of `a` (wrapping).
#[inline]
#[target_feature(enable = "avx2")]
fn hsum1(a: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256::<1>(a));
    let s = _mm_hadd_epi32(s, s);
    let s = _mm_hadd_epi32(s, s);
    _mm_cvtsi128_si32(s)
}

// ---------------------------------------------------------------------------------------
// CONV_2D: one int8 patch against a block of int8 filter rows
// ---------------------------------------------------------------------------------------

/// [`dot::rows`] on AVX2: four rows per pass over the patch (each 16-byte piece of the
/// patch widened once for four rows), then single rows; an 8-byte step and a scalar
/// tail for `k % 16`. Falls back to [`dot::rows`] without AVX2 or if `x` is shorter
/// than `k`.
///
/// On CPUs with AVX-VNNI (Alder Lake, Sapphire Rapids and later; `VPDPBUSD` on 256-bit
/// vectors) it takes [`dot_rows_vnni`] instead.
pub(crate) fn dot_rows(x: &[u8], w: &[u8], k: usize, acc: &mut [i32]) {
    match x.get(..k) {
        // SAFETY: AVX2 and AVX-VNNI are available (checked).
        Some(x) if k > 0 && vnni_available() => unsafe { dot_rows_vnni(x, w, k, acc) },
        // SAFETY: AVX2 is available (checked).
        Some(x) if k > 0 && available() => unsafe { dot_rows_avx2(x, w, k, acc) },
        _ => dot::rows(x, w, k, acc),
    }
}

/// Whether this CPU runs AVX2 and AVX-VNNI (detected once by `std`).
#[inline]
pub(crate) fn vnni_available() -> bool {
    available() && std::is_x86_feature_detected!("avxvnni")
}

/// [`dot::rows`] on AVX-VNNI: `VPDPBUSD` multiplies unsigned by signed bytes and adds
/// each group of four exact products to a 32-bit lane (wrapping, as `wrapping_add`), so
/// the patch is made unsigned (`x + 128`, an XOR with `0x80`) and `128 * sum(w)`, itself
/// a `VPDPBUSD` of the constant 128 with the row, subtracted: `sum((x + 128) * w) -
/// 128 * sum(w) = sum(x * w)` modulo 2^32. 32 bytes per step, four rows per pass; the
/// `k % 32` last values on the AVX2 kernel.
#[target_feature(enable = "avx2,avxvnni")]
fn dot_rows_vnni(x: &[u8], w: &[u8], k: usize, acc: &mut [i32]) {
    let mut rows = w.chunks_exact(k);
    let mut quads = acc.chunks_exact_mut(4);
    for a in &mut quads {
        let (Some(r0), Some(r1), Some(r2), Some(r3)) =
            (rows.next(), rows.next(), rows.next(), rows.next())
        else {
            return;
        };
        let s = dot4_vnni(x, [r0, r1, r2, r3]);
        a.copy_from_slice(&s);
    }
    for (a, r) in quads.into_remainder().iter_mut().zip(rows) {
        *a = dot1_vnni(x, r);
    }
}

/// `u * w` summed by four into `s`, and `128 * w` into `c` (see [`dot_rows_vnni`]).
#[inline]
#[target_feature(enable = "avx2,avxvnni")]
fn vnni_step(s: &mut __m256i, c: &mut __m256i, u: __m256i, r: &[u8; 32]) {
    let wv = load32(r);
    *s = _mm256_dpbusd_avx_epi32(*s, u, wv);
    *c = _mm256_dpbusd_avx_epi32(*c, _mm256_set1_epi8(-128), wv);
}

/// Four dot products of `x` with rows of its length, on AVX-VNNI.
#[inline]
#[target_feature(enable = "avx2,avxvnni")]
fn dot4_vnni(x: &[u8], r: [&[u8]; 4]) -> [i32; 4] {
    let (xh, xt) = x.as_chunks::<32>();
    let (h0, t0) = r[0].as_chunks::<32>();
    let (h1, t1) = r[1].as_chunks::<32>();
    let (h2, t2) = r[2].as_chunks::<32>();
    let (h3, t3) = r[3].as_chunks::<32>();
    let flip = _mm256_set1_epi8(-128);
    let z = _mm256_setzero_si256();
    let (mut s0, mut s1, mut s2, mut s3) = (z, z, z, z);
    let (mut c0, mut c1, mut c2, mut c3) = (z, z, z, z);
    for ((((xc, w0), w1), w2), w3) in xh.iter().zip(h0).zip(h1).zip(h2).zip(h3) {
        let u = _mm256_xor_si256(load32(xc), flip);
        vnni_step(&mut s0, &mut c0, u, w0);
        vnni_step(&mut s1, &mut c1, u, w1);
        vnni_step(&mut s2, &mut c2, u, w2);
        vnni_step(&mut s3, &mut c3, u, w3);
    }
    let s = lanes4(hsum4(
        _mm256_sub_epi32(s0, c0),
        _mm256_sub_epi32(s1, c1),
        _mm256_sub_epi32(s2, c2),
        _mm256_sub_epi32(s3, c3),
    ));
    let mut s = s;
    let mut tails = [t0, t1, t2, t3];
    let mut xt = xt;
    // A 16-byte step on 128-bit vectors (k = 144, 288, 576: 16 after the 32-byte steps).
    if let Some((x16, xr)) = xt.split_first_chunk::<16>() {
        let u = _mm_xor_si128(load16(x16), _mm_set1_epi8(-128));
        let mut v = [_mm_setzero_si128(); 4];
        for (v, t) in v.iter_mut().zip(tails.iter_mut()) {
            if let Some((w16, wr)) = t.split_first_chunk::<16>() {
                let wv = load16(w16);
                let z = _mm_setzero_si128();
                *v = _mm_sub_epi32(
                    _mm_dpbusd_avx_epi32(z, u, wv),
                    _mm_dpbusd_avx_epi32(z, _mm_set1_epi8(-128), wv),
                );
                *t = wr;
            }
        }
        let h = _mm_hadd_epi32(_mm_hadd_epi32(v[0], v[1]), _mm_hadd_epi32(v[2], v[3]));
        for (s, h) in s.iter_mut().zip(lanes4(h)) {
            *s = s.wrapping_add(h);
        }
        xt = xr;
    }
    if xt.is_empty() {
        return s;
    }
    let t = dot4(xt, tails);
    [
        s[0].wrapping_add(t[0]),
        s[1].wrapping_add(t[1]),
        s[2].wrapping_add(t[2]),
        s[3].wrapping_add(t[3]),
    ]
}

/// One dot product of `x` with a row of its length, on AVX-VNNI.
#[inline]
#[target_feature(enable = "avx2,avxvnni")]
fn dot1_vnni(x: &[u8], r: &[u8]) -> i32 {
    let (xh, xt) = x.as_chunks::<32>();
    let (rh, rt) = r.as_chunks::<32>();
    let flip = _mm256_set1_epi8(-128);
    let (mut s, mut c) = (_mm256_setzero_si256(), _mm256_setzero_si256());
    for (xc, rc) in xh.iter().zip(rh) {
        vnni_step(&mut s, &mut c, _mm256_xor_si256(load32(xc), flip), rc);
    }
    hsum1(_mm256_sub_epi32(s, c)).wrapping_add(dot1(xt, rt))
}

#[target_feature(enable = "avx2")]
fn dot_rows_avx2(x: &[u8], w: &[u8], k: usize, acc: &mut [i32]) {
    let mut rows = w.chunks_exact(k);
    let mut quads = acc.chunks_exact_mut(4);
    for a in &mut quads {
        let (Some(r0), Some(r1), Some(r2), Some(r3)) =
            (rows.next(), rows.next(), rows.next(), rows.next())
        else {
            return;
        };
        let s = dot4(x, [r0, r1, r2, r3]);
        a.copy_from_slice(&s);
    }
    for (a, r) in quads.into_remainder().iter_mut().zip(rows) {
        *a = dot1(x, r);
    }
}

/// The products of 16 int8 values of `x` and of one row, as eight 32-bit pair sums.
#[inline]
#[target_feature(enable = "avx2")]
fn madd16(xv: __m256i, r: &[u8; 16]) -> __m256i {
    _mm256_madd_epi16(xv, _mm256_cvtepi8_epi16(load16(r)))
}

/// Four dot products of `x` with rows of its length.
#[inline]
#[target_feature(enable = "avx2")]
fn dot4(x: &[u8], r: [&[u8]; 4]) -> [i32; 4] {
    let (xh, xt) = x.as_chunks::<16>();
    let (h0, t0) = r[0].as_chunks::<16>();
    let (h1, t1) = r[1].as_chunks::<16>();
    let (h2, t2) = r[2].as_chunks::<16>();
    let (h3, t3) = r[3].as_chunks::<16>();
    let z = _mm256_setzero_si256();
    let (mut s0, mut s1, mut s2, mut s3) = (z, z, z, z);
    for ((((xc, c0), c1), c2), c3) in xh.iter().zip(h0).zip(h1).zip(h2).zip(h3) {
        let xv = _mm256_cvtepi8_epi16(load16(xc));
        s0 = _mm256_add_epi32(s0, madd16(xv, c0));
        s1 = _mm256_add_epi32(s1, madd16(xv, c1));
        s2 = _mm256_add_epi32(s2, madd16(xv, c2));
        s3 = _mm256_add_epi32(s3, madd16(xv, c3));
    }
    let mut s = lanes4(hsum4(s0, s1, s2, s3));
    let tails = [t0, t1, t2, t3];
    // The `k % 16` last values: an 8-byte step on 128-bit vectors, then scalar.
    if let Some((x8, xr)) = xt.split_first_chunk::<8>() {
        let xv = _mm_cvtepi8_epi16(load8(x8));
        let mut v = [_mm_setzero_si128(); 4];
        for (v, t) in v.iter_mut().zip(tails) {
            if let Some((w8, _)) = t.split_first_chunk::<8>() {
                *v = _mm_madd_epi16(xv, _mm_cvtepi8_epi16(load8(w8)));
            }
        }
        let h = _mm_hadd_epi32(_mm_hadd_epi32(v[0], v[1]), _mm_hadd_epi32(v[2], v[3]));
        for ((s, h), t) in s.iter_mut().zip(lanes4(h)).zip(tails) {
            *s = s
                .wrapping_add(h)
                .wrapping_add(tail(xr, t.get(8..).unwrap_or(&[])));
        }
    } else {
        for (s, t) in s.iter_mut().zip(tails) {
            *s = s.wrapping_add(tail(xt, t));
        }
    }
    s
}

/// [`dot::dot1`] of the few values after the vector steps (no call when there are none).
#[inline(always)]
fn tail(x: &[u8], w: &[u8]) -> i32 {
    if x.is_empty() {
        0
    } else {
        dot::dot1(x, w)
    }
}

/// [`dot::dot1_i16`] of the few values after the vector steps (none: 0).
#[inline(always)]
fn tail_i16(x: &[u8], w: &[u8]) -> i32 {
    if x.is_empty() {
        0
    } else {
        dot::dot1_i16(x, w)
    }
}

/// One dot product of `x` with a row of its length.
#[inline]
#[target_feature(enable = "avx2")]
fn dot1(x: &[u8], r: &[u8]) -> i32 {
    let (xh, xt) = x.as_chunks::<16>();
    let (rh, rt) = r.as_chunks::<16>();
    let mut s = _mm256_setzero_si256();
    for (xc, rc) in xh.iter().zip(rh) {
        s = _mm256_add_epi32(s, madd16(_mm256_cvtepi8_epi16(load16(xc)), rc));
    }
    hsum1(s).wrapping_add(tail(xt, rt))
}

// ---------------------------------------------------------------------------------------
// FULLY_CONNECTED: an i16 segment (input plus offset) against int8 rows
// ---------------------------------------------------------------------------------------

/// [`dot::rows_i16_acc`] on AVX2: four rows per pass over the segment (16 values per
/// step: one 32-byte load of `x`, one widening and one `VPMADDWD` per row), then single
/// rows; a scalar tail for `n % 16`. Falls back to the portable twin without AVX2 or if
/// a slice is shorter than the rows need.
pub(crate) fn fc_rows(x: &[u8], w: &[u8], stride: usize, s0: usize, n: usize, acc: &mut [i32]) {
    let need = acc
        .len()
        .checked_sub(1)
        .and_then(|r| r.checked_mul(stride))
        .and_then(|v| v.checked_add(s0))
        .and_then(|v| v.checked_add(n));
    let fits = matches!(need, Some(v) if v <= w.len()) && n <= stride;
    match x.get(..n.saturating_mul(2)) {
        // SAFETY: AVX2 is available (checked).
        Some(x) if fits && n > 0 && available() => unsafe {
            fc_rows_avx2(x, w, stride, s0, n, acc)
        },
        _ => dot::rows_i16_acc(x, w, stride, s0, n, acc),
    }
}

#[target_feature(enable = "avx2")]
fn fc_rows_avx2(x: &[u8], w: &[u8], stride: usize, s0: usize, n: usize, acc: &mut [i32]) {
    let row = |j: usize| {
        w.get(j * stride + s0..)
            .and_then(|r| r.get(..n))
            .unwrap_or(&[])
    };
    let (xh, xt) = x.as_chunks::<32>();
    let mut quads = acc.chunks_exact_mut(4);
    let mut j = 0;
    for a in &mut quads {
        let r = [row(j), row(j + 1), row(j + 2), row(j + 3)];
        let (h0, t0) = r[0].as_chunks::<16>();
        let (h1, t1) = r[1].as_chunks::<16>();
        let (h2, t2) = r[2].as_chunks::<16>();
        let (h3, t3) = r[3].as_chunks::<16>();
        let z = _mm256_setzero_si256();
        let (mut v0, mut v1, mut v2, mut v3) = (z, z, z, z);
        for ((((xc, c0), c1), c2), c3) in xh.iter().zip(h0).zip(h1).zip(h2).zip(h3) {
            let xv = load32(xc);
            v0 = _mm256_add_epi32(v0, madd16(xv, c0));
            v1 = _mm256_add_epi32(v1, madd16(xv, c1));
            v2 = _mm256_add_epi32(v2, madd16(xv, c2));
            v3 = _mm256_add_epi32(v3, madd16(xv, c3));
        }
        let s = lanes4(hsum4(v0, v1, v2, v3));
        for ((a, s), t) in a.iter_mut().zip(s).zip([t0, t1, t2, t3]) {
            *a = a.wrapping_add(s).wrapping_add(tail_i16(xt, t));
        }
        j += 4;
    }
    for a in quads.into_remainder() {
        let (h, t) = row(j).as_chunks::<16>();
        let mut v = _mm256_setzero_si256();
        for (xc, c) in xh.iter().zip(h) {
            v = _mm256_add_epi32(v, madd16(load32(xc), c));
        }
        *a = a.wrapping_add(hsum1(v)).wrapping_add(tail_i16(xt, t));
        j += 1;
    }
}

/// FULLY_CONNECTED on AVX-VNNI, straight from the int8 segment `x`:
/// `acc[j] += dot(x + off, row_j)` with `row_j = w[j * stride + s0..][..x.len()]`. With
/// `u = x XOR 0x80 = x + 128` (unsigned), `dot(x + off, w) = sum(u * w) + (off - 128) *
/// sum(w)`, both sums on `VPDPBUSD` (the second against a vector of ones), 32 values per
/// step, four rows per pass; the `n % 32` last values scalar; all wrapping. Returns
/// `false` without AVX-VNNI or if `w` is shorter than the rows (the caller then widens
/// the segment and takes [`fc_rows`]).
pub(crate) fn fc_rows_i8(
    x: &[u8],
    off: i32,
    w: &[u8],
    stride: usize,
    s0: usize,
    acc: &mut [i32],
) -> bool {
    let n = x.len();
    let need = acc
        .len()
        .checked_sub(1)
        .and_then(|r| r.checked_mul(stride))
        .and_then(|v| v.checked_add(s0))
        .and_then(|v| v.checked_add(n));
    let fits = matches!(need, Some(v) if v <= w.len()) && n <= stride;
    if !fits || n == 0 || !vnni_available() {
        return false;
    }
    // SAFETY: AVX2 and AVX-VNNI are available (checked).
    unsafe { fc_rows_vnni(x, off, w, stride, s0, acc) };
    true
}

#[target_feature(enable = "avx2,avxvnni")]
fn fc_rows_vnni(x: &[u8], off: i32, w: &[u8], stride: usize, s0: usize, acc: &mut [i32]) {
    let n = x.len();
    let row = |j: usize| {
        w.get(j * stride + s0..)
            .and_then(|r| r.get(..n))
            .unwrap_or(&[])
    };
    let (xh, xt) = x.as_chunks::<32>();
    let flip = _mm256_set1_epi8(-128);
    let ones = _mm256_set1_epi8(1);
    let k = off.wrapping_sub(128);
    // The scalar tail: sum((x + off) * w).
    let tail = |t: &[u8]| {
        xt.iter().zip(t).fold(0i32, |a, (&xv, &wv)| {
            a.wrapping_add(
                (xv as i8 as i32)
                    .wrapping_add(off)
                    .wrapping_mul(wv as i8 as i32),
            )
        })
    };
    let mut quads = acc.chunks_exact_mut(4);
    let mut j = 0;
    for a in &mut quads {
        let r = [row(j), row(j + 1), row(j + 2), row(j + 3)];
        let (h0, t0) = r[0].as_chunks::<32>();
        let (h1, t1) = r[1].as_chunks::<32>();
        let (h2, t2) = r[2].as_chunks::<32>();
        let (h3, t3) = r[3].as_chunks::<32>();
        let z = _mm256_setzero_si256();
        let (mut s, mut c) = ([z; 4], [z; 4]);
        for ((((xc, w0), w1), w2), w3) in xh.iter().zip(h0).zip(h1).zip(h2).zip(h3) {
            let u = _mm256_xor_si256(load32(xc), flip);
            for ((s, c), wr) in s.iter_mut().zip(c.iter_mut()).zip([w0, w1, w2, w3]) {
                let wv = load32(wr);
                *s = _mm256_dpbusd_avx_epi32(*s, u, wv);
                *c = _mm256_dpbusd_avx_epi32(*c, ones, wv);
            }
        }
        let su = lanes4(hsum4(s[0], s[1], s[2], s[3]));
        let sw = lanes4(hsum4(c[0], c[1], c[2], c[3]));
        for (((a, su), sw), t) in a.iter_mut().zip(su).zip(sw).zip([t0, t1, t2, t3]) {
            *a = a
                .wrapping_add(su)
                .wrapping_add(k.wrapping_mul(sw))
                .wrapping_add(tail(t));
        }
        j += 4;
    }
    for a in quads.into_remainder() {
        let (h, t) = row(j).as_chunks::<32>();
        let (mut s, mut c) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        for (xc, wr) in xh.iter().zip(h) {
            let wv = load32(wr);
            s = _mm256_dpbusd_avx_epi32(s, _mm256_xor_si256(load32(xc), flip), wv);
            c = _mm256_dpbusd_avx_epi32(c, ones, wv);
        }
        *a = a
            .wrapping_add(hsum1(s))
            .wrapping_add(k.wrapping_mul(hsum1(c)))
            .wrapping_add(tail(t));
        j += 1;
    }
}

// ---------------------------------------------------------------------------------------
// DEPTHWISE_CONV_2D 3x3: 16 channels per step
// ---------------------------------------------------------------------------------------

/// [`dot::dw3x3`] on AVX2: 16 channels per step, taps taken in pairs so that one
/// `VPMADDWD` sums two taps' products per channel (the inputs and weights of two taps
/// interleaved with `VPUNPCKLWD`/`VPUNPCKHWD`, the results put back in channel order with
/// `VPERM2I128`); the `n % 16` last channels on the portable twin. Falls back to the
/// portable twin without AVX2 or if a tap or `w` is shorter than the channels need.
pub(crate) fn dw3x3(taps: &[&[u8]; 9], w: &[u8], c: usize, c0: usize, acc: &mut [i32]) {
    let n = acc.len();
    let end = c0.checked_add(n);
    let fits = match end {
        Some(e) => {
            taps.iter().all(|t| t.len() >= e)
                && c.checked_mul(8)
                    .and_then(|v| v.checked_add(e))
                    .is_some_and(|v| v <= w.len())
                && e <= c
        }
        None => false,
    };
    if fits && available() {
        // SAFETY: AVX2 is available (checked).
        unsafe { dw3x3_avx2(taps, w, c, c0, acc) }
    } else {
        dot::dw3x3(taps, w, c, c0, acc);
    }
}

#[target_feature(enable = "avx2")]
fn dw3x3_avx2(taps: &[&[u8]; 9], w: &[u8], c: usize, c0: usize, acc: &mut [i32]) {
    let n16 = acc.len() / 16;
    let tap =
        |t: usize, ch: usize| -> Option<&[u8; 16]> { taps.get(t)?.get(ch..)?.first_chunk::<16>() };
    let wt =
        |t: usize, ch: usize| -> Option<&[u8; 16]> { w.get(t * c + ch..)?.first_chunk::<16>() };
    let widen = |b: Option<&[u8; 16]>| match b {
        Some(b) => _mm256_cvtepi8_epi16(load16(b)),
        None => _mm256_setzero_si256(),
    };
    let (blocks, _) = acc.as_chunks_mut::<16>();
    for (i, a) in blocks.iter_mut().enumerate().take(n16) {
        let ch = c0 + 16 * i;
        let z = _mm256_setzero_si256();
        let (mut lo, mut hi) = (z, z);
        for t in [0, 2, 4, 6, 8] {
            let (xa, wa) = (widen(tap(t, ch)), widen(wt(t, ch)));
            let (xb, wb) = if t < 8 {
                (widen(tap(t + 1, ch)), widen(wt(t + 1, ch)))
            } else {
                (z, z)
            };
            // Per 128-bit lane: channels 0..3 (and 8..11) in `lo`, 4..7 (12..15) in `hi`.
            lo = _mm256_add_epi32(
                lo,
                _mm256_madd_epi16(_mm256_unpacklo_epi16(xa, xb), _mm256_unpacklo_epi16(wa, wb)),
            );
            hi = _mm256_add_epi32(
                hi,
                _mm256_madd_epi16(_mm256_unpackhi_epi16(xa, xb), _mm256_unpackhi_epi16(wa, wb)),
            );
        }
        let (a0, a1) = a.split_at_mut(8);
        if let (Ok(a0), Ok(a1)) = (<&mut [i32; 8]>::try_from(a0), <&mut [i32; 8]>::try_from(a1)) {
            store8(a0, _mm256_permute2x128_si256::<0x20>(lo, hi));
            store8(a1, _mm256_permute2x128_si256::<0x31>(lo, hi));
        }
    }
    let mut done = 16 * n16;
    // Eight more channels on 128-bit vectors (VWW's 8-channel layers, `c % 16 >= 8`).
    if let Some(a8) = acc.get_mut(done..done + 8) {
        let ch = c0 + done;
        let tap8 = |t: usize| taps.get(t)?.get(ch..)?.first_chunk::<8>();
        let wt8 = |t: usize| w.get(t * c + ch..)?.first_chunk::<8>();
        let widen8 = |b: Option<&[u8; 8]>| match b {
            Some(b) => _mm_cvtepi8_epi16(load8(b)),
            None => _mm_setzero_si128(),
        };
        let z = _mm_setzero_si128();
        let (mut lo, mut hi) = (z, z);
        for t in [0, 2, 4, 6, 8] {
            let (xa, wa) = (widen8(tap8(t)), widen8(wt8(t)));
            let (xb, wb) = if t < 8 {
                (widen8(tap8(t + 1)), widen8(wt8(t + 1)))
            } else {
                (z, z)
            };
            lo = _mm_add_epi32(
                lo,
                _mm_madd_epi16(_mm_unpacklo_epi16(xa, xb), _mm_unpacklo_epi16(wa, wb)),
            );
            hi = _mm_add_epi32(
                hi,
                _mm_madd_epi16(_mm_unpackhi_epi16(xa, xb), _mm_unpackhi_epi16(wa, wb)),
            );
        }
        let (l, h) = (lanes4(lo), lanes4(hi));
        for (d, v) in a8.iter_mut().zip(l.into_iter().chain(h)) {
            *d = v;
        }
        done += 8;
    }
    if let Some(rest) = acc.get_mut(done..) {
        if !rest.is_empty() {
            dot::dw3x3(taps, w, c, c0 + done, rest);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The int8 epilogue (single-shift requantization), eight channels per step
// ---------------------------------------------------------------------------------------

/// [`requant_soa_portable`] on AVX2, eight channels per step: the 64-bit products of the
/// even and odd lanes (`VPMULDQ`), the rounding constant `2^30 + 2^(31 + r1)` built per
/// lane (`VPSLLVQ`), the high words put back in lane order (`VPBLENDD`), the shift
/// (`VPSRAVD`), offset and clamp, then packed to bytes; the `n % 8` last channels on the
/// portable twin. Falls back to it without AVX2.
pub(crate) fn requant_soa(acc: &[i32], p: &Soa<'_>, clamp: (i32, i32, i32), out: &mut [u8]) {
    if available() {
        // SAFETY: AVX2 is available (checked).
        unsafe { requant_soa_avx2(acc, p, clamp, out) }
    } else {
        requant_soa_portable(acc, p, clamp, out);
    }
}

#[target_feature(enable = "avx2")]
fn requant_soa_avx2(acc: &[i32], p: &Soa<'_>, (off, lo, hi): (i32, i32, i32), out: &mut [u8]) {
    let n = acc
        .len()
        .min(out.len())
        .min(p.fold.len() / 4)
        .min(p.mult.len() / 4)
        .min(p.r1.len() / 4);
    let n8 = n / 8;
    let rq = Requant8::new((off, lo, hi));
    let (ab, _) = acc.as_chunks::<8>();
    let (fb, _) = p.fold.as_chunks::<32>();
    let (mb, _) = p.mult.as_chunks::<32>();
    let (rb, _) = p.r1.as_chunks::<32>();
    let (ob, _) = out.as_chunks_mut::<8>();
    for ((((a, f), m), r), o) in ab.iter().zip(fb).zip(mb).zip(rb).zip(ob).take(n8) {
        let x = _mm256_add_epi32(load_i32x8(a), load32(f));
        let v = rq.apply(x, load32(m), load32(r));
        // Lanes 0..3 and 4..7 to bytes (saturating packs, exact after the clamp).
        let w = _mm256_packs_epi32(v, v);
        let b = _mm256_packs_epi16(w, w);
        let b0 = _mm_cvtsi128_si32(_mm256_castsi256_si128(b)).to_le_bytes();
        let b1 = _mm_cvtsi128_si32(_mm256_extracti128_si256::<1>(b)).to_le_bytes();
        *o = [b0[0], b0[1], b0[2], b0[3], b1[0], b1[1], b1[2], b1[3]];
    }
    let done = 8 * n8;
    if let (Some(a), Some(o)) = (acc.get(done..n), out.get_mut(done..n)) {
        requant_soa_portable(a, &p.from(done), (off, lo, hi), o);
    }
}

/// The constants of the vector single-shift requantization (see [`requant_soa`]).
#[derive(Clone, Copy)]
struct Requant8 {
    low32: __m256i,
    min31: __m256i,
    half: __m256i,
    one: __m256i,
    c31: __m256i,
    off: __m256i,
    lo: __m256i,
    hi: __m256i,
}

impl Requant8 {
    /// [`Requant8::apply`] on the precomputed constants of eight channels ([`pre8`]);
    /// the sums `x` already hold the fold.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn apply_pre(&self, x: __m256i, p: &[[u8; 32]; PRE8]) -> __m256i {
        let (m, r1, mo) = (load32(&p[1]), load32(&p[2]), load32(&p[3]));
        let (ne, no) = (load32(&p[4]), load32(&p[5]));
        let neg = _mm256_srai_epi32::<31>(x);
        let pe = _mm256_mul_epi32(x, m);
        let po = _mm256_mul_epi32(_mm256_srli_epi64::<32>(x), mo);
        let ce = _mm256_and_si256(neg, self.min31);
        let co = _mm256_and_si256(_mm256_srli_epi64::<32>(neg), self.min31);
        let qe = _mm256_sub_epi64(_mm256_add_epi64(pe, ne), ce);
        let qo = _mm256_sub_epi64(_mm256_add_epi64(po, no), co);
        let h = _mm256_blend_epi32::<0b1010_1010>(_mm256_srli_epi64::<32>(qe), qo);
        let v = _mm256_add_epi32(_mm256_srav_epi32(h, r1), self.off);
        _mm256_min_epi32(_mm256_max_epi32(v, self.lo), self.hi)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn new((off, lo, hi): (i32, i32, i32)) -> Requant8 {
        Requant8 {
            low32: _mm256_set1_epi64x(0xFFFF_FFFF),
            min31: _mm256_set1_epi64x(0x8000_0000),
            half: _mm256_set1_epi64x(1 << 30),
            one: _mm256_set1_epi64x(1),
            c31: _mm256_set1_epi64x(31),
            off: _mm256_set1_epi32(off),
            lo: _mm256_set1_epi32(lo),
            hi: _mm256_set1_epi32(hi.max(lo)),
        }
    }

    /// `clamp(requant_single(x, m, r1) + off, lo, hi)` per `i32` lane (the sums `x`
    /// already hold the per-channel fold).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn apply(&self, x: __m256i, m: __m256i, r1: __m256i) -> __m256i {
        let neg = _mm256_srai_epi32::<31>(x);
        let pe = _mm256_mul_epi32(x, m);
        let po = _mm256_mul_epi32(_mm256_srli_epi64::<32>(x), _mm256_srli_epi64::<32>(m));
        let ce = _mm256_and_si256(neg, self.min31);
        let co = _mm256_and_si256(_mm256_srli_epi64::<32>(neg), self.min31);
        let re = _mm256_add_epi64(_mm256_and_si256(r1, self.low32), self.c31);
        let ro = _mm256_add_epi64(_mm256_srli_epi64::<32>(r1), self.c31);
        let ne = _mm256_add_epi64(self.half, _mm256_sllv_epi64(self.one, re));
        let no = _mm256_add_epi64(self.half, _mm256_sllv_epi64(self.one, ro));
        let qe = _mm256_sub_epi64(_mm256_add_epi64(pe, ne), ce);
        let qo = _mm256_sub_epi64(_mm256_add_epi64(po, no), co);
        let h = _mm256_blend_epi32::<0b1010_1010>(_mm256_srli_epi64::<32>(qe), qo);
        let v = _mm256_add_epi32(_mm256_srav_epi32(h, r1), self.off);
        _mm256_min_epi32(_mm256_max_epi32(v, self.lo), self.hi)
    }
}

/// Pieces (32 bytes) of precomputed epilogue constants per eight channels
/// ([`requant_pre`]): fold, multiplier, `r1`, the multiplier of the odd lanes moved to
/// the low words of 64-bit lanes, and the 64-bit rounding constants
/// (`single_shift_nudge(r1 + 1)`) of the even and of the odd lanes.
pub(crate) const PRE8: usize = 6;

/// The [`PRE8`] pieces of eight channels from their fold, multiplier and `r1` (the
/// right shift minus one, as in [`Soa`]).
pub(crate) fn pre8(fold: [i32; 8], mult: [i32; 8], r1: [u32; 8]) -> [[u8; 32]; PRE8] {
    let mut p = [[0u8; 32]; PRE8];
    for j in 0..8 {
        p[0][4 * j..4 * j + 4].copy_from_slice(&fold[j].to_le_bytes());
        p[1][4 * j..4 * j + 4].copy_from_slice(&mult[j].to_le_bytes());
        p[2][4 * j..4 * j + 4].copy_from_slice(&r1[j].to_le_bytes());
        let nudge = crate::kernels::generic::requant::single_shift_nudge(r1[j].wrapping_add(1));
        let (half, at) = (j % 2, 8 * (j / 2));
        if half == 1 {
            p[3][at..at + 4].copy_from_slice(&mult[j].to_le_bytes());
        }
        p[4 + half][at..at + 8].copy_from_slice(&nudge.to_le_bytes());
    }
    p
}

/// [`requant_soa`] on precomputed constants ([`pre8`]: [`PRE8`] pieces per eight
/// channels): `out[j] = clamp(requant_single(acc[j] + fold[j], m[j], nudge[j], r1[j]) +
/// off, lo, hi)` for the first `8 * n` channels, `n` the number of whole groups of eight
/// that `acc`, `out` and `pre` all hold. Returns that count of channels (0 without AVX2:
/// the caller requantizes what is left).
pub(crate) fn requant_pre(
    acc: &[i32],
    pre: &[[u8; 32]],
    clamp: (i32, i32, i32),
    out: &mut [u8],
) -> usize {
    if !available() {
        return 0;
    }
    // SAFETY: AVX2 is available (checked).
    unsafe { requant_pre_avx2(acc, pre, clamp, out) }
}

#[target_feature(enable = "avx2")]
fn requant_pre_avx2(
    acc: &[i32],
    pre: &[[u8; 32]],
    clamp: (i32, i32, i32),
    out: &mut [u8],
) -> usize {
    let rq = Requant8::new(clamp);
    let (ab, _) = acc.as_chunks::<8>();
    let (pb, _) = pre.as_chunks::<PRE8>();
    let (ob, _) = out.as_chunks_mut::<8>();
    let mut n = 0;
    for ((a, p), o) in ab.iter().zip(pb).zip(ob) {
        let x = _mm256_add_epi32(load_i32x8(a), load32(&p[0]));
        let v = rq.apply_pre(x, p);
        let w = _mm256_packs_epi32(v, v);
        let b = _mm256_packs_epi16(w, w);
        let b0 = _mm_cvtsi128_si32(_mm256_castsi256_si128(b)).to_le_bytes();
        let b1 = _mm_cvtsi128_si32(_mm256_extracti128_si256::<1>(b)).to_le_bytes();
        *o = [b0[0], b0[1], b0[2], b0[3], b1[0], b1[1], b1[2], b1[3]];
        n += 8;
    }
    n
}

// ---------------------------------------------------------------------------------------
// int8 ADD of two tensors of the same shape (host only), 16 elements per step
// ---------------------------------------------------------------------------------------

/// Whether this CPU runs AVX-512 F (with the AVX2 the other kernels need).
#[inline]
pub(crate) fn avx512f_available() -> bool {
    available() && std::is_x86_feature_detected!("avx512f")
}

/// int8 ADD of two tensors of the same shape on AVX-512 F, 16 elements per step, every
/// step computed in the vector registers (no tables): each input's
/// `(x + offset) << left_shift` rescaled as TFLM's
/// `MultiplyByQuantizedMultiplierSmallerThanOneExp` does ([`Rescale16`]; an input's
/// rescale takes one of two exact shortcuts where its parameters allow: `x / 2` for the
/// multiplier 2^30 with shift 0, `RS_HALF`, and a 32-bit split product within
/// `small_params`' range checks, [`Small16`]), the two
/// summed (wrapping), the sum rescaled the same way with the output multiplier, plus
/// the output offset, clamped to `clamp` and narrowed (`VPMOVSDB`, exact after the
/// clamp). Writes `out[..16 * n]` for the `n` whole steps `a`, `b` and `out` all hold,
/// and returns `16 * n`; returns 0 (and writes nothing) without AVX-512 F, or when a
/// multiplier is negative, a shift is not in `-31..=0` or `left_shift` is not in
/// `0..=23` (outside `check_add`'s range). The caller computes what is left on
/// `eval_add`'s element loop, which is the reference this is tested against.
pub(crate) fn add_same_shape(
    p: &edgeflow_format::graph::AddParams,
    a: &[u8],
    b: &[u8],
    out: &mut [u8],
) -> usize {
    let ok =
        |m: &edgeflow_format::graph::Multiplier| m.multiplier >= 0 && (-31..=0).contains(&m.shift);
    let fits = ok(&p.input1) && ok(&p.input2) && ok(&p.output) && (0..=23).contains(&p.left_shift);
    if !fits || !avx512f_available() {
        return 0;
    }
    // SAFETY: AVX-512 F and AVX2 are available (checked).
    unsafe { add_same_shape_avx512(p, a, b, out) }
}

/// One rescale (`MultiplyByQuantizedMultiplierSmallerThanOneExp` with `m >= 0`, shift
/// `-right`, `right` in `0..=31`) on 16 lanes, as `generic::requant::requant_core`
/// writes it: with `P = x * m`, for `right >= 1` the single-shift form
/// `floor((P + single_shift_nudge(right) - [x < 0] * 2^31) / 2^32) >> (right - 1)`
/// (`requant_single`), for `right == 0` `floor((P + 2^30) / 2^31)`, taken as the high
/// word of `2 * (P + 2^30)` (`|P| < 2^62`: no overflow). Constants: the multiplier (in
/// both words of each 64-bit lane), the 64-bit rounding constant, the mask of the
/// `[x < 0]` correction (`2^31` or 0), the left shift of the 64-bit sums (0 or 1) and
/// the final right shift.
#[derive(Clone, Copy)]
struct Rescale16 {
    m: __m512i,
    nudge: __m512i,
    corr: __m512i,
    dbl: __m512i,
    r1: __m512i,
}

impl Rescale16 {
    /// The constants of a multiplier `m >= 0` with a TFLite shift in `-31..=0`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn new(m: &edgeflow_format::graph::Multiplier) -> Rescale16 {
        let right = (m.shift.wrapping_neg() as u32).min(31);
        let (nudge, corr, dbl, r1) = if right == 0 {
            (1i64 << 30, 0, 1, 0)
        } else {
            let nudge = crate::kernels::generic::requant::single_shift_nudge(right);
            (nudge, 0x8000_0000, 0, right - 1)
        };
        Rescale16 {
            m: _mm512_set1_epi32(m.multiplier),
            nudge: _mm512_set1_epi64(nudge),
            corr: _mm512_set1_epi64(corr),
            dbl: _mm512_set1_epi64(dbl),
            r1: _mm512_set1_epi32(r1 as i32),
        }
    }

    /// Which form of [`Rescale16::apply`] computes the rescale of `m` on values shifted
    /// left by `left_shift` ([`RS_SHIFT`], [`RS_ZERO`] or [`RS_HALF`]).
    fn kind(m: &edgeflow_format::graph::Multiplier, left_shift: i32) -> u8 {
        if m.shift != 0 {
            RS_SHIFT
        } else if m.multiplier == 1 << 30 && left_shift >= 1 {
            RS_HALF
        } else {
            RS_ZERO
        }
    }

    /// The rescale of each `i32` lane of `x` (see [`Rescale16`]) in the form `K`
    /// ([`Rescale16::kind`]): [`RS_HALF`] is `x / 2` (an arithmetic shift: `x` is even),
    /// [`RS_SHIFT`] leaves out the doubling that only a zero shift needs.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn apply<const K: u8>(&self, x: __m512i) -> __m512i {
        if K == RS_HALF {
            return _mm512_srai_epi32::<1>(x);
        }
        let neg = _mm512_srai_epi32::<31>(x);
        let pe = _mm512_mul_epi32(x, self.m);
        let po = _mm512_mul_epi32(_mm512_srli_epi64::<32>(x), self.m);
        let ce = _mm512_and_si512(neg, self.corr);
        let co = _mm512_and_si512(_mm512_srli_epi64::<32>(neg), self.corr);
        let qe = _mm512_sub_epi64(_mm512_add_epi64(pe, self.nudge), ce);
        let qo = _mm512_sub_epi64(_mm512_add_epi64(po, self.nudge), co);
        let (qe, qo) = if K == RS_ZERO {
            (
                _mm512_sllv_epi64(qe, self.dbl),
                _mm512_sllv_epi64(qo, self.dbl),
            )
        } else {
            (qe, qo)
        };
        let h = _mm512_mask_blend_epi32(0b1010_1010_1010_1010, _mm512_srli_epi64::<32>(qe), qo);
        _mm512_srav_epi32(h, self.r1)
    }
}

/// [`Rescale16::apply`] for a shift below zero (`right >= 1`): no doubling.
const RS_SHIFT: u8 = 0;
/// [`Rescale16::apply`] for a zero shift: `floor((P + 2^30) / 2^31)` through the doubling.
const RS_ZERO: u8 = 1;
/// [`Rescale16::apply`] for the multiplier `2^30` with a zero shift on an input shifted
/// left by at least 1 (TFLite gives it to the ADD input of the larger scale: a real
/// multiplier of exactly 0.5): the rescale is exactly `x / 2`. With `x = 2y` (even: a
/// left shift of at least 1, wrapping or not), TFLM's
/// `SaturatingRoundingDoublingHighMul(x, 2^30)` forms `ab = y * 2^31`, adds its nudge
/// (`2^30` when `ab >= 0`, `1 - 2^30` otherwise: under `2^31` in magnitude, towards
/// zero) and divides by `2^31` truncating towards zero, which gives `y`; its saturating
/// case needs both operands `i32::MIN`; `RoundingDivideByPOT(y, 0)` is `y`.
const RS_HALF: u8 = 2;
/// An input rescale with a shift below zero on 32-bit lanes ([`Small16`]), where
/// [`small_params`] finds the split exact.
const RS_SMALL: u8 = 3;

/// The 32-bit form of an ADD input's rescale with a TFLite shift below zero, for
/// [`Small16`]: `(mh, ml, n2, delta, k)`, or `None` where it is not exact.
///
/// The rescale of `X = v << L` (`v = x + offset`, `x` int8, `L = left_shift`) is
/// `floor((X * m + N - [X < 0] * 2^31) / 2^S)` with `N = single_shift_nudge(right)`,
/// `S = 32 + right - 1` ([`requant_single`](crate::kernels::generic::requant::requant_single);
/// its 64-bit high word cannot wrap: `|X * m|, N < 2^62`). When `|v| * 2^L < 2^31` the
/// shift does not wrap, `X = v * 2^L` and `[X < 0] = [v < 0]`; for integers `A`, `B` and
/// `S >= L`, `floor((A * 2^L + B) / 2^S) = floor((A + floor(B / 2^L)) / 2^K)` with
/// `K = S - L`, so the rescale is `floor((v * m + n2) / 2^K)`, `n2 = floor(N' / 2^L)`
/// (`N'` the nudge less the correction: `n2` for `v >= 0`, `n2 - delta` for `v < 0`).
/// With `m = mh * 2^K + ml` (`0 <= ml < 2^K`) that is `v * mh + floor((v * ml + n2) /
/// 2^K)`, computed in 32 bits when `K` is in `1..=31` and every term fits (checked here
/// for the largest `|v|` the offset allows).
fn small_params(
    m: &edgeflow_format::graph::Multiplier,
    offset: i32,
    left_shift: i32,
) -> Option<(i32, i32, i32, i32, u32)> {
    let right = u32::try_from(m.shift.checked_neg()?)
        .ok()
        .filter(|r| (1..=31).contains(r))?;
    let l = u32::try_from(left_shift).ok().filter(|&l| l <= 23)?;
    let s = 31 + right;
    let k = s.checked_sub(l).filter(|k| (1..=31).contains(k))?;
    let mult = i64::from(m.multiplier);
    if mult < 0 {
        return None;
    }
    let off = i64::from(offset);
    let v = (off - 128).abs().max((off + 127).abs());
    if v << l >= 1 << 31 {
        return None;
    }
    let nudge = crate::kernels::generic::requant::single_shift_nudge(right);
    let (n2, n2neg) = (nudge >> l, (nudge - (1 << 31)) >> l);
    let (mh, ml) = (mult >> k, mult & ((1 << k) - 1));
    let fits = |x: i64| x.abs() < 1 << 31;
    let ok = fits(v * mh)
        && fits(v * ml)
        && fits(v * ml + n2.abs().max(n2neg.abs()))
        && fits(n2 - n2neg);
    ok.then(|| (mh as i32, ml as i32, n2 as i32, (n2 - n2neg) as i32, k))
}

/// [`small_params`] on 16 lanes: the rescale of `v = x + offset` (not yet shifted).
#[derive(Clone, Copy)]
struct Small16 {
    mh: __m512i,
    ml: __m512i,
    n2: __m512i,
    delta: __m512i,
    k: __m128i,
}

impl Small16 {
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn new((mh, ml, n2, delta, k): (i32, i32, i32, i32, u32)) -> Small16 {
        Small16 {
            mh: _mm512_set1_epi32(mh),
            ml: _mm512_set1_epi32(ml),
            n2: _mm512_set1_epi32(n2),
            delta: _mm512_set1_epi32(delta),
            k: _mm_cvtsi32_si128(k as i32),
        }
    }

    /// `v * mh + ((v * ml + n2 - [v < 0] * delta) >> k)` per lane (see [`small_params`]).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn apply(&self, v: __m512i) -> __m512i {
        let neg = _mm512_cmplt_epi32_mask(v, _mm512_setzero_si512());
        let t = _mm512_add_epi32(_mm512_mullo_epi32(v, self.ml), self.n2);
        let t = _mm512_mask_sub_epi32(t, neg, t, self.delta);
        _mm512_add_epi32(_mm512_mullo_epi32(v, self.mh), _mm512_sra_epi32(t, self.k))
    }
}

#[target_feature(enable = "avx512f,avx2")]
fn add_same_shape_avx512(
    p: &edgeflow_format::graph::AddParams,
    a: &[u8],
    b: &[u8],
    out: &mut [u8],
) -> usize {
    let ls = p.left_shift;
    let s1 = small_params(&p.input1, p.input1_offset, ls);
    let s2 = small_params(&p.input2, p.input2_offset, ls);
    let k1 = if s1.is_some() {
        RS_SMALL
    } else {
        Rescale16::kind(&p.input1, ls)
    };
    let k2 = if s2.is_some() {
        RS_SMALL
    } else {
        Rescale16::kind(&p.input2, ls)
    };
    let sm = (
        Small16::new(s1.unwrap_or_default()),
        Small16::new(s2.unwrap_or_default()),
    );
    let ko = Rescale16::kind(&p.output, 0);
    // One loop per combination of the three forms (the output's is never `RS_HALF`:
    // its left shift is 0).
    macro_rules! by_kinds {
        ($($a:literal $b:literal $o:literal),*) => {
            match (k1, k2, ko) {
                $(($a, $b, $o) => add_loop::<$a, $b, $o>(p, sm, a, b, out),)*
                _ => add_loop::<RS_ZERO, RS_ZERO, RS_ZERO>(p, sm, a, b, out),
            }
        };
    }
    by_kinds!(
        0 0 0, 0 1 0, 0 2 0, 1 0 0, 1 1 0, 1 2 0, 2 0 0, 2 1 0, 2 2 0,
        0 0 1, 0 1 1, 0 2 1, 1 0 1, 1 1 1, 1 2 1, 2 0 1, 2 1 1, 2 2 1,
        3 0 0, 3 1 0, 3 2 0, 3 3 0, 0 3 0, 1 3 0, 2 3 0,
        3 0 1, 3 1 1, 3 2 1, 3 3 1, 0 3 1, 1 3 1, 2 3 1
    )
}

/// The element loop of [`add_same_shape_avx512`] with the rescale forms `K1`, `K2`
/// (inputs: [`Rescale16::kind`]'s, or `RS_SMALL` where `small_params` admits the 32-bit
/// form) and `KO` (output, [`Rescale16::kind`]'s).
#[inline]
#[target_feature(enable = "avx512f,avx2")]
fn add_loop<const K1: u8, const K2: u8, const KO: u8>(
    p: &edgeflow_format::graph::AddParams,
    (s1, s2): (Small16, Small16),
    a: &[u8],
    b: &[u8],
    out: &mut [u8],
) -> usize {
    let (r1, r2, ro) = (
        Rescale16::new(&p.input1),
        Rescale16::new(&p.input2),
        Rescale16::new(&p.output),
    );
    let (off1, off2) = (
        _mm512_set1_epi32(p.input1_offset),
        _mm512_set1_epi32(p.input2_offset),
    );
    let ls = _mm512_set1_epi32(p.left_shift);
    let off = _mm512_set1_epi32(p.output_offset);
    let (lo, hi) = (
        _mm512_set1_epi32(p.clamp.min_q),
        _mm512_set1_epi32(p.clamp.max_q.max(p.clamp.min_q)),
    );
    let (ab, _) = a.as_chunks::<16>();
    let (bb, _) = b.as_chunks::<16>();
    let (ob, _) = out.as_chunks_mut::<16>();
    let mut n = 0;
    for ((x, y), o) in ab.iter().zip(bb).zip(ob) {
        let x = _mm512_add_epi32(_mm512_cvtepi8_epi32(load16(x)), off1);
        let y = _mm512_add_epi32(_mm512_cvtepi8_epi32(load16(y)), off2);
        let rx = if K1 == RS_SMALL {
            s1.apply(x)
        } else {
            r1.apply::<K1>(_mm512_sllv_epi32(x, ls))
        };
        let ry = if K2 == RS_SMALL {
            s2.apply(y)
        } else {
            r2.apply::<K2>(_mm512_sllv_epi32(y, ls))
        };
        let s = _mm512_add_epi32(rx, ry);
        let v = _mm512_add_epi32(ro.apply::<KO>(s), off);
        let v = _mm512_min_epi32(_mm512_max_epi32(v, lo), hi);
        // SAFETY: `o` is 16 writable bytes; `_mm_storeu_si128` has no alignment
        // requirement (SSE2, x86_64 baseline).
        unsafe { _mm_storeu_si128(o.as_mut_ptr().cast(), _mm512_cvtsepi32_epi8(v)) };
        n += 16;
    }
    n
}

/// `dst[i] = src[i] ^ flip` (the input of a convolution put in the kernel's form once
/// per op), 64 bytes a step (AVX-512 F) over the whole steps both slices hold. Returns
/// the bytes done (0 without AVX-512 F); the caller does the rest byte by byte (its
/// loop is the reference this is tested against).
pub(crate) fn xor_copy(dst: &mut [u8], src: &[u8], flip: u8) -> usize {
    if !avx512f_available() {
        return 0;
    }
    // SAFETY: AVX-512 F is available (checked).
    unsafe { xor_copy_avx512(dst, src, flip) }
}

#[target_feature(enable = "avx512f")]
fn xor_copy_avx512(dst: &mut [u8], src: &[u8], flip: u8) -> usize {
    let f = _mm512_set1_epi8(flip as i8);
    let (d, _) = dst.as_chunks_mut::<64>();
    let (s, _) = src.as_chunks::<64>();
    let mut n = 0;
    for (d, s) in d.iter_mut().zip(s) {
        // SAFETY: `s` is 64 readable and `d` 64 writable bytes; no alignment requirement.
        unsafe {
            let v = _mm512_loadu_si512(s.as_ptr().cast());
            _mm512_storeu_si512(d.as_mut_ptr().cast(), _mm512_xor_si512(v, f));
        }
        n += 64;
    }
    n
}

/// Three-byte pixels widened to four (the depth padding of a 3-channel convolution
/// input, `kernels::conv`): `dst[4i..4i + 4] = [src[3i] ^ flip, src[3i + 1] ^ flip,
/// src[3i + 2] ^ flip, pad]`, 16 pixels a step (AVX-512 BW and VBMI: one `VPERMB` with
/// the fourth bytes zeroed, then one XOR), over the whole steps both slices hold (the
/// last step reads its 48 bytes through a masked load). Returns the pixels done (0
/// without the CPU features); the caller does the rest pixel by pixel (its loop is
/// the reference this is tested against).
pub(crate) fn expand3to4(dst: &mut [u8], src: &[u8], flip: u8, pad: u8) -> usize {
    let ok = avx512f_available()
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vbmi");
    if !ok {
        return 0;
    }
    // SAFETY: AVX-512 F, BW and VBMI are available (checked).
    unsafe { expand3to4_avx512(dst, src, flip, pad) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
fn expand3to4_avx512(dst: &mut [u8], src: &[u8], flip: u8, pad: u8) -> usize {
    let steps = (src.len() / 48).min(dst.len() / 64);
    // Output byte `j` takes input byte `3 * (j / 4) + j % 4` (the fourth is zeroed).
    let idx: [u8; 64] = core::array::from_fn(|j| (3 * (j / 4) + (j % 4).min(2)) as u8);
    let pat: [u8; 64] = core::array::from_fn(|j| if j % 4 == 3 { pad } else { flip });
    // SAFETY: 64 readable bytes each; no alignment requirement.
    let (idx, pat) = unsafe {
        (
            _mm512_loadu_si512(idx.as_ptr().cast()),
            _mm512_loadu_si512(pat.as_ptr().cast()),
        )
    };
    let keep: u64 = 0x7777_7777_7777_7777;
    for i in 0..steps {
        // SAFETY: step `i < steps` reads `src[48i..48i + 48]` (the mask leaves the 16
        // bytes after them unread, so they need not exist) and writes
        // `dst[64i..64i + 64]`, both inside the slices (`steps` bounds them).
        unsafe {
            let v = _mm512_maskz_loadu_epi8(0x0000_FFFF_FFFF_FFFF, src.as_ptr().add(48 * i).cast());
            let w = _mm512_maskz_permutexvar_epi8(keep, idx, v);
            _mm512_storeu_si512(
                dst.as_mut_ptr().add(64 * i).cast(),
                _mm512_xor_si512(w, pat),
            );
        }
    }
    16 * steps
}

/// Loads eight `i32`s (unaligned).
#[inline]
#[target_feature(enable = "avx2")]
fn load_i32x8(a: &[i32; 8]) -> __m256i {
    // SAFETY: `a` is 32 readable bytes; `_mm256_loadu_si256` has no alignment
    // requirement, and this function only runs with AVX2 enabled.
    unsafe { core::arch::x86_64::_mm256_loadu_si256(a.as_ptr().cast()) }
}

// ---------------------------------------------------------------------------------------
// AVERAGE_POOL_2D window sums (host only, `super::super::pool`)
// ---------------------------------------------------------------------------------------

/// The int8 sums of one AVERAGE_POOL_2D window (AVX2): for every tap at byte
/// `first + r * row + t * step` of `x` (`r < rows`, `t < cols`), `acc[j] += x[tap + j]`
/// (int8 sign-extended, wrapping `i32` sums as the portable `pool::average_i8`), eight
/// channels per `VPMOVSXBD` + `VPADDD`. `acc.len()` must be 8, 16, 24 or 32. Returns
/// `false` (nothing added) without AVX2, for another length, or when a tap's bytes lie
/// past the end of `x`.
pub(crate) fn window_sums(
    x: &[u8],
    (first, rows, cols, row, step): (usize, usize, usize, usize, usize),
    acc: &mut [i32],
) -> bool {
    if !available() {
        return false;
    }
    if rows == 0 || cols == 0 {
        return matches!(acc.len(), 8 | 16 | 24 | 32);
    }
    // The last tap's end, every step checked.
    let end = (rows - 1)
        .checked_mul(row)
        .and_then(|a| (cols - 1).checked_mul(step).and_then(|b| a.checked_add(b)))
        .and_then(|a| a.checked_add(first))
        .and_then(|a| a.checked_add(acc.len()));
    if end.is_none_or(|e| e > x.len()) {
        return false;
    }
    let taps = (first, rows, cols, row, step);
    // SAFETY: AVX2 is available (checked); every tap's `acc.len()` bytes lie in `x`
    // (the last tap's end checked above; the others start earlier).
    unsafe {
        match acc.len() {
            8 => window_sums_avx2::<1>(x, taps, acc),
            16 => window_sums_avx2::<2>(x, taps, acc),
            24 => window_sums_avx2::<3>(x, taps, acc),
            32 => window_sums_avx2::<4>(x, taps, acc),
            _ => return false,
        }
    }
    true
}

/// [`window_sums`] for `NG` groups of eight channels. Safety: every tap's `8 * NG` bytes
/// lie in `x`, `acc` holds `8 * NG` sums, and AVX2 is available.
#[target_feature(enable = "avx2")]
unsafe fn window_sums_avx2<const NG: usize>(
    x: &[u8],
    (first, rows, cols, row, step): (usize, usize, usize, usize, usize),
    acc: &mut [i32],
) {
    let mut a = [_mm256_setzero_si256(); NG];
    let base = x.as_ptr();
    for r in 0..rows {
        let start = first + r * row;
        for t in 0..cols {
            let s = start + t * step;
            for (g, v) in a.iter_mut().enumerate() {
                // SAFETY: bytes `s + 8g .. s + 8g + 8` lie in `x` (the caller's
                // contract); `_mm_loadl_epi64` reads 8 bytes, unaligned.
                let b = unsafe { _mm_loadl_epi64(base.add(s + 8 * g).cast()) };
                *v = _mm256_add_epi32(*v, _mm256_cvtepi8_epi32(b));
            }
        }
    }
    for (g, v) in a.iter().enumerate() {
        if let Some(d) = acc
            .get_mut(8 * g..8 * g + 8)
            .and_then(|d| d.first_chunk_mut::<8>())
        {
            let sum = _mm256_add_epi32(load_i32x8(d), *v);
            store8(d, sum);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Packed weights (host only, `super::super::packed`): eight output channels per vector
// ---------------------------------------------------------------------------------------

/// The packed-weight layouts of [`gemm_tile`] (chosen once per model, see
/// `kernels::packed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Packing {
    /// AVX-VNNI: per block of 8 output channels and group of 4 taps, 32 bytes (channel
    /// `c`'s four int8 weights at `4c..4c + 4`); the rows are XORed with `0x80`
    /// (`x + 128`, unsigned) and `VPDPBUSD` adds the four exact products of each lane.
    Vnni,
    /// AVX2: per block and group, 64 bytes: the `i16` weight pairs of taps `(0, 1)` of
    /// the eight channels, then of taps `(2, 3)`; the rows are int8 as they are, each tap
    /// pair broadcast as two `i16` values and multiplied with `VPMADDWD`.
    Avx2,
    /// AVX-512 VNNI: the [`Packing::Vnni`] pieces with blocks taken in pairs, the two
    /// blocks' pieces of a group adjacent (`((b / 2) * k4 + g) * 2 + b % 2`; an odd last
    /// block paired with zero weights), so one 512-bit `VPDPBUSD` computes 16 channels.
    Avx512Vnni,
}

impl Packing {
    /// The best packing this CPU runs, if any.
    pub(crate) fn detect() -> Option<Packing> {
        if avx512_vnni_available() {
            Some(Packing::Avx512Vnni)
        } else if vnni_available() {
            Some(Packing::Vnni)
        } else if available() {
            Some(Packing::Avx2)
        } else {
            None
        }
    }

    /// Whether the rows are `x XOR 0x80` and the weights int8 groups of four
    /// (`VPDPBUSD`).
    pub(crate) fn unsigned_rows(self) -> bool {
        matches!(self, Packing::Vnni | Packing::Avx512Vnni)
    }

    /// The 32-byte piece of block `b`, group `g` (of `k4`) in the packed weights (the
    /// first of two for [`Packing::Avx2`]).
    #[inline]
    pub(crate) fn piece(self, b: usize, g: usize, k4: usize) -> usize {
        match self {
            Packing::Vnni => b * k4 + g,
            Packing::Avx2 => 2 * (b * k4 + g),
            Packing::Avx512Vnni => ((b / 2) * k4 + g) * 2 + b % 2,
        }
    }

    /// Pieces of packed weights for `blocks` blocks of `k4` groups.
    pub(crate) fn pieces(self, blocks: usize, k4: usize) -> Option<usize> {
        match self {
            Packing::Vnni => blocks.checked_mul(k4),
            Packing::Avx2 => blocks.checked_mul(k4)?.checked_mul(2),
            Packing::Avx512Vnni => blocks.div_ceil(2).checked_mul(k4)?.checked_mul(2),
        }
    }
}

/// Whether this CPU runs AVX-512 VNNI (with AVX-512 F and the AVX2 of the epilogue).
#[inline]
pub(crate) fn avx512_vnni_available() -> bool {
    available()
        && std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512vnni")
}

/// `acc[p][8 * b + c] = sum_g sum_j row_p[4g + j] * w(b, g, c, j)` (wrapping int32; for
/// [`Packing::Vnni`] the rows hold `x XOR 0x80`, so this is `sum (x + 128) * w`) for
/// `NP` prepared rows of `k4` groups of 4 bytes and `nb` (at most 4) consecutive packed
/// blocks `w` of 8 channels each. No horizontal sums: each vector lane is one output
/// channel. Returns `false` (and computes nothing) without the CPU features or when a
/// slice is shorter than `k4` and `nb` need.
pub(crate) fn gemm_tile<const NP: usize>(
    packing: Packing,
    rows: &[&[[u8; 4]]; NP],
    w: &[[u8; 32]],
    k4: usize,
    nb: usize,
    acc: &mut [[i32; 32]; NP],
) -> bool {
    let fits = nb <= 4
        && rows.iter().all(|r| r.len() >= k4)
        && packing.pieces(nb, k4).is_some_and(|v| v <= w.len());
    if !fits {
        return false;
    }
    match packing {
        Packing::Vnni if vnni_available() => {
            // SAFETY: AVX2 and AVX-VNNI are available (checked).
            unsafe { tile_vnni(rows, w, k4, nb, acc) };
            true
        }
        Packing::Avx2 if available() => {
            // SAFETY: AVX2 is available (checked).
            unsafe { tile_avx2(rows, w, k4, nb, acc) };
            true
        }
        Packing::Avx512Vnni if avx512_vnni_available() => {
            // SAFETY: AVX-512 F and VNNI are available (checked).
            unsafe { tile_avx512_vnni(rows, w, k4, nb, acc) };
            true
        }
        _ => false,
    }
}

/// Loads 64 bytes (two adjacent pieces, unaligned).
#[inline]
#[target_feature(enable = "avx512f")]
fn load64(p: &[[u8; 32]; 2]) -> __m512i {
    // SAFETY: `p` is 64 readable bytes; `_mm512_loadu_si512` has no alignment
    // requirement, and this function only runs with AVX-512 F enabled.
    unsafe { _mm512_loadu_si512(p.as_ptr().cast()) }
}

/// Loads 64 bytes (unaligned).
#[inline]
#[target_feature(enable = "avx512f")]
fn load_b64(b: &[u8; 64]) -> __m512i {
    // SAFETY: `b` is 64 readable bytes; `_mm512_loadu_si512` has no alignment
    // requirement, and this function only runs with AVX-512 F enabled.
    unsafe { _mm512_loadu_si512(b.as_ptr().cast()) }
}

/// Stores a 512-bit vector into lanes `16q..16q + 16` of `a`.
#[inline]
#[target_feature(enable = "avx512f")]
fn store_pair(a: &mut [i32; 32], q: usize, v: __m512i) {
    if let Some(d) = a
        .get_mut(16 * q..16 * q + 16)
        .and_then(|d| <&mut [i32; 16]>::try_from(d).ok())
    {
        // SAFETY: `d` is 64 writable bytes; `_mm512_storeu_si512` has no alignment
        // requirement, and this function only runs with AVX-512 F enabled.
        unsafe { _mm512_storeu_si512(d.as_mut_ptr().cast(), v) }
    }
}

/// [`tile_vnni`] on 512-bit vectors: 16 channels (a pair of blocks) per `VPDPBUSD`, all
/// `ceil(nb / 2)` pairs of the chunk per pass over the groups (an odd last block's pair
/// has zero weights in its upper half, whose lanes the caller does not read).
#[target_feature(enable = "avx512f,avx512vnni")]
fn tile_avx512_vnni<const NP: usize>(
    rows: &[&[[u8; 4]]; NP],
    w: &[[u8; 32]],
    k4: usize,
    nb: usize,
    acc: &mut [[i32; 32]; NP],
) {
    let z = _mm512_setzero_si512();
    let (pairs, _) = w.as_chunks::<2>();
    let bc =
        |r: &[[u8; 4]], g: usize| _mm512_set1_epi32(r.get(g).map_or(0, |b| i32::from_le_bytes(*b)));
    if NP == 1 {
        // One row (FULLY_CONNECTED at batch 1): the even and odd groups in separate
        // accumulators, so that twice as many chains are in flight (four for 32
        // channels); their sum is the same wrapping sum.
        let r = rows[0];
        let (Some(w0), w1) = (pairs.get(..k4), pairs.get(k4..2 * k4).filter(|_| nb > 2)) else {
            return;
        };
        let (two0, rest0) = w0.as_chunks::<2>();
        if let Some(w1) = w1 {
            let (two1, rest1) = w1.as_chunks::<2>();
            let (mut e0, mut o0, mut e1, mut o1) = (z, z, z, z);
            for (h, ([p0, p1], [q0, q1])) in two0.iter().zip(two1).enumerate() {
                let (xe, xo) = (bc(r, 2 * h), bc(r, 2 * h + 1));
                e0 = _mm512_dpbusd_epi32(e0, xe, load64(p0));
                e1 = _mm512_dpbusd_epi32(e1, xe, load64(q0));
                o0 = _mm512_dpbusd_epi32(o0, xo, load64(p1));
                o1 = _mm512_dpbusd_epi32(o1, xo, load64(q1));
            }
            if let (Some(p0), Some(q0)) = (rest0.first(), rest1.first()) {
                let xe = bc(r, k4 - 1);
                e0 = _mm512_dpbusd_epi32(e0, xe, load64(p0));
                e1 = _mm512_dpbusd_epi32(e1, xe, load64(q0));
            }
            store_pair(&mut acc[0], 0, _mm512_add_epi32(e0, o0));
            store_pair(&mut acc[0], 1, _mm512_add_epi32(e1, o1));
        } else {
            let (mut e0, mut o0) = (z, z);
            for (h, [p0, p1]) in two0.iter().enumerate() {
                e0 = _mm512_dpbusd_epi32(e0, bc(r, 2 * h), load64(p0));
                o0 = _mm512_dpbusd_epi32(o0, bc(r, 2 * h + 1), load64(p1));
            }
            if let Some(p0) = rest0.first() {
                e0 = _mm512_dpbusd_epi32(e0, bc(r, k4 - 1), load64(p0));
            }
            store_pair(&mut acc[0], 0, _mm512_add_epi32(e0, o0));
        }
        return;
    }
    // Several rows: one piece of `k4` groups each.
    let one: [&[&[[u8; 4]]]; NP] = core::array::from_fn(|p| core::slice::from_ref(&rows[p]));
    taps_avx512_vnni(&one, 1, k4, w, k4, nb, acc);
}

/// [`gemm_tile`] with each row given as `taps` pieces of `s4` groups (an indirect GEMM:
/// the pieces are read where they are, e.g. the input pixels of a 3x3 convolution's
/// taps, with no receptive-field copy): `segs[p * taps + t]` is piece `t` of row `p`,
/// groups `t * s4..(t + 1) * s4` of the row, `taps * s4 == k4`. AVX-512 VNNI only
/// ([`Packing::Avx512Vnni`]); returns `false` (and computes nothing) for another
/// packing, without the CPU features, or when a slice is shorter than the shapes need.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_tile_taps<const NP: usize>(
    packing: Packing,
    segs: &[&[[u8; 4]]],
    taps: usize,
    s4: usize,
    w: &[[u8; 32]],
    k4: usize,
    nb: usize,
    acc: &mut [[i32; 32]; NP],
) -> bool {
    let fits = packing == Packing::Avx512Vnni
        && nb <= 4
        && taps.checked_mul(s4) == Some(k4)
        && taps.checked_mul(NP).is_some_and(|n| n <= segs.len())
        && segs.iter().take(taps * NP).all(|s| s.len() >= s4)
        && packing.pieces(nb, k4).is_some_and(|v| v <= w.len());
    if !fits || !avx512_vnni_available() {
        return false;
    }
    let rows: [&[&[[u8; 4]]]; NP] =
        core::array::from_fn(|p| segs.get(p * taps..(p + 1) * taps).unwrap_or(&[]));
    // SAFETY: AVX-512 F and VNNI are available (checked).
    unsafe { taps_avx512_vnni(&rows, taps, s4, w, k4, nb, acc) };
    true
}

/// The AVX-512 VNNI kernel on rows of `taps` pieces of `s4` groups each (`rows[p][t]`):
/// 16 channels (a pair of blocks) per `VPDPBUSD`, all `ceil(nb / 2)` pairs of the chunk
/// per pass over the groups (an odd last block's pair has zero weights in its upper
/// half, whose lanes the caller does not read).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512vnni")]
fn taps_avx512_vnni<const NP: usize>(
    rows: &[&[&[[u8; 4]]]; NP],
    taps: usize,
    s4: usize,
    w: &[[u8; 32]],
    k4: usize,
    nb: usize,
    acc: &mut [[i32; 32]; NP],
) {
    let Some((a0, a1)) = taps_acc(rows, taps, s4, w, k4, nb) else {
        return;
    };
    for p in 0..NP {
        store_pair(&mut acc[p], 0, a0[p]);
        if nb > 2 {
            store_pair(&mut acc[p], 1, a1[p]);
        }
    }
}

/// The accumulators of [`taps_avx512_vnni`]: channels `0..16` and (when `nb > 2`)
/// `16..32` of each row; `None` when a slice is shorter than the shapes need.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
#[inline]
#[target_feature(enable = "avx512f,avx512vnni")]
fn taps_acc<const NP: usize>(
    rows: &[&[&[[u8; 4]]]; NP],
    taps: usize,
    s4: usize,
    w: &[[u8; 32]],
    k4: usize,
    nb: usize,
) -> Option<([__m512i; NP], [__m512i; NP])> {
    let z = _mm512_setzero_si512();
    let (pairs, _) = w.as_chunks::<2>();
    let (Some(w0), w1) = (pairs.get(..k4), pairs.get(k4..2 * k4).filter(|_| nb > 2)) else {
        return None;
    };
    let (mut a0, mut a1) = ([z; NP], [z; NP]);
    for t in 0..taps {
        // Row `p`'s piece of this tap: at least `s4` groups (else nothing is computed).
        let mut rp: [*const [u8; 4]; NP] = [core::ptr::null(); NP];
        for (r, row) in rp.iter_mut().zip(rows) {
            match row.get(t) {
                Some(s) if s.len() >= s4 => *r = s.as_ptr(),
                _ => return None,
            }
        }
        // Group `g` (< s4) of row `p`'s piece, broadcast (a `VPBROADCASTD` from memory).
        let x = |p: usize, g: usize| {
            // SAFETY: `g < s4`, and every piece holds at least `s4` groups (checked
            // above), so the 4 bytes read are inside the piece; `read_unaligned` has no
            // alignment requirement.
            _mm512_set1_epi32(unsafe { rp[p].add(g).cast::<i32>().read_unaligned() })
        };
        let v0 = w0.get(t * s4..(t + 1) * s4)?;
        let v1 = match w1 {
            Some(w1) => Some(w1.get(t * s4..(t + 1) * s4)?),
            None => None,
        };
        match v1 {
            Some(v1) => {
                for (g, (p0, p1)) in v0.iter().zip(v1).enumerate() {
                    let (v0, v1) = (load64(p0), load64(p1));
                    for p in 0..NP {
                        let x = x(p, g);
                        a0[p] = _mm512_dpbusd_epi32(a0[p], x, v0);
                        a1[p] = _mm512_dpbusd_epi32(a1[p], x, v1);
                    }
                }
            }
            None => {
                for (g, p0) in v0.iter().enumerate() {
                    let v0 = load64(p0);
                    for (p, a) in a0.iter_mut().enumerate() {
                        *a = _mm512_dpbusd_epi32(*a, x(p, g), v0);
                    }
                }
            }
        }
    }
    Some((a0, a1))
}

/// Epilogue constant pieces per 16 channels for [`gemm_taps_fused`]: the [`PRE8`]
/// pieces of two groups of eight side by side (64 bytes each: the 64-bit lanes of
/// [`pre8`]'s pieces do not cross 256-bit halves).
pub(crate) type Pre16 = [[u8; 64]; PRE8];

/// The [`Pre16`] of channels `16q..16q + 16` from [`pre8`]'s pieces (`pre`, [`PRE8`]
/// per eight channels); a missing group (past the last whole one) is zeros.
pub(crate) fn pre16(pre: &[[u8; 32]], q: usize) -> Pre16 {
    let mut out = [[0u8; 64]; PRE8];
    for (i, piece) in out.iter_mut().enumerate() {
        for h in 0..2 {
            if let Some(src) = pre.get((2 * q + h) * PRE8 + i) {
                piece[32 * h..32 * h + 32].copy_from_slice(src);
            }
        }
    }
    out
}

/// [`gemm_tile_taps`] with the epilogue fused (AVX-512 VNNI): the accumulators never
/// leave the registers; each 16 channels are requantized as [`requant_pre`] does (the
/// same single-shift arithmetic on 16 lanes: `VPMULDQ` on even and odd lanes, the
/// precomputed rounding constants, `VPSRAVD`, offset, clamp) and narrowed with
/// `VPMOVSDB` (exact after the clamp). Writes channels `c0..c0 + n` (`n <= 16 * nb / 2`,
/// rounded to the chunk) of each of the `NP` rows `outs[p]`; `pre[q]` holds the constants
/// of channels `c0 + 16q..`. Returns `false` (nothing written) for another packing,
/// without the CPU features, or when a slice is shorter than the shapes need.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_taps_fused<const NP: usize>(
    packing: Packing,
    segs: &[&[[u8; 4]]],
    (taps, s4): (usize, usize),
    w: &[[u8; 32]],
    (k4, nb): (usize, usize),
    pre: &[Pre16],
    clamp: (i32, i32, i32),
    outs: &mut [&mut [u8]],
    (c0, n): (usize, usize),
) -> bool {
    let fits = packing == Packing::Avx512Vnni
        && nb <= 4
        && n <= 8 * nb
        && pre.len() >= n.div_ceil(16)
        && outs.len() >= NP
        && outs.iter().take(NP).all(|o| o.len() >= c0 + n)
        && taps.checked_mul(s4) == Some(k4)
        && taps.checked_mul(NP).is_some_and(|m| m <= segs.len())
        && packing.pieces(nb, k4).is_some_and(|v| v <= w.len());
    if !fits || !avx512_vnni_available() {
        return false;
    }
    // (Each piece's length is checked by `taps_acc`, before anything is written.)
    let rows: [&[&[[u8; 4]]]; NP] =
        core::array::from_fn(|p| segs.get(p * taps..(p + 1) * taps).unwrap_or(&[]));
    // SAFETY: AVX-512 F and VNNI are available (checked).
    unsafe { fused_avx512_vnni(&rows, (taps, s4), w, (k4, nb), pre, clamp, outs, (c0, n)) }
}

#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512vnni")]
fn fused_avx512_vnni<const NP: usize>(
    rows: &[&[&[[u8; 4]]]; NP],
    (taps, s4): (usize, usize),
    w: &[[u8; 32]],
    (k4, nb): (usize, usize),
    pre: &[Pre16],
    clamp: (i32, i32, i32),
    outs: &mut [&mut [u8]],
    (c0, n): (usize, usize),
) -> bool {
    let Some((a0, a1)) = taps_acc(rows, taps, s4, w, k4, nb) else {
        return false;
    };
    let rq = Requant16::new(clamp);
    for (q, (acc, p16)) in [a0, a1].iter().zip(pre).enumerate() {
        let from = 16 * q;
        if from >= n {
            break;
        }
        let m = (n - from).min(16);
        let at = c0 + from;
        for (a, out) in acc.iter().zip(outs.iter_mut()) {
            let v = _mm512_cvtsepi32_epi8(rq.apply(*a, p16));
            store_first(out.get_mut(at..at + m).unwrap_or(&mut []), v);
        }
    }
    true
}

/// The row of [`gemv_fused`]: `groups` whole groups of four taps, then (when `k` is not a
/// multiple of 4) one `tail` group, each XORed with `flip` as a little-endian `u32` when
/// it is broadcast (`0x8080_8080` turns raw int8 taps into the kernel's `x + 128`; 0 for
/// a row already in that form). A tail's bytes past `k` must become 0 after the XOR.
#[derive(Clone, Copy)]
pub(crate) struct GemvRow<'r> {
    pub(crate) groups: &'r [[u8; 4]],
    pub(crate) tail: Option<[u8; 4]>,
    pub(crate) flip: u32,
}

/// The strided-run form of [`gemm_taps_fused`] (AVX-512 VNNI, epilogue fused): `npix`
/// output pixels whose rows are read in place from `x`, all `oc` channels. Pixel `p`'s
/// row is `taps` pieces of `4 * s4` bytes, piece `t` at byte
/// `base + p * step + t * row_step` of `x` (`geo = (base, step, row_step)`): a run of
/// convolution windows along an output row (`step` = stride × depth, `row_step` = one
/// input row), or with `taps == 1` consecutive 1x1 pixels. Pixel `p`'s `oc` outputs go to
/// `out[p * oc..]`. Eight pixels per pass (the last pass fewer), each pass over the
/// channels 32 at a time, so one call replaces a run's per-tile piece lists and checks.
/// The arithmetic per output is [`gemm_taps_fused`]'s (the same accumulation order
/// modulo 2^32 and the same 16-lane requantization on [`Pre16`] constants), so it is
/// bit-exact with the portable kernel and epilogue. Returns `false` (nothing written)
/// for another packing, without the CPU features, with `oc` not a multiple of 8, or
/// when a slice is shorter than the shapes need (every read of `x` is checked before
/// the first one: the last pixel's last piece must end inside `x`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_run_fused(
    packing: Packing,
    x: &[u8],
    geo: (usize, usize, usize),
    (taps, s4): (usize, usize),
    npix: usize,
    w: &[[u8; 32]],
    (k4, oc): (usize, usize),
    pre: &[Pre16],
    clamp: (i32, i32, i32),
    out: &mut [u8],
) -> bool {
    let (base, step, row_step) = geo;
    // The byte after the last one read: the last pixel's last piece's end.
    let end = npix
        .checked_sub(1)
        .and_then(|l| l.checked_mul(step))
        .and_then(|v| v.checked_add(base))
        .and_then(|v| v.checked_add(taps.checked_sub(1)?.checked_mul(row_step)?))
        .and_then(|v| v.checked_add(s4.checked_mul(4)?));
    let fits = packing == Packing::Avx512Vnni
        && s4 > 0
        && oc > 0
        && oc.is_multiple_of(8)
        && taps.checked_mul(s4) == Some(k4)
        && end.is_some_and(|e| e <= x.len())
        && npix.checked_mul(oc).is_some_and(|n| n <= out.len())
        && pre.len() >= oc.div_ceil(16)
        && packing
            .pieces(oc.div_ceil(8), k4)
            .is_some_and(|v| v <= w.len());
    if !fits || !avx512_vnni_available() {
        return false;
    }
    // Eight channels: the constants of channels 0..8 in both halves, so that two pixels
    // are requantized in one vector (see `run_pass`).
    let mut dup = pre[0];
    if oc == 8 {
        for piece in dup.iter_mut() {
            piece.copy_within(..32, 32);
        }
    }
    let pre = if oc == 8 {
        core::slice::from_ref(&dup)
    } else {
        pre
    };
    let mut p = 0;
    while p < npix {
        let n = (npix - p).min(8);
        let at = base + p * step;
        let o = &mut out[p * oc..(p + n) * oc];
        // SAFETY: AVX-512 F and VNNI are available (checked); every piece read lies in
        // `x[at + q * step + t * row_step..][..4 * s4]` for `q < n`, `t < taps`, which
        // ends at most at `end <= x.len()` (checked); `w` and `pre` hold the whole op's
        // pieces and constants (checked).
        unsafe {
            // One monomorphised pass per pixel count (the accumulators are arrays of
            // `NP` registers).
            macro_rules! pass {
                ($n:literal) => {
                    run_pass::<$n>(
                        x.as_ptr().add(at),
                        (step, row_step),
                        (taps, s4),
                        w,
                        (k4, oc),
                        pre,
                        clamp,
                        o,
                    )
                };
            }
            match n {
                8 => pass!(8),
                7 => pass!(7),
                6 => pass!(6),
                5 => pass!(5),
                4 => pass!(4),
                3 => pass!(3),
                2 => pass!(2),
                _ => pass!(1),
            }
        }
        p += n;
    }
    true
}

/// One pass of [`gemm_run_fused`]: `NP` pixels from `x0` (pixel `p`'s piece `t` at
/// `x0 + p * step + t * row_step`), all `oc` channels, 32 (two pairs of blocks) at a
/// time, into `out` (`NP * oc` bytes).
///
/// # Safety
/// AVX-512 F and VNNI must be available, and every `4 * s4` bytes from
/// `x0 + p * step + t * row_step` (`p < NP`, `t < taps`) readable; `w` must hold the
/// [`Packing::Avx512Vnni`] pieces of `oc / 8` blocks of `k4 = taps * s4` groups and
/// `pre` `ceil(oc / 16)` constants.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn run_pass<const NP: usize>(
    x0: *const u8,
    (step, row_step): (usize, usize),
    (taps, s4): (usize, usize),
    w: &[[u8; 32]],
    (k4, oc): (usize, usize),
    pre: &[Pre16],
    clamp: (i32, i32, i32),
    out: &mut [u8],
) {
    let z = _mm512_setzero_si512();
    let rq = Requant16::new(clamp);
    let (pairs, _) = w.as_chunks::<2>();
    let npairs = oc.div_ceil(16);
    let mut q0 = 0;
    while q0 < npairs {
        let two = q0 + 1 < npairs;
        let (mut a0, mut a1) = ([z; NP], [z; NP]);
        // Pair `q0`'s groups start at `q0 * k4`, pair `q0 + 1`'s right after.
        let w0 = pairs.as_ptr().add(q0 * k4);
        // Without a second pair (`two` false) `w1` lies past the weights: it is formed
        // with `wrapping_add` (no in-bounds claim) and read only when `two`.
        let w1 = w0.wrapping_add(k4);
        for t in 0..taps {
            let xt = x0.add(t * row_step);
            let (v0, v1) = (w0.add(t * s4), w1.wrapping_add(t * s4));
            for g in 0..s4 {
                let wa = _mm512_loadu_si512((*v0.add(g)).as_ptr().cast());
                if two {
                    let wb = _mm512_loadu_si512((*v1.add(g)).as_ptr().cast());
                    for p in 0..NP {
                        let xv = _mm512_set1_epi32(
                            xt.add(p * step + 4 * g).cast::<i32>().read_unaligned(),
                        );
                        a0[p] = _mm512_dpbusd_epi32(a0[p], xv, wa);
                        a1[p] = _mm512_dpbusd_epi32(a1[p], xv, wb);
                    }
                } else {
                    for (p, a) in a0.iter_mut().enumerate() {
                        let xv = _mm512_set1_epi32(
                            xt.add(p * step + 4 * g).cast::<i32>().read_unaligned(),
                        );
                        *a = _mm512_dpbusd_epi32(*a, xv, wa);
                    }
                }
            }
        }
        if oc == 8 {
            // Two pixels' eight channels in one vector (lanes 8..16 of each accumulator
            // are the zero weights of the pair's missing block): one requantization and
            // one 16-byte store for both; `pre` holds channels 0..8 in both halves.
            let p16 = pre.get_unchecked(0);
            let mut p = 0;
            while p + 1 < NP {
                let v = _mm512_inserti64x4::<1>(a0[p], _mm512_castsi512_si256(a0[p + 1]));
                let v = _mm512_cvtsepi32_epi8(rq.apply(v, p16));
                store_first(out.get_unchecked_mut(8 * p..8 * p + 16), v);
                p += 2;
            }
            if p < NP {
                let v = _mm512_cvtsepi32_epi8(rq.apply(a0[p], p16));
                store_first(out.get_unchecked_mut(8 * p..8 * p + 8), v);
            }
            break;
        }
        for (h, acc) in [a0, a1].iter().enumerate().take(if two { 2 } else { 1 }) {
            let q = q0 + h;
            let c = 16 * q;
            let m = (oc - c).min(16);
            let p16 = pre.get_unchecked(q);
            for (p, a) in acc.iter().enumerate() {
                let v = _mm512_cvtsepi32_epi8(rq.apply(*a, p16));
                let at = p * oc + c;
                store_first(out.get_unchecked_mut(at..at + m), v);
            }
        }
        q0 += 2;
    }
}

/// One row against all `oc` channels with the epilogue fused (AVX-512 VNNI; a matrix-
/// vector product, FULLY_CONNECTED at batch 1): up to eight pairs of blocks (128
/// channels) per pass over the row, so that up to eight independent `VPDPBUSD` chains
/// are in flight (the tile kernels see at most 32 channels at a time), then the
/// 16-lane requantization of [`gemm_taps_fused`] on each. `row` gives `k4` groups
/// ([`GemvRow`]: in the kernel's form once flipped), `w` the whole op's
/// [`Packing::Avx512Vnni`] pieces, `pre` its [`Pre16`] constants; writes `out[..oc]`.
/// Returns `false` (nothing written) for another packing, without the CPU features, or
/// when a slice is shorter than the shapes need or the row's groups are not `k4`.
pub(crate) fn gemv_fused(
    packing: Packing,
    row: GemvRow<'_>,
    w: &[[u8; 32]],
    (k4, oc): (usize, usize),
    pre: &[Pre16],
    clamp: (i32, i32, i32),
    out: &mut [u8],
) -> bool {
    let whole = k4.checked_sub(usize::from(row.tail.is_some()));
    let fits = packing == Packing::Avx512Vnni
        && k4 > 0
        && whole.is_some_and(|n| row.groups.len() >= n)
        && out.len() >= oc
        && pre.len() >= oc.div_ceil(16)
        && packing
            .pieces(oc.div_ceil(8), k4)
            .is_some_and(|v| v <= w.len());
    let (Some(whole), true) = (whole, fits) else {
        return false;
    };
    if !avx512_vnni_available() {
        return false;
    }
    let row = GemvRow {
        groups: row.groups.get(..whole).unwrap_or(&[]),
        ..row
    };
    let (pairs, _) = w.as_chunks::<2>();
    let rq_clamp = clamp;
    let mut q0 = 0;
    while 16 * q0 < oc {
        let nq = (oc - 16 * q0).div_ceil(16).min(8);
        let (Some(wq), Some(pq)) = (pairs.get(q0 * k4..(q0 + nq) * k4), pre.get(q0..q0 + nq))
        else {
            return false;
        };
        let o = out.get_mut(16 * q0..oc).unwrap_or(&mut []);
        // SAFETY: AVX-512 F and VNNI are available (checked); `wq` holds `nq * k4`
        // pairs and `row` exactly `k4` groups with its tail (checked).
        unsafe {
            match nq {
                1 => gemv_pass::<1>(row, wq, k4, pq, rq_clamp, o),
                2 => gemv_pass::<2>(row, wq, k4, pq, rq_clamp, o),
                3 => gemv_pass::<3>(row, wq, k4, pq, rq_clamp, o),
                4 => gemv_pass::<4>(row, wq, k4, pq, rq_clamp, o),
                5 => gemv_pass::<5>(row, wq, k4, pq, rq_clamp, o),
                6 => gemv_pass::<6>(row, wq, k4, pq, rq_clamp, o),
                7 => gemv_pass::<7>(row, wq, k4, pq, rq_clamp, o),
                _ => gemv_pass::<8>(row, wq, k4, pq, rq_clamp, o),
            }
        }
        q0 += nq;
    }
    true
}

/// One pass of [`gemv_fused`] over `NQ` pairs of blocks (`w`: `NQ * k4` pairs, pair
/// `q`'s groups at `q * k4..`), writing up to `16 * NQ` outputs (fewer when `out` is
/// shorter). With a single pair, the even and odd groups go to separate accumulators
/// (two chains instead of one; the same wrapping sum). `row` holds `k4` groups with its
/// tail (the caller checked).
#[target_feature(enable = "avx512f,avx512vnni")]
fn gemv_pass<const NQ: usize>(
    row: GemvRow<'_>,
    w: &[[[u8; 32]; 2]],
    k4: usize,
    pre: &[Pre16],
    clamp: (i32, i32, i32),
    out: &mut [u8],
) {
    let z = _mm512_setzero_si512();
    let mut a = [z; NQ];
    let mut odd = z;
    if w.len() < NQ * k4 || row.groups.len() + usize::from(row.tail.is_some()) != k4 {
        return;
    }
    let flip = row.flip;
    let mut step = |g: usize, x: [u8; 4]| {
        let xv = _mm512_set1_epi32((u32::from_le_bytes(x) ^ flip) as i32);
        if NQ == 1 && g % 2 == 1 {
            if let Some(p) = w.get(g) {
                odd = _mm512_dpbusd_epi32(odd, xv, load64(p));
            }
            return;
        }
        for (q, acc) in a.iter_mut().enumerate() {
            // SAFETY: `q * k4 + g < NQ * k4 <= w.len()` (checked above, `g < k4`).
            let p = unsafe { w.get_unchecked(q * k4 + g) };
            *acc = _mm512_dpbusd_epi32(*acc, xv, load64(p));
        }
    };
    for (g, x) in row.groups.iter().enumerate() {
        step(g, *x);
    }
    if let Some(t) = row.tail {
        step(k4 - 1, t);
    }
    if NQ == 1 {
        a[0] = _mm512_add_epi32(a[0], odd);
    }
    let rq = Requant16::new(clamp);
    for (q, (acc, p16)) in a.iter().zip(pre).enumerate() {
        let v = _mm512_cvtsepi32_epi8(rq.apply(*acc, p16));
        let at = 16 * q;
        let m = out.len().saturating_sub(at).min(16);
        store_first(out.get_mut(at..at + m).unwrap_or(&mut []), v);
    }
}

/// Stores the first `d.len()` (at most 16) bytes of `v` into `d`: one 16- or 8-byte
/// store for those lengths (the fused kernels' outputs are whole groups of eight
/// channels), else through a stack copy.
#[inline]
#[target_feature(enable = "avx2")]
fn store_first(d: &mut [u8], v: __m128i) {
    match d.len() {
        // SAFETY: `d` is 16 writable bytes; `_mm_storeu_si128` has no alignment
        // requirement.
        16 => unsafe { _mm_storeu_si128(d.as_mut_ptr().cast(), v) },
        // SAFETY: `d` is 8 writable bytes; `_mm_storel_epi64` writes exactly the low 8
        // bytes, with no alignment requirement.
        8 => unsafe { _mm_storel_epi64(d.as_mut_ptr().cast(), v) },
        m => {
            let mut b = [0u8; 16];
            // SAFETY: `b` is 16 writable bytes; no alignment requirement.
            unsafe { _mm_storeu_si128(b.as_mut_ptr().cast(), v) }
            if let (Some(d), Some(b)) = (d.get_mut(..m.min(16)), b.get(..m.min(16))) {
                d.copy_from_slice(b);
            }
        }
    }
}

/// [`Requant8::apply_pre`] on 16 lanes (AVX-512 F).
#[derive(Clone, Copy)]
struct Requant16 {
    min31: __m512i,
    off: __m512i,
    lo: __m512i,
    hi: __m512i,
}

impl Requant16 {
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn new((off, lo, hi): (i32, i32, i32)) -> Requant16 {
        Requant16 {
            min31: _mm512_set1_epi64(0x8000_0000),
            off: _mm512_set1_epi32(off),
            lo: _mm512_set1_epi32(lo),
            hi: _mm512_set1_epi32(hi.max(lo)),
        }
    }

    /// `clamp(requant_single(acc + fold, m, nudge, r1) + off, lo, hi)` per lane, on the
    /// constants `p` ([`Pre16`]: fold, multiplier, `r1`, odd-lane multiplier, even and
    /// odd rounding constants).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn apply(&self, acc: __m512i, p: &Pre16) -> __m512i {
        let [f, m, r1, mo, ne, no] = p;
        let (m, r1, mo, ne, no) = (
            load_b64(m),
            load_b64(r1),
            load_b64(mo),
            load_b64(ne),
            load_b64(no),
        );
        let x = _mm512_add_epi32(acc, load_b64(f));
        let neg = _mm512_srai_epi32::<31>(x);
        let pe = _mm512_mul_epi32(x, m);
        let po = _mm512_mul_epi32(_mm512_srli_epi64::<32>(x), mo);
        let ce = _mm512_and_si512(neg, self.min31);
        let co = _mm512_and_si512(_mm512_srli_epi64::<32>(neg), self.min31);
        let qe = _mm512_sub_epi64(_mm512_add_epi64(pe, ne), ce);
        let qo = _mm512_sub_epi64(_mm512_add_epi64(po, no), co);
        let h = _mm512_mask_blend_epi32(0b1010_1010_1010_1010, _mm512_srli_epi64::<32>(qe), qo);
        let v = _mm512_add_epi32(_mm512_srav_epi32(h, r1), self.off);
        _mm512_min_epi32(_mm512_max_epi32(v, self.lo), self.hi)
    }
}

/// Stores a vector into lanes `8b..8b + 8` of `a`.
#[inline]
#[target_feature(enable = "avx2")]
fn store_block(a: &mut [i32; 32], b: usize, v: __m256i) {
    if let Some(d) = a
        .get_mut(8 * b..8 * b + 8)
        .and_then(|d| <&mut [i32; 8]>::try_from(d).ok())
    {
        store8(d, v);
    }
}

/// The group `g` of a row, broadcast to every lane.
#[inline]
#[target_feature(enable = "avx2")]
fn bcast(r: &[[u8; 4]], g: usize) -> __m256i {
    _mm256_set1_epi32(r.get(g).map_or(0, |b| i32::from_le_bytes(*b)))
}

#[target_feature(enable = "avx2,avxvnni")]
fn tile_vnni<const NP: usize>(
    rows: &[&[[u8; 4]]; NP],
    w: &[[u8; 32]],
    k4: usize,
    nb: usize,
    acc: &mut [[i32; 32]; NP],
) {
    let z = _mm256_setzero_si256();
    let mut b = 0;
    // Two blocks (16 channels) per pass: each broadcast row group feeds two VPDPBUSD.
    while b + 2 <= nb {
        let (Some(w0), Some(w1)) = (
            w.get(b * k4..(b + 1) * k4),
            w.get((b + 1) * k4..(b + 2) * k4),
        ) else {
            return;
        };
        let (mut a0, mut a1) = ([z; NP], [z; NP]);
        for (g, (p0, p1)) in w0.iter().zip(w1).enumerate() {
            let (v0, v1) = (load32(p0), load32(p1));
            for p in 0..NP {
                let x = bcast(rows[p], g);
                a0[p] = _mm256_dpbusd_avx_epi32(a0[p], x, v0);
                a1[p] = _mm256_dpbusd_avx_epi32(a1[p], x, v1);
            }
        }
        for p in 0..NP {
            store_block(&mut acc[p], b, a0[p]);
            store_block(&mut acc[p], b + 1, a1[p]);
        }
        b += 2;
    }
    if b < nb {
        let Some(w0) = w.get(b * k4..(b + 1) * k4) else {
            return;
        };
        let mut a0 = [z; NP];
        for (g, p0) in w0.iter().enumerate() {
            let v0 = load32(p0);
            for p in 0..NP {
                a0[p] = _mm256_dpbusd_avx_epi32(a0[p], bcast(rows[p], g), v0);
            }
        }
        for p in 0..NP {
            store_block(&mut acc[p], b, a0[p]);
        }
    }
}

/// Taps `(0, 1)` and `(2, 3)` of a row group as `i16` pairs, each broadcast.
#[inline]
#[target_feature(enable = "avx2")]
fn bcast_pairs(r: &[[u8; 4]], g: usize) -> (__m256i, __m256i) {
    let [x0, x1, x2, x3] = r.get(g).copied().unwrap_or([0; 4]);
    let pair = |a: u8, b: u8| {
        (u32::from(a as i8 as i16 as u16) | (u32::from(b as i8 as i16 as u16) << 16)) as i32
    };
    (
        _mm256_set1_epi32(pair(x0, x1)),
        _mm256_set1_epi32(pair(x2, x3)),
    )
}

#[target_feature(enable = "avx2")]
fn tile_avx2<const NP: usize>(
    rows: &[&[[u8; 4]]; NP],
    w: &[[u8; 32]],
    k4: usize,
    nb: usize,
    acc: &mut [[i32; 32]; NP],
) {
    let z = _mm256_setzero_si256();
    for b in 0..nb {
        let Some(wb) = w.get(2 * b * k4..2 * (b + 1) * k4) else {
            return;
        };
        let mut a = [z; NP];
        let (pairs, _) = wb.as_chunks::<2>();
        for (g, [p01, p23]) in pairs.iter().enumerate() {
            let (v01, v23) = (load32(p01), load32(p23));
            for p in 0..NP {
                let (x01, x23) = bcast_pairs(rows[p], g);
                a[p] = _mm256_add_epi32(a[p], _mm256_madd_epi16(x01, v01));
                a[p] = _mm256_add_epi32(a[p], _mm256_madd_epi16(x23, v23));
            }
        }
        for p in 0..NP {
            store_block(&mut acc[p], b, a[p]);
        }
    }
}

// ---------------------------------------------------------------------------------------
// DEPTHWISE_CONV_2D 3x3 on packed weights (host only): 32 channels per block
// ---------------------------------------------------------------------------------------

/// Weight pieces (32 bytes each) per block of 32 channels in the packed 3x3 depthwise
/// layout of `packing` (see [`dw_block`]).
pub(crate) fn dw_pieces(packing: Packing) -> usize {
    match packing {
        Packing::Vnni | Packing::Avx512Vnni => 12,
        Packing::Avx2 => 24,
    }
}

/// One output pixel's 32 channels of a 3x3 depthwise convolution on packed weights:
/// `out[ch] = clamp(requant_single(fold[ch] + sum_t x_t[ch] * w_t[ch], m[ch], r1[ch]) +
/// off, lo, hi)` for the nine int8 tap vectors `taps` (32 channels each), the block's
/// weight pieces `w` ([`dw_pieces`] of them) and its twelve constant vectors `k`: fold,
/// multiplier and `r1` (the right shift minus one), four vectors each, in the lane
/// order of `kernels::packed::dw_lane`. Returns `false` (writing nothing) without the CPU features or when `w` or `k`
/// is short; [`crate::kernels::packed::dw_block_portable`] is the twin.
///
/// Taps are taken four at a time (the ninth alone, repeated, against zero weights), their
/// bytes interleaved so that each `i32` lane holds one channel's four taps:
/// - [`Packing::Vnni`]: the taps XORed with `0x80` (`x + 128`, unsigned) and one
///   `VPDPBUSD` per vector against the four int8 weights of each lane (the fold holds
///   `bias + (off_in - 128) * sum(w)`);
/// - [`Packing::Avx2`]: the even and odd bytes of each lane sign-extended to `i16` by
///   shifts (`VPSLLW`/`VPSRAW`) and two `VPMADDWD` against the weights stored as `i16`
///   pairs (taps 0 and 2, then 1 and 3; the fold holds `bias + off_in * sum(w)`).
///
/// Every product and pair sum is exact in 32 bits and the lane sums wrap as the portable
/// kernels' `wrapping_add` does, so the result is bit-exact.
pub(crate) fn dw_block(
    packing: Packing,
    taps: &[&[u8; 32]; 9],
    w: &[[u8; 32]],
    k: &[[u8; 32]],
    clamp: (i32, i32, i32),
    out: &mut [u8; 32],
) -> bool {
    let Some(k) = k.first_chunk::<{ 4 * PRE8 }>() else {
        return false;
    };
    match packing {
        Packing::Vnni if vnni_available() => match w.first_chunk::<12>() {
            Some(w) => {
                // SAFETY: AVX2 and AVX-VNNI are available (checked).
                unsafe { dw_block_vnni(taps, w, k, clamp, out) };
                true
            }
            None => false,
        },
        Packing::Avx2 if available() => match w.first_chunk::<24>() {
            Some(w) => {
                // SAFETY: AVX2 is available (checked).
                unsafe { dw_block_avx2(taps, w, k, clamp, out) };
                true
            }
            None => false,
        },
        _ => false,
    }
}

/// The four vectors of interleaved taps `4g..4g + 4` (tap 8 repeated for `g == 2`).
#[inline]
#[target_feature(enable = "avx2")]
fn dw_interleave(taps: &[&[u8; 32]; 9], g: usize) -> [__m256i; 4] {
    let t = |j: usize| load32(taps[(4 * g + j).min(8)]);
    let (t0, t1, t2, t3) = (t(0), t(1), t(2), t(3));
    let a = _mm256_unpacklo_epi8(t0, t1);
    let b = _mm256_unpackhi_epi8(t0, t1);
    let c = _mm256_unpacklo_epi8(t2, t3);
    let d = _mm256_unpackhi_epi8(t2, t3);
    [
        _mm256_unpacklo_epi16(a, c),
        _mm256_unpackhi_epi16(a, c),
        _mm256_unpacklo_epi16(b, d),
        _mm256_unpackhi_epi16(b, d),
    ]
}

/// The epilogue of a depthwise block: requantizes the four vectors of sums (fold
/// included) and stores the 32 bytes in channel order.
#[inline]
#[target_feature(enable = "avx2")]
fn dw_finish(
    acc: [__m256i; 4],
    k: &[[u8; 32]; 4 * PRE8],
    clamp: (i32, i32, i32),
    out: &mut [u8; 32],
) {
    let rq = Requant8::new(clamp);
    let (k, _) = k.as_chunks::<PRE8>();
    let r0 = rq.apply_pre(acc[0], &k[0]);
    let r1 = rq.apply_pre(acc[1], &k[1]);
    let r2 = rq.apply_pre(acc[2], &k[2]);
    let r3 = rq.apply_pre(acc[3], &k[3]);
    let p01 = _mm256_packs_epi32(r0, r1);
    let p23 = _mm256_packs_epi32(r2, r3);
    let b = _mm256_packs_epi16(p01, p23);
    // SAFETY: `out` is 32 writable bytes; `_mm256_storeu_si256` has no alignment
    // requirement, and this function only runs with AVX2 enabled.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), b) }
}

#[target_feature(enable = "avx2,avxvnni")]
fn dw_block_vnni(
    taps: &[&[u8; 32]; 9],
    w: &[[u8; 32]; 12],
    k: &[[u8; 32]; 4 * PRE8],
    clamp: (i32, i32, i32),
    out: &mut [u8; 32],
) {
    let flip = _mm256_set1_epi8(-128);
    let mut acc = [
        load32(&k[0]),
        load32(&k[PRE8]),
        load32(&k[2 * PRE8]),
        load32(&k[3 * PRE8]),
    ];
    for g in 0..3 {
        let x = dw_interleave(taps, g);
        for v in 0..4 {
            acc[v] = _mm256_dpbusd_avx_epi32(
                acc[v],
                _mm256_xor_si256(x[v], flip),
                load32(&w[4 * g + v]),
            );
        }
    }
    dw_finish(acc, k, clamp, out);
}

/// A run of blocks of `r = 32 / c` neighbouring output pixels of one output row of a 3x3
/// depthwise convolution with 8 or 16 channels (AVX-VNNI), on the repeated-lane layout
/// of `kernels::packed::Dw` (`w`: the 12 pieces of one block whose lanes repeat the `c`
/// channels, `k`: its epilogue constants, as for [`dw_block`]). `rows[ky]`: the input
/// row of filter row `ky` (at least `in_w * c` bytes, `in_w` only bounding the reads) or
/// `None` (outside the image: every tap the zero point `zp`). Output pixel `j` of the run
/// reads input columns `col0 + j * sx + kx`, `kx` in `0..3`: every window inside the
/// row (the caller passes the pixels whose windows are). Each block's nine tap vectors
/// are loaded straight into registers (one 32-byte load for `sx == 1`, two 16-byte or
/// four 8-byte loads otherwise) and computed as [`dw_block`] does; one call per run
/// replaces a tap list, slice checks and a kernel call per block. Writes the first
/// `floor(npix / r) * r` pixels (`c` bytes each) of `out` and returns how many pixels
/// that is; returns 0 (nothing written) without AVX-VNNI, for another `c`, `sx == 0`,
/// or when a slice is shorter than the shapes need (checked before any read).
#[allow(clippy::too_many_arguments)]
pub(crate) fn dw_rep_run(
    rows: &[Option<&[u8]>; 3],
    (c, in_w): (usize, usize),
    (sx, col0): (usize, usize),
    npix: usize,
    w: &[[u8; 32]],
    k: &[[u8; 32]],
    zp: u8,
    clamp: (i32, i32, i32),
    out: &mut [u8],
) -> usize {
    let (Some(w), Some(k)) = (w.first_chunk::<12>(), k.first_chunk::<{ 4 * PRE8 }>()) else {
        return 0;
    };
    if !(c == 8 || c == 16) || sx == 0 || !vnni_available() {
        return 0;
    }
    let r = 32 / c;
    let blocks = (npix / r).min(out.len() / 32);
    if blocks == 0 {
        return 0;
    }
    // The last column read: the last pixel's third tap.
    let last = (blocks * r - 1)
        .checked_mul(sx)
        .and_then(|v| v.checked_add(col0)?.checked_add(2));
    let Some(last) = last.filter(|&l| l < in_w) else {
        return 0;
    };
    let need = (last + 1).checked_mul(c);
    if need.is_none_or(|n| rows.iter().flatten().any(|s| s.len() < n)) {
        return 0;
    }
    let ptrs = rows.map(|r| r.map(<[u8]>::as_ptr));
    // SAFETY: AVX2 and AVX-VNNI are available (checked); every tap read lies in
    // `rows[ky][(col0 + j * sx + kx) * c..][..c]` for `j < blocks * r`, `kx < 3`
    // (32 contiguous bytes for `sx == 1`: the `r` pixels' columns are adjacent), all
    // before `(last + 1) * c <= rows[ky].len()` (checked); `out` holds `32 * blocks`
    // bytes (checked).
    unsafe {
        match (sx, c) {
            (1, _) => dw_rep_vnni::<0>(&ptrs, (c, sx, col0), blocks, w, k, zp, clamp, out),
            (_, 16) => dw_rep_vnni::<1>(&ptrs, (c, sx, col0), blocks, w, k, zp, clamp, out),
            _ => dw_rep_vnni::<2>(&ptrs, (c, sx, col0), blocks, w, k, zp, clamp, out),
        }
    }
    blocks * r
}

/// The blocks of [`dw_rep_run`]; `MODE` is how a tap's 32 bytes are loaded: 0 one
/// contiguous load (`sx == 1`), 1 two 16-byte loads (`c == 16`), 2 four 8-byte loads
/// (`c == 8`).
///
/// # Safety
/// AVX2 and AVX-VNNI must be available and the reads described in [`dw_rep_run`] inside
/// the rows behind `rows`; `out` must hold `32 * blocks` bytes.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,avxvnni")]
unsafe fn dw_rep_vnni<const MODE: u8>(
    rows: &[Option<*const u8>; 3],
    (c, sx, col0): (usize, usize, usize),
    blocks: usize,
    w: &[[u8; 32]; 12],
    k: &[[u8; 32]; 4 * PRE8],
    zp: u8,
    clamp: (i32, i32, i32),
    out: &mut [u8],
) {
    let flip = _mm256_set1_epi8(-128);
    let zv = _mm256_set1_epi8(zp as i8);
    let wv: [__m256i; 12] = core::array::from_fn(|i| load32(&w[i]));
    let k0: [__m256i; 4] = core::array::from_fn(|v| load32(&k[v * PRE8]));
    let r = 32 / c;
    let (ob, _) = out.as_chunks_mut::<32>();
    for (i, o) in ob.iter_mut().take(blocks).enumerate() {
        // Input column of pixel `i * r`'s first tap.
        let col = col0 + i * r * sx;
        let tap = |ky: usize, kx: usize| -> __m256i {
            let Some(p) = rows[ky] else {
                return zv;
            };
            let b = p.add((col + kx) * c);
            match MODE {
                0 => _mm256_loadu_si256(b.cast()),
                1 => _mm256_loadu2_m128i(b.add(sx * 16).cast(), b.cast()),
                _ => {
                    let q = |j: usize| b.add(j * sx * 8).cast::<i64>().read_unaligned();
                    _mm256_set_epi64x(q(3), q(2), q(1), q(0))
                }
            }
        };
        let t: [__m256i; 9] = core::array::from_fn(|t| tap(t / 3, t % 3));
        let mut acc = k0;
        for g in 0..3 {
            let q = |j: usize| t[(4 * g + j).min(8)];
            let (t0, t1, t2, t3) = (q(0), q(1), q(2), q(3));
            let a = _mm256_unpacklo_epi8(t0, t1);
            let b = _mm256_unpackhi_epi8(t0, t1);
            let cc = _mm256_unpacklo_epi8(t2, t3);
            let d = _mm256_unpackhi_epi8(t2, t3);
            let x = [
                _mm256_unpacklo_epi16(a, cc),
                _mm256_unpackhi_epi16(a, cc),
                _mm256_unpacklo_epi16(b, d),
                _mm256_unpackhi_epi16(b, d),
            ];
            for v in 0..4 {
                acc[v] =
                    _mm256_dpbusd_avx_epi32(acc[v], _mm256_xor_si256(x[v], flip), wv[4 * g + v]);
            }
        }
        dw_finish(acc, k, clamp, o);
    }
}

/// One output row of one 32-channel block of a 3x3 depthwise convolution (stride and
/// dilation 1 along the row; AVX-VNNI), on the column layout of `kernels::packed::Dw`
/// (`w`: 12 pieces, piece `4 * kx + v`; `k`: the block's epilogue constants as for
/// [`dw_block`]). `rows[ky]`: the input row of filter row `ky` (`in_w` pixels of `c`
/// bytes) or `None` (outside the image: the zero point `zp`). Output pixel `ox` of the
/// `out.len() / c` in `out` reads input columns `ox + kx - pad`. Each input column's
/// three taps are interleaved once (`VPUNPCK{L,H}BW`, `VPUNPCK{L,H}WD` with a zero
/// fourth tap) and used by the three output pixels that read it, so a pixel costs one
/// column's shuffles instead of [`dw_block`]'s three groups. Channels `c0..c0 + 32`
/// (fewer at the end: lanes past `c` are computed and not written). Returns `false`
/// (nothing written) without AVX-VNNI or when a slice is too short.
#[allow(clippy::too_many_arguments)]
pub(crate) fn dw_row(
    rows: &[Option<&[u8]>; 3],
    (c, c0): (usize, usize),
    (in_w, pad): (usize, usize),
    w: &[[u8; 32]],
    k: &[[u8; 32]],
    zp: u8,
    clamp: (i32, i32, i32),
    out: &mut [u8],
) -> bool {
    let (Some(w), Some(k)) = (w.first_chunk::<12>(), k.first_chunk::<{ 4 * PRE8 }>()) else {
        return false;
    };
    let row_ok = |r: &Option<&[u8]>| r.is_none_or(|r| r.len() >= in_w * c);
    if c == 0 || c0 >= c || !rows.iter().all(row_ok) || !vnni_available() {
        return false;
    }
    // SAFETY: AVX2 and AVX-VNNI are available (checked).
    unsafe { dw_row_vnni(rows, (c, c0), (in_w, pad), w, k, zp, clamp, out) };
    true
}

#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,avxvnni")]
fn dw_row_vnni(
    rows: &[Option<&[u8]>; 3],
    (c, c0): (usize, usize),
    (in_w, pad): (usize, usize),
    w: &[[u8; 32]; 12],
    k: &[[u8; 32]; 4 * PRE8],
    zp: u8,
    clamp: (i32, i32, i32),
    out: &mut [u8],
) {
    let flip = _mm256_set1_epi8(-128);
    let zpv = _mm256_set1_epi8(zp as i8);
    let zero = _mm256_setzero_si256();
    // Tap `ky` of input column `ix` (`None`: outside the row), 32 channels from `c0`.
    let tap = |ky: usize, ix: Option<usize>| -> __m256i {
        let (Some(row), Some(ix)) = (rows[ky], ix) else {
            return zpv;
        };
        let at = ix * c + c0;
        match row.get(at..at + 32).and_then(|s| s.first_chunk::<32>()) {
            Some(s) => load32(s),
            None => {
                // Near the end of the row: the bytes there, zeros after them.
                let mut b = [0u8; 32];
                if let Some(s) = row.get(at..) {
                    let n = s.len().min(32);
                    b[..n].copy_from_slice(&s[..n]);
                }
                load32(&b)
            }
        }
    };
    // The interleaved (and flipped) taps of input column `ix` (as a signed position).
    let column = |ix: isize| -> [__m256i; 4] {
        let ix = usize::try_from(ix).ok().filter(|&i| i < in_w);
        let t0 = _mm256_xor_si256(tap(0, ix), flip);
        let t1 = _mm256_xor_si256(tap(1, ix), flip);
        let t2 = _mm256_xor_si256(tap(2, ix), flip);
        let a = _mm256_unpacklo_epi8(t0, t1);
        let b = _mm256_unpackhi_epi8(t0, t1);
        let cc = _mm256_unpacklo_epi8(t2, zero);
        let d = _mm256_unpackhi_epi8(t2, zero);
        [
            _mm256_unpacklo_epi16(a, cc),
            _mm256_unpackhi_epi16(a, cc),
            _mm256_unpacklo_epi16(b, d),
            _mm256_unpackhi_epi16(b, d),
        ]
    };
    let n = (c - c0).min(32);
    let fold = [
        load32(&k[0]),
        load32(&k[PRE8]),
        load32(&k[2 * PRE8]),
        load32(&k[3 * PRE8]),
    ];
    let origin = -(pad as isize);
    // `column` has one call site (the first two columns come from the loop's first two
    // turns), so that LLVM inlines it: called out of line from three sites, each column
    // cost a call, a `VZEROUPPER` and its four vectors through the stack.
    let mut col0 = [zero; 4];
    let mut col1 = [zero; 4];
    let mut outs = out.chunks_exact_mut(c);
    for i in 0..outs.len() + 2 {
        let col2 = column(origin + i as isize);
        if i < 2 {
            col0 = col1;
            col1 = col2;
            continue;
        }
        let Some(o) = outs.next() else {
            break;
        };
        let mut acc = fold;
        for v in 0..4 {
            acc[v] = _mm256_dpbusd_avx_epi32(acc[v], col0[v], load32(&w[v]));
            acc[v] = _mm256_dpbusd_avx_epi32(acc[v], col1[v], load32(&w[4 + v]));
            acc[v] = _mm256_dpbusd_avx_epi32(acc[v], col2[v], load32(&w[8 + v]));
        }
        match o
            .get_mut(c0..c0 + 32)
            .and_then(|d| d.first_chunk_mut::<32>())
        {
            Some(d) if n == 32 => dw_finish(acc, k, clamp, d),
            _ => {
                let mut b = [0u8; 32];
                dw_finish(acc, k, clamp, &mut b);
                if let Some(d) = o.get_mut(c0..c0 + n) {
                    d.copy_from_slice(&b[..n]);
                }
            }
        }
        col0 = col1;
        col1 = col2;
    }
}

#[target_feature(enable = "avx2")]
fn dw_block_avx2(
    taps: &[&[u8; 32]; 9],
    w: &[[u8; 32]; 24],
    k: &[[u8; 32]; 4 * PRE8],
    clamp: (i32, i32, i32),
    out: &mut [u8; 32],
) {
    let mut acc = [
        load32(&k[0]),
        load32(&k[PRE8]),
        load32(&k[2 * PRE8]),
        load32(&k[3 * PRE8]),
    ];
    for g in 0..3 {
        let x = dw_interleave(taps, g);
        for v in 0..4 {
            let even = _mm256_srai_epi16::<8>(_mm256_slli_epi16::<8>(x[v]));
            let odd = _mm256_srai_epi16::<8>(x[v]);
            let i = 2 * (4 * g + v);
            acc[v] = _mm256_add_epi32(acc[v], _mm256_madd_epi16(even, load32(&w[i])));
            acc[v] = _mm256_add_epi32(acc[v], _mm256_madd_epi16(odd, load32(&w[i + 1])));
        }
    }
    dw_finish(acc, k, clamp, out);
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;
    use crate::kernels::testutil::{specialised_matches_portable, Rng};

    /// Whether the AVX2 tests can run; prints why not otherwise.
    fn skip() -> bool {
        if available() {
            return false;
        }
        std::println!("SKIPPED: this CPU has no AVX2");
        true
    }

    /// A random int8 vector, sometimes all at one extreme (wrapping and madd limits).
    fn bytes(r: &mut Rng, n: usize) -> Vec<u8> {
        match r.range(0, 5) {
            0 => std::vec![0x80; n],
            1 => std::vec![0x7f; n],
            _ => r.bytes(n),
        }
    }

    /// `k` (0..=600, often small and odd), rows (1..=11) and the operands.
    fn conv_case(r: &mut Rng) -> Option<(usize, Vec<u8>, Vec<u8>, usize)> {
        let k = if r.bool() {
            r.usize(0, 40)
        } else {
            r.usize(0, 600)
        };
        let rows = r.usize(1, 11);
        Some((k, bytes(r, k), bytes(r, rows * k), rows))
    }

    specialised_matches_portable!(
        /// CONV_2D's patch-against-rows kernel.
        avx2_dot_rows_matches_portable {
            seed: 41,
            cases: 3000,
            generate: conv_case,
            portable: |(k, x, w, rows): &(usize, Vec<u8>, Vec<u8>, usize)| {
                let mut acc = std::vec![7; *rows];
                dot::rows(x, w, *k, &mut acc);
                acc
            },
            specialised: |(k, x, w, rows): &(usize, Vec<u8>, Vec<u8>, usize)| {
                if skip() {
                    let mut acc = std::vec![7; *rows];
                    dot::rows(x, w, *k, &mut acc);
                    return acc;
                }
                let mut acc = std::vec![7; *rows];
                if *k == 0 {
                    dot::rows(x, w, *k, &mut acc);
                } else {
                    // SAFETY: AVX2 is available (`skip` checked); called directly so
                    // that the AVX2 kernel is tested on AVX-VNNI machines too.
                    unsafe { dot_rows_avx2(x, w, *k, &mut acc) };
                }
                acc
            },
        }
    );

    specialised_matches_portable!(
        /// The same kernel on AVX-VNNI (`VPDPBUSD`), where the CPU has it.
        vnni_dot_rows_matches_portable {
            seed: 45,
            cases: 3000,
            generate: conv_case,
            portable: |(k, x, w, rows): &(usize, Vec<u8>, Vec<u8>, usize)| {
                let mut acc = std::vec![7; *rows];
                dot::rows(x, w, *k, &mut acc);
                acc
            },
            specialised: |(k, x, w, rows): &(usize, Vec<u8>, Vec<u8>, usize)| {
                let mut acc = std::vec![7; *rows];
                if vnni_available() && *k > 0 {
                    // SAFETY: AVX2 and AVX-VNNI are available (checked).
                    unsafe { dot_rows_vnni(&x[..*k], w, *k, &mut acc) };
                } else {
                    std::println!("SKIPPED: this CPU has no AVX-VNNI");
                    dot::rows(x, w, *k, &mut acc);
                }
                acc
            },
        }
    );

    /// An FC segment: `n` i16 values in `[-255, 255]`, rows `stride` bytes apart with the
    /// segment at `s0`.
    #[derive(Debug)]
    struct Fc {
        x: Vec<u8>,
        w: Vec<u8>,
        stride: usize,
        s0: usize,
        n: usize,
        rows: usize,
    }

    fn fc_case(r: &mut Rng) -> Option<Fc> {
        let n = if r.bool() {
            r.usize(0, 40)
        } else {
            r.usize(0, 700)
        };
        let s0 = r.usize(0, 9);
        let stride = s0 + n + r.usize(0, 5);
        let rows = r.usize(1, 11);
        let x = (0..n)
            .flat_map(|_| {
                match r.range(0, 4) {
                    0 => 255i16,
                    1 => -255,
                    _ => r.range(-255, 255) as i16,
                }
                .to_le_bytes()
            })
            .collect();
        Some(Fc {
            x,
            w: bytes(r, rows * stride),
            stride,
            s0,
            n,
            rows,
        })
    }

    specialised_matches_portable!(
        /// FULLY_CONNECTED's segment-against-rows kernel, onto non-zero sums.
        avx2_fc_rows_matches_portable {
            seed: 42,
            cases: 3000,
            generate: fc_case,
            portable: |f: &Fc| {
                let mut acc: Vec<i32> = (0..f.rows as i32).collect();
                dot::rows_i16_acc(&f.x, &f.w, f.stride, f.s0, f.n, &mut acc);
                acc
            },
            specialised: |f: &Fc| {
                let mut acc: Vec<i32> = (0..f.rows as i32).collect();
                if skip() {
                    dot::rows_i16_acc(&f.x, &f.w, f.stride, f.s0, f.n, &mut acc);
                } else {
                    fc_rows(&f.x, &f.w, f.stride, f.s0, f.n, &mut acc);
                }
                acc
            },
        }
    );

    specialised_matches_portable!(
        /// FULLY_CONNECTED on AVX-VNNI from the int8 segment (offset folded in) against
        /// the portable kernel on the widened segment.
        vnni_fc_rows_i8_matches_portable {
            seed: 47,
            cases: 3000,
            generate: |r: &mut Rng| {
                let f = fc_case(r)?;
                let off = match r.range(0, 4) {
                    0 => -127,
                    1 => 128,
                    _ => r.range(-127, 128) as i32,
                };
                let xs = bytes(r, f.n);
                Some((f, off, xs))
            },
            portable: |(f, off, xs): &(Fc, i32, Vec<u8>)| {
                let x16: Vec<u8> = xs
                    .iter()
                    .flat_map(|&v| (v as i8 as i16 + *off as i16).to_le_bytes())
                    .collect();
                let mut acc: Vec<i32> = (0..f.rows as i32).collect();
                dot::rows_i16_acc(&x16, &f.w, f.stride, f.s0, f.n, &mut acc);
                acc
            },
            specialised: |(f, off, xs): &(Fc, i32, Vec<u8>)| {
                let mut acc: Vec<i32> = (0..f.rows as i32).collect();
                if !fc_rows_i8(xs, *off, &f.w, f.stride, f.s0, &mut acc) {
                    std::println!("SKIPPED: no AVX-VNNI (or n = 0): the portable kernel");
                    let x16: Vec<u8> = xs
                        .iter()
                        .flat_map(|&v| (v as i8 as i16 + *off as i16).to_le_bytes())
                        .collect();
                    dot::rows_i16_acc(&x16, &f.w, f.stride, f.s0, f.n, &mut acc);
                }
                acc
            },
        }
    );

    /// Nine taps of `c` channels, a `[1, 3, 3, c]` filter, `c`, `c0` and the channel count.
    type Dw = (Vec<Vec<u8>>, Vec<u8>, usize, usize, usize);

    /// The kernels' signature.
    type DwFn = fn(&[&[u8]; 9], &[u8], usize, usize, &mut [i32]);

    /// A [`Dw`] case.
    fn dw_case(r: &mut Rng) -> Option<Dw> {
        let c = r.usize(1, 90);
        let c0 = r.usize(0, c - 1);
        let n = r.usize(0, c - c0);
        let taps = (0..9).map(|_| bytes(r, c)).collect();
        Some((taps, bytes(r, 9 * c), c, c0, n))
    }

    fn dw_run(d: &Dw, f: DwFn) -> Vec<i32> {
        let (taps, w, c, c0, n) = d;
        let t: [&[u8]; 9] = core::array::from_fn(|i| &taps[i][..]);
        let mut acc = std::vec![7; *n];
        f(&t, w, *c, *c0, &mut acc);
        acc
    }

    specialised_matches_portable!(
        /// The 3x3 depthwise kernel (16 channels per step, any channel range).
        avx2_dw3x3_matches_portable {
            seed: 43,
            cases: 3000,
            generate: dw_case,
            portable: |d: &Dw| dw_run(d, dot::dw3x3),
            specialised: |d: &Dw| dw_run(d, if skip() { dot::dw3x3 } else { dw3x3 }),
        }
    );
    /// Epilogue parameters and accumulators for `n` channels (fast requantization:
    /// right shifts only, some zero multipliers), and a clamp.
    #[derive(Debug)]
    struct Epi {
        acc: Vec<i32>,
        soa: Vec<u8>,
        n: usize,
        clamp: (i32, i32, i32),
    }

    fn epi_case(r: &mut Rng) -> Option<Epi> {
        let n = r.usize(0, 70);
        let acc = (0..n)
            .map(|_| match r.range(0, 6) {
                0 => i32::MIN,
                1 => i32::MAX,
                2 => r.u32() as i32,
                _ => r.range(-300_000, 300_000) as i32,
            })
            .collect();
        let soa = random_soa(r, n);
        let clamp = random_clamp(r);
        Some(Epi { acc, soa, n, clamp })
    }

    /// Random epilogue constants of `n` channels in [`Soa`]'s layout (fold, multiplier,
    /// `r1` per channel): right shifts only (a multiplier of shift 0 or more becomes 0
    /// and 0, the vector epilogue's domain), folds any 32-bit value half the time (extreme
    /// sums), else in -5000..=5000.
    fn random_soa(r: &mut Rng, n: usize) -> Vec<u8> {
        let mut soa = std::vec![0u8; 12 * n];
        for (j, (m, s)) in r.multipliers(n).into_iter().enumerate() {
            let (m, s) = if s >= 0 { (0, 0) } else { (m, s) };
            let fold = if r.bool() {
                r.u32() as i32
            } else {
                r.range(-5000, 5000) as i32
            };
            let r1 = s.unsigned_abs().saturating_sub(1);
            soa[4 * j..4 * j + 4].copy_from_slice(&fold.to_le_bytes());
            soa[4 * (n + j)..4 * (n + j) + 4].copy_from_slice(&m.to_le_bytes());
            soa[4 * (2 * n + j)..4 * (2 * n + j) + 4].copy_from_slice(&r1.to_le_bytes());
        }
        soa
    }

    /// A random `(output zero point, lo, hi)` with `lo <= hi` (the bounds drawn first).
    fn random_clamp(r: &mut Rng) -> (i32, i32, i32) {
        let (a, b) = (r.range(-128, 127) as i32, r.range(-128, 127) as i32);
        (r.range(-128, 127) as i32, a.min(b), a.max(b))
    }

    /// Packed weights, epilogue constants and a clamp ([`packed_consts`]).
    type PackedConsts = (Vec<[u8; 32]>, Vec<u8>, (i32, i32, i32));

    /// The AVX-512 VNNI packed weights of `blocks` 8-channel blocks over `k4` groups, the
    /// epilogue constants of their `8 * blocks` channels ([`random_soa`]) and a clamp
    /// ([`random_clamp`]), drawn in that order: the set-up of [`gemv_case`] (`blocks` =
    /// `oc` rounded up to 8, over 8) and [`run_case`] (`oc` a multiple of 8).
    fn packed_consts(r: &mut Rng, blocks: usize, k4: usize) -> PackedConsts {
        let w = packed_weights(r, Packing::Avx512Vnni.pieces(blocks, k4).unwrap());
        let soa = random_soa(r, 8 * blocks);
        (w, soa, random_clamp(r))
    }

    /// The [`pre8`] constants of the first `c / 8` whole 8-channel blocks of `soa`.
    fn soa_pre8(soa: &Soa<'_>, c: usize) -> Vec<[u8; 32]> {
        let at = |a: &[u8], j: usize| {
            i32::from_le_bytes([a[4 * j], a[4 * j + 1], a[4 * j + 2], a[4 * j + 3]])
        };
        (0..c / 8)
            .flat_map(|g| {
                let f = core::array::from_fn(|j| at(soa.fold, 8 * g + j));
                let m = core::array::from_fn(|j| at(soa.mult, 8 * g + j));
                let r = core::array::from_fn(|j| at(soa.r1, 8 * g + j) as u32);
                pre8(f, m, r)
            })
            .collect()
    }

    /// [`gemm_taps_fused`]'s (and its kin's) [`Pre16`] constants of `c` channels (a
    /// multiple of 8) from `soa`: [`soa_pre8`], then [`pre16`] per 16 channels.
    fn soa_pre16(soa: &Soa<'_>, c: usize) -> Vec<Pre16> {
        let pre = soa_pre8(soa, c);
        (0..c.div_ceil(16)).map(|q| pre16(&pre, q)).collect()
    }

    specialised_matches_portable!(
        /// The vector epilogue (single-shift requantization, offset, clamp, pack).
        avx2_requant_soa_matches_portable {
            seed: 44,
            cases: 3000,
            generate: epi_case,
            portable: |e: &Epi| {
                let mut out = std::vec![0xA5u8; e.n];
                requant_soa_portable(&e.acc, &Soa::new(&e.soa, e.n), e.clamp, &mut out);
                out
            },
            specialised: |e: &Epi| {
                let mut out = std::vec![0xA5u8; e.n];
                if skip() {
                    requant_soa_portable(&e.acc, &Soa::new(&e.soa, e.n), e.clamp, &mut out);
                } else {
                    requant_soa(&e.acc, &Soa::new(&e.soa, e.n), e.clamp, &mut out);
                }
                out
            },
        }
    );

    /// Groups of four bytes, `n` of them (a prepared row, or a piece of one).
    fn groups(r: &mut Rng, n: usize) -> Vec<[u8; 4]> {
        bytes(r, 4 * n)
            .chunks_exact(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect()
    }

    /// The rows and weights of a packed-kernel case: 1, 2, 3, 4, 5 or 8 rows (every row
    /// count the callers pass), each drawn by `row`, then `pieces` packed blocks of weights.
    fn packed_rows<R>(
        r: &mut Rng,
        pieces: usize,
        mut row: impl FnMut(&mut Rng) -> R,
    ) -> (Vec<R>, Vec<[u8; 32]>) {
        let np = [1, 2, 3, 4, 5, 8][r.usize(0, 5)];
        let rows = (0..np).map(|_| row(r)).collect();
        (rows, packed_weights(r, pieces))
    }

    /// `pieces` packed blocks of weights, 32 bytes each.
    fn packed_weights(r: &mut Rng, pieces: usize) -> Vec<[u8; 32]> {
        bytes(r, 32 * pieces)
            .chunks_exact(32)
            .map(|c| <[u8; 32]>::try_from(c).unwrap())
            .collect()
    }

    /// `$run::<NP>($case, $portable)` with `NP` the case's row count `$np` (one of
    /// [`packed_rows`]'): the kernels are monomorphised per row count.
    macro_rules! by_row_count {
        ($np:expr, $run:ident, $case:expr, $portable:expr) => {
            match $np {
                1 => $run::<1>($case, $portable),
                2 => $run::<2>($case, $portable),
                3 => $run::<3>($case, $portable),
                4 => $run::<4>($case, $portable),
                5 => $run::<5>($case, $portable),
                _ => $run::<8>($case, $portable),
            }
        };
    }

    /// A packed-kernel case: the packing, `k4`, `nb`, the prepared rows (`k4` groups
    /// each) and `nb` packed blocks of weights.
    type Tile = (Packing, usize, usize, Vec<Vec<[u8; 4]>>, Vec<[u8; 32]>);

    fn tile_case(r: &mut Rng) -> Option<Tile> {
        let packing = match (r.range(0, 3), vnni_available(), avx512_vnni_available()) {
            (0, true, _) => Packing::Vnni,
            (1, _, true) => Packing::Avx512Vnni,
            _ => Packing::Avx2,
        };
        let k4 = if r.bool() {
            r.usize(1, 6)
        } else {
            r.usize(1, 200)
        };
        let nb = r.usize(1, 4);
        let (rows, w) = packed_rows(r, packing.pieces(nb, k4).unwrap(), |r| groups(r, k4));
        Some((packing, k4, nb, rows, w))
    }

    fn tile_run(t: &Tile, portable: bool) -> Vec<i32> {
        by_row_count!(t.3.len(), tile_run_n, t, portable)
    }

    fn tile_run_n<const NP: usize>(t: &Tile, portable: bool) -> Vec<i32> {
        let (packing, k4, nb, rows, w) = t;
        let r: [&[[u8; 4]]; NP] = core::array::from_fn(|p| &rows[p][..]);
        let mut acc = [[7i32; 32]; NP];
        if portable || skip() {
            crate::kernels::packed::tile_portable(*packing, &r, w, *k4, *nb, &mut acc);
        } else {
            assert!(gemm_tile::<NP>(*packing, &r, w, *k4, *nb, &mut acc));
        }
        acc.iter().flat_map(|a| a[..8 * nb].to_vec()).collect()
    }

    specialised_matches_portable!(
        /// The packed-weight kernels (VPDPBUSD and VPMADDWD, eight channels per vector,
        /// several rows per pass) against their portable twin on the same layout,
        /// extreme values included.
        packed_gemm_tile_matches_portable {
            seed: 46,
            cases: 2000,
            generate: tile_case,
            portable: |t: &Tile| tile_run(t, true),
            specialised: |t: &Tile| tile_run(t, false),
        }
    );

    /// An indirect-GEMM case: `taps` (1..=9), `s4`, `nb`, the rows as pieces (`rows[p][t]`,
    /// `s4` groups each, some longer: a piece is read in place from a larger input), and
    /// the AVX-512 VNNI packed weights of `taps * s4` groups.
    type Taps = (usize, usize, usize, Vec<Vec<Vec<[u8; 4]>>>, Vec<[u8; 32]>);

    fn taps_case(r: &mut Rng) -> Option<Taps> {
        let (taps, s4, nb) = (r.usize(1, 9), r.usize(1, 20), r.usize(1, 4));
        let pieces = Packing::Avx512Vnni.pieces(nb, taps * s4).unwrap();
        let (rows, w) = packed_rows(r, pieces, |r| {
            (0..taps)
                .map(|_| {
                    let extra = if r.bool() { 0 } else { r.usize(1, 3) };
                    groups(r, s4 + extra)
                })
                .collect()
        });
        Some((taps, s4, nb, rows, w))
    }

    fn taps_run(t: &Taps, portable: bool) -> Vec<i32> {
        by_row_count!(t.3.len(), taps_run_n, t, portable)
    }

    fn taps_run_n<const NP: usize>(t: &Taps, portable: bool) -> Vec<i32> {
        let (taps, s4, nb, rows, w) = t;
        let k4 = taps * s4;
        let mut acc = [[7i32; 32]; NP];
        if portable || !avx512_vnni_available() {
            if !portable {
                std::println!("SKIPPED: this CPU has no AVX-512 VNNI");
            }
            // The pieces joined into contiguous rows, on the portable twin.
            let joined: Vec<Vec<[u8; 4]>> = rows
                .iter()
                .map(|row| row.iter().flat_map(|s| s[..*s4].to_vec()).collect())
                .collect();
            let r: [&[[u8; 4]]; NP] = core::array::from_fn(|p| &joined[p][..]);
            crate::kernels::packed::tile_portable(Packing::Avx512Vnni, &r, w, k4, *nb, &mut acc);
        } else {
            let segs: Vec<&[[u8; 4]]> = rows.iter().flatten().map(|s| &s[..]).collect();
            assert!(gemm_tile_taps::<NP>(
                Packing::Avx512Vnni,
                &segs,
                *taps,
                *s4,
                w,
                k4,
                *nb,
                &mut acc
            ));
        }
        acc.iter().flat_map(|a| a[..8 * nb].to_vec()).collect()
    }

    specialised_matches_portable!(
        /// The AVX-512 VNNI kernel on rows given as pieces read in place (the indirect
        /// GEMM of the convolutions) against the portable kernel on the joined rows.
        packed_gemm_taps_match_portable {
            seed: 50,
            cases: 2000,
            generate: taps_case,
            portable: |t: &Taps| taps_run(t, true),
            specialised: |t: &Taps| taps_run(t, false),
        }
    );

    /// A fused-epilogue case: an indirect-GEMM case ([`taps_case`]) and the epilogue
    /// constants of its `8 * nb` channels (fold, multiplier, `r1` as in [`Soa`]; extreme
    /// folds included), the clamp and how many channels to write (`n`, up to `8 * nb`).
    type Fused = (Taps, Vec<u8>, (i32, i32, i32), usize);

    fn fused_case(r: &mut Rng) -> Option<Fused> {
        let t = taps_case(r)?;
        let c = 8 * t.2;
        let e = epi_case(r)?;
        let soa = random_soa(r, c);
        let n = if r.bool() { c } else { r.usize(1, c) };
        Some((t, soa, e.clamp, n))
    }

    fn fused_run(f: &Fused, portable: bool) -> Vec<u8> {
        by_row_count!(f.0 .3.len(), fused_run_n, f, portable)
    }

    /// Each row's `n` outputs followed by 3 bytes past them (which must stay 0xA5).
    fn fused_run_n<const NP: usize>(f: &Fused, portable: bool) -> Vec<u8> {
        let (t, soa, clamp, n) = f;
        let c = 8 * t.2;
        let soa = Soa::new(soa, c);
        let mut outs: Vec<Vec<u8>> = std::vec![std::vec![0xA5u8; n + 3]; NP];
        if portable || !avx512_vnni_available() {
            if !portable {
                std::println!("SKIPPED: this CPU has no AVX-512 VNNI");
            }
            let acc = taps_run_n::<NP>(t, true);
            for (o, a) in outs.iter_mut().zip(acc.chunks_exact(c)) {
                requant_soa_portable(&a[..*n], &soa, *clamp, &mut o[..*n]);
            }
        } else {
            let (taps, s4, nb, rows, w) = t;
            let p16 = soa_pre16(&soa, c);
            let segs: Vec<&[[u8; 4]]> = rows.iter().flatten().map(|s| &s[..]).collect();
            let mut os: Vec<&mut [u8]> = outs.iter_mut().map(|o| &mut o[..]).collect();
            assert!(gemm_taps_fused::<NP>(
                Packing::Avx512Vnni,
                &segs,
                (*taps, *s4),
                w,
                (taps * s4, *nb),
                &p16,
                *clamp,
                &mut os,
                (0, *n),
            ));
        }
        outs.concat()
    }

    specialised_matches_portable!(
        /// The AVX-512 VNNI kernel with the epilogue fused (16-lane requantization,
        /// `VPMOVSDB`) against the portable kernel and the portable epilogue; partial
        /// last vectors write nothing past `n`.
        packed_gemm_fused_matches_portable {
            seed: 51,
            cases: 2000,
            generate: fused_case,
            portable: |f: &Fused| fused_run(f, true),
            specialised: |f: &Fused| fused_run(f, false),
        }
    );

    /// A matrix-vector case: `k4` (1..=200), `oc` (1..=300), one row, the AVX-512 VNNI
    /// packed weights of `oc` channels, epilogue constants (fold, multiplier, `r1` as in
    /// [`Soa`] for `oc` rounded up to 8), the clamp, and `pad` (0..=3): the row's last
    /// `pad` bytes are 0 (past `k = 4 * k4 - pad`, as [`GemvRow`]'s tail needs).
    type Gemv = (
        usize,
        usize,
        Vec<[u8; 4]>,
        Vec<[u8; 32]>,
        Vec<u8>,
        (i32, i32, i32),
        usize,
    );

    fn gemv_case(r: &mut Rng) -> Option<Gemv> {
        let k4 = if r.bool() {
            r.usize(1, 8)
        } else {
            r.usize(1, 200)
        };
        let oc = if r.bool() {
            r.usize(1, 40)
        } else {
            r.usize(1, 300)
        };
        let mut row = groups(r, k4);
        let pad = r.usize(0, 3);
        if let Some(last) = row.last_mut() {
            last[4 - pad..].fill(0);
        }
        let (w, soa, clamp) = packed_consts(r, oc.div_ceil(8), k4);
        Some((k4, oc, row, w, soa, clamp, pad))
    }

    /// The `oc` outputs and 3 bytes past them (which must stay 0xA5). The specialised
    /// kernel takes the row in the kernel's form (`flip` 0) when `pad` is 0 and `k4` even,
    /// else as raw int8 bytes (`k` of them: whole groups and a tail) with `flip`.
    fn gemv_run(t: &Gemv, portable: bool) -> Vec<u8> {
        let (k4, oc, row, w, soa, clamp, pad) = t;
        let c = 8 * oc.div_ceil(8);
        let soa = Soa::new(soa, c);
        let mut out = std::vec![0xA5u8; oc + 3];
        if portable || !avx512_vnni_available() {
            if !portable {
                std::println!("SKIPPED: this CPU has no AVX-512 VNNI");
            }
            let mut acc = std::vec![0i32; c];
            for b0 in (0..c / 8).step_by(4) {
                let nb = (c / 8 - b0).min(4);
                let mut a = [[0i32; 32]; 1];
                let wb = &w[Packing::Avx512Vnni.piece(b0, 0, *k4)..];
                crate::kernels::packed::tile_portable(
                    Packing::Avx512Vnni,
                    &[&row[..]],
                    wb,
                    *k4,
                    nb,
                    &mut a,
                );
                acc[8 * b0..8 * (b0 + nb)].copy_from_slice(&a[0][..8 * nb]);
            }
            requant_soa_portable(&acc[..*oc], &soa, *clamp, &mut out[..*oc]);
        } else {
            let p16 = soa_pre16(&soa, c);
            let o = &mut out[..*oc];
            let raw: Vec<u8> = row.as_flattened()[..4 * k4 - pad]
                .iter()
                .map(|v| v ^ 0x80)
                .collect();
            let (whole, rest) = raw.as_chunks::<4>();
            let gr = if *pad == 0 && k4 % 2 == 0 {
                GemvRow {
                    groups: row,
                    tail: None,
                    flip: 0,
                }
            } else {
                GemvRow {
                    groups: whole,
                    tail: (!rest.is_empty()).then(|| {
                        let mut t = [0x80u8; 4];
                        t[..rest.len()].copy_from_slice(rest);
                        t
                    }),
                    flip: 0x8080_8080,
                }
            };
            assert!(gemv_fused(
                Packing::Avx512Vnni,
                gr,
                w,
                (*k4, *oc),
                &p16,
                *clamp,
                o
            ));
        }
        out
    }

    specialised_matches_portable!(
        /// The AVX-512 VNNI matrix-vector kernel (up to 128 channels per pass, fused
        /// epilogue) against the portable kernel and epilogue, extreme values included.
        packed_gemv_fused_matches_portable {
            seed: 52,
            cases: 1500,
            generate: gemv_case,
            portable: |t: &Gemv| gemv_run(t, true),
            specialised: |t: &Gemv| gemv_run(t, false),
        }
    );

    /// A strided-run case: the input bytes `x`, `(base, step, row_step)`, `taps`
    /// (1..=9), `s4`, `npix` (1..=27: whole passes of eight and every shorter last pass),
    /// `oc` (a multiple of 8, 8..=80: one or two pairs per pass, a half pair last), the
    /// AVX-512 VNNI packed weights, the epilogue constants (as [`gemv_case`]) and the
    /// clamp. The input ends exactly at the last pixel's last piece in some cases (the
    /// kernel's bound), with slack in others; pieces of neighbouring pixels overlap when
    /// `step < 4 * s4` (as convolution windows do).
    type Run = (
        Vec<u8>,
        (usize, usize, usize),
        (usize, usize),
        usize,
        usize,
        Vec<[u8; 32]>,
        Vec<u8>,
        (i32, i32, i32),
    );

    fn run_case(r: &mut Rng) -> Option<Run> {
        let (taps, s4) = (r.usize(1, 9), r.usize(1, 12));
        let npix = r.usize(1, 27);
        let oc = 8 * r.usize(1, 10);
        let step = r.usize(1, 24);
        let row_step = if taps == 1 && r.bool() {
            0
        } else {
            r.usize(1, 200)
        };
        let base = r.usize(0, 9);
        let end = base + (npix - 1) * step + (taps - 1) * row_step + 4 * s4;
        let slack = if r.bool() { 0 } else { r.usize(1, 5) };
        let x = bytes(r, end + slack);
        let k4 = taps * s4;
        let (w, soa, clamp) = packed_consts(r, oc / 8, k4);
        Some((
            x,
            (base, step, row_step),
            (taps, s4),
            npix,
            oc,
            w,
            soa,
            clamp,
        ))
    }

    /// The `npix * oc` outputs and 3 bytes past them (which must stay 0xA5).
    fn run_run(t: &Run, portable: bool) -> Vec<u8> {
        let (x, (base, step, row_step), (taps, s4), npix, oc, w, soa, clamp) = t;
        let (oc, k4) = (*oc, taps * s4);
        let soa = Soa::new(soa, oc);
        let mut out = std::vec![0xA5u8; npix * oc + 3];
        if portable || !avx512_vnni_available() {
            if !portable {
                std::println!("SKIPPED: this CPU has no AVX-512 VNNI");
            }
            for p in 0..*npix {
                // Pixel `p`'s row: its pieces joined.
                let row: Vec<[u8; 4]> = (0..*taps)
                    .flat_map(|t| {
                        let at = base + p * step + t * row_step;
                        x[at..at + 4 * s4]
                            .chunks_exact(4)
                            .map(|c| [c[0], c[1], c[2], c[3]])
                    })
                    .collect();
                let mut acc = std::vec![0i32; oc];
                for b0 in (0..oc / 8).step_by(4) {
                    let nb = (oc / 8 - b0).min(4);
                    let mut a = [[0i32; 32]; 1];
                    let wb = &w[Packing::Avx512Vnni.piece(b0, 0, k4)..];
                    crate::kernels::packed::tile_portable(
                        Packing::Avx512Vnni,
                        &[&row[..]],
                        wb,
                        k4,
                        nb,
                        &mut a,
                    );
                    acc[8 * b0..8 * (b0 + nb)].copy_from_slice(&a[0][..8 * nb]);
                }
                requant_soa_portable(&acc, &soa, *clamp, &mut out[p * oc..(p + 1) * oc]);
            }
        } else {
            let p16 = soa_pre16(&soa, oc);
            let n = npix * oc;
            assert!(gemm_run_fused(
                Packing::Avx512Vnni,
                x,
                (*base, *step, *row_step),
                (*taps, *s4),
                *npix,
                w,
                (k4, oc),
                &p16,
                *clamp,
                &mut out[..n],
            ));
            // One byte short of the last piece: refused, nothing written.
            let mut o2 = std::vec![0xA5u8; n];
            let short = &x[..base + (npix - 1) * step + (taps - 1) * row_step + 4 * s4 - 1];
            assert!(!gemm_run_fused(
                Packing::Avx512Vnni,
                short,
                (*base, *step, *row_step),
                (*taps, *s4),
                *npix,
                w,
                (k4, oc),
                &p16,
                *clamp,
                &mut o2,
            ));
            assert!(o2.iter().all(|&v| v == 0xA5));
        }
        out
    }

    specialised_matches_portable!(
        /// The strided-run AVX-512 VNNI kernel (pixels read in place at a fixed step,
        /// pieces a fixed row step apart, all channels, fused epilogue) against the
        /// portable kernel and epilogue on the joined rows, extreme values included.
        packed_gemm_run_matches_portable {
            seed: 53,
            cases: 1500,
            generate: run_case,
            portable: |t: &Run| run_run(t, true),
            specialised: |t: &Run| run_run(t, false),
        }
    );

    /// A packed depthwise block case: the packing, nine taps, the weight pieces, the
    /// constants (fold, multiplier, `r1` in lane order) and the clamp.
    type DwBlock = (
        Packing,
        Vec<[u8; 32]>,
        Vec<[u8; 32]>,
        Vec<[u8; 32]>,
        (i32, i32, i32),
    );

    fn dw_block_case(r: &mut Rng) -> Option<DwBlock> {
        let packing = match (r.bool(), vnni_available()) {
            (true, true) => Packing::Vnni,
            _ => Packing::Avx2,
        };
        let pieces = |v: Vec<u8>| -> Vec<[u8; 32]> {
            v.chunks_exact(32)
                .map(|c| <[u8; 32]>::try_from(c).unwrap())
                .collect()
        };
        let taps = pieces(bytes(r, 9 * 32));
        let w = match packing {
            Packing::Vnni | Packing::Avx512Vnni => pieces(bytes(r, 12 * 32)),
            // i16 weights in the int8 range, as the packing writes them.
            Packing::Avx2 => pieces(
                bytes(r, 24 * 16)
                    .iter()
                    .flat_map(|&b| i16::from(b as i8).to_le_bytes())
                    .collect(),
            ),
        };
        let (mut f, mut m8, mut r8) = ([[0i32; 8]; 4], [[0i32; 8]; 4], [[0u32; 8]; 4]);
        let mults = r.multipliers(32);
        for (j, (m, s)) in mults.into_iter().enumerate() {
            let (m, s) = if s >= 0 { (0, 0) } else { (m, s) };
            let fold = if r.bool() {
                r.u32() as i32
            } else {
                r.range(-5000, 5000) as i32
            };
            let (v, l) = (j / 8, j % 8);
            f[v][l] = fold;
            m8[v][l] = m;
            r8[v][l] = s.unsigned_abs().saturating_sub(1);
        }
        let k: Vec<[u8; 32]> = (0..4).flat_map(|v| pre8(f[v], m8[v], r8[v])).collect();
        let clamp = random_clamp(r);
        Some((packing, taps, w, k, clamp))
    }

    fn dw_block_run(d: &DwBlock, portable: bool) -> [u8; 32] {
        let (packing, taps, w, k, clamp) = d;
        let t: [&[u8; 32]; 9] = core::array::from_fn(|i| &taps[i]);
        let mut out = [0xA5u8; 32];
        if portable || skip() {
            crate::kernels::packed::dw_block_portable(*packing, &t, w, k, *clamp, &mut out);
        } else {
            assert!(dw_block(*packing, &t, w, k, *clamp, &mut out));
        }
        out
    }

    specialised_matches_portable!(
        /// The packed 3x3 depthwise block kernels (taps interleaved four to a lane;
        /// `VPDPBUSD`, or `VPMADDWD` on sign-extended byte pairs) and their epilogue
        /// against the portable twin on the same layout, extreme values included.
        packed_dw_block_matches_portable {
            seed: 48,
            cases: 3000,
            generate: dw_block_case,
            portable: |d: &DwBlock| dw_block_run(d, true),
            specialised: |d: &DwBlock| dw_block_run(d, false),
        }
    );

    /// A depthwise run case: a block case ([`dw_block_case`], VNNI), `c` (8 or 16),
    /// the stride `sx` (1..=3), the first column `col0`, `npix` (1..=30: partial last
    /// blocks are left to the caller), the input rows (some outside the image, `None`),
    /// each `in_w * c` bytes with `in_w` either exactly the last column read plus one
    /// or larger, and the zero point.
    type DwRun = (
        DwBlock,
        (usize, usize),
        (usize, usize),
        usize,
        [Option<Vec<u8>>; 3],
        u8,
    );

    fn dw_run_case(r: &mut Rng) -> Option<DwRun> {
        // The VNNI layout (on a CPU without AVX-VNNI both sides run the portable twin).
        let mut d = dw_block_case(r)?;
        d.0 = Packing::Vnni;
        d.1.clear();
        d.2 = bytes(r, 12 * 32)
            .chunks_exact(32)
            .map(|c| <[u8; 32]>::try_from(c).unwrap())
            .collect();
        let c = if r.bool() { 8 } else { 16 };
        let (sx, col0, npix) = (r.usize(1, 3), r.usize(0, 5), r.usize(1, 30));
        let rb = 32 / c;
        let used = (npix / rb * rb).max(1);
        let in_w = col0 + (used - 1) * sx + 3 + if r.bool() { 0 } else { r.usize(1, 4) };
        let rows = core::array::from_fn(|_| (r.range(0, 4) != 0).then(|| bytes(r, in_w * c)));
        let zp = r.u32() as u8;
        Some((d, (c, in_w), (sx, col0), npix, rows, zp))
    }

    /// The written pixels' bytes, then 3 bytes past them (which must stay 0xA5).
    fn dw_run_run(t: &DwRun, portable: bool) -> Vec<u8> {
        let ((packing, _, w, k, clamp), (c, in_w), (sx, col0), npix, rows, zp) = t;
        let rb = 32 / c;
        let n = npix / rb * rb;
        let mut out = std::vec![0xA5u8; n * c + 3];
        if portable || !vnni_available() {
            if !portable {
                std::println!("SKIPPED: this CPU has no AVX-VNNI");
            }
            for b in 0..n / rb {
                // Each tap's `rb` pixels side by side, then the portable block.
                let taps: Vec<[u8; 32]> = (0..9)
                    .map(|t| {
                        let (ky, kx) = (t / 3, t % 3);
                        let mut v = [*zp; 32];
                        if let Some(row) = &rows[ky] {
                            for j in 0..rb {
                                let col = col0 + (b * rb + j) * sx + kx;
                                v[j * c..(j + 1) * c].copy_from_slice(&row[col * c..(col + 1) * c]);
                            }
                        }
                        v
                    })
                    .collect();
                let tr: [&[u8; 32]; 9] = core::array::from_fn(|i| &taps[i]);
                let o: &mut [u8; 32] = (&mut out[32 * b..32 * b + 32]).try_into().unwrap();
                crate::kernels::packed::dw_block_portable(*packing, &tr, w, k, *clamp, o);
            }
        } else {
            let rs: [Option<&[u8]>; 3] = core::array::from_fn(|i| rows[i].as_deref());
            let done = dw_rep_run(
                &rs,
                (*c, *in_w),
                (*sx, *col0),
                *npix,
                w,
                k,
                *zp,
                *clamp,
                &mut out[..n * c],
            );
            assert_eq!(done, n);
            // A row one byte short of the last column read: refused, nothing written.
            if let Some(i) = (0..3).find(|&i| rows[i].is_some()) {
                let last = (col0 + (n.max(1) - 1) * sx + 3) * c;
                let mut rs2 = rs;
                rs2[i] = rows[i].as_deref().map(|v| &v[..last - 1]);
                let mut o2 = std::vec![0xA5u8; n * c];
                let got = dw_rep_run(
                    &rs2,
                    (*c, *in_w),
                    (*sx, *col0),
                    *npix,
                    w,
                    k,
                    *zp,
                    *clamp,
                    &mut o2,
                );
                assert!(n == 0 || got == 0);
                assert!(o2.iter().all(|&v| v == 0xA5));
            }
        }
        out
    }

    specialised_matches_portable!(
        /// The depthwise run kernel for 8 and 16 channels (taps of `32 / c` pixels loaded
        /// straight into one vector: contiguous, two 16-byte or four 8-byte loads; rows
        /// outside the image as the zero point) against the portable block kernel on the
        /// same taps gathered by hand, extreme values included.
        packed_dw_run_matches_portable {
            seed: 54,
            cases: 1500,
            generate: dw_run_case,
            portable: |t: &DwRun| dw_run_run(t, true),
            specialised: |t: &DwRun| dw_run_run(t, false),
        }
    );

    /// A copy case: the source bytes (3-byte pixels for the widening), the flip (0 or
    /// 0x80) and the padding byte; lengths with tails and destinations longer than
    /// needed.
    type CopyK = (Vec<u8>, u8, u8, usize);

    fn copy_case(r: &mut Rng) -> Option<CopyK> {
        let n = if r.bool() {
            r.usize(0, 100)
        } else {
            r.usize(0, 3000)
        };
        let flip = if r.bool() { 0x80 } else { 0 };
        Some((bytes(r, n), flip, r.u32() as u8, r.usize(0, 70)))
    }

    /// The XOR copy, then the widening, each into a destination with `extra` bytes past
    /// what the source fills (which must keep their 0xA5).
    fn copy_run(k: &CopyK, portable: bool) -> Vec<u8> {
        let (src, flip, pad, extra) = k;
        let mut a = std::vec![0xA5u8; src.len() + extra];
        let px = src.len() / 3;
        let mut b = std::vec![0xA5u8; 4 * px + extra];
        let (mut da, mut db) = (0, 0);
        if !portable {
            da = xor_copy(&mut a[..src.len()], src, *flip);
            db = expand3to4(&mut b[..4 * px], &src[..3 * px], *flip, *pad);
            if db == 0 && px >= 16 {
                std::println!("SKIPPED: this CPU has no AVX-512 VBMI");
            }
        }
        for (d, &v) in a.iter_mut().zip(src).skip(da) {
            *d = v ^ flip;
        }
        for (d, s) in b[..4 * px]
            .chunks_exact_mut(4)
            .zip(src.chunks_exact(3))
            .skip(db)
        {
            d.copy_from_slice(&[s[0] ^ flip, s[1] ^ flip, s[2] ^ flip, *pad]);
        }
        a.extend_from_slice(&b);
        a
    }

    specialised_matches_portable!(
        /// The convolution input copies (XOR with the flip, 64 bytes a step; 3-byte
        /// pixels widened to 4 with `VPERMB`) against their byte-by-byte loops.
        avx512_input_copies_match_portable {
            seed: 55,
            cases: 1000,
            generate: copy_case,
            portable: |k: &CopyK| copy_run(k, true),
            specialised: |k: &CopyK| copy_run(k, false),
        }
    );

    /// An ADD input rescale case for [`Small16`]: multiplier (extremes included), shift
    /// -31..=-1, left shift 0..=23 (20 often, as TFLite sets it) and offset; only cases
    /// [`small_params`] accepts.
    type SmallK = (edgeflow_format::graph::Multiplier, i32, i32);

    fn small_case(r: &mut Rng) -> Option<SmallK> {
        let m = edgeflow_format::graph::Multiplier {
            multiplier: match r.range(0, 5) {
                0 => i32::MAX,
                1 => 1 << 30,
                2 => r.range(0, 3) as i32,
                _ => r.range(0, i32::MAX as i64) as i32,
            },
            shift: r.range(-31, -1) as i32,
        };
        let ls = if r.bool() { 20 } else { r.range(0, 23) as i32 };
        let off = r.range(-127, 128) as i32;
        small_params(&m, off, ls)?;
        Some((m, off, ls))
    }

    /// The rescale of every int8 input `x`: `(x + off) << ls` through TFLM's
    /// `MultiplyByQuantizedMultiplierSmallerThanOneExp` (portable), or [`Small16`].
    fn small_run(k: &SmallK, portable: bool) -> Vec<i32> {
        use crate::fixedpoint::multiply_by_quantized_multiplier_smaller_than_one_exp as mq;
        let (m, off, ls) = k;
        let xs: Vec<i32> = (-128..128).collect();
        if portable || !avx512f_available() {
            if !portable {
                std::println!("SKIPPED: this CPU has no AVX-512 F");
            }
            return xs
                .iter()
                .map(|&x| mq((x + off).wrapping_shl(*ls as u32), m.multiplier, m.shift))
                .collect();
        }
        let p = small_params(m, *off, *ls).unwrap();
        let mut out = std::vec![0i32; 256];
        for (o, x) in out.chunks_exact_mut(16).zip(xs.chunks_exact(16)) {
            // SAFETY: AVX-512 F is available (checked); 64 bytes each way, unaligned.
            unsafe {
                let v = _mm512_loadu_si512(x.as_ptr().cast());
                let v = _mm512_add_epi32(v, _mm512_set1_epi32(*off));
                let r = Small16::new(p).apply(v);
                _mm512_storeu_si512(o.as_mut_ptr().cast(), r);
            }
        }
        out
    }

    specialised_matches_portable!(
        /// The 32-bit split form of an ADD input's rescale (`small_params`, `Small16`)
        /// against TFLM's formula, on every int8 input of each case.
        avx512_small_rescale_matches_portable {
            seed: 68,
            cases: 3000,
            generate: small_case,
            portable: |k: &SmallK| small_run(k, true),
            specialised: |k: &SmallK| small_run(k, false),
        }
    );

    /// Precomputed epilogue constants against the portable epilogue.
    fn pre_run(e: &Epi, portable: bool) -> Vec<u8> {
        let mut out = std::vec![0xA5u8; e.n];
        let soa = Soa::new(&e.soa, e.n);
        if portable || skip() {
            requant_soa_portable(&e.acc, &soa, e.clamp, &mut out);
            return out;
        }
        let pre = soa_pre8(&soa, e.n);
        let done = requant_pre(&e.acc, &pre, e.clamp, &mut out);
        assert_eq!(done, 8 * (e.n / 8));
        requant_soa_portable(&e.acc[done..], &soa.from(done), e.clamp, &mut out[done..]);
        out
    }

    specialised_matches_portable!(
        /// The epilogue on precomputed constants (rounding constants per channel).
        avx2_requant_pre_matches_portable {
            seed: 49,
            cases: 3000,
            generate: epi_case,
            portable: |e: &Epi| pre_run(e, true),
            specialised: |e: &Epi| pre_run(e, false),
        }
    );

    /// Operands of [`add_same_shape`]: parameters anywhere in `check_add`'s range
    /// (offsets `-zero_point`, left shift 0..=23, multipliers up to `i32::MAX`, shifts
    /// -31..=0, 0 often: TFLite gives it to the input of the larger scale), ordered int8
    /// clamps, lengths with tails.
    struct AddK {
        p: edgeflow_format::graph::AddParams,
        a: Vec<u8>,
        b: Vec<u8>,
    }

    fn add_k(r: &mut Rng) -> Option<AddK> {
        use edgeflow_format::graph::{AddParams, Clamp, Multiplier};
        let mult = |r: &mut Rng| Multiplier {
            multiplier: match r.range(0, 5) {
                0 => i32::MAX,
                1 => 1 << 30,
                2 => r.range(0, 3) as i32,
                _ => r.range(0, i32::MAX as i64) as i32,
            },
            shift: if r.range(0, 3) == 0 {
                0
            } else {
                r.range(-31, -1) as i32
            },
        };
        let (x, y) = (r.range(-128, 127) as i32, r.range(-128, 127) as i32);
        let p = AddParams {
            left_shift: if r.bool() { 20 } else { r.range(0, 23) as i32 },
            input1_offset: r.range(-127, 128) as i32,
            input2_offset: r.range(-127, 128) as i32,
            output_offset: r.range(-128, 127) as i32,
            input1: mult(r),
            input2: mult(r),
            output: mult(r),
            clamp: Clamp {
                min_q: x.min(y),
                max_q: x.max(y),
                ..Clamp::NONE
            },
        };
        let n = if r.bool() {
            r.usize(0, 70)
        } else {
            r.usize(0, 1200)
        };
        Some(AddK {
            p,
            a: bytes(r, n),
            b: bytes(r, n),
        })
    }

    /// TFLM's `AddFunc` per element, from `fixedpoint` (as `elementwise::add_fns`).
    fn add_element(p: &edgeflow_format::graph::AddParams, x: u8, y: u8) -> u8 {
        use crate::fixedpoint::multiply_by_quantized_multiplier_smaller_than_one_exp as mq;
        let pre = |v: u8, off: i32, m: &edgeflow_format::graph::Multiplier| {
            let shifted = off
                .wrapping_add(v as i8 as i32)
                .wrapping_shl(p.left_shift as u32);
            mq(shifted, m.multiplier, m.shift)
        };
        let s = pre(x, p.input1_offset, &p.input1).wrapping_add(pre(y, p.input2_offset, &p.input2));
        let raw = mq(s, p.output.multiplier, p.output.shift).wrapping_add(p.output_offset);
        raw.clamp(p.clamp.min_q, p.clamp.max_q) as i8 as u8
    }

    fn add_run(k: &AddK, portable: bool) -> Vec<u8> {
        let n = k.a.len();
        let mut out = std::vec![0xA5u8; n];
        let mut done = 0;
        if !portable {
            if avx512f_available() {
                done = add_same_shape(&k.p, &k.a, &k.b, &mut out);
                assert_eq!(done, 16 * (n / 16));
            } else {
                std::println!("SKIPPED: this CPU has no AVX-512 F");
            }
        }
        for ((o, &x), &y) in out.iter_mut().zip(&k.a).zip(&k.b).skip(done) {
            *o = add_element(&k.p, x, y);
        }
        out
    }

    specialised_matches_portable!(
        /// int8 ADD of same-shape tensors on AVX-512 F against TFLM's element formula.
        avx512_add_same_shape_matches_portable {
            seed: 67,
            cases: 2000,
            generate: add_k,
            portable: |k: &AddK| add_run(k, true),
            specialised: |k: &AddK| add_run(k, false),
        }
    );
}
