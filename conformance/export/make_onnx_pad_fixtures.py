#!/usr/bin/env python3
"""Inputs of the exporter's explicit-PAD fixtures (tests in
host-tools/edgeflow-cli/tests/onnx_export.rs), written under conformance/export/onnx/:

conv_pad_s2.onnx, conv_pad_s2.input.npy, conv_pad_s2.calib.npy
    A small image model with the padding PyTorch writes and TFLite's SAME cannot express:
    a 3x3 Conv, stride 2, pads 1 on every side, on a 12x11 input (SAME would pad 0 before
    the rows), then a depthwise 3x3 Conv (group = channels), stride 2, pads 1, on 6x6
    (SAME: 0 before), then a 1x1 Conv, Flatten and Gemm. Built with onnx.helper from
    seeded random weights (opset 13). The input (one recording) and the calibration set
    (64 recordings) are channels-last float32 `[N, 12, 11, 3]`, the layout edgeflow's
    importer gives the model's input.
mobilenet.input.npy
    Recording 0 of conformance/onnx/models/mobilenet.input.f32 (written by
    conformance/onnx/make_onnx_fixtures.py) in the same channels-last layout. (The test
    turns mobilenet.calib.f32, 64 recordings, to channels-last itself.)

The test compiles each model in f32 (`edgeflow convert`) and int8 (`edgeflow quantize
--calib CALIB --float-io`), exports it (`edgeflow export`) to NAME_f32.tflite /
NAME_int8.tflite here, and `conformance/export/run_tflm.py` runs those in TFLite Micro's
interpreter for the goldens NAME_{f32,int8}.output.npy. Also prints ONNX Runtime's output
on conv_pad_s2's input (float), for a look.

Pinned versions: conformance/export/requirements.txt (Python 3.11). From the root:
    /tmp/venv-tflm/bin/python conformance/export/make_onnx_pad_fixtures.py
"""

import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "onnx")
MODELS = os.path.join(os.path.dirname(HERE), "onnx", "models")


def init(rng, name, shape, scale=0.5):
    return numpy_helper.from_array(rng.normal(0.0, scale, shape).astype(np.float32), name)


def conv_pad_s2(rng):
    inits = [init(rng, "c0w", [6, 3, 3, 3]), init(rng, "c0b", [6], 0.1),
             init(rng, "d1w", [6, 1, 3, 3]), init(rng, "d1b", [6], 0.1),
             init(rng, "p1w", [4, 6, 1, 1]), init(rng, "p1b", [4], 0.1),
             init(rng, "fw", [5, 4 * 3 * 3], 0.3), init(rng, "fb", [5], 0.1),
             numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
             numpy_helper.from_array(np.array(6.0, np.float32), "six")]
    nodes = [
        helper.make_node("Conv", ["x", "c0w", "c0b"], ["c0"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c0"], ["a0"]),
        helper.make_node("Conv", ["a0", "d1w", "d1b"], ["d1"], group=6, strides=[2, 2],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Clip", ["d1", "zero", "six"], ["a1"]),
        helper.make_node("Conv", ["a1", "p1w", "p1b"], ["p1"]),
        helper.make_node("Flatten", ["p1"], ["f"]),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "conv_pad_s2",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 12, 11])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="edgeflow conformance/export")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def read_f32(path):
    b = open(path, "rb").read()
    rank = int(np.frombuffer(b, "<u4", 1)[0])
    dims = [int(d) for d in np.frombuffer(b, "<u4", rank, 4)]
    return np.frombuffer(b, "<f4", offset=4 * (1 + rank)).reshape(dims)


def channels_last(x):
    """[N, C, H, W] -> [N, H, W, C], little-endian float32."""
    return np.ascontiguousarray(np.moveaxis(x, 1, -1), dtype="<f4")


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(1111)
    model = conv_pad_s2(rng)
    onnx.save(model, os.path.join(OUT, "conv_pad_s2.onnx"))
    x = rng.normal(0.0, 1.0, [1, 3, 12, 11]).astype(np.float32)
    calib = rng.normal(0.0, 1.0, [64, 3, 12, 11]).astype(np.float32)
    np.save(os.path.join(OUT, "conv_pad_s2.input.npy"), channels_last(x))
    np.save(os.path.join(OUT, "conv_pad_s2.calib.npy"), channels_last(calib))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    print("conv_pad_s2: ONNX Runtime output", s.run(None, {"x": x})[0])

    # mobilenet: [N, 1, C, H, W] recordings in the .f32 files (one leading batch of 1).
    a = read_f32(os.path.join(MODELS, "mobilenet.input.f32"))
    a = a.reshape([-1] + list(a.shape[-3:]))[:1]
    np.save(os.path.join(OUT, "mobilenet.input.npy"), channels_last(a))
    print("wrote", sorted(os.listdir(OUT)))


if __name__ == "__main__":
    main()
