//! `edgeflow features --pipeline P.toml INPUT -o OUT.npy`: runs a feature pipeline (the
//! same code the device runs) over one input file and writes the features as `.npy`.
//!
//! Inputs by extension: `.wav` (one channel per axis), `.csv` (one time step per row for
//! signals, one input per row for vectors; a first row with a field that is not a
//! number is the header), `.npy`, `.png`/`.jpg`/`.jpeg` (images) and `.txt` (one token
//! list per line, for text pipelines), all read by edgeflow-data's readers. The pipeline
//! may be a TOML file or an artifact carrying a feature pipeline.
//!
//! Audio enters a pipeline in 16-bit units, as the device pushes `i16` samples: a WAV
//! file of any sample format (8/16/24/32-bit PCM, 32/64-bit float, extensible) is decoded
//! to full scale `[-1, 1)` and multiplied by 32768
//! ([`edgeflow_data::sources::wav::Audio::to_i16_units`]), so a pipeline's `scale` step
//! (1/32768 for the KWS front end) gives the same features for every format.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use edgeflow_data::sources::csv::read_numeric_csv;
use edgeflow_data::sources::lines::lines;
use edgeflow_data::sources::npy::{read_npy, TensorData};
use edgeflow_data::sources::wav::read_wav;
use edgeflow_data::BadRecords;
use edgeflow_dsp::host::{self, Sample, Spec};
use edgeflow_dsp::{Input, OutputType, Pipeline};

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

/// A TOML pipeline, or the feature pipeline section of an artifact.
pub(crate) fn load_pipeline(path: &Path) -> Result<Spec> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.starts_with(&edgeflow_format::MAGIC) {
        let a = edgeflow_format::Artifact::parse(&bytes)
            .with_context(|| format!("{} is not a valid artifact", path.display()))?;
        let section = a
            .feature_pipeline
            .with_context(|| format!("{} has no feature pipeline section", path.display()))?;
        let p = Pipeline::from_bytes(section)
            .with_context(|| format!("{}: feature pipeline section", path.display()))?;
        // Own the data by a round trip through TOML (borrowed lists become owned).
        let text = host::to_toml(p.desc())?;
        return Ok(host::from_toml(&text, &path.display().to_string())?);
    }
    let text = String::from_utf8(bytes)
        .with_context(|| format!("{} is neither an artifact nor UTF-8 TOML", path.display()))?;
    Ok(host::from_toml(&text, &path.display().to_string())?)
}

fn ext(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// Reads the input file as the pipeline's input kind; several inputs for row-wise files.
/// Every format is read by edgeflow-data's readers (one implementation per format).
pub(crate) fn read_input(path: &Path, p: &Pipeline<'_>) -> Result<Vec<Sample>> {
    let e = ext(path);
    let name = path.display();
    match (p.desc().input, e.as_str()) {
        (Input::Signal { axes, rate_hz, .. }, "wav") => {
            let a = read_wav(path)?;
            if u32::from(a.channels) != axes {
                bail!(
                    "{name}: {} channels, the pipeline takes {axes} axes",
                    a.channels
                );
            }
            // Pipelines take audio in 16-bit units whatever the stored format.
            let v = a.to_i16_units();
            // Another rate is resampled, and the note says so (never silently).
            let v = if (a.sample_rate as f32 - rate_hz).abs() > 0.5 {
                crate::resample::to_rate(&v, axes as usize, a.sample_rate, rate_hz, path)?
            } else {
                v
            };
            Ok(vec![Sample::Signal(v)])
        }
        (Input::Signal { axes, .. }, "csv") => {
            let rows = read_numeric_csv(path, b',')?.rows;
            let mut v = Vec::new();
            for (i, r) in rows.iter().enumerate() {
                if r.len() != axes as usize {
                    bail!(
                        "{name}: row {} has {} values, the pipeline takes {axes} axes",
                        i + 1,
                        r.len()
                    );
                }
                v.extend_from_slice(r);
            }
            Ok(vec![Sample::Signal(v)])
        }
        (Input::Vector { len }, "csv") => read_numeric_csv(path, b',')?
            .rows
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                if r.len() != len as usize {
                    bail!(
                        "{name}: row {} has {} values, the pipeline takes {len}",
                        i + 1,
                        r.len()
                    );
                }
                Ok(Sample::Vector(r))
            })
            .collect(),
        (Input::Text { max_tokens }, "txt" | "csv") => {
            let text = lines(path, BadRecords::Error).collect_vec()?;
            text.iter()
                .filter(|l| !l.trim().is_empty())
                .enumerate()
                .map(|(i, l)| {
                    let t: Vec<String> = l
                        .split(|c: char| c.is_whitespace() || c == ',')
                        .filter(|t| !t.is_empty())
                        .map(String::from)
                        .collect();
                    if t.len() > max_tokens as usize {
                        bail!(
                            "{name}: line {} has {} tokens, the pipeline takes at most {max_tokens}",
                            i + 1,
                            t.len()
                        );
                    }
                    Ok(Sample::Text(t))
                })
                .collect()
        }
        (input, "npy") => npy_samples(path, input),
        (
            Input::Image {
                width,
                height,
                channels,
            },
            "png" | "jpg" | "jpeg",
        ) => {
            let img = decode_image(path)?;
            let (w, h) = (img.width, img.height);
            if (w, h) != (width as usize, height as usize) {
                bail!(
                    "{name}: {w}x{h} pixels, the pipeline takes {width}x{height} (crop or resize it in the pipeline's input size)"
                );
            }
            let Some(img) = img.with_channels(channels as usize) else {
                bail!(
                    "{name}: {} channels, the pipeline takes {channels} (use a grayscale block for RGB input)",
                    img.channels
                );
            };
            let px = img.data;
            Ok(vec![Sample::Image(px)])
        }
        (input, _) => bail!(
            "{name}: cannot read .{e} files for a pipeline with {} input (use {})",
            kind(&input),
            match input {
                Input::Signal { .. } => ".wav, .csv or .npy",
                Input::Vector { .. } => ".csv or .npy",
                Input::Text { .. } => ".txt or .csv",
                Input::Image { .. } => ".png, .jpg or .npy",
            }
        ),
    }
}

fn kind(i: &Input) -> &'static str {
    match i {
        Input::Signal { .. } => "signal",
        Input::Vector { .. } => "vector",
        Input::Text { .. } => "text",
        Input::Image { .. } => "image",
    }
}

/// The pipeline inputs in an `.npy` array (read in C order whatever the file's order).
fn npy_samples(path: &Path, input: Input) -> Result<Vec<Sample>> {
    let name = path.display();
    let t = read_npy(path)?;
    let shape = t.shape.clone();
    if let Input::Image {
        width,
        height,
        channels,
    } = input
    {
        let TensorData::U8(px) = t.data else {
            bail!(
                "{name}: dtype {}, images must be uint8 ('|u1')",
                t.data.dtype_name()
            );
        };
        let want = [height as usize, width as usize, channels as usize];
        if shape != want {
            bail!("{name}: shape {shape:?}, the pipeline takes {want:?} (height, width, channels)");
        }
        return Ok(vec![Sample::Image(px)]);
    }
    if matches!(t.data, TensorData::Bool(_)) {
        bail!("{name}: dtype bool, the pipeline takes numbers");
    }
    let v: Vec<f32> = t.data.to_f64().into_iter().map(|x| x as f32).collect();
    match input {
        Input::Signal { axes, .. } => {
            let ok = match shape.as_slice() {
                [_] => axes == 1,
                [_, a] => *a == axes as usize,
                _ => false,
            };
            if !ok {
                bail!("{name}: shape {shape:?}, a signal is (time steps, {axes}) or (time steps,) for one axis");
            }
            Ok(vec![Sample::Signal(v)])
        }
        Input::Vector { len } => {
            let len = len as usize;
            match shape.as_slice() {
                [n] if *n == len => Ok(vec![Sample::Vector(v)]),
                [_, n] if *n == len => {
                    Ok(v.chunks(len).map(|c| Sample::Vector(c.to_vec())).collect())
                }
                _ => bail!("{name}: shape {shape:?}, the pipeline takes ({len},) or (rows, {len})"),
            }
        }
        Input::Text { .. } => bail!("{name}: text pipelines read .txt files"),
        Input::Image { .. } => bail!("{name}: internal: image handled above"),
    }
}

/// Decodes a PNG or JPEG to 8-bit pixels.
fn decode_image(path: &Path) -> Result<edgeflow_data::sources::image::Image> {
    edgeflow_data::sources::image::read_image(path)
        .with_context(|| format!("{} is not a readable PNG or JPEG image", path.display()))
}

/// Writes pipeline output `data` (elements of `t`) as a `.npy` array of `shape`.
pub(crate) fn write_npy(path: &Path, shape: &[u64], t: OutputType, data: &[u8]) -> Result<()> {
    let dtype = match t {
        OutputType::I8 => edgeflow_format::graph::DType::I8,
        OutputType::F32 => edgeflow_format::graph::DType::F32,
    };
    crate::tensor_io::write_npy_shape(path, shape, dtype, data)
}
