/* The split virtqueue, device side (virtio 1.2 §2.7).
 *
 * The driver owns the three rings in guest RAM; this module reads the descriptor table and the
 * available ring and writes the used ring, always through host pointers obtained from
 * guest_ram_ptr() for ranges checked in full, so a hostile driver can make it fail but never
 * make it touch memory outside guest RAM. Every value read from the guest is read once into a
 * local copy and checked there (no double fetch).
 *
 * Threads: a queue is used by one device thread at a time (its worker, or the vCPU thread inside
 * queue_notify while that runs): virtq_pop(), virtq_push(), virtq_needs_notify(),
 * virtq_enable/disable_notify() and virtio_notify_queue() on one queue must not run concurrently.
 * Different queues may be served by different threads. The transport sets a queue up and resets
 * it only while the device is not using it (before activate(), after reset()).
 *
 * Memory ordering against the driver, which runs on other CPUs (virtio 1.2 §2.7.13, §2.7.7):
 *   pop:   load avail->idx with acquire, then the ring entry and the descriptors;
 *   push:  the device's writes to the buffers and the used element, release, then used->idx;
 *   notify decisions (used_event, avail flags) and the empty-queue re-check after publishing
 *   avail_event are preceded by a full fence, so neither side can miss the other's update. */
#ifndef TESSERA_HW_VIRTIO_VIRTQUEUE_H
#define TESSERA_HW_VIRTIO_VIRTQUEUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "hw/guest_mem.h"

/* Guest-visible layout (virtio 1.2 §2.7.5, §2.7.6, §2.7.8), little-endian. */
#define VIRTQ_DESC_F_NEXT          1
#define VIRTQ_DESC_F_WRITE         2
#define VIRTQ_DESC_F_INDIRECT      4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY     1

struct virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct virtq_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[]; /* [num], then uint16_t used_event */
};

struct virtq_used_elem {
    uint32_t id;
    uint32_t len;
};

struct virtq_used {
    uint16_t flags;
    uint16_t idx;
    struct virtq_used_elem ring[]; /* [num], then uint16_t avail_event */
};

/* Required alignments and sizes of the three areas (virtio 1.2 §2.7). */
#define VIRTQ_DESC_ALIGN    16
#define VIRTQ_AVAIL_ALIGN   2
#define VIRTQ_USED_ALIGN    4
#define VIRTQ_DESC_SIZE(n)  (16 * (uint64_t)(n))
#define VIRTQ_AVAIL_SIZE(n) (6 + 2 * (uint64_t)(n))
#define VIRTQ_USED_SIZE(n)  (6 + 8 * (uint64_t)(n))

/* At most this many buffers (descriptors that are not indirect-table pointers) in one chain;
 * a longer chain is a guest error. Devices advertise smaller limits (seg_max) to the driver. */
#define VIRTQ_MAX_SEGS 1024

/* One popped descriptor chain. Device-readable buffers come first in a chain (§2.7.4.2; a
 * readable buffer after a writable one is refused), so out[] and in[] are the two halves of
 * iov[]: out = iov, in = iov + nout. The iovecs point into guest RAM and may be handed to
 * readv/writev. The guest can change the bytes under them at any time: copy what you parse
 * (virtq_req_read()) and check the copy. The struct is big (VIRTQ_MAX_SEGS iovecs) and must not
 * be copied by value (out/in point into itself). */
struct virtq_req {
    uint16_t head;     /* descriptor index to push back; < queue size. A hostile driver can put
                          the same head in flight twice: never key unique state on it. */
    unsigned nout;     /* device-readable buffers */
    unsigned nin;      /* device-writable buffers */
    struct iovec *out; /* [nout] */
    struct iovec *in;  /* [nin] */
    size_t out_len;    /* sum of out[].iov_len */
    size_t in_len;     /* sum of in[].iov_len; out_len + in_len <= 4 GiB (§2.7.4.2) */
    struct iovec iov[VIRTQ_MAX_SEGS];
};

/* The request of one call site for the calling thread: the site keeps a `static __thread
 * struct virtq_req *` of its own, which this fills at the site's first call on the thread
 * (the request is freed when the thread exits). A request is 16 KiB, too big for a worker's
 * stack; held in thread-local storage itself, it was zeroed, and resident, in every thread of
 * the VMM, device worker or not (eight sites made each thread's TLS 128 KiB). NULL when out
 * of memory: the site serves nothing then. */
struct virtq_req *virtq_req_for_thread(struct virtq_req **site);

/* Where the three areas are and what was negotiated: the transport's QueueNum, QueueDesc,
 * QueueDriver and QueueDevice registers plus the ring feature bits. */
struct virtq_config {
    uint32_t num;   /* queue size: a power of two, 1..32768 */
    gpa_t desc;     /* descriptor table, 16-byte aligned */
    gpa_t avail;    /* driver area (available ring), 2-byte aligned */
    gpa_t used;     /* device area (used ring), 4-byte aligned */
    bool event_idx; /* VIRTIO_F_RING_EVENT_IDX negotiated */
    bool indirect;  /* VIRTIO_F_RING_INDIRECT_DESC negotiated */
};

/* A queue. Embedded by the transport; devices treat it as opaque and use the functions below.
 * The identity and error handler are set once by virtq_init(); the rest by virtq_setup(). */
struct virtq {
    /* Identity, for log lines, and who hears about guest errors. */
    const char *name;
    unsigned index;
    void (*on_error)(void *opaque); /* NULL, or called once when the queue breaks */
    void *error_opaque;

    /* Fixed while ready. */
    const struct guest_ram *ram;
    uint16_t num; /* power of two */
    bool event_idx;
    bool indirect;
    const uint8_t *desc;       /* host pointer to the descriptor table, num entries */
    struct virtq_avail *avail; /* host pointer, VIRTQ_AVAIL_SIZE(num) bytes */
    struct virtq_used *used;   /* host pointer, VIRTQ_USED_SIZE(num) bytes */

    /* The queue thread's state. */
    uint16_t last_avail;     /* next avail ring slot to read */
    uint16_t used_idx;       /* next used ring slot to write (our copy of used->idx) */
    uint16_t signalled_used; /* used_idx at the last notify decision */
    bool signalled_valid;    /* false until the first decision: notify unconditionally */
    bool notify_off;         /* virtq_disable_notify() in force */
    bool broken;             /* a guest error was seen; pop fails until the next setup */

    atomic_bool ready; /* release-stored by setup/reset, acquire-loaded by the queue thread */
};

/* The queue thread's position in the rings: what a saved machine state needs, besides the
 * set-up (struct virtq_config), to carry on where the device stopped. */
struct virtq_state {
    uint16_t last_avail;     /* next avail ring slot to read */
    uint16_t used_idx;       /* next used ring slot to write */
    uint16_t signalled_used; /* used_idx at the last notify decision */
    bool signalled_valid;
    bool notify_off; /* virtq_disable_notify() in force */
    bool broken;     /* the driver broke the rules; pop fails until the next setup */
};

/* Gives a queue its identity: `name` (kept, not copied), `index`, and the function called the
 * first time virtq_pop() finds a guest error (the transport passes one that sets
 * DEVICE_NEEDS_RESET; NULL for none). Leaves the queue not ready. Set-up thread. */
void virtq_init(struct virtq *vq, const char *name, unsigned index, void (*on_error)(void *),
                void *opaque);

/* Maps the rings described by `cfg` and makes the queue ready with all indices at 0 (the ring
 * memory is not written: the driver zeroed it, §4.2.3.2). Returns 0, or -EINVAL when num is not
 * a power of two in 1..32768, an area is misaligned, or an area is not entirely inside `ram`;
 * then the queue stays not ready. `ram` must outlive the queue. Caller: the transport, while
 * no device thread uses the queue. */
int virtq_setup(struct virtq *vq, const struct guest_ram *ram, const struct virtq_config *cfg);

/* Reads the position of a ready queue (all zero for one that is not ready). Only while no
 * device thread uses the queue: the device is quiesced (virtio.h, quiesce()) or not active. */
void virtq_get_state(const struct virtq *vq, struct virtq_state *st);

/* Puts a queue that virtq_setup() just made ready at a saved position. The ring memory is not
 * written (the loaded RAM already holds what the driver and the device wrote). Any index value
 * is accepted: the rings check every index the driver gives, and a position that does not match
 * the rings only makes the queue report a guest error later. Same caller rules as
 * virtq_setup(); does nothing on a queue that is not ready. */
void virtq_set_state(struct virtq *vq, const struct virtq_state *st);

/* Makes the queue not ready and forgets the rings. Same caller rules as virtq_setup(). */
void virtq_reset(struct virtq *vq);

/* True once virtq_setup() succeeded and until virtq_reset(). Any thread. */
bool virtq_ready(const struct virtq *vq);

/* Takes the next available chain:
 *   1  *req holds it; push it back with virtq_push() exactly once (or virtq_unpop() it);
 *   0  nothing available, or the queue is not ready;
 *  -EINVAL  the driver broke the rules: descriptor loop (more descriptors than the table
 *      holds), next or head out of range, a buffer or indirect table not entirely in RAM
 *      (including address + length wrapping), an indirect table of length 0 or not a multiple
 *      of 16, nested indirect, INDIRECT with NEXT, INDIRECT without the feature, a readable
 *      buffer after a writable one, more than VIRTQ_MAX_SEGS buffers or more than 4 GiB
 *      writable, or avail->idx more than the queue size ahead. The queue is then broken: this
 *      and every later pop return -EINVAL until the next setup, the error is logged
 *      (rate-limited) and on_error runs once, i.e. under the MMIO transport the device already
 *      shows DEVICE_NEEDS_RESET. The device just stops serving the queue.
 * With VIRTIO_F_RING_EVENT_IDX (and notifications not disabled) it publishes avail_event after
 * each pop and, before reporting an empty queue, re-checks avail->idx behind a full fence so
 * a kick the driver suppressed cannot be lost. Queue thread only. */
int virtq_pop(struct virtq *vq, struct virtq_req *req);

/* Gives back the chain the last virtq_pop() returned, unconsumed: the next pop returns it
 * again (a device that popped a buffer it cannot fill yet). Queue thread only. */
void virtq_unpop(struct virtq *vq);

/* Returns a popped chain to the driver with `written` bytes written into its writable buffers
 * (clamped to req->in_len). Does nothing if the queue is no longer ready. Publishes the used
 * element before used->idx (release). Does not notify: call virtio_notify_queue() after one or
 * a batch of pushes. Queue thread only.
 *
 * Dirty-page log (guest_mem.h): while logging is on it marks every device-writable buffer of
 * the chain in full (not only `written` bytes: a device may write past what it reports, as
 * virtio-blk's status byte at the end of the chain after a failed read) and the used element
 * and used->idx, after writing them, so a harvest that misses the mark sees the bytes. Every
 * other ring write (avail_event, used->flags) marks its page too. So a device that writes guest
 * RAM only into popped chains and pushes them needs no marking of its own; anything else it
 * writes it marks with guest_ram_mark_dirty(). Logging off costs one load and a branch. */
void virtq_push(struct virtq *vq, const struct virtq_req *req, uint32_t written);

/* True when the driver wants a used buffer notification for what was pushed since the last
 * call (virtio 1.2 §2.7.10): with EVENT_IDX when used->idx has passed used_event, without it
 * unless the avail ring's NO_INTERRUPT flag is set. Full fence first. Records the current
 * used index as signalled. virtio_notify_queue() calls it; devices normally do not. */
bool virtq_needs_notify(struct virtq *vq);

/* For devices that poll: stop asking the driver for kicks (used->flags NO_NOTIFY, or with
 * EVENT_IDX stop advancing avail_event). Best effort: the driver may still kick. */
void virtq_disable_notify(struct virtq *vq);

/* Asks for kicks again. Returns true when chains are already available, so the caller must poll
 * once more instead of sleeping (the full fence in between closes the race with the driver). */
bool virtq_enable_notify(struct virtq *vq);

/* Copies up to `len` bytes of the chain's readable part, starting at byte `off` of it, into buf.
 * Returns how many bytes were copied (less when the readable part is shorter). */
size_t virtq_req_read(const struct virtq_req *req, size_t off, void *buf, size_t len);

/* Copies up to `len` bytes from buf into the chain's writable part at byte `off` of it. Returns
 * how many bytes were copied (less when the writable part is shorter). */
size_t virtq_req_write(const struct virtq_req *req, size_t off, const void *buf, size_t len);

#endif
