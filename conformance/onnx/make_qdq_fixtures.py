#!/usr/bin/env python3
"""QDQ-quantized ONNX fixtures for edgeflow's ONNX importer (feature `onnx`).

Writes, under conformance/onnx/qdq/:

NAME.float.onnx   the float model (onnx.helper, seeded random weights)
NAME.qdq.onnx     the same model quantized by ONNX Runtime's static quantizer
                  (onnxruntime.quantization.quantize_static, QuantFormat.QDQ, int8
                  activations and weights, per-channel weights, min/max calibration on
                  NAME.calib.f32) -- the QuantizeLinear/DequantizeLinear form edgeflow maps
                  onto its int8 kernels
NAME.input.f32    test inputs (ONNX layout)
NAME.output.f32   ONNX Runtime's outputs of NAME.qdq.onnx on them, graph optimisations
                  off (DequantizeLinear -> float op -> QuantizeLinear, as the graph says)
NAME.output_opt.f32  the same with ORT's default optimisations (ORT fuses the groups into
                  QLinearConv / QGemm ... with its own int8 requantization)

(NAME: cnn1d, mlp, and mlp_maxmin: a three-input Max and a Min, quantized with Max/Min
named in op_types_to_quantize, so that their inputs and outputs have different
parameters) and the rejected variants (each must be refused by the importer with a message naming
the node): cnn1d_u8.qdq.onnx (uint8 activations, ORT's default), mlp_softmax.qdq.onnx
(a Softmax whose int8 output parameters are not TFLite's fixed 1/256, -128).

Arrays are `.f32`: little-endian u32 rank, the dims as u32, then float32 values.

Pinned versions: conformance/onnx/requirements.txt. From the repository root:
    python3 -m venv /tmp/venv-onnx && /tmp/venv-onnx/bin/pip install -r conformance/onnx/requirements.txt
    /tmp/venv-onnx/bin/python conformance/onnx/make_qdq_fixtures.py
"""

import os
import shutil

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
import onnxruntime as ort
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                      QuantType, quantize_static)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "qdq")


def save_f32(path, a):
    a = np.ascontiguousarray(np.asarray(a, dtype=np.float32))
    with open(path, "wb") as f:
        f.write(np.array([a.ndim] + list(a.shape), dtype="<u4").tobytes())
        f.write(a.astype("<f4").tobytes())


def init(rng, name, shape, scale=None):
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
    s = scale if scale is not None else 1.0 / np.sqrt(max(fan_in, 1))
    return numpy_helper.from_array(rng.normal(0.0, s, shape).astype(np.float32), name)


def cnn1d(rng):
    # [N, C=3, L=64] -> 5 classes: Conv1d + ReLU + MaxPool twice, a residual-free
    # Flatten, Gemm (BatchNorm already folded, as onnxruntime's quant_pre_process does).
    inits = [init(rng, "c1w", [8, 3, 5]), init(rng, "c1b", [8], 0.1),
             init(rng, "c2w", [16, 8, 3]), init(rng, "c2b", [16], 0.1),
             init(rng, "fw", [5, 16 * 16]), init(rng, "fb", [5], 0.1)]
    nodes = [
        helper.make_node("Conv", ["x", "c1w", "c1b"], ["c1"], pads=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2], strides=[2]),
        helper.make_node("Conv", ["p1", "c2w", "c2b"], ["c2"], pads=[1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("MaxPool", ["r2"], ["p2"], kernel_shape=[2], strides=[2]),
        helper.make_node("Flatten", ["p2"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1),
    ]
    return nodes, inits, [1, 3, 64]


def mlp(rng, softmax=False):
    # Two Gemm layers with a residual Add, the second Gemm written as MatMul + Add.
    inits = [init(rng, "w1", [16, 20]), init(rng, "b1", [16], 0.1),
             init(rng, "w2", [16, 16]), init(rng, "w3", [4, 16]), init(rng, "b3", [4], 0.1)]
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h1"], transB=1),
        helper.make_node("Relu", ["h1"], ["a1"]),
        helper.make_node("MatMul", ["a1", "w2"], ["h2"]),
        helper.make_node("Add", ["h2", "a1"], ["res"]),
        helper.make_node("Gemm", ["res", "w3", "b3"], ["y" if not softmax else "logits"], transB=1),
    ]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["y"], axis=1))
    return nodes, inits, [1, 20]


def mlp_maxmin(rng):
    # Max of three inputs (two Gemm outputs and a constant) and Min with a constant, then
    # a Gemm: ONNX Runtime quantizes each Max/Min input and output on its own range;
    # TFLite's int8 MAXIMUM/MINIMUM need one scale, so edgeflow requantizes the inputs to
    # the output's parameters (and chains the three-input Max as two MAXIMUM ops).
    inits = [init(rng, "w1", [16, 12]), init(rng, "b1", [16], 0.1),
             init(rng, "w2", [16, 12]), init(rng, "b2", [16], 0.1),
             init(rng, "floor", [16], 0.3), init(rng, "ceil", [16], 0.5),
             init(rng, "w3", [4, 16]), init(rng, "b3", [4], 0.1)]
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h1"], transB=1),
        helper.make_node("Gemm", ["x", "w2", "b2"], ["h2"], transB=1),
        helper.make_node("Max", ["h1", "h2", "floor"], ["m"]),
        helper.make_node("Min", ["m", "ceil"], ["n"]),
        helper.make_node("Gemm", ["n", "w3", "b3"], ["y"], transB=1),
    ]
    return nodes, inits, [1, 12]


class Reader(CalibrationDataReader):
    def __init__(self, xs):
        self.it = iter([{"x": x} for x in xs])

    def get_next(self):
        return next(self.it, None)


def build(name, nodes, inits, in_shape):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)
    y = helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)
    g = helper.make_graph(nodes, name, [x], [y], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)],
                          producer_name="edgeflow-conformance")
    m.ir_version = 8
    m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
    onnx.checker.check_model(m, full_check=True)
    return m


def run(path, xs, optimise):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimise
                                     else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    return np.stack([sess.run(None, {"x": xs[i]})[0] for i in range(len(xs))])


def quantize(float_path, qdq_path, calib, activation_type=QuantType.QInt8, op_types=None):
    quantize_static(float_path, qdq_path, Reader(calib), quant_format=QuantFormat.QDQ,
                    activation_type=activation_type, weight_type=QuantType.QInt8,
                    per_channel=True, calibrate_method=CalibrationMethod.MinMax,
                    op_types_to_quantize=op_types)


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    # (ONNX Runtime's quantizer leaves Max/Min in float unless they are named.)
    for name, (nodes, inits, in_shape), op_types in [
            ("cnn1d", cnn1d(np.random.default_rng(11)), None),
            ("mlp", mlp(np.random.default_rng(12)), None),
            ("mlp_maxmin", mlp_maxmin(np.random.default_rng(14)), ["Gemm", "Max", "Min"])]:
        rng = np.random.default_rng(sum(map(ord, name)))
        m = build(name, nodes, inits, in_shape)
        fp = os.path.join(OUT, f"{name}.float.onnx")
        onnx.save(m, fp)
        calib = rng.normal(0.0, 1.0, [64] + in_shape).astype(np.float32)
        xs = rng.normal(0.0, 1.0, [16] + in_shape).astype(np.float32)
        qp = os.path.join(OUT, f"{name}.qdq.onnx")
        quantize(fp, qp, calib, op_types=op_types)
        save_f32(os.path.join(OUT, f"{name}.calib.f32"), calib)
        save_f32(os.path.join(OUT, f"{name}.input.f32"), xs)
        save_f32(os.path.join(OUT, f"{name}.output.f32"), run(qp, xs, False))
        save_f32(os.path.join(OUT, f"{name}.output_opt.f32"), run(qp, xs, True))
        ops = sorted({n.op_type for n in onnx.load(qp).graph.node})
        print(f"{name}: {qp} ops {ops}")
        os.remove(fp)
    # Rejected variants.
    rng = np.random.default_rng(13)
    nodes, inits, in_shape = cnn1d(np.random.default_rng(11))
    m = build("cnn1d_u8", nodes, inits, in_shape)
    fp = os.path.join(OUT, "tmp.float.onnx")
    onnx.save(m, fp)
    quantize(fp, os.path.join(OUT, "cnn1d_u8.qdq.onnx"),
             rng.normal(0.0, 1.0, [8] + in_shape).astype(np.float32), QuantType.QUInt8)
    nodes, inits, in_shape = mlp(np.random.default_rng(12), softmax=True)
    onnx.save(build("mlp_softmax", nodes, inits, in_shape), fp)
    quantize(fp, os.path.join(OUT, "mlp_softmax.qdq.onnx"),
             rng.normal(0.0, 1.0, [8] + in_shape).astype(np.float32))
    os.remove(fp)


if __name__ == "__main__":
    main()
