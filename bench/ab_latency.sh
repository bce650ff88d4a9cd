#!/usr/bin/env bash
# A/B host latency: two builds of edgeflow's `latency` binary and LiteRT + XNNPACK at one
# thread, interleaved model by model in each round, in one run (so that all three sides
# see the same machine load). Used to measure one kernel change at a time (issue 14).
#
#   bench/ab_latency.sh BEFORE_BIN AFTER_BIN [ROUNDS] [MODELS...]
#
# Needs the artifacts and inputs `cargo xtask bench-host` writes to target/bench-host/,
# the MLPerf Tiny models in $MLPERF (default ../shared/benchmarks/mlperf-tiny) and a
# Python with bench/requirements.txt in $EDGEFLOW_PYTHON (default python3). Each figure
# is the median of ~1 s of inferences; the script prints every round, then per model the
# median over the rounds (µs per inference), and the load average before and after.
set -euo pipefail
before=${1:?usage: ab_latency.sh BEFORE_BIN AFTER_BIN [ROUNDS] [MODELS...]}
after=${2:?usage: ab_latency.sh BEFORE_BIN AFTER_BIN [ROUNDS] [MODELS...]}
rounds=${3:-3}
shift $(( $# < 3 ? $# : 3 ))
models=("$@")
[ ${#models[@]} -eq 0 ] && models=(kws ic ad vww)
root=$(cd "$(dirname "$0")/.." && pwd)
mlperf=${MLPERF:-$root/../shared/benchmarks/mlperf-tiny}
py=${EDGEFLOW_PYTHON:-python3}
work=$root/target/bench-host
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A res
for r in $(seq 1 "$rounds"); do
  for m in "${models[@]}"; do
    b=$(env -u EDGEFLOW_NN_PORTABLE -u EDGEFLOW_NN_UNPACKED -u EDGEFLOW_LATENCY_OPS "$before" "$work/$m.efa" "$work/$m.bin" 1 1)
    a=$(env -u EDGEFLOW_NN_PORTABLE -u EDGEFLOW_NN_UNPACKED -u EDGEFLOW_LATENCY_OPS "$after" "$work/$m.efa" "$work/$m.bin" 1 1)
    case "$a$b" in *packed_output_equal=false*) echo "$m: packed output differs from invoke's" >&2; exit 1;; esac
    l=$("$py" "$root/bench/litert_latency.py" "$mlperf/$m.tflite" "$mlperf/${m}_input.npy" 1 1 2>/dev/null)
    bu=$(echo "$b" | field median_us); au=$(echo "$a" | field median_us); lu=$(echo "$l" | field xnnpack_us)
    echo "round $r $m: before $bu  after $au  litert+xnnpack $lu"
    res[$m,b]+="$bu "; res[$m,a]+="$au "; res[$m,l]+="$lu "
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| model | before µs | after µs | LiteRT + XNNPACK µs | before / LiteRT | after / LiteRT |"
echo "|---|---:|---:|---:|---:|---:|"
for m in "${models[@]}"; do
  bm=$(tr ' ' '\n' <<<"${res[$m,b]}" | grep . | median)
  am=$(tr ' ' '\n' <<<"${res[$m,a]}" | grep . | median)
  lm=$(tr ' ' '\n' <<<"${res[$m,l]}" | grep . | median)
  awk -v m="$m" -v b="$bm" -v a="$am" -v l="$lm" \
    'BEGIN {printf "| %s | %.1f | %.1f | %.1f | %.2f× | %.2f× |\n", m, b, a, l, b / l, a / l}'
done
