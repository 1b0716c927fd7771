#include "base/dirty.h"

#include <errno.h>
#include <stdlib.h>

int dirty_log_init(struct dirty_log *log, uint64_t pages)
{
    uint64_t words = (pages + 63) / 64;

    atomic_init(&log->on, false);
    log->pages = pages;
    log->words = calloc(words ? words : 1, sizeof(*log->words));
    return log->words ? 0 : -ENOMEM;
}

void dirty_log_destroy(struct dirty_log *log)
{
    free(log->words);
    log->words = NULL;
    log->pages = 0;
}

void dirty_log_start(struct dirty_log *log)
{
    uint64_t words = (log->pages + 63) / 64;

    for (uint64_t i = 0; i < words; i++) {
        uint64_t bits = ~UINT64_C(0);

        if (i == words - 1 && log->pages % 64)
            bits = (UINT64_C(1) << (log->pages % 64)) - 1;
        atomic_store_explicit(&log->words[i], bits, memory_order_relaxed);
    }
    atomic_store_explicit(&log->on, true, memory_order_release);
}

void dirty_log_stop(struct dirty_log *log)
{
    atomic_store_explicit(&log->on, false, memory_order_release);
}

uint64_t dirty_log_harvest(struct dirty_log *log, uint64_t *out)
{
    uint64_t words = (log->pages + 63) / 64, n = 0;

    for (uint64_t i = 0; i < words; i++) {
        out[i] = atomic_exchange_explicit(&log->words[i], 0, memory_order_acq_rel);
        n += (uint64_t)__builtin_popcountll(out[i]);
    }
    return n;
}

uint64_t dirty_log_collect(struct dirty_log *log, uint64_t *out)
{
    uint64_t words = (log->pages + 63) / 64, n = 0;

    for (uint64_t i = 0; i < words; i++) {
        out[i] |= atomic_exchange_explicit(&log->words[i], 0, memory_order_acq_rel);
        n += (uint64_t)__builtin_popcountll(out[i]);
    }
    return n;
}
