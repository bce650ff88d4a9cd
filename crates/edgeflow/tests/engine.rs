//! The facade end to end on conformance-fixture models: samples / pixels / vectors in,
//! predictions out, equal to running the feature pipeline and the model separately.

use std::path::PathBuf;

use edgeflow::dsp::host::{self, Sample, Spec};
use edgeflow::host::attach_pipeline;
use edgeflow::{Engine, Error, Model, Prediction};

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../conformance/fixtures")
        .join(format!("{name}.tflite"));
    let tflite = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    edgeflow_compile::compile(&tflite, name)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .artifact
}

fn spec(text: &str) -> Spec {
    host::from_toml(text, "<test>").unwrap_or_else(|e| panic!("{e}"))
}

/// Runs features then the model separately; returns the arg-max prediction per output.
fn reference(artifact: &[u8], sample: &Sample) -> Vec<Prediction> {
    let m = Model::parse(artifact).expect("model");
    let feats = host::run(m.pipeline(), sample).expect("features");
    feats
        .iter()
        .map(|f| {
            let nn = m.nn();
            let mut arena = edgeflow_nn::HostArena::for_model(nn).expect("arena");
            let mut rt = edgeflow::nn::Runtime::new(nn, arena.as_mut_bytes()).expect("runtime");
            rt.input_mut(0).expect("input").copy_from_slice(f);
            rt.invoke().expect("invoke");
            let out = rt.output(0).expect("output");
            let def = nn.header().outputs[0];
            let vals: Vec<f32> = match def.quant {
                Some(q) if def.dtype == edgeflow_format::graph::DType::I8 => out
                    .iter()
                    .map(|&b| q.scale * ((b as i8 as i32 - q.zero_point) as f32))
                    .collect(),
                _ => host::as_f32(out),
            };
            let (class, score) =
                vals.iter()
                    .copied()
                    .enumerate()
                    .fold(
                        (0, f32::NEG_INFINITY),
                        |b, (i, v)| if v > b.1 { (i, v) } else { b },
                    );
            Prediction { class, score }
        })
        .collect()
}

fn engine_run(
    artifact: &[u8],
    f: impl FnOnce(&mut Engine<'_, '_, '_, '_>) -> Vec<Prediction>,
) -> Vec<Prediction> {
    let m = Model::parse(artifact).expect("model");
    let mut ws = vec![0.0f32; m.workspace_len()];
    let mut arena = edgeflow_nn::HostArena::for_model(m.nn()).expect("arena");
    let mut e = Engine::new(&m, &mut ws, arena.as_mut_bytes()).expect("engine");
    f(&mut e)
}

#[test]
fn signal_to_prediction_int8() {
    // fc_int8 takes 16 int8 values: 8 statistics of 2 axes.
    let a = attach_pipeline(
        &fixture("fc_int8"),
        &spec(
            "[input.signal]\naxes = 2\nrate_hz = 50.0\nwindow = 32\nstride = 16\n\
             [[blocks]]\nstats = { stats = [\"mean\", \"min\", \"max\", \"rms\", \"std\", \"skewness\", \"kurtosis\", \"peak_to_peak\"] }\n",
        ),
    )
    .expect("attach");
    let x: Vec<f32> = (0..400)
        .map(|i| ((i * 37 % 101) as f32 / 50.0 - 1.0) * if i % 2 == 0 { 1.0 } else { 0.3 })
        .collect();
    let got = engine_run(&a, |e| {
        let mut preds = Vec::new();
        for chunk in x.chunks(7) {
            e.push(chunk, |p| preds.push(p)).expect("push");
        }
        preds
    });
    let want = reference(&a, &Sample::Signal(x));
    assert_eq!(got.len(), (200 - 32) / 16 + 1);
    assert_eq!(got, want);
}

#[test]
fn image_to_prediction_int8() {
    // conv_same_s1_int8 takes a 7 x 9 x 3 image.
    let a = attach_pipeline(
        &fixture("conv_same_s1_int8"),
        &spec(
            "[input.image]\nwidth = 18\nheight = 14\nchannels = 3\n\
             [[blocks]]\nresize = { width = 9, height = 7 }\n\
             [[blocks]]\nzscore = { mean = [127.5], std = [64.0] }\n",
        ),
    )
    .expect("attach");
    let px: Vec<u8> = (0..18 * 14 * 3).map(|i| (i * 29 % 256) as u8).collect();
    let got = engine_run(&a, |e| vec![e.run_image(&px).expect("image")]);
    assert_eq!(got, reference(&a, &Sample::Image(px)));
}

#[test]
fn pushed_pixels_equal_run_image() {
    // An image pipeline fed as a stream of pixel values (what a device receives over its
    // link): two images in chunks of 11 values, a reset dropping a partial third; values
    // off the 8-bit grid are rounded and clamped exactly as run_image_values documents.
    let a = attach_pipeline(
        &fixture("conv_same_s1_int8"),
        &spec(
            "[input.image]\nwidth = 18\nheight = 14\nchannels = 3\n\
             [[blocks]]\nresize = { width = 9, height = 7 }\n\
             [[blocks]]\nzscore = { mean = [127.5], std = [64.0] }\n",
        ),
    )
    .expect("attach");
    let n = 18 * 14 * 3;
    let px1: Vec<u8> = (0..n).map(|i| (i * 29 % 256) as u8).collect();
    let px2: Vec<u8> = (0..n).map(|i| (i * 7 % 253) as u8).collect();
    let mut values: Vec<f32> = px1.iter().map(|&p| f32::from(p)).collect();
    // Off-grid values that round/clamp to px2's.
    values.extend(px2.iter().enumerate().map(|(i, &p)| match (i % 4, p) {
        (0, 0) => -3.0,
        (1, 255) => 300.0,
        (2, _) => f32::from(p) + 0.4,
        (3, p) if p > 0 => f32::from(p) - 0.5,
        _ => f32::from(p),
    }));
    let m = Model::parse(&a).expect("model");
    assert_eq!(m.workspace_len(), m.pipeline().workspace_len() + n);
    let got = engine_run(&a, |e| {
        let mut preds = Vec::new();
        e.push(&values[..100], |p| preds.push(p)).expect("partial");
        e.reset();
        for chunk in values.chunks(11) {
            e.push(chunk, |p| preds.push(p)).expect("push");
        }
        preds
    });
    let mut want = reference(&a, &Sample::Image(px1));
    want.extend(reference(&a, &Sample::Image(px2)));
    assert_eq!(got, want);
    // A workspace one word short is refused, naming the words needed.
    let mut ws = vec![0.0f32; m.workspace_len() - 1];
    let mut arena = edgeflow_nn::HostArena::for_model(m.nn()).expect("arena");
    assert!(matches!(
        Engine::new(&m, &mut ws, arena.as_mut_bytes()),
        Err(Error::Features(edgeflow::dsp::Error::WorkspaceTooSmall { needed, .. })) if needed == m.workspace_len()
    ));
}

#[test]
fn vector_to_prediction_f32() {
    let a = attach_pipeline(
        &fixture("fc_f32"),
        &spec("[input.vector]\nlen = 16\n[[blocks]]\nscale = { scale = 0.5, offset = -1.0 }\n"),
    )
    .expect("attach");
    let v: Vec<f32> = (0..16).map(|i| i as f32 / 4.0).collect();
    let got = engine_run(&a, |e| vec![e.run_vector(&v).expect("vector")]);
    assert_eq!(got, reference(&a, &Sample::Vector(v)));
}

#[test]
fn mismatches_are_reported() {
    let plain = fixture("fc_int8");
    assert_eq!(Model::parse(&plain).err(), Some(Error::NoPipeline));
    let e = attach_pipeline(&plain, &spec("[input.vector]\nlen = 15\n")).expect_err("15 != 16");
    assert!(e.to_string().contains("element count"), "{e}");
    // A float pipeline for an int8 model input: attach sets the quantization, so assemble
    // by hand to get the mismatch.
    let pipeline = host::to_bytes(&spec("[input.vector]\nlen = 16\n")).expect("bytes");
    let art = edgeflow_format::Artifact::parse(&plain).expect("artifact");
    let manual = edgeflow_format::write::assemble(&[
        (edgeflow_format::SectionKind::Graph, art.graph),
        (edgeflow_format::SectionKind::Weights, art.weights),
        (edgeflow_format::SectionKind::FeaturePipeline, &pipeline),
    ])
    .expect("assemble");
    assert_eq!(
        Model::parse(&manual).err(),
        Some(Error::Mismatch {
            what: "element type"
        })
    );
    let pipeline = host::to_bytes(&spec(
        "[input.vector]\nlen = 16\n[output]\nquantize = { scale = 1.0, zero_point = 0 }\n",
    ))
    .expect("bytes");
    let manual = edgeflow_format::write::assemble(&[
        (edgeflow_format::SectionKind::Graph, art.graph),
        (edgeflow_format::SectionKind::Weights, art.weights),
        (edgeflow_format::SectionKind::FeaturePipeline, &pipeline),
    ])
    .expect("assemble");
    let e = Model::parse(&manual).err().expect("quantization");
    assert_eq!(
        e,
        Error::Mismatch {
            what: "quantization"
        }
    );
    assert!(e.to_string().contains("quantization differs"), "{e}");
}

/// The artifact carries the pipeline's coefficient tables (PipelineTables section); the
/// engine starts from them and predicts exactly as when it designs them itself; tables
/// for another pipeline or of the wrong length are rejected at parse.
#[test]
fn precomputed_tables_section() {
    let a = attach_pipeline(
        &fixture("fc_int8"),
        &spec(
            "[input.signal]\naxes = 1\nrate_hz = 1000.0\nwindow = 32\nstride = 16\n\
             [[blocks]]\nwindow = { kind = \"hann\" }\n\
             [[blocks]]\nspectrum = { n_fft = 32, power = true }\n\
             [[blocks]]\nlog = { base = \"db\", floor = 1e-6 }\n\
             [[blocks]]\ndct = { coefficients = 16 }\n",
        ),
    )
    .expect("attach");
    let art = edgeflow_format::Artifact::parse(&a).expect("artifact");
    let pipeline = art.feature_pipeline.expect("pipeline");
    let tables = art
        .pipeline_tables
        .expect("attach_pipeline writes the tables");
    let m = Model::parse(&a).expect("model");
    assert_eq!(tables.len(), m.pipeline().tables_len());
    assert_eq!(tables.len(), 32 + 16 * 17);
    let without = edgeflow_format::write::assemble(&[
        (edgeflow_format::SectionKind::Graph, art.graph),
        (edgeflow_format::SectionKind::Weights, art.weights),
        (edgeflow_format::SectionKind::FeaturePipeline, pipeline),
    ])
    .expect("assemble");
    let x: Vec<f32> = (0..400)
        .map(|i| (i * 37 % 101) as f32 / 50.0 - 1.0)
        .collect();
    let run = |artifact: &[u8]| {
        engine_run(artifact, |e| {
            let mut preds = Vec::new();
            e.push(&x, |p| preds.push(p)).expect("push");
            preds
        })
    };
    let with = run(&a);
    assert_eq!(with.len(), (400 - 32) / 16 + 1);
    assert_eq!(with, run(&without));
    assert_eq!(with, reference(&a, &Sample::Signal(x.clone())));
    let values: Vec<f32> = tables.iter().collect();
    let assemble_with = |t: &[u8]| {
        edgeflow_format::write::assemble(&[
            (edgeflow_format::SectionKind::Graph, art.graph),
            (edgeflow_format::SectionKind::Weights, art.weights),
            (edgeflow_format::SectionKind::FeaturePipeline, pipeline),
            (edgeflow_format::SectionKind::PipelineTables, t),
        ])
        .expect("assemble")
    };
    let other = assemble_with(&edgeflow_format::tables::encode(b"another", &values));
    let e = Model::parse(&other)
        .err()
        .expect("tables of another pipeline");
    assert!(e.to_string().contains("another pipeline"), "{e}");
    let short = assemble_with(&edgeflow_format::tables::encode(pipeline, &values[1..]));
    assert_eq!(
        Model::parse(&short).err(),
        Some(Error::Mismatch {
            what: "pipeline tables length"
        })
    );
}

/// `model` with a monitoring baseline section whose score kind is `kind`.
fn with_score_kind(model: &[u8], kind: edgeflow::ScoreKind) -> Vec<u8> {
    let b = edgeflow_format::baseline::OwnedBaseline {
        bins: 2,
        feature_index: vec![0],
        edges: vec![0.0],
        counts: vec![1, 1],
        ranges: vec![-1.0, 1.0],
        train_count: 2,
        score_edges: vec![0.1],
        score_counts: vec![1, 1],
        score_kind: kind,
        ..Default::default()
    }
    .to_bytes()
    .expect("baseline");
    let (_, mut s) = edgeflow_compile::load::load(model).expect("load");
    s.monitoring_baseline = Some(b);
    edgeflow_compile::with_sections(model, &s).expect("sections")
}

#[test]
fn an_anomaly_model_scores_the_reconstruction_error() {
    // A model whose output is as long as its input stands in for an autoencoder (the
    // score's arithmetic does not depend on what the layers are): x + a constant, int8 and f32.
    for name in ["add_broadcast_int8", "add_broadcast_f32"] {
        let plain = fixture(name);
        let n = edgeflow_nn::Model::parse(&plain)
            .expect("model")
            .header()
            .inputs[0]
            .shape
            .num_elements()
            .expect("static shape");
        let a = attach_pipeline(
            &plain,
            &spec(&format!(
                "[input.vector]\nlen = {n}\n[[blocks]]\nscale = {{ scale = 0.25 }}\n"
            )),
        )
        .expect("attach");
        let mse = with_score_kind(&a, edgeflow::ScoreKind::ReconstructionMse);
        let top = with_score_kind(&a, edgeflow::ScoreKind::TopOutput);
        let v: Vec<f32> = (0..n).map(|i| ((i * 7 % 11) as f32) - 5.0).collect();

        // The reference: the features (the model input) and the output, dequantized, run
        // separately; the mean of the squared differences in element order.
        let m = Model::parse(&mse).expect("model");
        assert_eq!(m.score_kind(), edgeflow::ScoreKind::ReconstructionMse);
        let feats = host::run(m.pipeline(), &Sample::Vector(v.clone())).expect("features");
        let nn = m.nn();
        let mut arena = edgeflow_nn::HostArena::for_model(nn).expect("arena");
        let mut rt = edgeflow::nn::Runtime::new(nn, arena.as_mut_bytes()).expect("runtime");
        rt.input_mut(0).expect("input").copy_from_slice(&feats[0]);
        rt.invoke().expect("invoke");
        let real = |def: edgeflow_format::graph::TensorDef<'_>, b: &[u8]| -> Vec<f32> {
            match def.quant {
                Some(q) if def.dtype == edgeflow_format::graph::DType::I8 => b
                    .iter()
                    .map(|&x| q.scale * ((x as i8 as i32 - q.zero_point) as f32))
                    .collect(),
                _ => host::as_f32(b),
            }
        };
        let x = real(nn.header().inputs[0], &feats[0]);
        let y = real(nn.header().outputs[0], rt.output(0).expect("output"));
        let want: f32 = x
            .iter()
            .zip(&y)
            .map(|(a, b)| (b - a) * (b - a))
            .sum::<f32>()
            / n as f32;
        assert!(
            want > 0.0,
            "{name}: a reconstruction error of 0 tests nothing"
        );

        let got = engine_run(&mse, |e| vec![e.run_vector(&v).expect("vector")]);
        assert_eq!(
            got[0].score.to_bits(),
            want.to_bits(),
            "{name}: {} vs {want}",
            got[0].score
        );
        // The class is still the arg-max, and the top-output model reports its value.
        let plain_pred = engine_run(&top, |e| vec![e.run_vector(&v).expect("vector")]);
        assert_eq!(got[0].class, plain_pred[0].class, "{name}");
        assert_ne!(
            got[0].score.to_bits(),
            plain_pred[0].score.to_bits(),
            "{name}"
        );
        // The kept input costs n workspace words.
        let (wm, wt) = (
            Model::parse(&mse).expect("m").workspace_len(),
            Model::parse(&top).expect("t").workspace_len(),
        );
        assert_eq!(wm, wt + n, "{name}");
        // Too small a workspace is an error naming the words needed, not a panic.
        let m = Model::parse(&mse).expect("model");
        let mut ws = vec![0.0f32; wm - 1];
        let mut arena = edgeflow_nn::HostArena::for_model(m.nn()).expect("arena");
        assert!(Engine::new(&m, &mut ws, arena.as_mut_bytes()).is_err());
    }
    // A reconstruction must be as long as the input: fc_int8 maps 16 values to 5.
    let fc =
        attach_pipeline(&fixture("fc_int8"), &spec("[input.vector]\nlen = 16\n")).expect("attach");
    assert_eq!(
        Model::parse(&with_score_kind(
            &fc,
            edgeflow::ScoreKind::ReconstructionMse
        ))
        .err(),
        Some(Error::Mismatch {
            what: "reconstruction length"
        })
    );
}

#[test]
fn push_observed_frames_reports_the_frames_new_since_the_last_inference() {
    // fc_int8 takes 16 values: 4 stacked frames of (mean, max) of 2 axes, an output every
    // 2 new frames.
    let a = attach_pipeline(
        &fixture("fc_int8"),
        &spec(
            "[input.signal]\naxes = 2\nrate_hz = 50.0\nwindow = 8\nstride = 4\n\
             [[blocks]]\nstats = { stats = [\"mean\", \"max\"] }\n\
             [output]\nframes = 4\nhop = 2\n",
        ),
    )
    .expect("attach");
    let x: Vec<f32> = (0..2 * 60).map(|i| ((i * 13 % 17) as f32) - 8.0).collect();
    let m = Model::parse(&a).expect("model");
    let mut ws = vec![0.0f32; m.workspace_len()];
    let mut arena = edgeflow_nn::HostArena::for_model(m.nn()).expect("arena");
    let mut e = Engine::new(&m, &mut ws, arena.as_mut_bytes()).expect("engine");
    let run = |e: &mut Engine<'_, '_, '_, '_>| {
        let (mut new, mut preds) = (Vec::new(), Vec::new());
        e.push_observed_frames(&x, |_, n| new.push(n), |p| preds.push(p))
            .expect("push");
        assert_eq!(new.len(), preds.len(), "one report per inference");
        new
    };
    // 60 samples per axis, windows of 8 every 4: 14 frames; outputs after frames 4, 6, ..., 14.
    let first = run(&mut e);
    assert_eq!(
        first,
        vec![4, 2, 2, 2, 2, 2],
        "the whole window first, then the hop"
    );
    // Without a reset the stream continues: the hop only.
    let more = run(&mut e);
    assert!(more.iter().all(|&n| n == 2), "{more:?}");
    e.reset();
    assert_eq!(
        run(&mut e),
        first,
        "after a reset the whole window is new again"
    );
    // push_observed sees the same features as push_observed_frames.
    e.reset();
    let mut bytes = Vec::new();
    e.push_observed(&x, |f| bytes.push(f.to_vec()), |_| {})
        .expect("push");
    assert_eq!(bytes.len(), first.len());
}
