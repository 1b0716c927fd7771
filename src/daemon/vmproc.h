/* vmproc: each VM as its own sandboxed `tessera run --config` process, found again after the
 * daemon's own crash (docs/daemon.md, "How VMs run").
 *
 * Processes. vmproc_start() spawns a shim, like conmon or containerd-shim: the daemon's own
 * executable re-run as `SHIM __shim DIR [--cgroup FILE]... -- TESSERA run --config CONFIG`
 * (vmproc_shim_main()),
 * in a new session (setsid), working directory DIR, stdin /dev/null, stdout and stderr appended
 * to DIR/vmm.log, no other fd, no blocked signal. The shim forks the VMM, records it, waits for
 * it and records how it ended, then exits. Neither depends on the daemon: a `kill -9` of it
 * leaves both running, and an exit while it is down is written down for its next start.
 *
 * Files in DIR. The caller creates DIR (absolute, mode 0700, at most VMPROC_DIR_MAX bytes) and
 * writes CONFIG into it: the VM config document (docs/vm-config.md), which must say
 *     "api_socket": "DIR/api.sock",
 *     "console": {"mode": "socket", "socket": "DIR/console.sock", "log": "DIR/console.log"}
 * (vmproc checks them and refuses the start otherwise; it never edits the caller's file).
 *     pid       {"shim_pid", "shim_start", "vmm_pid", "vmm_start"}, written by the shim once
 *               the VMM is forked; *_start is the start time of /proc/PID/stat (field 22), so a
 *               reused pid is never taken for the VM
 *     exit      {"status": N} or {"signal": N}, written by the shim once the VMM is reaped
 *     vmm.log   the VMM's and the shim's output; vmm.log.1 is the previous start's
 * pid and exit are written to a temporary file and renamed, so they are whole or absent. They
 * are outside input all the same: each must be a regular file (no symlink) of at most 4 KiB
 * holding a JSON object with exactly its keys, in range; anything else is -EINVAL with err
 * naming the file. A process counts as the VM's only if it is alive (not a zombie) with the
 * recorded start time, in the shim's session, and its command line names DIR: no signal ever
 * goes to a process that a forged or stale file points at.
 *
 * Threads. The vmproc_* functions keep no state and take no lock; any thread may call them.
 * The caller serializes actions on one VM. Each blocks for at most the bound it states. err
 * buffers are VMPROC_ERR_LEN bytes and get one line.
 *
 * Children. The shim is a child of the process that called vmproc_start() and must be reaped
 * there: vmsup_watch() the VM (the supervisor reaps the shims of its VMs, also after an
 * unwatch). A shim adopted after a restart is not our child and needs no reaping. */
#ifndef TESSERA_DAEMON_VMPROC_H
#define TESSERA_DAEMON_VMPROC_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#define VMPROC_ERR_LEN         512
#define VMPROC_DIR_MAX         90 /* DIR/console.sock must fit a sun_path (107 bytes) */
#define VMPROC_SHIM_ARG        "__shim"
#define VMPROC_START_TIMEOUT_S 15
#define VMPROC_CGROUPS_MAX     4

struct vmproc_spec {
    const char *id;      /* the VM's id or name, for messages */
    const char *dir;     /* the run directory DIR: absolute, no trailing '/' */
    const char *config;  /* CONFIG: DIR/NAME */
    const char *tessera; /* the VMM: an absolute path (tesserad passes the one beside itself) */
    /* An absolute path of an executable whose main() calls vmproc_shim_main() when argv[1] is
     * VMPROC_SHIM_ARG: tesserad passes its own executable. */
    const char *shim;
    /* cgroup.procs files the VMM joins before it runs (cgroup.h), each an absolute path; the
     * shim passes them as `--cgroup FILE` before `--`. A failed join fails the start. */
    const char *const *cgroups;
    size_t ncgroups;
};

enum vmproc_state {
    VMPROC_GONE,    /* no record: never started here, or its files were removed */
    VMPROC_RUNNING, /* the recorded VMM process is alive */
    VMPROC_EXITED,  /* the VMM ended; how is below */
};

struct vmproc_info {
    enum vmproc_state state;
    pid_t pid;      /* RUNNING, EXITED: the VMM's pid (0 when never recorded) */
    pid_t shim_pid; /* the same for the shim */
    /* RUNNING: the VM's state as GET /v1/vm says ("running", "paused", "shutting-down",
     * "stopped"); "" when the API did not answer. */
    char vm_state[16];
    /* EXITED: exit_known is false when nothing recorded how it ended (the shim was killed
     * too); otherwise exit_signal is the signal that killed it, or 0 and exit_status is its
     * exit status (0..255). */
    bool exit_known;
    int exit_status;
    int exit_signal;
};

/* Starts the VM of spec. First checks spec and CONFIG (the sockets above) and that no VMM of
 * DIR is running (-EBUSY), removes DIR/pid and DIR/exit of an earlier run and keeps its
 * vmm.log as vmm.log.1. Returns 0 and *out (RUNNING) once DIR/api.sock answers GET /v1/vm,
 * within VMPROC_START_TIMEOUT_S seconds; otherwise -errno with err: quoting the end of vmm.log
 * when the VMM exited first (-ECHILD), saying it was killed when it did not answer in time
 * (-ETIMEDOUT; the VMM is gone then), -EINVAL for spec, CONFIG or bad files. */
int vmproc_start(const struct vmproc_spec *spec, struct vmproc_info *out, char *err);

/* What became of the VM of DIR, from its files and /proc, and for a RUNNING one from GET
 * /v1/vm (2 s at most; when it does not answer vm_state is "" and err says why, still 0).
 * When the VMM has just died and its shim lives, waits up to 2 s for the shim's record.
 * 0 and *out, or -EINVAL naming a malformed file, -errno for I/O errors, with err. */
int vmproc_probe(const char *dir, struct vmproc_info *out, char *err);

/* pause | resume | reset | shutdown | stop through PUT /v1/vm/state (docs/api.md); reboot is
 * reset. pause, resume and reset return with the VM's answer (5 s at most). shutdown asks the
 * guest to power off and the VMM to stop it after timeout_s (1..3600) seconds; stop ends it
 * now: both return once the VMM exited, or kill it with SIGKILL when it has not exited
 * timeout_s seconds after stop (timeout_s + 5 after shutdown) or the API does not answer, and
 * then return 1 with err saying so. 0 when done; -ESRCH when the VM is not running, -EBUSY
 * (409: e.g. already paused), -EINVAL, -EOPNOTSUPP or -EIO for the VM's other refusals, with
 * err quoting it; -errno for a VM that cannot be reached. */
int vmproc_action(const char *dir, const char *action, unsigned timeout_s, char *err);

/* GET /v1/vm/stats of the running VM of DIR (5 s at most): 0 and *json (malloc'd JSON text,
 * the caller frees it), or -ESRCH / -errno with err. */
int vmproc_get(const char *dir, char **json, char *err);

/* Any call of the running VM's control API (docs/api.md), body NULL or JSON text, 5 s at
 * most: 0 with *json the 200 answer's body (malloc'd; NULL for a 204), or -ESRCH when the VM
 * is not running, -errno for its refusals (the status's meaning) and failures, with err. */
int vmproc_call(const char *dir, const char *method, const char *path, const char *body,
                char **json, char *err);

/* The shim's main (argv as above, argv[1] == VMPROC_SHIM_ARG). Returns the process's exit
 * status: 0 when the VMM's end was recorded, 1 when it could not be, 2 for a bad argv. */
int vmproc_shim_main(int argc, char **argv);

/* The supervisor: one thread that notices VM exits (a pidfd per process and a 2 s poll) and
 * reaps the shims that are the calling process's children.
 *
 * on_exit(arg, id, info) runs on the supervisor's thread once per watch, when the VM of a
 * watched id is no longer RUNNING (info->state EXITED, or GONE when its files vanished or
 * turned malformed, which is logged). No vmsup lock is held then: it takes the daemon's lock
 * itself and may call vmsup_watch() and vmsup_unwatch(). The restart policy is the caller's:
 * on_exit decides and starts the VM again (better on a worker thread: a start blocks up to
 * VMPROC_START_TIMEOUT_S and other exits wait meanwhile), then watches it again.
 *
 * vmsup_watch() takes id and dir (copied): 0, -EEXIST for an id already watched, -ENOENT when
 * DIR has no record, -EINVAL with err for malformed files, -ENOMEM. A VM that has already
 * exited is reported at once, from the thread. vmsup_unwatch(): no callback for id from now
 * on, except one already running; 0 or -ENOENT. vmsup_destroy() stops the thread (waiting for
 * a callback in progress: do not call it holding a lock on_exit takes); VMs run on. */
struct vmsup;
typedef void vmsup_exit_fn(void *arg, const char *id, const struct vmproc_info *info);

int vmsup_create(vmsup_exit_fn *on_exit, void *arg, struct vmsup **out);
int vmsup_watch(struct vmsup *sup, const char *id, const char *dir, char *err);
int vmsup_unwatch(struct vmsup *sup, const char *id);
void vmsup_destroy(struct vmsup *sup);

/* The summed run-queue wait of every thread of pid: the second field of each
 * /proc/PID/task/TID/schedstat (nanoseconds runnable but not running; the kernel's
 * Documentation/scheduler/sched-stats.rst): the CPU a VM wanted and did not get. What
 * GET /vms/{name}/stats reports as cpu.wait_ns and the history samples. false when pid has no
 * /proc entry (*out is then 0). */
bool vmproc_sched_wait_ns(int64_t pid, uint64_t *out);

#endif
