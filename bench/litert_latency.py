"""LiteRT latency of one model, for `cargo xtask bench-host`.

Usage: python bench/litert_latency.py MODEL.tflite INPUT.npy THREADS SECONDS

Times `invoke()` on an already-set input (median over about SECONDS after a warm-up, as
the edgeflow side is timed) with ai-edge-litert's Interpreter twice:
  * default op resolver (`OpResolverType.AUTO`): LiteRT's optimized kernels with the
    XNNPACK delegate applied by default (the peer at its best), THREADS threads;
  * `BUILTIN_WITHOUT_DEFAULT_DELEGATES`: the same interpreter without XNNPACK.
Prints one line `xnnpack_us=… builtin_us=… litert=VERSION numpy=VERSION`. LiteRT itself
writes "Created TensorFlow Lite XNNPACK delegate for CPU." to stderr when XNNPACK is used.
Pinned versions: bench/requirements.txt.
"""
import sys
import time
from importlib.metadata import version

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType


def median_us(fn, budget_s):
    for _ in range(3):
        fn()
    samples = []
    start = time.perf_counter()
    while len(samples) < 5 or (time.perf_counter() - start < budget_s and len(samples) < 100000):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e6)
    samples.sort()
    return samples[len(samples) // 2]


def timed(model, x, threads, resolver, budget_s):
    interp = Interpreter(model_content=model, num_threads=threads, experimental_op_resolver_type=resolver)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    return median_us(interp.invoke, budget_s)


def main():
    model = open(sys.argv[1], "rb").read()
    x = np.load(sys.argv[2])
    threads = int(sys.argv[3])
    budget = float(sys.argv[4])
    xnn = timed(model, x, threads, OpResolverType.AUTO, budget)
    builtin = timed(model, x, threads, OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES, budget)
    print(f"xnnpack_us={xnn:.1f} builtin_us={builtin:.1f} litert={version('ai-edge-litert')} numpy={np.__version__}")


if __name__ == "__main__":
    main()
