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
/// Buffer sizes, stack band and device id, generated from `boards/mps2-an386.toml` [app] by
/// build.rs.
mod app {
    include!(concat!(env!("OUT_DIR"), "/app.rs"));
}
use app::{
    ARENA_BYTES, DEVICE_ID, FEATURE_WORDS, STACK_BAND, SUMMARY_WORDS, TX_BYTES, WORKSPACE_WORDS,
};
use layout::{CORE_CLOCK_HZ, PAGE_BYTES, PARTITION_BYTES, SLOTS_ORIGIN, SLOT_BYTES};

/// UART0, a CMSDK APB UART (Arm CoreLink SDK DDI 0479, registers DATA, STATE, CTRL,
/// BAUDDIV; QEMU hw/char/cmsdk-apb-uart.c).
struct Uart0;

impl emulated::UartMap for Uart0 {
    const BASE: usize = 0x4000_4000;
    const DATA: usize = 0x00;
    const STATUS: usize = 0x04; // STATE
    const RX_READY: (u32, u32) = (1 << 1, 1 << 1); // RX buffer full: a byte is there
    const TX_FULL: u32 = 1 << 0; // TX buffer full
                                 // BAUDDIV = 16 (the least the UART accepts), then CTRL: TX and RX enable.
    const INIT: &'static [(usize, u32)] = &[(0x10, 16), (0x08, 0b11)];
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
    let mut link = unsafe { emulated::PolledUart::<Uart0>::take() };
    let cfg = Config {
        device_id: DEVICE_ID,
        board: "mps2-an386",
        firmware: concat!("edgeflow-app ", env!("CARGO_PKG_VERSION")),
        summary_every: 32,
    };
    emulated::run::<_, CORE_CLOCK_HZ, SLOTS_ORIGIN, PARTITION_BYTES, PAGE_BYTES>(
        &mut link, SLOT_BYTES, &cfg, mem,
    )
}
