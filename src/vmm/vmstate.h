/* Snapshots and restore of one VM: the uses of the state stream (stream.h); migration is
 * vmm/migrate.h.
 *
 *   snapshot   pause, quiesce, freeze each writable disk (the image becomes FILE.diskN and the
 *              VM goes on in a new qcow2 overlay at the disk's old path), write FILE, resume
 *   restore    read a stream (a file or a migration connection) into a new machine; the disks
 *              of a snapshot get a new overlay on their frozen image (at the old path, or in a
 *              clone folder), or a full copy
 *
 * Threads: vm_snapshot() runs on the caller's thread (the API thread) while vCPUs run;
 * vm_restore() on the start-up thread, before the machine runs. */
#ifndef TESSERA_VMM_VMSTATE_H
#define TESSERA_VMM_VMSTATE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#define VMSTATE_ERR_LEN 512

struct bytering;
struct virt_machine;

struct vm_snapshot_stats {
    uint64_t bytes;      /* size of the state file */
    uint64_t ram_pages;  /* pages looked at */
    uint64_t zero_pages; /* of which zero: elided */
    uint64_t paused_ns;  /* how long the guest was stopped */
    uint64_t total_ns;
    unsigned disks; /* disks frozen */
};

/* Saves a snapshot of the running (or paused) machine to `path`; the machine keeps running
 * (or stays paused). Returns 0, or -errno with one line in err; on failure the machine runs on
 * with the disks it had. */
int vm_snapshot(struct virt_machine *m, const char *path, struct vm_snapshot_stats *st, char *err);

struct vm_restore_opts {
    int console_fd;
    /* NULL: the UART writes console_fd */
    struct bytering *console_ring;
    const char *clone_dir; /* snapshot disks become new images here, NICs get new MACs */
    bool full_clone;       /* with clone_dir: full copies instead of overlays */
    const char *disk_dir;  /* a migration that copies disks: their new images go here
                              (NULL: at the paths the source used) */
    unsigned want_cpus;    /* nonzero: the stream must be for this many harts */
    uint64_t want_mem;     /* nonzero: ... and this much RAM */
};

struct transport;

/* Reads a whole stream from t (vmm/transport.h: a file, a socket or a TLS session) and builds the
 * machine it describes, ready for virt_run(). `what` names the source in errors. Returns 0 and
 * *out, or -1 with one line in err. Nothing runs unless the whole stream arrived and its checksum
 * matched. *cloned tells whether NICs got new MACs (the guest agent should be told). */
int vm_restore(struct transport *t, const char *what, const struct vm_restore_opts *o,
               struct virt_machine **out, bool *cloned, char *err);

/* A restored clone: tells the guest agent (if the VM has one) to take a new machine identity
 * and its NIC's new MAC, from a background thread that retries until the agent answers. */
void vm_clone_notify_agent(struct virt_machine *m);

#endif
