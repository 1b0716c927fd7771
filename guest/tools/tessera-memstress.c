/*
 * tessera-memstress: keep a large buffer of guest RAM changing and verified, for the
 * migration and snapshot tests (tests/guest/test_migrate.py). Any page that a migration
 * or a restore loses, duplicates or brings back stale shows up as a wrong word.
 *
 *   tessera-memstress [MiB] [--rounds N]     (default 64 MiB, rounds without end)
 *
 * The buffer holds n = MiB * 2^17 64-bit words. Round r (1, 2, ...) writes word i as
 *
 *     w(r, i) = a_r + i * d_r  (mod 2^64),  a_r = mix(r),  d_r = mix(r ^ D_SALT) | 1
 *
 * (mix is the SplitMix64 output function), then reads every word back, checks it and
 * prints
 *
 *     MEMSTRESS round R sum XXXXXXXXXXXXXXXX ok
 *
 * where sum = A ^ rotl(B, 29), A = sum of w_i, B = sum of i * w_i (both mod 2^64), taken
 * over what the read-back pass actually read. Because w is linear in i, A and B have a
 * closed form, so a host test computes the expected sum of any round from R and the size
 * alone; tests/guest/test_migrate.py holds the same function in Python. Keep the two equal.
 *
 * Continuity: while round r rewrites the buffer, each word is checked against round r - 1
 * (zero for round 1, as the buffer starts zeroed) just before it is overwritten, so a page
 * lost or reverted between two rounds (say, while the VM was migrated) is caught even in
 * the middle of a rewrite; such a word is reported as corrupt in round r - 1.
 *
 * A wrong word prints "MEMSTRESS CORRUPT round R word I got X want Y" and exits 1. Lines
 * go out with one write(2) each, so they reach the console whole and at once. Built static
 * for riscv64 by guest/stages/initramfs.sh; installed as /bin/tessera-memstress.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define WORDS_PER_MIB  (1u << 17)
#define WORDS_PER_PAGE 512u
#define D_SALT         0x5bd1e9955bd1e995ull
#define MAX_MIB        65536ul

/* SplitMix64's output function (Steele, Lea, Flood 2014): a bijection that mixes all bits. */
static uint64_t mix(uint64_t x)
{
    uint64_t z = x + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, unsigned k)
{
    return (x << k) | (x >> (64 - k));
}

/* One line, one write(2): nothing waits in a stdio buffer when the VM is stopped. */
__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
    char line[160];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (len > 0 && write(1, line, (size_t)len) < 0)
        exit(1);
}

static void corrupt(uint64_t round, uint64_t i, uint64_t got, uint64_t want)
{
    say("MEMSTRESS CORRUPT round %llu word %llu got %016llx want %016llx\n",
        (unsigned long long)round, (unsigned long long)i, (unsigned long long)got,
        (unsigned long long)want);
    exit(1);
}

/* Parses a decimal count in [1, max]; 0 if it is not one. */
static unsigned long parse_count(const char *s, unsigned long max)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v < 1 || v > max)
        return 0;
    return v;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: tessera-memstress [MiB] [--rounds N]\n"
            "  MiB: buffer size, 1-%lu (default 64); N: rounds (default: no end)\n",
            MAX_MIB);
    return 2;
}

int main(int argc, char **argv)
{
    unsigned long mib = 64, rounds = 0;

    for (int k = 1; k < argc; k++) {
        if (strcmp(argv[k], "--rounds") == 0 && k + 1 < argc) {
            rounds = parse_count(argv[++k], ~0ul);
            if (!rounds)
                return usage();
        } else {
            mib = parse_count(argv[k], MAX_MIB);
            if (!mib)
                return usage();
        }
    }

    uint64_t n = (uint64_t)mib * WORDS_PER_MIB;
    /* Anonymous memory reads as zero: the continuity check of round 1 relies on it. */
    void *mem = mmap(NULL, n * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        fprintf(stderr, "tessera-memstress: cannot map %lu MiB: %s\n", mib, strerror(errno));
        return 1;
    }
    /* Volatile: every store and load in the loops below must really reach memory. */
    volatile uint64_t *buf = mem;
    for (uint64_t i = 0; i < n; i += WORDS_PER_PAGE)
        buf[i] = 0;
    say("MEMSTRESS start MiB %lu\n", mib);

    uint64_t prev_a = 0, prev_d = 0; /* round 0: all zero */
    for (uint64_t r = 1; !rounds || r <= rounds; r++) {
        uint64_t a = mix(r), d = mix(r ^ D_SALT) | 1;

        for (uint64_t i = 0; i < n; i++) {
            uint64_t got = buf[i], want = prev_a + i * prev_d;
            if (got != want)
                corrupt(r - 1, i, got, want);
            buf[i] = a + i * d;
        }

        uint64_t sum_w = 0, sum_iw = 0;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t got = buf[i], want = a + i * d;
            if (got != want)
                corrupt(r, i, got, want);
            sum_w += got;
            sum_iw += i * got;
        }
        say("MEMSTRESS round %llu sum %016llx ok\n", (unsigned long long)r,
            (unsigned long long)(sum_w ^ rotl(sum_iw, 29)));
        prev_a = a;
        prev_d = d;
    }
    return 0;
}
