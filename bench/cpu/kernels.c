/* A bare-metal CPU benchmark for bench/cpu.py: integer kernels of the kinds the JIT issue names
 * (a sieve, CRC-32, an integer matrix multiply), run straight from reset in M-mode with no
 * OS, so the time is the CPU engine's alone. Built for rv64gc with tests/isa/link.ld; reports
 * through the virt board's test device (0x100000): 0x5555 when every checksum matched, else
 * the failing kernel's number as the exit status. */
#include <stdint.h>

#define TEST_DEVICE ((volatile uint32_t *)0x100000)
#define SIEVE_N     (1u << 22)
#define MAT_N       96
/* What the kernels compute, from the same C built for the host. */
#define SIEVE_EXPECTED 295947u /* primes below 2^22 */
#define CRC_EXPECTED   0x6498b29cu
#define MAT_EXPECTED   276768224u

static uint8_t composite[SIEVE_N];
static uint32_t crc_table[256];
static uint8_t crc_data[1u << 16];
static int32_t ma[MAT_N][MAT_N], mb[MAT_N][MAT_N], mc[MAT_N][MAT_N];
uint8_t bench_stack[1u << 16] __attribute__((aligned(16), used));

static void finish(uint32_t code)
{
    *TEST_DEVICE = code ? (code << 16) | 0x3333 : 0x5555;
    for (;;)
        ;
}

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

void bench_main(void)
{
    if (sieve() != SIEVE_EXPECTED)
        finish(1);
    if (crc32() != CRC_EXPECTED)
        finish(2);
    if (matmul() != MAT_EXPECTED)
        finish(3);
    finish(0);
}

__attribute__((naked, section(".text.init"))) void _start(void)
{
    __asm__ volatile("la sp, bench_stack + %0\n"
                     "call bench_main\n" ::"i"(sizeof(bench_stack)));
}
