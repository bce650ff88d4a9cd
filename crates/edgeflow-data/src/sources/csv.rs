//! CSV: typed through serde, or as [`Row`]s with an inferred schema.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::text::{max_record_bytes, LineCap};
use super::{file_source, open_text, BadRecords, Counted};
use crate::dataset::{Dataset, Stream};
use crate::error::{Error, Result};
use crate::value::{Column, ColumnType, Row, Schema, Value};

/// How to read a CSV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvOptions {
    /// Field delimiter (default `,`).
    pub delimiter: u8,
    /// Whether the first line names the columns (default `true`); without it columns
    /// are named `column_0`, `column_1`, ….
    pub has_header: bool,
    /// Rows read to infer the schema (default 1000).
    pub infer_rows: usize,
    /// What to do with a malformed row.
    pub policy: BadRecords,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: b',',
            has_header: true,
            infer_rows: 1000,
            policy: BadRecords::Error,
        }
    }
}

type Input = LineCap<BufReader<Counted<File>>>;
type Reader = csv::Reader<Input>;

/// The text of a CSV file, past a BOM, with its lines capped at [`max_record_bytes`].
fn open_input(path: &Path, c: &Arc<crate::stats::Counters>) -> Result<Input> {
    Ok(LineCap::new(open_text(path, c)?, max_record_bytes()))
}

fn reader(path: &Path, o: &CsvOptions, c: &Arc<crate::stats::Counters>) -> Result<Reader> {
    Ok(csv::ReaderBuilder::new()
        .delimiter(o.delimiter)
        .has_headers(o.has_header)
        .flexible(false)
        .from_reader(open_input(path, c)?))
}

/// The error for a CSV error at record `index` of `path`.
fn csv_error(path: &Path, index: u64, e: &csv::Error) -> Error {
    let line = e.position().map(|p| p.line());
    let reason = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} fields where the header has {expected_len}"),
        csv::ErrorKind::Utf8 { err, .. } => format!("field {} is not UTF-8", err.field()),
        csv::ErrorKind::Deserialize { err, .. } => match err.field() {
            Some(f) => format!("field {f}: {}", err.kind()),
            None => err.kind().to_string(),
        },
        _ => e.to_string(),
    };
    match line {
        Some(l) => Error::line(path, index, l, reason),
        None => Error::record(path, index, reason),
    }
}

/// `err` with its line corrected past blank lines (see [`LineCap::record_line`]).
fn fix_line(err: Error, rdr: &mut Reader) -> Error {
    match err {
        Error::Record {
            path,
            record,
            line: Some(l),
            reason,
        } => Error::Record {
            path,
            record,
            line: Some(rdr.get_mut().record_line(l)),
            reason,
        },
        other => other,
    }
}

fn is_io(e: &csv::Error) -> bool {
    matches!(e.kind(), csv::ErrorKind::Io(_))
}

/// Turns one CSV record of a file into an element.
type Decode<T> = Arc<dyn Fn(&csv::ByteRecord, &Path, u64) -> Result<T> + Send + Sync>;

struct CsvStream<T> {
    rdr: Reader,
    path: PathBuf,
    rec: csv::ByteRecord,
    index: u64,
    done: bool,
    decode: Decode<T>,
}

impl<T> Stream<T> for CsvStream<T> {
    fn next(&mut self) -> Option<Result<T>> {
        if self.done {
            return None;
        }
        let idx = self.index;
        match self.rdr.read_byte_record(&mut self.rec) {
            Ok(false) => {
                self.done = true;
                None
            }
            Ok(true) => {
                self.index += 1;
                if let Some(mut pos) = self.rec.position().cloned() {
                    pos.set_line(self.rdr.get_mut().record_line(pos.line()));
                    self.rec.set_position(Some(pos));
                }
                Some((self.decode)(&self.rec, &self.path, idx))
            }
            Err(e) if is_io(&e) => {
                // The file cannot be read on (a read error, or a line over the record
                // cap): a file-level error, never skipped as one bad record.
                self.done = true;
                let line = self.rdr.position().line();
                Some(Err(Error::file(
                    &self.path,
                    format!("record {idx} (line {line}): {e}"),
                )))
            }
            Err(e) => {
                self.index += 1;
                Some(Err(fix_line(csv_error(&self.path, idx, &e), &mut self.rdr)))
            }
        }
    }
}

/// The rows of a CSV file deserialized into `T` (a struct with named fields when the
/// file has a header, a tuple otherwise). A row that does not fit `T` or has the wrong
/// number of fields is a record error naming the file, record, line and field.
pub fn csv<T: DeserializeOwned + Send + 'static>(
    path: impl Into<PathBuf>,
    opts: CsvOptions,
) -> Dataset<T> {
    file_source("csv", path.into(), opts.policy, move |p, c| {
        let mut rdr = reader(p, &opts, c)?;
        let headers = if opts.has_header {
            Some(rdr.byte_headers().map_err(|e| csv_error(p, 0, &e))?.clone())
        } else {
            None
        };
        let decode = move |r: &csv::ByteRecord, p: &Path, i: u64| -> Result<T> {
            r.deserialize(headers.as_ref()).map_err(|e| {
                let mut err = csv_error(p, i, &e);
                if let (Error::Record { line, .. }, Some(pos)) = (&mut err, r.position()) {
                    *line = Some(pos.line());
                }
                err
            })
        };
        Ok(CsvStream {
            rdr,
            path: p.to_path_buf(),
            rec: csv::ByteRecord::new(),
            index: 0,
            done: false,
            decode: Arc::new(decode),
        })
    })
}

fn infer_cell(s: &str) -> ColumnType {
    if s.is_empty() {
        ColumnType::Null
    } else if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") {
        ColumnType::Bool
    } else if s.parse::<i64>().is_ok() {
        ColumnType::Int
    } else if s.parse::<f64>().is_ok() {
        ColumnType::Float
    } else {
        ColumnType::Str
    }
}

fn parse_cell(s: &str, ty: ColumnType) -> std::result::Result<Value, String> {
    if s.is_empty() {
        return Ok(Value::Null);
    }
    let bad = |what: &str| format!("{s:?} is not {what}");
    Ok(match ty {
        ColumnType::Bool => {
            if s.eq_ignore_ascii_case("true") {
                Value::Bool(true)
            } else if s.eq_ignore_ascii_case("false") {
                Value::Bool(false)
            } else {
                return Err(bad("a boolean"));
            }
        }
        ColumnType::Int => Value::Int(s.parse().map_err(|_| bad("an integer"))?),
        ColumnType::Float => Value::Float(s.parse().map_err(|_| bad("a number"))?),
        _ => Value::Str(s.to_string()),
    })
}

/// A CSV file with its schema, inferred from its first rows.
#[derive(Debug, Clone)]
pub struct CsvTable {
    path: PathBuf,
    opts: CsvOptions,
    schema: Arc<Schema>,
}

impl CsvTable {
    /// Reads the header and the first `opts.infer_rows` rows of `path` to infer each
    /// column's type: empty cells are missing values; a column is `bool` if every
    /// present cell is `true`/`false`, `int` if every one parses as `i64`, `float` if
    /// every one parses as `f64`, else `string` (also when no cell is present).
    /// Malformed rows met during inference are skipped there; they are reported when
    /// the rows are read.
    ///
    /// Errors: the file cannot be read, or its header is malformed.
    pub fn open(path: impl Into<PathBuf>, opts: CsvOptions) -> Result<Self> {
        let path = path.into();
        let counters = Arc::default();
        let mut rdr = reader(&path, &opts, &counters)?;
        let mut names: Vec<String> = if opts.has_header {
            rdr.headers()
                .map_err(|e| csv_error(&path, 0, &e))?
                .iter()
                .map(str::to_string)
                .collect()
        } else {
            Vec::new()
        };
        let mut types = vec![ColumnType::Null; names.len()];
        let mut nullable = vec![false; names.len()];
        let mut rec = csv::StringRecord::new();
        let mut seen = 0;
        while seen < opts.infer_rows {
            match rdr.read_record(&mut rec) {
                Ok(false) => break,
                Ok(true) => {
                    seen += 1;
                    if names.is_empty() && !opts.has_header {
                        names = (0..rec.len()).map(|i| format!("column_{i}")).collect();
                        types = vec![ColumnType::Null; rec.len()];
                        nullable = vec![false; rec.len()];
                    }
                    for (i, cell) in rec.iter().enumerate().take(types.len()) {
                        let t = infer_cell(cell);
                        nullable[i] |= t == ColumnType::Null;
                        types[i] = types[i].join(t);
                    }
                }
                Err(e) if is_io(&e) => return Err(csv_error(&path, seen as u64, &e)),
                Err(_) => seen += 1,
            }
        }
        let columns = names
            .into_iter()
            .zip(types)
            .zip(nullable)
            .map(|((name, ty), nullable)| Column {
                name,
                ty: if ty == ColumnType::Null {
                    ColumnType::Str
                } else {
                    ty
                },
                nullable,
            })
            .collect();
        Ok(CsvTable {
            path,
            opts,
            schema: Arc::new(Schema { columns }),
        })
    }

    /// The inferred schema.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The rows, typed by the schema. A cell that does not parse as its column's type
    /// (possible when the schema was inferred from the first rows only) is a record
    /// error naming the column and the value, never a silent conversion.
    pub fn rows(&self) -> Dataset<Row> {
        let schema = Arc::clone(&self.schema);
        let opts = self.opts;
        file_source("csv", self.path.clone(), opts.policy, move |p, c| {
            let mut rdr = reader(p, &opts, c)?;
            if opts.has_header {
                rdr.byte_headers().map_err(|e| csv_error(p, 0, &e))?;
            }
            let schema = Arc::clone(&schema);
            let decode = move |r: &csv::ByteRecord, p: &Path, i: u64| -> Result<Row> {
                let line = r.position().map(|x| x.line()).unwrap_or(0);
                if r.len() != schema.columns.len() {
                    return Err(Error::line(
                        p,
                        i,
                        line,
                        format!(
                            "{} fields where the schema has {}",
                            r.len(),
                            schema.columns.len()
                        ),
                    ));
                }
                let mut values = Vec::with_capacity(r.len());
                for (cell, col) in r.iter().zip(&schema.columns) {
                    let s = std::str::from_utf8(cell).map_err(|_| {
                        Error::line(p, i, line, format!("column {:?} is not UTF-8", col.name))
                    })?;
                    let v = parse_cell(s, col.ty).map_err(|m| {
                        Error::line(
                            p,
                            i,
                            line,
                            format!(
                                "column {:?} ({}): {m} (schema inferred from the first {} rows)",
                                col.name, col.ty, opts.infer_rows
                            ),
                        )
                    })?;
                    values.push(v);
                }
                Ok(Row {
                    schema: Arc::clone(&schema),
                    values,
                })
            };
            Ok(CsvStream {
                rdr,
                path: p.to_path_buf(),
                rec: csv::ByteRecord::new(),
                index: 0,
                done: false,
                decode: Arc::new(decode),
            })
        })
    }
}

/// Whether the first record of a CSV file looks like a header: it does unless every one
/// of its fields is a number (the rule [`read_numeric_csv`] uses too). An empty file has
/// no header.
///
/// Errors: the file cannot be read; it is UTF-16/32 text.
pub fn sniff_header(path: &Path, delimiter: u8) -> Result<bool> {
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(open_input(path, &Arc::default())?);
    let mut rec = csv::StringRecord::new();
    match rdr.read_record(&mut rec) {
        Ok(true) => Ok(rec.iter().any(|f| f.parse::<f64>().is_err())),
        Ok(false) => Ok(false),
        // A malformed first record: leave it to the reader to report.
        Err(e) if !is_io(&e) => Ok(true),
        Err(e) => Err(csv_error(path, 0, &e)),
    }
}

/// A CSV file of numbers, read whole (what `edgeflow features` reads for signal and
/// vector pipelines).
#[derive(Debug, Clone, PartialEq)]
pub struct NumericCsv {
    /// The header's column names, if the file has one.
    pub header: Option<Vec<String>>,
    /// The rows, all of the same length.
    pub rows: Vec<Vec<f32>>,
}

/// Reads a CSV file of numbers: fields are trimmed of spaces, blank lines are skipped, a
/// UTF-8 byte-order mark is dropped (a UTF-16 one is refused). The first record is the
/// header exactly when one of its fields is not a number (so a headerless file keeps
/// every row, whatever tool wrote it).
///
/// Errors: the file cannot be read or is not UTF-8 ([`Error::Io`], [`Error::File`]); a
/// row with a different number of fields or a field that is not a number
/// ([`Error::Record`] naming the record, line and column); no row of numbers.
pub fn read_numeric_csv(path: &Path, delimiter: u8) -> Result<NumericCsv> {
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(open_input(path, &Arc::default())?);
    let mut header = None;
    let mut rows: Vec<Vec<f32>> = Vec::new();
    let mut rec = csv::StringRecord::new();
    let mut index = 0u64;
    loop {
        match rdr.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(fix_line(csv_error(path, index, &e), &mut rdr)),
        }
        let line = rec
            .position()
            .map_or(0, |p| rdr.get_mut().record_line(p.line()));
        let parsed: Vec<Option<f32>> = rec.iter().map(|f| f.parse::<f32>().ok()).collect();
        if index == 0 && header.is_none() && parsed.iter().any(Option::is_none) {
            header = Some(rec.iter().map(str::to_string).collect());
            continue;
        }
        let want = rows
            .first()
            .map(Vec::len)
            .or(header.as_ref().map(Vec::len))
            .unwrap_or(rec.len());
        if rec.len() != want {
            return Err(Error::line(
                path,
                index,
                line,
                format!("{} fields where the first row has {want}", rec.len()),
            ));
        }
        let mut row = Vec::with_capacity(rec.len());
        for (col, (v, f)) in parsed.into_iter().zip(rec.iter()).enumerate() {
            match v {
                Some(x) => row.push(x),
                None => {
                    return Err(Error::line(
                        path,
                        index,
                        line,
                        format!("column {col}: {f:?} is not a number"),
                    ))
                }
            }
        }
        rows.push(row);
        index += 1;
    }
    if rows.is_empty() {
        return Err(Error::file(path, "no rows of numbers"));
    }
    Ok(NumericCsv { header, rows })
}

/// A CSV file of numbers with one label column, read whole (what `edgeflow features
/// --label COLUMN` reads for vector pipelines: one example per row).
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledCsv {
    /// The header's column names without the label column, if the file has a header.
    pub header: Option<Vec<String>>,
    /// The feature values of each row (every column but the label), all of one length.
    pub rows: Vec<Vec<f32>>,
    /// The label of each row, as written (trimmed of spaces).
    pub labels: Vec<String>,
}

/// Reads a CSV file of numbers with one label column, by the rules of
/// [`read_numeric_csv`] (trimmed fields, blank lines skipped, BOM dropped, the first
/// record is the header exactly when one of its fields other than the label is not a
/// number). `label` names the column: a header name, or else a 0-based column index.
/// The label cell may hold any text; the other cells must be numbers.
///
/// Errors: as [`read_numeric_csv`]; `label` names no column (the message lists the
/// header's names); a row has an empty label cell ([`Error::Record`] naming record and
/// line).
pub fn read_labelled_csv(path: &Path, delimiter: u8, label: &str) -> Result<LabelledCsv> {
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(open_input(path, &Arc::default())?);
    let mut rec = csv::StringRecord::new();
    let mut header: Option<Vec<String>> = None;
    let mut col: Option<usize> = None;
    let mut out = LabelledCsv {
        header: None,
        rows: Vec::new(),
        labels: Vec::new(),
    };
    let mut index = 0u64;
    loop {
        match rdr.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(fix_line(csv_error(path, index, &e), &mut rdr)),
        }
        let line = rec
            .position()
            .map_or(0, |p| rdr.get_mut().record_line(p.line()));
        if col.is_none() {
            // First record: the header if it names the label column and is not all
            // numbers, or if any field (the label's excepted, when given by index) is
            // not a number.
            let all_numbers = rec.iter().all(|f| f.parse::<f32>().is_ok());
            if let Some(c) = rec.iter().position(|f| f == label).filter(|_| !all_numbers) {
                header = Some(rec.iter().map(str::to_string).collect());
                col = Some(c);
                continue;
            }
            let c = match label.parse::<usize>() {
                Ok(c) if c < rec.len() => c,
                _ => {
                    let names: Vec<&str> = rec.iter().collect();
                    return Err(Error::file(
                        path,
                        format!(
                            "no column {label:?} (the first row has {names:?}; give a header name or a 0-based column index)"
                        ),
                    ));
                }
            };
            col = Some(c);
            let text = rec
                .iter()
                .enumerate()
                .any(|(i, f)| i != c && f.parse::<f32>().is_err());
            if text {
                header = Some(rec.iter().map(str::to_string).collect());
                continue;
            }
        }
        let c = col.unwrap_or(0);
        let want = header
            .as_ref()
            .map(Vec::len)
            .or(out.rows.first().map(|r| r.len() + 1))
            .unwrap_or(rec.len());
        if rec.len() != want {
            return Err(Error::line(
                path,
                index,
                line,
                format!("{} fields where the first row has {want}", rec.len()),
            ));
        }
        let mut row = Vec::with_capacity(rec.len().saturating_sub(1));
        for (i, f) in rec.iter().enumerate() {
            if i == c {
                if f.is_empty() {
                    return Err(Error::line(
                        path,
                        index,
                        line,
                        format!("column {i} (the label) is empty"),
                    ));
                }
                out.labels.push(f.to_string());
                continue;
            }
            match f.parse::<f32>() {
                Ok(x) => row.push(x),
                Err(_) => {
                    return Err(Error::line(
                        path,
                        index,
                        line,
                        format!("column {i}: {f:?} is not a number"),
                    ))
                }
            }
        }
        out.rows.push(row);
        index += 1;
    }
    if out.rows.is_empty() {
        return Err(Error::file(path, "no rows of numbers"));
    }
    out.header = header.map(|mut h| {
        if let Some(c) = col {
            if c < h.len() {
                h.remove(c);
            }
        }
        h
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Rec {
        id: u32,
        x: f32,
        name: String,
    }

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn labelled_csv_by_name_and_by_index() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "l.csv", "a,class,b\n1,yes,2\n3, no ,4\n");
        let t = read_labelled_csv(&p, b',', "class").unwrap();
        assert_eq!(t.header, Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(t.rows, vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
        assert_eq!(t.labels, vec!["yes", "no"]);
        // Headerless, label by index: numeric labels stay text.
        let p = write(&dir, "n.csv", "1,2,0\n3,4,1\n");
        // ("2" is also a value of the first row: still data, not a header.)
        let t = read_labelled_csv(&p, b',', "2").unwrap();
        assert_eq!(t.header, None);
        assert_eq!(t.rows, vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
        assert_eq!(t.labels, vec!["0", "1"]);
        // A header without the name: refused, naming the columns.
        let e = read_labelled_csv(&dir.path().join("l.csv"), b',', "target")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no column \"target\"") && e.contains("\"class\""),
            "{e}"
        );
        // An empty label and a bad number name record and line.
        let p = write(&dir, "e.csv", "a,y\n1,x\n2,\n");
        let e = read_labelled_csv(&p, b',', "y").unwrap_err().to_string();
        assert!(
            e.contains("record 1 (line 3)") && e.contains("label"),
            "{e}"
        );
        let p = write(&dir, "b.csv", "a,y\n1,x\nq,z\n");
        let e = read_labelled_csv(&p, b',', "y").unwrap_err().to_string();
        assert!(
            e.contains("record 1 (line 3)") && e.contains("\"q\""),
            "{e}"
        );
    }

    #[test]
    fn typed_rows_and_located_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "a.csv",
            "id,x,name\n1,0.5,a\n2,oops,b\n3,1.5\n4,2.5,d\n",
        );
        let items: Vec<_> = csv::<Rec>(&p, CsvOptions::default()).iter().collect();
        assert_eq!(items.len(), 4);
        assert_eq!(
            items[0].as_ref().unwrap(),
            &Rec {
                id: 1,
                x: 0.5,
                name: "a".into()
            }
        );
        let e1 = items[1].as_ref().unwrap_err().to_string();
        assert!(e1.contains("a.csv: record 1 (line 3): field 1"), "{e1}");
        let e2 = items[2].as_ref().unwrap_err().to_string();
        assert!(
            e2.contains("a.csv: record 2 (line 4): 2 fields where the header has 3"),
            "{e2}"
        );
        assert_eq!(items[3].as_ref().unwrap().id, 4);
        let opts = CsvOptions {
            policy: BadRecords::Skip,
            ..CsvOptions::default()
        };
        let d = csv::<Rec>(&p, opts);
        assert_eq!(d.collect_vec().unwrap().len(), 2);
        assert_eq!(d.stats().ops[0].values.skipped, 2);
    }

    #[test]
    fn schema_inference_and_typed_cells() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "b.csv",
            "i,f,b,s,e\n1,2,true,x,\n-3,2.5,False,y,\n,1e3,true,,\n",
        );
        let t = CsvTable::open(&p, CsvOptions::default()).unwrap();
        let cols: Vec<(String, ColumnType, bool)> = t
            .schema()
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.ty, c.nullable))
            .collect();
        assert_eq!(
            cols,
            [
                ("i".into(), ColumnType::Int, true),
                ("f".into(), ColumnType::Float, false),
                ("b".into(), ColumnType::Bool, false),
                ("s".into(), ColumnType::Str, true),
                ("e".into(), ColumnType::Str, true),
            ]
        );
        let rows = t.rows().collect_vec().unwrap();
        assert_eq!(rows[1].values[0], Value::Int(-3));
        assert_eq!(rows[0].get("f"), Some(&Value::Float(2.0)));
        assert_eq!(rows[1].get("b"), Some(&Value::Bool(false)));
        assert_eq!(rows[2].values[0], Value::Null);
    }

    #[test]
    fn a_late_cell_of_the_wrong_type_is_an_error_not_a_conversion() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "c.csv", "n\n1\n2\nthree\n");
        let opts = CsvOptions {
            infer_rows: 2,
            ..CsvOptions::default()
        };
        let t = CsvTable::open(&p, opts).unwrap();
        assert_eq!(t.schema().columns[0].ty, ColumnType::Int);
        let items: Vec<_> = t.rows().iter().collect();
        let e = items[2].as_ref().unwrap_err().to_string();
        assert!(
            e.contains("c.csv: record 2 (line 4): column \"n\" (int): \"three\" is not an integer"),
            "{e}"
        );
    }

    #[test]
    fn numeric_csv_header_detection_and_byte_order_marks() {
        let dir = tempfile::tempdir().unwrap();
        let bom = write(&dir, "bom.csv", "\u{feff}0.25\n0.5\n0.75\n1.0\n");
        let n = read_numeric_csv(&bom, b',').unwrap();
        assert_eq!(n.header, None);
        assert_eq!(n.rows, [[0.25], [0.5], [0.75], [1.0]]);
        let h = write(&dir, "h.csv", "\u{feff}x,y\n1, 2\n\n3,4\n");
        let n = read_numeric_csv(&h, b',').unwrap();
        assert_eq!(n.header, Some(vec!["x".to_string(), "y".to_string()]));
        assert_eq!(n.rows, [[1.0, 2.0], [3.0, 4.0]]);
        let bad = write(&dir, "bad.csv", "1,2\n3,x\n");
        let e = read_numeric_csv(&bad, b',').unwrap_err().to_string();
        assert!(
            e.contains("bad.csv: record 1 (line 2): column 1: \"x\""),
            "{e}"
        );
        let p = dir.path().join("u16.csv");
        std::fs::write(&p, b"\xFF\xFE1\x00\n\x00").unwrap();
        let e = read_numeric_csv(&p, b',').unwrap_err().to_string();
        assert!(e.contains("u16.csv") && e.contains("UTF-16LE"), "{e}");
        // The table reader sees the BOM file's first row as data too.
        let opts = CsvOptions {
            has_header: false,
            ..CsvOptions::default()
        };
        assert_eq!(CsvTable::open(&bom, opts).unwrap().rows().count(), 4);
        let t = CsvTable::open(&h, CsvOptions::default()).unwrap();
        assert_eq!(t.schema().names(), ["x", "y"]);
    }

    #[test]
    fn headerless_files_get_numbered_columns() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "d.csv", "1;a\n2;b\n");
        let opts = CsvOptions {
            has_header: false,
            delimiter: b';',
            ..CsvOptions::default()
        };
        let t = CsvTable::open(&p, opts).unwrap();
        assert_eq!(t.schema().names(), ["column_0", "column_1"]);
        assert_eq!(t.rows().count(), 2);
        let typed = csv::<(i32, String)>(&p, opts).collect_vec().unwrap();
        assert_eq!(typed, [(1, "a".to_string()), (2, "b".to_string())]);
    }
}
