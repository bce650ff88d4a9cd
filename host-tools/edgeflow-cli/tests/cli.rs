//! The `edgeflow` binary end to end: convert, inspect, run, and clear failures on bad files.

mod common;
use common::edgeflow;

use std::path::{Path, PathBuf};
use std::process::Output;

fn tmp(name: &str) -> PathBuf {
    common::tmp_in("cli", name)
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/fixtures")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn convert_inspect_run_roundtrip() {
    let model = fixtures().join("conv_same_s1_int8.tflite");
    let art = tmp("conv.edgeflow");
    let o = edgeflow(&[
        "convert",
        model.to_str().unwrap(),
        "-o",
        art.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = edgeflow(&["inspect", art.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    for needle in ["arena bytes", "flash bytes", "CONV_2D", "MACs", "I8[1x7x9x"] {
        assert!(
            text.contains(needle),
            "inspect output lacks {needle:?}:\n{text}"
        );
    }
    // `run` accepts the .tflite directly as well as the artifact, with identical results.
    let input = fixtures().join("conv_same_s1_int8.input.npy");
    let (o1, o2) = (tmp("conv1.npy"), tmp("conv2.npy"));
    for (m, out) in [(&art, &o1), (&model, &o2)] {
        let o = edgeflow(&[
            "run",
            m.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let a = std::fs::read(&o1).expect("out1");
    assert_eq!(a, std::fs::read(&o2).expect("out2"));
    // The .npy payload equals TFLM's output payload (same dtype and shape header layout may differ).
    let reference = std::fs::read(fixtures().join("conv_same_s1_int8.output.npy")).expect("ref");
    let payload = |b: &[u8]| -> Vec<u8> {
        let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
        b[10 + hl..].to_vec()
    };
    assert_eq!(payload(&a), payload(&reference));
}

#[test]
fn bad_files_fail_with_a_message() {
    let junk = tmp("junk.tflite");
    std::fs::write(&junk, b"this is not a model").expect("write");
    let missing = "/nonexistent/model.tflite";
    let model = fixtures().join("conv_same_s1_int8.tflite");
    let f32_input = fixtures().join("conv_same_s1_f32.input.npy");
    let out = tmp("never.npy");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "convert",
                junk.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ],
            "not a valid .tflite",
        ),
        (
            vec!["inspect", junk.to_str().unwrap()],
            "not a valid .tflite",
        ),
        (
            vec!["inspect", missing],
            "cannot read /nonexistent/model.tflite",
        ),
        (
            vec![
                "run",
                model.to_str().unwrap(),
                "--input",
                f32_input.to_str().unwrap(),
                "--output",
                out.to_str().unwrap(),
            ],
            "the model input is int8",
        ),
        (
            vec![
                "run",
                model.to_str().unwrap(),
                "--input",
                junk.to_str().unwrap(),
                "--output",
                out.to_str().unwrap(),
            ],
            "junk.tflite is a text file; the model takes a .npy tensor of shape [1, 7, 9, 3] int8",
        ),
    ];
    for (args, expect) in cases {
        let o = edgeflow(&args);
        assert!(!o.status.success(), "{args:?} should fail");
        assert!(
            stderr(&o).contains(expect),
            "{args:?}: stderr lacks {expect:?}:\n{}",
            stderr(&o)
        );
    }
    // A corrupted artifact is rejected naming the problem.
    let art = tmp("corrupt.edgeflow");
    let o = edgeflow(&[
        "convert",
        model.to_str().unwrap(),
        "-o",
        art.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let mut bytes = std::fs::read(&art).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&art, &bytes).expect("write");
    let o = edgeflow(&["inspect", art.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("CRC mismatch"), "{}", stderr(&o));
}

#[test]
fn inspect_checks_board_budgets() {
    let model = fixtures().join("conv_same_s1_int8.tflite");
    let board = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../boards/lm3s6965evb.toml");
    let o = edgeflow(&[
        "inspect",
        model.to_str().unwrap(),
        "--board",
        board.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("board        lm3s6965evb"), "{text}");
    assert!(!text.contains("DOES NOT FIT"), "{text}");

    // A board too small for the model: a clear failure.
    let tiny = tmp("tiny.toml");
    let spec = std::fs::read_to_string(&board)
        .expect("board")
        .replace("ram_bytes = 65536", "ram_bytes = 16")
        .replace("name = \"lm3s6965evb\"", "name = \"tiny\"");
    std::fs::write(&tiny, spec).expect("write");
    let o = edgeflow(&[
        "inspect",
        model.to_str().unwrap(),
        "--board",
        tiny.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("DOES NOT FIT"));
    assert!(
        stderr(&o).contains("does not fit on tiny"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn inspect_reports_feature_pipeline_ram() {
    use edgeflow_format::{write::assemble, Artifact, SectionKind};
    let model = fixtures().join("conv_same_s1_int8.tflite");
    let art = tmp("conv_for_pipeline.edgeflow");
    let o = edgeflow(&[
        "convert",
        model.to_str().unwrap(),
        "-o",
        art.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Without a pipeline section inspect says nothing about features.
    let o = edgeflow(&["inspect", art.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("feature pipeline"));
    // Store the KWS pipeline in the artifact: inspect reports its workspace.
    let spec = edgeflow_dsp::host::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../crates/edgeflow-dsp/pipelines/kws_mfcc.toml"),
    )
    .expect("kws pipeline");
    let pipeline = edgeflow_dsp::host::to_bytes(&spec).expect("encode");
    let ram = edgeflow_dsp::Pipeline::from_bytes(&pipeline)
        .expect("valid")
        .ram_bytes();
    let bytes = std::fs::read(&art).expect("artifact");
    let a = Artifact::parse(&bytes).expect("parse");
    let with = assemble(&[
        (SectionKind::Graph, a.graph),
        (SectionKind::Weights, a.weights),
        (SectionKind::FeaturePipeline, &pipeline),
    ])
    .expect("assemble");
    let art2 = tmp("conv_with_pipeline.edgeflow");
    std::fs::write(&art2, &with).expect("write");
    let o = edgeflow(&["inspect", art2.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let line = format!("feature pipeline  static RAM {ram} bytes");
    assert!(
        text.contains(&line),
        "inspect output lacks {line:?}:\n{text}"
    );
    // A corrupt pipeline section is an error naming the section.
    let bad = assemble(&[
        (SectionKind::Graph, a.graph),
        (SectionKind::Weights, a.weights),
        (SectionKind::FeaturePipeline, &[0xff, 0xff, 0xff]),
    ])
    .expect("assemble");
    let art3 = tmp("conv_bad_pipeline.edgeflow");
    std::fs::write(&art3, &bad).expect("write");
    let o = edgeflow(&["inspect", art3.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("feature pipeline"), "{}", stderr(&o));
}

#[test]
fn convert_stores_a_feature_pipeline() {
    let model = fixtures().join("fc_f32.tflite");
    let good = tmp("vec16.toml");
    std::fs::write(
        &good,
        "[input.vector]\nlen = 16\n[[blocks]]\nscale = { scale = 0.5, offset = -1.0 }\n",
    )
    .expect("write");
    let art = tmp("fc_with_pipeline.edgeflow");
    let o = edgeflow(&[
        "convert",
        model.to_str().unwrap(),
        "-o",
        art.to_str().unwrap(),
        "--pipeline",
        good.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&art).expect("artifact");
    let parsed = edgeflow_format::Artifact::parse(&bytes).expect("valid artifact");
    assert!(
        parsed.feature_pipeline.is_some_and(|p| !p.is_empty()),
        "pipeline section stored"
    );

    // A pipeline whose output does not fit the model input is refused, naming the mismatch.
    let bad = tmp("vec15.toml");
    std::fs::write(&bad, "[input.vector]\nlen = 15\n").expect("write");
    let o = edgeflow(&[
        "convert",
        model.to_str().unwrap(),
        "-o",
        tmp("never.edgeflow").to_str().unwrap(),
        "--pipeline",
        bad.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("element count"), "{}", stderr(&o));
}
