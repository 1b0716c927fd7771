/* history: the daemon's own short-term metric history (docs/daemon.md, "Metric history").
 *
 * Every HISTORY_STEP_S seconds a thread samples what GET /api/v1/vms/{name}/stats reports for
 * each running or paused VM (its VMM's GET /v1/vm/stats and its process's CPU time) and the
 * host (/proc/stat, /proc/meminfo), turns counters into rates and appends one point to a
 * bounded ring per VM and one for the host. As Proxmox's RRD does, older points are kept at a
 * coarser step: the last HISTORY_FINE_N points at HISTORY_STEP_S (10 minutes), and
 * HISTORY_COARSE_N averages of HISTORY_COARSE_S seconds each (the hour). A ring is a fixed
 * array: 34 KiB per VM (sizeof(struct history_ring): 720 points of 48 bytes), HISTORY_VMS_MAX
 * VMs at most, so the history never holds more than 34 MiB whatever the inventory.
 *
 * Rates come from the difference of two samples of the same process: a VM that restarted (its
 * pid changed) or whose counters went back gets a point whose rates are unknown (NaN, null in
 * JSON), and rates again from the next sample on. A VM that stops keeps its history (its
 * points simply end) until it is deleted from the store.
 *
 * The ring (history_ring_*) and the rate arithmetic (history_rates) are pure functions the unit
 * tests drive. The thread reads the store under d->lock and releases it before it talks to any
 * VMM; its own lock (inside struct history) guards the rings and is never held while d->lock
 * is taken, so the API may read a ring while holding d->lock. */
#ifndef TESSERA_DAEMON_HISTORY_H
#define TESSERA_DAEMON_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct daemon;

#define HISTORY_STEP_S   1    /* a load that starts shows fully in the second sample */
#define HISTORY_FINE_N   600  /* 10 minutes at HISTORY_STEP_S */
#define HISTORY_COARSE_S 30   /* older points: averages of this many seconds */
#define HISTORY_COARSE_N 120  /* one hour of them */
#define HISTORY_FIELDS   10   /* values per point, at most */
#define HISTORY_VMS_MAX  1024 /* VMs with a history; more are not sampled */
#define HISTORY_WINDOW_S (HISTORY_COARSE_N * HISTORY_COARSE_S)

/* One point: its time (Unix milliseconds, CLOCK_REALTIME, for people) and its values, NaN
 * where unknown. float: a graph needs no more than its 24 bits, and it halves the ring. */
struct history_point {
    int64_t t_ms;
    float v[HISTORY_FIELDS];
};

struct history_ring {
    unsigned nfields;
    size_t fine_head, fine_n; /* fine[fine_head] is the oldest of fine_n */
    size_t coarse_head, coarse_n;
    int64_t bucket; /* the coarse bucket being filled: t_ms / HISTORY_COARSE_S s */
    unsigned bucket_n[HISTORY_FIELDS]; /* its known values per field, and their sums */
    double bucket_sum[HISTORY_FIELDS];
    bool bucket_open;
    struct history_point fine[HISTORY_FINE_N];
    struct history_point coarse[HISTORY_COARSE_N];
};

/* An empty ring of nfields (<= HISTORY_FIELDS) values per point. */
void history_ring_init(struct history_ring *r, unsigned nfields);
/* Appends a point (v: nfields values, NaN where unknown). Points come in time order; one whose
 * time is not after the newest is ignored (a clock set back). Completing a HISTORY_COARSE_S
 * bucket appends its average (per field, of the known values; NaN when none) to the coarse
 * ring, dated at the bucket's start. */
void history_ring_add(struct history_ring *r, int64_t t_ms, const double *v);
/* The points newer than since_ms, oldest first, as columns: {"t": [Unix seconds], names[0]:
 * [...], ...} (null for NaN), coarse points where no fine one exists yet, then the fine ones.
 * names: nfields names. NULL when out of memory. */
json_t *history_ring_json(const struct history_ring *r, const char *const *names, int64_t since_ms);

/* A VM's values, in order (history_vm_names). */
enum history_vm_field {
    HISTORY_VM_CPU,          /* CPU used over the step, as a fraction of the VM's vCPUs */
    HISTORY_VM_CPU_WAIT,     /* CPU its threads wanted and waited for, the same way */
    HISTORY_VM_MEMORY,       /* the VMM's resident memory, bytes */
    HISTORY_VM_BALLOON,      /* what the guest gave up to its balloon, bytes */
    HISTORY_VM_DISK_RD_BPS,  /* bytes read per second, all disks */
    HISTORY_VM_DISK_WR_BPS,  /* bytes written per second */
    HISTORY_VM_DISK_RD_IOPS, /* read requests per second */
    HISTORY_VM_DISK_WR_IOPS, /* write requests per second */
    HISTORY_VM_NET_RX_BPS,   /* bytes per second to the guest, all NICs */
    HISTORY_VM_NET_TX_BPS,   /* bytes per second from the guest */
    HISTORY_VM_NFIELDS
};
extern const char *const history_vm_names[HISTORY_VM_NFIELDS];

enum history_host_field {
    HISTORY_HOST_CPU,         /* busy share of all online CPUs (/proc/stat) */
    HISTORY_HOST_MEMORY_USED, /* MemTotal - MemAvailable, bytes */
    HISTORY_HOST_VMS_RUNNING, /* VMs whose process runs (running or paused) */
    HISTORY_HOST_NFIELDS
};
extern const char *const history_host_names[HISTORY_HOST_NFIELDS];

/* One sample of a VM's counters (from GET /v1/vm/stats and its process). */
struct history_counters {
    int64_t pid;
    int64_t mono_ns;  /* CLOCK_MONOTONIC when sampled */
    double cpu_s;     /* the process's CPU time, seconds */
    uint64_t wait_ns; /* its threads' time runnable but not running (schedstat) */
    bool have_wait;
    uint64_t rd_bytes, wr_bytes, rd_ops, wr_ops, rx_bytes, tx_bytes;
};

/* Fills v's rate fields (CPU, disk, network) from two samples of a VM with vcpus vCPUs (> 0):
 * true; false, with those fields NaN, when prev cannot serve (NULL, another process, no time
 * between them, or a counter that went back). The wait alone is NaN when either sample lacks
 * it or it went back (it sums the threads alive now: one that exits takes its share along). */
bool history_rates(const struct history_counters *prev, const struct history_counters *cur,
                   unsigned vcpus, double *v);

/* The thread: started after the VMs are found again, stopped before the store closes. */
int history_start(struct daemon *d);
void history_stop(struct daemon *d);

/* The history of VM (tenant, name) over the last since_s seconds (<= 0 or more than
 * HISTORY_WINDOW_S: all of it): a new object {"interval_s", "consolidated_s", "series": {...}}
 * in *out, whose columns are empty for a VM not sampled since tesserad started; -ESRCH when
 * the thread does not run, -ENOMEM. Takes only the history's own lock: callers may hold
 * d->lock. */
int history_vm_json(struct daemon *d, const char *tenant, const char *name, int64_t since_s,
                    json_t **out);
/* The host's, the same way. */
int history_host_json(struct daemon *d, int64_t since_s, json_t **out);

#endif
