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
