#!/usr/bin/env python3
"""Writes the data-validation fixtures (tests/fixtures/schema/*.csv) and the skew goldens
(tests/golden/schema_skew.json) that crates/edgeflow-data/tests/schema.rs compares with.

The fixtures are generated (seeded) so that each one carries exactly one kind of anomaly
against the schema inferred from train.csv. The goldens are computed independently of the
Rust code: numeric histograms with numpy.histogram on the edges the schema defines
(`bins` equal-width bins from the training min to max, last bin closed) plus one open bin
below and one above, Jensen-Shannon divergence as
scipy.spatial.distance.jensenshannon(p, q, base=2) ** 2, and the L-infinity distance of
category shares over the union of categories (TFDV's definitions).

    python3 -m venv v && v/bin/pip install -r crates/edgeflow-data/scripts/requirements-schema.txt
    v/bin/python crates/edgeflow-data/scripts/make_schema_goldens.py
"""
import csv
import json
import os
import random
from collections import Counter

import numpy as np
from scipy.spatial.distance import jensenshannon

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "tests", "fixtures", "schema")
GOLD = os.path.join(HERE, "..", "tests", "golden")
BINS = 10
COLORS = ["red", "green", "blue"]


def rows(n, seed, x_mu=5.0, x_sd=1.0, colors=(0.5, 0.3, 0.2), missing_note=0.1):
    r = random.Random(seed)
    out = []
    for i in range(n):
        x = round(min(9.5, max(0.5, r.gauss(x_mu, x_sd))), 4)
        count = r.randint(0, 20)
        color = r.choices(COLORS, weights=colors)[0]
        note = "" if r.random() < missing_note else r.choice(["a", "b"])
        out.append({"x": x, "count": count, "color": color, "note": note})
    return out


def write(name, rs, fields=("x", "count", "color", "note")):
    with open(os.path.join(FIX, name), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(fields)
        for r in rs:
            w.writerow([r.get(k, "") for k in fields])


def main():
    os.makedirs(FIX, exist_ok=True)
    train = rows(400, 1)
    # The training extremes, so that held-out data of the same distribution stays in range.
    train[0]["x"], train[1]["x"] = 0.5, 9.5
    train[0]["count"], train[1]["count"] = 0, 20
    write("train.csv", train)
    # Same distribution, clipped to the training range: no anomaly.
    clean = rows(200, 2)
    write("clean.csv", clean)
    # One anomaly each (no missing notes, so that no missing-rate anomaly comes along).
    nc = rows(50, 3, missing_note=0.0)
    nc[7]["color"] = "purple"
    nc[9]["color"] = "purple"
    write("new_category.csv", nc)
    oor = rows(50, 4, missing_note=0.0)
    oor[12]["x"] = 42.0
    write("out_of_range.csv", oor)
    write("missing_column.csv", rows(50, 5, missing_note=0.0), fields=("x", "count", "note"))
    uc = rows(50, 6, missing_note=0.0)
    for i, r in enumerate(uc):
        r["extra"] = i
    write("unexpected_column.csv", uc, fields=("x", "count", "color", "note", "extra"))
    tc = rows(50, 7, missing_note=0.0)
    tc[3]["count"] = "many"
    write("type_change.csv", tc)
    mr = rows(50, 8, missing_note=0.0)
    for i in (4, 10, 11):
        mr[i]["color"] = ""
    write("missing_rate.csv", mr)
    # Shifted x and another color mix, all inside the training range.
    sk = rows(200, 9, x_mu=7.0, x_sd=0.8, colors=(0.1, 0.2, 0.7), missing_note=0.05)
    write("skewed.csv", sk)

    def numeric(col, a, b):
        xa = np.array([float(r[col]) for r in a])
        xb = np.array([float(r[col]) for r in b])
        lo, hi = xa.min(), xa.max()
        edges = [lo + (hi - lo) * k / BINS for k in range(BINS)] + [hi]

        def hist(x):
            inner, _ = np.histogram(x, bins=np.array(edges))
            return [int((x < lo).sum())] + [int(c) for c in inner] + [int((x > hi).sum())]

        p, q = np.array(hist(xa), float), np.array(hist(xb), float)
        return float(jensenshannon(p / p.sum(), q / q.sum(), base=2) ** 2)

    def categorical(col, a, b):
        ca = Counter(r[col] for r in a if r[col] != "")
        cb = Counter(r[col] for r in b if r[col] != "")
        na, nb = sum(ca.values()), sum(cb.values())
        return max(abs(ca[k] / na - cb[k] / nb) for k in set(ca) | set(cb))

    gold = {}
    for name, serving in (("clean.csv", clean), ("skewed.csv", sk)):
        gold[name] = {
            "x": ["jensen_shannon", numeric("x", train, serving)],
            "count": ["jensen_shannon", numeric("count", train, serving)],
            "color": ["linf", categorical("color", train, serving)],
            "note": ["linf", categorical("note", train, serving)],
        }
    os.makedirs(GOLD, exist_ok=True)
    with open(os.path.join(GOLD, "schema_skew.json"), "w") as f:
        json.dump({"bins": BINS, "training": "train.csv", "serving": gold}, f, indent=1)
        f.write("\n")
    print(json.dumps(gold, indent=1))


if __name__ == "__main__":
    main()
