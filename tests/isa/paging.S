/* Sv39, Sv48 and Sv57 paging, page tables built at run time: 4 KiB pages, 2 MiB megapages,
 * 1 GiB gigapages, a 512 GiB terapage (Sv48, Sv57) and a 256 TiB petapage (Sv57);
 * load/store/fetch page faults (13/15/12) with mtval = the virtual address for invalid PTEs,
 * missing R/W/X, W-without-R, a pointer PTE at the last level, misaligned superpages at every
 * level, non-canonical addresses (each of which a valid PTE would map, so only the
 * canonical-address rule can make it fault); U/S protection with SUM
 * and MXR; A/D bits (hardware update or a page fault, both allowed); SFENCE.VMA; satp with
 * an unsupported MODE is ignored; MPRV with MPP = S/U translates M-mode loads/stores.
 * Page faults are not delegated: the M handler reports them (s9 cause, s10 tval). */
#include "isa.h"

#define PT_ROOT39  0x80400000   /* Sv39 root; also the Sv48 level-2 table for VPN[3] = 0 */
#define PT_L1      0x80401000   /* VA 0x4000_0000 .. 0x7fff_ffff */
#define PT_L0      0x80402000   /* VA 0x4000_0000 .. 0x401f_ffff */
#define PT_ROOT48  0x80403000   /* Sv48 root; also the Sv57 level-3 table for VPN[4] = 0 */
#define PT_ROOT57  0x80404000
#define PA_DATA    0x80500000   /* 16 data pages, page i starts with 0x1111_0000 + i */
#define PA(i)      (PA_DATA + (i) * 0x1000)
#define PA_MEGA    0x80600000   /* 2 MiB aligned */
#define PA_MEGA2   0x80800000   /* another, for a changed megapage PTE */

#define VA_4K      0x40000000
#define VA(i)      (VA_4K + (i) * 0x1000)
#define VA_MEGA    0x40200000   /* L1[1]: megapage -> PA_MEGA */
#define VA_MEGA_BAD 0x40400000  /* L1[2]: megapage with PPN[0] != 0 */
#define ALIAS_OFF  0x40000000   /* root[3]: U gigapage at 0xC000_0000 -> 0x8000_0000 */
#define VA_GIGA_BAD 0x100000000 /* root[4]: gigapage with PPN[1] != 0 */
#define VA_BIT38   0x4000000000 /* root[256] gigapage -> 0x8000_0000: Sv39 non-canonical */
#define VA_TERA    0x8000000000 /* Sv48 root[1]: terapage -> PA 0 (Sv39: non-canonical) */
#define VA_NC48    0x800000000000 /* root48[256]: terapage -> PA 0; non-canonical in Sv39, Sv48 */
#define VA_HI48    0xffff800000000000 /* Sv48: root48[256]; Sv57: root57[511] -> root48[256] */
#define VA_TERA_BAD 0x10000000000 /* root48[2]: terapage with PPN[2] != 0 */
#define VA_PETA    0x1000000000000 /* Sv57 root[1]: petapage -> PA 0 (Sv48: non-canonical) */
#define VA_PETA_BAD 0x2000000000000 /* Sv57 root[2]: petapage with PPN[3] != 0 */
#define VA_NC57    0x0100000000000000 /* root57[256] (bit 56 set, 63:57 clear): non-canonical */
#define VA_HI57    0xff00000000000000 /* root57[256]: petapage -> PA 0, canonical in Sv57 */
#define SATP39     ((8 << 60) | (PT_ROOT39 >> 12))
#define SATP48     ((9 << 60) | (PT_ROOT48 >> 12))
#define SATP57     ((10 << 60) | (PT_ROOT57 >> 12))

#define MARK(i)    (0x11110000 + (i))
#define MARK_MEGA  0x2222000000000000
#define MARK_MEGA2 0x2222000000000002
#define CODE_LI42  0x02a00513   /* addi a0, zero, 42 */
#define CODE_RET   0x00008067   /* jalr zero, 0(ra) */

/* The megapage at a1, its PTE at a2, moved to PA_MEGA2: after a fence naming the page \off
 * bytes into it, a load from a1 reads PA_MEGA2; moved back and fenced by a1, PA_MEGA. */
.macro MEGA_MOVED off
    li a3, PTE(PA_MEGA2, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
    sd a3, 0(a2)
    li t0, \off
    add a4, a1, t0
    sfence.vma a4, zero
    ld a0, 0(a1)
    EXPECT a0, MARK_MEGA2
    li a3, PTE(PA_MEGA, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
    sd a3, 0(a2)
    sfence.vma a1, zero
    ld a0, 0(a1)
    EXPECT a0, MARK_MEGA
.endm

/* expected page fault: cause and tval */
.macro EXPECT_PF cause, va
    EXPECT s9, \cause
    EXPECT s10, \va
.endm

/* From M: enter U at the U-accessible alias (VA + ALIAS_OFF) of label */
.macro ENTER_U_ALIAS label
    li t6, MSTATUS_MPP | MSTATUS_MPIE
    csrc mstatus, t6
    la t6, \label
    li t5, ALIAS_OFF
    add t6, t6, t5
    csrw mepc, t6
    mret
.endm

/* From U code running at the alias: back to M at the physical address */
.macro U_BACK_TO_M
    la tp, .Lm\@
    li t6, ALIAS_OFF - RESUME_HANDLER_MODE
    sub tp, tp, t6
    ecall
    j fail
    ALIGN4
.Lm\@:
.endm

/* Build (or reset) every page table.  Runs in M with satp = bare. */
.macro BUILD_TABLES
    li a0, PT_ROOT39
    li a1, PT_ROOT57 + 0x1000
1:  sd zero, 0(a0)
    addi a0, a0, 8
    bltu a0, a1, 1b
    /* root: pointer, identity (S) and alias (U) gigapages, misaligned gigapage */
    SETPTE PT_ROOT39, 1, PTE(PT_L1, PTE_V)
    SETPTE PT_ROOT39, 2, PTE(0x80000000, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D)
    SETPTE PT_ROOT39, 3, PTE(0x80000000, PTE_V | PTE_R | PTE_W | PTE_X | PTE_U | PTE_A | PTE_D)
    SETPTE PT_ROOT39, 4, PTE(0x80200000, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
    SETPTE PT_ROOT39, 256, PTE(0x80000000, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
    SETPTE PT_L1, 0, PTE(PT_L0, PTE_V)
    SETPTE PT_L1, 1, PTE(PA_MEGA, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
    SETPTE PT_L1, 2, PTE(PA_MEGA + 0x1000, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
    /* 4 KiB slots */
    SETPTE PT_L0, 0, PTE(PA(0), PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
    SETPTE PT_L0, 1, PTE(PA(1), PTE_V | PTE_R | PTE_A)
    SETPTE PT_L0, 2, PTE(PA(2), PTE_V | PTE_X | PTE_A)
    SETPTE PT_L0, 3, PTE(PA(3), PTE_R | PTE_W | PTE_X | PTE_A | PTE_D)    /* V = 0 */
    SETPTE PT_L0, 4, PTE(PA(4), PTE_V | PTE_W | PTE_A | PTE_D)            /* W without R */
    SETPTE PT_L0, 5, PTE(PA(5), PTE_V | PTE_R | PTE_W | PTE_U | PTE_A | PTE_D)
    SETPTE PT_L0, 6, PTE(PA(6), PTE_V | PTE_R | PTE_X | PTE_U | PTE_A)
    SETPTE PT_L0, 7, PTE(PA(7), PTE_V | PTE_R | PTE_W)                    /* A = D = 0 */
    SETPTE PT_L0, 8, PTE(PA(8), PTE_V | PTE_R | PTE_W | PTE_A)            /* D = 0 */
    SETPTE PT_L0, 10, PTE(PA(10), PTE_V)                                  /* pointer at L0 */
    SETPTE PT_L0, 11, PTE(PA(0), PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
    /* Sv48: root[0] -> the Sv39 root as level 2; root[1] = terapage at PA 0 */
    SETPTE PT_ROOT48, 0, PTE(PT_ROOT39, PTE_V)
    SETPTE PT_ROOT48, 1, PTE(0, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
    SETPTE PT_ROOT48, 2, PTE(0x80000000, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D) /* misaligned */
    SETPTE PT_ROOT48, 256, PTE(0, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
    /* Sv57: root[0] and root[511] -> the Sv48 root as level 3; root[1] and root[256] =
     * petapages at PA 0 (root[256] also executable), root[2] a misaligned one */
    SETPTE PT_ROOT57, 0, PTE(PT_ROOT48, PTE_V)
    SETPTE PT_ROOT57, 511, PTE(PT_ROOT48, PTE_V)
    SETPTE PT_ROOT57, 1, PTE(0, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
    SETPTE PT_ROOT57, 2, PTE(0x80000000, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
    SETPTE PT_ROOT57, 256, PTE(0, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D)
    /* data pages: marker in the first dword, zero elsewhere in the first 64 bytes */
    li a0, PA_DATA
    li a1, MARK(0)
    li a2, 16
2:  sd a1, 0(a0)
    sd zero, 8(a0)
    sd zero, 16(a0)
    li t0, 0x1000
    add a0, a0, t0
    addi a1, a1, 1
    addi a2, a2, -1
    bnez a2, 2b
    li a0, PA_MEGA
    li a1, MARK_MEGA
    sd a1, 0(a0)
    li t0, 0x1008
    add a0, a0, t0
    li a1, MARK_MEGA + 0x1008
    sd a1, 0(a0)
    /* code: "li a0, 42; ret" in the X-only S page and in the U code page */
    li a1, CODE_LI42
    li a2, CODE_RET
    li a0, PA(2)
    sw a1, 0(a0)
    sw a2, 4(a0)
    li a0, PA(6)
    sw a1, 0(a0)
    sw a2, 4(a0)
    fence
    fence.i
    sfence.vma
.endm

/* The checks common to Sv39, Sv48 and Sv57: numbered b+1 .. b+25; lv = the levels of the walk
 * (3, 4 or 5) */
.macro PAGING_CHECKS b, lv
    CHECK (\b + 1)      /* satp holds the mode; M itself is never translated */
    csrr a0, satp
    .if \lv == 5
    EXPECT a0, SATP57
    .elseif \lv == 4
    EXPECT a0, SATP48
    .else
    EXPECT a0, SATP39
    .endif
    li a1, PA(0)
    ld a0, 0(a1)
    EXPECT a0, MARK(0)
    ENTER_MODE PRV_S, 1f
1:
    CHECK (\b + 2)      /* S: 4 KiB RW page */
    li a1, VA(0)
    ld a0, 0(a1)
    EXPECT a0, MARK(0)
    li a2, 0x5a5a
    sd a2, 8(a1)
    ld a0, 8(a1)
    EXPECT a0, 0x5a5a
    CHECK (\b + 3)      /* read-only page: loads work, stores fault */
    li a1, VA(1)
    ld a0, 0(a1)
    EXPECT a0, MARK(1)
    MUST_TRAP_AT CAUSE_STORE_PAGE, sd a0, 8(a1)
    EXPECT s10, VA(1) + 8
    CHECK (\b + 4)      /* execute-only page: fetch works, loads fault; MXR makes it readable */
    li a1, VA(2)
    li a0, 0
    jalr ra, 0(a1)
    EXPECT a0, 42
    MUST_TRAP CAUSE_LOAD_PAGE, lw a0, 0(a1)
    EXPECT s10, VA(2)
    li a0, MSTATUS_MXR
    csrs sstatus, a0
    lw a0, 0(a1)
    EXPECT a0, CODE_LI42
    li a0, MSTATUS_MXR
    csrc sstatus, a0
    MUST_TRAP CAUSE_STORE_PAGE, sw a0, 0(a1)
    EXPECT s10, VA(2)
    CHECK (\b + 5)      /* invalid PTE: load, store and fetch faults */
    li a1, VA(3)
    MUST_TRAP CAUSE_LOAD_PAGE, ld a0, 16(a1)
    EXPECT s10, VA(3) + 16
    MUST_TRAP CAUSE_STORE_PAGE, sb a0, 3(a1)
    EXPECT s10, VA(3) + 3
    la tp, 2f
    jalr ra, 0(a1)
    j fail
2:  EXPECT_PF CAUSE_FETCH_PAGE, VA(3)
    EXPECT s11, VA(3)
    CHECK (\b + 6)      /* W without R is reserved: faults */
    li a1, VA(4)
    MUST_TRAP CAUSE_LOAD_PAGE, ld a0, 0(a1)
    EXPECT s10, VA(4)
    MUST_TRAP CAUSE_STORE_PAGE, sd a0, 0(a1)
    EXPECT s10, VA(4)
    CHECK (\b + 7)      /* fetch from a page without X */
    li a1, VA(1)
    la tp, 2f
    jalr ra, 0(a1)
    j fail
2:  EXPECT_PF CAUSE_FETCH_PAGE, VA(1)
    CHECK (\b + 8)      /* a pointer PTE (R=W=X=0) at the last level faults */
    li a1, VA(10)
    MUST_TRAP CAUSE_LOAD_PAGE, ld a0, 0(a1)
    EXPECT s10, VA(10)
    CHECK (\b + 9)      /* U page from S: faults without SUM, loads/stores with SUM work,
                           fetch faults even with SUM */
    li a1, VA(5)
    MUST_TRAP CAUSE_LOAD_PAGE, ld a0, 0(a1)
    EXPECT s10, VA(5)
    MUST_TRAP CAUSE_STORE_PAGE, sd a0, 0(a1)
    EXPECT s10, VA(5)
    li a0, MSTATUS_SUM
    csrs sstatus, a0
    ld a0, 0(a1)
    EXPECT a0, MARK(5)
    li a2, 0x77
    sd a2, 8(a1)
    ld a0, 8(a1)
    EXPECT a0, 0x77
    li a1, VA(6)
    la tp, 2f
    jalr ra, 0(a1)
    j fail
2:  EXPECT_PF CAUSE_FETCH_PAGE, VA(6)
    li a0, MSTATUS_SUM
    csrc sstatus, a0
    CHECK (\b + 10)     /* 2 MiB megapage */
    li a1, VA_MEGA
    ld a0, 0(a1)
    EXPECT a0, MARK_MEGA
    li a1, VA_MEGA + 0x1008
    ld a0, 0(a1)
    EXPECT a0, MARK_MEGA + 0x1008
    CHECK (\b + 11)     /* misaligned megapage */
    li a1, VA_MEGA_BAD
    MUST_TRAP CAUSE_LOAD_PAGE, ld a0, 8(a1)
    EXPECT s10, VA_MEGA_BAD + 8
    MUST_TRAP CAUSE_STORE_PAGE, sd a0, 0(a1)
    EXPECT s10, VA_MEGA_BAD
    CHECK (\b + 12)     /* 1 GiB gigapages: the U alias of this code (with SUM) */
    li a0, MSTATUS_SUM
    csrs sstatus, a0
    la a1, pdata
    li a2, ALIAS_OFF
    add a2, a1, a2
    ld a0, 0(a2)
    EXPECT a0, 0x0123456789abcdef
    li a3, 0x99
    sd a3, 8(a2)
    ld a0, 8(a1)        /* same physical memory through the identity gigapage */
    EXPECT a0, 0x99
    li a0, MSTATUS_SUM
    csrc sstatus, a0
    CHECK (\b + 13)     /* misaligned gigapage */
    li a1, VA_GIGA_BAD
    MUST_TRAP CAUSE_LOAD_PAGE, ld a0, 0(a1)
    EXPECT s10, VA_GIGA_BAD
    CHECK (\b + 14)     /* VA bit 38 set, bits 63:39 clear: non-canonical in Sv39; in Sv48
                           (and Sv57) it is the gigapage root[0] -> L2[256] */
    li a1, VA_BIT38
    la a2, pdata
    li a3, 0x80000000
    sub a2, a2, a3
    add a1, a1, a2
    .if \lv >= 4
    ld a0, 0(a1)
    EXPECT a0, 0x0123456789abcdef
    .else
    MUST_TRAP CAUSE_LOAD_PAGE, ld a0, 0(a1)
    EXPECT_EQ s10, a1
    MUST_TRAP CAUSE_STORE_PAGE, sd a0, 0(a1)
    EXPECT_EQ s10, a1
    la tp, 2f
    jalr ra, 0(a1)
    j fail
2:  EXPECT s9, CAUSE_FETCH_PAGE
    EXPECT_EQ s10, a1
    .endif
    CHECK (\b + 15)     /* terapage at VA 0x80_0000_0000 -> PA 0 (Sv39: non-canonical) */
    li a1, VA_TERA + PA(0)
    .if \lv >= 4
    ld a0, 0(a1)
    EXPECT a0, MARK(0)
    .else
    MUST_TRAP CAUSE_LOAD_PAGE, ld a0, 0(a1)
    EXPECT s10, VA_TERA + PA(0)
    .endif
    CHECK (\b + 16)     /* bit 47 set, 63:48 clear: root48[256], a terapage, but
                           non-canonical in Sv39 and Sv48; Sv57 maps it */
    li a1, VA_NC48 + PA(0)
    .if \lv == 5
    ld a0, 0(a1)
    EXPECT a0, MARK(0)
    .else
    MUST_TRAP CAUSE_LOAD_PAGE, ld a0, 0(a1)
    EXPECT s10, VA_NC48 + PA(0)
    MUST_TRAP CAUSE_STORE_PAGE, sd a0, 0(a1)
    EXPECT s10, VA_NC48 + PA(0)
    .endif
    li a1, 0xffff000000000000 | VA(0)   /* bit 47 clear: Sv57's root[511] -> VA(0) */
    .if \lv == 5
    ld a0, 0(a1)
    EXPECT a0, MARK(0)
    .else
    MUST_TRAP CAUSE_LOAD_PAGE, ld a0, 0(a1)
    EXPECT s10, 0xffff000000000000 | VA(0)
    .endif
    li a1, VA_HI48 + PA(0)  /* the top half of Sv48 (and of Sv57's root[511]) */
    .if \lv >= 4
    ld a0, 0(a1)
    EXPECT a0, MARK(0)
    .else
    MUST_TRAP CAUSE_LOAD_PAGE, ld a0, 0(a1)
    EXPECT s10, VA_HI48 + PA(0)
    .endif
    CHECK (\b + 17)     /* A bit: a load either sets A (not D) or faults */
    li a1, VA(7)
    la tp, 2f
    ld a0, 0(a1)
    li tp, 0
    EXPECT a0, MARK(7)
    li a2, PT_L0 + 8 * 7
    ld a2, 0(a2)
    EXPECT_MASKED a2, PTE_A | PTE_D, PTE_A
    j 3f
2:  EXPECT_PF CAUSE_LOAD_PAGE, VA(7)
3:
    CHECK (\b + 18)     /* D bit: a store either sets D (and A) or faults */
    li a1, VA(8)
    li a0, 0x42
    la tp, 2f
    sd a0, 16(a1)
    li tp, 0
    li a2, PT_L0 + 8 * 8
    ld a2, 0(a2)
    EXPECT_MASKED a2, PTE_A | PTE_D, PTE_A | PTE_D
    ld a0, 16(a1)
    EXPECT a0, 0x42
    j 3f
2:  EXPECT_PF CAUSE_STORE_PAGE, VA(8) + 16
3:
    CHECK (\b + 19)     /* SFENCE.VMA makes a changed PTE take effect */
    li a1, VA(11)
    ld a0, 0(a1)
    EXPECT a0, MARK(0)
    li a2, PT_L0 + 8 * 11
    li a3, PTE(PA(1), PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
    sd a3, 0(a2)
    sfence.vma
    ld a0, 0(a1)
    EXPECT a0, MARK(1)
    li a3, PTE(PA(0), PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
    sd a3, 0(a2)
    sfence.vma a1, zero
    ld a0, 0(a1)
    EXPECT a0, MARK(0)
    /* A fence naming another 4 KiB page of a megapage drops the whole megapage's
     * translation: it is one leaf PTE (§4.2.1), whichever page of it was used. */
    li a1, VA_MEGA
    ld a0, 0(a1)
    EXPECT a0, MARK_MEGA
    li a2, PA_MEGA2     /* through the identity gigapage */
    li a3, MARK_MEGA2
    sd a3, 0(a2)
    li a2, PT_L1 + 8 * 1
    MEGA_MOVED 0x5000
    /* The same with six more megapages in use, 16 MiB apart (L1[8], [16], ... [48]), more
     * than the ranges the TLB keeps of superpage entries: with all six loaded from, the fence
     * of a page of any one of them still drops it. Megapage k is read at page k of it, whose
     * TLB slot no other megapage's read takes (their pages are 4096 apart: one slot each),
     * so that a stale entry of every one of them would be seen. They are read in rising
     * order (a7 = 0), then in falling order (a7 = 1): ranges merge both ways. */
    li a2, PA_MEGA      /* through the identity gigapage: page k of both starts with a mark */
    li a3, PA_MEGA2
    li a4, MARK_MEGA
    li a5, MARK_MEGA2
    li t1, 6
1:  sd a4, 0(a2)
    sd a5, 0(a3)
    li t0, 0x1000
    add a2, a2, t0
    add a3, a3, t0
    addi t1, t1, -1
    bnez t1, 1b
    li a2, PT_L1 + 8 * 8
    li a3, PTE(PA_MEGA, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
    li a5, 6
1:  sd a3, 0(a2)
    addi a2, a2, 8 * 8
    addi a5, a5, -1
    bnez a5, 1b
    sfence.vma
    li a7, 0
3:  li a6, 0            /* the megapage changed: a6 = 0..5 */
2:  li a4, VA_4K + 8 * 0x200000
    li t1, 0x1001000    /* from one megapage to the next, one page further into it */
    beqz a7, 1f
    li t0, 5 * 0x1001000
    add a4, a4, t0      /* falling: from the last */
    neg t1, t1
1:  li a5, 6
1:  ld a0, 0(a4)
    EXPECT a0, MARK_MEGA
    add a4, a4, t1
    addi a5, a5, -1
    bnez a5, 1b
    slli t0, a6, 6      /* its PTE: L1[8 + 8 * a6] */
    li a2, PT_L1 + 8 * 8
    add a2, a2, t0
    li t0, 0x1001000    /* its address: 16 MiB apart, read at page a6 */
    mul t0, t0, a6
    li a1, VA_4K + 8 * 0x200000
    add a1, a1, t0
    MEGA_MOVED 0x7000
    addi a6, a6, 1
    li t0, 6
    bltu a6, t0, 2b
    addi a7, a7, 1
    li t0, 2
    bltu a7, t0, 3b
    BACK_TO_M

    CHECK (\b + 20)     /* U mode, running from the U alias gigapage */
    ENTER_U_ALIAS 1f
1:  li a1, VA(5)
    ld a0, 0(a1)        /* U page: fine */
    EXPECT a0, MARK(5)
    li a1, VA(6)
    li a0, 0
    jalr ra, 0(a1)      /* U code page */
    EXPECT a0, 42
    li a1, VA(0)        /* S pages: load, store and fetch fault from U */
    MUST_TRAP CAUSE_LOAD_PAGE, ld a0, 0(a1)
    EXPECT s10, VA(0)
    MUST_TRAP CAUSE_STORE_PAGE, sd a0, 0(a1)
    EXPECT s10, VA(0)
    li a1, VA(2)
    la tp, 2f
    jalr ra, 0(a1)
    j fail
2:  EXPECT_PF CAUSE_FETCH_PAGE, VA(2)
    U_BACK_TO_M
    CHECK (\b + 21)     /* MPRV: M loads/stores translate with MPP's privilege */
    li a0, MSTATUS_MPP
    csrc mstatus, a0
    li a0, MSTATUS_MPP_S | MSTATUS_MPRV
    csrs mstatus, a0
    li a1, VA(0)
    ld a0, 0(a1)
    EXPECT a0, MARK(0)
    li a2, 0x31
    sd a2, 24(a1)
    li a0, MSTATUS_MPP   /* MPP = U: the S page faults (in M, mtval = VA) */
    csrc mstatus, a0
    MUST_TRAP CAUSE_LOAD_PAGE, ld a0, 0(a1)
    EXPECT s10, VA(0)
    li a0, MSTATUS_MPRV | MSTATUS_MPP
    csrc mstatus, a0
    li a1, PA(0)        /* MPRV off again: physical */
    ld a0, 24(a1)
    EXPECT a0, 0x31
    ENTER_MODE PRV_S, 1f
1:
    CHECK (\b + 22)     /* misaligned terapage (PPN[2] != 0); Sv39: non-canonical */
    li a1, VA_TERA_BAD + 0x18
    MUST_TRAP CAUSE_LOAD_PAGE, ld a0, 0(a1)
    EXPECT s10, VA_TERA_BAD + 0x18
    MUST_TRAP CAUSE_STORE_PAGE, sd a0, 0(a1)
    EXPECT s10, VA_TERA_BAD + 0x18
    CHECK (\b + 23)     /* Sv57 petapage at VA 1 << 48 -> PA 0 (others: non-canonical) */
    li a1, VA_PETA + PA(0)
    .if \lv == 5
    ld a0, 0(a1)
    EXPECT a0, MARK(0)
    li a2, 0x5757
    sd a2, 32(a1)
    li a3, VA(0)        /* the same physical page through the 4 KiB mapping */
    ld a0, 32(a3)
    EXPECT a0, 0x5757
    .else
    MUST_TRAP CAUSE_LOAD_PAGE, ld a0, 0(a1)
    EXPECT s10, VA_PETA + PA(0)
    MUST_TRAP CAUSE_STORE_PAGE, sd a0, 0(a1)
    EXPECT s10, VA_PETA + PA(0)
    .endif
    CHECK (\b + 24)     /* misaligned petapage (PPN[3] != 0); others: non-canonical */
    li a1, VA_PETA_BAD + 0x28
    MUST_TRAP CAUSE_LOAD_PAGE, ld a0, 0(a1)
    EXPECT s10, VA_PETA_BAD + 0x28
    MUST_TRAP CAUSE_STORE_PAGE, sd a0, 0(a1)
    EXPECT s10, VA_PETA_BAD + 0x28
    la tp, 2f
    jalr ra, 0(a1)
    j fail
2:  EXPECT_PF CAUSE_FETCH_PAGE, VA_PETA_BAD + 0x28
    CHECK (\b + 25)     /* bit 56 set, 63:57 clear: root57[256], an executable petapage, but
                           non-canonical everywhere; 0xff00... (63:56 set) is Sv57's top half */
    li a1, VA_NC57 + PA(2)
    MUST_TRAP CAUSE_LOAD_PAGE, ld a0, 0(a1)
    EXPECT s10, VA_NC57 + PA(2)
    MUST_TRAP CAUSE_STORE_PAGE, sd a0, 0(a1)
    EXPECT s10, VA_NC57 + PA(2)
    la tp, 2f
    jalr ra, 0(a1)
    j fail
2:  EXPECT_PF CAUSE_FETCH_PAGE, VA_NC57 + PA(2)
    li a1, VA_HI57 + PA(2)
    .if \lv == 5
    lw a0, 0(a1)
    EXPECT a0, CODE_LI42
    li a0, 0
    jalr ra, 0(a1)      /* fetch from the top of the 57-bit space */
    EXPECT a0, 42
    .else
    MUST_TRAP CAUSE_LOAD_PAGE, lw a0, 0(a1)
    EXPECT s10, VA_HI57 + PA(2)
    la tp, 2f
    jalr ra, 0(a1)
    j fail
2:  EXPECT_PF CAUSE_FETCH_PAGE, VA_HI57 + PA(2)
    .endif
    BACK_TO_M
.endm

    TEST_BEGIN

    CHECK 1             /* satp: Bare reads 0; an unsupported MODE write (15, 1, and 11,
                           reserved for Sv64) is ignored whole */
    csrr a0, satp
    EXPECT a0, 0
    BUILD_TABLES
    li a0, SATP39
    csrw satp, a0
    li a1, (15 << 60) | 0x12345
    csrw satp, a1
    csrr a2, satp
    EXPECT a2, SATP39
    li a1, (1 << 60) | (PT_ROOT39 >> 12)
    csrw satp, a1
    csrr a2, satp
    EXPECT a2, SATP39
    li a1, (11 << 60) | (PT_ROOT57 >> 12)
    csrw satp, a1
    csrr a2, satp
    EXPECT a2, SATP39
    sfence.vma

    PAGING_CHECKS 10, 3

    CHECK 60            /* Sv48 */
    csrw satp, zero
    BUILD_TABLES
    li a0, SATP48
    csrw satp, a0
    csrr a1, satp
    EXPECT a1, SATP48   /* Sv48 is required here */
    sfence.vma

    PAGING_CHECKS 60, 4

    CHECK 110           /* Sv57 */
    csrw satp, zero
    BUILD_TABLES
    li a0, SATP57
    csrw satp, a0
    csrr a1, satp
    EXPECT a1, SATP57   /* Sv57 is required here */
    sfence.vma

    PAGING_CHECKS 110, 5

    CHECK 150
    csrw satp, zero
    sfence.vma

    TEST_END

    TEST_DATA
pdata:
    .dword 0x0123456789abcdef, 0
