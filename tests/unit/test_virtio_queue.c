/* The split virtqueue on its own: rings built in guest RAM as a Linux driver builds them, popped
 * and pushed through virtqueue.h, and every way a hostile driver can break the rules.
 *
 * Guest RAM is an mmap with PROT_NONE guard pages on both sides, so any access the queue code
 * makes outside RAM faults at once (and ASan watches the host side). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/log.h"
#include "hw/virtio/virtqueue.h"
#include "test.h"

#define PAGE     4096u
#define RAM_BASE UINT64_C(0x80000000)
#define RAM_SIZE (1u << 20)

/* Areas inside RAM, as offsets from RAM_BASE. */
#define DESC_OFF  0x0000u
#define AVAIL_OFF 0x2000u
#define USED_OFF  0x3000u
#define IND_OFF   0x8000u /* indirect tables */
#define DATA_OFF  0x40000u

static int ram_create(struct guest_ram *ram, gpa_t base, uint64_t size)
{
    uint8_t *p =
        mmap(NULL, size + 2 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

    if (p == MAP_FAILED)
        return -errno;
    if (mprotect(p + PAGE, size, PROT_READ | PROT_WRITE) != 0) {
        munmap(p, size + 2 * PAGE);
        return -errno;
    }
    ram->base = base;
    ram->size = size;
    ram->host = p + PAGE;
    return 0;
}

static void ram_free(struct guest_ram *ram)
{
    munmap(ram->host - PAGE, ram->size + 2 * PAGE);
}

/* The driver's side of one queue. */
struct drv {
    struct guest_ram *ram;
    uint16_t num;
    gpa_t desc, avail, used;
    uint16_t avail_idx;
};

static void *gp(const struct drv *d, gpa_t a)
{
    return d->ram->host + (a - d->ram->base);
}

static struct virtq_desc *drv_desc(const struct drv *d, unsigned i)
{
    return (struct virtq_desc *)gp(d, d->desc) + i;
}

static struct virtq_avail *drv_avail(const struct drv *d)
{
    return gp(d, d->avail);
}

static struct virtq_used *drv_used(const struct drv *d)
{
    return gp(d, d->used);
}

static uint16_t *drv_used_event(const struct drv *d)
{
    return &drv_avail(d)->ring[d->num];
}

static uint16_t *drv_avail_event(const struct drv *d)
{
    return (uint16_t *)&drv_used(d)->ring[d->num];
}

static void set_desc(struct virtq_desc *t, unsigned i, gpa_t addr, uint32_t len, uint16_t flags,
                     uint16_t next)
{
    t[i] = (struct virtq_desc){.addr = addr, .len = len, .flags = flags, .next = next};
}

static void drv_publish(struct drv *d, uint16_t head)
{
    drv_avail(d)->ring[d->avail_idx % d->num] = head;
    d->avail_idx++;
    __atomic_store_n(&drv_avail(d)->idx, d->avail_idx, __ATOMIC_RELEASE);
}

static unsigned errors_seen;

static void on_error(void *opaque)
{
    (void)opaque;
    errors_seen++;
}

/* A fresh queue of `num` entries over zeroed rings. */
static int setup(struct virtq *vq, struct drv *d, struct guest_ram *ram, uint16_t num,
                 bool event_idx, bool indirect)
{
    struct virtq_config cfg = {
        .num = num,
        .desc = RAM_BASE + DESC_OFF,
        .avail = RAM_BASE + AVAIL_OFF,
        .used = RAM_BASE + USED_OFF,
        .event_idx = event_idx,
        .indirect = indirect,
    };

    memset(ram->host, 0, DATA_OFF);
    *d = (struct drv){
        .ram = ram, .num = num, .desc = cfg.desc, .avail = cfg.avail, .used = cfg.used};
    virtq_init(vq, "test", 0, on_error, NULL);
    errors_seen = 0;
    return virtq_setup(vq, ram, &cfg);
}

static struct virtq_req req; /* big: keep it off the stack */

static void test_basic(struct guest_ram *ram)
{
    struct virtq vq;
    struct drv d;
    gpa_t out = RAM_BASE + DATA_OFF, in = RAM_BASE + DATA_OFF + 0x100;
    char buf[32];

    CHECK_EQ_U64(setup(&vq, &d, ram, 8, false, false), 0);
    CHECK(virtq_ready(&vq));
    CHECK_EQ_U64(virtq_pop(&vq, &req), 0); /* empty */

    memcpy(gp(&d, out), "hello, device!!", 16);
    set_desc(drv_desc(&d, 0), 3, out, 16, VIRTQ_DESC_F_NEXT, 5);
    set_desc(drv_desc(&d, 0), 5, in, 32, VIRTQ_DESC_F_WRITE, 0);
    drv_publish(&d, 3);

    CHECK_EQ_U64(virtq_pop(&vq, &req), 1);
    CHECK_EQ_U64(req.head, 3);
    CHECK_EQ_U64(req.nout, 1);
    CHECK_EQ_U64(req.nin, 1);
    CHECK(req.out[0].iov_base == gp(&d, out));
    CHECK(req.in[0].iov_base == gp(&d, in));
    CHECK_EQ_U64(req.out_len, 16);
    CHECK_EQ_U64(req.in_len, 32);
    CHECK_EQ_U64(virtq_req_read(&req, 7, buf, sizeof(buf)), 9);
    CHECK(memcmp(buf, "device!!", 9) == 0);
    CHECK_EQ_U64(virtq_req_write(&req, 30, "xyz", 3), 2);
    CHECK(memcmp((char *)gp(&d, in) + 30, "xy", 2) == 0);
    CHECK_EQ_U64(virtq_pop(&vq, &req), 0);

    virtq_push(&vq, &req, 5);
    CHECK_EQ_U64(drv_used(&d)->idx, 1);
    CHECK_EQ_U64(drv_used(&d)->ring[0].id, 3);
    CHECK_EQ_U64(drv_used(&d)->ring[0].len, 5);
    /* A device claiming more than the chain holds is clamped. */
    drv_publish(&d, 3);
    CHECK_EQ_U64(virtq_pop(&vq, &req), 1);
    virtq_push(&vq, &req, 1000);
    CHECK_EQ_U64(drv_used(&d)->ring[1].len, 32);
    CHECK_EQ_U64(errors_seen, 0);

    /* Not ready: pop finds nothing and push writes nothing. */
    virtq_reset(&vq);
    CHECK(!virtq_ready(&vq));
    drv_publish(&d, 3);
    CHECK_EQ_U64(virtq_pop(&vq, &req), 0);
    virtq_push(&vq, &req, 1);
    CHECK_EQ_U64(drv_used(&d)->idx, 2);
}

/* Out and in segments spread over the table in no particular order, as Linux's free list
 * leaves them after a while. */
static void test_mixed_chain(struct guest_ram *ram)
{
    struct virtq vq;
    struct drv d;
    struct virtq_desc *t;
    gpa_t data = RAM_BASE + DATA_OFF;
    char buf[64];

    CHECK_EQ_U64(setup(&vq, &d, ram, 16, false, false), 0);
    t = drv_desc(&d, 0);
    memcpy(gp(&d, data), "abc", 3);
    memcpy(gp(&d, data + 0x100), "defgh", 5);
    set_desc(t, 9, data, 3, VIRTQ_DESC_F_NEXT, 2);
    set_desc(t, 2, data + 0x100, 5, VIRTQ_DESC_F_NEXT, 15);
    set_desc(t, 15, data + 0x200, 4, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 0);
    set_desc(t, 0, data + 0x300, 0, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 7);
    set_desc(t, 7, data + 0x400, 10, VIRTQ_DESC_F_WRITE, 0);
    drv_publish(&d, 9);

    CHECK_EQ_U64(virtq_pop(&vq, &req), 1);
    CHECK_EQ_U64(req.nout, 2);
    CHECK_EQ_U64(req.nin, 3);
    CHECK_EQ_U64(req.out_len, 8);
    CHECK_EQ_U64(req.in_len, 14);
    CHECK(req.in == req.out + 2);
    CHECK_EQ_U64(req.in[1].iov_len, 0);
    CHECK_EQ_U64(virtq_req_read(&req, 0, buf, sizeof(buf)), 8);
    CHECK(memcmp(buf, "abcdefgh", 8) == 0);
    CHECK_EQ_U64(virtq_req_read(&req, 2, buf, 3), 3);
    CHECK(memcmp(buf, "cde", 3) == 0);
    CHECK_EQ_U64(virtq_req_write(&req, 2, "0123456789ab", 12), 12);
    CHECK(memcmp(gp(&d, data + 0x202), "01", 2) == 0);
    CHECK(memcmp(gp(&d, data + 0x400), "23456789ab", 10) == 0);
    virtq_push(&vq, &req, 14);
    CHECK_EQ_U64(drv_used(&d)->ring[0].id, 9);
    CHECK_EQ_U64(drv_used(&d)->ring[0].len, 14);
    CHECK_EQ_U64(errors_seen, 0);
}

static void test_indirect(struct guest_ram *ram)
{
    struct virtq vq;
    struct drv d;
    /* Indirect tables need not be 16-byte aligned: put this one at +8. */
    gpa_t ind = RAM_BASE + IND_OFF + 8, data = RAM_BASE + DATA_OFF;
    struct virtq_desc *it;
    char buf[16];

    CHECK_EQ_U64(setup(&vq, &d, ram, 4, false, true), 0);
    it = gp(&d, ind);
    memcpy(gp(&d, data), "indirect", 8);
    set_desc(it, 0, data, 8, VIRTQ_DESC_F_NEXT, 2);
    set_desc(it, 2, data + 0x10, 4, VIRTQ_DESC_F_NEXT, 1);
    set_desc(it, 1, data + 0x100, 64, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 3);
    set_desc(it, 3, data + 0x200, 64, VIRTQ_DESC_F_WRITE, 0);
    /* The WRITE flag on the pointing descriptor is ignored (§2.7.5.3.2). */
    set_desc(drv_desc(&d, 0), 1, ind, 4 * 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
    drv_publish(&d, 1);
    CHECK_EQ_U64(virtq_pop(&vq, &req), 1);
    CHECK_EQ_U64(req.head, 1);
    CHECK_EQ_U64(req.nout, 2);
    CHECK_EQ_U64(req.nin, 2);
    CHECK_EQ_U64(req.out_len, 12);
    CHECK_EQ_U64(req.in_len, 128);
    CHECK_EQ_U64(virtq_req_read(&req, 0, buf, 8), 8);
    CHECK(memcmp(buf, "indirect", 8) == 0);
    virtq_push(&vq, &req, 0);

    /* Zero or more direct descriptors, then one indirect (§2.7.5.3.2). */
    set_desc(drv_desc(&d, 0), 2, data + 0x300, 16, VIRTQ_DESC_F_NEXT, 3);
    set_desc(drv_desc(&d, 0), 3, ind + 32, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
    /* The sub-table is it[2..3]; its `next` indices count from its own start. */
    set_desc(it, 2, data + 0x10, 4, VIRTQ_DESC_F_NEXT, 1);
    set_desc(it, 3, data + 0x200, 64, VIRTQ_DESC_F_WRITE, 0);
    drv_publish(&d, 2);
    CHECK_EQ_U64(virtq_pop(&vq, &req), 1);
    CHECK_EQ_U64(req.nout, 2);
    CHECK_EQ_U64(req.nin, 1);
    CHECK_EQ_U64(req.out_len, 20);
    CHECK_EQ_U64(req.in_len, 64);
    CHECK_EQ_U64(errors_seen, 0);
}

/* 70000 requests through an 8-entry queue: avail and used indices wrap past 65535. */
static void test_wraparound(struct guest_ram *ram)
{
    struct virtq vq;
    struct drv d;
    gpa_t data = RAM_BASE + DATA_OFF;
    unsigned bad = 0, n = 0;

    CHECK_EQ_U64(setup(&vq, &d, ram, 8, true, false), 0);

    for (unsigned i = 0; i < 8; i++)
        set_desc(drv_desc(&d, 0), i, data + i * 0x100, 8, VIRTQ_DESC_F_WRITE, 0);
    while (n < 70000) {
        unsigned batch = 1 + n % 8; /* 1..8 chains per round, up to a full queue */

        for (unsigned k = 0; k < batch; k++)
            drv_publish(&d, (uint16_t)((n + k) % 8));
        for (unsigned k = 0; k < batch; k++) {
            if (virtq_pop(&vq, &req) != 1 || req.head != (n + k) % 8)
                bad++;
            virtq_push(&vq, &req, (uint32_t)k);
        }
        if (virtq_pop(&vq, &req) != 0)
            bad++;
        if (*drv_avail_event(&d) != d.avail_idx)
            bad++;
        for (unsigned k = 0; k < batch; k++) {
            const struct virtq_used_elem *e = &drv_used(&d)->ring[(uint16_t)(n + k) % 8];

            if (e->id != (n + k) % 8 || e->len != k)
                bad++;
        }
        n += batch;
        if (drv_used(&d)->idx != (uint16_t)n)
            bad++;
    }
    CHECK_EQ_U64(bad, 0);
    CHECK(n > 65536);
    CHECK_EQ_U64(d.avail_idx, (uint16_t)n); /* both indices wrapped */
    CHECK_EQ_U64(drv_used(&d)->idx, (uint16_t)n);
    CHECK_EQ_U64(errors_seen, 0);
}

/* §2.7.10 with VIRTIO_F_RING_EVENT_IDX: no notification until used->idx passes used_event,
 * avail_event tracks the device's position. */
static void test_event_idx(struct guest_ram *ram)
{
    struct virtq vq;
    struct drv d;
    gpa_t data = RAM_BASE + DATA_OFF;

    CHECK_EQ_U64(setup(&vq, &d, ram, 8, true, false), 0);
    set_desc(drv_desc(&d, 0), 0, data, 8, VIRTQ_DESC_F_WRITE, 0);
    CHECK(!virtq_needs_notify(&vq)); /* nothing pushed */
    *drv_used_event(&d) = 2;         /* "interrupt me when entry 2 is used" */
    for (unsigned i = 0; i < 4; i++)
        drv_publish(&d, 0);
    CHECK_EQ_U64(virtq_pop(&vq, &req), 1);
    CHECK_EQ_U64(*drv_avail_event(&d), 1);
    virtq_push(&vq, &req, 0);
    CHECK(!virtq_needs_notify(&vq)); /* used 1 */
    CHECK_EQ_U64(virtq_pop(&vq, &req), 1);
    virtq_push(&vq, &req, 0);
    CHECK(!virtq_needs_notify(&vq)); /* used 2 */
    CHECK_EQ_U64(virtq_pop(&vq, &req), 1);
    virtq_push(&vq, &req, 0);
    CHECK(virtq_needs_notify(&vq)); /* used 3: entry 2 is used */
    CHECK_EQ_U64(virtq_pop(&vq, &req), 1);
    virtq_push(&vq, &req, 0);
    CHECK(!virtq_needs_notify(&vq)); /* used_event still 2: passed already */
    CHECK_EQ_U64(*drv_avail_event(&d), 4);
    /* A batch crossing used_event notifies once. */
    *drv_used_event(&d) = 5;
    for (unsigned i = 0; i < 3; i++)
        drv_publish(&d, 0);
    for (unsigned i = 0; i < 3; i++) {
        CHECK_EQ_U64(virtq_pop(&vq, &req), 1);
        virtq_push(&vq, &req, 0);
    }
    CHECK(virtq_needs_notify(&vq));
    CHECK(!virtq_needs_notify(&vq));
    /* The flag is ignored with EVENT_IDX. */
    drv_avail(&d)->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
    *drv_used_event(&d) = 7;
    drv_publish(&d, 0);
    CHECK_EQ_U64(virtq_pop(&vq, &req), 1);
    virtq_push(&vq, &req, 0);
    CHECK(virtq_needs_notify(&vq));

    /* Polling device: disabled notifications leave avail_event alone; enabling republishes it
     * and reports buffers that arrived meanwhile. */
    virtq_disable_notify(&vq);
    drv_publish(&d, 0);
    CHECK_EQ_U64(virtq_pop(&vq, &req), 1);
    CHECK_EQ_U64(*drv_avail_event(&d), 8);
    virtq_push(&vq, &req, 0);
    drv_publish(&d, 0);
    CHECK(virtq_enable_notify(&vq));
    CHECK_EQ_U64(*drv_avail_event(&d), 9);
    CHECK_EQ_U64(virtq_pop(&vq, &req), 1);
    virtq_push(&vq, &req, 0);
    CHECK(!virtq_enable_notify(&vq));
    CHECK_EQ_U64(*drv_avail_event(&d), 10);

    /* unpop hands the same chain out again and rewinds avail_event. */
    drv_publish(&d, 0);
    CHECK_EQ_U64(virtq_pop(&vq, &req), 1);
    CHECK_EQ_U64(*drv_avail_event(&d), 11);
    virtq_unpop(&vq);
    CHECK_EQ_U64(*drv_avail_event(&d), 10);
    CHECK_EQ_U64(virtq_pop(&vq, &req), 1);
    CHECK_EQ_U64(virtq_pop(&vq, &req), 0);
    CHECK_EQ_U64(errors_seen, 0);
}

/* Without EVENT_IDX: the NO_INTERRUPT flag (§2.7.7) and NO_NOTIFY for polling devices. */
static void test_flags(struct guest_ram *ram)
{
    struct virtq vq;
    struct drv d;

    CHECK_EQ_U64(setup(&vq, &d, ram, 4, false, false), 0);
    set_desc(drv_desc(&d, 0), 0, RAM_BASE + DATA_OFF, 8, VIRTQ_DESC_F_WRITE, 0);
    *drv_used_event(&d) = 100; /* must be ignored */
    drv_publish(&d, 0);
    CHECK_EQ_U64(virtq_pop(&vq, &req), 1);
    virtq_push(&vq, &req, 0);
    CHECK(virtq_needs_notify(&vq));
    CHECK(!virtq_needs_notify(&vq)); /* nothing new */
    drv_avail(&d)->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
    drv_publish(&d, 0);
    CHECK_EQ_U64(virtq_pop(&vq, &req), 1);
    virtq_push(&vq, &req, 0);
    CHECK(!virtq_needs_notify(&vq));
    drv_avail(&d)->flags = 0;
    drv_publish(&d, 0);
    CHECK_EQ_U64(virtq_pop(&vq, &req), 1);
    virtq_push(&vq, &req, 0);
    CHECK(virtq_needs_notify(&vq));
    CHECK_EQ_U64(*drv_avail_event(&d), 0); /* never written without EVENT_IDX */

    virtq_disable_notify(&vq);
    CHECK_EQ_U64(drv_used(&d)->flags, VIRTQ_USED_F_NO_NOTIFY);
    CHECK(!virtq_enable_notify(&vq));
    CHECK_EQ_U64(drv_used(&d)->flags, 0);
    virtq_disable_notify(&vq);
    drv_publish(&d, 0);
    CHECK(virtq_enable_notify(&vq));
    CHECK_EQ_U64(errors_seen, 0);
}

static void test_setup_checks(struct guest_ram *ram)
{
    struct virtq vq;
    struct virtq_config ok = {.num = 8,
                              .desc = RAM_BASE + DESC_OFF,
                              .avail = RAM_BASE + AVAIL_OFF,
                              .used = RAM_BASE + USED_OFF};
    struct virtq_config c;
    const uint64_t end = RAM_BASE + RAM_SIZE;

    virtq_init(&vq, "test", 0, NULL, NULL);
    CHECK_EQ_U64(virtq_setup(&vq, ram, &ok), 0);
    CHECK(virtq_ready(&vq));
#define BAD(field, value)                                           \
    do {                                                            \
        c = ok;                                                     \
        c.field = value;                                            \
        CHECK_EQ_U64(virtq_setup(&vq, ram, &c), (uint64_t)-EINVAL); \
        CHECK(!virtq_ready(&vq));                                   \
    } while (0)
    BAD(num, 0);
    BAD(num, 6);
    BAD(num, 65536);
    BAD(num, 0x80000000u);
    BAD(desc, RAM_BASE + 8);      /* 16-byte alignment */
    BAD(avail, RAM_BASE + 0x101); /* 2-byte alignment */
    BAD(used, RAM_BASE + 0x102);  /* 4-byte alignment */
    BAD(desc, RAM_BASE - 16);
    BAD(desc, end - 16 * 8 + 16); /* runs past the end */
    BAD(avail, end - 6 - 2 * 8 + 2);
    BAD(used, end - 6 - 8 * 8 + 2);
    BAD(used, 0);
    BAD(desc, UINT64_C(0xfffffffffffffff0)); /* wraps */
#undef BAD
    c = ok;
    c.desc = end - 16 * 8; /* exactly at the end is fine */
    c.avail = end - 6 - 2 * 8 - 0x1000;
    c.used = end - (6 + 8 * 8 + 2); /* 4-aligned, ends 2 bytes short of the end */
    CHECK_EQ_U64(virtq_setup(&vq, ram, &c), 0);
    c.num = 32768;
    c.desc = RAM_BASE;
    c.avail = RAM_BASE + 0x80000;
    c.used = RAM_BASE + 0x90000;
    CHECK_EQ_U64(virtq_setup(&vq, ram, &c), 0);
}

/* One hostile chain: the pop must fail, break the queue, report once and write nothing. */
struct hostile {
    const char *name;
    void (*build)(struct drv *d);
    bool indirect;
};

static void h_loop2(struct drv *d)
{
    set_desc(drv_desc(d, 0), 0, RAM_BASE + DATA_OFF, 8, VIRTQ_DESC_F_NEXT, 1);
    set_desc(drv_desc(d, 0), 1, RAM_BASE + DATA_OFF, 8, VIRTQ_DESC_F_NEXT, 0);
    drv_publish(d, 0);
}

static void h_self_loop(struct drv *d)
{
    set_desc(drv_desc(d, 0), 3, RAM_BASE + DATA_OFF, 8, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 3);
    drv_publish(d, 3);
}

static void h_next_range(struct drv *d)
{
    set_desc(drv_desc(d, 0), 0, RAM_BASE + DATA_OFF, 8, VIRTQ_DESC_F_NEXT, d->num);
    drv_publish(d, 0);
}

static void h_addr_beyond(struct drv *d)
{
    set_desc(drv_desc(d, 0), 0, RAM_BASE + RAM_SIZE, 1, 0, 0);
    drv_publish(d, 0);
}

static void h_addr_straddle(struct drv *d)
{
    set_desc(drv_desc(d, 0), 0, RAM_BASE + RAM_SIZE - 4, 8, VIRTQ_DESC_F_WRITE, 0);
    drv_publish(d, 0);
}

static void h_addr_below(struct drv *d)
{
    set_desc(drv_desc(d, 0), 0, RAM_BASE - 4096, 16, 0, 0);
    drv_publish(d, 0);
}

static void h_addr_zero_len_outside(struct drv *d)
{
    set_desc(drv_desc(d, 0), 0, 0x1000, 0, 0, 0);
    drv_publish(d, 0);
}

static void h_wrap(struct drv *d)
{
    set_desc(drv_desc(d, 0), 0, UINT64_C(0xfffffffffffff000), 0x2000, VIRTQ_DESC_F_WRITE, 0);
    drv_publish(d, 0);
}

static void h_len_max(struct drv *d)
{
    set_desc(drv_desc(d, 0), 0, RAM_BASE, 0xffffffffu, VIRTQ_DESC_F_WRITE, 0);
    drv_publish(d, 0);
}

static void h_second_seg_bad(struct drv *d)
{
    set_desc(drv_desc(d, 0), 0, RAM_BASE + DATA_OFF, 8, VIRTQ_DESC_F_NEXT, 1);
    set_desc(drv_desc(d, 0), 1, UINT64_C(0x4000000000), 8, VIRTQ_DESC_F_WRITE, 0);
    drv_publish(d, 0);
}

static void h_ind_outside(struct drv *d)
{
    set_desc(drv_desc(d, 0), 0, RAM_BASE + RAM_SIZE - 32, 64, VIRTQ_DESC_F_INDIRECT, 0);
    drv_publish(d, 0);
}

static void h_ind_len_odd(struct drv *d)
{
    set_desc(drv_desc(d, 0), 0, RAM_BASE + IND_OFF, 24, VIRTQ_DESC_F_INDIRECT, 0);
    drv_publish(d, 0);
}

static void h_ind_empty(struct drv *d)
{
    set_desc(drv_desc(d, 0), 0, RAM_BASE + IND_OFF, 0, VIRTQ_DESC_F_INDIRECT, 0);
    drv_publish(d, 0);
}

static void h_ind_nested(struct drv *d)
{
    struct virtq_desc *it = gp(d, RAM_BASE + IND_OFF);

    set_desc(it, 0, RAM_BASE + DATA_OFF, 8, VIRTQ_DESC_F_NEXT, 1);
    set_desc(it, 1, RAM_BASE + IND_OFF, 32, VIRTQ_DESC_F_INDIRECT, 0);
    set_desc(drv_desc(d, 0), 0, RAM_BASE + IND_OFF, 32, VIRTQ_DESC_F_INDIRECT, 0);
    drv_publish(d, 0);
}

static void h_ind_next(struct drv *d)
{
    struct virtq_desc *it = gp(d, RAM_BASE + IND_OFF);

    set_desc(it, 0, RAM_BASE + DATA_OFF, 8, 0, 0);
    set_desc(drv_desc(d, 0), 0, RAM_BASE + IND_OFF, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT,
             1);
    set_desc(drv_desc(d, 0), 1, RAM_BASE + DATA_OFF, 8, VIRTQ_DESC_F_WRITE, 0);
    drv_publish(d, 0);
}

static void h_ind_loop(struct drv *d)
{
    struct virtq_desc *it = gp(d, RAM_BASE + IND_OFF);

    set_desc(it, 0, RAM_BASE + DATA_OFF, 8, VIRTQ_DESC_F_NEXT, 1);
    set_desc(it, 1, RAM_BASE + DATA_OFF, 8, VIRTQ_DESC_F_NEXT, 0);
    set_desc(drv_desc(d, 0), 0, RAM_BASE + IND_OFF, 32, VIRTQ_DESC_F_INDIRECT, 0);
    drv_publish(d, 0);
}

static void h_ind_next_range(struct drv *d)
{
    struct virtq_desc *it = gp(d, RAM_BASE + IND_OFF);

    set_desc(it, 0, RAM_BASE + DATA_OFF, 8, VIRTQ_DESC_F_NEXT, 2); /* table has 2 entries */
    set_desc(drv_desc(d, 0), 0, RAM_BASE + IND_OFF, 32, VIRTQ_DESC_F_INDIRECT, 0);
    drv_publish(d, 0);
}

static void h_ind_entry_outside(struct drv *d)
{
    struct virtq_desc *it = gp(d, RAM_BASE + IND_OFF);

    set_desc(it, 0, RAM_BASE + RAM_SIZE, 8, VIRTQ_DESC_F_WRITE, 0);
    set_desc(drv_desc(d, 0), 0, RAM_BASE + IND_OFF, 16, VIRTQ_DESC_F_INDIRECT, 0);
    drv_publish(d, 0);
}

static void h_ind_too_long(struct drv *d)
{
    struct virtq_desc *it = gp(d, RAM_BASE + IND_OFF);

    for (unsigned i = 0; i < VIRTQ_MAX_SEGS + 1; i++)
        set_desc(it, i, RAM_BASE + DATA_OFF, 1, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT,
                 (uint16_t)(i + 1));
    it[VIRTQ_MAX_SEGS].flags = VIRTQ_DESC_F_WRITE;
    set_desc(drv_desc(d, 0), 0, RAM_BASE + IND_OFF, (VIRTQ_MAX_SEGS + 1) * 16,
             VIRTQ_DESC_F_INDIRECT, 0);
    drv_publish(d, 0);
}

static void h_read_after_write(struct drv *d)
{
    set_desc(drv_desc(d, 0), 0, RAM_BASE + DATA_OFF, 8, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
    set_desc(drv_desc(d, 0), 1, RAM_BASE + DATA_OFF, 8, 0, 0);
    drv_publish(d, 0);
}

static void h_avail_jump(struct drv *d)
{
    set_desc(drv_desc(d, 0), 0, RAM_BASE + DATA_OFF, 8, 0, 0);
    d->avail_idx = (uint16_t)(d->num + 1);
    drv_avail(d)->idx = d->avail_idx;
}

static void h_avail_backwards(struct drv *d)
{
    set_desc(drv_desc(d, 0), 0, RAM_BASE + DATA_OFF, 8, 0, 0);
    drv_avail(d)->idx = 0xffff; /* 65535 ahead of 0, i.e. "one behind" */
}

static void h_head_range(struct drv *d)
{
    drv_publish(d, d->num);
}

static void h_head_max(struct drv *d)
{
    drv_publish(d, 0xffff);
}

static void h_no_indirect_feature(struct drv *d)
{
    struct virtq_desc *it = gp(d, RAM_BASE + IND_OFF);

    set_desc(it, 0, RAM_BASE + DATA_OFF, 8, 0, 0);
    set_desc(drv_desc(d, 0), 0, RAM_BASE + IND_OFF, 16, VIRTQ_DESC_F_INDIRECT, 0);
    drv_publish(d, 0);
}

static void test_hostile(struct guest_ram *ram)
{
    static const struct hostile cases[] = {
        {"descriptor loop", h_loop2, true},
        {"self loop", h_self_loop, true},
        {"next out of range", h_next_range, true},
        {"address at end of RAM", h_addr_beyond, true},
        {"buffer straddling the end of RAM", h_addr_straddle, true},
        {"address below RAM", h_addr_below, true},
        {"zero-length buffer outside RAM", h_addr_zero_len_outside, true},
        {"address + len wraps 2^64", h_wrap, true},
        {"len 0xffffffff", h_len_max, true},
        {"second buffer outside RAM", h_second_seg_bad, true},
        {"indirect table outside RAM", h_ind_outside, true},
        {"indirect len not a multiple of 16", h_ind_len_odd, true},
        {"indirect len 0", h_ind_empty, true},
        {"nested indirect", h_ind_nested, true},
        {"indirect with next", h_ind_next, true},
        {"loop inside indirect table", h_ind_loop, true},
        {"next beyond indirect table", h_ind_next_range, true},
        {"indirect entry outside RAM", h_ind_entry_outside, true},
        {"more than VIRTQ_MAX_SEGS buffers", h_ind_too_long, true},
        {"readable after writable", h_read_after_write, true},
        {"avail idx jumps more than num", h_avail_jump, true},
        {"avail idx moves backwards", h_avail_backwards, true},
        {"head out of range", h_head_range, true},
        {"head 0xffff", h_head_max, true},
        {"indirect without the feature", h_no_indirect_feature, false},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct virtq vq;
        struct drv d;
        int rc;

        CHECK_EQ_U64(setup(&vq, &d, ram, 8, i % 2 == 0, cases[i].indirect), 0);
        cases[i].build(&d);
        rc = virtq_pop(&vq, &req);
        if (rc != -EINVAL)
            fprintf(stderr, "hostile case \"%s\": pop returned %d\n", cases[i].name, rc);
        CHECK_EQ_U64(rc, (uint64_t)-EINVAL);
        CHECK_EQ_U64(errors_seen, 1);
        CHECK_EQ_U64(virtq_pop(&vq, &req), (uint64_t)-EINVAL); /* stays broken */
        CHECK_EQ_U64(errors_seen, 1);                          /* reported once */
        CHECK_EQ_U64(drv_used(&d)->idx, 0);
        CHECK_EQ_U64(drv_used(&d)->ring[0].id, 0);
    }
}

/* Exactly VIRTQ_MAX_SEGS buffers and exactly num descriptors are legal; 4 GiB + 1 is not. */
static void test_limits(struct guest_ram *ram)
{
    struct virtq vq;
    struct drv d;
    struct virtq_desc *it;
    struct guest_ram big = {0}; /* zeroed: the dirty log stays off */

    CHECK_EQ_U64(setup(&vq, &d, ram, 8, false, true), 0);
    it = gp(&d, RAM_BASE + IND_OFF);
    for (unsigned i = 0; i < VIRTQ_MAX_SEGS; i++)
        set_desc(it, i, RAM_BASE + DATA_OFF + i, 1, VIRTQ_DESC_F_NEXT, (uint16_t)(i + 1));
    it[VIRTQ_MAX_SEGS - 1].flags = 0;
    set_desc(drv_desc(&d, 0), 0, RAM_BASE + IND_OFF, VIRTQ_MAX_SEGS * 16, VIRTQ_DESC_F_INDIRECT, 0);
    drv_publish(&d, 0);
    CHECK_EQ_U64(virtq_pop(&vq, &req), 1);
    CHECK_EQ_U64(req.nout, VIRTQ_MAX_SEGS);
    CHECK_EQ_U64(req.out_len, VIRTQ_MAX_SEGS);

    for (unsigned i = 0; i < 8; i++)
        set_desc(drv_desc(&d, 0), i, RAM_BASE + DATA_OFF, 4, VIRTQ_DESC_F_NEXT, (uint16_t)(i + 1));
    drv_desc(&d, 0)[7].flags = VIRTQ_DESC_F_WRITE;
    drv_desc(&d, 0)[6].flags |= VIRTQ_DESC_F_WRITE;
    drv_publish(&d, 0);
    CHECK_EQ_U64(virtq_pop(&vq, &req), 1);
    CHECK_EQ_U64(req.nout, 6);
    CHECK_EQ_U64(req.nin, 2);
    /* All 8 entries in flight at once (pending == num) is legal. */
    for (unsigned i = 0; i < 8; i++)
        drv_publish(&d, 7);
    for (unsigned i = 0; i < 8; i++)
        CHECK_EQ_U64(virtq_pop(&vq, &req), 1);
    CHECK_EQ_U64(errors_seen, 0);

    /* §2.7.4.2: at most 2^32 bytes per chain. Five 1 GiB buffers in a 1 GiB RAM that is never
     * touched beyond its first pages. */
    if (ram_create(&big, RAM_BASE, UINT64_C(1) << 30) == 0) {
        struct virtq_config cfg = {
            .num = 8, .desc = RAM_BASE, .avail = RAM_BASE + 0x1000, .used = RAM_BASE + 0x2000};
        struct drv bd = {
            .ram = &big, .num = 8, .desc = cfg.desc, .avail = cfg.avail, .used = cfg.used};

        virtq_init(&vq, "big", 0, on_error, NULL);
        errors_seen = 0;
        CHECK_EQ_U64(virtq_setup(&vq, &big, &cfg), 0);
        for (unsigned i = 0; i < 4; i++)
            set_desc(drv_desc(&bd, 0), i, RAM_BASE, 1u << 30, VIRTQ_DESC_F_NEXT, (uint16_t)(i + 1));
        set_desc(drv_desc(&bd, 0), 4, RAM_BASE, 1, VIRTQ_DESC_F_WRITE, 0);
        drv_publish(&bd, 0);
        CHECK_EQ_U64(virtq_pop(&vq, &req), (uint64_t)-EINVAL);
        CHECK_EQ_U64(errors_seen, 1);
        /* Exactly 4 GiB is legal. */
        CHECK_EQ_U64(virtq_setup(&vq, &big, &cfg), 0);
        set_desc(drv_desc(&bd, 0), 3, RAM_BASE, 1u << 30, VIRTQ_DESC_F_WRITE, 0);
        CHECK_EQ_U64(virtq_pop(&vq, &req), 1);
        CHECK_EQ_U64(req.out_len + req.in_len, UINT64_C(1) << 32);
        ram_free(&big);
    } else {
        CHECK(!"could not map 1 GiB of address space");
    }
}

int main(void)
{
    struct guest_ram ram = {0}; /* zeroed: the dirty log stays off */

    log_set_level(LOG_ERROR); /* the hostile cases log on purpose */
    if (ram_create(&ram, RAM_BASE, RAM_SIZE) != 0) {
        CHECK(!"mmap failed");
        return test_finish("test_virtio_queue");
    }
    test_basic(&ram);
    test_mixed_chain(&ram);
    test_indirect(&ram);
    test_wraparound(&ram);
    test_event_idx(&ram);
    test_flags(&ram);
    test_setup_checks(&ram);
    test_hostile(&ram);
    test_limits(&ram);
    ram_free(&ram);
    return test_finish("test_virtio_queue");
}
