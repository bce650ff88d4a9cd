//! Any bytes as a telemetry link: the stream decoder must never panic, must account for
//! every byte, and must only report frames whose CRC matched.
//!
//! The first byte picks the chunk size the bytes are pushed in (`1 + b`), so resync across
//! chunk boundaries is exercised. When that byte is odd, the rest is also treated as one
//! raw frame whose trailing CRC is resealed before `parse_frame`, so mutations reach the
//! header and body decoders instead of stopping at the CRC. Seed corpus:
//! `fuzz/seeds/telemetry_decode/` (frames written by `cargo run -p edgeflow-telemetry
//! --example sample_stream`).
#![no_main]

use edgeflow_telemetry::{parse_frame, Decoder, Event, CRC32};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut d = Decoder::with_max_frame(4096);
    let mut discarded = 0u64;
    let mut frames = 0u64;
    for chunk in rest.chunks(1 + mode as usize) {
        for e in d.push(chunk) {
            match e {
                Event::Frame(_) => frames += 1,
                Event::Error(e) => discarded += e.len as u64,
            }
        }
    }
    if let Some(Event::Error(e)) = d.finish() {
        discarded += e.len as u64;
    }
    let s = *d.stats();
    assert_eq!(s.bytes, rest.len() as u64);
    assert_eq!(s.discarded_bytes, discarded);
    assert_eq!(s.frames, frames);
    assert!(s.discarded_bytes <= s.bytes);

    if mode & 1 == 1 && rest.len() >= 4 {
        let mut raw = rest.to_vec();
        let n = raw.len() - 4;
        let crc = CRC32.checksum(&raw[..n]);
        raw[n..].copy_from_slice(&crc.to_le_bytes());
        if let Ok(f) = parse_frame(&raw) {
            let _ = edgeflow_telemetry::decode_hello(f.body, f.header.minor);
            let _ = edgeflow_telemetry::decode_prediction(f.body, f.header.minor);
            let _ = edgeflow_telemetry::decode_log(f.body, f.header.minor);
            let _ = edgeflow_telemetry::Summary::decode(f.body, f.header.minor);
        }
    }
});
