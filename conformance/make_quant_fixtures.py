#!/usr/bin/env python3
"""Calibration sets and float twins for the quantizer conformance tests.

`make_fixtures.py` quantizes every `*_int8` fixture with the TFLite converter from a
seeded calibration set that it does not save. This script rebuilds each model with the
same seed, redraws the same calibration samples, checks that converting them again
reproduces the committed `*_int8.tflite` byte for byte (so the samples are the ones the
converter saw), and writes, into conformance/quant/:

    NAME.calib.npy     float32 [N_CALIB, *input_shape]: the converter's calibration set
    NAME.f32.tflite    the same model converted without quantization (float twin)

for every fixture quantized from a float model (NAME = the int8 fixture name). The
edgeflow quantizer test (crates/edgeflow-compile/tests/quantize_conformance.rs)
quantizes NAME.f32.tflite with NAME.calib.npy and compares its parameters and outputs
with the converter's NAME.tflite.

Pinned versions: conformance/requirements.txt (same as make_fixtures.py).
Run from the repository root:
    .venv/bin/python conformance/make_quant_fixtures.py
"""

import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_fixtures as mf  # noqa: E402

OUT = os.path.join(HERE, "quant")


def main():
    os.makedirs(OUT, exist_ok=True)
    bad = []
    for base, builder, variants in mf.MODELS:
        for variant in variants:
            if variant == "f32":
                continue
            name = f"{base}_{mf.SUFFIX[variant]}"
            if variant == "int8_floatio":
                name = f"{base}_int8_floatio"
            model, rng = mf.build(name, builder)
            state = rng.bit_generator.state
            in_shape = [int(d) for d in model.inputs[0].shape]
            calib = np.stack([rng.normal(0.0, mf.CALIB_STD, in_shape).astype(np.float32)
                              for _ in range(mf.N_CALIB)])
            rng.bit_generator.state = state
            buf = mf.convert(model, variant, rng)
            if base == "softmax_beta":
                buf = mf.patch_softmax_beta(buf, mf.SOFTMAX_BETA)
            with open(os.path.join(mf.DEFAULT_OUT, f"{name}.tflite"), "rb") as f:
                committed = f.read()
            if buf != committed:
                bad.append(name)
                continue
            fbuf = mf.convert(model, "f32", rng)
            if base == "softmax_beta":
                fbuf = mf.patch_softmax_beta(fbuf, mf.SOFTMAX_BETA)
            mf.save_npy(os.path.join(OUT, f"{name}.calib.npy"), calib)
            with open(os.path.join(OUT, f"{name}.f32.tflite"), "wb") as f:
                f.write(fbuf)
            print(f"{name}: calib {calib.shape}, float twin {len(fbuf)} bytes")
    if bad:
        print("NOT REPRODUCED (calibration unknown):", bad)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
