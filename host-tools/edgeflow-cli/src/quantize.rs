//! `edgeflow quantize MODEL -o OUT --calib FILE…`: post-training int8 quantization of a
//! float model (a float `.tflite`, or the float artifact `edgeflow train` writes) into an
//! edgeflow artifact.
//!
//! Calibration samples come either from `.npy` files of feature rows (float32, shape
//! `[N, …input shape]`), or from raw data files (`.wav`, `.csv`, `.npy` signals, images …)
//! run through the model's own feature pipeline — the artifact's pipeline section, or
//! `--pipeline` — exactly as `edgeflow features` and the device compute them. The int8
//! artifact carries the float artifact's pipeline (with its output quantization set to
//! the new int8 input), labels, metadata and monitoring baseline.
//!
//! The monitoring baseline's feature histograms were counted by training on float
//! features; the device bins the int8 model input dequantized. `--baseline-data` (the
//! training feature rows, or raw training files, read as `--calib` is) recounts them on
//! the int8 grid, as `edgeflow pipeline run`'s quantize stage does; without it the
//! command says that the baseline is still float-counted.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use edgeflow_compile::ir::Graph;
use edgeflow_compile::load::Sections;
use edgeflow_compile::quantize::{quantize, QuantizeOptions, RangeMethod};
use edgeflow_compile::reference::{bytes_f32, f32_bytes, Evaluator};
use edgeflow_dsp::host::{self as dsp_host, Spec};
use edgeflow_dsp::{OutputType, Pipeline};

use crate::feature_io;

/// Arguments of `edgeflow quantize`.
#[derive(Args, Debug)]
pub struct QuantizeArgs {
    /// The float model: a float32 `.tflite` or a float edgeflow artifact.
    model: PathBuf,
    /// Where to write the int8 artifact.
    #[arg(short, long)]
    output: PathBuf,
    /// Calibration data (repeatable): `.npy` feature rows `[N, …input shape]` (float32),
    /// or raw data files run through the model's feature pipeline.
    #[arg(long, required = true)]
    calib: Vec<PathBuf>,
    /// Treat `.npy` calibration files as raw pipeline input rather than feature rows.
    #[arg(long)]
    calib_raw: bool,
    /// Use at most this many calibration samples (the first ones).
    #[arg(long)]
    calib_limit: Option<usize>,
    /// Activation range method: mse (default, with bias correction chosen by measurement
    /// on the calibration samples: BENCHMARKS.md), minmax (the TFLite converter's; with
    /// --no-bias-correction it gives the converter's model), kl (TensorRT's entropy
    /// calibration), percentile (99.99) or percentile:P.
    #[arg(long, default_value = "mse")]
    method: RangeMethod,
    /// One weight scale per tensor instead of per output channel.
    #[arg(long)]
    per_tensor: bool,
    /// Keep float32 input and output (QUANTIZE / DEQUANTIZE at the edges).
    #[arg(long)]
    float_io: bool,
    /// Leave the biases as they are. By default (bias correction) each conv /
    /// fully-connected bias loses the mean shift its int8 weights cause on the calibration
    /// set, before it is quantized (chosen by measurement: BENCHMARKS.md).
    #[arg(long)]
    no_bias_correction: bool,
    /// A feature pipeline (TOML) for a `.tflite` model or to replace the artifact's.
    #[arg(long)]
    pipeline: Option<PathBuf>,
    /// Recount the monitoring baseline's feature histograms on these training data (as
    /// `--calib`: `.npy` feature rows or raw files; repeatable), quantized to the int8
    /// input and dequantized as the device bins them. The bin edges stay.
    #[arg(long)]
    baseline_data: Vec<PathBuf>,
}

/// Runs the subcommand.
pub fn run(a: QuantizeArgs) -> Result<()> {
    let bytes = fs::read(&a.model).with_context(|| format!("cannot read {}", a.model.display()))?;
    let (graph, mut sections) = if edgeflow_compile::is_artifact(&bytes) {
        edgeflow_compile::load::load(&bytes)
            .with_context(|| format!("{} is not a valid artifact", a.model.display()))?
    } else if a
        .model
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
        || edgeflow_compile::onnx::looks_like_onnx(&bytes)
    {
        (
            crate::model_file::import_onnx(&a.model, &bytes)?,
            Sections::default(),
        )
    } else {
        let g = edgeflow_compile::import::import(&bytes)
            .with_context(|| format!("cannot import {}", a.model.display()))?;
        (g, Sections::default())
    };
    let spec: Option<Spec> = match &a.pipeline {
        Some(p) => Some(feature_io::load_pipeline(p)?),
        None if sections.feature_pipeline.is_some() => Some(feature_io::load_pipeline(&a.model)?),
        None => None,
    };
    let mut samples = feature_rows(&a, &a.calib, &graph, spec.as_ref())?;
    if let Some(n) = a.calib_limit {
        samples.truncate(n);
    }
    let opts = QuantizeOptions {
        method: a.method,
        per_channel: !a.per_tensor,
        float_io: a.float_io,
        bias_correction: !a.no_bias_correction,
    };
    let q = quantize(&graph, &samples, &opts)
        .with_context(|| format!("cannot quantize {}", a.model.display()))?;
    let name = a
        .model
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("model");
    let compiled = edgeflow_compile::emit(&q, name)?;
    sections.feature_pipeline = None;
    let mut artifact = edgeflow_compile::with_sections(&compiled.artifact, &sections)?;
    if let Some(spec) = &spec {
        artifact = edgeflow::host::attach_pipeline(&artifact, spec)
            .context("cannot attach the feature pipeline to the int8 model")?;
    }
    let baseline_note = if sections.monitoring_baseline.is_none() {
        None
    } else if a.baseline_data.is_empty() {
        Some("monitoring baseline: carried over as training counted it, on float features (give --baseline-data TRAIN to recount it on the int8 input the device bins)".to_string())
    } else {
        let rows = feature_rows(&a, &a.baseline_data, &graph, spec.as_ref())?;
        match recount_baseline(&artifact, &rows).with_context(|| {
            format!(
                "recounting the monitoring baseline of {}",
                a.output.display()
            )
        })? {
            Some(b) => {
                artifact = b;
                Some(format!(
                    "monitoring baseline: recounted on {} rows of --baseline-data, on the int8 input the device bins",
                    rows.len()
                ))
            }
            None => Some(
                "monitoring baseline: kept (the model input is float, as training counted it)"
                    .into(),
            ),
        }
    };
    fs::write(&a.output, &artifact)
        .with_context(|| format!("cannot write {}", a.output.display()))?;
    let agree = agreement(&graph, &artifact, &samples)?;
    println!(
        "wrote {} ({} bytes, arena {} bytes, {} ops); {} calibration samples, {:?} ranges, {} weights, {}",
        a.output.display(),
        artifact.len(),
        compiled.arena_bytes,
        q.ops.len(),
        samples.len(),
        a.method,
        if a.per_tensor { "per-tensor" } else { "per-channel" },
        if a.no_bias_correction { "no bias correction" } else { "bias correction" },
    );
    println!(
        "float vs int8 on the calibration set: top-1 agreement {:.2} %, output SNR {:.1} dB",
        agree.0 * 100.0,
        agree.1
    );
    if let Some(note) = baseline_note {
        println!("{note}");
    }
    Ok(())
}

/// Recounts the monitoring baseline of the int8 artifact `artifact` on the feature rows
/// `rows` (float, one model input each) as the device will see them: quantized to the
/// model input's int8 grid (the feature pipeline's own quantizer) and dequantized, the way
/// the device application bins them. Training counted the float features; on features
/// whose values sit near the bin edges (discrete ones: pixel intensities) the two differ
/// by a bin and the device's clean stream looks drifted. The edges, the class prior and
/// the score histogram stay. Returns the rewritten artifact, or `None` when there is
/// nothing to recount (a float input, or no baseline section).
pub(crate) fn recount_baseline(artifact: &[u8], rows: &[Vec<f32>]) -> Result<Option<Vec<u8>>> {
    use edgeflow_format::baseline::{MonitoringBaseline, OwnedBaseline};
    let m = edgeflow_nn::Model::parse(artifact)?;
    let Some(input) = m.header().inputs.first().copied() else {
        return Ok(None);
    };
    let (edgeflow_format::graph::DType::I8, Some(qp)) = (input.dtype, input.quant) else {
        return Ok(None);
    };
    let Some(section) = m.artifact().monitoring_baseline else {
        return Ok(None);
    };
    let parsed = MonitoringBaseline::parse(section)
        .map_err(|e| anyhow::anyhow!("the monitoring baseline section: {e}"))?;
    let mut owned = OwnedBaseline::from_parsed(&parsed);
    let row_len = input.shape.num_elements().unwrap_or(0);
    if rows.is_empty() {
        bail!("no rows to recount the baseline on");
    }
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    let (scale, zp) = (qp.scale, qp.zero_point);
    owned
        .recount(&flat, row_len, |x| {
            let q = edgeflow_dsp::kernels::quantize(x, scale, zp);
            scale * ((i32::from(q) - zp) as f32)
        })
        .map_err(|e| {
            anyhow::anyhow!(
                "a monitored feature index is not below the model input's {row_len} values: {e}"
            )
        })?;
    let section = owned
        .to_bytes()
        .map_err(|e| anyhow::anyhow!("the recounted baseline: {e}"))?;
    Ok(Some(crate::convert::with_section(
        artifact,
        edgeflow_format::SectionKind::MonitoringBaseline,
        &section,
    )?))
}

/// Feature rows from `paths` (`--calib` or `--baseline-data`), each as many float values
/// as the model's input.
fn feature_rows(
    a: &QuantizeArgs,
    paths: &[PathBuf],
    graph: &Graph,
    spec: Option<&Spec>,
) -> Result<Vec<Vec<f32>>> {
    let Some(&input) = graph.inputs.first() else {
        bail!("{}: the model has no input", a.model.display());
    };
    let n: usize = graph.tensors[input]
        .shape
        .iter()
        .map(|&d| d as usize)
        .product();
    let mut samples = Vec::new();
    for path in paths {
        let is_npy = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
        if is_npy && !a.calib_raw {
            let rows = read_rows(path, n)?;
            samples.extend(rows);
            continue;
        }
        let Some(spec) = spec else {
            bail!(
                "{}: raw calibration data needs a feature pipeline, and {} has none (give --pipeline, or .npy feature rows)",
                path.display(),
                a.model.display()
            );
        };
        let p = Pipeline::new(spec.clone()).context("the feature pipeline is invalid")?;
        if p.output_type() != OutputType::F32 {
            bail!("the feature pipeline quantizes its output; a float model needs float features");
        }
        if p.output_len() != n {
            bail!(
                "the feature pipeline gives {} values, the model input needs {n}",
                p.output_len()
            );
        }
        let inputs = feature_io::read_input(path, &p)?;
        let outs = dsp_host::run_many(&p, &inputs).context("running the feature pipeline")?;
        let before = samples.len();
        samples.extend(outs.into_iter().flatten().map(|b| dsp_host::as_f32(&b)));
        if samples.len() == before {
            bail!(
                "{}: the feature pipeline produced no output",
                path.display()
            );
        }
    }
    Ok(samples)
}

/// Rows of `n` float32 values from a `.npy` file.
fn read_rows(path: &Path, n: usize) -> Result<Vec<Vec<f32>>> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let npy = npyz::NpyFile::new(&bytes[..])
        .with_context(|| format!("{} is not a valid .npy file", path.display()))?;
    let shape = npy.shape().to_vec();
    let descr = match npy.dtype() {
        npyz::DType::Plain(ts) => ts.to_string(),
        other => bail!("{}: unsupported .npy dtype {other:?}", path.display()),
    };
    if !descr.ends_with("f4") {
        bail!(
            "{}: dtype {descr}; calibration feature rows must be float32 ('<f4')",
            path.display()
        );
    }
    let total: u64 = shape.iter().product();
    let per_row: u64 = shape.iter().skip(1).product();
    if total == 0 {
        bail!(
            "{}: the calibration set is empty (shape {shape:?})",
            path.display()
        );
    }
    if per_row as usize != n && total as usize != n {
        bail!(
            "{}: shape {shape:?} gives rows of {per_row} values; the model input needs {n} per sample",
            path.display()
        );
    }
    let v: Vec<f32> = npy.into_vec()?;
    Ok(v.chunks(n).map(<[f32]>::to_vec).collect())
}

/// Float-vs-int8 top-1 agreement and output SNR (dB) over `samples`.
pub(crate) fn agreement(float: &Graph, int8: &[u8], samples: &[Vec<f32>]) -> Result<(f64, f64)> {
    let eval = Evaluator::new(float)?;
    let model = edgeflow_nn::Model::parse(int8)?;
    let h = model.header();
    let (in_def, out_def) = (h.inputs[0], h.outputs[0]);
    let mut arena = edgeflow_nn::HostArena::for_model(&model)?;
    let mut rt = edgeflow_nn::Runtime::new(&model, arena.as_mut_bytes())?;
    let (mut same, mut sig, mut noise) = (0usize, 0f64, 0f64);
    for s in samples {
        let want = bytes_f32(
            eval.run(&[&f32_bytes(s)])?[float.outputs[0]]
                .as_deref()
                .unwrap_or(&[]),
        );
        rt.input_mut(0)?.copy_from_slice(&encode(&in_def, s));
        rt.invoke()?;
        let got = decode(&out_def, rt.output(0)?);
        same += (argmax(&want) == argmax(&got)) as usize;
        for (w, g) in want.iter().zip(&got) {
            sig += (*w as f64).powi(2);
            noise += (*w as f64 - *g as f64).powi(2);
        }
    }
    let snr = if noise == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (sig / noise).log10()
    };
    Ok((same as f64 / samples.len().max(1) as f64, snr))
}

/// Float values as the bytes of a model input (quantized for an int8 input).
pub(crate) fn encode(t: &edgeflow_format::graph::TensorDef<'_>, x: &[f32]) -> Vec<u8> {
    match (t.dtype, t.quant) {
        (edgeflow_format::graph::DType::I8, Some(q)) => x
            .iter()
            .map(|&v| {
                (((v / q.scale).round() as i64 + q.zero_point as i64).clamp(-128, 127) as i8) as u8
            })
            .collect(),
        _ => f32_bytes(x),
    }
}

/// A model output as float values (dequantized for an int8 output).
pub(crate) fn decode(t: &edgeflow_format::graph::TensorDef<'_>, b: &[u8]) -> Vec<f32> {
    match (t.dtype, t.quant) {
        (edgeflow_format::graph::DType::I8, Some(q)) => b
            .iter()
            .map(|&v| (v as i8 as i32 - q.zero_point) as f32 * q.scale)
            .collect(),
        _ => bytes_f32(b),
    }
}

/// Index of the largest value (the first on ties).
pub(crate) fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}
