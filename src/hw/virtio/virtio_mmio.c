/* virtio-mmio transport, version 2. See virtio_mmio.h for the register map and the rules it
 * enforces, virtio.h for the device contract and the locks. */
#include "hw/virtio/virtio_mmio.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "hw/virtio/virtio_mmio_int.h"
#include "hw/virtio/virtqueue.h"

/* --- interrupts ------------------------------------------------------------------------ */

void virtio_mmio_update_irq_locked(struct virtio_dev *vdev)
{
    bool level = vdev->isr != 0;

    if (level != vdev->irq_level) {
        vdev->irq_level = level;
        irq_set(&vdev->irq, level);
    }
}

static void virtio_mmio_raise(struct virtio_dev *vdev, uint32_t bits)
{
    pthread_mutex_lock(&vdev->irq_lock);
    vdev->isr |= bits;
    virtio_mmio_update_irq_locked(vdev);
    pthread_mutex_unlock(&vdev->irq_lock);
}

static void virtio_mmio_ack(struct virtio_dev *vdev, uint32_t bits)
{
    pthread_mutex_lock(&vdev->irq_lock);
    vdev->isr &= ~bits;
    virtio_mmio_update_irq_locked(vdev);
    pthread_mutex_unlock(&vdev->irq_lock);
}

static uint32_t virtio_mmio_isr(struct virtio_dev *vdev)
{
    uint32_t isr;

    pthread_mutex_lock(&vdev->irq_lock);
    isr = vdev->isr;
    pthread_mutex_unlock(&vdev->irq_lock);
    return isr;
}

static bool virtio_mmio_driver_ok(const struct virtio_dev *vdev)
{
    return atomic_load(&vdev->status) & VIRTIO_STATUS_DRIVER_OK;
}

/* --- device-side API (virtio.h) ---------------------------------------------------------- */

struct virtq *virtio_get_queue(struct virtio_dev *vdev, unsigned q)
{
    return q < vdev->ops->num_queues ? &vdev->vqs[q] : NULL;
}

void virtio_notify_queue(struct virtio_dev *vdev, struct virtq *vq)
{
    if (!virtio_mmio_driver_ok(vdev))
        return;
    if (virtq_needs_notify(vq))
        virtio_mmio_raise(vdev, VIRTIO_INT_USED_BUFFER);
}

void virtio_config_changed(struct virtio_dev *vdev)
{
    /* seq_cst: the device's configuration update happens before the new generation is seen. */
    atomic_fetch_add(&vdev->config_generation, 1);
    if (virtio_mmio_driver_ok(vdev))
        virtio_mmio_raise(vdev, VIRTIO_INT_CONFIG_CHANGE);
}

void virtio_set_needs_reset(struct virtio_dev *vdev)
{
    if (atomic_exchange(&vdev->needs_reset, true))
        return;
    /* §2.1.2: with DRIVER_OK set, tell the driver through a configuration change notification. */
    if (virtio_mmio_driver_ok(vdev))
        virtio_mmio_raise(vdev, VIRTIO_INT_CONFIG_CHANGE);
}

bool virtio_negotiated(const struct virtio_dev *vdev, unsigned bit)
{
    return bit < 64 && (atomic_load(&vdev->negotiated) & BIT64(bit));
}

/* virtq_pop() found a guest error on one of our queues (any device thread). */
static void virtio_mmio_queue_error(void *opaque)
{
    virtio_set_needs_reset(opaque);
}

/* --- reset, status, features ------------------------------------------------------------- */

/* §2.4, §4.2.2.1: the device forgets everything the driver set up; Status, InterruptStatus and
 * every QueueReady read 0 afterwards. The device stops first, so no worker uses a queue while
 * we tear it down. ConfigGeneration keeps counting. */
void virtio_mmio_reset_locked(struct virtio_dev *vdev)
{
    vdev->ops->reset(vdev->dev);
    for (unsigned q = 0; q < vdev->ops->num_queues; q++) {
        virtq_reset(&vdev->vqs[q]);
        vdev->qregs[q] = (struct virtio_mmio_queue){.num = vdev->ops->queue_max};
    }
    vdev->device_features_sel = 0;
    vdev->driver_features_sel = 0;
    vdev->driver_features = 0;
    vdev->driver_features_high = false;
    vdev->queue_sel = 0;
    vdev->activated = false;
    atomic_store(&vdev->status, 0);
    atomic_store(&vdev->negotiated, 0);
    atomic_store(&vdev->needs_reset, false);
    virtio_mmio_ack(vdev, ~0u);
}

void virtio_mmio_reset(struct virtio_dev *vdev)
{
    pthread_mutex_lock(&vdev->lock);
    virtio_mmio_reset_locked(vdev);
    pthread_mutex_unlock(&vdev->lock);
}

/* Caller holds lock. §3.1.1 step 5-6, §6.1: accept FEATURES_OK only for a subset of what we
 * offered that includes VERSION_1 (this transport has no legacy interface). */
static bool virtio_mmio_features_ok_locked(struct virtio_dev *vdev)
{
    uint64_t extra = vdev->driver_features & ~vdev->device_features;

    if (extra) {
        log_guest("%s: driver accepted features 0x%" PRIx64
                  " that were not offered (offered 0x%" PRIx64 "); FEATURES_OK refused",
                  vdev->ops->name, extra, vdev->device_features);
        return false;
    }
    if (vdev->driver_features_high) {
        log_guest("%s: driver accepted feature bits above 63, which were not offered; "
                  "FEATURES_OK refused",
                  vdev->ops->name);
        return false;
    }
    if (!(vdev->driver_features & BIT64(VIRTIO_F_VERSION_1))) {
        log_guest("%s: driver did not accept VIRTIO_F_VERSION_1 (a legacy driver?); "
                  "FEATURES_OK refused",
                  vdev->ops->name);
        return false;
    }
    return true;
}

/* Caller holds lock. §2.1, §3.1.1: 0 resets; otherwise the driver only adds bits, in order. */
static void virtio_mmio_write_status_locked(struct virtio_dev *vdev, uint32_t value)
{
    uint32_t old = atomic_load(&vdev->status);
    uint32_t now = value & VIRTIO_STATUS_DRIVER_BITS, added;

    if (value == 0) {
        virtio_mmio_reset_locked(vdev);
        return;
    }
    if (old & ~now) {
        log_guest("%s: driver cleared status bits (0x%x -> 0x%x) without a reset; ignored",
                  vdev->ops->name, old, value);
        return;
    }
    added = now & ~old;
    if (added & VIRTIO_STATUS_FEATURES_OK) {
        const uint32_t need = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;

        if ((now & need) != need) {
            log_guest("%s: FEATURES_OK without ACKNOWLEDGE and DRIVER; refused", vdev->ops->name);
            now &= ~VIRTIO_STATUS_FEATURES_OK;
        } else if (!virtio_mmio_features_ok_locked(vdev)) {
            now &= ~VIRTIO_STATUS_FEATURES_OK;
        } else {
            atomic_store(&vdev->negotiated, vdev->driver_features);
        }
    }
    if ((added & VIRTIO_STATUS_DRIVER_OK) && !(now & VIRTIO_STATUS_FEATURES_OK)) {
        log_guest("%s: DRIVER_OK without FEATURES_OK; refused", vdev->ops->name);
        now &= ~VIRTIO_STATUS_DRIVER_OK;
    }
    atomic_store(&vdev->status, now);

    if ((now & ~old) & VIRTIO_STATUS_DRIVER_OK) {
        if (atomic_load(&vdev->needs_reset)) {
            /* Set-up already went wrong: do not start the device, but say so (§2.1.2). */
            virtio_mmio_raise(vdev, VIRTIO_INT_CONFIG_CHANGE);
        } else if (vdev->ops->activate &&
                   vdev->ops->activate(vdev->dev, atomic_load(&vdev->negotiated)) < 0) {
            log_guest("%s: device failed to start; device needs reset", vdev->ops->name);
            virtio_set_needs_reset(vdev);
        } else {
            vdev->activated = true;
        }
    }
}

static void virtio_mmio_write_driver_features_locked(struct virtio_dev *vdev, uint32_t value)
{
    if (atomic_load(&vdev->status) & VIRTIO_STATUS_FEATURES_OK) {
        log_guest("%s: DriverFeatures written after FEATURES_OK; ignored", vdev->ops->name);
        return;
    }
    switch (vdev->driver_features_sel) {
    case 0: vdev->driver_features = (vdev->driver_features & ~UINT64_C(0xffffffff)) | value; break;
    case 1:
        vdev->driver_features =
            (vdev->driver_features & UINT64_C(0xffffffff)) | ((uint64_t)value << 32);
        break;
    default:
        if (value)
            vdev->driver_features_high = true;
        break;
    }
}

/* --- queues ------------------------------------------------------------------------------ */

/* Caller holds lock. The selected queue, or NULL (logged) when QueueSel names none. */
static struct virtio_mmio_queue *virtio_mmio_selected_locked(struct virtio_dev *vdev,
                                                             const char *what)
{
    if (vdev->queue_sel >= vdev->ops->num_queues) {
        log_guest("%s: %s for queue %" PRIu32 ", which does not exist; ignored", vdev->ops->name,
                  what, vdev->queue_sel);
        return NULL;
    }
    return &vdev->qregs[vdev->queue_sel];
}

/* Caller holds lock. QueueNum and the address registers may change only while the queue is not
 * ready (§4.2.3.2) and before DRIVER_OK. Returns the selected queue's registers or NULL. */
static struct virtio_mmio_queue *virtio_mmio_queue_regs_writable_locked(struct virtio_dev *vdev,
                                                                        const char *what)
{
    struct virtio_mmio_queue *qr = virtio_mmio_selected_locked(vdev, what);

    if (!qr)
        return NULL;
    if (virtq_ready(&vdev->vqs[vdev->queue_sel]) || virtio_mmio_driver_ok(vdev)) {
        log_guest("%s: %s for queue %" PRIu32 " while it is ready or after DRIVER_OK; ignored",
                  vdev->ops->name, what, vdev->queue_sel);
        return NULL;
    }
    return qr;
}

static void virtio_mmio_set_half(uint64_t *reg, uint64_t offset, uint32_t value)
{
    if (offset & 4)
        *reg = (*reg & UINT64_C(0xffffffff)) | ((uint64_t)value << 32);
    else
        *reg = (*reg & ~UINT64_C(0xffffffff)) | value;
}

/* Caller holds lock. QueueReady: 1 turns the registers into a ring after checking them, 0 takes
 * the queue down (only before DRIVER_OK, when no device thread can be using it). */
static void virtio_mmio_write_queue_ready_locked(struct virtio_dev *vdev, uint32_t value)
{
    struct virtio_mmio_queue *qr = virtio_mmio_selected_locked(vdev, "QueueReady");
    uint32_t status = atomic_load(&vdev->status);
    struct virtq *vq;
    struct virtq_config cfg;

    if (!qr)
        return;
    vq = &vdev->vqs[vdev->queue_sel];
    if (value > 1) {
        log_guest("%s: QueueReady value %" PRIu32 "; ignored", vdev->ops->name, value);
        return;
    }
    if (value == (uint32_t)virtq_ready(vq))
        return;
    if (status & VIRTIO_STATUS_DRIVER_OK) {
        log_guest("%s: queue %" PRIu32 " %s after DRIVER_OK; device needs reset", vdev->ops->name,
                  vdev->queue_sel, value ? "enabled" : "disabled");
        virtio_set_needs_reset(vdev);
        return;
    }
    if (!value) {
        virtq_reset(vq);
        return;
    }
    if (!(status & VIRTIO_STATUS_FEATURES_OK)) {
        log_guest("%s: queue %" PRIu32 " enabled before FEATURES_OK; device needs reset",
                  vdev->ops->name, vdev->queue_sel);
        virtio_set_needs_reset(vdev);
        return;
    }
    cfg = (struct virtq_config){
        .num = qr->num,
        .desc = qr->desc,
        .avail = qr->driver,
        .used = qr->device,
        .event_idx = virtio_negotiated(vdev, VIRTIO_F_RING_EVENT_IDX),
        .indirect = virtio_negotiated(vdev, VIRTIO_F_RING_INDIRECT_DESC),
    };
    /* §2.7: a power of two no larger than QueueNumMax; §2.7 alignment table; all in RAM. */
    if (qr->num > vdev->ops->queue_max || virtq_setup(vq, vdev->ram, &cfg) < 0) {
        log_guest("%s: queue %" PRIu32 " set-up refused: size %" PRIu32 " (max %u), desc 0x%" PRIx64
                  ", driver 0x%" PRIx64 ", device 0x%" PRIx64
                  " (need a power-of-two size, aligned areas inside RAM); device needs reset",
                  vdev->ops->name, vdev->queue_sel, qr->num, (unsigned)vdev->ops->queue_max,
                  qr->desc, qr->driver, qr->device);
        virtio_set_needs_reset(vdev);
    }
}

/* Caller holds lock. §4.2.3.4: the value is the queue index (no VIRTIO_F_NOTIFICATION_DATA). */
static void virtio_mmio_write_queue_notify_locked(struct virtio_dev *vdev, uint32_t q)
{
    if (q >= vdev->ops->num_queues) {
        log_guest("%s: notify for queue %" PRIu32 ", which does not exist; ignored",
                  vdev->ops->name, q);
        return;
    }
    /* Kicks before DRIVER_OK are dropped: activate() polls instead (virtio.h); so are kicks
     * while quiesced: resume() polls. */
    if (!vdev->activated || vdev->quiesced || !virtq_ready(&vdev->vqs[q]))
        return;
    if (vdev->ops->queue_notify)
        vdev->ops->queue_notify(vdev->dev, q);
}

/* --- quiesce ---------------------------------------------------------------------------- */

void virtio_mmio_quiesce(struct virtio_dev *vdev)
{
    pthread_mutex_lock(&vdev->lock);
    if (!vdev->quiesced) {
        vdev->quiesced = true;
        if (vdev->ops->quiesce)
            vdev->ops->quiesce(vdev->dev);
    }
    pthread_mutex_unlock(&vdev->lock);
}

void virtio_mmio_resume(struct virtio_dev *vdev)
{
    pthread_mutex_lock(&vdev->lock);
    if (vdev->quiesced) {
        vdev->quiesced = false;
        if (vdev->ops->resume) {
            vdev->ops->resume(vdev->dev);
        } else if (vdev->activated && vdev->ops->queue_notify) {
            /* Kicks were dropped meanwhile: pass one on for every queue (virtio.h, resume). */
            for (unsigned q = 0; q < vdev->ops->num_queues; q++) {
                if (virtq_ready(&vdev->vqs[q]))
                    vdev->ops->queue_notify(vdev->dev, q);
            }
        }
    }
    pthread_mutex_unlock(&vdev->lock);
}

/* --- MMIO -------------------------------------------------------------------------------- */

/* Caller holds lock. One 32-bit register read. */
static uint32_t virtio_mmio_read_reg_locked(struct virtio_dev *vdev, uint64_t offset)
{
    const struct virtio_mmio_queue *qr;

    switch (offset) {
    case VIRTIO_MMIO_REG_MAGIC_VALUE: return VIRTIO_MMIO_MAGIC;
    case VIRTIO_MMIO_REG_VERSION: return VIRTIO_MMIO_VERSION;
    case VIRTIO_MMIO_REG_DEVICE_ID: return vdev->ops->device_id;
    case VIRTIO_MMIO_REG_VENDOR_ID: return VIRTIO_MMIO_VENDOR_ID;
    case VIRTIO_MMIO_REG_DEVICE_FEATURES:
        if (vdev->device_features_sel > 1)
            return 0;
        return (uint32_t)(vdev->device_features >> (32 * vdev->device_features_sel));
    case VIRTIO_MMIO_REG_QUEUE_NUM_MAX:
        /* §4.2.2.1: 0 for a queue that is not available. */
        return vdev->queue_sel < vdev->ops->num_queues ? vdev->ops->queue_max : 0;
    case VIRTIO_MMIO_REG_QUEUE_READY:
        return vdev->queue_sel < vdev->ops->num_queues && virtq_ready(&vdev->vqs[vdev->queue_sel]);
    case VIRTIO_MMIO_REG_INTERRUPT_STATUS: return virtio_mmio_isr(vdev);
    case VIRTIO_MMIO_REG_STATUS:
        return atomic_load(&vdev->status) |
               (atomic_load(&vdev->needs_reset) ? VIRTIO_STATUS_DEVICE_NEEDS_RESET : 0);
    case VIRTIO_MMIO_REG_QUEUE_DESC_LOW:
    case VIRTIO_MMIO_REG_QUEUE_DESC_HIGH:
    case VIRTIO_MMIO_REG_QUEUE_DRIVER_LOW:
    case VIRTIO_MMIO_REG_QUEUE_DRIVER_HIGH:
    case VIRTIO_MMIO_REG_QUEUE_DEVICE_LOW:
    case VIRTIO_MMIO_REG_QUEUE_DEVICE_HIGH: {
        uint64_t v;

        if (vdev->queue_sel >= vdev->ops->num_queues)
            return 0;
        qr = &vdev->qregs[vdev->queue_sel];
        v = offset < VIRTIO_MMIO_REG_QUEUE_DRIVER_LOW   ? qr->desc
            : offset < VIRTIO_MMIO_REG_QUEUE_DEVICE_LOW ? qr->driver
                                                        : qr->device;
        return (uint32_t)(v >> (offset & 4 ? 32 : 0));
    }
    case VIRTIO_MMIO_REG_SHM_LEN_LOW:
    case VIRTIO_MMIO_REG_SHM_LEN_HIGH:
    case VIRTIO_MMIO_REG_SHM_BASE_LOW:
    case VIRTIO_MMIO_REG_SHM_BASE_HIGH:
        /* §4.2.2: no shared memory regions; a length of -1 says the selected one is absent. */
        return 0xffffffff;
    case VIRTIO_MMIO_REG_CONFIG_GENERATION: return atomic_load(&vdev->config_generation);
    default:
        /* Write-only registers, QueueReset (feature not offered) and holes read 0. */
        return 0;
    }
}

/* Caller holds lock. One 32-bit register write. */
static void virtio_mmio_write_reg_locked(struct virtio_dev *vdev, uint64_t offset, uint32_t value)
{
    struct virtio_mmio_queue *qr;

    switch (offset) {
    case VIRTIO_MMIO_REG_DEVICE_FEATURES_SEL: vdev->device_features_sel = value; break;
    case VIRTIO_MMIO_REG_DRIVER_FEATURES:
        virtio_mmio_write_driver_features_locked(vdev, value);
        break;
    case VIRTIO_MMIO_REG_DRIVER_FEATURES_SEL: vdev->driver_features_sel = value; break;
    case VIRTIO_MMIO_REG_QUEUE_SEL: vdev->queue_sel = value; break;
    case VIRTIO_MMIO_REG_QUEUE_NUM:
        qr = virtio_mmio_queue_regs_writable_locked(vdev, "QueueNum");
        if (qr)
            qr->num = value;
        break;
    case VIRTIO_MMIO_REG_QUEUE_READY: virtio_mmio_write_queue_ready_locked(vdev, value); break;
    case VIRTIO_MMIO_REG_QUEUE_NOTIFY: virtio_mmio_write_queue_notify_locked(vdev, value); break;
    case VIRTIO_MMIO_REG_INTERRUPT_ACK: virtio_mmio_ack(vdev, value); break;
    case VIRTIO_MMIO_REG_STATUS: virtio_mmio_write_status_locked(vdev, value); break;
    case VIRTIO_MMIO_REG_QUEUE_DESC_LOW:
    case VIRTIO_MMIO_REG_QUEUE_DESC_HIGH:
        qr = virtio_mmio_queue_regs_writable_locked(vdev, "QueueDesc");
        if (qr)
            virtio_mmio_set_half(&qr->desc, offset, value);
        break;
    case VIRTIO_MMIO_REG_QUEUE_DRIVER_LOW:
    case VIRTIO_MMIO_REG_QUEUE_DRIVER_HIGH:
        qr = virtio_mmio_queue_regs_writable_locked(vdev, "QueueDriver");
        if (qr)
            virtio_mmio_set_half(&qr->driver, offset, value);
        break;
    case VIRTIO_MMIO_REG_QUEUE_DEVICE_LOW:
    case VIRTIO_MMIO_REG_QUEUE_DEVICE_HIGH:
        qr = virtio_mmio_queue_regs_writable_locked(vdev, "QueueDevice");
        if (qr)
            virtio_mmio_set_half(&qr->device, offset, value);
        break;
    case VIRTIO_MMIO_REG_SHM_SEL: break; /* no regions: any selection reads as absent */
    default:
        log_guest("%s: write of 0x%" PRIx32 " to read-only or unknown register 0x%03" PRIx64
                  "; ignored",
                  vdev->ops->name, value, offset);
        break;
    }
}

/* Caller holds lock. `size` bytes of configuration space at `off` (aligned by the bus). */
static uint32_t virtio_mmio_config_read_locked(struct virtio_dev *vdev, uint32_t off, unsigned size)
{
    uint8_t buf[4] = {0};

    if (off + size > vdev->ops->config_size) {
        log_guest("%s: config read of %u bytes at 0x%" PRIx32 " beyond its %zu bytes; reads 0",
                  vdev->ops->name, size, off, vdev->ops->config_size);
        return 0;
    }
    if (vdev->ops->config_read)
        vdev->ops->config_read(vdev->dev, off, buf, size);
    return (uint32_t)buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 |
           (uint32_t)buf[3] << 24;
}

static void virtio_mmio_config_write_locked(struct virtio_dev *vdev, uint32_t off, unsigned size,
                                            uint32_t value)
{
    const uint8_t buf[4] = {(uint8_t)value, (uint8_t)(value >> 8), (uint8_t)(value >> 16),
                            (uint8_t)(value >> 24)};

    if (off + size > vdev->ops->config_size) {
        log_guest("%s: config write of %u bytes at 0x%" PRIx32 " beyond its %zu bytes; ignored",
                  vdev->ops->name, size, off, vdev->ops->config_size);
        return;
    }
    if (vdev->ops->config_write)
        vdev->ops->config_write(vdev->dev, off, buf, size);
}

static int virtio_mmio_read(void *opaque, uint64_t offset, unsigned size, uint64_t *value)
{
    struct virtio_dev *vdev = opaque;

    *value = 0;
    if (offset >= VIRTIO_MMIO_SIZE) /* a board that mapped a larger window */
        return 0;
    if (offset < VIRTIO_MMIO_CONFIG && size != 4) {
        /* §4.2.2.2: the driver uses only 32-bit accesses for registers. */
        log_guest("%s: %u-byte read of register 0x%03" PRIx64 "; reads 0", vdev->ops->name, size,
                  offset);
        return 0;
    }
    pthread_mutex_lock(&vdev->lock);
    if (offset >= VIRTIO_MMIO_CONFIG)
        *value =
            virtio_mmio_config_read_locked(vdev, (uint32_t)(offset - VIRTIO_MMIO_CONFIG), size);
    else
        *value = virtio_mmio_read_reg_locked(vdev, offset);
    pthread_mutex_unlock(&vdev->lock);
    return 0;
}

static int virtio_mmio_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    struct virtio_dev *vdev = opaque;

    if (offset >= VIRTIO_MMIO_SIZE)
        return 0;
    if (offset < VIRTIO_MMIO_CONFIG && size != 4) {
        log_guest("%s: %u-byte write of register 0x%03" PRIx64 "; ignored", vdev->ops->name, size,
                  offset);
        return 0;
    }
    pthread_mutex_lock(&vdev->lock);
    if (offset >= VIRTIO_MMIO_CONFIG)
        virtio_mmio_config_write_locked(vdev, (uint32_t)(offset - VIRTIO_MMIO_CONFIG), size,
                                        (uint32_t)value);
    else
        virtio_mmio_write_reg_locked(vdev, offset, (uint32_t)value);
    pthread_mutex_unlock(&vdev->lock);
    return 0;
}

const struct mmio_ops virtio_mmio_ops = {
    .read = virtio_mmio_read,
    .write = virtio_mmio_write,
    .min_size = 1,
    .max_size = 4,
};

/* --- life cycle -------------------------------------------------------------------------- */

int virtio_mmio_create(struct guest_ram *ram, const struct irq_line *irq,
                       const struct virtio_device_ops *ops, void *dev, struct virtio_dev **out)
{
    struct virtio_dev *vdev;
    int rc;

    *out = NULL;
    if (!ram || !ops || !ops->name || !ops->reset || ops->device_id == 0 ||
        ops->num_queues > VIRTIO_MMIO_MAX_QUEUES || ops->queue_max == 0 ||
        ops->queue_max > VIRTIO_QUEUE_SIZE_MAX || ops->config_size > 0x100 ||
        !ops->quiesce != !ops->resume || !ops->save != !ops->load ||
        !ops->save != !ops->state_version)
        return -EINVAL;

    vdev = calloc(1, sizeof(*vdev));
    if (!vdev)
        return -ENOMEM;
    vdev->vqs = calloc(ops->num_queues ? ops->num_queues : 1, sizeof(*vdev->vqs));
    vdev->qregs = calloc(ops->num_queues ? ops->num_queues : 1, sizeof(*vdev->qregs));
    if (!vdev->vqs || !vdev->qregs) {
        rc = -ENOMEM;
        goto free_vdev;
    }
    rc = -pthread_mutex_init(&vdev->lock, NULL);
    if (rc)
        goto free_vdev;
    rc = -pthread_mutex_init(&vdev->irq_lock, NULL);
    if (rc)
        goto destroy_lock;

    vdev->ops = ops;
    vdev->dev = dev;
    vdev->ram = ram;
    if (irq)
        vdev->irq = *irq;
    vdev->device_features = (ops->features ? ops->features(dev) & VIRTIO_DEVICE_FEATURE_MASK : 0) |
                            VIRTIO_MMIO_TRANSPORT_FEATURES;
    for (unsigned q = 0; q < ops->num_queues; q++) {
        virtq_init(&vdev->vqs[q], ops->name, q, virtio_mmio_queue_error, vdev);
        vdev->qregs[q].num = ops->queue_max;
    }
    atomic_init(&vdev->status, 0);
    atomic_init(&vdev->negotiated, 0);
    atomic_init(&vdev->needs_reset, false);
    atomic_init(&vdev->config_generation, 0);
    *out = vdev;
    return 0;

destroy_lock:
    pthread_mutex_destroy(&vdev->lock);
free_vdev:
    free(vdev->qregs);
    free(vdev->vqs);
    free(vdev);
    return rc;
}

void virtio_mmio_destroy(struct virtio_dev *vdev)
{
    if (!vdev)
        return;
    pthread_mutex_destroy(&vdev->irq_lock);
    pthread_mutex_destroy(&vdev->lock);
    free(vdev->qregs);
    free(vdev->vqs);
    free(vdev);
}
