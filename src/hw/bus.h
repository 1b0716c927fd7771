/* The MMIO bus: address ranges and the device callbacks behind them.
 *
 * The core guards the door: bus_read()/bus_write() call a device only with an offset inside
 * its region, a size the device declared legal, and an offset aligned to that size. Anything
 * else is answered as an access fault without the device ever seeing it. */
#ifndef TESSERA_HW_BUS_H
#define TESSERA_HW_BUS_H

#include <stdbool.h>
#include <stdint.h>

struct mmio_ops {
    /* Both run on the vCPU thread that made the access, with no bus lock held; a device
     * that is shared between harts or with an I/O thread takes its own lock.
     * Return 0, or -1 to report an access fault to the guest. `size` is 1, 2, 4 or 8 and
     * lies in [min_size, max_size]; `offset` is aligned to `size` and inside the region. */
    int (*read)(void *opaque, uint64_t offset, unsigned size, uint64_t *value);
    int (*write)(void *opaque, uint64_t offset, unsigned size, uint64_t value);
    unsigned min_size; /* smallest legal access in bytes (1, 2, 4 or 8) */
    unsigned max_size; /* largest legal access in bytes */
};

struct mmio_region {
    const char *name;
    uint64_t base;
    uint64_t size;
    const struct mmio_ops *ops;
    void *opaque;
};

#define BUS_MAX_REGIONS 32

struct bus {
    unsigned count;
    struct mmio_region regions[BUS_MAX_REGIONS];
};

/* Adds a region. Returns 0, -EEXIST if it overlaps another, -ENOSPC when the bus is full.
 * Set-up time only: not safe while vCPUs run. */
int bus_add(struct bus *bus, const struct mmio_region *region);

/* The region that contains `addr`, or NULL. */
const struct mmio_region *bus_find(const struct bus *bus, uint64_t addr);

/* Guest-driven accesses: 0 on success, -1 for an access fault (no device, illegal size,
 * misaligned, or the device refused). A failed read stores 0 in *value. */
int bus_read(const struct bus *bus, uint64_t addr, unsigned size, uint64_t *value);
int bus_write(const struct bus *bus, uint64_t addr, unsigned size, uint64_t value);

#endif
