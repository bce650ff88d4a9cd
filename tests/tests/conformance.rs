//! Every conformance fixture, compiled and run on the host, against TFLite Micro's output:
//! int8 bit-exact, float32 within 1e-5 relative (see `edgeflow_tests::compare`); and the
//! host path (`invoke_packed`, op records decoded once and reused) bit-identical to the
//! device path (`invoke`, each record decoded per op) on every fixture, both loops
//! reporting the same ops to their per-op callbacks.

use edgeflow_tests::{compare, fixtures, load_npy, run_host, run_host_packed};

#[test]
fn all_fixtures_match_tflite_micro() {
    let fixtures = fixtures();
    assert!(
        fixtures.len() >= 40,
        "expected the committed fixtures, found {}",
        fixtures.len()
    );
    let mut failures = Vec::new();
    for f in &fixtures {
        let tflite = std::fs::read(&f.model).expect("read model");
        let compiled = match edgeflow_compile::compile(&tflite, &f.name) {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{}: compile: {e}", f.name));
                continue;
            }
        };
        let input = load_npy(&f.input).bytes();
        let expected = load_npy(&f.output);
        match run_host(&compiled.artifact, &input) {
            Ok(out) => {
                if let Err(e) = compare(&out, &expected) {
                    failures.push(format!("{}: {e}", f.name));
                }
                match run_host_packed(&compiled.artifact, &input) {
                    Ok(runs) => {
                        for (k, p) in runs.iter().enumerate() {
                            if *p != out {
                                failures.push(format!(
                                    "{}: invoke_packed run {k} differs from invoke",
                                    f.name
                                ));
                            }
                        }
                    }
                    Err(e) => failures.push(format!("{}: invoke_packed: {e}", f.name)),
                }
            }
            Err(e) => failures.push(format!("{}: run: {e}", f.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures fail:\n{}",
        failures.len(),
        fixtures.len(),
        failures.join("\n")
    );
}

/// The per-op callback of both loops: `invoke_with` (the device loop, the size class's
/// per-op frames when built with `EDGEFLOW_NN_SIZE=1`) and `invoke_packed_with` (the
/// host loop over decoded records) report the same ops, in execution order, each with
/// the source index of the op record at that position, on every fixture.
#[test]
fn both_loops_report_each_op_at_its_position() {
    let mut checked = 0;
    for f in &fixtures() {
        let tflite = std::fs::read(&f.model).expect("read model");
        let Ok(compiled) = edgeflow_compile::compile(&tflite, &f.name) else {
            continue; // all_fixtures_match_tflite_micro reports it
        };
        let model = edgeflow_nn::Model::parse(&compiled.artifact).expect("parse");
        let records: Vec<u32> = model.ops().map(|d| d.source_index).collect();
        let input = load_npy(&f.input).bytes();
        let mut arena = edgeflow_nn::HostArena::for_model(&model).expect("arena");
        let mut rt = edgeflow_nn::Runtime::new(&model, arena.as_mut_bytes()).expect("runtime");
        rt.input_mut(0).expect("input").copy_from_slice(&input);
        let mut device = Vec::new();
        rt.invoke_with(|p, s| device.push((p, s)))
            .expect("invoke_with");
        let packed = edgeflow_nn::PackedModel::new(&model);
        let mut host = Vec::new();
        rt.invoke_packed_with(&packed, |p, s| host.push((p, s)))
            .expect("invoke_packed_with");
        assert_eq!(
            device, host,
            "{}: the two loops report different ops",
            f.name
        );
        assert!(!device.is_empty(), "{}: no op reported", f.name);
        for (k, &(p, s)) in device.iter().enumerate() {
            assert!(
                k == 0 || device[k - 1].0 < p,
                "{}: positions out of order",
                f.name
            );
            let at = p; // the record at this position
            assert_eq!(
                records.get(at),
                Some(&s),
                "{}: op {p}'s source index",
                f.name
            );
        }
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} fixtures checked");
}
