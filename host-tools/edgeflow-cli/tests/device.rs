//! `edgeflow flash` and `edgeflow device`: budgets are checked before anything is flashed;
//! on the emulated M4F a model is flashed, samples replayed, a second model flashed over
//! the link (no firmware rebuild), and the device stopped. `device collect` records what
//! the device's sample path streams back into a .csv and an .npz that edgeflow-data reads
//! back equal to the recording streamed in.

mod common;
use common::{edgeflow_plain as edgeflow, root, text};

use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    common::tmp_in("device", name)
}

const PIPELINE: &str = "[input.signal]\naxes = 2\nrate_hz = 50.0\nwindow = 32\nstride = 16\n\
    [[blocks]]\nstats = { stats = [\"mean\", \"min\", \"max\", \"rms\", \"std\", \"skewness\", \"kurtosis\", \"peak_to_peak\"] }\n";

/// Converts a conformance fixture with the stats pipeline into `<test>_<fixture>.edgeflow`
/// (the tests of this file run in parallel: each writes files of its own, or one test's
/// `convert` truncates the artifact another is reading).
fn artifact(test: &str, fixture: &str) -> PathBuf {
    let p = tmp(&format!("{test}_stats.toml"));
    std::fs::write(&p, PIPELINE).expect("pipeline");
    let out = tmp(&format!("{test}_{fixture}.edgeflow"));
    let model = root()
        .join("conformance/fixtures")
        .join(format!("{fixture}.tflite"));
    let o = edgeflow(&[
        "convert",
        model.to_str().expect("utf8"),
        "--pipeline",
        p.to_str().expect("utf8"),
        "-o",
        out.to_str().expect("utf8"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    out
}

#[test]
fn flash_refuses_a_model_that_does_not_fit_with_the_numbers() {
    let a = artifact("refuses", "fc_int8");
    let board = tmp("tiny.toml");
    std::fs::write(
        &board,
        "name = \"tiny\"\ndescription = \"a board too small\"\ntarget = \"thumbv7em-none-eabihf\"\n\
         cpu = \"cortex-m4\"\nfpu = true\nflash_bytes = 4096\nram_bytes = 512\ncore_clock_hz = 1000000\n\
         [runner]\nkind = \"qemu\"\nmachine = \"mps2-an386\"\n[provenance]\nsource = \"test\"\n",
    )
    .expect("board");
    let o = edgeflow(&[
        "flash",
        "--board",
        board.to_str().expect("utf8"),
        a.to_str().expect("utf8"),
    ]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("does not fit on tiny"), "{t}");
    assert!(t.contains("of 512 bytes"), "{t}");
}

#[test]
fn flash_to_a_real_board_checks_budgets_then_needs_the_probe_feature_or_a_probe() {
    let a = artifact("real_board", "fc_int8");
    let o = edgeflow(&[
        "flash",
        "--board",
        "nucleo-f411re",
        a.to_str().expect("utf8"),
    ]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    // The budgets were checked and printed before any probe was looked for.
    assert!(t.contains("nucleo-f411re"), "{t}");
    assert!(
        t.contains("without the `probe` feature") || t.contains("through a debug probe"),
        "{t}"
    );
}

#[test]
fn flash_replay_update_and_stop_on_the_emulated_m4f() {
    if common::qemu_missing() {
        return;
    }
    let a = artifact("emulated", "fc_int8");
    let b = artifact("emulated", "fc_f32");
    let csv = tmp("samples.csv");
    let mut s = String::from("ax,ay\n");
    for i in 0..200 {
        s += &format!(
            "{},{}\n",
            (i as f32 * 0.3).sin(),
            (i as f32 * 0.17).cos() * 0.5
        );
    }
    std::fs::write(&csv, s).expect("csv");
    let o = edgeflow(&["flash", "--board", "mps2-an386", a.to_str().expect("utf8")]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("model slot 0 (update 1)"), "{}", text(&o));
    let o = edgeflow(&[
        "device",
        "replay",
        "--board",
        "mps2-an386",
        "--data",
        csv.to_str().expect("utf8"),
    ]);
    let t = text(&o);
    // 200 frames of 2 axes, windows of 32 every 16: 11 predictions, nothing lost.
    assert!(
        o.status.success() && t.contains("400 samples sent, 11 predictions"),
        "{t}"
    );
    assert!(t.contains(" 0 lost, 0 bytes discarded"), "{t}");
    collect_round_trips(&csv);
    let o = edgeflow(&["flash", "--board", "mps2-an386", b.to_str().expect("utf8")]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("updating the model slot over the link")
            && t.contains("model slot 1 (update 2)"),
        "{t}"
    );
    let o = edgeflow(&["device", "stop", "--board", "mps2-an386"]);
    assert!(o.status.success(), "{}", text(&o));
}

/// `device collect` on the running emulated M4F: the recording streamed in through the
/// device's sample path comes back, written as a dataset, equal value for value.
fn collect_round_trips(recording: &Path) {
    use edgeflow_data::sources::csv::{read_labelled_csv, read_numeric_csv};
    use edgeflow_data::sources::npy::{npz, TensorData};
    use edgeflow_data::BadRecords;
    let source = read_numeric_csv(recording, b',').expect("recording");
    let out = tmp("collected.csv");
    let o = edgeflow(&[
        "device",
        "collect",
        "--board",
        "mps2-an386",
        "--label",
        "walking, fast",
        "--source",
        recording.to_str().expect("utf8"),
        "-o",
        out.to_str().expect("utf8"),
    ]);
    let t = text(&o);
    assert!(
        o.status.success() && t.contains("collected 200 frames of 2 axes"),
        "{t}"
    );
    let got = read_labelled_csv(&out, b',', "label").expect("read back");
    assert_eq!(got.header, Some(vec!["ax".to_string(), "ay".to_string()]));
    assert_eq!(got.rows, source.rows);
    assert_eq!(got.labels, vec!["walking, fast".to_string(); 200]);

    let out = tmp("collected.npz");
    let o = edgeflow(&[
        "device",
        "collect",
        "--board",
        "mps2-an386",
        "--label",
        "3",
        "--source",
        recording.to_str().expect("utf8"),
        "-o",
        out.to_str().expect("utf8"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let x = npz(&out, "x", BadRecords::Error).collect_vec().expect("x");
    let y = npz(&out, "y", BadRecords::Error).collect_vec().expect("y");
    assert_eq!(x.len(), 1);
    assert_eq!(x[0].shape, vec![200, 2]);
    let flat: Vec<f32> = source.rows.concat();
    assert_eq!(x[0].data, TensorData::F32(flat));
    assert_eq!(y.len(), 1);
    assert_eq!(y[0].data, TensorData::I64(vec![3]));

    // A text label cannot go into an .npz; the error says so and nothing is written.
    let bad = tmp("bad.npz");
    let o = edgeflow(&[
        "device",
        "collect",
        "--board",
        "mps2-an386",
        "--label",
        "walking",
        "--source",
        recording.to_str().expect("utf8"),
        "-o",
        bad.to_str().expect("utf8"),
    ]);
    assert!(
        !o.status.success() && text(&o).contains("class index"),
        "{}",
        text(&o)
    );
    assert!(!bad.exists());
}

/// `edgeflow` run in `dir` with `env` set (and `EDGEFLOW_SOURCE_DIR`,
/// `EDGEFLOW_DEVICE_DIR`, `XDG_RUNTIME_DIR` unset unless `env` sets them), without cargo's
/// build variables as [`common::edgeflow_plain`].
fn edgeflow_in(dir: &Path, env: &[(&str, &Path)], args: &[&str]) -> std::process::Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_edgeflow"));
    c.current_dir(dir).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("CARGO_") && k != "CARGO_HOME" || k == "RUSTFLAGS" || k == "RUSTC_WRAPPER"
        {
            c.env_remove(&k);
        }
    }
    for k in [
        "EDGEFLOW_SOURCE_DIR",
        "EDGEFLOW_DEVICE_DIR",
        "XDG_RUNTIME_DIR",
    ] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run edgeflow")
}

/// A fresh directory outside the repository (under the system temporary directory).
fn outside(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("edgeflow-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("dir");
    d
}

/// The device state is found from any directory: `flash` run outside the repository (the
/// sources named by `EDGEFLOW_SOURCE_DIR`) starts the device, and `device replay` and
/// `device stop` run from another directory reach it. (`XDG_RUNTIME_DIR` is this test's
/// own, so that its device is apart from the other emulated test's.)
#[test]
fn flash_outside_the_repository_and_stop_from_elsewhere() {
    if common::qemu_missing() {
        return;
    }
    let a = artifact("anywhere", "fc_int8");
    let here = outside("flash-here");
    let there = outside("flash-there");
    // Private (0700), as XDG_RUNTIME_DIR must be to be used; the pid keeps two
    // checkouts sharing a target directory apart.
    let runtime = tmp(&format!("runtime-anywhere-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&runtime);
    std::fs::create_dir_all(&runtime).expect("runtime dir");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700))
            .expect("private runtime dir");
    }
    let src = root().canonicalize().expect("root");
    let env = [
        ("EDGEFLOW_SOURCE_DIR", src.as_path()),
        ("XDG_RUNTIME_DIR", runtime.as_path()),
    ];
    let o = edgeflow_in(
        &here,
        &env,
        &["flash", "--board", "mps2-an386", a.to_str().expect("utf8")],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let sock = runtime.join("edgeflow").join("mps2-an386.sock");
    assert!(
        t.contains(&format!("link: {}", sock.display())) && t.contains("model slot 0"),
        "{t}"
    );
    let csv = there.join("samples.csv");
    let mut s = String::from("ax,ay\n");
    for i in 0..48 {
        s += &format!("{},{}\n", (i as f32 * 0.3).sin(), (i as f32 * 0.2).cos());
    }
    std::fs::write(&csv, s).expect("csv");
    let env = [("XDG_RUNTIME_DIR", runtime.as_path())];
    let o = edgeflow_in(
        &there,
        &env,
        &[
            "device",
            "replay",
            "--board",
            "mps2-an386",
            "--data",
            "samples.csv",
        ],
    );
    let t = text(&o);
    // 48 frames, windows of 32 every 16: 2 predictions.
    assert!(
        o.status.success() && t.contains("96 samples sent, 2 predictions"),
        "{t}"
    );
    let o = edgeflow_in(&there, &env, &["device", "stop", "--board", "mps2-an386"]);
    let t = text(&o);
    assert!(
        o.status.success() && t.contains("stopped mps2-an386"),
        "{t}"
    );
    assert!(!sock.exists());
    let _ = std::fs::remove_dir_all(&here);
    let _ = std::fs::remove_dir_all(&there);
    let _ = std::fs::remove_dir_all(&runtime);
}

/// Outside the repository without `EDGEFLOW_SOURCE_DIR`, `flash` names every directory it
/// looked in and both ways out; a wrong `EDGEFLOW_SOURCE_DIR` is named. A device state
/// directory too long for a Unix socket path is an error naming the override. (No
/// emulator is started.)
#[test]
fn flash_without_sources_and_a_socket_path_too_long_say_what_to_do() {
    let here = outside("flash-nosrc");
    std::fs::copy(artifact("nosrc", "fc_int8"), here.join("m.edgeflow")).expect("copy");
    let runtime = outside("flash-nosrc-runtime");
    let env = [("XDG_RUNTIME_DIR", runtime.as_path())];
    let o = edgeflow_in(
        &here,
        &env,
        &["flash", "--board", "mps2-an386", "m.edgeflow"],
    );
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("no firmware/app-mps2-an386/Cargo.toml is in")
            && t.contains(&format!("{}, ", here.display()))
            && t.contains("Set EDGEFLOW_SOURCE_DIR to an edgeflow source tree")
            && t.contains("pass --firmware ELF"),
        "{t}"
    );
    let env = [
        ("XDG_RUNTIME_DIR", runtime.as_path()),
        ("EDGEFLOW_SOURCE_DIR", here.as_path()),
    ];
    let o = edgeflow_in(
        &here,
        &env,
        &["flash", "--board", "mps2-an386", "m.edgeflow"],
    );
    let t = text(&o);
    assert!(
        !o.status.success()
            && t.contains(&format!(
                "EDGEFLOW_SOURCE_DIR = {}: no firmware/app-mps2-an386 there",
                here.display()
            )),
        "{t}"
    );
    let long = here.join("d".repeat(120));
    let env = [("EDGEFLOW_DEVICE_DIR", long.as_path())];
    let o = edgeflow_in(&here, &env, &["device", "stop", "--board", "mps2-an386"]);
    let t = text(&o);
    assert!(
        !o.status.success()
            && t.contains("longer than a Unix socket path can be")
            && t.contains("set EDGEFLOW_DEVICE_DIR to a shorter directory"),
        "{t}"
    );
    let _ = std::fs::remove_dir_all(&here);
    let _ = std::fs::remove_dir_all(&runtime);
}
