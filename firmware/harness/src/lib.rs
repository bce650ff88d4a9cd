//! Firmware-side test and benchmark harness.
//!
//! For each embedded case (artifact + input), runs one inference in a static arena and
//! prints one line over semihosting:
//!
//! ```text
//! case <name> ok ticks=<systick ticks> stack=<peak bytes> load=<ticks of Model::parse> out=<hex of output bytes>
//! case <name> err <message>
//! ```
//!
//! then `done` and exits QEMU. SysTick counts core-clock cycles; under QEMU with
//! `-icount shift=0` and the mps2-an386 25 MHz clock, one tick is 40 instructions.
#![no_std]
#![deny(unsafe_code)]

use core::fmt::Write;

use cortex_m_semihosting::hio;
use edgeflow_firmware_support::{now, stack, Line};

pub use edgeflow_firmware_support::fail;

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

/// Runs every case, printing one line each, then `done`.
pub fn run(cases: &[Case], arena: &mut [u8]) -> ! {
    let mut out = hio::hstdout().ok();
    edgeflow_firmware_support::start_clock();
    for case in cases {
        let mut line = Line::new();
        let _ = write!(line, "case {} ", case.name);
        match run_one(case, arena) {
            Ok((ticks, stack, load, output)) => {
                let _ = write!(line, "ok ticks={ticks} stack={stack} load={load} out=");
                line.flush(&mut out);
                for b in output {
                    let _ = write!(line, "{b:02x}");
                    if line.len() > 900 {
                        line.flush(&mut out);
                    }
                }
            }
            Err(e) => {
                let _ = write!(line, "err {e}");
            }
        }
        let _ = line.write_str("\n");
        line.flush(&mut out);
    }
    edgeflow_firmware_support::finish(&mut out)
}

fn run_one<'a>(
    case: &Case,
    arena: &'a mut [u8],
) -> Result<(u64, usize, u64, &'a [u8]), edgeflow_nn::Error> {
    let loading = now();
    let model = edgeflow_nn::Model::parse(case.artifact)?;
    let load = now() - loading;
    let mut rt = edgeflow_nn::Runtime::new(&model, arena)?;
    let input = rt.input_mut(0)?;
    if input.len() != case.input.len() {
        return Err(edgeflow_nn::Error::NoSuchTensor { index: 0, count: 0 });
    }
    input.copy_from_slice(case.input);
    let painted = stack::paint();
    let mut per_op = [0u64; MAX_PROFILED_OPS];
    let t0 = now();
    if case.profile {
        let mut last = t0;
        rt.invoke_with(|i, _| {
            let t = now();
            if let Some(slot) = per_op.get_mut(i) {
                *slot = t - last;
            }
            last = t;
        })?;
    } else {
        rt.invoke()?;
    }
    let t1 = now();
    let stack = stack::peak(painted);
    if case.profile {
        let mut out = hio::hstdout().ok();
        for (i, op) in model.ops().enumerate().take(MAX_PROFILED_OPS) {
            let mut line = Line::new();
            let _ = writeln!(
                line,
                "prof {} {} {} {}",
                case.name,
                i,
                op.op.name(),
                per_op[i]
            );
            line.flush(&mut out);
        }
    }
    let n = rt.output(0)?.len();
    drop(rt);
    let start = model
        .header()
        .outputs
        .first()
        .map(|t| match t.location {
            edgeflow_nn::format::graph::Location::Arena { offset } => offset as usize,
            _ => 0,
        })
        .unwrap_or(0);
    let output = arena
        .get(start..start + n)
        .ok_or(edgeflow_nn::Error::NoSuchTensor { index: 0, count: 1 })?;
    Ok((t1 - t0, stack, load, output))
}

#[doc(hidden)]
pub use edgeflow_firmware_support as __support;

/// The whole program of a board's model harness (`firmware/<board>/src/main.rs` is this one
/// call, after `#![no_std]`, `#![no_main]` and its panic handler): the cases its build
/// script generated (`$OUT_DIR/cases.rs`, `edgeflow_firmware_build::model_app`) run in a
/// 16-byte aligned static arena of the `ARENA_BYTES` that file sets, by [`run`].
///
/// The board crate gives the rest: its `memory.x` (from `boards/<board>.toml`), its target
/// and linker scripts (`.cargo/config.toml`).
#[macro_export]
macro_rules! board_main {
    () => {
        /// Aligns embedded artifacts (flash) to 16 bytes.
        #[allow(dead_code)] // used only by the generated cases (none in an empty build)
        #[repr(C, align(16))]
        struct Aligned<T: ?Sized>(T);

        include!(concat!(env!("OUT_DIR"), "/cases.rs"));

        #[repr(C, align(16))]
        struct Arena([u8; ARENA_BYTES]);

        $crate::__support::static_main!(Arena = Arena([0; ARENA_BYTES]), "arena", |arena| {
            $crate::run(CASES, &mut arena.0)
        });
    };
}
