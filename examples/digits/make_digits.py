"""Writes the 8x8 handwritten digits that ship inside the scikit-learn wheel as digits.npz:
x uint8 [1797, 8, 8, 1] (pixel intensities 0..16, as in the UCI data) and y int64 [1797].

    python3 -m venv v && v/bin/pip install -r requirements.txt
    v/bin/python make_digits.py            # -> digits.npz next to this script
"""
import os
import sys

import numpy as np
from sklearn.datasets import load_digits

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "digits.npz")
d = load_digits()
x = d.images.astype(np.uint8).reshape(-1, 8, 8, 1)
assert (x == d.images.reshape(-1, 8, 8, 1)).all()
np.savez(out, x=x, y=d.target.astype(np.int64))
print("wrote", out, x.shape, np.bincount(d.target))
