//! Any bytes as an artifact: parse, and if valid, execute in an arena of at most 1 MiB.
//!
//! When the first input byte is odd, the header's body length and CRC are rewritten to
//! match the rest of the input first, so that mutations reach the graph validation and
//! the kernels instead of stopping at the checksum. Seed the corpus with artifacts from
//! `edgeflow convert` of the conformance fixtures.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if mode & 1 == 1 && bytes.len() >= edgeflow_format::HEADER_LEN {
        let body_len = (bytes.len() - edgeflow_format::HEADER_LEN) as u32;
        bytes[8..12].copy_from_slice(&body_len.to_le_bytes());
        let crc = edgeflow_format::CRC32.checksum(&bytes[edgeflow_format::HEADER_LEN..]);
        bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    }
    if let Ok(model) = edgeflow_nn::Model::parse(&bytes) {
        let mut arena = vec![0u8; model.arena_bytes().min(1 << 20) + 16];
        let off = arena.as_ptr().align_offset(16);
        if let Ok(mut rt) = edgeflow_nn::Runtime::new(&model, &mut arena[off..]) {
            let _ = rt.invoke();
        }
    };
});
