/* Which pages of guest RAM hold code that harts have decoded, and whether such a page was
 * written since: what lets a hart keep its decoded blocks, translations and block chains
 * across a FENCE.I that made no code it holds stale.
 *
 * Linux runs FENCE.I each time it maps an executable page (and on every hart, through the
 * firmware, when it asks for a remote one): about 61,000 times in a Debian boot. A hart that
 * must assume any code changed drops every chain and compares every block with memory again
 * each time, while nearly always nothing it had decoded was written.
 *
 * The rule, one byte per 4 KiB page: bit i is set while hart i holds blocks decoded from the
 * page. Whoever writes a page whose byte is nonzero clears it and counts a write for each hart
 * named (`writes`): devices when they complete a request into guest buffers, harts when they
 * map a page for writing (the first store through a mapping made before the page held code
 * is found by a sweep, below). At FENCE.I, a hart whose count did not move since its last
 * full revalidation holds no block that memory no longer matches.
 *
 * Harts cache writable mappings in their TLBs, and a hart may start to decode a page that
 * another hart can write through such a mapping without calling in. So a page that becomes
 * code (its byte going from 0) moves `epoch`, and every hart, between two blocks, drops its
 * writable mappings of pages that now hold code and counts a write for their harts (it may
 * have written through them), then acknowledges the epoch. A hart trusts its count only once
 * every other hart has acknowledged the epoch of its own newest code page, or is parked (in
 * WFI or stopped: it sweeps before it runs again).
 *
 * Threads: harts and device threads, lock-free. Every operation here is sequentially
 * consistent, which the argument above needs (a hart's sweep reads the epoch after the byte
 * that moved it was set; a hart reads the acknowledgements, then its count). */
#ifndef TESSERA_BASE_CODEWATCH_H
#define TESSERA_BASE_CODEWATCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define CODE_WATCH_HARTS      8
#define CODE_WATCH_PAGE_SHIFT 12
/* An acknowledgement: a hart that cannot write now (parked) and sweeps before it runs. */
#define CODE_WATCH_PARKED UINT64_MAX
/* An acknowledgement: a hart coming out of a park, not yet swept. */
#define CODE_WATCH_WAKING 0

struct code_watch_hart {
    _Atomic uint64_t writes; /* writes counted into pages holding this hart's code */
    _Atomic uint64_t ack;    /* the epoch this hart swept for, or PARKED, or WAKING */
    char pad[48];            /* one cache line each: written by their own hart */
};

struct code_watch {
    uint64_t pages;
    _Atomic uint8_t *code;  /* per page: bit i while hart i holds code decoded from it */
    _Atomic unsigned harts; /* bit i: hart i takes part (code_watch_join) */
    _Atomic bool broken;    /* a hart that cannot take part runs: trust nobody's count */
    char pad0[40];          /* the epoch on a cache line of its own, read between blocks */
    _Atomic uint64_t epoch; /* moved each time a page's byte leaves 0; starts at 1 */
    char pad1[56];
    struct code_watch_hart hart[CODE_WATCH_HARTS];
};

/* For a region of `pages` pages. 0 or -ENOMEM. */
int code_watch_init(struct code_watch *cw, uint64_t pages);
void code_watch_destroy(struct code_watch *cw);

/* Hart `id` takes part: parked until it runs. False when id is out of range (the hart then
 * must not trust its count, and the watch refuses trust to every hart: code_watch_trusted). */
bool code_watch_join(struct code_watch *cw, unsigned id);
void code_watch_leave(struct code_watch *cw, unsigned id);

/* Counts a write for every hart named in `bits`. */
static inline void code_watch_count(struct code_watch *cw, unsigned bits)
{
    for (unsigned i = 0; bits; i++, bits >>= 1)
        if (bits & 1)
            atomic_fetch_add(&cw->hart[i].writes, 1);
}

/* Records that [off, off + len) (byte offsets into the region) is about to be, or was just,
 * written by something other than a hart's cached writable mapping. Any thread; the part out
 * of range is ignored. One load per page when the page holds no code. */
static inline void code_watch_write(struct code_watch *cw, uint64_t off, uint64_t len)
{
    uint64_t first, last;

    if (!cw || len == 0 || off >= cw->pages << CODE_WATCH_PAGE_SHIFT)
        return;
    first = off >> CODE_WATCH_PAGE_SHIFT;
    last = (off + len - 1) >> CODE_WATCH_PAGE_SHIFT;
    if (last >= cw->pages || last < first)
        last = cw->pages - 1;
    for (uint64_t p = first; p <= last; p++) {
        if (atomic_load_explicit(&cw->code[p], memory_order_relaxed))
            code_watch_count(cw, atomic_exchange(&cw->code[p], 0));
    }
}

/* Whether every hart but `id` has swept for epoch `need` or is parked, and all take part. */
bool code_watch_acked(struct code_watch *cw, unsigned id, uint64_t need);

#endif
