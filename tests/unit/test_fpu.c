/* The FPU against the RISC-V F/D rules (unprivileged ISA 20191213, chapters 11 and 12): directed
 * vectors for every operation, flag and corner, then a randomized differential test against an
 * independent software reference that computes each result exactly in 128-bit integers and
 * rounds it itself. The reference shares no code and no method with fpu.c, which uses the host
 * FPU and a wider format. */
#include "test.h"

#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "cpu/rv64/fpu.h"

#define BOX(x)   (0xffffffff00000000ull | (uint32_t)(x))
#define QNAN_S   0x7fc00000u
#define QNAN_D   0x7ff8000000000000ull
#define NX       FPU_NX
#define UF       FPU_UF
#define OF       FPU_OF
#define DZ       FPU_DZ
#define NV       FPU_NV
#define MAX_S    0x7f7fffffu
#define INF_S    0x7f800000u
#define NINF_S   0xff800000u
#define MAX_D    0x7fefffffffffffffull
#define INF_D    0x7ff0000000000000ull
#define NINF_D   0xfff0000000000000ull
#define ONE_S    0x3f800000u
#define ONE_D    0x3ff0000000000000ull
#define SNAN_S   0x7f800001u
#define SNAN_D   0x7ff0000000000001ull
#define NEG_ZERO 0x80000000u
#define NZERO_D  0x8000000000000000ull

static unsigned fl;

/* Each macro checks the result and the exact set of flags raised. */
#define T1S(fn, a, rm, want, wflags)                  \
    do {                                              \
        fl = 0;                                       \
        CHECK_EQ_U64(fn(BOX(a), rm, &fl), BOX(want)); \
        CHECK_EQ_U64(fl, wflags);                     \
    } while (0)
#define T2S(fn, a, b, rm, want, wflags)                       \
    do {                                                      \
        fl = 0;                                               \
        CHECK_EQ_U64(fn(BOX(a), BOX(b), rm, &fl), BOX(want)); \
        CHECK_EQ_U64(fl, wflags);                             \
    } while (0)
#define T3S(fn, a, b, c, rm, want, wflags)                            \
    do {                                                              \
        fl = 0;                                                       \
        CHECK_EQ_U64(fn(BOX(a), BOX(b), BOX(c), rm, &fl), BOX(want)); \
        CHECK_EQ_U64(fl, wflags);                                     \
    } while (0)
#define T1D(fn, a, rm, want, wflags)        \
    do {                                    \
        fl = 0;                             \
        CHECK_EQ_U64(fn(a, rm, &fl), want); \
        CHECK_EQ_U64(fl, wflags);           \
    } while (0)
#define T2D(fn, a, b, rm, want, wflags)        \
    do {                                       \
        fl = 0;                                \
        CHECK_EQ_U64(fn(a, b, rm, &fl), want); \
        CHECK_EQ_U64(fl, wflags);              \
    } while (0)
#define T3D(fn, a, b, c, rm, want, wflags)        \
    do {                                          \
        fl = 0;                                   \
        CHECK_EQ_U64(fn(a, b, c, rm, &fl), want); \
        CHECK_EQ_U64(fl, wflags);                 \
    } while (0)
/* Operations without a rounding mode (min/max/compare): raw register operands. */
#define TNR(fn, a, b, want, wflags)        \
    do {                                   \
        fl = 0;                            \
        CHECK_EQ_U64(fn(a, b, &fl), want); \
        CHECK_EQ_U64(fl, wflags);          \
    } while (0)

static void test_basic_vectors(void)
{
    T2S(fpu_add_s, ONE_S, 0x40000000, FPU_RNE, 0x40400000, 0);      /* 1 + 2 = 3 */
    T2S(fpu_sub_s, ONE_S, 0x40000000, FPU_RNE, 0xbf800000, 0);      /* 1 - 2 = -1 */
    T2S(fpu_mul_s, 0x3fc00000, 0x40000000, FPU_RNE, 0x40400000, 0); /* 1.5 * 2 = 3 */
    T2S(fpu_div_s, 0x40400000, 0x40000000, FPU_RNE, 0x3fc00000, 0); /* 3 / 2 = 1.5 */
    T1S(fpu_sqrt_s, 0x40800000, FPU_RNE, 0x40000000, 0);            /* sqrt 4 = 2 */
    T1S(fpu_sqrt_s, 0x40000000, FPU_RNE, 0x3fb504f3, NX);           /* sqrt 2 */
    T1S(fpu_sqrt_s, 0x40000000, FPU_RUP, 0x3fb504f4, NX);
    T1S(fpu_sqrt_s, 0x40000000, FPU_RMM, 0x3fb504f3, NX);
    T3S(fpu_madd_s, 0x40000000, 0x40400000, ONE_S, FPU_RNE, 0x40e00000, 0);  /* 2*3+1 = 7 */
    T3S(fpu_msub_s, 0x40000000, 0x40400000, ONE_S, FPU_RNE, 0x40a00000, 0);  /* 2*3-1 = 5 */
    T3S(fpu_nmsub_s, 0x40000000, 0x40400000, ONE_S, FPU_RNE, 0xc0a00000, 0); /* -6+1 = -5 */
    T3S(fpu_nmadd_s, 0x40000000, 0x40400000, ONE_S, FPU_RNE, 0xc0e00000, 0); /* -6-1 = -7 */

    T2D(fpu_add_d, ONE_D, 0x4000000000000000ull, FPU_RNE, 0x4008000000000000ull, 0);
    T2D(fpu_sub_d, ONE_D, 0x4000000000000000ull, FPU_RNE, 0xbff0000000000000ull, 0);
    T2D(fpu_mul_d, 0x3ff8000000000000ull, 0x4000000000000000ull, FPU_RNE, 0x4008000000000000ull, 0);
    T2D(fpu_div_d, 0x4008000000000000ull, 0x4000000000000000ull, FPU_RNE, 0x3ff8000000000000ull, 0);
    T1D(fpu_sqrt_d, 0x4010000000000000ull, FPU_RNE, 0x4000000000000000ull, 0);
    T1D(fpu_sqrt_d, 0x4000000000000000ull, FPU_RNE, 0x3ff6a09e667f3bcdull, NX);
    T1D(fpu_sqrt_d, 0x4000000000000000ull, FPU_RTZ, 0x3ff6a09e667f3bccull, NX);
    T1D(fpu_sqrt_d, 0x4000000000000000ull, FPU_RMM, 0x3ff6a09e667f3bcdull, NX);
    T3D(fpu_madd_d, 0x4000000000000000ull, 0x4008000000000000ull, ONE_D, FPU_RNE,
        0x401c000000000000ull, 0);
    T3D(fpu_msub_d, 0x4000000000000000ull, 0x4008000000000000ull, ONE_D, FPU_RNE,
        0x4014000000000000ull, 0);
    T3D(fpu_nmsub_d, 0x4000000000000000ull, 0x4008000000000000ull, ONE_D, FPU_RNE,
        0xc014000000000000ull, 0);
    T3D(fpu_nmadd_d, 0x4000000000000000ull, 0x4008000000000000ull, ONE_D, FPU_RNE,
        0xc01c000000000000ull, 0);

    /* 1/3 and -1/3 in every mode. */
    static const uint32_t third_s[5] = {0x3eaaaaab, 0x3eaaaaaa, 0x3eaaaaaa, 0x3eaaaaab, 0x3eaaaaab};
    static const uint32_t nthird_s[5] = {0xbeaaaaab, 0xbeaaaaaa, 0xbeaaaaab, 0xbeaaaaaa,
                                         0xbeaaaaab};
    static const uint64_t third_d[5] = {0x3fd5555555555555ull, 0x3fd5555555555555ull,
                                        0x3fd5555555555555ull, 0x3fd5555555555556ull,
                                        0x3fd5555555555555ull};
    for (unsigned rm = 0; rm < 5; rm++) {
        T2S(fpu_div_s, ONE_S, 0x40400000, rm, third_s[rm], NX);
        T2S(fpu_div_s, 0xbf800000, 0x40400000, rm, nthird_s[rm], NX);
        T2D(fpu_div_d, ONE_D, 0x4008000000000000ull, rm, third_d[rm], NX);
    }

    /* x - x is +0 in every mode but RDN, where it is -0 (IEEE 754-2008 §6.3). */
    for (unsigned rm = 0; rm < 5; rm++) {
        T2S(fpu_sub_s, ONE_S, ONE_S, rm, rm == FPU_RDN ? NEG_ZERO : 0, 0);
        T2D(fpu_sub_d, ONE_D, ONE_D, rm, rm == FPU_RDN ? NZERO_D : 0, 0);
        T2S(fpu_add_s, NEG_ZERO, 0, rm, rm == FPU_RDN ? NEG_ZERO : 0, 0);
        T2S(fpu_add_s, NEG_ZERO, NEG_ZERO, rm, NEG_ZERO, 0);
    }
    T2S(fpu_mul_s, NEG_ZERO, ONE_S, FPU_RNE, NEG_ZERO, 0);
    T1S(fpu_sqrt_s, NEG_ZERO, FPU_RNE, NEG_ZERO, 0);
    T1D(fpu_sqrt_d, NZERO_D, FPU_RNE, NZERO_D, 0);
    T1S(fpu_sqrt_s, INF_S, FPU_RNE, INF_S, 0);

    /* fflags accumulates: earlier bits are kept. */
    fl = DZ;
    CHECK_EQ_U64(fpu_div_s(BOX(ONE_S), BOX(0x40400000), FPU_RNE, &fl), BOX(0x3eaaaaab));
    CHECK_EQ_U64(fl, DZ | NX);
}

/* Ties and near-ties in every rounding mode. Indexed by rm: RNE, RTZ, RDN, RUP, RMM. */
static void test_rounding_modes(void)
{
    static const struct {
        uint32_t a, b, want[5];
    } add_s[] = {
        /* 1 + 2^-24: a tie; the even neighbour is toward zero. */
        {ONE_S, 0x33800000, {0x3f800000, 0x3f800000, 0x3f800000, 0x3f800001, 0x3f800001}},
        {0xbf800000, 0xb3800000, {0xbf800000, 0xbf800000, 0xbf800001, 0xbf800000, 0xbf800001}},
        /* (1 + 2^-23) + 2^-24: a tie; the even neighbour is away from zero. */
        {0x3f800001, 0x33800000, {0x3f800002, 0x3f800001, 0x3f800001, 0x3f800002, 0x3f800002}},
        {0xbf800001, 0xb3800000, {0xbf800002, 0xbf800001, 0xbf800002, 0xbf800001, 0xbf800002}},
        /* Just below and just above the tie. */
        {ONE_S, 0x337fffff, {0x3f800000, 0x3f800000, 0x3f800000, 0x3f800001, 0x3f800000}},
        {ONE_S, 0x33800001, {0x3f800001, 0x3f800000, 0x3f800000, 0x3f800001, 0x3f800001}},
        {0xbf800000, 0xb3800001, {0xbf800001, 0xbf800000, 0xbf800001, 0xbf800000, 0xbf800001}},
        /* 1 - 2^-25 (subtraction crossing a binade): tie between 1 - 2^-24 and 1. */
        {ONE_S, 0xb3000000, {0x3f800000, 0x3f7fffff, 0x3f7fffff, 0x3f800000, 0x3f800000}},
    };
    for (unsigned i = 0; i < sizeof(add_s) / sizeof(add_s[0]); i++)
        for (unsigned rm = 0; rm < 5; rm++)
            T2S(fpu_add_s, add_s[i].a, add_s[i].b, rm, add_s[i].want[rm], NX);

    static const struct {
        uint64_t a, b, want[5];
    } add_d[] = {
        {ONE_D,
         0x3ca0000000000000ull,
         {ONE_D, ONE_D, ONE_D, 0x3ff0000000000001ull, 0x3ff0000000000001ull}},
        {0xbff0000000000000ull,
         0xbca0000000000000ull,
         {0xbff0000000000000ull, 0xbff0000000000000ull, 0xbff0000000000001ull,
          0xbff0000000000000ull, 0xbff0000000000001ull}},
        {0x3ff0000000000001ull,
         0x3ca0000000000000ull,
         {0x3ff0000000000002ull, 0x3ff0000000000001ull, 0x3ff0000000000001ull,
          0x3ff0000000000002ull, 0x3ff0000000000002ull}},
        {ONE_D,
         0x3ca0000000000001ull,
         {0x3ff0000000000001ull, ONE_D, ONE_D, 0x3ff0000000000001ull, 0x3ff0000000000001ull}},
    };
    for (unsigned i = 0; i < sizeof(add_d) / sizeof(add_d[0]); i++)
        for (unsigned rm = 0; rm < 5; rm++)
            T2D(fpu_add_d, add_d[i].a, add_d[i].b, rm, add_d[i].want[rm], NX);

    /* (1 + 3*2^-23) * 1.5 = 1.5 + 4*2^-23 + 2^-24: RNE and RMM differ. */
    static const uint32_t mul_tie[5] = {0x3fc00004, 0x3fc00004, 0x3fc00004, 0x3fc00005, 0x3fc00005};
    static const uint32_t nmul_tie[5] = {0xbfc00004, 0xbfc00004, 0xbfc00005, 0xbfc00004,
                                         0xbfc00005};
    /* 5*2^-149 / 2 = 2.5 ulp of the subnormals: a tie in the subnormal range. */
    static const uint32_t div_tie[5] = {0x2, 0x2, 0x2, 0x3, 0x3};
    static const uint32_t ndiv_tie[5] = {0x80000002, 0x80000002, 0x80000003, 0x80000002,
                                         0x80000003};
    /* The same in binary64. */
    static const uint64_t mul_tie_d[5] = {0x3ff8000000000004ull, 0x3ff8000000000004ull,
                                          0x3ff8000000000004ull, 0x3ff8000000000005ull,
                                          0x3ff8000000000005ull};
    static const uint64_t div_tie_d[5] = {0x2, 0x2, 0x2, 0x3, 0x3};
    for (unsigned rm = 0; rm < 5; rm++) {
        T2S(fpu_mul_s, 0x3f800003, 0x3fc00000, rm, mul_tie[rm], NX);
        T2S(fpu_mul_s, 0xbf800003, 0x3fc00000, rm, nmul_tie[rm], NX);
        T2S(fpu_div_s, 0x00000005, 0x40000000, rm, div_tie[rm], UF | NX);
        T2S(fpu_div_s, 0x80000005, 0x40000000, rm, ndiv_tie[rm], UF | NX);
        T2D(fpu_mul_d, 0x3ff0000000000003ull, 0x3ff8000000000000ull, rm, mul_tie_d[rm], NX);
        T2D(fpu_div_d, 0x5ull, 0x4000000000000000ull, rm, div_tie_d[rm], UF | NX);
        /* fma ties: 1 * 1 + 2^-24 (single) and 1 * 1 + 2^-53 (double). */
        T3S(fpu_madd_s, ONE_S, ONE_S, 0x33800000, rm, add_s[0].want[rm], NX);
        T3D(fpu_madd_d, ONE_D, ONE_D, 0x3ca0000000000000ull, rm, add_d[0].want[rm], NX);
        /* fnmadd negates the tie: -(1*1) - 2^-24. */
        T3S(fpu_nmadd_s, ONE_S, ONE_S, 0x33800000, rm, add_s[1].want[rm], NX);
    }
}

static void test_flags(void)
{
    /* Overflow: max * 2. RTZ, and RDN/RUP toward zero, give the largest finite value. */
    static const uint32_t of_pos[5] = {INF_S, MAX_S, MAX_S, INF_S, INF_S};
    static const uint32_t of_neg[5] = {NINF_S, 0xff7fffff, NINF_S, 0xff7fffff, NINF_S};
    static const uint64_t of_pos_d[5] = {INF_D, MAX_D, MAX_D, INF_D, INF_D};
    static const uint64_t of_neg_d[5] = {NINF_D, 0xffefffffffffffffull, NINF_D,
                                         0xffefffffffffffffull, NINF_D};
    for (unsigned rm = 0; rm < 5; rm++) {
        T2S(fpu_mul_s, MAX_S, 0x40000000, rm, of_pos[rm], OF | NX);
        T2S(fpu_mul_s, 0xff7fffff, 0x40000000, rm, of_neg[rm], OF | NX);
        T2D(fpu_mul_d, MAX_D, 0x4000000000000000ull, rm, of_pos_d[rm], OF | NX);
        T2D(fpu_mul_d, 0xffefffffffffffffull, 0x4000000000000000ull, rm, of_neg_d[rm], OF | NX);
    }
    /* max + half an ulp: overflows only where it rounds up (IEEE 754-2008 §7.4 judges overflow
     * on the result rounded with an unbounded exponent). */
    T2S(fpu_add_s, MAX_S, 0x73000000, FPU_RNE, INF_S, OF | NX);
    T2S(fpu_add_s, MAX_S, 0x73000000, FPU_RMM, INF_S, OF | NX);
    T2S(fpu_add_s, MAX_S, 0x73000000, FPU_RUP, INF_S, OF | NX);
    T2S(fpu_add_s, MAX_S, 0x73000000, FPU_RTZ, MAX_S, NX);
    T2S(fpu_add_s, MAX_S, 0x73000000, FPU_RDN, MAX_S, NX);
    T2S(fpu_add_s, MAX_S, 0x72800000, FPU_RNE, MAX_S, NX); /* a quarter ulp */
    T2S(fpu_add_s, MAX_S, 0x72800000, FPU_RMM, MAX_S, NX);
    T2S(fpu_add_s, MAX_S, 0x72800000, FPU_RUP, INF_S, OF | NX);
    T2D(fpu_add_d, MAX_D, 0x7c90000000000000ull, FPU_RNE, INF_D, OF | NX);
    T2D(fpu_add_d, MAX_D, 0x7c90000000000000ull, FPU_RMM, INF_D, OF | NX);
    T2D(fpu_add_d, MAX_D, 0x7c90000000000000ull, FPU_RTZ, MAX_D, NX);
    T2S(fpu_add_s, MAX_S, MAX_S, FPU_RNE, INF_S, OF | NX);
    T2S(fpu_add_s, INF_S, ONE_S, FPU_RNE, INF_S, 0); /* infinity is exact */

    /* Underflow, tininess after rounding (§11.4). (1 - 2^-24) * 2^-126 = 2^-126 - 2^-150 is
     * tiny even after rounding with an unbounded exponent, so UF is raised even where the
     * result rounds up to the smallest normal. */
    static const uint32_t tiny_s[5] = {0x00800000, 0x007fffff, 0x007fffff, 0x00800000, 0x00800000};
    /* (1 + 2^-23) * (2^-126 - 2^-149) = 2^-126 (1 - 2^-46): tiny before rounding, but rounding
     * with an unbounded exponent gives 2^-126 in RNE/RUP/RMM: no UF there. */
    static const uint32_t edge_s[5] = {0x00800000, 0x007fffff, 0x007fffff, 0x00800000, 0x00800000};
    static const unsigned edge_fl[5] = {NX, UF | NX, UF | NX, NX, NX};
    for (unsigned rm = 0; rm < 5; rm++) {
        T2S(fpu_mul_s, 0x3f7fffff, 0x00800000, rm, tiny_s[rm], UF | NX);
        T2S(fpu_mul_s, 0x3f800001, 0x007fffff, rm, edge_s[rm], edge_fl[rm]);
        T2D(fpu_mul_d, 0x3fefffffffffffffull, 0x0010000000000000ull, rm,
            tiny_s[rm] == 0x00800000 ? 0x0010000000000000ull : 0x000fffffffffffffull, UF | NX);
        T2D(fpu_mul_d, 0x3ff0000000000001ull, 0x000fffffffffffffull, rm,
            edge_s[rm] == 0x00800000 ? 0x0010000000000000ull : 0x000fffffffffffffull, edge_fl[rm]);
        T3D(fpu_madd_d, 0x3ff0000000000001ull, 0x000fffffffffffffull, 0, rm,
            edge_s[rm] == 0x00800000 ? 0x0010000000000000ull : 0x000fffffffffffffull, edge_fl[rm]);
    }
    /* An exact subnormal result raises nothing; an inexact one raises UF and NX. */
    T2S(fpu_mul_s, 0x00800000, 0x3f000000, FPU_RNE, 0x00400000, 0);
    T2S(fpu_sub_s, 0x00800000, 0x00000001, FPU_RNE, 0x007fffff, 0);
    T2S(fpu_mul_s, 0x00000001, 0x3f000000, FPU_RNE, 0, UF | NX); /* tie to even zero */
    T2S(fpu_mul_s, 0x00000001, 0x3f000000, FPU_RMM, 0x00000001, UF | NX);
    T2S(fpu_mul_s, 0x00000001, 0x3f000000, FPU_RUP, 0x00000001, UF | NX);
    T2S(fpu_mul_s, 0x80000001, 0x3f000000, FPU_RDN, 0x80000001, UF | NX);
    T2S(fpu_mul_s, 0x80000001, 0x3f000000, FPU_RNE, NEG_ZERO, UF | NX);
    T2D(fpu_mul_d, 0x1ull, 0x3fe0000000000000ull, FPU_RMM, 0x1ull, UF | NX);
    T2D(fpu_mul_d, 0x1ull, 0x3fe0000000000000ull, FPU_RNE, 0, UF | NX);

    /* Divide by zero. */
    T2S(fpu_div_s, ONE_S, 0, FPU_RNE, INF_S, DZ);
    T2S(fpu_div_s, 0xbf800000, 0, FPU_RNE, NINF_S, DZ);
    T2S(fpu_div_s, ONE_S, NEG_ZERO, FPU_RMM, NINF_S, DZ);
    T2S(fpu_div_s, INF_S, 0, FPU_RNE, INF_S, 0);
    T2S(fpu_div_s, ONE_S, INF_S, FPU_RNE, 0, 0);
    T2D(fpu_div_d, ONE_D, 0, FPU_RNE, INF_D, DZ);
    T2D(fpu_div_d, ONE_D, NZERO_D, FPU_RMM, NINF_D, DZ);

    /* Invalid operations give the canonical NaN. */
    for (unsigned rm = 0; rm < 5; rm++) {
        T2S(fpu_div_s, 0, 0, rm, QNAN_S, NV);
        T2S(fpu_div_s, INF_S, NINF_S, rm, QNAN_S, NV);
        T2S(fpu_add_s, INF_S, NINF_S, rm, QNAN_S, NV);
        T2S(fpu_sub_s, INF_S, INF_S, rm, QNAN_S, NV);
        T2S(fpu_mul_s, 0, INF_S, rm, QNAN_S, NV);
        T1S(fpu_sqrt_s, 0xbf800000, rm, QNAN_S, NV);
        T1S(fpu_sqrt_s, NINF_S, rm, QNAN_S, NV);
        T1S(fpu_sqrt_s, 0x80000001, rm, QNAN_S, NV);
        T2D(fpu_div_d, 0, 0, rm, QNAN_D, NV);
        T2D(fpu_add_d, INF_D, NINF_D, rm, QNAN_D, NV);
        T2D(fpu_mul_d, INF_D, 0, rm, QNAN_D, NV);
        T1D(fpu_sqrt_d, 0xbff0000000000000ull, rm, QNAN_D, NV);
        T3S(fpu_madd_s, INF_S, 0, ONE_S, rm, QNAN_S, NV);
        T3S(fpu_madd_s, INF_S, ONE_S, NINF_S, rm, QNAN_S, NV);
        T3D(fpu_madd_d, 0, NINF_D, ONE_D, rm, QNAN_D, NV);
        T3D(fpu_msub_d, INF_D, ONE_D, INF_D, rm, QNAN_D, NV);
    }
}

static void test_nans(void)
{
    /* Quiet NaN operands raise nothing; signaling ones raise NV; results are canonical. */
    static const uint32_t qnans_s[] = {QNAN_S, 0x7fc12345, 0xffc00000, 0xffffffff};
    static const uint32_t snans_s[] = {SNAN_S, 0x7fbfffff, 0xff800001};
    for (unsigned i = 0; i < sizeof(qnans_s) / sizeof(qnans_s[0]); i++) {
        uint32_t q = qnans_s[i];
        T2S(fpu_add_s, q, ONE_S, FPU_RNE, QNAN_S, 0);
        T2S(fpu_sub_s, ONE_S, q, FPU_RMM, QNAN_S, 0);
        T2S(fpu_mul_s, q, q, FPU_RTZ, QNAN_S, 0);
        T2S(fpu_div_s, q, 0, FPU_RNE, QNAN_S, 0);
        T1S(fpu_sqrt_s, q, FPU_RNE, QNAN_S, 0);
        T3S(fpu_madd_s, ONE_S, ONE_S, q, FPU_RNE, QNAN_S, 0);
        T3S(fpu_nmadd_s, q, ONE_S, ONE_S, FPU_RMM, QNAN_S, 0);
        T1D(fpu_cvt_d_s, BOX(q), FPU_RNE, QNAN_D, 0);
        T1D(fpu_cvt_w_s, BOX(q), FPU_RNE, 0x7fffffff, NV);
    }
    for (unsigned i = 0; i < sizeof(snans_s) / sizeof(snans_s[0]); i++) {
        uint32_t s = snans_s[i];
        T2S(fpu_add_s, s, ONE_S, FPU_RNE, QNAN_S, NV);
        T2S(fpu_sub_s, ONE_S, s, FPU_RMM, QNAN_S, NV);
        T2S(fpu_mul_s, s, QNAN_S, FPU_RTZ, QNAN_S, NV);
        T2S(fpu_div_s, QNAN_S, s, FPU_RNE, QNAN_S, NV);
        T1S(fpu_sqrt_s, s, FPU_RNE, QNAN_S, NV);
        T3S(fpu_madd_s, ONE_S, ONE_S, s, FPU_RNE, QNAN_S, NV);
        T3S(fpu_msub_s, s, ONE_S, ONE_S, FPU_RMM, QNAN_S, NV);
    }
    T2D(fpu_add_d, 0x7ff8000000012345ull, ONE_D, FPU_RNE, QNAN_D, 0);
    T2D(fpu_add_d, 0xfff8000000000000ull, ONE_D, FPU_RMM, QNAN_D, 0);
    T2D(fpu_mul_d, SNAN_D, ONE_D, FPU_RNE, QNAN_D, NV);
    T2D(fpu_div_d, ONE_D, 0xfff4000000000000ull, FPU_RMM, QNAN_D, NV);
    T1D(fpu_sqrt_d, SNAN_D, FPU_RMM, QNAN_D, NV);
    T1D(fpu_sqrt_d, 0x7ff8000000000001ull, FPU_RNE, QNAN_D, 0);
    T3D(fpu_madd_d, ONE_D, SNAN_D, ONE_D, FPU_RNE, QNAN_D, NV);
    T3D(fpu_nmsub_d, ONE_D, ONE_D, 0x7ff8000000000001ull, FPU_RNE, QNAN_D, 0);

    /* fma(inf, 0, qNaN): NV on 0 x inf whatever the addend (§11.6). */
    for (unsigned rm = 0; rm < 5; rm++) {
        T3S(fpu_madd_s, INF_S, 0, QNAN_S, rm, QNAN_S, NV);
        T3S(fpu_madd_s, NEG_ZERO, NINF_S, 0x7fc00001, rm, QNAN_S, NV);
        T3S(fpu_nmadd_s, 0, INF_S, QNAN_S, rm, QNAN_S, NV);
        T3D(fpu_madd_d, INF_D, 0, QNAN_D, rm, QNAN_D, NV);
        T3D(fpu_msub_d, 0, NINF_D, QNAN_D, rm, QNAN_D, NV);
        T3S(fpu_madd_s, INF_S, ONE_S, QNAN_S, rm, QNAN_S, 0); /* inf * 1 + qNaN is quiet */
    }

    /* NaN boxing (§12.2): an improperly boxed single reads as the canonical (quiet) NaN. */
    static const uint64_t bad_box[] = {0x000000003f800000ull, 0xfffffffe3f800000ull,
                                       0x7fffffff3f800000ull, 0x3ff0000000000000ull};
    for (unsigned i = 0; i < sizeof(bad_box) / sizeof(bad_box[0]); i++) {
        uint64_t x = bad_box[i];
        fl = 0;
        CHECK_EQ_U64(fpu_add_s(x, BOX(ONE_S), FPU_RNE, &fl), BOX(QNAN_S));
        CHECK_EQ_U64(fpu_mul_s(BOX(ONE_S), x, FPU_RMM, &fl), BOX(QNAN_S));
        CHECK_EQ_U64(fpu_sqrt_s(x, FPU_RNE, &fl), BOX(QNAN_S));
        CHECK_EQ_U64(fpu_madd_s(BOX(ONE_S), BOX(ONE_S), x, FPU_RNE, &fl), BOX(QNAN_S));
        CHECK_EQ_U64(fpu_min_s(x, BOX(ONE_S), &fl), BOX(ONE_S));
        CHECK_EQ_U64(fpu_max_s(BOX(ONE_S), x, &fl), BOX(ONE_S));
        CHECK_EQ_U64(fpu_eq_s(x, x, &fl), 0);
        CHECK_EQ_U64(fpu_class_s(x), 1u << 9);
        CHECK_EQ_U64(fpu_cvt_d_s(x, FPU_RNE, &fl), QNAN_D);
        CHECK_EQ_U64(fpu_cvt_w_s(x, FPU_RTZ, &fl), 0x7fffffff);
        CHECK_EQ_U64(fl, NV); /* only from the conversion of the NaN to an integer */
        fl = 0;
        CHECK_EQ_U64(fpu_lt_s(x, BOX(ONE_S), &fl), 0);
        CHECK_EQ_U64(fl, NV);
        /* Sign injection reads the canonical NaN too, and boxes its result. */
        CHECK_EQ_U64(fpu_sgnj_s(x, BOX(0xbf800000)), BOX(0xffc00000));
        CHECK_EQ_U64(fpu_sgnjn_s(x, BOX(0xbf800000)), BOX(QNAN_S));
        CHECK_EQ_U64(fpu_sgnj_s(BOX(0xbf800000), x), BOX(ONE_S));
        CHECK_EQ_U64(fpu_sgnjx_s(BOX(0xbf800000), x), BOX(0xbf800000));
    }
}

static void test_min_max_sgnj(void)
{
    /* §11.6: minimumNumber/maximumNumber, -0 < +0. */
    TNR(fpu_min_s, BOX(NEG_ZERO), BOX(0), BOX(NEG_ZERO), 0);
    TNR(fpu_min_s, BOX(0), BOX(NEG_ZERO), BOX(NEG_ZERO), 0);
    TNR(fpu_max_s, BOX(NEG_ZERO), BOX(0), BOX(0), 0);
    TNR(fpu_max_s, BOX(0), BOX(NEG_ZERO), BOX(0), 0);
    TNR(fpu_min_s, BOX(ONE_S), BOX(0x40000000), BOX(ONE_S), 0);
    TNR(fpu_max_s, BOX(ONE_S), BOX(0x40000000), BOX(0x40000000), 0);
    TNR(fpu_min_s, BOX(0xbf800000), BOX(0xc0000000), BOX(0xc0000000), 0);
    TNR(fpu_max_s, BOX(0xbf800000), BOX(0xc0000000), BOX(0xbf800000), 0);
    TNR(fpu_min_s, BOX(NINF_S), BOX(INF_S), BOX(NINF_S), 0);
    TNR(fpu_max_s, BOX(0x00000001), BOX(0x80000001), BOX(0x00000001), 0);
    TNR(fpu_min_s, BOX(QNAN_S), BOX(ONE_S), BOX(ONE_S), 0);
    TNR(fpu_max_s, BOX(ONE_S), BOX(0xffc12345), BOX(ONE_S), 0);
    TNR(fpu_min_s, BOX(SNAN_S), BOX(ONE_S), BOX(ONE_S), NV);
    TNR(fpu_max_s, BOX(ONE_S), BOX(SNAN_S), BOX(ONE_S), NV);
    TNR(fpu_min_s, BOX(0x7fc12345), BOX(0x7fc54321), BOX(QNAN_S), 0);
    TNR(fpu_max_s, BOX(SNAN_S), BOX(QNAN_S), BOX(QNAN_S), NV);
    TNR(fpu_min_d, NZERO_D, 0, NZERO_D, 0);
    TNR(fpu_min_d, 0, NZERO_D, NZERO_D, 0);
    TNR(fpu_max_d, NZERO_D, 0, 0, 0);
    TNR(fpu_max_d, 0, NZERO_D, 0, 0);
    TNR(fpu_min_d, ONE_D, 0xbff0000000000000ull, 0xbff0000000000000ull, 0);
    TNR(fpu_max_d, 0x7ff8000000000123ull, ONE_D, ONE_D, 0);
    TNR(fpu_min_d, SNAN_D, ONE_D, ONE_D, NV);
    TNR(fpu_max_d, SNAN_D, SNAN_D, QNAN_D, NV);
    TNR(fpu_min_d, 0xfff8000000000000ull, 0x7ff8000000000001ull, QNAN_D, 0);

    /* Sign injection is pure bit manipulation: NaN payloads pass through. */
    CHECK_EQ_U64(fpu_sgnj_s(BOX(ONE_S), BOX(0x80000000)), BOX(0xbf800000));
    CHECK_EQ_U64(fpu_sgnjn_s(BOX(ONE_S), BOX(ONE_S)), BOX(0xbf800000));
    CHECK_EQ_U64(fpu_sgnjx_s(BOX(0xbf800000), BOX(0xbf800000)), BOX(ONE_S));
    CHECK_EQ_U64(fpu_sgnj_s(BOX(SNAN_S), BOX(0x80000000)), BOX(0xff800001));
    CHECK_EQ_U64(fpu_sgnjn_s(BOX(0x7fc12345), BOX(0)), BOX(0xffc12345));
    CHECK_EQ_U64(fpu_sgnj_d(SNAN_D, NZERO_D), 0xfff0000000000001ull);
    CHECK_EQ_U64(fpu_sgnjn_d(ONE_D, NZERO_D), ONE_D);
    CHECK_EQ_U64(fpu_sgnjn_d(ONE_D, ONE_D), 0xbff0000000000000ull);
    CHECK_EQ_U64(fpu_sgnjx_d(0xbff0000000000000ull, 0xbff0000000000000ull), ONE_D);
    CHECK_EQ_U64(fpu_sgnjx_d(0x7ff8000000000123ull, NZERO_D), 0xfff8000000000123ull);
}

static void test_compare_class(void)
{
    /* §11.8. */
    TNR(fpu_eq_s, BOX(ONE_S), BOX(ONE_S), 1, 0);
    TNR(fpu_eq_s, BOX(0), BOX(NEG_ZERO), 1, 0);
    TNR(fpu_le_s, BOX(NEG_ZERO), BOX(0), 1, 0);
    TNR(fpu_lt_s, BOX(NEG_ZERO), BOX(0), 0, 0);
    TNR(fpu_lt_s, BOX(0xbf800000), BOX(ONE_S), 1, 0);
    TNR(fpu_lt_s, BOX(0xc0000000), BOX(0xbf800000), 1, 0);
    TNR(fpu_le_s, BOX(ONE_S), BOX(0xbf800000), 0, 0);
    TNR(fpu_lt_s, BOX(NINF_S), BOX(0xff7fffff), 1, 0);
    TNR(fpu_le_s, BOX(INF_S), BOX(INF_S), 1, 0);
    TNR(fpu_eq_s, BOX(QNAN_S), BOX(QNAN_S), 0, 0); /* quiet */
    TNR(fpu_eq_s, BOX(SNAN_S), BOX(ONE_S), 0, NV); /* NV on sNaN only */
    TNR(fpu_lt_s, BOX(QNAN_S), BOX(ONE_S), 0, NV); /* signaling */
    TNR(fpu_le_s, BOX(ONE_S), BOX(QNAN_S), 0, NV);
    TNR(fpu_le_s, BOX(SNAN_S), BOX(SNAN_S), 0, NV);
    TNR(fpu_eq_d, ONE_D, ONE_D, 1, 0);
    TNR(fpu_eq_d, NZERO_D, 0, 1, 0);
    TNR(fpu_lt_d, NZERO_D, 0, 0, 0);
    TNR(fpu_le_d, 0, NZERO_D, 1, 0);
    TNR(fpu_lt_d, 0xbff0000000000000ull, 0x8000000000000001ull, 1, 0);
    TNR(fpu_lt_d, 0x1ull, 0x2ull, 1, 0);
    TNR(fpu_le_d, 0x2ull, 0x1ull, 0, 0);
    TNR(fpu_eq_d, QNAN_D, ONE_D, 0, 0);
    TNR(fpu_eq_d, ONE_D, SNAN_D, 0, NV);
    TNR(fpu_lt_d, QNAN_D, QNAN_D, 0, NV);
    TNR(fpu_le_d, 0xfff8000000000000ull, ONE_D, 0, NV);

    /* §11.9: all ten classes. */
    static const uint32_t cls_s[10] = {NINF_S,     0xbf800000, 0x807fffff, NEG_ZERO, 0,
                                       0x00000001, 0x00800000, INF_S,      SNAN_S,   QNAN_S};
    static const uint64_t cls_d[10] = {NINF_D,
                                       0xbff0000000000000ull,
                                       0x8000000000000001ull,
                                       NZERO_D,
                                       0,
                                       0x000fffffffffffffull,
                                       MAX_D,
                                       INF_D,
                                       0x7ff4000000000000ull,
                                       0xfff8000000000000ull};
    for (unsigned i = 0; i < 10; i++) {
        CHECK_EQ_U64(fpu_class_s(BOX(cls_s[i])), 1u << i);
        CHECK_EQ_U64(fpu_class_d(cls_d[i]), 1u << i);
    }
    CHECK_EQ_U64(fpu_class_s(BOX(0xff800001)), 1u << 8);
    CHECK_EQ_U64(fpu_class_s(BOX(0xffc00001)), 1u << 9);
    CHECK_EQ_U64(fpu_class_d(0x0010000000000000ull), 1u << 6);
    CHECK_EQ_U64(fpu_class_d(0x800fffffffffffffull), 1u << 2);
}

#define SX32(x) ((uint64_t)(int64_t)(int32_t)(uint32_t)(x))

static void test_conversions_to_int(void)
{
    /* §11.7 table: NaN -> max, +inf/too large -> max, -inf/too small -> min (0 unsigned). */
    for (unsigned rm = 0; rm < 5; rm++) {
        T1D(fpu_cvt_w_s, BOX(QNAN_S), rm, 0x7fffffff, NV);
        T1D(fpu_cvt_w_s, BOX(0xffc00000), rm, 0x7fffffff, NV);
        T1D(fpu_cvt_w_s, BOX(SNAN_S), rm, 0x7fffffff, NV);
        T1D(fpu_cvt_w_s, BOX(INF_S), rm, 0x7fffffff, NV);
        T1D(fpu_cvt_w_s, BOX(NINF_S), rm, SX32(0x80000000), NV);
        T1D(fpu_cvt_w_s, BOX(0x4f000000), rm, 0x7fffffff, NV);       /* 2^31 */
        T1D(fpu_cvt_w_s, BOX(0x4effffff), rm, 0x7fffff80, 0);        /* 2^31 - 128 */
        T1D(fpu_cvt_w_s, BOX(0xcf000000), rm, SX32(0x80000000), 0);  /* -2^31 */
        T1D(fpu_cvt_w_s, BOX(0xcf000001), rm, SX32(0x80000000), NV); /* -2^31 - 256 */
        T1D(fpu_cvt_wu_s, BOX(QNAN_S), rm, UINT64_MAX, NV);          /* sign-extended */
        T1D(fpu_cvt_wu_s, BOX(INF_S), rm, UINT64_MAX, NV);
        T1D(fpu_cvt_wu_s, BOX(NINF_S), rm, 0, NV);
        T1D(fpu_cvt_wu_s, BOX(0xbf800000), rm, 0, NV); /* -1 */
        T1D(fpu_cvt_wu_s, BOX(NEG_ZERO), rm, 0, 0);
        T1D(fpu_cvt_wu_s, BOX(0x4f800000), rm, UINT64_MAX, NV);           /* 2^32 */
        T1D(fpu_cvt_wu_s, BOX(0x4f7fffff), rm, 0xffffffffffffff00ull, 0); /* 2^32 - 256 */
        T1D(fpu_cvt_wu_s, BOX(0x4f32d05e), rm, 0xffffffffb2d05e00ull, 0); /* 3e9 */
        T1D(fpu_cvt_l_s, BOX(QNAN_S), rm, INT64_MAX, NV);
        T1D(fpu_cvt_l_s, BOX(NINF_S), rm, 0x8000000000000000ull, NV);
        T1D(fpu_cvt_l_s, BOX(0x5f000000), rm, INT64_MAX, NV);            /* 2^63 */
        T1D(fpu_cvt_l_s, BOX(0xdf000000), rm, 0x8000000000000000ull, 0); /* -2^63 */
        T1D(fpu_cvt_l_s, BOX(0x5effffff), rm, 0x7fffff8000000000ull, 0);
        T1D(fpu_cvt_lu_s, BOX(QNAN_S), rm, UINT64_MAX, NV);
        T1D(fpu_cvt_lu_s, BOX(0x5f800000), rm, UINT64_MAX, NV); /* 2^64 */
        T1D(fpu_cvt_lu_s, BOX(0x5f7fffff), rm, 0xffffff0000000000ull, 0);
        T1D(fpu_cvt_lu_s, BOX(0xbf800000), rm, 0, NV);
        T1D(fpu_cvt_w_d, QNAN_D, rm, 0x7fffffff, NV);
        T1D(fpu_cvt_w_d, SNAN_D, rm, 0x7fffffff, NV);
        T1D(fpu_cvt_w_d, NINF_D, rm, SX32(0x80000000), NV);
        T1D(fpu_cvt_w_d, 0x41dfffffffc00000ull, rm, 0x7fffffff, 0);  /* 2^31 - 1 */
        T1D(fpu_cvt_w_d, 0x41e0000000000000ull, rm, 0x7fffffff, NV); /* 2^31 */
        T1D(fpu_cvt_w_d, 0xc1e0000000000000ull, rm, SX32(0x80000000), 0);
        T1D(fpu_cvt_w_d, 0xc1e0000000200000ull, rm, SX32(0x80000000), NV); /* -2^31 - 1 */
        T1D(fpu_cvt_wu_d, 0x41efffffffe00000ull, rm, UINT64_MAX, 0);       /* 2^32 - 1 */
        T1D(fpu_cvt_wu_d, 0x41f0000000000000ull, rm, UINT64_MAX, NV);      /* 2^32 */
        T1D(fpu_cvt_wu_d, NINF_D, rm, 0, NV);
        T1D(fpu_cvt_l_d, QNAN_D, rm, INT64_MAX, NV);
        T1D(fpu_cvt_l_d, INF_D, rm, INT64_MAX, NV);
        T1D(fpu_cvt_l_d, 0x43e0000000000000ull, rm, INT64_MAX, NV); /* 2^63 */
        T1D(fpu_cvt_l_d, 0x43dfffffffffffffull, rm, 0x7ffffffffffffc00ull, 0);
        T1D(fpu_cvt_l_d, 0xc3e0000000000000ull, rm, 0x8000000000000000ull, 0);
        T1D(fpu_cvt_l_d, 0xc3e0000000000001ull, rm, 0x8000000000000000ull, NV);
        T1D(fpu_cvt_lu_d, QNAN_D, rm, UINT64_MAX, NV);
        T1D(fpu_cvt_lu_d, 0x43f0000000000000ull, rm, UINT64_MAX, NV); /* 2^64 */
        T1D(fpu_cvt_lu_d, 0x43efffffffffffffull, rm, 0xfffffffffffff800ull, 0);
        T1D(fpu_cvt_lu_d, 0xbff0000000000000ull, rm, 0, NV);
        T1D(fpu_cvt_lu_d, NINF_D, rm, 0, NV);
        T1D(fpu_cvt_l_d, 0, rm, 0, 0);
        T1D(fpu_cvt_lu_d, NZERO_D, rm, 0, 0);
    }

    /* Rounding: 1.5, 2.5, -2.5, -0.5 (indexed by rm). */
    static const int32_t r15[5] = {2, 1, 1, 2, 2}, r25[5] = {2, 2, 2, 3, 3};
    static const int32_t rn25[5] = {-2, -2, -3, -2, -3}, rn05[5] = {0, 0, -1, 0, -1};
    for (unsigned rm = 0; rm < 5; rm++) {
        T1D(fpu_cvt_w_s, BOX(0x3fc00000), rm, SX32(r15[rm]), NX);
        T1D(fpu_cvt_w_s, BOX(0x40200000), rm, SX32(r25[rm]), NX);
        T1D(fpu_cvt_w_s, BOX(0xc0200000), rm, SX32(rn25[rm]), NX);
        T1D(fpu_cvt_w_s, BOX(0xbf000000), rm, SX32(rn05[rm]), NX);
        T1D(fpu_cvt_l_d, 0xc004000000000000ull, rm, (uint64_t)(int64_t)rn25[rm], NX);
        T1D(fpu_cvt_l_d, 0xbfe0000000000000ull, rm, (uint64_t)(int64_t)rn05[rm], NX);
        /* -0.5 to unsigned: in range (result 0, NX) unless it rounds to -1 (NV). */
        bool to_m1 = rn05[rm] == -1;
        T1D(fpu_cvt_wu_s, BOX(0xbf000000), rm, 0, to_m1 ? NV : NX);
        T1D(fpu_cvt_lu_s, BOX(0xbf000000), rm, 0, to_m1 ? NV : NX);
        T1D(fpu_cvt_wu_d, 0xbfe0000000000000ull, rm, 0, to_m1 ? NV : NX);
        T1D(fpu_cvt_lu_d, 0xbfe0000000000000ull, rm, 0, to_m1 ? NV : NX);
        /* A tiny value: 2^-1074 rounds to 0 or 1. */
        T1D(fpu_cvt_l_d, 0x1ull, rm, rm == FPU_RUP ? 1 : 0, NX);
        T1D(fpu_cvt_w_d, 0x8000000000000001ull, rm, rm == FPU_RDN ? UINT64_MAX : 0, NX);
    }

    /* 2^31 - 0.5 rounds out of range in RNE (tie to even 2^31), RUP and RMM. */
    static const unsigned near_max_fl[5] = {NV, NX, NX, NV, NV};
    /* -2^31 - 0.5 is a tie between -2^31 (even) and -2^31 - 1. */
    static const unsigned near_min_fl[5] = {NX, NX, NV, NX, NV};
    /* 2^32 - 0.5 to wu: 2^32 - 1 (all ones sign-extended) either way; only the flag differs. */
    static const unsigned near_umax_fl[5] = {NV, NX, NX, NV, NV};
    for (unsigned rm = 0; rm < 5; rm++) {
        T1D(fpu_cvt_w_d, 0x41dfffffffe00000ull, rm, 0x7fffffff, near_max_fl[rm]);
        T1D(fpu_cvt_w_d, 0xc1e0000000100000ull, rm, SX32(0x80000000), near_min_fl[rm]);
        T1D(fpu_cvt_wu_d, 0x41effffffff00000ull, rm, UINT64_MAX, near_umax_fl[rm]);
    }
    T1D(fpu_cvt_w_d, 0x41dfffffffd9999aull, FPU_RNE, 0x7fffffff, NX); /* 2^31 - 0.6 */
    T1D(fpu_cvt_w_d, 0x41dfffffffd9999aull, FPU_RUP, 0x7fffffff, NV); /* rounds up to 2^31 */
    T1D(fpu_cvt_w_d, 0x41dfffffffd9999aull, FPU_RTZ, 0x7fffffff, NX);
}

static void test_conversions_from_int(void)
{
    for (unsigned rm = 0; rm < 5; rm++) {
        T1D(fpu_cvt_s_w, 0, rm, BOX(0), 0);
        T1D(fpu_cvt_s_w, UINT64_MAX, rm, BOX(0xbf800000), 0);       /* -1 */
        T1D(fpu_cvt_s_w, 0xffffffff00000001ull, rm, BOX(ONE_S), 0); /* low 32 bits only */
        T1D(fpu_cvt_s_w, 0x80000000ull, rm, BOX(0xcf000000), 0);    /* INT32_MIN */
        T1D(fpu_cvt_s_wu, 0x80000000ull, rm, BOX(0x4f000000), 0);
        T1D(fpu_cvt_s_l, 0x8000000000000000ull, rm, BOX(0xdf000000), 0);
        T1D(fpu_cvt_s_lu, 0x8000000000000000ull, rm, BOX(0x5f000000), 0);
        T1D(fpu_cvt_d_w, 0x80000000ull, rm, 0xc1e0000000000000ull, 0);
        T1D(fpu_cvt_d_wu, 0xffffffffull, rm, 0x41efffffffe00000ull, 0);
        T1D(fpu_cvt_d_wu, 0x1234567800000000ull, rm, 0, 0);
        T1D(fpu_cvt_d_l, 0x8000000000000000ull, rm, 0xc3e0000000000000ull, 0);
        T1D(fpu_cvt_d_l, 0, rm, 0, 0);
    }
    /* 2^24 + 1: a tie (indexed by rm). */
    static const uint32_t t24[5] = {0x4b800000, 0x4b800000, 0x4b800000, 0x4b800001, 0x4b800001};
    static const uint32_t tn24[5] = {0xcb800000, 0xcb800000, 0xcb800001, 0xcb800000, 0xcb800001};
    /* 2^24 + 3: a tie whose even neighbour is away from zero. */
    static const uint32_t t24b[5] = {0x4b800002, 0x4b800001, 0x4b800001, 0x4b800002, 0x4b800002};
    /* 2^32 - 1 and 2^64 - 1. */
    static const uint32_t u32max[5] = {0x4f800000, 0x4f7fffff, 0x4f7fffff, 0x4f800000, 0x4f800000};
    static const uint32_t u64max[5] = {0x5f800000, 0x5f7fffff, 0x5f7fffff, 0x5f800000, 0x5f800000};
    static const uint64_t u64max_d[5] = {0x43f0000000000000ull, 0x43efffffffffffffull,
                                         0x43efffffffffffffull, 0x43f0000000000000ull,
                                         0x43f0000000000000ull};
    /* 2^53 + 1 and -(2^53 + 1). */
    static const uint64_t t53[5] = {0x4340000000000000ull, 0x4340000000000000ull,
                                    0x4340000000000000ull, 0x4340000000000001ull,
                                    0x4340000000000001ull};
    static const uint64_t tn53[5] = {0xc340000000000000ull, 0xc340000000000000ull,
                                     0xc340000000000001ull, 0xc340000000000000ull,
                                     0xc340000000000001ull};
    for (unsigned rm = 0; rm < 5; rm++) {
        T1D(fpu_cvt_s_w, 16777217, rm, BOX(t24[rm]), NX);
        T1D(fpu_cvt_s_w, (uint64_t)-16777217, rm, BOX(tn24[rm]), NX);
        T1D(fpu_cvt_s_l, (uint64_t)-16777217, rm, BOX(tn24[rm]), NX);
        T1D(fpu_cvt_s_wu, 16777219, rm, BOX(t24b[rm]), NX);
        T1D(fpu_cvt_s_wu, 0xffffffffull, rm, BOX(u32max[rm]), NX);
        T1D(fpu_cvt_s_lu, UINT64_MAX, rm, BOX(u64max[rm]), NX);
        T1D(fpu_cvt_d_lu, UINT64_MAX, rm, u64max_d[rm], NX);
        T1D(fpu_cvt_d_l, (1ull << 53) + 1, rm, t53[rm], NX);
        T1D(fpu_cvt_d_l, (uint64_t) - (int64_t)((1ull << 53) + 1), rm, tn53[rm], NX);
    }
}

static void test_conversions_float(void)
{
    /* fcvt.s.d (§12.5). */
    for (unsigned rm = 0; rm < 5; rm++) {
        T1D(fpu_cvt_s_d, QNAN_D, rm, BOX(QNAN_S), 0);
        T1D(fpu_cvt_s_d, 0xfff8000000012345ull, rm, BOX(QNAN_S), 0);
        T1D(fpu_cvt_s_d, SNAN_D, rm, BOX(QNAN_S), NV);
        T1D(fpu_cvt_s_d, 0x7ff0000020000000ull, rm, BOX(QNAN_S),
            NV); /* sNaN, payload kept by x86 */
        T1D(fpu_cvt_s_d, INF_D, rm, BOX(INF_S), 0);
        T1D(fpu_cvt_s_d, NINF_D, rm, BOX(NINF_S), 0);
        T1D(fpu_cvt_s_d, NZERO_D, rm, BOX(NEG_ZERO), 0);
        T1D(fpu_cvt_s_d, ONE_D, rm, BOX(ONE_S), 0);
        T1D(fpu_cvt_s_d, 0x36a0000000000000ull, rm, BOX(0x00000001), 0); /* 2^-149 exact */
    }
    static const uint32_t of[5] = {INF_S, MAX_S, MAX_S, INF_S, INF_S};
    static const uint32_t nof[5] = {NINF_S, 0xff7fffff, NINF_S, 0xff7fffff, NINF_S};
    /* 2^-150: a tie between 0 and the smallest subnormal. */
    static const uint32_t half_min[5] = {0, 0, 0, 1, 1};
    static const uint32_t nhalf_min[5] = {NEG_ZERO, NEG_ZERO, 0x80000001, NEG_ZERO, 0x80000001};
    /* The smallest double subnormal. */
    static const uint32_t dmin[5] = {0, 0, 0, 1, 0};
    /* 2^-126 - 2^-152: not tiny after rounding in RNE/RUP/RMM. */
    static const uint32_t edge[5] = {0x00800000, 0x007fffff, 0x007fffff, 0x00800000, 0x00800000};
    static const unsigned edge_fl[5] = {NX, UF | NX, UF | NX, NX, NX};
    /* 2^-126 - 2^-151: an unbounded-exponent tie (to even 2^-126 in RNE). */
    static const unsigned edge2_fl[5] = {NX, UF | NX, UF | NX, NX, NX};
    /* 2^128 - 2^103 = max + half ulp: overflows in RNE, RUP and RMM only. */
    static const uint32_t maxh[5] = {INF_S, MAX_S, MAX_S, INF_S, INF_S};
    static const unsigned maxh_fl[5] = {OF | NX, NX, NX, OF | NX, OF | NX};
    /* 0.1 */
    static const uint32_t tenth[5] = {0x3dcccccd, 0x3dcccccc, 0x3dcccccc, 0x3dcccccd, 0x3dcccccd};
    for (unsigned rm = 0; rm < 5; rm++) {
        T1D(fpu_cvt_s_d, 0x47f0000000000000ull, rm, BOX(of[rm]), OF | NX);
        T1D(fpu_cvt_s_d, MAX_D, rm, BOX(of[rm]), OF | NX);
        T1D(fpu_cvt_s_d, 0xffefffffffffffffull, rm, BOX(nof[rm]), OF | NX);
        T1D(fpu_cvt_s_d, 0x3690000000000000ull, rm, BOX(half_min[rm]), UF | NX);
        T1D(fpu_cvt_s_d, 0xb690000000000000ull, rm, BOX(nhalf_min[rm]), UF | NX);
        T1D(fpu_cvt_s_d, 0x1ull, rm, BOX(dmin[rm]), UF | NX);
        T1D(fpu_cvt_s_d, 0x380ffffff8000000ull, rm, BOX(edge[rm]), edge_fl[rm]);
        T1D(fpu_cvt_s_d, 0x380ffffff0000000ull, rm, BOX(edge[rm]), edge2_fl[rm]);
        T1D(fpu_cvt_s_d, 0x47effffff0000000ull, rm, BOX(maxh[rm]), maxh_fl[rm]);
        T1D(fpu_cvt_s_d, 0x3fb999999999999aull, rm, BOX(tenth[rm]), NX);
    }

    /* fcvt.d.s is exact. */
    T1D(fpu_cvt_d_s, BOX(ONE_S), FPU_RNE, ONE_D, 0);
    T1D(fpu_cvt_d_s, BOX(0x00000001), FPU_RTZ, 0x36a0000000000000ull, 0);
    T1D(fpu_cvt_d_s, BOX(0x807fffff), FPU_RMM, 0xb80fffffc0000000ull, 0);
    T1D(fpu_cvt_d_s, BOX(MAX_S), FPU_RNE, 0x47efffffe0000000ull, 0);
    T1D(fpu_cvt_d_s, BOX(NINF_S), FPU_RNE, NINF_D, 0);
    T1D(fpu_cvt_d_s, BOX(NEG_ZERO), FPU_RNE, NZERO_D, 0);
    T1D(fpu_cvt_d_s, BOX(SNAN_S), FPU_RNE, QNAN_D, NV);
    T1D(fpu_cvt_d_s, BOX(0xffc12345), FPU_RNE, QNAN_D, 0);
}

/* Cases where a multiply rounded before the add would give another answer. */
static void test_fma_single_rounding(void)
{
    /* (1 + 2^-23)(1 - 2^-24) - 1 = 2^-24 - 2^-47 exactly; a separate multiply rounds the
     * product to 1 and gives 0. */
    for (unsigned rm = 0; rm < 5; rm++) {
        T3S(fpu_madd_s, 0x3f800001, 0x3f7fffff, 0xbf800000, rm, 0x337ffffe, 0);
        T3S(fpu_nmadd_s, 0x3f800001, 0x3f7fffff, 0xbf800000, rm, 0xb37ffffe, 0);
        T3S(fpu_msub_s, 0x3f800001, 0x3f7fffff, ONE_S, rm, 0x337ffffe, 0);
        T3S(fpu_nmsub_s, 0x3f800001, 0x3f7fffff, ONE_S, rm, 0xb37ffffe, 0);
        T3D(fpu_madd_d, 0x3ff0000000000001ull, 0x3fefffffffffffffull, 0xbff0000000000000ull, rm,
            0x3c9ffffffffffffeull, 0);
        T3D(fpu_nmadd_d, 0x3ff0000000000001ull, 0x3fefffffffffffffull, 0xbff0000000000000ull, rm,
            0xbc9ffffffffffffeull, 0);
    }
    /* The product's rounding would create a tie the exact sum does not have:
     * (1 + 2^-23)(1 + 2^-23) = 1 + 2^-22 + 2^-46; + 2^-24 is just above a tie. */
    T3S(fpu_madd_s, 0x3f800001, 0x3f800001, 0x33800000, FPU_RNE, 0x3f800003, NX);
    T3S(fpu_madd_s, 0x3f800001, 0x3f800001, 0x33800000, FPU_RTZ, 0x3f800002, NX);
    /* No intermediate overflow: max * 2 - max = max. */
    T3S(fpu_madd_s, MAX_S, 0x40000000, 0xff7fffff, FPU_RNE, MAX_S, 0);
    T3D(fpu_madd_d, MAX_D, 0x4000000000000000ull, 0xffefffffffffffffull, FPU_RMM, MAX_D, 0);
    /* No intermediate underflow: 2^-100 * 2^-100 + 1 is inexact but does not underflow. */
    T3S(fpu_madd_s, 0x0d800000, 0x0d800000, ONE_S, FPU_RNE, ONE_S, NX);
    T3S(fpu_madd_s, 0x0d800000, 0x0d800000, ONE_S, FPU_RUP, 0x3f800001, NX);
    T3S(fpu_madd_s, 0x0d800000, 0x0d800000, ONE_S, FPU_RMM, ONE_S, NX);
    /* Exact zero sums: +0 except in RDN; fnmadd negates operands, not the result. */
    for (unsigned rm = 0; rm < 5; rm++) {
        uint32_t z = rm == FPU_RDN ? NEG_ZERO : 0;
        T3S(fpu_madd_s, ONE_S, ONE_S, 0xbf800000, rm, z, 0);
        T3S(fpu_nmadd_s, ONE_S, ONE_S, 0xbf800000, rm, z, 0);
        T3S(fpu_madd_s, NEG_ZERO, ONE_S, 0, rm, z, 0);
        T3S(fpu_madd_s, NEG_ZERO, ONE_S, NEG_ZERO, rm, NEG_ZERO, 0);
        T3S(fpu_nmadd_s, 0, ONE_S, 0, rm, NEG_ZERO, 0);
        T3D(fpu_msub_d, ONE_D, ONE_D, ONE_D, rm, rm == FPU_RDN ? NZERO_D : 0, 0);
    }
}

/* ==== Reference: an independent soft-float on 128-bit integers =========================== */

#define U128 unsigned __int128

struct ref_format {
    unsigned width, prec;
    int bias;
};

static const struct ref_format ref_s = {32, 24, 127}, ref_d = {64, 53, 1023};

enum { REF_ZERO, REF_FINITE, REF_INF, REF_QNAN, REF_SNAN };

/* value = (-1)^sign * sig * 2^exp exactly (sig is the integer significand). */
struct ref_value {
    int kind;
    bool sign;
    U128 sig;
    int exp;
};

static struct ref_value ref_decode(const struct ref_format *f, uint64_t bits)
{
    struct ref_value v = {0};
    unsigned fb = f->prec - 1, ew = f->width - f->prec;
    uint64_t frac = bits & ((1ull << fb) - 1);
    uint64_t e = (bits >> fb) & ((1ull << ew) - 1);

    v.sign = (bits >> (f->width - 1)) & 1;
    if (e == (1ull << ew) - 1)
        v.kind = frac == 0 ? REF_INF : (frac >> (fb - 1)) ? REF_QNAN : REF_SNAN;
    else if (e == 0 && frac == 0)
        v.kind = REF_ZERO;
    else {
        v.kind = REF_FINITE;
        v.sig = e ? frac | (1ull << fb) : frac;
        v.exp = (e ? (int)e : 1) - f->bias - (int)fb;
    }
    return v;
}

static int ref_msb(U128 x)
{
    int n = -1;
    while (x) {
        x >>= 1;
        n++;
    }
    return n;
}

static uint64_t ref_special(const struct ref_format *f, bool sign, bool inf)
{
    uint64_t s = (uint64_t)sign << (f->width - 1);
    return inf ? s | (((1ull << (f->width - f->prec)) - 1) << (f->prec - 1)) : s;
}

static uint64_t ref_qnan(const struct ref_format *f)
{
    return ref_special(f, false, true) | (1ull << (f->prec - 2));
}

/* Rounds the value in (sig, sig + sticky) * 2^exp to an integer multiple of 2^q. */
static U128 ref_round_to(U128 sig, int exp, bool sticky, int q, bool sign, unsigned rm,
                         bool *inexact)
{
    int s = q - exp;
    U128 kept, rest, half;
    bool above, tie, nonzero;

    if (s <= 0) {
        if (sticky) {
            fprintf(stderr, "reference: sticky bit without precision\n");
            abort();
        }
        *inexact = false;
        return sig << -s;
    }
    if (s < 128) {
        kept = sig >> s;
        rest = sig & (((U128)1 << s) - 1);
        half = (U128)1 << (s - 1);
        above = rest > half || (rest == half && sticky);
        tie = rest == half && !sticky;
        nonzero = rest != 0 || sticky;
    } else {
        kept = 0;
        above = s == 128 && (sig > ((U128)1 << 127) || (sig == ((U128)1 << 127) && sticky));
        tie = s == 128 && sig == ((U128)1 << 127) && !sticky;
        nonzero = sig != 0 || sticky;
    }
    *inexact = nonzero;
    bool up = false;
    switch (rm) {
    case FPU_RNE: up = above || (tie && (kept & 1)); break;
    case FPU_RTZ: up = false; break;
    case FPU_RDN: up = nonzero && sign; break;
    case FPU_RUP: up = nonzero && !sign; break;
    case FPU_RMM: up = above || tie; break;
    }
    return kept + up;
}

/* IEEE 754-2008 §4.3 and §7: rounds (-1)^sign * (sig + sticky) * 2^exp (sig > 0) to format
 * f. Overflow and tininess are judged on the result rounded with an unbounded exponent. */
static uint64_t ref_round(const struct ref_format *f, bool sign, U128 sig, int exp, bool sticky,
                          unsigned rm, unsigned *flags)
{
    int p = (int)f->prec, emin = 1 - f->bias, emax = f->bias;
    int top = ref_msb(sig) + exp;
    bool inexact;

    U128 mu = ref_round_to(sig, exp, sticky, top - (p - 1), sign, rm, &inexact);
    int top_unbounded = top - (p - 1) + ref_msb(mu);
    if (top_unbounded > emax) {
        *flags |= FPU_OF | FPU_NX;
        bool to_inf =
            rm == FPU_RNE || rm == FPU_RMM || (rm == FPU_RDN && sign) || (rm == FPU_RUP && !sign);
        return to_inf ? ref_special(f, sign, true) : ref_special(f, sign, true) - 1;
    }
    bool tiny = top_unbounded < emin;
    int q = top < emin ? emin - (p - 1) : top - (p - 1);
    U128 m = ref_round_to(sig, exp, sticky, q, sign, rm, &inexact);
    if (inexact)
        *flags |= tiny ? FPU_NX | FPU_UF : FPU_NX;
    uint64_t s = (uint64_t)sign << (f->width - 1);
    if (m >> (p - 1)) { /* normal */
        if (m >> p) {
            m >>= 1;
            q++;
        }
        uint64_t biased = (uint64_t)(q + (p - 1) + f->bias);
        return s | (biased << (p - 1)) | (uint64_t)(m & (((U128)1 << (p - 1)) - 1));
    }
    return s | (uint64_t)m;
}

/* Exact sum of two finite nonzero values of at most 110 bits, as (sig, exp, sticky). Returns
 * false for an exact zero. */
static bool ref_sum(bool sa, U128 a, int ea, bool sb, U128 b, int eb, bool *sign, U128 *sig,
                    int *exp, bool *sticky)
{
    /* Normalise both to bit 125, then align the smaller; bits shifted out only ever come from
     * an operand far below the other, where they act as a sticky bit. */
    int na = 125 - ref_msb(a), nb = 125 - ref_msb(b);
    a <<= na;
    ea -= na;
    b <<= nb;
    eb -= nb;
    if (ea < eb || (ea == eb && a < b)) {
        U128 t = a;
        a = b;
        b = t;
        int te = ea;
        ea = eb;
        eb = te;
        bool ts = sa;
        sa = sb;
        sb = ts;
    }
    int d = ea - eb;
    bool st = false;
    if (d >= 128) {
        st = b != 0;
        b = 0;
    } else if (d > 0) {
        st = (b & (((U128)1 << d) - 1)) != 0;
        b >>= d;
    }
    *sign = sa;
    *exp = ea;
    *sticky = st;
    if (sa == sb) {
        *sig = a + b;
    } else {
        *sig = a - b - (st ? 1 : 0);
        if (*sig == 0 && !st)
            return false;
        if (*sig == 0) {
            fprintf(stderr, "reference: cancellation with a sticky bit\n");
            abort();
        }
    }
    return true;
}

static U128 ref_isqrt(U128 n, bool *exact)
{
    U128 res = 0, bit = (U128)1 << 126;

    while (bit > n)
        bit >>= 2;
    while (bit) {
        if (n >= res + bit) {
            n -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    *exact = n == 0;
    return res;
}

enum ref_op { REF_ADD, REF_SUB, REF_MUL, REF_DIV, REF_SQRT, REF_FMA };

/* a op b (op c), per the RISC-V rules for NaNs (§11.3) and IEEE 754-2008 for the rest. */
static uint64_t ref_arith(const struct ref_format *f, enum ref_op op, uint64_t a, uint64_t b,
                          uint64_t c, unsigned rm, unsigned *flags)
{
    struct ref_value x = ref_decode(f, a), y = ref_decode(f, b), z = ref_decode(f, c);
    bool nan_x = x.kind >= REF_QNAN, nan_y = y.kind >= REF_QNAN, nan_z = z.kind >= REF_QNAN;
    bool uses_y = op != REF_SQRT, uses_z = op == REF_FMA;

    if (op == REF_SUB)
        y.sign = !y.sign;
    if (nan_x || (uses_y && nan_y) || (uses_z && nan_z)) {
        if (x.kind == REF_SNAN || (uses_y && y.kind == REF_SNAN) || (uses_z && z.kind == REF_SNAN))
            *flags |= FPU_NV;
        if (op == REF_FMA && ((x.kind == REF_INF && y.kind == REF_ZERO) ||
                              (x.kind == REF_ZERO && y.kind == REF_INF)))
            *flags |= FPU_NV;
        return ref_qnan(f);
    }

    bool sign = false, sticky = false;
    U128 sig = 0;
    int exp = 0;

    switch (op) {
    case REF_ADD:
    case REF_SUB:
    add:
        if (x.kind == REF_INF && y.kind == REF_INF && x.sign != y.sign) {
            *flags |= FPU_NV;
            return ref_qnan(f);
        }
        if (x.kind == REF_INF || y.kind == REF_INF)
            return ref_special(f, x.kind == REF_INF ? x.sign : y.sign, true);
        if (x.kind == REF_ZERO && y.kind == REF_ZERO)
            return ref_special(f, x.sign == y.sign ? x.sign : rm == FPU_RDN, false);
        if (x.kind == REF_ZERO) {
            sign = y.sign;
            sig = y.sig;
            exp = y.exp;
            sticky = false;
            break;
        }
        if (y.kind == REF_ZERO) {
            sign = x.sign;
            sig = x.sig;
            exp = x.exp;
            sticky = false;
            break;
        }
        if (!ref_sum(x.sign, x.sig, x.exp, y.sign, y.sig, y.exp, &sign, &sig, &exp, &sticky))
            return ref_special(f, rm == FPU_RDN, false);
        break;
    case REF_MUL:
    case REF_FMA: {
        bool ps = x.sign != y.sign;
        if ((x.kind == REF_INF && y.kind == REF_ZERO) ||
            (x.kind == REF_ZERO && y.kind == REF_INF)) {
            *flags |= FPU_NV;
            return ref_qnan(f);
        }
        struct ref_value prod = {.sign = ps};
        if (x.kind == REF_INF || y.kind == REF_INF)
            prod.kind = REF_INF;
        else if (x.kind == REF_ZERO || y.kind == REF_ZERO)
            prod.kind = REF_ZERO;
        else {
            prod.kind = REF_FINITE;
            prod.sig = x.sig * y.sig;
            prod.exp = x.exp + y.exp;
        }
        if (op == REF_MUL) {
            if (prod.kind != REF_FINITE)
                return ref_special(f, ps, prod.kind == REF_INF);
            sign = ps;
            sig = prod.sig;
            exp = prod.exp;
            break;
        }
        x = prod;
        y = z;
        goto add;
    }
    case REF_DIV:
        if ((x.kind == REF_INF && y.kind == REF_INF) ||
            (x.kind == REF_ZERO && y.kind == REF_ZERO)) {
            *flags |= FPU_NV;
            return ref_qnan(f);
        }
        sign = x.sign != y.sign;
        if (x.kind == REF_INF || y.kind == REF_ZERO) {
            if (y.kind == REF_ZERO && x.kind != REF_INF)
                *flags |= FPU_DZ;
            return ref_special(f, sign, true);
        }
        if (x.kind == REF_ZERO || y.kind == REF_INF)
            return ref_special(f, sign, false);
        {
            int n = 125 - ref_msb(x.sig);
            U128 num = x.sig << n;
            sig = num / y.sig;
            sticky = num % y.sig != 0;
            exp = x.exp - n - y.exp;
        }
        break;
    case REF_SQRT:
        if (x.kind == REF_ZERO)
            return ref_special(f, x.sign, false);
        if (x.sign) {
            *flags |= FPU_NV;
            return ref_qnan(f);
        }
        if (x.kind == REF_INF)
            return ref_special(f, false, true);
        {
            U128 n = x.sig;
            int e = x.exp;
            if (e & 1) {
                n <<= 1;
                e--;
            }
            int k = (124 - ref_msb(n)) / 2;
            bool exact;
            sig = ref_isqrt(n << (2 * k), &exact);
            sticky = !exact;
            exp = (e - 2 * k) / 2;
            sign = false;
        }
        break;
    }
    return ref_round(f, sign, sig, exp, sticky, rm, flags);
}

/* Float -> integer per §11.7. */
static uint64_t ref_to_int(const struct ref_format *f, uint64_t bits, unsigned rm, bool is_signed,
                           unsigned width, unsigned *flags)
{
    struct ref_value v = ref_decode(f, bits);
    U128 lim_pos = is_signed ? ((U128)1 << (width - 1)) - 1 : ((U128)1 << width) - 1;
    U128 lim_neg = is_signed ? (U128)1 << (width - 1) : 0;
    U128 mag = 0;
    bool neg = v.sign, invalid = false, inexact = false;

    if (v.kind >= REF_QNAN) {
        invalid = true;
        neg = false;
    } else if (v.kind == REF_INF) {
        invalid = true;
    } else if (v.kind == REF_FINITE) {
        if (v.exp + ref_msb(v.sig) > 70)
            invalid = true;
        else
            mag = ref_round_to(v.sig, v.exp, false, 0, v.sign, rm, &inexact);
        if (mag > (neg ? lim_neg : lim_pos))
            invalid = true;
    }
    if (invalid) {
        *flags |= FPU_NV;
        mag = neg ? lim_neg : lim_pos;
    } else if (inexact) {
        *flags |= FPU_NX;
    }
    uint64_t r = neg ? (uint64_t)0 - (uint64_t)mag : (uint64_t)mag;
    return width == 32 ? (uint64_t)(int64_t)(int32_t)(uint32_t)r : r;
}

/* Float -> float (fcvt.s.d and fcvt.d.s). */
static uint64_t ref_convert(const struct ref_format *to, const struct ref_format *from,
                            uint64_t bits, unsigned rm, unsigned *flags)
{
    struct ref_value v = ref_decode(from, bits);

    if (v.kind >= REF_QNAN) {
        if (v.kind == REF_SNAN)
            *flags |= FPU_NV;
        return ref_qnan(to);
    }
    if (v.kind != REF_FINITE)
        return ref_special(to, v.sign, v.kind == REF_INF);
    return ref_round(to, v.sign, v.sig, v.exp, false, rm, flags);
}

/* ==== Randomized differential test ======================================================== */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t n)
{
    return rng_next() % n;
}

/* Builds a value of format f from a sign, a biased exponent and a fraction. */
static uint64_t gen_pack(const struct ref_format *f, bool sign, uint64_t biased, uint64_t frac)
{
    unsigned fb = f->prec - 1;
    return ((uint64_t)sign << (f->width - 1)) | (biased << fb) | (frac & ((1ull << fb) - 1));
}

/* A fraction with a random number of low bits cleared, so that sums and products often land
 * exactly on ties. */
static uint64_t gen_frac(const struct ref_format *f)
{
    uint64_t frac = rng_next() & ((1ull << (f->prec - 1)) - 1);
    unsigned clear = (unsigned)rng_below(f->prec);
    if (rng_below(2))
        frac &= ~((1ull << clear) - 1);
    return frac;
}

static uint64_t gen_special(const struct ref_format *f)
{
    uint64_t emax_field = (1ull << (f->width - f->prec)) - 1, fb = f->prec - 1;
    bool sign = rng_below(2);
    switch (rng_below(12)) {
    case 0: return gen_pack(f, sign, 0, 0);                         /* zero */
    case 1: return gen_pack(f, sign, emax_field, 0);                /* infinity */
    case 2: return gen_pack(f, sign, emax_field, 1ull << (fb - 1)); /* quiet NaN */
    case 3: return gen_pack(f, sign, emax_field, rng_next() | 1ull << (fb - 1));
    case 4: return gen_pack(f, sign, emax_field, (rng_next() & ((1ull << (fb - 1)) - 1)) | 1);
    case 5: return gen_pack(f, sign, 0, 1);                         /* smallest subnormal */
    case 6: return gen_pack(f, sign, 0, ~0ull);                     /* largest subnormal */
    case 7: return gen_pack(f, sign, 1, 0);                         /* smallest normal */
    case 8: return gen_pack(f, sign, emax_field - 1, ~0ull);        /* largest finite */
    case 9: return gen_pack(f, sign, (uint64_t)f->bias, 0);         /* one */
    case 10: return gen_pack(f, sign, 0, gen_frac(f));              /* subnormal */
    default: return gen_pack(f, sign, emax_field - 1, gen_frac(f)); /* huge */
    }
}

/* A random operand: specials, the whole range, and values near 1, near the subnormal range
 * and near overflow. */
static uint64_t gen_operand(const struct ref_format *f)
{
    uint64_t emax_field = (1ull << (f->width - f->prec)) - 1;
    bool sign = rng_below(2);
    switch (rng_below(8)) {
    case 0: return gen_special(f);
    case 1: return rng_next() & (f->width == 64 ? ~0ull : 0xffffffffull);
    case 2:
    case 3: return gen_pack(f, sign, (uint64_t)f->bias - 8 + rng_below(16), gen_frac(f));
    case 4: return gen_pack(f, sign, rng_below(f->prec + 2), gen_frac(f));
    case 5: return gen_pack(f, sign, emax_field - 1 - rng_below(f->prec + 2), gen_frac(f));
    default: return gen_pack(f, sign, 1 + rng_below(emax_field - 1), gen_frac(f));
    }
}

/* A second operand related to the first: near it (cancellation), a few binades away (ties in
 * sums) or with an exponent that puts the product or quotient near the edges of the range. */
static uint64_t gen_partner(const struct ref_format *f, uint64_t a)
{
    unsigned fb = f->prec - 1;
    uint64_t emax_field = (1ull << (f->width - f->prec)) - 1;
    int64_t ea = (int64_t)((a >> fb) & emax_field);
    bool sign = rng_below(2);
    int64_t e;

    switch (rng_below(6)) {
    case 0: return gen_operand(f);
    case 1: return a ^ (rng_below(2) ? 1ull << (f->width - 1) : 0) ^ rng_below(4);
    case 2: e = ea - (int64_t)rng_below(f->prec + 3); break;
    case 3: e = 2 * f->bias - ea + 1 - (int64_t)rng_below(f->prec + 3); break; /* product ~ 1 */
    case 4: e = -ea + (int64_t)rng_below(f->prec + 2) + 1; break; /* product near underflow */
    default: e = ea - f->bias - (int64_t)rng_below(4); break;     /* quotient near the edges */
    }
    if (e < 0)
        e = 0;
    if (e > (int64_t)emax_field - 1)
        e = (int64_t)emax_field - 1;
    return gen_pack(f, sign, (uint64_t)e, gen_frac(f));
}

static const char *const op_names[] = {"add", "sub", "mul", "div", "sqrt", "fma"};

/* Calls the FPU for one operation; fma picks one of the four fused forms from `variant`. */
static uint64_t dut_arith(bool dbl, enum ref_op op, unsigned variant, uint64_t a, uint64_t b,
                          uint64_t c, unsigned rm, unsigned *flags)
{
    if (dbl) {
        switch (op) {
        case REF_ADD: return fpu_add_d(a, b, rm, flags);
        case REF_SUB: return fpu_sub_d(a, b, rm, flags);
        case REF_MUL: return fpu_mul_d(a, b, rm, flags);
        case REF_DIV: return fpu_div_d(a, b, rm, flags);
        case REF_SQRT: return fpu_sqrt_d(a, rm, flags);
        case REF_FMA:
            switch (variant) {
            case 0: return fpu_madd_d(a, b, c, rm, flags);
            case 1: return fpu_msub_d(a, b, c, rm, flags);
            case 2: return fpu_nmsub_d(a, b, c, rm, flags);
            default: return fpu_nmadd_d(a, b, c, rm, flags);
            }
        }
        return 0;
    }
    switch (op) {
    case REF_ADD: return fpu_add_s(a, b, rm, flags);
    case REF_SUB: return fpu_sub_s(a, b, rm, flags);
    case REF_MUL: return fpu_mul_s(a, b, rm, flags);
    case REF_DIV: return fpu_div_s(a, b, rm, flags);
    case REF_SQRT: return fpu_sqrt_s(a, rm, flags);
    case REF_FMA:
        switch (variant) {
        case 0: return fpu_madd_s(a, b, c, rm, flags);
        case 1: return fpu_msub_s(a, b, c, rm, flags);
        case 2: return fpu_nmsub_s(a, b, c, rm, flags);
        default: return fpu_nmadd_s(a, b, c, rm, flags);
        }
    }
    return 0;
}

static unsigned long diff_cases, diff_mismatches;

static void diff_report(const char *what, unsigned rm, uint64_t a, uint64_t b, uint64_t c,
                        uint64_t got, unsigned got_fl, uint64_t want, unsigned want_fl)
{
    diff_mismatches++;
    if (diff_mismatches <= 20)
        fprintf(stderr,
                "differential %s rm=%u a=%#" PRIx64 " b=%#" PRIx64 " c=%#" PRIx64 ": got %#" PRIx64
                " flags %#x, want %#" PRIx64 " flags %#x\n",
                what, rm, a, b, c, got, got_fl, want, want_fl);
}

static void diff_arith(bool dbl, unsigned per_mode)
{
    const struct ref_format *f = dbl ? &ref_d : &ref_s;
    uint64_t mask = dbl ? ~0ull : 0xffffffffull;

    for (unsigned op = REF_ADD; op <= REF_FMA; op++) {
        unsigned long before = diff_mismatches;
        for (unsigned rm = 0; rm < 5; rm++) {
            for (unsigned i = 0; i < per_mode; i++) {
                uint64_t a = gen_operand(f);
                uint64_t b = rng_below(2) ? gen_partner(f, a) : gen_operand(f);
                uint64_t c = rng_below(2) ? gen_partner(f, rng_below(2) ? a : b) : gen_operand(f);
                unsigned variant = (unsigned)rng_below(4);
                if (op == REF_SQRT && rng_below(4))
                    a &= ~(1ull << (f->width - 1)); /* mostly in the domain */
                if (op == REF_FMA && rng_below(4) == 0) {
                    /* An addend that nearly cancels the product. */
                    unsigned pf = 0;
                    c = ref_arith(f, REF_MUL, a, b, 0, (unsigned)rng_below(5), &pf) ^ rng_below(3);
                }
                /* What the reference computes for each fused form. */
                uint64_t sign = 1ull << (f->width - 1);
                uint64_t ra = a, rc = c;
                if (op == REF_FMA && (variant == 2 || variant == 3))
                    ra ^= sign;
                if (op == REF_FMA && (variant == 1 || variant == 3))
                    rc ^= sign;
                unsigned want_fl = 0, got_fl = 0;
                uint64_t want = ref_arith(f, (enum ref_op)op, ra, b, rc, rm, &want_fl);
                uint64_t ia = a, ib = b, ic = c;
                if (!dbl) {
                    ia = BOX(a);
                    ib = BOX(b);
                    ic = BOX(c);
                    want = BOX(want);
                }
                uint64_t got = dut_arith(dbl, (enum ref_op)op, variant, ia, ib, ic, rm, &got_fl);
                diff_cases++;
                if (got != want || got_fl != want_fl)
                    diff_report(op_names[op], rm, a & mask, b & mask, c & mask, got, got_fl, want,
                                want_fl);
            }
        }
        if (diff_mismatches != before)
            fprintf(stderr, "differential: %s.%c has %lu mismatches\n", op_names[op],
                    dbl ? 'd' : 's', diff_mismatches - before);
        CHECK(diff_mismatches == before);
    }
}

static void diff_conversions(unsigned per_mode)
{
    unsigned long before = diff_mismatches;

    for (unsigned rm = 0; rm < 5; rm++) {
        for (unsigned i = 0; i < per_mode; i++) {
            bool dbl = rng_below(2);
            const struct ref_format *f = dbl ? &ref_d : &ref_s;
            uint64_t x;
            /* Values around the integer limits and small values, or anything. */
            if (rng_below(2)) {
                static const int exps[] = {-2, -1, 0, 1, 30, 31, 32, 62, 63, 64};
                int e = exps[rng_below(sizeof(exps) / sizeof(exps[0]))];
                x = gen_pack(f, rng_below(2), (uint64_t)(f->bias + e), gen_frac(f));
                if (rng_below(4) == 0)
                    x = gen_pack(f, rng_below(2), (uint64_t)(f->bias + e), ~0ull) + rng_below(2);
            } else {
                x = gen_operand(f);
            }
            uint64_t in = dbl ? x : BOX(x);
            for (unsigned k = 0; k < 4; k++) {
                bool is_signed = !(k & 1);
                unsigned width = k & 2 ? 64 : 32;
                unsigned want_fl = 0, got_fl = 0;
                uint64_t want = ref_to_int(f, x, rm, is_signed, width, &want_fl);
                uint64_t got;
                if (dbl)
                    got = k == 0   ? fpu_cvt_w_d(in, rm, &got_fl)
                          : k == 1 ? fpu_cvt_wu_d(in, rm, &got_fl)
                          : k == 2 ? fpu_cvt_l_d(in, rm, &got_fl)
                                   : fpu_cvt_lu_d(in, rm, &got_fl);
                else
                    got = k == 0   ? fpu_cvt_w_s(in, rm, &got_fl)
                          : k == 1 ? fpu_cvt_wu_s(in, rm, &got_fl)
                          : k == 2 ? fpu_cvt_l_s(in, rm, &got_fl)
                                   : fpu_cvt_lu_s(in, rm, &got_fl);
                diff_cases++;
                if (got != want || got_fl != want_fl)
                    diff_report("to-int", rm, x, k, dbl, got, got_fl, want, want_fl);
            }

            /* Integer -> float: each of the eight forms, with the reference rounding. */
            uint64_t n = rng_next() >> rng_below(64);
            if (rng_below(2))
                n = (uint64_t)0 - n;
            for (unsigned k = 0; k < 8; k++) {
                bool to_d = k & 4, is_signed = !(k & 1), w64 = k & 2;
                const struct ref_format *t = to_d ? &ref_d : &ref_s;
                uint64_t src = w64 ? n : is_signed ? (uint64_t)(int64_t)(int32_t)n : (uint32_t)n;
                bool neg = is_signed && (int64_t)src < 0;
                uint64_t mag = neg ? (uint64_t)0 - src : src;
                unsigned want_fl = 0, got_fl = 0;
                uint64_t want =
                    mag ? ref_round(t, neg, mag, 0, false, rm, &want_fl) : ref_special(t, 0, 0);
                uint64_t got;
                static uint64_t (*const fns[8])(uint64_t, unsigned, unsigned *) = {
                    fpu_cvt_s_w, fpu_cvt_s_wu, fpu_cvt_s_l, fpu_cvt_s_lu,
                    fpu_cvt_d_w, fpu_cvt_d_wu, fpu_cvt_d_l, fpu_cvt_d_lu};
                got = fns[k](n, rm, &got_fl);
                if (!to_d)
                    want = BOX(want);
                diff_cases++;
                if (got != want || got_fl != want_fl)
                    diff_report("from-int", rm, n, k, 0, got, got_fl, want, want_fl);
            }

            /* fcvt.s.d over the whole double range, weighted toward binary32's range. */
            uint64_t d = gen_operand(&ref_d);
            if (rng_below(2))
                d = gen_pack(&ref_d, rng_below(2), 1023 - 160 + rng_below(300), gen_frac(&ref_d));
            unsigned want_fl = 0, got_fl = 0;
            uint64_t want = BOX(ref_convert(&ref_s, &ref_d, d, rm, &want_fl));
            uint64_t got = fpu_cvt_s_d(d, rm, &got_fl);
            diff_cases++;
            if (got != want || got_fl != want_fl)
                diff_report("cvt.s.d", rm, d, 0, 0, got, got_fl, want, want_fl);
            want_fl = got_fl = 0;
            want = ref_convert(&ref_d, &ref_s, x & 0xffffffffull, rm, &want_fl);
            got = fpu_cvt_d_s(BOX(x), rm, &got_fl);
            diff_cases++;
            if (got != want || got_fl != want_fl)
                diff_report("cvt.d.s", rm, x, 0, 0, got, got_fl, want, want_fl);
        }
    }
    CHECK(diff_mismatches == before);
}

/* Checks the reference itself against known answers before trusting it. */
static void test_reference(void)
{
    unsigned f = 0;
    CHECK_EQ_U64(ref_arith(&ref_s, REF_ADD, ONE_S, 0x33800000, 0, FPU_RMM, &f), 0x3f800001);
    CHECK_EQ_U64(ref_arith(&ref_s, REF_DIV, ONE_S, 0x40400000, 0, FPU_RNE, &f), 0x3eaaaaab);
    CHECK_EQ_U64(ref_arith(&ref_d, REF_SQRT, 0x4000000000000000ull, 0, 0, FPU_RNE, &f),
                 0x3ff6a09e667f3bcdull);
    CHECK_EQ_U64(f, NX);
    f = 0;
    CHECK_EQ_U64(ref_arith(&ref_s, REF_MUL, 0x3f7fffff, 0x00800000, 0, FPU_RNE, &f), 0x00800000);
    CHECK_EQ_U64(f, UF | NX);
}

int main(void)
{
    test_reference();
    test_basic_vectors();
    test_rounding_modes();
    test_flags();
    test_nans();
    test_min_max_sgnj();
    test_compare_class();
    test_conversions_to_int();
    test_conversions_from_int();
    test_conversions_float();
    test_fma_single_rounding();

    clock_t start = clock();
    diff_arith(false, 25000);
    diff_arith(true, 25000);
    diff_conversions(20000);
    printf("differential: %lu cases, %lu mismatches, %.2f s\n", diff_cases, diff_mismatches,
           (double)(clock() - start) / CLOCKS_PER_SEC);
    return test_finish("fpu");
}
