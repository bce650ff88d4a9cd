//! Deterministic operators against tf.data's own outputs
//! (tests/golden/tfdata_ops.json, written by scripts/make_tfdata_goldens.py with
//! tensorflow-cpu 2.21.0).

#![allow(clippy::unwrap_used)]

use edgeflow_data::{Dataset, PadTo, PaddedBatch};
use serde_json::Value;

fn golden() -> Vec<Value> {
    let text = include_str!("golden/tfdata_ops.json");
    let v: Value = serde_json::from_str(text).expect("golden file is JSON");
    v["cases"].as_array().expect("cases").clone()
}

fn u(v: &Value, k: &str) -> usize {
    v[k].as_u64().unwrap_or_else(|| panic!("{k}")) as usize
}

fn b(v: &Value, k: &str) -> bool {
    v[k].as_bool().unwrap_or_else(|| panic!("{k}"))
}

fn usizes(v: &Value, k: &str) -> Vec<usize> {
    v[k].as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

fn seqs(lengths: &[usize]) -> Dataset<Vec<i64>> {
    let v: Vec<Vec<i64>> = lengths
        .iter()
        .enumerate()
        .map(|(i, &n)| vec![i as i64 + 1; n])
        .collect();
    Dataset::from_vec(v)
}

fn rows(batches: Vec<PaddedBatch<i64>>) -> Value {
    let out: Vec<Vec<Vec<i64>>> = batches
        .iter()
        .map(|p| (0..p.rows).map(|r| p.row(r).unwrap().to_vec()).collect())
        .collect();
    serde_json::to_value(out).unwrap()
}

#[test]
fn operators_match_tf_data() {
    let cases = golden();
    assert!(cases.len() >= 20);
    for c in &cases {
        let p = &c["params"];
        let name = c["name"].as_str().unwrap();
        let got: Value = match name {
            "window" => {
                let d = Dataset::range(0, u(p, "n") as i64).window(
                    u(p, "size"),
                    u(p, "shift"),
                    u(p, "stride"),
                    b(p, "drop"),
                );
                serde_json::to_value(d.collect_vec().unwrap()).unwrap()
            }
            "interleave" => {
                let d = Dataset::range(0, u(p, "n") as i64).interleave(
                    u(p, "cycle"),
                    u(p, "block"),
                    false,
                    |x| Dataset::range(x * 10, x * 10 + x + 1),
                );
                let par = Dataset::range(0, u(p, "n") as i64).interleave(
                    u(p, "cycle"),
                    u(p, "block"),
                    true,
                    |x| Dataset::range(x * 10, x * 10 + x + 1),
                );
                assert_eq!(d.collect_vec().unwrap(), par.collect_vec().unwrap());
                serde_json::to_value(d.collect_vec().unwrap()).unwrap()
            }
            "batch" => {
                let d = Dataset::range(0, u(p, "n") as i64).batch(u(p, "size"), b(p, "drop"));
                serde_json::to_value(d.collect_vec().unwrap()).unwrap()
            }
            "shard" => {
                let d = Dataset::range(0, u(p, "n") as i64)
                    .shard(u(p, "num") as u64, u(p, "index") as u64);
                serde_json::to_value(d.collect_vec().unwrap()).unwrap()
            }
            "padded_batch" => {
                let d = seqs(&usizes(p, "lengths")).padded_batch(
                    u(p, "size"),
                    PadTo::Longest,
                    -1,
                    false,
                );
                rows(d.collect_vec().unwrap())
            }
            "bucket" => {
                let d = seqs(&usizes(p, "lengths")).bucket_by_sequence_length(
                    usizes(p, "boundaries"),
                    usizes(p, "sizes"),
                    0,
                    b(p, "pad_to_boundary"),
                    b(p, "drop"),
                );
                rows(d.collect_vec().unwrap())
            }
            other => panic!("unknown case {other}"),
        };
        assert_eq!(got, c["output"], "{name} {p}");
    }
}
