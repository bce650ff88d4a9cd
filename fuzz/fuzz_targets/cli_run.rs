//! `edgeflow run MODEL --input FILE`'s path on any bytes: the CLI's own code (`infer`,
//! compiled here from `host-tools/edgeflow-cli/src` with the modules it uses: `.npy`
//! tensor reading and shape checks, the raw-sample readers and the artifact's feature
//! pipeline, the arena limit) and then one inference per model input.
//!
//! Input layout: byte 0 picks the input file's type (and so the reader) in its low seven
//! bits and, when its top bit is set, rewrites the artifact header's body length and CRC
//! to match the mutated body (as `parse_execute` does, so mutations reach the sections
//! instead of stopping at the checksum); bytes 1–2 are the artifact's length `L`
//! (little-endian), the next `L` bytes are the artifact and the rest is the input file. A
//! model with several inputs reads the same file for each. Errors are fine; panics, hangs
//! and allocations beyond the arena limit are not.
#![no_main]
#![allow(dead_code, unused_imports)]

#[path = "data_common.rs"]
mod common;

#[path = "../../host-tools/edgeflow-cli/src/batch.rs"]
mod batch;
#[path = "../../host-tools/edgeflow-cli/src/feature_io.rs"]
mod feature_io;
#[path = "../../host-tools/edgeflow-cli/src/filetype.rs"]
mod filetype;
#[path = "../../host-tools/edgeflow-cli/src/infer.rs"]
mod infer;
#[path = "../../host-tools/edgeflow-cli/src/labels.rs"]
mod labels;
#[path = "../../host-tools/edgeflow-cli/src/output.rs"]
mod output;
#[path = "../../host-tools/edgeflow-cli/src/resample.rs"]
mod resample;
#[path = "../../host-tools/edgeflow-cli/src/tensor_io.rs"]
mod tensor_io;

use libfuzzer_sys::fuzz_target;

/// The input file types, by byte 0's low seven bits modulo their number.
const TYPES: [&str; 6] = ["npy", "csv", "wav", "png", "txt", "jpg"];

/// The arena limit for one case: far above the fixtures' arenas (kilobytes), far below
/// libFuzzer's 2 GB memory limit, so an artifact asking for more must be refused.
const MAX_ARENA: usize = 64 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let Some((len, rest)) = rest.split_first_chunk::<2>() else {
        return;
    };
    let len = usize::from(u16::from_le_bytes(*len));
    if rest.len() < len {
        return;
    }
    let (artifact, file) = rest.split_at(len);
    let mut artifact = artifact.to_vec();
    if sel & 0x80 != 0 && artifact.len() >= edgeflow_format::HEADER_LEN {
        let body_len = (artifact.len() - edgeflow_format::HEADER_LEN) as u32;
        artifact[8..12].copy_from_slice(&body_len.to_le_bytes());
        let crc = edgeflow_format::CRC32.checksum(&artifact[edgeflow_format::HEADER_LEN..]);
        artifact[12..16].copy_from_slice(&crc.to_le_bytes());
    }
    let Ok(m) = edgeflow_nn::Model::parse(&artifact) else {
        return;
    };
    resample::QUIET.store(true, std::sync::atomic::Ordering::Relaxed);
    let ext = TYPES[usize::from(sel & 0x7f) % TYPES.len()];
    let input = common::scratch(ext, file);
    let model = std::path::Path::new("<fuzz>");
    if m.header().inputs.len() == 1 {
        if let Ok(p) = infer::model_inputs(model, &m, &input) {
            let _ = infer::invoke_each(model, &m, &p.inputs, MAX_ARENA);
        }
    } else {
        let paths = vec![input; m.header().inputs.len()];
        let _ = infer::invoke_multi(model, &m, &paths, MAX_ARENA);
    }
});
