/* The virtio-blk device's host-side door, for the snapshot and migration code. */
#ifndef TESSERA_HW_VIRTIO_VIRTIO_BLK_H
#define TESSERA_HW_VIRTIO_VIRTIO_BLK_H

struct block;
struct virtio_blk;

/* The image the disk serves (the `dev` that the "disk" vdev_type created). Valid until the
 * device is destroyed. The device's I/O worker uses it whenever the device runs: another thread
 * may flush, release or reopen it (block.h) only while the transport is quiesced
 * (virtio_mmio_quiesce()), when the worker is idle and holds no request. The device keeps the
 * capacity it read at creation, so a reopened image must have the same size. */
struct block *virtio_blk_block(struct virtio_blk *b);

/* Keeps the I/O worker off the image: it performs whole batches under this lock, so between
 * lock and unlock another thread may use the block (block migration reads a chunk, or starts
 * tracking writes). The guest's requests wait meanwhile: hold it for one short step. */
void virtio_blk_lock(struct virtio_blk *b);
void virtio_blk_unlock(struct virtio_blk *b);

#endif
