/* Helpers shared by the hostile-guest tests. See common.h. */
#include "common.h"

#define CANARY 0xc5

unsigned find_devices(struct vdev *devs)
{
    return vd_find_all(devs, VIRTIO_SLOTS);
}

static int submit_wait(struct vdev *d, unsigned q, const struct vbuf *b, unsigned n,
                       enum submit_mode mode, uint32_t *len)
{
    switch (mode) {
    case SUBMIT_DIRECT: vd_submit(d, q, b, n); break;
    case SUBMIT_INDIRECT: vd_submit_indirect(d, q, 0, b, n, 0); break;
    case SUBMIT_MIXED: vd_submit_indirect(d, q, 1, b, n, 0); break;
    case SUBMIT_INDIRECT_W: vd_submit_indirect(d, q, 0, b, n, D_WRITE); break;
    }
    return vq_wait(d, q, TMO_US, 0, len);
}

static int canary_ok(const uint8_t *p, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (p[i] != CANARY)
            return 0;
    }
    return 1;
}

static const char *wait_err(int r)
{
    return r == -1 ? "timed out" : r == -2 ? "device needs reset" : "error";
}

void net_arp_request(const struct vdev *d, uint8_t *f)
{
    static const uint8_t sip[4] = {10, 0, 2, 15}, tip[4] = {10, 0, 2, 2};
    uint8_t mac[6];

    for (int i = 0; i < 6; i++)
        mac[i] = rd8(d->base + VM_CONFIG + i);
    memset(f, 0, 60);
    memset(f, 0xff, 6);
    memcpy(f + 6, mac, 6);
    f[12] = 0x08, f[13] = 0x06;                 /* ARP */
    f[14] = 0, f[15] = 1;                       /* Ethernet */
    f[16] = 0x08, f[17] = 0x00;                 /* IPv4 */
    f[18] = 6, f[19] = 4, f[20] = 0, f[21] = 1; /* request */
    memcpy(f + 22, mac, 6);
    memcpy(f + 28, sip, 4);
    memcpy(f + 38, tip, 4);
}

uint64_t blk_capacity(const struct vdev *d)
{
    return vd_cfg32(d, 0) | (uint64_t)vd_cfg32(d, 4) << 32;
}

/* Per-slot header and status bytes (in .bss, inside RAM). */
static struct {
    uint32_t type, reserved;
    uint64_t sector;
} blk_hdr[VIRTIO_SLOTS] __attribute__((aligned(16)));
static uint8_t blk_status[VIRTIO_SLOTS][16];

int blk_io(struct vdev *d, uint32_t type, uint64_t sector, uintptr_t data, uint32_t len,
           uint8_t *status, uint32_t *used)
{
    struct vbuf b[3];
    unsigned n = 0;
    int r;

    blk_hdr[d->slot].type = type;
    blk_hdr[d->slot].reserved = 0;
    blk_hdr[d->slot].sector = sector;
    blk_status[d->slot][0] = 0xee;
    b[n++] = (struct vbuf){(uintptr_t)&blk_hdr[d->slot], 16, 0};
    if (len)
        b[n++] = (struct vbuf){data, len, (type == BLK_T_IN || type == BLK_T_GET_ID) ? D_WRITE : 0};
    b[n++] = (struct vbuf){(uintptr_t)blk_status[d->slot], 1, D_WRITE};
    r = vd_transfer(d, 0, b, n, used);
    if (status)
        *status = blk_status[d->slot][0];
    return r;
}

int sane_request(struct vdev *d, enum submit_mode mode)
{
    unsigned q = vd_req_queue(d);
    uint8_t *buf = vd_alloc(d, 4096, 64);
    struct vbuf b[3];
    uint32_t len = 0;
    int r, n = 2;

    switch (d->id) {
    case ID_RNG:
        memset(buf + 64, CANARY, 16);
        b[0] = (struct vbuf){(uintptr_t)buf, 32, D_WRITE};
        b[1] = (struct vbuf){(uintptr_t)buf + 32, 32, D_WRITE};
        break;
    case ID_BLOCK:
        memset(buf, 0, 512);
        memset(buf + 512, CANARY, 16);
        blk_hdr[d->slot] = (typeof(blk_hdr[0])){BLK_T_IN, 0, 0};
        buf[600] = 0xee;
        b[0] = (struct vbuf){(uintptr_t)&blk_hdr[d->slot], 16, 0};
        b[1] = (struct vbuf){(uintptr_t)buf, 512, D_WRITE};
        b[2] = (struct vbuf){(uintptr_t)buf + 600, 1, D_WRITE};
        n = 3;
        break;
    case ID_NET:
        net_arp_request(d, buf + 16);
        b[0] = (struct vbuf){(uintptr_t)buf, 12, 0};
        b[1] = (struct vbuf){(uintptr_t)buf + 16, 60, 0};
        break;
    case ID_CONSOLE:
        memcpy(buf, "hostile guest\n", 14);
        b[0] = (struct vbuf){(uintptr_t)buf, 8, 0};
        b[1] = (struct vbuf){(uintptr_t)buf + 8, 6, 0};
        break;
    case ID_BALLOON: {
        uint32_t *pfn = (uint32_t *)buf;

        pfn[0] = (uint32_t)(scratch_page(d, 0) >> 12);
        pfn[1] = (uint32_t)(scratch_page(d, 1) >> 12);
        b[0] = (struct vbuf){(uintptr_t)&pfn[0], 4, 0};
        b[1] = (struct vbuf){(uintptr_t)&pfn[1], 4, 0};
        break;
    }
    default: say("%s: unknown device type\n", d->ctx); return -1;
    }

    r = submit_wait(d, q, b, (unsigned)n, mode, &len);
    if (r) {
        say("%s: correct request (mode %d): %s, Status 0x%x\n", d->ctx, mode, wait_err(r),
            vd_status(d));
        return -2;
    }
    switch (d->id) {
    case ID_RNG: {
        int nonzero = 0;

        for (int i = 0; i < 64; i++)
            nonzero |= buf[i];
        if (len == 0 || len > 64 || !nonzero || !canary_ok(buf + 64, 16)) {
            say("%s: rng: used len %u, nonzero %d, canary %d\n", d->ctx, len, nonzero,
                canary_ok(buf + 64, 16));
            return -3;
        }
        break;
    }
    case ID_BLOCK:
        if (buf[600] != BLK_S_OK || len != 513 || !canary_ok(buf + 512, 16)) {
            say("%s: blk read: status %u, used len %u, canary %d\n", d->ctx, buf[600], len,
                canary_ok(buf + 512, 16));
            return -3;
        }
        for (unsigned i = 0; i < 512; i++) {
            if (buf[i] != disk_pattern(i)) {
                say("%s: blk read: byte %u is 0x%x, want 0x%x\n", d->ctx, i, buf[i],
                    disk_pattern(i));
                return -3;
            }
        }
        break;
    default: break;
    }
    if (vd_status(d) & ST_NEEDS_RESET) {
        say("%s: correct request left NEEDS_RESET\n", d->ctx);
        return -4;
    }
    return 0;
}

int sane_chain(struct vdev *d, unsigned ndesc)
{
    unsigned q = vd_req_queue(d);
    uint8_t *buf = vd_alloc(d, 16 * 1024, 64);
    struct vbuf b[256];
    uint32_t len = 0;
    int r;

    if (ndesc < 3 || ndesc > 256)
        return -1;
    for (unsigned i = 0; i < ndesc; i++)
        b[i] = (struct vbuf){(uintptr_t)buf + 16 * i, 4, 0};
    switch (d->id) {
    case ID_RNG:
        for (unsigned i = 0; i < ndesc; i++)
            b[i].flags = D_WRITE;
        break;
    case ID_BLOCK:
        /* header, ndesc-2 data buffers of 512 bytes, status */
        blk_hdr[d->slot] = (typeof(blk_hdr[0])){BLK_T_IN, 0, 0};
        b[0] = (struct vbuf){(uintptr_t)&blk_hdr[d->slot], 16, 0};
        for (unsigned i = 1; i + 1 < ndesc; i++)
            b[i] = (struct vbuf){BIG_BUF + 512 * (i - 1), 512, D_WRITE};
        b[ndesc - 1] = (struct vbuf){(uintptr_t)buf, 1, D_WRITE};
        buf[0] = 0xee;
        break;
    case ID_NET:
        /* 12-byte header, then the frame in 4-byte pieces (>= 14 bytes in all) */
        net_arp_request(d, buf + 12);
        b[0] = (struct vbuf){(uintptr_t)buf, 12, 0};
        for (unsigned i = 1; i < ndesc; i++)
            b[i] = (struct vbuf){(uintptr_t)buf + 12 + 4 * (i - 1), 4, 0};
        break;
    case ID_BALLOON:
        for (unsigned i = 0; i < ndesc; i++)
            ((uint32_t *)buf)[4 * i] = (uint32_t)(scratch_page(d, i % 16) >> 12);
        break;
    default: break;
    }
    vd_submit(d, q, b, ndesc);
    r = vq_wait(d, q, TMO_US, 0, &len);
    if (r) {
        say("%s: correct %u-descriptor chain: %s\n", d->ctx, ndesc, wait_err(r));
        return -2;
    }
    if (d->id == ID_BLOCK && (buf[0] != BLK_S_OK || len != 512 * (ndesc - 2) + 1)) {
        say("%s: %u-descriptor read: status %u, used len %u\n", d->ctx, ndesc, buf[0], len);
        return -3;
    }
    return 0;
}

int recover(struct vdev *d, uint64_t want)
{
    int r = vd_init(d, want);

    if (r) {
        say("%s: re-initialisation failed (%d)\n", d->ctx, r);
        return r;
    }
    return sane_request(d, SUBMIT_DIRECT);
}

int expect_broken(struct vdev *d, unsigned q)
{
    uint64_t end;

    if (vd_wait_needs_reset(d, TMO_US)) {
        say("%s: no NEEDS_RESET: Status 0x%x, used idx %u\n", d->ctx, vd_status(d),
            d->q[q].used ? d->q[q].used->idx : 0);
        return -1;
    }
    /* The interrupt bit follows the status bit (another host thread may set them). */
    end = now_ticks() + US_TO_TICKS(TMO_US / 20);
    while (!(vd_rd(d, VM_ISR) & ISR_CONFIG) && now_ticks() < end)
        ;
    if (!(vd_rd(d, VM_ISR) & ISR_CONFIG)) {
        say("%s: NEEDS_RESET without the configuration change interrupt (ISR 0x%x)\n", d->ctx,
            vd_rd(d, VM_ISR));
        return -2;
    }
    if (d->q[q].used && d->q[q].used->idx != d->q[q].used_seen) {
        say("%s: a broken request completed (used idx %u)\n", d->ctx, d->q[q].used->idx);
        return -3;
    }
    vd_reset(d);
    if (vd_status(d) != 0 || vd_rd(d, VM_ISR) != 0) {
        say("%s: after reset Status 0x%x ISR 0x%x\n", d->ctx, vd_status(d), vd_rd(d, VM_ISR));
        return -4;
    }
    return 0;
}

int still_sane(struct vdev *d)
{
    if (vd_status(d) & ST_NEEDS_RESET) {
        say("%s: NEEDS_RESET set, Status 0x%x\n", d->ctx, vd_status(d));
        return -1;
    }
    return sane_request(d, SUBMIT_DIRECT) ? -2 : 0;
}
