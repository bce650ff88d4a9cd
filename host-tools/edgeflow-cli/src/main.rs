//! `edgeflow`: the command-line front end of the edgeflow toolchain.
//!
//! - `edgeflow convert MODEL.tflite -o OUT.edgeflow` compiles a TFLite model to an artifact;
//! - `edgeflow inspect MODEL` prints ops, tensors, shapes, quantization, flash and arena
//!   bytes and MACs per op, and the static RAM of the feature pipeline when the artifact
//!   carries one;
//! - `edgeflow run MODEL --input X [-o Y.npy]` runs the model on a tensor, or on a raw
//!   sample through the artifact's feature pipeline, and prints the top classes;
//! - `edgeflow boards` lists the boards `--board` accepts;
//! - `edgeflow serve MODEL` serves an artifact over HTTP (or stdin/stdout lines).
//!
//! `MODEL` may be a `.tflite` file or an artifact everywhere. Every failure is one message
//! on stderr (the error chain, naming the file) and a non-zero exit status; a closed
//! stdout ends the command quietly with success.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use edgeflow_format::graph::{DType, TensorDef};
use npyz::WriterBuilder;

mod batch;
mod boards;
mod convert;
mod data;
mod device;
mod evaluate;
mod export;
mod features;
mod filetype;
mod init;
mod labels;
mod monitor;
mod output;
mod pipeline;
mod project;
mod quantize;
mod report;
mod resample;
mod run;
mod train;
mod validate;

#[derive(Parser)]
#[command(
    name = "edgeflow",
    version,
    about = "edgeflow: from data to microcontroller and back"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile a .tflite model into an edgeflow artifact (with its feature pipeline and labels).
    Convert(convert::ConvertArgs),
    /// Write a model (an edgeflow artifact, int8 or float) as a .tflite file that TFLite
    /// and TFLite Micro run with the same outputs.
    Export(export::ExportArgs),
    /// Describe a model: ops, tensors, quantization, flash/arena bytes, MACs per op and
    /// the static RAM of its feature pipeline.
    Inspect {
        /// A .tflite model or an edgeflow artifact.
        model: PathBuf,
        /// Check the arena and artifact against a board (a name from `edgeflow boards`, or
        /// a path to a board TOML); exits with an error if the model does not fit.
        #[arg(long)]
        board: Option<String>,
        #[command(flatten)]
        boards: boards::BoardsDirArg,
    },
    /// Run a model on a .npy tensor, or on a raw sample through the artifact's pipeline.
    Run(run::RunArgs),
    /// Compute features: run a feature pipeline over a WAV, CSV, image or .npy input.
    Features(features::FeaturesArgs),
    /// Post-training int8 quantization of a float model (.tflite or float artifact).
    Quantize(quantize::QuantizeArgs),
    /// Check a model against a board and gates: accuracy, float-vs-int8 agreement, RAM,
    /// flash, latency, vs the deployed model, and bit-exactness on the emulated board.
    Validate(validate::ValidateArgs),
    /// Look at data: `head`, `inspect`, `stats` (statistics, charts), `schema` (infer),
    /// `validate` (anomalies against a schema, training/serving skew).
    Data {
        #[command(subcommand)]
        command: data::DataCommand,
    },
    /// List the boards `--board` accepts: built in, and the user's own board files.
    Boards(boards::BoardsArgs),
    /// Check an artifact against a board's budgets and put it on the board: for an
    /// emulated board, start QEMU with the model in a slot (or, if it is running, update
    /// the model slot over the link, without touching the firmware).
    Flash(device::FlashArgs),
    /// Talk to a running device: `replay` samples into it, `stop` it.
    Device {
        #[command(subcommand)]
        command: device::DeviceCommand,
    },
    /// Monitor deployed models: ingest telemetry, check drift, report, serve a live page.
    Monitor {
        #[command(subcommand)]
        command: monitor::MonitorCommand,
    },
    /// Train the model a config describes, on features from its feature pipeline; writes
    /// a float32 artifact, burn's record, checkpoints and a training log.
    Train(train::TrainArgs),
    /// Evaluate a trained model (float, and optionally int8) on the config's test split.
    Evaluate(evaluate::EvaluateArgs),
    /// Serve an artifact: HTTP predictions, streaming, metrics, hot reload, telemetry,
    /// or a stdin/stdout line mode (`--stdin`).
    Serve(edgeflow_serve::ServeArgs),
    /// Run the whole flow of an `edgeflow.toml` as one cached pipeline.
    Pipeline {
        #[command(subcommand)]
        command: pipeline::PipelineCommand,
    },
    /// Write a commented, working `edgeflow.toml` from a template.
    Init(init::InitArgs),
}

fn main() {
    if let Err(e) = real_main() {
        if output::is_broken_pipe(&e) {
            // The reader closed stdout (`edgeflow ... | head`): nothing more to say.
            std::process::exit(0);
        }
        eprintln!("error: {}", output::message(&e));
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    match Cli::parse().command {
        Command::Convert(args) => convert::run(args)?,
        Command::Export(args) => export::run(args)?,
        Command::Inspect {
            model,
            board,
            boards,
        } => {
            let artifact = filetype::load_model(&model)?;
            let m = edgeflow_nn::Model::parse(&artifact)
                .with_context(|| format!("{} is not a valid artifact", model.display()))?;
            out!(
                "{}",
                edgeflow_compile::describe::describe(&m, artifact.len())
            )?;
            let mut pipeline_ram = 0;
            if let Some(section) = m.artifact().feature_pipeline {
                let p = edgeflow_dsp::Pipeline::from_bytes(section).with_context(|| {
                    format!("{}: invalid feature pipeline section", model.display())
                })?;
                outln!()?;
                outln!(
                    "feature pipeline  static RAM {} bytes (workspace), {} features per frame, output {} values",
                    p.ram_bytes(),
                    p.features_per_frame(),
                    p.output_len()
                )?;
                pipeline_ram = p.ram_bytes();
            }
            if let Some(section) = m.artifact().labels {
                let l = labels::decode(section)
                    .with_context(|| format!("{}: labels section", model.display()))?;
                outln!()?;
                outln!("labels ({})  {}", l.len(), l.join(", "))?;
            }
            if let Some(b) = board {
                let board = boards.catalog()?.get(&b)?;
                let budget = edgeflow_compile::budget::Budget::new(&m, artifact.len(), &board)
                    .with_pipeline_ram(pipeline_ram);
                outln!()?;
                out!("{budget}")?;
                validate::print_estimate(&m, &board);
                if !budget.fits() {
                    bail!("{} does not fit on {}", model.display(), board.name);
                }
            }
        }
        Command::Run(args) => run::run(args)?,
        Command::Data { command } => data::run(command)?,
        Command::Features(args) => features::run(args)?,
        Command::Boards(args) => boards::run(args)?,
        Command::Quantize(args) => quantize::run(args)?,
        Command::Validate(args) => validate::run(args)?,
        Command::Flash(args) => device::flash(args)?,
        Command::Device { command } => device::device(command)?,
        Command::Monitor { command } => monitor::run(command)?,
        Command::Train(args) => train::run(args)?,
        Command::Evaluate(args) => evaluate::run(args)?,
        Command::Serve(args) => edgeflow_serve::run(args)?,
        Command::Pipeline { command } => pipeline::run(command)?,
        Command::Init(args) => init::run(args)?,
    }
    Ok(())
}

/// Default cap on the arena `run` allocates: far above any microcontroller model (their
/// arenas are kilobytes to a few megabytes), small enough that a hostile artifact of a few
/// hundred bytes cannot make the host allocate and write gigabytes.
pub(crate) const DEFAULT_MAX_ARENA: usize = 256 << 20;

/// A byte limit from environment variable `var`, or `default` when it is unset.
pub(crate) fn env_limit(var: &str, default: usize) -> Result<usize> {
    match std::env::var(var) {
        Ok(v) => v
            .trim()
            .parse()
            .with_context(|| format!("{var}={v:?} is not a byte count")),
        Err(_) => Ok(default),
    }
}

/// The model input in `path` (an `.npy` read by edgeflow-data: C order whatever the
/// file's order, native byte order whatever the file's), as the tensor's bytes. The shape
/// must be exactly the model input's.
pub(crate) fn read_npy(path: &Path, t: &TensorDef<'_>) -> Result<Vec<u8>> {
    use edgeflow_data::sources::npy::TensorData;
    let a = edgeflow_data::sources::npy::read_npy(path)?;
    let shape: Vec<u64> = a.shape.iter().map(|&d| d as u64).collect();
    let want: Vec<u64> = t.shape.dims().iter().map(|&d| d as u64).collect();
    if shape != want {
        let count = |s: &[u64]| s.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let hint = if want.first() == Some(&1) && want.get(1..) == Some(&shape[..]) {
            " (add the batch dimension of 1: np.expand_dims(x, 0))"
        } else if shape.first() == Some(&1) && shape.get(1..) == Some(&want[..]) {
            " (remove the leading dimension of 1)"
        } else if count(&shape) == count(&want) {
            " (same number of elements in another layout: reshape or transpose it explicitly)"
        } else {
            ""
        };
        bail!(
            "{}: shape {:?}, but the model input is {:?}{hint}",
            path.display(),
            shape,
            want
        );
    }
    let out = match (t.dtype, a.data) {
        (DType::I8, TensorData::I8(v)) => v.into_iter().map(|v| v as u8).collect(),
        (DType::F32, TensorData::F32(v)) => v.into_iter().flat_map(f32::to_le_bytes).collect(),
        (DType::I32, TensorData::I32(v)) => v.into_iter().flat_map(i32::to_le_bytes).collect(),
        (want, got) => bail!(
            "{}: dtype {}, the model input is {}",
            path.display(),
            got.dtype_name(),
            match want {
                DType::I8 => "int8 ('|i1')",
                DType::F32 => "float32 ('<f4')",
                DType::I32 => "int32 ('<i4')",
            }
        ),
    };
    Ok(out)
}

/// Writes `data` (little-endian elements of `dtype`) as a `.npy` array of `shape`.
pub(crate) fn write_npy_shape(path: &Path, shape: &[u64], dtype: DType, data: &[u8]) -> Result<()> {
    let file =
        fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    let w = std::io::BufWriter::new(file);
    match dtype {
        DType::I8 => {
            let mut out = npyz::WriteOptions::new()
                .default_dtype()
                .shape(shape)
                .writer(w)
                .begin_nd()?;
            out.extend(data.iter().map(|&b| b as i8))?;
            out.finish()?;
        }
        DType::F32 => {
            let mut out = npyz::WriteOptions::new()
                .default_dtype()
                .shape(shape)
                .writer(w)
                .begin_nd()?;
            out.extend(
                data.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            )?;
            out.finish()?;
        }
        DType::I32 => {
            let mut out = npyz::WriteOptions::new()
                .default_dtype()
                .shape(shape)
                .writer(w)
                .begin_nd()?;
            out.extend(
                data.chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            )?;
            out.finish()?;
        }
    }
    Ok(())
}
