//! TensorFlow's fixed-point audio front end ([`crate::Block::AudioFrontend`]), integer only.
//!
//! Computes what the `audio_microfrontend` op (and TFLite Micro's `micro_frontend`
//! library that micro_speech runs) computes, bit for bit: a Q12 Hann window, a 16-bit
//! fixed-point real FFT with kissfft's arithmetic (radix-4 then radix-2 stages, each input
//! scaled down by the radix with rounding, Q15 twiddles), the energy of each bin, a mel
//! filterbank accumulated in 64 bits with integer square roots, noise reduction, PCAN
//! gain control and a fixed-point natural log. The arithmetic (widths, rounding, where
//! values wrap) follows the reference so that the outputs are identical; the code is
//! edgeflow's own.
//!
//! # Storage
//!
//! Everything lives in the pipeline's `f32` workspace, as integer bit patterns
//! (`f32::from_bits`, never arithmetic on them):
//! - the coefficient tables (window, twiddles, filterbank, PCAN gain and log LUTs) are
//!   words holding values below 2^16 (finite `f32` bit patterns, so they travel in the
//!   artifact's `PipelineTables` section like every other table);
//! - the ring buffer holds the 16-bit samples (`u16` bits), converted when pushed;
//! - the state is one `u32` noise estimate per channel;
//! - the scratch holds `i16` pairs (FFT buffers) and `i32` energies.
//!
//! Tables read from an artifact are not trusted: every index taken from a table is
//! bounds-checked, so wrong tables give wrong features, never a panic.

use crate::desc::Frontend;
use crate::error::{At, Error};

/// Bits of the window coefficients (Q12).
const WINDOW_BITS: u32 = 12;
/// Bits of the filterbank weights (Q12).
const FILTERBANK_BITS: u32 = 12;
/// Bits of the noise-reduction coefficients (Q14).
const NOISE_BITS: u32 = 14;
/// PCAN signal-to-noise bits.
const PCAN_SNR_BITS: u32 = 12;
/// PCAN output bits.
const PCAN_OUTPUT_BITS: u32 = 6;
/// Intervals of the PCAN gain curve (one per bit of a `u32` noise estimate).
const WIDE_DYNAMIC_BITS: u32 = 32;
/// Entries of the PCAN gain LUT: two single points, then three per interval 2..=32.
const GAIN_LUT_LEN: usize = 4 * WIDE_DYNAMIC_BITS as usize - 3;
/// Log2 of the fixed-point log's unit (Q16).
const LOG_SCALE_BITS: u32 = 16;
/// Log2 of the number of log correction segments.
const LOG_SEGMENTS_BITS: u32 = 7;
/// Entries of the log correction LUT (129 points and a zero pad).
const LOG_LUT_LEN: usize = (1 << LOG_SEGMENTS_BITS) + 2;
/// `ln(2)` in Q16: the factor from log2 to natural log.
const LOG_COEFF: u64 = 45426;
/// Most channels.
pub(crate) const MAX_CHANNELS: u32 = 64;
/// Smallest window (the real FFT needs at least 8 points here).
const MIN_WINDOW: u32 = 5;
/// Words of the table header: start index, end index, PCAN shift, and the noise
/// reduction's even / odd smoothing and minimum remaining signal in Q14.
const HEADER: usize = 8;

/// Sizes fixed by the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Window length in samples.
    pub window: usize,
    /// FFT size: the smallest power of two not below the window.
    pub n_fft: usize,
    /// Filterbank channels.
    pub channels: usize,
}

/// Offsets of the table regions, in words.
#[derive(Clone, Copy, Debug)]
struct Tables {
    window: usize,
    twiddles: usize,
    super_twiddles: usize,
    freq_starts: usize,
    weight_starts: usize,
    widths: usize,
    weights: usize,
    unweights: usize,
    gain_lut: usize,
    log_lut: usize,
    total: usize,
}

impl Geometry {
    /// The sizes for a validated window length and channel count.
    pub fn new(window: u32, channels: u32) -> Self {
        Geometry {
            window: window as usize,
            n_fft: window.next_power_of_two().max(8) as usize,
            channels: channels.min(MAX_CHANNELS) as usize,
        }
    }

    fn spectrum(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// An upper bound on the filterbank weights: every bin belongs to at most one
    /// channel's rising edge, each channel pads by at most 1 (alignment) + 3 (block of 4),
    /// and one block of 4 zero weights may be shared by empty channels.
    fn weights_max(&self) -> usize {
        self.spectrum() + 4 * (self.channels + 1) + 4
    }

    fn tables(&self) -> Tables {
        let c1 = self.channels + 1;
        let window = HEADER;
        let twiddles = window + self.window;
        // The complex FFT of n_fft / 2 points: n_fft / 2 twiddles of two words.
        let super_twiddles = twiddles + self.n_fft;
        let freq_starts = super_twiddles + self.n_fft / 2;
        let weight_starts = freq_starts + c1;
        let widths = weight_starts + c1;
        let weights = widths + c1;
        let unweights = weights + self.weights_max();
        let gain_lut = unweights + self.weights_max();
        let log_lut = gain_lut + GAIN_LUT_LEN;
        Tables {
            window,
            twiddles,
            super_twiddles,
            freq_starts,
            weight_starts,
            widths,
            weights,
            unweights,
            gain_lut,
            log_lut,
            total: log_lut + LOG_LUT_LEN,
        }
    }

    /// Table words.
    pub fn table_len(&self) -> usize {
        self.tables().total
    }

    /// Scratch words: FFT input (`n_fft / 2` pairs), the complex FFT's output
    /// (`n_fft / 2`), the real FFT's output (`n_fft / 2 + 1`) and the energies.
    pub fn scratch_len(&self) -> usize {
        self.n_fft / 2 + self.n_fft / 2 + 2 * self.spectrum()
    }

    /// `log2(n_fft) - 1 - FILTERBANK_BITS / 2`: the log stage's input correction.
    fn correction_bits(&self) -> i32 {
        msb32(self.n_fft as u32) as i32 - 1 - (FILTERBANK_BITS / 2) as i32
    }
}

fn param(at: At, param: &'static str, reason: &'static str) -> Error {
    Error::Param { at, param, reason }
}

/// Checks the options against the signal (`window`, `stride` in samples, `rate` in Hz)
/// and returns the sizes. Errors name the parameter.
pub(crate) fn validate(
    at: At,
    fe: &Frontend,
    rate: f32,
    window: u32,
    stride: u32,
) -> Result<Geometry, Error> {
    if !((1.0..=1_000_000.0).contains(&rate) && libm::truncf(rate) == rate) {
        return Err(param(
            at,
            "input",
            "needs an integer `rate_hz` from 1 to 1000000 (the op takes the rate in whole Hz)",
        ));
    }
    if !(MIN_WINDOW..=crate::kernels::MAX_FFT).contains(&window) {
        return Err(param(at, "input", "needs a `window` of 5 to 4096 samples"));
    }
    if stride > window {
        return Err(param(
            at,
            "input",
            "needs `stride` not above `window` (the op's step must not exceed its window)",
        ));
    }
    if fe.channels == 0 || fe.channels > MAX_CHANNELS {
        return Err(Error::TooLarge {
            at,
            param: "channels",
            value: fe.channels,
            max: MAX_CHANNELS,
        });
    }
    let g = Geometry::new(window, fe.channels);
    let n_fft = g.n_fft;
    let lo = fe.lower_band_limit;
    let hi = fe.upper_band_limit;
    if !(lo.is_finite() && lo >= 0.0) {
        return Err(param(
            at,
            "lower_band_limit",
            "must be a finite number >= 0",
        ));
    }
    // The op fails when the last channel reaches the Nyquist bin; keeping the upper
    // limit one bin below it makes that impossible.
    let bin = rate / n_fft as f32;
    if !(hi.is_finite() && hi > lo && hi <= rate / 2.0 - bin) {
        return Err(param(
            at,
            "upper_band_limit",
            "must be above `lower_band_limit` and at most rate / 2 - rate / n_fft",
        ));
    }
    if fe.smoothing_bits > 16 {
        return Err(param(at, "smoothing_bits", "must be 0 to 16"));
    }
    for (name, v) in [
        ("even_smoothing", fe.even_smoothing),
        ("odd_smoothing", fe.odd_smoothing),
        ("min_signal_remaining", fe.min_signal_remaining),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(param(at, name, "must be between 0 and 1"));
        }
    }
    if fe.pcan {
        if !(fe.pcan_strength.is_finite() && fe.pcan_strength >= 0.0) {
            return Err(param(at, "pcan_strength", "must be a finite number >= 0"));
        }
        if !(fe.pcan_offset.is_finite() && fe.pcan_offset > 0.0) {
            return Err(param(at, "pcan_offset", "must be a positive finite number"));
        }
        let corr = g.correction_bits();
        let snr_shift = fe.gain_bits as i32 - corr - PCAN_SNR_BITS as i32;
        if fe.gain_bits > 31 || !(0..=31).contains(&snr_shift) {
            return Err(param(
                at,
                "gain_bits",
                "must be at most 31 and give a PCAN shift gain_bits - (log2(n_fft) - 7) - 12 of 0 to 31",
            ));
        }
        let input_bits = fe.smoothing_bits as i32 - corr;
        if !(0..=31).contains(&input_bits) {
            return Err(param(
                at,
                "smoothing_bits",
                "with PCAN must be at least log2(n_fft) - 7",
            ));
        }
    }
    if fe.scale_shift > 15 {
        return Err(param(at, "scale_shift", "must be 0 to 15"));
    }
    if fe.out_scale == 0 {
        return Err(param(at, "out_scale", "must be at least 1"));
    }
    Ok(g)
}

#[inline]
fn msb32(x: u32) -> u32 {
    32 - x.leading_zeros()
}

#[cfg(test)]
fn msb64(x: u64) -> u32 {
    64 - x.leading_zeros()
}

/// Stores a value that fits 16 bits (signed values as their two's complement `u16`).
#[inline]
fn word16(v: i32) -> f32 {
    f32::from_bits(v as u16 as u32)
}

/// `1127 ln(1 + f / 700)` in double, rounded to single (the reference's mel scale).
fn freq_to_mel(f: f32) -> f32 {
    (1127.0 * libm::log1p(f as f64 / 700.0)) as f32
}

/// Designs every table into `t` (at least [`Geometry::table_len`] words). The floating
/// point follows the reference's mix of `float` and `double` so that the rounded integer
/// tables are the same; `libm` makes them the same on every target.
///
/// Not inlined: it runs once per model and its ~1.8 KB of per-channel arrays would
/// otherwise join the frame of whatever inlines the runtime's start (the device app's
/// main loop), for the life of the program.
#[inline(never)]
pub(crate) fn init_tables(t: &mut [f32], fe: &Frontend, rate: f32, g: &Geometry) {
    let l = g.tables();
    let Some(t) = t.get_mut(..l.total) else {
        return;
    };
    t.iter_mut().for_each(|v| *v = 0.0);

    // Window: periodic-offset Hann `0.5 - 0.5 cos(2 pi (i + 0.5) / N)` in Q12.
    let arg = (core::f64::consts::PI * 2.0 / (g.window as f32) as f64) as f32;
    for (i, w) in t[l.window..l.window + g.window].iter_mut().enumerate() {
        let v = (0.5 - 0.5 * libm::cos(arg as f64 * (i as f64 + 0.5))) as f32;
        *w = word16(libm::floor((v * (1u32 << WINDOW_BITS) as f32) as f64 + 0.5) as i32);
    }

    // Twiddles of the complex FFT of n = n_fft / 2 points and the real FFT's super
    // twiddles, Q15: floor(0.5 + 32767 cos/sin(phase)).
    let n = g.n_fft / 2;
    let q15 = |x: f64| libm::floor(0.5 + 32767.0 * x) as i32;
    for i in 0..n {
        let phase = -2.0 * core::f64::consts::PI * i as f64 / n as f64;
        t[l.twiddles + 2 * i] = word16(q15(libm::cos(phase)));
        t[l.twiddles + 2 * i + 1] = word16(q15(libm::sin(phase)));
    }
    for i in 0..n / 2 {
        let phase = -core::f64::consts::PI * ((i + 1) as f64 / n as f64 + 0.5);
        t[l.super_twiddles + 2 * i] = word16(q15(libm::cos(phase)));
        t[l.super_twiddles + 2 * i + 1] = word16(q15(libm::sin(phase)));
    }

    // Mel filterbank: channel edges, aligned and padded starts, Q12 weights.
    let c1 = g.channels + 1;
    let spectrum = g.spectrum();
    let mel_low = freq_to_mel(fe.lower_band_limit);
    let mel_hi = freq_to_mel(fe.upper_band_limit);
    let spacing = (mel_hi - mel_low) / c1 as f32;
    let mut center = [0.0f32; MAX_CHANNELS as usize + 1];
    for (i, c) in center.iter_mut().take(c1).enumerate() {
        *c = mel_low + spacing * (i + 1) as f32;
    }
    let hz_per_bin = (0.5 * rate as f64 / ((spectrum as f32 - 1.0) as f64)) as f32;
    let start_index = (1.5 + (fe.lower_band_limit / hz_per_bin) as f64) as i32;
    let mut actual_start = [0i32; MAX_CHANNELS as usize + 1];
    let mut actual_width = [0i32; MAX_CHANNELS as usize + 1];
    let mut freq_starts = [0i32; MAX_CHANNELS as usize + 1];
    let mut weight_starts = [0i32; MAX_CHANNELS as usize + 1];
    let mut widths = [0i32; MAX_CHANNELS as usize + 1];
    let mut chan_start = start_index;
    let mut weight_index = 0i32;
    let mut needs_zeros = false;
    for chan in 0..c1 {
        let mut f = chan_start;
        // Bounded: validation keeps the upper limit below the last bin.
        while f <= spectrum as i32 + 1 && freq_to_mel(f as f32 * hz_per_bin) <= center[chan] {
            f += 1;
        }
        let width = f - chan_start;
        actual_start[chan] = chan_start;
        actual_width[chan] = width;
        if width == 0 {
            freq_starts[chan] = 0;
            weight_starts[chan] = 0;
            widths[chan] = 4;
            if !needs_zeros {
                needs_zeros = true;
                for ws in weight_starts.iter_mut().take(chan) {
                    *ws += 4;
                }
                weight_index += 4;
            }
        } else {
            // Starts aligned to 2 bins (4 bytes), widths padded to blocks of 4.
            let aligned = (chan_start / 2) * 2;
            let aligned_width = chan_start - aligned + width;
            let padded = ((aligned_width - 1) / 4 + 1) * 4;
            freq_starts[chan] = aligned;
            weight_starts[chan] = weight_index;
            widths[chan] = padded;
            weight_index += padded;
        }
        chan_start = f;
    }
    let mut end_index = 0i32;
    let wmax = g.weights_max() as i32;
    for chan in 0..c1 {
        let mut f = actual_start[chan];
        let offset = f - freq_starts[chan];
        let denom = if chan == 0 { mel_low } else { center[chan - 1] };
        for j in 0..actual_width[chan] {
            let w = (center[chan] - freq_to_mel(f as f32 * hz_per_bin)) / (center[chan] - denom);
            let k = weight_starts[chan] + offset + j;
            if (0..wmax).contains(&k) {
                let k = k as usize;
                let q = libm::floor((w * (1u32 << FILTERBANK_BITS) as f32) as f64 + 0.5);
                let uq = libm::floor((1.0 - w as f64) * (1u32 << FILTERBANK_BITS) as f64 + 0.5);
                t[l.weights + k] = word16(q as i32);
                t[l.unweights + k] = word16(uq as i32);
            }
            f += 1;
        }
        end_index = end_index.max(f);
    }
    for chan in 0..c1 {
        t[l.freq_starts + chan] = word16(freq_starts[chan]);
        t[l.weight_starts + chan] = word16(weight_starts[chan]);
        t[l.widths + chan] = word16(widths[chan]);
    }
    t[0] = word16(start_index.clamp(0, spectrum as i32));
    t[1] = word16(end_index.clamp(0, spectrum as i32));
    // Q14 as the reference converts them: float product, truncated to 16 bits.
    let q14 = |v: f32| (v * (1u32 << NOISE_BITS) as f32) as u16 as i32;
    t[3] = word16(q14(fe.even_smoothing));
    t[4] = word16(q14(fe.odd_smoothing));
    t[5] = word16(q14(fe.min_signal_remaining));

    // PCAN gain curve: piecewise quadratic over each power-of-two interval of the noise
    // estimate, from `2^gain_bits (x / 2^input_bits + offset)^-strength`.
    if fe.pcan {
        let corr = g.correction_bits();
        t[2] = word16(fe.gain_bits as i32 - corr - PCAN_SNR_BITS as i32);
        let input_bits = (fe.smoothing_bits as i32 - corr).clamp(0, 31) as u32;
        let gain = |x: u32| -> i32 {
            let xf = x as f32 / (1u32 << input_bits) as f32;
            let g = (1u32 << fe.gain_bits.min(31)) as f32
                * libm::powf(xf + fe.pcan_offset, -fe.pcan_strength);
            if g > 32767.0 {
                32767
            } else {
                (g + 0.5) as i16 as i32
            }
        };
        let lut = &mut t[l.gain_lut..l.gain_lut + GAIN_LUT_LEN];
        lut[0] = word16(gain(0));
        lut[1] = word16(gain(1));
        for interval in 2..=WIDE_DYNAMIC_BITS {
            let x0 = 1u32 << (interval - 1);
            let x1 = x0 + (x0 >> 1);
            let x2 = if interval == WIDE_DYNAMIC_BITS {
                x0 + (x0 - 1)
            } else {
                2 * x0
            };
            let (y0, y1, y2) = (gain(x0), gain(x1), gain(x2));
            let diff1 = y1 - y0;
            let diff2 = y2 - y0;
            let a1 = 4 * diff1 - diff2;
            let a2 = diff2 - a1;
            let base = 4 * interval as usize - 6;
            lut[base] = word16(y0);
            lut[base + 1] = word16(a1);
            lut[base + 2] = word16(a2);
        }
    }

    // Log correction: round(2^16 (log2(1 + i/128) - i/128)) for i in 0..=128, then 0.
    for (i, v) in t[l.log_lut..l.log_lut + LOG_LUT_LEN - 1]
        .iter_mut()
        .enumerate()
    {
        let x = i as f64 / (1u32 << LOG_SEGMENTS_BITS) as f64;
        let c = (libm::log2(1.0 + x) - x) * (1u32 << LOG_SCALE_BITS) as f64;
        *v = word16(libm::floor(c + 0.5) as i32);
    }
}

/// One complex value of the 16-bit FFT.
type Cpx = [i16; 2];

/// `(x + 2^14) >> 15`, truncated to 16 bits (kissfft's `sround`).
#[inline(always)]
fn sround(x: i32) -> i16 {
    (x.wrapping_add(1 << 14) >> 15) as i16
}

/// Complex product with Q15 rounding.
#[inline(always)]
fn cmul(a: Cpx, b: Cpx) -> Cpx {
    let (ar, ai, br, bi) = (a[0] as i32, a[1] as i32, b[0] as i32, b[1] as i32);
    [
        sround((ar * br).wrapping_sub(ai * bi)),
        sround((ar * bi).wrapping_add(ai * br)),
    ]
}

/// Divides by the radix with rounding: `x * (32767 / k)` in Q15.
#[inline(always)]
fn fixdiv(c: Cpx, k: i32) -> Cpx {
    let s = 32767 / k;
    [sround(c[0] as i32 * s), sround(c[1] as i32 * s)]
}

#[inline(always)]
fn cadd(a: Cpx, b: Cpx) -> Cpx {
    [a[0].wrapping_add(b[0]), a[1].wrapping_add(b[1])]
}

#[inline(always)]
fn csub(a: Cpx, b: Cpx) -> Cpx {
    [a[0].wrapping_sub(b[0]), a[1].wrapping_sub(b[1])]
}

/// The radix of each stage of an `n`-point complex FFT (`n` a power of two): fours,
/// then a final two when `log2 n` is odd. Returns the number of stages.
fn factors(mut n: usize, out: &mut [(usize, usize); 12]) -> usize {
    let mut k = 0;
    while n > 1 && k < out.len() {
        let p = if n % 4 == 0 { 4 } else { 2 };
        n /= p;
        out[k] = (p, n);
        k += 1;
    }
    k
}

#[inline(always)]
fn cpx(w: &[u32; 2]) -> Cpx {
    [w[0] as u16 as i16, w[1] as u16 as i16]
}

/// kissfft's `kf_bfly2` on two values already divided by 2: `[x0 + w x1, x0 - w x1]`.
#[inline(always)]
fn bfly2(x0: Cpx, x1: Cpx, w: Cpx) -> [Cpx; 2] {
    let t = cmul(x1, w);
    [cadd(x0, t), csub(x0, t)]
}

/// kissfft's `kf_bfly4` (forward) on four values already divided by 4, twiddles `w1..w3`.
#[inline(always)]
fn bfly4(x: [Cpx; 4], w1: Cpx, w2: Cpx, w3: Cpx) -> [Cpx; 4] {
    let s0 = cmul(x[1], w1);
    let s1 = cmul(x[2], w2);
    let s2 = cmul(x[3], w3);
    let s5 = csub(x[0], s1);
    let x0 = cadd(x[0], s1);
    let s3 = cadd(s0, s2);
    let s4 = csub(s0, s2);
    [
        cadd(x0, s3),
        [s5[0].wrapping_add(s4[1]), s5[1].wrapping_sub(s4[0])],
        csub(x0, s3),
        [s5[0].wrapping_sub(s4[1]), s5[1].wrapping_add(s4[0])],
    ]
}

/// The innermost stage (`m = 1`, radix 4 when `four`, else 2) of the FFT of
/// `input.len()` pairs, reading the natural-order `input` and writing `out` in stage
/// order: butterfly `s` takes the pairs `base_s + q * n / p`, where `base_s` is `s`'s
/// digits (radices of the `outer` stages, innermost digit fastest) read in reverse
/// order, as the reference's recursion gathers its leaves. Each value is first scaled
/// up by `shift` (truncated to 16 bits). Twiddle 0 for every leg, as in the reference.
fn first_stage(
    input: &[Cpx],
    out: &mut [Cpx],
    four: bool,
    outer: &[(usize, usize)],
    shift: u32,
    tw: &[[u32; 2]],
) {
    let n = input.len().min(out.len());
    let w0 = tw.first().map_or([0, 0], cpx);
    let up = |i: usize| -> Cpx {
        input.get(i).map_or([0, 0], |c| {
            [
                ((c[0] as u16 as u32) << shift) as u16 as i16,
                ((c[1] as u16 as u32) << shift) as u16 as i16,
            ]
        })
    };
    // Input weight of each outer stage's digit: the product of the radices before it.
    let mut weight = [0usize; 12];
    let mut acc = 1usize;
    for (w, &(p, _)) in weight.iter_mut().zip(outer) {
        *w = acc;
        acc *= p;
    }
    let mut digit = [0usize; 12];
    let mut base = 0usize;
    let mut next = |base: &mut usize| {
        for ((d, &w), &(p, _)) in digit.iter_mut().zip(weight.iter()).zip(outer).rev() {
            *d += 1;
            *base += w;
            if *d < p {
                return;
            }
            *d = 0;
            *base -= p * w;
        }
    };
    if four {
        let q = n / 4;
        for seg in out[..n].chunks_exact_mut(4) {
            let x = [
                fixdiv(up(base), 4),
                fixdiv(up(base + q), 4),
                fixdiv(up(base + 2 * q), 4),
                fixdiv(up(base + 3 * q), 4),
            ];
            seg.copy_from_slice(&bfly4(x, w0, w0, w0));
            next(&mut base);
        }
    } else {
        let q = n / 2;
        for seg in out[..n].chunks_exact_mut(2) {
            let x0 = fixdiv(up(base), 2);
            let x1 = fixdiv(up(base + q), 2);
            seg.copy_from_slice(&bfly2(x0, x1, w0));
            next(&mut base);
        }
    }
}

/// One radix-`p` stage (2 or 4) over `buf`: in each run of `p * m` values, `m`
/// butterflies with twiddles `k * fstride` (kissfft's `kf_bfly2` / `kf_bfly4`: inputs
/// scaled down by the radix with rounding, Q15 products). The stages of the recursive
/// decimation-in-time FFT applied stage by stage after a digit-reversal permutation do the
/// same operations on the same values, so the results are the reference's bits.
fn fft_stage(buf: &mut [Cpx], p: usize, m: usize, fstride: usize, tw: &[[u32; 2]]) {
    if p == 2 {
        for seg in buf.chunks_exact_mut(2 * m) {
            let (a, b) = seg.split_at_mut(m);
            for ((x, y), w) in a
                .iter_mut()
                .zip(b.iter_mut())
                .zip(tw.iter().step_by(fstride))
            {
                [*x, *y] = bfly2(fixdiv(*x, 2), fixdiv(*y, 2), cpx(w));
            }
        }
        return;
    }
    for seg in buf.chunks_exact_mut(4 * m) {
        let (a, rest) = seg.split_at_mut(m);
        let (b, rest) = rest.split_at_mut(m);
        let (c, d) = rest.split_at_mut(m);
        let tws = tw
            .iter()
            .step_by(fstride)
            .zip(tw.iter().step_by(2 * fstride))
            .zip(tw.iter().step_by(3 * fstride));
        for ((((f0, f1), f2), f3), ((w1, w2), w3)) in a
            .iter_mut()
            .zip(b.iter_mut())
            .zip(c.iter_mut())
            .zip(d.iter_mut())
            .zip(tws)
        {
            let x = [
                fixdiv(*f0, 4),
                fixdiv(*f1, 4),
                fixdiv(*f2, 4),
                fixdiv(*f3, 4),
            ];
            [*f0, *f1, *f2, *f3] = bfly4(x, cpx(w1), cpx(w2), cpx(w3));
        }
    }
}

/// `ceil(sqrt((i + 65) * 2^24))` for `i` in `0..191`: an upper bound of the square root
/// of any `x` in `[2^30, 2^32)` whose top byte is `i + 64`.
const SQRT_SEED: [u32; 192] = {
    let mut t = [0u32; 192];
    let mut i = 0;
    while i < 192 {
        let v = ((i as u64) + 65) << 24;
        // the smallest r with r * r >= v, by bisection over [2^15, 2^16]
        let (mut lo, mut hi) = (1u64 << 15, 1u64 << 16);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if mid * mid >= v {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        t[i] = lo as u32;
        i += 1;
    }
    t
};

/// `floor(sqrt(x))` for `x >= 1`: normalised to `[2^30, 2^32)` by an even shift, a
/// table seed above the root, one Newton step (from above it stays at or above the
/// floor, within 3 of it) and a decrement while the square is too large.
#[inline(always)]
fn isqrt32(x: u32) -> u32 {
    let sh = x.leading_zeros() & !1;
    let xn = x << sh;
    let seed = SQRT_SEED
        .get(((xn >> 24) as usize).saturating_sub(64))
        .copied()
        .unwrap_or(1 << 16);
    let mut y = (seed + xn / seed.max(1)) >> 1;
    while y as u64 * y as u64 > xn as u64 {
        y -= 1;
    }
    y >> (sh / 2)
}

/// Integer square root with rounding, 16-bit result: the reference's `Sqrt32` (a
/// bit-by-bit loop computing `floor(sqrt(num))` and its remainder, rounding up when the
/// remainder exceeds the root, except at `0xFFFF`), computed from [`isqrt32`].
#[inline]
fn sqrt32(num: u32) -> u32 {
    if num == 0 {
        return 0;
    }
    let r = isqrt32(num);
    let rem = num - r * r;
    if rem > r && r != 0xFFFF {
        r + 1
    } else {
        r
    }
}

/// Integer square root of a 64-bit value, the reference's `Sqrt64` (its 32-bit shortcut,
/// then `floor(sqrt(num))` rounded up when the remainder exceeds the root, except at
/// `2^32 - 1`), truncated to 32 bits. The floor: normalise to `[2^62, 2^64)` by an even
/// shift; the top 32 bits give the root's top 16 bits `a` exactly ([`isqrt32`]); one
/// division of the remainder by `a` gives the low 16 bits within a few units, then
/// corrected against the square.
#[inline]
fn sqrt64(num: u64) -> u32 {
    if num >> 32 == 0 {
        return sqrt32(num as u32);
    }
    let sh = num.leading_zeros() & !1;
    let xn = num << sh;
    let hi = (xn >> 32) as u32;
    let a = isqrt32(hi); // in [2^15, 2^16)
    let rem = hi - a * a; // <= 2a
                          // (rem * 2^32 + lo) / (2a * 2^16), kept below 2^32: (2a + 1) * 2^15 - 1 < 2^32.
    let n = (rem << 15) | ((xn as u32) >> 17);
    let b = n / a.max(1);
    // The root of a value below 2^64 is below 2^32, so the squares below cannot overflow.
    let mut y = (((a as u64) << 16) + b as u64).min(0xFFFF_FFFF);
    while y * y > xn {
        y -= 1;
    }
    while y < 0xFFFF_FFFF && (y + 1) * (y + 1) <= xn {
        y += 1;
    }
    let r = y >> (sh / 2);
    let rem = num - r * r;
    let r = r as u32;
    if rem > r as u64 && r != u32::MAX {
        r + 1
    } else {
        r
    }
}

/// Integer square root with rounding (the reference's `Sqrt32`), 16-bit result: its
/// bit-by-bit loop, kept to check [`sqrt32`] against.
#[cfg(test)]
fn sqrt32_bitwise(mut num: u32) -> u32 {
    if num == 0 {
        return 0;
    }
    let mut res = 0u32;
    let max_bit = (32 - msb32(num)) | 1;
    let mut bit = 1u32 << (31 - max_bit);
    let mut iterations = (31 - max_bit) / 2 + 1;
    while iterations > 0 {
        iterations -= 1;
        let rb = res.wrapping_add(bit);
        if num >= rb {
            num -= rb;
            res = (res >> 1).wrapping_add(bit);
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    if num > res && res != 0xFFFF {
        res += 1;
    }
    res & 0xFFFF
}

/// Integer square root of a 64-bit value (the reference's `Sqrt64`, including its
/// 32-bit shortcut), truncated to 32 bits: its bit-by-bit loop, kept to check [`sqrt64`]
/// against.
#[cfg(test)]
fn sqrt64_bitwise(mut num: u64) -> u32 {
    if num >> 32 == 0 {
        return sqrt32_bitwise(num as u32);
    }
    let mut res = 0u64;
    let max_bit = (64 - msb64(num)) | 1;
    let mut bit = 1u64 << (63 - max_bit);
    let mut iterations = (63 - max_bit) / 2 + 1;
    while iterations > 0 {
        iterations -= 1;
        let rb = res.wrapping_add(bit);
        if num >= rb {
            num -= rb;
            res = (res >> 1).wrapping_add(bit);
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    if num > res && res != 0xFFFF_FFFF {
        res += 1;
    }
    res as u32
}

/// PCAN's piecewise-quadratic gain for a noise estimate `x`.
fn wide_dynamic(x: u32, lut: &[u32]) -> i16 {
    let at = |i: usize| lut.get(i).map_or(0, |&v| v as u16 as i16 as i32);
    if x <= 2 {
        return at(x as usize) as i16;
    }
    let interval = msb32(x);
    let base = 4 * interval as usize - 6;
    let frac = (if interval < 11 {
        x << (11 - interval)
    } else {
        x >> (interval - 11)
    } & 0x3FF) as i32;
    let mut r = (at(base + 2) * frac) >> 5;
    r = r.wrapping_add(((at(base + 1) as u32) << 5) as i32);
    r = r.wrapping_mul(frac);
    r = r.wrapping_add(1 << 14) >> 15;
    r = r.wrapping_add(at(base));
    r as i16
}

/// PCAN's output compression.
#[inline]
fn pcan_shrink(x: u32) -> u32 {
    if x < (2 << PCAN_SNR_BITS) {
        (x * x) >> (2 + 2 * PCAN_SNR_BITS - PCAN_OUTPUT_BITS)
    } else {
        (x >> (PCAN_SNR_BITS - PCAN_OUTPUT_BITS)).wrapping_sub(1 << PCAN_OUTPUT_BITS)
    }
}

/// Fixed-point `ln(x)` scaled by `2^scale_shift`, for `x > 1`.
fn log_fixed(x: u32, scale_shift: u32, lut: &[u32]) -> u32 {
    let integer = msb32(x) - 1;
    let mut frac = x.wrapping_sub(1u32 << integer) as i32;
    if integer < LOG_SCALE_BITS {
        frac <<= LOG_SCALE_BITS - integer;
    } else {
        frac >>= integer - LOG_SCALE_BITS;
    }
    let seg = (frac as u32 >> (LOG_SCALE_BITS - LOG_SEGMENTS_BITS)) as usize;
    let unit = (1i32 << LOG_SCALE_BITS) >> LOG_SEGMENTS_BITS;
    let c0 = lut.get(seg).map_or(0, |&v| v as u16 as i32);
    let c1 = lut.get(seg + 1).map_or(0, |&v| v as u16 as i32);
    let rel =
        (c1 - c0).wrapping_mul(frac.wrapping_sub(unit.wrapping_mul(seg as i32))) >> LOG_SCALE_BITS;
    let fraction = frac.wrapping_add(c0).wrapping_add(rel) as u32;
    let log2 = (integer << LOG_SCALE_BITS).wrapping_add(fraction);
    let round = 1u32 << (LOG_SCALE_BITS - 1);
    let loge = ((LOG_COEFF * log2 as u64 + round as u64) >> LOG_SCALE_BITS) as u32;
    (loge.wrapping_shl(scale_shift).wrapping_add(round)) >> LOG_SCALE_BITS
}

/// A 16-bit sample as stored in the ring (its `u16` bits).
#[inline(always)]
pub(crate) fn pcm_word(s: i16) -> f32 {
    f32::from_bits(s as u16 as u32)
}

/// Converts a pushed `f32` sample in 16-bit units to its ring word: truncated toward
/// zero and saturated to `i16` (exact for integer-valued samples), NaN as 0.
#[inline]
pub(crate) fn pcm_from_f32(v: f32) -> f32 {
    pcm_word(v as i16)
}

#[inline(always)]
fn sample(w: f32) -> i32 {
    w.to_bits() as u16 as i16 as i32
}

/// Runs the front end on one window: `oldest` then `newest` are the ring's sample words
/// (oldest first, `window` in all); writes `channels` features to `out`. `tables` from
/// [`init_tables`] (or the artifact), `state` the channels' noise estimates, `scratch`
/// [`Geometry::scratch_len`] words.
#[allow(clippy::too_many_arguments)]
pub(crate) fn process(
    fe: &Frontend,
    g: &Geometry,
    tables: &[f32],
    state: &mut [f32],
    scratch: &mut [f32],
    oldest: &[f32],
    newest: &[f32],
    out: &mut [f32],
) {
    // stage: setup
    let l = g.tables();
    let n = g.n_fft / 2;
    let spectrum = g.spectrum();
    let (Some(tables), Some(scratch), Some(state)) = (
        tables.get(..l.total),
        scratch.get_mut(..g.scratch_len()),
        state.get_mut(..g.channels),
    ) else {
        return;
    };
    let t: &[u32] = bytemuck::cast_slice(tables);
    // The header words (see `HEADER`), read once without per-read bounds checks.
    let &[h_start, h_end, h_snr_shift, h_even, h_odd, h_min, ..] = t else {
        return;
    };
    let (input, rest) = scratch.split_at_mut(n);
    let (tmp, rest) = rest.split_at_mut(n);
    let (spec, energy) = rest.split_at_mut(spectrum);
    let input: &mut [Cpx] = bytemuck::cast_slice_mut(input);
    let tmp: &mut [Cpx] = bytemuck::cast_slice_mut(tmp);
    let spec: &mut [Cpx] = bytemuck::cast_slice_mut(spec);
    let energy: &mut [u32] = bytemuck::cast_slice_mut(energy);
    let samples: &mut [i16] = bytemuck::cast_slice_mut(&mut *input);

    // stage: window
    // Window (Q12) and the largest magnitude, kept in 16 bits as the reference does.
    let coefs = &t[l.window..l.window + g.window];
    // The reference keeps the largest `|v|` as an i16 (a -32768 sample stays negative
    // and never wins); only its top bit matters, so the magnitudes are OR-ed instead and
    // bit 15 (set only by -32768) dropped: the same top bit, no compare per sample.
    let mut bits = 0u32;
    {
        let (c_old, c_new) = coefs.split_at(oldest.len().min(coefs.len()));
        let (s_old, s_new) = samples.split_at_mut(oldest.len().min(g.window));
        for (s, c, d) in [(oldest, c_old, s_old), (newest, c_new, s_new)] {
            for ((d, &x), &w) in d.iter_mut().zip(s).zip(c) {
                let v = ((sample(x) * (w as u16 as i16 as i32)) >> WINDOW_BITS) as i16;
                *d = v;
                bits |= (v as i32).unsigned_abs();
            }
        }
    }
    let shift = 15 - msb32(bits & 0x7FFF);
    if let Some(tail) = samples.get_mut(g.window..) {
        tail.fill(0);
    }

    // stage: fft stages
    // The complex FFT of the n pairs, innermost stage first, then the real FFT's split.
    // The innermost stage reads the natural-order samples itself (the digit-reversed
    // gather of the reference's recursion), scaled up by `shift` (as u16, truncated to
    // 16 bits), so no permuted copy is made.
    let mut stages = [(0usize, 0usize); 12];
    let ns = factors(n, &mut stages);
    let stages = &stages[..ns];
    let tw: &[[u32; 2]] = bytemuck::cast_slice(&t[l.twiddles..l.twiddles + 2 * n]);
    let Some((&(leaf, _), outer)) = stages.split_last() else {
        return;
    };
    first_stage(input, tmp, leaf == 4, outer, shift, tw);
    let mut fstride = if leaf == 4 { n / 4 } else { n / 2 };
    for &(p, m) in outer.iter().rev() {
        fstride /= p;
        fft_stage(tmp, p, m, fstride, tw);
    }
    // stage: real split
    let dc = fixdiv(tmp[0], 2);
    spec[0] = [dc[0].wrapping_add(dc[1]), 0];
    spec[n] = [dc[0].wrapping_sub(dc[1]), 0];
    let stw = &t[l.super_twiddles..l.super_twiddles + n];
    // Bin k and bin n - k from X[k] and conj(X[n - k]) (kissfft's `kiss_fftr`). Halved
    // values are within +/-16384 and their sums within +/-32766, so only the Q15 product
    // `tw` needs its 16-bit truncation. k = n / 2 (its own mirror) comes last, its second
    // store winning as in the reference.
    let split = |a: Cpx, b: Cpx, w: Cpx| -> ([i32; 2], [i32; 2]) {
        let fpk = fixdiv(a, 2);
        let fpnk = fixdiv([b[0], b[1].wrapping_neg()], 2);
        let f1k = [
            fpk[0] as i32 + fpnk[0] as i32,
            fpk[1] as i32 + fpnk[1] as i32,
        ];
        let f2k = [
            fpk[0] as i32 - fpnk[0] as i32,
            fpk[1] as i32 - fpnk[1] as i32,
        ];
        let tw = [
            sround(f2k[0] * w[0] as i32 - f2k[1] * w[1] as i32) as i32,
            sround(f2k[0] * w[1] as i32 + f2k[1] * w[0] as i32) as i32,
        ];
        (f1k, tw)
    };
    let half = n / 2;
    {
        let (t_lo, t_hi) = tmp.split_at(half);
        let (s_lo, s_hi) = spec.split_at_mut(half);
        let t_lo = t_lo.get(1..).unwrap_or(&[]);
        let t_hi = t_hi.get(1..).unwrap_or(&[]);
        let s_lo = s_lo.get_mut(1..).unwrap_or(&mut []);
        let s_hi = s_hi.get_mut(1..n - half).unwrap_or(&mut []);
        for ((((a, b), sa), sb), w) in t_lo
            .iter()
            .zip(t_hi.iter().rev())
            .zip(s_lo.iter_mut())
            .zip(s_hi.iter_mut().rev())
            .zip(stw.chunks_exact(2))
        {
            let (f1k, tw) = split(*a, *b, [w[0] as u16 as i16, w[1] as u16 as i16]);
            *sa = [
                ((f1k[0] + tw[0]) >> 1) as i16,
                ((f1k[1] + tw[1]) >> 1) as i16,
            ];
            *sb = [
                ((f1k[0] - tw[0]) >> 1) as i16,
                ((tw[1] - f1k[1]) >> 1) as i16,
            ];
        }
    }
    if let (Some(&a), Some(o)) = (tmp.get(half), spec.get_mut(half)) {
        let (f1k, tw) = split(a, a, twiddle(stw, half.wrapping_sub(1)));
        *o = [
            ((f1k[0] - tw[0]) >> 1) as i16,
            ((tw[1] - f1k[1]) >> 1) as i16,
        ];
    }

    // stage: energy
    // Energy of the bins the filterbank uses (|X|^2 in 32 bits, wrapping as the
    // reference's int arithmetic does for a full-scale -32768 - 32768i bin).
    let start = h_start.min(spectrum as u32) as usize;
    let end = h_end.min(spectrum as u32) as usize;
    if let (Some(es), Some(cs)) = (energy.get_mut(start..end), spec.get(start..end)) {
        for (e, c) in es.iter_mut().zip(cs) {
            let (r, i) = (c[0] as i32, c[1] as i32);
            *e = (r * r).wrapping_add(i * i) as u32;
        }
    }

    // stage: filterbank
    // Filterbank: triangular channels as running weight / unweight sums in 64 bits; the
    // first accumulator is the lower edge of channel 0 and is dropped.
    let c1 = g.channels + 1;
    let wmax = g.weights_max();
    let mut weight_acc = 0u64;
    let mut unweight_acc = 0u64;
    let log_lut = &t[l.log_lut..l.log_lut + LOG_LUT_LEN];
    let gain_lut = &t[l.gain_lut..l.gain_lut + GAIN_LUT_LEN];
    let corr = g.correction_bits();
    let nr_even = h_even & 0xFFFF;
    let nr_odd = h_odd & 0xFFFF;
    let nr_min = (h_min & 0xFFFF) as u64;
    let sbits = fe.smoothing_bits;
    let snr_shift = h_snr_shift & 63;
    let inv_scale = fe.out_scale as f32;
    for chan in 0..c1 {
        let fs = t[l.freq_starts + chan] as usize;
        let ws = t[l.weight_starts + chan] as usize;
        let width = (t[l.widths + chan] as usize).min(wmax);
        // Bins past the energies (padding of the last channels) have zero weights in the
        // reference's tables: they are skipped.
        let mags = energy.get(fs..).unwrap_or(&[]);
        let ws_ = t.get(l.weights + ws..l.weights + wmax).unwrap_or(&[]);
        let us_ = t.get(l.unweights + ws..l.unweights + wmax).unwrap_or(&[]);
        let len = width.min(mags.len()).min(ws_.len()).min(us_.len());
        for ((&e, &w), &u) in mags[..len].iter().zip(&ws_[..len]).zip(&us_[..len]) {
            // The reference's `int16 * (uint64)int32`: both sign-extended, so the product
            // modulo 2^64 is the exact signed product (one SMLAL each).
            let mag = e as i32 as i64;
            weight_acc = weight_acc.wrapping_add((w as u16 as i16 as i64 * mag) as u64);
            unweight_acc = unweight_acc.wrapping_add((u as u16 as i16 as i64 * mag) as u64);
        }
        if chan > 0 {
            let i = chan - 1;
            // stage: sqrt
            let mut v = sqrt64(weight_acc) >> shift;
            // stage: noise reduction
            // Noise reduction.
            let smoothing = if i & 1 == 0 { nr_even } else { nr_odd };
            let one_minus = (1u32 << NOISE_BITS).wrapping_sub(smoothing);
            // (wraps for a garbage table word above 2^14, as u32 arithmetic would)
            let up = v.wrapping_shl(sbits);
            let est_word = &mut state[i];
            let old = est_word.to_bits();
            // Wrapping: a garbage table word makes `one_minus` near 2^32 and the sum can
            // pass 2^64; valid tables (smoothing <= 2^14) never come near it.
            let mut est = ((up as u64)
                .wrapping_mul(smoothing as u64)
                .wrapping_add((old as u64).wrapping_mul(one_minus as u64))
                >> NOISE_BITS) as u32;
            *est_word = f32::from_bits(est);
            if est > up {
                est = up;
            }
            let floor = ((v as u64 * nr_min) >> NOISE_BITS) as u32;
            let sub = (up - est) >> sbits;
            v = if sub > floor { sub } else { floor };
            // stage: pcan
            // PCAN gain control against the updated noise estimate.
            if fe.pcan {
                let gain = wide_dynamic(est_word.to_bits(), gain_lut) as i32 as u32;
                let snr = ((v as u64 * gain as u64) >> snr_shift) as u32;
                v = pcan_shrink(snr);
            }
            // stage: log
            // Log scale.
            if fe.log {
                v = if corr < 0 {
                    v >> (-corr) as u32
                } else {
                    v.wrapping_shl(corr as u32)
                };
                v = if v > 1 {
                    log_fixed(v, fe.scale_shift, log_lut)
                } else {
                    0
                };
            }
            // stage: output
            let v = v.min(0xFFFF);
            if let Some(o) = out.get_mut(i) {
                *o = if fe.out_scale == 1 {
                    u16_to_f32(v)
                } else {
                    v as f32 / inv_scale
                };
            }
        }
        // stage: filterbank
        weight_acc = unweight_acc;
        unweight_acc = 0;
    }
}

/// `v as f32` for `v < 2^24`, exact, built from the bits: on cores without an FPU the
/// compiler's conversion is a soft-float library call.
#[inline(always)]
fn u16_to_f32(v: u32) -> f32 {
    if v == 0 {
        return 0.0;
    }
    let top = 31 - v.leading_zeros();
    let mantissa = (v << (23 - top.min(23))) & 0x7F_FFFF;
    f32::from_bits(((127 + top) << 23) | mantissa)
}

#[inline(always)]
fn twiddle(tw: &[u32], i: usize) -> Cpx {
    match (tw.get(2 * i), tw.get(2 * i + 1)) {
        (Some(&r), Some(&im)) => [r as u16 as i16, im as u16 as i16],
        _ => [0, 0],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    #[test]
    fn sqrt32_equals_the_reference_loop() {
        for x in 0..(1u32 << 20) {
            assert_eq!(sqrt32(x), sqrt32_bitwise(x), "x = {x}");
        }
        for r in 0..=0xFFFFu32 {
            let s = r * r;
            for x in [
                s,
                s.wrapping_sub(1),
                s + r,
                s + r + 1,
                s.saturating_add(2 * r),
            ] {
                assert_eq!(sqrt32(x), sqrt32_bitwise(x), "x = {x}");
            }
        }
        let mut g = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..2_000_000 {
            let x = (g.next() >> 32) as u32 >> (g.next() % 32);
            assert_eq!(sqrt32(x), sqrt32_bitwise(x), "x = {x}");
        }
        assert_eq!(sqrt32(u32::MAX), sqrt32_bitwise(u32::MAX));
    }

    #[test]
    fn sqrt64_equals_the_reference_loop() {
        let mut g = Rng(0xD1B5_4A32_D192_ED03);
        for _ in 0..2_000_000 {
            let x = g.next() >> (g.next() % 64);
            assert_eq!(sqrt64(x), sqrt64_bitwise(x), "x = {x}");
        }
        for _ in 0..500_000 {
            let r = (g.next() >> 32) >> (g.next() % 17);
            let s = r * r;
            for x in [s, s.wrapping_sub(1), s + r, s + r + 1, s + 2 * r] {
                assert_eq!(sqrt64(x), sqrt64_bitwise(x), "x = {x}");
            }
        }
        for x in [
            u64::MAX,
            u64::MAX - 1,
            1 << 32,
            (1 << 32) - 1,
            1 << 62,
            (1 << 62) - 1,
        ] {
            assert_eq!(sqrt64(x), sqrt64_bitwise(x), "x = {x}");
        }
    }

    #[test]
    fn u16_to_f32_is_the_conversion() {
        for v in 0..=0xFFFFu32 {
            assert_eq!(u16_to_f32(v).to_bits(), (v as f32).to_bits(), "v = {v}");
        }
    }
}
