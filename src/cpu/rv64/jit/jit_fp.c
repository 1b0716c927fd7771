/* The translator's inline F and D instructions (jit_fp.h). Guest f registers stay in h->f[]
 * (SSE reads its second operand straight from there); xmm0 and xmm1 and the scratch general
 * registers rax, rcx, rdx of jit.c are all it uses, and [rsp] (the 8 bytes the prologue
 * reserves for alignment) holds MXCSR for ldmxcsr and stmxcsr. */
#include "cpu/rv64/jit/jit_fp.h"

#include "cpu/rv64/jit/jit.h"

#if RV_JIT_HOST

#include <pthread.h>
#include <stdlib.h>

#include "cpu/rv64/block.h"
#include "cpu/rv64/fpu.h"
#include "cpu/rv64/insn.h"
#include "cpu/rv64/jit/emit.h"

#define HART_OFF(field) ((int32_t)offsetof(struct rv64_hart, field))
#define FOFF(r)         ((int32_t)(offsetof(struct rv64_hart, f) + 8u * (r)))
#define FOFF_HI(r)      (FOFF(r) + 4) /* the upper half: all ones when NaN-boxed */

#define FP_BOX       0xffffffff00000000ull
#define RM_RNE       0u
#define RM_DYN       7u
#define FS_DIRTY_OFF 0x6000u /* mstatus.FS (bits 14:13), Dirty when both set */

_Static_assert(sizeof(((struct rv64_hart *)0)->fflags) == 4, "fflags is OR-ed as 32 bits");
_Static_assert(sizeof(((struct rv64_hart *)0)->frm) == 4, "frm is read as 32 bits");
_Static_assert(MSTATUS_FS == FS_DIRTY_OFF, "mstatus.FS is bits 14:13");

enum fp_kind {
    FK_LOAD,  /* arg: size */
    FK_STORE, /* arg: size */
    FK_MV_X,  /* fmv.x.w / fmv.x.d */
    FK_MV_F,  /* fmv.w.x / fmv.d.x */
    FK_SGNJ,  /* arg: 0 fsgnj, 1 fsgnjn, 2 fsgnjx */
    FK_ARITH, /* arg: the SSE opcode (58 add, 5C sub, 59 mul, 5E div, 51 sqrt) */
    FK_FMA,   /* arg: the FMA3 213 opcode */
    FK_CMP,   /* arg: 0 feq, 1 flt, 2 fle */
    FK_CVT_D, /* fcvt.d.{w,wu,l}: arg 0 w, 1 wu, 2 l */
};

struct fp_op {
    rv_exec_fn fn;
    uint8_t kind;
    uint8_t arg;
    bool d;  /* binary64 (else binary32) */
    bool rm; /* has a rounding mode */
};

/* RISC-V fnmsub is -(a*b) + c, x86 vfnmadd; fnmadd is -(a*b) - c, x86 vfnmsub (§11.6; SDM). */
static const struct fp_op fp_ops[] = {
    {rv_op_flw, FK_LOAD, 4, false, false},        {rv_op_fld, FK_LOAD, 8, true, false},
    {rv_op_fsw, FK_STORE, 4, false, false},       {rv_op_fsd, FK_STORE, 8, true, false},
    {rv_op_fmv_x_w, FK_MV_X, 0, false, false},    {rv_op_fmv_x_d, FK_MV_X, 0, true, false},
    {rv_op_fmv_w_x, FK_MV_F, 0, false, false},    {rv_op_fmv_d_x, FK_MV_F, 0, true, false},
    {rv_op_fsgnj_s, FK_SGNJ, 0, false, false},    {rv_op_fsgnjn_s, FK_SGNJ, 1, false, false},
    {rv_op_fsgnjx_s, FK_SGNJ, 2, false, false},   {rv_op_fsgnj_d, FK_SGNJ, 0, true, false},
    {rv_op_fsgnjn_d, FK_SGNJ, 1, true, false},    {rv_op_fsgnjx_d, FK_SGNJ, 2, true, false},
    {rv_op_fadd_s, FK_ARITH, 0x58, false, true},  {rv_op_fsub_s, FK_ARITH, 0x5c, false, true},
    {rv_op_fmul_s, FK_ARITH, 0x59, false, true},  {rv_op_fdiv_s, FK_ARITH, 0x5e, false, true},
    {rv_op_fsqrt_s, FK_ARITH, 0x51, false, true}, {rv_op_fadd_d, FK_ARITH, 0x58, true, true},
    {rv_op_fsub_d, FK_ARITH, 0x5c, true, true},   {rv_op_fmul_d, FK_ARITH, 0x59, true, true},
    {rv_op_fdiv_d, FK_ARITH, 0x5e, true, true},   {rv_op_fsqrt_d, FK_ARITH, 0x51, true, true},
    {rv_op_fmadd_s, FK_FMA, 0xa9, false, true},   {rv_op_fmsub_s, FK_FMA, 0xab, false, true},
    {rv_op_fnmsub_s, FK_FMA, 0xad, false, true},  {rv_op_fnmadd_s, FK_FMA, 0xaf, false, true},
    {rv_op_fmadd_d, FK_FMA, 0xa9, true, true},    {rv_op_fmsub_d, FK_FMA, 0xab, true, true},
    {rv_op_fnmsub_d, FK_FMA, 0xad, true, true},   {rv_op_fnmadd_d, FK_FMA, 0xaf, true, true},
    {rv_op_feq_s, FK_CMP, 0, false, false},       {rv_op_flt_s, FK_CMP, 1, false, false},
    {rv_op_fle_s, FK_CMP, 2, false, false},       {rv_op_feq_d, FK_CMP, 0, true, false},
    {rv_op_flt_d, FK_CMP, 1, true, false},        {rv_op_fle_d, FK_CMP, 2, true, false},
    {rv_op_fcvt_d_w, FK_CVT_D, 0, true, true},    {rv_op_fcvt_d_wu, FK_CVT_D, 1, true, true},
    {rv_op_fcvt_d_l, FK_CVT_D, 2, true, true},
};

/* MXCSR's flag bits (IE 0, DE 1, ZE 2, OE 3, UE 4, PE 5) to fflags. */
#define MX4(i)                                                                   \
    FPU_FLAGS_OF_MXCSR(i), FPU_FLAGS_OF_MXCSR(i + 1), FPU_FLAGS_OF_MXCSR(i + 2), \
        FPU_FLAGS_OF_MXCSR(i + 3)
#define MX16(i) MX4(i), MX4(i + 4), MX4(i + 8), MX4(i + 12)
static const uint8_t mxcsr_to_fflags[64] = {MX16(0), MX16(16), MX16(32), MX16(48)};

#define FP_OP_COUNT (sizeof(fp_ops) / sizeof(fp_ops[0]))
_Static_assert(2 * FP_OP_COUNT <= JIT_FN_SLOTS, "the index is at most half full");

static struct jit_fn_index fp_index;
static pthread_once_t fp_index_once = PTHREAD_ONCE_INIT;

static void fp_index_fill(void)
{
    for (size_t i = 0; i < FP_OP_COUNT; i++)
        jit_fn_index_add(&fp_index, fp_ops[i].fn, &fp_ops[i]);
}

static const struct fp_op *fp_op_find(rv_exec_fn fn)
{
    return jit_fn_index_find(&fp_index, fn);
}

/* The inline form of `in`, or NULL. */
static const struct fp_op *fp_op_for(const struct jit_fp *fp, const struct rv_insn *in)
{
    const struct fp_op *op = fp_op_find(in->fn);

    if (!op || fp->off)
        return NULL;
    if (op->rm && in->rm != RM_RNE && in->rm != RM_DYN)
        return NULL;
    if (op->kind == FK_FMA && !fp->fma)
        return NULL;
    if ((op->kind == FK_LOAD || op->kind == FK_STORE) &&
        (in->imm < INT32_MIN || in->imm > INT32_MAX))
        return NULL;
    return op;
}

void jit_fp_init(struct jit_fp *fp)
{
    pthread_once(&fp_index_once, fp_index_fill);
    __builtin_cpu_init();
    fp->fma = __builtin_cpu_supports("avx") && __builtin_cpu_supports("fma") &&
              !getenv("TESSERA_JIT_NO_FMA");
    fp->flags = fp->any = fp->dyn = fp->off = false;
    fp->nstubs = 0;
}

bool jit_fp_inline(const struct jit_fp *fp, const struct rv_insn *in)
{
    return fp_op_for(fp, in) != NULL;
}

uint64_t jit_fp_int_reads(const struct rv_insn *in)
{
    const struct fp_op *op = fp_op_find(in->fn);

    if (op && (op->kind == FK_LOAD || op->kind == FK_STORE || op->kind == FK_MV_F ||
               op->kind == FK_CVT_D))
        return 1ull << in->rs1;
    return 0;
}

void jit_fp_begin(struct jit_fp *fp, const struct rv_block *blk)
{
    fp->flags = fp->any = fp->dyn = fp->off = false;
    fp->nstubs = 0;
    for (unsigned i = 0; i < blk->n; i++) {
        const struct fp_op *op = fp_op_for(fp, &blk->insn[i]);

        fp->any |= op != NULL;
        fp->dyn |= op && op->rm && blk->insn[i].rm == RM_DYN;
        if (op && (op->kind == FK_ARITH || op->kind == FK_FMA || op->kind == FK_CMP ||
                   op->kind == FK_CVT_D))
            fp->flags = true;
    }
}

void jit_fp_clear(struct jit_ctx *c)
{
    struct x86_buf *b = jit_ctx_buf(c);

    if (!jit_ctx_fp(c)->flags)
        return;
    emit_mov_ri(b, X86_RAX, FPU_MXCSR_BASE);
    emit_store(b, false, X86_RAX, X86_RSP, 0);
    emit_sse_rm(b, X86_SSE_NONE, false, 0xae, 2, X86_RSP, 0); /* ldmxcsr [rsp] */
}

void jit_fp_fold(struct jit_ctx *c)
{
    struct x86_buf *b = jit_ctx_buf(c);
    size_t none;

    if (!jit_ctx_fp(c)->flags)
        return;
    emit_sse_rm(b, X86_SSE_NONE, false, 0xae, 3, X86_RSP, 0); /* stmxcsr [rsp] */
    emit_load(b, false, X86_RAX, X86_RSP, 0);
    emit_alu_ri(b, X86_IMM_AND, false, X86_RAX, FPU_MXCSR_FLAGS);
    none = emit_jcc(b, X86_CC_E);
    emit_mov_ri(b, X86_RCX, (uint64_t)(uintptr_t)mxcsr_to_fflags);
    emit_alu_rr(b, X86_ADD, true, X86_RCX, X86_RAX);
    emit_load_ext(b, 1, false, X86_RAX, X86_RCX);
    emit_alu_mr(b, X86_OR, false, X86_RAX, X86_RBX, HART_OFF(fflags));
    emit_patch(b, none);
}

size_t jit_fp_check(struct jit_ctx *c)
{
    struct x86_buf *b = jit_ctx_buf(c);
    const struct jit_fp *fp = jit_ctx_fp(c);

    if (!fp->any)
        return 0;
    /* eax = (FS ^ Dirty) | frm: zero exactly when FS is Dirty (and frm is RNE). */
    emit_load(b, false, X86_RAX, X86_RBX, HART_OFF(mstatus));
    emit_alu_ri(b, X86_IMM_AND, false, X86_RAX, FS_DIRTY_OFF);
    emit_alu_ri(b, X86_IMM_XOR, false, X86_RAX, FS_DIRTY_OFF);
    if (fp->dyn)
        emit_alu_rm(b, X86_OR, false, X86_RAX, X86_RBX, HART_OFF(frm));
    return emit_jcc(b, X86_CC_NE);
}

/* A jump to `in`'s handler stub, if cc. */
static void to_stub(struct jit_ctx *c, struct jit_fp_stub *s, enum x86_cc cc)
{
    s->from[s->nfrom++] = emit_jcc(jit_ctx_buf(c), cc);
}

/* f[r] must be a NaN-boxed single (else the handler reads it as the canonical NaN). */
static void emit_boxed(struct jit_ctx *c, unsigned r, struct jit_fp_stub *s)
{
    struct x86_buf *b = jit_ctx_buf(c);

    emit_load(b, false, X86_RDX, X86_RBX, FOFF_HI(r));
    emit_alu_ri(b, X86_IMM_CMP, false, X86_RDX, -1);
    to_stub(c, s, X86_CC_NE);
}

/* rax |= the NaN box: the upper half of a single's f register all ones (§12.2). */
static void emit_nan_box(struct x86_buf *b)
{
    emit_mov_ri(b, X86_RCX, FP_BOX);
    emit_alu_rr(b, X86_OR, true, X86_RAX, X86_RCX);
}

/* f[rd] = xmm0's low single, NaN-boxed, or its double. */
static void emit_store_result(struct x86_buf *b, bool d, unsigned rd)
{
    if (d) {
        emit_sse_rm(b, X86_SSE_F2, false, 0x11, 0, X86_RBX, FOFF(rd)); /* movsd [f], xmm0 */
        return;
    }
    emit_sse_rr(b, X86_SSE_66, false, 0x7e, 0, X86_RAX); /* movd eax, xmm0 */
    emit_nan_box(b);
    emit_store(b, true, X86_RAX, X86_RBX, FOFF(rd));
}

/* rax = f[rs1] with its sign from f[rs2] (fsgnj), its inverse (fsgnjn) or XOR-ed (fsgnjx);
 * the sign is bit 63, or bit 31 of a boxed single (whose upper half stays all ones). */
static void emit_sgnj(struct x86_buf *b, const struct rv_insn *in, const struct fp_op *op)
{
    uint8_t sign = op->d ? 63 : 31;

    emit_load(b, true, X86_RAX, X86_RBX, FOFF(in->rs1));
    emit_load(b, true, X86_RCX, X86_RBX, FOFF(in->rs2));
    if (op->arg == 1)
        emit_not(b, X86_RCX);
    emit_shift_ri(b, X86_SHR, op->d, X86_RCX, sign); /* 32-bit for a single: zero-extends */
    emit_shift_ri(b, X86_SHL, op->d, X86_RCX, sign);
    if (op->arg != 2)
        emit_bt_ri(b, X86_BTR, X86_RAX, sign);
    emit_alu_rr(b, op->arg == 2 ? X86_XOR : X86_OR, true, X86_RAX, X86_RCX);
}

void jit_fp_emit(struct jit_ctx *c, const struct rv_insn *in)
{
    struct x86_buf *b = jit_ctx_buf(c);
    struct jit_fp *fp = jit_ctx_fp(c);
    const struct fp_op *op = fp_op_for(fp, in);
    struct jit_fp_stub *s;
    uint8_t pre;
    int src;

    if (!op || fp->nstubs == JIT_FP_MAX_STUBS) {
        jit_ctx_call_handler(c, in);
        return;
    }
    s = &fp->stubs[fp->nstubs++];
    s->in = in;
    s->nfrom = 0;
    pre = op->d ? X86_SSE_F2 : X86_SSE_F3;
    switch (op->kind) {
    case FK_LOAD:
        jit_ctx_mem_probe(c, in, op->arg, false);
        emit_load(b, op->d, X86_RAX, X86_RAX, 0);
        if (!op->d) {
            emit_nan_box(b);
        }
        emit_store(b, true, X86_RAX, X86_RBX, FOFF(in->rd));
        jit_ctx_mem_done(c);
        break;
    case FK_STORE:
        jit_ctx_mem_probe(c, in, op->arg, true);
        emit_load(b, true, X86_RCX, X86_RBX, FOFF(in->rs2));
        emit_store_sized(b, op->arg, X86_RCX, X86_RAX);
        jit_ctx_mem_done(c);
        break;
    case FK_MV_X:
        emit_load(b, op->d, X86_RAX, X86_RBX, FOFF(in->rs1));
        if (!op->d)
            emit_movsxd(b, X86_RAX, X86_RAX);
        jit_ctx_set_x(c, in->rd, X86_RAX);
        break;
    case FK_MV_F:
        src = jit_ctx_get_x(c, in->rs1, X86_RAX);
        if (!op->d) {
            emit_alu_rr(b, X86_MOV, false, X86_RAX, (enum x86_reg)src); /* zero-extends */
            emit_nan_box(b);
            src = X86_RAX;
        }
        emit_store(b, true, (enum x86_reg)src, X86_RBX, FOFF(in->rd));
        break;
    case FK_SGNJ:
        if (!op->d) {
            emit_boxed(c, in->rs1, s);
            emit_boxed(c, in->rs2, s);
        }
        emit_sgnj(b, in, op);
        emit_store(b, true, X86_RAX, X86_RBX, FOFF(in->rd));
        break;
    case FK_ARITH:
    case FK_FMA:
        if (!op->d) {
            emit_boxed(c, in->rs1, s);
            if (op->arg != 0x51)
                emit_boxed(c, in->rs2, s);
            if (op->kind == FK_FMA)
                emit_boxed(c, in->rs3, s);
        }
        if (op->arg == 0x51) {
            emit_sse_rm(b, pre, false, 0x51, 0, X86_RBX, FOFF(in->rs1));
        } else {
            emit_sse_rm(b, pre, false, 0x10, 0, X86_RBX, FOFF(in->rs1)); /* movsd/movss */
            if (op->kind == FK_FMA) {
                emit_sse_rm(b, pre, false, 0x10, 1, X86_RBX, FOFF(in->rs2));
                emit_vex_fma(b, op->d, op->arg, 0, 1, X86_RBX, FOFF(in->rs3));
            } else {
                emit_sse_rm(b, pre, false, op->arg, 0, X86_RBX, FOFF(in->rs2));
            }
        }
        /* ucomisd/ucomiss xmm0, xmm0: unordered exactly for a NaN, which is quiet, so no IE. */
        emit_sse_rr(b, op->d ? X86_SSE_66 : X86_SSE_NONE, false, 0x2e, 0, 0);
        to_stub(c, s, X86_CC_P);
        emit_store_result(b, op->d, in->rd);
        break;
    case FK_CMP:
        if (!op->d) {
            emit_boxed(c, in->rs1, s);
            emit_boxed(c, in->rs2, s);
        }
        /* feq: ucomis (IE for signaling NaNs only), equal and ordered; flt, fle: comis (IE
         * for any NaN, §11.8) of rs2 with rs1, above or above-or-equal (unordered sets CF). */
        emit_sse_rm(b, pre, false, 0x10, 0, X86_RBX, FOFF(op->arg ? in->rs2 : in->rs1));
        emit_sse_rm(b, op->d ? X86_SSE_66 : X86_SSE_NONE, false, op->arg ? 0x2f : 0x2e, 0, X86_RBX,
                    FOFF(op->arg ? in->rs1 : in->rs2));
        if (op->arg == 0) {
            emit_setcc(b, X86_CC_E, X86_RAX);
            emit_setcc(b, X86_CC_NP, X86_RCX);
            emit_alu_rr(b, X86_AND, false, X86_RAX, X86_RCX);
        } else {
            emit_setcc(b, op->arg == 1 ? X86_CC_A : X86_CC_AE, X86_RAX);
        }
        jit_ctx_set_x(c, in->rd, X86_RAX);
        break;
    case FK_CVT_D:
        /* int32 and uint32 to binary64 are exact; int64 rounds (RNE here) with PE as NX. */
        src = jit_ctx_get_x(c, in->rs1, X86_RAX);
        if (op->arg == 1) {
            emit_alu_rr(b, X86_MOV, false, X86_RAX, (enum x86_reg)src);
            src = X86_RAX;
        }
        emit_sse_rr(b, X86_SSE_F2, op->arg != 0, 0x2a, 0, (unsigned)src); /* cvtsi2sd */
        emit_store_result(b, true, in->rd);
        break;
    }
    s->done = b->len;
}

void jit_fp_emit_stubs(struct jit_ctx *c)
{
    struct x86_buf *b = jit_ctx_buf(c);
    struct jit_fp *fp = jit_ctx_fp(c);

    for (unsigned i = 0; i < fp->nstubs; i++) {
        const struct jit_fp_stub *s = &fp->stubs[i];

        if (!s->nfrom)
            continue;
        for (unsigned k = 0; k < s->nfrom; k++)
            emit_patch(b, s->from[k]);
        jit_ctx_call_handler(c, s->in);
        emit_jmp_back(b, s->done);
    }
}

#endif
