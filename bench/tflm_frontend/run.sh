#!/bin/sh
# Instructions per 20 ms frame of TensorFlow Lite Micro's fixed-point audio front end
# (tensorflow/lite/experimental/microfrontend/lib, with kissfft v130 + TFLM's patch) on QEMU
# lm3s6965evb (Cortex-M3, no FPU) and mps2-an386 (Cortex-M4F), with micro_speech's options:
# 16 kHz, 30 ms window (480 samples, 512-point FFT), 20 ms step, 40 channels 125..7500 Hz,
# noise reduction (smoothing bits 10, 0.025 / 0.06, min 0.05), PCAN (0.95, 80, 21 bits),
# log scale (shift 6). Input: conformance/frontend/audio/yes_1000ms.wav (49 frames).
#
# Timed per frame: one FrontendProcessSamples call taking the frame's new samples (480 for
# the first frame, then 320) and returning its 40 features: the sample copy into the
# window buffer and everything after it. Printed as instructions: mean, min, median, max
# over the 49 frames, and the FNV-1a hash of all features (compare with edgeflow's).
#
# Instructions from SysTick (core clock) under `-icount shift=0`: the harness first times
# a loop of known length (2 instructions per iteration, 1,000,000 iterations) to get the
# instructions per tick of each machine (40 on mps2-an386; lm3s6965evb's is printed).
#
# Same build as bench/cmsis_mfcc: arm-none-eabi-gcc, -O2 by default (TFLM's release
# builds use -O2; OPT= overrides), -flto (LTO= turns it off), semihosting output.
#
# usage: bench/tflm_frontend/run.sh TFLM_DIR KISSFFT_DIR
#   TFLM_DIR     a checkout of github.com/tensorflow/tflite-micro (the front end's sources
#                and third_party/kissfft/kissfft.patch)
#   KISSFFT_DIR  a checkout of github.com/mborgerding/kissfft at tag v130 (what TFLM's
#                tensorflow/lite/micro/tools/make/kissfft_download.sh fetches)
# needs: gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm (Debian packages).
set -eu
TFLM=$(cd "$1" && pwd); KISS=$(cd "$2" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
W=${KEEP:-$(mktemp -d)}; [ -n "${KEEP:-}" ] || trap 'rm -rf "$W"' EXIT
FE=tensorflow/lite/experimental/microfrontend/lib

# kissfft v130 with TFLM's patch, where the front end's includes find it.
mkdir -p "$W/kissfft"
cp -r "$KISS"/*.h "$KISS"/*.c "$KISS/tools" "$W/kissfft/"
(cd "$W/kissfft" && patch -s -p1 < "$TFLM/third_party/kissfft/kissfft.patch")

# The audio as a C array (the WAV's 44-byte header skipped; little-endian int16).
{
  echo "#include <stdint.h>"
  echo "const int16_t audio[16000] = {"
  tail -c +45 "$ROOT/conformance/frontend/audio/yes_1000ms.wav" | od -An -v -td2 -w16 | sed 's/$/,/; s/\([0-9]\) \+/\1, /g'
  echo "};"
} > "$W/audio.c"

cat > "$W/harness.c" <<'C'
#include <stdint.h>
#include <string.h>
#include "tensorflow/lite/experimental/microfrontend/lib/frontend.h"
#include "tensorflow/lite/experimental/microfrontend/lib/frontend_util.h"

extern const int16_t audio[16000];
#define FRAMES 49

static int semi(int op, const void *arg) {
  register int r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}
static void puts_(const char *s) { semi(0x04, s); }
static void putu(uint32_t v) {
  char b[12]; int i = 11; b[i] = 0;
  do { b[--i] = '0' + v % 10; v /= 10; } while (v);
  puts_(b + i);
}
#define SYST_CSR (*(volatile uint32_t *)0xE000E010)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018)
static volatile uint32_t wraps;
void SysTick_Handler(void) { wraps++; }
static uint64_t now(void) {
  for (;;) {
    uint32_t w1 = wraps, v = SYST_CVR, w2 = wraps;
    if (w1 == w2) return (uint64_t)w1 * 0x1000000u + (0xFFFFFFu - v);
  }
}
/* newlib's malloc (FrontendPopulateState allocates its state) */
extern char _end_heap[], _ebss[];
void *_sbrk(int incr) {
  static char *brk = 0;
  if (!brk) brk = _ebss;
  char *p = brk;
  brk += incr;
  return p;
}
static uint64_t ticks[FRAMES];
static uint16_t frame0[64];
int main(void) {
  SYST_RVR = 0xFFFFFF; SYST_CVR = 0; SYST_CSR = 7;
  while (SYST_CVR == 0) {} /* the first reload: before it the count reads 0 */
  /* Calibration: 1,000,000 iterations of `subs; bne` = 2,000,000 instructions. */
  uint32_t n = 1000000;
  uint64_t c0 = now();
  __asm__ volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n));
  uint64_t cal = now() - c0;
  /* instructions per tick x 1000 */
  uint32_t per_tick_milli = (uint32_t)(2000000000ull / cal);

  struct FrontendConfig config;
  FrontendFillConfigWithDefaults(&config);
  config.window.size_ms = 30;
  config.window.step_size_ms = 20;
  config.filterbank.num_channels = 40;
  config.filterbank.lower_band_limit = 125.0f;
  config.filterbank.upper_band_limit = 7500.0f;
  config.noise_reduction.smoothing_bits = 10;
  config.noise_reduction.even_smoothing = 0.025f;
  config.noise_reduction.odd_smoothing = 0.06f;
  config.noise_reduction.min_signal_remaining = 0.05f;
  config.pcan_gain_control.enable_pcan = 1;
  config.pcan_gain_control.strength = 0.95f;
  config.pcan_gain_control.offset = 80.0f;
  config.pcan_gain_control.gain_bits = 21;
  config.log_scale.enable_log = 1;
  config.log_scale.scale_shift = 6;
  struct FrontendState state;
  uint64_t t0 = now();
  if (!FrontendPopulateState(&config, &state, 16000)) { puts_("populate failed\n"); }
  uint64_t init = now() - t0;

  uint32_t hash = 2166136261u;
  const int16_t *p = audio;
  int left = 16000, frames = 0;
  uint64_t total = 0;
  while (left > 0 && frames < FRAMES) {
    int chunk = frames == 0 ? 480 : 320;
    if (chunk > left) break;
    size_t read = 0;
    uint64_t t = now();
    struct FrontendOutput out = FrontendProcessSamples(&state, p, chunk, &read);
    uint64_t d = now() - t;
    p += read; left -= read;
    if (out.values) {
      for (size_t i = 0; i < out.size; i++) {
        hash = (hash ^ (out.values[i] & 0xFF)) * 16777619u;
        hash = (hash ^ (out.values[i] >> 8)) * 16777619u;
      }
      if (frames == 0)
        for (size_t i = 0; i < out.size && i < 64; i++) frame0[i] = out.values[i];
      ticks[frames++] = d;
      total += d;
    }
  }
  for (int i = 1; i < frames; i++)
    for (int j = i; j > 0 && ticks[j - 1] > ticks[j]; j--) {
      uint64_t t = ticks[j]; ticks[j] = ticks[j - 1]; ticks[j - 1] = t;
    }
#define INSTR(t) ((uint32_t)((t) * per_tick_milli / 1000))
  puts_("tflm_frontend frames="); putu(frames);
  puts_(" instr_per_tick_x1000="); putu(per_tick_milli);
  puts_(" init_instr="); putu(INSTR(init));
  puts_(" mean="); putu(INSTR(total / frames));
  puts_(" min="); putu(INSTR(ticks[0]));
  puts_(" median="); putu(INSTR(ticks[frames / 2]));
  puts_(" max="); putu(INSTR(ticks[frames - 1]));
  puts_(" features_fnv1a="); putu(hash);
  puts_(" calibration_ticks="); putu((uint32_t)cal);
  puts_("\nframe0:");
  for (int i = 0; i < 40; i++) { puts_(" "); putu(frame0[i]); }
  puts_("\n");
  semi(0x18, (const void *)0x20026);
  for (;;) {}
}
extern uint32_t _sidata, _sdata, _edata, _sbss, _estack;
void Reset_Handler(void) {
  uint32_t *s = &_sidata, *d = &_sdata;
  while (d < &_edata) *d++ = *s++;
  for (d = &_sbss; d < (uint32_t *)_ebss;) *d++ = 0;
#ifdef FPU
  *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20;
  __asm__ volatile("dsb\n isb");
#endif
  main();
  for (;;) {}
}
static void Default_Handler(void) { for (;;) {} }
__attribute__((section(".isr_vector"), used)) static void *const vectors[16] = {
    &_estack, Reset_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, 0, 0, 0, 0, Default_Handler, Default_Handler, 0, Default_Handler,
    SysTick_Handler};
C

arm-none-eabi-gcc --version | head -1
OPT=${OPT--O2}
LTO=${LTO--flto}
for BOARD in lm3s6965evb mps2-an386; do
  case $BOARD in
    lm3s6965evb) ARCH="-mcpu=cortex-m3 -mthumb -mfloat-abi=soft"; FLASH=256K; RAM=64K
                 QEMU="-machine lm3s6965evb -cpu cortex-m3"; DEF="" ;;
    mps2-an386)  ARCH="-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16"; FLASH=4096K; RAM=4096K
                 QEMU="-machine mps2-an386 -cpu cortex-m4"; DEF="-DFPU" ;;
  esac
  cat > "$W/link.ld" <<LD
MEMORY { FLASH (rx) : ORIGIN = 0x00000000, LENGTH = $FLASH
         RAM (rwx)  : ORIGIN = 0x20000000, LENGTH = $RAM }
_estack = ORIGIN(RAM) + LENGTH(RAM);
SECTIONS {
  .text : { KEEP(*(.isr_vector)) *(.text*) *(.rodata*) . = ALIGN(4); } > FLASH
  .ARM.exidx : { *(.ARM.exidx*) } > FLASH
  _sidata = LOADADDR(.data);
  .data : { _sdata = .; *(.data*) . = ALIGN(4); _edata = .; } > RAM AT > FLASH
  .bss (NOLOAD) : { _sbss = .; *(.bss*) *(COMMON) . = ALIGN(4); _ebss = .; } > RAM
}
LD
  O=$W/$BOARD; mkdir -p "$O"
  CF="$ARCH $OPT $LTO $DEF -g -ffunction-sections -fdata-sections -I$TFLM -I$W/kissfft"
  for f in window window_util filterbank filterbank_util frontend frontend_util \
           noise_reduction noise_reduction_util pcan_gain_control pcan_gain_control_util \
           log_lut log_scale log_scale_util; do
    arm-none-eabi-gcc $CF -c "$TFLM/$FE/$f.c" -o "$O/$f.o"
  done
  for f in fft fft_util kiss_fft_int16; do
    arm-none-eabi-g++ $CF -fno-exceptions -fno-rtti -c "$TFLM/$FE/$f.cc" -o "$O/$f.o"
  done
  arm-none-eabi-gcc $CF -c "$W/audio.c" -o "$O/audio.o"
  arm-none-eabi-gcc $CF -c "$W/harness.c" -o "$O/harness.o"
  arm-none-eabi-gcc $ARCH $OPT $LTO -g -nostartfiles --specs=nosys.specs -T"$W/link.ld" \
    -Wl,--gc-sections "$O"/*.o -lm -lc -lgcc -o "$O/frontend.elf"
  printf 'TFLM %s (%s): ' "$BOARD" "$OPT"
  timeout 300 qemu-system-arm $QEMU -icount shift=0 -nographic -monitor none -serial none \
    -semihosting-config enable=on,target=native -kernel "$O/frontend.elf" > "$O/out.txt" 2>&1 || true
  grep "^tflm_frontend" "$O/out.txt"
  grep -q "features_fnv1a" "$O/out.txt" || { echo "harness failed: $(cat "$O/out.txt")"; exit 1; }
done

# edgeflow: the same options as a pipeline (conformance/frontend/goldens/yes_micro_speech.toml,
# bit-exact with TensorFlow's op), the same audio, on the firmware/dsp-<board> harness
# (release profile: opt-level 3, fat LTO), 320 samples pushed per call with push_i16, started from
# the host's tables. Per frame: (push + process) / frames; process alone as min / median /
# max. Ticks become instructions with each machine's factor measured above.
E=$W/edgeflow; mkdir -p "$E"
(cd "$ROOT" && cargo run -q --release -p edgeflow-dsp --example frontend_case -- \
  conformance/frontend/goldens/yes_micro_speech.toml \
  conformance/frontend/goldens/yes_micro_speech.in.i16 "$E") > "$E/case.txt"
cat "$E/case.txt"
WS=$(sed 's/.*workspace=\([0-9]*\).*/\1/' "$E/case.txt")
OUTB=$(sed 's/.*output=\([0-9]*\).*/\1/' "$E/case.txt")
printf 'frontend\t%s\t%s\tPcm\t320\t%s\n' "$E/pipeline.bin" "$E/input.i16" "$E/tables.bin" > "$E/cases.txt"
for BOARD in lm3s6965evb mps2-an386; do
  PER=$(sed -n 's/.*instr_per_tick_x1000=\([0-9]*\).*/\1/p' "$W/$BOARD/out.txt")
  (cd "$ROOT/firmware/dsp-$BOARD" && EDGEFLOW_DSP_CASES="$E/cases.txt" EDGEFLOW_DSP_WORKSPACE=$WS \
    EDGEFLOW_DSP_OUTPUT=$OUTB timeout 600 cargo run -q --release) > "$E/$BOARD.txt" 2>&1 || true
  L=$(grep '^dsp frontend ok' "$E/$BOARD.txt") || { echo "edgeflow $BOARD failed: $(tail -5 "$E/$BOARD.txt")"; exit 1; }
  v() { echo "$L" | sed -n "s/.* $1=\([0-9]*\).*/\1/p"; }
  N=$(v windows)
  grep '^dsp frontend out ' "$E/$BOARD.txt" | sed 's/^dsp frontend out //' | tr -d '\n' > "$E/$BOARD.hex"
  SAME=$(tr -d '\n' < "$E/host_out.hex" | cmp -s - "$E/$BOARD.hex" && echo bit-identical || echo DIFFERS)
  echo "edgeflow $BOARD: frames=$N per_frame=$(( ($(v push) + $(v process)) * PER / 1000 / N ))" \
    "process_mean=$(( $(v process) * PER / 1000 / N )) min=$(( $(v pmin) * PER / 1000 ))" \
    "median=$(( $(v pmed) * PER / 1000 )) max=$(( $(v pmax) * PER / 1000 ))" \
    "push_per_frame=$(( $(v push) * PER / 1000 / N )) init_from_tables=$(( $(v init_pre) * PER / 1000 ))" \
    "stack=$(v stack) device_vs_host=$SAME"
done
