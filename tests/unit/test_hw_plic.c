/* The PLIC as a guest and the devices see it: priorities, pending, enables, thresholds,
 * claim/complete with the level-triggered gateway, ties, and several contexts. */
#include "test.h"
#include "fake_irq.h"

#include <errno.h>
#include <stdbool.h>

#include "hw/plic.h"

#define NSOURCES  96 /* as QEMU 7.2 `virt` */
#define NCONTEXTS 4  /* two harts: 0 = hart 0 M, 1 = hart 0 S, 2 = hart 1 M, 3 = hart 1 S */

#define PRIO(s)      (0x0 + 4 * (s))
#define PENDING(w)   (0x1000 + 4 * (w))
#define ENABLE(c, w) (0x2000 + 0x80 * (c) + 4 * (w))
#define THRESH(c)    (0x200000 + 0x1000 * (c))
#define CLAIM(c)     (0x200004 + 0x1000 * (c))

static struct fake_irq ctx_rx[NCONTEXTS];

static uint64_t rd(struct plic *p, uint64_t off)
{
    uint64_t v = 0xdeadbeef;

    CHECK(plic_mmio_ops.read(p, off, 4, &v) == 0);
    return v;
}

static void wr(struct plic *p, uint64_t off, uint64_t v)
{
    CHECK(plic_mmio_ops.write(p, off, 4, v) == 0);
}

static void enable(struct plic *p, unsigned ctx, unsigned src)
{
    wr(p, ENABLE(ctx, src / 32), rd(p, ENABLE(ctx, src / 32)) | 1u << (src % 32));
}

static bool pending(struct plic *p, unsigned src)
{
    return (rd(p, PENDING(src / 32)) >> (src % 32)) & 1;
}

static void test_create_args(const struct irq_line *lines)
{
    struct plic *p = NULL;

    CHECK(plic_create(1, NCONTEXTS, lines, &p) == -EINVAL);
    CHECK(plic_create(PLIC_MAX_SOURCES + 1, NCONTEXTS, lines, &p) == -EINVAL);
    CHECK(plic_create(NSOURCES, 0, lines, &p) == -EINVAL);
    CHECK(plic_create(NSOURCES, NCONTEXTS, NULL, &p) == -EINVAL);
    CHECK(p == NULL);
    plic_destroy(NULL);
}

static void test_registers(struct plic *p)
{
    wr(p, PRIO(1), 0xff);
    CHECK_EQ_U64(rd(p, PRIO(1)), 7); /* 3-bit WARL field */
    wr(p, PRIO(NSOURCES - 1), 5);
    CHECK_EQ_U64(rd(p, PRIO(NSOURCES - 1)), 5);
    wr(p, PRIO(0), 3); /* source 0 does not exist */
    CHECK_EQ_U64(rd(p, PRIO(0)), 0);
    wr(p, PRIO(NSOURCES), 3); /* nor do sources past the count */
    CHECK_EQ_U64(rd(p, PRIO(NSOURCES)), 0);

    wr(p, ENABLE(1, 0), 0xffffffff);
    CHECK_EQ_U64(rd(p, ENABLE(1, 0)), 0xfffffffe); /* bit 0: source 0 */
    wr(p, ENABLE(1, 2), 0xffffffff);
    CHECK_EQ_U64(rd(p, ENABLE(1, 2)), 0xffffffff); /* sources 64..95 all exist */
    wr(p, ENABLE(1, 3), 0xffffffff);
    CHECK_EQ_U64(rd(p, ENABLE(1, 3)), 0); /* 96.. do not */
    CHECK_EQ_U64(rd(p, ENABLE(0, 0)), 0); /* per context */

    wr(p, THRESH(3), 0x1f);
    CHECK_EQ_U64(rd(p, THRESH(3)), 7);
    CHECK_EQ_U64(rd(p, THRESH(2)), 0);

    /* Contexts past the count and reserved words: read 0, writes ignored. */
    wr(p, THRESH(NCONTEXTS), 5);
    CHECK_EQ_U64(rd(p, THRESH(NCONTEXTS)), 0);
    CHECK_EQ_U64(rd(p, CLAIM(NCONTEXTS)), 0);
    wr(p, ENABLE(NCONTEXTS, 0), 0xffffffff);
    CHECK_EQ_U64(rd(p, ENABLE(NCONTEXTS, 0)), 0);
    CHECK_EQ_U64(rd(p, THRESH(0) + 8), 0);
    CHECK_EQ_U64(rd(p, PLIC_MMIO_SIZE - 4), 0);
    CHECK_EQ_U64(rd(p, 0x1ffffc), 0);

    for (unsigned c = 0; c < NCONTEXTS; c++)
        CHECK(!ctx_rx[c].level);
}

static void test_claim_complete(struct plic *p)
{
    /* A high input is pending even with nothing configured; the line stays low. */
    plic_set_irq(p, 1, true);
    CHECK(pending(p, 1));
    CHECK(!ctx_rx[0].level);
    wr(p, PENDING(0), 0); /* read-only */
    CHECK(pending(p, 1));

    wr(p, PRIO(1), 1);
    CHECK(!ctx_rx[0].level); /* not enabled yet */
    enable(p, 0, 1);
    CHECK(ctx_rx[0].level);
    CHECK(!ctx_rx[1].level && !ctx_rx[2].level && !ctx_rx[3].level);

    CHECK_EQ_U64(rd(p, CLAIM(0)), 1);
    CHECK(!pending(p, 1)); /* in service */
    CHECK(!ctx_rx[0].level);
    CHECK_EQ_U64(rd(p, CLAIM(0)), 0); /* nothing else */

    /* Completion with the level still high: pending again at once. */
    wr(p, CLAIM(0), 1);
    CHECK(pending(p, 1));
    CHECK(ctx_rx[0].level);
    CHECK_EQ_U64(rd(p, CLAIM(0)), 1);
    plic_set_irq(p, 1, false); /* the device is serviced */
    CHECK(!pending(p, 1));     /* (not pending while in service anyway) */
    wr(p, CLAIM(0), 1);
    CHECK(!pending(p, 1));
    CHECK(!ctx_rx[0].level);

    /* While in service, a raised input does not pend; at completion it does. */
    plic_set_irq(p, 1, true);
    CHECK_EQ_U64(rd(p, CLAIM(0)), 1);
    plic_set_irq(p, 1, false);
    plic_set_irq(p, 1, true);
    CHECK(!pending(p, 1));
    CHECK(!ctx_rx[0].level);
    wr(p, CLAIM(0), 1);
    CHECK(pending(p, 1));
    CHECK(ctx_rx[0].level);

    /* The gateway latched the request: an input that drops before the claim stays pending
     * until claimed (PLIC spec, "Interrupt Gateways"), and after completion it does not
     * re-pend because the level is now low. */
    plic_set_irq(p, 1, false);
    CHECK(pending(p, 1));
    CHECK(ctx_rx[0].level);
    CHECK_EQ_U64(rd(p, CLAIM(0)), 1);
    CHECK(!ctx_rx[0].level);
    wr(p, CLAIM(0), 1);
    CHECK(!pending(p, 1));
    CHECK(!ctx_rx[0].level);
    CHECK_EQ_U64(rd(p, CLAIM(0)), 0);

    /* Completing what is not in service is ignored. */
    wr(p, CLAIM(0), 1);
    wr(p, CLAIM(0), 0);
    wr(p, CLAIM(0), NSOURCES + 5);
    CHECK(!ctx_rx[0].level);
}

static void test_priority_threshold(struct plic *p)
{
    /* Priority 0 never interrupts, even with threshold 0. */
    wr(p, PRIO(2), 0);
    enable(p, 0, 2);
    plic_set_irq(p, 2, true);
    CHECK(pending(p, 2));
    CHECK(!ctx_rx[0].level);
    CHECK_EQ_U64(rd(p, CLAIM(0)), 0);

    /* Threshold: only priorities strictly above it interrupt. */
    wr(p, PRIO(2), 3);
    CHECK(ctx_rx[0].level);
    wr(p, THRESH(0), 3);
    CHECK(!ctx_rx[0].level);
    CHECK_EQ_U64(rd(p, CLAIM(0)), 0);
    wr(p, THRESH(0), 2);
    CHECK(ctx_rx[0].level);

    /* Highest priority first: 7 (prio 5) before 5 (prio 4) before 2 (prio 3). */
    wr(p, PRIO(5), 4);
    wr(p, PRIO(7), 5);
    enable(p, 0, 5);
    enable(p, 0, 7);
    plic_set_irq(p, 5, true);
    plic_set_irq(p, 7, true);
    CHECK_EQ_U64(rd(p, CLAIM(0)), 7);
    CHECK_EQ_U64(rd(p, CLAIM(0)), 5);
    CHECK(ctx_rx[0].level);
    CHECK_EQ_U64(rd(p, CLAIM(0)), 2);
    CHECK(!ctx_rx[0].level);
    CHECK_EQ_U64(rd(p, CLAIM(0)), 0);
    for (unsigned s = 2; s <= 7; s++)
        plic_set_irq(p, s, false);
    wr(p, CLAIM(0), 2);
    wr(p, CLAIM(0), 5);
    wr(p, CLAIM(0), 7);
    CHECK(!ctx_rx[0].level);

    /* Ties go to the lowest id, also across bitmap words. */
    wr(p, THRESH(0), 0);
    wr(p, PRIO(40), 6);
    wr(p, PRIO(33), 6);
    wr(p, PRIO(9), 6);
    wr(p, PRIO(4), 2);
    enable(p, 0, 40);
    enable(p, 0, 33);
    enable(p, 0, 9);
    enable(p, 0, 4);
    plic_set_irq(p, 40, true);
    plic_set_irq(p, 33, true);
    plic_set_irq(p, 4, true);
    plic_set_irq(p, 9, true);
    CHECK_EQ_U64(rd(p, PENDING(1)), (1u << 1) | (1u << 8));
    CHECK_EQ_U64(rd(p, CLAIM(0)), 9);
    CHECK_EQ_U64(rd(p, CLAIM(0)), 33);
    CHECK_EQ_U64(rd(p, CLAIM(0)), 40);
    CHECK_EQ_U64(rd(p, CLAIM(0)), 4);
    CHECK_EQ_U64(rd(p, CLAIM(0)), 0);
    for (unsigned i = 0; i < 4; i++) {
        static const unsigned srcs[] = {4, 9, 33, 40};

        plic_set_irq(p, srcs[i], false);
        wr(p, CLAIM(0), srcs[i]);
    }
    CHECK(!ctx_rx[0].level);
    CHECK_EQ_U64(rd(p, PENDING(0)), 0);
    CHECK_EQ_U64(rd(p, PENDING(1)), 0);
}

/* Two contexts (hart 0 M and hart 1 M) sharing one source, and a third with its own. */
static void test_two_contexts(struct plic *p)
{
    wr(p, PRIO(10), 1);
    wr(p, PRIO(11), 1);
    enable(p, 0, 10);
    enable(p, 2, 10);
    enable(p, 2, 11);
    plic_set_irq(p, 10, true);
    CHECK(ctx_rx[0].level && ctx_rx[2].level);
    CHECK(!ctx_rx[1].level && !ctx_rx[3].level);

    /* Hart 1 claims: hart 0 loses the interrupt (it is no longer pending). */
    CHECK_EQ_U64(rd(p, CLAIM(2)), 10);
    CHECK(!ctx_rx[0].level && !ctx_rx[2].level);
    CHECK_EQ_U64(rd(p, CLAIM(0)), 0);

    /* A threshold only affects its own context. */
    wr(p, THRESH(2), 7);
    plic_set_irq(p, 11, true);
    CHECK(!ctx_rx[2].level);
    wr(p, THRESH(2), 0);
    CHECK(ctx_rx[2].level);
    CHECK(!ctx_rx[0].level); /* 11 is not enabled for context 0 */

    /* Context 0 cannot complete 11: not enabled for it. Still in service after. */
    CHECK_EQ_U64(rd(p, CLAIM(2)), 11);
    wr(p, CLAIM(0), 11);
    CHECK(!pending(p, 11));
    CHECK(!ctx_rx[2].level);
    wr(p, CLAIM(2), 11); /* its own completion re-pends (level still high) */
    CHECK(pending(p, 11));
    CHECK(ctx_rx[2].level);

    /* The S-mode context of hart 0 is independent. */
    wr(p, PRIO(20), 2);
    enable(p, 1, 20);
    plic_set_irq(p, 20, true);
    CHECK(ctx_rx[1].level);
    CHECK_EQ_U64(rd(p, CLAIM(1)), 20);
    CHECK(!ctx_rx[1].level);

    plic_set_irq(p, 10, false);
    plic_set_irq(p, 11, false);
    plic_set_irq(p, 20, false);
    wr(p, CLAIM(2), 10);
    wr(p, CLAIM(1), 20);
    CHECK_EQ_U64(rd(p, CLAIM(2)), 11); /* re-pended above and latched */
    wr(p, CLAIM(2), 11);
    CHECK_EQ_U64(rd(p, CLAIM(2)), 0);
    for (unsigned c = 0; c < NCONTEXTS; c++)
        CHECK(!ctx_rx[c].level);
}

static void test_bad_inputs(struct plic *p)
{
    plic_set_irq(p, 0, true);
    plic_set_irq(p, NSOURCES, true);
    plic_set_irq(p, 12345, true);
    CHECK_EQ_U64(rd(p, PENDING(0)) & 1, 0);
    CHECK_EQ_U64(rd(p, PENDING(3)), 0);
}

static void test_reset(struct plic *p)
{
    wr(p, PRIO(30), 4);
    enable(p, 3, 30);
    plic_set_irq(p, 30, true);
    CHECK(ctx_rx[3].level);
    CHECK_EQ_U64(rd(p, CLAIM(3)), 30);
    plic_reset(p);
    for (unsigned c = 0; c < NCONTEXTS; c++) {
        CHECK(!ctx_rx[c].level);
        CHECK_EQ_U64(rd(p, THRESH(c)), 0);
        CHECK_EQ_U64(rd(p, ENABLE(c, 0)), 0);
    }
    CHECK_EQ_U64(rd(p, PRIO(30)), 0);
    CHECK(pending(p, 30)); /* the device still holds its line high; nothing in service */
    wr(p, PRIO(30), 1);
    enable(p, 3, 30);
    CHECK(ctx_rx[3].level);
    plic_set_irq(p, 30, false);
    CHECK(ctx_rx[3].level); /* latched until claimed */
    CHECK_EQ_U64(rd(p, CLAIM(3)), 30);
    CHECK(!ctx_rx[3].level);
}

/* A source count that is not a multiple of 32 masks the tail of the last word. */
static void test_odd_count(const struct irq_line *lines)
{
    struct plic *p = NULL;

    CHECK(plic_create(40, 1, lines, &p) == 0);
    if (!p)
        return;
    wr(p, ENABLE(0, 1), 0xffffffff);
    CHECK_EQ_U64(rd(p, ENABLE(0, 1)), 0xff);
    plic_set_irq(p, 39, true);
    plic_set_irq(p, 40, true);
    CHECK_EQ_U64(rd(p, PENDING(1)), 0x80);
    plic_destroy(p);
}

int main(void)
{
    struct irq_line lines[NCONTEXTS];
    struct plic *p = NULL;

    for (unsigned c = 0; c < NCONTEXTS; c++)
        lines[c] = (struct irq_line){.set = fake_irq_set, .opaque = ctx_rx, .n = c};
    test_create_args(lines);
    CHECK(plic_create(NSOURCES, NCONTEXTS, lines, &p) == 0);
    if (!p)
        return test_finish("hw_plic");
    test_registers(p);
    plic_reset(p);
    test_claim_complete(p);
    test_priority_threshold(p);
    test_two_contexts(p);
    test_bad_inputs(p);
    test_reset(p);
    plic_destroy(p);
    test_odd_count(lines);
    return test_finish("hw_plic");
}
