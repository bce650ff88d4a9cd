//! The edgeflow application on QEMU lm3s6965evb (Cortex-M3, no FPU, 50 MHz).
//!
//! - Link: PL011 UART0 at 0x4000_C000 (QEMU `-serial`), polled, as `embedded-io`.
//! - Model partition (from `boards/lm3s6965evb.toml` [layout], like memory.x): flash
//!   0x0003_0800..0x0004_0000 (two 31 KiB slots, 1 KiB pages),
//!   outside the firmware's FLASH region; the artifact is read in place. Preload a slot
//!   with `-device loader,file=<partition image>,addr=0x00030800`.
//! - Updates over the link: QEMU does not emulate the Stellaris flash controller (its
//!   flash is read-only), so this driver's erase/write go to the mapped flash and have no
//!   effect under QEMU; the update is then rejected at verification and the old model keeps
//!   running, which the device reports. A real board needs its flash-controller driver
//!   here (see [`edgeflow_app::emulated::MappedNor`]).
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use edgeflow_app::emulated;
use edgeflow_app::Config;
use panic_semihosting as _;

/// The flash layout, generated from `boards/lm3s6965evb.toml` [layout] by build.rs.
mod layout {
    include!(concat!(env!("OUT_DIR"), "/layout.rs"));
}
use layout::{CORE_CLOCK_HZ, PAGE_BYTES, PARTITION_BYTES, SLOTS_ORIGIN, SLOT_BYTES};
const UART0: usize = 0x4000_C000;
/// Stack painting at boot: all the RAM the stack can grow into (from the end of the
/// statics). (A fixed band of 8 KiB capped the reported high water near 8.4 KB while the
/// static bound, `tests/tests/app_stack.rs`, is ~29 KB.)
const STACK_BAND: usize = usize::MAX;

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

#[entry]
fn main() -> ! {
    emulated::boot::<STACK_BAND>();
    #[allow(unsafe_code)]
    // SAFETY: `main` runs once, and this is the only use of these buffers.
    let mem = unsafe {
        edgeflow_app::static_memory!(
            ARENA_BYTES,
            WORKSPACE_WORDS,
            SUMMARY_WORDS,
            FEATURE_WORDS,
            TX_BYTES
        )
    };
    #[allow(unsafe_code)]
    // SAFETY: UART0 is used by nothing else in this firmware.
    let mut link = unsafe { uart::Uart::new(UART0) };
    let cfg = Config {
        device_id: 0x6C6D_3373_0000_0001, // "lm3s" + 1; QEMU has no unique id
        board: "lm3s6965evb",
        firmware: concat!("edgeflow-app ", env!("CARGO_PKG_VERSION")),
        summary_every: 32,
    };
    emulated::run::<_, CORE_CLOCK_HZ, SLOTS_ORIGIN, PARTITION_BYTES, PAGE_BYTES>(
        &mut link, SLOT_BYTES, &cfg, mem,
    )
}
