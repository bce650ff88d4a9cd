#!/usr/bin/env python3
"""Runs every `.tflite` that edgeflow's exporter wrote into conformance/export/ in
TFLite's own interpreter and records its outputs as the golden files.

For each conformance/export/NAME.tflite (written by the Rust test
tests/tests/tflite_export.rs with EDGEFLOW_BLESS_EXPORT=1, from the artifact compiled
from conformance/fixtures/NAME.tflite), the input conformance/fixtures/NAME.input.npy
is run through tf.lite.Interpreter with the reference kernels
(OpResolverType.BUILTIN_REF, the kernels TFLite Micro shares) and the output is saved
as conformance/export/NAME.output.npy. The script also reports whether that output
equals the original fixture's TFLite Micro golden (conformance/fixtures/NAME.output.npy).

Pinned versions: conformance/export/requirements.txt (Python 3.11). From the root:
    python3 -m venv /tmp/venv-export && /tmp/venv-export/bin/pip install -r conformance/export/requirements.txt
    /tmp/venv-export/bin/python conformance/export/run_tflite.py
"""

import glob
import os

import numpy as np
import tensorflow as tf

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures")


def main():
    same = 0
    paths = sorted(glob.glob(os.path.join(HERE, "*.tflite")))
    for path in paths:
        name = os.path.basename(path)[: -len(".tflite")]
        x = np.load(os.path.join(FIXTURES, f"{name}.input.npy"))
        it = tf.lite.Interpreter(
            model_path=path,
            experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        y = np.array(it.get_tensor(it.get_output_details()[0]["index"]), copy=True)
        np.save(os.path.join(HERE, f"{name}.output.npy"), y)
        tflm = np.load(os.path.join(FIXTURES, f"{name}.output.npy"))
        eq = tflm.shape == y.shape and (np.array_equal(tflm, y) if y.dtype == np.int8
                                        else np.allclose(tflm, y, rtol=1e-5, atol=1e-6))
        same += eq
        print(f"{name}: output {y.dtype} {list(y.shape)}; equals the TFLM golden of the original: {eq}")
    print(f"{len(paths)} exported models run; {same} equal the original's TFLM golden")


if __name__ == "__main__":
    main()
