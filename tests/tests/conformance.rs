//! Every conformance fixture, compiled and run on the host, against TFLite Micro's output:
//! int8 bit-exact, float32 within 1e-5 relative (see `edgeflow_tests::compare`); and the
//! host path (`invoke_packed`, op records decoded once and reused) bit-identical to the
//! device path (`invoke`, each record decoded per op) on every fixture.

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
