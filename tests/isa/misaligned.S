/* Misaligned LH/LHU/LW/LWU/LD/SH/SW/SD and FLW/FLD/FSW/FSD, including accesses that cross a
 * page boundary with paging on (two virtually adjacent pages on non-adjacent physical pages).
 * The spec lets each one either complete (then the little-endian value must be exact) or
 * trap: address-misaligned (4/6, mtval = the address) or access fault (5/7, mtval within the
 * access).  Both outcomes are accepted per access. */
#include "isa.h"

#define PT_ROOT  0x80400000
#define PT_L1    0x80401000
#define PT_L0    0x80402000
#define PA_A     0x80500000     /* VA 0x4000_0000 */
#define PA_B     0x80507000     /* VA 0x4000_1000 */
#define VA_X     0x40000ff0     /* 16 bytes before the page boundary */
#define PTE_RWAD 0xc7           /* V R W A D */
#define STORE_VAL 0x1122334455667788

/* the access trapped: acceptable cause and mtval for address a1, size sz */
.macro MIS_TRAP_OK c_mis, c_acc, sz
    li t6, \c_mis
    bne s9, t6, .La\@
    EXPECT_EQ s10, a1
    j .Lok\@
.La\@:
    EXPECT s9, \c_acc
    bltu s10, a1, fail
    addi t5, a1, \sz
    bgeu s10, t5, fail
.Lok\@:
.endm

.macro TEST_MIS_LOAD n, op, off, exp
    CHECK \n
    la a1, mdata
    addi a1, a1, \off
    li a0, 0
    la tp, .Lt\@
    \op a0, 0(a1)
    li tp, 0
    EXPECT a0, \exp
    j .Ld\@
    ALIGN4
.Lt\@:
    MIS_TRAP_OK CAUSE_MISALIGNED_LOAD, CAUSE_LOAD_ACCESS, 8
.Ld\@:
.endm

.macro TEST_MIS_FLOAD n, op, off, exp
    CHECK \n
    la a1, mdata
    addi a1, a1, \off
    la tp, .Lt\@
    \op fa0, 0(a1)
    li tp, 0
    fmv.x.d a0, fa0
    EXPECT a0, \exp
    j .Ld\@
    ALIGN4
.Lt\@:
    MIS_TRAP_OK CAUSE_MISALIGNED_LOAD, CAUSE_LOAD_ACCESS, 8
.Ld\@:
.endm

/* store STORE_VAL at mdata2 + off (16 zero bytes before); d0/d1 = the two dwords after */
.macro TEST_MIS_STORE n, op, off, sz, d0, d1, freg=0
    CHECK \n
    la a2, mdata2
    sd zero, 0(a2)
    sd zero, 8(a2)
    addi a1, a2, \off
    li a0, STORE_VAL
    fmv.d.x fa0, a0
    la tp, .Lt\@
    .if \freg
    \op fa0, 0(a1)
    .else
    \op a0, 0(a1)
    .endif
    li tp, 0
    ld a3, 0(a2)
    EXPECT a3, \d0
    ld a3, 8(a2)
    EXPECT a3, \d1
    j .Ld\@
    ALIGN4
.Lt\@:
    MIS_TRAP_OK CAUSE_MISALIGNED_STORE, CAUSE_STORE_ACCESS, \sz
.Ld\@:
.endm

.macro TEST_MIS_FSTORE n, op, off, sz, d0, d1
    TEST_MIS_STORE \n, \op, \off, \sz, \d0, \d1, 1
.endm

/* (S mode, paging on) restore the 32-byte pattern c0..df around the page boundary */
.macro XPAGE_RESET
    li a2, VA_X
    li a3, 0xc7c6c5c4c3c2c1c0
    li a4, 0x0808080808080808
    sd a3, 0(a2)
    add a3, a3, a4
    sd a3, 8(a2)
    add a3, a3, a4
    sd a3, 16(a2)
    add a3, a3, a4
    sd a3, 24(a2)
.endm

.macro TEST_XPAGE_LOAD n, op, off, exp
    CHECK \n
    XPAGE_RESET
    li a1, VA_X + \off
    li a0, 0
    la tp, .Lt\@
    \op a0, 0(a1)
    li tp, 0
    EXPECT a0, \exp
    j .Ld\@
    ALIGN4
.Lt\@:
    MIS_TRAP_OK CAUSE_MISALIGNED_LOAD, CAUSE_LOAD_ACCESS, 8
.Ld\@:
.endm

/* d1 = virtual bytes 8..15 (end of page A), d2 = bytes 16..23 (start of page B) */
.macro TEST_XPAGE_STORE n, op, off, sz, d1, d2
    CHECK \n
    XPAGE_RESET
    li a1, VA_X + \off
    li a0, STORE_VAL
    la tp, .Lt\@
    \op a0, 0(a1)
    li tp, 0
    li a2, VA_X
    ld a3, 8(a2)
    EXPECT a3, \d1
    ld a3, 16(a2)
    EXPECT a3, \d2
    li a2, PA_B         /* through the identity map: the right physical page */
    ld a3, 0(a2)
    EXPECT a3, \d2
    li a2, PA_A + 0xff8
    ld a3, 0(a2)
    EXPECT a3, \d1
    j .Ld\@
    ALIGN4
.Lt\@:
    MIS_TRAP_OK CAUSE_MISALIGNED_STORE, CAUSE_STORE_ACCESS, \sz
.Ld\@:
.endm

    TEST_BEGIN
    TEST_MIS_LOAD 1, lh, 1, 0xffffffffffffa2a1
    TEST_MIS_LOAD 2, lh, 3, 0xffffffffffffa4a3
    TEST_MIS_LOAD 3, lh, 5, 0xffffffffffffa6a5
    TEST_MIS_LOAD 4, lh, 7, 0xffffffffffffa8a7
    TEST_MIS_LOAD 5, lhu, 1, 0xa2a1
    TEST_MIS_LOAD 6, lhu, 3, 0xa4a3
    TEST_MIS_LOAD 7, lhu, 5, 0xa6a5
    TEST_MIS_LOAD 8, lhu, 7, 0xa8a7
    TEST_MIS_LOAD 9, lw, 1, 0xffffffffa4a3a2a1
    TEST_MIS_LOAD 10, lw, 2, 0xffffffffa5a4a3a2
    TEST_MIS_LOAD 11, lw, 3, 0xffffffffa6a5a4a3
    TEST_MIS_LOAD 12, lw, 5, 0xffffffffa8a7a6a5
    TEST_MIS_LOAD 13, lw, 6, 0xffffffffa9a8a7a6
    TEST_MIS_LOAD 14, lw, 7, 0xffffffffaaa9a8a7
    TEST_MIS_LOAD 15, lwu, 1, 0xa4a3a2a1
    TEST_MIS_LOAD 16, lwu, 2, 0xa5a4a3a2
    TEST_MIS_LOAD 17, lwu, 3, 0xa6a5a4a3
    TEST_MIS_LOAD 18, lwu, 5, 0xa8a7a6a5
    TEST_MIS_LOAD 19, lwu, 6, 0xa9a8a7a6
    TEST_MIS_LOAD 20, lwu, 7, 0xaaa9a8a7
    TEST_MIS_LOAD 21, ld, 1, 0xa8a7a6a5a4a3a2a1
    TEST_MIS_LOAD 22, ld, 2, 0xa9a8a7a6a5a4a3a2
    TEST_MIS_LOAD 23, ld, 3, 0xaaa9a8a7a6a5a4a3
    TEST_MIS_LOAD 24, ld, 4, 0xabaaa9a8a7a6a5a4
    TEST_MIS_LOAD 25, ld, 5, 0xacabaaa9a8a7a6a5
    TEST_MIS_LOAD 26, ld, 6, 0xadacabaaa9a8a7a6
    TEST_MIS_LOAD 27, ld, 7, 0xaeadacabaaa9a8a7
    TEST_MIS_FLOAD 28, flw, 1, 0xffffffffa4a3a2a1
    TEST_MIS_FLOAD 29, flw, 2, 0xffffffffa5a4a3a2
    TEST_MIS_FLOAD 30, flw, 3, 0xffffffffa6a5a4a3
    TEST_MIS_FLOAD 31, fld, 1, 0xa8a7a6a5a4a3a2a1
    TEST_MIS_FLOAD 32, fld, 4, 0xabaaa9a8a7a6a5a4
    TEST_MIS_FLOAD 33, fld, 6, 0xadacabaaa9a8a7a6
    TEST_MIS_STORE 34, sh, 1, 2, 0x778800, 0x0
    TEST_MIS_STORE 35, sh, 3, 2, 0x7788000000, 0x0
    TEST_MIS_STORE 36, sh, 7, 2, 0x8800000000000000, 0x77
    TEST_MIS_STORE 37, sw, 1, 4, 0x5566778800, 0x0
    TEST_MIS_STORE 38, sw, 2, 4, 0x556677880000, 0x0
    TEST_MIS_STORE 39, sw, 3, 4, 0x55667788000000, 0x0
    TEST_MIS_STORE 40, sw, 6, 4, 0x7788000000000000, 0x5566
    TEST_MIS_STORE 41, sd, 1, 8, 0x2233445566778800, 0x11
    TEST_MIS_STORE 42, sd, 3, 8, 0x4455667788000000, 0x112233
    TEST_MIS_STORE 43, sd, 4, 8, 0x5566778800000000, 0x11223344
    TEST_MIS_STORE 44, sd, 7, 8, 0x8800000000000000, 0x11223344556677
    TEST_MIS_FSTORE 45, fsw, 1, 4, 0x5566778800, 0x0
    TEST_MIS_FSTORE 46, fsw, 3, 4, 0x55667788000000, 0x0
    TEST_MIS_FSTORE 47, fsd, 2, 8, 0x3344556677880000, 0x1122
    TEST_MIS_FSTORE 48, fsd, 5, 8, 0x6677880000000000, 0x1122334455

    /* ---- across a page boundary, Sv39, S mode ---- */
    CHECK 55
    li a0, PT_ROOT
    li a1, PT_ROOT + 0x3000
1:  sd zero, 0(a0)
    addi a0, a0, 8
    bltu a0, a1, 1b
    li a0, PT_ROOT + 8 * 1
    li a1, PTE(PT_L1, 1)
    sd a1, 0(a0)
    li a0, PT_ROOT + 8 * 2        /* identity gigapage for code and data */
    li a1, PTE(0x80000000, 0xcf)
    sd a1, 0(a0)
    li a0, PT_L1
    li a1, PTE(PT_L0, 1)
    sd a1, 0(a0)
    li a0, PT_L0
    li a1, PTE(PA_A, PTE_RWAD)
    sd a1, 0(a0)
    li a1, PTE(PA_B, PTE_RWAD)
    sd a1, 8(a0)
    li a0, (8 << 60) | (PT_ROOT >> 12)
    csrw satp, a0
    sfence.vma
    ENTER_MODE PRV_S, 1f
1:
    TEST_XPAGE_LOAD 60, lh, 15, 0xffffffffffffd0cf
    TEST_XPAGE_LOAD 61, lw, 13, 0xffffffffd0cfcecd
    TEST_XPAGE_LOAD 62, lwu, 14, 0xd1d0cfce
    TEST_XPAGE_LOAD 63, ld, 9, 0xd0cfcecdcccbcac9
    TEST_XPAGE_LOAD 64, ld, 15, 0xd6d5d4d3d2d1d0cf
    TEST_XPAGE_LOAD 65, lhu, 15, 0xd0cf
    TEST_XPAGE_STORE 66, sd, 12, 8, 0x55667788cbcac9c8, 0xd7d6d5d411223344
    TEST_XPAGE_STORE 67, sw, 14, 4, 0x7788cdcccbcac9c8, 0xd7d6d5d4d3d25566
    TEST_XPAGE_STORE 68, sh, 15, 2, 0x88cecdcccbcac9c8, 0xd7d6d5d4d3d2d177
    BACK_TO_M
    csrw satp, zero
    sfence.vma

    TEST_END

    TEST_DATA
mdata:
    .byte 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7
    .byte 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf
    .byte 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7
    .byte 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf
mdata2:
    .dword 0, 0, 0, 0
