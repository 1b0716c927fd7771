/* Interrupts: machine timer (CLINT mtimecmp) and software (msip) interrupts, WFI waking on a
 * pending but globally disabled interrupt, supervisor software/timer interrupts injected by M
 * through mip and delegated with mideleg, the machine external interrupt (UART THR-empty via
 * the PLIC, as on QEMU virt), priority MEI > MSI > MTI > SEI > SSI > STI, interrupts for a
 * lower privilege not taken in M, M interrupts taken in S/U whatever mstatus.MIE, delegated S
 * interrupts taken in U whatever sstatus.SIE. */
#include "isa.h"

#define UART_IER (UART_BASE + 1)
#define UART_IRQ 10
#define PLIC_PRIO(n)   (PLIC_BASE + 4 * (n))
#define PLIC_ENABLE_M  (PLIC_BASE + 0x2000)     /* context 0: hart 0, M */
#define PLIC_THRESH_M  (PLIC_BASE + 0x200000)
#define PLIC_CLAIM_M   (PLIC_BASE + 0x200004)

/* Waits are bounded by the CLINT's mtime (QEMU delivers timer interrupts with a lag of
 * up to milliseconds, so instruction counts are no good as timeouts).  These macros clobber
 * t3, t4, t5 (and t6 through EXPECT). */
#define WAIT_LIMIT 10000000   /* 1 s */

/* t3 = mtime + ticks, t4 = &mtime */
.macro DEADLINE ticks
    li t4, CLINT_MTIME
    ld t3, 0(t4)
    li t5, \ticks
    add t3, t3, t5
.endm

/* Wait (bounded) for an interrupt to be taken; falling out of the wait fails. */
.macro WAIT_IRQ
    DEADLINE WAIT_LIMIT
.Lw\@:
    ld t5, 0(t4)
    bltu t5, t3, .Lw\@
    j fail
.endm

/* Enable interrupts in M and wait for one: it must have cause `cause`.  Resumes in M with
 * MIE off again. */
.macro TAKE_M cause
    la tp, .Lt\@ + RESUME_HANDLER_MODE + RESUME_IRQ_OFF
    csrsi mstatus, MSTATUS_MIE
    WAIT_IRQ
    ALIGN4
.Lt\@:
    EXPECT s9, INTERRUPT_BIT | (\cause)
.endm

/* Spin for `ticks` of mtime; any trap meanwhile fails (tp = 0) */
.macro NO_IRQ_FOR ticks=20000
    DEADLINE \ticks
.Lw\@:
    ld t5, 0(t4)
    bltu t5, t3, .Lw\@
.endm

/* a0 = mip once bit is pending (bounded wait) */
.macro WAIT_MIP bit
    DEADLINE WAIT_LIMIT
.Lw\@:
    csrr a0, mip
    li t6, \bit
    and t6, a0, t6
    bnez t6, .Ld\@
    ld t5, 0(t4)
    bltu t5, t3, .Lw\@
    j fail
.Ld\@:
.endm

.macro SET_MTIMECMP reg
    li t5, CLINT_MTIMECMP
    sd \reg, 0(t5)
.endm

    TEST_BEGIN
    li a0, -1
    SET_MTIMECMP a0
    /* Sstc (if present) would make mip.STIP read-only; turn its STCE off.  menvcfg may not
     * exist (priv 1.11): tolerated. */
    li a0, 1 << 63
    MAY_TRAP csrc menvcfg, a0

    CHECK 1             /* no interrupt pending at start, mtimecmp = max */
    csrr a0, mip
    EXPECT_MASKED a0, MIP_MTIP | MIP_MSIP | MIP_STIP | MIP_SSIP, 0

    CHECK 2             /* machine timer interrupt */
    li a1, CLINT_MTIME
    ld a0, 0(a1)
    addi a0, a0, 100    /* 10 us */
    SET_MTIMECMP a0
    li a0, MIP_MTIP
    csrw mie, a0
    TAKE_M IRQ_MTI
    EXPECT_MASKED s8, MSTATUS_MPIE | MSTATUS_MIE | MSTATUS_MPP, MSTATUS_MPIE | MSTATUS_MPP
    csrr a0, mip
    EXPECT_MASKED a0, MIP_MTIP, MIP_MTIP
    CHECK 3             /* writing mtimecmp clears MTIP */
    li a0, -1
    SET_MTIMECMP a0
    csrr a0, mip
    EXPECT_MASKED a0, MIP_MTIP, 0
    csrw mie, zero

    CHECK 4             /* machine software interrupt through msip */
    li a1, CLINT_MSIP
    li a0, 1
    sw a0, 0(a1)
    WAIT_MIP MIP_MSIP
    li a0, MIP_MSIP
    csrw mie, a0
    TAKE_M IRQ_MSI
    la a0, 1f
    li a1, CLINT_MSIP
    lw a0, 0(a1)
    EXPECT a0, 1
    sw zero, 0(a1)
    csrr a0, mip
    EXPECT_MASKED a0, MIP_MSIP, 0
    csrw mie, zero
1:
    CHECK 5             /* WFI with MIE = 0 returns once an enabled interrupt is pending, and
                           no trap is taken */
    li a0, MIP_MTIP
    csrw mie, a0
    li a1, CLINT_MTIME
    ld a0, 0(a1)
    li a2, 2000         /* 200 us */
    add a0, a0, a2
    SET_MTIMECMP a0
    wfi
    WAIT_MIP MIP_MTIP   /* WFI may also return early: then the interrupt comes later */
    wfi                 /* already pending: returns at once */
    NO_IRQ_FOR
    li a0, -1
    SET_MTIMECMP a0
    csrw mie, zero
    CHECK 6             /* same with msip, interrupt pending before WFI */
    li a1, CLINT_MSIP
    li a0, 1
    sw a0, 0(a1)
    li a0, MIP_MSIP
    csrw mie, a0
    WAIT_MIP MIP_MSIP
    wfi
    sw zero, 0(a1)
    csrw mie, zero

    /* ---- supervisor interrupts injected by M ---- */
    CHECK 7             /* mip.SSIP written by M, delegated, taken in S */
    li a0, MIP_SSIP
    csrw mideleg, a0
    csrr a1, mideleg    /* only the S bits: with H, the VS bits read as 1 */
    EXPECT_MASKED a1, MIP_SSIP | MIP_STIP | MIP_SEIP, MIP_SSIP
    csrs mip, a0
    csrr a1, mip
    EXPECT_MASKED a1, MIP_SSIP, MIP_SSIP
    csrw sie, a0
    csrr a1, sie
    EXPECT_EQ a1, a0
    NO_IRQ_FOR          /* pending and enabled for S: never taken while in M */
    csrsi mstatus, MSTATUS_MIE
    NO_IRQ_FOR
    csrci mstatus, MSTATUS_MIE
    ENTER_MODE PRV_S, 1f
1:  NO_IRQ_FOR          /* SIE = 0 in S: not yet */
    la tp, 2f + RESUME_HANDLER_MODE + RESUME_IRQ_OFF
    csrsi sstatus, MSTATUS_SIE
    WAIT_IRQ
    ALIGN4
2:  EXPECT s9, INTERRUPT_BIT | IRQ_SSI
    EXPECT_MASKED s8, MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE, MSTATUS_SPP | MSTATUS_SPIE
    csrr a0, sip
    EXPECT_MASKED a0, MIP_SSIP, MIP_SSIP
    csrci sip, MIP_SSIP   /* S clears its own software interrupt */
    csrr a0, sip
    EXPECT_MASKED a0, MIP_SSIP, 0
    BACK_TO_M
    CHECK 8             /* a delegated S interrupt is taken in U whatever SIE */
    csrsi mip, MIP_SSIP
    csrci mstatus, MSTATUS_SIE
    la tp, 2f + RESUME_HANDLER_MODE + RESUME_IRQ_OFF   /* taken right on entry */
    ENTER_MODE PRV_U, 1f
1:
    WAIT_IRQ
    ALIGN4
2:  EXPECT s9, INTERRUPT_BIT | IRQ_SSI
    EXPECT_MASKED s8, MSTATUS_SPP, 0
    csrci sip, MIP_SSIP
    BACK_TO_M
    CHECK 9             /* supervisor timer interrupt: M sets mip.STIP, delegated */
    li a0, MIP_STIP
    csrw mideleg, a0
    csrw sie, a0
    csrs mip, a0
    csrr a1, mip
    EXPECT_MASKED a1, MIP_STIP, MIP_STIP
    la tp, 2f + RESUME_HANDLER_MODE + RESUME_IRQ_OFF   /* taken right on entry */
    ENTER_MODE PRV_S, 1f
1:
    csrsi sstatus, MSTATUS_SIE
    WAIT_IRQ
    ALIGN4
2:  EXPECT s9, INTERRUPT_BIT | IRQ_STI
    csrr a0, sip
    EXPECT_MASKED a0, MIP_STIP, MIP_STIP
    BACK_TO_M
    li a0, MIP_STIP
    csrc mip, a0
    csrr a1, mip
    EXPECT_MASKED a1, MIP_STIP, 0
    csrw sie, zero
    csrw mideleg, zero

    /* ---- M interrupts are taken in S and U even with MIE = 0 ---- */
    CHECK 10
    li a1, CLINT_MSIP
    li a0, 1
    sw a0, 0(a1)
    WAIT_MIP MIP_MSIP
    li a0, MIP_MSIP
    csrw mie, a0
    la tp, 2f + RESUME_HANDLER_MODE + RESUME_IRQ_OFF   /* taken right on entry */
    ENTER_MODE PRV_S, 1f
1:
    WAIT_IRQ
    ALIGN4
2:  EXPECT s9, INTERRUPT_BIT | IRQ_MSI
    EXPECT_MASKED s8, MSTATUS_MPP | MSTATUS_MPIE, MSTATUS_MPP_S
    la tp, 2f + RESUME_HANDLER_MODE + RESUME_IRQ_OFF   /* taken right on entry */
    ENTER_MODE PRV_U, 1f
1:
    WAIT_IRQ
    ALIGN4
2:  EXPECT s9, INTERRUPT_BIT | IRQ_MSI
    EXPECT_MASKED s8, MSTATUS_MPP, 0
    li a1, CLINT_MSIP
    sw zero, 0(a1)
    csrw mie, zero
    CHECK 11            /* a non-delegated S interrupt is an M interrupt: taken in S with
                           SIE = 0 (by M), not taken in M with MIE = 0 */
    li a0, MIP_SSIP
    csrs mip, a0
    csrw mie, a0
    NO_IRQ_FOR
    la tp, 2f + RESUME_HANDLER_MODE + RESUME_IRQ_OFF   /* taken right on entry */
    ENTER_MODE PRV_S, 1f
1:
    WAIT_IRQ
    ALIGN4
2:  EXPECT s9, INTERRUPT_BIT | IRQ_SSI
    EXPECT_MASKED s8, MSTATUS_MPP, MSTATUS_MPP_S
    li a0, MIP_SSIP
    csrc mip, a0
    csrw mie, zero

    /* ---- machine external interrupt: UART THR-empty -> PLIC source 10 ---- */
    CHECK 12
    li a1, PLIC_PRIO(UART_IRQ)
    li a0, 1
    sw a0, 0(a1)
    li a1, PLIC_ENABLE_M
    li a0, 1 << UART_IRQ
    sw a0, 0(a1)
    li a1, PLIC_THRESH_M
    sw zero, 0(a1)
    li a1, UART_IER
    li a0, 2            /* ETBEI: THR empty raises the line */
    sb a0, 0(a1)
    WAIT_MIP MIP_MEIP
    li a0, MIP_MEIP
    csrw mie, a0
    TAKE_M IRQ_MEI
    CHECK 13            /* claim returns the source; after clearing the cause it stays quiet */
    li a1, UART_IER
    sb zero, 0(a1)
    li a1, PLIC_CLAIM_M
    lw a0, 0(a1)
    EXPECT a0, UART_IRQ
    sw a0, 0(a1)
    csrr a0, mip
    EXPECT_MASKED a0, MIP_MEIP, 0
    csrw mie, zero

    /* ---- priority: MEI > MSI > MTI > SEI > SSI > STI, all pending at once ---- */
    CHECK 14
    li a1, UART_IER
    li a0, 2
    sb a0, 0(a1)
    li a1, CLINT_MSIP
    li a0, 1
    sw a0, 0(a1)
    SET_MTIMECMP zero
    li a0, MIP_SEIP | MIP_SSIP | MIP_STIP
    csrs mip, a0
    WAIT_MIP MIP_MEIP
    WAIT_MIP MIP_MSIP
    WAIT_MIP MIP_MTIP
    csrr a0, mip
    EXPECT_MASKED a0, MIP_SEIP | MIP_SSIP | MIP_STIP, MIP_SEIP | MIP_SSIP | MIP_STIP
    li a0, MIP_MEIP | MIP_MSIP | MIP_MTIP | MIP_SEIP | MIP_SSIP | MIP_STIP
    csrw mie, a0
    la s2, irq_order    /* take all six, recording the order */
    li s3, 6
1:  la tp, 2f + RESUME_HANDLER_MODE + RESUME_IRQ_OFF
    csrsi mstatus, MSTATUS_MIE
    WAIT_IRQ
    ALIGN4
2:  sd s9, 0(s2)
    addi s2, s2, 8
    andi a0, s9, 63
    li a1, 1
    sll a1, a1, a0
    csrc mie, a1
    addi s3, s3, -1
    bnez s3, 1b
    CHECK 15            /* the order is the spec's: MEI, MSI, MTI, SEI, SSI, STI.
                           QEMU 7.2 (without AIA) takes the lowest-numbered pending
                           interrupt first instead (SSI, MSI, STI, MTI, SEI, MEI): that
                           exact order is tolerated too, see README.md */
    la s2, irq_order
    la s3, order_spec
    la s4, order_qemu72
    li s5, 1            /* matches spec */
    li s6, 1            /* matches QEMU 7.2 */
    li s7, 6
3:  ld a0, 0(s2)
    ld a1, 0(s3)
    ld a2, 0(s4)
    beq a0, a1, 4f
    li s5, 0
4:  beq a0, a2, 5f
    li s6, 0
5:  addi s2, s2, 8
    addi s3, s3, 8
    addi s4, s4, 8
    addi s7, s7, -1
    bnez s7, 3b
    or a0, s5, s6
    EXPECT a0, 1
    CHECK 16            /* clean up every source */
    csrsi mstatus, MSTATUS_MIE
    NO_IRQ_FOR
    csrci mstatus, MSTATUS_MIE
    li a1, UART_IER
    sb zero, 0(a1)
    li a1, PLIC_CLAIM_M
    lw a0, 0(a1)
    EXPECT a0, UART_IRQ
    sw a0, 0(a1)
    li a1, CLINT_MSIP
    sw zero, 0(a1)
    li a0, -1
    SET_MTIMECMP a0
    li a0, MIP_SEIP | MIP_SSIP | MIP_STIP
    csrc mip, a0
    csrr a0, mip
    EXPECT_MASKED a0, MIP_MEIP | MIP_MSIP | MIP_MTIP | MIP_SEIP | MIP_SSIP | MIP_STIP, 0

    TEST_END

    TEST_DATA
irq_order:
    .dword 0, 0, 0, 0, 0, 0
order_spec:
    .dword INTERRUPT_BIT | IRQ_MEI, INTERRUPT_BIT | IRQ_MSI, INTERRUPT_BIT | IRQ_MTI
    .dword INTERRUPT_BIT | IRQ_SEI, INTERRUPT_BIT | IRQ_SSI, INTERRUPT_BIT | IRQ_STI
order_qemu72:
    .dword INTERRUPT_BIT | IRQ_SSI, INTERRUPT_BIT | IRQ_MSI, INTERRUPT_BIT | IRQ_STI
    .dword INTERRUPT_BIT | IRQ_MTI, INTERRUPT_BIT | IRQ_SEI, INTERRUPT_BIT | IRQ_MEI
