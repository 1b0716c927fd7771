/* Tessera ISA tests: shared definitions, start-up code, trap handlers and check macros.
 *
 * Every test is one .S file that #includes this header, writes its checks between
 * TEST_BEGIN and TEST_END, and is linked at 0x8000_0000 by link.ld.  See README.md.
 *
 * Register conventions (reserved for the framework; a test may read them, and sets gp/tp
 * only through the macros below):
 *   gp  (x3)  current check number (CHECK n)
 *   tp  (x4)  expected-trap resume address; 0 = any trap is unexpected.  Bit 0
 *             (RESUME_HANDLER_MODE) = resume in the handler's own mode (M for the M handler,
 *             S for the S handler) instead of the trapping mode; bit 1 = return with
 *             xPIE cleared (interrupts stay off after xRET).  The handler clears tp.
 *   s8        xstatus as read on trap entry      s9   xcause
 *   s10       xtval                              s11  xepc
 *   t5, t6    scratch of the check macros (clobbered by EXPECT & co.)
 * mscratch/sscratch are clobbered by every trap.
 *
 * Result codes written to the test device (0x10_0000):
 *   pass                      0x5555
 *   check n failed            (n << 16) | 0x3333                  exit status n (1..191)
 *   unexpected exception c    ((gp << 8 | 0xF0 + c) << 16) | 0x3333  exit status 240 + c
 *     taken in M
 *   unexpected interrupt c    ... 0xD0 + c                        exit status 208 + c
 *     taken in M
 *   unexpected exception c    ... 0xE0 + c                        exit status 224 + c
 *     taken in S
 *   unexpected interrupt c    ... 0xC0 + c                        exit status 192 + c
 *     taken in S
 * The exit status of QEMU/Tessera is the low byte of the code; the high byte of a trap code is
 * the check that was running.
 */
#ifndef TESSERA_ISA_H
#define TESSERA_ISA_H

#define FINISHER      0x100000
#define FINISHER_PASS 0x5555
#define FINISHER_FAIL 0x3333

#define CLINT_MSIP     0x2000000
#define CLINT_MTIMECMP 0x2004000
#define CLINT_MTIME    0x200BFF8
#define PLIC_BASE      0xC000000
#define UART_BASE      0x10000000
#define RAM_BASE       0x80000000
#define RAM_END        0x88000000 /* 128 MiB: first address past RAM, unmapped */
#define UNMAPPED_ADDR  0x88000000

#define MSTATUS_SIE  (1 << 1)
#define MSTATUS_MIE  (1 << 3)
#define MSTATUS_SPIE (1 << 5)
#define MSTATUS_MPIE (1 << 7)
#define MSTATUS_SPP  (1 << 8)
#define MSTATUS_MPP  (3 << 11)
#define MSTATUS_MPP_S (1 << 11)
#define MSTATUS_MPP_U 0
#define MSTATUS_FS   (3 << 13)
#define MSTATUS_FS_INITIAL (1 << 13)
#define MSTATUS_FS_CLEAN   (2 << 13)
#define MSTATUS_FS_DIRTY   (3 << 13)
#define MSTATUS_MPRV (1 << 17)
#define MSTATUS_SUM  (1 << 18)
#define MSTATUS_MXR  (1 << 19)
#define MSTATUS_TVM  (1 << 20)
#define MSTATUS_TW   (1 << 21)
#define MSTATUS_TSR  (1 << 22)
#define MSTATUS_SD   (1 << 63)

#define IRQ_SSI 1
#define IRQ_MSI 3
#define IRQ_STI 5
#define IRQ_MTI 7
#define IRQ_SEI 9
#define IRQ_MEI 11
#define MIP_SSIP (1 << IRQ_SSI)
#define MIP_MSIP (1 << IRQ_MSI)
#define MIP_STIP (1 << IRQ_STI)
#define MIP_MTIP (1 << IRQ_MTI)
#define MIP_SEIP (1 << IRQ_SEI)
#define MIP_MEIP (1 << IRQ_MEI)
#define INTERRUPT_BIT (1 << 63)

#define CAUSE_MISALIGNED_FETCH 0
#define CAUSE_FETCH_ACCESS     1
#define CAUSE_ILLEGAL          2
#define CAUSE_BREAKPOINT       3
#define CAUSE_MISALIGNED_LOAD  4
#define CAUSE_LOAD_ACCESS      5
#define CAUSE_MISALIGNED_STORE 6
#define CAUSE_STORE_ACCESS     7
#define CAUSE_ECALL_U          8
#define CAUSE_ECALL_S          9
#define CAUSE_ECALL_M          11
#define CAUSE_FETCH_PAGE       12
#define CAUSE_LOAD_PAGE        13
#define CAUSE_STORE_PAGE       15

#define PRV_U 0
#define PRV_S 1
#define PRV_M 3

/* fflags bits */
#define FF_NX 0x01
#define FF_UF 0x02
#define FF_OF 0x04
#define FF_DZ 0x08
#define FF_NV 0x10

/* Resume flags for tp (see above). */
#define RESUME_HANDLER_MODE 1
#define RESUME_IRQ_OFF   2

#define TP_FAIL      -1 /* fail requested from a mode that cannot reach the test device */
#define TP_S_UNEXPECTED -2 /* S handler forwards an unexpected trap; s9 = scause */

    .option nopic   /* la = lla: absolute, no GOT */
    .option norelax /* exact .balign padding (code may sit at 2 mod 4) */
    .option norvc /* 32-bit encodings everywhere unless a test says .option rvc */

    .set __isa_last_check, 0

/* Align code to 4 bytes even when it currently sits at 2 mod 4: padding then needs a c.nop,
 * which the assembler only emits with RVC enabled. */
.macro ALIGN4
    .option push
    .option rvc
    .balign 4
    .option pop
.endm

/* ---- check numbering -------------------------------------------------------------------- */

/* Begin check n: numbers must strictly increase within a file and stay in 1..191. */
.macro CHECK n
    .if (\n) <= __isa_last_check
    .error "check numbers must increase"
    .endif
    .if (\n) > 191
    .error "check numbers must be <= 191"
    .endif
    .set __isa_last_check, (\n)
    li gp, \n
.endm

/* ---- comparisons: every one jumps to fail (reporting gp) on mismatch ----------------------- */

/* reg == 64-bit constant (uses t6) */
.macro EXPECT reg, val
    li t6, \val
    beq \reg, t6, .Lok\@
    j fail
.Lok\@:
.endm

/* reg == reg */
.macro EXPECT_EQ ra, rb
    beq \ra, \rb, .Lok\@
    j fail
.Lok\@:
.endm

.macro EXPECT_NE ra, rb
    bne \ra, \rb, .Lok\@
    j fail
.Lok\@:
.endm

/* unsigned a <= b */
.macro EXPECT_LEU ra, rb
    bleu \ra, \rb, .Lok\@
    j fail
.Lok\@:
.endm

/* (reg & mask) == val (uses t6) */
.macro EXPECT_MASKED reg, mask, val
    li t6, \mask
    and t6, \reg, t6
    li t5, \val
    beq t5, t6, .Lok\@
    j fail
.Lok\@:
.endm

/* CSR == value (uses t5, t6) */
.macro EXPECT_CSR csr, val
    csrr t5, \csr
    EXPECT t5, \val
.endm

.macro FAIL_NOW
    j fail
.endm

/* ---- expected traps ------------------------------------------------------------------------ */

/* Arm the handler: the next trap resumes at label (flags: RESUME_*). */
.macro EXPECT_TRAP label, flags=0
    la tp, \label
    .if (\flags) != 0
    ori tp, tp, \flags
    .endif
.endm

/* After an expected trap: cause and tval (s9, s10) */
.macro EXPECT_CAUSE cause
    EXPECT s9, \cause
.endm

.macro EXPECT_TVAL val
    EXPECT s10, \val
.endm

/* Run one instruction that must trap with cause; continues after it (in the mode the
 * handler returns to: the trapping mode, unless flags say otherwise). */
.macro MUST_TRAP cause, insn:vararg
    la tp, .Lres\@
    \insn
    j fail /* did not trap */
    ALIGN4
.Lres\@:
    EXPECT s9, \cause
.endm

/* Same, and check that xepc points at the trapping instruction */
.macro MUST_TRAP_AT cause, insn:vararg
    la tp, .Lres\@
.Linsn\@:
    \insn
    j fail
    ALIGN4
.Lres\@:
    EXPECT s9, \cause
    la t6, .Linsn\@
    EXPECT_EQ s11, t6
.endm

/* Run insn; a trap (e.g. an optional CSR that is not implemented) is tolerated and skipped. */
.macro MAY_TRAP insn:vararg
    la tp, .Lres\@
    \insn
    li tp, 0
    ALIGN4
.Lres\@:
.endm

/* ---- privilege changes --------------------------------------------------------------------- */

/* From M: continue at label in mode (PRV_S/PRV_U), with xPIE bits cleared. */
.macro ENTER_MODE mode, label
    li t6, MSTATUS_MPP | MSTATUS_MPIE
    csrc mstatus, t6
    .if (\mode) != 0
    li t6, (\mode) << 11
    csrs mstatus, t6
    .endif
    la t6, \label
    csrw mepc, t6
    mret
.endm

/* From S or U (ecall not delegated): back to M, continuing after this macro. */
.macro BACK_TO_M
    la tp, .Lm\@ + RESUME_HANDLER_MODE
    ecall
    j fail
    ALIGN4
.Lm\@:
.endm

/* ---- floating point (F/D tests) ------------------------------------------------------------ */

/* f-register <- bit pattern: single is NaN-boxed by FMV.W.X (uses t5) */
.macro LOAD_s freg, bits
    li t5, \bits
    fmv.w.x \freg, t5
.endm
.macro LOAD_d freg, bits
    li t5, \bits
    fmv.d.x \freg, t5
.endm

/* f-register == bit pattern; a single must be properly NaN-boxed (uses t5, t6) */
.macro EXPECT_F_s freg, bits
    fmv.x.d t5, \freg
    EXPECT t5, 0xffffffff00000000 | (\bits)
.endm
.macro EXPECT_F_d freg, bits
    fmv.x.d t5, \freg
    EXPECT t5, \bits
.endm

/* fflags == flags; clears them (uses t5, t6) */
.macro EXPECT_FFLAGS flags
    csrrw t5, fflags, zero
    EXPECT t5, \flags
.endm

/* fa0 = op(fa1, fa2) with rounding mode rm */
.macro TEST_F2 n, op, res, flags, a, b, rm, ty
    CHECK \n
    LOAD_\ty fa1, \a
    LOAD_\ty fa2, \b
    fsflags zero
    \op fa0, fa1, fa2, \rm
    EXPECT_F_\ty fa0, \res
    EXPECT_FFLAGS \flags
.endm

/* no rounding mode (min/max/sign injection) */
.macro TEST_F2N n, op, res, flags, a, b, ty
    CHECK \n
    LOAD_\ty fa1, \a
    LOAD_\ty fa2, \b
    fsflags zero
    \op fa0, fa1, fa2
    EXPECT_F_\ty fa0, \res
    EXPECT_FFLAGS \flags
.endm

.macro TEST_F1 n, op, res, flags, a, rm, ty, tyin
    CHECK \n
    .ifb \tyin
    LOAD_\ty fa1, \a
    .else
    LOAD_\tyin fa1, \a
    .endif
    fsflags zero
    .ifb \rm
    \op fa0, fa1
    .else
    \op fa0, fa1, \rm
    .endif
    EXPECT_F_\ty fa0, \res
    EXPECT_FFLAGS \flags
.endm

.macro TEST_F3 n, op, res, flags, a, b, c, rm, ty
    CHECK \n
    LOAD_\ty fa1, \a
    LOAD_\ty fa2, \b
    LOAD_\ty fa3, \c
    fsflags zero
    \op fa0, fa1, fa2, fa3, \rm
    EXPECT_F_\ty fa0, \res
    EXPECT_FFLAGS \flags
.endm

/* a0 = cmp(fa1, fa2) */
.macro TEST_FCMP n, op, res, flags, a, b, ty
    CHECK \n
    LOAD_\ty fa1, \a
    LOAD_\ty fa2, \b
    fsflags zero
    \op a0, fa1, fa2
    EXPECT a0, \res
    EXPECT_FFLAGS \flags
.endm

.macro TEST_FCLASS n, op, res, a, ty
    CHECK \n
    LOAD_\ty fa1, \a
    fsflags zero
    \op a0, fa1
    EXPECT a0, \res
    EXPECT_FFLAGS 0
.endm

/* a0 = fcvt.int(fa1) */
.macro TEST_FCVT_I n, op, res, flags, a, rm, ty
    CHECK \n
    LOAD_\ty fa1, \a
    fsflags zero
    \op a0, fa1, \rm
    EXPECT a0, \res
    EXPECT_FFLAGS \flags
.endm

/* fa0 = fcvt.fp(a1) */
.macro TEST_FCVT_F n, op, res, flags, i, rm, ty
    CHECK \n
    li a1, \i
    fsflags zero
    .ifb \rm
    \op fa0, a1           /* exact conversions take no rounding mode */
    .else
    \op fa0, a1, \rm
    .endif
    EXPECT_F_\ty fa0, \res
    EXPECT_FFLAGS \flags
.endm

/* ---- test skeleton ------------------------------------------------------------------------- */

.macro TEST_BEGIN
    .section .text.init, "ax", @progbits
    .globl _start
_start:
    /* Tolerate a missing PMP: any trap here lands on 1f. */
    la t0, 1f
    csrw mtvec, t0
    li t0, -1
    csrw pmpaddr0, t0
    li t0, 0x1f /* NAPOT, R W X: S and U may access everything */
    csrw pmpcfg0, t0
    ALIGN4
1:
    la t0, trap_vector
    csrw mtvec, t0
    la t0, strap_vector
    csrw stvec, t0
    csrw mie, zero
    csrw mideleg, zero
    csrw medeleg, zero
    csrw satp, zero
    li t0, MSTATUS_MIE | MSTATUS_SIE | MSTATUS_MPIE | MSTATUS_SPIE | MSTATUS_MPP | MSTATUS_SPP | MSTATUS_MPRV | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_TVM | MSTATUS_TW | MSTATUS_TSR | MSTATUS_FS
    csrc mstatus, t0
    li t0, MSTATUS_FS_INITIAL
    csrs mstatus, t0
    csrwi fcsr, 0
    li tp, 0
    li gp, 0
    j test_body

/* ---- pass / fail ---- */
    ALIGN4
pass:
    li t0, FINISHER_PASS
    li t1, FINISHER
    sw t0, 0(t1)
1:  wfi
    j 1b

/* Fail with check number gp.  Works from any mode: if the store cannot reach the device
 * (paging, PMP) the resulting trap or the ecall carries tp = TP_FAIL to the M handler. */
    ALIGN4
fail:
    li tp, TP_FAIL
    slli t0, gp, 16
    li t1, FINISHER_FAIL
    or t0, t0, t1
    li t1, FINISHER
    sw t0, 0(t1)
    ecall
1:  wfi
    j 1b

/* a0 = code (low 16 bits), from M mode */
report_code:
    li t1, 0xffff
    and a0, a0, t1
    slli a0, a0, 16
    li t1, FINISHER_FAIL
    or a0, a0, t1
    li t1, FINISHER
    sw a0, 0(t1)
1:  wfi
    j 1b

/* ---- M-mode trap handler ---- */
    ALIGN4
trap_vector:
    csrw mscratch, t0
    li t0, TP_FAIL
    beq tp, t0, .Lm_fail
    li t0, TP_S_UNEXPECTED
    beq tp, t0, .Lm_s_unexpected
    csrr s8, mstatus
    csrr s9, mcause
    csrr s10, mtval
    csrr s11, mepc
    beqz tp, .Lm_unexpected
    andi t0, tp, RESUME_HANDLER_MODE
    beqz t0, 2f
    li t0, MSTATUS_MPP
    csrs mstatus, t0
2:  andi t0, tp, RESUME_IRQ_OFF
    beqz t0, 3f
    li t0, MSTATUS_MPIE
    csrc mstatus, t0
3:  andi t0, tp, -4
    csrw mepc, t0
    li tp, 0
    csrr t0, mscratch
    mret

.Lm_fail:
    /* stop everything further from interrupting, then report check gp */
    csrw mie, zero
    slli t0, gp, 16
    li t1, FINISHER_FAIL
    or t0, t0, t1
    li t1, FINISHER
    sw t0, 0(t1)
1:  wfi
    j 1b

.Lm_unexpected:
    csrw mie, zero
    andi a0, s9, 0xf
    addi a0, a0, 0xF0
    bgez s9, 1f
    addi a0, a0, 0xD0 - 0xF0
1:  slli t0, gp, 8
    or a0, a0, t0
    j report_code

.Lm_s_unexpected:
    csrw mie, zero
    andi a0, s9, 0xf
    addi a0, a0, 0xE0
    bgez s9, 1f
    addi a0, a0, 0xC0 - 0xE0
1:  slli t0, gp, 8
    or a0, a0, t0
    j report_code

/* ---- S-mode trap handler (for delegated traps) ---- */
    ALIGN4
strap_vector:
    csrw sscratch, t0
    li t0, TP_FAIL
    beq tp, t0, .Ls_forward
    csrr s8, sstatus
    csrr s9, scause
    csrr s10, stval
    csrr s11, sepc
    beqz tp, .Ls_unexpected
    andi t0, tp, RESUME_HANDLER_MODE
    beqz t0, 2f
    li t0, MSTATUS_SPP
    csrs sstatus, t0
2:  andi t0, tp, RESUME_IRQ_OFF
    beqz t0, 3f
    li t0, MSTATUS_SPIE
    csrc sstatus, t0
3:  andi t0, tp, -4
    csrw sepc, t0
    li tp, 0
    csrr t0, sscratch
    sret
.Ls_unexpected:
    li tp, TP_S_UNEXPECTED
.Ls_forward:
    ecall
1:  j 1b

    ALIGN4
test_body:
.endm

.macro TEST_END
    j pass
    .balign 8
.endm

/* Page tables (privileged 20211203 §4.3.1): PTE bits, a leaf or pointer PTE for physical
 * address pa, and a store of one into entry `index` of the table at `table` (clobbers t0, t1). */
#define PTE_V (1 << 0)
#define PTE_R (1 << 1)
#define PTE_W (1 << 2)
#define PTE_X (1 << 3)
#define PTE_U (1 << 4)
#define PTE_G (1 << 5)
#define PTE_A (1 << 6)
#define PTE_D (1 << 7)
#define PTE(pa, flags) ((((pa) >> 12) << 10) | (flags))

.macro SETPTE table, index, pte
    li t0, \pte
    li t1, (\table) + 8 * (\index)
    sd t0, 0(t1)
.endm

/* Three Sv39 tables at root, l1 and l0 (consecutive pages), cleared: root[1] -> l1, l1[0] -> l0
 * (so l0 maps VA 0x4000_0000 to 0x401f_ffff), and root[2] the RAM gigapage, global and RWX, so
 * that the test's own code runs under any satp (clobbers a0, a1, t0, t1). */
.macro SV39_TABLES root, l1, l0
    li a0, \root
    li a1, (\l0) + 0x1000
1:  sd zero, 0(a0)
    addi a0, a0, 8
    bltu a0, a1, 1b
    SETPTE \root, 1, PTE(\l1, PTE_V)
    SETPTE \root, 2, PTE(0x80000000, PTE_V | PTE_R | PTE_W | PTE_X | PTE_G | PTE_A | PTE_D)
    SETPTE \l1, 0, PTE(\l0, PTE_V)
.endm

/* Data section helper */
.macro TEST_DATA
    .section .data
    .balign 64
.endm

#endif
