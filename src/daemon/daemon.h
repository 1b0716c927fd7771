/* One tesserad: its state directory, store, lock, operations and the modules that run VMs
 * (docs/daemon.md). Everything the API core needs besides the request itself.
 *
 * Locking: `lock` guards the store, the operations table and every VM's runtime record. The
 * HTTP front end holds it around api_handle(); worker threads (operations) and the VM
 * supervisor's exit callback take it themselves. Nothing slow (a VM boot, a copy) runs under
 * it: long actions are operations (ops.h) whose workers drop the lock while they wait. */
#ifndef TESSERA_DAEMON_DAEMON_H
#define TESSERA_DAEMON_DAEMON_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon/cgroup.h"
#include "daemon/store.h"

struct ops;
struct events_bus;
struct metrics;

#define DAEMON_STATE_DIR_MAX 200

/* What the host offers to VMs; the store's "host" document keeps the overcommit ratios. */
struct daemon_host {
    unsigned cpus;         /* online CPUs */
    uint64_t memory_bytes; /* physical memory */
};

struct daemon {
    pthread_mutex_t lock;
    struct store *store;
    struct ops *ops;
    struct events_bus *events; /* changes to objects, for GET /api/v1/events (events.h) */
    struct metrics *metrics;   /* GET /metrics (metrics.h), with the VM and tenant providers */
    struct daemon_host host;
    char state_dir[DAEMON_STATE_DIR_MAX]; /* a VM's sockets live under it: kept short */
    char tessera[PATH_MAX]; /* the VMM binary; "" when none was found (VMs cannot start) */
    void *vm;               /* the VM runtime (vm.c); NULL until daemon_vm_init() */
    /* The VMs' control groups (cgroup.h); mode CGROUP_NONE without them (cg.why says why). */
    struct cgroup_host cg;
    void *mempolicy; /* the balloon policy's thread (mempolicy.h) */
    void *history;   /* the metric history's thread and rings (history.h) */
};

/* Opens the state directory (which exists, mode 0700): the store, the runtime (rt.h), the
 * shipped templates; finds the VMs that run already. cgroup_parent names the VMs' parent
 * control group (cgroup.h; NULL: none, the VMs run in tesserad's own). 0, or -errno with err
 * (STORE_ERR_LEN). The platform administrator is made apart (api_bootstrap()). */
int daemon_init(struct daemon *d, const char *state_dir, const char *cgroup_parent, char *err);
/* Stops the workers and closes everything; the VMs keep running. */
void daemon_fini(struct daemon *d);

#endif
