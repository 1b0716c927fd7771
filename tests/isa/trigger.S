/* Debug trigger CSRs (RISC-V Debug Specification 1.0, chapter 5 "Sdtrig", and 0.13.2 §5):
 * tselect (0x7a0), tdata1-tdata3 (0x7a1-0x7a3), tinfo (0x7a4).
 *
 * The spec lets a hart with no triggers either leave these CSRs out (every access traps) or
 * implement them so that software finds no trigger. These tests require the second (M-mode
 * accesses never trap) and then check what the spec says the registers must show:
 * - the enumeration algorithm of §5.1 terminates, and every trigger it counts has a type;
 * - where it stops, either tselect did not keep the index written, or the selected trigger
 *   does not exist: tdata1.type = 0, and then dmode and data are hard-wired to 0 (tdata1 reads
 *   0 whatever was written) and tinfo.info reads 1 (tinfo is optional: a trap is accepted);
 * - a hart whose trigger 0 has type 0 has no trigger at all: tdata1, tdata2, tdata3 read 0
 *   after any write, and tselect is WARL (reads back 0 after out-of-range indices);
 * - the registers are accessible only in M-mode (and Debug Mode): S and U accesses trap.
 * Tessera has no triggers; QEMU 7.2 has two address-match (type 2) triggers. */
#include "isa.h"

#define CSR_TSELECT 0x7a0
#define CSR_TDATA1  0x7a1
#define CSR_TDATA2  0x7a2
#define CSR_TDATA3  0x7a3
#define CSR_TINFO   0x7a4

    TEST_BEGIN

    CHECK 1             /* M-mode reads and a write of 0 to tselect do not trap */
    csrr a0, CSR_TSELECT
    csrr a0, CSR_TDATA1
    csrr a0, CSR_TDATA2
    csrr a0, CSR_TDATA3
    csrw CSR_TSELECT, zero
    csrr a0, CSR_TSELECT
    EXPECT a0, 0

    CHECK 2             /* enumeration (§5.1): a0 = index, a1 = triggers found */
    li a0, 0
    li a1, 0
enum_loop:
    li t0, 64
    bgeu a0, t0, fail   /* more than 64 triggers: the loop does not terminate */
    csrw CSR_TSELECT, a0
    csrr t0, CSR_TSELECT
    bne t0, a0, enum_done /* index not kept: no trigger beyond */
    csrr t1, CSR_TDATA1
    srli t1, t1, 60     /* tdata1.type (XLEN-1:XLEN-4) */
    beqz t1, enum_none
    li a2, -1           /* tinfo, or -1 if reading it traps */
    la tp, 1f
    csrr a2, CSR_TINFO
    li tp, 0
    ALIGN4
1:  li t0, 0xffff
    and a2, a2, t0
    li t0, 1
    beq a2, t0, fail    /* tinfo says no trigger, but tdata1.type is not 0 */
    addi a1, a1, 1
    addi a0, a0, 1
    j enum_loop
enum_none:
    CHECK 3             /* a trigger with type 0: dmode and data are hard-wired to 0 and
                         * writing cannot give it a type: tdata1 reads 0 whatever is written */
    li t1, 0x7fffffffffffffff /* type 0 with every dmode/data bit set */
    csrw CSR_TDATA1, t1
    EXPECT_CSR CSR_TDATA1, 0
    li t1, -1           /* type 15 (disabled) with every bit set */
    csrw CSR_TDATA1, t1
    EXPECT_CSR CSR_TDATA1, 0
    CHECK 4             /* ... and tinfo, if implemented, reads info = 1 */
    li a2, 1
    la tp, 1f
    csrr a2, CSR_TINFO
    li tp, 0
    ALIGN4
1:  li t0, 0xffff
    and a2, a2, t0
    EXPECT a2, 1
enum_done:
    bnez a1, have_triggers

    CHECK 5             /* no trigger at all: tdata1-3 hold nothing */
    csrw CSR_TSELECT, zero
    li t1, -1
    csrw CSR_TDATA1, t1
    csrw CSR_TDATA2, t1
    csrw CSR_TDATA3, t1
    EXPECT_CSR CSR_TDATA1, 0
    EXPECT_CSR CSR_TDATA2, 0
    EXPECT_CSR CSR_TDATA3, 0
    CHECK 6             /* tselect is WARL: out-of-range indices read back as 0 */
    li t1, 1
    csrw CSR_TSELECT, t1
    EXPECT_CSR CSR_TSELECT, 0
    li t1, -1
    csrw CSR_TSELECT, t1
    EXPECT_CSR CSR_TSELECT, 0
    csrsi CSR_TSELECT, 4
    EXPECT_CSR CSR_TSELECT, 0
    EXPECT_CSR CSR_TDATA1, 0
have_triggers:
    csrw CSR_TSELECT, zero

    CHECK 7             /* S-mode: every trigger CSR is M-only, reads and writes trap */
    ENTER_MODE PRV_S, 1f
1:  MUST_TRAP CAUSE_ILLEGAL, csrr a0, CSR_TSELECT
    MUST_TRAP CAUSE_ILLEGAL, csrw CSR_TSELECT, zero
    MUST_TRAP CAUSE_ILLEGAL, csrr a0, CSR_TDATA1
    MUST_TRAP CAUSE_ILLEGAL, csrw CSR_TDATA1, zero
    MUST_TRAP CAUSE_ILLEGAL, csrr a0, CSR_TDATA2
    MUST_TRAP CAUSE_ILLEGAL, csrr a0, CSR_TDATA3
    MUST_TRAP CAUSE_ILLEGAL, csrr a0, CSR_TINFO
    BACK_TO_M
    CHECK 8             /* ... and so are they from U-mode */
    ENTER_MODE PRV_U, 1f
1:  MUST_TRAP CAUSE_ILLEGAL, csrr a0, CSR_TSELECT
    MUST_TRAP CAUSE_ILLEGAL, csrw CSR_TDATA1, zero
    MUST_TRAP CAUSE_ILLEGAL, csrr a0, CSR_TINFO
    BACK_TO_M

    TEST_END
