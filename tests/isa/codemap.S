/* Code whose page is mapped again (privileged 20211203 §4.2.1): after a PTE of an executable
 * page changes and "sfence.vma va" runs, a fetch from va runs the new page's code, also from a
 * call site that has run many times (hot enough that the JIT translated it and chained its
 * call to the old code), and a fence of another page, or of no page at all but data, leaves
 * such a call running the right code. The engines keep the chains between blocks across page
 * fences that cannot affect them (mmu.c), so these are the cases that must drop them; a
 * chain recorded in one privilege mode must not hold in another that translates differently,
 * nor one recorded in one address space (ASID) or translation mode in another. */
#include "isa.h"

#define CODE (PTE_V | PTE_R | PTE_X | PTE_A)
#define DATA (PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)

#define PT_ROOT  0x80400000
#define PT_L1    0x80401000     /* VA 0x4000_0000 .. 0x7fff_ffff */
#define PT_L0    0x80402000     /* VA 0x4000_0000 .. 0x401f_ffff */
#define PA(i)    (0x80500000 + (i) * 0x1000)   /* page i: "li a0, i; ret" */
#define VA_C     0x40060000     /* L0[0x60]: the code page that is mapped again */
#define VA_D     0x40070000     /* L0[0x70]: a data page */
#define VA_E     0x40068000     /* L0[0x68]: a second code page, called from the same site */
#define VA_G     0x40064000     /* L0[0x64]: checks 12 and 13, a code page mapped global */
#define SATP_39  ((8 << 60) | (PT_ROOT >> 12))
#define PT_L1R   0x80403000     /* check 9: the RAM gigapage in megapages */
#define MEGA     (PTE_V | PTE_R | PTE_W | PTE_X | PTE_G | PTE_A | PTE_D)
#define VA_T     0x80600000     /* check 9: megapage 3, physical in M ... */
#define PA_T_S   0x80800000     /* ... and mapped here in S */
#define PT_ROOT2 0x80404000     /* check 11: a second address space, ASID 2 ... */
#define PT_L1_2  0x80405000
#define PT_L0_2  0x80406000
#define SATP_A   ((8 << 60) | (1 << 44) | (PT_ROOT >> 12))     /* ... and the first, ASID 1 */
#define SATP_B   ((8 << 60) | (2 << 44) | (PT_ROOT2 >> 12))
#define LI_A0(i) (0x00000513 | ((i) << 20))
#define RET      0x00008067
#define TURNS    40             /* calls per step: well past the JIT's threshold of 8 */

/* Calls VA_C TURNS times from one call site (call_va_c, below: the same site every time, so
 * its chain to the callee is what each step tests); each call must return \want in a0. */
.macro CALLS want
    li s6, \want
    jal ra, call_va_c
.endm

/* Under ASID 2, where VA_C is page 3, then under ASID 1 again, where it is page 1 (checks 11
 * and 13), switched by satp alone. */
.macro ASID_ROUND
    li a0, SATP_B
    csrw satp, a0
    CALLS 3
    li a0, SATP_A
    csrw satp, a0
    CALLS 1
.endm

/* The same for the code at \va, from another call site (call_at). */
.macro CALLS_AT va, want
    li s6, \want
    li a2, \va
    jal ra, call_at
.endm

/* Calls VA_C and VA_E in turn, TURNS times each, from one call site (call_alt): VA_C must
 * return \want and VA_E s4. */
.macro CALLS_ALT want
    li s6, \want
    jal ra, call_alt
.endm

    TEST_BEGIN
    SV39_TABLES PT_ROOT, PT_L1, PT_L0
    SETPTE PT_L0, 0x60, PTE(PA(1), CODE)
    SETPTE PT_L0, 0x70, PTE(PA(0), DATA)
    SETPTE PT_L0, 0x68, PTE(PA(4), CODE)
    /* Pages 1 to 4 return their number. */
    li a0, PA(1)
    li a2, 1
    li a3, RET
2:  li a1, LI_A0(0)
    slli t0, a2, 20
    or a1, a1, t0
    sw a1, 0(a0)
    sw a3, 4(a0)
    li t0, 0x1000
    add a0, a0, t0
    addi a2, a2, 1
    li t0, 5
    bltu a2, t0, 2b
    fence.i
    li a0, SATP_39
    csrw satp, a0
    sfence.vma
    ENTER_MODE PRV_S, 1f
1:
    CHECK 1             /* the first mapping's code, from a hot call site */
    CALLS 1

    CHECK 2             /* fences of a data page, and stores to it, change nothing */
    li s3, VA_D
    li s4, 4
3:  sd s4, 0(s3)
    sfence.vma s3, zero
    CALLS 1
    addi s4, s4, -1
    bnez s4, 3b

    CHECK 3             /* VA_C mapped to page 2, "sfence.vma VA_C": the same call site
                           runs page 2's code */
    SETPTE PT_L0, 0x60, PTE(PA(2), CODE)
    li a1, VA_C
    sfence.vma a1, zero
    CALLS 2

    CHECK 4             /* mapped again, fenced by VA_C and ASID 0 (the live one) */
    SETPTE PT_L0, 0x60, PTE(PA(3), CODE)
    li a1, VA_C
    li s5, 0
    sfence.vma a1, s5
    CALLS 3

    CHECK 5             /* and back to page 1 with a fence of every page */
    SETPTE PT_L0, 0x60, PTE(PA(1), CODE)
    sfence.vma
    CALLS 1

    /* One call site (one block, one jalr) whose callee alternates between VA_C and VA_E, so
     * that its chain entry names the other callee half of the time. */
    CHECK 6
    li s4, 4
    CALLS_ALT 1

    CHECK 7             /* VA_C mapped to page 2 and fenced: the site runs it */
    SETPTE PT_L0, 0x60, PTE(PA(2), CODE)
    li a1, VA_C
    sfence.vma a1, zero
    CALLS_ALT 2

    CHECK 8             /* and VA_E to page 3 */
    SETPTE PT_L0, 0x68, PTE(PA(3), CODE)
    li a1, VA_E
    sfence.vma a1, zero
    li s4, 3
    CALLS_ALT 2

    BACK_TO_M

    /* One call site runs in M, then in S at the same pc, to a target pc that S maps to other
     * code: the chain the site's jalr recorded in M (physical fetch) must not hold in S, though
     * no fence or satp write comes between. */
    CHECK 9
    li a0, PT_L1R       /* the RAM gigapage as 512 identity megapages ... */
    li a1, PTE(0x80000000, MEGA)
    li a2, 512
    li t2, PTE(0x200000, 0)
4:  sd a1, 0(a0)
    addi a0, a0, 8
    add a1, a1, t2
    addi a2, a2, -1
    bnez a2, 4b
    SETPTE PT_L1R, 3, PTE(PA_T_S, MEGA)    /* ... but VA_T's, which S sees at PA_T_S */
    SETPTE PT_ROOT, 2, PTE(PT_L1R, PTE_V)
    li a0, VA_T
    li a1, LI_A0(5)
    sw a1, 0(a0)
    li a1, RET
    sw a1, 4(a0)
    li a0, PA_T_S
    li a1, LI_A0(6)
    sw a1, 0(a0)
    li a1, RET
    sw a1, 4(a0)
    fence.i
    sfence.vma
    li s6, 5
    jal ra, call_t      /* M: VA_T is physical */
    ENTER_MODE PRV_S, 5f
5:  li s6, 6
    jal ra, call_t
    BACK_TO_M

    /* A change of translation mode takes effect at once, with no fence (§4.1.11), for a
     * hot call site's chain too, also into a page mapped global (the same in every address
     * space, which a hart may keep across satp writes of one mode): VA_T is PA_T_S's code
     * in S under Sv39, and its own in Bare. */
    CHECK 10
    ENTER_MODE PRV_S, 6f
6:  li s6, 6
    jal ra, call_t
    csrw satp, zero
    li s6, 5
    jal ra, call_t
    li a0, SATP_39
    csrw satp, a0
    li s6, 6
    jal ra, call_t
    BACK_TO_M

    /* Chains into pages not mapped global do not hold across a switch of address space:
     * VA_C is page 1 under ASID 1 and page 3 under ASID 2, and satp alone switches. */
    CHECK 11
    SV39_TABLES PT_ROOT2, PT_L1_2, PT_L0_2
    SETPTE PT_L0_2, 0x60, PTE(PA(3), CODE)
    SETPTE PT_L0, 0x60, PTE(PA(1), CODE)
    li a0, SATP_A
    csrw satp, a0
    sfence.vma
    ENTER_MODE PRV_S, 7f
7:  CALLS 1
    ASID_ROUND
    BACK_TO_M

    /* A chain into a page mapped global may outlive satp switches and fences by ASID (those
     * do not order accesses through global mappings, §4.2.1), but not a fence of its page or
     * of every page with rs2 = x0. */
    CHECK 12
    SETPTE PT_L0, 0x64, PTE(PA(1), CODE | PTE_G)
    SETPTE PT_L0_2, 0x64, PTE(PA(1), CODE | PTE_G)
    sfence.vma
    ENTER_MODE PRV_S, 8f
8:  CALLS_AT VA_G, 1
    li a0, SATP_B       /* the same global mapping in the other address space */
    csrw satp, a0
    CALLS_AT VA_G, 1
    li a0, SATP_A
    csrw satp, a0
    CALLS_AT VA_G, 1
    SETPTE PT_L0, 0x64, PTE(PA(2), CODE | PTE_G)
    li a1, VA_G
    sfence.vma a1, zero
    CALLS_AT VA_G, 2
    SETPTE PT_L0, 0x64, PTE(PA(3), CODE | PTE_G)
    sfence.vma
    CALLS_AT VA_G, 3
    BACK_TO_M

    /* S-mode code that keeps calling pages not mapped global (a kernel that marks nothing
     * global): past the hart's limit of such calls (RV_S_NONGLOBAL_MAX, 1024) its chains go
     * by address space, as U's do, and checks 11, 3 and 4 must hold there too, as well as a
     * call into a global page. */
    CHECK 13
    ENTER_MODE PRV_S, 9f
9:  li s3, 40           /* 40 x TURNS calls of VA_C */
10: CALLS 1
    addi s3, s3, -1
    bnez s3, 10b
    ASID_ROUND
    SETPTE PT_L0, 0x60, PTE(PA(2), CODE)
    li a1, VA_C
    sfence.vma a1, zero
    CALLS 2
    SETPTE PT_L0, 0x60, PTE(PA(4), CODE)
    li a1, VA_C
    li s5, 1            /* ASID 1, the live one */
    sfence.vma a1, s5
    CALLS 4
    SETPTE PT_L0, 0x64, PTE(PA(4), CODE | PTE_G)
    li a1, VA_G
    sfence.vma a1, zero
    CALLS_AT VA_G, 4
    BACK_TO_M
    csrw satp, zero
    sfence.vma
    TEST_END

call_at:
    mv s7, ra
    li s2, TURNS
1:  jalr ra, 0(a2)
    EXPECT_EQ a0, s6
    addi s2, s2, -1
    bnez s2, 1b
    jr s7

call_t:
    mv s7, ra
    li s2, TURNS
1:  li a1, VA_T
    jalr ra, 0(a1)
    EXPECT_EQ a0, s6
    addi s2, s2, -1
    bnez s2, 1b
    jr s7

call_alt:
    mv s7, ra
    li s2, 2 * TURNS
1:  andi t0, s2, 1    /* one block, no branch before the jalr: odd turns call VA_E */
    neg t0, t0
    li a1, VA_C
    li t2, VA_E ^ VA_C
    and t2, t2, t0
    xor a1, a1, t2
    xor t1, s6, s4
    and t1, t1, t0
    xor t1, t1, s6
    jalr ra, 0(a1)
    EXPECT_EQ a0, t1
    addi s2, s2, -1
    bnez s2, 1b
    jr s7

call_va_c:
    mv s7, ra
    li s2, TURNS
1:  li a1, VA_C
    jalr ra, 0(a1)
    EXPECT_EQ a0, s6
    addi s2, s2, -1
    bnez s2, 1b
    jr s7
