/* The virtio-mmio transport driven exactly as a Linux driver drives it, through
 * virtio_mmio_ops.read/write with 32-bit register accesses and rings in guest RAM, against a fake
 * "echo" device that copies each chain's readable bytes into its writable buffers. A fake
 * interrupt line records its level.
 *
 * Guest RAM is an mmap with PROT_NONE guard pages on both sides: an access outside it faults. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/log.h"
#include "hw/virtio/virtio_mmio.h"
#include "hw/virtio/virtqueue.h"
#include "test.h"

#define PAGE     4096u
#define RAM_BASE UINT64_C(0x80000000)
#define RAM_SIZE (1u << 20)
#define DATA_OFF 0x40000u
#define IND_OFF  0x30000u

#define BIT(n) (UINT64_C(1) << (n))

#define ST_ACK    VIRTIO_STATUS_ACKNOWLEDGE
#define ST_DRV    VIRTIO_STATUS_DRIVER
#define ST_FOK    VIRTIO_STATUS_FEATURES_OK
#define ST_DOK    VIRTIO_STATUS_DRIVER_OK
#define ST_NRESET VIRTIO_STATUS_DEVICE_NEEDS_RESET

static struct guest_ram ram;

static int ram_create(struct guest_ram *r, gpa_t base, uint64_t size)
{
    uint8_t *p = mmap(NULL, size + 2 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED)
        return -errno;
    if (mprotect(p + PAGE, size, PROT_READ | PROT_WRITE) != 0) {
        munmap(p, size + 2 * PAGE);
        return -errno;
    }
    r->base = base;
    r->size = size;
    r->host = p + PAGE;
    return 0;
}

static void *gp(gpa_t a)
{
    return ram.host + (a - ram.base);
}

/* --- the fake interrupt line ------------------------------------------------------------ */

struct fake_irq {
    atomic_bool level;
    atomic_uint rises;
};

static struct fake_irq irq_state;

static void fake_irq_set(void *opaque, unsigned n, bool level)
{
    struct fake_irq *f = opaque;

    (void)n;
    if (level && !atomic_load(&f->level))
        atomic_fetch_add(&f->rises, 1);
    atomic_store(&f->level, level);
}

/* --- the echo device --------------------------------------------------------------------- */

#define ECHO_CONFIG_SIZE 24

struct echo {
    struct virtio_dev *vdev;
    uint64_t offer;
    uint64_t features;
    unsigned activations, resets, kicks, held, served;
    int activate_rc;
    bool hold; /* pop but never push, to leave requests in flight */
    int last_pop_rc;
    uint8_t config[ECHO_CONFIG_SIZE];
    uint8_t written[ECHO_CONFIG_SIZE];
    uint32_t last_write_off, last_write_len;
};

static struct echo echo;
static struct virtq_req echo_req; /* big: keep it off the stack */

static uint64_t echo_features(void *dev)
{
    return ((struct echo *)dev)->offer;
}

static void echo_config_read(void *dev, uint32_t off, void *buf, uint32_t len)
{
    memcpy(buf, ((struct echo *)dev)->config + off, len);
}

static void echo_config_write(void *dev, uint32_t off, const void *buf, uint32_t len)
{
    struct echo *e = dev;

    memcpy(e->written + off, buf, len);
    e->last_write_off = off;
    e->last_write_len = len;
}

static int echo_activate(void *dev, uint64_t features)
{
    struct echo *e = dev;

    e->activations++;
    e->features = features;
    return e->activate_rc;
}

static void echo_serve(struct echo *e, unsigned q)
{
    struct virtq *vq = virtio_get_queue(e->vdev, q);
    static uint8_t buf[65536];
    int rc;

    while ((rc = virtq_pop(vq, &echo_req)) == 1) {
        size_t n;

        if (e->hold) {
            e->held++;
            continue;
        }
        n = virtq_req_read(&echo_req, 0, buf, sizeof(buf));
        n = virtq_req_write(&echo_req, 0, buf, n);
        virtq_push(vq, &echo_req, (uint32_t)n);
        e->served++;
    }
    e->last_pop_rc = rc;
    virtio_notify_queue(e->vdev, vq);
}

static void echo_queue_notify(void *dev, unsigned q)
{
    struct echo *e = dev;

    e->kicks++;
    echo_serve(e, q);
}

static void echo_reset(void *dev)
{
    struct echo *e = dev;

    e->resets++;
    e->features = 0;
}

static const struct virtio_device_ops echo_ops = {
    .name = "virtio-echo",
    .device_id = VIRTIO_ID_CONSOLE,
    .num_queues = 2,
    .queue_max = 256,
    .config_size = ECHO_CONFIG_SIZE,
    .features = echo_features,
    .config_read = echo_config_read,
    .config_write = echo_config_write,
    .activate = echo_activate,
    .queue_notify = echo_queue_notify,
    .reset = echo_reset,
};

/* --- the driver -------------------------------------------------------------------------- */

static struct virtio_dev *vd;

static uint32_t rd(uint64_t off)
{
    uint64_t v = 0xdeadbeef;

    /* The transport never faults an aligned 32-bit access; only a failure counts as a check. */
    if (virtio_mmio_ops.read(vd, off, 4, &v) != 0)
        CHECK(!"32-bit register read faulted");
    return (uint32_t)v;
}

static void wr(uint64_t off, uint32_t v)
{
    if (virtio_mmio_ops.write(vd, off, 4, v) != 0)
        CHECK(!"32-bit register write faulted");
}

static void wr64(uint64_t lo, uint64_t v)
{
    wr(lo, (uint32_t)v);
    wr(lo + 4, (uint32_t)(v >> 32));
}

struct dq {
    unsigned index;
    uint16_t num;
    gpa_t desc, avail, used;
    uint16_t avail_idx, last_used, next_desc;
};

static struct dq dqs[2];

static struct virtq_desc *dq_desc(const struct dq *q)
{
    return gp(q->desc);
}

static struct virtq_avail *dq_avail(const struct dq *q)
{
    return gp(q->avail);
}

static struct virtq_used *dq_used(const struct dq *q)
{
    return gp(q->used);
}

static uint16_t *dq_used_event(const struct dq *q)
{
    return &dq_avail(q)->ring[q->num];
}

static uint16_t *dq_avail_event(const struct dq *q)
{
    return (uint16_t *)&dq_used(q)->ring[q->num];
}

static uint32_t status(void)
{
    return rd(VIRTIO_MMIO_REG_STATUS);
}

static uint64_t device_features(void)
{
    uint64_t f;

    wr(VIRTIO_MMIO_REG_DEVICE_FEATURES_SEL, 1);
    f = (uint64_t)rd(VIRTIO_MMIO_REG_DEVICE_FEATURES) << 32;
    wr(VIRTIO_MMIO_REG_DEVICE_FEATURES_SEL, 0);
    return f | rd(VIRTIO_MMIO_REG_DEVICE_FEATURES);
}

static void driver_features(uint64_t f)
{
    wr(VIRTIO_MMIO_REG_DRIVER_FEATURES_SEL, 0);
    wr(VIRTIO_MMIO_REG_DRIVER_FEATURES, (uint32_t)f);
    wr(VIRTIO_MMIO_REG_DRIVER_FEATURES_SEL, 1);
    wr(VIRTIO_MMIO_REG_DRIVER_FEATURES, (uint32_t)(f >> 32));
}

/* Reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK (§3.1.1 steps 1-6). Returns whether the
 * device accepted the features. */
static bool drv_negotiate(uint64_t want)
{
    wr(VIRTIO_MMIO_REG_STATUS, 0);
    wr(VIRTIO_MMIO_REG_STATUS, ST_ACK);
    wr(VIRTIO_MMIO_REG_STATUS, ST_ACK | ST_DRV);
    driver_features(device_features() & want);
    wr(VIRTIO_MMIO_REG_STATUS, ST_ACK | ST_DRV | ST_FOK);
    return status() & ST_FOK;
}

/* §4.2.3.2: one queue, with its rings zeroed first as the driver must. */
static void drv_setup_queue(unsigned q, uint16_t num)
{
    struct dq *d = &dqs[q];
    gpa_t base = RAM_BASE + q * 0x10000;

    *d = (struct dq){
        .index = q, .num = num, .desc = base, .avail = base + 0x8000, .used = base + 0xc000};
    memset(gp(base), 0, 0x10000);
    wr(VIRTIO_MMIO_REG_QUEUE_SEL, q);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_QUEUE_READY), 0);
    CHECK(rd(VIRTIO_MMIO_REG_QUEUE_NUM_MAX) >= num);
    wr(VIRTIO_MMIO_REG_QUEUE_NUM, num);
    wr64(VIRTIO_MMIO_REG_QUEUE_DESC_LOW, d->desc);
    wr64(VIRTIO_MMIO_REG_QUEUE_DRIVER_LOW, d->avail);
    wr64(VIRTIO_MMIO_REG_QUEUE_DEVICE_LOW, d->used);
    wr(VIRTIO_MMIO_REG_QUEUE_READY, 1);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_QUEUE_READY), 1);
}

/* The whole §3.1.1 sequence with two queues of `num` entries. */
static bool drv_init(uint64_t want, uint16_t num)
{
    uint32_t st;

    if (rd(VIRTIO_MMIO_REG_MAGIC_VALUE) != VIRTIO_MMIO_MAGIC || rd(VIRTIO_MMIO_REG_VERSION) != 2 ||
        rd(VIRTIO_MMIO_REG_DEVICE_ID) == 0)
        return false;
    if (!drv_negotiate(want))
        return false;
    drv_setup_queue(0, num);
    drv_setup_queue(1, num);
    wr(VIRTIO_MMIO_REG_STATUS, ST_ACK | ST_DRV | ST_FOK | ST_DOK);
    st = status();
    CHECK_EQ_U64(st, ST_ACK | ST_DRV | ST_FOK | ST_DOK);
    return st == (ST_ACK | ST_DRV | ST_FOK | ST_DOK);
}

struct seg {
    gpa_t addr;
    uint32_t len;
    bool write;
};

/* Adds a chain of direct descriptors; returns its head. */
static uint16_t drv_add(struct dq *q, const struct seg *s, unsigned n)
{
    uint16_t head = q->next_desc, idx = head;

    for (unsigned i = 0; i < n; i++) {
        uint16_t next = (uint16_t)((idx + 1) % q->num);

        dq_desc(q)[idx] = (struct virtq_desc){
            .addr = s[i].addr,
            .len = s[i].len,
            .flags = (uint16_t)((s[i].write ? VIRTQ_DESC_F_WRITE : 0) |
                                (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
            .next = i + 1 < n ? next : 0,
        };
        idx = next;
    }
    q->next_desc = idx;
    return head;
}

static void drv_publish(struct dq *q, uint16_t head)
{
    dq_avail(q)->ring[q->avail_idx % q->num] = head;
    q->avail_idx++;
    __atomic_store_n(&dq_avail(q)->idx, q->avail_idx, __ATOMIC_RELEASE);
}

static void drv_kick(const struct dq *q)
{
    wr(VIRTIO_MMIO_REG_QUEUE_NOTIFY, q->index);
}

/* Takes the next used element, if any. */
static bool drv_get_used(struct dq *q, uint32_t *id, uint32_t *len)
{
    const struct virtq_used_elem *e;

    if (__atomic_load_n(&dq_used(q)->idx, __ATOMIC_ACQUIRE) == q->last_used)
        return false;
    e = &dq_used(q)->ring[q->last_used % q->num];
    *id = e->id;
    *len = e->len;
    q->last_used++;
    return true;
}

static void fresh_device(uint64_t offer)
{
    virtio_mmio_destroy(vd);
    vd = NULL;
    echo = (struct echo){.offer = offer};
    atomic_store(&irq_state.level, false);
    atomic_store(&irq_state.rises, 0);
    {
        const struct irq_line line = {.set = fake_irq_set, .opaque = &irq_state, .n = 7};

        CHECK_EQ_U64(virtio_mmio_create(&ram, &line, &echo_ops, &echo, &vd), 0);
    }
    echo.vdev = vd;
}

#define ALL_RING \
    (BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_F_RING_EVENT_IDX) | BIT(VIRTIO_F_RING_INDIRECT_DESC))
#define BASIC BIT(VIRTIO_F_VERSION_1)

/* --- tests ------------------------------------------------------------------------------- */

static void test_create_checks(void)
{
    struct virtio_device_ops bad = echo_ops;
    struct virtio_dev *v = (struct virtio_dev *)1;

    bad.reset = NULL;
    CHECK_EQ_U64(virtio_mmio_create(&ram, NULL, &bad, &echo, &v), (uint64_t)-EINVAL);
    CHECK(v == NULL);
    bad = echo_ops;
    bad.queue_max = 0;
    CHECK_EQ_U64(virtio_mmio_create(&ram, NULL, &bad, &echo, &v), (uint64_t)-EINVAL);
    bad.queue_max = 32769;
    CHECK_EQ_U64(virtio_mmio_create(&ram, NULL, &bad, &echo, &v), (uint64_t)-EINVAL);
    bad = echo_ops;
    bad.config_size = 0x101;
    CHECK_EQ_U64(virtio_mmio_create(&ram, NULL, &bad, &echo, &v), (uint64_t)-EINVAL);
    bad = echo_ops;
    bad.device_id = 0;
    CHECK_EQ_U64(virtio_mmio_create(&ram, NULL, &bad, &echo, &v), (uint64_t)-EINVAL);
    bad = echo_ops;
    bad.num_queues = VIRTIO_MMIO_MAX_QUEUES + 1;
    CHECK_EQ_U64(virtio_mmio_create(&ram, NULL, &bad, &echo, &v), (uint64_t)-EINVAL);
    /* No irq line is fine (unconnected). */
    CHECK_EQ_U64(virtio_mmio_create(&ram, NULL, &echo_ops, &echo, &v), 0);
    virtio_mmio_destroy(v);
    virtio_mmio_destroy(NULL);
}

/* §4.2.2 registers and the §3.1.1 sequence. */
static void test_init_sequence(void)
{
    const uint64_t offer =
        BIT(0) | BIT(23) | BIT(24) | BIT(30) | BIT(33) | BIT(34) | BIT(50) | BIT(63);

    fresh_device(offer);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_MAGIC_VALUE), 0x74726976);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_VERSION), 2);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_DEVICE_ID), VIRTIO_ID_CONSOLE);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_VENDOR_ID), VIRTIO_MMIO_VENDOR_ID);
    CHECK_EQ_U64(status(), 0);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_INTERRUPT_STATUS), 0);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_CONFIG_GENERATION), 0);
    /* Device-type bits pass, reserved/unsupported transport bits do not; ours are added. */
    CHECK_EQ_U64(device_features(), BIT(0) | BIT(23) | BIT(50) | BIT(63) | ALL_RING);
    wr(VIRTIO_MMIO_REG_DEVICE_FEATURES_SEL, 2);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_DEVICE_FEATURES), 0);
    /* Queues: two exist. */
    wr(VIRTIO_MMIO_REG_QUEUE_SEL, 1);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_QUEUE_NUM_MAX), 256);
    wr(VIRTIO_MMIO_REG_QUEUE_SEL, 2);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_QUEUE_NUM_MAX), 0);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_QUEUE_READY), 0);
    wr(VIRTIO_MMIO_REG_QUEUE_SEL, 0xffffffff);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_QUEUE_NUM_MAX), 0);
    /* No shared memory regions, no queue reset, holes and write-only registers read 0. */
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_SHM_LEN_LOW), 0xffffffff);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_SHM_LEN_HIGH), 0xffffffff);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_SHM_BASE_LOW), 0xffffffff);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_QUEUE_RESET), 0);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_QUEUE_NOTIFY), 0);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_INTERRUPT_ACK), 0);
    CHECK_EQ_U64(rd(0x028), 0); /* legacy GuestPageSize */
    CHECK_EQ_U64(rd(0x0f0), 0);
    wr(0x040, 0x1234); /* legacy QueuePFN: ignored */
    wr(VIRTIO_MMIO_REG_MAGIC_VALUE, 0);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_MAGIC_VALUE), 0x74726976);

    CHECK(drv_init(ALL_RING | BIT(0) | BIT(50) | BIT(1), 16));
    CHECK_EQ_U64(echo.activations, 1);
    CHECK_EQ_U64(echo.features, ALL_RING | BIT(0) | BIT(50));
    CHECK(virtio_negotiated(vd, VIRTIO_F_VERSION_1));
    CHECK(virtio_negotiated(vd, 50));
    CHECK(!virtio_negotiated(vd, 23));
    CHECK(!virtio_negotiated(vd, 64));
    CHECK(virtq_ready(virtio_get_queue(vd, 0)));
    CHECK(virtio_get_queue(vd, 2) == NULL);
    /* Queue address registers read back. */
    wr(VIRTIO_MMIO_REG_QUEUE_SEL, 1);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_QUEUE_DESC_LOW), (uint32_t)dqs[1].desc);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_QUEUE_DRIVER_LOW), (uint32_t)dqs[1].avail);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_QUEUE_DEVICE_LOW), (uint32_t)dqs[1].used);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_QUEUE_DEVICE_HIGH), 0);
    /* Writing DRIVER_OK again changes nothing. */
    wr(VIRTIO_MMIO_REG_STATUS, ST_ACK | ST_DRV | ST_FOK | ST_DOK);
    CHECK_EQ_U64(echo.activations, 1);
    CHECK_EQ_U64(echo.resets, 1); /* the driver's reset at the start of initialisation */
    CHECK(!atomic_load(&irq_state.level));
}

/* §3.1.1 step 5-6, §2.1.2: what the device refuses during negotiation. */
static void test_feature_negotiation(void)
{
    fresh_device(BIT(0));

    /* An un-offered bit. */
    wr(VIRTIO_MMIO_REG_STATUS, ST_ACK);
    wr(VIRTIO_MMIO_REG_STATUS, ST_ACK | ST_DRV);
    driver_features(BIT(VIRTIO_F_VERSION_1) | BIT(5));
    wr(VIRTIO_MMIO_REG_STATUS, ST_ACK | ST_DRV | ST_FOK);
    CHECK_EQ_U64(status(), ST_ACK | ST_DRV);
    CHECK(!virtio_negotiated(vd, VIRTIO_F_VERSION_1));
    /* A transport bit the device does not offer (RING_PACKED). */
    driver_features(BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_F_RING_PACKED));
    wr(VIRTIO_MMIO_REG_STATUS, ST_ACK | ST_DRV | ST_FOK);
    CHECK_EQ_U64(status(), ST_ACK | ST_DRV);
    /* Without VERSION_1 (a legacy driver). */
    driver_features(BIT(0));
    wr(VIRTIO_MMIO_REG_STATUS, ST_ACK | ST_DRV | ST_FOK);
    CHECK_EQ_U64(status(), ST_ACK | ST_DRV);
    /* A bit above 63. */
    driver_features(BIT(VIRTIO_F_VERSION_1));
    wr(VIRTIO_MMIO_REG_DRIVER_FEATURES_SEL, 2);
    wr(VIRTIO_MMIO_REG_DRIVER_FEATURES, 1);
    wr(VIRTIO_MMIO_REG_STATUS, ST_ACK | ST_DRV | ST_FOK);
    CHECK_EQ_U64(status(), ST_ACK | ST_DRV);
    /* DRIVER_OK without FEATURES_OK. */
    wr(VIRTIO_MMIO_REG_STATUS, ST_ACK | ST_DRV | ST_DOK);
    CHECK_EQ_U64(status(), ST_ACK | ST_DRV);
    CHECK_EQ_U64(echo.activations, 0);

    /* FEATURES_OK without ACKNOWLEDGE/DRIVER. */
    wr(VIRTIO_MMIO_REG_STATUS, 0);
    driver_features(BIT(VIRTIO_F_VERSION_1));
    wr(VIRTIO_MMIO_REG_STATUS, ST_FOK);
    CHECK_EQ_U64(status(), 0);

    /* A clean negotiation after the reset; later DriverFeatures writes are ignored. */
    CHECK(drv_negotiate(BIT(VIRTIO_F_VERSION_1) | BIT(0)));
    driver_features(BIT(VIRTIO_F_VERSION_1));
    CHECK(virtio_negotiated(vd, 0));
    /* Clearing a bit without a reset is ignored. */
    wr(VIRTIO_MMIO_REG_STATUS, ST_ACK | ST_DRV);
    CHECK_EQ_U64(status(), ST_ACK | ST_DRV | ST_FOK);
    /* The device's own NEEDS_RESET bit in a driver write (Linux writes back what it read). */
    wr(VIRTIO_MMIO_REG_STATUS, ST_ACK | ST_DRV | ST_FOK | ST_NRESET);
    CHECK_EQ_U64(status(), ST_ACK | ST_DRV | ST_FOK);
    /* FAILED is accepted. */
    wr(VIRTIO_MMIO_REG_STATUS, ST_ACK | ST_DRV | ST_FOK | VIRTIO_STATUS_FAILED);
    CHECK_EQ_U64(status(), ST_ACK | ST_DRV | ST_FOK | VIRTIO_STATUS_FAILED);
    wr(VIRTIO_MMIO_REG_STATUS, 0);
    CHECK_EQ_U64(status(), 0);
    CHECK(!virtio_negotiated(vd, 0));

    /* activate() failing: DEVICE_NEEDS_RESET with a configuration change notification. */
    echo.activate_rc = -EIO;
    CHECK(drv_negotiate(ALL_RING));
    drv_setup_queue(0, 8);
    wr(VIRTIO_MMIO_REG_STATUS, ST_ACK | ST_DRV | ST_FOK | ST_DOK);
    CHECK_EQ_U64(status(), ST_ACK | ST_DRV | ST_FOK | ST_DOK | ST_NRESET);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_INTERRUPT_STATUS), VIRTIO_INT_CONFIG_CHANGE);
    CHECK(atomic_load(&irq_state.level));
    /* A kick to the failed device goes nowhere. */
    drv_kick(&dqs[0]);
    CHECK_EQ_U64(echo.kicks, 0);
    wr(VIRTIO_MMIO_REG_STATUS, 0);
    CHECK(!atomic_load(&irq_state.level));
    CHECK_EQ_U64(status(), 0);
}

/* §4.2.3.2 and the alignment/size rules of §2.7: refused set-ups. */
static void test_queue_config(void)
{
    struct {
        const char *name;
        uint32_t num;
        uint64_t desc, avail, used;
    } bad[] = {
        {"size not a power of two", 100, RAM_BASE, RAM_BASE + 0x8000, RAM_BASE + 0xc000},
        {"size above QueueNumMax", 512, RAM_BASE, RAM_BASE + 0x8000, RAM_BASE + 0xc000},
        {"size 0", 0, RAM_BASE, RAM_BASE + 0x8000, RAM_BASE + 0xc000},
        {"size 2^16", 65536, RAM_BASE, RAM_BASE + 0x8000, RAM_BASE + 0xc000},
        {"desc misaligned", 8, RAM_BASE + 8, RAM_BASE + 0x8000, RAM_BASE + 0xc000},
        {"avail misaligned", 8, RAM_BASE, RAM_BASE + 0x8001, RAM_BASE + 0xc000},
        {"used misaligned", 8, RAM_BASE, RAM_BASE + 0x8000, RAM_BASE + 0xc002},
        {"desc outside RAM", 8, RAM_BASE + RAM_SIZE, RAM_BASE + 0x8000, RAM_BASE + 0xc000},
        {"avail outside RAM", 8, RAM_BASE, 0x1000, RAM_BASE + 0xc000},
        {"used past the end", 8, RAM_BASE, RAM_BASE + 0x8000, RAM_BASE + RAM_SIZE - 64},
        {"high half set", 8, RAM_BASE | (UINT64_C(1) << 40), RAM_BASE + 0x8000, RAM_BASE + 0xc000},
        {"used wraps", 8, RAM_BASE, RAM_BASE + 0x8000, UINT64_C(0xfffffffffffffff0)},
        {"all zero", 8, 0, 0, 0},
    };

    fresh_device(0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(drv_negotiate(ALL_RING));
        wr(VIRTIO_MMIO_REG_QUEUE_SEL, 0);
        wr(VIRTIO_MMIO_REG_QUEUE_NUM, bad[i].num);
        wr64(VIRTIO_MMIO_REG_QUEUE_DESC_LOW, bad[i].desc);
        wr64(VIRTIO_MMIO_REG_QUEUE_DRIVER_LOW, bad[i].avail);
        wr64(VIRTIO_MMIO_REG_QUEUE_DEVICE_LOW, bad[i].used);
        wr(VIRTIO_MMIO_REG_QUEUE_READY, 1);
        if (rd(VIRTIO_MMIO_REG_QUEUE_READY) != 0 || !(status() & ST_NRESET))
            fprintf(stderr, "queue set-up \"%s\" was not refused\n", bad[i].name);
        CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_QUEUE_READY), 0);
        CHECK_EQ_U64(status(), ST_ACK | ST_DRV | ST_FOK | ST_NRESET);
        CHECK(!atomic_load(&irq_state.level)); /* no DRIVER_OK yet: no notification */
        /* DRIVER_OK on a device that needs a reset: not activated, but notified. */
        wr(VIRTIO_MMIO_REG_STATUS, ST_ACK | ST_DRV | ST_FOK | ST_DOK);
        CHECK_EQ_U64(echo.activations, 0);
        CHECK(atomic_load(&irq_state.level));
    }
    wr(VIRTIO_MMIO_REG_STATUS, 0);
    CHECK_EQ_U64(status(), 0);
    CHECK(!atomic_load(&irq_state.level));

    /* QueueReady before FEATURES_OK. */
    wr(VIRTIO_MMIO_REG_STATUS, ST_ACK | ST_DRV);
    wr(VIRTIO_MMIO_REG_QUEUE_SEL, 0);
    wr(VIRTIO_MMIO_REG_QUEUE_NUM, 8);
    wr64(VIRTIO_MMIO_REG_QUEUE_DESC_LOW, RAM_BASE);
    wr64(VIRTIO_MMIO_REG_QUEUE_DRIVER_LOW, RAM_BASE + 0x8000);
    wr64(VIRTIO_MMIO_REG_QUEUE_DEVICE_LOW, RAM_BASE + 0xc000);
    wr(VIRTIO_MMIO_REG_QUEUE_READY, 1);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_QUEUE_READY), 0);
    CHECK(status() & ST_NRESET);

    /* Registers of a ready queue do not change; QueueReady 0 before DRIVER_OK takes it down. */
    CHECK(drv_negotiate(ALL_RING));
    CHECK_EQ_U64(status(), ST_ACK | ST_DRV | ST_FOK);
    drv_setup_queue(0, 8);
    wr64(VIRTIO_MMIO_REG_QUEUE_DESC_LOW, RAM_BASE + 0x100);
    wr(VIRTIO_MMIO_REG_QUEUE_NUM, 4);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_QUEUE_DESC_LOW), (uint32_t)RAM_BASE);
    wr(VIRTIO_MMIO_REG_QUEUE_READY, 2); /* not a valid value */
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_QUEUE_READY), 1);
    wr(VIRTIO_MMIO_REG_QUEUE_READY, 0);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_QUEUE_READY), 0);
    CHECK(!virtq_ready(virtio_get_queue(vd, 0)));
    drv_setup_queue(0, 8);
    /* A queue that does not exist ignores everything. */
    wr(VIRTIO_MMIO_REG_QUEUE_SEL, 5);
    wr(VIRTIO_MMIO_REG_QUEUE_NUM, 8);
    wr64(VIRTIO_MMIO_REG_QUEUE_DESC_LOW, RAM_BASE);
    wr(VIRTIO_MMIO_REG_QUEUE_READY, 1);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_QUEUE_READY), 0);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_QUEUE_DESC_LOW), 0);
    CHECK_EQ_U64(status() & ST_NRESET, 0);
    /* Kicks before DRIVER_OK are not passed on; activate() polls instead. */
    drv_kick(&dqs[0]);
    CHECK_EQ_U64(echo.kicks, 0);
    wr(VIRTIO_MMIO_REG_STATUS, ST_ACK | ST_DRV | ST_FOK | ST_DOK);
    CHECK_EQ_U64(echo.activations, 1);
    /* Kicks for a queue that is not ready or does not exist are dropped. */
    wr(VIRTIO_MMIO_REG_QUEUE_NOTIFY, 1);
    wr(VIRTIO_MMIO_REG_QUEUE_NOTIFY, 2);
    wr(VIRTIO_MMIO_REG_QUEUE_NOTIFY, 0x10000);
    CHECK_EQ_U64(echo.kicks, 0);
    drv_kick(&dqs[0]);
    CHECK_EQ_U64(echo.kicks, 1);
    /* Set-up after DRIVER_OK (no VIRTIO_F_RING_RESET): refused, device needs reset. */
    wr(VIRTIO_MMIO_REG_QUEUE_SEL, 1);
    wr(VIRTIO_MMIO_REG_QUEUE_NUM, 8);
    wr64(VIRTIO_MMIO_REG_QUEUE_DESC_LOW, RAM_BASE + 0x10000);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_QUEUE_DESC_LOW), 0);
    wr(VIRTIO_MMIO_REG_QUEUE_READY, 1);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_QUEUE_READY), 0);
    CHECK(status() & ST_NRESET);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_INTERRUPT_STATUS), VIRTIO_INT_CONFIG_CHANGE);
    /* ... and so is taking a queue down under the running device. */
    wr(VIRTIO_MMIO_REG_QUEUE_SEL, 0);
    wr(VIRTIO_MMIO_REG_QUEUE_READY, 0);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_QUEUE_READY), 1);
    wr(VIRTIO_MMIO_REG_STATUS, 0);
}

/* Kick -> pop -> push -> interrupt; InterruptACK lowers the line (§4.2.2, §4.2.3.4). */
static void test_echo_and_irq(void)
{
    struct seg s[2];
    uint32_t id, len;
    uint16_t head;

    fresh_device(0);
    CHECK(drv_init(BASIC, 16));
    memcpy(gp(RAM_BASE + DATA_OFF), "ping", 4);
    memset(gp(RAM_BASE + DATA_OFF + 0x100), 0, 16);
    s[0] = (struct seg){RAM_BASE + DATA_OFF, 4, false};
    s[1] = (struct seg){RAM_BASE + DATA_OFF + 0x100, 16, true};
    head = drv_add(&dqs[0], s, 2);
    drv_publish(&dqs[0], head);
    CHECK(!atomic_load(&irq_state.level));
    drv_kick(&dqs[0]);
    CHECK_EQ_U64(echo.kicks, 1);
    CHECK_EQ_U64(echo.served, 1);
    CHECK(drv_get_used(&dqs[0], &id, &len));
    CHECK_EQ_U64(id, head);
    CHECK_EQ_U64(len, 4);
    CHECK(memcmp(gp(RAM_BASE + DATA_OFF + 0x100), "ping", 4) == 0);
    CHECK(atomic_load(&irq_state.level));
    CHECK_EQ_U64(atomic_load(&irq_state.rises), 1);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_INTERRUPT_STATUS), VIRTIO_INT_USED_BUFFER);
    wr(VIRTIO_MMIO_REG_INTERRUPT_ACK, VIRTIO_INT_CONFIG_CHANGE); /* the wrong bit */
    CHECK(atomic_load(&irq_state.level));
    wr(VIRTIO_MMIO_REG_INTERRUPT_ACK, VIRTIO_INT_USED_BUFFER);
    CHECK(!atomic_load(&irq_state.level));
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_INTERRUPT_STATUS), 0);

    /* Three chains, one kick: one interrupt. */
    for (unsigned i = 0; i < 3; i++)
        drv_publish(&dqs[0], drv_add(&dqs[0], s, 2));
    drv_kick(&dqs[0]);
    CHECK_EQ_U64(echo.served, 4);
    CHECK_EQ_U64(atomic_load(&irq_state.rises), 2);
    for (unsigned i = 0; i < 3; i++)
        CHECK(drv_get_used(&dqs[0], &id, &len));
    CHECK(!drv_get_used(&dqs[0], &id, &len));
    wr(VIRTIO_MMIO_REG_INTERRUPT_ACK, 3);
    CHECK(!atomic_load(&irq_state.level));

    /* Chains of mixed out and in segments: 3 readable, 2 writable. */
    {
        struct seg m[5] = {
            {RAM_BASE + DATA_OFF + 0x1000, 3, false}, {RAM_BASE + DATA_OFF + 0x2000, 4, false},
            {RAM_BASE + DATA_OFF + 0x3000, 5, false}, {RAM_BASE + DATA_OFF + 0x4000, 7, true},
            {RAM_BASE + DATA_OFF + 0x5000, 7, true},
        };

        memcpy(gp(m[0].addr), "one", 3);
        memcpy(gp(m[1].addr), "two_", 4);
        memcpy(gp(m[2].addr), "three", 5);
        head = drv_add(&dqs[0], m, 5);
        drv_publish(&dqs[0], head);
        drv_kick(&dqs[0]);
        CHECK(drv_get_used(&dqs[0], &id, &len));
        CHECK_EQ_U64(id, head);
        CHECK_EQ_U64(len, 12);
        CHECK(memcmp(gp(m[3].addr), "onetwo_", 7) == 0);
        CHECK(memcmp(gp(m[4].addr), "three", 5) == 0);
    }
    CHECK_EQ_U64(status() & ST_NRESET, 0);
}

/* §2.7.10: with EVENT_IDX the device interrupts only when used->idx passes used_event, and
 * publishes avail_event so the driver can skip kicks. */
static void test_event_idx(void)
{
    struct seg s = {RAM_BASE + DATA_OFF, 8, true};
    uint32_t id, len;

    fresh_device(0);
    CHECK(drv_init(BASIC | BIT(VIRTIO_F_RING_EVENT_IDX), 16));
    *dq_used_event(&dqs[0]) = 2; /* interrupt when the third buffer is used */
    for (unsigned i = 0; i < 2; i++) {
        drv_publish(&dqs[0], drv_add(&dqs[0], &s, 1));
        drv_kick(&dqs[0]);
        CHECK_EQ_U64(*dq_avail_event(&dqs[0]), i + 1);
        CHECK(drv_get_used(&dqs[0], &id, &len));
        CHECK(!atomic_load(&irq_state.level));
    }
    drv_publish(&dqs[0], drv_add(&dqs[0], &s, 1));
    drv_kick(&dqs[0]);
    CHECK(atomic_load(&irq_state.level));
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_INTERRUPT_STATUS), VIRTIO_INT_USED_BUFFER);
    wr(VIRTIO_MMIO_REG_INTERRUPT_ACK, VIRTIO_INT_USED_BUFFER);
    /* used_event behind used->idx: no further interrupts until the driver moves it. */
    drv_publish(&dqs[0], drv_add(&dqs[0], &s, 1));
    drv_kick(&dqs[0]);
    CHECK(!atomic_load(&irq_state.level));
    *dq_used_event(&dqs[0]) = 4;
    drv_publish(&dqs[0], drv_add(&dqs[0], &s, 1));
    drv_kick(&dqs[0]);
    CHECK(atomic_load(&irq_state.level));
    CHECK_EQ_U64(*dq_avail_event(&dqs[0]), 5);
    CHECK_EQ_U64(atomic_load(&irq_state.rises), 2);
    wr(VIRTIO_MMIO_REG_INTERRUPT_ACK, VIRTIO_INT_USED_BUFFER);
}

/* §2.7.7: without EVENT_IDX the avail ring's NO_INTERRUPT flag suppresses interrupts. */
static void test_no_interrupt_flag(void)
{
    struct seg s = {RAM_BASE + DATA_OFF, 8, true};

    fresh_device(0);
    CHECK(drv_init(BASIC, 16));
    dq_avail(&dqs[0])->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
    drv_publish(&dqs[0], drv_add(&dqs[0], &s, 1));
    drv_kick(&dqs[0]);
    CHECK_EQ_U64(echo.served, 1);
    CHECK(!atomic_load(&irq_state.level));
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_INTERRUPT_STATUS), 0);
    dq_avail(&dqs[0])->flags = 0;
    drv_publish(&dqs[0], drv_add(&dqs[0], &s, 1));
    drv_kick(&dqs[0]);
    CHECK(atomic_load(&irq_state.level));
    wr(VIRTIO_MMIO_REG_INTERRUPT_ACK, VIRTIO_INT_USED_BUFFER);
}

/* §2.7.5.3: an indirect table of two readable and two writable descriptors. */
static void test_indirect(void)
{
    struct virtq_desc *it = gp(RAM_BASE + IND_OFF);
    const gpa_t d = RAM_BASE + DATA_OFF;
    uint32_t id, len;
    uint16_t head;

    fresh_device(0);
    CHECK(drv_init(BASIC | BIT(VIRTIO_F_RING_INDIRECT_DESC), 8));
    memcpy(gp(d), "indi", 4);
    memcpy(gp(d + 0x100), "rect", 4);
    memset(gp(d + 0x200), 0, 16);
    it[0] = (struct virtq_desc){d, 4, VIRTQ_DESC_F_NEXT, 1};
    it[1] = (struct virtq_desc){d + 0x100, 4, VIRTQ_DESC_F_NEXT, 2};
    it[2] = (struct virtq_desc){d + 0x200, 6, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 3};
    it[3] = (struct virtq_desc){d + 0x300, 6, VIRTQ_DESC_F_WRITE, 0};
    head = dqs[0].next_desc++;
    dq_desc(&dqs[0])[head] = (struct virtq_desc){RAM_BASE + IND_OFF, 64, VIRTQ_DESC_F_INDIRECT, 0};
    drv_publish(&dqs[0], head);
    drv_kick(&dqs[0]);
    CHECK(drv_get_used(&dqs[0], &id, &len));
    CHECK_EQ_U64(id, head);
    CHECK_EQ_U64(len, 8);
    CHECK(memcmp(gp(d + 0x200), "indire", 6) == 0);
    CHECK(memcmp(gp(d + 0x300), "ct", 2) == 0);
    CHECK_EQ_U64(status() & ST_NRESET, 0);
}

/* 66000 requests through a 4-entry queue: every index wraps past 65535. */
static void test_wraparound(void)
{
    struct seg s[2] = {{RAM_BASE + DATA_OFF, 4, false}, {RAM_BASE + DATA_OFF + 0x100, 4, true}};
    unsigned bad = 0;
    uint32_t id, len;

    fresh_device(0);
    CHECK(drv_init(BASIC | BIT(VIRTIO_F_RING_EVENT_IDX), 4));
    for (unsigned i = 0; i < 66000; i++) {
        uint16_t head = drv_add(&dqs[0], s, 2);

        memcpy(gp(s[0].addr), &i, 4);
        drv_publish(&dqs[0], head);
        *dq_used_event(&dqs[0]) = dqs[0].last_used; /* Linux: interrupt for the next one */
        drv_kick(&dqs[0]);
        if (!drv_get_used(&dqs[0], &id, &len) || id != head || len != 4 ||
            memcmp(gp(s[1].addr), &i, 4) != 0)
            bad++;
        if (!atomic_load(&irq_state.level))
            bad++;
        wr(VIRTIO_MMIO_REG_INTERRUPT_ACK, VIRTIO_INT_USED_BUFFER);
    }
    CHECK_EQ_U64(bad, 0);
    CHECK_EQ_U64(dq_used(&dqs[0])->idx, (uint16_t)66000);
    CHECK_EQ_U64(*dq_avail_event(&dqs[0]), (uint16_t)66000);
    CHECK_EQ_U64(echo.served, 66000);
    CHECK_EQ_U64(status() & ST_NRESET, 0);
}

/* Writing 0 to Status while requests are in flight (§2.4, §4.2.2.1). */
static void test_reset_mid_operation(void)
{
    struct seg s = {RAM_BASE + DATA_OFF, 8, true};
    uint32_t id, len;
    unsigned resets;

    fresh_device(0);
    CHECK(drv_init(ALL_RING, 8));
    /* One completed request leaves the interrupt pending... */
    drv_publish(&dqs[0], drv_add(&dqs[0], &s, 1));
    drv_kick(&dqs[0]);
    CHECK(atomic_load(&irq_state.level));
    /* ...and two more are popped but not finished. */
    echo.hold = true;
    drv_publish(&dqs[0], drv_add(&dqs[0], &s, 1));
    drv_publish(&dqs[0], drv_add(&dqs[0], &s, 1));
    drv_kick(&dqs[0]);
    CHECK_EQ_U64(echo.held, 2);
    CHECK_EQ_U64(dq_used(&dqs[0])->idx, 1);

    resets = echo.resets;
    wr(VIRTIO_MMIO_REG_STATUS, 0);
    CHECK_EQ_U64(echo.resets, resets + 1);
    CHECK_EQ_U64(status(), 0);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_INTERRUPT_STATUS), 0);
    CHECK(!atomic_load(&irq_state.level));
    for (unsigned q = 0; q < 2; q++) {
        wr(VIRTIO_MMIO_REG_QUEUE_SEL, q);
        CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_QUEUE_READY), 0);
        CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_QUEUE_DESC_LOW), 0);
    }
    CHECK(!virtio_negotiated(vd, VIRTIO_F_VERSION_1));
    /* A device that wrongly pushes after the reset writes nothing into the old rings. */
    virtq_push(virtio_get_queue(vd, 0), &echo_req, 0);
    CHECK_EQ_U64(dq_used(&dqs[0])->idx, 1);
    drv_kick(&dqs[0]);
    CHECK_EQ_U64(echo.kicks, 2);

    /* The device comes back from scratch. */
    echo.hold = false;
    CHECK(drv_init(ALL_RING, 8));
    CHECK_EQ_U64(echo.activations, 2);
    drv_publish(&dqs[0], drv_add(&dqs[0], &s, 1));
    drv_kick(&dqs[0]);
    CHECK(drv_get_used(&dqs[0], &id, &len));
    CHECK(atomic_load(&irq_state.level));
    /* A transport reset from the board does the same. */
    resets = echo.resets;
    virtio_mmio_reset(vd);
    CHECK_EQ_U64(echo.resets, resets + 1);
    CHECK_EQ_U64(status(), 0);
    CHECK(!atomic_load(&irq_state.level));
}

/* Configuration space at 0x100 (§4.2.2.2) and ConfigGeneration (§2.5.1). */
static void test_config_space(void)
{
    static const uint8_t cfg[ECHO_CONFIG_SIZE] = {
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* le64 at 0 */
        0x11, 0x12, 0x13, 0x14,                         /* le32 at 8 */
        0x21, 0x22,                                     /* le16 at 12 */
        0x31, 0x00,                                     /* u8 at 14 */
        0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, /* le64 at 16 */
    };
    uint64_t v;
    uint32_t gen, lo, hi;

    fresh_device(0);
    memcpy(echo.config, cfg, sizeof(cfg));
    for (unsigned off = 0; off < ECHO_CONFIG_SIZE; off++) {
        CHECK_EQ_U64(virtio_mmio_ops.read(vd, VIRTIO_MMIO_CONFIG + off, 1, &v), 0);
        CHECK_EQ_U64(v, cfg[off]);
    }
    CHECK_EQ_U64(virtio_mmio_ops.read(vd, VIRTIO_MMIO_CONFIG + 12, 2, &v), 0);
    CHECK_EQ_U64(v, 0x2221);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_CONFIG + 8), 0x14131211);
    /* A 64-bit field as two 32-bit halves between generation reads, as Linux reads it. */
    do {
        gen = rd(VIRTIO_MMIO_REG_CONFIG_GENERATION);
        lo = rd(VIRTIO_MMIO_CONFIG + 16);
        hi = rd(VIRTIO_MMIO_CONFIG + 20);
    } while (gen != rd(VIRTIO_MMIO_REG_CONFIG_GENERATION));
    CHECK_EQ_U64((uint64_t)hi << 32 | lo, UINT64_C(0xa8a7a6a5a4a3a2a1));
    /* Beyond config_size: reads 0, writes ignored. */
    CHECK_EQ_U64(rd(VIRTIO_MMIO_CONFIG + 24), 0);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_SIZE - 4), 0);
    CHECK_EQ_U64(virtio_mmio_ops.read(vd, VIRTIO_MMIO_CONFIG + 22, 2, &v), 0);
    CHECK_EQ_U64(v, 0xa8a7);
    CHECK_EQ_U64(virtio_mmio_ops.read(vd, VIRTIO_MMIO_CONFIG + 24, 1, &v), 0);
    CHECK_EQ_U64(v, 0);
    /* Writes reach the device little-endian, with offset and size. */
    CHECK_EQ_U64(virtio_mmio_ops.write(vd, VIRTIO_MMIO_CONFIG + 8, 4, 0x44332211), 0);
    CHECK_EQ_U64(echo.last_write_off, 8);
    CHECK_EQ_U64(echo.last_write_len, 4);
    CHECK(memcmp(echo.written + 8, "\x11\x22\x33\x44", 4) == 0);
    CHECK_EQ_U64(virtio_mmio_ops.write(vd, VIRTIO_MMIO_CONFIG + 14, 1, 0x5a), 0);
    CHECK_EQ_U64(echo.written[14], 0x5a);
    CHECK_EQ_U64(echo.last_write_len, 1);
    CHECK_EQ_U64(virtio_mmio_ops.write(vd, VIRTIO_MMIO_CONFIG + 24, 4, 0xffffffff), 0);
    CHECK_EQ_U64(echo.last_write_off, 14);

    /* A change before DRIVER_OK bumps the generation without an interrupt. */
    gen = rd(VIRTIO_MMIO_REG_CONFIG_GENERATION);
    echo.config[0] = 0x99;
    virtio_config_changed(vd);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_CONFIG_GENERATION), gen + 1);
    CHECK(!atomic_load(&irq_state.level));
    CHECK_EQ_U64(virtio_mmio_ops.read(vd, VIRTIO_MMIO_CONFIG, 1, &v), 0);
    CHECK_EQ_U64(v, 0x99);
    /* After DRIVER_OK it also raises InterruptStatus bit 1. */
    CHECK(drv_init(BASIC, 8));
    virtio_config_changed(vd);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_CONFIG_GENERATION), gen + 2);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_INTERRUPT_STATUS), VIRTIO_INT_CONFIG_CHANGE);
    CHECK(atomic_load(&irq_state.level));
    wr(VIRTIO_MMIO_REG_INTERRUPT_ACK, VIRTIO_INT_CONFIG_CHANGE);
    CHECK(!atomic_load(&irq_state.level));
    /* The generation survives a reset (it only ever moves forward). */
    wr(VIRTIO_MMIO_REG_STATUS, 0);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_CONFIG_GENERATION), gen + 2);
}

/* virtio_set_needs_reset() (§2.1.2). */
static void test_needs_reset_api(void)
{
    fresh_device(0);
    virtio_set_needs_reset(vd); /* before DRIVER_OK: the bit, no interrupt */
    CHECK_EQ_U64(status(), ST_NRESET);
    CHECK(!atomic_load(&irq_state.level));
    wr(VIRTIO_MMIO_REG_STATUS, 0);
    CHECK_EQ_U64(status(), 0);

    CHECK(drv_init(BASIC, 8));
    virtio_set_needs_reset(vd);
    CHECK_EQ_U64(status(), ST_ACK | ST_DRV | ST_FOK | ST_DOK | ST_NRESET);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_INTERRUPT_STATUS), VIRTIO_INT_CONFIG_CHANGE);
    CHECK(atomic_load(&irq_state.level));
    wr(VIRTIO_MMIO_REG_INTERRUPT_ACK, VIRTIO_INT_CONFIG_CHANGE);
    virtio_set_needs_reset(vd); /* idempotent: no second notification */
    CHECK(!atomic_load(&irq_state.level));
    CHECK_EQ_U64(atomic_load(&irq_state.rises), 1);
    /* Linux writes back status | bit; that neither clears nor breaks anything. */
    wr(VIRTIO_MMIO_REG_STATUS, status() | VIRTIO_STATUS_FAILED);
    CHECK_EQ_U64(status(), ST_ACK | ST_DRV | ST_FOK | ST_DOK | ST_NRESET | VIRTIO_STATUS_FAILED);
    wr(VIRTIO_MMIO_REG_STATUS, 0);
    CHECK_EQ_U64(status(), 0);
}

/* §4.2.2.2: registers take 32-bit accesses only; anything else is ignored and reads 0. */
static void test_access_sizes(void)
{
    uint64_t v;

    fresh_device(0);
    CHECK_EQ_U64(virtio_mmio_ops.read(vd, VIRTIO_MMIO_REG_MAGIC_VALUE, 1, &v), 0);
    CHECK_EQ_U64(v, 0);
    CHECK_EQ_U64(virtio_mmio_ops.read(vd, VIRTIO_MMIO_REG_MAGIC_VALUE + 2, 2, &v), 0);
    CHECK_EQ_U64(v, 0);
    CHECK_EQ_U64(virtio_mmio_ops.write(vd, VIRTIO_MMIO_REG_STATUS, 1, ST_ACK), 0);
    CHECK_EQ_U64(status(), 0);
    CHECK_EQ_U64(virtio_mmio_ops.write(vd, VIRTIO_MMIO_REG_STATUS + 2, 2, 1), 0);
    CHECK_EQ_U64(status(), 0);
    CHECK_EQ_U64(virtio_mmio_ops.read(vd, 0xff, 1, &v), 0);
    CHECK_EQ_U64(v, 0);
    /* Beyond the window (a board that mapped more): reads 0, writes ignored. */
    CHECK_EQ_U64(virtio_mmio_ops.read(vd, UINT64_C(0x100000100), 4, &v), 0);
    CHECK_EQ_U64(v, 0);
    CHECK_EQ_U64(virtio_mmio_ops.write(vd, UINT64_C(0x100000100), 4, 1), 0);
    CHECK_EQ_U64(virtio_mmio_ops.min_size, 1);
    CHECK_EQ_U64(virtio_mmio_ops.max_size, 4);
}

/* Hostile rings through the whole transport: DEVICE_NEEDS_RESET, a configuration change
 * interrupt, nothing in the used ring, and a clean recovery after the driver resets. */
struct hostile {
    const char *name;
    uint64_t features;
    void (*build)(struct dq *q);
};

static void set(struct dq *q, unsigned i, gpa_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    dq_desc(q)[i] = (struct virtq_desc){addr, len, flags, next};
}

static void hb_loop(struct dq *q)
{
    set(q, 0, RAM_BASE + DATA_OFF, 8, VIRTQ_DESC_F_NEXT, 1);
    set(q, 1, RAM_BASE + DATA_OFF, 8, VIRTQ_DESC_F_NEXT, 0);
    drv_publish(q, 0);
}

static void hb_next_range(struct dq *q)
{
    set(q, 0, RAM_BASE + DATA_OFF, 8, VIRTQ_DESC_F_NEXT, 8);
    drv_publish(q, 0);
}

static void hb_beyond(struct dq *q)
{
    set(q, 0, RAM_BASE + RAM_SIZE, 8, VIRTQ_DESC_F_WRITE, 0);
    drv_publish(q, 0);
}

static void hb_wrap(struct dq *q)
{
    set(q, 0, UINT64_C(0xffffffffffffff00), 0x200, 0, 0);
    drv_publish(q, 0);
}

static void hb_len_max(struct dq *q)
{
    set(q, 0, RAM_BASE + DATA_OFF, 0xffffffffu, VIRTQ_DESC_F_WRITE, 0);
    drv_publish(q, 0);
}

static void hb_ind_outside(struct dq *q)
{
    set(q, 0, UINT64_C(0x100000000000), 32, VIRTQ_DESC_F_INDIRECT, 0);
    drv_publish(q, 0);
}

static void hb_ind_len(struct dq *q)
{
    set(q, 0, RAM_BASE + IND_OFF, 40, VIRTQ_DESC_F_INDIRECT, 0);
    drv_publish(q, 0);
}

static void hb_ind_empty(struct dq *q)
{
    set(q, 0, RAM_BASE + IND_OFF, 0, VIRTQ_DESC_F_INDIRECT, 0);
    drv_publish(q, 0);
}

static void hb_ind_nested(struct dq *q)
{
    struct virtq_desc *it = gp(RAM_BASE + IND_OFF);

    it[0] = (struct virtq_desc){RAM_BASE + IND_OFF, 16, VIRTQ_DESC_F_INDIRECT, 0};
    set(q, 0, RAM_BASE + IND_OFF, 16, VIRTQ_DESC_F_INDIRECT, 0);
    drv_publish(q, 0);
}

static void hb_avail_jump(struct dq *q)
{
    set(q, 0, RAM_BASE + DATA_OFF, 8, 0, 0);
    q->avail_idx = 9;
    dq_avail(q)->idx = 9;
}

static void hb_head_range(struct dq *q)
{
    drv_publish(q, 8);
}

static void hb_read_after_write(struct dq *q)
{
    set(q, 0, RAM_BASE + DATA_OFF, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    set(q, 1, RAM_BASE + DATA_OFF, 8, 0, 0);
    drv_publish(q, 0);
}

static void hb_ind_not_negotiated(struct dq *q)
{
    struct virtq_desc *it = gp(RAM_BASE + IND_OFF);

    it[0] = (struct virtq_desc){RAM_BASE + DATA_OFF, 8, 0, 0};
    set(q, 0, RAM_BASE + IND_OFF, 16, VIRTQ_DESC_F_INDIRECT, 0);
    drv_publish(q, 0);
}

static void test_hostile(void)
{
    static const struct hostile cases[] = {
        {"descriptor loop", ALL_RING, hb_loop},
        {"next out of range", BASIC, hb_next_range},
        {"address beyond RAM", ALL_RING, hb_beyond},
        {"address + len wraps", BASIC, hb_wrap},
        {"len 0xffffffff", ALL_RING, hb_len_max},
        {"indirect table outside RAM", ALL_RING, hb_ind_outside},
        {"indirect len not a multiple of 16", ALL_RING, hb_ind_len},
        {"indirect len 0", ALL_RING, hb_ind_empty},
        {"nested indirect", ALL_RING, hb_ind_nested},
        {"avail idx jumps", BASIC, hb_avail_jump},
        {"head out of range", ALL_RING, hb_head_range},
        {"readable after writable", BASIC, hb_read_after_write},
        {"indirect not negotiated", BASIC, hb_ind_not_negotiated},
    };
    struct seg s = {RAM_BASE + DATA_OFF, 8, true};
    uint32_t id, len;

    fresh_device(0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned rises = atomic_load(&irq_state.rises);

        CHECK(drv_init(cases[i].features, 8));
        cases[i].build(&dqs[0]);
        drv_kick(&dqs[0]);
        if (!(status() & ST_NRESET))
            fprintf(stderr, "hostile case \"%s\" did not set DEVICE_NEEDS_RESET\n", cases[i].name);
        CHECK_EQ_U64(echo.last_pop_rc, (uint64_t)-EINVAL);
        CHECK(status() & ST_NRESET);
        CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_INTERRUPT_STATUS), VIRTIO_INT_CONFIG_CHANGE);
        CHECK(atomic_load(&irq_state.level));
        CHECK_EQ_U64(atomic_load(&irq_state.rises), rises + 1);
        CHECK_EQ_U64(dq_used(&dqs[0])->idx, 0);
        /* Kicking again changes nothing. */
        drv_kick(&dqs[0]);
        CHECK_EQ_U64(dq_used(&dqs[0])->idx, 0);
        /* The other queue keeps working until the driver resets. */
        drv_publish(&dqs[1], drv_add(&dqs[1], &s, 1));
        drv_kick(&dqs[1]);
        CHECK(drv_get_used(&dqs[1], &id, &len));
        wr(VIRTIO_MMIO_REG_STATUS, 0);
        CHECK_EQ_U64(status(), 0);
        CHECK(!atomic_load(&irq_state.level));
        /* Recovery: a good request after re-initialisation. */
        CHECK(drv_init(cases[i].features, 8));
        drv_publish(&dqs[0], drv_add(&dqs[0], &s, 1));
        drv_kick(&dqs[0]);
        CHECK(drv_get_used(&dqs[0], &id, &len));
        CHECK_EQ_U64(status() & ST_NRESET, 0);
        wr(VIRTIO_MMIO_REG_STATUS, 0);
    }
}

/* InterruptStatus and the line stay consistent while a device thread raises and a vCPU acks:
 * the raiser runs until the main thread has seen and acknowledged 20000 interrupts. */
static atomic_bool stop_raiser;

static void *raiser(void *arg)
{
    unsigned long *count = arg;

    while (!atomic_load(&stop_raiser)) {
        virtio_config_changed(vd);
        (*count)++;
    }
    return NULL;
}

static void test_irq_threads(void)
{
    pthread_t t;
    uint32_t gen;
    unsigned acks = 0, bad = 0;
    unsigned long raised = 0;

    fresh_device(0);
    CHECK(drv_init(BASIC, 8));
    gen = rd(VIRTIO_MMIO_REG_CONFIG_GENERATION);
    atomic_store(&stop_raiser, false);
    CHECK_EQ_U64(pthread_create(&t, NULL, raiser, &raised), 0);
    while (acks < 20000) {
        if (rd(VIRTIO_MMIO_REG_INTERRUPT_STATUS) & VIRTIO_INT_CONFIG_CHANGE) {
            /* Whenever a bit is pending, the line must be high. */
            if (!atomic_load(&irq_state.level))
                bad++;
            wr(VIRTIO_MMIO_REG_INTERRUPT_ACK, VIRTIO_INT_CONFIG_CHANGE);
            acks++;
        }
    }
    atomic_store(&stop_raiser, true);
    pthread_join(t, NULL);
    CHECK_EQ_U64(bad, 0);
    CHECK_EQ_U64(rd(VIRTIO_MMIO_REG_CONFIG_GENERATION), (uint32_t)(gen + raised));
    CHECK_EQ_U64(atomic_load(&irq_state.level), rd(VIRTIO_MMIO_REG_INTERRUPT_STATUS) != 0);
    wr(VIRTIO_MMIO_REG_INTERRUPT_ACK, 3);
    CHECK(!atomic_load(&irq_state.level));
}

int main(void)
{
    log_set_level(LOG_ERROR); /* the hostile cases log on purpose */
    if (ram_create(&ram, RAM_BASE, RAM_SIZE) != 0) {
        CHECK(!"mmap failed");
        return test_finish("test_virtio_mmio");
    }
    test_create_checks();
    test_init_sequence();
    test_feature_negotiation();
    test_queue_config();
    test_echo_and_irq();
    test_event_idx();
    test_no_interrupt_flag();
    test_indirect();
    test_wraparound();
    test_reset_mid_operation();
    test_config_space();
    test_needs_reset_api();
    test_access_sizes();
    test_hostile();
    test_irq_threads();
    virtio_mmio_destroy(vd);
    munmap(ram.host - PAGE, ram.size + 2 * PAGE);
    return test_finish("test_virtio_mmio");
}
