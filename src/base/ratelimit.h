/* Token-bucket rate limiting for a device's traffic: a disk's requests, a NIC's frames.
 *
 * A limiter holds two buckets, one counting bytes and one counting operations (requests or
 * frames). Each has a rate (tokens per second; 0 means unlimited) and a burst. The bucket
 * refills continuously at its rate and banks at most one tick's worth (RATELIMIT_TICK_NS of
 * the rate) plus the burst: an idle device may later send that much at once, never more. A
 * request may go when every limited bucket holds at least min(its cost, the bucket's
 * capacity); it then takes its whole cost, which may leave a bucket in debt (a 1 MiB write on
 * a disk whose bucket holds 100 KiB). Debt is repaid by the refill before anything else goes,
 * so the long-run rate is exact whatever the request sizes, and a request larger than the
 * bucket waits but is never refused. Firecracker's token buckets and QEMU's throttle groups
 * behave the same way; nothing here drops or fails a request: the caller waits.
 *
 * Time is a parameter (CLOCK_MONOTONIC nanoseconds from time_now_ns() in the devices, a
 * virtual clock in the unit tests); a time earlier than the last one seen counts as no time.
 * Arithmetic is exact (128-bit intermediates, whole-token remainders carried) and saturating:
 * rates above RATELIMIT_MAX_RATE and bursts above RATELIMIT_MAX_BURST are clamped, so no
 * value from outside can overflow anything.
 *
 * Threads: none of its own, no locks. A limiter belongs to its device, which serialises every
 * call (its queue lock); the functions never block and never allocate. */
#ifndef TESSERA_BASE_RATELIMIT_H
#define TESSERA_BASE_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

/* What a bucket banks without a burst: 50 ms of its rate. Long enough that a sender woken a
 * few milliseconds late (a busy host) or sending in bursts (TCP) loses no share of its rate,
 * short enough that nobody notices the burst (QEMU's throttle banks 100 ms by default). */
#define RATELIMIT_TICK_NS   50000000ull
#define RATELIMIT_MAX_RATE  (1ull << 50) /* tokens per second: 1 PiB/s, beyond any device */
#define RATELIMIT_MAX_BURST (1ull << 56)

enum ratelimit_kind {
    RATELIMIT_BYTES,
    RATELIMIT_OPS,
    RATELIMIT_KINDS,
};

struct ratelimit_bucket {
    uint64_t rate;    /* tokens per second; 0: unlimited */
    uint64_t burst;   /* tokens banked beyond one tick */
    int64_t capacity; /* rate * tick + burst, at least 1 */
    int64_t level;    /* tokens banked now; negative: the debt of an oversize request */
    uint64_t rem;     /* token-nanoseconds refilled that do not make a whole token yet */
    uint64_t last_ns; /* when the level was last brought up to date */
};

struct ratelimit {
    struct ratelimit_bucket b[RATELIMIT_KINDS];
};

/* A limiter with both buckets unlimited. */
void ratelimit_init(struct ratelimit *rl, uint64_t now_ns);

/* Changes one bucket (a live change is fine, also while a caller waits: it asks again with
 * ratelimit_check() and gets a new wait). rate 0 makes the bucket unlimited and forgets any
 * debt; a bucket that becomes limited starts full; otherwise the level refilled so far at the
 * old rate is kept, capped at the new capacity (debt is kept: it was spent). */
void ratelimit_set(struct ratelimit *rl, enum ratelimit_kind kind, uint64_t rate, uint64_t burst,
                   uint64_t now_ns);

/* Whether a request costing `bytes` and `ops` may go at now_ns. True: it may (take it with
 * ratelimit_take()). False: *wait_ns (> 0) is how long until it may, at the current rates.
 * Consumes nothing. */
bool ratelimit_check(struct ratelimit *rl, uint64_t bytes, uint64_t ops, uint64_t now_ns,
                     uint64_t *wait_ns);

/* Takes a request's cost from both buckets (after ratelimit_check() said yes; unlimited
 * buckets take nothing). */
void ratelimit_take(struct ratelimit *rl, uint64_t bytes, uint64_t ops);

/* ratelimit_check(), then ratelimit_take() when it may go. */
bool ratelimit_consume(struct ratelimit *rl, uint64_t bytes, uint64_t ops, uint64_t now_ns,
                       uint64_t *wait_ns);

/* True when either bucket has a rate. */
bool ratelimit_limited(const struct ratelimit *rl);

/* A rate or burst as users write it: decimal digits, with `suffixes` an optional K, M, G or T
 * (powers of 1024, as the config's sizes) and an optional "B" or "iB" after it. Values above
 * RATELIMIT_MAX_BURST are refused (no rate or burst needs more). 0 or -EINVAL. */
int ratelimit_parse(const char *s, bool suffixes, uint64_t *out);

#endif
