//! Any bytes as a Parquet file: footer, schema, every row (all codecs), the analysis.
//! The `parquet` crate panics on some corrupt metadata; edgeflow-data catches those
//! panics and reports the file, so only a panic that escapes counts as a crash.
#![no_main]

#[path = "data_common.rs"]
mod common;

use edgeflow_data::sources::parquet::ParquetTable;
use edgeflow_data::BadRecords;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::quiet_caught_panics();
    let p = common::scratch("parquet", data);
    if let Ok(t) = ParquetTable::open(&p, BadRecords::Error) {
        for r in t.rows().iter().take(10_000) {
            let _ = r;
        }
    }
    common::analyze("parquet", data);
});
