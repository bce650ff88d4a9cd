//! Data: reading sources through edgeflow-data, splitting, and computing features with
//! the edgeflow-dsp pipeline — the same code and description the device runs.

use std::path::{Path, PathBuf};

use edgeflow_data::sources::npy::{npz, Tensor as NpyTensor};
use edgeflow_data::sources::ts::TsFile;
use edgeflow_data::{BadRecords, Rng};
use edgeflow_dsp::host::{self, Sample, Spec};
use edgeflow_dsp::{Input, Pipeline};
use sha2::{Digest, Sha256};

use crate::config::{Augment, Source, SplitConfig, TrainConfig};
use crate::error::TrainError;

/// One raw input (a recording, an image, a vector) and its class.
#[derive(Clone, Debug, PartialEq)]
pub struct Recording {
    /// The raw input, as the pipeline takes it.
    pub input: Sample,
    /// Class index.
    pub label: usize,
    /// Where it came from (file and case), for messages.
    pub origin: String,
}

/// Everything read from the sources.
#[derive(Clone, Debug)]
pub struct RawData {
    /// Class names; index = class.
    pub classes: Vec<String>,
    /// The training source.
    pub train: Vec<Recording>,
    /// The separate test source, if any.
    pub test: Option<Vec<Recording>>,
    /// Every data file with its SHA-256 (hex), for provenance.
    pub files: Vec<(PathBuf, String)>,
}

/// Recordings per split. Windows of one recording stay in its split.
#[derive(Clone, Debug)]
pub struct Splits {
    /// Training recordings.
    pub train: Vec<Recording>,
    /// Validation recordings.
    pub validation: Vec<Recording>,
    /// Test recordings.
    pub test: Vec<Recording>,
}

/// Feature rows computed by the pipeline: `x` holds `len() * dim` values row-major.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Features {
    /// Values per example.
    pub dim: usize,
    /// Row-major values.
    pub x: Vec<f32>,
    /// Class of each row.
    pub y: Vec<usize>,
    /// Index of the recording each row was cut from.
    pub group: Vec<usize>,
}

impl Features {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.y.len()
    }
    /// No examples.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.dim..(i + 1) * self.dim]
    }
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String, TrainError> {
    let bytes = std::fs::read(path).map_err(|e| TrainError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    Ok(hex(&Sha256::digest(&bytes)))
}

/// Lower-case hex of bytes.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|v| format!("{v:02x}")).collect()
}

/// Loads the feature pipeline named by the config; it must produce float features (the
/// quantizer sets the int8 output stage later).
pub fn load_pipeline(path: &Path) -> Result<Spec, TrainError> {
    let spec = host::load(path).map_err(|e| TrainError::Pipeline {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if spec.output.quantize.is_some() {
        return Err(TrainError::Pipeline {
            path: path.to_path_buf(),
            message: "the pipeline quantizes its output; training needs float features (remove [output].quantize: the quantizer sets it from the model's input quantization)".into(),
        });
    }
    Pipeline::new(spec.clone()).map_err(|e| TrainError::Pipeline {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(spec)
}

/// Reads the config's sources as raw inputs for `pipeline`.
pub fn read_sources(cfg: &TrainConfig, pipeline: &Pipeline<'_>) -> Result<RawData, TrainError> {
    let mut files = Vec::new();
    let mut classes: Option<Vec<String>> = None;
    let train = read_source(&cfg.data.train, pipeline, &mut classes, &mut files)?;
    let test = match &cfg.data.test {
        Some(s) => Some(read_source(s, pipeline, &mut classes, &mut files)?),
        None => None,
    };
    let classes = classes.unwrap_or_default();
    let mut seen = vec![0usize; classes.len()];
    for r in &train {
        seen[r.label] += 1;
    }
    let present = seen.iter().filter(|&&n| n > 0).count();
    if present < 2 {
        return Err(TrainError::BadData(format!(
            "the training data has {} class{} ({}); a classifier needs at least 2",
            present,
            if present == 1 { "" } else { "es" },
            classes
                .iter()
                .zip(&seen)
                .filter(|(_, &n)| n > 0)
                .map(|(c, n)| format!("{c}: {n} examples"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(RawData {
        classes,
        train,
        test,
        files,
    })
}

fn data_err(what: &Path) -> impl Fn(edgeflow_data::Error) -> TrainError + '_ {
    move |e| TrainError::Data {
        what: what.display().to_string(),
        source: e,
    }
}

fn merge_classes(
    classes: &mut Option<Vec<String>>,
    names: Vec<String>,
    path: &Path,
) -> Result<(), TrainError> {
    match classes {
        None => *classes = Some(names),
        Some(c) if *c == names => {}
        Some(c) => {
            return Err(TrainError::BadData(format!(
                "{}: class labels {:?} differ from the training source's {:?}",
                path.display(),
                names,
                c
            )))
        }
    }
    Ok(())
}

fn read_source(
    src: &Source,
    pipeline: &Pipeline<'_>,
    classes: &mut Option<Vec<String>>,
    files: &mut Vec<(PathBuf, String)>,
) -> Result<Vec<Recording>, TrainError> {
    match src {
        Source::Ts(path) => {
            files.push((path.clone(), sha256_file(path)?));
            let f = TsFile::open(path, BadRecords::Error).map_err(data_err(path))?;
            let names = f.header().class_labels.clone().ok_or_else(|| {
                TrainError::BadData(format!(
                    "{}: no @classLabel in the header; training needs class labels",
                    path.display()
                ))
            })?;
            merge_classes(classes, names, path)?;
            let axes = match pipeline.desc().input {
                Input::Signal { axes, .. } => axes as usize,
                other => {
                    return Err(TrainError::Model(format!(
                        "{} holds time series, but the pipeline takes {other:?} input",
                        path.display()
                    )))
                }
            };
            let cases = f.cases().collect_vec().map_err(data_err(path))?;
            let mut out = Vec::with_capacity(cases.len());
            for (i, c) in cases.into_iter().enumerate() {
                let origin = format!("{} case {}", path.display(), i + 1);
                if c.dims.len() != axes {
                    return Err(TrainError::Model(format!(
                        "{origin}: {} dimensions, the pipeline takes {axes} axes",
                        c.dims.len()
                    )));
                }
                let len = c.dims.iter().map(Vec::len).min().unwrap_or(0);
                let mut v = Vec::with_capacity(len * axes);
                for t in 0..len {
                    for d in &c.dims {
                        let x = d[t];
                        if !x.is_finite() {
                            return Err(TrainError::BadData(format!(
                                "{origin}: value {x} at time step {t} (missing or not finite); clean or drop the case"
                            )));
                        }
                        v.push(x as f32);
                    }
                }
                let label = c
                    .class
                    .ok_or_else(|| TrainError::BadData(format!("{origin}: no class label")))?;
                out.push(Recording {
                    input: Sample::Signal(v),
                    label,
                    origin,
                });
            }
            Ok(out)
        }
        Source::Npz(n) => {
            files.push((n.path.clone(), sha256_file(&n.path)?));
            let xs: Vec<NpyTensor> = npz(&n.path, &n.x, BadRecords::Error)
                .collect_vec()
                .map_err(data_err(&n.path))?;
            let ys: Vec<NpyTensor> = npz(&n.path, &n.y, BadRecords::Error)
                .collect_vec()
                .map_err(data_err(&n.path))?;
            if xs.len() != ys.len() {
                return Err(TrainError::BadData(format!(
                    "{}: {} has {} rows but {} has {}",
                    n.path.display(),
                    n.x,
                    xs.len(),
                    n.y,
                    ys.len()
                )));
            }
            let mut labels = Vec::with_capacity(ys.len());
            for (i, y) in ys.iter().enumerate() {
                let v = y.data.to_f64();
                match v.as_slice() {
                    [l] if *l >= 0.0 && l.fract() == 0.0 && *l < 1e6 => labels.push(*l as usize),
                    _ => {
                        return Err(TrainError::BadData(format!(
                            "{}: {} row {i} is {v:?}, not one non-negative integer class",
                            n.path.display(),
                            n.y
                        )))
                    }
                }
            }
            let count = labels.iter().max().map_or(0, |m| m + 1);
            let names = match &n.labels {
                Some(l) => {
                    if l.len() < count {
                        return Err(TrainError::BadData(format!(
                            "{}: labels go up to {}, but data.labels names only {} classes",
                            n.path.display(),
                            count - 1,
                            l.len()
                        )));
                    }
                    l.clone()
                }
                None => (0..count).map(|c| c.to_string()).collect(),
            };
            // A test source may not contain every class; keep the longer list consistent.
            let compatible = matches!(classes.as_ref(),
                Some(c) if c.len() >= names.len() && c[..names.len()] == names[..]);
            if !compatible {
                merge_classes(classes, names, &n.path)?;
            }
            let mut out = Vec::with_capacity(xs.len());
            for (i, (x, label)) in xs.iter().zip(labels).enumerate() {
                let origin = format!("{} row {i}", n.path.display());
                out.push(Recording {
                    input: npz_sample(x, pipeline.desc().input, &origin)?,
                    label,
                    origin,
                });
            }
            Ok(out)
        }
    }
}

fn npz_sample(x: &NpyTensor, input: Input, origin: &str) -> Result<Sample, TrainError> {
    let v = x.data.to_f64();
    if let Some((i, bad)) = v.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(TrainError::BadData(format!(
            "{origin}: value {bad} at index {i} is not finite"
        )));
    }
    match input {
        Input::Image {
            width,
            height,
            channels,
        } => {
            let want = (height * width * channels) as usize;
            if v.len() != want {
                return Err(TrainError::Model(format!(
                    "{origin}: shape {:?}, the pipeline takes {height}x{width}x{channels} images",
                    x.shape
                )));
            }
            v.iter()
                .map(|&p| {
                    if (0.0..=255.0).contains(&p) && p.fract() == 0.0 {
                        Ok(p as u8)
                    } else {
                        Err(TrainError::BadData(format!(
                            "{origin}: pixel value {p} is not an integer in 0..=255"
                        )))
                    }
                })
                .collect::<Result<Vec<u8>, _>>()
                .map(Sample::Image)
        }
        Input::Vector { len } => {
            if v.len() != len as usize {
                return Err(TrainError::Model(format!(
                    "{origin}: {} values, the pipeline takes vectors of {len}",
                    v.len()
                )));
            }
            Ok(Sample::Vector(v.iter().map(|&a| a as f32).collect()))
        }
        Input::Signal { axes, .. } => {
            let ok = match x.shape.as_slice() {
                [_] => axes == 1,
                [_, a] => *a == axes as usize,
                _ => false,
            };
            if !ok {
                return Err(TrainError::Model(format!(
                    "{origin}: shape {:?}, a signal row is (time steps, {axes})",
                    x.shape
                )));
            }
            Ok(Sample::Signal(v.iter().map(|&a| a as f32).collect()))
        }
        Input::Text { .. } => Err(TrainError::Model(
            "text pipelines are not supported by the .npz source".into(),
        )),
    }
}

/// Stratified split of recordings by class with `cfg.seed`: validation (and test, when
/// `test` is `None`) fractions per class, rounded, at least one recording per class when
/// the class has two or more.
pub fn split(
    classes: usize,
    train: Vec<Recording>,
    test: Option<Vec<Recording>>,
    cfg: &SplitConfig,
) -> Result<Splits, TrainError> {
    let mut by_class: Vec<Vec<Recording>> = vec![Vec::new(); classes];
    for r in train {
        let l = r.label;
        by_class[l].push(r);
    }
    let mut out = Splits {
        train: Vec::new(),
        validation: Vec::new(),
        test: Vec::new(),
    };
    let take_test = test.is_none();
    for (c, mut rs) in by_class.into_iter().enumerate() {
        Rng::keyed(cfg.seed, &[c as u64]).shuffle(&mut rs);
        let n = rs.len();
        let part = |f: f64| -> usize {
            if n < 2 {
                0
            } else {
                ((n as f64 * f).round() as usize).clamp(1, n - 1)
            }
        };
        let nv = part(cfg.validation);
        let nt = if take_test {
            part(cfg.test).min(n.saturating_sub(nv + 1))
        } else {
            0
        };
        let mut it = rs.into_iter();
        out.validation.extend(it.by_ref().take(nv));
        out.test.extend(it.by_ref().take(nt));
        out.train.extend(it);
    }
    if let Some(t) = test {
        out.test = t;
    }
    for (name, s) in [
        ("training", &out.train),
        ("validation", &out.validation),
        ("test", &out.test),
    ] {
        if s.is_empty() {
            return Err(TrainError::BadData(format!(
                "the {name} split is empty (too few recordings for the split fractions)"
            )));
        }
    }
    Ok(out)
}

/// Applies the augmentation to one raw input with the generator of `(seed, epoch, index)`.
pub fn augment(sample: &Sample, a: &Augment, axes: usize, rng: &mut Rng) -> Sample {
    match sample {
        Sample::Signal(v) if a.noise > 0.0 || a.scale > 0.0 => {
            let axes = axes.max(1);
            let steps = v.len() / axes;
            let mut std = vec![0.0f32; axes];
            for (d, s) in std.iter_mut().enumerate() {
                let xs = v.iter().skip(d).step_by(axes);
                let mean = xs.clone().sum::<f32>() / steps.max(1) as f32;
                *s =
                    (xs.map(|x| (x - mean) * (x - mean)).sum::<f32>() / steps.max(1) as f32).sqrt();
            }
            let k = 1.0 + rng.uniform(-a.scale, a.scale);
            let out = v
                .iter()
                .enumerate()
                .map(|(i, &x)| {
                    // Box-Muller from two uniforms of the element's generator.
                    let u1 = rng.next_f64().max(1e-12);
                    let u2 = rng.next_f64();
                    let g = ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32;
                    x * k + g * a.noise * std[i % axes]
                })
                .collect();
            Sample::Signal(out)
        }
        other => other.clone(),
    }
}

/// Runs the pipeline over recordings; every complete output is one example (a signal may
/// give several windows, all with the recording's label and group).
///
/// Errors: a recording too short for one output; a NaN or infinite feature.
pub fn features(
    pipeline: &Pipeline<'_>,
    pipeline_path: &Path,
    recs: &[Recording],
) -> Result<Features, TrainError> {
    let samples: Vec<Sample> = recs.iter().map(|r| r.input.clone()).collect();
    let outs = host::run_many(pipeline, &samples).map_err(|e| TrainError::Pipeline {
        path: pipeline_path.to_path_buf(),
        message: e.to_string(),
    })?;
    let dim = pipeline.output_len();
    let mut f = Features {
        dim,
        ..Default::default()
    };
    for (g, (r, o)) in recs.iter().zip(outs).enumerate() {
        if o.is_empty() {
            return Err(TrainError::BadData(format!(
                "{}: too short for one output of the feature pipeline",
                r.origin
            )));
        }
        for bytes in o {
            let v = host::as_f32(&bytes);
            if let Some((i, bad)) = v.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(TrainError::BadData(format!(
                    "{}: feature {i} is {bad} (not finite) — check the input or the pipeline (e.g. a log without floor)",
                    r.origin
                )));
            }
            f.x.extend_from_slice(&v);
            f.y.push(r.label);
            f.group.push(g);
        }
    }
    Ok(f)
}
