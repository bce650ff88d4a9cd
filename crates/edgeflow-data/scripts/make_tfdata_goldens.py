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

# --- Error items: where a bad record sits in each operator's output --------------------
# `parsed(v)` is the dataset of strings `v` parsed as int64; "x" fails to parse, so it is
# an error item (tf.errors.InvalidArgumentError) at its position. The iteration goes on
# after an error, as it does in edgeflow-data. An output is a list whose items are the
# element (an int or nested lists) or "ERR". Written to tests/golden/tfdata_errors.json;
# tests/tfdata_errors.rs builds the same pipelines.

LIMIT = 60  # an iteration that has not ended after this many items is cut off


def parsed(v):
    return tf.data.Dataset.from_tensor_slices(v).map(lambda s: tf.strings.to_number(s, tf.int64))


def items(ds):
    """The items of ds with errors as "ERR". tf.data's group_by_window cannot go on after a
    failed batching function: it returns the same error on every later call, forever. Such a
    run is cut at its first repeated error and flagged, since the repetition is an artefact
    of tf.data's iterator and not an item of the data."""
    out, it, ended = [], iter(ds), False
    while len(out) < LIMIT:
        try:
            x = next(it)
        except StopIteration:
            ended = True
            break
        except (tf.errors.InvalidArgumentError, tf.errors.InternalError):
            out.append("ERR")
            continue
        out.append(tf.nest.map_structure(lambda t: t.numpy().tolist(), x))
    if ended:
        return out, False
    while len(out) >= 2 and out[-1] == "ERR" and out[-2] == "ERR":
        out.pop()
    return out, True


ecases = []


def ecase(name, params, ds, expected_rule=None, note=None):
    out, repeats = items(ds)
    c = {"name": name, "params": params, "tfdata": out, "expected": out}
    if repeats:
        c["tfdata_repeats_last_error_forever"] = True
    if expected_rule is not None:
        # Where tf.data 2.21 contradicts its own rule, the expected output is the rule
        # applied to tf.data's item-by-item output of the input (kept in "tfdata").
        c["expected"] = expected_rule
        c["note"] = note
    ecases.append(c)


def seq_of(ds):
    """Each parsed n becomes the sequence [n] * (n % 3 + 1)."""
    return ds.map(lambda n: tf.fill([n % 3 + 1], n))


W = [(["0", "1", "2", "x", "4", "5", "6", "7"], 3, 3, 1, False),  # DATASET.md
     (["0", "1", "x", "3", "4"], 2, 1, 1, False),  # DATASET.md
     (["0", "x", "2", "3"], 2, 1, 2, False),
     (["0", "x", "x", "3"], 3, 1, 1, False),
     (["0", "1", "2", "x"], 2, 2, 1, True),
     (["0", "1", "2", "3", "x"], 2, 2, 1, True),
     (["0", "1", "2", "3", "x"], 2, 2, 1, False),
     (["0", "1", "x", "3", "4", "5"], 2, 3, 1, False),
     (["0", "1", "2", "3", "x", "5", "6", "7", "8"], 2, 3, 2, False),
     (["x", "1", "2", "x", "4", "5", "6", "x", "8", "9"], 4, 2, 1, False)]
for v, size, shift, stride, drop in W:
    ecase("window", {"input": v, "size": size, "shift": shift, "stride": stride, "drop": drop},
          parsed(v).window(size, shift=shift, stride=stride, drop_remainder=drop).flat_map(
              lambda w: w.batch(size)))

B = [(["0", "x", "2", "3", "4", "5", "6"], 3, False),  # DATASET.md
     (["0", "x", "2", "x", "4", "5", "6", "7"], 3, True),
     (["0", "1", "2", "3", "4", "5", "x"], 3, False),
     (["x", "x", "2", "3"], 1, False),
     (["0", "1", "2", "x"], 3, True),
     (["0", "1", "2", "x", "4"], 3, True)]
for v, n, drop in B:
    ecase("batch", {"input": v, "size": n, "drop": drop}, parsed(v).batch(n, drop_remainder=drop))

# padded_batch: tf.data 2.21's padded_batch drops the partial batch at an error and starts
# the next batch after it, unlike its own batch; edgeflow-data keeps padded_batch in step
# with batch. The expected output comes from tf.data's ragged_batch (batch semantics)
# padded with to_tensor; tf.data's own padded_batch output is kept beside it.
PB = [(["0", "x", "2", "3", "4", "5", "6"], 3, False),  # DATASET.md
      (["4", "5", "x", "7", "8"], 2, True),
      (["0", "1", "2", "x"], 3, True)]
for v, n, drop in PB:
    ref = seq_of(parsed(v)).ragged_batch(n, drop_remainder=drop).map(
        lambda r: r.to_tensor(default_value=-1))
    own, _ = items(seq_of(parsed(v)).padded_batch(n, padding_values=tf.constant(-1, tf.int64),
                                                  drop_remainder=drop))
    c = {"name": "padded_batch", "params": {"input": v, "size": n, "drop": drop, "pad": -1}}
    c["expected"], _ = items(ref)
    c["tfdata"] = own
    c["note"] = "expected: tf.data ragged_batch + to_tensor; tfdata: tf.data padded_batch"
    ecases.append(c)

for v, n in [(["1", "x", "3", "4"], 3), (["x", "x", "1", "2"], 1), (["1", "2"], 0)]:
    ecase("take", {"input": v, "n": n}, parsed(v).take(n))
ecase("take_ignore_errors", {"input": ["1", "x", "3", "4"], "n": 3},
      parsed(["1", "x", "3", "4"]).take(3).ignore_errors())


def skip_rule(v, n):
    """skip(n) by its rule (n elements skipped, errors passed on), applied to tf.data's
    own item-by-item output of the input."""
    out, left = [], n
    for x in items(parsed(v))[0]:
        if x != "ERR" and left > 0:
            left -= 1
        else:
            out.append(x)
    return out


for v, n in [(["x", "1", "x", "3", "4"], 1), (["1", "x", "3", "4"], 2),
             (["1", "x", "3", "x", "5", "6"], 2)]:
    rule = skip_rule(v, n)
    out, _ = items(parsed(v).skip(n))
    if out == rule:
        ecase("skip", {"input": v, "n": n}, parsed(v).skip(n))
    else:
        ecase("skip", {"input": v, "n": n}, parsed(v).skip(n), rule,
              "tf.data 2.21 returns the error met while skipping, then forgets the "
              "elements it had skipped before it; expected: each element skipped once")

for v, num, idx in [(["0", "x", "2", "3", "x", "5", "6"], 2, 0),
                    (["0", "x", "2", "3", "x", "5", "6"], 2, 1),
                    (["x", "1", "2", "3", "4", "x"], 3, 2)]:
    ecase("shard", {"input": v, "num": num, "index": idx}, parsed(v).shard(num, idx))

for v, start in [(["0", "x", "2"], 5), (["x", "1"], 0)]:
    ecase("enumerate", {"input": v, "start": start}, parsed(v).enumerate(start))

ecase("filter_even", {"input": ["0", "x", "2", "3"]},
      parsed(["0", "x", "2", "3"]).filter(lambda x: x % 2 == 0))
ecase("zip", {"input": ["0", "x", "2"], "other": ["x", "1", "2"]},
      tf.data.Dataset.zip((parsed(["0", "x", "2"]), parsed(["x", "1", "2"]))))
ecase("batch_unbatch", {"input": ["0", "x", "2", "3"], "size": 2},
      parsed(["0", "x", "2", "3"]).batch(2).unbatch())

# interleave: the i-th inner dataset is parsed(inner) + 10 * i.
for outer, inner, cycle, block in [(["0", "1"], ["1", "x", "3", "4"], 2, 2),
                                   (["0", "1", "2"], ["x", "1", "x"], 2, 1),
                                   (["0", "x", "1"], ["0", "1", "2"], 2, 2)]:
    ds = parsed(outer).interleave(
        lambda i: parsed(inner).map(lambda x: x + 10 * i), cycle_length=cycle, block_length=block)
    ecase("interleave", {"outer": outer, "inner": inner, "cycle": cycle, "block": block}, ds)


def gen_seqs(seqs):
    return tf.data.Dataset.from_generator(lambda: iter(seqs),
                                          output_signature=tf.TensorSpec([None], tf.int64))


def bucket(ds, bounds, sizes, to_bound, drop):
    return ds.bucket_by_sequence_length(
        lambda x: tf.shape(x)[0], bucket_boundaries=bounds, bucket_batch_sizes=sizes,
        padding_values=tf.constant(0, tf.int64), pad_to_bucket_boundary=to_bound,
        drop_remainder=drop)


# Errors pass through bucketing; the n-th parsed value becomes [n] * n.
bv = ["1", "x", "2", "5", "1", "6"]
ecase("bucket_errors", {"input": bv, "boundaries": [3], "sizes": [2, 2]},
      bucket(parsed(bv).map(lambda n: tf.fill([n], n)), [3], [2, 2], False, False))
# tf.data keeps a bucket whose batching failed and fails on it again at every later call,
# so only cases whose failing bucket is flushed last are comparable item by item.
for sq, bounds, sizes in [([[1], [2] * 12], [4, 8], [2, 2, 2]),  # DATASET.md
                          ([[1], [2] * 12, [4] * 2, [5] * 3, [3] * 9], [4, 8], [2, 2, 3])]:
    ecase("bucket_pad_to_boundary", {"seqs": sq, "boundaries": bounds, "sizes": sizes},
          bucket(gen_seqs(sq), bounds, sizes, True, False))

# bucket_by_sequence_length without padding: the same grouping as the padded operator; the
# rows are the padded rows (pad -1, which no sequence holds) with the padding removed.
for bounds, sizes, drop in [([3, 6], [2, 3, 2], False), ([2, 5, 8], [2, 2, 2, 2], True)]:
    ds = seqs().bucket_by_sequence_length(
        lambda x: tf.shape(x)[0], bucket_boundaries=bounds, bucket_batch_sizes=sizes,
        padding_values=tf.constant(-1, tf.int64), drop_remainder=drop)
    out = [[[y for y in row if y != -1] for row in b] for b in ints(ds)]
    ecases.append({"name": "bucket_no_padding",
                   "params": {"lengths": lengths, "boundaries": bounds, "sizes": sizes,
                              "drop": drop},
                   "tfdata": out, "expected": out})

# unbatch of padded batches keeps the padding (tf.data's unbatch).
ecases.append({"name": "padded_unbatch", "params": {"lengths": lengths, "size": 3, "pad": -1},
               "tfdata": ints(seqs().padded_batch(3, padding_values=tf.constant(-1, tf.int64))
                              .unbatch()),
               "expected": None})
ecases[-1]["expected"] = ecases[-1]["tfdata"]

out = os.path.join(here, "..", "tests", "golden", "tfdata_errors.json")
with open(out, "w") as f:
    json.dump({"generator": "tensorflow-cpu " + tf.__version__, "cases": ecases}, f, indent=1)
print("wrote", out, len(ecases), "cases")

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
