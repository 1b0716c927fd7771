/* Private to src/cpu/rv64/jit/: a small x86-64 machine-code emitter, just the instruction
 * forms the translator needs (Intel SDM vol. 2, "Instruction Format" and each opcode's page).
 *
 * Our own rather than a library such as Zydis: the translator uses about thirty fixed forms
 * on the eight legacy registers, which fit in a page of code with no dependency to install,
 * and each form is checked byte for byte by the differential test through the code it runs.
 *
 * Registers are the eight legacy ones (no REX.R/X/B is ever needed). Memory operands are
 * [base + disp] with a base other than rsp and rbp (so no SIB byte). Every emit_* appends to
 * an x86_buf; a buffer that would overflow sets `overflow` and keeps its length, so the
 * caller checks once at the end. One buffer belongs to one thread. */
#ifndef TESSERA_CPU_RV64_JIT_EMIT_H
#define TESSERA_CPU_RV64_JIT_EMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum x86_reg { X86_RAX, X86_RCX, X86_RDX, X86_RBX, X86_RSP, X86_RBP, X86_RSI, X86_RDI };

/* Condition codes, the low nibble of Jcc and SETcc. */
enum x86_cc {
    X86_CC_B = 0x2,  /* unsigned < */
    X86_CC_AE = 0x3, /* unsigned >= */
    X86_CC_E = 0x4,
    X86_CC_NE = 0x5,
    X86_CC_L = 0xc,  /* signed < */
    X86_CC_GE = 0xd, /* signed >= */
};

/* Two-operand ALU opcodes, `op r/m, r` form; the `op r, r/m` form is this + 2. */
enum x86_alu {
    X86_ADD = 0x01,
    X86_OR = 0x09,
    X86_AND = 0x21,
    X86_SUB = 0x29,
    X86_XOR = 0x31,
    X86_CMP = 0x39,
    X86_MOV = 0x89,
};

/* The /digit of the 0x81 (ALU with imm32) group. */
enum x86_alu_imm {
    X86_IMM_ADD = 0,
    X86_IMM_OR = 1,
    X86_IMM_AND = 4,
    X86_IMM_SUB = 5,
    X86_IMM_XOR = 6,
    X86_IMM_CMP = 7,
};

/* The /digit of the shift groups (0xC1 by imm8, 0xD3 by cl). */
enum x86_shift { X86_SHL = 4, X86_SHR = 5, X86_SAR = 7 };

struct x86_buf {
    uint8_t *p;
    size_t len;
    size_t cap;
    bool overflow;
};

void x86_buf_init(struct x86_buf *b, uint8_t *mem, size_t cap);

/* reg = [base + disp] (64 or 32 bits; 32 zero-extends) and [base + disp] = reg. */
void emit_load(struct x86_buf *b, bool w64, enum x86_reg reg, enum x86_reg base, int32_t disp);
void emit_store(struct x86_buf *b, bool w64, enum x86_reg reg, enum x86_reg base, int32_t disp);
/* reg = reg OP [base + disp] (OP from enum x86_alu, not MOV). */
void emit_alu_rm(struct x86_buf *b, enum x86_alu op, bool w64, enum x86_reg reg, enum x86_reg base,
                 int32_t disp);
/* [base + disp] += reg (64 bits). */
void emit_add_mr(struct x86_buf *b, enum x86_reg reg, enum x86_reg base, int32_t disp);
/* dst = dst OP src. */
void emit_alu_rr(struct x86_buf *b, enum x86_alu op, bool w64, enum x86_reg dst, enum x86_reg src);
/* dst = dst OP imm (sign-extended to 64 bits when w64). */
void emit_alu_ri(struct x86_buf *b, enum x86_alu_imm op, bool w64, enum x86_reg dst, int32_t imm);
/* [base + disp] += imm (64 bits, imm sign-extended). */
void emit_add_mi(struct x86_buf *b, enum x86_reg base, int32_t disp, int32_t imm);
void emit_shift_ri(struct x86_buf *b, enum x86_shift op, bool w64, enum x86_reg dst, uint8_t n);
void emit_shift_rcl(struct x86_buf *b, enum x86_shift op, bool w64, enum x86_reg dst);
/* dst = imm, with the shortest form that gives the same 64 bits. */
void emit_mov_ri(struct x86_buf *b, enum x86_reg dst, uint64_t imm);
/* dst = (int64_t)(int32_t)src. */
void emit_movsxd(struct x86_buf *b, enum x86_reg dst, enum x86_reg src);
/* reg = reg * [base + disp] (low bits, 64 or 32). */
void emit_imul_rm(struct x86_buf *b, bool w64, enum x86_reg reg, enum x86_reg base, int32_t disp);
/* rdx:rax = rax * [base + disp], signed (imul) or unsigned (mul). */
void emit_mul_wide_m(struct x86_buf *b, bool is_signed, enum x86_reg base, int32_t disp);
/* dst = cc ? 1 : 0 (whole 64-bit register; dst is rax, rcx or rdx). */
void emit_setcc(struct x86_buf *b, enum x86_cc cc, enum x86_reg dst);
/* reg = the size-byte value at [base], sign- or zero-extended to 64 bits. */
void emit_load_ext(struct x86_buf *b, unsigned size, bool is_signed, enum x86_reg reg,
                   enum x86_reg base);
/* [base] = the low size bytes of reg. */
void emit_store_sized(struct x86_buf *b, unsigned size, enum x86_reg reg, enum x86_reg base);
/* cmp byte [base + disp], 0 (flags only). */
void emit_cmp_m8_zero(struct x86_buf *b, enum x86_reg base, int32_t disp);
/* jmp reg (absolute, indirect). */
void emit_jmp_reg(struct x86_buf *b, enum x86_reg reg);
/* test reg32, imm32 (flags only). */
void emit_test_ri32(struct x86_buf *b, enum x86_reg reg, uint32_t imm);
/* Forward jumps: each returns the offset of its rel32 for emit_patch(). */
size_t emit_jcc(struct x86_buf *b, enum x86_cc cc);
size_t emit_jmp(struct x86_buf *b);
/* Points the rel32 at `at` to the current end of the buffer. */
void emit_patch(struct x86_buf *b, size_t at);
/* call the absolute address fn (through rax, which it clobbers). */
void emit_call(struct x86_buf *b, const void *fn);
void emit_push(struct x86_buf *b, enum x86_reg reg);
void emit_pop(struct x86_buf *b, enum x86_reg reg);
void emit_ret(struct x86_buf *b);

#endif
