//! Any bytes as a WAV file: the RIFF/RIFX/RF64 chunk walk and every sample decoder.
#![no_main]

#[path = "data_common.rs"]
mod common;

use edgeflow_data::sources::wav::decode_wav;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = decode_wav(data) {
        assert_eq!(a.samples.len() % usize::from(a.channels), 0);
        let _ = a.to_i16_units();
    }
    common::analyze("wav", data);
});
