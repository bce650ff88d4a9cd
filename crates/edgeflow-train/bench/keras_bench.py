"""Keras side of edgeflow's training benchmark: the same architecture as an edgeflow
train.toml's [model], trained on the same features (written by
`edgeflow train CONFIG --features-only DIR`), the same epochs, batch size, optimiser
and learning-rate schedule. Prints one JSON object per seed.

    v/bin/python keras_bench.py CONFIG.toml FEATURES_DIR --shape 19,30 --seeds 1 2 3

--shape is the model input per example (frames,features for a signal; h,w,c for an
image; n for a vector). Threads are fixed with --threads (default 1, as edgeflow's
config `threads = 1`).
"""
import argparse
import json
import math
import os
import sys
import time
import tomllib

import numpy as np


def build(layers, shape, tf):
    L = tf.keras.layers
    x = inp = tf.keras.Input(shape=shape)
    two_d = len(shape) == 3
    for spec in layers:
        (kind, p), = spec.items()
        if kind == "conv1d":
            x = L.Conv1D(p["filters"], p["kernel"], strides=p.get("stride", 1), padding=p.get("padding", "valid"))(x)
        elif kind == "conv2d":
            x = L.Conv2D(p["filters"], tuple(p["kernel"]), strides=tuple(p.get("stride", [1, 1])), padding=p.get("padding", "valid"))(x)
        elif kind == "depthwise_conv1d":
            x = L.DepthwiseConv1D(p["kernel"], strides=p.get("stride", 1), padding=p.get("padding", "valid"), depth_multiplier=p.get("multiplier", 1))(x)
        elif kind == "depthwise_conv2d":
            x = L.DepthwiseConv2D(tuple(p["kernel"]), strides=tuple(p.get("stride", [1, 1])), padding=p.get("padding", "valid"), depth_multiplier=p.get("multiplier", 1))(x)
        elif kind == "max_pool1d":
            x = L.MaxPooling1D(p["size"], strides=p.get("stride"))(x)
        elif kind == "avg_pool1d":
            x = L.AveragePooling1D(p["size"], strides=p.get("stride"))(x)
        elif kind == "max_pool2d":
            x = L.MaxPooling2D(tuple(p["size"]), strides=p.get("stride"))(x)
        elif kind == "avg_pool2d":
            x = L.AveragePooling2D(tuple(p["size"]), strides=p.get("stride"))(x)
        elif kind == "global_avg_pool":
            x = (L.GlobalAveragePooling2D() if two_d else L.GlobalAveragePooling1D())(x)
        elif kind == "flatten":
            x = L.Flatten()(x)
        elif kind == "batch_norm":
            x = L.BatchNormalization(momentum=1.0 - p.get("momentum", 0.01), epsilon=p.get("epsilon", 1e-3))(x)
        elif kind == "relu":
            x = L.ReLU()(x)
        elif kind == "relu6":
            x = L.ReLU(max_value=6.0)(x)
        elif kind == "dropout":
            x = L.Dropout(p["rate"])(x)
        elif kind == "dense":
            x = L.Dense(p["units"])(x)
        elif kind == "softmax":
            x = L.Softmax()(x)
        else:
            sys.exit(f"layer {kind} has no Keras mapping here")
    return tf.keras.Model(inp, x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("features")
    ap.add_argument("--shape", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(a.threads)
    with open(a.config, "rb") as f:
        cfg = tomllib.load(f)
    t = cfg.get("train", {})
    epochs, batch = t.get("epochs", 30), t.get("batch_size", 32)
    lr0, sched = t.get("learning_rate", 1e-3), t.get("schedule", "constant")
    shape = tuple(int(v) for v in a.shape.split(","))
    load = lambda n: np.load(os.path.join(a.features, n))
    xs = {s: load(f"x_{s}.npy").reshape((-1,) + shape) for s in ("train", "validation", "test")}
    ys = {s: load(f"y_{s}.npy") for s in ("train", "validation", "test")}
    classes = int(max(y.max() for y in ys.values())) + 1

    def lr_at(epoch, _lr=None):
        if sched == "cosine":
            return lr0 * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
        return lr0

    for seed in a.seeds:
        tf.keras.utils.set_random_seed(seed)
        model = build(cfg["model"]["layers"], shape, tf)
        if t.get("optimizer", "adam") == "adam":
            opt = tf.keras.optimizers.Adam(learning_rate=lr0, epsilon=1e-7)
        else:
            opt = tf.keras.optimizers.SGD(learning_rate=lr0, momentum=t.get("momentum", 0.9))
        model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        times = []

        class Clock(tf.keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                times.append(time.perf_counter() - self.t0)

        model.fit(
            xs["train"], ys["train"], batch_size=batch, epochs=epochs, shuffle=True, verbose=0,
            validation_data=(xs["validation"], ys["validation"]),
            callbacks=[Clock(), tf.keras.callbacks.LearningRateScheduler(lr_at)],
        )
        p = model.predict(xs["test"], verbose=0)
        acc = float((p.argmax(axis=1) == ys["test"]).mean())
        print(json.dumps({
            "framework": f"keras (tensorflow-cpu {tf.__version__})",
            "seed": seed,
            "epochs": epochs,
            "classes": classes,
            "mean_epoch_seconds": float(np.mean(times[1:])) if len(times) > 1 else float(times[0]),
            "first_epoch_seconds": float(times[0]),
            "test_accuracy": acc,
        }), flush=True)


if __name__ == "__main__":
    main()
