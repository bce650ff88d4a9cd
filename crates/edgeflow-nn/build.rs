//! Sets `cfg(edgeflow_arm_dsp)` for Arm targets with the DSP extension (SMLAD, SXTB16),
//! where the int8 kernels use their packed 16-bit inner loops (`src/kernels/arch/arm_dsp.rs`).
//!
//! Stable Rust does not report Arm target features to `cfg`, so the target name decides:
//! `thumbv7em-*` (Cortex-M4/M7) always has the extension; other Arm targets qualify when
//! the compiler reports the `dsp` feature (nightly, or `-C target-feature=+dsp`).
//! `EDGEFLOW_NN_PORTABLE=1` forces the portable kernels (for comparisons).

use std::env;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(edgeflow_arm_dsp)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=EDGEFLOW_NN_PORTABLE");
    let var = |k: &str| env::var(k).unwrap_or_default();
    if var("EDGEFLOW_NN_PORTABLE") == "1" || var("CARGO_CFG_TARGET_ARCH") != "arm" {
        return;
    }
    let dsp_feature = var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|f| f == "dsp");
    if var("TARGET").starts_with("thumbv7em") || dsp_feature {
        println!("cargo::rustc-cfg=edgeflow_arm_dsp");
    }
}
