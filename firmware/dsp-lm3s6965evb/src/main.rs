//! Runs the embedded feature-pipeline cases on this board and reports over semihosting (the
//! program is `edgeflow_dsp_harness::board_main!`; this crate gives the board: build.rs and
//! `.cargo/config.toml`).
#![no_std]
#![no_main]

use panic_semihosting as _;

edgeflow_dsp_harness::board_main!();
