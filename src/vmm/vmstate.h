/* Restore of one VM from the state stream (stream.h); the snapshot writer is vmm/snapshot.h and
 * migration vmm/migrate.h.
 *
 *   restore    read a stream (a file or a migration connection) into a new machine; the disks
 *              of a snapshot get a new overlay on their frozen image (at the old path, or in a
 *              clone folder), or a full copy
 *
 * Threads: vm_restore() runs on the start-up thread, before the machine runs. */
#ifndef TESSERA_VMM_VMSTATE_H
#define TESSERA_VMM_VMSTATE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#define VMSTATE_ERR_LEN 512

struct bytering;
struct virt_machine;

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
