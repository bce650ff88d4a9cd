//! `edgeflow features --pipeline P.toml INPUT -o OUT.npy`: runs a feature pipeline (the
//! same code the device runs) over one input file and writes the features as `.npy`. The
//! pipeline, inputs and output are read and written by [`crate::feature_io`] (inputs by
//! extension, audio in 16-bit units); a folder or a labelled CSV goes to [`crate::batch`].

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use edgeflow_dsp::host;
use edgeflow_dsp::{Input, OutputType, Pipeline};

use crate::feature_io::{load_pipeline, read_input, write_npy};

/// Arguments of `edgeflow features`.
#[derive(Args, Debug)]
pub struct FeaturesArgs {
    /// The feature pipeline: a TOML file, or an artifact with a feature pipeline section.
    #[arg(long)]
    pipeline: PathBuf,
    /// The input: .wav, .csv, .npy, .png, .jpg or .txt; or a folder with one sub-folder
    /// of such files per class (writes OUT.labels.npy and OUT.classes.txt beside OUT).
    input: PathBuf,
    /// Where to write the features (.npy; float32, or int8 when the pipeline quantizes).
    #[arg(short, long)]
    output: PathBuf,
    /// For a vector pipeline and a .csv input: the label column (header name or 0-based
    /// index); each row is one example, and OUT.labels.npy and OUT.classes.txt are
    /// written beside OUT as for a folder.
    #[arg(long, value_name = "COLUMN")]
    label: Option<String>,
}

/// Runs the subcommand.
pub fn run(a: FeaturesArgs) -> Result<()> {
    let spec = load_pipeline(&a.pipeline)?;
    if let Some(label) = &a.label {
        if a.input.is_dir() {
            bail!(
                "{}: --label names a CSV column; a folder is labelled by its sub-folders",
                a.input.display()
            );
        }
        return crate::batch::run_labelled_csv(spec, &a.pipeline, &a.input, label, &a.output);
    }
    if a.input.is_dir() {
        return crate::batch::run(spec, &a.pipeline, &a.input, &a.output);
    }
    let p = Pipeline::new(spec.clone())
        .with_context(|| format!("{} is not a valid pipeline", a.pipeline.display()))?;
    let samples = read_input(&a.input, &p)?;
    let outputs = host::run_many(&p, &samples).context("running the pipeline")?;
    let per_output: Vec<usize> = p.output_shape().into_iter().filter(|&d| d > 0).collect();
    let (shape, data): (Vec<u64>, Vec<u8>) = match p.desc().input {
        Input::Signal { window, stride, .. } => {
            let outs = outputs.into_iter().next().unwrap_or_default();
            if outs.is_empty() {
                bail!(
                    "{}: too short for one output: the pipeline needs {} windows of {window} time steps every {stride}",
                    a.input.display(),
                    p.desc().output.frames
                );
            }
            let mut shape = vec![outs.len() as u64];
            shape.extend(per_output.iter().map(|&d| d as u64));
            if p.desc().output.frames == 1 {
                shape.remove(1);
            }
            (shape, outs.concat())
        }
        Input::Image { .. } => (
            per_output.iter().map(|&d| d as u64).collect(),
            outputs.into_iter().flatten().flatten().collect(),
        ),
        Input::Vector { .. } | Input::Text { .. } => {
            let rows = outputs.len() as u64;
            let data: Vec<u8> = outputs.into_iter().flatten().flatten().collect();
            (vec![rows, p.output_len() as u64], data)
        }
    };
    write_npy(&a.output, &shape, p.output_type(), &data)?;
    crate::outln!(
        "wrote {}: shape {:?} {}; the pipeline needs {} bytes of static RAM on a device",
        a.output.display(),
        shape,
        match p.output_type() {
            OutputType::F32 => "float32",
            OutputType::I8 => "int8",
        },
        p.ram_bytes()
    )?;
    Ok(())
}
