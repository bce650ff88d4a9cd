//! Unit tests: framing, validation errors, kernels against direct `f64` formulas, the
//! pipeline paths (stream, branches, stacking, text, image), encodings.

extern crate std;

use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

use crate::host::{self, Sample};
use crate::kernels;
use crate::*;

/// Deterministic pseudo-random numbers in [-1, 1).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn below(&mut self, n: usize) -> usize {
        ((self.next() + 1.0) * 0.5 * n as f32) as usize % n.max(1)
    }
}

fn spec(text: &str) -> host::Spec {
    host::from_toml(text, "<test>").unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> String {
    match host::from_toml(text, "<test>") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    host::as_f32(bytes)
}

fn run_signal(p: &Pipeline<'_>, x: &[f32]) -> Vec<Vec<f32>> {
    host::run(p, &Sample::Signal(x.to_vec()))
        .expect("run")
        .iter()
        .map(|o| f32s(o))
        .collect()
}

// ---------------------------------------------------------------- framing

#[test]
fn framer_matches_direct_framing_for_any_chunking() {
    let mut rng = Rng(7);
    for &(axes, window, stride) in &[(1, 8, 3), (3, 5, 5), (2, 4, 7), (1, 1, 1), (4, 16, 1)] {
        let steps = 60;
        let data: Vec<f32> = (0..steps * axes).map(|i| i as f32).collect();
        // Expected windows: start at s = stride*k + (window - stride)... every window ends
        // at time step window-1 + k*stride.
        let mut expected = Vec::new();
        let mut end = window;
        while end <= steps {
            let start = end - window;
            let mut w = vec![0.0; axes * window];
            for a in 0..axes {
                for t in 0..window {
                    w[a * window + t] = data[(start + t) * axes + a];
                }
            }
            expected.push(w);
            end += stride;
        }
        let mut ring = vec![0.0; axes * window];
        let mut f = Framer::new(&mut ring, axes, window, stride).expect("framer");
        let mut got = Vec::new();
        let mut rest: &[f32] = &data;
        while !rest.is_empty() {
            let chunk = 1 + rng.below(9);
            let mut piece = &rest[..chunk.min(rest.len())];
            rest = &rest[piece.len()..];
            while !piece.is_empty() {
                let p = f.push(piece);
                piece = &piece[p.consumed..];
                if p.ready {
                    let mut w = vec![0.0; axes * window];
                    f.take_window(&mut w).expect("window");
                    got.push(w);
                }
            }
        }
        assert_eq!(got, expected, "axes {axes} window {window} stride {stride}");
    }
}

#[test]
fn framer_errors() {
    let mut small = [0.0f32; 5];
    assert_eq!(
        Framer::new(&mut small, 2, 3, 1).expect_err("small"),
        Error::BufferTooSmall { needed: 6, got: 5 }
    );
    let e = Framer::new(&mut small, 1, 3, 0).expect_err("zero stride");
    assert!(e.to_string().contains("`stride`"), "{e}");
    let mut ring = [0.0f32; 4];
    let mut f = Framer::new(&mut ring, 1, 4, 4).expect("ok");
    assert_eq!(f.take_window(&mut [0.0; 4]), Err(Error::NoWindow));
    assert!(f.push(&[1.0; 4]).ready);
    assert_eq!(
        f.push(&[1.0]).consumed,
        0,
        "nothing consumed while a window waits"
    );
    assert!(matches!(
        f.take_window(&mut [0.0; 3]),
        Err(Error::Length { .. })
    ));
}

// ---------------------------------------------------------------- validation

const AUDIO_HEAD: &str = r#"
[input.signal]
axes = 1
rate_hz = 16000.0
window = 512
stride = 320
"#;

#[test]
fn validation_names_the_bad_parameter() {
    let cases: &[(&str, &str)] = &[
        (
            "[input.signal]\naxes = 1\nrate_hz = 100.0\nwindow = 8\nstride = 0\n",
            "input: `stride` must be at least 1",
        ),
        (
            "[input.signal]\naxes = 0\nrate_hz = 100.0\nwindow = 8\nstride = 1\n",
            "`axes`",
        ),
        (
            "[[blocks]]\nspectrum = { n_fft = 500 }\n",
            "blocks[0] (spectrum): `n_fft` must be a power of two",
        ),
        (
            "[[blocks]]\nspectrum = { n_fft = 256 }\n",
            "blocks[0] (spectrum): `n_fft` is shorter than the window",
        ),
        (
            "[[blocks]]\nspectrum = { n_fft = 8192 }\n",
            "`n_fft` is 8192, at most 4096",
        ),
        (
            "[[blocks]]\nspectrum = { n_fft = 512, power = true }\n[[blocks]]\nmel = { bands = 300, fmax = 8000.0 }\n",
            "blocks[1] (mel): `bands` is more mel bands than the spectrum has FFT bins",
        ),
        (
            "[[blocks]]\nspectrum = { n_fft = 512, power = true }\n[[blocks]]\nmel = { bands = 40, fmax = 9000.0 }\n",
            "`fmax` is above the Nyquist",
        ),
        (
            "[[blocks]]\nmel = { bands = 40, fmax = 8000.0 }\n",
            "blocks[0] (mel): `input` must follow a `spectrum` block",
        ),
        (
            "[[blocks]]\nzscore = { mean = [1.0, 2.0], std = [1.0, 1.0] }\n",
            "`mean` must have one value, or one per channel",
        ),
        (
            "[[blocks]]\nzscore = { mean = [1.0], std = [0.0] }\n",
            "`std` must not contain 0",
        ),
        ("[[blocks]]\niir = {}\n", "`sos` must hold 6 coefficients"),
        (
            "[[blocks]]\ndct = { coefficients = 600 }\n",
            "`coefficients` must be between 1",
        ),
        (
            "[[blocks]]\nlog = { floor = 0.0 }\n",
            "`floor` must be a positive",
        ),
        (
            "[[blocks]]\ncrop = { x = 0, y = 0, width = 1, height = 1 }\n",
            "image blocks need an image input",
        ),
        (
            "[[stream]]\nstats = { stats = [\"mean\"] }\n",
            "stream[0] (stats)",
        ),
        (
            "[[branches]]\nblocks = [{ window = { kind = \"hann\" } }, { spectrum = { n_fft = 128 } }]\n",
            "branches[0].blocks[1] (spectrum): `n_fft` is shorter",
        ),
        (
            "[output]\nquantize = { scale = 0.0, zero_point = 0 }\n",
            "output: `quantize.scale`",
        ),
        ("[output]\nframes = 0\n", "output: `frames` must be at least 1"),
        ("[output]\nframes = 4\nhop = 5\n", "`hop` must not exceed"),
        (
            "[[blocks]]\niir = { design = { kind = \"lowpass\", order = 2, cutoff_hz = 9000.0 } }\n",
            "`cutoff_hz`",
        ),
    ];
    for (body, want) in cases {
        let text = if body.starts_with("[input") {
            body.to_string()
        } else {
            std::format!("{AUDIO_HEAD}{body}")
        };
        let e = err(&text);
        assert!(e.contains(want), "for\n{text}\nwanted {want:?} in {e:?}");
    }
    // Non-signal inputs.
    let e = err("[input.vector]\nlen = 4\n[output]\nframes = 2\n");
    assert!(e.contains("stacking frames needs a signal input"), "{e}");
    let e = err("[input.vector]\nlen = 4\n[[blocks]]\nspectrum = { n_fft = 4 }\n[[blocks]]\nmel = { bands = 2, fmax = 1.0 }\n");
    assert!(e.contains("needs a signal input"), "{e}");
    let e = err("[input.text]\nmax_tokens = 4\n[[blocks]]\none_hot = { depth = 3 }\n");
    assert!(e.contains("starts with a `vocabulary` or `hash`"), "{e}");
    let e =
        err("[input.text]\nmax_tokens = 4\n[[blocks]]\nvocabulary = { tokens = [\"a\", \"a\"] }\n");
    assert!(e.contains("appears twice"), "{e}");
    let e = err("[input.image]\nwidth = 4\nheight = 4\nchannels = 3\n[[blocks]]\ncrop = { x = 2, y = 0, width = 3, height = 2 }\n");
    assert!(
        e.contains("blocks[0] (crop): `x` crop runs past the right edge"),
        "{e}"
    );
    let e = err("[input.image]\nwidth = 4\nheight = 4\nchannels = 1\n[[blocks]]\ngrayscale = {}\n");
    assert!(e.contains("grayscale needs 3 channels"), "{e}");
    let e = err("[input.image]\nwidth = 4\nheight = 4\nchannels = 3\n[[blocks]]\nscale = { scale = 2.0 }\n[[blocks]]\nresize = { width = 2, height = 2 }\n");
    assert!(e.contains("before per-pixel blocks"), "{e}");
    let e = err("[input.signal]\naxes = 1\nrate_hz = 1.0\nwindow = 4\nstride = 1\nbogus = 3\n");
    assert!(e.contains("bogus"), "unknown fields are rejected: {e}");
}

#[test]
fn workspace_too_small_names_the_size() {
    let s = spec(&std::format!(
        "{AUDIO_HEAD}[[blocks]]\nwindow = {{ kind = \"hann\" }}\n"
    ));
    let p = Pipeline::new(s).expect("valid");
    let mut ws = vec![0.0; p.workspace_len() - 1];
    let e = Runtime::new(&p, &mut ws).err().expect("too small");
    assert_eq!(
        e,
        Error::WorkspaceTooSmall {
            needed: p.workspace_len(),
            got: p.workspace_len() - 1
        }
    );
    assert!(e.to_string().contains("needs"), "{e}");
}

#[test]
fn decode_errors_never_panic() {
    let s = spec(&std::format!(
        "{AUDIO_HEAD}[[blocks]]\nwindow = {{ kind = \"hann\" }}\n[[blocks]]\nspectrum = {{ n_fft = 512, power = true }}\n[[blocks]]\nmel = {{ bands = 40, fmax = 8000.0 }}\n"
    ));
    let bytes = host::to_bytes(&s).expect("bytes");
    assert!(Pipeline::from_bytes(&bytes).is_ok());
    for cut in 0..bytes.len() {
        let _ = Pipeline::from_bytes(&bytes[..cut]);
    }
    let mut rng = Rng(3);
    for _ in 0..2000 {
        let mut b = bytes.clone();
        let i = rng.below(b.len());
        b[i] = (rng.next() * 128.0) as i8 as u8;
        if let Ok(p) = Pipeline::from_bytes(&b) {
            // A valid mutation must still run.
            if p.workspace_len() < 1 << 20 {
                let x: Vec<f32> = (0..2000).map(|_| rng.next()).collect();
                let _ = host::run(&p, &Sample::Signal(x));
            }
        };
    }
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(
        Pipeline::from_bytes(&long).err(),
        Some(Error::TrailingBytes)
    );
}

// ---------------------------------------------------------------- kernels

fn close(a: f32, b: f64, rel: f64, abs: f64) -> bool {
    ((a as f64) - b).abs() <= abs + rel * b.abs()
}

#[test]
fn stats_match_direct_formulas() {
    let mut rng = Rng(11);
    let x: Vec<f32> = (0..200).map(|_| 3.0 + 2.0 * rng.next()).collect();
    let all = [
        Stat::Mean,
        Stat::Min,
        Stat::Max,
        Stat::Rms,
        Stat::Std,
        Stat::Skewness,
        Stat::Kurtosis,
        Stat::ZeroCrossingRate,
        Stat::PeakToPeak,
    ];
    let mut out = [0.0f32; 9];
    kernels::stats(&x, &mut out, x.len(), &all);
    let n = x.len() as f64;
    let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let mean = xd.iter().sum::<f64>() / n;
    let m = |k: i32| xd.iter().map(|v| (v - mean).powi(k)).sum::<f64>() / n;
    let min = xd.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = xd.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let want = [
        mean,
        min,
        max,
        (xd.iter().map(|v| v * v).sum::<f64>() / n).sqrt(),
        m(2).sqrt(),
        m(3) / m(2).powf(1.5),
        m(4) / (m(2) * m(2)) - 3.0,
        0.0,
        max - min,
    ];
    for i in 0..9 {
        assert!(
            close(out[i], want[i], 1e-5, 1e-5),
            "{:?}: {} vs {}",
            all[i],
            out[i],
            want[i]
        );
    }
    let z = [1.0f32, -1.0, -2.0, 0.0, 3.0];
    let mut o = [0.0f32];
    kernels::stats(&z, &mut o, 5, &[Stat::ZeroCrossingRate]);
    assert_eq!(o[0], 2.0 / 4.0); // 1 -> -1 and -2 -> 0 (zero counts as positive)
                                 // Constant rows: no NaN.
    kernels::stats(&[2.0; 8], &mut o, 8, &[Stat::Skewness]);
    assert_eq!(o[0], 0.0);
}

#[test]
fn fft_matches_direct_dft() {
    let mut rng = Rng(5);
    for &n in &[4usize, 8, 64, 512, 4096] {
        let x: Vec<f32> = (0..n).map(|_| rng.next()).collect();
        let mut scratch = vec![0.0; n];
        let mut out = vec![0.0; n / 2 + 1];
        kernels::spectrum(&x, &mut out, n, n, true, &mut scratch);
        for k in [0, 1, n / 4, n / 2 - 1, n / 2] {
            let (mut re, mut im) = (0.0f64, 0.0f64);
            for (t, &v) in x.iter().enumerate() {
                let ph = -2.0 * std::f64::consts::PI * (k * t) as f64 / n as f64;
                re += v as f64 * ph.cos();
                im += v as f64 * ph.sin();
            }
            let p = re * re + im * im;
            assert!(
                close(out[k], p, 1e-4, 1e-3 * n as f64 / 64.0),
                "n {n} bin {k}: {} vs {p}",
                out[k]
            );
        }
    }
    assert!(kernels::rfft(&mut [0.0; 12]).is_none());
}

#[test]
fn windows_and_dct_match_formulas() {
    let mut w = [0.0f32; 8];
    kernels::init_window(&mut w, WindowKind::Hann, true);
    assert_eq!(w[0], 0.0);
    assert_eq!(w[4], 1.0);
    assert!(close(w[2], 0.5, 0.0, 1e-7));
    kernels::init_window(&mut w, WindowKind::Hamming, false);
    assert!(close(w[0], 0.08, 0.0, 1e-7) && close(w[7], 0.08, 0.0, 1e-7));
    // A full orthonormal DCT matrix is orthogonal.
    let n = 16;
    let mut t = vec![0.0f32; n * n];
    kernels::init_dct(&mut t, n, n, 0.0);
    for i in 0..n {
        for j in 0..n {
            let dot: f32 = (0..n).map(|k| t[i * n + k] * t[j * n + k]).sum();
            assert!(
                close(dot, if i == j { 1.0 } else { 0.0 }, 0.0, 1e-5),
                "{i},{j}: {dot}"
            );
        }
    }
}

#[test]
fn mel_filters_are_triangles_between_edges() {
    for scale in [MelScale::Slaney, MelScale::Htk] {
        let (bands, n_fft) = (10, 256);
        let bins = n_fft / 2 + 1;
        let mut t = vec![0.0f32; kernels::mel_table_len(bands, bins)];
        kernels::init_mel(
            &mut t,
            bands,
            n_fft,
            8000.0,
            0.0,
            4000.0,
            scale,
            MelNorm::None,
        );
        // Each band peaks near 1 and the bands overlap: a flat spectrum gives positive
        // energies, and with unnormalised triangles every interior bin's weights sum to 1.
        let flat = vec![1.0f32; bins];
        let mut e = vec![0.0f32; bands];
        kernels::mel(&flat, &mut e, bins, bands, &t);
        assert!(e.iter().all(|&v| v > 0.0), "{scale:?}: {e:?}");
        let mut sum = vec![0.0f32; bins];
        let mut off = 2 * bands;
        for b in 0..bands {
            let (start, len) = (t[2 * b] as usize, t[2 * b + 1] as usize);
            for j in 0..len {
                sum[start + j] += t[off + j];
                assert!(t[off + j] > 0.0 && t[off + j] <= 1.0);
            }
            off += len;
        }
        // Between the first band's peak and the last band's peak, the weights sum to 1.
        for (k, &s) in sum.iter().enumerate().take(100).skip(20) {
            assert!(close(s, 1.0, 0.0, 1e-5), "{scale:?} bin {k}: {s}");
        }
    }
}

#[test]
fn quantize_rounds_half_away_and_saturates() {
    assert_eq!(kernels::quantize(0.25, 0.5, 0), 1); // 0.5 -> 1
    assert_eq!(kernels::quantize(-0.25, 0.5, 0), -1); // -0.5 -> -1
    assert_eq!(kernels::quantize(1000.0, 0.5, 3), 127);
    assert_eq!(kernels::quantize(-1000.0, 0.5, 3), -128);
    assert_eq!(kernels::quantize(f32::NAN, 0.5, 3), 3);
    assert_eq!(kernels::quantize(f32::INFINITY, 1.0, 0), 127);
}

#[test]
fn categorical_kernels() {
    let b = F32s::from(vec![0.0f32, 1.0, 10.0]);
    let mut out = [0.0f32; 5];
    kernels::bucketize(&[-1.0, 0.0, 0.5, 10.0, 99.0], &mut out, &b);
    assert_eq!(out, [0.0, 1.0, 1.0, 3.0, 3.0]);
    let mut oh = [9.0f32; 6];
    kernels::one_hot(&[1.0, 5.0], &mut oh, 2, 3, Reduce::None);
    assert_eq!(oh, [0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    let mut bag = [0.0f32; 3];
    kernels::one_hot(&[1.0, 1.0, 2.0, -1.0], &mut bag, 4, 3, Reduce::Sum);
    assert_eq!(bag, [0.0, 2.0, 1.0]);
    kernels::one_hot(&[1.0, 1.0, 0.5], &mut bag, 3, 3, Reduce::Max);
    assert_eq!(bag, [0.0, 1.0, 0.0]);
    assert_eq!(kernels::fnv1a64(0, "a"), kernels::fnv1a64(0, "a"));
    assert_ne!(kernels::fnv1a64(0, "a"), kernels::fnv1a64(1, "a"));
}

// ---------------------------------------------------------------- pipelines

#[test]
fn stream_blocks_carry_state_across_windows() {
    // Pre-emphasis and a Butterworth filter in the stream equal filtering the whole
    // signal first, then framing.
    let mut rng = Rng(9);
    let x: Vec<f32> = (0..400).map(|_| rng.next()).collect();
    let s = spec(
        "[input.signal]\naxes = 1\nrate_hz = 100.0\nwindow = 50\nstride = 30\n\
         [[stream]]\npre_emphasis = { coef = 0.9 }\n\
         [[stream]]\niir = { design = { kind = \"lowpass\", order = 3, cutoff_hz = 10.0 } }\n",
    );
    let p = Pipeline::new(s.clone()).expect("valid");
    let got = run_signal(&p, &x);
    // Reference: same kernels over the whole signal.
    let mut pre = vec![0.0; x.len()];
    kernels::pre_emphasis(&x, &mut pre, x.len(), 0.9);
    let Block::Iir { sos, .. } = &s.stream[1] else {
        panic!()
    };
    let sos: Vec<f32> = sos.iter().collect();
    let mut filt = vec![0.0; x.len()];
    let mut st = vec![0.0; sos.len() / 3];
    kernels::iir(&pre, &mut filt, x.len(), &sos, &mut st);
    assert_eq!(got.len(), (400 - 50) / 30 + 1);
    for (k, w) in got.iter().enumerate() {
        assert_eq!(w[..], filt[k * 30..k * 30 + 50], "window {k}");
    }
}

#[test]
fn butterworth_response() {
    for kind in [FilterKind::Lowpass, FilterKind::Highpass] {
        for order in 1..=6 {
            let d = Butterworth {
                kind,
                order,
                cutoff_hz: 12.0,
            };
            let sos = host::butterworth(&d, 100.0).expect("design");
            let h = |f: f64| {
                let w = 2.0 * std::f64::consts::PI * f / 100.0;
                let mut g = 1.0f64;
                for c in sos.chunks(6) {
                    let c: Vec<f64> = c.iter().map(|&v| v as f64).collect();
                    let ev = |a: &[f64]| {
                        let re = a[0] + a[1] * (-w).cos() + a[2] * (-2.0 * w).cos();
                        let im = a[1] * (-w).sin() + a[2] * (-2.0 * w).sin();
                        (re * re + im * im).sqrt()
                    };
                    g *= ev(&c[0..3]) / ev(&c[3..6]);
                }
                g
            };
            let (pass, stop) = match kind {
                FilterKind::Lowpass => (0.0, 50.0),
                FilterKind::Highpass => (50.0, 0.0),
            };
            assert!(
                (h(pass) - 1.0).abs() < 1e-4,
                "{kind:?} {order}: pass {}",
                h(pass)
            );
            assert!(h(stop) < 1e-4, "{kind:?} {order}: stop {}", h(stop));
            assert!(
                (h(12.0) - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-4,
                "{kind:?} {order}: cutoff {}",
                h(12.0)
            );
        }
    }
}

#[test]
fn branches_concatenate_and_frames_stack() {
    let s = spec(
        "[input.signal]\naxes = 2\nrate_hz = 50.0\nwindow = 4\nstride = 2\n\
         [[branches]]\nblocks = [{ stats = { stats = [\"mean\", \"max\"] } }]\n\
         [[branches]]\nblocks = [{ scale = { scale = 2.0 } }]\n\
         [[post]]\nscale = { scale = 1.0, offset = 1.0 }\n\
         [output]\nframes = 3\nhop = 1\n",
    );
    let p = Pipeline::new(s).expect("valid");
    assert_eq!(p.features_per_frame(), 4 + 8);
    assert_eq!(p.output_shape(), [3, 12, 0]);
    // Axis 0 counts 0,1,2..., axis 1 is 100 + that.
    let x: Vec<f32> = (0..12).flat_map(|t| [t as f32, 100.0 + t as f32]).collect();
    let out = run_signal(&p, &x);
    // Windows end at t = 3, 5, 7, 9, 11: outputs once 3 are stacked, then every window.
    assert_eq!(out.len(), 3);
    let frame = |start: usize| -> Vec<f32> {
        let a: Vec<f32> = (start..start + 4).map(|t| t as f32).collect();
        let b: Vec<f32> = a.iter().map(|v| v + 100.0).collect();
        let mut f = vec![
            a.iter().sum::<f32>() / 4.0,
            a[3],
            b.iter().sum::<f32>() / 4.0,
            b[3],
        ];
        f.extend(a.iter().chain(b.iter()).map(|v| v * 2.0));
        f.iter().map(|v| v + 1.0).collect()
    };
    for (k, o) in out.iter().enumerate() {
        let want: Vec<f32> = (0..3).flat_map(|j| frame(2 * (k + j))).collect();
        assert_eq!(o, &want, "output {k}");
    }
}

#[test]
fn postcard_and_toml_roundtrips_give_identical_features() {
    let text = std::format!(
        "{AUDIO_HEAD}[[stream]]\nscale = {{ scale = 3.0517578125e-05 }}\n[[stream]]\npre_emphasis = {{ coef = 0.97 }}\n\
         [[blocks]]\nwindow = {{ kind = \"hann\" }}\n[[blocks]]\nspectrum = {{ n_fft = 512, power = true }}\n\
         [[blocks]]\nmel = {{ bands = 40, fmin = 20.0, fmax = 8000.0, scale = \"htk\", norm = \"none\" }}\n\
         [[blocks]]\nlog = {{ base = \"db\" }}\n[[blocks]]\ndct = {{ coefficients = 10, lifter = 22.0 }}\n\
         [output]\nframes = 4\nquantize = {{ scale = 0.5, zero_point = -10 }}\n"
    );
    let s = spec(&text);
    let bytes = host::to_bytes(&s).expect("postcard");
    let from_bytes = Pipeline::from_bytes(&bytes).expect("decodes");
    let again = spec(&host::to_toml(&s).expect("toml"));
    assert_eq!(again, s);
    let p = Pipeline::new(s).expect("valid");
    let mut rng = Rng(1);
    let x: Vec<f32> = (0..4000).map(|_| 8000.0 * rng.next()).collect();
    let a = host::run(&p, &Sample::Signal(x.clone())).expect("run");
    let b = host::run(&from_bytes, &Sample::Signal(x)).expect("run");
    // 11 windows, 4 frames per output, no overlap: 2 outputs of 4 x 10 int8.
    assert_eq!(a.len(), 2);
    assert_eq!(a, b);
    assert_eq!(a[0].len(), 40);
}

#[test]
fn run_many_equals_run() {
    let s = spec("[input.vector]\nlen = 3\n[[blocks]]\nbucketize = { boundaries = [0.0, 1.0] }\n[[blocks]]\none_hot = { depth = 3 }\n");
    let p = Pipeline::new(s).expect("valid");
    let inputs: Vec<Sample> = (0..20)
        .map(|i| Sample::Vector(vec![i as f32 * 0.1 - 0.5, 0.5, 2.0]))
        .collect();
    let many = host::run_many(&p, &inputs).expect("many");
    for (i, x) in inputs.iter().enumerate() {
        assert_eq!(many[i], host::run(&p, x).expect("one"));
    }
    assert_eq!(
        f32s(&many[0][0]),
        [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    );
}

#[test]
fn text_vocabulary_hash_and_bag_of_words() {
    let s = spec(
        "[input.text]\nmax_tokens = 4\n[[blocks]]\nvocabulary = { tokens = [\"yes\", \"no\", \"up\"], oov_buckets = 1 }\n\
         [[blocks]]\none_hot = { depth = 4, reduce = \"sum\" }\n",
    );
    let p = Pipeline::new(s).expect("valid");
    let out = host::run(
        &p,
        &Sample::Text(vec!["up".into(), "no".into(), "what".into(), "up".into()]),
    )
    .expect("run");
    assert_eq!(f32s(&out[0]), [0.0, 1.0, 2.0, 1.0]);
    let s = spec("[input.text]\nmax_tokens = 2\n[[blocks]]\nhash = { buckets = 5, seed = 3 }\n");
    let p = Pipeline::new(s).expect("valid");
    let out = host::run(&p, &Sample::Text(vec!["hello".into()])).expect("run");
    let id = (kernels::fnv1a64(3, "hello") % 5) as f32;
    assert_eq!(f32s(&out[0]), [id, -1.0]);
    let mut ws = vec![0.0; p.workspace_len()];
    let mut rt = Runtime::new(&p, &mut ws).expect("rt");
    let mut o = vec![0u8; p.output_bytes()];
    assert!(matches!(
        rt.run_tokens(&["a", "b", "c"], &mut o),
        Err(Error::Length { .. })
    ));
    assert_eq!(
        rt.push(&[1.0]).err(),
        Some(Error::WrongInputKind { expected: "text" })
    );
}

#[test]
fn image_crop_resize_gray_normalise_quantize() {
    // 4x4 RGB image whose red channel is 10 * x + y.
    let (w, h) = (4usize, 4usize);
    let mut px = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            px[(y * w + x) * 3] = (10 * x + y) as u8;
            px[(y * w + x) * 3 + 1] = 100;
            px[(y * w + x) * 3 + 2] = 200;
        }
    }
    let head = "[input.image]\nwidth = 4\nheight = 4\nchannels = 3\n";
    // Crop 2x2 at (1, 1), no resize.
    let p = Pipeline::new(spec(&std::format!(
        "{head}[[blocks]]\ncrop = {{ x = 1, y = 1, width = 2, height = 2 }}\n"
    )))
    .expect("valid");
    assert_eq!(p.workspace_len(), 0);
    let o = f32s(&host::run(&p, &Sample::Image(px.clone())).expect("run")[0]);
    assert_eq!(
        o.iter().step_by(3).copied().collect::<Vec<_>>(),
        [11.0, 21.0, 12.0, 22.0]
    );
    // Nearest 4 -> 2 picks source 1 and 3 (floor((o + 0.5) * 2)).
    let p = Pipeline::new(spec(&std::format!(
        "{head}[[blocks]]\nresize = {{ width = 2, height = 2, method = \"nearest\" }}\n"
    )))
    .expect("valid");
    let o = f32s(&host::run(&p, &Sample::Image(px.clone())).expect("run")[0]);
    assert_eq!(
        o.iter().step_by(3).copied().collect::<Vec<_>>(),
        [11.0, 31.0, 13.0, 33.0]
    );
    // Bilinear 4 -> 2 averages 2x2 blocks (sample points at 0.5, 2.5).
    let p = Pipeline::new(spec(&std::format!(
        "{head}[[blocks]]\nresize = {{ width = 2, height = 2 }}\n"
    )))
    .expect("valid");
    let o = f32s(&host::run(&p, &Sample::Image(px.clone())).expect("run")[0]);
    assert_eq!(
        o.iter().step_by(3).copied().collect::<Vec<_>>(),
        [5.5, 25.5, 7.5, 27.5]
    );
    // Grayscale, z-score, quantize.
    let p = Pipeline::new(spec(&std::format!(
        "{head}[[blocks]]\ngrayscale = {{ weights = [1.0, 0.0, 0.0] }}\n[[blocks]]\nzscore = {{ mean = [10.0], std = [2.0] }}\n\
         [output]\nquantize = {{ scale = 0.5, zero_point = 1 }}\n"
    )))
    .expect("valid");
    assert_eq!(p.output_shape(), [4, 4, 1]);
    let o = host::as_i8(&host::run(&p, &Sample::Image(px)).expect("run")[0]);
    // Pixel (x=1, y=0): red 10 -> 0 -> q 1. Pixel (x=3, y=3): 33 -> 11.5 -> 23 + 1 = 24.
    assert_eq!((o[1], o[15]), (1, 24));
}

#[test]
fn signal_output_quantized_and_band_power() {
    // A 12.5 Hz sine at 100 Hz sampling (exactly bin 8 of 64): its power lands in the
    // 10..15 Hz band.
    let x: Vec<f32> = (0..64)
        .map(|t| libm::sinf(2.0 * core::f32::consts::PI * 12.5 * t as f32 / 100.0))
        .collect();
    let s = spec(
        "[input.signal]\naxes = 1\nrate_hz = 100.0\nwindow = 64\nstride = 64\n\
         [[blocks]]\nspectrum = { n_fft = 64 }\n[[blocks]]\nband_power = { edges_hz = [0.0, 10.0, 15.0, 50.1] }\n",
    );
    let p = Pipeline::new(s).expect("valid");
    let o = &run_signal(&p, &x)[0];
    assert!(o[1] > 1e6 * (o[0] + o[2]), "{o:?}");
    // Parseval: sum over the one-sided spectrum ~ n^2/4 for a unit sine at an exact bin.
    assert!((o[1] - 64.0 * 64.0 / 4.0).abs() < 1.0, "{o:?}");
}

// ---------------------------------------------------------------- precomputed tables

/// `Runtime::with_tables` with the host's tables gives the same bits as `Runtime::new`
/// (the KWS and IMU pipelines: window, mel, DCT, IIR tables).
#[test]
fn precomputed_tables_give_identical_features() {
    for text in [
        include_str!("../pipelines/kws_mfcc.toml"),
        include_str!("../pipelines/imu_features.toml"),
    ] {
        let mut s = spec(text);
        host::resolve(&mut s).expect("resolve");
        let p = Pipeline::new(s).expect("valid");
        let tables = host::tables(&p).expect("tables");
        assert_eq!(tables.len(), p.tables_len());
        assert!(!tables.is_empty());
        let bytes: Vec<u8> = tables.iter().flat_map(|v| v.to_le_bytes()).collect();
        let axes = match p.desc().input {
            Input::Signal { axes, .. } => axes as usize,
            _ => 1,
        };
        let mut rng = Rng(7);
        let x: Vec<f32> = (0..axes * 20000).map(|_| rng.next() * 3000.0).collect();
        let want = host::run(&p, &Sample::Signal(x.clone())).expect("run");
        let mut ws = vec![0.0; p.workspace_len()];
        let mut rt = Runtime::with_tables(&p, &mut ws, &bytes).expect("with_tables");
        let got = host::run_on(&mut rt, &Sample::Signal(x)).expect("run");
        assert!(!want.is_empty());
        assert_eq!(got, want);
    }
}

#[test]
fn precomputed_tables_errors_and_hostile_values() {
    let mut s = spec(include_str!("../pipelines/kws_mfcc.toml"));
    host::resolve(&mut s).expect("resolve");
    let p = Pipeline::new(s).expect("valid");
    let n = p.tables_len();
    let mut ws = vec![0.0; p.workspace_len()];
    assert_eq!(
        Runtime::with_tables(&p, &mut ws, &vec![0u8; 4 * n - 1]).err(),
        Some(Error::Length {
            what: "precomputed tables (bytes)",
            expected: 4 * n,
            got: 4 * n - 1
        })
    );
    let mut bytes = vec![0u8; 4 * n];
    bytes[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
    assert_eq!(
        Runtime::with_tables(&p, &mut ws, &bytes).err(),
        Some(Error::BadTable { index: 2 })
    );
    // Finite garbage (huge mel bin starts and lengths included) runs without a panic.
    let mut rng = Rng(11);
    for scale in [1.0f32, 1e3, 3e38] {
        let bytes: Vec<u8> = (0..n)
            .flat_map(|_| (rng.next() * scale).abs().to_le_bytes())
            .collect();
        let mut rt = Runtime::with_tables(&p, &mut ws, &bytes).expect("finite tables");
        let x: Vec<f32> = (0..2000).map(|_| rng.next()).collect();
        let _ = host::run_on(&mut rt, &Sample::Signal(x)).expect("runs");
    }
    let small = &mut vec![0.0; p.workspace_len() - 1][..];
    assert!(matches!(
        Runtime::with_tables(&p, small, &[]),
        Err(Error::WorkspaceTooSmall { .. })
    ));
}

/// The fused ring copy + window + FFT input (`window` then `spectrum` on one axis) gives the
/// same bits as the block-by-block path, forced here by an exact identity block in front
/// (`x * 1 + 0`), for every FFT size from zero-padded to exact and for ragged chunking.
#[test]
fn fused_window_spectrum_equals_block_by_block() {
    for (window, n_fft, stride) in [(512, 512, 320), (400, 512, 160), (64, 64, 17), (30, 32, 7)] {
        let tail = format!(
            "[[blocks]]\nwindow = {{ kind = \"hann\" }}\n\
             [[blocks]]\nspectrum = {{ n_fft = {n_fft}, power = true }}\n\
             [[blocks]]\nmel = {{ bands = 8, fmin = 20.0, fmax = 4000.0 }}\n\
             [[blocks]]\nlog = {{ base = \"db\", floor = 1e-10 }}\n\
             [[blocks]]\ndct = {{ coefficients = 5 }}\n"
        );
        let head = format!(
            "[input.signal]\naxes = 1\nrate_hz = 8000.0\nwindow = {window}\nstride = {stride}\n\
             [[stream]]\npre_emphasis = {{ coef = 0.97 }}\n"
        );
        let fused = Pipeline::new(spec(&format!("{head}{tail}"))).expect("fused");
        let plain = Pipeline::new(spec(&format!(
            "{head}[[blocks]]\nscale = {{ scale = 1.0, offset = 0.0 }}\n{tail}"
        )))
        .expect("plain");
        let mut rng = Rng(window as u64);
        let x: Vec<f32> = (0..window * 6).map(|_| rng.next() + 0.001).collect();
        let a = run_signal(&fused, &x);
        let b = run_signal(&plain, &x);
        assert!(!a.is_empty());
        let bits =
            |v: &Vec<Vec<f32>>| -> Vec<u32> { v.iter().flatten().map(|f| f.to_bits()).collect() };
        assert_eq!(bits(&a), bits(&b), "window {window}, n_fft {n_fft}");
    }
}

// ---------------------------------------------------------------- fixed-point front end

const FRONTEND: &str = "[input.signal]\naxes = 1\nrate_hz = 16000.0\nwindow = 480\nstride = 320\n[[blocks]]\n[blocks.audio_frontend]\nchannels = 40\npcan = true\n";

#[test]
fn frontend_validation_names_the_bad_option() {
    let with = |extra: &str| std::format!("{FRONTEND}{extra}\n");
    for (extra, expect) in [
        ("channels_x = 1", "channels_x"),
        ("upper_band_limit = 8000.0", "upper_band_limit"),
        ("lower_band_limit = -1.0", "lower_band_limit"),
        ("smoothing_bits = 17", "smoothing_bits"),
        ("even_smoothing = 1.5", "even_smoothing"),
        ("min_signal_remaining = -0.1", "min_signal_remaining"),
        ("pcan_offset = 0.0", "pcan_offset"),
        ("gain_bits = 40", "gain_bits"),
        ("scale_shift = 16", "scale_shift"),
        ("out_scale = 0", "out_scale"),
    ] {
        let e = err(&with(extra).replace(
            "channels = 40\n",
            if extra.starts_with("channels") {
                ""
            } else {
                "channels = 40\n"
            },
        ));
        assert!(e.contains(expect), "{extra}: {e}");
    }
    let e = err(&FRONTEND.replace("channels = 40", "channels = 65"));
    assert!(e.contains("channels"), "{e}");
    let e = err(&FRONTEND.replace("axes = 1", "axes = 2"));
    assert!(e.contains("one-axis"), "{e}");
    let e = err(&FRONTEND.replace("stride = 320", "stride = 481"));
    assert!(e.contains("stride"), "{e}");
    let e = err(&FRONTEND.replace("rate_hz = 16000.0", "rate_hz = 16000.5"));
    assert!(e.contains("integer"), "{e}");
    let e = err(&std::format!(
        "{}[[stream]]\nscale = {{ scale = 1.0 }}\n",
        FRONTEND.replace(
            "[[blocks]]",
            "[[stream]]\nscale = { scale = 2.0 }\n[[blocks]]"
        )
    ));
    assert!(e.contains("stream"), "{e}");
    // Only as the first block.
    let e = err("[input.signal]\naxes = 1\nrate_hz = 16000.0\nwindow = 480\nstride = 320\n[[blocks]]\nscale = { scale = 1.0 }\n[[blocks]]\n[blocks.audio_frontend]\n");
    assert!(e.contains("first"), "{e}");
}

#[test]
fn frontend_runs_after_postcard_and_any_byte_mutation() {
    let s = spec(FRONTEND);
    let bytes = host::to_bytes(&s).expect("bytes");
    let p = Pipeline::from_bytes(&bytes).expect("decodes");
    let x: Vec<f32> = (0..4000)
        .map(|i| ((i * 7919) % 2001) as f32 - 1000.0)
        .collect();
    let a = run_signal(&p, &x);
    let b = run_signal(&Pipeline::new(s).expect("valid"), &x);
    assert_eq!(a.len(), 12);
    assert_eq!(a, b);
    // Every frame has 40 integer features within u16.
    assert!(a
        .iter()
        .flatten()
        .all(|v| *v >= 0.0 && *v <= 65535.0 && v.fract() == 0.0));
    let mut rng = Rng(11);
    for _ in 0..500 {
        let mut b = bytes.clone();
        let i = rng.below(b.len());
        b[i] = (rng.next() * 128.0) as i8 as u8;
        if let Ok(p) = Pipeline::from_bytes(&b) {
            if p.workspace_len() < 1 << 20 {
                let _ = host::run(&p, &Sample::Signal(x.clone()));
            }
        };
    }
}

#[test]
fn frontend_tables_are_finite_and_silence_is_zero() {
    let s = spec(FRONTEND);
    let p = Pipeline::new(s).expect("valid");
    let tables = host::tables(&p).expect("tables");
    assert!(tables.iter().all(|v| v.is_finite()));
    // Silence gives zeros after noise reduction and log (log of 0 and 1 is 0).
    let out = run_signal(&p, &vec![0.0; 2000]);
    assert!(out.iter().flatten().all(|v| *v == 0.0));
}

/// Every pipeline file of the examples (`examples/*/features.toml`) and of the conformance
/// suites (`pipelines/`, the golden cases of `conformance/frontend/`), with inline ones for the list kinds no
/// file uses (vocabulary, min_max, bucketize).
fn every_pipeline() -> Vec<(String, host::Spec)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    let mut toml_in = |dir: std::path::PathBuf, only: Option<&str>| {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for e in entries {
            let p = e.expect("directory entry").path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if only.map_or(name.ends_with(".toml"), |o| name == o) {
                files.push(p);
            }
        }
    };
    for e in std::fs::read_dir(root.join("examples")).expect("examples/") {
        toml_in(e.expect("directory entry").path(), Some("features.toml"));
    }
    toml_in(root.join("crates/edgeflow-dsp/pipelines"), None);
    toml_in(root.join("conformance/frontend/goldens"), None);
    toml_in(
        root.join("conformance/frontend/micro_speech"),
        Some("pipeline.toml"),
    );
    // A golden case's pipeline has its input beside it (`micro_speech_scores.toml` holds
    // scores, not a pipeline).
    files.retain(|f| {
        !f.to_string_lossy().contains("goldens/") || f.with_extension("in.i16").exists()
    });
    files.sort();
    // Each directory contributes (a glob that found nothing would test nothing).
    for dir in ["examples/", "pipelines/", "goldens/", "micro_speech/"] {
        let n = files
            .iter()
            .filter(|f| f.to_string_lossy().contains(dir))
            .count();
        assert!(n > 0, "no pipeline file under {dir}");
    }
    let mut out: Vec<(String, host::Spec)> = files
        .iter()
        .map(|p| {
            let s = host::load(p).unwrap_or_else(|e| panic!("{e}"));
            (p.display().to_string(), s)
        })
        .collect();
    out.push((
        "inline text".into(),
        spec("[input.text]\nmax_tokens = 4\n[[blocks]]\nvocabulary = { tokens = [\"yes\", \"no\", \"up\"], oov_buckets = 2 }\n[[blocks]]\none_hot = { depth = 5, reduce = \"sum\" }\n"),
    ));
    out.push((
        "inline vector".into(),
        spec("[input.vector]\nlen = 3\n[[blocks]]\nmin_max = { min = [-1.0], max = [4.5] }\n[[blocks]]\nbucketize = { boundaries = [0.25, 0.5] }\n[[post]]\nzscore = { mean = [0.5], std = [2.0] }\n"),
    ));
    out
}

#[test]
fn an_owned_description_equals_the_borrowed_one_and_encodes_to_the_same_bytes() {
    for (name, s) in every_pipeline() {
        let bytes = host::to_bytes(&s).expect("to_bytes");
        // The device's reading: every list borrows `bytes`.
        let borrowed = Pipeline::from_bytes(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let owned: PipelineDesc<'static> = borrowed.desc().clone().into_owned();
        assert_eq!(&owned, borrowed.desc(), "{name}");
        assert_eq!(owned, s, "{name}: as read from TOML");
        assert_eq!(host::to_bytes(&owned).expect("to_bytes"), bytes, "{name}");
        assert_eq!(
            host::to_toml(&owned).expect("to_toml"),
            host::to_toml(borrowed.desc()).expect("to_toml"),
            "{name}"
        );
        drop(borrowed);
        drop(bytes);
        // Valid on its own once the bytes are gone.
        Pipeline::new(owned).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn owned_lists_keep_malformed_bytes_as_they_are() {
    // A trailing partial value and undecodable front-end options stay the same bytes
    // (validation still sees and rejects them).
    let odd = [0u8, 0, 128, 63, 7];
    let f = F32s::from_le_bytes(&odd);
    let owned = f.clone().into_owned();
    assert!(owned.has_partial_value());
    assert_eq!(owned, f);
    assert_eq!(
        postcard::to_stdvec(&owned).expect("encode"),
        postcard::to_stdvec(&f).expect("encode")
    );
    let bad = [0xffu8, 0xff, 0xff];
    let b = Block::AudioFrontend(FrontendOpts::from_wire(&bad));
    let owned = b.clone().into_owned();
    assert_eq!(owned, b);
    assert_eq!(
        postcard::to_stdvec(&owned).expect("encode"),
        postcard::to_stdvec(&b).expect("encode")
    );
    // Tokens: the joined text comes back exactly, an empty vocabulary stays empty.
    for joined in ["a\nb\nc", "", "x"] {
        let t = Tokens::from_joined(joined);
        let owned = t.clone().into_owned();
        assert_eq!(owned, t);
        assert_eq!(owned.len(), t.len());
        assert_eq!(
            postcard::to_stdvec(&owned).expect("encode"),
            postcard::to_stdvec(&t).expect("encode")
        );
    }
}
