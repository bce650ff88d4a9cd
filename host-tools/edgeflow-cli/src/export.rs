//! `edgeflow export MODEL -o model.tflite`: an edgeflow model written as a TFLite
//! flatbuffer (see `edgeflow_compile::export`), so a model trained and quantized with
//! edgeflow runs in TFLite / TFLite Micro with the same outputs.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::model_file;

/// Arguments of `edgeflow export`.
#[derive(Args)]
pub struct ExportArgs {
    /// The model: an edgeflow artifact (or a .tflite / .onnx model, compiled first).
    model: PathBuf,
    /// Where to write the .tflite file.
    #[arg(short, long)]
    output: PathBuf,
}

/// Runs the subcommand.
pub fn run(a: ExportArgs) -> Result<()> {
    let artifact = model_file::load_model(&a.model)?;
    let (graph, _) = edgeflow_compile::load::load(&artifact)
        .with_context(|| format!("{} is not a valid artifact", a.model.display()))?;
    let bytes = edgeflow_compile::export::export_tflite(&graph)
        .with_context(|| format!("cannot export {} as .tflite", a.model.display()))?;
    // The written file may hold more operators than the artifact (an explicit PAD before a
    // convolution whose padding TFLite's SAME cannot express): count what was written.
    let ops = edgeflow_compile::tflite::parse(&bytes)
        .ok()
        .and_then(|m| m.subgraphs())
        .and_then(|sg| sg.iter().next())
        .and_then(|g| g.operators())
        .map_or(0, |o| o.len());
    std::fs::write(&a.output, &bytes)
        .with_context(|| format!("cannot write {}", a.output.display()))?;
    println!(
        "wrote {} ({} bytes, {} ops); the feature pipeline, labels and monitoring baseline stay in the artifact",
        a.output.display(),
        bytes.len(),
        ops
    );
    Ok(())
}
