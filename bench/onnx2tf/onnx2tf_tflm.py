#!/usr/bin/env python3
"""The usual ONNX -> TFLite route for the ONNX conformance models, run in TFLite Micro on the
emulated Cortex-M4F beside edgeflow (BENCHMARKS.md, "ONNX models against TFLM"). Not run in CI.

For each model of conformance/onnx/models (written by conformance/onnx/make_onnx_fixtures.py):

1. onnx2tf (ONNX -> TensorFlow -> the TFLite converter; Python API `onnx2tf.convert`) with
   int8 quantization (`output_integer_quantized_tflite`, per-channel weights), calibrated
   with the same 64 recordings `edgeflow quantize` uses (MODEL.calib.f32, in TensorFlow's
   channels-last layout, mean 0, std 1: no normalization). The file run is onnx2tf's
   `*_integer_quant.tflite`: int8 inside, float32 input and output (QUANTIZE/DEQUANTIZE at
   the ends), like edgeflow's `--float-io` artifacts. onnx2tf is given a copy of the model
   (it rewrites its input file) and, for image-shaped inputs, the calibration recordings in
   place of the MS-COCO images it would download for its own check inference.
2. That file on bench/tflm_qemu/run.sh (TFLM on QEMU mps2-an386), with KERNELS=reference and
   KERNELS=cmsis_nn, on recording REC of MODEL.input.f32: instructions per inference and the
   float32 output.
3. The output against ONNX Runtime's float output (MODEL.output.f32, recording REC): largest
   absolute difference, that over the output's spread, and whether the arg-max agrees; the
   same for edgeflow's int8 output when EDGEFLOW_OUT_DIR holds bench/tflm_qemu/onnx_models.sh's
   kept files (KEEP=DIR: DIR/MODEL.edgeflow_out, raw float32).

Where the route fails (onnx2tf raises or exits, or TFLM cannot run the file), the tool, its
version and the message are printed and the model is reported as not converted.

Pinned versions: bench/onnx2tf/requirements.txt (Python 3.11; onnx2tf 1.29.24 pins its own
TensorFlow 2.19.0, onnx 1.19.1, onnxruntime 1.23.0). From the repository root:

    python3 -m venv /tmp/o2t && /tmp/o2t/bin/pip install -r bench/onnx2tf/requirements.txt
    /tmp/o2t/bin/python bench/onnx2tf/onnx2tf_tflm.py /work/tflm-build/out [MODEL ...]

env: REC (recording, default 0), KEEP (directory for the converted files; default a temporary
one), EDGEFLOW_OUT_DIR (see 3).
"""

import os
import subprocess
import sys
import tempfile
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODELS = os.path.join(ROOT, "conformance", "onnx", "models")
RUN = os.path.join(ROOT, "bench", "tflm_qemu", "run.sh")
DEFAULT = ["mlp", "cnn1d", "slice_transpose", "upsample", "mobilenet"]


def read_f32(path):
    b = open(path, "rb").read()
    rank = int(np.frombuffer(b, "<u4", 1)[0])
    dims = [int(d) for d in np.frombuffer(b, "<u4", rank, 4)]
    return np.frombuffer(b, "<f4", offset=4 * (1 + rank)).reshape(dims)


def tf_layout(x):
    """[N, 1, C, spatial...] recordings (ONNX layout, batch 1 each) -> [N, spatial..., C], the
    layout onnx2tf gives the model's input; [N, 1, F] -> [N, F]."""
    x = x.reshape((x.shape[0],) + x.shape[2:])
    if x.ndim > 2:
        x = np.moveaxis(x, 1, -1)
    return np.ascontiguousarray(x, dtype="<f4")


def agreement(y, ref):
    spread = float(ref.max() - ref.min())
    d = float(np.abs(y - ref).max())
    return f"max |diff| {d:.4g} ({d / spread:.3%} of spread), argmax {'same' if y.argmax() == ref.argmax() else 'DIFFERS'}"


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    tflm_out = sys.argv[1]
    models = sys.argv[2:] or DEFAULT
    rec = int(os.environ.get("REC", "0"))
    work = os.environ.get("KEEP") or tempfile.mkdtemp()
    os.makedirs(work, exist_ok=True)
    edgeflow_dir = os.environ.get("EDGEFLOW_OUT_DIR")
    import onnx2tf
    import tensorflow as tf
    versions = f"onnx2tf {onnx2tf.__version__}, tensorflow {tf.__version__}"
    print(versions)
    rows = []
    for m in models:
        # A copy: onnx2tf rewrites the file it is given (it names unnamed nodes in place).
        onnx_path = os.path.join(work, f"{m}.onnx")
        with open(os.path.join(MODELS, f"{m}.onnx"), "rb") as f, open(onnx_path, "wb") as g:
            g.write(f.read())
        calib = tf_layout(read_f32(os.path.join(MODELS, f"{m}.calib.f32")))
        x = tf_layout(read_f32(os.path.join(MODELS, f"{m}.input.f32")))[rec:rec + 1]
        ref = read_f32(os.path.join(MODELS, f"{m}.output.f32"))
        ref = ref.reshape(ref.shape[0], -1)[rec]
        out_dir = os.path.join(work, m)
        calib_path = os.path.join(work, f"{m}.calib.npy")
        np.save(calib_path, calib)
        input_path = os.path.join(work, f"{m}.input.raw")
        open(input_path, "wb").write(x.tobytes())
        row = {"model": m}
        # For a model whose inputs are all 4-D with 3 channels, onnx2tf downloads 20 MS-COCO
        # images from GitHub for its own ONNX-vs-TF check inference (not for calibration,
        # which uses the data given). This machine has no internet: the check gets the first
        # calibration recordings instead.
        import onnx2tf.onnx2tf as o2t_main
        o2t_main.download_test_image_data = lambda c=calib: c[:20].copy()
        try:
            onnx2tf.convert(
                input_onnx_file_path=onnx_path,
                output_folder_path=out_dir,
                output_integer_quantized_tflite=True,
                quant_type="per-channel",
                custom_input_op_name_np_data_path=[
                    ["x", calib_path, np.zeros([1], np.float32), np.ones([1], np.float32)]
                ],
                non_verbose=True,
            )
            tfl = os.path.join(out_dir, f"{m}_integer_quant.tflite")
            if not os.path.exists(tfl):
                raise RuntimeError(f"no {os.path.basename(tfl)} written (files: {sorted(os.listdir(out_dir))})")
        except BaseException as e:  # noqa: BLE001 (onnx2tf calls sys.exit on errors)
            msg = "".join(traceback.format_exception_only(type(e), e)).strip()
            row["failure"] = f"{versions}: conversion failed: {msg}"
            print(f"== {m}: {row['failure']}")
            rows.append(row)
            continue
        for kernels in ["reference", "cmsis_nn"]:
            env = dict(os.environ, KERNELS=kernels)
            p = subprocess.run(["sh", RUN, tflm_out, tfl, input_path], env=env,
                               capture_output=True, text=True)
            print(f"== {m} ({kernels})\n{p.stdout}{p.stderr}")
            if p.returncode != 0:
                row[kernels] = None
                row["failure"] = f"TFLM ({kernels}) could not run the converted file: {(p.stderr or p.stdout).strip()[-400:]}"
                continue
            instr = [l.split("instr=")[1] for l in p.stdout.splitlines() if l.startswith("tflm invoke 1 ")]
            ops = [l.split("ops=")[1].split()[0] for l in p.stdout.splitlines() if "ops=" in l]
            hexes = [l.split("=", 1)[1] for l in p.stdout.splitlines() if l.startswith("output0_hex=")]
            row[kernels] = int(instr[0]) if instr else None
            row["ops"] = ops[0] if ops else "?"
            y = np.frombuffer(bytes.fromhex(hexes[0]), "<f4") if hexes else None
            if y is not None and y.size == ref.size:
                row[f"{kernels}_vs_ort"] = agreement(y, ref)
                row[f"{kernels}_out"] = y
        if edgeflow_dir:
            ef = os.path.join(edgeflow_dir, f"{m}.edgeflow_out")
            if os.path.exists(ef):
                y = np.frombuffer(open(ef, "rb").read(), "<f4")
                row["edgeflow_vs_ort"] = agreement(y, ref)
        rows.append(row)
    print()
    print("| model | onnx2tf file's ops | TFLM reference | TFLM CMSIS-NN | onnx2tf int8 in TFLM vs ONNX Runtime (f32) | edgeflow int8 vs ONNX Runtime |")
    print("|---|---|--:|--:|---|---|")
    for r in rows:
        if "failure" in r and r.get("reference") is None:
            print(f"| {r['model']} | – | – | – | {r['failure']} | {r.get('edgeflow_vs_ort', '–')} |")
            continue
        same = ""
        if "reference_out" in r and "cmsis_nn_out" in r:
            same = " (CMSIS-NN output " + ("bit-identical" if r["reference_out"].tobytes() == r["cmsis_nn_out"].tobytes() else "differs") + ")"
        print(f"| {r['model']} | {r.get('ops', '?')} | {r.get('reference')} | {r.get('cmsis_nn')} | "
              f"{r.get('reference_vs_ort', '?')}{same} | {r.get('edgeflow_vs_ort', '–')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
