//! Shared by the edgeflow-data reader targets: the readers take paths, so each input is
//! written to a file (one per process, in the temporary directory) and read back through
//! the reader and through `edgeflow data`'s analysis path (schema, statistics, head).

#![allow(dead_code)]

use std::path::PathBuf;

use edgeflow_data::analyze::{head_tally, summarize, Tabular};
use edgeflow_data::BadRecords;

/// Writes `data` to this process's scratch file with extension `ext`.
pub fn scratch(ext: &str, data: &[u8]) -> PathBuf {
    let p = std::env::temp_dir().join(format!("edgeflow-fuzz-{}.{ext}", std::process::id()));
    std::fs::write(&p, data).expect("write the scratch file");
    p
}

/// Opens the file as `edgeflow data` does and reads every row twice (statistics, with
/// both bad-record policies), then the head. Errors are fine; panics and hangs are not.
pub fn analyze(ext: &str, data: &[u8]) {
    let p = scratch(ext, data);
    for policy in [BadRecords::Error, BadRecords::Skip] {
        if let Ok(t) = Tabular::open(&p, 20, policy) {
            let s = summarize(&t, 8, &mut |_| {});
            let _ = s.text();
            let _ = s.tally().check(&p, edgeflow_data::BadRecordLimit::Count(1));
            let _ = head_tally(&t, 5);
        }
    }
}

/// Lets panics that edgeflow-data catches itself (it wraps the `parquet` crate, which
/// panics on some corrupt metadata) unwind to its handler instead of aborting the fuzzer;
/// a panic that escapes the reader still aborts (libfuzzer-sys catches it at the top).
pub fn quiet_caught_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|_| {})));
}
