//! Resampling a recording to a pipeline's rate, with rubato's FFT resampler (a
//! synchronous resampler for a fixed ratio). Every resampling is announced on stderr:
//! the features of a resampled recording are not those of the original samples.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{bail, Context, Result};
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

/// The resampler's name, as stated in notes.
pub const RESAMPLER: &str = "rubato 4 FFT resampler";

/// Largest sample magnitude [`to_rate`] accepts (in the units it is given: 16-bit units
/// for audio, so full scale is 32768). Far above any real recording, far enough below
/// `f32::MAX` that the resampler's FFT sums cannot overflow.
pub const MAX_SAMPLE_MAGNITUDE: f32 = 1e30;

/// Largest resampler block [`to_rate`] accepts: channels × max(from, to) / gcd(from, to)
/// points. Common rate pairs are small (48 kHz → 16 kHz: 3 points per channel; 44.1 kHz →
/// 16 kHz: 441); the limit keeps the resampler's buffers within tens of megabytes.
pub const MAX_RESAMPLER_POINTS: u64 = 1 << 20;

/// Largest upsampling factor [`to_rate`] accepts (output rate / input rate). Upsampling
/// invents the samples in between, so real uses stay small (8 kHz → 16 kHz is 2; a 1 kHz
/// sensor into a 16 kHz pipeline is 16); a damaged header's 1 Hz into a 16 kHz pipeline
/// would turn a few hundred bytes into minutes of audio and hundreds of megabytes of
/// features (found by the `cli_features` fuzz target), so it is refused.
pub const MAX_UPSAMPLING: u32 = 16;

/// When set, [`to_rate`] counts instead of printing a note per file (a batch prints one
/// summary line with [`take_count`]).
pub static QUIET: AtomicBool = AtomicBool::new(false);
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// Number of recordings resampled since the last call.
pub fn take_count() -> usize {
    COUNT.swap(0, Ordering::Relaxed)
}

/// `samples` (interleaved, `channels` per frame) resampled from `from_hz` to `to_hz`
/// (both whole numbers of Hz); the clip keeps its duration (`ceil(frames * to / from)`
/// frames) and the resampler's start-up delay is trimmed. Prints a note naming `path`,
/// both rates and the resampler to stderr.
pub fn to_rate(
    samples: &[f32],
    channels: usize,
    from_hz: u32,
    to_hz: f32,
    path: &Path,
) -> Result<Vec<f32>> {
    if to_hz.fract() != 0.0 || to_hz < 1.0 {
        bail!(
            "{}: sampled at {from_hz} Hz; the pipeline's rate {to_hz} Hz is not a whole number of Hz, so it cannot be resampled to",
            path.display()
        );
    }
    // rubato's FFT resampler panics (inside realfft) when a non-finite value reaches its
    // spectrum: refuse NaN, infinities and magnitudes whose 1024-point sums could overflow f32.
    if let Some((i, x)) = samples
        .iter()
        .enumerate()
        .find(|(_, x)| !x.is_finite() || x.abs() > MAX_SAMPLE_MAGNITUDE)
    {
        bail!(
            "{}: sample {i} (frame {}) is {x}, not a finite value within ±{MAX_SAMPLE_MAGNITUDE:e}: cannot be resampled",
            path.display(),
            i / channels.max(1)
        );
    }
    let to = to_hz as usize;
    if from_hz > 0 && to as u64 > u64::from(from_hz) * u64::from(MAX_UPSAMPLING) {
        bail!(
            "{}: sampled at {from_hz} Hz; resampling it to the pipeline's {to} Hz would upsample more than {MAX_UPSAMPLING}x (all but one of every {} samples invented): check the file's sample rate, or describe the pipeline at a rate near it",
            path.display(),
            to as u64 / u64::from(from_hz)
        );
    }
    // The FFT resampler works on blocks of from/g input and to/g output frames per channel
    // (g = gcd of the rates): an odd rate (a damaged header's 3.6 GHz, say) would make it
    // allocate gigabytes. Refuse what exceeds MAX_RESAMPLER_POINTS.
    let (n_in, n_out) = {
        let (mut a, mut b) = (u64::from(from_hz), to as u64);
        while b != 0 {
            (a, b) = (b, a % b);
        }
        let g = a.max(1);
        (u64::from(from_hz) / g, to as u64 / g)
    };
    let points = n_in.max(n_out).saturating_mul(channels.max(1) as u64);
    if from_hz == 0 || points > MAX_RESAMPLER_POINTS {
        bail!(
            "{}: resampling {from_hz} Hz to {to} Hz ({channels} channels) needs blocks of {n_in}:{n_out} frames per channel, \
             {points} points, above the limit of {MAX_RESAMPLER_POINTS}: resample the recording with another tool first",
            path.display()
        );
    }
    let frames = samples.len() / channels.max(1);
    let input = InterleavedSlice::new(samples, channels, frames)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("{}: cannot resample", path.display()))?;
    let mut r = Fft::<f32>::new(from_hz as usize, to, 1024, channels, FixedSync::Input)
        .with_context(|| {
            format!(
                "{}: cannot resample {from_hz} Hz to {to} Hz",
                path.display()
            )
        })?;
    let out = r
        .process_all(&input, frames, None)
        .with_context(|| format!("{}: resampling failed", path.display()))?;
    let data = out.take_data();
    COUNT.fetch_add(1, Ordering::Relaxed);
    if QUIET.load(Ordering::Relaxed) {
        return Ok(data);
    }
    eprintln!(
        "note: {}: resampled from {from_hz} Hz to {to} Hz ({RESAMPLER}), {frames} -> {} frames",
        path.display(),
        data.len() / channels.max(1)
    );
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_or_huge_samples_are_refused_by_name() {
        for bad in [f32::NAN, f32::INFINITY, -f32::INFINITY, 3e38] {
            let mut x = vec![0.25f32; 4800];
            x[1001] = bad;
            let e = to_rate(&x, 2, 48000, 16000.0, Path::new("bad.wav"))
                .expect_err("a non-finite or huge sample must be refused");
            let m = format!("{e:#}");
            assert!(m.contains("bad.wav: sample 1001 (frame 500)"), "{m}");
        }
    }

    #[test]
    fn rate_pairs_that_need_huge_resampler_blocks_are_refused() {
        let x = vec![0.25f32; 4800];
        // A damaged header's rate (3,615,570,496 Hz, as a fuzzer found) and many channels.
        for (from, ch) in [(3_615_570_496u32, 1usize), (44_101, 64), (0, 1)] {
            let e =
                to_rate(&x, ch, from, 16000.0, Path::new("odd.wav")).expect_err("must be refused");
            let m = format!("{e:#}");
            assert!(
                m.contains("odd.wav: resampling") && m.contains("limit"),
                "{m}"
            );
        }
        // Upsampling beyond 16x is refused with both rates; 16x itself is fine.
        let e = to_rate(&x, 1, 1, 16000.0, Path::new("one_hz.wav")).expect_err("1 Hz -> 16 kHz");
        let m = format!("{e:#}");
        assert!(
            m.contains("one_hz.wav: sampled at 1 Hz") && m.contains("more than 16x"),
            "{m}"
        );
        assert_eq!(
            to_rate(&x, 1, 1000, 16000.0, Path::new("k.wav"))
                .expect("1 kHz -> 16 kHz")
                .len(),
            16 * 4800
        );
        // 44.1 kHz stereo is fine.
        let y = to_rate(&vec![0.0f32; 8820], 2, 44_100, 16000.0, Path::new("ok.wav"))
            .expect("44.1 kHz resamples");
        assert_eq!(y.len(), 2 * 1600);
    }

    #[test]
    fn a_tone_keeps_its_frequency_and_duration() {
        // 1 kHz sine at 48 kHz, 0.5 s -> 16 kHz: 8000 frames of the same tone.
        let x: Vec<f32> = (0..24000)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 48000.0).sin())
            .collect();
        let y = to_rate(&x, 1, 48000, 16000.0, Path::new("t.wav")).expect("resample");
        assert_eq!(y.len(), 8000);
        // Away from the edges the samples follow sin(2π·1000·t) at 16 kHz.
        let err = (1000..7000)
            .map(|i| {
                (y[i] - (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16000.0).sin()).abs()
            })
            .fold(0.0f32, f32::max);
        assert!(err < 1e-2, "max error {err}");
    }
}
