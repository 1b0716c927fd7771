/* The software RISC-V RV64GC hart: the CPU engine that runs on any host.
 *
 * One struct rv64_hart per hart; each runs on its own host thread in rv64_hart_run(). The
 * machine never reaches into the hart: it hands over memory, the bus and a time source at
 * creation, raises interrupt bits with rv64_hart_set_irq() and asks it to stop with
 * rv64_hart_request_stop(). Nothing here is global, so several machines can share a process. */
#ifndef TESSERA_CPU_RV64_RV64_H
#define TESSERA_CPU_RV64_RV64_H

#include <stdbool.h>
#include <stdint.h>

struct bus;
struct code_watch;
struct dirty_log;
struct rv64_hart;
struct sbuf;
struct scur;

/* A host-backed physical range the hart may execute from and access directly (RAM, ROM). */
struct rv64_mem_region {
    uint64_t base;
    uint64_t size; /* multiple of 4 KiB */
    uint8_t *host;
    bool readonly; /* stores fault with a store access fault */
    /* NULL: never logged (ROM). Otherwise, while dirty->on, every page of `host` the hart
     * writes is marked in it (src/base/dirty.h): the hart marks a page when it maps it for
     * writing in its TLB, and marks every other write to the region (page-table A/D updates,
     * atomics, page-crossing stores) before it makes it. After harvesting, call
     * rv64_hart_flush_tlb() on every hart so that the next store to a page marks it again. */
    struct dirty_log *dirty;
    /* NULL: no block decoded from here is kept across a FENCE.I, unless the region is
     * readonly. Otherwise the pages harts decoded code from, and who else wrote them
     * (src/base/codewatch.h): every hart of the machine, and every device that writes the
     * region, must report to the same one. */
    struct code_watch *code;
};

#define RV64_MAX_MEM_REGIONS 4

struct rv64_config {
    unsigned hartid;
    const struct bus *bus; /* everything that is not a mem region */
    struct rv64_mem_region mem[RV64_MAX_MEM_REGIONS];
    unsigned mem_count;
    /* The `time` CSR (and nothing else) reads this; callable from any thread. */
    uint64_t (*time)(void *opaque);
    void *time_opaque;
    /* Sstc's comparator: the hart calls this with its hartid and the new value whenever its
     * stimecmp changes (hart thread, or a stopped hart's caller: reset, load). The callee
     * must call rv64_hart_set_irq(h, RV64_IRQ_STI, time >= cmp) before returning, and again
     * whenever that level changes (from any thread, also while the hart sleeps in WFI), on
     * the same time base as `time`. NULL: STIP never rises from stimecmp. */
    void (*stimer)(void *opaque, unsigned hartid, uint64_t cmp);
    void *stimer_opaque;
    /* Translate hot blocks to host code (src/cpu/rv64/jit/jit.h). Only where rv64_jit_host()
     * is true; creation fails with -ENOTSUP elsewhere. */
    bool jit;
};

/* True when this host can run the translator (x86-64 Linux). */
bool rv64_jit_host(void);

/* mip bit numbers for rv64_hart_set_irq (RISC-V privileged §3.1.9). */
enum rv64_irq {
    RV64_IRQ_SSI = 1,
    RV64_IRQ_MSI = 3,
    RV64_IRQ_STI = 5,
    RV64_IRQ_MTI = 7,
    RV64_IRQ_SEI = 9,
    RV64_IRQ_MEI = 11,
};

/* Creates a hart in its reset state with pc = 0. Returns 0 or -ENOMEM. The config is copied. */
int rv64_hart_create(const struct rv64_config *cfg, struct rv64_hart **out);
void rv64_hart_destroy(struct rv64_hart *h);

/* Sets the source of the `time` CSR; set-up only, before the hart runs. */
void rv64_hart_set_time_source(struct rv64_hart *h, uint64_t (*time)(void *), void *opaque);

/* Sets Sstc's comparator callback (rv64_config.stimer); set-up only, before the hart runs.
 * Calls it once with the current stimecmp. */
void rv64_hart_set_stimer(struct rv64_hart *h, void (*stimer)(void *, unsigned, uint64_t),
                          void *opaque);

/* Back to the power-on state (M-mode, mstatus/mie/mip cleared, PMP off, caches flushed),
 * then pc = reset_pc.
 * Only while the hart's thread is not inside rv64_hart_run(). */
void rv64_hart_reset(struct rv64_hart *h, uint64_t reset_pc);

/* Raises or lowers interrupt bit `irq` (enum rv64_irq) of mip. Thread-safe, usable as an
 * irq_set_fn with the hart as opaque; wakes the hart if it sleeps in WFI. RV64_IRQ_STI is
 * the Sstc comparator's level (rv64_config.stimer), which mip.STIP shows only while
 * menvcfg.STCE is set. */
void rv64_hart_set_irq(void *hart, unsigned irq, bool level);

/* Runs guest code on the calling thread until rv64_hart_request_stop(). Returns 0. */
int rv64_hart_run(struct rv64_hart *h);

/* Asks the hart to leave rv64_hart_run() at its next block boundary (or out of WFI). Any
 * thread. The request stays set until rv64_hart_clear_stop(). */
void rv64_hart_request_stop(struct rv64_hart *h);
void rv64_hart_clear_stop(struct rv64_hart *h);

/* Register access for the board's reset vector set-up, tests and debugging; only while the
 * hart is stopped. */
uint64_t rv64_hart_get_pc(const struct rv64_hart *h);
uint64_t rv64_hart_get_x(const struct rv64_hart *h, unsigned reg);
void rv64_hart_set_x(struct rv64_hart *h, unsigned reg, uint64_t value);
uint64_t rv64_hart_instret(const struct rv64_hart *h);

/* Drops every cached translation (all TLBs and the block chains that depend on them), so the
 * next access of each kind walks the page tables again and, for a store, marks its page in the
 * region's dirty log. Only while the hart is stopped (not inside rv64_hart_run()). */
void rv64_hart_flush_tlb(struct rv64_hart *h);

/* The layout version of rv64_hart_save()'s section (layout in state.c); a new field is a new
 * version. */
#define RV64_STATE_VERSION 2

/* Writes the hart's architectural state: hartid (checked on load), pc, x1..x31, f0..f31,
 * fflags, frm, privilege, every CSR with storage (mstatus, delegation, trap CSRs, counters,
 * counter enables, envcfg, satp, stimecmp, the 16 PMP entries), mip and mie, the LR reservation (as
 * a guest physical address) and whether the hart sleeps in WFI. Caches (TLBs, decoded blocks) are
 * not state. Only while the hart is stopped; allocation failure is left in out->oom. */
void rv64_hart_save(const struct rv64_hart *h, struct sbuf *out);

/* Loads what rv64_hart_save() wrote with section version `version` (2, or 1 from builds before
 * Sstc, which loads with stimecmp never due). Every field is
 * checked against what this hart can hold (privilege 0, 1 or 3; satp mode Bare, Sv39, Sv48 or
 * Sv57; WARL fields holding legal values; the reservation inside a mem region; the same hartid),
 * and the whole payload must be consumed. Returns 0, or -1 with the reason in in->err; on
 * failure the hart is in its reset state with pc 0 (as rv64_hart_reset(h, 0) leaves it).
 * Flushes all caches (TLBs, decoded blocks). mip is restored as saved, device-driven bits
 * (MSIP, MTIP, MEIP, SEIP, the timer's STIP) included: load harts before the CLINT and PLIC,
 * whose loads drive those lines again (the load hands stimecmp to rv64_config.stimer first). Only
 * while the hart is stopped, on the thread that will run it or with a happens-before edge to it
 * (thread start, a mutex). */
int rv64_hart_load(struct rv64_hart *h, struct scur *in, uint32_t version);

#endif
