//! `edgeflow monitor ingest --listen` fed by the real device application on the emulated
//! Cortex-M4F (QEMU `mps2-an386`, `firmware/app-mps2-an386`), not by a simulated stream.
//!
//! A BasicMotions int8 artifact (the small project of `pipeline.rs`, run `--until
//! quantize`) is flashed; the archive's 40 test recordings, forwards then backwards, are
//! replayed into the device recording by recording (`--recording-len 100`: a `Reset`
//! before each, so each recording gives one inference over its own 19 frames, as training
//! saw them, and the summary counts all 19 frames) by `edgeflow device replay --telemetry tcp://…`, which forwards
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
//! Then the three sensor faults of the known-answer test (an offset on accelerometer x, a
//! gain on gyroscope y, accelerometer x and z swapped) run on the emulated board too: for
//! each, the device is flashed again and gets the 80 recordings (the 40, classes
//! interleaved as the pipeline replays them, forwards then backwards) clean and then the
//! same 80 with the fault twice, recording by recording, and `monitor ingest` stores what
//! it sends. One device summary (32 inferences, 608 frames) is one analysis window
//! against the artifact's baseline, with the thresholds of `examples/basicmotions`.
//! Windows before the fault must raise no alert of any kind (drift, score, class mix,
//! CBPE, quality, health); each fault must alert on a feature of a faulted axis within
//! [`MAX_DELAY_WINDOWS`] window of its onset; no feature of an untouched axis may alert.
//! The figures (detection delay, faulty windows flagged, p-values on the faulted axes,
//! alerts in clean windows, seconds) go to `target/monitor-qemu-faults.txt`.
//!
//! Without `qemu-system-arm` the test fails unless `EDGEFLOW_SKIP_QEMU=1` asks to skip it;
//! without the BasicMotions files it is skipped with a printed reason (`.ci/run` installs
//! the one and fetches the other).

mod common;
mod monitor_support;
use common::{edgeflow_at_root, edgeflow_plain as edgeflow, npy_f32, root, text};
use monitor_support::Ingester;

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use edgeflow_data::sources::ts::TsFile;
use edgeflow_data::BadRecords;
use edgeflow_format::graph::DType;
use edgeflow_monitor::analysis::Thresholds;
use edgeflow_monitor::baseline::Baseline;
use edgeflow_monitor::sim::{Inference, StreamOptions};
use edgeflow_monitor::store::{Durability, Frame, Store};
use edgeflow_monitor::window::WindowSummary;
use edgeflow_monitor::windows::{analyze_windows, collect_windows, WindowBy};
use edgeflow_telemetry::{Body, Decoder, Event};

/// `summary_every` of `firmware/app-mps2-an386`.
const DEVICE_SUMMARY_EVERY: usize = 32;
/// Device summaries per analysis window in the fault runs: 32 inferences, one per
/// recording, each counting all 19 frames of its model input (608 values per feature).
const SUMMARIES_PER_WINDOW: usize = 1;
/// The windows after a fault's onset within which a feature of the faulted axes must alert.
const MAX_DELAY_WINDOWS: usize = 1;

fn dir() -> PathBuf {
    let d = root()
        .join("target/test-monitor-qemu")
        .join(std::process::id().to_string());
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tmp dir");
    d
}

/// The BasicMotions project of `examples/basicmotions` (its model and training, so the
/// monitoring figures are the example's), without the device stages.
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
  {{ conv1d = {{ filters = 16, kernel = 3, padding = "same" }} }},
  {{ batch_norm = {{}} }},
  {{ relu = {{}} }},
  {{ global_avg_pool = {{}} }},
  {{ dropout = {{ rate = 0.2 }} }},
  {{ dense = {{ units = 4 }} }},
  {{ softmax = {{}} }},
]

[train]
epochs = 60
batch_size = 8
optimizer = "adam"
learning_rate = 0.005
schedule = "cosine"
augment = {{ noise = 0.05, scale = 0.1 }}

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
        assert_eq!(len, RECORDING_LEN);
        for t in 0..len {
            out.extend(c.dims.iter().map(|d| d[t] as f32));
        }
    }
    out
}

/// Axes of a BasicMotions frame (accelerometer x y z, gyroscope x y z).
const AXES: usize = 6;
/// Time steps of a BasicMotions recording (`device replay --recording-len`).
const RECORDING_LEN: usize = 100;
/// Monitored features per axis: the example's statistics block (mean, std, min, max, rms)
/// of the newest frame, axis by axis, so feature `f` belongs to axis `f / 5`.
const STATS_PER_AXIS: usize = 5;

/// A sensor fault of the known-answer test.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Adds to every sample of an axis.
    Offset { axis: usize, by: f32 },
    /// Multiplies every sample of an axis.
    Gain { axis: usize, by: f32 },
    /// Exchanges two axes.
    Swap(usize, usize),
}

impl Fault {
    fn apply(self, frame: &mut [f32]) {
        match self {
            Fault::Offset { axis, by } => frame[axis] += by,
            Fault::Gain { axis, by } => frame[axis] *= by,
            Fault::Swap(a, b) => frame.swap(a, b),
        }
    }
    fn axes(self) -> Vec<usize> {
        match self {
            Fault::Offset { axis, .. } | Fault::Gain { axis, .. } => vec![axis],
            Fault::Swap(a, b) => vec![a, b],
        }
    }
}

/// The 40 test recordings, one of each class in turn (the file lists them class by
/// class), then the same in reverse (80 recordings), as frames of 6 values, with `fault`
/// applied to every frame if given.
fn interleaved(data: &Path, fault: Option<Fault>) -> Vec<f32> {
    let cases = TsFile::open(data.join("BasicMotions_TEST.ts"), BadRecords::Error)
        .expect("test file")
        .cases()
        .collect_vec()
        .expect("test cases");
    assert_eq!(cases.len(), 40);
    let mut out = Vec::new();
    let order: Vec<usize> = (0..40).map(|i| (i % 4) * 10 + i / 4).collect();
    for &k in order.iter().chain(order.iter().rev()) {
        let c = &cases[k];
        for t in 0..c.dims[0].len() {
            let mut frame: Vec<f32> = c.dims.iter().map(|d| d[t] as f32).collect();
            assert_eq!(frame.len(), AXES);
            if let Some(f) = fault {
                f.apply(&mut frame);
            }
            out.extend(frame);
        }
    }
    out
}

/// What the host computes for `samples` with `artifact`, recording by recording (the
/// engine reset before each [`RECORDING_LEN`] time steps, as `device replay
/// --recording-len` resets the device): each inference's model input dequantized as the
/// device dequantizes it for its summary, the frames new since the previous inference, and
/// the prediction.
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
    let new_frames = std::cell::Cell::new(0u32);
    let mut out = Vec::new();
    for recording in samples.chunks(RECORDING_LEN * AXES) {
        engine.reset();
        engine
            .push_observed_frames(
                recording,
                |q, n| {
                    new_frames.set(n);
                    *features.borrow_mut() = q
                        .iter()
                        .map(|&b| scale * ((b as i8 as i32 - zp) as f32))
                        .collect();
                },
                |p| {
                    out.push(Inference {
                        features: features.borrow().clone(),
                        new_frames: new_frames.get(),
                        class: p.class as u16,
                        score: p.score,
                    })
                },
            )
            .expect("host inference");
    }
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
    let (mut ing, addr) = Ingester::listen(&db, 600);
    let o = edgeflow(&[
        "flash",
        "--board",
        "mps2-an386",
        int8.to_str().expect("utf8"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let device = Device;
    let target = format!("tcp://{addr}");
    let o = edgeflow(&[
        "device",
        "replay",
        "--board",
        "mps2-an386",
        "--data",
        npy.to_str().expect("utf8"),
        "--telemetry",
        &target,
        "--recording-len",
        &RECORDING_LEN.to_string(),
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
    drop(store);

    faults_on_the_emulated_board(&dir, &data, &int8, &artifact, &baseline, &db);
}

/// The thresholds of `examples/basicmotions/edgeflow.toml` (`[monitor.thresholds]`).
fn example_thresholds() -> Thresholds {
    let text = std::fs::read_to_string(root().join("examples/basicmotions/edgeflow.toml"))
        .expect("the example project");
    let project: toml::Table = text.parse().expect("the example's TOML");
    let t = project["monitor"]["thresholds"].clone();
    Thresholds::from_toml(&toml::to_string(&t).expect("thresholds as TOML")).expect("thresholds")
}

/// Runs the three sensor faults on the emulated board (see the module comment); `clean_db`
/// is the clean replay's database, whose windows count as clean windows too.
fn faults_on_the_emulated_board(
    dir: &Path,
    data: &Path,
    int8: &Path,
    artifact: &[u8],
    baseline_bytes: &[u8],
    clean_db: &Path,
) {
    let started = std::time::Instant::now();
    let baseline = Baseline::parse(baseline_bytes).expect("baseline");
    let thresholds = example_thresholds();
    let window = |db: &Path| {
        let store = Store::open(db, Durability::Process).expect("open the database");
        let ws = collect_windows(
            &store,
            None,
            false,
            WindowBy::Summaries(SUMMARIES_PER_WINDOW as u64),
            None,
            None,
        )
        .expect("windows");
        let rs = analyze_windows(&store, &baseline, &thresholds, &ws).expect("analysis");
        (ws, rs)
    };
    let mut lines = vec![format!(
        "BasicMotions on the emulated mps2-an386: a window = {SUMMARIES_PER_WINDOW} device summaries ({} inferences)",
        SUMMARIES_PER_WINDOW * DEVICE_SUMMARY_EVERY
    )];
    // The clean replay of the first part is in file order: class by class, so its windows
    // hold one or two classes each and are not a like-for-like clean stream (the class mix
    // and the features of a class differ from training's mix of all four). Reported, not
    // counted as false alarms.
    let (_, file_order) = window(clean_db);
    lines.push(format!(
        "file-order clean replay (80 recordings, classes in blocks): {} of {} windows alerting: {:?}",
        file_order.iter().filter(|r| !r.alerts.is_empty()).count(),
        file_order.len(),
        file_order
            .iter()
            .flat_map(|r| r.alerts.iter().map(|a| format!("{}:{}", a.area, a.test)))
            .collect::<std::collections::BTreeSet<_>>()
    ));
    // Per clean window (before a fault's onset): the tests that fired.
    let mut clean_alerts: Vec<std::collections::BTreeSet<String>> = Vec::new();
    let kinds = |r: &edgeflow_monitor::WindowReport| -> std::collections::BTreeSet<String> {
        r.alerts
            .iter()
            .map(|a| format!("{}:{}", a.area, a.test))
            .collect()
    };
    // A drift alert: a feature's distribution, the score histogram or the class mix.
    let is_drift = |k: &String| {
        k.starts_with("feature:") || k.starts_with("score:") || k.starts_with("class_mix:")
    };
    let clean = interleaved(data, None);
    let onset_inference = host_inferences(artifact, &clean).len();
    let cases = [
        (
            "offset +1.0 on accelerometer x",
            Fault::Offset { axis: 0, by: 1.0 },
        ),
        ("gain x2 on gyroscope y", Fault::Gain { axis: 4, by: 2.0 }),
        ("accelerometer x and z swapped", Fault::Swap(0, 2)),
    ];
    let mut failures = Vec::new();
    for (name, fault) in cases {
        let mut samples = clean.clone();
        // The faulty stream twice (160 recordings, one inference each): with 32-inference
        // windows, window 2 is the onset (16 clean + 16 faulty), windows 3-7 are faulty.
        let faulty = interleaved(data, Some(fault));
        samples.extend(&faulty);
        samples.extend(&faulty);
        let host = host_inferences(artifact, &samples);
        let npy = dir.join("fault.npy");
        std::fs::write(&npy, npy_f32(&[samples.len() / AXES, AXES], &samples)).expect("npy");
        let db = dir.join(format!("fault-{}.db", fault.axes()[0] * 10 + name.len()));
        let (mut ing, addr) = Ingester::listen(&db, 600);
        let o = edgeflow(&[
            "flash",
            "--board",
            "mps2-an386",
            int8.to_str().expect("utf8"),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let device = Device;
        let target = format!("tcp://{addr}");
        let o = edgeflow(&[
            "device",
            "replay",
            "--board",
            "mps2-an386",
            "--data",
            npy.to_str().expect("utf8"),
            "--telemetry",
            &target,
            "--recording-len",
            &RECORDING_LEN.to_string(),
        ]);
        let t = text(&o);
        assert!(o.status.success(), "{name}: {t}");
        assert!(
            t.contains(&format!("{} predictions", host.len())),
            "{name}: {t}"
        );
        drop(device);
        let least = 1 + host.len() as u64 + host.len().div_ceil(DEVICE_SUMMARY_EVERY) as u64;
        assert!(
            ing.wait_acked(least) >= least,
            "{name}: fewer frames acknowledged"
        );
        drop(ing);

        let (ws, rs) = window(&db);
        let per_window = SUMMARIES_PER_WINDOW * DEVICE_SUMMARY_EVERY;
        assert_eq!(ws.len(), host.len().div_ceil(per_window), "{name}");
        // The first window holding an inference over faulty samples.
        let onset = onset_inference / per_window;
        clean_alerts.extend(rs[..onset].iter().map(kinds));
        let drift_at: Vec<usize> = (onset..rs.len())
            .filter(|&k| kinds(&rs[k]).iter().any(is_drift))
            .collect();
        let on_axes = |f: usize| fault.axes().contains(&(f / STATS_PER_AXIS));
        // Windows from the onset with an alert on a feature of a faulted axis.
        let feature_at: Vec<usize> = (onset..rs.len())
            .filter(|&k| rs[k].alerts.iter().any(|a| a.feature.is_some_and(on_axes)))
            .collect();
        let first = drift_at.first().copied();
        let first_feature = feature_at.first().copied();
        let mut features: Vec<usize> = rs[onset..]
            .iter()
            .flat_map(|r| r.alerts.iter().filter_map(|a| a.feature))
            .collect();
        features.sort_unstable();
        features.dedup();
        let tests: std::collections::BTreeSet<String> =
            rs[onset..].iter().flat_map(kinds).collect();
        let wrong: Vec<usize> = features.iter().copied().filter(|&f| !on_axes(f)).collect();
        // The smallest p-value (or largest distance) among the faulted axes' features, per
        // window from the onset: what the drift test saw.
        let seen: Vec<String> = rs[onset..]
            .iter()
            .map(|r| {
                let vals: Vec<(usize, f64)> = r
                    .features
                    .iter()
                    .enumerate()
                    .filter(|(f, _)| on_axes(*f))
                    .filter_map(|(f, d)| d.as_ref().map(|d| (f, d.value)))
                    .collect();
                vals.iter()
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .map_or("-".into(), |(f, v)| format!("f{f} {v:.2e}"))
            })
            .collect();
        let line = format!(
            "{name}: onset window {onset} of {}; first drift alert {}; first alert on a faulted axis' feature {}; faulty windows with such an alert {} of {}; features alerting {features:?} (faulted axes {:?}); smallest p-value on the faulted axes per window from the onset {seen:?}; tests fired from the onset {tests:?}",
            ws.len(),
            first.map_or("never".to_string(), |k| format!("window {k} (delay {} windows)", k - onset)),
            first_feature.map_or("never".to_string(), |k| format!("window {k} (delay {} windows)", k - onset)),
            feature_at.len(),
            ws.len() - onset,
            fault.axes(),
        );
        println!("{line}");
        lines.push(line);
        if first_feature.is_none_or(|k| k > onset + MAX_DELAY_WINDOWS) {
            failures.push(format!(
                "{name}: no feature of the faulted axes alerted within {MAX_DELAY_WINDOWS} window(s) of the onset"
            ));
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{name}: alerts on features {wrong:?} of untouched axes"
            ));
        }
    }
    let drift_false = clean_alerts
        .iter()
        .filter(|k| k.iter().any(is_drift))
        .count();
    let any_false = clean_alerts.iter().filter(|k| !k.is_empty()).count();
    let line = format!(
        "clean windows (interleaved, before each onset): {drift_false} of {} with a drift alert, {any_false} with any alert (false-alarm rate): {:?}",
        clean_alerts.len(),
        clean_alerts.iter().flatten().collect::<std::collections::BTreeSet<_>>()
    );
    println!("{line}");
    lines.push(line);
    lines.push(format!(
        "the three fault runs took {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    std::fs::write(
        root().join("target/monitor-qemu-faults.txt"),
        lines.join("\n") + "\n",
    )
    .expect("write the figures");
    assert_eq!(any_false, 0, "{}", lines.join("\n"));
    assert!(failures.is_empty(), "{failures:?}\n{}", lines.join("\n"));
}
