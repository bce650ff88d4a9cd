#!/usr/bin/env python3
"""ONNX conformance fixtures for edgeflow's ONNX importer (crates/edgeflow-compile, feature `onnx`).

Writes, under conformance/onnx/:

node/CASE/model.onnx, input_K.f32, output_K.f32
    The ONNX backend node tests that ship inside the `onnx` wheel
    (onnx.backend.test.case.node, expected outputs from ONNX's own reference code), for
    every op type edgeflow imports. Only the first data set of each case is written.
    edgeflow needs weights, shapes, axes, pads and clip bounds to be constants, and the
    node tests feed them as graph inputs; this script binds such inputs (every input
    after the first, except the operands of Add/Mul/Concat) to the test's own values as
    initializers. Cases whose data inputs are not float32 are not written; MANIFEST.json
    names each of them and why.

models/NAME.onnx, NAME.input.f32, NAME.output.f32, NAME.calib.f32
    Small real models (an MLP, a 1-D CNN, a MobileNet-style image model, and an NHWC
    graph whose transposes cancel against the layout conversion, a Conv followed
    by a Slice and a Transpose that moves data, and a nearest-neighbour upsampling
    between convolutions as PyTorch exports nn.Upsample, with LeakyRelu, HardSwish and
    ReduceMax) built with
    onnx.helper from seeded random weights, their outputs computed by ONNX Runtime
    (CPU execution provider, graph optimisations off); NAME.calib.npy is a calibration
    set (64 samples of the same distribution) for `edgeflow quantize`.

Arrays are written as `.f32`: little-endian u32 rank, rank u32 dimensions, then the
float32 values in row-major order (so the Rust test needs no .npy reader).

Pinned versions: conformance/onnx/requirements.txt. Run from the repository root:
    python3 -m venv /tmp/venv-onnx && /tmp/venv-onnx/bin/pip install -r conformance/onnx/requirements.txt
    /tmp/venv-onnx/bin/python conformance/onnx/make_onnx_fixtures.py
"""

import json
import os
import shutil

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.backend.test.case import node as node_cases
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
NODE = os.path.join(HERE, "node")
MODELS = os.path.join(HERE, "models")

OPS = [
    "Conv", "Gemm", "MatMul", "BatchNormalization", "Relu", "Clip", "Sigmoid", "Tanh",
    "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Add", "Mul", "Sub",
    "Div", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Pad",
    "ReduceMean", "Softmax", "Identity", "Dropout", "Slice",
    "LeakyRelu", "HardSwish", "Max", "Min", "ReduceMax", "Split", "Resize",
]
# Inputs that stay graph inputs (computed tensors); the others become initializers.
DATA_INPUTS = {"Add": "all", "Mul": "all", "Concat": "all", "Max": "all", "Min": "all"}


def save_f32(path, a):
    a = np.ascontiguousarray(np.asarray(a, dtype=np.float32))
    with open(path, "wb") as f:
        f.write(np.array([a.ndim] + list(a.shape), dtype="<u4").tobytes())
        f.write(a.astype("<f4").tobytes())


def export_node_tests():
    shutil.rmtree(NODE, ignore_errors=True)
    os.makedirs(NODE)
    manifest = {}
    cases = node_cases.collect_testcases()
    for case in sorted(cases, key=lambda c: c.name):
        model = case.model
        if model is None or not case.data_sets:
            continue
        ops = {n.op_type for n in model.graph.node}
        if not ops or not ops <= set(OPS):
            continue
        main_op = model.graph.node[0].op_type
        inputs, outputs = case.data_sets[0]
        graph_inputs = list(model.graph.input)
        keep = DATA_INPUTS.get(main_op)
        data_idx = list(range(len(graph_inputs))) if keep == "all" else [0]
        reason = None
        for i in data_idx:
            if i < len(inputs) and np.asarray(inputs[i]).dtype != np.float32:
                reason = f"data input {i} is {np.asarray(inputs[i]).dtype}, edgeflow imports float32 models"
        for o in outputs:
            if np.asarray(o).dtype != np.float32:
                reason = f"output is {np.asarray(o).dtype}, edgeflow imports float32 models"
        if reason:
            manifest[case.name] = {"exported": False, "reason": reason}
            continue
        m = onnx.ModelProto()
        m.CopyFrom(model)
        del m.graph.input[:]
        written = []
        for i, (vi, val) in enumerate(zip(graph_inputs, inputs)):
            if i in data_idx:
                m.graph.input.append(vi)
                written.append(np.asarray(val))
            else:
                m.graph.initializer.append(numpy_helper.from_array(np.asarray(val), vi.name))
        d = os.path.join(NODE, case.name)
        os.makedirs(d)
        onnx.save(m, os.path.join(d, "model.onnx"))
        for k, v in enumerate(written):
            save_f32(os.path.join(d, f"input_{k}.f32"), v)
        for k, v in enumerate(outputs):
            save_f32(os.path.join(d, f"output_{k}.f32"), v)
        manifest[case.name] = {"exported": True, "ops": sorted(ops), "inputs": len(written),
                               "outputs": len(outputs)}
    with open(os.path.join(NODE, "MANIFEST.json"), "w") as f:
        json.dump({"onnx": onnx.__version__, "cases": manifest}, f, indent=1, sort_keys=True)
    n = sum(1 for v in manifest.values() if v["exported"])
    print(f"node tests: {n} exported, {len(manifest) - n} not exported (non-float)")


def init(rng, name, shape, scale=None):
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
    s = scale if scale is not None else 1.0 / np.sqrt(max(fan_in, 1))
    return numpy_helper.from_array(rng.normal(0.0, s, shape).astype(np.float32), name)


def bn(rng, prefix, c):
    return [
        numpy_helper.from_array(rng.uniform(0.5, 1.5, c).astype(np.float32), prefix + "_s"),
        numpy_helper.from_array(rng.normal(0, 0.1, c).astype(np.float32), prefix + "_b"),
        numpy_helper.from_array(rng.normal(0, 0.1, c).astype(np.float32), prefix + "_m"),
        numpy_helper.from_array(rng.uniform(0.5, 1.5, c).astype(np.float32), prefix + "_v"),
    ]


def mlp(rng):
    inits = [init(rng, "w1", [32, 20]), init(rng, "b1", [32], 0.1),
             init(rng, "w2", [16, 32]), init(rng, "b2", [16], 0.1),
             init(rng, "w3", [4, 16]), init(rng, "b3", [4], 0.1)]
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h1"], transB=1),
        helper.make_node("Relu", ["h1"], ["a1"]),
        helper.make_node("Gemm", ["a1", "w2", "b2"], ["h2"], transB=1),
        helper.make_node("Tanh", ["h2"], ["a2"]),
        helper.make_node("Gemm", ["a2", "w3", "b3"], ["h3"], transB=1),
        helper.make_node("Softmax", ["h3"], ["y"], axis=1),
    ]
    return nodes, inits, [1, 20]


def cnn1d(rng):
    # [N, C=3, L=64] sensor window -> 5 classes.
    inits = [init(rng, "c1w", [8, 3, 5]), init(rng, "c1b", [8], 0.1)] + bn(rng, "bn1", 8) + [
        init(rng, "c2w", [16, 8, 3]), init(rng, "c2b", [16], 0.1),
        init(rng, "fw", [5, 16 * 16]), init(rng, "fb", [5], 0.1)]
    nodes = [
        helper.make_node("Conv", ["x", "c1w", "c1b"], ["c1"], pads=[2, 2]),
        helper.make_node("BatchNormalization", ["c1", "bn1_s", "bn1_b", "bn1_m", "bn1_v"], ["n1"]),
        helper.make_node("Relu", ["n1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2], strides=[2]),
        helper.make_node("Conv", ["p1", "c2w", "c2b"], ["c2"], pads=[1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("MaxPool", ["r2"], ["p2"], kernel_shape=[2], strides=[2]),
        helper.make_node("Flatten", ["p2"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1),
    ]
    return nodes, inits, [1, 3, 64]


def mobilenet(rng):
    # MobileNet-style: conv stride 2, depthwise-separable blocks (Clip 0..6), a residual
    # Add, global average pooling, classifier.
    inits = [init(rng, "c0w", [8, 3, 3, 3]), init(rng, "c0b", [8], 0.1)] + bn(rng, "bn0", 8)
    inits += [init(rng, "d1w", [8, 1, 3, 3], 0.3), init(rng, "d1b", [8], 0.1)] + bn(rng, "bn1", 8)
    inits += [init(rng, "p1w", [16, 8, 1, 1]), init(rng, "p1b", [16], 0.1)]
    inits += [init(rng, "d2w", [16, 1, 3, 3], 0.3), init(rng, "d2b", [16], 0.1)]
    inits += [init(rng, "p2w", [16, 16, 1, 1]), init(rng, "p2b", [16], 0.1)]
    inits += [init(rng, "fw", [10, 16]), init(rng, "fb", [10], 0.1)]
    inits += [numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
              numpy_helper.from_array(np.array(6.0, np.float32), "six")]
    nodes = [
        helper.make_node("Conv", ["x", "c0w", "c0b"], ["c0"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c0", "bn0_s", "bn0_b", "bn0_m", "bn0_v"], ["n0"]),
        helper.make_node("Clip", ["n0", "zero", "six"], ["a0"]),
        helper.make_node("Conv", ["a0", "d1w", "d1b"], ["d1"], group=8, pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["d1", "bn1_s", "bn1_b", "bn1_m", "bn1_v"], ["n1"]),
        helper.make_node("Clip", ["n1", "zero", "six"], ["a1"]),
        helper.make_node("Conv", ["a1", "p1w", "p1b"], ["p1"]),
        helper.make_node("Clip", ["p1", "zero", "six"], ["a2"]),
        helper.make_node("Conv", ["a2", "d2w", "d2b"], ["d2"], group=16, pads=[1, 1, 1, 1]),
        helper.make_node("Clip", ["d2", "zero", "six"], ["a3"]),
        helper.make_node("Conv", ["a3", "p2w", "p2b"], ["p2"]),
        helper.make_node("Add", ["p2", "a2"], ["res"]),
        helper.make_node("GlobalAveragePool", ["res"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["f"]),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["y"], axis=1),
    ]
    return nodes, inits, [1, 3, 32, 32]


def nhwc_conv(rng):
    # A TensorFlow-style graph: NHWC input, Transpose to NCHW, Conv, Transpose back to
    # NHWC, Reshape to [N, H*W*C] (channels-last order), Gemm. The two transposes cancel
    # against edgeflow's layout conversion and must cost nothing on the device.
    inits = [init(rng, "cw", [6, 3, 3, 3]), init(rng, "cb", [6], 0.1),
             init(rng, "fw", [4, 6 * 6 * 6]), init(rng, "fb", [4], 0.1),
             numpy_helper.from_array(np.array([1, -1], np.int64), "flat")]
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["xt", "cw", "cb"], ["c"]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Transpose", ["r"], ["rt"], perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["rt", "flat"], ["f"]),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1),
    ]
    return nodes, inits, [1, 8, 8, 3]


def slice_transpose(rng):
    # A Slice of a channels-last activation (channels 1:5, every second row, columns 1:-1)
    # and a Transpose that moves data (H and W swapped): a STRIDED_SLICE and a TRANSPOSE
    # on the device.
    inits = [init(rng, "cw", [6, 3, 3, 3]), init(rng, "cb", [6], 0.1),
             init(rng, "fw", [5, 4 * 6 * 4]), init(rng, "fb", [5], 0.1),
             numpy_helper.from_array(np.array([1, 0, 1], np.int64), "starts"),
             numpy_helper.from_array(np.array([5, 8, -1], np.int64), "ends"),
             numpy_helper.from_array(np.array([1, 2, 3], np.int64), "axes"),
             numpy_helper.from_array(np.array([1, 2, 1], np.int64), "steps")]
    nodes = [
        helper.make_node("Conv", ["x", "cw", "cb"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Slice", ["r", "starts", "ends", "axes", "steps"], ["s"]),
        helper.make_node("Transpose", ["s"], ["t"], perm=[0, 1, 3, 2]),
        helper.make_node("Flatten", ["t"], ["f"]),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1),
    ]
    return nodes, inits, [1, 3, 8, 8]


def upsample(rng):
    # Nearest-neighbour upsampling as torch.nn.Upsample(scale_factor=2, mode="nearest")
    # exports it (Resize: roi empty, scales [1, 1, 2, 2], asymmetric
    # coordinates, floor), between two convolutions, with LeakyReLU and HardSwish
    # activations and a ReduceMax over the spatial dimensions before the classifier.
    inits = [init(rng, "c1w", [4, 3, 3, 3]), init(rng, "c1b", [4], 0.1),
             init(rng, "c2w", [6, 4, 3, 3]), init(rng, "c2b", [6], 0.1),
             init(rng, "fw", [3, 6]), init(rng, "fb", [3], 0.1),
             numpy_helper.from_array(np.array([1.0, 1.0, 2.0, 2.0], np.float32), "scales")]
    nodes = [
        helper.make_node("Conv", ["x", "c1w", "c1b"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("LeakyRelu", ["c1"], ["a1"], alpha=0.1),
        helper.make_node("Resize", ["a1", "", "scales"], ["u"], mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        helper.make_node("Conv", ["u", "c2w", "c2b"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("HardSwish", ["c2"], ["a2"]),
        helper.make_node("ReduceMax", ["a2"], ["m"], axes=[2, 3], keepdims=0),
        helper.make_node("Gemm", ["m", "fw", "fb"], ["y"], transB=1),
    ]
    return nodes, inits, [1, 3, 6, 5]


def export_models():
    shutil.rmtree(MODELS, ignore_errors=True)
    os.makedirs(MODELS)
    for name, build in [("mlp", mlp), ("cnn1d", cnn1d), ("mobilenet", mobilenet),
                        ("nhwc_conv", nhwc_conv), ("slice_transpose", slice_transpose),
                        ("upsample", upsample)]:
        rng = np.random.default_rng(sum(map(ord, name)))
        nodes, inits, in_shape = build(rng)
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)
        y = helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)
        g = helper.make_graph(nodes, name, [x], [y], initializer=inits)
        # HardSwish (in upsample) came with opset 14; the other models stay at 13.
        opset = 14 if name == "upsample" else 13
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="edgeflow-conformance")
        m.ir_version = 8
        m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
        onnx.checker.check_model(m, full_check=True)
        path = os.path.join(MODELS, f"{name}.onnx")
        onnx.save(m, path)
        xs = rng.normal(0.0, 1.0, [8] + in_shape).astype(np.float32)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        ys = np.stack([sess.run(None, {"x": xs[i]})[0] for i in range(len(xs))])
        calib = rng.normal(0.0, 1.0, [64] + in_shape).astype(np.float32)
        save_f32(os.path.join(MODELS, f"{name}.calib.f32"), calib)
        save_f32(os.path.join(MODELS, f"{name}.input.f32"), xs)
        save_f32(os.path.join(MODELS, f"{name}.output.f32"), ys)
        print(f"model {name}: input {xs.shape}, output {ys.shape}")


if __name__ == "__main__":
    export_node_tests()
    export_models()
