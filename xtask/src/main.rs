//! `cargo xtask <command>`:
//!
//! - `test`  — the whole test ladder, then the demo: no_std builds of the run-time crates for Cortex-M0
//!   (thumbv6m) and Cortex-M4F (thumbv7em) with their clippy panic audit, the firmware
//!   workspace's step (IMU driver host tests; the real-board app for nucleo-f411re built,
//!   not run), then
//!   `cargo test --workspace` (host unit tests, TFLite Micro conformance, malformed-input
//!   and hostile-file tests, QEMU firmware parity), then the `edgeflow-serve` and `edgeflow-nn` tests built
//!   for aarch64 and armv7 Linux and run under qemu-user, then a seeded fuzz smoke run of each
//!   fuzz target (20 s each, `EDGEFLOW_FUZZ_SECONDS`; skipped with a notice without cargo-fuzz);
//! - `fuzz-seeds` — regenerates the committed fuzz seed corpora (`fuzz/seeds/`);
//! - `fuzz [SECONDS [TARGET]]` — runs each fuzz target from its seeds (60 s each by default);
//! - `demo`  — the main job: `edgeflow pipeline run examples/basicmotions` on real data
//!   (fetched if absent), then the figures of its `summary.json`;
//! - `bench [DIR]` — MLPerf Tiny benchmark (default `../shared/benchmarks/mlperf-tiny`):
//!   instructions per inference on QEMU mps2-an386, arena/flash/stack, host latency beside
//!   tflite-micro and ai-edge-litert (needs the Python packages of `bench/requirements.txt`);
//! - `footprint [DIR]` — per MLPerf Tiny model, run-time code size with only the model's
//!   kernels linked (`EDGEFLOW_NN_OPS`) and with all, and peak stack in `invoke`, beside
//!   TFLM's figures (QEMU mps2-an386; see `footprint.rs` for the method;
//!   `EDGEFLOW_FOOTPRINT_PROFILE=release-small` measures the size-class build);
//! - `bench-host [DIR]` — host latency only: edgeflow's release run-time (host SIMD and
//!   portable kernels) beside LiteRT with and without XNNPACK, one thread, in one run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod dsp_bench;
mod footprint;
mod fuzz;
mod host_bench;

use anyhow::{bail, Context, Result};
use edgeflow_tests::firmware::{self, Case};
use edgeflow_tests::{compare, load_npy, root, run_host};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("demo") => demo(true),
        Some("bench") => bench(args.get(1).map(PathBuf::from)),
        Some("bench-dsp") => dsp_bench::run(),
        Some("footprint") => footprint::run(args.get(1).map(PathBuf::from)),
        Some("bench-host") => host_bench::run(args.get(1).map(PathBuf::from)),
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
    "usage: cargo xtask <test | demo | bench [MLPERF_DIR] | bench-host [MLPERF_DIR] | bench-dsp | footprint [MLPERF_DIR] | fuzz-seeds | fuzz [SECONDS [TARGET]]>";

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

/// The run-time crates: `no_std`, on the device, under the panic audit.
const RUNTIME_CRATES: [&str; 6] = [
    "edgeflow-format",
    "edgeflow-nn",
    "edgeflow-dsp",
    "edgeflow",
    "edgeflow-telemetry",
    "edgeflow-slots",
];

/// `cargo SUBCOMMAND -p CRATE ...` over [`RUNTIME_CRATES`].
fn runtime_crates(subcommand: &str) -> Command {
    let mut c = cargo();
    c.arg(subcommand);
    for p in RUNTIME_CRATES {
        c.args(["-p", p]);
    }
    c
}

fn test() -> Result<()> {
    for target in ["thumbv6m-none-eabi", "thumbv7em-none-eabihf"] {
        println!("== no_std build of the run-time crates for {target}");
        let mut c = runtime_crates("build");
        c.args(["--target", target]);
        status(c)?;
        // The `defmt` feature (defmt::Format on the run-time errors), never built otherwise.
        println!("== no_std build with the defmt feature for {target}");
        let mut c = cargo();
        c.args([
            "build",
            "-p",
            "edgeflow",
            "--features",
            "defmt",
            "--target",
            target,
        ]);
        status(c)?;
        // The panic audit: the run-time crates deny unwrap/expect/panic and unchecked
        // indexing and arithmetic (allowed per module with a reason), see their lib.rs.
        println!("== panic audit (clippy) of the run-time crates for {target}");
        let mut c = runtime_crates("clippy");
        c.args(["--target", target]);
        status(c)?;
    }
    // The same audit on the host build of the run-time crates: their `std` features add
    // host code (arena, SIMD kernels, pipeline design, artifact writer, telemetry decoder)
    // that the server and the CLI run on untrusted bytes.
    println!("== panic audit (clippy) of the run-time crates with their std features");
    let mut c = runtime_crates("clippy");
    c.args([
        "--features",
        "edgeflow-format/std,edgeflow-nn/std,edgeflow-dsp/std,edgeflow/std,edgeflow-telemetry/std",
    ]);
    status(c)?;
    firmware_builds()?;
    println!("== cargo test --workspace --features edgeflow-compile/onnx");
    let mut c = cargo();
    // The ONNX importer and its conformance test are behind edgeflow-compile's `onnx`.
    c.args(["test", "--workspace", "--features", "edgeflow-compile/onnx"]);
    let (ok, mut passed, mut failed) = counted(c)?;
    // edgeflow-nn's size class (`cfg(edgeflow_size)`: the device loop's per-op `run_op`
    // frames, the out-of-line tails), which only device builds at opt-level "s" take: its
    // host build against the fixtures' goldens, the malformed models and the fuzz seeds
    // (no panic), beside the QEMU size-class parity test of the step above.
    println!("== edgeflow-nn's size class on the host (EDGEFLOW_NN_SIZE=1)");
    let mut c = cargo();
    // A target directory of its own: in the shared one the build script's output would
    // flip between the classes, and every later build would rebuild edgeflow-nn and all
    // that depends on it.
    c.env("EDGEFLOW_NN_SIZE", "1")
        .env("CARGO_TARGET_DIR", root().join("target/size-class"));
    c.args(["test", "-p", "edgeflow-tests"]);
    for t in ["conformance", "op_conformance", "malformed", "fuzz_seeds"] {
        c.args(["--test", t]);
    }
    let (size_ok, p, f) = counted(c)?;
    passed += p;
    failed += f;
    let ok = ok && size_ok;
    // ARM Linux boards: the server crate and the kernels' tests built for aarch64 and
    // armv7 and run under qemu-user emulation (the cargo runners in .cargo/config.toml).
    let mut arm_ok = true;
    for linux in [ARM_LINUX_AARCH64, ARM_LINUX_ARMV7] {
        match arm_linux(&linux).map_err(|e| println!("{} step failed: {e:#}", linux.target)) {
            Ok(Some((ok, p, f))) => {
                passed += p;
                failed += f;
                arm_ok &= ok;
            }
            Ok(None) => {}
            Err(()) => arm_ok = false,
        }
    }
    let ok = ok && arm_ok;
    // Seeded fuzz smoke run: each target from its committed seeds for EDGEFLOW_FUZZ_SECONDS
    // (default 20) — about 5 min for the 14 targets plus the first build of the fuzz crate.
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
    // `cargo test --workspace` above built target/debug/edgeflow (the CLI's integration
    // tests need it), with the whole workspace's feature set: reuse it rather than build
    // `-p edgeflow-cli` again, whose narrower feature set would recompile dependencies.
    let demo_ok = demo(false)
        .map_err(|e| println!("demo failed: {e:#}"))
        .is_ok();
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

/// The firmware workspace's own step: the IMU driver's host tests, and the real-board
/// application (`firmware/app-nucleo-f411re`, STM32F411 with stm32f4xx-hal) built for its
/// target, not run: CI has no board. (The emulated boards' applications are built and run
/// by the QEMU tests of `cargo test --workspace`.)
fn firmware_builds() -> Result<()> {
    let fw = root().join("firmware");
    let plain = |dir: &Path| {
        let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        c.current_dir(dir);
        // A plain build: not the variables of the cargo that runs xtask.
        for (k, _) in std::env::vars() {
            if k.starts_with("CARGO_") && k != "CARGO_HOME"
                || k == "RUSTFLAGS"
                || k == "RUSTC_WRAPPER"
            {
                c.env_remove(&k);
            }
        }
        c
    };
    println!("== firmware: host tests of the MPU-6050 driver (firmware/imu)");
    let mut c = plain(&fw);
    c.args(["test", "-p", "edgeflow-imu"]);
    status(c)?;
    println!("== firmware: build the real-board application firmware/app-nucleo-f411re (not run)");
    let mut c = plain(&fw.join("app-nucleo-f411re"));
    // The profile of boards/nucleo-f411re.toml [app] (release-small: at O3 the application
    // overflows its 256 KiB firmware region by 27 KiB).
    let profile = firmware::board("nucleo-f411re")
        .app
        .map(|a| a.profile)
        .context("boards/nucleo-f411re.toml has no [app] table")?;
    c.args(["build", "--profile", &profile]);
    status(c)?;
    // `edgeflow flash` for real boards (probe-rs) builds behind the CLI's `probe` feature.
    // Opt-in: probe-rs's own dependency tree takes about 4 min to check, and enabling it
    // changes the feature set of dependencies shared with burn and tract, which then
    // rebuild (over 10 min on the shared CI machine), beyond the ~5 min budget for it.
    if std::env::var("EDGEFLOW_CHECK_PROBE").is_ok_and(|v| v == "1") {
        println!("== cargo check -p edgeflow-cli --features probe (EDGEFLOW_CHECK_PROBE=1)");
        let mut c = cargo();
        c.args(["check", "-p", "edgeflow-cli", "--features", "probe"]);
        status(c)?;
    } else {
        println!(
            "== edgeflow-cli feature `probe` (probe-rs) not checked: set EDGEFLOW_CHECK_PROBE=1"
        );
    }
    Ok(())
}

/// Runs a `cargo test` command, echoing its output, and counts the tests it reports:
/// `(success, passed, failed)`.
fn counted(mut c: Command) -> Result<(bool, u64, u64)> {
    c.stdout(std::process::Stdio::piped());
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
    Ok((child.wait()?.success(), passed, failed))
}

fn on_path(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

/// An ARM Linux target the serve and kernel tests run on under qemu-user.
struct ArmLinux {
    /// The Rust target triple.
    target: &'static str,
    /// The cross linker (its name is also the Debian package's, with `gcc-` in front).
    linker: &'static str,
    /// The qemu-user binary (the cargo runner of `.cargo/config.toml`).
    qemu: &'static str,
    /// What the step checks, for its heading.
    what: &'static str,
}

/// 64-bit ARM Linux (Raspberry Pi 4/5 class boards): the NEON kernels and the server.
const ARM_LINUX_AARCH64: ArmLinux = ArmLinux {
    target: "aarch64-unknown-linux-gnu",
    linker: "aarch64-linux-gnu-gcc",
    qemu: "qemu-aarch64",
    what: "edgeflow-serve and edgeflow-nn (NEON kernels)",
};

/// 32-bit ARM Linux (armv7 boards): the portable kernels and the server on a 32-bit host,
/// where `u128` is only 8-byte aligned (the serve arena bug this step found).
const ARM_LINUX_ARMV7: ArmLinux = ArmLinux {
    target: "armv7-unknown-linux-gnueabihf",
    linker: "arm-linux-gnueabihf-gcc",
    qemu: "qemu-arm",
    what: "edgeflow-serve and edgeflow-nn (32-bit host)",
};

/// `cargo test -p edgeflow-serve -p edgeflow-nn --target T` under qemu-user, for
/// aarch64 and armv7. `None` (with a printed reason) when the cross toolchain is missing
/// (.ci/run installs it).
fn arm_linux(l: &ArmLinux) -> Result<Option<(bool, u64, u64)>> {
    let target_ok = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|x| x.trim() == l.target)
        })
        .unwrap_or(false);
    let rustup = format!("rustup target {}", l.target);
    let missing: Vec<&str> = [
        (l.linker, on_path(l.linker)),
        (l.qemu, on_path(l.qemu)),
        (rustup.as_str(), target_ok),
    ]
    .iter()
    .filter(|(_, ok)| !ok)
    .map(|(n, _)| *n)
    .collect();
    if !missing.is_empty() {
        println!(
            "== {} tests SKIPPED: missing {} (.ci/run installs gcc-{}, qemu-user and the target)",
            l.target,
            missing.join(", "),
            l.linker.trim_end_matches("-gcc")
        );
        return Ok(None);
    }
    println!("== {} tests for {} under {}", l.what, l.target, l.qemu);
    let t = Instant::now();
    let mut c = cargo();
    c.args([
        "test",
        "-p",
        "edgeflow-serve",
        "-p",
        "edgeflow-nn",
        "--target",
        l.target,
    ]);
    let r = counted(c)?;
    println!(
        "== {} step took {:.0} s",
        l.target,
        t.elapsed().as_secs_f64()
    );
    Ok(Some(r))
}

/// The main job: the whole flow of `examples/basicmotions/edgeflow.toml` on real data.
///
/// Fetches BasicMotions if absent, builds the CLI in the dev profile (within `cargo xtask
/// test` it takes the binary the workspace test build just made, compiling nothing), runs
/// `edgeflow pipeline run examples/basicmotions`, and prints the figures of `summary.json`.
fn demo(build: bool) -> Result<()> {
    let start = Instant::now();
    let data = root().join("target/data/BasicMotions");
    if !data.join("BasicMotions_TEST.ts").is_file() || !data.join("BasicMotions_TRAIN.ts").is_file()
    {
        println!("== fetching BasicMotions (crates/edgeflow-data/scripts/fetch_basicmotions.sh)");
        let mut c = Command::new(root().join("crates/edgeflow-data/scripts/fetch_basicmotions.sh"));
        c.arg(&data);
        status(c)?;
    }
    let exe = root().join("target/debug/edgeflow");
    if build || !exe.is_file() {
        // Build first, with cargo's own progress lines, so a cold build is not minutes of silence.
        println!(
            "== building the edgeflow CLI (cargo build -p edgeflow-cli, the dev/test profile)"
        );
        let mut c = cargo();
        c.args(["build", "-p", "edgeflow-cli"]);
        status(c)?;
    }
    let project = root().join("examples/basicmotions");
    println!("== edgeflow pipeline run examples/basicmotions");
    let mut c = Command::new(&exe);
    c.current_dir(root())
        .args(["pipeline", "run"])
        .arg(&project);
    status(c)?;
    let summary = project.join("out/summary.json");
    let text = std::fs::read_to_string(&summary)
        .with_context(|| format!("cannot read {}", summary.display()))?;
    let s: serde_json::Value = serde_json::from_str(&text)?;
    let k = &s["key_metrics"];
    let pct = |v: &serde_json::Value| {
        v.as_f64()
            .map_or("-".to_string(), |x| format!("{:.1} %", 100.0 * x))
    };
    println!(
        "\n== the main job: BasicMotions, raw recordings to a monitored (emulated) microcontroller"
    );
    println!(
        "  float32 test accuracy        {}",
        pct(&k["float_test_accuracy"])
    );
    println!(
        "  int8 test accuracy           {}",
        pct(&k["int8_test_accuracy"])
    );
    println!(
        "  float vs int8 agreement      {}",
        pct(&k["float_int8_agreement"])
    );
    println!(
        "  validation gates             {}",
        k["gates"].as_array().map_or("-".to_string(), |g| {
            let pass = g.iter().filter(|x| x["status"] == "pass").count();
            format!("{pass}/{} pass", g.len())
        })
    );
    println!(
        "  device == host predictions   {}/{}",
        k["device_equal_to_host"], k["device_predictions"]
    );
    println!(
        "  monitoring alerts            clean replay {}, injected fault {}",
        k["clean_alerts"], k["fault_alerts"]
    );
    println!(
        "  index                        {}",
        project.join("out/index.html").display()
    );
    println!("  summary                      {}", summary.display());
    println!(
        "  demo wall time               {:.0} s",
        start.elapsed().as_secs_f64()
    );
    if s["all_passed"] != serde_json::Value::Bool(true) {
        bail!(
            "the pipeline did not pass every stage (see {})",
            summary.display()
        );
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
