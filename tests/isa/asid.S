/* ASIDs in satp (privileged 20211203 §4.1.11, §4.2.1 SFENCE.VMA): the ASID field holds 16
 * bits (ASIDLEN = 16, what Linux probes by writing all ones), the ASID never changes which
 * page table is walked, and what SFENCE.VMA guarantees with an ASID: after a PTE change,
 * "sfence.vma x0, asid" makes that address space see the new PTE, and "sfence.vma x0, x0"
 * makes every one see it, global mappings included, and "sfence.vma va, x0" makes every
 * one see the new PTE of va. Whether a stale translation is still used without the fence is
 * left open by the spec and not tested. */
#include "isa.h"

#define PT_ROOT  0x80400000
#define PT_L1    0x80401000     /* VA 0x4000_0000 .. 0x7fff_ffff */
#define PT_L0    0x80402000     /* VA 0x4000_0000 .. 0x401f_ffff */
#define PA(i)    (0x80500000 + (i) * 0x1000)   /* page i holds MARK(i) */
#define MARK(i)  (0x33330000 + (i))
#define VA_P     0x40050000     /* L0[0x50]: a non-global page (TLB slot 0x50, clear of the
                                   code and page-table pages, so only a fence drops it) */
#define VA_G     0x40051000     /* L0[0x51]: a global page */
#define ASID_SH  44
#define SATP(asid) ((8 << 60) | ((asid) << ASID_SH) | (PT_ROOT >> 12))

    TEST_BEGIN
    /* Root: the RAM gigapage (global, RWX) keeps this code running under every ASID. */
    SV39_TABLES PT_ROOT, PT_L1, PT_L0
    SETPTE PT_L0, 0x50, PTE(PA(0), PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
    SETPTE PT_L0, 0x51, PTE(PA(0), PTE_V | PTE_R | PTE_W | PTE_G | PTE_A | PTE_D)
    li a0, PA(0)
    li a1, MARK(0)
    li a2, 4
2:  sd a1, 0(a0)
    li t0, 0x1000
    add a0, a0, t0
    addi a1, a1, 1
    addi a2, a2, -1
    bnez a2, 2b
    sfence.vma

    CHECK 1             /* ASIDLEN = 16: all ones written to the field read back */
    li a0, SATP(0xffff)
    csrw satp, a0
    csrr a1, satp
    EXPECT_EQ a1, a0
    li a0, (8 << 60) | (0x1ffff << ASID_SH) | (PT_ROOT >> 12)  /* bit 60 is MODE's */
    csrw satp, a0
    csrr a1, satp
    li t0, 0xffff << ASID_SH
    and a1, a1, t0
    EXPECT_EQ a1, t0
    csrw satp, zero
    sfence.vma

    CHECK 2             /* the ASID does not change the walk: ASID 1 and 0xffff both see
                           the same table */
    li s2, SATP(1)
    li s3, SATP(0xffff)
    li s4, 1
    li s5, 0xffff
    ENTER_MODE PRV_S, 1f
1:  csrw satp, s2
    li a1, VA_P
    ld a0, 0(a1)
    EXPECT a0, MARK(0)
    csrw satp, s3
    ld a0, 0(a1)
    EXPECT a0, MARK(0)
    li a1, VA_G
    ld a0, 0(a1)
    EXPECT a0, MARK(0)

    CHECK 3             /* PTE changed; "sfence.vma x0, 1" and ASID 1 sees the new page */
    li a2, PT_L0 + 8 * 0x50
    li a3, PTE(PA(1), PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
    sd a3, 0(a2)
    sfence.vma zero, s4
    csrw satp, s2
    li a1, VA_P
    ld a0, 0(a1)
    EXPECT a0, MARK(1)
    CHECK 4             /* ... and "sfence.vma x0, 0xffff" for ASID 0xffff */
    sfence.vma zero, s5
    csrw satp, s3
    ld a0, 0(a1)
    EXPECT a0, MARK(1)
    CHECK 5             /* an address-and-ASID fence: ASID 1, VA_P only */
    li a3, PTE(PA(2), PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
    sd a3, 0(a2)
    csrw satp, s2
    sfence.vma a1, s4
    ld a0, 0(a1)
    EXPECT a0, MARK(2)

    CHECK 6             /* a global PTE changed: "sfence.vma x0, x0" is seen under every
                           ASID */
    li a2, PT_L0 + 8 * 0x51
    li a3, PTE(PA(3), PTE_V | PTE_R | PTE_W | PTE_G | PTE_A | PTE_D)
    sd a3, 0(a2)
    sfence.vma
    li a1, VA_G
    ld a0, 0(a1)
    EXPECT a0, MARK(3)
    csrw satp, s3
    ld a0, 0(a1)
    EXPECT a0, MARK(3)

    CHECK 7             /* an address fence with rs2 = x0 reaches every address space, also
                           one not live: ASID 1's translation of VA_P, cached before the
                           switch to ASID 0xffff, is dropped by a fence run under 0xffff */
    li a1, VA_P
    ld a0, 0(a1)
    EXPECT a0, MARK(2)
    csrw satp, s2
    ld a0, 0(a1)
    EXPECT a0, MARK(2)
    csrw satp, s3
    li a2, PT_L0 + 8 * 0x50
    li a3, PTE(PA(0), PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
    sd a3, 0(a2)
    sfence.vma a1, zero
    ld a0, 0(a1)
    EXPECT a0, MARK(0)
    csrw satp, s2
    ld a0, 0(a1)
    EXPECT a0, MARK(0)
    BACK_TO_M
    csrw satp, zero
    sfence.vma

    TEST_END
