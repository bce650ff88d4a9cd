//! What the commands that run a feature pipeline share (`features`, its batch mode,
//! `run`, `quantize`): loading the pipeline (a TOML file, or an artifact's feature pipeline
//! section), reading input files as the pipeline's input kind, and writing the features
//! as `.npy`.
//!
//! Inputs by extension: `.wav` (one channel per axis), `.csv` (one time step per row for
//! signals, one input per row for vectors; a first row with a field that is not a
//! number is the header), `.npy`, `.png`/`.jpg`/`.jpeg` (images) and `.txt` (one token
//! list per line, for text pipelines), all read by edgeflow-data's readers.
//!
//! Audio enters a pipeline in 16-bit units, as the device pushes `i16` samples: a WAV
//! file of any sample format (8/16/24/32-bit PCM, 32/64-bit float, extensible) is decoded
//! to full scale `[-1, 1)` and multiplied by 32768
//! ([`edgeflow_data::sources::wav::Audio::to_i16_units`]), so a pipeline's `scale` step
//! (1/32768 for the KWS front end) gives the same features for every format.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use edgeflow_data::sources::csv::read_numeric_csv;
use edgeflow_data::sources::lines::lines;
use edgeflow_data::sources::npy::{read_npy, TensorData};
use edgeflow_data::sources::wav::read_wav;
use edgeflow_data::BadRecords;
use edgeflow_dsp::host::{self, Sample, Spec};
use edgeflow_dsp::{Input, OutputType, Pipeline};

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
        // The description borrows the artifact bytes: own its lists (the same bytes), and
        // check what a TOML file is checked for beyond the device's validation.
        let mut spec = p.desc().clone().into_owned();
        host::resolve(&mut spec)
            .with_context(|| format!("{}: feature pipeline section", path.display()))?;
        return Ok(spec);
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
