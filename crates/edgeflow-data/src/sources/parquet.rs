//! Parquet files (through the `parquet` crate's row API; uncompressed and Snappy
//! column chunks).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::basic::{ConvertedType, LogicalType, Repetition, Type as Physical};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

use super::{file_source, BadRecords};
use crate::dataset::{Dataset, Stream};
use crate::error::{Error, Result};
use crate::value::{Column, ColumnType, Row, Schema, Value};

/// Runs `f`, turning a panic inside the `parquet` crate (it has a few on corrupt
/// metadata) into an error naming `path`.
fn guard<R>(path: &Path, f: impl FnOnce() -> Result<R>) -> Result<R> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(Error::file(
            path,
            "corrupt Parquet file (the decoder panicked)",
        ))
    })
}

fn open(path: &Path) -> Result<SerializedFileReader<std::fs::File>> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    guard(path, || {
        SerializedFileReader::new(f)
            .map_err(|e| Error::file(path, format!("not a readable Parquet file: {e}")))
    })
}

fn column_type(t: &parquet::schema::types::Type) -> ColumnType {
    let info = t.get_basic_info();
    if !t.is_primitive() {
        return match info.converted_type() {
            ConvertedType::LIST => ColumnType::List,
            _ => ColumnType::Str,
        };
    }
    let logical = info.logical_type_ref();
    let temporal = matches!(
        logical,
        Some(
            LogicalType::Date
                | LogicalType::Time { .. }
                | LogicalType::Timestamp { .. }
                | LogicalType::Decimal { .. }
        )
    ) || matches!(
        info.converted_type(),
        ConvertedType::DECIMAL | ConvertedType::DATE
    );
    match t.get_physical_type() {
        _ if temporal => ColumnType::Str,
        Physical::BOOLEAN => ColumnType::Bool,
        Physical::INT32 | Physical::INT64 => ColumnType::Int,
        Physical::FLOAT | Physical::DOUBLE => ColumnType::Float,
        Physical::BYTE_ARRAY
            if matches!(
                logical,
                Some(LogicalType::String | LogicalType::Enum | LogicalType::Json)
            ) || info.converted_type() == ConvertedType::UTF8 =>
        {
            ColumnType::Str
        }
        _ => ColumnType::Bytes,
    }
}

fn field_value(f: &Field) -> Value {
    match f {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Bool(*b),
        Field::Byte(x) => Value::Int(i64::from(*x)),
        Field::Short(x) => Value::Int(i64::from(*x)),
        Field::Int(x) => Value::Int(i64::from(*x)),
        Field::Long(x) => Value::Int(*x),
        Field::UByte(x) => Value::Int(i64::from(*x)),
        Field::UShort(x) => Value::Int(i64::from(*x)),
        Field::UInt(x) => Value::Int(i64::from(*x)),
        Field::ULong(x) => match i64::try_from(*x) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Str(x.to_string()),
        },
        Field::Float16(x) => Value::Float(f64::from(f32::from(*x))),
        Field::Float(x) => Value::Float(f64::from(*x)),
        Field::Double(x) => Value::Float(*x),
        Field::Str(s) => Value::Str(s.clone()),
        Field::Bytes(b) => Value::Bytes(b.data().to_vec()),
        Field::ListInternal(l) => Value::List(l.elements().iter().map(field_value).collect()),
        other => Value::Str(other.to_string()),
    }
}

/// A Parquet file with its schema (top-level columns).
#[derive(Debug, Clone)]
pub struct ParquetTable {
    path: PathBuf,
    policy: BadRecords,
    schema: Arc<Schema>,
    rows: u64,
}

impl ParquetTable {
    /// Reads the footer of `path`: the schema and the row count. Column types: booleans
    /// `bool`; integers `int`; floats `float`; UTF-8 byte arrays `string`, other byte
    /// arrays `bytes`; lists `list`; dates, times, timestamps, decimals, maps and structs
    /// `string` (their text form).
    ///
    /// Errors: the file cannot be read or is not Parquet.
    pub fn open(path: impl Into<PathBuf>, policy: BadRecords) -> Result<Self> {
        let path: PathBuf = path.into();
        let r = open(&path)?;
        guard(&path.clone(), move || Self::from_reader(path, policy, &r))
    }

    fn from_reader(
        path: PathBuf,
        policy: BadRecords,
        r: &SerializedFileReader<std::fs::File>,
    ) -> Result<Self> {
        let md = r.metadata().file_metadata();
        let columns = md
            .schema()
            .get_fields()
            .iter()
            .map(|t| Column {
                name: t.name().to_string(),
                ty: column_type(t),
                nullable: t.get_basic_info().has_repetition()
                    && t.get_basic_info().repetition() == Repetition::OPTIONAL,
            })
            .collect();
        let rows = u64::try_from(md.num_rows()).unwrap_or(0);
        Ok(ParquetTable {
            path,
            policy,
            schema: Arc::new(Schema { columns }),
            rows,
        })
    }

    /// The schema.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// Number of rows according to the footer.
    pub fn num_rows(&self) -> u64 {
        self.rows
    }

    /// The rows, one row group in memory at a time. A decoding failure (corrupt page,
    /// unsupported compression) is a record error naming the row, after which the file
    /// ends.
    pub fn rows(&self) -> Dataset<Row> {
        let schema = Arc::clone(&self.schema);
        file_source("parquet", self.path.clone(), self.policy, move |p, c| {
            let r = open(p)?;
            if let Ok(m) = std::fs::metadata(p) {
                c.add_bytes(m.len());
            }
            let it = guard(p, || Ok(r.into_iter()))?;
            Ok(ParquetStream {
                it: Box::new(it),
                schema: Arc::clone(&schema),
                path: p.to_path_buf(),
                index: 0,
                done: false,
            })
        })
    }
}

struct ParquetStream {
    it: Box<dyn Iterator<Item = parquet::errors::Result<parquet::record::Row>> + Send>,
    schema: Arc<Schema>,
    path: PathBuf,
    index: u64,
    done: bool,
}

impl Stream<Row> for ParquetStream {
    fn next(&mut self) -> Option<Result<Row>> {
        if self.done {
            return None;
        }
        let i = self.index;
        self.index += 1;
        let it = &mut self.it;
        let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| it.next()))
            .unwrap_or_else(|_| {
                Some(Err(parquet::errors::ParquetError::General(
                    "the decoder panicked".into(),
                )))
            });
        match next {
            None => {
                self.done = true;
                None
            }
            Some(Err(e)) => {
                self.done = true;
                Some(Err(Error::record(&self.path, i, e.to_string())))
            }
            Some(Ok(row)) => {
                let mut values = Vec::with_capacity(self.schema.columns.len());
                for ((_, f), col) in row.get_column_iter().zip(&self.schema.columns) {
                    let v = field_value(f);
                    let v = match (col.ty, v) {
                        (_, Value::Null) => Value::Null,
                        (ColumnType::Str, v @ Value::Str(_)) => v,
                        (ColumnType::Str, v) => Value::Str(v.to_string()),
                        (_, v) => v,
                    };
                    values.push(v);
                }
                Some(Ok(Row {
                    schema: Arc::clone(&self.schema),
                    values,
                }))
            }
        }
    }
}
