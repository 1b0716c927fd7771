/* sane: correct requests work on every device found, so the harness drives the devices right
 * and the hostile tests' "the device recovered" checks mean something.
 *
 *   1      at least one virtio device was found
 *   2-9    every device: init, a correct request (direct, indirect, mixed), ring wrap-around,
 *          the used-buffer interrupt and its acknowledgement, reset + re-init
 *   10-19  blk: capacity, the last sector, write + read back (one and several descriptors,
 *          header and data split unevenly), GET_ID, FLUSH; a read-only disk refuses writes
 *   20-29  rng: two requests in flight, a 3-buffer chain
 *   30-39  net: MAC in config space, link up, an ARP request is answered on the receive queue
 *   40-49  console: multiport: DEVICE_READY gets a DEVICE_ADD for each port
 *   50-59  balloon: num_pages/actual in config space, deflate queue
 *   60     every device with VIRTIO_F_RING_EVENT_IDX negotiated: requests still complete
 *          (direct and indirect) and the device publishes avail_event */
#include "common.h"

static struct vdev devs[VIRTIO_SLOTS];

static void test_blk(struct vdev *d)
{
    uint8_t *buf = vd_alloc(d, 8192, 64);
    uint64_t cap = blk_capacity(d);
    uint8_t st = 0xee;
    uint32_t used = 0;

    CHECK(10, cap >= 16);
    /* The last sector holds the pattern too. */
    CHECK(11, blk_io(d, BLK_T_IN, cap - 1, (uintptr_t)buf, 512, &st, &used) == 0 &&
                  st == BLK_S_OK && used == 513);
    for (unsigned i = 0; i < 512; i++)
        CHECK(12, buf[i] == disk_pattern((cap - 1) * 512 + i));

    if (!(d->offered & BLK_F_RO)) {
        /* Write sector 3, read it back. */
        for (unsigned i = 0; i < 512; i++)
            buf[i] = (uint8_t)(i * 13 + 1);
        CHECK(13, blk_io(d, BLK_T_OUT, 3, (uintptr_t)buf, 512, &st, &used) == 0 && st == BLK_S_OK);
        memset(buf + 1024, 0, 512);
        CHECK(14, blk_io(d, BLK_T_IN, 3, (uintptr_t)buf + 1024, 512, &st, &used) == 0 &&
                      st == BLK_S_OK && memcmp(buf, buf + 1024, 512) == 0);
        /* Sectors 4..7 written from a chain that splits header and data unevenly (§2.6.4: the
         * device must not assume any framing), read back in one piece. */
        {
            static struct {
                uint32_t type, reserved;
                uint64_t sector;
            } h __attribute__((aligned(16)));
            uint8_t *s = buf + 4096;
            struct vbuf b[6];

            h.type = BLK_T_OUT;
            h.sector = 4;
            for (unsigned i = 0; i < 2048; i++)
                buf[i] = (uint8_t)(i * 31 + 7);
            *s = 0xee;
            b[0] = (struct vbuf){(uintptr_t)&h, 5, 0};
            b[1] = (struct vbuf){(uintptr_t)&h + 5, 11, 0};
            b[2] = (struct vbuf){(uintptr_t)buf, 100, 0};
            b[3] = (struct vbuf){(uintptr_t)buf + 100, 1000, 0};
            b[4] = (struct vbuf){(uintptr_t)buf + 1100, 948, 0};
            b[5] = (struct vbuf){(uintptr_t)s, 1, D_WRITE};
            CHECK(15, vd_transfer(d, 0, b, 6, &used) == 0 && *s == BLK_S_OK);
            memset(buf + 2048, 0, 2048);
            CHECK(16, blk_io(d, BLK_T_IN, 4, (uintptr_t)buf + 2048, 2048, &st, &used) == 0 &&
                          st == BLK_S_OK && memcmp(buf, buf + 2048, 2048) == 0);
        }
    } else {
        /* §5.2.6.2: a write to a read-only device fails with IOERR and changes nothing. */
        memset(buf, 0x11, 512);
        CHECK(17,
              blk_io(d, BLK_T_OUT, 0, (uintptr_t)buf, 512, &st, &used) == 0 && st == BLK_S_IOERR);
    }
    memset(buf, 0, 64);
    CHECK(18, blk_io(d, BLK_T_GET_ID, 0, (uintptr_t)buf, 20, &st, &used) == 0 && st == BLK_S_OK &&
                  buf[0] != 0);
    CHECK(19, blk_io(d, BLK_T_FLUSH, 0, 0, 0, &st, &used) == 0 && st == BLK_S_OK);
}

static void test_rng(struct vdev *d)
{
    uint8_t *buf = vd_alloc(d, 1024, 64);
    struct vq *vq = &d->q[0];
    uint32_t id0 = 99, id1 = 99, len0 = 0, len1 = 0;

    /* Two chains in flight at once: heads 0 and 4. */
    vq_set_desc(vq, 0, (uintptr_t)buf, 16, D_WRITE, 0);
    vq_set_desc(vq, 4, (uintptr_t)buf + 64, 24, D_WRITE, 0);
    vq_publish(vq, 0);
    vq_publish(vq, 4);
    vd_kick(d, 0);
    CHECK(20, vq_wait(d, 0, TMO_US, &id0, &len0) == 0 && vq_wait(d, 0, TMO_US, &id1, &len1) == 0);
    CHECK(21, ((id0 == 0 && id1 == 4) || (id0 == 4 && id1 == 0)) && len0 > 0 && len1 > 0);
    {
        struct vbuf b[3] = {{(uintptr_t)buf + 256, 8, D_WRITE},
                            {(uintptr_t)buf + 512, 8, D_WRITE},
                            {(uintptr_t)buf + 768, 8, D_WRITE}};
        uint32_t len = 0;

        CHECK(22, vd_transfer(d, 0, b, 3, &len) == 0 && len == 24);
    }
}

static void test_net(struct vdev *d)
{
    struct vq *rx = &d->q[0];
    uint8_t *rxbuf = vd_alloc(d, 4 * 2048, 64);
    uint8_t mac[6];
    uint32_t id = 0, len = 0;
    uint64_t end;
    int got = 0;

    for (int i = 0; i < 6; i++)
        mac[i] = rd8(d->base + VM_CONFIG + i);
    CHECK(30, (mac[0] & 1) == 0 && (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]) != 0);
    CHECK(31, (rd16(d->base + VM_CONFIG + 6) & 1) == 1); /* VIRTIO_NET_S_LINK_UP */

    /* Four receive buffers of 1526 + 12 bytes, then an ARP request for the gateway. */
    for (unsigned i = 0; i < 4; i++) {
        vq_set_desc(rx, i, (uintptr_t)rxbuf + 2048 * i, 1538, D_WRITE, 0);
        vq_publish(rx, (uint16_t)i);
    }
    vd_kick(d, 0);
    CHECK(32, sane_request(d, SUBMIT_DIRECT) == 0);
    /* The user backend answers ARP for 10.0.2.2; other frames (e.g. IPv6 noise) may come
     * first. */
    end = now_ticks() + US_TO_TICKS(TMO_US);
    while (!got && now_ticks() < end && vq_wait(d, 0, TMO_US, &id, &len) == 0) {
        const uint8_t *f = rxbuf + 2048 * (id & 3) + 12;

        if (id < 4 && len >= 12 + 42 && f[12] == 0x08 && f[13] == 0x06 && f[21] == 2 &&
            f[28] == 10 && f[29] == 0 && f[30] == 2 && f[31] == 2 && memcmp(f, mac, 6) == 0)
            got = 1;
    }
    CHECK(33, got);
}

static void test_console(struct vdev *d)
{
    struct vq *crx, *ctx;
    uint8_t *buf;
    uint32_t len = 0, id = 0;
    int adds = 0;

    CHECK(40, d->offered & 2); /* VIRTIO_CONSOLE_F_MULTIPORT */
    CHECK(41, vd_init(d, 2) == 0 && vd_default_queues(d) == 4);
    crx = &d->q[2];
    ctx = &d->q[3];
    buf = vd_alloc(d, 4096, 64);
    for (unsigned i = 0; i < 8; i++) {
        vq_set_desc(crx, i, (uintptr_t)buf + 256 + 64 * i, 64, D_WRITE, 0);
        vq_publish(crx, (uint16_t)i);
    }
    vd_kick(d, 2);
    /* DEVICE_READY(1) (§5.3.6.2): the device announces each port with DEVICE_ADD. */
    ((uint32_t *)buf)[0] = 0;
    ((uint16_t *)buf)[2] = 0; /* VIRTIO_CONSOLE_DEVICE_READY */
    ((uint16_t *)buf)[3] = 1;
    vq_set_desc(ctx, 0, (uintptr_t)buf, 8, 0, 0);
    vq_publish(ctx, 0);
    vd_kick(d, 3);
    CHECK(42, vq_wait(d, 3, TMO_US, 0, 0) == 0);
    while (adds < 2 && vq_wait(d, 2, TMO_US, &id, &len) == 0) {
        const uint8_t *m = buf + 256 + 64 * (id & 7);

        if (len >= 8 && m[4] == 1 && m[5] == 0) /* DEVICE_ADD */
            adds++;
    }
    CHECK(43, adds == 2);
    CHECK(44, sane_request(d, SUBMIT_DIRECT) == 0);
}

static void test_balloon(struct vdev *d)
{
    uint32_t *pfn = vd_alloc(d, 64, 16);
    struct vbuf b = {(uintptr_t)pfn, 4, 0};
    uint32_t len = 0;

    CHECK(50, vd_cfg32(d, 0) == 0); /* num_pages: the host asks for nothing */
    vd_wr(d, VM_CONFIG + 4, 3);     /* actual */
    CHECK(51, vd_cfg32(d, 4) == 3);
    pfn[0] = (uint32_t)(scratch_page(d, 0) >> 12);
    CHECK(52, vd_transfer(d, 1, &b, 1, &len) == 0); /* deflate */
    vd_wr(d, VM_CONFIG + 4, 0);
}

int main(void)
{
    unsigned n = find_devices(devs);

    CHECK(1, n > 0);
    for (unsigned i = 0; i < n; i++) {
        struct vdev *d = &devs[i];
        uint32_t isr;

        hostile_set_context(d->ctx);
        say("sane: %s\n", d->ctx);
        CHECK(2, vd_init(d, F_INDIRECT) == 0);
        CHECK(3, sane_request(d, SUBMIT_DIRECT) == 0);
        CHECK(4, sane_request(d, SUBMIT_INDIRECT) == 0 && sane_request(d, SUBMIT_MIXED) == 0);
        /* §2.7.8: the used-buffer notification; the ACK clears it. */
        isr = vd_rd(d, VM_ISR);
        CHECK(5, isr & ISR_USED);
        vd_wr(d, VM_ISR_ACK, isr);
        CHECK(6, (vd_rd(d, VM_ISR) & ISR_USED) == 0);
        /* Wrap the 16-entry rings' indices several times. */
        for (unsigned k = 0; k < 40; k++) {
            if (k % 8 == 0)
                d->arena_next = d->arena + 0x10000; /* reuse buffer memory */
            CHECK(7, sane_request(d, SUBMIT_DIRECT) == 0);
        }
        CHECK(8, sane_chain(d, 16) == 0); /* a chain as long as the queue is legal */
        vd_reset(d);
        CHECK(9, vd_status(d) == 0 && recover(d, 0) == 0);

        switch (d->id) {
        case ID_BLOCK: test_blk(d); break;
        case ID_RNG: test_rng(d); break;
        case ID_NET: test_net(d); break;
        case ID_CONSOLE: test_console(d); break;
        case ID_BALLOON: test_balloon(d); break;
        }
        vd_reset(d);

        CHECK(60, vd_init(d, F_EVENT_IDX | F_INDIRECT) == 0 && (d->features & F_EVENT_IDX));
        for (unsigned k = 0; k < 20; k++)
            CHECK(60, sane_request(d, k & 1 ? SUBMIT_INDIRECT : SUBMIT_DIRECT) == 0);
        {
            /* §2.7.10: avail_event follows the requests the device has taken. */
            const struct vq *vq = &d->q[vd_req_queue(d)];

            CHECK(60, rd16((uintptr_t)&vq->used->ring[vq->num]) == vq->avail_idx);
        }
        vd_reset(d);
    }
    return 0;
}
