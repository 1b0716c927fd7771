/* Snapshots and migration of the virtio layer: quiesce, save, load into a fresh transport over a
 * copy of guest RAM, and carry on. The real devices (rng, blk on a temporary raw image, balloon
 * and console on an event loop) are driven through virtio_mmio_ops exactly as a driver would,
 * with their rings in guest RAM. Also: the dirty-page log sees every page a device writes, and
 * a corrupted or crafted section is refused with a message, never a crash (run under ASan). */
#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/dirty.h"
#include "base/log.h"
#include "base/loop.h"
#include "base/state.h"
#include "base/time.h"
#include "hw/virtio/vdev.h"
#include "hw/virtio/virtio_balloon.h"
#include "hw/virtio/virtio_mmio.h"
#include "hw/virtio/virtqueue.h"
#include "test.h"

#define RAM_BASE UINT64_C(0x80000000)
#define RAM_SIZE (1u << 20)
#define PAGE     4096u
#define RINGS    0x00000u /* queue q: desc at RINGS + q * 0x4000, avail +0x1000, used +0x2000 */
#define DATA     0x40000u /* buffers from here */

#define BIT(n)  (UINT64_C(1) << (n))
#define ST_ACK  VIRTIO_STATUS_ACKNOWLEDGE
#define ST_DRV  VIRTIO_STATUS_DRIVER
#define ST_FOK  VIRTIO_STATUS_FEATURES_OK
#define ST_DOK  VIRTIO_STATUS_DRIVER_OK
#define ST_LIVE (ST_ACK | ST_DRV | ST_FOK | ST_DOK)

/* Offsets into a version-1 section (virtio_mmio.h), for the corruption tests. */
#define OFF_DEVICE_ID   0
#define OFF_NUM_QUEUES  4
#define OFF_STATUS      8
#define OFF_ACTIVATED   13
#define OFF_DRV_FEAT    22
#define OFF_NEGOTIATED  31
#define OFF_ISR         43
#define OFF_QUEUE0      51
#define QUEUE_BYTES     38
#define QOFF_NUM        0
#define QOFF_DESC       4
#define QOFF_READY      28
#define QOFF_LAST_AVAIL 29

static struct loop *loop;

/* --- one side of a migration: RAM, a device, its transport -------------------------------- */

struct fake_irq {
    atomic_bool level;
};

static void fake_irq_set(void *opaque, unsigned n, bool level)
{
    (void)n;
    atomic_store(&((struct fake_irq *)opaque)->level, level);
}

struct side {
    struct guest_ram ram;
    const struct vdev_type *type;
    const struct virtio_device_ops *ops;
    void *dev;
    struct virtio_dev *vd;
    struct fake_irq irq;
};

/* Creates RAM, a device of `type` from `opts` and its transport. */
static bool side_create(struct side *s, const char *type, const char *opts)
{
    struct vdev_env env = {.loop = loop};
    struct irq_line line = {.set = fake_irq_set, .opaque = &s->irq, .n = 1};
    char err[VDEV_ERR_LEN] = "";

    memset(s, 0, sizeof(*s));
    if (guest_ram_init(&s->ram, RAM_BASE, RAM_SIZE)) {
        CHECK(!"guest_ram_init failed");
        return false;
    }
    env.ram = &s->ram;
    s->type = vdev_type_find(type);
    CHECK(s->type != NULL);
    if (!s->type || s->type->create(&env, opts, &s->dev, &s->ops, err)) {
        fprintf(stderr, "create %s: %s\n", type, err);
        CHECK(!"device create failed");
        guest_ram_destroy(&s->ram);
        return false;
    }
    CHECK_EQ_U64(virtio_mmio_create(&s->ram, &line, s->ops, s->dev, &s->vd), 0);
    s->type->attach(s->dev, s->vd);
    return true;
}

static void side_destroy(struct side *s)
{
    virtio_mmio_reset(s->vd);
    virtio_mmio_destroy(s->vd);
    s->type->destroy(s->dev);
    guest_ram_destroy(&s->ram);
}

/* The target: same device, RAM copied from the source (the stream's RAM part). */
static bool side_clone(struct side *dst, const struct side *src, const char *type, const char *opts)
{
    if (!side_create(dst, type, opts))
        return false;
    memcpy(dst->ram.host, src->ram.host, RAM_SIZE);
    return true;
}

static void *gp(const struct side *s, gpa_t a)
{
    return s->ram.host + (a - RAM_BASE);
}

static uint32_t rd(const struct side *s, uint64_t off)
{
    uint64_t v = 0;

    CHECK_EQ_U64(virtio_mmio_ops.read(s->vd, off, 4, &v), 0);
    return (uint32_t)v;
}

static void wr(const struct side *s, uint64_t off, uint32_t v)
{
    CHECK_EQ_U64(virtio_mmio_ops.write(s->vd, off, 4, v), 0);
}

static uint32_t cfg_rd32(const struct side *s, uint32_t off)
{
    uint64_t v = 0;

    CHECK_EQ_U64(virtio_mmio_ops.read(s->vd, VIRTIO_MMIO_CONFIG + off, 4, &v), 0);
    return (uint32_t)v;
}

/* --- the driver ----------------------------------------------------------------------------- */

/* The driver's bookkeeping for one queue. It describes guest memory, so after a migration the
 * same struct goes on with the target's RAM. */
struct dq {
    unsigned index;
    uint16_t num;
    gpa_t desc, avail, used;
    uint16_t avail_idx, last_used, next_desc;
};

static struct virtq_avail *dq_avail(const struct side *s, const struct dq *q)
{
    return gp(s, q->avail);
}

static struct virtq_used *dq_used(const struct side *s, const struct dq *q)
{
    return gp(s, q->used);
}

static uint16_t used_idx(const struct side *s, const struct dq *q)
{
    return __atomic_load_n(&dq_used(s, q)->idx, __ATOMIC_ACQUIRE);
}

/* §3.1.1 with `nq` queues of `num` entries; features = offered & want. */
static bool drv_init(struct side *s, struct dq *qs, unsigned nq, uint16_t num, uint64_t want)
{
    uint64_t offered;

    wr(s, VIRTIO_MMIO_REG_STATUS, 0);
    wr(s, VIRTIO_MMIO_REG_STATUS, ST_ACK);
    wr(s, VIRTIO_MMIO_REG_STATUS, ST_ACK | ST_DRV);
    wr(s, VIRTIO_MMIO_REG_DEVICE_FEATURES_SEL, 1);
    offered = (uint64_t)rd(s, VIRTIO_MMIO_REG_DEVICE_FEATURES) << 32;
    wr(s, VIRTIO_MMIO_REG_DEVICE_FEATURES_SEL, 0);
    offered |= rd(s, VIRTIO_MMIO_REG_DEVICE_FEATURES);
    want &= offered;
    wr(s, VIRTIO_MMIO_REG_DRIVER_FEATURES_SEL, 0);
    wr(s, VIRTIO_MMIO_REG_DRIVER_FEATURES, (uint32_t)want);
    wr(s, VIRTIO_MMIO_REG_DRIVER_FEATURES_SEL, 1);
    wr(s, VIRTIO_MMIO_REG_DRIVER_FEATURES, (uint32_t)(want >> 32));
    wr(s, VIRTIO_MMIO_REG_STATUS, ST_ACK | ST_DRV | ST_FOK);
    for (unsigned q = 0; q < nq; q++) {
        gpa_t base = RAM_BASE + RINGS + q * 0x4000;

        qs[q] = (struct dq){
            .index = q, .num = num, .desc = base, .avail = base + 0x1000, .used = base + 0x2000};
        memset(gp(s, base), 0, 0x4000);
        wr(s, VIRTIO_MMIO_REG_QUEUE_SEL, q);
        wr(s, VIRTIO_MMIO_REG_QUEUE_NUM, num);
        wr(s, VIRTIO_MMIO_REG_QUEUE_DESC_LOW, (uint32_t)qs[q].desc);
        wr(s, VIRTIO_MMIO_REG_QUEUE_DESC_HIGH, (uint32_t)(qs[q].desc >> 32));
        wr(s, VIRTIO_MMIO_REG_QUEUE_DRIVER_LOW, (uint32_t)qs[q].avail);
        wr(s, VIRTIO_MMIO_REG_QUEUE_DRIVER_HIGH, (uint32_t)(qs[q].avail >> 32));
        wr(s, VIRTIO_MMIO_REG_QUEUE_DEVICE_LOW, (uint32_t)qs[q].used);
        wr(s, VIRTIO_MMIO_REG_QUEUE_DEVICE_HIGH, (uint32_t)(qs[q].used >> 32));
        wr(s, VIRTIO_MMIO_REG_QUEUE_READY, 1);
    }
    wr(s, VIRTIO_MMIO_REG_STATUS, ST_LIVE);
    CHECK_EQ_U64(rd(s, VIRTIO_MMIO_REG_STATUS), ST_LIVE);
    return rd(s, VIRTIO_MMIO_REG_STATUS) == ST_LIVE;
}

struct seg {
    gpa_t addr;
    uint32_t len;
    bool write;
};

/* Writes a chain of direct descriptors and makes it available (no kick). */
static void drv_add(struct side *s, struct dq *q, const struct seg *sg, unsigned n)
{
    struct virtq_desc *d = gp(s, q->desc);
    uint16_t head = q->next_desc, idx = head;

    for (unsigned i = 0; i < n; i++) {
        uint16_t next = (uint16_t)((idx + 1) % q->num);

        d[idx] = (struct virtq_desc){
            .addr = sg[i].addr,
            .len = sg[i].len,
            .flags = (uint16_t)((sg[i].write ? VIRTQ_DESC_F_WRITE : 0) |
                                (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
            .next = i + 1 < n ? next : 0,
        };
        idx = next;
    }
    q->next_desc = idx;
    dq_avail(s, q)->ring[q->avail_idx % q->num] = head;
    q->avail_idx++;
    __atomic_store_n(&dq_avail(s, q)->idx, q->avail_idx, __ATOMIC_RELEASE);
}

static void drv_kick(struct side *s, const struct dq *q)
{
    wr(s, VIRTIO_MMIO_REG_QUEUE_NOTIFY, q->index);
}

/* Waits up to two seconds for used->idx to reach `want` (devices with threads). */
static bool wait_used(const struct side *s, const struct dq *q, uint16_t want)
{
    uint64_t end = time_now_ns() + 2000000000ull;

    while (used_idx(s, q) != want) {
        if (time_now_ns() > end)
            return false;
        usleep(1000);
    }
    return true;
}

/* As wait_used() without sleeping, so the next kick comes while the device thread may still be
 * busy or polling. */
static bool spin_used(const struct side *s, const struct dq *q, uint16_t want)
{
    uint64_t end = time_now_ns() + 2000000000ull;

    while (used_idx(s, q) != want) {
        if (time_now_ns() > end)
            return false;
    }
    return true;
}

static void save(struct side *s, struct sbuf *b)
{
    sbuf_init(b);
    virtio_mmio_save(s->vd, b);
    CHECK(!b->oom);
}

/* Loads `len` bytes of `data`; returns the rc and leaves the error in err (may be NULL). */
static int load(struct side *s, const void *data, size_t len, char *err)
{
    struct scur c;
    int rc;

    scur_init(&c, data, len, "virtio-mmio@0");
    rc = virtio_mmio_load(s->vd, &c, VIRTIO_MMIO_STATE_VERSION);
    if (err)
        snprintf(err, STATE_ERR_LEN, "%s", c.err);
    if (rc == 0 && c.failed)
        CHECK(!"load returned 0 with an error set");
    return rc;
}

static bool same_bytes(const struct sbuf *a, const struct sbuf *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

/* --- rng: round trip, a request pending across the migration -------------------------------- */

static const uint64_t RING_FEATURES =
    BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_F_RING_EVENT_IDX) | BIT(VIRTIO_F_RING_INDIRECT_DESC);

static void rng_request(struct side *s, struct dq *q, unsigned slot)
{
    struct seg sg = {RAM_BASE + DATA + slot * 64, 64, true};

    drv_add(s, q, &sg, 1);
}

static void test_rng_roundtrip(void)
{
    struct side src, dst, dst2;
    struct dq q;
    struct sbuf a, b;

    if (!side_create(&src, "rng", ""))
        return;
    CHECK(drv_init(&src, &q, 1, 8, RING_FEATURES));
    for (unsigned i = 0; i < 3; i++) {
        rng_request(&src, &q, i);
        drv_kick(&src, &q);
    }
    CHECK_EQ_U64(used_idx(&src, &q), 3);
    CHECK_EQ_U64(dq_used(&src, &q)->ring[2].len, 64);
    CHECK(atomic_load(&src.irq.level));

    /* Quiesced: a kick is held, the request stays available. */
    virtio_mmio_quiesce(src.vd);
    rng_request(&src, &q, 3);
    drv_kick(&src, &q);
    CHECK_EQ_U64(used_idx(&src, &q), 3);
    save(&src, &a);
    CHECK_EQ_U64(a.len, OFF_QUEUE0 + QUEUE_BYTES + 8);

    /* A target quiesced before the load holds exactly the saved state. */
    if (side_clone(&dst, &src, "rng", "")) {
        virtio_mmio_quiesce(dst.vd);
        CHECK_EQ_U64(load(&dst, a.data, a.len, NULL), 0);
        CHECK(atomic_load(&dst.irq.level)); /* InterruptStatus was not acknowledged */
        CHECK_EQ_U64(rd(&dst, VIRTIO_MMIO_REG_INTERRUPT_STATUS), VIRTIO_INT_USED_BUFFER);
        CHECK_EQ_U64(rd(&dst, VIRTIO_MMIO_REG_STATUS), ST_LIVE);
        save(&dst, &b);
        CHECK(same_bytes(&a, &b));
        sbuf_free(&b);
        CHECK_EQ_U64(used_idx(&dst, &q), 3);
        /* Resume serves what became available while the source was quiesced. */
        virtio_mmio_resume(dst.vd);
        CHECK_EQ_U64(used_idx(&dst, &q), 4);
        CHECK_EQ_U64(dq_used(&dst, &q)->ring[3].len, 64);
        /* And the driver carries on with the target. */
        rng_request(&dst, &q, 4);
        drv_kick(&dst, &q);
        CHECK_EQ_U64(used_idx(&dst, &q), 5);
        side_destroy(&dst);
    }
    /* A fresh target runs at once: the pending request is served by the load itself. */
    if (side_clone(&dst2, &src, "rng", "")) {
        CHECK_EQ_U64(load(&dst2, a.data, a.len, NULL), 0);
        CHECK_EQ_U64(used_idx(&dst2, &q), 4);
        side_destroy(&dst2);
    }
    /* The source resumes too (a snapshot of a running VM). */
    virtio_mmio_resume(src.vd);
    CHECK_EQ_U64(used_idx(&src, &q), 4);
    sbuf_free(&a);
    side_destroy(&src);
}

/* A device without quiesce/resume: the transport holds kicks and polls on resume itself. */
static void test_transport_fallback(void)
{
    struct side s;
    struct virtio_device_ops ops;
    struct virtio_dev *vd, *bad = NULL;
    struct dq q;

    if (!side_create(&s, "rng", ""))
        return;
    ops = *s.ops;
    ops.quiesce = NULL;
    CHECK_EQ_U64(virtio_mmio_create(&s.ram, NULL, &ops, s.dev, &bad), (uint64_t)-EINVAL);
    ops.resume = NULL;
    ops.state_version = 1; /* a version without save/load */
    CHECK_EQ_U64(virtio_mmio_create(&s.ram, NULL, &ops, s.dev, &bad), (uint64_t)-EINVAL);
    ops.state_version = 0;
    CHECK(bad == NULL);
    vd = s.vd;
    CHECK_EQ_U64(virtio_mmio_create(&s.ram, NULL, &ops, s.dev, &s.vd), 0);
    s.type->attach(s.dev, s.vd);
    virtio_mmio_destroy(vd);
    CHECK(drv_init(&s, &q, 1, 8, RING_FEATURES));
    virtio_mmio_quiesce(s.vd);
    rng_request(&s, &q, 0);
    drv_kick(&s, &q);
    CHECK_EQ_U64(used_idx(&s, &q), 0);
    virtio_mmio_resume(s.vd);
    CHECK_EQ_U64(used_idx(&s, &q), 1);
    side_destroy(&s);
}

/* --- dirty log ------------------------------------------------------------------------------- */

static uint64_t dirty_bits[(RAM_SIZE / PAGE + 63) / 64];

static uint64_t harvest(struct side *s)
{
    return dirty_log_harvest(&s->ram.dirty, dirty_bits);
}

static bool page_dirty(gpa_t a)
{
    uint64_t p = (a - RAM_BASE) / PAGE;

    return dirty_bits[p / 64] & BIT(p % 64);
}

static void test_dirty_log(void)
{
    struct side s;
    struct dq q;
    struct seg span = {RAM_BASE + DATA + 0x10800, 0x1000, true}; /* across two pages */

    if (!side_create(&s, "rng", ""))
        return;
    CHECK(drv_init(&s, &q, 1, 8, RING_FEATURES));
    dirty_log_start(&s.ram.dirty);
    CHECK_EQ_U64(harvest(&s), RAM_SIZE / PAGE); /* the first pass is all of RAM */
    CHECK_EQ_U64(harvest(&s), 0);

    rng_request(&s, &q, 0);
    drv_kick(&s, &q);
    CHECK_EQ_U64(used_idx(&s, &q), 1);
    CHECK_EQ_U64(harvest(&s), 2);
    CHECK(page_dirty(RAM_BASE + DATA)); /* the buffer */
    CHECK(page_dirty(q.used));          /* used element, idx, avail_event */
    CHECK(!page_dirty(q.avail));
    CHECK(!page_dirty(q.desc));

    drv_add(&s, &q, &span, 1);
    drv_kick(&s, &q);
    CHECK_EQ_U64(harvest(&s), 3);
    CHECK(page_dirty(span.addr));
    CHECK(page_dirty(span.addr + span.len - 1));
    CHECK(page_dirty(q.used));

    /* Off: nothing is marked. */
    dirty_log_stop(&s.ram.dirty);
    rng_request(&s, &q, 1);
    drv_kick(&s, &q);
    CHECK_EQ_U64(used_idx(&s, &q), 3);
    CHECK_EQ_U64(harvest(&s), 0);
    side_destroy(&s);
}

/* --- blk on a raw image ---------------------------------------------------------------------- */

#define DISK_SECTORS 128

struct blk_hdr {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};

static bool make_disk(char *path, unsigned sectors)
{
    uint8_t sec[512];
    int fd;

    strcpy(path, "/tmp/tessera-test-state-XXXXXX");
    fd = mkstemp(path);
    if (fd < 0)
        return false;
    for (unsigned i = 0; i < sectors; i++) {
        memset(sec, (int)(i + 1), sizeof(sec));
        if (write(fd, sec, sizeof(sec)) != (ssize_t)sizeof(sec)) {
            close(fd);
            unlink(path);
            return false;
        }
    }
    close(fd);
    return true;
}

/* A read of one sector into the slot's buffer; the header and status live beside it. */
static void blk_read(struct side *s, struct dq *q, unsigned slot, uint64_t sector)
{
    gpa_t base = RAM_BASE + DATA + slot * 0x400;
    struct blk_hdr *h = gp(s, base);
    struct seg sg[3] = {{base, 16, false}, {base + 0x100, 512, true}, {base + 0x300, 1, true}};

    *h = (struct blk_hdr){.type = 0, .sector = sector};
    *(uint8_t *)gp(s, base + 0x300) = 0xff;
    drv_add(s, q, sg, 3);
}

static bool blk_read_ok(const struct side *s, unsigned slot, uint64_t sector)
{
    gpa_t base = RAM_BASE + DATA + slot * 0x400;
    const uint8_t *data = gp(s, base + 0x100);

    if (*(uint8_t *)gp(s, base + 0x300) != 0)
        return false;
    for (unsigned i = 0; i < 512; i++) {
        if (data[i] != (uint8_t)(sector + 1))
            return false;
    }
    return true;
}

static void test_blk_roundtrip(void)
{
    char path[64], path2[64], small[64], opts[128], opts2[128], err[STATE_ERR_LEN];
    struct side src, dst, other;
    struct dq q;
    struct sbuf a, b;
    uint16_t u;

    if (!make_disk(path, DISK_SECTORS)) {
        CHECK(!"cannot create a temporary disk image");
        return;
    }
    /* The source holds its image locked: the target opens a copy, as on another host. */
    if (!make_disk(path2, DISK_SECTORS)) {
        CHECK(!"cannot create a temporary disk image");
        unlink(path);
        return;
    }
    snprintf(opts, sizeof(opts), "%s,format=raw", path);
    snprintf(opts2, sizeof(opts2), "%s,format=raw", path2);
    if (!side_create(&src, "disk", opts))
        goto unlink;
    CHECK(drv_init(&src, &q, 1, 64, RING_FEATURES));
    blk_read(&src, &q, 0, 3);
    drv_kick(&src, &q);
    CHECK(wait_used(&src, &q, 1));
    CHECK(blk_read_ok(&src, 0, 3));

    /* Quiesce in the middle of a burst: what was popped is pushed, then nothing moves. */
    for (unsigned i = 1; i <= 16; i++)
        blk_read(&src, &q, i, i);
    drv_kick(&src, &q);
    virtio_mmio_quiesce(src.vd);
    u = used_idx(&src, &q);
    usleep(20000);
    CHECK_EQ_U64(used_idx(&src, &q), u);
    blk_read(&src, &q, 17, 17);
    drv_kick(&src, &q);
    usleep(5000);
    CHECK_EQ_U64(used_idx(&src, &q), u);
    save(&src, &a);

    if (side_clone(&dst, &src, "disk", opts2)) {
        virtio_mmio_quiesce(dst.vd);
        CHECK_EQ_U64(load(&dst, a.data, a.len, err), 0);
        save(&dst, &b);
        CHECK(same_bytes(&a, &b));
        sbuf_free(&b);
        /* The dirty log sees the status byte past `written` and the data of the requests the
         * target serves. */
        dirty_log_start(&dst.ram.dirty);
        harvest(&dst);
        virtio_mmio_resume(dst.vd);
        CHECK(wait_used(&dst, &q, 18));
        for (unsigned i = 1; i <= 17; i++)
            CHECK(blk_read_ok(&dst, i, i));
        harvest(&dst);
        CHECK(page_dirty(RAM_BASE + DATA + 17 * 0x400 + 0x300));
        CHECK(page_dirty(q.used));
        /* A read past the end fails: only the status byte, on its own page at the end of the
         * chain, is written, and that page is marked although the device reports 1 byte. */
        {
            gpa_t hdr = RAM_BASE + DATA + 0xb000, data = hdr + PAGE, st = data + PAGE;
            struct seg sg[3] = {{hdr, 16, false}, {data, 512, true}, {st, 1, true}};

            *(struct blk_hdr *)gp(&dst, hdr) = (struct blk_hdr){.type = 0, .sector = 1000};
            drv_add(&dst, &q, sg, 3);
            drv_kick(&dst, &q);
            CHECK(wait_used(&dst, &q, 19));
            CHECK_EQ_U64(*(uint8_t *)gp(&dst, st), 1); /* VIRTIO_BLK_S_IOERR */
            CHECK_EQ_U64(dq_used(&dst, &q)->ring[18].len, 1);
            CHECK_EQ_U64(harvest(&dst), 3);
            CHECK(page_dirty(st));
            CHECK(page_dirty(data));
            CHECK(!page_dirty(hdr));
        }
        side_destroy(&dst);
    }
    /* The source, resumed, serves them too. */
    virtio_mmio_resume(src.vd);
    CHECK(wait_used(&src, &q, 18));
    CHECK(blk_read_ok(&src, 17, 17));

    /* A target opened on another image is refused, naming the field. */
    if (make_disk(small, DISK_SECTORS / 2)) {
        snprintf(opts, sizeof(opts), "%s,format=raw", small);
        if (side_clone(&other, &src, "disk", opts)) {
            CHECK_EQ_U64(load(&other, a.data, a.len, err), (uint64_t)-1);
            CHECK(strstr(err, "capacity") != NULL);
            CHECK_EQ_U64(rd(&other, VIRTIO_MMIO_REG_STATUS), 0);
            side_destroy(&other);
        }
        unlink(small);
    }
    /* A disk's section into an rng: the device id differs. */
    if (side_create(&other, "rng", "")) {
        CHECK_EQ_U64(load(&other, a.data, a.len, err), (uint64_t)-1);
        CHECK(strstr(err, "id 2") != NULL);
        side_destroy(&other);
    }
    sbuf_free(&a);
    side_destroy(&src);
unlink:
    unlink(path);
    unlink(path2);
}

/* A write of one sector filled with `fill` from the slot's buffer. */
static void blk_write(struct side *s, struct dq *q, unsigned slot, uint64_t sector, uint8_t fill)
{
    gpa_t base = RAM_BASE + DATA + slot * 0x400;
    struct seg sg[3] = {{base, 16, false}, {base + 0x100, 512, false}, {base + 0x300, 1, true}};

    *(struct blk_hdr *)gp(s, base) = (struct blk_hdr){.type = 1, .sector = sector};
    memset(gp(s, base + 0x100), fill, 512);
    *(uint8_t *)gp(s, base + 0x300) = 0xff;
    drv_add(s, q, sg, 3);
}

static uint8_t blk_status(const struct side *s, unsigned slot)
{
    return *(uint8_t *)gp(s, RAM_BASE + DATA + slot * 0x400 + 0x300);
}

/* Many requests made available before one kick: all served, in ring order (a later write to
 * the same sector wins, the flush and the read after them see every earlier write), each with
 * its own used entry in order. Then requests kicked one at a time as fast as they complete,
 * which meet the worker busy, polling or asleep: none is lost, and a reset while the worker
 * may be polling leaves it able to serve the re-initialised queue. */
static void test_blk_batch(void)
{
    char path[64], opts[128];
    uint16_t heads[20];
    uint8_t sec[512];
    struct side s;
    struct dq q;
    unsigned n = 0;
    int fd;

    if (!make_disk(path, DISK_SECTORS)) {
        CHECK(!"cannot create a temporary disk image");
        return;
    }
    snprintf(opts, sizeof(opts), "%s,format=raw", path);
    if (!side_create(&s, "disk", opts))
        goto unlink;
    CHECK(drv_init(&s, &q, 1, 64, RING_FEATURES));
    for (unsigned i = 0; i < 16; i++) {
        heads[n++] = q.next_desc;
        /* Even slots overwrite sector 5 in turn; odd ones each write their own sector. */
        blk_write(&s, &q, i, i % 2 ? 20 + i : 5, (uint8_t)(0xa0 + i));
    }
    {
        gpa_t base = RAM_BASE + DATA + 16 * 0x400;
        struct seg sg[2] = {{base, 16, false}, {base + 0x300, 1, true}};

        *(struct blk_hdr *)gp(&s, base) = (struct blk_hdr){.type = 4 /* FLUSH */};
        *(uint8_t *)gp(&s, base + 0x300) = 0xff;
        heads[n++] = q.next_desc;
        drv_add(&s, &q, sg, 2);
    }
    heads[n++] = q.next_desc;
    blk_read(&s, &q, 17, 5);
    drv_kick(&s, &q);
    CHECK(wait_used(&s, &q, (uint16_t)n));
    for (unsigned i = 0; i < n; i++) {
        CHECK_EQ_U64(dq_used(&s, &q)->ring[i].id, heads[i]);
        CHECK_EQ_U64(blk_status(&s, i), 0);
    }
    CHECK_EQ_U64(dq_used(&s, &q)->ring[17].len, 513);
    /* The last even write (slot 14) is what the read and the image hold. */
    CHECK_EQ_U64(*(uint8_t *)gp(&s, RAM_BASE + DATA + 17 * 0x400 + 0x100), 0xa0 + 14);
    CHECK_EQ_U64(*(uint8_t *)gp(&s, RAM_BASE + DATA + 17 * 0x400 + 0x100 + 511), 0xa0 + 14);
    fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK_EQ_U64(pread(fd, sec, sizeof(sec), 5 * 512), sizeof(sec));
        CHECK_EQ_U64(sec[0], 0xa0 + 14);
        CHECK_EQ_U64(pread(fd, sec, sizeof(sec), 33 * 512), sizeof(sec));
        CHECK_EQ_U64(sec[511], 0xa0 + 13);
        close(fd);
    }

    /* One request in flight at a time, each kicked as soon as the previous one is used. */
    for (unsigned i = 0; i < 300; i++) {
        unsigned slot = i % 16, sector = i % DISK_SECTORS;

        blk_read(&s, &q, slot, sector);
        drv_kick(&s, &q);
        if (!spin_used(&s, &q, (uint16_t)(n + i + 1))) {
            CHECK(!"a request kicked on its own was not served");
            break;
        }
        /* Sectors the batch above rewrote hold other bytes. */
        if (sector != 5 && !(sector >= 21 && sector <= 35 && sector % 2) &&
            !blk_read_ok(&s, slot, sector)) {
            CHECK(!"a read returned the wrong sector");
            break;
        }
    }

    /* A reset right after a completion (the worker is likely polling), then the driver again. */
    CHECK(drv_init(&s, &q, 1, 64, RING_FEATURES));
    blk_read(&s, &q, 0, 3);
    drv_kick(&s, &q);
    CHECK(wait_used(&s, &q, 1));
    CHECK(blk_read_ok(&s, 0, 3));
    side_destroy(&s);
unlink:
    unlink(path);
}

/* --- balloon: pages released are dirty; stats buffer handed back; target held -------------- */

static void test_balloon(void)
{
    struct side src, dst;
    struct dq q[3];
    struct balloon_info info;
    struct sbuf a;
    gpa_t victim = RAM_BASE + DATA + 0x20000, pfns = RAM_BASE + DATA;
    struct seg list = {pfns, 4, false};
    struct seg stats = {RAM_BASE + DATA + 0x1000, 100, false};
    uint64_t end;

    if (!side_create(&src, "balloon", ""))
        return;
    CHECK(drv_init(&src, q, 3, 8, BIT(VIRTIO_F_VERSION_1) | BIT(1) /* STATS_VQ */));
    /* The driver posts its statistics; the device keeps the buffer. */
    memset(gp(&src, stats.addr), 0, stats.len);
    drv_add(&src, &q[2], &stats, 1);
    drv_kick(&src, &q[2]);
    end = time_now_ns() + 2000000000ull;
    do {
        usleep(1000);
        virtio_balloon_get_info(src.dev, &info);
    } while (!info.stats.updated_ns && time_now_ns() < end);
    CHECK(info.stats.updated_ns != 0);
    CHECK_EQ_U64(used_idx(&src, &q[2]), 0);

    /* Inflate one page: it reads as zero and is dirty. */
    memset(gp(&src, victim), 0x5a, PAGE);
    *(uint32_t *)gp(&src, pfns) = (uint32_t)(victim / PAGE);
    dirty_log_start(&src.ram.dirty);
    harvest(&src);
    drv_add(&src, &q[0], &list, 1);
    drv_kick(&src, &q[0]);
    CHECK(wait_used(&src, &q[0], 1));
    CHECK_EQ_U64(*(uint8_t *)gp(&src, victim), 0);
    harvest(&src);
    CHECK(page_dirty(victim));
    CHECK(page_dirty(q[0].used));

    virtio_balloon_set_target(src.dev, 64 * PAGE);
    CHECK_EQ_U64(cfg_rd32(&src, 0), 64);
    /* Quiesce hands the stats buffer back; a new target waits for resume. */
    virtio_mmio_quiesce(src.vd);
    CHECK_EQ_U64(used_idx(&src, &q[2]), 1);
    virtio_balloon_set_target(src.dev, 128 * PAGE);
    CHECK_EQ_U64(cfg_rd32(&src, 0), 64);
    save(&src, &a);
    if (side_clone(&dst, &src, "balloon", "")) {
        CHECK_EQ_U64(load(&dst, a.data, a.len, NULL), 0);
        CHECK_EQ_U64(cfg_rd32(&dst, 0), 64);
        CHECK_EQ_U64(rd(&dst, VIRTIO_MMIO_REG_STATUS), ST_LIVE);
        side_destroy(&dst);
    }
    virtio_mmio_resume(src.vd);
    CHECK_EQ_U64(cfg_rd32(&src, 0), 128);
    sbuf_free(&a);
    side_destroy(&src);
}

/* --- console: pending control messages cross the migration --------------------------------- */

struct con_msg {
    uint32_t id;
    uint16_t event, value;
};

static void test_console(void)
{
    struct side src, dst;
    struct dq q[6];
    struct sbuf a, b;
    gpa_t msg = RAM_BASE + DATA, rx = RAM_BASE + DATA + 0x1000;
    struct seg out = {msg, 8, false};

    if (!side_create(&src, "console", ""))
        return;
    CHECK(drv_init(&src, q, 6, 16, BIT(VIRTIO_F_VERSION_1) | BIT(1) /* MULTIPORT */));
    /* DEVICE_READY with no control receive buffer posted: DEVICE_ADD x2 wait in the device. */
    *(struct con_msg *)gp(&src, msg) = (struct con_msg){0, 0 /* DEVICE_READY */, 1};
    drv_add(&src, &q[3], &out, 1);
    drv_kick(&src, &q[3]);
    CHECK(wait_used(&src, &q[3], 1));
    virtio_mmio_quiesce(src.vd);
    save(&src, &a);
    if (side_clone(&dst, &src, "console", "")) {
        virtio_mmio_quiesce(dst.vd);
        CHECK_EQ_U64(load(&dst, a.data, a.len, NULL), 0);
        save(&dst, &b);
        CHECK(same_bytes(&a, &b));
        sbuf_free(&b);
        virtio_mmio_resume(dst.vd);
        for (unsigned i = 0; i < 2; i++) {
            struct seg in = {rx + i * 64, 64, true};

            drv_add(&dst, &q[2], &in, 1);
        }
        drv_kick(&dst, &q[2]);
        CHECK(wait_used(&dst, &q[2], 2));
        for (unsigned i = 0; i < 2; i++) {
            const struct con_msg *m = gp(&dst, rx + i * 64);

            CHECK_EQ_U64(m->id, i);
            CHECK_EQ_U64(m->event, 1); /* DEVICE_ADD */
        }
        side_destroy(&dst);
    }
    virtio_mmio_resume(src.vd);
    sbuf_free(&a);
    side_destroy(&src);
}

/* --- net: the announce after a load ------------------------------------------------------- */

/* Reads what the far end of a datagram socket receives, until `want` frames came or `ms`
 * passed: the frames' count, each checked to be a RARP announce of mac. */
static unsigned rarp_count(int fd, const uint8_t mac[6], unsigned want, int ms)
{
    static const uint8_t head[] = {0x80, 0x35, 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x03};
    uint64_t end = time_now_ns() + (uint64_t)ms * 1000000u;
    unsigned got = 0;
    uint8_t f[2048];

    while (got < want && time_now_ns() < end) {
        ssize_t n = recv(fd, f, sizeof(f), MSG_DONTWAIT);

        if (n < 0) {
            nanosleep(&(struct timespec){0, 5000000}, NULL);
            continue;
        }
        CHECK_EQ_U64(n, 60);
        CHECK(memcmp(f, "\xff\xff\xff\xff\xff\xff", 6) == 0);
        CHECK(memcmp(f + 6, mac, 6) == 0);
        CHECK(memcmp(f + 12, head, sizeof(head)) == 0);
        CHECK(memcmp(f + 22, mac, 6) == 0);
        CHECK(memcmp(f + 32, mac, 6) == 0);
        got++;
    }
    return got;
}

/* A NIC whose state was loaded (an incoming migration, a restore) announces its MAC on its
 * backend five times (QEMU's announce-self: RARP, ethertype 0x8035), unasked; the source NIC,
 * only saved, sends nothing. The migrated state's MAC is the one announced, not the target's
 * option. */
static void test_net_announce(void)
{
    static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc};
    int a[2], b[2];
    char opts[128];
    struct side src, dst;
    struct sbuf st;

    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, a) || socketpair(AF_UNIX, SOCK_DGRAM, 0, b)) {
        CHECK(!"socketpair failed");
        return;
    }
    snprintf(opts, sizeof(opts), "socket,fd=%d,mac=52:54:00:aa:bb:cc", a[0]);
    if (!side_create(&src, "net", opts))
        return;
    save(&src, &st);
    snprintf(opts, sizeof(opts), "socket,fd=%d,mac=52:54:00:11:22:33", b[0]);
    if (side_clone(&dst, &src, "net", opts)) {
        CHECK_EQ_U64(load(&dst, st.data, st.len, NULL), 0);
        /* 50 + 150 + 250 + 350 + 450 ms: all five within 1.25 s (a bound far past it, for a
         * loaded machine), then no more. */
        CHECK_EQ_U64(rarp_count(b[1], mac, 5, 20000), 5);
        CHECK_EQ_U64(rarp_count(b[1], mac, 1, 700), 0);
        side_destroy(&dst);
    }
    CHECK_EQ_U64(rarp_count(a[1], mac, 1, 100), 0);
    sbuf_free(&st);
    side_destroy(&src);
    close(a[1]);
    close(b[1]);
}

/* ETHTOOL_GTSO on interface `name`: 1 when TCP segmentation offload is on, 0 when off, -1
 * when it cannot be read. On a tap it follows TUNSETOFFLOAD. */
static int tap_tso(const char *name)
{
    struct ethtool_value ev = {.cmd = ETHTOOL_GTSO};
    struct ifreq ifr = {0};
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = -1;

    if (s < 0)
        return -1;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    ifr.ifr_data = (void *)&ev;
    if (ioctl(s, SIOCETHTOOL, &ifr) == 0)
        r = ev.data != 0;
    close(s);
    return r;
}

/* Offload across a save and a load: a driver that takes checksum and TSO offload on a tap
 * turns the tap's TSO on (TUNSETOFFLOAD), a reset turns it off; a new process's NIC on the
 * same tap starts with it off and turns it on when it loads the state; a NIC on a backend
 * that carries no offload (socket) refuses the state, naming the features. Needs root,
 * /dev/net/tun and ip(8) for the tap. */
static void test_net_offload_restore(void)
{
    const uint64_t offload = BIT(0) | BIT(1) | BIT(7) | BIT(11); /* CSUM GUEST_CSUM TSO4s */
    char name[IFNAMSIZ], cmd[96], opts[64], err[STATE_ERR_LEN];
    struct side src, dst;
    struct dq q[2];
    struct sbuf st;
    int sp[2];

    snprintf(name, sizeof(name), "tsrso%u", (unsigned)getpid() % 100000);
    snprintf(cmd, sizeof(cmd), "ip tuntap add dev %s mode tap >/dev/null 2>&1", name);
    if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK) != 0 || system(cmd) != 0) {
        printf("state_virtio: net offload restore skipped (needs root, /dev/net/tun, ip)\n");
        return;
    }
    snprintf(opts, sizeof(opts), "tap,ifname=%s", name);
    if (!side_create(&src, "net", opts))
        goto out_tap;
    CHECK_EQ_U64(tap_tso(name), 0);
    CHECK(drv_init(&src, q, 2, 8, BIT(VIRTIO_F_VERSION_1) | offload));
    CHECK_EQ_U64(tap_tso(name), 1);
    virtio_mmio_quiesce(src.vd);
    save(&src, &st);
    wr(&src, VIRTIO_MMIO_REG_STATUS, 0);
    CHECK_EQ_U64(tap_tso(name), 0);
    side_destroy(&src);

    if (side_create(&dst, "net", opts)) {
        CHECK_EQ_U64(tap_tso(name), 0);
        CHECK_EQ_U64(load(&dst, st.data, st.len, NULL), 0);
        CHECK_EQ_U64(tap_tso(name), 1);
        side_destroy(&dst);
    }
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sp) == 0) {
        snprintf(opts, sizeof(opts), "socket,fd=%d", sp[0]);
        if (side_create(&dst, "net", opts)) {
            CHECK_EQ_U64(load(&dst, st.data, st.len, err), (uint64_t)-1);
            CHECK(strstr(err, "does not offer") != NULL || !fprintf(stderr, "got: %s\n", err));
            side_destroy(&dst);
        }
        close(sp[1]);
    }
    sbuf_free(&st);
out_tap:
    snprintf(cmd, sizeof(cmd), "ip link del dev %s >/dev/null 2>&1", name);
    CHECK(system(cmd) == 0);
}

/* --- refusals ------------------------------------------------------------------------------- */

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Loads a copy of `good` with n bytes at off replaced by v; expects a refusal naming `word`. */
static void refuse(struct side *t, const struct sbuf *good, size_t off, uint64_t v, unsigned n,
                   const char *word)
{
    uint8_t *bad = malloc(good->len);
    char err[STATE_ERR_LEN];

    if (!bad)
        return;
    memcpy(bad, good->data, good->len);
    put_le(bad + off, v, n);
    CHECK_EQ_U64(load(t, bad, good->len, err), (uint64_t)-1);
    if (!strstr(err, word)) {
        fprintf(stderr, "expected '%s' in: %s\n", word, err);
        CHECK(!"refusal does not name the problem");
    }
    CHECK_EQ_U64(rd(t, VIRTIO_MMIO_REG_STATUS), 0); /* left in reset state */
    free(bad);
}

static void test_refusals(void)
{
    struct side src, t;
    struct dq q;
    struct sbuf a;
    char err[STATE_ERR_LEN];
    const size_t q0 = OFF_QUEUE0;
    uint8_t *buf;

    if (!side_create(&src, "rng", ""))
        return;
    CHECK(drv_init(&src, &q, 1, 8, RING_FEATURES));
    rng_request(&src, &q, 0);
    drv_kick(&src, &q);
    virtio_mmio_quiesce(src.vd);
    save(&src, &a);
    if (!side_clone(&t, &src, "rng", ""))
        goto out;
    CHECK_EQ_U64(load(&t, a.data, a.len, err), 0);

    /* Every truncation. */
    for (size_t len = 0; len < a.len; len++) {
        CHECK_EQ_U64(load(&t, a.data, len, err), (uint64_t)-1);
        CHECK(err[0] != 0);
    }
    CHECK(strstr(err, "truncated") != NULL);
    /* A trailing byte. */
    buf = malloc(a.len + 1);
    if (buf) {
        memcpy(buf, a.data, a.len);
        buf[a.len] = 0;
        CHECK_EQ_U64(load(&t, buf, a.len + 1, err), (uint64_t)-1);
        CHECK(strstr(err, "unexpected bytes") != NULL);
        free(buf);
    }
    /* A version this build does not know. */
    {
        struct scur c;

        scur_init(&c, a.data, a.len, "v");
        CHECK_EQ_U64(virtio_mmio_load(t.vd, &c, 2), (uint64_t)-1);
        CHECK(strstr(c.err, "version 2") != NULL);
    }

    refuse(&t, &a, OFF_DEVICE_ID, VIRTIO_ID_BLOCK, 4, "id 2");
    refuse(&t, &a, OFF_NUM_QUEUES, 2, 4, "2 queues");
    refuse(&t, &a, OFF_STATUS, ST_LIVE | 0x20, 4, "status");
    refuse(&t, &a, OFF_STATUS, ST_ACK | ST_DRV | ST_DOK, 4, "DRIVER_OK without FEATURES_OK");
    refuse(&t, &a, OFF_ACTIVATED, 2, 1, "activated");
    refuse(&t, &a, OFF_DRV_FEAT, RING_FEATURES | BIT(3), 8, "differ");
    {
        /* Both copies of the features changed, to one the device never offered. */
        uint8_t *bad = malloc(a.len);

        if (bad) {
            memcpy(bad, a.data, a.len);
            put_le(bad + OFF_DRV_FEAT, RING_FEATURES | BIT(3), 8);
            put_le(bad + OFF_NEGOTIATED, RING_FEATURES | BIT(3), 8);
            CHECK_EQ_U64(load(&t, bad, a.len, err), (uint64_t)-1);
            CHECK(strstr(err, "does not offer") != NULL);
            put_le(bad + OFF_DRV_FEAT, BIT(VIRTIO_F_RING_EVENT_IDX), 8);
            put_le(bad + OFF_NEGOTIATED, BIT(VIRTIO_F_RING_EVENT_IDX), 8);
            CHECK_EQ_U64(load(&t, bad, a.len, err), (uint64_t)-1);
            CHECK(strstr(err, "VERSION_1") != NULL);
            free(bad);
        }
    }
    refuse(&t, &a, OFF_ISR, 4, 4, "InterruptStatus");
    refuse(&t, &a, q0 + QOFF_NUM, 6, 4, "power of two");
    refuse(&t, &a, q0 + QOFF_NUM, 512, 4, "QueueNumMax");
    refuse(&t, &a, q0 + QOFF_DESC, RAM_BASE + RAM_SIZE, 8, "inside guest RAM");
    refuse(&t, &a, q0 + QOFF_DESC, RAM_BASE - 0x1000, 8, "inside guest RAM");
    refuse(&t, &a, q0 + QOFF_DESC, RAM_BASE + RINGS + 8, 8, "misaligned");
    refuse(&t, &a, q0 + QOFF_DESC, UINT64_MAX - 15, 8, "inside guest RAM");
    refuse(&t, &a, q0 + QOFF_READY, 7, 1, "ready");
    refuse(&t, &a, q0 + QOFF_LAST_AVAIL, 5, 2, "in flight");
    refuse(&t, &a, q0 + QUEUE_BYTES, 1, 4, "has none");

    /* Any single flipped bit: loaded or refused, never a crash (ASan watches). */
    buf = malloc(a.len);
    if (buf) {
        unsigned refused = 0;

        for (size_t i = 0; i < a.len; i++) {
            for (unsigned bit = 0; bit < 8; bit++) {
                memcpy(buf, a.data, a.len);
                buf[i] ^= (uint8_t)(1u << bit);
                memcpy(t.ram.host, src.ram.host, RAM_SIZE);
                if (load(&t, buf, a.len, err) != 0) {
                    refused++;
                    CHECK(err[0] != 0);
                }
            }
        }
        CHECK(refused > a.len * 4);
        free(buf);
    }
    side_destroy(&t);
out:
    sbuf_free(&a);
    side_destroy(&src);
}

int main(void)
{
    log_set_level(LOG_ERROR); /* refusals and guest errors log on purpose */
    if (loop_create(&loop) || loop_start(loop)) {
        CHECK(!"cannot start an event loop");
        return test_finish("test_state_virtio");
    }
    test_rng_roundtrip();
    test_transport_fallback();
    test_dirty_log();
    test_blk_roundtrip();
    test_blk_batch();
    test_balloon();
    test_console();
    test_net_announce();
    test_net_offload_restore();
    test_refusals();
    loop_destroy(loop);
    return test_finish("test_state_virtio");
}
