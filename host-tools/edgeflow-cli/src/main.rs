//! `edgeflow`: the command-line front end of the edgeflow toolchain.
//!
//! - `edgeflow convert MODEL.tflite -o OUT.edgeflow` compiles a TFLite model to an artifact;
//! - `edgeflow inspect MODEL` prints ops, tensors, shapes, quantization, flash and arena
//!   bytes and MACs per op, and the static RAM of the feature pipeline when the artifact
//!   carries one;
//! - `edgeflow run MODEL --input X.npy --output Y.npy` runs one inference.
//!
//! `MODEL` may be a `.tflite` file or an artifact everywhere. Every failure is a message
//! on stderr and a non-zero exit status.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use edgeflow_format::graph::{DType, TensorDef};
use npyz::WriterBuilder;

mod data;
mod evaluate;
mod features;
mod train;

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
    /// Compile a .tflite model into an edgeflow artifact.
    Convert {
        /// The .tflite model.
        model: PathBuf,
        /// Where to write the artifact.
        #[arg(short, long)]
        output: PathBuf,
        /// A feature pipeline (TOML) to store in the artifact, so that the device computes
        /// the model's input from raw samples with the same code as the host.
        #[arg(long)]
        pipeline: Option<PathBuf>,
    },
    /// Describe a model: ops, tensors, quantization, flash/arena bytes, MACs per op and
    /// the static RAM of its feature pipeline.
    Inspect {
        /// A .tflite model or an edgeflow artifact.
        model: PathBuf,
        /// Check the arena and artifact against a board (`boards/NAME.toml` or a path);
        /// exits with an error if the model does not fit.
        #[arg(long)]
        board: Option<String>,
    },
    /// Run one inference on a NumPy .npy input and write the output as .npy.
    Run {
        /// A .tflite model or an edgeflow artifact.
        model: PathBuf,
        /// Input tensor (.npy, dtype matching the model input: int8 or float32).
        #[arg(long)]
        input: PathBuf,
        /// Where to write the output tensor (.npy).
        #[arg(long)]
        output: PathBuf,
    },
    /// Compute features: run a feature pipeline over a WAV, CSV, image or .npy input.
    Features(features::FeaturesArgs),
    /// Look at data: `head`, `inspect` (schema) or `stats` (statistics, charts).
    Data {
        #[command(subcommand)]
        command: data::DataCommand,
    },
    /// Train the model a config describes, on features from its feature pipeline; writes
    /// a float32 artifact, burn's record, checkpoints and a training log.
    Train(train::TrainArgs),
    /// Evaluate a trained model (float, and optionally int8) on the config's test split.
    Evaluate(evaluate::EvaluateArgs),
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    match Cli::parse().command {
        Command::Convert {
            model,
            output,
            pipeline,
        } => {
            let bytes = read(&model)?;
            let mut compiled = compile(&model, &bytes)?;
            if let Some(p) = pipeline {
                let spec = edgeflow_dsp::host::load(&p)?;
                compiled = edgeflow::host::attach_pipeline(&compiled, &spec)
                    .with_context(|| format!("cannot attach {} to the model", p.display()))?;
            }
            fs::write(&output, &compiled)
                .with_context(|| format!("cannot write {}", output.display()))?;
            let m = edgeflow_nn::Model::parse(&compiled)?;
            println!(
                "wrote {} ({} bytes, arena {} bytes, {} ops)",
                output.display(),
                compiled.len(),
                m.arena_bytes(),
                m.header().op_count
            );
        }
        Command::Inspect { model, board } => {
            let bytes = read(&model)?;
            let artifact = load(&model, &bytes)?;
            let m = edgeflow_nn::Model::parse(&artifact)
                .with_context(|| format!("{} is not a valid artifact", model.display()))?;
            print!(
                "{}",
                edgeflow_compile::describe::describe(&m, artifact.len())
            );
            let mut pipeline_ram = 0;
            if let Some(section) = m.artifact().feature_pipeline {
                let p = edgeflow_dsp::Pipeline::from_bytes(section).with_context(|| {
                    format!("{}: invalid feature pipeline section", model.display())
                })?;
                println!();
                println!(
                    "feature pipeline  static RAM {} bytes (workspace), {} features per frame, output {} values",
                    p.ram_bytes(),
                    p.features_per_frame(),
                    p.output_len()
                );
                pipeline_ram = p.ram_bytes();
            }
            if let Some(b) = board {
                let path = if b.ends_with(".toml") {
                    PathBuf::from(&b)
                } else {
                    Path::new("boards").join(format!("{b}.toml"))
                };
                let board = edgeflow_compile::board::Board::load(&path)?;
                let budget = edgeflow_compile::budget::Budget::new(&m, artifact.len(), &board)
                    .with_pipeline_ram(pipeline_ram);
                println!();
                print!("{budget}");
                if !budget.fits() {
                    bail!("{} does not fit on {}", model.display(), board.name);
                }
            }
        }
        Command::Run {
            model,
            input,
            output,
        } => {
            let bytes = read(&model)?;
            let artifact = load(&model, &bytes)?;
            let m = edgeflow_nn::Model::parse(&artifact)
                .with_context(|| format!("{} is not a valid artifact", model.display()))?;
            let h = m.header();
            if h.inputs.len() != 1 {
                bail!("the model has {} inputs; `run` takes one", h.inputs.len());
            }
            let in_def = h.inputs[0];
            let out_def = h.outputs[0];
            let data = read_npy(&input, &in_def)?;
            let mut arena = vec![0u128; m.arena_bytes().div_ceil(16)];
            let arena = as_bytes(&mut arena);
            let mut rt = edgeflow_nn::Runtime::new(&m, arena)?;
            rt.input_mut(0)?.copy_from_slice(&data);
            rt.invoke()?;
            write_npy(&output, &out_def, rt.output(0)?)?;
        }
        Command::Data { command } => data::run(command)?,
        Command::Features(args) => features::run(args)?,
        Command::Train(args) => train::run(args)?,
        Command::Evaluate(args) => evaluate::run(args)?,
    }
    Ok(())
}

fn as_bytes(words: &mut [u128]) -> &mut [u8] {
    let len = words.len() * 16;
    let ptr = words.as_mut_ptr() as *mut u8;
    // The arena is allocated as u128 words so that its start is 16-byte aligned.
    #[allow(unsafe_code)]
    // SAFETY: u8 has no alignment or validity requirements; the byte view covers exactly
    // the words' memory and borrows them mutably for its whole life.
    unsafe {
        std::slice::from_raw_parts_mut(ptr, len)
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn compile(path: &Path, bytes: &[u8]) -> Result<Vec<u8>> {
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    let c = edgeflow_compile::compile(bytes, name)
        .with_context(|| format!("cannot convert {}", path.display()))?;
    Ok(c.artifact)
}

/// The artifact for `path`: the file itself, or the compiled `.tflite`.
fn load(path: &Path, bytes: &[u8]) -> Result<Vec<u8>> {
    if edgeflow_compile::is_artifact(bytes) {
        Ok(bytes.to_vec())
    } else {
        compile(path, bytes)
    }
}

fn read_npy(path: &Path, t: &TensorDef<'_>) -> Result<Vec<u8>> {
    let bytes = read(path)?;
    let npy = npyz::NpyFile::new(&bytes[..])
        .with_context(|| format!("{} is not a valid .npy file", path.display()))?;
    let shape: Vec<u64> = npy.shape().to_vec();
    let want: Vec<u64> = t.shape.dims().iter().map(|&d| d as u64).collect();
    let n: u64 = shape.iter().product();
    if n != want.iter().product::<u64>() {
        bail!(
            "{}: shape {:?} has {} elements, the model input {:?} needs {}",
            path.display(),
            shape,
            n,
            want,
            want.iter().product::<u64>()
        );
    }
    let dtype = npy.dtype();
    let descr = match &dtype {
        npyz::DType::Plain(ts) => ts.to_string(),
        other => bail!("{}: unsupported .npy dtype {other:?}", path.display()),
    };
    let out = match t.dtype {
        DType::I8 => {
            if !descr.ends_with("i1") {
                bail!(
                    "{}: dtype {descr}, the model input is int8 ('|i1')",
                    path.display()
                );
            }
            npy.into_vec::<i8>()?.into_iter().map(|v| v as u8).collect()
        }
        DType::F32 => {
            if !descr.ends_with("f4") {
                bail!(
                    "{}: dtype {descr}, the model input is float32 ('<f4')",
                    path.display()
                );
            }
            npy.into_vec::<f32>()?
                .into_iter()
                .flat_map(f32::to_le_bytes)
                .collect()
        }
        DType::I32 => {
            if !descr.ends_with("i4") {
                bail!(
                    "{}: dtype {descr}, the model input is int32 ('<i4')",
                    path.display()
                );
            }
            npy.into_vec::<i32>()?
                .into_iter()
                .flat_map(i32::to_le_bytes)
                .collect()
        }
    };
    Ok(out)
}

fn write_npy(path: &Path, t: &TensorDef<'_>, data: &[u8]) -> Result<()> {
    let shape: Vec<u64> = t.shape.dims().iter().map(|&d| d as u64).collect();
    let file =
        fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    let w = std::io::BufWriter::new(file);
    match t.dtype {
        DType::I8 => {
            let mut out = npyz::WriteOptions::new()
                .default_dtype()
                .shape(&shape)
                .writer(w)
                .begin_nd()?;
            out.extend(data.iter().map(|&b| b as i8))?;
            out.finish()?;
        }
        DType::F32 => {
            let mut out = npyz::WriteOptions::new()
                .default_dtype()
                .shape(&shape)
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
                .shape(&shape)
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
