/*
 * tessera-fault: make the CPU do one thing the VMM must get exactly right,
 * for guest tests that compare Tessera with QEMU.
 *
 *   tessera-fault illegal         execute the all-zero word, an illegal instruction
 *                                 (RISC-V unprivileged §26.1: the zero encoding is
 *                                 reserved as illegal) -> SIGILL, exit status 132
 *   tessera-fault segv            store to address 8 -> SIGSEGV, 139
 *   tessera-fault jump            call address 0x1000 (not mapped) -> SIGSEGV, 139
 *   tessera-fault misaligned-amo  amoadd.w on an odd address (AMOs must be naturally
 *                                 aligned, §8.4) -> SIGBUS (135) or SIGSEGV (139)
 *   tessera-fault fpu             print F/D results in every rounding mode, exactly
 *   tessera-fault ok              print "ok"
 *
 * The fault modes install no handler: the process dies of the signal, and a
 * shell reports 128 + its number. Built static for riscv64 by
 * guest/stages/initramfs.sh; installed as /bin/tessera-fault.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void fault_illegal(void)
{
    __asm__ volatile(".4byte 0x00000000");
}

static void fault_segv(void)
{
    /* Through a volatile pointer: the compiler may neither see nor drop the store. */
    volatile uint32_t *volatile p = (volatile uint32_t *)(uintptr_t)8;
    *p = 1;
}

static void fault_jump(void)
{
    void (*volatile fn)(void) = (void (*)(void))(uintptr_t)0x1000;
    fn();
}

static void fault_misaligned_amo(void)
{
    static uint32_t words[4];
    volatile char *odd = (volatile char *)words + 1;
    uint32_t old;
    __asm__ volatile("amoadd.w %0, %2, (%1)" : "=r"(old) : "r"(odd), "r"(1) : "memory");
    printf("amoadd.w on an odd address returned %u: no fault\n", old);
}

/* ---- fpu ----------------------------------------------------------------- */

/* The rm field values (RISC-V unprivileged §13.2, Table 13.1). */
static const struct {
    const char *name;
    unsigned frm;
} rounding_modes[] = {
    {"rne", 0}, {"rtz", 1}, {"rdn", 2}, {"rup", 3}, {"rmm", 4},
};

static void set_frm(unsigned frm)
{
    __asm__ volatile("fsrm %0" : : "r"(frm));
}

/* Reads and clears fflags (NV DZ OF UF NX, §13.2). */
static const char *take_flags(char *buf)
{
    unsigned long f;
    __asm__ volatile("csrrw %0, fflags, zero" : "=r"(f));
    snprintf(buf, 16, "%s%s%s%s%s", f & 16 ? "NV" : "", f & 8 ? "DZ" : "", f & 4 ? "OF" : "",
             f & 2 ? "UF" : "", f & 1 ? "NX" : "");
    if (!buf[0])
        strcpy(buf, "-");
    return buf;
}

/* Each operation runs one instruction with the dynamic rounding mode. */
static double op_fdiv_d(double a, double b)
{
    double r;
    __asm__ volatile("fdiv.d %0, %1, %2, dyn" : "=f"(r) : "f"(a), "f"(b));
    return r;
}

static double op_fsqrt_d(double a, double b)
{
    double r;
    (void)b;
    __asm__ volatile("fsqrt.d %0, %1, dyn" : "=f"(r) : "f"(a));
    return r;
}

static double op_fadd_d(double a, double b)
{
    double r;
    __asm__ volatile("fadd.d %0, %1, %2, dyn" : "=f"(r) : "f"(a), "f"(b));
    return r;
}

static double op_fmul_d(double a, double b)
{
    double r;
    __asm__ volatile("fmul.d %0, %1, %2, dyn" : "=f"(r) : "f"(a), "f"(b));
    return r;
}

/* a * b + a, one rounding. */
static double op_fmadd_d(double a, double b)
{
    double r;
    __asm__ volatile("fmadd.d %0, %1, %2, %1, dyn" : "=f"(r) : "f"(a), "f"(b));
    return r;
}

/* Double to single (fcvt.s.d), widened back exactly for printing. */
static double op_fcvt_s_d(double a, double b)
{
    float r;
    (void)b;
    __asm__ volatile("fcvt.s.d %0, %1, dyn" : "=f"(r) : "f"(a));
    return (double)r;
}

static double op_fdiv_s(double a, double b)
{
    float r, fa = (float)a, fb = (float)b;
    __asm__ volatile("fdiv.s %0, %1, %2, dyn" : "=f"(r) : "f"(fa), "f"(fb));
    return (double)r;
}

/* Double to int32 (fcvt.w.d): the integer result, as a double for printing. */
static double op_fcvt_w_d(double a, double b)
{
    long r;
    (void)b;
    __asm__ volatile("fcvt.w.d %0, %1, dyn" : "=r"(r) : "f"(a));
    return (double)r;
}

static const struct {
    const char *name;
    double (*fn)(double, double);
    double a, b;
    bool integer; /* the result is an integer (exact in a double): print it as one */
} fpu_cases[] = {
    {"fdiv.d 1/3", op_fdiv_d, 1.0, 3.0, false},
    {"fdiv.d -2/3", op_fdiv_d, -2.0, 3.0, false},
    {"fdiv.d 1/0", op_fdiv_d, 1.0, 0.0, false},
    {"fdiv.d 0/0", op_fdiv_d, 0.0, 0.0, false},
    {"fsqrt.d 2", op_fsqrt_d, 2.0, 0.0, false},
    {"fsqrt.d -1", op_fsqrt_d, -1.0, 0.0, false},
    {"fadd.d 0.1+0.2", op_fadd_d, 0.1, 0.2, false},
    {"fadd.d 1+-1", op_fadd_d, 1.0, -1.0, false}, /* -0 in rdn only */
    {"fadd.d 1+2^-53", op_fadd_d, 1.0, 0x1p-53, false},
    {"fmul.d max*2", op_fmul_d, 0x1.fffffffffffffp1023, 2.0, false},
    {"fmul.d tiny", op_fmul_d, 0x1p-1022, 0x1.8p-30, false},
    {"fmadd.d (1+e)(1-e)+(1+e)", op_fmadd_d, 1.0 + 0x1p-52, 1.0 - 0x1p-52, false},
    {"fcvt.s.d 1/3", op_fcvt_s_d, 1.0 / 3.0, 0.0, false},
    {"fcvt.s.d -0.1", op_fcvt_s_d, -0.1, 0.0, false},
    {"fdiv.s 2/3", op_fdiv_s, 2.0, 3.0, false},
    {"fcvt.w.d 2.5", op_fcvt_w_d, 2.5, 0.0, true},
    {"fcvt.w.d -2.5", op_fcvt_w_d, -2.5, 0.0, true},
    {"fcvt.w.d 3e9", op_fcvt_w_d, 3e9, 0.0, true},
    {"fcvt.w.d nan", op_fcvt_w_d, __builtin_nan(""), 0.0, true},
};

/*
 * One line per case and rounding mode: "<case> <mode> = <result> flags=<fflags>",
 * the result exactly: %a for floating point, decimal for integers.
 */
static void fpu(void)
{
    char flags[16];
    for (size_t i = 0; i < sizeof(fpu_cases) / sizeof(fpu_cases[0]); i++) {
        for (size_t m = 0; m < sizeof(rounding_modes) / sizeof(rounding_modes[0]); m++) {
            set_frm(rounding_modes[m].frm);
            take_flags(flags);
            double r = fpu_cases[i].fn(fpu_cases[i].a, fpu_cases[i].b);
            take_flags(flags);
            set_frm(0);
            if (fpu_cases[i].integer)
                printf("%-26s %s = %lld flags=%s\n", fpu_cases[i].name, rounding_modes[m].name,
                       (long long)r, flags);
            else
                printf("%-26s %s = %a flags=%s\n", fpu_cases[i].name, rounding_modes[m].name, r,
                       flags);
        }
    }
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";

    /* Nothing may be left in stdio buffers when a fault mode kills us. */
    setvbuf(stdout, NULL, _IONBF, 0);
    if (strcmp(mode, "illegal") == 0)
        fault_illegal();
    else if (strcmp(mode, "segv") == 0)
        fault_segv();
    else if (strcmp(mode, "jump") == 0)
        fault_jump();
    else if (strcmp(mode, "misaligned-amo") == 0)
        fault_misaligned_amo();
    else if (strcmp(mode, "fpu") == 0)
        fpu();
    else if (strcmp(mode, "ok") == 0)
        printf("ok\n");
    else {
        fprintf(stderr, "usage: tessera-fault illegal|segv|jump|misaligned-amo|fpu|ok\n"
                        "  the fault modes die of their signal (exit status 128 + signal)\n");
        return 2;
    }
    /* A fault mode that returns did not fault: say so with a distinct status. */
    if (strcmp(mode, "fpu") != 0 && strcmp(mode, "ok") != 0) {
        fprintf(stderr, "tessera-fault: %s did not fault\n", mode);
        return 3;
    }
    return 0;
}
