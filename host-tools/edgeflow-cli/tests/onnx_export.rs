//! `.tflite` export of ONNX models whose convolution padding TFLite's SAME cannot express
//! (PyTorch's symmetric `padding=1` under stride 2): the exporter writes an explicit PAD
//! before a VALID CONV_2D / DEPTHWISE_CONV_2D, and TFLite Micro must compute what edgeflow
//! computes.
//!
//! Each model (`conformance/export/onnx/conv_pad_s2.onnx`, and the MobileNet-style
//! `conformance/onnx/models/mobilenet.onnx`) goes through the CLI in f32 (`convert`) and
//! int8 (`quantize --calib … --float-io`, the CLI's default ranges), then `export`. The
//! exported file must equal the committed `conformance/export/onnx/NAME_{f32,int8}.tflite`
//! (`EDGEFLOW_BLESS_EXPORT=1` rewrites them), whose outputs in TFLite Micro's interpreter
//! (`conformance/export/run_tflm.py`, pinned) are committed as `NAME_*.output.npy`; the
//! artifact's output under `edgeflow run` must equal them bit for bit (int8; float32 within
//! 1e-5 relative, the one measured off by an ULP named below). Inputs and
//! calibration sets: `conformance/export/make_onnx_pad_fixtures.py`.

mod common;
use common::{edgeflow_at_root as edgeflow, npy_f32, read_f32, root, s, text};

use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    common::tmp_in("onnx_export", name)
}

/// The data bytes and element-count header field of a `.npy` file (little-endian float32).
fn npy_data(path: &Path) -> (String, Vec<u8>) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&b[..6], b"\x93NUMPY", "{}", path.display());
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = String::from_utf8_lossy(&b[10..10 + hlen]).to_string();
    assert!(header.contains("'<f4'"), "{}: {header}", path.display());
    (header, b[10 + hlen..].to_vec())
}

fn shape_of(header: &str) -> Vec<usize> {
    let start = header.find("'shape': (").expect("shape") + "'shape': (".len();
    let end = start + header[start..].find(')').expect("shape end");
    header[start..end]
        .split(',')
        .filter(|d| !d.trim().is_empty())
        .map(|d| d.trim().parse().expect("dimension"))
        .collect()
}

/// The MobileNet-style model's 64 calibration recordings (`mobilenet.calib.f32`, ONNX's
/// `[N, 1, C, H, W]`) as the channels-last `[N, H, W, C]` `.npy` that `quantize` takes.
fn mobilenet_calib() -> PathBuf {
    let (dims, x) = read_f32(&root().join("conformance/onnx/models/mobilenet.calib.f32"));
    let [n, _, c, h, w] = dims[..] else {
        panic!("mobilenet.calib.f32 has shape {dims:?}")
    };
    let mut out = vec![0f32; x.len()];
    for i in 0..n {
        for ch in 0..c {
            for y in 0..h {
                for xx in 0..w {
                    out[((i * h + y) * w + xx) * c + ch] = x[((i * c + ch) * h + y) * w + xx];
                }
            }
        }
    }
    let p = tmp("mobilenet.calib.npy");
    std::fs::write(&p, npy_f32(&[n, h, w, c], &out)).expect("write calibration set");
    p
}

#[test]
fn convolutions_with_explicit_padding_export_and_run_as_in_tflite_micro() {
    let dir = root().join("conformance/export/onnx");
    let bless = std::env::var("EDGEFLOW_BLESS_EXPORT").as_deref() == Ok("1");
    let models = [
        ("conv_pad_s2", dir.join("conv_pad_s2.onnx")),
        (
            "mobilenet",
            root().join("conformance/onnx/models/mobilenet.onnx"),
        ),
    ];
    let mut checked = 0;
    let mut not_identical: Vec<String> = Vec::new();
    for (name, model) in &models {
        let input = dir.join(format!("{name}.input.npy"));
        let calib = if *name == "mobilenet" {
            mobilenet_calib()
        } else {
            dir.join(format!("{name}.calib.npy"))
        };
        for kind in ["f32", "int8"] {
            let case = format!("{name}_{kind}");
            let artifact = tmp(&format!("{case}.edgeflow"));
            let o = if kind == "f32" {
                edgeflow(&["convert", s(model), "-o", s(&artifact)])
            } else {
                edgeflow(&[
                    "quantize",
                    s(model),
                    "--calib",
                    s(&calib),
                    "--float-io",
                    "-o",
                    s(&artifact),
                ])
            };
            assert!(o.status.success(), "{case}: {}", text(&o));
            let tfl = tmp(&format!("{case}.tflite"));
            let o = edgeflow(&["export", s(&artifact), "-o", s(&tfl)]);
            assert!(o.status.success(), "{case}: export: {}", text(&o));
            let t = std::fs::read(&tfl).expect("exported file");
            // The stride-2 convolution is written as PAD + a VALID window: the file holds
            // a PAD operator (builtin code 34) even though the model has no Pad node.
            let (g, _) = edgeflow_compile::load::load(&std::fs::read(&artifact).expect("a"))
                .expect("artifact loads");
            assert!(
                !g.ops
                    .iter()
                    .any(|o| matches!(o.op, edgeflow_format::graph::Op::Pad(_))),
                "{case}: the artifact itself has a Pad op"
            );
            let reimported = edgeflow_compile::compile(&t, &case).expect("export re-imports");
            let (g2, _) = edgeflow_compile::load::load(&reimported.artifact).expect("load");
            assert!(
                g2.ops
                    .iter()
                    .any(|o| matches!(o.op, edgeflow_format::graph::Op::Pad(_))),
                "{case}: the exported file has no PAD"
            );
            // The CLI reports the operators of the file it wrote (PADs included), not
            // the artifact's.
            let written = edgeflow_compile::tflite::parse(&t)
                .ok()
                .and_then(|m| m.subgraphs())
                .and_then(|sg| sg.iter().next())
                .and_then(|g| g.operators())
                .map_or(0, |o| o.len());
            assert!(written > g.ops.len(), "{case}: no operator added");
            let said = String::from_utf8_lossy(&o.stdout);
            assert!(
                said.contains(&format!(" bytes, {written} ops)")),
                "{case}: export reports the wrong operator count (file has {written}): {said}"
            );
            let committed = dir.join(format!("{case}.tflite"));
            if bless {
                std::fs::write(&committed, &t).expect("write export");
                continue;
            }
            assert!(
                std::fs::read(&committed).ok().as_deref() == Some(&t[..]),
                "{case}: the exporter's output differs from {} (rewrite with EDGEFLOW_BLESS_EXPORT=1, then rerun conformance/export/run_tflm.py)",
                committed.display()
            );
            let out = tmp(&format!("{case}.out.npy"));
            let o = edgeflow(&["run", s(&artifact), "--input", s(&input), "-o", s(&out)]);
            assert!(o.status.success(), "{case}: run: {}", text(&o));
            let (h, ours) = npy_data(&out);
            let golden = dir.join(format!("{case}.output.npy"));
            let (th, theirs) = npy_data(&golden);
            assert_eq!(
                shape_of(&h).iter().product::<usize>(),
                shape_of(&th).iter().product::<usize>(),
                "{case}: output sizes {h} vs TFLite Micro's {th}"
            );
            let f = |b: &[u8]| -> Vec<f32> {
                b.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            };
            let (o, t) = (f(&ours), f(&theirs));
            let differ = o
                .iter()
                .zip(&t)
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count();
            if kind == "int8" || differ == 0 {
                // int8 (float I/O around int8 kernels): bit for bit.
                assert_eq!(
                    differ,
                    0,
                    "{case}: {differ} of {} output values differ from TFLite Micro's on the exported file: {o:?} vs {t:?}",
                    t.len()
                );
            } else {
                // float32: edgeflow's kernels may sum in another order than TFLM's
                // reference kernels; the fixtures' tolerance, 1e-5 relative.
                for (a, b) in o.iter().zip(&t) {
                    assert!(
                        (a - b).abs() <= 1e-5 * b.abs().max(1e-3),
                        "{case}: {o:?} vs TFLite Micro's {t:?}"
                    );
                }
                not_identical.push(case.clone());
            }
            checked += 1;
        }
    }
    if bless {
        println!(
            "rewrote conformance/export/onnx/*.tflite; now run conformance/export/run_tflm.py"
        );
        return;
    }
    assert_eq!(checked, 4);
    // Measured: mobilenet's f32 output has one of its ten values one ULP off TFLM's
    // (7.5e-9); every other output is bit-identical.
    assert_eq!(
        not_identical,
        ["mobilenet_f32"],
        "float32 exports not bit-identical with TFLite Micro"
    );
}
