//! Any bytes as a UCR/UEA `.ts` file: the header and every case.
#![no_main]

#[path = "data_common.rs"]
mod common;

use edgeflow_data::sources::ts::TsFile;
use edgeflow_data::BadRecords;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = common::scratch("ts", data);
    if let Ok(f) = TsFile::open(&p, BadRecords::Error) {
        for c in f.cases().iter() {
            let _ = c;
        }
    }
    common::analyze("ts", data);
});
