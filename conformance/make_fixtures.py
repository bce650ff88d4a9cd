#!/usr/bin/env python3
"""Golden-fixture generator for edgeflow conformance tests.

What this does
--------------
Builds a set of small Keras models that together exercise every operator and
builtin option edgeflow implements, converts each one with the TFLite
converter (full-integer int8 quantization and/or plain float32), runs the
resulting .tflite through **tflite-micro's reference interpreter** (the TFLM
Python bindings, `tflite_micro.python.tflite_micro.runtime`) on one seeded
input, and writes the result as the golden output.  edgeflow must reproduce
the `*.output.npy` files bit for bit.

Pinned versions (see conformance/requirements.txt):
    tensorflow-cpu == 2.21.0                (converter)
    keras          == 3.15.1                (resolved by tensorflow-cpu)
    tflite-micro   == 0.dev20261023182759   (golden outputs come from here)
    ai-edge-litert == 2.3.0                 (float cross-check only)
    numpy          == 2.4.6                 (resolved by pip with the above)
    Python 3.11

How to run (from the repository root):
    python3 -m venv .venv \
      && .venv/bin/pip install -r conformance/requirements.txt \
      && .venv/bin/python conformance/make_fixtures.py

Output (conformance/fixtures/), per fixture NAME:
    NAME.tflite               the model
    NAME.input.npy            input; dtype/shape exactly as the model input
                              (int8 for int8 models, float32 otherwise)
    NAME.output.npy           output produced by tflite-micro (the golden)
    NAME.output_litert.npy    float32 models only: output of ai-edge-litert's
                              interpreter with the *reference* kernels
                              (OpResolverType.BUILTIN_REF), for cross-checking
    MANIFEST.json             per fixture: files, ops with builtin options,
                              input/output dtype/shape/quantization, and the
                              quantization kind.

Only one fixture pair is edited after conversion: softmax_beta_{int8,f32}
have their SOFTMAX beta overwritten in place with SOFTMAX_BETA (0.5), because
the converter always emits beta=1.0.  The manifest marks it
("post_conversion_patch").

All fixtures are single-input / single-output.  Fixture names end in `_int8`
(full-integer quantized, int8 in/out), `_f32` (float32) or `_int8_floatio`
(int8 internals with float32 in/out, i.e. QUANTIZE/DEQUANTIZE at the edges).
per_tensor_int8 is converted with per-channel quantization disabled.
A `_f32` fixture's input is the dequantized input of its `_int8` twin and
both share weights, so the two outputs are roughly comparable.

Everything is seeded (numpy Generator per model, tf/keras seeds, explicit
weight initialisation), so re-running produces byte-identical files.  Use
`--check` to regenerate into a temporary directory and compare with the
committed fixtures.
"""

import argparse
import filecmp
import hashlib
import json
import os
import shutil
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402

from tflite_micro.python.tflite_micro import runtime as tflm  # noqa: E402
from tflite_micro.tensorflow.lite.micro.python import (  # noqa: E402
    schema_py_generated as fb,
)
from ai_edge_litert.interpreter import Interpreter as LiteRTInterpreter  # noqa: E402
from ai_edge_litert.interpreter import OpResolverType  # noqa: E402

BASE_SEED = 20240601
N_CALIB = 32           # representative-dataset samples
CALIB_STD = 0.7        # calibration data ~ N(0, 0.7)
SOFTMAX_BETA = 0.5    # patched into the softmax_beta fixtures
MAX_TFLITE_BYTES = 40 * 1024
TFLM_ARENA_BYTES = 1 << 20

# Ops edgeflow implements; any other op in a fixture is a generator bug.
ALLOWED_OPS = {
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D",
    "MAX_POOL_2D", "ADD", "MUL", "RESHAPE", "SOFTMAX", "QUANTIZE",
    "DEQUANTIZE", "CONCATENATION", "PAD", "MEAN", "LOGISTIC", "TANH",
}

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "fixtures")


def _enum_names(cls):
    return {v: k for k, v in vars(cls).items() if not k.startswith("_")}


OP_NAMES = _enum_names(fb.BuiltinOperator)
ACT_NAMES = _enum_names(fb.ActivationFunctionType)
PAD_NAMES = _enum_names(fb.Padding)
TYPE_NAMES = _enum_names(fb.TensorType)


# --------------------------------------------------------------------------
# Model definitions.  Each builder gets a fresh keras session and returns a
# keras.Model with batch size fixed.
# --------------------------------------------------------------------------

def clip1(x):
    """min(max(x,-1),1): the converter turns this into RELU_N1_TO_1."""
    return keras.ops.clip(x, -1.0, 1.0)


def m_conv_same_s1():
    x = inp = keras.Input((7, 9, 3), batch_size=1)
    x = layers.Conv2D(6, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(4, 1, padding="valid")(x)
    return keras.Model(inp, x)


def m_conv_valid_s2_dil():
    x = inp = keras.Input((13, 9, 2), batch_size=1)
    x = layers.Conv2D(5, 3, strides=2, padding="valid", activation="relu6")(x)
    x = layers.Conv2D(3, 3, dilation_rate=(2, 1), padding="valid")(x)
    return keras.Model(inp, x)


def m_conv_s2_same_dil2():
    x = inp = keras.Input((11, 9, 3), batch_size=1)
    x = layers.Conv2D(5, 3, strides=2, padding="same")(x)
    x = layers.Conv2D(4, (3, 2), dilation_rate=2, padding="same")(x)
    x = clip1(x)
    return keras.Model(inp, x)


def m_dw_m1_same_s2():
    x = inp = keras.Input((7, 9, 4), batch_size=1)
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = layers.DepthwiseConv2D((2, 3), strides=2, padding="same")(x)
    return keras.Model(inp, x)


def m_dw_m2_valid_s2():
    x = inp = keras.Input((9, 9, 3), batch_size=1)
    x = layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2,
                               padding="valid", activation="relu6")(x)
    return keras.Model(inp, x)


def m_dw_m3_dil2():
    x = inp = keras.Input((8, 7, 2), batch_size=1)
    x = layers.DepthwiseConv2D(3, depth_multiplier=3, dilation_rate=2,
                               padding="same")(x)
    x = clip1(x)
    return keras.Model(inp, x)


def m_fc():
    x = inp = keras.Input((16,), batch_size=1)
    x = layers.Dense(12, activation="relu")(x)
    x = layers.Dense(5, use_bias=False)(x)
    return keras.Model(inp, x)


def m_fc_batched():
    x = inp = keras.Input((12,), batch_size=4)
    x = layers.Dense(6, activation="relu6")(x)
    x = layers.Dense(3, use_bias=False)(x)
    x = clip1(x)
    return keras.Model(inp, x)


def m_fc_3d():
    # rank-3 input -> FULLY_CONNECTED with keep_num_dims=True
    x = inp = keras.Input((5, 8), batch_size=2)
    x = layers.Dense(6, activation="relu")(x)
    x = layers.Dense(3, use_bias=False)(x)
    return keras.Model(inp, x)


def m_pools():
    x = inp = keras.Input((13, 11, 3), batch_size=1)
    x = layers.AveragePooling2D((3, 2), strides=(2, 1), padding="same")(x)
    x = layers.MaxPooling2D((2, 3), strides=(1, 2), padding="valid")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    x = layers.AveragePooling2D(2, strides=1, padding="valid")(x)
    return keras.Model(inp, x)


def m_pools_fused():
    # The converter fuses a following relu/relu6/clip(-1,1) into the pools.
    # 1x1 convs in between re-centre the signal so every clamp is active.
    x = inp = keras.Input((13, 14, 3), batch_size=1)
    x = layers.Conv2D(4, 1)(x)
    x = layers.Rescaling(3.0)(x)               # folded into the conv weights
    x = keras.ops.relu6(layers.MaxPooling2D(2, padding="same")(x))        # 7x7
    x = layers.Conv2D(4, 1)(x)
    x = layers.Rescaling(0.3)(x)               # folded into the conv weights
    x = clip1(layers.AveragePooling2D((2, 3), strides=(1, 2),
                                      padding="valid")(x))               # 6x3
    x = layers.Conv2D(4, 1)(x)
    x = keras.ops.relu(layers.MaxPooling2D((3, 1), strides=1,
                                           padding="same")(x))           # 6x3
    return keras.Model(inp, x)


def m_add_relu():
    x = inp = keras.Input((6, 5, 4), batch_size=1)
    a = layers.Conv2D(4, 1)(x)
    b = layers.DepthwiseConv2D(3, padding="same")(x)
    x = keras.ops.relu(layers.Add()([a, b]))
    return keras.Model(inp, x)


def m_add_broadcast():
    x = inp = keras.Input((5, 6, 4), batch_size=1)
    a = layers.Conv2D(4, 3, padding="same")(x)
    g = keras.ops.mean(x, axis=(1, 2), keepdims=True)       # (1,1,1,4)
    g = layers.Conv2D(4, 1)(g)
    x = keras.ops.relu6(a + g)                                # broadcast add
    return keras.Model(inp, x)


def m_mul_relu():
    x = inp = keras.Input((6, 5, 4), batch_size=1)
    a = layers.Conv2D(3, 1)(x)
    b = layers.Conv2D(3, 3, padding="same")(x)
    x = keras.ops.relu(layers.Multiply()([a, b]))
    return keras.Model(inp, x)


def m_mul_broadcast():
    x = inp = keras.Input((6, 7, 4), batch_size=1)
    s = keras.ops.mean(x, axis=(1, 2), keepdims=True)       # (1,1,1,4)
    s = keras.ops.sigmoid(layers.Conv2D(4, 1)(s))
    x = clip1(x * s)                                          # broadcast mul
    return keras.Model(inp, x)


def m_softmax():
    x = inp = keras.Input((4, 4, 2), batch_size=1)
    x = layers.Reshape((32,))(x)
    x = layers.Dense(10)(x)
    x = layers.Softmax()(x)
    return keras.Model(inp, x)


def m_softmax_beta():
    # The converter always emits SOFTMAX with beta=1.0 (a preceding `x * c`
    # either stays a separate MUL or is folded into the FULLY_CONNECTED
    # weights).  This model is converted normally and then the SOFTMAX beta
    # field is patched in place to SOFTMAX_BETA (see patch_softmax_beta).
    x = inp = keras.Input((3, 8), batch_size=1)
    x = layers.Reshape((24,))(x)
    x = layers.Dense(12)(x)
    x = layers.Softmax()(x)
    return keras.Model(inp, x)


def m_concat_channel():
    x = inp = keras.Input((5, 6, 3), batch_size=1)
    a = layers.Conv2D(2, 3, padding="same", activation="relu")(x)
    b = layers.Conv2D(3, 1)(x)
    x = layers.Concatenate(axis=-1)([a, b, x])
    return keras.Model(inp, x)


def m_concat_height():
    x = inp = keras.Input((4, 6, 3), batch_size=1)
    a = layers.Conv2D(3, (2, 1), padding="valid")(x)                     # 3x6
    b = layers.Conv2D(3, (3, 1), padding="valid", activation="relu")(x)  # 2x6
    x = layers.Concatenate(axis=1)([x, a, b])                            # 9x6
    return keras.Model(inp, x)


def m_concat_requant():
    # LOGISTIC / TANH outputs have fixed int8 scales (1/256, 1/128); int8
    # CONCATENATION needs equal scales, so the converter inserts int8->int8
    # QUANTIZE (requantize) ops in front of the concat.
    x = inp = keras.Input((4, 5, 3), batch_size=1)
    a = keras.ops.sigmoid(layers.Conv2D(2, 1)(x))
    b = keras.ops.tanh(layers.Conv2D(2, 1)(x))
    x = layers.Concatenate(axis=-1)([a, b, x])
    return keras.Model(inp, x)


def m_pad():
    x = inp = keras.Input((5, 6, 3), batch_size=1)
    x = layers.ZeroPadding2D(((1, 2), (2, 1)))(x)                    # 8x9x3
    x = layers.Conv2D(4, 3, padding="valid")(x)                      # 6x7x4
    x = keras.ops.pad(x, [[0, 0], [2, 0], [0, 1], [1, 1]])                # 8x8x6
    x = layers.DepthwiseConv2D(3, strides=2, padding="valid")(x)     # 3x3x6
    return keras.Model(inp, x)


def m_gap_fc_logistic():
    x = inp = keras.Input((5, 7, 6), batch_size=1)
    x = layers.GlobalAveragePooling2D()(x)                          # keepdims=False
    x = layers.Dense(8)(x)
    x = keras.ops.tanh(x)
    x = layers.Dense(4)(x)
    x = keras.ops.sigmoid(x)
    return keras.Model(inp, x)


def m_quant_io():
    x = inp = keras.Input((6, 6, 2), batch_size=1)
    x = layers.Conv2D(4, 3, padding="same", activation="relu6")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Reshape((36,))(x)
    x = layers.Dense(5)(x)
    return keras.Model(inp, x)


def m_per_tensor():
    x = inp = keras.Input((7, 9, 3), batch_size=1)
    x = layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="valid")(x)
    x = layers.Reshape((5 * 7 * 8,))(x)
    x = layers.Dense(4)(x)
    return keras.Model(inp, x)


# (base name, builder, variants).  Variants:
#   "int8"        full-integer, int8 in/out, per-channel (converter default)
#   "f32"         plain float32
#   "int8_floatio" full-integer internals, float32 in/out
#   "int8_pertensor" full-integer, int8 in/out, per-tensor weights
SUFFIX = {"int8": "int8", "f32": "f32", "int8_floatio": "int8_floatio",
          "int8_pertensor": "int8"}

MODELS = [
    ("conv_same_s1", m_conv_same_s1, ["int8", "f32"]),
    ("conv_valid_s2_dil21", m_conv_valid_s2_dil, ["int8", "f32"]),
    ("conv_s2_same_dil2", m_conv_s2_same_dil2, ["int8", "f32"]),
    ("dw_m1_same_s2", m_dw_m1_same_s2, ["int8", "f32"]),
    ("dw_m2_valid_s2", m_dw_m2_valid_s2, ["int8", "f32"]),
    ("dw_m3_dil2", m_dw_m3_dil2, ["int8", "f32"]),
    ("fc", m_fc, ["int8", "f32"]),
    ("fc_batched", m_fc_batched, ["int8", "f32"]),
    ("fc_3d", m_fc_3d, ["int8", "f32"]),
    ("pools", m_pools, ["int8", "f32"]),
    ("pools_fused", m_pools_fused, ["int8", "f32"]),
    ("add_relu", m_add_relu, ["int8", "f32"]),
    ("add_broadcast", m_add_broadcast, ["int8", "f32"]),
    ("mul_relu", m_mul_relu, ["int8", "f32"]),
    ("mul_broadcast", m_mul_broadcast, ["int8", "f32"]),
    ("softmax", m_softmax, ["int8", "f32"]),
    ("softmax_beta", m_softmax_beta, ["int8", "f32"]),
    ("concat_channel", m_concat_channel, ["int8", "f32"]),
    ("concat_height", m_concat_height, ["int8", "f32"]),
    ("concat_requant", m_concat_requant, ["int8", "f32"]),
    ("pad", m_pad, ["int8", "f32"]),
    ("gap_fc_logistic", m_gap_fc_logistic, ["int8", "f32"]),
    ("quant_io", m_quant_io, ["int8_floatio"]),
    ("per_tensor", m_per_tensor, ["int8_pertensor"]),   # -> per_tensor_int8
]


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def model_seed(name):
    h = hashlib.sha256(name.encode()).digest()
    return BASE_SEED + int.from_bytes(h[:4], "little")


def build(name, builder):
    seed = model_seed(name)
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    tf.random.set_seed(seed)
    model = builder()
    # Explicit, seeded, non-trivial weights (independent of keras' RNG):
    # kernels ~ U(-sqrt(3/fan_in), +sqrt(3/fan_in)), biases ~ +-U(0.05, 0.4).
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for var in layer.weights:
            shape = tuple(var.shape)
            if var.path.endswith("bias"):
                mag = rng.uniform(0.05, 0.4, shape)
                sign = rng.choice([-1.0, 1.0], shape)
                val = mag * sign
            else:
                if isinstance(layer, layers.DepthwiseConv2D):
                    fan_in = shape[0] * shape[1]
                else:
                    fan_in = int(np.prod(shape[:-1]))
                lim = np.sqrt(3.0 / fan_in)
                val = rng.uniform(-lim, lim, shape)
            var.assign(val.astype(np.float32))
    return model, rng


def convert(model, variant, rng):
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if variant != "f32":
        in_shape = [int(d) for d in model.inputs[0].shape]
        calib = [rng.normal(0.0, CALIB_STD, in_shape).astype(np.float32)
                 for _ in range(N_CALIB)]

        def rep():
            for c in calib:
                yield [c]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if variant in ("int8", "int8_pertensor"):
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
        if variant == "int8_pertensor":
            conv._experimental_disable_per_channel = True
    return conv.convert()


def patch_softmax_beta(buf, beta):
    """Overwrite SoftmaxOptions.beta in place (keeps the converter's layout)."""
    buf = bytearray(buf)
    model = fb.Model.GetRootAsModel(buf, 0)
    sg = model.Subgraphs(0)
    n = 0
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        oc = model.OperatorCodes(op.OpcodeIndex())
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        if code != fb.BuiltinOperator.SOFTMAX:
            continue
        tab = op.BuiltinOptions()
        opts = fb.SoftmaxOptions()
        opts.Init(tab.Bytes, tab.Pos)
        off = opts._tab.Offset(4)
        assert off != 0, "beta field absent; cannot patch in place"
        buf[tab.Pos + off:tab.Pos + off + 4] = np.float32(beta).astype("<f4").tobytes()
        n += 1
    assert n == 1, n
    return bytes(buf)


def parse_model(buf):
    return fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(buf, 0))


def tensor_info(mt, sg, idx):
    t = sg.tensors[idx]
    d = {
        "dtype": TYPE_NAMES[t.type].lower(),
        "shape": [int(s) for s in t.shape] if t.shape is not None else [],
    }
    q = t.quantization
    if q is not None and q.scale is not None and len(q.scale) > 0:
        d["quant"] = {
            "scale": [float(s) for s in q.scale],
            "zero_point": [int(z) for z in q.zeroPoint],
            "quantized_dimension": int(q.quantizedDimension),
        }
    return d


def const_value(mt, sg, idx):
    t = sg.tensors[idx]
    b = mt.buffers[t.buffer]
    if b.data is None or len(b.data) == 0:
        return None
    dt = {fb.TensorType.INT32: np.int32, fb.TensorType.INT64: np.int64}.get(t.type)
    if dt is None:
        return None
    return np.frombuffer(bytes(bytearray(b.data)), dtype=dt).tolist()


def describe_ops(buf):
    mt = parse_model(buf)
    assert len(mt.subgraphs) == 1, "expected a single subgraph"
    sg = mt.subgraphs[0]
    out = []
    for op in sg.operators:
        oc = mt.operatorCodes[op.opcodeIndex]
        name = OP_NAMES[max(oc.builtinCode, oc.deprecatedBuiltinCode)]
        o = op.builtinOptions
        d = {"op": name}
        ins = [int(i) for i in op.inputs]
        outs = [int(i) for i in op.outputs]
        if o is not None and hasattr(o, "padding"):
            d["padding"] = PAD_NAMES[o.padding]
        if o is not None and hasattr(o, "strideH"):
            d["stride_hw"] = [o.strideH, o.strideW]
        if o is not None and hasattr(o, "dilationHFactor"):
            d["dilation_hw"] = [o.dilationHFactor, o.dilationWFactor]
        if o is not None and hasattr(o, "filterHeight"):
            d["filter_hw"] = [o.filterHeight, o.filterWidth]
        if o is not None and hasattr(o, "depthMultiplier"):
            d["depth_multiplier"] = o.depthMultiplier
        if o is not None and hasattr(o, "fusedActivationFunction"):
            d["fused_activation_function"] = ACT_NAMES[o.fusedActivationFunction]
        if name == "FULLY_CONNECTED":
            d["has_bias"] = len(ins) > 2 and ins[2] >= 0
            d["keep_num_dims"] = bool(o.keepNumDims)
        if name == "SOFTMAX":
            d["beta"] = float(o.beta)
        if name == "CONCATENATION":
            d["axis"] = o.axis
            d["num_inputs"] = len(ins)
        if name == "MEAN":
            d["axes"] = const_value(mt, sg, ins[1])
            d["keep_dims"] = bool(o.keepDims)
        if name == "PAD":
            pv = const_value(mt, sg, ins[1])
            d["paddings"] = [pv[i:i + 2] for i in range(0, len(pv), 2)]
        if name == "RESHAPE" and len(ins) > 1:
            d["new_shape"] = const_value(mt, sg, ins[1])
        if name in ("ADD", "MUL"):
            shapes = [tensor_info(mt, sg, i)["shape"] for i in ins]
            d["broadcast"] = shapes[0] != shapes[1]
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            w = tensor_info(mt, sg, ins[1])
            d["weights_shape"] = w["shape"]
            if "quant" in w:
                d["weights_quant"] = ("per_channel" if len(w["quant"]["scale"]) > 1
                                      else "per_tensor")
        if name in ("QUANTIZE", "DEQUANTIZE"):
            d["in_dtype"] = tensor_info(mt, sg, ins[0])["dtype"]
            d["out_dtype"] = tensor_info(mt, sg, outs[0])["dtype"]
        out.append(d)
    inputs = [tensor_info(mt, sg, int(i)) for i in sg.inputs]
    outputs = [tensor_info(mt, sg, int(i)) for i in sg.outputs]
    return out, inputs, outputs


def make_input(info, rng, variant):
    shape = info["shape"]
    if info["dtype"] == "int8":
        # Full int8 range.  Calibration data is N(0, CALIB_STD), so a uniform
        # full-range input drives downstream activations beyond their
        # calibrated ranges and exercises saturation.
        return rng.integers(-128, 128, size=shape, dtype=np.int8)
    if variant == "int8_floatio":
        # Beyond the calibrated input range: QUANTIZE saturates.
        return rng.uniform(-3.0, 3.0, size=shape).astype(np.float32)
    return None


def run_tflm(buf, x):
    it = tflm.Interpreter.from_bytes(buf, arena_size=TFLM_ARENA_BYTES)
    it.set_input(x, 0)
    it.invoke()
    return np.array(it.get_output(0), copy=True)


def run_litert(buf, x):
    it = LiteRTInterpreter(model_content=buf,
                           experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return np.array(it.get_tensor(it.get_output_details()[0]["index"]), copy=True)


def quant_kind(variant, ops):
    if variant == "f32":
        return "float32"
    wq = {o.get("weights_quant") for o in ops if "weights_quant" in o}
    wq.discard(None)
    kind = "+".join(sorted(wq)) if wq else "no_weights"
    io = "float_io" if variant == "int8_floatio" else "int8_io"
    return f"int8_{kind}_{io}"


def save_npy(path, arr):
    # np.save writes a deterministic header; no pickling.
    np.save(path, arr, allow_pickle=False)


# --------------------------------------------------------------------------

def generate(out_dir, only=None):
    os.makedirs(out_dir, exist_ok=True)
    manifest = {
        "generator": "conformance/make_fixtures.py",
        "golden_source": "tflite-micro Python interpreter (reference kernels)",
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
            "tflite_micro": _pkg_version("tflite-micro"),
            "ai_edge_litert": _pkg_version("ai-edge-litert"),
        },
        "conventions": {
            "files": "NAME.tflite, NAME.input.npy, NAME.output.npy "
                     "(+ NAME.output_litert.npy for float32 models)",
            "inputs_outputs": "every fixture has exactly one input and one output",
            "activation_enum": "fused_activation_function names are the tflite "
                               "ActivationFunctionType names",
        },
        "fixtures": [],
    }
    problems = []
    float_inputs = {}   # base name -> float input derived from the int8 input
    for base, builder, variants in MODELS:
        if only and base not in only:
            continue
        for variant in variants:
            name = f"{base}_{SUFFIX[variant]}"
            model, rng = build(name if variant != "f32" else base + "_int8", builder)
            # Note: int8 and f32 fixtures of the same base model share weights
            # (same seed), so their outputs are roughly comparable.
            buf = convert(model, variant, rng)
            if base == "softmax_beta":
                buf = patch_softmax_beta(buf, SOFTMAX_BETA)
            ops, ins, outs = describe_ops(buf)
            assert len(ins) == 1 and len(outs) == 1, name
            opset = sorted({o["op"] for o in ops})
            bad = set(opset) - ALLOWED_OPS
            if bad:
                problems.append(f"{name}: unsupported ops {sorted(bad)}")
            if len(buf) > MAX_TFLITE_BYTES:
                problems.append(f"{name}: {len(buf)} bytes > {MAX_TFLITE_BYTES}")

            in_rng = np.random.default_rng(model_seed(name + "/input"))
            x = make_input(ins[0], in_rng, variant)
            if x is None:
                # float32 model: use the dequantized input of the int8 twin so
                # the f32 and int8 fixtures see the same signal.
                x = float_inputs.get(base)
                if x is None:
                    x = in_rng.uniform(-1.5, 1.5, size=ins[0]["shape"]).astype(np.float32)
            elif variant == "int8":
                q = ins[0]["quant"]
                float_inputs[base] = ((x.astype(np.float32) - q["zero_point"][0])
                                      * np.float32(q["scale"][0])).astype(np.float32)
            assert list(x.shape) == ins[0]["shape"], (name, x.shape, ins[0]["shape"])

            y = run_tflm(buf, x)
            assert y.dtype == np.dtype(outs[0]["dtype"]), (name, y.dtype)
            assert list(y.shape) == outs[0]["shape"], (name, y.shape)

            entry = {
                "name": name,
                "model": f"{name}.tflite",
                "input": f"{name}.input.npy",
                "output": f"{name}.output.npy",
                "quantization": quant_kind(variant, ops),
                "inputs": [ins[0]],
                "outputs": [outs[0]],
                "op_set": opset,
                "ops": ops,
                "tflite_bytes": len(buf),
            }
            if base == "softmax_beta":
                entry["post_conversion_patch"] = (
                    f"SOFTMAX beta overwritten with {SOFTMAX_BETA} after "
                    "conversion (the converter only emits beta=1.0)")
            with open(os.path.join(out_dir, entry["model"]), "wb") as f:
                f.write(buf)
            save_npy(os.path.join(out_dir, entry["input"]), x)
            save_npy(os.path.join(out_dir, entry["output"]), y)

            # Cross-checks (informational).
            y_rt = run_litert(buf, x)
            if variant == "f32":
                entry["output_litert"] = f"{name}.output_litert.npy"
                save_npy(os.path.join(out_dir, entry["output_litert"]), y_rt)
                entry["litert_max_abs_diff"] = float(np.max(np.abs(
                    y_rt.astype(np.float64) - y.astype(np.float64))))
            else:
                diff = np.abs(y_rt.astype(np.int32) - y.astype(np.int32)) \
                    if y.dtype == np.int8 else np.abs(y_rt - y)
                entry["litert_ref_max_abs_diff"] = float(np.max(diff))
            if y.dtype == np.int8:
                entry["output_frac_at_qmin"] = round(float(np.mean(y == -128)), 4)
                entry["output_frac_at_qmax"] = round(float(np.mean(y == 127)), 4)
            manifest["fixtures"].append(entry)
            print_summary(entry)

    if only:
        print("--only given: MANIFEST.json not written")
        return problems
    with open(os.path.join(out_dir, "MANIFEST.json"), "w") as f:
        f.write(dump_json(manifest) + "\n")
    return problems


def dump_json(obj, indent=0):
    """json with lists of scalars / short flat dicts kept on one line."""
    pad, pad1 = " " * indent, " " * (indent + 2)

    def flat(o):
        if isinstance(o, list):
            return all(not isinstance(v, (list, dict)) or
                       (isinstance(v, list) and all(not isinstance(w, (list, dict)) for w in v))
                       for v in o)
        return False

    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{pad1}{json.dumps(k)}: {dump_json(v, indent + 2)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and not flat(obj):
        items = [pad1 + dump_json(v, indent + 2) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(obj)


def _pkg_version(dist):
    from importlib.metadata import version
    return version(dist)


def print_summary(e):
    ops = []
    for o in e["ops"]:
        s = o["op"]
        extra = []
        for k in ("padding", "stride_hw", "dilation_hw", "filter_hw",
                  "depth_multiplier", "fused_activation_function", "has_bias",
                  "keep_num_dims", "beta", "axis", "num_inputs", "axes",
                  "keep_dims", "broadcast", "weights_quant", "in_dtype",
                  "out_dtype"):
            if k in o and not (k == "fused_activation_function" and o[k] == "NONE"):
                extra.append(f"{k}={o[k]}")
        ops.append(s + ("(" + ",".join(extra) + ")" if extra else ""))
    io = (f"{e['inputs'][0]['dtype']}{e['inputs'][0]['shape']} -> "
          f"{e['outputs'][0]['dtype']}{e['outputs'][0]['shape']}")
    xc = e.get("litert_max_abs_diff", e.get("litert_ref_max_abs_diff"))
    print(f"{e['name']:28s} {e['tflite_bytes']:6d}B {e['quantization']:30s} {io}"
          f"  litert_diff={xc}"
          f"  at_qmin/qmax={e.get('output_frac_at_qmin', '-')}/"
          f"{e.get('output_frac_at_qmax', '-')}")
    for s in ops:
        print(f"    {s}")


def compare_dirs(a, b):
    fa, fb_ = sorted(os.listdir(a)), sorted(os.listdir(b))
    if fa != fb_:
        return [f"file lists differ: {set(fa) ^ set(fb_)}"]
    return [f for f in fa if not filecmp.cmp(os.path.join(a, f), os.path.join(b, f),
                                             shallow=False)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output directory")
    ap.add_argument("--only", nargs="*", help="only these base model names")
    ap.add_argument("--check", action="store_true",
                    help="regenerate into a temp dir and compare with --out")
    args = ap.parse_args()
    if args.check and args.only:
        ap.error("--check regenerates everything; do not combine with --only")

    if args.check:
        tmp = tempfile.mkdtemp(prefix="edgeflow_fixtures_")
        try:
            problems = generate(tmp, args.only)
            diffs = compare_dirs(args.out, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if diffs:
            print("MISMATCH:", diffs)
            return 1
        print("fixtures are byte-identical")
        return 1 if problems else 0

    problems = generate(args.out, args.only)
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(f"total fixture size: {total} bytes")
    if problems:
        print("PROBLEMS:")
        for p in problems:
            print("  " + p)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
