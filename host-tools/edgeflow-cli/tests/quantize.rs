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
    // float64 rows: the dtype is named.
    let f64s = tmp("rows_f64.npy");
    std::fs::write(&f64s, common::npy("<f8", &[1, 210], &[0u8; 8 * 210])).expect("write");
    let o = edgeflow(&["quantize", s(&model), "--calib", s(&f64s), "-o", s(&out)]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("rows_f64.npy: dtype <f8; calibration feature rows must be float32"),
        "{}",
        text(&o)
    );
    // A non-finite value: the sample and the value position are named.
    let mut rows = vec![0.5f32; 3 * 210];
    rows[210 + 7] = f32::INFINITY;
    let inf = tmp("rows_inf.npy");
    std::fs::write(&inf, npy_f32(&[3, 210], &rows)).expect("write");
    let _ = std::fs::remove_file(&out);
    let o = edgeflow(&["quantize", s(&model), "--calib", s(&inf), "-o", s(&out)]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("calibration sample 1: value 7 is not finite (inf)"),
        "{}",
        text(&o)
    );
    assert!(
        !out.exists(),
        "no artifact is written on a failed quantization"
    );
}

/// `--float-io`: float32 input and output with QUANTIZE / DEQUANTIZE at the edges; the
/// artifact takes float feature rows and gives float scores close to the float model's
/// (within a few output steps of 1/256: SOFTMAX's int8 output scale).
#[test]
fn float_io_keeps_float_edges() {
    let q = root().join("conformance/quant");
    let float = q.join("gap_fc_logistic_int8.f32.tflite");
    let calib = q.join("gap_fc_logistic_int8.calib.npy");
    let out = tmp("gap_floatio.edgeflow");
    let o = edgeflow(&[
        "quantize",
        s(&float),
        "--calib",
        s(&calib),
        "--float-io",
        "-o",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let bytes = std::fs::read(&out).expect("artifact");
    let m = edgeflow_nn::Model::parse(&bytes).expect("valid artifact");
    assert_eq!(m.header().inputs[0].dtype, DType::F32);
    assert_eq!(m.header().outputs[0].dtype, DType::F32);
    let g =
        edgeflow_compile::import::import(&std::fs::read(&float).expect("float")).expect("import");
    let eval = edgeflow_compile::reference::Evaluator::new(&g).expect("eval");
    let raw = std::fs::read(&calib).expect("calib");
    let rows: Vec<f32> = npyz::NpyFile::new(&raw[..])
        .expect("npy")
        .into_vec()
        .expect("f32");
    let mut arena = edgeflow_nn::HostArena::for_model(&m).expect("arena");
    let mut rt = edgeflow_nn::Runtime::new(&m, arena.as_mut_bytes()).expect("runtime");
    let mut worst = 0f32;
    for r in rows.chunks(210) {
        let want = edgeflow_compile::reference::bytes_f32(
            eval.run(&[&f32_bytes(r)]).expect("run")[g.outputs[0]]
                .as_deref()
                .expect("output"),
        );
        rt.input_mut(0)
            .expect("input")
            .copy_from_slice(&f32_bytes(r));
        rt.invoke().expect("invoke");
        let got = edgeflow_compile::reference::bytes_f32(rt.output(0).expect("output"));
        assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(&want) {
            worst = worst.max((a - b).abs());
        }
    }
    assert!(
        worst <= 4.0 / 256.0,
        "largest float-vs-int8 difference {worst}"
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

/// The monitoring baseline of a quantized artifact. Without `--baseline-data` it is
/// carried over as training counted it (on float features) and the output says so; with
/// it, the feature histograms and ranges are recounted on the data quantized to the int8
/// input and dequantized (TFLite's affine mapping, round half away from zero, as the
/// device's feature pipeline quantizes), the edges, prior and score histogram unchanged.
#[test]
fn baseline_is_recounted_on_the_int8_grid_with_baseline_data() {
    use edgeflow_format::baseline::{MonitoringBaseline, OwnedBaseline};
    // 40 rows of discrete values (steps of 1/7): many sit on the float quantile edges.
    let (n, dim) = (40usize, 237usize);
    let rows: Vec<f32> = (0..n * dim)
        .map(|i| ((i / dim * 31 + i % dim * 17) % 23) as f32 / 7.0 - 1.0)
        .collect();
    let x = tmp("baseline_rows.npy");
    std::fs::write(&x, npy_f32(&[n, dim], &rows)).expect("write");
    let monitored = [0u32, 1, 2, 100];
    let bins = 10usize;
    let bin = |edges: &[f32], v: f32| edges.iter().filter(|&&e| e <= v).count();
    let mut b = OwnedBaseline {
        bins: bins as u16,
        feature_index: monitored.to_vec(),
        train_count: n as u32,
        class_prior: vec![0.25; 4],
        score_edges: (1..10).map(|k| k as f32 / 10.0).collect(),
        score_counts: vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        ..Default::default()
    };
    for &f in &monitored {
        let mut v: Vec<f32> = (0..n).map(|r| rows[r * dim + f as usize]).collect();
        v.sort_by(f32::total_cmp);
        let edges: Vec<f32> = (1..bins).map(|k| v[k * n / bins]).collect();
        let mut counts = vec![0u32; bins];
        for &x in &v {
            counts[bin(&edges, x)] += 1;
        }
        b.edges.extend(&edges);
        b.counts.extend(counts);
        b.ranges.extend([v[0], v[n - 1]]);
    }
    let float = float_imu_artifact();
    let a = edgeflow_format::Artifact::parse(&float).expect("artifact");
    let mut parts = edgeflow_format::write::Parts::of(&a);
    let section = b.to_bytes().expect("baseline");
    parts.monitoring_baseline = Some(section.as_slice());
    let model = tmp("baseline_float.edgeflow");
    std::fs::write(&model, parts.assemble().expect("assemble")).expect("write");

    let plain = tmp("baseline_plain.edgeflow");
    let o = edgeflow(&["quantize", s(&model), "--calib", s(&x), "-o", s(&plain)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("on float features") && text(&o).contains("--baseline-data"),
        "{}",
        text(&o)
    );
    let bytes = std::fs::read(&plain).expect("artifact");
    let m = edgeflow_nn::Model::parse(&bytes).expect("valid");
    let kept = OwnedBaseline::from_parsed(
        &MonitoringBaseline::parse(m.artifact().monitoring_baseline.expect("baseline"))
            .expect("baseline"),
    );
    assert_eq!(kept, b);

    let out = tmp("baseline_recounted.edgeflow");
    let o = edgeflow(&[
        "quantize",
        s(&model),
        "--calib",
        s(&x),
        "--baseline-data",
        s(&x),
        "-o",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("recounted on 40 rows"), "{}", text(&o));
    let bytes = std::fs::read(&out).expect("artifact");
    let m = edgeflow_nn::Model::parse(&bytes).expect("valid");
    let q = m.header().inputs[0].quant.expect("int8 input");
    let got = OwnedBaseline::from_parsed(
        &MonitoringBaseline::parse(m.artifact().monitoring_baseline.expect("baseline"))
            .expect("baseline"),
    );
    let mut want = b.clone();
    want.counts.clear();
    want.ranges.clear();
    for (k, &f) in monitored.iter().enumerate() {
        let edges = &b.edges[k * (bins - 1)..(k + 1) * (bins - 1)];
        let mut counts = vec![0u32; bins];
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for r in 0..n {
            let v = rows[r * dim + f as usize];
            let qv = ((v / q.scale).round() as i32 + q.zero_point).clamp(-128, 127);
            let d = q.scale * (qv - q.zero_point) as f32;
            counts[bin(edges, d)] += 1;
            lo = lo.min(d);
            hi = hi.max(d);
        }
        want.counts.extend(counts);
        want.ranges.extend([lo, hi]);
    }
    assert_eq!(got, want);
    // The recount moved values across float edges: the int8 counts differ from training's.
    assert_ne!(
        got.counts, b.counts,
        "the data should exercise the int8 grid"
    );
}
