/* A dirty-page log over one host mapping of guest RAM: one bit per 4 KiB page, set by whoever
 * writes the page (the CPU engine when it maps a page writable, a device when it completes a
 * request into guest buffers) while logging is on, and harvested by migration and snapshots.
 *
 * Threads: marking is lock-free from any thread (an atomic OR); harvesting swaps words out
 * atomically, so a mark is never lost: it lands either in this harvest or in the next one.
 * The CPU engine marks a page when it first maps it for writing, so a harvester must, after
 * taking the bits, make every vCPU drop its writable mappings before it copies the pages (see
 * vcpu_dirty_rearm() in src/cpu/engine.h); writes through a mapping made before the flush are
 * then already in the copied bytes. */
#ifndef TESSERA_BASE_DIRTY_H
#define TESSERA_BASE_DIRTY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DIRTY_PAGE_SHIFT 12
#define DIRTY_PAGE_SIZE  (1u << DIRTY_PAGE_SHIFT)

struct dirty_log {
    atomic_bool on;
    uint64_t pages;          /* pages covered */
    _Atomic uint64_t *words; /* (pages + 63) / 64 words */
};

/* Marks the pages of [off, off + len) (byte offsets into the mapping) dirty if logging is on.
 * Out-of-range parts are ignored. */
static inline void dirty_log_mark(struct dirty_log *log, uint64_t off, uint64_t len)
{
    uint64_t first, last;

    if (!log || !atomic_load_explicit(&log->on, memory_order_acquire) || len == 0)
        return;
    first = off >> DIRTY_PAGE_SHIFT;
    last = (off + len - 1) >> DIRTY_PAGE_SHIFT;
    if (last >= log->pages)
        last = log->pages - 1;
    for (uint64_t p = first; p <= last && p < log->pages; p++)
        atomic_fetch_or_explicit(&log->words[p / 64], UINT64_C(1) << (p % 64),
                                 memory_order_relaxed);
}

/* Allocates the bitmap for `pages` pages, logging off. 0 or -ENOMEM. */
int dirty_log_init(struct dirty_log *log, uint64_t pages);
void dirty_log_destroy(struct dirty_log *log);

/* Turns logging on with every page marked (the first pass copies all of RAM), or off. */
void dirty_log_start(struct dirty_log *log);
void dirty_log_stop(struct dirty_log *log);

/* Moves the marks into `out` ((pages + 63) / 64 words) and clears them. Returns how many pages
 * were dirty. */
uint64_t dirty_log_harvest(struct dirty_log *log, uint64_t *out);
/* The same, but ORs the marks into what out already holds (pages taken earlier and not yet
 * copied stay selected). Returns how many pages are selected in out afterwards. */
uint64_t dirty_log_collect(struct dirty_log *log, uint64_t *out);

#endif
