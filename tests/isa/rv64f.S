/* RV64F arithmetic: add/sub/mul/div/sqrt in every rounding mode, FMA forms (single
 * rounding, inf*0+qNaN), min/max (signed zeros, NaNs), comparisons (quiet/signaling), fclass
 * (all ten classes), sign injection, moves, NaN boxing, fflags/frm/fcsr, dynamic rounding
 * via frm, invalid frm, and mstatus.FS (Off traps, writes make it Dirty).
 * Values/flags of checks 1-116 come from tests/isa/fpmodel.py (IEEE 754 + RISC-V rules:
 * canonical NaN 0x7fc00000, tininess after rounding).  Conversions: rv64f_cvt.S. */
#include "isa.h"

    TEST_BEGIN
    TEST_F2 1, fadd.s, 0x40400000, 0, 0x3f800000, 0x40000000, rne, s
    TEST_F2 2, fadd.s, 0x3fa00000, 0, 0x40200000, 0xbfa00000, rne, s
    TEST_F2 3, fadd.s, 0x3f800000, FF_NX, 0x3f800000, 0x33800000, rne, s   /* 1 + half ulp, rne */
    TEST_F2 4, fadd.s, 0x3f800000, FF_NX, 0x3f800000, 0x33800000, rtz, s   /* 1 + half ulp, rtz */
    TEST_F2 5, fadd.s, 0x3f800000, FF_NX, 0x3f800000, 0x33800000, rdn, s   /* 1 + half ulp, rdn */
    TEST_F2 6, fadd.s, 0x3f800001, FF_NX, 0x3f800000, 0x33800000, rup, s   /* 1 + half ulp, rup */
    TEST_F2 7, fadd.s, 0x3f800001, FF_NX, 0x3f800000, 0x33800000, rmm, s   /* 1 + half ulp, rmm */
    TEST_F2 8, fadd.s, 0xbf800000, FF_NX, 0xbf800000, 0xb3800000, rne, s   /* -1 - half ulp, rne */
    TEST_F2 9, fadd.s, 0xbf800000, FF_NX, 0xbf800000, 0xb3800000, rtz, s   /* -1 - half ulp, rtz */
    TEST_F2 10, fadd.s, 0xbf800001, FF_NX, 0xbf800000, 0xb3800000, rdn, s   /* -1 - half ulp, rdn */
    TEST_F2 11, fadd.s, 0xbf800000, FF_NX, 0xbf800000, 0xb3800000, rup, s   /* -1 - half ulp, rup */
    TEST_F2 12, fadd.s, 0xbf800001, FF_NX, 0xbf800000, 0xb3800000, rmm, s   /* -1 - half ulp, rmm */
    TEST_F2 13, fadd.s, 0x3f800002, FF_NX, 0x3f800001, 0x33800000, rne, s   /* tie to even rounds up */
    TEST_F2 14, fadd.s, 0x3f800002, FF_NX, 0x3f800001, 0x33800000, rmm, s   /* tie away */
    TEST_F2 15, fadd.s, 0x7f800000, FF_OF|FF_NX, 0x7f7fffff, 0x7f7fffff, rne, s   /* overflow -> inf */
    TEST_F2 16, fadd.s, 0x7f7fffff, FF_OF|FF_NX, 0x7f7fffff, 0x7f7fffff, rtz, s   /* overflow rtz -> max */
    TEST_F2 17, fadd.s, 0xff7fffff, FF_OF|FF_NX, 0xff7fffff, 0xff7fffff, rup, s   /* -overflow rup -> -max */
    TEST_F2 18, fadd.s, 0xff800000, FF_OF|FF_NX, 0xff7fffff, 0xff7fffff, rdn, s   /* -overflow rdn -> -inf */
    TEST_F2 19, fadd.s, 0x7fc00000, FF_NV, 0x7f800000, 0xff800000, rne, s   /* inf - inf invalid */
    TEST_F2 20, fadd.s, 0x7f800000, 0, 0x7f800000, 0x3f800000, rne, s
    TEST_F2 21, fadd.s, 0x7fc00000, FF_NV, 0x7f800001, 0x3f800000, rne, s   /* sNaN -> canonical, NV */
    TEST_F2 22, fadd.s, 0x7fc00000, 0, 0x7fc12345, 0x3f800000, rne, s   /* qNaN payload -> canonical, no flag */
    TEST_F2 23, fsub.s, 0x00000000, 0, 0x3f800000, 0x3f800000, rne, s   /* x - x = +0 */
    TEST_F2 24, fsub.s, 0x80000000, 0, 0x3f800000, 0x3f800000, rdn, s   /* x - x = -0 in rdn */
    TEST_F2 25, fadd.s, 0x80000000, 0, 0x80000000, 0x80000000, rne, s   /* -0 + -0 = -0 */
    TEST_F2 26, fadd.s, 0x00000000, 0, 0x80000000, 0x00000000, rne, s   /* -0 + +0 = +0 */
    TEST_F2 27, fsub.s, 0x40200000, 0, 0x40400000, 0x3f000000, rne, s
    TEST_F2 28, fsub.s, 0x7fc00000, FF_NV, 0x7f800000, 0x7f800000, rne, s   /* inf - inf invalid */
    TEST_F2 29, fsub.s, 0x007fffff, 0, 0x00800000, 0x00000001, rne, s   /* normal - tiny: exact subnormal */
    TEST_F2 30, fmul.s, 0xc1400000, 0, 0x40400000, 0xc0800000, rne, s
    TEST_F2 31, fmul.s, 0x7f800000, FF_OF|FF_NX, 0x7f7fffff, 0x40000000, rne, s
    TEST_F2 32, fmul.s, 0x7f7fffff, FF_OF|FF_NX, 0x7f7fffff, 0x40000000, rtz, s
    TEST_F2 33, fmul.s, 0x00400000, 0, 0x00800000, 0x3f000000, rne, s   /* exact subnormal: no UF */
    TEST_F2 34, fmul.s, 0x00400000, FF_UF|FF_NX, 0x00800001, 0x3f000000, rne, s   /* inexact subnormal: UF NX */
    TEST_F2 35, fmul.s, 0x00000000, FF_UF|FF_NX, 0x00000001, 0x3f000000, rne, s   /* underflow to 0 */
    TEST_F2 36, fmul.s, 0x00000001, FF_UF|FF_NX, 0x00000001, 0x3f000000, rup, s   /* underflow rup -> min subnormal */
    TEST_F2 37, fmul.s, 0x7fc00000, FF_NV, 0x00000000, 0x7f800000, rne, s   /* 0 * inf invalid */
    TEST_F2 38, fmul.s, 0x80000000, 0, 0x80000000, 0x40a00000, rne, s   /* -0 * 5 = -0 */
    TEST_F2 39, fdiv.s, 0x3eaaaaab, FF_NX, 0x3f800000, 0x40400000, rne, s
    TEST_F2 40, fdiv.s, 0x3eaaaaab, FF_NX, 0x3f800000, 0x40400000, rup, s
    TEST_F2 41, fdiv.s, 0x3eaaaaaa, FF_NX, 0x3f800000, 0x40400000, rdn, s
    TEST_F2 42, fdiv.s, 0xbeaaaaaa, FF_NX, 0xbf800000, 0x40400000, rtz, s
    TEST_F2 43, fdiv.s, 0x3eaaaaab, FF_NX, 0x3f800000, 0x40400000, rmm, s
    TEST_F2 44, fdiv.s, 0x7f800000, FF_DZ, 0x3f800000, 0x00000000, rne, s   /* divide by zero */
    TEST_F2 45, fdiv.s, 0xff800000, FF_DZ, 0xbf800000, 0x00000000, rne, s   /* -1/+0 = -inf */
    TEST_F2 46, fdiv.s, 0xff800000, FF_DZ, 0x3f800000, 0x80000000, rne, s   /* 1/-0 = -inf */
    TEST_F2 47, fdiv.s, 0x7fc00000, FF_NV, 0x00000000, 0x00000000, rne, s   /* 0/0 invalid */
    TEST_F2 48, fdiv.s, 0x7fc00000, FF_NV, 0x7f800000, 0x7f800000, rne, s   /* inf/inf invalid */
    TEST_F2 49, fdiv.s, 0x7f800000, 0, 0x7f800000, 0x00000000, rne, s   /* inf/0 = inf, no DZ */
    TEST_F2 50, fdiv.s, 0xc0800000, 0, 0x40c00000, 0xbfc00000, rne, s
    TEST_F2 51, fdiv.s, 0x00200000, 0, 0x00800000, 0x40800000, rne, s   /* exact subnormal */
    TEST_F1 52, fsqrt.s, 0x40000000, 0, 0x40800000, rne, s
    TEST_F1 53, fsqrt.s, 0x3fb504f3, FF_NX, 0x40000000, rne, s
    TEST_F1 54, fsqrt.s, 0x3fb504f4, FF_NX, 0x40000000, rup, s
    TEST_F1 55, fsqrt.s, 0x3fb504f3, FF_NX, 0x40000000, rtz, s
    TEST_F1 56, fsqrt.s, 0x7fc00000, FF_NV, 0xbf800000, rne, s   /* invalid */
    TEST_F1 57, fsqrt.s, 0x80000000, 0, 0x80000000, rne, s   /* sqrt(-0) = -0 */
    TEST_F1 58, fsqrt.s, 0x7f800000, 0, 0x7f800000, rne, s
    TEST_F1 59, fsqrt.s, 0x7fc00000, FF_NV, 0xff800000, rne, s   /* invalid */
    TEST_F1 60, fsqrt.s, 0x7fc00000, FF_NV, 0x7f800001, rne, s
    TEST_F1 61, fsqrt.s, 0x1fb504f3, FF_NX, 0x00400000, rne, s   /* subnormal input */
    TEST_F3 62, fmadd.s, 0x41200000, 0, 0x40000000, 0x40400000, 0x40800000, rne, s
    TEST_F3 63, fmsub.s, 0x40000000, 0, 0x40000000, 0x40400000, 0x40800000, rne, s
    TEST_F3 64, fnmsub.s, 0xc0000000, 0, 0x40000000, 0x40400000, 0x40800000, rne, s
    TEST_F3 65, fnmadd.s, 0xc1200000, 0, 0x40000000, 0x40400000, 0x40800000, rne, s
    TEST_F3 66, fmadd.s, 0x33800000, 0, 0x3f800800, 0x3f800800, 0xbf801000, rne, s   /* single rounding: exact tiny residue */
    TEST_F3 67, fmsub.s, 0x33800000, 0, 0x3f800800, 0x3f800800, 0x3f801000, rne, s   /* same via fmsub */
    TEST_F3 68, fnmadd.s, 0xc0001000, FF_NX, 0x3f800800, 0x3f800800, 0x3f801000, rne, s   /* -(a*b) - c */
    TEST_F3 69, fmadd.s, 0x7fc00000, FF_NV, 0x7f800000, 0x00000000, 0x7fc00000, rne, s   /* inf*0 + qNaN: invalid anyway */
    TEST_F3 70, fmadd.s, 0x7fc00000, FF_NV, 0x7f800000, 0x3f800000, 0xff800000, rne, s   /* inf - inf invalid */
    TEST_F3 71, fmadd.s, 0x7fc00000, 0, 0x3f800000, 0x3f800000, 0x7fc12345, rne, s   /* qNaN addend -> canonical */
    TEST_F3 72, fmadd.s, 0xff800000, 0, 0x7f7fffff, 0x40000000, 0xff800000, rne, s   /* product overflow is absorbed by -inf: -inf exact */
    TEST_F3 73, fnmadd.s, 0x80000000, 0, 0x00000000, 0x40a00000, 0x00000000, rne, s   /* -(0*5) - 0 = -0 */
    TEST_F3 74, fnmsub.s, 0x00000000, 0, 0x00000000, 0x40a00000, 0x00000000, rne, s   /* -(0*5) + 0 = +0 */
    TEST_F3 75, fmsub.s, 0x80000000, 0, 0x3f800000, 0x3f800000, 0x3f800000, rdn, s   /* 1*1-1 = -0 in rdn */
    TEST_F3 76, fmadd.s, 0x3f800001, FF_NX, 0x3f800000, 0x3f800000, 0x33800000, rup, s   /* rup */
    TEST_F3 77, fmadd.s, 0x3f800001, FF_NX, 0x3f800000, 0x3f800000, 0x33800000, rmm, s   /* tie away */
    TEST_F2N 78, fmin.s, 0x80000000, 0, 0x00000000, 0x80000000, s   /* min(+0,-0) = -0 */
    TEST_F2N 79, fmin.s, 0x80000000, 0, 0x80000000, 0x00000000, s   /* min(-0,+0) = -0 */
    TEST_F2N 80, fmax.s, 0x00000000, 0, 0x80000000, 0x00000000, s   /* max(-0,+0) = +0 */
    TEST_F2N 81, fmax.s, 0x00000000, 0, 0x00000000, 0x80000000, s   /* max(+0,-0) = +0 */
    TEST_F2N 82, fmin.s, 0x3f800000, 0, 0x7fc00000, 0x3f800000, s   /* one qNaN: the number */
    TEST_F2N 83, fmax.s, 0x3f800000, 0, 0x3f800000, 0x7fc12345, s   /* one qNaN: the number */
    TEST_F2N 84, fmin.s, 0xc0000000, FF_NV, 0x7f800001, 0xc0000000, s   /* sNaN: the number, NV */
    TEST_F2N 85, fmax.s, 0x7fc00000, 0, 0x7fc12345, 0x7fc12345, s   /* two NaNs: canonical */
    TEST_F2N 86, fmin.s, 0x7fc00000, FF_NV, 0x7f800001, 0x7fc00000, s   /* two NaNs (one signaling): canonical, NV */
    TEST_F2N 87, fmin.s, 0xff800000, 0, 0x3f800000, 0xff800000, s
    TEST_F2N 88, fmax.s, 0x7f800000, 0, 0x7f800000, 0x7f7fffff, s
    TEST_F2N 89, fmin.s, 0xc0400000, 0, 0x40000000, 0xc0400000, s
    TEST_F2N 90, fmax.s, 0x40000000, 0, 0x40000000, 0xc0400000, s
    TEST_FCMP 91, feq.s, 1, 0, 0x3f800000, 0x3f800000, s
    TEST_FCMP 92, feq.s, 0, 0, 0x3f800000, 0x40000000, s
    TEST_FCMP 93, feq.s, 1, 0, 0x80000000, 0x00000000, s   /* -0 == +0 */
    TEST_FCMP 94, feq.s, 0, 0, 0x7fc00000, 0x7fc00000, s   /* quiet: no flag */
    TEST_FCMP 95, feq.s, 0, FF_NV, 0x7f800001, 0x3f800000, s   /* sNaN: NV */
    TEST_FCMP 96, flt.s, 1, 0, 0x3f800000, 0x40000000, s
    TEST_FCMP 97, flt.s, 0, 0, 0x40000000, 0x3f800000, s
    TEST_FCMP 98, flt.s, 0, 0, 0x80000000, 0x00000000, s   /* -0 < +0 false */
    TEST_FCMP 99, flt.s, 0, FF_NV, 0x7fc00000, 0x3f800000, s   /* signaling compare: NV on qNaN */
    TEST_FCMP 100, flt.s, 1, 0, 0xff800000, 0x7f7fffff, s
    TEST_FCMP 101, fle.s, 1, 0, 0x3f800000, 0x3f800000, s
    TEST_FCMP 102, fle.s, 1, 0, 0x00000000, 0x80000000, s   /* +0 <= -0 */
    TEST_FCMP 103, fle.s, 0, 0, 0x40000000, 0x3f800000, s
    TEST_FCMP 104, fle.s, 0, FF_NV, 0x3f800000, 0x7fc00000, s   /* NV */
    TEST_FCLASS 105, fclass.s, 0x1, 0xff800000, s   /* -inf */
    TEST_FCLASS 106, fclass.s, 0x2, 0xbfc00000, s   /* -normal */
    TEST_FCLASS 107, fclass.s, 0x4, 0x80400000, s   /* -subnormal */
    TEST_FCLASS 108, fclass.s, 0x8, 0x80000000, s   /* -0 */
    TEST_FCLASS 109, fclass.s, 0x10, 0x00000000, s   /* +0 */
    TEST_FCLASS 110, fclass.s, 0x20, 0x00000001, s   /* +subnormal */
    TEST_FCLASS 111, fclass.s, 0x40, 0x00800000, s   /* +normal */
    TEST_FCLASS 112, fclass.s, 0x80, 0x7f800000, s   /* +inf */
    TEST_FCLASS 113, fclass.s, 0x100, 0x7f800001, s   /* sNaN */
    TEST_FCLASS 114, fclass.s, 0x200, 0x7fc00000, s   /* qNaN */
    TEST_FCLASS 115, fclass.s, 0x100, 0xff800123, s   /* negative sNaN */
    TEST_FCLASS 116, fclass.s, 0x40, 0x7f7fffff, s   /* max normal */

    /* ---- sign injection: no canonicalization, no flags ---- */
    TEST_F2N 117, fsgnj.s, 0xbf800000, 0, 0x3f800000, 0xc0000000, s
    TEST_F2N 118, fsgnjn.s, 0x3f800000, 0, 0x3f800000, 0xc0000000, s
    TEST_F2N 119, fsgnjx.s, 0x3f800000, 0, 0xbf800000, 0xc0000000, s
    TEST_F2N 120, fsgnjx.s, 0xbf800000, 0, 0xbf800000, 0x40000000, s
    TEST_F2N 121, fsgnjn.s, 0xffc12345, 0, 0x7fc12345, 0x7fc12345, s  /* NaN payload kept */
    TEST_F2N 122, fsgnj.s, 0xff800001, 0, 0x7f800001, 0x80000000, s   /* sNaN: no NV */

    /* ---- moves ---- */
    CHECK 123           /* FMV.X.W sign-extends bit 31 */
    LOAD_s fa1, 0x80000001
    fmv.x.w a0, fa1
    EXPECT a0, 0xffffffff80000001
    LOAD_s fa1, 0x7f800000
    fmv.x.w a0, fa1
    EXPECT a0, 0x7f800000
    CHECK 124           /* FMV.W.X takes the low 32 bits and NaN-boxes */
    li a0, 0x123456783f800000
    fmv.w.x fa0, a0
    EXPECT_F_s fa0, 0x3f800000
    EXPECT_FFLAGS 0

    /* ---- NaN boxing: an improperly boxed single reads as the canonical NaN ---- */
    CHECK 125
    LOAD_d fa1, 0x000000003f800000
    fsflags zero
    fadd.s fa0, fa1, fa1
    EXPECT_F_s fa0, 0x7fc00000
    EXPECT_FFLAGS 0       /* canonical NaN is quiet */
    CHECK 126
    LOAD_d fa1, 0xfffffffe3f800000   /* one upper bit clear is enough */
    LOAD_s fa2, 0x3f800000
    fmul.s fa0, fa2, fa1
    EXPECT_F_s fa0, 0x7fc00000
    EXPECT_FFLAGS 0
    CHECK 127           /* transfers (FMV.X.W, FSW) move the raw low bits */
    LOAD_d fa1, 0x123456783f800000
    fmv.x.w a0, fa1
    EXPECT a0, 0x3f800000
    la a1, fdata
    li a2, -1
    sd a2, 0(a1)
    fsw fa1, 0(a1)
    ld a0, 0(a1)
    EXPECT a0, 0xffffffff3f800000
    CHECK 128           /* FLW NaN-boxes; FSW writes 4 bytes only */
    li a2, 0x1122334440490fdb
    sd a2, 0(a1)
    flw fa0, 0(a1)
    EXPECT_F_s fa0, 0x40490fdb
    flw fa2, 4(a1)
    EXPECT_F_s fa2, 0x11223344
    fsw fa0, 4(a1)
    ld a0, 0(a1)
    EXPECT a0, 0x40490fdb40490fdb
    CHECK 129           /* compares and fclass see the canonical (quiet) NaN */
    LOAD_d fa1, 0x000000003f800000
    feq.s a0, fa1, fa1
    EXPECT a0, 0
    EXPECT_FFLAGS 0
    fclass.s a0, fa1
    EXPECT a0, 0x200
    CHECK 130
    fcvt.w.s a0, fa1, rtz
    EXPECT a0, 0x7fffffff
    EXPECT_FFLAGS FF_NV
    CHECK 131           /* sign injection of an unboxed input: canonical NaN with b's sign */
    LOAD_s fa2, 0xc0000000
    fsgnj.s fa0, fa1, fa2
    EXPECT_F_s fa0, 0xffc00000
    CHECK 132           /* min with an unboxed operand returns the other one */
    fmin.s fa0, fa1, fa2
    EXPECT_F_s fa0, 0xc0000000
    EXPECT_FFLAGS 0

    /* ---- fflags / frm / fcsr ---- */
    CHECK 133           /* flags accumulate */
    fsflags zero
    LOAD_s fa1, 0x3f800000
    LOAD_s fa2, 0x00000000
    fdiv.s fa0, fa1, fa2
    LOAD_s fa2, 0x33800000
    fadd.s fa0, fa1, fa2
    frflags a0
    EXPECT a0, FF_DZ | FF_NX
    CHECK 134           /* fcsr = frm << 5 | fflags; bits 8+ read as zero */
    li a0, 0xffffffff
    csrw fcsr, a0
    csrr a1, fcsr
    EXPECT a1, 0xff
    csrr a1, frm
    EXPECT a1, 7
    csrr a1, fflags
    EXPECT a1, 0x1f
    CHECK 135
    csrwi fcsr, 0
    csrwi frm, 3
    csrwi fflags, 5
    csrr a1, fcsr
    EXPECT a1, 0x65
    csrci fflags, 1
    csrsi frm, 4        /* 3 | 4 = 7 */
    frcsr a1
    EXPECT a1, 0xe4
    CHECK 136           /* fsrm / fsflags / fscsr return the old value */
    li a2, 2
    fsrm a0, a2
    EXPECT a0, 7
    frrm a0
    EXPECT a0, 2
    li a2, 0x10
    fsflags a0, a2
    EXPECT a0, 4
    li a2, 0x21
    fscsr a0, a2
    EXPECT a0, 0x50
    frcsr a0
    EXPECT a0, 0x21

    /* ---- dynamic rounding through frm (incl. RMM) ---- */
.macro DYN n, frmv, pos, neg
    CHECK \n
    csrwi frm, \frmv
    LOAD_s fa1, 0x3f800000     /* 1 + 2^-24 (half an ulp: a tie) */
    LOAD_s fa2, 0x33800000
    fadd.s fa0, fa1, fa2, dyn
    EXPECT_F_s fa0, \pos
    LOAD_s fa1, 0xbf800000     /* -1 - 2^-24 */
    LOAD_s fa2, 0xb3800000
    fadd.s fa0, fa1, fa2
    EXPECT_F_s fa0, \neg
    EXPECT_FFLAGS FF_NX
.endm
    DYN 137, 0, 0x3f800000, 0xbf800000
    DYN 138, 1, 0x3f800000, 0xbf800000
    DYN 139, 2, 0x3f800000, 0xbf800001
    DYN 140, 3, 0x3f800001, 0xbf800000
    DYN 141, 4, 0x3f800001, 0xbf800001
    CHECK 142           /* frm = 5, 6, 7: a dynamic-rm instruction is illegal; static rm works */
    csrwi frm, 5
    MUST_TRAP CAUSE_ILLEGAL, fadd.s fa0, fa1, fa2, dyn
    csrwi frm, 6
    MUST_TRAP CAUSE_ILLEGAL, fmul.s fa0, fa1, fa2, dyn
    csrwi frm, 7
    MUST_TRAP CAUSE_ILLEGAL, fsqrt.s fa0, fa1, dyn
    LOAD_s fa1, 0x3f800000
    LOAD_s fa2, 0x40000000
    fadd.s fa0, fa1, fa2, rne
    EXPECT_F_s fa0, 0x40400000
    csrwi frm, 0

    /* ---- mstatus.FS ---- */
    CHECK 143           /* FS=Off: FP instructions and FP CSRs are illegal; SD=0 */
    LOAD_s fs0, 0x12345678
    li a0, MSTATUS_FS
    csrc mstatus, a0
    csrr a1, mstatus
    EXPECT_MASKED a1, MSTATUS_FS | MSTATUS_SD, 0
    MUST_TRAP CAUSE_ILLEGAL, fadd.s fa0, fa1, fa2
    MUST_TRAP CAUSE_ILLEGAL, fmv.x.w a0, fa1
    MUST_TRAP CAUSE_ILLEGAL, fmv.w.x fa0, zero
    la a2, fdata
    MUST_TRAP CAUSE_ILLEGAL, flw fa0, 0(a2)
    MUST_TRAP CAUSE_ILLEGAL, fsw fa0, 0(a2)
    MUST_TRAP CAUSE_ILLEGAL, csrr a0, fflags
    MUST_TRAP CAUSE_ILLEGAL, csrw frm, zero
    MUST_TRAP CAUSE_ILLEGAL, csrr a0, fcsr
    MUST_TRAP CAUSE_ILLEGAL, fcvt.s.w fa0, zero
    CHECK 144           /* state survives Off -> Initial */
    li a0, MSTATUS_FS_INITIAL
    csrs mstatus, a0
    fmv.x.w a0, fs0
    EXPECT a0, 0x12345678
    CHECK 145           /* an FP register write sets FS=Dirty and SD */
    li a0, MSTATUS_FS
    csrc mstatus, a0
    li a0, MSTATUS_FS_INITIAL
    csrs mstatus, a0
    fadd.s fa0, fa1, fa2
    csrr a1, mstatus
    EXPECT_MASKED a1, MSTATUS_FS | MSTATUS_SD, MSTATUS_FS_DIRTY | MSTATUS_SD
    CHECK 146           /* from Clean: FMV.W.X dirties */
    li a0, MSTATUS_FS
    csrc mstatus, a0
    li a0, MSTATUS_FS_CLEAN
    csrs mstatus, a0
    csrr a1, mstatus
    EXPECT_MASKED a1, MSTATUS_FS | MSTATUS_SD, MSTATUS_FS_CLEAN
    fmv.w.x fa0, zero
    csrr a1, mstatus
    EXPECT_MASKED a1, MSTATUS_FS | MSTATUS_SD, MSTATUS_FS_DIRTY | MSTATUS_SD
    CHECK 147           /* from Initial: writing fflags dirties */
    li a0, MSTATUS_FS
    csrc mstatus, a0
    li a0, MSTATUS_FS_INITIAL
    csrs mstatus, a0
    csrwi fflags, 1
    csrr a1, mstatus
    EXPECT_MASKED a1, MSTATUS_FS | MSTATUS_SD, MSTATUS_FS_DIRTY | MSTATUS_SD
    CHECK 148           /* from Initial: FLW dirties */
    li a0, MSTATUS_FS
    csrc mstatus, a0
    li a0, MSTATUS_FS_INITIAL
    csrs mstatus, a0
    la a2, fdata
    flw fa0, 0(a2)
    csrr a1, mstatus
    EXPECT_MASKED a1, MSTATUS_FS | MSTATUS_SD, MSTATUS_FS_DIRTY | MSTATUS_SD
    csrwi fflags, 0

    TEST_END

    TEST_DATA
fdata:
    .dword 0, 0
