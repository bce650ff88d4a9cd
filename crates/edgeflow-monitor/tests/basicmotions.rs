//! Known-answer test on real data: BasicMotions (smart-watch accelerometer + gyroscope, UEA
//! archive). A baseline is built from the training split's features; the test split is
//! replayed through a simulated device (the telemetry summary accumulator and emitter a
//! device runs) into the store — first clean, then with an injected sensor fault — and the
//! windows are checked. Clean windows must raise no feature alert; each fault must be
//! detected, only on the features of the faulted axes. Detection delay and false-alarm
//! rate are printed and written to `target/monitor-basicmotions.txt`.
//!
//! Features: the statistics branch of `crates/edgeflow-dsp/pipelines/imu_features.toml`
//! (9 statistics per axis), computed by edgeflow-dsp on the host — on windows of 25
//! samples every 12, over all 6 axes, because BasicMotions recordings are 100 samples at
//! 10 Hz (the IMU pipeline's 128-sample windows and spectra do not fit them). No trained
//! model is involved: the "prediction" is the true class with score 1.
//!
//! Needs the data: `crates/edgeflow-data/scripts/fetch_basicmotions.sh` (run by `.ci/run`);
//! without it the test prints why it skipped.

use std::path::PathBuf;

use edgeflow_data::sources::ts::TsFile;
use edgeflow_data::BadRecords;
use edgeflow_monitor::analysis::Thresholds;
use edgeflow_monitor::baseline::{build, Baseline};
use edgeflow_monitor::ingest::{ingest_reader, BatchPolicy};
use edgeflow_monitor::sim::{device_stream, Inference};
use edgeflow_monitor::store::Store;
use edgeflow_monitor::windows::{analyze_windows, collect_windows, WindowBy};

const STATS: usize = 9;
const AXES: usize = 6;
const PIPELINE: &str = r#"
[input.signal]
axes = 6
rate_hz = 10.0
window = 25
stride = 12

[[branches]]
blocks = [
  { stats = { stats = ["mean", "min", "max", "rms", "std", "skewness", "kurtosis", "zero_crossing_rate", "peak_to_peak"] } },
]
"#;
/// Cases per analysis window (7 inferences per case).
const CASES_PER_WINDOW: u64 = 8;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/data/BasicMotions")
}

/// `(recording as frames × axes, class)` per case.
fn cases(file: &str) -> Vec<(Vec<[f64; AXES]>, usize)> {
    let f = TsFile::open(data_dir().join(file), BadRecords::Error).expect("ts file");
    f.cases()
        .iter()
        .map(|s| {
            let s = s.expect("case");
            let len = s.dims[0].len();
            let frames = (0..len)
                .map(|t| std::array::from_fn(|a| s.dims[a][t]))
                .collect();
            (frames, s.class.expect("class"))
        })
        .collect()
}

fn features(p: &edgeflow_dsp::Pipeline<'_>, frames: &[[f64; AXES]]) -> Vec<Vec<f32>> {
    let x: Vec<f32> = frames.iter().flatten().map(|&v| v as f32).collect();
    edgeflow_dsp::host::run(p, &edgeflow_dsp::host::Sample::Signal(x))
        .expect("pipeline")
        .iter()
        .map(|o| edgeflow_dsp::host::as_f32(o))
        .collect()
}

/// Feature numbers (axis-major: axis * 9 + statistic) whose axis is in `axes`.
fn on_axes(axes: &[usize]) -> Vec<usize> {
    (0..AXES * STATS)
        .filter(|f| axes.contains(&(f / STATS)))
        .collect()
}

#[test]
fn clean_replay_is_quiet_and_faults_alert_on_their_axes() {
    if !data_dir().join("BasicMotions_TEST.ts").exists() {
        println!("SKIPPED basicmotions known-answer test: run crates/edgeflow-data/scripts/fetch_basicmotions.sh first");
        return;
    }
    let spec = edgeflow_dsp::host::from_toml(PIPELINE, "<kat>").expect("pipeline");
    let pipeline = edgeflow_dsp::Pipeline::new(spec).expect("pipeline");
    let train = cases("BasicMotions_TRAIN.ts");
    let (mut rows, mut labels) = (Vec::new(), Vec::new());
    for (frames, class) in &train {
        for f in features(&pipeline, frames) {
            assert_eq!(f.len(), AXES * STATS);
            rows.push(f);
            labels.push(*class);
        }
    }
    let owned = build(&rows, 10, &labels, 4, &[0.5], &[(1.0, true)]).expect("baseline");
    let bytes = owned.to_bytes().expect("baseline bytes");
    let baseline = Baseline::parse(&bytes).expect("baseline");

    // Test cases, classes interleaved so that every window holds a mix of activities.
    let mut test = cases("BasicMotions_TEST.ts");
    let mut order: Vec<usize> = (0..test.len()).collect();
    let mut seen = [0usize; 4];
    let rank: Vec<(usize, usize)> = test
        .iter()
        .map(|(_, c)| {
            seen[*c] += 1;
            (seen[*c], *c)
        })
        .collect();
    order.sort_by_key(|&i| rank[i]);
    test = order.into_iter().map(|i| test[i].clone()).collect();

    type Fault = (&'static str, fn(&mut [f64; AXES]), Vec<usize>);
    let faults: Vec<Fault> = vec![
        ("clean", |_| {}, vec![]),
        ("offset +1.0 on accel x", |s| s[0] += 1.0, on_axes(&[0])),
        ("gain x2 on gyro y", |s| s[4] *= 2.0, on_axes(&[4])),
        ("accel x and z swapped", |s| s.swap(0, 2), on_axes(&[0, 2])),
    ];
    let thresholds = Thresholds::from_toml("[drift]\nbonferroni = true\n").expect("thresholds");
    let mut report = String::new();
    let (mut clean_windows, mut false_alarms) = (0usize, 0usize);
    for (k, (name, fault, expect)) in faults.iter().enumerate() {
        let mut inf = Vec::new();
        for phase in 0..2 {
            for (frames, class) in &test {
                let mut frames = frames.clone();
                if phase == 1 {
                    frames.iter_mut().for_each(fault);
                }
                for f in features(&pipeline, &frames) {
                    inf.push(Inference {
                        features: f,
                        new_frames: 1,
                        class: *class as u16,
                        score: 1.0,
                    });
                }
            }
        }
        let s = device_stream(&bytes, k as u64, 1, &inf, 7, false, 100_000).expect("stream");
        let mut store = Store::in_memory().expect("store");
        ingest_reader(
            &mut store,
            &mut s.as_slice(),
            BatchPolicy::default(),
            &mut |_| {},
        )
        .expect("ingest");
        let windows = collect_windows(
            &store,
            None,
            false,
            WindowBy::Summaries(CASES_PER_WINDOW),
            None,
            None,
        )
        .expect("windows");
        let reports = analyze_windows(&store, &baseline, &thresholds, &windows).expect("analysis");
        let onset = test.len() / CASES_PER_WINDOW as usize;
        assert_eq!(windows.len(), 2 * onset);
        let mut first_detect = None;
        let mut hits = 0;
        for (w, r) in reports.iter().enumerate() {
            let mut alerted: Vec<usize> = r.alerts.iter().filter_map(|a| a.feature).collect();
            alerted.sort_unstable();
            let mut tests: Vec<&str> = r
                .alerts
                .iter()
                .filter(|a| a.feature.is_some())
                .map(|a| a.test.as_str())
                .collect();
            tests.sort_unstable();
            tests.dedup();
            let faulty = w >= onset && !expect.is_empty();
            report.push_str(&format!(
                "{name}: window {w}{} alerts on features {alerted:?}{}\n",
                if faulty { " (fault)" } else { "" },
                if tests.is_empty() {
                    String::new()
                } else {
                    format!(" by {}", tests.join(", "))
                }
            ));
            if !faulty {
                clean_windows += 1;
                false_alarms += usize::from(!alerted.is_empty());
                assert!(
                    alerted.is_empty(),
                    "{name}: clean window {w} alerted on {alerted:?}: {:?}",
                    r.alerts
                );
            } else {
                let wrong: Vec<usize> = alerted
                    .iter()
                    .copied()
                    .filter(|f| !expect.contains(f))
                    .collect();
                assert!(
                    wrong.is_empty(),
                    "{name}: window {w} alerted on features of untouched axes {wrong:?}"
                );
                hits += usize::from(!alerted.is_empty());
                if !alerted.is_empty() && first_detect.is_none() {
                    first_detect = Some(w - onset);
                }
            }
        }
        if !expect.is_empty() {
            let delay = first_detect.unwrap_or_else(|| panic!("{name}: never detected"));
            report.push_str(&format!(
                "{name}: first detected {delay} window(s) after onset ({} inferences per window); alerts in {hits} of {} faulty windows\n",
                CASES_PER_WINDOW * 7,
                windows.len() - onset
            ));
            assert!(delay <= 1, "{name}: detection delay {delay} windows");
        }
    }
    report.push_str(&format!(
        "false alarms: {false_alarms} of {clean_windows} clean windows\n"
    ));
    print!("{report}");
    let out =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/monitor-basicmotions.txt");
    let _ = std::fs::write(out, report);
}
