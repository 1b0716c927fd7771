/* The test finisher: which writes power off, fail with a code, reset, or do nothing. */
#include "test.h"

#include <errno.h>

#include "hw/sifive_test.h"

struct events {
    unsigned count;
    enum sifive_test_event last;
    unsigned code;
};

static void on_event(void *opaque, enum sifive_test_event ev, unsigned code)
{
    struct events *e = opaque;

    e->count++;
    e->last = ev;
    e->code = code;
}

static void wr(struct sifive_test *t, uint64_t off, uint64_t v)
{
    CHECK(sifive_test_mmio_ops.write(t, off, 4, v) == 0);
}

int main(void)
{
    struct events e = {0};
    struct sifive_test *t = NULL;
    uint64_t v = 1;

    CHECK(sifive_test_create(NULL, &e, &t) == -EINVAL);
    CHECK(sifive_test_create(on_event, &e, NULL) == -EINVAL);
    CHECK(t == NULL);
    sifive_test_destroy(NULL);
    CHECK(sifive_test_create(on_event, &e, &t) == 0);
    if (!t)
        return test_finish("hw_sifive_test");

    wr(t, 0, 0x5555);
    CHECK_EQ_U64(e.count, 1);
    CHECK(e.last == SIFIVE_TEST_PASS);
    CHECK_EQ_U64(e.code, 0);

    wr(t, 0, 0x3333);
    CHECK_EQ_U64(e.count, 2);
    CHECK(e.last == SIFIVE_TEST_FAIL);
    CHECK_EQ_U64(e.code, 0);

    wr(t, 0, (0x42u << 16) | 0x3333); /* FINISHER_FAIL with exit code 0x42 */
    CHECK_EQ_U64(e.count, 3);
    CHECK(e.last == SIFIVE_TEST_FAIL);
    CHECK_EQ_U64(e.code, 0x42);

    wr(t, 0, 0xffff3333);
    CHECK(e.last == SIFIVE_TEST_FAIL);
    CHECK_EQ_U64(e.code, 0xffff);

    wr(t, 0, 0x7777);
    CHECK_EQ_U64(e.count, 5);
    CHECK(e.last == SIFIVE_TEST_RESET);
    CHECK_EQ_U64(e.code, 0);

    /* As in QEMU, only the low 16 bits select the command. */
    wr(t, 0, 0x00015555);
    CHECK_EQ_U64(e.count, 6);
    CHECK(e.last == SIFIVE_TEST_PASS);
    CHECK_EQ_U64(e.code, 0);

    /* Unknown commands and other offsets do nothing. */
    wr(t, 0, 0);
    wr(t, 0, 0x1234);
    wr(t, 0, 0x5556);
    wr(t, 4, 0x5555);
    wr(t, 0xffc, 0x3333);
    CHECK_EQ_U64(e.count, 6);

    CHECK(sifive_test_mmio_ops.read(t, 0, 4, &v) == 0);
    CHECK_EQ_U64(v, 0);
    v = 1;
    CHECK(sifive_test_mmio_ops.read(t, 0xffc, 4, &v) == 0);
    CHECK_EQ_U64(v, 0);
    CHECK_EQ_U64(sifive_test_mmio_ops.min_size, 2);
    CHECK_EQ_U64(sifive_test_mmio_ops.max_size, 4);

    /* OpenSBI's sifive_test reset driver uses 16-bit stores (writew). */
    CHECK(sifive_test_mmio_ops.write(t, 0, 2, 0x5555) == 0);
    CHECK_EQ_U64(e.count, 7);
    CHECK(e.last == SIFIVE_TEST_PASS);
    CHECK(sifive_test_mmio_ops.write(t, 0, 2, 0x7777) == 0);
    CHECK(e.last == SIFIVE_TEST_RESET);
    CHECK(sifive_test_mmio_ops.write(t, 2, 2, 0x5555) == 0); /* not offset 0: ignored */
    CHECK_EQ_U64(e.count, 8);

    sifive_test_reset(t);
    wr(t, 0, 0x5555);
    CHECK_EQ_U64(e.count, 9);
    sifive_test_destroy(t);
    return test_finish("hw_sifive_test");
}
