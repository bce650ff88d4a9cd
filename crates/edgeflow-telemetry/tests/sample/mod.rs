//! A deterministic sample stream: the frames a device running this crate writes, and the
//! bodies a reader must get back. `examples/sample_stream.rs` writes it to
//! `tests/data/stream_v<major>_<minor>.bin` (committed once per format version, so later
//! versions are tested against frames the earlier ones really wrote) and into the fuzz
//! seed corpus.
#![allow(dead_code)]

use edgeflow_format::baseline::{MonitoringBaseline, OwnedBaseline};
use edgeflow_telemetry::{truncated, Emitter, Hello, Level, Log, Prediction, SummaryAccumulator};

/// Device id of the sample stream.
pub const DEVICE: u64 = 0x0123_4567_89AB_CDEF;
/// Model hash of the sample stream.
pub const MODEL: u32 = 0xCAFE_F00D;

pub fn baseline_bytes() -> Vec<u8> {
    OwnedBaseline {
        bins: 4,
        feature_index: vec![0, 2, 1],
        edges: vec![-1.0, 0.0, 1.0, 10.0, 10.0, 20.0, 0.25, 0.5, 0.75],
        counts: vec![1; 12],
        ranges: vec![-2.0, 2.0, 0.0, 30.0, 0.0, 1.0],
        train_count: 4,
        class_prior: vec![0.25, 0.25, 0.5],
        score_edges: vec![0.5, 0.9],
        score_counts: vec![1, 1, 2],
        score_accuracy: vec![],
        score_kind: Default::default(),
        frame_layout: None,
    }
    .to_bytes()
    .expect("valid baseline")
}

pub fn hello() -> Hello {
    Hello {
        firmware: truncated("edgeflow-app 0.1.0"),
        board: truncated("lm3s6965evb"),
        model: truncated("imu-demo"),
        artifact_version: (1, 0),
        slot: 0,
        slot_sequence: 3,
        arena_bytes: 2048,
    }
}

pub fn predictions() -> Vec<Prediction> {
    (0..6u16)
        .map(|i| Prediction {
            class: i % 3,
            score: 0.3 + 0.11 * f32::from(i),
            latency_us: 900 + 10 * u32::from(i),
        })
        .collect()
}

pub fn feature_vectors() -> Vec<[f32; 3]> {
    (0..6)
        .map(|i| {
            let t = i as f32;
            [t - 2.5, t * 0.2, t * 7.0]
        })
        .collect()
}

pub fn log() -> Log {
    Log {
        level: Level::Info,
        message: truncated("model slot A active"),
    }
}

/// The stream: hello, six predictions (each also fed to the summary), a log, a summary.
pub fn stream() -> Vec<u8> {
    let bb = baseline_bytes();
    let base = MonitoringBaseline::parse(&bb).expect("baseline");
    let mut store = vec![0u32; SummaryAccumulator::words_needed(&base)];
    let mut acc = SummaryAccumulator::new(base, &mut store, 1_000).expect("acc");
    let mut em = Emitter::new(DEVICE, MODEL);
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    let n = em.frame(1_000, &hello(), &mut buf).expect("hello");
    out.extend_from_slice(&buf[..n]);
    for (i, (p, x)) in predictions().iter().zip(feature_vectors()).enumerate() {
        acc.record(&x, usize::from(p.class), p.score);
        let n = em
            .frame(2_000 + i as u64 * 640_000, p, &mut buf)
            .expect("prediction");
        out.extend_from_slice(&buf[..n]);
    }
    let n = em.frame(4_000_000, &log(), &mut buf).expect("log");
    out.extend_from_slice(&buf[..n]);
    acc.record_dropped(2);
    acc.note_high_water(1500, 2048);
    acc.record_link_errors(1); // since 1.1
    let n = em.summary(5_001_000, &acc, &mut buf).expect("summary");
    out.extend_from_slice(&buf[..n]);
    out
}
