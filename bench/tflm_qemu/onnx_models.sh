#!/bin/sh
# Instructions per inference of the ONNX conformance models (conformance/onnx/models: the
# small models written with the node types `torch.onnx.export` emits) on QEMU mps2-an386
# (Cortex-M4F), edgeflow beside TensorFlow Lite Micro, on the same int8 model:
#
#   1. `edgeflow quantize MODEL.onnx --calib … --float-io` (default range method, per-channel
#      weights, the model's 64 calibration recordings in the importer's channels-last layout),
#      or, for the QDQ model ONNX Runtime quantized, `edgeflow convert` with its own parameters;
#   2. `edgeflow export` of that artifact to .tflite;
#   3. the artifact on edgeflow's firmware harness (firmware/mps2-an386, release, the harness
#      `validate --hil` uses) and the .tflite on TFLM (bench/tflm_qemu/run.sh, reference
#      kernels), each on recording REC of MODEL.input.f32;
#   4. the two outputs (float32, the models have float I/O) compared byte for byte.
#
# TFLM cannot read ONNX; the usual ONNX → TensorFlow → TFLite converters (onnx2tf,
# onnx-tf) would give TFLM a different file with the converter's own quantization, so the
# comparison here is of the two run-times on one quantized model: edgeflow's export of it.
# (bench/onnx2tf/onnx2tf_tflm.py runs onnx2tf's own files in the same harness.)
#
# usage: bench/tflm_qemu/onnx_models.sh TFLM_OUT [MODEL ...]   (default: mlp cnn1d mobilenet cnn1d.qdq)
# env: EDGEFLOW (the CLI; default target/debug/edgeflow), PYTHON (a python3 with numpy),
#      REC (recording index, default 0), KEEP (a directory to keep the files in)
set -eu
OUT=$(cd "$1" && pwd); shift
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
E=${EDGEFLOW:-$ROOT/target/debug/edgeflow}; PY=${PYTHON:-python3}; REC=${REC:-0}
W=${KEEP:-$(mktemp -d)}; mkdir -p "$W"; [ -n "${KEEP:-}" ] || trap 'rm -rf "$W"' EXIT
MODELS=${*:-mlp cnn1d mobilenet cnn1d.qdq}

# ONNX-layout recordings ([N, 1, C, ...] in conformance's .f32: u32 rank, u32 dims, f32 data)
# to the importer's channels-last layout: calibration .npy and one raw input.
to_channels_last() { # F32_FILE NPY_OUT RAW_OUT
  "$PY" - "$@" <<'PY'
import sys, numpy as np
src, npy_out, raw_out = sys.argv[1:4]
b = open(src, "rb").read()
rank = int(np.frombuffer(b, "<u4", 1)[0])
dims = [int(d) for d in np.frombuffer(b, "<u4", rank, 4)]
x = np.frombuffer(b, "<f4", offset=4 * (1 + rank)).reshape(dims)
if x.ndim > 3:                       # [N, 1, C, spatial...] -> [N, 1, spatial..., C]
    x = np.moveaxis(x, 2, -1)
x = np.ascontiguousarray(x, dtype="<f4")
if npy_out != "-":
    np.save(npy_out, x)
if raw_out != "-":
    open(raw_out, "wb").write(x[int(sys.argv[4]) if len(sys.argv) > 4 else 0].tobytes())
PY
}

: > "$W/cases.txt"
for m in $MODELS; do
  case $m in
    *.qdq) base=${m%.qdq}; dir=$ROOT/conformance/onnx/qdq
           to_channels_last "$dir/$base.input.f32" - "$W/$m.input" "$REC"
           "$E" convert "$dir/$base.qdq.onnx" -o "$W/$m.edgeflow" > /dev/null ;;
    *)     dir=$ROOT/conformance/onnx/models
           to_channels_last "$dir/$m.calib.f32" "$W/$m.calib.npy" -
           to_channels_last "$dir/$m.input.f32" - "$W/$m.input" "$REC"
           "$E" quantize "$dir/$m.onnx" --calib "$W/$m.calib.npy" --float-io \
             -o "$W/$m.edgeflow" > "$W/$m.quantize.txt" ;;
  esac
  "$E" export "$W/$m.edgeflow" -o "$W/$m.tflite" > /dev/null
  printf '%s\t%s\t%s\n' "$(echo "$m" | tr . _)" "$W/$m.edgeflow" "$W/$m.input" >> "$W/cases.txt"
done

# edgeflow: every model in one firmware image, as tests/src/firmware.rs builds it.
(cd "$ROOT/firmware/mps2-an386" && EDGEFLOW_CASES="$W/cases.txt" EDGEFLOW_ARENA=${EDGEFLOW_ARENA:-262144} \
  EDGEFLOW_PROFILE=0 cargo build --release --quiet)
ELF=$ROOT/firmware/target/thumbv7em-none-eabihf/release/edgeflow-fw-mps2-an386
timeout 1800 qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic -monitor none -serial none \
  -semihosting-config enable=on,target=native -icount shift=0 -kernel "$ELF" > "$W/edgeflow.txt" 2>&1 || true

printf '| model | ops | edgeflow instructions | TFLM (reference kernels) instructions | TFLM / edgeflow | outputs |\n'
printf '|---|---|--:|--:|--:|---|\n'
for m in $MODELS; do
  name=$(echo "$m" | tr . _)
  L=$(grep "^case $name ok" "$W/edgeflow.txt") || { echo "edgeflow $m failed: $(grep "^case $name" "$W/edgeflow.txt")"; exit 1; }
  TICKS=$(echo "$L" | sed 's/.* ticks=\([0-9]*\).*/\1/')
  EHEX=$(echo "$L" | sed 's/.* out=\([0-9a-f]*\).*/\1/')
  printf '%s' "$EHEX" | "$PY" -c "import sys; open('$W/$m.edgeflow_out','wb').write(bytes.fromhex(sys.stdin.read()))"
  T=$(KEEP="$W/tflm-$m" "$HERE/run.sh" "$OUT" "$W/$m.tflite" "$W/$m.input" "$W/$m.edgeflow_out" || true)
  echo "$T" > "$W/$m.tflm.txt"
  TI=$(echo "$T" | sed -n 's/^tflm invoke 1 ticks=[0-9]* instr=\([0-9]*\)/\1/p')
  OPS=$(echo "$T" | sed -n 's/.* ops=\([^ ]*\) .*/\1/p')
  SAME=$(echo "$T" | grep -q "bit-identical" && echo "bit-identical" || echo "DIFFER")
  EI=$((TICKS * 40))
  printf '| %s | %s | %s | %s | %s | %s |\n' "$m" "$OPS" "$EI" "$TI" \
    "$("$PY" -c "print(f'{$TI / $EI:.2f}')" 2>/dev/null || echo ?)" "$SAME"
done
echo
for m in $MODELS; do echo "== $m (TFLM)"; cat "$W/$m.tflm.txt"; done
