//! `edgeflow features --pipeline P.toml INPUT -o OUT.npy`: runs a feature pipeline (the
//! same code the device runs) over one input file and writes the features as `.npy`.
//!
//! Inputs by extension: `.wav` (one channel per axis; integer samples as their integer
//! values, so pipelines scale them as on the device), `.csv` (one time step per row for
//! signals, one input per row for vectors), `.npy`, `.png`/`.jpg`/`.jpeg` (images) and
//! `.txt` (one token list per line, for text pipelines). The pipeline may be a TOML file
//! or an artifact carrying a feature pipeline.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use edgeflow_dsp::host::{self, Sample, Spec};
use edgeflow_dsp::{Input, OutputType, Pipeline};
use npyz::WriterBuilder;

/// Arguments of `edgeflow features`.
#[derive(Args, Debug)]
pub struct FeaturesArgs {
    /// The feature pipeline: a TOML file, or an artifact with a feature pipeline section.
    #[arg(long)]
    pipeline: PathBuf,
    /// The input: .wav, .csv, .npy, .png, .jpg or .txt.
    input: PathBuf,
    /// Where to write the features (.npy; float32, or int8 when the pipeline quantizes).
    #[arg(short, long)]
    output: PathBuf,
}

/// Runs the subcommand.
pub fn run(a: FeaturesArgs) -> Result<()> {
    let spec = load_pipeline(&a.pipeline)?;
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
    println!(
        "wrote {}: shape {:?} {}; the pipeline needs {} bytes of static RAM on a device",
        a.output.display(),
        shape,
        match p.output_type() {
            OutputType::F32 => "float32",
            OutputType::I8 => "int8",
        },
        p.ram_bytes()
    );
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
pub(crate) fn read_input(path: &Path, p: &Pipeline<'_>) -> Result<Vec<Sample>> {
    let e = ext(path);
    let name = path.display();
    match (p.desc().input, e.as_str()) {
        (Input::Signal { axes, rate_hz, .. }, "wav") => {
            let r = hound::WavReader::open(path)
                .with_context(|| format!("{name} is not a readable WAV file"))?;
            let spec = r.spec();
            if spec.channels as u32 != axes {
                bail!(
                    "{name}: {} channels, the pipeline takes {axes} axes",
                    spec.channels
                );
            }
            if (spec.sample_rate as f32 - rate_hz).abs() > 0.5 {
                bail!(
                    "{name}: sampled at {} Hz, the pipeline expects {rate_hz} Hz (resample first)",
                    spec.sample_rate
                );
            }
            let v: Vec<f32> = match spec.sample_format {
                hound::SampleFormat::Float => r
                    .into_samples::<f32>()
                    .collect::<Result<_, _>>()
                    .with_context(|| format!("{name}: bad sample data"))?,
                hound::SampleFormat::Int => r
                    .into_samples::<i32>()
                    .map(|s| s.map(|v| v as f32))
                    .collect::<Result<_, _>>()
                    .with_context(|| format!("{name}: bad sample data"))?,
            };
            Ok(vec![Sample::Signal(v)])
        }
        (Input::Signal { axes, .. }, "csv") => {
            let rows = read_csv(path)?;
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
        (Input::Vector { len }, "csv") => read_csv(path)?
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
            let text = fs::read_to_string(path)
                .with_context(|| format!("cannot read {name} as UTF-8 text"))?;
            text.lines()
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
        (input, "npy") => read_npy(path, input),
        (
            Input::Image {
                width,
                height,
                channels,
            },
            "png" | "jpg" | "jpeg",
        ) => {
            let (w, h, c, px) = decode_image(path)?;
            if (w, h) != (width as usize, height as usize) {
                bail!(
                    "{name}: {w}x{h} pixels, the pipeline takes {width}x{height} (crop or resize it in the pipeline's input size)"
                );
            }
            let px = match (c, channels) {
                (a, b) if a == b as usize => px,
                (1, 3) => px.iter().flat_map(|&g| [g, g, g]).collect(),
                (4, 3) => px
                    .chunks_exact(4)
                    .flat_map(|p| [p[0], p[1], p[2]])
                    .collect(),
                _ => bail!(
                    "{name}: {c} channels, the pipeline takes {channels} (use a grayscale block for RGB input)"
                ),
            };
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

/// Numeric CSV rows; a first row that does not parse is taken as a header.
fn read_csv(path: &Path) -> Result<Vec<Vec<f32>>> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read {} as UTF-8 text", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Result<Vec<f32>, _> =
            line.split(',').map(|v| v.trim().parse::<f32>()).collect();
        match parsed {
            Ok(r) => rows.push(r),
            Err(_) if rows.is_empty() && i == 0 => continue,
            Err(_) => bail!(
                "{}: line {} is not a row of numbers: {line:?}",
                path.display(),
                i + 1
            ),
        }
    }
    if rows.is_empty() {
        bail!("{}: no rows of numbers", path.display());
    }
    Ok(rows)
}

fn read_npy(path: &Path, input: Input) -> Result<Vec<Sample>> {
    let name = path.display();
    let bytes = fs::read(path).with_context(|| format!("cannot read {name}"))?;
    let npy = npyz::NpyFile::new(&bytes[..])
        .with_context(|| format!("{name} is not a valid .npy file"))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let descr = match npy.dtype() {
        npyz::DType::Plain(ts) => ts.to_string(),
        other => bail!("{name}: unsupported .npy dtype {other:?}"),
    };
    if let Input::Image {
        width,
        height,
        channels,
    } = input
    {
        if !descr.ends_with("u1") {
            bail!("{name}: dtype {descr}, images must be uint8 ('|u1')");
        }
        let want = [height as usize, width as usize, channels as usize];
        if shape != want {
            bail!("{name}: shape {shape:?}, the pipeline takes {want:?} (height, width, channels)");
        }
        return Ok(vec![Sample::Image(npy.into_vec::<u8>()?)]);
    }
    let v: Vec<f32> = match &descr[1..] {
        "f4" => npy.into_vec::<f32>()?,
        "f8" => npy
            .into_vec::<f64>()?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        "i2" => npy.into_vec::<i16>()?.into_iter().map(f32::from).collect(),
        "i4" => npy
            .into_vec::<i32>()?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        "i1" => npy.into_vec::<i8>()?.into_iter().map(f32::from).collect(),
        "u1" => npy.into_vec::<u8>()?.into_iter().map(f32::from).collect(),
        _ => bail!("{name}: unsupported dtype {descr} (use float32/64 or int8/16/32)"),
    };
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
        Input::Image { .. } => unreachable_image(),
    }
}

fn unreachable_image() -> Result<Vec<Sample>> {
    bail!("internal: image handled above")
}

/// Decodes a PNG or JPEG to 8-bit pixels: (width, height, channels, pixels).
fn decode_image(path: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    let img = edgeflow_data::sources::image::read_image(path)
        .with_context(|| format!("{} is not a readable PNG or JPEG image", path.display()))?;
    Ok((img.width, img.height, img.channels, img.data))
}

fn write_npy(path: &Path, shape: &[u64], t: OutputType, data: &[u8]) -> Result<()> {
    let file =
        fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    let w = std::io::BufWriter::new(file);
    match t {
        OutputType::I8 => {
            let mut out = npyz::WriteOptions::new()
                .default_dtype()
                .shape(shape)
                .writer(w)
                .begin_nd()?;
            out.extend(data.iter().map(|&b| b as i8))?;
            out.finish()?;
        }
        OutputType::F32 => {
            let mut out = npyz::WriteOptions::new()
                .default_dtype()
                .shape(shape)
                .writer(w)
                .begin_nd()?;
            out.extend(host::as_f32(data))?;
            out.finish()?;
        }
    }
    Ok(())
}
