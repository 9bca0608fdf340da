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
 * Profile mode (`cargo xtask bench-target --profile NAME`): with the arguments
 * `profile=FILE` and one or more `window=FROM:TO` (snapshot numbers K, as above), the
 * plugin also counts how often each instruction address executes while a window is
 * open: from just after snapshot FROM's mfc0 to that of snapshot TO, inclusive, the
 * same instructions as TO's count minus FROM's. At exit it writes the histogram to FILE,
 * one `0xPC N` line per address executed, after a `# windows=K` line. Without these
 * arguments nothing of this is registered: the normal mode runs as before.
 *
 * Build: gcc -shared -fPIC -O2 -o libmfc0snap.so mfc0snap.c
 * Use:   qemu-system-mipsel ... -icount shift=0,sleep=off -plugin ./libmfc0snap.so
 *        (profile: -plugin ./libmfc0snap.so,profile=FILE,window=FROM:TO)
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

/* ---- profile mode ---------------------------------------------------------------- */

/* One instruction address: how often it ran inside a window. Entries never move, so the
   translator hands each instruction's callback a pointer to its own. */
struct pc_count {
    uint64_t pc;
    uint64_t n;
};

/* Open-addressing hash table of entry pointers, keyed by address; entries come from
   chunks that are never freed or moved. */
static struct pc_count **table;
static size_t table_cap, table_len;
#define CHUNK 4096
static struct pc_count *chunk;
static size_t chunk_used = CHUNK;

struct window {
    uint64_t from, to;
};
static const char *profile_path;
static struct window *windows;
static size_t n_windows;
static int profile_lost;
/* Inside a window. */
static int active;

static size_t slot_of(uint64_t pc, size_t cap)
{
    return (size_t)((pc >> 2) * 0x9E3779B97F4A7C15ull) & (cap - 1);
}

static int table_grow(void)
{
    size_t cap = table_cap ? table_cap * 2 : 1 << 14;
    struct pc_count **t = calloc(cap, sizeof *t);
    if (!t) {
        return 0;
    }
    for (size_t i = 0; i < table_cap; i++) {
        if (table[i]) {
            size_t j = slot_of(table[i]->pc, cap);
            while (t[j]) {
                j = (j + 1) & (cap - 1);
            }
            t[j] = table[i];
        }
    }
    free(table);
    table = t;
    table_cap = cap;
    return 1;
}

/* The entry of `pc`, made on first sight; NULL if out of memory. */
static struct pc_count *entry_of(uint64_t pc)
{
    if (2 * (table_len + 1) > table_cap && !table_grow()) {
        return NULL;
    }
    size_t j = slot_of(pc, table_cap);
    while (table[j]) {
        if (table[j]->pc == pc) {
            return table[j];
        }
        j = (j + 1) & (table_cap - 1);
    }
    if (chunk_used == CHUNK) {
        chunk = calloc(CHUNK, sizeof *chunk);
        if (!chunk) {
            return NULL;
        }
        chunk_used = 0;
    }
    struct pc_count *e = &chunk[chunk_used++];
    e->pc = pc;
    table[j] = e;
    table_len++;
    return e;
}

static void on_insn_profile(unsigned int vcpu, void *entry)
{
    (void)vcpu;
    if (active) {
        ((struct pc_count *)entry)->n++;
    }
}

/* MIPS32 `mfc0 rt, $9, 0`: COP0 (010000), MF (00000), any rt, rd = 9, sel = 0. */
static int is_mfc0_count(uint32_t w)
{
    return (w & 0xffe0ffffu) == 0x40004800u;
}

static void record_snap(uint64_t pc)
{
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
    snaps[n_snaps].pc = pc;
    snaps[n_snaps].insns = insns;
    n_snaps++;
}

static void on_mfc0(unsigned int vcpu, void *pc)
{
    (void)vcpu;
    record_snap((uint64_t)(uintptr_t)pc);
}

/* Profile mode's mfc0: counted like any instruction (so the one that closes a window is
   in it and the one that opens it is not), then a snapshot, then the windows. Snapshot
   numbers are the same as in the normal mode as long as no snapshot is lost. */
static void on_mfc0_profile(unsigned int vcpu, void *entry)
{
    struct pc_count *e = entry;
    on_insn_profile(vcpu, e);
    record_snap(e->pc);
    uint64_t k = (uint64_t)n_snaps - 1;
    /* Closing first: a window may open where another closes. */
    for (size_t i = 0; i < n_windows; i++) {
        if (k == windows[i].to) {
            active = 0;
        }
    }
    for (size_t i = 0; i < n_windows; i++) {
        if (k == windows[i].from) {
            active = 1;
        }
    }
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
        uint32_t w = 0;
        if (qemu_plugin_insn_size(insn) == 4) {
            memcpy(&w, qemu_plugin_insn_data(insn), 4); /* guest and host: little-endian */
        }
        if (profile_path) {
            struct pc_count *e = entry_of(qemu_plugin_insn_vaddr(insn));
            if (!e) {
                profile_lost = 1;
                continue;
            }
            qemu_plugin_register_vcpu_insn_exec_cb(
                insn, is_mfc0_count(w) ? on_mfc0_profile : on_insn_profile,
                QEMU_PLUGIN_CB_NO_REGS, e);
        } else if (is_mfc0_count(w)) {
            uint64_t pc = qemu_plugin_insn_vaddr(insn);
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mfc0, QEMU_PLUGIN_CB_NO_REGS,
                                                   (void *)(uintptr_t)pc);
        }
    }
}

static void write_profile(void)
{
    FILE *f = fopen(profile_path, "w");
    if (!f) {
        fprintf(stderr, "mfc0snap: cannot write %s\n", profile_path);
        return;
    }
    fprintf(f, "# windows=%zu%s\n", n_windows, profile_lost ? " LOST" : "");
    for (size_t i = 0; i < table_cap; i++) {
        if (table[i] && table[i]->n) {
            fprintf(f, "0x%08llx %llu\n", (unsigned long long)(table[i]->pc & 0xffffffffu),
                    (unsigned long long)table[i]->n);
        }
    }
    fclose(f);
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
    if (profile_path) {
        write_profile();
    }
    fflush(stderr);
}

/* `window=FROM:TO`; 0 if malformed. */
static int add_window(const char *v)
{
    char *end;
    unsigned long long from = strtoull(v, &end, 10);
    if (end == v || *end != ':') {
        return 0;
    }
    const char *t = end + 1;
    unsigned long long to = strtoull(t, &end, 10);
    if (end == t || *end != '\0' || to <= from) {
        return 0;
    }
    struct window *w = realloc(windows, (n_windows + 1) * sizeof *w);
    if (!w) {
        return 0;
    }
    windows = w;
    windows[n_windows].from = from;
    windows[n_windows].to = to;
    n_windows++;
    return 1;
}

__attribute__((visibility("default"))) int
qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "profile=", 8) == 0 && argv[i][8]) {
            profile_path = argv[i] + 8;
        } else if (strncmp(argv[i], "window=", 7) == 0 && add_window(argv[i] + 7)) {
            continue;
        } else {
            fprintf(stderr, "mfc0snap: bad argument %s (profile=FILE, window=FROM:TO)\n",
                    argv[i]);
            return -1;
        }
    }
    if (profile_path && !n_windows) {
        fprintf(stderr, "mfc0snap: profile= needs at least one window=FROM:TO\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
