//! `.tflite` export (`edgeflow_compile::export`): every conformance fixture (int8 and
//! float32) is compiled to an artifact, read back from the artifact, written as
//! `.tflite`, and
//!
//! 1. imported again by edgeflow's own importer: the artifact it gives must produce
//!    bit-identical outputs to the original's (the round trip);
//! 2. compared with the committed `conformance/export/NAME.tflite` (so the files TFLite
//!    Micro ran are the ones this exporter writes; `EDGEFLOW_BLESS_EXPORT=1` rewrites
//!    them), whose outputs under TFLite Micro's own interpreter (the `tflite-micro`
//!    wheel's Python binding of the TFLM C++ interpreter, run by
//!    `conformance/export/run_tflm.py`, pinned) are committed as `NAME.output.npy`:
//!    edgeflow's int8 outputs must equal them bit for bit, float32 ones within the
//!    fixtures' 1e-5 relative tolerance (edgeflow's f32 kernels may sum in another
//!    order; the test prints how many are bit-identical).

use edgeflow_tests::{compare, fixtures, load_npy, root, run_host};

/// The float32 fixtures whose exported file's output in TFLite Micro is within the 1e-5
/// tolerance but not bit-identical (measured by this test, `run_tflm.py` goldens).
const NOT_BIT_IDENTICAL_F32: [&str; 3] = ["concat_requant_f32", "softmax_beta_f32", "softmax_f32"];

#[test]
fn exported_tflite_runs_as_the_artifact_in_edgeflow_and_in_tflite() {
    let dir = root().join("conformance/export");
    let bless = std::env::var("EDGEFLOW_BLESS_EXPORT").as_deref() == Ok("1");
    let (mut checked, mut identical) = (0, 0);
    let mut within_tolerance: Vec<String> = Vec::new();
    let all = fixtures();
    for f in &all {
        let name = &f.name;
        let model = std::fs::read(&f.model).expect("fixture");
        let c = edgeflow_compile::compile(&model, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (g, _) = edgeflow_compile::load::load(&c.artifact).expect("artifact loads");
        let t = edgeflow_compile::export::export_tflite(&g)
            .unwrap_or_else(|e| panic!("{name}: export: {e}"));
        let c2 = edgeflow_compile::compile(&t, name)
            .unwrap_or_else(|e| panic!("{name}: the exported .tflite does not import: {e}"));
        let input = load_npy(&f.input).bytes();
        let a = run_host(&c.artifact, &input).unwrap_or_else(|e| panic!("{name}: {e}"));
        let b = run_host(&c2.artifact, &input).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            a, b,
            "{name}: the re-imported export computes something else"
        );
        let path = dir.join(format!("{name}.tflite"));
        if bless {
            // Rewriting: TFLM's outputs of the new files come from run_tflm.py.
            std::fs::write(&path, &t).expect("write export");
            continue;
        }
        let committed = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; write it with EDGEFLOW_BLESS_EXPORT=1 and run conformance/export/run_tflm.py",
                path.display()
            )
        });
        assert!(
            committed == t,
            "{name}: the exporter's output differs from {} (rewrite with EDGEFLOW_BLESS_EXPORT=1, then rerun conformance/export/run_tflm.py)",
            path.display()
        );
        let golden = dir.join(format!("{name}.output.npy"));
        if !golden.exists() {
            panic!(
                "{}: missing; run conformance/export/run_tflm.py",
                golden.display()
            );
        }
        // int8: bit for bit. float32: edgeflow's f32 kernels sum in another order than
        // TFLM's reference kernels on some models, so within the fixtures' tolerance
        // (1e-5 relative), and the bit-identical ones are counted.
        let tflm = load_npy(&golden);
        if a == tflm.bytes() {
            identical += 1;
        } else if matches!(tflm, edgeflow_tests::Array::F32(_)) {
            compare(&a, &tflm).unwrap_or_else(|e| panic!("{name} vs TFLite Micro: {e}"));
            within_tolerance.push(name.clone());
        } else {
            panic!(
                "{name}: edgeflow's int8 output differs from TFLite Micro's on the exported file ({} of {} bytes differ)",
                a.iter().zip(tflm.bytes()).filter(|(x, y)| *x != y).count(),
                tflm.bytes().len()
            );
        }
        checked += 1;
    }
    println!(
        "{checked} fixtures exported to .tflite: re-import bit-identical; outputs equal TFLite Micro's interpreter's on the exported files ({identical} bit-identical, every int8 one; the other float32 ones within 1e-5 relative)"
    );
    if bless {
        println!("rewrote conformance/export/*.tflite; now run conformance/export/run_tflm.py");
        return;
    }
    assert_eq!(checked, all.len());
    // The float32 fixtures measured not bit-identical with TFLM's reference kernels (their
    // sums run in another order); every other fixture must stay bit-identical.
    within_tolerance.sort();
    assert_eq!(
        within_tolerance, NOT_BIT_IDENTICAL_F32,
        "float32 exports that are not bit-identical with TFLite Micro"
    );
}

#[test]
fn what_tflite_cannot_express_is_refused_naming_the_op() {
    use edgeflow_format::graph::Op;
    let f = fixtures()
        .into_iter()
        .find(|f| f.name == "pools_fused_int8")
        .expect("fixture");
    let c = edgeflow_compile::compile(&std::fs::read(&f.model).expect("model"), &f.name)
        .expect("compile");
    let (g, _) = edgeflow_compile::load::load(&c.artifact).expect("load");
    let i = g
        .ops
        .iter()
        .position(|o| matches!(o.op, Op::MaxPool2d(_) | Op::AveragePool2d(_)))
        .expect("a pool");
    // A leading padding that is neither SAME's nor VALID's.
    let mut bad = g.clone();
    if let Op::MaxPool2d(p) | Op::AveragePool2d(p) = &mut bad.ops[i].op {
        p.pad[0] += 3;
    }
    let e = edgeflow_compile::export::export_tflite(&bad)
        .expect_err("odd padding")
        .to_string();
    assert!(
        e.contains(&format!("op {i} (")) && e.contains("neither TFLite's SAME nor VALID"),
        "{e}"
    );
    // A clamp that is no fused activation.
    let mut bad = g.clone();
    if let Op::MaxPool2d(p) | Op::AveragePool2d(p) = &mut bad.ops[i].op {
        p.clamp.min_f = 0.5;
        p.clamp.max_f = 2.0;
    }
    let e = edgeflow_compile::export::export_tflite(&bad)
        .expect_err("odd clamp")
        .to_string();
    assert!(e.contains("none of TFLite's fused activations"), "{e}");
}
