/*
 * insn_count: a QEMU TCG plugin that counts the guest instructions a user-mode program
 * executes, and prints the total when the program exits:
 *
 *     insns=<total> threads=<vCPUs that executed anything>
 *
 * through QEMU's log (`-d plugin`), or appended to the file named by the plugin argument
 * `out=PATH` (one line per run). With `symbols=N` it also writes the N functions of the
 * main executable that executed the most instructions, one line each:
 *
 *     sym <instructions> <name>
 *
 * (a block is charged to the symbol of its first instruction, as QEMU resolves it from
 * the executable's symbol table; code in shared libraries and inlined functions are
 * charged to `?` and to their caller. A profile, for one-threaded programs: the
 * per-symbol sums are not kept per thread.)
 *
 * How it counts: when QEMU translates a block of guest code, the plugin registers a
 * callback for that block, carrying its instruction count; every execution of the block
 * adds the count to the executing vCPU's own counter (user mode: one vCPU per guest
 * thread), so threads never race on one counter. A block left early by an exception
 * (a fault, not a system call: `svc` ends a block) would still count in full; in
 * user-mode runs of ordinary programs that does not happen.
 *
 * ABI: QEMU's plugin API version 1 (QEMU 7.x). QEMU ships no header in Debian's
 * qemu-user package, so the few declarations used are written out below from the API's
 * documented signatures. Build: bench/aarch64_insns/build_plugin.sh (gcc -shared -fPIC).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the plugin API, version 1 (the parts this plugin uses) ---- */
typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t; /* only passed through, never read */
struct qemu_plugin_tb;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn;
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const char *qemu_plugin_insn_symbol(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_outs(const char *string);

#define EXPORT __attribute__((visibility("default")))
EXPORT int qemu_plugin_version = 1;

/* ---- the counter ---- */

/* Per-vCPU counters, each on its own cache line. vCPU indices past the table (a program
 * that starts more than MAX_VCPUS threads over its life) share one counter updated
 * atomically. */
#define MAX_VCPUS 1024
struct slot { uint64_t n; uint64_t pad[7]; };
static struct slot counts[MAX_VCPUS];
static uint64_t overflow;
static const char *out_path;

/* The profile (symbols=N): QEMU's symbol names are stable strings, so a symbol is its
 * pointer; index 0 is "no symbol". */
#define MAX_SYMS 65536
static const char *sym_names[MAX_SYMS];
static uint64_t sym_counts[MAX_SYMS];
static unsigned n_syms = 1;
static unsigned top_syms;

static unsigned sym_index(const char *name)
{
    if (!name) {
        return 0;
    }
    for (unsigned i = 1; i < n_syms; i++) {
        if (sym_names[i] == name) {
            return i;
        }
    }
    if (n_syms == MAX_SYMS) {
        return 0;
    }
    sym_names[n_syms] = name;
    return n_syms++;
}

static void on_exec(unsigned int vcpu, void *udata)
{
    uint64_t n = (uint64_t)(uintptr_t)udata & 0xffffffffu;
    sym_counts[(uint64_t)(uintptr_t)udata >> 32] += n;
    if (vcpu < MAX_VCPUS) {
        counts[vcpu].n += n;
    } else {
        __atomic_fetch_add(&overflow, n, __ATOMIC_RELAXED);
    }
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    uint64_t n = qemu_plugin_tb_n_insns(tb);
    uint64_t sym = top_syms ? sym_index(qemu_plugin_insn_symbol(qemu_plugin_tb_get_insn(tb, 0))) : 0;
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_exec, QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)(sym << 32 | n));
}

static void report_at_exit(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
    uint64_t total = __atomic_load_n(&overflow, __ATOMIC_RELAXED);
    unsigned threads = total ? 1 : 0;
    for (unsigned i = 0; i < MAX_VCPUS; i++) {
        total += counts[i].n;
        threads += counts[i].n != 0;
    }
    char line[512];
    FILE *f = out_path ? fopen(out_path, "a") : NULL;
    if (out_path && !f) {
        qemu_plugin_outs("insn_count: cannot open the out= file; the count follows\n");
    }
    snprintf(line, sizeof line, "insns=%llu threads=%u\n", (unsigned long long)total, threads);
    f ? (void)fputs(line, f) : qemu_plugin_outs(line);
    sym_names[0] = "?";
    for (unsigned k = 0; k < top_syms; k++) {
        unsigned best = 0;
        for (unsigned i = 1; i < n_syms; i++) {
            if (sym_counts[i] > sym_counts[best]) {
                best = i;
            }
        }
        if (sym_counts[best] == 0) {
            break;
        }
        snprintf(line, sizeof line, "sym %llu %s\n", (unsigned long long)sym_counts[best], sym_names[best]);
        f ? (void)fputs(line, f) : qemu_plugin_outs(line);
        sym_counts[best] = 0;
    }
    if (f) {
        fclose(f);
    }
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0 && argv[i][4] != '\0') {
            out_path = argv[i] + 4;
        } else if (strncmp(argv[i], "symbols=", 8) == 0 && atoi(argv[i] + 8) > 0) {
            top_syms = (unsigned)atoi(argv[i] + 8);
        } else {
            fprintf(stderr, "insn_count: unknown argument '%s' (they are out=PATH and symbols=N)\n", argv[i]);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, report_at_exit, NULL);
    return 0;
}
