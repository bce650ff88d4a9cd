//! `edgeflow pipeline run [PROJECT] [--from STAGE] [--until STAGE] [--out DIR]`: the whole
//! flow of an `edgeflow.toml` as one cached pipeline.
//!
//! Stages, in order: extract → analyse → prepare → train → evaluate → quantize → validate →
//! deploy → monitor. Each stage calls the library (or the CLI's own command function)
//! in-process; only the emulated board is a separate process (QEMU).
//!
//! **Cache.** A stage's key is the SHA-256 of: the stage's name and logic version, the
//! edgeflow version, the stage's slice of the project file (its TOML tables as canonical
//! JSON) and the SHA-256 of every input file (data files, the feature pipeline, and the
//! upstream stages' output files). The outputs live in `OUT/cache/STAGE/KEY/`, written to
//! a temporary directory and renamed when the stage succeeds, with `stage.json` (status,
//! metrics) and `lineage.json` (config slice, input and output hashes, data hashes,
//! versions). A stage whose key directory exists is reused, and the run says so. Because
//! upstream outputs enter the key by content, a stage that reruns and produces identical
//! bytes does not invalidate the stages after it.
//!
//! **Results.** `OUT/summary.json` (per stage: status, seconds, cached, key metrics) and
//! `OUT/index.html` (a row per stage, linking its report) are rewritten after every stage,
//! so a stopped run still leaves them. A failed validation gate stops the run before
//! deployment and names the gate; the command then exits non-zero.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, FromArgMatches, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::project::{self, Loaded};

mod device;

/// The stages, in order.
pub const STAGES: [&str; 9] = [
    "extract", "analyse", "prepare", "train", "evaluate", "quantize", "validate", "deploy",
    "monitor",
];

/// Version of each stage's logic: bump one to invalidate that stage's cached results.
fn stage_version(stage: &str) -> u32 {
    match stage {
        // 3: an autoencoder's replay also reports the device's detection accuracy.
        "deploy" => 3,
        // 4: an autoencoder's score drift compares reconstruction errors (baseline v2).
        "monitor" => 4,
        // 3: an autoencoder's score baseline counts the device's score — the
        // reconstruction MSE (baseline v2, `ScoreKind::ReconstructionMse`) — on the normal
        // training and validation windows (2: the largest reconstructed value).
        "train" => 3,
        // 3: bias correction is on by default (2: the monitoring baseline is recounted on
        // the int8 input the device bins).
        "quantize" => 3,
        _ => 1,
    }
}

/// `edgeflow pipeline …`.
#[derive(Subcommand)]
pub enum PipelineCommand {
    /// Run the project's stages, reusing every cached stage whose inputs did not change.
    Run(RunArgs),
}

/// `edgeflow pipeline run`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// The project file, or a directory holding `edgeflow.toml` (default: ./edgeflow.toml).
    pub project: Option<PathBuf>,
    /// Stop after this stage.
    #[arg(long, value_parser = stage_name)]
    pub until: Option<String>,
    /// Rerun this stage and every later one even if cached.
    #[arg(long, value_parser = stage_name)]
    pub from: Option<String>,
    /// Output directory (default: `out` beside the project file).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn stage_name(s: &str) -> Result<String, String> {
    if STAGES.contains(&s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "unknown stage {s:?} (stages: {})",
            STAGES.join(", ")
        ))
    }
}

/// One stage's record in `summary.json` (and `stage.json` in its cache directory).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StageResult {
    /// Stage name.
    pub stage: String,
    /// `passed`, `failed` or `skipped`.
    pub status: String,
    /// Wall time of this run's work on it (the cache lookup when reused).
    pub seconds: f64,
    /// Reused from the cache.
    pub cached: bool,
    /// The cache key (hex SHA-256).
    pub key: String,
    /// The stage's directory.
    pub dir: String,
    /// Its HTML report, if any (path relative to the output directory).
    pub report: Option<String>,
    /// Key figures.
    pub metrics: Value,
    /// Why it failed or was skipped.
    pub message: Option<String>,
}

/// Runs a pipeline subcommand.
pub fn run(cmd: PipelineCommand) -> Result<()> {
    match cmd {
        PipelineCommand::Run(a) => run_pipeline(&a).map(|_| ()),
    }
}

/// What the stages share while the pipeline runs.
struct Ctx {
    project: Loaded,
    out: PathBuf,
    /// Output directory of each finished stage.
    dirs: Vec<(String, PathBuf)>,
    /// Data files and their SHA-256 (from `extract`).
    data: Vec<(PathBuf, String)>,
}

impl Ctx {
    fn dir(&self, stage: &str) -> Result<&Path> {
        self.dirs
            .iter()
            .find(|(s, _)| s == stage)
            .map(|(_, d)| d.as_path())
            .ok_or_else(|| anyhow!("stage {stage} has not run"))
    }
    fn file(&self, stage: &str, name: &str) -> Result<PathBuf> {
        Ok(self.dir(stage)?.join(name))
    }
}

/// A stage's declared inputs: config tables and files.
struct Inputs {
    tables: &'static [&'static str],
    files: Vec<PathBuf>,
}

/// What a stage's work returns.
struct Outcome {
    metrics: Value,
    report: Option<String>,
    /// Failure message: the stage's outputs are kept for inspection but not cached.
    failed: Option<String>,
}

fn sha256_file(path: &Path) -> Result<String> {
    edgeflow_train::data::sha256_file(path).with_context(|| format!("hashing {}", path.display()))
}

/// Runs the pipeline; returns the per-stage results (also written to `summary.json`).
pub fn run_pipeline(a: &RunArgs) -> Result<Vec<StageResult>> {
    let start_all = Instant::now();
    let path = a
        .project
        .clone()
        .unwrap_or_else(|| PathBuf::from("edgeflow.toml"));
    let path = std::path::absolute(&path).unwrap_or(path);
    let loaded = project::load(&path)?;
    let out = match &a.out {
        Some(o) => std::path::absolute(o).unwrap_or(o.clone()),
        None => loaded.dir.join("out"),
    };
    std::fs::create_dir_all(out.join("cache"))
        .with_context(|| format!("cannot create {}", out.display()))?;
    let until = a
        .until
        .as_deref()
        .and_then(|u| STAGES.iter().position(|s| *s == u))
        .unwrap_or(STAGES.len() - 1);
    let from = a
        .from
        .as_deref()
        .and_then(|f| STAGES.iter().position(|s| *s == f));
    println!(
        "pipeline {} ({}): stages {} → {}, output {}",
        loaded.project.project.name,
        loaded.path.display(),
        STAGES[0],
        STAGES[until],
        out.display()
    );
    let mut ctx = Ctx {
        project: loaded,
        out: out.clone(),
        dirs: Vec::new(),
        data: Vec::new(),
    };
    let mut results: Vec<StageResult> = Vec::new();
    let mut failure = None;
    for (i, &stage) in STAGES.iter().enumerate().take(until + 1) {
        let n = format!("[{}/{}] {stage}", i + 1, until + 1);
        if matches!(stage, "deploy" | "monitor") && !ctx.project.project.deploy.enabled {
            println!("{n}: skipped (deploy.enabled = false)");
            results.push(skipped(stage, "deploy.enabled = false"));
            write_summary(&ctx, &results, start_all.elapsed())?;
            continue;
        }
        let t = Instant::now();
        let inputs = inputs(&ctx, stage)?;
        let key = key(&ctx, stage, &inputs)?;
        let final_dir = out.join("cache").join(stage).join(&key[..16]);
        let force = from.is_some_and(|f| i >= f);
        if !force && final_dir.join("stage.json").is_file() {
            let text = std::fs::read_to_string(final_dir.join("stage.json"))?;
            let mut r: StageResult = serde_json::from_str(&text)
                .with_context(|| format!("{}: corrupt stage record", final_dir.display()))?;
            r.cached = true;
            r.seconds = t.elapsed().as_secs_f64();
            println!(
                "{n}: reused (cache key {}…, {})",
                &key[..12],
                headline(stage, &r.metrics)
            );
            ctx.dirs.push((stage.to_string(), final_dir));
            if stage == "extract" {
                ctx.data = data_files(&r.metrics);
            }
            results.push(r);
            write_summary(&ctx, &results, start_all.elapsed())?;
            continue;
        }
        println!(
            "{n}: running (cache key {}…{})",
            &key[..12],
            if force { ", forced by --from" } else { "" }
        );
        let work = out
            .join("cache")
            .join(stage)
            .join(format!("{}.tmp", &key[..16]));
        if work.exists() {
            std::fs::remove_dir_all(&work)
                .with_context(|| format!("cannot clear {}", work.display()))?;
        }
        std::fs::create_dir_all(&work)
            .with_context(|| format!("cannot create {}", work.display()))?;
        let outcome = run_stage(&mut ctx, stage, &work);
        let seconds = t.elapsed().as_secs_f64();
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => Outcome {
                metrics: Value::Null,
                report: None,
                failed: Some(format!("{e:#}")),
            },
        };
        let failed = outcome.failed.is_some();
        let mut r = StageResult {
            stage: stage.into(),
            status: if failed { "failed" } else { "passed" }.into(),
            seconds,
            cached: false,
            key: key.clone(),
            dir: String::new(),
            report: None,
            metrics: outcome.metrics,
            message: outcome.failed.clone(),
        };
        let dir = if failed {
            // Kept for inspection, never reused.
            let d = out
                .join("cache")
                .join(stage)
                .join(format!("{}.failed", &key[..16]));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::rename(&work, &d).with_context(|| format!("cannot keep {}", d.display()))?;
            d
        } else {
            write_lineage(&ctx, stage, &key, &inputs, &work)?;
            if final_dir.exists() {
                std::fs::remove_dir_all(&final_dir)?;
            }
            std::fs::rename(&work, &final_dir)
                .with_context(|| format!("cannot store {}", final_dir.display()))?;
            final_dir.clone()
        };
        r.dir = dir.display().to_string();
        r.report = outcome.report.map(|f| {
            dir.join(f)
                .strip_prefix(&out)
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        });
        if !failed {
            std::fs::write(dir.join("stage.json"), serde_json::to_string_pretty(&r)?)?;
            ctx.dirs.push((stage.to_string(), dir));
            println!(
                "{n}: passed in {seconds:.1} s ({})",
                headline(stage, &r.metrics)
            );
        } else {
            println!("{n}: FAILED in {seconds:.1} s");
        }
        results.push(r);
        write_summary(&ctx, &results, start_all.elapsed())?;
        if let Some(m) = outcome.failed {
            failure = Some((stage, m));
            break;
        }
    }
    write_summary(&ctx, &results, start_all.elapsed())?;
    print_table(&ctx, &results, start_all.elapsed());
    if let Some((stage, m)) = failure {
        if stage == "validate" {
            bail!("{m}; not deploying");
        }
        bail!("stage {stage} failed: {m}");
    }
    Ok(results)
}

fn skipped(stage: &str, why: &str) -> StageResult {
    StageResult {
        stage: stage.into(),
        status: "skipped".into(),
        seconds: 0.0,
        cached: false,
        key: String::new(),
        dir: String::new(),
        report: None,
        metrics: Value::Null,
        message: Some(why.into()),
    }
}

/// The data files the `extract` stage recorded.
fn data_files(metrics: &Value) -> Vec<(PathBuf, String)> {
    metrics["files"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|f| {
                    Some((
                        PathBuf::from(f["path"].as_str()?),
                        f["sha256"].as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn source_paths(ctx: &Ctx) -> Result<Vec<PathBuf>> {
    let cfg = ctx.project.train_config(&ctx.out)?;
    let mut v = Vec::new();
    for s in std::iter::once(&cfg.data.train).chain(cfg.data.test.as_ref()) {
        v.push(match s {
            edgeflow_train::config::Source::Ts(p) => p.clone(),
            edgeflow_train::config::Source::Npz(n) => n.path.clone(),
            edgeflow_train::config::Source::Table(t) => t.path.clone(),
            edgeflow_train::config::Source::WavFolder(f)
            | edgeflow_train::config::Source::ImageFolder(f) => f.path.clone(),
        });
    }
    Ok(v)
}

/// The config tables and files each stage depends on.
fn inputs(ctx: &Ctx, stage: &str) -> Result<Inputs> {
    let cfg = ctx.project.train_config(&ctx.out)?;
    let pipeline = cfg.features.pipeline.clone();
    let f = |s: &str, n: &str| ctx.file(s, n);
    Ok(match stage {
        "extract" => Inputs {
            tables: &["data"],
            files: {
                let mut v = Vec::new();
                for p in source_paths(ctx)? {
                    if p.is_dir() {
                        // A class folder: every file in its class sub-folders.
                        let listing = edgeflow_data::sources::files::ClassFolder::open(
                            &p,
                            &["wav", "png", "jpg", "jpeg"],
                        )?;
                        v.extend(listing.files().iter().map(|(f, _)| f.clone()));
                    } else {
                        v.push(p);
                    }
                }
                v.push(pipeline);
                v
            },
        },
        "analyse" => Inputs {
            tables: &["data", "schema"],
            files: vec![f("extract", "data.json")?],
        },
        "prepare" => Inputs {
            tables: &["data", "split", "features"],
            files: vec![f("extract", "data.json")?, pipeline],
        },
        "train" => Inputs {
            tables: &["project", "data", "split", "features", "model", "train"],
            files: [
                "x_train.npy",
                "y_train.npy",
                "x_validation.npy",
                "y_validation.npy",
            ]
            .iter()
            .map(|n| f("prepare", n))
            .chain([Ok(pipeline)])
            .collect::<Result<_>>()?,
        },
        "evaluate" => Inputs {
            tables: &["data", "split", "features", "model"],
            files: vec![
                f("train", "model.edgeflow")?,
                f("prepare", "x_test.npy")?,
                f("prepare", "y_test.npy")?,
            ],
        },
        "quantize" => Inputs {
            tables: &["data", "split", "features", "model", "quantize"],
            files: vec![f("train", "model.edgeflow")?, f("prepare", "x_train.npy")?],
        },
        "validate" => Inputs {
            tables: &["validate", "board"],
            files: vec![
                f("quantize", "model_int8.edgeflow")?,
                f("train", "model.edgeflow")?,
                f("prepare", "x_test.npy")?,
                f("prepare", "y_test.npy")?,
            ],
        },
        "deploy" => Inputs {
            tables: &["data", "split", "features", "board", "deploy"],
            files: [
                f("quantize", "model_int8.edgeflow")?,
                f("extract", "data.json")?,
                f("validate", "gates.json")?,
            ]
            .into_iter()
            .chain(device::firmware_input(ctx)?)
            .collect(),
        },
        "monitor" => Inputs {
            tables: &["data", "split", "features", "board", "deploy", "monitor"],
            files: [
                f("quantize", "model_int8.edgeflow")?,
                f("deploy", "telemetry-clean.bin")?,
            ]
            .into_iter()
            .chain(device::firmware_input(ctx)?)
            .collect(),
        },
        other => bail!("unknown stage {other}"),
    })
}

fn key(ctx: &Ctx, stage: &str, inputs: &Inputs) -> Result<String> {
    let mut h = Sha256::new();
    h.update(format!(
        "edgeflow-pipeline\0{stage}\0{}\0{}\0",
        stage_version(stage),
        env!("CARGO_PKG_VERSION")
    ));
    h.update(ctx.project.slice(inputs.tables));
    for f in &inputs.files {
        h.update([0u8]);
        // The file's folder and name count too: in a class folder, moving a file to
        // another class changes the data without changing any file's bytes.
        for part in f.iter().rev().take(2).collect::<Vec<_>>().into_iter().rev() {
            h.update(part.as_encoded_bytes());
            h.update([b'/']);
        }
        h.update(sha256_file(f)?);
    }
    Ok(edgeflow_train::data::hex(&h.finalize()))
}

fn write_lineage(ctx: &Ctx, stage: &str, key: &str, inputs: &Inputs, dir: &Path) -> Result<()> {
    let mut outputs = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        if p.is_file() {
            outputs.push(json!({
                "file": e.file_name().to_string_lossy(),
                "sha256": sha256_file(&p)?,
                "bytes": p.metadata()?.len(),
            }));
        }
    }
    let config: Value = serde_json::from_str(&ctx.project.slice(inputs.tables))?;
    let ins: Vec<Value> = inputs
        .files
        .iter()
        .map(|f| Ok(json!({"path": f.display().to_string(), "sha256": sha256_file(f)?})))
        .collect::<Result<_>>()?;
    let data: Vec<Value> = ctx
        .data
        .iter()
        .map(|(p, h)| json!({"path": p.display().to_string(), "sha256": h}))
        .collect();
    let lineage = json!({
        "stage": stage,
        "stage_version": stage_version(stage),
        "edgeflow_version": env!("CARGO_PKG_VERSION"),
        "key": key,
        "project": ctx.project.path.display().to_string(),
        "config": config,
        "inputs": ins,
        "data": data,
        "upstream": ctx.dirs.iter().map(|(s, d)| json!({"stage": s, "dir": d.display().to_string()})).collect::<Vec<_>>(),
        "outputs": outputs,
        "created_unix": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
    });
    std::fs::write(
        dir.join("lineage.json"),
        serde_json::to_string_pretty(&lineage)?,
    )?;
    Ok(())
}

/// A one-line summary of a stage's metrics for the progress lines.
fn headline(stage: &str, m: &Value) -> String {
    let pct = |v: &Value| {
        v.as_f64()
            .map_or("?".into(), |x| format!("{:.1} %", 100.0 * x))
    };
    let auc = |v: &Value| {
        v.as_f64()
            .map_or(String::new(), |a| format!(", ROC-AUC {a:.3}"))
    };
    match stage {
        "extract" => format!(
            "{} train + {} test recordings, {} classes",
            m["train_recordings"], m["test_recordings"], m["classes"]
        ),
        "analyse" => format!(
            "{} report(s), schema of {} column(s), {} anomal(ies) in the test data",
            m["reports"].as_array().map_or(0, Vec::len),
            m["schema_features"],
            m["anomalies"]
        ),
        "prepare" => format!(
            "{} / {} / {} examples of {} values",
            m["train"], m["validation"], m["test"], m["dim"]
        ),
        "train" => format!(
            "best epoch {} of {}, val accuracy {}",
            m["best_epoch"],
            m["epochs"],
            pct(&m["val_accuracy"])
        ),
        "evaluate" => format!(
            "float test accuracy {}{}",
            pct(&m["float_test_accuracy"]),
            auc(&m["float_test_roc_auc"])
        ),
        "quantize" => format!(
            "int8 test accuracy {}{}, float-int8 agreement {}",
            pct(&m["int8_test_accuracy"]),
            auc(&m["int8_test_roc_auc"]),
            pct(&m["agreement"])
        ),
        "validate" => format!("{} gates pass, {} skipped", m["passed"], m["skipped"]),
        "deploy" => format!(
            "{}/{} device predictions equal the host's, device accuracy {}",
            m["equal_to_host"],
            m["predictions"],
            pct(&m["device_accuracy"])
        ),
        "monitor" => format!(
            "clean replay {} alert(s), fault replay {} alert(s)",
            m["clean_alerts"], m["fault_alerts"]
        ),
        _ => String::new(),
    }
}

fn write_summary(ctx: &Ctx, results: &[StageResult], total: Duration) -> Result<()> {
    let pass = results.iter().all(|r| r.status != "failed")
        && results.len() == STAGES.len()
        && results.iter().all(|r| r.status == "passed");
    let m = |s: &str| {
        results
            .iter()
            .find(|r| r.stage == s)
            .map_or(Value::Null, |r| r.metrics.clone())
    };
    let summary = json!({
        "project": ctx.project.project.project.name,
        "project_file": ctx.project.path.display().to_string(),
        "edgeflow_version": env!("CARGO_PKG_VERSION"),
        "all_passed": pass,
        "seconds": total.as_secs_f64(),
        "key_metrics": {
            "float_test_accuracy": m("evaluate")["float_test_accuracy"],
            "int8_test_accuracy": m("quantize")["int8_test_accuracy"],
            "float_test_roc_auc": m("evaluate")["float_test_roc_auc"],
            "int8_test_roc_auc": m("quantize")["int8_test_roc_auc"],
            "float_int8_agreement": m("quantize")["agreement"],
            "gates": m("validate")["gates"],
            "device_equal_to_host": m("deploy")["equal_to_host"],
            "device_predictions": m("deploy")["predictions"],
            "device_accuracy": m("deploy")["device_accuracy"],
            "clean_alerts": m("monitor")["clean_alerts"],
            "fault_alerts": m("monitor")["fault_alerts"],
            "fault_alerted": m("monitor")["fault_alerted"],
        },
        "stages": results,
    });
    std::fs::write(
        ctx.out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )
    .with_context(|| format!("cannot write {}", ctx.out.join("summary.json").display()))?;
    std::fs::write(ctx.out.join("index.html"), index_html(ctx, results))
        .with_context(|| format!("cannot write {}", ctx.out.join("index.html").display()))?;
    Ok(())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn index_html(ctx: &Ctx, results: &[StageResult]) -> String {
    let mut rows = String::new();
    for r in results {
        let rel = |p: &str| {
            Path::new(&r.dir)
                .join(p)
                .strip_prefix(&ctx.out)
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        let mut links = Vec::new();
        if let Some(rep) = &r.report {
            links.push(format!("<a href=\"{}\">report</a>", esc(rep)));
        }
        if !r.dir.is_empty() {
            links.push(format!(
                "<a href=\"{}\">lineage</a>",
                esc(&rel("lineage.json"))
            ));
            links.push(format!("<a href=\"{}\">files</a>", esc(&rel(""))));
        }
        let _ = writeln!(
            rows,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.status),
            esc(&r.stage),
            esc(&r.status),
            if r.cached { "reused" } else { "ran" },
            r.seconds,
            esc(&match &r.message {
                Some(m) => m.clone(),
                None => headline(&r.stage, &r.metrics),
            }),
            links.join(" · ")
        );
    }
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>edgeflow pipeline: {name}</title>\
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}\
tr.failed{{background:#fdd}}tr.skipped{{color:#888}}</style></head><body>\
<h1>edgeflow pipeline: {name}</h1><p>Project file <code>{file}</code>; machine-readable results in \
<a href=\"summary.json\">summary.json</a>.</p>\
<table><tr><th>stage</th><th>status</th><th>cache</th><th>seconds</th><th>figures</th><th>links</th></tr>\n{rows}</table></body></html>\n",
        name = esc(&ctx.project.project.project.name),
        file = esc(&ctx.project.path.display().to_string()),
    )
}

fn print_table(ctx: &Ctx, results: &[StageResult], total: Duration) {
    println!();
    println!(
        "{:<9} {:<7} {:<6} {:>7}  figures",
        "stage", "status", "cache", "seconds"
    );
    for r in results {
        println!(
            "{:<9} {:<7} {:<6} {:>7.1}  {}",
            r.stage,
            r.status,
            if r.cached { "reused" } else { "ran" },
            r.seconds,
            match &r.message {
                Some(m) => m.clone(),
                None => headline(&r.stage, &r.metrics),
            }
        );
    }
    println!();
    for r in results {
        if let Some(rep) = &r.report {
            println!("{:<9} report {}", r.stage, ctx.out.join(rep).display());
        }
    }
    println!(
        "index   {}\nsummary {}\ntotal {:.1} s",
        ctx.out.join("index.html").display(),
        ctx.out.join("summary.json").display(),
        total.as_secs_f64()
    );
}

/// Parses command-line style arguments into a command's `Args` (calling the CLI's own
/// command functions in-process, with exactly the options a user would give).
fn parse_args<T: Args + FromArgMatches>(args: &[String]) -> Result<T> {
    let cmd = T::augment_args(clap::Command::new("edgeflow"));
    let m = cmd
        .try_get_matches_from(std::iter::once("edgeflow".to_string()).chain(args.iter().cloned()))
        .map_err(|e| anyhow!("internal: {e}"))?;
    T::from_arg_matches(&m).map_err(|e| anyhow!("internal: {e}"))
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn html_pre(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head><body><h1>{t}</h1><pre>{}</pre></body></html>\n",
        esc(body),
        t = esc(title)
    )
}

fn run_stage(ctx: &mut Ctx, stage: &str, dir: &Path) -> Result<Outcome> {
    match stage {
        "extract" => extract(ctx, dir),
        "analyse" => analyse(ctx, dir),
        "prepare" => prepare(ctx, dir),
        "train" => train(ctx, dir),
        "evaluate" => evaluate(ctx, dir),
        "quantize" => quantize(ctx, dir),
        "validate" => validate(ctx, dir),
        "deploy" => device::deploy(ctx, dir),
        "monitor" => device::monitor(ctx, dir),
        other => bail!("unknown stage {other}"),
    }
}

fn ok(metrics: Value, report: Option<&str>) -> Result<Outcome> {
    Ok(Outcome {
        metrics,
        report: report.map(str::to_string),
        failed: None,
    })
}

fn extract(ctx: &mut Ctx, dir: &Path) -> Result<Outcome> {
    let cfg = ctx.project.train_config(dir)?;
    let spec = edgeflow_train::data::load_pipeline(&cfg.features.pipeline)?;
    let pipeline = edgeflow_dsp::Pipeline::new(spec).context("the feature pipeline is invalid")?;
    let raw = edgeflow_train::data::read_sources(&cfg, &pipeline)?;
    let files: Vec<Value> = raw
        .files
        .iter()
        .map(|(p, h)| json!({"path": p.display().to_string(), "sha256": h}))
        .collect();
    let m = json!({
        "files": files,
        "classes": raw.classes.len(),
        "class_names": raw.classes,
        "train_recordings": raw.train.len(),
        "test_recordings": raw.test.as_ref().map_or(0, Vec::len),
    });
    std::fs::write(dir.join("data.json"), serde_json::to_string_pretty(&m)?)?;
    ctx.data = raw.files.clone();
    ok(m, None)
}

fn analyse(ctx: &mut Ctx, dir: &Path) -> Result<Outcome> {
    let mut reports = Vec::new();
    for (k, src) in source_paths(ctx)?.iter().enumerate() {
        let name = if k == 0 { "train" } else { "test" };
        let html = dir.join(format!("data-{name}.html"));
        println!(
            "  edgeflow data stats {} --report {}",
            src.display(),
            html.display()
        );
        let matches = <crate::data::DataCommand as clap::Subcommand>::augment_subcommands(
            clap::Command::new("data"),
        )
        .try_get_matches_from(["data", "stats", &s(src), "--report", &s(&html)])
        .map_err(|e| anyhow!("internal: {e}"))?;
        let cmd = crate::data::DataCommand::from_arg_matches(&matches)
            .map_err(|e| anyhow!("internal: {e}"))?;
        crate::data::run(cmd)?;
        reports.push(format!("data-{name}.html"));
    }
    // Data validation (TFX's schema + example validator): the schema of the training
    // data, and the test data checked against it, skew included.
    let sources = source_paths(ctx)?;
    let settings = ctx.project.project.schema.clone();
    let train_t = edgeflow_data::schema::open(&sources[0], 1000)?;
    let schema = edgeflow_data::schema::infer(&train_t, &Default::default())?;
    schema.save(&dir.join("schema.json"))?;
    println!(
        "  inferred the schema of {} -> schema.json",
        sources[0].display()
    );
    let mut anomalies = Vec::new();
    if let Some(test) = sources.get(1) {
        let test_t = edgeflow_data::schema::open(test, 1000)?;
        anomalies = edgeflow_data::schema::validate(
            &schema,
            &test_t,
            Some(&train_t),
            &settings.thresholds,
        )?;
        println!(
            "  checked {} against it: {} anomal{}",
            test.display(),
            anomalies.len(),
            if anomalies.len() == 1 { "y" } else { "ies" }
        );
        for a in &anomalies {
            println!("    {a}");
        }
    }
    std::fs::write(
        dir.join("anomalies.json"),
        serde_json::to_string_pretty(&anomalies)?,
    )?;
    let links: String = reports
        .iter()
        .map(|r| format!("<li><a href=\"{r}\">{r}</a></li>"))
        .collect();
    let found: String = anomalies
        .iter()
        .map(|a| format!("<li><code>{}</code></li>", esc(&a.to_string())))
        .collect();
    std::fs::write(
        dir.join("analyse.html"),
        format!("<!doctype html><html><head><meta charset=\"utf-8\"><title>analysis</title></head><body><h1>Data analysis</h1><ul>{links}</ul>\
<h2>Data validation</h2><p>Schema inferred from the training data: <a href=\"schema.json\">schema.json</a>. \
The test data against it: {} anomal{} (<a href=\"anomalies.json\">anomalies.json</a>).</p><ul>{found}</ul></body></html>\n",
            anomalies.len(),
            if anomalies.len() == 1 { "y" } else { "ies" }),
    )?;
    let metrics = json!({
        "reports": reports,
        "schema_features": schema.features.len(),
        "anomalies": anomalies.len(),
        "anomaly_kinds": anomalies.iter().map(|a| a.kind.name()).collect::<Vec<_>>(),
    });
    let failed = (settings.fail_on_anomalies && !anomalies.is_empty()).then(|| {
        format!(
            "the test data has {} anomal{} against the training schema (schema.fail_on_anomalies): {}",
            anomalies.len(),
            if anomalies.len() == 1 { "y" } else { "ies" },
            anomalies[0]
        )
    });
    Ok(Outcome {
        metrics,
        report: Some("analyse.html".into()),
        failed,
    })
}

fn prepare(ctx: &mut Ctx, dir: &Path) -> Result<Outcome> {
    let cfg = ctx.project.train_config(dir)?;
    let prep = edgeflow_train::train::prepare(&cfg)?;
    for (name, f) in [
        ("train", &prep.train),
        ("validation", &prep.validation),
        ("test", &prep.test),
    ] {
        crate::tensor_io::write_npy(
            &dir.join(format!("x_{name}.npy")),
            &[f.len() as u64, f.dim as u64],
            f.x.iter().copied(),
        )?;
        crate::tensor_io::write_npy(
            &dir.join(format!("y_{name}.npy")),
            &[f.y.len() as u64],
            f.y.iter().map(|&v| v as i64),
        )?;
    }
    ok(
        json!({
            "train": prep.train.len(),
            "validation": prep.validation.len(),
            "test": prep.test.len(),
            "dim": prep.train.dim,
            "classes": prep.classes,
        }),
        None,
    )
}

fn train(ctx: &mut Ctx, dir: &Path) -> Result<Outcome> {
    let cfg = ctx.project.train_config(dir)?;
    let mut progress = |h: &edgeflow_train::EpochLog, total: usize| {
        let acc = |a: Option<f64>| a.map_or(String::new(), |a| format!(" acc {a:.3}"));
        println!(
            "  epoch {:>3}/{total}  loss {:.4}{} | val loss {:.4}{} | {:.2} s",
            h.epoch,
            h.train_loss,
            acc(h.train_accuracy),
            h.val_loss,
            acc(h.val_accuracy),
            h.seconds
        );
    };
    let trained = edgeflow_train::train(
        &cfg,
        edgeflow_train::TrainOptions {
            resume: false,
            on_epoch: Some(&mut progress),
        },
    )?;
    // The checkpoint directory is for --resume of `edgeflow train`; not a pipeline output.
    let _ = std::fs::remove_dir_all(dir.join("checkpoint"));
    let best = trained
        .history
        .iter()
        .find(|h| h.epoch == trained.best_epoch);
    let mut table = String::from("epoch  train loss  train acc  val loss  val acc  lr\n");
    for h in &trained.history {
        let _ = writeln!(
            table,
            "{:>5}  {:>10.4}  {:>9}  {:>8.4}  {:>7}  {:.2e}",
            h.epoch,
            h.train_loss,
            h.train_accuracy.map_or("-".into(), |a| format!("{a:.3}")),
            h.val_loss,
            h.val_accuracy.map_or("-".into(), |a| format!("{a:.3}")),
            h.lr
        );
    }
    let _ = writeln!(table, "\nkept the weights of epoch {}", trained.best_epoch);
    std::fs::write(dir.join("train.html"), html_pre("Training", &table))?;
    ok(
        json!({
            "epochs": trained.history.len(),
            "best_epoch": trained.best_epoch,
            "val_accuracy": best.and_then(|h| h.val_accuracy),
            "val_loss": best.map(|h| h.val_loss),
            "classes": trained.classes,
        }),
        Some("train.html"),
    )
}

fn evaluate(ctx: &mut Ctx, dir: &Path) -> Result<Outcome> {
    let cfg = ctx.project.train_config(dir)?;
    let model = ctx.file("train", "model.edgeflow")?;
    let bytes =
        std::fs::read(&model).with_context(|| format!("cannot read {}", model.display()))?;
    let name = s(&model);
    let e = edgeflow_train::evaluate(&cfg, (name.as_str(), bytes.as_slice()), None)?;
    print!("{}", indent(&e.table()));
    std::fs::write(
        dir.join("evaluation.json"),
        serde_json::to_string_pretty(&e)?,
    )?;
    std::fs::write(
        dir.join("evaluate.html"),
        html_pre("Evaluation (float32)", &e.table()),
    )?;
    ok(
        json!({
            "float_test_accuracy": e.float.test.accuracy,
            "float_test_balanced_accuracy": e.float.test.balanced_accuracy,
            "float_test_roc_auc": e.float.test.roc_auc,
            "test_examples": e.float.test.n,
        }),
        Some("evaluate.html"),
    )
}

fn indent(t: &str) -> String {
    t.lines().map(|l| format!("  {l}\n")).collect()
}

fn quantize(ctx: &mut Ctx, dir: &Path) -> Result<Outcome> {
    let q = ctx.project.project.quantize.clone();
    let float = ctx.file("train", "model.edgeflow")?;
    let int8 = dir.join("model_int8.edgeflow");
    let mut args = vec![
        s(&float),
        "-o".into(),
        s(&int8),
        "--calib".into(),
        s(&ctx.file("prepare", "x_train.npy")?),
        "--method".into(),
        q.method.clone(),
        // The monitoring baseline recounted on the int8 input the device bins.
        "--baseline-data".into(),
        s(&ctx.file("prepare", "x_train.npy")?),
    ];
    if !q.per_channel {
        args.push("--per-tensor".into());
    }
    if q.float_io {
        args.push("--float-io".into());
    }
    if !q.bias_correction {
        args.push("--no-bias-correction".into());
    }
    if q.calib_limit > 0 {
        args.extend(["--calib-limit".into(), q.calib_limit.to_string()]);
    }
    println!("  edgeflow quantize {}", args.join(" "));
    crate::quantize::run(parse_args(&args)?)?;
    let cfg = ctx.project.train_config(dir)?;
    let fb = std::fs::read(&float)?;
    let qb = std::fs::read(&int8)?;
    let (fname, qname) = (s(&float), s(&int8));
    let e = edgeflow_train::evaluate(
        &cfg,
        (fname.as_str(), fb.as_slice()),
        Some((qname.as_str(), qb.as_slice())),
    )?;
    print!("{}", indent(&e.table()));
    std::fs::write(
        dir.join("evaluation.json"),
        serde_json::to_string_pretty(&e)?,
    )?;
    std::fs::write(
        dir.join("quantize.html"),
        html_pre(
            "Quantization: float32 and int8 on the test split",
            &e.table(),
        ),
    )?;
    let q8 = e.int8.as_ref().context("no int8 evaluation")?;
    ok(
        json!({
            "int8_test_accuracy": q8.test.accuracy,
            "int8_test_roc_auc": q8.test.roc_auc,
            "float_test_accuracy": e.float.test.accuracy,
            "agreement": e.agreement.as_ref().map(|a| a.top1),
            "max_score_diff": e.agreement.as_ref().map(|a| a.max_score_diff),
            "artifact_bytes": qb.len(),
            "method": q.method,
        }),
        Some("quantize.html"),
    )
}

fn validate(ctx: &mut Ctx, dir: &Path) -> Result<Outcome> {
    let v = ctx.project.project.validate.clone();
    let gates = dir.join("gates.toml");
    std::fs::write(&gates, toml::to_string(&v.gates)?)?;
    let mut args = vec![
        s(&ctx.file("quantize", "model_int8.edgeflow")?),
        "--board".into(),
        ctx.project.project.board.name.clone(),
        "--gates".into(),
        s(&gates),
        "--float".into(),
        s(&ctx.file("train", "model.edgeflow")?),
        "--test-data".into(),
        s(&ctx.file("prepare", "x_test.npy")?),
        "--test-labels".into(),
        s(&ctx.file("prepare", "y_test.npy")?),
    ];
    if v.hil {
        args.extend([
            "--hil".into(),
            "--hil-samples".into(),
            v.hil_samples.to_string(),
        ]);
        println!(
            "  running {} test samples on the emulated {} (QEMU)",
            v.hil_samples, ctx.project.project.board.name
        );
    }
    let mut a: crate::validate::ValidateArgs = parse_args(&args)?;
    // In a project the hardware-in-the-loop check is a setting, not a flag.
    a.hil_off = Some(format!(
        "set [validate] hil = false in {}",
        ctx.project.path.display()
    ));
    let (board, mut gates_rows, budgets) = crate::validate::check(&a)?;
    if let Some(min) = v.min_roc_auc {
        let eval = ctx.file("quantize", "evaluation.json")?;
        let e: Value = serde_json::from_str(
            &std::fs::read_to_string(&eval)
                .with_context(|| format!("cannot read {}", eval.display()))?,
        )?;
        let auc = e["int8"]["test"]["roc_auc"].as_f64();
        gates_rows.push(crate::validate::Gate {
            name: "int8 test ROC-AUC".into(),
            measured: auc.map_or("none (not a two-class task)".into(), |a| format!("{a:.4}")),
            limit: format!(">= {min}"),
            status: if auc.is_some_and(|a| a >= min) {
                crate::validate::Status::Pass
            } else {
                crate::validate::Status::Fail
            },
        });
    }
    let table = crate::validate::table(&gates_rows);
    print!("{}", indent(&table));
    std::fs::write(
        dir.join("validate.html"),
        crate::validate::report_html(&a.model, &board, &gates_rows, &budgets)?,
    )?;
    use crate::validate::Status;
    let rows: Vec<Value> = gates_rows
        .iter()
        .map(|g| {
            json!({
                "gate": g.name,
                "measured": g.measured,
                "limit": g.limit,
                "status": match &g.status { Status::Pass => "pass", Status::Fail => "fail", Status::Skip(_) => "skip" },
                "reason": match &g.status { Status::Skip(w) => Some(w.clone()), _ => None },
            })
        })
        .collect();
    std::fs::write(dir.join("gates.json"), serde_json::to_string_pretty(&rows)?)?;
    let failed: Vec<&str> = gates_rows
        .iter()
        .filter(|g| g.status == Status::Fail)
        .map(|g| g.name.as_str())
        .collect();
    let m = json!({
        "board": board,
        "gates": rows,
        "passed": gates_rows.iter().filter(|g| g.status == Status::Pass).count(),
        "failed": failed.len(),
        "skipped": gates_rows.iter().filter(|g| matches!(g.status, Status::Skip(_))).count(),
    });
    Ok(Outcome {
        metrics: m,
        report: Some("validate.html".into()),
        failed: (!failed.is_empty()).then(|| {
            format!(
                "validation gate(s) failed on {board}: {}",
                failed.join(", ")
            )
        }),
    })
}
