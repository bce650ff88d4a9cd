//! Quantization-parameter forms that older TFLite converters wrote and TFLite Micro runs,
//! which edgeflow's importer accepts the way TFLM interprets them (issue 11):
//!
//! 1. a bias (int32) whose per-channel parameters name a dimension it does not have (the
//!    filter's quantized dimension, 3 for a depthwise filter): TFLM never reads an int32
//!    tensor's quantization, so the parameters are ignored;
//! 2. a per-channel filter with one zero point for all its scales: TFLM's per-channel
//!    kernels never index zero points per channel, so the one value holds for all.
//!
//! Each fixture is a conformance model rewritten to have the form (through edgeflow's
//! own exporter, so the rest of the file is unchanged) and committed under
//! `conformance/tolerance/` (`EDGEFLOW_BLESS_TOLERANCE=1` rewrites them); TFLite Micro's
//! outputs for them (`conformance/tolerance/run_tflm.py`, pinned tflite-micro) are
//! committed beside, and edgeflow's must equal them bit for bit. A form TFLM refuses too
//! (per-channel scales on an int8 activation that do not match its shape) stays an error
//! naming the tensor.

use edgeflow_compile::ir::{Graph, IrQuant};
use edgeflow_tests::{compare, fixtures, load_npy, root, run_host};

fn graph_of(name: &str) -> (Graph, Vec<u8>) {
    let f = fixtures()
        .into_iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("fixture {name}"));
    let c =
        edgeflow_compile::compile(&std::fs::read(&f.model).expect("model"), name).expect("compile");
    let (g, _) = edgeflow_compile::load::load(&c.artifact).expect("load");
    (g, load_npy(&f.input).bytes())
}

/// The bias and filter of the first weighted op of `g`.
fn weights(g: &Graph) -> (usize, usize) {
    let op = g
        .ops
        .iter()
        .find(|o| o.inputs.len() == 3)
        .expect("an op with a bias");
    (op.inputs[1], op.inputs[2])
}

fn crafted() -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    // 1. Bias with per-channel scales on dimension 3 (it has rank 1).
    let (mut g, input) = graph_of("dw_m2_valid_s2_int8");
    let (w, b) = weights(&g);
    let channels = g.tensors[b].shape[0] as usize;
    let ws = g.tensors[w].quant.clone().expect("filter quant").scales;
    let xs = g.tensors[g.ops[0].inputs[0]]
        .quant
        .clone()
        .expect("input quant")
        .scales[0];
    g.tensors[b].quant = Some(IrQuant {
        scales: ws.iter().map(|s| s * xs).collect(),
        zero_points: vec![0; channels],
        axis: 3,
    });
    let t = edgeflow_compile::export::export_tflite(&g).expect("export");
    out.push(("bias_axis_past_rank_int8".to_string(), t, input));
    // 2. A per-channel filter with a single zero point.
    let (mut g, input) = graph_of("conv_same_s1_int8");
    let (w, _) = weights(&g);
    let q = g.tensors[w].quant.as_mut().expect("filter quant");
    assert!(q.scales.len() > 1, "a per-channel filter");
    q.zero_points = vec![0];
    let t = edgeflow_compile::export::export_tflite(&g).expect("export");
    out.push(("filter_one_zero_point_int8".to_string(), t, input));
    out
}

#[test]
fn older_quantization_forms_run_as_in_tflite_micro() {
    let dir = root().join("conformance/tolerance");
    let bless = std::env::var("EDGEFLOW_BLESS_TOLERANCE").as_deref() == Ok("1");
    for (name, t, input) in crafted() {
        let c = edgeflow_compile::compile(&t, &name)
            .unwrap_or_else(|e| panic!("{name}: TFLM runs this form, edgeflow refuses it: {e}"));
        let ours = run_host(&c.artifact, &input).expect("run");
        let path = dir.join(format!("{name}.tflite"));
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &t).unwrap();
            std::fs::write(dir.join(format!("{name}.input.bin")), &input).unwrap();
            continue;
        }
        let committed = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; bless with EDGEFLOW_BLESS_TOLERANCE=1",
                path.display()
            )
        });
        assert!(committed == t, "{name}: differs from {}", path.display());
        let golden = dir.join(format!("{name}.output_tflm.npy"));
        let golden = load_npy(&golden);
        compare(&ours, &golden).unwrap_or_else(|e| panic!("{name} vs TFLite Micro: {e}"));
        println!("{name}: imported, output equals TFLite Micro's");
    }
}

#[test]
fn per_channel_scales_on_an_activation_are_refused_naming_the_tensor() {
    let (mut g, _) = graph_of("conv_same_s1_int8");
    let x = g.ops[0].inputs[0];
    let q = g.tensors[x].quant.as_mut().expect("input quant");
    q.scales = vec![q.scales[0]; 5];
    q.zero_points = vec![q.zero_points[0]; 5];
    q.axis = 3;
    let t = edgeflow_compile::export::export_tflite(&g).expect("export");
    let e = edgeflow_compile::compile(&t, "bad")
        .expect_err("mismatched activation scales")
        .to_string();
    assert!(
        e.contains(&format!("tensor {x}")) && e.contains("per-channel scales do not match"),
        "{e}"
    );
}
