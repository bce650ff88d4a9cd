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
mod features;

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
        /// Largest arena the host will allocate for the model, in bytes (default 256 MiB,
        /// or the `EDGEFLOW_MAX_ARENA_BYTES` environment variable).
        #[arg(long)]
        max_arena: Option<usize>,
    },
    /// Compute features: run a feature pipeline over a WAV, CSV, image or .npy input.
    Features(features::FeaturesArgs),
    /// Look at data: `head`, `inspect` (schema) or `stats` (statistics, charts).
    Data {
        #[command(subcommand)]
        command: data::DataCommand,
    },
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
            max_arena,
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
            let limit = match max_arena {
                Some(n) => n,
                None => env_limit("EDGEFLOW_MAX_ARENA_BYTES", DEFAULT_MAX_ARENA)?,
            };
            let need = m.arena_bytes();
            if need > limit {
                bail!(
                    "{}: the model's arena needs {need} bytes, above the host limit of {limit} bytes \
                     (raise it with --max-arena or EDGEFLOW_MAX_ARENA_BYTES)",
                    model.display()
                );
            }
            // The input lies in the arena, so the cap above bounds what reading it may cost.
            let data = read_npy(&input, &in_def)?;
            let mut arena: Vec<u128> = Vec::new();
            arena
                .try_reserve_exact(need.div_ceil(16))
                .with_context(|| format!("cannot allocate the {need}-byte arena"))?;
            arena.resize(need.div_ceil(16), 0);
            let arena = as_bytes(&mut arena);
            let mut rt = edgeflow_nn::Runtime::new(&m, arena)?;
            rt.input_mut(0)?.copy_from_slice(&data);
            rt.invoke()?;
            write_npy(&output, &out_def, rt.output(0)?)?;
        }
        Command::Data { command } => data::run(command)?,
        Command::Features(args) => features::run(args)?,
    }
    Ok(())
}

/// Default cap on the arena `run` allocates: far above any microcontroller model (their
/// arenas are kilobytes to a few megabytes), small enough that a hostile artifact of a few
/// hundred bytes cannot make the host allocate and write gigabytes.
const DEFAULT_MAX_ARENA: usize = 256 << 20;

/// A byte limit from environment variable `var`, or `default` when it is unset.
fn env_limit(var: &str, default: usize) -> Result<usize> {
    match std::env::var(var) {
        Ok(v) => v
            .trim()
            .parse()
            .with_context(|| format!("{var}={v:?} is not a byte count")),
        Err(_) => Ok(default),
    }
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
    check_npy_shape(&bytes).with_context(|| format!("{}", path.display()))?;
    let npy = npyz::NpyFile::new(&bytes[..])
        .with_context(|| format!("{} is not a valid .npy file", path.display()))?;
    let shape: Vec<u64> = npy.shape().to_vec();
    let want: Vec<u64> = t.shape.dims().iter().map(|&d| d as u64).collect();
    let elements = |s: &[u64]| s.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
    let Some(n) = elements(&shape) else {
        bail!(
            "{}: shape {:?} overflows: its element count does not fit in 64 bits",
            path.display(),
            shape
        );
    };
    // The model's shape was validated by `Model::parse` (its byte size fits in u32).
    let need = elements(&want).unwrap_or(u64::MAX);
    if n != need {
        bail!(
            "{}: shape {:?} has {} elements, the model input {:?} needs {}",
            path.display(),
            shape,
            n,
            want,
            need
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

/// Rejects a `.npy` header whose shape's element count overflows 64 bits before npyz
/// reads it (npyz multiplies the dims unchecked: a panic with overflow checks, a wrapped
/// count without). Headers this cannot read are left to npyz's own errors.
fn check_npy_shape(bytes: &[u8]) -> Result<()> {
    let Some(rest) = bytes.strip_prefix(b"\x93NUMPY") else {
        return Ok(());
    };
    let (len, start): (Option<usize>, usize) = match rest.first() {
        Some(1) => (
            rest.get(2..4)
                .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize),
            4,
        ),
        Some(2 | 3) => (
            rest.get(2..6)
                .and_then(|b| usize::try_from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok()),
            6,
        ),
        _ => return Ok(()),
    };
    let Some(header) = len.and_then(|n| rest.get(start..start.checked_add(n)?)) else {
        return Ok(());
    };
    let header = String::from_utf8_lossy(header);
    let Some(tuple) = header
        .split_once("'shape'")
        .and_then(|(_, t)| t.split_once('('))
        .and_then(|(_, t)| t.split_once(')'))
        .map(|(t, _)| t)
    else {
        return Ok(());
    };
    let mut n = 1u64;
    for dim in tuple.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let Ok(d) = dim.parse::<u64>() else {
            return Ok(());
        };
        n = match n.checked_mul(d) {
            Some(n) => n,
            None => bail!("shape ({tuple}) overflows: its element count does not fit in 64 bits"),
        };
    }
    Ok(())
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
