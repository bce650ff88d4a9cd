//! Puts memory.x on the linker path and embeds the cases listed in the file named by
//! `EDGEFLOW_CASES` (lines `name<TAB>artifact path<TAB>input path`; none if unset).
//! `EDGEFLOW_ARENA` sets the arena bytes; `EDGEFLOW_PROFILE=1` reports ticks per op.
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
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
    let arena: usize = env::var("EDGEFLOW_ARENA").ok().and_then(|v| v.parse().ok()).unwrap_or(16 * 1024);
    code += &format!("pub const ARENA_BYTES: usize = {arena};\n");
    fs::write(out.join("cases.rs"), code).expect("write cases.rs");
}
