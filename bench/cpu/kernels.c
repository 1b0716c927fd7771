/* A bare-metal CPU benchmark for bench/cpu.py: kernels of the kinds the JIT issue names (a
 * sieve, CRC-32, an integer matrix multiply, a double-precision loop), run straight from reset
 * in M-mode with no OS, so the time is the CPU engine's alone. Built for rv64gc with
 * tests/isa/link.ld; reports through the virt board's test device (0x100000): 0x5555 when every
 * checksum matched, else the failing kernel's number as the exit status.
 *
 * The expected checksums are what the same C computes on the host: build it there with
 *   cc -O2 -ffp-contract=off -fno-math-errno -DBENCH_HOST bench/cpu/kernels.c -lm
 * and run it. -ffp-contract=off (here and in bench/cpu.py) keeps the compiler from fusing
 * a*b+c on one target and not the other, so the double-precision kernel's fused operations
 * are the explicit fma() calls only, and every operation is correctly rounded IEEE 754 binary64
 * (round to nearest even) on both: its checksum is exact, not approximate. */
#include <stdint.h>
#ifdef BENCH_HOST
#include <math.h>
#include <stdio.h>
#define bench_fma  fma
#define bench_sqrt sqrt
#else
#define bench_fma  __builtin_fma
#define bench_sqrt __builtin_sqrt
#endif

#define TEST_DEVICE ((volatile uint32_t *)0x100000)
#define SIEVE_N     (1u << 22)
#define MAT_N       96
/* What the kernels compute, from the same C built for the host. */
#define SIEVE_EXPECTED 295947u /* primes below 2^22 */
#define CRC_EXPECTED   0x6498b29cu
#define MAT_EXPECTED   276768224u
#define FP_EXPECTED    0x01c0c6a0u
/* The double-precision kernel: escape counts of a Mandelbrot set on an FP_W x FP_H grid. */
#define FP_W    256
#define FP_H    160
#define FP_ITER 256

static uint8_t composite[SIEVE_N];
static uint32_t crc_table[256];
static uint8_t crc_data[1u << 16];
static int32_t ma[MAT_N][MAT_N], mb[MAT_N][MAT_N], mc[MAT_N][MAT_N];
static double fp_row[FP_H][FP_W];

#ifndef BENCH_HOST
uint8_t bench_stack[1u << 16] __attribute__((aligned(16), used));

static void finish(uint32_t code)
{
    *TEST_DEVICE = code ? (code << 16) | 0x3333 : 0x5555;
    for (;;)
        ;
}
#endif

static uint32_t sieve(void)
{
    uint32_t count = 0;

    for (uint32_t i = 0; i < SIEVE_N; i++)
        composite[i] = 0;
    for (uint32_t i = 2; i < SIEVE_N; i++) {
        if (composite[i])
            continue;
        count++;
        for (uint32_t j = 2 * i; j < SIEVE_N; j += i)
            composite[j] = 1;
    }
    return count;
}

static uint32_t crc32(void)
{
    uint32_t crc = 0xffffffffu;

    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;

        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
    for (uint32_t i = 0; i < sizeof(crc_data); i++)
        crc_data[i] = (uint8_t)(i * 7 + (i >> 8));
    for (int round = 0; round < 64; round++)
        for (uint32_t i = 0; i < sizeof(crc_data); i++)
            crc = crc_table[(crc ^ crc_data[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static uint32_t matmul(void)
{
    uint32_t sum = 0;

    for (int i = 0; i < MAT_N; i++)
        for (int j = 0; j < MAT_N; j++) {
            ma[i][j] = i * 3 - j;
            mb[i][j] = j * 5 + i;
        }
    for (int round = 0; round < 12; round++) {
        for (int i = 0; i < MAT_N; i++)
            for (int j = 0; j < MAT_N; j++) {
                int32_t s = 0;

                for (int k = 0; k < MAT_N; k++)
                    s += ma[i][k] * mb[k][j];
                mc[i][j] = s;
            }
        for (int i = 0; i < MAT_N; i++)
            for (int j = 0; j < MAT_N; j++)
                sum = sum * 31 + (uint32_t)mc[i][j];
        ma[round][round] += 1;
    }
    return sum;
}

/* A Mandelbrot set's escape counts (fmul, fadd, fsub, a fused multiply-add, a compare per
 * iteration; int to double conversions per point), a per-point value through a square root
 * and a division stored to an array (fsd), then the array folded (fld) into one double. The
 * checksum mixes the total count with the bits of that double, so one wrong rounding or flag-
 * free shortcut anywhere shows. */
static uint32_t fploop(void)
{
    uint32_t count = 0;
    double acc = 0.0;
    uint64_t bits;

    for (int py = 0; py < FP_H; py++) {
        double ci = (double)py * (2.5 / FP_H) - 1.25;

        for (int px = 0; px < FP_W; px++) {
            double cr = (double)px * (3.0 / FP_W) - 2.0;
            double zr = 0.0, zi = 0.0;
            int k;

            for (k = 0; k < FP_ITER; k++) {
                double zr2 = zr * zr, zi2 = zi * zi;

                if (zr2 + zi2 > 4.0)
                    break;
                zi = bench_fma(zr + zr, zi, ci);
                zr = zr2 - zi2 + cr;
            }
            count += (uint32_t)k;
            fp_row[py][px] = bench_sqrt(zr * zr + zi * zi) / (1.0 + (double)k);
        }
    }
    for (int py = 0; py < FP_H; py++)
        for (int px = 0; px < FP_W; px++)
            acc = acc * 0.75 + fp_row[py][px];
    __builtin_memcpy(&bits, &acc, sizeof(bits));
    return count ^ (uint32_t)bits ^ (uint32_t)(bits >> 32);
}

#ifdef BENCH_HOST
int main(void)
{
    printf("sieve %u crc32 0x%08x matmul %u fploop 0x%08x\n", sieve(), crc32(), matmul(), fploop());
    return 0;
}
#else
/* -DBENCH_FP_ONLY builds a program that runs the double-precision kernel alone. */
void bench_main(void)
{
#ifndef BENCH_FP_ONLY
    if (sieve() != SIEVE_EXPECTED)
        finish(1);
    if (crc32() != CRC_EXPECTED)
        finish(2);
    if (matmul() != MAT_EXPECTED)
        finish(3);
#endif
    if (fploop() != FP_EXPECTED)
        finish(4);
    finish(0);
}

__attribute__((naked, section(".text.init"))) void _start(void)
{
    /* mstatus.FS starts Off at reset (privileged spec §3.1.6.6): set it to Initial, or every
     * floating-point instruction traps. */
    __asm__ volatile("la sp, bench_stack + %0\n"
                     "li t0, 0x2000\n"
                     "csrs mstatus, t0\n"
                     "call bench_main\n" ::"i"(sizeof(bench_stack)));
}
#endif
