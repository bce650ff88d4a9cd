//! Per-model analysis: a device that switches models mid-stream has its windows split at
//! the switch, each model's windows are compared with that model's own baseline, a drift
//! that exists only under one model alerts only there, and a model without a baseline is
//! not analysed (never compared with another model's baseline).

use edgeflow_monitor::analysis::Thresholds;
use edgeflow_monitor::baseline::{build, Baseline};
use edgeflow_monitor::ingest::{device_name, ingest_reader, model_hash_hex, BatchPolicy};
use edgeflow_monitor::sim::{device_stream, Inference};
use edgeflow_monitor::store::{Durability, Store};
use edgeflow_monitor::windows::{
    analyze_windows, analyze_windows_by_model, collect_windows, collect_windows_in, Baselines,
    BaselinesError, Select, Window, WindowBy,
};

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

/// Rows of 3 features (`shift[j]` added to feature `j`), and with `fourth` a 4th feature.
fn rows(rng: &mut Rng, n: usize, shift: [f32; 3], fourth: bool) -> Vec<Vec<f32>> {
    (0..n)
        .map(|_| {
            let mut r = vec![
                rng.normal() + shift[0],
                5.0 + 2.0 * rng.normal() + shift[1],
                rng.normal().abs() + shift[2],
            ];
            if fourth {
                r.push(10.0 + rng.normal());
            }
            r
        })
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

fn baseline_bytes(seed: u64, shift: [f32; 3], fourth: bool) -> Vec<u8> {
    let mut rng = Rng(seed);
    let train = rows(&mut rng, 3000, shift, fourth);
    let labels: Vec<usize> = (0..3000).map(|i| i % 3).collect();
    let validation: Vec<(f32, bool)> = (0..600)
        .map(|i| (0.6 + 0.3 * ((i % 7) as f32 / 7.0), i % 10 != 0))
        .collect();
    build(&train, 10, &labels, 3, &[0.7, 0.8, 0.9], &validation)
        .expect("baseline")
        .to_bytes()
        .expect("bytes")
}

const MODEL_A: u32 = 0xaaaa_0001;
/// Model B was retrained for a remounted sensor (its training data has feature 1 at +3)
/// and monitors a 4th feature.
const MODEL_B: u32 = 0xbbbb_0002;
/// Nobody gives a baseline for model C.
const MODEL_C: u32 = 0xcccc_0003;
const B_SHIFT: [f32; 3] = [0.0, 3.0, 0.0];

fn alerted_features(r: &edgeflow_monitor::WindowReport) -> Vec<usize> {
    let mut f: Vec<usize> = r.alerts.iter().filter_map(|a| a.feature).collect();
    f.dedup();
    f
}

struct Setup {
    _dir: tempfile::TempDir,
    store: Store,
    a: Baseline,
    b: Baseline,
}

/// Device 1: model A on clean data, then model B on data like B's training data (a model
/// update, no drift). Device 2: the same, but under model B feature 0 drifts by +1.5.
/// Device 3: model C. Summaries every 100 inferences.
fn setup() -> Setup {
    let a_bytes = baseline_bytes(0xa, [0.0; 3], false);
    let b_bytes = baseline_bytes(0xb, B_SHIFT, true);
    let mut rng = Rng(0x5eed);
    let mut streams = Vec::new();
    for dev in [1u64, 2] {
        let under_a = rows(&mut rng, 1000, [0.0; 3], false);
        let drift = if dev == 2 { 1.5 } else { 0.0 };
        let under_b = rows(&mut rng, 1000, [drift, 3.0, 0.0], true);
        // A model update restarts the device: the new firmware's frames number from 0.
        streams.push(
            device_stream(
                &a_bytes,
                dev,
                MODEL_A,
                &inferences(&under_a),
                100,
                true,
                10_000,
            )
            .expect("stream A"),
        );
        streams.push(
            device_stream(
                &b_bytes,
                dev,
                MODEL_B,
                &inferences(&under_b),
                100,
                true,
                10_000,
            )
            .expect("stream B"),
        );
    }
    let under_c = rows(&mut rng, 500, [0.0; 3], false);
    streams.push(
        device_stream(
            &a_bytes,
            3,
            MODEL_C,
            &inferences(&under_c),
            100,
            false,
            10_000,
        )
        .expect("stream C"),
    );
    let dir = tempfile::tempdir().expect("tmp");
    let mut store = Store::open(&dir.path().join("m.db"), Durability::Process).expect("store");
    for s in &streams {
        ingest_reader(
            &mut store,
            &mut s.as_slice(),
            BatchPolicy::default(),
            &mut |_| {},
        )
        .expect("ingest");
    }
    Setup {
        _dir: dir,
        store,
        a: Baseline::parse(&a_bytes).expect("A"),
        b: Baseline::parse(&b_bytes).expect("B"),
    }
}

fn thresholds() -> Thresholds {
    // As in flow.rs: Evidently's 0.1 normed-Wasserstein threshold is at the noise floor of
    // a 500-inference window on 10 quantile bins.
    Thresholds::from_toml("[drift.thresholds]\nwasserstein = 0.2\n").expect("toml")
}

fn models_of<'a>(ws: &'a [Window], group: &str) -> Vec<&'a str> {
    ws.iter()
        .filter(|w| w.group == group)
        .map(Window::model_name)
        .collect()
}

#[test]
fn windows_split_at_a_model_switch_and_each_model_meets_its_own_baseline() {
    let s = setup();
    let (a, b, c) = (
        model_hash_hex(MODEL_A),
        model_hash_hex(MODEL_B),
        model_hash_hex(MODEL_C),
    );
    let windows = collect_windows(&s.store, None, false, WindowBy::Summaries(5), None, None)
        .expect("windows");
    // Per device: 10 summaries under A, 10 under B -> 2 + 2 windows, split at the switch.
    for dev in [1, 2] {
        assert_eq!(
            models_of(&windows, &device_name(dev)),
            vec![a.as_str(), a.as_str(), b.as_str(), b.as_str()],
            "device {dev}"
        );
    }
    assert_eq!(models_of(&windows, &device_name(3)), vec![c.as_str()]);
    for w in &windows {
        assert_eq!(w.summary.inferences, 100 * w.summaries, "{w:?}");
    }
    // The switch restarts the device (a hello under the new model): an update, not a reset;
    // no frame is lost across it.
    let d1: Vec<&Window> = windows
        .iter()
        .filter(|w| w.group == device_name(1))
        .collect();
    assert_eq!(
        d1.iter()
            .map(|w| (w.summary.health.resets, w.summary.health.gaps))
            .collect::<Vec<_>>(),
        vec![(0, 0); 4]
    );
    assert!(d1[1].end_us <= d1[2].start_us);

    let mut baselines = Baselines::new();
    baselines.add(&a, "a.edgeflow", s.a.clone()).expect("A");
    baselines.add(&b, "b.edgeflow", s.b.clone()).expect("B");
    let t = thresholds();
    let reports = analyze_windows_by_model(&s.store, &baselines, &t, &windows).expect("analysis");
    for (w, r) in windows.iter().zip(&reports) {
        let dev3 = w.group == device_name(3);
        assert_eq!(r.is_none(), dev3, "only model C lacks a baseline: {w:?}");
        let Some(r) = r else { continue };
        let features = alerted_features(r);
        if w.group == device_name(2) && w.model.as_deref() == Some(b.as_str()) {
            // The drift that exists only under model B: feature 0, and nothing else.
            assert_eq!(features, vec![0], "device 2 under B: {:?}", r.alerts);
        } else {
            assert!(
                r.alerts.is_empty(),
                "{} under {}: {:?}",
                w.group,
                w.model_name(),
                r.alerts
            );
        }
    }

    // The control: one baseline for every window (what the analysis did before it knew
    // models) cannot analyse model B's windows — the device bins them over B's 4 features
    // and B's edges — and says so, naming the model.
    let err = analyze_windows(&s.store, &s.a, &t, &windows).expect_err("B does not fit A");
    assert!(err.to_string().contains(&format!("model {b}")), "{err}");
}

#[test]
fn a_model_across_the_fleet_and_one_model_alone() {
    let s = setup();
    let (a, b, c) = (
        model_hash_hex(MODEL_A),
        model_hash_hex(MODEL_B),
        model_hash_hex(MODEL_C),
    );
    let fleet =
        collect_windows(&s.store, None, true, WindowBy::Summaries(5), None, None).expect("windows");
    // Model A across devices 1 and 2: 20 summaries -> 4 windows; B likewise; C: 1.
    assert_eq!(
        models_of(&fleet, "fleet"),
        vec![&a, &a, &a, &a, &b, &b, &b, &b, &c]
            .into_iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    let mut baselines = Baselines::new();
    baselines.add(&a, "a.edgeflow", s.a.clone()).expect("A");
    baselines.add(&b, "b.edgeflow", s.b.clone()).expect("B");
    let reports =
        analyze_windows_by_model(&s.store, &baselines, &thresholds(), &fleet).expect("analysis");
    let quiet: Vec<bool> = reports
        .iter()
        .map(|r| r.as_ref().is_some_and(|r| r.alerts.is_empty()))
        .collect();
    // A's fleet windows are quiet; of B's, the two holding device 2's frames (ingested after
    // device 1's) alert; C has no baseline.
    assert_eq!(
        quiet,
        vec![true, true, true, true, true, true, false, false, false]
    );
    assert!(reports[8].is_none());

    // One model only, per device.
    let only_b = collect_windows_in(
        &s.store,
        &Select {
            model: Some(&b),
            ..Select::default()
        },
        WindowBy::Summaries(5),
    )
    .expect("windows");
    assert_eq!(only_b.len(), 4);
    assert!(only_b
        .iter()
        .all(|w| w.model.as_deref() == Some(b.as_str())));
}

#[test]
fn baselines_refuse_ambiguity() {
    let a = Baseline::parse(&baseline_bytes(0xa, [0.0; 3], false)).expect("A");
    let mut bs = Baselines::new();
    bs.add("0000abcd", "x.edgeflow", a.clone()).expect("first");
    assert!(matches!(
        bs.add("0000abcd", "y.edgeflow", a.clone()),
        Err(BaselinesError::Duplicate { .. })
    ));
    assert!(matches!(
        bs.add_bare("bare.baseline", a.clone()),
        Err(BaselinesError::BareAmongSeveral { .. })
    ));
    assert!(bs.get(Some("00001234")).is_none());
    assert!(bs.get(None).is_none());
    assert_eq!(bs.get(Some("0000abcd")).map(|(o, _)| o), Some("x.edgeflow"));
    // A bare section (no model hash) alone applies to every model.
    let single = Baselines::single("bare.baseline", a);
    assert_eq!(
        single.get(Some("00001234")).map(|(o, _)| o),
        Some("bare.baseline")
    );
}
