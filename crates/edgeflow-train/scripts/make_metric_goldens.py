"""Goldens for edgeflow-train's metrics: scikit-learn's values on fixed predictions.

    python3 -m venv v && v/bin/pip install -r requirements.txt
    v/bin/python make_metric_goldens.py ../tests/golden/metrics.json

Every score is rounded to float32 first, because edgeflow-train's scores are f32.
ECE has no scikit-learn function; it is computed here with numpy from its definition
(Guo et al. 2017): 10 equal-width bins (k/10, (k+1)/10] of the top-1 confidence,
sum over bins of |accuracy - mean confidence| * n_bin / n.
"""
import json
import sys

import numpy as np
import sklearn
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)


def ece(conf, correct, bins=10):
    n = len(conf)
    k = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = k == b
        if m.any():
            total += abs(correct[m].mean() - conf[m].mean()) * m.sum() / n
    return float(total)


def multiclass_case(rng, n, classes, name, drop_class=None):
    logits = rng.normal(size=(n, classes)).astype(np.float64)
    y = rng.integers(0, classes, size=n)
    if drop_class is not None:
        y[y == drop_class] = (drop_class + 1) % classes
    logits[np.arange(n), y] += rng.uniform(0, 2.5, size=n)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = (p / p.sum(axis=1, keepdims=True)).astype(np.float32).astype(np.float64)
    pred = p.argmax(axis=1)
    labels = list(range(classes))
    pr, rc, f1, sup = precision_recall_fscore_support(
        y, pred, labels=labels, zero_division=0
    )
    conf = p.max(axis=1)
    return {
        "name": name,
        "classes": classes,
        "y_true": y.tolist(),
        "scores": p.tolist(),
        "threshold": None,
        "accuracy": accuracy_score(y, pred),
        "balanced_accuracy": balanced_accuracy_score(y, pred),
        "precision": pr.tolist(),
        "recall": rc.tolist(),
        "f1": f1.tolist(),
        "support": sup.tolist(),
        "confusion": confusion_matrix(y, pred, labels=labels).tolist(),
        "ece": ece(conf, (pred == y).astype(float)),
        "roc_auc": None,
        "pr_auc": None,
    }


def binary_case(rng, n, name, threshold):
    y = rng.integers(0, 2, size=n)
    s = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    # Coarse scores: many ties, which the curves must handle as scikit-learn does.
    s = (np.round(s * 20) / 20).astype(np.float32).astype(np.float64)
    p = np.stack([1 - s, s], axis=1).astype(np.float32).astype(np.float64)
    s1 = p[:, 1]
    pred = (s1 >= threshold).astype(int)
    pr, rc, f1, sup = precision_recall_fscore_support(
        y, pred, labels=[0, 1], zero_division=0
    )
    conf = p.max(axis=1)
    top = p.argmax(axis=1)
    return {
        "name": name,
        "classes": 2,
        "y_true": y.tolist(),
        "scores": p.tolist(),
        "threshold": threshold,
        "accuracy": accuracy_score(y, pred),
        "balanced_accuracy": balanced_accuracy_score(y, pred),
        "precision": pr.tolist(),
        "recall": rc.tolist(),
        "f1": f1.tolist(),
        "support": sup.tolist(),
        "confusion": confusion_matrix(y, pred, labels=[0, 1]).tolist(),
        "ece": ece(conf, (top == y).astype(float)),
        "roc_auc": roc_auc_score(y, s1),
        "pr_auc": average_precision_score(y, s1),
    }


def main(out):
    rng = np.random.default_rng(20261129)
    cases = [
        multiclass_case(rng, 120, 4, "multiclass_4"),
        multiclass_case(rng, 50, 5, "multiclass_5_missing_class", drop_class=3),
        binary_case(rng, 200, "binary_ties", 0.5),
        binary_case(rng, 37, "binary_small", 0.45),
    ]
    doc = {
        "generator": "crates/edgeflow-train/scripts/make_metric_goldens.py",
        "scikit_learn": sklearn.__version__,
        "numpy": np.__version__,
        "cases": cases,
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
    print("wrote", out)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "metrics.json")
