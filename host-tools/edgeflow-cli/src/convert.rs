//! `edgeflow convert MODEL -o OUT.edgeflow [--pipeline P.toml] [--labels labels.txt]`.
//!
//! Nothing is changed silently: a pipeline whose int8 quantization differs from the model
//! input's is refused unless `--adopt-model-quantization` is given, and then the change is
//! printed; a float pipeline in front of an int8 model is stored with the input's
//! quantization added, and that is printed too.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use edgeflow_format::graph::DType;
use edgeflow_format::{Artifact, SectionKind};

use crate::{labels, model_file, outln};

/// Arguments of `edgeflow convert`.
#[derive(Args)]
pub struct ConvertArgs {
    /// The model: a .tflite file (or an artifact, to add a pipeline or labels to it).
    model: PathBuf,
    /// Where to write the artifact.
    #[arg(short, long)]
    output: PathBuf,
    /// A feature pipeline (TOML) to store in the artifact, so that the device computes
    /// the model's input from raw samples with the same code as the host.
    #[arg(long)]
    pipeline: Option<PathBuf>,
    /// Store the model input's int8 scale and zero point in the pipeline when the
    /// pipeline's own `quantize` differs (the features then differ from the TOML's).
    #[arg(long)]
    adopt_model_quantization: bool,
    /// Class labels to store in the artifact: a text file, one label per line, the class
    /// index is the line index. Their number must equal the model's output classes.
    #[arg(long)]
    labels: Option<PathBuf>,
}

/// Runs the subcommand. The model is read once (its input for the pipeline's
/// quantization, its output for the label count), the new sections are encoded, and the
/// artifact is assembled once and parsed once at the end to prove it.
pub fn run(a: ConvertArgs) -> Result<()> {
    let compiled = model_file::load_model(&a.model)?;
    let model = edgeflow_nn::Model::parse(&compiled)?;
    let pipeline = match &a.pipeline {
        Some(p) => {
            let spec = edgeflow_dsp::host::load(p)?;
            let spec = check_quantization(&model, spec, p, a.adopt_model_quantization)?;
            Some(
                edgeflow::host::pipeline_sections(&model, &spec)
                    .with_context(|| format!("cannot attach {} to the model", p.display()))?,
            )
        }
        None => None,
    };
    let labels = match &a.labels {
        Some(path) => {
            let l = labels::read_file(path)?;
            let out = model
                .header()
                .outputs
                .first()
                .copied()
                .context("the model has no output")?;
            let dims = out.shape.dims().to_vec();
            let classes = dims.last().copied().unwrap_or(1) as usize;
            if l.len() != classes {
                bail!(
                    "{}: {} labels, but the model's output has {classes} classes (shape {dims:?})",
                    path.display(),
                    l.len()
                );
            }
            Some((labels::encode(&l)?, l.len()))
        }
        None => None,
    };
    // The model's view borrows `compiled`: done with it before `compiled` moves on.
    drop(model);
    let artifact = if pipeline.is_none() && labels.is_none() {
        compiled
    } else {
        let a = Artifact::parse(&compiled).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut parts = edgeflow_format::write::Parts::of(&a);
        if let Some((p, t)) = &pipeline {
            parts.feature_pipeline = Some(p);
            parts.pipeline_tables = Some(t);
        }
        if let Some((l, _)) = &labels {
            parts.labels = Some(l);
        }
        parts
            .assemble()
            .map_err(|e| anyhow::anyhow!("cannot assemble the artifact: {e}"))?
    };
    // The one parse that proves the written artifact runs: with a pipeline, the facade's
    // (the pipeline's output must fit the model input); without, the run-time's.
    let (facade, plain);
    let m: &edgeflow_nn::Model<'_> = match &a.pipeline {
        Some(p) => {
            facade = edgeflow::Model::parse(&artifact).map_err(|e| {
                anyhow::anyhow!(
                    "cannot attach {} to the model: the pipeline does not fit the model: {e}",
                    p.display()
                )
            })?;
            facade.nn()
        }
        None => {
            plain = edgeflow_nn::Model::parse(&artifact)?;
            &plain
        }
    };
    std::fs::write(&a.output, &artifact)
        .with_context(|| format!("cannot write {}", a.output.display()))?;
    outln!(
        "wrote {} ({} bytes, arena {} bytes, {} ops{})",
        a.output.display(),
        artifact.len(),
        m.arena_bytes(),
        m.header().op_count,
        labels.map_or(String::new(), |(_, n)| format!(", {n} labels"))
    )?;
    Ok(())
}

/// Compares the pipeline's output quantization with the model input's and returns the
/// spec to store: unchanged when they agree, refused when they differ (unless `adopt`),
/// and every change printed.
fn check_quantization(
    m: &edgeflow_nn::Model<'_>,
    mut spec: edgeflow_dsp::host::Spec,
    path: &Path,
    adopt: bool,
) -> Result<edgeflow_dsp::host::Spec> {
    let Some(input) = m.header().inputs.first().copied() else {
        return Ok(spec);
    };
    let name = path.display();
    let own = spec.output.quantize;
    match (input.dtype, own, input.quant) {
        (DType::I8, Some(q), Some(mq)) => {
            let same = q.scale.to_bits() == mq.scale.to_bits() && q.zero_point == mq.zero_point;
            if !same && !adopt {
                bail!(
                    "{name}: the pipeline quantizes its output with scale {:?} and zero point {}, \
                     the model input with scale {:?} and zero point {}; features from {name} would \
                     differ from the artifact's. Set `quantize = {{ scale = {:?}, zero_point = {} }}` \
                     in the pipeline's [output], or pass --adopt-model-quantization",
                    q.scale,
                    q.zero_point,
                    mq.scale,
                    mq.zero_point,
                    mq.scale,
                    mq.zero_point
                );
            }
            if !same {
                outln!(
                    "note: adopted the model input's quantization (scale {:?}, zero point {}) \
                     in place of the pipeline's (scale {:?}, zero point {})",
                    mq.scale,
                    mq.zero_point,
                    q.scale,
                    q.zero_point
                )?;
            }
        }
        (DType::I8, None, Some(mq)) => {
            outln!(
                "note: the pipeline's float32 output is quantized to int8 with the model input's \
                 scale {:?} and zero point {}",
                mq.scale,
                mq.zero_point
            )?;
        }
        (DType::F32, Some(q), _) => {
            if !adopt {
                bail!(
                    "{name}: the pipeline quantizes its output to int8 (scale {:?}, zero point {}), \
                     but the model input is float32. Remove `quantize` from the pipeline's \
                     [output], or pass --adopt-model-quantization to store it without",
                    q.scale,
                    q.zero_point
                );
            }
            spec.output.quantize = None;
            outln!("note: removed the pipeline's int8 quantization: the model input is float32")?;
        }
        _ => {}
    }
    Ok(spec)
}

/// `artifact` with section `kind` set to `bytes` (replacing any), other sections kept.
pub fn with_section(artifact: &[u8], kind: SectionKind, bytes: &[u8]) -> Result<Vec<u8>> {
    let a = Artifact::parse(artifact).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut parts = edgeflow_format::write::Parts::of(&a);
    match kind {
        SectionKind::FeaturePipeline => parts.set_feature_pipeline(Some(bytes)),
        SectionKind::Labels => parts.labels = Some(bytes),
        SectionKind::MonitoringBaseline => parts.monitoring_baseline = Some(bytes),
        SectionKind::Metadata => parts.metadata = Some(bytes),
        other => anyhow::bail!("with_section cannot replace the {other:?} section"),
    }
    let out = parts
        .assemble()
        .map_err(|e| anyhow::anyhow!("cannot assemble the artifact: {e}"))?;
    edgeflow_nn::Model::parse(&out)?;
    Ok(out)
}
