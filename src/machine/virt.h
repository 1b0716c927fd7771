/* The `virt` board: RISC-V harts, RAM at 0x8000_0000 and the devices of QEMU's `virt`
 * machine at the same addresses, a device tree built with libfdt, and the boot flow of
 * QEMU (a reset vector in ROM that hands firmware the hart id, the device tree and
 * OpenSBI's fw_dynamic info).
 *
 * Threads: virt_run() runs on the caller's thread and starts one thread per hart. Device
 * events (power-off, reset) arrive on hart threads; console input on the caller's input
 * thread through virt_console_input(). */
#ifndef TESSERA_MACHINE_VIRT_H
#define TESSERA_MACHINE_VIRT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VIRT_MAX_CPUS     8
#define VIRT_RAM_BASE     0x80000000ull
#define VIRT_MIN_MEM      (16ull << 20)
#define VIRT_MAX_MEM      (64ull << 30)
#define VIRT_DEFAULT_BIOS "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin"

#define VIRT_VIRTIO_SLOTS 8

/* One virtio device: a registered type name (src/hw/virtio/vdev.h) and its options. */
struct virt_device_spec {
    const char *type;
    const char *opts;
};

struct bytering;
struct guest_ram;
struct state_sink;

struct virt_config {
    unsigned cpus;
    uint64_t mem_size;
    const char *bios;                                   /* firmware; required */
    const char *kernel;                                 /* NULL: bare-metal firmware only */
    const char *initrd;                                 /* NULL: none */
    const char *append;                                 /* kernel command line; NULL: none */
    int console_fd;                                     /* where the UART's output goes */
    struct virt_device_spec devices[VIRT_VIRTIO_SLOTS]; /* in slot order: the first disk is vda */
    unsigned ndevices;
    /* If set, the UART's output goes to this ring instead of console_fd (a write never blocks
     * a vCPU; src/base/bytering.h). The ring stays the caller's and outlives the machine. */
    struct bytering *console_ring;
    /* Restore and incoming migration: the machine adopts this RAM (already holding the
     * guest's memory; the machine takes it over and the caller's struct is emptied) and loads
     * no images into it. The images are still read, for a later guest reset. NULL: boot. */
    struct guest_ram *preloaded_ram;
    /* The CPU engine that runs the harts, by name (src/cpu/engine.h); NULL: the default. */
    const char *cpu_engine;
    /* Guest RAM is kept out of the host's page merging (KSM); by default it is offered
     * (memory_merge in docs/vm-config.md). */
    bool mem_merge_off;
};

struct virt_machine;

/* Builds the machine and loads the images. On failure prints one line naming the file or
 * option and what was wrong, and returns -1. */
int virt_create(const struct virt_config *cfg, struct virt_machine **out);
void virt_destroy(struct virt_machine *m);

/* Runs until the guest powers off or reports failure through the test device, or until
 * virt_request_exit(); handles guest-requested resets in between. Returns the exit status:
 * 0 for power-off, the test device's code for a failure. */
int virt_run(struct virt_machine *m);

/* Stops the machine from any thread; virt_run() then returns `status`. */
void virt_request_exit(struct virt_machine *m, int status);

/* Pauses all harts (returns once they are stopped; the guest clock stops too) and resumes
 * them. Any thread but a hart's. 0, -EALREADY (already in that state) or -EBUSY (the machine
 * is exiting or resetting). */
int virt_pause(struct virt_machine *m);
int virt_resume(struct virt_machine *m);

/* A hard reset, as if the guest wrote the test device's reset value. Any thread. */
void virt_request_reset(struct virt_machine *m);

struct virt_info {
    bool paused;
    unsigned cpus;
    uint64_t mem_size;
    uint64_t uptime_ns; /* since virt_create */
    uint64_t mtime;     /* the guest's timer */
    uint64_t instret[VIRT_MAX_CPUS];
};

/* A snapshot of the machine's state for the control API. Any thread. */
void virt_get_info(struct virt_machine *m, struct virt_info *out);
const struct virt_config *virt_get_config(const struct virt_machine *m);

/* The flattened device tree of the last boot or reset, as the firmware got it (a1): the host's
 * copy, with /chosen/rng-seed still in it. NULL for a restored machine that has not reset (it
 * never built one). Read it only while the machine cannot reset (not running, or paused). */
const void *virt_fdt(const struct virt_machine *m);

/* Device slot `slot`'s type name ("disk", "net", ...) and traffic so far: 0, or -ENODEV when
 * the slot is empty or its type counts nothing. For a disk, reads are what the guest read; for
 * a NIC, reads are the frames it received and writes those it sent. Any thread. */
struct virt_device_stats {
    uint64_t reads, writes;
    uint64_t read_bytes, write_bytes;
    /* Rate limiting: requests or frames that waited for their limit and how long in all. */
    uint64_t read_throttled, write_throttled;
    uint64_t read_throttled_ns, write_throttled_ns;
    uint64_t read_errors, write_errors; /* dropped as malformed */
};
int virt_device_stats(struct virt_machine *m, unsigned slot, const char **type,
                      struct virt_device_stats *out);

/* Applies a new option string to the running device in slot `slot` through its type's
 * reconfigure() (only its live keys may differ: rate limits), then records it as the slot's
 * options so that describe, snapshots and migration carry it. 0, -ENODEV (no device, or its
 * type changes nothing live) or -EINVAL with err (VDEV_ERR_LEN bytes). Any thread. */
int virt_device_reconfigure(struct virt_machine *m, unsigned slot, const char *opts, char *err);

/* The index-th device instance of a registered type ("balloon", "disk", ...), or NULL. */
void *virt_find_device(struct virt_machine *m, const char *type, unsigned index);

/* Host console input for the UART; returns how many bytes were taken (the rest must be
 * offered again later). Any thread. */
size_t virt_console_input(struct virt_machine *m, const uint8_t *buf, size_t len);

/* ---- Machine state for snapshots and migration (sections: src/base/state.h) ----
 * The caller holds the machine paused (virt_pause()) around quiesce..unquiesce. */

/* Makes every device stop touching guest RAM (requests in flight finish first) and undoes it. */
void virt_quiesce(struct virt_machine *m);
void virt_unquiesce(struct virt_machine *m);

/* Writes every section but RAM: "rom", "cpu.N", "clint", "plic", "uart", "rtc", "virtio.N".
 * Paused and quiesced. 0 or -errno (the writer holds the message). */
int virt_save_sections(struct virt_machine *m, const struct state_sink *sink);

/* Loads one section into a machine created with preloaded_ram, before virt_run(). 0, or -1
 * with one line in err (STATE_LOAD_ERR_LEN bytes) naming the section and the field. */
int virt_load_section(struct virt_machine *m, const char *name, uint32_t version,
                      const uint8_t *payload, size_t len, char *err);
/* After the last section: every section this machine needs arrived exactly once. */
int virt_load_finish(struct virt_machine *m, char *err);

struct guest_ram *virt_ram(struct virt_machine *m);

/* Dirty-page logging of RAM, for live migration: on marks every page dirty. */
void virt_dirty_log(struct virt_machine *m, bool on);
/* ORs the dirty bits into bitmap (one bit per 4 KiB page of RAM; clear it first for a fresh
 * set), clears them, and makes every hart re-mark pages it writes from now on. Harts paused.
 * Returns the number of pages selected in bitmap. */
uint64_t virt_harvest_dirty(struct virt_machine *m, uint64_t *bitmap);

/* A replacement option string for device slot `slot` (copied), so that state written later
 * names what the device uses now. Any thread; under the machine's lock (see
 * virt_config_copy()). */
void virt_set_device_opts(struct virt_machine *m, unsigned slot, const char *opts);

/* ---- Disks and the balloon, as the VMM sees them (virt_disks.c) ----
 * Slots are device slots (virt_config.devices). The VMM works on disks only through these:
 * it never holds a device's block or lock. */

struct virt_disk_info {
    unsigned slot;
    bool readonly;
    uint64_t length;     /* bytes the guest sees */
    char path[PATH_MAX]; /* the image the device has open, the top of its chain */
    char format[16];     /* "raw" or "qcow2" */
};

/* Disk `slot`: 0 and *out, or -ENODEV when the slot holds no disk (-ENAMETOOLONG: a path that
 * does not fit). Any thread; what it says changes only through virt_disk_reopen(). */
int virt_disk_info(struct virt_machine *m, unsigned slot, struct virt_disk_info *out);
/* The images of disk `slot`'s chain as virt_disk_info() describes the top one, top first, at
 * most max: 0 and *n, or -ENODEV. Any thread, as virt_disk_info(). */
int virt_disk_chain(struct virt_machine *m, unsigned slot, struct virt_disk_info *layers,
                    unsigned max, unsigned *n);
/* Flushes disk `slot`'s image and lets go of its file (and lock); virt_disk_reopen() takes an
 * image (the same or another of the same size) back. Only between virt_quiesce() and
 * virt_unquiesce(), from the thread that quiesced. 0 or -errno (reopen: one line in err,
 * BLOCK_ERR_LEN bytes). */
int virt_disk_release(struct virt_machine *m, unsigned slot);
int virt_disk_reopen(struct virt_machine *m, unsigned slot, const char *path, const char *format,
                     char *err);

struct dirty_log;
/* Block migration, while the VM runs: every write to disk `slot` from now on marks `log` (the
 * caller's, sized for the disk in 4 KiB blocks; NULL stops it), and a read of the disk's
 * contents. Each holds the device's I/O worker off the image for that one step. 0 or -errno
 * (-ENODEV: no disk in that slot). */
int virt_disk_track_writes(struct virt_machine *m, unsigned slot, struct dirty_log *log);
int virt_disk_read(struct virt_machine *m, unsigned slot, uint64_t offset, void *buf, size_t len);

/* A copy of the machine's config as it is now (every string malloc'd: free it with
 * virt_config_free()), taken under the machine's lock so that a virt_set_device_opts() on
 * another thread (a snapshot worker) cannot free a string under it. The copy has no
 * console_ring or preloaded_ram. Any thread. 0 or -ENOMEM. */
int virt_config_copy(struct virt_machine *m, struct virt_config *out);

struct balloon_info;
/* The balloon (the first "balloon" device): its target (a multiple of 4 KiB at most the
 * guest's RAM, else -EINVAL) and what the guest reports. -ENODEV without one. Any thread. */
int virt_balloon_set(struct virt_machine *m, uint64_t target_bytes);
int virt_balloon_get(struct virt_machine *m, struct balloon_info *out);

/* Frees the strings of a config whose strings are all malloc'd (as vmconfig_to_virt() in
 * src/vmm/vmconfig.h makes them; the VM config document is the config's outside form) and
 * zeroes it. */
void virt_config_free(struct virt_config *cfg);

#endif
