//! Any bytes as a JSON Lines file: typed records, the row table, the analysis.
#![no_main]

#[path = "data_common.rs"]
mod common;

use edgeflow_data::sources::jsonl::jsonl;
use edgeflow_data::BadRecords;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = common::scratch("jsonl", data);
    for r in jsonl::<serde_json::Value>(&p, BadRecords::Skip).iter() {
        let _ = r;
    }
    common::analyze("jsonl", data);
});
