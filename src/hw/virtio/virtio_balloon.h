/* The balloon device's host-side controls, for the control API: the target, and what the
 * device knows of the guest's memory (its statistics, what was released). */
#ifndef TESSERA_HW_VIRTIO_VIRTIO_BALLOON_H
#define TESSERA_HW_VIRTIO_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stdint.h>

struct virtio_balloon;

/* Statistic tags of virtio 1.2 §5.5.6.3 (swap in/out, major/minor faults, free, total,
 * available, caches, hugetlb allocations/failures). */
#define BALLOON_STAT_COUNT 10

struct balloon_stats {
    uint64_t value[BALLOON_STAT_COUNT];
    uint32_t valid;      /* bit n: value[n] was reported */
    uint64_t updated_ns; /* CLOCK_MONOTONIC of the last report, 0 if none */
};

struct balloon_info {
    uint64_t target_bytes;
    uint64_t actual_bytes;   /* as the guest last reported */
    uint64_t released_pages; /* pages released to the host since the last reset */
    /* Bytes the guest reported free (VIRTIO_BALLOON_F_REPORTING) and we released, since the
     * device was created: a reboot of the guest does not reset it. */
    uint64_t reported_bytes;
    bool free_page_reporting; /* the device offers it (option free_page_reporting) */
    struct balloon_stats stats;
};

/* Asks the guest to hold `bytes` in the balloon (rounded down to 4 KiB pages). Any thread.
 * While the device is quiesced for a snapshot the new target waits and reaches the guest at
 * resume (it is not part of the saved state). */
void virtio_balloon_set_target(struct virtio_balloon *b, uint64_t bytes);
void virtio_balloon_get_info(struct virtio_balloon *b, struct balloon_info *out);

#endif
