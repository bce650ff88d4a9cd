#!/bin/sh
# Instructions per MFCC frame of CMSIS-DSP on QEMU mps2-an386 (Cortex-M4F), two ways, with
# the parameters of edgeflow's KWS pipeline (crates/edgeflow-dsp/pipelines/kws_mfcc.toml):
# 16 kHz, 512-sample frame = 512-point real FFT, periodic Hann window, 40 Slaney mel bands
# (librosa `filters.mel`: fmin 20 Hz, fmax 8000 Hz, Slaney area norm; 490 weights), 10 DCT
# outputs:
#   (a) arm_mfcc_f32;
#   (b) the MFCC edgeflow computes, composed from CMSIS-DSP building blocks: the frame copy
#       fused with the window (arm_mult_f32), arm_rfft_fast_f32, arm_cmplx_mag_squared_f32
#       on the 257 bins, mel as per-band arm_dot_prod_f32 over the non-zero weights, floor
#       (arm_clip_f32), arm_vlog_f32, DCT (x 10/ln 10) with arm_mat_vec_mult_f32; frame 0
#       is checked against a double-precision direct DFT.
# The tables are computed in double precision in the harness, as edgeflow and librosa
# design them (CMSIS's Scripts/GenMFCCDataForCPP.py only makes HTK filters); the costs
# depend on their sizes only. Same run conditions as `cargo xtask bench-dsp`:
# `-icount shift=0`, SysTick on the core clock, instructions = 40 x ticks. Every object
# and the link use -flto (edgeflow's firmware uses fat LTO; LTO= on the command line turns
# it off). Timed per frame: the frame copy out of the pre-emphasised buffer and the MFCC,
# writing the stacked output (what edgeflow's `process` does); printed as mean, min,
# median and max over the 49 frames. The caller's front end (int16 -> float, pre-emphasis
# 0.97) is timed separately.
#
# usage: bench/cmsis_mfcc/run.sh CMSIS_DSP_DIR CMSIS_CORE_INCLUDE_DIR
#   CMSIS_DSP_DIR          a directory with CMSIS-DSP's Include/, PrivateInclude/, Source/:
#                          a checkout of github.com/ARM-software/CMSIS-DSP, or the unpacked
#                          PyPI source distribution of `cmsisdsp` (it carries them):
#                            pip download --no-deps --no-binary cmsisdsp cmsisdsp==1.10.3
#   CMSIS_CORE_INCLUDE_DIR CMSIS/Core/Include of github.com/ARM-software/CMSIS_6 (no
#                          package registry carries these headers; supply a checkout)
# needs: gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm (Debian packages).
set -eu
DSP=$(cd "$1" && pwd); CORE=$(cd "$2" && pwd)
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
cat > "$W/link.ld" <<'LD'
MEMORY { FLASH (rx) : ORIGIN = 0x00000000, LENGTH = 4096K
         RAM (rwx)  : ORIGIN = 0x20000000, LENGTH = 4096K }
_estack = ORIGIN(RAM) + LENGTH(RAM);
SECTIONS {
  .text : { KEEP(*(.isr_vector)) *(.text*) *(.rodata*) . = ALIGN(4); } > FLASH
  .ARM.exidx : { *(.ARM.exidx*) } > FLASH
  _sidata = LOADADDR(.data);
  .data : { _sdata = .; *(.data*) . = ALIGN(4); _edata = .; } > RAM AT > FLASH
  .bss (NOLOAD) : { _sbss = .; *(.bss*) *(COMMON) . = ALIGN(4); _ebss = .; } > RAM
}
LD
cat > "$W/harness.c" <<'C'
/* Times each arm_mfcc_f32 call with SysTick (see the comment at the top of run.sh). */
#include <math.h>
#include <stdint.h>
#include "arm_math.h"

#define RATE 16000.0
#define NFFT 512
#define BINS (NFFT / 2 + 1)
#define BANDS 40
#define NDCT 10
#define HOP 320
#define NSAMP 16000
#define FRAMES ((NSAMP - NFFT) / HOP + 1)

/* ---- semihosting ---- */
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

/* ---- SysTick ---- */
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

/* ---- tables (double precision, as librosa / edgeflow design them) ---- */
static float32_t window[NFFT], dct[NDCT * BANDS], coefs[2 * BINS];
static uint32_t fpos[BANDS], flen[BANDS];

static double hz_to_mel(double f) {
  const double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp,
               logstep = log(6.4) / 27.0;
  return f >= min_log_hz ? min_log_mel + log(f / min_log_hz) / logstep : f / f_sp;
}
static double mel_to_hz(double m) {
  const double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp,
               logstep = log(6.4) / 27.0;
  return m >= min_log_mel ? min_log_hz * exp(logstep * (m - min_log_mel)) : f_sp * m;
}
static uint32_t make_tables(void) {
  for (int i = 0; i < NFFT; i++) window[i] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * i / NFFT));
  for (int i = 0; i < NDCT; i++)
    for (int j = 0; j < BANDS; j++)
      dct[i * BANDS + j] = (float)(cos(M_PI * i * (2 * j + 1) / (2.0 * BANDS)) *
                                   sqrt((i == 0 ? 1.0 : 2.0) / BANDS));
  double lo_m = hz_to_mel(20.0), hi_m = hz_to_mel(8000.0), edge[BANDS + 2];
  for (int i = 0; i < BANDS + 2; i++)
    edge[i] = mel_to_hz(i == BANDS + 1 ? hi_m : lo_m + (hi_m - lo_m) * i / (BANDS + 1));
  uint32_t used = 0;
  for (int b = 0; b < BANDS; b++) {
    double lo = edge[b], mid = edge[b + 1], hi = edge[b + 2], enorm = 2.0 / (hi - lo);
    fpos[b] = 0; flen[b] = 0;
    for (int k = 0; k < BINS; k++) {
      double f = k * RATE / NFFT;
      if (f <= lo || f >= hi) continue;
      double rise = (f - lo) / (mid - lo), fall = (hi - f) / (hi - mid), w = rise < fall ? rise : fall;
      if (w <= 0.0) continue;
      if (flen[b] == 0) fpos[b] = k;
      coefs[used++] = (float)(w * enorm);
      flen[b]++;
    }
  }
  return used;
}

/* ---- the signal: the same shape as edgeflow's synthetic_audio (single precision) ---- */
static int16_t audio[NSAMP];
static uint64_t rng = 0x5eed;
static float rnd(void) {
  rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
  return ((float)(rng >> 40) / (float)(1u << 24)) * 2.0f - 1.0f;
}

static float32_t src[NFFT], tmp[2 * NFFT + 2], out[FRAMES][NDCT], out2[FRAMES][NDCT];
static float32_t emph[NSAMP], power[BINS], mel[BANDS], dct_db[NDCT * BANDS];
static uint32_t ticks[FRAMES];

/* min / median / max of the per-frame ticks, printed as instructions (40 per tick) */
static void stats(const char *name, uint64_t total) {
  for (int i = 1; i < FRAMES; i++) /* insertion sort */
    for (int j = i; j > 0 && ticks[j - 1] > ticks[j]; j--) {
      uint32_t t = ticks[j]; ticks[j] = ticks[j - 1]; ticks[j - 1] = t;
    }
  puts_(name);
  puts_(" mean="); putu((uint32_t)(total * 40 / FRAMES));
  puts_(" min="); putu(ticks[0] * 40);
  puts_(" median="); putu(ticks[FRAMES / 2] * 40);
  puts_(" max="); putu(ticks[FRAMES - 1] * 40);
}

/* Frame 0 of the composed pipeline in double precision (direct DFT), to show that the
   composed chain computes the MFCC it claims to: returns max |difference| in 1/1000000 dB (micro-dB). */
static uint32_t check_composed(void) {
  static double x[NFFT], p[BINS], m[BANDS];
  for (int i = 0; i < NFFT; i++) x[i] = (double)emph[i] * (0.5 - 0.5 * cos(2.0 * M_PI * i / NFFT));
  for (int k = 0; k < BINS; k++) {
    double wr = cos(2.0 * M_PI * k / NFFT), wi = -sin(2.0 * M_PI * k / NFFT), cr = 1.0, ci = 0.0,
           re = 0.0, im = 0.0;
    for (int i = 0; i < NFFT; i++) {
      re += x[i] * cr; im += x[i] * ci;
      double t = cr * wr - ci * wi; ci = cr * wi + ci * wr; cr = t;
    }
    p[k] = re * re + im * im;
  }
  for (int b = 0, off = 0; b < BANDS; off += flen[b], b++) {
    m[b] = 0.0;
    for (uint32_t j = 0; j < flen[b]; j++) m[b] += p[fpos[b] + j] * coefs[off + j];
    m[b] = 10.0 * log10(m[b] > 1e-10 ? m[b] : 1e-10);
  }
  double worst = 0.0;
  for (int i = 0; i < NDCT; i++) {
    double c = 0.0;
    for (int j = 0; j < BANDS; j++) c += dct[i * BANDS + j] * m[j];
    double d = fabs(c - out2[0][i]);
    if (d > worst) worst = d;
  }
  return (uint32_t)(worst * 1e6);
}

int main(void) {
  SYST_RVR = 0xFFFFFF; SYST_CVR = 0; SYST_CSR = 7; /* core clock, interrupt, enable */
  for (int i = 0; i < NSAMP; i++) {
    float t = i / 16000.0f, f0 = 120.0f + 80.0f * sinf(2.0f * (float)M_PI * 0.7f * t);
    float ph = 2.0f * (float)M_PI * f0 * t;
    float v = 0.4f * sinf(ph) + 0.2f * sinf(2.0f * ph) + 0.1f * sinf(3.0f * ph);
    v *= 0.5f + 0.5f * fabsf(sinf(2.0f * (float)M_PI * 2.0f * t));
    audio[i] = (int16_t)((v + 0.02f * rnd()) * 20000.0f);
  }
  uint32_t weights = make_tables();
  /* The composed chain's DCT matrix carries the dB factor: 10 log10(x) = (10 / ln 10) ln(x). */
  for (int i = 0; i < NDCT * BANDS; i++) dct_db[i] = (float)(dct[i] * (10.0 / log(10.0)));
  arm_mfcc_instance_f32 S;
  uint64_t t0 = now();
  arm_status st = arm_mfcc_init_512_f32(&S, BANDS, NDCT, dct, fpos, flen, coefs, window);
  uint64_t init = now() - t0;
  if (st != ARM_MATH_SUCCESS) puts_("init failed\n");
  arm_rfft_fast_instance_f32 R;
  if (arm_rfft_fast_init_512_f32(&R) != ARM_MATH_SUCCESS) puts_("rfft init failed\n");
  arm_matrix_instance_f32 D;
  arm_mat_init_f32(&D, NDCT, BANDS, dct_db);

  /* Front end, timed separately and the same for both: int16 -> [-1, 1) and pre-emphasis
     (0.97) of the HOP new samples (the whole first frame) into `emph`, which plays the part
     of edgeflow's ring buffer. */
  uint64_t front = 0;
  float prev = 0.0f;
  for (int f = 0; f < FRAMES; f++) {
    uint64_t a = now();
    int first = f == 0 ? 0 : NFFT + (f - 1) * HOP, last = NFFT + f * HOP;
    for (int i = first; i < last; i++) {
      float x = audio[i] * 3.0517578125e-05f;
      emph[i] = x - 0.97f * prev;
      prev = x;
    }
    front += now() - a;
  }

  /* (a) arm_mfcc_f32. Timed: the frame copy out of `emph` (arm_mfcc_f32 works in place)
     and the call, which writes the frame's coefficients into the stacked output. */
  uint64_t total = 0;
  for (int f = 0; f < FRAMES; f++) {
    uint64_t t = now();
    memcpy(src, &emph[f * HOP], sizeof src);
    arm_mfcc_f32(&S, src, out[f], tmp);
    uint64_t d = now() - t;
    ticks[f] = (uint32_t)d;
    total += d;
  }
  puts_("cmsis_mfcc frames="); putu(FRAMES);
  puts_(" mel_weights="); putu(weights);
  puts_(" init_instr="); putu((uint32_t)(init * 40));
  puts_(" front_instr_per_frame="); putu((uint32_t)(front * 40 / FRAMES));
  stats(" | arm_mfcc_f32", total);

  /* (b) the same MFCC composed from CMSIS-DSP building blocks, as edgeflow computes it
     (power spectrum, dB with a 1e-10 floor). Timed: the frame copy fused with the window
     (arm_mult_f32 out of `emph`), the real FFT, |X|^2 on the 257 bins used, each mel band
     as a dot product over its non-zero weights (the sparse mat-vec arm_mfcc_f32 uses),
     the floor, ln, and the DCT as a matrix-vector product writing the stacked output. */
  total = 0;
  for (int f = 0; f < FRAMES; f++) {
    uint64_t t = now();
    arm_mult_f32(&emph[f * HOP], window, src, NFFT);
    arm_rfft_fast_f32(&R, src, tmp, 0);
    power[0] = tmp[0] * tmp[0];          /* DC: real, packed in tmp[0] */
    power[NFFT / 2] = tmp[1] * tmp[1];   /* Nyquist: real, packed in tmp[1] */
    arm_cmplx_mag_squared_f32(tmp + 2, power + 1, NFFT / 2 - 1);
    const float32_t *c = coefs;
    for (int b = 0; b < BANDS; b++) {
      arm_dot_prod_f32(power + fpos[b], c, flen[b], &mel[b]);
      c += flen[b];
    }
    arm_clip_f32(mel, mel, 1e-10f, 3.0e38f, BANDS);
    arm_vlog_f32(mel, mel, BANDS);
    arm_mat_vec_mult_f32(&D, mel, out2[f]);
    uint64_t d = now() - t;
    ticks[f] = (uint32_t)d;
    total += d;
  }
  stats(" | composed", total);
  puts_(" composed_vs_f64_frame0_max_err_udB="); putu(check_composed());
  puts_("\nmfcc[0] =");
  for (int i = 0; i < NDCT; i++) { puts_(" "); putu((uint32_t)(int32_t)(out[0][i] * 1000.0f)); }
  puts_("\n");
  semi(0x18, (const void *)0x20026); /* SYS_EXIT, ADP_Stopped_ApplicationExit */
  for (;;) {}
}

/* ---- startup ---- */
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
void Reset_Handler(void) {
  uint32_t *s = &_sidata, *d = &_sdata;
  while (d < &_edata) *d++ = *s++;
  for (d = &_sbss; d < &_ebss;) *d++ = 0;
  *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20; /* CPACR: CP10, CP11 full access */
  __asm__ volatile("dsb\n isb");
  main();
  for (;;) {}
}
static void Default_Handler(void) { for (;;) {} }
__attribute__((section(".isr_vector"), used)) static void *const vectors[16] = {
    &_estack, Reset_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, 0, 0, 0, 0, Default_Handler, Default_Handler, 0, Default_Handler,
    SysTick_Handler};
C
ARCH="-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16"
SRCS="TransformFunctions/arm_mfcc_f32.c TransformFunctions/arm_mfcc_init_f32.c
TransformFunctions/arm_rfft_fast_f32.c TransformFunctions/arm_rfft_fast_init_f32.c
TransformFunctions/arm_cfft_f32.c TransformFunctions/arm_cfft_init_f32.c
TransformFunctions/arm_cfft_radix8_f32.c TransformFunctions/arm_bitreversal2.c
CommonTables/arm_common_tables.c CommonTables/arm_const_structs.c
StatisticsFunctions/arm_absmax_f32.c BasicMathFunctions/arm_scale_f32.c
BasicMathFunctions/arm_mult_f32.c BasicMathFunctions/arm_offset_f32.c
BasicMathFunctions/arm_dot_prod_f32.c ComplexMathFunctions/arm_cmplx_mag_f32.c
ComplexMathFunctions/arm_cmplx_mag_squared_f32.c BasicMathFunctions/arm_clip_f32.c
MatrixFunctions/arm_mat_init_f32.c
FastMathFunctions/arm_vlog_f32.c MatrixFunctions/arm_mat_vec_mult_f32.c"
arm-none-eabi-gcc --version | head -1
LTO=${LTO--flto}  # edgeflow builds its firmware with fat LTO; LTO= turns it off
for OPT in "-O3 -ffast-math -DARM_MATH_LOOPUNROLL" "-O3 -ffast-math" "-O2 -DARM_MATH_LOOPUNROLL" \
           "-O3 -DARM_MATH_LOOPUNROLL"; do
  O=$W/build; rm -rf "$O"; mkdir -p "$O"
  for f in $SRCS; do
    arm-none-eabi-gcc $ARCH $OPT $LTO -DDISABLEFLOAT16 -ffunction-sections -fdata-sections \
      -I"$DSP/Include" -I"$DSP/PrivateInclude" -I"$CORE" -c "$DSP/Source/$f" -o "$O/$(basename "$f" .c).o"
  done
  arm-none-eabi-gcc $ARCH $OPT $LTO -DDISABLEFLOAT16 -I"$DSP/Include" -I"$CORE" -nostartfiles \
    -T"$W/link.ld" -Wl,--gc-sections "$W/harness.c" "$O"/*.o -lm -lc -lgcc -o "$O/mfcc.elf"
  printf '%s: ' "$OPT"
  timeout 300 qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -icount shift=0 -nographic \
    -monitor none -serial none -semihosting-config enable=on,target=native -kernel "$O/mfcc.elf" \
    > "$O/out.txt" 2>&1
  head -1 "$O/out.txt"
  grep -q "composed_vs_f64" "$O/out.txt" || { echo "harness failed: $(cat "$O/out.txt")"; exit 1; }
done
