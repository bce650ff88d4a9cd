//! Firmware-side harness for feature pipelines (edgeflow-dsp).
//!
//! For each embedded case (postcard pipeline + input), builds the pipeline in a static
//! workspace, feeds the input in chunks of the case's size, and prints over semihosting:
//!
//! ```text
//! dsp <name> out <hex>                       (output tensors, in pieces, in order)
//! dsp <name> ok windows=<n> outputs=<n> init=<ticks> push=<ticks> process=<ticks> pmin=<ticks> pmed=<ticks> pmax=<ticks> stack=<bytes>
//! dsp <name> err <message>
//! ```
//!
//! then `done` and exits QEMU. `push` and `process` are SysTick ticks summed over the
//! calls (core-clock cycles; 40 instructions per tick on mps2-an386 with `-icount shift=0`);
//! `pmin`/`pmed`/`pmax` are the fastest, median and slowest single `process` call (over the
//! first 64 windows).
#![no_std]
#![deny(unsafe_code)]

use core::fmt::Write;

use cortex_m_semihosting::hio;
use edgeflow_dsp::{Pipeline, Runtime};
use edgeflow_firmware_support::{now, stack, Line};

pub use edgeflow_firmware_support::fail;

/// How a case's input bytes are fed (shared with the host's twin in `edgeflow-tests`).
pub use edgeflow_dsp::Feed;

/// One embedded feature-pipeline case.
pub struct DspCase {
    /// Name printed in the report.
    pub name: &'static str,
    /// The postcard-encoded pipeline description.
    pub pipeline: &'static [u8],
    /// The input bytes.
    pub input: &'static [u8],
    /// How to feed them.
    pub feed: Feed,
    /// Values per push for signals.
    pub chunk: usize,
    /// The pipeline's coefficient tables as the host designs them (little-endian `f32`,
    /// as in the artifact's PipelineTables section); empty: not measured.
    pub tables: &'static [u8],
}

struct Counts {
    windows: u32,
    outputs: u32,
    init: u64,
    /// Ticks to decode the pipeline and start from the precomputed tables.
    init_pre: u64,
    /// Whether the tables designed on the device equal the host's, bit for bit.
    tables_same: bool,
    push: u64,
    process: u64,
    /// Ticks of each `process` call, the first `PER_WINDOW` of them.
    per_window: [u32; PER_WINDOW],
}

const PER_WINDOW: usize = 64;

impl Counts {
    fn new() -> Self {
        Counts {
            windows: 0,
            outputs: 0,
            init: 0,
            init_pre: 0,
            tables_same: false,
            push: 0,
            process: 0,
            per_window: [0; PER_WINDOW],
        }
    }

    /// (min, median, max) of the recorded `process` calls, zeros when none.
    fn spread(&self) -> (u32, u32, u32) {
        let n = (self.windows as usize).min(PER_WINDOW);
        let mut v = self.per_window;
        let v = &mut v[..n];
        v.sort_unstable();
        match (v.first(), v.get(n / 2), v.last()) {
            (Some(&a), Some(&m), Some(&b)) => (a, m, b),
            _ => (0, 0, 0),
        }
    }
}

/// Runs every case, printing its lines, then `done`, and exits QEMU.
pub fn run(cases: &[DspCase], workspace: &mut [f32], out: &mut [u8]) -> ! {
    let mut host = hio::hstdout().ok();
    edgeflow_firmware_support::start_clock();
    for case in cases {
        let painted = stack::paint();
        let mut counts = Counts::new();
        let result = run_case(case, workspace, out, &mut counts, &mut host);
        let stack = stack::peak(painted);
        let mut line = Line::new();
        let (pmin, pmed, pmax) = counts.spread();
        let _ = match result {
            Ok(()) => writeln!(
                line,
                "dsp {} ok windows={} outputs={} init={} init_pre={} tables_same={} push={} process={} pmin={pmin} pmed={pmed} pmax={pmax} stack={}",
                case.name,
                counts.windows,
                counts.outputs,
                counts.init,
                counts.init_pre,
                u8::from(counts.tables_same),
                counts.push,
                counts.process,
                stack
            ),
            Err(e) => writeln!(line, "dsp {} err {e}", case.name),
        };
        line.flush(&mut host);
    }
    edgeflow_firmware_support::finish(&mut host)
}

fn print_output(name: &str, bytes: &[u8], host: &mut Option<hio::HostStream>) {
    for piece in bytes.chunks(400) {
        let mut line = Line::new();
        let _ = write!(line, "dsp {name} out ");
        for b in piece {
            let _ = write!(line, "{b:02x}");
        }
        let _ = line.write_str("\n");
        line.flush(host);
    }
}

fn run_case(
    case: &DspCase,
    workspace: &mut [f32],
    out: &mut [u8],
    counts: &mut Counts,
    host: &mut Option<hio::HostStream>,
) -> Result<(), edgeflow_dsp::Error> {
    let t0 = now();
    let pipeline = Pipeline::from_bytes(case.pipeline)?;
    let n = pipeline.workspace_len();
    let got = workspace.len();
    let ws = workspace
        .get_mut(..n)
        .ok_or(edgeflow_dsp::Error::WorkspaceTooSmall { needed: n, got })?;
    let nout = pipeline.output_bytes();
    let got = out.len();
    let out = out.get_mut(..nout).ok_or(edgeflow_dsp::Error::Length {
        what: "harness output buffer",
        expected: nout,
        got,
    })?;
    let rt = Runtime::new(&pipeline, ws)?;
    counts.init = now() - t0;
    if !case.tables.is_empty() {
        // Start-up from the host's tables: decode again and copy them in; the run below
        // then uses that runtime, so the outputs checked against the host come from it.
        counts.tables_same = rt.tables().len() * 4 == case.tables.len()
            && rt
                .tables()
                .iter()
                .zip(case.tables.chunks_exact(4))
                .all(|(a, b)| a.to_le_bytes() == b);
        drop(rt);
        let t1 = now();
        let p2 = Pipeline::from_bytes(case.pipeline)?;
        let ws = ws_for(workspace, n)?;
        let pre = Runtime::with_tables(&p2, ws, case.tables)?;
        counts.init_pre = now() - t1;
        return feed(case, pre, out, counts, host);
    }
    feed(case, rt, out, counts, host)
}

fn ws_for(workspace: &mut [f32], n: usize) -> Result<&mut [f32], edgeflow_dsp::Error> {
    let got = workspace.len();
    workspace
        .get_mut(..n)
        .ok_or(edgeflow_dsp::Error::WorkspaceTooSmall { needed: n, got })
}

fn feed(
    case: &DspCase,
    mut rt: Runtime<'_, '_, '_>,
    out: &mut [u8],
    counts: &mut Counts,
    host: &mut Option<hio::HostStream>,
) -> Result<(), edgeflow_dsp::Error> {
    match case.feed {
        Feed::F32 | Feed::I16 => {
            let width = if case.feed == Feed::F32 { 4 } else { 2 };
            let mut buf = [0.0f32; 64];
            let chunk = case.chunk.clamp(1, buf.len());
            for bytes in case.input.chunks(chunk * width) {
                let n = bytes.len() / width;
                for (v, b) in buf.iter_mut().zip(bytes.chunks_exact(width)) {
                    *v = if width == 4 {
                        f32::from_le_bytes([b[0], b[1], b[2], b[3]])
                    } else {
                        i16::from_le_bytes([b[0], b[1]]) as f32
                    };
                }
                let mut vals: &[f32] = &buf[..n];
                while !vals.is_empty() {
                    let t = now();
                    let p = rt.push(vals)?;
                    counts.push += now() - t;
                    vals = vals.get(p.consumed..).unwrap_or(&[]);
                    if p.ready {
                        let t = now();
                        let done = rt.process(out)?;
                        let d = now() - t;
                        counts.process += d;
                        if let Some(slot) = counts.per_window.get_mut(counts.windows as usize) {
                            *slot = u32::try_from(d).unwrap_or(u32::MAX);
                        }
                        counts.windows += 1;
                        if done {
                            counts.outputs += 1;
                            print_output(case.name, out, host);
                        }
                    }
                }
            }
        }
        Feed::Pcm => {
            let mut buf = [0i16; 512];
            let chunk = case.chunk.clamp(1, buf.len());
            for bytes in case.input.chunks(chunk * 2) {
                let n = bytes.len() / 2;
                for (v, b) in buf.iter_mut().zip(bytes.chunks_exact(2)) {
                    *v = i16::from_le_bytes([b[0], b[1]]);
                }
                let mut vals: &[i16] = &buf[..n];
                while !vals.is_empty() {
                    let t = now();
                    let p = rt.push_i16(vals)?;
                    counts.push += now() - t;
                    vals = vals.get(p.consumed..).unwrap_or(&[]);
                    if p.ready {
                        let t = now();
                        let done = rt.process(out)?;
                        let d = now() - t;
                        counts.process += d;
                        if let Some(slot) = counts.per_window.get_mut(counts.windows as usize) {
                            *slot = u32::try_from(d).unwrap_or(u32::MAX);
                        }
                        counts.windows += 1;
                        if done {
                            counts.outputs += 1;
                            print_output(case.name, out, host);
                        }
                    }
                }
            }
        }
        Feed::Vector => {
            let mut vals = [0.0f32; 256];
            let n = (case.input.len() / 4).min(vals.len());
            for (v, b) in vals.iter_mut().zip(case.input.chunks_exact(4)) {
                *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            let t = now();
            rt.run_vector(&vals[..n], out)?;
            counts.process += now() - t;
            counts.outputs = 1;
            print_output(case.name, out, host);
        }
        Feed::Text => {
            let text = core::str::from_utf8(case.input).unwrap_or("");
            let mut tokens: [&str; 32] = [""; 32];
            let mut n = 0;
            for (slot, t) in tokens
                .iter_mut()
                .zip(text.split('\n').filter(|t| !t.is_empty()))
            {
                *slot = t;
                n += 1;
            }
            let t = now();
            rt.run_tokens(&tokens[..n], out)?;
            counts.process += now() - t;
            counts.outputs = 1;
            print_output(case.name, out, host);
        }
        Feed::Image => {
            let t = now();
            rt.run_image(case.input, out)?;
            counts.process += now() - t;
            counts.outputs = 1;
            print_output(case.name, out, host);
        }
    }
    Ok(())
}

#[doc(hidden)]
pub use edgeflow_firmware_support as __support;

/// The whole program of a board's feature-pipeline harness (`firmware/dsp-<board>/src/main.rs`
/// is this one call, after `#![no_std]`, `#![no_main]` and its panic handler): the cases its
/// build script generated (`$OUT_DIR/cases.rs`, `edgeflow_firmware_build::dsp_app`) run
/// with a static workspace of `WORKSPACE_WORDS` f32 and an output buffer of `OUTPUT_BYTES`
/// (both set by that file), by [`run`].
#[macro_export]
macro_rules! board_main {
    () => {
        include!(concat!(env!("OUT_DIR"), "/cases.rs"));

        struct Buffers {
            workspace: [f32; WORKSPACE_WORDS],
            output: [u8; OUTPUT_BYTES],
        }

        $crate::__support::static_main!(
            Buffers = Buffers {
                workspace: [0.0; WORKSPACE_WORDS],
                output: [0; OUTPUT_BYTES],
            },
            "buffers",
            |b| $crate::run(CASES, &mut b.workspace, &mut b.output)
        );
    };
}
