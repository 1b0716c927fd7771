/* rings: broken available rings, illegal queue set-up, and register abuse (virtio 1.2 §2.7,
 * §4.2.2, §4.2.3). For every device found:
 *
 *   1       at least one device
 *   2       initialisation works
 *   available ring (each: DEVICE_NEEDS_RESET + configuration interrupt, nothing completed):
 *   10      avail->idx jumps by queue size + 1
 *   11      avail->idx goes backwards from 0 (0xffff: 65535 "new" entries)
 *   12      avail->idx goes back after a completed request (1 -> 0)
 *   13      head index == queue size
 *   14      head index 0xffff
 *   15      legal: rings ending exactly at the end of RAM work
 *   queue set-up (each: QueueReady reads back 0 or Status shows NEEDS_RESET; then a reset
 *   brings Status back to 0):
 *   20-26   descriptor table at 0x1000_0000; available ring straddling the end of RAM; used
 *           ring at 0xffff_ffff_ffff_f000; descriptor table misaligned (8); used ring
 *           misaligned (2); descriptor table straddling the end of RAM by one entry; descriptor
 *           table above 4 GiB (0x1_8010_0000)
 *   27-31   QueueNum 3 (not a power of two), 2 * QueueNumMax, 0, 0x10000, 0xffff_ffff
 *   32      QueueReady before FEATURES_OK
 *   register abuse on a running device (each: no crash, and the device still works):
 *   40      byte writes of 0 to each byte of Status: ignored, Status unchanged
 *   41      a 16-bit write of 0 to Status: ignored
 *   42      byte and 16-bit reads of registers (any value, or a trap)
 *   43      64-bit load of MagicValue, 64-bit store of 0 to Status (a trap, or done)
 *   44      misaligned 32-bit load and store in the register window (a trap, or done)
 *   45      writes to read-only registers: MagicValue, Version, DeviceID, VendorID,
 *           DeviceFeatures, QueueNumMax, InterruptStatus, ConfigGeneration: all ignored
 *   46      reads and writes beyond the registers (0x200, 0x800, 0xffc of the slot): read 0
 *           or trap, writes change nothing
 *   47      configuration space beyond its size reads 0; writes there, and to read-only
 *           configuration fields, change nothing (blk capacity)
 *   48      QueueSel out of range: QueueNumMax and QueueReady read 0; QueueReady = 1 ignored
 *   49      QueueNotify for queues that do not exist: ignored
 *   50      InterruptACK with every bit: harmless
 *   51      QueueNum / QueueDesc written while the queue is ready: ignored (the ring stays where
 *           it was) or NEEDS_RESET
 *   52      QueueReady = 0 after DRIVER_OK: no crash; recovery by reset
 *   53      a queue set up after DRIVER_OK: no crash; recovery by reset
 *   feature negotiation and status:
 *   54      DRIVER_OK without FEATURES_OK is refused (or NEEDS_RESET), kicks do nothing
 *   55      FEATURES_OK with a device-type feature that was not offered does not stick
 *   56      FEATURES_OK without VERSION_1 does not stick (no legacy interface)
 *   57      FEATURES_OK with a bit above 63 (DriverFeaturesSel 2) does not stick
 *   58      clearing Status bits without a reset: ignored (device works) or NEEDS_RESET
 *   59      DriverFeatures written after FEATURES_OK: ignored, initialisation completes
 *   60      available and used ring at the same address: no crash; recovery by reset
 *   61      after everything, a reset and re-initialisation make the device work again
 *   62      10000 kicks with nothing available: harmless, the device still works
 *   63      a reset with requests in flight (blk: five 1 MiB reads): once Status reads 0 the
 *           device writes nothing more into the old rings or buffers
 *   64      200 cycles of initialise, submit without waiting, reset: the device still works
 *   65      DRIVER_OK with no queue set up: kicks are ignored; recovery by reset */
#include "common.h"

static struct vdev devs[VIRTIO_SLOTS];

static struct vq *fresh(struct vdev *d, unsigned *qout)
{
    CHECK(2, vd_init(d, 0) == 0);
    *qout = vd_req_queue(d);
    return &d->q[*qout];
}

static void broken(struct vdev *d, unsigned q, unsigned check)
{
    CHECK(check, expect_broken(d, q) == 0);
}

/* Negotiates, then sets queue q up with the given values (0 for an address: a good area from
 * the arena). Returns 1 when the device refused: QueueReady reads 0 or NEEDS_RESET; then
 * resets and checks that Status reads 0 again (else returns -1). 0: accepted. */
static int bad_setup(struct vdev *d, unsigned q, uint32_t num, uint64_t desc, uint64_t avail,
                     uint64_t used, int skip_features_ok)
{
    uint32_t ready;
    int refused;

    if (skip_features_ok) {
        vd_reset(d);
        vd_wr(d, VM_STATUS, ST_ACK);
        vd_wr(d, VM_STATUS, ST_ACK | ST_DRIVER);
    } else if (vd_negotiate(d, 0, 0)) {
        return -1;
    }
    if (!desc)
        desc = (uintptr_t)vd_alloc(d, 16 * 256, 4096);
    if (!avail)
        avail = (uintptr_t)vd_alloc(d, 4096, 4096);
    if (!used)
        used = (uintptr_t)vd_alloc(d, 4096, 4096);
    ready = vd_queue_setup_raw(d, q, num, desc, avail, used);
    refused = ready == 0 || (vd_status(d) & ST_NEEDS_RESET);
    if (!refused)
        say("%s: queue %u accepted: num %u desc 0x%lx avail 0x%lx used 0x%lx\n", d->ctx, q, num,
            desc, avail, used);
    vd_reset(d);
    if (vd_status(d) != 0 || vd_rd(d, VM_ISR) != 0)
        return -1;
    return refused;
}

/* Queue q set up at fixed addresses and recorded as ours. 0 when QueueReady reads 1. */
static int setup_at(struct vdev *d, unsigned q, uint32_t num, uintptr_t desc, uintptr_t avail,
                    uintptr_t used)
{
    struct vq *vq = &d->q[q];

    memset((void *)desc, 0, 16 * num);
    memset((void *)avail, 0, 6 + 2 * num);
    memset((void *)used, 0, 6 + 8 * num);
    if (vd_queue_setup_raw(d, q, num, desc, avail, used) != 1)
        return -1;
    vq->num = (uint16_t)num;
    vq->avail_idx = vq->used_seen = 0;
    vq->desc = (void *)desc;
    vq->avail = (void *)avail;
    vq->used = (void *)used;
    return 0;
}

/* Re-initialises if the device is no longer running (a register access that got through as a
 * reset, or NEEDS_RESET), then requires a working request. */
static int works(struct vdev *d)
{
    uint32_t st = vd_status(d);

    if (st != (ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK)) {
        say("%s: Status 0x%x after the abuse; re-initialising\n", d->ctx, st);
        return recover(d, 0);
    }
    return sane_request(d, SUBMIT_DIRECT);
}

static void test_avail(struct vdev *d)
{
    struct vq *vq;
    unsigned q;

    vq = fresh(d, &q);
    vq->avail->idx = (uint16_t)(vq->num + 1);
    vd_kick(d, q);
    broken(d, q, 10);

    vq = fresh(d, &q);
    vq->avail->idx = 0xffff;
    vd_kick(d, q);
    broken(d, q, 11);

    vq = fresh(d, &q);
    CHECK(12, sane_request(d, SUBMIT_DIRECT) == 0);
    vq->avail->idx = 0;
    vd_kick(d, q);
    broken(d, q, 12);

    vq = fresh(d, &q);
    vq_set_desc(vq, 0, (uintptr_t)vd_alloc(d, 16, 16), 16, 0, 0);
    vq_publish(vq, vq->num);
    vd_kick(d, q);
    broken(d, q, 13);

    vq = fresh(d, &q);
    vq_publish(vq, 0xffff);
    vd_kick(d, q);
    broken(d, q, 14);

    /* Rings in the last bytes of RAM: available ring ends exactly at RAM end. */
    {
        unsigned nq = vd_default_queues(d);
        int ok;

        CHECK(15, vd_negotiate(d, 0, 0) == 0);
        ok = 1;
        for (unsigned k = 0; k < nq; k++) {
            if (k == vd_req_queue(d))
                ok &= setup_at(d, k, 16, RAM_END - 0x1000, RAM_END - 38, RAM_END - 0x400) == 0;
            else
                ok &= vd_queue_setup(d, k, 0) == 0;
        }
        CHECK(15, ok && vd_driver_ok(d) == 0 && sane_request(d, SUBMIT_DIRECT) == 0 &&
                      sane_request(d, SUBMIT_DIRECT) == 0);
        vd_reset(d);
    }
}

static void test_setup(struct vdev *d)
{
    unsigned q = vd_req_queue(d);
    uint32_t max;

    vd_reset(d);
    vd_wr(d, VM_QUEUE_SEL, q);
    max = vd_rd(d, VM_QUEUE_NUMMAX);
    CHECK(20, bad_setup(d, q, 16, 0x10000000, 0, 0, 0) == 1);
    CHECK(21, bad_setup(d, q, 16, 0, RAM_END - 8, 0, 0) == 1);
    CHECK(22, bad_setup(d, q, 16, 0, 0, 0xfffffffffffff000ULL, 0) == 1);
    CHECK(23, bad_setup(d, q, 16, d->arena + 0x8008, 0, 0, 0) == 1);
    CHECK(24, bad_setup(d, q, 16, 0, 0, d->arena + 0x9002, 0) == 1);
    CHECK(25, bad_setup(d, q, 16, RAM_END - 16 * 16 + 16, 0, 0, 0) == 1);
    CHECK(26, bad_setup(d, q, 16, 0x180100000ULL, 0, 0, 0) == 1);
    CHECK(27, bad_setup(d, q, 3, 0, 0, 0, 0) == 1);
    CHECK(28, bad_setup(d, q, 2 * max, 0, 0, 0, 0) == 1);
    CHECK(29, bad_setup(d, q, 0, 0, 0, 0, 0) == 1);
    CHECK(30, bad_setup(d, q, 0x10000, 0, 0, 0, 0) == 1);
    CHECK(31, bad_setup(d, q, 0xffffffff, 0, 0, 0, 0) == 1);
    CHECK(32, bad_setup(d, q, 16, 0, 0, 0, 1) == 1);
}

static void test_registers(struct vdev *d)
{
    const uint32_t running = ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK;
    uint64_t v;
    uint32_t feat0, feat1, max, gen, id;
    unsigned q;

    fresh(d, &q);
    for (unsigned b = 0; b < 4; b++) {
        wr8(d->base + VM_STATUS + b, 0);
        CHECK(40, vd_status(d) == running);
    }
    CHECK(40, works(d) == 0);

    wr16(d->base + VM_STATUS, 0);
    wr16(d->base + VM_STATUS + 2, 0);
    CHECK(41, vd_status(d) == running && works(d) == 0);

    for (uint32_t off = 0; off < 0x100; off += 4) {
        guard_load(d->base + off, 1, &v);
        guard_load(d->base + off + 3, 1, &v);
        guard_load(d->base + off + 2, 2, &v);
    }
    CHECK(42, works(d) == 0);

    guard_load(d->base + VM_MAGIC, 8, &v);
    guard_store(d->base + VM_STATUS, 8, 0);
    CHECK(43, works(d) == 0);

    guard_load(d->base + VM_STATUS + 2, 4, &v);
    guard_store(d->base + VM_STATUS + 1, 4, 0);
    guard_store(d->base + VM_QUEUE_NOTIFY + 2, 4, 0);
    CHECK(44, works(d) == 0);

    vd_wr(d, VM_DEV_FEAT_SEL, 0);
    feat0 = vd_rd(d, VM_DEV_FEAT);
    vd_wr(d, VM_DEV_FEAT_SEL, 1);
    feat1 = vd_rd(d, VM_DEV_FEAT);
    vd_wr(d, VM_QUEUE_SEL, q);
    max = vd_rd(d, VM_QUEUE_NUMMAX);
    gen = vd_rd(d, VM_CONFIG_GEN);
    id = vd_rd(d, VM_DEVICE_ID);
    {
        static const uint32_t ro[] = {VM_MAGIC,    VM_VERSION,      VM_DEVICE_ID, VM_VENDOR_ID,
                                      VM_DEV_FEAT, VM_QUEUE_NUMMAX, VM_ISR,       VM_CONFIG_GEN};

        for (unsigned k = 0; k < sizeof(ro) / sizeof(ro[0]); k++)
            vd_wr(d, ro[k], 0xffffffff);
    }
    CHECK(45, vd_rd(d, VM_MAGIC) == VIRTIO_MAGIC && vd_rd(d, VM_VERSION) == 2 &&
                  vd_rd(d, VM_DEVICE_ID) == id && vd_rd(d, VM_QUEUE_NUMMAX) == max &&
                  vd_rd(d, VM_CONFIG_GEN) == gen && vd_status(d) == running);
    vd_wr(d, VM_DEV_FEAT_SEL, 0);
    CHECK(45, vd_rd(d, VM_DEV_FEAT) == feat0);
    vd_wr(d, VM_DEV_FEAT_SEL, 1);
    CHECK(45, vd_rd(d, VM_DEV_FEAT) == feat1 && works(d) == 0);

    {
        static const uint32_t far[] = {0x200, 0x204, 0x800, 0xffc};

        for (unsigned k = 0; k < 4; k++) {
            v = 0x1234;
            CHECK(46, guard_load(d->base + far[k], 4, &v) != 0 || v == 0);
            guard_store(d->base + far[k], 4, 0xffffffff);
            guard_store(d->base + far[k], 1, 0);
        }
        CHECK(46, vd_status(d) == running && works(d) == 0);
    }

    {
        uint64_t cap = d->id == ID_BLOCK ? blk_capacity(d) : 0;

        v = 0x1234;
        CHECK(47, (guard_load(d->base + 0x1fc, 4, &v) != 0 || v == 0));
        v = 0x1234;
        CHECK(47, (guard_load(d->base + 0x1ff, 1, &v) != 0 || v == 0));
        guard_store(d->base + 0x1fc, 4, 0xffffffff);
        guard_store(d->base + 0x1f0, 2, 0xffff);
        if (d->id == ID_BLOCK) {
            vd_wr(d, VM_CONFIG, 0);
            vd_wr(d, VM_CONFIG + 4, 0xffffffff);
            wr8(d->base + VM_CONFIG + 1, 0x55);
            CHECK(47, blk_capacity(d) == cap);
        }
        CHECK(47, works(d) == 0);
    }

    vd_wr(d, VM_QUEUE_SEL, 0x100);
    CHECK(48, vd_rd(d, VM_QUEUE_NUMMAX) == 0 && vd_rd(d, VM_QUEUE_READY) == 0);
    vd_wr(d, VM_QUEUE_SEL, 0xffffffff);
    CHECK(48, vd_rd(d, VM_QUEUE_NUMMAX) == 0 && vd_rd(d, VM_QUEUE_READY) == 0);
    vd_wr(d, VM_QUEUE_NUM, 16);
    vd_wr(d, VM_QUEUE_READY, 1);
    CHECK(48, vd_rd(d, VM_QUEUE_READY) == 0 && works(d) == 0);

    vd_wr(d, VM_QUEUE_NOTIFY, 0xffff);
    vd_wr(d, VM_QUEUE_NOTIFY, 0xffffffff);
    vd_wr(d, VM_QUEUE_NOTIFY, 255);
    vd_wr(d, VM_QUEUE_NOTIFY, 0x10000 | q);
    CHECK(49, vd_status(d) == running && works(d) == 0);

    vd_wr(d, VM_ISR_ACK, 0xffffffff);
    CHECK(50, vd_rd(d, VM_ISR) == 0 && works(d) == 0);

    /* Queue registers of a ready queue. */
    vd_wr(d, VM_QUEUE_SEL, q);
    vd_wr(d, VM_QUEUE_NUM, 3);
    vd_wr(d, VM_DESC_LO, 0);
    vd_wr(d, VM_DESC_HI, 0);
    vd_wr(d, VM_DRIVER_LO, 0x10000000);
    vd_wr(d, VM_DEVICE_LO, 0x10000000);
    CHECK(51, (vd_status(d) & ST_NEEDS_RESET) || works(d) == 0);
    vd_reset(d);

    fresh(d, &q);
    vd_wr(d, VM_QUEUE_SEL, q);
    vd_wr(d, VM_QUEUE_READY, 0);
    vd_kick(d, q);
    sane_request(d, SUBMIT_DIRECT); /* may or may not work: only the recovery is checked */
    CHECK(52, recover(d, 0) == 0);
    vd_reset(d);

    fresh(d, &q);
    {
        /* the first queue the device has but we did not set up, if any */
        unsigned extra = vd_default_queues(d);
        void *ring = vd_alloc(d, 0x3000, 4096);

        vd_wr(d, VM_QUEUE_SEL, extra);
        if (vd_rd(d, VM_QUEUE_NUMMAX))
            vd_queue_setup_raw(d, extra, 16, (uintptr_t)ring, (uintptr_t)ring + 0x1000,
                               (uintptr_t)ring + 0x2000);
        vd_kick(d, extra);
    }
    CHECK(53, recover(d, 0) == 0);
    vd_reset(d);
}

static void test_features(struct vdev *d)
{
    unsigned q = vd_req_queue(d);
    uint64_t offered;
    unsigned bit;

    /* DRIVER_OK without FEATURES_OK */
    vd_reset(d);
    vd_wr(d, VM_STATUS, ST_ACK);
    vd_wr(d, VM_STATUS, ST_ACK | ST_DRIVER);
    vd_wr(d, VM_STATUS, ST_ACK | ST_DRIVER | ST_DRIVER_OK);
    vd_kick(d, q);
    CHECK(54, !(vd_status(d) & ST_DRIVER_OK) || (vd_status(d) & ST_NEEDS_RESET));
    CHECK(54, recover(d, 0) == 0);

    /* a device-type feature bit that was not offered */
    offered = d->offered;
    for (bit = 0; bit < 24 && (offered & (1ULL << bit)); bit++)
        ;
    CHECK(55, bit < 24 && vd_negotiate(d, 0, 1ULL << bit) == -1);
    CHECK(55, !(vd_status(d) & ST_FEATURES_OK));

    /* no VERSION_1 */
    vd_reset(d);
    vd_wr(d, VM_STATUS, ST_ACK);
    vd_wr(d, VM_STATUS, ST_ACK | ST_DRIVER);
    vd_wr(d, VM_DRV_FEAT_SEL, 0);
    vd_wr(d, VM_DRV_FEAT, (uint32_t)offered);
    vd_wr(d, VM_DRV_FEAT_SEL, 1);
    vd_wr(d, VM_DRV_FEAT, (uint32_t)((offered & ~F_VERSION_1) >> 32));
    vd_wr(d, VM_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK);
    CHECK(56, !(vd_status(d) & ST_FEATURES_OK));

    /* a bit above 63 */
    vd_reset(d);
    vd_wr(d, VM_STATUS, ST_ACK);
    vd_wr(d, VM_STATUS, ST_ACK | ST_DRIVER);
    vd_wr(d, VM_DRV_FEAT_SEL, 1);
    vd_wr(d, VM_DRV_FEAT, (uint32_t)(F_VERSION_1 >> 32));
    vd_wr(d, VM_DRV_FEAT_SEL, 2);
    vd_wr(d, VM_DRV_FEAT, 1);
    vd_wr(d, VM_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK);
    CHECK(57, !(vd_status(d) & ST_FEATURES_OK));

    /* clearing status bits on a running device */
    CHECK(58, vd_init(d, 0) == 0);
    vd_wr(d, VM_STATUS, ST_ACK);
    CHECK(58, (vd_status(d) & ST_NEEDS_RESET) || works(d) == 0);

    /* DriverFeatures after FEATURES_OK */
    CHECK(59, vd_negotiate(d, 0, 0) == 0);
    vd_wr(d, VM_DRV_FEAT_SEL, 0);
    vd_wr(d, VM_DRV_FEAT, 0xffffffff);
    vd_wr(d, VM_DRV_FEAT_SEL, 1);
    vd_wr(d, VM_DRV_FEAT, 0xffffffff);
    for (unsigned k = 0; k < vd_default_queues(d); k++)
        CHECK(59, vd_queue_setup(d, k, 0) == 0);
    CHECK(59, vd_driver_ok(d) == 0 && sane_request(d, SUBMIT_DIRECT) == 0);
    vd_reset(d);
}

static void test_overlap(struct vdev *d)
{
    unsigned q = vd_req_queue(d), nq;
    uintptr_t ring;

    CHECK(60, vd_negotiate(d, 0, 0) == 0);
    nq = vd_default_queues(d);
    ring = (uintptr_t)vd_alloc(d, 0x2000, 4096);
    for (unsigned k = 0; k < nq; k++) {
        if (k == q)
            CHECK(60, setup_at(d, k, 16, ring, ring + 0x1000, ring + 0x1000) == 0 ||
                          (vd_status(d) & ST_NEEDS_RESET));
        else
            CHECK(60, vd_queue_setup(d, k, 0) == 0);
    }
    vd_driver_ok(d);
    if (d->q[q].num) {
        struct vbuf b = {(uintptr_t)vd_alloc(d, 64, 64), 16, d->id == ID_RNG ? D_WRITE : 0};

        vd_submit(d, q, &b, 1);
        delay_us(50000);
        vd_kick(d, q);
        delay_us(50000);
    }
    vd_reset(d);
    CHECK(60, vd_status(d) == 0);
}

/* Submits up to five requests without waiting for them (blk: 1 MiB reads into BIG_BUF). */
static void submit_some(struct vdev *d)
{
    unsigned q = vd_req_queue(d);
    struct vq *vq = &d->q[q];
    uint8_t *buf = vd_alloc(d, 4096, 64);

    for (unsigned k = 0; k < 5; k++) {
        struct vbuf b[3];

        if (d->id == ID_BLOCK) {
            uint64_t *h = (uint64_t *)(buf + 32 * k);

            h[0] = BLK_T_IN, h[1] = 0;
            b[0] = (struct vbuf){(uintptr_t)h, 16, 0};
            b[1] = (struct vbuf){BIG_BUF + k * (1UL << 20), 1U << 20, D_WRITE};
            b[2] = (struct vbuf){(uintptr_t)buf + 1024 + k, 1, D_WRITE};
            vd_submit_at(d, q, 3 * k, b, 3);
        } else {
            b[0] = (struct vbuf){(uintptr_t)buf + 2048 + 64 * k, 16, d->id == ID_RNG ? D_WRITE : 0};
            vd_submit_at(d, q, k, b, 1);
        }
    }
    (void)vq;
}

static void test_reset_races(struct vdev *d)
{
    unsigned q = vd_req_queue(d);
    volatile uint8_t *old;
    uint32_t size;
    int clean = 1;

    fresh(d, &q);
    for (unsigned k = 0; k < 10000; k++)
        vd_wr(d, VM_QUEUE_NOTIFY, q);
    CHECK(62, still_sane(d) == 0);
    vd_reset(d);

    fresh(d, &q);
    submit_some(d);
    vd_wr(d, VM_STATUS, 0);
    CHECK(63, vd_status(d) == 0);
    /* The old used ring and (blk) the data buffers must stay as we leave them now. */
    old = (volatile uint8_t *)d->q[q].used;
    size = 6 + 8 * d->q[q].num;
    for (uint32_t k = 0; k < size; k++)
        old[k] = 0xa5;
    if (d->id == ID_BLOCK) {
        for (unsigned k = 0; k < 5; k++)
            *(volatile uint32_t *)(BIG_BUF + k * (1UL << 20) + (1UL << 20) - 4) = 0xa5a5a5a5;
    }
    delay_us(200000);
    for (uint32_t k = 0; k < size; k++)
        clean &= old[k] == 0xa5;
    if (d->id == ID_BLOCK) {
        for (unsigned k = 0; k < 5; k++)
            clean &=
                *(volatile uint32_t *)(BIG_BUF + k * (1UL << 20) + (1UL << 20) - 4) == 0xa5a5a5a5;
    }
    CHECK(63, clean);
    vd_reset(d);

    for (unsigned k = 0; k < 200; k++) {
        CHECK(64, vd_init(d, 0) == 0);
        submit_some(d);
        vd_wr(d, VM_STATUS, 0);
    }
    CHECK(64, recover(d, 0) == 0);
    vd_reset(d);

    CHECK(65, vd_negotiate(d, 0, 0) == 0 && vd_driver_ok(d) == 0);
    for (unsigned k = 0; k < 8; k++)
        vd_wr(d, VM_QUEUE_NOTIFY, k);
    delay_us(20000);
    CHECK(65, recover(d, 0) == 0);
    vd_reset(d);
}

int main(void)
{
    unsigned n = find_devices(devs);

    CHECK(1, n > 0);
    for (unsigned i = 0; i < n; i++) {
        struct vdev *d = &devs[i];

        hostile_set_context(d->ctx);
        say("rings: %s\n", d->ctx);
        test_avail(d);
        test_setup(d);
        test_registers(d);
        test_features(d);
        test_overlap(d);
        test_reset_races(d);
        CHECK(61, recover(d, 0) == 0);
        vd_reset(d);
    }
    return 0;
}
