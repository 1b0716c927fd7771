/* Live migration of one VM: both ends of the wire.
 *
 * URIs: "tcp:HOST:PORT" (plain TCP: for loopback and tests) or "tls:HOST:PORT" (mutual TLS,
 * vmm/transport.h: each end shows a certificate from the CA the other trusts; the source also
 * requires the target's certificate to name HOST). HOST may be a name, an IPv4 or a
 * [bracketed] IPv6 address; on the target an empty HOST listens on every address.
 *
 * The wire, in order:
 *   tls: only   the TLS handshake, then the target sends "READY\n": a peer that fails the
 *               other's check is refused here, before the source sends a byte of state
 *   source      the state stream (vmm/stream.h), then a half-close
 *   target      one verdict line: "OK\n" (the VM runs on the target now; the source exits) or
 *               "ERR <why>\n" (the source's VM runs on)
 * Modes: live (pre-copy rounds with dirty-page tracking, auto-converge, then stop-and-copy),
 * suspend (stop, copy, resume there) or cold (stop; the target boots the same config).
 *
 * Progress: a migration on which no byte moves for progress_timeout_s (a target that stopped
 * reading, a peer that never answers the handshake) fails, and the source's VM runs on.
 *
 * Threads: a source-side migration runs on its own thread; vm_migrate_start(), _status(),
 * _cancel() and _free() are called from one other thread (the API thread).
 * vm_migrate_incoming() runs on the start-up thread, before the machine runs. */
#ifndef TESSERA_VMM_MIGRATE_H
#define TESSERA_VMM_MIGRATE_H

#include <stdbool.h>

#include <jansson.h>

#include "vmm/transport.h"
#include "vmm/vmstate.h"

#define VM_URI_HOST_MAX                256
#define VM_URI_PORT_MAX                6
#define VM_MIGRATE_ERR_LEN             VMSTATE_ERR_LEN
#define VM_MIGRATE_DOWNTIME_DEFAULT_MS 300
#define VM_MIGRATE_TIMEOUT_DEFAULT_S   30
#define VM_MIGRATE_TIMEOUT_MAX_S       3600

struct virt_machine;

/* Splits "tcp:HOST:PORT" or "tls:HOST:PORT" (*tls tells which). 0, or -EINVAL for anything
 * else. */
int vm_migrate_parse_uri(const char *uri, bool *tls, char host[VM_URI_HOST_MAX],
                         char port[VM_URI_PORT_MAX]);

/* ---- source side ---- */

enum vm_migrate_mode { VM_MIGRATE_LIVE, VM_MIGRATE_SUSPEND, VM_MIGRATE_COLD };

struct vm_migrate_opts {
    enum vm_migrate_mode mode;
    unsigned downtime_ms;        /* live: the stop-and-copy's limit; 0: the default */
    bool copy_disks;             /* block migration: the disks' contents travel too */
    unsigned progress_timeout_s; /* 0: VM_MIGRATE_TIMEOUT_DEFAULT_S */
    struct transport_tls tls;    /* tls: URIs only, and then all three files */
};

struct vm_migration;

/* Starts migrating to `uri` on a new thread; o is copied (the file names too). With copy_disks
 * the disks' contents travel in the stream and the target writes them into new images;
 * otherwise the disks are shared and handed over. -EBUSY if one is running; -EINVAL with err
 * for a bad uri, TLS files given for tcp: or missing for tls:, or files that do not load. */
int vm_migrate_start(struct virt_machine *m, const char *uri, const struct vm_migrate_opts *o,
                     struct vm_migration **mig, char *err);

/* Stops a running migration: its connection is cut and the VM runs on here. 0 once it is
 * cut (the migration thread reports "failed: cancelled" shortly after); -EALREADY when none is
 * running; -EBUSY during the stop-and-copy (the VM is stopped and the target may already hold
 * the whole stream: it completes or fails on its own, within the progress timeout), with err. */
int vm_migrate_cancel(struct vm_migration *mig, char *err);

/* {"status": "active|completed|failed", "mode", "uri", "copy_disks", "rounds", "bytes",
 *  "total_ms", "downtime_ms", "remaining_pages", "throttle_pct", "progress_timeout_s", "error"} */
json_t *vm_migrate_status(struct vm_migration *mig);
bool vm_migrate_active(struct vm_migration *mig);

/* Cuts a migration still running (as cancel, also in the stop-and-copy: the process is going
 * away), waits for its thread and frees. NULL is a no-op. */
void vm_migrate_free(struct vm_migration *mig);

/* ---- target side ---- */

struct vm_incoming_opts {
    struct vm_restore_opts restore;
    struct transport_tls tls;    /* tls: URIs: all three files */
    unsigned progress_timeout_s; /* 0: VM_MIGRATE_TIMEOUT_DEFAULT_S */
};

/* Listens on `uri`, takes one migration stream and builds its machine, ready for virt_run(),
 * then answers the source "OK", or "ERR why" on failure. Over tls: a peer that fails the
 * handshake is refused and the next is awaited. Returns 0 and *m; -EINVAL with err for a bad
 * uri or TLS files (a usage error); another -errno with err when the listen, the stream or the
 * handover failed. */
int vm_migrate_incoming(const char *uri, const struct vm_incoming_opts *o, struct virt_machine **m,
                        char *err);

#endif
