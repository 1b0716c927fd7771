/* Token buckets; see ratelimit.h for the contract. */
#include "base/ratelimit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/units.h"

#define NS_PER_S 1000000000ull

/* A cost no request reaches (a disk request is at most 32 MiB): keeps the debt in range. */
#define COST_MAX (1ull << 57)

typedef unsigned __int128 u128;

static uint64_t clamp(uint64_t v, uint64_t max)
{
    return v > max ? max : v;
}

/* Brings the level up to now at the bucket's rate. */
static void bucket_refill(struct ratelimit_bucket *b, uint64_t now_ns)
{
    uint64_t elapsed = now_ns > b->last_ns ? now_ns - b->last_ns : 0;
    u128 total, add, room;

    if (now_ns > b->last_ns)
        b->last_ns = now_ns;
    if (!b->rate || !elapsed)
        return;
    total = (u128)elapsed * b->rate + b->rem;
    add = total / NS_PER_S;
    room = (u128)(b->capacity - b->level); /* level <= capacity always */
    if (add >= room) {
        b->level = b->capacity;
        b->rem = 0; /* a full bucket banks no fractions either */
        return;
    }
    b->level += (int64_t)add;
    b->rem = (uint64_t)(total % NS_PER_S);
}

static int64_t bucket_capacity(uint64_t rate, uint64_t burst)
{
    uint64_t tick = (uint64_t)((u128)rate * RATELIMIT_TICK_NS / NS_PER_S);
    uint64_t cap = tick + burst; /* both clamped: no overflow */

    return (int64_t)(cap ? cap : 1);
}

void ratelimit_init(struct ratelimit *rl, uint64_t now_ns)
{
    memset(rl, 0, sizeof(*rl));
    for (int k = 0; k < RATELIMIT_KINDS; k++)
        rl->b[k].last_ns = now_ns;
}

void ratelimit_set(struct ratelimit *rl, enum ratelimit_kind kind, uint64_t rate, uint64_t burst,
                   uint64_t now_ns)
{
    struct ratelimit_bucket *b = &rl->b[kind];
    bool was_limited = b->rate != 0;

    bucket_refill(b, now_ns);
    b->rate = clamp(rate, RATELIMIT_MAX_RATE);
    b->burst = clamp(burst, RATELIMIT_MAX_BURST);
    b->capacity = bucket_capacity(b->rate, b->burst);
    if (!b->rate) {
        b->level = 0;
        b->rem = 0;
    } else if (!was_limited || b->level > b->capacity) {
        b->level = b->capacity;
        b->rem = 0;
    }
}

/* How long until bucket b holds `need` tokens (need > level), at its rate. */
static uint64_t bucket_wait(const struct ratelimit_bucket *b, int64_t need)
{
    u128 missing = (u128)(uint64_t)(need - b->level) * NS_PER_S - b->rem;
    u128 ns = (missing + b->rate - 1) / b->rate;

    return ns > UINT64_MAX ? UINT64_MAX : (ns ? (uint64_t)ns : 1);
}

bool ratelimit_check(struct ratelimit *rl, uint64_t bytes, uint64_t ops, uint64_t now_ns,
                     uint64_t *wait_ns)
{
    uint64_t cost[RATELIMIT_KINDS] = {bytes, ops};
    uint64_t wait = 0;

    for (int k = 0; k < RATELIMIT_KINDS; k++) {
        struct ratelimit_bucket *b = &rl->b[k];
        int64_t need;

        if (!b->rate || !cost[k])
            continue;
        bucket_refill(b, now_ns);
        /* An oversize request needs a full bucket, not more than the bucket can hold. */
        need = (int64_t)clamp(cost[k], COST_MAX);
        if (need > b->capacity)
            need = b->capacity;
        if (b->level < need) {
            uint64_t w = bucket_wait(b, need);

            if (w > wait)
                wait = w;
        }
    }
    *wait_ns = wait;
    return wait == 0;
}

void ratelimit_take(struct ratelimit *rl, uint64_t bytes, uint64_t ops)
{
    uint64_t cost[RATELIMIT_KINDS] = {bytes, ops};

    for (int k = 0; k < RATELIMIT_KINDS; k++) {
        if (rl->b[k].rate)
            rl->b[k].level -= (int64_t)clamp(cost[k], COST_MAX);
    }
}

bool ratelimit_consume(struct ratelimit *rl, uint64_t bytes, uint64_t ops, uint64_t now_ns,
                       uint64_t *wait_ns)
{
    if (!ratelimit_check(rl, bytes, ops, now_ns, wait_ns))
        return false;
    ratelimit_take(rl, bytes, ops);
    return true;
}

bool ratelimit_limited(const struct ratelimit *rl)
{
    return rl->b[RATELIMIT_BYTES].rate || rl->b[RATELIMIT_OPS].rate;
}

int ratelimit_parse(const char *s, bool suffixes, uint64_t *out)
{
    unsigned shift = 0;
    uint64_t v = 0;
    const char *p = s;

    if (*p < '0' || *p > '9')
        return -EINVAL;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (RATELIMIT_MAX_BURST - (uint64_t)(*p - '0')) / 10)
            return -EINVAL;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (*p && (!suffixes || units_suffix_shift(p, 0, &shift)))
        return -EINVAL;
    if (v > (RATELIMIT_MAX_BURST >> shift))
        return -EINVAL;
    *out = v << shift;
    return 0;
}
