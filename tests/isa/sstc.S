/* Sstc 1.0 ("stimecmp/vstimecmp" extension; no H here, so no vstimecmp): the stimecmp CSR
 * (0x14d) read and written from M and S, its S-mode access gated by menvcfg.STCE (bit 63) and
 * mcounteren.TM, and illegal from U; with STCE set, mip.STIP is read-only and high exactly
 * while time >= stimecmp (set and cleared at once by a stimecmp write, raised by time passing),
 * a supervisor timer interrupt is taken in S from it, also out of WFI; with STCE clear, M
 * writes mip.STIP again.
 *
 * Cases where QEMU 7.2 departs from the spec are left out: with STCE clear it still lets a
 * due stimecmp set mip.STIP, so every stimecmp is moved ahead (never due) before STCE is
 * cleared. */
#include "isa.h"

#define MENVCFG_STCE   (1 << 63)
#define MCOUNTEREN_TM  2
#define WAIT_LIMIT     10000000 /* 1 s of mtime at 10 MHz */

/* t3 = time + ticks (time read through the CSR: M and, with TM, S may) */
.macro DEADLINE ticks
    csrr t3, time
    li t5, \ticks
    add t3, t3, t5
.endm

/* Wait (bounded) for an interrupt to be taken; falling out of the wait fails. */
.macro WAIT_IRQ
    DEADLINE WAIT_LIMIT
.Lw\@:
    csrr t5, time
    bltu t5, t3, .Lw\@
    j fail
.endm

/* a0 = mip once STIP is pending (bounded wait, from M) */
.macro WAIT_STIP
    DEADLINE WAIT_LIMIT
.Lw\@:
    csrr a0, mip
    andi t6, a0, MIP_STIP
    bnez t6, .Ld\@
    csrr t5, time
    bltu t5, t3, .Lw\@
    j fail
.Ld\@:
.endm

    TEST_BEGIN
    li a0, MENVCFG_STCE
    csrc menvcfg, a0
    li a0, -1
    csrw stimecmp, a0
    csrw mcounteren, zero

    CHECK 1             /* M reads and writes stimecmp whatever STCE */
    li a0, 0x123456789abcdef0
    csrw stimecmp, a0
    csrr a1, stimecmp
    EXPECT_EQ a0, a1
    li a0, -1
    csrw stimecmp, a0
    csrr a1, stimecmp
    EXPECT a1, -1

    CHECK 2             /* menvcfg.STCE has storage */
    li a0, MENVCFG_STCE
    csrs menvcfg, a0
    csrr a1, menvcfg
    EXPECT_MASKED a1, MENVCFG_STCE, MENVCFG_STCE
    csrc menvcfg, a0
    csrr a1, menvcfg
    EXPECT_MASKED a1, MENVCFG_STCE, 0

    CHECK 3             /* S with TM but without STCE: illegal instruction */
    li a0, MCOUNTEREN_TM
    csrw mcounteren, a0
    ENTER_MODE PRV_S, 1f
1:  MUST_TRAP CAUSE_ILLEGAL, csrr a1, stimecmp
    MUST_TRAP CAUSE_ILLEGAL, csrw stimecmp, zero
    BACK_TO_M
    csrr a1, stimecmp   /* the refused write changed nothing */
    EXPECT a1, -1

    CHECK 4             /* S with STCE but without TM: illegal instruction */
    li a0, MENVCFG_STCE
    csrs menvcfg, a0
    csrw mcounteren, zero
    ENTER_MODE PRV_S, 1f
1:  MUST_TRAP CAUSE_ILLEGAL, csrr a1, stimecmp
    MUST_TRAP CAUSE_ILLEGAL, csrw stimecmp, zero
    BACK_TO_M

    CHECK 5             /* S with both: reads and writes it */
    li a0, MCOUNTEREN_TM
    csrw mcounteren, a0
    ENTER_MODE PRV_S, 1f
1:  li a0, 0x7fffffffffff0000
    csrw stimecmp, a0
    csrr a1, stimecmp
    EXPECT_EQ a0, a1
    li a0, -1
    csrw stimecmp, a0
    BACK_TO_M
    csrr a1, stimecmp
    EXPECT a1, -1

    CHECK 6             /* U: illegal even with STCE and TM (and scounteren.TM) */
    li a0, MCOUNTEREN_TM
    csrw scounteren, a0
    ENTER_MODE PRV_U, 1f
1:  MUST_TRAP CAUSE_ILLEGAL, csrr a1, stimecmp
    BACK_TO_M
    csrw scounteren, zero

    CHECK 7             /* STIP rises at once when stimecmp is written in the past */
    csrr a1, mip
    EXPECT_MASKED a1, MIP_STIP, 0
    csrw stimecmp, zero
    csrr a1, mip
    EXPECT_MASKED a1, MIP_STIP, MIP_STIP

    CHECK 8             /* and falls at once when stimecmp moves ahead */
    li a0, -1
    csrw stimecmp, a0
    csrr a1, mip
    EXPECT_MASKED a1, MIP_STIP, 0

    CHECK 9             /* mip.STIP is read-only to M while STCE is set */
    li a0, MIP_STIP
    csrs mip, a0
    csrr a1, mip
    EXPECT_MASKED a1, MIP_STIP, 0
    csrw stimecmp, zero
    li a0, MIP_STIP
    csrc mip, a0
    csrr a1, mip
    EXPECT_MASKED a1, MIP_STIP, MIP_STIP
    li a0, -1
    csrw stimecmp, a0

    CHECK 10            /* STIP rises by itself once time reaches stimecmp */
    csrr a0, time
    li a1, 200000       /* 20 ms ahead: not yet due when mip is read below */
    add a0, a0, a1
    csrw stimecmp, a0
    csrr a1, mip
    EXPECT_MASKED a1, MIP_STIP, 0
    WAIT_STIP
    csrr a1, time
    csrr a2, stimecmp
    EXPECT_LEU a2, a1
    li a0, -1
    csrw stimecmp, a0

    CHECK 11            /* a supervisor timer interrupt, programmed and taken in S */
    li a0, MIP_STIP
    csrw mideleg, a0
    csrw mie, a0
    ENTER_MODE PRV_S, 1f
1:  csrr a0, time
    addi a0, a0, 1000   /* 100 us */
    csrw stimecmp, a0
    la tp, 2f + RESUME_HANDLER_MODE + RESUME_IRQ_OFF
    csrsi sstatus, MSTATUS_SIE
    WAIT_IRQ
    ALIGN4
2:  EXPECT s9, INTERRUPT_BIT | IRQ_STI
    csrr a1, time
    csrr a2, stimecmp
    EXPECT_LEU a2, a1
    csrr a0, sip
    EXPECT_MASKED a0, MIP_STIP, MIP_STIP
    li a0, -1           /* S acknowledges by moving stimecmp ahead */
    csrw stimecmp, a0
    csrr a0, sip
    EXPECT_MASKED a0, MIP_STIP, 0
    BACK_TO_M

    CHECK 12            /* WFI in S wakes when it falls due, interrupts disabled (SIE = 0) */
    ENTER_MODE PRV_S, 1f
1:  csrr a0, time
    li a1, 20000        /* 2 ms */
    add a0, a0, a1
    csrw stimecmp, a0
    DEADLINE WAIT_LIMIT
3:  wfi
    csrr a0, sip
    andi a0, a0, MIP_STIP
    bnez a0, 4f
    csrr t5, time       /* WFI may return early (privileged §3.3.3): wait again */
    bltu t5, t3, 3b
    j fail
4:  csrr a1, time
    csrr a2, stimecmp
    EXPECT_LEU a2, a1
    li a0, -1
    csrw stimecmp, a0
    BACK_TO_M

    CHECK 13            /* the interrupt is taken out of WFI with SIE = 1 */
    ENTER_MODE PRV_S, 1f
1:  csrr a0, time
    li a1, 20000
    add a0, a0, a1
    csrw stimecmp, a0
    la tp, 2f + RESUME_HANDLER_MODE + RESUME_IRQ_OFF
    csrsi sstatus, MSTATUS_SIE
    DEADLINE WAIT_LIMIT
3:  wfi
    csrr t5, time
    bltu t5, t3, 3b
    j fail
    ALIGN4
2:  EXPECT s9, INTERRUPT_BIT | IRQ_STI
    csrr a1, time
    csrr a2, stimecmp
    EXPECT_LEU a2, a1
    li a0, -1
    csrw stimecmp, a0
    BACK_TO_M
    csrw mie, zero
    csrw mideleg, zero

    CHECK 14            /* STCE cleared: mip.STIP is M's to write again */
    li a0, MENVCFG_STCE
    csrc menvcfg, a0
    csrr a1, mip
    EXPECT_MASKED a1, MIP_STIP, 0
    li a0, MIP_STIP
    csrs mip, a0
    csrr a1, mip
    EXPECT_MASKED a1, MIP_STIP, MIP_STIP
    csrc mip, a0
    csrr a1, mip
    EXPECT_MASKED a1, MIP_STIP, 0

    TEST_END
