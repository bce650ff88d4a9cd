//! `cargo xtask footprint [DIR]`: run-time code size and peak stack in `invoke` per MLPerf
//! Tiny model, with only that model's kernels linked, measured the way TFLM's figures in
//! `../shared/benchmarks/mlperf-tiny/README.md` are (".text less model and harness").
//!
//! For each model: convert it, list its ops, build the `mps2-an386` benchmark firmware
//! (`firmware/mps2-an386`, release: O3, fat LTO) with that one model embedded and
//! `EDGEFLOW_NN_OPS` set to its ops (and `EDGEFLOW_NN_GROUPED_CONV=0` /
//! `EDGEFLOW_NN_DW_GENERAL=0` / `EDGEFLOW_NN_ADD_BROADCAST=0` unless it has a grouped
//! convolution / a depthwise one other than 3x3 with depth multiplier 1 / an ADD other than
//! int8 with both inputs of the output's shape), run it under QEMU (output checked against TFLM's, peak
//! stack in `invoke` by stack painting), and size the ELF. The same firmware with no model
//! embedded (the harness alone: the run-time is dead code and is not linked) is the
//! baseline, so
//!
//! ```text
//! run-time code = flash text (model firmware) - artifact - input - flash text (no model)
//! ```
//!
//! where "flash text" is the `text` column of `arm-none-eabi-size` (vector table, code,
//! read-only data). It counts the artifact parser, executor, kernels, libm and compiler
//! helpers, and also what the harness adds only when it has a case to run: its result
//! formatting (`core::fmt` and the errors' `Display`, ~6 KB) and its case loop, which TFLM's
//! ".text less model and harness" leaves out. So a second figure, like for like with
//! TFLM's, subtracts those too, attributed by symbol ([`firmware::code_by_origin`]):
//!
//! ```text
//! like for like = run-time code - (formatting + harness)(model firmware)
//!                               + (formatting + harness)(no-model firmware)
//! ```
//!
//! (the no-model firmware's own formatting and harness symbols are already in its flash
//! text, so only the growth is taken off). The same model with every kernel linked is
//! measured too (first figure only).
//!
//! `EDGEFLOW_FOOTPRINT_PROFILE=release-small` builds every firmware with the firmware
//! workspace's size profile (opt-level "s", fat LTO) instead of `release` (O3): the size
//! class of TFLM's reference build (framework -Os, kernels -O2), whose figures the table
//! quotes. An opt-level "s" or "z" build also selects edgeflow-nn's size-class kernel
//! paths (`cfg(edgeflow_size)`, `crates/edgeflow-nn/build.rs`). With
//! `EDGEFLOW_NN_PORTABLE=1` as well, the portable kernels replace the Cortex-M4 DSP ones.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use edgeflow_tests::firmware::{self, Case};
use edgeflow_tests::{compare, load_npy, root};

/// TFLM's figures (reference kernels): code (.text less model and harness), stack in
/// invoke and instructions per inference, from `../shared/benchmarks/mlperf-tiny/README.md`.
const TFLM: [(&str, &str, &str, &str); 4] = [
    ("kws", "41.4 KB", "776", "43,023,520"),
    ("ic", "52.7 KB", "824", "107,403,240"),
    ("ad", "20.7 KB", "504", "1,952,360"),
    ("vww", "68.5 KB", "776", "100,250,960"),
];

pub fn run(dir: Option<PathBuf>) -> Result<()> {
    let dir = dir.unwrap_or_else(|| root().join("../shared/benchmarks/mlperf-tiny"));
    let board = firmware::board("mps2-an386");
    if let Some(why) = firmware::toolchain_missing(&board) {
        anyhow::bail!("cannot measure: {why}");
    }
    let t = Duration::from_secs(1800);
    let cargo_profile = std::env::var("EDGEFLOW_FOOTPRINT_PROFILE")
        .ok()
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| "release".into());
    let portable = std::env::var("EDGEFLOW_NN_PORTABLE").is_ok_and(|v| v == "1");
    // Overrides that change the code measured: `EDGEFLOW_NN_SIZE` (edgeflow-nn's
    // size-class paths, otherwise chosen from the opt-level) and the size profile's
    // opt-level (kept through to the firmware build by `firmware::build_with_profile`).
    let overrides: Vec<String> = ["EDGEFLOW_NN_SIZE", "CARGO_PROFILE_RELEASE_SMALL_OPT_LEVEL"]
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| format!("{k}={v}")))
        .collect();
    println!(
        "== cargo profile {cargo_profile}, {} kernels{}",
        if portable {
            "portable"
        } else {
            "Cortex-M4 DSP"
        },
        if overrides.is_empty() {
            String::new()
        } else {
            format!(", {}", overrides.join(", "))
        }
    );
    let build = |cases: &[Case], arena: usize, sel: Option<&firmware::KernelSet>| {
        firmware::build_with_profile(&board, cases, arena, false, sel, &cargo_profile)
            .map_err(anyhow::Error::msg)
    };
    println!("== harness alone (no model)");
    let empty = build(&[], 16, None)?;
    let base = firmware::flash_text_bytes(&empty).map_err(anyhow::Error::msg)?;
    println!("flash text with no model: {base} B");
    let harness_part = |elf: &Path, input_len: u64| -> Result<u64> {
        let origin = firmware::code_by_origin(elf, input_len).map_err(anyhow::Error::msg)?;
        Ok(origin
            .iter()
            .filter(|(o, _)| matches!(*o, "formatting" | "harness"))
            .map(|(_, b)| b)
            .sum())
    };
    let base_harness = harness_part(&empty, 0)?;
    println!("formatting + harness symbols with no model: {base_harness} B");
    // `EDGEFLOW_FOOTPRINT_MODELS=kws,ad` measures only those models, and
    // `EDGEFLOW_FOOTPRINT_ALL_OPS=0` skips the every-op builds (quicker runs while
    // working; the published tables come from a full run).
    let only = std::env::var("EDGEFLOW_FOOTPRINT_MODELS").unwrap_or_default();
    let all_ops = !std::env::var("EDGEFLOW_FOOTPRINT_ALL_OPS").is_ok_and(|v| v == "0");
    let mut rows = Vec::new();
    for (m, tflm_code, tflm_stack, tflm_instructions) in TFLM {
        if !only.is_empty() && !only.split(',').any(|o| o.trim().eq_ignore_ascii_case(m)) {
            continue;
        }
        let tflite = std::fs::read(dir.join(format!("{m}.tflite")))
            .with_context(|| format!("{m}.tflite in {}", dir.display()))?;
        let c = edgeflow_compile::compile(&tflite, m)?;
        let input = load_npy(&dir.join(format!("{m}_input.npy"))).bytes();
        let expected = load_npy(&dir.join(format!("{m}_output_tflm.npy")));
        // The model's ops, and the grouped-CONV_2D, general-depthwise and broadcasting-ADD
        // kernels only for a model that has one (variants the op list cannot name).
        let kernels = firmware::KernelSet::of(&c.artifact).map_err(anyhow::Error::msg)?;
        let case = Case {
            name: m.into(),
            artifact: c.artifact.clone(),
            input: input.clone(),
        };
        let cases = [case];
        let mut sizes = Vec::new();
        let mut stack = 0;
        let mut instructions = 0;
        let mut like_for_like = 0;
        let mut load = 0;
        let builds: &[(&str, Option<&firmware::KernelSet>)] = if all_ops {
            &[("model's ops", Some(&kernels)), ("all ops", None)]
        } else {
            &[("model's ops", Some(&kernels))]
        };
        for &(label, sel) in builds {
            println!(
                "== {m}: firmware with {label} ({})",
                sel.map_or("every op", |k| k.ops.as_str())
            );
            let elf = build(&cases, c.arena_bytes.max(16), sel)?;
            let text = firmware::flash_text_bytes(&elf).map_err(anyhow::Error::msg)?;
            let runtime = text as i64 - c.artifact.len() as i64 - input.len() as i64 - base as i64;
            sizes.push((text, runtime));
            if sel.is_some() {
                let reports = firmware::run_elf(&board, &elf, t).map_err(anyhow::Error::msg)?;
                let r = reports
                    .get(m)
                    .with_context(|| format!("no report for {m}"))?;
                let out = r
                    .output
                    .as_ref()
                    .map_err(|e| anyhow::anyhow!("{m} failed on the device: {e}"))?;
                compare(out, &expected)
                    .map_err(|e| anyhow::anyhow!("{m}: device output differs from TFLM: {e}"))?;
                stack = r.stack;
                let origin = firmware::code_by_origin(&elf, input.len() as u64)
                    .map_err(anyhow::Error::msg)?;
                let parts: Vec<String> = origin.iter().map(|(o, b)| format!("{o} {b}")).collect();
                println!(
                    "{m}: flash bytes by origin (symbols, B): {}",
                    parts.join(", ")
                );
                let added = harness_part(&elf, input.len() as u64)? as i64 - base_harness as i64;
                like_for_like = runtime - added;
                println!(
                    "{m}: run-time code {runtime} B, less the harness's formatting and case loop ({added} B): {like_for_like} B"
                );
                // SysTick counts core cycles: 40 instructions per tick under `-icount
                // shift=0` at mps2-an386's 25 MHz (firmware/support, BENCHMARKS.md).
                instructions = r.ticks * 40;
                load = r.load_ticks * 40;
                println!(
                    "{m}: instructions per inference {instructions}, model load (Model::parse: CRC and checks of a {} B artifact) {load}",
                    c.artifact.len(),
                );
                // kws.elf for the default build; kws-release-small.elf,
                // kws-release-small-portable.elf ... for the others.
                let mut name = m.to_string();
                if cargo_profile != "release" {
                    name += &format!("-{cargo_profile}");
                }
                if portable {
                    name += "-portable";
                }
                for o in &overrides {
                    name += &format!("-{}", o.to_lowercase().replace(['=', '_'], "-"));
                }
                keep(&elf, &name)?;
            }
        }
        rows.push((
            m,
            kernels.ops.clone(),
            sizes,
            like_for_like,
            stack,
            instructions,
            load,
            tflm_code,
            tflm_stack,
            tflm_instructions,
            c.arena_bytes,
        ));
    }
    println!(
        "| model | ops linked | run-time code, model's ops | like for like (less the harness's formatting and case loop) | run-time code, all ops | TFLM reference (.text less model and harness) | peak stack in invoke | TFLM stack in invoke | instructions per inference, model's ops | TFLM reference instructions | model load (Model::parse) instructions | arena (planned, scratch included) |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (m, ops, sizes, lfl, stack, instructions, load, tc, ts, ti, arena) in &rows {
        println!(
            "| {} | {} | {:.1} KB ({} B) | {:.1} KB ({} B) | {} | {} | {} B | {} B | {} | {} | {} | {} B |",
            m.to_uppercase(),
            ops.replace(',', ", "),
            sizes[0].1 as f64 / 1000.0,
            sizes[0].1,
            *lfl as f64 / 1000.0,
            lfl,
            sizes.get(1).map_or_else(
                || "not built (EDGEFLOW_FOOTPRINT_ALL_OPS=0)".to_string(),
                |s| format!("{:.1} KB", s.1 as f64 / 1000.0)
            ),
            tc,
            stack,
            ts,
            instructions,
            ti,
            load,
            arena
        );
    }
    println!("(cargo profile {cargo_profile}; flash text of the harness alone: {base} B; output of each per-model firmware equals TFLM's)");
    Ok(())
}

/// Keeps a copy of the per-model ELF (the build directory is reused by the next model).
fn keep(elf: &Path, model: &str) -> Result<()> {
    let dir = root().join("target/edgeflow-footprint");
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(elf, dir.join(format!("{model}.elf")))?;
    Ok(())
}
