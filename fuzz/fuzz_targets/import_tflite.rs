//! Any bytes as a `.tflite` file: compile, and if that succeeds, execute the artifact.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = edgeflow_compile::compile(data, "fuzz") {
        let model = edgeflow_nn::Model::parse(&c.artifact).expect("the compiler validates its output");
        let mut arena = vec![0u8; model.arena_bytes().min(1 << 20) + 16];
        let off = arena.as_ptr().align_offset(16);
        if let Ok(mut rt) = edgeflow_nn::Runtime::new(&model, &mut arena[off..]) {
            let _ = rt.invoke();
        }
    }
});
