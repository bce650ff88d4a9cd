//! `edgeflow quantize` end to end: both front ends, calibration through the model's
//! feature pipeline, sections carried over, and clear errors on bad input.

mod common;
use common::{edgeflow, npy_f32, root, s, text};

use std::path::PathBuf;

use edgeflow_compile::ir::{Graph, IrOp, IrTensor};
use edgeflow_compile::load::Sections;
use edgeflow_compile::reference::f32_bytes;
use edgeflow_format::graph::{Clamp, DType, FullyConnectedParams, Op};

fn tmp(name: &str) -> PathBuf {
    common::tmp_in("quantize", name)
}

#[test]
fn quantizes_a_float_tflite_with_npy_rows() {
    let q = root().join("conformance/quant");
    let out = tmp("gap.edgeflow");
    let o = edgeflow(&[
        "quantize",
        s(&q.join("gap_fc_logistic_int8.f32.tflite")),
        "--calib",
        s(&q.join("gap_fc_logistic_int8.calib.npy")),
        "-o",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("32 calibration samples"), "{}", text(&o));
    let bytes = std::fs::read(&out).expect("artifact");
    let m = edgeflow_nn::Model::parse(&bytes).expect("valid artifact");
    assert_eq!(m.header().inputs[0].dtype, DType::I8);
}

#[test]
fn bad_inputs_are_named() {
    let q = root().join("conformance/quant");
    let out = tmp("bad.edgeflow");
    let model = q.join("gap_fc_logistic_int8.f32.tflite");
    // Wrong calibration shape.
    let o = edgeflow(&[
        "quantize",
        s(&model),
        "--calib",
        s(&q.join("fc_int8.calib.npy")),
        "-o",
        s(&out),
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("fc_int8.calib.npy: shape [32, 1, 16]"),
        "{}",
        text(&o)
    );
    // An int8 model is not a float model.
    let o = edgeflow(&[
        "quantize",
        s(&root().join("conformance/fixtures/fc_int8.tflite")),
        "--calib",
        s(&q.join("fc_int8.calib.npy")),
        "-o",
        s(&out),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("op 0 (FULLY_CONNECTED)"), "{}", text(&o));
    // Empty calibration set.
    let empty = tmp("empty.npy");
    std::fs::write(&empty, npy_f32(&[0, 210], &[])).expect("write");
    let o = edgeflow(&["quantize", s(&model), "--calib", s(&empty), "-o", s(&out)]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("calibration set is empty"),
        "{}",
        text(&o)
    );
    // Raw data without a pipeline.
    let csv = tmp("raw.csv");
    std::fs::write(&csv, "1,2,3\n").expect("write");
    let o = edgeflow(&["quantize", s(&model), "--calib", s(&csv), "-o", s(&out)]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("needs a feature pipeline"),
        "{}",
        text(&o)
    );
}

/// A float IMU classifier over the 237 features of `imu_features.toml`: FC(237 -> 4)
/// + SOFTMAX, with labels, metadata and the pipeline in the artifact, as training writes it.
fn float_imu_artifact() -> Vec<u8> {
    let t = |index: u32, shape: Vec<u32>, data: Option<Vec<f32>>| IrTensor {
        index,
        name: format!("t{index}"),
        dtype: DType::F32,
        shape,
        quant: None,
        data: data.map(|d| f32_bytes(&d)),
    };
    let w: Vec<f32> = (0..4 * 237)
        .map(|i| ((i * 7919 % 201) as f32 - 100.0) / 1000.0)
        .collect();
    let mut fc = IrOp::new(vec![0, 1, 2], 3);
    fc.op = Op::FullyConnected(FullyConnectedParams {
        clamp: Clamp::NONE,
        requant: None,
    });
    let mut sm = IrOp::new(vec![3], 4);
    sm.op = Op::Softmax(edgeflow_nn::params::elementwise::softmax_params(1.0, 1.0));
    let g = Graph {
        tensors: vec![
            t(0, vec![1, 237], None),
            t(1, vec![4, 237], Some(w)),
            t(2, vec![4], Some(vec![0.1, -0.1, 0.2, 0.0])),
            t(3, vec![1, 4], None),
            t(4, vec![1, 4], None),
        ],
        inputs: vec![0],
        outputs: vec![4],
        ops: vec![fc, sm],
        description: String::new(),
    };
    let float = edgeflow_compile::emit(&g, "imu").expect("emit");
    let sections = Sections {
        labels: Some(
            edgeflow_format::labels::encode(&["idle", "walk", "run", "jump"]).expect("labels"),
        ),
        metadata: Some(br#"{"trained_by":"test"}"#.to_vec()),
        ..Default::default()
    };
    let with = edgeflow_compile::with_sections(&float.artifact, &sections).expect("sections");
    let spec =
        edgeflow_dsp::host::load(&root().join("crates/edgeflow-dsp/pipelines/imu_features.toml"))
            .expect("imu pipeline");
    edgeflow::host::attach_pipeline(&with, &spec).expect("attach")
}

#[test]
fn float_artifact_calibrated_through_its_pipeline_keeps_its_sections() {
    let model = tmp("imu_float.edgeflow");
    std::fs::write(&model, float_imu_artifact()).expect("write");
    // 20 s of 3-axis motion at 100 Hz: 30 windows of 128 every 64 steps.
    let mut csv = String::new();
    for i in 0..2000 {
        let t = i as f32 / 100.0;
        csv += &format!(
            "{},{},{}\n",
            (t * 6.0).sin() * 2.0,
            (t * 1.3).cos(),
            9.81 + (t * 17.0).sin() * 0.3
        );
    }
    let data = tmp("imu.csv");
    std::fs::write(&data, csv).expect("write");
    let out = tmp("imu_int8.edgeflow");
    let o = edgeflow(&["quantize", s(&model), "--calib", s(&data), "-o", s(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("30 calibration samples"), "{}", text(&o));
    let bytes = std::fs::read(&out).expect("artifact");
    let m = edgeflow_nn::Model::parse(&bytes).expect("valid");
    let a = m.artifact();
    let input = m.header().inputs[0];
    assert_eq!(input.dtype, DType::I8);
    assert_eq!(a.metadata, Some(&br#"{"trained_by":"test"}"#[..]));
    let labels = edgeflow_format::labels::Labels::parse(a.labels.expect("labels")).expect("labels");
    assert_eq!(
        labels.iter().collect::<Vec<_>>(),
        ["idle", "walk", "run", "jump"]
    );
    // The pipeline now quantizes its output with the int8 input's parameters.
    let p =
        edgeflow_dsp::Pipeline::from_bytes(a.feature_pipeline.expect("pipeline")).expect("valid");
    let q = p.desc().output.quantize.expect("quantizing pipeline");
    let iq = input.quant.expect("input quant");
    assert_eq!((q.scale, q.zero_point), (iq.scale, iq.zero_point));
}
