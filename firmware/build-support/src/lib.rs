//! Build-script support for the firmware apps (`firmware/<app>/build.rs` is one call).
//!
//! Every app's folder holds its board's `memory.x`; these functions put it on the linker
//! path and generate `$OUT_DIR/cases.rs`, the cases the firmware runs, from a list file
//! named by an environment variable (written by the host test suite or `cargo xtask`).
//! Build scripts may panic: a bad list is a build error with the offending line.

use std::{env, fs, path::PathBuf};

/// Copies `memory.x` from the app folder to `OUT_DIR` and adds it to the linker search
/// path; returns `OUT_DIR`.
pub fn link_memory_x() -> PathBuf {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    out
}

/// For model apps (`firmware/<board>`): links memory.x and embeds the cases listed in the file named by
/// `EDGEFLOW_CASES` (lines `name<TAB>artifact path<TAB>input path`; none if unset).
/// `EDGEFLOW_ARENA` sets the arena bytes; `EDGEFLOW_PROFILE=1` reports ticks per op.
pub fn model_app() {
    let out = link_memory_x();
    println!("cargo:rerun-if-env-changed=EDGEFLOW_CASES");
    println!("cargo:rerun-if-env-changed=EDGEFLOW_ARENA");
    println!("cargo:rerun-if-env-changed=EDGEFLOW_PROFILE");
    let profile = env::var("EDGEFLOW_PROFILE").is_ok_and(|v| v == "1");
    let mut code = String::from("pub static CASES: &[edgeflow_firmware_harness::Case] = &[\n");
    if let Some(list) = env::var_os("EDGEFLOW_CASES") {
        println!("cargo:rerun-if-changed={}", PathBuf::from(&list).display());
        let text = fs::read_to_string(&list).expect("read EDGEFLOW_CASES list");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 3, "bad case line: {line}");
            println!("cargo:rerun-if-changed={}", f[1]);
            println!("cargo:rerun-if-changed={}", f[2]);
            code += &format!(
                "    edgeflow_firmware_harness::Case {{ name: {:?}, artifact: &Aligned(*include_bytes!({:?})).0, input: include_bytes!({:?}), profile: {profile} }},\n",
                f[0], f[1], f[2]
            );
        }
    }
    code += "];\n";
    let arena: usize = env::var("EDGEFLOW_ARENA")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16 * 1024);
    code += &format!("pub const ARENA_BYTES: usize = {arena};\n");
    fs::write(out.join("cases.rs"), code).expect("write cases.rs");
}

/// For feature-pipeline apps (`firmware/dsp-<board>`): links memory.x and embeds the feature-pipeline cases listed in the
/// file named by `EDGEFLOW_DSP_CASES` (lines `name<TAB>pipeline path<TAB>input path<TAB>
/// feed<TAB>chunk`, feed one of F32 I16 Vector Text Image; none if unset).
/// `EDGEFLOW_DSP_WORKSPACE` sets the workspace in f32 words, `EDGEFLOW_DSP_OUTPUT` the
/// output buffer in bytes.
pub fn dsp_app() {
    let out = link_memory_x();
    for v in [
        "EDGEFLOW_DSP_CASES",
        "EDGEFLOW_DSP_WORKSPACE",
        "EDGEFLOW_DSP_OUTPUT",
    ] {
        println!("cargo:rerun-if-env-changed={v}");
    }
    let mut code = String::from("pub static CASES: &[edgeflow_dsp_harness::DspCase] = &[\n");
    if let Some(list) = env::var_os("EDGEFLOW_DSP_CASES") {
        println!("cargo:rerun-if-changed={}", PathBuf::from(&list).display());
        let text = fs::read_to_string(&list).expect("read EDGEFLOW_DSP_CASES list");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split('\t').collect();
            // name, pipeline file, input file, feed, chunk[, tables file]
            assert!(f.len() == 5 || f.len() == 6, "bad case line: {line}");
            println!("cargo:rerun-if-changed={}", f[1]);
            println!("cargo:rerun-if-changed={}", f[2]);
            let tables = match f.get(5) {
                Some(t) => {
                    println!("cargo:rerun-if-changed={t}");
                    format!("include_bytes!({t:?})")
                }
                None => "&[]".to_string(),
            };
            code += &format!(
                "    edgeflow_dsp_harness::DspCase {{ name: {:?}, pipeline: include_bytes!({:?}), input: include_bytes!({:?}), feed: edgeflow_dsp_harness::Feed::{}, chunk: {}, tables: {} }},\n",
                f[0], f[1], f[2], f[3], f[4], tables
            );
        }
    }
    code += "];\n";
    let num = |k: &str, d: usize| env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    code += &format!(
        "pub const WORKSPACE_WORDS: usize = {};\npub const OUTPUT_BYTES: usize = {};\n",
        num("EDGEFLOW_DSP_WORKSPACE", 16),
        num("EDGEFLOW_DSP_OUTPUT", 16)
    );
    fs::write(out.join("cases.rs"), code).expect("write cases.rs");
}
