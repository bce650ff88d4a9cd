//! Data validation as TFX does it (a schema plus an example validator): infer a
//! [`Schema`] from the training data, then check new data against it and report typed
//! [`Anomaly`]s.
//!
//! ```no_run
//! use std::path::Path;
//! use edgeflow_data::schema::{self, InferOptions, ValidateOptions};
//!
//! let train = schema::open(Path::new("train.csv"), 100_000)?;
//! let s = schema::infer(&train, &InferOptions::default())?;
//! s.save(Path::new("schema.json"))?;
//! let new = schema::open(Path::new("new.csv"), 100_000)?;
//! for a in schema::validate(&s, &new, Some(&train), &ValidateOptions::default())? {
//!     eprintln!("{a}"); // file: record N: column "c": new category: expected …, saw …
//! }
//! # Ok::<(), edgeflow_data::Error>(())
//! ```
//!
//! # Contract
//!
//! - [`infer`] reads every record of a [`Tabular`] source once and records, per column:
//!   its type, how often it is missing, the range of its numeric values (with a histogram
//!   over that range, the reference for skew), and, for string and boolean columns with
//!   at most [`InferOptions::max_domain`] distinct values and at least two records per
//!   value on average (so not identifiers or file names), the categorical domain with
//!   counts. For a `.ts` (UCR/UEA) source it also records the series: axis count, the
//!   shortest and longest series and each axis' value range.
//! - [`validate`] reads every record of new data and reports, in this order: missing
//!   columns, unexpected columns, type changes, values out of range, new categories,
//!   missing-value rates above the threshold, series-shape changes, and — when the
//!   training data is given — training/serving skew (L-infinity distance of category
//!   shares, Jensen–Shannon divergence of numeric histograms, as TFDV defines them).
//!   Each anomaly names the column, what the schema expected, what was seen, and where:
//!   the file, the first offending record (0-based, as the source reader counts records:
//!   a CSV header is not a record) and how many records offended.
//! - Corrupt records are errors ([`crate::Error`], naming file and record): validation
//!   is strict and never guesses around unreadable data. Nothing here panics on any
//!   input.
//!
//! ## Skew measures
//!
//! - Categorical (string, boolean columns with a domain): `L∞ = max_v |p_train(v) −
//!   p_serving(v)|` over the union of values, `p` being the share of non-missing values.
//! - Numeric: both data sets are binned on the same edges: the schema's
//!   [`NumericDomain::edges`] (`bins` equal-width bins from the training minimum to
//!   maximum, the last bin closed) plus one open bin below and one above; then
//!   `JS(P‖Q) = ½ KL(P‖M) + ½ KL(Q‖M)`, `M = ½(P+Q)`, with base-2 logarithms so that
//!   `0 ≤ JS ≤ 1` (this equals `scipy.spatial.distance.jensenshannon(p, q, base=2)**2`;
//!   `scripts/make_schema_goldens.py` produces the goldens the tests compare with).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::analyze::Tabular;
use crate::error::{Error, Result};
use crate::sources::ts::TsFile;
use crate::sources::BadRecords;
use crate::value::{ColumnType, Value};

/// The `format` field every schema file carries.
pub const SCHEMA_FORMAT: &str = "edgeflow-schema";
/// The schema file version this crate writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// What was learned about a data set: one entry per column, plus the series shape of a
/// time-series source. Serialised as JSON by [`Schema::save`] / [`Schema::load`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    /// Always [`SCHEMA_FORMAT`].
    pub format: String,
    /// Always [`SCHEMA_VERSION`]; other versions are rejected on load.
    pub version: u32,
    /// The source the schema was inferred from.
    pub source: String,
    /// The source's format name (`csv`, `parquet`, `ts (UCR/UEA)`, …).
    pub source_format: String,
    /// Records read.
    pub records: u64,
    /// One entry per column, in source order.
    pub features: Vec<Feature>,
    /// For time-series sources: the series' shape and value ranges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<SeriesSchema>,
}

/// One column of the schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    /// Column name.
    pub name: String,
    /// The type of its values (`Int` accepts in a `Float` column; nothing else widens).
    #[serde(rename = "type")]
    pub ty: ColumnType,
    /// Fraction of records where the value is missing (`null`, empty CSV field), in
    /// `[0, 1]`.
    pub missing_rate: f64,
    /// Numeric columns (int, float): the observed range and histogram.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric: Option<NumericDomain>,
    /// String and boolean columns with few distinct values: the categories and counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<Vec<Category>>,
}

/// A numeric column's observed range, and its histogram on `edges`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumericDomain {
    /// Smallest value seen (NaN excluded).
    pub min: f64,
    /// Largest value seen.
    pub max: f64,
    /// Bin edges, `bins + 1` values from `min` to `max`.
    pub edges: Vec<f64>,
    /// Counts per bin (`edges.len() − 1` bins; values equal to `max` in the last).
    pub counts: Vec<u64>,
    /// NaN values seen (they are neither missing nor in range).
    pub nan: u64,
}

/// One value of a categorical domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// The value as text (`true`/`false` for booleans).
    pub value: String,
    /// How many training records had it.
    pub count: u64,
}

/// The shape of a time-series source (`.ts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesSchema {
    /// Axes (dimensions, channels) per series.
    pub axes: usize,
    /// Shortest series seen (samples per axis).
    pub min_length: usize,
    /// Longest series seen.
    pub max_length: usize,
    /// Per axis: `[min, max]` of its values (NaN excluded).
    pub ranges: Vec<[f64; 2]>,
}

/// Options of [`infer`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InferOptions {
    /// String/boolean columns with more distinct values than this get no domain (free
    /// text, identifiers). Default 100 (TFDV's default for string domains).
    pub max_domain: usize,
    /// Histogram bins of numeric columns (the resolution of the JS-divergence check).
    /// Default 10.
    pub bins: usize,
}

impl Default for InferOptions {
    fn default() -> Self {
        InferOptions {
            max_domain: 100,
            bins: 10,
        }
    }
}

/// Thresholds of [`validate`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValidateOptions {
    /// A value is out of range when it lies outside `[min − t·span, max + t·span]`,
    /// `span = max − min` of the schema, `t` this tolerance. Default 0 (the observed range).
    pub range_tolerance: f64,
    /// A column that was never missing must stay so; otherwise its missing rate may
    /// exceed the schema's by at most this much (absolute). Default 0.02.
    pub missing_rate_tolerance: f64,
    /// Largest L-infinity distance of category shares between training and serving data.
    /// Default 0.1.
    pub linf_threshold: f64,
    /// Largest Jensen–Shannon divergence (base 2) of numeric histograms between training
    /// and serving data. Default 0.1.
    pub js_threshold: f64,
}

impl Default for ValidateOptions {
    fn default() -> Self {
        ValidateOptions {
            range_tolerance: 0.0,
            missing_rate_tolerance: 0.02,
            linf_threshold: 0.1,
            js_threshold: 0.1,
        }
    }
}

/// What kind of anomaly, with its measured value where it has one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AnomalyKind {
    /// A schema column is absent from the new data.
    MissingColumn,
    /// The new data has a column the schema does not know.
    UnexpectedColumn,
    /// Values of another type than the schema's (a string in a numeric column, a float in
    /// an integer column, …).
    TypeChange,
    /// Numeric values outside the schema's range (widened by the tolerance).
    OutOfRange,
    /// Values of a categorical column outside its domain.
    NewCategory,
    /// More missing values than the schema allows.
    MissingRate {
        /// The new data's missing rate.
        rate: f64,
        /// The largest rate allowed.
        limit: f64,
    },
    /// A time series with another axis count or a length outside the schema's.
    SeriesShape,
    /// Training/serving skew above its threshold.
    Skew {
        /// `linf` (categorical) or `jensen_shannon` (numeric).
        measure: String,
        /// The distance measured.
        value: f64,
        /// The threshold it exceeded.
        threshold: f64,
    },
}

impl AnomalyKind {
    /// A short name (`missing_column`, `skew`, …), as in the JSON `kind` field.
    pub fn name(&self) -> &'static str {
        match self {
            AnomalyKind::MissingColumn => "missing_column",
            AnomalyKind::UnexpectedColumn => "unexpected_column",
            AnomalyKind::TypeChange => "type_change",
            AnomalyKind::OutOfRange => "out_of_range",
            AnomalyKind::NewCategory => "new_category",
            AnomalyKind::MissingRate { .. } => "missing_rate",
            AnomalyKind::SeriesShape => "series_shape",
            AnomalyKind::Skew { .. } => "skew",
        }
    }
}

/// Where an anomaly was seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// The file (or folder) of the new data.
    pub file: PathBuf,
    /// The first offending record, 0-based; `None` when the anomaly concerns the whole
    /// column (a missing column, a rate, skew).
    pub record: Option<u64>,
    /// How many records offended (0 when not per record).
    pub count: u64,
}

/// One finding of [`validate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// What kind.
    #[serde(flatten)]
    pub kind: AnomalyKind,
    /// The column (for series anomalies, `axis N` or `series`).
    pub column: String,
    /// What the schema expected, in words (`float in [0, 3.5]`, `one of a, b`).
    pub expected: String,
    /// What was seen (`7.25`, `"z"`, `string`).
    pub seen: String,
    /// Where.
    pub location: Location,
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.location.file.display())?;
        if let Some(r) = self.location.record {
            write!(f, ": record {r}")?;
            if self.location.count > 1 {
                write!(f, " (and {} more)", self.location.count - 1)?;
            }
        }
        write!(
            f,
            ": column {:?}: {}: expected {}, saw {}",
            self.column,
            self.kind.name().replace('_', " "),
            self.expected,
            self.seen
        )
    }
}

impl Schema {
    /// Writes the schema as pretty JSON to `path`.
    ///
    /// Errors: [`Error::Io`] when the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self)
            .map_err(|e| Error::file(path, format!("cannot encode the schema: {e}")))?;
        std::fs::write(path, json + "\n").map_err(|e| Error::io(path, e))
    }

    /// Reads a schema written by [`Schema::save`].
    ///
    /// Errors: [`Error::Io`]; [`Error::File`] when the JSON is malformed (naming line and
    /// column), has unknown fields, or its `format`/`version` is not this crate's.
    pub fn load(path: &Path) -> Result<Schema> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Schema::from_json(&text).map_err(|reason| Error::file(path, reason))
    }

    /// Parses a schema from JSON text; the error says what is wrong and where.
    pub fn from_json(text: &str) -> std::result::Result<Schema, String> {
        let s: Schema = serde_json::from_str(text).map_err(|e| format!("not a schema: {e}"))?;
        if s.format != SCHEMA_FORMAT {
            return Err(format!("format {:?}, expected {SCHEMA_FORMAT:?}", s.format));
        }
        if s.version != SCHEMA_VERSION {
            return Err(format!(
                "schema version {}, this edgeflow reads version {SCHEMA_VERSION}",
                s.version
            ));
        }
        for f in &s.features {
            if let Some(n) = &f.numeric {
                if n.edges.len() != n.counts.len() + 1
                    || n.edges.windows(2).any(|w| !(w[0] <= w[1]))
                {
                    return Err(format!(
                        "feature {:?}: {} edges for {} bins, or edges not ascending",
                        f.name,
                        n.edges.len(),
                        n.counts.len()
                    ));
                }
            }
        }
        Ok(s)
    }

    /// The feature named `name`.
    pub fn feature(&self, name: &str) -> Option<&Feature> {
        self.features.iter().find(|f| f.name == name)
    }
}

/// The categorical view of a value: text for strings and booleans, `None` otherwise.
fn category(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn is_categorical(t: ColumnType) -> bool {
    matches!(t, ColumnType::Str | ColumnType::Bool)
}

fn is_numeric(t: ColumnType) -> bool {
    matches!(t, ColumnType::Int | ColumnType::Float)
}

/// Whether a value of type `seen` fits a column of type `want`.
fn type_fits(want: ColumnType, seen: ColumnType) -> bool {
    seen == want
        || seen == ColumnType::Null
        || (want == ColumnType::Float && seen == ColumnType::Int)
}

/// The bin of `x` on `edges` with one open bin below (0) and one above (`edges.len()`):
/// inner bin `k + 1` holds `[edges[k], edges[k+1])`, the last inner bin is closed.
fn open_bin(edges: &[f64], x: f64) -> usize {
    let (Some(&lo), Some(&hi)) = (edges.first(), edges.last()) else {
        return 0;
    };
    if x < lo {
        return 0;
    }
    if x > hi {
        return edges.len();
    }
    let inner = edges.len().saturating_sub(1).max(1);
    // The first edge greater than x, minus one, clamped so that x == hi is in the last bin.
    let k = edges.partition_point(|&e| e <= x).saturating_sub(1);
    k.min(inner - 1) + 1
}

fn equal_edges(min: f64, max: f64, bins: usize) -> Vec<f64> {
    let bins = bins.max(1);
    (0..=bins)
        .map(|k| {
            if k == bins {
                max
            } else {
                min + (max - min) * k as f64 / bins as f64
            }
        })
        .collect()
}

#[derive(Default)]
struct ColAcc {
    ty: Option<ColumnType>,
    missing: u64,
    nan: u64,
    min: f64,
    max: f64,
    numbers: u64,
    cats: HashMap<String, u64>,
    cats_overflow: bool,
}

/// Infers a schema from every record of `t`. A `.ts` source also gets its
/// [`SeriesSchema`] (read from the file's cases).
///
/// Errors: the first corrupt record or unreadable file, as [`crate::Error`].
pub fn infer(t: &Tabular, opts: &InferOptions) -> Result<Schema> {
    let ncol = t.schema.columns.len();
    let mut acc: Vec<ColAcc> = (0..ncol)
        .map(|_| ColAcc {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            ..ColAcc::default()
        })
        .collect();
    let mut records = 0u64;
    for item in t.rows.iter() {
        let row = item?;
        records += 1;
        for (a, v) in acc.iter_mut().zip(&row.values) {
            let vt = v.column_type();
            if vt == ColumnType::Null {
                a.missing += 1;
                continue;
            }
            a.ty = Some(a.ty.map_or(vt, |t| t.join(vt)));
            if matches!(v, Value::Int(_) | Value::Float(_)) {
                match v.as_f64() {
                    Some(x) if x.is_nan() => a.nan += 1,
                    Some(x) => {
                        a.numbers += 1;
                        a.min = a.min.min(x);
                        a.max = a.max.max(x);
                    }
                    None => {}
                }
            }
            if let Some(c) = category(v) {
                if let Some(n) = a.cats.get_mut(&c) {
                    *n += 1;
                } else if a.cats.len() < opts.max_domain {
                    a.cats.insert(c, 1);
                } else {
                    a.cats_overflow = true;
                }
            }
        }
    }
    // Second pass: histograms on the now known ranges.
    let edges: Vec<Option<Vec<f64>>> = acc
        .iter()
        .map(|a| (a.numbers > 0).then(|| equal_edges(a.min, a.max, opts.bins)))
        .collect();
    let mut counts: Vec<Vec<u64>> = edges
        .iter()
        .map(|e| vec![0; e.as_ref().map_or(0, |e| e.len() + 1)])
        .collect();
    if edges.iter().any(Option::is_some) {
        for item in t.rows.iter() {
            let row = item?;
            for ((e, c), v) in edges.iter().zip(counts.iter_mut()).zip(&row.values) {
                if let (Some(e), Some(x)) = (e, num(v)) {
                    if let Some(slot) = c.get_mut(open_bin(e, x)) {
                        *slot += 1;
                    }
                }
            }
        }
    }
    let features = t
        .schema
        .columns
        .iter()
        .zip(acc)
        .zip(edges.into_iter().zip(counts))
        .map(|((col, a), (e, c))| {
            // The type observed in the values; the reader's declared type if none was seen.
            let ty = a.ty.unwrap_or(col.ty);
            let numeric = match e {
                Some(edges) if is_numeric(ty) => Some(NumericDomain {
                    min: a.min,
                    max: a.max,
                    // Inner bins only: the open bins are empty on the training data.
                    counts: c.get(1..edges.len()).unwrap_or(&[]).to_vec(),
                    edges,
                    nan: a.nan,
                }),
                _ => None,
            };
            // Identifier-like columns (file names, ids: fewer than two records per
            // value on average) get no domain, or every new record would be a new category.
            let present = records - a.missing;
            let categorical = is_categorical(ty)
                && !a.cats_overflow
                && !a.cats.is_empty()
                && 2 * a.cats.len() as u64 <= present;
            let domain = categorical.then(|| {
                let mut d: Vec<Category> = a
                    .cats
                    .into_iter()
                    .map(|(value, count)| Category { value, count })
                    .collect();
                d.sort_by(|x, y| x.value.cmp(&y.value));
                d
            });
            Feature {
                name: col.name.clone(),
                ty,
                missing_rate: if records == 0 {
                    0.0
                } else {
                    a.missing as f64 / records as f64
                },
                numeric,
                domain,
            }
        })
        .collect();
    let series = if t.format.starts_with("ts") {
        Some(series_schema(&t.path)?)
    } else {
        None
    };
    Ok(Schema {
        format: SCHEMA_FORMAT.into(),
        version: SCHEMA_VERSION,
        source: t.path.display().to_string(),
        source_format: t.format.to_string(),
        records,
        features,
        series,
    })
}

/// The numeric value of a number (NaN excluded).
fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Int(_) | Value::Float(_) => v.as_f64().filter(|x| !x.is_nan()),
        _ => None,
    }
}

fn series_schema(path: &Path) -> Result<SeriesSchema> {
    let f = TsFile::open(path, BadRecords::Error)?;
    let mut s = SeriesSchema {
        axes: f.header().dimensions.unwrap_or(0),
        min_length: usize::MAX,
        max_length: 0,
        ranges: Vec::new(),
    };
    let mut first = true;
    for case in f.cases().iter() {
        let case = case?;
        if first {
            s.axes = case.dims.len();
            s.ranges = vec![[f64::INFINITY, f64::NEG_INFINITY]; s.axes];
            first = false;
        }
        for (d, r) in case.dims.iter().zip(s.ranges.iter_mut()) {
            s.min_length = s.min_length.min(d.len());
            s.max_length = s.max_length.max(d.len());
            for &x in d.iter().filter(|x| !x.is_nan()) {
                r[0] = r[0].min(x);
                r[1] = r[1].max(x);
            }
        }
    }
    if first {
        s.min_length = 0;
    }
    Ok(s)
}

/// Counts of offending records of one column for one kind: the first record and the
/// first value seen, and the count.
#[derive(Default, Clone)]
struct Offence {
    first: Option<(u64, String)>,
    count: u64,
}

impl Offence {
    fn add(&mut self, record: u64, seen: impl FnOnce() -> String) {
        if self.first.is_none() {
            self.first = Some((record, seen()));
        }
        self.count += 1;
    }
}

/// Per-column tallies of the new data, also the serving side of skew.
#[derive(Default, Clone)]
struct Observed {
    missing: u64,
    type_change: Offence,
    seen_types: Vec<ColumnType>,
    out_of_range: Offence,
    new_category: Offence,
    new_values: Vec<String>,
    cats: BTreeMap<String, u64>,
    bins: Vec<u64>,
}

/// Reads `t` and tallies each schema feature (`None` for schema features `t` lacks).
fn observe(
    schema: &Schema,
    t: &Tabular,
    opts: &ValidateOptions,
) -> Result<(u64, Vec<Option<Observed>>)> {
    let index: Vec<Option<usize>> = schema
        .features
        .iter()
        .map(|f| t.schema.index_of(&f.name))
        .collect();
    let mut obs: Vec<Option<Observed>> = schema
        .features
        .iter()
        .zip(&index)
        .map(|(f, i)| {
            i.map(|_| Observed {
                bins: f
                    .numeric
                    .as_ref()
                    .map_or(Vec::new(), |n| vec![0; n.edges.len() + 1]),
                ..Observed::default()
            })
        })
        .collect();
    let mut records = 0u64;
    for (record, item) in t.rows.iter().enumerate() {
        let row = item?;
        let record = record as u64;
        records += 1;
        for ((f, i), o) in schema.features.iter().zip(&index).zip(obs.iter_mut()) {
            let (Some(i), Some(o)) = (i, o.as_mut()) else {
                continue;
            };
            let raw = row.values.get(*i).unwrap_or(&Value::Null);
            // One word in a numeric column makes a CSV reader type the whole column as
            // text: numbers written as text still count as numbers.
            let parsed = match raw {
                Value::Str(s) if is_numeric(f.ty) => s
                    .parse::<i64>()
                    .map(Value::Int)
                    .or_else(|_| s.parse::<f64>().map(Value::Float))
                    .ok(),
                _ => None,
            };
            let v = parsed.as_ref().unwrap_or(raw);
            let vt = v.column_type();
            if vt == ColumnType::Null {
                o.missing += 1;
                continue;
            }
            if !type_fits(f.ty, vt) {
                o.type_change
                    .add(record, || format!("{vt} value {}", short(v)));
                if !o.seen_types.contains(&vt) {
                    o.seen_types.push(vt);
                }
                continue;
            }
            if let (Some(n), Some(x)) = (&f.numeric, num(v)) {
                let span = n.max - n.min;
                let (lo, hi) = (
                    n.min - opts.range_tolerance * span,
                    n.max + opts.range_tolerance * span,
                );
                if x < lo || x > hi {
                    o.out_of_range.add(record, || short(v));
                }
                let b = open_bin(&n.edges, x);
                if let Some(slot) = o.bins.get_mut(b) {
                    *slot += 1;
                }
            }
            if let (Some(d), Some(c)) = (&f.domain, category(v)) {
                if d.binary_search_by(|k| k.value.as_str().cmp(c.as_str()))
                    .is_err()
                {
                    o.new_category.add(record, || format!("{c:?}"));
                    if o.new_values.len() < 5 && !o.new_values.contains(&c) {
                        o.new_values.push(c.clone());
                    }
                }
                *o.cats.entry(c).or_insert(0) += 1;
            }
        }
    }
    Ok((records, obs))
}

/// A value shortened for a message.
fn short(v: &Value) -> String {
    let s = match v {
        Value::Str(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

fn fmt_num(x: f64) -> String {
    format!("{}", (x * 1e6).round() / 1e6)
}

fn domain_words(d: &[Category]) -> String {
    let names: Vec<&str> = d.iter().take(8).map(|c| c.value.as_str()).collect();
    let more = if d.len() > 8 {
        format!(", … ({} values)", d.len())
    } else {
        String::new()
    };
    format!("one of {}{more}", names.join(", "))
}

/// Checks new data `t` against `schema`; with `training`, also measures
/// training/serving skew of every column present in all three. The anomalies come in
/// the order the module documentation gives; an empty vector means the data conforms.
///
/// Errors: the first corrupt record or unreadable file of either source.
pub fn validate(
    schema: &Schema,
    t: &Tabular,
    training: Option<&Tabular>,
    opts: &ValidateOptions,
) -> Result<Vec<Anomaly>> {
    let file = t.path.clone();
    let at = |record: Option<u64>, count: u64| Location {
        file: file.clone(),
        record,
        count,
    };
    let mut out = Vec::new();
    for f in &schema.features {
        if t.schema.index_of(&f.name).is_none() {
            out.push(Anomaly {
                kind: AnomalyKind::MissingColumn,
                column: f.name.clone(),
                expected: format!("a {} column", f.ty),
                seen: "no such column".into(),
                location: at(None, 0),
            });
        }
    }
    for c in &t.schema.columns {
        if schema.feature(&c.name).is_none() {
            out.push(Anomaly {
                kind: AnomalyKind::UnexpectedColumn,
                column: c.name.clone(),
                expected: "only the schema's columns".into(),
                seen: format!("a {} column", c.ty),
                location: at(None, 0),
            });
        }
    }
    let (records, obs) = observe(schema, t, opts)?;
    // Per-record anomalies, kind by kind.
    for (f, o) in schema.features.iter().zip(&obs) {
        let Some(o) = o else { continue };
        if let Some((r, seen)) = &o.type_change.first {
            let types: Vec<String> = o.seen_types.iter().map(|t| t.to_string()).collect();
            out.push(Anomaly {
                kind: AnomalyKind::TypeChange,
                column: f.name.clone(),
                expected: format!("{} values", f.ty),
                seen: format!("{} (types seen: {})", seen, types.join(", ")),
                location: at(Some(*r), o.type_change.count),
            });
        }
    }
    for (f, o) in schema.features.iter().zip(&obs) {
        let (Some(o), Some(n)) = (o, &f.numeric) else {
            continue;
        };
        if let Some((r, seen)) = &o.out_of_range.first {
            let tol = if opts.range_tolerance > 0.0 {
                format!(" (tolerance {} of the span)", opts.range_tolerance)
            } else {
                String::new()
            };
            out.push(Anomaly {
                kind: AnomalyKind::OutOfRange,
                column: f.name.clone(),
                expected: format!("values in [{}, {}]{tol}", fmt_num(n.min), fmt_num(n.max)),
                seen: seen.clone(),
                location: at(Some(*r), o.out_of_range.count),
            });
        }
    }
    for (f, o) in schema.features.iter().zip(&obs) {
        let (Some(o), Some(d)) = (o, &f.domain) else {
            continue;
        };
        if let Some((r, _)) = &o.new_category.first {
            let vals: Vec<String> = o.new_values.iter().map(|v| format!("{v:?}")).collect();
            out.push(Anomaly {
                kind: AnomalyKind::NewCategory,
                column: f.name.clone(),
                expected: domain_words(d),
                seen: vals.join(", "),
                location: at(Some(*r), o.new_category.count),
            });
        }
    }
    for (f, o) in schema.features.iter().zip(&obs) {
        let Some(o) = o else { continue };
        if records == 0 {
            continue;
        }
        let rate = o.missing as f64 / records as f64;
        let limit = if f.missing_rate == 0.0 {
            0.0
        } else {
            f.missing_rate + opts.missing_rate_tolerance
        };
        if rate > limit {
            out.push(Anomaly {
                kind: AnomalyKind::MissingRate { rate, limit },
                column: f.name.clone(),
                expected: if limit == 0.0 {
                    "always present".into()
                } else {
                    format!("missing rate at most {}", fmt_num(limit))
                },
                seen: format!(
                    "{} of {records} records missing ({})",
                    o.missing,
                    fmt_num(rate)
                ),
                location: at(None, o.missing),
            });
        }
    }
    if let Some(s) = &schema.series {
        if t.format.starts_with("ts") {
            series_anomalies(s, &t.path, opts, &mut out)?;
        }
    }
    if let Some(train) = training {
        out.extend(skew(schema, train, t, &obs, opts)?);
    }
    Ok(out)
}

fn series_anomalies(
    s: &SeriesSchema,
    path: &Path,
    opts: &ValidateOptions,
    out: &mut Vec<Anomaly>,
) -> Result<()> {
    let f = TsFile::open(path, BadRecords::Error)?;
    let mut shape = Offence::default();
    let mut range = vec![Offence::default(); s.axes];
    for (i, case) in f.cases().iter().enumerate() {
        let case = case?;
        let i = i as u64;
        if case.dims.len() != s.axes {
            shape.add(i, || format!("{} axes", case.dims.len()));
        } else if let Some(bad) = case
            .dims
            .iter()
            .map(Vec::len)
            .find(|&l| l < s.min_length || l > s.max_length)
        {
            shape.add(i, || format!("length {bad}"));
        }
        for ((d, r), o) in case.dims.iter().zip(&s.ranges).zip(range.iter_mut()) {
            let span = r[1] - r[0];
            let (lo, hi) = (
                r[0] - opts.range_tolerance * span,
                r[1] + opts.range_tolerance * span,
            );
            if let Some(x) = d
                .iter()
                .copied()
                .find(|x| !x.is_nan() && (*x < lo || *x > hi))
            {
                o.add(i, || fmt_num(x));
            }
        }
    }
    let at = |record: Option<u64>, count: u64| Location {
        file: path.to_path_buf(),
        record,
        count,
    };
    if let Some((r, seen)) = shape.first {
        out.push(Anomaly {
            kind: AnomalyKind::SeriesShape,
            column: "series".into(),
            expected: format!(
                "{} axes, length {}",
                s.axes,
                if s.min_length == s.max_length {
                    s.min_length.to_string()
                } else {
                    format!("{}..={}", s.min_length, s.max_length)
                }
            ),
            seen,
            location: at(Some(r), shape.count),
        });
    }
    for (axis, (o, r)) in range.into_iter().zip(&s.ranges).enumerate() {
        if let Some((rec, seen)) = o.first {
            out.push(Anomaly {
                kind: AnomalyKind::OutOfRange,
                column: format!("axis {axis}"),
                expected: format!("values in [{}, {}]", fmt_num(r[0]), fmt_num(r[1])),
                seen,
                location: at(Some(rec), o.count),
            });
        }
    }
    Ok(())
}

/// L-infinity distance of two count vectors' shares over the same keys (0 when either
/// side is empty).
pub fn linf_distance(p: &[u64], q: &[u64]) -> f64 {
    let (np, nq) = (p.iter().sum::<u64>() as f64, q.iter().sum::<u64>() as f64);
    if np == 0.0 || nq == 0.0 {
        return 0.0;
    }
    p.iter()
        .zip(q)
        .map(|(&a, &b)| (a as f64 / np - b as f64 / nq).abs())
        .fold(0.0, f64::max)
}

/// Jensen–Shannon divergence (base 2, in `[0, 1]`) of two histograms on the same bins,
/// each normalised to shares (0 when either side is empty).
pub fn js_divergence(p: &[u64], q: &[u64]) -> f64 {
    let (np, nq) = (p.iter().sum::<u64>() as f64, q.iter().sum::<u64>() as f64);
    if np == 0.0 || nq == 0.0 {
        return 0.0;
    }
    let kl = |a: f64, m: f64| if a > 0.0 { a * (a / m).log2() } else { 0.0 };
    let js: f64 = p
        .iter()
        .zip(q)
        .map(|(&a, &b)| {
            let (a, b) = (a as f64 / np, b as f64 / nq);
            let m = 0.5 * (a + b);
            0.5 * kl(a, m) + 0.5 * kl(b, m)
        })
        .sum();
    js.clamp(0.0, 1.0)
}

/// The skew measure of every column the schema, the training and the serving data share:
/// `(column, measure, value)`, `measure` being `linf` or `jensen_shannon`. Columns of
/// neither kind are left out.
///
/// Errors: the first corrupt record of either source.
pub fn skew_measures(
    schema: &Schema,
    training: &Tabular,
    serving: &Tabular,
) -> Result<Vec<(String, &'static str, f64)>> {
    let opts = ValidateOptions::default();
    let (_, s_obs) = observe(schema, serving, &opts)?;
    let (_, t_obs) = observe(schema, training, &opts)?;
    Ok(measures(schema, &t_obs, &s_obs))
}

fn measures(
    schema: &Schema,
    t_obs: &[Option<Observed>],
    s_obs: &[Option<Observed>],
) -> Vec<(String, &'static str, f64)> {
    let mut out = Vec::new();
    for ((f, t), s) in schema.features.iter().zip(t_obs).zip(s_obs) {
        let (Some(t), Some(s)) = (t, s) else { continue };
        if f.domain.is_some() {
            let keys: std::collections::BTreeSet<&String> =
                t.cats.keys().chain(s.cats.keys()).collect();
            let p: Vec<u64> = keys
                .iter()
                .map(|k| t.cats.get(*k).copied().unwrap_or(0))
                .collect();
            let q: Vec<u64> = keys
                .iter()
                .map(|k| s.cats.get(*k).copied().unwrap_or(0))
                .collect();
            out.push((f.name.clone(), "linf", linf_distance(&p, &q)));
        } else if f.numeric.is_some() {
            out.push((
                f.name.clone(),
                "jensen_shannon",
                js_divergence(&t.bins, &s.bins),
            ));
        }
    }
    out
}

fn skew(
    schema: &Schema,
    training: &Tabular,
    serving: &Tabular,
    s_obs: &[Option<Observed>],
    opts: &ValidateOptions,
) -> Result<Vec<Anomaly>> {
    let (_, t_obs) = observe(schema, training, opts)?;
    let mut out = Vec::new();
    for (column, measure, value) in measures(schema, &t_obs, s_obs) {
        let threshold = if measure == "linf" {
            opts.linf_threshold
        } else {
            opts.js_threshold
        };
        if value > threshold {
            let what = if measure == "linf" {
                "L-infinity distance of category shares"
            } else {
                "Jensen-Shannon divergence of histograms"
            };
            out.push(Anomaly {
                kind: AnomalyKind::Skew {
                    measure: measure.to_string(),
                    value,
                    threshold,
                },
                expected: format!("{what} to {} at most {threshold}", training.path.display()),
                seen: fmt_num(value),
                column,
                location: Location {
                    file: serving.path.clone(),
                    record: None,
                    count: 0,
                },
            });
        }
    }
    Ok(out)
}

/// Opens `path` as [`Tabular::open`] does, strictly (a corrupt record is an error), with
/// `infer_rows` records for schema discovery.
pub fn open(path: &Path, infer_rows: usize) -> Result<Tabular> {
    Tabular::open(path, infer_rows, BadRecords::Error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_bins_put_edges_and_outliers_in_place() {
        let e = [0.0, 1.0, 2.0];
        assert_eq!(open_bin(&e, -0.1), 0);
        assert_eq!(open_bin(&e, 0.0), 1);
        assert_eq!(open_bin(&e, 0.99), 1);
        assert_eq!(open_bin(&e, 1.0), 2);
        assert_eq!(open_bin(&e, 2.0), 2);
        assert_eq!(open_bin(&e, 2.5), 3);
        // A constant column: one bin of zero width.
        assert_eq!(open_bin(&[3.0, 3.0], 3.0), 1);
    }

    #[test]
    fn distances_of_equal_and_disjoint_distributions() {
        assert_eq!(js_divergence(&[1, 2, 3], &[2, 4, 6]), 0.0);
        assert!((js_divergence(&[1, 0], &[0, 1]) - 1.0).abs() < 1e-12);
        assert_eq!(linf_distance(&[1, 1], &[1, 1]), 0.0);
        assert!((linf_distance(&[1, 0], &[0, 1]) - 1.0).abs() < 1e-12);
        assert_eq!(js_divergence(&[], &[]), 0.0);
    }
}
