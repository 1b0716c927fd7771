/* base/ticker: the periodic thread the daemon's sampler and balloon policy run on. */
#include "base/ticker.h"

#include <errno.h>
#include <stdatomic.h>
#include <time.h>

#include "base/time.h"
#include "test.h"

struct counter {
    atomic_uint calls;
    atomic_ullong first_ns;
    uint64_t start_ns[8]; /* when each of the first calls began (written by the ticker only) */
};

static void count(void *arg)
{
    struct counter *c = arg;
    unsigned long long zero = 0;

    atomic_compare_exchange_strong(&c->first_ns, &zero, time_now_ns());
    atomic_fetch_add(&c->calls, 1);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static void slow(void *arg)
{
    struct counter *c = arg;
    unsigned k = atomic_load(&c->calls);

    if (k < 8)
        c->start_ns[k] = time_now_ns();
    atomic_fetch_add(&c->calls, 1);
    sleep_ms(30); /* three periods of 10 ms */
}

int main(void)
{
    struct ticker t;
    struct counter c = {0};
    uint64_t t0 = time_now_ns();
    unsigned n;

    CHECK(ticker_start(&t, 0, count, &c) == -EINVAL);

    /* The first call comes at once, not a period later: a one-hour period still calls fn,
     * and stop wakes the thread from its wait rather than leaving it for the hour. */
    CHECK(ticker_start(&t, 3600ull * 1000000000u, count, &c) == 0);
    while (!atomic_load(&c.calls))
        sleep_ms(1);
    ticker_stop(&t);
    CHECK(atomic_load(&c.calls) == 1);
    CHECK(atomic_load(&c.first_ns) >= t0);

    /* A 5 ms period over 200 ms: rounds keep coming (the lower bound is loose: the host is
     * busy). */
    atomic_store(&c.calls, 0);
    t0 = time_now_ns();
    CHECK(ticker_start(&t, 5000000u, count, &c) == 0);
    sleep_ms(200);
    ticker_stop(&t);
    n = atomic_load(&c.calls);
    /* Never more than one call per period of the time it ran: no catch-up bursts. */
    CHECK(n >= 3 && n <= (time_now_ns() - t0) / 5000000u + 1);
    sleep_ms(20);
    CHECK(atomic_load(&c.calls) == n); /* stopped means no more calls */

    /* A round three periods long: the ticks it overran are skipped, not run back to back, so
     * the next round begins a whole period after it ended (sleeps are never short, so these
     * lower bounds hold however busy the host is). */
    atomic_store(&c.calls, 0);
    CHECK(ticker_start(&t, 10000000u, slow, &c) == 0);
    while (atomic_load(&c.calls) < 3)
        sleep_ms(5);
    ticker_stop(&t);
    for (unsigned k = 1; k < 3; k++)
        CHECK(c.start_ns[k] - c.start_ns[k - 1] >= 40000000u);
    return test_finish("ticker");
}
