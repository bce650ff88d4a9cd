//! The served model: a validated artifact and what a request may send it.
//!
//! [`Served::load`] parses the artifact once (graph, weights, feature pipeline, labels,
//! monitoring baseline) and keeps the bytes; [`Served::predict`] runs one request the way
//! `edgeflow run` runs one input file: features straight to the model when they are exactly
//! its input tensor, otherwise raw samples through the artifact's own feature pipeline
//! (`edgeflow_dsp::host::run`), then one inference per feature tensor, outputs dequantized
//! (`scale * (q - zero_point)`) and the top-k classes listed. The JSON of one result is the
//! same as an element of `edgeflow run --json`'s `results`.

use std::sync::Arc;

use edgeflow_dsp::host::Sample;
use edgeflow_dsp::Input;
use edgeflow_format::graph::{DType, TensorDef};
use serde::Serialize;
use serde_json::{json, Value};

use crate::{InferenceError, ServeError};

/// Default cap on the arena the server allocates per inference (as `edgeflow run`'s).
pub const DEFAULT_MAX_ARENA: usize = 256 << 20;

/// A tensor's description, owned (for `GET /v1/model` and request checks).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TensorSpec {
    /// Dimensions, outermost first.
    pub shape: Vec<u32>,
    /// `int8`, `float32` or `int32`.
    pub dtype: &'static str,
    /// Quantization `(scale, zero_point)` of an int8 tensor (per-tensor).
    pub quant: Option<(f32, i32)>,
    /// Elements (product of `shape`).
    pub elements: usize,
}

impl TensorSpec {
    fn of(t: &TensorDef<'_>) -> Self {
        TensorSpec {
            shape: t.shape.dims().to_vec(),
            dtype: dtype_name(t.dtype),
            quant: t.quant.map(|q| (q.scale, q.zero_point)),
            elements: t.shape.num_elements().unwrap_or(0),
        }
    }

    /// Bytes of the tensor's data.
    pub fn bytes(&self) -> usize {
        self.elements * if self.dtype == "int8" { 1 } else { 4 }
    }
}

/// `"int8"`, `"float32"`, `"int32"` (as `edgeflow run`).
pub fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::I8 => "int8",
        DType::F32 => "float32",
        DType::I32 => "int32",
    }
}

/// The kind of raw input the artifact's feature pipeline takes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PipelineInput {
    /// Interleaved samples, `axes` per time step, framed in windows of `window` steps every
    /// `stride` steps.
    Signal {
        /// Values per time step.
        axes: u32,
        /// Time steps per second.
        rate_hz: f32,
        /// Time steps per window.
        window: u32,
        /// Time steps between window starts.
        stride: u32,
    },
    /// One vector of `len` numbers.
    Vector {
        /// Numbers per input.
        len: u32,
    },
    /// Up to `max_tokens` tokens.
    Text {
        /// Most tokens per input.
        max_tokens: u32,
    },
    /// An 8-bit image (HWC).
    Image,
}

/// One request's input, decoded from JSON or `.npy`.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// Exactly the model input tensor's bytes (little-endian elements of its dtype).
    Features(Vec<u8>),
    /// Raw inputs for the feature pipeline (several rows give several results).
    Samples(Vec<Sample>),
}

/// One inference: where it came from (`"window 2"`, `"row 3"` or empty, as `edgeflow run`
/// names them), the model input (features) and the raw output bytes.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Empty for a single result.
    pub from: String,
    /// The model input bytes the inference consumed.
    pub features: Vec<u8>,
    /// Output 0 bytes.
    pub output: Vec<u8>,
    /// Frames of a framed model input not in the previous outcome of the same request row
    /// (`u32::MAX`, every frame, for a row's first outcome and for features sent whole;
    /// the pipeline's hop after it): what the telemetry summary counts (`record_frames`).
    pub new_frames: u32,
}

/// A validated artifact ready to serve. Cheap to share (`Arc`); replaced whole on reload.
#[derive(Debug)]
pub struct Served {
    bytes: Arc<[u8]>,
    /// Where it was loaded from (file name), for messages.
    pub origin: String,
    /// Model input 0.
    pub input: TensorSpec,
    /// Model output 0.
    pub output: TensorSpec,
    /// Class labels from the artifact's `Labels` section.
    pub labels: Option<Vec<String>>,
    /// The feature pipeline's input, when the artifact carries one.
    pub pipeline: Option<PipelineInput>,
    /// The pipeline's description as TOML (for `GET /v1/model`).
    pub pipeline_toml: Option<String>,
    /// The artifact's metadata section as text (when UTF-8).
    pub metadata: Option<String>,
    /// Artifact format version.
    pub version: (u16, u16),
    /// CRC-32 of the artifact body (header bytes 12..16): the telemetry `model_hash`.
    pub hash: u32,
    /// Arena bytes one inference needs.
    pub arena_bytes: usize,
    /// Whether the artifact carries a monitoring baseline.
    pub has_baseline: bool,
    /// The weights packed once for the host kernels (outside the per-request arena).
    packed: edgeflow_nn::PackedModel,
}

impl Served {
    /// Validates `bytes` as an artifact the server can run: the model graph (one input),
    /// its feature pipeline and labels if present, and an arena within `max_arena` bytes.
    ///
    /// Errors: [`ServeError::Artifact`] naming `origin` and what is wrong. Never panics.
    pub fn load(bytes: Vec<u8>, origin: &str, max_arena: usize) -> Result<Self, ServeError> {
        let bytes: Arc<[u8]> = bytes.into();
        let bad = |what: String| ServeError::Artifact {
            origin: origin.to_string(),
            what,
        };
        let m = edgeflow_nn::Model::parse(&bytes)
            .map_err(|e| bad(format!("not a valid artifact: {e}")))?;
        let h = m.header();
        if h.inputs.len() != 1 {
            return Err(bad(format!(
                "the model has {} inputs; the server takes models with one",
                h.inputs.len()
            )));
        }
        let input = TensorSpec::of(&h.inputs[0]);
        let output = TensorSpec::of(h.outputs.first().ok_or_else(|| bad("no output".into()))?);
        let a = m.artifact();
        let labels = match a.labels {
            Some(s) => Some(
                edgeflow_format::labels::Labels::parse(s)
                    .map_err(|e| bad(format!("invalid labels section: {e}")))?
                    .iter()
                    .map(str::to_string)
                    .collect(),
            ),
            None => None,
        };
        let (pipeline, pipeline_toml) = match a.feature_pipeline {
            Some(section) => {
                // The same check the device runs: the pipeline's output is the model input.
                edgeflow::Model::parse(&bytes)
                    .map_err(|e| bad(format!("feature pipeline: {e}")))?;
                let p = edgeflow_dsp::Pipeline::from_bytes(section)
                    .map_err(|e| bad(format!("invalid feature pipeline section: {e}")))?;
                let kind = match p.desc().input {
                    Input::Signal {
                        axes,
                        rate_hz,
                        window,
                        stride,
                    } => PipelineInput::Signal {
                        axes,
                        rate_hz,
                        window,
                        stride,
                    },
                    Input::Vector { len } => PipelineInput::Vector { len },
                    Input::Text { max_tokens } => PipelineInput::Text { max_tokens },
                    _ => PipelineInput::Image,
                };
                (Some(kind), edgeflow_dsp::host::to_toml(p.desc()).ok())
            }
            None => (None, None),
        };
        let packed = edgeflow_nn::PackedModel::new(&m);
        let arena_bytes = m.arena_bytes();
        if arena_bytes > max_arena {
            return Err(bad(format!(
                "the model's arena needs {arena_bytes} bytes, above the limit of {max_arena} \
                 bytes (--max-arena)"
            )));
        }
        let hash = bytes
            .get(12..16)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes);
        Ok(Served {
            origin: origin.to_string(),
            input,
            output,
            labels,
            pipeline,
            pipeline_toml,
            metadata: a
                .metadata
                .and_then(|m| std::str::from_utf8(m).ok())
                .map(str::to_string),
            version: (a.major, a.minor),
            hash,
            arena_bytes,
            has_baseline: a.monitoring_baseline.is_some(),
            packed,
            bytes: Arc::clone(&bytes),
        })
    }

    /// The same model, its large ops split over up to `threads` threads per inference
    /// (results identical to one thread).
    pub fn with_op_threads(mut self, threads: usize) -> Self {
        self.packed = self.packed.with_threads(threads);
        self
    }

    /// The artifact bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// What `GET /v1/model` answers: labels, input and output specs, pipeline, metadata.
    pub fn describe(&self) -> Value {
        json!({
            "origin": self.origin,
            "artifact_version": [self.version.0, self.version.1],
            "model_hash": format!("{:08x}", self.hash),
            "input": self.input,
            "output": self.output,
            "labels": self.labels,
            "pipeline": self.pipeline.map(|p| match p {
                PipelineInput::Signal { axes, rate_hz, window, stride } => json!({
                    "input": "signal", "axes": axes, "rate_hz": rate_hz,
                    "window": window, "stride": stride,
                }),
                PipelineInput::Vector { len } => json!({ "input": "vector", "len": len }),
                PipelineInput::Text { max_tokens } => json!({ "input": "text", "max_tokens": max_tokens }),
                PipelineInput::Image => json!({ "input": "image" }),
            }),
            "pipeline_toml": self.pipeline_toml,
            "metadata": self.metadata,
            "arena_bytes": self.arena_bytes,
            "monitoring_baseline": self.has_baseline,
        })
    }

    /// Runs one request: pipeline (when the input is raw samples), then one inference per
    /// feature tensor. Errors: [`ServeError::BadRequest`] for input the model or pipeline
    /// cannot take (naming what is wrong), [`ServeError::Inference`] when the engine fails.
    pub fn predict(&self, req: &Request) -> Result<Vec<Outcome>, ServeError> {
        let mut news: Vec<u32> = Vec::new();
        let inputs: Vec<(String, Vec<u8>)> = match req {
            Request::Features(f) => {
                if f.len() != self.input.bytes() {
                    return Err(ServeError::BadRequest(format!(
                        "features: {} bytes, the model input {:?} {} needs {}",
                        f.len(),
                        self.input.shape,
                        self.input.dtype,
                        self.input.bytes()
                    )));
                }
                vec![(String::new(), f.clone())]
            }
            Request::Samples(samples) => {
                let Some(section) = self.artifact()?.feature_pipeline else {
                    return Err(ServeError::BadRequest(format!(
                        "the artifact has no feature pipeline: send \"features\" (the model \
                         input, {:?} {})",
                        self.input.shape, self.input.dtype
                    )));
                };
                let p = edgeflow_dsp::Pipeline::from_bytes(section)
                    .map_err(InferenceError::Pipeline)?;
                let many = samples.len() > 1;
                let mut outs = Vec::with_capacity(samples.len());
                for (i, s) in samples.iter().enumerate() {
                    outs.push(edgeflow_dsp::host::run(&p, s).map_err(|e| {
                        ServeError::BadRequest(format!(
                            "{}the feature pipeline refused the input: {e}",
                            if many {
                                format!("row {}: ", i + 1)
                            } else {
                                String::new()
                            }
                        ))
                    })?);
                }
                let o = &p.desc().output;
                let hop = if o.hop == 0 { o.frames } else { o.hop };
                news = outs
                    .iter()
                    .flat_map(|r| (0..r.len()).map(move |j| if j == 0 { u32::MAX } else { hop }))
                    .collect();
                let inputs = edgeflow_dsp::host::label_outputs(outs);
                if inputs.is_empty() {
                    return Err(ServeError::BadRequest(match self.pipeline {
                        Some(PipelineInput::Signal { axes, window, .. }) => format!(
                            "too short for one feature tensor: the pipeline needs at least \
                             {window} time steps of {axes} values ({} numbers)",
                            u64::from(window) * u64::from(axes)
                        ),
                        _ => "the input gave no feature tensor".to_string(),
                    }));
                }
                inputs
            }
        };
        let m = self.nn()?;
        let mut arena =
            edgeflow_nn::HostArena::for_model(&m).map_err(|_| InferenceError::Arena {
                bytes: m.arena_bytes(),
            })?;
        let mut rt =
            edgeflow_nn::Runtime::new(&m, arena.as_mut_bytes()).map_err(InferenceError::Nn)?;
        let mut out = Vec::with_capacity(inputs.len());
        for (k, (from, data)) in inputs.into_iter().enumerate() {
            let dst = rt.input_mut(0).map_err(InferenceError::Nn)?;
            if dst.len() != data.len() {
                return Err(InferenceError::FeatureBytes {
                    got: data.len(),
                    need: dst.len(),
                }
                .into());
            }
            dst.copy_from_slice(&data);
            rt.invoke_packed(&self.packed).map_err(InferenceError::Nn)?;
            let output = rt.output(0).map_err(InferenceError::Nn)?.to_vec();
            out.push(Outcome {
                from,
                features: data,
                output,
                new_frames: news.get(k).copied().unwrap_or(u32::MAX),
            });
        }
        Ok(out)
    }

    /// The parsed model. The bytes were validated by [`Served::load`] and never change, so
    /// this does not fail; should it, the error is an inference error, not a panic.
    fn nn(&self) -> Result<edgeflow_nn::Model<'_>, ServeError> {
        edgeflow_nn::Model::parse(&self.bytes).map_err(|e| InferenceError::Nn(e).into())
    }

    fn artifact(&self) -> Result<edgeflow_format::Artifact<'_>, ServeError> {
        edgeflow_format::Artifact::parse(&self.bytes)
            .map_err(|e| InferenceError::Artifact(e).into())
    }

    /// The model input as real numbers (dequantized int8), for telemetry summaries.
    pub fn features_f32(&self, bytes: &[u8]) -> Vec<f32> {
        match (self.input.dtype, self.input.quant) {
            ("int8", Some((s, zp))) => bytes
                .iter()
                .map(|&b| s * ((b as i8 as i32 - zp) as f32))
                .collect(),
            ("int8", None) => bytes.iter().map(|&b| f32::from(b as i8)).collect(),
            ("float32", _) => edgeflow_dsp::host::as_f32(bytes),
            _ => bytes
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
                .collect(),
        }
    }

    /// Output bytes as real numbers, exactly as `edgeflow run` prints them
    /// (`scale * (q - zero_point)` in f64 for int8).
    pub fn dequantize(&self, bytes: &[u8]) -> Vec<f64> {
        match self.output.dtype {
            "int8" => bytes
                .iter()
                .map(|&b| {
                    let q = f64::from(b as i8);
                    match self.output.quant {
                        Some((s, zp)) => f64::from(s) * (q - f64::from(zp)),
                        None => q,
                    }
                })
                .collect(),
            "float32" => bytes
                .chunks_exact(4)
                .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
            _ => bytes
                .chunks_exact(4)
                .map(|c| f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
        }
    }

    /// One result as `edgeflow run --json` writes it: `values`, `from` (when not empty),
    /// and `top` (the `k` best of the last row, with labels) when the model has labels or
    /// its output is a vector.
    pub fn result_json(&self, o: &Outcome, k: usize) -> Value {
        let values = self.dequantize(&o.output);
        let mut obj = json!({ "values": values });
        if !o.from.is_empty() {
            obj["from"] = o.from.clone().into();
        }
        let is_vector = self.output.shape.iter().rev().skip(1).all(|&d| d == 1);
        if self.labels.is_some() || is_vector {
            let classes = self.output.shape.last().copied().unwrap_or(1) as usize;
            obj["top"] = top_k(&values, classes, k)
                .into_iter()
                .map(|(i, s)| {
                    json!({
                        "class": i,
                        "label": self.labels.as_ref().and_then(|l| l.get(i)),
                        "score": s,
                    })
                })
                .collect();
        }
        obj
    }

    /// The label of class `i`, if the artifact has labels.
    pub fn label(&self, i: usize) -> Option<&str> {
        self.labels
            .as_ref()
            .and_then(|l| l.get(i))
            .map(String::as_str)
    }
}

/// The `k` largest of the last `classes` values, largest first; ties keep the lower class
/// first (as `edgeflow run`).
pub fn top_k(values: &[f64], classes: usize, k: usize) -> Vec<(usize, f64)> {
    let row = &values[values.len().saturating_sub(classes)..];
    let mut idx: Vec<(usize, f64)> = row.iter().copied().enumerate().collect();
    idx.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    idx.truncate(k);
    idx
}
