/* The balloon policy's decisions (daemon/mempolicy.h): reclaim under pressure by idle memory
 * over shares, never below a reservation or into the guest's margin, give back without
 * pressure, give at once to a starving guest, hold between the watermarks, count what is
 * still inflating. */
#include <stdio.h>
#include <string.h>

#include "daemon/mempolicy.h"
#include "test.h"

#define MIB (1ull << 20)
#define GIB (1ull << 30)

static struct mempolicy_vm vm(uint64_t memory, uint64_t available, uint64_t target)
{
    struct mempolicy_vm v = {.memory = memory,
                             .shares = 1000,
                             .target = target,
                             .actual = target,
                             .available = available,
                             .have_stats = true};

    return v;
}

static void test_reclaim(void)
{
    struct mempolicy_vm v[3];
    struct mempolicy_state st;
    uint64_t total = 0;

    /* 2 GiB for VMs, 1.95 GiB used: under the low watermark (1/8: 256 MiB). */
    v[0] = vm(512 * MIB, 400 * MIB, 0);
    v[1] = vm(512 * MIB, 400 * MIB, 0);
    v[2] = vm(512 * MIB, 30 * MIB, 0); /* nothing idle: left alone */
    mempolicy_plan(2 * GIB, 2 * GIB - 50 * MIB, v, 3, &st);
    CHECK(st.low == 2 * GIB / 8 && st.high == 2 * st.low);
    for (int i = 0; i < 3; i++) {
        CHECK(v[i].new_target % MEMPOLICY_STEP == 0);
        total += v[i].new_target;
    }
    /* Enough to reach the high watermark (with at most a step per VM of rounding). */
    CHECK(total + 50 * MIB >= st.high && total <= st.high + 3 * MIB);
    CHECK(v[0].new_target > 0 && v[1].new_target > 0 && v[2].new_target == 0);
    /* Equal idle memory, equal shares: equal parts. */
    CHECK(v[0].new_target == v[1].new_target);
    CHECK(st.change == (int64_t)total);
    /* Never into the guest's margin. */
    CHECK(v[0].new_target <= 400 * MIB - mempolicy_margin(512 * MIB));
}

static void test_shares_and_reservation(void)
{
    struct mempolicy_vm v[2];
    struct mempolicy_state st;

    /* Twice the shares: half the take. */
    v[0] = vm(512 * MIB, 400 * MIB, 0);
    v[1] = vm(512 * MIB, 400 * MIB, 0);
    v[0].shares = 2000;
    mempolicy_plan(2 * GIB, 2 * GIB - 150 * MIB, v, 2, &st);
    CHECK(v[0].new_target > 0);
    CHECK(v[0].new_target < v[1].new_target);
    CHECK(v[0].new_target * 2 <= v[1].new_target + 2 * MIB);

    /* A reservation of 448 MiB: the balloon holds at most 64 MiB, however idle the guest. */
    v[0] = vm(512 * MIB, 480 * MIB, 0);
    v[0].reservation = 448 * MIB;
    mempolicy_plan(1 * GIB, 1 * GIB, v, 1, &st);
    CHECK(v[0].new_target <= 64 * MIB);
    /* A reservation raised above what the balloon holds: the balloon shrinks to fit. */
    v[0] = vm(512 * MIB, 100 * MIB, 300 * MIB);
    v[0].reservation = 400 * MIB;
    mempolicy_plan(4 * GIB, 3 * GIB, v, 1, &st);
    CHECK(v[0].new_target <= 112 * MIB);
}

static void test_give_back_and_hold(void)
{
    struct mempolicy_vm v[2];
    struct mempolicy_state st;

    /* Plenty free: each balloon gives back a step, the last MiB too. */
    v[0] = vm(512 * MIB, 100 * MIB, 256 * MIB);
    v[1] = vm(512 * MIB, 100 * MIB, 1 * MIB);
    mempolicy_plan(8 * GIB, 1 * GIB, v, 2, &st);
    CHECK(v[0].new_target < 256 * MIB && v[0].new_target >= 128 * MIB);
    CHECK(v[1].new_target == 0);
    CHECK(st.change < 0);

    /* Between the watermarks: nothing moves. */
    v[0] = vm(512 * MIB, 300 * MIB, 100 * MIB);
    mempolicy_plan(2 * GIB, 2 * GIB - 300 * MIB, v, 1, &st);
    CHECK(v[0].new_target == 100 * MIB && st.change == 0);

    /* Free memory just above high: what is given back keeps it above high. */
    v[0] = vm(512 * MIB, 100 * MIB, 400 * MIB);
    mempolicy_plan(2 * GIB, 2 * GIB - 2 * st.low - 16 * MIB, v, 1, &st);
    CHECK(v[0].new_target >= 400 * MIB - 17 * MIB);
}

static void test_starving_and_inflight(void)
{
    struct mempolicy_vm v[2];
    struct mempolicy_state st;

    /* The guest says it has 4 MiB available: memory back now, even under pressure. */
    v[0] = vm(512 * MIB, 4 * MIB, 200 * MIB);
    mempolicy_plan(2 * GIB, 2 * GIB, v, 1, &st);
    CHECK(v[0].new_target < 200 * MIB);

    /* Balloons still inflating count as taken: no second helping. */
    v[0] = vm(512 * MIB, 400 * MIB, 300 * MIB);
    v[0].actual = 0;
    mempolicy_plan(2 * GIB, 2 * GIB - 250 * MIB, v, 1, &st);
    CHECK(v[0].new_target == 300 * MIB);

    /* No stats, no change; no VMs, no crash. */
    v[0] = vm(512 * MIB, 0, 0);
    v[0].have_stats = false;
    mempolicy_plan(1 * GIB, 1 * GIB, v, 1, &st);
    CHECK(v[0].new_target == 0);
    mempolicy_plan(1 * GIB, 2 * GIB, v, 0, &st);
    CHECK(st.change == 0);
    /* Hostile numbers from a guest: available above its RAM, huge targets. */
    v[0] = vm(512 * MIB, UINT64_MAX / 2, UINT64_MAX / 4);
    mempolicy_plan(1 * GIB, 1 * GIB, v, 1, &st);
    CHECK(v[0].new_target <= 512 * MIB);
}

/* A quiet round asks no VM: it must be one whose plan could change nothing. */
static void test_quiet(void)
{
    struct mempolicy_state st;
    struct mempolicy_vm v[3];
    uint64_t low;

    mempolicy_plan(2 * GIB, 0, NULL, 0, &st);
    low = st.low;
    CHECK(mempolicy_quiet(2 * GIB, 2 * GIB - low, 0, 0));
    CHECK(mempolicy_quiet(2 * GIB, GIB, 0, MEMPOLICY_QUIET_ROUNDS - 1));
    CHECK(!mempolicy_quiet(2 * GIB, 2 * GIB - low + MIB, 0, 0));      /* something to take */
    CHECK(!mempolicy_quiet(2 * GIB, 3 * GIB, 0, 0));                  /* over the limit */
    CHECK(!mempolicy_quiet(2 * GIB, GIB, MIB, 0));                    /* a balloon holds memory */
    CHECK(!mempolicy_quiet(2 * GIB, GIB, 0, MEMPOLICY_QUIET_ROUNDS)); /* time for a full one */
    /* Whenever it says quiet, VMs with empty balloons, idle or starving, keep them empty. */
    for (uint64_t used = 0; used <= 2 * GIB; used += 64 * MIB) {
        if (!mempolicy_quiet(2 * GIB, used, 0, 0))
            continue;
        v[0] = (struct mempolicy_vm){
            .memory = GIB, .shares = 1000, .available = 900 * MIB, .have_stats = true};
        v[1] = (struct mempolicy_vm){
            .memory = 512 * MIB, .shares = 10, .available = MIB, .have_stats = true};
        v[2] = (struct mempolicy_vm){.memory = 256 * MIB, .shares = 1000};
        mempolicy_plan(2 * GIB, used, v, 3, &st);
        CHECK(!v[0].new_target && !v[1].new_target && !v[2].new_target && !st.change);
    }
}

int main(void)
{
    test_reclaim();
    test_shares_and_reservation();
    test_give_back_and_hold();
    test_starving_and_inflight();
    test_quiet();
    return test_finish("mempolicy");
}
