/* Engine "jit" against engine "interp", differentially: random RV64 programs (integer, M,
 * every Zba/Zbb/Zbs instruction, Zihintpause, compressed, loads and stores of every size at
 * aligned, misaligned and faulting addresses, forward branches and jumps, counter reads, FENCE.I,
 * ecall, stores that raise a machine software interrupt, taken at the next block boundary; F and
 * D loads, stores, arithmetic, fused ops, compares, moves, sign injection and conversions on
 * special values (signaling and quiet NaNs, singles not NaN-boxed, zeros, infinities,
 * subnormals, values that overflow and underflow) with every rounding mode, static and dynamic,
 * frm set to each mode and mstatus.FS in each state) run on both, in M-mode with no translation
 * and in S-mode under Sv39 with read-only, unmapped and not-dirty data pages, and everything
 * architectural must match: the saved hart state (pc, x, f, fflags, frm, privilege, every CSR,
 * trap cause/epc/tval, instret) and all of RAM.
 *
 * Each program ends in a trap (its closing ecall, or any fault on the way) whose M-mode
 * handler writes the test's stop device. Three JIT harts run each program: one translating
 * every block before its first run, one after a block's first interpreted run, so both the
 * translated code and the hand-over from interpreted to translated runs are compared, and
 * one whose code cache is the fallback (one mapping, mprotect() around each copy), and one that
 * does not use the host's FMA3 (fused ops through their handler). The
 * program body runs three times (a loop around it) so translated blocks run again on changed
 * data. The seed is printed on a mismatch; TEST_JIT_SEED=N replays one, TEST_JIT_PROGRAMS=N
 * runs N programs instead of PROGRAMS. */
#include "test.h"

#include <stdbool.h>
#include <stdlib.h>

#include "base/codewatch.h"
#include "base/state.h"
#include "cpu/engine.h"
#include "hw/bus.h"

#define RAM_BASE    0x80000000ull
#define RAM_SIZE    0x20000u
#define REGVALS     0x400u /* 31 initial register values */
#define MSTATUS_VAL 0x500u /* the prologue's mstatus and satp values */
#define SATP_VAL    0x508u
#define FREGVALS    0x700u /* 32 initial f register values */
#define STOP        0x600u /* the trap handler: write the stop device, then spin */
#define STOP_DEV    0x40000000u
#define IRQ_DEV     0x40100000u /* a store raises the machine software interrupt */
#define BODY        0x800u      /* the random program */
#define BODY_END    0x2000u     /* its limit */
#define DATA        0x8000u     /* 32 KiB of data pages */
#define DATA_END    0x10000u
#define PT_ROOT     0x10000u /* Sv39 tables: root, then one level-1 and one level-0 table */
#define PROGRAMS    2000
#define MAX_INSNS   160

/* Reserved registers: data pointers, the loop count, the interrupt device's address, the
 * count of an inner loop. */
enum { R_PTR0 = 16, R_PTRN = 20, R_LOOP = 21, R_IRQ = 22, R_INNER = 23 };

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* xorshift64*: any fixed generator will do; the seed is what replays a failure. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static unsigned rndn(unsigned n)
{
    return (unsigned)(rnd() % n);
}

/* --- encodings (unprivileged ISA 20191213, chapter 24 "Instruction Set Listings") --- */

static uint32_t enc_r(unsigned f7, unsigned rs2, unsigned rs1, unsigned f3, unsigned rd,
                      unsigned op)
{
    return f7 << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | rd << 7 | op;
}

static uint32_t enc_i(int32_t imm, unsigned rs1, unsigned f3, unsigned rd, unsigned op)
{
    return ((uint32_t)imm & 0xfff) << 20 | rs1 << 15 | f3 << 12 | rd << 7 | op;
}

static uint32_t enc_s(int32_t imm, unsigned rs2, unsigned rs1, unsigned f3)
{
    uint32_t u = (uint32_t)imm;

    return (u >> 5 & 0x7f) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | (u & 0x1f) << 7 | 0x23;
}

static uint32_t enc_b(int32_t off, unsigned rs2, unsigned rs1, unsigned f3)
{
    uint32_t u = (uint32_t)off;

    return (u >> 12 & 1) << 31 | (u >> 5 & 0x3f) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 |
           (u >> 1 & 0xf) << 8 | (u >> 11 & 1) << 7 | 0x63;
}

static uint32_t enc_j(int32_t off, unsigned rd)
{
    uint32_t u = (uint32_t)off;

    return (u >> 20 & 1) << 31 | (u >> 1 & 0x3ff) << 21 | (u >> 11 & 1) << 20 |
           (u >> 12 & 0xff) << 12 | rd << 7 | 0x6f;
}

static uint32_t enc_u(uint32_t imm20, unsigned rd, unsigned op)
{
    return imm20 << 12 | rd << 7 | op;
}

#define CSRRS            2
#define MSTATUS_FS_DIRTY 0x6000u
#define CSRRWI           5
#define ECALL            0x00000073u
#define MRET             0x30200073u

/* --- the program --- */

struct insn {
    uint32_t bits;
    unsigned len;
    int target; /* branch or jal: index of the instruction it jumps to, else -1 */
};

struct program {
    struct insn in[MAX_INSNS + 4];
    unsigned n;
    uint64_t regs[31];
    uint64_t ptr[R_PTRN - R_PTR0 + 1];
    uint8_t data_perm[(DATA_END - DATA) / 4096]; /* S-mode: 0 RW, 1 R, 2 none, 3 RW not dirty */
    bool smode;
    unsigned irq_after; /* see irq_write() */
    uint64_t fregs[32];
    unsigned fs, frm, fflags; /* mstatus.FS, frm and fflags as the body starts */
};

static unsigned rnd_rd(void)
{
    static const unsigned pool[] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
                                    15, 24, 25, 26, 27, 28, 29, 30, 31, 5, 10, 12, 14, 24};

    return pool[rndn(sizeof(pool) / sizeof(pool[0]))];
}

static unsigned rnd_rs(void)
{
    return rndn(32);
}

static uint64_t rnd_value(void)
{
    static const uint64_t special[] = {0,
                                       1,
                                       ~0ull,
                                       0x8000000000000000ull,
                                       0x7fffffffffffffffull,
                                       0x80000000ull,
                                       0x7fffffffull,
                                       0xffffffff80000000ull,
                                       0xffffffffull,
                                       63,
                                       64,
                                       31,
                                       32};

    switch (rndn(4)) {
    case 0: return special[rndn(sizeof(special) / sizeof(special[0]))];
    case 1: return rnd() & 0xfff;
    case 2: return (uint64_t)(int64_t)(int32_t)rnd();
    default: return rnd();
    }
}

static void add(struct program *p, uint32_t bits, unsigned len, int target)
{
    p->in[p->n++] = (struct insn){bits, len, target};
}

/* An f register value: doubles and NaN-boxed singles at the edges of IEEE 754 behaviour, an
 * unboxed single now and then (it reads as the canonical NaN, §12.2), or random bits. */
static uint64_t rnd_fvalue(void)
{
    static const uint64_t d[] = {
        0,
        0x8000000000000000ull,
        0x7ff0000000000000ull,
        0xfff0000000000000ull,
        0x7ff8000000000000ull, /* canonical qNaN */
        0x7ff0000000000001ull,
        0xfff4000000000000ull, /* signaling */
        0x7ffc00000000abcdull, /* quiet, with a payload */
        1,
        0x800fffffffffffffull, /* subnormals */
        0x0010000000000000ull,
        0x7fefffffffffffffull, /* min normal, max */
        0x3ff0000000000000ull,
        0xbff0000000000000ull,
        0x4008000000000000ull, /* 1, -1, 3 */
        0x3fb999999999999aull,
        0x5fe0000000000000ull,
        0x2010000000000000ull, /* 0.1, huge, tiny */
        0x43e0000000000000ull,
        0xc3e0000000000000ull, /* +-2^63 */
    };
    static const uint32_t f[] = {
        0,           0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0x7f800001u,
        0xffa00000u, 0x7fc0abcdu, 1,           0x807fffffu, 0x00800000u, 0x7f7fffffu,
        0x3f800000u, 0xbf800000u, 0x40400000u, 0x3dcccccdu, 0x5f000000u, 0x20800000u,
    };

    switch (rndn(8)) {
    case 0:
    case 1:
    case 2: return d[rndn(sizeof(d) / sizeof(d[0]))];
    case 3:
    case 4: return 0xffffffff00000000ull | f[rndn(sizeof(f) / sizeof(f[0]))];
    case 5: return f[rndn(sizeof(f) / sizeof(f[0]))]; /* not boxed */
    case 6: return 0xffffffff00000000ull | (uint32_t)rnd();
    default: return rnd();
    }
}

/* A rounding mode: mostly RNE and DYN (the ones the JIT inlines), each other mode, and now and
 * then a reserved one (illegal). */
static unsigned rnd_rm(void)
{
    unsigned k = rndn(16);

    return k < 6 ? 7 : k < 11 ? 0 : k < 15 ? 1 + rndn(4) : 5 + rndn(2);
}

/* One F or D instruction (unprivileged chapters 11, 12, 24). */
static void add_fp(struct program *p)
{
    unsigned rd = rndn(32), rs1 = rndn(32), rs2 = rndn(32), rs3 = rndn(32), fmt = rndn(2);
    unsigned xrd = rnd_rd(), k = rndn(22), rm = rnd_rm();
    int32_t imm = (int32_t)rndn(4096) - 2048;
    unsigned base = rndn(8) ? R_PTR0 + rndn(R_PTRN - R_PTR0 + 1) : rnd_rs();

    if (k < 2) { /* flw, fld */
        add(p, enc_i(imm & ~(rndn(8) ? 7 : 0), base, 2 + fmt, rd, 0x07), 4, -1);
    } else if (k < 4) { /* fsw, fsd */
        add(p, (enc_s(imm & ~(rndn(8) ? 7 : 0), rs2, base, 2 + fmt) & ~0x7fu) | 0x27, 4, -1);
    } else if (k < 9) { /* fadd, fsub, fmul, fdiv */
        add(p, enc_r(rndn(4) << 2 | fmt, rs2, rs1, rm, rd, 0x53), 4, -1);
    } else if (k < 10) { /* fsqrt */
        add(p, enc_r(0x2c | fmt, 0, rs1, rm, rd, 0x53), 4, -1);
    } else if (k < 12) { /* fmadd, fmsub, fnmsub, fnmadd */
        add(p,
            rs3 << 27 | fmt << 25 | rs2 << 20 | rs1 << 15 | rm << 12 | rd << 7 |
                (0x43 + 4 * rndn(4)),
            4, -1);
    } else if (k < 13) { /* fsgnj, fsgnjn, fsgnjx */
        add(p, enc_r(0x10 | fmt, rs2, rs1, rndn(3), rd, 0x53), 4, -1);
    } else if (k < 14) { /* fmin, fmax */
        add(p, enc_r(0x14 | fmt, rs2, rs1, rndn(2), rd, 0x53), 4, -1);
    } else if (k < 16) { /* fle, flt, feq */
        add(p, enc_r(0x50 | fmt, rs2, rs1, rndn(3), xrd, 0x53), 4, -1);
    } else if (k < 17) { /* fcvt.s.{w,wu,l,lu}, fcvt.d.* from x[rs1] */
        add(p, enc_r(0x68 | fmt, rndn(4), rnd_rs(), rm, rd, 0x53), 4, -1);
    } else if (k < 18) { /* fcvt.{w,wu,l,lu}.s / .d to x[rd]; fcvt.s.d, fcvt.d.s */
        if (rndn(2))
            add(p, enc_r(0x60 | fmt, rndn(4), rs1, rm, xrd, 0x53), 4, -1);
        else
            add(p, enc_r(0x20 | fmt, !fmt, rs1, rm, rd, 0x53), 4, -1);
    } else if (k < 19) { /* fmv.x.w / fmv.x.d, fclass */
        add(p, enc_r(0x70 | fmt, 0, rs1, rndn(2), xrd, 0x53), 4, -1);
    } else if (k < 20) { /* fmv.w.x / fmv.d.x */
        add(p, enc_r(0x78 | fmt, 0, rnd_rs(), 0, rd, 0x53), 4, -1);
    } else if (k < 21) { /* csrr of fflags, frm or fcsr: the flags accrued so far */
        add(p, enc_i((int32_t)(1 + rndn(3)), 0, CSRRS, xrd, 0x73), 4, -1);
    } else { /* csrrwi, csrrsi, csrrci of fflags, frm or fcsr: a new rounding mode mid-way */
        add(p, enc_i((int32_t)(1 + rndn(3)), rndn(32), 5 + rndn(3), xrd, 0x73), 4, -1);
    }
}

static void add_random(struct program *p, unsigned count);

/* A loop that is one block of its own: the translation's branch back to its own start keeps
 * the registers in host registers across iterations (jit.c). A jump ends the block before it,
 * so that the loop's first instruction starts one; the body has no jumps of its own. */
static void add_loop(struct program *p, unsigned count)
{
    static bool inside;
    unsigned start, body = 1 + rndn(5);

    if (inside)
        return;
    inside = true;
    add(p, enc_i((int32_t)(1 + rndn(4)), 0, 0, R_INNER, 0x13), 4, -1); /* li R_INNER, n */
    add(p, enc_j(0, 0), 4, (int)p->n + 1);
    start = p->n;
    while (p->n < start + body) {
        unsigned at = p->n;

        add_random(p, count);
        if (p->in[at].target >= 0)
            p->n = at;
    }
    /* A forward branch may land inside the loop, past the li: the mask bounds the count. */
    add(p, enc_i(-1, R_INNER, 0, R_INNER, 0x13), 4, -1);
    add(p, enc_i(7, R_INNER, 7, R_INNER, 0x13), 4, -1); /* andi R_INNER, R_INNER, 7 */
    add(p, enc_b(0, 0, R_INNER, 1), 4, (int)start);     /* bne R_INNER, x0, start */
    inside = false;
}

/* One random instruction at position p->n of a body of `count`. */
static void add_random(struct program *p, unsigned count)
{
    static const unsigned op_f3f7[][2] = {
        {0, 0},    {0, 0x20}, {1, 0},    {2, 0},    {3, 0},    {4, 0},
        {5, 0},    {5, 0x20}, {6, 0},    {7, 0},    {0, 1},    {1, 1},
        {2, 1},    {3, 1},    {4, 1},    {5, 1},    {6, 1},    {7, 1}, /* M */
        {2, 0x10}, {4, 0x10}, {6, 0x10}, {7, 0x20}, {6, 0x20}, {4, 0x20},
        {4, 0x05}, {5, 0x05}, {6, 0x05}, {7, 0x05}, {1, 0x30}, {5, 0x30},
        {1, 0x24}, {5, 0x24}, {1, 0x34}, {1, 0x14}, /* Zba, Zbb, Zbs */
    };
    static const unsigned opw_f3f7[][2] = {
        {0, 0},    {0, 0x20}, {1, 0}, {5, 0},    {5, 0x20}, {0, 1},    {4, 1},    {5, 1},
        {6, 1},    {7, 1},    {0, 4}, {2, 0x10}, {4, 0x10}, {6, 0x10}, {1, 0x30}, /* Zb */
        {5, 0x30},
    };
    /* Zbb and Zbs in OP-IMM and OP-IMM-32 (bit manipulation 1.0.0 chapter 2): imm[11:0] of
     * the unary ones, imm[11:6] (imm[11:5] for the W form) of the shift-amount ones. */
    static const unsigned unary_imm[][2] = {{1, 0x600}, {1, 0x601}, {1, 0x602}, {1, 0x604},
                                            {1, 0x605}, {5, 0x287}, {5, 0x6b8}};
    static const unsigned shamt_imm[][2] = {{1, 0x12}, {1, 0x1a}, {1, 0x0a}, {5, 0x18}, {5, 0x12}};
    unsigned rd = rnd_rd(), rs1 = rnd_rs(), rs2 = rnd_rs(), k = rndn(123);
    unsigned remaining = count - p->n;
    int32_t imm = (int32_t)rndn(4096) - 2048;

    if (k < 22) {
        const unsigned *e = op_f3f7[rndn(sizeof(op_f3f7) / sizeof(op_f3f7[0]))];
        add(p, enc_r(e[1], rs2, rs1, e[0], rd, 0x33), 4, -1);
    } else if (k < 30) {
        const unsigned *e = opw_f3f7[rndn(sizeof(opw_f3f7) / sizeof(opw_f3f7[0]))];
        add(p, enc_r(e[1], rs2, rs1, e[0], rd, 0x3b), 4, -1);
    } else if (k < 40) {
        unsigned f3 = rndn(8);

        if (f3 == 1)
            imm = (int32_t)rndn(64);
        else if (f3 == 5)
            imm = (int32_t)(rndn(64) | (rndn(2) << 10));
        add(p, enc_i(imm, rs1, f3, rd, 0x13), 4, -1);
    } else if (k < 43) {
        static const unsigned f3s[] = {0, 1, 5};
        unsigned f3 = f3s[rndn(3)];

        if (f3 != 0)
            imm = (int32_t)(rndn(32) | (f3 == 5 ? rndn(2) << 10 : 0));
        add(p, enc_i(imm, rs1, f3, rd, 0x1b), 4, -1);
    } else if (k < 47) {
        if (rndn(2)) {
            const unsigned *e = unary_imm[rndn(sizeof(unary_imm) / sizeof(unary_imm[0]))];

            add(p, enc_i((int32_t)e[1], rs1, e[0], rd, 0x13), 4, -1);
        } else {
            const unsigned *e = shamt_imm[rndn(sizeof(shamt_imm) / sizeof(shamt_imm[0]))];

            add(p, enc_i((int32_t)(e[1] << 6 | rndn(64)), rs1, e[0], rd, 0x13), 4, -1);
        }
    } else if (k < 48) {
        /* slli.uw, roriw, clzw, ctzw, cpopw */
        unsigned c = rndn(3);

        if (c == 0)
            add(p, enc_i((int32_t)(0x02 << 6 | rndn(64)), rs1, 1, rd, 0x1b), 4, -1);
        else if (c == 1)
            add(p, enc_r(0x30, rndn(32), rs1, 5, rd, 0x1b), 4, -1);
        else
            add(p, enc_r(0x30, rndn(3), rs1, 1, rd, 0x1b), 4, -1);
    } else if (k < 51) {
        add(p, enc_u((uint32_t)rnd() & 0xfffff, rd, rndn(2) ? 0x37 : 0x17), 4, -1);
    } else if (k < 65) {
        /* Loads: mostly through a data pointer, sometimes through any register (faults). */
        unsigned base = rndn(8) ? R_PTR0 + rndn(R_PTRN - R_PTR0 + 1) : rs1;
        static const unsigned f3s[] = {0, 1, 2, 3, 4, 5, 6};

        add(p, enc_i(imm, base, f3s[rndn(7)], rd, 0x03), 4, -1);
    } else if (k < 77) {
        unsigned base = rndn(8) ? R_PTR0 + rndn(R_PTRN - R_PTR0 + 1) : rs1;

        add(p, enc_s(imm, rs2, base, rndn(4)), 4, -1);
    } else if (k < 85 && remaining > 1) {
        static const unsigned f3s[] = {0, 1, 4, 5, 6, 7};
        unsigned span = remaining < 8 ? remaining : 8;

        add(p, 0, 4, (int)(p->n + 1 + rndn(span)));
        p->in[p->n - 1].bits = enc_b(0, rs2, rs1, f3s[rndn(6)]);
    } else if (k < 87 && remaining > 1) {
        unsigned span = remaining < 8 ? remaining : 8;

        add(p, enc_j(0, rd), 4, (int)(p->n + 1 + rndn(span)));
    } else if (k < 95) {
        /* Compressed (chapter 16): c.addi, c.slli, c.mv, c.add, c.li on any rd but the
         * reserved ones; rs2 != 0 so none becomes c.jr/c.jalr/c.ebreak. */
        unsigned crd = rd ? rd : 1, crs2 = rs2 ? rs2 : 1, c = rndn(5);
        uint32_t i6 = rndn(64);

        if (c == 0)
            add(p, 0x0001 | (i6 >> 5) << 12 | crd << 7 | (i6 & 31) << 2, 2, -1);
        else if (c == 1)
            add(p, 0x0002 | (i6 >> 5) << 12 | crd << 7 | (i6 & 31) << 2, 2, -1);
        else if (c == 2)
            add(p, 0x8002 | crd << 7 | crs2 << 2, 2, -1);
        else if (c == 3)
            add(p, 0x9002 | crd << 7 | crs2 << 2, 2, -1);
        else
            add(p, 0x4001 | (i6 >> 5) << 12 | crd << 7 | (i6 & 31) << 2, 2, -1);
    } else if (k < 97) {
        /* Counters: cycle and instret count what retired before, within a block too. */
        add(p, enc_i(rndn(2) ? 0xc02 : 0xc00, 0, CSRRS, rd, 0x73), 4, -1);
    } else if (k < 98) {
        /* Raises MSI: the block goes on to its end, the interrupt is taken after it. */
        add(p, enc_s(0, 0, R_IRQ, 2), 4, -1);
    } else if (k < 99) {
        /* fence.i, pause (Zihintpause: a FENCE with pred = W, succ = 0), zext.h, and a FENCE
         * with random fm, pred and succ (full barriers, the orders TSO keeps, FENCE.TSO,
         * reserved fm values): none may change any state. */
        static const uint32_t fixed[] = {0x0000100f, 0x0100000f, 0x8330000f};
        unsigned c = rndn(5);

        if (c < 3)
            add(p, fixed[c], 4, -1);
        else if (c == 3)
            add(p, enc_r(0x04, 0, rs1, 4, rd, 0x3b), 4, -1);
        else
            add(p, (uint32_t)rndn(1u << 12) << 20 | 0x0f, 4, -1);
    } else if (k < 100) {
        add(p, ECALL, 4, -1);
    } else if (k >= 103) {
        add_fp(p);
    } else if (remaining > 12) {
        add_loop(p, count);
    }
}

static void program_make(struct program *p, bool smode)
{
    unsigned count;

    memset(p, 0, sizeof(*p));
    p->smode = smode;
    for (unsigned i = 0; i < 31; i++)
        p->regs[i] = rnd_value();
    for (unsigned i = 0; i <= R_PTRN - R_PTR0; i++) {
        p->ptr[i] = RAM_BASE + DATA + 2048 + rndn(DATA_END - DATA - 4096);
        p->regs[R_PTR0 + i - 1] = p->ptr[i];
    }
    p->regs[R_LOOP - 1] = 3;
    p->regs[R_IRQ - 1] = IRQ_DEV;
    p->irq_after = 1 + rndn(3);
    for (unsigned i = 0; i < 32; i++)
        p->fregs[i] = rnd_fvalue();
    /* FS: mostly Dirty (inline code), also Off (FP traps), Initial and Clean (the handler
     * dirties it); frm mostly RNE, every mode and now and then a reserved one. */
    p->fs = rndn(16) ? (rndn(4) ? 3 : 1 + rndn(2)) : 0;
    p->frm = rndn(2) ? 0 : rndn(8);
    p->fflags = rndn(4) ? 0 : rndn(32);
    for (unsigned i = 0; i < sizeof(p->data_perm); i++)
        p->data_perm[i] = smode ? (uint8_t)(rndn(3) ? 0 : 1 + rndn(3)) : 0;
    count = 1 + rndn(MAX_INSNS);
    while (p->n < count)
        add_random(p, count);
    /* The loop around the body: three runs, then the closing ecall. */
    add(p, enc_i(-1, R_LOOP, 0, R_LOOP, 0x13), 4, -1);
    add(p, enc_b(0, 0, R_LOOP, 1), 4, 0); /* bne loop, x0, body */
    add(p, ECALL, 4, -1);
}

static void put32(uint8_t *ram, unsigned off, uint32_t v)
{
    memcpy(ram + off, &v, 4);
}

/* Lays the program out in ram: prologue, register values, handler, body, page tables. */
static void program_write(const struct program *p, uint8_t *ram)
{
    unsigned off = 0, at[MAX_INSNS + 4], pos;

    memset(ram, 0, RAM_SIZE);
    for (unsigned i = 0; i < DATA_END - DATA; i++)
        ram[DATA + i] = (uint8_t)(i * 131 + 7);
    /* Prologue (M-mode): mtvec = STOP; counters readable from S; then S-mode set-up or a jump
     * to the body; x1..x31 loaded last from REGVALS (x31 is the base, so it goes last). */
    put32(ram, off, enc_u(0, 31, 0x17)), off += 4; /* auipc x31, 0 */
    put32(ram, off, enc_i(STOP, 31, 0, 30, 0x13)), off += 4;
    put32(ram, off, enc_i(0x305, 30, 1, 0, 0x73)), off += 4;     /* csrw mtvec, x30 */
    put32(ram, off, enc_i(0x306, 7, CSRRWI, 0, 0x73)), off += 4; /* mcounteren = 7 */
    put32(ram, off, enc_i(0x304, 8, 6, 0, 0x73)), off += 4;      /* csrsi mie, MSIE */
    if (!p->smode) /* in S, M-level interrupts are enabled whatever mstatus.MIE says */
        put32(ram, off, enc_i(0x300, 8, 6, 0, 0x73)), off += 4; /* csrsi mstatus, MIE */
    /* FP state: FS Dirty to load f0-f31, fcsr, then FS as the program wants it. */
    put32(ram, off, enc_u(MSTATUS_FS_DIRTY >> 12, 30, 0x37)), off += 4; /* lui x30 */
    put32(ram, off, enc_i(0x300, 30, 2, 0, 0x73)), off += 4;            /* csrs mstatus */
    for (unsigned r = 0; r < 32; r++)
        put32(ram, off, enc_i((int32_t)(FREGVALS + 8 * r), 31, 3, r, 0x07)), off += 4; /* fld */
    put32(ram, off, enc_i(0x002, p->frm, CSRRWI, 0, 0x73)), off += 4;                  /* frm */
    put32(ram, off, enc_i(0x001, p->fflags, CSRRWI, 0, 0x73)), off += 4;               /* fflags */
    if (p->fs != 3) {
        put32(ram, off, enc_i(0x300, 30, 3, 0, 0x73)), off += 4; /* csrc mstatus, FS */
        put32(ram, off, enc_u(p->fs << 1, 30, 0x37)), off += 4;  /* lui x30, FS << 13 */
        put32(ram, off, enc_i(0x300, 30, 2, 0, 0x73)), off += 4; /* csrs mstatus */
    }
    memcpy(ram + FREGVALS, p->fregs, sizeof(p->fregs));
    if (p->smode) {
        /* PMP entry 0 grants S everything (no matching entry denies S, privileged §3.7.1). */
        put32(ram, off, enc_i(-1, 0, 0, 30, 0x13)), off += 4;           /* x30 = -1 */
        put32(ram, off, enc_i(0x3b0, 30, 1, 0, 0x73)), off += 4;        /* pmpaddr0 */
        put32(ram, off, enc_i(0x3a0, 0x1f, CSRRWI, 0, 0x73)), off += 4; /* pmpcfg0 NAPOT RWX */
        put32(ram, off, enc_i(BODY / 2, 31, 0, 30, 0x13)), off += 4;    /* a 12-bit imm is */
        put32(ram, off, enc_i(BODY / 2, 30, 0, 30, 0x13)), off += 4;    /* < 0x800: twice */
        put32(ram, off, enc_i(0x341, 30, 1, 0, 0x73)), off += 4;        /* csrw mepc, x30 */
        put32(ram, off, enc_i(MSTATUS_VAL, 31, 3, 30, 0x03)), off += 4; /* ld x30 */
        put32(ram, off, enc_i(0x300, 30, 2, 0, 0x73)), off += 4;        /* csrs mstatus */
        put32(ram, off, enc_i(SATP_VAL, 31, 3, 30, 0x03)), off += 4;    /* ld x30 */
        put32(ram, off, enc_i(0x180, 30, 1, 0, 0x73)), off += 4;        /* csrw satp */
    }
    for (unsigned r = 1; r <= 31; r++)
        put32(ram, off, enc_i((int32_t)(REGVALS + 8 * (r - 1)), 31, 3, r, 0x03)), off += 4;
    put32(ram, off, p->smode ? MRET : enc_j((int32_t)(BODY - off), 0)), off += 4;
    memcpy(ram + REGVALS, p->regs, sizeof(p->regs));
    memcpy(ram + MSTATUS_VAL, &(uint64_t){1ull << 11}, 8);                           /* MPP = S */
    memcpy(ram + SATP_VAL, &(uint64_t){8ull << 60 | (RAM_BASE + PT_ROOT) >> 12}, 8); /* Sv39 */
    put32(ram, STOP, enc_u(STOP_DEV >> 12, 1, 0x37)); /* lui x1, the stop device */
    put32(ram, STOP + 4, enc_s(0, 0, 1, 2));          /* sw x0, 0(x1) */
    put32(ram, STOP + 8, enc_j(0, 0));                /* j . */

    pos = BODY;
    for (unsigned i = 0; i < p->n; i++) {
        at[i] = pos;
        pos += p->in[i].len;
    }
    for (unsigned i = 0; i < p->n; i++) {
        uint32_t bits = p->in[i].bits;

        if (p->in[i].target >= 0) {
            int32_t d = (int32_t)at[p->in[i].target] - (int32_t)at[i];

            bits = (bits & 0x7f) == 0x63
                       ? enc_b(d, bits >> 20 & 31, bits >> 15 & 31, bits >> 12 & 7)
                       : enc_j(d, bits >> 7 & 31);
        }
        memcpy(ram + at[i], &bits, p->in[i].len);
    }

    if (p->smode) {
        uint64_t root = RAM_BASE + PT_ROOT, l1 = root + 0x1000, l0 = root + 0x2000;
        uint64_t pte;

        /* V=1 R=2 W=4 X=8 A=0x40 D=0x80 (privileged §4.4.1); pointers have only V. */
        pte = (l1 >> 12) << 10 | 1;
        memcpy(ram + PT_ROOT + 8 * ((RAM_BASE >> 30) & 511), &pte, 8);
        pte = (l0 >> 12) << 10 | 1;
        memcpy(ram + PT_ROOT + 0x1000, &pte, 8);
        pte = ((uint64_t)STOP_DEV >> 12) << 10 | 0xc7; /* the devices: one RW gigapage */
        memcpy(ram + PT_ROOT + 8 * (STOP_DEV >> 30), &pte, 8);
        for (unsigned pg = 0; pg < DATA_END / 4096; pg++) {
            uint64_t flags = 0xcf; /* code pages: RWX, accessed, dirty */

            if (pg >= DATA / 4096) {
                static const uint64_t perm[] = {0xc7, 0x43, 0, 0x47};

                flags = perm[p->data_perm[pg - DATA / 4096]];
            }
            pte = ((RAM_BASE + pg * 4096ull) >> 12) << 10 | flags;
            memcpy(ram + PT_ROOT + 0x2000 + 8 * pg, &pte, 8);
        }
    }
}

/* --- running --- */

static struct vcpu *running;

static int stop_read(void *opaque, uint64_t offset, unsigned size, uint64_t *value)
{
    *value = 0;
    return 0;
}

static int stop_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    vcpu_request_stop(running);
    return 0;
}

static const struct mmio_ops stop_ops = {
    .read = stop_read, .write = stop_write, .min_size = 1, .max_size = 8};

/* The interrupt comes with the device's irq_after-th write, so that it often comes in a
 * later round of the program's loop, when translated blocks chain into each other. */
static unsigned irq_writes, irq_after;

static int irq_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    if (++irq_writes == irq_after)
        vcpu_set_irq(running, VCPU_IRQ_MSI, true);
    return 0;
}

static const struct mmio_ops irq_ops = {
    .read = stop_read, .write = irq_write, .min_size = 1, .max_size = 8};

static uint64_t time_zero(void *opaque)
{
    return 0;
}

struct hart {
    const char *name;
    struct vcpu *v;
    uint8_t *ram;
    struct code_watch cw; /* so that a FENCE.I keeps what no store changed, as on a board */
    struct sbuf state;
};

static int hart_open(struct hart *t, const char *engine, const char *threshold,
                     const struct bus *bus)
{
    struct vcpu_config cfg = {.id = 0, .bus = bus, .mem_count = 1};

    t->ram = calloc(1, RAM_SIZE);
    if (!t->ram || code_watch_init(&t->cw, RAM_SIZE / 4096))
        return -1;
    cfg.mem[0] = (struct vcpu_mem_region){
        .base = RAM_BASE, .size = RAM_SIZE, .host = t->ram, .code = &t->cw};
    setenv("TESSERA_JIT_THRESHOLD", threshold, 1);
    if (vcpu_create(cpu_engine_find(engine), &cfg, &t->v))
        return -1;
    vcpu_set_time_source(t->v, time_zero, NULL);
    sbuf_init(&t->state);
    return 0;
}

static void hart_run(struct hart *t, const struct program *p)
{
    program_write(p, t->ram);
    vcpu_reset(t->v, RAM_BASE);
    irq_writes = 0;
    irq_after = p->irq_after;
    vcpu_clear_stop(t->v);
    running = t->v;
    vcpu_run(t->v);
    sbuf_free(&t->state);
    sbuf_init(&t->state);
    vcpu_save(t->v, &t->state);
}

/* Names the first difference between two harts' saved states (layout: rv64 state.c). */
static void report(const struct hart *a, const struct hart *b, uint64_t seed)
{
    size_t n = a->state.len < b->state.len ? a->state.len : b->state.len, i = 0;

    while (i < n && a->state.data[i] == b->state.data[i])
        i++;
    if (i < n || a->state.len != b->state.len) {
        uint64_t va = 0, vb = 0;
        size_t field = i < 4 ? 0 : (i - 4) / 8 * 8 + 4;

        if (field + 8 <= n) {
            memcpy(&va, a->state.data + field, 8);
            memcpy(&vb, b->state.data + field, 8);
        }
        fprintf(stderr,
                "seed %" PRIu64 ": %s and %s differ at state byte %zu (%s): 0x%" PRIx64
                " vs 0x%" PRIx64 "\n",
                seed, a->name, b->name, i,
                i < 12    ? "pc"
                : i < 260 ? "x register"
                          : "a later field",
                va, vb);
        if (i >= 12 && i < 260)
            fprintf(stderr, "    x%zu\n", (i - 12) / 8 + 1);
    }
    for (size_t k = 0; k < RAM_SIZE; k++) {
        if (a->ram[k] != b->ram[k]) {
            fprintf(stderr, "seed %" PRIu64 ": %s and %s: RAM differs at +0x%zx\n", seed, a->name,
                    b->name, k);
            break;
        }
    }
}

static bool same(const struct hart *a, const struct hart *b)
{
    return !a->state.oom && !b->state.oom && a->state.len == b->state.len &&
           !memcmp(a->state.data, b->state.data, a->state.len) &&
           !memcmp(a->ram, b->ram, RAM_SIZE) && vcpu_instret(a->v) == vcpu_instret(b->v);
}

int main(void)
{
    static struct program prog;
    struct bus bus = {0};
    struct hart h[5] = {{.name = "interp"},
                        {.name = "jit (threshold 0)"},
                        {.name = "jit (threshold 1)"},
                        {.name = "jit (threshold 0, one mapping and mprotect)"},
                        {.name = "jit (threshold 0, no FMA3)"}};
    const char *seed_env = getenv("TEST_JIT_SEED");
    const char *count_env = getenv("TEST_JIT_PROGRAMS");
    unsigned programs = seed_env ? 1 : count_env ? (unsigned)atoi(count_env) : PROGRAMS;
    unsigned mismatches = 0;
    unsigned ended = 0;

    if (!cpu_engine_find("jit")) {
        /* Not an x86-64 host: there is no JIT to compare. */
        CHECK(cpu_engine_find("interp") != NULL);
        return test_finish("jit");
    }
    CHECK(bus_add(&bus, &(struct mmio_region){"stop", STOP_DEV, 0x1000, &stop_ops, NULL}) == 0);
    CHECK(bus_add(&bus, &(struct mmio_region){"irq", IRQ_DEV, 0x1000, &irq_ops, NULL}) == 0);
    CHECK(hart_open(&h[0], "interp", "8", &bus) == 0);
    CHECK(hart_open(&h[1], "jit", "0", &bus) == 0);
    CHECK(hart_open(&h[2], "jit", "1", &bus) == 0);
    setenv("TESSERA_JIT_SINGLE_MAP", "1", 1);
    CHECK(hart_open(&h[3], "jit", "0", &bus) == 0);
    unsetenv("TESSERA_JIT_SINGLE_MAP");
    setenv("TESSERA_JIT_NO_FMA", "1", 1);
    CHECK(hart_open(&h[4], "jit", "0", &bus) == 0);
    unsetenv("TESSERA_JIT_NO_FMA");
    for (unsigned i = 0; i < programs; i++) {
        uint64_t seed = seed_env ? strtoull(seed_env, NULL, 10) : i + 1;
        bool ok;

        rng_state = seed * 0x9e3779b97f4a7c15ull + 1;
        program_make(&prog, i % 2);
        for (unsigned k = 0; k < 5; k++)
            hart_run(&h[k], &prog);
        ok = same(&h[0], &h[1]) && same(&h[0], &h[2]) && same(&h[0], &h[3]) && same(&h[0], &h[4]);
        if (!ok && mismatches++ < 5) {
            for (unsigned k = 1; k < 5; k++)
                report(&h[0], &h[k], seed);
        }
        CHECK(ok);
        /* Every program ends in a trap, whose handler stops the hart at its spin. */
        if (h[0].state.len >= 12) {
            uint64_t pc;

            memcpy(&pc, h[0].state.data + 4, 8);
            ended += pc == RAM_BASE + STOP + 8;
        }
    }
    CHECK_EQ_U64(ended, programs);
    for (unsigned k = 0; k < 5; k++) {
        vcpu_destroy(h[k].v);
        free(h[k].ram);
        code_watch_destroy(&h[k].cw);
        sbuf_free(&h[k].state);
    }
    return test_finish("jit");
}
