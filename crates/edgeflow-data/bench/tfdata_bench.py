"""tf.data side of the benchmark: python tfdata_bench.py WORKLOAD DATA_DIR THREADS [FORM].

FORM is one of
  element     map per element, fixed num_parallel_calls = THREADS, autotuning off
              (the form of the first comparison, kept as a second row);
  vectorised  tf.data at its best as its performance guide recommends
              (https://www.tensorflow.org/guide/data_performance): decode and transform
              vectorised on whole batches (batch, then map), AUTOTUNE for the map's
              parallelism and for prefetch, non-deterministic order where the pipeline
              allows it. csv: the buffered shuffle runs on the raw lines (a per-element
              map commutes with a shuffle, so the output is the same multiset of batches),
              then batch 256 -> one decode_csv per batch. images: decode_png has no
              batched form, so read + decode + crop + flip stay per element, with AUTOTUNE
              and deterministic=False. text: batch 64 -> lower + split + lookup on the
              whole batch -> ragged.to_tensor() (the same zero padding as padded_batch);
  unbatch     (csv only) the guide's other vectorised form: batch 1024 -> decode_csv on
              the batch -> unbatch -> shuffle 10,000 -> batch 256, AUTOTUNE.
In every form, THREADS caps tf.data's private thread pool and TensorFlow's intra- and
inter-op pools, so THREADS = n means n cores' worth of workers on every side.
Prints one JSON line: {"elements": N, "batches": B, "seconds": S}.
"""
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

workload, data, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
form = sys.argv[4] if len(sys.argv) > 4 else "element"
if form not in ("element", "vectorised", "unbatch"):
    raise SystemExit("unknown form " + form)
tf.config.threading.set_intra_op_parallelism_threads(threads)
tf.config.threading.set_inter_op_parallelism_threads(threads)
opts = tf.data.Options()
opts.threading.private_threadpool_size = threads
AUTO = tf.data.AUTOTUNE
if form == "element":
    opts.autotune.enabled = False
    par, prefetch, det = threads, 2, None
else:
    opts.autotune.enabled = True
    par, prefetch, det = AUTO, AUTO, False

if workload == "csv":
    mean = tf.range(20, dtype=tf.float32)
    std = mean + 1.0

    def parse(line):
        # A scalar line gives 20 scalars; a batch of lines gives 20 columns of that length.
        cols = tf.io.decode_csv(line, record_defaults=[[0.0]] * 20)
        return (tf.stack(cols, axis=-1) - mean) / std

    lines = tf.data.TextLineDataset(os.path.join(data, "table.csv")).skip(1)
    if form == "element":
        ds = lines.map(parse, num_parallel_calls=par).shuffle(10_000, seed=1).batch(256)
    elif form == "vectorised":
        ds = lines.shuffle(10_000, seed=1).batch(256).map(parse, num_parallel_calls=par, deterministic=det)
    else:
        ds = (lines.batch(1024).map(parse, num_parallel_calls=par, deterministic=det).unbatch()
              .shuffle(10_000, seed=1).batch(256))
elif workload == "images":
    if form == "unbatch":
        raise SystemExit("form unbatch is for csv only")

    def load(path):
        img = tf.io.decode_png(tf.io.read_file(path), channels=3)
        img = tf.image.random_crop(img, [56, 56, 3], seed=7)
        return tf.image.random_flip_left_right(img, seed=7)

    files = tf.data.Dataset.list_files(os.path.join(data, "images", "*.png"), shuffle=False)
    ds = files.map(load, num_parallel_calls=par, deterministic=det).batch(64)
elif workload == "text":
    if form == "unbatch":
        raise SystemExit("form unbatch is for csv only")
    vocab = [w for w in open(os.path.join(data, "vocab.txt")).read().split("\n") if w]
    table = tf.lookup.StaticVocabularyTable(
        tf.lookup.KeyValueTensorInitializer(vocab, tf.range(len(vocab), dtype=tf.int64)), num_oov_buckets=100)

    def tok(line):
        return table.lookup(tf.strings.split(tf.strings.lower(line)))

    lines = tf.data.TextLineDataset(os.path.join(data, "text.txt"))
    if form == "element":
        ds = lines.map(tok, num_parallel_calls=par).padded_batch(64, padded_shapes=[None])
    else:
        ds = lines.batch(64).map(lambda b: tok(b).to_tensor(0), num_parallel_calls=par, deterministic=det)
else:
    raise SystemExit("unknown workload " + workload)

ds = ds.prefetch(prefetch).with_options(opts)
# EDGEFLOW_BENCH_CHECKSUM=1 (run.py --check) also sums every value, so that the forms can be
# compared for equal output; it is off in timed runs.
checksum = os.environ.get("EDGEFLOW_BENCH_CHECKSUM") == "1"
total = 0.0
t0 = time.perf_counter()
elements = batches = 0
for b in ds:
    elements += int(b.shape[0])
    batches += 1
    if checksum:
        total += float(tf.reduce_sum(tf.cast(b, tf.float64)))
out = {"elements": elements, "batches": batches, "seconds": time.perf_counter() - t0}
if checksum:
    out["checksum"] = total
print(json.dumps(out))
