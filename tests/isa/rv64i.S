/* RV64I: every base instruction, W forms, loads/stores of every width, branches, jumps,
 * LUI/AUIPC, shift edge amounts, x0, FENCE/FENCE.I.  Expected values from the ISA manual. */
#include "isa.h"

/* rd = op(rs1, rs2) */
.macro TEST_RR n, op, exp, a, b
    CHECK \n
    li a1, \a
    li a2, \b
    \op a0, a1, a2
    EXPECT a0, \exp
    EXPECT a1, \a   /* sources untouched */
    EXPECT a2, \b
.endm

/* rd = op(rs1, imm) */
.macro TEST_RI n, op, exp, a, imm
    CHECK \n
    li a1, \a
    \op a0, a1, \imm
    EXPECT a0, \exp
.endm

/* rd == rs1 == rs2 */
.macro TEST_RR_SAME n, op, exp, a
    CHECK \n
    li a0, \a
    \op a0, a0, a0
    EXPECT a0, \exp
.endm

/* branch taken (taken=1) or not (0) */
.macro TEST_BR n, op, taken, a, b
    CHECK \n
    li a1, \a
    li a2, \b
    \op a1, a2, .Lt\@
    .if \taken
    j fail
    .else
    j .Ldone\@
    .endif
.Lt\@:
    .if \taken == 0
    j fail
    .endif
.Ldone\@:
.endm

/* load: exp = op off(base) */
.macro TEST_LD n, op, exp, label, off
    CHECK \n
    la a1, \label
    \op a0, \off(a1)
    EXPECT a0, \exp
.endm

    TEST_BEGIN

    /* ---- ADD/SUB/ADDI ---- */
    TEST_RR 1, add, 0x8000000000000000, 0x7fffffffffffffff, 1
    TEST_RR 2, add, -2, -1, -1
    TEST_RR 3, sub, -1, 0, 1
    TEST_RR 4, sub, 0x7fffffffffffffff, 0x8000000000000000, 1
    TEST_RI 5, addi, -2043, 5, -2048
    TEST_RI 6, addi, 0x80000000000007fe, 0x7fffffffffffffff, 2047
    TEST_RR_SAME 7, add, 0x2468acf13579bde0, 0x123456789abcdef0
    TEST_RR_SAME 8, sub, 0, 0x123456789abcdef0

    /* ---- SLT/SLTU/SLTI/SLTIU ---- */
    TEST_RR 9, slt, 1, -1, 1
    TEST_RR 10, slt, 0, 1, -1
    TEST_RR 11, slt, 1, 0x8000000000000000, 0x7fffffffffffffff
    TEST_RR 12, sltu, 1, 1, -1
    TEST_RR 13, sltu, 0, -1, 1
    TEST_RR 14, sltu, 0, 7, 7
    TEST_RI 15, slti, 1, -5, -4
    TEST_RI 16, slti, 0, 0, -2048
    TEST_RI 17, sltiu, 1, 5, -1      /* imm sign-extends to 2^64-1, compared unsigned */
    TEST_RI 18, sltiu, 1, 0, 1       /* seqz */
    TEST_RI 19, sltiu, 0, -1, -2048

    /* ---- logic ---- */
    TEST_RR 20, xor, 0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0, 0xf0f0f0f0f0f0f0f0
    TEST_RI 21, xori, 0xedcba9876543210f, 0x123456789abcdef0, -1
    TEST_RI 22, xori, 0x123456789abcd90f, 0x123456789abcdef0, 0x7ff
    TEST_RR 23, or, 0xfff0fff0fff0fff0, 0x0ff00ff00ff00ff0, 0xf0f0f0f0f0f0f0f0
    TEST_RI 24, ori, 0xfffffffffffff800, 0, -2048
    TEST_RR 25, and, 0x00f000f000f000f0, 0x0ff00ff00ff00ff0, 0xf0f0f0f0f0f0f0f0
    TEST_RI 26, andi, 0x123456789abcd800, 0x123456789abcdef0, -2048
    TEST_RI 27, andi, 0x6f0, 0x123456789abcdef0, 0x7ff

    /* ---- 64-bit shifts: amounts 0/1/31/32/63 and only the low 6 bits of rs2 ---- */
    TEST_RR 28, sll, 0x8000000000000001, 0x8000000000000001, 0
    TEST_RR 29, sll, 0x0000000080000000, 1, 31
    TEST_RR 30, sll, 0x0000000100000000, 1, 32
    TEST_RR 31, sll, 0x8000000000000000, 1, 63
    TEST_RR 32, sll, 0x12, 0x12, 64        /* 64 & 63 = 0 */
    TEST_RR 33, sll, 0x8000000000000000, 3, 0xffffffffffffffff   /* by 63 */
    TEST_RR 34, srl, 1, 0x8000000000000000, 63
    TEST_RR 35, srl, 0x0000000080000000, 0x8000000000000000, 32
    TEST_RR 36, srl, 0x0000000100000000, 0x8000000000000000, 31
    TEST_RR 37, srl, 0x8000000000000000, 0x8000000000000000, 0
    TEST_RR 38, sra, -1, 0x8000000000000000, 63
    TEST_RR 39, sra, 0xffffffff00000000, 0x8000000000000000, 31
    TEST_RR 40, sra, 0xffffffff80000000, 0x8000000000000000, 32
    TEST_RR 41, sra, 0x3fffffffffffffff, 0x7fffffffffffffff, 65   /* by 1 */
    TEST_RI 42, slli, 0x8000000000000000, 1, 63
    TEST_RI 43, slli, 0xfffffffe00000000, 0xffffffffffffffff, 33
    TEST_RI 44, slli, 0x1234, 0x1234, 0
    TEST_RI 45, srli, 1, 0x8000000000000000, 63
    TEST_RI 46, srli, 0x00000000ffffffff, 0xffffffffffffffff, 32
    TEST_RI 47, srai, -1, 0x8000000000000000, 63
    TEST_RI 48, srai, 0xffffffff80000000, 0x8000000000000000, 32
    TEST_RI 49, srai, 0x0000000040000000, 0x4000000000000000, 32
    TEST_RI 50, srai, 0x8000000000000000, 0x8000000000000000, 0

    /* ---- W forms: 32-bit result sign-extended, upper source bits ignored ---- */
    TEST_RR 51, addw, 0xffffffff80000000, 0x7fffffff, 1
    TEST_RR 52, addw, 1, 0x1234567800000001, 0x7654321000000000
    TEST_RR 53, subw, 0xffffffff80000000, 0, 0x80000000
    TEST_RR 54, subw, 0x7fffffff, 0xffffffff80000000, 1
    TEST_RI 55, addiw, 0xffffffff80000000, 0x7fffffff, 1
    TEST_RI 56, addiw, -1, 0x00000000ffffffff, 0     /* sext.w */
    TEST_RI 57, addiw, 0x7ff, 0xaaaaaaaa00000000, 2047
    TEST_RR 58, sllw, 0xffffffff80000000, 1, 31
    TEST_RR 59, sllw, 0x12345678, 0xff12345678, 32   /* 32 & 31 = 0 */
    TEST_RR 60, sllw, 0, 0x80000000, 1
    TEST_RR 61, srlw, 1, 0xffffffff80000000, 31
    TEST_RR 62, srlw, 0xffffffff80000000, 0x0000000080000000, 0
    TEST_RR 63, srlw, 0x40000000, 0x1234567880000000, 1
    TEST_RR 64, srlw, 0xffffffff80000000, 0x80000000, 64  /* 64 & 31 = 0 */
    TEST_RR 65, sraw, -1, 0x80000000, 31
    TEST_RR 66, sraw, 0xffffffffc0000000, 0x0000000080000000, 1
    TEST_RR 67, sraw, 0x7fffffff, 0x800000007fffffff, 0
    TEST_RI 68, slliw, 0xffffffff80000000, 0x00000000ffffffff, 31
    TEST_RI 69, slliw, 0x5678, 0xabcd00005678, 0
    TEST_RI 70, srliw, 1, 0x80000000, 31
    TEST_RI 71, srliw, 0xffffffff80000000, 0xffff00080000000, 0
    TEST_RI 72, srliw, 0x7fffffff, 0xffffffffffffffff, 1
    TEST_RI 73, sraiw, -1, 0x80000000, 31
    TEST_RI 74, sraiw, 0xfffffffff8000000, 0x80000000, 4
    TEST_RI 75, sraiw, 0x00000000, 0x00000000ffffffff + 1, 1

    /* ---- LUI / AUIPC ---- */
    CHECK 76
    lui a0, 0x80000
    EXPECT a0, 0xffffffff80000000
    CHECK 77
    lui a0, 0x7ffff
    EXPECT a0, 0x7ffff000
    CHECK 78
    lui a0, 0xfffff
    EXPECT a0, 0xfffffffffffff000
    CHECK 79
1:  auipc a0, 0
    la a1, 1b
    EXPECT_EQ a0, a1
    CHECK 80
1:  auipc a0, 1
    la a1, 1b
    sub a0, a0, a1
    EXPECT a0, 0x1000
    CHECK 81
1:  auipc a0, 0x80000   /* pc - 2^31: the immediate is sign-extended */
    la a1, 1b
    sub a0, a0, a1
    EXPECT a0, 0xffffffff80000000
    CHECK 82
1:  auipc a0, 0xfffff   /* pc - 4096 */
    la a1, 1b
    sub a0, a1, a0
    EXPECT a0, 0x1000

    /* ---- JAL / JALR ---- */
    CHECK 83
    li a0, 0
1:  jal ra, 2f
    li a0, 1           /* skipped */
2:  la a1, 1b
    addi a1, a1, 4
    EXPECT_EQ ra, a1
    EXPECT a0, 0
    CHECK 84            /* backward jal with a non-ra link register */
    j 2f
1:  j 3f
2:  jal s0, 1b
    j fail
3:  la a1, 2b
    addi a1, a1, 4
    EXPECT_EQ s0, a1
    CHECK 85
    la a1, 2f
1:  jalr t0, 0(a1)
    j fail
2:  la a2, 1b
    addi a2, a2, 4
    EXPECT_EQ t0, a2
    CHECK 86            /* positive and negative offsets */
    la a1, 2f + 16
1:  jalr t0, -16(a1)
    j fail
2:  la a1, 3f - 8
    jalr x0, 8(a1)
    j fail
3:
    CHECK 87            /* JALR clears bit 0 of the target */
    la a1, 2f
    addi a1, a1, 1
1:  jalr t0, 0(a1)
    j fail
2:  la a2, 1b + 4
    EXPECT_EQ t0, a2
    CHECK 88            /* odd offset, even base */
    la a1, 2f
1:  jalr t0, 1(a1)
    j fail
2:
    CHECK 89            /* rd == rs1: target uses the old value */
    la a0, 2f
1:  jalr a0, 0(a0)
    j fail
2:  la a2, 1b + 4
    EXPECT_EQ a0, a2
    CHECK 90            /* jalr with rd = x0 leaves x0 zero */
    la a1, 1f
    jalr x0, 0(a1)
    j fail
1:  EXPECT_EQ x0, zero
    bnez x0, fail

    /* ---- branches ---- */
    TEST_BR 91, beq, 1, -1, -1
    TEST_BR 92, beq, 0, 0, 0x8000000000000000
    TEST_BR 93, beq, 0, 1, 0x100000001   /* all 64 bits compared */
    TEST_BR 94, bne, 1, 1, 0x100000001
    TEST_BR 95, bne, 0, 0x8000000000000000, 0x8000000000000000
    TEST_BR 96, blt, 1, -1, 0
    TEST_BR 97, blt, 0, 0, -1
    TEST_BR 98, blt, 0, 5, 5
    TEST_BR 99, blt, 1, 0x8000000000000000, 0x7fffffffffffffff
    TEST_BR 100, bltu, 0, -1, 0
    TEST_BR 101, bltu, 1, 0, -1
    TEST_BR 102, bltu, 0, 5, 5
    TEST_BR 103, bltu, 0, 0x8000000000000000, 0x7fffffffffffffff
    TEST_BR 104, bge, 1, 5, 5
    TEST_BR 105, bge, 1, 0, -1
    TEST_BR 106, bge, 0, -1, 0
    TEST_BR 107, bge, 1, 0x7fffffffffffffff, 0x8000000000000000
    TEST_BR 108, bgeu, 1, 5, 5
    TEST_BR 109, bgeu, 0, 0, -1
    TEST_BR 110, bgeu, 1, -1, 0
    TEST_BR 111, bgeu, 1, 0x8000000000000000, 0x7fffffffffffffff
    CHECK 112           /* backward branch loop: 10 iterations */
    li a0, 10
    li a1, 0
1:  addi a1, a1, 3
    addi a0, a0, -1
    bnez a0, 1b
    EXPECT a1, 30

    /* ---- loads: sign and zero extension, offsets ---- */
    TEST_LD 113, lb,  0xffffffffffffff87, ldata, 0
    TEST_LD 114, lbu, 0x87, ldata, 0
    TEST_LD 115, lb,  0x70, ldata, 8
    TEST_LD 116, lb,  0xfffffffffffffff0, ldata, 7
    TEST_LD 117, lbu, 0xf0, ldata, 7
    TEST_LD 118, lh,  0xffffffffffff9687, ldata, 0
    TEST_LD 119, lhu, 0x9687, ldata, 0
    TEST_LD 120, lh,  0xffffffffffffb4a5, ldata, 2
    TEST_LD 121, lh,  0x7f70, ldata, 8
    TEST_LD 122, lw,  0xffffffffb4a59687, ldata, 0
    TEST_LD 123, lwu, 0xb4a59687, ldata, 0
    TEST_LD 124, lw,  0xfffffffff0e1d2c3, ldata, 4
    TEST_LD 125, lw,  0x7fff7f70, ldata, 8
    TEST_LD 126, lwu, 0x7fff7f70, ldata, 8
    TEST_LD 127, ld,  0xf0e1d2c3b4a59687, ldata, 0
    TEST_LD 128, ld,  0x123456787fff7f70, ldata, 8
    CHECK 129           /* negative offsets */
    la a1, ldata + 16
    ld a0, -16(a1)
    EXPECT a0, 0xf0e1d2c3b4a59687
    lbu a0, -1(a1)
    EXPECT a0, 0x12
    lh a0, -2(a1)
    EXPECT a0, 0x1234
    lw a0, -8(a1)
    EXPECT a0, 0x7fff7f70
    CHECK 130           /* loads into x0 are discarded */
    la a1, ldata
    ld x0, 0(a1)
    lw x0, 0(a1)
    EXPECT_EQ x0, zero

    /* ---- stores: exactly the addressed bytes ---- */
    CHECK 131
    la a1, sdata
    li a0, -1
    sd a0, 0(a1)
    sd a0, 8(a1)
    li a2, 0x1122334455667788
    sb a2, 1(a1)
    ld a0, 0(a1)
    EXPECT a0, 0xffffffffffff88ff
    CHECK 132
    sh a2, 4(a1)
    ld a0, 0(a1)
    EXPECT a0, 0xffff7788ffff88ff
    CHECK 133
    sw a2, 8(a1)
    ld a0, 8(a1)
    EXPECT a0, 0xffffffff55667788
    ld a0, 0(a1)
    EXPECT a0, 0xffff7788ffff88ff
    CHECK 134
    sd a2, 0(a1)
    ld a0, 0(a1)
    EXPECT a0, 0x1122334455667788
    ld a0, 8(a1)
    EXPECT a0, 0xffffffff55667788
    CHECK 135           /* stores with negative offsets, read back by smaller loads */
    addi a3, a1, 16
    li a2, 0xcafe
    sh a2, -14(a3)
    lhu a0, 2(a1)
    EXPECT a0, 0xcafe
    lb a0, 3(a1)
    EXPECT a0, 0xffffffffffffffca
    sb zero, -16(a3)
    lbu a0, 0(a1)
    EXPECT a0, 0
    CHECK 136           /* sw stores only 32 bits at a 4-aligned upper word */
    li a2, 0xdeadbeef
    sw a2, 12(a1)
    ld a0, 8(a1)
    EXPECT a0, 0xdeadbeef55667788

    /* ---- x0 ---- */
    CHECK 137
    addi x0, x0, 5
    lui x0, 0x12345
    auipc x0, 0x1
    li a1, 77
    add x0, a1, a1
    EXPECT_EQ x0, zero
    addi a0, x0, 0
    EXPECT a0, 0
    CHECK 138
    jal x0, 1f
    j fail
1:  mv a0, x0
    EXPECT a0, 0

    /* ---- FENCE / FENCE.I ---- */
    CHECK 139
    fence
    fence rw, rw
    fence r, w
    fence iorw, iorw
    fence.tso
    fence.i
    CHECK 140           /* self-modifying code made visible by FENCE.I */
    li a0, 0
    la a1, 2f
    la a2, 3f
    lw a3, 0(a2)        /* "addi a0, x0, 42" */
    sw a3, 0(a1)
    fence.i
2:  addi a0, x0, 1
    EXPECT a0, 42

    TEST_END

3:  addi a0, x0, 42

    TEST_DATA
ldata:
    .dword 0xf0e1d2c3b4a59687
    .dword 0x123456787fff7f70
sdata:
    .dword 0, 0, 0, 0
