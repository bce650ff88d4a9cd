//! `edgeflow validate` end to end: gates pass on a real board, a starved board fails with
//! the gate named, bad gates files are named, and `--hil` on QEMU (when installed).

mod common;
use common::{edgeflow_at_root as edgeflow, npy, root, s, text};

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `--hil` tests build the same harness in the same directory: one at a time.
fn hil_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn tmp(name: &str) -> PathBuf {
    common::tmp_in("validate", name)
}

/// The quantized gap_fc_logistic model, test rows (its calibration set) and labels
/// (the float model's top-1 class, so accuracy is float-vs-int8 agreement).
/// Files are prefixed with `tag`: tests run in parallel.
fn setup(tag: &str) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let q = root().join("conformance/quant");
    let float = q.join("gap_fc_logistic_int8.f32.tflite");
    let calib = q.join("gap_fc_logistic_int8.calib.npy");
    let model = tmp(&format!("{tag}_gap_int8.edgeflow"));
    let o = edgeflow(&["quantize", s(&float), "--calib", s(&calib), "-o", s(&model)]);
    assert!(o.status.success(), "{}", text(&o));
    let tflite = std::fs::read(&float).expect("float model");
    let g = edgeflow_compile::import::import(&tflite).expect("import");
    let eval = edgeflow_compile::reference::Evaluator::new(&g).expect("eval");
    let raw = std::fs::read(&calib).expect("calib");
    let npy_file = npyz::NpyFile::new(&raw[..]).expect("npy");
    let values: Vec<f32> = npy_file.into_vec().expect("f32");
    let rows: Vec<&[f32]> = values.chunks(210).collect();
    let labels: Vec<i64> = rows
        .iter()
        .map(|r| {
            let out = eval
                .run(&[&edgeflow_compile::reference::f32_bytes(r)])
                .expect("run")[g.outputs[0]]
                .clone()
                .expect("output");
            let v = edgeflow_compile::reference::bytes_f32(&out);
            (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b }) as i64
        })
        .collect();
    let x = tmp(&format!("{tag}_x.npy"));
    let y = tmp(&format!("{tag}_y.npy"));
    std::fs::write(
        &x,
        npy(
            "<f4",
            &[rows.len(), 210],
            &edgeflow_compile::reference::f32_bytes(&values),
        ),
    )
    .expect("write");
    let yb: Vec<u8> = labels.iter().flat_map(|l| l.to_le_bytes()).collect();
    std::fs::write(&y, npy("<i8", &[labels.len()], &yb)).expect("write");
    (model, float, x, y)
}

#[test]
fn gates_pass_and_a_starved_board_fails_naming_the_gate() {
    let (model, float, x, y) = setup("gates");
    let gates = tmp("gates.toml");
    std::fs::write(
        &gates,
        "min_accuracy = 0.9\nmin_agreement = 0.9\nstack_bytes = 2048\n",
    )
    .expect("write");
    let args = |board: &str| {
        vec![
            "validate".to_string(),
            s(&model).into(),
            "--board".into(),
            board.into(),
            "--gates".into(),
            s(&gates).into(),
            "--test-data".into(),
            s(&x).into(),
            "--test-labels".into(),
            s(&y).into(),
            "--float".into(),
            s(&float).into(),
            "--baseline".into(),
            s(&model).into(),
        ]
    };
    let run = |a: Vec<String>| edgeflow(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let o = run(args("mps2-an386"));
    assert!(o.status.success(), "{}", text(&o));
    for needle in [
        "accuracy",
        "float-int8 agreement",
        "vs baseline",
        "RAM",
        "flash",
        "all gates pass",
    ] {
        assert!(text(&o).contains(needle), "{needle}: {}", text(&o));
    }
    // The same board with 8 KiB of RAM: arena + stack do not fit beside the reserve.
    let board = std::fs::read_to_string(root().join("boards/mps2-an386.toml")).expect("board");
    let starved = board
        .replace("ram_bytes = 4194304", "ram_bytes = 8192")
        .replace("name = \"mps2-an386\"", "name = \"starved\"");
    assert_ne!(starved, board);
    let sb = tmp("starved.toml");
    std::fs::write(&sb, starved).expect("write");
    let o = run(args(s(&sb)));
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("fails on starved: RAM"), "{}", text(&o));
    let mut j = args(s(&sb));
    j.push("--json".into());
    let o = run(j);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("{\"gate\":\"RAM\""),
        "{}",
        text(&o)
    );
}

#[test]
fn bad_gates_and_data_are_named() {
    let (model, _, x, _) = setup("bad");
    let gates = tmp("bad_gates.toml");
    std::fs::write(&gates, "min_acc = 0.9\n").expect("write");
    let o = edgeflow(&[
        "validate",
        s(&model),
        "--board",
        "mps2-an386",
        "--gates",
        s(&gates),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("min_acc"), "{}", text(&o));
    // Labels of the wrong length.
    let y = tmp("short.npy");
    std::fs::write(&y, npy("<i8", &[1], &0i64.to_le_bytes())).expect("write");
    let o = edgeflow(&[
        "validate",
        s(&model),
        "--board",
        "mps2-an386",
        "--test-data",
        s(&x),
        "--test-labels",
        s(&y),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("32 rows but"), "{}", text(&o));
    // Test rows of the wrong width: the file, its shape and the model's need are named.
    let wide = tmp("wide.npy");
    std::fs::write(&wide, common::npy_f32(&[2, 211], &[0.0; 422])).expect("write");
    let o = edgeflow(&[
        "validate",
        s(&model),
        "--board",
        "mps2-an386",
        "--test-data",
        s(&wide),
        "--test-labels",
        s(&y),
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains(
            "wide.npy: shape [2, 211] gives rows of 211 values; the model input needs 210"
        ),
        "{}",
        text(&o)
    );
    // An unknown board is named.
    let o = edgeflow(&["validate", s(&model), "--board", "no-such-board"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("no-such-board"), "{}", text(&o));
}

#[test]
fn hil_runs_on_qemu_bit_exact() {
    let board = edgeflow_tests::firmware::board("mps2-an386");
    if let Some(why) = edgeflow_tests::firmware::toolchain_missing(&board) {
        eprintln!("skipped: {why}");
        return;
    }
    let _hil = hil_lock();
    let (model, _, x, y) = setup("hil");
    let o = edgeflow(&[
        "validate",
        s(&model),
        "--board",
        "mps2-an386",
        "--test-data",
        s(&x),
        "--test-labels",
        s(&y),
        "--hil",
        "--hil-samples",
        "4",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("HIL bit-exact") && t.contains("4/4 outputs equal"),
        "{t}"
    );
    assert!(t.contains("stack") && t.contains("measured"), "{t}");
}

/// `--hil` outside an edgeflow source tree (model, data and working directory under the
/// system temporary directory): without `EDGEFLOW_SOURCE_DIR` the error names the ways
/// out; a wrong `EDGEFLOW_SOURCE_DIR` is named; pointing it at the sources runs the
/// samples on the board bit-exact, as inside the tree.
#[test]
fn hil_finds_its_sources_at_run_time() {
    let board = edgeflow_tests::firmware::board("mps2-an386");
    if let Some(why) = edgeflow_tests::firmware::toolchain_missing(&board) {
        eprintln!("skipped: {why}");
        return;
    }
    let _hil = hil_lock();
    let (model, _, x, y) = setup("hil-outside");
    let dir = std::env::temp_dir().join(format!("edgeflow-hil-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    for f in [&model, &x, &y] {
        std::fs::copy(f, dir.join(f.file_name().expect("name"))).expect("copy");
    }
    let name = |p: &Path| {
        p.file_name()
            .expect("name")
            .to_str()
            .expect("utf8")
            .to_string()
    };
    let (m, xs, ys) = (name(&model), name(&x), name(&y));
    let run = |source: Option<&Path>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_edgeflow"));
        c.current_dir(&dir).env_remove("EDGEFLOW_SOURCE_DIR");
        if let Some(d) = source {
            c.env("EDGEFLOW_SOURCE_DIR", d);
        }
        c.args([
            "validate",
            m.as_str(),
            "--board",
            "mps2-an386",
            "--test-data",
            xs.as_str(),
            "--test-labels",
            ys.as_str(),
            "--hil",
            "--hil-samples",
            "2",
        ])
        .output()
        .expect("run edgeflow")
    };
    let o = run(None);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("EDGEFLOW_SOURCE_DIR")
            && t.contains("leave out --hil")
            && t.contains("firmware/mps2-an386"),
        "{t}"
    );
    let o = run(Some(dir.as_path()));
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("EDGEFLOW_SOURCE_DIR = ") && t.contains("no firmware/mps2-an386 there"),
        "{t}"
    );
    let src = root().canonicalize().expect("root");
    let o = run(Some(src.as_path()));
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("2/2 outputs equal"), "{t}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn report_shows_each_gate_agreement_and_budgets_also_when_failing() {
    let (model, float, x, y) = setup("report");
    let board = std::fs::read_to_string(root().join("boards/mps2-an386.toml")).expect("board");
    let starved = board
        .replace("ram_bytes = 4194304", "ram_bytes = 8192")
        .replace("name = \"mps2-an386\"", "name = \"starved\"");
    let sb = tmp("report_starved.toml");
    std::fs::write(&sb, starved).expect("write");
    // This small model's int8 copy agrees with the float one on 31 of 32 rows, under the
    // default 98 % agreement gate: the passing run sets the gate at 90 %.
    let gates = tmp("report_gates.toml");
    std::fs::write(&gates, "min_agreement = 0.9\n").expect("write");
    for (board, pass) in [("mps2-an386", true), (s(&sb), false)] {
        let out = tmp(&format!("report_{pass}.html"));
        let o = edgeflow(&[
            "validate",
            s(&model),
            "--gates",
            s(&gates),
            "--board",
            board,
            "--test-data",
            s(&x),
            "--test-labels",
            s(&y),
            "--float",
            s(&float),
            "--report",
            s(&out),
        ]);
        assert_eq!(o.status.success(), pass, "{}", text(&o));
        let html = std::fs::read_to_string(&out).expect("report written");
        assert!(html.starts_with("<!doctype html>"));
        for needle in [
            "<table id=\"gates\">",
            "<td>float-int8 agreement</td>",
            "<table id=\"agreement\">",
            "<table id=\"budgets\">",
            "<div id=\"budget-chart\"><svg",
            "<td>RAM</td>",
            "<td>flash</td>",
        ] {
            assert!(html.contains(needle), "{needle} missing from the report");
        }
        if pass {
            assert!(html.contains("<p id=\"status\" class=\"ok\">All gates pass</p>"));
        } else {
            assert!(
                html.contains("<p id=\"status\" class=\"bad\">Failed: RAM</p>"),
                "{html}"
            );
            assert!(html.contains("<td class=\"bad\">FAIL</td>"));
        }
    }
}

/// The `--baseline` margin and the per-class gate. The candidate is a deliberately poor
/// int8 copy (per-tensor weights, activation ranges cut at the 60th percentile); the
/// deployed model is the float one, whose top-1 classes are the labels (100 %). The gate
/// must fail when the allowed drop is just below the measured one and pass just above it;
/// `min_class_accuracy = 1` fails exactly the classes below 100 %, each by name.
#[test]
fn baseline_margin_and_class_gates_fail_when_exceeded() {
    let (_, float, x, y) = setup("margin");
    let calib = root().join("conformance/quant/gap_fc_logistic_int8.calib.npy");
    let poor = tmp("margin_poor.edgeflow");
    let o = edgeflow(&[
        "quantize",
        s(&float),
        "--calib",
        s(&calib),
        "--per-tensor",
        "--method",
        "percentile:60",
        "--no-bias-correction",
        "-o",
        s(&poor),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let run = |gates: &str, tag: &str| {
        let g = tmp(&format!("margin_{tag}.toml"));
        std::fs::write(&g, gates).expect("write");
        let o = edgeflow(&[
            "validate",
            s(&poor),
            "--board",
            "mps2-an386",
            "--gates",
            s(&g),
            "--test-data",
            s(&x),
            "--test-labels",
            s(&y),
            "--baseline",
            s(&float),
            "--json",
        ]);
        let j: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
        (o, j)
    };
    let gate = |j: &serde_json::Value, name: &str| {
        j["gates"]
            .as_array()
            .expect("gates")
            .iter()
            .find(|g| g["gate"] == name)
            .unwrap_or_else(|| panic!("no {name} gate in {j}"))
            .clone()
    };
    let pct = |v: &serde_json::Value| -> f64 {
        v.as_str()
            .expect("string")
            .trim_end_matches(" %")
            .parse()
            .expect("percent")
    };
    let (_, j) = run("min_agreement = 0\nmax_accuracy_drop = 1\n", "measure");
    let acc = pct(&gate(&j, "accuracy")["measured"]);
    let limit = gate(&j, "vs baseline")["limit"]
        .as_str()
        .expect("limit")
        .to_string();
    assert!(limit.starts_with(">= 100.00 % - "), "{limit}");
    let drop = 100.0 - acc;
    assert!(drop > 1.0, "the poor copy should be clearly worse: {acc} %");
    for (margin, pass) in [(drop - 0.5, false), (drop + 0.5, true)] {
        let (o, j) = run(
            &format!(
                "min_agreement = 0\nmax_accuracy_drop = {}\n",
                margin / 100.0
            ),
            &format!("{pass}"),
        );
        assert_eq!(o.status.success(), pass, "{margin}: {}", text(&o));
        let g = gate(&j, "vs baseline");
        assert_eq!(g["status"], if pass { "pass" } else { "fail" }, "{g}");
        if !pass {
            assert!(
                text(&o).contains("fails on mps2-an386: vs baseline"),
                "{}",
                text(&o)
            );
        }
    }
    // Every class must be perfect: the failing class gates are those below 100 %.
    let (o, j) = run(
        "min_agreement = 0\nmax_accuracy_drop = 1\nmin_class_accuracy = 1.0\n",
        "class",
    );
    let classes: Vec<serde_json::Value> = j["gates"]
        .as_array()
        .expect("gates")
        .iter()
        .filter(|g| {
            g["gate"]
                .as_str()
                .is_some_and(|n| n.starts_with("class accuracy "))
        })
        .cloned()
        .collect();
    assert!(!classes.is_empty(), "{j}");
    let failing: Vec<&str> = classes
        .iter()
        .filter(|g| g["status"] == "fail")
        .map(|g| g["gate"].as_str().expect("name"))
        .collect();
    for g in &classes {
        assert_eq!(g["status"] == "fail", pct(&g["measured"]) < 100.0, "{g}");
    }
    assert!(!failing.is_empty(), "{j}");
    assert!(!o.status.success());
    assert!(
        text(&o).contains(&format!("fails on mps2-an386: {}", failing.join(", "))),
        "{}",
        text(&o)
    );
}

/// Without `--hil` on a Cortex-M4 board the latency gate uses the cost model's estimate
/// (deliverable 4), and a budget below it fails with the gate named.
#[test]
fn latency_gate_uses_the_cost_model_without_hil() {
    let (model, _, x, y) = setup("cost");
    let g = tmp("cost_gates.toml");
    std::fs::write(&g, "min_agreement = 0.9\nmax_instructions = 1000\n").expect("write");
    let o = edgeflow(&[
        "validate",
        s(&model),
        "--board",
        "mps2-an386",
        "--gates",
        s(&g),
        "--test-data",
        s(&x),
        "--test-labels",
        s(&y),
    ]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("estimated (cost model)"), "{t}");
    assert!(t.contains("<= 1000"), "{t}");
    assert!(
        t.contains("fails on mps2-an386: instructions / inference"),
        "{t}"
    );
    // `inspect --board` prints the same estimate.
    let o = edgeflow(&["inspect", s(&model), "--board", "mps2-an386"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("instructions ~") && t.contains("per inference (cost model"),
        "{t}"
    );
}
