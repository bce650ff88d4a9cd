//! Any bytes as an artifact: parse, and if valid, execute in an arena of at most 1 MiB.
//! Seed the corpus with `cargo run -p edgeflow-cli -- convert` outputs of the fixtures.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = edgeflow_nn::Model::parse(data) {
        let mut arena = vec![0u8; model.arena_bytes().min(1 << 20) + 16];
        let off = arena.as_ptr().align_offset(16);
        if let Ok(mut rt) = edgeflow_nn::Runtime::new(&model, &mut arena[off..]) {
            let _ = rt.invoke();
        }
    }
});
