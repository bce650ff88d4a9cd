//! The whole host path on a simulated device: telemetry bytes -> decoder -> SQLite ->
//! windows -> drift analysis, clean vs a faulty sensor, with link corruption counted.

use edgeflow_monitor::analysis::Thresholds;
use edgeflow_monitor::baseline::{build, Baseline};
use edgeflow_monitor::ingest::{device_name, ingest_reader, BatchPolicy};
use edgeflow_monitor::sim::{device_stream, Inference};
use edgeflow_monitor::store::{Durability, Store};
use edgeflow_monitor::windows::{analyze_windows, collect_windows, WindowBy};

/// xorshift64* + Box–Muller: deterministic normal samples without a dependency.
struct Rng(u64);
impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }
}

fn rows(rng: &mut Rng, n: usize) -> Vec<Vec<f32>> {
    (0..n)
        .map(|_| vec![rng.normal(), 5.0 + 2.0 * rng.normal(), rng.normal().abs()])
        .collect()
}

fn inferences(rows: &[Vec<f32>]) -> Vec<Inference> {
    rows.iter()
        .enumerate()
        .map(|(i, r)| Inference {
            features: r.clone(),
            new_frames: 1,
            class: (i % 3) as u16,
            score: 0.6 + 0.3 * ((i % 7) as f32 / 7.0),
        })
        .collect()
}

#[test]
fn clean_device_is_quiet_and_a_sensor_offset_alerts_on_its_feature() {
    let mut rng = Rng(0x5eed);
    let train = rows(&mut rng, 3000);
    let labels: Vec<usize> = (0..3000).map(|i| i % 3).collect();
    let validation: Vec<(f32, bool)> = (0..600)
        .map(|i| (0.6 + 0.3 * ((i % 7) as f32 / 7.0), i % 10 != 0))
        .collect();
    let owned = build(&train, 10, &labels, 3, &[0.7, 0.8, 0.9], &validation).expect("baseline");
    let bytes = owned.to_bytes().expect("bytes");
    let baseline = Baseline::parse(&bytes).expect("parse");

    let clean = rows(&mut rng, 2000);
    let mut faulty = rows(&mut rng, 2000);
    for r in &mut faulty {
        r[1] += 1.5; // offset on one sensor axis
    }
    let mut s1 =
        device_stream(&bytes, 1, 0xabcd, &inferences(&clean), 100, true, 10_000).expect("clean");
    let s2 =
        device_stream(&bytes, 2, 0xabcd, &inferences(&faulty), 100, false, 10_000).expect("faulty");
    // Corrupt one byte inside a prediction frame of the clean stream: one corrupt frame,
    // one sequence gap, nothing else lost.
    let mid = s1.len() / 3;
    let at = mid + s1[mid..].iter().position(|&b| b != 0).expect("data");
    s1[at] ^= 0x55;

    let dir = tempfile::tempdir().expect("tmp");
    let mut store = Store::open(&dir.path().join("m.db"), Durability::Process).expect("store");
    let mut acks = Vec::new();
    for s in [&s1, &s2] {
        let st = ingest_reader(
            &mut store,
            &mut s.as_slice(),
            BatchPolicy::default(),
            &mut |n| acks.push(n),
        )
        .expect("ingest");
        assert!(st.stored > 0);
    }
    let devs = store.devices();
    let d1 = devs
        .iter()
        .find(|d| d.name == device_name(1))
        .expect("device 1");
    assert_eq!((d1.corrupt, d1.gaps), (1, 1), "{d1:?}");
    assert_eq!(d1.model_hash.as_deref(), Some("0000abcd"));
    assert_eq!(
        *acks.last().expect("acked"),
        store.frame_count().expect("count")
    );

    // Evidently's default normed-Wasserstein threshold (0.1) sits at the noise floor of a
    // 500-inference window on 10 quantile bins (clean windows here reach 0.106; the offset
    // gives 0.57-0.69), so this deployment sets 0.2 — the per-test threshold setting at work.
    let t = Thresholds::from_toml("[drift.thresholds]\nwasserstein = 0.2\n").expect("toml");
    let windows =
        collect_windows(&store, None, false, WindowBy::Summaries(5), None, None).expect("windows");
    let reports = analyze_windows(&store, &baseline, &t, &windows).expect("analysis");
    assert_eq!(windows.len(), 8); // 2 devices × 20 summaries / 5
    for (w, r) in windows.iter().zip(&reports) {
        let features: Vec<usize> = r.alerts.iter().filter_map(|a| a.feature).collect();
        if w.group == device_name(1) {
            assert!(r.alerts.is_empty(), "clean window alerted: {:?}", r.alerts);
            let p = r.performance.as_ref().expect("cbpe");
            assert!(
                (p.estimated_accuracy - p.reference_accuracy).abs() < 0.05,
                "{p:?}"
            );
        } else {
            assert_eq!(features, vec![1], "faulty window: {:?}", r.alerts);
        }
    }
}

#[test]
fn parquet_export_reads_back() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let mut rng = Rng(7);
    let train = rows(&mut rng, 500);
    let owned = build(&train, 8, &[], 0, &[0.5], &[]).expect("baseline");
    let bytes = owned.to_bytes().expect("bytes");
    let s = device_stream(
        &bytes,
        9,
        1,
        &inferences(&rows(&mut rng, 30)),
        10,
        true,
        1000,
    )
    .expect("stream");
    let dir = tempfile::tempdir().expect("tmp");
    let mut store = Store::open(&dir.path().join("m.db"), Durability::Process).expect("store");
    ingest_reader(
        &mut store,
        &mut s.as_slice(),
        BatchPolicy::default(),
        &mut |_| {},
    )
    .expect("ingest");
    let out = dir.path().join("w.parquet");
    let n =
        edgeflow_monitor::export::export_parquet(&store, None, None, None, &out).expect("export");
    assert_eq!(n, 1 + 30 + 3);
    let reader =
        SerializedFileReader::new(std::fs::File::open(&out).expect("open")).expect("parquet");
    assert_eq!(reader.metadata().file_metadata().num_rows(), 34);
    let rows: Vec<String> = reader
        .get_row_iter(None)
        .expect("rows")
        .map(|r| r.expect("row").to_string())
        .collect();
    assert!(rows[0].contains("kind: \"hello\""), "{}", rows[0]);
    assert!(
        rows[1].contains("kind: \"prediction\"") && rows[1].contains("latency_us: 1000"),
        "{}",
        rows[1]
    );
    let summaries: Vec<&String> = rows
        .iter()
        .filter(|r| r.contains("kind: \"summary\""))
        .collect();
    assert_eq!(summaries.len(), 3);
    assert!(
        summaries
            .iter()
            .all(|r| r.contains("feature_counts") && r.contains("inferences: 10")),
        "{}",
        summaries[0]
    );
}
