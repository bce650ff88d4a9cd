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

/// The micro_speech artifact: the compiled int8 model with the front-end pipeline attached.
fn artifact() -> Vec<u8> {
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

/// The same artifact on an emulated board, through the device application: the WAV's
/// samples over the UART link; the prediction (class and score) must equal the host's
/// engine bit for bit (which the test above ties to TensorFlow's op and tf.lite).
fn on_board(board_name: &str) {
    use edgeflow_telemetry::command::Command;
    use edgeflow_telemetry::{Body, Event};
    use edgeflow_tests::{device, firmware};
    use std::time::Duration;

    let board = firmware::board(board_name);
    if let Some(why) = firmware::toolchain_missing(&board) {
        println!("skipped: {why}");
        return;
    }
    let artifact = artifact();
    let m = Model::parse(&artifact).expect("model");
    println!(
        "{board_name}: micro_speech artifact {} B, feature workspace {} words, arena {} B",
        artifact.len(),
        m.workspace_len(),
        m.arena_bytes()
    );
    let elf = device::build_app(&board).unwrap_or_else(|e| panic!("{e}"));
    let work = root().join("target/edgeflow-device");
    std::fs::create_dir_all(&work).expect("dir");
    let img = work.join(format!("partition-micro-speech-{board_name}.bin"));
    std::fs::write(&img, device::partition_image(&artifact)).expect("image");
    let (partition, _) = device::app_layout(&board).expect("layout");
    let mut dev = device::Device::start(&board, &elf, Some((&img, partition)))
        .unwrap_or_else(|e| panic!("{e}"));
    let t = Duration::from_secs(300);
    for (name, class) in [("yes", 2u16), ("no", 3)] {
        let audio = wav(&format!("conformance/frontend/audio/{name}_1000ms.wav"));
        let x: Vec<f32> = audio.iter().map(|&s| s as f32).collect();
        // The host engine on the same samples.
        let mut ws = vec![0.0f32; m.workspace_len()];
        let mut arena = edgeflow_nn::HostArena::for_model(m.nn()).expect("arena");
        let mut engine = Engine::new(&m, &mut ws, arena.as_mut_bytes()).expect("engine");
        let mut want = Vec::new();
        engine
            .push(&x, |p| want.push((p.class as u16, p.score.to_bits())))
            .expect("host run");
        assert_eq!(want.len(), 1, "{name}: one prediction on the host");
        assert_eq!(want[0].0, class, "{name}: host class");
        for c in x.chunks(50) {
            let bytes: Vec<u8> = c.iter().flat_map(|v| v.to_le_bytes()).collect();
            dev.send(&Command::Samples(&bytes)).expect("send");
        }
        let ev = dev
            .until(t, |e| match e {
                Event::Frame(f) => match &f.body {
                    Body::Prediction(_) => true,
                    Body::Log(l) => {
                        l.message.starts_with("engine:")
                            || l.message.starts_with("model:")
                            || l.message.starts_with("samples dropped")
                            || l.message.starts_with("inference:")
                    }
                    _ => false,
                },
                Event::Error(_) => false,
            })
            .unwrap_or_else(|e| panic!("{board_name} {name}: {e}"));
        let mut got = Vec::new();
        for e in &ev {
            if let Event::Frame(f) = e {
                match &f.body {
                    Body::Prediction(p) => got.push((p.class, p.score.to_bits())),
                    Body::Log(l) if got.is_empty() && l.message.contains(':') => {
                        assert!(
                            !(l.message.starts_with("engine:")
                                || l.message.starts_with("model:")
                                || l.message.starts_with("samples dropped")
                                || l.message.starts_with("inference:")),
                            "{board_name} {name}: the device says {:?}",
                            l.message
                        );
                    }
                    _ => {}
                }
            }
        }
        assert_eq!(
            got, want,
            "{board_name} {name}: the device's prediction differs from the host's"
        );
        // Each recording starts from a fresh stream (the host uses a new engine): forget
        // the buffered samples and the front end's noise estimates on the device too.
        dev.send(&Command::Reset).expect("reset");
    }
    let (_, stats) = dev.stop(t).expect("stop");
    assert_eq!(
        (stats.missing_frames, stats.discarded_bytes),
        (0, 0),
        "{board_name}: {stats:?}"
    );
}

#[test]
fn micro_speech_on_cortex_m4f_equals_the_host() {
    on_board("mps2-an386");
}

/// The Cortex-M3 (lm3s6965evb, no FPU) in two halves, because the device application's
/// RAM cannot hold both: the front end runs there in the feature firmware
/// (`dsp_qemu`'s `micro_speech_frontend` case: the device's features equal the host's,
/// which equal TensorFlow's op), and the model runs here in the model firmware on TF's
/// features: its int8 scores must equal `tf.lite.Interpreter`'s. Run on the M4F too.
fn model_on_board(board_name: &str) {
    use edgeflow_tests::firmware::{self, Case};
    use std::time::Duration;

    let board = firmware::board(board_name);
    if let Some(why) = firmware::toolchain_missing(&board) {
        println!("skipped: {why}");
        return;
    }
    let tflite = read("conformance/frontend/micro_speech/micro_speech_quantized.tflite");
    let compiled = edgeflow_compile::compile(&tflite, "micro_speech").expect("compile");
    let cases: Vec<Case> = ["yes", "no"]
        .iter()
        .map(|name| Case {
            name: format!("micro_speech_{name}"),
            artifact: compiled.artifact.clone(),
            input: read(&format!(
                "conformance/frontend/goldens/micro_speech_{name}.features.i8"
            )),
        })
        .collect();
    let reports = firmware::run(
        &board,
        &cases,
        compiled.arena_bytes.max(16),
        Duration::from_secs(600),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for name in ["yes", "no"] {
        let r = reports
            .get(&format!("micro_speech_{name}"))
            .unwrap_or_else(|| panic!("{board_name} {name}: no report"));
        let out: Vec<i8> = match &r.output {
            Ok(o) => o.iter().map(|&b| b as i8).collect(),
            Err(e) => panic!("{board_name} {name}: device error {e}"),
        };
        assert_eq!(
            out,
            scores(name),
            "{board_name} {name}: scores differ from tf.lite's"
        );
        println!(
            "{board_name} {name}: scores {out:?} = tf.lite's ({} SysTick ticks)",
            r.ticks
        );
    }
}

#[test]
fn micro_speech_model_on_cortex_m3_gives_tflite_scores() {
    model_on_board("lm3s6965evb");
}

/// The front end half on an emulated board, in the feature firmware (`firmware/dsp-*`):
/// micro_speech's pipeline on the "yes" recording, pushed as `i16`; the device's int8
/// features must equal TensorFlow's op's (the golden file), bit for bit.
fn frontend_on_board(board_name: &str) {
    use edgeflow_tests::{dsp_firmware, firmware};
    use std::time::Duration;

    let board = firmware::board(board_name);
    if let Some(why) = firmware::toolchain_missing(&board) {
        println!("skipped: {why}");
        return;
    }
    let case = dsp_firmware::micro_speech_case();
    let host = dsp_firmware::run_on_host(&case).unwrap_or_else(|e| panic!("{e}"));
    let want = read("conformance/frontend/goldens/micro_speech_yes.features.i8");
    assert_eq!(host, want, "host features differ from the TF op's");
    let reports = dsp_firmware::run(
        &board,
        std::slice::from_ref(&case),
        Duration::from_secs(600),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let r = reports
        .get(&case.name)
        .unwrap_or_else(|| panic!("{board_name}: no report"));
    match &r.output {
        Ok(out) => assert!(
            *out == want,
            "{board_name}: device features differ from the TF op's at byte {:?} ({} vs {} bytes)",
            out.iter().zip(&want).position(|(a, b)| a != b),
            out.len(),
            want.len()
        ),
        Err(e) => panic!("{board_name}: device error {e}"),
    }
    assert!(
        r.tables_same,
        "{board_name}: tables designed on the device differ from the host's"
    );
    println!(
        "{board_name}: micro_speech features = TF op's ({} windows; {} SysTick ticks in process, \
         single process min/median/max {:?}; peak stack {} B)",
        r.windows, r.process_ticks, r.process_spread, r.stack
    );
}

#[test]
fn micro_speech_frontend_on_cortex_m3_equals_tensorflow() {
    frontend_on_board("lm3s6965evb");
}

#[test]
fn micro_speech_frontend_on_cortex_m4f_equals_tensorflow() {
    frontend_on_board("mps2-an386");
}
