/* The VMs' control groups, cgroup v1 or v2 (cgroup.h; docs/resources.md). */
#include "daemon/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const ctrl_names[CG_NCTRL] = {"cpu", "cpuacct", "cpuset", "memory"};

/* ---- Small file helpers: control files are short, written whole in one write() ---- */

static int file_write(const char *dir, const char *file, const char *value, char *err)
{
    char path[PATH_MAX + 40];
    size_t len = strlen(value);
    ssize_t n;
    int fd, ret = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        ret = -errno;
        snprintf(err, CGROUP_ERR_LEN, "%.300s: cannot open: %s", path, strerror(errno));
        return ret;
    }
    n = write(fd, value, len);
    if (n != (ssize_t)len) {
        ret = n < 0 ? -errno : -EIO;
        snprintf(err, CGROUP_ERR_LEN, "%.300s: cannot write '%.60s': %s", path, value,
                 strerror(-ret));
    }
    close(fd);
    return ret;
}

static int file_read(const char *dir, const char *file, char *buf, size_t size)
{
    char path[PATH_MAX + 40];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0)
        return -errno;
    buf[n] = '\0';
    return 0;
}

/* The number after "key " in a flat-keyed file (cpu.stat), or -ENOENT. */
static int keyed_u64(const char *text, const char *key, uint64_t *out)
{
    size_t klen = strlen(key);
    const char *p = text;

    while (p && *p) {
        if (!strncmp(p, key, klen) && p[klen] == ' ') {
            *out = strtoull(p + klen + 1, NULL, 10);
            return 0;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return -ENOENT;
}

static int mkdir_p(const char *path, char *err)
{
    char tmp[PATH_MAX];
    size_t i;

    snprintf(tmp, sizeof(tmp), "%s", path);
    for (i = 1; tmp[i]; i++) {
        if (tmp[i] != '/')
            continue;
        tmp[i] = '\0';
        if (mkdir(tmp, 0755) && errno != EEXIST)
            goto fail;
        tmp[i] = '/';
    }
    if (mkdir(tmp, 0755) && errno != EEXIST)
        goto fail;
    return 0;
fail:
    snprintf(err, CGROUP_ERR_LEN, "%.300s: cannot make the group: %s", tmp, strerror(errno));
    return -errno;
}

/* snprintf() for paths: a path that does not fit is cut, and then names no group of ours
 * (every path we make is far shorter than PATH_MAX). */
static void __attribute__((format(printf, 2, 3))) pathf(char out[PATH_MAX], const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out, PATH_MAX, fmt, ap);
    va_end(ap);
}

static void join(char out[PATH_MAX], const char *dir, const char *rel)
{
    pathf(out, "%s%s%s", dir, rel[0] ? "/" : "", rel);
}

/* ---- Finding the hierarchies ---- */

/* Reads mountinfo lines "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS ... - FSTYPE SOURCE SUPEROPTS":
 * the v2 mount point, and per v1 controller the mount point whose super options name it. */
static int mounts_find(char v2[PATH_MAX], char v1[CG_NCTRL][PATH_MAX])
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[1024], mnt[PATH_MAX], fstype[32], super[512];
    size_t c;

    v2[0] = '\0';
    for (c = 0; c < CG_NCTRL; c++)
        v1[c][0] = '\0';
    if (!f)
        return -errno;
    while (fgets(line, sizeof(line), f)) {
        const char *sep = strstr(line, " - ");

        if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
            sscanf(sep + 3, "%31s %*s %511s", fstype, super) != 2)
            continue;
        if (!strcmp(fstype, "cgroup2")) {
            if (!v2[0])
                pathf(v2, "%s", mnt);
            continue;
        }
        if (strcmp(fstype, "cgroup"))
            continue;
        for (c = 0; c < CG_NCTRL; c++) {
            /* The controller as a whole comma-separated option. */
            size_t len = strlen(ctrl_names[c]);
            const char *p = super;

            while ((p = strstr(p, ctrl_names[c]))) {
                if ((p == super || p[-1] == ',') && (p[len] == ',' || p[len] == '\0')) {
                    if (!v1[c][0])
                        pathf(v1[c], "%s", mnt);
                    break;
                }
                p += len;
            }
        }
    }
    fclose(f);
    return 0;
}

/* Whether a v2 mount offers the cpu and memory controllers (a hybrid host mounts v2 with
 * none: its controllers are in v1 hierarchies). */
static bool v2_usable(const char *mnt)
{
    char buf[256];

    if (file_read(mnt, "cgroup.controllers", buf, sizeof(buf)))
        return false;
    return strstr(buf, "cpu") && strstr(buf, "memory");
}

/* tesserad's own v2 group ("/" or "/system.slice/tesserad.service"). */
static int v2_self(char out[PATH_MAX])
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    char line[PATH_MAX + 8];
    int ret = -ENOENT;

    if (!f)
        return -errno;
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "0::", 3)) {
            line[strcspn(line, "\n")] = '\0';
            pathf(out, "%s", line + 3);
            ret = 0;
            break;
        }
    }
    fclose(f);
    return ret;
}

/* Hands every controller dir has down to its children ("+cpu +memory ..."). */
static int v2_delegate(const char *dir, char *err)
{
    char avail[256], *tok, *save = NULL;
    char one[40];
    int ret;

    if (file_read(dir, "cgroup.controllers", avail, sizeof(avail)))
        return 0;
    for (tok = strtok_r(avail, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
        if (strcmp(tok, "cpu") && strcmp(tok, "memory") && strcmp(tok, "cpuset"))
            continue;
        snprintf(one, sizeof(one), "+%s", tok);
        ret = file_write(dir, "cgroup.subtree_control", one, err);
        if (ret)
            return ret;
    }
    return 0;
}

/* Moves every process of group dir into dir/daemon (v2: a group that hands controllers
 * down must hold no process itself). */
static int v2_move_out(const char *dir, char *err)
{
    char procs[4096], leaf[PATH_MAX], *p, *end;
    int ret;

    if (file_read(dir, "cgroup.procs", procs, sizeof(procs)) || !procs[0])
        return 0;
    join(leaf, dir, "daemon");
    ret = mkdir_p(leaf, err);
    for (p = procs; !ret && *p; p = end) {
        long pid = strtol(p, &end, 10);
        char num[24];

        if (end == p)
            break;
        while (*end == '\n')
            end++;
        snprintf(num, sizeof(num), "%ld", pid);
        ret = file_write(leaf, "cgroup.procs", num, err);
        if (ret == -ESRCH) /* it exited meanwhile */
            ret = 0;
    }
    return ret;
}

int cgroup_host_at(struct cgroup_host *h, enum cgroup_mode mode, const char *const dirs[CG_NCTRL],
                   char *err)
{
    size_t c;
    int ret;

    memset(h, 0, sizeof(*h));
    h->mode = mode;
    for (c = 0; c < CG_NCTRL; c++) {
        const char *d = mode == CGROUP_V2 ? dirs[0] : dirs[c];

        if (d && d[0])
            pathf(h->dir[c], "%s", d);
    }
    ret = cgroup_make(h, "", err);
    if (ret)
        h->mode = CGROUP_NONE;
    return ret;
}

int cgroup_host_open(struct cgroup_host *h, const char *name, char *err)
{
    char v2[PATH_MAX], v1[CG_NCTRL][PATH_MAX], self[PATH_MAX], dirs[CG_NCTRL][PATH_MAX];
    const char *dp[CG_NCTRL];
    size_t c;
    int ret;

    memset(h, 0, sizeof(*h));
    if (!name || !name[0])
        name = "tessera";
    ret = mounts_find(v2, v1);
    if (ret) {
        snprintf(h->why, sizeof(h->why), "/proc/self/mountinfo: %s", strerror(-ret));
        return 0;
    }
    if (geteuid() != 0) {
        snprintf(h->why, sizeof(h->why), "tesserad does not run as root");
        return 0;
    }
    if (v2[0] && v2_usable(v2)) {
        if (v2_self(self))
            snprintf(self, sizeof(self), "/");
        if (!strcmp(self, "/")) {
            pathf(dirs[0], "%s/%s", v2, name);
            ret = v2_delegate(v2, err);
        } else {
            char own[PATH_MAX];

            join(own, v2, self + 1);
            pathf(dirs[0], "%s/vms", own);
            ret = v2_move_out(own, err);
            if (!ret)
                ret = v2_delegate(own, err);
        }
        if (ret)
            return ret;
        dp[0] = dirs[0];
        for (c = 1; c < CG_NCTRL; c++)
            dp[c] = NULL;
        return cgroup_host_at(h, CGROUP_V2, dp, err);
    }
    if (!v1[CG_CPU][0] && !v1[CG_MEMORY][0]) {
        snprintf(h->why, sizeof(h->why), "no cgroup v2 with cpu and memory, no v1 cpu or memory");
        return 0;
    }
    for (c = 0; c < CG_NCTRL; c++) {
        dirs[c][0] = '\0';
        if (v1[c][0])
            pathf(dirs[c], "%s/%s", v1[c], name);
        dp[c] = dirs[c];
    }
    return cgroup_host_at(h, CGROUP_V1, dp, err);
}

/* ---- Groups ---- */

void cgroup_rel_tenant(const char *tenant, char out[PATH_MAX])
{
    pathf(out, "%s", tenant[0] ? tenant : "_platform");
}

void cgroup_rel_vm(const char *tenant, const char *vm, char out[PATH_MAX])
{
    pathf(out, "%s/%s", tenant[0] ? tenant : "_platform", vm);
}

/* v1 cpuset: a new group has no CPUs and no memory nodes (nothing could join it) until they
 * are set: take the parent's. */
static int cpuset_inherit(const char *dir, char *err)
{
    char parent[PATH_MAX], val[CGROUP_CPUSET_LEN];
    const char *files[] = {"cpuset.cpus", "cpuset.mems"};
    size_t i;
    int ret;

    snprintf(parent, sizeof(parent), "%s", dir);
    *strrchr(parent, '/') = '\0';
    for (i = 0; i < 2; i++) {
        if (file_read(dir, files[i], val, sizeof(val)))
            continue;
        if (val[0] && val[0] != '\n')
            continue;
        if (file_read(parent, files[i], val, sizeof(val)))
            continue;
        val[strcspn(val, "\n")] = '\0';
        ret = file_write(dir, files[i], val, err);
        if (ret)
            return ret;
    }
    return 0;
}

/* One level of a group: made; v1 cpuset filled in; v2 handing its controllers down when it
 * will have children. */
static int make_level(const struct cgroup_host *h, enum cgroup_ctrl c, const char *path,
                      bool has_children, char *err)
{
    int ret = mkdir_p(path, err);

    if (!ret && h->mode == CGROUP_V1 && c == CG_CPUSET)
        ret = cpuset_inherit(path, err);
    if (!ret && h->mode == CGROUP_V2 && has_children)
        ret = v2_delegate(path, err);
    return ret;
}

int cgroup_make(const struct cgroup_host *h, const char *rel, char *err)
{
    char part[PATH_MAX], path[PATH_MAX];
    size_t c, i, n = strlen(rel);
    int ret;

    for (c = 0; c < CG_NCTRL; c++) {
        if (!h->dir[c][0] || (h->mode == CGROUP_V2 && c))
            continue;
        ret = make_level(h, c, h->dir[c], true, err);
        snprintf(part, sizeof(part), "%s", rel);
        for (i = 0; !ret && i < n; i++) {
            if (part[i] != '/')
                continue;
            part[i] = '\0';
            join(path, h->dir[c], part);
            ret = make_level(h, c, path, true, err);
            part[i] = '/';
        }
        if (!ret && n) {
            join(path, h->dir[c], part);
            ret = make_level(h, c, path, false, err);
        }
        if (ret)
            return ret;
    }
    return 0;
}

int cgroup_remove(const struct cgroup_host *h, const char *rel, char *err)
{
    char path[PATH_MAX];
    size_t c;
    int ret = 0;

    for (c = 0; c < CG_NCTRL; c++) {
        if (!h->dir[c][0] || (h->mode == CGROUP_V2 && c))
            continue;
        join(path, h->dir[c], rel);
        if (rmdir(path) && errno != ENOENT && !ret) {
            ret = -errno;
            snprintf(err, CGROUP_ERR_LEN, "%.300s: cannot remove: %s", path, strerror(errno));
        }
    }
    return ret;
}

/* ---- Limits ---- */

static void __attribute__((format(printf, 5, 6)))
add(struct cgroup_write *out, size_t *n, enum cgroup_ctrl c, const char *file, const char *fmt, ...)
{
    va_list ap;

    out[*n].ctrl = c;
    snprintf(out[*n].file, sizeof(out[*n].file), "%s", file);
    va_start(ap, fmt);
    vsnprintf(out[*n].value, sizeof(out[*n].value), fmt, ap);
    va_end(ap);
    (*n)++;
}

#define CPU_PERIOD_US 100000 /* the kernel's default CFS period: 100 ms */

void cgroup_writes(enum cgroup_mode mode, const struct cgroup_limits *l,
                   struct cgroup_write out[CGROUP_WRITES_MAX], size_t *n)
{
    *n = 0;
    if (mode == CGROUP_NONE)
        return;
    if (l->cpu_weight > 0) {
        double w = l->cpu_weight > 1 ? 1 : l->cpu_weight;

        /* v2 cpu.weight is 1..10000 (default 100); v1 cpu.shares 2..262144 (default 1024). */
        if (mode == CGROUP_V2)
            add(out, n, CG_CPU, "cpu.weight", "%u", (unsigned)fmax(1, lround(w * 10000)));
        else
            add(out, n, CG_CPU, "cpu.shares", "%u", (unsigned)fmax(2, lround(w * 100000)));
    }
    if (l->cpu_limit >= 0) {
        long long quota = l->cpu_limit > 0 ? llround(l->cpu_limit * CPU_PERIOD_US) : -1;

        /* The kernel's smallest quota is 1 ms. */
        if (quota >= 0 && quota < 1000)
            quota = 1000;
        if (mode == CGROUP_V2) {
            if (quota < 0)
                add(out, n, CG_CPU, "cpu.max", "max %d", CPU_PERIOD_US);
            else
                add(out, n, CG_CPU, "cpu.max", "%lld %d", quota, CPU_PERIOD_US);
        } else {
            add(out, n, CG_CPU, "cpu.cfs_period_us", "%d", CPU_PERIOD_US);
            add(out, n, CG_CPU, "cpu.cfs_quota_us", "%lld", quota);
        }
    }
    if (l->cpuset[0])
        add(out, n, CG_CPUSET, "cpuset.cpus", "%s", l->cpuset);
    if (l->memory_max >= 0) {
        if (mode == CGROUP_V2) {
            if (l->memory_max)
                add(out, n, CG_MEMORY, "memory.max", "%" PRId64, l->memory_max);
            else
                add(out, n, CG_MEMORY, "memory.max", "max");
        } else {
            add(out, n, CG_MEMORY, "memory.limit_in_bytes", "%" PRId64,
                l->memory_max ? l->memory_max : (int64_t)-1);
        }
    }
    /* v2's high mark throttles the group's allocations (reclaim, then sleep) instead of
     * killing: time for the balloon policy to take memory back. v1 has nothing like it. */
    if (l->memory_high >= 0 && mode == CGROUP_V2) {
        if (l->memory_high)
            add(out, n, CG_MEMORY, "memory.high", "%" PRId64, l->memory_high);
        else
            add(out, n, CG_MEMORY, "memory.high", "max");
    }
    if (l->memory_low >= 0) {
        /* v1 has no protection as such: its soft limit is where reclaim under pressure stops
         * taking from the group first, the nearest thing. */
        if (mode == CGROUP_V2)
            add(out, n, CG_MEMORY, "memory.low", "%" PRId64, l->memory_low);
        else
            add(out, n, CG_MEMORY, "memory.soft_limit_in_bytes", "%" PRId64,
                l->memory_low ? l->memory_low : (int64_t)-1);
    }
}

static const char *ctrl_dir(const struct cgroup_host *h, enum cgroup_ctrl c)
{
    return h->mode == CGROUP_V2 ? h->dir[0] : h->dir[c];
}

int cgroup_apply(const struct cgroup_host *h, const char *rel, const struct cgroup_limits *l,
                 char *err)
{
    struct cgroup_write w[CGROUP_WRITES_MAX];
    char path[PATH_MAX];
    size_t i, n;
    int ret;

    cgroup_writes(h->mode, l, w, &n);
    for (i = 0; i < n; i++) {
        const char *dir = ctrl_dir(h, w[i].ctrl);

        if (!dir[0]) {
            snprintf(err, CGROUP_ERR_LEN, "%s: the %s controller is not mounted on this host",
                     w[i].file, ctrl_names[w[i].ctrl]);
            return -EOPNOTSUPP;
        }
        join(path, dir, rel);
        ret = file_write(path, w[i].file, w[i].value, err);
        if (ret)
            return ret;
    }
    return 0;
}

int cgroup_procs_files(const struct cgroup_host *h, const char *rel,
                       char out[CGROUP_PROCS_MAX][PATH_MAX], size_t *n)
{
    char dir[PATH_MAX];
    size_t c;

    *n = 0;
    for (c = 0; c < CG_NCTRL && *n < CGROUP_PROCS_MAX; c++) {
        if (!h->dir[c][0] || (h->mode == CGROUP_V2 && c))
            continue;
        join(dir, h->dir[c], rel);
        if (strlen(dir) + sizeof("/cgroup.procs") > PATH_MAX)
            return -ENAMETOOLONG;
        pathf(out[*n], "%s/cgroup.procs", dir);
        (*n)++;
    }
    return 0;
}

int cgroup_attach(const struct cgroup_host *h, const char *rel, pid_t pid, char *err)
{
    char files[CGROUP_PROCS_MAX][PATH_MAX], num[24];
    size_t i, n;
    int ret = cgroup_procs_files(h, rel, files, &n);

    snprintf(num, sizeof(num), "%d", (int)pid);
    for (i = 0; !ret && i < n; i++) {
        *strrchr(files[i], '/') = '\0';
        ret = file_write(files[i], "cgroup.procs", num, err);
    }
    return ret;
}

int cgroup_usage(const struct cgroup_host *h, const char *rel, struct cgroup_usage *u, char *err)
{
    char path[PATH_MAX], buf[1024];
    uint64_t v;

    (void)err;
    memset(u, 0, sizeof(*u));
    if (h->mode == CGROUP_NONE)
        return 0;
    if (ctrl_dir(h, CG_CPU)[0]) {
        join(path, ctrl_dir(h, CG_CPU), rel);
        if (!file_read(path, "cpu.stat", buf, sizeof(buf))) {
            if (h->mode == CGROUP_V2) {
                if (!keyed_u64(buf, "usage_usec", &v)) {
                    u->cpu_ns = v * 1000;
                    u->have_cpu = true;
                }
                if (!keyed_u64(buf, "throttled_usec", &v)) {
                    u->throttled_ns = v * 1000;
                    u->have_throttled = true;
                }
            } else if (!keyed_u64(buf, "throttled_time", &v)) {
                u->throttled_ns = v;
                u->have_throttled = true;
            }
            keyed_u64(buf, "nr_throttled", &u->nr_throttled);
        }
    }
    if (h->mode == CGROUP_V1 && ctrl_dir(h, CG_CPUACCT)[0]) {
        join(path, ctrl_dir(h, CG_CPUACCT), rel);
        if (!file_read(path, "cpuacct.usage", buf, sizeof(buf))) {
            u->cpu_ns = strtoull(buf, NULL, 10);
            u->have_cpu = true;
        }
    }
    if (ctrl_dir(h, CG_MEMORY)[0]) {
        join(path, ctrl_dir(h, CG_MEMORY), rel);
        if (!file_read(path, h->mode == CGROUP_V2 ? "memory.current" : "memory.usage_in_bytes", buf,
                       sizeof(buf))) {
            u->memory_bytes = strtoull(buf, NULL, 10);
            u->have_memory = true;
        }
    }
    return 0;
}

unsigned cgroup_cpuset_count(const char *list)
{
    unsigned count = 0;
    const char *p = list;

    if (!p[0])
        return 0;
    for (;;) {
        char *end;
        unsigned long a = strtoul(p, &end, 10), b = a;

        if (end == p || a > 4095)
            return 0;
        p = end;
        if (*p == '-') {
            p++;
            b = strtoul(p, &end, 10);
            if (end == p || b < a || b > 4095)
                return 0;
            p = end;
        }
        count += (unsigned)(b - a + 1);
        if (*p == '\0' || *p == '\n')
            return count;
        if (*p != ',')
            return 0;
        p++;
    }
}

/* ---- Weights ---- */

void cgroup_weights(struct cgroup_share *s, size_t n, double capacity)
{
    double rsum = 0, ssum = 0, left;
    size_t i;

    for (i = 0; i < n; i++) {
        rsum += s[i].reservation > 0 ? s[i].reservation : 0;
        ssum += s[i].shares > 0 ? s[i].shares : 0;
    }
    if (capacity <= 0)
        capacity = 1;
    /* Admission keeps sum(r) <= capacity; should it not hold (the host lost CPUs), the
     * reservations share what there is in their own proportion. */
    if (rsum > capacity)
        capacity = rsum;
    left = 1 - rsum / capacity;
    for (i = 0; i < n; i++) {
        double r = s[i].reservation > 0 ? s[i].reservation : 0;
        double sh = s[i].shares > 0 ? s[i].shares : 0;

        s[i].weight = r / capacity + (ssum > 0 ? left * sh / ssum : 0);
        if (s[i].weight <= 0)
            s[i].weight = 1e-4;
    }
}
