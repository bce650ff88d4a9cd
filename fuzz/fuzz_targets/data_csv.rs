//! Any bytes as a CSV file: the typed-row table (schema inference, typed cells), the
//! numeric reader `edgeflow features` uses, and `edgeflow data`'s analysis.
#![no_main]

#[path = "data_common.rs"]
mod common;

use edgeflow_data::sources::csv::{read_numeric_csv, CsvOptions, CsvTable};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = common::scratch("csv", data);
    let _ = read_numeric_csv(&p, b',');
    let opts = CsvOptions {
        has_header: false,
        infer_rows: 10,
        ..CsvOptions::default()
    };
    if let Ok(t) = CsvTable::open(&p, opts) {
        for r in t.rows().iter() {
            let _ = r;
        }
    }
    common::analyze("csv", data);
});
