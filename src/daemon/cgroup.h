/* cgroup: the control groups that hold tesserad's VMs (docs/resources.md).
 *
 * Layout. Every VM's VMM process runs in PARENT/TENANT/VM: PARENT carries the host's limits
 * for all VMs (the CPUs they may use, the memory they may hold), TENANT the tenant's pool
 * (its shares and limits, as a vSphere resource pool), VM the VM's own. Tenant "" (the
 * platform's) is "_platform", a name no tenant can have.
 *
 * Versions. cgroup v2 (one unified hierarchy) where the host mounts it with the cpu and
 * memory controllers; otherwise cgroup v1 with one hierarchy per controller (cpu, cpuacct,
 * cpuset, memory; each optional). Detected from /proc/self/mountinfo, never assumed. Under v2,
 * PARENT is "/tessera" below the mount when tesserad runs in the root group; otherwise it is
 * tesserad's own group's "vms" child, and tesserad moves itself into the sibling "daemon" (a
 * group with processes cannot hand controllers to its children). Under v1 PARENT is
 * "/tessera" in every hierarchy.
 *
 * Values. CPU weights are given as a fraction of the parent (0..1, from cgroup_weights());
 * cgroup_apply() writes them as v2 cpu.weight (1..10000) or v1 cpu.shares (2..262144). A
 * CPU limit is in cores (0.5 = half a core: a quota of 50 ms per 100 ms period). Memory in
 * bytes, 0 = no limit / no protection.
 *
 * Threads: a cgroup_host is read-only once opened; calls on different groups may run at once.
 * Every call returns 0 or -errno with a one-line message in err (CGROUP_ERR_LEN bytes) naming
 * the file. */
#ifndef TESSERA_DAEMON_CGROUP_H
#define TESSERA_DAEMON_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CGROUP_ERR_LEN    512
#define CGROUP_PROCS_MAX  4 /* cgroup.procs files a process joins: one per v1 hierarchy */
#define CGROUP_CPUSET_LEN 128

enum cgroup_mode { CGROUP_NONE, CGROUP_V1, CGROUP_V2 };

enum cgroup_ctrl { CG_CPU, CG_CPUACCT, CG_CPUSET, CG_MEMORY, CG_NCTRL };

struct cgroup_host {
    enum cgroup_mode mode;
    /* PARENT's directory per controller: v2 uses dir[0] for all; v1 "" where the controller
     * is not mounted. */
    char dir[CG_NCTRL][PATH_MAX];
    char why[160]; /* CGROUP_NONE: why (no cgroup file system, not root, ...) */
};

/* What one group gets. A field left at its "unset" value is not written. */
struct cgroup_limits {
    double cpu_weight;              /* fraction of the parent, (0, 1]; 0 = unset */
    double cpu_limit;               /* cores; 0 = unlimited; < 0 = unset */
    char cpuset[CGROUP_CPUSET_LEN]; /* "0-3,6"; "" = inherit the parent's */
    int64_t memory_max;             /* bytes; 0 = unlimited; < 0 = unset */
    int64_t memory_low;             /* bytes protected from reclaim; 0 = none; < 0 = unset */
    int64_t memory_high;            /* v2 only: throttled above; 0 = none; < 0 = unset */
};

/* One file and the value cgroup_apply() writes into it. */
struct cgroup_write {
    enum cgroup_ctrl ctrl;
    char file[32];
    char value[CGROUP_CPUSET_LEN];
};
#define CGROUP_WRITES_MAX 8

struct cgroup_usage {
    uint64_t cpu_ns;       /* CPU time used by the group's processes */
    uint64_t throttled_ns; /* time the group was held back by its CPU limit */
    uint64_t nr_throttled; /* periods in which it was */
    uint64_t memory_bytes; /* memory charged to it */
    bool have_cpu, have_throttled, have_memory;
};

/* Finds the cgroup file systems and makes PARENT (name: "tessera", or the caller's). A host
 * without usable cgroups (no mount, not root) is not an error: mode CGROUP_NONE and why. */
int cgroup_host_open(struct cgroup_host *h, const char *name, char *err);

/* Uses the given directories as PARENT (tests: a group made below a real hierarchy). For v2
 * dirs[0]; for v1 one per controller, NULL or "" where absent. Makes them. */
int cgroup_host_at(struct cgroup_host *h, enum cgroup_mode mode, const char *const dirs[CG_NCTRL],
                   char *err);

/* The group path below PARENT of a tenant ("TENANT") or a VM ("TENANT/VM"). */
void cgroup_rel_tenant(const char *tenant, char out[PATH_MAX]);
void cgroup_rel_vm(const char *tenant, const char *vm, char out[PATH_MAX]);

/* Makes the group rel ("" is PARENT itself) in every hierarchy, with its parents; v2 also
 * hands the controllers down to it; v1 cpuset copies the parent's cpus and mems. */
int cgroup_make(const struct cgroup_host *h, const char *rel, char *err);

/* Removes the group rel, which must be empty of processes (-EBUSY otherwise). Missing: 0. */
int cgroup_remove(const struct cgroup_host *h, const char *rel, char *err);

/* The files and values for l on this host's version, in the order they must be written:
 * *n gets how many. Pure: what the unit tests check for both versions. */
void cgroup_writes(enum cgroup_mode mode, const struct cgroup_limits *l,
                   struct cgroup_write out[CGROUP_WRITES_MAX], size_t *n);

/* Writes l into group rel. */
int cgroup_apply(const struct cgroup_host *h, const char *rel, const struct cgroup_limits *l,
                 char *err);

/* The cgroup.procs files a process writes its pid into to join rel (one per hierarchy). */
int cgroup_procs_files(const struct cgroup_host *h, const char *rel,
                       char out[CGROUP_PROCS_MAX][PATH_MAX], size_t *n);

/* Moves process pid into rel. */
int cgroup_attach(const struct cgroup_host *h, const char *rel, pid_t pid, char *err);

/* What group rel used (fields it cannot read stay false). */
int cgroup_usage(const struct cgroup_host *h, const char *rel, struct cgroup_usage *u, char *err);

/* Number of CPUs in a cpuset list "0-3,6" (0 for a malformed one). */
unsigned cgroup_cpuset_count(const char *list);

/* ---- Weights from shares and reservations ----
 *
 * Shares divide what is left after reservations, among siblings that all want more than they
 * get; reservations come first. For n siblings over a capacity of C cores with shares s_i and
 * reservations r_i (cores, sum <= C), sibling i's weight is
 *     f_i = r_i / C + (1 - sum(r) / C) * s_i / sum(s)
 * so that, when every sibling is busy, the kernel's proportional scheduler gives i at least
 * r_i cores. The weights sum to 1. */
struct cgroup_share {
    double shares;      /* > 0 */
    double reservation; /* cores, >= 0 */
    double weight;      /* out */
};
void cgroup_weights(struct cgroup_share *s, size_t n, double capacity);

#endif
