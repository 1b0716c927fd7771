/* Interrupts pending while masked are taken right after the instruction that unmasks them.
 * The privileged spec (§3.1.9) has the trap conditions evaluated immediately after an explicit
 * write to mip, mie, mstatus or mideleg, and after xRET: so xepc is the address of the next
 * instruction, which never runs before the trap. Each check unmasks one way: mie, mstatus.MIE,
 * mideleg (an S-level interrupt made M-level while in M), sie and sstatus.SIE in S, sip.SSIP
 * written in S, MRET into S and into U, SRET into U. An engine that caches which interrupts
 * are enabled and misses one of these writes runs the `j fail` after it. */
#include "isa.h"

/* Runs `insn` (which must unmask the pending interrupt); the trap must come with cause
 * `cause` before the instruction after it. Resumes in the handler's mode with interrupts off. */
.macro TAKEN_AFTER cause, insn:vararg
    la tp, .Lt\@ + RESUME_HANDLER_MODE + RESUME_IRQ_OFF
    \insn
.Ln\@:
    j fail
    ALIGN4
.Lt\@:
    EXPECT s9, INTERRUPT_BIT | (\cause)
    la t0, .Ln\@
    EXPECT_EQ s11, t0
.endm

/* MRET into `mode` with a supervisor software interrupt pending that mode takes: the trap
 * must come before the first instruction there. */
.macro SSI_AT_ENTRY mode
    la tp, .Lt\@ + RESUME_HANDLER_MODE + RESUME_IRQ_OFF
    ENTER_MODE \mode, .Ln\@
.Ln\@:
    j fail
    ALIGN4
.Lt\@:
    EXPECT s9, INTERRUPT_BIT | IRQ_SSI
    la t0, .Ln\@
    EXPECT_EQ s11, t0
.endm

    TEST_BEGIN
    li a0, -1
    li a1, CLINT_MTIMECMP
    sd a0, 0(a1)
    li a0, 1 << 63      /* Sstc off, so that M may write mip.STIP (tolerated if absent) */
    MAY_TRAP csrc menvcfg, a0

    CHECK 1             /* M: MSIP pending, MIE on, mie written last */
    li a1, CLINT_MSIP
    li a0, 1
    sw a0, 0(a1)
1:  csrr a0, mip        /* the CLINT raises it in a bounded time: wait for it */
    andi a0, a0, MIP_MSIP
    beqz a0, 1b
    csrsi mstatus, MSTATUS_MIE
    li a0, MIP_MSIP
    TAKEN_AFTER IRQ_MSI, csrw mie, a0

    CHECK 2             /* M: MSIP pending and in mie, mstatus.MIE written last */
    TAKEN_AFTER IRQ_MSI, csrsi mstatus, MSTATUS_MIE
    li a1, CLINT_MSIP
    sw zero, 0(a1)
1:  csrr a0, mip
    andi a0, a0, MIP_MSIP
    bnez a0, 1b
    csrw mie, zero

    CHECK 3             /* M: SSIP pending, enabled, delegated (so not taken in M); taking
                           the delegation back makes it an M-level interrupt at once */
    li a0, MIP_SSIP
    csrw mideleg, a0
    csrw mie, a0
    csrs mip, a0
    csrsi mstatus, MSTATUS_MIE
    nop                 /* delegated: nothing taken in M */
    TAKEN_AFTER IRQ_SSI, csrc mideleg, a0
    csrc mip, a0

    CHECK 4             /* S: SSIP pending, SIE on, sie written last */
    li a0, MIP_SSIP
    csrw mideleg, a0
    csrw mie, zero
    csrs mip, a0
    csrsi mstatus, MSTATUS_SIE
    ENTER_MODE PRV_S, 1f
1:  TAKEN_AFTER IRQ_SSI, csrs sie, a0
    csrc sie, a0

    CHECK 5             /* S: SSIP pending and in sie, sstatus.SIE written last */
    csrw sie, a0
    TAKEN_AFTER IRQ_SSI, csrsi sstatus, MSTATUS_SIE
    csrc sip, a0

    CHECK 6             /* S: SIE on and SSIE on, S writes sip.SSIP itself */
    csrsi sstatus, MSTATUS_SIE
    TAKEN_AFTER IRQ_SSI, csrs sip, a0
    csrc sip, a0
    BACK_TO_M

    CHECK 7             /* MRET into S with SSIP pending and SIE on: taken at the first
                           S instruction */
    csrs mip, a0
    csrsi mstatus, MSTATUS_SIE
    SSI_AT_ENTRY PRV_S
    csrc sip, a0
    BACK_TO_M

    CHECK 8             /* MRET into U with SSIP pending and SIE off: taken in U at once */
    csrs mip, a0
    csrci mstatus, MSTATUS_SIE
    SSI_AT_ENTRY PRV_U
    csrc sip, a0
    BACK_TO_M

    CHECK 9             /* SRET from S (SIE off) into U with SSIP pending: taken in U */
    ENTER_MODE PRV_S, 1f
1:  csrw sie, zero
    csrs sip, a0        /* masked in S: sie.SSIE is off */
    csrw sie, a0        /* still masked: sstatus.SIE is off */
    li t0, MSTATUS_SPP
    csrc sstatus, t0    /* SPP = U */
    la t0, 3f
    csrw sepc, t0
    la tp, 2f + RESUME_HANDLER_MODE + RESUME_IRQ_OFF
    sret
    ALIGN4
3:  j fail
    ALIGN4
2:  EXPECT s9, INTERRUPT_BIT | IRQ_SSI
    la t0, 3b
    EXPECT_EQ s11, t0
    csrc sip, a0
    BACK_TO_M
    csrw mideleg, zero
    TEST_END

    TEST_DATA
