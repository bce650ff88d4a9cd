"""LiteRT latency of one model, for `cargo xtask bench-host`.

Usage: python bench/litert_latency.py MODEL.tflite INPUT.npy THREADS SECONDS

Times `invoke()` on an already-set input (median over about SECONDS after a warm-up, as
the edgeflow side is timed) with ai-edge-litert's Interpreter twice:
  * default op resolver (`OpResolverType.AUTO`): LiteRT's optimized kernels with the
    XNNPACK delegate applied by default (the peer at its best), THREADS threads;
  * `BUILTIN_WITHOUT_DEFAULT_DELEGATES`: the same interpreter without XNNPACK.
On an x86_64 host with AMX, XNNPACK picks its AMX kernels, which on the MLPerf Tiny
models were about 2x slower than its AVX-512 VNNI ones (IC: 170 against 85.5 us,
2026-11-30). The XNNPACK figure is therefore timed twice, in two processes: as LiteRT
chooses (AMX allowed), and with AMX refused — a seccomp filter makes Linux's
`arch_prctl(ARCH_REQ_XCOMP_PERM)` fail with EPERM, the request without which a process
may not use AMX tile data, so XNNPACK takes its non-AMX path — and the faster of the two
is `xnnpack_us` (the peer at its best). On a host without AMX the two are the same path.
Prints one line `xnnpack_us=… xnnpack_amx_us=… xnnpack_noamx_us=… builtin_us=…
litert=VERSION numpy=VERSION`. LiteRT itself writes "Created TensorFlow Lite XNNPACK
delegate for CPU." to stderr when XNNPACK is used. Pinned versions:
bench/requirements.txt.
"""
import ctypes
import os
import platform
import struct
import subprocess
import sys
import time
from importlib.metadata import version

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

# Linux x86_64 numbers (arch/x86/entry/syscalls/syscall_64.tbl, uapi/asm/prctl.h,
# uapi/linux/prctl.h, uapi/linux/seccomp.h, uapi/linux/filter.h).
SYS_ARCH_PRCTL = 158
ARCH_REQ_XCOMP_PERM = 0x1023
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ERRNO_EPERM = 0x0005_0001
SECCOMP_RET_ALLOW = 0x7FFF_0000


def refuse_amx():
    """Installs a seccomp filter under which arch_prctl(ARCH_REQ_XCOMP_PERM, ...) fails with
    EPERM (every other system call is allowed); returns False where that is not possible."""
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    # Classic BPF over struct seccomp_data {int nr; u32 arch; u64 ip; u64 args[6];}.
    program = [
        (0x20, 0, 0, 0),  # A = nr
        (0x15, 0, 3, SYS_ARCH_PRCTL),  # A == arch_prctl ? next : allow
        (0x20, 0, 0, 16),  # A = low 32 bits of args[0]
        (0x15, 0, 1, ARCH_REQ_XCOMP_PERM),  # A == REQ_XCOMP_PERM ? refuse : allow
        (0x06, 0, 0, SECCOMP_RET_ERRNO_EPERM),
        (0x06, 0, 0, SECCOMP_RET_ALLOW),
    ]
    filt = ctypes.create_string_buffer(b"".join(struct.pack("<HBBI", *i) for i in program))
    fprog = ctypes.create_string_buffer(struct.pack("<HxxxxxxQ", len(program), ctypes.addressof(filt)))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    return libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0) == 0


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
    if sys.argv[1] == "--xnnpack-without-amx":
        # The child process of the second XNNPACK timing: refuse AMX, time, print.
        args = sys.argv[2:]
        refused = refuse_amx()
        model, x = open(args[0], "rb").read(), np.load(args[1])
        us = timed(model, x, int(args[2]), OpResolverType.AUTO, float(args[3]))
        print(f"{us:.1f}" if refused else "unavailable")
        return
    model = open(sys.argv[1], "rb").read()
    x = np.load(sys.argv[2])
    threads = int(sys.argv[3])
    budget = float(sys.argv[4])
    amx = timed(model, x, threads, OpResolverType.AUTO, budget)
    child = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--xnnpack-without-amx", *sys.argv[1:5]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    noamx = float(child) if child != "unavailable" else amx
    builtin = timed(model, x, threads, OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES, budget)
    print(
        f"xnnpack_us={min(amx, noamx):.1f} xnnpack_amx_us={amx:.1f} xnnpack_noamx_us={noamx:.1f} "
        f"builtin_us={builtin:.1f} litert={version('ai-edge-litert')} numpy={np.__version__}"
    )


if __name__ == "__main__":
    main()
