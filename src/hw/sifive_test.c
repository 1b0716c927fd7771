/* SiFive test finisher. See sifive_test.h for the commands and the threading. */
#include "hw/sifive_test.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "base/log.h"
#include "base/state.h"

#define SIFIVE_TEST_CMD_FAIL  0x3333
#define SIFIVE_TEST_CMD_PASS  0x5555
#define SIFIVE_TEST_CMD_RESET 0x7777

struct sifive_test {
    /* Immutable after sifive_test_create(). */
    sifive_test_event_fn on_event;
    void *opaque;
};

int sifive_test_create(sifive_test_event_fn on_event, void *opaque, struct sifive_test **out)
{
    struct sifive_test *t;

    if (!on_event || !out)
        return -EINVAL;
    t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->on_event = on_event;
    t->opaque = opaque;
    *out = t;
    return 0;
}

void sifive_test_destroy(struct sifive_test *t)
{
    free(t);
}

void sifive_test_reset(struct sifive_test *t)
{
}

void sifive_test_save(struct sifive_test *t, struct sbuf *out)
{
}

int sifive_test_load(struct sifive_test *t, struct scur *in, uint32_t version)
{
    if (version != SIFIVE_TEST_STATE_VERSION)
        return scur_fail(in, "section version %" PRIu32 " is not supported (this build reads %u)",
                         version, SIFIVE_TEST_STATE_VERSION);
    return scur_finish(in);
}

/* vCPU thread, no lock. */
static int sifive_test_mmio_read(void *opaque, uint64_t offset, unsigned size, uint64_t *value)
{
    *value = 0;
    return 0;
}

/* vCPU thread, no lock; the callback runs here. */
static int sifive_test_mmio_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    struct sifive_test *t = opaque;
    unsigned cmd = (unsigned)(value & 0xffff);
    unsigned code = (unsigned)((value >> 16) & 0xffff);

    if (offset != 0) {
        log_guest("sifive_test: write of 0x%" PRIx64 " at offset 0x%" PRIx64 " ignored", value,
                  offset);
        return 0;
    }
    switch (cmd) {
    case SIFIVE_TEST_CMD_PASS: t->on_event(t->opaque, SIFIVE_TEST_PASS, 0); break;
    case SIFIVE_TEST_CMD_FAIL: t->on_event(t->opaque, SIFIVE_TEST_FAIL, code); break;
    case SIFIVE_TEST_CMD_RESET: t->on_event(t->opaque, SIFIVE_TEST_RESET, 0); break;
    default: log_guest("sifive_test: unknown command 0x%" PRIx64 " ignored", value); break;
    }
    return 0;
}

const struct mmio_ops sifive_test_mmio_ops = {
    .read = sifive_test_mmio_read,
    .write = sifive_test_mmio_write,
    /* OpenSBI powers off with a 16-bit store (writew), as QEMU's model allows. */
    .min_size = 2,
    .max_size = 4,
};
