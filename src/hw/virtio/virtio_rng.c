/* virtio-rng (virtio 1.2 §5.4): one request queue; the device fills each device-writable
 * buffer with bytes from the host's getrandom(2).
 *
 * Requests are served on the kicking vCPU thread: getrandom with GRND_NONBLOCK never blocks
 * once the host pool is initialised (and returns EAGAIN before that, when we simply leave the
 * buffer for the next kick). A mutex makes kicks from several harts take turns.
 *
 * Quiesce: the device has no thread; taking the lock waits out a kick in progress, and the
 * `quiesced` flag keeps later ones (and activate()'s poll) from touching the queue. The device
 * has no state of its own to save: the transport's section holds it all. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/random.h>

#include "base/log.h"
#include "hw/virtio/vdev.h"
#include "hw/virtio/virtqueue.h"

#define RNG_QUEUE_SIZE 256
#define RNG_MAX_FILL   (64 * 1024) /* bytes per request; the driver asks for far less */

struct virtio_rng {
    struct virtio_dev *vdev;
    pthread_mutex_t lock; /* serialises queue processing; protects the flags below */
    bool active;          /* between activate() and reset() */
    bool quiesced;        /* between quiesce() and resume() */
    uint64_t bytes;       /* statistics: bytes handed to the guest */
};

/* Fills as many available requests as the host gives entropy for. Caller holds r->lock. */
static void rng_serve_locked(struct virtio_rng *r)
{
    struct virtq *vq = virtio_get_queue(r->vdev, 0);
    struct virtq_req req;
    bool pushed = false;

    if (!r->active || r->quiesced || !virtq_ready(vq))
        return;
    while (virtq_pop(vq, &req) > 0) {
        size_t want = req.in_len < RNG_MAX_FILL ? req.in_len : RNG_MAX_FILL;
        size_t done = 0;

        for (unsigned i = 0; i < req.nin && done < want; i++) {
            size_t n = req.in[i].iov_len;
            ssize_t got;

            if (n > want - done)
                n = want - done;
            got = getrandom(req.in[i].iov_base, n, GRND_NONBLOCK);
            if (got < 0) {
                if (errno == EINTR) {
                    i--;
                    continue;
                }
                break; /* EAGAIN: pool not ready; push what we have */
            }
            done += (size_t)got;
            if ((size_t)got < n)
                break;
        }
        virtq_push(vq, &req, (uint32_t)done);
        r->bytes += done;
        pushed = true;
    }
    if (pushed)
        virtio_notify_queue(r->vdev, vq);
}

static void rng_queue_notify(void *dev, unsigned q)
{
    struct virtio_rng *r = dev;

    pthread_mutex_lock(&r->lock);
    rng_serve_locked(r);
    pthread_mutex_unlock(&r->lock);
}

static int rng_activate(void *dev, uint64_t features)
{
    struct virtio_rng *r = dev;

    pthread_mutex_lock(&r->lock);
    r->active = true;
    rng_serve_locked(r);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

static void rng_reset(void *dev)
{
    struct virtio_rng *r = dev;

    /* Taking the lock waits out a kick in progress on another hart. */
    pthread_mutex_lock(&r->lock);
    r->active = false;
    pthread_mutex_unlock(&r->lock);
}

/* Saving thread, register lock held. Every request is served and pushed inside one locked
 * call, so once we hold the lock none is in flight. */
static void rng_quiesce(void *dev)
{
    struct virtio_rng *r = dev;

    pthread_mutex_lock(&r->lock);
    r->quiesced = true;
    pthread_mutex_unlock(&r->lock);
}

static void rng_resume(void *dev)
{
    struct virtio_rng *r = dev;

    pthread_mutex_lock(&r->lock);
    r->quiesced = false;
    rng_serve_locked(r); /* kicks were held back meanwhile */
    pthread_mutex_unlock(&r->lock);
}

static const struct virtio_device_ops rng_ops = {
    .name = "virtio-rng",
    .device_id = VIRTIO_ID_RNG,
    .num_queues = 1,
    .queue_max = RNG_QUEUE_SIZE,
    .config_size = 0,
    .activate = rng_activate,
    .queue_notify = rng_queue_notify,
    .reset = rng_reset,
    .quiesce = rng_quiesce,
    .resume = rng_resume,
};

static struct vdev_type rng_type;

static int rng_create(const struct vdev_env *env, const char *opts, void **dev,
                      const struct virtio_device_ops **ops, char *err)
{
    struct virtio_rng *r;

    if (vdev_opts_check(&rng_type, opts, err))
        return -EINVAL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    pthread_mutex_init(&r->lock, NULL);
    *dev = r;
    *ops = &rng_ops;
    return 0;
}

static void rng_attach(void *dev, struct virtio_dev *vdev)
{
    ((struct virtio_rng *)dev)->vdev = vdev;
}

static void rng_destroy(void *dev)
{
    struct virtio_rng *r = dev;

    pthread_mutex_destroy(&r->lock);
    free(r);
}

static struct vdev_type rng_type = {
    .name = "rng",
    .summary = "virtio-rng: entropy from the host's getrandom()",
    .usage = "--device rng",
    .create = rng_create,
    .attach = rng_attach,
    .destroy = rng_destroy,
    .flag = "--device rng",
    .options = (const struct vdev_opt[]){{NULL}},
};
VDEV_TYPE_REGISTER(rng_type)
