"""Generates the benchmark data under DIR (default target/bench-data):
table.csv (1,000,000 rows x 20 numeric columns, column k ~ N(k, k+1)), images/*.png
(10,000 64x64 RGB PNGs), text.txt (200,000 lines) and vocab.txt (10,000 words).
Deterministic (numpy seed 0). Needs numpy and Pillow."""
import os
import sys

import numpy as np
from PIL import Image

out = sys.argv[1] if len(sys.argv) > 1 else "target/bench-data"
os.makedirs(os.path.join(out, "images"), exist_ok=True)
rng = np.random.default_rng(0)

p = os.path.join(out, "table.csv")
if not os.path.exists(p):
    rows = 1_000_000
    with open(p + ".tmp", "w") as f:
        f.write(",".join("c%d" % k for k in range(20)) + "\n")
        for start in range(0, rows, 100_000):
            a = rng.normal(np.arange(20), np.arange(20) + 1, size=(100_000, 20)).astype(np.float32)
            np.savetxt(f, a, fmt="%.5g", delimiter=",")
    os.rename(p + ".tmp", p)

n_img = 10_000
if len(os.listdir(os.path.join(out, "images"))) < n_img:
    for i in range(n_img):
        base = rng.integers(0, 255, size=(8, 8, 3), dtype=np.uint8)
        img = np.kron(base, np.ones((8, 8, 1), dtype=np.uint8))
        Image.fromarray(img).save(os.path.join(out, "images", "%05d.png" % i))

p = os.path.join(out, "text.txt")
if not os.path.exists(p):
    words = ["w%d" % i for i in range(12_000)]
    with open(os.path.join(out, "vocab.txt"), "w") as f:
        f.write("\n".join(words[:10_000]) + "\n")
    zipf = rng.zipf(1.3, size=4_000_000) % len(words)
    lens = rng.integers(3, 60, size=200_000)
    k = 0
    with open(p, "w") as f:
        for n in lens:
            ids = zipf[k:k + n]
            k = (k + n) % (len(zipf) - 64)
            f.write(" ".join(words[i].upper() if i % 7 == 0 else words[i] for i in ids) + "\n")
print("data in", out)
