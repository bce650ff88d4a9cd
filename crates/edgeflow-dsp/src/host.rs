//! Host side (`std` feature): TOML files, postcard bytes for the artifact, Butterworth
//! design, and running a pipeline over whole datasets.
//!
//! The host runs exactly the same [`Runtime`] as the device, so features computed here for
//! training are bit-identical to the ones the device computes.

use std::path::Path;

use serde::Deserialize;

use crate::desc::{Block, Butterworth, F32s, FilterKind, Input, PipelineDesc};
use crate::{Pipeline, Runtime};

/// A pipeline description owning all its data (read from TOML).
pub type Spec = PipelineDesc<'static>;

/// Why a host operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The TOML text does not describe a pipeline.
    #[error("{path}: not a valid pipeline description: {source}")]
    Toml {
        /// The file (or `<string>`).
        path: String,
        /// The parser's message.
        source: toml::de::Error,
    },
    /// The description is invalid.
    #[error("{path}: {source}")]
    Invalid {
        /// The file (or `<string>`).
        path: String,
        /// The validation error, naming the block and parameter.
        source: crate::Error,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// An IIR block asks for a filter design, but the input has no sample rate.
    #[error("iir: `design` needs a signal input with `rate_hz`")]
    DesignNeedsRate,
    /// A Butterworth design's order is outside 1..=8.
    #[error("iir design: `order` is {0}, must be 1 to 8")]
    DesignOrder(u32),
    /// A Butterworth design's cutoff is not strictly between 0 and the Nyquist frequency.
    #[error("iir design: `cutoff_hz` {cutoff_hz} must be between 0 and rate / 2 = {nyquist_hz}")]
    DesignCutoff {
        /// The requested cutoff, Hz.
        cutoff_hz: f64,
        /// Half the input's sample rate, Hz.
        nyquist_hz: f64,
    },
    /// A vocabulary token contains `'\n'` (the artifact stores tokens one per line).
    #[error("vocabulary: token {0:?} contains a newline")]
    TokenNewline(String),
    /// A vocabulary token is listed twice.
    #[error("vocabulary: token {0:?} appears twice")]
    TokenTwice(String),
    /// Running the pipeline failed.
    #[error("running the pipeline: {0}")]
    Run(crate::Error),
    /// Writing the description as TOML failed.
    #[error("encoding the pipeline: {0}")]
    EncodeToml(#[source] toml::ser::Error),
    /// Writing the description as postcard bytes failed.
    #[error("encoding the pipeline: {0}")]
    EncodeBytes(#[source] postcard::Error),
    /// A thread of [`run_many`]'s pool panicked (a bug; the panic message went to stderr).
    #[error("a feature-extraction worker thread panicked")]
    WorkerPanicked,
}

/// Parses a TOML description, designs any Butterworth filters given by `design`, and
/// validates the result (errors name the block and parameter). `origin` names the text in
/// errors (a path, or `<string>`).
pub fn from_toml(text: &str, origin: &str) -> Result<Spec, HostError> {
    let mut spec =
        Spec::deserialize(toml::Deserializer::new(text)).map_err(|e| HostError::Toml {
            path: origin.to_string(),
            source: e,
        })?;
    resolve(&mut spec)?;
    Pipeline::new(spec.clone()).map_err(|e| HostError::Invalid {
        path: origin.to_string(),
        source: e,
    })?;
    Ok(spec)
}

/// Reads and validates a TOML pipeline file (see [`from_toml`]).
pub fn load(path: &Path) -> Result<Spec, HostError> {
    let text = std::fs::read_to_string(path).map_err(|e| HostError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    from_toml(&text, &path.display().to_string())
}

/// The description as TOML text.
pub fn to_toml(spec: &PipelineDesc<'_>) -> Result<String, HostError> {
    toml::to_string(spec).map_err(HostError::EncodeToml)
}

/// The pipeline's coefficient tables ([`Pipeline::tables_len`] words), designed as
/// [`Runtime::new`] designs them: what the artifact's `PipelineTables` section stores so
/// that a device can start with [`Runtime::with_tables`].
pub fn tables(pipeline: &Pipeline<'_>) -> Result<Vec<f32>, HostError> {
    let mut ws = vec![0.0f32; pipeline.workspace_len()];
    let rt = Runtime::new(pipeline, &mut ws).map_err(HostError::Run)?;
    Ok(rt.tables().to_vec())
}

/// The description as postcard bytes (the artifact's `FeaturePipeline` section), which
/// [`Pipeline::from_bytes`] reads without copying.
pub fn to_bytes(spec: &PipelineDesc<'_>) -> Result<Vec<u8>, HostError> {
    postcard::to_stdvec(spec).map_err(HostError::EncodeBytes)
}

/// Fills every [`Block::Iir`] that has a `design` but no coefficients, and checks what the
/// device cannot check cheaply (duplicate vocabulary tokens, tokens containing `'\n'`).
pub fn resolve(spec: &mut Spec) -> Result<(), HostError> {
    let rate = match spec.input {
        Input::Signal { rate_hz, .. } => Some(rate_hz),
        _ => None,
    };
    let blocks = spec
        .stream
        .iter_mut()
        .chain(spec.blocks.iter_mut())
        .chain(spec.branches.iter_mut().flat_map(|b| b.blocks.iter_mut()))
        .chain(spec.post.iter_mut());
    for b in blocks {
        match b {
            Block::Iir {
                sos,
                design: Some(d),
            } if sos.is_empty() => {
                let rate = rate.ok_or(HostError::DesignNeedsRate)?;
                *sos = F32s::from(butterworth(d, rate)?);
            }
            Block::Vocabulary { tokens, .. } => {
                let mut seen = std::collections::HashSet::new();
                for t in tokens.iter() {
                    if t.contains('\n') {
                        return Err(HostError::TokenNewline(t.to_string()));
                    }
                    if !seen.insert(t) {
                        return Err(HostError::TokenTwice(t.to_string()));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

type C = (f64, f64);

fn cmul(a: C, b: C) -> C {
    (a.0 * b.0 - a.1 * b.1, a.0 * b.1 + a.1 * b.0)
}

fn cdiv(a: C, b: C) -> C {
    let d = b.0 * b.0 + b.1 * b.1;
    ((a.0 * b.0 + a.1 * b.1) / d, (a.1 * b.0 - a.0 * b.1) / d)
}

/// Designs a digital Butterworth filter as second-order sections (`b0 b1 b2 1 a1 a2` per
/// section, as `scipy.signal.butter(..., output="sos")` up to the pairing of sections):
/// analog prototype poles, frequency pre-warping, bilinear transform; computed in `f64`
/// and rounded to `f32`.
pub fn butterworth(d: &Butterworth, rate_hz: f32) -> Result<Vec<f32>, HostError> {
    let n = d.order as usize;
    if !(1..=8).contains(&n) {
        return Err(HostError::DesignOrder(d.order));
    }
    let fs = rate_hz as f64;
    let fc = d.cutoff_hz as f64;
    if !(fc > 0.0 && fc < fs / 2.0) {
        return Err(HostError::DesignCutoff {
            cutoff_hz: fc,
            nyquist_hz: fs / 2.0,
        });
    }
    let warped = 2.0 * fs * (std::f64::consts::PI * fc / fs).tan();
    let fs2 = 2.0 * fs;
    // Analog prototype poles in the left half plane, upper half first; one real pole for odd n.
    let mut sections = Vec::new();
    let mut gain = 1.0f64;
    let pairs = n / 2;
    let mut poles: Vec<C> = Vec::new();
    for k in 0..pairs {
        // n is 1..=8 (checked above): the pole angles in f64, no integer arithmetic.
        let (k, nf) = (k as f64, n as f64);
        let theta = std::f64::consts::PI * (2.0 * k + nf + 1.0) / (2.0 * nf);
        poles.push((theta.cos(), theta.sin()));
    }
    if n % 2 == 1 {
        poles.push((-1.0, 0.0));
    }
    for (i, &p) in poles.iter().enumerate() {
        // For odd n the real pole was pushed last, after the `pairs` conjugate pairs.
        let real = n % 2 == 1 && i == pairs;
        // Scale to the cutoff (low-pass) or invert (high-pass).
        let pa = match d.kind {
            FilterKind::Lowpass => (p.0 * warped, p.1 * warped),
            FilterKind::Highpass => cdiv((warped, 0.0), p),
        };
        // Bilinear transform of the pole.
        let pd = cdiv((fs2 + pa.0, pa.1), (fs2 - pa.0, -pa.1));
        // Gain factor of this pole (and its conjugate): prod over zeros/poles of the
        // analog-to-digital scale (fs2 - z) / (fs2 - p).
        let g = match d.kind {
            // Low-pass: analog gain warped per pole; zeros at infinity map to z = -1.
            FilterKind::Lowpass => {
                let num = if real { warped } else { warped * warped };
                let den = if real {
                    fs2 - pa.0
                } else {
                    let dd = (fs2 - pa.0, -pa.1);
                    dd.0 * dd.0 + dd.1 * dd.1
                };
                num / den
            }
            // High-pass: zeros at s = 0 map to z = 1; each zero contributes fs2.
            FilterKind::Highpass => {
                let num = if real { fs2 } else { fs2 * fs2 };
                let den = if real {
                    fs2 - pa.0
                } else {
                    let dd = (fs2 - pa.0, -pa.1);
                    dd.0 * dd.0 + dd.1 * dd.1
                };
                // The prototype's gain for this pole: 1 / |p|^2 = 1 (poles on the unit circle).
                num / den
            }
        };
        gain *= g;
        let zero = match d.kind {
            FilterKind::Lowpass => -1.0,
            FilterKind::Highpass => 1.0,
        };
        if real {
            sections.push([1.0, -zero, 0.0, 1.0, -pd.0, 0.0]);
        } else {
            let pp = cmul(pd, (pd.0, -pd.1));
            sections.push([1.0, -2.0 * zero, zero * zero, 1.0, -2.0 * pd.0, pp.0]);
        }
    }
    if let Some(first) = sections.first_mut() {
        for c in first.iter_mut().take(3) {
            *c *= gain;
        }
    }
    Ok(sections.iter().flatten().map(|&v| v as f32).collect())
}

/// One input of a dataset.
#[derive(Clone, Debug, PartialEq)]
pub enum Sample {
    /// Interleaved samples of a signal (a whole recording).
    Signal(Vec<f32>),
    /// One vector.
    Vector(Vec<f32>),
    /// Tokens.
    Text(Vec<String>),
    /// 8-bit pixels, HWC.
    Image(Vec<u8>),
}

/// Runs the pipeline over one input; returns every output tensor's bytes (a signal gives
/// one per complete output, possibly none; the other inputs exactly one).
pub fn run(pipeline: &Pipeline<'_>, sample: &Sample) -> Result<Vec<Vec<u8>>, HostError> {
    let mut ws = vec![0.0f32; pipeline.workspace_len()];
    let mut rt = Runtime::new(pipeline, &mut ws).map_err(HostError::Run)?;
    run_on(&mut rt, sample)
}

/// Runs one input on an existing runtime (its state is reset first).
pub fn run_on(rt: &mut Runtime<'_, '_, '_>, sample: &Sample) -> Result<Vec<Vec<u8>>, HostError> {
    rt.reset();
    let mut out = vec![0u8; rt.pipeline().output_bytes()];
    let mut outputs = Vec::new();
    match sample {
        Sample::Signal(x) => rt
            .feed(x, &mut out, |o| outputs.push(o.to_vec()))
            .map_err(HostError::Run)?,
        Sample::Vector(x) => {
            rt.run_vector(x, &mut out).map_err(HostError::Run)?;
            outputs.push(out);
        }
        Sample::Text(t) => {
            let refs: Vec<&str> = t.iter().map(String::as_str).collect();
            rt.run_tokens(&refs, &mut out).map_err(HostError::Run)?;
            outputs.push(out);
        }
        Sample::Image(px) => {
            rt.run_image(px, &mut out).map_err(HostError::Run)?;
            outputs.push(out);
        }
    }
    Ok(outputs)
}

/// Runs the pipeline over many inputs on all cores, each input from a fresh state (one
/// runtime per thread, reset between inputs, so coefficient tables are computed once per
/// thread); results are in input order.
pub fn run_many(
    pipeline: &Pipeline<'_>,
    samples: &[Sample],
) -> Result<Vec<Vec<Vec<u8>>>, HostError> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(samples.len().max(1));
    let chunk = samples.len().div_ceil(threads.max(1)).max(1);
    let work = |part: &[Sample]| -> Result<Vec<Vec<Vec<u8>>>, HostError> {
        let mut ws = vec![0.0f32; pipeline.workspace_len()];
        let mut rt = Runtime::new(pipeline, &mut ws).map_err(HostError::Run)?;
        part.iter().map(|x| run_on(&mut rt, x)).collect()
    };
    if threads <= 1 {
        return work(samples);
    }
    let results: Vec<Result<Vec<Vec<Vec<u8>>>, HostError>> = std::thread::scope(|s| {
        let handles: Vec<_> = samples
            .chunks(chunk)
            .map(|part| s.spawn(move || work(part)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(HostError::WorkerPanicked)))
            .collect()
    });
    let mut all = Vec::with_capacity(samples.len());
    for r in results {
        all.extend(r?);
    }
    Ok(all)
}

/// The feature tensors of a batch, each named as `edgeflow run` and `edgeflow serve` report
/// it: `"row N"` (from 1) when there are several samples, `"window N"` when the only sample
/// gave several windows, empty for a single tensor. `outs[i]` holds sample `i`'s tensors in
/// order (as [`run_many`] returns them); the result keeps that order.
pub fn label_outputs(outs: Vec<Vec<Vec<u8>>>) -> Vec<(String, Vec<u8>)> {
    let many = outs.len() > 1;
    let mut labelled = Vec::new();
    for (i, per_sample) in outs.into_iter().enumerate() {
        let windows = per_sample.len() > 1;
        for (j, o) in per_sample.into_iter().enumerate() {
            let what = match (many, windows) {
                (true, _) => format!("row {}", i.saturating_add(1)),
                (false, true) => format!("window {}", j.saturating_add(1)),
                (false, false) => String::new(),
            };
            labelled.push((what, o));
        }
    }
    labelled
}

/// Output bytes as `f32` values (for an unquantized pipeline).
pub fn as_f32(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .filter_map(|c| <[u8; 4]>::try_from(c).ok())
        .map(f32::from_le_bytes)
        .collect()
}

/// Output bytes as `i8` values (for a quantizing pipeline).
pub fn as_i8(bytes: &[u8]) -> Vec<i8> {
    bytes.iter().map(|&b| b as i8).collect()
}
