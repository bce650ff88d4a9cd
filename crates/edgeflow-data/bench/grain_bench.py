"""Grain side of the benchmark: python grain_bench.py WORKLOAD DATA_DIR THREADS [FORM].
Grain runs Python maps in the calling process; with THREADS > 1 the pipeline runs in
THREADS worker processes (Grain's `mp_prefetch`, its way to parallelise Python maps).
FORM `element` (default) maps per element; `vectorised` batches first and maps whole
batches with NumPy, the form tf.data's performance guide recommends for cheap per-element
work, applied to Grain: csv parses each batch of 256 raw lines with one np.fromstring;
images decode each file of a batch of 64 (PIL has no batched decode) and crop + flip the
whole batch with one NumPy gather; text looks up every word of a batch of 64 lines at once
(np.searchsorted in the sorted vocabulary; only out-of-vocabulary words are hashed one by
one) and pads with NumPy. Each vectorised form gives the same values as the per-element
one (EDGEFLOW_BENCH_CHECKSUM=1 prints a checksum)."""
import json
import os
import sys
import time
import zlib

import grain
import numpy as np
from PIL import Image


class Lines:
    """Random-access lines of a text file (offsets indexed once; read with pread, so
    reader threads can share it; reopened in each worker process)."""

    def __init__(self, path, skip=0):
        self.path = path
        self.offsets = []
        with open(path, "rb") as f:
            pos = 0
            for line in f:
                self.offsets.append((pos, len(line)))
                pos += len(line)
        self.offsets = self.offsets[skip:]
        self.fd = None

    def __len__(self):
        return len(self.offsets)

    def __getitem__(self, i):
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDONLY)
        off, n = self.offsets[i]
        return os.pread(self.fd, n, off).decode()

    def __getstate__(self):
        return {"path": self.path, "offsets": self.offsets, "fd": None}


MEAN = np.arange(20, dtype=np.float32)
STD = MEAN + 1


def parse(line):
    return (np.array(line.split(","), dtype=np.float32) - MEAN) / STD


def parse_batch(lines):
    """A batch of raw lines (each ending in a newline) -> normalised [n, 20] float32."""
    v = np.fromstring("".join(lines).replace("\n", ","), dtype=np.float32, sep=",")
    return (v.reshape(len(lines), 20) - MEAN) / STD


class Load:
    def __init__(self, root):
        self.root = root

    def __call__(self, i_name):
        i, name = i_name
        img = np.asarray(Image.open(os.path.join(self.root, name)).convert("RGB"))
        r = np.random.default_rng(i)
        y, x = r.integers(0, 9, size=2)
        c = img[y:y + 56, x:x + 56]
        return c[:, ::-1] if r.random() < 0.5 else c


class Tok:
    def __init__(self, vocab):
        self.vocab = vocab

    def __call__(self, line):
        n = len(self.vocab)
        return np.array([self.vocab.get(w, n + zlib.crc32(w.encode()) % 100) for w in line.lower().split()],
                        dtype=np.int64)


class LoadBatch:
    """A batch of (index, file name) -> uint8 [n, 56, 56, 3]: the same crops and flips as
    Load (offsets and flip drawn from default_rng(index)), gathered in one NumPy call."""

    def __init__(self, root):
        self.root = root
        self.ar = np.arange(56)

    def __call__(self, batch):
        imgs = np.stack([np.asarray(Image.open(os.path.join(self.root, name)).convert("RGB"))
                         for _, name in batch])
        n = len(batch)
        ys = np.empty(n, dtype=np.int64)
        cols = np.empty((n, 56), dtype=np.int64)
        for k, (i, _) in enumerate(batch):
            r = np.random.default_rng(i)
            y, x = r.integers(0, 9, size=2)
            ys[k] = y
            cols[k] = x + (self.ar[::-1] if r.random() < 0.5 else self.ar)
        rows = ys[:, None] + self.ar
        return imgs[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


class TokBatch:
    """A batch of lines -> padded int64 [n, longest]: the ids Tok gives, looked up for the
    whole batch at once."""

    def __init__(self, vocab):
        self.n = len(vocab)
        words = sorted(vocab)
        self.sorted = np.array(words)
        self.ids = np.array([vocab[w] for w in words], dtype=np.int64)

    def __call__(self, lines):
        toks = [l.lower().split() for l in lines]
        lens = np.array([len(t) for t in toks])
        flat = np.array([w for t in toks for w in t])
        pos = np.searchsorted(self.sorted, flat).clip(0, len(self.sorted) - 1)
        hit = self.sorted[pos] == flat
        ids = np.where(hit, self.ids[pos], 0)
        for j in np.flatnonzero(~hit):
            ids[j] = self.n + zlib.crc32(flat[j].encode()) % 100
        out = np.zeros((len(lines), lens.max() if len(lines) else 0), dtype=np.int64)
        out[np.arange(out.shape[1]) < lens[:, None]] = ids
        return out


def pad(batch):
    m = max(len(x) for x in batch)
    out = np.zeros((len(batch), m), dtype=np.int64)
    for i, x in enumerate(batch):
        out[i, :len(x)] = x
    return out


def main():
    workload, data, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    form = sys.argv[4] if len(sys.argv) > 4 else "element"
    if form not in ("element", "vectorised"):
        raise SystemExit("unknown form %s for %s" % (form, workload))
    # Reading in the calling thread: Grain's reader threads made these workloads 10-15x
    # slower on this machine (GIL contention), so they are not used.
    read = grain.ReadOptions(num_threads=0, prefetch_buffer_size=500)
    if workload == "csv":
        src = Lines(os.path.join(data, "table.csv"), skip=1)
        # A tf.data-style buffered shuffle is not a Grain IterDataset operation; a global
        # shuffle (MapDataset.shuffle) would change the workload, so rows keep file order.
        ds = grain.MapDataset.source(src).to_iter_dataset(read)
        if form == "vectorised":
            ds = ds.batch(256, batch_fn=list).map(parse_batch)
        else:
            ds = ds.map(parse).batch(256)
    elif workload == "images":
        root = os.path.join(data, "images")
        files = sorted(os.listdir(root))
        ds = grain.MapDataset.source(list(enumerate(files))).to_iter_dataset(read)
        if form == "vectorised":
            ds = ds.batch(64, batch_fn=list).map(LoadBatch(root))
        else:
            ds = ds.map(Load(root)).batch(64)
    elif workload == "text":
        words = [w for w in open(os.path.join(data, "vocab.txt")).read().split("\n") if w]
        vocab = {w: i for i, w in enumerate(words)}
        src = Lines(os.path.join(data, "text.txt"))
        ds = grain.MapDataset.source(src).to_iter_dataset(read)
        if form == "vectorised":
            ds = ds.batch(64, batch_fn=list).map(TokBatch(vocab))
        else:
            ds = ds.map(Tok(vocab)).batch(64, batch_fn=pad)
    else:
        raise SystemExit("unknown workload " + workload)
    if threads > 1:
        ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=threads))
    check = os.environ.get("EDGEFLOW_BENCH_CHECKSUM") == "1"
    t0 = time.perf_counter()
    elements = batches = 0
    checksum = 0.0
    for b in ds:
        elements += len(b)
        batches += 1
        if check:
            checksum += float(np.asarray(b, dtype=np.float64).sum())
    r = {"elements": elements, "batches": batches, "seconds": time.perf_counter() - t0}
    if check:
        r["checksum"] = checksum
    print(json.dumps(r))


if __name__ == "__main__":
    main()
