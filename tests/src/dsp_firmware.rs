//! Building the feature-pipeline firmware (`firmware/dsp-<board>`) with embedded cases,
//! running it under QEMU, and computing the same outputs on the host.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use edgeflow_compile::board::Board;
use edgeflow_dsp::{Pipeline, Runtime};

use crate::root;

/// How a case's input is fed: the firmware harness's own type (`edgeflow_dsp::Feed`).
pub use edgeflow_dsp::Feed;

/// One feature-pipeline case for the firmware.
#[derive(Clone, Debug)]
pub struct DspCase {
    /// Name (no whitespace).
    pub name: String,
    /// The postcard pipeline description.
    pub pipeline: Vec<u8>,
    /// Input bytes.
    pub input: Vec<u8>,
    /// How to feed them.
    pub feed: Feed,
    /// Values per push (signals: at most 64, `Pcm` at most 512, as the firmware).
    pub chunk: usize,
}

/// What the firmware reported for one case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DspReport {
    /// All output tensors' bytes, concatenated in order, or the error message.
    pub output: Result<Vec<u8>, String>,
    /// Windows processed.
    pub windows: u64,
    /// Output tensors produced.
    pub outputs: u64,
    /// SysTick ticks to decode the pipeline and build the runtime (tables).
    pub init_ticks: u64,
    /// Ticks to decode the pipeline and start from the host's precomputed tables
    /// (`Runtime::with_tables`); 0 for a pipeline without tables.
    pub init_tables_ticks: u64,
    /// Whether the tables the device designed equal the host's bit for bit.
    pub tables_same: bool,
    /// Ticks spent in `push` calls.
    pub push_ticks: u64,
    /// Ticks spent in `process` / `run_*` calls.
    pub process_ticks: u64,
    /// The fastest, median and slowest single `process` call, in ticks (signal cases;
    /// over the first 64 windows).
    pub process_spread: [u64; 3],
    /// Peak stack bytes during the case.
    pub stack: usize,
}

/// Whether the case's pipeline has coefficient tables (window, mel, DCT, IIR).
pub fn has_tables(case: &DspCase) -> bool {
    Pipeline::from_bytes(&case.pipeline).is_ok_and(|p| p.tables_len() > 0)
}

/// Runs a case on the host exactly as the firmware does (same chunking); returns all
/// output tensors' bytes concatenated.
pub fn run_on_host(case: &DspCase) -> Result<Vec<u8>, String> {
    let p = Pipeline::from_bytes(&case.pipeline).map_err(|e| e.to_string())?;
    let mut ws = vec![0.0f32; p.workspace_len()];
    let mut rt = Runtime::new(&p, &mut ws).map_err(|e| e.to_string())?;
    let mut out = vec![0u8; p.output_bytes()];
    let mut all = Vec::new();
    let e = |e: edgeflow_dsp::Error| e.to_string();
    match case.feed {
        Feed::F32 | Feed::I16 => {
            let width = if case.feed == Feed::F32 { 4 } else { 2 };
            let chunk = case.chunk.clamp(1, 64);
            for bytes in case.input.chunks(chunk * width) {
                let vals: Vec<f32> = bytes
                    .chunks_exact(width)
                    .map(|b| {
                        if width == 4 {
                            f32::from_le_bytes([b[0], b[1], b[2], b[3]])
                        } else {
                            i16::from_le_bytes([b[0], b[1]]) as f32
                        }
                    })
                    .collect();
                let mut v = &vals[..];
                while !v.is_empty() {
                    let r = rt.push(v).map_err(e)?;
                    v = &v[r.consumed..];
                    if r.ready && rt.process(&mut out).map_err(e)? {
                        all.extend_from_slice(&out);
                    }
                }
            }
        }
        Feed::Pcm => {
            // As the firmware: at most 512 samples per push.
            let chunk = case.chunk.clamp(1, 512);
            for bytes in case.input.chunks(chunk * 2) {
                let vals: Vec<i16> = bytes
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect();
                let mut v = &vals[..];
                while !v.is_empty() {
                    let r = rt.push_i16(v).map_err(e)?;
                    v = &v[r.consumed..];
                    if r.ready && rt.process(&mut out).map_err(e)? {
                        all.extend_from_slice(&out);
                    }
                }
            }
        }
        Feed::Vector => {
            let vals: Vec<f32> = case
                .input
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            rt.run_vector(&vals, &mut out).map_err(e)?;
            all.extend_from_slice(&out);
        }
        Feed::Text => {
            let text = String::from_utf8_lossy(&case.input).into_owned();
            let tokens: Vec<&str> = text.split('\n').filter(|t| !t.is_empty()).collect();
            rt.run_tokens(&tokens, &mut out).map_err(e)?;
            all.extend_from_slice(&out);
        }
        Feed::Image => {
            rt.run_image(&case.input, &mut out).map_err(e)?;
            all.extend_from_slice(&out);
        }
    }
    Ok(all)
}

/// Builds `firmware/dsp-<board>` with `cases` embedded (workspace and output buffers sized
/// for the largest case), runs it under QEMU and returns one report per case name.
pub fn run(
    board: &Board,
    cases: &[DspCase],
    timeout: Duration,
) -> Result<BTreeMap<String, DspReport>, String> {
    run_in(&root(), board, cases, timeout)
}

/// Like [`run`], with `firmware/dsp-<board>` built from the edgeflow source tree `source`
/// (case files under `source/target/edgeflow-dsp-firmware`).
pub fn run_in(
    source: &Path,
    board: &Board,
    cases: &[DspCase],
    timeout: Duration,
) -> Result<BTreeMap<String, DspReport>, String> {
    let work = source
        .join("target/edgeflow-dsp-firmware")
        .join(&board.name);
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let mut list = String::new();
    let (mut ws, mut out) = (16usize, 16usize);
    for c in cases {
        let p = Pipeline::from_bytes(&c.pipeline).map_err(|e| format!("{}: {e}", c.name))?;
        ws = ws.max(p.workspace_len());
        out = out.max(p.output_bytes());
        let pf = work.join(format!("{}.pipeline", c.name));
        let inf = work.join(format!("{}.input", c.name));
        crate::firmware::write_if_changed(&pf, &c.pipeline)?;
        crate::firmware::write_if_changed(&inf, &c.input)?;
        // The host-designed coefficient tables (as in the artifact's PipelineTables
        // section): the firmware times starting from them against designing them.
        let tables = edgeflow_dsp::host::tables(&p).map_err(|e| format!("{}: {e}", c.name))?;
        let tf = work.join(format!("{}.tables", c.name));
        let bytes: Vec<u8> = tables.iter().flat_map(|v| v.to_le_bytes()).collect();
        crate::firmware::write_if_changed(&tf, &bytes)?;
        list += &format!(
            "{}\t{}\t{}\t{:?}\t{}{}\n",
            c.name,
            pf.display(),
            inf.display(),
            c.feed,
            c.chunk,
            if bytes.is_empty() {
                String::new()
            } else {
                format!("\t{}", tf.display())
            }
        );
    }
    let list_path = work.join("cases.txt");
    crate::firmware::write_if_changed(&list_path, list.as_bytes())?;

    let app = source.join("firmware").join(format!("dsp-{}", board.name));
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(&app)
        .args(["build", "--release", "--quiet"])
        .env("EDGEFLOW_DSP_CASES", &list_path)
        .env("EDGEFLOW_DSP_WORKSPACE", ws.to_string())
        .env("EDGEFLOW_DSP_OUTPUT", out.to_string());
    for (k, _) in std::env::vars() {
        if k.starts_with("CARGO_") && k != "CARGO_HOME" || k == "RUSTFLAGS" || k == "RUSTC_WRAPPER"
        {
            cmd.env_remove(&k);
        }
    }
    let o = cmd.output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "feature firmware build failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    let elf = source
        .join("firmware/target")
        .join(&board.target)
        .join("release")
        .join(format!("edgeflow-dsp-fw-{}", board.name));
    let stdout = crate::firmware::run_qemu(board, &elf, timeout)?;
    parse(&stdout)
}

fn parse(stdout: &str) -> Result<BTreeMap<String, DspReport>, String> {
    let mut outs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut m = BTreeMap::new();
    for line in stdout.lines().filter(|l| l.starts_with("dsp ")) {
        let mut it = line.splitn(4, ' ');
        let (_, name, status, rest) = (
            it.next(),
            it.next().unwrap_or(""),
            it.next().unwrap_or(""),
            it.next().unwrap_or(""),
        );
        match status {
            "out" => {
                let buf = outs.entry(name.to_string()).or_default();
                for i in 0..rest.len() / 2 {
                    buf.push(
                        u8::from_str_radix(&rest[2 * i..2 * i + 2], 16)
                            .map_err(|_| format!("bad hex in {line}"))?,
                    );
                }
            }
            "ok" => {
                let mut r = DspReport {
                    output: Ok(outs.remove(name).unwrap_or_default()),
                    windows: 0,
                    outputs: 0,
                    init_ticks: 0,
                    init_tables_ticks: 0,
                    tables_same: false,
                    push_ticks: 0,
                    process_ticks: 0,
                    process_spread: [0; 3],
                    stack: 0,
                };
                for kv in rest.split(' ') {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    let n: u64 = v.parse().map_err(|_| format!("bad {k} in {line}"))?;
                    match k {
                        "windows" => r.windows = n,
                        "outputs" => r.outputs = n,
                        "init" => r.init_ticks = n,
                        "init_pre" => r.init_tables_ticks = n,
                        "tables_same" => r.tables_same = n == 1,
                        "push" => r.push_ticks = n,
                        "process" => r.process_ticks = n,
                        "pmin" => r.process_spread[0] = n,
                        "pmed" => r.process_spread[1] = n,
                        "pmax" => r.process_spread[2] = n,
                        "stack" => r.stack = n as usize,
                        _ => {}
                    }
                }
                m.insert(name.to_string(), r);
            }
            _ => {
                m.insert(
                    name.to_string(),
                    DspReport {
                        output: Err(rest.to_string()),
                        windows: 0,
                        outputs: 0,
                        init_ticks: 0,
                        init_tables_ticks: 0,
                        tables_same: false,
                        push_ticks: 0,
                        process_ticks: 0,
                        process_spread: [0; 3],
                        stack: 0,
                    },
                );
            }
        }
    }
    Ok(m)
}

/// Deterministic pseudo-random numbers in [-1, 1).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

fn spec(name: &str) -> edgeflow_dsp::host::Spec {
    let p = root().join("crates/edgeflow-dsp/pipelines").join(name);
    edgeflow_dsp::host::load(&p).unwrap_or_else(|e| panic!("{e}"))
}

fn spec_text(text: &str) -> edgeflow_dsp::host::Spec {
    edgeflow_dsp::host::from_toml(text, "<case>").unwrap_or_else(|e| panic!("{e}"))
}

fn bytes(s: &edgeflow_dsp::host::Spec) -> Vec<u8> {
    edgeflow_dsp::host::to_bytes(s).unwrap_or_else(|e| panic!("{e}"))
}

/// `seconds` of synthetic 16 kHz int16 audio: a gliding harmonic tone with noise.
pub fn synthetic_audio(seconds: f32) -> Vec<i16> {
    let mut rng = Rng(0x5eed);
    let n = (16000.0 * seconds) as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / 16000.0;
            let f0 = 120.0 + 80.0 * (2.0 * std::f64::consts::PI * 0.7 * t).sin();
            let phase = 2.0 * std::f64::consts::PI * f0 * t;
            let v = 0.4 * phase.sin() + 0.2 * (2.0 * phase).sin() + 0.1 * (3.0 * phase).sin();
            let v = v * (0.5 + 0.5 * (2.0 * std::f64::consts::PI * 2.0 * t).sin().abs());
            ((v + 0.02 * rng.next() as f64) * 20000.0) as i16
        })
        .collect()
}

/// `steps` time steps of a synthetic 3-axis accelerometer at 100 Hz (interleaved).
pub fn synthetic_imu(steps: usize) -> Vec<f32> {
    let mut rng = Rng(42);
    (0..steps)
        .flat_map(|i| {
            let t = i as f32 / 100.0;
            [
                0.3 * libm::sinf(2.0 * std::f32::consts::PI * 1.5 * t) + 0.05 * rng.next(),
                9.81 + 0.2 * libm::sinf(2.0 * std::f32::consts::PI * 7.0 * t) + 0.05 * rng.next(),
                0.4 * libm::sinf(2.0 * std::f32::consts::PI * 3.0 * t) + 0.1 * rng.next(),
            ]
        })
        .collect()
}

/// A synthetic `width × height` RGB image.
pub fn synthetic_image(width: usize, height: usize) -> Vec<u8> {
    let mut rng = Rng(9);
    let mut v = Vec::with_capacity(width * height * 3);
    for y in 0..height {
        for x in 0..width {
            v.push((255 * x / width.max(1)) as u8);
            v.push((255 * y / height.max(1)) as u8);
            v.push((128.0 + 100.0 * rng.next()) as u8);
        }
    }
    v
}

fn le_f32(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The MFCC benchmark case: the KWS pipeline on 1 s of audio.
pub fn kws_case() -> DspCase {
    DspCase {
        name: "kws_mfcc".into(),
        pipeline: bytes(&spec("kws_mfcc.toml")),
        input: synthetic_audio(1.0)
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        feed: Feed::I16,
        chunk: 64,
    }
}

/// The IMU benchmark case: the IMU pipeline on 10.24 s of motion (15 windows).
pub fn imu_case() -> DspCase {
    DspCase {
        name: "imu_features".into(),
        pipeline: bytes(&spec("imu_features.toml")),
        input: le_f32(&synthetic_imu(1024)),
        feed: Feed::F32,
        // Not a multiple of 3 axes: chunks end mid time step.
        chunk: 17,
    }
}

/// TFLM micro_speech's features (`conformance/frontend/micro_speech/pipeline.toml`: the
/// fixed-point audio front end, 49 frames x 40 channels, int8) on its one-second "yes"
/// recording, pushed as `i16` in chunks of 64. The host's output for it equals
/// `conformance/frontend/goldens/micro_speech_yes.features.i8` (TensorFlow's op, see
/// `tests/tests/micro_speech.rs`). Not in [`parity_cases`]: its 32 KB of audio need a
/// firmware image of their own on lm3s6965evb (256 KiB flash).
pub fn micro_speech_case() -> DspCase {
    let dir = root().join("conformance/frontend");
    let spec = edgeflow_dsp::host::load(&dir.join("micro_speech/pipeline.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let wav_path = dir.join("audio/yes_1000ms.wav");
    let wav = std::fs::read(&wav_path).unwrap_or_else(|e| panic!("{}: {e}", wav_path.display()));
    DspCase {
        name: "micro_speech_frontend".into(),
        pipeline: bytes(&spec),
        // 16-bit mono PCM after the 44-byte header.
        input: wav.get(44..).unwrap_or_default().to_vec(),
        feed: Feed::I16,
        chunk: 64,
    }
}

/// The cases the QEMU parity tests run: the three pipelines of the issue and one case
/// per remaining block family.
pub fn parity_cases() -> Vec<DspCase> {
    let mut kws_int8 = spec("kws_mfcc.toml");
    kws_int8.output.frames = 20;
    kws_int8.output.hop = 10;
    kws_int8.output.quantize = Some(edgeflow_dsp::Quantize {
        scale: 0.8,
        zero_point: 20,
    });
    vec![
        kws_case(),
        DspCase {
            name: "kws_mfcc_int8_hop".into(),
            pipeline: bytes(&kws_int8),
            input: synthetic_audio(1.0)
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
            feed: Feed::I16,
            chunk: 37,
        },
        imu_case(),
        DspCase {
            name: "image_int8".into(),
            pipeline: bytes(&spec("image_int8.toml")),
            input: synthetic_image(96, 96),
            feed: Feed::Image,
            chunk: 0,
        },
        DspCase {
            name: "image_crop_resize_gray".into(),
            pipeline: bytes(&spec_text(
                "[input.image]\nwidth = 80\nheight = 60\nchannels = 3\n\
                 [[blocks]]\ncrop = { x = 10, y = 0, width = 60, height = 60 }\n\
                 [[blocks]]\nresize = { width = 48, height = 48, method = \"bilinear\" }\n\
                 [[blocks]]\ngrayscale = {}\n\
                 [[blocks]]\nmin_max = { min = [0.0], max = [255.0] }\n\
                 [[blocks]]\nclip = { min = 0.05, max = 0.95 }\n",
            )),
            input: synthetic_image(80, 60),
            feed: Feed::Image,
            chunk: 0,
        },
        DspCase {
            name: "stream_filters_stats".into(),
            pipeline: bytes(&spec_text(
                "[input.signal]\naxes = 2\nrate_hz = 200.0\nwindow = 100\nstride = 40\n\
                 [[stream]]\niir = { design = { kind = \"highpass\", order = 3, cutoff_hz = 1.0 } }\n\
                 [[stream]]\nclip = { min = -5.0, max = 5.0 }\n\
                 [[blocks]]\npre_emphasis = { coef = 0.5 }\n\
                 [[blocks]]\nzscore = { mean = [0.1, -0.2], std = [2.0, 3.0] }\n\
                 [[branches]]\nblocks = [{ stats = { stats = [\"mean\", \"std\", \"skewness\", \"kurtosis\", \"zero_crossing_rate\"] } }]\n\
                 [[branches]]\nblocks = [{ window = { kind = \"hamming\", periodic = false } }, { spectrum = { n_fft = 128 } }, { log = { base = \"db\" } }, { dct = { coefficients = 8, lifter = 10.0 } }]\n\
                 [[post]]\nscale = { scale = 0.5, offset = 0.25 }\n\
                 [output]\nframes = 3\nhop = 1\n",
            )),
            input: le_f32(&synthetic_imu(400)[..800]),
            feed: Feed::F32,
            chunk: 5,
        },
        DspCase {
            name: "text_bag_of_words".into(),
            pipeline: bytes(&spec_text(
                "[input.text]\nmax_tokens = 8\n\
                 [[blocks]]\nvocabulary = { tokens = [\"yes\", \"no\", \"up\", \"down\", \"left\"], oov_buckets = 2 }\n\
                 [[blocks]]\none_hot = { depth = 7, reduce = \"sum\" }\n",
            )),
            input: b"up\nup\nstop\nyes\ngo\n".to_vec(),
            feed: Feed::Text,
            chunk: 0,
        },
        DspCase {
            name: "vector_tabular".into(),
            pipeline: bytes(&spec_text(
                "[input.vector]\nlen = 4\n\
                 [[blocks]]\nzscore = { mean = [1.0], std = [2.0] }\n\
                 [[blocks]]\nbucketize = { boundaries = [-1.0, 0.0, 1.0] }\n\
                 [[blocks]]\none_hot = { depth = 4 }\n\
                 [output]\nquantize = { scale = 0.5, zero_point = 0 }\n",
            )),
            input: le_f32(&[-3.0, 0.5, 1.0, 9.0]),
            feed: Feed::Vector,
            chunk: 0,
        },
    ]
}
