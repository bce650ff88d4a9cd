//! Any bytes as a feature pipeline: decode and validate it, and if valid, run it on input
//! taken from the rest of the bytes. Nothing may panic: `Pipeline::from_bytes` must reject
//! every description the runtime cannot execute.
//!
//! Layout: `len` (u16 LE), `len` bytes of postcard pipeline (the artifact's
//! `FeaturePipeline` section), one mode byte, then the input bytes. Signals are pushed in
//! chunks of `1 + mode / 4` values, as `i16` (mode bit 0 clear) or raw `f32` bit patterns
//! (NaN and infinities included); vectors and images take their values from the input
//! bytes, repeated; text splits the input at spaces. Seed the corpus with the
//! `*.pipeline` files the DSP QEMU tests write under `target/edgeflow-dsp-firmware/`.
#![no_main]

use edgeflow_dsp::{Input, Pipeline, Runtime};
use libfuzzer_sys::fuzz_target;

/// Workspace and output limits, so that one run stays fast.
const MAX_WORDS: usize = 1 << 18;
const MAX_OUT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let len = u16::from_le_bytes(*len) as usize;
    let Some((desc, rest)) = rest.split_at_checked(len) else {
        return;
    };
    let (mode, input) = rest.split_first().map_or((0, &[][..]), |(m, r)| (*m, r));
    let Ok(p) = Pipeline::from_bytes(desc) else {
        return;
    };
    if p.workspace_len() > MAX_WORDS || p.output_bytes() > MAX_OUT {
        return;
    }
    let mut ws = vec![0.0f32; p.workspace_len()];
    let Ok(mut rt) = Runtime::new(&p, &mut ws) else {
        panic!("Runtime::new failed on a validated pipeline with a large enough workspace");
    };
    let mut out = vec![0u8; p.output_bytes()];
    match p.desc().input {
        Input::Signal { .. } => {
            let chunk = 1 + mode as usize / 4;
            let samples: Vec<f32> = if mode & 1 == 0 {
                input
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32)
                    .collect()
            } else {
                input
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect()
            };
            for c in samples.chunks(chunk) {
                rt.feed(c, &mut out, |_| {}).expect("feed a signal pipeline");
            }
            // Wrong-kind calls are errors, not panics.
            assert!(rt.run_vector(&[0.0], &mut out).is_err());
        }
        Input::Vector { .. } => {
            let n = p.input_len();
            let values: Vec<f32> = input
                .iter()
                .cycle()
                .take(if input.is_empty() { 0 } else { n })
                .map(|&b| b as f32 - 128.0)
                .collect();
            let r = rt.run_vector(&values, &mut out);
            assert_eq!(r.is_ok(), values.len() == n, "{r:?}");
        }
        Input::Text { max_tokens } => {
            let text = String::from_utf8_lossy(input);
            let tokens: Vec<&str> = text.split(' ').take(max_tokens as usize).collect();
            rt.run_tokens(&tokens, &mut out).expect("run tokens");
        }
        Input::Image { .. } => {
            let n = p.input_len();
            if input.is_empty() || n > MAX_OUT {
                return;
            }
            let pixels: Vec<u8> = input.iter().cycle().take(n).copied().collect();
            rt.run_image(&pixels, &mut out).expect("run image");
            assert!(rt.push(&[0.0]).is_err());
        }
    }
});
