//! What the firmware harnesses (`harness` for models, `dsp-harness` for feature pipelines)
//! share: a SysTick cycle clock, peak-stack measurement by painting, a fixed-size line
//! buffer written over semihosting, a fatal exit, and the entry point of both programs
//! ([`static_main!`], under each harness's `board_main!`). The emulated boards' applications use
//! the clock too (through `edgeflow_app::emulated`).
//!
//! SysTick counts core-clock cycles; under QEMU with `-icount shift=0` on the mps2-an386
//! 25 MHz clock, one tick is 40 instructions.
#![no_std]
#![deny(unsafe_code)]

use core::fmt::Write;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;
use cortex_m_semihosting::hio;

static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

const RELOAD: u32 = 0x00FF_FFFF;

/// Starts SysTick on the core clock, counting wraps in its interrupt. Returns `false` if
/// the core peripherals were already taken (then [`now`] stays at 0).
pub fn start_clock() -> bool {
    match cortex_m::Peripherals::take() {
        Some(mut cp) => {
            cp.SYST.set_clock_source(SystClkSource::Core);
            cp.SYST.set_reload(RELOAD);
            cp.SYST.clear_current();
            cp.SYST.enable_interrupt();
            cp.SYST.enable_counter();
            true
        }
        None => false,
    }
}

/// Core-clock cycles since [`start_clock`] (wraps of the 24-bit counter included).
pub fn now() -> u64 {
    loop {
        let w1 = WRAPS.load(Ordering::Relaxed);
        let v = SYST::get_current();
        let w2 = WRAPS.load(Ordering::Relaxed);
        if w1 == w2 {
            return w1 as u64 * (RELOAD as u64 + 1) + (RELOAD.saturating_sub(v)) as u64;
        }
    }
}

/// Peak stack measurement by painting: fill the free stack below the current stack
/// pointer with a pattern, run, then find the deepest overwritten byte.
#[allow(unsafe_code)]
pub mod stack {
    const PATTERN: u8 = 0xC5;
    /// Bytes left untouched just below the current SP (the caller's own frame).
    const MARGIN: usize = 256;

    extern "C" {
        static mut __sheap: u8;
    }

    /// Paints from the end of static data up to SP - MARGIN; returns the painted range.
    pub fn paint() -> (usize, usize) {
        let sp = cortex_m::register::msp::read() as usize;
        // Taking the address of a linker symbol does not read it.
        let low = core::ptr::addr_of!(__sheap) as usize;
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

    /// Stack bytes used below the painting point since `paint`, plus the margin.
    pub fn peak((low, high): (usize, usize)) -> usize {
        let mut a = low;
        // SAFETY: reads of the region painted above, which is plain RAM.
        while a < high && unsafe { core::ptr::read_volatile(a as *const u8) } == PATTERN {
            a += 1;
        }
        (high - a) + MARGIN
    }
}

/// A 1 KiB line buffer for `write!`, sent to the host with [`Line::flush`]. Text past the
/// capacity is refused (`fmt::Error`), never a panic.
pub struct Line {
    buf: [u8; 1024],
    len: usize,
}

impl Default for Line {
    fn default() -> Self {
        Self::new()
    }
}

impl Line {
    /// An empty line.
    pub const fn new() -> Self {
        Line {
            buf: [0; 1024],
            len: 0,
        }
    }

    /// Bytes buffered.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes the buffered bytes to the host (if semihosting is up) and empties the buffer.
    pub fn flush(&mut self, out: &mut Option<hio::HostStream>) {
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
        let dst = self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        dst.copy_from_slice(b);
        self.len = end;
        Ok(())
    }
}

/// Prints `done` and exits QEMU successfully.
pub fn finish(out: &mut Option<hio::HostStream>) -> ! {
    if let Some(o) = out.as_mut() {
        let _ = o.write_str("done\n");
    }
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_SUCCESS);
    #[allow(clippy::empty_loop)]
    loop {}
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

#[doc(hidden)]
pub use cortex_m as __cortex_m;
#[doc(hidden)]
pub use cortex_m_rt as __cortex_m_rt;

/// The entry point of a harness program (the `board_main!` of `harness` and of
/// `dsp-harness`): takes the program's static buffers once (`cortex_m::singleton!`: a
/// `$state` initialised by `$init`, placed in `.bss`/`.data`, not on the stack), binds them
/// to `$s` and runs `$run`, which never returns. Were they taken twice (they cannot be:
/// `main` runs once), the program reports `fatal $what already taken` by [`fail`].
#[macro_export]
macro_rules! static_main {
    ($state:ty = $init:expr, $what:literal, |$s:ident| $run:expr) => {
        #[$crate::__cortex_m_rt::entry]
        fn main() -> ! {
            let $s: &'static mut $state = match $crate::__cortex_m::singleton!(: $state = $init) {
                Some(s) => s,
                None => $crate::fail(concat!($what, " already taken")),
            };
            $run
        }
    };
}
