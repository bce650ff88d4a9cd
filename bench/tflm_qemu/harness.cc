// Bare-metal harness for QEMU mps2-an386 (Cortex-M4F) that runs one .tflite in TensorFlow Lite
// Micro and reports, over Arm semihosting, the instructions each Invoke() retires and the
// output tensor's bytes. Written for edgeflow's bench/tflm_qemu/run.sh; the model, its input
// and the op resolver's registrations come from model_data.cc, which run.sh generates
// (gen.py) from the .tflite.
//
// Instructions: SysTick runs on the core clock and, under `qemu -icount shift=0`, advances
// one tick per 40 retired instructions on mps2-an386 (25 MHz); a calibration loop of known
// length measures that factor first, so the figure does not rest on it. Each Invoke is timed
// from the tick count before the call to the count after it, like TFLM's own figures in
// ../shared/benchmarks/mlperf-tiny/README.md (one model, op resolver with only its ops).
//
// Output lines (one each):
//   tflm arena_used_bytes=N instr_per_tick_x1000=N
//   tflm invoke I instr=N                 (I = 0 .. RUNS-1)
//   tflm output T bytes=N hex=...         (T = output tensor index)
//   tflm done | tflm error <what>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

// From model_data.cc (generated).
extern const unsigned char g_model[];
extern const unsigned char g_input[];
extern const unsigned int g_input_len;
// Registers the model's ops (and only those) in the resolver; returns the count or -1.
int RegisterModelOps(tflite::MicroMutableOpResolver<32>& r);

#ifndef ARENA_BYTES
#define ARENA_BYTES (512 * 1024)
#endif
#ifndef RUNS
#define RUNS 3
#endif

namespace {
int semi(int op, const void* arg) {
  register int r0 __asm__("r0") = op;
  register const void* r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}
void puts_(const char* s) { semi(0x04, s); }
void putu(uint32_t v) {
  char b[12];
  int i = 11;
  b[i] = 0;
  do {
    b[--i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v);
  puts_(b + i);
}
void exit_(bool ok) {
  // SYS_EXIT with ADP_Stopped_ApplicationExit (0x20026) or ADP_Stopped_RunTimeErrorUnknown.
  semi(0x18, reinterpret_cast<const void*>(ok ? 0x20026 : 0x20023));
  for (;;) {
  }
}
void fail(const char* what) {
  puts_("tflm error ");
  puts_(what);
  puts_("\n");
  exit_(false);
}

volatile uint32_t& SYST_CSR = *reinterpret_cast<volatile uint32_t*>(0xE000E010);
volatile uint32_t& SYST_RVR = *reinterpret_cast<volatile uint32_t*>(0xE000E014);
volatile uint32_t& SYST_CVR = *reinterpret_cast<volatile uint32_t*>(0xE000E018);
volatile uint32_t wraps;
uint64_t now() {
  for (;;) {
    uint32_t w1 = wraps, v = SYST_CVR, w2 = wraps;
    if (w1 == w2) return static_cast<uint64_t>(w1) * 0x1000000u + (0xFFFFFFu - v);
  }
}

alignas(16) uint8_t arena[ARENA_BYTES];
}  // namespace

extern "C" void SysTick_Handler(void) { wraps = wraps + 1; }

int main() {
  SYST_RVR = 0xFFFFFF;
  SYST_CVR = 0;
  SYST_CSR = 7;
  while (SYST_CVR == 0) {
  }
  // Calibration: 1,000,000 iterations of `subs; bne` = 2,000,000 instructions.
  uint32_t n = 1000000;
  uint64_t c0 = now();
  __asm__ volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n));
  uint64_t cal = now() - c0;
  uint64_t per_tick_milli = 2000000000ull / cal;

  const tflite::Model* model = tflite::GetModel(g_model);
  if (model->version() != TFLITE_SCHEMA_VERSION) fail("schema version");
  tflite::MicroMutableOpResolver<32> resolver;
  if (RegisterModelOps(resolver) < 0) fail("op registration");
  tflite::MicroInterpreter interpreter(model, resolver, arena, ARENA_BYTES);
  if (interpreter.AllocateTensors() != kTfLiteOk) fail("AllocateTensors");
  if (interpreter.inputs_size() != 1) fail("the harness feeds one input tensor");
  TfLiteTensor* in = interpreter.input(0);
  if (in->bytes != g_input_len) fail("input byte count differs from the input tensor's");
  puts_("tflm arena_used_bytes=");
  putu(static_cast<uint32_t>(interpreter.arena_used_bytes()));
  puts_(" instr_per_tick_x1000=");
  putu(static_cast<uint32_t>(per_tick_milli));
  puts_("\n");
  for (int r = 0; r < RUNS; r++) {
    // The input is copied before each run, outside the timed span (as edgeflow's harness).
    memcpy(in->data.raw, g_input, g_input_len);
    uint64_t t0 = now();
    TfLiteStatus s = interpreter.Invoke();
    uint64_t d = now() - t0;
    if (s != kTfLiteOk) fail("Invoke");
    puts_("tflm invoke ");
    putu(static_cast<uint32_t>(r));
    puts_(" ticks=");
    putu(static_cast<uint32_t>(d));
    puts_(" instr=");
    putu(static_cast<uint32_t>(d * per_tick_milli / 1000));
    puts_("\n");
  }
  static const char hex[] = "0123456789abcdef";
  for (size_t t = 0; t < interpreter.outputs_size(); t++) {
    TfLiteTensor* out = interpreter.output(t);
    puts_("tflm output ");
    putu(static_cast<uint32_t>(t));
    puts_(" bytes=");
    putu(static_cast<uint32_t>(out->bytes));
    puts_(" hex=");
    char buf[65];
    size_t k = 0;
    for (size_t i = 0; i < out->bytes; i++) {
      buf[k++] = hex[out->data.uint8[i] >> 4];
      buf[k++] = hex[out->data.uint8[i] & 15];
      if (k == 64) {
        buf[k] = 0;
        puts_(buf);
        k = 0;
      }
    }
    buf[k] = 0;
    puts_(buf);
    puts_("\n");
  }
  puts_("tflm done\n");
  exit_(true);
}

// ---- start-up: vector table, reset handler (C runtime init), FPU enable ----
extern "C" {
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern void (*__preinit_array_start[])(void), (*__preinit_array_end[])(void);
extern void (*__init_array_start[])(void), (*__init_array_end[])(void);
void Reset_Handler(void) {
  uint32_t* s = &_sidata;
  uint32_t* d = &_sdata;
  while (d < &_edata) *d++ = *s++;
  for (d = &_sbss; d < &_ebss;) *d++ = 0;
  // CPACR: full access to CP10/CP11 (the FPU), before any float instruction.
  *reinterpret_cast<volatile uint32_t*>(0xE000ED88) |= 0xFu << 20;
  __asm__ volatile("dsb\n isb");
  for (auto f = __preinit_array_start; f < __preinit_array_end; f++) (*f)();
  for (auto f = __init_array_start; f < __init_array_end; f++) (*f)();
  main();
  for (;;) {
  }
}
static void Fault_Handler(void) { fail("fault"); }
static void Default_Handler(void) {
  for (;;) {
  }
}
__attribute__((section(".isr_vector"), used)) void* const vectors[16] = {
    &_estack,
    reinterpret_cast<void*>(Reset_Handler),
    reinterpret_cast<void*>(Default_Handler),  // NMI
    reinterpret_cast<void*>(Fault_Handler),    // HardFault
    reinterpret_cast<void*>(Fault_Handler),    // MemManage
    reinterpret_cast<void*>(Fault_Handler),    // BusFault
    reinterpret_cast<void*>(Fault_Handler),    // UsageFault
    nullptr, nullptr, nullptr, nullptr,
    reinterpret_cast<void*>(Default_Handler),  // SVCall
    reinterpret_cast<void*>(Default_Handler),  // DebugMonitor
    nullptr,
    reinterpret_cast<void*>(Default_Handler),  // PendSV
    reinterpret_cast<void*>(SysTick_Handler)};
// Nothing here allocates; newlib's stubs want these symbols to link.
void* _sbrk(int) { return reinterpret_cast<void*>(-1); }
void __cxa_pure_virtual(void) { fail("pure virtual call"); }
}
