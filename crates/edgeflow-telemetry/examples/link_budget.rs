//! Link cost of telemetry: bytes per frame and bytes per hour at a stated inference rate.
//!
//! `cargo run -p edgeflow-telemetry --features std --example link_budget`
//!
//! The case: the IMU pipeline (`crates/edgeflow-dsp/pipelines/imu_features.toml`, 237
//! features, one window every 0.64 s = 5,625 inferences per hour), a baseline of 10 bins
//! per feature, 4 classes, 10 score bins, a summary every 60 s. Counts are encoded as the
//! device encodes them (varints), from a real accumulator fed with values spread over the
//! bins.
use edgeflow_format::baseline::{MonitoringBaseline, OwnedBaseline};
use edgeflow_telemetry::{truncated, Emitter, Hello, Prediction, SummaryAccumulator};

fn main() {
    let (features, bins, classes, score_bins) = (237usize, 10usize, 4usize, 10usize);
    let per_hour = 3600.0 / 0.64;
    let bb = OwnedBaseline {
        bins: bins as u16,
        feature_index: (0..features as u32).collect(),
        edges: (0..features)
            .flat_map(|_| (1..bins).map(|k| k as f32))
            .collect(),
        counts: vec![100; features * bins],
        ranges: (0..features).flat_map(|_| [0.0, bins as f32]).collect(),
        train_count: 1000,
        class_prior: vec![1.0 / classes as f32; classes],
        score_edges: (1..score_bins)
            .map(|k| k as f32 / score_bins as f32)
            .collect(),
        score_counts: vec![10; score_bins],
        score_accuracy: vec![],
        score_kind: Default::default(),
        frame_layout: None,
    }
    .to_bytes()
    .expect("baseline");
    let base = MonitoringBaseline::parse(&bb).expect("baseline");
    let mut store = vec![0u32; SummaryAccumulator::words_needed(&base)];
    let mut acc = SummaryAccumulator::new(base, &mut store, 0).expect("acc");
    let per_window = (60.0 * per_hour / 3600.0) as usize; // inferences in 60 s
    let mut x = vec![0.0f32; features];
    for i in 0..per_window {
        for (f, v) in x.iter_mut().enumerate() {
            *v = ((i * 7 + f * 3) % (bins * 10)) as f32 / 10.0;
        }
        acc.record(&x, i % classes, (i % 100) as f32 / 100.0);
    }
    let mut em = Emitter::new(0x0123_4567_89AB_CDEF, 0xCAFE_F00D);
    let mut buf = vec![0u8; 16 * 1024];
    let summary = em.summary(60_000_000, &acc, &mut buf).expect("summary");
    let prediction = em
        .frame(
            60_000_123,
            &Prediction {
                class: 2,
                score: 0.93,
                latency_us: 4_210,
            },
            &mut buf,
        )
        .expect("prediction");
    let hello = em
        .frame(
            60_000_200,
            &Hello {
                firmware: truncated("edgeflow-app 0.1.0"),
                board: truncated("mps2-an386"),
                model: truncated("basicmotions"),
                artifact_version: (1, 0),
                slot: 1,
                slot_sequence: 12,
                arena_bytes: 3_072,
            },
            &mut buf,
        )
        .expect("hello");
    println!("case: {features} features x {bins} bins, {classes} classes, {score_bins} score bins, {per_hour:.0} inferences/h ({per_window} per 60 s summary)");
    println!("frame bytes on the link (COBS + delimiter included): hello {hello}, prediction {prediction}, summary {summary}");
    println!(
        "summaries only, one per 60 s:        {:>9.0} bytes/h",
        summary as f64 * 60.0
    );
    println!(
        "a prediction frame per inference:    {:>9.0} bytes/h",
        prediction as f64 * per_hour
    );
    println!(
        "both:                                {:>9.0} bytes/h",
        summary as f64 * 60.0 + prediction as f64 * per_hour
    );
    println!(
        "for scale, a prediction frame per inference at 50 inferences/s (keyword spotting): {:.0} bytes/h",
        prediction as f64 * 50.0 * 3600.0
    );
}
