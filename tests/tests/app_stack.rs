//! The device application's worst-case stack fits in the RAM each board leaves for it.
//!
//! Nothing guards the stack on these cores: a stack that grows into the statics corrupts
//! them silently (as when the audio front end grew `edgeflow_app::run`'s frame from
//! 23,936 to 36,608 bytes on lm3s6965evb, which leaves 30,548: the device just stopped
//! answering). This test builds each board's application as the device tests do and
//! bounds its stack statically (`edgeflow_tests::stack`: Thumb-2 frames and call graph
//! from the ELF, plus the deepest exception), failing with the numbers and the deepest
//! path when the bound exceeds the initial stack pointer minus the end of the statics,
//! and naming the cycle when the call graph has one (a recursive path would be counted
//! once, so there would be no bound).
//!
//! Without the board's Rust target (or QEMU, which `toolchain_missing` also checks) the
//! test fails, unless `EDGEFLOW_SKIP_QEMU=1` asks to skip it (the reason is printed).

use edgeflow_tests::{device, firmware, stack};

/// The one recursion the analysis finds in the applications, and why it is bounded:
/// `core::fmt::write` calls each argument's `fmt` through a vtable, which may call
/// `write_fmt` and so `write` again, as deep as format arguments nest (a few levels, from
/// the logger and the panic handler). Any other cycle fails the test.
const BOUNDED_RECURSION: &[&str] = &["4core3fmt5write", "core::fmt::Write::write_fmt"];

fn check(board_name: &str) {
    let board = firmware::board(board_name);
    if let Some(why) = firmware::toolchain_missing(&board) {
        println!("skipped: {why}");
        return;
    }
    let elf = device::build_app(&board).unwrap_or_else(|e| panic!("{e}"));
    let bytes = std::fs::read(&elf).unwrap_or_else(|e| panic!("{}: {e}", elf.display()));
    let fpu = board.target.ends_with("eabihf");
    let r = stack::analyse(&bytes, fpu).unwrap_or_else(|e| panic!("{}: {e}", elf.display()));
    let text = r.describe();
    println!("{board_name}: {text}");
    assert!(
        r.dynamic.is_empty(),
        "{board_name}: stack changed by a register, cannot bound it:\n{text}"
    );
    // A recursive path would be counted once: with a cycle there is no bound.
    if let Err(e) = r.check_acyclic_except(BOUNDED_RECURSION) {
        panic!("{board_name}: {e}\n{text}");
    }
    // The application's own frame must have been found (a decoding slip would give a
    // bound of a few hundred bytes and pass for the wrong reason).
    assert!(
        r.path.iter().any(|f| f.name.ends_with("edgeflow_app::run")),
        "{board_name}: edgeflow_app::run is not on the deepest path:\n{text}"
    );
    assert!(
        r.worst <= r.available,
        "{board_name}: the application's worst-case stack exceeds the RAM the board leaves \
         for it, by {} B:\n{text}",
        r.worst - r.available
    );
}

#[test]
fn cortex_m3_app_stack_fits_lm3s6965evb() {
    check("lm3s6965evb");
}

#[test]
fn cortex_m4f_app_stack_fits_mps2_an386() {
    check("mps2-an386");
}

#[test]
fn cortex_m4f_app_stack_fits_nucleo_f411re() {
    check("nucleo-f411re");
}
