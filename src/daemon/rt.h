/* The daemon's runtime: the files and processes behind the VM, volume and template documents
 * (rt.c): volumes in the pools (pool.h), cloud-init seeds (seed.h), VM processes and their
 * supervisor (vmproc.h). The API core decides (names, tenants, roles, quotas) and keeps the
 * documents; rt does the work on the host and knows nothing of roles.
 *
 * Volumes are addressed by (tenant, name); tenant "" is the platform's (shared templates).
 * Every call returns 0 or -errno with a one-line message in err (RT_ERR_LEN bytes).
 * Threads: callers hold d->lock, except rt_vm_start() and rt_vm_action(), which may wait
 * for a VM and are called without it (from an operation's worker). */
#ifndef TESSERA_DAEMON_RT_H
#define TESSERA_DAEMON_RT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "daemon/daemon.h"

#define RT_ERR_LEN 512

struct rt_volume_info {
    char format[8]; /* "qcow2" or "raw" */
    uint64_t size_bytes;
    uint64_t allocated_bytes;
};

/* Opens the default pool, starts the VM supervisor and finds the VMs that run already
 * (after a restart of tesserad); VMs that exited meanwhile are handed to on_exit. */
int rt_init(struct daemon *d, char *err);
void rt_fini(struct daemon *d);

/* A template that ships with tessera, its base volume made in the platform's tenant. */
#define RT_SHIPPED_MAX 4
struct rt_shipped {
    char name[STORE_NAME_LEN]; /* "busybox", "debian-13" */
    char os[32];
    char kernel[PATH_MAX]; /* copies under STATE_DIR/images/, never the build's own files */
    char initrd[PATH_MAX]; /* "" when none */
    char cmdline[256];
    int cpus;
    uint64_t memory_bytes;
    uint64_t disk_bytes;
};

/* Finds the shipped templates' images (the default guest beside the binaries, the Debian
 * template in the build cache), copies them under the state directory and makes each base
 * volume ("", name) when it does not exist yet. *n gets how many were found. */
int rt_shipped_templates(struct daemon *d, struct rt_shipped *out, size_t *n, char *err);

int rt_pool_stats(struct daemon *d, uint64_t *capacity, uint64_t *used);

int rt_volume_create(struct daemon *d, const char *tenant, const char *name, const char *format,
                     uint64_t size, char *err);
/* linked: a qcow2 overlay on src (which must not change while it is used); otherwise a full,
 * flattened copy. */
int rt_volume_clone(struct daemon *d, const char *src_tenant, const char *src, const char *tenant,
                    const char *name, bool linked, char *err);
int rt_volume_resize(struct daemon *d, const char *tenant, const char *name, uint64_t size,
                     char *err);
int rt_volume_delete(struct daemon *d, const char *tenant, const char *name, char *err);
/* Snapshots of a volume that is not in use (pool.h: external qcow2 layers). list: a JSON array
 * of {name, size_bytes, allocated_bytes, current} (new reference) in *out. */
int rt_volume_snapshot(struct daemon *d, const char *tenant, const char *name, const char *op,
                       const char *snap, char *err);
int rt_volume_snapshots(struct daemon *d, const char *tenant, const char *name, json_t **out,
                        char *err);
int rt_volume_info(struct daemon *d, const char *tenant, const char *name,
                   struct rt_volume_info *out, char *err);

/* Makes a VM's run directory: its config document (from the VM's and its template's
 * documents), and its cloud-init seed when the VM has one. The disk volume exists already. */
int rt_vm_provision(struct daemon *d, const char *tenant, const json_t *vm, const json_t *tmpl,
                    char *err);
/* Writes the VM's disk and NIC rate limits (its resources) into its config document, for its
 * next start; a running VM's are changed through its control API by the caller. */
int rt_vm_limits(struct daemon *d, const char *tenant, const json_t *vm, char *err);
/* Starts the VM's process; returns once its API answers. *pid gets its pid. */
int rt_vm_start(struct daemon *d, const char *tenant, const char *name, int64_t *pid, char *err);
/* pause, resume, shutdown, stop, reboot. */
int rt_vm_action(struct daemon *d, const char *tenant, const char *name, const char *action,
                 char *err);
/* Whether the VM's process runs (after a restart of tesserad): 1 running, 2 paused (with
 * *pid), 0 it exited (*status: its exit status or 128 + signal), -ENOENT never started. */
int rt_vm_probe(struct daemon *d, const char *tenant, const char *name, int64_t *pid, int *status);
/* The path of the VM's console socket. */
int rt_vm_console_path(struct daemon *d, const char *tenant, const char *name, char *path,
                       size_t len);
/* The last `max` bytes of the VM's console log: *text is malloc'd (NUL-terminated, bytes
 * that are not printable ASCII, newline or tab replaced by '?'), or NULL when there is none. */
int rt_vm_console_log(struct daemon *d, const char *tenant, const char *name, size_t max,
                      char **text);
/* A call of the running VM's control API (vmproc_call()); *out (may be NULL) the answer's
 * JSON or NULL. Safe without d->lock: it reads only the VM's run directory. */
int rt_vm_call(struct daemon *d, const char *tenant, const char *name, const char *method,
               const char *path, const json_t *body, json_t **out, char *err);

/* The running VM's counters (GET /v1/vm/stats) with its process's CPU time added as
 * process.cpu_seconds: *out is a new reference. -ESRCH when it does not run. Safe without
 * d->lock, as rt_vm_call() is (the metric history's thread calls it so). */
int rt_vm_stats(struct daemon *d, const char *tenant, const char *name, json_t **out);
/* Replaces volume (tenant, name)'s image with the uploaded file at path (pool.h:
 * volume_import(): hostile input, at most max bytes of virtual size). */
int rt_volume_import(struct daemon *d, const char *tenant, const char *name, const char *path,
                     uint64_t max, char *err);
/* Removes the VM's run directory (its process must have exited). */
int rt_vm_remove(struct daemon *d, const char *tenant, const char *name, char *err);

/* Called by the runtime (with d->lock held) when a VM's process exited: status is its exit
 * status, or 128 + the signal that killed it. Implemented by the API core (api_vms.c), which
 * records it and applies the VM's restart policy. */
void api_vm_exited(struct daemon *d, const char *tenant, const char *name, int status);

#endif
