/* Zicsr and the basic machine CSRs: CSRRW/RS/RC (+I) old-value semantics, rs1=x0 / uimm=0
 * forms that must not write (no trap on read-only CSRs), mscratch/sscratch, misa, mhartid,
 * vendor/arch/impl ids, cycle/time/instret (monotonic, time tracks CLINT mtime), counter
 * enables (mcounteren for S and U, scounteren for U), writes to read-only CSRs, M CSRs from
 * S/U, S CSRs from U, unimplemented CSR numbers, mepc/sepc bit 0. */
#include "isa.h"

    TEST_BEGIN

    CHECK 1             /* CSRRW returns the old value */
    li a0, 0x0123456789abcdef
    csrw mscratch, a0
    li a1, 0xfedcba9876543210
    csrrw a2, mscratch, a1
    EXPECT_EQ a2, a0
    csrr a3, mscratch
    EXPECT_EQ a3, a1
    CHECK 2             /* CSRRS / CSRRC */
    li a0, 0xf0f0
    csrw mscratch, a0
    li a1, 0x0ff0
    csrrs a2, mscratch, a1
    EXPECT a2, 0xf0f0
    csrr a2, mscratch
    EXPECT a2, 0xfff0
    li a1, 0xf00f
    csrrc a2, mscratch, a1
    EXPECT a2, 0xfff0
    csrr a2, mscratch
    EXPECT a2, 0x0ff0
    CHECK 3             /* immediate forms: 5-bit zero-extended */
    csrrwi a2, mscratch, 31
    EXPECT a2, 0x0ff0
    csrr a2, mscratch
    EXPECT a2, 31
    csrrci a2, mscratch, 0x15
    EXPECT a2, 31
    csrrsi a2, mscratch, 0x10
    EXPECT a2, 0x0a
    csrr a2, mscratch
    EXPECT a2, 0x1a
    CHECK 4             /* rs1 = x0 / uimm = 0: no write */
    li a0, -1
    csrw mscratch, a0
    csrrs a2, mscratch, x0
    csrrc a2, mscratch, x0
    csrrsi a2, mscratch, 0
    csrrci a2, mscratch, 0
    csrr a2, mscratch
    EXPECT a2, -1
    CHECK 5             /* ... so they do not trap on read-only CSRs */
    csrrs a2, mhartid, x0
    csrrc a2, mhartid, x0
    csrrsi a2, mvendorid, 0
    csrrci a2, marchid, 0
    csrrs a2, cycle, x0
    csrrc a2, time, x0
    csrrsi a2, instret, 0
    CHECK 6             /* rd = x0 still writes */
    csrrw x0, mscratch, zero
    csrr a2, mscratch
    EXPECT a2, 0
    CHECK 7             /* sscratch: full 64 bits */
    li a0, 0x8000000000000001
    csrw sscratch, a0
    csrr a1, sscratch
    EXPECT_EQ a0, a1

    CHECK 8             /* misa: MXL = 2 (RV64) and I M A F D C S U */
    csrr a0, misa
    srli a1, a0, 62
    EXPECT a1, 2
    li a2, (1 << 8) | (1 << 12) | (1 << 0) | (1 << 5) | (1 << 3) | (1 << 2) | (1 << 18) | (1 << 20)
    and a1, a0, a2
    EXPECT_EQ a1, a2
    CHECK 9             /* mhartid = 0 (and a0 at reset was the hart id: not kept) */
    csrr a0, mhartid
    EXPECT a0, 0
    CHECK 10            /* ids readable (any value) */
    csrr a0, mvendorid
    csrr a0, marchid
    csrr a0, mimpid

    CHECK 11            /* instret strictly increases, cycle and time never go back */
    rdinstret a0
    rdcycle a1
    rdtime a2
    nop
    nop
    rdinstret a3
    rdcycle a4
    rdtime a5
    bleu a3, a0, 1f
    bltu a4, a1, 1f
    bltu a5, a2, 1f
    j 2f
1:  j fail
2:  csrr a0, minstret
    csrr a1, mcycle
    bltu a0, a3, 1b
    bltu a1, a4, 1b
    CHECK 12            /* time advances (bounded wait) */
    rdtime a0
    li a1, 5000000
1:  rdtime a2
    bne a2, a0, 2f
    addi a1, a1, -1
    bnez a1, 1b
    j fail
2:
    CHECK 13            /* time CSR is the CLINT's mtime: mtime1 <= time <= mtime2 */
    li a0, CLINT_MTIME
    ld a1, 0(a0)
    rdtime a2
    ld a3, 0(a0)
    EXPECT_LEU a1, a2
    EXPECT_LEU a2, a3
    CHECK 14            /* minstret / mcycle are writable in M (bound is loose: QEMU 7.2
                           counts both in host ticks) */
    li a0, 0x100000000000
    csrw minstret, a0
    csrr a1, minstret
    EXPECT_LEU a0, a1
    li a2, 0x100100000000
    EXPECT_LEU a1, a2
    csrw mcycle, a0
    csrr a1, mcycle
    EXPECT_LEU a0, a1
    li a2, 0x100100000000
    EXPECT_LEU a1, a2

    /* ---- counter enables ---- */
    CHECK 15            /* mcounteren = 0: S-mode reads of cycle/time/instret are illegal */
    csrw mcounteren, zero
    csrw scounteren, zero
    ENTER_MODE PRV_S, 1f
1:  MUST_TRAP CAUSE_ILLEGAL, rdcycle a0
    MUST_TRAP CAUSE_ILLEGAL, rdtime a0
    MUST_TRAP CAUSE_ILLEGAL, rdinstret a0
    BACK_TO_M
    CHECK 16            /* ... and U-mode ones */
    ENTER_MODE PRV_U, 1f
1:  MUST_TRAP CAUSE_ILLEGAL, rdcycle a0
    MUST_TRAP CAUSE_ILLEGAL, rdtime a0
    MUST_TRAP CAUSE_ILLEGAL, rdinstret a0
    BACK_TO_M
    CHECK 17            /* mcounteren = 7, scounteren = 0: S reads, U still traps */
    li a0, 7
    csrw mcounteren, a0
    ENTER_MODE PRV_S, 1f
1:  rdcycle a0
    rdtime a0
    rdinstret a0
    BACK_TO_M
    ENTER_MODE PRV_U, 1f
1:  MUST_TRAP CAUSE_ILLEGAL, rdcycle a0
    MUST_TRAP CAUSE_ILLEGAL, rdtime a0
    MUST_TRAP CAUSE_ILLEGAL, rdinstret a0
    BACK_TO_M
    CHECK 18            /* both set: U reads work */
    li a0, 7
    csrw scounteren, a0
    ENTER_MODE PRV_U, 1f
1:  rdcycle a0
    rdtime a1
    rdinstret a2
    BACK_TO_M
    CHECK 19            /* bits are per counter: only TM (bit 1) enabled */
    li a0, 2
    csrw mcounteren, a0
    csrw scounteren, a0
    ENTER_MODE PRV_U, 1f
1:  rdtime a0
    MUST_TRAP CAUSE_ILLEGAL, rdcycle a0
    MUST_TRAP CAUSE_ILLEGAL, rdinstret a0
    BACK_TO_M
    csrw mcounteren, zero
    csrw scounteren, zero

    /* ---- illegal CSR accesses ---- */
    CHECK 20            /* writes to read-only CSRs (csr[11:10] = 3) */
    MUST_TRAP CAUSE_ILLEGAL, csrw mhartid, zero
    MUST_TRAP CAUSE_ILLEGAL, csrw mvendorid, zero
    MUST_TRAP CAUSE_ILLEGAL, csrrwi a0, marchid, 1
    MUST_TRAP CAUSE_ILLEGAL, csrw cycle, zero
    MUST_TRAP CAUSE_ILLEGAL, csrsi time, 1
    li a1, 1
    MUST_TRAP CAUSE_ILLEGAL, csrrc a0, instret, a1
    MUST_TRAP CAUSE_ILLEGAL, csrrs a0, mimpid, a1
    CHECK 21            /* M-mode CSRs from S */
    ENTER_MODE PRV_S, 1f
1:  MUST_TRAP CAUSE_ILLEGAL, csrr a0, mstatus
    MUST_TRAP CAUSE_ILLEGAL, csrr a0, mscratch
    MUST_TRAP CAUSE_ILLEGAL, csrw mtvec, zero
    MUST_TRAP CAUSE_ILLEGAL, csrr a0, mhartid
    MUST_TRAP CAUSE_ILLEGAL, csrr a0, mcycle
    csrr a0, sstatus                /* S CSRs are fine */
    csrr a0, sscratch
    BACK_TO_M
    CHECK 22            /* S- and M-mode CSRs from U */
    ENTER_MODE PRV_U, 1f
1:  MUST_TRAP CAUSE_ILLEGAL, csrr a0, sstatus
    MUST_TRAP CAUSE_ILLEGAL, csrw sscratch, zero
    MUST_TRAP CAUSE_ILLEGAL, csrr a0, satp
    MUST_TRAP CAUSE_ILLEGAL, csrr a0, misa
    BACK_TO_M
    CHECK 23            /* unimplemented CSR numbers */
    MUST_TRAP CAUSE_ILLEGAL, csrr a0, 0x0ff
    MUST_TRAP CAUSE_ILLEGAL, csrw 0x4ff, zero
    MUST_TRAP CAUSE_ILLEGAL, csrr a0, 0x3ff
    CHECK 24            /* mtval on illegal CSR access: 0 or the instruction bits */
    la tp, 2f
1:  csrr a0, 0x0ff
    j fail
2:  beqz s10, 3f
    la a0, 1b
    lwu a0, 0(a0)
    EXPECT_EQ s10, a0
3:

    /* ---- xepc[0] is always zero (IALIGN = 16).  QEMU 7.2 keeps bit 0 as written, so
     * both read-backs are accepted; bit 1 must be kept (C is on) ---- */
    CHECK 25
    li a0, 0x80001003
    csrw mepc, a0
    csrr a1, mepc
    ori a1, a1, 1
    EXPECT a1, 0x80001003
    csrw sepc, a0
    csrr a1, sepc
    ori a1, a1, 1
    EXPECT a1, 0x80001003
    CHECK 26            /* sstatus is a view of mstatus */
    csrsi sstatus, MSTATUS_SIE
    csrr a0, mstatus
    EXPECT_MASKED a0, MSTATUS_SIE, MSTATUS_SIE
    csrci mstatus, MSTATUS_SIE
    csrr a0, sstatus
    EXPECT_MASKED a0, MSTATUS_SIE, 0
    li a0, MSTATUS_MPP | MSTATUS_MIE
    csrs mstatus, a0
    csrr a1, sstatus            /* M-only fields are invisible in sstatus */
    EXPECT_MASKED a1, MSTATUS_MPP | MSTATUS_MIE, 0
    csrc mstatus, a0

    TEST_END
