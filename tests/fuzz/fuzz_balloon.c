// clang-format off
// build: clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE -Isrc src/hw/virtio/virtio_balloon.c src/hw/virtio/virtio_mmio.c src/hw/virtio/vdev.c src/hw/virtio/virtqueue.c src/hw/guest_mem.c src/base/dirty.c src/base/codewatch.c src/base/log.c src/base/loop.c src/base/state.c src/base/ratelimit.c src/base/units.c tests/fuzz/fuzz_balloon.c -ljansson -pthread -o build/fuzz_balloon
// run:   build/fuzz_balloon -max_total_time=60 -max_len=70000 [corpus-dir]
// clang-format on
/* libFuzzer target for virtio-balloon as a hostile driver sees it: the real device behind the
 * real virtio-mmio transport, with rings and buffers in guest RAM the input fills, so inflate
 * lists and free page reports (virtio 1.2 §5.5.6.7) name any address, length and count.
 *
 * Input layout:
 *   [0]     features the driver accepts of those offered: bit 0 STATS_VQ, 1 REPORTING,
 *           2 RING_EVENT_IDX, 3 RING_INDIRECT_DESC, 4 DEFLATE_ON_OOM
 *   [1]     which of the five queues the driver sets up (bit q)
 *   [2]     log2 of every queue's size (bits 1..2: 2, 8, 32 or 128 entries)
 *   [3]     rounds (low 2 bits, plus one): each posts the next chains and kicks every queue
 *   [4..]   descriptors of 16 bytes: [0] queue (mod 5), [1] flags: 1 device-writable,
 *           2 the chain goes on with the next record, 4 the address is an offset into RAM
 *           (else it is used as it is: anywhere, wrapping), 8 the round ends after this one;
 *           [2..3] unused; [4..11] address (le64); [12..15] length (le32)
 * Queue q's rings are at RAM offset q * 0x3000 (descriptor table), + 0x1000 (avail) and
 * + 0x2000 (used), in the first 60 KiB; the buffers may overlap them, as a hostile driver can
 * arrange. The ring words the harness writes are what a driver writes; the rest is zero.
 *
 * Guest RAM is an anonymous mapping between two PROT_NONE guard pages, as the device releases
 * reported pages with madvise(): any access outside RAM faults. Queue work runs on the event
 * loop thread; each round ends once the loop has run a call queued after the kicks, twice, so
 * every kick's work is done before the next round and before the teardown. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/log.h"
#include "base/loop.h"
#include "hw/guest_mem.h"
#include "hw/virtio/vdev.h"
#include "hw/virtio/virtio_mmio.h"

#define RAM_BASE UINT64_C(0x80000000)
#define RAM_SIZE (64u * 1024)
#define HDR      4
#define REC      16
#define QUEUES   5

struct fq {
    bool ready;
    uint16_t num, avail_idx, next_desc;
};

static struct loop *loop;
static long page_size;

static void fuzz_irq_set(void *opaque, unsigned n, bool level)
{
    (void)opaque;
    (void)n;
    (void)level;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Writes the chain of records [r, end) into queue q's descriptor table and makes it available,
 * as a driver would (split ring, virtio 1.2 §2.7.5-2.7.6). */
static void post_chain(struct guest_ram *ram, struct fq *fq, unsigned q, const uint8_t *r,
                       unsigned n)
{
    uint8_t *desc = ram->host + q * 0x3000, *avail = desc + 0x1000;
    uint16_t head = fq->next_desc, idx = head;

    for (unsigned i = 0; i < n; i++, r += REC) {
        uint16_t next = (uint16_t)((idx + 1) % fq->num);
        uint64_t addr = get64(r + 4);
        uint32_t len = (uint32_t)(r[12] | r[13] << 8 | r[14] << 16 | (uint32_t)r[15] << 24);
        uint16_t flags = (uint16_t)((r[1] & 1 ? 2 : 0) | (i + 1 < n ? 1 : 0));

        if (r[1] & 4)
            addr = RAM_BASE + addr % RAM_SIZE;
        memcpy(desc + 16 * idx, &addr, 8);
        memcpy(desc + 16 * idx + 8, &len, 4);
        memcpy(desc + 16 * idx + 12, &flags, 2);
        memcpy(desc + 16 * idx + 14, i + 1 < n ? &next : &(uint16_t){0}, 2);
        idx = next;
    }
    fq->next_desc = idx;
    memcpy(avail + 4 + 2 * (fq->avail_idx % fq->num), &head, 2);
    fq->avail_idx++;
    __atomic_store_n((uint16_t *)(avail + 2), fq->avail_idx, __ATOMIC_RELEASE);
}

static void wr(struct virtio_dev *vd, uint64_t off, uint32_t v)
{
    virtio_mmio_ops.write(vd, off, 4, v);
}

static uint32_t rd(struct virtio_dev *vd, uint64_t off)
{
    uint64_t v = 0;

    virtio_mmio_ops.read(vd, off, 4, &v);
    return (uint32_t)v;
}

struct sync {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
};

static void sync_done(void *opaque)
{
    struct sync *s = opaque;

    pthread_mutex_lock(&s->lock);
    s->done = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

/* Returns once the loop has run everything that was ready before the call. */
static void loop_settle(void)
{
    for (int i = 0; i < 2; i++) {
        struct sync s = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};

        if (loop_call(loop, sync_done, &s))
            abort();
        pthread_mutex_lock(&s.lock);
        while (!s.done)
            pthread_cond_wait(&s.cond, &s.lock);
        pthread_mutex_unlock(&s.lock);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_set_level(LOG_ERROR); /* guest errors are the point here */
    page_size = sysconf(_SC_PAGESIZE);
    if (loop_create(&loop) || loop_start(loop))
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned feature_bit[] = {1, 5, 29, 28, 2};
    struct guest_ram ram = {0};
    struct vdev_env env = {0};
    struct irq_line line = {.set = fuzz_irq_set, .n = 1};
    const struct vdev_type *t = vdev_type_find("balloon");
    const struct virtio_device_ops *ops;
    struct virtio_dev *vd;
    char err[VDEV_ERR_LEN];
    uint8_t *map;
    uint64_t want = UINT64_C(1) << 32 /* VERSION_1 */, offered;
    struct fq fq[QUEUES] = {0};
    const uint8_t *rec = data + HDR, *end;
    void *dev;

    if (size < HDR || !t)
        return 0;
    map =
        mmap(NULL, RAM_SIZE + 2 * (size_t)page_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED)
        return 0;
    if (mprotect(map + page_size, RAM_SIZE, PROT_READ | PROT_WRITE) ||
        dirty_log_init(&ram.dirty, RAM_SIZE >> DIRTY_PAGE_SHIFT))
        goto unmap;
    ram.base = RAM_BASE;
    ram.size = RAM_SIZE;
    ram.host = map + page_size;
    end = rec + (size - HDR) / REC * REC;
    dirty_log_start(&ram.dirty);

    env.ram = &ram;
    env.loop = loop;
    if (t->create(&env, "", &dev, &ops, err))
        goto dirty;
    if (virtio_mmio_create(&ram, &line, ops, dev, &vd))
        goto device;
    t->attach(dev, vd);

    for (unsigned i = 0; i < sizeof(feature_bit) / sizeof(feature_bit[0]); i++) {
        if (data[0] & (1u << i))
            want |= UINT64_C(1) << feature_bit[i];
    }
    wr(vd, VIRTIO_MMIO_REG_DEVICE_FEATURES_SEL, 1);
    offered = (uint64_t)rd(vd, VIRTIO_MMIO_REG_DEVICE_FEATURES) << 32;
    wr(vd, VIRTIO_MMIO_REG_DEVICE_FEATURES_SEL, 0);
    offered |= rd(vd, VIRTIO_MMIO_REG_DEVICE_FEATURES);
    want &= offered;
    wr(vd, VIRTIO_MMIO_REG_STATUS, 1);
    wr(vd, VIRTIO_MMIO_REG_STATUS, 3);
    wr(vd, VIRTIO_MMIO_REG_DRIVER_FEATURES_SEL, 0);
    wr(vd, VIRTIO_MMIO_REG_DRIVER_FEATURES, (uint32_t)want);
    wr(vd, VIRTIO_MMIO_REG_DRIVER_FEATURES_SEL, 1);
    wr(vd, VIRTIO_MMIO_REG_DRIVER_FEATURES, (uint32_t)(want >> 32));
    wr(vd, VIRTIO_MMIO_REG_STATUS, 11);
    for (unsigned q = 0; q < QUEUES; q++) {
        uint64_t base = RAM_BASE + q * 0x3000;

        if (!(data[1] & (1u << q)))
            continue;
        fq[q] = (struct fq){.ready = true, .num = (uint16_t)(2u << (data[2] & 6))};
        wr(vd, VIRTIO_MMIO_REG_QUEUE_SEL, q);
        wr(vd, VIRTIO_MMIO_REG_QUEUE_NUM, fq[q].num);
        wr(vd, VIRTIO_MMIO_REG_QUEUE_DESC_LOW, (uint32_t)base);
        wr(vd, VIRTIO_MMIO_REG_QUEUE_DESC_HIGH, (uint32_t)(base >> 32));
        wr(vd, VIRTIO_MMIO_REG_QUEUE_DRIVER_LOW, (uint32_t)(base + 0x1000));
        wr(vd, VIRTIO_MMIO_REG_QUEUE_DRIVER_HIGH, (uint32_t)((base + 0x1000) >> 32));
        wr(vd, VIRTIO_MMIO_REG_QUEUE_DEVICE_LOW, (uint32_t)(base + 0x2000));
        wr(vd, VIRTIO_MMIO_REG_QUEUE_DEVICE_HIGH, (uint32_t)((base + 0x2000) >> 32));
        wr(vd, VIRTIO_MMIO_REG_QUEUE_READY, 1);
    }
    wr(vd, VIRTIO_MMIO_REG_STATUS, 15);
    for (unsigned r = 0; r < 1u + (data[3] & 3); r++) {
        /* Chains up to a round's end; a chain longer than its queue is cut at the queue. */
        while (rec < end) {
            unsigned q = rec[0] % QUEUES, n = 1;
            bool last;

            while (rec + n * REC < end && (rec[(n - 1) * REC + 1] & 2) &&
                   !(rec[(n - 1) * REC + 1] & 8) && n < fq[q].num)
                n++;
            last = rec[(n - 1) * REC + 1] & 8;
            if (fq[q].ready)
                post_chain(&ram, &fq[q], q, rec, n);
            rec += n * REC;
            if (last)
                break;
        }
        for (unsigned q = 0; q < QUEUES; q++)
            wr(vd, VIRTIO_MMIO_REG_QUEUE_NOTIFY, q);
        loop_settle();
    }

    virtio_mmio_reset(vd);
    virtio_mmio_destroy(vd);
device:
    t->destroy(dev);
dirty:
    dirty_log_destroy(&ram.dirty);
unmap:
    munmap(map, RAM_SIZE + 2 * (size_t)page_size);
    return 0;
}
