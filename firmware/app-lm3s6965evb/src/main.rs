//! The edgeflow application on QEMU lm3s6965evb (Cortex-M3, no FPU, 50 MHz).
//!
//! - Link: PL011 UART0 at 0x4000_C000 (QEMU `-serial`), polled, as `embedded-io`.
//! - Model partition (from `boards/lm3s6965evb.toml` [layout], like memory.x): flash
//!   0x0003_0000..0x0004_0000 (two 32 KiB slots, 1 KiB pages),
//!   outside the firmware's FLASH region; the artifact is read in place. Preload a slot
//!   with `-device loader,file=<partition image>,addr=0x00030000`.
//! - Updates over the link: QEMU does not emulate the Stellaris flash controller (its
//!   flash is read-only), so this driver's erase/write go to the mapped flash and have no
//!   effect under QEMU; the update is then rejected at verification and the old model keeps
//!   running, which the device reports. A real board needs its flash-controller driver
//!   here.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicUsize, Ordering};

use cortex_m_rt::entry;
use edgeflow_app::{Config, Memory, Platform};
use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use panic_semihosting as _;

const CLOCK_HZ: u64 = layout::CORE_CLOCK_HZ as u64;
/// The flash layout, generated from `boards/lm3s6965evb.toml` [layout] by build.rs.
mod layout {
    include!(concat!(env!("OUT_DIR"), "/layout.rs"));
}
use layout::{PAGE_BYTES, PARTITION_BYTES, SLOTS_ORIGIN as PARTITION, SLOT_BYTES};
const UART0: usize = 0x4000_C000;

const ARENA_BYTES: usize = 16 * 1024;
const WORKSPACE_WORDS: usize = 2 * 1024;
const SUMMARY_WORDS: usize = 1024;
const FEATURE_WORDS: usize = 512;
const TX_BYTES: usize = 4 * 1024;

/// PL011 UART, polled.
#[allow(unsafe_code)]
mod uart {
    use core::ptr::{read_volatile, write_volatile};

    const DATA: usize = 0x000;
    const STATE: usize = 0x018; // UARTFR
    const CTRL: usize = 0x030; // UARTCR
    const TX_FULL: u32 = 1 << 5; // TXFF
    const RX_EMPTY: u32 = 1 << 4; // RXFE

    pub struct Uart {
        base: usize,
    }

    impl Uart {
        /// # Safety
        /// `base` must be a PL011 UART owned by nobody else.
        pub unsafe fn new(base: usize) -> Self {
            // SAFETY: registers of the UART the caller hands over.
            unsafe {
                write_volatile((base + CTRL) as *mut u32, 0x301); // UARTEN, TXE, RXE
            }
            Uart { base }
        }

        fn reg(&self, off: usize) -> *mut u32 {
            (self.base + off) as *mut u32
        }
    }

    impl embedded_io::ErrorType for Uart {
        type Error = core::convert::Infallible;
    }

    impl embedded_io::Read for Uart {
        /// Blocks until at least one byte is there, then takes what is there.
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
            let mut n = 0;
            while n < buf.len() {
                // SAFETY: UART registers (see `new`).
                let state = unsafe { read_volatile(self.reg(STATE)) };
                if state & RX_EMPTY != 0 {
                    if n > 0 {
                        break;
                    }
                    continue;
                }
                // SAFETY: as above; reading DATA pops the receive FIFO.
                buf[n] = unsafe { read_volatile(self.reg(DATA)) } as u8;
                n += 1;
            }
            Ok(n)
        }
    }

    impl embedded_io::Write for Uart {
        fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
            for &b in buf {
                // SAFETY: UART registers (see `new`).
                while unsafe { read_volatile(self.reg(STATE)) } & TX_FULL != 0 {}
                // SAFETY: as above.
                unsafe { write_volatile(self.reg(DATA), u32::from(b)) };
            }
            Ok(buf.len())
        }

        fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }
}

/// The model partition in flash (see the module docs about writes under QEMU).
#[allow(unsafe_code)]
mod partition {
    use super::*;

    #[derive(Debug)]
    pub struct OutOfBounds;
    impl NorFlashError for OutOfBounds {
        fn kind(&self) -> NorFlashErrorKind {
            NorFlashErrorKind::OutOfBounds
        }
    }

    pub struct RamNor;

    fn check(offset: u32, len: usize) -> Result<usize, OutOfBounds> {
        let o = offset as usize;
        if o.checked_add(len).is_some_and(|e| e <= PARTITION_BYTES) {
            Ok(PARTITION + o)
        } else {
            Err(OutOfBounds)
        }
    }

    impl ErrorType for RamNor {
        type Error = OutOfBounds;
    }

    impl ReadNorFlash for RamNor {
        const READ_SIZE: usize = 1;
        fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), OutOfBounds> {
            let a = check(offset, bytes.len())?;
            for (k, b) in bytes.iter_mut().enumerate() {
                // SAFETY: inside the partition (checked), plain RAM under QEMU.
                *b = unsafe { core::ptr::read_volatile((a + k) as *const u8) };
            }
            Ok(())
        }
        fn capacity(&self) -> usize {
            PARTITION_BYTES
        }
    }

    impl NorFlash for RamNor {
        const WRITE_SIZE: usize = 4;
        const ERASE_SIZE: usize = PAGE_BYTES;
        fn erase(&mut self, from: u32, to: u32) -> Result<(), OutOfBounds> {
            let a = check(from, to.saturating_sub(from) as usize)?;
            for k in 0..(to - from) as usize {
                // SAFETY: inside the partition (checked); the application never erases the
                // slot it is reading in place.
                unsafe { core::ptr::write_volatile((a + k) as *mut u8, 0xFF) };
            }
            Ok(())
        }
        fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), OutOfBounds> {
            let a = check(offset, bytes.len())?;
            for (k, &b) in bytes.iter().enumerate() {
                let p = (a + k) as *mut u8;
                // SAFETY: as in `erase`; NOR programming only clears bits.
                unsafe { core::ptr::write_volatile(p, core::ptr::read_volatile(p) & b) };
            }
            Ok(())
        }
    }

    /// The partition bytes `[offset, offset + len)`, read in place.
    pub fn mapped(offset: u32, len: u32) -> &'static [u8] {
        match check(offset, len as usize) {
            // SAFETY: inside the partition (checked). The application reads only the active
            // slot through this view and writes only the other slot while it is alive (the
            // two slots do not overlap); it drops the view before that slot is rewritten.
            Ok(a) => unsafe { core::slice::from_raw_parts(a as *const u8, len as usize) },
            Err(_) => &[],
        }
    }
}

/// Peak stack by painting, at boot, all the RAM the stack can grow into: from the end of
/// the statics (cortex-m-rt's `__sheap`, where its linker script ends `.bss`/`.uninit`)
/// up to just below the stack pointer. (A fixed band of 8 KiB capped the reported high
/// water near 8.4 KB while the static bound, `tests/tests/app_stack.rs`, is ~29 KB.)
#[allow(unsafe_code)]
mod stack {
    use super::*;
    const MARGIN: usize = 256;
    const PATTERN: u32 = 0xC5C5_C5C5;
    pub static LOW: AtomicUsize = AtomicUsize::new(0);
    pub static HIGH: AtomicUsize = AtomicUsize::new(0);

    extern "C" {
        static mut __sheap: u8;
    }

    pub fn paint() {
        let sp = cortex_m::register::msp::read() as usize;
        let high = sp.saturating_sub(MARGIN) & !3;
        // Taking the address of a linker symbol does not read it.
        let low = (core::ptr::addr_of!(__sheap) as usize + 3) & !3;
        let mut a = low;
        while a < high {
            // SAFETY: [__sheap, SP - 256) lies between the end of the statics and the live
            // stack (cortex-m-rt puts the stack at the top of RAM growing down; nothing
            // uses a heap), below every live frame: writing it aliases no Rust object.
            unsafe { core::ptr::write_volatile(a as *mut u32, PATTERN) };
            a += 4;
        }
        LOW.store(low, Ordering::Relaxed);
        HIGH.store(high.max(low), Ordering::Relaxed);
    }

    pub fn peak() -> u32 {
        let (low, high) = (LOW.load(Ordering::Relaxed), HIGH.load(Ordering::Relaxed));
        let mut a = low;
        // SAFETY: reads of the band painted above (plain RAM).
        while a < high && unsafe { core::ptr::read_volatile(a as *const u32) } == PATTERN {
            a += 4;
        }
        (high - a + MARGIN) as u32
    }
}

struct Board;

impl Platform for Board {
    fn now_us(&self) -> u64 {
        edgeflow_firmware_support::now() / (CLOCK_HZ / 1_000_000)
    }
    fn cycles(&self) -> u64 {
        edgeflow_firmware_support::now()
    }
    fn mapped(&self, offset: u32, len: u32) -> &'static [u8] {
        partition::mapped(offset, len)
    }
    fn stack_peak(&self) -> u32 {
        stack::peak()
    }
    fn exit(&self) -> ! {
        cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_SUCCESS);
        #[allow(clippy::empty_loop)]
        loop {}
    }
}

#[repr(C, align(16))]
struct Buffers {
    arena: [u8; ARENA_BYTES],
    workspace: [f32; WORKSPACE_WORDS],
    summary: [u32; SUMMARY_WORDS],
    features: [f32; FEATURE_WORDS],
    tx: [u8; TX_BYTES],
}

#[allow(unsafe_code)]
static mut BUFFERS: Buffers = Buffers {
    arena: [0; ARENA_BYTES],
    workspace: [0.0; WORKSPACE_WORDS],
    summary: [0; SUMMARY_WORDS],
    features: [0.0; FEATURE_WORDS],
    tx: [0; TX_BYTES],
};

#[entry]
fn main() -> ! {
    edgeflow_firmware_support::start_clock();
    stack::paint();
    #[allow(unsafe_code)]
    // SAFETY: `main` runs once and is the only code that touches BUFFERS; the reference
    // is unique for the rest of the program.
    let b: &'static mut Buffers = unsafe { &mut *core::ptr::addr_of_mut!(BUFFERS) };
    #[allow(unsafe_code)]
    // SAFETY: UART0 is used by nothing else in this firmware.
    let mut link = unsafe { uart::Uart::new(UART0) };
    let cfg = Config {
        device_id: 0x6C6D_3373_0000_0001, // "lm3s" + 1; QEMU has no unique id
        board: "lm3s6965evb",
        firmware: concat!("edgeflow-app ", env!("CARGO_PKG_VERSION")),
        summary_every: 32,
    };
    edgeflow_app::run(
        &mut link,
        &mut edgeflow_app::NoSensor,
        partition::RamNor,
        0,
        SLOT_BYTES,
        &Board,
        &cfg,
        Memory {
            workspace: &mut b.workspace,
            arena: &mut b.arena,
            summary: &mut b.summary,
            features: &mut b.features,
            tx: &mut b.tx,
        },
    )
}
