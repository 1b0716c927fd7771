/* Private to src/cpu/rv64/jit/: the translator's inline F and D instructions (jit_fp.c), on
 * the host's SSE2 unit (and FMA3 where cpuid reports it), called by jit.c.
 *
 * Exactness. An inline instruction gives the interpreter's result and fflags bit for bit, or
 * calls the interpreter's handler (exec.c, fpu.c) at run time:
 *  - Only while mstatus.FS is Dirty (FS Off must trap, and FS Initial or Clean must become
 *    Dirty, both the handler's work), and an instruction with a rounding mode only for rm =
 *    RNE, or rm = DYN while frm is RNE (else the handler, which also raises the illegal-
 *    instruction trap for a reserved one). A block with inline FP code checks FS (and frm, if
 *    it has a DYN instruction) where its body starts, and each turn of its loop; where that
 *    fails it runs a second copy of itself, translated with every F and D instruction through
 *    its handler. Nothing that runs inside a block and lets it go on changes FS but towards
 *    Dirty, or changes frm (CSR instructions, traps and xRET end their block).
 *  - Arithmetic (add, sub, mul, div, sqrt; fmadd and friends with FMA3) runs on SSE, which in
 *    round-to-nearest gives the RISC-V result and flags except where the result is a NaN
 *    (fpu.c): a NaN result calls the handler instead, before rd is written. The host raised
 *    at most IE for it, and the handler raises NV in each such case (a signaling NaN operand,
 *    an invalid operation, 0 x inf in a fused op), so the flags folded below are right too.
 *  - Single-precision operands must be NaN-boxed (§12.2); an unboxed one calls the handler.
 *  - Flags: the host's MXCSR flags are cleared where a block with inline arithmetic starts and
 *    after each call out of it, and accrue across its instructions; before every call to C
 *    and every exit they are folded into h->fflags (IE to NV, ZE to DZ, OE to OF, UE to UF, PE
 *    to NX; DE, which RISC-V lacks, dropped). Both are sticky, so this equals the per-
 *    instruction OR the interpreter does at every point where anything can read fflags. MXCSR's
 *    control bits stay the C default (round to nearest, all masked) throughout.
 *
 * Threads: a struct jit_fp belongs to its struct rv_jit (one hart's thread). */
#ifndef TESSERA_CPU_RV64_JIT_JIT_FP_H
#define TESSERA_CPU_RV64_JIT_JIT_FP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpu/rv64/hart.h"

struct jit_ctx;
struct rv_block;

/* Table entries by handler (jit.c): open addressing, filled once (under pthread_once) and only
 * read afterwards, so harts that translate at once share one. Each instruction of a block is
 * looked up a few times per translation; the linear searches of the tables this replaced were
 * a sixth of the translator's host instructions in a boot (callgrind), and 1.6 % of the whole
 * boot's for the FP table alone. */
#define JIT_FN_SLOTS 512u
struct jit_fn_index {
    rv_exec_fn fn[JIT_FN_SLOTS];
    const void *entry[JIT_FN_SLOTS];
};
/* A handler listed twice keeps its first entry; the index must stay at most half full. */
void jit_fn_index_add(struct jit_fn_index *ix, rv_exec_fn fn, const void *entry);
const void *jit_fn_index_find(const struct jit_fn_index *ix, rv_exec_fn fn); /* or NULL */

#define JIT_FP_MAX_STUBS 64u

/* An inline FP instruction's way out to its handler: the jumps that take it, and where the
 * inline code continues. */
struct jit_fp_stub {
    const struct rv_insn *in;
    size_t from[6];
    unsigned nfrom;
    size_t done;
};

struct jit_fp {
    bool fma;   /* FMA3 usable (cpuid, and TESSERA_JIT_NO_FMA unset, at creation) */
    bool flags; /* the block in translation runs inline arithmetic: MXCSR's flags are live */
    bool any;   /* the block has inline F or D instructions */
    bool dyn;   /* ... among them one with rm = DYN */
    bool off;   /* translating the block's copy without inline F and D */
    struct jit_fp_stub stubs[JIT_FP_MAX_STUBS];
    unsigned nstubs;
};

void jit_fp_init(struct jit_fp *fp);

/* Whether `in` is translated inline (else jit.c calls its handler). */
bool jit_fp_inline(const struct jit_fp *fp, const struct rv_insn *in);
/* The integer registers its inline code reads (bits). */
uint64_t jit_fp_int_reads(const struct rv_insn *in);

/* A translation starts (before anything is emitted): scans the block. */
void jit_fp_begin(struct jit_fp *fp, const struct rv_block *blk);
/* Where the body starts: the check of FS and frm, unless the block has no inline F or D.
 * Returns the offset of its jump to the copy without (for emit_patch()), or 0. */
size_t jit_fp_check(struct jit_ctx *c);
/* Where the body starts, and after every call from the block's code: MXCSR's flags cleared. */
void jit_fp_clear(struct jit_ctx *c);
/* Before every call to C and every exit: MXCSR's flags into h->fflags. Clobbers rax, rcx. */
void jit_fp_fold(struct jit_ctx *c);
/* Emits `in` (jit_fp_inline() true). */
void jit_fp_emit(struct jit_ctx *c, const struct rv_insn *in);
/* The handler calls of the block's inline FP instructions, after its code. */
void jit_fp_emit_stubs(struct jit_ctx *c);

/* From jit.c, for the above: the translation's buffer and FP state, and its integer register
 * and memory helpers (the same as its own instructions use). */
struct x86_buf *jit_ctx_buf(struct jit_ctx *c);
struct jit_fp *jit_ctx_fp(struct jit_ctx *c);
/* A host register holding guest x[r]: its cached register, or `scratch` loaded. */
int jit_ctx_get_x(struct jit_ctx *c, unsigned r, int scratch);
/* x[rd] = host register src (the sink dropped). */
void jit_ctx_set_x(struct jit_ctx *c, unsigned rd, int src);
/* The inline TLB probe of `in` (address x[rs1] + imm, `size` bytes): rax = the host address
 * on a hit; a miss goes out of line and comes back after jit_ctx_mem_done(). */
void jit_ctx_mem_probe(struct jit_ctx *c, const struct rv_insn *in, unsigned size, bool write);
void jit_ctx_mem_done(struct jit_ctx *c);
/* Calls the handler of `in` as jit.c does for instructions it does not translate. */
void jit_ctx_call_handler(struct jit_ctx *c, const struct rv_insn *in);

#endif
