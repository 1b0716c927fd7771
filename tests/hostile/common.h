/* Helpers shared by the hostile-guest tests: a correct request for each device type (the
 * proof that the device still works), the "device must now need a reset" expectation, and
 * virtio-blk request building. Each returns 0 on success or a negative value after printing
 * what it saw, so the calling test's CHECK names the check. */
#ifndef TESSERA_HOSTILE_COMMON_H
#define TESSERA_HOSTILE_COMMON_H

#include "virtio_drv.h"

/* How a correct request is handed over (virtio 1.2 §2.7.5.3). */
enum submit_mode {
    SUBMIT_DIRECT,     /* a chain in the descriptor table */
    SUBMIT_INDIRECT,   /* one descriptor pointing to an indirect table holding the chain */
    SUBMIT_MIXED,      /* the first buffer direct, then an indirect table with the rest */
    SUBMIT_INDIRECT_W, /* SUBMIT_INDIRECT with WRITE set on the pointing descriptor, which the
                          device must ignore (§2.7.5.3.2) */
};

/* Finds the devices (at least one, else check 1 of the caller fails: see find_devices_or_fail). */
unsigned find_devices(struct vdev *devs);

/* A correct request on the device's request queue (vd_req_queue), at least two buffers:
 *   rng      two device-writable buffers: filled (not all zero), canary after them intact
 *   blk      read of sector 0: status OK, 513 bytes used, the runner's pattern, canary intact
 *   net      12-byte header + 60-byte ARP request: consumed
 *   console  two readable buffers on port 0: consumed
 *   balloon  two 4-byte PFN lists of scratch pages: consumed
 * and afterwards Status must not show NEEDS_RESET. */
int sane_request(struct vdev *d, enum submit_mode mode);

/* A correct request whose chain has exactly ndesc descriptors (2..num), all direct. */
int sane_chain(struct vdev *d, unsigned ndesc);

/* vd_init(want) then sane_request(DIRECT). */
int recover(struct vdev *d, uint64_t want);

/* The device must show NEEDS_RESET (within TMO_US), raise InterruptStatus bit 1 (it has
 * DRIVER_OK), and not have completed anything on queue q. Then resets it and checks that
 * Status and InterruptStatus read 0. Returns 0, or -1 no NEEDS_RESET, -2 no config interrupt,
 * -3 a request completed, -4 the reset did not clear Status/InterruptStatus. */
int expect_broken(struct vdev *d, unsigned q);

/* The device must still work: no NEEDS_RESET now (-1), and a sane request succeeds (-2). */
int still_sane(struct vdev *d);

/* virtio-blk: one request: 16-byte header (type, sector), then `len` data bytes at `data`
 * (device-writable for type 0 = IN and 8 = GET_ID, readable otherwise; none when len = 0),
 * then a 1-byte status (preset to 0xee). Waits for completion. Returns 0 with *status and
 * *used (either may be NULL), or vq_wait's error. */
#define BLK_T_IN     0
#define BLK_T_OUT    1
#define BLK_T_FLUSH  4
#define BLK_T_GET_ID 8
#define BLK_S_OK     0
#define BLK_S_IOERR  1
#define BLK_S_UNSUPP 2
#define BLK_F_RO     (1ULL << 5)
int blk_io(struct vdev *d, uint32_t type, uint64_t sector, uintptr_t data, uint32_t len,
           uint8_t *status, uint32_t *used);
uint64_t blk_capacity(const struct vdev *d);

/* A scratch page that belongs to slot s (SCRATCH_BASE + (s * 16 + i) * 4096), i < 16. */
static inline uintptr_t scratch_page(const struct vdev *d, unsigned i)
{
    return SCRATCH_BASE + ((uintptr_t)d->slot * 16 + i) * 4096;
}

/* The net ARP request used by sane_request (60 bytes) into buf. */
void net_arp_request(const struct vdev *d, uint8_t *buf);

#endif
