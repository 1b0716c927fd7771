/* The hostile-guest tests' virtio-mmio driver. See virtio_drv.h. */
#include "virtio_drv.h"

uint32_t vd_queue_size = 16;

const char *vd_id_name(uint32_t id)
{
    switch (id) {
    case ID_NET: return "virtio-net";
    case ID_BLOCK: return "virtio-blk";
    case ID_CONSOLE: return "virtio-console";
    case ID_RNG: return "virtio-rng";
    case ID_BALLOON: return "virtio-balloon";
    default: return "virtio-?";
    }
}

static void vd_name_context(struct vdev *d)
{
    const char *n = d->name;
    unsigned i = 0;

    memcpy(d->ctx, "slot ", 5);
    i = 5;
    d->ctx[i++] = (char)('0' + d->slot);
    d->ctx[i++] = ' ';
    while (*n && i < sizeof(d->ctx) - 1)
        d->ctx[i++] = *n++;
    d->ctx[i] = 0;
}

unsigned vd_find_all(struct vdev *devs, unsigned max)
{
    unsigned found = 0;

    for (unsigned s = 0; s < VIRTIO_SLOTS && found < max; s++) {
        uintptr_t base = VIRTIO_MMIO_BASE + s * VIRTIO_MMIO_STRIDE;
        uint64_t magic = 0, version = 0, id = 0;
        struct vdev *d = &devs[found];

        if (guard_load(base + VM_MAGIC, 4, &magic) || magic != VIRTIO_MAGIC)
            continue;
        if (guard_load(base + VM_VERSION, 4, &version) || guard_load(base + VM_DEVICE_ID, 4, &id) ||
            id == 0)
            continue;
        memset(d, 0, sizeof(*d));
        d->slot = s;
        d->base = base;
        d->id = (uint32_t)id;
        d->name = vd_id_name(d->id);
        d->arena = DMA_ARENA + s * DMA_SLOT_SIZE;
        d->arena_next = d->arena;
        d->arena_end = d->arena + DMA_SLOT_SIZE;
        vd_name_context(d);
        say("found %s (version %u)\n", d->ctx, (unsigned)version);
        found++;
    }
    return found;
}

void vd_reset(struct vdev *d)
{
    uint64_t end = now_ticks() + US_TO_TICKS(TMO_US);

    vd_wr(d, VM_STATUS, 0);
    /* §4.2.3.1: wait for Status to read 0 before going on. */
    while (vd_status(d) != 0 && now_ticks() < end)
        ;
    memset(d->q, 0, sizeof(d->q));
    d->features = 0;
    d->arena_next = d->arena;
}

void *vd_alloc(struct vdev *d, uint64_t size, uint64_t align)
{
    uintptr_t p = (d->arena_next + align - 1) & ~(uintptr_t)(align - 1);

    if (p + size > d->arena_end) {
        say("%s: DMA arena exhausted\n", d->ctx);
        hostile_exit(200);
    }
    d->arena_next = p + size;
    memset((void *)p, 0, size);
    return (void *)p;
}

int vd_negotiate(struct vdev *d, uint64_t want, uint64_t force)
{
    uint64_t accept;

    vd_reset(d);
    vd_wr(d, VM_STATUS, ST_ACK);
    vd_wr(d, VM_STATUS, ST_ACK | ST_DRIVER);
    vd_wr(d, VM_DEV_FEAT_SEL, 0);
    d->offered = vd_rd(d, VM_DEV_FEAT);
    vd_wr(d, VM_DEV_FEAT_SEL, 1);
    d->offered |= (uint64_t)vd_rd(d, VM_DEV_FEAT) << 32;
    accept = ((want | F_VERSION_1) & d->offered) | force;
    vd_wr(d, VM_DRV_FEAT_SEL, 0);
    vd_wr(d, VM_DRV_FEAT, (uint32_t)accept);
    vd_wr(d, VM_DRV_FEAT_SEL, 1);
    vd_wr(d, VM_DRV_FEAT, (uint32_t)(accept >> 32));
    vd_wr(d, VM_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK);
    if (!(vd_status(d) & ST_FEATURES_OK))
        return -1;
    d->features = accept;
    return 0;
}

uint32_t vd_queue_setup_raw(struct vdev *d, unsigned q, uint32_t num, uint64_t desc, uint64_t avail,
                            uint64_t used)
{
    vd_wr(d, VM_QUEUE_SEL, q);
    vd_wr(d, VM_QUEUE_NUM, num);
    vd_wr(d, VM_DESC_LO, (uint32_t)desc);
    vd_wr(d, VM_DESC_HI, (uint32_t)(desc >> 32));
    vd_wr(d, VM_DRIVER_LO, (uint32_t)avail);
    vd_wr(d, VM_DRIVER_HI, (uint32_t)(avail >> 32));
    vd_wr(d, VM_DEVICE_LO, (uint32_t)used);
    vd_wr(d, VM_DEVICE_HI, (uint32_t)(used >> 32));
    vd_wr(d, VM_QUEUE_READY, 1);
    return vd_rd(d, VM_QUEUE_READY);
}

int vd_queue_setup(struct vdev *d, unsigned q, uint32_t num)
{
    struct vq *vq = &d->q[q];
    uint32_t max;
    void *desc, *avail, *used;

    vd_wr(d, VM_QUEUE_SEL, q);
    max = vd_rd(d, VM_QUEUE_NUMMAX);
    if (max == 0 || vd_rd(d, VM_QUEUE_READY) != 0) {
        say("%s: queue %u: QueueNumMax %u, QueueReady %u before set-up\n", d->ctx, q, max,
            vd_rd(d, VM_QUEUE_READY));
        return -1;
    }
    if (num == 0)
        num = max < vd_queue_size ? max : vd_queue_size;
    desc = vd_alloc(d, 16 * num, 4096);
    avail = vd_alloc(d, 6 + 2 * num, 4096);
    used = vd_alloc(d, 6 + 8 * num, 4096);
    if (vd_queue_setup_raw(d, q, num, (uintptr_t)desc, (uintptr_t)avail, (uintptr_t)used) != 1) {
        say("%s: queue %u of %u entries refused\n", d->ctx, q, num);
        return -1;
    }
    vq->num = (uint16_t)num;
    vq->avail_idx = 0;
    vq->used_seen = 0;
    vq->desc = desc;
    vq->avail = avail;
    vq->used = used;
    return 0;
}

int vd_driver_ok(struct vdev *d)
{
    uint32_t st;

    vd_wr(d, VM_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK);
    st = vd_status(d);
    return (st & ST_DRIVER_OK) && !(st & ST_NEEDS_RESET) ? 0 : -1;
}

unsigned vd_default_queues(const struct vdev *d)
{
    switch (d->id) {
    case ID_NET: return 2;
    case ID_CONSOLE: return (d->features & 2) ? 4 : 2; /* MULTIPORT */
    case ID_BALLOON: return (d->features & 2) ? 3 : 2; /* STATS_VQ */
    default: return 1;
    }
}

unsigned vd_req_queue(const struct vdev *d)
{
    return d->id == ID_NET || d->id == ID_CONSOLE ? 1 : 0;
}

int vd_init(struct vdev *d, uint64_t want)
{
    unsigned nq;

    if (vd_negotiate(d, want, 0)) {
        say("%s: FEATURES_OK refused (offered 0x%lx)\n", d->ctx, d->offered);
        return -1;
    }
    nq = vd_default_queues(d);
    for (unsigned q = 0; q < nq; q++) {
        if (vd_queue_setup(d, q, 0))
            return -2;
    }
    if (vd_driver_ok(d)) {
        say("%s: DRIVER_OK refused, Status 0x%x\n", d->ctx, vd_status(d));
        return -3;
    }
    return 0;
}

void vq_set_desc(struct vq *vq, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                 uint16_t next)
{
    vq->desc[i].addr = addr;
    vq->desc[i].len = len;
    vq->desc[i].flags = flags;
    vq->desc[i].next = next;
}

void vq_publish(struct vq *vq, uint16_t head)
{
    vq->avail->ring[vq->avail_idx % vq->num] = head;
    mb(); /* §2.7.13.3: the ring entry before the index */
    vq->avail_idx++;
    vq->avail->idx = vq->avail_idx;
}

void vd_kick(struct vdev *d, unsigned q)
{
    mb(); /* §2.7.13.4: the index before the notification */
    vd_wr(d, VM_QUEUE_NOTIFY, q);
}

void vd_submit_at(struct vdev *d, unsigned q, unsigned first, const struct vbuf *bufs, unsigned n)
{
    struct vq *vq = &d->q[q];

    for (unsigned i = 0; i < n; i++) {
        unsigned idx = (first + i) % vq->num;

        vq_set_desc(vq, idx, bufs[i].addr, bufs[i].len,
                    (uint16_t)(bufs[i].flags | (i + 1 < n ? D_NEXT : 0)),
                    (uint16_t)((first + i + 1) % vq->num));
    }
    vq_publish(vq, (uint16_t)first);
    vd_kick(d, q);
}

volatile struct vring_desc *vd_submit_indirect(struct vdev *d, unsigned q, unsigned ndirect,
                                               const struct vbuf *bufs, unsigned n,
                                               uint16_t extra_flags)
{
    struct vq *vq = &d->q[q];
    unsigned nind = n - ndirect;
    volatile struct vring_desc *t = vd_alloc(d, 16 * (nind ? nind : 1), 16);

    for (unsigned i = 0; i < nind; i++) {
        t[i].addr = bufs[ndirect + i].addr;
        t[i].len = bufs[ndirect + i].len;
        t[i].flags = (uint16_t)(bufs[ndirect + i].flags | (i + 1 < nind ? D_NEXT : 0));
        t[i].next = (uint16_t)(i + 1);
    }
    for (unsigned i = 0; i < ndirect; i++)
        vq_set_desc(vq, i, bufs[i].addr, bufs[i].len, (uint16_t)(bufs[i].flags | D_NEXT),
                    (uint16_t)(i + 1));
    vq_set_desc(vq, ndirect, (uintptr_t)t, 16 * nind, (uint16_t)(D_INDIRECT | extra_flags), 0);
    vq_publish(vq, 0);
    vd_kick(d, q);
    return t;
}

int vq_used_pending(const struct vq *vq)
{
    return vq->used->idx != vq->used_seen;
}

int vq_wait(struct vdev *d, unsigned q, uint64_t timeout_us, uint32_t *id, uint32_t *len)
{
    struct vq *vq = &d->q[q];
    uint64_t end = now_ticks() + US_TO_TICKS(timeout_us);

    for (;;) {
        if (vq_used_pending(vq)) {
            volatile struct vring_used_elem *e;

            mb(); /* the index before the element */
            e = &vq->used->ring[vq->used_seen % vq->num];
            if (id)
                *id = e->id;
            if (len)
                *len = e->len;
            vq->used_seen++;
            return 0;
        }
        if (vd_status(d) & ST_NEEDS_RESET)
            return -2;
        if (now_ticks() >= end)
            return -1;
    }
}

int vd_transfer(struct vdev *d, unsigned q, const struct vbuf *bufs, unsigned n, uint32_t *len)
{
    vd_submit(d, q, bufs, n);
    return vq_wait(d, q, TMO_US, NULL, len);
}

int vd_wait_needs_reset(struct vdev *d, uint64_t timeout_us)
{
    uint64_t end = now_ticks() + US_TO_TICKS(timeout_us);

    while (!(vd_status(d) & ST_NEEDS_RESET)) {
        if (now_ticks() >= end)
            return -1;
    }
    return 0;
}
