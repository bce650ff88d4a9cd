//! The ONNX done-when: a 1-D CNN in ONNX (conformance/onnx/models/cnn1d.onnx: Conv1d +
//! BatchNorm + ReLU + MaxPool twice, Flatten, Gemm) goes through `edgeflow quantize` as a
//! user runs it (calibration `.npy`, default range method, per-channel weights, float I/O)
//! and the int8 artifact runs on the emulated Cortex-M4F (QEMU mps2-an386, the firmware
//! harness `validate --hil` uses). Every test recording's device output must be
//! bit-identical with the host run-time's, and the int8 output must agree with ONNX
//! Runtime's float output within [`TOL_OF_SPREAD`] of the spread of ONNX Runtime's
//! outputs (the bound the importer's own PTQ test states).
//!
//! The model is built with `onnx.helper` from seeded weights by
//! conformance/onnx/make_onnx_fixtures.py, and ONNX Runtime's outputs come from the same
//! script (pinned versions): PyTorch cannot be installed on the build machine (its PyPI
//! wheel pulls the CUDA libraries, gigabytes the CI disk does not have), so the model is
//! not PyTorch-exported; the graph has the node types and attributes `torch.onnx.export`
//! writes for `Conv1d`/`BatchNorm1d`/`MaxPool1d`/`Flatten`/`Linear` at opset 13.
//!
//! The QDQ twin of the model (conformance/onnx/qdq/cnn1d.qdq.onnx, quantized by ONNX
//! Runtime's `quantize_static`) goes through `edgeflow convert` with its own parameters and
//! runs in the same firmware image: device == host, and within one output step of ONNX
//! Runtime running the QDQ model.
//!
//! Needs `qemu-system-arm` and the thumbv7em target (`.ci/run` installs both); without
//! them the test fails, unless `EDGEFLOW_SKIP_QEMU=1` asks to skip it.

mod common;
use common::{edgeflow_at_root as edgeflow, npy_f32, read_f32, root, s, text};

use std::path::{Path, PathBuf};
use std::time::Duration;

use edgeflow_tests::firmware::{self, Case};
use edgeflow_tests::run_host;

fn tmp(name: &str) -> PathBuf {
    common::tmp_in("onnx_qemu", name)
}

/// Agreement of the int8 model with ONNX Runtime's float model, as a fraction of the
/// spread (max - min) of ONNX Runtime's outputs over the test recordings.
const TOL_OF_SPREAD: f32 = 0.05;

fn models() -> PathBuf {
    root().join("conformance/onnx/models")
}

/// Recordings `[N, 1, C, L]` (ONNX layout, one batch each) as channels-last `[L, C]` rows,
/// the layout the importer gives the artifact's input.
fn channels_last(path: &Path) -> Vec<Vec<f32>> {
    let (dims, x) = read_f32(path);
    let (c, l) = (dims[dims.len() - 2], dims[dims.len() - 1]);
    x.chunks(c * l)
        .map(|r| {
            let mut out = vec![0f32; c * l];
            for ch in 0..c {
                for t in 0..l {
                    out[t * c + ch] = r[ch * l + t];
                }
            }
            out
        })
        .collect()
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("f32")))
        .collect()
}

#[test]
fn onnx_cnn1d_quantized_by_the_cli_runs_on_cortex_m4f_as_on_the_host_and_near_onnx_runtime() {
    let board = firmware::board("mps2-an386");
    if let Some(why) = firmware::toolchain_missing(&board) {
        println!("skipped: {why}");
        return;
    }
    // `edgeflow quantize cnn1d.onnx --calib calib.npy --float-io -o cnn1d_int8.edgeflow`.
    let calib_rows = channels_last(&models().join("cnn1d.calib.f32"));
    let per = calib_rows[0].len();
    let (c, l) = (3, per / 3);
    let calib = tmp("calib.npy");
    std::fs::write(
        &calib,
        npy_f32(&[calib_rows.len(), 1, l, c], &calib_rows.concat()),
    )
    .expect("write calibration");
    let artifact_path = tmp("cnn1d_int8.edgeflow");
    let o = edgeflow(&[
        "quantize",
        s(&models().join("cnn1d.onnx")),
        "--calib",
        s(&calib),
        "--float-io",
        "-o",
        s(&artifact_path),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    println!("{}", text(&o).trim());
    let artifact = std::fs::read(&artifact_path).expect("artifact");
    let arena = edgeflow_nn::Model::parse(&artifact)
        .expect("the artifact parses")
        .arena_bytes();

    let xs = channels_last(&models().join("cnn1d.input.f32"));
    let (ydims, ys) = read_f32(&models().join("cnn1d.output.f32"));
    let k = ydims[ydims.len() - 1];
    assert_eq!(ys.len(), xs.len() * k, "inputs and ONNX Runtime outputs");
    let cases: Vec<Case> = xs
        .iter()
        .enumerate()
        .map(|(i, x)| Case {
            name: format!("onnx_cnn1d_{i}"),
            artifact: artifact.clone(),
            input: x.iter().flat_map(|v| v.to_le_bytes()).collect(),
        })
        .collect();
    // The QDQ twin (ONNX Runtime's int8 quantization of a 1-D CNN), converted with its
    // own parameters, runs in the same firmware image.
    let qdq_path = tmp("cnn1d_qdq.edgeflow");
    let o = edgeflow(&[
        "convert",
        s(&root().join("conformance/onnx/qdq/cnn1d.qdq.onnx")),
        "-o",
        s(&qdq_path),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let qdq = std::fs::read(&qdq_path).expect("QDQ artifact");
    let qdq_arena = edgeflow_nn::Model::parse(&qdq)
        .expect("the QDQ artifact parses")
        .arena_bytes();
    let qdq_xs = channels_last(&root().join("conformance/onnx/qdq/cnn1d.input.f32"));
    let qdq_cases: Vec<Case> = qdq_xs
        .iter()
        .enumerate()
        .map(|(i, x)| Case {
            name: format!("onnx_cnn1d_qdq_{i}"),
            artifact: qdq.clone(),
            input: x.iter().flat_map(|v| v.to_le_bytes()).collect(),
        })
        .collect();
    let all: Vec<Case> = cases.iter().chain(&qdq_cases).cloned().collect();
    let reports = firmware::run(
        &board,
        &all,
        arena.max(qdq_arena).max(16),
        Duration::from_secs(600),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // QDQ: device == host, and within one output step of ONNX Runtime running the QDQ model.
    let (_, qdq_ys) = read_f32(&root().join("conformance/onnx/qdq/cnn1d.output.f32"));
    let (g, _) = edgeflow_compile::load::load(&qdq).expect("QDQ artifact loads");
    let deq = g
        .ops
        .iter()
        .find(|o| o.output == g.outputs[0])
        .expect("output producer");
    let step = g.tensors[deq.inputs[0]]
        .quant
        .as_ref()
        .expect("int8 output")
        .scales[0];
    let mut qdq_worst = 0f32;
    let mut qdq_ticks = 0;
    for (i, case) in qdq_cases.iter().enumerate() {
        let host = run_host(&case.artifact, &case.input)
            .unwrap_or_else(|e| panic!("{}: host run: {e}", case.name));
        let dev = reports
            .get(&case.name)
            .and_then(|r| r.output.as_ref().ok())
            .unwrap_or_else(|| {
                panic!(
                    "{}: no device output: {:?}",
                    case.name,
                    reports.get(&case.name)
                )
            });
        assert_eq!(
            dev, &host,
            "{}: the device output differs from the host's",
            case.name
        );
        qdq_ticks = qdq_ticks.max(reports.get(&case.name).map_or(0, |r| r.ticks));
        let got = f32s(&host);
        for (g, w) in got.iter().zip(&qdq_ys[i * k..(i + 1) * k]) {
            qdq_worst = qdq_worst.max((g - w).abs() / step);
        }
    }
    println!(
        "cnn1d QDQ int8 on mps2-an386: {} recordings, device == host bit for bit; largest difference from ONNX Runtime {qdq_worst:.2} output steps (bound 1); {} instructions per inference",
        qdq_cases.len(),
        qdq_ticks * 40
    );
    assert!(
        qdq_worst <= 1.001,
        "QDQ: {qdq_worst} steps from ONNX Runtime"
    );

    let spread =
        ys.iter().copied().fold(f32::MIN, f32::max) - ys.iter().copied().fold(f32::MAX, f32::min);
    let (mut worst, mut top1, mut ticks) = (0f32, 0, Vec::new());
    for (i, case) in cases.iter().enumerate() {
        let host = run_host(&case.artifact, &case.input)
            .unwrap_or_else(|e| panic!("{}: host run: {e}", case.name));
        let r = reports
            .get(&case.name)
            .unwrap_or_else(|| panic!("{}: the firmware reported nothing", case.name));
        let dev = r
            .output
            .as_ref()
            .unwrap_or_else(|e| panic!("{}: device error: {e}", case.name));
        assert_eq!(
            dev, &host,
            "{}: the device output differs from the host's",
            case.name
        );
        ticks.push(r.ticks);
        let got = f32s(&host);
        let want = &ys[i * k..(i + 1) * k];
        assert_eq!(got.len(), k, "{}: output length", case.name);
        for (g, w) in got.iter().zip(want) {
            worst = worst.max((g - w).abs());
        }
        let am = |v: &[f32]| (0..v.len()).fold(0, |b, j| if v[j] > v[b] { j } else { b });
        top1 += usize::from(am(&got) == am(want));
    }
    println!(
        "cnn1d int8 on mps2-an386: {} recordings, device == host bit for bit; largest |int8 - ONNX Runtime| = {worst:.4} ({:.2} % of the output spread {spread:.3}, bound {:.0} %); top-1 agrees on {top1}/{}; {} instructions per inference (SysTick ticks x 40)",
        cases.len(),
        100.0 * worst / spread,
        100.0 * TOL_OF_SPREAD,
        cases.len(),
        ticks.iter().max().copied().unwrap_or(0) * 40,
    );
    assert!(
        worst <= TOL_OF_SPREAD * spread,
        "int8 differs from ONNX Runtime by {worst} > {TOL_OF_SPREAD} x {spread}"
    );
}
