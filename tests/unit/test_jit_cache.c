/* The JIT's code cache (src/cpu/rv64/jit/jit.h) as a user's memory sees it: it holds at most
 * RV_JIT_CACHE_SIZE bytes of code, says so when full (so the hart flushes and starts over,
 * translating again), and its pages count once in the VMM's resident set although the cache
 * is mapped twice (read+execute, and read+write to copy translations in): the read+write
 * view keeps only the pages being written mapped. The translations themselves are checked
 * against the interpreter by test_jit.c. */
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

/* A block of loads, stores and arithmetic, as the block cache would decode it. */
static struct rv_block *block_make(void)
{
    static const uint32_t insns[] = {
        0x00128293, /* addi x5, x5, 1 */
        0x0083b303, /* ld x6, 8(x7) */
        0x006383b3, /* add x7, x7, x6 */
        0x0063b823, /* sd x6, 16(x7) */
        0x02628433, /* mul x8, x5, x6 */
    };
    struct rv_block *b = calloc(1, sizeof(*b) + BLOCK_INSNS * sizeof(struct rv_insn));

    if (!b)
        return NULL;
    for (unsigned i = 0; i < BLOCK_INSNS; i++) {
        rv_decode(insns[i % 5], &b->insn[i]);
        b->insn[i].pc_off = (uint16_t)(4 * i);
        b->insn[i].idx = (uint8_t)i;
    }
    b->n = BLOCK_INSNS;
    b->bytes = 4 * BLOCK_INSNS;
    return b;
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
