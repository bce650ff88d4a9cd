//! JSON Lines: one JSON value per line, typed through serde or as [`Row`]s.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::text::{max_record_bytes, too_long, LineReader, ReadLine};
use super::{file_source, open_text, BadRecords, Counted};
use crate::dataset::{Dataset, Stream};
use crate::error::{Error, Result};
use crate::value::{Column, ColumnType, Row, Schema, Value};

type Decode<T> = Arc<dyn Fn(&str, &Path, u64) -> Result<T> + Send + Sync>;

struct JsonlStream<T> {
    r: LineReader<std::io::BufReader<Counted<std::fs::File>>>,
    path: PathBuf,
    index: u64,
    buf: Vec<u8>,
    done: bool,
    decode: Decode<T>,
}

impl<T> Stream<T> for JsonlStream<T> {
    fn next(&mut self) -> Option<Result<T>> {
        loop {
            if self.done {
                return None;
            }
            let got = match self.r.read_line(&mut self.buf) {
                Ok(g) => g,
                Err(e) => {
                    self.done = true;
                    return Some(Err(Error::io(&self.path, e)));
                }
            };
            let line = self.r.line;
            let text = match got {
                ReadLine::Eof => {
                    self.done = true;
                    return None;
                }
                ReadLine::TooLong(n) => {
                    let i = self.index;
                    self.index += 1;
                    return Some(Err(Error::line(
                        &self.path,
                        i,
                        line,
                        too_long(n, self.r.max()),
                    )));
                }
                ReadLine::Line => match std::str::from_utf8(&self.buf) {
                    Ok(t) => t.trim(),
                    Err(e) => {
                        let i = self.index;
                        self.index += 1;
                        return Some(Err(Error::line(
                            &self.path,
                            i,
                            line,
                            format!("not UTF-8: {e}"),
                        )));
                    }
                },
            };
            if text.is_empty() {
                continue;
            }
            let i = self.index;
            self.index += 1;
            return Some((self.decode)(text, &self.path, i).map_err(|e| match e {
                Error::Record {
                    path,
                    record,
                    reason,
                    ..
                } => Error::Record {
                    path,
                    record,
                    line: Some(line),
                    reason,
                },
                other => other,
            }));
        }
    }
}

fn open_stream<T>(
    p: &Path,
    c: &Arc<crate::stats::Counters>,
    decode: Decode<T>,
) -> Result<JsonlStream<T>> {
    Ok(JsonlStream {
        r: LineReader::new(open_text(p, c)?, max_record_bytes()),
        path: p.to_path_buf(),
        index: 0,
        buf: Vec::new(),
        done: false,
        decode,
    })
}

/// The records of a JSON Lines file deserialized into `T`. Lines end as in
/// [`super::text`] (`\n`, `\r\n`, lone `\r`); blank lines are skipped and are not
/// records. A line that is not valid JSON, does not fit `T`, is not UTF-8 or is longer
/// than [`max_record_bytes`] is a record error naming the file, the record (0-based,
/// blank lines not counted) and the 1-based line; reading goes on with the next line.
pub fn jsonl<T: DeserializeOwned + Send + 'static>(
    path: impl Into<PathBuf>,
    policy: BadRecords,
) -> Dataset<T> {
    file_source("jsonl", path.into(), policy, |p, c| {
        let decode: Decode<T> = Arc::new(|s: &str, p: &Path, i: u64| {
            serde_json::from_str(s).map_err(|e| Error::record(p, i, e.to_string()))
        });
        open_stream(p, c, decode)
    })
}

/// A JSON value as a [`Value`]: numbers that fit `i64` become `Int`, other numbers
/// `Float`; arrays become `List`; objects become `Str` holding their JSON text.
pub fn json_to_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::Str(s.clone()),
        serde_json::Value::Array(a) => Value::List(a.iter().map(json_to_value).collect()),
        serde_json::Value::Object(_) => Value::Str(v.to_string()),
    }
}

/// A JSON Lines file of objects with its schema, inferred from its first records.
#[derive(Debug, Clone)]
pub struct JsonlTable {
    path: PathBuf,
    policy: BadRecords,
    infer_rows: usize,
    schema: Arc<Schema>,
}

impl JsonlTable {
    /// Reads the first `infer_rows` objects of `path`: the columns are their keys in
    /// order of first appearance; a key missing from some object makes its column
    /// nullable; types join as in [`ColumnType::join`]. Lines that do not parse are
    /// left to [`JsonlTable::rows`] to report.
    ///
    /// Errors: the file cannot be read.
    pub fn open(path: impl Into<PathBuf>, infer_rows: usize, policy: BadRecords) -> Result<Self> {
        let path = path.into();
        let mut r = LineReader::new(open_text(&path, &Arc::default())?, max_record_bytes());
        let mut cols: Vec<Column> = Vec::new();
        let mut seen = 0usize;
        let mut buf = Vec::new();
        while seen < infer_rows {
            match r.read_line(&mut buf).map_err(|e| Error::io(&path, e))? {
                ReadLine::Eof => break,
                ReadLine::TooLong(_) => continue,
                ReadLine::Line => {}
            }
            let Ok(serde_json::Value::Object(m)) =
                serde_json::from_slice::<serde_json::Value>(&buf)
            else {
                continue;
            };
            for c in cols.iter_mut() {
                if !m.contains_key(&c.name) {
                    c.nullable = true;
                }
            }
            for (k, v) in &m {
                let t = json_to_value(v).column_type();
                match cols.iter_mut().find(|c| &c.name == k) {
                    Some(c) => {
                        c.ty = c.ty.join(t);
                        c.nullable |= t == ColumnType::Null;
                    }
                    None => cols.push(Column {
                        name: k.clone(),
                        ty: t,
                        nullable: seen > 0 || t == ColumnType::Null,
                    }),
                }
            }
            seen += 1;
        }
        for c in &mut cols {
            if c.ty == ColumnType::Null {
                c.ty = ColumnType::Str;
            }
        }
        Ok(JsonlTable {
            path,
            policy,
            infer_rows,
            schema: Arc::new(Schema { columns: cols }),
        })
    }

    /// The inferred schema.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// The records as rows. A record that is not an object, has a key the schema lacks,
    /// or a value that does not fit its column's type (an `Int` fits a `Float` column)
    /// is a record error.
    pub fn rows(&self) -> Dataset<Row> {
        let schema = Arc::clone(&self.schema);
        let n = self.infer_rows;
        file_source("jsonl", self.path.clone(), self.policy, move |p, c| {
            let schema = Arc::clone(&schema);
            let decode: Decode<Row> = Arc::new(move |s: &str, p: &Path, i: u64| {
                let v: serde_json::Value =
                    serde_json::from_str(s).map_err(|e| Error::record(p, i, e.to_string()))?;
                let serde_json::Value::Object(m) = v else {
                    return Err(Error::record(p, i, "not a JSON object"));
                };
                if let Some(k) = m.keys().find(|k| schema.index_of(k).is_none()) {
                    return Err(Error::record(
                        p,
                        i,
                        format!(
                            "key {k:?} is not in the schema inferred from the first {n} records"
                        ),
                    ));
                }
                let mut values = Vec::with_capacity(schema.columns.len());
                for col in &schema.columns {
                    let v = m.get(&col.name).map(json_to_value).unwrap_or(Value::Null);
                    let v = match (col.ty, v) {
                        (_, Value::Null) => Value::Null,
                        (ColumnType::Float, Value::Int(i)) => Value::Float(i as f64),
                        (ty, v) if v.column_type() == ty => v,
                        (ColumnType::Str, v) => Value::Str(v.to_string()),
                        (ty, v) => {
                            return Err(Error::record(
                                p,
                                i,
                                format!(
                                    "key {:?}: {} does not fit the column type {ty}",
                                    col.name,
                                    v.column_type()
                                ),
                            ))
                        }
                    };
                    values.push(v);
                }
                Ok(Row {
                    schema: Arc::clone(&schema),
                    values,
                })
            });
            open_stream(p, c, decode)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Ev {
        t: f64,
        tag: String,
    }

    #[test]
    fn typed_records_with_located_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e.jsonl");
        std::fs::write(&p, "{\"t\": 1.5, \"tag\": \"a\"}\n\n{\"t\": \"x\", \"tag\": \"b\"}\n{\"t\": 3, \"tag\": \"c\"}\n{bad\n").unwrap();
        let items: Vec<_> = jsonl::<Ev>(&p, BadRecords::Error).iter().collect();
        assert_eq!(items.len(), 4);
        assert_eq!(
            items[0].as_ref().unwrap(),
            &Ev {
                t: 1.5,
                tag: "a".into()
            }
        );
        let e = items[1].as_ref().unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}: record 1 (line 3)", p.display())),
            "{e}"
        );
        assert_eq!(items[2].as_ref().unwrap().t, 3.0);
        assert!(items[3]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("record 3 (line 5)"));
        assert_eq!(
            jsonl::<Ev>(&p, BadRecords::Skip)
                .collect_vec()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn inferred_rows() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.jsonl");
        std::fs::write(
            &p,
            "{\"a\": 1, \"b\": \"x\"}\n{\"a\": 2.5, \"c\": [1, 2]}\n{\"a\": 3, \"z\": 1}\n",
        )
        .unwrap();
        let t = JsonlTable::open(&p, 2, BadRecords::Error).unwrap();
        let cols: Vec<(&str, ColumnType, bool)> = t
            .schema()
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.ty, c.nullable))
            .collect();
        assert_eq!(
            cols,
            [
                ("a", ColumnType::Float, false),
                ("b", ColumnType::Str, true),
                ("c", ColumnType::List, true)
            ]
        );
        let items: Vec<_> = t.rows().iter().collect();
        let r0 = items[0].as_ref().unwrap();
        assert_eq!(
            r0.values,
            [Value::Float(1.0), Value::Str("x".into()), Value::Null]
        );
        let e = items[2].as_ref().unwrap_err().to_string();
        assert!(e.contains("key \"z\" is not in the schema"), "{e}");
    }
}
