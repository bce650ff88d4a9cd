//! Single ops against TFLite's reference kernels: the data-movement ops (TRANSPOSE,
//! STRIDED_SLICE, SLICE, SQUEEZE, SPLIT, SPLIT_V), LEAKY_RELU, HARD_SWISH, MAXIMUM, MINIMUM,
//! REDUCE_MAX, RESIZE_NEAREST_NEIGHBOR and ADD / MAXIMUM of two graph inputs. Every
//! fixture in `conformance/ops` (written by `conformance/ops/make_op_fixtures.py`, pinned
//! tensorflow-cpu) is compiled and run on the host, and each of its outputs must equal the
//! golden byte for byte, int8 and float32 alike. Each artifact is then exported to
//! `.tflite`, re-imported and run again with the same bytes out; the committed exported
//! files (`conformance/ops/export/`, rewritten with `EDGEFLOW_BLESS_EXPORT=1`) must be
//! what the exporter writes, and their outputs under TFLite Micro's own interpreter
//! (`conformance/export/run_tflm.py`, the pinned `tflite-micro` wheel) must equal
//! edgeflow's byte for byte.

use std::path::Path;

use edgeflow_tests::{load_npy, root, run_host};

struct Case {
    name: String,
    model: Vec<u8>,
    /// One per model input, in order (NAME.input.npy, NAME.input1.npy, …).
    inputs: Vec<Vec<u8>>,
    /// One per model output, in order (NAME.output.npy, NAME.output1.npy, …).
    golden: Vec<Vec<u8>>,
}

/// The byte contents of `dir/NAME.KIND.npy`, `dir/NAME.KIND1.npy`, … while they exist.
fn npys(dir: &Path, name: &str, kind: &str) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    loop {
        let suffix = if v.is_empty() {
            String::new()
        } else {
            v.len().to_string()
        };
        let p = dir.join(format!("{name}.{kind}{suffix}.npy"));
        if !p.exists() {
            return v;
        }
        v.push(load_npy(&p).bytes());
    }
}

/// Runs an artifact with every input set; returns every output.
fn run_all(artifact: &[u8], inputs: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, String> {
    if let [x] = inputs {
        let m = edgeflow_nn::Model::parse(artifact).map_err(|e| e.to_string())?;
        if m.header().outputs.len() == 1 {
            return run_host(artifact, x)
                .map(|y| vec![y])
                .map_err(|e| e.to_string());
        }
    }
    let m = edgeflow_nn::Model::parse(artifact).map_err(|e| e.to_string())?;
    let mut arena = edgeflow_nn::HostArena::for_model(&m).map_err(|e| e.to_string())?;
    let mut rt = edgeflow_nn::Runtime::new(&m, arena.as_mut_bytes()).map_err(|e| e.to_string())?;
    if m.header().inputs.len() != inputs.len() {
        return Err(format!(
            "the model has {} inputs, the fixture {}",
            m.header().inputs.len(),
            inputs.len()
        ));
    }
    for (k, x) in inputs.iter().enumerate() {
        let slot = rt.input_mut(k).map_err(|e| e.to_string())?;
        if slot.len() != x.len() {
            return Err(format!(
                "input {k}: {} bytes, the model takes {}",
                x.len(),
                slot.len()
            ));
        }
        slot.copy_from_slice(x);
    }
    rt.invoke().map_err(|e| e.to_string())?;
    (0..m.header().outputs.len())
        .map(|k| rt.output(k).map(<[u8]>::to_vec).map_err(|e| e.to_string()))
        .collect()
}

fn cases() -> Vec<Case> {
    let dir = root().join("conformance/ops");
    let mut v: Vec<Case> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tflite"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_str().unwrap().to_string();
            Case {
                model: std::fs::read(&p).unwrap(),
                inputs: npys(&dir, &name, "input"),
                golden: npys(&dir, &name, "output"),
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

/// The fixture names `make_op_fixtures.py` wrote, from its `MANIFEST.json`.
fn manifest_names() -> Vec<String> {
    let path = root().join("conformance/ops/MANIFEST.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut names: Vec<String> = v["fixtures"]
        .as_object()
        .unwrap_or_else(|| panic!("{}: no \"fixtures\" object", path.display()))
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}

#[test]
fn single_ops_match_tflite_reference_kernels_and_export() {
    let all = cases();
    let names: Vec<String> = all.iter().map(|c| c.name.clone()).collect();
    assert_eq!(
        names,
        manifest_names(),
        "the .tflite files in conformance/ops are not the fixtures its MANIFEST.json lists"
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
        let out = run_all(&compiled.artifact, &c.inputs)
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
        let out2 = run_all(&again.artifact, &c.inputs).expect("run the re-import");
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
    for op in [
        "TRANSPOSE",
        "STRIDED_SLICE",
        "RESHAPE",
        "LEAKY_RELU",
        "HARD_SWISH",
        "MAXIMUM",
        "MINIMUM",
        "REDUCE_MAX",
        "RESIZE_NEAREST_NEIGHBOR",
        "ADD",
    ] {
        assert!(seen.contains(op), "no fixture compiled to {op}: {seen:?}");
    }
    println!(
        "{} fixtures bit-exact with TFLite's reference kernels; ops {seen:?}",
        all.len()
    );
}

fn check_export(path: &Path, t: &[u8], ours: &[Vec<u8>], name: &str, failures: &mut Vec<String>) {
    let Ok(committed) = std::fs::read(path) else {
        failures.push(format!(
            "{}: missing; write it with EDGEFLOW_BLESS_EXPORT=1, then run conformance/export/run_tflm.py",
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
    let golden = npys(path.parent().unwrap(), name, "output");
    if golden.is_empty() {
        failures.push(format!(
            "{}: its outputs are missing; run conformance/export/run_tflm.py",
            path.display()
        ));
        return;
    }
    if golden != ours {
        failures.push(format!(
            "{name}: TFLite Micro runs the exported file with other outputs"
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

/// Activation parameters chosen by edgeflow's quantizer as by the TFLite converter: for
/// every int8 fixture whose generator kept the converter's calibration set
/// (`NAME_int8.calib.npy`: the single-input MAXIMUM / MINIMUM cases, alone and after a
/// LEAKY_RELU or an ADD; CONCATENATION / MAXIMUM inputs through a RESHAPE or read by two
/// of them; ADD / MUL that the converter's calibration interpreter runs in place, and
/// controls where it does not), the float twin `NAME_f32.tflite` is quantized with those
/// samples (min/max) and compared with the converter's `NAME_int8.tflite`: same ops, every
/// activation's zero point equal and scale within one ulp (the calibration runs on other
/// float kernels), the constant operands' int8 values equal, and the outputs on the
/// fixture's input bit-identical with TFLite's reference kernels on the converter's model.
#[test]
fn quantizer_parameters_match_the_tflite_converter() {
    use edgeflow_compile::ir::IrTensor;
    use edgeflow_compile::quantize::{quantize, QuantizeOptions, RangeMethod};
    use edgeflow_format::graph::Op;
    let dir = root().join("conformance/ops");
    let mut bases: Vec<String> = std::fs::read_dir(&dir)
        .expect("conformance/ops")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix("_int8.calib.npy"))
                .map(str::to_string)
        })
        .collect();
    bases.sort();
    assert_eq!(
        bases,
        [
            "add_broadcast_not_in_place",
            "add_in_place_on_mul",
            "add_input_read_twice_not_in_place",
            "add_model_output_not_in_place",
            "concat_shared_input",
            "concat_through_reshape",
            "maximum_bcast_last",
            "maximum_of_branches",
            "maximum_shared_input",
            "minimum_after_leaky",
            "minimum_bcast_mid",
            "minimum_same",
            "mul_in_place_on_add"
        ],
        "the calibration sets make_op_fixtures.py keeps"
    );
    let qp = |t: &IrTensor| {
        t.quant
            .as_ref()
            .map(|q| (q.scales.clone(), q.zero_points.clone()))
    };
    let close = |a: &[f32], b: &[f32]| {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (x.to_bits() as i64 - y.to_bits() as i64).abs() <= 1)
    };
    let mut failures = Vec::new();
    for base in &bases {
        let float = edgeflow_compile::import::import(
            &std::fs::read(dir.join(format!("{base}_f32.tflite"))).expect("float twin"),
        )
        .expect("import float twin");
        let theirs = edgeflow_compile::import::import(
            &std::fs::read(dir.join(format!("{base}_int8.tflite"))).expect("int8 fixture"),
        )
        .expect("import int8 fixture");
        let n: usize = float.tensors[float.inputs[0]]
            .shape
            .iter()
            .map(|&d| d as usize)
            .product();
        let edgeflow_tests::Array::F32(all) = load_npy(&dir.join(format!("{base}_int8.calib.npy")))
        else {
            panic!("{base}: calibration set is not float32")
        };
        let calib: Vec<Vec<f32>> = all.chunks(n).map(<[f32]>::to_vec).collect();
        // The converter's own parameters: min/max ranges without bias correction.
        let opts = QuantizeOptions {
            method: RangeMethod::MinMax,
            per_channel: true,
            float_io: false,
            bias_correction: false,
        };
        let ours = quantize(&float, &calib, &opts).unwrap_or_else(|e| panic!("{base}: {e}"));
        let seq =
            |g: &edgeflow_compile::ir::Graph| g.ops.iter().map(|o| o.op.name()).collect::<Vec<_>>();
        assert_eq!(seq(&ours), seq(&theirs), "{base}: op sequences");
        let mut tensors = vec![("input".to_string(), ours.inputs[0], theirs.inputs[0])];
        for (i, (o, t)) in ours.ops.iter().zip(&theirs.ops).enumerate() {
            tensors.push((format!("op {i} {} output", o.op.name()), o.output, t.output));
            if matches!(
                o.op,
                Op::Maximum | Op::Minimum | Op::Concatenation(_) | Op::Add(_) | Op::Mul(_)
            ) {
                for (k, (&a, &b)) in o.inputs.iter().zip(&t.inputs).enumerate() {
                    tensors.push((format!("op {i} {} input {k}", o.op.name()), a, b));
                    let (x, y) = (&ours.tensors[a], &theirs.tensors[b]);
                    if x.data.is_some() && x.data != y.data {
                        failures.push(format!(
                            "{base}: op {i} constant input {k}: int8 values differ: ours {:?}, converter {:?}",
                            x.data, y.data
                        ));
                    }
                }
            }
        }
        for (what, a, b) in tensors {
            let ((sa, za), (sb, zb)) = (
                qp(&ours.tensors[a]).unwrap_or_default(),
                qp(&theirs.tensors[b]).unwrap_or_default(),
            );
            if za != zb || !close(&sa, &sb) {
                failures.push(format!(
                    "{base}: {what}: ours {sa:?}/{za:?}, converter {sb:?}/{zb:?}"
                ));
            }
        }
        let art = edgeflow_compile::emit(&ours, base).unwrap_or_else(|e| panic!("{base}: {e}"));
        let input = load_npy(&dir.join(format!("{base}_int8.input.npy"))).bytes();
        let golden = load_npy(&dir.join(format!("{base}_int8.output.npy"))).bytes();
        let out = run_host(&art.artifact, &input).unwrap_or_else(|e| panic!("{base}: {e}"));
        if out != golden {
            failures.push(format!(
                "{base}: {} of {} int8 outputs differ from TFLite's on the converter's model",
                out.iter().zip(&golden).filter(|(a, b)| a != b).count(),
                golden.len()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!(
        "{} models quantized from float: parameters as the converter's, outputs bit-identical",
        bases.len()
    );
}
