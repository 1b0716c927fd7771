/* The VMM process's own memory as the host sees it: its resident set, and the pages of it the
 * host's page merging (KSM) shares with other processes. For GET /v1/vm/stats, which the
 * daemon's balloon policy reads.
 *
 * The numbers come from /proc/self: statm, ksm_merging_pages (Linux >= 5.19) and ksm_stat
 * (Linux >= 6.1). memstats_open() opens them once, before the sandbox: a sandboxed VMM runs as
 * another user and is not dumpable, so the 0400 ksm files then belong to root and can no
 * longer be opened (docs/sandbox.md). Reads go through the descriptors kept open (pread at 0).
 * A file the kernel lacks is reported as unknown, never as an error.
 *
 * Threads: memstats_open() is idempotent and may race with itself (pthread_once); read from
 * any thread. */
#ifndef TESSERA_VMM_MEMSTATS_H
#define TESSERA_VMM_MEMSTATS_H

#include <stdbool.h>
#include <stdint.h>

struct memstats {
    bool have_rss;
    uint64_t rss_bytes; /* resident set (statm's resident pages times the page size) */
    bool have_ksm;
    uint64_t ksm_merging_pages; /* pages of this process merged by KSM */
    bool have_profit;
    int64_t ksm_profit_bytes; /* ksm_stat's ksm_process_profit: bytes saved less KSM's cost */
};

/* Opens the /proc/self files for later reads. Call before the sandbox (vm_api_start() does). */
void memstats_open(void);

/* Reads the current numbers; a number the kernel does not give has its have_ flag false. */
void memstats_read(struct memstats *out);

#endif
