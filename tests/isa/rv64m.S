/* RV64M: multiply/divide incl. the division-by-zero and signed-overflow rows of the table in
 * unprivileged ISA section 7.2 (quotient all ones / remainder = dividend for x/0; quotient =
 * dividend / remainder 0 for MIN/-1; W forms on the low 32 bits, results sign-extended).
 * Expected values computed on the host from those definitions (README.md). */
#include "isa.h"

.macro TEST_RR n, op, exp, a, b
    CHECK \n
    li a1, \a
    li a2, \b
    \op a0, a1, a2
    EXPECT a0, \exp
    EXPECT a1, \a
    EXPECT a2, \b
.endm

    TEST_BEGIN
    TEST_RR 1, mul, 0x0000000000000015, 0x3, 0x7
    TEST_RR 2, mul, 0xffffffffffffffeb, 0xfffffffffffffffd, 0x7
    TEST_RR 3, mul, 0x0000000000000001, 0xffffffffffffffff, 0xffffffffffffffff
    TEST_RR 4, mul, 0xfffffffffffffffe, 0x7fffffffffffffff, 0x2
    TEST_RR 5, mul, 0x236d88fe5618cf00, 0x123456789abcdef0, 0xfedcba9876543210
    TEST_RR 6, mul, 0x8000000000000000, 0x8000000000000000, 0xffffffffffffffff
    TEST_RR 7, mul, 0x0000000000000000, 0x100000000, 0x100000000
    TEST_RR 8, mulh, 0x0000000000000000, 0x3, 0x7
    TEST_RR 9, mulh, 0x0000000000000000, 0xffffffffffffffff, 0xffffffffffffffff
    TEST_RR 10, mulh, 0xffffffffffffffff, 0xffffffffffffffff, 0x1
    TEST_RR 11, mulh, 0x4000000000000000, 0x8000000000000000, 0x8000000000000000
    TEST_RR 12, mulh, 0xc000000000000000, 0x8000000000000000, 0x7fffffffffffffff
    TEST_RR 13, mulh, 0xffeb49923cc09532, 0x123456789abcdef0, 0xfedcba9876543210
    TEST_RR 14, mulh, 0x3fffffffffffffff, 0x7fffffffffffffff, 0x7fffffffffffffff
    TEST_RR 15, mulhsu, 0xffffffffffffffff, 0xffffffffffffffff, 0xffffffffffffffff
    TEST_RR 16, mulhsu, 0xffffffffffffffff, 0xffffffffffffffff, 0x1
    TEST_RR 17, mulhsu, 0x8000000000000000, 0x8000000000000000, 0xffffffffffffffff
    TEST_RR 18, mulhsu, 0x7ffffffffffffffe, 0x7fffffffffffffff, 0xffffffffffffffff
    TEST_RR 19, mulhsu, 0x0000000000000001, 0x2, 0xffffffffffffffff
    TEST_RR 20, mulhsu, 0x121fa00ad77d7422, 0x123456789abcdef0, 0xfedcba9876543210
    TEST_RR 21, mulhu, 0xfffffffffffffffe, 0xffffffffffffffff, 0xffffffffffffffff
    TEST_RR 22, mulhu, 0x0000000000000001, 0xffffffffffffffff, 0x2
    TEST_RR 23, mulhu, 0x4000000000000000, 0x8000000000000000, 0x8000000000000000
    TEST_RR 24, mulhu, 0x121fa00ad77d7422, 0x123456789abcdef0, 0xfedcba9876543210
    TEST_RR 25, mulhu, 0x0000000000000000, 0x5, 0x7
    TEST_RR 26, mulw, 0x0000000000000015, 0x3, 0x7
    TEST_RR 27, mulw, 0xfffffffffffffffe, 0x7fffffff, 0x2
    TEST_RR 28, mulw, 0x0000000000000000, 0x10000, 0x10000
    TEST_RR 29, mulw, 0xffffffffd0369cd0, 0x123456789abcdef0, 0xffffffff00000003
    TEST_RR 30, mulw, 0x0000000000000001, 0xffffffffffffffff, 0xffffffffffffffff
    TEST_RR 31, mulw, 0xffffffff80000000, 0x80000000, 0x1
    TEST_RR 32, div, 0x0000000000000003, 0x14, 0x6
    TEST_RR 33, div, 0xfffffffffffffffd, 0xffffffffffffffec, 0x6
    TEST_RR 34, div, 0xfffffffffffffffd, 0x14, 0xfffffffffffffffa
    TEST_RR 35, div, 0x0000000000000003, 0xffffffffffffffec, 0xfffffffffffffffa
    TEST_RR 36, div, 0x8000000000000000, 0x8000000000000000, 0xffffffffffffffff
    TEST_RR 37, div, 0x8000000000000000, 0x8000000000000000, 0x1
    TEST_RR 38, div, 0xffffffffffffffff, 0x5, 0x0
    TEST_RR 39, div, 0xffffffffffffffff, 0xfffffffffffffffb, 0x0
    TEST_RR 40, div, 0xffffffffffffffff, 0x0, 0x0
    TEST_RR 41, div, 0x0000000000000000, 0x1, 0x2
    TEST_RR 42, div, 0x0000000000000000, 0xffffffffffffffff, 0x2
    TEST_RR 43, divu, 0x0000000000000003, 0x14, 0x6
    TEST_RR 44, divu, 0x2aaaaaaaaaaaaaa7, 0xffffffffffffffec, 0x6
    TEST_RR 45, divu, 0x0000000000000000, 0x8000000000000000, 0xffffffffffffffff
    TEST_RR 46, divu, 0xffffffffffffffff, 0x5, 0x0
    TEST_RR 47, divu, 0xffffffffffffffff, 0x0, 0x0
    TEST_RR 48, divu, 0xffffffffffffffff, 0xffffffffffffffff, 0x1
    TEST_RR 49, rem, 0x0000000000000002, 0x14, 0x6
    TEST_RR 50, rem, 0xfffffffffffffffe, 0xffffffffffffffec, 0x6
    TEST_RR 51, rem, 0x0000000000000002, 0x14, 0xfffffffffffffffa
    TEST_RR 52, rem, 0xfffffffffffffffe, 0xffffffffffffffec, 0xfffffffffffffffa
    TEST_RR 53, rem, 0x0000000000000000, 0x8000000000000000, 0xffffffffffffffff
    TEST_RR 54, rem, 0x0000000000000005, 0x5, 0x0
    TEST_RR 55, rem, 0xfffffffffffffffb, 0xfffffffffffffffb, 0x0
    TEST_RR 56, rem, 0x0000000000000000, 0x8000000000000000, 0x2
    TEST_RR 57, remu, 0x0000000000000002, 0x14, 0x6
    TEST_RR 58, remu, 0x0000000000000002, 0xffffffffffffffec, 0x6
    TEST_RR 59, remu, 0x8000000000000000, 0x8000000000000000, 0xffffffffffffffff
    TEST_RR 60, remu, 0x0000000000000005, 0x5, 0x0
    TEST_RR 61, remu, 0xffffffffffffffff, 0xffffffffffffffff, 0x0
    TEST_RR 62, remu, 0x0000000000000000, 0x0, 0x0
    TEST_RR 63, divw, 0x0000000000000003, 0x14, 0x6
    TEST_RR 64, divw, 0xfffffffffffffffd, 0xffffffffffffffec, 0x6
    TEST_RR 65, divw, 0xffffffff80000000, 0x80000000, 0xffffffffffffffff
    TEST_RR 66, divw, 0xffffffff80000000, 0xffffffff80000000, 0xffffffff
    TEST_RR 67, divw, 0xffffffffffffffff, 0x5, 0x0
    TEST_RR 68, divw, 0x0000000000000003, 0x100000014, 0xffff00000006
    TEST_RR 69, divw, 0xffffffffffffffff, 0x7fffffff, 0x0
    TEST_RR 70, divuw, 0x0000000000000003, 0x14, 0x6
    TEST_RR 71, divuw, 0x000000002aaaaaa7, 0xffffffffffffffec, 0x6
    TEST_RR 72, divuw, 0xffffffffffffffff, 0xffffffff, 0x1
    TEST_RR 73, divuw, 0xffffffffffffffff, 0x5, 0x0
    TEST_RR 74, divuw, 0x0000000000000003, 0x100000014, 0x100000006
    TEST_RR 75, divuw, 0x0000000040000000, 0x80000000, 0x2
    TEST_RR 76, remw, 0x0000000000000002, 0x14, 0x6
    TEST_RR 77, remw, 0xfffffffffffffffe, 0xffffffffffffffec, 0x6
    TEST_RR 78, remw, 0x0000000000000000, 0x80000000, 0xffffffffffffffff
    TEST_RR 79, remw, 0x0000000000000005, 0x5, 0x0
    TEST_RR 80, remw, 0xffffffff80000000, 0x80000000, 0x0
    TEST_RR 81, remw, 0x0000000000000003, 0xabcd00000017, 0x5
    TEST_RR 82, remuw, 0x0000000000000002, 0x14, 0x6
    TEST_RR 83, remuw, 0x0000000000000002, 0xffffffffffffffec, 0x6
    TEST_RR 84, remuw, 0x0000000000000005, 0x5, 0x0
    TEST_RR 85, remuw, 0xffffffff80000005, 0x80000005, 0x0
    TEST_RR 86, remuw, 0xfffffffffffffffe, 0xfffffffe, 0xffffffff
    TEST_RR 87, remuw, 0x0000000000000003, 0x100000017, 0x5

    /* rd overlapping the sources */
    CHECK 88
    li a0, -7
    li a1, 2
    div a0, a0, a1
    EXPECT a0, -3
    CHECK 89
    li a0, -7
    rem a0, a0, a0
    EXPECT a0, 0
    CHECK 90
    li a0, 0xffffffff
    mulw a0, a0, a0      /* (-1)*(-1) = 1 */
    EXPECT a0, 1
    CHECK 91            /* MULH/MUL pair (recommended fusion order) gives the 128-bit product */
    li a1, 0xfedcba9876543210
    li a2, 0x0123456789abcdef
    mulhu a3, a1, a2
    mul a4, a1, a2
    EXPECT a3, 0x0121fa00ad77d742
    EXPECT a4, 0x2236d88fe5618cf0
    CHECK 92            /* x0 destination */
    li a1, 5
    div x0, a1, a1
    mul x0, a1, a1
    EXPECT_EQ x0, zero

    TEST_END
