/* Guest RAM: one contiguous host mapping per region, and the one bounds-checked helper
 * through which devices and loaders turn guest physical addresses into host pointers. */
#ifndef TESSERA_HW_GUEST_MEM_H
#define TESSERA_HW_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/codewatch.h"
#include "base/dirty.h"

typedef uint64_t gpa_t;

struct guest_ram {
    gpa_t base;
    uint64_t size;
    uint8_t *host; /* mmap(MAP_NORESERVE); size bytes */
    /* Pages written while logging is on (migration, snapshots). Devices mark what they wrote
     * with guest_ram_mark_dirty() before they hand a buffer back to the driver. */
    struct dirty_log dirty;
    /* The pages harts decoded code from (base/codewatch.h): devices report what they wrote
     * with guest_ram_mark_dirty(), so that a hart's next FENCE.I drops what it decoded. */
    struct code_watch code;
};

/* Maps `size` bytes of anonymous memory for RAM at `base`. 0 or -errno. */
int guest_ram_init(struct guest_ram *ram, gpa_t base, uint64_t size);
void guest_ram_destroy(struct guest_ram *ram);

/* Offers RAM to the host's page merging (KSM: madvise MADV_MERGEABLE) or takes the offer back
 * (MADV_UNMERGEABLE, which unshares what was merged). Merging happens only while the host runs
 * KSM (/sys/kernel/mm/ksm/run); a merged page is copied again on the guest's next write. 0, or
 * -errno (-EINVAL: a kernel without KSM), and RAM works the same either way. Set-up thread. */
int guest_ram_set_mergeable(struct guest_ram *ram, bool on);

/* Asks the host for transparent huge pages behind RAM (mem_huge(), base/populate.h): the
 * guest's first touch of RAM is then one fault per 2 MiB instead of per 4 KiB. The balloon and
 * free page reporting still give back what they free (splitting a huge page), and
 * guest_ram_untouched() sees a whole huge page as touched. 0, or -errno (-EINVAL: a kernel
 * without THP), and RAM works the same either way. */
int guest_ram_set_huge(struct guest_ram *ram);

/* Makes all of RAM read as zero again and gives its pages back to the host (no touching of
 * every page, so a large idle guest stays cheap). */
void guest_ram_clear(struct guest_ram *ram);

/* Finds which of the `count` pages (64 at most) from page index `first` of the mapping have
 * never been touched, or were given back, and so read as zero without host memory behind
 * them: bit i of *out is page first + i. Looking at such a page (to see that it is zero)
 * would make the host map it, so snapshots and migration ask here first. 0, or -errno when
 * the kernel cannot tell (no /proc): then treat every page as touched. Any thread; the answer
 * may be stale at once if the guest runs, which the dirty log covers. */
int guest_ram_untouched(const struct guest_ram *ram, uint64_t first, unsigned count, uint64_t *out);

/* Host pointer for [gpa, gpa+len) if that range lies entirely in RAM, else NULL. Handles
 * wrap-around: a hostile gpa/len pair can never yield a pointer outside the mapping. */
static inline void *guest_ram_ptr(const struct guest_ram *ram, gpa_t gpa, uint64_t len)
{
    uint64_t off = gpa - ram->base;

    if (gpa < ram->base || off > ram->size || len > ram->size - off)
        return NULL;
    return ram->host + off;
}

/* Records that a device wrote the host range [p, p + len) of RAM: dirty if logging is on,
 * and written for the harts holding code decoded from it; p must come from guest_ram_ptr()
 * (other pointers are ignored). Any thread. */
static inline void guest_ram_mark_dirty(const struct guest_ram *ram, const void *p, uint64_t len)
{
    const uint8_t *b = p;

    if (b < ram->host || b >= ram->host + ram->size)
        return;
    dirty_log_mark((struct dirty_log *)&ram->dirty, (uint64_t)(b - ram->host), len);
    code_watch_write((struct code_watch *)&ram->code, (uint64_t)(b - ram->host), len);
}

#endif
