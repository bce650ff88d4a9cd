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
    let to = to_hz as usize;
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
