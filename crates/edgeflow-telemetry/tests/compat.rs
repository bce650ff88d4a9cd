//! Frames written by earlier format versions, committed as bytes, still decode.
//!
//! `tests/data/stream_v1_<minor>.bin` was written by format 1.<minor> of this crate
//! (`cargo run -p edgeflow-telemetry --features std --example sample_stream`, at the commit
//! that introduced that minor); each must keep decoding, to the same values, in every later
//! 1.x, with the fields its minor did not have reported as absent.

mod sample;

use edgeflow_format::baseline::MonitoringBaseline;
use edgeflow_telemetry::{Body, Decoder, Event, FrameKind, Summary};

/// What the 1.0 summary in the sample stream must decode to, counted here from the sample
/// inputs with the baseline's own bin edges listed out.
fn expected_summary(minor: u8) -> Summary {
    let idx = [0usize, 2, 1];
    let mut s = Summary {
        window_us: 5_000_000,
        dropped_samples: 2,
        stack_high_water: 1500,
        arena_high_water: 2048,
        bins: 4,
        hist: vec![0; 12],
        nan: vec![0; 3],
        out_of_range: vec![0; 3],
        classes: vec![0; 3],
        scores: vec![0; 3],
        link_errors: (minor >= 1).then_some(1),
        ..Summary::default()
    };
    // Summary feature f reads input element feature_index[f] = 0, 2, 1 (see sample.rs).
    let bb = sample::baseline_bytes();
    let base = MonitoringBaseline::parse(&bb).expect("baseline");
    for (f, &i) in idx.iter().enumerate() {
        assert_eq!(base.feature_index(f), Some(i as u32));
    }
    for (p, x) in sample::predictions().iter().zip(sample::feature_vectors()) {
        s.inferences += 1;
        for f in 0..3 {
            let v = x[idx[f]];
            let e = &sample_edges()[f];
            s.hist[f * 4 + e.iter().filter(|&&e| e <= v).count()] += 1;
            let (lo, hi) = sample_ranges()[f];
            if v < lo || v > hi {
                s.out_of_range[f] += 1;
            }
        }
        s.classes[usize::from(p.class)] += 1;
        s.scores[[0.5f32, 0.9].iter().filter(|&&e| e <= p.score).count()] += 1;
    }
    s
}

/// Edges and ranges per summary feature, as sample.rs writes them (feature-major).
fn sample_edges() -> [[f32; 3]; 3] {
    [[-1.0, 0.0, 1.0], [10.0, 10.0, 20.0], [0.25, 0.5, 0.75]]
}
fn sample_ranges() -> [(f32, f32); 3] {
    [(-2.0, 2.0), (0.0, 30.0), (0.0, 1.0)]
}

#[test]
fn frames_written_by_format_1_0_decode() {
    check(include_bytes!("data/stream_v1_0.bin"), 0);
}

#[test]
fn frames_written_by_format_1_1_decode() {
    check(include_bytes!("data/stream_v1_1.bin"), 1);
}

#[test]
fn frames_written_by_format_1_2_decode() {
    check(include_bytes!("data/stream_v1_2.bin"), 2);
}

fn check(bytes: &[u8], minor: u8) {
    let mut d = Decoder::new();
    let ev = d.push(bytes);
    assert!(d.finish().is_none());
    let frames: Vec<_> = ev
        .into_iter()
        .map(|e| match e {
            Event::Frame(f) => f,
            Event::Error(e) => panic!("1.0 stream: {e}"),
        })
        .collect();
    assert_eq!(frames.len(), 9);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!((f.header.major, f.header.minor), (1, minor));
        assert_eq!(f.header.seq, i as u32);
        assert_eq!(f.header.device_id, sample::DEVICE);
        assert_eq!(f.header.model_hash, sample::MODEL);
        assert_eq!(f.gap, 0);
    }
    assert_eq!(frames[0].body, Body::Hello(sample::hello()));
    for (f, p) in frames[1..7].iter().zip(sample::predictions()) {
        assert_eq!(f.body, Body::Prediction(p));
    }
    assert_eq!(frames[7].body, Body::Log(sample::log()));
    assert_eq!(frames[8].header.kind, FrameKind::Summary);
    assert_eq!(frames[8].header.timestamp_us, 5_001_000);
    assert_eq!(frames[8].body, Body::Summary(expected_summary(minor)));
    assert_eq!(d.stats().frames, 9);
}

/// A 1.0 reader decodes a summary by its 1.0 fields and ignores what 1.1 appended: decoding
/// the committed 1.1 body as minor 0 (the 1.0 code path, unchanged) gives the 1.0 values.
#[test]
fn a_1_0_reader_reads_1_1_summaries() {
    let bytes = include_bytes!("data/stream_v1_1.bin");
    let last = bytes[..bytes.len() - 1]
        .rsplit(|&b| b == 0)
        .next()
        .expect("a frame");
    let raw = cobs::decode_vec(last).expect("cobs");
    let f = edgeflow_telemetry::parse_frame(&raw).expect("frame");
    assert_eq!(f.header.minor, 1);
    assert_eq!(Summary::decode(f.body, 0), Ok(expected_summary(0)));
    assert_eq!(Summary::decode(f.body, 1), Ok(expected_summary(1)));
}
