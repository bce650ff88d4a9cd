#!/usr/bin/env python3
"""Golden values for edgeflow-monitor's drift statistics, from scipy and Evidently.

The device sends histograms over the baseline's bins, so each case is a pair of histograms
(reference, current) over the same bins. To ask scipy and Evidently about exactly that data,
each histogram is expanded back into a sample in which every value is its bin number (for
the tests that compare categories or CDFs) or its bin centre (for Wasserstein).

Run:  python3 -m venv .venv-monitor && .venv-monitor/bin/pip install -r scripts/requirements.txt
      .venv-monitor/bin/python scripts/make_goldens.py > tests/goldens/stats.json
"""
import json
import sys

import numpy as np
import pandas as pd
import scipy
from scipy import special, stats
from scipy.spatial import distance

import evidently
from evidently.legacy.core import ColumnType
from evidently.legacy.calculations.stattests.psi import _psi
from evidently.legacy.calculations.stattests.jensenshannon import _jensenshannon
from evidently.legacy.calculations.stattests.wasserstein_distance_norm import _wasserstein_distance_norm
from evidently.legacy.calculations.stattests.chisquare_stattest import _chi_stat_test
from evidently.legacy.calculations.stattests.z_stattest import _z_stat_test
from evidently.legacy.calculations.stattests.ks_stattest import _ks_stat_test

rng = np.random.default_rng(20261129)


def expand(counts, values):
    return np.repeat(np.asarray(values, dtype=float), np.asarray(counts, dtype=np.int64))


def case_from_samples(name, ref, cur, bins):
    edges = np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1])
    r = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=bins)
    c = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=bins)
    lo, hi = float(ref.min()), float(ref.max())
    e = list(edges)
    centres = [0.5 * (min(lo, e[0]) + e[0])] + [0.5 * (a + b) for a, b in zip(e, e[1:])] + [0.5 * (e[-1] + max(hi, e[-1]))]
    return dict(name=name, reference=r.tolist(), current=c.tolist(), centres=centres)


def golden(case):
    r, c, centres = case["reference"], case["current"], case["centres"]
    idx = np.arange(len(r))
    ri, ci = pd.Series(expand(r, idx)), pd.Series(expand(c, idx))
    rc, cc = expand(r, centres), expand(c, centres)
    n, m = sum(r), sum(c)
    ks = stats.ks_2samp(ri, ci)
    en = n * m / (n + m)
    out = dict(case)
    out["psi"] = float(_psi(ri, ci, ColumnType.Categorical, 0.1)[0])
    out["jensen_shannon"] = float(_jensenshannon(ri, ci, ColumnType.Categorical, 0.1)[0])
    out["jensen_shannon_scipy"] = float(distance.jensenshannon(np.array(r) / n, np.array(c) / m))
    out["wasserstein_normed"] = float(_wasserstein_distance_norm(pd.Series(rc), pd.Series(cc), ColumnType.Numerical, 0.1)[0])
    out["wasserstein_scipy"] = float(stats.wasserstein_distance(centres, centres, r, c))
    out["ks_statistic"] = float(ks.statistic)
    out["ks_p_asymptotic"] = float(special.kolmogorov(np.sqrt(en) * ks.statistic))
    out["ks_p_evidently"] = float(_ks_stat_test(ri, ci, ColumnType.Numerical, 0.05)[0])
    out["chi_squared_p"] = float(_chi_stat_test(ri, ci, ColumnType.Categorical, 0.05)[0])
    keep = [k for k in range(len(r)) if r[k] > 0 or c[k] > 0]
    if len(keep) <= 2:
        out["z_test_p"] = float(_z_stat_test(ri, ci, ColumnType.Categorical, 0.05)[0])
    return out


cases = []
# Numerical features: quantile bins of a reference sample; current shifted / scaled / same.
for bins, n, m, shift, scale in [
    (10, 2000, 500, 0.0, 1.0),
    (10, 2000, 500, 0.3, 1.0),
    (20, 5000, 1000, 0.0, 1.5),
    (16, 800, 200, -1.0, 1.0),
    (8, 300, 300, 0.1, 0.9),
    (32, 4000, 64, 0.0, 1.0),
]:
    ref = rng.normal(0.0, 1.0, n)
    cur = rng.normal(shift, scale, m)
    cases.append(case_from_samples(f"normal_b{bins}_n{n}_m{m}_s{shift}_x{scale}", ref, cur, bins))
# A skewed feature whose current data falls outside the training range (empty bins on one side).
ref = rng.exponential(1.0, 3000)
cur = rng.exponential(1.0, 400) + 2.0
cases.append(case_from_samples("exponential_out_of_range", ref, cur, 12))
# Hand-made histograms: empty bins in both, a categorical (4 values) and binary feature.
cases.append(dict(name="empty_bins_both", reference=[0, 40, 60, 0, 100, 0], current=[0, 10, 20, 0, 20, 0], centres=[0, 1, 2, 3, 4, 5]))
cases.append(dict(name="categorical4", reference=[120, 300, 80, 500], current=[30, 60, 30, 80], centres=[0, 1, 2, 3]))
cases.append(dict(name="binary", reference=[0, 700, 0, 300], current=[0, 50, 0, 70], centres=[0, 1, 2, 3]))
cases.append(dict(name="binary_same", reference=[650, 350], current=[64, 36], centres=[0, 1]))

# Class mix against a training prior: scipy.stats.chisquare(observed, prior * total).
class_cases = []
for obs, prior in [
    ([25, 25, 25, 25], [0.25, 0.25, 0.25, 0.25]),
    ([40, 20, 20, 20], [0.25, 0.25, 0.25, 0.25]),
    ([10, 80, 10], [0.2, 0.5, 0.3]),
    ([300, 310, 290, 100], [0.3, 0.3, 0.3, 0.1]),
]:
    total = sum(obs)
    res = stats.chisquare(obs, np.array(prior) / sum(prior) * total)
    class_cases.append(dict(observed=obs, prior=prior, statistic=float(res.statistic), p_value=float(res.pvalue)))

xs = [0.05, 0.2, 0.5, 0.8, 0.99, 1.0, 1.2, 1.36, 1.63, 2.0, 3.0]
chi = [(x, k) for x in [0.5, 3.0, 7.8, 20.0, 55.0] for k in [1, 3, 9, 30]]
json.dump(
    dict(
        generator="scripts/make_goldens.py",
        versions=dict(numpy=np.__version__, scipy=scipy.__version__, pandas=pd.__version__, evidently=evidently.__version__),
        cases=[golden(c) for c in cases],
        class_mix=class_cases,
        kolmogorov=[dict(x=x, q=float(special.kolmogorov(x))) for x in xs],
        chi2_sf=[dict(x=x, dof=k, p=float(stats.chi2.sf(x, k))) for x, k in chi],
    ),
    sys.stdout,
    indent=1,
)
