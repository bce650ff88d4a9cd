"""Reference answers for the "files from the field" fixtures (tests/fixtures/field/), and
compressed Parquet / TFRecord files written by the reference writers.

- Parquet: for every dict_nulls_<codec>.parquet (2,000 rows, a dictionary-encoded string
  column with nulls, several pages and row groups) and for table_<codec>.parquet written
  here with every codec pyarrow writes, what pyarrow reads: rows, per-column nulls,
  distinct non-null values, numeric min/max/mean, list-length min/max.
- TFRecord: examples_<gzip|zlib>.tfrecord written by tf.io.TFRecordWriter with
  compression_type GZIP / ZLIB, and the records tf.data reads back from them
  (TFRecordDataset(path, compression_type=...)), as serialized bytes in hex.
- .npy: in Fortran and C order and both byte orders, with their values in C order.

numpy 2.4.6, pyarrow 26.0.1, tensorflow-cpu 2.21.0 (scripts/requirements-field.txt):

    python scripts/make_field_fixtures.py
"""
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

assert np.__version__ == "2.4.6" and pa.__version__ == "26.0.1"

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "..", "tests", "fixtures", "field")
os.makedirs(out, exist_ok=True)
expect = {"parquet": {}, "tfrecord": {}, "npy": {}}


def parquet_facts(path):
    f = pq.ParquetFile(path)
    t = f.read()
    cols = {}
    for name in t.column_names:
        c = t.column(name)
        facts = {"nulls": c.null_count}
        if pa.types.is_list(c.type):
            lens = pc.list_value_length(c)
            facts["len_min"] = pc.min(lens).as_py()
            facts["len_max"] = pc.max(lens).as_py()
        else:
            facts["distinct"] = len(pc.unique(c.drop_null()))
            if pa.types.is_floating(c.type) or pa.types.is_integer(c.type):
                facts["min"] = pc.min(c).as_py()
                facts["max"] = pc.max(c).as_py()
                facts["mean"] = pc.mean(c).as_py()
        cols[name] = facts
    codec = f.metadata.row_group(0).column(0).compression
    return {"rows": t.num_rows, "codec": codec, "columns": cols}


for codec in ["none", "snappy", "gzip", "zstd", "lz4", "brotli"]:
    name = f"dict_nulls_{codec}.parquet"
    expect["parquet"][name] = parquet_facts(os.path.join(out, name))

# A second table written here with every codec: ints, floats with NaN, strings, bools.
n = 300
table = pa.table({
    "id": pa.array(np.arange(n, dtype=np.int64)),
    "x": pa.array([None if i % 7 == 0 else float(i) / 4 for i in range(n)], pa.float64()),
    "name": pa.array([None if i % 11 == 0 else f"n{i % 13}" for i in range(n)]),
    "ok": pa.array([i % 3 == 0 for i in range(n)]),
})
for codec in ["gzip", "zstd", "lz4", "brotli", "snappy"]:
    name = f"table_{codec}.parquet"
    p = os.path.join(out, name)
    pq.write_table(table, p, compression=codec, data_page_size=512, row_group_size=128)
    expect["parquet"][name] = parquet_facts(p)

# .npy in Fortran order and big-endian.
a = (np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 5.5) / 3
for name, arr in {
    "f32_fortran.npy": np.asfortranarray(a),
    "f64_be_fortran.npy": np.asfortranarray(a.astype(">f8")),
    "i16_be.npy": (np.arange(12).reshape(3, 4) * 1000 - 6000).astype(">i2"),
}.items():
    np.save(os.path.join(out, name), arr)
    back = np.load(os.path.join(out, name))
    expect["npy"][name] = {"shape": list(back.shape),
                           "fortran_order": bool(back.flags.f_contiguous and back.ndim > 1),
                           "values": np.ascontiguousarray(back).reshape(-1).astype(np.float64).tolist()}
np.savez(os.path.join(out, "fortran.npz"), a=np.asfortranarray(a), b=np.arange(2))
expect["npy"]["fortran.npz"] = {"a": np.ascontiguousarray(a).reshape(-1).astype(np.float64).tolist()}

# TFRecord, compressed as tf.data writes it.
import tensorflow as tf  # noqa: E402

assert tf.__version__ == "2.21.0"


def example(i):
    return tf.train.Example(features=tf.train.Features(feature={
        "id": tf.train.Feature(int64_list=tf.train.Int64List(value=[i])),
        "x": tf.train.Feature(float_list=tf.train.FloatList(value=[i / 2, -i])),
        "name": tf.train.Feature(bytes_list=tf.train.BytesList(value=[f"r{i}".encode()])),
    })).SerializeToString()


for kind in ["GZIP", "ZLIB"]:
    name = f"examples_{kind.lower()}.tfrecord"
    p = os.path.join(out, name)
    with tf.io.TFRecordWriter(p, options=tf.io.TFRecordOptions(compression_type=kind)) as w:
        for i in range(50):
            w.write(example(i))
    back = [r.numpy().hex() for r in tf.data.TFRecordDataset(p, compression_type=kind)]
    expect["tfrecord"][name] = {"compression_type": kind, "records": back}

with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump(expect, f, indent=1, sort_keys=True)
print("wrote", out)
