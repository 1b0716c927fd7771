/* The event bus (src/daemon/events.h): sequence numbers, a tenant sees only its own events,
 * resuming from a cursor, a reader that fell behind skips to the oldest held event and is told
 * how many it missed (the ring, not the reader, bounds memory), cancelling a waiting reader,
 * and a reader in another thread woken by a publish. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/events.h"
#include "test.h"

static struct events_bus *bus;

/* Reads the next event after *cursor for tenant without waiting: its seq, or 0 for none. */
static uint64_t next(uint64_t *cursor, const char *tenant, char *type, uint64_t *missed)
{
    struct events_event ev;
    uint64_t m;
    int ret = events_next(bus, cursor, tenant, 0, NULL, &ev, missed ? missed : &m);

    if (ret) {
        CHECK(ret == -ETIMEDOUT);
        return 0;
    }
    if (type)
        strcpy(type, ev.type);
    free(ev.data);
    return ev.seq;
}

static void test_filter_and_resume(void)
{
    char type[EVENTS_TYPE_LEN];
    uint64_t cur = 0, missed;

    CHECK(events_last_seq(bus) == 0);
    CHECK(events_publish(bus, "alpha", "vm.state", "{\"name\":\"a1\"}") == 0);
    CHECK(events_publish(bus, "beta", "vm.state", "{\"name\":\"b1\"}") == 0);
    CHECK(events_publish(bus, "", "tenant.create", "{\"name\":\"gamma\"}") == 0);
    CHECK(events_publish(bus, "alpha", "token.create", "{\"id\":\"x\"}") == 0);
    CHECK(events_last_seq(bus) == 4);

    /* alpha sees 1 and 4, never beta's 2 or the platform's 3. */
    CHECK(next(&cur, "alpha", type, &missed) == 1 && !strcmp(type, "vm.state") && !missed);
    CHECK(next(&cur, "alpha", type, NULL) == 4 && !strcmp(type, "token.create"));
    CHECK(next(&cur, "alpha", NULL, NULL) == 0 && cur == 4);
    /* Every tenant's: all four, in order. */
    cur = 0;
    CHECK(next(&cur, NULL, NULL, NULL) == 1 && next(&cur, NULL, NULL, NULL) == 2);
    CHECK(next(&cur, NULL, NULL, NULL) == 3 && next(&cur, NULL, NULL, NULL) == 4);
    /* Resuming after 2 (Last-Event-ID: 2) gives beta nothing more; alpha 4. */
    cur = 2;
    CHECK(next(&cur, "beta", NULL, NULL) == 0);
    cur = 2;
    CHECK(next(&cur, "alpha", NULL, NULL) == 4);
    /* A cursor from the future (a daemon restarted) is the newest. */
    cur = 1000;
    CHECK(next(&cur, NULL, NULL, NULL) == 0 && cur == 4);
    /* The data is a copy, as published. */
    {
        struct events_event ev;
        cur = 0;
        CHECK(events_next(bus, &cur, "beta", 0, NULL, &ev, &missed) == 0);
        CHECK(ev.seq == 2 && !strcmp(ev.data, "{\"name\":\"b1\"}") && !strcmp(ev.tenant, "beta"));
        free(ev.data);
    }
}

static void test_refused(void)
{
    char big[EVENTS_DATA_MAX + 2];

    CHECK(events_publish(bus, "alpha", "", "{}") == -EINVAL);
    CHECK(events_publish(bus, "alpha", "Vm State", "{}") == -EINVAL);
    CHECK(events_publish(bus, "alpha", "vm.state", "") == -EINVAL);
    /* A line break would end the SSE data: field and let data forge another event. */
    CHECK(events_publish(bus, "alpha", "vm.state", "{}\n\nevent: x") == -EINVAL);
    CHECK(events_publish(bus, "alpha", "vm.state", "{}\r") == -EINVAL);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CHECK(events_publish(bus, "alpha", "vm.state", big) == -EINVAL);
    big[EVENTS_DATA_MAX] = '\0';
    CHECK(events_publish(bus, "alpha", "vm.state", big) == 0);
}

/* A reader that stopped for three rings' worth of events: it skips to the oldest held and is
 * told the count it missed; the bus held no more than EVENTS_RING meanwhile. */
static void test_slow_reader(void)
{
    uint64_t cur = events_last_seq(bus), start = cur, missed, seq, got = 0;
    size_t i;

    for (i = 0; i < 3 * EVENTS_RING; i++)
        CHECK(events_publish(bus, i % 2 ? "alpha" : "beta", "vm.state", "{}") == 0);
    seq = next(&cur, NULL, NULL, &missed);
    CHECK_EQ_U64(missed, 2 * EVENTS_RING);
    CHECK_EQ_U64(seq, start + 2 * EVENTS_RING + 1);
    for (got = 1; next(&cur, NULL, NULL, &missed); got++)
        CHECK(missed == 0);
    CHECK_EQ_U64(got, EVENTS_RING);
    CHECK_EQ_U64(cur, events_last_seq(bus));
}

struct waiter {
    uint64_t cursor;
    atomic_bool cancel;
    int ret;
    uint64_t seq;
};

static void *wait_thread(void *arg)
{
    struct waiter *w = arg;
    struct events_event ev;
    uint64_t missed;

    /* Long enough that only a publish or a cancel ends it in a passing run. */
    w->ret = events_next(bus, &w->cursor, "alpha", 60000, &w->cancel, &ev, &missed);
    if (!w->ret) {
        w->seq = ev.seq;
        free(ev.data);
    }
    return NULL;
}

static void test_wakeups(void)
{
    struct waiter w = {.cursor = events_last_seq(bus)};
    pthread_t t;

    /* A publish for another tenant does not end the wait; one for alpha does. */
    CHECK(pthread_create(&t, NULL, wait_thread, &w) == 0);
    CHECK(events_publish(bus, "beta", "vm.state", "{}") == 0);
    CHECK(events_publish(bus, "alpha", "vm.state", "{}") == 0);
    pthread_join(t, NULL);
    CHECK(w.ret == 0 && w.seq == events_last_seq(bus));

    /* A cancel set before the wait starts, or while it waits, ends it. */
    atomic_store(&w.cancel, false);
    CHECK(pthread_create(&t, NULL, wait_thread, &w) == 0);
    atomic_store(&w.cancel, true);
    events_wake(bus);
    pthread_join(t, NULL);
    CHECK(w.ret == -ECANCELED);
}

int main(void)
{
    CHECK(events_bus_new(&bus) == 0);
    test_filter_and_resume();
    test_refused();
    test_slow_reader();
    test_wakeups();
    events_bus_free(bus);
    return test_finish("events");
}
