/* Restore and migration of one VM: the uses of the state stream (stream.h) but the snapshot
 * writer (snapshot.h).
 *
 *   restore    read a stream (a file or a migration connection) into a new machine; the disks
 *              of a snapshot get a new overlay on their frozen image (at the old path, or in a
 *              clone folder), or a full copy
 *   migrate    stream the running VM to `tessera run --incoming` over TCP: live (pre-copy
 *              rounds with dirty-page tracking, auto-converge, then stop-and-copy), suspend
 *              (stop, copy, resume there) or cold (stop; the target boots the same config)
 *
 * Threads: a migration runs on its own thread; vm_restore() on the start-up thread, before the
 * machine runs. */
#ifndef TESSERA_VMM_VMSTATE_H
#define TESSERA_VMM_VMSTATE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#define VMSTATE_ERR_LEN                512
#define VM_MIGRATE_DOWNTIME_DEFAULT_MS 300

struct virt_machine;

struct vm_restore_opts {
    int console_fd;
    const char *clone_dir; /* snapshot disks become new images here, NICs get new MACs */
    bool full_clone;       /* with clone_dir: full copies instead of overlays */
    const char *disk_dir;  /* a migration that copies disks: their new images go here
                              (NULL: at the paths the source used) */
    unsigned want_cpus;    /* nonzero: the stream must be for this many harts */
    uint64_t want_mem;     /* nonzero: ... and this much RAM */
};

/* Reads a whole stream from fd and builds the machine it describes, ready for virt_run().
 * `what` names the source in errors. Returns 0 and *out, or -1 with one line in err. Nothing
 * runs unless the whole stream arrived and its checksum matched. *cloned tells whether NICs got
 * new MACs (the guest agent should be told). */
int vm_restore(int fd, const char *what, const struct vm_restore_opts *o, struct virt_machine **out,
               bool *cloned, char *err);

/* A restored clone: tells the guest agent (if the VM has one) to take a new machine identity
 * and its NIC's new MAC, from a background thread that retries until the agent answers. */
void vm_clone_notify_agent(struct virt_machine *m);

/* ---- migration, source side ---- */

#define VM_URI_HOST_MAX 256
#define VM_URI_PORT_MAX 6

/* Splits "tcp:HOST:PORT" (HOST may be empty, a name, an IPv4 or a [bracketed] IPv6 address;
 * PORT decimal). 0, or -EINVAL for anything else. */
int vm_parse_tcp_uri(const char *uri, char host[VM_URI_HOST_MAX], char port[VM_URI_PORT_MAX]);

enum vm_migrate_mode { VM_MIGRATE_LIVE, VM_MIGRATE_SUSPEND, VM_MIGRATE_COLD };

struct vm_migration;

/* Starts migrating to `uri` ("tcp:HOST:PORT") on a new thread. With copy_disks (block
 * migration) the disks' contents travel in the stream and the target writes them into new
 * images; otherwise the disks are shared and handed over. -EBUSY if one is running, -EINVAL
 * with err for a bad uri. */
int vm_migrate_start(struct virt_machine *m, const char *uri, enum vm_migrate_mode mode,
                     unsigned downtime_ms, bool copy_disks, struct vm_migration **mig, char *err);
/* {"status": "active|completed|failed", "mode", "copy_disks", "rounds", "bytes", "total_ms",
 *  "downtime_ms", "remaining_pages", "throttle_pct", "error"} */
json_t *vm_migrate_status(struct vm_migration *mig);
bool vm_migrate_active(struct vm_migration *mig);
/* Waits for the thread and frees. NULL is a no-op. */
void vm_migrate_free(struct vm_migration *mig);

#endif
