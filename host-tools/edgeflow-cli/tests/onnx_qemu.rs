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
//! Needs `qemu-system-arm` (`.ci/run` installs it); without it the test prints why and
//! passes without running anything. A missing thumbv7em target is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use edgeflow_tests::firmware::{self, Case};
use edgeflow_tests::run_host;

/// Agreement of the int8 model with ONNX Runtime's float model, as a fraction of the
/// spread (max - min) of ONNX Runtime's outputs over the test recordings.
const TOL_OF_SPREAD: f32 = 0.05;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn models() -> PathBuf {
    root().join("conformance/onnx/models")
}

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("onnx_qemu");
    std::fs::create_dir_all(&d).expect("tmp dir");
    d.join(name)
}

fn edgeflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgeflow"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("run edgeflow")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The fixtures' `.f32` form: u32 rank, u32 dims, then little-endian f32 values.
fn read_f32(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let word = |i: usize| u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().expect("word"));
    let rank = word(0) as usize;
    let dims: Vec<usize> = (1..=rank).map(|i| word(i) as usize).collect();
    let data = b[4 * (rank + 1)..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("f32")))
        .collect();
    (dims, data)
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

/// A float32 `.npy` (version 1.0) of the given shape.
fn npy_f32(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}), }}",
        dims.join(", ")
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
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
        if why.starts_with("qemu-system-arm") {
            println!("skipping the ONNX-on-QEMU test: {why}");
            return;
        }
        panic!("{why}");
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
    let reports = firmware::run(&board, &cases, arena.max(16), Duration::from_secs(600))
        .unwrap_or_else(|e| panic!("{e}"));

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
