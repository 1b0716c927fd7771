/* Instruction handlers: one function per instruction, called with the operands the decoder
 * extracted (RISC-V unprivileged 20191213 for the semantics, privileged 20211203 for the
 * system instructions). Each returns RV_NEXT, RV_JUMP or RV_TRAP (see hart.h). Inside a block
 * h->pc is the block's first pc, so an instruction's own pc is h->pc + in->pc_off. */
#include <sched.h>

#include "cpu/rv64/fpu.h"
#include "cpu/rv64/insn.h"

#define X(r)   (h->x[(r)])
#define PC     (h->pc + in->pc_off)
#define NEXTPC (PC + in->len)

#define OP(name) int rv_op_##name(struct rv64_hart *h, const struct rv_insn *in)

static inline int jump_to(struct rv64_hart *h, uint64_t target)
{
    h->pc = target;
    return RV_JUMP;
}

OP(illegal)
{
    return rv_illegal(h, in);
}

/* --- RV64I --- */

OP(lui)
{
    X(in->rd) = (uint64_t)in->imm;
    return RV_NEXT;
}

OP(auipc)
{
    X(in->rd) = PC + (uint64_t)in->imm;
    return RV_NEXT;
}

OP(jal)
{
    uint64_t pc = PC;

    X(in->rd) = pc + in->len;
    return jump_to(h, pc + (uint64_t)in->imm);
}

OP(jalr)
{
    uint64_t target = (X(in->rs1) + (uint64_t)in->imm) & ~1ull;

    X(in->rd) = NEXTPC;
    return jump_to(h, target);
}

#define BRANCH(name, cond)                                           \
    OP(name)                                                         \
    {                                                                \
        uint64_t a = X(in->rs1), b = X(in->rs2);                     \
        return jump_to(h, (cond) ? PC + (uint64_t)in->imm : NEXTPC); \
    }

BRANCH(beq, a == b)
BRANCH(bne, a != b)
BRANCH(blt, (int64_t)a < (int64_t)b)
BRANCH(bge, (int64_t)a >= (int64_t)b)
BRANCH(bltu, a < b)
BRANCH(bgeu, a >= b)

#define LOAD(name, fn)                                           \
    OP(name)                                                     \
    {                                                            \
        uint64_t v;                                              \
        if (unlikely(fn(h, X(in->rs1) + (uint64_t)in->imm, &v))) \
            return rv_raise_pending(h, in);                      \
        X(in->rd) = v;                                           \
        return RV_NEXT;                                          \
    }

LOAD(lb, rv_load_i8)
LOAD(lh, rv_load_i16)
LOAD(lw, rv_load_i32)
LOAD(ld, rv_load_u64)
LOAD(lbu, rv_load_u8)
LOAD(lhu, rv_load_u16)
LOAD(lwu, rv_load_u32)

#define STORE(name, size)                                                            \
    OP(name)                                                                         \
    {                                                                                \
        if (unlikely(rv_store(h, X(in->rs1) + (uint64_t)in->imm, size, X(in->rs2)))) \
            return rv_raise_pending(h, in);                                          \
        return RV_NEXT;                                                              \
    }

STORE(sb, 1)
STORE(sh, 2)
STORE(sw, 4)
STORE(sd, 8)

#define ALU_IMM(name, expr)                             \
    OP(name)                                            \
    {                                                   \
        uint64_t a = X(in->rs1), b = (uint64_t)in->imm; \
        X(in->rd) = (expr);                             \
        return RV_NEXT;                                 \
    }

#define ALU_REG(name, expr)                      \
    OP(name)                                     \
    {                                            \
        uint64_t a = X(in->rs1), b = X(in->rs2); \
        X(in->rd) = (expr);                      \
        return RV_NEXT;                          \
    }

#define SEXT32(v) ((uint64_t)(int64_t)(int32_t)(uint32_t)(v))

ALU_IMM(addi, a + b)
ALU_IMM(slti, (int64_t)a < (int64_t)b)
ALU_IMM(sltiu, a < b)
ALU_IMM(xori, a ^ b)
ALU_IMM(ori, a | b)
ALU_IMM(andi, a &b)
ALU_IMM(slli, a << (b & 63))
ALU_IMM(srli, a >> (b & 63))
ALU_IMM(srai, (uint64_t)((int64_t)a >> (b & 63)))
ALU_IMM(addiw, SEXT32(a + b))
ALU_IMM(slliw, SEXT32((uint32_t)a << (b & 31)))
ALU_IMM(srliw, SEXT32((uint32_t)a >> (b & 31)))
ALU_IMM(sraiw, (uint64_t)(int64_t)((int32_t)(uint32_t)a >> (b & 31)))

ALU_REG(add, a + b)
ALU_REG(sub, a - b)
ALU_REG(sll, a << (b & 63))
ALU_REG(slt, (int64_t)a < (int64_t)b)
ALU_REG(sltu, a < b)
ALU_REG(xor, a ^ b)
ALU_REG(srl, a >> (b & 63))
ALU_REG(sra, (uint64_t)((int64_t)a >> (b & 63)))
ALU_REG(or, a | b)
ALU_REG(and, a &b)
ALU_REG(addw, SEXT32(a + b))
ALU_REG(subw, SEXT32(a - b))
ALU_REG(sllw, SEXT32((uint32_t)a << (b & 31)))
ALU_REG(srlw, SEXT32((uint32_t)a >> (b & 31)))
ALU_REG(sraw, (uint64_t)(int64_t)((int32_t)(uint32_t)a >> (b & 31)))

/* --- M: division by zero and overflow give the results of unprivileged §7.2, no trap --- */

static uint64_t div_s64(int64_t a, int64_t b)
{
    if (b == 0)
        return UINT64_MAX;
    if (a == INT64_MIN && b == -1)
        return (uint64_t)a;
    return (uint64_t)(a / b);
}

static uint64_t rem_s64(int64_t a, int64_t b)
{
    if (b == 0)
        return (uint64_t)a;
    if (a == INT64_MIN && b == -1)
        return 0;
    return (uint64_t)(a % b);
}

static uint64_t div_s32(int32_t a, int32_t b)
{
    if (b == 0)
        return UINT64_MAX;
    if (a == INT32_MIN && b == -1)
        return SEXT32(a);
    return SEXT32(a / b);
}

static uint64_t rem_s32(int32_t a, int32_t b)
{
    if (b == 0)
        return SEXT32(a);
    if (a == INT32_MIN && b == -1)
        return 0;
    return SEXT32(a % b);
}

ALU_REG(mul, a *b)
ALU_REG(mulh, (uint64_t)(((__int128)(int64_t)a * (__int128)(int64_t)b) >> 64))
ALU_REG(mulhsu, (uint64_t)(((__int128)(int64_t)a * (__int128)(unsigned __int128)b) >> 64))
ALU_REG(mulhu, (uint64_t)(((unsigned __int128)a * (unsigned __int128)b) >> 64))
ALU_REG(div, div_s64((int64_t)a, (int64_t)b))
ALU_REG(divu, b ? a / b : UINT64_MAX)
ALU_REG(rem, rem_s64((int64_t)a, (int64_t)b))
ALU_REG(remu, b ? a % b : a)
ALU_REG(mulw, SEXT32((uint32_t)a *(uint32_t)b))
ALU_REG(divw, div_s32((int32_t)(uint32_t)a, (int32_t)(uint32_t)b))
ALU_REG(divuw, (uint32_t)b ? SEXT32((uint32_t)a / (uint32_t)b) : UINT64_MAX)
ALU_REG(remw, rem_s32((int32_t)(uint32_t)a, (int32_t)(uint32_t)b))
ALU_REG(remuw, (uint32_t)b ? SEXT32((uint32_t)a % (uint32_t)b) : SEXT32(a))

/* --- Zba, Zbb, Zbs (bit manipulation 1.0.0, chapter 2 "Zba", "Zbb", "Zbs"): rotate counts
 * and bit indices use the low 6 bits of rs2 (5 for the W forms); the W forms work on the
 * low word and sign-extend the result. --- */

static uint64_t rol64(uint64_t a, unsigned sh)
{
    sh &= 63;
    return (a << sh) | (a >> ((64 - sh) & 63));
}

static uint64_t rol32(uint64_t a, unsigned sh)
{
    uint32_t x = (uint32_t)a;

    sh &= 31;
    return SEXT32((x << sh) | (x >> ((32 - sh) & 31)));
}

static uint64_t orc_b(uint64_t a)
{
    uint64_t r = 0;

    for (unsigned i = 0; i < 64; i += 8) {
        if ((a >> i) & 0xff)
            r |= 0xffull << i;
    }
    return r;
}

#define ZEXT32(v) ((uint64_t)(uint32_t)(v))

#define ALU_UNARY(name, expr)    \
    OP(name)                     \
    {                            \
        uint64_t a = X(in->rs1); \
        X(in->rd) = (expr);      \
        return RV_NEXT;          \
    }

ALU_REG(add_uw, ZEXT32(a) + b)
ALU_REG(sh1add, (a << 1) + b)
ALU_REG(sh2add, (a << 2) + b)
ALU_REG(sh3add, (a << 3) + b)
ALU_REG(sh1add_uw, (ZEXT32(a) << 1) + b)
ALU_REG(sh2add_uw, (ZEXT32(a) << 2) + b)
ALU_REG(sh3add_uw, (ZEXT32(a) << 3) + b)
ALU_IMM(slli_uw, ZEXT32(a) << (b & 63))

ALU_REG(andn, a & ~b)
ALU_REG(orn, a | ~b)
ALU_REG(xnor, ~(a ^ b))
ALU_UNARY(clz, a ? (uint64_t)__builtin_clzll(a) : 64)
ALU_UNARY(clzw, (uint32_t)a ? (uint64_t)__builtin_clz((uint32_t)a) : 32)
ALU_UNARY(ctz, a ? (uint64_t)__builtin_ctzll(a) : 64)
ALU_UNARY(ctzw, (uint32_t)a ? (uint64_t)__builtin_ctz((uint32_t)a) : 32)
ALU_UNARY(cpop, (uint64_t)__builtin_popcountll(a))
ALU_UNARY(cpopw, (uint64_t)__builtin_popcount((uint32_t)a))
ALU_REG(max, (int64_t)a > (int64_t)b ? a : b)
ALU_REG(maxu, a > b ? a : b)
ALU_REG(min, (int64_t)a < (int64_t)b ? a : b)
ALU_REG(minu, a < b ? a : b)
ALU_UNARY(sext_b, (uint64_t)(int64_t)(int8_t)(uint8_t)a)
ALU_UNARY(sext_h, (uint64_t)(int64_t)(int16_t)(uint16_t)a)
ALU_UNARY(zext_h, a & 0xffff)
ALU_REG(rol, rol64(a, (unsigned)b))
ALU_REG(rolw, rol32(a, (unsigned)b))
ALU_REG(ror, rol64(a, 64 - (unsigned)(b & 63)))
ALU_REG(rorw, rol32(a, 32 - (unsigned)(b & 31)))
ALU_IMM(rori, rol64(a, 64 - (unsigned)(b & 63)))
ALU_IMM(roriw, rol32(a, 32 - (unsigned)(b & 31)))
ALU_UNARY(orc_b, orc_b(a))
ALU_UNARY(rev8, __builtin_bswap64(a))

ALU_REG(bclr, a & ~(1ull << (b & 63)))
ALU_IMM(bclri, a & ~(1ull << (b & 63)))
ALU_REG(bext, (a >> (b & 63)) & 1)
ALU_IMM(bexti, (a >> (b & 63)) & 1)
ALU_REG(binv, a ^ (1ull << (b & 63)))
ALU_IMM(binvi, a ^ (1ull << (b & 63)))
ALU_REG(bset, a | (1ull << (b & 63)))
ALU_IMM(bseti, a | (1ull << (b & 63)))

/* --- system --- */

/* A FENCE that orders an earlier write before a later read (decode.c): the one order a TSO
 * host (x86-64) does not keep by itself, so a full barrier. */
OP(fence)
{
    atomic_thread_fence(memory_order_seq_cst);
    return RV_NEXT;
}

/* Any other FENCE: free on x86-64 (a compiler barrier), a real barrier on weaker hosts. */
OP(fence_order)
{
    atomic_thread_fence(memory_order_acq_rel);
    return RV_NEXT;
}

/* PAUSE (Zihintpause) is what a spinning guest runs (Linux's cpu_relax()): it waits for
 * another hart. When the harts outnumber the host CPUs free to run them, the hart it waits
 * for may not be running at all, and spinning on only keeps it off the CPU until the host
 * preempts this one, a whole time slice later; KVM's pause-loop exiting answers the same by
 * yielding. Here every RV_PAUSE_YIELD pauses give the host CPU away once: a spin that ends
 * soon never reaches it, one that goes on costs one sched_yield() per so many turns. */
#define RV_PAUSE_YIELD 64

OP(pause)
{
    if (++h->pauses >= RV_PAUSE_YIELD) {
        h->pauses = 0;
        sched_yield();
    }
    return RV_NEXT;
}

OP(fence_i)
{
    h->bc_flush_pending = true;
    return jump_to(h, NEXTPC);
}

OP(ecall)
{
    static const uint64_t cause[4] = {RV_EXC_ECALL_U, RV_EXC_ECALL_S, 0, RV_EXC_ECALL_M};

    return rv_raise(h, in, cause[h->priv], 0);
}

OP(ebreak)
{
    return rv_raise(h, in, RV_EXC_BREAKPOINT, PC);
}

OP(mret)
{
    uint64_t s = h->mstatus;
    unsigned mpp = (unsigned)((s & MSTATUS_MPP) >> 11);

    if (h->priv < RV_PRIV_M)
        return rv_illegal(h, in);
    s = (s & ~MSTATUS_MIE) | ((s & MSTATUS_MPIE) ? MSTATUS_MIE : 0);
    s |= MSTATUS_MPIE;
    s &= ~MSTATUS_MPP;
    if (mpp != RV_PRIV_M)
        s &= ~MSTATUS_MPRV;
    h->mstatus = s;
    rv_set_priv(h, mpp);
    return jump_to(h, h->mepc);
}

OP(sret)
{
    uint64_t s = h->mstatus;
    unsigned spp = (s & MSTATUS_SPP) ? RV_PRIV_S : RV_PRIV_U;

    if (h->priv < RV_PRIV_S || (h->priv == RV_PRIV_S && (s & MSTATUS_TSR)))
        return rv_illegal(h, in);
    s = (s & ~MSTATUS_SIE) | ((s & MSTATUS_SPIE) ? MSTATUS_SIE : 0);
    s |= MSTATUS_SPIE;
    s &= ~MSTATUS_SPP;
    s &= ~MSTATUS_MPRV; /* spp is never M (privileged 1.12 §3.1.6.1) */
    h->mstatus = s;
    rv_set_priv(h, spp);
    return jump_to(h, h->sepc);
}

OP(wfi)
{
    if (h->priv == RV_PRIV_U || (h->priv == RV_PRIV_S && (h->mstatus & MSTATUS_TW)))
        return rv_illegal(h, in);
    h->in_wfi = true;
    return jump_to(h, NEXTPC);
}

OP(sfence_vma)
{
    if (h->priv == RV_PRIV_U || (h->priv == RV_PRIV_S && (h->mstatus & MSTATUS_TVM)))
        return rv_illegal(h, in);
    /* rs2 = x0: every address space; otherwise the ASID in rs2. rs1 = x0: every address;
     * otherwise the page of the address in rs1 (§4.2.1). */
    if (in->rs1)
        rv_tlb_flush_page(h, X(in->rs1), in->rs2 != 0, X(in->rs2) & 0xffff);
    else if (in->rs2)
        rv_tlb_flush_asid(h, X(in->rs2) & 0xffff);
    else
        rv_tlb_flush(h);
    return jump_to(h, NEXTPC);
}

/* Zicsr. The decoder sets RV_CSR_WRITES unless the spec says the op must not write (CSRRS/C
 * with rs1 = x0 or uimm = 0). Reads have no side effects here, so every op reads. Counters
 * see the instructions of this block retired so far. */
static int csr_op(struct rv64_hart *h, const struct rv_insn *in, int kind)
{
    unsigned csr = (unsigned)in->imm;
    uint64_t src = (in->rm & RV_CSR_IMM) ? in->rs1 : X(in->rs1);
    uint64_t old, nv;
    int err;

    h->instret += in->idx;
    err = rv_csr_read(h, csr, &old);
    if (!err && (in->rm & RV_CSR_WRITES)) {
        uint64_t base = rv_csr_rmw_base(h, csr, old);

        nv = kind == 0 ? src : kind == 1 ? (base | src) : (base & ~src);
        err = rv_csr_write(h, csr, nv);
    }
    h->instret -= in->idx;
    if (err)
        return rv_illegal(h, in);
    X(in->rd) = old;
    return jump_to(h, NEXTPC);
}

OP(csrrw)
{
    return csr_op(h, in, 0);
}

OP(csrrs)
{
    return csr_op(h, in, 1);
}

OP(csrrc)
{
    return csr_op(h, in, 2);
}

/* --- A: atomics are host atomics on guest RAM; LR/SC is a compare-and-swap on the value
 * LR saw, which is how a reservation behaves for every program that does not depend on
 * ABA detection (as in QEMU). --- */

OP(lr_w)
{
    int32_t *p = rv_amo_ptr(h, X(in->rs1), 4, true);

    if (!p)
        return rv_raise_pending(h, in);
    h->res_value = (uint32_t)__atomic_load_n(p, __ATOMIC_ACQUIRE);
    h->res_host = p;
    X(in->rd) = SEXT32(h->res_value);
    return RV_NEXT;
}

OP(lr_d)
{
    uint64_t *p = rv_amo_ptr(h, X(in->rs1), 8, true);

    if (!p)
        return rv_raise_pending(h, in);
    h->res_value = __atomic_load_n(p, __ATOMIC_ACQUIRE);
    h->res_host = p;
    X(in->rd) = h->res_value;
    return RV_NEXT;
}

OP(sc_w)
{
    uint32_t *p = rv_amo_ptr(h, X(in->rs1), 4, false);
    uint32_t expect;

    if (!p)
        return rv_raise_pending(h, in);
    expect = (uint32_t)h->res_value;
    X(in->rd) =
        !(h->res_host == p && __atomic_compare_exchange_n(p, &expect, (uint32_t)X(in->rs2), false,
                                                          __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
    h->res_host = NULL;
    return RV_NEXT;
}

OP(sc_d)
{
    uint64_t *p = rv_amo_ptr(h, X(in->rs1), 8, false);
    uint64_t expect;

    if (!p)
        return rv_raise_pending(h, in);
    expect = h->res_value;
    X(in->rd) =
        !(h->res_host == p && __atomic_compare_exchange_n(p, &expect, X(in->rs2), false,
                                                          __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
    h->res_host = NULL;
    return RV_NEXT;
}

#define AMO_FETCH(name, type, utype, call)                                        \
    OP(name)                                                                      \
    {                                                                             \
        utype *p = rv_amo_ptr(h, X(in->rs1), sizeof(utype), false);               \
        if (!p)                                                                   \
            return rv_raise_pending(h, in);                                       \
        X(in->rd) = (uint64_t)(type)call(p, (utype)X(in->rs2), __ATOMIC_SEQ_CST); \
        return RV_NEXT;                                                           \
    }

AMO_FETCH(amoswap_w, int32_t, uint32_t, __atomic_exchange_n)
AMO_FETCH(amoadd_w, int32_t, uint32_t, __atomic_fetch_add)
AMO_FETCH(amoxor_w, int32_t, uint32_t, __atomic_fetch_xor)
AMO_FETCH(amoand_w, int32_t, uint32_t, __atomic_fetch_and)
AMO_FETCH(amoor_w, int32_t, uint32_t, __atomic_fetch_or)
AMO_FETCH(amoswap_d, int64_t, uint64_t, __atomic_exchange_n)
AMO_FETCH(amoadd_d, int64_t, uint64_t, __atomic_fetch_add)
AMO_FETCH(amoxor_d, int64_t, uint64_t, __atomic_fetch_xor)
AMO_FETCH(amoand_d, int64_t, uint64_t, __atomic_fetch_and)
AMO_FETCH(amoor_d, int64_t, uint64_t, __atomic_fetch_or)

#define AMO_MINMAX(name, type, utype, cmptype, pick_new)                           \
    OP(name)                                                                       \
    {                                                                              \
        utype *p = rv_amo_ptr(h, X(in->rs1), sizeof(utype), false);                \
        utype old, b = (utype)X(in->rs2);                                          \
        if (!p)                                                                    \
            return rv_raise_pending(h, in);                                        \
        old = __atomic_load_n(p, __ATOMIC_RELAXED);                                \
        for (;;) {                                                                 \
            cmptype o = (cmptype)old, n = (cmptype)b;                              \
            utype want = (pick_new) ? b : old;                                     \
            if (__atomic_compare_exchange_n(p, &old, want, true, __ATOMIC_SEQ_CST, \
                                            __ATOMIC_RELAXED))                     \
                break;                                                             \
            (void)o;                                                               \
            (void)n;                                                               \
        }                                                                          \
        X(in->rd) = (uint64_t)(type)old;                                           \
        return RV_NEXT;                                                            \
    }

AMO_MINMAX(amomin_w, int32_t, uint32_t, int32_t, n < o)
AMO_MINMAX(amomax_w, int32_t, uint32_t, int32_t, n > o)
AMO_MINMAX(amominu_w, int32_t, uint32_t, uint32_t, n < o)
AMO_MINMAX(amomaxu_w, int32_t, uint32_t, uint32_t, n > o)
AMO_MINMAX(amomin_d, int64_t, uint64_t, int64_t, n < o)
AMO_MINMAX(amomax_d, int64_t, uint64_t, int64_t, n > o)
AMO_MINMAX(amominu_d, int64_t, uint64_t, uint64_t, n < o)
AMO_MINMAX(amomaxu_d, int64_t, uint64_t, uint64_t, n > o)

/* --- F and D --- */

#define BOX32 0xffffffff00000000ull

/* FP instructions raise illegal instruction while mstatus.FS is Off (§3.1.6.6); any write
 * to an f register or fflags makes FS Dirty. */
#define FP_ENABLED()                              \
    do {                                          \
        if (unlikely(!(h->mstatus & MSTATUS_FS))) \
            return rv_illegal(h, in);             \
    } while (0)

/* The effective rounding mode; reserved modes (5, 6, or DYN with frm >= 5) are illegal. */
#define FP_RM(var)                                \
    unsigned var = in->rm == 7 ? h->frm : in->rm; \
    do {                                          \
        if (unlikely(var > 4))                    \
            return rv_illegal(h, in);             \
    } while (0)

#define FP_DIRTY() (h->mstatus |= MSTATUS_FS)

OP(flw)
{
    uint64_t v;

    FP_ENABLED();
    if (unlikely(rv_load_u32(h, X(in->rs1) + (uint64_t)in->imm, &v)))
        return rv_raise_pending(h, in);
    h->f[in->rd] = v | BOX32;
    FP_DIRTY();
    return RV_NEXT;
}

OP(fld)
{
    uint64_t v;

    FP_ENABLED();
    if (unlikely(rv_load_u64(h, X(in->rs1) + (uint64_t)in->imm, &v)))
        return rv_raise_pending(h, in);
    h->f[in->rd] = v;
    FP_DIRTY();
    return RV_NEXT;
}

OP(fsw)
{
    FP_ENABLED();
    if (unlikely(rv_store(h, X(in->rs1) + (uint64_t)in->imm, 4, h->f[in->rs2])))
        return rv_raise_pending(h, in);
    return RV_NEXT;
}

OP(fsd)
{
    FP_ENABLED();
    if (unlikely(rv_store(h, X(in->rs1) + (uint64_t)in->imm, 8, h->f[in->rs2])))
        return rv_raise_pending(h, in);
    return RV_NEXT;
}

/* f[rd] = fn(f[rs1], f[rs2], f[rs3], rm) and friends, by operand shape. */
#define FP_R3(name, fn)                                                                 \
    OP(name)                                                                            \
    {                                                                                   \
        FP_ENABLED();                                                                   \
        FP_RM(rm);                                                                      \
        h->f[in->rd] = fn(h->f[in->rs1], h->f[in->rs2], h->f[in->rs3], rm, &h->fflags); \
        FP_DIRTY();                                                                     \
        return RV_NEXT;                                                                 \
    }
#define FP_R2(name, fn)                                                  \
    OP(name)                                                             \
    {                                                                    \
        FP_ENABLED();                                                    \
        FP_RM(rm);                                                       \
        h->f[in->rd] = fn(h->f[in->rs1], h->f[in->rs2], rm, &h->fflags); \
        FP_DIRTY();                                                      \
        return RV_NEXT;                                                  \
    }
#define FP_R1(name, fn)                                   \
    OP(name)                                              \
    {                                                     \
        FP_ENABLED();                                     \
        FP_RM(rm);                                        \
        h->f[in->rd] = fn(h->f[in->rs1], rm, &h->fflags); \
        FP_DIRTY();                                       \
        return RV_NEXT;                                   \
    }
/* No rounding mode: sign injection, min/max. */
#define FP_R2_NORM(name, expr)                         \
    OP(name)                                           \
    {                                                  \
        uint64_t a = h->f[in->rs1], b = h->f[in->rs2]; \
        FP_ENABLED();                                  \
        h->f[in->rd] = (expr);                         \
        FP_DIRTY();                                    \
        return RV_NEXT;                                \
    }
/* Integer result from f registers. */
#define FP_TO_X(name, expr)                            \
    OP(name)                                           \
    {                                                  \
        uint64_t a = h->f[in->rs1], b = h->f[in->rs2]; \
        FP_ENABLED();                                  \
        (void)b;                                       \
        X(in->rd) = (expr);                            \
        return RV_NEXT;                                \
    }
#define FP_CVT_TO_X(name, fn)                          \
    OP(name)                                           \
    {                                                  \
        FP_ENABLED();                                  \
        FP_RM(rm);                                     \
        X(in->rd) = fn(h->f[in->rs1], rm, &h->fflags); \
        FP_DIRTY();                                    \
        return RV_NEXT;                                \
    }
#define FP_CVT_FROM_X(name, fn)                        \
    OP(name)                                           \
    {                                                  \
        FP_ENABLED();                                  \
        FP_RM(rm);                                     \
        h->f[in->rd] = fn(X(in->rs1), rm, &h->fflags); \
        FP_DIRTY();                                    \
        return RV_NEXT;                                \
    }

FP_R3(fmadd_s, fpu_madd_s)
FP_R3(fmsub_s, fpu_msub_s)
FP_R3(fnmsub_s, fpu_nmsub_s)
FP_R3(fnmadd_s, fpu_nmadd_s)
FP_R3(fmadd_d, fpu_madd_d)
FP_R3(fmsub_d, fpu_msub_d)
FP_R3(fnmsub_d, fpu_nmsub_d)
FP_R3(fnmadd_d, fpu_nmadd_d)
FP_R2(fadd_s, fpu_add_s)
FP_R2(fsub_s, fpu_sub_s)
FP_R2(fmul_s, fpu_mul_s)
FP_R2(fdiv_s, fpu_div_s)
FP_R1(fsqrt_s, fpu_sqrt_s)
FP_R2(fadd_d, fpu_add_d)
FP_R2(fsub_d, fpu_sub_d)
FP_R2(fmul_d, fpu_mul_d)
FP_R2(fdiv_d, fpu_div_d)
FP_R1(fsqrt_d, fpu_sqrt_d)
FP_R2_NORM(fsgnj_s, fpu_sgnj_s(a, b))
FP_R2_NORM(fsgnjn_s, fpu_sgnjn_s(a, b))
FP_R2_NORM(fsgnjx_s, fpu_sgnjx_s(a, b))
FP_R2_NORM(fsgnj_d, fpu_sgnj_d(a, b))
FP_R2_NORM(fsgnjn_d, fpu_sgnjn_d(a, b))
FP_R2_NORM(fsgnjx_d, fpu_sgnjx_d(a, b))
FP_R2_NORM(fmin_s, fpu_min_s(a, b, &h->fflags))
FP_R2_NORM(fmax_s, fpu_max_s(a, b, &h->fflags))
FP_R2_NORM(fmin_d, fpu_min_d(a, b, &h->fflags))
FP_R2_NORM(fmax_d, fpu_max_d(a, b, &h->fflags))
FP_R1(fcvt_s_d, fpu_cvt_s_d)
FP_R1(fcvt_d_s, fpu_cvt_d_s)

/* Comparisons can set NV, so they also dirty the FP state. */
#define FP_CMP(name, fn)                                          \
    OP(name)                                                      \
    {                                                             \
        FP_ENABLED();                                             \
        X(in->rd) = fn(h->f[in->rs1], h->f[in->rs2], &h->fflags); \
        FP_DIRTY();                                               \
        return RV_NEXT;                                           \
    }

FP_CMP(feq_s, fpu_eq_s)
FP_CMP(flt_s, fpu_lt_s)
FP_CMP(fle_s, fpu_le_s)
FP_CMP(feq_d, fpu_eq_d)
FP_CMP(flt_d, fpu_lt_d)
FP_CMP(fle_d, fpu_le_d)

FP_CVT_TO_X(fcvt_w_s, fpu_cvt_w_s)
FP_CVT_TO_X(fcvt_wu_s, fpu_cvt_wu_s)
FP_CVT_TO_X(fcvt_l_s, fpu_cvt_l_s)
FP_CVT_TO_X(fcvt_lu_s, fpu_cvt_lu_s)
FP_CVT_TO_X(fcvt_w_d, fpu_cvt_w_d)
FP_CVT_TO_X(fcvt_wu_d, fpu_cvt_wu_d)
FP_CVT_TO_X(fcvt_l_d, fpu_cvt_l_d)
FP_CVT_TO_X(fcvt_lu_d, fpu_cvt_lu_d)
FP_CVT_FROM_X(fcvt_s_w, fpu_cvt_s_w)
FP_CVT_FROM_X(fcvt_s_wu, fpu_cvt_s_wu)
FP_CVT_FROM_X(fcvt_s_l, fpu_cvt_s_l)
FP_CVT_FROM_X(fcvt_s_lu, fpu_cvt_s_lu)
FP_CVT_FROM_X(fcvt_d_w, fpu_cvt_d_w)
FP_CVT_FROM_X(fcvt_d_wu, fpu_cvt_d_wu)
FP_CVT_FROM_X(fcvt_d_l, fpu_cvt_d_l)
FP_CVT_FROM_X(fcvt_d_lu, fpu_cvt_d_lu)

FP_TO_X(fmv_x_w, SEXT32(a))
FP_TO_X(fclass_s, fpu_class_s(a))
FP_TO_X(fmv_x_d, a)
FP_TO_X(fclass_d, fpu_class_d(a))

OP(fmv_w_x)
{
    FP_ENABLED();
    h->f[in->rd] = (X(in->rs1) & 0xffffffffull) | BOX32;
    FP_DIRTY();
    return RV_NEXT;
}

OP(fmv_d_x)
{
    FP_ENABLED();
    h->f[in->rd] = X(in->rs1);
    FP_DIRTY();
    return RV_NEXT;
}
