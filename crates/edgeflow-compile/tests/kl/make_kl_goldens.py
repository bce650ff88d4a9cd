#!/usr/bin/env python3
"""Goldens for edgeflow's KL (entropy) calibration: `edgeflow_compile::quantize::entropy_divergences`
and `entropy_calibration`, checked by `crates/edgeflow-compile/tests/kl_reference.rs`.

The method is TensorRT's entropy calibration as Szymon Migacz describes it ("8-bit
Inference with TensorRT", GTC 2017). For a histogram `hist` of N bins and `levels`
quantization levels (128 for TensorRT's symmetric int8 over |x|, 256 for a tensor that is
never negative), every candidate `i` in levels..=N keeps the first `i` bins:

  P = hist[:i], with the counts of hist[i:] (what the threshold clips) added to P[i-1];
  Q = hist[:i] merged into `levels` groups (bin j -> group j * levels // i) and expanded
      back: each group's total shared equally by its non-empty bins, empty bins stay 0;
  divergence = KL(P || Q) of the normalised distributions, scipy.stats.entropy(P, Q)
      (natural log; inf when Q = 0 where P > 0).

The chosen `i` has the least divergence; ties go to the largest `i` (the least clipping,
as NVIDIA's pytorch-quantization takes the last minimum). The threshold is i * bin width.

This script is an independent numpy formulation (vectorised group sums with bincount, KL
from scipy), not a port of the Rust loop. The histograms are drawn from seeded numpy
generators: shapes activations take (ReLU outputs with a spike at 0, heavy tails,
outliers, gaps, a flat one). Output: kl_goldens.txt, one block per case:

  case NAME LEVELS CHOSEN_BINS MIN_DIVERGENCE
  hist c0 c1 ... c(N-1)
  kl d(levels) d(levels+1) ... d(N)         ('inf' where infinite)

Pinned versions: requirements.txt beside this file.

    python3 -m venv /tmp/kl && /tmp/kl/bin/pip install -r requirements.txt
    /tmp/kl/bin/python make_kl_goldens.py      # writes kl_goldens.txt here
"""

import os

import numpy as np
from scipy.stats import entropy

BINS = 2048


def divergences(hist, levels):
    hist = np.asarray(hist, dtype=np.int64)
    n = hist.size
    out = []
    for i in range(levels, n + 1):
        kept = hist[:i]
        p = kept.astype(np.float64)
        p[-1] += hist[i:].sum()
        group = (np.arange(i) * levels) // i
        sums = np.bincount(group, weights=kept.astype(np.float64), minlength=levels)
        nonzero = np.bincount(group, weights=(kept != 0).astype(np.float64), minlength=levels)
        share = np.divide(sums, nonzero, out=np.zeros(levels), where=nonzero > 0)
        q = np.where(kept != 0, share[group], 0.0)
        out.append(float(entropy(p, q)))
    return np.array(out)


def choose(kl, levels):
    finite = np.isfinite(kl)
    if not finite.any():
        return None, None
    best = np.min(kl[finite])
    k = np.flatnonzero(kl == best)[-1]
    return levels + int(k), float(best)


def histogram(x):
    x = np.asarray(x, dtype=np.float64)
    hist, _ = np.histogram(x, bins=BINS, range=(0.0, float(x.max())))
    return hist


def cases():
    rng = np.random.default_rng(20261130)
    relu = np.maximum(rng.normal(0.3, 1.0, 50_000), 0.0)
    yield "relu_normal", 256, histogram(relu)
    half = np.abs(rng.normal(0.0, 1.0, 40_000))
    half = np.concatenate([half, rng.uniform(8.0, 20.0, 12)])
    yield "abs_normal_outliers", 128, histogram(half)
    yield "abs_laplace", 128, histogram(np.abs(rng.laplace(0.0, 0.5, 30_000)))
    yield "exponential_tail", 256, histogram(rng.exponential(1.0, 20_000) ** 1.5)
    bimodal = np.concatenate([rng.normal(1.0, 0.2, 10_000), rng.normal(4.0, 0.5, 3_000)])
    yield "bimodal", 256, histogram(np.abs(bimodal))
    # Few values: a histogram with many empty bins (a small calibration set).
    yield "sparse_small_set", 128, histogram(np.abs(rng.normal(0.0, 1.0, 300)))
    yield "flat", 128, np.full(BINS, 7, dtype=np.int64)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    lines = ["# written by make_kl_goldens.py (numpy %s, scipy %s); do not edit" % (
        np.__version__, __import__("scipy").__version__)]
    for name, levels, hist in cases():
        kl = divergences(hist, levels)
        bins, best = choose(kl, levels)
        lines.append(f"case {name} {levels} {bins} {best!r}")
        lines.append("hist " + " ".join(str(int(c)) for c in hist))
        lines.append("kl " + " ".join("inf" if np.isinf(d) else repr(float(d)) for d in kl))
        print(f"{name}: levels {levels}, keeps {bins} of {BINS} bins, KL {best:.6g}")
    with open(os.path.join(here, "kl_goldens.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
