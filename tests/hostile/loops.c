/* loops: descriptor chains that never end (virtio 1.2 §2.7.5.3.1: a chain is never longer than
 * the queue, and a device that meets one must not loop forever). For every device found, on its
 * request queue (a fresh initialisation before each case):
 *
 *   1      at least one device
 *   2      initialisation works
 *   3-8    descriptor 0 NEXT -> 0 (itself); 0 -> 1 -> 2 -> 1 (back to an earlier one);
 *          a cycle through the whole table (0 -> 1 -> ... -> num-1 -> 0); the same cycle
 *          entered at a head in the middle of the table; a self loop on a device-writable
 *          descriptor after a readable one; a loop of 0-length descriptors
 *          each: Status gets DEVICE_NEEDS_RESET, InterruptStatus bit 1 is raised, nothing is
 *          completed, and a reset clears Status and InterruptStatus
 *   9      a self loop at head 3: DEVICE_NEEDS_RESET
 *   10     while the device needs a reset, more kicks change nothing (no completion, no crash)
 *   11     a chain exactly as long as the queue is legal and completes (the loop detection must
 *          not be off by one)
 *   12     after a reset and full re-initialisation the device works again */
#include "common.h"

static struct vdev devs[VIRTIO_SLOTS];

/* Fresh init; returns the request queue with all descriptors pointing at a readable (or, for
 * rng, writable) 16-byte buffer. */
static struct vq *fresh(struct vdev *d, unsigned *qout)
{
    unsigned q = vd_req_queue(d);
    struct vq *vq;
    uint8_t *buf;

    CHECK(2, vd_init(d, 0) == 0);
    vq = &d->q[q];
    buf = vd_alloc(d, 4096, 64);
    for (unsigned i = 0; i < vq->num; i++)
        vq_set_desc(vq, i, (uintptr_t)buf + 16 * i, 16, d->id == ID_RNG ? D_WRITE : 0, 0);
    *qout = q;
    return vq;
}

static void link(struct vq *vq, unsigned from, unsigned to)
{
    vq->desc[from].flags |= D_NEXT;
    vq->desc[from].next = (uint16_t)to;
}

static void go(struct vdev *d, unsigned q, uint16_t head)
{
    vq_publish(&d->q[q], head);
    vd_kick(d, q);
}

int main(void)
{
    unsigned n = find_devices(devs);

    CHECK(1, n > 0);
    for (unsigned i = 0; i < n; i++) {
        struct vdev *d = &devs[i];
        struct vq *vq;
        unsigned q;

        hostile_set_context(d->ctx);
        say("loops: %s\n", d->ctx);

        vq = fresh(d, &q);
        link(vq, 0, 0);
        go(d, q, 0);
        CHECK(3, expect_broken(d, q) == 0);

        vq = fresh(d, &q);
        link(vq, 0, 1);
        link(vq, 1, 2);
        link(vq, 2, 1);
        go(d, q, 0);
        CHECK(4, expect_broken(d, q) == 0);

        vq = fresh(d, &q);
        for (unsigned k = 0; k < vq->num; k++)
            link(vq, k, (k + 1) % vq->num);
        go(d, q, 0);
        CHECK(5, expect_broken(d, q) == 0);

        vq = fresh(d, &q);
        for (unsigned k = 0; k < vq->num; k++)
            link(vq, k, (k + 1) % vq->num);
        go(d, q, (uint16_t)(vq->num / 2));
        CHECK(6, expect_broken(d, q) == 0);

        vq = fresh(d, &q);
        link(vq, 0, 1);
        vq->desc[1].flags = D_WRITE;
        link(vq, 1, 1);
        go(d, q, 0);
        CHECK(7, expect_broken(d, q) == 0);

        vq = fresh(d, &q);
        for (unsigned k = 0; k < 4; k++) {
            vq->desc[k].len = 0;
            link(vq, k, (k + 1) % 4);
        }
        go(d, q, 0);
        CHECK(8, expect_broken(d, q) == 0);

        /* A good request behind a broken one is not served either: the queue stays broken. */
        vq = fresh(d, &q);
        link(vq, 3, 3);
        go(d, q, 3);
        CHECK(9, vd_wait_needs_reset(d, TMO_US) == 0);
        for (unsigned k = 0; k < 5; k++)
            vd_kick(d, q);
        delay_us(20000);
        CHECK(10, (vd_status(d) & ST_NEEDS_RESET) && !vq_used_pending(vq));
        vd_reset(d);

        CHECK(11, vd_init(d, 0) == 0 && sane_chain(d, d->q[vd_req_queue(d)].num) == 0);
        vd_reset(d);
        CHECK(12, recover(d, 0) == 0);
        vd_reset(d);
    }
    return 0;
}
