//! Feature pipelines inside firmware on emulated Cortex-M4F (QEMU mps2-an386) and
//! Cortex-M3 without FPU (QEMU lm3s6965evb, soft float): every output tensor must be
//! bit-identical to the host's (x86_64), and so must the coefficient tables the device
//! designs (against the host-designed tables it also starts from), for the three pipelines of the issue (KWS MFCC,
//! IMU spectral + statistical features, 96x96 RGB to int8) and one case per remaining
//! block family (the fixed-point audio front end: `micro_speech.rs`).
//!
//! Needs `qemu-system-arm` and the thumbv7em/thumbv7m Rust targets (`.ci/run` installs
//! them). Without them the tests fail, unless `EDGEFLOW_SKIP_QEMU=1` is set explicitly.

use std::time::Duration;

use edgeflow_tests::dsp_firmware::{self, parity_cases};
use edgeflow_tests::firmware;

fn parity(board_name: &str) {
    let board = firmware::board(board_name);
    if let Some(why) = firmware::toolchain_missing(&board) {
        // toolchain_missing fails the test unless EDGEFLOW_SKIP_QEMU=1 asked to skip.
        eprintln!("skipping {board_name}: {why}");
        return;
    }
    let cases = parity_cases();
    let reports = dsp_firmware::run(&board, &cases, Duration::from_secs(600))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut failures = Vec::new();
    for case in &cases {
        let host = dsp_firmware::run_on_host(case).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert!(
            !host.is_empty(),
            "{}: the host produced no output",
            case.name
        );
        // Tables designed on the device must equal the host's (the artifact's
        // PipelineTables section) bit for bit; the outputs below come from a runtime
        // started from the host's tables.
        let has_tables = dsp_firmware::has_tables(case);
        if let Some(r) = reports.get(&case.name) {
            if has_tables && r.output.is_ok() && !r.tables_same {
                failures.push(format!(
                    "{}: tables designed on the device differ from the host's",
                    case.name
                ));
            }
        }
        match reports.get(&case.name) {
            Some(r) => match &r.output {
                Ok(out) if *out == host => eprintln!(
                    "{board_name} {}: {} bytes identical ({} windows, {} outputs, {} SysTick ticks in process)",
                    case.name,
                    out.len(),
                    r.windows,
                    r.outputs,
                    r.process_ticks
                ),
                Ok(out) => failures.push(format!(
                    "{}: device output differs from host ({} vs {} bytes, first difference at {:?})",
                    case.name,
                    out.len(),
                    host.len(),
                    out.iter().zip(host.iter()).position(|(a, b)| a != b)
                )),
                Err(e) => failures.push(format!("{}: device error {e}", case.name)),
            },
            None => failures.push(format!("{}: no report from the device", case.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{board_name}:\n{}",
        failures.join("\n")
    );
}

#[test]
fn features_bit_identical_on_cortex_m4f_mps2_an386() {
    parity("mps2-an386");
}

#[test]
fn features_bit_identical_on_cortex_m3_lm3s6965evb() {
    parity("lm3s6965evb");
}
