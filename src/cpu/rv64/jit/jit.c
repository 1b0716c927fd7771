/* The translator and its code cache (jit.h).
 *
 * Generated code. A block's code is one function `void f(struct rv64_hart *h)` under the
 * System V AMD64 ABI. Its prologue (RV_JIT_PROLOGUE_LEN bytes, the same for every block) saves
 * the callee-saved registers and aligns the stack for the calls it makes; a block that goes
 * on into a successor jumps past the successor's prologue, so the chain shares one frame, and
 * whichever block returns to the run loop pops it. In the code:
 *   rbx  the hart (callee-saved, so it survives calls to handlers);
 *   rbp  &h->tlb->e[h->mmu_data][0], set by the prologue, so once per entry from the run
 *        loop and not again in the successors a chain goes on into (mmu_data and the live
 *        table cannot change while translated code runs: what changes them, CSR writes,
 *        SFENCE.VMA, xRET and traps, leaves through a handler to the run loop);
 *   r12-r15, r8-r11  up to eight guest registers the block uses most (the "cached" ones);
 *   rax, rcx, rdx, rsi, rdi  scratch.
 * A cached register is loaded from h->x[] where the body starts, lives in its host register
 * through the block, and is written back (those the block writes; the others never differ)
 * before anything that reads h->x[] or leaves: a call to an interpreter handler, a TLB miss's
 * slow path, and every exit. After a call, which may write its rd and clobbers r8-r11, those
 * are loaded again. A branch back to the block's own start (a loop that fits one block) keeps
 * every register where it is and only checks for stop requests and interrupts.
 *
 * Layout: the body (twice where the block has inline FP: jit_fp.h), then the cold code its
 * sites share, one copy per block (which registers are cached, and which of them written back,
 * is the same at every point of a block): the FP handler stubs; the slow path of loads and
 * stores (emit_mem_slow; each miss has a 21-byte stub that calls it); the exit of handler calls
 * that leave (emit_handler_exit; a 10-byte stub per call); and the tail that stores
 * h->jit_link and pops the frame (emit_tails). Each site had its own copy of these before: a
 * boot wrote 732 bytes of code per block, now 478 (docs/hart.md, "Size of the translated
 * code"). The exits' chain checks stay one per exit: shared, they cost more host instructions
 * than their bytes saved (the commit that put them back says how much). */
#include "cpu/rv64/jit/jit.h"

#include <errno.h>
#include <stdlib.h>

#if RV_JIT_HOST

#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/log.h"
#include "base/populate.h"
#include "cpu/rv64/block.h"
#include "cpu/rv64/insn.h"
#include "cpu/rv64/jit/emit.h"
#include "cpu/rv64/jit/jit_fp.h"

#define JIT_STAGE_SIZE (64u << 10) /* one block of at most 64 instructions needs < 16 KiB */
#define JIT_ALIGN      16u
/* The double-mapped cache's pages are faulted in this many bytes ahead of the translations
 * (cache_populate). */
#define JIT_POPULATE_CHUNK (256u << 10)
#define JIT_MAX_CACHED     8u
#define JIT_MAX_STUBS      128u /* a block's loads and stores, in both copies (jit_fp.h) */
#define JIT_TLB_REG        X86_RBP

#define HART_OFF(field) ((int32_t)offsetof(struct rv64_hart, field))
#define XOFF(r)         ((int32_t)(offsetof(struct rv64_hart, x) + 8u * (r)))

#define CHAIN_OFF(field) ((int32_t)offsetof(struct rv_chain, field))

_Static_assert(sizeof(((struct rv64_hart *)0)->need_loop) == 1, "need_loop is tested as one byte");
_Static_assert(sizeof(struct rv_tlb_entry) == 32, "the TLB probe scales the index by 32");
_Static_assert(sizeof(((struct rv64_hart *)0)->mmu_data) == 4, "mmu_data is read as 32 bits");
_Static_assert(offsetof(struct rv_tlb, e) == 0, "the live TLB's pointer is its first entry");
_Static_assert(RV_TLB_INVALID == ~0ull, "the TLB probe folds the alignment check into the tag");

/* Host registers for cached guest registers, callee-saved first (they survive calls). The
 * last is JIT_LOOP_COUNT in a block that loops. */
static const enum x86_reg cache_host[JIT_MAX_CACHED] = {X86_R12, X86_R13, X86_R14, X86_R15,
                                                        X86_R8,  X86_R9,  X86_R10, X86_R11};
#define JIT_CALLEE_SAVED 4u
/* In a block that jumps back to its own start: instructions retired by the loop's finished
 * iterations and not yet added to h->instret (taken from the last cache slot). An add to
 * memory per iteration would chain each iteration to the last through a store and a load
 * (store forwarding, about five cycles: more than a small loop's whole body). */
#define JIT_LOOP_COUNT X86_R11

/* How an instruction is translated; anything not listed calls its handler. */
enum jit_kind {
    JK_LUI,
    JK_AUIPC,
    JK_JAL,
    JK_JALR,
    JK_BRANCH,   /* arg: x86 condition */
    JK_LOAD,     /* arg: size, sign: sign-extends */
    JK_STORE,    /* arg: size */
    JK_ALU_RR,   /* arg: enum x86_alu; w32: sign-extend the low 32 bits of the result */
    JK_ALU_RI,   /* arg: enum x86_alu_imm */
    JK_SLT_RR,   /* arg: x86 condition */
    JK_SLT_RI,   /* arg: x86 condition */
    JK_SHIFT_RR, /* arg: enum x86_shift; w32: 32-bit shift, result sign-extended */
    JK_SHIFT_RI,
    JK_MUL,
    JK_MULH,    /* sign: signed (mulh) or unsigned (mulhu) */
    JK_DIV,     /* sign: signed; arg: 1 for the remainder; w32: the W form */
    JK_SHADD,   /* Zba: (rs1 << arg) + rs2; w32: rs1 zero-extended from 32 bits first (.uw) */
    JK_SLLI_UW, /* Zba: rs1 zero-extended from 32 bits, shifted left by the immediate */
    JK_NOT_RR,  /* Zbb andn, orn, xnor: rs1 OP ~rs2; arg: enum x86_alu */
    JK_MINMAX,  /* Zbb: rs2 where the x86 condition arg holds for cmp rs1, rs2, else rs1 */
    JK_EXT,     /* Zbb sext.b, sext.h, zext.h: arg: size; sign */
    JK_REV8,    /* Zbb */
    JK_BIT_RR,  /* Zbs bclr, bset, binv, bext: arg: enum x86_bt (BT: bext) */
    JK_BIT_RI,  /* Zbs immediate forms */
    JK_FENCE,   /* arg: 1 for MFENCE (write-to-read order, exec.c), 0 for none (TSO keeps it) */
};

struct jit_op {
    rv_exec_fn fn;
    uint8_t kind;
    uint8_t arg;
    bool w32;
    bool sign;
};

static const struct jit_op jit_ops[] = {
    {rv_op_lui, JK_LUI, 0, false, false},
    {rv_op_auipc, JK_AUIPC, 0, false, false},
    {rv_op_jal, JK_JAL, 0, false, false},
    {rv_op_jalr, JK_JALR, 0, false, false},
    {rv_op_beq, JK_BRANCH, X86_CC_E, false, false},
    {rv_op_bne, JK_BRANCH, X86_CC_NE, false, false},
    {rv_op_blt, JK_BRANCH, X86_CC_L, false, false},
    {rv_op_bge, JK_BRANCH, X86_CC_GE, false, false},
    {rv_op_bltu, JK_BRANCH, X86_CC_B, false, false},
    {rv_op_bgeu, JK_BRANCH, X86_CC_AE, false, false},
    {rv_op_lb, JK_LOAD, 1, false, true},
    {rv_op_lh, JK_LOAD, 2, false, true},
    {rv_op_lw, JK_LOAD, 4, false, true},
    {rv_op_ld, JK_LOAD, 8, false, true},
    {rv_op_lbu, JK_LOAD, 1, false, false},
    {rv_op_lhu, JK_LOAD, 2, false, false},
    {rv_op_lwu, JK_LOAD, 4, false, false},
    {rv_op_sb, JK_STORE, 1, false, false},
    {rv_op_sh, JK_STORE, 2, false, false},
    {rv_op_sw, JK_STORE, 4, false, false},
    {rv_op_sd, JK_STORE, 8, false, false},
    {rv_op_addi, JK_ALU_RI, X86_IMM_ADD, false, false},
    {rv_op_xori, JK_ALU_RI, X86_IMM_XOR, false, false},
    {rv_op_ori, JK_ALU_RI, X86_IMM_OR, false, false},
    {rv_op_andi, JK_ALU_RI, X86_IMM_AND, false, false},
    {rv_op_addiw, JK_ALU_RI, X86_IMM_ADD, true, false},
    {rv_op_slti, JK_SLT_RI, X86_CC_L, false, false},
    {rv_op_sltiu, JK_SLT_RI, X86_CC_B, false, false},
    {rv_op_slli, JK_SHIFT_RI, X86_SHL, false, false},
    {rv_op_srli, JK_SHIFT_RI, X86_SHR, false, false},
    {rv_op_srai, JK_SHIFT_RI, X86_SAR, false, false},
    {rv_op_slliw, JK_SHIFT_RI, X86_SHL, true, false},
    {rv_op_srliw, JK_SHIFT_RI, X86_SHR, true, false},
    {rv_op_sraiw, JK_SHIFT_RI, X86_SAR, true, false},
    {rv_op_add, JK_ALU_RR, X86_ADD, false, false},
    {rv_op_sub, JK_ALU_RR, X86_SUB, false, false},
    {rv_op_xor, JK_ALU_RR, X86_XOR, false, false},
    {rv_op_or, JK_ALU_RR, X86_OR, false, false},
    {rv_op_and, JK_ALU_RR, X86_AND, false, false},
    {rv_op_addw, JK_ALU_RR, X86_ADD, true, false},
    {rv_op_subw, JK_ALU_RR, X86_SUB, true, false},
    {rv_op_slt, JK_SLT_RR, X86_CC_L, false, false},
    {rv_op_sltu, JK_SLT_RR, X86_CC_B, false, false},
    {rv_op_sll, JK_SHIFT_RR, X86_SHL, false, false},
    {rv_op_srl, JK_SHIFT_RR, X86_SHR, false, false},
    {rv_op_sra, JK_SHIFT_RR, X86_SAR, false, false},
    {rv_op_sllw, JK_SHIFT_RR, X86_SHL, true, false},
    {rv_op_srlw, JK_SHIFT_RR, X86_SHR, true, false},
    {rv_op_sraw, JK_SHIFT_RR, X86_SAR, true, false},
    {rv_op_mul, JK_MUL, 0, false, false},
    {rv_op_mulw, JK_MUL, 0, true, false},
    {rv_op_mulh, JK_MULH, 0, false, true},
    {rv_op_mulhu, JK_MULH, 0, false, false},
    {rv_op_div, JK_DIV, 0, false, true},
    {rv_op_divu, JK_DIV, 0, false, false},
    {rv_op_rem, JK_DIV, 1, false, true},
    {rv_op_remu, JK_DIV, 1, false, false},
    {rv_op_divw, JK_DIV, 0, true, true},
    {rv_op_divuw, JK_DIV, 0, true, false},
    {rv_op_remw, JK_DIV, 1, true, true},
    {rv_op_remuw, JK_DIV, 1, true, false},
    {rv_op_sh1add, JK_SHADD, 1, false, false},
    {rv_op_sh2add, JK_SHADD, 2, false, false},
    {rv_op_sh3add, JK_SHADD, 3, false, false},
    {rv_op_add_uw, JK_SHADD, 0, true, false},
    {rv_op_sh1add_uw, JK_SHADD, 1, true, false},
    {rv_op_sh2add_uw, JK_SHADD, 2, true, false},
    {rv_op_sh3add_uw, JK_SHADD, 3, true, false},
    {rv_op_slli_uw, JK_SLLI_UW, 0, false, false},
    {rv_op_andn, JK_NOT_RR, X86_AND, false, false},
    {rv_op_orn, JK_NOT_RR, X86_OR, false, false},
    {rv_op_xnor, JK_NOT_RR, X86_XOR, false, false},
    {rv_op_min, JK_MINMAX, X86_CC_G, false, false},
    {rv_op_minu, JK_MINMAX, X86_CC_A, false, false},
    {rv_op_max, JK_MINMAX, X86_CC_L, false, false},
    {rv_op_maxu, JK_MINMAX, X86_CC_B, false, false},
    {rv_op_sext_b, JK_EXT, 1, false, true},
    {rv_op_sext_h, JK_EXT, 2, false, true},
    {rv_op_zext_h, JK_EXT, 2, false, false},
    {rv_op_rev8, JK_REV8, 0, false, false},
    {rv_op_rol, JK_SHIFT_RR, X86_ROL, false, false},
    {rv_op_ror, JK_SHIFT_RR, X86_ROR, false, false},
    {rv_op_rolw, JK_SHIFT_RR, X86_ROL, true, false},
    {rv_op_rorw, JK_SHIFT_RR, X86_ROR, true, false},
    {rv_op_rori, JK_SHIFT_RI, X86_ROR, false, false},
    {rv_op_roriw, JK_SHIFT_RI, X86_ROR, true, false},
    {rv_op_bclr, JK_BIT_RR, X86_BTR, false, false},
    {rv_op_bset, JK_BIT_RR, X86_BTS, false, false},
    {rv_op_binv, JK_BIT_RR, X86_BTC, false, false},
    {rv_op_bext, JK_BIT_RR, X86_BT, false, false},
    {rv_op_bclri, JK_BIT_RI, X86_BTR, false, false},
    {rv_op_bseti, JK_BIT_RI, X86_BTS, false, false},
    {rv_op_binvi, JK_BIT_RI, X86_BTC, false, false},
    {rv_op_bexti, JK_BIT_RI, X86_BT, false, false},
    {rv_op_fence, JK_FENCE, 1, false, false},
    {rv_op_fence_order, JK_FENCE, 0, false, false},
};

/* jit_ops[] by handler (jit_fp.h), filled from the first rv_jit_create(). */
#define JIT_OP_COUNT (sizeof(jit_ops) / sizeof(jit_ops[0]))
_Static_assert(2 * JIT_OP_COUNT <= JIT_FN_SLOTS, "the index is at most half full");

static struct jit_fn_index jit_op_index;
static pthread_once_t jit_op_once = PTHREAD_ONCE_INIT;

static unsigned jit_fn_hash(rv_exec_fn fn)
{
    return (unsigned)(((uint64_t)(uintptr_t)fn * 0x9e3779b97f4a7c15ull) >> 55); /* 9 bits */
}
_Static_assert(JIT_FN_SLOTS == 1u << 9, "the hash gives 9 bits");

void jit_fn_index_add(struct jit_fn_index *ix, rv_exec_fn fn, const void *entry)
{
    unsigned s = jit_fn_hash(fn);

    while (ix->fn[s] && ix->fn[s] != fn)
        s = (s + 1) & (JIT_FN_SLOTS - 1);
    if (!ix->fn[s]) {
        ix->fn[s] = fn;
        ix->entry[s] = entry;
    }
}

const void *jit_fn_index_find(const struct jit_fn_index *ix, rv_exec_fn fn)
{
    for (unsigned s = jit_fn_hash(fn);; s = (s + 1) & (JIT_FN_SLOTS - 1)) {
        if (!ix->fn[s] || ix->fn[s] == fn)
            return ix->entry[s];
    }
}

/* Inserted in jit_ops[] order, so a handler listed twice finds its first entry. */
static void jit_op_index_fill(void)
{
    for (size_t i = 0; i < JIT_OP_COUNT; i++)
        jit_fn_index_add(&jit_op_index, jit_ops[i].fn, &jit_ops[i]);
}

static const struct jit_op *jit_op_find(rv_exec_fn fn)
{
    return jit_fn_index_find(&jit_op_index, fn);
}

static bool fits_i32(int64_t v)
{
    return v >= INT32_MIN && v <= INT32_MAX;
}

/* The inline translation of `in`, or NULL when its handler runs it. */
static const struct jit_op *jit_op_for(const struct rv_insn *in)
{
    const struct jit_op *op = jit_op_find(in->fn);
    int64_t off = in->pc_off;

    if (!op)
        return NULL;
    if ((op->kind == JK_ALU_RI || op->kind == JK_SLT_RI || op->kind == JK_LOAD ||
         op->kind == JK_STORE) &&
        !fits_i32(in->imm))
        return NULL;
    if ((op->kind == JK_JAL || op->kind == JK_BRANCH) && !fits_i32(in->imm + off))
        return NULL;
    return op;
}

/* A load or store whose TLB probe missed (or was misaligned): its few bytes of stub, after
 * the block's code, call the block's one slow path (emit_mem_slow) and come back to retry the
 * probe or to `done`. */
struct jit_stub {
    const struct rv_insn *in;
    size_t probe; /* where the probe starts, to retry after a refill */
    size_t miss;
    size_t done;
    unsigned size;
    bool write;
};

/* A handler call that left the block (RV_JUMP or RV_TRAP): its jump to a stub that loads the
 * instruction's index and goes to the block's one exit for handlers (emit_handler_exit). */
struct jit_exit {
    size_t from;
    uint8_t idx;
};

/* A block's handler calls, in both copies (jit_fp.h) and its FP stubs: at most 64 of each. */
#define JIT_MAX_EXITS 256u
/* Jumps to the block's shared tail (emit_tails): its exits' chain checks (4 or 5 each, at most
 * two exits per copy), the loop exits, the handler exit and the slow path. */
#define JIT_MAX_TAILS 32u

/* One translation in progress. */
struct jit_ctx {
    struct x86_buf *b;
    struct rv_block *blk;
    int8_t slot[RV_X_SINK + 1]; /* guest register -> index into cache_host, or -1 */
    unsigned ncached;
    uint8_t cached[JIT_MAX_CACHED]; /* guest register of each cache_host slot */
    uint64_t written;               /* bit r: cached register r is written by the block */
    size_t loop_head;               /* where the body starts, after the loads */
    bool loops; /* jumps back to its own start: JIT_LOOP_COUNT counts the loop's instret */
    struct jit_stub stubs[JIT_MAX_STUBS];
    unsigned nstubs;
    struct jit_exit exits[JIT_MAX_EXITS];
    unsigned nexits;
    /* Forward jumps to the shared tail: to_link with rcx = the chain entry for h->jit_link,
     * to_epi with the frame as emit_epilogue() pops it. */
    size_t to_link[JIT_MAX_TAILS];
    unsigned nlink;
    size_t to_epi[JIT_MAX_TAILS];
    unsigned nepi;
    struct jit_fp fp; /* inline F and D (jit_fp.c) */
};

struct rv_jit {
    uint8_t *cache; /* RV_JIT_CACHE_MAX bytes, read+execute; `limit` of them in use */
    /* The same memory mapped read+write at another address (a memfd mapped twice), or NULL
     * where that failed: then `cache` is made read+write around each copy instead. */
    uint8_t *rw;
    size_t used;
    size_t limit; /* RV_JIT_CACHE_SIZE, doubled by rv_jit_grow() */
    /* Since the last flush, the cache's bytes [rw_lo, populated) are mapped in the read+write
     * view and [0, populated) in the read+execute one (cache_populate). */
    size_t populated;
    size_t rw_lo;
    bool no_populate; /* the kernel cannot: pages fault in one by one */
    uint8_t *stage;   /* where a translation is emitted before it is copied in */
    uint32_t threshold;
    struct rv_jit_stats stats;
    struct jit_ctx ctx; /* the translation in progress */
};

/* The host register that caches guest register r, or -1. */
static int cached_reg(const struct jit_ctx *c, unsigned r)
{
    return c->slot[r] < 0 ? -1 : (int)cache_host[c->slot[r]];
}

/* A host register holding guest register r: its cached register, else `scratch` loaded. */
static enum x86_reg get_x(struct jit_ctx *c, unsigned r, enum x86_reg scratch)
{
    int h = cached_reg(c, r);

    if (h >= 0)
        return (enum x86_reg)h;
    if (r == 0)
        emit_alu_rr(c->b, X86_XOR, false, scratch, scratch);
    else
        emit_load(c->b, true, scratch, X86_RBX, XOFF(r));
    return scratch;
}

/* dst = guest register r. */
static void load_x(struct jit_ctx *c, enum x86_reg dst, unsigned r)
{
    enum x86_reg src = get_x(c, r, dst);

    if (src != dst)
        emit_alu_rr(c->b, X86_MOV, true, dst, src);
}

/* guest register rd = src (RV_X_SINK, the decoded x0 destination, is dropped). */
static void set_x(struct jit_ctx *c, unsigned rd, enum x86_reg src)
{
    int h = cached_reg(c, rd);

    if (rd == RV_X_SINK)
        return;
    if (h >= 0) {
        if ((enum x86_reg)h != src)
            emit_alu_rr(c->b, X86_MOV, true, (enum x86_reg)h, src);
    } else {
        emit_store(c->b, true, src, X86_RBX, XOFF(rd));
    }
}

/* h->x[] = the cached registers the block writes, and h->instret counts the loop's
 * iterations (JIT_LOOP_COUNT then holds a stale count: it is zeroed again after any call). */
static void write_back(struct jit_ctx *c)
{
    for (unsigned i = 0; i < c->ncached; i++) {
        if (c->written >> c->cached[i] & 1)
            emit_store(c->b, true, cache_host[i], X86_RBX, XOFF(c->cached[i]));
    }
    if (c->loops)
        emit_alu_mr(c->b, X86_ADD, true, JIT_LOOP_COUNT, X86_RBX, HART_OFF(instret));
}

/* After the slow path's call: every cached register from h->x[] (a handler may have written
 * its rd, and r8-r11 are gone), so that one copy of this serves every load and store. */
static void reload_all(struct jit_ctx *c)
{
    for (unsigned i = 0; i < c->ncached; i++)
        emit_load(c->b, true, cache_host[i], X86_RBX, XOFF(c->cached[i]));
    if (c->loops)
        emit_alu_rr(c->b, X86_XOR, false, JIT_LOOP_COUNT, JIT_LOOP_COUNT);
    jit_fp_clear(c);
}

/* After a handler returned RV_NEXT: r8-r11 were clobbered and rd may have been written. */
static void reload_after_call(struct jit_ctx *c, unsigned rd)
{
    for (unsigned i = 0; i < c->ncached; i++) {
        if (i >= JIT_CALLEE_SAVED || c->cached[i] == rd)
            emit_load(c->b, true, cache_host[i], X86_RBX, XOFF(c->cached[i]));
    }
    if (c->loops)
        emit_alu_rr(c->b, X86_XOR, false, JIT_LOOP_COUNT, JIT_LOOP_COUNT);
    jit_fp_clear(c);
}

static void emit_prologue(struct x86_buf *b)
{
    emit_push(b, X86_RBX);
    emit_push(b, X86_RBP);
    emit_push(b, X86_R12);
    emit_push(b, X86_R13);
    emit_push(b, X86_R14);
    emit_push(b, X86_R15);
    emit_alu_ri(b, X86_IMM_SUB, true, X86_RSP, 8);
    emit_alu_rr(b, X86_MOV, true, X86_RBX, X86_RDI);
    emit_load(b, false, X86_RDX, X86_RBX, HART_OFF(mmu_data));
    emit_shift_ri(b, X86_SHL, false, X86_RDX, RV_TLB_BITS + 5);
    emit_load(b, true, JIT_TLB_REG, X86_RBX, HART_OFF(tlb));
    emit_alu_rr(b, X86_ADD, true, JIT_TLB_REG, X86_RDX);
}

/* Back to the run loop: the frame of emit_prologue() popped. */
static void emit_epilogue(struct x86_buf *b)
{
    emit_alu_ri(b, X86_IMM_ADD, true, X86_RSP, 8);
    emit_pop(b, X86_R15);
    emit_pop(b, X86_R14);
    emit_pop(b, X86_R13);
    emit_pop(b, X86_R12);
    emit_pop(b, X86_RBP);
    emit_pop(b, X86_RBX);
    emit_ret(b);
}

/* A forward jump (if cc, or always for cc < 0) to the block's shared tail: `to_link`
 * (h->jit_link = rcx, then back to the run loop) or `to_epi` (back to the run loop). A block
 * with more than JIT_MAX_TAILS of them overflows, and is left to the interpreter. */
static void jump_to_tail(struct jit_ctx *c, bool link, int cc)
{
    size_t at = cc < 0 ? emit_jmp(c->b) : emit_jcc(c->b, (enum x86_cc)cc);

    if (link && c->nlink < JIT_MAX_TAILS)
        c->to_link[c->nlink++] = at;
    else if (!link && c->nepi < JIT_MAX_TAILS)
        c->to_epi[c->nepi++] = at;
    else
        c->b->overflow = true;
}

/* h->jit_link = slot, then back to the run loop. */
static void emit_return(struct jit_ctx *c, struct rv_chain *slot)
{
    emit_mov_ri(c->b, X86_RCX, (uint64_t)(uintptr_t)slot);
    jump_to_tail(c, true, -1);
}

/* Jumps to the shared tail's `to_link` (rcx holds the chain entry) when the run loop must
 * run: a stop was requested or an interrupt raised (h->need_loop). */
static void emit_need_loop(struct jit_ctx *c)
{
    emit_cmp_m8_zero(c->b, X86_RBX, HART_OFF(need_loop));
    jump_to_tail(c, true, X86_CC_NE);
}

/* Leaves the block once h->pc holds the next pc, with `retired` instructions retired in all,
 * through chain entry `slot` of the block (jit.h, "Chaining"): into the successor's code when
 * the entry holds and nothing needs the run loop, else back to the loop with h->jit_link =
 * slot. With `alt` (a jalr's exit), the entry of the two whose pc is h->pc, else alt: the
 * loop records a new target there, and slot keeps its own. A jump back to the block's own
 * start (`self`) stays in this code: the chain entry would hold, since the pc is the same and
 * nothing inside a block changes the fetch context or generation (what does, ends the block
 * through a handler). */
static void emit_leave(struct jit_ctx *c, unsigned retired, struct rv_chain *slot,
                       struct rv_chain *alt, bool self, int64_t target)
{
    struct x86_buf *b = c->b;
    int16_t local = c->blk->local[slot - c->blk->chain];

    if (self) {
        /* emit_need_loop()'s test, jumping back when nothing needs the loop. */
        emit_alu_ri(b, X86_IMM_ADD, true, JIT_LOOP_COUNT, (int32_t)retired);
        emit_cmp_m8_zero(b, X86_RBX, HART_OFF(need_loop));
        emit_jcc_back(b, X86_CC_E, c->loop_head);
        jit_fp_fold(c);
        write_back(c);
        emit_return(c, slot);
        return;
    }
    jit_fp_fold(c);
    emit_add_mi(b, X86_RBX, HART_OFF(instret), (int32_t)retired);
    write_back(c);
    emit_mov_ri(b, X86_RCX, (uint64_t)(uintptr_t)slot);
    if (!alt && local != RV_NO_LOCAL && local == target) {
        /* An exit to a pc of the block's own page (block.h, `local`): the same host bytes as
         * when the entry was recorded unless the code changed since (or PMP: code_gen). */
        emit_load(b, true, X86_RAX, X86_RBX, HART_OFF(bc.code_gen));
        emit_alu_rm(b, X86_CMP, true, X86_RAX, X86_RCX, CHAIN_OFF(lkey));
        jump_to_tail(c, true, X86_CC_NE);
        goto entry;
    }
    emit_load(b, true, X86_RAX, X86_RBX, HART_OFF(pc));
    emit_alu_rm(b, X86_CMP, true, X86_RAX, X86_RCX, CHAIN_OFF(pc));
    if (alt) {
        size_t hit = emit_jcc(b, X86_CC_E);

        emit_lea(b, X86_RCX, X86_RCX, (int32_t)((uintptr_t)alt - (uintptr_t)slot));
        emit_alu_rm(b, X86_CMP, true, X86_RAX, X86_RCX, CHAIN_OFF(pc));
        jump_to_tail(c, true, X86_CC_NE);
        emit_patch(b, hit);
    } else {
        jump_to_tail(c, true, X86_CC_NE);
    }
    emit_load(b, true, X86_RAX, X86_RBX, HART_OFF(fetch_key));
    emit_alu_rm(b, X86_CMP, true, X86_RAX, X86_RCX, CHAIN_OFF(key));
    jump_to_tail(c, true, X86_CC_NE);
entry:
    emit_load(b, true, X86_RAX, X86_RCX, CHAIN_OFF(entry));
    emit_test_rr(b, true, X86_RAX);
    jump_to_tail(c, true, X86_CC_E);
    emit_need_loop(c);
    emit_jmp_reg(b, X86_RAX);
}

/* The chain entry the run loop would use after a jump of `off` bytes from the block's start:
 * [0] for the fall-through pc, [1] for any other. */
static struct rv_chain *slot_for(struct rv_block *blk, int64_t off)
{
    return &blk->chain[off != (int64_t)blk->bytes];
}

/* Calls the handler of `in` with h->x[] current; a nonzero result (RV_JUMP, RV_TRAP) leaves
 * the block through its one handler exit (emit_handler_exit), back to the run loop. */
static void emit_call_handler(struct jit_ctx *c, const struct rv_insn *in)
{
    struct x86_buf *b = c->b;

    jit_fp_fold(c);
    write_back(c);
    emit_alu_rr(b, X86_MOV, true, X86_RDI, X86_RBX);
    emit_mov_ri(b, X86_RSI, (uint64_t)(uintptr_t)in);
    emit_call(b, (const void *)in->fn);
    emit_test_rr(b, false, X86_RAX);
    if (c->nexits == JIT_MAX_EXITS) {
        b->overflow = true;
        return;
    }
    c->exits[c->nexits].from = emit_jcc(b, X86_CC_NE);
    c->exits[c->nexits++].idx = in->idx;
    reload_after_call(c, in->rd);
}

/* The exit of every handler call of the block that returned RV_JUMP or RV_TRAP, with eax =
 * that result: each call's stub sets ecx = the instruction's index in the block, and this
 * counts instret as exec_block() does (the instructions before it, and it too when it
 * retired: RV_JUMP) and returns to the run loop through chain entry [1]. One copy per block,
 * where each call had its own (some 50 bytes), since a block calls a handler or two on
 * average and leaves through one only on a jump, a trap or a CSR write. */
static void emit_handler_exit(struct jit_ctx *c)
{
    struct x86_buf *b = c->b;
    size_t exit;

    if (!c->nexits)
        return;
    exit = b->len;
    emit_alu_ri(b, X86_IMM_CMP, false, X86_RAX, RV_JUMP);
    emit_setcc(b, X86_CC_E, X86_RDX);
    emit_alu_rr(b, X86_ADD, true, X86_RCX, X86_RDX);
    emit_alu_mr(b, X86_ADD, true, X86_RCX, X86_RBX, HART_OFF(instret));
    emit_return(c, &c->blk->chain[1]);
    for (unsigned i = 0; i < c->nexits; i++) {
        emit_patch(b, c->exits[i].from);
        emit_mov_ri(b, X86_RCX, c->exits[i].idx);
        emit_jmp_back(b, exit);
    }
}

/* rax = guest address, rdx = its TLB entry's offset from rbp; jumps to a stub (recorded)
 * unless the entry's `tag_off` tag matches the page and the access is naturally aligned (a
 * misaligned one goes to the handler, which knows page crossings): the low bits of the
 * address are kept in the compared value, and a valid tag has none. On a hit rax becomes the
 * host address. */
static void emit_tlb_probe(struct jit_ctx *c, const struct rv_insn *in, unsigned size,
                           size_t tag_off)
{
    struct x86_buf *b = c->b;
    struct jit_stub *s = &c->stubs[c->nstubs++];

    s->probe = b->len;
    s->size = size;
    s->write = tag_off == offsetof(struct rv_tlb_entry, tag_w);
    emit_lea(b, X86_RAX, get_x(c, in->rs1, X86_RAX), (int32_t)in->imm);
    /* rdx = ((va >> 12) & (RV_TLB_SIZE - 1)) * 32, as (va >> 7) & ((RV_TLB_SIZE - 1) << 5). */
    emit_alu_rr(b, X86_MOV, false, X86_RDX, X86_RAX);
    emit_shift_ri(b, X86_SHR, false, X86_RDX, RV_PAGE_SHIFT - 5);
    emit_alu_ri(b, X86_IMM_AND, false, X86_RDX, (RV_TLB_SIZE - 1) << 5);
    emit_alu_rr(b, X86_MOV, true, X86_RCX, X86_RAX);
    emit_alu_ri(b, X86_IMM_AND, true, X86_RCX, (int32_t)(RV_PAGE_MASK | (size - 1)));
    emit_alu_rm_indexed(b, X86_CMP, X86_RCX, JIT_TLB_REG, X86_RDX, (int32_t)tag_off);
    s->in = in;
    s->miss = emit_jcc(b, X86_CC_NE);
    emit_alu_rm_indexed(b, X86_ADD, X86_RAX, JIT_TLB_REG, X86_RDX,
                        (int32_t)offsetof(struct rv_tlb_entry, addend));
}

static void emit_mem(struct jit_ctx *c, const struct rv_insn *in, const struct jit_op *op)
{
    struct x86_buf *b = c->b;
    int dst = cached_reg(c, in->rd);

    if (op->kind == JK_STORE) {
        emit_tlb_probe(c, in, op->arg, offsetof(struct rv_tlb_entry, tag_w));
        emit_store_sized(b, op->arg, get_x(c, in->rs2, X86_RCX), X86_RAX);
    } else {
        emit_tlb_probe(c, in, op->arg, offsetof(struct rv_tlb_entry, tag_r));
        if (dst >= 0) {
            emit_load_ext(b, op->arg, op->sign, (enum x86_reg)dst, X86_RAX);
        } else {
            emit_load_ext(b, op->arg, op->sign, X86_RAX, X86_RAX);
            set_x(c, in->rd, X86_RAX);
        }
    }
    c->stubs[c->nstubs - 1].done = b->len;
}

/* What jit_mem_slow() tells the slow path: probe again, go on after the access, or the
 * handler left the block (instret counted, h->jit_link set). */
#define JIT_SLOW_RETRY 0
#define JIT_SLOW_NEXT  1
#define JIT_SLOW_LEFT  2

/* A load's or store's `site`: its index in the block (bits 7:0), size (11:8), store (12). */
#define JIT_SITE(in, size, write) \
    ((uint32_t)(in)->idx | (uint32_t)(size) << 8 | (uint32_t)(write) << 12)

/* The slow path of a load or store of blk whose inline probe missed: h->x[] and h->fflags
 * are current. Refills the TLB entry where the access can be served from it (the probe is
 * tried again), else runs the instruction's handler, which takes the interpreter's slow path
 * (misaligned, MMIO, dirty logging's write-protected pages, page faults with their tval), and
 * where that leaves the block counts instret as emit_handler_exit() does. Called only from
 * translated code, on the hart's thread. */
static int jit_mem_slow(struct rv64_hart *h, uint64_t va, uint32_t site, struct rv_block *blk)
{
    const struct rv_insn *in = &blk->insn[site & 0xff];
    int r;

    if (rv_tlb_fill(h, va, site >> 8 & 0xf, site >> 12 & 1))
        return JIT_SLOW_RETRY;
    r = in->fn(h, in);
    if (r == RV_NEXT)
        return JIT_SLOW_NEXT;
    h->instret += in->idx + (r == RV_JUMP);
    h->jit_link = &blk->chain[1];
    return JIT_SLOW_LEFT;
}

/* The slow paths of the block's loads and stores, after its code. Each miss (rax = the guest
 * address) has a stub of 21 bytes: edx = its site, a call to the block's one slow path, then
 * back to its probe (JIT_SLOW_RETRY, zero flag set) or past its access. The slow path writes
 * the cached registers back and folds fflags once for all of them (the cached set and what
 * is written are the same at every point of the block), calls jit_mem_slow(), and reloads
 * every cached register. A call, rather than a jump with the way back in a register: the
 * return address is the way back, and the stub's `ret` is predicted. Before, each access had
 * its own copy of all this and of a handler call with its exit, some 250 bytes: most of a
 * block's code. */
static void emit_mem_slow(struct jit_ctx *c)
{
    struct x86_buf *b = c->b;
    size_t slow, left;

    if (!c->nstubs)
        return;
    slow = b->len;
    /* The call pushed 8 bytes: 8 more align the stack for jit_mem_slow() and give
     * jit_fp_fold() and jit_fp_clear() their [rsp] (the return address is above it). */
    emit_alu_ri(b, X86_IMM_SUB, true, X86_RSP, 8);
    emit_alu_rr(b, X86_MOV, true, X86_RSI, X86_RAX);
    write_back(c);
    jit_fp_fold(c);
    emit_alu_rr(b, X86_MOV, true, X86_RDI, X86_RBX);
    emit_mov_ri(b, X86_RCX, (uint64_t)(uintptr_t)c->blk);
    emit_call(b, (const void *)jit_mem_slow);
    emit_alu_ri(b, X86_IMM_CMP, false, X86_RAX, JIT_SLOW_LEFT);
    left = emit_jcc(b, X86_CC_E);
    emit_alu_rr(b, X86_MOV, false, X86_RSI, X86_RAX);
    reload_all(c);
    emit_alu_ri(b, X86_IMM_ADD, true, X86_RSP, 8);
    emit_test_rr(b, false, X86_RSI);
    emit_ret(b);
    emit_patch(b, left);
    emit_alu_ri(b, X86_IMM_ADD, true, X86_RSP, 16); /* the 8 above and the return address */
    jump_to_tail(c, false, -1);
    for (unsigned i = 0; i < c->nstubs; i++) {
        const struct jit_stub *s = &c->stubs[i];

        emit_patch(b, s->miss);
        emit_mov_ri(b, X86_RDX, JIT_SITE(s->in, s->size, s->write));
        emit_call_back(b, slow);
        emit_jcc_back(b, X86_CC_E, s->probe);
        emit_jmp_back(b, s->done);
    }
}

/* The block's shared way back to the run loop, reached by forward jumps from its exits:
 * h->jit_link = rcx, then the frame popped (emit_epilogue(), once per block rather than at
 * every exit). */
static void emit_tails(struct jit_ctx *c)
{
    struct x86_buf *b = c->b;

    for (unsigned i = 0; i < c->nlink; i++)
        emit_patch(b, c->to_link[i]);
    if (c->nlink)
        emit_store(b, true, X86_RCX, X86_RBX, HART_OFF(jit_link));
    for (unsigned i = 0; i < c->nepi; i++)
        emit_patch(b, c->to_epi[i]);
    if (c->nlink || c->nepi)
        emit_epilogue(b);
}

/* rax or rdx = x[rs1] / x[rs2] or the remainder, with RISC-V's results where x86 would
 * raise #DE (unprivileged §7.2): a zero divisor gives all ones and the dividend, and the
 * signed overflow (most negative / -1) gives the dividend and 0, which is what negating the
 * dividend gives for any divisor -1. W forms work on the low 32 bits; the caller
 * sign-extends the 32-bit result. */
static void emit_div(struct jit_ctx *c, const struct rv_insn *in, const struct jit_op *op)
{
    struct x86_buf *b = c->b;
    bool w64 = !op->w32;
    size_t zero, minus1 = 0, done[2];
    unsigned nd = 0;

    load_x(c, X86_RCX, in->rs2);
    load_x(c, X86_RAX, in->rs1);
    emit_test_rr(b, w64, X86_RCX);
    zero = emit_jcc(b, X86_CC_E);
    if (op->sign) {
        emit_alu_ri(b, X86_IMM_CMP, w64, X86_RCX, -1);
        minus1 = emit_jcc(b, X86_CC_E);
        emit_sign_extend_rdx(b, w64);
        emit_muldiv(b, X86_IDIV, w64, X86_RCX);
    } else {
        emit_alu_rr(b, X86_XOR, false, X86_RDX, X86_RDX);
        emit_muldiv(b, X86_DIV, w64, X86_RCX);
    }
    done[nd++] = emit_jmp(b);
    if (op->sign) {
        emit_patch(b, minus1);
        emit_neg(b, w64, X86_RAX);
        emit_alu_rr(b, X86_XOR, false, X86_RDX, X86_RDX);
        done[nd++] = emit_jmp(b);
    }
    emit_patch(b, zero);
    emit_alu_rr(b, X86_MOV, true, X86_RDX, X86_RAX);
    emit_mov_ri(b, X86_RAX, UINT64_MAX);
    for (unsigned i = 0; i < nd; i++)
        emit_patch(b, done[i]);
}

/* x[rd] = rax, sign-extended from 32 bits for W ops. */
static void emit_result(struct jit_ctx *c, const struct rv_insn *in, bool w32, enum x86_reg r)
{
    if (w32)
        emit_movsxd(c->b, r, r);
    set_x(c, in->rd, r);
}

/* Where an op that computes x[rd] from x[rs1] (and x[rs2], when reads2) works: rd's cached
 * register, unless loading x[rs1] into it would overwrite an x[rs2] still to be read; else
 * rax. Working in place spares the moves in and out of rax. */
static enum x86_reg work_reg(const struct jit_ctx *c, const struct rv_insn *in, bool reads2)
{
    int dst = cached_reg(c, in->rd);

    if (dst >= 0 && (!reads2 || in->rd != in->rs2 || in->rd == in->rs1))
        return (enum x86_reg)dst;
    return X86_RAX;
}

/* Emits `in`. Returns true when it ended the block itself (a jump that left it). */
static bool emit_insn(struct jit_ctx *c, const struct rv_insn *in)
{
    const struct jit_op *op = jit_op_for(in);
    struct x86_buf *b = c->b;
    struct rv_block *blk = c->blk;
    int64_t off = in->pc_off;
    int dst = cached_reg(c, in->rd);
    enum x86_reg src;
    size_t taken;

    if (!op) {
        if (jit_fp_inline(&c->fp, in))
            jit_fp_emit(c, in);
        else
            emit_call_handler(c, in);
        return false;
    }
    switch (op->kind) {
    case JK_LUI:
        if (dst >= 0) {
            emit_mov_ri(b, (enum x86_reg)dst, (uint64_t)in->imm);
        } else {
            emit_mov_ri(b, X86_RAX, (uint64_t)in->imm);
            set_x(c, in->rd, X86_RAX);
        }
        return false;
    case JK_AUIPC:
        emit_load(b, true, X86_RAX, X86_RBX, HART_OFF(pc));
        emit_mov_ri(b, X86_RCX, (uint64_t)in->imm + (uint64_t)off);
        emit_alu_rr(b, X86_ADD, true, X86_RAX, X86_RCX);
        set_x(c, in->rd, X86_RAX);
        return false;
    case JK_JAL:
        emit_load(b, true, X86_RAX, X86_RBX, HART_OFF(pc));
        emit_alu_ri(b, X86_IMM_ADD, true, X86_RAX, (int32_t)(off + in->len));
        set_x(c, in->rd, X86_RAX);
        if (off + in->imm != 0)
            emit_add_mi(b, X86_RBX, HART_OFF(pc), (int32_t)(off + in->imm));
        emit_leave(c, in->idx + 1u, slot_for(blk, off + in->imm), NULL, off + in->imm == 0,
                   off + in->imm);
        return true;
    case JK_JALR:
        load_x(c, X86_RCX, in->rs1);
        emit_mov_ri(b, X86_RAX, (uint64_t)in->imm);
        emit_alu_rr(b, X86_ADD, true, X86_RCX, X86_RAX);
        emit_alu_ri(b, X86_IMM_AND, true, X86_RCX, -2);
        emit_load(b, true, X86_RAX, X86_RBX, HART_OFF(pc));
        emit_alu_ri(b, X86_IMM_ADD, true, X86_RAX, (int32_t)(off + in->len));
        set_x(c, in->rd, X86_RAX);
        emit_store(b, true, X86_RCX, X86_RBX, HART_OFF(pc));
        emit_leave(c, in->idx + 1u, &blk->chain[1], &blk->chain[0], false, 0);
        return true;
    case JK_BRANCH:
        src = get_x(c, in->rs1, X86_RAX);
        emit_alu_rr(b, X86_CMP, true, src, get_x(c, in->rs2, X86_RCX));
        if (off + in->imm == 0) {
            /* A loop's closing branch: the turn back is the straight path (one taken jump
             * per turn, backward), the exit jumps forward. */
            taken = emit_jcc(b, x86_cc_not((enum x86_cc)op->arg));
            emit_leave(c, in->idx + 1u, slot_for(blk, 0), NULL, true, 0);
            emit_patch(b, taken);
            emit_add_mi(b, X86_RBX, HART_OFF(pc), (int32_t)(off + in->len));
            emit_leave(c, in->idx + 1u, slot_for(blk, off + in->len), NULL, false, off + in->len);
            return true;
        }
        taken = emit_jcc(b, (enum x86_cc)op->arg);
        emit_add_mi(b, X86_RBX, HART_OFF(pc), (int32_t)(off + in->len));
        emit_leave(c, in->idx + 1u, slot_for(blk, off + in->len), NULL, false, off + in->len);
        emit_patch(b, taken);
        if (off + in->imm != 0)
            emit_add_mi(b, X86_RBX, HART_OFF(pc), (int32_t)(off + in->imm));
        emit_leave(c, in->idx + 1u, slot_for(blk, off + in->imm), NULL, off + in->imm == 0,
                   off + in->imm);
        return true;
    case JK_LOAD:
    case JK_STORE: emit_mem(c, in, op); return false;
    case JK_ALU_RR:
        src = work_reg(c, in, true);
        load_x(c, src, in->rs1);
        emit_alu_rr(b, (enum x86_alu)op->arg, true, src, get_x(c, in->rs2, X86_RCX));
        emit_result(c, in, op->w32, src);
        return false;
    case JK_ALU_RI:
        src = work_reg(c, in, false);
        load_x(c, src, in->rs1);
        /* addi, ori, xori with 0 (mv, sext.w) change nothing but the flags, unused here. */
        if (in->imm || op->arg == X86_IMM_AND)
            emit_alu_ri(b, (enum x86_alu_imm)op->arg, true, src, (int32_t)in->imm);
        emit_result(c, in, op->w32, src);
        return false;
    case JK_SLT_RR:
        src = get_x(c, in->rs1, X86_RCX);
        emit_alu_rr(b, X86_CMP, true, src, get_x(c, in->rs2, X86_RDX));
        emit_setcc(b, (enum x86_cc)op->arg, X86_RAX);
        set_x(c, in->rd, X86_RAX);
        return false;
    case JK_SLT_RI:
        emit_alu_ri(b, X86_IMM_CMP, true, get_x(c, in->rs1, X86_RCX), (int32_t)in->imm);
        emit_setcc(b, (enum x86_cc)op->arg, X86_RAX);
        set_x(c, in->rd, X86_RAX);
        return false;
    case JK_SHIFT_RR:
        /* x86 masks a shift count in cl to 6 bits (5 for 32-bit operands), as RISC-V does. */
        load_x(c, X86_RCX, in->rs2);
        load_x(c, X86_RAX, in->rs1);
        emit_shift_rcl(b, (enum x86_shift)op->arg, !op->w32, X86_RAX);
        emit_result(c, in, op->w32, X86_RAX);
        return false;
    case JK_SHIFT_RI:
        src = work_reg(c, in, false);
        load_x(c, src, in->rs1);
        emit_shift_ri(b, (enum x86_shift)op->arg, !op->w32, src,
                      (uint8_t)(in->imm & (op->w32 ? 31 : 63)));
        emit_result(c, in, op->w32, src);
        return false;
    case JK_MUL:
        src = work_reg(c, in, true);
        load_x(c, src, in->rs1);
        emit_imul_rr(b, !op->w32, src, get_x(c, in->rs2, X86_RCX));
        emit_result(c, in, op->w32, src);
        return false;
    case JK_MULH:
        load_x(c, X86_RAX, in->rs1);
        emit_muldiv(b, op->sign ? X86_IMUL1 : X86_MUL, true, get_x(c, in->rs2, X86_RCX));
        set_x(c, in->rd, X86_RDX);
        return false;
    case JK_DIV:
        emit_div(c, in, op);
        emit_result(c, in, op->w32, op->arg ? X86_RDX : X86_RAX);
        return false;
    case JK_SHADD:
        load_x(c, X86_RAX, in->rs1);
        if (op->w32)
            emit_alu_rr(b, X86_MOV, false, X86_RAX, X86_RAX); /* mov eax, eax zero-extends */
        if (op->arg)
            emit_shift_ri(b, X86_SHL, true, X86_RAX, op->arg);
        emit_alu_rr(b, X86_ADD, true, X86_RAX, get_x(c, in->rs2, X86_RCX));
        set_x(c, in->rd, X86_RAX);
        return false;
    case JK_SLLI_UW:
        load_x(c, X86_RAX, in->rs1);
        emit_alu_rr(b, X86_MOV, false, X86_RAX, X86_RAX);
        emit_shift_ri(b, X86_SHL, true, X86_RAX, (uint8_t)(in->imm & 63));
        set_x(c, in->rd, X86_RAX);
        return false;
    case JK_NOT_RR:
        load_x(c, X86_RAX, in->rs2);
        emit_not(b, X86_RAX);
        emit_alu_rr(b, (enum x86_alu)op->arg, true, X86_RAX, get_x(c, in->rs1, X86_RCX));
        set_x(c, in->rd, X86_RAX);
        return false;
    case JK_MINMAX:
        load_x(c, X86_RAX, in->rs1);
        src = get_x(c, in->rs2, X86_RCX);
        emit_alu_rr(b, X86_CMP, true, X86_RAX, src);
        emit_cmov(b, (enum x86_cc)op->arg, X86_RAX, src);
        set_x(c, in->rd, X86_RAX);
        return false;
    case JK_EXT:
        load_x(c, X86_RAX, in->rs1);
        emit_movx_rr(b, op->arg, op->sign, X86_RAX, X86_RAX);
        set_x(c, in->rd, X86_RAX);
        return false;
    case JK_REV8:
        load_x(c, X86_RAX, in->rs1);
        emit_bswap(b, X86_RAX);
        set_x(c, in->rd, X86_RAX);
        return false;
    case JK_BIT_RR:
    case JK_BIT_RI:
        load_x(c, X86_RAX, in->rs1);
        if (op->kind == JK_BIT_RR)
            emit_bt_rr(b, (enum x86_bt)op->arg, X86_RAX, get_x(c, in->rs2, X86_RCX));
        else
            emit_bt_ri(b, (enum x86_bt)op->arg, X86_RAX, (uint8_t)(in->imm & 63));
        if (op->arg == X86_BT)
            emit_setcc(b, X86_CC_B, X86_RAX);
        set_x(c, in->rd, X86_RAX);
        return false;
    case JK_FENCE:
        /* Guest registers held in host registers are the hart's own: nothing to write back. */
        if (op->arg)
            emit_mfence(b);
        return false;
    }
    emit_call_handler(c, in);
    return false;
}

/* Which guest registers the inline translation of `in` reads (bits) and writes (rd or -1). */
static uint64_t insn_reads(const struct rv_insn *in, const struct jit_op *op)
{
    switch (op->kind) {
    case JK_LUI:
    case JK_AUIPC:
    case JK_JAL:
    case JK_FENCE: return 0;
    case JK_JALR:
    case JK_LOAD:
    case JK_ALU_RI:
    case JK_SLT_RI:
    case JK_SHIFT_RI:
    case JK_SLLI_UW:
    case JK_EXT:
    case JK_REV8:
    case JK_BIT_RI: return 1ull << in->rs1;
    default: return 1ull << in->rs1 | 1ull << in->rs2;
    }
}

/* True when the block's code will jump back to its first instruction (emit_leave's `self`):
 * the first inline jump or branch, which ends the translation (emit_insn), goes there. */
static bool block_loops(const struct rv_block *b)
{
    for (unsigned i = 0; i < b->n; i++) {
        const struct rv_insn *in = &b->insn[i];
        const struct jit_op *op = jit_op_for(in);

        if (op && (op->kind == JK_JAL || op->kind == JK_BRANCH))
            return in->pc_off + in->imm == 0;
        if (op && op->kind == JK_JALR)
            return false;
    }
    return false;
}

/* Picks the registers to cache: those the block's inline code touches at least twice (once,
 * in a loop: each turn would load it again), most used first, at most JIT_MAX_CACHED (less
 * JIT_LOOP_COUNT's slot in a loop); x0 and the sink never. */
static void choose_cached(struct jit_ctx *c)
{
    unsigned uses[RV_X_SINK + 1] = {0};

    for (unsigned i = 0; i < c->blk->n; i++) {
        const struct rv_insn *in = &c->blk->insn[i];
        const struct jit_op *op = jit_op_for(in);
        uint64_t reads;

        if (op)
            reads = insn_reads(in, op);
        else
            reads = jit_fp_inline(&c->fp, in) ? jit_fp_int_reads(in) : 0;
        for (unsigned r = 1; r < RV_X_SINK; r++)
            uses[r] += (unsigned)(reads >> r & 1);
        if (op && op->kind != JK_BRANCH && op->kind != JK_STORE)
            uses[in->rd]++;
    }
    memset(c->slot, -1, sizeof(c->slot));
    c->ncached = 0;
    while (c->ncached < JIT_MAX_CACHED - c->loops) {
        unsigned best = 0;

        for (unsigned r = 1; r < RV_X_SINK; r++) {
            if (c->slot[r] < 0 && uses[r] >= 2u - c->loops && uses[r] > uses[best])
                best = r;
        }
        if (!best)
            break;
        c->slot[best] = (int8_t)c->ncached;
        c->cached[c->ncached++] = (uint8_t)best;
    }
    c->written = 0;
    for (unsigned i = 0; i < c->blk->n; i++) {
        unsigned rd = c->blk->insn[i].rd;

        if (rd < RV_X_SINK && c->slot[rd] >= 0)
            c->written |= 1ull << rd;
    }
}

/* Where the body starts (the prologue's end, and the target of chained jumps): the cached
 * registers loaded. */
static void emit_body_entry(struct jit_ctx *c)
{
    struct x86_buf *b = c->b;

    for (unsigned i = 0; i < c->ncached; i++)
        emit_load(b, true, cache_host[i], X86_RBX, XOFF(c->cached[i]));
    if (c->loops)
        emit_alu_rr(b, X86_XOR, false, JIT_LOOP_COUNT, JIT_LOOP_COUNT);
    jit_fp_clear(c);
    c->loop_head = b->len;
}

/* Maps the cache twice, read+execute and read+write, from one memfd: no address is ever
 * writable and executable, and a translation needs no mprotect(), whose TLB shootdown (an
 * IPI to every CPU that ran one of the VMM's threads) cost more than the translation itself
 * when each block paid for two. Falls back to one private read+execute mapping, as it also
 * does when TESSERA_JIT_SINGLE_MAP is set (so that tests run that path too). 0 or -1. */
static int cache_map(struct rv_jit *j)
{
    int fd = getenv("TESSERA_JIT_SINGLE_MAP") ? -1 : memfd_create("tessera-jit", MFD_CLOEXEC);

    j->rw = NULL;
    if (fd >= 0 && ftruncate(fd, RV_JIT_CACHE_MAX) == 0) {
        j->cache = mmap(NULL, RV_JIT_CACHE_MAX, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
        j->rw = mmap(NULL, RV_JIT_CACHE_MAX, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (j->cache != MAP_FAILED && j->rw != MAP_FAILED) {
            close(fd);
            return 0;
        }
        if (j->cache != MAP_FAILED)
            munmap(j->cache, RV_JIT_CACHE_MAX);
        if (j->rw != MAP_FAILED)
            munmap(j->rw, RV_JIT_CACHE_MAX);
        j->rw = NULL;
    }
    if (fd >= 0)
        close(fd);
    log_debug("jit: no double-mapped code cache (%d); translations use mprotect", errno);
    j->cache = mmap(NULL, RV_JIT_CACHE_MAX, PROT_READ | PROT_EXEC,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return j->cache == MAP_FAILED ? -1 : 0;
}

/* Maps the double-mapped cache's pages in, in both views, up to at least `end` bytes, a
 * JIT_POPULATE_CHUNK at a time, and drops the read+write view's pages below `start` (where
 * translations are written until the next flush). Without the first every 4 KiB of new code
 * costs a page fault on the write through `rw` (and more on the first runs through `cache`):
 * where the host is itself a virtual machine a fault costs microseconds. Without the second
 * each page of code would be mapped twice, and a process's RSS counts a shared page once per
 * mapping: the code would count double. MADV_DONTNEED on a shared mapping only unmaps there;
 * the page stays in the memfd and in the read+execute view. Best effort: a kernel without
 * MADV_POPULATE_* (before 5.14) or short of memory leaves the pages to be faulted in one by
 * one, as before. */
static void cache_populate(struct rv_jit *j, size_t start, size_t end)
{
    size_t lo = start & ~(size_t)(RV_PAGE_SIZE - 1);

    if (!j->rw)
        return;
    if (j->no_populate) {
        /* Pages fault in as they are written; drop them a chunk at a time all the same. */
        if (lo >= j->rw_lo + JIT_POPULATE_CHUNK &&
            !madvise(j->rw + j->rw_lo, lo - j->rw_lo, MADV_DONTNEED))
            j->rw_lo = lo;
        return;
    }
    if (j->populated >= end)
        return;
    if (lo > j->rw_lo && !madvise(j->rw + j->rw_lo, lo - j->rw_lo, MADV_DONTNEED))
        j->rw_lo = lo;
    while (j->populated < end) {
        size_t len = j->limit - j->populated;

        if (len > JIT_POPULATE_CHUNK)
            len = JIT_POPULATE_CHUNK;
        if (mem_populate(j->rw + j->populated, len) ||
            madvise(j->cache + j->populated, len, MADV_POPULATE_READ)) {
            log_debug("jit: cannot populate the code cache (%d); pages fault in one by one", errno);
            j->no_populate = true;
            return;
        }
        j->populated += len;
    }
}

int rv_jit_create(struct rv_jit **out)
{
    struct rv_jit *j = calloc(1, sizeof(*j));
    const char *env;

    if (!j)
        return -ENOMEM;
    pthread_once(&jit_op_once, jit_op_index_fill);
    jit_fp_init(&j->ctx.fp);
    j->stage = malloc(JIT_STAGE_SIZE);
    if (!j->stage)
        goto free_jit;
    if (cache_map(j))
        goto free_stage;
    j->limit = RV_JIT_CACHE_SIZE;
    j->threshold = RV_JIT_THRESHOLD;
    env = getenv("TESSERA_JIT_THRESHOLD");
    if (env && *env) {
        char *end;
        unsigned long v = strtoul(env, &end, 10);

        if (*end || v > 1000000)
            log_warn("TESSERA_JIT_THRESHOLD '%s': expected 0 to 1000000; using %u", env,
                     RV_JIT_THRESHOLD);
        else
            j->threshold = (uint32_t)v;
    }
    *out = j;
    return 0;

free_stage:
    free(j->stage);
free_jit:
    free(j);
    return -ENOMEM;
}

void rv_jit_destroy(struct rv_jit *j)
{
    if (!j)
        return;
    log_debug("jit: %" PRIu64 " blocks translated, %" PRIu64 " bytes of code (%" PRIu64
              " per block), %" PRIu64 " cache flushes",
              j->stats.blocks, j->stats.emitted,
              j->stats.blocks ? j->stats.emitted / j->stats.blocks : 0, j->stats.flushes);
    munmap(j->cache, RV_JIT_CACHE_MAX);
    if (j->rw)
        munmap(j->rw, RV_JIT_CACHE_MAX);
    free(j->stage);
    free(j);
}

uint32_t rv_jit_threshold(const struct rv_jit *j)
{
    return j->threshold;
}

void rv_jit_flush(struct rv_jit *j)
{
    /* Translations are written from the start again: the read+write view's pages at the end
     * go, and its pages at the start are mapped anew as the translations reach them (they
     * are in the memfd already: no allocation). */
    if (j->rw && j->used > j->rw_lo)
        madvise(j->rw + j->rw_lo, j->limit - j->rw_lo, MADV_DONTNEED);
    j->used = 0;
    j->populated = j->rw_lo = 0;
    j->stats.bytes = 0;
    j->stats.flushes++;
}

void rv_jit_grow(struct rv_jit *j)
{
    if (j->limit < RV_JIT_CACHE_MAX)
        j->limit *= 2;
}

/* The block's instructions, to the exit after its last one unless one of them left. */
static void emit_body(struct jit_ctx *c)
{
    struct rv_block *blk = c->blk;
    bool left = false;

    for (unsigned i = 0; i < blk->n && !left; i++)
        left = emit_insn(c, &blk->insn[i]);
    if (!left) {
        emit_add_mi(c->b, X86_RBX, HART_OFF(pc), (int32_t)blk->bytes);
        emit_leave(c, blk->n, &blk->chain[0], NULL, false, (int64_t)blk->bytes);
    }
}

rv_jit_fn rv_jit_compile(struct rv_jit *j, struct rv_block *blk, bool *full)
{
    size_t start = (j->used + JIT_ALIGN - 1) & ~(size_t)(JIT_ALIGN - 1);
    size_t lo, hi, slow;
    struct x86_buf b;
    struct jit_ctx *c = &j->ctx;

    *full = false;
    x86_buf_init(&b, j->stage, JIT_STAGE_SIZE);
    c->b = &b;
    c->blk = blk;
    c->nstubs = c->nexits = c->nlink = c->nepi = 0;
    c->loops = block_loops(blk);
    jit_fp_begin(&c->fp, blk);
    emit_prologue(&b);
    if (b.len != RV_JIT_PROLOGUE_LEN) {
        log_error("jit: the prologue is %zu bytes, not %u", b.len, RV_JIT_PROLOGUE_LEN);
        return NULL;
    }
    choose_cached(c);
    emit_body_entry(c);
    slow = jit_fp_check(c);
    emit_body(c);
    if (slow) {
        /* The block again with its F and D instructions through their handlers, where the
         * check at its start fails (jit_fp.h); its loop, if any, stays in this copy. */
        emit_patch(&b, slow);
        c->loop_head = b.len;
        c->fp.off = true;
        emit_body(c);
        c->fp.off = false;
    }
    /* The FP stubs call handlers, and every handler call can leave through the handler exit;
     * all leave through the tails. */
    jit_fp_emit_stubs(c);
    emit_mem_slow(c);
    emit_handler_exit(c);
    emit_tails(c);
    if (b.overflow)
        return NULL;
    if (start + b.len > j->limit) {
        *full = true;
        return NULL;
    }
    /* Nothing of this hart's code runs during the copy (it is this hart's thread that
     * copies), and no other thread runs this cache. */
    if (j->rw) {
        cache_populate(j, start, start + b.len);
        memcpy(j->rw + start, b.p, b.len);
        goto done;
    }
    /* W^X without a second mapping: the pages being written are not executable meanwhile. */
    lo = start & ~(size_t)(RV_PAGE_SIZE - 1);
    hi = (start + b.len + RV_PAGE_SIZE - 1) & ~(size_t)(RV_PAGE_SIZE - 1);
    if (mprotect(j->cache + lo, hi - lo, PROT_READ | PROT_WRITE)) {
        log_warn("jit: mprotect of the code cache for writing failed (%d)", errno);
        *full = true;
        return NULL;
    }
    memcpy(j->cache + start, b.p, b.len);
    if (mprotect(j->cache + lo, hi - lo, PROT_READ | PROT_EXEC)) {
        /* Pages left without execute: the caller flushes, so nothing jumps into them, and the
         * next translation tries again. */
        log_warn("jit: mprotect of the code cache for execution failed (%d)", errno);
        *full = true;
        return NULL;
    }
done:
    j->used = start + b.len;
    j->stats.blocks++;
    j->stats.bytes = j->used;
    j->stats.emitted += b.len;
    return (rv_jit_fn)(uintptr_t)(j->cache + start);
}

void rv_jit_get_stats(const struct rv_jit *j, struct rv_jit_stats *out)
{
    *out = j->stats;
}

/* For jit_fp.c (jit_fp.h). */
struct x86_buf *jit_ctx_buf(struct jit_ctx *c)
{
    return c->b;
}

struct jit_fp *jit_ctx_fp(struct jit_ctx *c)
{
    return &c->fp;
}

int jit_ctx_get_x(struct jit_ctx *c, unsigned r, int scratch)
{
    return (int)get_x(c, r, (enum x86_reg)scratch);
}

void jit_ctx_set_x(struct jit_ctx *c, unsigned rd, int src)
{
    set_x(c, rd, (enum x86_reg)src);
}

void jit_ctx_mem_probe(struct jit_ctx *c, const struct rv_insn *in, unsigned size, bool write)
{
    emit_tlb_probe(c, in, size,
                   write ? offsetof(struct rv_tlb_entry, tag_w)
                         : offsetof(struct rv_tlb_entry, tag_r));
}

void jit_ctx_mem_done(struct jit_ctx *c)
{
    c->stubs[c->nstubs - 1].done = c->b->len;
}

void jit_ctx_call_handler(struct jit_ctx *c, const struct rv_insn *in)
{
    emit_call_handler(c, in);
}

#else /* !RV_JIT_HOST: no translator; engine "jit" is not registered. */

int rv_jit_create(struct rv_jit **out)
{
    (void)out;
    return -ENOTSUP;
}

void rv_jit_destroy(struct rv_jit *j)
{
    (void)j;
}

uint32_t rv_jit_threshold(const struct rv_jit *j)
{
    (void)j;
    return UINT32_MAX;
}

void rv_jit_flush(struct rv_jit *j)
{
    (void)j;
}

void rv_jit_grow(struct rv_jit *j)
{
    (void)j;
}

rv_jit_fn rv_jit_compile(struct rv_jit *j, struct rv_block *blk, bool *full)
{
    (void)j, (void)blk;
    *full = false;
    return NULL;
}

void rv_jit_get_stats(const struct rv_jit *j, struct rv_jit_stats *out)
{
    (void)j;
    *out = (struct rv_jit_stats){0};
}

#endif
