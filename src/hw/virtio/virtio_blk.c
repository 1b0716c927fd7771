/* virtio-blk (virtio 1.2 §5.2) on the block layer (src/block/block.h).
 *
 * Threads: the guest's kick arrives on a vCPU thread and only wakes this disk's I/O worker,
 * which pops requests, performs them synchronously on the image and pushes the results; so a
 * vCPU never waits for the disk. `lock` protects the worker's state and is held while a batch
 * is processed, which is how reset() waits for requests in flight to finish.
 *
 * A kick costs the vCPU as little as we can make it: it sets the atomic `kicked` and wakes the
 * worker through a park (base/park.h), which is one FUTEX_WAKE when the worker sleeps and none
 * when it is busy or polling; a kick never takes `lock`, so it never waits for a batch to
 * finish. (A condition variable cost about five futex calls per request between the two
 * threads, each expensive when the host is itself a VM: docs/performance.md.) After a batch the
 * worker polls `kicked` for up to poll_ns without the lock before it sleeps, so the next
 * request of a busy guest is taken without a wake-up. poll_ns adapts as KVM's halt polling does:
 * it grows while polls catch kicks and shrinks to nothing while they do not, so an idle or
 * slow guest costs no CPU; it never exceeds BLK_POLL_MAX_NS. Every batch ends with one interrupt
 * (virtio_notify_queue(), which respects VIRTIO_F_RING_EVENT_IDX), and requests are performed
 * one after another in ring order, so a flush follows the writes made available before it.
 *
 * Quiesce works the same way: once quiesce() holds the lock the worker's batch is done (every
 * request it popped was performed and pushed), and the `quiesced` flag keeps it asleep; kicks
 * that arrive meanwhile are held, and resume() wakes the worker to poll the queue. The saved
 * device state is what the driver has read from config space and GET_ID (capacity, read-only,
 * serial): a target opened on another image would fail the load instead of lying to the guest.
 *
 * Rate limits (the iops and bps keys, base/ratelimit.h) apply where the worker takes requests
 * off the queue: a request its limits do not allow yet is given back to the ring unconsumed
 * (virtq_unpop()) and the worker sleeps until the limiter says it may go (a timed park, so a
 * kick, a limit change, quiesce or destroy wakes it early). A throttled request is
 * never failed and never held half-done: it is queue state, so quiesce, snapshot and migration
 * see nothing in flight, and a restored or migrated VM takes it again from the ring. The
 * limits themselves are the device's options, so the config document carries them. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/park.h"
#include "base/ratelimit.h"
#include "base/state.h"
#include "base/time.h"
#include "block/block.h"
#include "hw/virtio/vdev.h"
#include "hw/virtio/virtio_blk.h"
#include "hw/virtio/virtqueue.h"

/* Feature bits (§5.2.3). */
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types and status (§5.2.6). */
#define VIRTIO_BLK_T_IN           0
#define VIRTIO_BLK_T_OUT          1
#define VIRTIO_BLK_T_FLUSH        4
#define VIRTIO_BLK_T_GET_ID       8
#define VIRTIO_BLK_T_DISCARD      11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK           0
#define VIRTIO_BLK_S_IOERR        1
#define VIRTIO_BLK_S_UNSUPP       2

#define BLK_SECTOR      512u
#define BLK_QUEUE_SIZE  256
#define BLK_SEG_MAX     (BLK_QUEUE_SIZE - 2)
#define BLK_MAX_REQ     (32u << 20) /* data bytes in one request */
#define BLK_MAX_DISCARD (1u << 22)  /* sectors per discard/write-zeroes segment (2 GiB) */
#define BLK_ID_BYTES    20
#define BLK_CONFIG_SIZE 60

/* Polling after a batch (see the top comment): the bounds of poll_ns, the first value when a
 * sleep turned out short, and the factor it grows or shrinks by. */
#define BLK_POLL_MAX_NS   50000u
#define BLK_POLL_START_NS 10000u
#define BLK_POLL_MIN_NS   5000u

/* The three limiters a request passes: all requests, then reads or writes. */
enum { BLK_RL_TOTAL, BLK_RL_READ, BLK_RL_WRITE, BLK_RL_COUNT };

/* The limits as the options give them (0: unlimited). */
struct blk_limits {
    uint64_t iops[BLK_RL_COUNT], bps[BLK_RL_COUNT];
    uint64_t iops_burst, bps_burst;
};

struct virtio_blk {
    struct virtio_dev *vdev;
    struct block *bs;
    char serial[BLK_ID_BYTES + 1];
    uint64_t capacity; /* in 512-byte sectors */
    bool readonly;

    pthread_t worker;
    pthread_mutex_t lock;
    struct park park;   /* the worker sleeps here; whoever changes its work wakes it */
    atomic_bool kicked; /* a kick arrived since the worker last looked */
    uint32_t poll_ns;   /* the worker's current poll window; worker only */
    uint64_t polls_caught, polls_missed; /* worker only; logged at debug level on destroy */
    bool active;                         /* between activate() and reset() */
    bool quit;                           /* destroy() asks the worker to end */
    bool quiesced;   /* between quiesce() and resume(): the worker does not look at the queue */
    uint8_t *bounce; /* BLK_MAX_REQ bytes: data is copied, never parsed, from guest memory */

    /* Rate limiting, under `lock`. throttle_until: the worker sleeps until then (0: it does
     * not wait for a limit); throttle_since: when the request at the head of the queue first
     * had to wait (0: none waits), throttle_write: whether it is a write. */
    struct ratelimit rl[BLK_RL_COUNT];
    uint64_t throttle_until, throttle_since;
    bool throttle_write;

    /* Statistics, read by the control API later; updated by the worker only. */
    uint64_t reads, writes, flushes, read_bytes, write_bytes, errors;
    uint64_t read_throttled, write_throttled, read_throttled_ns, write_throttled_ns;
};

struct blk_outhdr {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};

struct blk_range {
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags; /* bit 0: unmap (write-zeroes only) */
};

static uint64_t blk_features(void *dev)
{
    struct virtio_blk *b = dev;
    uint64_t f = (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) |
                 (1ull << VIRTIO_BLK_F_FLUSH);

    if (b->readonly)
        f |= 1ull << VIRTIO_BLK_F_RO;
    else
        f |= (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
    return f;
}

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

/* struct virtio_blk_config (§5.2.4), little-endian like the host. */
static void blk_config_read(void *dev, uint32_t off, void *buf, uint32_t len)
{
    struct virtio_blk *b = dev;
    uint8_t cfg[BLK_CONFIG_SIZE] = {0};

    memcpy(cfg + 0, &b->capacity, 8);
    put32(cfg + 12, BLK_SEG_MAX);
    put32(cfg + 20, BLK_SECTOR);      /* blk_size */
    put32(cfg + 36, BLK_MAX_DISCARD); /* max_discard_sectors */
    put32(cfg + 40, 1);               /* max_discard_seg */
    put32(cfg + 44, 1);               /* discard_sector_alignment */
    put32(cfg + 48, BLK_MAX_DISCARD); /* max_write_zeroes_sectors */
    put32(cfg + 52, 1);               /* max_write_zeroes_seg */
    cfg[56] = 1;                      /* write_zeroes_may_unmap */
    memcpy(buf, cfg + off, len);
}

/* Checks that [sector, sector + bytes/512) lies on the disk. */
static bool blk_range_ok(const struct virtio_blk *b, uint64_t sector, uint64_t bytes)
{
    uint64_t n = bytes / BLK_SECTOR;

    return sector <= b->capacity && n <= b->capacity - sector;
}

static uint8_t blk_rw(struct virtio_blk *b, const struct virtq_req *req, const struct blk_outhdr *h,
                      uint32_t *written)
{
    bool is_read = h->type == VIRTIO_BLK_T_IN;
    size_t len = is_read ? req->in_len - 1 : req->out_len - sizeof(*h);
    int err;

    if (!is_read && b->readonly)
        return VIRTIO_BLK_S_IOERR;
    if (len % BLK_SECTOR || len > BLK_MAX_REQ || !blk_range_ok(b, h->sector, len)) {
        log_guest("virtio-blk: %s of %zu bytes at sector %" PRIu64 " is outside the disk or "
                  "not whole sectors",
                  is_read ? "read" : "write", len, h->sector);
        return VIRTIO_BLK_S_IOERR;
    }
    if (is_read) {
        err = block_read(b->bs, h->sector * BLK_SECTOR, b->bounce, len);
        if (!err) {
            virtq_req_write(req, 0, b->bounce, len);
            *written += (uint32_t)len;
            b->reads++;
            b->read_bytes += len;
        }
    } else {
        virtq_req_read(req, sizeof(*h), b->bounce, len);
        err = block_write(b->bs, h->sector * BLK_SECTOR, b->bounce, len);
        if (!err) {
            b->writes++;
            b->write_bytes += len;
        }
    }
    return err ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
}

static uint8_t blk_discard(struct virtio_blk *b, const struct virtq_req *req,
                           const struct blk_outhdr *h)
{
    struct blk_range r;

    if (b->readonly)
        return VIRTIO_BLK_S_IOERR;
    /* We advertised max_discard_seg = 1: exactly one range. */
    if (req->out_len != sizeof(*h) + sizeof(r))
        return VIRTIO_BLK_S_UNSUPP;
    virtq_req_read(req, sizeof(*h), &r, sizeof(r));
    if (r.num_sectors > BLK_MAX_DISCARD ||
        !blk_range_ok(b, r.sector, (uint64_t)r.num_sectors * BLK_SECTOR) ||
        (h->type == VIRTIO_BLK_T_DISCARD && r.flags) || (r.flags & ~1u))
        return VIRTIO_BLK_S_UNSUPP;
    if (h->type == VIRTIO_BLK_T_DISCARD)
        return block_discard(b->bs, r.sector * BLK_SECTOR, (uint64_t)r.num_sectors * BLK_SECTOR)
                   ? VIRTIO_BLK_S_IOERR
                   : VIRTIO_BLK_S_OK;
    return block_write_zeroes(b->bs, r.sector * BLK_SECTOR, (uint64_t)r.num_sectors * BLK_SECTOR,
                              r.flags & 1)
               ? VIRTIO_BLK_S_IOERR
               : VIRTIO_BLK_S_OK;
}

/* One request; returns the bytes written into the guest's buffers (status included). */
static uint32_t blk_handle(struct virtio_blk *b, const struct virtq_req *req)
{
    struct blk_outhdr h;
    uint32_t written = 0;
    uint8_t status;

    /* Every request has a 16-byte header to read and a status byte to write (§5.2.6). */
    if (req->out_len < sizeof(h) || req->in_len < 1) {
        log_guest("virtio-blk: request without header or status byte dropped");
        b->errors++;
        return 0;
    }
    virtq_req_read(req, 0, &h, sizeof(h));
    switch (h.type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT: status = blk_rw(b, req, &h, &written); break;
    case VIRTIO_BLK_T_FLUSH:
        status = block_flush(b->bs) ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
        b->flushes++;
        break;
    case VIRTIO_BLK_T_GET_ID: {
        size_t n = req->in_len - 1 < BLK_ID_BYTES ? req->in_len - 1 : BLK_ID_BYTES;
        char id[BLK_ID_BYTES] = {0};

        memcpy(id, b->serial, strlen(b->serial)); /* NUL-padded, not terminated if 20 long */
        virtq_req_write(req, 0, id, n);
        written += (uint32_t)n;
        status = VIRTIO_BLK_S_OK;
        break;
    }
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES: status = blk_discard(b, req, &h); break;
    default: status = VIRTIO_BLK_S_UNSUPP; break;
    }
    if (status != VIRTIO_BLK_S_OK)
        b->errors++;
    virtq_req_write(req, req->in_len - 1, &status, 1);
    return written + 1;
}

/* What a request costs its limiters: bytes and one op, in the direction it goes. Requests
 * that move no data (flush, discard, write-zeroes) are one write op; GET_ID and malformed ones
 * are not limited (0). The header is read again when the request runs: a guest changing it
 * in between only fools its own limit. */
static int blk_cost(const struct virtq_req *req, uint64_t *bytes, bool *write)
{
    struct blk_outhdr h;

    if (req->out_len < sizeof(h) || req->in_len < 1)
        return 0;
    virtq_req_read(req, 0, &h, sizeof(h));
    *write = h.type != VIRTIO_BLK_T_IN;
    *bytes = 0;
    switch (h.type) {
    case VIRTIO_BLK_T_IN: *bytes = req->in_len - 1; return 1;
    case VIRTIO_BLK_T_OUT: *bytes = req->out_len - sizeof(h); return 1;
    case VIRTIO_BLK_T_FLUSH:
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES: return 1;
    default: return 0;
    }
}

/* Whether the popped request may run now under the limits; takes its cost if so, else sets
 * throttle_until. Caller holds b->lock. */
static bool blk_admit(struct virtio_blk *b, const struct virtq_req *req)
{
    uint64_t bytes, now, wait_total, wait_dir;
    bool write, ok_total, ok_dir;
    int ops = blk_cost(req, &bytes, &write);
    struct ratelimit *dir;

    if (!ops ||
        (!ratelimit_limited(&b->rl[BLK_RL_TOTAL]) && !ratelimit_limited(&b->rl[BLK_RL_READ]) &&
         !ratelimit_limited(&b->rl[BLK_RL_WRITE]))) {
        b->throttle_since = 0;
        return true;
    }
    now = time_now_ns();
    dir = &b->rl[write ? BLK_RL_WRITE : BLK_RL_READ];
    /* Both must agree before either is charged; both are asked, for the longer wait. */
    ok_total = ratelimit_check(&b->rl[BLK_RL_TOTAL], bytes, (uint64_t)ops, now, &wait_total);
    ok_dir = ratelimit_check(dir, bytes, (uint64_t)ops, now, &wait_dir);
    if (ok_total && ok_dir) {
        ratelimit_take(&b->rl[BLK_RL_TOTAL], bytes, (uint64_t)ops);
        ratelimit_take(dir, bytes, (uint64_t)ops);
        if (b->throttle_since) {
            uint64_t waited = now - b->throttle_since;

            if (b->throttle_write)
                b->write_throttled_ns += waited;
            else
                b->read_throttled_ns += waited;
            b->throttle_since = 0;
        }
        return true;
    }
    if (!b->throttle_since) {
        b->throttle_since = now;
        b->throttle_write = write;
        if (write)
            b->write_throttled++;
        else
            b->read_throttled++;
    }
    b->throttle_until = now + (wait_total > wait_dir ? wait_total : wait_dir);
    return false;
}

/* Serves everything available on the queue, up to a request the limits hold back. Caller
 * holds b->lock and b->active is set. */
static void blk_process_locked(struct virtio_blk *b)
{
    struct virtq *vq = virtio_get_queue(b->vdev, 0);
    static __thread struct virtq_req *req_site;
    struct virtq_req *req = virtq_req_for_thread(&req_site);

    if (!req || !virtq_ready(vq))
        return;
    for (;;) {
        bool pushed = false;
        int r;

        virtq_disable_notify(vq);
        while ((r = virtq_pop(vq, req)) > 0) {
            if (!blk_admit(b, req)) {
                /* Back to the ring; the worker comes back at throttle_until. Kicks stay
                 * off meanwhile: they could not make it go sooner. */
                virtq_unpop(vq);
                break;
            }
            virtq_push(vq, req, blk_handle(b, req));
            pushed = true;
        }
        if (pushed)
            virtio_notify_queue(b->vdev, vq);
        if (r < 0 || b->throttle_until)
            return; /* r < 0: the transport marked the device as needing a reset */
        /* Re-enable kicks; if buffers arrived meanwhile, go round again. */
        if (!virtq_enable_notify(vq))
            return;
    }
}

static inline void blk_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/* After a batch, with kicks enabled: waits up to poll_ns for the next kick without the lock,
 * so reset, quiesce and the saving thread are not held up (the caller looks at their flags
 * again under the lock), and adapts poll_ns to whether polling paid. Caller holds b->lock. */
static void blk_poll(struct virtio_blk *b)
{
    uint64_t start;
    bool caught = false;

    if (!b->poll_ns)
        return;
    pthread_mutex_unlock(&b->lock);
    start = time_now_ns();
    do {
        if (atomic_load_explicit(&b->kicked, memory_order_relaxed)) {
            caught = true;
            break;
        }
        blk_cpu_relax();
    } while (time_now_ns() - start < b->poll_ns);
    pthread_mutex_lock(&b->lock);
    if (caught) {
        b->polls_caught++;
        b->poll_ns = b->poll_ns * 2 > BLK_POLL_MAX_NS ? BLK_POLL_MAX_NS : b->poll_ns * 2;
    } else {
        b->polls_missed++;
        b->poll_ns /= 2;
        if (b->poll_ns < BLK_POLL_MIN_NS)
            b->poll_ns = 0;
    }
}

/* Sleeps until a kick, a wake from another thread or `until` (0: no deadline). The park is
 * announced before `kicked` is read, so a kick either is seen here or finds the worker parked
 * and wakes it (base/park.h); the other wakers change the worker's state under the lock we hold
 * until just before parking. A sleep that a kick ends sooner than the longest poll window
 * starts polling again. Caller holds b->lock; it is released while asleep. */
static void blk_sleep(struct virtio_blk *b, bool may_run, uint64_t until)
{
    uint64_t start;

    park_prepare(&b->park);
    if (may_run && atomic_load(&b->kicked)) {
        park_cancel(&b->park);
        return;
    }
    pthread_mutex_unlock(&b->lock);
    start = time_now_ns();
    park_wait(&b->park, until);
    pthread_mutex_lock(&b->lock);
    if (may_run && !b->poll_ns && atomic_load(&b->kicked) &&
        time_now_ns() - start < BLK_POLL_MAX_NS)
        b->poll_ns = BLK_POLL_START_NS;
}

static void *blk_worker(void *opaque)
{
    struct virtio_blk *b = opaque;

    pthread_mutex_lock(&b->lock);
    while (!b->quit) {
        bool may_run = b->active && !b->quiesced;

        if (may_run && (atomic_exchange(&b->kicked, false) ||
                        (b->throttle_until && time_now_ns() >= b->throttle_until))) {
            b->throttle_until = 0;
            blk_process_locked(b);
            /* A throttled worker waits for its limiter, not for kicks. */
            if (!b->throttle_until)
                blk_poll(b);
            continue;
        }
        blk_sleep(b, may_run, may_run ? b->throttle_until : 0);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

/* vCPU thread: no lock, and a system call only when the worker sleeps (blk_sleep()). */
static void blk_kick(struct virtio_blk *b)
{
    atomic_store(&b->kicked, true);
    park_wake(&b->park);
}

static void blk_queue_notify(void *dev, unsigned q)
{
    blk_kick(dev);
}

static int blk_activate(void *dev, uint64_t features)
{
    struct virtio_blk *b = dev;

    pthread_mutex_lock(&b->lock);
    b->active = true;
    atomic_store(&b->kicked, true); /* buffers may be waiting from before DRIVER_OK */
    park_wake(&b->park);
    pthread_mutex_unlock(&b->lock);
    return 0;
}

static void blk_reset(void *dev)
{
    struct virtio_blk *b = dev;

    /* The worker holds the lock for a whole batch: once we have it, nothing is in flight. */
    pthread_mutex_lock(&b->lock);
    b->active = false;
    atomic_store(&b->kicked, false);
    b->throttle_until = 0; /* the request that waited went with the rings */
    b->throttle_since = 0;
    pthread_mutex_unlock(&b->lock);
}

/* Saving thread, register lock held. The worker holds the lock for a whole batch, so once we
 * have it every request it popped has been pushed; the flag keeps it from starting another. */
static void blk_quiesce(void *dev)
{
    struct virtio_blk *b = dev;

    pthread_mutex_lock(&b->lock);
    b->quiesced = true;
    pthread_mutex_unlock(&b->lock);
}

static void blk_resume(void *dev)
{
    struct virtio_blk *b = dev;

    pthread_mutex_lock(&b->lock);
    b->quiesced = false;
    atomic_store(&b->kicked, true); /* kicks were held back; poll once (harmless when not active) */
    park_wake(&b->park);
    pthread_mutex_unlock(&b->lock);
}

#define BLK_STATE_VERSION 1

/* Version 1: u64 capacity (sectors), bool readonly, str serial. */
static void blk_save(void *dev, struct sbuf *out)
{
    struct virtio_blk *b = dev;

    sbuf_put_u64(out, b->capacity);
    sbuf_put_bool(out, b->readonly);
    sbuf_put_str(out, b->serial);
}

/* The saved values are facts about the image that the driver has seen; they are compared with
 * the image this device opened, not copied. */
static int blk_load(void *dev, struct scur *in, uint32_t version)
{
    struct virtio_blk *b = dev;
    char serial[BLK_ID_BYTES + 1];
    uint64_t capacity = scur_get_u64(in);
    bool readonly = scur_get_bool(in);

    scur_get_str(in, serial, sizeof(serial));
    if (scur_ok(in))
        return -1;
    if (capacity != b->capacity)
        return scur_fail(in,
                         "capacity: %" PRIu64 " sectors saved, the disk opened here has %" PRIu64
                         " (is it the same image?)",
                         capacity, b->capacity);
    if (readonly != b->readonly)
        return scur_fail(in, "readonly: saved %s, the disk opened here is %s",
                         readonly ? "on" : "off", b->readonly ? "read-only" : "writable");
    if (strcmp(serial, b->serial))
        return scur_fail(in, "serial: the saved one differs from '%s' of the disk opened here",
                         b->serial);
    return 0;
}

static const struct virtio_device_ops blk_ops = {
    .name = "virtio-blk",
    .device_id = VIRTIO_ID_BLOCK,
    .num_queues = 1,
    .queue_max = BLK_QUEUE_SIZE,
    .config_size = BLK_CONFIG_SIZE,
    .features = blk_features,
    .config_read = blk_config_read,
    .activate = blk_activate,
    .queue_notify = blk_queue_notify,
    .reset = blk_reset,
    .quiesce = blk_quiesce,
    .resume = blk_resume,
    .state_version = BLK_STATE_VERSION,
    .save = blk_save,
    .load = blk_load,
};

static const char *const blk_formats[] = {"raw", "qcow2", NULL};

/* "snapshot-of" is where a snapshot's frozen image was live: a snapshot's header records it for
 * restore and snapshot-delete; a disk never runs with it. */
static const struct vdev_opt blk_options[] = {
    {.key = "file",
     .json = "path",
     .kind = VDEV_OPT_STR,
     .max_len = 4095,
     .first_word = true,
     .required = true},
    {.key = "format", .json = "format", .kind = VDEV_OPT_ENUM, .choices = blk_formats},
    {.key = "readonly", .json = "readonly", .kind = VDEV_OPT_BOOL},
    {.key = "serial", .json = "serial", .kind = VDEV_OPT_STR, .max_len = BLK_ID_BYTES},
    {.key = "snapshot-of",
     .json = "snapshot_of",
     .kind = VDEV_OPT_STR,
     .max_len = 4095,
     .record_only = true},
/* Rate limits (docs/vm-config.md): 0 or absent is unlimited; changeable live. */
#define BLK_LIMIT(k, chk)                                                      \
    {                                                                          \
        .key = k, .json = k, .kind = VDEV_OPT_UINT, .check = chk, .live = true \
    }
    BLK_LIMIT("iops", vdev_check_count),
    BLK_LIMIT("iops_rd", vdev_check_count),
    BLK_LIMIT("iops_wr", vdev_check_count),
    BLK_LIMIT("iops_burst", vdev_check_count),
    BLK_LIMIT("bps", vdev_check_bytes),
    BLK_LIMIT("bps_rd", vdev_check_bytes),
    BLK_LIMIT("bps_wr", vdev_check_bytes),
    BLK_LIMIT("bps_burst", vdev_check_bytes),
#undef BLK_LIMIT
    {NULL},
};

/* The limits of a checked option string. 0, or -EINVAL with err naming the key. */
static int blk_limits_parse(const char *opts, struct blk_limits *l, char *err)
{
    static const char *const iops[BLK_RL_COUNT] = {"iops", "iops_rd", "iops_wr"};
    static const char *const bps[BLK_RL_COUNT] = {"bps", "bps_rd", "bps_wr"};

    for (int i = 0; i < BLK_RL_COUNT; i++) {
        if (vdev_opt_limit(opts, iops[i], false, &l->iops[i])) {
            snprintf(err, VDEV_ERR_LEN, "--disk: %s: expected a whole number", iops[i]);
            return -EINVAL;
        }
        if (vdev_opt_limit(opts, bps[i], true, &l->bps[i])) {
            snprintf(err, VDEV_ERR_LEN, "--disk: %s: expected bytes such as 10M", bps[i]);
            return -EINVAL;
        }
    }
    if (vdev_opt_limit(opts, "iops_burst", false, &l->iops_burst) ||
        vdev_opt_limit(opts, "bps_burst", true, &l->bps_burst)) {
        snprintf(err, VDEV_ERR_LEN, "--disk: iops_burst or bps_burst: expected a number");
        return -EINVAL;
    }
    return 0;
}

/* Puts limits in force. Caller holds b->lock (or owns b alone). The bursts belong to every
 * limiter of their kind: each may bank that much beyond its tick. */
static void blk_limits_apply(struct virtio_blk *b, const struct blk_limits *l)
{
    uint64_t now = time_now_ns();

    for (int i = 0; i < BLK_RL_COUNT; i++) {
        ratelimit_set(&b->rl[i], RATELIMIT_OPS, l->iops[i], l->iops_burst, now);
        ratelimit_set(&b->rl[i], RATELIMIT_BYTES, l->bps[i], l->bps_burst, now);
    }
}

static struct vdev_type blk_type;

static int blk_create(const struct vdev_env *env, const char *opts, void **dev,
                      const struct virtio_device_ops **ops, char *err)
{
    char path[4096], format[16], ro[8], serial[BLK_ID_BYTES + 1];
    const char *fmt = NULL;
    struct blk_limits limits;
    struct virtio_blk *b;
    char berr[BLOCK_ERR_LEN];
    int r;

    if (vdev_opts_check(&blk_type, opts, err))
        return -EINVAL;
    r = opt_first_word(opts, path, sizeof(path));
    if (r == 0)
        r = opt_get(opts, "file", path, sizeof(path));
    if (r < 0) {
        snprintf(err, VDEV_ERR_LEN, "--disk: the file name is longer than %zu bytes",
                 sizeof(path) - 1);
        return -EINVAL;
    }
    if (r == 0) {
        snprintf(err, VDEV_ERR_LEN, "--disk: expected FILE[,format=raw|qcow2][,readonly=on]");
        return -EINVAL;
    }
    /* A value that does not fit its buffer is refused, never taken as "not given". */
    r = opt_get(opts, "format", format, sizeof(format));
    if (r != 0) {
        if (r < 0 || (strcmp(format, "raw") && strcmp(format, "qcow2"))) {
            snprintf(err, VDEV_ERR_LEN, "--disk %.300s: format '%s': expected raw or qcow2", path,
                     r < 0 ? "(too long)" : format);
            return -EINVAL;
        }
        fmt = format;
    }
    if (blk_limits_parse(opts, &limits, err))
        return -EINVAL;
    b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    for (int i = 0; i < BLK_RL_COUNT; i++)
        ratelimit_init(&b->rl[i], time_now_ns());
    blk_limits_apply(b, &limits);
    r = opt_get(opts, "readonly", ro, sizeof(ro));
    if (r < 0 || (r == 1 && opt_bool(ro, &b->readonly))) {
        snprintf(err, VDEV_ERR_LEN, "--disk %.300s: readonly='%s': expected on or off", path,
                 r < 0 ? "(too long)" : ro);
        goto free_blk;
    }
    r = opt_get(opts, "serial", serial, sizeof(serial));
    if (r < 0 || (r == 1 && strlen(serial) > BLK_ID_BYTES)) {
        snprintf(err, VDEV_ERR_LEN, "--disk %.300s: serial is longer than %d characters", path,
                 BLK_ID_BYTES);
        goto free_blk;
    }
    if (r == 1)
        strcpy(b->serial, serial);
    else
        snprintf(b->serial, sizeof(b->serial), "tessera-disk%u", env->index);
    if (block_open(path, fmt, b->readonly, &b->bs, berr)) {
        snprintf(err, VDEV_ERR_LEN, "--disk: %.480s", berr);
        goto free_blk;
    }
    if (!fmt && !strcmp(block_format_name(b->bs), "raw"))
        /* A raw image's first bytes belong to the guest: if it ever writes a qcow2 header
         * there, the next probe would trust it (and any backing file it names). */
        log_warn("--disk %.300s: no format given, probed as raw; add format=raw to be safe", path);
    b->readonly = block_readonly(b->bs);
    b->capacity = block_length(b->bs) / BLK_SECTOR;
    b->bounce = malloc(BLK_MAX_REQ);
    if (!b->bounce)
        goto close_bs;
    pthread_mutex_init(&b->lock, NULL);
    if (pthread_create(&b->worker, NULL, blk_worker, b)) {
        snprintf(err, VDEV_ERR_LEN, "--disk %.300s: cannot start its I/O thread", path);
        goto free_bounce;
    }
    *dev = b;
    *ops = &blk_ops;
    return 0;

free_bounce:
    pthread_mutex_destroy(&b->lock);
    free(b->bounce);
close_bs:
    block_close(b->bs);
free_blk:
    free(b);
    return -EINVAL;
}

static void blk_attach(void *dev, struct virtio_dev *vdev)
{
    ((struct virtio_blk *)dev)->vdev = vdev;
}

static void blk_destroy(void *dev)
{
    struct virtio_blk *b = dev;

    pthread_mutex_lock(&b->lock);
    b->quit = true;
    park_wake(&b->park);
    pthread_mutex_unlock(&b->lock);
    pthread_join(b->worker, NULL);
    log_debug("virtio-blk %s: %" PRIu64 " polls caught the next kick, %" PRIu64 " did not",
              b->serial, b->polls_caught, b->polls_missed);
    block_flush(b->bs);
    block_close(b->bs);
    pthread_mutex_destroy(&b->lock);
    free(b->bounce);
    free(b);
}

struct block *virtio_blk_block(struct virtio_blk *b)
{
    return b->bs;
}

void virtio_blk_lock(struct virtio_blk *b)
{
    pthread_mutex_lock(&b->lock);
}

void virtio_blk_unlock(struct virtio_blk *b)
{
    pthread_mutex_unlock(&b->lock);
}

static void blk_stats(void *dev, struct vdev_stats *out)
{
    struct virtio_blk *b = dev;

    /* The worker updates them under the lock: a consistent set. */
    pthread_mutex_lock(&b->lock);
    out->reads = b->reads;
    out->writes = b->writes;
    out->read_bytes = b->read_bytes;
    out->write_bytes = b->write_bytes;
    out->read_throttled = b->read_throttled;
    out->write_throttled = b->write_throttled;
    out->read_throttled_ns = b->read_throttled_ns;
    out->write_throttled_ns = b->write_throttled_ns;
    /* A request waiting now has waited too. */
    if (b->throttle_since) {
        uint64_t waited = time_now_ns() - b->throttle_since;

        if (b->throttle_write)
            out->write_throttled_ns += waited;
        else
            out->read_throttled_ns += waited;
    }
    pthread_mutex_unlock(&b->lock);
}

/* New limits on the running disk (vdev_type.reconfigure): the worker is woken to ask its
 * limiters again, so a request waiting on the old limits goes by the new ones at once. */
static int blk_reconfigure(void *dev, const char *opts, char *err)
{
    struct virtio_blk *b = dev;
    struct blk_limits limits;

    if (blk_limits_parse(opts, &limits, err))
        return -EINVAL;
    pthread_mutex_lock(&b->lock);
    blk_limits_apply(b, &limits);
    if (b->throttle_until)
        atomic_store(&b->kicked, true);
    park_wake(&b->park);
    pthread_mutex_unlock(&b->lock);
    return 0;
}

static struct vdev_type blk_type = {
    .name = "disk",
    .summary = "virtio-blk disk on a raw or qcow2 image (format probed when not given)",
    .usage = "--disk FILE[,format=raw|qcow2][,readonly=on][,serial=ID][,iops=N][,bps=SIZE]"
             "[,iops_rd=N][,iops_wr=N][,bps_rd=SIZE][,bps_wr=SIZE][,iops_burst=N][,bps_burst=SIZE]",
    .create = blk_create,
    .attach = blk_attach,
    .destroy = blk_destroy,
    .flag = "--disk",
    .options = blk_options,
    .stats = blk_stats,
    .reconfigure = blk_reconfigure,
};
VDEV_TYPE_REGISTER(blk_type)
