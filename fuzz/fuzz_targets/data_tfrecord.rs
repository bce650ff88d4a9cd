//! Any bytes as a TFRecord file (uncompressed, or GZIP/ZLIB when the bytes look so):
//! raw records with and without checksums, `tf.train.Example`s, the analysis. The first
//! byte picks the stated compression for one more pass.
#![no_main]

#[path = "data_common.rs"]
mod common;

use edgeflow_data::sources::tfrecord::{tfrecord, tfrecord_compressed, Compression};
use edgeflow_data::BadRecords;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = common::scratch("tfrecord", data);
    for crc in [true, false] {
        for r in tfrecord(&p, crc, BadRecords::Error).iter() {
            let _ = r;
        }
    }
    let c = match data.first().map(|b| b % 3) {
        Some(0) => Compression::None,
        Some(1) => Compression::Gzip,
        _ => Compression::Zlib,
    };
    for r in tfrecord_compressed(&p, c, false, BadRecords::Skip).iter() {
        let _ = r;
    }
    common::analyze("tfrecord", data);
});
