#!/bin/sh
# Runs one .tflite in TensorFlow Lite Micro on QEMU mps2-an386 (Cortex-M4F) and prints the
# instructions per inference and the output bytes; compares them with an expected output.
#
# usage: bench/tflm_qemu/run.sh TFLM_OUT MODEL.tflite INPUT [EXPECTED]
#   TFLM_OUT  what bench/tflm_qemu/build_tflm.sh built (TFLM_OUT/tflm, TFLM_OUT/lib/libtflm-*.a)
#   INPUT     the input tensor's bytes: a .npy (its data, as stored) or a raw file
#   EXPECTED  optional: the expected output tensor's bytes (.npy or raw); the script exits 1
#             when the output differs
# env: KERNELS (reference | cmsis_nn, which library to link; default reference), RUNS (timed
#      Invoke calls; default 3), ARENA (tensor arena bytes; default 524288), KEEP (a directory
#      to build in and keep).
#
# The harness (harness.cc: vector table, reset handler, SysTick, semihosting) and the model
# (gen.py: the .tflite and the input as C arrays, a MicroMutableOpResolver with the model's
# ops only) are compiled with TFLM's own release flags for cortex_m_generic / cortex-m4+fp
# (-Os, -DTF_LITE_STATIC_MEMORY -DNDEBUG -DTF_LITE_STRIP_ERROR_STRINGS, hard float) and
# linked with --gc-sections. QEMU runs with `-icount shift=0`: SysTick (the 25 MHz core clock)
# advances once per 40 retired instructions; the harness measures that factor with a loop of
# known length and prints instructions = ticks x factor.
#
# needs: gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm (Debian packages), python3.
set -eu
OUT=$(cd "$1" && pwd); MODEL=$2; INPUT=$3; EXPECTED=${4:-}
HERE=$(cd "$(dirname "$0")" && pwd)
T=$OUT/tflm; D=$T/tensorflow/lite/micro/tools/make/downloads
KERNELS=${KERNELS:-reference}
LIB=$OUT/lib/libtflm-$KERNELS.a
[ -f "$LIB" ] || { echo "no $LIB: run bench/tflm_qemu/build_tflm.sh first" >&2; exit 1; }
W=${KEEP:-$(mktemp -d)}; mkdir -p "$W"; [ -n "${KEEP:-}" ] || trap 'rm -rf "$W"' EXIT

OPS=$(python3 "$HERE/gen.py" "$MODEL" "$INPUT" "$T" "$W/model_data.cc")
ARCH="-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=auto -mlittle-endian -funsigned-char"
DEFS="-DTF_LITE_STATIC_MEMORY -DTF_LITE_DISABLE_X86_NEON -DNDEBUG -DTF_LITE_STRIP_ERROR_STRINGS
  -DTF_LITE_MCU_DEBUG_LOG -DCPU_M4=1 -DRUNS=${RUNS:-3} -DARENA_BYTES=${ARENA:-524288}"
INC="-I$T -I$D/flatbuffers/include -I$D/gemmlowp -I$D/ruy"
CXXF="$ARCH $DEFS $INC -Os -std=c++17 -fno-rtti -fno-exceptions -fno-threadsafe-statics
  -fno-unwind-tables -fno-asynchronous-unwind-tables -ffunction-sections -fdata-sections"
# shellcheck disable=SC2086
arm-none-eabi-g++ $CXXF -c "$HERE/harness.cc" -o "$W/harness.o"
# shellcheck disable=SC2086
arm-none-eabi-g++ $CXXF -c "$W/model_data.cc" -o "$W/model_data.o"
# shellcheck disable=SC2086
arm-none-eabi-g++ $ARCH -nostartfiles --specs=nosys.specs -T"$HERE/link.ld" -Wl,--gc-sections \
  "$W/harness.o" "$W/model_data.o" "$LIB" -lm -o "$W/tflm.elf"
timeout 1800 qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -icount shift=0 -nographic \
  -monitor none -serial none -semihosting-config enable=on,target=native \
  -kernel "$W/tflm.elf" > "$W/out.txt" 2>&1 || true
grep -q "^tflm done" "$W/out.txt" || { echo "TFLM harness failed: $(cat "$W/out.txt")" >&2; exit 1; }
TEXT=$(arm-none-eabi-size -A "$W/tflm.elf" | awk '$1 == ".text" { print $2 }')
echo "model=$(basename "$MODEL") kernels=$KERNELS ops=$(echo "$OPS" | tr ' ' ',') elf_text_bytes=$TEXT"
grep "^tflm" "$W/out.txt" | grep -v "^tflm output\|^tflm done"
HEX=$(sed -n 's/^tflm output 0 bytes=[0-9]* hex=//p' "$W/out.txt")
echo "output0_hex=$HEX"
if [ -n "$EXPECTED" ]; then
  WANT=$(python3 - "$EXPECTED" <<'PY'
import struct, sys
raw = open(sys.argv[1], "rb").read()
if raw[:6] == b"\x93NUMPY":
    n, start = (struct.unpack_from("<H", raw, 8)[0], 10) if raw[6] == 1 else (struct.unpack_from("<I", raw, 8)[0], 12)
    raw = raw[start + n:]
print(raw.hex())
PY
)
  if [ "$HEX" = "$WANT" ]; then echo "output: bit-identical with $(basename "$EXPECTED")"
  else echo "output: DIFFERS from $(basename "$EXPECTED") (want $WANT)"; exit 1; fi
fi
