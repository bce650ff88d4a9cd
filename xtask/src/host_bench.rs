//! `cargo xtask bench-host [DIR]`: host latency per inference of the four MLPerf Tiny
//! models, edgeflow beside LiteRT with XNNPACK at one thread, in one run.
//!
//! Converts each model (`edgeflow_compile::compile`), checks the host output against
//! TFLM's (bit-exact or the table says so), writes the artifacts and raw inputs to
//! `target/bench-host/`, builds only the timing binary in release
//! (`cargo build --release -p edgeflow-nn --features std --example latency`), then for
//! `EDGEFLOW_BENCH_ROUNDS` rounds (default 3) times, model by model and alternately:
//! edgeflow's host path (weights packed once, `Runtime::invoke_packed`) at one and two
//! threads, edgeflow's device-path kernels on the host (`Runtime::invoke`, AVX2 / NEON
//! chosen at run time; `EDGEFLOW_NN_UNPACKED=1`), edgeflow with its portable kernels
//! (`EDGEFLOW_NN_PORTABLE=1`), and `bench/litert_latency.py` (ai-edge-litert with its
//! default XNNPACK delegate, and without it) at one and at two threads. Each figure is a
//! median over ~1 s of inferences; the table gives the median of the rounds' medians,
//! and the caption the load average before and after. The Python is `EDGEFLOW_PYTHON`,
//! else `.venv/bin/python`, else `python3`, with `bench/requirements.txt` installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use edgeflow_tests::{compare, load_npy, root, run_host};

/// One measurement line's `key=value` number.
fn field(line: &str, key: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn output(mut c: Command) -> Result<(String, String)> {
    let o = c.output().with_context(|| format!("cannot run {c:?}"))?;
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    if !o.status.success() {
        bail!("{c:?} failed with {}: {out}{err}", o.status);
    }
    Ok((out, err))
}

pub fn run(dir: Option<PathBuf>) -> Result<()> {
    let dir = dir.unwrap_or_else(|| root().join("../shared/benchmarks/mlperf-tiny"));
    let models = ["kws", "ic", "ad", "vww"];
    let work = root().join("target/bench-host");
    std::fs::create_dir_all(&work)?;
    let mut exact = Vec::new();
    for m in models {
        let tflite = std::fs::read(dir.join(format!("{m}.tflite")))
            .with_context(|| format!("{m}.tflite in {}", dir.display()))?;
        let c = edgeflow_compile::compile(&tflite, m)?;
        let input = load_npy(&dir.join(format!("{m}_input.npy"))).bytes();
        let expected = load_npy(&dir.join(format!("{m}_output_tflm.npy")));
        exact.push(match compare(&run_host(&c.artifact, &input)?, &expected) {
            Ok(()) => "bit-exact".to_string(),
            Err(e) => format!("DIFFERS: {e}"),
        });
        std::fs::write(work.join(format!("{m}.efa")), &c.artifact)?;
        std::fs::write(work.join(format!("{m}.bin")), &input)?;
    }
    println!("== building the timing binary (release, edgeflow-nn's `latency` example only)");
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root()).args([
        "build",
        "--release",
        "-p",
        "edgeflow-nn",
        "--features",
        "std",
        "--example",
        "latency",
    ]);
    let s = c.status().context("cargo build")?;
    if !s.success() {
        bail!("building the latency example failed");
    }
    let exe = root().join("target/release/examples/latency");
    let python = std::env::var("EDGEFLOW_PYTHON").unwrap_or_else(|_| {
        let venv = root().join(".venv/bin/python");
        if venv.exists() {
            venv.display().to_string()
        } else {
            "python3".into()
        }
    });
    let script = root().join("bench/litert_latency.py");
    let rounds: usize = std::env::var("EDGEFLOW_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    /// The edgeflow side's variants.
    #[derive(Clone, Copy)]
    enum Side {
        Packed(usize),
        Unpacked,
        Portable,
    }
    let edgeflow = |m: &str, side: Side| -> Result<f64> {
        let mut c = Command::new(&exe);
        c.arg(work.join(format!("{m}.efa")))
            .arg(work.join(format!("{m}.bin")))
            .arg("1");
        c.env_remove("EDGEFLOW_NN_PORTABLE")
            .env_remove("EDGEFLOW_NN_UNPACKED")
            .env_remove("EDGEFLOW_LATENCY_OPS")
            .env_remove("EDGEFLOW_LATENCY_RUNS")
            .env_remove("EDGEFLOW_LATENCY_OUTPUT");
        match side {
            Side::Packed(t) => {
                c.arg(t.to_string());
            }
            Side::Unpacked => {
                c.env("EDGEFLOW_NN_UNPACKED", "1");
            }
            Side::Portable => {
                c.env("EDGEFLOW_NN_PORTABLE", "1");
            }
        }
        let (out, _) = output(c)?;
        if matches!(side, Side::Packed(_)) && !out.contains("packed_output_equal=true") {
            bail!("{m}: the packed path's output differs from Runtime::invoke's: {out}");
        }
        field(&out, "median_us").with_context(|| format!("no median_us in {out:?}"))
    };
    let mut litert_version = String::from("not measured");
    let mut xnnpack_seen = true;
    let litert =
        |m: &str, threads: usize, version: &mut String, seen: &mut bool| -> Result<(f64, f64)> {
            let mut c = Command::new(&python);
            c.arg(&script)
                .arg(dir.join(format!("{m}.tflite")))
                .arg(dir.join(format!("{m}_input.npy")))
                .args([threads.to_string().as_str(), "1"]);
            let (out, err) = output(c)?;
            *seen &= err.contains("XNNPACK delegate");
            if let Some(v) = out
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix("litert="))
            {
                *version = v.to_string();
            }
            Ok((
                field(&out, "xnnpack_us").context("no xnnpack_us")?,
                field(&out, "builtin_us").context("no builtin_us")?,
            ))
        };
    let n = models.len();
    let col = || vec![Vec::<f64>::new(); n];
    let (mut packed1, mut packed2, mut unpacked, mut port) = (col(), col(), col(), col());
    let (mut xnn, mut builtin, mut xnn2) = (col(), col(), col());
    let mut peer_ok = true;
    let load_before = loadavg();
    for r in 0..rounds {
        println!("== round {}/{rounds}", r + 1);
        for (i, m) in models.iter().enumerate() {
            packed1[i].push(edgeflow(m, Side::Packed(1))?);
            packed2[i].push(edgeflow(m, Side::Packed(2))?);
            unpacked[i].push(edgeflow(m, Side::Unpacked)?);
            port[i].push(edgeflow(m, Side::Portable)?);
            if peer_ok {
                let one = litert(m, 1, &mut litert_version, &mut xnnpack_seen);
                let two = one
                    .as_ref()
                    .ok()
                    .map(|_| litert(m, 2, &mut litert_version, &mut xnnpack_seen));
                match (one, two) {
                    (Ok((a, b)), Some(Ok((a2, _)))) => {
                        xnn[i].push(a);
                        builtin[i].push(b);
                        xnn2[i].push(a2);
                    }
                    (Err(e), _) | (_, Some(Err(e))) => {
                        println!("(LiteRT not measured: {e:#}; install bench/requirements.txt and set EDGEFLOW_PYTHON)");
                        peer_ok = false;
                    }
                    (Ok(_), None) => peer_ok = false,
                }
            }
        }
    }
    let load_after = loadavg();
    let isa = if cfg!(target_arch = "x86_64") {
        let avx2 = std::is_x86_feature_detected!("avx2");
        let vnni = avx2 && std::is_x86_feature_detected!("avxvnni");
        let vnni512 = avx2
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512vnni");
        if vnni512 && vnni {
            "AVX2; packed CONV_2D and FULLY_CONNECTED on AVX-512 VNNI (512-bit VPDPBUSD), packed 3x3 DEPTHWISE_CONV_2D on AVX-VNNI"
        } else if vnni512 {
            "AVX2; packed CONV_2D and FULLY_CONNECTED on AVX-512 VNNI (512-bit VPDPBUSD)"
        } else if vnni {
            "AVX2, with AVX-VNNI (VPDPBUSD) for the packed CONV_2D, FULLY_CONNECTED and 3x3 DEPTHWISE_CONV_2D"
        } else if avx2 {
            "AVX2"
        } else {
            "none (no AVX2: portable)"
        }
    } else if cfg!(target_arch = "aarch64") {
        "NEON (packed CONV_2D and FULLY_CONNECTED on SDOT where present, else SMLAL)"
    } else {
        "none (portable)"
    };
    println!(
        "\nhost: {} ({} cores), edgeflow host kernels: {isa}; ai-edge-litert {litert_version}, XNNPACK delegate {}; {rounds} rounds, median of per-round medians (µs per inference); load average {load_before} before, {load_after} after\n",
        cpu_name(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if !peer_ok { "n/a" } else if xnnpack_seen { "created (LiteRT's log)" } else { "NOT reported" },
    );
    println!("| model | edgeflow packed, 1 thread | LiteRT + XNNPACK, 1 thread | edgeflow / LiteRT, 1 thread | edgeflow packed, 2 threads | LiteRT + XNNPACK, 2 threads | edgeflow / LiteRT, 2 threads | edgeflow unpacked SIMD | edgeflow portable | LiteRT without XNNPACK | edgeflow output vs TFLM |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for (i, m) in models.iter().enumerate() {
        let (p1, p2) = (median(&mut packed1[i]), median(&mut packed2[i]));
        let (u, p) = (median(&mut unpacked[i]), median(&mut port[i]));
        let (x, b, x2) = (
            median(&mut xnn[i]),
            median(&mut builtin[i]),
            median(&mut xnn2[i]),
        );
        println!(
            "| {m} | {p1:.1} | {x:.1} | {:.2}× | {p2:.1} | {x2:.1} | {:.2}× | {u:.1} | {p:.1} | {b:.1} | {} |",
            p1 / x,
            p2 / x2,
            exact[i]
        );
    }
    println!("\nper round (edgeflow packed / LiteRT + XNNPACK, 1 thread, µs):");
    for (i, m) in models.iter().enumerate() {
        let pairs: Vec<String> = packed1[i]
            .iter()
            .zip(xnn[i].iter().map(Some).chain(std::iter::repeat(None)))
            .map(|(s, x)| match x {
                Some(x) => format!("{s:.1} / {x:.1}"),
                None => format!("{s:.1} / -"),
            })
            .collect();
        println!("  {m}: {}", pairs.join(", "));
    }
    Ok(())
}

/// `/proc/loadavg`'s three averages (Linux), for the table's caption.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// The CPU model name (Linux), for the table's caption.
fn cpu_name() -> String {
    std::fs::read_to_string(Path::new("/proc/cpuinfo"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
