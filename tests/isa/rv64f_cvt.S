/* RV64F conversions: FCVT.{W,WU,L,LU}.S in every static rounding mode with RISC-V
 * saturation (NaN -> max, +-inf / out of range -> max/min, negative -> 0 for unsigned; 32-bit
 * results sign-extended), FCVT.S.{W,WU,L,LU} rounding, and the dynamic rounding mode from frm
 * including RMM.  Values of checks 1-70 from tests/isa/fpmodel.py. */
#include "isa.h"

/* conversion with rm = dyn and frm = frmv */
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
    TEST_FCVT_I 1, fcvt.w.s, 0x2, FF_NX, 0x40200000, rne, s   /* 2.5 rne */
    TEST_FCVT_I 2, fcvt.w.s, 0x2, FF_NX, 0x40200000, rtz, s   /* 2.5 rtz */
    TEST_FCVT_I 3, fcvt.w.s, 0x2, FF_NX, 0x40200000, rdn, s   /* 2.5 rdn */
    TEST_FCVT_I 4, fcvt.w.s, 0x3, FF_NX, 0x40200000, rup, s   /* 2.5 rup */
    TEST_FCVT_I 5, fcvt.w.s, 0x3, FF_NX, 0x40200000, rmm, s   /* 2.5 rmm */
    TEST_FCVT_I 6, fcvt.w.s, 0xfffffffffffffffe, FF_NX, 0xc0200000, rne, s   /* -2.5 rne */
    TEST_FCVT_I 7, fcvt.w.s, 0xfffffffffffffffe, FF_NX, 0xc0200000, rtz, s   /* -2.5 rtz */
    TEST_FCVT_I 8, fcvt.w.s, 0xfffffffffffffffd, FF_NX, 0xc0200000, rdn, s   /* -2.5 rdn */
    TEST_FCVT_I 9, fcvt.w.s, 0xfffffffffffffffe, FF_NX, 0xc0200000, rup, s   /* -2.5 rup */
    TEST_FCVT_I 10, fcvt.w.s, 0xfffffffffffffffd, FF_NX, 0xc0200000, rmm, s   /* -2.5 rmm */
    TEST_FCVT_I 11, fcvt.w.s, 0x0, FF_NX, 0x3f000000, rne, s   /* 0.5 rne */
    TEST_FCVT_I 12, fcvt.w.s, 0x0, FF_NX, 0x3f000000, rtz, s   /* 0.5 rtz */
    TEST_FCVT_I 13, fcvt.w.s, 0x0, FF_NX, 0x3f000000, rdn, s   /* 0.5 rdn */
    TEST_FCVT_I 14, fcvt.w.s, 0x1, FF_NX, 0x3f000000, rup, s   /* 0.5 rup */
    TEST_FCVT_I 15, fcvt.w.s, 0x1, FF_NX, 0x3f000000, rmm, s   /* 0.5 rmm */
    TEST_FCVT_I 16, fcvt.w.s, 0x0, FF_NX, 0xbf000000, rne, s   /* -0.5 rne */
    TEST_FCVT_I 17, fcvt.w.s, 0x0, FF_NX, 0xbf000000, rtz, s   /* -0.5 rtz */
    TEST_FCVT_I 18, fcvt.w.s, 0xffffffffffffffff, FF_NX, 0xbf000000, rdn, s   /* -0.5 rdn */
    TEST_FCVT_I 19, fcvt.w.s, 0x0, FF_NX, 0xbf000000, rup, s   /* -0.5 rup */
    TEST_FCVT_I 20, fcvt.w.s, 0xffffffffffffffff, FF_NX, 0xbf000000, rmm, s   /* -0.5 rmm */
    TEST_FCVT_I 21, fcvt.w.s, 0x2, FF_NX, 0x3fc00000, rne, s   /* 1.5 rne */
    TEST_FCVT_I 22, fcvt.w.s, 0x1, FF_NX, 0x3fc00000, rtz, s   /* 1.5 rtz */
    TEST_FCVT_I 23, fcvt.w.s, 0x1, FF_NX, 0x3fc00000, rdn, s   /* 1.5 rdn */
    TEST_FCVT_I 24, fcvt.w.s, 0x2, FF_NX, 0x3fc00000, rup, s   /* 1.5 rup */
    TEST_FCVT_I 25, fcvt.w.s, 0x2, FF_NX, 0x3fc00000, rmm, s   /* 1.5 rmm */
    TEST_FCVT_I 26, fcvt.w.s, 0x7fffffff, FF_NV, 0x7fc00000, rtz, s   /* NaN -> 2^31-1 */
    TEST_FCVT_I 27, fcvt.w.s, 0x7fffffff, FF_NV, 0x7f800000, rtz, s
    TEST_FCVT_I 28, fcvt.w.s, 0xffffffff80000000, FF_NV, 0xff800000, rtz, s
    TEST_FCVT_I 29, fcvt.w.s, 0x7fffffff, FF_NV, 0x4f000000, rtz, s   /* 2^31: out of range */
    TEST_FCVT_I 30, fcvt.w.s, 0xffffffff80000000, 0, 0xcf000000, rtz, s   /* -2^31: in range */
    TEST_FCVT_I 31, fcvt.w.s, 0x7fffffff, FF_NV, 0x4f32d05e, rtz, s
    TEST_FCVT_I 32, fcvt.w.s, 0xffffffff80000000, FF_NV, 0xcf32d05e, rtz, s
    TEST_FCVT_I 33, fcvt.wu.s, 0x0, FF_NV, 0xbf800000, rtz, s   /* negative: 0, NV */
    TEST_FCVT_I 34, fcvt.wu.s, 0x0, FF_NX, 0xbf000000, rtz, s   /* rounds to 0: NX only */
    TEST_FCVT_I 35, fcvt.wu.s, 0x0, FF_NV, 0xbf000000, rdn, s   /* rounds to -1: NV */
    TEST_FCVT_I 36, fcvt.wu.s, 0xffffffffb2d05e00, 0, 0x4f32d05e, rtz, s   /* 3e9 fits; sign-extended */
    TEST_FCVT_I 37, fcvt.wu.s, 0xffffffffffffffff, FF_NV, 0x4f9502f9, rtz, s   /* too big */
    TEST_FCVT_I 38, fcvt.wu.s, 0xffffffffffffffff, FF_NV, 0x7fc00000, rtz, s   /* NaN -> 2^32-1, sign-extended */
    TEST_FCVT_I 39, fcvt.wu.s, 0x0, FF_NV, 0xff800000, rtz, s
    TEST_FCVT_I 40, fcvt.l.s, 0x7fffffffffffffff, FF_NV, 0x7fc00000, rtz, s
    TEST_FCVT_I 41, fcvt.l.s, 0x7fffffffffffffff, FF_NV, 0x5f000000, rtz, s
    TEST_FCVT_I 42, fcvt.l.s, 0x8000000000000000, 0, 0xdf000000, rtz, s
    TEST_FCVT_I 43, fcvt.l.s, 0x8000000000000000, FF_NV, 0xff800000, rtz, s
    TEST_FCVT_I 44, fcvt.l.s, 0x8000000000000000, FF_NV, 0xdf0ac723, rtz, s
    TEST_FCVT_I 45, fcvt.l.s, 0x3, FF_NX, 0x40200000, rmm, s
    TEST_FCVT_I 46, fcvt.l.s, 0xfffffffffffffffd, FF_NX, 0xc0200000, rmm, s
    TEST_FCVT_I 47, fcvt.l.s, 0x10000000000, 0, 0x53800000, rne, s
    TEST_FCVT_I 48, fcvt.lu.s, 0x0, FF_NV, 0xbf800000, rtz, s
    TEST_FCVT_I 49, fcvt.lu.s, 0xffffffffffffffff, FF_NV, 0x5f800000, rtz, s
    TEST_FCVT_I 50, fcvt.lu.s, 0x8000000000000000, 0, 0x5f000000, rtz, s   /* 2^63 fits unsigned */
    TEST_FCVT_I 51, fcvt.lu.s, 0xffffffffffffffff, FF_NV, 0x7fc00000, rtz, s
    TEST_FCVT_I 52, fcvt.lu.s, 0xffffffffffffffff, FF_NV, 0x7f800000, rtz, s
    TEST_FCVT_I 53, fcvt.lu.s, 0x2, FF_NX, 0x3fc00000, rup, s
    TEST_FCVT_F 54, fcvt.s.w, 0x4b800000, FF_NX, 0x1000001, rne, s
    TEST_FCVT_F 55, fcvt.s.w, 0x4b800001, FF_NX, 0x1000001, rup, s
    TEST_FCVT_F 56, fcvt.s.w, 0xcf000000, 0, 0xffffffff80000000, rne, s
    TEST_FCVT_F 57, fcvt.s.w, 0x3f800000, 0, 0x100000001, rne, s   /* low 32 bits only */
    TEST_FCVT_F 58, fcvt.s.w, 0x4effffff, FF_NX, 0x7fffffff, rtz, s
    TEST_FCVT_F 59, fcvt.s.wu, 0x4f800000, FF_NX, 0xffffffff, rne, s
    TEST_FCVT_F 60, fcvt.s.wu, 0x4f7fffff, FF_NX, 0xffffffff, rtz, s
    TEST_FCVT_F 61, fcvt.s.wu, 0x4f000000, 0, 0xffffffff80000000, rne, s   /* low 32 bits, unsigned */
    TEST_FCVT_F 62, fcvt.s.l, 0xbf800000, 0, 0xffffffffffffffff, rne, s
    TEST_FCVT_F 63, fcvt.s.l, 0x5f000000, FF_NX, 0x7fffffffffffffff, rne, s
    TEST_FCVT_F 64, fcvt.s.l, 0x5effffff, FF_NX, 0x7fffffffffffffff, rtz, s
    TEST_FCVT_F 65, fcvt.s.l, 0xdf000000, 0, 0x8000000000000000, rne, s
    TEST_FCVT_F 66, fcvt.s.l, 0x5a000000, FF_NX, 0x20000000000001, rne, s
    TEST_FCVT_F 67, fcvt.s.l, 0x5a000001, FF_NX, 0x20000000000001, rup, s
    TEST_FCVT_F 68, fcvt.s.lu, 0x5f800000, FF_NX, 0xffffffffffffffff, rne, s
    TEST_FCVT_F 69, fcvt.s.lu, 0x5f7fffff, FF_NX, 0xffffffffffffffff, rdn, s
    TEST_FCVT_F 70, fcvt.s.lu, 0x00000000, 0, 0x0, rne, s

    /* ---- dynamic rounding mode (frm) ---- */
    TEST_DYN_I 71, fcvt.w.s, 2, FF_NX, 0x40200000, 0, s            /*  2.5 rne */
    TEST_DYN_I 72, fcvt.w.s, 2, FF_NX, 0x40200000, 1, s            /*  2.5 rtz */
    TEST_DYN_I 73, fcvt.w.s, 2, FF_NX, 0x40200000, 2, s            /*  2.5 rdn */
    TEST_DYN_I 74, fcvt.w.s, 3, FF_NX, 0x40200000, 3, s            /*  2.5 rup */
    TEST_DYN_I 75, fcvt.w.s, 3, FF_NX, 0x40200000, 4, s            /*  2.5 rmm */
    TEST_DYN_I 76, fcvt.w.s, -3, FF_NX, 0xc0200000, 4, s           /* -2.5 rmm */
    TEST_DYN_I 77, fcvt.l.s, -3, FF_NX, 0xc0200000, 2, s           /* -2.5 rdn */
    TEST_DYN_I 78, fcvt.wu.s, 1, FF_NX, 0x3f000000, 4, s           /*  0.5 rmm */
    TEST_DYN_I 79, fcvt.lu.s, 0, FF_NX, 0x3f000000, 0, s           /*  0.5 rne */
    TEST_DYN_F 80, fcvt.s.w, 0x4b800002, FF_NX, 0x1000003, 0, s    /* 2^24+3: tie -> even (up) */
    TEST_DYN_F 81, fcvt.s.w, 0x4b800001, FF_NX, 0x1000003, 1, s
    TEST_DYN_F 82, fcvt.s.w, 0x4b800002, FF_NX, 0x1000003, 3, s
    TEST_DYN_F 83, fcvt.s.w, 0x4b800002, FF_NX, 0x1000003, 4, s
    TEST_DYN_F 84, fcvt.s.w, 0xcb800002, FF_NX, -0x1000003, 2, s
    TEST_DYN_F 85, fcvt.s.l, 0x4b800002, FF_NX, 0x1000005, 0, s    /* 2^24+5: tie -> even (down) */
    TEST_DYN_F 86, fcvt.s.l, 0x4b800003, FF_NX, 0x1000005, 4, s

    TEST_END
