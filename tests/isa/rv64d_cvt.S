/* RV64D integer conversions: FCVT.{W,WU,L,LU}.D in every static rounding mode with RISC-V
 * saturation, FCVT.D.{W,WU,L,LU}, and dynamic rounding (frm) incl. RMM.  Values of checks
 * 1-70 from tests/isa/fpmodel.py. */
#include "isa.h"

.macro TEST_DYN_I n, op, res, flags, a, frmv, ty
    CHECK \n
    csrwi frm, \frmv
    LOAD_\ty fa1, \a
    fsflags zero
    \op a0, fa1, dyn
    EXPECT a0, \res
    EXPECT_FFLAGS \flags
    csrwi frm, 0
.endm
.macro TEST_DYN_F n, op, res, flags, i, frmv, ty
    CHECK \n
    csrwi frm, \frmv
    li a1, \i
    fsflags zero
    \op fa0, a1, dyn
    EXPECT_F_\ty fa0, \res
    EXPECT_FFLAGS \flags
    csrwi frm, 0
.endm

    TEST_BEGIN
    TEST_FCVT_I 1, fcvt.w.d, 0x2, FF_NX, 0x4004000000000000, rne, d   /* 2.5 rne */
    TEST_FCVT_I 2, fcvt.w.d, 0x2, FF_NX, 0x4004000000000000, rtz, d   /* 2.5 rtz */
    TEST_FCVT_I 3, fcvt.w.d, 0x2, FF_NX, 0x4004000000000000, rdn, d   /* 2.5 rdn */
    TEST_FCVT_I 4, fcvt.w.d, 0x3, FF_NX, 0x4004000000000000, rup, d   /* 2.5 rup */
    TEST_FCVT_I 5, fcvt.w.d, 0x3, FF_NX, 0x4004000000000000, rmm, d   /* 2.5 rmm */
    TEST_FCVT_I 6, fcvt.w.d, 0xfffffffffffffffe, FF_NX, 0xc004000000000000, rne, d   /* -2.5 rne */
    TEST_FCVT_I 7, fcvt.w.d, 0xfffffffffffffffe, FF_NX, 0xc004000000000000, rtz, d   /* -2.5 rtz */
    TEST_FCVT_I 8, fcvt.w.d, 0xfffffffffffffffd, FF_NX, 0xc004000000000000, rdn, d   /* -2.5 rdn */
    TEST_FCVT_I 9, fcvt.w.d, 0xfffffffffffffffe, FF_NX, 0xc004000000000000, rup, d   /* -2.5 rup */
    TEST_FCVT_I 10, fcvt.w.d, 0xfffffffffffffffd, FF_NX, 0xc004000000000000, rmm, d   /* -2.5 rmm */
    TEST_FCVT_I 11, fcvt.w.d, 0x0, FF_NX, 0x3fe0000000000000, rne, d   /* 0.5 rne */
    TEST_FCVT_I 12, fcvt.w.d, 0x0, FF_NX, 0x3fe0000000000000, rtz, d   /* 0.5 rtz */
    TEST_FCVT_I 13, fcvt.w.d, 0x0, FF_NX, 0x3fe0000000000000, rdn, d   /* 0.5 rdn */
    TEST_FCVT_I 14, fcvt.w.d, 0x1, FF_NX, 0x3fe0000000000000, rup, d   /* 0.5 rup */
    TEST_FCVT_I 15, fcvt.w.d, 0x1, FF_NX, 0x3fe0000000000000, rmm, d   /* 0.5 rmm */
    TEST_FCVT_I 16, fcvt.w.d, 0x0, FF_NX, 0xbfe0000000000000, rne, d   /* -0.5 rne */
    TEST_FCVT_I 17, fcvt.w.d, 0x0, FF_NX, 0xbfe0000000000000, rtz, d   /* -0.5 rtz */
    TEST_FCVT_I 18, fcvt.w.d, 0xffffffffffffffff, FF_NX, 0xbfe0000000000000, rdn, d   /* -0.5 rdn */
    TEST_FCVT_I 19, fcvt.w.d, 0x0, FF_NX, 0xbfe0000000000000, rup, d   /* -0.5 rup */
    TEST_FCVT_I 20, fcvt.w.d, 0xffffffffffffffff, FF_NX, 0xbfe0000000000000, rmm, d   /* -0.5 rmm */
    TEST_FCVT_I 21, fcvt.w.d, 0x2, FF_NX, 0x3ff8000000000000, rne, d   /* 1.5 rne */
    TEST_FCVT_I 22, fcvt.w.d, 0x1, FF_NX, 0x3ff8000000000000, rtz, d   /* 1.5 rtz */
    TEST_FCVT_I 23, fcvt.w.d, 0x1, FF_NX, 0x3ff8000000000000, rdn, d   /* 1.5 rdn */
    TEST_FCVT_I 24, fcvt.w.d, 0x2, FF_NX, 0x3ff8000000000000, rup, d   /* 1.5 rup */
    TEST_FCVT_I 25, fcvt.w.d, 0x2, FF_NX, 0x3ff8000000000000, rmm, d   /* 1.5 rmm */
    TEST_FCVT_I 26, fcvt.w.d, 0x7fffffff, FF_NV, 0x7ff8000000000000, rtz, d   /* NaN -> 2^31-1 */
    TEST_FCVT_I 27, fcvt.w.d, 0x7fffffff, FF_NV, 0x7ff0000000000000, rtz, d
    TEST_FCVT_I 28, fcvt.w.d, 0xffffffff80000000, FF_NV, 0xfff0000000000000, rtz, d
    TEST_FCVT_I 29, fcvt.w.d, 0x7fffffff, FF_NV, 0x41e0000000000000, rtz, d   /* 2^31: out of range */
    TEST_FCVT_I 30, fcvt.w.d, 0xffffffff80000000, 0, 0xc1e0000000000000, rtz, d   /* -2^31: in range */
    TEST_FCVT_I 31, fcvt.w.d, 0x7fffffff, FF_NV, 0x41e65a0bc0000000, rtz, d
    TEST_FCVT_I 32, fcvt.w.d, 0xffffffff80000000, FF_NV, 0xc1e65a0bc0000000, rtz, d
    TEST_FCVT_I 33, fcvt.wu.d, 0x0, FF_NV, 0xbff0000000000000, rtz, d   /* negative: 0, NV */
    TEST_FCVT_I 34, fcvt.wu.d, 0x0, FF_NX, 0xbfe0000000000000, rtz, d   /* rounds to 0: NX only */
    TEST_FCVT_I 35, fcvt.wu.d, 0x0, FF_NV, 0xbfe0000000000000, rdn, d   /* rounds to -1: NV */
    TEST_FCVT_I 36, fcvt.wu.d, 0xffffffffb2d05e00, 0, 0x41e65a0bc0000000, rtz, d   /* 3e9 fits; sign-extended */
    TEST_FCVT_I 37, fcvt.wu.d, 0xffffffffffffffff, FF_NV, 0x41f2a05f20000000, rtz, d   /* too big */
    TEST_FCVT_I 38, fcvt.wu.d, 0xffffffffffffffff, FF_NV, 0x7ff8000000000000, rtz, d   /* NaN -> 2^32-1, sign-extended */
    TEST_FCVT_I 39, fcvt.wu.d, 0x0, FF_NV, 0xfff0000000000000, rtz, d
    TEST_FCVT_I 40, fcvt.l.d, 0x7fffffffffffffff, FF_NV, 0x7ff8000000000000, rtz, d
    TEST_FCVT_I 41, fcvt.l.d, 0x7fffffffffffffff, FF_NV, 0x43e0000000000000, rtz, d
    TEST_FCVT_I 42, fcvt.l.d, 0x8000000000000000, 0, 0xc3e0000000000000, rtz, d
    TEST_FCVT_I 43, fcvt.l.d, 0x8000000000000000, FF_NV, 0xfff0000000000000, rtz, d
    TEST_FCVT_I 44, fcvt.l.d, 0x8000000000000000, FF_NV, 0xc3e158e460913d00, rtz, d
    TEST_FCVT_I 45, fcvt.l.d, 0x3, FF_NX, 0x4004000000000000, rmm, d
    TEST_FCVT_I 46, fcvt.l.d, 0xfffffffffffffffd, FF_NX, 0xc004000000000000, rmm, d
    TEST_FCVT_I 47, fcvt.l.d, 0x10000000000, FF_NX, 0x4270000000000800, rne, d
    TEST_FCVT_I 48, fcvt.lu.d, 0x0, FF_NV, 0xbff0000000000000, rtz, d
    TEST_FCVT_I 49, fcvt.lu.d, 0xffffffffffffffff, FF_NV, 0x43f0000000000000, rtz, d
    TEST_FCVT_I 50, fcvt.lu.d, 0x8000000000000000, 0, 0x43e0000000000000, rtz, d   /* 2^63 fits unsigned */
    TEST_FCVT_I 51, fcvt.lu.d, 0xffffffffffffffff, FF_NV, 0x7ff8000000000000, rtz, d
    TEST_FCVT_I 52, fcvt.lu.d, 0xffffffffffffffff, FF_NV, 0x7ff0000000000000, rtz, d
    TEST_FCVT_I 53, fcvt.lu.d, 0x2, FF_NX, 0x3ff8000000000000, rup, d
    TEST_FCVT_F 54, fcvt.d.w, 0x401c000000000000, 0, 0x7, , d
    TEST_FCVT_F 55, fcvt.d.w, 0xc01c000000000000, 0, 0xfffffffffffffff9, , d
    TEST_FCVT_F 56, fcvt.d.w, 0xc1e0000000000000, 0, 0xffffffff80000000, , d
    TEST_FCVT_F 57, fcvt.d.w, 0x3ff0000000000000, 0, 0x100000001, , d   /* low 32 bits only */
    TEST_FCVT_F 58, fcvt.d.w, 0x41dfffffffc00000, 0, 0x7fffffff, , d
    TEST_FCVT_F 59, fcvt.d.wu, 0x41efffffffe00000, 0, 0xffffffff, , d
    TEST_FCVT_F 60, fcvt.d.wu, 0x41efffffffe00000, 0, 0xffffffff, , d
    TEST_FCVT_F 61, fcvt.d.wu, 0x41e0000000000000, 0, 0xffffffff80000000, , d   /* low 32 bits, unsigned */
    TEST_FCVT_F 62, fcvt.d.l, 0xbff0000000000000, 0, 0xffffffffffffffff, rne, d
    TEST_FCVT_F 63, fcvt.d.l, 0x43e0000000000000, FF_NX, 0x7fffffffffffffff, rne, d
    TEST_FCVT_F 64, fcvt.d.l, 0x43dfffffffffffff, FF_NX, 0x7fffffffffffffff, rtz, d
    TEST_FCVT_F 65, fcvt.d.l, 0xc3e0000000000000, 0, 0x8000000000000000, rne, d
    TEST_FCVT_F 66, fcvt.d.l, 0x4340000000000000, FF_NX, 0x20000000000001, rne, d
    TEST_FCVT_F 67, fcvt.d.l, 0x4340000000000001, FF_NX, 0x20000000000001, rmm, d
    TEST_FCVT_F 68, fcvt.d.lu, 0x43f0000000000000, FF_NX, 0xffffffffffffffff, rne, d
    TEST_FCVT_F 69, fcvt.d.lu, 0x43efffffffffffff, FF_NX, 0xffffffffffffffff, rdn, d
    TEST_FCVT_F 70, fcvt.d.lu, 0x0000000000000000, 0, 0x0, rne, d

    /* ---- dynamic rounding mode (frm) ---- */
    TEST_DYN_I 71, fcvt.w.d, 2, FF_NX, 0x4004000000000000, 0, d     /*  2.5 rne */
    TEST_DYN_I 72, fcvt.w.d, 2, FF_NX, 0x4004000000000000, 1, d     /*  2.5 rtz */
    TEST_DYN_I 73, fcvt.w.d, 2, FF_NX, 0x4004000000000000, 2, d     /*  2.5 rdn */
    TEST_DYN_I 74, fcvt.w.d, 3, FF_NX, 0x4004000000000000, 3, d     /*  2.5 rup */
    TEST_DYN_I 75, fcvt.w.d, 3, FF_NX, 0x4004000000000000, 4, d     /*  2.5 rmm */
    TEST_DYN_I 76, fcvt.w.d, -3, FF_NX, 0xc004000000000000, 4, d    /* -2.5 rmm */
    TEST_DYN_I 77, fcvt.l.d, -3, FF_NX, 0xc004000000000000, 2, d    /* -2.5 rdn */
    TEST_DYN_I 78, fcvt.wu.d, 1, FF_NX, 0x3fe0000000000000, 4, d    /*  0.5 rmm */
    TEST_DYN_I 79, fcvt.lu.d, 0, FF_NX, 0x3fe0000000000000, 0, d    /*  0.5 rne */
    TEST_DYN_F 80, fcvt.d.l, 0x4340000000000000, FF_NX, 0x20000000000001, 0, d  /* 2^53+1 */
    TEST_DYN_F 81, fcvt.d.l, 0x4340000000000000, FF_NX, 0x20000000000001, 1, d
    TEST_DYN_F 82, fcvt.d.l, 0x4340000000000001, FF_NX, 0x20000000000001, 3, d
    TEST_DYN_F 83, fcvt.d.l, 0x4340000000000001, FF_NX, 0x20000000000001, 4, d
    TEST_DYN_F 84, fcvt.d.l, 0xc340000000000001, FF_NX, -0x20000000000001, 2, d
    TEST_DYN_F 85, fcvt.d.lu, 0x4340000000000002, FF_NX, 0x20000000000003, 0, d /* 2^53+3 */
    TEST_DYN_F 86, fcvt.d.lu, 0x4340000000000002, FF_NX, 0x20000000000003, 4, d
    
    TEST_END
