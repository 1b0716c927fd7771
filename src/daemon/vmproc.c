/* vmproc: VMs as shim-supervised `tessera run --config` processes (vmproc.h). */
#include "daemon/vmproc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "base/log.h"
#include "vmm/control_client.h"
#include "vmm/vmconfig.h"

extern char **environ;

#define FILE_MAX        4096      /* DIR/pid and DIR/exit are tiny; anything bigger is forged */
#define PID_LIMIT       (1 << 22) /* PID_MAX_LIMIT on 64-bit Linux (proc(5)) */
#define START_LIMIT     (1LL << 62)
#define CMDLINE_MAX     (16 << 10) /* more than any argv we build */
#define EXIT_WAIT_MS    2000       /* a dead VMM's shim writes DIR/exit within this */
#define STEP_MS         20
#define ACTION_CALL_S   5
#define PROBE_CALL_S    2
#define SUP_INTERVAL_MS 2000
#define RUN_PATH_LEN    (VMPROC_DIR_MAX + 24) /* DIR/ and the longest name below */

/* What the shim writes to DIR/pid. */
struct vmproc_rec {
    pid_t shim_pid, vmm_pid;
    long long shim_start, vmm_start;
};

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* DIR/name into buf (RUN_PATH_LEN bytes); DIR is bounded by dir_check(). */
static void dir_path(char *buf, const char *dir, const char *name)
{
    snprintf(buf, RUN_PATH_LEN, "%s/%s", dir, name);
}

/* DIR as the functions take it: absolute, at most VMPROC_DIR_MAX bytes, no trailing '/'. */
static int dir_check(const char *dir, char *err)
{
    size_t len = strlen(dir);

    if (dir[0] == '/' && len >= 2 && len <= VMPROC_DIR_MAX && dir[len - 1] != '/')
        return 0;
    snprintf(err, VMPROC_ERR_LEN,
             "run directory '%.100s': expected an absolute path of at most %d bytes without a "
             "trailing '/'",
             dir, VMPROC_DIR_MAX);
    return -EINVAL;
}

/* Reads a small regular file without following a symlink or blocking on a FIFO. 0 and the
 * NUL-terminated text, -ENOENT when absent, -EINVAL when it is no regular file or over
 * FILE_MAX bytes, -errno. */
static int file_read_small(const char *path, char *buf, size_t *len)
{
    struct stat st;
    ssize_t n;
    size_t got = 0;
    int fd, ret = 0;

    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return errno == ELOOP ? -EINVAL : -errno;
    if (fstat(fd, &st)) {
        ret = -errno;
        goto close_fd;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > FILE_MAX) {
        ret = -EINVAL;
        goto close_fd;
    }
    while ((n = read(fd, buf + got, FILE_MAX + 1 - got)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            ret = -errno;
            goto close_fd;
        }
        got += (size_t)n;
        if (got > FILE_MAX) {
            ret = -EINVAL;
            goto close_fd;
        }
    }
    buf[got] = '\0';
    *len = got;
close_fd:
    close(fd);
    return ret;
}

/* Writes text to DIR/name through DIR/name.tmp and a rename, so that a reader sees the whole
 * file or none, then syncs the directory so the record outlives a crash of the host too. */
static int file_write_atomic(const char *dir, const char *name, const char *text)
{
    char path[RUN_PATH_LEN], tmp[RUN_PATH_LEN + 8];
    size_t len = strlen(text);
    int fd, dfd, ret = 0;

    dir_path(path, dir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    errno = 0;
    if (write(fd, text, len) != (ssize_t)len || fsync(fd))
        ret = errno ? -errno : -EIO;
    if (close(fd) && !ret)
        ret = -errno;
    if (!ret && rename(tmp, path))
        ret = -errno;
    if (ret) {
        unlink(tmp);
        return ret;
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

/* Loads DIR/name as a JSON object whose keys are all among keys[] (n of them). 0 and *out,
 * -ENOENT when absent, -EINVAL (err names the file) when malformed. */
static int json_load_record(const char *dir, const char *name, const char *const *keys, size_t n,
                            json_t **out, char *err)
{
    char path[RUN_PATH_LEN], text[FILE_MAX + 1];
    const char *key;
    json_error_t jerr;
    json_t *o, *v;
    size_t len = 0, i;
    int ret;

    dir_path(path, dir, name);
    ret = file_read_small(path, text, &len);
    if (ret == -ENOENT)
        return ret;
    if (ret) {
        snprintf(err, VMPROC_ERR_LEN, "%s: %s", path,
                 ret == -EINVAL ? "not a regular file of at most 4096 bytes" : strerror(-ret));
        return ret;
    }
    o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o || !json_is_object(o)) {
        snprintf(err, VMPROC_ERR_LEN, "%s: expected a JSON object (%s)", path,
                 o ? "got another JSON value" : jerr.text);
        json_decref(o);
        return -EINVAL;
    }
    json_object_foreach(o, key, v)
    {
        for (i = 0; i < n && strcmp(key, keys[i]); i++)
            ;
        if (i == n) {
            snprintf(err, VMPROC_ERR_LEN, "%s: unknown key '%.40s'", path, key);
            json_decref(o);
            return -EINVAL;
        }
    }
    *out = o;
    return 0;
}

/* o[key] as an integer in [min, max]: 0, -ENOENT when absent, -EINVAL (err) otherwise. */
static int json_get_int(json_t *o, const char *dir, const char *name, const char *key,
                        long long min, long long max, long long *out, char *err)
{
    json_t *v = json_object_get(o, key);

    if (!v)
        return -ENOENT;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        snprintf(err, VMPROC_ERR_LEN, "%s/%s: %s: expected an integer from %lld to %lld", dir, name,
                 key, min, max);
        return -EINVAL;
    }
    *out = json_integer_value(v);
    return 0;
}

static int rec_load(const char *dir, struct vmproc_rec *rec, char *err)
{
    static const char *const keys[] = {"shim_pid", "shim_start", "vmm_pid", "vmm_start"};
    long long v[4];
    json_t *o;
    int ret;

    ret = json_load_record(dir, "pid", keys, 4, &o, err);
    if (ret)
        return ret;
    for (size_t i = 0; i < 4 && !ret; i++) {
        /* Never pid 1 (or 0, or a negative one that kill() would take as a group). */
        ret = json_get_int(o, dir, "pid", keys[i], i % 2 ? 0 : 2, i % 2 ? START_LIMIT : PID_LIMIT,
                           &v[i], err);
        if (ret == -ENOENT) {
            snprintf(err, VMPROC_ERR_LEN, "%s/pid: %s: missing", dir, keys[i]);
            ret = -EINVAL;
        }
    }
    json_decref(o);
    if (ret)
        return ret;
    if (v[0] == v[2]) {
        snprintf(err, VMPROC_ERR_LEN, "%s/pid: the shim and the VMM have the same pid", dir);
        return -EINVAL;
    }
    rec->shim_pid = (pid_t)v[0];
    rec->shim_start = v[1];
    rec->vmm_pid = (pid_t)v[2];
    rec->vmm_start = v[3];
    return 0;
}

/* DIR/exit into info: exactly one of "status" (0..255) or "signal" (1..64). */
static int exit_load(const char *dir, struct vmproc_info *info, char *err)
{
    static const char *const keys[] = {"status", "signal"};
    long long status = 0, sig = 0;
    int rs, rg;
    json_t *o;
    int ret;

    ret = json_load_record(dir, "exit", keys, 2, &o, err);
    if (ret)
        return ret;
    rs = json_get_int(o, dir, "exit", "status", 0, 255, &status, err);
    rg = rs == -EINVAL ? 0 : json_get_int(o, dir, "exit", "signal", 1, 64, &sig, err);
    json_decref(o);
    if (rs == -EINVAL || rg == -EINVAL)
        return -EINVAL;
    if ((rs == 0) == (rg == 0)) {
        snprintf(err, VMPROC_ERR_LEN, "%s/exit: expected one of status or signal", dir);
        return -EINVAL;
    }
    info->exit_known = true;
    info->exit_status = rs == 0 ? (int)status : -1;
    info->exit_signal = rg == 0 ? (int)sig : 0;
    return 0;
}

/* From /proc/PID/stat (proc(5)): the state letter, the session and the start time. */
struct proc_stat {
    char state;
    long long session, start;
};

static int proc_stat_read(pid_t pid, struct proc_stat *ps)
{
    char path[64], buf[1024];
    const char *p;
    ssize_t n;
    int fd, field;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -ESRCH;
    buf[n] = '\0';
    /* comm (field 2) may hold spaces and ')': the fields go on after its last ')'. */
    p = strrchr(buf, ')');
    if (!p || sscanf(p + 1, " %c", &ps->state) != 1)
        return -EPROTO;
    p += 2;
    for (field = 3; field < 22 && p; field++) {
        if (field == 6)
            ps->session = strtoll(p, NULL, 10);
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    if (!p)
        return -EPROTO;
    ps->start = strtoll(p, NULL, 10);
    return 0;
}

/* Whether pid's argv names DIR: the shim's as `SHIM __shim DIR ...`, the VMM's (and the shim's,
 * of which it is a fork until its exec) with `--config DIR/...`. */
static bool proc_names_dir(pid_t pid, const char *dir, bool shim)
{
    char path[64];
    char *buf, *arg, *end, *prev = NULL;
    size_t dlen = strlen(dir), got = 0;
    bool found = false;
    ssize_t n;
    int fd, i = 0;

    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    buf = malloc(CMDLINE_MAX + 1);
    if (!buf)
        goto close_fd;
    while (got < CMDLINE_MAX && (n = read(fd, buf + got, CMDLINE_MAX - got)) > 0)
        got += (size_t)n;
    buf[got] = '\0';
    end = buf + got;
    for (arg = buf; arg < end && !found; arg += strlen(arg) + 1, i++) {
        if (shim)
            found = i == 2 && prev && !strcmp(prev, VMPROC_SHIM_ARG) && !strcmp(arg, dir);
        else
            found =
                prev && !strcmp(prev, "--config") && !strncmp(arg, dir, dlen) && arg[dlen] == '/';
        prev = arg;
    }
    free(buf);
close_fd:
    close(fd);
    return found;
}

/* Whether the recorded process lives: not a zombie, the recorded start time, the shim's
 * session, and DIR in its argv. */
static bool proc_is_alive(pid_t pid, long long start, pid_t session, const char *dir, bool shim)
{
    struct proc_stat ps;

    if (proc_stat_read(pid, &ps) || ps.state == 'Z' || ps.state == 'X' || ps.start != start ||
        ps.session != session)
        return false;
    return proc_names_dir(pid, dir, shim);
}

static bool rec_vmm_alive(const char *dir, const struct vmproc_rec *rec)
{
    return proc_is_alive(rec->vmm_pid, rec->vmm_start, rec->shim_pid, dir, false);
}

static bool rec_shim_alive(const char *dir, const struct vmproc_rec *rec)
{
    return proc_is_alive(rec->shim_pid, rec->shim_start, rec->shim_pid, dir, true);
}

/* The VM's state from its files and /proc, without asking its API (vmproc_probe's first half;
 * the supervisor's check). *rec is filled when DIR/pid exists. */
static int probe_files(const char *dir, struct vmproc_info *info, struct vmproc_rec *rec, char *err)
{
    int64_t deadline;
    int ret, rrec;

    memset(info, 0, sizeof(*info));
    memset(rec, 0, sizeof(*rec));
    info->exit_status = -1;
    ret = exit_load(dir, info, err);
    if (ret && ret != -ENOENT)
        return ret;
    rrec = rec_load(dir, rec, err);
    if (rrec && rrec != -ENOENT)
        return rrec;
    info->pid = rec->vmm_pid;
    info->shim_pid = rec->shim_pid;
    if (ret == 0) {
        info->state = VMPROC_EXITED;
        return 0;
    }
    if (rrec == -ENOENT) {
        info->state = VMPROC_GONE;
        return 0;
    }
    if (rec_vmm_alive(dir, rec)) {
        info->state = VMPROC_RUNNING;
        return 0;
    }
    /* The VMM is gone: its shim writes DIR/exit as soon as it has reaped it. */
    info->state = VMPROC_EXITED;
    deadline = now_ms() + EXIT_WAIT_MS;
    for (;;) {
        ret = exit_load(dir, info, err);
        if (ret != -ENOENT)
            return ret;
        if (!rec_shim_alive(dir, rec) || now_ms() > deadline)
            break;
        sleep_ms(STEP_MS);
    }
    /* A last look: the shim may have written it and exited since. */
    ret = exit_load(dir, info, err);
    return ret == -ENOENT ? 0 : ret;
}

/* SIGKILL to the recorded VMM, only when it is still the VMM: through a pidfd taken before the
 * identity check, so that the signal reaches the process that was checked. */
static void rec_kill_vmm(const char *dir, const struct vmproc_rec *rec)
{
    int pfd = pidfd_open(rec->vmm_pid, 0);

    if (pfd < 0)
        return;
    if (rec_vmm_alive(dir, rec))
        pidfd_send_signal(pfd, SIGKILL, NULL, 0);
    close(pfd);
}

/* The last lines of DIR/vmm.log as one line for an error message: newlines become " | ",
 * other control bytes '?'. */
static void log_tail(const char *dir, char *out, size_t n)
{
    char path[RUN_PATH_LEN], buf[301];
    const char *p;
    size_t o = 0;
    ssize_t got;
    off_t size;
    int fd;

    out[0] = '\0';
    dir_path(path, dir, "vmm.log");
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return;
    size = lseek(fd, 0, SEEK_END);
    got = size < 0 ? -1 : pread(fd, buf, sizeof(buf) - 1, size > 300 ? size - 300 : 0);
    close(fd);
    if (got <= 0)
        return;
    while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == ' '))
        got--;
    buf[got] = '\0';
    /* Start at a line when the tail was cut inside one. */
    p = buf;
    if (size > 300 && (p = strchr(buf, '\n')) != NULL)
        p++;
    else
        p = buf;
    for (; *p && o + 4 < n; p++) {
        if (*p == '\n') {
            memcpy(out + o, " | ", 3);
            o += 3;
        } else {
            out[o++] = isprint((unsigned char)*p) ? *p : '?';
        }
    }
    out[o] = '\0';
}

/* The "state" of a GET /v1/vm answer into info->vm_state ("" when absent or odd). */
static void vm_state_parse(const struct control_client_reply *r, struct vmproc_info *info)
{
    static const char *const states[] = {"running", "paused", "shutting-down", "stopped"};
    json_t *o = json_loadb(r->body, r->len, 0, NULL);
    const char *s = json_string_value(json_object_get(o, "state"));

    info->vm_state[0] = '\0';
    for (size_t i = 0; s && i < sizeof(states) / sizeof(states[0]); i++)
        if (!strcmp(s, states[i]))
            snprintf(info->vm_state, sizeof(info->vm_state), "%s", states[i]);
    json_decref(o);
}

/* GET /v1/vm: 0 with vm_state filled, or -errno with err. */
static int api_query(const char *dir, unsigned timeout_s, struct vmproc_info *info, char *err)
{
    char sock[RUN_PATH_LEN], cerr[CONTROL_CLIENT_ERR_LEN], msg[160];
    struct control_client_reply r;
    int ret;

    dir_path(sock, dir, "api.sock");
    ret = control_client_call(sock, "GET", "/v1/vm", NULL, timeout_s, &r, cerr);
    if (ret) {
        snprintf(err, VMPROC_ERR_LEN, "%s", cerr);
        return ret;
    }
    if (r.status != 200) {
        snprintf(err, VMPROC_ERR_LEN, "%s: GET /v1/vm: %s", sock,
                 control_client_error(&r, msg, sizeof(msg)));
        ret = -EIO;
    } else {
        vm_state_parse(&r, info);
    }
    control_client_reply_free(&r);
    return ret;
}

int vmproc_probe(const char *dir, struct vmproc_info *out, char *err)
{
    struct vmproc_rec rec;
    int ret;

    err[0] = '\0';
    ret = dir_check(dir, err);
    if (ret)
        return ret;
    ret = probe_files(dir, out, &rec, err);
    if (ret || out->state != VMPROC_RUNNING)
        return ret;
    api_query(dir, PROBE_CALL_S, out, err);
    return 0;
}

/* spec checks: absolute paths, DIR a real directory of bounded length, CONFIG in it and
 * naming DIR's sockets. */
static int spec_check(const struct vmproc_spec *s, char *err)
{
    char want[RUN_PATH_LEN], verr[VMCONFIG_ERR_LEN];
    const char *base, *bad = NULL;
    struct vmconfig c;
    struct stat st;
    size_t dlen;

    if (!s->id || !s->dir || !s->config || !s->tessera || !s->shim) {
        snprintf(err, VMPROC_ERR_LEN, "vmproc: spec is missing a path");
        return -EINVAL;
    }
    if (dir_check(s->dir, err))
        return -EINVAL;
    dlen = strlen(s->dir);
    if (lstat(s->dir, &st) || !S_ISDIR(st.st_mode)) {
        snprintf(err, VMPROC_ERR_LEN, "vm %s: %s: not a directory", s->id, s->dir);
        return -EINVAL;
    }
    base = s->config + dlen + 1;
    if (strncmp(s->config, s->dir, dlen) || s->config[dlen] != '/' || !*base || strchr(base, '/') ||
        !strcmp(base, "..") || !strcmp(base, ".")) {
        snprintf(err, VMPROC_ERR_LEN, "vm %s: config %.200s: expected a file directly in %s", s->id,
                 s->config, s->dir);
        return -EINVAL;
    }
    if (s->ncgroups > VMPROC_CGROUPS_MAX) {
        snprintf(err, VMPROC_ERR_LEN, "vm %s: %zu cgroups; at most %d", s->id, s->ncgroups,
                 VMPROC_CGROUPS_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < s->ncgroups; i++) {
        if (s->cgroups[i][0] != '/') {
            snprintf(err, VMPROC_ERR_LEN, "vm %s: cgroup %s: expected an absolute path", s->id,
                     s->cgroups[i]);
            return -EINVAL;
        }
    }
    if (s->tessera[0] != '/' || s->shim[0] != '/') {
        snprintf(err, VMPROC_ERR_LEN, "vm %s: %s: expected an absolute path", s->id,
                 s->tessera[0] != '/' ? s->tessera : s->shim);
        return -EINVAL;
    }
    if (vmconfig_load_file(s->config, &c, verr)) {
        snprintf(err, VMPROC_ERR_LEN, "vm %s: %.400s", s->id, verr);
        return -EINVAL;
    }
    dir_path(want, s->dir, "api.sock");
    if (!c.api_socket || strcmp(c.api_socket, want))
        bad = "api_socket";
    dir_path(want, s->dir, "console.sock");
    if (!bad && (!c.console_socket || strcmp(c.console_socket, want)))
        bad = "console.socket";
    dir_path(want, s->dir, "console.log");
    if (!bad && (!c.console_log || strcmp(c.console_log, want)))
        bad = "console.log";
    vmconfig_free(&c);
    if (bad) {
        snprintf(err, VMPROC_ERR_LEN,
                 "vm %s: %s: %s: expected %s/%s (vmproc runs the VM with its sockets and "
                 "console log in its directory)",
                 s->id, s->config, bad, s->dir,
                 !strcmp(bad, "api_socket")       ? "api.sock"
                 : !strcmp(bad, "console.socket") ? "console.sock"
                                                  : "console.log");
        return -EINVAL;
    }
    return 0;
}

/* Removes what an earlier run left that a new one must not be mistaken by. */
static int dir_clear_run(const char *dir, char *err)
{
    static const char *const names[] = {"pid", "pid.tmp", "exit", "exit.tmp"};
    char path[RUN_PATH_LEN], old[RUN_PATH_LEN];

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        dir_path(path, dir, names[i]);
        if (unlink(path) && errno != ENOENT) {
            snprintf(err, VMPROC_ERR_LEN, "%s: cannot remove: %s", path, strerror(errno));
            return -errno;
        }
    }
    dir_path(path, dir, "vmm.log");
    dir_path(old, dir, "vmm.log.1");
    if (rename(path, old) && errno != ENOENT) {
        snprintf(err, VMPROC_ERR_LEN, "%s: cannot rename to vmm.log.1: %s", path, strerror(errno));
        return -errno;
    }
    return 0;
}

/* posix_spawn()s the shim: own session, cwd DIR, stdin /dev/null, stdout and stderr to
 * DIR/vmm.log, every other fd closed, signals unblocked and at their defaults (the daemon
 * blocks SIGTERM in every thread; the mask would survive exec). */
static int shim_spawn(const struct vmproc_spec *s, pid_t *pid, char *err)
{
    char log[RUN_PATH_LEN];
    char *argv[3 + 2 * VMPROC_CGROUPS_MAX + 6];
    size_t i, n = 0;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, dflt;
    int ret;

    argv[n++] = (char *)s->shim;
    argv[n++] = VMPROC_SHIM_ARG;
    argv[n++] = (char *)s->dir;
    for (i = 0; i < s->ncgroups; i++) {
        argv[n++] = "--cgroup";
        argv[n++] = (char *)s->cgroups[i];
    }
    argv[n++] = "--";
    argv[n++] = (char *)s->tessera;
    argv[n++] = "run";
    argv[n++] = "--config";
    argv[n++] = (char *)s->config;
    argv[n] = NULL;
    dir_path(log, s->dir, "vmm.log");
    sigemptyset(&none);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGPIPE);
    sigaddset(&dflt, SIGTERM);
    sigaddset(&dflt, SIGINT);
    sigaddset(&dflt, SIGHUP);
    sigaddset(&dflt, SIGQUIT);
    sigaddset(&dflt, SIGCHLD);
    if ((ret = posix_spawnattr_init(&attr)))
        goto fail;
    if ((ret = posix_spawn_file_actions_init(&fa)))
        goto destroy_attr;
    if ((ret = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                                   POSIX_SPAWN_SETSIGDEF)) ||
        (ret = posix_spawnattr_setsigmask(&attr, &none)) ||
        (ret = posix_spawnattr_setsigdefault(&attr, &dflt)) ||
        (ret = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) ||
        (ret = posix_spawn_file_actions_addopen(
             &fa, 1, log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NOCTTY, 0600)) ||
        (ret = posix_spawn_file_actions_adddup2(&fa, 1, 2)) ||
        (ret = posix_spawn_file_actions_addchdir_np(&fa, s->dir)) ||
        (ret = posix_spawn_file_actions_addclosefrom_np(&fa, 3)))
        goto destroy_fa;
    ret = posix_spawn(pid, s->shim, &fa, &attr, argv, environ);
destroy_fa:
    posix_spawn_file_actions_destroy(&fa);
destroy_attr:
    posix_spawnattr_destroy(&attr);
fail:
    if (ret)
        snprintf(err, VMPROC_ERR_LEN, "vm %s: cannot start the shim %s: %s", s->id, s->shim,
                 strerror(ret));
    return -ret;
}

/* Reaps our shim child: at once when it has exited, else after up to ms milliseconds, then
 * with SIGKILL (it is unreaped, so the pid is still ours). */
static void shim_reap(pid_t shim, unsigned ms)
{
    int64_t deadline = now_ms() + ms;
    int st;

    while (waitpid(shim, &st, WNOHANG) == 0) {
        if (now_ms() > deadline) {
            kill(shim, SIGKILL);
            while (waitpid(shim, &st, 0) < 0 && errno == EINTR)
                ;
            return;
        }
        sleep_ms(STEP_MS);
    }
}

int vmproc_start(const struct vmproc_spec *spec, struct vmproc_info *out, char *err)
{
    char tail[320], perr[VMPROC_ERR_LEN];
    struct vmproc_info info;
    struct vmproc_rec rec;
    int64_t deadline;
    bool shim_done = false;
    pid_t shim;
    int ret, st;

    err[0] = '\0';
    ret = spec_check(spec, err);
    if (ret)
        return ret;
    ret = probe_files(spec->dir, &info, &rec, err);
    if (ret)
        return ret;
    if (info.state == VMPROC_RUNNING) {
        snprintf(err, VMPROC_ERR_LEN, "vm %s: already running (pid %d)", spec->id, (int)info.pid);
        return -EBUSY;
    }
    ret = dir_clear_run(spec->dir, err);
    if (ret)
        return ret;
    ret = shim_spawn(spec, &shim, err);
    if (ret)
        return ret;

    deadline = now_ms() + VMPROC_START_TIMEOUT_S * 1000;
    for (;;) {
        if (!shim_done && waitpid(shim, &st, WNOHANG) == shim)
            shim_done = true;
        ret = probe_files(spec->dir, &info, &rec, err);
        if (ret)
            goto kill_vmm;
        if (info.state == VMPROC_RUNNING && !api_query(spec->dir, 1, &info, perr)) {
            *out = info;
            return 0;
        }
        /* An exit counts once the shim recorded it (or is gone itself): between the shim's
         * fork and the VMM's exec, /proc shows a process that does not name DIR yet, which a
         * probe takes for one that exited. */
        if ((info.state == VMPROC_EXITED && (info.exit_known || shim_done)) ||
            (shim_done && info.state == VMPROC_GONE))
            break;
        if (now_ms() > deadline) {
            rec_kill_vmm(spec->dir, &rec);
            log_tail(spec->dir, tail, sizeof(tail));
            snprintf(err, VMPROC_ERR_LEN,
                     "vm %s: its API (%s/api.sock) did not answer within %d s; killed it: %s",
                     spec->id, spec->dir, VMPROC_START_TIMEOUT_S,
                     tail[0] ? tail : "vmm.log is empty");
            ret = -ETIMEDOUT;
            goto reap_shim;
        }
        sleep_ms(STEP_MS);
    }
    log_tail(spec->dir, tail, sizeof(tail));
    if (info.state == VMPROC_GONE)
        snprintf(err, VMPROC_ERR_LEN, "vm %s: the shim exited before starting the VMM: %s",
                 spec->id, tail[0] ? tail : "vmm.log is empty");
    else if (info.exit_known && info.exit_signal)
        snprintf(err, VMPROC_ERR_LEN,
                 "vm %s: the VMM was killed by signal %d before its API "
                 "answered: %s",
                 spec->id, info.exit_signal, tail[0] ? tail : "vmm.log is empty");
    else
        snprintf(err, VMPROC_ERR_LEN,
                 "vm %s: the VMM exited with status %d before its API "
                 "answered: %s",
                 spec->id, info.exit_status, tail[0] ? tail : "vmm.log is empty");
    ret = -ECHILD;
    goto reap_shim;
kill_vmm:
    rec_kill_vmm(spec->dir, &rec);
reap_shim:
    if (!shim_done)
        shim_reap(shim, 5000);
    return ret;
}

/* Waits until the VMM of DIR is no longer RUNNING, until deadline (now_ms()). 0, -ETIMEDOUT,
 * or a probe error. */
static int wait_exit(const char *dir, int64_t deadline, char *err)
{
    struct vmproc_info info;
    struct vmproc_rec rec;
    int ret;

    for (;;) {
        ret = probe_files(dir, &info, &rec, err);
        if (ret || info.state != VMPROC_RUNNING)
            return ret;
        if (now_ms() > deadline)
            return -ETIMEDOUT;
        sleep_ms(STEP_MS);
    }
}

static int http_errno(unsigned status)
{
    switch (status) {
    case 409: return -EBUSY;
    case 400: return -EINVAL;
    case 501: return -EOPNOTSUPP;
    default: return -EIO;
    }
}

int vmproc_action(const char *dir, const char *action, unsigned timeout_s, char *err)
{
    static const char *const actions[] = {"pause", "resume", "reset", "shutdown", "stop"};
    char sock[RUN_PATH_LEN], body[96], cerr[CONTROL_CLIENT_ERR_LEN], msg[200], why[300];
    struct control_client_reply r;
    struct vmproc_info info;
    struct vmproc_rec rec;
    bool ends, known = false;
    int64_t deadline;
    int ret;

    err[0] = '\0';
    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
        known |= !strcmp(action, actions[i]);
    if (!known) {
        snprintf(err, VMPROC_ERR_LEN,
                 "action '%.40s': expected pause, resume, reset, shutdown or stop", action);
        return -EINVAL;
    }
    ret = dir_check(dir, err);
    if (ret)
        return ret;
    ends = !strcmp(action, "stop") || !strcmp(action, "shutdown");
    if (timeout_s < 1)
        timeout_s = 1;
    if (timeout_s > 3600)
        timeout_s = 3600;
    ret = probe_files(dir, &info, &rec, err);
    if (ret)
        return ret;
    if (info.state != VMPROC_RUNNING) {
        snprintf(err, VMPROC_ERR_LEN, "%s: %s: the VM is not running", dir, action);
        return -ESRCH;
    }
    if (!strcmp(action, "shutdown"))
        snprintf(body, sizeof(body), "{\"action\": \"shutdown\", \"timeout_s\": %u}", timeout_s);
    else
        snprintf(body, sizeof(body), "{\"action\": \"%s\"}", action);
    deadline = now_ms() + (int64_t)timeout_s * 1000 + (!strcmp(action, "shutdown") ? 5000 : 0);

    dir_path(sock, dir, "api.sock");
    /* stop and shutdown are bounded by timeout_s as a whole, their request included. */
    ret = control_client_call(sock, "PUT", "/v1/vm/state", body,
                              ends && timeout_s < ACTION_CALL_S ? timeout_s : ACTION_CALL_S, &r,
                              cerr);
    if (!ret) {
        if (r.status >= 300) {
            ret = http_errno(r.status);
            snprintf(err, VMPROC_ERR_LEN, "%s: %s: %s", dir, action,
                     control_client_error(&r, msg, sizeof(msg)));
        }
        control_client_reply_free(&r);
        if (ret || !ends)
            return ret;
    } else if (!ends) {
        snprintf(err, VMPROC_ERR_LEN, "%s", cerr);
        return ret;
    } else if (strcmp(action, "stop") || ret != -ECONNRESET) {
        /* (A stopping VMM may close the connection instead of answering: docs/api.md.) With
         * nobody to ask, the VM ends now. */
        snprintf(why, sizeof(why), "its API did not answer (%s)", cerr);
        goto kill;
    }
    ret = wait_exit(dir, deadline, err);
    if (ret != -ETIMEDOUT)
        return ret;
    snprintf(why, sizeof(why), "it had not exited %u s after %s", timeout_s, action);
kill:
    rec_kill_vmm(dir, &rec);
    ret = wait_exit(dir, now_ms() + 5000, err);
    if (ret == -ETIMEDOUT) {
        snprintf(err, VMPROC_ERR_LEN, "%s: %s: %s, and it outlived SIGKILL (pid %d)", dir, action,
                 why, (int)rec.vmm_pid);
        return -ETIMEDOUT;
    }
    if (ret)
        return ret;
    snprintf(err, VMPROC_ERR_LEN, "%s: %s: %s; killed it with SIGKILL", dir, action, why);
    return 1;
}

int vmproc_get(const char *dir, char **json, char *err)
{
    return vmproc_call(dir, "GET", "/v1/vm/stats", NULL, json, err);
}

int vmproc_call(const char *dir, const char *method, const char *path, const char *body,
                char **json, char *err)
{
    char sock[RUN_PATH_LEN], cerr[CONTROL_CLIENT_ERR_LEN], msg[200];
    struct control_client_reply r;
    struct vmproc_info info;
    struct vmproc_rec rec;
    int ret;

    err[0] = '\0';
    ret = dir_check(dir, err);
    if (ret)
        return ret;
    ret = probe_files(dir, &info, &rec, err);
    if (ret)
        return ret;
    *json = NULL;
    if (info.state != VMPROC_RUNNING) {
        snprintf(err, VMPROC_ERR_LEN, "%s: %s %s: the VM is not running", dir, method, path);
        return -ESRCH;
    }
    dir_path(sock, dir, "api.sock");
    ret = control_client_call(sock, method, path, body, ACTION_CALL_S, &r, cerr);
    if (ret) {
        snprintf(err, VMPROC_ERR_LEN, "%s", cerr);
        return ret;
    }
    if (r.status / 100 != 2) {
        snprintf(err, VMPROC_ERR_LEN, "%s: %s %s: %s", sock, method, path,
                 control_client_error(&r, msg, sizeof(msg)));
        ret = http_errno(r.status);
        control_client_reply_free(&r);
        return ret;
    }
    if (r.status == 200) {
        *json = r.body;
        r.body = NULL;
    }
    control_client_reply_free(&r);
    return 0;
}

/* ---- the shim ---- */

/* Writes the calling process's pid into a cgroup.procs file. Called in the forked child: the
 * shim has one thread, so the child may call what it likes. */
static int cgroup_join(const char *procs)
{
    char num[24];
    int fd, len, ret = 0;

    len = snprintf(num, sizeof(num), "%d", (int)getpid());
    fd = open(procs, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, num, (size_t)len) != len)
        ret = -1;
    if (ret)
        fprintf(stderr, "tesserad shim: cannot join the cgroup %s: %s\n", procs, strerror(errno));
    if (fd >= 0)
        close(fd);
    return ret;
}

int vmproc_shim_main(int argc, char **argv)
{
    struct proc_stat self, vmm;
    char text[160];
    const char *dir;
    pid_t pid;
    int st, i, vmm_arg, ret = 0;

    for (i = 3; i + 1 < argc && !strcmp(argv[i], "--cgroup"); i += 2)
        ;
    vmm_arg = i + 1;
    if (argc < 6 || strcmp(argv[1], VMPROC_SHIM_ARG) || argv[2][0] != '/' || i >= argc ||
        strcmp(argv[i], "--") || vmm_arg >= argc) {
        fprintf(stderr, "tesserad shim: usage: %s %s DIR [--cgroup FILE]... -- VMM ARGS...\n",
                argv[0], VMPROC_SHIM_ARG);
        return 2;
    }
    dir = argv[2];
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "tesserad shim: cannot fork the VMM: %s\n", strerror(errno));
        snprintf(text, sizeof(text), "{\"status\": 127}\n");
        return file_write_atomic(dir, "exit", text) ? 1 : 0;
    }
    if (pid == 0) {
        /* Into the VM's control groups before the VMM runs a single instruction. */
        for (i = 3; i < vmm_arg - 1; i += 2) {
            if (cgroup_join(argv[i + 1]))
                _exit(127);
        }
        execv(argv[vmm_arg], argv + vmm_arg);
        fprintf(stderr, "tesserad shim: cannot execute %s: %s\n", argv[vmm_arg], strerror(errno));
        _exit(127);
    }
    /* The child is not reaped yet, so its /proc entry (and start time) is its own. */
    if (proc_stat_read(getpid(), &self) || proc_stat_read(pid, &vmm)) {
        fprintf(stderr, "tesserad shim: cannot read /proc: %s\n", strerror(errno));
        ret = -EIO;
    } else {
        snprintf(text, sizeof(text),
                 "{\"shim_pid\": %d, \"shim_start\": %lld, \"vmm_pid\": %d, \"vmm_start\": %lld}\n",
                 (int)getpid(), self.start, (int)pid, vmm.start);
        ret = file_write_atomic(dir, "pid", text);
        if (ret)
            fprintf(stderr, "tesserad shim: %s/pid: %s\n", dir, strerror(-ret));
    }
    /* A VMM nobody could find again must not run on. */
    if (ret)
        kill(pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "tesserad shim: waitpid: %s\n", strerror(errno));
            return 1;
        }
    }
    if (WIFSIGNALED(st))
        snprintf(text, sizeof(text), "{\"signal\": %d}\n", WTERMSIG(st));
    else
        snprintf(text, sizeof(text), "{\"status\": %d}\n", WEXITSTATUS(st));
    ret = file_write_atomic(dir, "exit", text);
    if (ret) {
        fprintf(stderr, "tesserad shim: %s/exit: %s\n", dir, strerror(-ret));
        return 1;
    }
    return 0;
}

/* ---- the supervisor ---- */

struct vmsup_entry {
    struct vmsup_entry *next;
    char *id, *dir;
    int shim_fd, vmm_fd; /* pidfds, -1 when none (adopted after the shim died, or no pidfd) */
    bool unwatched;      /* kept only to reap its shim, no callback */
};

struct vmsup {
    pthread_mutex_t lock; /* entries, stop */
    pthread_t thread;
    int wake_fd; /* eventfd: a watch, an unwatch or the end */
    bool stop;
    struct vmsup_entry *entries;
    vmsup_exit_fn *on_exit;
    void *arg;
};

static void entry_free(struct vmsup_entry *e)
{
    if (e->shim_fd >= 0)
        close(e->shim_fd);
    if (e->vmm_fd >= 0)
        close(e->vmm_fd);
    free(e->id);
    free(e->dir);
    free(e);
}

/* The shim's pidfd fired: it has exited. Reaps it when it is our child (waitid on the pidfd
 * takes exactly that process's status, never another child's; for an adopted shim it fails
 * with ECHILD, and its parent, init, reaps it). */
static void entry_reap_shim(struct vmsup_entry *e)
{
    siginfo_t si;

    memset(&si, 0, sizeof(si));
    if (waitid(P_PIDFD, (id_t)e->shim_fd, &si, WEXITED | WNOHANG) && errno != ECHILD)
        log_warn("vm %s: waitid on its shim: %s", e->id, strerror(errno));
    close(e->shim_fd);
    e->shim_fd = -1;
}

static void sup_wake(struct vmsup *sup)
{
    uint64_t one = 1;

    if (write(sup->wake_fd, &one, sizeof(one)) < 0)
        log_warn("vmsup: cannot wake the supervisor: %s", strerror(errno));
}

/* A pidfd of the recorded process, or -1 when it is not alive (or pidfds are not supported:
 * the supervisor's interval poll then notices the exit). Taken before the identity check, so
 * that it refers to the process that was checked. */
static int pidfd_of(pid_t pid, bool alive_check(const char *, const struct vmproc_rec *),
                    const char *dir, const struct vmproc_rec *rec)
{
    int fd = pidfd_open(pid, 0);

    if (fd >= 0 && !alive_check(dir, rec)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* The supervisor's wait: for a pidfd, a wake-up or the interval. Reaps a shim whose pidfd
 * fired and drops a fired VMM pidfd (the check that follows sees the VMM dead). The thread
 * alone frees entries and touches their pidfds once listed, so neither changes unlocked. */
static int sup_wait(struct vmsup *sup, struct pollfd **pfds, struct vmsup_entry ***owner,
                    size_t *cap)
{
    struct vmsup_entry *e;
    size_t n = 0, k = 1, i;
    uint64_t drained;

    pthread_mutex_lock(&sup->lock);
    for (e = sup->entries; e; e = e->next)
        n++;
    if (2 * n + 1 > *cap) {
        struct pollfd *np = realloc(*pfds, (2 * n + 1) * sizeof(**pfds));
        struct vmsup_entry **no;

        if (np)
            *pfds = np;
        no = np ? realloc(*owner, (2 * n + 1) * sizeof(**owner)) : NULL;
        if (!no) {
            pthread_mutex_unlock(&sup->lock);
            return -ENOMEM;
        }
        *owner = no;
        *cap = 2 * n + 1;
    }
    (*pfds)[0] = (struct pollfd){.fd = sup->wake_fd, .events = POLLIN};
    for (e = sup->entries; e; e = e->next) {
        if (e->shim_fd >= 0) {
            (*owner)[k] = e;
            (*pfds)[k++] = (struct pollfd){.fd = e->shim_fd, .events = POLLIN};
        }
        if (e->vmm_fd >= 0) {
            (*owner)[k] = e;
            (*pfds)[k++] = (struct pollfd){.fd = e->vmm_fd, .events = POLLIN};
        }
    }
    pthread_mutex_unlock(&sup->lock);

    if (poll(*pfds, k, SUP_INTERVAL_MS) < 0 && errno != EINTR)
        return -errno;
    if ((*pfds)[0].revents & POLLIN) {
        if (read(sup->wake_fd, &drained, sizeof(drained)) < 0 && errno != EAGAIN)
            log_warn("vmsup: reading its eventfd: %s", strerror(errno));
    }
    for (i = 1; i < k; i++) {
        if (!(*pfds)[i].revents)
            continue;
        e = (*owner)[i];
        if ((*pfds)[i].fd == e->shim_fd) {
            entry_reap_shim(e);
        } else if ((*pfds)[i].fd == e->vmm_fd) {
            close(e->vmm_fd);
            e->vmm_fd = -1;
        }
    }
    return 0;
}

/* One entry's check in sup_check(). */
struct vmsup_check {
    struct vmsup_entry *e;
    bool report;
    struct vmproc_info info;
};

/* Probes every watched VM (files and /proc only; unlocked, since a probe may wait for a shim),
 * reports each one that is no longer running, once (its entry stays, unwatched, until its
 * shim is reaped), and frees the entries that are done with. */
static int sup_check(struct vmsup *sup)
{
    struct vmsup_entry *e, **pe;
    struct vmsup_check *c;
    struct vmproc_rec rec;
    char err[VMPROC_ERR_LEN];
    size_t n = 0, i;

    pthread_mutex_lock(&sup->lock);
    for (e = sup->entries; e; e = e->next)
        n++;
    c = calloc(n ? n : 1, sizeof(*c));
    for (e = sup->entries, i = 0; c && e; e = e->next, i++) {
        c[i].e = e;
        c[i].report = !e->unwatched;
    }
    pthread_mutex_unlock(&sup->lock);
    if (!c)
        return -ENOMEM;
    for (i = 0; i < n; i++) {
        if (!c[i].report)
            continue;
        if (probe_files(c[i].e->dir, &c[i].info, &rec, err)) {
            log_warn("vm %s: %s; no longer watched", c[i].e->id, err);
            memset(&c[i].info, 0, sizeof(c[i].info));
            c[i].info.state = VMPROC_GONE;
        }
        c[i].report = c[i].info.state != VMPROC_RUNNING;
    }
    pthread_mutex_lock(&sup->lock);
    for (i = 0; i < n; i++) {
        if (c[i].report && !c[i].e->unwatched)
            c[i].e->unwatched = true;
        else
            c[i].report = false; /* unwatched meanwhile */
    }
    pthread_mutex_unlock(&sup->lock);
    for (i = 0; i < n; i++)
        if (c[i].report)
            sup->on_exit(sup->arg, c[i].e->id, &c[i].info);
    free(c);

    pthread_mutex_lock(&sup->lock);
    for (pe = &sup->entries; (e = *pe) != NULL;) {
        if (e->unwatched && e->shim_fd < 0) {
            *pe = e->next;
            entry_free(e);
        } else {
            pe = &e->next;
        }
    }
    pthread_mutex_unlock(&sup->lock);
    return 0;
}

static void *sup_thread(void *opaque)
{
    struct vmsup *sup = opaque;
    struct vmsup_entry **ents = NULL;
    struct pollfd *pfds = NULL;
    size_t cap = 0;
    bool stop;
    int ret;

    for (;;) {
        pthread_mutex_lock(&sup->lock);
        stop = sup->stop;
        pthread_mutex_unlock(&sup->lock);
        if (stop)
            break;
        ret = sup_wait(sup, &pfds, &ents, &cap);
        if (!ret)
            ret = sup_check(sup);
        if (ret) {
            log_warn("vmsup: %s; retrying", strerror(-ret));
            sleep_ms(SUP_INTERVAL_MS);
        }
    }
    free(pfds);
    free(ents);
    return NULL;
}

int vmsup_create(vmsup_exit_fn *on_exit, void *arg, struct vmsup **out)
{
    struct vmsup *sup = calloc(1, sizeof(*sup));
    int ret;

    if (!sup)
        return -ENOMEM;
    sup->on_exit = on_exit;
    sup->arg = arg;
    sup->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (sup->wake_fd < 0) {
        ret = -errno;
        goto free_sup;
    }
    ret = -pthread_mutex_init(&sup->lock, NULL);
    if (ret)
        goto close_wake;
    ret = -pthread_create(&sup->thread, NULL, sup_thread, sup);
    if (ret)
        goto destroy_lock;
    *out = sup;
    return 0;
destroy_lock:
    pthread_mutex_destroy(&sup->lock);
close_wake:
    close(sup->wake_fd);
free_sup:
    free(sup);
    return ret;
}

int vmsup_watch(struct vmsup *sup, const char *id, const char *dir, char *err)
{
    struct vmsup_entry *e, *it;
    struct vmproc_info info;
    struct vmproc_rec rec;
    int ret;

    err[0] = '\0';
    ret = dir_check(dir, err);
    if (ret)
        return ret;
    ret = probe_files(dir, &info, &rec, err);
    if (ret)
        return ret;
    if (info.state == VMPROC_GONE) {
        snprintf(err, VMPROC_ERR_LEN, "vm %s: %s has no record of a VM process", id, dir);
        return -ENOENT;
    }
    e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->shim_fd = e->vmm_fd = -1;
    e->id = strdup(id);
    e->dir = strdup(dir);
    if (!e->id || !e->dir) {
        entry_free(e);
        return -ENOMEM;
    }
    if (info.state == VMPROC_RUNNING) {
        e->shim_fd = pidfd_of(rec.shim_pid, rec_shim_alive, dir, &rec);
        e->vmm_fd = pidfd_of(rec.vmm_pid, rec_vmm_alive, dir, &rec);
    } else if (info.shim_pid) {
        /* Exited: its shim may still be ours to reap. */
        e->shim_fd = pidfd_of(rec.shim_pid, rec_shim_alive, dir, &rec);
    }
    pthread_mutex_lock(&sup->lock);
    for (it = sup->entries; it; it = it->next) {
        if (!it->unwatched && !strcmp(it->id, id)) {
            pthread_mutex_unlock(&sup->lock);
            snprintf(err, VMPROC_ERR_LEN, "vm %s: already watched", id);
            entry_free(e);
            return -EEXIST;
        }
    }
    e->next = sup->entries;
    sup->entries = e;
    pthread_mutex_unlock(&sup->lock);
    sup_wake(sup);
    return 0;
}

int vmsup_unwatch(struct vmsup *sup, const char *id)
{
    struct vmsup_entry *e;
    int ret = -ENOENT;

    pthread_mutex_lock(&sup->lock);
    for (e = sup->entries; e; e = e->next) {
        if (!e->unwatched && !strcmp(e->id, id)) {
            e->unwatched = true;
            ret = 0;
            break;
        }
    }
    pthread_mutex_unlock(&sup->lock);
    if (!ret)
        sup_wake(sup);
    return ret;
}

void vmsup_destroy(struct vmsup *sup)
{
    struct vmsup_entry *e;

    if (!sup)
        return;
    pthread_mutex_lock(&sup->lock);
    sup->stop = true;
    pthread_mutex_unlock(&sup->lock);
    sup_wake(sup);
    pthread_join(sup->thread, NULL);
    while ((e = sup->entries) != NULL) {
        sup->entries = e->next;
        entry_free(e);
    }
    pthread_mutex_destroy(&sup->lock);
    close(sup->wake_fd);
    free(sup);
}

bool vmproc_sched_wait_ns(int64_t pid, uint64_t *out)
{
    char path[64], file[96];
    unsigned long long run, wait;
    struct dirent *e;
    DIR *dd;

    *out = 0;
    snprintf(path, sizeof(path), "/proc/%" PRId64 "/task", pid);
    dd = opendir(path);
    if (!dd)
        return false;
    while ((e = readdir(dd))) {
        FILE *f;

        if (e->d_name[0] == '.')
            continue;
        snprintf(file, sizeof(file), "%s/%.20s/schedstat", path, e->d_name);
        f = fopen(file, "re");
        if (!f)
            continue;
        if (fscanf(f, "%llu %llu", &run, &wait) == 2)
            *out += wait;
        fclose(f);
    }
    closedir(dd);
    return true;
}
