/* virtio-mmio transport internals, shared by virtio_mmio.c (registers, life cycle, quiesce) and
 * virtio_mmio_state.c (save and load). Not for devices: they see only virtio.h. */
#ifndef TESSERA_HW_VIRTIO_VIRTIO_MMIO_INT_H
#define TESSERA_HW_VIRTIO_VIRTIO_MMIO_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "hw/virtio/virtio_mmio.h"
#include "hw/virtio/virtqueue.h"

#define BIT64(n) (UINT64_C(1) << (n))

/* Transport features this core implements for every device. */
#define VIRTIO_MMIO_TRANSPORT_FEATURES                                \
    (BIT64(VIRTIO_F_VERSION_1) | BIT64(VIRTIO_F_RING_INDIRECT_DESC) | \
     BIT64(VIRTIO_F_RING_EVENT_IDX))

/* Status bits the driver may write; DEVICE_NEEDS_RESET is the device's (Linux writes back what
 * it read, so that bit is dropped silently). */
#define VIRTIO_STATUS_DRIVER_BITS                                                   \
    (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK | \
     VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FAILED)

/* InterruptStatus bits this transport ever sets (virtio 1.2 §4.2.2). */
#define VIRTIO_MMIO_ISR_BITS (VIRTIO_INT_USED_BUFFER | VIRTIO_INT_CONFIG_CHANGE)

/* The driver's view of one queue's registers, kept until QueueReady turns them into a ring. */
struct virtio_mmio_queue {
    uint32_t num;
    uint64_t desc, driver, device;
};

struct virtio_dev {
    /* Immutable after virtio_mmio_create(). */
    const struct virtio_device_ops *ops;
    void *dev;
    struct guest_ram *ram;
    struct irq_line irq;
    uint64_t device_features;
    struct virtq *vqs; /* [num_queues]; the rings belong to the device's threads (virtqueue.h) */

    /* Protected by `lock` (the register lock). */
    pthread_mutex_t lock;
    uint32_t device_features_sel;
    uint32_t driver_features_sel;
    uint64_t driver_features;
    bool driver_features_high; /* the driver set a bit above 63: never offered */
    uint32_t queue_sel;
    bool activated;                  /* activate() succeeded since the last reset */
    bool quiesced;                   /* between virtio_mmio_quiesce() and _resume() */
    struct virtio_mmio_queue *qregs; /* [num_queues] */

    /* Written under `lock`, read lock-free by the device-side functions. */
    atomic_uint status; /* driver bits only; NEEDS_RESET is `needs_reset` */
    atomic_ullong negotiated;

    /* Any thread. */
    atomic_bool needs_reset;
    atomic_uint config_generation;

    /* Protected by `irq_lock`, a leaf below `lock`: the line is high iff isr != 0. */
    pthread_mutex_t irq_lock;
    uint32_t isr;
    bool irq_level;
};

/* Caller holds irq_lock. Brings the line to the level InterruptStatus asks for. */
void virtio_mmio_update_irq_locked(struct virtio_dev *vdev);

/* Caller holds lock. The driver's reset (Status 0, virtio 1.2 §2.4): calls ops->reset() and
 * forgets features, queues and InterruptStatus; the quiesce state stays. */
void virtio_mmio_reset_locked(struct virtio_dev *vdev);

#endif
