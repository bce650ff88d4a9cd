"""Reference baselines on BasicMotions' archive split, computed with aeon's own
classifiers (the implementations the UEA archive's authors maintain), for comparison
with `edgeflow evaluate`'s test accuracy on the same split.

    python3 -m venv .venv && .venv/bin/pip install -r examples/basicmotions/requirements-baselines.txt
    .venv/bin/python examples/basicmotions/baselines.py [DATA_DIR]   # default target/data/BasicMotions

DATA_DIR holds BasicMotions_TRAIN.ts / BasicMotions_TEST.ts as written by
crates/edgeflow-data/scripts/fetch_basicmotions.sh (the files edgeflow trains on).
Classifiers: 1-NN with Euclidean distance (ED), 1-NN with dependent multivariate DTW
(DTW_D, full window), 1-NN with independent DTW (DTW_I: one 1-NN-DTW per channel,
summed distances), and ROCKET (10,000 kernels, ridge classifier) over 5 seeds.
Prints one JSON object."""
import json
import os
import sys
import time

import numpy as np
from aeon.classification.convolution_based import RocketClassifier
from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier
from aeon.datasets import load_from_ts_file
from aeon.distances import dtw_distance


def dtw_i_predict(x_train, y_train, x_test):
    """1-NN where the distance is the sum over channels of univariate DTW distances."""
    out = []
    for q in x_test:
        best, label = np.inf, None
        for c, yc in zip(x_train, y_train):
            d = sum(dtw_distance(q[k], c[k]) for k in range(q.shape[0]))
            if d < best:
                best, label = d, yc
        out.append(label)
    return np.array(out)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    data = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "../../target/data/BasicMotions")
    x_tr, y_tr = load_from_ts_file(os.path.join(data, "BasicMotions_TRAIN.ts"))
    x_te, y_te = load_from_ts_file(os.path.join(data, "BasicMotions_TEST.ts"))
    res = {"train_cases": len(y_tr), "test_cases": len(y_te)}
    for name, distance in [("ED", "euclidean"), ("DTW_D", "dtw")]:
        t = time.perf_counter()
        clf = KNeighborsTimeSeriesClassifier(n_neighbors=1, distance=distance)
        clf.fit(x_tr, y_tr)
        res[name] = {"accuracy": float(np.mean(clf.predict(x_te) == y_te)),
                     "seconds": round(time.perf_counter() - t, 2)}
    t = time.perf_counter()
    res["DTW_I"] = {"accuracy": float(np.mean(dtw_i_predict(x_tr, y_tr, x_te) == y_te)),
                    "seconds": round(time.perf_counter() - t, 2)}
    accs = []
    t = time.perf_counter()
    for seed in range(5):
        clf = RocketClassifier(n_kernels=10000, random_state=seed)
        clf.fit(x_tr, y_tr)
        accs.append(float(np.mean(clf.predict(x_te) == y_te)))
    res["ROCKET"] = {"accuracy_per_seed": accs, "mean": float(np.mean(accs)),
                     "std": float(np.std(accs, ddof=1)), "seconds": round(time.perf_counter() - t, 2)}
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
