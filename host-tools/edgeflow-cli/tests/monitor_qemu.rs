//! `edgeflow monitor ingest --listen` fed by the real device application on the emulated
//! Cortex-M4F (QEMU `mps2-an386`, `firmware/app-mps2-an386`), not by a simulated stream.
//!
//! A BasicMotions int8 artifact (the small project of `pipeline.rs`, run `--until
//! quantize`) is flashed; the archive's 40 test recordings, forwards then backwards, are
//! replayed into the device as one continuous stream by `edgeflow device replay --telemetry tcp://…`, which forwards
//! every byte the device writes on its UART, as it arrives, to the monitor's TCP listener
//! (the host acting as the board's serial-to-network gateway). The test then reads the
//! SQLite database and checks it against what the host computes from the same samples with
//! the same artifact: the `edgeflow` facade (features + int8 inference) and the
//! `edgeflow-telemetry` summary accumulator over the artifact's monitoring baseline, windowed
//! as the device windows (a summary every 32 inferences, `summary_every` of the M4F
//! application, and the last partial window on request). Every stored prediction must equal
//! the host's (class and score bits), and every stored summary its host twin (inferences,
//! per-feature histogram counts, class counts, score-bin counts, NaN/out-of-range totals,
//! dropped samples), with no gap and no corrupt frame.
//!
//! Without `qemu-system-arm` the test fails unless `EDGEFLOW_SKIP_QEMU=1` asks to skip it;
//! without the BasicMotions files it is skipped with a printed reason (`.ci/run` installs
//! the one and fetches the other).

mod common;
use common::{edgeflow_at_root, npy_f32, root, text};

use std::cell::RefCell;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

use edgeflow_data::sources::ts::TsFile;
use edgeflow_data::BadRecords;
use edgeflow_format::graph::DType;
use edgeflow_monitor::sim::{Inference, StreamOptions};
use edgeflow_monitor::store::{Durability, Frame, Store};
use edgeflow_monitor::window::WindowSummary;
use edgeflow_telemetry::{Body, Decoder, Event};

/// `summary_every` of `firmware/app-mps2-an386`.
const DEVICE_SUMMARY_EVERY: usize = 32;

fn dir() -> PathBuf {
    let d = root()
        .join("target/test-monitor-qemu")
        .join(std::process::id().to_string());
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tmp dir");
    d
}

/// Runs `edgeflow` from the repository root without cargo's build variables (the firmware
/// build `flash` may start is then a plain one, as in `device.rs`).
fn edgeflow(args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_edgeflow"));
    c.current_dir(root()).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("CARGO_") && k != "CARGO_HOME" || k == "RUSTFLAGS" || k == "RUSTC_WRAPPER"
        {
            c.env_remove(&k);
        }
    }
    c.output().expect("run edgeflow")
}

/// A small BasicMotions project (as `pipeline.rs`'s: 30 epochs, MSE calibration), without
/// the device stages.
fn project(dir: &Path, data: &Path) -> PathBuf {
    std::fs::copy(
        root().join("examples/basicmotions/features.toml"),
        dir.join("features.toml"),
    )
    .expect("features");
    let text = format!(
        r#"[project]
name = "bm-monitor-qemu"
seed = 42

[data]
train = {{ ts = "{train}" }}
test = {{ ts = "{test}" }}

[split]
validation = 0.2
seed = 1

[schema]
fail_on_anomalies = false

[features]
pipeline = "features.toml"

[model]
layers = [
  {{ conv1d = {{ filters = 16, kernel = 3, padding = "same" }} }},
  {{ batch_norm = {{}} }},
  {{ relu = {{}} }},
  {{ global_avg_pool = {{}} }},
  {{ dense = {{ units = 4 }} }},
  {{ softmax = {{}} }},
]

[train]
epochs = 30
batch_size = 8
learning_rate = 0.005

[quantize]
method = "mse"

[validate.gates]
min_accuracy = 0.25
min_agreement = 0.5

[board]
name = "mps2-an386"

[deploy]
enabled = false
"#,
        train = data.join("BasicMotions_TRAIN.ts").display(),
        test = data.join("BasicMotions_TEST.ts").display(),
    );
    let p = dir.join("edgeflow.toml");
    std::fs::write(&p, text).expect("project");
    p
}

/// The archive's test recordings as one stream: frames of 6 values (axes interleaved),
/// recording after recording, in the file's order and then in reverse (80 recordings, so
/// that the device sends two full summary windows and a partial one).
fn test_stream(data: &Path) -> Vec<f32> {
    let cases = TsFile::open(data.join("BasicMotions_TEST.ts"), BadRecords::Error)
        .expect("test file")
        .cases()
        .collect_vec()
        .expect("test cases");
    assert_eq!(cases.len(), 40);
    let mut out = Vec::new();
    for c in cases.iter().chain(cases.iter().rev()) {
        let len = c.dims[0].len();
        for t in 0..len {
            out.extend(c.dims.iter().map(|d| d[t] as f32));
        }
    }
    out
}

/// What the host computes for `samples` with `artifact`: each inference's model input
/// dequantized as the device dequantizes it for its summary, with the prediction.
fn host_inferences(artifact: &[u8], samples: &[f32]) -> Vec<Inference> {
    let model = edgeflow::Model::parse(artifact).expect("artifact");
    let input = model.nn().header().inputs[0];
    let (dtype, scale, zp) = match input.quant {
        Some(q) => (input.dtype, q.scale, q.zero_point),
        None => (input.dtype, 1.0, 0),
    };
    assert_eq!(dtype, DType::I8, "the flashed artifact is int8");
    let mut ws = vec![0f32; model.workspace_len()];
    let mut arena = edgeflow_nn::HostArena::for_model(model.nn()).expect("arena");
    let mut engine =
        edgeflow::Engine::new(&model, &mut ws, arena.as_mut_bytes()).expect("host engine");
    let features = RefCell::new(Vec::new());
    let mut out = Vec::new();
    engine
        .push_observed(
            samples,
            |q| {
                *features.borrow_mut() = q
                    .iter()
                    .map(|&b| scale * ((b as i8 as i32 - zp) as f32))
                    .collect();
            },
            |p| {
                out.push(Inference {
                    features: features.borrow().clone(),
                    class: p.class as u16,
                    score: p.score,
                })
            },
        )
        .expect("host inference");
    out
}

/// The host's summaries of `inferences`, windowed as the device windows them, in the form
/// the monitor stores.
fn host_summaries(baseline: &[u8], inferences: &[Inference]) -> Vec<WindowSummary> {
    let bytes = edgeflow_monitor::sim::stream(
        baseline,
        1,
        0,
        inferences,
        &StreamOptions {
            window: DEVICE_SUMMARY_EVERY,
            predictions: false,
            period_us: 1000,
            log_every: 0,
        },
    )
    .expect("host summaries");
    let mut d = Decoder::new();
    d.push(&bytes)
        .into_iter()
        .filter_map(|e| match e {
            Event::Frame(f) => match f.body {
                Body::Summary(s) => Some(edgeflow_monitor::ingest::window_from_summary(&s)),
                _ => None,
            },
            Event::Error(e) => panic!("host stream: {e}"),
        })
        .collect()
}

/// A running `edgeflow monitor ingest --listen`, killed on drop.
struct Ingester {
    child: Child,
    out: BufReader<ChildStdout>,
    addr: String,
}

impl Ingester {
    fn start(db: &Path) -> Ingester {
        let mut child = Command::new(env!("CARGO_BIN_EXE_edgeflow"))
            .args(["monitor", "ingest", "--db", db.to_str().expect("utf8")])
            .args([
                "--listen",
                "127.0.0.1:0",
                "--print-acks",
                "--batch-ms",
                "20",
            ])
            .args(["--max-seconds", "600"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ingest");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut err = BufReader::new(child.stderr.take().expect("stderr"));
        let mut seen = String::new();
        let addr = loop {
            let mut line = String::new();
            let n = err.read_line(&mut line).expect("ingest stderr");
            assert!(n > 0, "ingest ended before listening: {seen}");
            seen.push_str(&line);
            if let Some(a) = line.trim().strip_prefix("listening on ") {
                break a.to_string();
            }
        };
        // Keep draining stderr so the ingester never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        Ingester { child, out, addr }
    }

    /// Reads `acked N` lines until `total` frames are acknowledged (or the ingester ends).
    fn wait_acked(&mut self, total: u64) -> u64 {
        let mut acked = 0;
        while acked < total {
            let mut l = String::new();
            if self.out.read_line(&mut l).expect("read") == 0 {
                break;
            }
            if let Some(n) = l.trim().strip_prefix("acked ").and_then(|n| n.parse().ok()) {
                acked = n;
            }
        }
        acked
    }
}

impl Drop for Ingester {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Stops the emulated device when dropped (also when an assertion fails).
struct Device;

impl Drop for Device {
    fn drop(&mut self) {
        let _ = edgeflow(&["device", "stop", "--board", "mps2-an386"]);
    }
}

#[test]
fn monitor_ingests_the_emulated_boards_uart_and_stores_what_the_host_computes() {
    if common::qemu_missing() {
        return;
    }
    let data = root().join("target/data/BasicMotions");
    if !data.join("BasicMotions_TEST.ts").is_file() {
        println!(
            "SKIPPED: BasicMotions is absent (crates/edgeflow-data/scripts/fetch_basicmotions.sh, which .ci/run runs)"
        );
        return;
    }
    let dir = dir();
    let p = project(&dir, &data);
    let out = dir.join("out");
    let o = edgeflow_at_root(&[
        "pipeline",
        "run",
        p.to_str().expect("utf8"),
        "--until",
        "quantize",
        "--out",
        out.to_str().expect("utf8"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // The stage's output lives under its content hash: the run is fresh, so there is one.
    let int8 = std::fs::read_dir(out.join("cache/quantize"))
        .expect("quantize stage directory")
        .map(|e| e.expect("entry").path().join("model_int8.edgeflow"))
        .find(|p| p.is_file())
        .expect("the quantize stage wrote model_int8.edgeflow");
    let artifact = std::fs::read(&int8).expect("int8 artifact");
    let baseline = edgeflow_format::Artifact::parse(&artifact)
        .expect("artifact")
        .monitoring_baseline
        .expect("a monitoring baseline")
        .to_vec();

    // What the host computes for the stream the device will get.
    let samples = test_stream(&data);
    let host = host_inferences(&artifact, &samples);
    let summaries = host_summaries(&baseline, &host);
    assert!(host.len() > 2 * DEVICE_SUMMARY_EVERY, "{}", host.len());
    assert!(
        !host.len().is_multiple_of(DEVICE_SUMMARY_EVERY),
        "{}",
        host.len()
    );
    assert_eq!(summaries.len(), host.len().div_ceil(DEVICE_SUMMARY_EVERY));
    let npy = dir.join("test_stream.npy");
    std::fs::write(&npy, npy_f32(&[samples.len() / 6, 6], &samples)).expect("npy");

    let db = dir.join("telemetry.db");
    let mut ing = Ingester::start(&db);
    let o = edgeflow(&[
        "flash",
        "--board",
        "mps2-an386",
        int8.to_str().expect("utf8"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let device = Device;
    let target = format!("tcp://{}", ing.addr);
    let o = edgeflow(&[
        "device",
        "replay",
        "--board",
        "mps2-an386",
        "--data",
        npy.to_str().expect("utf8"),
        "--telemetry",
        &target,
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains(&format!(
            "{} samples sent, {} predictions",
            samples.len(),
            host.len()
        )),
        "{t}"
    );
    assert!(t.contains(" 0 lost, 0 bytes discarded"), "{t}");
    assert!(t.contains("bytes forwarded to 127.0.0.1:"), "{t}");
    drop(device);

    // The replay's hello (at least one), every prediction and every summary are stored.
    let least = 1 + host.len() as u64 + summaries.len() as u64;
    assert!(ing.wait_acked(least) >= least, "fewer frames acknowledged");
    drop(ing);

    let store = Store::open(&db, Durability::Process).expect("open the database");
    let devices = store.devices();
    assert_eq!(devices.len(), 1, "{devices:?}");
    assert_eq!((devices[0].gaps, devices[0].corrupt), (0, 0), "{devices:?}");
    let (mut hellos, mut preds, mut sums) = (0, Vec::new(), Vec::new());
    store
        .for_each_frame(None, None, None, |_, _, _, _, f| match f {
            Frame::Hello { .. } => hellos += 1,
            Frame::Prediction { class, score, .. } => preds.push((class, score)),
            Frame::Summary(s) => sums.push(s),
        })
        .expect("read frames");
    assert!(hellos >= 1);
    assert_eq!(preds.len(), host.len());
    for (i, (d, h)) in preds.iter().zip(&host).enumerate() {
        assert_eq!(
            (d.0, d.1.to_bits()),
            (h.class, h.score.to_bits()),
            "prediction {i}: device {d:?}, host ({}, {})",
            h.class,
            h.score
        );
    }
    assert_eq!(sums.len(), summaries.len());
    let mut counted = 0;
    for (i, (d, h)) in sums.iter().zip(&summaries).enumerate() {
        assert_eq!(d.inferences, h.inferences, "summary {i}");
        assert_eq!(
            d.feature_counts, h.feature_counts,
            "summary {i}: histograms"
        );
        assert_eq!(d.class_counts, h.class_counts, "summary {i}: classes");
        assert_eq!(d.score_counts, h.score_counts, "summary {i}: scores");
        assert_eq!(d.quality, h.quality, "summary {i}: data quality");
        // Something was actually binned: every inference lands once per monitored feature.
        let binned: u64 = d.feature_counts.iter().sum::<u64>() + d.quality.nan;
        assert_eq!(
            binned % d.inferences.max(1),
            0,
            "summary {i}: {binned} binned values"
        );
        counted += d.inferences;
    }
    assert_eq!(counted, host.len() as u64);
    // The device measured its health (the host cannot): stack high water is reported.
    assert!(sums.iter().all(|s| s.health.stack_high_water > 0));
}
