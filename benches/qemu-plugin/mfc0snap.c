/*
 * mfc0snap: a QEMU TCG plugin (plugin API version 1, as in QEMU 7.2) that counts every
 * guest instruction executed and records the running count each time the guest reads
 * CP0 Count (`mfc0 rt, $9, 0`). The benchmark firmware brackets each measured region
 * with such reads, so the difference between two records is the exact number of
 * instructions executed between them. At exit the records go to stderr, one a line:
 *
 *     mfc0snap: snap K pc=0xPC insns=N
 *     mfc0snap: total insns=N snaps=K
 *
 * QEMU packages ship no plugin header, so the few declarations used are written out
 * here (they match include/qemu/qemu-plugin.h of API version 1).
 *
 * Build: gcc -shared -fPIC -O2 -o libmfc0snap.so mfc0snap.c
 * Use:   qemu-system-mipsel ... -icount shift=0,sleep=off -plugin ./libmfc0snap.so
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- plugin API, version 1 ---------------------------------------------------- */
typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t; /* only passed through */
struct qemu_plugin_tb;
struct qemu_plugin_insn;

enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS = 0 };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 = 0 };

typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id,
                                               struct qemu_plugin_tb *tb);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
                                           qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb,
                                    void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb,
                                                 size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn,
                                                enum qemu_plugin_op op, void *ptr,
                                                uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
                                            qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags,
                                            void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

/* ---- state ---------------------------------------------------------------------- */

/* Instructions executed so far (Malta has one vCPU, so one counter is exact). */
static uint64_t insns;

struct snap {
    uint64_t pc;
    uint64_t insns;
};
static struct snap *snaps;
static size_t n_snaps, cap_snaps;
static int snaps_lost;

/* MIPS32 `mfc0 rt, $9, 0`: COP0 (010000), MF (00000), any rt, rd = 9, sel = 0. */
static int is_mfc0_count(uint32_t w)
{
    return (w & 0xffe0ffffu) == 0x40004800u;
}

static void on_mfc0(unsigned int vcpu, void *pc)
{
    (void)vcpu;
    if (n_snaps == cap_snaps) {
        size_t cap = cap_snaps ? cap_snaps * 2 : 256;
        struct snap *s = realloc(snaps, cap * sizeof *s);
        if (!s) {
            snaps_lost = 1;
            return;
        }
        snaps = s;
        cap_snaps = cap;
    }
    snaps[n_snaps].pc = (uint64_t)(uintptr_t)pc;
    snaps[n_snaps].insns = insns;
    n_snaps++;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        /* Count first, then look at the instruction: a snapshot taken at an mfc0 then
           always includes that mfc0 or always excludes it, whatever order QEMU runs
           the two in, so differences between snapshots are exact either way. */
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
                                                   &insns, 1);
        if (qemu_plugin_insn_size(insn) != 4) {
            continue;
        }
        uint32_t w;
        memcpy(&w, qemu_plugin_insn_data(insn), 4); /* guest and host: little-endian */
        if (is_mfc0_count(w)) {
            uint64_t pc = qemu_plugin_insn_vaddr(insn);
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mfc0, QEMU_PLUGIN_CB_NO_REGS,
                                                   (void *)(uintptr_t)pc);
        }
    }
}

static void at_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    for (size_t i = 0; i < n_snaps; i++) {
        fprintf(stderr, "mfc0snap: snap %zu pc=0x%08llx insns=%llu\n", i,
                (unsigned long long)(snaps[i].pc & 0xffffffffu),
                (unsigned long long)snaps[i].insns);
    }
    fprintf(stderr, "mfc0snap: total insns=%llu snaps=%zu%s\n", (unsigned long long)insns,
            n_snaps, snaps_lost ? " LOST" : "");
    fflush(stderr);
}

__attribute__((visibility("default"))) int
qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    (void)argc;
    (void)argv;
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
