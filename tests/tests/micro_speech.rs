//! TFLM's micro_speech model run from 16 kHz audio: the fixed-point front end
//! (`conformance/frontend/micro_speech/pipeline.toml`) feeds the public int8 model
//! (`micro_speech_quantized.tflite`) inside one edgeflow artifact.
//!
//! References (`conformance/frontend/make_goldens.py`, tensorflow-cpu pinned): the features
//! are TensorFlow's `audio_microfrontend` op quantized as the example does, the scores are
//! `tf.lite.Interpreter` on those features. Both must be equal, bit for bit.

use edgeflow::dsp::host as dsp_host;
use edgeflow::host::attach_pipeline;
use edgeflow::{Engine, Model};
use edgeflow_tests::root;

fn read(rel: &str) -> Vec<u8> {
    let p = root().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The 16-bit samples of a PCM WAV (the micro_speech recordings: 44-byte header).
fn wav(rel: &str) -> Vec<i16> {
    let b = read(rel);
    assert_eq!(&b[..4], b"RIFF");
    b[44..]
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}

/// `name = [a, b, c, d]` from the scores file.
fn scores(name: &str) -> Vec<i8> {
    let text = String::from_utf8(read(
        "conformance/frontend/goldens/micro_speech_scores.toml",
    ))
    .expect("utf-8");
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{name} = ")))
        .unwrap_or_else(|| panic!("no scores for {name}"));
    line.split('[')
        .nth(1)
        .and_then(|s| s.split(']').next())
        .expect("a list")
        .split(',')
        .map(|v| v.trim().parse::<i8>().expect("int8"))
        .collect()
}

pub fn artifact() -> Vec<u8> {
    let tflite = read("conformance/frontend/micro_speech/micro_speech_quantized.tflite");
    let compiled = edgeflow_compile::compile(&tflite, "micro_speech").expect("compile");
    let text =
        String::from_utf8(read("conformance/frontend/micro_speech/pipeline.toml")).expect("utf-8");
    let spec = dsp_host::from_toml(&text, "pipeline.toml").expect("pipeline");
    attach_pipeline(&compiled.artifact, &spec).expect("attach")
}

#[test]
fn micro_speech_from_audio_matches_tensorflow() {
    let artifact = artifact();
    let m = Model::parse(&artifact).expect("model");
    for (name, expected_class) in [("yes", 2usize), ("no", 3)] {
        let audio = wav(&format!("conformance/frontend/audio/{name}_1000ms.wav"));
        let mut ws = vec![0.0f32; m.workspace_len()];
        let mut arena = edgeflow_nn::HostArena::for_model(m.nn()).expect("arena");
        let mut engine = Engine::new(&m, &mut ws, arena.as_mut_bytes()).expect("engine");
        let mut features = Vec::new();
        let mut predictions = Vec::new();
        let x: Vec<f32> = audio.iter().map(|&s| s as f32).collect();
        engine
            .push_observed(&x, |f| features.push(f.to_vec()), |p| predictions.push(p))
            .expect("run");
        assert_eq!(
            predictions.len(),
            1,
            "{name}: one second gives one prediction"
        );
        let want = read(&format!(
            "conformance/frontend/goldens/micro_speech_{name}.features.i8"
        ));
        assert_eq!(features.len(), 1);
        assert_eq!(
            features[0], want,
            "{name}: features differ from the TF op's"
        );
        let out: Vec<i8> = engine
            .output(0)
            .expect("output")
            .iter()
            .map(|&b| b as i8)
            .collect();
        assert_eq!(out, scores(name), "{name}: scores differ from tf.lite's");
        assert_eq!(predictions[0].class, expected_class, "{name}: class");
    }
}
