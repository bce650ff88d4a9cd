//! ONNX through the command line as a user runs it: `convert` and `run` of a float ONNX
//! model agree with ONNX Runtime, `quantize` calibrates it, and `run`'s input count is
//! checked. The model, inputs and ONNX Runtime's outputs are the committed fixtures of
//! `conformance/onnx/make_onnx_fixtures.py` (pinned onnx/onnxruntime).

mod common;
use common::{edgeflow_at_root as edgeflow, npy_f32, read_f32, root, s, text};

use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    common::tmp_in("onnx_cli", name)
}

fn read_npy_f32(path: &Path) -> Vec<f32> {
    let b = std::fs::read(path).expect("output npy");
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = String::from_utf8_lossy(&b[10..10 + hlen]);
    assert!(header.contains("'<f4'"), "{header}");
    b[10 + hlen..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("f32")))
        .collect()
}

/// Recording `n` of the 1-D CNN's inputs, ONNX's `[N, C, L]` turned into the artifact's
/// channels-last `[1, 1, L, C]` (the importer stores convolution inputs as NHWC).
fn cnn1d_sample(file: &str, n: usize) -> (Vec<usize>, Vec<f32>) {
    let (dims, x) = read_f32(&root().join("conformance/onnx/models").join(file));
    let (c, l) = (dims[dims.len() - 2], dims[dims.len() - 1]);
    let base = n * c * l;
    let mut out = vec![0f32; c * l];
    for ch in 0..c {
        for t in 0..l {
            out[t * c + ch] = x[base + ch * l + t];
        }
    }
    (vec![1, 1, l, c], out)
}

fn ort_output(n: usize) -> Vec<f32> {
    let (dims, y) = read_f32(&root().join("conformance/onnx/models/cnn1d.output.f32"));
    let k = dims[dims.len() - 1];
    y[n * k..(n + 1) * k].to_vec()
}

#[test]
fn float_onnx_model_converts_and_runs_as_onnx_runtime_does() {
    let model = root().join("conformance/onnx/models/cnn1d.onnx");
    let artifact = tmp("cnn1d.edgeflow");
    let o = edgeflow(&["convert", s(&model), "-o", s(&artifact)]);
    assert!(o.status.success(), "{}", text(&o));
    for n in 0..3 {
        let (shape, x) = cnn1d_sample("cnn1d.input.f32", n);
        let input = tmp(&format!("cnn1d_x{n}.npy"));
        std::fs::write(&input, npy_f32(&shape, &x)).expect("write");
        let out = tmp(&format!("cnn1d_y{n}.npy"));
        let o = edgeflow(&["run", s(&artifact), "--input", s(&input), "-o", s(&out)]);
        assert!(o.status.success(), "{}", text(&o));
        let ours = read_npy_f32(&out);
        let theirs = ort_output(n);
        assert_eq!(ours.len(), theirs.len());
        // The conformance suite's f32 tolerance: 1e-5 + 1e-4 |y|.
        for (a, b) in ours.iter().zip(&theirs) {
            assert!(
                (a - b).abs() <= 1e-5 + 1e-4 * b.abs(),
                "{ours:?} vs ONNX Runtime {theirs:?}"
            );
        }
    }
}

#[test]
fn onnx_model_quantizes_with_calibration_data() {
    let model = root().join("conformance/onnx/models/cnn1d.onnx");
    let (dims, _) = read_f32(&root().join("conformance/onnx/models/cnn1d.calib.f32"));
    let count = dims[0];
    let mut shape = Vec::new();
    let mut rows = Vec::new();
    for n in 0..count {
        let (s1, x) = cnn1d_sample("cnn1d.calib.f32", n);
        shape = s1;
        rows.extend(x);
    }
    shape[0] = count;
    let calib = tmp("cnn1d_calib.npy");
    std::fs::write(&calib, npy_f32(&shape, &rows)).expect("write");
    let q = tmp("cnn1d_int8.edgeflow");
    let o = edgeflow(&[
        "quantize",
        s(&model),
        "--calib",
        s(&calib),
        "--float-io",
        "-o",
        s(&q),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("top-1 agreement"), "{}", text(&o));
    // The int8 model (float I/O) on recording 0: within 5 % of the output spread of ONNX
    // Runtime's float output, the bound the importer's own quantization test states.
    let (shape, x) = cnn1d_sample("cnn1d.input.f32", 0);
    let input = tmp("cnn1d_q_x0.npy");
    std::fs::write(&input, npy_f32(&shape, &x)).expect("write");
    let out = tmp("cnn1d_q_y0.npy");
    let o = edgeflow(&["run", s(&q), "--input", s(&input), "-o", s(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    let ours = read_npy_f32(&out);
    let theirs = ort_output(0);
    let spread = theirs.iter().cloned().fold(f32::MIN, f32::max)
        - theirs.iter().cloned().fold(f32::MAX, f32::min);
    for (a, b) in ours.iter().zip(&theirs) {
        assert!(
            (a - b).abs() <= 0.05 * spread,
            "{ours:?} vs ONNX Runtime {theirs:?}"
        );
    }
}

#[test]
fn run_counts_its_inputs_and_a_numpy_file_is_not_a_model() {
    let model = root().join("conformance/onnx/models/cnn1d.onnx");
    let artifact = tmp("cnn1d_count.edgeflow");
    let o = edgeflow(&["convert", s(&model), "-o", s(&artifact)]);
    assert!(o.status.success(), "{}", text(&o));
    let (shape, x) = cnn1d_sample("cnn1d.input.f32", 0);
    let input = tmp("cnn1d_count_x.npy");
    std::fs::write(&input, npy_f32(&shape, &x)).expect("write");
    let o = edgeflow(&[
        "run",
        s(&artifact),
        "--input",
        s(&input),
        "--input",
        s(&input),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("the model has 1 input"), "{}", text(&o));
    let o = edgeflow(&["inspect", s(&input)]);
    assert!(!o.status.success());
    assert!(
        text(&o)
            .contains("not a model (expected a .tflite or .onnx model or an edgeflow artifact)"),
        "{}",
        text(&o)
    );
}

/// The quantization step of an int8 artifact's output (the int8 tensor its final
/// DEQUANTIZE reads).
fn output_step(artifact: &Path) -> f32 {
    let (g, _) = edgeflow_compile::load::load(&std::fs::read(artifact).expect("artifact"))
        .expect("artifact loads");
    let deq = g
        .ops
        .iter()
        .find(|o| o.output == g.outputs[0])
        .expect("output producer");
    g.tensors[deq.inputs[0]]
        .quant
        .as_ref()
        .expect("int8 input")
        .scales[0]
}

#[test]
fn qdq_onnx_model_converts_to_int8_and_runs_within_one_step_of_onnx_runtime() {
    let model = root().join("conformance/onnx/qdq/cnn1d.qdq.onnx");
    let artifact = tmp("cnn1d_qdq.edgeflow");
    let o = edgeflow(&["convert", s(&model), "-o", s(&artifact)]);
    assert!(o.status.success(), "{}", text(&o));
    let step = output_step(&artifact);
    let (dims, y) = read_f32(&root().join("conformance/onnx/qdq/cnn1d.output.f32"));
    let k = dims[dims.len() - 1];
    for n in 0..4 {
        let (shape, x) = cnn1d_sample("../qdq/cnn1d.input.f32", n);
        let input = tmp(&format!("cnn1d_qdq_x{n}.npy"));
        std::fs::write(&input, npy_f32(&shape, &x)).expect("write");
        let out = tmp(&format!("cnn1d_qdq_y{n}.npy"));
        let o = edgeflow(&["run", s(&artifact), "--input", s(&input), "-o", s(&out)]);
        assert!(o.status.success(), "{}", text(&o));
        let ours = read_npy_f32(&out);
        let theirs = &y[n * k..(n + 1) * k];
        for (a, b) in ours.iter().zip(theirs) {
            assert!(
                (a - b).abs() <= step * 1.001,
                "{ours:?} vs ONNX Runtime {theirs:?} (step {step})"
            );
        }
    }
    // ORT's default activation type (uint8) is outside TFLite's int8 scheme.
    let u8_model = root().join("conformance/onnx/qdq/cnn1d_u8.qdq.onnx");
    let o = edgeflow(&["convert", s(&u8_model), "-o", s(&tmp("u8.edgeflow"))]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("QuantizeLinear") && text(&o).contains("uint8 activations"),
        "{}",
        text(&o)
    );
}

#[test]
fn int8_onnx_model_exports_to_tflite_and_runs_the_same() {
    // ONNX → `edgeflow quantize` → `edgeflow export` → the .tflite back through `run`.
    let model = root().join("conformance/onnx/qdq/cnn1d.qdq.onnx");
    let artifact = tmp("cnn1d_export.edgeflow");
    let o = edgeflow(&["convert", s(&model), "-o", s(&artifact)]);
    assert!(o.status.success(), "{}", text(&o));
    let tfl = tmp("cnn1d_export.tflite");
    let o = edgeflow(&["export", s(&artifact), "-o", s(&tfl)]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(&std::fs::read(&tfl).expect("tflite")[4..8], b"TFL3");
    let (shape, x) = cnn1d_sample("../qdq/cnn1d.input.f32", 0);
    let input = tmp("cnn1d_export_x.npy");
    std::fs::write(&input, npy_f32(&shape, &x)).expect("write");
    let mut outs = Vec::new();
    for (m, y) in [(&artifact, "a"), (&tfl, "b")] {
        let out = tmp(&format!("cnn1d_export_{y}.npy"));
        let o = edgeflow(&["run", s(m), "--input", s(&input), "-o", s(&out)]);
        assert!(o.status.success(), "{}", text(&o));
        outs.push(read_npy_f32(&out));
    }
    assert_eq!(
        outs[0], outs[1],
        "the exported .tflite computes something else"
    );
}
