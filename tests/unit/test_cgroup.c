/* The VMs' control groups (daemon/cgroup.h): what is written for cgroup v1 and v2 (the files
 * and values each kernel interface documents), the weights computed from shares and
 * reservations, cpuset lists, and, where this host has a writable cgroup v1 or v2 hierarchy
 * and we are root, a real group: made, limited, joined, measured and removed. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/cgroup.h"
#include "test.h"

static const struct cgroup_write *find(const struct cgroup_write *w, size_t n, const char *file)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(w[i].file, file))
            return &w[i];
    return NULL;
}

static struct cgroup_limits unset(void)
{
    struct cgroup_limits l = {
        .cpu_limit = -1, .memory_max = -1, .memory_low = -1, .memory_high = -1};

    return l;
}

static void test_writes(void)
{
    struct cgroup_write w[CGROUP_WRITES_MAX];
    struct cgroup_limits l = unset();
    size_t n;

    /* Nothing set, nothing written. */
    cgroup_writes(CGROUP_V2, &l, w, &n);
    CHECK(n == 0);

    l.cpu_weight = 0.5;
    l.cpu_limit = 0.5;
    l.memory_max = 512 << 20;
    l.memory_low = 128 << 20;
    snprintf(l.cpuset, sizeof(l.cpuset), "1");
    cgroup_writes(CGROUP_V2, &l, w, &n);
    CHECK(n == 5);
    CHECK(find(w, n, "cpu.weight") && !strcmp(find(w, n, "cpu.weight")->value, "5000"));
    CHECK(find(w, n, "cpu.max") && !strcmp(find(w, n, "cpu.max")->value, "50000 100000"));
    CHECK(find(w, n, "memory.max") && !strcmp(find(w, n, "memory.max")->value, "536870912"));
    CHECK(find(w, n, "memory.low") && !strcmp(find(w, n, "memory.low")->value, "134217728"));
    CHECK(find(w, n, "cpuset.cpus") && find(w, n, "cpuset.cpus")->ctrl == CG_CPUSET);
    l.memory_high = 480 << 20;
    cgroup_writes(CGROUP_V2, &l, w, &n);
    CHECK(find(w, n, "memory.high") && !strcmp(find(w, n, "memory.high")->value, "503316480"));
    cgroup_writes(CGROUP_V1, &l, w, &n);
    CHECK(!find(w, n, "memory.high"));
    l.memory_high = -1;

    cgroup_writes(CGROUP_V1, &l, w, &n);
    CHECK(find(w, n, "cpu.shares") && !strcmp(find(w, n, "cpu.shares")->value, "50000"));
    CHECK(find(w, n, "cpu.cfs_quota_us") &&
          !strcmp(find(w, n, "cpu.cfs_quota_us")->value, "50000"));
    /* The period goes first: a quota is checked against the period in force. */
    CHECK(find(w, n, "cpu.cfs_period_us") < find(w, n, "cpu.cfs_quota_us"));
    CHECK(find(w, n, "memory.limit_in_bytes") &&
          !strcmp(find(w, n, "memory.limit_in_bytes")->value, "536870912"));
    CHECK(find(w, n, "memory.soft_limit_in_bytes") &&
          find(w, n, "memory.soft_limit_in_bytes")->ctrl == CG_MEMORY);

    /* Unlimited is each interface's own word; weights stay within each range. */
    l = unset();
    l.cpu_limit = 0;
    l.memory_max = 0;
    l.cpu_weight = 1e-9;
    cgroup_writes(CGROUP_V2, &l, w, &n);
    CHECK(!strcmp(find(w, n, "cpu.max")->value, "max 100000"));
    CHECK(!strcmp(find(w, n, "memory.max")->value, "max"));
    CHECK(!strcmp(find(w, n, "cpu.weight")->value, "1"));
    cgroup_writes(CGROUP_V1, &l, w, &n);
    CHECK(!strcmp(find(w, n, "cpu.cfs_quota_us")->value, "-1"));
    CHECK(!strcmp(find(w, n, "memory.limit_in_bytes")->value, "-1"));
    CHECK(!strcmp(find(w, n, "cpu.shares")->value, "2"));
    l.cpu_weight = 5; /* above 1: the whole parent */
    l.cpu_limit = 0.0001;
    cgroup_writes(CGROUP_V1, &l, w, &n);
    CHECK(!strcmp(find(w, n, "cpu.shares")->value, "100000"));
    CHECK(!strcmp(find(w, n, "cpu.cfs_quota_us")->value, "1000")); /* the kernel's least */
    cgroup_writes(CGROUP_NONE, &l, w, &n);
    CHECK(n == 0);
}

static void test_weights(void)
{
    struct cgroup_share s[4];

    /* Shares alone: proportional. */
    memset(s, 0, sizeof(s));
    s[0].shares = 2000;
    s[1].shares = 1000;
    cgroup_weights(s, 2, 1);
    CHECK(fabs(s[0].weight - 2.0 / 3) < 1e-9 && fabs(s[1].weight - 1.0 / 3) < 1e-9);

    /* A reservation of half the capacity against three equal unreserved siblings: the
     * reservation first, shares split the rest. */
    memset(s, 0, sizeof(s));
    for (int i = 0; i < 4; i++)
        s[i].shares = 1000;
    s[0].reservation = 0.5;
    cgroup_weights(s, 4, 1);
    CHECK(fabs(s[0].weight - 0.625) < 1e-9);
    CHECK(fabs(s[1].weight - 0.125) < 1e-9);
    CHECK(fabs(s[0].weight + s[1].weight + s[2].weight + s[3].weight - 1) < 1e-9);
    /* On two cores the same reservation is a quarter. */
    cgroup_weights(s, 4, 2);
    CHECK(s[0].weight >= 0.25);

    /* Reservations above the capacity (a host that lost CPUs) share it by reservation. */
    memset(s, 0, sizeof(s));
    s[0].reservation = 2;
    s[1].reservation = 2;
    s[0].shares = s[1].shares = 1000;
    cgroup_weights(s, 2, 1);
    CHECK(fabs(s[0].weight - 0.5) < 1e-9 && fabs(s[1].weight - 0.5) < 1e-9);

    /* No shares, no reservation: still a weight the kernel takes. */
    memset(s, 0, sizeof(s));
    cgroup_weights(s, 1, 0);
    CHECK(s[0].weight > 0);
}

static void test_cpuset_count(void)
{
    CHECK(cgroup_cpuset_count("0") == 1);
    CHECK(cgroup_cpuset_count("0-3") == 4);
    CHECK(cgroup_cpuset_count("0-3,6,8-9") == 7);
    CHECK(cgroup_cpuset_count("0-3\n") == 4);
    CHECK(cgroup_cpuset_count("") == 0);
    CHECK(cgroup_cpuset_count("3-1") == 0);
    CHECK(cgroup_cpuset_count("a") == 0);
    CHECK(cgroup_cpuset_count("1,") == 0);
    CHECK(cgroup_cpuset_count("1;2") == 0);
    CHECK(cgroup_cpuset_count("0-99999") == 0);
    CHECK(cgroup_cpuset_count("-1") == 0);
}

static void test_rel(void)
{
    char rel[PATH_MAX];

    cgroup_rel_vm("acme", "web1", rel);
    CHECK(!strcmp(rel, "acme/web1"));
    cgroup_rel_vm("", "web1", rel);
    CHECK(!strcmp(rel, "_platform/web1"));
    cgroup_rel_tenant("", rel);
    CHECK(!strcmp(rel, "_platform"));
}

/* A group with a process in it stays; once the process is gone, "t/vm", "t" and PARENT go. */
static void kill_and_remove(const struct cgroup_host *h, pid_t pid)
{
    char err[CGROUP_ERR_LEN];
    int st;

    CHECK(cgroup_remove(h, "t/vm", err) == -EBUSY);
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    for (int i = 0; i < 50 && cgroup_remove(h, "t/vm", err) == -EBUSY; i++)
        usleep(20 * 1000);
    CHECK(cgroup_remove(h, "t/vm", err) == 0);
    CHECK(cgroup_remove(h, "t", err) == 0);
    CHECK(cgroup_remove(h, "", err) == 0);
}

/* A real group on this host: a child process joins it, burns CPU under a 20% limit, and the
 * group's usage shows both the time and the throttling. */
static void test_real(void)
{
    struct cgroup_host h;
    struct cgroup_limits l = unset();
    struct cgroup_usage u;
    char err[CGROUP_ERR_LEN], name[48];
    int go[2];
    pid_t pid;

    snprintf(name, sizeof(name), "tessera-unit-%d", (int)getpid());
    if (geteuid() != 0 || cgroup_host_open(&h, name, err) || h.mode == CGROUP_NONE) {
        printf("  cgroup: no writable cgroups here (%s): real group test skipped\n",
               geteuid() ? "not root" : h.why);
        return;
    }
    printf("  cgroup: real group test on cgroup %s\n", h.mode == CGROUP_V2 ? "v2" : "v1");
    CHECK(cgroup_make(&h, "t/vm", err) == 0);
    l.cpu_limit = 0.2;
    l.cpu_weight = 0.5;
    l.memory_max = 256 << 20;
    CHECK(cgroup_apply(&h, "t/vm", &l, err) == 0);
    CHECK(pipe(go) == 0);
    pid = fork();
    if (pid == 0) {
        volatile unsigned long x = 0;
        char c;
        char *mem;

        /* Memory touched once in the group is charged to it (v1 does not move charges). */
        if (read(go[0], &c, 1) != 1)
            _exit(1);
        mem = malloc(8 << 20);
        if (mem)
            memset(mem, 1, 8 << 20);
        for (;;)
            x++;
    }
    CHECK(pid > 0);
    CHECK(cgroup_attach(&h, "t/vm", pid, err) == 0);
    CHECK(write(go[1], "x", 1) == 1);
    close(go[0]);
    close(go[1]);
    usleep(600 * 1000);
    CHECK(cgroup_usage(&h, "t/vm", &u, err) == 0);
    CHECK(u.have_cpu && u.cpu_ns > 0);
    /* At most 0.2 of a core over 0.6 s, with slack for the period the child started in. */
    CHECK(u.cpu_ns < 300 * 1000 * 1000ull);
    CHECK(u.have_throttled && u.nr_throttled > 0);
    CHECK(u.have_memory && u.memory_bytes > 0);
    kill_and_remove(&h, pid);
    /* Attaching to a group that is gone names the file. */
    CHECK(cgroup_attach(&h, "t/vm", getpid(), err) < 0 && strstr(err, "cgroup.procs"));
}

/* The cgroup2 mount point, if any ("" if none). */
static void v2_mount(char out[PATH_MAX])
{
    char dev[256], mnt[PATH_MAX], type[64];
    FILE *f = fopen("/proc/mounts", "re");

    out[0] = '\0';
    if (!f)
        return;
    while (fscanf(f, "%255s %4095s %63s %*[^\n]", dev, mnt, type) == 3) {
        if (!strcmp(type, "cgroup2")) {
            snprintf(out, PATH_MAX, "%s", mnt);
            break;
        }
    }
    fclose(f);
}

/* The v2 code paths on a real unified hierarchy, with whatever controllers it offers (a
 * hybrid host's offers none): groups made level by level, a process joined, its CPU time read
 * from cpu.stat (a core file of v2), the groups removed. */
static void test_real_v2(void)
{
    struct cgroup_host h;
    struct cgroup_usage u;
    char mnt[PATH_MAX], dir[PATH_MAX + 64], err[CGROUP_ERR_LEN];
    const char *dirs[CG_NCTRL] = {dir};
    pid_t pid;

    v2_mount(mnt);
    if (geteuid() != 0 || !mnt[0]) {
        printf("  cgroup: no cgroup2 mount or not root: v2 group test skipped\n");
        return;
    }
    snprintf(dir, sizeof(dir), "%s/tessera-unit-v2-%d", mnt, (int)getpid());
    CHECK(cgroup_host_at(&h, CGROUP_V2, dirs, err) == 0);
    CHECK(cgroup_make(&h, "t/vm", err) == 0);
    pid = fork();
    if (pid == 0) {
        volatile unsigned long x = 0;

        for (;;)
            x++;
    }
    CHECK(pid > 0);
    CHECK(cgroup_attach(&h, "t/vm", pid, err) == 0);
    usleep(300 * 1000);
    CHECK(cgroup_usage(&h, "t/vm", &u, err) == 0);
    CHECK(u.have_cpu && u.cpu_ns > 0);
    kill_and_remove(&h, pid);
}

int main(void)
{
    test_writes();
    test_weights();
    test_cpuset_count();
    test_rel();
    test_real();
    test_real_v2();
    return test_finish("cgroup");
}
