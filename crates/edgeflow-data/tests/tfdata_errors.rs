//! Where error items sit in every operator's output, against tf.data's own outputs
//! (tests/golden/tfdata_errors.json, written by scripts/make_tfdata_goldens.py with
//! tensorflow-cpu 2.21.0). `parsed(v)` parses the strings `v` as integers; `"x"` fails,
//! so it is an error item at its position. Outputs are compared item by item, with
//! error items written `"ERR"`.
//!
//! A case's `expected` equals tf.data's output except where the golden file says why
//! not (`note`): `skip`, where tf.data 2.21 forgets elements it had skipped before an
//! error, and `padded_batch`, which this crate keeps in step with `batch` (the expected
//! output there comes from tf.data's `ragged_batch` + `to_tensor`).

#![allow(clippy::unwrap_used)]

use edgeflow_data::{Dataset, PadTo, PaddedBatch};
use serde::Serialize;
use serde_json::Value;

fn golden() -> Vec<Value> {
    let text = include_str!("golden/tfdata_errors.json");
    let v: Value = serde_json::from_str(text).expect("golden file is JSON");
    v["cases"].as_array().expect("cases").clone()
}

fn u(v: &Value, k: &str) -> usize {
    v[k].as_u64().unwrap_or_else(|| panic!("{k}")) as usize
}

fn b(v: &Value, k: &str) -> bool {
    v[k].as_bool().unwrap_or_else(|| panic!("{k}"))
}

fn strs(v: &Value, k: &str) -> Vec<String> {
    v[k].as_array()
        .unwrap_or_else(|| panic!("{k}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

fn usizes(v: &Value, k: &str) -> Vec<usize> {
    v[k].as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

fn parsed(v: Vec<String>) -> Dataset<i64> {
    Dataset::from_vec(v).try_map(|s: String| s.parse::<i64>())
}

/// Each parsed `n` becomes `[n] * (n % 3 + 1)`, as in the script.
fn seq_of(d: Dataset<i64>) -> Dataset<Vec<i64>> {
    d.map(|n| vec![n; (n % 3 + 1) as usize])
}

fn seqs(lengths: &[usize]) -> Dataset<Vec<i64>> {
    let v: Vec<Vec<i64>> = lengths
        .iter()
        .enumerate()
        .map(|(i, &n)| vec![i as i64 + 1; n])
        .collect();
    Dataset::from_vec(v)
}

/// The items of epoch 0 as JSON, error items as "ERR"; each element mapped by `f`.
fn items<T: Send + 'static>(d: &Dataset<T>, f: impl Fn(T) -> Value) -> Value {
    Value::Array(
        d.iter_epoch(0)
            .map(|r| match r {
                Ok(x) => f(x),
                Err(_) => Value::String("ERR".into()),
            })
            .collect(),
    )
}

fn json<T: Serialize>(x: T) -> Value {
    serde_json::to_value(x).unwrap()
}

fn rows(p: PaddedBatch<i64>) -> Value {
    json(
        (0..p.rows)
            .map(|r| p.row(r).unwrap().to_vec())
            .collect::<Vec<_>>(),
    )
}

#[test]
fn error_items_sit_where_tf_data_puts_them() {
    let cases = golden();
    assert!(cases.len() >= 35, "{} cases", cases.len());
    let mut seen = std::collections::BTreeSet::new();
    for c in &cases {
        let p = &c["params"];
        let name = c["name"].as_str().unwrap();
        seen.insert(name.to_string());
        let got: Value = match name {
            "window" => items(
                &parsed(strs(p, "input")).window(
                    u(p, "size"),
                    u(p, "shift"),
                    u(p, "stride"),
                    b(p, "drop"),
                ),
                json,
            ),
            "batch" => items(
                &parsed(strs(p, "input")).batch(u(p, "size"), b(p, "drop")),
                json,
            ),
            "padded_batch" => items(
                &seq_of(parsed(strs(p, "input"))).padded_batch(
                    u(p, "size"),
                    PadTo::Longest,
                    -1,
                    b(p, "drop"),
                ),
                rows,
            ),
            "take" => items(&parsed(strs(p, "input")).take(u(p, "n") as u64), json),
            "take_ignore_errors" => items(
                &parsed(strs(p, "input"))
                    .take(u(p, "n") as u64)
                    .ignore_errors(),
                json,
            ),
            "skip" => items(&parsed(strs(p, "input")).skip(u(p, "n") as u64), json),
            "shard" => items(
                &parsed(strs(p, "input")).shard(u(p, "num") as u64, u(p, "index") as u64),
                json,
            ),
            "enumerate" => items(
                &parsed(strs(p, "input")).enumerate_from(u(p, "start") as u64),
                json,
            ),
            "filter_even" => items(&parsed(strs(p, "input")).filter(|x| x % 2 == 0), json),
            "zip" => items(
                &parsed(strs(p, "input")).zip(&parsed(strs(p, "other"))),
                json,
            ),
            "batch_unbatch" => items(
                &parsed(strs(p, "input"))
                    .batch(u(p, "size"), false)
                    .unbatch(),
                json,
            ),
            "interleave" => {
                let inner = strs(p, "inner");
                let build = |parallel: bool| {
                    let inner = inner.clone();
                    parsed(strs(p, "outer")).interleave(
                        u(p, "cycle"),
                        u(p, "block"),
                        parallel,
                        move |i| parsed(inner.clone()).map(move |x| x + 10 * i),
                    )
                };
                let seq = items(&build(false), json);
                assert_eq!(items(&build(true), json), seq, "parallel interleave {p}");
                seq
            }
            "bucket_errors" => items(
                &parsed(strs(p, "input"))
                    .map(|n| vec![n; n as usize])
                    .bucket_by_sequence_length(
                        usizes(p, "boundaries"),
                        usizes(p, "sizes"),
                        0,
                        false,
                        false,
                    ),
                rows,
            ),
            "bucket_pad_to_boundary" => {
                let sq: Vec<Vec<i64>> = serde_json::from_value(p["seqs"].clone()).unwrap();
                let d = Dataset::from_vec(sq).bucket_by_sequence_length(
                    usizes(p, "boundaries"),
                    usizes(p, "sizes"),
                    0,
                    true,
                    false,
                );
                // The error names the length and the last boundary.
                let e = d.iter_epoch(0).find_map(|r| r.err()).unwrap().to_string();
                assert!(e.contains("last boundary 8") && e.contains("length"), "{e}");
                items(&d, rows)
            }
            "bucket_no_padding" => items(
                &seqs(&usizes(p, "lengths")).bucket_by_sequence_length_no_padding(
                    usizes(p, "boundaries"),
                    usizes(p, "sizes"),
                    b(p, "drop"),
                ),
                json,
            ),
            "padded_unbatch" => {
                let lengths = usizes(p, "lengths");
                let pb = seqs(&lengths).padded_batch(u(p, "size"), PadTo::Longest, -1, false);
                // unbatch() restores the sequences; unbatch_padded() is tf.data's unbatch.
                assert_eq!(
                    pb.unbatch().collect_epoch(0).unwrap(),
                    seqs(&lengths).collect_epoch(0).unwrap()
                );
                items(&pb.unbatch_padded(), json)
            }
            other => panic!("unknown case {other}"),
        };
        assert_eq!(got, c["expected"], "{name} {p}");
        if c["expected"] != c["tfdata"] {
            assert!(c["note"].is_string(), "{name}: a deviation without a note");
        }
    }
    for must in [
        "window",
        "batch",
        "padded_batch",
        "take",
        "skip",
        "shard",
        "enumerate",
        "interleave",
        "bucket_pad_to_boundary",
        "bucket_no_padding",
        "padded_unbatch",
    ] {
        assert!(seen.contains(must), "no {must} case in the golden file");
    }
}

/// The DATASET.md cases, spelled out (their tf.data answers are in the golden file too).
#[test]
fn dataset_md_cases() {
    let p = |v: &[&str]| parsed(v.iter().map(|s| s.to_string()).collect());
    let show = |d: &Dataset<Vec<i64>>| -> Vec<String> {
        d.iter_epoch(0)
            .map(|r| match r {
                Ok(v) => format!("{v:?}"),
                Err(_) => "ERR".into(),
            })
            .collect()
    };
    assert_eq!(
        show(&p(&["0", "1", "2", "x", "4", "5", "6", "7"]).window(3, 3, 1, false)),
        ["[0, 1, 2]", "ERR", "[6, 7]"]
    );
    assert_eq!(
        show(&p(&["0", "1", "x", "3", "4"]).window(2, 1, 1, false)),
        ["[0, 1]", "ERR", "ERR", "[3, 4]", "[4]"]
    );
    let b = p(&["0", "x", "2", "3", "4", "5", "6"]).batch(3, false);
    assert_eq!(show(&b), ["ERR", "[3, 4, 5]", "[6]"]);
    // The discarded good elements are counted, and ignore_errors counts one skip.
    let ig = p(&["0", "x", "2", "3", "4", "5", "6"])
        .batch(3, false)
        .ignore_errors();
    assert_eq!(ig.collect_epoch(0).unwrap(), vec![vec![3, 4, 5], vec![6]]);
    let st = ig.stats();
    assert_eq!(st.find("ignore_errors").unwrap().values.skipped, 1);
    assert_eq!(st.find("batch").unwrap().values.dropped, 2);
    let pad = Dataset::from_vec(vec![vec![1], vec![2; 12]]).bucket_by_sequence_length(
        vec![4, 8],
        vec![2, 2, 2],
        0,
        true,
        false,
    );
    let out: Vec<_> = pad.iter_epoch(0).collect();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].as_ref().unwrap().width, 3);
    let e = out[1].as_ref().unwrap_err().to_string();
    assert!(
        e.contains("length 12") && e.contains("last boundary 8"),
        "{e}"
    );
    assert_eq!(
        p(&["1", "x", "3", "4"])
            .take(3)
            .ignore_errors()
            .collect_epoch(0)
            .unwrap(),
        [1, 3, 4]
    );
}
