//! The analysis stage: any supported file as a table, per-column statistics,
//! histograms, class balance, and their rendering as terminal tables and as a
//! self-contained HTML report (inline SVG, no scripts).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::parallel::Parallel;
use crate::sources::csv::{CsvOptions, CsvTable};
use crate::sources::files::ClassFolder;
use crate::sources::image::{read_image, ImageFolder, IMAGE_EXTENSIONS};
use crate::sources::jsonl::JsonlTable;
use crate::sources::npy::{npy, npy_info, npz, npz_names, Tensor, TensorData};
use crate::sources::parquet::ParquetTable;
use crate::sources::tfrecord::{tfrecord_examples, Example, Feature};
use crate::sources::ts::TsFile;
use crate::sources::wav::read_wav;
use crate::sources::BadRecords;
use crate::table::{human_bytes, Table};
use crate::value::{Column, ColumnType, Row, Schema, Value};

/// A source seen as a table: what `edgeflow data head|inspect|stats` work on.
#[derive(Debug, Clone)]
pub struct Tabular {
    /// The file or folder.
    pub path: PathBuf,
    /// The format's name (`csv`, `parquet`, …).
    pub format: &'static str,
    /// The columns.
    pub schema: Arc<Schema>,
    /// The rows, read lazily.
    pub rows: Dataset<Row>,
    /// The number of rows if the format states it without a full read.
    pub known_rows: Option<u64>,
    /// Format-specific facts for `inspect` (`key`, `value`).
    pub facts: Vec<(String, String)>,
}

fn ext(p: &Path) -> String {
    p.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

fn col(name: &str, ty: ColumnType, nullable: bool) -> Column {
    Column {
        name: name.to_string(),
        ty,
        nullable,
    }
}

fn tensor_values(t: &Tensor) -> Vec<Value> {
    match &t.data {
        TensorData::I64(v) => v.iter().map(|&x| Value::Int(x)).collect(),
        TensorData::U64(v) => v
            .iter()
            .map(|&x| {
                i64::try_from(x)
                    .map(Value::Int)
                    .unwrap_or(Value::Float(x as f64))
            })
            .collect(),
        TensorData::Bool(v) => v.iter().map(|&x| Value::Bool(x)).collect(),
        TensorData::F32(_) | TensorData::F64(_) => {
            t.data.to_f64().into_iter().map(Value::Float).collect()
        }
        d => d
            .to_f64()
            .into_iter()
            .map(|x| Value::Int(x as i64))
            .collect(),
    }
}

fn tensor_type(d: &str) -> ColumnType {
    match d {
        "float32" | "float64" => ColumnType::Float,
        "bool" => ColumnType::Bool,
        _ => ColumnType::Int,
    }
}

fn dtype_of_descr(descr: &str) -> &'static str {
    match descr.trim_start_matches(['<', '>', '|', '=']) {
        "f4" => "float32",
        "f8" => "float64",
        "b1" => "bool",
        _ => "int",
    }
}

/// Rows of one array: a 1-d array is one column `value`; a 2-d array of width ≤ 64 has
/// one column per index; wider or higher-dimensional rows are one `list` column.
fn array_rows(
    ds: Dataset<Tensor>,
    shape: &[usize],
    descr: &str,
    prefix: &str,
) -> (Vec<Column>, Dataset<Vec<Value>>) {
    let ty = tensor_type(dtype_of_descr(descr));
    let row_shape = shape.get(1..).unwrap_or(&[]).to_vec();
    let name = |s: &str| {
        if prefix.is_empty() {
            s.to_string()
        } else {
            format!("{prefix}.{s}")
        }
    };
    if row_shape.is_empty() {
        (
            vec![col(&name("value"), ty, false)],
            ds.map(|t| tensor_values(&t)),
        )
    } else if row_shape.len() == 1 && row_shape[0] <= 64 {
        let cols = (0..row_shape[0])
            .map(|i| col(&name(&i.to_string()), ty, false))
            .collect();
        (cols, ds.map(|t| tensor_values(&t)))
    } else {
        (
            vec![col(&name("values"), ColumnType::List, false)],
            ds.map(|t| vec![Value::List(tensor_values(&t))]),
        )
    }
}

fn feature_len(f: &Feature) -> usize {
    match f {
        Feature::Float(v) => v.len(),
        Feature::Int64(v) => v.len(),
        Feature::Bytes(v) => v.len(),
        Feature::Empty => 0,
    }
}

/// A feature as a value: a scalar if `scalar` and it has one value, else a list.
fn example_value(f: &Feature, scalar: bool) -> Value {
    match f {
        Feature::Float(v) if scalar && v.len() == 1 => Value::Float(f64::from(v[0])),
        Feature::Int64(v) if scalar && v.len() == 1 => Value::Int(v[0]),
        Feature::Bytes(v) if scalar && v.len() == 1 => match std::str::from_utf8(&v[0]) {
            Ok(s) => Value::Str(s.to_string()),
            Err(_) => Value::Bytes(v[0].clone()),
        },
        Feature::Float(v) => Value::List(v.iter().map(|&x| Value::Float(f64::from(x))).collect()),
        Feature::Int64(v) => Value::List(v.iter().map(|&x| Value::Int(x)).collect()),
        Feature::Bytes(v) => Value::List(v.iter().map(|b| Value::Bytes(b.clone())).collect()),
        Feature::Empty => Value::Null,
    }
}

fn with_schema(schema: &Arc<Schema>, ds: Dataset<Vec<Value>>) -> Dataset<Row> {
    let s = Arc::clone(schema);
    ds.map(move |values| Row {
        schema: Arc::clone(&s),
        values,
    })
}

impl Tabular {
    /// Opens `path` by its extension, or, for a directory, as a class folder of images or
    /// of WAV files (one row per file, see [`open_class_folder`]).
    /// A CSV file's first line is its header unless every field of it is a number
    /// ([`crate::sources::csv::sniff_header`]). Formats:
    /// `.csv`, `.tsv`, `.jsonl`/`.ndjson`, `.parquet`, `.tfrecord`, `.npy`, `.npz`,
    /// `.ts`, `.wav`, `.txt` (lines), a folder of class sub-folders of images or of WAV files.
    /// `infer_rows` records are read to infer schemas where the format needs it.
    ///
    /// Errors: unknown extension; the file's header cannot be read.
    pub fn open(
        path: impl Into<PathBuf>,
        infer_rows: usize,
        policy: BadRecords,
    ) -> Result<Tabular> {
        Self::open_with(path, infer_rows, policy, None)
    }

    /// As [`Tabular::open`], with the CSV field delimiter given (`Some`) or detected from
    /// the first line (`None`: the most frequent of `,` `;` tab `|` outside double quotes,
    /// `,` if none occurs; tab for `.tsv`). The delimiter used is one of the facts.
    pub fn open_with(
        path: impl Into<PathBuf>,
        infer_rows: usize,
        policy: BadRecords,
        delimiter: Option<u8>,
    ) -> Result<Tabular> {
        let path: PathBuf = path.into();
        let mut facts = Vec::new();
        if let Ok(m) = std::fs::metadata(&path) {
            if m.is_file() {
                facts.push(("size".into(), human_bytes(m.len())));
            }
        }
        let e = ext(&path);
        if path.is_dir() {
            return open_class_folder(path, facts);
        }
        let t = match e.as_str() {
            "csv" | "tsv" => {
                let delimiter = match delimiter {
                    Some(d) => d,
                    None if e == "tsv" => b'\t',
                    None => detect_delimiter(&path),
                };
                facts.push((
                    "delimiter".into(),
                    match delimiter {
                        b'\t' => "tab".to_string(),
                        d => format!("{:?}", d as char),
                    },
                ));
                // A first line of numbers is data, not a header.
                let has_header = crate::sources::csv::sniff_header(&path, delimiter)?;
                facts.push(("header".into(), if has_header { "yes" } else { "no (first line is numbers)" }.into()));
                let opts = CsvOptions {
                    delimiter,
                    has_header,
                    infer_rows,
                    policy,
                };
                let t = CsvTable::open(&path, opts)?;
                Tabular { schema: Arc::clone(t.schema()), rows: t.rows(), path, format: "csv", known_rows: None, facts }
            }
            "jsonl" | "ndjson" => {
                let t = JsonlTable::open(&path, infer_rows, policy)?;
                Tabular { schema: Arc::clone(t.schema()), rows: t.rows(), path, format: "jsonl", known_rows: None, facts }
            }
            "parquet" | "pq" => {
                let t = ParquetTable::open(&path, policy)?;
                facts.push(("rows (footer)".into(), t.num_rows().to_string()));
                Tabular { schema: Arc::clone(t.schema()), rows: t.rows(), path, format: "parquet", known_rows: Some(t.num_rows()), facts }
            }
            "tfrecord" | "tfrecords" => {
                let ex = tfrecord_examples(&path, policy);
                // A feature is a scalar column if every inferred record has exactly one
                // value for it, else a list column.
                let mut cols: Vec<(Column, bool)> = Vec::new();
                for r in ex.iter().take(infer_rows) {
                    let Ok(r) = r else { continue };
                    for (k, f) in &r.features {
                        let scalar = feature_len(f) == 1;
                        let t = example_value(f, true).column_type();
                        match cols.iter_mut().find(|c| &c.0.name == k) {
                            Some(c) => {
                                c.0.ty = c.0.ty.join(t);
                                c.1 &= scalar;
                            }
                            None => cols.push((col(k, t, false), scalar)),
                        }
                    }
                }
                let scalar: Vec<bool> = cols.iter().map(|c| c.1).collect();
                let cols = cols
                    .into_iter()
                    .map(|(mut c, s)| {
                        if !s {
                            c.ty = ColumnType::List;
                        }
                        c
                    })
                    .collect();
                let schema = Arc::new(Schema { columns: cols });
                let s2 = Arc::clone(&schema);
                let ds = ex.map(move |x: Example| {
                    s2.columns
                        .iter()
                        .zip(&scalar)
                        .map(|(c, &s)| x.features.get(&c.name).map(|f| example_value(f, s)).unwrap_or(Value::Null))
                        .collect()
                });
                Tabular { rows: with_schema(&schema, ds), schema, path, format: "tfrecord (tf.train.Example)", known_rows: None, facts }
            }
            "npy" => {
                let info = npy_info(&path)?;
                facts.push(("shape".into(), format!("{:?}", info.shape)));
                facts.push(("dtype".into(), info.descr.clone()));
                let (cols, ds) = array_rows(npy(&path, policy), &info.shape, &info.descr, "");
                let schema = Arc::new(Schema { columns: cols });
                let known = Some(info.shape.first().copied().unwrap_or(1) as u64);
                Tabular { rows: with_schema(&schema, ds), schema, path, format: "npy", known_rows: known, facts }
            }
            "npz" => {
                let names = npz_names(&path)?;
                facts.push(("arrays".into(), names.join(", ")));
                // Arrays zipped side by side along their first axis.
                let mut cols = Vec::new();
                let mut parts: Option<Dataset<Vec<Value>>> = None;
                for n in &names {
                    let rows = npz(&path, n, policy);
                    let first = rows.iter().next();
                    let (shape, descr) = match first {
                        Some(Ok(t)) => {
                            let mut s = vec![0];
                            s.extend(&t.shape);
                            (s, if tensor_type(t.data.dtype_name()) == ColumnType::Float { "f8" } else { "i8" })
                        }
                        Some(Err(e)) => return Err(e),
                        None => continue,
                    };
                    let (c, ds) = array_rows(rows, &shape, descr, n);
                    cols.extend(c);
                    parts = Some(match parts {
                        None => ds,
                        Some(p) => p.zip(&ds).map(|(mut a, b)| {
                            a.extend(b);
                            a
                        }),
                    });
                }
                let schema = Arc::new(Schema { columns: cols });
                let ds = parts.unwrap_or_else(|| Dataset::from_vec(Vec::new()));
                Tabular { rows: with_schema(&schema, ds), schema, path, format: "npz", known_rows: None, facts }
            }
            "ts" => {
                let f = TsFile::open(&path, policy)?;
                let h = f.header().clone();
                facts.push(("problem".into(), h.problem_name.clone()));
                if let Some(d) = h.dimensions {
                    facts.push(("dimensions".into(), d.to_string()));
                }
                if let Some(n) = h.series_length {
                    facts.push(("series length".into(), n.to_string()));
                }
                if let Some(l) = &h.class_labels {
                    facts.push(("classes".into(), l.join(", ")));
                }
                let dims = h.dimensions.unwrap_or(1);
                let mut cols = vec![col("label", ColumnType::Str, h.class_labels.is_none()), col("length", ColumnType::Int, false)];
                for d in 0..dims {
                    cols.push(col(&format!("dim{d}.mean"), ColumnType::Float, false));
                    cols.push(col(&format!("dim{d}.std"), ColumnType::Float, false));
                }
                let schema = Arc::new(Schema { columns: cols });
                let ds = f.cases().map(move |s| {
                    let mut v = vec![
                        s.label.map(Value::Str).unwrap_or(Value::Null),
                        Value::Int(s.dims.first().map_or(0, |d| d.len()) as i64),
                    ];
                    for d in &s.dims {
                        let (m, sd) = mean_std(d);
                        v.push(Value::Float(m));
                        v.push(Value::Float(sd));
                    }
                    v
                });
                Tabular { rows: with_schema(&schema, ds), schema, path, format: "ts (UCR/UEA)", known_rows: None, facts }
            }
            "wav" => {
                let a = read_wav(&path)?;
                facts.push(("sample rate".into(), format!("{} Hz", a.sample_rate)));
                facts.push(("channels".into(), a.channels.to_string()));
                facts.push(("encoding".into(), format!("{} (read as full scale [-1, 1))", a.encoding)));
                facts.push(("duration".into(), format!("{:.3} s", a.seconds())));
                let ch = usize::from(a.channels.max(1));
                let cols = (0..ch).map(|c| col(&format!("channel{c}"), ColumnType::Float, false)).collect();
                let schema = Arc::new(Schema { columns: cols });
                let frames: Vec<Vec<Value>> =
                    a.samples.chunks(ch).map(|f| f.iter().map(|&x| Value::Float(f64::from(x))).collect()).collect();
                let known = Some(frames.len() as u64);
                Tabular { rows: with_schema(&schema, Dataset::from_vec(frames)), schema, path, format: "wav", known_rows: known, facts }
            }
            "txt" | "text" | "log" => {
                let schema = Arc::new(Schema {
                    columns: vec![col("line", ColumnType::Str, false), col("chars", ColumnType::Int, false)],
                });
                let ds = crate::sources::lines::lines(&path, policy)
                    .map(|l| {
                        let n = l.chars().count() as i64;
                        vec![Value::Str(l), Value::Int(n)]
                    });
                Tabular { rows: with_schema(&schema, ds), schema, path, format: "text lines", known_rows: None, facts }
            }
            other => {
                return Err(Error::file(
                    &path,
                    format!("unknown format {other:?}: expected csv, tsv, jsonl, parquet, tfrecord, npy, npz, ts, wav, txt or a class folder of images or WAV files"),
                ))
            }
        };
        Ok(t)
    }
}

/// A directory as a table with one row per file: a class folder (see [`ClassFolder`]) of
/// images (label, width, height, channels, mean pixel value, file) or of WAV files (label,
/// sample rate in Hz, channels, frames, seconds, RMS and peak in full-scale units, file).
///
/// Errors: the folder cannot be listed; it has no class sub-folder; it holds both images
/// and WAV files, or neither (a folder of other files is not silently an empty table).
/// A file that cannot be decoded is a bad record naming it.
fn open_class_folder(path: PathBuf, mut facts: Vec<(String, String)>) -> Result<Tabular> {
    let images = ImageFolder::open(&path)?;
    let wavs = ClassFolder::open(&path, &["wav"])?;
    let (n_img, n_wav) = (images.files().len(), wavs.files().len());
    if n_img > 0 && n_wav > 0 {
        return Err(Error::file(
            &path,
            format!("a class folder holds {n_img} image and {n_wav} WAV files; keep one kind per folder"),
        ));
    }
    if n_img == 0 && n_wav == 0 {
        return Err(Error::file(
            &path,
            format!(
                "no {} or .wav file in its class sub-folders ({})",
                IMAGE_EXTENSIONS.map(|e| format!(".{e}")).join(", "),
                wavs.classes().join(", ")
            ),
        ));
    }
    facts.push(("classes".into(), wavs.classes().join(", ")));
    let classes = wavs.classes().to_vec();
    if n_wav > 0 {
        facts.push(("WAV files".into(), n_wav.to_string()));
        let schema = Arc::new(Schema {
            columns: vec![
                col("label", ColumnType::Str, false),
                col("sample_rate", ColumnType::Int, false),
                col("channels", ColumnType::Int, false),
                col("frames", ColumnType::Int, false),
                col("seconds", ColumnType::Float, false),
                col("rms", ColumnType::Float, false),
                col("peak", ColumnType::Float, false),
                col("file", ColumnType::Str, false),
            ],
        });
        let files = wavs.files().to_vec();
        let ds = Dataset::from_vec(files).par_map_result(Parallel::auto(), move |(p, l)| {
            let a = read_wav(&p)?;
            let n = a.samples.len().max(1) as f64;
            let rms = (a
                .samples
                .iter()
                .map(|&x| f64::from(x) * f64::from(x))
                .sum::<f64>()
                / n)
                .sqrt();
            let peak = a
                .samples
                .iter()
                .fold(0.0f64, |m, &x| m.max(f64::from(x).abs()));
            Ok(vec![
                Value::Str(classes.get(l).cloned().unwrap_or_default()),
                Value::Int(i64::from(a.sample_rate)),
                Value::Int(i64::from(a.channels)),
                Value::Int(a.frames() as i64),
                Value::Float(a.seconds()),
                Value::Float(rms),
                Value::Float(peak),
                Value::Str(p.display().to_string()),
            ])
        });
        return Ok(Tabular {
            rows: with_schema(&schema, ds),
            schema,
            path,
            format: "WAV class folder",
            known_rows: Some(n_wav as u64),
            facts,
        });
    }
    facts.push(("images".into(), n_img.to_string()));
    let schema = Arc::new(Schema {
        columns: vec![
            col("label", ColumnType::Str, false),
            col("width", ColumnType::Int, false),
            col("height", ColumnType::Int, false),
            col("channels", ColumnType::Int, false),
            col("mean", ColumnType::Float, false),
            col("file", ColumnType::Str, false),
        ],
    });
    let ds = images
        .dataset(None)
        .par_map_result(Parallel::auto(), move |(p, l)| {
            let im = read_image(&p)?;
            let mean =
                im.data.iter().map(|&b| f64::from(b)).sum::<f64>() / im.data.len().max(1) as f64;
            Ok(vec![
                Value::Str(classes.get(l).cloned().unwrap_or_default()),
                Value::Int(im.width as i64),
                Value::Int(im.height as i64),
                Value::Int(im.channels as i64),
                Value::Float(mean),
                Value::Str(p.display().to_string()),
            ])
        });
    Ok(Tabular {
        rows: with_schema(&schema, ds),
        schema,
        path,
        format: "image folder",
        known_rows: Some(n_img as u64),
        facts,
    })
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let mut w = Welford::default();
    for &x in v.iter().filter(|x| !x.is_nan()) {
        w.push(x);
    }
    (w.mean, w.std())
}

#[derive(Debug, Clone, Copy, Default)]
struct Welford {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Welford {
    fn push(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }
    fn std(&self) -> f64 {
        if self.n < 2 {
            0.0
        } else {
            (self.m2 / (self.n - 1) as f64).sqrt()
        }
    }
}

/// Most distinct values counted per column; beyond, counting stops and the count is a
/// lower bound.
pub const MAX_DISTINCT: usize = 10_000;

/// Statistics of one column.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnStats {
    /// The column.
    pub column: Column,
    /// Rows seen.
    pub count: u64,
    /// Missing values (`Null`).
    pub missing: u64,
    /// Values not a number in a numeric column (NaN) or of the wrong type.
    pub invalid: u64,
    /// Smallest numeric value (or list length, string length).
    pub min: Option<f64>,
    /// Largest numeric value.
    pub max: Option<f64>,
    /// Mean of the numeric values.
    pub mean: Option<f64>,
    /// Sample standard deviation of the numeric values.
    pub std: Option<f64>,
    /// Number of distinct values (at most [`MAX_DISTINCT`], then a lower bound).
    pub distinct: usize,
    /// Whether `distinct` hit [`MAX_DISTINCT`].
    pub distinct_capped: bool,
    /// The most frequent values with their counts, most frequent first (up to 10).
    pub top: Vec<(String, u64)>,
    /// Histogram of the numeric values: `bins` equal-width bins from `min` to `max`.
    pub histogram: Vec<u64>,
}

/// The headers of [`Summary::column_cells`].
pub const COLUMN_HEADERS: [&str; 10] = [
    "column",
    "type",
    "missing",
    "invalid",
    "min",
    "mean",
    "std",
    "max",
    "distinct",
    "top value",
];

/// The statistics of a whole table.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The source.
    pub path: PathBuf,
    /// The format.
    pub format: &'static str,
    /// Rows read.
    pub rows: u64,
    /// Error items met (corrupt records), with the first few messages.
    pub errors: u64,
    /// The first error messages (up to 5).
    pub first_errors: Vec<String>,
    /// The first error that concerned the whole file (it could not be read), if any.
    pub fatal: Option<String>,
    /// One entry per column.
    pub columns: Vec<ColumnStats>,
    /// The column used for class balance, if any: one named `label`, `class`, `target`,
    /// `y` or `category`, or else a last string/integer column with 2–50 distinct values.
    pub label: Option<usize>,
}

/// The numeric value of `v` for statistics: numbers, booleans, and the length of
/// strings, byte strings and lists.
fn numeric(v: &Value) -> Option<f64> {
    match v {
        Value::Str(s) => Some(s.chars().count() as f64),
        Value::Bytes(b) => Some(b.len() as f64),
        Value::List(l) => Some(l.len() as f64),
        other => other.as_f64(),
    }
}

struct Acc {
    w: Welford,
    min: f64,
    max: f64,
    missing: u64,
    invalid: u64,
    counts: HashMap<String, u64>,
    capped: bool,
}

/// Computes the statistics of `t` in two passes (the second fills the histograms of
/// `bins` bins between the exact minimum and maximum). `progress` is called with the
/// number of rows read so far every 1024 rows and at the end.
///
/// Errors: none of its own; corrupt records are counted in [`Summary::errors`].
pub fn summarize(t: &Tabular, bins: usize, progress: &mut dyn FnMut(u64)) -> Summary {
    let ncol = t.schema.columns.len();
    let mut acc: Vec<Acc> = (0..ncol)
        .map(|_| Acc {
            w: Welford::default(),
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            missing: 0,
            invalid: 0,
            counts: HashMap::new(),
            capped: false,
        })
        .collect();
    let (mut rows, mut errors, mut first_errors) = (0u64, 0u64, Vec::new());
    let mut fatal = None;
    for item in t.rows.iter() {
        match item {
            Err(e) => {
                errors += 1;
                if !e.is_record_level() && fatal.is_none() {
                    fatal = Some(e.to_string());
                }
                if first_errors.len() < 5 {
                    first_errors.push(e.to_string());
                }
            }
            Ok(r) => {
                rows += 1;
                for (a, v) in acc.iter_mut().zip(&r.values) {
                    if *v == Value::Null {
                        a.missing += 1;
                        continue;
                    }
                    match numeric(v) {
                        Some(x) if x.is_nan() => a.invalid += 1,
                        Some(x) => {
                            a.w.push(x);
                            a.min = a.min.min(x);
                            a.max = a.max.max(x);
                        }
                        None => a.invalid += 1,
                    }
                    if !matches!(v, Value::List(_) | Value::Bytes(_) | Value::Float(_)) {
                        let key = v.to_string();
                        if let Some(c) = a.counts.get_mut(&key) {
                            *c += 1;
                        } else if a.counts.len() < MAX_DISTINCT {
                            a.counts.insert(key, 1);
                        } else {
                            a.capped = true;
                        }
                    }
                }
            }
        }
        if (rows + errors) % 1024 == 0 {
            progress(rows + errors);
        }
    }
    progress(rows + errors);
    let bins = bins.max(1);
    let mut hist = vec![vec![0u64; bins]; ncol];
    if acc.iter().any(|a| a.w.n > 0) {
        for r in t.rows.iter().flatten() {
            for ((a, h), v) in acc.iter().zip(hist.iter_mut()).zip(&r.values) {
                if let Some(x) = numeric(v).filter(|x| !x.is_nan()) {
                    let span = a.max - a.min;
                    let b = if span > 0.0 {
                        (((x - a.min) / span) * bins as f64) as usize
                    } else {
                        0
                    };
                    h[b.min(bins - 1)] += 1;
                }
            }
        }
    }
    let columns: Vec<ColumnStats> = t
        .schema
        .columns
        .iter()
        .zip(acc)
        .zip(hist)
        .map(|((c, a), h)| {
            let mut top: Vec<(String, u64)> =
                a.counts.iter().map(|(k, v)| (k.clone(), *v)).collect();
            top.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
            top.truncate(10);
            let has = a.w.n > 0;
            ColumnStats {
                column: c.clone(),
                count: rows,
                missing: a.missing,
                invalid: a.invalid,
                min: has.then_some(a.min),
                max: has.then_some(a.max),
                mean: has.then_some(a.w.mean),
                std: has.then_some(a.w.std()),
                distinct: a.counts.len(),
                distinct_capped: a.capped,
                top,
                histogram: if has { h } else { Vec::new() },
            }
        })
        .collect();
    let label = label_column(&columns);
    Summary {
        path: t.path.clone(),
        format: t.format,
        rows,
        errors,
        first_errors,
        fatal,
        columns,
        label,
    }
}

impl Summary {
    /// The good and bad records met, for a [`crate::BadRecordLimit`] check.
    pub fn tally(&self) -> crate::ReadTally {
        crate::ReadTally {
            good: self.rows,
            bad: self.errors,
            fatal: self.fatal.clone(),
            first: self.first_errors.clone(),
        }
    }
}

/// The most frequent of `,` `;` tab `|` outside double quotes on the first non-empty line
/// of the file (its first 64 KiB); `,` when none occurs or the file cannot be read (the
/// reader then reports the read error itself).
fn detect_delimiter(path: &std::path::Path) -> u8 {
    use std::io::Read;
    let mut head = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(64 * 1024).read_to_end(&mut head);
    }
    let line = head
        // Lines end at \n, \r\n or a lone \r, as in every text reader.
        .split(|&b| b == b'\n' || b == b'\r')
        .find(|l| l.iter().any(|b| !b.is_ascii_whitespace()))
        .unwrap_or(&[]);
    let mut counts = [0usize; 4];
    let candidates = [b',', b';', b'\t', b'|'];
    let mut quoted = false;
    for &b in line {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted {
            if let Some(i) = candidates.iter().position(|&c| c == b) {
                counts[i] += 1;
            }
        }
    }
    let mut best = 0;
    for i in 1..4 {
        if counts[i] > counts[best] {
            best = i;
        }
    }
    if counts[best] == 0 {
        b','
    } else {
        candidates[best]
    }
}

/// The column that looks like a class label: named `label`, `class`, `target`, `y` or
/// `category` (any case), or else the last column if it is a string or integer column with
/// 2–50 distinct values.
fn label_column(cols: &[ColumnStats]) -> Option<usize> {
    let named = cols.iter().position(|c| {
        matches!(
            c.column.name.to_ascii_lowercase().as_str(),
            "label" | "class" | "target" | "y" | "category"
        ) && !c.top.is_empty()
            && c.distinct <= 1000
    });
    named.or_else(|| {
        let i = cols.len().checked_sub(1)?;
        let c = &cols[i];
        (matches!(c.column.ty, ColumnType::Str | ColumnType::Int)
            && (2..=50).contains(&c.distinct)
            && !c.distinct_capped)
            .then_some(i)
    })
}

/// "0", or "12 (4.0%) !" — missing values as a count and a share of the rows, marked.
fn missing_text(missing: u64, rows: u64) -> String {
    if missing == 0 {
        "0".into()
    } else {
        format!(
            "{missing} ({:.1}%) !",
            missing as f64 * 100.0 / rows.max(1) as f64
        )
    }
}

fn num(x: Option<f64>) -> String {
    match x {
        None => "-".into(),
        Some(v) if v == v.trunc() && v.abs() < 1e15 => format!("{}", v as i64),
        Some(v) if v.abs() >= 1e5 || (v != 0.0 && v.abs() < 1e-3) => format!("{v:.3e}"),
        Some(v) => format!("{v:.4}"),
    }
}

/// A histogram as a one-line sparkline of block characters.
pub fn sparkline(h: &[u64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = h.iter().copied().max().unwrap_or(0);
    h.iter()
        .map(|&c| {
            if max == 0 || c == 0 {
                ' '
            } else {
                BARS[((c * 7).div_ceil(max)) as usize]
            }
        })
        .collect()
}

impl Summary {
    /// Uses column `name` for the class balance. Errors (naming the columns there are) if
    /// no column has that name.
    pub fn set_label(&mut self, name: &str) -> std::result::Result<(), String> {
        match self.columns.iter().position(|c| c.column.name == name) {
            Some(i) => {
                self.label = Some(i);
                Ok(())
            }
            None => Err(format!(
                "{}: no column {name:?} (columns: {})",
                self.path.display(),
                self.columns
                    .iter()
                    .map(|c| c.column.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// The per-column table: name, type, count, missing, invalid, min, mean, std, max,
    /// distinct values, histogram sparkline, most frequent value.
    pub fn columns_table(&self) -> String {
        let mut t = Table::new([
            "column",
            "type",
            "missing",
            "invalid",
            "min",
            "mean",
            "std",
            "max",
            "distinct",
            "histogram",
            "top value",
        ]);
        for c in &self.columns {
            let top = c
                .top
                .first()
                .map(|(v, n)| format!("{} ({n})", shorten(v, 20)))
                .unwrap_or_else(|| "-".into());
            let distinct = distinct_text(c);
            let ty = match c.column.ty {
                ColumnType::Str | ColumnType::Bytes | ColumnType::List => {
                    format!("{} (len)", c.column.ty)
                }
                t => t.to_string(),
            };
            t.row([
                c.column.name.clone(),
                ty,
                missing_text(c.missing, self.rows),
                c.invalid.to_string(),
                num(c.min),
                num(c.mean),
                num(c.std),
                num(c.max),
                distinct,
                sparkline(&c.histogram),
                top,
            ]);
        }
        t.render()
    }

    /// The class-balance table of the label column (class, count, share, bar), or
    /// `None` without a label column.
    pub fn class_table(&self) -> Option<String> {
        let c = &self.columns[self.label?];
        let total: u64 = c.top.iter().map(|x| x.1).sum::<u64>().max(1);
        let mut t = Table::new(["class", "count", "share", ""]);
        for (v, n) in &c.top {
            let share = *n as f64 / self.rows.max(1) as f64;
            t.row([
                shorten(v, 30),
                n.to_string(),
                format!("{:.1}%", share * 100.0),
                "█".repeat(((*n * 30) / total) as usize),
            ]);
        }
        if c.distinct > c.top.len() {
            t.row([
                format!("… {} more", c.distinct - c.top.len()),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
        if c.missing > 0 {
            let share = c.missing as f64 / self.rows.max(1) as f64;
            t.row([
                "(unlabelled)".to_string(),
                c.missing.to_string(),
                format!("{:.1}%", share * 100.0),
                "░".repeat(((c.missing * 30) / total.max(c.missing)) as usize),
            ]);
        }
        Some(format!(
            "class balance ({}):\n{}",
            c.column.name,
            t.render()
        ))
    }

    /// Everything as terminal text: a header, the column table, the class balance and
    /// the first errors.
    pub fn text(&self) -> String {
        let mut s = format!(
            "{} ({}): {} rows, {} columns, {} bad records\n\n{}",
            self.path.display(),
            self.format,
            self.rows,
            self.columns.len(),
            self.errors,
            self.columns_table()
        );
        if let Some(c) = self.class_table() {
            let _ = write!(s, "\n{c}");
        }
        if !self.first_errors.is_empty() {
            s.push_str("\nfirst bad records:\n");
            for e in &self.first_errors {
                let _ = writeln!(s, "  {e}");
            }
        }
        s
    }

    /// The per-column summary as display text, one row per column, cells in the order of
    /// [`COLUMN_HEADERS`] (numbers formatted as in [`Summary::text`]; the top value is
    /// shortened to 30 characters and followed by its count). Reports (`edgeflow data
    /// stats --report`) lay these out; no HTML is made here.
    pub fn column_cells(&self) -> Vec<[String; 10]> {
        self.columns
            .iter()
            .map(|c| {
                let top = c
                    .top
                    .first()
                    .map(|(v, n)| format!("{} ({n})", shorten(v, 30)))
                    .unwrap_or_default();
                [
                    c.column.name.clone(),
                    c.column.ty.to_string(),
                    c.missing.to_string(),
                    c.invalid.to_string(),
                    num(c.min),
                    num(c.mean),
                    num(c.std),
                    num(c.max),
                    distinct_text(c),
                    top,
                ]
            })
            .collect()
    }
}

/// Distinct count as shown: `-` where not counted (floats, lists, bytes), `>N` when capped.
fn distinct_text(c: &ColumnStats) -> String {
    if matches!(
        c.column.ty,
        ColumnType::Float | ColumnType::List | ColumnType::Bytes
    ) {
        "-".to_string()
    } else if c.distinct_capped {
        format!(">{}", c.distinct)
    } else {
        c.distinct.to_string()
    }
}

fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// The first `n` rows of `t` as an aligned table (long values shortened), plus one line
/// per error item met on the way.
pub fn head(t: &Tabular, n: usize) -> String {
    head_tally(t, n).0
}

/// [`head`] and the tally of the records it read (`n` items, good or bad).
pub fn head_tally(t: &Tabular, n: usize) -> (String, crate::ReadTally) {
    let mut tab = Table::new(t.schema.columns.iter().map(|c| c.name.clone()));
    let mut errors = String::new();
    let mut tally = crate::ReadTally::default();
    for item in t.rows.iter().take(n) {
        tally.add(&item);
        match item {
            Ok(r) => {
                tab.row(r.values.iter().map(|v| shorten(&v.to_string(), 24)));
            }
            Err(e) => {
                let _ = writeln!(errors, "bad record: {e}");
            }
        }
    }
    (format!("{}{errors}", tab.render()), tally)
}

/// The schema and format facts of `t` as text.
pub fn inspect(t: &Tabular) -> String {
    let mut s = format!("{} ({})\n", t.path.display(), t.format);
    let mut f = Table::new(["fact", "value"]);
    for (k, v) in &t.facts {
        f.row([k.clone(), v.clone()]);
    }
    if let Some(n) = t.known_rows {
        f.row(["rows".to_string(), n.to_string()]);
    }
    s.push_str(&f.render());
    s.push('\n');
    let mut c = Table::new(["#", "column", "type", "nullable"]);
    for (i, col) in t.schema.columns.iter().enumerate() {
        c.row([
            i.to_string(),
            col.name.clone(),
            col.ty.to_string(),
            if col.nullable { "yes" } else { "no" }.to_string(),
        ]);
    }
    s.push_str(&c.render());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let p = dir.path().join("t.csv");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn summary_statistics_are_exact() {
        let dir = tempfile::tempdir().unwrap();
        let p = csv(
            &dir,
            "x,name,label\n1,aa,cat\n2,,dog\n3,b,cat\n4,ccc,cat\n,dd,dog\n",
        );
        let t = Tabular::open(&p, 100, BadRecords::Error).unwrap();
        let s = summarize(&t, 4, &mut |_| {});
        assert_eq!(s.rows, 5);
        let x = &s.columns[0];
        assert_eq!(
            (x.min, x.max, x.mean, x.missing),
            (Some(1.0), Some(4.0), Some(2.5), 1)
        );
        assert!((x.std.unwrap() - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(x.histogram, [1, 1, 1, 1]);
        let name = &s.columns[1];
        assert_eq!(
            (name.missing, name.min, name.max),
            (1, Some(1.0), Some(3.0))
        );
        assert_eq!(s.label, Some(2));
        assert_eq!(
            s.columns[2].top,
            [("cat".to_string(), 3), ("dog".to_string(), 2)]
        );
        let text = s.text();
        assert!(text.contains("class balance (label)"), "{text}");
        assert!(text.contains("60.0%"));
        let cells = s.column_cells();
        assert_eq!(cells[2][0], "label");
        assert_eq!(cells[2][9], "cat (3)");
    }

    #[test]
    fn bad_records_are_counted_and_shown() {
        let dir = tempfile::tempdir().unwrap();
        let p = csv(&dir, "x,y\n1,2\n3\n4,5\n");
        let t = Tabular::open(&p, 100, BadRecords::Error).unwrap();
        let s = summarize(&t, 8, &mut |_| {});
        assert_eq!((s.rows, s.errors), (2, 1));
        assert!(s.first_errors[0].contains("record 1 (line 3)"));
        assert!(s.text().contains("first bad records"));
        let h = head(&t, 10);
        assert!(h.contains("bad record:"), "{h}");
    }

    #[test]
    fn sparkline_scales_to_the_largest_bin() {
        assert_eq!(sparkline(&[0, 1, 2, 4]), " ▃▅█");
        assert_eq!(sparkline(&[]), "");
    }

    #[test]
    fn unknown_extensions_are_errors() {
        let e = Tabular::open("x.unknown", 10, BadRecords::Error).unwrap_err();
        assert!(e.to_string().contains("unknown format"));
    }
}
