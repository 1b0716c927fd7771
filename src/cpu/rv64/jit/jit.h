/* Private to src/cpu/rv64/: the translator from decoded blocks (struct rv_insn, hart.h) to
 * x86-64 machine code, and its per-hart code cache. Engine "jit" (src/cpu/rv64/engine.c) is
 * the interpreter's hart with this attached; it exists only where RV_JIT_HOST is 1.
 *
 * Execution model. The interpreter's block cache stays the one index of guest code: a block
 * is found, validated (after a FENCE.I the code watch cannot clear, its bytes are compared
 * with memory: hart.h, base/codewatch.h) and chained exactly as without
 * the JIT, and a block that ran RV_JIT_THRESHOLD times gets host code hung on it. That code
 * does what exec_block() does for the same block, bit for bit: it keeps the same invariant
 * (h->pc is the block's first pc until the block is left), and it runs the common integer
 * instructions inline (RV64I, M, Zba, Zbs and Zbb but clz, ctz, cpop and orc.b, loads and
 * stores through an inline TLB probe) with the block's most used guest registers in host
 * registers, and every other instruction by calling the interpreter's own handler with the
 * block's decoded instruction, after writing the registers back to h->x[]. The common F and D
 * instructions (loads, stores, moves, sign injection, add, sub, mul, div, sqrt, fused ops where
 * the host has FMA3, compares, fcvt.d from integers) run inline on SSE in round-to-nearest, with
 * h->fflags exact at every call and exit and a handler call wherever the host's result could
 * differ (FS not Dirty, another rounding mode, a NaN result, an unboxed single): jit_fp.h. A load
 * or store that misses the TLB, is misaligned or faults calls the handler too, which takes the slow
 * path and raises the trap with the same pc and tval. Interrupts, stop requests and FENCE.I
 * are handled between blocks by the interpreter's loop, as without the JIT.
 *
 * Chaining. A block's code that leaves by a jump, a branch or its end continues straight into
 * the successor's code, without the run loop, when the loop would have done no more than run
 * it: the chain entry the loop recorded for that exit still holds (same pc, and the same
 * h->fetch_key: fetch generation and fetch context, so the same host bytes; for an exit to a
 * pc of the block's own page, lkey against h->bc.code_gen alone: block.h), the successor had
 * code when the loop last went through the entry (struct rv_chain's `entry`), and nothing asked
 * for the loop (h->need_loop: a stop request, or an interrupt raised by another thread).
 * Otherwise it returns to the loop with the entry in h->jit_link, where the loop records the
 * successor. A jalr's exit tries entries [1] and [0] (a block that ends in a jalr has no
 * fall-through), and has the loop record a new target in [0] (block.h).
 * Exits through a handler (traps, CSRs, xRET, WFI, FENCE.I) always return to the loop. A jump
 * back to the block's own first instruction (a loop that is one block) needs no chain entry:
 * nothing that runs inside a block changes the pc of its start, the fetch generation or the
 * fetch context, so it only checks for stop requests and interrupts, keeps its registers in
 * host registers (all it uses) and counts its turns' instructions in one (jit.c).
 *
 * The code is keyed by what keys the block: the host address of its first instruction, i.e.
 * the physical page. It depends on no privilege, MMU mode or virtual pc (those are read from
 * the hart when it runs), so mode switches, satp writes and SFENCE.VMA need not drop any.
 *
 * Memory. The cache holds RV_JIT_CACHE_SIZE bytes of code at first. When a translation does
 * not fit, rv_jit_compile() says so and the hart flushes its block cache and with it every
 * translation (as QEMU does when its code buffer is full); hot blocks are translated again as
 * they run. The bound, and that of the block cache's arena (cpu.c), keep the VMM's resident
 * memory for a 256 MiB guest booting Linux near 37 MB (docs/hart.md, "Memory"); a boot fills
 * the cache a few times. A guest whose code does not fit (a Debian boot flushed 3,000 times
 * in 50 s at 4 MiB) makes the hart double both, after RV_BC_GROW_FLUSHES flushes at one size
 * (cpu.c), up to RV_JIT_CACHE_MAX: the mappings are that large from the start, and only what
 * is written becomes resident.
 *
 * W^X: no address of the cache is ever writable and executable. The cache is one memfd
 * mapped twice, read+execute where code runs and read+write where translations are copied in
 * (from a staging buffer); the read+write view keeps only the pages around the cache's end
 * mapped, so that a page of code counts once in the process's RSS. Where that cannot be set
 * up, one read+execute mapping has the touched pages made read+write, not executable, for
 * each copy (slow: mprotect() shoots down every CPU's TLB); TESSERA_JIT_SINGLE_MAP (read at
 * creation) forces that, for tests. The cache's addresses are written again after each flush:
 * valgrind, which does not look for code changes in file mappings (a memfd is one) by
 * default, needs --smc-check=all, or TESSERA_JIT_SINGLE_MAP.
 *
 * Threads: one struct rv_jit per hart, used only by that hart's thread. */
#ifndef TESSERA_CPU_RV64_JIT_JIT_H
#define TESSERA_CPU_RV64_JIT_JIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) && defined(__linux__)
#define RV_JIT_HOST 1
#else
#define RV_JIT_HOST 0
#endif

/* A block runs interpreted this many times before it is translated: code that runs once
 * (firmware set-up, boot-time initialisation) is not worth translating, and with a bounded
 * cache every translation brings the next flush nearer (16 rather than 8: a third fewer
 * translations in a boot, none slower; docs/hart.md, "Memory"). The environment
 * variable TESSERA_JIT_THRESHOLD (read at creation; 0 to 1000000) overrides it, so that tests
 * can translate every block before its first run (0). */
#define RV_JIT_THRESHOLD 16

/* Bytes of host code one hart's cache holds at first, and at most once it has grown (see
 * "Memory" above). */
#define RV_JIT_CACHE_SIZE (4u << 20)
#define RV_JIT_CACHE_MAX  (32u << 20)

struct rv64_hart;
struct rv_block;
struct rv_jit;

/* Host code for one block: behaves as exec_block() on the same instructions. */
typedef void (*rv_jit_fn)(struct rv64_hart *h);

/* Bytes of every translation's prologue (jit.c), which translated code going on into the
 * translation skips. */
#define RV_JIT_PROLOGUE_LEN 36u

/* Where translated code goes on into translation `code` (NULL for none). */
static inline const void *rv_jit_entry(rv_jit_fn code)
{
    return code ? (const void *)((uintptr_t)code + RV_JIT_PROLOGUE_LEN) : NULL;
}

/* A code cache. 0, -ENOMEM, or -ENOTSUP where RV_JIT_HOST is 0. */
int rv_jit_create(struct rv_jit **out);
void rv_jit_destroy(struct rv_jit *j); /* NULL is ignored */

/* How many interpreted runs a block needs before it is translated. */
uint32_t rv_jit_threshold(const struct rv_jit *j);

/* Forgets every translation (the block cache was flushed: nothing points into it now). */
void rv_jit_flush(struct rv_jit *j);

/* Doubles the bytes the cache holds, up to RV_JIT_CACHE_MAX; call right after a flush. */
void rv_jit_grow(struct rv_jit *j);

/* Translates block b (block.h). The code stays valid until rv_jit_flush(), which must come
 * with every flush of the block cache: it refers to b and to the chain entries of b, and
 * jumps into other blocks' code through them. NULL when the cache is full (*full set: flush
 * the block cache, which flushes this) or the block does not fit one translation (left to
 * the interpreter). */
rv_jit_fn rv_jit_compile(struct rv_jit *j, struct rv_block *b, bool *full);

/* Statistics for tests and logs. */
struct rv_jit_stats {
    uint64_t blocks;  /* translations made */
    uint64_t bytes;   /* host code bytes in use */
    uint64_t emitted; /* host code bytes written since creation, flushes or not */
    uint64_t flushes; /* rv_jit_flush() calls */
};
void rv_jit_get_stats(const struct rv_jit *j, struct rv_jit_stats *out);

#endif
