/* The CLINT as a guest sees it: msip, mtimecmp (whole and in halves), mtime, and MTIP that
 * follows mtime >= mtimecmp as time passes. The only timing assertions are generous upper
 * bounds on "the timer fires". */
#include "test.h"
#include "fake_irq.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "base/time.h"
#include "hw/clint.h"

#define NHARTS   2
#define FREQ     10000000ull /* 10 MHz, as on `virt` */
#define MS_TICKS (FREQ / 1000)

static struct fake_irq msip_rx[NHARTS], mtip_rx[NHARTS], stip_rx[NHARTS];

static uint64_t rd(struct clint *c, uint64_t off, unsigned size)
{
    uint64_t v = 0xdeadbeef;

    CHECK(clint_mmio_ops.read(c, off, size, &v) == 0);
    return v;
}

static void wr(struct clint *c, uint64_t off, unsigned size, uint64_t v)
{
    CHECK(clint_mmio_ops.write(c, off, size, v) == 0);
}

static uint64_t cmp_off(unsigned h)
{
    return 0x4000 + 8 * h;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}

/* Waits up to `limit_ms` for the line to reach `want`. */
static bool wait_level(struct fake_irq *f, bool want, unsigned limit_ms)
{
    uint64_t end = time_now_ns() + (uint64_t)limit_ms * 1000000;

    while (level(f) != want) {
        if (time_now_ns() > end)
            return false;
        sleep_ms(1);
    }
    return true;
}

static void test_create_args(const struct irq_line *ms, const struct irq_line *mt)
{
    struct clint *c = NULL;

    CHECK(clint_create(0, FREQ, ms, mt, &c) == -EINVAL);
    CHECK(clint_create(CLINT_MAX_HARTS + 1, FREQ, ms, mt, &c) == -EINVAL);
    CHECK(clint_create(1, 0, ms, mt, &c) == -EINVAL);
    CHECK(clint_create(1, FREQ, NULL, mt, &c) == -EINVAL);
    CHECK(clint_create(1, FREQ, ms, mt, NULL) == -EINVAL);
    CHECK(c == NULL);
    clint_destroy(NULL);
}

static void test_mtime(struct clint *c)
{
    uint64_t t0 = rd(c, 0xbff8, 8), t1, lo, hi;

    CHECK(t0 < 60 * FREQ); /* started at 0 when created, moments ago */
    sleep_ms(2);
    t1 = rd(c, 0xbff8, 8);
    CHECK(t1 > t0); /* 2 ms is 20000 ticks at 10 MHz */
    CHECK(clint_time(c) >= t1);

    /* mtime writes move the time base; 4-byte halves reach each half. */
    wr(c, 0xbff8, 8, 0x123456789abull);
    t0 = rd(c, 0xbff8, 8);
    CHECK(t0 >= 0x123456789abull && t0 < 0x123456789abull + 60 * FREQ);
    wr(c, 0xbffc, 4, 0x42);
    hi = rd(c, 0xbffc, 4);
    lo = rd(c, 0xbff8, 4);
    CHECK_EQ_U64(hi, 0x42);
    CHECK(lo >= 0x456789ab); /* the low half kept counting */
    wr(c, 0xbff8, 4, 0);
    CHECK(rd(c, 0xbff8, 8) >> 32 == 0x42);
    CHECK((rd(c, 0xbff8, 8) & 0xffffffffu) < 60 * FREQ);
}

static void test_msip(struct clint *c)
{
    uint64_t v;

    CHECK_EQ_U64(rd(c, 0x4, 4), 0);
    wr(c, 0x4, 4, 1);
    CHECK(level(&msip_rx[1]));
    CHECK(!level(&msip_rx[0]));
    CHECK_EQ_U64(rd(c, 0x4, 4), 1);
    wr(c, 0x4, 4, 0xfffffffe); /* bit 0 clear: only bit 0 counts */
    CHECK(!level(&msip_rx[1]));
    CHECK_EQ_U64(rd(c, 0x4, 4), 0);
    wr(c, 0x0, 4, 0xffffffff);
    CHECK(level(&msip_rx[0]));
    CHECK_EQ_U64(rd(c, 0x0, 4), 1);
    wr(c, 0x0, 4, 0);
    CHECK(!level(&msip_rx[0]));

    /* msip is 4-byte only; harts the CLINT lacks read 0 and ignore writes. */
    CHECK(clint_mmio_ops.read(c, 0x0, 8, &v) == -1);
    CHECK(clint_mmio_ops.write(c, 0x0, 8, 1) == -1);
    CHECK(!level(&msip_rx[0]));
    wr(c, 4 * NHARTS, 4, 1);
    CHECK_EQ_U64(rd(c, 4 * NHARTS, 4), 0);
    CHECK_EQ_U64(rd(c, 0x3ffc, 4), 0);
    CHECK_EQ_U64(rd(c, cmp_off(NHARTS), 8), 0);
    CHECK_EQ_U64(rd(c, 0xc000, 4), 0); /* past mtime */
}

static void test_mtimecmp_halves(struct clint *c)
{
    CHECK_EQ_U64(rd(c, cmp_off(1), 8), UINT64_MAX); /* reset value: never due */
    CHECK_EQ_U64(rd(c, cmp_off(1), 4), 0xffffffffu);
    CHECK_EQ_U64(rd(c, cmp_off(1) + 4, 4), 0xffffffffu);

    /* The RV32 sequence of privileged spec §3.2.1: low half to all ones first. */
    wr(c, cmp_off(1), 4, 0xffffffffu);
    wr(c, cmp_off(1) + 4, 4, 0x9abcdef0u);
    wr(c, cmp_off(1), 4, 0x12345678u);
    CHECK_EQ_U64(rd(c, cmp_off(1), 8), 0x9abcdef012345678ull);
    CHECK_EQ_U64(rd(c, cmp_off(1), 4), 0x12345678u);
    CHECK_EQ_U64(rd(c, cmp_off(1) + 4, 4), 0x9abcdef0u);
    CHECK(!level(&mtip_rx[1]));
    CHECK_EQ_U64(rd(c, cmp_off(0), 8), UINT64_MAX); /* the other hart untouched */
}

/* A deadline in the past raises MTIP at once; one in the far future lowers it at once. */
static void test_immediate_levels(struct clint *c)
{
    wr(c, cmp_off(0), 8, 0);
    CHECK(level(&mtip_rx[0]));
    CHECK(!level(&mtip_rx[1]));
    wr(c, cmp_off(0), 8, UINT64_MAX);
    CHECK(!level(&mtip_rx[0]));

    wr(c, cmp_off(0), 8, rd(c, 0xbff8, 8)); /* already due: mtime >= mtimecmp */
    CHECK(level(&mtip_rx[0]));
    wr(c, cmp_off(0) + 4, 4, 0xffffffffu); /* high half far ahead */
    CHECK(!level(&mtip_rx[0]));
    wr(c, cmp_off(0), 8, UINT64_MAX);
}

/* The timer thread raises MTIP once the deadline passes, and never before it. */
static void test_timer_fires(struct clint *c)
{
    uint64_t cmp = rd(c, 0xbff8, 8) + MS_TICKS;
    bool was;

    wr(c, cmp_off(0), 8, cmp);
    was = level(&mtip_rx[0]);
    CHECK(!was || clint_time(c) >= cmp); /* high only if already due */
    CHECK(wait_level(&mtip_rx[0], true, 200));
    CHECK(clint_time(c) >= cmp);
    CHECK(!level(&mtip_rx[1]));

    wr(c, cmp_off(0), 8, rd(c, 0xbff8, 8) + 3600 * FREQ); /* an hour ahead */
    CHECK(!level(&mtip_rx[0]));
    sleep_ms(20);
    CHECK(!level(&mtip_rx[0]));
}

/* Two harts, two deadlines; and a nearer deadline written while the thread sleeps towards a
 * far one must wake it early. */
static void test_timer_two_harts_and_rearm(struct clint *c)
{
    uint64_t now = rd(c, 0xbff8, 8);
    uint64_t cmp0 = now + 5 * MS_TICKS, cmp1 = now + 30 * MS_TICKS;

    wr(c, cmp_off(1), 8, cmp1);
    wr(c, cmp_off(0), 8, cmp0);
    CHECK(wait_level(&mtip_rx[0], true, 500));
    CHECK(!level(&mtip_rx[1]) || clint_time(c) >= cmp1);
    CHECK(wait_level(&mtip_rx[1], true, 500));
    CHECK(clint_time(c) >= cmp1);

    wr(c, cmp_off(0), 8, UINT64_MAX);
    wr(c, cmp_off(1), 8, rd(c, 0xbff8, 8) + 10 * FREQ); /* thread now sleeps ~10 s */
    CHECK(!level(&mtip_rx[0]) && !level(&mtip_rx[1]));
    sleep_ms(5);
    wr(c, cmp_off(1), 8, rd(c, 0xbff8, 8) + 2 * MS_TICKS);
    CHECK(wait_level(&mtip_rx[1], true, 200));
    wr(c, cmp_off(1), 8, UINT64_MAX);
    CHECK(!level(&mtip_rx[1]));
}

/* Writing mtime re-evaluates every hart at once: forward past a deadline raises, back before
 * it lowers. */
static void test_mtime_write_levels(struct clint *c)
{
    wr(c, 0xbff8, 8, 0);
    wr(c, cmp_off(0), 8, 1000 * FREQ);
    CHECK(!level(&mtip_rx[0]));
    wr(c, 0xbff8, 8, 1000 * FREQ + 5);
    CHECK(level(&mtip_rx[0]));
    CHECK(!level(&mtip_rx[1]));
    wr(c, 0xbff8, 8, 0);
    CHECK(!level(&mtip_rx[0]));
    wr(c, cmp_off(0), 8, UINT64_MAX);
}

/* clint_set_mtime(), the board's typed way to restart a frozen guest clock, is the same as a
 * guest's 8-byte mtime store: the value reads back and the lines follow it at once. */
static void test_set_mtime(struct clint *c)
{
    wr(c, cmp_off(1), 8, 500 * FREQ);
    clint_set_mtime(c, 400 * FREQ);
    CHECK(!level(&mtip_rx[1]));
    CHECK(rd(c, 0xbff8, 8) >= 400 * FREQ);
    CHECK(rd(c, 0xbff8, 8) < 460 * FREQ);
    clint_set_mtime(c, 500 * FREQ);
    CHECK(level(&mtip_rx[1]));
    CHECK(!level(&mtip_rx[0]));
    CHECK(clint_time(c) >= 500 * FREQ);
    clint_set_mtime(c, 0);
    CHECK(!level(&mtip_rx[1]));
    wr(c, cmp_off(1), 8, UINT64_MAX);
}

static void test_reset(struct clint *c)
{
    wr(c, 0x0, 4, 1);
    wr(c, cmp_off(1), 8, 0);
    wr(c, 0xbff8, 8, 1ull << 40);
    CHECK(level(&msip_rx[0]) && level(&mtip_rx[1]));
    clint_reset(c);
    CHECK(!level(&msip_rx[0]) && !level(&mtip_rx[1]));
    CHECK_EQ_U64(rd(c, 0x0, 4), 0);
    CHECK_EQ_U64(rd(c, cmp_off(1), 8), UINT64_MAX);
    CHECK(rd(c, 0xbff8, 8) < 60 * FREQ);
    sleep_ms(10);
    CHECK(!level(&mtip_rx[1]));
}

/* vCPU threads rewrite their own hart's mtimecmp while the timer thread fires: whatever the
 * interleaving, a final far-future write must leave MTIP low (no stale raise after it). */
struct hammer {
    struct clint *c;
    unsigned hart;
};

static void *hammer_main(void *opaque)
{
    struct hammer *h = opaque;

    for (unsigned i = 0; i < 3000; i++) {
        uint64_t now = clint_time(h->c);

        clint_mmio_ops.write(h->c, cmp_off(h->hart), 8, (i & 1) ? now + (i % 7) * 1000 : now);
        clint_mmio_ops.write(h->c, h->hart * 4, 4, i & 1);
    }
    clint_mmio_ops.write(h->c, cmp_off(h->hart), 8, UINT64_MAX);
    clint_mmio_ops.write(h->c, h->hart * 4, 4, 0);
    return NULL;
}

static void test_concurrency(struct clint *c)
{
    pthread_t t[NHARTS];
    struct hammer h[NHARTS];

    for (unsigned i = 0; i < NHARTS; i++) {
        h[i] = (struct hammer){.c = c, .hart = i};
        CHECK(pthread_create(&t[i], NULL, hammer_main, &h[i]) == 0);
    }
    for (unsigned i = 0; i < NHARTS; i++)
        pthread_join(t[i], NULL);
    sleep_ms(10);
    for (unsigned i = 0; i < NHARTS; i++) {
        CHECK(!level(&mtip_rx[i]));
        CHECK(!level(&msip_rx[i]));
    }
}

/* Sstc: each hart's stimecmp drives its STIP line exactly as mtimecmp drives MTIP (at once
 * on a write, by the timer thread when time reaches it, again on an mtime write), and the two
 * comparators of a hart are independent. */
static void test_stimecmp(struct clint *c)
{
    uint64_t now, cmp;

    CHECK(!level(&stip_rx[0]) && !level(&stip_rx[1]));
    clint_set_stimecmp(c, 1, 0);
    CHECK(level(&stip_rx[1]));
    CHECK(!level(&stip_rx[0]) && !level(&mtip_rx[1]));
    clint_set_stimecmp(c, 1, UINT64_MAX);
    CHECK(!level(&stip_rx[1]));
    clint_set_stimecmp(c, NHARTS, 0); /* no such hart: ignored */

    now = clint_time(c);
    cmp = now + 2 * MS_TICKS;
    wr(c, cmp_off(0), 8, now + 3600 * FREQ); /* MTIP far away: the thread sleeps towards it */
    clint_set_stimecmp(c, 0, cmp);
    CHECK(!level(&stip_rx[0]) || clint_time(c) >= cmp);
    CHECK(wait_level(&stip_rx[0], true, 200));
    CHECK(clint_time(c) >= cmp);
    CHECK(!level(&mtip_rx[0]) && !level(&stip_rx[1]));

    /* an mtime write moves it both ways at once */
    clint_set_stimecmp(c, 0, 1000 * FREQ);
    wr(c, 0xbff8, 8, 0);
    CHECK(!level(&stip_rx[0]));
    clint_set_mtime(c, 1000 * FREQ + 5);
    CHECK(level(&stip_rx[0]));

    /* reset lowers the line; the hart resets (and hands over) its own stimecmp */
    clint_reset(c);
    CHECK(!level(&stip_rx[0]));
    clint_set_stimecmp(c, 0, UINT64_MAX);
    sleep_ms(5);
    CHECK(!level(&stip_rx[0]) && !level(&mtip_rx[0]));
}

int main(void)
{
    struct irq_line ms[NHARTS], mt[NHARTS], st[NHARTS];
    struct clint *c = NULL;

    for (unsigned i = 0; i < NHARTS; i++) {
        ms[i] = (struct irq_line){.set = fake_irq_set, .opaque = msip_rx, .n = i};
        mt[i] = (struct irq_line){.set = fake_irq_set, .opaque = mtip_rx, .n = i};
        st[i] = (struct irq_line){.set = fake_irq_set, .opaque = stip_rx, .n = i};
    }
    test_create_args(ms, mt);
    CHECK(clint_create(NHARTS, FREQ, ms, mt, &c) == 0);
    if (!c)
        return test_finish("hw_clint");
    test_mtime(c);
    clint_reset(c);
    test_msip(c);
    test_mtimecmp_halves(c);
    clint_reset(c);
    test_immediate_levels(c);
    test_timer_fires(c);
    test_timer_two_harts_and_rearm(c);
    test_mtime_write_levels(c);
    test_set_mtime(c);
    test_reset(c);
    test_concurrency(c);
    clint_reset(c);
    CHECK(clint_set_stip_lines(c, st) == 0);
    test_stimecmp(c);
    clint_destroy(c);
    return test_finish("hw_clint");
}
