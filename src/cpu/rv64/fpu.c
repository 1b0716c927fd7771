/* RISC-V F and D arithmetic (unprivileged ISA 20191213, chapters 11 and 12) on raw bit patterns.
 *
 * Design
 *  - RNE, RTZ, RDN and RUP arithmetic runs on the host's IEEE 754 hardware. The host's SSE unit
 *    rounds exactly as RISC-V requires and detects tininess after rounding (Intel SDM vol. 1
 *    §4.9.1.5), so its result and its sticky flags are the RISC-V result and flags once a NaN
 *    result is replaced by the canonical NaN. Each operation loads the host control word with
 *    its rounding mode and clear flags, computes, reads the flags and, unless rm was RNE, puts
 *    the host back in round-to-nearest, the resting state of every thread that calls us: RNE
 *    costs one control-register write and one read.
 *  - RMM has no host equivalent. Its operations compute the exact result rounded toward zero in
 *    a wider host format (double for binary32, x87 extended for binary64) and OR the host's
 *    inexact flag into a sticky bit below the wide significand: the exact value lies strictly
 *    between the truncated value and the next wide value, an interval that contains no
 *    boundary of the narrower format (it is at least two bits narrower), so rounding the sticky
 *    value once more (fpu_round_pack) gives the correctly rounded result and its NX/UF/OF flags.
 *    The wide formats cannot overflow or underflow on these operands, so the first step is
 *    exact apart from the sticky bit. The binary64 step uses x87 arithmetic (and glibc's
 *    correctly rounded fmal) under <fenv.h>, assuming the x87 precision control is left at
 *    extended, as the SysV x86-64 ABI sets it. RMM is rare, so this path favours simplicity.
 *  - Everything whose host behaviour differs from RISC-V is done in software on the bits: NaN
 *    operands (§11.3: results are the canonical NaN; only signaling NaNs raise NV, plus
 *    0 x inf in a fused multiply-add even when the addend is a quiet NaN), min/max, comparisons,
 *    classify, sign injection, NaN boxing (§12.2) and every conversion to or from an integer
 *    (the host's conversions do not saturate, §11.7).
 *
 * The host floating-point state is per thread, so every function is safe on any thread. On an
 * x86-64 host the FPU leaves MXCSR in the C default state (round to nearest, exceptions masked,
 * no flush-to-zero); its sticky exception bits are scratch. */

#include "cpu/rv64/fpu.h"

#include <fenv.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* FPU_HOST_FENV forces the portable <fenv.h> path on x86-64 too, so it can be tested there. */
#if defined(__x86_64__) && defined(__SSE2__) && !defined(FPU_HOST_FENV)
#define FPU_HOST_MXCSR 1
#include <xmmintrin.h>
#endif

/* RMM for binary64 relies on x87 extended precision: 64 significand bits (53 + a rounding and a
 * sticky bit and more) and an exponent range wide enough that no binary64 product, quotient or
 * fused sum overflows or becomes subnormal. */
_Static_assert(LDBL_MANT_DIG >= 55 && LDBL_MANT_DIG <= 64 && LDBL_MAX_EXP >= 4096 &&
                   LDBL_MIN_EXP <= -4096,
               "fpu.c needs an x87-style long double for RMM binary64 arithmetic");

/* Pins a value to a register (or memory) at this point of the program, so that the compiler
 * neither moves the floating-point operation producing or consuming it across a change of the
 * host rounding mode or flags, nor merges two such operations done under different modes. */
#if defined(FPU_HOST_MXCSR)
#define FPU_PIN(v) __asm__ volatile("" : "+x"(v))
#else
#define FPU_PIN(v) __asm__ volatile("" : "+m"(v))
#endif
#define FPU_PIN_MEM(v) __asm__ volatile("" : "+m"(v))

/* An IEEE 754 binary interchange format. emin = 1 - bias, emax = bias. */
struct fpu_format {
    unsigned width; /* 32 or 64 */
    unsigned prec;  /* significand bits including the hidden bit */
    int bias;
};

static const struct fpu_format fpu_format_s = {.width = 32, .prec = 24, .bias = 127};
static const struct fpu_format fpu_format_d = {.width = 64, .prec = 53, .bias = 1023};

#define FPU_QNAN_S  0x7fc00000u
#define FPU_QNAN_D  0x7ff8000000000000ull
#define FPU_BOX_S   0xffffffff00000000ull
#define FPU_SIGN_S  0x80000000u
#define FPU_SIGN_D  0x8000000000000000ull
#define FPU_INF_S   0x7f800000u
#define FPU_INF_D   0x7ff0000000000000ull
#define FPU_QUIET_S 0x00400000u
#define FPU_QUIET_D 0x0008000000000000ull

enum fpu_op { FPU_OP_ADD, FPU_OP_SUB, FPU_OP_MUL, FPU_OP_DIV, FPU_OP_SQRT, FPU_OP_FMA };

/* ---- Bit-level helpers ------------------------------------------------------------------ */

/* §12.2: a single operand whose upper 32 bits are not all ones reads as the canonical NaN. */
static inline uint32_t fpu_unbox_s(uint64_t x)
{
    return (x >> 32) == 0xffffffffu ? (uint32_t)x : FPU_QNAN_S;
}

static inline uint64_t fpu_box_s(uint32_t x)
{
    return FPU_BOX_S | x;
}

static inline bool fpu_is_nan_s(uint32_t x)
{
    return (x & ~FPU_SIGN_S) > FPU_INF_S;
}

static inline bool fpu_is_nan_d(uint64_t x)
{
    return (x & ~FPU_SIGN_D) > FPU_INF_D;
}

static inline bool fpu_is_snan_s(uint32_t x)
{
    return fpu_is_nan_s(x) && !(x & FPU_QUIET_S);
}

static inline bool fpu_is_snan_d(uint64_t x)
{
    return fpu_is_nan_d(x) && !(x & FPU_QUIET_D);
}

static inline float fpu_float_from_bits(uint32_t x)
{
    float f;
    memcpy(&f, &x, sizeof(f));
    return f;
}

static inline uint32_t fpu_bits_from_float(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof(x));
    return x;
}

static inline double fpu_double_from_bits(uint64_t x)
{
    double d;
    memcpy(&d, &x, sizeof(d));
    return d;
}

static inline uint64_t fpu_bits_from_double(double d)
{
    uint64_t x;
    memcpy(&x, &d, sizeof(x));
    return x;
}

/* ---- The host's floating-point environment ---------------------------------------------- */

#if defined(FPU_HOST_MXCSR)
static const unsigned fpu_mxcsr_rc[4] = {
    [FPU_RNE] = 0x0000, [FPU_RTZ] = 0x6000, [FPU_RDN] = 0x2000, [FPU_RUP] = 0x4000};

/* Starts a host operation under rounding mode rm (not RMM) with clear flags. */
static inline void fpu_host_enter(unsigned rm)
{
    _mm_setcsr(FPU_MXCSR_BASE | fpu_mxcsr_rc[rm]);
}

/* Ends it: back to round-to-nearest; returns the RISC-V flags the operation raised. */
static inline unsigned fpu_host_leave(unsigned rm)
{
    unsigned csr = _mm_getcsr();

    if (rm != FPU_RNE)
        _mm_setcsr(FPU_MXCSR_BASE);
    return FPU_FLAGS_OF_MXCSR(csr);
}
#else
static const int fpu_fenv_round[4] = {[FPU_RNE] = FE_TONEAREST,
                                      [FPU_RTZ] = FE_TOWARDZERO,
                                      [FPU_RDN] = FE_DOWNWARD,
                                      [FPU_RUP] = FE_UPWARD};

static inline void fpu_host_enter(unsigned rm)
{
    feclearexcept(FE_ALL_EXCEPT);
    if (rm != FPU_RNE)
        fesetround(fpu_fenv_round[rm]);
}

static inline unsigned fpu_host_leave(unsigned rm)
{
    int ex = fetestexcept(FE_ALL_EXCEPT);

    if (rm != FPU_RNE)
        fesetround(FE_TONEAREST);
    return (ex & FE_INVALID ? FPU_NV : 0) | (ex & FE_DIVBYZERO ? FPU_DZ : 0) |
           (ex & FE_OVERFLOW ? FPU_OF : 0) | (ex & FE_UNDERFLOW ? FPU_UF : 0) |
           (ex & FE_INEXACT ? FPU_NX : 0);
}
#endif

/* The operation itself, in each host format. Operands are never NaN here, and sqrt operands
 * are never below zero, so the libm calls never touch errno. */
static inline float fpu_host_op_s(enum fpu_op op, float a, float b, float c)
{
    switch (op) {
    case FPU_OP_ADD: return a + b;
    case FPU_OP_SUB: return a - b;
    case FPU_OP_MUL: return a * b;
    case FPU_OP_DIV: return a / b;
    case FPU_OP_SQRT: return sqrtf(a);
    case FPU_OP_FMA: return fmaf(a, b, c);
    }
    return 0;
}

static inline double fpu_host_op_d(enum fpu_op op, double a, double b, double c)
{
    switch (op) {
    case FPU_OP_ADD: return a + b;
    case FPU_OP_SUB: return a - b;
    case FPU_OP_MUL: return a * b;
    case FPU_OP_DIV: return a / b;
    case FPU_OP_SQRT: return sqrt(a);
    case FPU_OP_FMA: return fma(a, b, c);
    }
    return 0;
}

static inline long double fpu_host_op_ld(enum fpu_op op, long double a, long double b,
                                         long double c)
{
    switch (op) {
    case FPU_OP_ADD: return a + b;
    case FPU_OP_SUB: return a - b;
    case FPU_OP_MUL: return a * b;
    case FPU_OP_DIV: return a / b;
    case FPU_OP_SQRT: return sqrtl(a);
    case FPU_OP_FMA: return fmal(a, b, c);
    }
    return 0;
}

/* ---- Software rounding ------------------------------------------------------------------ */

/* A finite nonzero value sign * sig * 2^(exp - 63), with bit 63 of sig set. Bits below the
 * target precision may include a sticky bit standing for a nonzero remainder. */
struct fpu_unpacked {
    bool sign;
    int exp;
    uint64_t sig;
};

enum fpu_kind { FPU_KIND_ZERO, FPU_KIND_FINITE, FPU_KIND_INF, FPU_KIND_QNAN, FPU_KIND_SNAN };

/* Splits the bits of a value of format f; fills *u (sign always, exp/sig for FINITE). */
static enum fpu_kind fpu_unpack(const struct fpu_format *f, uint64_t bits, struct fpu_unpacked *u)
{
    unsigned frac_bits = f->prec - 1;
    uint64_t frac = bits & ((1ull << frac_bits) - 1);
    unsigned emask = (1u << (f->width - f->prec)) - 1;
    unsigned field = (unsigned)(bits >> frac_bits) & emask;

    u->sign = (bits >> (f->width - 1)) & 1;
    if (field == emask) {
        if (!frac)
            return FPU_KIND_INF;
        return (frac >> (frac_bits - 1)) ? FPU_KIND_QNAN : FPU_KIND_SNAN;
    }
    if (field == 0) {
        if (!frac)
            return FPU_KIND_ZERO;
        int lz = __builtin_clzll(frac);
        u->sig = frac << lz;
        u->exp = (1 - f->bias) - (int)frac_bits + 63 - lz;
        return FPU_KIND_FINITE;
    }
    u->sig = (frac | (1ull << frac_bits)) << (63 - frac_bits);
    u->exp = (int)field - f->bias;
    return FPU_KIND_FINITE;
}

/* Shifts sig right by k bits, rounding per rm for a value of the given sign (IEEE 754-2008
 * §4.3; RMM is roundTiesToAway). *inexact tells whether any nonzero bit was dropped. The result
 * can carry into one bit more than sig >> k has. */
static uint64_t fpu_round_shift(uint64_t sig, unsigned k, bool sign, unsigned rm, bool *inexact)
{
    uint64_t kept, rest, half;

    if (k == 0) {
        *inexact = false;
        return sig;
    }
    if (k < 64) {
        kept = sig >> k;
        rest = sig & ((1ull << k) - 1);
        half = 1ull << (k - 1);
    } else if (k == 64) {
        kept = 0;
        rest = sig;
        half = 1ull << 63;
    } else {
        kept = 0; /* the whole of sig lies below half a unit */
        rest = sig != 0;
        half = 2;
    }
    *inexact = rest != 0;
    switch (rm) {
    case FPU_RNE: return kept + (rest > half || (rest == half && (kept & 1)));
    case FPU_RTZ: return kept;
    case FPU_RDN: return kept + (rest && sign);
    case FPU_RUP: return kept + (rest && !sign);
    case FPU_RMM: return kept + (rest >= half);
    }
    return kept;
}

/* The result of an overflow (§11.2, IEEE 754-2008 §7.4): infinity or the largest finite value
 * depending on the direction of rounding. */
static uint64_t fpu_overflow(const struct fpu_format *f, bool sign, unsigned rm, unsigned *fflags)
{
    uint64_t inf = ((1ull << (f->width - f->prec)) - 1) << (f->prec - 1);
    bool to_inf =
        rm == FPU_RNE || rm == FPU_RMM || (rm == FPU_RDN && sign) || (rm == FPU_RUP && !sign);

    *fflags |= FPU_OF | FPU_NX;
    return ((uint64_t)sign << (f->width - 1)) | (to_inf ? inf : inf - 1);
}

/* Rounds sign * sig * 2^(exp - 63) (sig normalised, bit 63 set) to format f under rm and
 * returns its bits, raising NX, OF, and UF when the result is tiny after rounding and inexact
 * (§11.4, IEEE 754-2008 §7.5). */
static uint64_t fpu_round_pack(const struct fpu_format *f, bool sign, int exp, uint64_t sig,
                               unsigned rm, unsigned *fflags)
{
    int emin = 1 - f->bias;
    unsigned drop = 64 - f->prec;
    uint64_t sign_bit = (uint64_t)sign << (f->width - 1);
    uint64_t m;
    bool inexact;

    if (exp >= emin) {
        m = fpu_round_shift(sig, drop, sign, rm, &inexact);
        if (m >> f->prec) { /* rounded up to the next binade */
            m >>= 1;
            exp++;
        }
        if (exp > f->bias)
            return fpu_overflow(f, sign, rm, fflags);
        if (inexact)
            *fflags |= FPU_NX;
        return sign_bit | ((uint64_t)(exp + f->bias) << (f->prec - 1)) |
               (m & ((1ull << (f->prec - 1)) - 1));
    }
    /* Tiny before rounding. It is tiny after rounding unless rounding to full precision with an
     * unbounded exponent carries it up to 2^emin. */
    bool tiny = true;
    if (exp == emin - 1) {
        bool ignored;
        tiny = !(fpu_round_shift(sig, drop, sign, rm, &ignored) >> f->prec);
    }
    /* A carry out of the subnormal significand lands in the exponent field: 2^emin. */
    m = fpu_round_shift(sig, drop + (unsigned)(emin - exp), sign, rm, &inexact);
    if (inexact)
        *fflags |= tiny ? FPU_NX | FPU_UF : FPU_NX;
    return sign_bit | m;
}

/* Packs a zero or an infinity of the given sign in format f. */
static uint64_t fpu_pack_special(const struct fpu_format *f, bool sign, bool inf)
{
    uint64_t inf_bits = ((1ull << (f->width - f->prec)) - 1) << (f->prec - 1);

    return ((uint64_t)sign << (f->width - 1)) | (inf ? inf_bits : 0);
}

/* Finishes an RMM operation whose exact result was rounded toward zero into wide_bits (format
 * wide) with host flags host_fl: rounds it ties-away into format f. The wide step never
 * overflows or underflows, so only NV and DZ of host_fl are meaningful beyond its NX. */
static uint64_t fpu_rmm_finish(const struct fpu_format *f, const struct fpu_format *wide,
                               uint64_t wide_bits, unsigned host_fl, unsigned *fflags)
{
    struct fpu_unpacked u;
    enum fpu_kind kind = fpu_unpack(wide, wide_bits, &u);

    switch (kind) {
    case FPU_KIND_QNAN:
    case FPU_KIND_SNAN:
        *fflags |= host_fl & FPU_NV;
        return f == &fpu_format_s ? FPU_QNAN_S : FPU_QNAN_D;
    case FPU_KIND_ZERO:
    case FPU_KIND_INF:
        *fflags |= host_fl & (FPU_NV | FPU_DZ);
        return fpu_pack_special(f, u.sign, kind == FPU_KIND_INF);
    case FPU_KIND_FINITE: break;
    }
    u.sig |= (host_fl & FPU_NX) != 0;
    return fpu_round_pack(f, u.sign, u.exp, u.sig, FPU_RMM, fflags);
}

/* ---- Arithmetic ------------------------------------------------------------------------- */

/* The result of an operation with a NaN operand (§11.3): the canonical NaN; NV for a
 * signaling NaN, and for 0 x inf in a fused multiply-add whatever the addend (§11.6). */
static inline bool fpu_nan_operands_s(enum fpu_op op, uint32_t a, uint32_t b, uint32_t c,
                                      unsigned *fflags)
{
    bool unary = op == FPU_OP_SQRT, fused = op == FPU_OP_FMA;
    bool nan = fpu_is_nan_s(a) || (!unary && fpu_is_nan_s(b)) || (fused && fpu_is_nan_s(c));

    if (!nan)
        return false;
    if (fpu_is_snan_s(a) || (!unary && fpu_is_snan_s(b)) || (fused && fpu_is_snan_s(c)))
        *fflags |= FPU_NV;
    if (fused) {
        uint32_t ma = a & ~FPU_SIGN_S, mb = b & ~FPU_SIGN_S;
        if ((ma == FPU_INF_S && mb == 0) || (ma == 0 && mb == FPU_INF_S))
            *fflags |= FPU_NV;
    }
    return true;
}

static inline bool fpu_nan_operands_d(enum fpu_op op, uint64_t a, uint64_t b, uint64_t c,
                                      unsigned *fflags)
{
    bool unary = op == FPU_OP_SQRT, fused = op == FPU_OP_FMA;
    bool nan = fpu_is_nan_d(a) || (!unary && fpu_is_nan_d(b)) || (fused && fpu_is_nan_d(c));

    if (!nan)
        return false;
    if (fpu_is_snan_d(a) || (!unary && fpu_is_snan_d(b)) || (fused && fpu_is_snan_d(c)))
        *fflags |= FPU_NV;
    if (fused) {
        uint64_t ma = a & ~FPU_SIGN_D, mb = b & ~FPU_SIGN_D;
        if ((ma == FPU_INF_D && mb == 0) || (ma == 0 && mb == FPU_INF_D))
            *fflags |= FPU_NV;
    }
    return true;
}

static uint64_t fpu_rmm_s(enum fpu_op op, uint32_t a, uint32_t b, uint32_t c, unsigned *fflags)
{
    /* binary32 -> binary64 is exact; products of binary32 values are exact in binary64. */
    double da = fpu_float_from_bits(a), db = fpu_float_from_bits(b), dc = fpu_float_from_bits(c);
    double r;
    unsigned fl;

    fpu_host_enter(FPU_RTZ);
    FPU_PIN(da);
    FPU_PIN(db);
    FPU_PIN(dc);
    r = fpu_host_op_d(op, da, db, dc);
    FPU_PIN(r);
    fl = fpu_host_leave(FPU_RTZ);
    return fpu_rmm_finish(&fpu_format_s, &fpu_format_d, fpu_bits_from_double(r), fl, fflags);
}

static uint64_t fpu_rmm_d(enum fpu_op op, uint64_t a, uint64_t b, uint64_t c, unsigned *fflags)
{
    long double la = fpu_double_from_bits(a), lb = fpu_double_from_bits(b);
    long double lc = fpu_double_from_bits(c);
    long double r;
    int ex;
    unsigned fl;
    struct fpu_unpacked u;

    /* x87 arithmetic follows the x87 control word, which only <fenv.h> sets portably. */
    fesetround(FE_TOWARDZERO);
    feclearexcept(FE_ALL_EXCEPT);
    FPU_PIN_MEM(la);
    FPU_PIN_MEM(lb);
    FPU_PIN_MEM(lc);
    r = fpu_host_op_ld(op, la, lb, lc);
    FPU_PIN_MEM(r);
    ex = fetestexcept(FE_ALL_EXCEPT);
    fesetround(FE_TONEAREST);

    fl = (ex & FE_INVALID ? FPU_NV : 0) | (ex & FE_DIVBYZERO ? FPU_DZ : 0);
    if (isnan(r)) {
        *fflags |= fl & FPU_NV;
        return FPU_QNAN_D;
    }
    if (isinf(r) || r == 0) {
        *fflags |= fl & (FPU_NV | FPU_DZ);
        return fpu_pack_special(&fpu_format_d, signbit(r) != 0, isinf(r));
    }
    int e;
    long double m = frexpl(fabsl(r), &e); /* r = m * 2^e, 0.5 <= m < 1: both steps exact */
    u.sign = signbit(r) != 0;
    u.sig = (uint64_t)ldexpl(m, 64);
    u.exp = e - 1;
    u.sig |= (ex & FE_INEXACT) != 0;
    return fpu_round_pack(&fpu_format_d, u.sign, u.exp, u.sig, FPU_RMM, fflags);
}

/* One binary32 operation (§11.6). Operands are NaN-boxed register values. */
static inline uint64_t fpu_arith_s(enum fpu_op op, uint64_t ra, uint64_t rb, uint64_t rc,
                                   unsigned rm, unsigned *fflags)
{
    uint32_t a = fpu_unbox_s(ra), b = fpu_unbox_s(rb), c = fpu_unbox_s(rc);

    if (fpu_nan_operands_s(op, a, b, c, fflags))
        return fpu_box_s(FPU_QNAN_S);
    if (op == FPU_OP_SQRT && (a & FPU_SIGN_S) && a != FPU_SIGN_S) {
        *fflags |= FPU_NV; /* square root of a value below zero */
        return fpu_box_s(FPU_QNAN_S);
    }
    if (rm == FPU_RMM)
        return fpu_box_s((uint32_t)fpu_rmm_s(op, a, b, c, fflags));

    float fa = fpu_float_from_bits(a), fb = fpu_float_from_bits(b), fc = fpu_float_from_bits(c);
    float r;

    fpu_host_enter(rm);
    FPU_PIN(fa);
    FPU_PIN(fb);
    FPU_PIN(fc);
    r = fpu_host_op_s(op, fa, fb, fc);
    FPU_PIN(r);
    *fflags |= fpu_host_leave(rm);

    uint32_t bits = fpu_bits_from_float(r);
    return fpu_box_s(fpu_is_nan_s(bits) ? FPU_QNAN_S : bits);
}

/* One binary64 operation (§12.4). */
static inline uint64_t fpu_arith_d(enum fpu_op op, uint64_t a, uint64_t b, uint64_t c, unsigned rm,
                                   unsigned *fflags)
{
    if (fpu_nan_operands_d(op, a, b, c, fflags))
        return FPU_QNAN_D;
    if (op == FPU_OP_SQRT && (a & FPU_SIGN_D) && a != FPU_SIGN_D) {
        *fflags |= FPU_NV;
        return FPU_QNAN_D;
    }
    if (rm == FPU_RMM)
        return fpu_rmm_d(op, a, b, c, fflags);

    double da = fpu_double_from_bits(a), db = fpu_double_from_bits(b), dc = fpu_double_from_bits(c);
    double r;

    fpu_host_enter(rm);
    FPU_PIN(da);
    FPU_PIN(db);
    FPU_PIN(dc);
    r = fpu_host_op_d(op, da, db, dc);
    FPU_PIN(r);
    *fflags |= fpu_host_leave(rm);

    uint64_t bits = fpu_bits_from_double(r);
    return fpu_is_nan_d(bits) ? FPU_QNAN_D : bits;
}

uint64_t fpu_add_s(uint64_t a, uint64_t b, unsigned rm, unsigned *fflags)
{
    return fpu_arith_s(FPU_OP_ADD, a, b, 0, rm, fflags);
}

uint64_t fpu_sub_s(uint64_t a, uint64_t b, unsigned rm, unsigned *fflags)
{
    return fpu_arith_s(FPU_OP_SUB, a, b, 0, rm, fflags);
}

uint64_t fpu_mul_s(uint64_t a, uint64_t b, unsigned rm, unsigned *fflags)
{
    return fpu_arith_s(FPU_OP_MUL, a, b, 0, rm, fflags);
}

uint64_t fpu_div_s(uint64_t a, uint64_t b, unsigned rm, unsigned *fflags)
{
    return fpu_arith_s(FPU_OP_DIV, a, b, 0, rm, fflags);
}

uint64_t fpu_sqrt_s(uint64_t a, unsigned rm, unsigned *fflags)
{
    return fpu_arith_s(FPU_OP_SQRT, a, 0, 0, rm, fflags);
}

uint64_t fpu_add_d(uint64_t a, uint64_t b, unsigned rm, unsigned *fflags)
{
    return fpu_arith_d(FPU_OP_ADD, a, b, 0, rm, fflags);
}

uint64_t fpu_sub_d(uint64_t a, uint64_t b, unsigned rm, unsigned *fflags)
{
    return fpu_arith_d(FPU_OP_SUB, a, b, 0, rm, fflags);
}

uint64_t fpu_mul_d(uint64_t a, uint64_t b, unsigned rm, unsigned *fflags)
{
    return fpu_arith_d(FPU_OP_MUL, a, b, 0, rm, fflags);
}

uint64_t fpu_div_d(uint64_t a, uint64_t b, unsigned rm, unsigned *fflags)
{
    return fpu_arith_d(FPU_OP_DIV, a, b, 0, rm, fflags);
}

uint64_t fpu_sqrt_d(uint64_t a, unsigned rm, unsigned *fflags)
{
    return fpu_arith_d(FPU_OP_SQRT, a, 0, 0, rm, fflags);
}

/* §11.6: the negated forms negate operands (a sign flip, so a NaN stays a NaN of the same
 * kind), which gives the IEEE sign of an exact zero: fnmadd is (-a)*b + (-c). An improperly
 * boxed operand is negated after unboxing, as the canonical NaN it reads as. */
#define FPU_NEG_S(x) fpu_box_s(fpu_unbox_s(x) ^ FPU_SIGN_S)

uint64_t fpu_madd_s(uint64_t a, uint64_t b, uint64_t c, unsigned rm, unsigned *fflags)
{
    return fpu_arith_s(FPU_OP_FMA, a, b, c, rm, fflags);
}

uint64_t fpu_msub_s(uint64_t a, uint64_t b, uint64_t c, unsigned rm, unsigned *fflags)
{
    return fpu_arith_s(FPU_OP_FMA, a, b, FPU_NEG_S(c), rm, fflags);
}

uint64_t fpu_nmsub_s(uint64_t a, uint64_t b, uint64_t c, unsigned rm, unsigned *fflags)
{
    return fpu_arith_s(FPU_OP_FMA, FPU_NEG_S(a), b, c, rm, fflags);
}

uint64_t fpu_nmadd_s(uint64_t a, uint64_t b, uint64_t c, unsigned rm, unsigned *fflags)
{
    return fpu_arith_s(FPU_OP_FMA, FPU_NEG_S(a), b, FPU_NEG_S(c), rm, fflags);
}

uint64_t fpu_madd_d(uint64_t a, uint64_t b, uint64_t c, unsigned rm, unsigned *fflags)
{
    return fpu_arith_d(FPU_OP_FMA, a, b, c, rm, fflags);
}

uint64_t fpu_msub_d(uint64_t a, uint64_t b, uint64_t c, unsigned rm, unsigned *fflags)
{
    return fpu_arith_d(FPU_OP_FMA, a, b, c ^ FPU_SIGN_D, rm, fflags);
}

uint64_t fpu_nmsub_d(uint64_t a, uint64_t b, uint64_t c, unsigned rm, unsigned *fflags)
{
    return fpu_arith_d(FPU_OP_FMA, a ^ FPU_SIGN_D, b, c, rm, fflags);
}

uint64_t fpu_nmadd_d(uint64_t a, uint64_t b, uint64_t c, unsigned rm, unsigned *fflags)
{
    return fpu_arith_d(FPU_OP_FMA, a ^ FPU_SIGN_D, b, c ^ FPU_SIGN_D, rm, fflags);
}

/* ---- Min/max, sign injection, comparisons, classify ------------------------------------- */

/* Maps a non-NaN value of a format with sign bit `sign` to an unsigned key in the same order,
 * with -0 < +0. */
static inline uint64_t fpu_order_key(uint64_t x, uint64_t sign)
{
    return (x & sign) ? ~x & (sign | (sign - 1)) : x | sign;
}

/* §11.6 (F 2.2): minimumNumber/maximumNumber; a signaling NaN operand raises NV. */
static inline uint64_t fpu_minmax(uint64_t a, uint64_t b, bool a_nan, bool b_nan, bool snan,
                                  uint64_t sign, uint64_t qnan, bool max, unsigned *fflags)
{
    if (snan)
        *fflags |= FPU_NV;
    if (a_nan && b_nan)
        return qnan;
    if (a_nan)
        return b;
    if (b_nan)
        return a;
    bool a_less = fpu_order_key(a, sign) < fpu_order_key(b, sign);
    return a_less != max ? a : b;
}

uint64_t fpu_min_s(uint64_t ra, uint64_t rb, unsigned *fflags)
{
    uint32_t a = fpu_unbox_s(ra), b = fpu_unbox_s(rb);

    return fpu_box_s((uint32_t)fpu_minmax(a, b, fpu_is_nan_s(a), fpu_is_nan_s(b),
                                          fpu_is_snan_s(a) || fpu_is_snan_s(b), FPU_SIGN_S,
                                          FPU_QNAN_S, false, fflags));
}

uint64_t fpu_max_s(uint64_t ra, uint64_t rb, unsigned *fflags)
{
    uint32_t a = fpu_unbox_s(ra), b = fpu_unbox_s(rb);

    return fpu_box_s((uint32_t)fpu_minmax(a, b, fpu_is_nan_s(a), fpu_is_nan_s(b),
                                          fpu_is_snan_s(a) || fpu_is_snan_s(b), FPU_SIGN_S,
                                          FPU_QNAN_S, true, fflags));
}

uint64_t fpu_min_d(uint64_t a, uint64_t b, unsigned *fflags)
{
    return fpu_minmax(a, b, fpu_is_nan_d(a), fpu_is_nan_d(b), fpu_is_snan_d(a) || fpu_is_snan_d(b),
                      FPU_SIGN_D, FPU_QNAN_D, false, fflags);
}

uint64_t fpu_max_d(uint64_t a, uint64_t b, unsigned *fflags)
{
    return fpu_minmax(a, b, fpu_is_nan_d(a), fpu_is_nan_d(b), fpu_is_snan_d(a) || fpu_is_snan_d(b),
                      FPU_SIGN_D, FPU_QNAN_D, true, fflags);
}

/* §11.6: sign injection is bit manipulation, but of the unboxed single (§12.2). */
uint64_t fpu_sgnj_s(uint64_t a, uint64_t b)
{
    return fpu_box_s((fpu_unbox_s(a) & ~FPU_SIGN_S) | (fpu_unbox_s(b) & FPU_SIGN_S));
}

uint64_t fpu_sgnjn_s(uint64_t a, uint64_t b)
{
    return fpu_box_s((fpu_unbox_s(a) & ~FPU_SIGN_S) | (~fpu_unbox_s(b) & FPU_SIGN_S));
}

uint64_t fpu_sgnjx_s(uint64_t a, uint64_t b)
{
    return fpu_box_s(fpu_unbox_s(a) ^ (fpu_unbox_s(b) & FPU_SIGN_S));
}

uint64_t fpu_sgnj_d(uint64_t a, uint64_t b)
{
    return (a & ~FPU_SIGN_D) | (b & FPU_SIGN_D);
}

uint64_t fpu_sgnjn_d(uint64_t a, uint64_t b)
{
    return (a & ~FPU_SIGN_D) | (~b & FPU_SIGN_D);
}

uint64_t fpu_sgnjx_d(uint64_t a, uint64_t b)
{
    return a ^ (b & FPU_SIGN_D);
}

enum fpu_cmp { FPU_CMP_EQ, FPU_CMP_LT, FPU_CMP_LE };

/* §11.8: feq is a quiet comparison (NV only for a signaling NaN); flt and fle are signaling
 * (NV for any NaN). Any comparison with a NaN is false. */
static inline uint64_t fpu_compare(enum fpu_cmp cmp, uint64_t a, uint64_t b, bool a_nan, bool b_nan,
                                   bool snan, uint64_t sign, unsigned *fflags)
{
    if (a_nan || b_nan) {
        if (snan || cmp != FPU_CMP_EQ)
            *fflags |= FPU_NV;
        return 0;
    }
    if (!(a & ~sign)) /* -0 == +0 */
        a = 0;
    if (!(b & ~sign))
        b = 0;
    uint64_t ka = fpu_order_key(a, sign), kb = fpu_order_key(b, sign);
    switch (cmp) {
    case FPU_CMP_EQ: return ka == kb;
    case FPU_CMP_LT: return ka < kb;
    case FPU_CMP_LE: return ka <= kb;
    }
    return 0;
}

#define FPU_COMPARE_S(cmp, ra, rb, fflags)                                                    \
    fpu_compare(cmp, fpu_unbox_s(ra), fpu_unbox_s(rb), fpu_is_nan_s(fpu_unbox_s(ra)),         \
                fpu_is_nan_s(fpu_unbox_s(rb)),                                                \
                fpu_is_snan_s(fpu_unbox_s(ra)) || fpu_is_snan_s(fpu_unbox_s(rb)), FPU_SIGN_S, \
                fflags)
#define FPU_COMPARE_D(cmp, a, b, fflags)                                                           \
    fpu_compare(cmp, a, b, fpu_is_nan_d(a), fpu_is_nan_d(b), fpu_is_snan_d(a) || fpu_is_snan_d(b), \
                FPU_SIGN_D, fflags)

uint64_t fpu_eq_s(uint64_t a, uint64_t b, unsigned *fflags)
{
    return FPU_COMPARE_S(FPU_CMP_EQ, a, b, fflags);
}

uint64_t fpu_lt_s(uint64_t a, uint64_t b, unsigned *fflags)
{
    return FPU_COMPARE_S(FPU_CMP_LT, a, b, fflags);
}

uint64_t fpu_le_s(uint64_t a, uint64_t b, unsigned *fflags)
{
    return FPU_COMPARE_S(FPU_CMP_LE, a, b, fflags);
}

uint64_t fpu_eq_d(uint64_t a, uint64_t b, unsigned *fflags)
{
    return FPU_COMPARE_D(FPU_CMP_EQ, a, b, fflags);
}

uint64_t fpu_lt_d(uint64_t a, uint64_t b, unsigned *fflags)
{
    return FPU_COMPARE_D(FPU_CMP_LT, a, b, fflags);
}

uint64_t fpu_le_d(uint64_t a, uint64_t b, unsigned *fflags)
{
    return FPU_COMPARE_D(FPU_CMP_LE, a, b, fflags);
}

/* §11.9, Table 11.5: bit 0 -inf, 1 negative normal, 2 negative subnormal, 3 -0, 4 +0,
 * 5 positive subnormal, 6 positive normal, 7 +inf, 8 signaling NaN, 9 quiet NaN. */
static uint64_t fpu_classify(const struct fpu_format *f, uint64_t bits)
{
    struct fpu_unpacked u;
    enum fpu_kind kind = fpu_unpack(f, bits, &u);
    unsigned frac_bits = f->prec - 1;
    bool subnormal = !((bits >> frac_bits) & ((1u << (f->width - f->prec)) - 1));
    unsigned bit;

    switch (kind) {
    case FPU_KIND_SNAN: return 1u << 8;
    case FPU_KIND_QNAN: return 1u << 9;
    case FPU_KIND_INF: bit = 0; break;
    case FPU_KIND_ZERO: bit = 3; break;
    case FPU_KIND_FINITE: bit = subnormal ? 2 : 1; break;
    default: bit = 0; break; /* unreachable */
    }
    return 1u << (u.sign ? bit : 7 - bit);
}

uint64_t fpu_class_s(uint64_t a)
{
    return fpu_classify(&fpu_format_s, fpu_unbox_s(a));
}

uint64_t fpu_class_d(uint64_t a)
{
    return fpu_classify(&fpu_format_d, a);
}

/* ---- Conversions ------------------------------------------------------------------------ */

/* §11.7: float -> integer of `width` bits, rounded per rm. Out-of-range values, infinities and
 * NaNs saturate (NaN and +inf to the largest value, -inf to the smallest) and raise NV only; an
 * inexact in-range result raises NX. Range is judged after rounding. 32-bit results are
 * sign-extended to 64 bits, unsigned ones included. */
static uint64_t fpu_to_int(const struct fpu_format *f, uint64_t bits, unsigned rm, bool is_signed,
                           unsigned width, unsigned *fflags)
{
    uint64_t umax = width == 64 ? UINT64_MAX : 0xffffffffu;
    uint64_t pos_max = is_signed ? umax >> 1 : umax; /* largest positive magnitude */
    uint64_t neg_max = is_signed ? pos_max + 1 : 0;  /* largest negative magnitude */
    struct fpu_unpacked u;
    uint64_t result;
    bool inexact;

    switch (fpu_unpack(f, bits, &u)) {
    case FPU_KIND_ZERO: return 0;
    case FPU_KIND_QNAN:
    case FPU_KIND_SNAN: u.sign = false; goto invalid;
    case FPU_KIND_INF: goto invalid;
    case FPU_KIND_FINITE: break;
    }
    if (u.exp > 63)
        goto invalid;
    result = fpu_round_shift(u.sig, (unsigned)(63 - u.exp), u.sign, rm, &inexact);
    if (result > (u.sign ? neg_max : pos_max))
        goto invalid;
    if (inexact)
        *fflags |= FPU_NX;
    if (u.sign)
        result = 0 - result;
    goto done;
invalid:
    *fflags |= FPU_NV;
    result = u.sign ? 0 - neg_max : pos_max;
done:
    return width == 32 ? (uint64_t)(int64_t)(int32_t)(uint32_t)result : result;
}

/* Integer -> float, rounded per rm (§11.7). */
static uint64_t fpu_from_int(const struct fpu_format *f, bool sign, uint64_t mag, unsigned rm,
                             unsigned *fflags)
{
    if (!mag)
        return 0;
    int lz = __builtin_clzll(mag);
    return fpu_round_pack(f, sign, 63 - lz, mag << lz, rm, fflags);
}

static inline uint64_t fpu_from_i64(const struct fpu_format *f, int64_t x, unsigned rm,
                                    unsigned *fflags)
{
    return fpu_from_int(f, x < 0, x < 0 ? 0 - (uint64_t)x : (uint64_t)x, rm, fflags);
}

uint64_t fpu_cvt_w_s(uint64_t a, unsigned rm, unsigned *fflags)
{
    return fpu_to_int(&fpu_format_s, fpu_unbox_s(a), rm, true, 32, fflags);
}

uint64_t fpu_cvt_wu_s(uint64_t a, unsigned rm, unsigned *fflags)
{
    return fpu_to_int(&fpu_format_s, fpu_unbox_s(a), rm, false, 32, fflags);
}

uint64_t fpu_cvt_l_s(uint64_t a, unsigned rm, unsigned *fflags)
{
    return fpu_to_int(&fpu_format_s, fpu_unbox_s(a), rm, true, 64, fflags);
}

uint64_t fpu_cvt_lu_s(uint64_t a, unsigned rm, unsigned *fflags)
{
    return fpu_to_int(&fpu_format_s, fpu_unbox_s(a), rm, false, 64, fflags);
}

uint64_t fpu_cvt_w_d(uint64_t a, unsigned rm, unsigned *fflags)
{
    return fpu_to_int(&fpu_format_d, a, rm, true, 32, fflags);
}

uint64_t fpu_cvt_wu_d(uint64_t a, unsigned rm, unsigned *fflags)
{
    return fpu_to_int(&fpu_format_d, a, rm, false, 32, fflags);
}

uint64_t fpu_cvt_l_d(uint64_t a, unsigned rm, unsigned *fflags)
{
    return fpu_to_int(&fpu_format_d, a, rm, true, 64, fflags);
}

uint64_t fpu_cvt_lu_d(uint64_t a, unsigned rm, unsigned *fflags)
{
    return fpu_to_int(&fpu_format_d, a, rm, false, 64, fflags);
}

uint64_t fpu_cvt_s_w(uint64_t x, unsigned rm, unsigned *fflags)
{
    return fpu_box_s((uint32_t)fpu_from_i64(&fpu_format_s, (int32_t)(uint32_t)x, rm, fflags));
}

uint64_t fpu_cvt_s_wu(uint64_t x, unsigned rm, unsigned *fflags)
{
    return fpu_box_s((uint32_t)fpu_from_int(&fpu_format_s, false, (uint32_t)x, rm, fflags));
}

uint64_t fpu_cvt_s_l(uint64_t x, unsigned rm, unsigned *fflags)
{
    return fpu_box_s((uint32_t)fpu_from_i64(&fpu_format_s, (int64_t)x, rm, fflags));
}

uint64_t fpu_cvt_s_lu(uint64_t x, unsigned rm, unsigned *fflags)
{
    return fpu_box_s((uint32_t)fpu_from_int(&fpu_format_s, false, x, rm, fflags));
}

uint64_t fpu_cvt_d_w(uint64_t x, unsigned rm, unsigned *fflags)
{
    return fpu_from_i64(&fpu_format_d, (int32_t)(uint32_t)x, rm, fflags);
}

uint64_t fpu_cvt_d_wu(uint64_t x, unsigned rm, unsigned *fflags)
{
    return fpu_from_int(&fpu_format_d, false, (uint32_t)x, rm, fflags);
}

uint64_t fpu_cvt_d_l(uint64_t x, unsigned rm, unsigned *fflags)
{
    return fpu_from_i64(&fpu_format_d, (int64_t)x, rm, fflags);
}

uint64_t fpu_cvt_d_lu(uint64_t x, unsigned rm, unsigned *fflags)
{
    return fpu_from_int(&fpu_format_d, false, x, rm, fflags);
}

/* §12.5: fcvt.s.d rounds per rm; a NaN becomes the canonical NaN, NV if it was signaling. */
uint64_t fpu_cvt_s_d(uint64_t a, unsigned rm, unsigned *fflags)
{
    if (fpu_is_nan_d(a)) {
        if (fpu_is_snan_d(a))
            *fflags |= FPU_NV;
        return fpu_box_s(FPU_QNAN_S);
    }
    if (rm == FPU_RMM) {
        struct fpu_unpacked u;
        enum fpu_kind kind = fpu_unpack(&fpu_format_d, a, &u);
        if (kind != FPU_KIND_FINITE) /* zero or infinity */
            return fpu_box_s(
                (uint32_t)fpu_pack_special(&fpu_format_s, u.sign, kind == FPU_KIND_INF));
        return fpu_box_s((uint32_t)fpu_round_pack(&fpu_format_s, u.sign, u.exp, u.sig, rm, fflags));
    }

    double d = fpu_double_from_bits(a);
    float r;

    fpu_host_enter(rm);
    FPU_PIN(d);
    r = (float)d;
    FPU_PIN(r);
    *fflags |= fpu_host_leave(rm);
    return fpu_box_s(fpu_bits_from_float(r));
}

/* §12.5: fcvt.d.s is exact; a NaN becomes the canonical NaN, NV if it was signaling. */
uint64_t fpu_cvt_d_s(uint64_t ra, unsigned rm, unsigned *fflags)
{
    uint32_t a = fpu_unbox_s(ra);

    if (fpu_is_nan_s(a)) {
        if (fpu_is_snan_s(a))
            *fflags |= FPU_NV;
        return FPU_QNAN_D;
    }
    return fpu_bits_from_double((double)fpu_float_from_bits(a));
}
