/* A small virtio-mmio (version 2) driver for the hostile-guest tests: probing, the
 * initialisation sequence of virtio 1.2 §3.1.1, split virtqueues in guest RAM (§2.7), kicks,
 * and polling of the used ring, Status and InterruptStatus with a timeout. It does exactly what
 * it is told, so a test can also break every rule on purpose: build descriptors by hand, write
 * any register, publish any head.
 *
 * Memory: each slot owns 1 MiB of DMA arena (DMA_ARENA + slot * 1 MiB), a bump allocator that
 * vd_reset() rewinds. Everything it hands out is zeroed. */
#ifndef TESSERA_HOSTILE_VIRTIO_DRV_H
#define TESSERA_HOSTILE_VIRTIO_DRV_H

#include <stdint.h>

#include "hostile.h"

#define VIRTIO_MMIO_BASE   0x10001000UL
#define VIRTIO_MMIO_STRIDE 0x1000UL
#define VIRTIO_SLOTS       8

/* Registers (virtio 1.2 §4.2.2). */
#define VM_MAGIC        0x000
#define VM_VERSION      0x004
#define VM_DEVICE_ID    0x008
#define VM_VENDOR_ID    0x00c
#define VM_DEV_FEAT     0x010
#define VM_DEV_FEAT_SEL 0x014
#define VM_DRV_FEAT     0x020
#define VM_DRV_FEAT_SEL 0x024
#define VM_QUEUE_SEL    0x030
#define VM_QUEUE_NUMMAX 0x034
#define VM_QUEUE_NUM    0x038
#define VM_QUEUE_READY  0x044
#define VM_QUEUE_NOTIFY 0x050
#define VM_ISR          0x060
#define VM_ISR_ACK      0x064
#define VM_STATUS       0x070
#define VM_DESC_LO      0x080
#define VM_DESC_HI      0x084
#define VM_DRIVER_LO    0x090
#define VM_DRIVER_HI    0x094
#define VM_DEVICE_LO    0x0a0
#define VM_DEVICE_HI    0x0a4
#define VM_CONFIG_GEN   0x0fc
#define VM_CONFIG       0x100

#define VIRTIO_MAGIC 0x74726976

/* Status bits (§2.1). */
#define ST_ACK         1
#define ST_DRIVER      2
#define ST_DRIVER_OK   4
#define ST_FEATURES_OK 8
#define ST_NEEDS_RESET 64
#define ST_FAILED      128

#define ISR_USED   1
#define ISR_CONFIG 2

/* Device IDs (§5). */
#define ID_NET     1
#define ID_BLOCK   2
#define ID_CONSOLE 3
#define ID_RNG     4
#define ID_BALLOON 5

/* Feature bits. */
#define F_INDIRECT  (1ULL << 28)
#define F_EVENT_IDX (1ULL << 29)
#define F_VERSION_1 (1ULL << 32)

/* Descriptor flags (§2.7.5). */
#define D_NEXT     1
#define D_WRITE    2
#define D_INDIRECT 4

struct vring_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct vring_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[];
};

struct vring_used_elem {
    uint32_t id;
    uint32_t len;
};

struct vring_used {
    uint16_t flags;
    uint16_t idx;
    struct vring_used_elem ring[];
};

#define VD_MAX_QUEUES 8

struct vq {
    uint16_t num;       /* 0: not set up by us */
    uint16_t avail_idx; /* the driver's next avail->idx */
    uint16_t used_seen; /* used->idx consumed so far */
    volatile struct vring_desc *desc;
    volatile struct vring_avail *avail;
    volatile struct vring_used *used;
};

struct vdev {
    unsigned slot;
    uintptr_t base;
    uint32_t id;
    const char *name;
    uint64_t offered;  /* DeviceFeatures */
    uint64_t features; /* what we accepted (FEATURES_OK stuck) */
    struct vq q[VD_MAX_QUEUES];
    uintptr_t arena, arena_next, arena_end;
    char ctx[48]; /* "slot 1 virtio-blk" */
};

/* A buffer of a chain: guest address, length, D_WRITE or 0 (D_NEXT is added by vd_submit). */
struct vbuf {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
};

static inline uint32_t vd_rd(const struct vdev *d, uint32_t off)
{
    return rd32(d->base + off);
}
static inline void vd_wr(const struct vdev *d, uint32_t off, uint32_t v)
{
    wr32(d->base + off, v);
}
static inline uint32_t vd_status(const struct vdev *d)
{
    return vd_rd(d, VM_STATUS);
}

/* Probes every slot (a slot without a device may fault: guarded). Fills devs[] with the
 * devices found, in slot order; returns how many. */
unsigned vd_find_all(struct vdev *devs, unsigned max);

/* Name of a device ID ("virtio-blk"). */
const char *vd_id_name(uint32_t id);

/* Writes 0 to Status and waits until it reads 0; forgets our queues, rewinds the arena. */
void vd_reset(struct vdev *d);

/* Reset, ACKNOWLEDGE, DRIVER, read DeviceFeatures, accept (want & offered) | VERSION_1 (plus
 * any bit of `force`, offered or not), FEATURES_OK and read it back. 0 when FEATURES_OK stuck,
 * -1 when the device refused. */
int vd_negotiate(struct vdev *d, uint64_t want, uint64_t force);

/* Zeroed memory from the slot's arena. */
void *vd_alloc(struct vdev *d, uint64_t size, uint64_t align);

/* Queue size vd_queue_setup() uses for num = 0 (capped at QueueNumMax); default 16. */
extern uint32_t vd_queue_size;

/* Sets queue q up with num entries (0: min(QueueNumMax, vd_queue_size)) in fresh arena memory and
 * writes QueueReady = 1. Returns 0 when QueueReady reads back 1, -1 otherwise. */
int vd_queue_setup(struct vdev *d, unsigned q, uint32_t num);

/* The raw register sequence: QueueSel, QueueNum, the three addresses, QueueReady = 1. Returns
 * what QueueReady reads back. Does not record the queue as ours. */
uint32_t vd_queue_setup_raw(struct vdev *d, unsigned q, uint32_t num, uint64_t desc, uint64_t avail,
                            uint64_t used);

/* Sets DRIVER_OK; 0 when it stuck and NEEDS_RESET is clear. */
int vd_driver_ok(struct vdev *d);

/* The queues a driver of this device type sets up by default (rng 1, blk 1, net 2 = rx/tx,
 * console 2 = port 0 rx/tx (4 with multiport: + control rx/tx), balloon 2 = inflate/deflate
 * (3 with the stats feature)), and the queue the tests send requests on (rng 0, blk 0,
 * net 1 = tx, console 1 = port 0 tx, balloon 0 = inflate). */
unsigned vd_default_queues(const struct vdev *d);
unsigned vd_req_queue(const struct vdev *d);

/* Full initialisation: vd_negotiate(want), vd_default_queues() queues, DRIVER_OK. Returns 0,
 * or -1 (features), -2 (a queue), -3 (DRIVER_OK); prints what went wrong. */
int vd_init(struct vdev *d, uint64_t want);

/* Writes descriptor i of queue q. */
void vq_set_desc(struct vq *vq, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                 uint16_t next);

/* Puts head into the next avail ring slot and bumps avail->idx (release order). */
void vq_publish(struct vq *vq, uint16_t head);

/* Notifies queue q (fence first). */
void vd_kick(struct vdev *d, unsigned q);

/* Builds the chain bufs[0..n-1] in descriptors first..first+n-1 (D_NEXT linking them),
 * publishes `first` as the head and kicks. */
void vd_submit_at(struct vdev *d, unsigned q, unsigned first, const struct vbuf *bufs, unsigned n);
static inline void vd_submit(struct vdev *d, unsigned q, const struct vbuf *bufs, unsigned n)
{
    vd_submit_at(d, q, 0, bufs, n);
}

/* Waits for the next used element of queue q. Returns 0 with *id and *len (either may be
 * NULL), -1 on timeout, -2 when the device set NEEDS_RESET instead. */
int vq_wait(struct vdev *d, unsigned q, uint64_t timeout_us, uint32_t *id, uint32_t *len);

/* Like vd_submit(), but only bufs[0..ndirect-1] go into the descriptor table (descriptors
 * 0..ndirect-1); the rest go into an indirect table (fresh arena memory) that descriptor
 * ndirect points to with flags D_INDIRECT | extra_flags. ndirect = 0: a purely indirect
 * request. Returns the indirect table. */
volatile struct vring_desc *vd_submit_indirect(struct vdev *d, unsigned q, unsigned ndirect,
                                               const struct vbuf *bufs, unsigned n,
                                               uint16_t extra_flags);

/* Submit + wait. */
int vd_transfer(struct vdev *d, unsigned q, const struct vbuf *bufs, unsigned n, uint32_t *len);

/* Waits until Status shows NEEDS_RESET. 0, or -1 on timeout. */
int vd_wait_needs_reset(struct vdev *d, uint64_t timeout_us);

/* True when the used ring of q holds an element we have not consumed yet. */
int vq_used_pending(const struct vq *vq);

/* Device configuration space. */
static inline uint32_t vd_cfg32(const struct vdev *d, uint32_t off)
{
    return vd_rd(d, VM_CONFIG + off);
}

/* How long anything the device must do may take. run.sh builds a second set of ELFs with 10
 * times as much for runs under valgrind, which slows the VMM's threads down unevenly. */
#ifndef TMO_US
#define TMO_US 2000000
#endif

#endif
