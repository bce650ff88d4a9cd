//! Puts memory.x on the linker path and embeds the feature-pipeline cases listed in the
//! file named by `EDGEFLOW_DSP_CASES` (lines `name<TAB>pipeline path<TAB>input path<TAB>
//! feed<TAB>chunk`, feed one of F32 I16 Vector Text Image; none if unset).
//! `EDGEFLOW_DSP_WORKSPACE` sets the workspace in f32 words, `EDGEFLOW_DSP_OUTPUT` the
//! output buffer in bytes.
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
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
            assert_eq!(f.len(), 5, "bad case line: {line}");
            println!("cargo:rerun-if-changed={}", f[1]);
            println!("cargo:rerun-if-changed={}", f[2]);
            code += &format!(
                "    edgeflow_dsp_harness::DspCase {{ name: {:?}, pipeline: include_bytes!({:?}), input: include_bytes!({:?}), feed: edgeflow_dsp_harness::Feed::{}, chunk: {} }},\n",
                f[0], f[1], f[2], f[3], f[4]
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
