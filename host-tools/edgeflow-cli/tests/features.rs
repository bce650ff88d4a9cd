//! `edgeflow features`: inputs of every kind, the output .npy, and clear errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use npyz::WriterBuilder;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pipelines() -> PathBuf {
    root().join("crates/edgeflow-dsp/pipelines")
}

fn tmp(name: &str) -> PathBuf {
    let d = root().join("target/cli-features-test");
    std::fs::create_dir_all(&d).expect("tmp dir");
    d.join(name)
}

fn edgeflow(args: &[&Path]) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_edgeflow"))
        .arg("features")
        .args(args)
        .output()
        .expect("run edgeflow");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

fn npy_shape(p: &Path) -> (Vec<u64>, String) {
    let bytes = std::fs::read(p).expect("read npy");
    let f = npyz::NpyFile::new(&bytes[..]).expect("npy");
    let d = match f.dtype() {
        npyz::DType::Plain(t) => t.to_string(),
        other => format!("{other:?}"),
    };
    (f.shape().to_vec(), d)
}

fn write_wav(p: &Path, rate: u32, samples: &[i16]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(p, spec).expect("wav");
    for &s in samples {
        w.write_sample(s).expect("sample");
    }
    w.finalize().expect("finalize");
}

#[test]
fn wav_to_mfcc_npy() {
    let wav = tmp("tone.wav");
    let x: Vec<i16> = (0..16000)
        .map(|i| (8000.0 * (i as f32 * 0.05).sin()) as i16)
        .collect();
    write_wav(&wav, 16000, &x);
    let out = tmp("tone.npy");
    let (ok, msg) = edgeflow(&[
        Path::new("--pipeline"),
        &pipelines().join("kws_mfcc.toml"),
        &wav,
        Path::new("-o"),
        &out,
    ]);
    assert!(ok, "{msg}");
    assert_eq!(npy_shape(&out), (vec![1, 49, 10], "<f4".to_string()));
    // The same numbers as the library on the host.
    let spec = edgeflow_dsp::host::load(&pipelines().join("kws_mfcc.toml")).expect("spec");
    let p = edgeflow_dsp::Pipeline::new(spec).expect("pipeline");
    let want = edgeflow_dsp::host::run(
        &p,
        &edgeflow_dsp::host::Sample::Signal(x.iter().map(|&v| v as f32).collect()),
    )
    .expect("run");
    let bytes = std::fs::read(&out).expect("read");
    let f = npyz::NpyFile::new(&bytes[..]).expect("npy");
    let got: Vec<f32> = f.into_vec().expect("f32");
    assert_eq!(got, edgeflow_dsp::host::as_f32(&want[0]));

    let short = tmp("short.wav");
    write_wav(&short, 16000, &x[..8000]);
    let (ok, msg) = edgeflow(&[
        Path::new("--pipeline"),
        &pipelines().join("kws_mfcc.toml"),
        &short,
        Path::new("-o"),
        &out,
    ]);
    assert!(!ok && msg.contains("too short"), "{msg}");
    let slow = tmp("8k.wav");
    write_wav(&slow, 8000, &x);
    let (ok, msg) = edgeflow(&[
        Path::new("--pipeline"),
        &pipelines().join("kws_mfcc.toml"),
        &slow,
        Path::new("-o"),
        &out,
    ]);
    // Another rate is resampled to the pipeline's, and the output says so.
    assert!(
        ok && msg.contains("resampled from 8000 Hz to 16000 Hz (rubato"),
        "{msg}"
    );
    // 2 s at 16 kHz after resampling: MFCC tensors of 49 frames x 10 coefficients.
    assert_eq!(npy_shape(&out).0[1..], [49, 10]);
}

#[test]
fn csv_and_npy_inputs() {
    let csv = tmp("imu.csv");
    let mut text = String::from("ax,ay,az\n");
    for i in 0..300 {
        text += &format!(
            "{},{},{}\n",
            (i as f32 / 10.0).sin(),
            9.8,
            (i as f32 / 7.0).cos()
        );
    }
    std::fs::write(&csv, text).expect("csv");
    let out = tmp("imu.npy");
    let (ok, msg) = edgeflow(&[
        Path::new("--pipeline"),
        &pipelines().join("imu_features.toml"),
        &csv,
        Path::new("-o"),
        &out,
    ]);
    assert!(ok, "{msg}");
    assert_eq!(npy_shape(&out).0, vec![3, 237]);

    // A 96x96x3 uint8 image as .npy -> int8 tensor.
    let img = tmp("img.npy");
    {
        let f = std::fs::File::create(&img).expect("create");
        let mut w = npyz::WriteOptions::<u8>::new()
            .default_dtype()
            .shape(&[96, 96, 3])
            .writer(std::io::BufWriter::new(f))
            .begin_nd()
            .expect("npy");
        w.extend((0..96 * 96 * 3).map(|i| (i % 251) as u8))
            .expect("data");
        w.finish().expect("finish");
    }
    let out = tmp("img_out.npy");
    let (ok, msg) = edgeflow(&[
        Path::new("--pipeline"),
        &pipelines().join("image_int8.toml"),
        &img,
        Path::new("-o"),
        &out,
    ]);
    assert!(ok, "{msg}");
    assert_eq!(npy_shape(&out), (vec![96, 96, 3], "|i1".to_string()));
}

#[test]
fn bad_pipelines_and_inputs_are_named() {
    let bad = tmp("bad.toml");
    std::fs::write(
        &bad,
        "[input.signal]\naxes = 1\nrate_hz = 16000.0\nwindow = 400\nstride = 160\n\
         [[blocks]]\nspectrum = { n_fft = 500 }\n",
    )
    .expect("toml");
    let csv = tmp("x.csv");
    std::fs::write(&csv, "1\n2\nthree\n").expect("csv");
    let out = tmp("x.npy");
    let (ok, msg) = edgeflow(&[Path::new("--pipeline"), &bad, &csv, Path::new("-o"), &out]);
    assert!(
        !ok && msg.contains("blocks[0] (spectrum): `n_fft` must be a power of two"),
        "{msg}"
    );
    let (ok, msg) = edgeflow(&[
        Path::new("--pipeline"),
        &pipelines().join("imu_features.toml"),
        &csv,
        Path::new("-o"),
        &out,
    ]);
    assert!(
        !ok && msg.contains("x.csv: record 2 (line 3): column 0: \"three\" is not a number"),
        "{msg}"
    );
}

fn npy_i32(p: &Path) -> Vec<i32> {
    let bytes = std::fs::read(p).expect("read npy");
    npyz::NpyFile::new(&bytes[..])
        .expect("npy")
        .into_vec::<i32>()
        .expect("int32")
}

fn npy_f32(p: &Path) -> Vec<f32> {
    let bytes = std::fs::read(p).expect("read npy");
    npyz::NpyFile::new(&bytes[..])
        .expect("npy")
        .into_vec::<f32>()
        .expect("float32")
}

#[test]
fn labels_from_a_csv_label_column() {
    // A vector pipeline (x * 0.5 - 1) over 3 values; the label column sits in the middle.
    let pipe = tmp("vec3.toml");
    std::fs::write(
        &pipe,
        "[input.vector]\nlen = 3\n[[blocks]]\nscale = { scale = 0.5, offset = -1.0 }\n",
    )
    .expect("write");
    let csv = tmp("labelled.csv");
    std::fs::write(&csv, "a,b,class,c\n2,4,walk,6\n0,2,run,4\n8,8,walk,8\n").expect("csv");
    let out = tmp("labelled.npy");
    let (ok, msg) = edgeflow(&[
        Path::new("--pipeline"),
        &pipe,
        &csv,
        Path::new("--label"),
        Path::new("class"),
        Path::new("-o"),
        &out,
    ]);
    assert!(ok, "{msg}");
    assert_eq!(npy_shape(&out).0, vec![3, 3]);
    assert_eq!(
        npy_f32(&out),
        vec![0.0, 1.0, 2.0, -1.0, 0.0, 1.0, 3.0, 3.0, 3.0]
    );
    // Classes in sorted order: run = 0, walk = 1.
    assert_eq!(npy_i32(&tmp("labelled.labels.npy")), vec![1, 0, 1]);
    assert_eq!(
        std::fs::read_to_string(tmp("labelled.classes.txt")).expect("classes"),
        "run\nwalk\n"
    );
    assert!(msg.contains("walk") && msg.contains("66.7%"), "{msg}");

    // Integer labels by column index in a headerless file sort numerically (2 < 10).
    let csv = tmp("numeric_labels.csv");
    std::fs::write(&csv, "10,1,1,1\n2,1,1,1\n10,2,2,2\n").expect("csv");
    let out = tmp("numeric_labels.npy");
    let (ok, msg) = edgeflow(&[
        Path::new("--pipeline"),
        &pipe,
        &csv,
        Path::new("--label"),
        Path::new("0"),
        Path::new("-o"),
        &out,
    ]);
    assert!(ok, "{msg}");
    assert_eq!(npy_i32(&tmp("numeric_labels.labels.npy")), vec![1, 0, 1]);
    assert_eq!(
        std::fs::read_to_string(tmp("numeric_labels.classes.txt")).expect("classes"),
        "2\n10\n"
    );

    // An unknown column is refused, naming the file and the columns there are.
    let (ok, msg) = edgeflow(&[
        Path::new("--pipeline"),
        &pipe,
        &tmp("labelled.csv"),
        Path::new("--label"),
        Path::new("target"),
        Path::new("-o"),
        &tmp("x.npy"),
    ]);
    assert!(!ok, "{msg}");
    assert!(
        msg.contains("labelled.csv") && msg.contains("\"target\"") && msg.contains("\"class\""),
        "{msg}"
    );
    // A signal pipeline cannot take a per-row label: refused by name.
    let (ok, msg) = edgeflow(&[
        Path::new("--pipeline"),
        &pipelines().join("imu_features.toml"),
        &tmp("labelled.csv"),
        Path::new("--label"),
        Path::new("class"),
        Path::new("-o"),
        &tmp("x.npy"),
    ]);
    assert!(!ok, "{msg}");
    assert!(
        msg.contains("vector pipeline") && msg.contains("signal"),
        "{msg}"
    );
}

#[test]
fn a_one_hz_header_is_refused_not_upsampled_into_minutes_of_audio() {
    // The cli_features fuzz target's finding (kept in fuzz/regressions/): a 431-byte WAV
    // whose header says 1 Hz made `edgeflow features` upsample ~130 samples 16,000x into
    // 130 s of 16 kHz audio (1.5-2.7 s and 300 MB per file). The fuzz input's first byte
    // picks the file type and pipeline; the rest is the WAV file.
    let raw = std::fs::read(root().join("fuzz/regressions/cli_features/wav_1hz_upsampled_16000x"))
        .expect("regression input");
    let wav = tmp("one_hz.wav");
    std::fs::write(&wav, &raw[1..]).expect("write");
    let out = tmp("one_hz.npy");
    let _ = std::fs::remove_file(&out);
    let (ok, msg) = edgeflow(&[
        Path::new("--pipeline"),
        &pipelines().join("kws_mfcc.toml"),
        &wav,
        Path::new("-o"),
        &out,
    ]);
    assert!(!ok, "{msg}");
    assert!(
        msg.contains("sampled at 1 Hz") && msg.contains("upsample more than 16x"),
        "{msg}"
    );
    assert!(!out.exists(), "no output is written");
}
