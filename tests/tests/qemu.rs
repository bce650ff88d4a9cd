//! The conformance fixtures and the single-input, single-output fixtures of
//! `conformance/ops` inside firmware on emulated Cortex-M4F (QEMU mps2-an386) and
//! Cortex-M3 without FPU (QEMU lm3s6965evb): outputs must be bit-identical to the host's.
//!
//! Needs `qemu-system-arm` and the thumbv7em/thumbv7m Rust targets (`.ci/run` installs
//! them). Without them the tests fail, unless `EDGEFLOW_SKIP_QEMU=1` is set explicitly.

use std::time::Duration;

use edgeflow_tests::firmware::{self, Case};
use edgeflow_tests::{fixtures, load_npy, run_host};

fn cases(ops: bool) -> Vec<(Case, Vec<u8>, usize)> {
    let mut all: Vec<(Case, Vec<u8>, usize)> = synthetic::cases()
        .into_iter()
        .map(|(name, graph, input)| {
            let c = edgeflow_compile::emit(&graph, &name).unwrap_or_else(|e| panic!("{name}: {e}"));
            let host = run_host(&c.artifact, &input).unwrap_or_else(|e| panic!("{name}: {e}"));
            (
                Case {
                    name,
                    artifact: c.artifact,
                    input,
                },
                host,
                c.arena_bytes,
            )
        })
        .collect();
    all.extend(fixture_cases());
    if ops {
        all.extend(op_fixture_cases());
    }
    all
}

/// The single-op fixtures of `conformance/ops` with one input and one output (TRANSPOSE,
/// slices, SQUEEZE, LEAKY_RELU, HARD_SWISH, MAXIMUM/MINIMUM against constants, REDUCE_MAX,
/// RESIZE_NEAREST_NEIGHBOR; their host outputs equal TFLite's, `op_conformance.rs`).
fn op_fixture_cases() -> Vec<(Case, Vec<u8>, usize)> {
    let dir = edgeflow_tests::root().join("conformance/ops");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("conformance/ops")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tflite"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|n| {
            !dir.join(format!("{n}.input1.npy")).exists()
                && !dir.join(format!("{n}.output1.npy")).exists()
        })
        .collect();
    names.sort();
    // Exactly the single-input, single-output fixtures the generator's MANIFEST.json
    // lists (a multi-I/O fixture has a list of shapes as its first shape entry).
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("MANIFEST.json")).expect("conformance/ops/MANIFEST.json"),
    )
    .expect("MANIFEST.json parses");
    let mut single: Vec<String> = manifest["fixtures"]
        .as_object()
        .expect("a fixtures object")
        .iter()
        .filter(|(_, f)| f["input_shape"][0].is_u64() && f["output_shape"][0].is_u64())
        .map(|(n, _)| n.clone())
        .collect();
    single.sort();
    assert_eq!(
        names, single,
        "the single-I/O fixtures on disk are not those MANIFEST.json lists"
    );
    names
        .into_iter()
        .map(|name| {
            let tflite = std::fs::read(dir.join(format!("{name}.tflite"))).expect("read model");
            let c =
                edgeflow_compile::compile(&tflite, &name).unwrap_or_else(|e| panic!("{name}: {e}"));
            let input = load_npy(&dir.join(format!("{name}.input.npy"))).bytes();
            let host = run_host(&c.artifact, &input).unwrap_or_else(|e| panic!("{name}: {e}"));
            (
                Case {
                    name: format!("op_{name}"),
                    artifact: c.artifact,
                    input,
                },
                host,
                c.arena_bytes,
            )
        })
        .collect()
}

/// Graphs built in code for the shapes the fixtures miss: odd and non-multiple-of-4
/// channel counts and feature lengths, so the loop tails, odd rows and the per-group
/// DSP kernels (3x3 depthwise, FULLY_CONNECTED row pairs, conv column pairs) and both
/// requantization epilogues run on the device against the host's portable kernels.
mod synthetic {
    use edgeflow_compile::ir::{Graph, IrOp, IrQuant, IrTensor, OwnedRequant};
    use edgeflow_format::graph::{Clamp, ConvParams, DType, FullyConnectedParams, Op};

    /// A small deterministic generator (xorshift).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
        fn range(&mut self, lo: i64, hi: i64) -> i64 {
            lo + (self.next() % (hi - lo + 1) as u64) as i64
        }
    }

    fn act(name: &str, shape: &[u32], zp: i64) -> IrTensor {
        IrTensor {
            index: 0,
            name: name.into(),
            dtype: DType::I8,
            shape: shape.to_vec(),
            quant: Some(IrQuant {
                scales: vec![0.05],
                zero_points: vec![zp],
                axis: 0,
            }),
            data: None,
        }
    }

    fn weights(shape: &[u32], channels: usize, axis: u32, data: Vec<u8>) -> IrTensor {
        IrTensor {
            index: 0,
            name: "w".into(),
            dtype: DType::I8,
            shape: shape.to_vec(),
            quant: Some(IrQuant {
                scales: vec![0.01; channels],
                zero_points: vec![0; channels],
                axis,
            }),
            data: Some(data),
        }
    }

    fn bias(r: &mut Rng, n: usize) -> IrTensor {
        let data = (0..n)
            .flat_map(|_| (r.range(-3000, 3000) as i32).to_le_bytes())
            .collect();
        IrTensor {
            index: 0,
            name: "b".into(),
            dtype: DType::I32,
            shape: vec![n as u32],
            quant: None,
            data: Some(data),
        }
    }

    /// Per-channel requantization: `fast` keeps every shift in `-12..=-1` (with a zero
    /// multiplier now and then), otherwise some shifts are 0 or positive.
    fn requant(r: &mut Rng, n: usize, zin: i64, zout: i64, fast: bool) -> OwnedRequant {
        let (mut multipliers, mut shifts) = (Vec::new(), Vec::new());
        for c in 0..n {
            let (m, s) = if fast && c % 7 == 3 {
                (0, 0)
            } else {
                let m = r.range(1 << 30, (1 << 31) - 1) as i32;
                let s = if fast {
                    r.range(-12, -1)
                } else {
                    r.range(-12, 2)
                };
                (m, s as i32)
            };
            multipliers.extend_from_slice(&m.to_le_bytes());
            shifts.extend_from_slice(&s.to_le_bytes());
        }
        OwnedRequant {
            input_offset: -(zin as i32),
            output_offset: zout as i32,
            multipliers,
            shifts,
        }
    }

    fn graph(
        tensors: Vec<IrTensor>,
        op: Op<'static>,
        rq: OwnedRequant,
        inputs: Vec<usize>,
    ) -> Graph {
        let mut tensors = tensors;
        for (i, t) in tensors.iter_mut().enumerate() {
            t.index = i as u32;
        }
        let output = tensors.len() - 1;
        Graph {
            tensors,
            inputs: vec![0],
            outputs: vec![output],
            ops: vec![IrOp {
                source_index: 0,
                op,
                requant: Some(rq),
                inputs,
                output,
                macs: 0,
            }],
            description: String::new(),
        }
    }

    fn clamp(relu: bool, zout: i64) -> Clamp {
        if relu {
            Clamp {
                min_q: zout as i32,
                max_q: 100,
                ..Clamp::NONE
            }
        } else {
            Clamp::NONE
        }
    }

    /// `(name, graph, input bytes)` for every synthetic case.
    pub fn cases() -> Vec<(String, Graph, Vec<u8>)> {
        let mut r = Rng(0x9E37_79B9_7F4A_7C15);
        let mut out = Vec::new();
        // 3x3 depthwise, multiplier 1: SAME padding, stride 1 or 2.
        for (i, &c) in [1usize, 3, 5, 6, 7, 13, 66, 131].iter().enumerate() {
            let (h, w, s) = (5u32, 6u32, 1 + (i % 2) as u32);
            let (oh, ow) = (h.div_ceil(s), w.div_ceil(s));
            let pad = |n: u32, o: u32| (((o - 1) * s + 3).saturating_sub(n) / 2) as u16;
            let (zin, zout) = (r.range(-128, 127), r.range(-128, 60));
            let fast = i % 3 != 2;
            let relu = i % 4 == 1;
            let t = vec![
                act("x", &[1, h, w, c as u32], zin),
                weights(&[1, 3, 3, c as u32], c, 3, r.bytes(9 * c)),
                bias(&mut r, c),
                act("y", &[1, oh, ow, c as u32], zout),
            ];
            let p = ConvParams {
                stride: [s as u16; 2],
                dilation: [1, 1],
                pad: [pad(h, oh), pad(w, ow)],
                depth_multiplier: 1,
                clamp: clamp(relu, zout),
                requant: None,
            };
            let rq = requant(&mut r, c, zin, zout, fast);
            let input = r.bytes((h * w) as usize * c);
            out.push((
                format!("syn_dw3x3_c{c}_s{s}"),
                graph(t, Op::DepthwiseConv2d(p), rq, vec![0, 1, 2]),
                input,
            ));
        }
        // FULLY_CONNECTED: odd group counts, tails, odd row counts, several segments.
        for (i, &(n_in, n_out)) in [
            (5usize, 3usize),
            (12, 7),
            (36, 4),
            (130, 5),
            (260, 9),
            (8, 1),
        ]
        .iter()
        .enumerate()
        {
            let (zin, zout) = (r.range(-128, 127), r.range(-128, 60));
            let fast = i % 3 != 2;
            let t = vec![
                act("x", &[1, n_in as u32], zin),
                weights(
                    &[n_out as u32, n_in as u32],
                    n_out,
                    0,
                    r.bytes(n_in * n_out),
                ),
                bias(&mut r, n_out),
                act("y", &[1, n_out as u32], zout),
            ];
            let p = FullyConnectedParams {
                clamp: clamp(i % 2 == 1, zout),
                requant: None,
            };
            let rq = requant(&mut r, n_out, zin, zout, fast);
            let input = r.bytes(n_in);
            out.push((
                format!("syn_fc_{n_in}x{n_out}"),
                graph(t, Op::FullyConnected(p), rq, vec![0, 1, 2]),
                input,
            ));
        }
        // CONV_2D: 3x3 and 1x1 with odd channel counts (column pairs, odd last pixel).
        for (i, &(k, ci, co)) in [(3u32, 3u32, 5u32), (1, 7, 3), (3, 4, 9), (1, 13, 6)]
            .iter()
            .enumerate()
        {
            let (h, w) = (5u32, 3u32);
            let (zin, zout) = (r.range(-128, 127), r.range(-128, 60));
            let fast = i % 2 == 0;
            let n = (k * k * ci * co) as usize;
            let t = vec![
                act("x", &[1, h, w, ci], zin),
                weights(&[co, k, k, ci], co as usize, 0, r.bytes(n)),
                bias(&mut r, co as usize),
                act("y", &[1, h, w, co], zout),
            ];
            let p = ConvParams {
                stride: [1, 1],
                dilation: [1, 1],
                pad: [(k / 2) as u16; 2],
                depth_multiplier: 1,
                clamp: clamp(i % 2 == 1, zout),
                requant: None,
            };
            let rq = requant(&mut r, co as usize, zin, zout, fast);
            let input = r.bytes((h * w * ci) as usize);
            out.push((
                format!("syn_conv{k}x{k}_{ci}to{co}"),
                graph(t, Op::Conv2d(p), rq, vec![0, 1, 2]),
                input,
            ));
        }
        out
    }
}

fn fixture_cases() -> Vec<(Case, Vec<u8>, usize)> {
    fixtures()
        .into_iter()
        .map(|f| {
            let tflite = std::fs::read(&f.model).expect("read model");
            let c = edgeflow_compile::compile(&tflite, &f.name)
                .unwrap_or_else(|e| panic!("{}: {e}", f.name));
            let input = load_npy(&f.input).bytes();
            let host = run_host(&c.artifact, &input).unwrap_or_else(|e| panic!("{}: {e}", f.name));
            (
                Case {
                    name: f.name.clone(),
                    artifact: c.artifact,
                    input,
                },
                host,
                c.arena_bytes,
            )
        })
        .collect()
}

/// `ops`: also run the single-op fixtures of `conformance/ops`. `flash_budget`: the case
/// bytes (artifacts and inputs) one firmware image may embed; `None`: what the board's
/// flash leaves besides the harness's code (measured on an image with one case) and a
/// 16 KiB margin.
/// `cargo_profile`: the firmware workspace's profile the harness is built with
/// (`release`, the speed class; `release-small`, the size class with edgeflow-nn's
/// `cfg(edgeflow_size)` paths).
fn parity(board_name: &str, flash_budget: Option<usize>, ops: bool, cargo_profile: &str) {
    let board = firmware::board(board_name);
    if let Some(why) = firmware::toolchain_missing(&board) {
        // toolchain_missing fails the test unless EDGEFLOW_SKIP_QEMU=1 asked to skip.
        eprintln!("skipping {board_name}: {why}");
        return;
    }
    let all = cases(ops);
    let flash_budget = flash_budget.unwrap_or_else(|| {
        let first = &all[0];
        let elf = firmware::build_with_profile(
            &board,
            std::slice::from_ref(&first.0),
            first.2.max(16),
            false,
            None,
            cargo_profile,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let text = firmware::flash_text_bytes(&elf).unwrap_or_else(|e| panic!("{e}")) as usize;
        let code = text.saturating_sub(first.0.artifact.len() + first.0.input.len());
        let budget = (board.flash_bytes as usize).saturating_sub(code + 16 * 1024);
        println!("{board_name}: harness code {code} bytes; {budget} bytes of cases per image");
        budget
    });
    // Split into firmware images that fit the board's flash.
    let mut batches: Vec<Vec<&(Case, Vec<u8>, usize)>> = vec![Vec::new()];
    let mut used = 0;
    for c in &all {
        let size = c.0.artifact.len() + c.0.input.len();
        if used + size > flash_budget && !batches.last().is_some_and(|b| b.is_empty()) {
            batches.push(Vec::new());
            used = 0;
        }
        used += size;
        batches.last_mut().expect("non-empty").push(c);
    }
    let mut checked = 0;
    let mut failures = Vec::new();
    for batch in batches {
        let arena = batch.iter().map(|c| c.2).max().unwrap_or(16).max(16);
        let cases: Vec<Case> = batch.iter().map(|c| c.0.clone()).collect();
        let elf = firmware::build_with_profile(&board, &cases, arena, false, None, cargo_profile)
            .unwrap_or_else(|e| panic!("{e}"));
        let reports = firmware::run_elf(&board, &elf, Duration::from_secs(600))
            .unwrap_or_else(|e| panic!("{e}"));
        for (case, host, _) in batch {
            match reports.get(&case.name).map(|r| &r.output) {
                Some(Ok(out)) if out == host => checked += 1,
                Some(Ok(out)) => failures.push(format!(
                    "{}: device output differs from host ({} bytes, first difference at {:?})",
                    case.name,
                    out.len(),
                    out.iter().zip(host.iter()).position(|(a, b)| a != b)
                )),
                Some(Err(e)) => failures.push(format!("{}: device error {e}", case.name)),
                None => failures.push(format!("{}: no report from the device", case.name)),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{board_name}:\n{}",
        failures.join("\n")
    );
    assert_eq!(checked, all.len());
    println!(
        "{board_name}: {checked} cases bit-identical with the host ({} of them single-op fixtures)",
        all.iter().filter(|c| c.0.name.starts_with("op_")).count()
    );
}

#[test]
fn fixtures_bit_identical_on_cortex_m4f_mps2_an386() {
    parity("mps2-an386", Some(3 * 1024 * 1024), true, "release");
}

/// The size class (`release-small`, opt-level "s"): the Cortex-M4 DSP kernels with
/// edgeflow-nn's size-class paths (`cfg(edgeflow_size)`: the device loop's per-op-kind
/// `run_op` frames and the light ops' shared one through a `&dyn Fn`, FULLY_CONNECTED's
/// epilogue flags out of line, the cold fallbacks and column tails out of line, an odd
/// last pixel on the two-pixel block), which only a size-class device build runs.
#[test]
fn fixtures_bit_identical_on_cortex_m4f_size_class() {
    parity("mps2-an386", Some(3 * 1024 * 1024), true, "release-small");
}

#[test]
fn fixtures_bit_identical_on_cortex_m3_lm3s6965evb() {
    // 256 KiB flash: the cases are split over as many images as the room the code
    // leaves needs (a fixed 150 KiB per image overflowed once the single-op fixtures
    // were added).
    parity("lm3s6965evb", None, true, "release");
}
