//! Files from the field through the `edgeflow` binary: every case of the bug list
//! (`crates/edgeflow-data/tests/fixtures/field/`, reference answers from librosa, TFLite
//! Micro, pandas and pyarrow) gives the reference answer through every command that
//! accepts the file.

#![allow(clippy::unwrap_used)]

mod common;
use common::{edgeflow, root, s, text};

use std::path::{Path, PathBuf};

use edgeflow_data::sources::npy::{read_npy, TensorData};

fn tmp(name: &str) -> PathBuf {
    common::tmp_in("cli-field", name)
}

fn field(name: &str) -> PathBuf {
    root()
        .join("crates/edgeflow-data/tests/fixtures/field")
        .join(name)
}

/// A `.npy` through edgeflow-data (C order whatever the file's order): shape, values.
fn values(p: &Path) -> (Vec<usize>, Vec<f64>) {
    let t = read_npy(p).unwrap_or_else(|e| panic!("{e}"));
    (t.shape, t.data.to_f64())
}

/// The tolerance of the DSP conformance tests (tests/tests/dsp_conformance.rs):
/// `|ours - ref| <= 2e-5 * (largest reference magnitude of the row) + 2e-4`.
fn check_rows(what: &str, ours: &[f64], reference: &[f64], row: usize) {
    assert_eq!(ours.len(), reference.len(), "{what}: lengths");
    let mut worst = 0.0f64;
    for (o, r) in ours.chunks(row).zip(reference.chunks(row)) {
        let scale = r.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (a, b) in o.iter().zip(r) {
            let e = (a - b).abs();
            worst = worst.max(e);
            assert!(
                e <= 2e-5 * scale + 2e-4,
                "{what}: ours {a} vs reference {b} (error {e:e}, row maximum {scale})"
            );
        }
    }
    eprintln!("{what}: max error {worst:.3e}");
}

#[test]
fn kws_mfcc_of_every_wav_sample_format_matches_librosa() {
    let kws = root().join("crates/edgeflow-dsp/pipelines/kws_mfcc.toml");
    let mut c0 = Vec::new();
    for f in ["pcm16", "pcm24", "f32", "f32_extensible", "u8"] {
        let wav = field(&format!("tone_{f}.wav"));
        let out = tmp(&format!("tone_{f}.npy"));
        let o = edgeflow(&["features", "--pipeline", s(&kws), s(&wav), "-o", s(&out)]);
        assert!(o.status.success(), "{f}: {}", text(&o));
        let (shape, ours) = values(&out);
        assert_eq!(shape, [1, 49, 10], "{f}");
        let (rshape, reference) = values(&field(&format!("tone_{f}_ref_librosa_mfcc.npy")));
        assert_eq!(rshape, [49, 10]);
        check_rows(
            &format!("tone_{f}.wav KWS MFCC vs librosa"),
            &ours,
            &reference,
            10,
        );
        c0.push(ours.iter().step_by(10).sum::<f64>() / 49.0);
    }
    // The README's figure: c0 mean about -208 for every format.
    for m in c0 {
        assert!((m + 208.0).abs() < 1.0, "c0 mean {m}");
    }
}

#[test]
fn wav_files_read_the_same_in_data_and_features() {
    for f in ["pcm16", "pcm24", "f32", "f32_extensible", "u8"] {
        let wav = field(&format!("tone_{f}.wav"));
        let o = edgeflow(&["data", "stats", s(&wav)]);
        assert!(o.status.success(), "{f}: {}", text(&o));
        let t = text(&o);
        assert!(t.contains("16000 rows"), "{f}: {t}");
    }
}

#[test]
fn a_byte_order_mark_does_not_make_a_header() {
    let p = field("vec1.toml");
    let mut got = Vec::new();
    for f in ["bom_noheader.csv", "nobom_noheader.csv"] {
        let out = tmp(&format!("{f}.npy"));
        let o = edgeflow(&["features", "--pipeline", s(&p), s(&field(f)), "-o", s(&out)]);
        assert!(o.status.success(), "{f}: {}", text(&o));
        let (shape, v) = values(&out);
        assert_eq!(shape, [4, 1], "{f}");
        // pandas.read_csv(header=None) reads 0.25, 0.5, 0.75, 1.0 from both files.
        assert_eq!(v, [0.25, 0.5, 0.75, 1.0], "{f}");
        got.push(v);
    }
    assert_eq!(got[0], got[1]);
    // `data` sees the same four rows (the BOM is not part of the first value, and a
    // first line of numbers is not a header).
    for f in ["bom_noheader.csv", "nobom_noheader.csv"] {
        let o = edgeflow(&["data", "stats", s(&field(f))]);
        assert!(o.status.success(), "{}", text(&o));
        let t = text(&o);
        assert!(t.contains(": 4 rows, 1 columns, 0 bad records"), "{f}: {t}");
        assert!(
            t.contains("0.2500") && t.contains("0.6250"),
            "{f}: min and mean: {t}"
        );
    }
}

#[test]
fn fortran_order_inputs_run_as_their_c_order_twins() {
    for (model, input, reference, tol) in [
        (
            "dw31_f32.tflite",
            "dw31_f32_in_fortran.npy",
            "dw31_f32_ref_tflm.npy",
            1e-5,
        ),
        (
            "dw31_int8.tflite",
            "dw31_int8_in_fortran.npy",
            "dw31_int8_ref_tflm.npy",
            0.0,
        ),
    ] {
        let out = tmp(&format!("{input}.out.npy"));
        let o = edgeflow(&[
            "run",
            s(&field(model)),
            "--input",
            s(&field(input)),
            "--output",
            s(&out),
        ]);
        assert!(o.status.success(), "{model}: {}", text(&o));
        let (shape, ours) = values(&out);
        let (rshape, want) = values(&field(reference));
        assert_eq!(shape, rshape);
        let worst = ours
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        // int8 matches TFLite Micro bit for bit; f32 to rounding.
        assert!(worst <= tol, "{model}: off by {worst} from TFLite Micro");
    }
    assert!(matches!(
        read_npy(&field("dw31_int8_ref_tflm.npy")).unwrap().data,
        TensorData::I8(_)
    ));
}

#[test]
fn fortran_order_imu_gives_the_features_of_the_c_order_file() {
    let imu = root().join("crates/edgeflow-dsp/pipelines/imu_features.toml");
    let mut outs = Vec::new();
    for f in ["imu_c.npy", "imu_fortran.npy"] {
        let out = tmp(&format!("{f}.features.npy"));
        let o = edgeflow(&[
            "features",
            "--pipeline",
            s(&imu),
            s(&field(f)),
            "-o",
            s(&out),
        ]);
        assert!(o.status.success(), "{f}: {}", text(&o));
        outs.push(values(&out));
    }
    assert!(!outs[0].1.is_empty());
    assert_eq!(outs[0], outs[1]);
    // `data` reads the same rows from both files.
    let a = text(&edgeflow(&[
        "data",
        "head",
        "-n",
        "3",
        s(&field("imu_c.npy")),
    ]));
    let b = text(&edgeflow(&[
        "data",
        "head",
        "-n",
        "3",
        s(&field("imu_fortran.npy")),
    ]));
    assert_eq!(
        a.lines().skip(1).collect::<Vec<_>>(),
        b.lines().skip(1).collect::<Vec<_>>()
    );
}

#[test]
fn parquet_of_every_codec_has_the_statistics_of_the_snappy_file() {
    let stats = |codec: &str| {
        let o = edgeflow(&[
            "data",
            "stats",
            s(&field(&format!("dict_nulls_{codec}.parquet"))),
        ]);
        assert!(o.status.success(), "{codec}: {}", text(&o));
        // The first line names the file.
        String::from_utf8_lossy(&o.stdout).replace(&format!("dict_nulls_{codec}"), "FILE")
    };
    let want = stats("snappy");
    // pyarrow: 2,000 rows, 286 / 400 / 182 nulls (tests/fixtures/field/expected.json).
    assert!(
        want.contains("FILE.parquet (parquet): 2000 rows, 3 columns, 0 bad records"),
        "{want}"
    );
    assert!(
        want.contains("286") && want.contains("400") && want.contains("182"),
        "{want}"
    );
    for codec in ["none", "gzip", "zstd", "lz4", "brotli"] {
        assert_eq!(stats(codec), want, "{codec}");
    }
}

#[test]
fn bad_records_fail_by_default_and_are_counted_when_allowed() {
    let dir = tmp("bad");
    std::fs::create_dir_all(&dir).expect("dir");
    let all_bad = dir.join("all_bad.jsonl");
    std::fs::write(&all_bad, "{oops\nnot json\n").expect("write");
    for cmd in ["stats", "head", "inspect"] {
        let o = edgeflow(&["data", cmd, s(&all_bad), "--max-bad-records", "10"]);
        assert!(!o.status.success(), "{cmd}: {}", text(&o));
        let t = text(&o);
        assert!(
            t.contains("all_bad.jsonl")
                && t.contains("every record is bad")
                && t.contains("record 0 (line 1)"),
            "{cmd}: {t}"
        );
    }
    let some_bad = dir.join("some_bad.csv");
    std::fs::write(&some_bad, "x,y\n1,2\n3\n4,5\n6,7\n").expect("write");
    let o = edgeflow(&["data", "stats", s(&some_bad)]);
    assert!(!o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("1 bad records of 4") && t.contains("record 1 (line 3)"),
        "{t}"
    );
    for limit in ["1", "0.25", "25%"] {
        let o = edgeflow(&["data", "stats", s(&some_bad), "--max-bad-records", limit]);
        assert!(o.status.success(), "{limit}: {}", text(&o));
        let t = text(&o);
        assert!(t.contains("skipped 1 bad records of 4"), "{limit}: {t}");
    }
    let o = edgeflow(&["data", "stats", s(&some_bad), "--max-bad-records", "0.2"]);
    assert!(!o.status.success(), "{}", text(&o));
    let o = edgeflow(&["data", "stats", s(&dir.join("missing.csv"))]);
    assert!(!o.status.success());
    assert!(text(&o).contains("missing.csv"));
}

#[test]
fn bad_record_lines_are_exact_under_every_line_ending() {
    let dir = tmp("endings");
    std::fs::create_dir_all(&dir).expect("dir");
    // Line 3 is blank; the short row is record 1 on line 4 whatever the line ending.
    for (name, eol) in [("lf", "\n"), ("crlf", "\r\n"), ("cr", "\r")] {
        let p = dir.join(format!("{name}.csv"));
        let body = ["x,y", "1,2", "", "3", "4,5", "6,7"].join(eol);
        std::fs::write(&p, body).expect("write");
        let o = edgeflow(&["data", "stats", s(&p)]);
        assert!(!o.status.success(), "{name}: {}", text(&o));
        let t = text(&o);
        assert!(
            t.contains("1 bad records of 4") && t.contains("record 1 (line 4)"),
            "{name}: {t}"
        );
        let o = edgeflow(&["data", "stats", s(&p), "--max-bad-records", "1"]);
        assert!(o.status.success(), "{name}: {}", text(&o));
        assert!(
            text(&o).contains("skipped 1 bad records of 4"),
            "{name}: {}",
            text(&o)
        );
    }
    // A line over --max-record-bytes is an error naming the file and the limit.
    let p = dir.join("long.jsonl");
    std::fs::write(
        &p,
        format!("{{\"a\": 1}}\n{{\"a\": \"{}\"}}\n", "x".repeat(500)),
    )
    .expect("write");
    let o = edgeflow(&["data", "stats", s(&p), "--max-record-bytes", "100"]);
    assert!(!o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("long.jsonl") && t.contains("limit of 100 bytes"),
        "{t}"
    );
    let o = edgeflow(&["data", "stats", s(&p), "--max-record-bytes", "1000"]);
    assert!(o.status.success(), "{}", text(&o));
}
