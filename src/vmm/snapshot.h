/* External snapshots of one VM: taking one (`tessera vm snapshot`), listing them (`tessera vm
 * snapshots`) and deleting one (`tessera vm snapshot-delete`). This module owns every disk
 * layer operation of a snapshot: freezing an image under a new overlay, walking the chains,
 * merging a layer away. It reaches the machine's disks only through machine/virt.h's disk view.
 *
 * A snapshot FILE froze each writable disk of the VM: the image that was at the disk's path
 * LIVE became FILE.diskN (N: the device slot) and the VM went on in a qcow2 overlay at LIVE
 * backed by it; FILE's header config names FILE.diskN for slot N (with snapshot-of=LIVE). So
 * after snapshots A then B a disk's backing chain is LIVE -> B.disk0 -> A.disk0 -> original.
 * A restore (a revert, a linked clone) puts a new overlay on FILE.diskN, leaving the old one
 * as a side branch.
 *
 *   list     walks each disk's chain: a layer X.diskN (N the disk's slot) of which X is a
 *            readable state file whose config names that image for slot N is snapshot X. A VM
 *            without writable disks has no chain and lists none: each snapshot file of such a
 *            VM stands alone (deleting it is deleting the file).
 *   delete   of a snapshot X in the chain merges, for each disk, the layer above X.diskN (the
 *            "child": the VM's active overlay or a newer snapshot's frozen image) into X.diskN
 *            (QEMU's block-commit: every cluster the child holds is copied), then X.diskN
 *            takes the child's place by rename(), so everything that named the child reads the
 *            same bytes as before; X's files go. The guest is paused for the merge: its disks
 *            release their images (the frozen one must be opened for writing, with an
 *            exclusive lock, so nobody reads it while it changes). A snapshot on another
 *            branch of this VM
 *            (after a revert) is removed with its images. Either is refused, with nothing
 *            changed, when an image X.diskN is the backing file of anything else: a linked
 *            clone, a restored VM, another branch. Those are found in X.deps, a list of paths
 *            beside X that restore and snapshot append to (snapshot_note_dependant()), and in
 *            X.diskN's folder; paths that are gone or no longer backed by X.diskN are ignored.
 *
 * List and delete work on struct snapshot_vm, so they run (and are tested) without a machine;
 * the VMM's API fills it in (vm_api.c). Threads: the caller's (the VMM's snapshot worker, or
 * the API thread for a list); the VM's disks are looked at while the guest runs and changed
 * only between stop_io() and resume_io(). */
#ifndef TESSERA_VMM_SNAPSHOTS_H
#define TESSERA_VMM_SNAPSHOTS_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#define SNAPSHOT_ERR_LEN   512
#define SNAPSHOT_MAX_DISKS 8 /* device slots, VIRT_VIRTIO_SLOTS */

struct virt_disk_info;
struct virt_machine;

/* ---- Taking a snapshot ----
 * The image at a writable disk's path LIVE becomes FILE.diskN and the VM goes on in a new
 * qcow2 overlay at LIVE backed by it; FILE holds RAM, CPUs and devices and a config naming
 * FILE.diskN for slot N (snapshot-of=LIVE). RAM is copied while the guest runs (dirty pages
 * logged), then the guest stops for the pages it dirtied meanwhile, the disks and the devices. */

struct snapshot_create_stats {
    uint64_t bytes;      /* size of the state file */
    uint64_t ram_pages;  /* pages looked at */
    uint64_t zero_pages; /* of which zero: elided */
    uint64_t paused_ns;  /* how long the guest was stopped */
    uint64_t total_ns;
    unsigned disks; /* disks frozen */
};

/* Told how far a snapshot is, on the snapshot's thread: phase "copying" (RAM while the guest
 * runs: pages_done of pages_total), "stopped" (the guest is paused: disks and devices), "done".
 * bytes: the state file so far. Must not block. */
struct snapshot_progress {
    void (*report)(void *opaque, const char *phase, uint64_t pages_done, uint64_t pages_total,
                   uint64_t bytes);
    void *opaque;
};

/* Checks, touching nothing, that a snapshot may be written to `path` and gives its absolute
 * form: refused are names with a control character, a trailing '/', "." or "..", a missing
 * folder (-EINVAL, -ENOENT), and (-EEXIST) any FILE or FILE.diskN (N a writable disk's slot)
 * that exists (a folder, an older snapshot, an image of the VM's chains), or a FILE.part that
 * is an image of the VM. One line in err (SNAPSHOT_ERR_LEN) naming the file and the fix. Any
 * thread that may look at m's disks (virt.h). */
int snapshot_check_target(struct virt_machine *m, const char *path, char abs[PATH_MAX], char *err);

/* Saves a snapshot of the running (or paused) machine to `path` (checked first as above); the
 * machine keeps running (or stays paused). p may be NULL. Returns 0, or -errno with one line in
 * err; on failure nothing was renamed or replaced: the VM runs on with its disks exactly as
 * they were (a failure once the disks are frozen puts them back before the guest resumes) and
 * no new file stays. One snapshot at a time, on any thread but a hart's; virt_pause() and
 * virt_resume() must not be called by others meanwhile. */
int snapshot_create(struct virt_machine *m, const char *path, const struct snapshot_progress *p,
                    struct snapshot_create_stats *st, char *err);

/* ---- Listing and deleting ---- */

/* One writable disk of the VM. */
struct snapshot_disk {
    unsigned slot; /* device slot (< SNAPSHOT_MAX_DISKS): its snapshot images are FILE.diskN */
};

/* The VM as list and delete see it: its writable disks, and what they may do to them. Every
 * member is called on the caller's thread; the VM's images are looked at (chain) while the
 * guest runs and changed only between stop_io() and resume_io(). */
struct snapshot_vm {
    struct snapshot_disk disks[SNAPSHOT_MAX_DISKS];
    unsigned ndisks;
    /* Disk `slot`'s chain as the VM has it open, top (the image the guest writes) first:
     * 0 and at most max layers in *n, or -errno. */
    int (*chain)(void *opaque, unsigned slot, struct virt_disk_info *layers, unsigned max,
                 unsigned *n);
    /* Stops every guest access to the disks (vCPUs paused, devices quiesced), and lets them
     * go on. stop_io() returns 0 or -errno (-EBUSY: the VM is resetting or exiting). */
    int (*stop_io)(void *opaque);
    void (*resume_io)(void *opaque);
    /* Between stop and resume: disk `slot` flushes and lets go of its image, and takes the
     * image at path (of format) back. 0 or -errno (reopen: one line in err, BLOCK_ERR_LEN). */
    int (*release)(void *opaque, unsigned slot);
    int (*reopen)(void *opaque, unsigned slot, const char *path, const char *format, char *err);
    /* Optional: the image at disk `slot`'s path is now of `format` (a raw image took the
     * active overlay's place), for the config later snapshots record. Between stop and resume. */
    void (*disk_format_changed)(void *opaque, unsigned slot, const char *format);
    void *opaque;
};

/* One snapshot the VM's current state descends from. */
struct snapshot_entry {
    char file[PATH_MAX]; /* absolute path of the state file */
    uint64_t taken;      /* unix time, from the state file's header */
    uint64_t bytes;      /* size of the state file */
    unsigned disks;      /* bit N: FILE.diskN is in the chain of the disk in slot N */
    int parent;          /* index in the list of the next older snapshot; -1: none */
};

/* The snapshots in vm's chains, oldest first, as a malloc'd array of *count entries (NULL
 * when none; free()). Files that look like snapshot images but are not (no state file, a
 * header that does not check, a config naming other images) are skipped. 0, or -ENOMEM with
 * err (SNAPSHOT_ERR_LEN). */
int snapshot_list(const struct snapshot_vm *vm, struct snapshot_entry **out, unsigned *count,
                  char *err);

struct snapshot_delete_result {
    bool in_chain;         /* merged into the chain (else: removed from another branch) */
    unsigned disks;        /* disk images merged or removed */
    uint64_t bytes_merged; /* data copied from the children */
    uint64_t paused_ns;    /* how long the guest's disks were stopped */
    uint64_t total_ns;
};

/* Deletes snapshot `file` of vm as the top of this file says. Returns 0, or -errno with one
 * line in err naming the file and the fix: -EINVAL not a snapshot of this VM (or not a
 * snapshot at all, a symbolic link, a path too long), -EBUSY something else depends on it or
 * uses its images, -ENOENT no such snapshot, others for I/O failures. On a refusal nothing has
 * changed. A failure after the merge began leaves every chain readable with the same data and
 * says so: running the delete again finishes it. */
int snapshot_delete(const struct snapshot_vm *vm, const char *file,
                    struct snapshot_delete_result *res, char *err);

/* Records that the image at `overlay` has `frozen`, a snapshot's image X.diskN, as its backing
 * file: appends overlay's absolute path to X.deps (one path a line) unless it is listed. Does
 * nothing (returns 0) when frozen is not named X.diskN beside a regular file X, or when
 * overlay's header does not name frozen as its backing file (a full copy). On failure logs a
 * warning and returns -errno: the record only guards later deletes, so callers go on. */
int snapshot_note_dependant(const char *frozen, const char *overlay);

/* After a snapshot of vm: records, for each disk, its active overlay as a dependant of the
 * image below it, and that image as a dependant of the one below it (a snapshot frozen on top
 * of an older one). Failures are logged. */
void snapshot_note_chain(const struct snapshot_vm *vm);

/* Whether the folders of paths a and b are the same folder (compared by identity, so
 * "a/x" and "./a/y" are). */
bool snapshot_same_folder(const char *a, const char *b);

#endif
