#!/usr/bin/env bash
# Quantizer peer comparison, edgeflow side: for each model written by compare.py, test
# accuracy of the float model, of the TFLite converter's int8 model, and of edgeflow's
# int8 model from the same float .tflite and calibration samples (each range method).
# All accuracies are measured by `edgeflow validate` with edgeflow-nn (bit-exact with
# TFLite Micro for int8), on the same test rows.
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
echo "| model | test samples | float | TFLite converter int8 | edgeflow int8 (minmax) | edgeflow int8 (percentile 99.99) | edgeflow int8 (mse) | edgeflow int8 (kl) |"
echo "|---|---|---|---|---|---|---|---|"
for m in imu dscnn digits; do
  n=$(python3 -c "import json;print(json.load(open('$dir/$m.summary.json'))['test'])")
  row="| $m | $n | $(acc "$dir/$m.f32.tflite" "$m") | $(acc "$dir/$m.int8_tflite.tflite" "$m")"
  for method in minmax percentile mse kl; do
    "$E" quantize "$dir/$m.f32.tflite" --calib "$dir/$m.calib.npy" --method "$method" \
      -o "$dir/$m.edgeflow_$method.edgeflow" > /dev/null
    row="$row | $(acc "$dir/$m.edgeflow_$method.edgeflow" "$m")"
  done
  echo "$row |"
done
