//! The edgeflow application on QEMU mps2-an386 (Cortex-M4F, 25 MHz).
//!
//! - Link: CMSDK APB UART0 at 0x4000_4000 (QEMU `-serial`), polled, as `embedded-io`.
//! - Model partition (from `boards/mps2-an386.toml` [layout], like memory.x): SSRAM1
//!   0x0010_0000..0x0030_0000 (two 1 MiB slots), outside the
//!   firmware's FLASH region. QEMU emulates SSRAM1 as RAM, so the driver (`edgeflow_app::emulated::MappedNor`) gives it NOR
//!   semantics (erase sets 0xFF in 4 KiB sectors, a write only clears bits) and the
//!   artifact is read in place, as from memory-mapped flash. `edgeflow flash` preloads a
//!   slot with `-device loader,file=<partition image>,addr=0x00100000`.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use edgeflow_app::emulated;
use edgeflow_app::Config;
use panic_semihosting as _;

/// The flash layout, generated from `boards/mps2-an386.toml` [layout] by build.rs.
mod layout {
    include!(concat!(env!("OUT_DIR"), "/layout.rs"));
}
use layout::{CORE_CLOCK_HZ, PAGE_BYTES, PARTITION_BYTES, SLOTS_ORIGIN, SLOT_BYTES};
const UART0: usize = 0x4000_4000;
/// Stack painting at boot: a 64 KiB band below the stack pointer (RAM is 4 MiB, the statics
/// about 1 MiB at its bottom; painting all of it would slow every boot).
const STACK_BAND: usize = 64 * 1024;

const ARENA_BYTES: usize = 256 * 1024;
const WORKSPACE_WORDS: usize = 64 * 1024;
const SUMMARY_WORDS: usize = 32 * 1024;
const FEATURE_WORDS: usize = 16 * 1024;
const TX_BYTES: usize = 160 * 1024;

/// CMSDK APB UART, polled.
#[allow(unsafe_code)]
mod uart {
    use core::ptr::{read_volatile, write_volatile};

    const DATA: usize = 0x00;
    const STATE: usize = 0x04;
    const CTRL: usize = 0x08;
    const BAUDDIV: usize = 0x10;
    const TX_FULL: u32 = 1;
    const RX_FULL: u32 = 2;

    pub struct Uart {
        base: usize,
    }

    impl Uart {
        /// # Safety
        /// `base` must be a CMSDK APB UART owned by nobody else.
        pub unsafe fn new(base: usize) -> Self {
            // SAFETY: registers of the UART the caller hands over.
            unsafe {
                write_volatile((base + BAUDDIV) as *mut u32, 16);
                write_volatile((base + CTRL) as *mut u32, 0b11); // TX and RX enable
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
                if state & RX_FULL == 0 {
                    if n > 0 {
                        break;
                    }
                    continue;
                }
                // SAFETY: as above; reading DATA clears RX_FULL.
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
        device_id: 0x6D70_7332_0000_0001, // "mps2" + 1; QEMU has no unique id
        board: "mps2-an386",
        firmware: concat!("edgeflow-app ", env!("CARGO_PKG_VERSION")),
        summary_every: 32,
    };
    emulated::run::<_, CORE_CLOCK_HZ, SLOTS_ORIGIN, PARTITION_BYTES, PAGE_BYTES>(
        &mut link, SLOT_BYTES, &cfg, mem,
    )
}
