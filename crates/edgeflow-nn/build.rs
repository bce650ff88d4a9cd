//! Sets `cfg(edgeflow_arm_dsp)` for Arm targets with the DSP extension (SMLAD, SXTB16),
//! where the int8 kernels use their packed 16-bit inner loops (`src/kernels/arch/arm_dsp.rs`).
//!
//! Stable Rust does not report Arm target features to `cfg`, so the target name decides:
//! `thumbv7em-*` (Cortex-M4/M7) always has the extension; other Arm targets qualify when
//! the compiler reports the `dsp` feature (nightly, or `-C target-feature=+dsp`).
//! `EDGEFLOW_NN_PORTABLE=1` forces the portable kernels (for comparisons).
//!
//! `EDGEFLOW_NN_OPS` selects the ops whose kernels are linked: a comma-separated list of
//! op names as `Op::name` spells them (`CONV_2D,DEPTHWISE_CONV_2D,...`, the names
//! `edgeflow inspect` lists for an artifact); unset, empty or `all` links every op. Each
//! selected op gets `cfg(edgeflow_op = "NAME")`; a model using an op outside the list is
//! rejected by `Model::parse` with an error naming the op. A firmware built for one model
//! thus carries only that model's kernels (the dispatch is the only reference to them, so
//! the linker drops the rest). An unknown name fails the build.
//!
//! `EDGEFLOW_NN_F32=0` leaves out the f32 variants of CONV_2D, DEPTHWISE_CONV_2D,
//! FULLY_CONNECTED, AVERAGE_POOL_2D, MAX_POOL_2D and SOFTMAX (for int8 models); without
//! it they are linked (`cfg(edgeflow_f32)`). `Model::parse` then rejects an f32 use of
//! those ops with an error naming the op.
//!
//! `EDGEFLOW_NN_GROUPED_CONV=0` leaves out grouped CONV_2D on the DSP build (Cortex-M4/M7),
//! whose ungrouped convolutions never take the per-pixel kernel that grouped ones need
//! (`conv_generic`); `Model::parse` then rejects a grouped convolution, naming the op.
//! Without it (and on every other build) grouped convolutions are linked
//! (`cfg(edgeflow_grouped_conv)`).
//!
//! `EDGEFLOW_NN_DW_GENERAL=0` likewise leaves out, on the DSP build, the DEPTHWISE_CONV_2D
//! kernels for shapes other than 3x3 with depth multiplier 1 and a multiple of 4 channels
//! (`general`, `eval_mult1`, the 3x3 kernel's channel tail);
//! `Model::parse` then rejects those shapes, naming the flag
//! (`cfg(edgeflow_dw_general)` otherwise).
//!
//! `EDGEFLOW_NN_ADD_BROADCAST=0` likewise leaves out, on the DSP build, every ADD but the
//! int8 one whose two inputs have the output's shape (a residual connection): the
//! broadcast plan's ADD path (broadcasting, f32); `Model::parse` then rejects another ADD,
//! naming the flag (`cfg(edgeflow_add_broadcast)` otherwise).
//!
//! `cfg(edgeflow_size)` selects the size-class kernel paths: the inlining and outlining
//! that suit a build at opt-level "s" (where the speed build's choices leave larger
//! frames), with the same ops, shapes and outputs bit for bit; nothing is left out, so no
//! artifact is refused for it. It is set when the crate is built with
//! opt-level "s" or "z" (the firmware workspace's `release-small` profile, which a board's
//! `[app] profile` selects; its `dev` profile is opt-level "s" too), or by
//! `EDGEFLOW_NN_SIZE=1`; `EDGEFLOW_NN_SIZE=0` keeps the speed paths at any opt-level. The
//! opt-level is the profile's (cargo's `OPT_LEVEL`): a `-C opt-level` given in
//! `RUSTFLAGS` is not seen. Another value of `EDGEFLOW_NN_SIZE` fails the build. Compared with TFLM's reference build (framework -Os,
//! kernels -O2) in BENCHMARKS.md, issue 12 section (j).

use std::env;

// Every op of the artifact format, in tag order: `OP_NAMES`, the list
// `edgeflow_format::decode::OP_NAMES` is made of (one file, included by both).
include!("../edgeflow-format/src/op_names.rs");
const OPS: [&str; OP_NAMES.len()] = OP_NAMES;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(edgeflow_arm_dsp)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=../edgeflow-format/src/op_names.rs");
    println!("cargo::rerun-if-env-changed=EDGEFLOW_NN_PORTABLE");
    println!("cargo::rerun-if-env-changed=EDGEFLOW_NN_F32");
    println!("cargo::rerun-if-env-changed=EDGEFLOW_NN_DW_GENERAL");
    println!("cargo::rustc-check-cfg=cfg(edgeflow_dw_general)");
    if env::var("EDGEFLOW_NN_DW_GENERAL")
        .unwrap_or_default()
        .trim()
        != "0"
    {
        println!("cargo::rustc-cfg=edgeflow_dw_general");
    }
    println!("cargo::rerun-if-env-changed=EDGEFLOW_NN_ADD_BROADCAST");
    println!("cargo::rustc-check-cfg=cfg(edgeflow_add_broadcast)");
    if env::var("EDGEFLOW_NN_ADD_BROADCAST")
        .unwrap_or_default()
        .trim()
        != "0"
    {
        println!("cargo::rustc-cfg=edgeflow_add_broadcast");
    }
    println!("cargo::rerun-if-env-changed=EDGEFLOW_NN_GROUPED_CONV");
    println!("cargo::rustc-check-cfg=cfg(edgeflow_grouped_conv)");
    if env::var("EDGEFLOW_NN_GROUPED_CONV")
        .unwrap_or_default()
        .trim()
        != "0"
    {
        println!("cargo::rustc-cfg=edgeflow_grouped_conv");
    }
    println!("cargo::rerun-if-env-changed=EDGEFLOW_NN_SIZE");
    println!("cargo::rustc-check-cfg=cfg(edgeflow_size)");
    let size = match env::var("EDGEFLOW_NN_SIZE").unwrap_or_default().trim() {
        "1" => true,
        "0" => false,
        "" => matches!(env::var("OPT_LEVEL").as_deref(), Ok("s" | "z")),
        other => panic!("EDGEFLOW_NN_SIZE must be 1 or 0 (or unset), not {other:?}"),
    };
    if size {
        println!("cargo::rustc-cfg=edgeflow_size");
    }
    println!("cargo::rustc-check-cfg=cfg(edgeflow_f32)");
    if env::var("EDGEFLOW_NN_F32").unwrap_or_default().trim() != "0" {
        println!("cargo::rustc-cfg=edgeflow_f32");
    }
    select_ops();
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

/// `cfg(edgeflow_op = "NAME")` for each op `EDGEFLOW_NN_OPS` selects (all by default), and
/// `cfg(edgeflow_op_subset)` when some are left out.
fn select_ops() {
    println!("cargo::rerun-if-env-changed=EDGEFLOW_NN_OPS");
    let values: Vec<String> = OPS.iter().map(|o| format!("\"{o}\"")).collect();
    println!(
        "cargo::rustc-check-cfg=cfg(edgeflow_op, values({}))",
        values.join(", ")
    );
    println!("cargo::rustc-check-cfg=cfg(edgeflow_op_subset)");
    let list = env::var("EDGEFLOW_NN_OPS").unwrap_or_default();
    let list = list.trim();
    let selected: Vec<&str> = if list.is_empty() || list.eq_ignore_ascii_case("all") {
        OPS.to_vec()
    } else {
        list.split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|o| {
                OPS.iter()
                    .copied()
                    .find(|k| k.eq_ignore_ascii_case(o))
                    .unwrap_or_else(|| {
                        panic!(
                            "EDGEFLOW_NN_OPS: unknown op {o:?} (known: {})",
                            OPS.join(", ")
                        )
                    })
            })
            .collect()
    };
    let mut tags = 0u64;
    for op in &selected {
        println!("cargo::rustc-cfg=edgeflow_op=\"{op}\"");
        if let Some(tag) = OPS.iter().position(|o| o == op) {
            tags |= 1 << tag;
        }
    }
    // The op-record reader decodes only the selected ops' parameters (`LinkedOps`, bits
    // by op tag: OPS is the format's own list, in tag order).
    let out = std::path::PathBuf::from(env::var("OUT_DIR").unwrap_or_default());
    let code = format!(
        "/// Bit `t`: the op with tag `t` is linked (build.rs, `EDGEFLOW_NN_OPS`).\n\
         pub(crate) const LINKED_OP_TAGS: u64 = {tags:#x};\n"
    );
    std::fs::write(out.join("linked_ops.rs"), code).expect("write OUT_DIR/linked_ops.rs");
    if OPS.iter().any(|o| !selected.contains(o)) {
        println!("cargo::rustc-cfg=edgeflow_op_subset");
    }
}
