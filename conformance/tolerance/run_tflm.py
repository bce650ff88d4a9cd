#!/usr/bin/env python3
"""Runs the quantization-tolerance fixtures in TFLite Micro and records its outputs.

For each conformance/tolerance/NAME.tflite (written by tests/tests/tflite_tolerances.rs
with EDGEFLOW_BLESS_TOLERANCE=1: a conformance model rewritten to carry a quantization
form that older converters wrote), the raw input NAME.input.bin is run through
tflite-micro's Python interpreter (its reference kernels) and the output is saved as
NAME.output_tflm.npy. That TFLM accepts and runs the file is the point of the fixture;
edgeflow's output must equal this one bit for bit.

Pinned versions: conformance/requirements.txt (tflite-micro, numpy; Python 3.11):
    python3 -m venv /tmp/venv-tflm && /tmp/venv-tflm/bin/pip install -r conformance/requirements.txt
    /tmp/venv-tflm/bin/python conformance/tolerance/run_tflm.py
"""

import glob
import os

import numpy as np
from tflite_micro.python.tflite_micro import runtime as tflm

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    paths = sorted(glob.glob(os.path.join(HERE, "*.tflite")))
    for path in paths:
        name = os.path.basename(path)[: -len(".tflite")]
        with open(path, "rb") as f:
            buf = f.read()
        it = tflm.Interpreter.from_bytes(buf, arena_size=1 << 20)
        d = it.get_input_details(0)
        raw = open(os.path.join(HERE, f"{name}.input.bin"), "rb").read()
        x = np.frombuffer(raw, dtype=d["dtype"]).reshape(d["shape"])
        it.set_input(x, 0)
        it.invoke()
        y = np.array(it.get_output(0), copy=True)
        np.save(os.path.join(HERE, f"{name}.output_tflm.npy"), y)
        print(f"{name}: TFLite Micro ran it, output {y.dtype} {list(y.shape)}")
    print(f"{len(paths)} files run")


if __name__ == "__main__":
    main()
