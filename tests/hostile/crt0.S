/* Start-up code and trap entry of the hostile-guest tests (M-mode, no paging, no interrupts).
 *
 * _start clears .bss, sets up the stack and calls main(); main's return value is reported
 * through the test device (0 = pass, n = check n failed; see hostile.h).
 *
 * Traps: a guarded access (guard_load/guard_store) arms `trap_resume`; a trap while it is armed
 * resumes there with a1 = mcause + 1 (interrupts have bit 63 set, so a1 is never 0). Any other
 * trap is unexpected and goes to trap_unexpected(mcause, mepc, mtval) in hostile.c on its own
 * stack, which reports it and never returns. */
    .option nopic
    .section .text.init, "ax", @progbits
    .globl _start
_start:
    csrr t0, mhartid        /* one hart runs the test; others (--cpus N) park */
    bnez t0, 4f
    la t0, trap_entry
    csrw mtvec, t0
    csrw mie, zero
    csrw mideleg, zero
    csrw medeleg, zero
    csrw satp, zero
    li t0, 0x1888           /* MIE, MPIE, MPP: interrupts off, MPP = U */
    csrc mstatus, t0
    li t0, 0x2000           /* FS = Initial: the compiler may use FP registers */
    csrs mstatus, t0
    csrwi fcsr, 0
    la sp, __stack_top
    la t0, __bss_start
    la t1, __bss_end
1:  bgeu t0, t1, 2f
    sd zero, 0(t0)
    addi t0, t0, 8
    j 1b
2:  call main
    call hostile_exit
3:  wfi
    j 3b
4:  csrw mie, zero
    wfi
    j 4b

/* ---- trap entry ---- */
    .balign 4
trap_entry:
    csrw mscratch, t0
    la t0, trap_resume
    ld t0, 0(t0)
    beqz t0, 1f
    csrw mepc, t0
    la t0, trap_resume
    sd zero, 0(t0)
    csrr a1, mcause
    addi a1, a1, 1
    csrr t0, mscratch
    mret
1:  la sp, __trap_stack_top
    csrr a0, mcause
    csrr a1, mepc
    csrr a2, mtval
    call trap_unexpected
2:  wfi
    j 2b

/* ---- guarded accesses ----
 * long guard_load(uintptr_t addr, unsigned size, uint64_t *val)
 * long guard_store(uintptr_t addr, unsigned size, uint64_t val)
 * Access addr with a load/store of size 1, 2, 4 or 8 bytes. Return 0 when it completed (and
 * *val holds the zero-extended value), or mcause + 1 when it trapped. */
    .text
    .globl guard_load
guard_load:
    la t0, 9f
    la t1, trap_resume
    sd t0, 0(t1)
    li t2, 1
    beq a1, t2, 1f
    li t2, 2
    beq a1, t2, 2f
    li t2, 4
    beq a1, t2, 4f
    ld t3, 0(a0)
    j 5f
1:  lbu t3, 0(a0)
    j 5f
2:  lhu t3, 0(a0)
    j 5f
4:  lwu t3, 0(a0)
5:  sd zero, 0(t1)
    sd t3, 0(a2)
    li a0, 0
    ret
    .balign 4
9:  mv a0, a1
    ret

    .globl guard_store
guard_store:
    la t0, 9f
    la t1, trap_resume
    sd t0, 0(t1)
    li t2, 1
    beq a1, t2, 1f
    li t2, 2
    beq a1, t2, 2f
    li t2, 4
    beq a1, t2, 4f
    sd a2, 0(a0)
    j 5f
1:  sb a2, 0(a0)
    j 5f
2:  sh a2, 0(a0)
    j 5f
4:  sw a2, 0(a0)
5:  fence iorw, iorw
    sd zero, 0(t1)
    li a0, 0
    ret
    .balign 4
9:  mv a0, a1
    ret

    .bss
    .balign 8
    .globl trap_resume
trap_resume:
    .dword 0
    .balign 16
__trap_stack:
    .skip 4096
__trap_stack_top:
