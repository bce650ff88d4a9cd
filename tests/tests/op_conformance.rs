//! The data-movement ops (TRANSPOSE, STRIDED_SLICE, SLICE, SQUEEZE) against TFLite's
//! reference kernels: every fixture in `conformance/ops` (written by
//! `conformance/ops/make_op_fixtures.py`, pinned tensorflow-cpu) is compiled and run on
//! the host, and its output must equal the golden byte for byte, float32 included (the
//! ops only move elements). Each artifact is then exported to `.tflite`, re-imported and
//! run again with the same bytes out; the committed exported files
//! (`conformance/ops/export/`, rewritten with `EDGEFLOW_BLESS_EXPORT=1`) must be what the
//! exporter writes, and their outputs under TFLite's reference kernels
//! (`make_op_fixtures.py --exports`) must equal edgeflow's.

use std::path::Path;

use edgeflow_tests::{load_npy, root, run_host};

struct Case {
    name: String,
    model: Vec<u8>,
    input: Vec<u8>,
    golden: Vec<u8>,
}

fn cases() -> Vec<Case> {
    let dir = root().join("conformance/ops");
    let mut v: Vec<Case> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tflite"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_str().unwrap().to_string();
            let npy = |s: &str| load_npy(&dir.join(format!("{name}.{s}.npy"))).bytes();
            Case {
                model: std::fs::read(&p).unwrap(),
                input: npy("input"),
                golden: npy("output"),
                name,
            }
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

fn op_names(artifact: &[u8]) -> Vec<&'static str> {
    let m = edgeflow_nn::Model::parse(artifact).expect("parse");
    m.ops().map(|d| d.op.name()).collect()
}

#[test]
fn movement_ops_match_tflite_reference_kernels_and_export() {
    let all = cases();
    assert!(
        all.len() >= 30,
        "expected the committed fixtures, found {}",
        all.len()
    );
    let bless = std::env::var("EDGEFLOW_BLESS_EXPORT").as_deref() == Ok("1");
    let export_dir = root().join("conformance/ops/export");
    let mut seen = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for c in &all {
        let compiled = match edgeflow_compile::compile(&c.model, &c.name) {
            Ok(x) => x,
            Err(e) => {
                failures.push(format!("{}: compile: {e}", c.name));
                continue;
            }
        };
        seen.extend(op_names(&compiled.artifact));
        let out = run_host(&compiled.artifact, &c.input)
            .unwrap_or_else(|e| panic!("{}: run: {e}", c.name));
        if out != c.golden {
            failures.push(format!(
                "{}: output differs from TFLite's reference kernels",
                c.name
            ));
            continue;
        }
        // Export round trip.
        let (g, _) = edgeflow_compile::load::load(&compiled.artifact).expect("load");
        let t = edgeflow_compile::export::export_tflite(&g)
            .unwrap_or_else(|e| panic!("{}: export: {e}", c.name));
        let again = edgeflow_compile::compile(&t, &c.name)
            .unwrap_or_else(|e| panic!("{}: the export does not import: {e}", c.name));
        let out2 = run_host(&again.artifact, &c.input).expect("run the re-import");
        assert_eq!(
            out2, out,
            "{}: the re-imported export computes something else",
            c.name
        );
        let path = export_dir.join(format!("{}.tflite", c.name));
        if bless {
            std::fs::create_dir_all(&export_dir).unwrap();
            std::fs::write(&path, &t).unwrap();
            continue;
        }
        check_export(&path, &t, &out, &c.name, &mut failures);
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures fail:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
    for op in ["TRANSPOSE", "STRIDED_SLICE"] {
        assert!(seen.contains(op), "no fixture compiled to {op}: {seen:?}");
    }
    println!(
        "{} fixtures bit-exact with TFLite's reference kernels; ops {seen:?}",
        all.len()
    );
}

fn check_export(path: &Path, t: &[u8], ours: &[u8], name: &str, failures: &mut Vec<String>) {
    let Ok(committed) = std::fs::read(path) else {
        failures.push(format!(
            "{}: missing; write it with EDGEFLOW_BLESS_EXPORT=1, then run make_op_fixtures.py --exports",
            path.display()
        ));
        return;
    };
    if committed != t {
        failures.push(format!(
            "{name}: the exporter's output differs from {}",
            path.display()
        ));
        return;
    }
    let golden = path.with_extension("output.npy");
    if !golden.exists() {
        failures.push(format!(
            "{}: missing; run make_op_fixtures.py --exports",
            golden.display()
        ));
        return;
    }
    if load_npy(&golden).bytes() != ours {
        failures.push(format!(
            "{name}: TFLite runs the exported file with other outputs"
        ));
    }
}

/// A slice that would read outside its input never reaches a kernel: the artifact is
/// refused at validation, naming the op and the reason.
#[test]
fn a_slice_outside_its_input_is_refused_naming_the_op() {
    let c = cases()
        .into_iter()
        .find(|c| c.name == "sslice_r2_step2_f32")
        .expect("fixture");
    let compiled = edgeflow_compile::compile(&c.model, &c.name).expect("compile");
    let (mut g, _) = edgeflow_compile::load::load(&compiled.artifact).expect("load");
    let i = g
        .ops
        .iter()
        .position(|o| matches!(o.op, edgeflow_format::graph::Op::StridedSlice(_)))
        .expect("a strided slice");
    if let edgeflow_format::graph::Op::StridedSlice(p) = &mut g.ops[i].op {
        p.begin[1] += 5;
    }
    let e = edgeflow_compile::emit(&g, &c.name)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("STRIDED_SLICE") && e.contains("outside the input"),
        "{e}"
    );
}
