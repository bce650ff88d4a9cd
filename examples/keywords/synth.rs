//! Generated keyword-like audio for the `audio` template and `examples/keywords`.
//!
//! No package registry reachable here ships labelled speech in the numbers a keyword
//! model needs (see the README's table), so this example's data is **generated**: four
//! classes of 1 s, 16 kHz, 16-bit mono clips, each an acoustic "word" with its own
//! time-frequency shape, drawn with random pitch, duration, onset, amplitude, harmonics
//! and background noise:
//!
//! | class | the event in the clip |
//! |---|---|
//! | `tone` | one steady harmonic tone, 300–1000 Hz, 0.35–0.6 s, slight vibrato |
//! | `chirp` | one rising sweep from 300–600 Hz to 1500–3000 Hz, 0.25–0.5 s |
//! | `double` | two short harmonic tones (0.06–0.11 s each, 500–1500 Hz) with a 0.1–0.2 s gap |
//! | `noise` | one burst of low-passed noise (cut-off 1–6 kHz), 0.15–0.4 s |
//!
//! Every clip also carries background noise (Gaussian, 0.2–2 % of full scale) and a weak
//! mains hum (50 or 60 Hz). The events overlap in pitch, so a model must use the shape
//! in time and frequency, as keyword spotting does. The files are written as
//! `DIR/CLASS/CLASS_NNNN.wav`, the class-folder layout of Speech Commands that a
//! `{ wav_folder = { path, labels } }` source reads.
//!
//! Deterministic: one seed gives the same clips (a SplitMix64 generator written here;
//! the waveforms use `f64` `sin`/`ln`/`cos` from the platform's math library, so another
//! platform may differ in the last bit of a sample, never in the class structure).
//! Only `std`: this file is included by `edgeflow init` and by the tests through
//! `#[path]`.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Sample rate of the clips [`generate`] writes, Hz.
pub const RATE_HZ: u32 = 16_000;
/// Samples per clip at [`RATE_HZ`] (1 s).
pub const CLIP_LEN: usize = RATE_HZ as usize;
/// The class names, in class-index order.
pub const CLASSES: [&str; 4] = ["tone", "chirp", "double", "noise"];

/// SplitMix64 (Steele, Lea, Flood 2014): a small, seedable, portable generator.
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, 1)` (53 bits).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in `[lo, hi)`.
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u = 1.0 - self.unit();
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// A raised-cosine attack/release envelope of `len` samples (10 ms ramps at `rate` Hz).
fn envelope(i: usize, len: usize, rate: u32) -> f64 {
    let ramp = (rate as usize / 100).min(len / 2).max(1);
    let k = i.min(len - 1 - i.min(len - 1));
    if k >= ramp {
        1.0
    } else {
        0.5 - 0.5 * (std::f64::consts::PI * k as f64 / ramp as f64).cos()
    }
}

/// Adds a harmonic tone (fundamental `f(t)` in Hz, relative harmonic amplitudes `h`)
/// to `out[start..start + len]` (samples at `rate` Hz) with peak amplitude `amp`.
#[allow(clippy::too_many_arguments)]
fn add_tone(
    out: &mut [f64],
    rate: u32,
    start: usize,
    len: usize,
    amp: f64,
    h: &[f64],
    f: impl Fn(f64) -> f64,
) {
    let mut phase = 0.0f64;
    let norm: f64 = 1.0 + h.iter().sum::<f64>();
    for i in 0..len.min(out.len().saturating_sub(start)) {
        let t = i as f64 / rate as f64;
        phase += std::f64::consts::TAU * f(t) / rate as f64;
        let mut s = phase.sin();
        for (k, a) in h.iter().enumerate() {
            s += a * (phase * (k + 2) as f64).sin();
        }
        out[start + i] += amp * envelope(i, len, rate) * s / norm;
    }
}

/// One 1 s clip of class `class` (an index into [`CLASSES`]) at [`RATE_HZ`].
pub fn clip(class: usize, rng: &mut Rng) -> Vec<i16> {
    clip_at(class, rng, RATE_HZ)
}

/// One 1 s clip of class `class` at `rate` Hz (components above `rate / 2` alias: keep
/// `rate` at 8 kHz or more, where only the noise bursts' widest cut-offs pass Nyquist).
pub fn clip_at(class: usize, rng: &mut Rng, rate: u32) -> Vec<i16> {
    let sr = rate as f64;
    let n = rate as usize;
    let mut x = vec![0f64; n];
    let amp = rng.range(0.1, 0.6);
    let secs = |s: f64| (s * sr) as usize;
    // Places an event of `dur` seconds at a random onset inside the clip.
    let onset = |rng: &mut Rng, dur: f64| secs(rng.range(0.05, (0.95 - dur).max(0.06)));
    match class {
        0 => {
            let dur = rng.range(0.35, 0.6);
            let f0 = rng.range(300.0, 1000.0);
            let h = [rng.range(0.0, 0.5), rng.range(0.0, 0.3)];
            let vib = rng.range(3.0, 6.0);
            let start = onset(rng, dur);
            add_tone(&mut x, rate, start, secs(dur), amp, &h, |t| {
                f0 * (1.0 + 0.02 * (std::f64::consts::TAU * vib * t).sin())
            });
        }
        1 => {
            let dur = rng.range(0.25, 0.5);
            let (f0, f1) = (rng.range(300.0, 600.0), rng.range(1500.0, 3000.0));
            let h = [rng.range(0.0, 0.3)];
            let start = onset(rng, dur);
            add_tone(&mut x, rate, start, secs(dur), amp, &h, |t| {
                f0 + (f1 - f0) * t / dur
            });
        }
        2 => {
            let (d1, gap, d2) = (
                rng.range(0.06, 0.11),
                rng.range(0.1, 0.2),
                rng.range(0.06, 0.11),
            );
            let f0 = rng.range(500.0, 1500.0);
            let h = [rng.range(0.0, 0.5)];
            let start = onset(rng, d1 + gap + d2);
            add_tone(&mut x, rate, start, secs(d1), amp, &h, |_| f0);
            let f2 = f0 * rng.range(0.9, 1.1);
            add_tone(
                &mut x,
                rate,
                start + secs(d1 + gap),
                secs(d2),
                amp,
                &h,
                |_| f2,
            );
        }
        _ => {
            let dur = rng.range(0.15, 0.4);
            let cut = rng.range(1000.0, 6000.0);
            // One-pole low-pass: y += a (x - y), a = 1 - exp(-2 pi fc / fs).
            let a = 1.0 - (-std::f64::consts::TAU * cut / sr).exp();
            let (start, len) = (onset(rng, dur), secs(dur));
            let mut y = 0.0;
            for i in 0..len.min(n - start) {
                y += a * (rng.normal() - y);
                x[start + i] += amp * 0.5 * envelope(i, len, rate) * y;
            }
        }
    }
    let noise = rng.range(0.002, 0.02);
    let (hum_f, hum) = (
        if rng.unit() < 0.5 { 50.0 } else { 60.0 },
        rng.range(0.0, 0.01),
    );
    let hum_phase = rng.range(0.0, std::f64::consts::TAU);
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let t = i as f64 / sr;
            let s = v
                + noise * rng.normal()
                + hum * (std::f64::consts::TAU * hum_f * t + hum_phase).sin();
            (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

/// Writes 16-bit PCM mono samples at `rate` Hz as a canonical 44-byte-header WAV file.
pub fn write_wav(path: &Path, rate: u32, samples: &[i16]) -> std::io::Result<()> {
    let data = (samples.len() * 2) as u32;
    let mut b = Vec::with_capacity(44 + data as usize);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&1u16.to_le_bytes()); // mono
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * 2).to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data.to_le_bytes());
    for s in samples {
        b.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::File::create(path)?.write_all(&b)
}

/// Writes `per_class` clips of every class to `dir/CLASS/CLASS_NNNN.wav` (folders
/// created) from `seed`, at [`RATE_HZ`]; returns the files written. Errors are the file
/// system's, with the path in the message.
pub fn generate(dir: &Path, per_class: usize, seed: u64) -> std::io::Result<Vec<PathBuf>> {
    generate_at(dir, per_class, seed, RATE_HZ)
}

/// As [`generate`], at `rate` Hz (see [`clip_at`]).
pub fn generate_at(
    dir: &Path,
    per_class: usize,
    seed: u64,
    rate: u32,
) -> std::io::Result<Vec<PathBuf>> {
    let mut rng = Rng::new(seed);
    let mut files = Vec::new();
    for n in 0..per_class {
        for (c, name) in CLASSES.iter().enumerate() {
            let d = dir.join(name);
            std::fs::create_dir_all(&d)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", d.display())))?;
            let p = d.join(format!("{name}_{n:04}.wav"));
            write_wav(&p, rate, &clip_at(c, &mut rng, rate))
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
            files.push(p);
        }
    }
    Ok(files)
}
