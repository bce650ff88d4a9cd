"""Writes small files in tests/fixtures/ with reference writers, and what the reference
readers decode from them, for tests/sources_fixtures.rs.

numpy 2.4.6 (.npy/.npz), pyarrow 26.0.1 (.parquet), Pillow 13.0.0 (.png/.jpg), Python's
`wave` module (.wav). See scripts/requirements.txt.

    python scripts/make_fixtures.py
"""
import io
import json
import os
import wave

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

assert np.__version__ == "2.4.6" and pa.__version__ == "26.0.1"
assert Image.__version__ == "13.0.0"

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "..", "tests", "fixtures")
os.makedirs(out, exist_ok=True)
expect = {}

# .npy: several dtypes and endianness, C order.
arrays = {
    "f32": np.arange(12, dtype="<f4").reshape(3, 4) / 8,
    "f64_be": (np.arange(6, dtype=">f8") - 2.5).reshape(2, 3),
    "i64": np.array([[-(2 ** 62), 2 ** 62 + 1], [0, -1]], dtype="<i8"),
    "u8": np.arange(10, dtype="u1").reshape(5, 2),
    "bool": np.array([True, False, True]),
    "i16_3d": np.arange(24, dtype="<i2").reshape(2, 3, 4) - 12,
}
for name, a in arrays.items():
    np.save(os.path.join(out, name + ".npy"), a)
    expect[name + ".npy"] = {"shape": list(a.shape), "descr": a.dtype.str,
                             "values": a.reshape(-1).tolist()}
np.savez(os.path.join(out, "stored.npz"), x=arrays["f32"], y=arrays["i64"])
np.savez_compressed(os.path.join(out, "compressed.npz"), x=arrays["f32"], labels=np.array([3, 1, 2], dtype="<i4"))
with np.load(os.path.join(out, "compressed.npz")) as z:
    expect["compressed.npz"] = {k: {"shape": list(z[k].shape), "values": z[k].reshape(-1).tolist()} for k in z.files}

# .parquet: typed columns with nulls, Snappy and uncompressed.
table = pa.table({
    "id": pa.array([1, 2, 3, 4], pa.int64()),
    "x": pa.array([0.5, None, -1.25, 3.0], pa.float64()),
    "name": pa.array(["a", "bb", None, "dddd"], pa.string()),
    "flag": pa.array([True, False, True, None], pa.bool_()),
    "small": pa.array([1, -2, 3, -4], pa.int32()),
    "vec": pa.array([[1.0, 2.0], [], [3.0], [4.0, 5.0, 6.0]], pa.list_(pa.float32())),
})
for comp in ["snappy", "none"]:
    pq.write_table(table, os.path.join(out, "table_%s.parquet" % comp), compression=comp)
expect["table.parquet"] = pq.read_table(os.path.join(out, "table_snappy.parquet")).to_pylist()

# Images: a PNG (RGB), a grey PNG, a JPEG (decoders may differ by a few levels).
rgb = np.zeros((5, 7, 3), dtype=np.uint8)
for y in range(5):
    for x in range(7):
        rgb[y, x] = (x * 36, y * 60, (x * y * 13) % 256)
Image.fromarray(rgb).save(os.path.join(out, "rgb.png"))
Image.fromarray(rgb[:, :, 0]).save(os.path.join(out, "grey.png"))
big = np.kron(rgb, np.ones((4, 4, 1), dtype=np.uint8))  # smooth enough for JPEG
Image.fromarray(big).save(os.path.join(out, "rgb.jpg"), quality=95)
expect["rgb.png"] = {"shape": list(rgb.shape), "values": rgb.reshape(-1).tolist()}
expect["grey.png"] = {"shape": [5, 7, 1], "values": rgb[:, :, 0].reshape(-1).tolist()}
dec = np.asarray(Image.open(os.path.join(out, "rgb.jpg")).convert("RGB"))
expect["rgb.jpg"] = {"shape": list(dec.shape), "values": dec.reshape(-1).tolist()}

# WAV: 16-bit stereo and 8-bit mono PCM written by Python's wave module.
s16 = [0, 16384, -32768, 32767, -1, 1000]
with wave.open(os.path.join(out, "stereo16.wav"), "wb") as w:
    w.setnchannels(2)
    w.setsampwidth(2)
    w.setframerate(16000)
    w.writeframes(np.array(s16, dtype="<i2").tobytes())
u8 = [0, 128, 255, 64]
with wave.open(os.path.join(out, "mono8.wav"), "wb") as w:
    w.setnchannels(1)
    w.setsampwidth(1)
    w.setframerate(8000)
    w.writeframes(bytes(u8))
expect["stereo16.wav"] = {"rate": 16000, "channels": 2, "samples": [v / 32768 for v in s16]}
expect["mono8.wav"] = {"rate": 8000, "channels": 1, "samples": [(v - 128) / 128 for v in u8]}

with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump(expect, f, indent=0)
print("wrote", sorted(os.listdir(out)))
