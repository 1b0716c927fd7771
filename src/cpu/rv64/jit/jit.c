/* The translator and its code cache (jit.h). Generated code keeps the hart pointer in rbx
 * (callee-saved, so it survives calls to handlers) and the guest registers in h->x[], where
 * the interpreter's handlers expect them; rax, rcx, rdx, rsi and rdi are scratch. A block's
 * code is one function `void f(struct rv64_hart *h)` under the System V AMD64 ABI: it pushes
 * rbx, which also leaves the stack 16-byte aligned for the calls it makes. */
#include "cpu/rv64/jit/jit.h"

#include <errno.h>
#include <stdlib.h>

#if RV_JIT_HOST

#include <inttypes.h>
#include <stddef.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/log.h"
#include "cpu/rv64/block.h"
#include "cpu/rv64/insn.h"
#include "cpu/rv64/jit/emit.h"

#define JIT_CACHE_SIZE (32u << 20)
#define JIT_STAGE_SIZE (64u << 10) /* one block of at most 64 instructions needs < 8 KiB */
#define JIT_ALIGN      16u

struct rv_jit {
    uint8_t *cache; /* JIT_CACHE_SIZE bytes, read+execute */
    /* The same memory mapped read+write at another address (a memfd mapped twice), or NULL
     * where that failed: then `cache` is made read+write around each copy instead. */
    uint8_t *rw;
    size_t used;
    uint8_t *stage; /* where a translation is emitted before it is copied in */
    uint32_t threshold;
    struct rv_jit_stats stats;
};

#define HART_OFF(field) ((int32_t)offsetof(struct rv64_hart, field))
#define XOFF(r)         ((int32_t)(offsetof(struct rv64_hart, x) + 8u * (r)))

#define CHAIN_OFF(field) ((int32_t)offsetof(struct rv_chain, field))

_Static_assert(sizeof(((struct rv64_hart *)0)->stop) == 1, "stop is tested as one byte");
_Static_assert(sizeof(((struct rv64_hart *)0)->mmu_fetch) == 4 &&
                   sizeof(((struct rv_chain *)0)->fetch_idx) == 4,
               "fetch contexts are compared as 32 bits");
_Static_assert(sizeof(struct rv_tlb_entry) == 32, "the TLB probe scales the index by 32");
_Static_assert(sizeof(((struct rv64_hart *)0)->mmu_data) == 4, "mmu_data is read as 32 bits");
_Static_assert(offsetof(struct rv64_hart, tlb) + sizeof(((struct rv64_hart *)0)->tlb) <
                   (size_t)INT32_MAX,
               "the TLB is reached with a 32-bit displacement");

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
    JK_MULH, /* sign: signed (mulh) or unsigned (mulhu) */
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
};

static const struct jit_op *jit_op_find(rv_exec_fn fn)
{
    for (size_t i = 0; i < sizeof(jit_ops) / sizeof(jit_ops[0]); i++) {
        if (jit_ops[i].fn == fn)
            return &jit_ops[i];
    }
    return NULL;
}

static bool fits_i32(int64_t v)
{
    return v >= INT32_MIN && v <= INT32_MAX;
}

/* Leaves the block once h->pc holds the next pc, with `retired` instructions retired in all,
 * through chain entry `slot` of the block (jit.h, "Chaining"): into the successor's code when
 * the entry holds and nothing needs the run loop, else back to the loop with h->jit_link =
 * slot. The successor is entered as if the loop had called it: rdi = h, our frame popped. */
static void emit_leave(struct x86_buf *b, unsigned retired, struct rv_chain *slot)
{
    size_t out[7];
    unsigned n = 0;

    emit_add_mi(b, X86_RBX, HART_OFF(instret), (int32_t)retired);
    emit_mov_ri(b, X86_RCX, (uint64_t)(uintptr_t)slot);
    emit_store(b, true, X86_RCX, X86_RBX, HART_OFF(jit_link));
    emit_load(b, true, X86_RAX, X86_RBX, HART_OFF(pc));
    emit_alu_rm(b, X86_CMP, true, X86_RAX, X86_RCX, CHAIN_OFF(pc));
    out[n++] = emit_jcc(b, X86_CC_NE);
    emit_load(b, true, X86_RAX, X86_RBX, HART_OFF(fetch_gen));
    emit_alu_rm(b, X86_CMP, true, X86_RAX, X86_RCX, CHAIN_OFF(gen));
    out[n++] = emit_jcc(b, X86_CC_NE);
    emit_load(b, false, X86_RAX, X86_RBX, HART_OFF(mmu_fetch));
    emit_alu_rm(b, X86_CMP, false, X86_RAX, X86_RCX, CHAIN_OFF(fetch_idx));
    out[n++] = emit_jcc(b, X86_CC_NE);
    emit_load(b, true, X86_RAX, X86_RCX, CHAIN_OFF(blk));
    emit_alu_ri(b, X86_IMM_CMP, true, X86_RAX, 0);
    out[n++] = emit_jcc(b, X86_CC_E);
    emit_load(b, true, X86_RAX, X86_RAX, (int32_t)offsetof(struct rv_block, code));
    emit_alu_ri(b, X86_IMM_CMP, true, X86_RAX, 0);
    out[n++] = emit_jcc(b, X86_CC_E);
    emit_cmp_m8_zero(b, X86_RBX, HART_OFF(stop));
    out[n++] = emit_jcc(b, X86_CC_NE);
    emit_load(b, true, X86_RDX, X86_RBX, HART_OFF(mip));
    emit_alu_rm(b, X86_AND, true, X86_RDX, X86_RBX, HART_OFF(mie));
    out[n++] = emit_jcc(b, X86_CC_NE);
    emit_alu_rr(b, X86_MOV, true, X86_RDI, X86_RBX);
    emit_pop(b, X86_RBX);
    emit_jmp_reg(b, X86_RAX);
    for (unsigned i = 0; i < n; i++)
        emit_patch(b, out[i]);
    emit_pop(b, X86_RBX);
    emit_ret(b);
}

/* The chain entry the run loop would use after a jump of `off` bytes from the block's start:
 * [0] for the fall-through pc, [1] for any other. */
static struct rv_chain *slot_for(struct rv_block *blk, int64_t off)
{
    return &blk->chain[off != (int64_t)blk->bytes];
}

/* Runs instruction `in` through its interpreter handler; a nonzero result (RV_JUMP, RV_TRAP)
 * leaves the block, back to the run loop, with instret counted as exec_block() counts it. */
static void emit_handler(struct x86_buf *b, struct rv_block *blk, const struct rv_insn *in)
{
    size_t next;

    emit_alu_rr(b, X86_MOV, true, X86_RDI, X86_RBX);
    emit_mov_ri(b, X86_RSI, (uint64_t)(uintptr_t)in);
    emit_call(b, (const void *)in->fn);
    emit_alu_ri(b, X86_IMM_CMP, false, X86_RAX, RV_NEXT);
    next = emit_jcc(b, X86_CC_E);
    emit_alu_ri(b, X86_IMM_CMP, false, X86_RAX, RV_JUMP);
    emit_setcc(b, X86_CC_E, X86_RCX);
    emit_alu_ri(b, X86_IMM_ADD, true, X86_RCX, in->idx);
    emit_add_mr(b, X86_RCX, X86_RBX, HART_OFF(instret));
    emit_mov_ri(b, X86_RCX, (uint64_t)(uintptr_t)&blk->chain[1]);
    emit_store(b, true, X86_RCX, X86_RBX, HART_OFF(jit_link));
    emit_pop(b, X86_RBX);
    emit_ret(b);
    emit_patch(b, next);
}

/* rax = guest address, rdx = the TLB entry's address minus offsetof(hart, tlb); jumps to the
 * slow path (patch offsets in miss[]) unless the entry's `tag_off` tag matches and the access
 * is naturally aligned (a misaligned one goes to the handler, which knows page crossings).
 * On a hit rax becomes the host address. Returns how many miss jumps it emitted. */
static unsigned emit_tlb_probe(struct x86_buf *b, const struct rv_insn *in, unsigned size,
                               size_t tag_off, size_t miss[2])
{
    unsigned nmiss = 0;

    emit_load(b, true, X86_RAX, X86_RBX, XOFF(in->rs1));
    if (in->imm)
        emit_alu_ri(b, X86_IMM_ADD, true, X86_RAX, (int32_t)in->imm);
    emit_alu_rr(b, X86_MOV, true, X86_RDX, X86_RAX);
    emit_shift_ri(b, X86_SHR, true, X86_RDX, RV_PAGE_SHIFT);
    emit_alu_ri(b, X86_IMM_AND, false, X86_RDX, RV_TLB_SIZE - 1);
    emit_load(b, false, X86_RCX, X86_RBX, HART_OFF(mmu_data));
    emit_shift_ri(b, X86_SHL, false, X86_RCX, RV_TLB_BITS);
    emit_alu_rr(b, X86_ADD, false, X86_RDX, X86_RCX);
    emit_shift_ri(b, X86_SHL, true, X86_RDX, 5);
    emit_alu_rr(b, X86_ADD, true, X86_RDX, X86_RBX);
    emit_alu_rr(b, X86_MOV, true, X86_RCX, X86_RAX);
    emit_alu_ri(b, X86_IMM_AND, true, X86_RCX, -(int32_t)RV_PAGE_SIZE);
    emit_alu_rm(b, X86_CMP, true, X86_RCX, X86_RDX, HART_OFF(tlb) + (int32_t)tag_off);
    miss[nmiss++] = emit_jcc(b, X86_CC_NE);
    if (size > 1) {
        emit_test_ri32(b, X86_RAX, size - 1);
        miss[nmiss++] = emit_jcc(b, X86_CC_NE);
    }
    emit_alu_rm(b, X86_ADD, true, X86_RAX, X86_RDX,
                HART_OFF(tlb) + (int32_t)offsetof(struct rv_tlb_entry, addend));
    return nmiss;
}

static void emit_mem(struct x86_buf *b, struct rv_block *blk, const struct rv_insn *in,
                     const struct jit_op *op)
{
    bool store = op->kind == JK_STORE;
    size_t miss[2], done;
    unsigned nmiss;

    nmiss = emit_tlb_probe(
        b, in, op->arg,
        store ? offsetof(struct rv_tlb_entry, tag_w) : offsetof(struct rv_tlb_entry, tag_r), miss);
    if (store) {
        emit_load(b, true, X86_RCX, X86_RBX, XOFF(in->rs2));
        emit_store_sized(b, op->arg, X86_RCX, X86_RAX);
    } else {
        emit_load_ext(b, op->arg, op->sign, X86_RAX, X86_RAX);
        emit_store(b, true, X86_RAX, X86_RBX, XOFF(in->rd));
    }
    done = emit_jmp(b);
    for (unsigned i = 0; i < nmiss; i++)
        emit_patch(b, miss[i]);
    emit_handler(b, blk, in);
    emit_patch(b, done);
}

/* rax = x[rs1] OP x[rs2] or imm, then x[rd] = rax (sign-extended from 32 bits for W ops). */
static void emit_result(struct x86_buf *b, const struct rv_insn *in, bool w32)
{
    if (w32)
        emit_movsxd(b, X86_RAX, X86_RAX);
    emit_store(b, true, X86_RAX, X86_RBX, XOFF(in->rd));
}

/* Emits `in`. Returns true when it ended the block itself (a jump that left it). */
static bool emit_insn(struct x86_buf *b, struct rv_block *blk, const struct rv_insn *in)
{
    const struct jit_op *op = jit_op_find(in->fn);
    int64_t off = in->pc_off;
    size_t taken;

    if (!op ||
        ((op->kind == JK_ALU_RI || op->kind == JK_SLT_RI || op->kind == JK_LOAD ||
          op->kind == JK_STORE || op->kind == JK_LUI) &&
         !fits_i32(in->imm)) ||
        ((op->kind == JK_JAL || op->kind == JK_BRANCH) && !fits_i32(in->imm + off))) {
        emit_handler(b, blk, in);
        return false;
    }
    switch (op->kind) {
    case JK_LUI:
        emit_mov_ri(b, X86_RAX, (uint64_t)in->imm);
        emit_result(b, in, false);
        return false;
    case JK_AUIPC:
        emit_load(b, true, X86_RAX, X86_RBX, HART_OFF(pc));
        emit_mov_ri(b, X86_RCX, (uint64_t)in->imm + (uint64_t)off);
        emit_alu_rr(b, X86_ADD, true, X86_RAX, X86_RCX);
        emit_result(b, in, false);
        return false;
    case JK_JAL:
        emit_load(b, true, X86_RAX, X86_RBX, HART_OFF(pc));
        emit_alu_ri(b, X86_IMM_ADD, true, X86_RAX, (int32_t)(off + in->len));
        emit_store(b, true, X86_RAX, X86_RBX, XOFF(in->rd));
        emit_add_mi(b, X86_RBX, HART_OFF(pc), (int32_t)(off + in->imm));
        emit_leave(b, in->idx + 1u, slot_for(blk, off + in->imm));
        return true;
    case JK_JALR:
        emit_load(b, true, X86_RCX, X86_RBX, XOFF(in->rs1));
        emit_mov_ri(b, X86_RAX, (uint64_t)in->imm);
        emit_alu_rr(b, X86_ADD, true, X86_RCX, X86_RAX);
        emit_alu_ri(b, X86_IMM_AND, true, X86_RCX, -2);
        emit_load(b, true, X86_RAX, X86_RBX, HART_OFF(pc));
        emit_alu_ri(b, X86_IMM_ADD, true, X86_RAX, (int32_t)(off + in->len));
        emit_store(b, true, X86_RAX, X86_RBX, XOFF(in->rd));
        emit_store(b, true, X86_RCX, X86_RBX, HART_OFF(pc));
        emit_leave(b, in->idx + 1u, &blk->chain[1]);
        return true;
    case JK_BRANCH:
        emit_load(b, true, X86_RAX, X86_RBX, XOFF(in->rs1));
        emit_alu_rm(b, X86_CMP, true, X86_RAX, X86_RBX, XOFF(in->rs2));
        taken = emit_jcc(b, (enum x86_cc)op->arg);
        emit_add_mi(b, X86_RBX, HART_OFF(pc), (int32_t)(off + in->len));
        emit_leave(b, in->idx + 1u, slot_for(blk, off + in->len));
        emit_patch(b, taken);
        emit_add_mi(b, X86_RBX, HART_OFF(pc), (int32_t)(off + in->imm));
        emit_leave(b, in->idx + 1u, slot_for(blk, off + in->imm));
        return true;
    case JK_LOAD:
    case JK_STORE: emit_mem(b, blk, in, op); return false;
    case JK_ALU_RR:
        emit_load(b, true, X86_RAX, X86_RBX, XOFF(in->rs1));
        emit_alu_rm(b, (enum x86_alu)op->arg, true, X86_RAX, X86_RBX, XOFF(in->rs2));
        emit_result(b, in, op->w32);
        return false;
    case JK_ALU_RI:
        emit_load(b, true, X86_RAX, X86_RBX, XOFF(in->rs1));
        emit_alu_ri(b, (enum x86_alu_imm)op->arg, true, X86_RAX, (int32_t)in->imm);
        emit_result(b, in, op->w32);
        return false;
    case JK_SLT_RR:
        emit_load(b, true, X86_RCX, X86_RBX, XOFF(in->rs1));
        emit_alu_rm(b, X86_CMP, true, X86_RCX, X86_RBX, XOFF(in->rs2));
        emit_setcc(b, (enum x86_cc)op->arg, X86_RAX);
        emit_result(b, in, false);
        return false;
    case JK_SLT_RI:
        emit_load(b, true, X86_RCX, X86_RBX, XOFF(in->rs1));
        emit_alu_ri(b, X86_IMM_CMP, true, X86_RCX, (int32_t)in->imm);
        emit_setcc(b, (enum x86_cc)op->arg, X86_RAX);
        emit_result(b, in, false);
        return false;
    case JK_SHIFT_RR:
        /* x86 masks a shift count in cl to 6 bits (5 for 32-bit operands), as RISC-V does. */
        emit_load(b, true, X86_RAX, X86_RBX, XOFF(in->rs1));
        emit_load(b, true, X86_RCX, X86_RBX, XOFF(in->rs2));
        emit_shift_rcl(b, (enum x86_shift)op->arg, !op->w32, X86_RAX);
        emit_result(b, in, op->w32);
        return false;
    case JK_SHIFT_RI:
        emit_load(b, true, X86_RAX, X86_RBX, XOFF(in->rs1));
        emit_shift_ri(b, (enum x86_shift)op->arg, !op->w32, X86_RAX,
                      (uint8_t)(in->imm & (op->w32 ? 31 : 63)));
        emit_result(b, in, op->w32);
        return false;
    case JK_MUL:
        emit_load(b, true, X86_RAX, X86_RBX, XOFF(in->rs1));
        emit_imul_rm(b, !op->w32, X86_RAX, X86_RBX, XOFF(in->rs2));
        emit_result(b, in, op->w32);
        return false;
    case JK_MULH:
        emit_load(b, true, X86_RAX, X86_RBX, XOFF(in->rs1));
        emit_mul_wide_m(b, op->sign, X86_RBX, XOFF(in->rs2));
        emit_store(b, true, X86_RDX, X86_RBX, XOFF(in->rd));
        return false;
    }
    emit_handler(b, blk, in);
    return false;
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
    if (fd >= 0 && ftruncate(fd, JIT_CACHE_SIZE) == 0) {
        j->cache = mmap(NULL, JIT_CACHE_SIZE, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
        j->rw = mmap(NULL, JIT_CACHE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (j->cache != MAP_FAILED && j->rw != MAP_FAILED) {
            close(fd);
            return 0;
        }
        if (j->cache != MAP_FAILED)
            munmap(j->cache, JIT_CACHE_SIZE);
        if (j->rw != MAP_FAILED)
            munmap(j->rw, JIT_CACHE_SIZE);
        j->rw = NULL;
    }
    if (fd >= 0)
        close(fd);
    log_debug("jit: no double-mapped code cache (%d); translations use mprotect", errno);
    j->cache = mmap(NULL, JIT_CACHE_SIZE, PROT_READ | PROT_EXEC,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return j->cache == MAP_FAILED ? -1 : 0;
}

int rv_jit_create(struct rv_jit **out)
{
    struct rv_jit *j = calloc(1, sizeof(*j));
    const char *env;

    if (!j)
        return -ENOMEM;
    j->stage = malloc(JIT_STAGE_SIZE);
    if (!j->stage)
        goto free_jit;
    if (cache_map(j))
        goto free_stage;
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
    log_debug("jit: %" PRIu64 " blocks translated, %" PRIu64 " cache flushes", j->stats.blocks,
              j->stats.flushes);
    munmap(j->cache, JIT_CACHE_SIZE);
    if (j->rw)
        munmap(j->rw, JIT_CACHE_SIZE);
    free(j->stage);
    free(j);
}

uint32_t rv_jit_threshold(const struct rv_jit *j)
{
    return j->threshold;
}

void rv_jit_flush(struct rv_jit *j)
{
    j->used = 0;
    j->stats.bytes = 0;
    j->stats.flushes++;
}

rv_jit_fn rv_jit_compile(struct rv_jit *j, struct rv_block *blk, bool *full)
{
    size_t start = (j->used + JIT_ALIGN - 1) & ~(size_t)(JIT_ALIGN - 1);
    size_t lo, hi;
    struct x86_buf b;
    bool left = false;

    *full = false;
    x86_buf_init(&b, j->stage, JIT_STAGE_SIZE);
    emit_push(&b, X86_RBX);
    emit_alu_rr(&b, X86_MOV, true, X86_RBX, X86_RDI);
    for (unsigned i = 0; i < blk->n && !left; i++)
        left = emit_insn(&b, blk, &blk->insn[i]);
    if (!left) {
        emit_add_mi(&b, X86_RBX, HART_OFF(pc), (int32_t)blk->bytes);
        emit_leave(&b, blk->n, &blk->chain[0]);
    }
    if (b.overflow)
        return NULL;
    if (start + b.len > JIT_CACHE_SIZE) {
        *full = true;
        return NULL;
    }
    /* Nothing of this hart's code runs during the copy (it is this hart's thread that
     * copies), and no other thread runs this cache. */
    if (j->rw) {
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
    return (rv_jit_fn)(uintptr_t)(j->cache + start);
}

void rv_jit_get_stats(const struct rv_jit *j, struct rv_jit_stats *out)
{
    *out = j->stats;
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
