//! `cargo xtask <command>`:
//!
//! - `test`  — the whole test ladder, then the demo: no_std builds of the run-time crates for Cortex-M0
//!   (thumbv6m) and Cortex-M4F (thumbv7em) with their clippy panic audit, then
//!   `cargo test --workspace` (host unit tests, TFLite Micro conformance, malformed-input
//!   and hostile-file tests, QEMU firmware parity), then a seeded fuzz smoke run of each
//!   fuzz target (20 s each, `EDGEFLOW_FUZZ_SECONDS`; skipped with a notice without cargo-fuzz);
//! - `fuzz-seeds` — regenerates the committed fuzz seed corpora (`fuzz/seeds/`);
//! - `fuzz [SECONDS [TARGET]]` — runs each fuzz target from its seeds (60 s each by default);
//! - `demo`  — the main job on a committed fixture: convert, inspect, run, compare;
//! - `bench [DIR]` — MLPerf Tiny benchmark (default `../shared/benchmarks/mlperf-tiny`):
//!   instructions per inference on QEMU mps2-an386, arena/flash/stack, host latency beside
//!   tflite-micro and ai-edge-litert (needs the Python packages of `bench/requirements.txt`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod dsp_bench;
mod fuzz;

use anyhow::{bail, Context, Result};
use edgeflow_tests::firmware::{self, Case};
use edgeflow_tests::{compare, load_npy, root, run_host};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("demo") => demo(),
        Some("bench") => bench(args.get(1).map(PathBuf::from)),
        Some("bench-dsp") => dsp_bench::run(),
        Some("fuzz-seeds") => fuzz::seeds(),
        Some("fuzz") => fuzz::run(
            args.get(1)
                .map_or(Ok(60), |s| s.parse())
                .context("SECONDS")?,
            args.get(2).map(String::as_str),
        ),
        None | Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        // A typo in a CI script must fail the script, not print usage and pass.
        Some(other) => {
            eprintln!("{USAGE}");
            bail!("unknown xtask command {other:?}")
        }
    }
}

const USAGE: &str =
    "usage: cargo xtask <test | demo | bench [MLPERF_DIR] | bench-dsp | fuzz-seeds | fuzz [SECONDS [TARGET]]>";

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn status(mut c: Command) -> Result<()> {
    let s = c.status().with_context(|| format!("cannot run {c:?}"))?;
    if !s.success() {
        bail!("{c:?} failed with {s}");
    }
    Ok(())
}

fn test() -> Result<()> {
    for target in ["thumbv6m-none-eabi", "thumbv7em-none-eabihf"] {
        println!("== no_std build of the run-time crates for {target}");
        let mut c = cargo();
        c.args([
            "build",
            "-p",
            "edgeflow-format",
            "-p",
            "edgeflow-nn",
            "-p",
            "edgeflow-dsp",
            "-p",
            "edgeflow",
            "-p",
            "edgeflow-telemetry",
            "-p",
            "edgeflow-slots",
            "--target",
            target,
        ]);
        status(c)?;
        // The panic audit: the run-time crates deny unwrap/expect/panic and unchecked
        // indexing and arithmetic (allowed per module with a reason), see their lib.rs.
        println!("== panic audit (clippy) of the run-time crates for {target}");
        let mut c = cargo();
        c.args([
            "clippy",
            "-p",
            "edgeflow-format",
            "-p",
            "edgeflow-nn",
            "-p",
            "edgeflow-dsp",
            "-p",
            "edgeflow",
            "--target",
            target,
        ]);
        status(c)?;
    }
    println!("== cargo test --workspace");
    let mut c = cargo();
    c.args(["test", "--workspace"])
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().context("cannot run cargo test")?;
    let (mut passed, mut failed) = (0u64, 0u64);
    if let Some(out) = child.stdout.take() {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines() {
            let line = line?;
            println!("{line}");
            // "test result: ok. 12 passed; 0 failed; ..."
            if let Some(rest) = line.strip_prefix("test result: ") {
                let num = |word: &str| -> u64 {
                    rest.split(';')
                        .find_map(|part| {
                            part.trim()
                                .strip_suffix(word)?
                                .trim()
                                .rsplit(' ')
                                .next()?
                                .parse()
                                .ok()
                        })
                        .unwrap_or(0)
                };
                passed += num("passed");
                failed += num("failed");
            }
        }
    }
    let ok = child.wait()?.success();
    // Seeded fuzz smoke run: each target from its committed seeds for EDGEFLOW_FUZZ_SECONDS
    // (default 20) — about 4.5 min for the 13 targets plus the first build of the fuzz crate.
    let fuzz_ok = if fuzz::available() {
        let secs = std::env::var("EDGEFLOW_FUZZ_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20);
        fuzz::run(secs, None)
            .map_err(|e| println!("fuzz smoke run failed: {e:#}"))
            .is_ok()
    } else {
        println!("== fuzz smoke run SKIPPED: cargo-fuzz is not installed (.ci/run installs it)");
        true
    };
    println!("== the main job (cargo xtask demo)");
    let demo_ok = demo().map_err(|e| println!("demo failed: {e:#}")).is_ok();
    // One closing line for the whole suite (the demo counts as one test).
    println!(
        "{} passed, {} failed",
        passed + u64::from(demo_ok) + u64::from(fuzz_ok),
        failed + u64::from(!demo_ok) + u64::from(!fuzz_ok)
    );
    if !ok || failed > 0 || !demo_ok || !fuzz_ok {
        bail!("the test suite failed");
    }
    Ok(())
}

fn demo() -> Result<()> {
    let dir = root().join("conformance/fixtures");
    let name = "quant_io_int8_floatio";
    let model = dir.join(format!("{name}.tflite"));
    let out = root().join("target/demo");
    std::fs::create_dir_all(&out)?;
    let artifact = out.join(format!("{name}.edgeflow"));
    let result = out.join(format!("{name}.output.npy"));
    // Build first, with cargo's own progress lines, so a cold build is not minutes of silence.
    println!("== building the edgeflow CLI (cargo build -p edgeflow-cli)");
    let mut c = cargo();
    c.args(["build", "-p", "edgeflow-cli"]);
    status(c)?;
    let cli = |args: &[&str]| -> Result<()> {
        let mut c = cargo();
        c.args(["run", "--quiet", "-p", "edgeflow-cli", "--"])
            .args(args);
        println!("$ edgeflow {}", args.join(" "));
        status(c)
    };
    cli(&[
        "convert",
        &model.display().to_string(),
        "-o",
        &artifact.display().to_string(),
    ])?;
    cli(&["inspect", &artifact.display().to_string()])?;
    cli(&[
        "run",
        &artifact.display().to_string(),
        "--input",
        &dir.join(format!("{name}.input.npy")).display().to_string(),
        "--output",
        &result.display().to_string(),
    ])?;
    let ours = load_npy(&result).bytes();
    match compare(&ours, &load_npy(&dir.join(format!("{name}.output.npy")))) {
        Ok(()) => println!("output matches TensorFlow Lite Micro's"),
        Err(e) => bail!("output differs from TensorFlow Lite Micro's: {e}"),
    }
    Ok(())
}

struct Row {
    model: String,
    instructions: u64,
    arena: usize,
    artifact: usize,
    stack: usize,
    host_us: f64,
    exact: String,
}

fn bench(dir: Option<PathBuf>) -> Result<()> {
    let dir = dir.unwrap_or_else(|| root().join("../shared/benchmarks/mlperf-tiny"));
    let models = ["kws", "ic", "ad", "vww"];
    let mut cases = Vec::new();
    let mut rows = Vec::new();
    for m in models {
        let tflite = std::fs::read(dir.join(format!("{m}.tflite")))
            .with_context(|| format!("{m}.tflite in {}", dir.display()))?;
        let c = edgeflow_compile::compile(&tflite, m)?;
        let input = load_npy(&dir.join(format!("{m}_input.npy"))).bytes();
        let expected = load_npy(&dir.join(format!("{m}_output_tflm.npy")));
        let host = run_host(&c.artifact, &input)?;
        let exact = match compare(&host, &expected) {
            Ok(()) => "bit-exact".to_string(),
            Err(e) => format!("DIFFERS: {e}"),
        };
        let host_us = time_host(&c.artifact, &input)?;
        rows.push(Row {
            model: m.into(),
            instructions: 0,
            arena: c.arena_bytes,
            artifact: c.artifact.len(),
            stack: 0,
            host_us,
            exact,
        });
        cases.push(Case {
            name: m.into(),
            artifact: c.artifact,
            input,
        });
    }
    let board = firmware::board("mps2-an386");
    let arena = rows.iter().map(|r| r.arena).max().unwrap_or(16);
    println!(
        "== building the benchmark firmware for {} and running {} models on QEMU (minutes)",
        board.name,
        cases.len()
    );
    let reports = firmware::run(&board, &cases, arena, Duration::from_secs(1800))
        .map_err(anyhow::Error::msg)?;
    for r in &mut rows {
        if let Some(rep) = reports.get(&r.model) {
            r.instructions = rep.ticks * 40;
            r.stack = rep.stack;
            if let Ok(out) = &rep.output {
                let host = &cases
                    .iter()
                    .find(|c| c.name == r.model)
                    .map(|c| run_host(&c.artifact, &c.input));
                if let Some(Ok(h)) = host {
                    if h != out {
                        r.exact += " (DEVICE DIFFERS FROM HOST)";
                    }
                }
            }
        }
    }
    println!("| model | instructions / inference (QEMU mps2-an386, icount 0) | arena bytes | artifact bytes | peak stack in invoke | host µs / inference | output vs TFLM |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.1} | {} |",
            r.model, r.instructions, r.arena, r.artifact, r.stack, r.host_us, r.exact
        );
    }
    // A second, profiled run: ticks per op (adds a few instructions per op).
    println!("== profiled run on QEMU (ticks per op)");
    let prof = firmware::run_with(&board, &cases, arena, Duration::from_secs(1800), true)
        .map_err(anyhow::Error::msg)?;
    for r in &rows {
        if let Some(rep) = prof.get(&r.model) {
            let mut by_kind: Vec<(String, u64, usize)> = Vec::new();
            for (op, t) in &rep.per_op {
                match by_kind.iter_mut().find(|(k, _, _)| k == op) {
                    Some(e) => {
                        e.1 += t * 40;
                        e.2 += 1;
                    }
                    None => by_kind.push((op.clone(), t * 40, 1)),
                }
            }
            let parts: Vec<String> = by_kind
                .iter()
                .map(|(k, i, n)| format!("{k} x{n}: {i}"))
                .collect();
            println!("per-op instructions, {}: {}", r.model, parts.join(", "));
        }
    }
    peers(&dir)?;
    Ok(())
}

/// Median host latency of one inference, over enough runs to fill ~1 s.
fn time_host(artifact: &[u8], input: &[u8]) -> Result<f64> {
    let model = edgeflow_nn::Model::parse(artifact)?;
    let mut arena = vec![0u8; model.arena_bytes() + 16];
    let off = arena.as_ptr().align_offset(16);
    let mut rt = edgeflow_nn::Runtime::new(&model, &mut arena[off..])?;
    rt.input_mut(0)?.copy_from_slice(input);
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < 5 || (start.elapsed() < Duration::from_secs(1) && samples.len() < 10_000)
    {
        let t = Instant::now();
        rt.invoke()?;
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    Ok(samples[samples.len() / 2])
}

/// Runs the Python peers (tflite-micro, ai-edge-litert) on the same models and inputs.
fn peers(dir: &Path) -> Result<()> {
    let python = std::env::var("EDGEFLOW_PYTHON").unwrap_or_else(|_| {
        let venv = root().join(".venv/bin/python");
        if venv.exists() {
            venv.display().to_string()
        } else {
            "python3".into()
        }
    });
    let script = root().join("bench/host_latency.py");
    let s = Command::new(&python).arg(&script).arg(dir).status();
    match s {
        Ok(s) if s.success() => Ok(()),
        _ => {
            println!("(peer latencies not measured: {python} could not run {} — install bench/requirements.txt)", script.display());
            Ok(())
        }
    }
}
