#!/usr/bin/env python3
"""Golden fixtures for single ops: TRANSPOSE, STRIDED_SLICE, SLICE, SQUEEZE, LEAKY_RELU,
HARD_SWISH, MAXIMUM, MINIMUM, REDUCE_MAX, RESIZE_NEAREST_NEIGHBOR, SPLIT, SPLIT_V, and ADD /
MAXIMUM of two graph inputs (the multi-input models `edgeflow run` is tested on).

Each case is a one-op TensorFlow function converted by the TFLite converter, as float32
and as a full-integer int8 model (int8 inputs and outputs, calibrated on seeded normal
data). The golden outputs are what TFLite's interpreter computes with its *reference*
kernels (OpResolverType.BUILTIN_REF, the kernels TFLite Micro shares) on one seeded
input. edgeflow must reproduce int8 outputs bit for bit and float32 outputs exactly.

Cases: transposes of rank 1 to 4 (every kind of permutation the shapes allow, size-1
dimensions included), strided slices with positive, negative and non-unit strides,
negative and out-of-range (clamped) begin/end, begin/end masks and shrunk axes, SLICE
with size -1, SQUEEZE, leaky ReLU with several slopes, hard swish, broadcasting
maximum / minimum against a constant and between two inputs, max-reductions, nearest
resizes (plain, align_corners, half_pixel_centers; up and down), splits and SPLIT_V
(several outputs; parts of different sizes, one inferred from -1), and MAXIMUM / MINIMUM
after a LEAKY_RELU or an ADD (whose int8 output the converter gives the MAXIMUM's
parameters), and the quantizer's range cases: ADD / MUL run in place by the converter's
calibration interpreter (and controls where they are not), CONCATENATION / MAXIMUM inputs
through a RESHAPE or shared by two of them. Shapes are drawn from a seeded generator.

The converter writes a squeeze as RESHAPE; the SQUEEZE fixture is that converted file
with its op rewritten into a SQUEEZE (builtin code, SqueezeOptions, the shape input
dropped) through the schema's object API, so that the importer's SQUEEZE path is tested
on a file TFLite itself runs (the golden is TFLite's output for the rewritten file).

Multi-input / multi-output fixtures store inputs as NAME.input.npy, NAME.input1.npy, …
and outputs as NAME.output.npy, NAME.output1.npy, …, in the model's input / output order.

Pinned versions: conformance/ops/requirements.txt (Python 3.11). From the repository root:
    python3 -m venv /tmp/venv-ops && /tmp/venv-ops/bin/pip install -r conformance/ops/requirements.txt
    /tmp/venv-ops/bin/python conformance/ops/make_op_fixtures.py

edgeflow's exports of these fixtures (conformance/ops/export/, written by
`EDGEFLOW_BLESS_EXPORT=1 cargo test -p edgeflow-tests --test op_conformance`) are run in
TFLite Micro's interpreter by conformance/export/run_tflm.py.

Output (conformance/ops/), per case NAME_{f32,int8}: NAME.tflite, NAME.input.npy,
NAME.output.npy (NAME_int8.calib.npy too for the single-input MAXIMUM / MINIMUM / ADD / MUL /
CONCATENATION cases: the converter's calibration set), and MANIFEST.json (per fixture: the ops in the
converted file, the input/output shapes). A case whose converted file does not contain the op it was written
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
# Ops whose int8 fixtures also keep the converter's calibration set (NAME_int8.calib.npy,
# float32 [N, *input_shape]): tests/tests/op_conformance.rs quantizes the float
# twin (NAME_f32.tflite) with it and compares with the converter's NAME_int8.tflite.
QUANTIZER_CASES = ("MAXIMUM", "MINIMUM", "ADD", "MUL", "CONCATENATION")
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
    # SQUEEZE (rewritten from the converter's RESHAPE, see the module docs).
    out.append(("squeeze", [1, 4, 1, 3], lambda x: tf.squeeze(x, [0, 2]), "SQUEEZE"))
    # LEAKY_RELU.
    for i, alpha in enumerate([0.2, 0.01, 1.7]):
        out.append((f"leaky_relu_{i}", dims(3, 2, 6), lambda x, a=alpha: tf.nn.leaky_relu(x, alpha=a), "LEAKY_RELU"))
    # HARD_SWISH (the converter fuses x * relu6(x + 3) / 6).
    out.append(("hard_swish_r2", dims(2, 4, 9), lambda x: x * tf.nn.relu6(x + 3.0) * (1.0 / 6.0), "HARD_SWISH"))
    out.append(("hard_swish_r4", [1] + dims(3, 3, 6), lambda x: x * tf.nn.relu6(x + 3.0) * (1.0 / 6.0), "HARD_SWISH"))
    # MAXIMUM / MINIMUM against a constant (broadcast along the last / a middle dim).
    s = dims(3, 2, 5)
    c1 = rng.normal(0.0, 0.5, size=[s[-1]]).astype(np.float32)
    # (A closure, not a default argument: tf.function would make an array argument an input.)
    def with_const(f, c):
        return lambda x: f(x, tf.constant(c))
    out.append(("maximum_bcast_last", s, with_const(tf.maximum, c1), "MAXIMUM"))
    s = dims(3, 2, 5)
    c2 = rng.normal(0.0, 0.5, size=[s[1], 1]).astype(np.float32)
    out.append(("minimum_bcast_mid", s, with_const(tf.minimum, c2), "MINIMUM"))
    s = dims(2, 3, 6)
    c3 = rng.normal(0.0, 0.5, size=s).astype(np.float32)
    out.append(("minimum_same", s, with_const(tf.minimum, c3), "MINIMUM"))
    # Two graph inputs.
    s = dims(3, 2, 5)
    out.append(("maximum_two_inputs", [s, [1, s[1], 1]], lambda x, y: tf.maximum(x, y), "MAXIMUM"))
    s = dims(2, 3, 6)
    out.append(("add_two_inputs", [s, s], lambda x, y: x + y, "ADD"))
    # REDUCE_MAX.
    s = [1] + dims(3, 2, 6)
    out.append(("reduce_max_hw", s, lambda x: tf.reduce_max(x, axis=[1, 2]), "REDUCE_MAX"))
    s = dims(3, 2, 6)
    out.append(("reduce_max_last_keep", s, lambda x: tf.reduce_max(x, axis=-1, keepdims=True), "REDUCE_MAX"))
    s = dims(3, 2, 6)
    out.append(("reduce_max_0_2", s, lambda x: tf.reduce_max(x, axis=[0, 2]), "REDUCE_MAX"))
    # RESIZE_NEAREST_NEIGHBOR.
    rn = tf.compat.v1.image.resize_nearest_neighbor
    out.append(("resize_nn_up", [1, 3, 4, 2], lambda x: rn(x, [7, 9]), "RESIZE_NEAREST_NEIGHBOR"))
    out.append(("resize_nn_align", [1, 3, 4, 2], lambda x: rn(x, [5, 7], align_corners=True), "RESIZE_NEAREST_NEIGHBOR"))
    out.append(("resize_nn_half_pixel", [2, 4, 3, 3], lambda x: rn(x, [7, 5], half_pixel_centers=True), "RESIZE_NEAREST_NEIGHBOR"))
    out.append(("resize_nn_down", [1, 7, 9, 2], lambda x: rn(x, [3, 4]), "RESIZE_NEAREST_NEIGHBOR"))
    out.append(("resize_nn_down_half_pixel", [1, 8, 6, 1], lambda x: tf.image.resize(x, [3, 4], method="nearest"), "RESIZE_NEAREST_NEIGHBOR"))
    # SPLIT (several outputs).
    s = [2, 6] + dims(1, 2, 4)
    out.append(("split_3_axis1", s, lambda x: tf.split(x, 3, axis=1), "SPLIT"))
    s = dims(2, 2, 4) + [4]
    out.append(("split_2_last", s, lambda x: tf.split(x, 2, axis=-1), "SPLIT"))
    # SPLIT_V (parts of different sizes; -1 takes the rest).
    s = [2, 6] + dims(1, 2, 4)
    out.append(("split_v_axis1", s, lambda x: tf.split(x, [1, 3, 2], axis=1), "SPLIT_V"))
    s = dims(2, 2, 4) + [7]
    out.append(("split_v_infer_last", s, lambda x: tf.split(x, [2, -1, 1], axis=-1), "SPLIT_V"))
    out.append(("split_v_r1", [9], lambda x: tf.split(x, [4, 5], axis=0), "SPLIT_V"))
    # MAXIMUM / MINIMUM after ops whose output range the converter may choose (it gives
    # them the MAXIMUM's / MINIMUM's output parameters): the quantizer test's cases.
    s = dims(3, 2, 5)
    c4 = rng.normal(0.0, 0.5, size=[s[-1]]).astype(np.float32)
    out.append(("minimum_after_leaky", s,
                lambda x: tf.minimum(tf.nn.leaky_relu(x, alpha=0.2), tf.constant(c4)), "MINIMUM"))
    s = dims(2, 3, 6)
    out.append(("maximum_of_branches", s,
                lambda x: tf.maximum(tf.nn.leaky_relu(x, alpha=0.1), x + 0.2), "MAXIMUM"))
    # Ranges the converter's calibration observes on buffers its float interpreter reuses:
    # an ADD / MUL runs in place on an input that has the output's shape, no other reader
    # and is no graph input or output, when its own output is no graph output, so that
    # input's recorded range becomes the union of its values and the op's outputs. The
    # quantizer test's cases, with controls where no buffer is shared (a broadcast input,
    # an input read twice, an op whose output is the model's).
    c5 = rng.normal(0.0, 1.5, size=[5]).astype(np.float32)
    c6 = rng.normal(0.0, 0.5, size=[5]).astype(np.float32)
    out.append(("add_in_place_on_mul", [3, 5],
                with_const(lambda x, c: tf.nn.leaky_relu(x * c + x, alpha=0.2), c5), "ADD"))
    out.append(("mul_in_place_on_add", [3, 5],
                with_const(lambda x, c: (x + c) * 2.0 + x, c6), "MUL"))
    out.append(("add_model_output_not_in_place", [3, 5],
                with_const(lambda x, c: x * c + x, c5), "ADD"))
    out.append(("add_broadcast_not_in_place", [3, 5],
                with_const(lambda x, c: tf.nn.leaky_relu(
                    tf.reduce_max(x, axis=0, keepdims=True) * c + x, alpha=0.2), c5), "ADD"))
    out.append(("add_input_read_twice_not_in_place", [3, 5],
                with_const(lambda x, c: (lambda m: tf.nn.leaky_relu(m + x, alpha=0.2) * m)(x * c), c5),
                "ADD"))
    # CONCATENATION / MAXIMUM inputs take the output's parameters through RESHAPE, and a
    # tensor read by two of them takes the later one's (the earlier one requantizes it).
    out.append(("concat_through_reshape", [3, 5],
                with_const(lambda x, c: tf.concat(
                    [tf.reshape(x * c, [5, 3]), tf.reshape(tf.nn.leaky_relu(x, alpha=0.2) * 3.0, [5, 3])],
                    axis=0) * 2.0, c5), "CONCATENATION"))
    out.append(("concat_shared_input", [3, 5],
                with_const(lambda x, c: (lambda t: tf.concat([t, x], axis=0) * 2.0
                                         + tf.concat([x * 3.0, t], axis=0))(x * c), c5),
                "CONCATENATION"))
    out.append(("maximum_shared_input", [3, 5],
                with_const(lambda x, c: (lambda t: tf.maximum(t, x) * 2.0
                                         + tf.maximum(x * 3.0, t))(x * c), c5), "MAXIMUM"))
    return out


def as_squeeze(model_bytes, squeeze_dims):
    """The converted RESHAPE-only model rewritten into one SQUEEZE op (see module docs)."""
    import flatbuffers
    m = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(model_bytes, 0))
    (op,) = m.subgraphs[0].operators
    code = m.operatorCodes[op.opcodeIndex]
    assert max(code.builtinCode, code.deprecatedBuiltinCode) == fb.BuiltinOperator.RESHAPE
    code.builtinCode = fb.BuiltinOperator.SQUEEZE
    code.deprecatedBuiltinCode = fb.BuiltinOperator.SQUEEZE
    code.version = 1
    op.inputs = op.inputs[:1]
    op.builtinOptionsType = fb.BuiltinOptions.SqueezeOptions
    op.builtinOptions = fb.SqueezeOptionsT()
    op.builtinOptions.squeezeDims = list(squeeze_dims)
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def shapes_of(shape):
    """A case's input shapes: one shape, or a list of shapes for several inputs."""
    return shape if isinstance(shape[0], list) else [shape]


def convert(fn, shape, int8, rng):
    """The converted model and (int8) the calibration samples the converter saw."""
    specs = [tf.TensorSpec(s, tf.float32) for s in shapes_of(shape)]
    concrete = tf.function(fn, input_signature=specs).get_concrete_function()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([concrete], fn)
    calib = None
    if int8:
        calib = [[rng.normal(0.0, 0.7, size=s).astype(np.float32) for s in shapes_of(shape)]
                 for _ in range(16)]
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: iter(calib)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert(), calib


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


def run_ref(model_bytes, xs):
    """Outputs (in the model's output order) of TFLite's reference kernels on inputs `xs`."""
    it = tf.lite.Interpreter(
        model_content=model_bytes,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    for inp, x in zip(it.get_input_details(), xs):
        it.set_tensor(inp["index"], x)
    it.invoke()
    return [np.array(it.get_tensor(o["index"]), copy=True) for o in it.get_output_details()]


def npy_name(base, kind, i):
    return f"{base}.{kind}.npy" if i == 0 else f"{base}.{kind}{i}.npy"


def main():
    rng = np.random.default_rng(SEED + 1)
    manifest = {}
    skipped = []
    for name, shape, fn, want in cases():
        for int8 in (False, True):
            fname = f"{name}_{'int8' if int8 else 'f32'}"
            model, calib = convert(fn, shape, int8, rng)
            ops = ops_of(model)
            if want == "SQUEEZE" and ops == ["RESHAPE"]:
                model = as_squeeze(model, [0, 2])
                ops = ops_of(model)
            if want not in ops:
                skipped.append(f"{fname}: the converter wrote {ops}, no {want}")
                continue
            it = tf.lite.Interpreter(model_content=model)
            xs = []
            for inp in it.get_input_details():
                x = rng.normal(0.0, 0.7, size=inp["shape"]).astype(np.float32)
                if int8:
                    s, z = inp["quantization"]
                    x = np.clip(np.round(x / s) + z, -128, 127).astype(np.int8)
                xs.append(x)
            ys = run_ref(model, xs)
            with open(os.path.join(HERE, f"{fname}.tflite"), "wb") as f:
                f.write(model)
            for i, x in enumerate(xs):
                np.save(npy_name(os.path.join(HERE, fname), "input", i), x)
            for i, y in enumerate(ys):
                np.save(npy_name(os.path.join(HERE, fname), "output", i), y)
            if int8 and want in QUANTIZER_CASES and len(xs) == 1:
                # The converter's calibration set, for the quantizer test (the float
                # twin is NAME_f32.tflite).
                np.save(os.path.join(HERE, f"{fname}.calib.npy"), np.stack([c[0] for c in calib]))
            manifest[fname] = {
                "ops": ops,
                "input_shape": [list(x.shape) for x in xs] if len(xs) > 1 else list(xs[0].shape),
                "output_shape": [list(y.shape) for y in ys] if len(ys) > 1 else list(ys[0].shape),
                "dtype": str(ys[0].dtype),
            }
            print(f"{fname}: {ops} {manifest[fname]['input_shape']} -> {manifest[fname]['output_shape']}")
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
