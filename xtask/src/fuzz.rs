//! Seeded fuzzing: `cargo xtask fuzz-seeds` writes the committed seed corpora under
//! `fuzz/seeds/TARGET/`, and `cargo xtask fuzz [SECONDS]` runs every fuzz target from its
//! seeds for SECONDS each (default 60), on the stable toolchain (`RUSTC_BOOTSTRAP=1` lets
//! cargo-fuzz pass its `-Z` flags), with debug assertions and overflow checks on.
//!
//! New inputs a run discovers go to `target/fuzz-corpus/TARGET/`, never into the
//! committed seeds; a crash is written by libFuzzer to `fuzz/artifacts/TARGET/` and fails
//! the run (keep it as a regression test in `tests/hostile/` and fix it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use edgeflow_tests::{fixtures, root};

/// The fuzz targets whose seeds `cargo xtask fuzz-seeds` generates from the fixtures.
pub const TARGETS: [&str; 4] = [
    "parse_execute",
    "import_tflite",
    "pipeline_from_bytes",
    "cli_run",
];

/// Every fuzz target of `fuzz/fuzz_targets/` (the others' seeds are committed files).
pub const ALL_TARGETS: [&str; 14] = [
    "parse_execute",
    "import_tflite",
    "pipeline_from_bytes",
    "telemetry_decode",
    "data_csv",
    "data_jsonl",
    "data_tfrecord",
    "data_wav",
    "data_npy",
    "data_ts",
    "data_image",
    "data_parquet",
    "cli_features",
    "cli_run",
];

fn seeds_dir(target: &str) -> PathBuf {
    root().join("fuzz/seeds").join(target)
}

fn write_seed(target: &str, name: &str, bytes: &[u8]) -> Result<()> {
    // cli_run: each seed also with the selector's reseal bit, so mutations of the artifact
    // get a valid CRC.
    if target == "cli_run" && bytes.first().is_some_and(|b| b & 0x80 == 0) {
        let mut resealed = bytes.to_vec();
        resealed[0] |= 0x80;
        write_raw_seed(target, &format!("{name}.reseal"), &resealed)?;
    }
    write_raw_seed(target, name, bytes)
}

fn write_raw_seed(target: &str, name: &str, bytes: &[u8]) -> Result<()> {
    let dir = seeds_dir(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), bytes).with_context(|| format!("writing seed {name}"))
}

/// A deterministic test signal: a chirp plus a little xorshift noise, as i16 samples.
fn signal(n: usize, seed: u64) -> Vec<i16> {
    let mut s = seed | 1;
    (0..n)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let t = i as f64 / n as f64;
            let v = (t * (20.0 + 200.0 * t) * std::f64::consts::TAU).sin() * 8000.0;
            (v + (s % 512) as f64 - 256.0) as i16
        })
        .collect()
}

/// A `cli_run` input: the file type selector (`kind` < 0x80; `write_seed` adds the
/// variant with the reseal bit), the artifact's length (u16, little-endian), the artifact
/// and the input file.
fn cli_run_seed(kind: u8, artifact: &[u8], file: &[u8]) -> Result<Vec<u8>> {
    let len = u16::try_from(artifact.len()).context("artifact over 64 KiB for a cli_run seed")?;
    let mut v = vec![kind];
    v.extend_from_slice(&len.to_le_bytes());
    v.extend_from_slice(artifact);
    v.extend_from_slice(file);
    Ok(v)
}

/// Seeds kept across regenerations: `parse_execute` artifacts written by an older
/// edgeflow (`format_1_1_*`: format 1.1, plans of the compiler before 1.2), which this
/// generator can no longer produce. The 1.2 reader must keep refusing those whose plan
/// lacks the kernels' accumulator scratch (`Error::OlderPlan`: `conv_same_s1_int8`,
/// `fc_int8`, `pools_int8`) and keep accepting those whose plan suffices
/// (`dw_m3_dil2_int8`, `conv_same_s1_f32`); each as is and with the reseal byte.
fn is_kept_old_format(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("format_1_1_"))
}

/// Regenerates `fuzz/seeds/`: every conformance fixture (as `.tflite` and as a compiled
/// artifact), every hostile file of `tests/hostile/`, and the example feature pipelines
/// with test signals and images.
pub fn seeds() -> Result<()> {
    for t in TARGETS {
        let d = seeds_dir(t);
        if d.exists() {
            for e in std::fs::read_dir(&d)? {
                let p = e?.path();
                if !is_kept_old_format(&p) {
                    std::fs::remove_file(&p)?;
                }
            }
        }
    }
    for f in fixtures() {
        let tflite = std::fs::read(&f.model)?;
        // cli_run: the artifact with its own input tensor as a `.npy` file (type 0).
        let c = edgeflow_compile::compile(&tflite, &f.name)?;
        write_seed(
            "cli_run",
            &format!("{}.npy", f.name),
            &cli_run_seed(0, &c.artifact, &std::fs::read(&f.input)?)?,
        )?;
        write_seed("import_tflite", &format!("{}.tflite", f.name), &tflite)?;
        let c = edgeflow_compile::compile(&tflite, &f.name)?;
        // First byte even: the artifact is taken as is (odd reseals the CRC after mutation).
        let mut seed = vec![0u8];
        seed.extend_from_slice(&c.artifact);
        write_seed("parse_execute", &format!("{}.efm", f.name), &seed)?;
        seed[0] = 1;
        write_seed("parse_execute", &format!("{}.reseal.efm", f.name), &seed)?;
    }
    // An artifact with a feature pipeline and its precomputed tables (PipelineTables
    // section, validated and bound to the pipeline by CRC in `Artifact::parse`).
    if let Some(f) = fixtures().into_iter().find(|f| f.name == "fc_int8") {
        let c = edgeflow_compile::compile(&std::fs::read(&f.model)?, &f.name)?;
        let a = edgeflow_format::Artifact::parse(&c.artifact)?;
        let spec =
            edgeflow_dsp::host::load(&root().join("crates/edgeflow-dsp/pipelines/kws_mfcc.toml"))?;
        let desc = edgeflow_dsp::host::to_bytes(&spec)?;
        let tables = edgeflow_dsp::host::tables(&edgeflow_dsp::Pipeline::from_bytes(&desc)?)?;
        let tables = edgeflow_format::tables::encode(&desc, &tables);
        use edgeflow_format::SectionKind as K;
        let art = edgeflow_format::write::assemble(&[
            (K::Graph, a.graph),
            (K::Weights, a.weights),
            (K::FeaturePipeline, &desc),
            (K::PipelineTables, &tables),
        ])?;
        let mut seed = vec![0u8];
        seed.extend_from_slice(&art);
        write_seed("parse_execute", "fc_int8_pipeline_tables.efm", &seed)?;
        seed[0] = 1;
        write_seed("parse_execute", "fc_int8_pipeline_tables.reseal.efm", &seed)?;
    }
    // cli_run through a feature pipeline: the fully-connected fixtures (16 inputs) with a
    // vector pipeline, fed CSV rows (type 1) and a `.npy` raw sample (type 0) of another
    // shape than the model input, so it goes through the pipeline.
    for name in ["fc_f32", "fc_int8"] {
        let Some(f) = fixtures().into_iter().find(|f| f.name == name) else {
            continue;
        };
        let c = edgeflow_compile::compile(&std::fs::read(&f.model)?, &f.name)?;
        let spec = edgeflow_dsp::host::from_toml(
            "[input.vector]\nlen = 16\n[[blocks]]\nscale = { scale = 0.5, offset = -1.0 }\n",
            "<seed>",
        )?;
        let art = edgeflow::host::attach_pipeline(&c.artifact, &spec)?;
        let rows: String = (0..3)
            .map(|r| {
                let v: Vec<String> = (0..16)
                    .map(|i| format!("{}", (i * 7 + r * 3) % 11))
                    .collect();
                v.join(",") + "\n"
            })
            .collect();
        write_seed(
            "cli_run",
            &format!("{name}_vector_pipeline.csv"),
            &cli_run_seed(1, &art, rows.as_bytes())?,
        )?;
    }
    for e in std::fs::read_dir(root().join("tests/hostile"))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "efm") {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let input = root().join("tests/hostile/in_1x12_i8.npy");
            write_seed(
                "cli_run",
                &format!("hostile_{name}"),
                &cli_run_seed(0, &std::fs::read(&p)?, &std::fs::read(input)?)?,
            )?;
        }
    }
    let hostile = root().join("tests/hostile");
    for e in std::fs::read_dir(&hostile)? {
        let p = e?.path();
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let bytes = std::fs::read(&p)?;
        if name.ends_with(".efm") {
            let mut seed = vec![0u8];
            seed.extend_from_slice(&bytes);
            write_seed("parse_execute", &format!("hostile_{name}"), &seed)?;
        } else if name.ends_with(".tflite") {
            write_seed("import_tflite", &format!("hostile_{name}"), &bytes)?;
        }
    }
    let pipelines = root().join("crates/edgeflow-dsp/pipelines");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&pipelines)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    names.sort();
    for p in names {
        let spec = edgeflow_dsp::host::load(&p)?;
        let desc = edgeflow_dsp::host::to_bytes(&spec)?;
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("pipeline");
        let pipeline = edgeflow_dsp::Pipeline::from_bytes(&desc)?;
        let len = u16::try_from(desc.len()).context("pipeline description over 64 KiB")?;
        let head = |mode: u8| {
            let mut v = len.to_le_bytes().to_vec();
            v.extend_from_slice(&desc);
            v.push(mode);
            v
        };
        match spec.input {
            edgeflow_dsp::Input::Signal { window, axes, .. } => {
                // Two and a half windows of samples, pushed 1 and 17 values at a time,
                // as i16 (mode bit 0 clear) and as f32 bit patterns (bit 0 set).
                let n = (window as usize * axes as usize * 5 / 2).min(4096);
                let sig = signal(n, 7);
                let mut s = head(0);
                s.extend(sig.iter().flat_map(|v| v.to_le_bytes()));
                write_seed("pipeline_from_bytes", &format!("{stem}.i16"), &s)?;
                let mut s = head(64 | 1);
                s.extend(sig.iter().flat_map(|&v| (v as f32 / 8.0).to_le_bytes()));
                write_seed("pipeline_from_bytes", &format!("{stem}.f32"), &s)?;
            }
            _ => {
                // Images and vectors take their values from the input bytes, repeated.
                let n = pipeline.input_len().min(4096);
                let mut s = head(0);
                s.extend((0..n).map(|i| (i * 37 % 251) as u8));
                write_seed("pipeline_from_bytes", &format!("{stem}.bytes"), &s)?;
            }
        }
    }
    for t in TARGETS {
        let n = std::fs::read_dir(seeds_dir(t))?.count();
        println!("fuzz/seeds/{t}: {n} seeds");
    }
    Ok(())
}

/// Whether `cargo fuzz` can run here.
pub fn available() -> bool {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs every target for `secs` seconds from its committed seeds; fails on any finding.
pub fn run(secs: u64, only: Option<&str>) -> Result<()> {
    if !available() {
        bail!("cargo-fuzz is not installed (`cargo install cargo-fuzz`; .ci/run installs it)");
    }
    if let Some(o) = only {
        if !ALL_TARGETS.contains(&o) {
            bail!(
                "unknown fuzz target {o:?}; the targets are {}",
                ALL_TARGETS.join(", ")
            );
        }
    }
    for t in ALL_TARGETS.iter().filter(|t| only.is_none_or(|o| o == **t)) {
        let work = root().join("target/fuzz-corpus").join(t);
        std::fs::create_dir_all(&work)?;
        println!(
            "== fuzz {t} for {secs} s (seeds: fuzz/seeds/{t}, new inputs: {})",
            rel(&work)
        );
        let started = Instant::now();
        let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        c.current_dir(root())
            .env("RUSTC_BOOTSTRAP", "1")
            .args([
                "fuzz",
                "run",
                "--sanitizer",
                "none",
                "--debug-assertions",
                t,
            ])
            .arg(&work)
            .arg(seeds_dir(t));
        // Inputs earlier runs found (kept under fuzz/regressions/TARGET/) are replayed
        // first, like the seeds, so a fixed finding that comes back fails the run.
        let regressions = root().join("fuzz/regressions").join(t);
        if regressions.is_dir() {
            c.arg(&regressions);
        }
        c.arg("--")
            .arg(format!("-max_total_time={secs}"))
            // A single input may take at most 10 s and 2 GiB (the targets cap their arenas).
            .args(["-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1"]);
        let artifacts = root().join("fuzz/artifacts").join(t);
        let count = |d: &std::path::Path| std::fs::read_dir(d).map_or(0, |r| r.count());
        let before = count(&artifacts);
        let s = c.status().with_context(|| format!("cannot run {c:?}"))?;
        if !s.success() {
            // libFuzzer writes the failing input under fuzz/artifacts/TARGET/; without a
            // new file there the run itself failed (a build error, a full disk, ...).
            if count(&artifacts) > before {
                bail!(
                    "fuzz target {t} found a failure (see fuzz/artifacts/{t}/): keep the input as a test and fix it"
                );
            }
            bail!("cargo fuzz run {t} failed with {s} and left no failing input: see its output above (a build or tool failure, not a finding)");
        }
        println!(
            "== fuzz {t}: no findings in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}
