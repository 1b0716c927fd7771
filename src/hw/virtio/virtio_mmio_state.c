/* Saving and loading a virtio-mmio transport with its queues and its device (virtio_mmio.h has
 * the layout and the contract). Kept apart from the register code so that the transport links
 * without the state encoder.
 *
 * Loading is hostile-input parsing (base/state.h): the payload is read whole into a local copy,
 * every field is checked against what this transport and its RAM allow, and only then does the
 * transport change. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/state.h"
#include "hw/virtio/virtio_mmio_int.h"

/* One queue as saved: the driver's registers, whether QueueReady was 1, and the position. */
struct vm_saved_queue {
    struct virtio_mmio_queue regs;
    bool ready;
    struct virtq_state pos;
};

/* The whole payload, read and checked before anything is applied. */
struct vm_saved {
    uint32_t status;
    bool needs_reset;
    bool activated;
    uint32_t device_features_sel;
    uint32_t driver_features_sel;
    uint64_t driver_features;
    bool driver_features_high;
    uint64_t negotiated;
    uint32_t queue_sel;
    uint32_t isr;
    uint32_t config_generation;
    struct vm_saved_queue *queues; /* [num_queues] */
    uint32_t dev_version;
    const uint8_t *dev_data; /* points into the payload */
    uint32_t dev_len;
};

/* --- save -------------------------------------------------------------------------------- */

void virtio_mmio_save(struct virtio_dev *vdev, struct sbuf *out)
{
    const struct virtio_device_ops *ops = vdev->ops;
    struct sbuf dev;
    uint32_t isr;

    pthread_mutex_lock(&vdev->lock);
    if (vdev->activated && !vdev->quiesced)
        log_warn("%s: saved while running (not quiesced): its queue positions may be stale",
                 ops->name);
    sbuf_put_u32(out, ops->device_id);
    sbuf_put_u32(out, ops->num_queues);
    sbuf_put_u32(out, atomic_load(&vdev->status));
    sbuf_put_bool(out, atomic_load(&vdev->needs_reset));
    sbuf_put_bool(out, vdev->activated);
    sbuf_put_u32(out, vdev->device_features_sel);
    sbuf_put_u32(out, vdev->driver_features_sel);
    sbuf_put_u64(out, vdev->driver_features);
    sbuf_put_bool(out, vdev->driver_features_high);
    sbuf_put_u64(out, atomic_load(&vdev->negotiated));
    sbuf_put_u32(out, vdev->queue_sel);
    pthread_mutex_lock(&vdev->irq_lock);
    isr = vdev->isr;
    pthread_mutex_unlock(&vdev->irq_lock);
    sbuf_put_u32(out, isr);
    sbuf_put_u32(out, atomic_load(&vdev->config_generation));

    for (unsigned q = 0; q < ops->num_queues; q++) {
        const struct virtio_mmio_queue *qr = &vdev->qregs[q];
        struct virtq_state pos;

        /* The device is quiesced (or idle): its threads published these under its own lock,
         * which quiesce() took after them. */
        virtq_get_state(&vdev->vqs[q], &pos);
        sbuf_put_u32(out, qr->num);
        sbuf_put_u64(out, qr->desc);
        sbuf_put_u64(out, qr->driver);
        sbuf_put_u64(out, qr->device);
        sbuf_put_bool(out, virtq_ready(&vdev->vqs[q]));
        sbuf_put_u16(out, pos.last_avail);
        sbuf_put_u16(out, pos.used_idx);
        sbuf_put_u16(out, pos.signalled_used);
        sbuf_put_bool(out, pos.signalled_valid);
        sbuf_put_bool(out, pos.notify_off);
        sbuf_put_bool(out, pos.broken);
    }

    /* The device's part, nested with its own version and length so the transport can check
     * and skip it without knowing its layout. */
    sbuf_init(&dev);
    if (ops->save)
        ops->save(vdev->dev, &dev);
    if (dev.oom || dev.len > UINT32_MAX)
        out->oom = true;
    sbuf_put_u32(out, ops->save ? ops->state_version : 0);
    sbuf_put_u32(out, (uint32_t)dev.len);
    sbuf_put_bytes(out, dev.data, dev.len);
    sbuf_free(&dev);
    pthread_mutex_unlock(&vdev->lock);
}

/* --- load: parse and check ----------------------------------------------------------------- */

#define VM_NO_QUEUE UINT32_MAX

/* A bool field, refused by name (and queue, unless VM_NO_QUEUE) when it is not 0 or 1. */
static bool vm_get_bool(struct scur *in, const char *field, uint32_t q)
{
    uint8_t v = scur_get_u8(in);

    if (v <= 1)
        return v;
    if (q == VM_NO_QUEUE)
        scur_fail(in, "%s is %u, expected 0 or 1", field, v);
    else
        scur_fail(in, "queue %" PRIu32 ": %s is %u, expected 0 or 1", q, field, v);
    return false;
}

/* Reads and checks one queue. `st` has the transport fields already checked. */
static int vm_read_queue(struct virtio_dev *vdev, struct scur *in, const struct vm_saved *st,
                         unsigned q)
{
    struct vm_saved_queue *sq = &st->queues[q];
    const struct virtq_state *p = &sq->pos;
    struct virtq_config cfg;
    struct virtq probe;
    uint32_t n;

    sq->regs.num = scur_get_u32(in);
    sq->regs.desc = scur_get_u64(in);
    sq->regs.driver = scur_get_u64(in);
    sq->regs.device = scur_get_u64(in);
    sq->ready = vm_get_bool(in, "ready", q);
    sq->pos.last_avail = scur_get_u16(in);
    sq->pos.used_idx = scur_get_u16(in);
    sq->pos.signalled_used = scur_get_u16(in);
    sq->pos.signalled_valid = vm_get_bool(in, "signalled_valid", q);
    sq->pos.notify_off = vm_get_bool(in, "notify_off", q);
    sq->pos.broken = vm_get_bool(in, "broken", q);
    if (scur_ok(in))
        return -1;

    if (!sq->ready) {
        /* The registers of a queue that is not ready are whatever the driver wrote; they are
         * checked when it sets QueueReady. It has no ring position. */
        if (p->last_avail || p->used_idx || p->signalled_used || p->signalled_valid ||
            p->notify_off || p->broken)
            return scur_fail(in, "queue %u is not ready but has a ring position", q);
        return 0;
    }
    n = sq->regs.num;
    if (!(st->status & VIRTIO_STATUS_FEATURES_OK))
        return scur_fail(in, "queue %u is ready before FEATURES_OK", q);
    if (n == 0 || (n & (n - 1)))
        return scur_fail(in, "queue %u: size %" PRIu32 " is not a power of two", q, n);
    if (n > vdev->ops->queue_max)
        return scur_fail(in, "queue %u: size %" PRIu32 " is above QueueNumMax %u of %s", q, n,
                         (unsigned)vdev->ops->queue_max, vdev->ops->name);
    /* A trial mapping on a scratch queue: the same checks the transport makes at QueueReady. */
    cfg = (struct virtq_config){
        .num = n,
        .desc = sq->regs.desc,
        .avail = sq->regs.driver,
        .used = sq->regs.device,
        .event_idx = st->negotiated & BIT64(VIRTIO_F_RING_EVENT_IDX),
        .indirect = st->negotiated & BIT64(VIRTIO_F_RING_INDIRECT_DESC),
    };
    virtq_init(&probe, vdev->ops->name, q, NULL, NULL);
    if (virtq_setup(&probe, vdev->ram, &cfg) < 0)
        return scur_fail(in,
                         "queue %u: rings desc 0x%" PRIx64 ", driver 0x%" PRIx64
                         ", device 0x%" PRIx64 " of size %" PRIu32
                         " are misaligned or not inside guest RAM (0x%" PRIx64 "+0x%" PRIx64 ")",
                         q, cfg.desc, cfg.avail, cfg.used, n, vdev->ram->base, vdev->ram->size);
    /* quiesce() pushes every request popped: anything still in flight would never complete. */
    if (p->last_avail != p->used_idx)
        return scur_fail(in,
                         "queue %u: %u requests in flight (last_avail %u, used_idx %u); was the "
                         "device quiesced before saving?",
                         q, (unsigned)(uint16_t)(p->last_avail - p->used_idx),
                         (unsigned)p->last_avail, (unsigned)p->used_idx);
    return 0;
}

/* Checks the transport fields of a fully read `st` against the device and the spec's rules. */
static int vm_check_transport(struct virtio_dev *vdev, struct scur *in, const struct vm_saved *st)
{
    const char *name = vdev->ops->name;
    uint32_t status = st->status;
    const uint32_t need = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;

    if (status & ~(uint32_t)VIRTIO_STATUS_DRIVER_BITS)
        return scur_fail(in, "status 0x%" PRIx32 " has bits 0x%" PRIx32 " a driver cannot set",
                         status, status & ~(uint32_t)VIRTIO_STATUS_DRIVER_BITS);
    /* §3.1.1: FEATURES_OK after ACKNOWLEDGE and DRIVER, DRIVER_OK after FEATURES_OK. */
    if ((status & VIRTIO_STATUS_FEATURES_OK) && (status & need) != need)
        return scur_fail(in, "status 0x%" PRIx32 ": FEATURES_OK without ACKNOWLEDGE and DRIVER",
                         status);
    if ((status & VIRTIO_STATUS_DRIVER_OK) && !(status & VIRTIO_STATUS_FEATURES_OK))
        return scur_fail(in, "status 0x%" PRIx32 ": DRIVER_OK without FEATURES_OK", status);
    if (status & VIRTIO_STATUS_FEATURES_OK) {
        /* §6.1 and what FEATURES_OK accepted: a subset of the offer, with VERSION_1. */
        if (st->negotiated != st->driver_features || st->driver_features_high)
            return scur_fail(in,
                             "negotiated features 0x%" PRIx64
                             " differ from those the driver accepted (0x%" PRIx64 "%s)",
                             st->negotiated, st->driver_features,
                             st->driver_features_high ? " and bits above 63" : "");
        if (st->negotiated & ~vdev->device_features)
            return scur_fail(in,
                             "negotiated features 0x%" PRIx64 " include 0x%" PRIx64
                             ", which %s does not offer (it offers 0x%" PRIx64 ")",
                             st->negotiated, st->negotiated & ~vdev->device_features, name,
                             vdev->device_features);
        if (!(st->negotiated & BIT64(VIRTIO_F_VERSION_1)))
            return scur_fail(in, "negotiated features 0x%" PRIx64 " lack VIRTIO_F_VERSION_1",
                             st->negotiated);
    } else if (st->negotiated) {
        return scur_fail(in, "negotiated features 0x%" PRIx64 " without FEATURES_OK",
                         st->negotiated);
    }
    if (st->activated && !(status & VIRTIO_STATUS_DRIVER_OK))
        return scur_fail(in, "device running without DRIVER_OK in status 0x%" PRIx32, status);
    if ((status & VIRTIO_STATUS_DRIVER_OK) && !st->activated && !st->needs_reset)
        return scur_fail(in, "DRIVER_OK set, but the device neither runs nor needs a reset");
    if (st->isr & ~(uint32_t)VIRTIO_MMIO_ISR_BITS)
        return scur_fail(in, "InterruptStatus 0x%" PRIx32 " has unknown bits", st->isr);
    return 0;
}

/* Reads the nested device state header and leaves st->dev_data pointing at its bytes. */
static int vm_read_device(struct virtio_dev *vdev, struct scur *in, struct vm_saved *st)
{
    const struct virtio_device_ops *ops = vdev->ops;

    st->dev_version = scur_get_u32(in);
    st->dev_len = scur_get_u32(in);
    if (scur_ok(in))
        return -1;
    if (!ops->save) {
        if (st->dev_version || st->dev_len)
            return scur_fail(
                in, "device state (version %" PRIu32 ", %" PRIu32 " bytes) for %s, which has none",
                st->dev_version, st->dev_len, ops->name);
        return 0;
    }
    if (st->dev_version == 0 || st->dev_version > ops->state_version)
        return scur_fail(in, "%s state version %" PRIu32 ": this build reads 1 to %" PRIu32,
                         ops->name, st->dev_version, ops->state_version);
    if (st->dev_len > in->len - in->pos)
        return scur_fail(in, "%s state of %" PRIu32 " bytes runs past the end (%zu left)",
                         ops->name, st->dev_len, in->len - in->pos);
    st->dev_data = in->data + in->pos;
    in->pos += st->dev_len;
    return 0;
}

/* Reads and checks the whole payload into st (st->queues allocated by the caller). */
static int vm_read(struct virtio_dev *vdev, struct scur *in, uint32_t version, struct vm_saved *st)
{
    const struct virtio_device_ops *ops = vdev->ops;
    uint32_t device_id, num_queues;

    if (version == 0 || version > VIRTIO_MMIO_STATE_VERSION)
        return scur_fail(in, "version %" PRIu32 ": this build reads 1 to %u", version,
                         VIRTIO_MMIO_STATE_VERSION);
    device_id = scur_get_u32(in);
    num_queues = scur_get_u32(in);
    if (scur_ok(in))
        return -1;
    if (device_id != ops->device_id)
        return scur_fail(in, "saved device has id %" PRIu32 ", this one is %s (id %" PRIu32 ")",
                         device_id, ops->name, ops->device_id);
    /* Fewer queues: a state saved before the device gained its newer queues (virtio.h,
     * saved_queues_min); those stay zero in st, not ready. */
    if (num_queues != ops->num_queues &&
        (!ops->saved_queues_min || num_queues < ops->saved_queues_min ||
         num_queues > ops->num_queues))
        return scur_fail(in, "saved device has %" PRIu32 " queues, this %s has %u", num_queues,
                         ops->name, ops->num_queues);

    st->status = scur_get_u32(in);
    st->needs_reset = vm_get_bool(in, "needs_reset", VM_NO_QUEUE);
    st->activated = vm_get_bool(in, "activated", VM_NO_QUEUE);
    st->device_features_sel = scur_get_u32(in);
    st->driver_features_sel = scur_get_u32(in);
    st->driver_features = scur_get_u64(in);
    st->driver_features_high = vm_get_bool(in, "driver_features_high", VM_NO_QUEUE);
    st->negotiated = scur_get_u64(in);
    st->queue_sel = scur_get_u32(in);
    st->isr = scur_get_u32(in);
    st->config_generation = scur_get_u32(in);
    if (scur_ok(in) || vm_check_transport(vdev, in, st))
        return -1;
    for (unsigned q = 0; q < num_queues; q++) {
        if (vm_read_queue(vdev, in, st, q))
            return -1;
    }
    if (vm_read_device(vdev, in, st))
        return -1;
    return scur_finish(in);
}

/* --- load: apply ------------------------------------------------------------------------- */

/* Caller holds lock; the transport was just reset. Runs the device's loader over its bytes. */
static int vm_load_device_locked(struct virtio_dev *vdev, struct scur *in,
                                 const struct vm_saved *st)
{
    const struct virtio_device_ops *ops = vdev->ops;
    struct scur dev;
    int rc;

    if (!ops->load)
        return 0;
    scur_init(&dev, st->dev_data, st->dev_len, ops->name);
    rc = ops->load(vdev->dev, &dev, st->dev_version);
    if (rc == 0 && scur_finish(&dev) == 0)
        return 0;
    if (!dev.failed)
        scur_fail(&dev, "refused its state");
    return scur_fail(in, "%s", dev.err);
}

/* Caller holds lock. Puts the checked state in place; -1 with in->err on the few things that
 * can still fail (the device's own state, its start). */
static int vm_apply_locked(struct virtio_dev *vdev, struct scur *in, const struct vm_saved *st)
{
    const struct virtio_device_ops *ops = vdev->ops;

    virtio_mmio_reset_locked(vdev);
    vdev->device_features_sel = st->device_features_sel;
    vdev->driver_features_sel = st->driver_features_sel;
    vdev->driver_features = st->driver_features;
    vdev->driver_features_high = st->driver_features_high;
    vdev->queue_sel = st->queue_sel;
    atomic_store(&vdev->negotiated, st->negotiated);
    atomic_store(&vdev->status, st->status);
    atomic_store(&vdev->needs_reset, st->needs_reset);
    atomic_store(&vdev->config_generation, st->config_generation);
    for (unsigned q = 0; q < ops->num_queues; q++) {
        const struct vm_saved_queue *sq = &st->queues[q];
        struct virtq_config cfg = {
            .num = sq->regs.num,
            .desc = sq->regs.desc,
            .avail = sq->regs.driver,
            .used = sq->regs.device,
            .event_idx = st->negotiated & BIT64(VIRTIO_F_RING_EVENT_IDX),
            .indirect = st->negotiated & BIT64(VIRTIO_F_RING_INDIRECT_DESC),
        };

        vdev->qregs[q] = sq->regs;
        if (!sq->ready)
            continue;
        if (virtq_setup(&vdev->vqs[q], vdev->ram, &cfg) < 0)
            return scur_fail(in, "queue %u: rings cannot be mapped", q); /* checked already */
        virtq_set_state(&vdev->vqs[q], &sq->pos);
    }
    if (vm_load_device_locked(vdev, in, st))
        return -1;

    /* The line follows InterruptStatus: high again if the driver had not acknowledged. Set
     * before activate(), whose first poll may add a bit of its own. */
    pthread_mutex_lock(&vdev->irq_lock);
    vdev->isr = st->isr;
    virtio_mmio_update_irq_locked(vdev);
    pthread_mutex_unlock(&vdev->irq_lock);

    if (st->activated) {
        if (ops->activate && ops->activate(vdev->dev, st->negotiated) < 0)
            return scur_fail(in, "%s failed to start with features 0x%" PRIx64, ops->name,
                             st->negotiated);
        vdev->activated = true;
    }
    return 0;
}

int virtio_mmio_load(struct virtio_dev *vdev, struct scur *in, uint32_t version)
{
    struct vm_saved st = {0};
    int rc;

    st.queues = calloc(vdev->ops->num_queues ? vdev->ops->num_queues : 1, sizeof(*st.queues));
    pthread_mutex_lock(&vdev->lock);
    if (!st.queues)
        rc = scur_fail(in, "out of memory");
    else
        rc = vm_read(vdev, in, version, &st);
    if (rc == 0)
        rc = vm_apply_locked(vdev, in, &st);
    if (rc)
        virtio_mmio_reset_locked(vdev); /* no half-loaded device */
    pthread_mutex_unlock(&vdev->lock);
    free(st.queues);
    return rc ? -1 : 0;
}
