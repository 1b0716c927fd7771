/* RV64D arithmetic: add/sub/mul/div/sqrt in every rounding mode, FMA forms, min/max, compares,
 * fclass (all ten classes), sign injection, FMV.X.D/FMV.D.X, FLD/FSD, FCVT.S.D/FCVT.D.S
 * (rounding, overflow, underflow, NaNs, unboxed single input), canonical NaN 0x7ff8..0,
 * dynamic rounding, mstatus.FS.  Values of checks 1-116 and the FCVT.S.D/D.S constants come
 * from tests/isa/fpmodel.py.  Integer conversions: rv64d_cvt.S. */
#include "isa.h"

    TEST_BEGIN
    TEST_F2 1, fadd.d, 0x4008000000000000, 0, 0x3ff0000000000000, 0x4000000000000000, rne, d
    TEST_F2 2, fadd.d, 0x3ff4000000000000, 0, 0x4004000000000000, 0xbff4000000000000, rne, d
    TEST_F2 3, fadd.d, 0x3ff0000000000000, FF_NX, 0x3ff0000000000000, 0x3ca0000000000000, rne, d   /* 1 + half ulp, rne */
    TEST_F2 4, fadd.d, 0x3ff0000000000000, FF_NX, 0x3ff0000000000000, 0x3ca0000000000000, rtz, d   /* 1 + half ulp, rtz */
    TEST_F2 5, fadd.d, 0x3ff0000000000000, FF_NX, 0x3ff0000000000000, 0x3ca0000000000000, rdn, d   /* 1 + half ulp, rdn */
    TEST_F2 6, fadd.d, 0x3ff0000000000001, FF_NX, 0x3ff0000000000000, 0x3ca0000000000000, rup, d   /* 1 + half ulp, rup */
    TEST_F2 7, fadd.d, 0x3ff0000000000001, FF_NX, 0x3ff0000000000000, 0x3ca0000000000000, rmm, d   /* 1 + half ulp, rmm */
    TEST_F2 8, fadd.d, 0xbff0000000000000, FF_NX, 0xbff0000000000000, 0xbca0000000000000, rne, d   /* -1 - half ulp, rne */
    TEST_F2 9, fadd.d, 0xbff0000000000000, FF_NX, 0xbff0000000000000, 0xbca0000000000000, rtz, d   /* -1 - half ulp, rtz */
    TEST_F2 10, fadd.d, 0xbff0000000000001, FF_NX, 0xbff0000000000000, 0xbca0000000000000, rdn, d   /* -1 - half ulp, rdn */
    TEST_F2 11, fadd.d, 0xbff0000000000000, FF_NX, 0xbff0000000000000, 0xbca0000000000000, rup, d   /* -1 - half ulp, rup */
    TEST_F2 12, fadd.d, 0xbff0000000000001, FF_NX, 0xbff0000000000000, 0xbca0000000000000, rmm, d   /* -1 - half ulp, rmm */
    TEST_F2 13, fadd.d, 0x3ff0000000000002, FF_NX, 0x3ff0000000000001, 0x3ca0000000000000, rne, d   /* tie to even rounds up */
    TEST_F2 14, fadd.d, 0x3ff0000000000002, FF_NX, 0x3ff0000000000001, 0x3ca0000000000000, rmm, d   /* tie away */
    TEST_F2 15, fadd.d, 0x7ff0000000000000, FF_OF|FF_NX, 0x7fefffffffffffff, 0x7fefffffffffffff, rne, d   /* overflow -> inf */
    TEST_F2 16, fadd.d, 0x7fefffffffffffff, FF_OF|FF_NX, 0x7fefffffffffffff, 0x7fefffffffffffff, rtz, d   /* overflow rtz -> max */
    TEST_F2 17, fadd.d, 0xffefffffffffffff, FF_OF|FF_NX, 0xffefffffffffffff, 0xffefffffffffffff, rup, d   /* -overflow rup -> -max */
    TEST_F2 18, fadd.d, 0xfff0000000000000, FF_OF|FF_NX, 0xffefffffffffffff, 0xffefffffffffffff, rdn, d   /* -overflow rdn -> -inf */
    TEST_F2 19, fadd.d, 0x7ff8000000000000, FF_NV, 0x7ff0000000000000, 0xfff0000000000000, rne, d   /* inf - inf invalid */
    TEST_F2 20, fadd.d, 0x7ff0000000000000, 0, 0x7ff0000000000000, 0x3ff0000000000000, rne, d
    TEST_F2 21, fadd.d, 0x7ff8000000000000, FF_NV, 0x7ff0000000000001, 0x3ff0000000000000, rne, d   /* sNaN -> canonical, NV */
    TEST_F2 22, fadd.d, 0x7ff8000000000000, 0, 0x7ff8000000012345, 0x3ff0000000000000, rne, d   /* qNaN payload -> canonical, no flag */
    TEST_F2 23, fsub.d, 0x0000000000000000, 0, 0x3ff0000000000000, 0x3ff0000000000000, rne, d   /* x - x = +0 */
    TEST_F2 24, fsub.d, 0x8000000000000000, 0, 0x3ff0000000000000, 0x3ff0000000000000, rdn, d   /* x - x = -0 in rdn */
    TEST_F2 25, fadd.d, 0x8000000000000000, 0, 0x8000000000000000, 0x8000000000000000, rne, d   /* -0 + -0 = -0 */
    TEST_F2 26, fadd.d, 0x0000000000000000, 0, 0x8000000000000000, 0x0000000000000000, rne, d   /* -0 + +0 = +0 */
    TEST_F2 27, fsub.d, 0x4004000000000000, 0, 0x4008000000000000, 0x3fe0000000000000, rne, d
    TEST_F2 28, fsub.d, 0x7ff8000000000000, FF_NV, 0x7ff0000000000000, 0x7ff0000000000000, rne, d   /* inf - inf invalid */
    TEST_F2 29, fsub.d, 0x000fffffffffffff, 0, 0x0010000000000000, 0x0000000000000001, rne, d   /* normal - tiny: exact subnormal */
    TEST_F2 30, fmul.d, 0xc028000000000000, 0, 0x4008000000000000, 0xc010000000000000, rne, d
    TEST_F2 31, fmul.d, 0x7ff0000000000000, FF_OF|FF_NX, 0x7fefffffffffffff, 0x4000000000000000, rne, d
    TEST_F2 32, fmul.d, 0x7fefffffffffffff, FF_OF|FF_NX, 0x7fefffffffffffff, 0x4000000000000000, rtz, d
    TEST_F2 33, fmul.d, 0x0008000000000000, 0, 0x0010000000000000, 0x3fe0000000000000, rne, d   /* exact subnormal: no UF */
    TEST_F2 34, fmul.d, 0x0008000000000000, FF_UF|FF_NX, 0x0010000000000001, 0x3fe0000000000000, rne, d   /* inexact subnormal: UF NX */
    TEST_F2 35, fmul.d, 0x0000000000000000, FF_UF|FF_NX, 0x0000000000000001, 0x3fe0000000000000, rne, d   /* underflow to 0 */
    TEST_F2 36, fmul.d, 0x0000000000000001, FF_UF|FF_NX, 0x0000000000000001, 0x3fe0000000000000, rup, d   /* underflow rup -> min subnormal */
    TEST_F2 37, fmul.d, 0x7ff8000000000000, FF_NV, 0x0000000000000000, 0x7ff0000000000000, rne, d   /* 0 * inf invalid */
    TEST_F2 38, fmul.d, 0x8000000000000000, 0, 0x8000000000000000, 0x4014000000000000, rne, d   /* -0 * 5 = -0 */
    TEST_F2 39, fdiv.d, 0x3fd5555555555555, FF_NX, 0x3ff0000000000000, 0x4008000000000000, rne, d
    TEST_F2 40, fdiv.d, 0x3fd5555555555556, FF_NX, 0x3ff0000000000000, 0x4008000000000000, rup, d
    TEST_F2 41, fdiv.d, 0x3fd5555555555555, FF_NX, 0x3ff0000000000000, 0x4008000000000000, rdn, d
    TEST_F2 42, fdiv.d, 0xbfd5555555555555, FF_NX, 0xbff0000000000000, 0x4008000000000000, rtz, d
    TEST_F2 43, fdiv.d, 0x3fd5555555555555, FF_NX, 0x3ff0000000000000, 0x4008000000000000, rmm, d
    TEST_F2 44, fdiv.d, 0x7ff0000000000000, FF_DZ, 0x3ff0000000000000, 0x0000000000000000, rne, d   /* divide by zero */
    TEST_F2 45, fdiv.d, 0xfff0000000000000, FF_DZ, 0xbff0000000000000, 0x0000000000000000, rne, d   /* -1/+0 = -inf */
    TEST_F2 46, fdiv.d, 0xfff0000000000000, FF_DZ, 0x3ff0000000000000, 0x8000000000000000, rne, d   /* 1/-0 = -inf */
    TEST_F2 47, fdiv.d, 0x7ff8000000000000, FF_NV, 0x0000000000000000, 0x0000000000000000, rne, d   /* 0/0 invalid */
    TEST_F2 48, fdiv.d, 0x7ff8000000000000, FF_NV, 0x7ff0000000000000, 0x7ff0000000000000, rne, d   /* inf/inf invalid */
    TEST_F2 49, fdiv.d, 0x7ff0000000000000, 0, 0x7ff0000000000000, 0x0000000000000000, rne, d   /* inf/0 = inf, no DZ */
    TEST_F2 50, fdiv.d, 0xc010000000000000, 0, 0x4018000000000000, 0xbff8000000000000, rne, d
    TEST_F2 51, fdiv.d, 0x0004000000000000, 0, 0x0010000000000000, 0x4010000000000000, rne, d   /* exact subnormal */
    TEST_F1 52, fsqrt.d, 0x4000000000000000, 0, 0x4010000000000000, rne, d
    TEST_F1 53, fsqrt.d, 0x3ff6a09e667f3bcd, FF_NX, 0x4000000000000000, rne, d
    TEST_F1 54, fsqrt.d, 0x3ff6a09e667f3bcd, FF_NX, 0x4000000000000000, rup, d
    TEST_F1 55, fsqrt.d, 0x3ff6a09e667f3bcc, FF_NX, 0x4000000000000000, rtz, d
    TEST_F1 56, fsqrt.d, 0x7ff8000000000000, FF_NV, 0xbff0000000000000, rne, d   /* invalid */
    TEST_F1 57, fsqrt.d, 0x8000000000000000, 0, 0x8000000000000000, rne, d   /* sqrt(-0) = -0 */
    TEST_F1 58, fsqrt.d, 0x7ff0000000000000, 0, 0x7ff0000000000000, rne, d
    TEST_F1 59, fsqrt.d, 0x7ff8000000000000, FF_NV, 0xfff0000000000000, rne, d   /* invalid */
    TEST_F1 60, fsqrt.d, 0x7ff8000000000000, FF_NV, 0x7ff0000000000001, rne, d
    TEST_F1 61, fsqrt.d, 0x1ff6a09e667f3bcd, FF_NX, 0x0008000000000000, rne, d   /* subnormal input */
    TEST_F3 62, fmadd.d, 0x4024000000000000, 0, 0x4000000000000000, 0x4008000000000000, 0x4010000000000000, rne, d
    TEST_F3 63, fmsub.d, 0x4000000000000000, 0, 0x4000000000000000, 0x4008000000000000, 0x4010000000000000, rne, d
    TEST_F3 64, fnmsub.d, 0xc000000000000000, 0, 0x4000000000000000, 0x4008000000000000, 0x4010000000000000, rne, d
    TEST_F3 65, fnmadd.d, 0xc024000000000000, 0, 0x4000000000000000, 0x4008000000000000, 0x4010000000000000, rne, d
    TEST_F3 66, fmadd.d, 0x3c90000000000000, 0, 0x3ff0000002000000, 0x3ff0000002000000, 0xbff0000004000000, rne, d   /* single rounding: exact tiny residue */
    TEST_F3 67, fmsub.d, 0x3c90000000000000, 0, 0x3ff0000002000000, 0x3ff0000002000000, 0x3ff0000004000000, rne, d   /* same via fmsub */
    TEST_F3 68, fnmadd.d, 0xc000000004000000, FF_NX, 0x3ff0000002000000, 0x3ff0000002000000, 0x3ff0000004000000, rne, d   /* -(a*b) - c */
    TEST_F3 69, fmadd.d, 0x7ff8000000000000, FF_NV, 0x7ff0000000000000, 0x0000000000000000, 0x7ff8000000000000, rne, d   /* inf*0 + qNaN: invalid anyway */
    TEST_F3 70, fmadd.d, 0x7ff8000000000000, FF_NV, 0x7ff0000000000000, 0x3ff0000000000000, 0xfff0000000000000, rne, d   /* inf - inf invalid */
    TEST_F3 71, fmadd.d, 0x7ff8000000000000, 0, 0x3ff0000000000000, 0x3ff0000000000000, 0x7ff8000000012345, rne, d   /* qNaN addend -> canonical */
    TEST_F3 72, fmadd.d, 0xfff0000000000000, 0, 0x7fefffffffffffff, 0x4000000000000000, 0xfff0000000000000, rne, d   /* product overflow is absorbed by -inf: -inf exact */
    TEST_F3 73, fnmadd.d, 0x8000000000000000, 0, 0x0000000000000000, 0x4014000000000000, 0x0000000000000000, rne, d   /* -(0*5) - 0 = -0 */
    TEST_F3 74, fnmsub.d, 0x0000000000000000, 0, 0x0000000000000000, 0x4014000000000000, 0x0000000000000000, rne, d   /* -(0*5) + 0 = +0 */
    TEST_F3 75, fmsub.d, 0x8000000000000000, 0, 0x3ff0000000000000, 0x3ff0000000000000, 0x3ff0000000000000, rdn, d   /* 1*1-1 = -0 in rdn */
    TEST_F3 76, fmadd.d, 0x3ff0000000000001, FF_NX, 0x3ff0000000000000, 0x3ff0000000000000, 0x3ca0000000000000, rup, d   /* rup */
    TEST_F3 77, fmadd.d, 0x3ff0000000000001, FF_NX, 0x3ff0000000000000, 0x3ff0000000000000, 0x3ca0000000000000, rmm, d   /* tie away */
    TEST_F2N 78, fmin.d, 0x8000000000000000, 0, 0x0000000000000000, 0x8000000000000000, d   /* min(+0,-0) = -0 */
    TEST_F2N 79, fmin.d, 0x8000000000000000, 0, 0x8000000000000000, 0x0000000000000000, d   /* min(-0,+0) = -0 */
    TEST_F2N 80, fmax.d, 0x0000000000000000, 0, 0x8000000000000000, 0x0000000000000000, d   /* max(-0,+0) = +0 */
    TEST_F2N 81, fmax.d, 0x0000000000000000, 0, 0x0000000000000000, 0x8000000000000000, d   /* max(+0,-0) = +0 */
    TEST_F2N 82, fmin.d, 0x3ff0000000000000, 0, 0x7ff8000000000000, 0x3ff0000000000000, d   /* one qNaN: the number */
    TEST_F2N 83, fmax.d, 0x3ff0000000000000, 0, 0x3ff0000000000000, 0x7ff8000000012345, d   /* one qNaN: the number */
    TEST_F2N 84, fmin.d, 0xc000000000000000, FF_NV, 0x7ff0000000000001, 0xc000000000000000, d   /* sNaN: the number, NV */
    TEST_F2N 85, fmax.d, 0x7ff8000000000000, 0, 0x7ff8000000012345, 0x7ff8000000012345, d   /* two NaNs: canonical */
    TEST_F2N 86, fmin.d, 0x7ff8000000000000, FF_NV, 0x7ff0000000000001, 0x7ff8000000000000, d   /* two NaNs (one signaling): canonical, NV */
    TEST_F2N 87, fmin.d, 0xfff0000000000000, 0, 0x3ff0000000000000, 0xfff0000000000000, d
    TEST_F2N 88, fmax.d, 0x7ff0000000000000, 0, 0x7ff0000000000000, 0x7fefffffffffffff, d
    TEST_F2N 89, fmin.d, 0xc008000000000000, 0, 0x4000000000000000, 0xc008000000000000, d
    TEST_F2N 90, fmax.d, 0x4000000000000000, 0, 0x4000000000000000, 0xc008000000000000, d
    TEST_FCMP 91, feq.d, 1, 0, 0x3ff0000000000000, 0x3ff0000000000000, d
    TEST_FCMP 92, feq.d, 0, 0, 0x3ff0000000000000, 0x4000000000000000, d
    TEST_FCMP 93, feq.d, 1, 0, 0x8000000000000000, 0x0000000000000000, d   /* -0 == +0 */
    TEST_FCMP 94, feq.d, 0, 0, 0x7ff8000000000000, 0x7ff8000000000000, d   /* quiet: no flag */
    TEST_FCMP 95, feq.d, 0, FF_NV, 0x7ff0000000000001, 0x3ff0000000000000, d   /* sNaN: NV */
    TEST_FCMP 96, flt.d, 1, 0, 0x3ff0000000000000, 0x4000000000000000, d
    TEST_FCMP 97, flt.d, 0, 0, 0x4000000000000000, 0x3ff0000000000000, d
    TEST_FCMP 98, flt.d, 0, 0, 0x8000000000000000, 0x0000000000000000, d   /* -0 < +0 false */
    TEST_FCMP 99, flt.d, 0, FF_NV, 0x7ff8000000000000, 0x3ff0000000000000, d   /* signaling compare: NV on qNaN */
    TEST_FCMP 100, flt.d, 1, 0, 0xfff0000000000000, 0x7fefffffffffffff, d
    TEST_FCMP 101, fle.d, 1, 0, 0x3ff0000000000000, 0x3ff0000000000000, d
    TEST_FCMP 102, fle.d, 1, 0, 0x0000000000000000, 0x8000000000000000, d   /* +0 <= -0 */
    TEST_FCMP 103, fle.d, 0, 0, 0x4000000000000000, 0x3ff0000000000000, d
    TEST_FCMP 104, fle.d, 0, FF_NV, 0x3ff0000000000000, 0x7ff8000000000000, d   /* NV */
    TEST_FCLASS 105, fclass.d, 0x1, 0xfff0000000000000, d   /* -inf */
    TEST_FCLASS 106, fclass.d, 0x2, 0xbff8000000000000, d   /* -normal */
    TEST_FCLASS 107, fclass.d, 0x4, 0x8008000000000000, d   /* -subnormal */
    TEST_FCLASS 108, fclass.d, 0x8, 0x8000000000000000, d   /* -0 */
    TEST_FCLASS 109, fclass.d, 0x10, 0x0000000000000000, d   /* +0 */
    TEST_FCLASS 110, fclass.d, 0x20, 0x0000000000000001, d   /* +subnormal */
    TEST_FCLASS 111, fclass.d, 0x40, 0x0010000000000000, d   /* +normal */
    TEST_FCLASS 112, fclass.d, 0x80, 0x7ff0000000000000, d   /* +inf */
    TEST_FCLASS 113, fclass.d, 0x100, 0x7ff0000000000001, d   /* sNaN */
    TEST_FCLASS 114, fclass.d, 0x200, 0x7ff8000000000000, d   /* qNaN */
    TEST_FCLASS 115, fclass.d, 0x100, 0xfff0000000000123, d   /* negative sNaN */
    TEST_FCLASS 116, fclass.d, 0x40, 0x7fefffffffffffff, d   /* max normal */

    /* ---- sign injection ---- */
    TEST_F2N 117, fsgnj.d, 0xbff0000000000000, 0, 0x3ff0000000000000, 0xc000000000000000, d
    TEST_F2N 118, fsgnjn.d, 0x3ff0000000000000, 0, 0x3ff0000000000000, 0xc000000000000000, d
    TEST_F2N 119, fsgnjx.d, 0x3ff0000000000000, 0, 0xbff0000000000000, 0xc000000000000000, d
    TEST_F2N 120, fsgnjx.d, 0xbff0000000000000, 0, 0xbff0000000000000, 0x4000000000000000, d
    TEST_F2N 121, fsgnjn.d, 0xfff8000000012345, 0, 0x7ff8000000012345, 0x7ff8000000012345, d
    TEST_F2N 122, fsgnj.d, 0xfff0000000000001, 0, 0x7ff0000000000001, 0x8000000000000000, d

    /* ---- moves, loads, stores ---- */
    CHECK 123           /* FMV.D.X / FMV.X.D move all 64 bits unchanged (even sNaN) */
    li a0, 0x7ff0000000000001
    fmv.d.x fa0, a0
    fmv.x.d a1, fa0
    EXPECT_EQ a0, a1
    EXPECT_FFLAGS 0
    CHECK 124           /* FLD/FSD: 8 bytes, any pattern, incl. a boxed single */
    la a1, fdata
    li a2, 0x0123456789abcdef
    sd a2, 0(a1)
    fld fa0, 0(a1)
    EXPECT_F_d fa0, 0x0123456789abcdef
    LOAD_s fa1, 0x3f800000
    fsd fa1, 8(a1)
    ld a0, 8(a1)
    EXPECT a0, 0xffffffff3f800000
    fsd fa0, -8+16(a1)
    ld a0, 8(a1)
    EXPECT a0, 0x0123456789abcdef
    CHECK 125           /* a boxed single read as a double is a quiet NaN: canonical result */
    LOAD_s fa1, 0x3f800000
    LOAD_d fa2, 0x3ff0000000000000
    fadd.d fa0, fa1, fa2
    EXPECT_F_d fa0, 0x7ff8000000000000
    EXPECT_FFLAGS 0

    /* ---- FCVT.D.S: exact widening ---- */
    TEST_F1 126, fcvt.d.s, 0x3ff8000000000000, 0, 0xffffffff3fc00000, , d   /* 1.5 */
    TEST_F1 127, fcvt.d.s, 0x36a0000000000000, 0, 0xffffffff00000001, , d   /* 2^-149 */
    TEST_F1 128, fcvt.d.s, 0x8000000000000000, 0, 0xffffffff80000000, , d   /* -0 */
    TEST_F1 129, fcvt.d.s, 0xfff0000000000000, 0, 0xffffffffff800000, , d   /* -inf */
    TEST_F1 130, fcvt.d.s, 0x7ff8000000000000, FF_NV, 0xffffffff7f800001, , d /* sNaN */
    TEST_F1 131, fcvt.d.s, 0x7ff8000000000000, 0, 0xffffffffffc12345, , d   /* qNaN */
    TEST_F1 132, fcvt.d.s, 0x7ff8000000000000, 0, 0x000000003f800000, , d   /* unboxed */
    /* ---- FCVT.S.D: rounding ---- */
    TEST_F1 133, fcvt.s.d, 0x3eaaaaab, FF_NX, 0x3fd5555555555555, rne, s, d       /* 1/3 */
    TEST_F1 134, fcvt.s.d, 0x3eaaaaaa, FF_NX, 0x3fd5555555555555, rtz, s, d
    TEST_F1 135, fcvt.s.d, 0x3eaaaaab, FF_NX, 0x3fd5555555555555, rmm, s, d
    TEST_F1 136, fcvt.s.d, 0x7f800000, FF_OF|FF_NX, 0x7e37e43c8800759c, rne, s, d /* 1e300 */
    TEST_F1 137, fcvt.s.d, 0x7f7fffff, FF_OF|FF_NX, 0x7e37e43c8800759c, rtz, s, d
    TEST_F1 138, fcvt.s.d, 0x80000000, FF_UF|FF_NX, 0x81a56e1fc2f8f359, rne, s, d /* -1e-300 */
    TEST_F1 139, fcvt.s.d, 0x80000001, FF_UF|FF_NX, 0x81a56e1fc2f8f359, rdn, s, d
    TEST_F1 140, fcvt.s.d, 0x00000001, 0, 0x36a0000000000000, rne, s, d          /* 2^-149 exact */
    TEST_F1 141, fcvt.s.d, 0x00000000, FF_UF|FF_NX, 0x3690000000000000, rne, s, d /* 2^-150 tie */
    TEST_F1 142, fcvt.s.d, 0x00000001, FF_UF|FF_NX, 0x3690000000000000, rmm, s, d
    TEST_F1 143, fcvt.s.d, 0x7fc00000, FF_NV, 0x7ff0000000000001, rne, s, d      /* sNaN */
    TEST_F1 144, fcvt.s.d, 0x7fc00000, 0, 0xfff8000000012345, rne, s, d          /* qNaN */
    TEST_F1 145, fcvt.s.d, 0xff800000, 0, 0xfff0000000000000, rne, s, d          /* -inf */

    /* ---- dynamic rounding through frm ---- */
.macro DYN n, frmv, pos, neg
    CHECK \n
    csrwi frm, \frmv
    LOAD_d fa1, 0x3ff0000000000000     /* 1 + 2^-53: a tie */
    LOAD_d fa2, 0x3ca0000000000000
    fadd.d fa0, fa1, fa2, dyn
    EXPECT_F_d fa0, \pos
    LOAD_d fa1, 0xbff0000000000000
    LOAD_d fa2, 0xbca0000000000000
    fadd.d fa0, fa1, fa2
    EXPECT_F_d fa0, \neg
    EXPECT_FFLAGS FF_NX
.endm
    DYN 146, 0, 0x3ff0000000000000, 0xbff0000000000000
    DYN 147, 1, 0x3ff0000000000000, 0xbff0000000000000
    DYN 148, 2, 0x3ff0000000000000, 0xbff0000000000001
    DYN 149, 3, 0x3ff0000000000001, 0xbff0000000000000
    DYN 150, 4, 0x3ff0000000000001, 0xbff0000000000001
    CHECK 151
    csrwi frm, 5
    MUST_TRAP CAUSE_ILLEGAL, fadd.d fa0, fa1, fa2, dyn
    csrwi frm, 7
    MUST_TRAP CAUSE_ILLEGAL, fcvt.s.d fa0, fa1, dyn
    csrwi frm, 0

    /* ---- mstatus.FS ---- */
    CHECK 152
    li a0, MSTATUS_FS
    csrc mstatus, a0
    la a2, fdata
    MUST_TRAP CAUSE_ILLEGAL, fld fa0, 0(a2)
    MUST_TRAP CAUSE_ILLEGAL, fsd fa0, 0(a2)
    MUST_TRAP CAUSE_ILLEGAL, fmv.x.d a0, fa0
    MUST_TRAP CAUSE_ILLEGAL, fmv.d.x fa0, a0
    MUST_TRAP CAUSE_ILLEGAL, fmadd.d fa0, fa1, fa2, fa3
    MUST_TRAP CAUSE_ILLEGAL, fcvt.d.s fa0, fa1
    CHECK 153
    li a0, MSTATUS_FS_CLEAN
    csrs mstatus, a0
    fld fa0, 0(a2)
    csrr a1, mstatus
    EXPECT_MASKED a1, MSTATUS_FS | MSTATUS_SD, MSTATUS_FS_DIRTY | MSTATUS_SD

    TEST_END

    TEST_DATA
fdata:
    .dword 0, 0
