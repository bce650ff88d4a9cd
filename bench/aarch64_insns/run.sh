#!/usr/bin/env bash
# Instructions per inference on emulated aarch64: edgeflow beside LiteRT's aarch64 wheel,
# both under the same qemu-aarch64 and the same instruction-counting TCG plugin.
#
#   bench/aarch64_insns/run.sh [MODELS_DIR]      (default: ../shared/benchmarks/mlperf-tiny)
#
# Needs (checked; nothing is installed or downloaded by this script):
#   * qemu-aarch64 (Debian qemu-user 7.2: plugin support compiled in, no plugins shipped),
#     gcc (to build our plugin, insn_count.c), aarch64-linux-gnu-gcc (gcc-aarch64-linux-gnu),
#     the Rust target aarch64-unknown-linux-gnu;
#   * the aarch64 CPython sysroot with LiteRT's wheels: setup_sysroot.sh (AARCH64_SYSROOT,
#     default target/aarch64-insns/sysroot);
#   * an `edgeflow` binary to convert the models (EDGEFLOW_BIN, default target/debug/edgeflow
#     or target/release/edgeflow).
# Settings: CPUS (default "cortex-a76 cortex-a72": Raspberry Pi 5's core, with the
# dot-product extension, and Pi 4's, without), RUNS (inferences counted; default per
# model, enough that CPython's run-to-run noise of ~0.1 M instructions is under 1 %: AD
# 1000, KWS 100, IC and VWW 40), MODELS (default "kws ic ad vww").
#
# Method: the plugin counts every guest instruction of a whole process. Each side runs the
# same command twice, with RUNS inferences and with 0 (after the same set-up and warm-up),
# and (count(RUNS) - count(0)) / RUNS is the figure: start-up, model load, weight packing
# and delegate creation cancel. edgeflow's counts repeat exactly; CPython's (with
# PYTHONHASHSEED=0) vary by up to ~0.1 M instructions from run to run, hence RUNS.
# edgeflow: edgeflow-nn's `latency` example cross-built in release, EDGEFLOW_LATENCY_RUNS=N
# (host path: packed weights, one thread; also the device path's NEON kernels,
# EDGEFLOW_NN_UNPACKED=1, and the portable ones, EDGEFLOW_NN_PORTABLE=1).
# LiteRT: litert_invoke.py, one thread, with XNNPACK (the default resolver) and without.
# Each side's output after the runs is compared with TFLM's (MODEL_output_tflm.npy).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=$(cd "${1:-$root/../shared/benchmarks/mlperf-tiny}" && pwd)
sys=${AARCH64_SYSROOT:-$root/target/aarch64-insns/sysroot}
work=$root/target/aarch64-insns
cpus=${CPUS:-cortex-a76 cortex-a72}
models=${MODELS:-kws ic ad vww}

need() { command -v "$1" >/dev/null || { echo "error: $1 not found ($2)" >&2; exit 1; }; }
need qemu-aarch64 "Debian: qemu-user"
need gcc "Debian: gcc"
need aarch64-linux-gnu-gcc "Debian: gcc-aarch64-linux-gnu"
[ -x "$sys/usr/bin/python3.11" ] && [ -d "$sys/site/ai_edge_litert" ] ||
    { echo "error: no aarch64 sysroot at $sys: run bench/aarch64_insns/setup_sysroot.sh $sys" >&2; exit 1; }
for c in $cpus; do
    [ -f "$sys/cpu/$c/proc/cpuinfo" ] || { echo "error: no CPU profile $sys/cpu/$c (setup_sysroot.sh makes cortex-a72 and cortex-a76)" >&2; exit 1; }
done
ef=${EDGEFLOW_BIN:-}
if [ -z "$ef" ]; then
    for c in "$root/target/release/edgeflow" "$root/target/debug/edgeflow"; do [ -x "$c" ] && ef=$c && break; done
fi
[ -n "$ef" ] && [ -x "$ef" ] || { echo "error: no edgeflow binary: set EDGEFLOW_BIN or build edgeflow-cli" >&2; exit 1; }
mkdir -p "$work"

echo "== building the instruction counter (insn_count.c) and checking it on known.S"
so=$work/insn_count.so
gcc -O2 -Wall -Wextra -Werror -shared -fPIC -fvisibility=hidden -o "$so" "$here/insn_count.c"
# count OUTFILE CPU [ENV...] -- CMD... : runs the aarch64 CMD under qemu-aarch64 with the
# plugin, with `env ENV...` applied to qemu (which passes its environment to the guest);
# prints the count.
count() {
    local out=$1 cpu=$2 envs=()
    shift 2
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    rm -f "$out.count"
    env "${envs[@]}" qemu-aarch64 -cpu "$cpu" -L "$sys/cpu/$cpu" -plugin "$so,out=$out.count" "$@" >"$out.stdout" 2>"$out.stderr" ||
        { echo "error: $* failed under qemu-aarch64 -cpu $cpu:" >&2; cat "$out.stdout" "$out.stderr" >&2; exit 1; }
    local line
    line=$(cat "$out.count")
    case $line in *" threads=1") ;; *) echo "warning: $*: more than one thread executed ($line)" >&2 ;; esac
    line=${line#insns=}
    echo "${line%% *}"
}
for iter in 1 1000; do
    aarch64-linux-gnu-gcc -nostdlib -static -DITER=$iter -o "$work/known$iter" "$here/known.S"
    got=$(count "$work/known$iter" cortex-a72 -- "$work/known$iter")
    [ "$got" -eq $((2 * iter + 5)) ] ||
        { echo "error: the counter says $got instructions for known.S ITER=$iter, the program executes $((2 * iter + 5))" >&2; exit 1; }
    echo "known.S ITER=$iter: $got instructions (exact)"
done

echo "== cross-building edgeflow-nn's latency example (release, aarch64-unknown-linux-gnu)"
(cd "$root" && cargo build --quiet --release --target aarch64-unknown-linux-gnu -p edgeflow-nn --features std --example latency)
lat=$root/target/aarch64-unknown-linux-gnu/release/examples/latency
py_env=(PYTHONPATH="$sys/site" PYTHONHASHSEED=0 OPENBLAS_NUM_THREADS=1)
py=$sys/usr/bin/python3.11
for m in $models; do
    "$ef" convert -o "$work/$m.efa" "$dir/$m.tflite" >/dev/null
    env "${py_env[@]}" qemu-aarch64 -L "$sys/cpu/cortex-a72" "$py" -c \
        'import sys, numpy as np; open(sys.argv[2], "wb").write(np.load(sys.argv[1]).tobytes())' \
        "$dir/${m}_input.npy" "$work/$m.bin"
done

# RUNS for model $1
runs_for() {
    case $1 in
    ad) echo "${RUNS:-1000}" ;;
    kws) echo "${RUNS:-100}" ;;
    *) echo "${RUNS:-40}" ;;
    esac
}
# (count with RUNS - count with 0) / RUNS
diff_per() { echo $(( ($1 - $2) / runs )); }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f×", a / b }'; }
# The edgeflow output file against TFLM's, in the emulated CPython (numpy).
ef_vs_tflm() {
    env "${py_env[@]}" qemu-aarch64 -L "$sys/cpu/cortex-a72" "$py" -c '
import sys, numpy as np
want = np.load(sys.argv[2]); got = np.frombuffer(open(sys.argv[1], "rb").read(), dtype=want.dtype)
d = int(np.max(np.abs(got.astype(np.int64) - want.ravel().astype(np.int64)))) if got.size == want.size else -1
print("bit-exact" if d == 0 else ("size differs" if d < 0 else f"max abs diff {d}"))' "$1" "$2"
}

table=$work/table.md
{
    echo "| CPU | model | edgeflow packed | LiteRT + XNNPACK | edgeflow / LiteRT + XNNPACK | edgeflow unpacked NEON | edgeflow portable | LiteRT without XNNPACK | edgeflow output vs TFLM | LiteRT + XNNPACK output vs TFLM |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---|---|"
} >"$table"
for cpu in $cpus; do
    for m in $models; do
        runs=$(runs_for "$m")
        echo "== $cpu $m ($runs runs)"
        f=$work/$cpu.$m
        declare -A ef_n=()
        for side in packed unpacked portable; do
            envs=(-u EDGEFLOW_NN_UNPACKED -u EDGEFLOW_NN_PORTABLE -u EDGEFLOW_LATENCY_OPS)
            [ $side = unpacked ] && envs+=(EDGEFLOW_NN_UNPACKED=1)
            [ $side = portable ] && envs+=(EDGEFLOW_NN_PORTABLE=1)
            a=$(count "$f.ef-$side-n" "$cpu" "${envs[@]}" EDGEFLOW_LATENCY_RUNS=$runs \
                EDGEFLOW_LATENCY_OUTPUT="$f.ef-$side.out" -- "$lat" "$work/$m.efa" "$work/$m.bin")
            b=$(count "$f.ef-$side-0" "$cpu" "${envs[@]}" EDGEFLOW_LATENCY_RUNS=0 \
                EDGEFLOW_LATENCY_OUTPUT="$f.ef-$side.out0" -- "$lat" "$work/$m.efa" "$work/$m.bin")
            grep -q "packed_output_equal=true" "$f.ef-$side-n.stdout" ||
                { echo "error: $m: the packed path's output differs from Runtime::invoke's" >&2; exit 1; }
            ef_n[$side]=$(diff_per "$a" "$b")
            [ $side = packed ] && ef_out=$(ef_vs_tflm "$f.ef-$side.out" "$dir/${m}_output_tflm.npy")
            echo "edgeflow $side: $a - $b over $runs runs = ${ef_n[$side]} per inference"
        done
        for res in xnnpack builtin; do
            a=$(count "$f.lr-$res-n" "$cpu" "${py_env[@]}" -- "$py" "$here/litert_invoke.py" "$dir/$m.tflite" "$dir/${m}_input.npy" "$runs" $res "$dir/${m}_output_tflm.npy")
            b=$(count "$f.lr-$res-0" "$cpu" "${py_env[@]}" -- "$py" "$here/litert_invoke.py" "$dir/$m.tflite" "$dir/${m}_input.npy" 0 $res "$dir/${m}_output_tflm.npy")
            if [ $res = xnnpack ]; then
                lr_x=$(diff_per "$a" "$b")
                grep -q "XNNPACK delegate" "$f.lr-$res-n.stderr" ||
                    { echo "error: $m: LiteRT did not say it created the XNNPACK delegate" >&2; exit 1; }
                lr_out=$(grep -o 'output_vs_tflm=.*' "$f.lr-$res-n.stdout")
                lr_out=${lr_out#output_vs_tflm=}
                lr_out=${lr_out/max_abs_diff=/max abs diff }
                lr_ver=$(grep -o 'litert=[^ ]* numpy=[^ ]*' "$f.lr-$res-n.stdout")
            else
                lr_b=$(diff_per "$a" "$b")
            fi
            echo "LiteRT $res: $a - $b over $runs runs = $(diff_per "$a" "$b") per inference"
        done
        printf '| %s | %s | %d | %d | %s | %d | %d | %d | %s | %s |\n' "$cpu" "${m^^}" "${ef_n[packed]}" "$lr_x" \
            "$(ratio "${ef_n[packed]}" "$lr_x")" "${ef_n[unpacked]}" "${ef_n[portable]}" "$lr_b" "$ef_out" "$lr_out" >>"$table"
    done
done
echo "== instructions per inference (RUNS runs minus 0; $lr_ver; $(qemu-aarch64 --version | head -1))"
cat "$table"
