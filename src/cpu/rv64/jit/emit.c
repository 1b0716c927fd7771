/* The x86-64 emitter (emit.h). Encodings from the Intel SDM vol. 2: an optional REX prefix
 * 0100WRXB (W: 64-bit operand size; R, B: the fourth bit of ModRM.reg and of ModRM.rm or the
 * SIB base), then the opcode, then ModRM = mod(2) reg(3) rm(3), where mod 3 is a register
 * operand, mod 1 a memory operand with disp8, mod 2 one with disp32; rm 4 in memory form
 * means a SIB byte follows (0x24: base rsp/r12, no index). */
#include "cpu/rv64/jit/emit.h"

#include <string.h>

void x86_buf_init(struct x86_buf *b, uint8_t *mem, size_t cap)
{
    b->p = mem;
    b->len = 0;
    b->cap = cap;
    b->overflow = false;
}

static void put(struct x86_buf *b, const void *bytes, size_t n)
{
    if (b->overflow || b->cap - b->len < n) {
        b->overflow = true;
        return;
    }
    memcpy(b->p + b->len, bytes, n);
    b->len += n;
}

static void put8(struct x86_buf *b, uint8_t v)
{
    put(b, &v, 1);
}

static void put32(struct x86_buf *b, uint32_t v)
{
    uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

    put(b, le, 4);
}

/* The REX prefix for operands reg (ModRM.reg) and rm (ModRM.rm or base), if any is needed;
 * `force` emits one even when empty (byte operands spl, bpl, sil, dil need it). */
static void rex(struct x86_buf *b, bool w64, unsigned reg, unsigned rm, bool force)
{
    uint8_t v = (uint8_t)(0x40 | (w64 ? 8 : 0) | (reg >> 3 & 1) << 2 | (rm >> 3 & 1));

    if (v != 0x40 || force)
        put8(b, v);
}

static void modrm_reg(struct x86_buf *b, unsigned reg, unsigned rm)
{
    put8(b, (uint8_t)(0xc0 | (reg & 7) << 3 | (rm & 7)));
}

/* [base + disp]: rsp and r12 as base need a SIB byte; rbp and r13 have no mod-0 form. */
static void modrm_mem(struct x86_buf *b, unsigned reg, enum x86_reg base, int32_t disp)
{
    unsigned rm = base & 7;
    uint8_t mod = disp == 0 && rm != 5 ? 0x00 : disp >= -128 && disp <= 127 ? 0x40 : 0x80;

    put8(b, (uint8_t)(mod | (reg & 7) << 3 | rm));
    if (rm == 4)
        put8(b, 0x24);
    if (mod == 0x40)
        put8(b, (uint8_t)(int8_t)disp);
    else if (mod == 0x80)
        put32(b, (uint32_t)disp);
}

/* One opcode byte with a register and a memory operand. */
static void op_mem(struct x86_buf *b, bool w64, uint8_t opcode, unsigned reg, enum x86_reg base,
                   int32_t disp)
{
    rex(b, w64, reg, base, false);
    put8(b, opcode);
    modrm_mem(b, reg, base, disp);
}

/* One opcode byte with two register operands (reg in ModRM.reg, rm in ModRM.rm). */
static void op_reg(struct x86_buf *b, bool w64, uint8_t opcode, unsigned reg, unsigned rm)
{
    rex(b, w64, reg, rm, false);
    put8(b, opcode);
    modrm_reg(b, reg, rm);
}

void emit_alu_rm_indexed(struct x86_buf *b, enum x86_alu op, enum x86_reg reg, enum x86_reg base,
                         enum x86_reg index, int32_t disp)
{
    /* ModRM.rm = 4: a SIB byte follows (scale 1); base rbp or r13 has no mod-0 form. */
    uint8_t mod = disp == 0 && (base & 7) != 5 ? 0x00 : disp >= -128 && disp <= 127 ? 0x40 : 0x80;

    put8(b, (uint8_t)(0x48 | (reg >> 3 & 1) << 2 | (index >> 3 & 1) << 1 | (base >> 3 & 1)));
    put8(b, (uint8_t)(op + 2));
    put8(b, (uint8_t)(mod | (reg & 7) << 3 | 4));
    put8(b, (uint8_t)((index & 7) << 3 | (base & 7)));
    if (mod == 0x40)
        put8(b, (uint8_t)(int8_t)disp);
    else if (mod == 0x80)
        put32(b, (uint32_t)disp);
}

void emit_load(struct x86_buf *b, bool w64, enum x86_reg reg, enum x86_reg base, int32_t disp)
{
    op_mem(b, w64, 0x8b, reg, base, disp);
}

void emit_store(struct x86_buf *b, bool w64, enum x86_reg reg, enum x86_reg base, int32_t disp)
{
    op_mem(b, w64, 0x89, reg, base, disp);
}

void emit_alu_rm(struct x86_buf *b, enum x86_alu op, bool w64, enum x86_reg reg, enum x86_reg base,
                 int32_t disp)
{
    op_mem(b, w64, (uint8_t)(op + 2), reg, base, disp);
}

void emit_alu_mr(struct x86_buf *b, enum x86_alu op, bool w64, enum x86_reg reg, enum x86_reg base,
                 int32_t disp)
{
    op_mem(b, w64, (uint8_t)op, reg, base, disp);
}

void emit_alu_rr(struct x86_buf *b, enum x86_alu op, bool w64, enum x86_reg dst, enum x86_reg src)
{
    op_reg(b, w64, (uint8_t)op, src, dst);
}

void emit_alu_ri(struct x86_buf *b, enum x86_alu_imm op, bool w64, enum x86_reg dst, int32_t imm)
{
    bool short_imm = imm >= -128 && imm <= 127;

    op_reg(b, w64, short_imm ? 0x83 : 0x81, op, dst);
    if (short_imm)
        put8(b, (uint8_t)(int8_t)imm);
    else
        put32(b, (uint32_t)imm);
}

void emit_add_mi(struct x86_buf *b, enum x86_reg base, int32_t disp, int32_t imm)
{
    op_mem(b, true, 0x81, X86_IMM_ADD, base, disp);
    put32(b, (uint32_t)imm);
}

void emit_shift_ri(struct x86_buf *b, enum x86_shift op, bool w64, enum x86_reg dst, uint8_t n)
{
    op_reg(b, w64, 0xc1, op, dst);
    put8(b, n);
}

void emit_shift_rcl(struct x86_buf *b, enum x86_shift op, bool w64, enum x86_reg dst)
{
    op_reg(b, w64, 0xd3, op, dst);
}

void emit_mov_ri(struct x86_buf *b, enum x86_reg dst, uint64_t imm)
{
    if (imm <= UINT32_MAX) {
        rex(b, false, 0, dst, false); /* mov r32, imm32 zero-extends */
        put8(b, (uint8_t)(0xb8 + (dst & 7)));
        put32(b, (uint32_t)imm);
    } else if ((int64_t)imm >= INT32_MIN && (int64_t)imm < 0) {
        op_reg(b, true, 0xc7, 0, dst); /* mov r/m64, imm32 sign-extends */
        put32(b, (uint32_t)imm);
    } else {
        rex(b, true, 0, dst, false);
        put8(b, (uint8_t)(0xb8 + (dst & 7)));
        put32(b, (uint32_t)imm);
        put32(b, (uint32_t)(imm >> 32));
    }
}

void emit_movsxd(struct x86_buf *b, enum x86_reg dst, enum x86_reg src)
{
    op_reg(b, true, 0x63, dst, src);
}

void emit_imul_rr(struct x86_buf *b, bool w64, enum x86_reg dst, enum x86_reg src)
{
    rex(b, w64, dst, src, false);
    put8(b, 0x0f);
    put8(b, 0xaf);
    modrm_reg(b, dst, src);
}

void emit_muldiv(struct x86_buf *b, enum x86_muldiv op, bool w64, enum x86_reg src)
{
    op_reg(b, w64, 0xf7, op, src);
}

void emit_lea(struct x86_buf *b, enum x86_reg dst, enum x86_reg base, int32_t disp)
{
    if (disp == 0) {
        if (dst != base)
            emit_alu_rr(b, X86_MOV, true, dst, base);
        return;
    }
    op_mem(b, true, 0x8d, dst, base, disp);
}

void emit_not(struct x86_buf *b, enum x86_reg dst)
{
    op_reg(b, true, 0xf7, 2, dst);
}

void emit_cmov(struct x86_buf *b, enum x86_cc cc, enum x86_reg dst, enum x86_reg src)
{
    rex(b, true, dst, src, false);
    put8(b, 0x0f);
    put8(b, (uint8_t)(0x40 + cc));
    modrm_reg(b, dst, src);
}

void emit_movx_rr(struct x86_buf *b, unsigned size, bool is_signed, enum x86_reg dst,
                  enum x86_reg src)
{
    /* movsx r64, r/m8|16 (REX.W) or movzx r32, r/m8|16, which zero-extends to 64 */
    rex(b, is_signed, dst, src, size == 1 && src >= X86_RSP);
    put8(b, 0x0f);
    put8(b, (uint8_t)((is_signed ? 0xbe : 0xb6) + (size == 2)));
    modrm_reg(b, dst, src);
}

void emit_bswap(struct x86_buf *b, enum x86_reg dst)
{
    rex(b, true, 0, dst, false);
    put8(b, 0x0f);
    put8(b, (uint8_t)(0xc8 + (dst & 7)));
}

void emit_bt_rr(struct x86_buf *b, enum x86_bt op, enum x86_reg dst, enum x86_reg src)
{
    rex(b, true, src, dst, false);
    put8(b, 0x0f);
    put8(b, (uint8_t)op);
    modrm_reg(b, src, dst);
}

void emit_bt_ri(struct x86_buf *b, enum x86_bt op, enum x86_reg dst, uint8_t n)
{
    rex(b, true, 0, dst, false);
    put8(b, 0x0f);
    put8(b, 0xba);
    modrm_reg(b, ((unsigned)op >> 3) & 7, dst);
    put8(b, n);
}

void emit_neg(struct x86_buf *b, bool w64, enum x86_reg dst)
{
    op_reg(b, w64, 0xf7, 3, dst);
}

void emit_sign_extend_rdx(struct x86_buf *b, bool w64)
{
    rex(b, w64, 0, 0, false);
    put8(b, 0x99);
}

void emit_setcc(struct x86_buf *b, enum x86_cc cc, enum x86_reg dst)
{
    rex(b, false, 0, dst, dst >= X86_RSP); /* setcc dst8 */
    put8(b, 0x0f);
    put8(b, (uint8_t)(0x90 + cc));
    modrm_reg(b, 0, dst);
    rex(b, false, dst, dst, dst >= X86_RSP); /* movzx dst32, dst8 (zero-extends to 64) */
    put8(b, 0x0f);
    put8(b, 0xb6);
    modrm_reg(b, dst, dst);
}

void emit_load_ext(struct x86_buf *b, unsigned size, bool is_signed, enum x86_reg reg,
                   enum x86_reg base)
{
    switch (size) {
    case 1:
    case 2:
        rex(b, is_signed, reg, base, false);
        put8(b, 0x0f);
        put8(b, (uint8_t)((is_signed ? 0xbe : 0xb6) + (size == 2)));
        break;
    case 4:
        rex(b, is_signed, reg, base, false);
        put8(b, is_signed ? 0x63 : 0x8b); /* movsxd, or mov r32 which zero-extends */
        break;
    default:
        rex(b, true, reg, base, false);
        put8(b, 0x8b);
        break;
    }
    modrm_mem(b, reg, base, 0);
}

void emit_store_sized(struct x86_buf *b, unsigned size, enum x86_reg reg, enum x86_reg base)
{
    switch (size) {
    case 1:
        rex(b, false, reg, base, reg >= X86_RSP);
        put8(b, 0x88);
        break;
    case 2:
        put8(b, 0x66);
        rex(b, false, reg, base, false);
        put8(b, 0x89);
        break;
    case 4:
        rex(b, false, reg, base, false);
        put8(b, 0x89);
        break;
    default:
        rex(b, true, reg, base, false);
        put8(b, 0x89);
        break;
    }
    modrm_mem(b, reg, base, 0);
}

void emit_cmp_m8_zero(struct x86_buf *b, enum x86_reg base, int32_t disp)
{
    op_mem(b, false, 0x80, 7, base, disp);
    put8(b, 0);
}

void emit_jmp_reg(struct x86_buf *b, enum x86_reg reg)
{
    op_reg(b, false, 0xff, 4, reg);
}

void emit_test_rr(struct x86_buf *b, bool w64, enum x86_reg reg)
{
    op_reg(b, w64, 0x85, reg, reg);
}

size_t emit_jcc(struct x86_buf *b, enum x86_cc cc)
{
    put8(b, 0x0f);
    put8(b, (uint8_t)(0x80 + cc));
    put32(b, 0);
    return b->len - 4;
}

size_t emit_jmp(struct x86_buf *b)
{
    put8(b, 0xe9);
    put32(b, 0);
    return b->len - 4;
}

void emit_patch(struct x86_buf *b, size_t at)
{
    uint32_t rel = (uint32_t)(b->len - (at + 4));

    if (b->overflow)
        return;
    memcpy(b->p + at, &rel, 4);
}

void emit_jmp_back(struct x86_buf *b, size_t to)
{
    put8(b, 0xe9);
    put32(b, (uint32_t)(int32_t)((int64_t)to - (int64_t)(b->len + 4)));
}

void emit_jcc_back(struct x86_buf *b, enum x86_cc cc, size_t to)
{
    put8(b, 0x0f);
    put8(b, (uint8_t)(0x80 + cc));
    put32(b, (uint32_t)(int32_t)((int64_t)to - (int64_t)(b->len + 4)));
}

void emit_call_back(struct x86_buf *b, size_t to)
{
    put8(b, 0xe8);
    put32(b, (uint32_t)(int32_t)((int64_t)to - (int64_t)(b->len + 4)));
}

void emit_call(struct x86_buf *b, const void *fn)
{
    emit_mov_ri(b, X86_RAX, (uint64_t)(uintptr_t)fn);
    put8(b, 0xff); /* call rax */
    modrm_reg(b, 2, X86_RAX);
}

void emit_push(struct x86_buf *b, enum x86_reg reg)
{
    rex(b, false, 0, reg, false);
    put8(b, (uint8_t)(0x50 + (reg & 7)));
}

void emit_pop(struct x86_buf *b, enum x86_reg reg)
{
    rex(b, false, 0, reg, false);
    put8(b, (uint8_t)(0x58 + (reg & 7)));
}

void emit_ret(struct x86_buf *b)
{
    put8(b, 0xc3);
}

void emit_mfence(struct x86_buf *b)
{
    put8(b, 0x0f);
    put8(b, 0xae);
    put8(b, 0xf0);
}

void emit_sse_rm(struct x86_buf *b, uint8_t prefix, bool w64, uint8_t op, unsigned reg,
                 enum x86_reg base, int32_t disp)
{
    if (prefix)
        put8(b, prefix);
    rex(b, w64, reg, base, false);
    put8(b, 0x0f);
    put8(b, op);
    modrm_mem(b, reg, base, disp);
}

void emit_sse_rr(struct x86_buf *b, uint8_t prefix, bool w64, uint8_t op, unsigned reg, unsigned rm)
{
    if (prefix)
        put8(b, prefix);
    rex(b, w64, reg, rm, false);
    put8(b, 0x0f);
    put8(b, op);
    modrm_reg(b, reg, rm);
}

/* The three-byte VEX prefix (SDM vol. 2 §2.3.5): C4, then R X B (inverted) and the opcode map
 * (2: 0F38), then W, vvvv (src1, inverted), L (0: scalar) and pp (1: 66). */
void emit_vex_fma(struct x86_buf *b, bool w1, uint8_t op, unsigned reg, unsigned src1,
                  enum x86_reg base, int32_t disp)
{
    put8(b, 0xc4);
    put8(b, (uint8_t)((~reg >> 3 & 1) << 7 | 1 << 6 | (~(unsigned)base >> 3 & 1) << 5 | 0x02));
    put8(b, (uint8_t)((w1 ? 0x80 : 0) | (~src1 & 15) << 3 | 0x01));
    put8(b, op);
    modrm_mem(b, reg, base, disp);
}
