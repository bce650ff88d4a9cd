//! edgeflow-dsp against reference implementations: golden files made by
//! `conformance/dsp/make_goldens.py` (librosa, numpy, scipy, tf.image; versions pinned in
//! `conformance/dsp/requirements.txt`). No Python is needed here.
//!
//! Speech comes from Debian's `alsa-utils` (`/usr/share/sounds/alsa/Front_Center.wav`, a
//! recording of a human voice; `.ci/run` installs it). Without it the speech tests fail,
//! unless `EDGEFLOW_SKIP_SPEECH=1` is set explicitly.
//!
//! Each comparison states its tolerance as `|ours - ref| <= rel * scale + abs`, where
//! `scale` is the largest reference magnitude of the frame (row) compared, and prints the
//! largest error measured.

use std::path::{Path, PathBuf};

use edgeflow_dsp::host::{self, Sample};
use edgeflow_dsp::Pipeline;
use edgeflow_tests::root;

fn goldens() -> PathBuf {
    root().join("conformance/dsp/goldens")
}

/// A float32 or uint8 `.npy` as f32 values in C order, with its shape. Read through
/// edgeflow-data's `.npy` reader (the one every command uses), so a Fortran-order or
/// big-endian golden is read as the values it stores, not reinterpreted.
fn npy(name: &str) -> (Vec<f32>, Vec<usize>) {
    use edgeflow_data::sources::npy::{read_npy, TensorData};
    let p = goldens().join(name);
    let t = read_npy(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let v = match t.data {
        TensorData::U8(v) => v.into_iter().map(f32::from).collect(),
        TensorData::F32(v) => v,
        other => panic!("{name}: dtype {}", other.dtype_name()),
    };
    (v, t.shape)
}

fn pipeline(toml: &str) -> Pipeline<'static> {
    let spec = host::from_toml(toml, "<test>").unwrap_or_else(|e| panic!("{e}"));
    Pipeline::new(spec).unwrap_or_else(|e| panic!("{e}"))
}

fn pipeline_file(name: &str) -> Pipeline<'static> {
    let spec = host::load(&root().join("crates/edgeflow-dsp/pipelines").join(name))
        .unwrap_or_else(|e| panic!("{e}"));
    Pipeline::new(spec).unwrap_or_else(|e| panic!("{e}"))
}

fn outputs(p: &Pipeline<'_>, s: Sample) -> Vec<Vec<f32>> {
    host::run(p, &s)
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .map(|o| host::as_f32(o))
        .collect()
}

/// Compares row by row (`row` values each); returns the largest error relative to each
/// row's largest reference magnitude, and the largest absolute error.
fn check(what: &str, ours: &[f32], reference: &[f32], row: usize, rel: f64, abs: f64) {
    assert_eq!(ours.len(), reference.len(), "{what}: lengths");
    let (mut worst_rel, mut worst_abs) = (0.0f64, 0.0f64);
    for (o, r) in ours.chunks(row).zip(reference.chunks(row)) {
        let scale = r.iter().fold(0.0f64, |m, &v| m.max((v as f64).abs()));
        for (i, (&a, &b)) in o.iter().zip(r).enumerate() {
            let e = (a as f64 - b as f64).abs();
            worst_abs = worst_abs.max(e);
            if scale > 0.0 {
                worst_rel = worst_rel.max(e / scale);
            }
            assert!(
                e <= rel * scale + abs,
                "{what}: element {i} of a row: ours {a} vs reference {b} (error {e:e}, tolerance {rel:e} * {scale:e} + {abs:e})"
            );
        }
    }
    eprintln!("{what}: max error {worst_abs:.3e} absolute, {worst_rel:.3e} of the row maximum");
}

/// 1 s of 16 kHz int16 speech, decimated from the alsa-utils recording as the golden
/// script does; `None` (skip) only when EDGEFLOW_SKIP_SPEECH=1.
fn speech() -> Option<Vec<i16>> {
    let path = Path::new("/usr/share/sounds/alsa/Front_Center.wav");
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            if std::env::var("EDGEFLOW_SKIP_SPEECH").as_deref() == Ok("1") {
                eprintln!("skipping: {}: {e} (EDGEFLOW_SKIP_SPEECH=1)", path.display());
                return None;
            }
            panic!(
                "{}: {e}; install Debian's alsa-utils or set EDGEFLOW_SKIP_SPEECH=1",
                path.display()
            );
        }
    };
    let meta = std::fs::read_to_string(goldens().join("speech.json")).expect("speech.json");
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&bytes);
    assert_eq!(
        json_int(&meta, "crc32"),
        crc as i64,
        "{} differs from the recording the goldens were made from (CRC {crc}); see speech.json",
        path.display()
    );
    // RIFF: find the `data` chunk (16-bit mono 48 kHz, checked by the CRC above).
    let mut i = 12;
    let data = loop {
        let id = &bytes[i..i + 4];
        let len = u32::from_le_bytes(bytes[i + 4..i + 8].try_into().expect("4")) as usize;
        if id == b"data" {
            break &bytes[i + 8..i + 8 + len];
        }
        i += 8 + len + (len & 1);
    };
    let x: Vec<i32> = data
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]) as i32)
        .collect();
    let y: Vec<i16> = (0..16000)
        .map(|n| (x[3 * n] + x[3 * n + 1] + x[3 * n + 2]).div_euclid(3) as i16)
        .collect();
    assert_eq!(
        json_int(&meta, "sum_int16"),
        y.iter().map(|&v| v as i64).sum::<i64>(),
        "decimated speech differs from the golden script's"
    );
    Some(y)
}

/// The integer value of `"key": N` in a small JSON text.
fn json_int(json: &str, key: &str) -> i64 {
    let pat = format!("\"{key}\":");
    let at = json.find(&pat).unwrap_or_else(|| panic!("{key} missing")) + pat.len();
    json[at..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit() && c != '-')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{key} is not an integer"))
}

fn audio(extra: &str) -> String {
    format!(
        "[input.signal]\naxes = 1\nrate_hz = 16000.0\nwindow = 512\nstride = 320\n\
         [[stream]]\nscale = {{ scale = 3.0517578125e-05 }}\n\
         [[blocks]]\nwindow = {{ kind = \"hann\" }}\n{extra}[output]\nframes = 49\n"
    )
}

fn pcm(y: &[i16]) -> Sample {
    Sample::Signal(y.iter().map(|&v| v as f32).collect())
}

#[test]
fn spectrogram_matches_librosa_stft() {
    let Some(y) = speech() else { return };
    let p = pipeline(&audio("[[blocks]]\nspectrum = { n_fft = 512 }\n"));
    let o = outputs(&p, pcm(&y));
    assert_eq!(o.len(), 1);
    let (r, shape) = npy("spectrogram.npy");
    assert_eq!(shape, [49, 257]);
    check("spectrogram |STFT| vs librosa", &o[0], &r, 257, 2e-5, 1e-6);
}

#[test]
fn mel_matches_librosa_slaney_and_htk() {
    let Some(y) = speech() else { return };
    let mel = |extra: &str| -> Vec<f32> {
        let p = pipeline(&audio(&format!(
            "[[blocks]]\nspectrum = {{ n_fft = 512, power = true }}\n[[blocks]]\nmel = {{ bands = 40, fmin = 20.0, fmax = 8000.0, {extra} }}\n"
        )));
        outputs(&p, pcm(&y)).remove(0)
    };
    let (r, _) = npy("mel_slaney.npy");
    check(
        "mel (Slaney) vs librosa",
        &mel("scale = \"slaney\""),
        &r,
        40,
        5e-5,
        1e-9,
    );
    let htk = mel("scale = \"htk\", norm = \"none\"");
    let (r, _) = npy("mel_htk.npy");
    check("mel (HTK) vs librosa htk=True", &htk, &r, 40, 5e-5, 1e-9);
    let (r, _) = npy("mel_htk_numpy.npy");
    check(
        "mel (HTK) vs numpy HTK filterbank",
        &htk,
        &r,
        40,
        5e-5,
        1e-9,
    );
}

#[test]
fn mfcc_matches_librosa() {
    let Some(y) = speech() else { return };
    for (lifter, golden) in [(0.0, "mfcc.npy"), (22.0, "mfcc_lifter.npy")] {
        let p = pipeline(&audio(&format!(
            "[[blocks]]\nspectrum = {{ n_fft = 512, power = true }}\n\
             [[blocks]]\nmel = {{ bands = 40, fmin = 20.0, fmax = 8000.0 }}\n\
             [[blocks]]\nlog = {{ base = \"db\", floor = 1e-10 }}\n\
             [[blocks]]\ndct = {{ coefficients = 13, lifter = {lifter:?} }}\n"
        )));
        let (r, _) = npy(golden);
        check(
            &format!("MFCC (lifter {lifter}) vs librosa"),
            &outputs(&p, pcm(&y))[0],
            &r,
            13,
            2e-5,
            2e-4,
        );
    }
}

#[test]
fn kws_pipeline_matches_librosa() {
    let Some(y) = speech() else { return };
    let p = pipeline_file("kws_mfcc.toml");
    assert_eq!(p.output_shape(), [49, 10, 0]);
    let o = outputs(&p, pcm(&y));
    assert_eq!(o.len(), 1);
    let (r, shape) = npy("kws_mfcc.npy");
    assert_eq!(shape, [49, 10]);
    check(
        "KWS pipeline (49 x 10 MFCC) vs librosa",
        &o[0],
        &r,
        10,
        2e-5,
        2e-4,
    );
}

fn imu() -> Vec<f32> {
    let (x, shape) = npy("imu_input.npy");
    assert_eq!(shape, [256, 3]);
    x
}

#[test]
fn stats_match_numpy_and_scipy() {
    let p = pipeline(
        "[input.signal]\naxes = 3\nrate_hz = 100.0\nwindow = 256\nstride = 256\n\
         [[blocks]]\nstats = { stats = [\"mean\", \"min\", \"max\", \"rms\", \"std\", \"skewness\", \"kurtosis\", \"zero_crossing_rate\", \"peak_to_peak\"] }\n",
    );
    let o = outputs(&p, Sample::Signal(imu()));
    let (r, _) = npy("stats.npy");
    // Per statistic: skewness and kurtosis divide by small central moments.
    for (i, (name, rel, abs)) in [
        ("mean", 1e-6, 1e-6),
        ("min", 0.0, 0.0),
        ("max", 0.0, 0.0),
        ("rms", 1e-6, 1e-7),
        ("std", 2e-6, 1e-6),
        ("skewness", 1e-4, 1e-4),
        ("kurtosis", 1e-4, 1e-4),
        ("zero_crossing_rate", 0.0, 0.0),
        ("peak_to_peak", 1e-7, 0.0),
    ]
    .into_iter()
    .enumerate()
    {
        let ours: Vec<f32> = (0..3).map(|a| o[0][a * 9 + i]).collect();
        let theirs: Vec<f32> = (0..3).map(|a| r[a * 9 + i]).collect();
        check(
            &format!("stats {name} vs numpy/scipy"),
            &ours,
            &theirs,
            1,
            rel,
            abs,
        );
    }
}

#[test]
fn butterworth_filters_match_scipy() {
    for (design, golden) in [
        (
            "kind = \"lowpass\", order = 4, cutoff_hz = 5.0",
            "iir_lowpass.npy",
        ),
        (
            "kind = \"highpass\", order = 2, cutoff_hz = 0.5",
            "iir_highpass.npy",
        ),
    ] {
        let p = pipeline(&format!(
            "[input.signal]\naxes = 3\nrate_hz = 100.0\nwindow = 256\nstride = 256\n\
             [[blocks]]\niir = {{ design = {{ {design} }} }}\n"
        ));
        let (r, _) = npy(golden);
        check(
            &format!("Butterworth {design} vs scipy butter + sosfilt"),
            &outputs(&p, Sample::Signal(imu()))[0],
            &r,
            256,
            2e-5,
            1e-6,
        );
    }
}

#[test]
fn fft_and_band_power_match_numpy() {
    let head = "[input.signal]\naxes = 3\nrate_hz = 100.0\nwindow = 128\nstride = 128\n\
                [[blocks]]\nwindow = { kind = \"hann\" }\n";
    let x = imu();
    let p = pipeline(&format!("{head}[[blocks]]\nspectrum = {{ n_fft = 128 }}\n"));
    let (r, _) = npy("fft_mag.npy");
    check(
        "FFT magnitude vs numpy rfft",
        &outputs(&p, Sample::Signal(x.clone()))[0],
        &r,
        65,
        2e-6,
        1e-7,
    );
    let p = pipeline(&format!(
        "{head}[[blocks]]\nspectrum = {{ n_fft = 128, power = true }}\n\
         [[blocks]]\nband_power = {{ edges_hz = [0.5, 2.0, 5.0, 10.0, 20.0, 50.0] }}\n"
    ));
    let (r, _) = npy("band_power.npy");
    check(
        "band power vs numpy",
        &outputs(&p, Sample::Signal(x))[0],
        &r,
        5,
        5e-6,
        1e-7,
    );
}

fn image() -> Vec<u8> {
    let (x, shape) = npy("image.npy");
    assert_eq!(shape, [30, 40, 3]);
    x.into_iter().map(|v| v as u8).collect()
}

#[test]
fn resize_crop_gray_match_tf_image() {
    let head = "[input.image]\nwidth = 40\nheight = 30\nchannels = 3\n";
    for (blocks, golden, row, abs) in [
        (
            "[[blocks]]\nresize = { width = 48, height = 48, method = \"bilinear\" }\n",
            "resize_bilinear.npy",
            48 * 3,
            2e-5,
        ),
        (
            "[[blocks]]\nresize = { width = 48, height = 48, method = \"nearest\" }\n",
            "resize_nearest.npy",
            48 * 3,
            0.0,
        ),
        (
            "[[blocks]]\ncrop = { x = 3, y = 2, width = 32, height = 24 }\n\
             [[blocks]]\nresize = { width = 13, height = 12 }\n",
            "resize_down.npy",
            13 * 3,
            2e-5,
        ),
        ("[[blocks]]\ngrayscale = {}\n", "gray.npy", 40, 2e-5),
    ] {
        let p = pipeline(&format!("{head}{blocks}"));
        let (r, _) = npy(golden);
        check(
            &format!("{golden} vs tf.image"),
            &outputs(&p, Sample::Image(image()))[0],
            &r,
            row,
            0.0,
            abs,
        );
    }
}
