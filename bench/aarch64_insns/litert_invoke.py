"""LiteRT's side of `bench/aarch64_insns/run.sh`: a fixed number of inferences, no timing.

Usage: python litert_invoke.py MODEL.tflite INPUT.npy RUNS {xnnpack,builtin} [OUTPUT.npy]

Builds ai-edge-litert's Interpreter at one thread, with its default op resolver
(`OpResolverType.AUTO`: LiteRT's optimized kernels with the XNNPACK delegate, as in
`bench/litert_latency.py`) or without the default delegates (`builtin`), allocates,
sets the input, runs one warm-up `invoke()` and then exactly RUNS more. The instruction
count of RUNS=N minus that of RUNS=0 (the same script otherwise) is N inferences:
interpreter start-up, imports, model load, delegate creation and the warm-up cancel.
With OUTPUT.npy (TFLM's output for that input) it compares the output after the runs
and prints `output_vs_tflm=bit-exact` or `output_vs_tflm=max_abs_diff=D`, which costs
the same for every RUNS. Prints `runs=… resolver=… litert=… numpy=…`.
Pinned versions: bench/requirements.txt (the aarch64 wheels of the same versions).
"""
import sys
from importlib.metadata import version

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

RESOLVERS = {
    "xnnpack": OpResolverType.AUTO,
    "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
}


def main():
    if len(sys.argv) not in (5, 6) or sys.argv[4] not in RESOLVERS:
        sys.exit("usage: litert_invoke.py MODEL.tflite INPUT.npy RUNS {xnnpack,builtin} [OUTPUT.npy]")
    model = open(sys.argv[1], "rb").read()
    x = np.load(sys.argv[2])
    runs = int(sys.argv[3])
    resolver = sys.argv[4]
    interp = Interpreter(model_content=model, num_threads=1, experimental_op_resolver_type=RESOLVERS[resolver])
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    for _ in range(runs):
        interp.invoke()
    line = f"runs={runs} resolver={resolver} litert={version('ai-edge-litert')} numpy={np.__version__}"
    if len(sys.argv) == 6:
        want = np.load(sys.argv[5])
        got = interp.get_tensor(interp.get_output_details()[0]["index"]).reshape(want.shape)
        diff = int(np.max(np.abs(got.astype(np.int64) - want.astype(np.int64))))
        line += " output_vs_tflm=" + ("bit-exact" if diff == 0 else f"max_abs_diff={diff}")
    print(line)


if __name__ == "__main__":
    main()
