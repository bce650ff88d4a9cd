//! `edgeflow run` on TFLM's micro_speech from a 16 kHz WAV: `edgeflow convert` puts the
//! public int8 model and the fixed-point front end pipeline
//! (`conformance/frontend/micro_speech/`) into one artifact; `edgeflow run` feeds it the
//! recording. Its int8 scores must equal `tf.lite.Interpreter`'s on TensorFlow's op's
//! features (`conformance/frontend/goldens/micro_speech_scores.toml`, written by
//! `conformance/frontend/make_goldens.py`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn edgeflow(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_edgeflow"))
        .args(args)
        .output()
        .expect("run edgeflow");
    let text =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "edgeflow {args:?} failed:\n{text}");
    text
}

/// `name = [a, b, c, d]` from the scores file.
fn scores(name: &str) -> Vec<i8> {
    let p = root().join("conformance/frontend/goldens/micro_speech_scores.toml");
    let text = std::fs::read_to_string(&p).expect("scores");
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

#[test]
fn micro_speech_runs_from_a_wav_with_tflite_scores() {
    let dir = root().join("conformance/frontend");
    let tmp = root().join("target/cli-micro-speech-test");
    std::fs::create_dir_all(&tmp).expect("tmp dir");
    let artifact = tmp.join("micro_speech.edgeflow");
    let model = dir.join("micro_speech/micro_speech_quantized.tflite");
    let pipeline = dir.join("micro_speech/pipeline.toml");
    edgeflow(&[
        "convert",
        model.to_str().expect("path"),
        "--pipeline",
        pipeline.to_str().expect("path"),
        "-o",
        artifact.to_str().expect("path"),
    ]);
    for (name, class) in [("yes", 2usize), ("no", 3)] {
        let wav = dir.join(format!("audio/{name}_1000ms.wav"));
        let out = tmp.join(format!("{name}.npy"));
        let text = edgeflow(&[
            "run",
            artifact.to_str().expect("path"),
            "--input",
            wav.to_str().expect("path"),
            "-o",
            out.to_str().expect("path"),
        ]);
        let bytes = std::fs::read(&out).expect("output npy");
        let npy = npyz::NpyFile::new(&bytes[..]).expect("npy");
        assert_eq!(npy.shape(), &[1, 4], "{name}: output shape\n{text}");
        let got: Vec<i8> = npy.into_vec::<i8>().expect("int8 output");
        assert_eq!(
            got,
            scores(name),
            "{name}: scores differ from tf.lite's\n{text}"
        );
        let best = got
            .iter()
            .enumerate()
            .max_by_key(|&(i, &v)| (v, std::cmp::Reverse(i)))
            .map(|(i, _)| i);
        assert_eq!(best, Some(class), "{name}: class\n{text}");
    }
}
