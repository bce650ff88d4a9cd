"""Host latency of the peers on the MLPerf Tiny models, for `cargo xtask bench`.

Runs each model's fixed input through
  * tflite-micro's Python interpreter (TFLM reference kernels, the package's build), and
  * ai-edge-litert's Interpreter at its best: default optimized kernels with XNNPACK,
    measured with 1 thread and with 2 threads (this machine has 2 cores),
and prints the median microseconds per `invoke()` as a Markdown table. Each is timed by
repeating invoke() on an already-set input for about one second, as edgeflow is.

Usage: python bench/host_latency.py DIR   (DIR holds kws.tflite, kws_input.npy, ...)
Pinned versions: bench/requirements.txt.
"""
import sys
import time
from pathlib import Path

import numpy as np


def median_us(fn, budget_s=1.0, max_runs=10000):
    samples = []
    start = time.perf_counter()
    while len(samples) < 5 or (time.perf_counter() - start < budget_s and len(samples) < max_runs):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e6)
    samples.sort()
    return samples[len(samples) // 2]


def tflm(model: bytes, x: np.ndarray):
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model)
    interp.set_input(x, 0)
    us = median_us(interp.invoke)
    return us, interp.get_output(0)


def litert(model: bytes, x: np.ndarray, threads: int):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model, num_threads=threads)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    out = interp.get_output_details()[0]["index"]
    interp.set_tensor(inp, x)
    us = median_us(interp.invoke)
    return us, interp.get_tensor(out)


def main():
    d = Path(sys.argv[1])
    print()
    print("| model | tflite-micro (Python, reference kernels) µs | ai-edge-litert 1 thread µs | ai-edge-litert 2 threads µs |")
    print("|---|---:|---:|---:|")
    for m in ["kws", "ic", "ad", "vww"]:
        model = (d / f"{m}.tflite").read_bytes()
        x = np.load(d / f"{m}_input.npy")
        t_us, _ = tflm(model, x)
        l1, _ = litert(model, x, 1)
        l2, _ = litert(model, x, 2)
        print(f"| {m} | {t_us:.1f} | {l1:.1f} | {l2:.1f} |")


if __name__ == "__main__":
    main()
