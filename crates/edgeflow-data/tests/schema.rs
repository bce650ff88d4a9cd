//! Data validation: a schema inferred from `fixtures/schema/train.csv`, each fixture built
//! (by `scripts/make_schema_goldens.py`) to carry one kind of anomaly, skew measures
//! against goldens from scipy, and BasicMotions train vs test when the data is present.

use std::path::{Path, PathBuf};

use edgeflow_data::schema::{
    self, infer, skew_measures, validate, AnomalyKind, InferOptions, Schema, ValidateOptions,
};
use edgeflow_data::ColumnType;

fn fix(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/schema")
        .join(name)
}

fn train_schema() -> Schema {
    let t = schema::open(&fix("train.csv"), 1000).unwrap();
    infer(&t, &InferOptions::default()).unwrap()
}

fn check(name: &str) -> Vec<edgeflow_data::schema::Anomaly> {
    let t = schema::open(&fix(name), 1000).unwrap();
    validate(&train_schema(), &t, None, &ValidateOptions::default()).unwrap()
}

#[test]
fn inferred_schema_describes_the_training_data() {
    let s = train_schema();
    assert_eq!(s.records, 400);
    let names: Vec<&str> = s.features.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["x", "count", "color", "note"]);
    let x = s.feature("x").unwrap();
    assert_eq!(x.ty, ColumnType::Float);
    let n = x.numeric.as_ref().unwrap();
    // The generator pins the training extremes.
    assert_eq!((n.min, n.max), (0.5, 9.5));
    assert_eq!(n.counts.iter().sum::<u64>(), 400);
    assert_eq!(s.feature("count").unwrap().ty, ColumnType::Int);
    let colors: Vec<&str> = s
        .feature("color")
        .unwrap()
        .domain
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.value.as_str())
        .collect();
    assert_eq!(colors, ["blue", "green", "red"]);
    let note = s.feature("note").unwrap();
    assert_eq!(note.missing_rate, 35.0 / 400.0);
    assert_eq!(s.feature("color").unwrap().missing_rate, 0.0);
    assert!(s.series.is_none());
}

#[test]
fn schema_round_trips_through_json_and_rejects_bad_files() {
    let s = train_schema();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("schema.json");
    s.save(&p).unwrap();
    assert_eq!(Schema::load(&p).unwrap(), s);
    let text = std::fs::read_to_string(&p).unwrap();
    let e = Schema::from_json(&text.replace("\"version\": 1", "\"version\": 9")).unwrap_err();
    assert!(e.contains("version 9"), "{e}");
    let e = Schema::from_json(&text.replacen("\"records\"", "\"recordz\"", 1)).unwrap_err();
    assert!(e.contains("recordz") && e.contains("line"), "{e}");
    std::fs::write(&p, "{").unwrap();
    let e = Schema::load(&p).unwrap_err().to_string();
    assert!(e.contains("schema.json"), "{e}");
}

#[test]
fn data_of_the_same_distribution_has_no_anomaly() {
    let a = check("clean.csv");
    assert!(a.is_empty(), "{a:#?}");
    // The training data itself conforms to its schema.
    let t = schema::open(&fix("train.csv"), 1000).unwrap();
    let a = validate(&train_schema(), &t, Some(&t), &ValidateOptions::default()).unwrap();
    assert!(a.is_empty(), "{a:#?}");
}

#[test]
fn new_category_names_column_values_and_first_record() {
    let a = check("new_category.csv");
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0].kind, AnomalyKind::NewCategory);
    assert_eq!(a[0].column, "color");
    assert_eq!(a[0].seen, "\"purple\"");
    assert_eq!(a[0].expected, "one of blue, green, red");
    assert_eq!(a[0].location.record, Some(7));
    assert_eq!(a[0].location.count, 2);
    let msg = a[0].to_string();
    assert!(
        msg.contains("new_category.csv: record 7 (and 1 more): column \"color\": new category"),
        "{msg}"
    );
}

#[test]
fn out_of_range_value_is_found_and_tolerance_widens_the_range() {
    let a = check("out_of_range.csv");
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0].kind, AnomalyKind::OutOfRange);
    assert_eq!((a[0].column.as_str(), a[0].seen.as_str()), ("x", "42"));
    assert_eq!(a[0].expected, "values in [0.5, 9.5]");
    assert_eq!(a[0].location.record, Some(12));
    // 42 is 3.6 spans (of 9) above the top: a tolerance of 4 spans accepts it, 3 does not.
    let t = schema::open(&fix("out_of_range.csv"), 1000).unwrap();
    let s = train_schema();
    let wide = ValidateOptions {
        range_tolerance: 4.0,
        ..Default::default()
    };
    assert!(validate(&s, &t, None, &wide).unwrap().is_empty());
    let narrow = ValidateOptions {
        range_tolerance: 3.0,
        ..Default::default()
    };
    assert_eq!(validate(&s, &t, None, &narrow).unwrap().len(), 1);
}

#[test]
fn missing_and_unexpected_columns() {
    let a = check("missing_column.csv");
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(
        (&a[0].kind, a[0].column.as_str()),
        (&AnomalyKind::MissingColumn, "color")
    );
    assert_eq!(a[0].location.record, None);
    let a = check("unexpected_column.csv");
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(
        (&a[0].kind, a[0].column.as_str()),
        (&AnomalyKind::UnexpectedColumn, "extra")
    );
    assert_eq!(a[0].seen, "a int column");
}

#[test]
fn type_change_names_the_record_and_value() {
    let a = check("type_change.csv");
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(
        (&a[0].kind, a[0].column.as_str()),
        (&AnomalyKind::TypeChange, "count")
    );
    assert_eq!(a[0].location.record, Some(3));
    // Only the one word; the numbers in the now-string column still read as numbers.
    assert_eq!(a[0].location.count, 1);
    assert!(a[0].seen.contains("\"many\""), "{}", a[0].seen);
}

#[test]
fn missing_rate_above_the_schemas() {
    let a = check("missing_rate.csv");
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0].column, "color");
    match a[0].kind {
        AnomalyKind::MissingRate { rate, limit } => {
            assert_eq!(rate, 3.0 / 50.0);
            assert_eq!(limit, 0.0);
        }
        ref k => panic!("{k:?}"),
    }
    assert_eq!(a[0].expected, "always present");
    assert_eq!(a[0].location.count, 3);
}

#[derive(serde::Deserialize)]
struct Golden {
    serving: std::collections::BTreeMap<String, std::collections::BTreeMap<String, (String, f64)>>,
}

#[test]
fn skew_measures_match_scipy() {
    let g: Golden = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/schema_skew.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let s = train_schema();
    let train = schema::open(&fix("train.csv"), 1000).unwrap();
    for (file, want) in &g.serving {
        let serving = schema::open(&fix(file), 1000).unwrap();
        let got = skew_measures(&s, &train, &serving).unwrap();
        assert_eq!(got.len(), want.len(), "{file}: {got:?}");
        for (col, measure, value) in got {
            let (m, v) = &want[&col];
            assert_eq!(measure, m, "{file} {col}");
            assert!(
                (value - v).abs() < 1e-12,
                "{file} {col}: {value} vs scipy {v}"
            );
        }
    }
}

#[test]
fn skew_is_reported_above_its_thresholds_only() {
    let s = train_schema();
    let train = schema::open(&fix("train.csv"), 1000).unwrap();
    let sk = schema::open(&fix("skewed.csv"), 1000).unwrap();
    let a = validate(&s, &sk, Some(&train), &ValidateOptions::default()).unwrap();
    let cols: Vec<(&str, &str)> = a
        .iter()
        .map(|a| match &a.kind {
            AnomalyKind::Skew { measure, .. } => (a.column.as_str(), measure.as_str()),
            k => panic!("unexpected {k:?}"),
        })
        .collect();
    assert_eq!(cols, [("x", "jensen_shannon"), ("color", "linf")]);
    assert!(a[0].expected.contains("train.csv"));
    // Looser thresholds: nothing.
    let loose = ValidateOptions {
        js_threshold: 0.6,
        linf_threshold: 0.5,
        ..Default::default()
    };
    assert!(validate(&s, &sk, Some(&train), &loose).unwrap().is_empty());
}

#[test]
fn corrupt_records_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.csv");
    // A quoted field that never ends is a malformed record.
    std::fs::write(&p, "x,count,color,note\n1.0,2,red,a\n1.0,2,\"red,a\n").unwrap();
    let t = schema::open(&p, 1).unwrap();
    match validate(&train_schema(), &t, None, &ValidateOptions::default()) {
        Err(e) => assert!(e.to_string().contains("bad.csv"), "{e}"),
        Ok(a) => panic!("no error: {a:?}"),
    }
}

fn basicmotions() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/data/BasicMotions");
    d.join("BasicMotions_TEST.ts").exists().then_some(d)
}

#[test]
fn basicmotions_test_split_conforms_to_the_training_schema() {
    let Some(d) = basicmotions() else {
        println!("SKIPPED basicmotions schema test: run crates/edgeflow-data/scripts/fetch_basicmotions.sh first");
        return;
    };
    let train = schema::open(&d.join("BasicMotions_TRAIN.ts"), 1000).unwrap();
    let test = schema::open(&d.join("BasicMotions_TEST.ts"), 1000).unwrap();
    let s = infer(&train, &InferOptions::default()).unwrap();
    let series = s.series.as_ref().unwrap();
    assert_eq!(
        (series.axes, series.min_length, series.max_length),
        (6, 100, 100)
    );
    // The test split's extremes lie a little beyond the 40 training series': allow 25 %
    // of each range, and skew measured on the per-series summaries.
    let opts = ValidateOptions {
        range_tolerance: 0.25,
        js_threshold: 0.2,
        ..Default::default()
    };
    let a = validate(&s, &test, Some(&train), &opts).unwrap();
    assert!(a.is_empty(), "{a:#?}");
    // An injected sensor fault (axis 2 stuck far out of range in one case) is found.
    let dir = tempfile::tempdir().unwrap();
    let faulty = dir.path().join("faulty.ts");
    let text = std::fs::read_to_string(d.join("BasicMotions_TEST.ts")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let data = lines
        .iter()
        .position(|l| l.trim().eq_ignore_ascii_case("@data"))
        .unwrap();
    let case = &mut lines[data + 5];
    let mut dims: Vec<String> = case.split(':').map(str::to_string).collect();
    let n = dims[2].split(',').count();
    dims[2] = vec!["500"; n].join(",");
    *case = dims.join(":");
    std::fs::write(&faulty, lines.join("\n") + "\n").unwrap();
    let f = schema::open(&faulty, 1000).unwrap();
    let a = validate(&s, &f, None, &opts).unwrap();
    let axis: Vec<&str> = a
        .iter()
        .filter(|a| a.kind == AnomalyKind::OutOfRange)
        .map(|a| a.column.as_str())
        .collect();
    assert!(axis.contains(&"axis 2"), "{a:#?}");
    let ax2 = a.iter().find(|a| a.column == "axis 2").unwrap();
    assert_eq!(ax2.location.record, Some(4));
}

#[test]
fn identifier_columns_get_no_domain() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ids.csv");
    std::fs::write(&p, "id,c\na,x\nb,x\nc,y\nd,y\n").unwrap();
    let s = infer(&schema::open(&p, 100).unwrap(), &InferOptions::default()).unwrap();
    assert!(s.feature("id").unwrap().domain.is_none());
    assert_eq!(s.feature("c").unwrap().domain.as_ref().unwrap().len(), 2);
    // So new ids are not new categories.
    let q = dir.path().join("new.csv");
    std::fs::write(&q, "id,c\ne,x\nf,y\n").unwrap();
    let a = validate(
        &s,
        &schema::open(&q, 100).unwrap(),
        None,
        &ValidateOptions::default(),
    )
    .unwrap();
    assert!(a.is_empty(), "{a:#?}");
}
