/* RV64C: every compressed instruction (explicit c.* mnemonics), C.JR/C.JALR link = pc+2,
 * C.EBREAK (cause 3, mepc at it), the reserved all-zero encoding (illegal), and 32-bit
 * instructions, jump targets, trap epc and mret targets at addresses that are only 2-byte
 * aligned (legal with C). */
#include "isa.h"

    .option rvc

    TEST_BEGIN
    .option rvc
    la sp, stack_top

    CHECK 1             /* C.LI: 6-bit signed immediate */
    c.li a0, -32
    EXPECT a0, -32
    c.li a0, 31
    EXPECT a0, 31
    CHECK 2             /* C.LUI: imm << 12, sign-extended from bit 17 */
    c.lui a0, 1
    EXPECT a0, 0x1000
    c.lui a0, 0x1f
    EXPECT a0, 0x1f000
    c.lui a0, 0xfffe0
    EXPECT a0, 0xfffffffffffe0000
    c.lui a0, 0xfffff
    EXPECT a0, 0xfffffffffffff000
    CHECK 3             /* C.ADDI */
    li a0, 100
    c.addi a0, -32
    EXPECT a0, 68
    c.addi a0, 31
    EXPECT a0, 99
    CHECK 4             /* C.ADDIW: 32-bit add, sign-extended (also sext.w with 0) */
    li a0, 0x7fffffff
    c.addiw a0, 1
    EXPECT a0, 0xffffffff80000000
    li a0, 0x12345678ffffffff
    c.addiw a0, 0
    EXPECT a0, -1
    li a0, 0x100000005
    c.addiw a0, -6
    EXPECT a0, -1
    CHECK 5             /* C.ADDI16SP: multiples of 16, -512..496 */
    mv a1, sp
    c.addi16sp sp, -512
    sub a0, a1, sp
    EXPECT a0, 512
    c.addi16sp sp, 496
    c.addi16sp sp, 16
    EXPECT_EQ sp, a1
    CHECK 6             /* C.ADDI4SPN: rd' = sp + nzuimm (4..1020) */
    c.addi4spn a0, sp, 4
    sub a0, a0, sp
    EXPECT a0, 4
    c.addi4spn s1, sp, 1020
    sub s1, s1, sp
    EXPECT s1, 1020
    CHECK 7             /* C.SLLI / C.SRLI / C.SRAI with RV64 shift amounts */
    li a0, 1
    c.slli a0, 63
    EXPECT a0, 0x8000000000000000
    li s0, 0x8000000000000000
    c.srli s0, 32
    EXPECT s0, 0x80000000
    li s0, 0x8000000000000000
    c.srai s0, 63
    EXPECT s0, -1
    li s0, 0x8000000000000000
    c.srli s0, 1
    EXPECT s0, 0x4000000000000000
    li a2, 0x123
    c.slli a2, 32
    EXPECT a2, 0x12300000000
    CHECK 8             /* C.ANDI: sign-extended immediate */
    li s0, 0x123456789abcdef0
    c.andi s0, -32
    EXPECT s0, 0x123456789abcdee0
    li s0, 0x123456789abcdef0
    c.andi s0, 31
    EXPECT s0, 0x10
    CHECK 9             /* C.SUB / C.XOR / C.OR / C.AND */
    li s0, 10
    li s1, 3
    c.sub s0, s1
    EXPECT s0, 7
    li a0, 0xf0f0
    li a1, 0xff00
    c.xor a0, a1
    EXPECT a0, 0x0ff0
    li a0, 0xf0f0
    c.or a0, a1
    EXPECT a0, 0xfff0
    li a0, 0xf0f0
    c.and a0, a1
    EXPECT a0, 0xf000
    CHECK 10            /* C.ADDW / C.SUBW: 32-bit, sign-extended */
    li a2, 0x7fffffff
    li a3, 1
    c.addw a2, a3
    EXPECT a2, 0xffffffff80000000
    li a2, 0x100000000
    c.subw a2, a3
    EXPECT a2, -1
    CHECK 11            /* C.MV / C.ADD (full registers) */
    li a1, 0x123456789abcdef0
    c.mv t0, a1
    EXPECT_EQ t0, a1
    c.add t0, a1
    EXPECT t0, 0x2468acf13579bde0
    CHECK 12            /* C.LW (sign-extends) / C.LD / C.SW / C.SD */
    la s0, cdata
    li a1, 0x80000001
    c.sw a1, 124(s0)
    c.lw a2, 124(s0)
    EXPECT a2, 0xffffffff80000001
    li a1, 0x0123456789abcdef
    c.sd a1, 248(s0)
    c.ld a3, 248(s0)
    EXPECT_EQ a3, a1
    c.lw a4, 4(s0)
    EXPECT a4, 0xffffffff88776655
    c.lw a4, 0(s0)
    EXPECT a4, 0x44332211
    CHECK 13            /* C.LWSP / C.LDSP / C.SWSP / C.SDSP */
    la sp, cdata
    li a1, 0xfedcba9876543210
    c.sdsp a1, 504(sp)
    c.ldsp t1, 504(sp)
    EXPECT_EQ t1, a1
    c.sdsp a1, 200(sp)
    c.lwsp t1, 204(sp)
    EXPECT t1, 0xfffffffffedcba98
    li a1, 0x7fff0000
    c.swsp a1, 252(sp)
    c.lwsp t2, 252(sp)
    EXPECT t2, 0x7fff0000
    c.ldsp t2, 0(sp)
    EXPECT t2, 0x8877665544332211
    la sp, stack_top
    CHECK 14            /* C.FLD / C.FSD / C.FLDSP / C.FSDSP */
    la s0, cdata
    li a1, 0x0123456789abcdef
    sd a1, 248(s0)
    c.fld fa0, 0(s0)
    fmv.x.d a0, fa0
    EXPECT a0, 0x8877665544332211
    c.fsd fa0, 240(s0)
    ld a1, 240(s0)
    EXPECT_EQ a0, a1
    la sp, cdata
    c.fldsp fs2, 248(sp)
    fmv.x.d a2, fs2
    EXPECT a2, 0x0123456789abcdef
    c.fsdsp fs2, 496(sp)
    ld a3, 496(s0)
    EXPECT a3, 0x0123456789abcdef
    la sp, stack_top

    CHECK 15            /* C.J forward and backward; C.NOP */
    c.nop
    li a0, 0
    c.j 2f
1:  c.li a0, 7
    c.j 3f
2:  c.j 1b
    c.li a0, 1
3:  EXPECT a0, 7
    CHECK 16            /* C.BEQZ / C.BNEZ taken and not taken */
    li s0, 0
    li s1, 5
    c.beqz s1, 9f
    c.bnez s0, 9f
    c.beqz s0, 1f
    j fail
1:  c.bnez s1, 2f
    j fail
9:  j fail
2:
    CHECK 17            /* C.JR: no link */
    la a1, 1f
    li ra, 0x55
    c.jr a1
    j fail
1:  EXPECT ra, 0x55
    CHECK 18            /* C.JALR: ra = pc + 2 */
    la a1, 2f
1:  c.jalr a1
    j fail
2:  la a2, 1b + 2
    EXPECT_EQ ra, a2
    CHECK 19            /* C.JALR with rs1 = ra: target from the old value */
    la ra, 2f
1:  c.jalr ra
    j fail
2:  la a2, 1b + 2
    EXPECT_EQ ra, a2

    CHECK 20            /* C.EBREAK: breakpoint, mepc = its address */
    la tp, 2f
1:  c.ebreak
    j fail
    ALIGN4
2:  EXPECT s9, CAUSE_BREAKPOINT
    la a0, 1b
    EXPECT_EQ s11, a0
    CHECK 21            /* the all-zero halfword is a defined illegal instruction */
    la tp, 2f
1:  .2byte 0x0000
    j fail
    ALIGN4
2:  EXPECT s9, CAUSE_ILLEGAL
    la a0, 1b
    EXPECT_EQ s11, a0
    EXPECT s10, 0       /* mtval: 0 or the instruction bits, which are 0 */

    /* ---- 32-bit instructions at 2 mod 4 ---- */
    CHECK 22
    li a0, 0
    ALIGN4
    c.nop
1:  .option push
    .option norvc
    addi a0, a0, 0x123  /* 4-byte instruction, address = 2 mod 4 */
    lui a1, 0x12345
    .option pop
    la a2, 1b
    andi a2, a2, 3
    EXPECT a2, 2
    EXPECT a0, 0x123
    EXPECT a1, 0x12345000
    CHECK 23            /* JAL/JALR/branch to a 2 mod 4 target: no misaligned fetch trap */
    ALIGN4
    c.nop
2:  .option push
    .option norvc
    jal ra, 3f
    .option pop
    j fail
    ALIGN4
    c.nop
3:  la a2, 2b + 4
    EXPECT_EQ ra, a2
    la a1, 4f
    jalr ra, 0(a1)
    j fail
    ALIGN4
    c.nop
4:  la a1, 4b
    andi a1, a1, 3
    EXPECT a1, 2
    li a0, 1
    .option push
    .option norvc
    bnez a0, 5f
    .option pop
    j fail
    ALIGN4
    c.nop
5:
    CHECK 24            /* a trap at a 2 mod 4 32-bit instruction: mepc = its address; MRET
                           to a 2 mod 4 address */
    la tp, 7f
    ALIGN4
    c.nop
6:  .option push
    .option norvc
    ecall
    .option pop
    j fail
    ALIGN4
7:  EXPECT s9, CAUSE_ECALL_M
    la a0, 6b
    EXPECT_EQ s11, a0
    la a0, 8f
    csrw mepc, a0
    csrr a1, mepc
    EXPECT_EQ a0, a1
    li a0, MSTATUS_MPP
    csrs mstatus, a0
    mret
    j fail
    ALIGN4
    c.nop
8:  la a1, 8b
    andi a1, a1, 3
    EXPECT a1, 2

    TEST_END

    TEST_DATA
cdata:
    .dword 0x8877665544332211
    .fill 63, 8, 0
    .fill 32, 8, 0
stack:
    .fill 128, 8, 0
stack_top:
