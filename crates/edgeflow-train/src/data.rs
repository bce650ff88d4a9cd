//! Data: reading sources through edgeflow-data, splitting, and computing features with
//! the edgeflow-dsp pipeline — the same code and description the device runs.

use std::path::{Path, PathBuf};

use edgeflow_data::sources::csv::{CsvOptions, CsvTable};
use edgeflow_data::sources::files::ClassFolder;
use edgeflow_data::sources::image::{read_image, IMAGE_EXTENSIONS};
use edgeflow_data::sources::npy::{npz, Tensor as NpyTensor};
use edgeflow_data::sources::parquet::ParquetTable;
use edgeflow_data::sources::ts::TsFile;
use edgeflow_data::sources::wav::read_wav;
use edgeflow_data::{BadRecords, ColumnType, Rng, Row, Value};
use edgeflow_dsp::host::{self, Sample, Spec};
use edgeflow_dsp::{Input, Pipeline};
use sha2::{Digest, Sha256};

use crate::config::{Augment, FolderSource, Source, SplitConfig, TableSource, TrainConfig};
use crate::error::{DataProblem, InputMismatch, TrainError};

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
        return Err(TrainError::TooFewClasses {
            present,
            counts: classes
                .iter()
                .zip(&seen)
                .filter(|(_, &n)| n > 0)
                .map(|(c, &n)| (c.clone(), n))
                .collect(),
        });
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
            return Err(TrainError::BadData {
                at: path.display().to_string(),
                problem: DataProblem::ClassesDiffer {
                    found: names,
                    training: c.clone(),
                },
            })
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
            let names = f
                .header()
                .class_labels
                .clone()
                .ok_or_else(|| TrainError::BadData {
                    at: path.display().to_string(),
                    problem: DataProblem::NoClassLabels,
                })?;
            merge_classes(classes, names, path)?;
            let axes = match pipeline.desc().input {
                Input::Signal { axes, .. } => axes as usize,
                other => {
                    return Err(TrainError::SourceKind {
                        path: path.clone(),
                        holds: "holds time series".into(),
                        input: format!("{other:?}"),
                    })
                }
            };
            let cases = f.cases().collect_vec().map_err(data_err(path))?;
            let mut out = Vec::with_capacity(cases.len());
            for (i, c) in cases.into_iter().enumerate() {
                let origin = format!("{} case {}", path.display(), i + 1);
                if c.dims.len() != axes {
                    return Err(TrainError::Input {
                        at: origin.to_string(),
                        mismatch: InputMismatch::Dimensions {
                            found: c.dims.len(),
                            axes: axes as u32,
                        },
                    });
                }
                let len = c.dims.iter().map(Vec::len).min().unwrap_or(0);
                let mut v = Vec::with_capacity(len * axes);
                for t in 0..len {
                    for d in &c.dims {
                        let x = d[t];
                        if !x.is_finite() {
                            return Err(TrainError::BadData {
                                at: origin.to_string(),
                                problem: DataProblem::NotFiniteStep { value: x, step: t },
                            });
                        }
                        v.push(x as f32);
                    }
                }
                let label = c.class.ok_or_else(|| TrainError::BadData {
                    at: origin.to_string(),
                    problem: DataProblem::NoLabel,
                })?;
                out.push(Recording {
                    input: Sample::Signal(v),
                    label,
                    origin,
                });
            }
            Ok(out)
        }
        Source::Table(t) => {
            files.push((t.path.clone(), sha256_file(&t.path)?));
            read_table(t, pipeline, classes)
        }
        Source::WavFolder(f) => read_folder(f, FolderKind::Wav, pipeline, classes, files),
        Source::ImageFolder(f) => read_folder(f, FolderKind::Image, pipeline, classes, files),
        Source::Npz(n) => {
            files.push((n.path.clone(), sha256_file(&n.path)?));
            let xs: Vec<NpyTensor> = npz(&n.path, &n.x, BadRecords::Error)
                .collect_vec()
                .map_err(data_err(&n.path))?;
            let ys: Vec<NpyTensor> = npz(&n.path, &n.y, BadRecords::Error)
                .collect_vec()
                .map_err(data_err(&n.path))?;
            if xs.len() != ys.len() {
                return Err(TrainError::BadData {
                    at: n.path.display().to_string(),
                    problem: DataProblem::RowCounts {
                        x: n.x.clone(),
                        x_rows: xs.len(),
                        y: n.y.clone(),
                        y_rows: ys.len(),
                    },
                });
            }
            let mut labels = Vec::with_capacity(ys.len());
            for (i, y) in ys.iter().enumerate() {
                let v = y.data.to_f64();
                match v.as_slice() {
                    [l] if *l >= 0.0 && l.fract() == 0.0 && *l < 1e6 => labels.push(*l as usize),
                    _ => {
                        return Err(TrainError::BadData {
                            at: n.path.display().to_string(),
                            problem: DataProblem::NotAClass {
                                array: n.y.clone(),
                                row: i,
                                value: v,
                            },
                        })
                    }
                }
            }
            let count = labels.iter().max().map_or(0, |m| m + 1);
            let names = match &n.labels {
                Some(l) => {
                    if l.len() < count {
                        return Err(TrainError::BadData {
                            at: n.path.display().to_string(),
                            problem: DataProblem::TooFewNames {
                                max_label: count - 1,
                                names: l.len(),
                            },
                        });
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

/// What a class folder holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FolderKind {
    Wav,
    Image,
}

/// Reads a [`FolderSource`]: the class sub-folders listed by edgeflow-data's
/// [`ClassFolder`], each file decoded by its reader and checked against the pipeline's
/// input (see [`FolderSource`] for the conversions). The training source sets the class
/// list (its `labels`, else the sorted sub-folder names); a test source's folders must be
/// classes of that list (a test folder may lack a class). The recordings come class by
/// class in class-index order, each class's files in path order.
fn read_folder(
    f: &FolderSource,
    kind: FolderKind,
    pipeline: &Pipeline<'_>,
    classes: &mut Option<Vec<String>>,
    files: &mut Vec<(PathBuf, String)>,
) -> Result<Vec<Recording>, TrainError> {
    let path = &f.path;
    let exts: &[&str] = match kind {
        FolderKind::Wav => &["wav"],
        FolderKind::Image => &IMAGE_EXTENSIONS,
    };
    let what = match kind {
        FolderKind::Wav => "WAV",
        FolderKind::Image => "image",
    };
    let input = pipeline.desc().input;
    match (kind, input) {
        (FolderKind::Wav, Input::Signal { .. }) | (FolderKind::Image, Input::Image { .. }) => {}
        (_, other) => {
            return Err(TrainError::SourceKind {
                path: path.clone(),
                holds: format!("is a folder of {what} files"),
                input: format!("{other:?}"),
            })
        }
    }
    let listing = ClassFolder::open(path, exts).map_err(data_err(path))?;
    if listing.files().is_empty() {
        return Err(TrainError::BadData {
            at: path.display().to_string(),
            problem: DataProblem::NoFiles {
                kind: what,
                extensions: exts.to_vec(),
                classes: listing.classes().to_vec(),
            },
        });
    }
    let names: Vec<String> = match (&f.labels, classes.as_ref()) {
        (Some(l), _) => l.clone(),
        (None, Some(c)) => c.clone(),
        (None, None) => listing.classes().to_vec(),
    };
    // Folder index -> class index in `names`.
    let mut index = Vec::with_capacity(listing.classes().len());
    for c in listing.classes() {
        match names.iter().position(|n| n == c) {
            Some(i) => index.push(i),
            None => {
                return Err(TrainError::BadData {
                    at: path.display().to_string(),
                    problem: DataProblem::UnknownFolder {
                        folder: c.clone(),
                        classes: names,
                    },
                })
            }
        }
    }
    merge_classes(classes, names, path)?;
    let mut out = Vec::with_capacity(listing.files().len());
    for (file, folder) in listing.files() {
        let origin = file.display().to_string();
        let input = match (kind, input) {
            (FolderKind::Wav, Input::Signal { axes, rate_hz, .. }) => {
                let a = read_wav(file).map_err(data_err(file))?;
                if u32::from(a.channels) != axes {
                    return Err(TrainError::Input {
                        at: origin.to_string(),
                        mismatch: InputMismatch::AudioChannels {
                            found: a.channels,
                            axes,
                        },
                    });
                }
                if (a.sample_rate as f32 - rate_hz).abs() > 0.5 {
                    return Err(TrainError::BadData {
                        at: origin.to_string(),
                        problem: DataProblem::SampleRate {
                            file_hz: a.sample_rate,
                            pipeline_hz: rate_hz,
                        },
                    });
                }
                Sample::Signal(a.to_i16_units())
            }
            (
                _,
                Input::Image {
                    width,
                    height,
                    channels,
                },
            ) => {
                let img = read_image(file).map_err(data_err(file))?;
                if (img.width, img.height) != (width as usize, height as usize) {
                    return Err(TrainError::Input {
                        at: origin.to_string(),
                        mismatch: InputMismatch::ImageSize {
                            width: img.width,
                            height: img.height,
                            want_width: width,
                            want_height: height,
                        },
                    });
                }
                let Some(img) = img.with_channels(channels as usize) else {
                    return Err(TrainError::Input {
                        at: origin.to_string(),
                        mismatch: InputMismatch::ImageChannels {
                            found: img.channels,
                            want: channels,
                        },
                    });
                };
                Sample::Image(img.data)
            }
            (_, other) => {
                return Err(TrainError::Input {
                    at: origin.to_string(),
                    mismatch: InputMismatch::Kind(other),
                })
            }
        };
        files.push((file.clone(), sha256_file(file)?));
        out.push(Recording {
            input,
            label: index.get(*folder).copied().unwrap_or(0),
            origin,
        });
    }
    // Class by class in class-index order (the listing is in folder-name order), files
    // in path order within a class.
    out.sort_by_key(|r| r.label);
    Ok(out)
}

/// Reads a [`TableSource`]: the rows through edgeflow-data's CSV or Parquet reader, the
/// label and input columns checked against the table's schema, rows grouped into
/// recordings for signal pipelines (see [`TableSource`]).
fn read_table(
    t: &TableSource,
    pipeline: &Pipeline<'_>,
    classes: &mut Option<Vec<String>>,
) -> Result<Vec<Recording>, TrainError> {
    let path = &t.path;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let (schema, rows) = match ext.as_deref() {
        Some("csv") => {
            let table = CsvTable::open(path, CsvOptions::default()).map_err(data_err(path))?;
            let rows = table.rows().collect_vec().map_err(data_err(path))?;
            (table.schema().clone(), rows)
        }
        Some("parquet") => {
            let table = ParquetTable::open(path, BadRecords::Error).map_err(data_err(path))?;
            let rows = table.rows().collect_vec().map_err(data_err(path))?;
            (table.schema().clone(), rows)
        }
        _ => {
            return Err(TrainError::BadData {
                at: path.display().to_string(),
                problem: DataProblem::TableExtension,
            })
        }
    };
    let names: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
    let find = |name: &str, role: &'static str| {
        names
            .iter()
            .position(|n| *n == name)
            .ok_or_else(|| TrainError::BadData {
                at: path.display().to_string(),
                problem: DataProblem::NoColumn {
                    role,
                    name: name.to_string(),
                    columns: names.iter().map(|n| n.to_string()).collect(),
                },
            })
    };
    let label_col = find(&t.label, "label")?;
    let rec_col = t
        .recording
        .as_deref()
        .map(|r| find(r, "recording"))
        .transpose()?;
    if rec_col.is_none() && matches!(pipeline.desc().input, Input::Signal { .. }) {
        return Err(TrainError::BadData {
            at: path.display().to_string(),
            problem: DataProblem::NoRecordingColumn,
        });
    }
    let inputs: Vec<usize> = match &t.columns {
        Some(cols) => cols
            .iter()
            .map(|c| find(c, "input"))
            .collect::<Result<_, _>>()?,
        None => (0..names.len())
            .filter(|&i| i != label_col && Some(i) != rec_col)
            .collect(),
    };
    if inputs.is_empty() {
        return Err(TrainError::BadData {
            at: path.display().to_string(),
            problem: DataProblem::NoInputColumns,
        });
    }
    for &i in &inputs {
        let c = &schema.columns[i];
        if !matches!(c.ty, ColumnType::Int | ColumnType::Float) {
            return Err(TrainError::BadData {
                at: path.display().to_string(),
                problem: DataProblem::NotNumericColumn {
                    column: c.name.clone(),
                    ty: c.ty,
                },
            });
        }
    }
    let origin = |i: usize| format!("{} row {}", path.display(), i + 1);
    let key = |v: &Value, i: usize, what: &'static str| -> Result<String, TrainError> {
        match v {
            Value::Str(s) if !s.is_empty() => Ok(s.clone()),
            Value::Int(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Float(x) if x.fract() == 0.0 && x.abs() < 1e15 => Ok(format!("{x:.0}")),
            other => Err(TrainError::BadData {
                at: origin(i).to_string(),
                problem: DataProblem::BadKey {
                    role: what,
                    value: other.clone(),
                },
            }),
        }
    };
    let values = |r: &Row, i: usize| -> Result<Vec<f64>, TrainError> {
        inputs
            .iter()
            .map(|&c| match r.values.get(c) {
                Some(Value::Int(n)) => Ok(*n as f64),
                Some(Value::Float(x)) if x.is_finite() => Ok(*x),
                other => Err(TrainError::BadData {
                    at: origin(i).to_string(),
                    problem: DataProblem::NotANumber {
                        column: names[c].to_string(),
                        value: other.cloned().unwrap_or(Value::Null),
                    },
                }),
            })
            .collect()
    };
    let labels: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| key(r.values.get(label_col).unwrap_or(&Value::Null), i, "label"))
        .collect::<Result<_, _>>()?;
    // Class names: the given list, the training source's, or the sorted labels.
    let class_names = match (&t.labels, classes.as_ref()) {
        (Some(l), _) => l.clone(),
        (None, Some(c)) => c.clone(),
        (None, None) => {
            let mut u: Vec<String> = labels.clone();
            u.sort();
            u.dedup();
            if u.iter().all(|l| l.parse::<i64>().is_ok()) {
                u.sort_by_key(|l| l.parse::<i64>().unwrap_or(0));
            }
            u
        }
    };
    match classes {
        None => *classes = Some(class_names.clone()),
        Some(c) if *c == class_names => {}
        Some(c) => {
            return Err(TrainError::BadData {
                at: path.display().to_string(),
                problem: DataProblem::ClassesDiffer {
                    found: class_names,
                    training: c.clone(),
                },
            })
        }
    }
    let class_of = |l: &str, i: usize| {
        class_names
            .iter()
            .position(|c| c == l)
            .ok_or_else(|| TrainError::BadData {
                at: origin(i).to_string(),
                problem: DataProblem::UnknownLabel {
                    label: l.to_string(),
                    classes: class_names.clone(),
                },
            })
    };
    let input = pipeline.desc().input;
    let mut out = Vec::new();
    match input {
        Input::Signal { axes, .. } => {
            if inputs.len() != axes as usize {
                return Err(TrainError::Input {
                    at: path.display().to_string(),
                    mismatch: InputMismatch::Columns {
                        found: inputs.len(),
                        axes,
                    },
                });
            }
            // Recordings in order of their first row: (name, first row, label, values).
            let mut recs: Vec<(String, usize, String, Vec<f32>)> = Vec::new();
            let mut index: std::collections::HashMap<String, usize> = Default::default();
            for (i, r) in rows.iter().enumerate() {
                let c = rec_col.unwrap_or(label_col);
                let name = key(r.values.get(c).unwrap_or(&Value::Null), i, "recording")?;
                let k = match index.get(&name) {
                    Some(&k) => k,
                    None => {
                        index.insert(name.clone(), recs.len());
                        recs.push((name.clone(), i, labels[i].clone(), Vec::new()));
                        recs.len() - 1
                    }
                };
                let rec = &mut recs[k];
                if rec.2 != labels[i] {
                    return Err(TrainError::BadData {
                        at: origin(i).to_string(),
                        problem: DataProblem::MixedLabels {
                            label: labels[i].clone(),
                            recording: name,
                            first_row: rec.1 + 1,
                            first_label: rec.2.clone(),
                        },
                    });
                }
                rec.3.extend(values(r, i)?.into_iter().map(|x| x as f32));
            }
            for (name, first, label, v) in recs {
                out.push(Recording {
                    input: Sample::Signal(v),
                    label: class_of(&label, first)?,
                    origin: format!("{} recording {name:?}", path.display()),
                });
            }
        }
        Input::Vector { .. } | Input::Image { .. } => {
            for (i, r) in rows.iter().enumerate() {
                let v = values(r, i)?;
                let x = NpyTensor {
                    shape: vec![v.len()],
                    data: edgeflow_data::sources::npy::TensorData::F64(v),
                };
                out.push(Recording {
                    input: npz_sample(&x, input, &origin(i))?,
                    label: class_of(&labels[i], i)?,
                    origin: origin(i),
                });
            }
        }
        Input::Text { .. } => {
            return Err(TrainError::Unsupported(
                "text pipelines are not supported by the table source",
            ))
        }
    }
    Ok(out)
}

fn npz_sample(x: &NpyTensor, input: Input, origin: &str) -> Result<Sample, TrainError> {
    let v = x.data.to_f64();
    if let Some((i, bad)) = v.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(TrainError::BadData {
            at: origin.to_string(),
            problem: DataProblem::NotFinite {
                value: *bad,
                index: i,
            },
        });
    }
    match input {
        Input::Image {
            width,
            height,
            channels,
        } => {
            let want = (height * width * channels) as usize;
            if v.len() != want {
                return Err(TrainError::Input {
                    at: origin.to_string(),
                    mismatch: InputMismatch::ImageShape {
                        shape: x.shape.clone(),
                        height,
                        width,
                        channels,
                    },
                });
            }
            v.iter()
                .map(|&p| {
                    if (0.0..=255.0).contains(&p) && p.fract() == 0.0 {
                        Ok(p as u8)
                    } else {
                        Err(TrainError::BadData {
                            at: origin.to_string(),
                            problem: DataProblem::Pixel(p),
                        })
                    }
                })
                .collect::<Result<Vec<u8>, _>>()
                .map(Sample::Image)
        }
        Input::Vector { len } => {
            if v.len() != len as usize {
                return Err(TrainError::Input {
                    at: origin.to_string(),
                    mismatch: InputMismatch::VectorLen {
                        found: v.len(),
                        len,
                    },
                });
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
                return Err(TrainError::Input {
                    at: origin.to_string(),
                    mismatch: InputMismatch::SignalShape {
                        shape: x.shape.clone(),
                        axes,
                    },
                });
            }
            Ok(Sample::Signal(v.iter().map(|&a| a as f32).collect()))
        }
        Input::Text { .. } => Err(TrainError::Unsupported(
            "text pipelines are not supported by the .npz source",
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
            return Err(TrainError::EmptySplit {
                split: name.to_string(),
            });
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
            return Err(TrainError::BadData {
                at: r.origin.to_string(),
                problem: DataProblem::TooShort,
            });
        }
        for bytes in o {
            let v = host::as_f32(&bytes);
            if let Some((i, bad)) = v.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(TrainError::BadData {
                    at: r.origin.to_string(),
                    problem: DataProblem::NotFiniteFeature {
                        index: i,
                        value: *bad,
                    },
                });
            }
            f.x.extend_from_slice(&v);
            f.y.push(r.label);
            f.group.push(g);
        }
    }
    Ok(f)
}
