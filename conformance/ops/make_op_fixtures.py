#!/usr/bin/env python3
"""Golden fixtures for the data-movement ops: TRANSPOSE, STRIDED_SLICE, SLICE, SQUEEZE.

Each case is a one-op TensorFlow function converted by the TFLite converter, as float32
and as a full-integer int8 model (int8 input and output, calibrated on seeded normal
data). The golden output is what TFLite's interpreter computes with its *reference*
kernels (OpResolverType.BUILTIN_REF, the kernels TFLite Micro shares) on one seeded
input. edgeflow must reproduce int8 outputs bit for bit and float32 outputs exactly
(these ops only move elements).

Cases: transposes of rank 1 to 4 (every kind of permutation the shapes allow, size-1
dimensions included), strided slices with positive, negative and non-unit strides,
negative and out-of-range (clamped) begin/end, begin/end masks and shrunk axes, SLICE
with size -1, and SQUEEZE. Shapes are drawn from a seeded generator.

Pinned versions: conformance/ops/requirements.txt (Python 3.11). From the repository root:
    python3 -m venv /tmp/venv-ops && /tmp/venv-ops/bin/pip install -r conformance/ops/requirements.txt
    /tmp/venv-ops/bin/python conformance/ops/make_op_fixtures.py
    # after `EDGEFLOW_BLESS_EXPORT=1 cargo test -p edgeflow-tests --test op_conformance`:
    /tmp/venv-ops/bin/python conformance/ops/make_op_fixtures.py --exports

Output (conformance/ops/), per case NAME_{f32,int8}: NAME.tflite, NAME.input.npy,
NAME.output.npy, and MANIFEST.json (per fixture: the ops in the converted file, the
input/output shapes). A case whose converted file does not contain the op it was written
for (the converter folded it away) is reported and not written.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.lite.python import schema_py_generated as fb  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20261130
OP_NAMES = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}


def cases():
    """(name, input shape, function of x, the op that must appear)."""
    rng = np.random.default_rng(SEED)

    def dims(rank, lo=1, hi=5):
        return [int(d) for d in rng.integers(lo, hi + 1, size=rank)]

    out = []
    # TRANSPOSE, rank 1..4.
    out.append(("transpose_r1", [6], lambda x: tf.transpose(x, [0]), "TRANSPOSE"))
    out.append(("transpose_r2", dims(2, 2), lambda x: tf.transpose(x, [1, 0]), "TRANSPOSE"))
    for i, perm in enumerate([[2, 0, 1], [1, 2, 0], [0, 2, 1]]):
        out.append((f"transpose_r3_{i}", dims(3, 2), lambda x, p=perm: tf.transpose(x, p), "TRANSPOSE"))
    for i, perm in enumerate([[0, 3, 1, 2], [0, 2, 3, 1], [3, 2, 1, 0], [1, 0, 3, 2], [2, 0, 3, 1]]):
        out.append((f"transpose_r4_{i}", dims(4, 2), lambda x, p=perm: tf.transpose(x, p), "TRANSPOSE"))
    # A size-1 dimension that moves between others.
    out.append(("transpose_r4_unit", [1, 3, 1, 4], lambda x: tf.transpose(x, [2, 3, 0, 1]), "TRANSPOSE"))
    # STRIDED_SLICE.
    s = dims(2, 5, 8)
    out.append(("sslice_r2_step2", s, lambda x: x[:, 1:6:2], "STRIDED_SLICE"))
    s = dims(1, 6, 9)
    out.append(("sslice_r1_reverse", s, lambda x: x[::-1], "STRIDED_SLICE"))
    s = dims(1, 7, 9)
    out.append(("sslice_r1_reverse_step3", s, lambda x: x[-2::-3], "STRIDED_SLICE"))
    s = dims(3, 3, 6)
    out.append(("sslice_r3_negative", s, lambda x: x[:, -3:, -2:-1], "STRIDED_SLICE"))
    s = dims(2, 3, 6)
    out.append(("sslice_r2_clamped", s, lambda x: x[-100:100, 1:100], "STRIDED_SLICE"))
    s = [1] + dims(3, 4, 7)
    out.append(("sslice_r4_shrink", s, lambda x: x[:, 1, ::2, 1:3], "STRIDED_SLICE"))
    s = [2] + dims(3, 4, 7)
    out.append(("sslice_r4_mixed", s, lambda x: x[1:, ::-2, 1:, -1:0:-2], "STRIDED_SLICE"))
    s = dims(3, 4, 7)
    out.append(("sslice_r3_last", s, lambda x: x[..., -1], "STRIDED_SLICE"))
    s = dims(4, 4, 6)
    out.append(("sslice_r4_stride3", s, lambda x: tf.strided_slice(x, [0, 1, 0, 2], [4, 6, 6, 6], [1, 3, 2, 1]), "STRIDED_SLICE"))
    # SLICE (size -1: to the end).
    s = dims(3, 3, 6)
    out.append(("slice_r3", s, lambda x: tf.slice(x, [1, 0, 1], [-1, 2, 2]), "SLICE"))
    s = dims(4, 2, 5)
    out.append(("slice_r4", s, lambda x: tf.slice(x, [0, 1, 0, 1], [-1, 1, -1, 1]), "SLICE"))
    # SQUEEZE.
    out.append(("squeeze", [1, 4, 1, 3], lambda x: tf.squeeze(x, [0, 2]), "SQUEEZE"))
    return out


def convert(fn, shape, int8, rng):
    spec = tf.TensorSpec(shape, tf.float32)
    concrete = tf.function(fn, input_signature=[spec]).get_concrete_function()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([concrete], fn)
    if int8:
        calib = [rng.normal(0.0, 0.7, size=shape).astype(np.float32) for _ in range(16)]
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([c] for c in calib)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def ops_of(model_bytes):
    m = fb.Model.GetRootAsModel(model_bytes, 0)
    names = []
    sg = m.Subgraphs(0)
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        code = m.OperatorCodes(op.OpcodeIndex())
        b = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        names.append(OP_NAMES.get(b, str(b)))
    return names


def run_ref(model_bytes, x):
    it = tf.lite.Interpreter(
        model_content=model_bytes,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    it.set_tensor(inp["index"], x)
    it.invoke()
    o = it.get_output_details()[0]
    return np.array(it.get_tensor(o["index"]), copy=True), inp, o


def run_exports():
    """Runs edgeflow's exports of the fixtures (conformance/ops/export/NAME.tflite, written
    by tests/tests/op_conformance.rs with EDGEFLOW_BLESS_EXPORT=1) with the reference
    kernels and saves export/NAME.output.npy; reports whether each equals the fixture's
    golden."""
    d = os.path.join(HERE, "export")
    same = 0
    names = sorted(f[: -len(".tflite")] for f in os.listdir(d) if f.endswith(".tflite"))
    for name in names:
        with open(os.path.join(d, f"{name}.tflite"), "rb") as f:
            model = f.read()
        x = np.load(os.path.join(HERE, f"{name}.input.npy"))
        y, _, _ = run_ref(model, x)
        np.save(os.path.join(d, f"{name}.output.npy"), y)
        eq = np.array_equal(y, np.load(os.path.join(HERE, f"{name}.output.npy")))
        same += eq
        print(f"{name}: {ops_of(model)} equals the golden: {eq}")
    print(f"{len(names)} exported files run; {same} equal their fixture's golden")
    return 0 if same == len(names) else 1


def main():
    if "--exports" in sys.argv[1:]:
        return run_exports()
    rng = np.random.default_rng(SEED + 1)
    manifest = {}
    skipped = []
    for name, shape, fn, want in cases():
        for int8 in (False, True):
            fname = f"{name}_{'int8' if int8 else 'f32'}"
            model = convert(fn, shape, int8, rng)
            ops = ops_of(model)
            if want not in ops:
                skipped.append(f"{fname}: the converter wrote {ops}, no {want}")
                continue
            x = rng.normal(0.0, 0.7, size=shape).astype(np.float32)
            it = tf.lite.Interpreter(model_content=model)
            inp = it.get_input_details()[0]
            if int8:
                s, z = inp["quantization"]
                x = np.clip(np.round(x / s) + z, -128, 127).astype(np.int8)
            y, _, o = run_ref(model, x)
            with open(os.path.join(HERE, f"{fname}.tflite"), "wb") as f:
                f.write(model)
            np.save(os.path.join(HERE, f"{fname}.input.npy"), x)
            np.save(os.path.join(HERE, f"{fname}.output.npy"), y)
            manifest[fname] = {
                "ops": ops,
                "input_shape": list(x.shape),
                "output_shape": list(y.shape),
                "dtype": str(y.dtype),
            }
            print(f"{fname}: {ops} {list(x.shape)} -> {list(y.shape)}")
    with open(os.path.join(HERE, "MANIFEST.json"), "w") as f:
        json.dump({"generator": "conformance/ops/make_op_fixtures.py",
                   "tensorflow": tf.__version__, "numpy": np.__version__,
                   "golden": "tf.lite.Interpreter, OpResolverType.BUILTIN_REF",
                   "fixtures": manifest, "not_written": skipped}, f, indent=1, sort_keys=True)
    for s in skipped:
        print("not written:", s)
    print(f"{len(manifest)} fixtures written, {len(skipped)} not written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
