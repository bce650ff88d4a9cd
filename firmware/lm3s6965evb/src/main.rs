//! Runs the embedded edgeflow cases on this board and reports over semihosting.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use panic_semihosting as _;

/// Aligns embedded artifacts (flash) to 16 bytes.
#[allow(dead_code)] // used only by the generated cases (none in an empty build)
#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);

include!(concat!(env!("OUT_DIR"), "/cases.rs"));

#[repr(C, align(16))]
struct Arena([u8; ARENA_BYTES]);

#[entry]
fn main() -> ! {
    let arena: &'static mut Arena = match cortex_m::singleton!(: Arena = Arena([0; ARENA_BYTES])) {
        Some(a) => a,
        None => edgeflow_firmware_harness::fail("arena already taken"),
    };
    edgeflow_firmware_harness::run(CASES, &mut arena.0)
}
