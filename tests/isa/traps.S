/* Synchronous traps: ECALL from M/S/U, EBREAK, illegal instructions (mtval 0 or the bits),
 * JALR target bit 0, trap-entry and MRET/SRET updates of xPP/xPIE/xIE/MPRV, medeleg
 * delegation to S (scause/sepc/stval/stvec) and SRET to U, TW/TSR/TVM, and access faults on
 * load/store/fetch outside RAM and devices (mtval = address). */
#include "isa.h"

/* mtval after an illegal instruction at label: 0 or the instruction bits */
.macro EXPECT_ILLEGAL_TVAL label, len=4
    beqz s10, .Lok\@
    la t5, \label
    .if \len == 4
    lwu t5, 0(t5)
    .else
    lhu t5, 0(t5)
    .endif
    EXPECT_EQ s10, t5
.Lok\@:
.endm

    TEST_BEGIN

    CHECK 1             /* ECALL from M: cause 11, mepc at it, mtval 0, MPP = M */
    la tp, 2f
1:  ecall
    j fail
2:  EXPECT s9, CAUSE_ECALL_M
    la a0, 1b
    EXPECT_EQ s11, a0
    EXPECT s10, 0
    EXPECT_MASKED s8, MSTATUS_MPP, MSTATUS_MPP
    CHECK 2             /* trap entry: MPIE <- MIE, MIE <- 0 */
    csrsi mstatus, MSTATUS_MIE      /* mie = 0: nothing can interrupt */
    la tp, 2f
    ecall
    j fail
2:  EXPECT_MASKED s8, MSTATUS_MIE | MSTATUS_MPIE, MSTATUS_MPIE
    csrci mstatus, MSTATUS_MIE
    CHECK 3             /* ECALL from S: cause 9, MPP = S; SIE untouched by an M trap */
    csrsi mstatus, MSTATUS_SIE
    ENTER_MODE PRV_S, 1f
1:  la tp, 3f + RESUME_HANDLER_MODE
2:  ecall
    j fail
3:  EXPECT s9, CAUSE_ECALL_S
    la a0, 2b
    EXPECT_EQ s11, a0
    EXPECT s10, 0
    EXPECT_MASKED s8, MSTATUS_MPP | MSTATUS_SIE, MSTATUS_MPP_S | MSTATUS_SIE
    csrci mstatus, MSTATUS_SIE
    CHECK 4             /* ECALL from U: cause 8, MPP = U */
    ENTER_MODE PRV_U, 1f
1:  la tp, 3f + RESUME_HANDLER_MODE
2:  ecall
    j fail
3:  EXPECT s9, CAUSE_ECALL_U
    la a0, 2b
    EXPECT_EQ s11, a0
    EXPECT_MASKED s8, MSTATUS_MPP, 0

    CHECK 5             /* EBREAK: cause 3, mepc at it, mtval 0 or the pc */
    la tp, 2f
1:  ebreak
    j fail
2:  EXPECT s9, CAUSE_BREAKPOINT
    la a0, 1b
    EXPECT_EQ s11, a0
    beqz s10, 3f
    EXPECT_EQ s10, a0
3:
    CHECK 6             /* EBREAK from U goes to M too */
    ENTER_MODE PRV_U, 1f
1:  MUST_TRAP_AT CAUSE_BREAKPOINT, ebreak
    BACK_TO_M

    /* ---- illegal instructions ---- */
    CHECK 7             /* reserved LOAD funct3 = 7 */
    la tp, 2f
1:  .word 0x00007003
    j fail
2:  EXPECT s9, CAUSE_ILLEGAL
    la a0, 1b
    EXPECT_EQ s11, a0
    EXPECT_ILLEGAL_TVAL 1b
    CHECK 8             /* write to a read-only CSR (csrrw x0, cycle, x0) */
    la tp, 2f
1:  .word 0xc0001073
    j fail
2:  EXPECT s9, CAUSE_ILLEGAL
    EXPECT_ILLEGAL_TVAL 1b
    CHECK 9             /* MRET and SRET from U; MRET from S */
    ENTER_MODE PRV_U, 1f
1:  la tp, 3f
2:  mret
    j fail
3:  EXPECT s9, CAUSE_ILLEGAL
    EXPECT_ILLEGAL_TVAL 2b
    la a0, 2b
    EXPECT_EQ s11, a0
    MUST_TRAP CAUSE_ILLEGAL, sret
    BACK_TO_M
    ENTER_MODE PRV_S, 1f
1:  MUST_TRAP_AT CAUSE_ILLEGAL, mret
    BACK_TO_M
    CHECK 10            /* an instruction that traps does not write rd */
    li a0, 0x1234
    li a1, UNMAPPED_ADDR
    la tp, 1f
    ld a0, 0(a1)
    j fail
1:  EXPECT a0, 0x1234

    /* ---- JALR: bit 0 of the target is cleared; no misaligned-fetch trap with C ---- */
    CHECK 11
    la a1, 2f
    addi a1, a1, 1
    jalr ra, 0(a1)
    j fail
2:  la a1, 3f
    jalr ra, 3(a1)       /* target 3f + 3 -> 3f + 2: 2-byte aligned, legal with C */
    j fail
    ALIGN4
3:  .2byte 0x9002       /* c.ebreak: must be skipped */
    addi a0, zero, 11    /* 4-byte instruction at 3f + 2 */
    EXPECT a0, 11
    j 4f
    ALIGN4
4:

    /* ---- MRET / SRET ---- */
    CHECK 12            /* MRET: MIE <- MPIE (1), MPIE <- 1, MPP <- U */
    li a0, MSTATUS_MPP | MSTATUS_MPIE
    csrs mstatus, a0
    csrci mstatus, MSTATUS_MIE
    la a0, 1f
    csrw mepc, a0
    mret
    j fail
1:  csrr a1, mstatus
    csrci mstatus, MSTATUS_MIE
    EXPECT_MASKED a1, MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP, MSTATUS_MIE | MSTATUS_MPIE
    CHECK 13            /* MRET: MIE <- MPIE (0), MPIE <- 1 */
    li a0, MSTATUS_MPP
    csrs mstatus, a0
    li a0, MSTATUS_MPIE
    csrc mstatus, a0
    csrsi mstatus, MSTATUS_MIE
    la a0, 1f
    csrw mepc, a0
    mret
    j fail
1:  csrr a1, mstatus
    EXPECT_MASKED a1, MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP, MSTATUS_MPIE
    CHECK 14            /* MRET to S: priv 1.12 clears MPRV; priv 1.11 (and QEMU 7.2) keeps
                           it.  Both accepted (README.md); MPP must read S at the next trap */
    li a0, MSTATUS_MPRV
    csrs mstatus, a0
    ENTER_MODE PRV_S, 1f
1:  BACK_TO_M
    EXPECT_MASKED s8, MSTATUS_MPP, MSTATUS_MPP_S
    li a0, MSTATUS_MPRV
    csrc mstatus, a0
    CHECK 15            /* SRET (S to S): SIE <- SPIE (1), SPIE <- 1, SPP <- U */
    ENTER_MODE PRV_S, 1f
1:  li a0, MSTATUS_SPP | MSTATUS_SPIE
    csrs sstatus, a0
    csrci sstatus, MSTATUS_SIE
    la a0, 2f
    csrw sepc, a0
    sret
    j fail
2:  csrr a1, sstatus
    csrci sstatus, MSTATUS_SIE
    EXPECT_MASKED a1, MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP, MSTATUS_SIE | MSTATUS_SPIE
    CHECK 16            /* SRET: SIE <- SPIE (0) */
    li a0, MSTATUS_SPP
    csrs sstatus, a0
    li a0, MSTATUS_SPIE
    csrc sstatus, a0
    csrsi sstatus, MSTATUS_SIE
    la a0, 2f
    csrw sepc, a0
    sret
    j fail
2:  csrr a1, sstatus
    EXPECT_MASKED a1, MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP, MSTATUS_SPIE
    CHECK 17            /* SRET to U (SPP = 0): now in U, where sstatus is illegal */
    li a0, MSTATUS_SPP
    csrc sstatus, a0
    la a0, 2f
    csrw sepc, a0
    sret
    j fail
2:  MUST_TRAP CAUSE_ILLEGAL, csrr a0, sstatus
    EXPECT_MASKED s8, MSTATUS_MPP, 0    /* the M handler saw a trap from U */
    BACK_TO_M

    /* ---- delegation ---- */
    CHECK 18            /* medeleg[8]: ECALL from U is taken in S: scause/sepc/stval/SPP/SPIE */
    li a0, 1 << CAUSE_ECALL_U
    csrw medeleg, a0
    csrr a1, medeleg
    EXPECT_EQ a0, a1
    csrsi mstatus, MSTATUS_SIE
    ENTER_MODE PRV_U, 1f
1:  la tp, 3f + RESUME_HANDLER_MODE       /* S handler: continue in S */
2:  ecall
    j fail
3:  EXPECT s9, CAUSE_ECALL_U
    la a0, 2b
    EXPECT_EQ s11, a0
    EXPECT s10, 0
    EXPECT_MASKED s8, MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE, MSTATUS_SPIE
    csrr a0, stvec
    la a1, strap_vector
    EXPECT_EQ a0, a1
    csrr a0, scause
    EXPECT a0, CAUSE_ECALL_U
    BACK_TO_M                          /* ECALL from S: not delegated */
    EXPECT s9, CAUSE_ECALL_S
    csrci mstatus, MSTATUS_SIE
    CHECK 19            /* the S handler's SRET returns to U */
    ENTER_MODE PRV_U, 1f
1:  la tp, 2f
    ecall                               /* to S, SRET back to U at 2f */
    j fail
2:  EXPECT s9, CAUSE_ECALL_U
    MUST_TRAP CAUSE_ILLEGAL, csrr a0, sscratch  /* in U: illegal, to M, back to U */
    la tp, 3f + RESUME_HANDLER_MODE
    ebreak                              /* not delegated: back to M */
    j fail
3:  EXPECT s9, CAUSE_BREAKPOINT
    CHECK 20            /* delegated illegal instruction from S stays in S (SPP = S) */
    li a0, (1 << CAUSE_ECALL_U) | (1 << CAUSE_ILLEGAL) | (1 << CAUSE_BREAKPOINT)
    csrw medeleg, a0
    ENTER_MODE PRV_S, 1f
1:  la tp, 3f + RESUME_HANDLER_MODE
2:  csrr a0, mstatus
    j fail
3:  EXPECT s9, CAUSE_ILLEGAL
    la a0, 2b
    EXPECT_EQ s11, a0
    EXPECT_MASKED s8, MSTATUS_SPP, MSTATUS_SPP
    BACK_TO_M
    CHECK 21            /* traps in M are never delegated */
    csrw sepc, zero
    csrw scause, zero
    la tp, 2f
1:  ebreak
    j fail
2:  EXPECT s9, CAUSE_BREAKPOINT
    la a0, 1b
    EXPECT_EQ a0, s11
    csrr a1, sepc
    EXPECT a1, 0
    csrr a1, scause
    EXPECT a1, 0
    csrw medeleg, zero

    /* ---- TW / TSR / TVM ---- */
    CHECK 22            /* TW = 1: WFI in S or U is illegal */
    li a0, MSTATUS_TW
    csrs mstatus, a0
    ENTER_MODE PRV_S, 1f
1:  MUST_TRAP_AT CAUSE_ILLEGAL, wfi
    BACK_TO_M
    ENTER_MODE PRV_U, 1f
1:  MUST_TRAP_AT CAUSE_ILLEGAL, wfi
    BACK_TO_M
    li a0, MSTATUS_TW
    csrc mstatus, a0
    CHECK 23            /* TSR = 1: SRET in S is illegal */
    li a0, MSTATUS_TSR
    csrs mstatus, a0
    ENTER_MODE PRV_S, 1f
1:  la a0, 2f
    csrw sepc, a0
    MUST_TRAP_AT CAUSE_ILLEGAL, sret
    BACK_TO_M
    li a0, MSTATUS_TSR
    csrc mstatus, a0
    j 3f
2:  j fail
3:
    CHECK 24            /* TVM = 1: satp and SFENCE.VMA in S are illegal (not in M) */
    li a0, MSTATUS_TVM
    csrs mstatus, a0
    csrr a0, satp
    sfence.vma
    ENTER_MODE PRV_S, 1f
1:  MUST_TRAP_AT CAUSE_ILLEGAL, csrr a0, satp
    MUST_TRAP_AT CAUSE_ILLEGAL, csrw satp, zero
    MUST_TRAP_AT CAUSE_ILLEGAL, sfence.vma
    MUST_TRAP_AT CAUSE_ILLEGAL, sfence.vma a0, zero
    BACK_TO_M
    li a0, MSTATUS_TVM
    csrc mstatus, a0
    CHECK 25            /* TVM = 0: allowed in S */
    ENTER_MODE PRV_S, 1f
1:  csrr a0, satp
    csrw satp, zero
    sfence.vma
    BACK_TO_M

    /* ---- access faults (mtval = the address) ---- */
    CHECK 26            /* load */
    li a1, UNMAPPED_ADDR
    MUST_TRAP_AT CAUSE_LOAD_ACCESS, ld a0, 0(a1)
    EXPECT s10, UNMAPPED_ADDR
    CHECK 27            /* load, byte address inside */
    MUST_TRAP CAUSE_LOAD_ACCESS, lbu a0, 3(a1)
    EXPECT s10, UNMAPPED_ADDR + 3
    CHECK 28            /* store */
    MUST_TRAP_AT CAUSE_STORE_ACCESS, sw a0, 8(a1)
    EXPECT s10, UNMAPPED_ADDR + 8
    CHECK 29            /* AMO: store/AMO access fault (7).  QEMU 7.2 reports a load access
                           fault (5) for AMOs; tolerated (README.md) */
    la tp, 2f
    amoadd.d a0, a0, (a1)
    j fail
2:  li t6, CAUSE_STORE_ACCESS
    beq s9, t6, 3f
    EXPECT s9, CAUSE_LOAD_ACCESS
3:  EXPECT s10, UNMAPPED_ADDR
    CHECK 30            /* fetch: cause 1, mepc = mtval = target */
    la tp, 2f
    jalr ra, 0(a1)
    j fail
2:  EXPECT s9, CAUSE_FETCH_ACCESS
    EXPECT s10, UNMAPPED_ADDR
    EXPECT s11, UNMAPPED_ADDR
    CHECK 31            /* fetch and load faults from U and S are taken in M */
    ENTER_MODE PRV_U, 1f
1:  li a1, UNMAPPED_ADDR + 0x100
    la tp, 2f + RESUME_HANDLER_MODE
    jr a1
2:  EXPECT s9, CAUSE_FETCH_ACCESS
    EXPECT s10, UNMAPPED_ADDR + 0x100
    EXPECT_MASKED s8, MSTATUS_MPP, 0
    ENTER_MODE PRV_S, 1f
1:  li a1, UNMAPPED_ADDR
    MUST_TRAP CAUSE_LOAD_ACCESS, lw a0, 4(a1)
    EXPECT s10, UNMAPPED_ADDR + 4
    MUST_TRAP CAUSE_STORE_ACCESS, sd a0, 16(a1)
    EXPECT s10, UNMAPPED_ADDR + 16
    BACK_TO_M
    CHECK 32            /* far outside RAM too (top of the 39-bit physical space) */
    li a1, 0x7ffffff000
    MUST_TRAP CAUSE_LOAD_ACCESS, ld a0, 0(a1)
    EXPECT s10, 0x7ffffff000

    TEST_END
