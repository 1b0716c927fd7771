/* Parking a thread on a futex word until another thread wakes it.
 *
 * A mutex and condition variable cost several system calls per hand-off in glibc: the signal
 * (one or two FUTEX_WAKEs), the wait, and the woken thread's re-taking of the mutex, which
 * glibc marks contended so that its unlock is one more FUTEX_WAKE. Each is expensive when the
 * host is itself a VM. A park costs the waker one atomic exchange, plus one FUTEX_WAKE only when
 * the parked thread really sleeps; the sleeper one FUTEX_WAIT.
 *
 * Contract: one thread parks (the owner), any thread wakes. The owner calls park_prepare(),
 * then checks its own conditions (under whatever lock guards them), then park_wait(); a wake
 * between park_prepare() and park_wait() makes park_wait() return at once, so a waker that
 * makes a condition true and then calls park_wake() is never lost. park_wait() may also return
 * early (signals, spurious wake-ups): the owner looks at its conditions again. Linux only. */
#ifndef TESSERA_BASE_PARK_H
#define TESSERA_BASE_PARK_H

#include <linux/futex.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/time.h"

struct park {
    atomic_uint word; /* 1: the owner is parked or about to be; 0: awake */
};

/* The owner announces that it is about to sleep (seq_cst, so a condition the owner reads
 * afterwards was either set before this, or its setter's park_wake() sees the 1). */
static inline void park_prepare(struct park *p)
{
    atomic_store(&p->word, 1);
}

/* The owner, awake, takes the announcement back (nothing to wait for after all). */
static inline void park_cancel(struct park *p)
{
    atomic_store(&p->word, 0);
}

/* The owner sleeps until park_wake() or until CLOCK_MONOTONIC reaches deadline_ns (0: none). */
static inline void park_wait(struct park *p, uint64_t deadline_ns)
{
    struct timespec ts, *tsp = NULL;

    if (deadline_ns) {
        uint64_t now = time_now_ns();

        if (now >= deadline_ns) {
            park_cancel(p);
            return;
        }
        ts.tv_sec = (time_t)((deadline_ns - now) / 1000000000ull);
        ts.tv_nsec = (long)((deadline_ns - now) % 1000000000ull);
        tsp = &ts;
    }
    /* Returns at once (EAGAIN) when a wake already cleared the word. */
    syscall(SYS_futex, &p->word, FUTEX_WAIT_PRIVATE, 1u, tsp, NULL, 0);
    park_cancel(p);
}

/* Any thread: wakes the owner if it is parked; a store-free load when it is awake. Returns
 * whether the owner had announced sleep. */
static inline bool park_wake(struct park *p)
{
    if (!atomic_load(&p->word) || !atomic_exchange(&p->word, 0))
        return false;
    syscall(SYS_futex, &p->word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    return true;
}

#endif
