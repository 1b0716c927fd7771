/* The virtio device core: what a virtio device (blk, net, console, rng, balloon) implements and
 * what it gets back from the transport. Three layers, as in kvmtool:
 *
 *   transport  virtio_mmio.c   registers, feature negotiation, status, queue set-up, interrupts
 *   device     virtio_blk.c..  a const struct virtio_device_ops + its own state (`dev`)
 *   backend    block/, net/    reached by the device only, never by the transport
 *
 * The transport owns the queues (struct virtq, virtqueue.h) and hands them to the device; the
 * device pops requests, serves them through its backend, pushes them back and asks the transport
 * to notify the driver. The transport guards the door: every guest value it accepts has been
 * checked, and every rule the guest breaks ends as DEVICE_NEEDS_RESET (virtio 1.2 §2.1.2) or an
 * ignored access with a rate-limited log line, never as an assert.
 *
 * Threads: MMIO accesses run on vCPU threads; a device runs its queues on its own worker/loop
 * thread (or, for tiny devices, inside queue_notify on the vCPU thread). The per-member contracts
 * below say which thread calls what and which lock is held. The transport has two locks:
 *   - the register lock, held around every MMIO access and every ops callback except features();
 *   - the interrupt lock, a leaf taken only for InterruptStatus and the irq line.
 * The device-side functions in this header take only the interrupt lock (or nothing), so a
 * device's reset() may wait for its worker even while the worker is in virtio_notify_queue(). */
#ifndef TESSERA_HW_VIRTIO_VIRTIO_H
#define TESSERA_HW_VIRTIO_VIRTIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sbuf;
struct scur;
struct virtq;

/* Device status bits (virtio 1.2 §2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE        1
#define VIRTIO_STATUS_DRIVER             2
#define VIRTIO_STATUS_DRIVER_OK          4
#define VIRTIO_STATUS_FEATURES_OK        8
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED             128

/* Reserved feature bits (virtio 1.2 §6). Bits 0..23 and 50..63 belong to the device type. */
#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_RING_EVENT_IDX     29
#define VIRTIO_F_VERSION_1          32
#define VIRTIO_F_ACCESS_PLATFORM    33
#define VIRTIO_F_RING_PACKED        34
#define VIRTIO_F_IN_ORDER           35
#define VIRTIO_F_ORDER_PLATFORM     36
#define VIRTIO_F_SR_IOV             37
#define VIRTIO_F_NOTIFICATION_DATA  38
#define VIRTIO_F_RING_RESET         40

/* Feature bits a device type may offer through ops->features(): the device-type ranges of
 * §6 (0..23 and 50..63). Anything else the device returns is dropped; the transport adds the
 * transport bits it implements itself (VERSION_1, RING_INDIRECT_DESC, RING_EVENT_IDX). */
#define VIRTIO_DEVICE_FEATURE_MASK (UINT64_C(0x00ffffff) | (~UINT64_C(0) << 50))

/* Device IDs (virtio 1.2 §5). */
#define VIRTIO_ID_NET     1
#define VIRTIO_ID_BLOCK   2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG     4
#define VIRTIO_ID_BALLOON 5

/* InterruptStatus bits (virtio 1.2 §4.2.2). */
#define VIRTIO_INT_USED_BUFFER   1 /* a used buffer notification for some queue */
#define VIRTIO_INT_CONFIG_CHANGE 2 /* the configuration space (or status) changed */

#define VIRTIO_QUEUE_SIZE_MAX 32768 /* virtio 1.2 §2.7: split queues hold at most 2^15 entries */

/* One virtio device type. Instances are `static const` tables with designated initialisers.
 * `dev` is the device's own state, given to virtio_mmio_create(). Unless a member says
 * otherwise it is called on a vCPU thread with the transport's register lock held, so the
 * callbacks of one device never run concurrently with each other (features() excepted). A
 * callback must not access the device's MMIO window (that would deadlock) and must not block
 * on I/O. */
struct virtio_device_ops {
    const char *name;    /* short, for log lines: "virtio-blk" */
    uint32_t device_id;  /* VIRTIO_ID_*, the DeviceID register; never 0 */
    unsigned num_queues; /* queues 0..num_queues-1, at most VIRTIO_MMIO_MAX_QUEUES */
    uint16_t queue_max;  /* QueueNumMax for every queue, 1..VIRTIO_QUEUE_SIZE_MAX */
    size_t config_size;  /* bytes of device configuration space, at most 0x100 */

    /* A device that gained queues in a later version (a new feature's queue) sets the count
     * it had before: a state saved with that many queues (up to num_queues) still loads, the
     * newer queues not set up, as they were not then. 0: the saved count must be num_queues. */
    unsigned saved_queues_min;

    /* Device-type feature bits offered to the driver (VIRTIO_DEVICE_FEATURE_MASK applies).
     * Called once, inside virtio_mmio_create(), on the creating thread. NULL: none. */
    uint64_t (*features)(void *dev);

    /* Reads `len` (1, 2 or 4) bytes of configuration space at `off` into buf, little-endian as
     * the spec lays the structure out; off + len <= config_size is guaranteed. The device
     * takes its own lock if other threads change its configuration, and calls
     * virtio_config_changed() after (never before) such a change. NULL: reads as zero. */
    void (*config_read)(void *dev, uint32_t off, void *buf, uint32_t len);

    /* The driver wrote `len` (1, 2 or 4) bytes at `off` (off + len <= config_size),
     * little-endian. Guest data: validate it. NULL: writes are ignored. */
    void (*config_write)(void *dev, uint32_t off, const void *buf, uint32_t len);

    /* The driver set DRIVER_OK. `features` are the negotiated ones (also virtio_negotiated()).
     * Queues the driver set up are ready now; others stay not ready (virtq_ready()). Kicks
     * before DRIVER_OK are not passed on, so buffers may already be waiting: poll each queue
     * once. Start workers here. Return 0, or <0 to fail: the transport then sets
     * DEVICE_NEEDS_RESET. Called at most once between two resets. NULL: nothing to do. */
    int (*activate)(void *dev, uint64_t features);

    /* The driver kicked queue `q` (< num_queues; the queue is ready and the device active).
     * Must not block: wake the device's worker, or serve the queue right here if that is cheap
     * and non-blocking (then the vCPU thread is the queue's thread for that moment). NULL:
     * kicks are ignored (a device that polls). */
    void (*queue_notify)(void *dev, unsigned q);

    /* The driver wrote 0 to Status, or the board reset the transport (virtio_mmio_reset()).
     * Stop every worker from touching queues, requests, or the device-side functions of this
     * header before returning: after return the transport forgets the queues, and a request
     * popped before the reset must not be pushed. Bring the device's configuration to its
     * initial values. Called on every reset, whether or not the device was activated.
     * Required (not NULL). Leaves the quiesce state (below) as it is. */
    void (*reset)(void *dev);

    /* --- snapshots and live migration (virtio_mmio_quiesce/resume/save/load) --- */

    /* The machine is about to save its state; its harts are stopped. Finish every request
     * already popped and push it (or hand it back, pushed with 0 bytes), then keep workers,
     * timers and loop callbacks from popping, pushing, touching guest RAM or changing the
     * configuration space until resume(). Blocks until that holds: when it returns nothing is
     * mid-way. Host-side work that touches no guest state (draining output already taken) may
     * go on. Called on the saving thread, never on the loop thread, with the register lock
     * held; the transport holds back kicks until resume(). Not nested: the transport calls it
     * once and then resume() once. Reset and activate() may come in between (a load into a
     * quiesced transport): the device stays quiet until resume(). NULL: the device does all
     * its queue work inside queue_notify()/activate() (nothing runs on its own). */
    void (*quiesce)(void *dev);

    /* Undoes quiesce(): work resumes, and if the device is active it polls every queue once,
     * since buffers may have been made available while kicks were held. Same thread and lock
     * as quiesce(). NULL: the transport calls queue_notify() once for every ready queue of an
     * active device instead. */
    void (*resume)(void *dev);

    /* Version of the layout save() writes; 0 (with save and load NULL): no device state. A
     * new field is a new version, and load() keeps reading every older one. */
    uint32_t state_version;

    /* Appends the device-type state the driver can see or has set (configuration values the
     * device changes, state negotiated over its queues) to `out`, little-endian with the
     * sbuf_put_*() functions. Host-side things (backend fds, paths, statistics) are not state:
     * the target machine is created from the same configuration. Called with the register
     * lock held, only while quiesced or before activate(). */
    void (*save)(void *dev, struct sbuf *out);

    /* Reads back what save() wrote under `version` (1..state_version) and applies it. The
     * stream is hostile input: validate every field before using it and refuse a bad one with
     * scur_fail() naming the field, returning -1. Called with the register lock held, after
     * reset() and before activate() (which follows if the saved device was running), on the
     * loading thread; the guest RAM is already loaded. The transport checks that every byte
     * was consumed. */
    int (*load)(void *dev, struct scur *in, uint32_t version);
};

/* The device's handle on its transport instance (virtio_mmio_create() gives it out). */
struct virtio_dev;

/* Queue `q` of the device, or NULL when q >= num_queues. The pointer stays valid until
 * virtio_mmio_destroy(); whether the driver has set the queue up is virtq_ready(). Any thread,
 * no lock. */
struct virtq *virtio_get_queue(struct virtio_dev *vdev, unsigned q);

/* Sends the driver a used buffer notification for `vq` if it wants one (virtio 1.2 §2.7.10:
 * used_event with VIRTIO_F_RING_EVENT_IDX, else the avail NO_INTERRUPT flag): sets
 * InterruptStatus bit 0 and raises the line. Call after one or more virtq_push(). Runs on the
 * queue's thread (it updates the queue's event bookkeeping); the interrupt part is thread-safe.
 * Does nothing unless the queue is ready and the driver has set DRIVER_OK. */
void virtio_notify_queue(struct virtio_dev *vdev, struct virtq *vq);

/* The device changed its configuration space: bumps ConfigGeneration, and once DRIVER_OK is
 * set also sets InterruptStatus bit 1 and raises the line (virtio 1.2 §2.5, §4.2.2). Call after
 * the change is visible to config_read(). Any thread, any device lock held. */
void virtio_config_changed(struct virtio_dev *vdev);

/* The device has failed or the driver broke the rules: sets DEVICE_NEEDS_RESET in Status and,
 * if DRIVER_OK is set, sends a configuration change notification (virtio 1.2 §2.1.2). It stays
 * set until the driver resets the device. Idempotent. Any thread. The transport calls it itself
 * when virtq_pop() reports a broken queue or when the driver's set-up is illegal. */
void virtio_set_needs_reset(struct virtio_dev *vdev);

/* True when feature `bit` (0..63) was negotiated (the driver set FEATURES_OK and the device
 * accepted it). False before that and after a reset. Any thread. */
bool virtio_negotiated(const struct virtio_dev *vdev, unsigned bit);

#endif
