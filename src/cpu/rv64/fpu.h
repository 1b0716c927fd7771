/* IEEE-754 binary32/binary64 arithmetic exactly as the RISC-V F and D extensions define it
 * (RISC-V unprivileged ISA, chapters "F" and "D", version 20191213).
 *
 * Every function works on raw register bit patterns and is pure apart from OR-ing exception
 * flags into *fflags, so the hart can call it from any thread.
 *  - Single-precision operands are 64-bit f-register values: a value whose upper 32 bits are
 *    not all ones is not a valid NaN-boxed single and is read as the canonical NaN (§12.2).
 *  - Single-precision results come back NaN-boxed (upper 32 bits all ones).
 *  - A NaN result is always the canonical NaN (0x7fc00000 / 0x7ff8000000000000), except for
 *    the sign-injection instructions, which never look at NaN payloads.
 *  - `rm` is a static rounding mode, already resolved from frm by the caller (0..4 below);
 *    the caller raises an illegal-instruction trap for reserved modes and never passes them.
 *  - Integer results are the value written to rd: W/WU conversions sign-extend their 32-bit
 *    result to 64 bits. Integer sources are the full x-register value; W/WU conversions use
 *    its low 32 bits.
 *  - Out-of-range and NaN conversions to integer saturate as the table in §11.7 says and set NV. */
#ifndef TESSERA_CPU_RV64_FPU_H
#define TESSERA_CPU_RV64_FPU_H

#include <stdint.h>

enum fpu_rm { FPU_RNE = 0, FPU_RTZ = 1, FPU_RDN = 2, FPU_RUP = 3, FPU_RMM = 4 };

#define FPU_NX 0x01u /* inexact */
#define FPU_UF 0x02u /* underflow (tininess detected after rounding) */
#define FPU_OF 0x04u /* overflow */
#define FPU_DZ 0x08u /* divide by zero */
#define FPU_NV 0x10u /* invalid operation */

/* The x86-64 host's MXCSR (Intel SDM vol. 1 §10.2.3), for fpu.c and the JIT's inline FP: the
 * state both keep while C code runs (all exceptions masked, round to nearest, no FTZ/DAZ,
 * flags clear), the sticky flags that have RISC-V peers (IE, ZE, OE, UE, PE; not DE, the
 * denormal operand, which has none), and the fflags those bits mean: IE -> NV, ZE -> DZ,
 * OE -> OF, UE -> UF, PE -> NX. A constant expression, so the JIT can tabulate it. */
#define FPU_MXCSR_BASE  0x1f80u
#define FPU_MXCSR_FLAGS 0x3du
#define FPU_FLAGS_OF_MXCSR(csr)                                                                  \
    ((((csr)&0x01u) << 4) | (((csr)&0x04u) << 1) | (((csr)&0x08u) >> 1) | (((csr)&0x10u) >> 3) | \
     (((csr)&0x20u) >> 5))

#define FPU_DECLARE_PREC(p)                                                                      \
    uint64_t fpu_add_##p(uint64_t a, uint64_t b, unsigned rm, unsigned *fflags);                 \
    uint64_t fpu_sub_##p(uint64_t a, uint64_t b, unsigned rm, unsigned *fflags);                 \
    uint64_t fpu_mul_##p(uint64_t a, uint64_t b, unsigned rm, unsigned *fflags);                 \
    uint64_t fpu_div_##p(uint64_t a, uint64_t b, unsigned rm, unsigned *fflags);                 \
    uint64_t fpu_sqrt_##p(uint64_t a, unsigned rm, unsigned *fflags);                            \
    /* fmadd: a*b+c, fmsub: a*b-c, fnmsub: -(a*b)+c, fnmadd: -(a*b)-c, one rounding. */          \
    uint64_t fpu_madd_##p(uint64_t a, uint64_t b, uint64_t c, unsigned rm, unsigned *fflags);    \
    uint64_t fpu_msub_##p(uint64_t a, uint64_t b, uint64_t c, unsigned rm, unsigned *fflags);    \
    uint64_t fpu_nmsub_##p(uint64_t a, uint64_t b, uint64_t c, unsigned rm, unsigned *fflags);   \
    uint64_t fpu_nmadd_##p(uint64_t a, uint64_t b, uint64_t c, unsigned rm, unsigned *fflags);   \
    /* minimumNumber/maximumNumber of the 2.2 F extension: -0 < +0, NV on signaling NaN. */      \
    uint64_t fpu_min_##p(uint64_t a, uint64_t b, unsigned *fflags);                              \
    uint64_t fpu_max_##p(uint64_t a, uint64_t b, unsigned *fflags);                              \
    uint64_t fpu_sgnj_##p(uint64_t a, uint64_t b);                                               \
    uint64_t fpu_sgnjn_##p(uint64_t a, uint64_t b);                                              \
    uint64_t fpu_sgnjx_##p(uint64_t a, uint64_t b);                                              \
    /* Comparisons return 0 or 1. feq is quiet (NV only for sNaN), flt/fle signal on any NaN. */ \
    uint64_t fpu_eq_##p(uint64_t a, uint64_t b, unsigned *fflags);                               \
    uint64_t fpu_lt_##p(uint64_t a, uint64_t b, unsigned *fflags);                               \
    uint64_t fpu_le_##p(uint64_t a, uint64_t b, unsigned *fflags);                               \
    /* The 10-bit class mask of §11.9. */                                                       \
    uint64_t fpu_class_##p(uint64_t a);                                                          \
    uint64_t fpu_cvt_w_##p(uint64_t a, unsigned rm, unsigned *fflags);                           \
    uint64_t fpu_cvt_wu_##p(uint64_t a, unsigned rm, unsigned *fflags);                          \
    uint64_t fpu_cvt_l_##p(uint64_t a, unsigned rm, unsigned *fflags);                           \
    uint64_t fpu_cvt_lu_##p(uint64_t a, unsigned rm, unsigned *fflags);                          \
    uint64_t fpu_cvt_##p##_w(uint64_t x, unsigned rm, unsigned *fflags);                         \
    uint64_t fpu_cvt_##p##_wu(uint64_t x, unsigned rm, unsigned *fflags);                        \
    uint64_t fpu_cvt_##p##_l(uint64_t x, unsigned rm, unsigned *fflags);                         \
    uint64_t fpu_cvt_##p##_lu(uint64_t x, unsigned rm, unsigned *fflags);

FPU_DECLARE_PREC(s)
FPU_DECLARE_PREC(d)

/* fcvt.s.d and fcvt.d.s. */
uint64_t fpu_cvt_s_d(uint64_t a, unsigned rm, unsigned *fflags);
uint64_t fpu_cvt_d_s(uint64_t a, unsigned rm, unsigned *fflags);

#endif
