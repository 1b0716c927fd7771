/* A thread that calls one function at a steady period until it is stopped: the daemon's
 * periodic work (the metric history's sampler, the balloon policy) without each module keeping
 * its own thread, condition variable and timed wait.
 *
 * Cadence: the first call comes at once; each later one is one period after the previous one
 * was due, so the rounds do not drift by the time each takes. A round that overruns its period
 * skips the ticks it missed: the next comes one period after the overrun round ended, never
 * back to back.
 *
 * Threads: ticker_start() and ticker_stop() are called by one owner thread; fn runs on the
 * ticker's own thread, never two at once, and takes whatever locks its data needs (the ticker
 * holds none while it runs). ticker_stop() wakes the thread from its wait at once, lets a round
 * in progress finish, and joins it. */
#ifndef TESSERA_BASE_TICKER_H
#define TESSERA_BASE_TICKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct ticker {
    pthread_t thread;
    pthread_mutex_t lock; /* stop */
    pthread_cond_t cond;  /* signalled by ticker_stop() */
    bool stop;
    uint64_t period_ns;
    void (*fn)(void *arg);
    void *arg;
};

/* Starts t's thread calling fn(arg) every period_ns (> 0). 0 or -errno (nothing started). */
int ticker_start(struct ticker *t, uint64_t period_ns, void (*fn)(void *arg), void *arg);

/* Stops and joins the thread started by a successful ticker_start(). */
void ticker_stop(struct ticker *t);

#endif
