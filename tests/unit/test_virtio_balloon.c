/* virtio-balloon's free page reporting (virtio 1.2 §5.5.6.7), driven through the virtio-mmio
 * registers as a driver would, with the rings in guest RAM: reported ranges are released and
 * read as zero, counted, and marked dirty for migration; the reporting queue is found under
 * both numberings (Linux's and QEMU's compact one, the spec's 4); a hostile driver's ranges
 * (outside RAM, wrapping, unaligned, device-readable, not negotiated) are refused and never
 * touch anything else; the option turns the feature off; and the negotiated feature survives a
 * save and load, while a state saved before the device had the queue still loads. */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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
#define DATA     0x40000u /* reported blocks from here */

#define BIT(n)      (UINT64_C(1) << (n))
#define F_STATS     1
#define F_REPORTING 5
#define ST_LIVE                                                                     \
    (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK | \
     VIRTIO_STATUS_DRIVER_OK)
#define NQ 5

/* A version-1 transport section: its queue count, and where the first queue record starts
 * and how long each is (virtio_mmio.h). */
#define OFF_NUM_QUEUES 4
#define OFF_QUEUE0     51
#define QUEUE_BYTES    38

static struct loop *loop;

static void fake_irq_set(void *opaque, unsigned n, bool level)
{
    (void)n;
    atomic_store((atomic_bool *)opaque, level);
}

struct side {
    struct guest_ram ram;
    const struct vdev_type *type;
    const struct virtio_device_ops *ops;
    void *dev;
    struct virtio_dev *vd;
    atomic_bool irq;
};

static bool side_create(struct side *s, const char *opts)
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
    s->type = vdev_type_find("balloon");
    if (!s->type || s->type->create(&env, opts, &s->dev, &s->ops, err)) {
        fprintf(stderr, "create balloon,%s: %s\n", opts, err);
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

/* --- the driver ---------------------------------------------------------------------------- */

struct dq {
    unsigned index;
    uint16_t num;
    gpa_t desc, avail, used;
    uint16_t avail_idx, next_desc;
};

static uint64_t offered(const struct side *s)
{
    uint64_t f;

    wr(s, VIRTIO_MMIO_REG_DEVICE_FEATURES_SEL, 1);
    f = (uint64_t)rd(s, VIRTIO_MMIO_REG_DEVICE_FEATURES) << 32;
    wr(s, VIRTIO_MMIO_REG_DEVICE_FEATURES_SEL, 0);
    return f | rd(s, VIRTIO_MMIO_REG_DEVICE_FEATURES);
}

/* §3.1.1: accepts offered & want and sets up queues 0..nq-1 (8 entries each). */
static bool drv_init(struct side *s, struct dq *qs, unsigned nq, uint64_t want)
{
    want &= offered(s);
    wr(s, VIRTIO_MMIO_REG_STATUS, 0);
    wr(s, VIRTIO_MMIO_REG_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    wr(s, VIRTIO_MMIO_REG_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    wr(s, VIRTIO_MMIO_REG_DRIVER_FEATURES_SEL, 0);
    wr(s, VIRTIO_MMIO_REG_DRIVER_FEATURES, (uint32_t)want);
    wr(s, VIRTIO_MMIO_REG_DRIVER_FEATURES_SEL, 1);
    wr(s, VIRTIO_MMIO_REG_DRIVER_FEATURES, (uint32_t)(want >> 32));
    wr(s, VIRTIO_MMIO_REG_STATUS,
       VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    for (unsigned q = 0; q < nq; q++) {
        gpa_t base = RAM_BASE + RINGS + q * 0x4000;

        qs[q] = (struct dq){
            .index = q, .num = 8, .desc = base, .avail = base + 0x1000, .used = base + 0x2000};
        memset(gp(s, base), 0, 0x4000);
        wr(s, VIRTIO_MMIO_REG_QUEUE_SEL, q);
        wr(s, VIRTIO_MMIO_REG_QUEUE_NUM, 8);
        wr(s, VIRTIO_MMIO_REG_QUEUE_DESC_LOW, (uint32_t)qs[q].desc);
        wr(s, VIRTIO_MMIO_REG_QUEUE_DESC_HIGH, (uint32_t)(qs[q].desc >> 32));
        wr(s, VIRTIO_MMIO_REG_QUEUE_DRIVER_LOW, (uint32_t)qs[q].avail);
        wr(s, VIRTIO_MMIO_REG_QUEUE_DRIVER_HIGH, (uint32_t)(qs[q].avail >> 32));
        wr(s, VIRTIO_MMIO_REG_QUEUE_DEVICE_LOW, (uint32_t)qs[q].used);
        wr(s, VIRTIO_MMIO_REG_QUEUE_DEVICE_HIGH, (uint32_t)(qs[q].used >> 32));
        wr(s, VIRTIO_MMIO_REG_QUEUE_READY, 1);
    }
    wr(s, VIRTIO_MMIO_REG_STATUS, ST_LIVE);
    return rd(s, VIRTIO_MMIO_REG_STATUS) == ST_LIVE;
}

struct seg {
    gpa_t addr;
    uint32_t len;
    bool write;
};

/* Makes a chain of direct descriptors available and kicks. */
static void drv_post(struct side *s, struct dq *q, const struct seg *sg, unsigned n)
{
    struct virtq_desc *d = gp(s, q->desc);
    struct virtq_avail *av = gp(s, q->avail);
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
    av->ring[q->avail_idx % q->num] = head;
    q->avail_idx++;
    __atomic_store_n(&av->idx, q->avail_idx, __ATOMIC_RELEASE);
    wr(s, VIRTIO_MMIO_REG_QUEUE_NOTIFY, q->index);
}

static uint16_t used_idx(const struct side *s, const struct dq *q)
{
    return __atomic_load_n(&((struct virtq_used *)gp(s, q->used))->idx, __ATOMIC_ACQUIRE);
}

/* The device serves queues on the event loop: waits up to two seconds for used->idx. */
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

/* Waits up to two seconds for DEVICE_NEEDS_RESET. The status is read without rd()'s check:
 * one check per poll made the suite's count of checks depend on how soon the loop ran. */
static bool wait_needs_reset(const struct side *s)
{
    uint64_t end = time_now_ns() + 2000000000ull;
    uint64_t status = 0;

    for (;;) {
        if (virtio_mmio_ops.read(s->vd, VIRTIO_MMIO_REG_STATUS, 4, &status) != 0)
            return false;
        if (status & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
            return true;
        if (time_now_ns() > end)
            return false;
        usleep(1000);
    }
}

static uint64_t reported(const struct side *s)
{
    struct balloon_info info;

    virtio_balloon_get_info(s->dev, &info);
    return info.reported_bytes;
}

/* Fills [addr, addr + len) with a pattern the guest could have left there. */
static void fill(struct side *s, gpa_t addr, size_t len)
{
    memset(gp(s, addr), 0x5a, len);
}

static bool all_bytes(const struct side *s, gpa_t addr, size_t len, uint8_t v)
{
    const uint8_t *p = gp(s, addr);

    for (size_t i = 0; i < len; i++) {
        if (p[i] != v)
            return false;
    }
    return true;
}

/* --- tests --------------------------------------------------------------------------------- */

/* Offered by default, not with free_page_reporting=off; a bad value is refused by name. */
static void test_option(void)
{
    struct side s;
    struct balloon_info info;
    struct vdev_env env = {.loop = loop};
    const struct vdev_type *t = vdev_type_find("balloon");
    const struct virtio_device_ops *ops;
    char err[VDEV_ERR_LEN] = "";
    void *dev;

    if (side_create(&s, "")) {
        CHECK(offered(&s) & BIT(F_REPORTING));
        virtio_balloon_get_info(s.dev, &info);
        CHECK(info.free_page_reporting);
        side_destroy(&s);
    }
    if (side_create(&s, "free_page_reporting=off")) {
        CHECK(!(offered(&s) & BIT(F_REPORTING)));
        CHECK(offered(&s) & BIT(F_STATS));
        virtio_balloon_get_info(s.dev, &info);
        CHECK(!info.free_page_reporting);
        side_destroy(&s);
    }
    CHECK(t && t->create(&env, "free_page_reporting=maybe", &dev, &ops, err) == -EINVAL);
    CHECK(strstr(err, "free_page_reporting") && strstr(err, "expected on or off"));
}

/* A reported range reads as zero, is counted and dirty; the queue is 3 (compact numbering,
 * stats negotiated), and 4 (the spec's) works too. */
static void test_report_compact_and_spec(void)
{
    static uint64_t bits[RAM_SIZE / PAGE / 64];
    struct side s;
    struct dq q[NQ];
    gpa_t a = RAM_BASE + DATA, b = RAM_BASE + DATA + 0x10000;
    struct seg two[2] = {{a, 0x4000, true}, {a + 0x8000, 0x2000, true}};
    struct seg one = {b, 0x8000, true};

    if (!side_create(&s, ""))
        return;
    CHECK(drv_init(&s, q, NQ, BIT(VIRTIO_F_VERSION_1) | BIT(F_STATS) | BIT(F_REPORTING)));
    fill(&s, a, 0x20000);
    dirty_log_start(&s.ram.dirty);
    dirty_log_harvest(&s.ram.dirty, bits);
    drv_post(&s, &q[3], two, 2);
    CHECK(wait_used(&s, &q[3], 1));
    CHECK(all_bytes(&s, a, 0x4000, 0));
    CHECK(all_bytes(&s, a + 0x4000, 0x4000, 0x5a)); /* the gap between the two */
    CHECK(all_bytes(&s, a + 0x8000, 0x2000, 0));
    CHECK(all_bytes(&s, a + 0xa000, 0x6000, 0x5a));
    CHECK_EQ_U64(reported(&s), 0x6000);
    dirty_log_harvest(&s.ram.dirty, bits);
    for (gpa_t p = a; p < a + 0xa000; p += PAGE) {
        uint64_t n = (p - RAM_BASE) / PAGE;

        CHECK(!!(bits[n / 64] & BIT(n % 64)) == (p < a + 0x4000 || p >= a + 0x8000));
    }
    dirty_log_stop(&s.ram.dirty);

    drv_post(&s, &q[4], &one, 1);
    CHECK(wait_used(&s, &q[4], 1));
    CHECK(all_bytes(&s, b, 0x8000, 0));
    CHECK_EQ_U64(reported(&s), 0xe000);
    CHECK_EQ_U64(rd(&s, VIRTIO_MMIO_REG_STATUS), ST_LIVE);
    side_destroy(&s);
}

/* Without the stats queue the compact number is 2; and without REPORTING negotiated nothing
 * posted on a reporting number is released. */
static void test_report_numbering_and_negotiation(void)
{
    struct side s;
    struct dq q[NQ];
    gpa_t a = RAM_BASE + DATA;
    struct seg one = {a, 0x2000, true};

    if (!side_create(&s, ""))
        return;
    CHECK(drv_init(&s, q, 3, BIT(VIRTIO_F_VERSION_1) | BIT(F_REPORTING)));
    fill(&s, a, 0x2000);
    drv_post(&s, &q[2], &one, 1);
    CHECK(wait_used(&s, &q[2], 1));
    CHECK(all_bytes(&s, a, 0x2000, 0));
    CHECK_EQ_U64(reported(&s), 0x2000);

    /* Stats, no reporting: queue 3 and 4 are nobody's; a buffer there stays untouched. */
    CHECK(drv_init(&s, q, NQ, BIT(VIRTIO_F_VERSION_1) | BIT(F_STATS)));
    fill(&s, a, 0x2000);
    drv_post(&s, &q[3], &one, 1);
    drv_post(&s, &q[4], &one, 1);
    usleep(50000);
    CHECK_EQ_U64(used_idx(&s, &q[3]), 0);
    CHECK_EQ_U64(used_idx(&s, &q[4]), 0);
    CHECK(all_bytes(&s, a, 0x2000, 0x5a));
    CHECK_EQ_U64(reported(&s), 0x2000);
    side_destroy(&s);
}

/* Unaligned start or length, device-readable parts and empty parts are kept as they are and
 * handed back; the device goes on serving the queue. */
static void test_report_refusals(void)
{
    struct side s;
    struct dq q[NQ];
    gpa_t a = RAM_BASE + DATA;
    struct seg bad[4] = {
        {a + 0x800, 0x1000, true},   /* start inside a page */
        {a + 0x2000, 0x1800, true},  /* length not whole pages */
        {a + 0x4000, 0x1000, false}, /* device-readable: not a report */
        {a + 0x6000, 0, true},       /* empty */
    };
    struct seg good = {a + 0x8000, 0x1000, true};

    if (!side_create(&s, ""))
        return;
    CHECK(drv_init(&s, q, NQ, BIT(VIRTIO_F_VERSION_1) | BIT(F_STATS) | BIT(F_REPORTING)));
    fill(&s, a, 0x9000);
    /* The readable part goes first: a chain lists readable buffers before writable ones. */
    drv_post(&s, &q[3], (struct seg[]){bad[2], bad[0], bad[1], bad[3]}, 4);
    CHECK(wait_used(&s, &q[3], 1));
    CHECK(all_bytes(&s, a, 0x8000, 0x5a));
    CHECK_EQ_U64(reported(&s), 0);
    drv_post(&s, &q[3], &good, 1);
    CHECK(wait_used(&s, &q[3], 2));
    CHECK(all_bytes(&s, a + 0x8000, 0x1000, 0));
    CHECK_EQ_U64(reported(&s), 0x1000);
    CHECK_EQ_U64(rd(&s, VIRTIO_MMIO_REG_STATUS), ST_LIVE);
    side_destroy(&s);
}

/* A range past the end of RAM, one that wraps around the address space and one before RAM
 * break the queue (DEVICE_NEEDS_RESET): nothing is released, the host does not fault, and
 * RAM around them keeps its bytes. */
static void test_report_outside_ram(void)
{
    static const struct seg hostile[] = {
        {RAM_BASE + RAM_SIZE - PAGE, 2 * PAGE, true},
        {UINT64_C(0xfffffffffffff000), 2 * PAGE, true},
        {RAM_BASE - PAGE, 2 * PAGE, true},
        {RAM_BASE + DATA, UINT32_MAX & ~(PAGE - 1), true},
    };

    for (unsigned i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        struct side s;
        struct dq q[NQ];

        if (!side_create(&s, ""))
            return;
        CHECK(drv_init(&s, q, NQ, BIT(VIRTIO_F_VERSION_1) | BIT(F_STATS) | BIT(F_REPORTING)));
        fill(&s, RAM_BASE + DATA, RAM_SIZE - DATA);
        drv_post(&s, &q[3], &hostile[i], 1);
        CHECK(wait_needs_reset(&s));
        CHECK_EQ_U64(used_idx(&s, &q[3]), 0);
        CHECK_EQ_U64(reported(&s), 0);
        CHECK(all_bytes(&s, RAM_BASE + DATA, RAM_SIZE - DATA, 0x5a));
        side_destroy(&s);
    }
}

/* A chain of many blocks (the driver sends up to 32; the queue holds 8 here, so indirect is
 * not needed to reach the queue's limit) is released whole. */
static void test_report_many(void)
{
    struct side s;
    struct dq q[NQ];
    struct seg sg[8];
    gpa_t a = RAM_BASE + DATA;

    if (!side_create(&s, ""))
        return;
    CHECK(drv_init(&s, q, NQ, BIT(VIRTIO_F_VERSION_1) | BIT(F_STATS) | BIT(F_REPORTING)));
    fill(&s, a, 8 * 0x10000);
    for (unsigned i = 0; i < 8; i++)
        sg[i] = (struct seg){a + i * 0x10000, 0x8000, true};
    drv_post(&s, &q[3], sg, 8);
    CHECK(wait_used(&s, &q[3], 1));
    for (unsigned i = 0; i < 8; i++) {
        CHECK(all_bytes(&s, a + i * 0x10000, 0x8000, 0));
        CHECK(all_bytes(&s, a + i * 0x10000 + 0x8000, 0x8000, 0x5a));
    }
    CHECK_EQ_U64(reported(&s), 8 * 0x8000);
    side_destroy(&s);
}

/* The negotiated feature survives a save and load: the loaded device serves the reporting
 * queue at once. A state saved before the device had five queues (three) still loads; fewer
 * than that is refused. */
static void test_report_state(void)
{
    struct side src, dst;
    struct dq q[NQ];
    struct sbuf a;
    gpa_t blk = RAM_BASE + DATA;
    struct seg one = {blk, 0x2000, true};
    struct scur c;

    if (!side_create(&src, ""))
        return;
    CHECK(drv_init(&src, q, 4, BIT(VIRTIO_F_VERSION_1) | BIT(F_STATS) | BIT(F_REPORTING)));
    virtio_mmio_quiesce(src.vd);
    sbuf_init(&a);
    virtio_mmio_save(src.vd, &a);
    CHECK(!a.oom);
    if (side_create(&dst, "")) {
        memcpy(dst.ram.host, src.ram.host, RAM_SIZE);
        scur_init(&c, a.data, a.len, "balloon");
        CHECK_EQ_U64(virtio_mmio_load(dst.vd, &c, VIRTIO_MMIO_STATE_VERSION), 0);
        CHECK_EQ_U64(rd(&dst, VIRTIO_MMIO_REG_STATUS), ST_LIVE);
        fill(&dst, blk, 0x2000);
        drv_post(&dst, &q[3], &one, 1);
        CHECK(wait_used(&dst, &q[3], 1));
        CHECK(all_bytes(&dst, blk, 0x2000, 0));
        CHECK_EQ_U64(reported(&dst), 0x2000);
        side_destroy(&dst);
    }
    virtio_mmio_resume(src.vd);
    side_destroy(&src);
    sbuf_free(&a);

    /* An older device's state: three queues, no reporting negotiated. */
    if (!side_create(&src, ""))
        return;
    CHECK(drv_init(&src, q, 3, BIT(VIRTIO_F_VERSION_1) | BIT(F_STATS)));
    virtio_mmio_quiesce(src.vd);
    sbuf_init(&a);
    virtio_mmio_save(src.vd, &a);
    CHECK(!a.oom && a.len > OFF_QUEUE0 + 5 * QUEUE_BYTES);
    if (!a.oom && a.len > OFF_QUEUE0 + 5 * QUEUE_BYTES) {
        uint8_t *old = malloc(a.len);
        size_t tail = a.len - (OFF_QUEUE0 + 5 * QUEUE_BYTES), len = a.len - 2 * QUEUE_BYTES;
        uint32_t n = 3;

        /* Queues 3 and 4 were not ready: dropping their records is what the old layout was. */
        memcpy(old, a.data, OFF_QUEUE0 + 3 * QUEUE_BYTES);
        memcpy(old + OFF_QUEUE0 + 3 * QUEUE_BYTES, a.data + OFF_QUEUE0 + 5 * QUEUE_BYTES, tail);
        memcpy(old + OFF_NUM_QUEUES, &n, 4);
        if (side_create(&dst, "")) {
            scur_init(&c, old, len, "balloon");
            CHECK_EQ_U64(virtio_mmio_load(dst.vd, &c, VIRTIO_MMIO_STATE_VERSION), 0);
            CHECK_EQ_U64(rd(&dst, VIRTIO_MMIO_REG_STATUS), ST_LIVE);
            wr(&dst, VIRTIO_MMIO_REG_QUEUE_SEL, 3);
            CHECK_EQ_U64(rd(&dst, VIRTIO_MMIO_REG_QUEUE_READY), 0);

            /* Two queues: older than any balloon, refused by name. */
            n = 2;
            memcpy(old + OFF_NUM_QUEUES, &n, 4);
            scur_init(&c, old, len - QUEUE_BYTES, "balloon");
            CHECK(virtio_mmio_load(dst.vd, &c, VIRTIO_MMIO_STATE_VERSION) != 0);
            CHECK(strstr(c.err, "saved device has 2 queues") != NULL);
            side_destroy(&dst);
        }
        free(old);
    }
    virtio_mmio_resume(src.vd);
    side_destroy(&src);
    sbuf_free(&a);
}

int main(void)
{
    log_set_level(LOG_ERROR); /* refusals and guest errors log on purpose */
    if (loop_create(&loop) || loop_start(loop)) {
        CHECK(!"cannot start an event loop");
        return test_finish("test_virtio_balloon");
    }
    test_option();
    test_report_compact_and_spec();
    test_report_numbering_and_negotiation();
    test_report_refusals();
    test_report_outside_ram();
    test_report_many();
    test_report_state();
    loop_destroy(loop);
    return test_finish("test_virtio_balloon");
}
