/* devices: device-specific garbage in otherwise well-formed chains. Nothing here breaks the
 * ring rules, so no DEVICE_NEEDS_RESET is expected: the device must answer (an error status,
 * a dropped buffer), never write outside the buffers it was given, and keep working.
 *
 *   1       at least one device
 *   2       initialisation works
 *   virtio-blk (virtio 1.2 §5.2.6):
 *   10      header of 8 bytes: not performed (status left alone or an error), completed,
 *           data buffer untouched
 *   11      no status byte (header only): completed, nothing written
 *   12      read at sector == capacity: IOERR
 *   13      read of 2 sectors at capacity - 1: IOERR
 *   14      read at sector 2^64 - 1 and at 2^55 (sector * 512 wraps to 0): IOERR
 *   15      write past the end (read-write disk) / any write (read-only disk, §5.2.6.2): IOERR
 *   16      64 MiB read (more than the device takes): IOERR, buffer untouched
 *   17      64 MiB write: IOERR; the disk is unchanged
 *   18      data length not a multiple of 512 (100 bytes): an error status
 *   19      unknown request type: UNSUPP (§5.2.6.2)
 *   20      GET_ID into 5 bytes: OK, nothing written past them; GET_ID without a data buffer
 *   21      discard / write-zeroes with a short segment, a range past the end, reserved flags:
 *           an error status (read-only disk: IOERR); the disk is unchanged
 *   22      a read whose data buffer is device-readable: the device does not write into it
 *   23      a status "byte" in a device-readable buffer: not written
 *   24      the device still works and the disk still holds the pattern where nothing was
 *           written
 *   virtio-net (§5.1.6):
 *   30-34   transmit of 0 bytes, 70000 bytes, only the 12-byte header, 11 bytes, and a
 *           transmit chain with only a device-writable buffer: each completed (dropped)
 *   35      receive buffer of 8 bytes: the frame is not written past it
 *   36      receive buffer that is device-readable only: not written
 *   37      the device still sends, and an ARP request is still answered
 *   38      transmit of the largest frame (65549 bytes, IPv4 ethertype, garbage) and of a
 *           14-byte frame: completed, the device still works
 *   39      a looping chain on the receive queue, found when a frame arrives: NEEDS_RESET and
 *           the configuration interrupt; recovery by reset
 *   virtio-console (§5.3.6):
 *   40      control messages for port 0xffffffff and port 2, event 0xffff, PORT_NAME from the
 *           driver, 4-byte, 0-byte, split and 4096-byte messages: each completed
 *   41      40 DEVICE_READY messages with no control receive buffers (the device's queue of
 *           messages overflows), then 4-byte receive buffers: nothing written past them
 *   42      PORT_READY for port 1 with an 8-byte receive buffer (the port name does not fit):
 *           nothing written past it
 *   43      a kick of a queue that was never set up (port 1 transmit)
 *   44      the device still works: port 0 transmit, DEVICE_READY -> DEVICE_ADD
 *   45      a looping chain on the control receive queue, found when the device has a message
 *           to deliver: NEEDS_RESET and the configuration interrupt; recovery by reset
 *   port 0 receive, with run.sh's host client on the console socket sending "hostile-ping":
 *   46      a correct receive buffer gets the host's bytes
 *   47      a receive buffer without a device-writable part, then a correct one: the correct
 *           one still gets the host's bytes (or the device shows NEEDS_RESET)
 *   48      the same with a 0-byte device-writable receive buffer
 *   49      after a reset and re-initialisation, receiving works
 *   virtio-balloon (§5.5.6):
 *   50      inflate page numbers outside RAM (0, MMIO, just below RAM, RAM end, 0xffffffff):
 *           ignored, completed
 *   51      page lists of 7, 1, 0 and 4095 bytes: completed
 *   52      a page number split across two descriptors: completed
 *   53      deflate garbage: completed
 *   54      inflate the page that holds the queue's own rings: no crash, recovery by reset
 *   55      statistics buffers of odd length with unknown tags: no crash
 *   56      writes to num_pages (the device's field) change nothing
 *   57      the device still works
 *   58      a 32 MiB inflate list (128 descriptors x 256 KiB: 8M valid page numbers) must not
 *           stall the device: a deflate request sent right after it completes within 2 s
 *   59      the same for a 4 GiB statistics buffer (32 x 128 MiB, the most a chain may hold):
 *           an inflate request sent right after it completes within 2 s
 *   virtio-rng (§5.4):
 *   60      a 0-byte device-writable buffer: completed with 0 bytes
 *   61      a device-readable buffer only: completed with 0 bytes, not written
 *   62      a 1 MiB buffer: completed, no more than 1 MiB reported
 *   63      the device still works
 *   virtio-balloon free page reporting (§5.5.6.7; REPORTING is offered by default):
 *   64      REPORTING offered; with STATS, five queues set up and DRIVER_OK accepted
 *   65      a scratch page full of a pattern, reported on queue 3 (Linux's compact number):
 *           completed, and the guest reads it as zero afterwards
 *   66      a start or a length not on a page and a device-readable part: completed, the
 *           pages keep their bytes
 *   67      a page reported on queue 4 (the spec's number): completed, reads as zero
 *   68      a report running past the end of RAM: NEEDS_RESET, nothing completed
 *   69      a report of the reporting queue's own rings: no crash, recovery by reset */
#include "common.h"

static struct vdev devs[VIRTIO_SLOTS];

#define CANARY 0xc5

static int canary_ok(const volatile uint8_t *p, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (p[i] != CANARY)
            return 0;
    }
    return 1;
}

static int no_reset(const struct vdev *d)
{
    return !(vd_status(d) & ST_NEEDS_RESET);
}

/* Submits a chain and requires its completion without NEEDS_RESET. */
static int completes(struct vdev *d, unsigned q, const struct vbuf *b, unsigned n, uint32_t *len)
{
    uint32_t l = 0;
    int r = vd_transfer(d, q, b, n, &l);

    if (len)
        *len = l;
    if (r)
        say("%s: request on queue %u: %s\n", d->ctx, q, r == -1 ? "timed out" : "NEEDS_RESET");
    return r == 0 && no_reset(d);
}

static int sector_has_pattern(struct vdev *d, uint64_t sector)
{
    uint8_t *buf = vd_alloc(d, 512, 64);
    uint8_t st = 0xee;

    if (blk_io(d, BLK_T_IN, sector, (uintptr_t)buf, 512, &st, 0) || st != BLK_S_OK)
        return 0;
    for (unsigned i = 0; i < 512; i++) {
        if (buf[i] != disk_pattern(sector * 512 + i))
            return 0;
    }
    return 1;
}

static void test_blk(struct vdev *d)
{
    static struct {
        uint32_t type, reserved;
        uint64_t sector;
    } h __attribute__((aligned(16)));
    uint8_t *buf = vd_alloc(d, 8192, 64);
    uint8_t *st = buf + 4096;
    uint64_t cap = blk_capacity(d);
    int ro = (d->offered & BLK_F_RO) != 0;
    uint32_t len = 0;
    uint8_t s = 0;

    /* 8-byte header */
    memset(buf, CANARY, 600);
    h = (typeof(h)){BLK_T_IN, 0, 0};
    *st = 0xee;
    {
        struct vbuf b[3] = {
            {(uintptr_t)&h, 8, 0}, {(uintptr_t)buf, 512, D_WRITE}, {(uintptr_t)st, 1, D_WRITE}};

        CHECK(10, completes(d, 0, b, 3, &len) && *st != BLK_S_OK && canary_ok(buf, 512));
    }
    /* header only */
    {
        struct vbuf b = {(uintptr_t)&h, 16, 0};

        CHECK(11, completes(d, 0, &b, 1, &len) && len == 0);
    }
    CHECK(12, blk_io(d, BLK_T_IN, cap, (uintptr_t)buf, 512, &s, 0) == 0 && s == BLK_S_IOERR);
    CHECK(13, blk_io(d, BLK_T_IN, cap - 1, (uintptr_t)buf, 1024, &s, 0) == 0 && s == BLK_S_IOERR);
    CHECK(14, blk_io(d, BLK_T_IN, ~0ULL, (uintptr_t)buf, 512, &s, 0) == 0 && s == BLK_S_IOERR);
    CHECK(14, blk_io(d, BLK_T_IN, 1ULL << 55, (uintptr_t)buf, 512, &s, 0) == 0 && s == BLK_S_IOERR);
    memset(buf, 0x11, 1024);
    if (!ro) {
        CHECK(15, blk_io(d, BLK_T_OUT, cap, (uintptr_t)buf, 512, &s, 0) == 0 && s == BLK_S_IOERR);
        CHECK(15,
              blk_io(d, BLK_T_OUT, cap - 1, (uintptr_t)buf, 1024, &s, 0) == 0 && s == BLK_S_IOERR);
        CHECK(15, blk_io(d, BLK_T_OUT, 1ULL << 55, (uintptr_t)buf, 512, &s, 0) == 0 &&
                      s == BLK_S_IOERR);
    } else {
        CHECK(15, blk_io(d, BLK_T_OUT, 0, (uintptr_t)buf, 512, &s, 0) == 0 && s == BLK_S_IOERR);
        CHECK(15, sector_has_pattern(d, 0));
    }
    /* 64 MiB */
    memset((void *)BIG_BUF, CANARY, 64);
    memset((void *)(BIG_BUF + BIG_BUF_SIZE - 64), CANARY, 64);
    CHECK(16, blk_io(d, BLK_T_IN, 0, BIG_BUF, (uint32_t)BIG_BUF_SIZE, &s, &len) == 0 &&
                  s == BLK_S_IOERR && canary_ok((uint8_t *)BIG_BUF, 64) &&
                  canary_ok((uint8_t *)(BIG_BUF + BIG_BUF_SIZE - 64), 64));
    CHECK(17, blk_io(d, BLK_T_OUT, 0, BIG_BUF, (uint32_t)BIG_BUF_SIZE, &s, &len) == 0 &&
                  s == BLK_S_IOERR && sector_has_pattern(d, 0));
    CHECK(18, blk_io(d, BLK_T_IN, 0, (uintptr_t)buf, 100, &s, 0) == 0 && s != BLK_S_OK);
    CHECK(19, blk_io(d, 0x7fffffff, 0, (uintptr_t)buf, 512, &s, 0) == 0 && s == BLK_S_UNSUPP);
    CHECK(19, blk_io(d, 2, 0, 0, 0, &s, 0) == 0 && s == BLK_S_UNSUPP);

    memset(buf, CANARY, 64);
    CHECK(20, blk_io(d, BLK_T_GET_ID, 0, (uintptr_t)buf, 5, &s, &len) == 0 && s == BLK_S_OK &&
                  len <= 6 && canary_ok(buf + 5, 59));
    CHECK(20, blk_io(d, BLK_T_GET_ID, 0, 0, 0, &s, &len) == 0 && s == BLK_S_OK);

    /* discard (11) and write-zeroes (13): one segment is 16 bytes {sector, num, flags} */
    {
        uint32_t *seg = (uint32_t *)(buf + 1024);

        seg[0] = 0, seg[1] = 0, seg[2] = 8, seg[3] = 0;
        CHECK(21, blk_io(d, 11, 0, (uintptr_t)seg, 8, &s, 0) == 0 && s != BLK_S_OK);
        seg[0] = (uint32_t)(cap - 1), seg[2] = 2;
        CHECK(21, blk_io(d, 11, 0, (uintptr_t)seg, 16, &s, 0) == 0 && s != BLK_S_OK);
        seg[0] = 0, seg[1] = 0, seg[2] = 0xffffffff;
        CHECK(21, blk_io(d, 13, 0, (uintptr_t)seg, 16, &s, 0) == 0 && s != BLK_S_OK);
        seg[2] = 8, seg[3] = 0xfffffffe;
        CHECK(21, blk_io(d, 13, 0, (uintptr_t)seg, 16, &s, 0) == 0 && s != BLK_S_OK);
        seg[3] = 0;
        seg[0] = 0xffffffff, seg[1] = 0xffffffff, seg[2] = 1;
        CHECK(21, blk_io(d, 11, 0, (uintptr_t)seg, 16, &s, 0) == 0 && s != BLK_S_OK);
        CHECK(21, sector_has_pattern(d, 0) && sector_has_pattern(d, cap - 1));
    }

    /* IN with a device-readable data buffer */
    memset(buf, CANARY, 512);
    h = (typeof(h)){BLK_T_IN, 0, 0};
    *st = 0xee;
    {
        struct vbuf b[3] = {
            {(uintptr_t)&h, 16, 0}, {(uintptr_t)buf, 512, 0}, {(uintptr_t)st, 1, D_WRITE}};

        CHECK(22, completes(d, 0, b, 3, &len) && canary_ok(buf, 512));
    }
    /* status in a device-readable buffer */
    *st = CANARY;
    {
        struct vbuf b[2] = {{(uintptr_t)&h, 16, 0}, {(uintptr_t)st, 1, 0}};

        CHECK(23, completes(d, 0, b, 2, &len) && *st == CANARY && len == 0);
    }
    CHECK(24, still_sane(d) == 0 && sector_has_pattern(d, cap - 1) && sector_has_pattern(d, 1));
}

static void post_rx(struct vdev *d, uintptr_t buf, unsigned n, uint32_t len, uint16_t flags)
{
    struct vq *rx = &d->q[0];

    for (unsigned i = 0; i < n; i++) {
        unsigned idx = (rx->avail_idx + i) % rx->num;

        vq_set_desc(rx, idx, buf + 2048 * i, len, flags, 0);
        vq_publish(rx, (uint16_t)idx);
    }
    vd_kick(d, 0);
}

/* Sends an ARP request for the gateway; returns 1 when a reply arrives in a receive buffer. */
static int arp_answered(struct vdev *d, uintptr_t rxbuf)
{
    uint64_t end = now_ticks() + US_TO_TICKS(TMO_US);
    uint32_t id = 0, len = 0;

    if (sane_request(d, SUBMIT_DIRECT))
        return 0;
    while (now_ticks() < end && vq_wait(d, 0, TMO_US, &id, &len) == 0) {
        const uint8_t *f = (const uint8_t *)rxbuf + 2048 * (id % 4) + 12;

        if (len >= 12 + 42 && f[12] == 0x08 && f[13] == 0x06 && f[21] == 2)
            return 1;
    }
    return 0;
}

static void test_net(struct vdev *d)
{
    uint8_t *buf = vd_alloc(d, 4096, 64);
    uint8_t *rxbuf = vd_alloc(d, 4 * 2048, 64);
    struct vbuf b[2];
    uint32_t id = 0, len = 0;

    b[0] = (struct vbuf){(uintptr_t)buf, 0, 0};
    CHECK(30, completes(d, 1, b, 1, 0));
    memset((void *)BIG_BUF, 0, 128);
    b[0] = (struct vbuf){(uintptr_t)buf, 12, 0};
    b[1] = (struct vbuf){BIG_BUF, 70000 - 12, 0};
    CHECK(31, completes(d, 1, b, 2, 0));
    CHECK(32, completes(d, 1, b, 1, 0));
    b[0].len = 11;
    CHECK(33, completes(d, 1, b, 1, 0));
    b[0] = (struct vbuf){(uintptr_t)buf, 64, D_WRITE};
    CHECK(34, completes(d, 1, b, 1, 0));

    /* An 8-byte receive buffer, then an ARP request: the answer must not land past it. */
    memset(rxbuf, CANARY, 2048);
    post_rx(d, (uintptr_t)rxbuf, 1, 8, D_WRITE);
    CHECK(35, sane_request(d, SUBMIT_DIRECT) == 0);
    if (vq_wait(d, 0, 500000, &id, &len) == 0)
        CHECK(35, len <= 8);
    CHECK(35, canary_ok(rxbuf + 8, 2040) && no_reset(d));

    /* Start again from a clean state (the 8-byte buffer may still be posted). */
    CHECK(36, vd_init(d, 0) == 0);
    rxbuf = vd_alloc(d, 4 * 2048, 64);
    memset(rxbuf, CANARY, 2048);
    post_rx(d, (uintptr_t)rxbuf, 1, 1538, 0);
    CHECK(36, sane_request(d, SUBMIT_DIRECT) == 0);
    if (vq_wait(d, 0, 500000, &id, &len) == 0)
        CHECK(36, len == 0);
    CHECK(36, canary_ok(rxbuf, 1538) && no_reset(d));

    CHECK(37, vd_init(d, 0) == 0);
    rxbuf = vd_alloc(d, 4 * 2048, 64);
    buf = vd_alloc(d, 4096, 64);
    post_rx(d, (uintptr_t)rxbuf, 4, 1538, D_WRITE);
    CHECK(37, arp_answered(d, (uintptr_t)rxbuf));

    {
        uint8_t *f = (uint8_t *)BIG_BUF;

        memset(f, 0xa5, 65549);
        memset(f, 0xff, 6);
        f[12] = 0x08, f[13] = 0x00;
        b[0] = (struct vbuf){(uintptr_t)buf, 12, 0};
        b[1] = (struct vbuf){BIG_BUF, 65549, 0};
        CHECK(38, completes(d, 1, b, 2, 0));
        b[1].len = 14;
        CHECK(38, completes(d, 1, b, 2, 0));
        CHECK(38, still_sane(d) == 0);
    }

    CHECK(39, vd_init(d, 0) == 0);
    buf = vd_alloc(d, 4096, 64);
    {
        struct vq *rx = &d->q[0];

        vq_set_desc(rx, 0, (uintptr_t)vd_alloc(d, 2048, 64), 1538, D_WRITE | D_NEXT, 0);
        vq_publish(rx, 0);
        vd_kick(d, 0);
        /* The ARP answer meets the loop (the transmit may or may not complete first). */
        net_arp_request(d, buf + 16);
        b[0] = (struct vbuf){(uintptr_t)buf, 12, 0};
        b[1] = (struct vbuf){(uintptr_t)buf + 16, 60, 0};
        vd_submit(d, 1, b, 2);
        CHECK(39, expect_broken(d, 0) == 0);
        CHECK(39, recover(d, 0) == 0);
    }
}

struct ctrl {
    uint32_t id;
    uint16_t event, value;
};

static int ctrl_send(struct vdev *d, uint8_t *buf, uint32_t id, uint16_t ev, uint16_t val,
                     uint32_t len)
{
    struct ctrl *m = (struct ctrl *)buf;
    struct vbuf b = {(uintptr_t)buf, len, 0};

    m->id = id, m->event = ev, m->value = val;
    return completes(d, 3, &b, 1, 0);
}

/* Port 0 receive (queue 0) after an optional bad buffer (1: device-readable only, 2: a 0-byte
 * device-writable one): a 64-byte buffer must receive the host client's bytes within TMO_US.
 * 0 when it did (or when the device answered the bad buffer with NEEDS_RESET). */
static int console_rx(struct vdev *d, int bad)
{
    struct vq *rx = &d->q[0];
    uint8_t *buf = vd_alloc(d, 4096, 64);
    uint64_t end = now_ticks() + US_TO_TICKS(TMO_US);
    uint32_t id = 0, len = 0;

    if (bad) {
        vq_set_desc(rx, 0, (uintptr_t)buf + 1024, bad == 1 ? 64 : 0, bad == 1 ? 0 : D_WRITE, 0);
        vq_publish(rx, 0);
        vd_kick(d, 0);
    }
    vq_set_desc(rx, 1, (uintptr_t)buf, 64, D_WRITE, 0);
    vq_publish(rx, 1);
    vd_kick(d, 0);
    while (now_ticks() < end) {
        if (vd_status(d) & ST_NEEDS_RESET)
            return bad ? 0 : -1;
        if (vq_wait(d, 0, 1000, &id, &len) == 0 && id == 1)
            break;
    }
    /* The host's bytes are a stream of "hostile-ping\n": a buffer may start anywhere in it. */
    for (uint32_t i = 0; id == 1 && i < len && i < 64; i++) {
        const char *p = "hostile-ping\n";

        while (*p && *p != buf[i])
            p++;
        if (!*p)
            id = 99;
    }
    if (id != 1 || len == 0 || len > 64) {
        say("%s: port 0 receive after bad buffer %d: id %u len %u '%c'\n", d->ctx, bad, id, len,
            buf[0] ? buf[0] : '?');
        return -1;
    }
    return 0;
}

static void test_console(struct vdev *d)
{
    uint8_t *buf, *rx;
    struct vq *crx;
    uint32_t id = 0, len = 0;
    int adds = 0;

    CHECK(40, vd_init(d, 2) == 0 && vd_default_queues(d) == 4); /* MULTIPORT */
    crx = &d->q[2];
    buf = vd_alloc(d, 8192, 64);
    rx = vd_alloc(d, 64 * 64, 64);

    CHECK(40, ctrl_send(d, buf, 0xffffffff, 3, 1, 8)); /* PORT_READY */
    CHECK(40, ctrl_send(d, buf, 2, 6, 1, 8));          /* PORT_OPEN */
    CHECK(40, ctrl_send(d, buf, 0, 0xffff, 1, 8));
    CHECK(40, ctrl_send(d, buf, 1, 7, 1, 8)); /* PORT_NAME is the device's message */
    CHECK(40, ctrl_send(d, buf, 0, 3, 1, 4));
    CHECK(40, ctrl_send(d, buf, 0, 3, 1, 0));
    CHECK(40, ctrl_send(d, buf, 0, 6, 0xffff, 4096));
    {
        struct vbuf b[2] = {{(uintptr_t)buf, 3, 0}, {(uintptr_t)buf + 3, 5, 0}};

        ((struct ctrl *)buf)->id = 0, ((struct ctrl *)buf)->event = 6;
        CHECK(40, completes(d, 3, b, 2, 0));
    }

    for (unsigned k = 0; k < 40; k++)
        CHECK(41, ctrl_send(d, buf, 0, 0, 1, 8)); /* DEVICE_READY */
    memset(rx, CANARY, 64 * 16);
    for (unsigned k = 0; k < 16; k++) {
        vq_set_desc(crx, k, (uintptr_t)rx + 64 * k, 4, D_WRITE, 0);
        vq_publish(crx, (uint16_t)k);
    }
    vd_kick(d, 2);
    delay_us(200000);
    while (vq_wait(d, 2, 0, &id, &len) == 0)
        CHECK(41, id < 16 && len <= 4);
    for (unsigned k = 0; k < 16; k++)
        CHECK(41, canary_ok(rx + 64 * k + 4, 60));
    CHECK(41, no_reset(d));

    CHECK(42, vd_init(d, 2) == 0);
    crx = &d->q[2];
    buf = vd_alloc(d, 8192, 64);
    rx = vd_alloc(d, 64 * 64, 64);
    memset(rx, CANARY, 64);
    vq_set_desc(crx, 0, (uintptr_t)rx, 8, D_WRITE, 0);
    vq_publish(crx, 0);
    vd_kick(d, 2);
    CHECK(42, ctrl_send(d, buf, 1, 3, 1, 8)); /* PORT_READY(1) for the named port */
    delay_us(200000);
    if (vq_wait(d, 2, 0, &id, &len) == 0)
        CHECK(42, len <= 8);
    CHECK(42, canary_ok(rx + 8, 56) && no_reset(d));

    vd_kick(d, 5);
    vd_kick(d, 4);
    CHECK(43, no_reset(d));

    CHECK(44, still_sane(d) == 0);
    memset(rx, 0, 64 * 16);
    for (unsigned k = 1; k < 9; k++) {
        vq_set_desc(crx, k, (uintptr_t)rx + 64 * k, 64, D_WRITE, 0);
        vq_publish(crx, (uint16_t)k);
    }
    vd_kick(d, 2);
    CHECK(44, ctrl_send(d, buf, 0, 0, 1, 8));
    while (adds < 2 && vq_wait(d, 2, TMO_US, &id, &len) == 0) {
        const uint8_t *m = rx + 64 * (id % 16);

        if (len >= 8 && m[4] == 1 && m[5] == 0)
            adds++;
    }
    CHECK(44, adds == 2);

    CHECK(45, vd_init(d, 2) == 0);
    crx = &d->q[2];
    buf = vd_alloc(d, 8192, 64);
    vq_set_desc(crx, 0, (uintptr_t)buf + 4096, 64, D_WRITE | D_NEXT, 0);
    vq_publish(crx, 0);
    vd_kick(d, 2);
    {
        /* DEVICE_READY: two messages to deliver into the loop */
        struct ctrl *m = (struct ctrl *)buf;
        struct vbuf b = {(uintptr_t)buf, 8, 0};

        m->id = 0, m->event = 0, m->value = 1;
        vd_submit(d, 3, &b, 1);
        CHECK(45, expect_broken(d, 2) == 0);
    }
    CHECK(45, recover(d, 2) == 0);

    CHECK(46, vd_init(d, 0) == 0);
    CHECK(46, console_rx(d, 0) == 0);
    CHECK(47, vd_init(d, 0) == 0);
    CHECK(47, console_rx(d, 1) == 0);
    CHECK(48, vd_init(d, 0) == 0);
    CHECK(48, console_rx(d, 2) == 0);
    CHECK(49, vd_init(d, 0) == 0);
    CHECK(49, console_rx(d, 0) == 0);
}

static void test_balloon(struct vdev *d)
{
    uint32_t *pfn = vd_alloc(d, 8192, 64);
    struct vbuf b[2];

    pfn[0] = 0;
    pfn[1] = 0x10000000 >> 12;
    pfn[2] = (RAM_BASE >> 12) - 1;
    pfn[3] = RAM_END >> 12;
    pfn[4] = 0xffffffff;
    b[0] = (struct vbuf){(uintptr_t)pfn, 20, 0};
    CHECK(50, completes(d, 0, b, 1, 0));

    pfn[0] = (uint32_t)(scratch_page(d, 4) >> 12);
    pfn[1] = (uint32_t)(scratch_page(d, 5) >> 12);
    b[0].len = 7;
    CHECK(51, completes(d, 0, b, 1, 0));
    b[0].len = 1;
    CHECK(51, completes(d, 0, b, 1, 0));
    b[0].len = 0;
    CHECK(51, completes(d, 0, b, 1, 0));
    b[0].len = 4095;
    CHECK(51, completes(d, 0, b, 1, 0));

    b[0] = (struct vbuf){(uintptr_t)pfn, 2, 0};
    b[1] = (struct vbuf){(uintptr_t)pfn + 2, 6, 0};
    CHECK(52, completes(d, 0, b, 2, 0));

    pfn[0] = 0xffffffff;
    b[0] = (struct vbuf){(uintptr_t)pfn, 7, 0};
    CHECK(53, completes(d, 1, b, 1, 0));

    /* The page holding the inflate queue's rings (descriptor table first). */
    pfn[0] = (uint32_t)((uintptr_t)d->q[0].desc >> 12);
    pfn[1] = (uint32_t)((uintptr_t)d->q[0].avail >> 12);
    pfn[2] = (uint32_t)((uintptr_t)d->q[0].used >> 12);
    b[0] = (struct vbuf){(uintptr_t)pfn, 12, 0};
    vd_submit(d, 0, b, 1);
    delay_us(200000);
    vd_kick(d, 0);
    delay_us(50000);
    CHECK(54, recover(d, 0) == 0);
    pfn = vd_alloc(d, 8192, 64); /* the arena was rewound */

    /* statistics (feature bit 1): odd lengths, unknown tags */
    CHECK(55, vd_init(d, 2) == 0 && vd_default_queues(d) == 3);
    pfn = vd_alloc(d, 8192, 64); /* the arena was rewound */
    {
        uint8_t *s = (uint8_t *)pfn;

        memset(s, 0xff, 64);
        b[0] = (struct vbuf){(uintptr_t)s, 3, 0};
        vd_submit(d, 2, b, 1);
        delay_us(100000);
        CHECK(55, no_reset(d));
    }
    CHECK(55, recover(d, 2) == 0);
    pfn = vd_alloc(d, 8192, 64); /* the arena was rewound */
    {
        uint8_t *s = (uint8_t *)pfn;

        b[0] = (struct vbuf){(uintptr_t)s, 10 * 5 + 5, 0};
        vd_submit(d, 2, b, 1);
        delay_us(100000);
        CHECK(55, no_reset(d));
    }

    vd_wr(d, VM_CONFIG, 12345);
    wr8(d->base + VM_CONFIG + 1, 0x55);
    wr16(d->base + VM_CONFIG + 2, 0x5555);
    CHECK(56, vd_cfg32(d, 0) == 0);
    CHECK(57, recover(d, 0) == 0);

    /* Unbounded work per buffer: the device runs on the VMM's event loop thread, which also
     * serves the other devices and must stop when the guest powers off. */
    {
        uint32_t *p = (uint32_t *)BIG_BUF;
        uint32_t page = (uint32_t)(scratch_page(d, 8) >> 12);
        struct vq *vq;

        for (unsigned k = 0; k < (256U << 10) / 4; k++)
            p[k] = page;
        vd_queue_size = 128;
        CHECK(58, vd_init(d, 2) == 0 && d->q[0].num == 128);
        pfn = vd_alloc(d, 8192, 64); /* the arena was rewound */
        vd_queue_size = 16;
        vq = &d->q[0];
        for (unsigned k = 0; k < 128; k++)
            vq_set_desc(vq, k, BIG_BUF, 256U << 10, k < 127 ? D_NEXT : 0, (uint16_t)(k + 1));
        vq_publish(vq, 0);
        vd_kick(d, 0);
        pfn[0] = page;
        b[0] = (struct vbuf){(uintptr_t)pfn, 4, 0};
        CHECK(58, completes(d, 1, b, 1, 0));

        vd_queue_size = 64;
        CHECK(59, recover(d, 2) == 0 && d->q[2].num == 64);
        vd_queue_size = 16;
        vq = &d->q[2];
        for (unsigned k = 0; k < 32; k++)
            vq_set_desc(vq, k, RAM_BASE, (uint32_t)RAM_SIZE, k < 31 ? D_NEXT : 0,
                        (uint16_t)(k + 1));
        vq_publish(vq, 0);
        vd_kick(d, 2);
        CHECK(59, sane_request(d, SUBMIT_DIRECT) == 0);
        vd_reset(d);
    }
}

static int page_is(uintptr_t page, uint8_t v, unsigned from, unsigned to)
{
    const volatile uint8_t *p = (const volatile uint8_t *)page;

    for (unsigned i = from; i < to; i++) {
        if (p[i] != v)
            return 0;
    }
    return 1;
}

/* Negotiates STATS_VQ and REPORTING and sets up all five queues. 0 or -1. */
static int reporting_init(struct vdev *d)
{
    if (vd_negotiate(d, (1u << 1) | (1u << 5), 0) || !(d->features & (1u << 5)))
        return -1;
    for (unsigned q = 0; q < 5; q++) {
        if (vd_queue_setup(d, q, 0))
            return -1;
    }
    return vd_driver_ok(d);
}

static void test_balloon_reporting(struct vdev *d)
{
    uintptr_t a = scratch_page(d, 10), b = scratch_page(d, 11), c = scratch_page(d, 12);
    struct vbuf v[3];

    CHECK(64, (d->offered & (1u << 5)) && reporting_init(d) == 0);
    memset((void *)a, CANARY, 4096);
    v[0] = (struct vbuf){a, 4096, D_WRITE};
    CHECK(65, completes(d, 3, v, 1, 0) && page_is(a, 0, 0, 4096));

    memset((void *)b, CANARY, 4096);
    memset((void *)c, CANARY, 4096);
    v[0] = (struct vbuf){a, 4096, 0};           /* readable: not a report */
    v[1] = (struct vbuf){b + 8, 4088, D_WRITE}; /* starts inside the page */
    v[2] = (struct vbuf){c, 2048, D_WRITE};     /* half a page */
    memset((void *)a, CANARY, 4096);
    CHECK(66, completes(d, 3, v, 3, 0) && page_is(a, CANARY, 0, 4096) &&
                  page_is(b, CANARY, 0, 4096) && page_is(c, CANARY, 0, 4096));

    v[0] = (struct vbuf){b, 4096, D_WRITE};
    CHECK(67, completes(d, 4, v, 1, 0) && page_is(b, 0, 0, 4096));

    v[0] = (struct vbuf){RAM_END - 4096, 8192, D_WRITE};
    vd_submit(d, 3, v, 1);
    CHECK(68, expect_broken(d, 3) == 0);

    CHECK(69, reporting_init(d) == 0);
    v[0] = (struct vbuf){(uintptr_t)d->q[3].desc & ~4095UL, 4096, D_WRITE};
    vd_submit(d, 3, v, 1);
    delay_us(100000);
    CHECK(69, recover(d, 0) == 0);
}

static void test_rng(struct vdev *d)
{
    uint8_t *buf = vd_alloc(d, 4096, 64);
    struct vbuf b;
    uint32_t len = 99;

    b = (struct vbuf){(uintptr_t)buf, 0, D_WRITE};
    CHECK(60, completes(d, 0, &b, 1, &len) && len == 0);
    memset(buf, CANARY, 64);
    b = (struct vbuf){(uintptr_t)buf, 64, 0};
    CHECK(61, completes(d, 0, &b, 1, &len) && len == 0 && canary_ok(buf, 64));
    b = (struct vbuf){BIG_BUF, 1U << 20, D_WRITE};
    CHECK(62, completes(d, 0, &b, 1, &len) && len <= (1U << 20));
    CHECK(63, still_sane(d) == 0);
}

int main(void)
{
    unsigned n = find_devices(devs);

    CHECK(1, n > 0);
    for (unsigned i = 0; i < n; i++) {
        struct vdev *d = &devs[i];

        hostile_set_context(d->ctx);
        say("devices: %s\n", d->ctx);
        CHECK(2, vd_init(d, 0) == 0);
        switch (d->id) {
        case ID_BLOCK: test_blk(d); break;
        case ID_NET: test_net(d); break;
        case ID_CONSOLE: test_console(d); break;
        case ID_BALLOON:
            test_balloon(d);
            test_balloon_reporting(d);
            break;
        case ID_RNG: test_rng(d); break;
        }
        vd_reset(d);
    }
    return 0;
}
