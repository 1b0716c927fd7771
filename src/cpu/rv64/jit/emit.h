/* Private to src/cpu/rv64/jit/: a small x86-64 machine-code emitter, just the instruction
 * forms the translator needs (Intel SDM vol. 2, "Instruction Format" and each opcode's page).
 *
 * Our own rather than a library such as Zydis: the translator uses a few dozen fixed forms,
 * which fit in a few pages of code with no dependency to install, and each form is checked
 * byte for byte by the differential test through the code it runs.
 *
 * Registers are all sixteen; a REX prefix is added where an operand needs it (r8-r15, or the
 * byte registers spl/bpl/sil/dil). Memory operands are [base + disp] on any base (rsp and r12
 * take a SIB byte, rbp and r13 a zero disp8). Every emit_* appends to an x86_buf; a buffer
 * that would overflow sets `overflow` and keeps its length, so the caller checks once at the
 * end. One buffer belongs to one thread. */
#ifndef TESSERA_CPU_RV64_JIT_EMIT_H
#define TESSERA_CPU_RV64_JIT_EMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum x86_reg {
    X86_RAX,
    X86_RCX,
    X86_RDX,
    X86_RBX,
    X86_RSP,
    X86_RBP,
    X86_RSI,
    X86_RDI,
    X86_R8,
    X86_R9,
    X86_R10,
    X86_R11,
    X86_R12,
    X86_R13,
    X86_R14,
    X86_R15,
};

/* Condition codes, the low nibble of Jcc and SETcc. */
enum x86_cc {
    X86_CC_B = 0x2,  /* unsigned <; also carry set */
    X86_CC_AE = 0x3, /* unsigned >= */
    X86_CC_E = 0x4,
    X86_CC_NE = 0x5,
    X86_CC_BE = 0x6, /* unsigned <= */
    X86_CC_A = 0x7,  /* unsigned > */
    X86_CC_P = 0xa,  /* parity set: an unordered (NaN) comparison of ucomis/comis */
    X86_CC_NP = 0xb,
    X86_CC_L = 0xc,  /* signed < */
    X86_CC_GE = 0xd, /* signed >= */
    X86_CC_LE = 0xe, /* signed <= */
    X86_CC_G = 0xf,  /* signed > */
};

/* The condition that holds exactly when cc does not: the codes come in pairs differing in
 * their lowest bit (Intel SDM vol. 2, Jcc). */
static inline enum x86_cc x86_cc_not(enum x86_cc cc)
{
    return (enum x86_cc)(cc ^ 1);
}

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

/* The /digit of the shift and rotate groups (0xC1 by imm8, 0xD3 by cl). */
enum x86_shift { X86_ROL = 0, X86_ROR = 1, X86_SHL = 4, X86_SHR = 5, X86_SAR = 7 };

/* The bit-test instructions: the second opcode byte of the register form (0F xx, the bit
 * index taken mod 64 for 64-bit operands); the imm8 form is 0F BA with /digit (xx >> 3) & 7. */
enum x86_bt { X86_BT = 0xa3, X86_BTS = 0xab, X86_BTR = 0xb3, X86_BTC = 0xbb };

/* The /digit of the 0xF7 group's one-operand multiply and divide forms. */
enum x86_muldiv { X86_MUL = 4, X86_IMUL1 = 5, X86_DIV = 6, X86_IDIV = 7 };

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
/* reg = reg OP [base + index + disp] (64 bits; OP from enum x86_alu, not MOV; index not
 * rsp). */
void emit_alu_rm_indexed(struct x86_buf *b, enum x86_alu op, enum x86_reg reg, enum x86_reg base,
                         enum x86_reg index, int32_t disp);
/* [base + disp] = [base + disp] OP reg (OP from enum x86_alu; 64 or 32 bits). */
void emit_alu_mr(struct x86_buf *b, enum x86_alu op, bool w64, enum x86_reg reg, enum x86_reg base,
                 int32_t disp);
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
/* dst = dst * src (low bits, 64 or 32). */
void emit_imul_rr(struct x86_buf *b, bool w64, enum x86_reg dst, enum x86_reg src);
/* The one-operand 0xF7 forms on src: rdx:rax = rax * src (MUL, IMUL1), or rax = rdx:rax / src
 * and rdx = the remainder (DIV, IDIV); 64 or 32 bits. */
void emit_muldiv(struct x86_buf *b, enum x86_muldiv op, bool w64, enum x86_reg src);
/* dst = base + disp (64 bits; a plain mov when disp is 0). */
void emit_lea(struct x86_buf *b, enum x86_reg dst, enum x86_reg base, int32_t disp);
/* dst = ~dst (64 bits). */
void emit_not(struct x86_buf *b, enum x86_reg dst);
/* if (cc) dst = src (64 bits). */
void emit_cmov(struct x86_buf *b, enum x86_cc cc, enum x86_reg dst, enum x86_reg src);
/* dst = the low size (1 or 2) bytes of src, sign- or zero-extended to 64 bits. */
void emit_movx_rr(struct x86_buf *b, unsigned size, bool is_signed, enum x86_reg dst,
                  enum x86_reg src);
/* dst = dst with its eight bytes reversed. */
void emit_bswap(struct x86_buf *b, enum x86_reg dst);
/* Bit n of dst (64 bits) into the carry flag, and for BTS/BTR/BTC set, cleared or flipped:
 * n from register src, or the immediate. */
void emit_bt_rr(struct x86_buf *b, enum x86_bt op, enum x86_reg dst, enum x86_reg src);
void emit_bt_ri(struct x86_buf *b, enum x86_bt op, enum x86_reg dst, uint8_t n);
/* dst = -dst (64 or 32 bits). */
void emit_neg(struct x86_buf *b, bool w64, enum x86_reg dst);
/* Sign-extends rax into rdx (cqo) or eax into edx (cdq). */
void emit_sign_extend_rdx(struct x86_buf *b, bool w64);
/* dst = cc ? 1 : 0 (whole 64-bit register). */
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
/* test reg, reg (flags only; 64 or 32 bits). */
void emit_test_rr(struct x86_buf *b, bool w64, enum x86_reg reg);
/* Forward jumps: each returns the offset of its rel32 for emit_patch(). */
size_t emit_jcc(struct x86_buf *b, enum x86_cc cc);
size_t emit_jmp(struct x86_buf *b);
/* Points the rel32 at `at` to the current end of the buffer. */
void emit_patch(struct x86_buf *b, size_t at);
/* Backward jump to offset `to` of the buffer (emitted before), always or if cc. */
void emit_jmp_back(struct x86_buf *b, size_t to);
void emit_jcc_back(struct x86_buf *b, enum x86_cc cc, size_t to);
/* call offset `to` of the buffer (emitted before): rel32, the return address pushed. */
void emit_call_back(struct x86_buf *b, size_t to);
/* call the absolute address fn (through rax, which it clobbers). */
void emit_call(struct x86_buf *b, const void *fn);
void emit_push(struct x86_buf *b, enum x86_reg reg);
void emit_pop(struct x86_buf *b, enum x86_reg reg);

/* SSE and VEX forms for floating point. `reg` is an xmm register number (or, for the forms
 * that move between a general register and an xmm register, as the SDM names each). */
#define X86_SSE_NONE 0x00
#define X86_SSE_66   0x66 /* packed double / integer forms (ucomisd, movq) */
#define X86_SSE_F2   0xf2 /* scalar double */
#define X86_SSE_F3   0xf3 /* scalar single */
/* prefix [REX] 0F op ModRM with xmm `reg` and [base + disp]: e.g. movsd xmm, m64 (F2 0F 10),
 * movsd m64, xmm (F2 0F 11), addsd (58), mulsd (59), subsd (5C), divsd (5E), sqrtsd (51),
 * ucomisd (66 0F 2E), comisd (66 0F 2F), ldmxcsr (0F AE /2) and stmxcsr (/3) with reg = the
 * digit. */
void emit_sse_rm(struct x86_buf *b, uint8_t prefix, bool w64, uint8_t op, unsigned reg,
                 enum x86_reg base, int32_t disp);
/* The same with a register operand rm: movd/movq r/m, xmm (66 0F 7E, reg = xmm, rm = general
 * register), cvtsi2sd xmm, r/m (F2 0F 2A). */
void emit_sse_rr(struct x86_buf *b, uint8_t prefix, bool w64, uint8_t op, unsigned reg,
                 unsigned rm);
/* The FMA3 scalar forms (VEX.LIG.66.0F38, W1 double, W0 single): reg = src1 * reg OP
 * [base + disp] for op 0xA9 vfmadd213, 0xAB vfmsub213, 0xAD vfnmadd213, 0xAF vfnmsub213. */
void emit_vex_fma(struct x86_buf *b, bool w1, uint8_t op, unsigned reg, unsigned src1,
                  enum x86_reg base, int32_t disp);
void emit_ret(struct x86_buf *b);
/* mfence: every earlier load and store is globally visible before any later one. */
void emit_mfence(struct x86_buf *b);

#endif
