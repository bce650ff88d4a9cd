//! Files from the field (tests/fixtures/field/), read as the reference readers read them:
//! soundfile/librosa for WAV sample formats, numpy for Fortran order and byte order,
//! pyarrow for every Parquet codec, tf.data for compressed TFRecord. The expected values
//! come from `scripts/make_field_fixtures.py` (versions pinned in
//! `scripts/requirements-field.txt`) and are stored in `fixtures/field/expected.json`.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use edgeflow_data::analyze::{summarize, Tabular};
use edgeflow_data::sources::jsonl::{jsonl, JsonlTable};
use edgeflow_data::sources::lines::lines;
use edgeflow_data::sources::npy::{npy, npy_info, npz, read_npy, TensorData};
use edgeflow_data::sources::tfrecord::{tfrecord, tfrecord_compressed, Compression};
use edgeflow_data::sources::wav::{read_wav, SampleEncoding};
use edgeflow_data::{BadRecordLimit, BadRecords, ReadTally, Value};

fn fx(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/field")
        .join(name)
}

fn expected() -> serde_json::Value {
    let text = std::fs::read_to_string(fx("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn one_waveform_in_five_sample_formats_decodes_to_one_signal() {
    let reference = read_wav(&fx("tone_f32.wav")).unwrap();
    assert_eq!(reference.encoding, SampleEncoding::Float(4));
    for (f, enc, quantum) in [
        ("pcm16", SampleEncoding::Int(2), 1.0 / 32768.0),
        ("pcm24", SampleEncoding::Int(3), 1.0 / 8_388_608.0),
        ("f32_extensible", SampleEncoding::Float(4), 0.0),
        ("u8", SampleEncoding::U8, 1.0 / 128.0),
    ] {
        let a = read_wav(&fx(&format!("tone_{f}.wav"))).unwrap();
        assert_eq!(a.encoding, enc, "{f}");
        assert_eq!((a.sample_rate, a.channels, a.frames()), (16000, 1, 16000));
        // The same waveform within one step of the stored format (rounded or truncated).
        let worst = a
            .samples
            .iter()
            .zip(&reference.samples)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(worst <= quantum as f32 * 1.0001, "{f}: {worst}");
    }
    // 16-bit units: the pipeline's input scale.
    let a = read_wav(&fx("tone_pcm16.wav")).unwrap();
    assert!(a.to_i16_units().iter().all(|v| v.fract() == 0.0));
}

#[test]
fn fortran_order_and_big_endian_npy_read_in_c_order() {
    let e = expected();
    for name in ["f32_fortran.npy", "f64_be_fortran.npy", "i16_be.npy"] {
        let want = &e["npy"][name];
        let t = read_npy(&fx(name)).unwrap();
        let shape: Vec<usize> = serde_json::from_value(want["shape"].clone()).unwrap();
        let values: Vec<f64> = serde_json::from_value(want["values"].clone()).unwrap();
        assert_eq!(t.shape, shape, "{name}");
        assert_eq!(t.data.to_f64(), values, "{name}");
        // Row by row too.
        let rows: Vec<f64> = npy(fx(name), BadRecords::Error)
            .collect_vec()
            .unwrap()
            .iter()
            .flat_map(|r| r.data.to_f64())
            .collect();
        assert_eq!(rows, values, "{name} rows");
        let info = npy_info(&fx(name)).unwrap();
        assert_eq!(info.fortran_order, want["fortran_order"].as_bool().unwrap());
    }
    let a: Vec<f64> = npz(fx("fortran.npz"), "a", BadRecords::Error)
        .collect_vec()
        .unwrap()
        .iter()
        .flat_map(|r| r.data.to_f64())
        .collect();
    let want: Vec<f64> = serde_json::from_value(e["npy"]["fortran.npz"]["a"].clone()).unwrap();
    assert_eq!(a, want);
    // The bug-list pairs: the Fortran file holds the C file's values.
    for (c, f) in [
        ("imu_c.npy", "imu_fortran.npy"),
        ("dw31_f32_in.npy", "dw31_f32_in_fortran.npy"),
        ("dw31_int8_in.npy", "dw31_int8_in_fortran.npy"),
    ] {
        assert_eq!(read_npy(&fx(c)).unwrap(), read_npy(&fx(f)).unwrap(), "{f}");
    }
    assert!(matches!(
        read_npy(&fx("dw31_int8_in_fortran.npy")).unwrap().data,
        TensorData::I8(_)
    ));
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn parquet_of_every_codec_matches_pyarrow() {
    let e = expected();
    let files = e["parquet"].as_object().unwrap();
    assert!(files.len() >= 11);
    for (name, want) in files {
        let t = Tabular::open(fx(name), 100, BadRecords::Error).unwrap();
        let s = summarize(&t, 10, &mut |_| {});
        assert_eq!(s.errors, 0, "{name}: {:?}", s.first_errors);
        assert_eq!(s.rows, want["rows"].as_u64().unwrap(), "{name}");
        for c in &s.columns {
            let w = &want["columns"][&c.column.name];
            assert_eq!(
                c.missing,
                w["nulls"].as_u64().unwrap(),
                "{name} {}",
                c.column.name
            );
            // Distinct values are counted for non-float columns (see ColumnStats).
            if let Some(d) = w["distinct"].as_u64().filter(|_| {
                !c.column.ty.is_numeric() || c.column.ty == edgeflow_data::ColumnType::Int
            }) {
                assert_eq!(c.distinct as u64, d, "{name} {}", c.column.name);
            }
            for (k, ours) in [("min", c.min), ("max", c.max), ("mean", c.mean)] {
                if let Some(x) = w[k].as_f64() {
                    assert!(
                        close(ours.unwrap(), x),
                        "{name} {} {k}: {ours:?} vs {x}",
                        c.column.name
                    );
                }
            }
            // List columns: their statistics are of list lengths.
            if let (Some(lo), Some(hi)) = (w["len_min"].as_f64(), w["len_max"].as_f64()) {
                assert_eq!(
                    (c.min, c.max),
                    (Some(lo), Some(hi)),
                    "{name} {}",
                    c.column.name
                );
            }
        }
    }
}

#[test]
fn compressed_tfrecord_matches_tf_data() {
    let e = expected();
    for (name, want) in e["tfrecord"].as_object().unwrap() {
        let records: Vec<String> = serde_json::from_value(want["records"].clone()).unwrap();
        let stated = match want["compression_type"].as_str().unwrap() {
            "GZIP" => Compression::Gzip,
            _ => Compression::Zlib,
        };
        let hex = |v: Vec<Vec<u8>>| -> Vec<String> {
            v.iter()
                .map(|r| r.iter().map(|b| format!("{b:02x}")).collect())
                .collect()
        };
        let auto = tfrecord(fx(name), true, BadRecords::Error)
            .collect_vec()
            .unwrap();
        assert_eq!(hex(auto), records, "{name} (detected)");
        let told = tfrecord_compressed(fx(name), stated, true, BadRecords::Error)
            .collect_vec()
            .unwrap();
        assert_eq!(hex(told), records, "{name} (stated)");
        let bytes = std::fs::read(fx(name)).unwrap();
        assert_eq!(Compression::detect(&bytes), stated);
        // Cut short: an error naming the file, never a silent short read.
        let dir = tempfile::tempdir().unwrap();
        let cut = dir.path().join("cut.tfrecord");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let items: Vec<_> = tfrecord(&cut, true, BadRecords::Error).iter().collect();
        let err = items
            .iter()
            .find_map(|r| r.as_ref().err())
            .expect("an error");
        assert!(err.to_string().contains("cut.tfrecord"), "{err}");
    }
    let t = Tabular::open(fx("examples_gzip.tfrecord"), 100, BadRecords::Error).unwrap();
    let s = summarize(&t, 5, &mut |_| {});
    assert_eq!((s.rows, s.errors), (50, 0));
}

#[test]
fn byte_order_marks_in_every_text_reader() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("b.jsonl");
    std::fs::write(&j, "\u{feff}{\"a\": 1}\n{\"a\": 2}\n").unwrap();
    let v = jsonl::<serde_json::Value>(&j, BadRecords::Error)
        .collect_vec()
        .unwrap();
    assert_eq!(v.len(), 2);
    let t = JsonlTable::open(&j, 10, BadRecords::Error).unwrap();
    assert_eq!(t.schema().names(), ["a"]);
    assert_eq!(t.rows().collect_vec().unwrap()[0].values, [Value::Int(1)]);
    let l = dir.path().join("b.txt");
    std::fs::write(&l, "\u{feff}one\ntwo\n").unwrap();
    assert_eq!(
        lines(&l, BadRecords::Error).collect_vec().unwrap(),
        ["one", "two"]
    );
    let ts = dir.path().join("b.ts");
    std::fs::write(
        &ts,
        "\u{feff}@problemName p\n@univariate true\n@classLabel true a b\n@data\n1,2,3:a\n",
    )
    .unwrap();
    let f = edgeflow_data::sources::ts::TsFile::open(&ts, BadRecords::Error).unwrap();
    assert_eq!(f.header().problem_name, "p");
    // UTF-16 is refused by name, not read as garbage.
    let u = dir.path().join("u.jsonl");
    std::fs::write(&u, b"\xFF\xFE{\x00}\x00").unwrap();
    let e = jsonl::<serde_json::Value>(&u, BadRecords::Skip)
        .collect_vec()
        .unwrap_err()
        .to_string();
    assert!(e.contains("u.jsonl") && e.contains("UTF-16LE"), "{e}");
    // The bug-list CSV: four rows, no header (pandas.read_csv(header=None): 0.25 .. 1.0).
    for f in ["bom_noheader.csv", "nobom_noheader.csv"] {
        let t = Tabular::open(fx(f), 10, BadRecords::Error).unwrap();
        let rows = t.rows.collect_vec().unwrap();
        let v: Vec<f64> = rows.iter().map(|r| r.values[0].as_f64().unwrap()).collect();
        assert_eq!(v, [0.25, 0.5, 0.75, 1.0], "{f}");
    }
}

#[test]
fn bad_record_limits() {
    let tally = |good, bad| ReadTally {
        good,
        bad,
        fatal: None,
        first: vec!["f.csv: record 3: oops".into()],
    };
    let p = std::path::Path::new("f.csv");
    assert_eq!(
        tally(5, 0).check(p, BadRecordLimit::default()).unwrap(),
        None
    );
    let e = tally(5, 1)
        .check(p, BadRecordLimit::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("f.csv: 1 bad records of 6") && e.contains("record 3: oops"),
        "{e}"
    );
    let note = tally(5, 1)
        .check(p, BadRecordLimit::Count(1))
        .unwrap()
        .unwrap();
    assert!(note.contains("skipped 1 bad records of 6"), "{note}");
    assert!(tally(0, 2)
        .check(p, BadRecordLimit::Count(9))
        .unwrap_err()
        .to_string()
        .contains("every record is bad"));
    assert!(tally(3, 1).check(p, "25%".parse().unwrap()).is_ok());
    assert!(tally(3, 1).check(p, "0.2".parse().unwrap()).is_err());
    let mut f = tally(3, 0);
    f.fatal = Some("f.csv: permission denied".into());
    assert!(f.check(p, BadRecordLimit::Count(100)).is_err());
    assert!("-1".parse::<BadRecordLimit>().is_err());
    assert!("1.5".parse::<BadRecordLimit>().is_err());
}
