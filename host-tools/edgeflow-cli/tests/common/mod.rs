//! Helpers shared by the CLI's integration tests. Each `tests/*.rs` file is its own crate
//! and includes this module with `mod common;`, so a helper one file does not use is not
//! dead code of the project.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (two levels above this crate's manifest).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The device state directory the helpers below give `edgeflow` (`EDGEFLOW_DEVICE_DIR`):
/// this checkout's `target/edgeflow-device`, so that the emulated devices of tests run in
/// two checkouts at once (e.g. two worktrees) are apart; by default they would share the
/// user's one.
pub fn device_dir() -> PathBuf {
    // Without `..` the socket path stays well under the Unix limit (107 bytes).
    let r = root();
    r.canonicalize().unwrap_or(r).join("target/edgeflow-device")
}

/// Runs the `edgeflow` binary cargo built for these tests, in the test's working directory
/// (this crate's directory), with the device state in [`device_dir`] and without the
/// caller's `EDGEFLOW_SOURCE_DIR` (the firmware comes from this checkout). Panics only if the binary cannot be started.
pub fn edgeflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgeflow"))
        .env("EDGEFLOW_DEVICE_DIR", device_dir())
        .env_remove("EDGEFLOW_SOURCE_DIR")
        .args(args)
        .output()
        .expect("run edgeflow")
}

/// [`edgeflow`] run from the repository root, for commands that find `boards/`,
/// `firmware/` or `examples/` relative to their working directory.
pub fn edgeflow_at_root(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgeflow"))
        .env("EDGEFLOW_DEVICE_DIR", device_dir())
        .env_remove("EDGEFLOW_SOURCE_DIR")
        .current_dir(root())
        .args(args)
        .output()
        .expect("run edgeflow")
}

/// [`edgeflow_at_root`] without cargo's build variables (`CARGO_*` but `CARGO_HOME`,
/// `RUSTFLAGS`, `RUSTC_WRAPPER`), so that a firmware build the command starts (`flash`,
/// `device`) is a plain one and not a build for this test's profile.
pub fn edgeflow_plain(args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_edgeflow"));
    c.current_dir(root())
        .env("EDGEFLOW_DEVICE_DIR", device_dir())
        .env_remove("EDGEFLOW_SOURCE_DIR")
        .args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("CARGO_") && k != "CARGO_HOME" || k == "RUSTFLAGS" || k == "RUSTC_WRAPPER"
        {
            c.env_remove(&k);
        }
    }
    c.output().expect("run edgeflow")
}

/// The BasicMotions archive (`target/data/BasicMotions`, fetched by
/// `crates/edgeflow-data/scripts/fetch_basicmotions.sh`), or `None` when it is absent.
pub fn basicmotions() -> Option<PathBuf> {
    let d = root().join("target/data/BasicMotions");
    d.join("BasicMotions_TEST.ts").is_file().then_some(d)
}

/// Writes a BasicMotions project `dir/edgeflow.toml` named `name`: the archive's train and
/// test files from `data`, a 0.2 validation split, schema anomalies reported but not fatal
/// (the archive's test file has values outside its training file's ranges), the example's
/// `features.toml` (copied into `dir`); then `rest` (`[model]` and the stages after it).
pub fn basicmotions_project(dir: &Path, data: &Path, name: &str, rest: &str) -> PathBuf {
    std::fs::copy(
        root().join("examples/basicmotions/features.toml"),
        dir.join("features.toml"),
    )
    .expect("features");
    let text = format!(
        r#"[project]
name = "{name}"
seed = 42

[data]
train = {{ ts = "{train}" }}
test = {{ ts = "{test}" }}

[split]
validation = 0.2
seed = 1

[schema]
fail_on_anomalies = false

[features]
pipeline = "features.toml"

{rest}"#,
        train = data.join("BasicMotions_TRAIN.ts").display(),
        test = data.join("BasicMotions_TEST.ts").display(),
    );
    let p = dir.join("edgeflow.toml");
    std::fs::write(&p, text).expect("project");
    p
}

/// `CARGO_TARGET_TMPDIR/DIR/NAME`, creating `DIR`. Tests of one file run in parallel:
/// callers give each test its own names.
pub fn tmp_in(dir: &str, name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(dir);
    std::fs::create_dir_all(&d).expect("tmp dir");
    d.join(name)
}

/// A command's stdout followed by its stderr, lossily decoded (for messages and asserts).
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A path as the `&str` a command line takes (the test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A conformance fixture's `.f32` form: u32 rank, u32 dims, then little-endian f32 values
/// (written by `conformance/*/make_*.py`). Returns (shape, values).
pub fn read_f32(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let word = |i: usize| u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().expect("4 bytes"));
    let rank = word(0) as usize;
    let shape: Vec<usize> = (0..rank).map(|i| word(1 + i) as usize).collect();
    let values = b[4 * (1 + rank)..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    (shape, values)
}

/// A minimal `.npy` (format version 1.0, C order) with numpy's `descr` (`"<f4"`, `"<i8"` …),
/// the given shape and the raw little-endian element bytes.
pub fn npy(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// A little-endian float32 `.npy` of the given shape ([`npy`] with `<f4`).
pub fn npy_f32(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    npy("<f4", shape, &bytes)
}

/// Whether an emulated-board test must be skipped because `qemu-system-arm` is missing —
/// only when the user asked for it with `EDGEFLOW_SKIP_QEMU=1` (the reason is printed).
/// Without the variable a missing QEMU fails the test, so a CI run (`.ci/run` installs
/// QEMU and never sets the variable) cannot pass by skipping.
///
/// # Panics
/// When QEMU is missing and `EDGEFLOW_SKIP_QEMU` is not `1`.
pub fn qemu_missing() -> bool {
    let qemu = Command::new("qemu-system-arm").arg("--version").output();
    if qemu.is_ok_and(|o| o.status.success()) {
        return false;
    }
    let why =
        "qemu-system-arm is not installed (apt-get install qemu-system-arm; .ci/run installs it)";
    if std::env::var("EDGEFLOW_SKIP_QEMU").as_deref() == Ok("1") {
        println!("SKIPPED: {why} (EDGEFLOW_SKIP_QEMU=1)");
        return true;
    }
    panic!("{why}; set EDGEFLOW_SKIP_QEMU=1 to skip the emulated-hardware tests");
}
