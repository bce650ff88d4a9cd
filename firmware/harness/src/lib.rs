//! Firmware-side test and benchmark harness.
//!
//! For each embedded case (artifact + input), runs one inference in a static arena and
//! prints one line over semihosting:
//!
//! ```text
//! case <name> ok ticks=<systick ticks> stack=<peak bytes> out=<hex of output bytes>
//! case <name> err <message>
//! ```
//!
//! then `done` and exits QEMU. SysTick counts core-clock cycles; under QEMU with
//! `-icount shift=0` and the mps2-an386 25 MHz clock, one tick is 40 instructions.
#![no_std]
#![deny(unsafe_code)]

use core::fmt::Write;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;
use cortex_m_semihosting::hio;

/// One embedded test case.
pub struct Case {
    /// Name printed in the report.
    pub name: &'static str,
    /// The artifact bytes.
    pub artifact: &'static [u8],
    /// Graph input 0 bytes.
    pub input: &'static [u8],
    /// Report SysTick ticks per op (a few extra instructions per op while timing).
    pub profile: bool,
}

/// Most ops profiled per case.
const MAX_PROFILED_OPS: usize = 128;

static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

const RELOAD: u32 = 0x00FF_FFFF;

fn now(syst: &SYST) -> u64 {
    loop {
        let w1 = WRAPS.load(Ordering::Relaxed);
        let v = SYST::get_current();
        let w2 = WRAPS.load(Ordering::Relaxed);
        if w1 == w2 {
            return w1 as u64 * (RELOAD as u64 + 1) + (RELOAD - v) as u64;
        }
        let _ = syst;
    }
}

/// Runs every case, printing one line each, then `done`.
pub fn run(cases: &[Case], arena: &mut [u8]) -> ! {
    let mut out = hio::hstdout().ok();
    let mut cp = cortex_m::Peripherals::take();
    if let Some(cp) = cp.as_mut() {
        cp.SYST.set_clock_source(SystClkSource::Core);
        cp.SYST.set_reload(RELOAD);
        cp.SYST.clear_current();
        cp.SYST.enable_interrupt();
        cp.SYST.enable_counter();
    }
    for case in cases {
        let mut line: Line = Line::new();
        let _ = write!(line, "case {} ", case.name);
        match run_one(case, arena, cp.as_ref().map(|c| &c.SYST)) {
            Ok((ticks, stack, output)) => {
                let _ = write!(line, "ok ticks={ticks} stack={stack} out=");
                flush(&mut out, &mut line);
                for b in output {
                    let _ = write!(line, "{b:02x}");
                    if line.len > 900 {
                        flush(&mut out, &mut line);
                    }
                }
            }
            Err(e) => {
                let _ = write!(line, "err {e}");
            }
        }
        let _ = line.write_str("\n");
        flush(&mut out, &mut line);
    }
    if let Some(o) = out.as_mut() {
        let _ = o.write_str("done\n");
    }
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_SUCCESS);
    #[allow(clippy::empty_loop)]
    loop {}
}

fn run_one<'a>(
    case: &Case,
    arena: &'a mut [u8],
    syst: Option<&SYST>,
) -> Result<(u64, usize, &'a [u8]), edgeflow_nn::Error> {
    let model = edgeflow_nn::Model::parse(case.artifact)?;
    let mut rt = edgeflow_nn::Runtime::new(&model, arena)?;
    let input = rt.input_mut(0)?;
    if input.len() != case.input.len() {
        return Err(edgeflow_nn::Error::NoSuchTensor { index: 0, count: 0 });
    }
    input.copy_from_slice(case.input);
    let painted = stack::paint();
    let mut per_op = [0u64; MAX_PROFILED_OPS];
    let t0 = syst.map_or(0, now);
    if case.profile {
        let mut last = t0;
        rt.invoke_with(|i, _| {
            let t = syst.map_or(0, now);
            if let Some(slot) = per_op.get_mut(i) {
                *slot = t - last;
            }
            last = t;
        })?;
    } else {
        rt.invoke()?;
    }
    let t1 = syst.map_or(0, now);
    if case.profile {
        let mut out = hio::hstdout().ok();
        for (i, op) in model.ops().enumerate().take(MAX_PROFILED_OPS) {
            let mut line = Line::new();
            let _ = writeln!(line, "prof {} {} {} {}", case.name, i, op.op.name(), per_op[i]);
            flush(&mut out, &mut line);
        }
    }
    let stack = stack::peak(painted);
    let n = rt.output(0)?.len();
    drop(rt);
    let range = model
        .header()
        .outputs
        .first()
        .map(|t| match t.location {
            edgeflow_nn::format::graph::Location::Arena { offset } => offset as usize,
            _ => 0,
        })
        .unwrap_or(0);
    Ok((t1 - t0, stack, &arena[range..range + n]))
}

/// Peak stack measurement by painting: fill the free stack below the current stack
/// pointer with a pattern, run, then find the deepest overwritten byte.
#[allow(unsafe_code)]
mod stack {
    const PATTERN: u8 = 0xC5;
    /// Bytes left untouched just below the current SP (this function's own frame).
    const MARGIN: usize = 256;

    extern "C" {
        static mut __sheap: u8;
    }

    /// Paints from the end of static data up to SP - MARGIN; returns (low, high) painted.
    pub fn paint() -> (usize, usize) {
        let sp = cortex_m::register::msp::read() as usize;
        // SAFETY: taking the address of a linker symbol does not read it.
        let low = unsafe { core::ptr::addr_of!(__sheap) } as usize;
        let high = sp.saturating_sub(MARGIN);
        let mut a = low;
        while a < high {
            // SAFETY: [__sheap, SP - MARGIN) is unused memory between static data and the
            // live stack (cortex-m-rt places the stack at the top of RAM growing down and
            // nothing uses a heap); writing it cannot alias any Rust object.
            unsafe { core::ptr::write_volatile(a as *mut u8, PATTERN) };
            a += 1;
        }
        (low, high)
    }

    /// Bytes of stack used below the painting point's SP since `paint`, plus the margin.
    pub fn peak((low, high): (usize, usize)) -> usize {
        let mut a = low;
        // SAFETY: reads of the region painted above, which is plain RAM.
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
        Line { buf: [0; 1024], len: 0 }
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

fn flush(out: &mut Option<hio::HostStream>, line: &mut Line) {
    if let Some(o) = out.as_mut() {
        let _ = o.write_all(&line.buf[..line.len]);
    }
    line.len = 0;
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
