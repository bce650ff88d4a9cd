//! Measures the Cortex-M4F per-op cost table (`crates/edgeflow-compile/cost/cortex-m4f.toml`)
//! on QEMU `mps2-an386` and states the whole-inference estimate's error.
//!
//! Run (needs qemu-system-arm and the thumbv7em-none-eabihf target; rewrites the table):
//!     cargo test -p edgeflow-tests --test cost_model -- --ignored --nocapture
//!
//! The per-op costs are fitted on the int8 conformance fixtures and the four MLPerf Tiny
//! models when `../shared/benchmarks/mlperf-tiny` is present (profiled firmware, the
//! profiling overhead per op subtracted); the estimate is then checked against unprofiled
//! whole-inference counts of every model, and, for each MLPerf model, also with a table
//! fitted without that model (leave-one-out, the honest figure for an unseen model).

use std::collections::BTreeMap;
use std::time::Duration;

use edgeflow_compile::cost::{fit3, outputs, work, CostTable};
use edgeflow_tests::firmware::{self, Case};
use edgeflow_tests::{fixtures, load_npy, root};

#[test]
#[ignore = "needs QEMU; rewrites the committed cost table"]
fn measure_cortex_m4f_cost_table() {
    let board = firmware::board("mps2-an386");
    if let Some(why) = firmware::toolchain_missing(&board) {
        panic!("cannot measure: {why}");
    }
    let mut fit_cases = Vec::new();
    for f in fixtures() {
        if !(f.name.ends_with("_int8") || f.name.ends_with("_int8_floatio")) {
            continue;
        }
        let tflite = std::fs::read(&f.model).expect("model");
        let c = edgeflow_compile::compile(&tflite, &f.name).expect("compile");
        fit_cases.push(Case {
            name: f.name.clone(),
            artifact: c.artifact,
            input: load_npy(&f.input).bytes(),
        });
    }
    let mut held_out = Vec::new();
    let mlperf = root().join("../shared/benchmarks/mlperf-tiny");
    for m in ["kws", "ic", "ad", "vww"] {
        let p = mlperf.join(format!("{m}.tflite"));
        if let Ok(t) = std::fs::read(&p) {
            let c = edgeflow_compile::compile(&t, m).expect("compile mlperf");
            held_out.push(Case {
                name: format!("mlperf_{m}"),
                artifact: c.artifact,
                input: load_npy(&mlperf.join(format!("{m}_input.npy"))).bytes(),
            });
        }
    }
    let all: Vec<Case> = fit_cases.iter().chain(&held_out).cloned().collect();
    let arena = all
        .iter()
        .map(|c| {
            edgeflow_nn::Model::parse(&c.artifact)
                .expect("parse")
                .arena_bytes()
        })
        .max()
        .unwrap_or(16)
        + 64;
    let t = Duration::from_secs(3600);
    let plain = firmware::run(&board, &all, arena, t).expect("unprofiled run");
    let prof = firmware::run_with(&board, &all, arena, t, true).expect("profiled run");

    // Profiling overhead per op: (profiled sum - unprofiled total) / ops, averaged.
    let mut overheads = Vec::new();
    for c in &all {
        let p = &prof[&c.name];
        let sum: u64 = p.per_op.iter().map(|(_, t)| t * 40).sum();
        let total = plain[&c.name].ticks * 40;
        overheads.push((sum as f64 - total as f64) / p.per_op.len().max(1) as f64);
    }
    let overhead = overheads.iter().sum::<f64>() / overheads.len() as f64;

    // (model, op name, work, instructions) for every profiled op.
    let mut samples: Vec<(String, String, f64, f64, f64)> = Vec::new();
    for c in &all {
        let m = edgeflow_nn::Model::parse(&c.artifact).expect("parse");
        let p = &prof[&c.name];
        assert_eq!(
            m.ops().count(),
            p.per_op.len(),
            "{}: ops not all profiled",
            c.name
        );
        for (d, (name, ticks)) in m.ops().zip(&p.per_op) {
            assert_eq!(d.op.name(), name, "{}: profile out of order", c.name);
            samples.push((
                c.name.clone(),
                name.clone(),
                work(&d) as f64,
                outputs(&d) as f64,
                (ticks * 40) as f64 - overhead,
            ));
        }
    }
    let fit_without = |skip: &str| {
        let mut points: BTreeMap<String, Vec<(f64, f64, f64)>> = BTreeMap::new();
        for (model, name, w, o, i) in &samples {
            if model != skip {
                points.entry(name.clone()).or_default().push((*w, *o, *i));
            }
        }
        points
            .iter()
            .map(|(k, v)| (k.clone(), fit3(v)))
            .collect::<BTreeMap<_, _>>()
    };
    let mut table = CostTable {
        core: "cortex-m4f (QEMU mps2-an386, -icount shift=0; edgeflow-nn with the DSP kernels)"
            .into(),
        measured_by: "cargo test -p edgeflow-tests --test cost_model -- --ignored --nocapture"
            .into(),
        mean_abs_error: 0.0,
        max_abs_error: 0.0,
        ops: fit_without(""),
    };
    let mut errs = Vec::new();
    let mut held_out_errs = Vec::new();
    let mut lines = Vec::new();
    for c in &all {
        let m = edgeflow_nn::Model::parse(&c.artifact).expect("parse");
        let measured = plain[&c.name].ticks * 40;
        let Ok(e) = table.estimate(&m) else {
            panic!("{}: an op kind is missing from the table", c.name)
        };
        let rel = (e as f64 - measured as f64) / measured as f64;
        errs.push(rel.abs());
        let mut line = format!(
            "{:28} measured {measured:>10} estimate {e:>10} error {:+.1} %",
            c.name,
            rel * 100.0
        );
        if c.name.starts_with("mlperf_") {
            let loo = CostTable {
                ops: fit_without(&c.name),
                ..table.clone()
            };
            match loo.estimate(&m) {
                Ok(e) => {
                    let r = (e as f64 - measured as f64) / measured as f64;
                    held_out_errs.push((c.name.clone(), r));
                    line += &format!("; fitted without it: {e} ({:+.1} %)", r * 100.0);
                }
                Err(op) => line += &format!("; fitted without it: no {op} cost"),
            }
        }
        lines.push(line);
    }
    table.mean_abs_error = errs.iter().sum::<f64>() / errs.len().max(1) as f64;
    table.max_abs_error = errs.iter().cloned().fold(0.0, f64::max);
    let text = format!(
        "# Per-op instruction costs of edgeflow-nn on the Cortex-M4F: instructions =\n\
         # fixed + per_unit x work + per_output x outputs (edgeflow_compile::cost). Generated; do not edit.\n\
         # Profiling overhead subtracted: {overhead:.0} instructions per op.\n\
         # Errors (mean/max) over all {} fitted models; MLPerf Tiny with a table fitted\n\
         # without that model (leave-one-out):\n{}\n{}",
        errs.len(),
        held_out_errs
            .iter()
            .map(|(n, e)| format!("#   {n}: {:+.1} %", e * 100.0))
            .collect::<Vec<_>>()
            .join("\n"),
        toml::to_string(&table).expect("encode")
    );
    std::fs::write(
        root().join("crates/edgeflow-compile/cost/cortex-m4f.toml"),
        text,
    )
    .expect("write table");
    for l in &lines {
        eprintln!("{l}");
    }
    eprintln!(
        "all models: mean |error| {:.1} %, max {:.1} %",
        table.mean_abs_error * 100.0,
        table.max_abs_error * 100.0
    );
}
