//! Firmware-side harness for feature pipelines (edgeflow-dsp).
//!
//! For each embedded case (postcard pipeline + input), builds the pipeline in a static
//! workspace, feeds the input in chunks of the case's size, and prints over semihosting:
//!
//! ```text
//! dsp <name> out <hex>                       (output tensors, in pieces, in order)
//! dsp <name> ok windows=<n> outputs=<n> init=<ticks> push=<ticks> process=<ticks> stack=<bytes>
//! dsp <name> err <message>
//! ```
//!
//! then `done` and exits QEMU. `push` and `process` are SysTick ticks summed over the
//! calls (core-clock cycles; 40 instructions per tick on mps2-an386 with `-icount shift=0`).
#![no_std]
#![deny(unsafe_code)]

use core::fmt::Write;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;
use cortex_m_semihosting::hio;
use edgeflow_dsp::{Pipeline, Runtime};

/// How a case's input bytes are fed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// Little-endian `f32` samples, pushed in chunks.
    F32,
    /// Little-endian `i16` samples, pushed in chunks.
    I16,
    /// One `f32` vector ([`Runtime::run_vector`]).
    Vector,
    /// `'\n'`-separated tokens ([`Runtime::run_tokens`]).
    Text,
    /// 8-bit pixels ([`Runtime::run_image`]).
    Image,
}

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
}

static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

const RELOAD: u32 = 0x00FF_FFFF;

fn now() -> u64 {
    loop {
        let w1 = WRAPS.load(Ordering::Relaxed);
        let v = SYST::get_current();
        let w2 = WRAPS.load(Ordering::Relaxed);
        if w1 == w2 {
            return w1 as u64 * (RELOAD as u64 + 1) + (RELOAD - v) as u64;
        }
    }
}

#[derive(Default)]
struct Counts {
    windows: u32,
    outputs: u32,
    init: u64,
    push: u64,
    process: u64,
}

/// Runs every case, printing its lines, then `done`, and exits QEMU.
pub fn run(cases: &[DspCase], workspace: &mut [f32], out: &mut [u8]) -> ! {
    let mut host = hio::hstdout().ok();
    if let Some(mut cp) = cortex_m::Peripherals::take() {
        cp.SYST.set_clock_source(SystClkSource::Core);
        cp.SYST.set_reload(RELOAD);
        cp.SYST.clear_current();
        cp.SYST.enable_interrupt();
        cp.SYST.enable_counter();
    }
    for case in cases {
        let painted = stack::paint();
        let mut counts = Counts::default();
        let result = run_case(case, workspace, out, &mut counts, &mut host);
        let stack = stack::peak(painted);
        let mut line = Line::new();
        let _ = match result {
            Ok(()) => writeln!(
                line,
                "dsp {} ok windows={} outputs={} init={} push={} process={} stack={}",
                case.name,
                counts.windows,
                counts.outputs,
                counts.init,
                counts.push,
                counts.process,
                stack
            ),
            Err(e) => writeln!(line, "dsp {} err {e}", case.name),
        };
        line.flush(&mut host);
    }
    if let Some(o) = host.as_mut() {
        let _ = o.write_str("done\n");
    }
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_SUCCESS);
    #[allow(clippy::empty_loop)]
    loop {}
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
    let mut rt = Runtime::new(&pipeline, ws)?;
    counts.init = now() - t0;
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
                        counts.windows += 1;
                        let t = now();
                        let done = rt.process(out)?;
                        counts.process += now() - t;
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

/// Peak stack measurement by painting (as the model harness does).
#[allow(unsafe_code)]
mod stack {
    const PATTERN: u8 = 0xC5;
    const MARGIN: usize = 256;

    extern "C" {
        static mut __sheap: u8;
    }

    /// Paints from the end of static data up to SP - MARGIN; returns the painted range.
    pub fn paint() -> (usize, usize) {
        let sp = cortex_m::register::msp::read() as usize;
        let low = core::ptr::addr_of!(__sheap) as usize;
        let high = sp.saturating_sub(MARGIN);
        let mut a = low;
        while a < high {
            // SAFETY: [__sheap, SP - MARGIN) is unused RAM between static data and the live
            // stack (no heap); writing it cannot alias any Rust object.
            unsafe { core::ptr::write_volatile(a as *mut u8, PATTERN) };
            a += 1;
        }
        (low, high)
    }

    /// Stack bytes used below the painting point since `paint`, plus the margin.
    pub fn peak((low, high): (usize, usize)) -> usize {
        let mut a = low;
        // SAFETY: reads of the plain RAM painted above.
        while a < high && unsafe { core::ptr::read_volatile(a as *const u8) } == PATTERN {
            a += 1;
        }
        (high - a) + MARGIN
    }
}

struct Line {
    buf: [u8; 1024],
    len: usize,
}

impl Line {
    fn new() -> Self {
        Line {
            buf: [0; 1024],
            len: 0,
        }
    }

    fn flush(&mut self, out: &mut Option<hio::HostStream>) {
        if let Some(o) = out.as_mut() {
            let _ = o.write_all(&self.buf[..self.len]);
        }
        self.len = 0;
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let b = s.as_bytes();
        let end = self.len + b.len();
        if end > self.buf.len() {
            return Err(core::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(b);
        self.len = end;
        Ok(())
    }
}

/// Reports a fatal setup error and exits QEMU with failure.
pub fn fail(msg: &str) -> ! {
    if let Ok(mut o) = hio::hstdout() {
        let _ = o.write_str("fatal ");
        let _ = o.write_str(msg);
        let _ = o.write_str("\n");
    }
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}
