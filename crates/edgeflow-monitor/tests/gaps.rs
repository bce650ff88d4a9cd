//! Sequence gaps as a device really numbers its frames: one counter for every frame it sends
//! (hello, prediction, summary, log), while the monitor stores only hello, prediction and
//! summary frames. Frames received but not stored must not count as lost; frames really lost
//! (cut from the byte stream, or dropped by the device's own emitter) must, exactly.

use edgeflow_monitor::analysis::Thresholds;
use edgeflow_monitor::baseline::{build, Baseline};
use edgeflow_monitor::ingest::{device_name, ingest_reader, BatchPolicy};
use edgeflow_monitor::store::{Durability, Store};
use edgeflow_monitor::windows::{analyze_windows, collect_windows, WindowBy};
use edgeflow_telemetry::{truncated, Emitter, Hello, Level, Log, Prediction, SummaryAccumulator};

/// What one frame of the device's stream is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Hello,
    Prediction,
    Summary,
    Log,
}

fn baseline_bytes() -> Vec<u8> {
    let rows: Vec<Vec<f32>> = (0..400)
        .map(|i| vec![(i % 20) as f32, ((i * 7) % 13) as f32])
        .collect();
    let labels: Vec<usize> = (0..400).map(|i| i % 2).collect();
    build(&rows, 5, &labels, 2, &[0.5, 0.75], &[])
        .expect("baseline")
        .to_bytes()
        .expect("bytes")
}

/// The frames a device sends for `n` inferences, as the firmware app does: a hello, one
/// prediction per inference, a summary every `window` inferences and an info log every
/// `log_every` inferences (logs share the device's sequence counter). Returns each frame's
/// bytes with its kind; `dropped` lists inference indices whose prediction the device's
/// emitter could not send (it advances the sequence number: a real gap).
fn device_frames(
    baseline: &[u8],
    device: u64,
    n: usize,
    window: usize,
    log_every: usize,
    dropped: &[usize],
) -> Vec<(Kind, Vec<u8>)> {
    let base = edgeflow_format::baseline::MonitoringBaseline::parse(baseline).expect("baseline");
    let mut words = vec![0u32; SummaryAccumulator::words_needed(&base)];
    let mut acc = SummaryAccumulator::new(base, &mut words, 0).expect("accumulator");
    let mut em = Emitter::new(device, 0x1234);
    let mut buf = vec![0u8; 4096];
    let mut out = Vec::new();
    let hello = Hello {
        firmware: truncated("gaps-test"),
        board: truncated("host"),
        model: truncated("m"),
        artifact_version: (1, 0),
        slot: 0,
        slot_sequence: 0,
        arena_bytes: 0,
    };
    let k = em.frame(0, &hello, &mut buf).expect("hello");
    out.push((Kind::Hello, buf[..k].to_vec()));
    for i in 0..n {
        let t = (i as u64 + 1) * 1000;
        let features = [(i % 20) as f32, ((i * 7) % 13) as f32];
        acc.record(&features, i % 2, 0.8);
        if dropped.contains(&i) {
            em.skip();
        } else {
            let p = Prediction {
                class: (i % 2) as u16,
                score: 0.8,
                latency_us: 500,
            };
            let k = em.frame(t, &p, &mut buf).expect("prediction");
            out.push((Kind::Prediction, buf[..k].to_vec()));
        }
        if (i + 1) % log_every == 0 {
            let log = Log {
                level: Level::Info,
                message: truncated("ran a window"),
            };
            let k = em.frame(t, &log, &mut buf).expect("log");
            out.push((Kind::Log, buf[..k].to_vec()));
        }
        if (i + 1) % window == 0 {
            let k = em.summary(t, &acc, &mut buf).expect("summary");
            out.push((Kind::Summary, buf[..k].to_vec()));
            acc.reset(t);
        }
    }
    out
}

fn concat(frames: &[(Kind, Vec<u8>)]) -> Vec<u8> {
    frames.iter().flat_map(|(_, b)| b.iter().copied()).collect()
}

#[test]
fn log_frames_are_not_gaps_and_real_losses_are_counted_exactly() {
    let bytes = baseline_bytes();
    let baseline = Baseline::parse(&bytes).expect("parse");
    // 200 inferences, a log every 4th, a summary every 10th: 50 log frames among 271.
    let clean = device_frames(&bytes, 1, 200, 10, 4, &[]);
    let logs = clean.iter().filter(|(k, _)| *k == Kind::Log).count();
    assert_eq!(logs, 50);

    // Device 2 sends the same, but the device drops two predictions itself, and the link
    // loses one log frame and one prediction frame: 4 frames missing in all.
    let mut lossy = device_frames(&bytes, 2, 200, 10, 4, &[33, 150]);
    let log_at = lossy
        .iter()
        .enumerate()
        .filter(|(_, (k, _))| *k == Kind::Log)
        .nth(20)
        .map(|(i, _)| i)
        .expect("a log frame");
    lossy.remove(log_at);
    let pred_at = lossy
        .iter()
        .enumerate()
        .filter(|(_, (k, _))| *k == Kind::Prediction)
        .nth(100)
        .map(|(i, _)| i)
        .expect("a prediction frame");
    lossy.remove(pred_at);

    let dir = tempfile::tempdir().expect("tmp");
    let mut store = Store::open(&dir.path().join("m.db"), Durability::Process).expect("store");
    let st = ingest_reader(
        &mut store,
        &mut concat(&clean).as_slice(),
        BatchPolicy::default(),
        &mut |_| {},
    )
    .expect("ingest clean");
    assert_eq!((st.stored, st.skipped, st.corrupt), (221, 50, 0));
    let st = ingest_reader(
        &mut store,
        &mut concat(&lossy).as_slice(),
        BatchPolicy::default(),
        &mut |_| {},
    )
    .expect("ingest lossy");
    assert_eq!((st.stored, st.skipped, st.corrupt), (218, 49, 0));

    let devs = store.devices();
    let d1 = devs.iter().find(|d| d.name == device_name(1)).expect("1");
    let d2 = devs.iter().find(|d| d.name == device_name(2)).expect("2");
    assert_eq!((d1.frames, d1.gaps, d1.corrupt), (221, 0, 0), "{d1:?}");
    assert_eq!((d2.frames, d2.gaps, d2.corrupt), (218, 4, 0), "{d2:?}");

    // The analysis windows see the same gaps as the device counters, and the default gap
    // threshold (1 %) stays quiet on the clean device and alerts on the lossy one.
    let windows =
        collect_windows(&store, None, false, WindowBy::Summaries(5), None, None).expect("windows");
    let gaps = |dev: u64| -> u64 {
        windows
            .iter()
            .filter(|w| w.group == device_name(dev))
            .map(|w| w.summary.health.gaps)
            .sum()
    };
    assert_eq!((gaps(1), gaps(2)), (0, 4));
    let reports =
        analyze_windows(&store, &baseline, &Thresholds::default(), &windows).expect("analysis");
    for (w, r) in windows.iter().zip(&reports) {
        let gap_alert = r.alerts.iter().any(|a| a.test == "gap_rate");
        if w.group == device_name(1) {
            assert!(!gap_alert, "clean window alerted: {:?}", r.alerts);
        } else {
            assert_eq!(
                gap_alert,
                w.summary.health.gaps > 0,
                "{w:?}: {:?}",
                r.alerts
            );
        }
    }
}

#[test]
fn a_gap_before_an_unstored_frame_survives_an_ingester_restart() {
    let bytes = baseline_bytes();
    let frames = device_frames(&bytes, 3, 40, 10, 4, &[]);
    // Cut after the 3rd log frame, then drop the prediction just before it: the gap is
    // seen on the log frame, which is not stored, so it waits for the next stored frame —
    // which arrives in the next ingester session.
    let cut = frames
        .iter()
        .enumerate()
        .filter(|(_, (k, _))| *k == Kind::Log)
        .nth(2)
        .map(|(i, _)| i + 1)
        .expect("log");
    assert_eq!(frames[cut - 2].0, Kind::Prediction);
    let mut first = frames[..cut].to_vec();
    first.remove(cut - 2);
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("m.db");
    {
        let mut store = Store::open(&path, Durability::Process).expect("store");
        ingest_reader(
            &mut store,
            &mut concat(&first).as_slice(),
            BatchPolicy::default(),
            &mut |_| {},
        )
        .expect("first session");
        assert_eq!(store.devices()[0].gaps, 1);
    }
    let mut store = Store::open(&path, Durability::Process).expect("reopen");
    ingest_reader(
        &mut store,
        &mut concat(&frames[cut..]).as_slice(),
        BatchPolicy::default(),
        &mut |_| {},
    )
    .expect("second session");
    assert_eq!(store.devices()[0].gaps, 1);
    let windows =
        collect_windows(&store, None, false, WindowBy::Summaries(1), None, None).expect("windows");
    let per_window: Vec<u64> = windows.iter().map(|w| w.summary.health.gaps).collect();
    assert_eq!(per_window, vec![0, 1, 0, 0], "{windows:?}");
}
