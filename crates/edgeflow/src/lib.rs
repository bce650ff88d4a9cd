//! edgeflow on the device: raw samples in, prediction out.
//!
//! One artifact carries the model and the feature pipeline it was trained with
//! (`FeaturePipeline` section). [`Model::parse`] validates both and checks that the
//! pipeline's output is exactly the model's input tensor (element count, type and int8
//! quantization); [`Engine`] then computes features with `edgeflow-dsp` straight into the
//! model's input tensor and runs `edgeflow-nn` whenever a feature tensor is complete.
//!
//! `no_std`, no `alloc`, no panics; the caller owns all memory (a feature workspace of
//! `f32` words and a byte arena, both sized by [`Model`]).
//!
//! The score of a [`Prediction`] is what the artifact's monitoring baseline says it is
//! ([`ScoreKind`]): the largest output value for classifiers, and for an anomaly model
//! (an autoencoder, baseline `ScoreKind::ReconstructionMse`) the reconstruction error —
//! the engine keeps a copy of the model input across inference (in the workspace) and
//! returns the mean squared difference between input and output.
//!
//! ```no_run
//! # fn demo(artifact: &[u8], samples: &[i16]) -> Result<(), edgeflow::Error> {
//! let model = edgeflow::Model::parse(artifact)?;
//! let mut workspace = [0.0f32; 4096];
//! let mut arena = [0u8; 16 * 1024]; // 16-byte aligned in real firmware
//! let mut engine = edgeflow::Engine::new(&model, &mut workspace, &mut arena)?;
//! // Push samples as they arrive (chunks of any size); a prediction comes out each time
//! // the pipeline completes a feature tensor.
//! engine.push_i16(samples, |p| {
//!     let _ = (p.class, p.score);
//! })?;
//! # Ok(()) }
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
// The panic audit (issue 19), enforced by `cargo xtask test` (clippy on the no_std build):
// no unwrap/expect/panic anywhere; no unchecked indexing or arithmetic outside the modules
// that allow it below, each with its reason.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

use core::fmt;

pub use edgeflow_dsp as dsp;
pub use edgeflow_nn as nn;

use edgeflow_format::baseline::MonitoringBaseline;
pub use edgeflow_format::baseline::ScoreKind;
use edgeflow_format::graph::DType;

#[cfg(feature = "std")]
pub mod host;

/// Why a model could not be loaded or run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The model graph or inference failed.
    Model(nn::Error),
    /// The feature pipeline is invalid or could not run.
    Features(dsp::Error),
    /// The artifact has no `FeaturePipeline` section.
    NoPipeline,
    /// The pipeline's output does not fit the model's input tensor.
    Mismatch {
        /// What differs: "element count", "element type", "quantization", or for an
        /// anomaly model "reconstruction length" (output 0 is not as long as input 0).
        what: &'static str,
    },
    /// The monitoring baseline section (which says what the score is) is invalid.
    Baseline(edgeflow_format::baseline::BaselineError),
}

impl From<nn::Error> for Error {
    fn from(e: nn::Error) -> Self {
        Error::Model(e)
    }
}

impl From<dsp::Error> for Error {
    fn from(e: dsp::Error) -> Self {
        Error::Features(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Model(e) => write!(f, "model: {e}"),
            Error::Features(e) => write!(f, "feature pipeline: {e}"),
            Error::NoPipeline => f.write_str("the artifact has no feature pipeline section"),
            Error::Mismatch { what } => write!(
                f,
                "the feature pipeline's output does not match the model input: {what} differs"
            ),
            Error::Baseline(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for Error {}

/// A validated artifact: the model and its feature pipeline, both borrowed from the
/// artifact bytes.
pub struct Model<'a> {
    nn: nn::Model<'a>,
    pipeline: dsp::Pipeline<'a>,
    /// The precomputed coefficient tables (PipelineTables section), little-endian `f32`.
    tables: Option<&'a [u8]>,
    /// What a prediction's score is (from the monitoring baseline; top output without one).
    score_kind: ScoreKind,
}

impl<'a> Model<'a> {
    /// Parses and validates the model graph and the feature pipeline, and checks that the
    /// pipeline produces exactly the model's input 0: same element count, `f32` for an
    /// `f32` input, int8 with the input's scale and zero point for an int8 input.
    ///
    /// The score kind comes from the monitoring baseline section when there is one
    /// ([`ScoreKind::TopOutput`] without); a [`ScoreKind::ReconstructionMse`] model must
    /// have an output 0 with as many elements as input 0.
    ///
    /// Errors: [`Error::Model`], [`Error::Features`], [`Error::NoPipeline`],
    /// [`Error::Mismatch`], [`Error::Baseline`]. Never panics.
    pub fn parse(artifact: &'a [u8]) -> Result<Self, Error> {
        let nn = nn::Model::parse(artifact)?;
        let section = nn.artifact().feature_pipeline.ok_or(Error::NoPipeline)?;
        let pipeline = dsp::Pipeline::from_bytes(section)?;
        let input = nn.header().inputs.first().copied().ok_or(Error::Mismatch {
            what: "element count",
        })?;
        if input.shape.num_elements() != Some(pipeline.output_len()) {
            return Err(Error::Mismatch {
                what: "element count",
            });
        }
        match (input.dtype, pipeline.desc().output.quantize, input.quant) {
            (DType::F32, None, _) => {}
            (DType::I8, Some(q), Some(mq)) => {
                if q.scale.to_bits() != mq.scale.to_bits() || q.zero_point != mq.zero_point {
                    return Err(Error::Mismatch {
                        what: "quantization",
                    });
                }
            }
            _ => {
                return Err(Error::Mismatch {
                    what: "element type",
                })
            }
        }
        // The format crate checked the section and bound it to this pipeline by CRC; the
        // word count must also match the pipeline's table layout.
        let tables = match nn.artifact().pipeline_tables {
            Some(t) if t.len() != pipeline.tables_len() => {
                return Err(Error::Mismatch {
                    what: "pipeline tables length",
                })
            }
            Some(t) => Some(t.bytes()),
            None => None,
        };
        let score_kind = match nn.artifact().monitoring_baseline {
            Some(b) => MonitoringBaseline::parse(b)
                .map_err(Error::Baseline)?
                .score_kind(),
            None => ScoreKind::TopOutput,
        };
        if score_kind == ScoreKind::ReconstructionMse {
            let out = nn.header().outputs.first().copied();
            if out.and_then(|o| o.shape.num_elements()) != Some(pipeline.output_len()) {
                return Err(Error::Mismatch {
                    what: "reconstruction length",
                });
            }
        }
        Ok(Model {
            nn,
            pipeline,
            tables,
            score_kind,
        })
    }

    /// What [`Prediction::score`] is for this model.
    pub fn score_kind(&self) -> ScoreKind {
        self.score_kind
    }

    /// Workspace words that hold a copy of the model input across inference
    /// (the input's element count for [`ScoreKind::ReconstructionMse`], else 0).
    fn kept_values(&self) -> usize {
        match self.score_kind {
            ScoreKind::ReconstructionMse => self.pipeline.output_len(),
            ScoreKind::TopOutput => 0,
        }
    }

    /// The model.
    pub fn nn(&self) -> &nn::Model<'a> {
        &self.nn
    }

    /// The feature pipeline.
    pub fn pipeline(&self) -> &dsp::Pipeline<'a> {
        &self.pipeline
    }

    /// `f32` words of feature workspace [`Engine::new`] needs: the pipeline's workspace,
    /// plus, for an image pipeline, one word per input value (`width * height *
    /// channels`), where [`Engine::push`] buffers an image's pixels until it is complete,
    /// plus, for an anomaly model ([`ScoreKind::ReconstructionMse`]), one word per model
    /// input element (the input kept across inference for the reconstruction error).
    pub fn workspace_len(&self) -> usize {
        self.pipeline
            .workspace_len()
            .saturating_add(self.image_values())
            .saturating_add(self.kept_values())
    }

    /// Input values of one image (0 for pipelines that do not take images).
    fn image_values(&self) -> usize {
        match self.pipeline.desc().input {
            dsp::Input::Image { .. } => self.pipeline.input_len(),
            _ => 0,
        }
    }

    /// Arena bytes [`Engine::new`] needs.
    pub fn arena_bytes(&self) -> usize {
        self.nn.arena_bytes()
    }
}

/// One prediction: the arg-max of output 0 and the model's score.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Prediction {
    /// Index of the largest output element (the class; for an autoencoder, the largest
    /// reconstructed element).
    pub class: usize,
    /// [`ScoreKind::TopOutput`]: the arg-max element's value, the output as a real number
    /// (`scale * (q - zero_point)` for int8). [`ScoreKind::ReconstructionMse`]: the
    /// reconstruction error (see [`ScoreKind`]), the anomaly score.
    pub score: f32,
}

/// Features and inference bound to caller memory.
pub struct Engine<'m, 'a, 'w, 'r> {
    features: dsp::Runtime<'m, 'a, 'w>,
    rt: nn::Runtime<'m, 'a, 'r>,
    /// Image pipelines: the pushed pixel values of the image being received (empty for
    /// other pipelines).
    pixels: &'w mut [f32],
    /// Values of `pixels` received so far.
    filled: usize,
    /// Anomaly models: the model input of the current inference as real numbers (empty
    /// for other models).
    kept: &'w mut [f32],
}

impl<'m, 'a, 'w, 'r> Engine<'m, 'a, 'w, 'r> {
    /// Binds a model to a feature workspace (at least [`Model::workspace_len`] words) and
    /// an arena (at least [`Model::arena_bytes`], aligned as the plan requires).
    pub fn new(
        model: &'m Model<'a>,
        workspace: &'w mut [f32],
        arena: &'r mut [u8],
    ) -> Result<Self, Error> {
        let needed = model.workspace_len();
        if workspace.len() < needed {
            return Err(Error::Features(dsp::Error::WorkspaceTooSmall {
                needed,
                got: workspace.len(),
            }));
        }
        let (workspace, pixels) = workspace
            .split_at_mut_checked(model.pipeline.workspace_len())
            .unwrap_or((&mut [], &mut []));
        let (pixels, kept) = pixels
            .split_at_mut_checked(model.image_values())
            .unwrap_or((&mut [], &mut []));
        let kept = kept.get_mut(..model.kept_values()).unwrap_or(&mut []);
        Ok(Engine {
            // Precomputed tables (same bits) when the artifact has them: no design at start.
            features: match model.tables {
                Some(t) => dsp::Runtime::with_tables(&model.pipeline, workspace, t)?,
                None => dsp::Runtime::new(&model.pipeline, workspace)?,
            },
            rt: nn::Runtime::new(&model.nn, arena)?,
            pixels,
            filled: 0,
            kept,
        })
    }

    /// Pushes interleaved samples (any chunk size); each time the pipeline completes a
    /// feature tensor, runs the model and calls `on_prediction`.
    ///
    /// For an image pipeline the samples are the image's pixel values, row-major with
    /// channels interleaved (as `run_image` takes them), each rounded and clamped to an
    /// 8-bit value ([`dsp::Runtime::run_image_values`]); every `width * height * channels`
    /// values complete one image, which is then run. [`Engine::reset`] drops a partial
    /// image.
    pub fn push(
        &mut self,
        mut samples: &[f32],
        mut on_prediction: impl FnMut(Prediction),
    ) -> Result<(), Error> {
        if !self.pixels.is_empty() {
            return self.push_pixels(samples, &mut |_| {}, &mut on_prediction);
        }
        while !samples.is_empty() {
            let r = self.features.push(samples)?;
            samples = samples.get(r.consumed..).unwrap_or(&[]);
            if r.ready {
                if let Some(p) = self.process()? {
                    on_prediction(p);
                }
            }
        }
        Ok(())
    }

    /// Image pipelines: buffers pixel values; runs each completed image.
    fn push_pixels(
        &mut self,
        mut samples: &[f32],
        on_features: &mut impl FnMut(&[u8]),
        on_prediction: &mut impl FnMut(Prediction),
    ) -> Result<(), Error> {
        while !samples.is_empty() {
            let free = self.pixels.get_mut(self.filled..).unwrap_or(&mut []);
            let n = free.len().min(samples.len());
            if let (Some(d), Some(s)) = (free.get_mut(..n), samples.get(..n)) {
                d.copy_from_slice(s);
            }
            samples = samples.get(n..).unwrap_or(&[]);
            self.filled = self.filled.saturating_add(n);
            if self.filled >= self.pixels.len() {
                self.filled = 0;
                let input = self.rt.input_mut(0)?;
                self.features.run_image_values(self.pixels, input)?;
                on_features(input);
                on_prediction(self.infer()?);
            }
        }
        Ok(())
    }

    /// As [`Engine::push`], and also calls `on_features` with the bytes of the model's
    /// input 0 each time a feature tensor is complete, just before the inference that
    /// consumes it (the arena may reuse that memory during inference, so this is the only
    /// moment the features can be read). Used by devices to feed a telemetry summary.
    pub fn push_observed(
        &mut self,
        samples: &[f32],
        mut on_features: impl FnMut(&[u8]),
        on_prediction: impl FnMut(Prediction),
    ) -> Result<(), Error> {
        self.push_observed_frames(samples, |input, _| on_features(input), on_prediction)
    }

    /// As [`Engine::push_observed`], and also tells `on_features` how many frames of the
    /// model input are new since the previous inference (`dsp::Runtime::new_frames`): for
    /// a pipeline that stacks frames, all of them for the first inference after
    /// [`Engine::new`] or [`Engine::reset`] and the pipeline's hop (at most its frames) in
    /// a steady stream (1 for a single-frame signal output); 0 for inputs that are not
    /// signals (vectors, text, images). A
    /// device passes it to the telemetry summary's `record_frames`, so that every frame is
    /// counted once.
    pub fn push_observed_frames(
        &mut self,
        mut samples: &[f32],
        mut on_features: impl FnMut(&[u8], u32),
        mut on_prediction: impl FnMut(Prediction),
    ) -> Result<(), Error> {
        if !self.pixels.is_empty() {
            return self.push_pixels(
                samples,
                &mut |input: &[u8]| on_features(input, 0),
                &mut on_prediction,
            );
        }
        while !samples.is_empty() {
            let r = self.features.push(samples)?;
            samples = samples.get(r.consumed..).unwrap_or(&[]);
            if r.ready {
                if let Some(p) = self.process_observed(&mut on_features)? {
                    on_prediction(p);
                }
            }
        }
        Ok(())
    }

    /// As [`Engine::push`] for 16-bit samples.
    pub fn push_i16(
        &mut self,
        mut samples: &[i16],
        mut on_prediction: impl FnMut(Prediction),
    ) -> Result<(), Error> {
        while !samples.is_empty() {
            let r = self.features.push_i16(samples)?;
            samples = samples.get(r.consumed..).unwrap_or(&[]);
            if r.ready {
                if let Some(p) = self.process()? {
                    on_prediction(p);
                }
            }
        }
        Ok(())
    }

    fn process(&mut self) -> Result<Option<Prediction>, Error> {
        self.process_observed(&mut |_, _| {})
    }

    fn process_observed(
        &mut self,
        on_features: &mut impl FnMut(&[u8], u32),
    ) -> Result<Option<Prediction>, Error> {
        let input = self.rt.input_mut(0)?;
        if self.features.process(input)? {
            on_features(input, self.features.new_frames());
            return self.infer().map(Some);
        }
        Ok(None)
    }

    /// Features from one vector, then inference.
    pub fn run_vector(&mut self, values: &[f32]) -> Result<Prediction, Error> {
        self.features.run_vector(values, self.rt.input_mut(0)?)?;
        self.infer()
    }

    /// Features from tokens, then inference.
    pub fn run_tokens(&mut self, tokens: &[&str]) -> Result<Prediction, Error> {
        self.features.run_tokens(tokens, self.rt.input_mut(0)?)?;
        self.infer()
    }

    /// Features from an 8-bit image, then inference.
    pub fn run_image(&mut self, pixels: &[u8]) -> Result<Prediction, Error> {
        self.features.run_image(pixels, self.rt.input_mut(0)?)?;
        self.infer()
    }

    /// The raw bytes of model output `index` after the last inference.
    pub fn output(&self, index: usize) -> Result<&[u8], Error> {
        Ok(self.rt.output(index)?)
    }

    /// Forgets buffered samples and stacked frames (and a partial image).
    pub fn reset(&mut self) {
        self.filled = 0;
        self.features.reset();
    }

    fn infer(&mut self) -> Result<Prediction, Error> {
        if !self.kept.is_empty() {
            // The arena may reuse the input's memory during inference: keep it first.
            let def = self.rt.model().header().inputs.first().copied();
            let input = self.rt.input_mut(0)?;
            let def = def.map(|d| (d.dtype, d.quant.map(|q| (q.scale, q.zero_point))));
            dequantize(def, input, self.kept);
        }
        self.rt.invoke()?;
        let def = self
            .rt
            .model()
            .header()
            .outputs
            .first()
            .copied()
            .ok_or(Error::Model(nn::Error::NoSuchTensor { index: 0, count: 0 }))?;
        let out = self.rt.output(0)?;
        let mut best = Prediction {
            class: 0,
            score: f32::NEG_INFINITY,
        };
        let mut consider = |i: usize, v: f32| {
            if v > best.score {
                best = Prediction { class: i, score: v };
            }
        };
        match (def.dtype, def.quant) {
            (DType::I8, Some(q)) => {
                for (i, &b) in out.iter().enumerate() {
                    // zero_point is in [-128, 127] (checked by `parse`): no overflow.
                    consider(
                        i,
                        q.scale * ((b as i8 as i32).wrapping_sub(q.zero_point) as f32),
                    );
                }
            }
            (DType::F32, _) => {
                for (i, c) in out.chunks_exact(4).enumerate() {
                    if let Some(c) = c.first_chunk::<4>() {
                        consider(i, f32::from_le_bytes(*c));
                    }
                }
            }
            _ => {
                for (i, c) in out.chunks_exact(4).enumerate() {
                    if let Some(c) = c.first_chunk::<4>() {
                        consider(i, i32::from_le_bytes(*c) as f32);
                    }
                }
            }
        }
        if !self.kept.is_empty() {
            let q = def.quant.map(|q| (q.scale, q.zero_point));
            best.score = reconstruction_mse(self.kept, Some((def.dtype, q)), out);
        }
        Ok(best)
    }
}

/// Tensor bytes as real numbers: int8 `scale * (q - zero_point)`, f32 as is, int32 as
/// its value (the same conversions as the arg-max above), into `out` (as many as fit).
fn dequantize(def: Option<(DType, Option<(f32, i32)>)>, bytes: &[u8], out: &mut [f32]) {
    match def {
        Some((DType::I8, Some((scale, zero_point)))) => {
            for (o, &b) in out.iter_mut().zip(bytes) {
                *o = scale * ((b as i8 as i32).wrapping_sub(zero_point) as f32);
            }
        }
        Some((DType::F32, _)) => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                if let Some(c) = c.first_chunk::<4>() {
                    *o = f32::from_le_bytes(*c);
                }
            }
        }
        _ => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                if let Some(c) = c.first_chunk::<4>() {
                    *o = i32::from_le_bytes(*c) as f32;
                }
            }
        }
    }
}

/// The reconstruction error ([`ScoreKind::ReconstructionMse`]): the mean over the input's
/// elements of `(output - input)^2`, both as real numbers, summed in `f32` in element order
/// (no fused multiply-add), so that host and device give the same bits.
fn reconstruction_mse(
    input: &[f32],
    out_def: Option<(DType, Option<(f32, i32)>)>,
    out: &[u8],
) -> f32 {
    let mut sum = 0f32;
    let width = match out_def {
        Some((DType::I8, _)) => 1,
        _ => 4,
    };
    for (k, &x) in input.iter().enumerate() {
        let mut y = [0f32];
        let at = k.saturating_mul(width);
        dequantize(
            out_def,
            out.get(at..at.saturating_add(width)).unwrap_or(&[]),
            &mut y,
        );
        let d = y.first().copied().unwrap_or(f32::NAN) - x;
        sum += d * d;
    }
    sum / input.len().max(1) as f32
}
