#!/usr/bin/env python3
"""Peer comparison of post-training int8 quantizers: the TFLite converter vs edgeflow.

Trains three small float Keras models on real data, converts each to a float .tflite
and (TFLite converter, full-integer int8, int8 in/out) to an int8 .tflite from the SAME
calibration samples, and writes everything edgeflow needs to quantize the float model
itself and to measure test accuracy (bench/quantizer/run.sh does that part):

  imu      1-D CNN (Conv2D with 1xK kernels = conv1d) on BasicMotions (UEA archive,
           6-axis accelerometer + gyroscope, 4 classes, 40 train / 40 test)
  dscnn    DS-CNN (depthwise-separable CNN with batch norm) on JapaneseVowels
           (UEA archive, 12 LPC-cepstrum coefficients per frame, 9 speakers,
           270 train / 370 test) -- cepstral speech features, not MFCC
  digits   small image CNN on scikit-learn's 8x8 digits (1797 images, 10 classes,
           fixed 70/30 split)

Data: the UEA sets are read from the pinned `aeon` wheel on PyPI (as
crates/edgeflow-data/scripts/fetch_basicmotions.sh does); digits ship with
scikit-learn. Nothing is committed; output goes to OUT (default target/bench/quantizer):

  NAME.f32.tflite   NAME.int8_tflite.tflite   NAME.calib.npy (float32 [N, ...input])
  NAME.test_x.npy (float32 [M, ...input])     NAME.test_y.npy (int64 [M])
  NAME.summary.json  (float / converter-int8 accuracy from the TFLite interpreter)

Pinned versions: bench/quantizer/requirements.txt. Deterministic: Python, NumPy and
TensorFlow are seeded before each model, TensorFlow runs with op determinism on and one
intra-op and one inter-op thread (a multi-threaded reduction's order, and so its float
result, depends on how the work is split), and the training order is a fixed NumPy
permutation per epoch (Keras's own shuffling is off). Running the script twice gives
byte-identical .tflite files; it prints a SHA-256 of each output so two runs can be compared.

    python3 -m venv .venv && .venv/bin/pip install -r bench/quantizer/requirements.txt
    .venv/bin/python bench/quantizer/compare.py [OUT]
"""

import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

# Before any op runs: thread pools are created once, on first use.
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
tf.config.experimental.enable_op_determinism()

SEED = 20261129
N_CALIB = 200
AEON = "aeon==1.6.0"


def ts_read(text):
    """UEA .ts (multivariate, labels last) -> list of [dims, len] arrays, labels."""
    xs, ys, classes, in_data = [], [], None, False
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.lower().startswith("@classlabel"):
            classes = line.split()[2:]
        elif line.lower() == "@data":
            in_data = True
        elif in_data:
            parts = line.split(":")
            dims = [np.array([float(v) for v in p.split(",")], dtype=np.float32) for p in parts[:-1]]
            xs.append(np.stack(dims))
            ys.append(classes.index(parts[-1]))
    return xs, np.array(ys, dtype=np.int64)


def uea(name):
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--only-binary=:all:", "-d", d, AEON], check=True)
        whl = [f for f in os.listdir(d) if f.endswith(".whl")][0]
        with zipfile.ZipFile(os.path.join(d, whl)) as z:
            get = lambda s: z.read(f"aeon/datasets/data/{name}/{name}_{s}.ts").decode()  # noqa: E731
            return ts_read(get("TRAIN")), ts_read(get("TEST"))


def standardize(train, test, axis):
    mu = train.mean(axis=axis, keepdims=True)
    sd = train.std(axis=axis, keepdims=True) + 1e-6
    return ((train - mu) / sd).astype(np.float32), ((test - mu) / sd).astype(np.float32)


def data_imu():
    (xtr, ytr), (xte, yte) = uea("BasicMotions")
    # [N, 6, 100] -> NHWC [N, 1, 100, 6]; per-axis standardization from the training set.
    f = lambda xs: np.stack(xs).transpose(0, 2, 1)[:, None, :, :]  # noqa: E731
    a, b = standardize(f(xtr), f(xte), axis=(0, 1, 2))
    return a, ytr, b, yte, 4


def data_vowels():
    (xtr, ytr), (xte, yte) = uea("JapaneseVowels")
    frames = 29
    def f(xs):
        out = np.zeros((len(xs), frames, 12, 1), np.float32)
        for i, x in enumerate(xs):
            n = min(frames, x.shape[1])
            out[i, :n, :, 0] = x[:, :n].T
        return out
    a, b = standardize(f(xtr), f(xte), axis=(0, 1))
    return a, ytr, b, yte, 9


def data_digits():
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]
    y = d.target.astype(np.int64)
    idx = np.random.default_rng(SEED).permutation(len(x))
    cut = int(0.7 * len(x))
    return x[idx[:cut]], y[idx[:cut]], x[idx[cut:]], y[idx[cut:]], 10


def m_imu(shape, k, batch=1):
    x = inp = keras.Input(shape, batch_size=batch)
    x = layers.Conv2D(16, (1, 5), activation="relu")(x)
    x = layers.MaxPooling2D((1, 2))(x)
    x = layers.Conv2D(32, (1, 5), activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(k, activation="softmax")(x)
    return keras.Model(inp, x)


def m_dscnn(shape, k, batch=1):
    x = inp = keras.Input(shape, batch_size=batch)
    x = layers.Conv2D(32, (3, 3), padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    for _ in range(2):
        x = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.Conv2D(32, 1, use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(k, activation="softmax")(x)
    return keras.Model(inp, x)


def m_digits(shape, k, batch=1):
    x = inp = keras.Input(shape, batch_size=batch)
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(k, activation="softmax")(x)
    return keras.Model(inp, x)


MODELS = [("imu", data_imu, m_imu, 80), ("dscnn", data_vowels, m_dscnn, 40),
          ("digits", data_digits, m_digits, 30)]


def interp_acc(buf, x, y):
    it = tf.lite.Interpreter(model_content=buf)
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    ok = 0
    for xi, yi in zip(x, y):
        v = xi[None]
        if i["dtype"] == np.int8:
            s, z = i["quantization"]
            v = np.clip(np.round(v / s) + z, -128, 127).astype(np.int8)
        it.set_tensor(i["index"], v)
        it.invoke()
        ok += int(np.argmax(it.get_tensor(o["index"])[0]) == yi)
    return ok / len(y)


def seed_all(seed):
    """Seed every random source the training touches (Python, NumPy, TensorFlow/Keras)."""
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)
    keras.utils.set_random_seed(seed)


def train(model, x, y, epochs, batch_size=16):
    """Mini-batch training in a fixed order: one NumPy permutation per epoch from SEED."""
    order = np.random.default_rng(SEED + 1)
    for _ in range(epochs):
        p = order.permutation(len(x))
        model.fit(x[p], y[p], batch_size=batch_size, epochs=1, verbose=0, shuffle=False)


def sha(b):
    return hashlib.sha256(b).hexdigest()[:16]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "../../target/bench/quantizer")
    os.makedirs(out, exist_ok=True)
    for name, data, builder, epochs in MODELS:
        xtr, ytr, xte, yte, k = data()
        seed_all(SEED)
        # Train with a free batch size, then copy the weights into the batch-1 model
        # that is converted (fixed shapes, as on the device).
        free = builder(xtr.shape[1:], k, batch=None)
        free.compile(optimizer=keras.optimizers.Adam(3e-3),
                     loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        train(free, xtr, ytr, epochs)
        net = builder(xtr.shape[1:], k)
        net.set_weights(free.get_weights())
        rng = np.random.default_rng(SEED)
        calib = xtr[rng.permutation(len(xtr))[:N_CALIB]]

        conv = tf.lite.TFLiteConverter.from_keras_model(net)
        f32 = conv.convert()

        def rep():
            for c in calib:
                yield [c[None]]
        conv = tf.lite.TFLiteConverter.from_keras_model(net)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
        i8 = conv.convert()

        open(os.path.join(out, f"{name}.f32.tflite"), "wb").write(f32)
        open(os.path.join(out, f"{name}.int8_tflite.tflite"), "wb").write(i8)
        np.save(os.path.join(out, f"{name}.calib.npy"), calib.astype(np.float32))
        np.save(os.path.join(out, f"{name}.test_x.npy"), xte.astype(np.float32))
        np.save(os.path.join(out, f"{name}.test_y.npy"), yte.astype(np.int64))
        summary = {
            "model": name, "train": len(xtr), "test": len(xte), "calibration": len(calib),
            "float_acc_tflite_interpreter": interp_acc(f32, xte, yte),
            "int8_acc_tflite_interpreter": interp_acc(i8, xte, yte),
            "sha256_16": {"f32.tflite": sha(f32), "int8_tflite.tflite": sha(i8),
                          "calib.npy": sha(calib.astype(np.float32).tobytes()),
                          "test_x.npy": sha(xte.astype(np.float32).tobytes())},
            "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                         "numpy": np.__version__},
        }
        json.dump(summary, open(os.path.join(out, f"{name}.summary.json"), "w"), indent=1)
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
