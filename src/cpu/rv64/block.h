/* Private to src/cpu/rv64/: a decoded block of the block cache (cpu.c), shared with the
 * translator (jit/jit.c), whose code continues into a successor's code through the same chain
 * entries the run loop uses. Blocks live in the block cache's arena until it is flushed. */
#ifndef TESSERA_CPU_RV64_BLOCK_H
#define TESSERA_CPU_RV64_BLOCK_H

#include "cpu/rv64/hart.h"
#include "cpu/rv64/jit/jit.h"

/* A successor seen before: valid while the hart's fetch context and the generation its
 * chains live under (hart.h: gen_g for chains into global pages, moved by changes that can
 * reach those; gen_a for the others, moved by every TLB and block-cache flush and satp
 * switch) are unchanged, since then the target pc still maps to the same host bytes, or the
 * ISA lets us keep using the old translation (no SFENCE.VMA yet). */
struct rv_chain {
    uint64_t pc;
    uint64_t key; /* h->fetch_key (hart.h) when the entry was recorded, or RV_CHAIN_NO_KEY */
    struct rv_block *blk;
    /* Where translated code goes on into blk's translation (its body, past the prologue:
     * rv_jit_entry()) as of the last time the run loop went through this entry (NULL: not
     * translated then), so that translated code tests one pointer, not two; blk->code is
     * only ever set once, so a stale NULL costs one more trip through the loop. */
    const void *entry;
    /* h->bc.code_gen when the entry was recorded, if blk is the block at the entry's local
     * target (struct rv_block's `local`), else 0: what translated code compares at an exit
     * to that target (jit.h, "Chaining"). */
    uint64_t lkey;
};

/* chain_owner() (cpu.c) tells a block's two entries apart by their addresses. */
_Static_assert(sizeof(struct rv_chain) % 16 == 8,
               "a chain entry is 8 bytes past a multiple of 16 (a 64-bit host)");

/* A chain entry's key that never holds (chain_key(), cpu.c): the fetch context is never S
 * with SUM. */
#define RV_CHAIN_NO_KEY ((uint64_t)RV_MMU_S_SUM)

#define RV_NO_LOCAL INT16_MIN

struct rv_block {
    uintptr_t key; /* host address of the first instruction */
    struct rv_block *next;
    uint64_t code_gen; /* h->bc.code_gen when the bytes were last known to match */
    uint32_t n;        /* instructions */
    uint32_t bytes;    /* their total length */
    uint32_t runs;     /* interpreted runs, until the JIT translates the block */
    /* For chain[i]: where (the offset from the block's first instruction) a jump, branch or
     * fall-through at the block's end goes through that entry, when the block ends in a jump
     * or branch to a pc known from the instruction, or in an instruction that changes no
     * translation state (not RV_INSN_ENDS_BLOCK), and the target lies in the block's page;
     * else RV_NO_LOCAL. Such an exit reaches the same host bytes whatever the virtual address
     * and address space the block runs under (the page is the one it runs from, mapped as
     * it was when the block was entered), so only a change of the code can make its chain
     * wrong (lkey). */
    int16_t local[2];
    rv_jit_fn code; /* the block's translation, or NULL */
    /* [0]: fall-through successor, [1]: any other; translated code that leaves by a jalr, which
     * has no fall-through, tries both, and has the run loop record a new target in [0]. */
    struct rv_chain chain[2];
    struct rv_insn insn[];
};

/* Blocks are bump-allocated at 16-byte alignment: a header of 128 bytes (120 before the chain
 * entries' lkey) wastes nothing before the instructions. */
_Static_assert(sizeof(struct rv_block) == 128, "the block header is 128 bytes (a 64-bit host)");

#endif
