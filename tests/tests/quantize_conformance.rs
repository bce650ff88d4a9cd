//! The edgeflow quantizer against the TFLite converter on the conformance fixtures.
//!
//! For every fixture that `conformance/make_fixtures.py` quantized from a float Keras
//! model, `conformance/make_quant_fixtures.py` saved the converter's calibration set and
//! the float twin (`conformance/quant/NAME.{calib.npy,f32.tflite}`). Here edgeflow
//! quantizes the float twin with the same samples (min/max ranges, as the converter) and
//! the result is compared with the converter's `NAME.tflite`: op sequence, every
//! activation scale and zero point, every int8 weight and int32 bias, and the outputs on
//! the fixture's input.
//!
//! Agreement at the time of writing (printed by the test): every weight scale, int8
//! weight, int32 bias, zero point and input scale is identical; intermediate activation
//! scales agree within 1 ulp (88 of 103 bit-equal); every int8 output is bit-identical
//! with TFLite Micro running the converter's model, the float-output model within 1 ulp.

use edgeflow_compile::ir::{Graph, IrTensor};
use edgeflow_compile::quantize::{quantize, QuantizeOptions, RangeMethod};
use edgeflow_tests::{load_npy, root, run_host, Array};

struct Case {
    name: String,
    float: Graph,
    calib: Vec<Vec<f32>>,
}

fn cases() -> Vec<Case> {
    let dir = root().join("conformance/quant");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("conformance/quant exists")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".calib.npy"))
                .map(str::to_string)
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(dir.join(format!("{name}.f32.tflite"))).expect("float twin");
            let float = edgeflow_compile::import::import(&bytes).expect("import float twin");
            let n: usize = float.tensors[float.inputs[0]]
                .shape
                .iter()
                .map(|&d| d as usize)
                .product();
            let Array::F32(all) = load_npy(&dir.join(format!("{name}.calib.npy"))) else {
                panic!("{name}: calibration set is not float32")
            };
            let calib = all.chunks(n).map(<[f32]>::to_vec).collect();
            Case { name, float, calib }
        })
        .collect()
}

fn options(name: &str) -> QuantizeOptions {
    QuantizeOptions {
        method: RangeMethod::MinMax,
        per_channel: name != "per_tensor_int8",
        float_io: name.ends_with("floatio"),
        bias_correction: false,
    }
}

#[derive(Default, Debug)]
struct Agreement {
    activations: usize,
    activations_equal: usize,
    activation_scales_exact: usize,
    weights: usize,
    weights_equal: usize,
    weight_scales: usize,
    weight_scales_equal: usize,
    biases: usize,
    biases_equal: usize,
    outputs: usize,
    outputs_equal: usize,
    outputs_max_diff: i32,
    notes: Vec<String>,
}

/// Scales agree within one unit in the last place: the converter calibrates with
/// TensorFlow's float kernels, edgeflow with edgeflow-nn's, and their accumulation order
/// differs, so an intermediate activation's observed min/max (hence its scale) may differ
/// in the last bit. Exact equality is counted separately.
fn scale_eq(a: f32, b: f32) -> bool {
    (a.to_bits() as i64 - b.to_bits() as i64).abs() <= 1
}

fn qp(t: &IrTensor) -> (Vec<f32>, Vec<i64>) {
    t.quant.as_ref().map_or((vec![], vec![]), |q| {
        (q.scales.clone(), q.zero_points.clone())
    })
}

fn compare(name: &str, ours: &Graph, theirs: &Graph, a: &mut Agreement) {
    let seq = |g: &Graph| g.ops.iter().map(|o| o.op.name()).collect::<Vec<_>>();
    if seq(ours) != seq(theirs) {
        a.notes.push(format!(
            "{name}: op sequences differ: ours {:?}, converter {:?}",
            seq(ours),
            seq(theirs)
        ));
        return;
    }
    let act = |a: &mut Agreement, x: &IrTensor, y: &IrTensor, what: String| {
        a.activations += 1;
        let ((sx, zx), (sy, zy)) = (qp(x), qp(y));
        if x.dtype != y.dtype {
            a.notes.push(format!(
                "{name}: {what}: dtype {:?} vs {:?}",
                x.dtype, y.dtype
            ));
        } else if sx.len() == sy.len()
            && sx.iter().zip(&sy).all(|(p, q)| scale_eq(*p, *q))
            && zx == zy
        {
            a.activations_equal += 1;
            a.activation_scales_exact += (sx == sy) as usize;
        } else {
            a.notes.push(format!(
                "{name}: {what}: ours {sx:?}/{zx:?}, converter {sy:?}/{zy:?}"
            ));
        }
    };
    act(
        a,
        &ours.tensors[ours.inputs[0]],
        &theirs.tensors[theirs.inputs[0]],
        "input".into(),
    );
    for (i, (o, t)) in ours.ops.iter().zip(&theirs.ops).enumerate() {
        act(
            a,
            &ours.tensors[o.output],
            &theirs.tensors[t.output],
            format!("op {i} {} output", o.op.name()),
        );
        if matches!(
            o.op.name(),
            "CONV_2D" | "DEPTHWISE_CONV_2D" | "FULLY_CONNECTED"
        ) {
            let (wo, wt) = (&ours.tensors[o.inputs[1]], &theirs.tensors[t.inputs[1]]);
            let (so, st) = (qp(wo).0, qp(wt).0);
            a.weight_scales += so.len().max(st.len());
            a.weight_scales_equal += so.iter().zip(&st).filter(|(p, q)| p == q).count();
            let (dov, dtv) = (
                wo.data.clone().unwrap_or_default(),
                wt.data.clone().unwrap_or_default(),
            );
            a.weights += dov.len().max(dtv.len());
            a.weights_equal += dov.iter().zip(&dtv).filter(|(p, q)| p == q).count();
            if let (Some(&bo), Some(&bt)) = (o.inputs.get(2), t.inputs.get(2)) {
                let (bo, bt) = (
                    ours.tensors[bo].data.clone().unwrap_or_default(),
                    theirs.tensors[bt].data.clone().unwrap_or_default(),
                );
                a.biases += bo.len().max(bt.len()) / 4;
                let eq = bo
                    .chunks(4)
                    .zip(bt.chunks(4))
                    .filter(|(p, q)| p == q)
                    .count();
                a.biases_equal += eq;
                if eq * 4 != bo.len().max(bt.len()) {
                    a.notes.push(format!(
                        "{name}: op {i}: {} of {} biases differ",
                        bo.len() / 4 - eq,
                        bo.len() / 4
                    ));
                }
            }
        }
    }
}

#[test]
fn quantizer_matches_the_tflite_converter() {
    let cases = cases();
    assert!(
        cases.len() >= 20,
        "expected the committed calibration sets, found {}",
        cases.len()
    );
    let mut a = Agreement::default();
    for c in &cases {
        let ours = quantize(&c.float, &c.calib, &options(&c.name))
            .unwrap_or_else(|e| panic!("{}: quantize: {e}", c.name));
        let fixture = root().join("conformance/fixtures");
        let theirs_bytes =
            std::fs::read(fixture.join(format!("{}.tflite", c.name))).expect("int8 fixture");
        let theirs = edgeflow_compile::import::import(&theirs_bytes).expect("import int8 fixture");
        compare(&c.name, &ours, &theirs, &mut a);

        // Outputs on the fixture's input, against TFLite Micro's output of the converter's model.
        let art = edgeflow_compile::emit(&ours, &c.name)
            .unwrap_or_else(|e| panic!("{}: emit: {e}", c.name));
        let input = load_npy(&fixture.join(format!("{}.input.npy", c.name))).bytes();
        let out =
            run_host(&art.artifact, &input).unwrap_or_else(|e| panic!("{}: run: {e}", c.name));
        match load_npy(&fixture.join(format!("{}.output.npy", c.name))) {
            Array::I8(r) => {
                a.outputs += r.len();
                let mut differ = 0;
                for (x, y) in out.iter().zip(&r) {
                    let d = (*x as i8 as i32 - *y as i32).abs();
                    a.outputs_equal += (d == 0) as usize;
                    differ += (d != 0) as usize;
                    a.outputs_max_diff = a.outputs_max_diff.max(d);
                }
                if differ > 0 {
                    a.notes.push(format!(
                        "{}: {differ} of {} outputs differ",
                        c.name,
                        r.len()
                    ));
                }
            }
            Array::F32(r) => {
                let o: Vec<f32> = out
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                a.outputs += r.len();
                let eq = o
                    .iter()
                    .zip(&r)
                    .filter(|(x, y)| ((**x as f64 - **y as f64) / **y as f64).abs() <= 1e-6)
                    .count();
                a.outputs_equal += eq;
                if eq != r.len() {
                    a.notes.push(format!(
                        "{}: float outputs ours {o:?}, TFLite Micro {r:?}",
                        c.name
                    ));
                }
            }
        }
    }
    eprintln!(
        "quantizer vs TFLite converter over {} models:\n  activation zero points equal and scales within 1 ulp: {}/{} (scales bit-equal: {})\n  weight scales bit-equal: {}/{}\n  int8 weights equal: {}/{}\n  int32 biases equal: {}/{}\n  outputs equal (int8 bit-exact, float within 1e-6 rel.): {}/{} (max int8 |diff| {})",
        cases.len(), a.activations_equal, a.activations, a.activation_scales_exact, a.weight_scales_equal, a.weight_scales,
        a.weights_equal, a.weights, a.biases_equal, a.biases, a.outputs_equal, a.outputs, a.outputs_max_diff
    );
    assert!(a.notes.is_empty(), "disagreements:\n{}", a.notes.join("\n"));
    assert_eq!(a.activations_equal, a.activations);
    assert_eq!(a.weight_scales_equal, a.weight_scales);
    assert_eq!(a.weights_equal, a.weights);
    assert_eq!(a.biases_equal, a.biases);
    assert_eq!(a.outputs_equal, a.outputs);
}

/// The artifact front end: a float artifact (the `.tflite` compiled by edgeflow) loaded
/// back into the IR quantizes to exactly the same int8 artifact as the `.tflite` itself.
#[test]
fn float_artifact_and_tflite_quantize_identically() {
    let cases = cases();
    assert!(!cases.is_empty());
    for c in &cases {
        let o = options(&c.name);
        let from_tflite = quantize(&c.float, &c.calib, &o).expect("quantize tflite");
        let float_art = edgeflow_compile::emit(&c.float, &c.name).expect("emit float");
        let (loaded, sections) =
            edgeflow_compile::load::load(&float_art.artifact).expect("load float artifact");
        assert_eq!(sections, Default::default(), "{}", c.name);
        let from_artifact = quantize(&loaded, &c.calib, &o).expect("quantize artifact");
        let a = edgeflow_compile::emit(&from_tflite, &c.name).expect("emit a");
        let b = edgeflow_compile::emit(&from_artifact, &c.name).expect("emit b");
        assert!(
            a.artifact == b.artifact,
            "{}: the two front ends differ",
            c.name
        );
    }
}
