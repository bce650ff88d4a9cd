//! `edgeflow run` on models with several inputs or outputs, against TFLite: the fixtures
//! are `conformance/ops/make_op_fixtures.py`'s (ADD and MAXIMUM of two graph inputs,
//! SPLIT into three outputs; goldens from TFLite's reference kernels), run from the
//! `.tflite` itself with one `--input` per model input and one `--output` per output.
//! Each written `.npy` must hold exactly TFLite's output; a missing input, a shape
//! mismatch or a wrong `--output` count is an error naming the tensor and both shapes.

mod common;
use common::{edgeflow, root, s, text, tmp_in};

use std::path::{Path, PathBuf};

fn ops(name: &str) -> PathBuf {
    root().join("conformance/ops").join(name)
}

/// The element bytes of a `.npy` file (after its header).
fn payload(path: &Path) -> Vec<u8> {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (hl, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        _ => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
    };
    b[start + hl..].to_vec()
}

#[test]
fn two_input_models_run_with_tflites_outputs() {
    for name in [
        "add_two_inputs_f32",
        "add_two_inputs_int8",
        "maximum_two_inputs_f32",
        "maximum_two_inputs_int8",
    ] {
        let model = ops(&format!("{name}.tflite"));
        let (a, b) = (
            ops(&format!("{name}.input.npy")),
            ops(&format!("{name}.input1.npy")),
        );
        let y = tmp_in("multi_io", &format!("{name}.y.npy"));
        let o = edgeflow(&[
            "run",
            s(&model),
            "--input",
            s(&a),
            "--input",
            s(&b),
            "--output",
            s(&y),
        ]);
        assert!(o.status.success(), "{name}: {}", text(&o));
        assert_eq!(
            payload(&y),
            payload(&ops(&format!("{name}.output.npy"))),
            "{name}: edgeflow's output differs from TFLite's"
        );
        // Inputs named by index, in any order, give the same result.
        let y2 = tmp_in("multi_io", &format!("{name}.y2.npy"));
        let o = edgeflow(&[
            "run",
            s(&model),
            "--input",
            &format!("1={}", s(&b)),
            "--input",
            &format!("0={}", s(&a)),
            "--output",
            s(&y2),
        ]);
        assert!(o.status.success(), "{name}: {}", text(&o));
        assert_eq!(payload(&y2), payload(&y), "{name}: K=path inputs");
    }
}

#[test]
fn a_split_writes_one_file_per_output_equal_to_tflites() {
    for name in ["split_3_axis1_f32", "split_3_axis1_int8"] {
        let model = ops(&format!("{name}.tflite"));
        let x = ops(&format!("{name}.input.npy"));
        let ys: Vec<PathBuf> = (0..3)
            .map(|k| tmp_in("multi_io", &format!("{name}.y{k}.npy")))
            .collect();
        let mut args = vec!["run", s(&model), "--input", s(&x)];
        for y in &ys {
            args.extend(["--output", s(y)]);
        }
        let o = edgeflow(&args);
        assert!(o.status.success(), "{name}: {}", text(&o));
        for (k, y) in ys.iter().enumerate() {
            let golden = if k == 0 {
                ops(&format!("{name}.output.npy"))
            } else {
                ops(&format!("{name}.output{k}.npy"))
            };
            assert_eq!(payload(y), payload(&golden), "{name}: output {k}");
        }
        // Two --output for three outputs: refused, saying how many there are.
        let o = edgeflow(&[
            "run",
            s(&model),
            "--input",
            s(&x),
            "--output",
            s(&ys[0]),
            "--output",
            s(&ys[1]),
        ]);
        assert!(!o.status.success());
        assert!(text(&o).contains("the model has 3 outputs"), "{}", text(&o));
    }
}

#[test]
fn a_missing_or_misshapen_input_names_the_tensor_and_both_shapes() {
    let name = "maximum_two_inputs_f32";
    let model = ops(&format!("{name}.tflite"));
    let (a, b) = (
        ops(&format!("{name}.input.npy")),
        ops(&format!("{name}.input1.npy")),
    );
    // One input for two.
    let o = edgeflow(&["run", s(&model), "--input", s(&a)]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains("the model has 2 inputs and 1 was given") && t.contains("input 1"),
        "{t}"
    );
    assert!(t.contains("shape [1, 5, 1]"), "{t}");
    // Swapped: input 0 gets the [1, 5, 1] tensor.
    let o = edgeflow(&["run", s(&model), "--input", s(&b), "--input", s(&a)]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains("model input 0") && t.contains("[1, 5, 1]") && t.contains("[5, 5, 3]"),
        "{t}"
    );
    // Three inputs for two.
    let o = edgeflow(&[
        "run",
        s(&model),
        "--input",
        s(&a),
        "--input",
        s(&b),
        "--input",
        s(&b),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("the model has 2 inputs"), "{}", text(&o));
}
