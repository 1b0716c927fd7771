/* RV64A: LR/SC success and failure, every AMO in .W and .D form (old value returned, .W
 * results sign-extended, .W touching only its word), aq/rl encodings, and misaligned
 * LR/SC/AMO trapping. */
#include "isa.h"

/* exp_old: rd; exp_new: new memory word/dword; the other word of the dword must survive */
.macro TEST_AMO n, op, exp_old, exp_new, mem, src, width
    CHECK \n
    la a1, amo_data
    .ifc \width, w
    li a0, 0xa5a5a5a500000000 | (\mem)
    .else
    li a0, \mem
    .endif
    sd a0, 0(a1)
    li a2, \src
    \op a3, a2, (a1)
    EXPECT a3, \exp_old
    EXPECT a2, \src
    ld a4, 0(a1)
    .ifc \width, w
    EXPECT a4, 0xa5a5a5a500000000 | (\exp_new)
    .else
    EXPECT a4, \exp_new
    .endif
.endm

/* a misaligned LR/SC/AMO must trap with one of two causes; memory must be unchanged.
 * a1 = the misaligned address, a5 = a1 - off (aligned) */
.macro TEST_MISALIGNED n, cause1, cause2, off, insn, insn2
    CHECK \n
    la a1, amo_data
    li a0, 0x0123456789abcdef
    sd a0, 0(a1)
    sd a0, 8(a1)
    mv a5, a1
    addi a1, a1, \off
    li a2, 0x5a5a5a5a5a5a5a5a
    li a3, 0x77
    la tp, .Lres\@
    \insn
    .ifnc \insn2,
    \insn2
    .endif
    j fail
.Lres\@:
    li t6, \cause1
    beq s9, t6, .Lok\@
    li t6, \cause2
    beq s9, t6, .Lok\@
    /* QEMU 7.2 reports misaligned AMOs and SCs as a *load* address-misaligned (cause 4);
     * the spec says store/AMO (6) or access fault (7).  Tolerated, see README.md. */
    .if \cause1 == CAUSE_MISALIGNED_STORE
    EXPECT s9, CAUSE_MISALIGNED_LOAD
    .else
    j fail
    .endif
.Lok\@:
    EXPECT_EQ s10, a1      /* xtval: the faulting address (an access fault may report any
                              address in the access; both peers give the base) */
    la a1, amo_data
    ld a4, 0(a1)
    EXPECT a4, 0x0123456789abcdef
    ld a4, 8(a1)
    EXPECT a4, 0x0123456789abcdef
.endm

/* like TEST_MISALIGNED, but an SC that fails without trapping is tolerated */
.macro TEST_SC_MISALIGNED n, off, insn, insn2
    CHECK \n
    la a1, amo_data
    li a0, 0x0123456789abcdef
    sd a0, 0(a1)
    sd a0, 8(a1)
    mv a5, a1
    addi a1, a1, \off
    li a2, 0x5a5a5a5a5a5a5a5a
    li a4, 0
    la tp, .Lres\@
    \insn
    li a4, 0
    \insn2
    li tp, 0
    EXPECT_NE a4, zero       /* no trap: it must have failed */
    j .Lmem\@
.Lres\@:
    li t6, CAUSE_MISALIGNED_STORE
    beq s9, t6, .Lok\@
    li t6, CAUSE_STORE_ACCESS
    beq s9, t6, .Lok\@
    EXPECT s9, CAUSE_MISALIGNED_LOAD
.Lok\@:
    EXPECT_EQ s10, a1
.Lmem\@:
    la a1, amo_data
    ld a4, 0(a1)
    EXPECT a4, 0x0123456789abcdef
    ld a4, 8(a1)
    EXPECT a4, 0x0123456789abcdef
.endm

    TEST_BEGIN

    /* ---- LR/SC ---- */
    CHECK 1             /* LR.D / SC.D success */
    la a1, amo_data
    li a0, 0x1111222233334444
    sd a0, 0(a1)
    lr.d a2, (a1)
    EXPECT a2, 0x1111222233334444
    li a3, 0x5555666677778888
    sc.d a4, a3, (a1)
    EXPECT a4, 0
    ld a5, 0(a1)
    EXPECT a5, 0x5555666677778888
    CHECK 2             /* the SC consumed the reservation: a second SC fails, no store */
    li a3, 0x9999
    sc.d a4, a3, (a1)
    EXPECT_NE a4, zero
    ld a5, 0(a1)
    EXPECT a5, 0x5555666677778888
    CHECK 3             /* LR.W sign-extends; SC.W stores 32 bits only */
    li a0, 0x12345678fedcba98
    sd a0, 0(a1)
    lr.w a2, (a1)
    EXPECT a2, 0xfffffffffedcba98
    li a3, 0xaaaaaaaa01020304
    sc.w a4, a3, (a1)
    EXPECT a4, 0
    ld a5, 0(a1)
    EXPECT a5, 0x1234567801020304
    CHECK 4             /* SC.W without a reservation fails and stores nothing */
    li a3, 0x5a5a5a5a
    sc.w a4, a3, (a1)
    EXPECT_NE a4, zero
    ld a5, 0(a1)
    EXPECT a5, 0x1234567801020304
    CHECK 5             /* LR, SC (succeeds), SC (fails) on the upper word */
    addi a6, a1, 4
    lr.w a2, (a6)
    EXPECT a2, 0x12345678
    sc.w a4, zero, (a6)
    EXPECT a4, 0
    sc.w a4, a3, (a6)
    EXPECT_NE a4, zero
    ld a5, 0(a1)
    EXPECT a5, 0x0000000001020304
    CHECK 6             /* aq/rl variants encode and work */
    lr.d.aq a2, (a1)
    sc.d.rl a4, a3, (a1)
    EXPECT a4, 0
    lr.w.aqrl a2, (a1)
    EXPECT a2, 0x5a5a5a5a
    sc.w.aqrl a4, zero, (a1)
    EXPECT a4, 0
    lr.d.aqrl a2, (a1)
    EXPECT a2, 0
    sc.d.aq a4, a3, (a1)
    EXPECT a4, 0
    lr.w.rl a2, (a1)
    sc.w.aq a4, zero, (a1)
    EXPECT a4, 0
    ld a5, 0(a1)
    EXPECT a5, 0
    CHECK 7             /* LR/SC loop (retry idiom) increments */
    li a0, 41
    sd a0, 0(a1)
1:  lr.d a2, (a1)
    addi a2, a2, 1
    sc.d a4, a2, (a1)
    bnez a4, 1b
    ld a5, 0(a1)
    EXPECT a5, 42
    CHECK 8             /* SC to x0 destination still stores */
    lr.d a2, (a1)
    li a3, 7
    sc.d x0, a3, (a1)
    ld a5, 0(a1)
    EXPECT a5, 7

    /* ---- AMOs ---- */
    TEST_AMO 20, amoswap.w, 0xffffffff80000001, 0x12345678, 0x80000001, 0xffffffff12345678, w
    TEST_AMO 21, amoadd.w, 0x7fffffff, 0x80000000, 0x7fffffff, 0x1, w
    TEST_AMO 22, amoadd.w, 0xffffffffffffffff, 0x1, 0xffffffff, 0xabcdef0000000002, w
    TEST_AMO 23, amoxor.w, 0xfffffffff0f0f0f0, 0xff00ff0, 0xf0f0f0f0, 0xff00ff00, w
    TEST_AMO 24, amoand.w, 0xfffffffff0f0f0f0, 0xf000f000, 0xf0f0f0f0, 0xff00ff00, w
    TEST_AMO 25, amoor.w, 0xffffffff80f0f0f0, 0x8ff0fff0, 0x80f0f0f0, 0xf00ff00, w
    TEST_AMO 26, amomin.w, 0xffffffff80000000, 0x80000000, 0x80000000, 0x1, w
    TEST_AMO 27, amomin.w, 0x5, 0xffffffff, 0x5, 0xffffffff, w
    TEST_AMO 28, amomax.w, 0xffffffff80000000, 0x1, 0x80000000, 0x1, w
    TEST_AMO 29, amomax.w, 0x7fffffff, 0x7fffffff, 0x7fffffff, 0xffffffff80000000, w
    TEST_AMO 30, amominu.w, 0xffffffff80000000, 0x1, 0x80000000, 0x1, w
    TEST_AMO 31, amominu.w, 0x5, 0x5, 0x5, 0xffffffff, w
    TEST_AMO 32, amomaxu.w, 0xffffffff80000000, 0x80000000, 0x80000000, 0x1, w
    TEST_AMO 33, amomaxu.w, 0x7, 0x7, 0x7, 0x100000003, w
    TEST_AMO 34, amoswap.d, 0x8000000000000001, 0x123456789abcdef0, 0x8000000000000001, 0x123456789abcdef0, d
    TEST_AMO 35, amoadd.d, 0x7fffffffffffffff, 0x8000000000000000, 0x7fffffffffffffff, 0x1, d
    TEST_AMO 36, amoadd.d, 0xffffffffffffffff, 0x1, 0xffffffffffffffff, 0x2, d
    TEST_AMO 37, amoxor.d, 0xf0f0f0f0f0f0f0f0, 0xff00ff00ff00ff0, 0xf0f0f0f0f0f0f0f0, 0xff00ff00ff00ff00, d
    TEST_AMO 38, amoand.d, 0xf0f0f0f0f0f0f0f0, 0xf000f000f000f000, 0xf0f0f0f0f0f0f0f0, 0xff00ff00ff00ff00, d
    TEST_AMO 39, amoor.d, 0x80f0f0f0f0f0f0f0, 0x8ff0fff0fff0fff0, 0x80f0f0f0f0f0f0f0, 0xf00ff00ff00ff00, d
    TEST_AMO 40, amomin.d, 0x8000000000000000, 0x8000000000000000, 0x8000000000000000, 0x1, d
    TEST_AMO 41, amomin.d, 0x5, 0xffffffffffffffff, 0x5, 0xffffffffffffffff, d
    TEST_AMO 42, amomax.d, 0x8000000000000000, 0x1, 0x8000000000000000, 0x1, d
    TEST_AMO 43, amomax.d, 0x7fffffffffffffff, 0x7fffffffffffffff, 0x7fffffffffffffff, 0xffffffffffffffff, d
    TEST_AMO 44, amominu.d, 0x8000000000000000, 0x1, 0x8000000000000000, 0x1, d
    TEST_AMO 45, amominu.d, 0x5, 0x5, 0x5, 0xffffffffffffffff, d
    TEST_AMO 46, amomaxu.d, 0x8000000000000000, 0x8000000000000000, 0x8000000000000000, 0x1, d
    TEST_AMO 47, amomaxu.d, 0x7, 0x100000000, 0x7, 0x100000000, d
    CHECK 48            /* aq/rl bits on AMOs */
    la a1, amo_data
    sd zero, 0(a1)
    li a2, 1
    amoadd.d.aq a3, a2, (a1)
    amoadd.d.rl a3, a2, (a1)
    amoadd.d.aqrl a3, a2, (a1)
    amoadd.w.aq a3, a2, (a1)
    amoadd.w.rl a3, a2, (a1)
    amoadd.w.aqrl a3, a2, (a1)
    addi a6, a1, 4
    amoswap.w.aqrl a3, a2, (a6)
    EXPECT a3, 0
    amoor.d.aqrl a3, zero, (a1)
    EXPECT a3, 0x0000000100000006
    CHECK 49            /* rd = x0: memory still updated */
    li a2, 10
    amoadd.d x0, a2, (a1)
    ld a3, 0(a1)
    EXPECT a3, 0x0000000100000010
    CHECK 50            /* rd == rs2 */
    li a2, 0x77
    amoswap.d a2, a2, (a1)
    EXPECT a2, 0x0000000100000010
    ld a3, 0(a1)
    EXPECT a3, 0x77
    CHECK 51            /* AMO at the upper word of a dword */
    li a2, -1
    addi a6, a1, 4
    amoadd.w a3, a2, (a6)
    EXPECT a3, 0
    ld a3, 0(a1)
    EXPECT a3, 0xffffffff00000077

    /* ---- misaligned: address-misaligned or access-fault, never silent ---- */
    TEST_MISALIGNED 52, CAUSE_MISALIGNED_LOAD, CAUSE_LOAD_ACCESS, 2, "lr.w a4, (a1)"
    TEST_MISALIGNED 53, CAUSE_MISALIGNED_LOAD, CAUSE_LOAD_ACCESS, 4, "lr.d a4, (a1)"
    TEST_MISALIGNED 54, CAUSE_MISALIGNED_STORE, CAUSE_STORE_ACCESS, 1, "amoadd.w a4, a3, (a1)"
    TEST_MISALIGNED 55, CAUSE_MISALIGNED_STORE, CAUSE_STORE_ACCESS, 6, "amoswap.w a4, a3, (a1)"
    TEST_MISALIGNED 56, CAUSE_MISALIGNED_STORE, CAUSE_STORE_ACCESS, 4, "amoadd.d a4, a3, (a1)"
    TEST_MISALIGNED 57, CAUSE_MISALIGNED_STORE, CAUSE_STORE_ACCESS, 2, "amoor.d a4, a3, (a1)"
    TEST_MISALIGNED 58, CAUSE_MISALIGNED_STORE, CAUSE_STORE_ACCESS, 7, "amomaxu.d a4, a3, (a1)"
    TEST_MISALIGNED 59, CAUSE_MISALIGNED_STORE, CAUSE_STORE_ACCESS, 2, "amomin.w a4, a3, (a1)"
    /* SC at a misaligned address.  The spec requires a trap (6 or 7) here too, but QEMU 7.2
     * only checks alignment after the reservation-address match, so a misaligned SC (which
     * can never match an LR address) just fails.  Accepted: trap with cause 6/7 (or 4, as
     * above), or failure (rd != 0) -- never a store.  See README.md. */
    TEST_SC_MISALIGNED 60, 2, "lr.w a4, (a5)", "sc.w a4, a2, (a1)"
    TEST_SC_MISALIGNED 61, 4, "lr.d a4, (a5)", "sc.d a4, a2, (a1)"
    TEST_SC_MISALIGNED 62, 6, "lr.d a4, (a5)", "sc.w a4, a2, (a1)"

    TEST_END

    TEST_DATA
amo_data:
    .dword 0, 0, 0, 0
