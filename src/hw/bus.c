#include "hw/bus.h"

#include <errno.h>
#include <stddef.h>

int bus_add(struct bus *bus, const struct mmio_region *region)
{
    for (unsigned i = 0; i < bus->count; i++) {
        const struct mmio_region *r = &bus->regions[i];

        if (region->base < r->base + r->size && r->base < region->base + region->size)
            return -EEXIST;
    }
    if (bus->count == BUS_MAX_REGIONS)
        return -ENOSPC;
    bus->regions[bus->count++] = *region;
    return 0;
}

const struct mmio_region *bus_find(const struct bus *bus, uint64_t addr)
{
    for (unsigned i = 0; i < bus->count; i++) {
        const struct mmio_region *r = &bus->regions[i];

        if (addr - r->base < r->size)
            return r;
    }
    return NULL;
}

static const struct mmio_region *bus_check(const struct bus *bus, uint64_t addr, unsigned size,
                                           uint64_t *offset)
{
    const struct mmio_region *r = bus_find(bus, addr);

    if (!r || size < r->ops->min_size || size > r->ops->max_size || (addr & (size - 1)))
        return NULL;
    *offset = addr - r->base;
    if (*offset + size > r->size)
        return NULL;
    return r;
}

int bus_read(const struct bus *bus, uint64_t addr, unsigned size, uint64_t *value)
{
    uint64_t offset;
    const struct mmio_region *r = bus_check(bus, addr, size, &offset);

    *value = 0;
    if (!r || !r->ops->read)
        return -1;
    if (r->ops->read(r->opaque, offset, size, value) < 0) {
        *value = 0;
        return -1;
    }
    if (size < 8)
        *value &= (1ull << (size * 8)) - 1;
    return 0;
}

int bus_write(const struct bus *bus, uint64_t addr, unsigned size, uint64_t value)
{
    uint64_t offset;
    const struct mmio_region *r = bus_check(bus, addr, size, &offset);

    if (!r || !r->ops->write)
        return -1;
    if (size < 8)
        value &= (1ull << (size * 8)) - 1;
    return r->ops->write(r->opaque, offset, size, value) < 0 ? -1 : 0;
}
