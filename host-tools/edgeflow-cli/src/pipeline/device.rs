//! The pipeline's device stages.
//!
//! - `deploy`: flash the int8 artifact to the emulated board (`edgeflow flash`), replay the
//!   test split into it one recording at a time (a `Reset` command before each, so every
//!   recording starts with empty feature buffers, as the host does), print each
//!   prediction as it arrives, and compare every device prediction (class and score bits)
//!   with the host's — the same artifact run by the `edgeflow` facade on the host over the
//!   same samples. The raw telemetry stream is kept (`telemetry-clean.bin`).
//! - `monitor`: ingest that telemetry into SQLite (`monitor ingest`), replay the test split
//!   again with the project's injected sensor fault, ingest that too, and check both
//!   against the artifact's monitoring baseline (`monitor check`): the fault must raise an
//!   alert and the clean replay must not. Writes `monitor report` HTML for both.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use edgeflow_dsp::host::Sample;
use edgeflow_telemetry::command::{Command, MAX_PAYLOAD};
use edgeflow_telemetry::Body;
use edgeflow_train::data::Recording;
use serde_json::{json, Value};

use super::{esc, Ctx, Outcome};
use crate::project::Fault;

/// The prebuilt device application `[deploy].firmware`, resolved against the project
/// directory (`None` when not set).
pub(super) fn prebuilt_firmware(ctx: &Ctx) -> Option<PathBuf> {
    ctx.project
        .project
        .deploy
        .firmware
        .as_ref()
        .map(|f| ctx.project.dir.join(f))
}

/// `[deploy].firmware` as a stage input (its bytes enter the cache key): `None` when not
/// set; an error naming the setting when the file is missing.
pub(super) fn firmware_input(ctx: &Ctx) -> Result<Option<PathBuf>> {
    match prebuilt_firmware(ctx) {
        Some(elf) if !elf.is_file() => {
            let board = &ctx.project.project.board.name;
            bail!(
                "deploy.firmware = {}: no such file (the device application for {board}, built with `cargo build --release` in firmware/app-{board} of the edgeflow sources)",
                elf.display()
            )
        }
        f => Ok(f),
    }
}

/// Where the device stages run and which application ELF they flash.
///
/// With `[deploy].firmware` the ELF is used as is and the stages work in the output
/// directory (the emulator's socket and slot image go to `OUT/target/edgeflow-device`).
/// Otherwise the application is built from an edgeflow source tree
/// ([`crate::sources::find`]: `EDGEFLOW_SOURCE_DIR`, else the first ancestor of the
/// project directory or of the working directory holding `firmware/app-<board>`); the
/// stages then work in that tree (the device's state goes to its `target/edgeflow-device`,
/// apart from the one `edgeflow flash` starts). With neither, the error names every place
/// looked in and the ways out.
fn enter_firmware(ctx: &Ctx) -> Result<Option<PathBuf>> {
    let board = &ctx.project.project.board.name;
    if let Some(elf) = prebuilt_firmware(ctx) {
        if !elf.is_file() {
            bail!(
                "deploy.firmware = {}: no such file (the device application for {board}, built with `cargo build --release` in firmware/app-{board} of the edgeflow sources)",
                elf.display()
            );
        }
        std::fs::create_dir_all(&ctx.out)?;
        std::env::set_current_dir(&ctx.out)
            .with_context(|| format!("cannot enter {}", ctx.out.display()))?;
        return Ok(Some(elf));
    }
    let root = crate::sources::find(
        &format!("app-{board}"),
        &ctx.project.dir,
        &format!("deploying to the emulated {board} builds its device application"),
        "set deploy.firmware to a prebuilt ELF, or set deploy.enabled = false",
    )?;
    std::env::set_current_dir(&root).with_context(|| format!("cannot enter {}", root.display()))?;
    Ok(None)
}

fn require_qemu() -> Result<()> {
    match std::process::Command::new("qemu-system-arm")
        .arg("--version")
        .output()
    {
        Ok(o) if o.status.success() => Ok(()),
        _ => bail!("qemu-system-arm is not installed (needed to deploy to the emulated board; .ci/run installs it)"),
    }
}

/// Where the pipeline's emulated device keeps its state: `target/edgeflow-device` of the
/// directory [`enter_firmware`] entered (the output directory, or the source tree), apart
/// from the device `edgeflow flash` starts (which a pipeline run must neither update nor
/// stop). Relative, so that its socket path stays short.
fn state() -> PathBuf {
    PathBuf::from("target/edgeflow-device")
}

/// Stops the emulated device when dropped (also on errors).
struct Running {
    board: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = crate::device::stop_in(&self.board, &state());
    }
}

fn start(board: &str, artifact: &Path, firmware: Option<PathBuf>) -> Result<Running> {
    crate::device::flash_in(
        crate::device::FlashArgs {
            artifact: artifact.to_path_buf(),
            board: board.to_string(),
            firmware,
        },
        || Ok(state()),
    )?;
    Ok(Running {
        board: board.to_string(),
    })
}

/// The test split's recordings (as split by edgeflow-train), the class names and the
/// values per step: a signal's axes, or an image's channels (an image is replayed as its
/// pixel values, row-major, channels interleaved; the device buffers one whole image).
fn test_recordings(ctx: &Ctx, dir: &Path) -> Result<(Vec<Recording>, Vec<String>, usize)> {
    let cfg = ctx.project.train_config(dir)?;
    let spec = edgeflow_train::data::load_pipeline(&cfg.features.pipeline)?;
    let axes = match spec.input {
        edgeflow_dsp::Input::Signal { axes, .. } => axes as usize,
        edgeflow_dsp::Input::Image { channels, .. } => channels as usize,
        _ => bail!(
            "deploy replays signal recordings or images; this project's pipeline takes vectors or text"
        ),
    };
    let pipeline = edgeflow_dsp::Pipeline::new(spec).context("the feature pipeline is invalid")?;
    let raw = edgeflow_train::data::read_sources(&cfg, &pipeline)?;
    let classes = raw.classes.clone();
    let splits = edgeflow_train::data::split(classes.len(), raw.train, raw.test, &cfg.split)?;
    Ok((interleave(splits.test, classes.len()), classes, axes))
}

/// The recordings in a stream order: one of each class in turn (round robin, each class
/// in its split order). The split lists the test recordings class by class; replayed that
/// way, every monitoring window would hold a few classes only, and their class mix and
/// features would be flagged as drift against the training data, which mixes them all.
fn interleave(recs: Vec<Recording>, classes: usize) -> Vec<Recording> {
    let mut by_class: Vec<std::collections::VecDeque<Recording>> =
        (0..classes.max(1)).map(|_| Default::default()).collect();
    let n = by_class.len();
    for r in recs {
        by_class[r.label.min(n - 1)].push_back(r);
    }
    let mut out = Vec::new();
    while by_class.iter().any(|q| !q.is_empty()) {
        for q in &mut by_class {
            out.extend(q.pop_front());
        }
    }
    out
}

/// The values sent to the device for one recording (with the fault applied to one axis,
/// or one channel of every pixel).
fn signal(r: &Recording, axes: usize, fault: Option<&Fault>) -> Result<Vec<f32>> {
    let mut x = match &r.input {
        Sample::Signal(x) => x.clone(),
        Sample::Image(px) => px.iter().map(|&p| f32::from(p)).collect(),
        _ => bail!("{}: deploy replays signal recordings or images", r.origin),
    };
    if let Some(f) = fault {
        for frame in x.chunks_exact_mut(axes) {
            if let Some(v) = frame.get_mut(f.axis) {
                *v = *v * f.gain + f.offset;
            }
        }
    }
    Ok(x)
}

/// Host predictions (class, score) per recording: the artifact through the `edgeflow`
/// facade, features and inference exactly as on the device.
fn host_predictions(artifact: &[u8], signals: &[Vec<f32>]) -> Result<Vec<Vec<(usize, f32)>>> {
    let model = edgeflow::Model::parse(artifact).map_err(|e| anyhow!("artifact: {e}"))?;
    let mut ws = vec![0f32; model.workspace_len()];
    let mut arena = edgeflow_nn::HostArena::for_model(model.nn())
        .map_err(|e| anyhow!("cannot allocate the host arena: {e}"))?;
    let mut engine = edgeflow::Engine::new(&model, &mut ws, arena.as_mut_bytes())
        .map_err(|e| anyhow!("host engine: {e}"))?;
    let mut out = Vec::new();
    for x in signals {
        engine.reset();
        let mut p = Vec::new();
        engine
            .push(x, |q| p.push((q.class, q.score)))
            .map_err(|e| anyhow!("host inference: {e}"))?;
        out.push(p);
    }
    Ok(out)
}

/// Replays recordings into the running device; returns the device's predictions per
/// recording and the raw telemetry bytes.
fn replay(
    board: &str,
    signals: &[Vec<f32>],
    expected: &[usize],
    summary_every: usize,
    mut show: impl FnMut(usize, &[(usize, f32)]),
) -> Result<(Vec<Vec<(usize, f32)>>, Vec<u8>)> {
    let mut link = crate::device::connect(&crate::device::socket(&state(), board)?)?;
    link.tap = Some(Vec::new());
    let mut all = Vec::new();
    for (i, x) in signals.iter().enumerate() {
        link.send(&Command::Reset)?;
        for chunk in x.chunks(MAX_PAYLOAD / 4) {
            let bytes: Vec<u8> = chunk.iter().flat_map(|v| v.to_le_bytes()).collect();
            link.send(&Command::Samples(&bytes))?;
        }
        let want = expected.get(i).copied().unwrap_or(0);
        let mut got = Vec::new();
        let start = Instant::now();
        while got.len() < want {
            if start.elapsed() > Duration::from_secs(60) {
                bail!(
                    "recording {}: the device gave {} of {want} predictions within 60 s",
                    i + 1,
                    got.len()
                );
            }
            for f in link.poll()? {
                match &f.body {
                    Body::Prediction(p) => got.push((p.class as usize, p.score)),
                    Body::Log(l) => println!("  device log: {}", l.message),
                    _ => {}
                }
            }
        }
        show(i, &got);
        all.push(got);
        if (i + 1) % summary_every == 0 || i + 1 == signals.len() {
            link.send(&Command::Summary)?;
            link.until(Duration::from_secs(30), |f| {
                matches!(f.body, Body::Summary(_))
                    || matches!(&f.body, Body::Log(l) if l.message.starts_with("no summary"))
            })?;
        }
    }
    let raw = link.tap.take().unwrap_or_default();
    drop(link);
    Ok((all, raw))
}

fn name(classes: &[String], c: usize) -> String {
    classes.get(c).cloned().unwrap_or_else(|| c.to_string())
}

pub(super) fn deploy(ctx: &mut Ctx, dir: &Path) -> Result<Outcome> {
    require_qemu()?;
    let board = ctx.project.project.board.name.clone();
    let int8 = ctx.file("quantize", "model_int8.edgeflow")?;
    let artifact =
        std::fs::read(&int8).with_context(|| format!("cannot read {}", int8.display()))?;
    let (recs, classes, axes) = test_recordings(ctx, dir)?;
    let signals: Vec<Vec<f32>> = recs
        .iter()
        .map(|r| signal(r, axes, None))
        .collect::<Result<_>>()?;
    let host = host_predictions(&artifact, &signals)?;
    let expected: Vec<usize> = host.iter().map(Vec::len).collect();
    let firmware = enter_firmware(ctx)?;
    let autoencoder = is_autoencoder(ctx);
    // An autoencoder's output is the reconstruction: its prediction frame carries the
    // reconstruction's arg-max index, shown as out[i] (not a class), and as the score the
    // reconstruction error (MSE of input and output) that the facade computes on the
    // device as on the host (the artifact's baseline says the score is that).
    let label = |c: usize| {
        if autoencoder {
            format!("out[{c}]")
        } else {
            name(&classes, c)
        }
    };
    println!("  flashing {} to the emulated {board}", int8.display());
    let running = start(&board, &int8, firmware)?;
    println!(
        "  replaying {} test recordings (device prediction | host prediction | true class)",
        recs.len()
    );
    let mut lines = Vec::new();
    let (device, raw) = replay(
        &board,
        &signals,
        &expected,
        ctx.project.project.deploy.summary_every,
        |i, got| {
            for (k, (c, s)) in got.iter().enumerate() {
                let h = host[i].get(k);
                let same = h.is_some_and(|(hc, hs)| hc == c && hs.to_bits() == s.to_bits());
                let line = format!(
                    "rec {:>3}/{}  device {:<10} {:.4} | host {:<10} {:.4} | true {:<10} {}",
                    i + 1,
                    recs.len(),
                    label(*c),
                    s,
                    h.map_or("-".into(), |h| label(h.0)),
                    h.map_or(f32::NAN, |h| h.1),
                    name(&classes, recs[i].label),
                    if same { "=" } else { "DIFFERS" }
                );
                println!("  {line}");
                lines.push(line);
            }
        },
    )?;
    drop(running);
    std::fs::write(dir.join("telemetry-clean.bin"), &raw)?;
    let mut predictions = 0usize;
    let mut equal = 0usize;
    let mut correct = 0usize;
    for (i, (d, h)) in device.iter().zip(&host).enumerate() {
        predictions += d.len();
        equal += d
            .iter()
            .zip(h)
            .filter(|(a, b)| a.0 == b.0 && a.1.to_bits() == b.1.to_bits())
            .count();
        correct += d.iter().filter(|(c, _)| *c == recs[i].label).count();
    }
    let host_n: usize = host.iter().map(Vec::len).sum();
    // An autoencoder: the device's score is the anomaly score, so the device detects
    // anomalies with the threshold the int8 evaluation chose on validation (normal =
    // class 0); on the same windows this equals the quantize stage's int8 test accuracy
    // exactly when the device's scores are the host evaluation's, bit for bit.
    let (accuracy, threshold) = if autoencoder {
        let threshold = anomaly_threshold(ctx)?;
        let right: usize = device
            .iter()
            .zip(&recs)
            .map(|(d, r)| {
                d.iter()
                    .filter(|(_, s)| (f64::from(*s) >= threshold) == (r.label != 0))
                    .count()
            })
            .sum();
        (right as f64 / predictions.max(1) as f64, Some(threshold))
    } else {
        (correct as f64 / predictions.max(1) as f64, None)
    };
    if let Some(t) = threshold {
        println!(
            "  device anomaly detection at the validation threshold {t:.6}: accuracy {:.2} %",
            100.0 * accuracy
        );
    }
    let m = json!({
        "board": board,
        "recordings": recs.len(),
        "predictions": predictions,
        "host_predictions": host_n,
        "equal_to_host": equal,
        // Classifiers: top-1 class vs label; autoencoders: score >= threshold vs anomaly.
        "device_accuracy": accuracy,
        "anomaly_threshold": threshold,
        "telemetry_bytes": raw.len(),
    });
    std::fs::write(
        dir.join("deploy.html"),
        super::html_pre(
            &format!("Deployment on the emulated {board}: device vs host"),
            &lines.join("\n"),
        ),
    )?;
    let failed = if predictions == 0 {
        Some("the device made no predictions".to_string())
    } else if equal != predictions || predictions != host_n {
        Some(format!(
            "device predictions differ from the host's: {equal} of {predictions} equal (host made {host_n})"
        ))
    } else {
        None
    };
    Ok(Outcome {
        metrics: m,
        report: Some("deploy.html".into()),
        failed,
    })
}

/// Ingests a telemetry stream into `db` and checks its windows against the baseline:
/// (windows, alert lines, the `monitor report` HTML).
fn check_stream(
    ctx: &Ctx,
    bytes: &[u8],
    db: &Path,
    baseline: &edgeflow_monitor::baseline::Baseline,
) -> Result<(usize, Vec<String>, String)> {
    use edgeflow_monitor::store::{Durability, Store};
    use edgeflow_monitor::windows::{analyze_windows, collect_windows, WindowBy};
    let _ = std::fs::remove_file(db);
    let mut store = Store::open(db, Durability::Process)?;
    edgeflow_monitor::ingest::ingest_reader(
        &mut store,
        &mut &bytes[..],
        edgeflow_monitor::ingest::BatchPolicy::default(),
        &mut |_| {},
    )?;
    let m = &ctx.project.project.monitor;
    let windows = collect_windows(
        &store,
        None,
        false,
        WindowBy::Summaries(m.window_summaries),
        None,
        None,
    )?;
    let reports = analyze_windows(&store, baseline, &m.thresholds, &windows)?;
    let mut alerts = Vec::new();
    for (w, r) in windows.iter().zip(&reports) {
        for a in &r.alerts {
            let what = match a.feature {
                Some(f) => format!("feature={f}"),
                None => format!("area={}", a.area),
            };
            alerts.push(format!(
                "ALERT device={} window={}..{} {what} test={} value={:.6} threshold={}",
                w.group, w.start_us, w.end_us, a.test, a.value, a.threshold
            ));
        }
    }
    let html =
        crate::monitor::report::render(db, &windows, &reports, &store.devices(), baseline, None)?;
    Ok((windows.len(), alerts, html))
}

/// The anomaly threshold the int8 evaluation chose on the validation split (the quantize
/// stage's `evaluation.json`).
fn anomaly_threshold(ctx: &Ctx) -> Result<f64> {
    let p = ctx.file("quantize", "evaluation.json")?;
    let e: Value = serde_json::from_str(
        &std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?,
    )
    .with_context(|| format!("{}: not JSON", p.display()))?;
    e["int8"]["test"]["threshold"]
        .as_f64()
        .with_context(|| format!("{}: no int8 test threshold", p.display()))
}

/// Whether the project's model is an autoencoder (anomaly detection).
fn is_autoencoder(ctx: &Ctx) -> bool {
    ctx.project.project.model.task == edgeflow_train::config::Task::Autoencoder
}

/// Flashes `int8`, replays `recs` (with `fault`, if any) and returns the raw telemetry.
#[allow(clippy::too_many_arguments)]
fn replay_recordings(
    board: &str,
    int8: &Path,
    artifact: &[u8],
    firmware: Option<PathBuf>,
    recs: &[Recording],
    axes: usize,
    fault: Option<&Fault>,
    summary_every: usize,
) -> Result<Vec<u8>> {
    let signals: Vec<Vec<f32>> = recs
        .iter()
        .map(|r| signal(r, axes, fault))
        .collect::<Result<_>>()?;
    let expected: Vec<usize> = host_predictions(artifact, &signals)?
        .iter()
        .map(Vec::len)
        .collect();
    let running = start(board, int8, firmware)?;
    let what = if fault.is_some() { "fault" } else { "clean" };
    let (_, raw) = replay(board, &signals, &expected, summary_every, |i, got| {
        if let Some((c, s)) = got.first() {
            println!(
                "  {what} rec {:>3}/{}  device class {c} {s:.4}",
                i + 1,
                recs.len()
            );
        }
    })?;
    drop(running);
    Ok(raw)
}

pub(super) fn monitor(ctx: &mut Ctx, dir: &Path) -> Result<Outcome> {
    require_qemu()?;
    let board = ctx.project.project.board.name.clone();
    let int8 = ctx.file("quantize", "model_int8.edgeflow")?;
    let artifact =
        std::fs::read(&int8).with_context(|| format!("cannot read {}", int8.display()))?;
    let baseline = crate::monitor::load_baseline(&int8)?;
    let fault = ctx.project.project.monitor.fault.clone();
    let (mut recs, _classes, axes) = test_recordings(ctx, dir)?;
    if fault.axis >= axes {
        bail!(
            "monitor.fault.axis = {} but the recordings have {axes} axes",
            fault.axis
        );
    }
    let autoencoder = is_autoencoder(ctx);
    let firmware = enter_firmware(ctx)?;
    let every = ctx.project.project.deploy.summary_every;
    let clean = if autoencoder {
        // The deploy stage's stream holds the test anomalies, which drift from the normal
        // baseline by design: the clean production stream is the normal recordings alone.
        recs.retain(|r| r.label == 0);
        println!(
            "  autoencoder: replaying the {} normal (class 0) test recordings as the clean stream",
            recs.len()
        );
        let raw = replay_recordings(
            &board,
            &int8,
            &artifact,
            firmware.clone(),
            &recs,
            axes,
            None,
            every,
        )?;
        std::fs::write(dir.join("telemetry-clean.bin"), &raw)?;
        raw
    } else {
        std::fs::read(ctx.file("deploy", "telemetry-clean.bin")?)?
    };
    println!("  monitor ingest + check: the clean replay's telemetry");
    let (clean_windows, clean_alerts, clean_html) =
        check_stream(ctx, &clean, &dir.join("clean.sqlite"), &baseline)?;
    for a in &clean_alerts {
        println!("  clean: {a}");
    }
    std::fs::write(dir.join("monitor-clean.html"), clean_html)?;
    println!(
        "  replaying the test split with a sensor fault: axis {} x {} + {}",
        fault.axis, fault.gain, fault.offset
    );
    let raw = replay_recordings(
        &board,
        &int8,
        &artifact,
        firmware,
        &recs,
        axes,
        Some(&fault),
        every,
    )?;
    std::fs::write(dir.join("telemetry-fault.bin"), &raw)?;
    println!("  monitor ingest + check: the faulty replay's telemetry");
    let (fault_windows, fault_alerts, fault_html) =
        check_stream(ctx, &raw, &dir.join("fault.sqlite"), &baseline)?;
    for a in &fault_alerts {
        println!("  fault: {a}");
    }
    std::fs::write(dir.join("monitor-fault.html"), fault_html)?;
    let list = |v: &[String]| -> String {
        if v.is_empty() {
            "<p>no alerts</p>".into()
        } else {
            format!(
                "<ul>{}</ul>",
                v.iter()
                    .map(|a| format!("<li><code>{}</code></li>", esc(a)))
                    .collect::<String>()
            )
        }
    };
    std::fs::write(
        dir.join("monitor.html"),
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>monitoring</title></head><body>\
<h1>Monitoring</h1><h2>Clean replay ({clean_windows} window(s)) — <a href=\"monitor-clean.html\">report</a></h2>{}\
<h2>Replay with a fault on axis {} (x{} {:+}) ({fault_windows} window(s)) — <a href=\"monitor-fault.html\">report</a></h2>{}</body></html>\n",
            list(&clean_alerts),
            fault.axis,
            fault.gain,
            fault.offset,
            list(&fault_alerts)
        ),
    )?;
    let m = json!({
        "clean_windows": clean_windows,
        "clean_alerts": clean_alerts.len(),
        "fault_windows": fault_windows,
        "fault_alerts": fault_alerts.len(),
        "fault_alerted": !fault_alerts.is_empty(),
        "fault": { "axis": fault.axis, "offset": fault.offset, "gain": fault.gain },
        "alerts": Value::from(fault_alerts.clone()),
    });
    let failed = if clean_windows == 0 || fault_windows == 0 {
        Some(format!(
            "no complete monitoring window ({clean_windows} clean, {fault_windows} faulty): lower monitor.window_summaries or deploy.summary_every"
        ))
    } else if !clean_alerts.is_empty() {
        Some(format!(
            "the clean replay raised {} alert(s): {}",
            clean_alerts.len(),
            clean_alerts[0]
        ))
    } else if fault_alerts.is_empty() {
        Some("the injected sensor fault raised no alert".into())
    } else {
        None
    };
    Ok(Outcome {
        metrics: m,
        report: Some("monitor.html".into()),
        failed,
    })
}
