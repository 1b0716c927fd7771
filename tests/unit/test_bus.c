/* The bus guards the door: devices see only in-range, legal-size, aligned accesses. */
#include "test.h"

#include "hw/bus.h"
#include "hw/guest_mem.h"

struct fake_dev {
    unsigned calls;
    uint64_t last_offset;
    uint64_t reg;
};

static int fake_read(void *opaque, uint64_t offset, unsigned size, uint64_t *value)
{
    struct fake_dev *d = opaque;

    d->calls++;
    d->last_offset = offset;
    *value = d->reg;
    return 0;
}

static int fake_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    struct fake_dev *d = opaque;

    d->calls++;
    d->last_offset = offset;
    d->reg = value;
    return 0;
}

static const struct mmio_ops fake_ops = {
    .read = fake_read, .write = fake_write, .min_size = 4, .max_size = 4};

int main(void)
{
    struct bus bus = {0};
    struct fake_dev dev = {0};
    struct mmio_region r = {
        .name = "fake", .base = 0x1000, .size = 0x100, .ops = &fake_ops, .opaque = &dev};
    uint64_t v;

    CHECK(bus_add(&bus, &r) == 0);
    r.base = 0x10f0;
    CHECK(bus_add(&bus, &r) < 0); /* overlaps */

    CHECK(bus_write(&bus, 0x1004, 4, 0x1234567890ull) == 0);
    CHECK_EQ_U64(dev.reg, 0x34567890); /* truncated to the access size */
    CHECK(bus_read(&bus, 0x1004, 4, &v) == 0);
    CHECK_EQ_U64(v, 0x34567890);
    CHECK_EQ_U64(dev.last_offset, 4);

    dev.calls = 0;
    CHECK(bus_read(&bus, 0x1002, 4, &v) < 0); /* misaligned */
    CHECK(bus_read(&bus, 0x1004, 1, &v) < 0); /* below min size */
    CHECK(bus_read(&bus, 0x1000, 8, &v) < 0); /* above max size */
    CHECK(bus_read(&bus, 0x1100, 4, &v) < 0); /* past the end */
    CHECK(bus_read(&bus, 0xffc, 4, &v) < 0);  /* before the start */
    CHECK_EQ_U64(v, 0);
    CHECK_EQ_U64(dev.calls, 0);

    struct guest_ram ram;
    CHECK(guest_ram_init(&ram, 0x80000000, 1 << 20) == 0);
    CHECK(guest_ram_ptr(&ram, 0x80000000, 1 << 20) == ram.host);
    CHECK(guest_ram_ptr(&ram, 0x80000001, 1 << 20) == NULL);
    CHECK(guest_ram_ptr(&ram, 0x7fffffff, 2) == NULL);
    CHECK(guest_ram_ptr(&ram, 0x800fffff, 1) != NULL);
    CHECK(guest_ram_ptr(&ram, 0x80000010, UINT64_MAX) == NULL); /* wrap-around */
    CHECK(guest_ram_ptr(&ram, UINT64_MAX, 2) == NULL);
    guest_ram_destroy(&ram);
    return test_finish("bus");
}
