//! Frames round-trip, summaries count what the baseline says, the decoder survives a
//! damaged link and counts what it lost.

use edgeflow_format::baseline::{MonitoringBaseline, OwnedBaseline};
use edgeflow_telemetry::{
    encode, encode_vec, parse_frame, truncated, Body, DecodeErrorKind, Decoder, Emitter, Event,
    FrameError, FrameHeader, FrameKind, Hello, Level, Log, Prediction, SampleBlock, Samples,
    Summary, SummaryAccumulator, FORMAT_MAJOR, FORMAT_MINOR, MAX_BLOCK_VALUES,
};

/// Small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn f32(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next() >> 40) as f32 / (1u64 << 24) as f32)
    }
}

fn hello() -> Hello {
    Hello {
        firmware: truncated("edgeflow-app 0.1.0"),
        board: truncated("mps2-an386"),
        model: truncated("basicmotions"),
        artifact_version: (1, 0),
        slot: 1,
        slot_sequence: 7,
        arena_bytes: 12_345,
    }
}

fn baseline_bytes() -> Vec<u8> {
    OwnedBaseline {
        bins: 4,
        feature_index: vec![0, 5, 2],
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

fn decode_all(stream: &[u8]) -> (Vec<Event>, Decoder) {
    let mut d = Decoder::new();
    let mut ev = d.push(stream);
    ev.extend(d.finish());
    (ev, d)
}

fn frames(ev: &[Event]) -> Vec<&edgeflow_telemetry::Frame> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Frame(f) => Some(f),
            Event::Error(_) => None,
        })
        .collect()
}

#[test]
fn every_kind_round_trips_through_any_chunking() {
    let mut em = Emitter::new(0xDEAD_BEEF_0123_4567, 0xA1B2_C3D4);
    let mut stream = Vec::new();
    let mut buf = [0u8; 512];
    let n = em.frame(10, &hello(), &mut buf).expect("hello");
    stream.extend_from_slice(&buf[..n]);
    let p = Prediction {
        class: 3,
        score: 0.875,
        latency_us: 1234,
    };
    let n = em.frame(20, &p, &mut buf).expect("prediction");
    stream.extend_from_slice(&buf[..n]);
    let log = Log {
        level: Level::Warn,
        message: truncated("slot B failed CRC; booted slot A"),
    };
    let n = em.frame(u64::MAX, &log, &mut buf).expect("log");
    stream.extend_from_slice(&buf[..n]);
    assert_eq!(em.next_seq(), 3);

    let mut rng = Rng(42);
    for _ in 0..50 {
        let mut d = Decoder::new();
        let mut ev = Vec::new();
        let mut rest = &stream[..];
        while !rest.is_empty() {
            let k = 1 + rng.below(rest.len().min(40));
            ev.extend(d.push(&rest[..k]));
            rest = &rest[k..];
        }
        assert!(d.finish().is_none());
        let fs = frames(&ev);
        assert_eq!(fs.len(), 3, "{ev:?}");
        assert_eq!(fs[0].body, Body::Hello(hello()));
        assert_eq!(fs[1].body, Body::Prediction(p));
        assert_eq!(fs[2].body, Body::Log(log.clone()));
        assert_eq!(fs[2].header.timestamp_us, u64::MAX);
        for (i, f) in fs.iter().enumerate() {
            assert_eq!(f.header.seq, i as u32);
            assert_eq!(f.header.device_id, 0xDEAD_BEEF_0123_4567);
            assert_eq!(f.header.model_hash, 0xA1B2_C3D4);
            assert_eq!(
                (f.header.major, f.header.minor),
                (FORMAT_MAJOR, FORMAT_MINOR)
            );
            assert_eq!(f.gap, 0);
        }
        assert_eq!(d.stats().frames, 3);
        assert_eq!(d.stats().discarded_bytes, 0);
        assert_eq!(d.stats().bytes, stream.len() as u64);
    }
    // No zero inside a frame; exactly one delimiter per frame.
    assert_eq!(stream.iter().filter(|&&b| b == 0).count(), 3);
}

#[test]
fn too_small_buffer_is_an_error_and_still_counts_a_sequence_number() {
    let mut em = Emitter::new(1, 2);
    let mut small = [0u8; 16];
    assert_eq!(
        em.frame(0, &hello(), &mut small),
        Err(edgeflow_telemetry::EncodeError::BufferFull)
    );
    assert_eq!(em.next_seq(), 1);
    for len in 0..64 {
        let mut b = vec![0u8; len];
        let _ = encode(
            &FrameHeader {
                major: 1,
                minor: 0,
                kind: FrameKind::Hello,
                device_id: 0,
                model_hash: 0,
                seq: 0,
                timestamp_us: 0,
            },
            &hello(),
            &mut b,
        ); // never panics
    }
}

/// Reference binning written independently of the baseline's binary search: count edges <= x.
fn ref_bin(edges: &[f32], x: f32) -> usize {
    edges.iter().filter(|&&e| e <= x).count()
}

#[test]
fn summary_counts_match_a_reference_count() {
    let bb = baseline_bytes();
    let base = MonitoringBaseline::parse(&bb).expect("baseline");
    let words = SummaryAccumulator::words_needed(&base);
    assert_eq!(words, 3 * 4 + 2 * 3 + 3 + 3);
    let mut small = vec![0u32; words - 1];
    assert!(SummaryAccumulator::new(base, &mut small, 0).is_err());
    let mut store = vec![0u32; words];
    let mut acc = SummaryAccumulator::new(base, &mut store, 1_000).expect("acc");

    let edges = [
        vec![-1.0f32, 0.0, 1.0],
        vec![10.0, 10.0, 20.0],
        vec![0.25, 0.5, 0.75],
    ];
    let ranges = [(-2.0f32, 2.0f32), (0.0, 30.0), (0.0, 1.0)];
    let idx = [0usize, 5, 2];
    let score_edges = [0.5f32, 0.9];
    let mut want = Summary {
        bins: 4,
        hist: vec![0; 12],
        nan: vec![0; 3],
        out_of_range: vec![0; 3],
        classes: vec![0; 3],
        scores: vec![0; 3],
        ..Summary::default()
    };
    let mut rng = Rng(7);
    for i in 0..500 {
        let mut x: Vec<f32> = (0..6).map(|_| rng.f32(-3.0, 35.0)).collect();
        if i % 17 == 0 {
            x[2] = f32::NAN;
        }
        let short = i % 50 == 0; // feature 1 (index 5) missing
        let xs = if short { &x[..5] } else { &x[..] };
        let class = rng.below(4); // class 3 is outside the baseline's 3 classes
        let score = if i % 31 == 0 {
            f32::NAN
        } else {
            rng.f32(0.0, 1.0)
        };
        acc.record(xs, class, score);

        want.inferences += 1;
        for f in 0..3 {
            match xs.get(idx[f]).copied().filter(|v| !v.is_nan()) {
                None => want.nan[f] += 1,
                Some(v) => {
                    want.hist[f * 4 + ref_bin(&edges[f], v)] += 1;
                    if v < ranges[f].0 || v > ranges[f].1 {
                        want.out_of_range[f] += 1;
                    }
                }
            }
        }
        if class < 3 {
            want.classes[class] += 1;
        }
        if score.is_nan() {
            want.score_nan += 1;
        } else {
            want.scores[ref_bin(&score_edges, score)] += 1;
        }
    }
    acc.record_dropped(5);
    acc.record_dropped(6);
    acc.note_high_water(900, 4000);
    acc.note_high_water(800, 4100);
    want.dropped_samples = 11;
    want.stack_high_water = 900;
    want.arena_high_water = 4100;
    want.window_us = 60_000_000;
    want.link_errors = Some(0);

    let mut em = Emitter::new(9, 8);
    let mut buf = vec![0u8; 1024];
    let n = em.summary(60_001_000, &acc, &mut buf).expect("summary");
    let (ev, d) = decode_all(&buf[..n]);
    let fs = frames(&ev);
    assert_eq!(fs.len(), 1, "{ev:?}");
    assert_eq!(fs[0].header.kind, FrameKind::Summary);
    assert_eq!(fs[0].body, Body::Summary(want.clone()));
    assert_eq!(d.stats().frames, 1);

    // The host-side Summary writes the same bytes a device writes.
    let n2 = encode(&fs[0].header, &want, &mut buf).expect("host summary");
    let again = encode_vec(&fs[0].header, &want).expect("vec");
    assert_eq!(&buf[..n2], &again[..]);
    assert_eq!(n2, n);

    acc.reset(5);
    assert_eq!(acc.inferences(), 0);
    assert_eq!(acc.feature_count(0, 0), Some(0));
    assert_eq!(acc.feature_count(3, 0), None);
}

fn sample_stream(frames: usize, seed: u64) -> (Vec<u8>, Vec<usize>) {
    let mut rng = Rng(seed);
    let mut em = Emitter::new(77, 0x1234_5678);
    let mut stream = Vec::new();
    let mut ends = Vec::new();
    let mut buf = [0u8; 256];
    for i in 0..frames {
        let n = if i % 10 == 0 {
            em.frame(i as u64 * 1000, &hello(), &mut buf)
        } else {
            em.frame(
                i as u64 * 1000,
                &Prediction {
                    class: rng.below(4) as u16,
                    score: rng.f32(0.0, 1.0),
                    latency_us: rng.below(100_000) as u32,
                },
                &mut buf,
            )
        }
        .expect("frame");
        stream.extend_from_slice(&buf[..n]);
        ends.push(stream.len());
    }
    (stream, ends)
}

#[test]
fn lost_frames_are_counted_from_sequence_numbers() {
    let (stream, ends) = sample_stream(30, 1);
    // Drop frames 3, 4 and 20 (whole frames, as a lossy link or a full device buffer would).
    let mut lossy = Vec::new();
    let mut start = 0;
    for (i, &end) in ends.iter().enumerate() {
        if ![3, 4, 20].contains(&i) {
            lossy.extend_from_slice(&stream[start..end]);
        }
        start = end;
    }
    let (ev, d) = decode_all(&lossy);
    let fs = frames(&ev);
    assert_eq!(fs.len(), 27);
    assert_eq!(d.stats().missing_frames, 3);
    let gaps: Vec<(u32, u32)> = fs
        .iter()
        .filter(|f| f.gap > 0)
        .map(|f| (f.header.seq, f.gap))
        .collect();
    assert_eq!(gaps, vec![(5, 2), (21, 1)]);

    // A restart: the sequence goes back to 0; the frames after it are not a gap.
    let (again, again_ends) = sample_stream(5, 2);
    let mut s = stream.clone();
    s.extend_from_slice(&again);
    let (ev, d) = decode_all(&s);
    assert_eq!(frames(&ev).len(), 35);
    assert_eq!(d.stats().restarts, 1);
    assert_eq!(d.stats().missing_frames, 0);
    // A restart whose first two frames were lost: seq 2 after 29 is a restart with a gap of 2.
    let mut s = stream.clone();
    s.extend_from_slice(&again[again_ends[1]..]);
    let (ev, d) = decode_all(&s);
    assert_eq!(d.stats().restarts, 1);
    assert_eq!(d.stats().missing_frames, 2);
    assert_eq!(frames(&ev)[30].gap, 2);

    // The same frame twice is a duplicate.
    let mut s = stream[..ends[1]].to_vec();
    s.extend_from_slice(&stream[ends[0]..ends[1]]);
    let (_, d) = decode_all(&s);
    assert_eq!(d.stats().duplicates, 1);
}

#[test]
fn corrupt_bytes_are_counted_and_the_decoder_resynchronises() {
    let (stream, ends) = sample_stream(200, 3);
    let mut rng = Rng(99);
    for round in 0..200 {
        let mut s = stream.clone();
        // Flip, insert or delete a few bytes at random places.
        let mut touched = Vec::new();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(s.len());
            match rng.below(3) {
                0 => s[at] ^= 1 << rng.below(8),
                1 => s.insert(at, rng.below(256) as u8),
                _ => {
                    s.remove(at);
                }
            }
            touched.push(at);
        }
        let (ev, d) = decode_all(&s);
        let st = d.stats();
        // Every byte is accounted for: in a frame, a delimiter, or discarded.
        let errors: usize = ev
            .iter()
            .map(|e| match e {
                Event::Error(e) => e.len,
                Event::Frame(_) => 0,
            })
            .sum();
        assert_eq!(st.discarded_bytes as usize, errors);
        assert_eq!(st.bytes as usize, s.len());
        // Damage stays local: at most the frames around each edit are lost…
        let got = frames(&ev).len();
        assert!(
            got + 3 * touched.len() >= ends.len(),
            "round {round}: {got} of {}",
            ends.len()
        );
        // …and every lost frame is visible, either as a rejected stretch or as a gap.
        let lost = ends.len() as u64 - st.frames;
        let seen =
            st.missing_frames + (st.cobs_errors + st.crc_errors + st.short_frames + st.malformed);
        assert!(
            seen >= lost || st.frames > ends.len() as u64,
            "round {round}: lost {lost}, seen {seen}: {st:?}"
        );
        // A frame that decodes is exactly one the device sent.
        for f in frames(&ev) {
            let i = f.header.seq as usize;
            let start = if i == 0 { 0 } else { ends[i - 1] };
            let (orig, _) = decode_all(&stream[start..ends[i]]);
            assert_eq!(frames(&orig)[0].body, f.body, "round {round}");
        }
    }
}

#[test]
fn oversize_and_truncated_streams_are_reported() {
    let mut d = Decoder::with_max_frame(64);
    let ev = d.push(&[7u8; 100]);
    assert!(ev.is_empty());
    let ev = d.push(&[0]);
    assert!(matches!(
        ev.as_slice(),
        [Event::Error(e)] if e.kind == DecodeErrorKind::Oversize { max: 64 } && e.len == 100
    ));
    assert_eq!(d.stats().discarded_bytes, 100);
    let (stream, _) = sample_stream(2, 5);
    let ev = d.push(&stream[..stream.len() - 3]);
    assert_eq!(ev.len(), 1);
    assert!(matches!(d.finish(), Some(Event::Error(e)) if e.kind == DecodeErrorKind::Truncated));
    assert!(d.finish().is_none());
}

/// Builds a raw frame by hand (as another writer would) and COBS-frames it.
fn hand_frame(major: u8, minor: u8, kind: u8, body: &[u8]) -> Vec<u8> {
    let mut raw = vec![major, minor, kind];
    raw.extend_from_slice(&5u64.to_le_bytes());
    raw.extend_from_slice(&6u32.to_le_bytes());
    raw.push(0); // seq varint
    raw.push(9); // timestamp varint
    raw.extend_from_slice(body);
    let crc = edgeflow_telemetry::CRC32.checksum(&raw);
    raw.extend_from_slice(&crc.to_le_bytes());
    let mut out = cobs::encode_vec(&raw);
    out.push(0);
    out
}

#[test]
fn newer_minors_and_unknown_kinds_are_read_unknown_majors_rejected() {
    let p = Prediction {
        class: 2,
        score: 0.5,
        latency_us: 77,
    };
    let mut body = postcard::to_stdvec(&p).expect("body");
    body.extend_from_slice(&[0x05, 0xAA, 0x01]); // fields a future minor appended
    let mut s = hand_frame(1, 7, 2, &body);
    s.extend(hand_frame(1, 7, 200, &[1, 2, 3])); // a kind a future minor added
    s.extend(hand_frame(2, 0, 2, &body)); // a future major
    let (ev, d) = decode_all(&s);
    let fs = frames(&ev);
    assert_eq!(fs.len(), 2);
    assert_eq!(fs[0].body, Body::Prediction(p));
    assert_eq!(fs[0].header.minor, 7);
    assert_eq!(fs[1].header.kind, FrameKind::Unknown(200));
    assert_eq!(fs[1].body, Body::Unknown(vec![1, 2, 3]));
    assert_eq!(d.stats().unknown_kinds, 1);
    assert_eq!(d.stats().unsupported_version, 1);
    assert!(ev.iter().any(|e| matches!(e, Event::Error(e)
        if e.kind == DecodeErrorKind::Frame(FrameError::UnsupportedMajor { major: 2, minor: 0 }))));
    // A frame whose CRC matches but whose body is not a Prediction is malformed, not a panic.
    let (_, d) = decode_all(&hand_frame(1, 0, 2, &[0xFF]));
    assert_eq!(d.stats().malformed, 1);
}

#[test]
fn parse_frame_never_panics_on_short_or_random_input() {
    let mut rng = Rng(5);
    for len in 0..300 {
        let b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = parse_frame(&b);
        let mut d = Decoder::new();
        let _ = d.push(&b);
        let _ = d.finish();
    }
    assert_eq!(parse_frame(&[1, 0]), Err(FrameError::TooShort { len: 2 }));
}

#[test]
fn sample_blocks_round_trip_and_bad_ones_are_malformed() {
    let values: Vec<f32> = (0..MAX_BLOCK_VALUES as u32 / 6 * 6)
        .map(|i| (i as f32 * 0.37).sin() * 9.81)
        .collect();
    let mut em = Emitter::new(7, 8);
    let mut buf = vec![0u8; 2048];
    let mut stream = Vec::new();
    for (k, chunk) in values.chunks(60).enumerate() {
        let b = SampleBlock {
            first: (k * 60) as u32,
            axes: 6,
            samples: chunk,
        };
        let n = em.frame(k as u64, &b, &mut buf).expect("block");
        stream.extend_from_slice(&buf[..n]);
    }
    // A whole command's worth fits one frame.
    let full = SampleBlock {
        first: 0,
        axes: 6,
        samples: &values,
    };
    let n = em.frame(99, &full, &mut buf).expect("full block");
    stream.extend_from_slice(&buf[..n]);
    let (ev, d) = decode_all(&stream);
    let fs = frames(&ev);
    let mut got = Vec::new();
    for f in &fs[..fs.len() - 1] {
        assert_eq!(f.header.kind, FrameKind::Samples);
        match &f.body {
            Body::Samples(s) => {
                assert_eq!((s.first as usize, s.axes), (got.len(), 6));
                got.extend_from_slice(&s.samples);
            }
            b => panic!("not samples: {b:?}"),
        }
    }
    assert_eq!(got, values);
    assert_eq!(
        fs.last().map(|f| &f.body),
        Some(&Body::Samples(Samples {
            first: 0,
            axes: 6,
            samples: values.clone()
        }))
    );
    assert_eq!(d.stats().unknown_kinds, 0);
    // axes 0, a count not a multiple of axes, and a declared length over the limit are
    // malformed, not panics or huge allocations.
    let body = |first: u32, axes: u16, n: u32, vals: &[f32]| {
        let mut b = postcard::to_stdvec(&(first, axes, n)).expect("head");
        for v in vals {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b
    };
    for b in [
        body(0, 0, 2, &[1.0, 2.0]),
        body(0, 3, 2, &[1.0, 2.0]),
        body(0, 1, u32::MAX, &[1.0]),
        body(0, 1, MAX_BLOCK_VALUES as u32 + 1, &[1.0]),
        body(0, 1, 3, &[1.0]),
    ] {
        let (_, d) = decode_all(&hand_frame(1, 2, 5, &b));
        assert_eq!(d.stats().malformed, 1, "{b:?}");
    }
    let (ev, _) = decode_all(&hand_frame(1, 2, 5, &body(4, 2, 2, &[1.5, -2.5])));
    assert_eq!(
        frames(&ev)[0].body,
        Body::Samples(Samples {
            first: 4,
            axes: 2,
            samples: vec![1.5, -2.5]
        })
    );
}

#[test]
fn defmt_log_frames_round_trip_and_overlong_ones_are_malformed() {
    let mut em = Emitter::new(9, 0xABCD);
    let mut buf = [0u8; 256];
    let raw = [3u8, 0, 7, 1, 2, 3];
    let n = em
        .frame(10, &edgeflow_telemetry::DefmtLog { frame: &raw }, &mut buf)
        .expect("encode");
    let (ev, d) = decode_all(&buf[..n]);
    let fs = frames(&ev);
    assert_eq!(fs.len(), 1);
    assert_eq!(fs[0].header.kind, FrameKind::Defmt);
    assert_eq!(fs[0].header.minor, FORMAT_MINOR);
    assert_eq!(fs[0].body, Body::Defmt(raw.to_vec()));
    assert_eq!(d.stats().unknown_kinds, 0);
    // A body declaring more than DEFMT_LEN bytes is rejected before anything is allocated.
    let mut body = postcard::to_stdvec(&(edgeflow_telemetry::DEFMT_LEN as u32 + 1)).expect("len");
    body.extend(std::iter::repeat_n(0u8, edgeflow_telemetry::DEFMT_LEN + 1));
    let (ev, d) = decode_all(&hand_frame(1, 3, 6, &body));
    assert!(frames(&ev).is_empty());
    assert_eq!(d.stats().malformed, 1);
    // Kind 6 is the defmt kind (a 1.2 reader sees it as Unknown(6) and skips it).
    assert_eq!(FrameKind::from_u8(6), FrameKind::Defmt);
}

/// A baseline with a frame-layout trailer: one feature, the newest of 4 frames of 2 values (index 7; the
/// earlier frames at 5, 3, 1). Edges -0.5, 0.5, 1.5 over 4 bins: value v lands in bin v+1.
fn framed_baseline() -> Vec<u8> {
    OwnedBaseline {
        bins: 4,
        feature_index: vec![7],
        edges: vec![-0.5, 0.5, 1.5],
        counts: vec![1; 4],
        ranges: vec![0.0, 2.0],
        train_count: 4,
        class_prior: vec![0.5, 0.5],
        score_edges: vec![0.5],
        score_counts: vec![1, 1],
        score_accuracy: vec![],
        score_kind: Default::default(),
        frame_layout: Some(edgeflow_format::baseline::FrameLayout {
            frames: 4,
            frame_stride: 2,
        }),
    }
    .to_bytes()
    .expect("valid framed baseline")
}

#[test]
fn framed_summaries_count_each_new_frame_once() {
    let bb = framed_baseline();
    let base = MonitoringBaseline::parse(&bb).expect("baseline");
    let mut store = vec![0u32; SummaryAccumulator::words_needed(&base)];
    let mut acc = SummaryAccumulator::new(base, &mut store, 0).expect("acc");
    let hist = |acc: &SummaryAccumulator<'_, '_>| -> Vec<u32> {
        (0..4)
            .map(|b| acc.feature_count(0, b).expect("bin"))
            .collect()
    };
    // Frames oldest first hold the values 0, 1, 2, 3 (at indices 1, 3, 5, 7; 3 is out of
    // range but still binned, in the last bin).
    let x = [9.0, 0.0, 9.0, 1.0, 9.0, 2.0, 9.0, 3.0];
    // After a reset (or at start) every frame of the window is new: all 4 counted.
    acc.record_frames(&x, 4, 0, 0.9);
    assert_eq!(hist(&acc), vec![0, 1, 1, 2]);
    // A steady stream: one new frame per inference, the newest (value 3, bin 3).
    acc.record_frames(&x, 1, 0, 0.9);
    assert_eq!(hist(&acc), vec![0, 1, 1, 3]);
    // More new frames than the window holds (a hop longer than the window): clamped to 4;
    // 0 new frames is counted as 1 (the newest), as `record` does.
    acc.record_frames(&x, 9, 1, 0.1);
    assert_eq!(hist(&acc), vec![0, 2, 2, 5]);
    acc.record_frames(&x, 0, 1, 0.1);
    acc.record(&x, 1, 0.1);
    assert_eq!(hist(&acc), vec![0, 2, 2, 7]);
    assert_eq!(
        acc.inferences(),
        5,
        "one inference per call, whatever the frames"
    );
    // Two new frames: values 2 and 3 (both in the last bin).
    acc.reset(0);
    acc.record_frames(&x, 2, 0, 0.9);
    assert_eq!(hist(&acc), vec![0, 0, 0, 2]);
    // The out-of-range count follows the frames (only value 3 is above max 2).
    let mut em = Emitter::new(1, 2);
    let mut buf = vec![0u8; 256];
    let n = em.summary(1, &acc, &mut buf).expect("summary");
    let (ev, _) = decode_all(&buf[..n]);
    match &frames(&ev)[0].body {
        Body::Summary(s) => {
            assert_eq!((s.inferences, s.out_of_range[0], s.nan[0]), (1, 1, 0));
            assert_eq!(s.classes, vec![1, 0]);
        }
        b => panic!("not a summary: {b:?}"),
    }
    acc.reset(0);
    acc.record_frames(&x[..6], 4, 0, 0.9); // the newest frame (index 7) is missing: NaN
    assert_eq!(hist(&acc), vec![0, 1, 1, 1]);
    // A version-2 baseline (no layout) counts one frame whatever `new_frames` says.
    let b2 = baseline_bytes();
    let base2 = MonitoringBaseline::parse(&b2).expect("v1");
    let mut store2 = vec![0u32; SummaryAccumulator::words_needed(&base2)];
    let mut a2 = SummaryAccumulator::new(base2, &mut store2, 0).expect("acc");
    a2.record_frames(&[0.0; 6], 5, 0, 0.5);
    let total: u32 = (0..4).map(|b| a2.feature_count(0, b).expect("bin")).sum();
    assert_eq!(total, 1);
}

#[test]
fn frame_and_command_crcs_are_crc32_iso_hdlc_as_the_crc_crate_computes_it() {
    // The encoder feeds `edgeflow_format::Crc32` byte by byte as postcard writes; the last
    // four raw bytes must be the `crc` crate's CRC-32 (`edgeflow_telemetry::CRC32`) of the
    // rest, for frames of every size class.
    let crc = edgeflow_telemetry::CRC32;
    assert_eq!(crc.checksum(b"123456789"), 0xCBF4_3926); // the catalogue's check value
    let mut em = Emitter::new(7, 9);
    let mut buf = [0u8; 512];
    let p = Prediction {
        class: 1,
        score: 0.25,
        latency_us: 99,
    };
    let frames = [
        em.frame(1, &hello(), &mut buf).map(|n| buf[..n].to_vec()),
        em.frame(2, &p, &mut buf).map(|n| buf[..n].to_vec()),
    ];
    for f in frames {
        let f = f.expect("encode");
        let raw = cobs::decode_vec(&f[..f.len() - 1]).expect("cobs");
        let (data, stored) = raw.split_at(raw.len() - 4);
        assert_eq!(
            u32::from_le_bytes(stored.try_into().unwrap()),
            crc.checksum(data)
        );
    }
    let c = edgeflow_telemetry::command::Command::UpdateBegin { len: 5, crc: 6 };
    let mut out = vec![0u8; edgeflow_telemetry::command::MAX_ENCODED];
    let n = c.encode(&mut out).expect("encode");
    let raw = cobs::decode_vec(&out[..n - 1]).expect("cobs");
    let (data, stored) = raw.split_at(raw.len() - 4);
    assert_eq!(
        u32::from_le_bytes(stored.try_into().unwrap()),
        crc.checksum(data)
    );
}
