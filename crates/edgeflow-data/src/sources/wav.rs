//! WAV audio (through `hound`).

use std::path::{Path, PathBuf};

use crate::dataset::Dataset;
use crate::error::{Error, Result};

/// Decoded audio: interleaved samples scaled to `[-1, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// Samples per second per channel.
    pub sample_rate: u32,
    /// Number of interleaved channels.
    pub channels: u16,
    /// Bits per sample in the file.
    pub bits_per_sample: u16,
    /// `frames × channels` samples; integer PCM of `b` bits is divided by `2^(b-1)`,
    /// float PCM is kept as it is.
    pub samples: Vec<f32>,
}

impl Audio {
    /// Number of frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }

    /// Duration in seconds.
    pub fn seconds(&self) -> f64 {
        self.frames() as f64 / f64::from(self.sample_rate.max(1))
    }
}

/// Decodes the WAV file at `path`.
///
/// Errors: the file cannot be read ([`Error::Io`]), is not a WAV file of a supported
/// kind ([`Error::File`]), or its sample data is truncated or corrupt
/// ([`Error::Record`] naming the first bad sample as the record).
pub fn read_wav(path: &Path) -> Result<Audio> {
    let bad = |e: hound::Error| match e {
        hound::Error::IoError(io) => Error::io(path, io),
        other => Error::file(path, other.to_string()),
    };
    let mut r = hound::WavReader::open(path).map_err(bad)?;
    let spec = r.spec();
    let expected = r.len() as usize;
    let mut samples = Vec::with_capacity(expected.min(1 << 24));
    let sample_err =
        |i: usize, e: hound::Error| Error::record(path, i as u64, format!("sample {i}: {e}"));
    match spec.sample_format {
        hound::SampleFormat::Float => {
            for (i, s) in r.samples::<f32>().enumerate() {
                samples.push(s.map_err(|e| sample_err(i, e))?);
            }
        }
        hound::SampleFormat::Int => {
            let bits = spec.bits_per_sample;
            if !(1..=32).contains(&bits) {
                return Err(Error::file(
                    path,
                    format!("{bits} bits per sample is not supported"),
                ));
            }
            let scale = 1.0 / (1u64 << (bits - 1)) as f64;
            for (i, s) in r.samples::<i32>().enumerate() {
                let v = s.map_err(|e| sample_err(i, e))?;
                samples.push((f64::from(v) * scale) as f32);
            }
        }
    }
    if samples.len() != expected {
        return Err(Error::record(
            path,
            samples.len() as u64,
            format!("truncated: {} of {expected} samples", samples.len()),
        ));
    }
    Ok(Audio {
        sample_rate: spec.sample_rate,
        channels: spec.channels,
        bits_per_sample: spec.bits_per_sample,
        samples,
    })
}

/// One element: the decoded WAV file at `path` (an error item if it cannot be decoded).
/// For many files, map [`read_wav`] over [`Dataset::list_files`].
pub fn wav(path: impl Into<PathBuf>) -> Dataset<Audio> {
    let path: PathBuf = path.into();
    let name = format!("wav({})", path.display());
    Dataset::from_fn(name, move |_| std::iter::once(read_wav(&path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, spec: hound::WavSpec, samples: &[i32]) {
        let mut w = hound::WavWriter::create(p, spec).unwrap();
        for s in samples {
            w.write_sample(*s).unwrap();
        }
        w.finalize().unwrap();
    }

    #[test]
    fn pcm16_is_scaled_and_truncation_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        write(&p, spec, &[0, 16384, -32768, 32767]);
        let a = wav(&p).collect_vec().unwrap().remove(0);
        assert_eq!(a.samples, [0.0, 0.5, -1.0, 32767.0 / 32768.0]);
        assert_eq!((a.frames(), a.channels, a.sample_rate), (2, 2, 8000));
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
        let e = read_wav(&p).unwrap_err().to_string();
        assert!(e.contains("a.wav"), "{e}");
        std::fs::write(&p, b"RIFFnonsense").unwrap();
        assert!(read_wav(&p).unwrap_err().to_string().contains("a.wav"));
    }
}
