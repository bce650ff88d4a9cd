//! Classification metrics, defined as scikit-learn 1.7 defines them (tests compare with
//! goldens from `scripts/make_metric_goldens.py`):
//!
//! - accuracy: `accuracy_score`;
//! - balanced accuracy: `balanced_accuracy_score` (mean recall over classes present in
//!   `y_true`);
//! - precision, recall, F1 per class: `precision_recall_fscore_support(zero_division=0)`
//!   over the labels `0..classes`;
//! - confusion matrix: `confusion_matrix(labels=range(classes))`, rows = true class;
//! - ROC-AUC: `roc_auc_score` (trapezoidal area under the ROC curve, ties counted half);
//! - PR-AUC: `average_precision_score` (step-wise, no interpolation);
//! - ECE: expected calibration error of the top-1 score with 10 equal-width bins
//!   `(k/10, (k+1)/10]` (Guo et al. 2017, "On Calibration of Modern Neural Networks"):
//!   `sum_b |acc_b - conf_b| * n_b / n`.

use serde::{Deserialize, Serialize};

/// Metrics of a classifier on one split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Examples.
    pub n: usize,
    /// Fraction correct.
    pub accuracy: f64,
    /// Mean per-class recall.
    pub balanced_accuracy: f64,
    /// Per-class precision.
    pub precision: Vec<f64>,
    /// Per-class recall.
    pub recall: Vec<f64>,
    /// Per-class F1.
    pub f1: Vec<f64>,
    /// Per-class support (true examples).
    pub support: Vec<usize>,
    /// `confusion[t][p]`: examples of true class `t` predicted as `p`.
    pub confusion: Vec<Vec<usize>>,
    /// Expected calibration error (10 bins), when scores are probabilities.
    pub ece: Option<f64>,
    /// Binary models: ROC-AUC of the positive-class score.
    pub roc_auc: Option<f64>,
    /// Binary models: average precision of the positive-class score.
    pub pr_auc: Option<f64>,
    /// Binary models: the decision threshold used (chosen on validation).
    pub threshold: Option<f64>,
    /// Binary models: ROC curve points (false-positive rate, true-positive rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roc_curve: Option<Vec<(f64, f64)>>,
    /// Binary models: precision-recall curve points (recall, precision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr_curve: Option<Vec<(f64, f64)>>,
    /// When scores are probabilities: the reliability diagram behind [`Report::ece`],
    /// one entry per confidence bin (the same 10 bins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reliability: Option<Vec<ReliabilityBin>>,
}

/// One confidence bin of a reliability diagram.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    /// Lower edge (exclusive, except for the first bin).
    pub lo: f64,
    /// Upper edge (inclusive).
    pub hi: f64,
    /// Examples in the bin.
    pub count: usize,
    /// Their mean top-1 confidence (0 when empty).
    pub confidence: f64,
    /// Their accuracy (0 when empty).
    pub accuracy: f64,
}

/// The bins [`ece`] sums over: `bins` equal-width bins `(k/bins, (k+1)/bins]` of the
/// top-1 confidence (0 in the first), with count, mean confidence and accuracy each.
pub fn reliability(confidence: &[f64], correct: &[bool], bins: usize) -> Vec<ReliabilityBin> {
    let bins = bins.max(1);
    let mut out: Vec<ReliabilityBin> = (0..bins)
        .map(|k| ReliabilityBin {
            lo: k as f64 / bins as f64,
            hi: (k + 1) as f64 / bins as f64,
            count: 0,
            confidence: 0.0,
            accuracy: 0.0,
        })
        .collect();
    for (&c, &ok) in confidence.iter().zip(correct) {
        let k = ((c * bins as f64).ceil() as usize)
            .saturating_sub(1)
            .min(bins - 1);
        out[k].count += 1;
        out[k].confidence += c;
        out[k].accuracy += ok as u8 as f64;
    }
    for b in &mut out {
        if b.count > 0 {
            b.confidence /= b.count as f64;
            b.accuracy /= b.count as f64;
        }
    }
    out
}

/// Index of the largest score (the first on ties, as `numpy.argmax`).
pub fn argmax(s: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in s.iter().enumerate() {
        if v > s[best] {
            best = i;
        }
    }
    best
}

/// Fraction of `y_true == y_pred`.
pub fn accuracy(y_true: &[usize], y_pred: &[usize]) -> f64 {
    if y_true.is_empty() {
        return 0.0;
    }
    y_true.iter().zip(y_pred).filter(|(a, b)| a == b).count() as f64 / y_true.len() as f64
}

/// `confusion[t][p]` over classes `0..classes` (labels outside are ignored).
pub fn confusion(y_true: &[usize], y_pred: &[usize], classes: usize) -> Vec<Vec<usize>> {
    let mut m = vec![vec![0usize; classes]; classes];
    for (&t, &p) in y_true.iter().zip(y_pred) {
        if t < classes && p < classes {
            m[t][p] += 1;
        }
    }
    m
}

/// Per-class (precision, recall, F1, support), zero where undefined.
pub fn prf(cm: &[Vec<usize>]) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<usize>) {
    let k = cm.len();
    let (mut p, mut r, mut f, mut s) = (vec![0.0; k], vec![0.0; k], vec![0.0; k], vec![0; k]);
    for c in 0..k {
        let tp = cm[c][c] as f64;
        let pred: usize = (0..k).map(|t| cm[t][c]).sum();
        let support: usize = cm[c].iter().sum();
        s[c] = support;
        p[c] = if pred > 0 { tp / pred as f64 } else { 0.0 };
        r[c] = if support > 0 {
            tp / support as f64
        } else {
            0.0
        };
        f[c] = if p[c] + r[c] > 0.0 {
            2.0 * p[c] * r[c] / (p[c] + r[c])
        } else {
            0.0
        };
    }
    (p, r, f, s)
}

/// Mean recall over the classes with support.
pub fn balanced_accuracy(cm: &[Vec<usize>]) -> f64 {
    let (_, r, _, s) = prf(cm);
    let present: Vec<f64> = r
        .iter()
        .zip(&s)
        .filter(|(_, &n)| n > 0)
        .map(|(&v, _)| v)
        .collect();
    if present.is_empty() {
        0.0
    } else {
        present.iter().sum::<f64>() / present.len() as f64
    }
}

/// Distinct thresholds in decreasing order with cumulative (tp, fp) counts, as
/// scikit-learn's `_binary_clf_curve`.
fn clf_curve(y: &[bool], score: &[f64]) -> Vec<(f64, f64, f64)> {
    let mut idx: Vec<usize> = (0..y.len()).collect();
    idx.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let mut out = Vec::new();
    let (mut tp, mut fp) = (0.0, 0.0);
    for (j, &i) in idx.iter().enumerate() {
        if y[i] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let last = j + 1 == idx.len() || score[idx[j + 1]] != score[i];
        if last {
            out.push((score[i], tp, fp));
        }
    }
    out
}

/// ROC curve points `(fpr, tpr)` from `(0, 0)`, one per distinct threshold.
pub fn roc_points(y: &[bool], score: &[f64]) -> Vec<(f64, f64)> {
    let curve = clf_curve(y, score);
    let Some(&(_, p, n)) = curve.last() else {
        return Vec::new();
    };
    std::iter::once((0.0, 0.0))
        .chain(
            curve
                .iter()
                .map(|&(_, tp, fp)| (fp / n.max(1.0), tp / p.max(1.0))),
        )
        .collect()
}

/// Precision-recall points `(recall, precision)`, one per distinct threshold.
pub fn pr_points(y: &[bool], score: &[f64]) -> Vec<(f64, f64)> {
    let curve = clf_curve(y, score);
    let p = curve.last().map_or(1.0, |c| c.1.max(1.0));
    curve
        .iter()
        .map(|&(_, tp, fp)| (tp / p, tp / (tp + fp)))
        .collect()
}

/// Area under the ROC curve; `None` when only one class is present.
pub fn roc_auc(y: &[bool], score: &[f64]) -> Option<f64> {
    let curve = clf_curve(y, score);
    let (p, n) = curve.last().map(|&(_, tp, fp)| (tp, fp))?;
    if p == 0.0 || n == 0.0 {
        return None;
    }
    let (mut area, mut x0, mut y0) = (0.0, 0.0, 0.0);
    for &(_, tp, fp) in &curve {
        let (x1, y1) = (fp / n, tp / p);
        area += (x1 - x0) * (y1 + y0) / 2.0;
        x0 = x1;
        y0 = y1;
    }
    Some(area)
}

/// Average precision `sum_k (R_k - R_{k-1}) P_k`; `None` without positives.
pub fn average_precision(y: &[bool], score: &[f64]) -> Option<f64> {
    let curve = clf_curve(y, score);
    let p = curve.last().map(|&(_, tp, _)| tp)?;
    if p == 0.0 {
        return None;
    }
    let (mut ap, mut r0) = (0.0, 0.0);
    for &(_, tp, fp) in &curve {
        let r = tp / p;
        let prec = tp / (tp + fp);
        ap += (r - r0) * prec;
        r0 = r;
    }
    Some(ap)
}

/// The threshold on `score` (predict positive when `score >= t`) that maximises F1 on
/// these labels; ties go to the higher threshold.
pub fn best_f1_threshold(y: &[bool], score: &[f64]) -> Option<f64> {
    let curve = clf_curve(y, score);
    let p = curve.last().map(|&(_, tp, _)| tp)?;
    let mut best: Option<(f64, f64)> = None;
    for &(t, tp, fp) in &curve {
        let f1 = if tp > 0.0 {
            2.0 * tp / (p + tp + fp)
        } else {
            0.0
        };
        if best.is_none_or(|(_, b)| f1 > b) {
            best = Some((t, f1));
        }
    }
    best.map(|(t, _)| t)
}

/// Expected calibration error with `bins` equal-width bins over `(0, 1]` of the top-1
/// confidence.
pub fn ece(confidence: &[f64], correct: &[bool], bins: usize) -> f64 {
    let n = confidence.len();
    if n == 0 {
        return 0.0;
    }
    let mut cnt = vec![0usize; bins];
    let mut acc = vec![0.0; bins];
    let mut conf = vec![0.0; bins];
    for (&c, &ok) in confidence.iter().zip(correct) {
        // Bin k holds (k/bins, (k+1)/bins]; 0 goes to the first bin.
        let k = ((c * bins as f64).ceil() as usize)
            .saturating_sub(1)
            .min(bins - 1);
        cnt[k] += 1;
        acc[k] += ok as u8 as f64;
        conf[k] += c;
    }
    (0..bins)
        .filter(|&k| cnt[k] > 0)
        .map(|k| {
            (acc[k] / cnt[k] as f64 - conf[k] / cnt[k] as f64).abs() * cnt[k] as f64 / n as f64
        })
        .sum()
}

/// All metrics for scores `[n][classes]`. `probabilities`: the scores sum to 1 (ECE is
/// computed). For two classes, `threshold` (from validation) decides class 1 when the
/// class-1 score is at least it; `None` uses argmax.
pub fn report(
    y_true: &[usize],
    scores: &[Vec<f32>],
    classes: usize,
    probabilities: bool,
    threshold: Option<f64>,
) -> Report {
    let binary = classes == 2;
    let y_pred: Vec<usize> = scores
        .iter()
        .map(|s| match (binary, threshold) {
            (true, Some(t)) => (s[1] as f64 >= t) as usize,
            _ => argmax(s),
        })
        .collect();
    let cm = confusion(y_true, &y_pred, classes);
    let (precision, recall, f1, support) = prf(&cm);
    let (roc, ap, curves) = if binary {
        let y: Vec<bool> = y_true.iter().map(|&t| t == 1).collect();
        let s: Vec<f64> = scores.iter().map(|s| s[1] as f64).collect();
        (
            roc_auc(&y, &s),
            average_precision(&y, &s),
            Some((roc_points(&y, &s), pr_points(&y, &s))),
        )
    } else {
        (None, None, None)
    };
    let calibration = probabilities.then(|| {
        let conf: Vec<f64> = scores.iter().map(|s| s[argmax(s)] as f64).collect();
        let ok: Vec<bool> = scores
            .iter()
            .zip(y_true)
            .map(|(s, &t)| argmax(s) == t)
            .collect();
        (ece(&conf, &ok, 10), reliability(&conf, &ok, 10))
    });
    let (ece, reliability) = match calibration {
        Some((e, r)) => (Some(e), Some(r)),
        None => (None, None),
    };
    Report {
        n: y_true.len(),
        accuracy: accuracy(y_true, &y_pred),
        balanced_accuracy: balanced_accuracy(&cm),
        precision,
        recall,
        f1,
        support,
        confusion: cm,
        ece,
        roc_auc: roc,
        pr_auc: ap,
        threshold: if binary { threshold } else { None },
        roc_curve: curves.as_ref().map(|c| c.0.clone()),
        pr_curve: curves.map(|c| c.1),
        reliability,
    }
}

/// Softmax of a row (for models whose output is logits).
pub fn softmax(s: &[f32]) -> Vec<f32> {
    let m = s.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f64> = s.iter().map(|&v| ((v - m) as f64).exp()).collect();
    let z: f64 = e.iter().sum();
    e.iter().map(|v| (v / z) as f32).collect()
}

#[cfg(test)]
mod reliability_tests {
    use super::*;

    #[test]
    fn ece_is_the_weighted_gap_of_the_reliability_bins() {
        let conf = [0.95, 0.91, 0.55, 0.52, 0.3, 1.0, 0.0];
        let ok = [true, false, true, true, false, true, false];
        let bins = reliability(&conf, &ok, 10);
        assert_eq!(bins.iter().map(|b| b.count).sum::<usize>(), conf.len());
        // Bin (0.9, 1.0]: 0.95, 0.91, 1.0 -> accuracy 2/3.
        assert_eq!(bins[9].count, 3);
        assert!((bins[9].accuracy - 2.0 / 3.0).abs() < 1e-12);
        // 0 goes to the first bin, as in `ece`.
        assert_eq!(bins[0].count, 1);
        let from_bins: f64 = bins
            .iter()
            .map(|b| (b.accuracy - b.confidence).abs() * b.count as f64 / conf.len() as f64)
            .sum();
        assert!((from_bins - ece(&conf, &ok, 10)).abs() < 1e-12);
    }
}
