/* virtio-balloon (virtio 1.2 §5.5): the host asks the guest to give back memory by raising
 * num_pages; the guest lists the pages it gave up on the inflate queue and we release them to
 * the host with madvise(MADV_DONTNEED), so the VMM's RSS drops. Deflated pages need nothing:
 * the next guest touch faults in a zero page. The stats queue delivers the guest's memory
 * statistics, refreshed every few seconds.
 *
 * Free page reporting (VIRTIO_BALLOON_F_REPORTING, §5.5.6.7; option free_page_reporting, on by
 * default): without any target, the guest hands blocks it has free (Linux: whole free blocks
 * of page_reporting_order, 2 s after they were freed) to the reporting queue as
 * device-writable buffers; each one is released like an inflated page, and the buffer goes
 * back. Guest RAM is a private anonymous mapping (guest_mem.c), so MADV_DONTNEED is what gives
 * the pages back and makes them read as zero, which is what the driver expects of a reported
 * page: it has not negotiated PAGE_POISON (we do not offer it), so it keeps no contents there.
 *
 * Which queue is the reporting queue: the spec numbers it 4, but Linux (virtio_mmio's
 * find_vqs since 4.18) and QEMU number only the queues that exist, so with the stats queue
 * negotiated and no free page hinting (never offered here) it is 3, without stats 2. The
 * device has five queues and, once REPORTING is negotiated, serves both the compact number and
 * 4: neither is used for anything else then, so either kind of driver is served.
 *
 * Threads: queue work runs on the event loop thread (a kick writes the eventfd); the target is
 * set from any thread (the control API). `lock` protects everything below it.
 *
 * Dirty log: a released page reads as zero afterwards, a change of guest memory like any
 * write, so it is marked dirty (guest_mem.h) for the next migration pass to send.
 *
 * Quiesce: every callback (kick, stats timer) does its ring work under `lock`, so once
 * quiesce() has held it none is mid-way; the `quiesced` flag keeps later ones out. The stats
 * buffer the device keeps popped is handed back (pushed empty) at quiesce, so nothing is in
 * flight; the driver re-posts it. A new target set while quiesced is kept aside and applied at
 * resume(), so the saved configuration and its change notification stay consistent. The saved
 * state is the configuration space: num_pages (the target) and actual. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/log.h"
#include "base/loop.h"
#include "base/state.h"
#include "base/time.h"
#include "hw/virtio/vdev.h"
#include "hw/virtio/virtio_balloon.h"
#include "hw/virtio/virtqueue.h"

#define VIRTIO_BALLOON_F_MUST_TELL_HOST 0
#define VIRTIO_BALLOON_F_STATS_VQ       1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2
#define VIRTIO_BALLOON_F_REPORTING      5

#define BALLOON_PAGE     4096u
#define BALLOON_QUEUE    128
#define BALLOON_INFLATEQ 0
#define BALLOON_DEFLATEQ 1
#define BALLOON_STATSQ   2
#define BALLOON_REPORTQ  4 /* the spec's number; see the top comment for the other one */
#define BALLOON_QUEUES   5 /* inflate, deflate, stats, free page hints (never set up), reporting */
/* The guest's memory statistics once a second: tesserad's balloon policy (docs/resources.md)
 * decides from them several times a second, and a cache filling at 100 MB/s makes them stale
 * fast. */
#define BALLOON_STATS_NS (1ull * 1000000000ull)
/* Work per buffer is bounded, since it runs on the loop thread that also serves the other
 * devices: Linux sends at most 256 PFNs per inflate buffer and 10 statistics. */
#define BALLOON_MAX_PFN_BYTES (64u * 1024u)
#define BALLOON_MAX_STATS     64u

struct virtio_balloon {
    struct virtio_dev *vdev;
    struct guest_ram *ram;
    struct loop *loop;
    struct vdev_kick kick;
    struct loop_timer *stats_timer;

    pthread_mutex_t lock;
    bool active;
    bool quiesced;       /* between quiesce() and resume(): no ring or config change */
    bool target_pending; /* virtio_balloon_set_target() while quiesced: pending_target waits */
    uint32_t pending_target;
    bool stats_held; /* we hold the driver's stats buffer, to return when we want new stats */
    bool reporting;  /* free_page_reporting: offer VIRTIO_BALLOON_F_REPORTING (fixed at create) */
    struct virtq_req stats_req;
    uint32_t target_pages; /* num_pages: what the host wants the balloon to hold */
    uint32_t actual_pages; /* what the guest says it holds */
    uint64_t released;     /* pages madvise()d away, since reset */
    uint64_t reported;     /* bytes released by free page reporting since create */
    struct balloon_stats stats;
};

static uint64_t balloon_features(void *dev)
{
    struct virtio_balloon *b = dev;

    return (1ull << VIRTIO_BALLOON_F_STATS_VQ) | (1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM) |
           (b->reporting ? 1ull << VIRTIO_BALLOON_F_REPORTING : 0);
}

/* struct virtio_balloon_config: num_pages, actual. */
static void balloon_config_read(void *dev, uint32_t off, void *buf, uint32_t len)
{
    struct virtio_balloon *b = dev;
    uint32_t cfg[2];

    pthread_mutex_lock(&b->lock);
    cfg[0] = b->target_pages;
    cfg[1] = b->actual_pages;
    pthread_mutex_unlock(&b->lock);
    memcpy(buf, (uint8_t *)cfg + off, len);
}

static void balloon_config_write(void *dev, uint32_t off, const void *buf, uint32_t len)
{
    struct virtio_balloon *b = dev;

    /* Only `actual` (offset 4) is the driver's to write. */
    if (off == 4 && len == 4) {
        pthread_mutex_lock(&b->lock);
        memcpy(&b->actual_pages, buf, 4);
        pthread_mutex_unlock(&b->lock);
    }
}

/* Releases the guest pages listed in one inflate buffer. Caller holds b->lock. */
static void balloon_inflate(struct virtio_balloon *b, const struct virtq_req *req)
{
    uint32_t pfns[256];
    size_t off = 0,
           end = req->out_len < BALLOON_MAX_PFN_BYTES ? req->out_len : BALLOON_MAX_PFN_BYTES;

    if (req->out_len > BALLOON_MAX_PFN_BYTES)
        log_guest("virtio-balloon: inflate list of %zu bytes truncated to %u", req->out_len,
                  BALLOON_MAX_PFN_BYTES);
    while (off < end) {
        size_t want = end - off < sizeof(pfns) ? end - off : sizeof(pfns);
        size_t n = virtq_req_read(req, off, pfns, want) / 4;

        if (!n)
            break;
        for (size_t i = 0; i < n; i++) {
            gpa_t gpa = (gpa_t)pfns[i] * BALLOON_PAGE;
            void *host = guest_ram_ptr(b->ram, gpa, BALLOON_PAGE);

            if (!host) {
                log_guest("virtio-balloon: page 0x%" PRIx64 " is not in RAM, ignored", gpa);
                continue;
            }
            if (madvise(host, BALLOON_PAGE, MADV_DONTNEED) == 0) {
                b->released++;
                guest_ram_mark_dirty(b->ram, host, BALLOON_PAGE); /* it reads as zero now */
            }
        }
        off += n * 4;
    }
}

/* Releases the free blocks listed in one reporting buffer chain (§5.5.6.7): every
 * device-writable buffer is a range of guest RAM the driver does not use while the chain is
 * ours. virtq_pop() has checked that each lies entirely in RAM (a buffer outside it, or one
 * whose address and length wrap, breaks the queue before we see it). What is left to refuse
 * here: a buffer not aligned to pages at both ends (madvise works on whole pages, and rounding
 * would zero bytes the guest did not give up) and device-readable buffers (not a report). A
 * refused buffer is kept as it is and handed back with the rest. Caller holds b->lock. */
static void balloon_report(struct virtio_balloon *b, const struct virtq_req *req)
{
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);

    if (req->nout)
        log_guest("virtio-balloon: reporting buffer with %u device-readable parts: ignored",
                  req->nout);
    for (unsigned i = 0; i < req->nin; i++) {
        uint8_t *host = req->in[i].iov_base;
        uint64_t len = req->in[i].iov_len;
        uint64_t off = (uint64_t)(host - b->ram->host);

        if (!len)
            continue;
        /* The mapping starts on a page, so the offset tells the host address's alignment. */
        if ((off | len) & (page - 1)) {
            log_guest("virtio-balloon: reported range 0x%" PRIx64 "+0x%" PRIx64
                      " is not page-aligned: kept",
                      b->ram->base + off, len);
            continue;
        }
        if (madvise(host, len, MADV_DONTNEED) != 0) {
            log_guest("virtio-balloon: cannot release 0x%" PRIx64 "+0x%" PRIx64 ": %s",
                      b->ram->base + off, len, strerror(errno));
            continue;
        }
        b->reported += len;
        guest_ram_mark_dirty(b->ram, host, len); /* it reads as zero now */
    }
}

/* True when queue q is the reporting queue under the negotiated features (top comment). */
static bool balloon_is_reportq(struct virtio_balloon *b, unsigned q)
{
    unsigned compact = virtio_negotiated(b->vdev, VIRTIO_BALLOON_F_STATS_VQ) ? 3 : 2;

    return virtio_negotiated(b->vdev, VIRTIO_BALLOON_F_REPORTING) &&
           (q == compact || q == BALLOON_REPORTQ);
}

/* Parses the driver's statistics: tag (le16) + value (le64) pairs (§5.5.6.3). */
static void balloon_parse_stats(struct virtio_balloon *b, const struct virtq_req *req)
{
    uint8_t buf[10];
    unsigned records = 0;

    memset(&b->stats, 0, sizeof(b->stats));
    for (size_t off = 0;
         records++ < BALLOON_MAX_STATS && virtq_req_read(req, off, buf, sizeof(buf)) == sizeof(buf);
         off += sizeof(buf)) {
        uint16_t tag;
        uint64_t val;

        memcpy(&tag, buf, 2);
        memcpy(&val, buf + 2, 8);
        if (tag < BALLOON_STAT_COUNT) {
            b->stats.value[tag] = val;
            b->stats.valid |= 1u << tag;
        }
    }
    b->stats.updated_ns = time_now_ns();
}

/* Loop thread, b->lock held. */
static void balloon_process_locked(struct virtio_balloon *b)
{
    static __thread struct virtq_req *req_site;
    struct virtq_req *req = virtq_req_for_thread(&req_site);

    if (!req || !b->active || b->quiesced)
        return;
    for (unsigned q = BALLOON_INFLATEQ; q <= BALLOON_DEFLATEQ; q++) {
        struct virtq *vq = virtio_get_queue(b->vdev, q);
        bool pushed = false;

        if (!virtq_ready(vq))
            continue;
        while (virtq_pop(vq, req) > 0) {
            if (q == BALLOON_INFLATEQ)
                balloon_inflate(b, req);
            virtq_push(vq, req, 0);
            pushed = true;
        }
        if (pushed)
            virtio_notify_queue(b->vdev, vq);
    }
    for (unsigned q = BALLOON_STATSQ; q < BALLOON_QUEUES; q++) {
        struct virtq *vq = virtio_get_queue(b->vdev, q);
        bool pushed = false;

        if (!balloon_is_reportq(b, q) || !virtq_ready(vq))
            continue;
        while (virtq_pop(vq, req) > 0) {
            balloon_report(b, req);
            virtq_push(vq, req, 0);
            pushed = true;
        }
        if (pushed)
            virtio_notify_queue(b->vdev, vq);
    }
    if (virtio_negotiated(b->vdev, VIRTIO_BALLOON_F_STATS_VQ) && !b->stats_held) {
        struct virtq *vq = virtio_get_queue(b->vdev, BALLOON_STATSQ);

        if (virtq_ready(vq) && virtq_pop(vq, &b->stats_req) > 0) {
            balloon_parse_stats(b, &b->stats_req);
            b->stats_held = true;
        }
    }
}

static void balloon_on_kick(void *opaque)
{
    struct virtio_balloon *b = opaque;

    pthread_mutex_lock(&b->lock);
    balloon_process_locked(b);
    pthread_mutex_unlock(&b->lock);
}

/* Every few seconds: hand the stats buffer back so the driver refills it. */
static void balloon_on_stats_timer(void *opaque)
{
    struct virtio_balloon *b = opaque;

    pthread_mutex_lock(&b->lock);
    if (b->active && !b->quiesced && b->stats_held) {
        struct virtq *vq = virtio_get_queue(b->vdev, BALLOON_STATSQ);

        b->stats_held = false;
        virtq_push(vq, &b->stats_req, 0);
        virtio_notify_queue(b->vdev, vq);
    }
    pthread_mutex_unlock(&b->lock);
    loop_mod_timer(b->loop, b->stats_timer, time_now_ns() + BALLOON_STATS_NS);
}

static void balloon_queue_notify(void *dev, unsigned q)
{
    vdev_kick_signal(&((struct virtio_balloon *)dev)->kick);
}

static int balloon_activate(void *dev, uint64_t features)
{
    struct virtio_balloon *b = dev;

    pthread_mutex_lock(&b->lock);
    b->active = true;
    pthread_mutex_unlock(&b->lock);
    vdev_kick_signal(&b->kick);
    return 0;
}

static void balloon_reset(void *dev)
{
    struct virtio_balloon *b = dev;

    pthread_mutex_lock(&b->lock);
    b->active = false;
    b->stats_held = false;
    b->actual_pages = 0;
    b->released = 0;
    pthread_mutex_unlock(&b->lock);
}

/* Saving thread, register lock held; never the loop thread, which may be waiting for `lock`
 * in a callback (that callback then sees the flag). */
static void balloon_quiesce(void *dev)
{
    struct virtio_balloon *b = dev;

    pthread_mutex_lock(&b->lock);
    b->quiesced = true;
    if (b->active && b->stats_held) {
        /* §5.5.6.3: the driver re-posts the stats buffer once it comes back. */
        struct virtq *vq = virtio_get_queue(b->vdev, BALLOON_STATSQ);

        b->stats_held = false;
        virtq_push(vq, &b->stats_req, 0);
        virtio_notify_queue(b->vdev, vq);
    }
    pthread_mutex_unlock(&b->lock);
}

static void balloon_resume(void *dev)
{
    struct virtio_balloon *b = dev;

    pthread_mutex_lock(&b->lock);
    b->quiesced = false;
    if (b->target_pending) {
        b->target_pending = false;
        b->target_pages = b->pending_target;
        virtio_config_changed(b->vdev);
    }
    pthread_mutex_unlock(&b->lock);
    vdev_kick_signal(&b->kick);
}

#define BALLOON_STATE_VERSION 1

/* Version 1: u32 num_pages (the target), u32 actual. */
static void balloon_save(void *dev, struct sbuf *out)
{
    struct virtio_balloon *b = dev;

    pthread_mutex_lock(&b->lock);
    sbuf_put_u32(out, b->target_pages);
    sbuf_put_u32(out, b->actual_pages);
    pthread_mutex_unlock(&b->lock);
}

/* Both fields take any value: the host may ask for any number of pages, and the driver writes
 * `actual` unchecked (it is only reported back). */
static int balloon_load(void *dev, struct scur *in, uint32_t version)
{
    struct virtio_balloon *b = dev;
    uint32_t target = scur_get_u32(in), actual = scur_get_u32(in);

    if (scur_ok(in))
        return -1;
    pthread_mutex_lock(&b->lock);
    b->target_pages = target;
    b->actual_pages = actual;
    pthread_mutex_unlock(&b->lock);
    return 0;
}

static const struct virtio_device_ops balloon_ops = {
    .name = "virtio-balloon",
    .device_id = VIRTIO_ID_BALLOON,
    .num_queues = BALLOON_QUEUES,
    .saved_queues_min = 3, /* before free page reporting */
    .queue_max = BALLOON_QUEUE,
    .config_size = 8,
    .features = balloon_features,
    .config_read = balloon_config_read,
    .config_write = balloon_config_write,
    .activate = balloon_activate,
    .queue_notify = balloon_queue_notify,
    .reset = balloon_reset,
    .quiesce = balloon_quiesce,
    .resume = balloon_resume,
    .state_version = BALLOON_STATE_VERSION,
    .save = balloon_save,
    .load = balloon_load,
};

void virtio_balloon_set_target(struct virtio_balloon *b, uint64_t bytes)
{
    uint64_t pages = bytes / BALLOON_PAGE;

    uint32_t target = pages > UINT32_MAX ? UINT32_MAX : (uint32_t)pages;

    /* Notified under the lock, so quiesce() sees the change and its notification together. */
    pthread_mutex_lock(&b->lock);
    if (b->quiesced) {
        b->pending_target = target;
        b->target_pending = true;
    } else {
        b->target_pages = target;
        virtio_config_changed(b->vdev);
    }
    pthread_mutex_unlock(&b->lock);
}

void virtio_balloon_get_info(struct virtio_balloon *b, struct balloon_info *out)
{
    pthread_mutex_lock(&b->lock);
    out->target_bytes = (uint64_t)b->target_pages * BALLOON_PAGE;
    out->actual_bytes = (uint64_t)b->actual_pages * BALLOON_PAGE;
    out->released_pages = b->released;
    out->reported_bytes = b->reported;
    out->free_page_reporting = b->reporting;
    out->stats = b->stats;
    pthread_mutex_unlock(&b->lock);
}

static struct vdev_type balloon_type;

static int balloon_create(const struct vdev_env *env, const char *opts, void **dev,
                          const struct virtio_device_ops **ops, char *err)
{
    struct virtio_balloon *b;
    char val[8];
    bool reporting = true;

    if (vdev_opts_check(&balloon_type, opts, err))
        return -EINVAL;
    /* Checked by the table: a boolean when given. */
    if (opt_get(opts, "free_page_reporting", val, sizeof(val)) == 1 && opt_bool(val, &reporting)) {
        snprintf(err, VDEV_ERR_LEN, "--device balloon: free_page_reporting: expected on or off");
        return -EINVAL;
    }
    if (!env->loop) {
        snprintf(err, VDEV_ERR_LEN, "--device balloon: no event loop");
        return -EINVAL;
    }
    b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->ram = env->ram;
    b->loop = env->loop;
    b->reporting = reporting;
    pthread_mutex_init(&b->lock, NULL);
    b->kick.fd = -1;
    if (vdev_kick_init(&b->kick, b->loop, balloon_on_kick, b) ||
        loop_add_timer(b->loop, time_now_ns() + BALLOON_STATS_NS, balloon_on_stats_timer, b,
                       &b->stats_timer)) {
        snprintf(err, VDEV_ERR_LEN, "--device balloon: cannot set up: %s", strerror(errno));
        vdev_kick_destroy(&b->kick);
        pthread_mutex_destroy(&b->lock);
        free(b);
        return -EINVAL;
    }
    *dev = b;
    *ops = &balloon_ops;
    return 0;
}

static void balloon_attach(void *dev, struct virtio_dev *vdev)
{
    ((struct virtio_balloon *)dev)->vdev = vdev;
}

static void balloon_destroy(void *dev)
{
    struct virtio_balloon *b = dev;

    loop_del_timer(b->loop, b->stats_timer);
    vdev_kick_destroy(&b->kick);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

static struct vdev_type balloon_type = {
    .name = "balloon",
    .summary = "virtio-balloon: memory given back or reported free by the guest is released to "
               "the host",
    .usage = "--device balloon[,free_page_reporting=on|off]",
    .create = balloon_create,
    .attach = balloon_attach,
    .destroy = balloon_destroy,
    .flag = "--device balloon",
    .options =
        (const struct vdev_opt[]){
            {.key = "free_page_reporting", .json = "free_page_reporting", .kind = VDEV_OPT_BOOL},
            {NULL},
        },
};
VDEV_TYPE_REGISTER(balloon_type)
