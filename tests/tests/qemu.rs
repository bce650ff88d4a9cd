//! The conformance fixtures inside firmware on emulated Cortex-M4F (QEMU mps2-an386) and
//! Cortex-M3 without FPU (QEMU lm3s6965evb): outputs must be bit-identical to the host's.
//!
//! Needs `qemu-system-arm` and the thumbv7em/thumbv7m Rust targets (`.ci/run` installs
//! them). Without them the tests fail, unless `EDGEFLOW_SKIP_QEMU=1` is set explicitly.

use std::time::Duration;

use edgeflow_tests::firmware::{self, Case};
use edgeflow_tests::{fixtures, load_npy, run_host};

fn cases() -> Vec<(Case, Vec<u8>, usize)> {
    fixtures()
        .into_iter()
        .map(|f| {
            let tflite = std::fs::read(&f.model).expect("read model");
            let c = edgeflow_compile::compile(&tflite, &f.name)
                .unwrap_or_else(|e| panic!("{}: {e}", f.name));
            let input = load_npy(&f.input).bytes();
            let host = run_host(&c.artifact, &input).unwrap_or_else(|e| panic!("{}: {e}", f.name));
            (
                Case {
                    name: f.name.clone(),
                    artifact: c.artifact,
                    input,
                },
                host,
                c.arena_bytes,
            )
        })
        .collect()
}

fn parity(board_name: &str, flash_budget: usize) {
    let board = firmware::board(board_name);
    if let Some(why) = firmware::toolchain_missing(&board) {
        if std::env::var("EDGEFLOW_SKIP_QEMU").as_deref() == Ok("1") {
            eprintln!("skipping {board_name}: {why} (EDGEFLOW_SKIP_QEMU=1)");
            return;
        }
        panic!("{why}; set EDGEFLOW_SKIP_QEMU=1 to skip the emulated-hardware tests");
    }
    let all = cases();
    // Split into firmware images that fit the board's flash.
    let mut batches: Vec<Vec<&(Case, Vec<u8>, usize)>> = vec![Vec::new()];
    let mut used = 0;
    for c in &all {
        let size = c.0.artifact.len() + c.0.input.len();
        if used + size > flash_budget && !batches.last().is_some_and(|b| b.is_empty()) {
            batches.push(Vec::new());
            used = 0;
        }
        used += size;
        batches.last_mut().expect("non-empty").push(c);
    }
    let mut checked = 0;
    let mut failures = Vec::new();
    for batch in batches {
        let arena = batch.iter().map(|c| c.2).max().unwrap_or(16).max(16);
        let cases: Vec<Case> = batch.iter().map(|c| c.0.clone()).collect();
        let reports = firmware::run(&board, &cases, arena, Duration::from_secs(600))
            .unwrap_or_else(|e| panic!("{e}"));
        for (case, host, _) in batch {
            match reports.get(&case.name).map(|r| &r.output) {
                Some(Ok(out)) if out == host => checked += 1,
                Some(Ok(out)) => failures.push(format!(
                    "{}: device output differs from host ({} bytes, first difference at {:?})",
                    case.name,
                    out.len(),
                    out.iter().zip(host.iter()).position(|(a, b)| a != b)
                )),
                Some(Err(e)) => failures.push(format!("{}: device error {e}", case.name)),
                None => failures.push(format!("{}: no report from the device", case.name)),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{board_name}:\n{}",
        failures.join("\n")
    );
    assert_eq!(checked, all.len());
}

#[test]
fn fixtures_bit_identical_on_cortex_m4f_mps2_an386() {
    parity("mps2-an386", 3 * 1024 * 1024);
}

#[test]
fn fixtures_bit_identical_on_cortex_m3_lm3s6965evb() {
    // 256 KiB flash: leave room for the code.
    parity("lm3s6965evb", 150 * 1024);
}
