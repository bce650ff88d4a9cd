//! The block kernels: plain functions over row-major `rows × cols` `f32` matrices.
//!
//! Every kernel is written with a fixed operation order, plain `+ - * /` (Rust never
//! fuses them into FMA) and `libm` for everything else, so the same inputs give the same
//! bits on x86_64, Cortex-M4F (hardware single precision) and Cortex-M3 (soft float).
//! Coefficient tables are designed in `f64` (as the reference implementations do) and
//! rounded once to `f32`.
//!
//! Kernels never panic: they iterate with `zip`/`chunks` over the slices they are given
//! and simply do less work when a slice is shorter than the shape says (the pipeline
//! validation makes that unreachable).

use crate::desc::{F32s, LogBase, MelNorm, MelScale, Reduce, Stat, WindowKind};
use microfft::Complex32;

/// Largest FFT size (`microfft` with its `size-4096` twiddle table).
pub const MAX_FFT: u32 = 4096;

/// `y = x * scale + offset`.
pub fn scale(src: &[f32], dst: &mut [f32], scale: f32, offset: f32) {
    for (d, &x) in dst.iter_mut().zip(src) {
        *d = x * scale + offset;
    }
}

/// Per row `y = (x - mean[r]) / std[r]`.
pub fn zscore(src: &[f32], dst: &mut [f32], cols: usize, mean: &F32s<'_>, std: &F32s<'_>) {
    for (r, (d, s)) in dst
        .chunks_mut(cols.max(1))
        .zip(src.chunks(cols.max(1)))
        .enumerate()
    {
        let (m, sd) = (mean.channel(r), std.channel(r));
        for (y, &x) in d.iter_mut().zip(s) {
            *y = (x - m) / sd;
        }
    }
}

/// Per row `y = (x - min[r]) / (max[r] - min[r])`.
pub fn min_max(src: &[f32], dst: &mut [f32], cols: usize, min: &F32s<'_>, max: &F32s<'_>) {
    for (r, (d, s)) in dst
        .chunks_mut(cols.max(1))
        .zip(src.chunks(cols.max(1)))
        .enumerate()
    {
        let lo = min.channel(r);
        let range = max.channel(r) - lo;
        for (y, &x) in d.iter_mut().zip(s) {
            *y = (x - lo) / range;
        }
    }
}

/// `y = min(max(x, lo), hi)`; NaN stays NaN.
#[inline]
pub fn clip1(x: f32, lo: f32, hi: f32) -> f32 {
    if x < lo {
        lo
    } else if x > hi {
        hi
    } else {
        x
    }
}

/// [`clip1`] over a slice.
pub fn clip(src: &[f32], dst: &mut [f32], lo: f32, hi: f32) {
    for (d, &x) in dst.iter_mut().zip(src) {
        *d = clip1(x, lo, hi);
    }
}

/// Per row `y[t] = x[t] - coef * x[t-1]`, `x[-1] = 0`.
pub fn pre_emphasis(src: &[f32], dst: &mut [f32], cols: usize, coef: f32) {
    for (d, s) in dst.chunks_mut(cols.max(1)).zip(src.chunks(cols.max(1))) {
        let mut prev = 0.0f32;
        for (y, &x) in d.iter_mut().zip(s) {
            *y = x - coef * prev;
            prev = x;
        }
    }
}

/// One step of cascaded biquads (direct form II transposed). `sos` holds 6 values per
/// section (`b0 b1 b2 a0 a1 a2`, `a0 = 1`), `state` 2 per section.
#[inline]
pub fn iir_step(x: f32, sos: &[f32], state: &mut [f32]) -> f32 {
    let mut v = x;
    for (c, z) in sos.chunks_exact(6).zip(state.chunks_exact_mut(2)) {
        let y = c[0] * v + z[0];
        z[0] = c[1] * v - c[4] * y + z[1];
        z[1] = c[2] * v - c[5] * y;
        v = y;
    }
    v
}

/// Filters each row from zero state; `state` needs `2 * sections` words.
pub fn iir(src: &[f32], dst: &mut [f32], cols: usize, sos: &[f32], state: &mut [f32]) {
    for (d, s) in dst.chunks_mut(cols.max(1)).zip(src.chunks(cols.max(1))) {
        state.iter_mut().for_each(|z| *z = 0.0);
        for (y, &x) in d.iter_mut().zip(s) {
            *y = iir_step(x, sos, state);
        }
    }
}

/// Statistics of each row: `dst` row `r` gets one value per entry of `stats`.
pub fn stats(src: &[f32], dst: &mut [f32], cols: usize, stats: &[Stat]) {
    let k = stats.len().max(1);
    for (d, row) in dst.chunks_mut(k).zip(src.chunks(cols.max(1))) {
        let m = Moments::of(row);
        for (y, s) in d.iter_mut().zip(stats) {
            *y = m.get(*s);
        }
    }
}

/// Moments of one row, computed in two passes (sum, then central powers).
struct Moments {
    mean: f32,
    min: f32,
    max: f32,
    rms: f32,
    m2: f32,
    m3: f32,
    m4: f32,
    zcr: f32,
}

impl Moments {
    fn of(x: &[f32]) -> Self {
        let n = x.len().max(1) as f32;
        let mut sum = 0.0f32;
        let mut sq = 0.0f32;
        let mut min = f32::INFINITY;
        let mut max = f32::NEG_INFINITY;
        let mut crossings = 0u32;
        let mut prev_neg = x.first().is_some_and(|&v| v < 0.0);
        for &v in x {
            sum += v;
            sq += v * v;
            if v < min {
                min = v;
            }
            if v > max {
                max = v;
            }
            let neg = v < 0.0;
            if neg != prev_neg {
                crossings += 1;
            }
            prev_neg = neg;
        }
        let mean = sum / n;
        let (mut m2, mut m3, mut m4) = (0.0f32, 0.0f32, 0.0f32);
        for &v in x {
            let d = v - mean;
            let d2 = d * d;
            m2 += d2;
            m3 += d2 * d;
            m4 += d2 * d2;
        }
        Moments {
            mean,
            min,
            max,
            rms: libm::sqrtf(sq / n),
            m2: m2 / n,
            m3: m3 / n,
            m4: m4 / n,
            zcr: if x.len() > 1 {
                crossings as f32 / (x.len() - 1) as f32
            } else {
                0.0
            },
        }
    }

    fn get(&self, s: Stat) -> f32 {
        match s {
            Stat::Mean => self.mean,
            Stat::Min => self.min,
            Stat::Max => self.max,
            Stat::Rms => self.rms,
            Stat::Std => libm::sqrtf(self.m2),
            Stat::Skewness => {
                if self.m2 > 0.0 {
                    self.m3 / (self.m2 * libm::sqrtf(self.m2))
                } else {
                    0.0
                }
            }
            Stat::Kurtosis => {
                if self.m2 > 0.0 {
                    self.m4 / (self.m2 * self.m2) - 3.0
                } else {
                    0.0
                }
            }
            Stat::ZeroCrossingRate => self.zcr,
            Stat::PeakToPeak => self.max - self.min,
        }
    }
}

/// Fills `table` with a window of `table.len()` points.
pub fn init_window(table: &mut [f32], kind: WindowKind, periodic: bool) {
    let n = table.len();
    let denom = if periodic { n } else { n.saturating_sub(1) }.max(1) as f64;
    let (a, b) = match kind {
        WindowKind::Hann => (0.5f64, 0.5f64),
        WindowKind::Hamming => (0.54f64, 0.46f64),
    };
    for (i, w) in table.iter_mut().enumerate() {
        let phase = 2.0 * core::f64::consts::PI * i as f64 / denom;
        *w = (a - b * libm::cos(phase)) as f32;
    }
}

/// Multiplies every row by `table` (one row long).
pub fn window(src: &[f32], dst: &mut [f32], table: &[f32]) {
    let cols = table.len().max(1);
    for (d, s) in dst.chunks_mut(cols).zip(src.chunks(cols)) {
        for ((y, &x), &w) in d.iter_mut().zip(s).zip(table) {
            *y = x * w;
        }
    }
}

/// In-place real FFT of `buf` (length a power of two, 4..=[`MAX_FFT`]); `None` for other
/// lengths. Output layout as `microfft`: bin 0 holds DC in `re` and Nyquist in `im`.
pub fn rfft(buf: &mut [f32]) -> Option<&mut [Complex32]> {
    macro_rules! go {
        ($f:ident, $n:literal) => {{
            let a: &mut [f32; $n] = buf.try_into().ok()?;
            Some(&mut microfft::real::$f(a)[..])
        }};
    }
    match buf.len() {
        4 => go!(rfft_4, 4),
        8 => go!(rfft_8, 8),
        16 => go!(rfft_16, 16),
        32 => go!(rfft_32, 32),
        64 => go!(rfft_64, 64),
        128 => go!(rfft_128, 128),
        256 => go!(rfft_256, 256),
        512 => go!(rfft_512, 512),
        1024 => go!(rfft_1024, 1024),
        2048 => go!(rfft_2048, 2048),
        4096 => go!(rfft_4096, 4096),
        _ => None,
    }
}

/// Magnitude or power spectrum of each row (zero-padded to `n_fft`): `n_fft / 2 + 1` bins
/// per row into `dst`. `scratch` needs `n_fft` words.
pub fn spectrum(
    src: &[f32],
    dst: &mut [f32],
    cols: usize,
    n_fft: usize,
    power: bool,
    scratch: &mut [f32],
) {
    let bins = n_fft / 2 + 1;
    let Some(buf) = scratch.get_mut(..n_fft) else {
        return;
    };
    for (d, s) in dst.chunks_mut(bins).zip(src.chunks(cols.max(1))) {
        let n = s.len().min(n_fft);
        let (head, tail) = buf.split_at_mut(n);
        head.copy_from_slice(&s[..n]);
        tail.iter_mut().for_each(|v| *v = 0.0);
        spectrum_row(buf, d, power);
    }
}

/// The spectrum of one row already in `buf` (`n_fft` values, zero-padded; transformed in
/// place) into `d` (`n_fft / 2 + 1` values): the second half of [`spectrum`], used alone
/// when the window is applied while copying out of the ring buffer.
pub fn spectrum_row(buf: &mut [f32], d: &mut [f32], power: bool) {
    let bins = buf.len() / 2 + 1;
    let value = |re: f32, im: f32| {
        let p = re * re + im * im;
        if power {
            p
        } else {
            libm::sqrtf(p)
        }
    };
    let Some(x) = rfft(buf) else {
        return;
    };
    let (dc, nyquist) = x.first().map_or((0.0, 0.0), |c| (c.re, c.im));
    if let Some(first) = d.first_mut() {
        *first = value(dc, 0.0);
    }
    for (y, c) in d.iter_mut().zip(x.iter()).skip(1) {
        *y = value(c.re, c.im);
    }
    if let Some(last) = d.get_mut(bins - 1) {
        *last = value(nyquist, 0.0);
    }
}

/// `ln(max(x, floor))` or `10 log10(max(x, floor))`.
pub fn log(src: &[f32], dst: &mut [f32], base: LogBase, floor: f32) {
    for (d, &x) in dst.iter_mut().zip(src) {
        let v = if x > floor { x } else { floor };
        *d = match base {
            LogBase::Ln => libm::logf(v),
            LogBase::Db => 10.0 * libm::log10f(v),
        };
    }
}

/// Band powers of each spectrum row (`bins` values; squared first when `magnitude`).
pub fn band_power(
    src: &[f32],
    dst: &mut [f32],
    bins: usize,
    bin_hz: f32,
    edges: &F32s<'_>,
    magnitude: bool,
) {
    let bands = edges.len().saturating_sub(1).max(1);
    for (d, s) in dst.chunks_mut(bands).zip(src.chunks(bins.max(1))) {
        d.iter_mut().for_each(|v| *v = 0.0);
        let mut band = 0usize;
        let (mut lo, mut hi) = (edges.get(0).unwrap_or(0.0), edges.get(1).unwrap_or(0.0));
        for (k, &x) in s.iter().enumerate() {
            let f = k as f32 * bin_hz;
            while f >= hi && band < bands {
                band += 1;
                lo = hi;
                hi = edges.get(band + 1).unwrap_or(f32::INFINITY);
            }
            if band >= bands {
                break;
            }
            if f >= lo {
                if let Some(y) = d.get_mut(band) {
                    *y += if magnitude { x * x } else { x };
                }
            }
        }
    }
}

fn hz_to_mel(f: f64, scale: MelScale) -> f64 {
    match scale {
        MelScale::Htk => 2595.0 * libm::log10(1.0 + f / 700.0),
        MelScale::Slaney => {
            let f_sp = 200.0 / 3.0;
            let min_log_hz = 1000.0;
            let min_log_mel = min_log_hz / f_sp;
            let logstep = libm::log(6.4) / 27.0;
            if f >= min_log_hz {
                min_log_mel + libm::log(f / min_log_hz) / logstep
            } else {
                f / f_sp
            }
        }
    }
}

fn mel_to_hz(m: f64, scale: MelScale) -> f64 {
    match scale {
        MelScale::Htk => 700.0 * (libm::pow(10.0, m / 2595.0) - 1.0),
        MelScale::Slaney => {
            let f_sp = 200.0 / 3.0;
            let min_log_hz = 1000.0;
            let min_log_mel = min_log_hz / f_sp;
            let logstep = libm::log(6.4) / 27.0;
            if m >= min_log_mel {
                min_log_hz * libm::exp(logstep * (m - min_log_mel))
            } else {
                f_sp * m
            }
        }
    }
}

/// Words of the sparse mel table: `(start, len)` per band, then at most two weights per
/// bin (a bin lies inside at most two neighbouring triangles).
pub const fn mel_table_len(bands: usize, bins: usize) -> usize {
    2 * bands + 2 * bins
}

/// Mel band edge `i` of `bands + 2` (Hz), between the mels `lo` and `hi` of `fmin` and
/// `fmax`.
fn mel_edge(i: usize, bands: usize, lo: f64, hi: f64, scale: MelScale) -> f64 {
    let m = if i == bands + 1 {
        hi
    } else {
        lo + (hi - lo) * i as f64 / (bands + 1) as f64
    };
    mel_to_hz(m, scale)
}

/// Designs the mel filterbank (as `librosa.filters.mel`) into `table`
/// ([`mel_table_len`] words): for band `i` the triangle rising from edge `i` to `i+1` and
/// falling to `i+2`, sampled at bin frequencies `k * rate / n_fft`.
#[allow(clippy::too_many_arguments)]
pub fn init_mel(
    table: &mut [f32],
    bands: usize,
    n_fft: usize,
    rate: f32,
    fmin: f32,
    fmax: f32,
    scale: MelScale,
    norm: MelNorm,
) {
    let bins = n_fft / 2 + 1;
    let (head, weights) = table.split_at_mut((2 * bands).min(table.len()));
    let mut used = 0usize;
    let bin_hz = rate as f64 / n_fft as f64;
    let (mel_lo, mel_hi) = (hz_to_mel(fmin as f64, scale), hz_to_mel(fmax as f64, scale));
    // Each edge is computed once (band `i` spans edges `i..=i+2`): the same values as
    // computing them per band, at a third of the soft-double cost on an FPU-less or
    // single-precision core.
    let mut lo = mel_edge(0, bands, mel_lo, mel_hi, scale);
    let mut mid = mel_edge(1, bands, mel_lo, mel_hi, scale);
    for (i, se) in head.chunks_exact_mut(2).enumerate() {
        let hi = mel_edge(i + 2, bands, mel_lo, mel_hi, scale);
        let enorm = match norm {
            MelNorm::Slaney => 2.0 / (hi - lo),
            MelNorm::None => 1.0,
        };
        let start = used;
        let mut first = None;
        for k in 0..bins {
            let f = k as f64 * bin_hz;
            // `f` grows with `k`: no later bin lies below `hi` either.
            if f >= hi {
                break;
            }
            if f <= lo {
                continue;
            }
            let rise = (f - lo) / (mid - lo);
            let fall = (hi - f) / (hi - mid);
            let w = if rise < fall { rise } else { fall };
            if w <= 0.0 {
                continue;
            }
            let Some(slot) = weights.get_mut(used) else {
                break;
            };
            // Bins between the first and this one with zero weight cannot occur: the
            // triangle is positive on the whole open interval (lo, hi).
            first.get_or_insert(k);
            *slot = (w * enorm) as f32;
            used += 1;
        }
        se[0] = first.unwrap_or(0) as f32;
        se[1] = (used - start) as f32;
        lo = mid;
        mid = hi;
    }
}

/// Mel energies of each spectrum row of `bins` values, from a table made by [`init_mel`].
pub fn mel(src: &[f32], dst: &mut [f32], bins: usize, bands: usize, table: &[f32]) {
    let (head, weights) = table.split_at((2 * bands).min(table.len()));
    for (d, s) in dst.chunks_mut(bands.max(1)).zip(src.chunks(bins.max(1))) {
        let mut off = 0usize;
        for (y, se) in d.iter_mut().zip(head.chunks_exact(2)) {
            let (start, len) = (se[0] as usize, se[1] as usize);
            // Saturating: a table read from an artifact may hold any finite values.
            let w = weights.get(off..off.saturating_add(len)).unwrap_or(&[]);
            let x = s.get(start..start.saturating_add(len)).unwrap_or(&[]);
            *y = dot(w, x);
            off = off.saturating_add(len);
        }
    }
}

/// `sum_i a[i] * b[i]` over the shorter slice, accumulated strictly left to right from
/// `0.0` (unrolled by four without reassociating, so the bits do not depend on the target).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (a.get(..n).unwrap_or(&[]), b.get(..n).unwrap_or(&[]));
    let mut acc = 0.0f32;
    let (a4, b4) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ar, br) = (a4.remainder(), b4.remainder());
    for (p, q) in a4.zip(b4) {
        acc += p[0] * q[0];
        acc += p[1] * q[1];
        acc += p[2] * q[2];
        acc += p[3] * q[3];
    }
    for (&p, &q) in ar.iter().zip(br) {
        acc += p * q;
    }
    acc
}

/// Orthonormal DCT-II matrix (first `k` rows of `n`), rows scaled by the lifter.
pub fn init_dct(table: &mut [f32], k: usize, n: usize, lifter: f32) {
    let nf = n.max(1) as f64;
    for (i, row) in table.chunks_exact_mut(n.max(1)).take(k).enumerate() {
        let norm = if i == 0 {
            libm::sqrt(1.0 / nf)
        } else {
            libm::sqrt(2.0 / nf)
        };
        let lift = if lifter > 0.0 {
            let l = lifter as f64;
            1.0 + (l / 2.0) * libm::sin(core::f64::consts::PI * (i + 1) as f64 / l)
        } else {
            1.0
        };
        for (j, c) in row.iter_mut().enumerate() {
            let phase = core::f64::consts::PI * i as f64 * (2 * j + 1) as f64 / (2.0 * nf);
            *c = (libm::cos(phase) * norm * lift) as f32;
        }
    }
}

/// Matrix-vector product per row: `dst[r][i] = sum_j table[i][j] * src[r][j]`.
pub fn dct(src: &[f32], dst: &mut [f32], n: usize, k: usize, table: &[f32]) {
    for (d, s) in dst.chunks_mut(k.max(1)).zip(src.chunks(n.max(1))) {
        for (y, row) in d.iter_mut().zip(table.chunks_exact(n.max(1))) {
            let mut acc = 0.0f32;
            for (&a, &b) in row.iter().zip(s) {
                acc += a * b;
            }
            *y = acc;
        }
    }
}

/// One-hot encoding of integer-valued `src` (`rows × cols`), see [`crate::Block::OneHot`].
pub fn one_hot(src: &[f32], dst: &mut [f32], cols: usize, depth: usize, reduce: Reduce) {
    dst.iter_mut().for_each(|v| *v = 0.0);
    let out_cols = match reduce {
        Reduce::None => cols * depth,
        Reduce::Sum | Reduce::Max => depth,
    };
    for (d, s) in dst.chunks_mut(out_cols.max(1)).zip(src.chunks(cols.max(1))) {
        for (j, &x) in s.iter().enumerate() {
            if !(x >= 0.0 && x < depth as f32) || x != libm::truncf(x) {
                continue;
            }
            let id = x as usize;
            let slot = match reduce {
                Reduce::None => d.get_mut(j * depth + id),
                Reduce::Sum | Reduce::Max => d.get_mut(id),
            };
            if let Some(v) = slot {
                *v = match reduce {
                    Reduce::Sum => *v + 1.0,
                    Reduce::None | Reduce::Max => 1.0,
                };
            }
        }
    }
}

/// Number of boundaries `<= x` (binary search over ascending boundaries).
pub fn bucketize(src: &[f32], dst: &mut [f32], boundaries: &F32s<'_>) {
    let n = boundaries.len();
    for (d, &x) in dst.iter_mut().zip(src) {
        let (mut lo, mut hi) = (0usize, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if boundaries.get(mid).is_some_and(|b| b <= x) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        *d = lo as f32;
    }
}

/// 64-bit FNV-1a of `seed` (4 little-endian bytes) then `token`.
pub fn fnv1a64(seed: u32, token: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in seed.to_le_bytes().iter().chain(token.as_bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// TFLite's int8 quantization of one value: `round(x / scale) + zero_point`, rounding half
/// away from zero, saturated to `-128..=127` (NaN gives the zero point).
#[inline]
pub fn quantize(x: f32, scale: f32, zero_point: i32) -> i8 {
    let q = libm::roundf(x / scale);
    let q = if q.is_nan() {
        0
    } else if q > 1.0e9 {
        1_000_000_000
    } else if q < -1.0e9 {
        -1_000_000_000
    } else {
        q as i32
    };
    (q + zero_point).clamp(-128, 127) as i8
}
