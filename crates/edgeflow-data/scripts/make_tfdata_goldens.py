"""Writes tests/golden/tfdata_ops.json: outputs of deterministic tf.data operators.

The Rust test `tests/tfdata_parity.rs` runs the same pipelines through edgeflow-data and
compares element by element. Reference: tensorflow-cpu 2.21.0 (scripts/requirements.txt).

    python scripts/make_tfdata_goldens.py
"""
import json
import os

import tensorflow as tf

assert tf.__version__ == "2.21.0", tf.__version__


def ints(ds):
    out = []
    for x in ds.as_numpy_iterator():
        out.append(x.tolist() if hasattr(x, "tolist") else int(x))
    return out


cases = []


def case(name, params, ds):
    cases.append({"name": name, "params": params, "output": ints(ds)})


r = tf.data.Dataset.range
for n, size, shift, stride, drop in [(7, 3, 2, 1, False), (7, 3, 2, 1, True), (10, 2, 3, 2, False),
                                     (10, 4, 1, 3, False), (5, 2, 5, 1, True), (9, 3, 3, 1, False)]:
    ds = r(n).window(size, shift=shift, stride=stride, drop_remainder=drop).flat_map(
        lambda w: w.batch(size))
    case("window", {"n": n, "size": size, "shift": shift, "stride": stride, "drop": drop}, ds)

for n, cycle, block in [(3, 2, 2), (4, 3, 1), (5, 2, 3), (2, 4, 2), (6, 1, 2)]:
    ds = r(n).interleave(lambda x: r(x * 10, x * 10 + x + 1), cycle_length=cycle, block_length=block)
    case("interleave", {"n": n, "cycle": cycle, "block": block}, ds)

for n, size, drop in [(7, 3, False), (7, 3, True), (4, 5, False)]:
    case("batch", {"n": n, "size": size, "drop": drop}, r(n).batch(size, drop_remainder=drop))

for n, num, idx in [(11, 3, 0), (11, 3, 2), (5, 7, 6)]:
    case("shard", {"n": n, "num": num, "index": idx}, r(n).shard(num, idx))

lengths = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4]


def seqs():
    return tf.data.Dataset.from_generator(
        lambda: ([i + 1] * n for i, n in enumerate(lengths)),
        output_signature=tf.TensorSpec([None], tf.int64))


for size in [3, 4]:
    ds = seqs().padded_batch(size, padded_shapes=[None], padding_values=tf.constant(-1, tf.int64))
    case("padded_batch", {"lengths": lengths, "size": size, "pad": -1}, ds)

for bounds, sizes, to_bound, drop in [([3, 6], [2, 3, 2], False, False), ([4, 10], [3, 2, 2], True, False),
                                      ([2, 5, 8], [2, 2, 2, 2], False, True)]:
    ds = seqs().bucket_by_sequence_length(
        lambda x: tf.shape(x)[0], bucket_boundaries=bounds, bucket_batch_sizes=sizes,
        padding_values=tf.constant(0, tf.int64), pad_to_bucket_boundary=to_bound,
        drop_remainder=drop)
    case("bucket", {"lengths": lengths, "boundaries": bounds, "sizes": sizes,
                    "pad_to_boundary": to_bound, "drop": drop}, ds)

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "..", "tests", "golden", "tfdata_ops.json")
with open(out, "w") as f:
    json.dump({"generator": "tensorflow-cpu " + tf.__version__, "cases": cases}, f, indent=1)
print("wrote", out, len(cases), "cases")

# --- TFRecord of tf.train.Example written by TensorFlow itself ------------------------
fixtures = os.path.join(here, "..", "tests", "fixtures")
os.makedirs(fixtures, exist_ok=True)
examples = []
with tf.io.TFRecordWriter(os.path.join(fixtures, "examples.tfrecord")) as w:
    for i in range(5):
        floats = [float(i) + 0.25 * k for k in range(i + 1)]
        ints = [i * 1000003 - 7, -(2 ** 40) + i]
        blob = ("rec%d" % i).encode()
        ex = tf.train.Example(features=tf.train.Features(feature={
            "floats": tf.train.Feature(float_list=tf.train.FloatList(value=floats)),
            "ints": tf.train.Feature(int64_list=tf.train.Int64List(value=ints)),
            "blob": tf.train.Feature(bytes_list=tf.train.BytesList(value=[blob, b""])),
        }))
        w.write(ex.SerializeToString())
        examples.append({"floats": floats, "ints": ints, "blob": [list(blob), []]})
# Read back through tf.data to record what TensorFlow itself parses.
spec = {"floats": tf.io.VarLenFeature(tf.float32), "ints": tf.io.VarLenFeature(tf.int64),
        "blob": tf.io.VarLenFeature(tf.string)}
parsed = []
for raw in tf.data.TFRecordDataset(os.path.join(fixtures, "examples.tfrecord")).as_numpy_iterator():
    p = tf.io.parse_single_example(raw, spec)
    parsed.append({"floats": [float(x) for x in p["floats"].values.numpy()],
                   "ints": [int(x) for x in p["ints"].values.numpy()],
                   "blob": [list(x) for x in p["blob"].values.numpy()]})
assert parsed == examples
with open(os.path.join(fixtures, "examples.tfrecord.json"), "w") as f:
    json.dump(parsed, f)
print("wrote examples.tfrecord")
