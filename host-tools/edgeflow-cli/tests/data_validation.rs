//! `edgeflow data schema` and `edgeflow data validate` end to end on the fixtures of
//! crates/edgeflow-data/tests/fixtures/schema (each built to carry one kind of anomaly).

mod common;
use common::{edgeflow, s, text};

use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    common::tmp_in("data_validation", name)
}

fn fix(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/edgeflow-data/tests/fixtures/schema")
        .join(name)
}

/// Infers the training schema into `tag`.json and returns its path.
fn schema(tag: &str) -> PathBuf {
    let out = tmp(&format!("{tag}.json"));
    let o = edgeflow(&["data", "schema", s(&fix("train.csv")), "-o", s(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("400 records, 4 columns"), "{}", text(&o));
    out
}

#[test]
fn clean_data_passes_and_each_anomaly_fails_naming_column_and_record() {
    let sc = schema("cli");
    let o = edgeflow(&[
        "data",
        "validate",
        s(&fix("clean.csv")),
        "--schema",
        s(&sc),
        "--against",
        s(&fix("train.csv")),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("no anomalies"), "{}", text(&o));
    for (file, needle) in [
        ("new_category.csv", "new_category.csv: record 7 (and 1 more): column \"color\": new category: expected one of blue, green, red, saw \"purple\""),
        ("out_of_range.csv", "out_of_range.csv: record 12: column \"x\": out of range: expected values in [0.5, 9.5], saw 42"),
        ("missing_column.csv", "column \"color\": missing column"),
        ("unexpected_column.csv", "column \"extra\": unexpected column"),
        ("type_change.csv", "type_change.csv: record 3: column \"count\": type change"),
        ("missing_rate.csv", "column \"color\": missing rate: expected always present, saw 3 of 50 records missing"),
    ] {
        let o = edgeflow(&["data", "validate", s(&fix(file)), "--schema", s(&sc)]);
        assert!(!o.status.success(), "{file}: {}", text(&o));
        assert!(text(&o).contains(needle), "{file}: {}", text(&o));
        assert!(text(&o).contains("1 anomaly against"), "{file}: {}", text(&o));
    }
}

#[test]
fn skew_against_training_data_and_json_output() {
    let sc = schema("skew");
    let o = edgeflow(&[
        "data",
        "validate",
        s(&fix("skewed.csv")),
        "--schema",
        s(&sc),
        "--against",
        s(&fix("train.csv")),
        "--json",
    ]);
    assert!(!o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    let a = v["anomalies"].as_array().expect("anomalies");
    let kinds: Vec<(&str, &str, &str)> = a
        .iter()
        .map(|a| {
            (
                a["kind"].as_str().unwrap_or("?"),
                a["column"].as_str().unwrap_or("?"),
                a["measure"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [("skew", "x", "jensen_shannon"), ("skew", "color", "linf")]
    );
    assert!(a[0]["value"].as_f64().expect("value") > 0.1);
    assert!(a[0]["location"]["file"]
        .as_str()
        .expect("file")
        .ends_with("skewed.csv"));
    // Thresholds are options.
    let o = edgeflow(&[
        "data",
        "validate",
        s(&fix("skewed.csv")),
        "--schema",
        s(&sc),
        "--against",
        s(&fix("train.csv")),
        "--js-threshold",
        "0.6",
        "--linf-threshold",
        "0.5",
    ]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn unreadable_inputs_are_named_errors() {
    let o = edgeflow(&[
        "data",
        "schema",
        s(&fix("absent.csv")),
        "-o",
        s(&tmp("x.json")),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("absent.csv"), "{}", text(&o));
    let bad = tmp("bad_schema.json");
    std::fs::write(&bad, "{\"format\": \"something else\"}").expect("write");
    let o = edgeflow(&[
        "data",
        "validate",
        s(&fix("clean.csv")),
        "--schema",
        s(&bad),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("bad_schema.json"), "{}", text(&o));
    let o = edgeflow(&[
        "data",
        "validate",
        s(&fix("clean.csv")),
        "--schema",
        s(&tmp("none.json")),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("none.json"), "{}", text(&o));
}
