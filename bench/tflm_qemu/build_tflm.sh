#!/bin/sh
# Builds TensorFlow Lite Micro's static library for Cortex-M4F with TFLM's own Makefile, the
# way ../shared/benchmarks/mlperf-tiny/README.md says TFLM's reference figures were measured:
# TFLM 90b983c2, TARGET=cortex_m_generic TARGET_ARCH=cortex-m4+fp BUILD_TYPE=release
# (framework -Os, kernels -O2), the system's arm-none-eabi-gcc (Debian 12.2), reference kernels
# (or OPTIMIZED_KERNEL_DIR=cmsis_nn when KERNELS=cmsis_nn and a CMSIS-NN checkout is given).
#
# The Makefile downloads its third-party code from GitHub into tools/make/downloads/ and skips
# each download whose directory already exists. This script fills that directory from local
# checkouts instead (the exact versions TFLM's download scripts name, with TFLM's patches
# applied as those scripts apply them), so no network is needed. Nothing of TFLM enters this
# repository: everything is built under OUT.
#
# usage: bench/tflm_qemu/build_tflm.sh OUT SRC
#   OUT  build directory (created): OUT/tflm is the TFLM tree, OUT/lib/libtflm-<kernels>.a the result
#   SRC  a directory holding checkouts (plain directories, any way you like) named
#          tflite-micro  github.com/tensorflow/tflite-micro   90b983c2
#          flatbuffers   github.com/google/flatbuffers        v25.9.23  (flatbuffers_download.sh)
#          gemmlowp      github.com/google/gemmlowp           719139ce  (third_party_downloads.inc)
#          ruy           github.com/google/ruy                d3712831  (third_party_downloads.inc)
#          kissfft       github.com/mborgerding/kissfft       v130      (kissfft_download.sh)
#          CMSIS_6       github.com/ARM-software/CMSIS_6      5782d6f8  (ext_libs/cmsis_download.sh)
#          Cortex_DFP    github.com/ARM-software/Cortex_DFP   c2c70a97  (ext_libs/cmsis_download.sh)
#        From git directories (bare mirrors), e.g.:
#          git --git-dir=MIRROR archive COMMIT | tar -x -C SRC/NAME
# needs: gcc-arm-none-eabi libnewlib-arm-none-eabi make patch (Debian packages), and a python3
# with numpy and Pillow first on PATH (the Makefile's example rules run TFLM's
# generate_cc_arrays.py even for the library target): bench/tflm_qemu/requirements.txt, e.g.
#   python3 -m venv /tmp/tv && /tmp/tv/bin/pip install -r bench/tflm_qemu/requirements.txt
#   PATH=/tmp/tv/bin:$PATH bench/tflm_qemu/build_tflm.sh OUT SRC
set -eu
OUT=$(mkdir -p "$1" && cd "$1" && pwd); SRC=$(cd "$2" && pwd)
KERNELS=${KERNELS:-reference}
T=$OUT/tflm
if [ ! -d "$T" ]; then
  cp -r "$SRC/tflite-micro" "$T"
fi
D=$T/tensorflow/lite/micro/tools/make/downloads
mkdir -p "$D"
put() { # NAME DEST [PATCH]
  [ -d "$D/$2" ] && return 0
  cp -r "$SRC/$1" "$D/$2.part"
  if [ -n "${3:-}" ]; then (cd "$D/$2.part" && patch -s -p1 < "$3"); fi
  find "$D/$2.part" \( -name BUILD -o -name BUILD.bazel \) -delete
  mv "$D/$2.part" "$D/$2"
}
put flatbuffers flatbuffers "$T/tensorflow/lite/micro/tools/make/flatbuffers.patch"
put gemmlowp gemmlowp
put ruy ruy
put kissfft kissfft "$T/third_party/kissfft/kissfft.patch"
# third_party.inc clones pigweed (git, from googlesource) whatever the target; nothing the
# library build compiles or includes comes from it (it serves TFLM's code-style checks), so an
# empty directory stands in for it and its download script skips the clone.
mkdir -p "$D/pigweed"
if [ ! -d "$D/cmsis" ]; then
  cp -r "$SRC/CMSIS_6" "$D/cmsis.part"
  cp -r "$SRC/Cortex_DFP" "$D/cmsis.part/Cortex_DFP"
  mv "$D/cmsis.part" "$D/cmsis"
fi
ARGS="TARGET=cortex_m_generic TARGET_ARCH=cortex-m4+fp BUILD_TYPE=release TOOLCHAIN=gcc"
ARGS="$ARGS TARGET_TOOLCHAIN_ROOT=$(dirname "$(command -v arm-none-eabi-gcc)")/"
if [ "$KERNELS" = cmsis_nn ]; then
  put CMSIS-NN cmsis_nn
  ARGS="$ARGS OPTIMIZED_KERNEL_DIR=cmsis_nn"
fi
arm-none-eabi-gcc --version | head -1
# The objects: TFLM's framework (MICROLITE_CC_SRCS, -Os) and, of its kernels
# (MICROLITE_CC_KERNEL_SRCS, -O2), the files of the ops in KERNEL_FILES (each NAME.cc and
# NAME_common.cc) plus the kernel helpers every op uses. The whole library (`microlite`, 202
# objects) takes over an hour on a loaded 2-core machine; the objects the harness can link are
# compiled by the same Makefile rules with the same flags (FULL=1 builds all of them).
KERNEL_FILES=${KERNEL_FILES:-"activations add concatenation conv depthwise_conv dequantize
  fully_connected hard_swish leaky_relu logistic maximum_minimum mul pad pooling quantize reduce
  reshape resize_nearest_neighbor softmax split split_v squeeze strided_slice sub tanh transpose
  kernel_util micro_tensor_utils"}
MK="make -f tensorflow/lite/micro/tools/make/Makefile $ARGS"
cd "$T"
$MK --eval='print_objs: ; @echo $(MICROLITE_LIB_OBJS) $(MICROLITE_KERNEL_OBJS) $(MICROLITE_THIRD_PARTY_OBJS) $(MICROLITE_THIRD_PARTY_KERNEL_OBJS)' \
  print_objs 2>/dev/null | tail -1 | tr ' ' '\n' | grep '\.o$' > "$OUT/all_objs.txt"
if [ -n "${FULL:-}" ]; then
  cp "$OUT/all_objs.txt" "$OUT/objs.txt"
else
  grep '/obj/core/' "$OUT/all_objs.txt" > "$OUT/objs.txt"
  for k in $KERNEL_FILES; do
    grep -E "/obj/kernels/tensorflow/lite/micro/kernels/(cmsis_nn/)?${k}(_common)?\.o$" "$OUT/all_objs.txt" >> "$OUT/objs.txt" || true
  done
  # With KERNELS=cmsis_nn: the optimized kernels (kernels/cmsis_nn/NAME.cc, chosen by the
  # Makefile in place of the reference NAME.cc) and the CMSIS-NN library's own sources
  # (THIRD_PARTY_KERNEL_CC_SRCS), all of which the optimized kernels may call.
  grep -E "/obj/third_party_kernels/|/cmsis_nn/Source/" "$OUT/all_objs.txt" | sort -u >> "$OUT/objs.txt" || true
fi
echo "$(wc -l < "$OUT/objs.txt") of $(wc -l < "$OUT/all_objs.txt") objects" >&2
# shellcheck disable=SC2046
$MK -j"${JOBS:-2}" $(cat "$OUT/objs.txt") >&2
mkdir -p "$OUT/lib"
rm -f "$OUT/lib/libtflm-$KERNELS.a"
# shellcheck disable=SC2046
arm-none-eabi-ar rcs "$OUT/lib/libtflm-$KERNELS.a" $(cat "$OUT/objs.txt")
echo "$OUT/lib/libtflm-$KERNELS.a"
