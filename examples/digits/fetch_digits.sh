#!/usr/bin/env bash
# Fetches the 8x8 handwritten digits that ship inside the scikit-learn wheel on PyPI
# (pinned; pip checks the download against PyPI's hash) and writes them as DIR/digits.npz
# (default: target/data/digits): x uint8 [1797, 8, 8, 1] (intensities 0..16, as in the
# UCI "Optical Recognition of Handwritten Digits" data) and y int64 [1797] — the arrays
# `sklearn.datasets.load_digits()` returns, written by the Python standard library alone
# (no numpy, no virtual environment). The data is not committed.
#
#   examples/digits/fetch_digits.sh [DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${1:-$here/../../target/data/digits}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" scikit-learn==1.7.2
mkdir -p "$dir"
python3 - "$tmp" "$dir/digits.npz" <<'PY'
import glob, gzip, io, struct, sys, zipfile

whl = glob.glob(sys.argv[1] + "/scikit_learn-1.7.2-*.whl")[0]
with zipfile.ZipFile(whl) as z:
    text = gzip.decompress(z.read("sklearn/datasets/data/digits.csv.gz")).decode()
rows = [[int(float(v)) for v in line.split(",")] for line in text.splitlines() if line]
assert len(rows) == 1797 and all(len(r) == 65 for r in rows), "unexpected digits.csv"
assert all(0 <= v <= 16 for r in rows for v in r[:64]) and all(0 <= r[64] <= 9 for r in rows)


def npy(descr, shape, payload):
    # .npy format version 1.0: magic, header length, a dict literal padded to 64 bytes.
    h = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, ", ".join("%d" % d for d in shape) if len(shape) > 1 else "%d," % shape[0])
    h += " " * (63 - (10 + len(h)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode("latin1") + payload


x = bytes(v for r in rows for v in r[:64])
y = struct.pack("<%dq" % len(rows), *(r[64] for r in rows))
with zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_STORED) as out:
    out.writestr("x.npy", npy("|u1", (len(rows), 8, 8, 1), x))
    out.writestr("y.npy", npy("<i8", (len(rows),), y))
counts = [sum(1 for r in rows if r[64] == c) for c in range(10)]
print("wrote", sys.argv[2], (len(rows), 8, 8, 1), "per class", counts)
PY
