#!/usr/bin/env python3
"""Runs every `.tflite` that edgeflow's exporter wrote for the conformance suites in
TensorFlow Lite Micro's own interpreter and records its outputs as the golden files.

Two directories of exported files, each written by a Rust test with
EDGEFLOW_BLESS_EXPORT=1 from the artifact compiled from a committed fixture:

    conformance/export/NAME.tflite      (tests/tests/tflite_export.rs; inputs from
                                         conformance/fixtures/NAME.input.npy)
    conformance/ops/export/NAME.tflite  (tests/tests/op_conformance.rs; inputs from
                                         conformance/ops/NAME.input.npy, NAME.input1.npy, ...)
    conformance/export/onnx/MODEL_KIND.tflite
                                        (host-tools/edgeflow-cli/tests/onnx_export.rs: ONNX
                                         models converted (f32) or quantized (int8) by the
                                         CLI, then exported; inputs from
                                         conformance/export/onnx/MODEL.input.npy, written by
                                         make_onnx_pad_fixtures.py; no original golden)

Each file is loaded by `tflite_micro`'s Python interpreter (the TFLM C++ interpreter with
its reference kernels and the all-ops resolver, from the `tflite-micro` wheel), run on the
fixture's inputs, and every output k is saved beside the file as NAME.output.npy
(k = 0) or NAME.output{k}.npy. The Rust tests then require edgeflow's outputs to equal
these bit for bit (int8 and float32), so they need no Python at run time.

The script also reports whether TFLM's output on the exported file equals the original
fixture's golden (conformance/fixtures: TFLM on the converter's file; conformance/ops:
TFLite's reference kernels on the converter's file) and exits non-zero when a file cannot
be run.

Pinned versions: conformance/export/requirements.txt (Python 3.11). From the root:
    python3 -m venv /tmp/venv-tflm && /tmp/venv-tflm/bin/pip install -r conformance/export/requirements.txt
    /tmp/venv-tflm/bin/python conformance/export/run_tflm.py
"""

import os
import sys

import numpy as np
from tflite_micro.python.tflite_micro import runtime

HERE = os.path.dirname(os.path.abspath(__file__))
CONF = os.path.dirname(HERE)
# (directory of exported files, directory of the fixtures they came from, whether the
# fixtures have an original golden and inputs named as the file; otherwise the input is
# MODEL.input.npy for the file MODEL_f32 / MODEL_int8)
SUITES = [
    (HERE, os.path.join(CONF, "fixtures"), True),
    (os.path.join(CONF, "ops", "export"), os.path.join(CONF, "ops"), True),
    (os.path.join(HERE, "onnx"), os.path.join(HERE, "onnx"), False),
]


def npy_name(base, kind, i):
    return f"{base}.{kind}.npy" if i == 0 else f"{base}.{kind}{i}.npy"


def load_all(base, kind):
    out = []
    while os.path.exists(npy_name(base, kind, len(out))):
        out.append(np.load(npy_name(base, kind, len(out))))
    return out


def run_tflm(model_bytes, xs):
    """Every output of TFLM's interpreter on inputs `xs` (in the model's order)."""
    it = runtime.Interpreter.from_bytes(model_bytes)
    n_in = len(_details(it.get_input_details))
    if n_in != len(xs):
        raise ValueError(f"the model has {n_in} inputs, the fixture {len(xs)}")
    for k, x in enumerate(xs):
        it.set_input(x, k)
    it.invoke()
    return [np.array(it.get_output(k), copy=True) for k in range(len(_details(it.get_output_details)))]


def _details(get):
    """All of an interpreter's input (or output) details: index until it refuses (the
    refusal's message, which TFLM prints on stderr, is silenced)."""
    out = []
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            while True:
                try:
                    out.append(get(len(out)))
                except (IndexError, RuntimeError, ValueError):
                    return out
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


def main():
    total = equal = compared = 0
    failed = []
    for export_dir, fixture_dir, original in SUITES:
        names = sorted(f[: -len(".tflite")] for f in os.listdir(export_dir) if f.endswith(".tflite"))
        for name in names:
            with open(os.path.join(export_dir, f"{name}.tflite"), "rb") as f:
                model = f.read()
            xs = load_all(os.path.join(fixture_dir, name if original else name.rsplit("_", 1)[0]), "input")
            try:
                ys = run_tflm(model, xs)
            except Exception as e:  # noqa: BLE001 (reported, and the exit code says so)
                failed.append(f"{name}: {e}")
                continue
            # Stale outputs of an earlier run (a model may have had more outputs).
            k = 0
            while os.path.exists(npy_name(os.path.join(export_dir, name), "output", k)):
                os.remove(npy_name(os.path.join(export_dir, name), "output", k))
                k += 1
            for k, y in enumerate(ys):
                np.save(npy_name(os.path.join(export_dir, name), "output", k), y)
            total += 1
            if not original:
                print(f"{os.path.relpath(export_dir, CONF)}/{name}: {len(ys)} output(s) "
                      f"{[str(y.dtype) for y in ys]}; no original golden")
                continue
            golden = load_all(os.path.join(fixture_dir, name), "output")
            eq = len(golden) == len(ys) and all(same(a, b) for a, b in zip(ys, golden))
            compared += 1
            equal += eq
            print(f"{os.path.relpath(export_dir, CONF)}/{name}: {len(ys)} output(s) "
                  f"{[str(y.dtype) for y in ys]}; bit-equal to the original fixture's golden: {eq}")
    for f in failed:
        print("NOT RUN:", f)
    print(f"{total} exported files run in TFLM; {equal} of the {compared} with an original golden bit-equal to it; "
          f"{len(failed)} could not be run")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
