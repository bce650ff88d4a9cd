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
/// Buffer sizes, stack band and device id, generated from `boards/lm3s6965evb.toml` [app] by
/// build.rs.
mod app {
    include!(concat!(env!("OUT_DIR"), "/app.rs"));
}
use app::{
    ARENA_BYTES, DEVICE_ID, FEATURE_WORDS, STACK_BAND, SUMMARY_WORDS, TX_BYTES, WORKSPACE_WORDS,
};
use layout::{CORE_CLOCK_HZ, PAGE_BYTES, PARTITION_BYTES, SLOTS_ORIGIN, SLOT_BYTES};

/// UART0, a PL011 (ARM PrimeCell UART TRM DDI 0183, registers UARTDR, UARTFR, UARTCR;
/// QEMU hw/char/pl011.c).
struct Uart0;

impl emulated::UartMap for Uart0 {
    const BASE: usize = 0x4000_C000;
    const DATA: usize = 0x000; // UARTDR
    const STATUS: usize = 0x018; // UARTFR
    const RX_READY: (u32, u32) = (1 << 4, 0); // RXFE clear: the receive FIFO has a byte
    const TX_FULL: u32 = 1 << 5; // TXFF
    const INIT: &'static [(usize, u32)] = &[(0x030, 0x301)]; // UARTCR: UARTEN, TXE, RXE
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
        board: "lm3s6965evb",
        firmware: concat!("edgeflow-app ", env!("CARGO_PKG_VERSION")),
        summary_every: 32,
    };
    emulated::run::<_, CORE_CLOCK_HZ, SLOTS_ORIGIN, PARTITION_BYTES, PAGE_BYTES>(
        &mut link, SLOT_BYTES, &cfg, mem,
    )
}
