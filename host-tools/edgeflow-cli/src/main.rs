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
// Unit tests may unwrap; the workspace warns on `unwrap_used` everywhere else.
#![cfg_attr(test, allow(clippy::unwrap_used))]

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

mod batch;
mod boards;
mod convert;
mod data;
mod device;
mod evaluate;
mod export;
mod feature_io;
mod features;
mod filetype;
mod infer;
mod init;
mod labels;
mod model_file;
mod monitor;
mod output;
mod pipeline;
mod project;
mod quantize;
mod report;
mod resample;
mod run;
mod sources;
mod tensor_io;
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
    ///
    /// Without --firmware the application is built from the edgeflow sources:
    /// EDGEFLOW_SOURCE_DIR, else the nearest ancestor of the artifact or of the working
    /// directory holding firmware/app-<board>.
    Flash(device::FlashArgs),
    /// Talk to a running device: `replay` a dataset into it, `collect` a dataset from it,
    /// `stop` it (an emulated one).
    ///
    /// The emulated devices `edgeflow flash` starts are found from any directory: their
    /// state (UART socket, firmware record) is in EDGEFLOW_DEVICE_DIR, else
    /// $XDG_RUNTIME_DIR/edgeflow when that is private to the user, else a private
    /// edgeflow-<uid> in $TMPDIR or /tmp.
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
            let artifact = model_file::load_model(&model)?;
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
