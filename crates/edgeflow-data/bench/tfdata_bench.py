"""tf.data side of the benchmark: python tfdata_bench.py WORKLOAD DATA_DIR THREADS."""
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

workload, data, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
tf.config.threading.set_intra_op_parallelism_threads(threads)
tf.config.threading.set_inter_op_parallelism_threads(threads)
opts = tf.data.Options()
opts.threading.private_threadpool_size = threads
opts.autotune.enabled = False

if workload == "csv":
    mean = tf.range(20, dtype=tf.float32)
    std = mean + 1.0

    def parse(line):
        cols = tf.io.decode_csv(line, record_defaults=[[0.0]] * 20)
        return (tf.stack(cols) - mean) / std

    ds = (tf.data.TextLineDataset(os.path.join(data, "table.csv")).skip(1)
          .map(parse, num_parallel_calls=threads).shuffle(10_000, seed=1).batch(256))
elif workload == "images":
    def load(path):
        img = tf.io.decode_png(tf.io.read_file(path), channels=3)
        img = tf.image.random_crop(img, [56, 56, 3], seed=7)
        return tf.image.random_flip_left_right(img, seed=7)

    files = tf.data.Dataset.list_files(os.path.join(data, "images", "*.png"), shuffle=False)
    ds = files.map(load, num_parallel_calls=threads).batch(64)
elif workload == "text":
    vocab = [w for w in open(os.path.join(data, "vocab.txt")).read().split("\n") if w]
    table = tf.lookup.StaticVocabularyTable(
        tf.lookup.KeyValueTensorInitializer(vocab, tf.range(len(vocab), dtype=tf.int64)), num_oov_buckets=100)

    def tok(line):
        return table.lookup(tf.strings.split(tf.strings.lower(line)))

    ds = (tf.data.TextLineDataset(os.path.join(data, "text.txt"))
          .map(tok, num_parallel_calls=threads).padded_batch(64, padded_shapes=[None]))
else:
    raise SystemExit("unknown workload " + workload)

ds = ds.prefetch(2).with_options(opts)
t0 = time.perf_counter()
elements = batches = 0
for b in ds:
    elements += int(b.shape[0])
    batches += 1
print(json.dumps({"elements": elements, "batches": batches, "seconds": time.perf_counter() - t0}))
