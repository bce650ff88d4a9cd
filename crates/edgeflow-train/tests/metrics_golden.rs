//! Metrics against scikit-learn 1.7.2 on fixed predictions (goldens from
//! `scripts/make_metric_goldens.py`; no Python at test time).

use edgeflow_train::metrics;
use serde_json::Value;

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn close(a: f64, b: f64, what: &str, case: &str) {
    assert!(
        (a - b).abs() <= 1e-12,
        "{case}: {what} = {a}, scikit-learn says {b}"
    );
}

#[test]
fn metrics_match_scikit_learn() {
    let doc: Value =
        serde_json::from_str(include_str!("golden/metrics.json")).expect("golden JSON");
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 4);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let classes = c["classes"].as_u64().unwrap() as usize;
        let y: Vec<usize> = c["y_true"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let scores: Vec<Vec<f32>> = c["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| f64s(r).into_iter().map(|v| v as f32).collect())
            .collect();
        let threshold = c["threshold"].as_f64();
        let r = metrics::report(&y, &scores, classes, true, threshold);
        close(
            r.accuracy,
            c["accuracy"].as_f64().unwrap(),
            "accuracy",
            name,
        );
        close(
            r.balanced_accuracy,
            c["balanced_accuracy"].as_f64().unwrap(),
            "balanced accuracy",
            name,
        );
        for (what, got) in [
            ("precision", &r.precision),
            ("recall", &r.recall),
            ("f1", &r.f1),
        ] {
            let want = f64s(&c[what]);
            assert_eq!(got.len(), want.len(), "{name}: {what} length");
            for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                close(*a, *b, &format!("{what}[{k}]"), name);
            }
        }
        let support: Vec<usize> = f64s(&c["support"])
            .into_iter()
            .map(|v| v as usize)
            .collect();
        assert_eq!(r.support, support, "{name}: support");
        let cm: Vec<Vec<usize>> = c["confusion"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| f64s(row).into_iter().map(|v| v as usize).collect())
            .collect();
        assert_eq!(r.confusion, cm, "{name}: confusion matrix");
        close(r.ece.unwrap(), c["ece"].as_f64().unwrap(), "ECE", name);
        match c["roc_auc"].as_f64() {
            Some(want) => close(r.roc_auc.unwrap(), want, "ROC-AUC", name),
            None => assert!(r.roc_auc.is_none(), "{name}: no ROC-AUC for multiclass"),
        }
        match c["pr_auc"].as_f64() {
            Some(want) => close(r.pr_auc.unwrap(), want, "average precision", name),
            None => assert!(r.pr_auc.is_none()),
        }
    }
}

#[test]
fn best_f1_threshold_separates_separable_scores() {
    let y = [false, false, true, true];
    let s = [0.1, 0.4, 0.35, 0.8];
    // Thresholds 0.8 (F1 2/3), 0.4 (tp 1, fp 1: F1 0.5), 0.35 (tp 2, fp 1: F1 0.8), 0.1 (F1 2/3).
    assert_eq!(metrics::best_f1_threshold(&y, &s), Some(0.35));
    assert_eq!(metrics::roc_auc(&[true, true], &[0.1, 0.2]), None);
}
