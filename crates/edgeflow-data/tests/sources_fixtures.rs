//! File readers against files written, and decoded, by reference implementations
//! (TensorFlow, numpy, pyarrow, Pillow, Python's `wave`): see scripts/make_fixtures.py
//! and scripts/make_tfdata_goldens.py.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use edgeflow_data::sources::image::read_image;
use edgeflow_data::sources::npy::{npy, npy_info, npz, npz_names, TensorData};
use edgeflow_data::sources::parquet::ParquetTable;
use edgeflow_data::sources::tfrecord::{tfrecord_examples, Feature};
use edgeflow_data::sources::wav::read_wav;
use edgeflow_data::{BadRecords, ColumnType, Value};
use serde_json::Value as J;

fn fx(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn expected() -> J {
    serde_json::from_str(&std::fs::read_to_string(fx("expected.json")).unwrap()).unwrap()
}

fn f64s(v: &J) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn tfrecord_examples_match_tensorflow() {
    let want: J =
        serde_json::from_str(&std::fs::read_to_string(fx("examples.tfrecord.json")).unwrap())
            .unwrap();
    let got = tfrecord_examples(fx("examples.tfrecord"), BadRecords::Error)
        .collect_vec()
        .unwrap();
    assert_eq!(got.len(), 5);
    for (g, w) in got.iter().zip(want.as_array().unwrap()) {
        let Feature::Float(f) = &g.features["floats"] else {
            panic!("floats")
        };
        assert_eq!(
            f.iter().map(|&x| f64::from(x)).collect::<Vec<_>>(),
            f64s(&w["floats"])
        );
        let Feature::Int64(i) = &g.features["ints"] else {
            panic!("ints")
        };
        let wi: Vec<i64> = w["ints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect();
        assert_eq!(i, &wi);
        let Feature::Bytes(b) = &g.features["blob"] else {
            panic!("blob")
        };
        let wb: Vec<Vec<u8>> = serde_json::from_value(w["blob"].clone()).unwrap();
        assert_eq!(b, &wb);
    }
}

#[test]
fn npy_arrays_match_numpy() {
    let e = expected();
    for name in [
        "f32.npy",
        "f64_be.npy",
        "i64.npy",
        "u8.npy",
        "bool.npy",
        "i16_3d.npy",
    ] {
        let w = &e[name];
        let info = npy_info(&fx(name)).unwrap();
        let shape: Vec<usize> = serde_json::from_value(w["shape"].clone()).unwrap();
        assert_eq!(info.shape, shape, "{name}");
        assert_eq!(info.descr, w["descr"].as_str().unwrap(), "{name}");
        let rows = npy(fx(name), BadRecords::Error).collect_vec().unwrap();
        assert_eq!(rows.len(), shape[0], "{name}");
        assert!(rows.iter().all(|r| r.shape == shape[1..]));
        let mut flat = Vec::new();
        for r in &rows {
            match &r.data {
                // i64 values beyond 2^53 are compared exactly, not through f64
                TensorData::I64(v) => flat.extend(v.iter().map(|&x| J::from(x))),
                TensorData::Bool(v) => flat.extend(v.iter().map(|&x| J::from(x))),
                d => flat.extend(d.to_f64().into_iter().map(J::from)),
            }
        }
        let want: Vec<J> = w["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                if name == "i64.npy" || name == "bool.npy" {
                    x.clone()
                } else {
                    J::from(x.as_f64().unwrap())
                }
            })
            .collect();
        assert_eq!(flat, want, "{name}");
    }
}

#[test]
fn npz_members_match_numpy() {
    let e = &expected()["compressed.npz"];
    let mut names = npz_names(&fx("compressed.npz")).unwrap();
    names.sort();
    assert_eq!(names, ["labels", "x"]);
    for n in ["x", "labels"] {
        let rows = npz(fx("compressed.npz"), n, BadRecords::Error)
            .collect_vec()
            .unwrap();
        let flat: Vec<f64> = rows.iter().flat_map(|r| r.data.to_f64()).collect();
        assert_eq!(flat, f64s(&e[n]["values"]), "{n}");
    }
    let stored = npz(fx("stored.npz"), "y", BadRecords::Error)
        .collect_vec()
        .unwrap();
    assert_eq!(
        stored[0].data,
        TensorData::I64(vec![-(1 << 62), (1 << 62) + 1])
    );
    let missing = npz(fx("stored.npz"), "nope", BadRecords::Error)
        .collect_vec()
        .unwrap_err();
    assert!(missing.to_string().contains("stored.npz") && missing.to_string().contains("nope.npy"));
}

#[test]
fn parquet_rows_match_pyarrow() {
    let want = &expected()["table.parquet"];
    for f in ["table_snappy.parquet", "table_none.parquet"] {
        let t = ParquetTable::open(fx(f), BadRecords::Error).unwrap();
        assert_eq!(t.num_rows(), 4);
        let types: Vec<(&str, ColumnType, bool)> = t
            .schema()
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.ty, c.nullable))
            .collect();
        assert_eq!(
            types,
            [
                ("id", ColumnType::Int, true),
                ("x", ColumnType::Float, true),
                ("name", ColumnType::Str, true),
                ("flag", ColumnType::Bool, true),
                ("small", ColumnType::Int, true),
                ("vec", ColumnType::List, true),
            ]
        );
        let rows = t.rows().collect_vec().unwrap();
        for (r, w) in rows.iter().zip(want.as_array().unwrap()) {
            for (c, v) in t.schema().columns.iter().zip(&r.values) {
                let wv = &w[&c.name];
                let ok = match v {
                    Value::Null => wv.is_null(),
                    Value::Int(i) => wv.as_i64() == Some(*i),
                    Value::Float(x) => wv.as_f64() == Some(*x),
                    Value::Str(s) => wv.as_str() == Some(s),
                    Value::Bool(b) => wv.as_bool() == Some(*b),
                    Value::List(l) => {
                        l.iter().map(|x| x.as_f64().unwrap()).collect::<Vec<_>>() == f64s(wv)
                    }
                    Value::Bytes(_) => false,
                };
                assert!(ok, "{f} {}: {v:?} vs {wv}", c.name);
            }
        }
    }
    let e = ParquetTable::open(fx("rgb.png"), BadRecords::Error)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("rgb.png") && e.contains("not a readable Parquet file"),
        "{e}"
    );
}

#[test]
fn images_match_pillow() {
    let e = expected();
    for name in ["rgb.png", "grey.png"] {
        let im = read_image(&fx(name)).unwrap();
        let shape: Vec<usize> = serde_json::from_value(e[name]["shape"].clone()).unwrap();
        assert_eq!([im.height, im.width, im.channels], shape[..], "{name}");
        let want: Vec<u8> = serde_json::from_value(e[name]["values"].clone()).unwrap();
        assert_eq!(im.data, want, "{name}");
    }
    // JPEG decoders may round the inverse DCT differently: within 3 levels of libjpeg.
    let im = read_image(&fx("rgb.jpg")).unwrap();
    let want: Vec<u8> = serde_json::from_value(e["rgb.jpg"]["values"].clone()).unwrap();
    assert_eq!(im.data.len(), want.len());
    let worst = im
        .data
        .iter()
        .zip(&want)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    assert!(worst <= 3, "max difference {worst}");
}

#[test]
fn wav_matches_python_wave() {
    let e = expected();
    for name in ["stereo16.wav", "mono8.wav"] {
        let a = read_wav(&fx(name)).unwrap();
        assert_eq!(u64::from(a.sample_rate), e[name]["rate"].as_u64().unwrap());
        assert_eq!(u64::from(a.channels), e[name]["channels"].as_u64().unwrap());
        let got: Vec<f64> = a.samples.iter().map(|&x| f64::from(x)).collect();
        assert_eq!(got, f64s(&e[name]["samples"]), "{name}");
    }
}
