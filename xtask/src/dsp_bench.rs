//! `cargo xtask bench-dsp`: feature-pipeline benchmarks.
//!
//! - instructions per window on QEMU mps2-an386 (Cortex-M4F, `-icount shift=0`: one SysTick
//!   tick is 40 instructions) for the KWS MFCC and the IMU pipelines, plus one-time setup,
//!   peak stack and static RAM (the workspace);
//! - host throughput of the same pipelines, and of librosa computing the same MFCC in the
//!   same run (`bench/dsp_librosa.py`, needs librosa: `conformance/dsp/requirements.txt`).

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use edgeflow_dsp::host::{self, Sample};
use edgeflow_dsp::Pipeline;
use edgeflow_tests::dsp_firmware::{self, imu_case, kws_case, DspCase};
use edgeflow_tests::{firmware, root};

struct Row {
    name: &'static str,
    window: &'static str,
    case: DspCase,
}

/// Median wall time of `f` over enough runs to fill about a second.
fn median(mut f: impl FnMut()) -> Duration {
    let mut v = Vec::new();
    let start = Instant::now();
    while v.len() < 5 || (start.elapsed() < Duration::from_secs(1) && v.len() < 10_000) {
        let t = Instant::now();
        f();
        v.push(t.elapsed());
    }
    v.sort();
    v[v.len() / 2]
}

pub fn run() -> Result<()> {
    let rows = [
        Row {
            name: "KWS MFCC (kws_mfcc.toml): 512-point Hann frame -> 40 mel -> dB -> 10 MFCC",
            window: "1 s of 16 kHz audio, 49 frames",
            case: kws_case(),
        },
        Row {
            name: "IMU features (imu_features.toml): 3 axes x 128 -> 237 features",
            window: "10.24 s of 100 Hz 3-axis data, 15 windows",
            case: imu_case(),
        },
    ];
    let board = firmware::board("mps2-an386");
    let cases: Vec<DspCase> = rows.iter().map(|r| r.case.clone()).collect();
    println!(
        "== building the DSP benchmark firmware for {} and running {} pipelines on QEMU (minutes)",
        board.name,
        cases.len()
    );
    let reports =
        dsp_firmware::run(&board, &cases, Duration::from_secs(1800)).map_err(anyhow::Error::msg)?;
    println!("| pipeline | input | instructions / window (process; mean, then min / median / max of single calls) | instructions / input sample (push) | setup instructions: designing the tables / from the artifact's precomputed tables | peak stack bytes | static RAM bytes (workspace) | host µs / window | device output = host |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---|");
    for r in &rows {
        let rep = reports
            .get(&r.case.name)
            .with_context(|| format!("no report for {}", r.case.name))?;
        let p = Pipeline::from_bytes(&r.case.pipeline)?;
        let host_out = dsp_firmware::run_on_host(&r.case).map_err(anyhow::Error::msg)?;
        let same = rep.output.as_ref().is_ok_and(|o| *o == host_out);
        let values = r.case.input.len()
            / if r.case.feed == dsp_firmware::Feed::I16 {
                2
            } else {
                4
            };
        let sample = match r.case.feed {
            dsp_firmware::Feed::I16 => Sample::Signal(
                r.case
                    .input
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32)
                    .collect(),
            ),
            _ => Sample::Signal(host::as_f32(&r.case.input)),
        };
        let mut ws = vec![0.0f32; p.workspace_len()];
        let mut rt = edgeflow_dsp::Runtime::new(&p, &mut ws)?;
        let t = median(|| {
            let _ = host::run_on(&mut rt, &sample);
        });
        println!(
            "| {} | {} | {} ({} / {} / {}) | {:.1} | {} / {}{} | {} | {} | {:.1} | {} |",
            r.name,
            r.window,
            rep.process_ticks * 40 / rep.windows.max(1),
            rep.process_spread[0] * 40,
            rep.process_spread[1] * 40,
            rep.process_spread[2] * 40,
            (rep.push_ticks * 40) as f64 / values.max(1) as f64,
            rep.init_ticks * 40,
            rep.init_tables_ticks * 40,
            if rep.tables_same {
                ""
            } else {
                " (device tables DIFFER from host's)"
            },
            rep.stack,
            p.ram_bytes(),
            t.as_secs_f64() * 1e6 / rep.windows.max(1) as f64,
            if same { "bit-identical" } else { "DIFFERS" }
        );
    }
    // Host MFCC throughput against librosa on the same audio.
    let kws = &rows[0].case;
    let p = Pipeline::from_bytes(&kws.pipeline)?;
    let audio: Vec<f32> = kws
        .input
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32)
        .collect();
    let clips = 64;
    let batch: Vec<Sample> = (0..clips).map(|_| Sample::Signal(audio.clone())).collect();
    let mut ws = vec![0.0f32; p.workspace_len()];
    let mut rt = edgeflow_dsp::Runtime::new(&p, &mut ws)?;
    let one = median(|| {
        let _ = host::run_on(&mut rt, &batch[0]);
    });
    let many = median(|| {
        let _ = host::run_many(&p, &batch);
    });
    println!(
        "\nhost, edgeflow-dsp: {:.1} µs per 1 s clip on one core ({:.0} clips/s; coefficient tables computed once); {:.1} µs per clip for {clips} clips with run_many on all cores",
        one.as_secs_f64() * 1e6,
        1.0 / one.as_secs_f64(),
        many.as_secs_f64() * 1e6 / clips as f64
    );
    let raw: Vec<u8> = kws.input.clone();
    let pcm = root().join("target/bench-dsp-audio.pcm");
    std::fs::write(&pcm, raw)?;
    let python = std::env::var("EDGEFLOW_PYTHON").unwrap_or_else(|_| "python3".into());
    let s = Command::new(&python)
        .arg(root().join("bench/dsp_librosa.py"))
        .arg(&pcm)
        .status();
    if !s.is_ok_and(|s| s.success()) {
        println!("(librosa not measured: {python} could not run bench/dsp_librosa.py; set EDGEFLOW_PYTHON to a Python with conformance/dsp/requirements.txt)");
    }
    Ok(())
}
