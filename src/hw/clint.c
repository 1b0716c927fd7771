/* SiFive CLINT. See clint.h for the register map, the interrupt rules and the locking. */
#include "hw/clint.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "base/log.h"
#include "base/state.h"
#include "base/time.h"

#define CLINT_MSIP_BASE     0x0000
#define CLINT_MTIMECMP_BASE 0x4000
#define CLINT_MTIME         0xbff8
#define CLINT_MTIME_END     0xc000

#define NS_PER_SEC       1000000000ull
#define CLINT_MAX_FREQ   10000000000ull /* keeps the tick/ns conversions inside 64 bits */
#define CLINT_MAX_WAIT_S 60             /* the timer thread re-checks at least this often */

struct clint {
    /* Immutable after clint_create(). */
    unsigned nharts;
    uint64_t freq_hz;
    struct irq_line *msip_lines;
    struct irq_line *mtip_lines;
    struct irq_line *stip_lines; /* NULL until clint_set_stip_lines(); then under `lock` */

    /* mtime = clint_ticks(host ns) + time_offset (mod 2^64). Written under `lock` (reset,
     * guest mtime writes), read without it by clint_time(). */
    _Atomic uint64_t time_offset;

    /* Everything below is protected by `lock`. */
    pthread_mutex_t lock;
    pthread_cond_t wake; /* CLOCK_MONOTONIC; signalled when a deadline or mtime changes */
    bool stop;           /* set by clint_destroy() to end the timer thread */
    uint32_t *msip;      /* [nharts], bit 0 only */
    uint64_t *mtimecmp;  /* [nharts] */
    bool *mtip;          /* [nharts], the level last set on mtip_lines[h] */
    uint64_t *stimecmp;  /* [nharts], the harts' Sstc comparators (clint_set_stimecmp) */
    bool *stip;          /* [nharts], the level last set on stip_lines[h] */
    pthread_t thread;
};

/* floor(ns * freq / 1e9) mod 2^64 without a 128-bit product: with freq <= 1e10 the
 * sub-second product stays below 1e19 < 2^64. */
static uint64_t clint_ticks(const struct clint *c, uint64_t ns)
{
    return (ns / NS_PER_SEC) * c->freq_hz + (ns % NS_PER_SEC) * c->freq_hz / NS_PER_SEC;
}

/* Host nanoseconds that `ticks` (<= CLINT_MAX_WAIT_S seconds' worth) take, rounded up so a
 * thread that sleeps that long never wakes before the deadline. */
static uint64_t clint_ticks_to_ns(const struct clint *c, uint64_t ticks)
{
    uint64_t rem = ticks % c->freq_hz;

    return (ticks / c->freq_hz) * NS_PER_SEC + (rem * NS_PER_SEC + c->freq_hz - 1) / c->freq_hz;
}

static uint64_t clint_mtime_at(const struct clint *c, uint64_t now_ns)
{
    return clint_ticks(c, now_ns) + atomic_load_explicit(&c->time_offset, memory_order_acquire);
}

uint64_t clint_time(void *opaque)
{
    return clint_mtime_at(opaque, time_now_ns());
}

/* Caller holds c->lock. Makes the time base read `mtime` at host time `now_ns`. */
static void clint_set_mtime_locked(struct clint *c, uint64_t now_ns, uint64_t mtime)
{
    atomic_store_explicit(&c->time_offset, mtime - clint_ticks(c, now_ns), memory_order_release);
}

/* Caller holds c->lock. Sets MTIP[h] to its level at time `mtime`; calls the line only on a
 * change (the line's receiver takes only hart atomics, so calling it under our lock is safe,
 * and keeps the line's order of changes the same as the order of the decisions). */
static void clint_update_mtip_locked(struct clint *c, unsigned h, uint64_t mtime)
{
    bool level = mtime >= c->mtimecmp[h];

    if (level != c->mtip[h]) {
        c->mtip[h] = level;
        irq_set(&c->mtip_lines[h], level);
    }
}

/* Caller holds c->lock. The same for hart h's supervisor timer, when its line is wired. */
static void clint_update_stip_locked(struct clint *c, unsigned h, uint64_t mtime)
{
    bool level = mtime >= c->stimecmp[h];

    if (c->stip_lines && level != c->stip[h]) {
        c->stip[h] = level;
        irq_set(&c->stip_lines[h], level);
    }
}

static void clint_update_all_locked(struct clint *c)
{
    uint64_t mtime = clint_mtime_at(c, time_now_ns());

    for (unsigned h = 0; h < c->nharts; h++) {
        clint_update_mtip_locked(c, h, mtime);
        clint_update_stip_locked(c, h, mtime);
    }
    pthread_cond_signal(&c->wake);
}

/* Ticks from `mtime` until a comparator `cmp` next changes its line's level, at most `wait`. */
static uint64_t clint_until(uint64_t cmp, uint64_t mtime, uint64_t wait)
{
    uint64_t until;

    if (cmp > mtime)
        until = cmp - mtime; /* due then */
    else if (cmp != 0)
        until = 0 - mtime; /* due now; falls again when mtime wraps to 0 */
    else
        return wait; /* mtime >= 0 always holds */
    return until < wait ? until : wait;
}

/* The timer thread: sleeps until the earliest moment some MTIP line must change, sets the
 * lines, and starts over; any mtimecmp or mtime write wakes it early (the wait is re-planned
 * from scratch every time, so spurious wake-ups are harmless). */
static void *clint_timer_main(void *opaque)
{
    struct clint *c = opaque;

    pthread_mutex_lock(&c->lock);
    while (!c->stop) {
        uint64_t now_ns = time_now_ns();
        uint64_t mtime = clint_mtime_at(c, now_ns);
        uint64_t wait = c->freq_hz * CLINT_MAX_WAIT_S; /* ticks */
        struct timespec ts;

        for (unsigned h = 0; h < c->nharts; h++) {
            clint_update_mtip_locked(c, h, mtime);
            wait = clint_until(c->mtimecmp[h], mtime, wait);
            if (c->stip_lines) {
                clint_update_stip_locked(c, h, mtime);
                wait = clint_until(c->stimecmp[h], mtime, wait);
            }
        }
        uint64_t deadline = now_ns + clint_ticks_to_ns(c, wait);
        ts.tv_sec = (time_t)(deadline / NS_PER_SEC);
        ts.tv_nsec = (long)(deadline % NS_PER_SEC);
        /* ETIMEDOUT and a signal-free early return both just lead to a re-plan. */
        pthread_cond_timedwait(&c->wake, &c->lock, &ts);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* Starts the timer thread with every signal blocked, so process-directed signals (SIGINT,
 * the vCPU kick signal) are never delivered to it. */
static int clint_start_thread(struct clint *c)
{
    sigset_t all, old;
    int err;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(&c->thread, NULL, clint_timer_main, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return -err;
}

static void clint_free(struct clint *c)
{
    free(c->msip_lines);
    free(c->mtip_lines);
    free(c->stip_lines);
    free(c->stimecmp);
    free(c->stip);
    free(c->msip);
    free(c->mtimecmp);
    free(c->mtip);
    free(c);
}

int clint_create(unsigned nharts, uint64_t freq_hz, const struct irq_line *msip_lines,
                 const struct irq_line *mtip_lines, struct clint **out)
{
    pthread_condattr_t cattr;
    struct clint *c;
    int err;

    if (nharts == 0 || nharts > CLINT_MAX_HARTS || freq_hz == 0 || freq_hz > CLINT_MAX_FREQ ||
        !msip_lines || !mtip_lines || !out)
        return -EINVAL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->nharts = nharts;
    c->freq_hz = freq_hz;
    c->msip_lines = calloc(nharts, sizeof(*c->msip_lines));
    c->mtip_lines = calloc(nharts, sizeof(*c->mtip_lines));
    c->msip = calloc(nharts, sizeof(*c->msip));
    c->mtimecmp = calloc(nharts, sizeof(*c->mtimecmp));
    c->mtip = calloc(nharts, sizeof(*c->mtip));
    c->stimecmp = calloc(nharts, sizeof(*c->stimecmp));
    c->stip = calloc(nharts, sizeof(*c->stip));
    if (!c->msip_lines || !c->mtip_lines || !c->msip || !c->mtimecmp || !c->mtip || !c->stimecmp ||
        !c->stip) {
        err = -ENOMEM;
        goto err_free;
    }
    for (unsigned h = 0; h < nharts; h++) {
        c->msip_lines[h] = msip_lines[h];
        c->mtip_lines[h] = mtip_lines[h];
        c->mtimecmp[h] = UINT64_MAX;
        c->stimecmp[h] = UINT64_MAX;
    }
    clint_set_mtime_locked(c, time_now_ns(), 0); /* no other thread can see c yet */

    err = -pthread_mutex_init(&c->lock, NULL);
    if (err)
        goto err_free;
    err = -pthread_condattr_init(&cattr);
    if (err)
        goto err_mutex;
    err = -pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    if (!err)
        err = -pthread_cond_init(&c->wake, &cattr);
    pthread_condattr_destroy(&cattr);
    if (err)
        goto err_mutex;
    err = clint_start_thread(c);
    if (err)
        goto err_cond;
    *out = c;
    return 0;

err_cond:
    pthread_cond_destroy(&c->wake);
err_mutex:
    pthread_mutex_destroy(&c->lock);
err_free:
    clint_free(c);
    return err;
}

void clint_destroy(struct clint *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->stop = true;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    clint_free(c);
}

int clint_set_stip_lines(struct clint *c, const struct irq_line *stip_lines)
{
    struct irq_line *lines = calloc(c->nharts, sizeof(*lines));

    if (!lines)
        return -ENOMEM;
    for (unsigned h = 0; h < c->nharts; h++)
        lines[h] = stip_lines[h];
    pthread_mutex_lock(&c->lock);
    free(c->stip_lines);
    c->stip_lines = lines;
    for (unsigned h = 0; h < c->nharts; h++)
        c->stip[h] = false; /* the receivers are assumed low */
    clint_update_all_locked(c);
    pthread_mutex_unlock(&c->lock);
    return 0;
}

void clint_set_stimecmp(void *clint, unsigned hart, uint64_t cmp)
{
    struct clint *c = clint;

    if (hart >= c->nharts)
        return;
    pthread_mutex_lock(&c->lock);
    c->stimecmp[hart] = cmp;
    clint_update_stip_locked(c, hart, clint_time(c));
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
}

void clint_reset(struct clint *c)
{
    pthread_mutex_lock(&c->lock);
    clint_set_mtime_locked(c, time_now_ns(), 0);
    for (unsigned h = 0; h < c->nharts; h++) {
        c->msip[h] = 0;
        c->mtimecmp[h] = UINT64_MAX;
        c->mtip[h] = false;
        /* Unconditionally: reset must leave the receivers low whatever they believed. */
        irq_set(&c->msip_lines[h], false);
        irq_set(&c->mtip_lines[h], false);
        /* The harts reset stimecmp with themselves (and tell us); only the level restarts. */
        if (c->stip_lines) {
            c->stip[h] = false;
            irq_set(&c->stip_lines[h], false);
        }
    }
    clint_update_all_locked(c); /* a stimecmp already set again may be due */
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
}

void clint_set_mtime(struct clint *c, uint64_t mtime)
{
    pthread_mutex_lock(&c->lock);
    clint_set_mtime_locked(c, time_now_ns(), mtime);
    clint_update_all_locked(c);
    pthread_mutex_unlock(&c->lock);
}

void clint_save(struct clint *c, struct sbuf *out)
{
    pthread_mutex_lock(&c->lock);
    sbuf_put_u32(out, c->nharts);
    sbuf_put_u64(out, c->freq_hz);
    sbuf_put_u64(out, clint_mtime_at(c, time_now_ns()));
    for (unsigned h = 0; h < c->nharts; h++) {
        sbuf_put_bool(out, c->msip[h] & 1);
        sbuf_put_u64(out, c->mtimecmp[h]);
    }
    pthread_mutex_unlock(&c->lock);
}

int clint_load(struct clint *c, struct scur *in, uint32_t version)
{
    uint32_t nharts;
    uint64_t freq, mtime;
    bool *msip;
    uint64_t *mtimecmp;
    int ret = -1;

    if (version != CLINT_STATE_VERSION)
        return scur_fail(in, "section version %" PRIu32 " is not supported (this build reads %u)",
                         version, CLINT_STATE_VERSION);
    nharts = scur_get_u32(in);
    freq = scur_get_u64(in);
    mtime = scur_get_u64(in);
    if (scur_ok(in))
        return -1;
    if (nharts != c->nharts)
        return scur_fail(in, "field 'harts' is %" PRIu32 ", this machine has %u", nharts,
                         c->nharts);
    if (freq != c->freq_hz)
        return scur_fail(in,
                         "field 'freq_hz' is %" PRIu64 ", this machine's timer runs at %" PRIu64,
                         freq, c->freq_hz);
    msip = calloc(nharts, sizeof(*msip));
    mtimecmp = calloc(nharts, sizeof(*mtimecmp));
    if (!msip || !mtimecmp) {
        scur_fail(in, "out of memory for %" PRIu32 " harts", nharts);
        goto free_arrays;
    }
    for (unsigned h = 0; h < nharts; h++) {
        msip[h] = scur_get_bool(in);
        mtimecmp[h] = scur_get_u64(in);
    }
    if (scur_finish(in))
        goto free_arrays;

    pthread_mutex_lock(&c->lock);
    clint_set_mtime_locked(c, time_now_ns(), mtime);
    for (unsigned h = 0; h < c->nharts; h++) {
        c->msip[h] = msip[h];
        c->mtimecmp[h] = mtimecmp[h];
        c->mtip[h] = mtime >= mtimecmp[h];
        /* Unconditionally: the receivers may hold anything (a fresh machine, a loaded hart). */
        irq_set(&c->msip_lines[h], msip[h]);
        irq_set(&c->mtip_lines[h], c->mtip[h]);
        /* stimecmp is the hart's state, loaded (and handed to us) before this section. */
        if (c->stip_lines) {
            c->stip[h] = mtime >= c->stimecmp[h];
            irq_set(&c->stip_lines[h], c->stip[h]);
        }
    }
    pthread_cond_signal(&c->wake); /* the timer thread re-plans from the new deadlines */
    pthread_mutex_unlock(&c->lock);
    ret = 0;

free_arrays:
    free(msip);
    free(mtimecmp);
    return ret;
}

/* The 4- or 8-byte view of a 64-bit register at byte `offset & 7` within it. */
static uint64_t clint_read_part(uint64_t reg, uint64_t offset, unsigned size)
{
    if (size == 8)
        return reg;
    return (offset & 4) ? reg >> 32 : reg & 0xffffffffu;
}

static uint64_t clint_write_part(uint64_t reg, uint64_t offset, unsigned size, uint64_t value)
{
    if (size == 8)
        return value;
    if (offset & 4)
        return (reg & 0xffffffffu) | (value << 32);
    return (reg & ~(uint64_t)0xffffffffu) | (value & 0xffffffffu);
}

/* vCPU thread; takes the CLINT lock. */
static int clint_mmio_read(void *opaque, uint64_t offset, unsigned size, uint64_t *value)
{
    struct clint *c = opaque;

    *value = 0;
    if (offset < CLINT_MTIMECMP_BASE) {
        uint64_t h = offset / 4;

        if (size != 4)
            return -1;
        if (h >= c->nharts)
            return 0;
        pthread_mutex_lock(&c->lock);
        *value = c->msip[h];
        pthread_mutex_unlock(&c->lock);
    } else if (offset < CLINT_MTIME) {
        uint64_t h = (offset - CLINT_MTIMECMP_BASE) / 8;

        if (h >= c->nharts)
            return 0;
        pthread_mutex_lock(&c->lock);
        *value = clint_read_part(c->mtimecmp[h], offset, size);
        pthread_mutex_unlock(&c->lock);
    } else if (offset < CLINT_MTIME_END) {
        *value = clint_read_part(clint_time(c), offset, size);
    }
    return 0;
}

/* vCPU thread; takes the CLINT lock and sets irq lines under it. */
static int clint_mmio_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    struct clint *c = opaque;

    if (offset < CLINT_MTIMECMP_BASE) {
        uint64_t h = offset / 4;

        if (size != 4)
            return -1;
        if (h >= c->nharts) {
            log_guest("clint: write to msip of hart %" PRIu64 ", which does not exist", h);
            return 0;
        }
        pthread_mutex_lock(&c->lock);
        c->msip[h] = value & 1;
        irq_set(&c->msip_lines[h], value & 1);
        pthread_mutex_unlock(&c->lock);
    } else if (offset < CLINT_MTIME) {
        uint64_t h = (offset - CLINT_MTIMECMP_BASE) / 8;

        if (h >= c->nharts) {
            log_guest("clint: write to mtimecmp of hart %" PRIu64 ", which does not exist", h);
            return 0;
        }
        pthread_mutex_lock(&c->lock);
        c->mtimecmp[h] = clint_write_part(c->mtimecmp[h], offset, size, value);
        clint_update_mtip_locked(c, (unsigned)h, clint_time(c));
        pthread_cond_signal(&c->wake);
        pthread_mutex_unlock(&c->lock);
    } else if (offset < CLINT_MTIME_END) {
        pthread_mutex_lock(&c->lock);
        uint64_t now_ns = time_now_ns();
        uint64_t mtime = clint_write_part(clint_mtime_at(c, now_ns), offset, size, value);
        clint_set_mtime_locked(c, now_ns, mtime);
        clint_update_all_locked(c);
        pthread_mutex_unlock(&c->lock);
    }
    return 0;
}

const struct mmio_ops clint_mmio_ops = {
    .read = clint_mmio_read,
    .write = clint_mmio_write,
    .min_size = 4,
    .max_size = 8,
};
