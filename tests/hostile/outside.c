/* outside: buffers that are not (entirely) guest RAM (virtio 1.2 §2.7.5: a descriptor names
 * guest memory; anything else is a driver error). RAM is 0x8000_0000 .. +128 MiB. For every
 * device found, each bad buffer is sent twice: alone as the head of a chain (device-writable
 * for rng, readable for the rest), and as the device-writable second buffer behind a good
 * readable one. Each time: DEVICE_NEEDS_RESET + configuration interrupt, nothing completed, no
 * crash; reset; then the next case on a fresh initialisation.
 *
 *   1       at least one device
 *   2       initialisation works
 *   3       initialisation with 64-entry queues works
 *   10-22   the bad buffer heads the chain: address 0 (len 16); 0x1000_0000 (the UART); the
 *           device's own MMIO window; the CLINT; RAM end - 8 (len 64); RAM end (len 1);
 *           RAM base - 8 (len 16: straddles the start); 0xffff_ffff_ffff_fff0 (len 0x20:
 *           wraps); 0xffff_ffff_ffff_ffff (len 2); RAM base with len 0xffff_ffff; RAM base +
 *           64 MiB with len 64 MiB + 1; 0x1_8000_0000 (a high-half alias); 0x8000_0000_8000_0000
 *   40-52   the same, as the second buffer
 *   60      33 buffers of 128 MiB (all of RAM each): more than the 4 GiB a chain may hold
 *           (§2.7.4.2)
 *   61      32 such buffers (exactly 4 GiB, readable) are legal (not for the balloon, which
 *           would read RAM as page numbers): completed, no NEEDS_RESET
 *   62      a buffer ending exactly at the end of RAM is legal: rng fills the last 64 bytes;
 *           blk reads with its header in the last 16 bytes of RAM and its status in the very
 *           last byte; the others send their request from the last bytes of RAM
 *   63      after a reset and re-initialisation the device works again */
#include "common.h"

static struct vdev devs[VIRTIO_SLOTS];

#define OWN_WINDOW 1 /* stands for the device's own MMIO window */

struct bad {
    uint64_t addr;
    uint32_t len;
};

static const struct bad bads[] = {
    {0x0, 16},
    {0x10000000, 16},
    {OWN_WINDOW, 0x100},
    {0x2000000, 8},
    {RAM_END - 8, 64},
    {RAM_END, 1},
    {RAM_BASE - 8, 16},
    {0xfffffffffffffff0ULL, 0x20},
    {0xffffffffffffffffULL, 2},
    {RAM_BASE, 0xffffffff},
    {RAM_BASE + (64UL << 20), (64U << 20) + 1},
    {0x180000000ULL, 16},
    {0x8000000080000000ULL, 16},
};
#define NBAD (sizeof(bads) / sizeof(bads[0]))

static void one_case(struct vdev *d, const struct bad *b, int second, unsigned check)
{
    unsigned q = vd_req_queue(d);
    struct vq *vq;
    uint8_t *good;
    uint64_t addr = b->addr == OWN_WINDOW ? d->base : b->addr;

    CHECK(2, vd_init(d, 0) == 0);
    vq = &d->q[q];
    good = vd_alloc(d, 64, 64);
    if (!second) {
        vq_set_desc(vq, 0, addr, b->len, d->id == ID_RNG ? D_WRITE : 0, 0);
    } else {
        vq_set_desc(vq, 0, (uintptr_t)good, 16, D_NEXT, 1);
        vq_set_desc(vq, 1, addr, b->len, D_WRITE, 0);
    }
    vq_publish(vq, 0);
    vd_kick(d, q);
    CHECK(check, expect_broken(d, q) == 0);
}

/* n buffers covering all of RAM each, readable. Returns what vq_wait said. */
static int huge_chain(struct vdev *d, unsigned n)
{
    unsigned q = vd_req_queue(d);
    struct vq *vq;

    vd_queue_size = 64;
    CHECK(3, vd_init(d, 0) == 0);
    vd_queue_size = 16;
    vq = &d->q[q];
    for (unsigned i = 0; i < n; i++)
        vq_set_desc(vq, i, RAM_BASE, (uint32_t)RAM_SIZE, i + 1 < n ? D_NEXT : 0, (uint16_t)(i + 1));
    vq_publish(vq, 0);
    vd_kick(d, q);
    return vq_wait(d, q, TMO_US, 0, 0);
}

static int end_of_ram(struct vdev *d)
{
    unsigned q = vd_req_queue(d);
    uint8_t *end = (uint8_t *)(RAM_END - 64);
    uint32_t len = 0;
    int r;

    if (vd_init(d, 0))
        return -1;
    memset(end, 0, 64);
    if (d->id == ID_RNG) {
        struct vbuf b = {(uintptr_t)end, 64, D_WRITE};

        r = vd_transfer(d, q, &b, 1, &len);
        return r == 0 && len == 64 ? 0 : -2;
    }
    if (d->id == ID_BLOCK) {
        /* header (IN, sector 0) in RAM end - 17 .. - 2, status in the last byte */
        uint8_t *data = vd_alloc(d, 512, 64);
        struct vbuf b[3] = {
            {RAM_END - 17, 16, 0}, {(uintptr_t)data, 512, D_WRITE}, {RAM_END - 1, 1, D_WRITE}};

        end[63] = 0xee;
        r = vd_transfer(d, q, b, 3, &len);
        return r == 0 && len == 513 && end[63] == BLK_S_OK && data[5] == disk_pattern(5) ? 0 : -3;
    }
    if (d->id == ID_NET)
        net_arp_request(d, end + 4);
    if (d->id == ID_BALLOON)
        ((uint32_t *)end)[15] = (uint32_t)(scratch_page(d, 2) >> 12);
    {
        struct vbuf b = {RAM_END - (d->id == ID_BALLOON ? 4 : 64), d->id == ID_BALLOON ? 4 : 64, 0};

        return vd_transfer(d, q, &b, 1, &len) == 0 ? 0 : -4;
    }
}

int main(void)
{
    unsigned n = find_devices(devs);

    CHECK(1, n > 0);
    for (unsigned i = 0; i < n; i++) {
        struct vdev *d = &devs[i];

        hostile_set_context(d->ctx);
        say("outside: %s\n", d->ctx);
        for (unsigned k = 0; k < NBAD; k++) {
            one_case(d, &bads[k], 0, 10 + k);
            one_case(d, &bads[k], 1, 40 + k);
        }
        CHECK(60, huge_chain(d, 33) == -2 && expect_broken(d, vd_req_queue(d)) == 0);
        if (d->id != ID_BALLOON)
            CHECK(61, huge_chain(d, 32) == 0 && !(vd_status(d) & ST_NEEDS_RESET));
        vd_reset(d);
        CHECK(62, end_of_ram(d) == 0 && !(vd_status(d) & ST_NEEDS_RESET));
        vd_reset(d);
        CHECK(63, recover(d, 0) == 0);
        vd_reset(d);
    }
    return 0;
}
