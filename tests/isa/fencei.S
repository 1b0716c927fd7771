/* Code written, then FENCE.I (unprivileged 20191213 ch. 3, "Zifencei"): after a hart stores
 * new instructions and runs fence.i, its fetches see them, also from a call site that has run
 * many times (hot enough that the JIT translated it and chained its call to the old code),
 * and whatever kind of store wrote them: a plain store through a mapping that the hart used
 * for data before the page held code, an AMO, SC, halfword and byte stores, a store
 * through another virtual address of the same page, and one through a mapping cached under
 * another address space (ASID) before the page held code. A fence.i after stores to data only
 * changes nothing.
 *
 * The engines keep decoded blocks and chains across a fence.i when no page holding code was
 * written (src/base/codewatch.h): each case here is a way a write could go unnoticed. Check
 * 12: a chain between two blocks of one page, which holds with no lookup of its target. */
#include "isa.h"

#define CODE (PTE_V | PTE_R | PTE_X | PTE_A)
#define DATA (PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)

#define PT_ROOT  0x80400000
#define PT_L1    0x80401000     /* VA 0x4000_0000 .. 0x7fff_ffff */
#define PT_L0    0x80402000     /* VA 0x4000_0000 .. 0x401f_ffff */
#define PAGE_A   0x80500000     /* code written in M-mode */
#define PAGE_D   0x80501000     /* data only */
#define PAGE_S   0x80502000     /* code written in S-mode through VA_W, run at VA_X */
#define PAGE_T   0x80503000     /* the same under two ASIDs */
#define VA_X     0x40060000     /* L0[0x60]: PAGE_S, executable */
#define VA_W     0x40070000     /* L0[0x70]: PAGE_S, writable */
#define VA_TX    0x40080000     /* L0[0x80]: PAGE_T, executable */
#define VA_TW    0x40090000     /* L0[0x90]: PAGE_T, writable */
#define SATP(asid) ((8 << 60) | ((asid) << 44) | (PT_ROOT >> 12))
#define LI_A0(i) (0x00000513 | ((i) << 20))
#define RET      0x00008067
#define J_8      0x0080006f     /* jal x0, 8 */
#define NOP      0x00000013
#define PAGE_L   0x80504000     /* check 12: a jump to code of the same page */
#define TURNS    40             /* calls per step: well past the JIT's threshold of 8 */

/* Calls the code at \addr TURNS times from one call site (hot_calls: the same site each time,
 * so its chain to the callee is what each step tests); each call must return \want. */
.macro CALLS addr, want
    li s5, \addr
    li s6, \want
    jal ra, hot_calls
.endm

/* Writes "li a0, \n; ret" at \addr with two word stores. */
.macro PUT_CODE addr, n
    li t0, \addr
    li t1, LI_A0(\n)
    sw t1, 0(t0)
    li t1, RET
    sw t1, 4(t0)
.endm

/* Stores to the page at \addr a few times: a mapping of it for writing is cached. */
.macro WARM addr
    li t0, \addr
    li t1, 8
1:  sd t1, 8(t0)
    addi t1, t1, -1
    bnez t1, 1b
.endm

    TEST_BEGIN

    CHECK 1             /* code stored through a mapping used for data before */
    WARM PAGE_A
    PUT_CODE PAGE_A, 1
    fence.i
    CALLS PAGE_A, 1

    CHECK 2             /* stored again, now that the page holds code */
    PUT_CODE PAGE_A, 2
    fence.i
    CALLS PAGE_A, 2

    CHECK 3             /* fence.i after stores to data only */
    WARM PAGE_D
    fence.i
    CALLS PAGE_A, 2

    CHECK 4             /* an AMO writes the first instruction */
    li t0, PAGE_A
    li t1, LI_A0(4)
    amoswap.w zero, t1, (t0)
    fence.i
    CALLS PAGE_A, 4

    CHECK 5             /* LR/SC writes it */
    li t0, PAGE_A
    li t1, LI_A0(5)
1:  lr.w t2, (t0)
    sc.w t2, t1, (t0)
    bnez t2, 1b
    fence.i
    CALLS PAGE_A, 5

    CHECK 6             /* a halfword store writes the immediate (li a0, 6 from 5) */
    li t0, PAGE_A + 2
    li t1, LI_A0(6) >> 16
    sh t1, 0(t0)
    fence.i
    CALLS PAGE_A, 6

    CHECK 7             /* a byte store writes the immediate's low bits (li a0, 7 from 6) */
    li t0, PAGE_A + 2
    lbu t1, 0(t0)
    ori t1, t1, 0x70
    sb t1, 0(t0)
    fence.i
    CALLS PAGE_A, 7

    SV39_TABLES PT_ROOT, PT_L1, PT_L0
    SETPTE PT_L0, 0x60, PTE(PAGE_S, CODE)
    SETPTE PT_L0, 0x70, PTE(PAGE_S, DATA)
    SETPTE PT_L0, 0x80, PTE(PAGE_T, CODE)
    SETPTE PT_L0, 0x90, PTE(PAGE_T, DATA)
    li a0, SATP(1)
    csrw satp, a0
    sfence.vma
    ENTER_MODE PRV_S, 1f
1:
    CHECK 8             /* S-mode: written at one address, run at another */
    WARM VA_W
    PUT_CODE VA_W, 8
    fence.i
    CALLS VA_X, 8

    CHECK 9             /* written again through the address used before it held code */
    PUT_CODE VA_W, 9
    fence.i
    CALLS VA_X, 9

    CHECK 10            /* PAGE_T mapped for writing under ASID 1, then run under ASID 2 */
    WARM VA_TW
    PUT_CODE VA_TW, 10
    li a0, SATP(2)
    csrw satp, a0
    fence.i
    CALLS VA_TX, 10

    CHECK 11            /* back under ASID 1, written through its mapping from before */
    li a0, SATP(1)
    csrw satp, a0
    PUT_CODE VA_TW, 11
    fence.i
    CALLS VA_TX, 11
    li a0, SATP(2)
    csrw satp, a0
    CALLS VA_TX, 11

    BACK_TO_M
    csrw satp, zero
    sfence.vma

    /* "j 8; nop; li a0, n; ret": the jump's block goes on into the next in its own page,
     * which the engines chain without looking the target up again (block.h, `local`); a
     * fence.i after the target was rewritten must reach that chain too. */
    CHECK 12
    li t0, PAGE_L
    li t1, J_8
    sw t1, 0(t0)
    li t1, NOP
    sw t1, 4(t0)
    PUT_CODE PAGE_L + 8, 12
    fence.i
    CALLS PAGE_L, 12
    PUT_CODE PAGE_L + 8, 13
    fence.i
    CALLS PAGE_L, 13
    TEST_END

hot_calls:
    mv s7, ra
    li s2, TURNS
1:  jalr ra, 0(s5)
    EXPECT_EQ a0, s6
    addi s2, s2, -1
    bnez s2, 1b
    jr s7
