/* Token buckets on a virtual clock: a limited stream goes at its rate (whatever the request
 * sizes, oversize ones included), a burst banks what it says and no more, a live change takes
 * effect for a waiting request, unlimited never waits, and huge values neither overflow nor
 * wrap. */
#include "test.h"

#include <errno.h>
#include <stdbool.h>

#include "base/ratelimit.h"

#define MS 1000000ull
#define S  1000000000ull

/* Sends `count` requests of (bytes, ops) as fast as the limiter allows, each waiting exactly
 * as long as it was told to, starting at *now; returns when the last one went and leaves the
 * clock there. */
static void drive(struct ratelimit *rl, uint64_t bytes, uint64_t ops, unsigned count, uint64_t *now)
{
    for (unsigned i = 0; i < count; i++) {
        uint64_t wait;
        unsigned tries = 0;

        while (!ratelimit_consume(rl, bytes, ops, *now, &wait)) {
            *now += wait;
            if (++tries > 4) /* a wait that was not enough more than once is a bug */
                break;
        }
        CHECK(tries <= 2);
    }
}

/* Within `pct` percent of want. */
static bool near(double got, double want, double pct)
{
    return got >= want * (1 - pct / 100) && got <= want * (1 + pct / 100);
}

static void test_bytes_rate(void)
{
    struct ratelimit rl;
    uint64_t now = 5 * S, start;

    /* 10 MiB/s in 64 KiB requests: 160 of them after the first full bucket take 1 s. */
    ratelimit_init(&rl, now);
    ratelimit_set(&rl, RATELIMIT_BYTES, 10 << 20, 0, now);
    drive(&rl, 64 << 10, 1, 8, &now); /* empty the initial bucket (50 ms: 512 KiB) */
    start = now;
    drive(&rl, 64 << 10, 1, 160, &now);
    CHECK(near((double)(now - start), (double)S, 1));
}

static void test_oversize_requests(void)
{
    struct ratelimit rl;
    uint64_t now = 0, start, wait;

    /* A 1 MiB request on a 512 KiB bucket goes once the bucket is full, and leaves a debt the
     * next request waits for: ten of them at 10 MiB/s take ~1 s, never fail. */
    ratelimit_init(&rl, now);
    ratelimit_set(&rl, RATELIMIT_BYTES, 10 << 20, 0, now);
    CHECK(ratelimit_consume(&rl, 1 << 20, 1, now, &wait));
    CHECK(!ratelimit_check(&rl, 1, 1, now, &wait));
    CHECK(wait > 45 * MS && wait < 55 * MS); /* the 1 MiB debt minus the 512 KiB bucket */
    start = now;
    drive(&rl, 1 << 20, 1, 10, &now);
    CHECK(near((double)(now - start), (double)S, 2));
}

static void test_ops_rate(void)
{
    struct ratelimit rl;
    uint64_t now = 123, start;

    ratelimit_init(&rl, now);
    ratelimit_set(&rl, RATELIMIT_OPS, 500, 0, now);
    drive(&rl, 4096, 1, 25, &now); /* the 50 ms tick banks 25 */
    start = now;
    drive(&rl, 4096, 1, 1000, &now);
    CHECK(near((double)(now - start), 2.0 * S, 0.5));

    /* Both buckets: the tighter one decides. */
    ratelimit_set(&rl, RATELIMIT_BYTES, 1 << 20, 0, now);
    drive(&rl, 4096, 1, 200, &now);
    start = now;
    drive(&rl, 4096, 1, 256, &now); /* 1 MiB at 1 MiB/s: 1 s; 256 ops at 500/s: 0.5 s */
    CHECK(near((double)(now - start), (double)S, 2));
}

static void test_slow_rate_has_a_token(void)
{
    struct ratelimit rl;
    uint64_t now = 0, start;

    /* 10 ops/s banks half a token per tick: still one op at a time, at 10/s. */
    ratelimit_init(&rl, now);
    ratelimit_set(&rl, RATELIMIT_OPS, 10, 0, now);
    drive(&rl, 0, 1, 1, &now);
    start = now;
    drive(&rl, 0, 1, 20, &now);
    CHECK(near((double)(now - start), 2.0 * S, 1));
}

static void test_burst(void)
{
    struct ratelimit rl;
    uint64_t now = 0, wait;
    unsigned n = 0;

    /* 100 ops/s with a burst of 50: after a long idle time, 5 (the tick) + 50 go at once. */
    ratelimit_init(&rl, now);
    ratelimit_set(&rl, RATELIMIT_OPS, 100, 50, now);
    now += 60 * S;
    while (ratelimit_consume(&rl, 0, 1, now, &wait))
        n++;
    CHECK_EQ_U64(n, 55);
    CHECK(wait > 0 && wait <= 10 * MS);

    /* No burst: only the tick's worth banks, however long it was idle. */
    ratelimit_set(&rl, RATELIMIT_OPS, 100, 0, now);
    now += 3600 * S;
    for (n = 0; ratelimit_consume(&rl, 0, 1, now, &wait);)
        n++;
    CHECK_EQ_U64(n, 5);
}

static void test_live_change(void)
{
    struct ratelimit rl;
    uint64_t now = 0, wait, wait2;

    /* A request waiting at 1 KiB/s is told a much shorter wait once the rate goes up. */
    ratelimit_init(&rl, now);
    ratelimit_set(&rl, RATELIMIT_BYTES, 1024, 0, now);
    CHECK(ratelimit_consume(&rl, 4096, 0, now, &wait));
    CHECK(!ratelimit_check(&rl, 4096, 0, now, &wait));
    CHECK(wait > 2 * S);
    now += 100 * MS;
    ratelimit_set(&rl, RATELIMIT_BYTES, 1 << 20, 0, now);
    CHECK(!ratelimit_check(&rl, 4096, 0, now, &wait2));
    CHECK(wait2 < 10 * MS);
    now += wait2;
    CHECK(ratelimit_consume(&rl, 4096, 0, now, &wait));

    /* Set to unlimited mid-wait: it goes at once. */
    ratelimit_set(&rl, RATELIMIT_BYTES, 1, 0, now);
    CHECK(!ratelimit_check(&rl, 1 << 20, 0, now, &wait));
    CHECK(wait >= S / 2);
    ratelimit_set(&rl, RATELIMIT_BYTES, 0, 0, now);
    CHECK(ratelimit_consume(&rl, 1 << 20, 0, now, &wait));
    CHECK(!ratelimit_limited(&rl));
}

static void test_unlimited(void)
{
    struct ratelimit rl;
    uint64_t wait = 77;

    ratelimit_init(&rl, 0);
    CHECK(!ratelimit_limited(&rl));
    for (unsigned i = 0; i < 1000; i++)
        CHECK(ratelimit_consume(&rl, UINT64_MAX, UINT64_MAX, 0, &wait) && wait == 0);
    /* A limited bytes bucket leaves ops unlimited. */
    ratelimit_set(&rl, RATELIMIT_BYTES, 1000, 0, 0);
    CHECK(ratelimit_limited(&rl));
    CHECK(ratelimit_consume(&rl, 0, 1000000, 0, &wait));
}

static void test_huge_values(void)
{
    struct ratelimit rl;
    uint64_t now = UINT64_MAX - 10000 * S, wait;

    /* The largest rate and burst, costs and times near the top of uint64: no wrap. */
    ratelimit_init(&rl, now);
    ratelimit_set(&rl, RATELIMIT_BYTES, UINT64_MAX, UINT64_MAX, now);
    ratelimit_set(&rl, RATELIMIT_OPS, UINT64_MAX, UINT64_MAX, now);
    CHECK(ratelimit_consume(&rl, UINT64_MAX, UINT64_MAX, now, &wait));
    CHECK(!ratelimit_check(&rl, UINT64_MAX, 1, now, &wait));
    CHECK(wait > 0 && wait < 1000 * S);
    now += wait;
    CHECK(ratelimit_consume(&rl, UINT64_MAX, 1, now, &wait));

    /* The slowest rate with the largest request: a long wait, still finite and positive.
     * (Through unlimited, which forgets the debt; a bucket that becomes limited starts full.) */
    ratelimit_set(&rl, RATELIMIT_BYTES, 0, 0, now);
    ratelimit_set(&rl, RATELIMIT_BYTES, 1, 0, now);
    CHECK(ratelimit_consume(&rl, 1, 0, now, &wait));
    CHECK(!ratelimit_check(&rl, UINT64_MAX, 0, now, &wait));
    CHECK(wait >= S);

    /* A clock that goes back counts as no time passing. */
    CHECK(!ratelimit_check(&rl, 1, 0, now - 5 * S, &wait));
    CHECK(wait >= S);
}

static void test_parse(void)
{
    uint64_t v = 0;

    CHECK(ratelimit_parse("0", true, &v) == 0 && v == 0);
    CHECK(ratelimit_parse("500", false, &v) == 0 && v == 500);
    CHECK(ratelimit_parse("10M", true, &v) == 0 && v == 10ull << 20);
    CHECK(ratelimit_parse("4KiB", true, &v) == 0 && v == 4096);
    CHECK(ratelimit_parse("1GB", true, &v) == 0 && v == 1ull << 30);
    CHECK(ratelimit_parse("64T", true, &v) == 0 && v == 64ull << 40);
    CHECK(ratelimit_parse("10M", false, &v) == -EINVAL);
    CHECK(ratelimit_parse("", true, &v) == -EINVAL);
    CHECK(ratelimit_parse("-1", true, &v) == -EINVAL);
    CHECK(ratelimit_parse(" 1", true, &v) == -EINVAL);
    CHECK(ratelimit_parse("1.5M", true, &v) == -EINVAL);
    CHECK(ratelimit_parse("1Mx", true, &v) == -EINVAL);
    CHECK(ratelimit_parse("99999999999999999999999", true, &v) == -EINVAL);
    CHECK(ratelimit_parse("65537T", true, &v) == -EINVAL); /* above the 2^56 cap */
}

int main(void)
{
    test_bytes_rate();
    test_oversize_requests();
    test_ops_rate();
    test_slow_rate_has_a_token();
    test_burst();
    test_live_change();
    test_unlimited();
    test_huge_values();
    test_parse();
    return test_finish("test_ratelimit");
}
