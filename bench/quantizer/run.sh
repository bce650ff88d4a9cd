#!/usr/bin/env bash
# Quantizer peer comparison, edgeflow side: for each model written by compare.py, test
# accuracy of the float model, of the TFLite converter's int8 model, and of edgeflow's
# int8 model from the same float .tflite and calibration samples (each range method, with
# and without bias correction). All accuracies are measured by `edgeflow validate` with
# edgeflow-nn (bit-exact with TFLite Micro for int8), on the same test rows.
#
# A second table gives what `edgeflow quantize` itself reports on the calibration samples
# (float vs int8 output SNR and top-1 agreement): the measure that uses no test data.
#
#   bench/quantizer/run.sh [DIR]      (DIR: compare.py's output, default target/bench/quantizer)
set -euo pipefail
cd "$(dirname "$0")/../.."
dir="${1:-target/bench/quantizer}"
# EDGEFLOW=path/to/edgeflow uses that binary (e.g. the one `cargo test --workspace` built)
# instead of building the CLI here.
if [ -n "${EDGEFLOW:-}" ]; then
  E="$EDGEFLOW"
else
  cargo build --quiet -p edgeflow-cli
  E=target/debug/edgeflow
fi
acc() {  # model -> accuracy (percent)
  "$E" validate "$1" --board mps2-an386 --test-data "$dir/$2.test_x.npy" \
    --test-labels "$dir/$2.test_y.npy" | awk '$1 == "accuracy" { print $2 }'
}
# NAME: --method NAME --no-bias-correction; NAME+bc: --method NAME with bias correction
# (the default; `mse+bc` is what `edgeflow quantize` does without options).
variants="minmax percentile mse kl minmax+bc percentile+bc mse+bc kl+bc"
head="| model | test samples | float | TFLite converter int8"
for v in $variants; do head="$head | edgeflow $v"; done
calib="| model | calibration samples"
for v in $variants; do calib="$calib | $v"; done
echo "$head |"
echo "|---|---|---|---$(for v in $variants; do printf '|---'; done)|"
cal_rows=""
for m in imu dscnn digits; do
  n=$(python3 -c "import json;print(json.load(open('$dir/$m.summary.json'))['test'])")
  c=$(python3 -c "import json;print(json.load(open('$dir/$m.summary.json'))['calibration'])")
  row="| $m | $n | $(acc "$dir/$m.f32.tflite" "$m") | $(acc "$dir/$m.int8_tflite.tflite" "$m")"
  crow="| $m | $c"
  for v in $variants; do
    method="${v%+bc}"
    extra=(--no-bias-correction)
    [ "$v" != "$method" ] && extra=()
    out="$dir/$m.edgeflow_$v.edgeflow"
    # "float vs int8 on the calibration set: top-1 agreement A %, output SNR S dB"
    line=$("$E" quantize "$dir/$m.f32.tflite" --calib "$dir/$m.calib.npy" --method "$method" \
      ${extra[@]+"${extra[@]}"} -o "$out" | grep 'calibration set')
    crow="$crow | $(echo "$line" | sed -E 's/.*SNR ([-0-9.inf]+) dB.*/\1 dB/') / $(echo "$line" | sed -E 's/.*agreement ([0-9.]+) %.*/\1 %/')"
    row="$row | $(acc "$out" "$m")"
  done
  echo "$row |"
  cal_rows="$cal_rows$crow |"$'\n'
done
echo
echo "Calibration set, float vs int8 (output SNR / top-1 agreement):"
echo
echo "$calib |"
echo "|---|---$(for v in $variants; do printf '|---'; done)|"
printf '%s' "$cal_rows"
