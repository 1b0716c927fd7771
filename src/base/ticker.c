#include "base/ticker.h"

#include <errno.h>
#include <time.h>

#include "base/time.h"

static struct timespec ts_of(uint64_t ns)
{
    return (struct timespec){.tv_sec = (time_t)(ns / 1000000000u),
                             .tv_nsec = (long)(ns % 1000000000u)};
}

static void *ticker_thread(void *arg)
{
    struct ticker *t = arg;
    uint64_t due = time_now_ns();

    pthread_mutex_lock(&t->lock);
    while (!t->stop) {
        struct timespec until;
        uint64_t now;

        pthread_mutex_unlock(&t->lock);
        t->fn(t->arg);
        now = time_now_ns();
        due += t->period_ns;
        if (due <= now)
            due = now + t->period_ns; /* overran: skip the missed ticks */
        until = ts_of(due);
        pthread_mutex_lock(&t->lock);
        while (!t->stop && pthread_cond_timedwait(&t->cond, &t->lock, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

int ticker_start(struct ticker *t, uint64_t period_ns, void (*fn)(void *arg), void *arg)
{
    pthread_condattr_t ca;
    int ret;

    if (!period_ns || !fn)
        return -EINVAL;
    t->stop = false;
    t->period_ns = period_ns;
    t->fn = fn;
    t->arg = arg;
    pthread_mutex_init(&t->lock, NULL);
    pthread_condattr_init(&ca);
    /* The deadlines are CLOCK_MONOTONIC (time_now_ns()): a wall clock step moves nothing. */
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cond, &ca);
    pthread_condattr_destroy(&ca);
    ret = pthread_create(&t->thread, NULL, ticker_thread, t);
    if (ret) {
        pthread_cond_destroy(&t->cond);
        pthread_mutex_destroy(&t->lock);
        return -ret;
    }
    return 0;
}

void ticker_stop(struct ticker *t)
{
    pthread_mutex_lock(&t->lock);
    t->stop = true;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->lock);
}
