/* The virtio-mmio transport, version 2 (modern only; virtio 1.2 §4.2).
 *
 * One instance per device: a VIRTIO_MMIO_SIZE window that the board maps on the bus and
 * describes in the device tree (`virtio_mmio@ADDR { compatible = "virtio,mmio"; reg; interrupts
 * }`), and one level-triggered interrupt line, high exactly while InterruptStatus is non-zero.
 *
 * Registers (§4.2.2, 32-bit; R read-only, W write-only):
 *   0x000 MagicValue R 0x74726976     0x004 Version R 2           0x008 DeviceID R
 *   0x00c VendorID R "TSRA"           0x010 DeviceFeatures R      0x014 DeviceFeaturesSel W
 *   0x020 DriverFeatures W            0x024 DriverFeaturesSel W   0x030 QueueSel W
 *   0x034 QueueNumMax R               0x038 QueueNum W            0x044 QueueReady RW
 *   0x050 QueueNotify W               0x060 InterruptStatus R     0x064 InterruptACK W
 *   0x070 Status RW                   0x080/0x084 QueueDescLow/High W
 *   0x090/0x094 QueueDriverLow/High W 0x0a0/0x0a4 QueueDeviceLow/High W
 *   0x0ac SHMSel W                    0x0b0..0x0bc SHMLen/SHMBase R: all ones (no regions)
 *   0x0c0 QueueReset: 0 (VIRTIO_F_RING_RESET is not offered)   0x0fc ConfigGeneration R
 *   0x100.. device configuration space, ops->config_size bytes
 * The queue address registers read back what was written; other write-only registers and
 * unknown offsets read 0. Writes to read-only registers and unknown offsets are ignored.
 *
 * Access sizes (§4.2.2.2): registers below 0x100 take only 32-bit accesses; configuration space
 * takes 8-, 16- and 32-bit accesses (the bus guarantees alignment; a 64-bit field is read as two
 * 32-bit halves, bracketed by ConfigGeneration reads). The region accepts 1..4 bytes; a register
 * access of another size is ignored (reads 0) with a rate-limited log line, as the spec leaves
 * the device's answer open and a fault would only punish guests that probe.
 *
 * Guest errors never stop the VMM. Refused set-up steps: FEATURES_OK stays clear when the driver
 * accepted a feature that was not offered or did not accept VIRTIO_F_VERSION_1 (§3.1.1 step 6);
 * DRIVER_OK is refused without FEATURES_OK; a status write that clears bits is ignored
 * (§2.1.2). Illegal queue set-up (QueueNum not a power of two or above QueueNumMax, an area
 * misaligned or outside RAM, QueueReady before FEATURES_OK) leaves QueueReady 0 and sets
 * DEVICE_NEEDS_RESET. Queue registers cannot change while the queue is ready, and no queue
 * can be set up or torn down after DRIVER_OK (without VIRTIO_F_RING_RESET the driver resets
 * the device instead). A broken ring found by virtq_pop() sets DEVICE_NEEDS_RESET.
 *
 * Threads and locks: see virtio.h. Every MMIO access takes the instance's register lock and runs
 * the ops callbacks with it held; InterruptStatus and the irq line are under a separate leaf
 * lock (order: register lock -> interrupt lock -> the interrupt controller's lock). */
#ifndef TESSERA_HW_VIRTIO_VIRTIO_MMIO_H
#define TESSERA_HW_VIRTIO_VIRTIO_MMIO_H

#include "base/state.h"
#include "hw/bus.h"
#include "hw/guest_mem.h"
#include "hw/irq.h"
#include "hw/virtio/virtio.h"

#define VIRTIO_MMIO_SIZE       0x200
#define VIRTIO_MMIO_MAGIC      0x74726976 /* "virt" */
#define VIRTIO_MMIO_VERSION    2
#define VIRTIO_MMIO_VENDOR_ID  0x41525354 /* "TSRA" in memory order */
#define VIRTIO_MMIO_CONFIG     0x100      /* start of the device configuration space */
#define VIRTIO_MMIO_MAX_QUEUES 256

/* Register offsets (virtio 1.2 §4.2.2, table "MMIO Device Register Layout"). */
#define VIRTIO_MMIO_REG_MAGIC_VALUE         0x000
#define VIRTIO_MMIO_REG_VERSION             0x004
#define VIRTIO_MMIO_REG_DEVICE_ID           0x008
#define VIRTIO_MMIO_REG_VENDOR_ID           0x00c
#define VIRTIO_MMIO_REG_DEVICE_FEATURES     0x010
#define VIRTIO_MMIO_REG_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_REG_DRIVER_FEATURES     0x020
#define VIRTIO_MMIO_REG_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_REG_QUEUE_SEL           0x030
#define VIRTIO_MMIO_REG_QUEUE_NUM_MAX       0x034
#define VIRTIO_MMIO_REG_QUEUE_NUM           0x038
#define VIRTIO_MMIO_REG_QUEUE_READY         0x044
#define VIRTIO_MMIO_REG_QUEUE_NOTIFY        0x050
#define VIRTIO_MMIO_REG_INTERRUPT_STATUS    0x060
#define VIRTIO_MMIO_REG_INTERRUPT_ACK       0x064
#define VIRTIO_MMIO_REG_STATUS              0x070
#define VIRTIO_MMIO_REG_QUEUE_DESC_LOW      0x080
#define VIRTIO_MMIO_REG_QUEUE_DESC_HIGH     0x084
#define VIRTIO_MMIO_REG_QUEUE_DRIVER_LOW    0x090
#define VIRTIO_MMIO_REG_QUEUE_DRIVER_HIGH   0x094
#define VIRTIO_MMIO_REG_QUEUE_DEVICE_LOW    0x0a0
#define VIRTIO_MMIO_REG_QUEUE_DEVICE_HIGH   0x0a4
#define VIRTIO_MMIO_REG_SHM_SEL             0x0ac
#define VIRTIO_MMIO_REG_SHM_LEN_LOW         0x0b0
#define VIRTIO_MMIO_REG_SHM_LEN_HIGH        0x0b4
#define VIRTIO_MMIO_REG_SHM_BASE_LOW        0x0b8
#define VIRTIO_MMIO_REG_SHM_BASE_HIGH       0x0bc
#define VIRTIO_MMIO_REG_QUEUE_RESET         0x0c0
#define VIRTIO_MMIO_REG_CONFIG_GENERATION   0x0fc

/* Creates a transport instance for device `ops`/`dev` in its reset state. `ram` is where the
 * driver's rings live (must outlive the instance); `irq` is copied. Returns 0 and the handle in
 * *out, -EINVAL for an ops table that breaks its documented limits (no name or reset, device_id 0,
 * more than VIRTIO_MMIO_MAX_QUEUES queues, queue_max outside 1..32768, config_size above 0x100,
 * only one of quiesce and resume, only one of save and load, save without a state_version or
 * a state_version without save), or -ENOMEM. Calls ops->features() once. Set-up thread. */
int virtio_mmio_create(struct guest_ram *ram, const struct irq_line *irq,
                       const struct virtio_device_ops *ops, void *dev, struct virtio_dev **out);

/* Frees the instance. NULL is allowed. The device must be stopped already (its workers gone)
 * and the bus must no longer route accesses here; ops are not called. */
void virtio_mmio_destroy(struct virtio_dev *vdev);

/* A transport reset as if the driver wrote 0 to Status (machine reset): calls ops->reset(),
 * forgets features and queues, clears InterruptStatus and lowers the line. Any thread that
 * does not hold a device lock the device's reset() takes; takes the register lock. */
void virtio_mmio_reset(struct virtio_dev *vdev);

/* --- snapshots and live migration ---------------------------------------------------------
 *
 * The saving side: stop the harts, virtio_mmio_quiesce() every transport, save RAM and every
 * section, then either resume (a snapshot of a running VM) or tear down (migration). The loading
 * side: create the machine from the same configuration, load RAM, then virtio_mmio_load() each
 * transport's section, then start the harts. Threads: any thread but the loop thread, one call
 * at a time per transport; each call takes the register lock (so it waits out an MMIO access on
 * a vCPU thread) and must not be made while holding a device lock. */

/* Makes the device stop touching guest RAM and its configuration (virtio.h, quiesce()): every
 * request it had popped is pushed, no worker or loop callback pops, pushes or writes guest memory
 * until virtio_mmio_resume(), and queue notifications are held back meanwhile. Blocks until that
 * holds. A second call before resume does nothing. The MMIO window keeps answering (harts are
 * stopped, so none should come). */
void virtio_mmio_quiesce(struct virtio_dev *vdev);

/* Undoes virtio_mmio_quiesce(): the device works again and polls each of its queues once, for
 * the buffers made available while kicks were held. Nothing if not quiesced. */
void virtio_mmio_resume(struct virtio_dev *vdev);

/* Layout version of the section virtio_mmio_save() writes. */
#define VIRTIO_MMIO_STATE_VERSION 1

/* Appends the transport's state, its queues' and the device's own state to `out` as one
 * section payload, little-endian (base/state.h). Version 1 layout:
 *   u32 device_id, u32 num_queues                      must match the loading transport
 *   u32 status (driver bits), bool needs_reset, bool activated
 *   u32 device_features_sel, u32 driver_features_sel, u64 driver_features,
 *   bool driver_features_high, u64 negotiated features, u32 queue_sel
 *   u32 InterruptStatus, u32 ConfigGeneration
 *   num_queues x { u32 num, u64 desc, u64 driver, u64 device, bool ready,
 *                  u16 last_avail, u16 used_idx, u16 signalled_used,
 *                  bool signalled_valid, bool notify_off, bool broken }
 *   u32 device state_version, u32 length, then `length` bytes written by ops->save()
 *     (version and length 0 when the device has no state).
 * Only while quiesced or before the driver set DRIVER_OK: otherwise the queue positions are
 * those of a moving target. Allocation failure shows in out->oom. */
void virtio_mmio_save(struct virtio_dev *vdev, struct sbuf *out);

/* Loads a section written by virtio_mmio_save() under `version` into a transport created for
 * the same device type (device id and queue count are checked and the difference named). The
 * guest RAM must already hold the loaded image. The payload is hostile input: every field is
 * checked before anything changes (status bits this transport does not know or cannot reach,
 * negotiated features the device does not offer or that lack VERSION_1, a queue size that is
 * not a power of two or above QueueNumMax, rings misaligned or outside RAM, a ready queue before
 * FEATURES_OK, requests left in flight, InterruptStatus bits that do not exist, a device state
 * newer than this build, trailing bytes), and the device validates its own part.
 *
 * On success the transport is reset and then holds exactly the saved state: Status, feature
 * selections and negotiated features, every queue's registers and ring position (rings mapped
 * again through virtq_setup()), InterruptStatus (the interrupt line follows it) and
 * ConfigGeneration; the device's state is loaded; and if the saved device was running, it is
 * activated (ops->activate()), which starts its workers and polls every queue, so a request the
 * driver made available but the device had not taken is served. The transport's quiesce state
 * is left as it was: load into a fresh transport and the device runs at once (the harts are
 * still stopped; that is fine, RAM is in place); quiesce it before loading and the device
 * starts on virtio_mmio_resume(). Returns 0, or -1 with the reason in in->err; the transport
 * is then in its reset state. Not while the device is in use by a running guest. */
int virtio_mmio_load(struct virtio_dev *vdev, struct scur *in, uint32_t version);

/* MMIO handlers for the VIRTIO_MMIO_SIZE window; opaque is the struct virtio_dev *.
 * min_size 1, max_size 4. */
extern const struct mmio_ops virtio_mmio_ops;

#endif
