//! The `audio_frontend` block against TensorFlow's `audio_microfrontend` op, bit for bit.
//!
//! Goldens: `conformance/frontend/goldens/`, written by `conformance/frontend/make_goldens.py`
//! (tensorflow-cpu pinned in its requirements.txt) from real speech and edge cases. No
//! Python at test time.

use std::path::PathBuf;

use edgeflow_dsp::host;
use edgeflow_dsp::{Block, Error, FrontendOpts, Pipeline, PipelineDesc, Runtime};

const CASES: &[&str] = &[
    "yes_micro_speech",
    "no_micro_speech",
    "no_defaults",
    "silence",
    "clipping",
    "short",
    "one_window",
    "non_default",
    "no_log",
];

fn goldens() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance/frontend/goldens")
}

fn read(name: &str) -> Vec<u8> {
    let p = goldens().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

struct Case {
    pipeline: Pipeline<'static>,
    audio: Vec<i16>,
    expected: Vec<f32>,
}

fn case(name: &str) -> Case {
    let text = String::from_utf8(read(&format!("{name}.toml"))).expect("utf-8");
    let spec = host::from_toml(&text, name).unwrap_or_else(|e| panic!("{e}"));
    let pipeline = Pipeline::new(spec).expect("valid");
    let audio = read(&format!("{name}.in.i16"))
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let expected = read(&format!("{name}.out.f32"))
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Case {
        pipeline,
        audio,
        expected,
    }
}

/// Runs `audio` through `rt` in chunks of `chunk` samples, as `i16` or as `f32`.
fn run(rt: &mut Runtime<'_, '_, '_>, audio: &[i16], chunk: usize, as_f32: bool) -> Vec<f32> {
    rt.reset();
    let mut out = vec![0u8; rt.pipeline().output_bytes()];
    let mut got = Vec::new();
    for c in audio.chunks(chunk) {
        if as_f32 {
            let x: Vec<f32> = c.iter().map(|&s| s as f32).collect();
            rt.feed(&x, &mut out, |o| got.extend(host::as_f32(o)))
                .expect("feed");
        } else {
            rt.feed_i16(c, &mut out, |o| got.extend(host::as_f32(o)))
                .expect("feed");
        }
    }
    got
}

fn check(name: &str, how: &str, got: &[f32], expected: &[f32], channels: usize) {
    assert_eq!(
        got.len(),
        expected.len(),
        "{name} ({how}): {} values, the op gave {}",
        got.len(),
        expected.len()
    );
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!(
            g.to_bits() == e.to_bits(),
            "{name} ({how}): frame {} channel {}: {g}, the op gave {e}",
            i / channels,
            i % channels
        );
    }
}

#[test]
fn frontend_is_bit_exact_with_tensorflow() {
    let mut frames = 0;
    for name in CASES {
        let c = case(name);
        let channels = c.pipeline.features_per_frame();
        let mut ws = vec![0.0f32; c.pipeline.workspace_len()];
        let mut rt = Runtime::new(&c.pipeline, &mut ws).expect("runtime");
        for (chunk, as_f32) in [(c.audio.len().max(1), false), (37, false), (160, true)] {
            let got = run(&mut rt, &c.audio, chunk, as_f32);
            let how = format!("chunks of {chunk}, {}", if as_f32 { "f32" } else { "i16" });
            check(name, &how, &got, &c.expected, channels);
        }
        frames += c.expected.len() / channels;
    }
    // The speech cases alone give 49 + 49 + 98 frames: make sure they were compared.
    assert!(frames > 200, "only {frames} frames compared");
}

#[test]
fn frontend_tables_from_the_host_give_the_same_features() {
    // The artifact path: tables designed on the host, copied at start-up.
    for name in ["yes_micro_speech", "non_default"] {
        let c = case(name);
        let tables: Vec<u8> = host::tables(&c.pipeline)
            .expect("tables")
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let mut ws = vec![0.0f32; c.pipeline.workspace_len()];
        let mut rt = Runtime::with_tables(&c.pipeline, &mut ws, &tables).expect("with_tables");
        let channels = c.pipeline.features_per_frame();
        let got = run(&mut rt, &c.audio, 320, false);
        check(name, "precomputed tables", &got, &c.expected, channels);
    }
}

#[test]
fn frontend_survives_any_tables() {
    // Tables from an artifact are not trusted: arbitrary finite words must not panic.
    let c = case("yes_micro_speech");
    let n = c.pipeline.tables_len();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for round in 0..20 {
        let tables: Vec<u8> = (0..n)
            .flat_map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Finite words only (with_tables rejects the rest): clear the top exponent bit.
                let w = (state as u32) & if round % 2 == 0 { 0x3fff_ffff } else { 0xffff };
                w.to_le_bytes()
            })
            .collect();
        let mut ws = vec![0.0f32; c.pipeline.workspace_len()];
        let mut rt = Runtime::with_tables(&c.pipeline, &mut ws, &tables).expect("with_tables");
        let got = run(&mut rt, &c.audio[..4000], 500, false);
        assert_eq!(got.len(), 12 * 40);
    }
}

#[test]
fn frontend_from_artifact_bytes_is_bit_exact_and_round_trips() {
    // The device path: the description read back from its postcard bytes, where the
    // block's options are a borrowed byte string decoded once by `Pipeline::new`.
    for name in ["yes_micro_speech", "non_default", "no_log"] {
        let c = case(name);
        let bytes = host::to_bytes(c.pipeline.desc()).expect("to_bytes");
        let p = Pipeline::from_bytes(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(p.desc().blocks[0], c.pipeline.desc().blocks[0], "{name}");
        // Back to TOML from the wire form, and to the same bytes again.
        let text = host::to_toml(p.desc()).expect("to_toml");
        let again = host::from_toml(&text, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(host::to_bytes(&again).expect("to_bytes"), bytes, "{name}");
        let mut ws = vec![0.0f32; p.workspace_len()];
        let mut rt = Runtime::new(&p, &mut ws).expect("runtime");
        let got = run(&mut rt, &c.audio, 320, false);
        check(
            name,
            "from bytes",
            &got,
            &c.expected,
            p.features_per_frame(),
        );
    }
}

#[test]
fn malformed_frontend_options_are_a_named_error() {
    let c = case("non_default");
    let good = host::to_bytes(c.pipeline.desc()).expect("to_bytes");
    // The options' own encoding with one byte left over.
    let opts = match &c.pipeline.desc().blocks[0] {
        Block::AudioFrontend(o) => o.decode().expect("decodes"),
        b => panic!("{b:?}"),
    };
    let mut extra = postcard::to_stdvec(&opts).expect("encode");
    extra.push(0);
    let mut desc: PipelineDesc<'_> = c.pipeline.desc().clone();
    for bad in [&[][..], &[1, 2, 3][..], &[0xff; 80][..], &extra[..]] {
        desc.blocks[0] = Block::AudioFrontend(FrontendOpts::from_wire(bad));
        match Pipeline::new(desc.clone()) {
            Err(Error::Param { param, at, .. }) => {
                assert_eq!(param, "audio_frontend", "{bad:?}");
                assert!(at.to_string().contains("audio_frontend"), "{at}");
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    // And the well-formed bytes are accepted.
    Pipeline::from_bytes(&good).expect("good bytes");
}
