//! The hostile files of `tests/hostile/` through the `edgeflow` binary: each one is a
//! clear error and a non-zero exit, never a panic, an abort or a multi-gigabyte allocation.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tmp(name: &str) -> PathBuf {
    common::tmp_in("hostile", name)
}

fn edgeflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgeflow"))
        .args(args)
        .env_remove("EDGEFLOW_MAX_ARENA_BYTES")
        .env_remove("EDGEFLOW_MAX_IMAGE_BYTES")
        .output()
        .expect("run edgeflow")
}

fn hostile(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/hostile")
        .join(name);
    assert!(p.exists(), "{}", p.display());
    p.to_str().expect("utf-8 path").to_string()
}

/// Fails cleanly: exit status 1 (not a panic's 101 or an abort's signal), and stderr
/// holds every needle.
fn fails_with(o: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}:\n{err}");
    }
}

#[test]
fn run_refuses_an_artifact_with_an_empty_scratch_region() {
    let out = tmp("softmax.npy");
    let o = edgeflow(&[
        "run",
        &hostile("artifact_softmax_empty_scratch_140B.efm"),
        "--input",
        &hostile("in_1x12_i8.npy"),
        "--output",
        out.to_str().unwrap(),
    ]);
    fails_with(&o, &["not a valid artifact", "scratch region is empty"]);
}

#[test]
fn inspect_names_the_pad_whose_output_has_rank_0() {
    let o = edgeflow(&["inspect", &hostile("tflite_pad_output_rank0.tflite")]);
    fails_with(&o, &["PAD", "rank 0"]);
}

#[test]
fn run_caps_the_arena_and_the_cap_can_be_raised() {
    let model = hostile("artifact_pad_1p45GB_arena_177B.efm");
    let input = hostile("pad_in_1x5x6x3_i8.npy");
    let out = tmp("pad.npy");
    let _ = std::fs::remove_file(&out);
    let args = |extra: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = ["run", &model, "--input", &input, "--output"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.push(out.to_str().unwrap().into());
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |extra: &[&'static str]| {
        let a = args(extra);
        edgeflow(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let o = run(&[]);
    fails_with(
        &o,
        &[
            "arena needs 1452000096 bytes",
            "limit of 268435456 bytes",
            "--max-arena",
        ],
    );
    assert!(!out.exists(), "nothing is written");
    // A lower cap from the flag is named the same way.
    let o = run(&["--max-arena", "4096"]);
    fails_with(&o, &["limit of 4096 bytes"]);
    // And the environment variable.
    let a = args(&[]);
    let o = Command::new(env!("CARGO_BIN_EXE_edgeflow"))
        .args(&a)
        .env("EDGEFLOW_MAX_ARENA_BYTES", "1000")
        .output()
        .expect("run");
    fails_with(&o, &["limit of 1000 bytes"]);
}

#[test]
fn npy_shapes_whose_element_count_overflows_are_named() {
    // Shape (2^63 + 45, 2): its element count wraps to exactly 90 in 64 bits, the size
    // of the model's 1x5x6x3 input, so a wrapping check let it through.
    let npy = tmp("wrap.npy");
    let header = "{'descr': '|i1', 'fortran_order': False, 'shape': (9223372036854775853, 2), }";
    let mut h = header.to_string();
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((h.len() as u16).to_le_bytes());
    bytes.extend(h.as_bytes());
    bytes.extend([0u8; 90]);
    std::fs::write(&npy, bytes).unwrap();
    let o = edgeflow(&[
        "run",
        &hostile("artifact_pad_1p45GB_arena_177B.efm"),
        "--input",
        npy.to_str().unwrap(),
        "--output",
        tmp("wrap_out.npy").to_str().unwrap(),
        // Above this model's 1.45 GB arena, so that the .npy check is what fails; nothing
        // is allocated before the input has been checked.
        "--max-arena",
        "2000000000",
    ]);
    fails_with(&o, &["wrap.npy", "overflows"]);
}

#[test]
fn data_commands_refuse_a_74_byte_png_claiming_100000x100000() {
    let dir = tmp("png_folder");
    let class = dir.join("some_class");
    std::fs::create_dir_all(&class).unwrap();
    std::fs::copy(hostile("png_100000x100000_74B.png"), class.join("huge.png")).unwrap();
    // `data` reports undecodable files as bad records (and goes on with the others); the
    // record names the file, the dimensions and the limit; no abort, no panic.
    for cmd in ["head", "stats"] {
        let o = edgeflow(&["data", cmd, dir.to_str().unwrap()]);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            o.status.code().is_some() && !all.contains("panicked"),
            "{all}"
        );
        for n in ["huge.png", "100000x100000", "limit of 268435456 bytes"] {
            assert!(all.contains(n), "{cmd}: output lacks {n:?}:\n{all}");
        }
    }
}
