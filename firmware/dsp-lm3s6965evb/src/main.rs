//! Runs the embedded feature-pipeline cases on this board and reports over semihosting.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use panic_semihosting as _;

include!(concat!(env!("OUT_DIR"), "/cases.rs"));

struct Buffers {
    workspace: [f32; WORKSPACE_WORDS],
    output: [u8; OUTPUT_BYTES],
}

#[entry]
fn main() -> ! {
    let b: &'static mut Buffers = match cortex_m::singleton!(: Buffers = Buffers {
        workspace: [0.0; WORKSPACE_WORDS],
        output: [0; OUTPUT_BYTES],
    }) {
        Some(b) => b,
        None => edgeflow_dsp_harness::fail("buffers already taken"),
    };
    edgeflow_dsp_harness::run(CASES, &mut b.workspace, &mut b.output)
}
