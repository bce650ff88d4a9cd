//! `edgeflow features FILE`'s input path on any bytes: the CLI's own input code
//! (`feature_io::read_input`, compiled here from `host-tools/edgeflow-cli/src`, with the
//! resampler, `.npy` shape checks and token splitting it calls) and then the feature
//! pipeline on whatever it decoded. The first byte picks the file type and one of the
//! shipped pipelines (plus a vector and a text pipeline); the rest is the file.
//! Errors are fine; panics, hangs and unbounded allocations are not.
#![no_main]
#![allow(dead_code, unused_imports)]

#[path = "data_common.rs"]
mod common;

#[path = "../../host-tools/edgeflow-cli/src/batch.rs"]
mod batch;
#[path = "../../host-tools/edgeflow-cli/src/feature_io.rs"]
mod feature_io;
#[path = "../../host-tools/edgeflow-cli/src/labels.rs"]
mod labels;
#[path = "../../host-tools/edgeflow-cli/src/output.rs"]
mod output;
#[path = "../../host-tools/edgeflow-cli/src/resample.rs"]
mod resample;
#[path = "../../host-tools/edgeflow-cli/src/tensor_io.rs"]
mod tensor_io;

use edgeflow_dsp::host;
use edgeflow_dsp::Pipeline;
use libfuzzer_sys::fuzz_target;

const PIPELINES: [&str; 5] = [
    include_str!("../../crates/edgeflow-dsp/pipelines/kws_mfcc.toml"),
    include_str!("../../crates/edgeflow-dsp/pipelines/imu_features.toml"),
    include_str!("../../crates/edgeflow-dsp/pipelines/image_int8.toml"),
    "[input.vector]\nlen = 4\n[[blocks]]\nscale = { scale = 0.5, offset = -1.0 }\n",
    "[input.text]\nmax_tokens = 8\n[[blocks]]\nvocabulary = { tokens = [\"yes\", \"no\", \"up\"], oov_buckets = 1 }\n",
];
const TYPES: [&str; 6] = ["wav", "csv", "npy", "txt", "png", "jpg"];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, file)) = data.split_first() else {
        return;
    };
    let ext = TYPES[usize::from(sel) % TYPES.len()];
    let toml = PIPELINES[usize::from(sel / 8) % PIPELINES.len()];
    let Ok(spec) = host::from_toml(toml, "<fuzz>") else {
        return;
    };
    let Ok(p) = Pipeline::new(spec) else {
        return;
    };
    resample::QUIET.store(true, std::sync::atomic::Ordering::Relaxed);
    let path = common::scratch(ext, file);
    if let Ok(samples) = feature_io::read_input(&path, &p) {
        let _ = host::run_many(&p, &samples);
    }
});
