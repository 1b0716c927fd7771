/* The x86-64 emitter (emit.h). Encodings from the Intel SDM vol. 2: a REX.W prefix (0x48)
 * for 64-bit operand size, then the opcode, then ModRM = mod(2) reg(3) rm(3), where mod 3 is
 * a register operand, mod 1 a memory operand with disp8, mod 2 one with disp32. */
#include "cpu/rv64/jit/emit.h"

#include <string.h>

#define REX_W 0x48

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

static void rex_w(struct x86_buf *b, bool w64)
{
    if (w64)
        put8(b, REX_W);
}

static void modrm_reg(struct x86_buf *b, unsigned reg, unsigned rm)
{
    put8(b, (uint8_t)(0xc0 | (reg & 7) << 3 | (rm & 7)));
}

/* [base + disp]: base is never rsp (would need a SIB byte) nor rbp with mod 0. */
static void modrm_mem(struct x86_buf *b, unsigned reg, enum x86_reg base, int32_t disp)
{
    if (disp == 0 && base != X86_RBP) {
        put8(b, (uint8_t)((reg & 7) << 3 | base));
    } else if (disp >= -128 && disp <= 127) {
        put8(b, (uint8_t)(0x40 | (reg & 7) << 3 | base));
        put8(b, (uint8_t)(int8_t)disp);
    } else {
        put8(b, (uint8_t)(0x80 | (reg & 7) << 3 | base));
        put32(b, (uint32_t)disp);
    }
}

void emit_load(struct x86_buf *b, bool w64, enum x86_reg reg, enum x86_reg base, int32_t disp)
{
    rex_w(b, w64);
    put8(b, 0x8b);
    modrm_mem(b, reg, base, disp);
}

void emit_store(struct x86_buf *b, bool w64, enum x86_reg reg, enum x86_reg base, int32_t disp)
{
    rex_w(b, w64);
    put8(b, 0x89);
    modrm_mem(b, reg, base, disp);
}

void emit_alu_rm(struct x86_buf *b, enum x86_alu op, bool w64, enum x86_reg reg, enum x86_reg base,
                 int32_t disp)
{
    rex_w(b, w64);
    put8(b, (uint8_t)(op + 2));
    modrm_mem(b, reg, base, disp);
}

void emit_add_mr(struct x86_buf *b, enum x86_reg reg, enum x86_reg base, int32_t disp)
{
    put8(b, REX_W);
    put8(b, X86_ADD);
    modrm_mem(b, reg, base, disp);
}

void emit_alu_rr(struct x86_buf *b, enum x86_alu op, bool w64, enum x86_reg dst, enum x86_reg src)
{
    rex_w(b, w64);
    put8(b, (uint8_t)op);
    modrm_reg(b, src, dst);
}

void emit_alu_ri(struct x86_buf *b, enum x86_alu_imm op, bool w64, enum x86_reg dst, int32_t imm)
{
    rex_w(b, w64);
    if (imm >= -128 && imm <= 127) {
        put8(b, 0x83);
        modrm_reg(b, op, dst);
        put8(b, (uint8_t)(int8_t)imm);
    } else {
        put8(b, 0x81);
        modrm_reg(b, op, dst);
        put32(b, (uint32_t)imm);
    }
}

void emit_add_mi(struct x86_buf *b, enum x86_reg base, int32_t disp, int32_t imm)
{
    put8(b, REX_W);
    put8(b, 0x81);
    modrm_mem(b, X86_IMM_ADD, base, disp);
    put32(b, (uint32_t)imm);
}

void emit_shift_ri(struct x86_buf *b, enum x86_shift op, bool w64, enum x86_reg dst, uint8_t n)
{
    rex_w(b, w64);
    put8(b, 0xc1);
    modrm_reg(b, op, dst);
    put8(b, n);
}

void emit_shift_rcl(struct x86_buf *b, enum x86_shift op, bool w64, enum x86_reg dst)
{
    rex_w(b, w64);
    put8(b, 0xd3);
    modrm_reg(b, op, dst);
}

void emit_mov_ri(struct x86_buf *b, enum x86_reg dst, uint64_t imm)
{
    if (imm <= UINT32_MAX) {
        put8(b, (uint8_t)(0xb8 + dst)); /* mov r32, imm32 zero-extends */
        put32(b, (uint32_t)imm);
    } else if ((int64_t)imm >= INT32_MIN && (int64_t)imm < 0) {
        put8(b, REX_W); /* mov r/m64, imm32 sign-extends */
        put8(b, 0xc7);
        modrm_reg(b, 0, dst);
        put32(b, (uint32_t)imm);
    } else {
        put8(b, REX_W);
        put8(b, (uint8_t)(0xb8 + dst));
        put32(b, (uint32_t)imm);
        put32(b, (uint32_t)(imm >> 32));
    }
}

void emit_movsxd(struct x86_buf *b, enum x86_reg dst, enum x86_reg src)
{
    put8(b, REX_W);
    put8(b, 0x63);
    modrm_reg(b, dst, src);
}

void emit_imul_rm(struct x86_buf *b, bool w64, enum x86_reg reg, enum x86_reg base, int32_t disp)
{
    rex_w(b, w64);
    put8(b, 0x0f);
    put8(b, 0xaf);
    modrm_mem(b, reg, base, disp);
}

void emit_mul_wide_m(struct x86_buf *b, bool is_signed, enum x86_reg base, int32_t disp)
{
    put8(b, REX_W);
    put8(b, 0xf7);
    modrm_mem(b, is_signed ? 5 : 4, base, disp);
}

void emit_setcc(struct x86_buf *b, enum x86_cc cc, enum x86_reg dst)
{
    put8(b, 0x0f); /* setcc dst8: al, cl, dl need no REX */
    put8(b, (uint8_t)(0x90 + cc));
    modrm_reg(b, 0, dst);
    put8(b, 0x0f); /* movzx dst32, dst8 (zero-extends to 64) */
    put8(b, 0xb6);
    modrm_reg(b, dst, dst);
}

void emit_load_ext(struct x86_buf *b, unsigned size, bool is_signed, enum x86_reg reg,
                   enum x86_reg base)
{
    switch (size) {
    case 1:
    case 2:
        rex_w(b, is_signed);
        put8(b, 0x0f);
        put8(b, (uint8_t)((is_signed ? 0xbe : 0xb6) + (size == 2)));
        break;
    case 4:
        rex_w(b, is_signed);
        put8(b, is_signed ? 0x63 : 0x8b); /* movsxd, or mov r32 which zero-extends */
        break;
    default:
        put8(b, REX_W);
        put8(b, 0x8b);
        break;
    }
    modrm_mem(b, reg, base, 0);
}

void emit_store_sized(struct x86_buf *b, unsigned size, enum x86_reg reg, enum x86_reg base)
{
    switch (size) {
    case 1: put8(b, 0x88); break; /* reg is rax, rcx or rdx: al, cl, dl need no REX */
    case 2:
        put8(b, 0x66);
        put8(b, 0x89);
        break;
    case 4: put8(b, 0x89); break;
    default:
        put8(b, REX_W);
        put8(b, 0x89);
        break;
    }
    modrm_mem(b, reg, base, 0);
}

void emit_cmp_m8_zero(struct x86_buf *b, enum x86_reg base, int32_t disp)
{
    put8(b, 0x80);
    modrm_mem(b, 7, base, disp);
    put8(b, 0);
}

void emit_jmp_reg(struct x86_buf *b, enum x86_reg reg)
{
    put8(b, 0xff);
    modrm_reg(b, 4, reg);
}

void emit_test_ri32(struct x86_buf *b, enum x86_reg reg, uint32_t imm)
{
    put8(b, 0xf7);
    modrm_reg(b, 0, reg);
    put32(b, imm);
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

void emit_call(struct x86_buf *b, const void *fn)
{
    emit_mov_ri(b, X86_RAX, (uint64_t)(uintptr_t)fn);
    put8(b, 0xff); /* call rax */
    modrm_reg(b, 2, X86_RAX);
}

void emit_push(struct x86_buf *b, enum x86_reg reg)
{
    put8(b, (uint8_t)(0x50 + reg));
}

void emit_pop(struct x86_buf *b, enum x86_reg reg)
{
    put8(b, (uint8_t)(0x58 + reg));
}

void emit_ret(struct x86_buf *b)
{
    put8(b, 0xc3);
}
