//! Parquet export of a window of stored frames, for analysis elsewhere (pandas, DuckDB,
//! Spark). One row per frame:
//!
//! | column | type | for |
//! |---|---|---|
//! | `device` | UTF8 | all |
//! | `seq` | INT64 | all |
//! | `kind` | UTF8 (`hello`, `prediction`, `summary`) | all |
//! | `recv_us` | INT64, µs since the Unix epoch | all |
//! | `model_hash` | UTF8, optional | hello |
//! | `class`, `score`, `latency_us` | INT32, FLOAT, INT32, optional | prediction |
//! | `inferences` | INT64, optional | summary |
//! | `summary_json` | UTF8, optional: the full window counts as JSON | summary |

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use parquet::data_type::{ByteArray, ByteArrayType, FloatType, Int32Type, Int64Type};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

use crate::store::{Frame, Store, StoreError};

const SCHEMA: &str = "message frames {
  REQUIRED BYTE_ARRAY device (UTF8);
  REQUIRED INT64 seq;
  REQUIRED BYTE_ARRAY kind (UTF8);
  REQUIRED INT64 recv_us;
  OPTIONAL BYTE_ARRAY model_hash (UTF8);
  OPTIONAL INT32 class;
  OPTIONAL FLOAT score;
  OPTIONAL INT32 latency_us;
  OPTIONAL INT64 inferences;
  OPTIONAL BYTE_ARRAY summary_json (UTF8);
}";

#[derive(Default)]
struct Columns {
    device: Vec<ByteArray>,
    seq: Vec<i64>,
    kind: Vec<ByteArray>,
    recv: Vec<i64>,
    model: (Vec<ByteArray>, Vec<i16>),
    class: (Vec<i32>, Vec<i16>),
    score: (Vec<f32>, Vec<i16>),
    latency: (Vec<i32>, Vec<i16>),
    inferences: (Vec<i64>, Vec<i16>),
    json: (Vec<ByteArray>, Vec<i16>),
}

fn opt<T>(c: &mut (Vec<T>, Vec<i16>), v: Option<T>) {
    match v {
        Some(x) => {
            c.0.push(x);
            c.1.push(1);
        }
        None => c.1.push(0),
    }
}

/// Rows per row group.
const GROUP: usize = 65_536;

/// Writes the frames of `device` (or all) received in `[from_us, to_us)` to a Parquet file;
/// returns the number of rows.
pub fn export_parquet(
    store: &Store,
    device: Option<&str>,
    from_us: Option<i64>,
    to_us: Option<i64>,
    out: &Path,
) -> Result<u64, StoreError> {
    let err = |source: ParquetError| StoreError::Parquet {
        path: out.display().to_string(),
        source,
    };
    let schema = Arc::new(parse_message_type(SCHEMA).map_err(err)?);
    let file = File::create(out).map_err(|e| err(ParquetError::from(e)))?;
    let props = Arc::new(WriterProperties::builder().build());
    let mut writer = SerializedFileWriter::new(file, schema, props).map_err(err)?;
    let mut cols = Columns::default();
    let mut result: Result<(), ParquetError> = Ok(());
    let n = store.for_each_frame(device, from_us, to_us, |dev, seq, recv, _gap, frame| {
        if result.is_err() {
            return;
        }
        cols.device.push(ByteArray::from(dev));
        cols.seq.push(i64::from(seq));
        cols.recv.push(recv);
        let (kind, model, class, score, lat, inf, json) = match &frame {
            Frame::Hello { model_hash } => (
                "hello",
                Some(model_hash.as_str().into()),
                None,
                None,
                None,
                None,
                None,
            ),
            Frame::Prediction {
                class,
                score,
                latency_us,
            } => (
                "prediction",
                None,
                Some(i32::from(*class)),
                Some(*score),
                Some(*latency_us as i32),
                None,
                None,
            ),
            Frame::Summary(s) => (
                "summary",
                None,
                None,
                None,
                None,
                Some(s.inferences as i64),
                serde_json::to_string(s)
                    .ok()
                    .map(|j| ByteArray::from(j.as_str())),
            ),
        };
        cols.kind.push(ByteArray::from(kind));
        opt(&mut cols.model, model);
        opt(&mut cols.class, class);
        opt(&mut cols.score, score);
        opt(&mut cols.latency, lat);
        opt(&mut cols.inferences, inf);
        opt(&mut cols.json, json);
        if cols.seq.len() >= GROUP {
            result = flush(&mut writer, &mut cols);
        }
    })?;
    result.map_err(err)?;
    if !cols.seq.is_empty() || n == 0 {
        flush(&mut writer, &mut cols).map_err(err)?;
    }
    writer.close().map_err(err)?;
    Ok(n)
}

fn flush(writer: &mut SerializedFileWriter<File>, c: &mut Columns) -> Result<(), ParquetError> {
    let mut rg = writer.next_row_group()?;
    let mut i = 0;
    while let Some(mut col) = rg.next_column()? {
        match i {
            0 => col
                .typed::<ByteArrayType>()
                .write_batch(&c.device, None, None),
            1 => col.typed::<Int64Type>().write_batch(&c.seq, None, None),
            2 => col
                .typed::<ByteArrayType>()
                .write_batch(&c.kind, None, None),
            3 => col.typed::<Int64Type>().write_batch(&c.recv, None, None),
            4 => col
                .typed::<ByteArrayType>()
                .write_batch(&c.model.0, Some(&c.model.1), None),
            5 => col
                .typed::<Int32Type>()
                .write_batch(&c.class.0, Some(&c.class.1), None),
            6 => col
                .typed::<FloatType>()
                .write_batch(&c.score.0, Some(&c.score.1), None),
            7 => col
                .typed::<Int32Type>()
                .write_batch(&c.latency.0, Some(&c.latency.1), None),
            8 => col
                .typed::<Int64Type>()
                .write_batch(&c.inferences.0, Some(&c.inferences.1), None),
            _ => col
                .typed::<ByteArrayType>()
                .write_batch(&c.json.0, Some(&c.json.1), None),
        }?;
        col.close()?;
        i += 1;
    }
    rg.close()?;
    *c = Columns::default();
    Ok(())
}
