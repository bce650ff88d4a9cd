//! Hardware in the loop: the device application on the emulated Cortex-M4F (QEMU
//! mps2-an386), fed samples over its UART.
//!
//! - Every prediction the device sends equals, bit for bit, the host's `edgeflow::Engine`
//!   on the same samples; the device's summary equals the host's `SummaryAccumulator`.
//! - A model update over the link switches to a second model mid-stream, with no firmware
//!   rebuild and no reboot; predictions after it equal the host's for the new model.
//! - A corrupted command is counted (summary `link_errors`, a log frame), the link recovers,
//!   and the telemetry arrives with no sequence gaps.
//!
//! Without QEMU or the Rust target the tests fail, unless `EDGEFLOW_SKIP_QEMU=1` asks to
//! skip them (the reason is printed).

use std::time::Duration;

use edgeflow::dsp::host::{self as dsp_host, Sample};
use edgeflow::host::attach_pipeline;
use edgeflow::{Engine, Model};
use edgeflow_format::baseline::{MonitoringBaseline, OwnedBaseline};
use edgeflow_format::graph::DType;
use edgeflow_format::{Artifact, SectionKind};
use edgeflow_telemetry::command::Command;
use edgeflow_telemetry::{Body, Event, Frame, Summary, SummaryAccumulator};
use edgeflow_tests::device::{self, Device};
use edgeflow_tests::firmware;

const PIPELINE: &str = "[input.signal]\naxes = 2\nrate_hz = 50.0\nwindow = 32\nstride = 16\n\
    [[blocks]]\nstats = { stats = [\"mean\", \"min\", \"max\", \"rms\", \"std\", \"skewness\", \"kurtosis\", \"peak_to_peak\"] }\n";

fn fixture(name: &str) -> Vec<u8> {
    let p = edgeflow_tests::root()
        .join("conformance/fixtures")
        .join(format!("{name}.tflite"));
    let tflite = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    edgeflow_compile::compile(&tflite, name)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .artifact
}

fn signal(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let i = i as u32 * 37 + seed * 11;
            ((i % 101) as f32 / 50.0 - 1.0) * if i % 2 == 0 { 1.0 } else { 0.3 }
                + ((i / 7) % 13) as f32 * 0.05
        })
        .collect()
}

fn dequantize(input: &[u8], dtype: DType, scale: f32, zp: i32) -> Vec<f32> {
    match dtype {
        DType::I8 => input
            .iter()
            .map(|&q| scale * ((q as i8 as i32 - zp) as f32))
            .collect(),
        _ => input
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    }
}

fn input_quant(m: &Model<'_>) -> (DType, f32, i32) {
    let d = m.nn().header().inputs[0];
    match d.quant {
        Some(q) => (d.dtype, q.scale, q.zero_point),
        None => (d.dtype, 1.0, 0),
    }
}

/// Artifact with a monitoring baseline computed from `train` on the host: 8 bins per
/// feature at evenly spaced ranks of the training values.
fn with_baseline(artifact: &[u8], train: &[f32]) -> Vec<u8> {
    let m = Model::parse(artifact).expect("model");
    let q = input_quant(&m);
    let feats: Vec<Vec<f32>> = dsp_host::run(m.pipeline(), &Sample::Signal(train.to_vec()))
        .expect("features")
        .iter()
        .map(|f| dequantize(f, q.0, q.1, q.2))
        .collect();
    let f = feats[0].len();
    let bins = 8usize;
    let (mut edges, mut counts, mut ranges) = (Vec::new(), Vec::new(), Vec::new());
    for j in 0..f {
        let mut v: Vec<f32> = feats.iter().map(|x| x[j]).collect();
        v.sort_by(f32::total_cmp);
        let e: Vec<f32> = (1..bins).map(|k| v[k * v.len() / bins]).collect();
        let mut c = vec![0u32; bins];
        for x in &v {
            c[e.iter().filter(|&&ed| ed <= *x).count()] += 1;
        }
        counts.extend(c);
        edges.extend(e);
        ranges.extend([v[0], v[v.len() - 1]]);
    }
    let classes = m.nn().header().outputs[0]
        .shape
        .num_elements()
        .expect("output size");
    let baseline = OwnedBaseline {
        bins: bins as u16,
        feature_index: (0..f as u32).collect(),
        edges,
        counts,
        ranges,
        train_count: feats.len() as u32,
        class_prior: vec![1.0 / classes as f32; classes],
        score_edges: vec![-0.5, 0.0, 0.5, 1.0, 2.0],
        score_counts: vec![1; 6],
        score_accuracy: vec![],
        score_kind: Default::default(),
        frame_layout: None,
    }
    .to_bytes()
    .expect("baseline");
    let a = Artifact::parse(artifact).expect("artifact");
    let mut sections: Vec<(SectionKind, &[u8])> = vec![
        (SectionKind::Graph, a.graph),
        (SectionKind::Weights, a.weights),
    ];
    if let Some(p) = a.feature_pipeline {
        sections.push((SectionKind::FeaturePipeline, p));
    }
    sections.push((SectionKind::MonitoringBaseline, &baseline));
    edgeflow_format::write::assemble(&sections).expect("assemble")
}

/// What the host computes for `chunks`: predictions (class, score bits) and a summary.
fn host_reference(artifact: &[u8], chunks: &[Vec<f32>]) -> (Vec<(u16, u32)>, Option<Summary>) {
    let m = Model::parse(artifact).expect("model");
    let q = input_quant(&m);
    let mut ws = vec![0.0f32; m.workspace_len()];
    let mut arena = edgeflow_nn::HostArena::for_model(m.nn()).expect("allocate the arena");
    let mut e = Engine::new(&m, &mut ws, arena.as_mut_bytes()).expect("engine");
    let baseline = m
        .nn()
        .artifact()
        .monitoring_baseline
        .map(|b| MonitoringBaseline::parse(b).expect("baseline"));
    let mut store = vec![
        0u32;
        baseline
            .as_ref()
            .map_or(0, SummaryAccumulator::words_needed)
    ];
    let mut acc = baseline.map(|b| SummaryAccumulator::new(b, &mut store, 0).expect("acc"));
    let mut preds = Vec::new();
    let feats = std::cell::RefCell::new(Vec::new());
    for c in chunks {
        e.push_observed(
            c,
            |input| *feats.borrow_mut() = dequantize(input, q.0, q.1, q.2),
            |p| {
                preds.push((p.class as u16, p.score.to_bits()));
                if let Some(a) = acc.as_mut() {
                    a.record(&feats.borrow(), p.class, p.score);
                }
            },
        )
        .expect("push");
    }
    // The device's summary, re-encoded and decoded by the host, for comparison.
    let summary = acc.map(|a| {
        let mut em = edgeflow_telemetry::Emitter::new(0, 0);
        let mut buf = vec![0u8; 1 << 16];
        let n = em.summary(0, &a, &mut buf).expect("summary");
        let mut d = edgeflow_telemetry::Decoder::new();
        match d.push(&buf[..n]).pop() {
            Some(Event::Frame(Frame {
                body: Body::Summary(s),
                ..
            })) => s,
            other => panic!("host summary: {other:?}"),
        }
    });
    (preds, summary)
}

fn frames(ev: &[Event]) -> Vec<&Frame> {
    ev.iter()
        .map(|e| match e {
            Event::Frame(f) => f,
            Event::Error(e) => panic!("telemetry error: {e}"),
        })
        .collect()
}

fn predictions(ev: &[Event]) -> Vec<(u16, u32)> {
    frames(ev)
        .iter()
        .filter_map(|f| match &f.body {
            Body::Prediction(p) => Some((p.class, p.score.to_bits())),
            _ => None,
        })
        .collect()
}

fn send_samples(dev: &mut Device, chunks: &[Vec<f32>]) {
    for c in chunks {
        let bytes: Vec<u8> = c.iter().flat_map(|x| x.to_le_bytes()).collect();
        dev.send(&Command::Samples(&bytes)).expect("send");
    }
}

fn chunks(x: &[f32], n: usize) -> Vec<Vec<f32>> {
    x.chunks(n).map(|c| c.to_vec()).collect()
}

#[test]
fn device_predictions_equal_the_host_and_a_model_update_switches_models() {
    let board = firmware::board("mps2-an386");
    if let Some(why) = firmware::toolchain_missing(&board) {
        println!("skipped: {why}");
        return;
    }
    let spec = dsp_host::from_toml(PIPELINE, "<test>").expect("pipeline");
    let model_a = with_baseline(
        &attach_pipeline(&fixture("fc_int8"), &spec).expect("attach a"),
        &signal(4000, 1),
    );
    let model_b = attach_pipeline(&fixture("fc_f32"), &spec).expect("attach b");

    let elf = device::build_app(&board).unwrap_or_else(|e| panic!("{e}"));
    let work = edgeflow_tests::root().join("target/edgeflow-device");
    std::fs::create_dir_all(&work).expect("dir");
    let img = work.join("partition-a.bin");
    std::fs::write(&img, device::partition_image(&model_a)).expect("image");
    let (partition, _) = device::app_layout(&board).expect("layout");
    let mut dev =
        Device::start(&board, &elf, Some((&img, partition))).unwrap_or_else(|e| panic!("{e}"));
    let t = Duration::from_secs(120);

    // Boot: hello from slot A.
    let ev = dev
        .until(
            t,
            |e| matches!(e, Event::Frame(f) if matches!(f.body, Body::Hello(_))),
        )
        .expect("hello");
    let hello = match &frames(&ev).last().expect("hello").body {
        Body::Hello(h) => h.clone(),
        b => panic!("{b:?}"),
    };
    assert_eq!(
        (hello.slot, hello.slot_sequence, hello.board.as_str()),
        (0, 1, "mps2-an386")
    );

    // Model A: 31 windows' worth of samples in 50-value chunks (not aligned to windows).
    let part1 = chunks(&signal(2 * 16 * 32, 7), 50);
    let (want_a, want_summary) = host_reference(&model_a, &part1);
    send_samples(&mut dev, &part1);
    let mut got = Vec::new();
    while got.len() < want_a.len() {
        let ev = dev
            .until(
                t,
                |e| matches!(e, Event::Frame(f) if matches!(f.body, Body::Prediction(_))),
            )
            .expect("predictions");
        got.extend(predictions(&ev));
    }
    assert_eq!(
        got, want_a,
        "device predictions differ from the host's (model A)"
    );
    assert!(want_a.len() >= 31);

    // A corrupted command: one bit flipped in a samples frame. The device rejects it.
    let bad: Vec<u8> = signal(20, 3).iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut buf = vec![0u8; 256];
    let n = Command::Samples(&bad).encode(&mut buf).expect("encode");
    buf[n / 2] ^= 0x10;
    dev.send_raw(&buf[..n]).expect("send");
    let ev = dev
        .until(t, |e| matches!(e, Event::Frame(f) if matches!(&f.body, Body::Log(l) if l.message.starts_with("link:"))))
        .expect("link error log");
    assert!(predictions(&ev).is_empty());

    // Summary on request: equal to the host's over the same windows, one link error.
    dev.send(&Command::Summary).expect("send");
    let ev = dev
        .until(
            t,
            |e| matches!(e, Event::Frame(f) if matches!(f.body, Body::Summary(_))),
        )
        .expect("summary");
    let dev_summary = match &frames(&ev).last().expect("frame").body {
        Body::Summary(s) => s.clone(),
        b => panic!("{b:?}"),
    };
    // The device reports what encoding the frames cost it (SysTick cycles; under QEMU
    // mps2-an386 with -icount shift=0 one cycle is 40 instructions).
    let ev = dev
        .until(t, |e| matches!(e, Event::Frame(f) if matches!(&f.body, Body::Log(l) if l.message.starts_with("cost:"))))
        .expect("cost log");
    if let Some(Body::Log(l)) = frames(&ev).last().map(|f| &f.body) {
        let nums: Vec<u64> = l
            .message
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|w| w.parse().ok())
            .collect();
        println!(
            "telemetry cost on the M4F ({} features x {} bins): {} -> summary {} B ~{} instructions, prediction {} B ~{} instructions",
            dev_summary.feature_count(),
            dev_summary.bins,
            l.message,
            nums[0],
            nums[1] * 40,
            nums[2],
            nums[3] * 40
        );
    }
    let want = want_summary.expect("model A has a baseline");
    // 31 windows: fewer than the 32 that trigger an automatic summary, so this one covers
    // them all. Counts must match exactly; time, stack and link counters are device-only.
    assert_eq!(dev_summary.inferences as usize, want_a.len());
    assert_eq!(
        (
            &dev_summary.hist,
            &dev_summary.nan,
            &dev_summary.out_of_range
        ),
        (&want.hist, &want.nan, &want.out_of_range)
    );
    assert_eq!(
        (&dev_summary.classes, &dev_summary.scores),
        (&want.classes, &want.scores)
    );
    assert_eq!(dev_summary.bins, want.bins);
    assert_eq!(dev_summary.link_errors, Some(1));
    assert!(dev_summary.stack_high_water > 0);
    assert!(dev_summary.arena_high_water > 0);
    assert!(dev_summary.hist.iter().sum::<u32>() > 0);

    // Model update over the link: model B into slot B, without rebuilding or reflashing.
    let crc = edgeflow_slots::CRC32.checksum(&model_b);
    dev.send(&Command::UpdateBegin {
        len: model_b.len() as u32,
        crc,
    })
    .expect("send");
    for (k, c) in model_b.chunks(1000).enumerate() {
        dev.send(&Command::UpdateData {
            offset: (k * 1000) as u32,
            data: c,
        })
        .expect("send");
    }
    dev.send(&Command::UpdateCommit).expect("send");
    let ev = dev
        .until(
            t,
            |e| matches!(e, Event::Frame(f) if matches!(f.body, Body::Hello(_))),
        )
        .expect("hello after update");
    let logs: Vec<String> = frames(&ev)
        .iter()
        .filter_map(|f| match &f.body {
            Body::Log(l) => Some(l.message.to_string()),
            _ => None,
        })
        .collect();
    assert!(
        logs.iter().any(|l| l == "update ok slot=1 seq=2"),
        "{logs:?}"
    );
    match &frames(&ev).last().expect("hello").body {
        Body::Hello(h) => assert_eq!((h.slot, h.slot_sequence), (1, 2)),
        b => panic!("{b:?}"),
    }
    let hash_b = u32::from_le_bytes([model_b[12], model_b[13], model_b[14], model_b[15]]);
    assert_eq!(frames(&ev).last().expect("hello").header.model_hash, hash_b);

    // Model B serves the next samples, bit for bit as on the host.
    let part2 = chunks(&signal(2 * 16 * 12, 9), 64);
    let (want_b, _) = host_reference(&model_b, &part2);
    send_samples(&mut dev, &part2);
    let mut got = Vec::new();
    while got.len() < want_b.len() {
        let ev = dev
            .until(
                t,
                |e| matches!(e, Event::Frame(f) if matches!(f.body, Body::Prediction(_))),
            )
            .expect("predictions");
        got.extend(predictions(&ev));
    }
    assert_eq!(
        got, want_b,
        "device predictions differ from the host's (model B)"
    );

    let (_, stats) = dev.stop(t).expect("stop");
    assert_eq!(stats.missing_frames, 0, "{stats:?}");
    assert_eq!(stats.discarded_bytes, 0, "{stats:?}");
    assert_eq!(stats.restarts, 0, "{stats:?}");
}

/// The Cortex-M3 without FPU: same predictions as the host, bit for bit. QEMU's
/// lm3s6965evb flash is read-only (no flash controller is emulated), so an update over the
/// link must be rejected at verification, reported, and the old model must keep serving.
#[test]
fn cortex_m3_device_predictions_equal_the_host_and_a_failed_update_keeps_the_old_model() {
    let board = firmware::board("lm3s6965evb");
    if let Some(why) = firmware::toolchain_missing(&board) {
        println!("skipped: {why}");
        return;
    }
    let spec = dsp_host::from_toml(PIPELINE, "<test>").expect("pipeline");
    let model_a = with_baseline(
        &attach_pipeline(&fixture("fc_int8"), &spec).expect("attach a"),
        &signal(4000, 1),
    );
    let model_b = attach_pipeline(&fixture("fc_f32"), &spec).expect("attach b");
    let elf = device::build_app(&board).unwrap_or_else(|e| panic!("{e}"));
    let work = edgeflow_tests::root().join("target/edgeflow-device");
    std::fs::create_dir_all(&work).expect("dir");
    let img = work.join("partition-m3.bin");
    std::fs::write(&img, device::partition_image(&model_a)).expect("image");
    let (partition, _) = device::app_layout(&board).expect("layout");
    let mut dev =
        Device::start(&board, &elf, Some((&img, partition))).unwrap_or_else(|e| panic!("{e}"));
    let t = Duration::from_secs(120);
    let ev = dev
        .until(
            t,
            |e| matches!(e, Event::Frame(f) if matches!(f.body, Body::Hello(_))),
        )
        .expect("hello");
    match &frames(&ev).last().expect("hello").body {
        Body::Hello(h) => assert_eq!((h.slot, h.board.as_str()), (0, "lm3s6965evb")),
        b => panic!("{b:?}"),
    }
    // The device id is the one boards/lm3s6965evb.toml [app] gives (generated into the image).
    assert_eq!(
        Some(frames(&ev).last().expect("hello").header.device_id),
        board.app.as_ref().and_then(|a| a.device_id)
    );
    let samples = signal(2 * 16 * 40, 5);
    let (part1, part2) = samples.split_at(2 * 16 * 20);
    let (c1, c2) = (chunks(part1, 50), chunks(part2, 50));
    let all: Vec<Vec<f32>> = c1.iter().chain(c2.iter()).cloned().collect();
    let (want, _) = host_reference(&model_a, &all);

    send_samples(&mut dev, &c1);
    // The stack high water so far (model A has a baseline, so the device summarises): the
    // app paints all the RAM between its statics and the stack, so the figure must pass
    // the old 8 KiB band's cap (8,448 B) and stay within the static bound of the same ELF
    // (`edgeflow_tests::stack`, as tests/app_stack.rs computes it).
    dev.send(&Command::Summary).expect("send");
    let ev = dev
        .until(
            t,
            |e| matches!(e, Event::Frame(f) if matches!(f.body, Body::Summary(_))),
        )
        .expect("summary");
    let mut got = predictions(&ev);
    let mut logs: Vec<String> = frames(&ev)
        .iter()
        .filter_map(|f| match &f.body {
            Body::Log(l) => Some(l.message.to_string()),
            _ => None,
        })
        .collect();
    let high_water = match &frames(&ev).last().expect("frame").body {
        Body::Summary(s) => s.stack_high_water,
        b => panic!("{b:?}"),
    };
    let bytes = std::fs::read(&elf).expect("elf");
    let bound = edgeflow_tests::stack::analyse(&bytes, false).expect("stack analysis");
    println!(
        "Cortex-M3 app stack: measured high water {high_water} B, static bound {} B, {} B available",
        bound.worst, bound.available
    );
    assert!(
        high_water > 8 * 1024 + 256 && u64::from(high_water) <= bound.worst,
        "stack high water {high_water} B not within (8448, {}] B",
        bound.worst
    );
    let crc = edgeflow_slots::CRC32.checksum(&model_b);
    dev.send(&Command::UpdateBegin {
        len: model_b.len() as u32,
        crc,
    })
    .expect("send");
    for (k, c) in model_b.chunks(1000).enumerate() {
        dev.send(&Command::UpdateData {
            offset: (k * 1000) as u32,
            data: c,
        })
        .expect("send");
    }
    dev.send(&Command::UpdateCommit).expect("send");
    send_samples(&mut dev, &c2);
    while got.len() < want.len() {
        let ev = dev
            .until(
                t,
                |e| matches!(e, Event::Frame(f) if matches!(f.body, Body::Prediction(_))),
            )
            .expect("predictions");
        got.extend(predictions(&ev));
        logs.extend(frames(&ev).iter().filter_map(|f| match &f.body {
            Body::Log(l) => Some(l.message.to_string()),
            _ => None,
        }));
    }
    assert_eq!(got, want, "Cortex-M3 predictions differ from the host's");
    assert!(
        logs.iter().any(|l| l.starts_with("update: Verify {")),
        "{logs:?}"
    );
    let (_, stats) = dev.stop(t).expect("stop");
    assert_eq!(
        (stats.missing_frames, stats.discarded_bytes),
        (0, 0),
        "{stats:?}"
    );
}
