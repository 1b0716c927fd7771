/* The daemon's metric history (daemon/history.h): the fine ring keeps the last 10 minutes in
 * order, older points are averaged into 30 s buckets for the hour, unknown values stay unknown
 * (null) and do not drag averages down, ?since= cuts, a clock set back is ignored; rates come
 * from counter differences and reset when the VMM restarts or a counter goes back. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "daemon/history.h"
#include "test.h"

static const char *const names[2] = {"a", "b"};

static struct history_ring *ring_new(void)
{
    struct history_ring *r = malloc(sizeof(*r));

    if (!r)
        abort();
    history_ring_init(r, 2);
    return r;
}

static double at(const json_t *col, size_t i)
{
    return json_number_value(json_array_get(col, i));
}

/* Times ascend strictly through the whole answer. */
static bool ascending(const json_t *t)
{
    for (size_t i = 1; i < json_array_size(t); i++)
        if (at(t, i) <= at(t, i - 1))
            return false;
    return true;
}

static void test_fine_ring(void)
{
    struct history_ring *r = ring_new();
    json_t *j, *t;
    double v[2];

    j = history_ring_json(r, names, 0);
    CHECK(j && json_array_size(json_object_get(j, "t")) == 0 &&
          json_array_size(json_object_get(j, "a")) == 0);
    json_decref(j);
    /* 20 points 2 s apart from t = 1000 s: all fine, one bucket closed (1000..1020 s is
     * bucket 33, 1020.. bucket 34). */
    for (int i = 0; i < 20; i++) {
        v[0] = i;
        v[1] = 100 + i;
        history_ring_add(r, 1000000 + 2000 * i, v);
    }
    j = history_ring_json(r, names, 0);
    t = json_object_get(j, "t");
    CHECK(json_array_size(t) == 20);
    CHECK(at(t, 0) == 1000.0 && at(t, 19) == 1038.0);
    CHECK(at(json_object_get(j, "a"), 5) == 5 && at(json_object_get(j, "b"), 19) == 119);
    json_decref(j);
    /* A point dated before the newest (a clock set back) is ignored. */
    v[0] = v[1] = 7;
    history_ring_add(r, 1000000, v);
    j = history_ring_json(r, names, 0);
    CHECK(json_array_size(json_object_get(j, "t")) == 20);
    json_decref(j);
    /* since cuts: only points after 1030 s. */
    j = history_ring_json(r, names, 1030000);
    CHECK(json_array_size(json_object_get(j, "t")) == 4 && at(json_object_get(j, "t"), 0) == 1032);
    json_decref(j);
    free(r);
}

static void test_consolidation(void)
{
    struct history_ring *r = ring_new();
    const int n = 3600 + 120; /* an hour and two minutes of points, 1 s apart */
    json_t *j, *t, *a, *b;
    size_t coarse, i;
    double v[2];

    /* Bucket k (30 s: 30 points) holds a = k*30 .. k*30+29: its average is k*30 + 14.5. b is
     * unknown in every other point, so its average is of the known (even) ones alone:
     * 2 * (k*30 + 14). */
    for (int k = 0; k < n; k++) {
        v[0] = k;
        v[1] = k % 2 ? NAN : 2.0 * k;
        history_ring_add(r, (int64_t)k * 1000, v);
    }
    j = history_ring_json(r, names, -1);
    t = json_object_get(j, "t");
    a = json_object_get(j, "a");
    b = json_object_get(j, "b");
    CHECK(ascending(t));
    CHECK(json_array_size(a) == json_array_size(t) && json_array_size(b) == json_array_size(t));
    /* The fine ring holds the last 600 points: 3120..3719 s. Buckets 0..122 are complete
     * (123 is still filling); the coarse ring keeps the last 120 of them, 3..122; shown are
     * those that end before the first fine point: 3..103. */
    CHECK(HISTORY_FINE_N == 600 && HISTORY_COARSE_N == 120);
    coarse = json_array_size(t) - HISTORY_FINE_N;
    CHECK(coarse == 101);
    CHECK(at(t, 0) == 3 * 30.0 && at(a, 0) == 3 * 30 + 14.5);
    CHECK(at(b, 0) == 2.0 * (3 * 30 + 14));
    CHECK(at(t, coarse - 1) == 103 * 30.0 && at(a, coarse - 1) == 103 * 30 + 14.5);
    /* Then every fine point, with null where b was unknown. */
    CHECK(at(t, coarse) == 3120.0 && at(a, coarse) == 3120);
    CHECK(json_is_null(json_array_get(b, coarse + 1)) && at(b, coarse) == 6240);
    CHECK(at(t, json_array_size(t) - 1) == (n - 1) * 1.0);
    for (i = 0; i < coarse; i++)
        CHECK(at(a, i) == (3 + (double)i) * 30 + 14.5);
    json_decref(j);

    /* A field never known in a bucket averages to null, not 0. */
    history_ring_init(r, 2);
    for (int k = 0; k < 40; k++) {
        v[0] = 1;
        v[1] = NAN;
        history_ring_add(r, (int64_t)k * 2000, v);
    }
    CHECK(r->coarse_n == 2 && isnan(r->coarse[0].v[1]) && r->coarse[0].v[0] == 1);
    /* The bound history.h states: a ring is about 34 KiB. */
    CHECK(sizeof(struct history_ring) < 35 * 1024);
    /* Values print with a float's digits, not a double's. */
    history_ring_init(r, 2);
    v[0] = 0.1;
    v[1] = 1e9 / 3;
    history_ring_add(r, 0, v);
    j = history_ring_json(r, names, -1);
    CHECK(at(json_object_get(j, "a"), 0) == 0.1 && at(json_object_get(j, "b"), 0) == 333333300);
    json_decref(j);
    free(r);
}

static void test_rates(void)
{
    struct history_counters a = {.pid = 10,
                                 .mono_ns = 1000000000,
                                 .cpu_s = 5.0,
                                 .rd_bytes = 1000,
                                 .wr_ops = 3,
                                 .rx_bytes = 50,
                                 .wait_ns = 1000000000},
                            b = a;
    double v[HISTORY_FIELDS];

    /* 2 s later: 3 s of CPU on 2 vCPUs is 0.75 of them, 1 s waited 0.25; 4000 bytes read:
     * 2000 B/s. */
    a.have_wait = b.have_wait = true;
    b.mono_ns += 2000000000;
    b.cpu_s += 3.0;
    b.wait_ns += 1000000000;
    b.rd_bytes += 4000;
    b.wr_ops += 10;
    b.tx_bytes += 1000;
    CHECK(history_rates(&a, &b, 2, v));
    CHECK(fabs(v[HISTORY_VM_CPU] - 0.75) < 1e-9 && fabs(v[HISTORY_VM_CPU_WAIT] - 0.25) < 1e-9);
    CHECK(v[HISTORY_VM_DISK_RD_BPS] == 2000 && v[HISTORY_VM_DISK_WR_IOPS] == 5);
    CHECK(v[HISTORY_VM_NET_RX_BPS] == 0 && v[HISTORY_VM_NET_TX_BPS] == 500);
    /* No previous sample, a restarted VMM (another pid), a counter gone back, no time
     * between: no rates, all NaN. */
    CHECK(!history_rates(NULL, &b, 2, v) && isnan(v[HISTORY_VM_CPU]));
    /* A wait that went back (a thread exited) or was not read: unknown, the rest stands. */
    b.wait_ns = 0;
    CHECK(history_rates(&a, &b, 2, v) && isnan(v[HISTORY_VM_CPU_WAIT]) && v[HISTORY_VM_CPU] > 0);
    b.wait_ns = 2000000000;
    b.have_wait = false;
    CHECK(history_rates(&a, &b, 2, v) && isnan(v[HISTORY_VM_CPU_WAIT]));
    b.pid = 11;
    CHECK(!history_rates(&a, &b, 2, v) && isnan(v[HISTORY_VM_NET_TX_BPS]));
    b.pid = 10;
    b.cpu_s = 1.0;
    CHECK(!history_rates(&a, &b, 2, v) && isnan(v[HISTORY_VM_CPU]));
    b = a;
    CHECK(!history_rates(&a, &b, 2, v) && isnan(v[HISTORY_VM_DISK_RD_BPS]));
}

int main(void)
{
    test_fine_ring();
    test_consolidation();
    test_rates();
    return test_finish("history");
}
