/* Private to src/cpu/rv64/: a decoded block of the block cache (cpu.c), shared with the
 * translator (jit/jit.c), whose code continues into a successor's code through the same chain
 * entries the run loop uses. Blocks live in the block cache's arena until it is flushed. */
#ifndef TESSERA_CPU_RV64_BLOCK_H
#define TESSERA_CPU_RV64_BLOCK_H

#include "cpu/rv64/hart.h"
#include "cpu/rv64/jit/jit.h"

/* A successor seen before: valid while the hart's fetch context and generation (bumped by
 * every TLB and block-cache flush) are unchanged, since then the target pc still maps to the
 * same host bytes, or the ISA lets us keep using the old translation (no SFENCE.VMA yet). */
struct rv_chain {
    uint64_t pc;
    uint64_t key; /* h->fetch_key (hart.h) when the entry was recorded */
    struct rv_block *blk;
    /* Where translated code goes on into blk's translation (its body, past the prologue:
     * rv_jit_entry()) as of the last time the run loop went through this entry (NULL: not
     * translated then), so that translated code tests one pointer, not two; blk->code is
     * only ever set once, so a stale NULL costs one more trip through the loop. */
    const void *entry;
};

struct rv_block {
    uintptr_t key; /* host address of the first instruction */
    struct rv_block *next;
    uint64_t code_gen;      /* h->bc.code_gen when the bytes were last known to match */
    _Atomic uint8_t *watch; /* its page's code-watch byte (base/codewatch.h), or NULL */
    uint32_t n;             /* instructions */
    uint32_t bytes;         /* their total length */
    uint32_t runs;          /* interpreted runs, until the JIT translates the block */
    rv_jit_fn code;         /* the block's translation, or NULL */
    /* [0]: fall-through successor, [1]: any other; translated code that leaves by a jalr, which
     * has no fall-through, tries both, and has the run loop record a new target in [0]. */
    struct rv_chain chain[2];
    struct rv_insn insn[];
};

#endif
