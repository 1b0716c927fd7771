/* indirect: broken indirect descriptor tables (virtio 1.2 §2.7.5.3). VIRTIO_F_INDIRECT_DESC
 * is negotiated unless a case says otherwise. For every device found, each case on a fresh
 * initialisation of its request queue; each must end in DEVICE_NEEDS_RESET + configuration
 * interrupt with nothing completed, then a reset:
 *
 *   1       at least one device
 *   2       the device offers VIRTIO_F_INDIRECT_DESC and initialisation with it works
 *   3-5     legal uses work: a purely indirect request; direct buffers followed by an
 *           indirect table (§2.7.5.3.2: the device must handle this); WRITE set on the
 *           descriptor that points to the table (the device must ignore it)
 *   10      table at 0x1000_0000 (MMIO)
 *   11      table straddling the end of RAM
 *   12      table at 0xffff_ffff_ffff_fff0, len 32 (wraps)
 *   13      table len 24 (not a multiple of 16)
 *   14      table len 0
 *   15      table len 8
 *   16      table len 0xffff_fff0 (bigger than RAM)
 *   17      nested: an entry of the table is itself INDIRECT
 *   18      INDIRECT | NEXT in the descriptor table
 *   19      INDIRECT without the feature negotiated
 *   20      loop inside the table: 0 -> 1 -> 0
 *   21      self loop inside the table: 0 -> 0
 *   22      next out of range inside the table (0 -> 7 in a 2-entry table)
 *   23      a table entry's buffer outside RAM
 *   24      a 4096-entry table that cycles: longer than any chain may be (the walk must stop)
 *   25      a readable buffer after a writable one inside the table (§2.7.4.2)
 *   26      after a reset and re-initialisation the device works again, direct and indirect */
#include "common.h"

static struct vdev devs[VIRTIO_SLOTS];

/* Fresh init (with or without the feature); returns the request queue and a scratch area. */
static struct vq *fresh(struct vdev *d, uint64_t features, uint8_t **scratch)
{
    CHECK(2, vd_init(d, features) == 0 && (!(features & F_INDIRECT) || (d->features & F_INDIRECT)));
    *scratch = vd_alloc(d, 0x20000, 4096);
    return &d->q[vd_req_queue(d)];
}

/* A table entry for a harmless 16-byte buffer (device-writable for rng). */
static void entry(const struct vdev *d, volatile struct vring_desc *t, unsigned i, uint64_t buf,
                  uint16_t flags, uint16_t next)
{
    t[i].addr = buf;
    t[i].len = 16;
    t[i].flags = (uint16_t)(flags | (d->id == ID_RNG ? D_WRITE : 0));
    t[i].next = next;
}

static void go(struct vdev *d, struct vq *vq, uint64_t table, uint32_t len, uint16_t flags,
               uint16_t next)
{
    vq_set_desc(vq, 0, table, len, (uint16_t)(D_INDIRECT | flags), next);
    vq_publish(vq, 0);
    vd_kick(d, vd_req_queue(d));
}

static void broken(struct vdev *d, unsigned check)
{
    CHECK(check, expect_broken(d, vd_req_queue(d)) == 0);
}

/* A table of n harmless entries chained 0 -> 1 -> ... -> n-1 at p. */
static volatile struct vring_desc *table(const struct vdev *d, uint8_t *p, unsigned n)
{
    volatile struct vring_desc *t = (volatile struct vring_desc *)p;

    for (unsigned i = 0; i < n; i++)
        entry(d, t, i, (uintptr_t)p + 0x10000 + 16 * i, i + 1 < n ? D_NEXT : 0, (uint16_t)(i + 1));
    return t;
}

int main(void)
{
    unsigned n = find_devices(devs);

    CHECK(1, n > 0);
    for (unsigned i = 0; i < n; i++) {
        struct vdev *d = &devs[i];
        volatile struct vring_desc *t;
        struct vq *vq;
        uint8_t *s;

        hostile_set_context(d->ctx);
        say("indirect: %s\n", d->ctx);

        fresh(d, F_INDIRECT, &s);
        CHECK(3, sane_request(d, SUBMIT_INDIRECT) == 0);
        CHECK(4, sane_request(d, SUBMIT_MIXED) == 0);
        CHECK(5, sane_request(d, SUBMIT_INDIRECT_W) == 0);
        vd_reset(d);

        vq = fresh(d, F_INDIRECT, &s);
        go(d, vq, 0x10000000, 32, 0, 0);
        broken(d, 10);

        vq = fresh(d, F_INDIRECT, &s);
        go(d, vq, RAM_END - 16, 32, 0, 0);
        broken(d, 11);

        vq = fresh(d, F_INDIRECT, &s);
        go(d, vq, 0xfffffffffffffff0ULL, 32, 0, 0);
        broken(d, 12);

        vq = fresh(d, F_INDIRECT, &s);
        table(d, s, 2);
        go(d, vq, (uintptr_t)s, 24, 0, 0);
        broken(d, 13);

        vq = fresh(d, F_INDIRECT, &s);
        table(d, s, 2);
        go(d, vq, (uintptr_t)s, 0, 0, 0);
        broken(d, 14);

        vq = fresh(d, F_INDIRECT, &s);
        table(d, s, 2);
        go(d, vq, (uintptr_t)s, 8, 0, 0);
        broken(d, 15);

        vq = fresh(d, F_INDIRECT, &s);
        table(d, s, 2);
        go(d, vq, (uintptr_t)s, 0xfffffff0, 0, 0);
        broken(d, 16);

        vq = fresh(d, F_INDIRECT, &s);
        t = table(d, s, 2);
        table(d, s + 0x1000, 2);
        t[1].addr = (uintptr_t)s + 0x1000;
        t[1].len = 32;
        t[1].flags = D_INDIRECT;
        go(d, vq, (uintptr_t)s, 32, 0, 0);
        broken(d, 17);

        vq = fresh(d, F_INDIRECT, &s);
        table(d, s, 2);
        vq_set_desc(vq, 1, (uintptr_t)s + 0x2000, 16, d->id == ID_RNG ? D_WRITE : 0, 0);
        go(d, vq, (uintptr_t)s, 32, D_NEXT, 1);
        broken(d, 18);

        vq = fresh(d, 0, &s);
        table(d, s, 2);
        go(d, vq, (uintptr_t)s, 32, 0, 0);
        broken(d, 19);

        vq = fresh(d, F_INDIRECT, &s);
        t = table(d, s, 2);
        t[1].flags |= D_NEXT;
        t[1].next = 0;
        go(d, vq, (uintptr_t)s, 32, 0, 0);
        broken(d, 20);

        vq = fresh(d, F_INDIRECT, &s);
        t = table(d, s, 1);
        t[0].flags |= D_NEXT;
        t[0].next = 0;
        go(d, vq, (uintptr_t)s, 16, 0, 0);
        broken(d, 21);

        vq = fresh(d, F_INDIRECT, &s);
        t = table(d, s, 2);
        t[0].next = 7;
        go(d, vq, (uintptr_t)s, 32, 0, 0);
        broken(d, 22);

        vq = fresh(d, F_INDIRECT, &s);
        t = table(d, s, 2);
        t[1].addr = 0x10000000;
        go(d, vq, (uintptr_t)s, 32, 0, 0);
        broken(d, 23);

        vq = fresh(d, F_INDIRECT, &s);
        t = table(d, s, 4096);
        t[4095].flags |= D_NEXT;
        t[4095].next = 0;
        go(d, vq, (uintptr_t)s, 4096 * 16, 0, 0);
        broken(d, 24);

        vq = fresh(d, F_INDIRECT, &s);
        t = table(d, s, 3);
        t[0].flags = D_NEXT | D_WRITE;
        t[1].flags = D_NEXT;
        t[2].flags = D_WRITE;
        go(d, vq, (uintptr_t)s, 48, 0, 0);
        broken(d, 25);

        CHECK(26, recover(d, F_INDIRECT) == 0 && sane_request(d, SUBMIT_INDIRECT) == 0);
        vd_reset(d);
    }
    return 0;
}
