/* reset: a machine reset (the test device's 0x7777 command) while every device has work in
 * flight, one of them in DEVICE_NEEDS_RESET. Needs a writable disk, which carries the only
 * state that survives the reset: a marker in its last sector.
 *
 * First boot:
 *   1      a writable virtio-blk disk is present (run.sh runs this test with blk and all)
 *   2      every device initialises
 *   3      the marker is written and reads back
 *   4      then, with blk's five 1 MiB reads in flight, net's transmit and receive buffers,
 *          console output, balloon's inflate list and rng's published but unkicked request,
 *          a looping chain makes the first device other than the disk (the disk when it is
 *          alone) show NEEDS_RESET; the guest requests a machine reset
 * Second boot (the marker is found):
 *   10     every device is in its reset state: Status, InterruptStatus and every QueueReady
 *          read 0
 *   11     no device wrote into guest memory after the reset cleared it (the 64 MiB buffer
 *          the 1 MiB reads targeted is all zero)
 *   12     every device initialises and works */
#include "common.h"

static struct vdev devs[VIRTIO_SLOTS];

#define MARKER 0x52455345544d524bULL /* "KRMTESER" */
static void start_work(struct vdev *d)
{
    uint8_t *buf = vd_alloc(d, 16384, 64);
    struct vbuf b[3];

    switch (d->id) {
    case ID_BLOCK:
        for (unsigned k = 0; k < 5; k++) {
            uint64_t *h = (uint64_t *)(buf + 32 * k);

            h[0] = BLK_T_IN, h[1] = 0;
            b[0] = (struct vbuf){(uintptr_t)h, 16, 0};
            b[1] = (struct vbuf){BIG_BUF + k * (1UL << 20), 1U << 20, D_WRITE};
            b[2] = (struct vbuf){(uintptr_t)buf + 1024 + k, 1, D_WRITE};
            vd_submit_at(d, 0, 3 * k, b, 3);
        }
        break;
    case ID_NET:
        for (unsigned k = 0; k < 8; k++) {
            vq_set_desc(&d->q[0], k, (uintptr_t)buf + 2048 * (k % 4) + 4096, 1538, D_WRITE, 0);
            vq_publish(&d->q[0], (uint16_t)k);
        }
        vd_kick(d, 0);
        net_arp_request(d, buf + 16);
        b[0] = (struct vbuf){(uintptr_t)buf, 12, 0};
        b[1] = (struct vbuf){(uintptr_t)buf + 16, 60, 0};
        vd_submit(d, 1, b, 2);
        break;
    case ID_CONSOLE:
        memcpy(buf, "reset in flight\n", 16);
        b[0] = (struct vbuf){(uintptr_t)buf, 16, 0};
        vd_submit(d, 1, b, 1);
        break;
    case ID_BALLOON: {
        uint32_t *pfn = (uint32_t *)buf;

        for (unsigned k = 0; k < 1024; k++)
            pfn[k] = (uint32_t)(scratch_page(d, k % 16) >> 12);
        b[0] = (struct vbuf){(uintptr_t)pfn, 4096, 0};
        vd_submit(d, 0, b, 1);
        break;
    }
    case ID_RNG:
        vq_set_desc(&d->q[0], 0, (uintptr_t)buf, 64, D_WRITE, 0);
        vq_publish(&d->q[0], 0); /* not kicked */
        break;
    }
}

/* A self-looping chain at the last descriptor of the request queue, published and kicked. */
static void break_device(struct vdev *d)
{
    unsigned q = vd_req_queue(d);
    struct vq *vq = &d->q[q];
    uint16_t last = (uint16_t)(vq->num - 1);

    vq_set_desc(vq, last, (uintptr_t)vd_alloc(d, 64, 64), 16, D_NEXT, last);
    vq_publish(vq, last);
    vd_kick(d, q);
}

/* What a device looked like before this boot touched it. */
static struct {
    uint32_t status, isr, ready_mask;
} before[VIRTIO_SLOTS];

int main(void)
{
    unsigned n = find_devices(devs);
    struct vdev *disk = 0, *victim = 0;
    uint64_t *m;
    uint8_t st = 0xee;
    uint64_t cap;

    for (unsigned i = 0; i < n; i++) {
        before[i].status = vd_status(&devs[i]);
        before[i].isr = vd_rd(&devs[i], VM_ISR);
        for (unsigned q = 0; q < VD_MAX_QUEUES; q++) {
            vd_wr(&devs[i], VM_QUEUE_SEL, q);
            before[i].ready_mask |= vd_rd(&devs[i], VM_QUEUE_READY) ? 1u << q : 0;
        }
    }
    for (unsigned i = 0; i < n && !disk; i++) {
        if (devs[i].id == ID_BLOCK && vd_init(&devs[i], 0) == 0 && !(devs[i].offered & BLK_F_RO))
            disk = &devs[i];
    }
    CHECK(1, disk != 0);
    hostile_set_context(disk->ctx);
    cap = blk_capacity(disk);
    m = vd_alloc(disk, 512, 64);
    CHECK(1, blk_io(disk, BLK_T_IN, cap - 1, (uintptr_t)m, 512, &st, 0) == 0 && st == BLK_S_OK);

    if (m[0] != MARKER) {
        say("reset: first boot\n");
        m[0] = MARKER;
        CHECK(3,
              blk_io(disk, BLK_T_OUT, cap - 1, (uintptr_t)m, 512, &st, 0) == 0 && st == BLK_S_OK);
        m[0] = 0;
        CHECK(3, blk_io(disk, BLK_T_IN, cap - 1, (uintptr_t)m, 512, &st, 0) == 0 &&
                     st == BLK_S_OK && m[0] == MARKER);
        for (unsigned i = 0; i < n; i++) {
            hostile_set_context(devs[i].ctx);
            if (&devs[i] != disk) {
                CHECK(2, vd_init(&devs[i], 0) == 0);
                if (!victim)
                    victim = &devs[i];
            }
        }
        if (!victim)
            victim = disk;
        for (unsigned i = 0; i < n; i++)
            start_work(&devs[i]);
        break_device(victim);
        hostile_set_context(victim->ctx);
        CHECK(4, vd_wait_needs_reset(victim, TMO_US) == 0);
        say("reset: requesting a machine reset\n");
        for (;;)
            wr32(FINISHER, 0x7777);
    }

    say("reset: second boot\n");
    for (unsigned i = 0; i < n; i++) {
        hostile_set_context(devs[i].ctx);
        CHECK(10, before[i].status == 0 && before[i].isr == 0 && before[i].ready_mask == 0);
    }
    for (uintptr_t a = BIG_BUF; a < BIG_BUF + BIG_BUF_SIZE; a += 512)
        CHECK(11, *(volatile uint64_t *)a == 0);
    for (unsigned i = 0; i < n; i++) {
        hostile_set_context(devs[i].ctx);
        CHECK(12, recover(&devs[i], 0) == 0);
        vd_reset(&devs[i]);
    }
    return 0;
}
