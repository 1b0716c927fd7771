/* The JIT's code cache (src/cpu/rv64/jit/jit.h) as a user's memory sees it: it holds at most
 * RV_JIT_CACHE_SIZE bytes of code, says so when full (so the hart flushes and starts over,
 * translating again), and its pages count once in the VMM's resident set although the cache
 * is mapped twice (read+execute, and read+write to copy translations in): the read+write
 * view keeps only the pages being written mapped. A translation is small, and the largest
 * blocks are translated. The translations themselves are checked against the interpreter by
 * test_jit.c. */
#include "test.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "cpu/rv64/block.h"

#if RV_JIT_HOST

#define BLOCK_INSNS 48

/* Rss (kB) of this process's mappings of the code cache's memfd with permissions `perms`
 * ("r-xs", "rw-s"), summed; -1 when there is none. */
static long cache_rss_kb(const char *perms)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    bool in = false;
    long sum = -1;

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        char p[8];
        long kb;

        if (sscanf(line, "%*x-%*x %7s", p) == 1 && strchr(line, '-') < strchr(line, ' ')) {
            in = strstr(line, "tessera-jit") && !strcmp(p, perms);
            continue;
        }
        if (in && sscanf(line, "Rss: %ld kB", &kb) == 1)
            sum = (sum < 0 ? 0 : sum) + kb;
    }
    fclose(f);
    return sum;
}

#define FADD_D 0x02108153 /* fadd.d f2, f1, f1, rne: inline, so the block gets an FP-less copy */

/* A block of n instructions as the block cache would decode it: first (unless 0), then
 * insns[] over and over. */
static struct rv_block *block_from(const uint32_t *insns, unsigned count, uint32_t first,
                                   unsigned n)
{
    struct rv_block *b = calloc(1, sizeof(*b) + n * sizeof(struct rv_insn));
    unsigned k = 0;

    if (!b)
        return NULL;
    for (unsigned i = 0; i < n; i++) {
        rv_decode(i == 0 && first ? first : insns[k++ % count], &b->insn[i]);
        b->insn[i].pc_off = (uint16_t)(4 * i);
        b->insn[i].idx = (uint8_t)i;
    }
    b->n = n;
    b->bytes = 4 * n;
    return b;
}

/* A block of loads, stores and arithmetic. */
static struct rv_block *block_make(void)
{
    static const uint32_t insns[] = {
        0x00128293, /* addi x5, x5, 1 */
        0x0083b303, /* ld x6, 8(x7) */
        0x006383b3, /* add x7, x7, x6 */
        0x0063b823, /* sd x6, 16(x7) */
        0x02628433, /* mul x8, x5, x6 */
    };

    return block_from(insns, 5, 0, BLOCK_INSNS);
}

/* The bytes of one translation of b (the cache flushed first). */
static uint64_t translated_bytes(struct rv_jit *j, struct rv_block *b)
{
    struct rv_jit_stats st;
    bool full;

    rv_jit_flush(j);
    if (!rv_jit_compile(j, b, &full))
        return 0;
    rv_jit_get_stats(j, &st);
    return st.bytes;
}

/* A block's translation is small: its loads and stores share one slow path, each with a stub of
 * a few bytes (jit.c), where each had its own write-back, TLB refill, handler call and exit
 * (4,347 bytes for block_make()'s 48 instructions, 19 of them loads and stores; 1,700 now). A
 * cache of a given size then holds more translations, and a boot writes less code. And the
 * largest blocks are translated, none left to the interpreter for want of room in the
 * translator's tables: 64 loads and stores, less an FP add that makes the block translated
 * twice (with and without inline FP), and 63 handler calls (clz) in both copies. */
static void check_translation_size(struct rv_jit *j)
{
    static const uint32_t mem[] = {
        0x0083b087, /* fld f1, 8(x7) */
        0x0063b823, /* sd x6, 16(x7) */
        0x0083b303, /* ld x6, 8(x7) */
    };
    static const uint32_t calls[] = {0x60031293 /* clz x5, x6 */};
    struct rv_block *b = block_make();
    struct rv_block *many_mem = block_from(mem, 3, FADD_D, 64);
    struct rv_block *many_calls = block_from(calls, 1, FADD_D, 64);
    uint64_t n;

    CHECK(b && many_mem && many_calls);
    if (b && many_mem && many_calls) {
        n = translated_bytes(j, b);
        CHECK(n > 0 && n < 2048);
        if (n >= 2048)
            fprintf(stderr, "block_make()'s translation: %llu bytes\n", (unsigned long long)n);
        CHECK(translated_bytes(j, many_mem) > 0);
        CHECK(translated_bytes(j, many_calls) > 0);
    }
    free(b);
    free(many_mem);
    free(many_calls);
}

/* Translates b until the cache says it is full; returns the translations made. */
static unsigned fill(struct rv_jit *j, struct rv_block *b)
{
    unsigned n = 0;
    bool full = false;

    while (n < 1000000) {
        rv_jit_fn fn = rv_jit_compile(j, b, &full);

        if (!fn)
            break;
        n++;
    }
    CHECK(full);
    return n;
}

int main(void)
{
    struct rv_jit *j = NULL;
    struct rv_block *b = block_make();
    struct rv_jit_stats st;
    unsigned first, second;
    bool full;
    long rx, rw;

    unsetenv("TESSERA_JIT_SINGLE_MAP");
    CHECK(b != NULL);
    CHECK(rv_jit_create(&j) == 0);
    if (!b || !j)
        return test_finish("jit_cache");

    first = fill(j, b);
    rv_jit_get_stats(j, &st);
    CHECK(first > 100);
    CHECK(st.bytes <= RV_JIT_CACHE_SIZE);
    CHECK(st.bytes > RV_JIT_CACHE_SIZE - 64 * 1024); /* full means nearly full */
    rx = cache_rss_kb("r-xs");
    rw = cache_rss_kb("rw-s");
    /* The code is resident once, through the read+execute view; the read+write view holds
     * no more than the pages around the end being written (two populate chunks). */
    CHECK(rx >= (long)(st.bytes / 1024));
    CHECK(rx <= (long)(RV_JIT_CACHE_SIZE / 1024));
    CHECK(rw >= 0 && rw <= 512);
    if (rw > 512)
        fprintf(stderr, "read+write view: %ld kB resident, read+execute: %ld kB\n", rw, rx);

    /* After a flush the cache fills again from its start, as much as the first time, and
     * its pages are reused: still resident once. */
    rv_jit_flush(j);
    rv_jit_get_stats(j, &st);
    CHECK_EQ_U64(st.bytes, 0);
    CHECK_EQ_U64(st.flushes, 1);
    /* The pages at the end written before the flush are no longer mapped for writing. */
    CHECK(rv_jit_compile(j, b, &full) != NULL);
    rw = cache_rss_kb("rw-s");
    CHECK(rw >= 0 && rw <= 512);
    second = 1 + fill(j, b);
    CHECK_EQ_U64(second, first);
    CHECK(cache_rss_kb("r-xs") <= (long)(RV_JIT_CACHE_SIZE / 1024));
    rw = cache_rss_kb("rw-s");
    CHECK(rw >= 0 && rw <= 512);

    /* Grown after a flush (the hart does so when flushes come often): twice the code fits,
     * the read+write view still holds only the end, and it grows no further than
     * RV_JIT_CACHE_MAX however often it is asked. */
    rv_jit_flush(j);
    rv_jit_grow(j);
    second = fill(j, b);
    CHECK(second + 1 >= 2 * first && second <= 2 * first + 1); /* the slack at the end */
    rv_jit_get_stats(j, &st);
    CHECK(st.bytes > RV_JIT_CACHE_SIZE && st.bytes <= 2 * RV_JIT_CACHE_SIZE);
    CHECK(cache_rss_kb("r-xs") <= (long)(2 * RV_JIT_CACHE_SIZE / 1024));
    rw = cache_rss_kb("rw-s");
    CHECK(rw >= 0 && rw <= 512);
    for (int i = 0; i < 10; i++)
        rv_jit_grow(j);
    rv_jit_flush(j);
    fill(j, b);
    rv_jit_get_stats(j, &st);
    CHECK(st.bytes > RV_JIT_CACHE_MAX - 64 * 1024 && st.bytes <= RV_JIT_CACHE_MAX);

    check_translation_size(j);
    rv_jit_destroy(j);
    free(b);
    return test_finish("jit_cache");
}

#else

int main(void)
{
    struct rv_jit *j = NULL;

    CHECK(rv_jit_create(&j) == -ENOTSUP);
    return test_finish("jit_cache");
}

#endif
