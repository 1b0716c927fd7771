/* vmproc against the real VMM: build/tessera booting the default guest (guest/build.sh links
 * build/guest/), each VM under its shim, which is this program re-run with __shim (as tesserad
 * re-runs itself). A start, its control actions, an exit seen by the supervisor, a daemon
 * killed with SIGKILL and its VM found again from the files, an exit while nobody watched, and
 * hostile record files. Every wait is bounded so that a broken build fails instead of hanging. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/vmproc.h"
#include "test.h"

#define DIR_LEN 64 /* a VM's run directory under base */

static char base[] = "/tmp/tessera-vmproc-XXXXXX";
static char tessera[PATH_MAX], self[PATH_MAX];

/* What the supervisor reported. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned calls;
    char id[32];
    struct vmproc_info info;
} seen = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, "", {0}};

static void on_exit_cb(void *arg, const char *id, const struct vmproc_info *info)
{
    pthread_mutex_lock(&seen.lock);
    seen.calls++;
    snprintf(seen.id, sizeof(seen.id), "%s", id);
    seen.info = *info;
    pthread_cond_broadcast(&seen.cond);
    pthread_mutex_unlock(&seen.lock);
}

/* Waits (30 s at most) until the supervisor has reported `calls` exits. */
static bool seen_wait(unsigned calls)
{
    struct timespec until;
    bool ok;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    pthread_mutex_lock(&seen.lock);
    while (seen.calls < calls &&
           pthread_cond_timedwait(&seen.cond, &seen.lock, &until) != ETIMEDOUT)
        ;
    ok = seen.calls >= calls;
    pthread_mutex_unlock(&seen.lock);
    return ok;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* A fresh run directory base/name with vm.json: the default guest, its sockets and console log
 * in the directory as vmproc requires, and `extra` keys (",\"cpus\": 2" or ""). */
static void vm_dir(const char *name, const char *extra, char *dir, char *config)
{
    char text[1024];

    snprintf(dir, DIR_LEN, "%s/%s", base, name);
    snprintf(config, PATH_MAX, "%s/vm.json", dir);
    mkdir(dir, 0700);
    snprintf(text, sizeof(text),
             "{\"version\": 1, \"memory\": \"128M\", \"api_socket\": \"%s/api.sock\", "
             "\"console\": {\"mode\": \"socket\", \"socket\": \"%s/console.sock\", "
             "\"log\": \"%s/console.log\"}%s}\n",
             dir, dir, dir, extra);
    write_file(dir, "vm.json", text);
}

static struct vmproc_spec spec_of(const char *id, const char *dir, const char *config)
{
    return (struct vmproc_spec){
        .id = id, .dir = dir, .config = config, .tessera = tessera, .shim = self};
}

static bool exists(const char *dir, const char *name)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* Refusals before any process: the sockets vmproc needs, relative paths. */
static void test_spec_refused(void)
{
    char dir[DIR_LEN], config[PATH_MAX], err[VMPROC_ERR_LEN];
    struct vmproc_spec s;
    struct vmproc_info info;

    vm_dir("badspec", "", dir, config);
    write_file(dir, "vm.json", "{\"version\": 1}");
    s = spec_of("badspec", dir, config);
    CHECK(vmproc_start(&s, &info, err) == -EINVAL && strstr(err, "api_socket") &&
          strstr(err, "/api.sock"));
    vm_dir("badspec", "", dir, config);
    s.tessera = "build/tessera";
    CHECK(vmproc_start(&s, &info, err) == -EINVAL && strstr(err, "absolute"));
    s = spec_of("badspec", dir, "/etc/passwd");
    CHECK(vmproc_start(&s, &info, err) == -EINVAL && strstr(err, "directly in"));
    CHECK(!exists(dir, "vmm.log") && !exists(dir, "pid"));
}

/* A VMM that exits at once: the error quotes its own message from vmm.log. */
static void test_start_fails(void)
{
    char dir[DIR_LEN], config[PATH_MAX], err[VMPROC_ERR_LEN];
    struct vmproc_spec s;
    struct vmproc_info info;

    vm_dir("nodisk", ", \"disks\": [{\"path\": \"/nonexistent/root.img\", \"format\": \"raw\"}]",
           dir, config);
    s = spec_of("nodisk", dir, config);
    CHECK(vmproc_start(&s, &info, err) == -ECHILD);
    CHECK(strstr(err, "exited with status") && strstr(err, "/nonexistent/root.img"));
    CHECK(vmproc_probe(dir, &info, err) == 0 && info.state == VMPROC_EXITED && info.exit_known &&
          info.exit_status != 0);
}

/* Start, actions, stats, a second start refused, and an exit the supervisor reports. */
static void test_lifecycle(struct vmsup *sup)
{
    char dir[DIR_LEN], config[PATH_MAX], err[VMPROC_ERR_LEN], agent[PATH_MAX], *stats = NULL;
    struct vmproc_spec s;
    struct vmproc_info info, again;
    int ret;

    /* shutdown goes through the guest agent, so this VM has its channel. */
    snprintf(agent, sizeof(agent), ", \"agent_socket\": \"%s/life/agent.sock\"", base);
    vm_dir("life", agent, dir, config);
    s = spec_of("life", dir, config);
    if (vmproc_start(&s, &info, err)) {
        fprintf(stderr, "start: %s\n", err);
        CHECK(!"vmproc_start");
        return;
    }
    CHECK(info.state == VMPROC_RUNNING && info.pid > 0 && info.shim_pid > 0 &&
          !strcmp(info.vm_state, "running"));
    CHECK(vmsup_watch(sup, "life", dir, err) == 0);
    CHECK(vmsup_watch(sup, "life", dir, err) == -EEXIST);
    CHECK(vmproc_start(&s, &again, err) == -EBUSY && strstr(err, "already running"));

    CHECK(vmproc_probe(dir, &again, err) == 0 && again.state == VMPROC_RUNNING &&
          again.pid == info.pid && !strcmp(again.vm_state, "running"));
    CHECK(vmproc_action(dir, "pause", 10, err) == 0);
    CHECK(vmproc_probe(dir, &again, err) == 0 && !strcmp(again.vm_state, "paused"));
    CHECK(vmproc_action(dir, "pause", 10, err) == -EBUSY && strstr(err, "paused"));
    CHECK(vmproc_action(dir, "resume", 10, err) == 0);
    CHECK(vmproc_probe(dir, &again, err) == 0 && !strcmp(again.vm_state, "running"));
    CHECK(vmproc_action(dir, "reset", 10, err) == 0);
    CHECK(vmproc_action(dir, "launch", 10, err) == -EINVAL && strstr(err, "launch"));
    CHECK(vmproc_get(dir, &stats, err) == 0 && stats && stats[0] == '{');
    free(stats);

    /* The guest is asked to power off; the VMM ends it after 5 s if it does not. */
    ret = vmproc_action(dir, "shutdown", 5, err);
    if (ret)
        fprintf(stderr, "shutdown: %d %s\n", ret, err);
    CHECK(ret == 0);
    CHECK(vmproc_probe(dir, &again, err) == 0 && again.state == VMPROC_EXITED && again.exit_known &&
          again.exit_signal == 0 && again.exit_status == 0);
    CHECK(vmproc_action(dir, "stop", 5, err) == -ESRCH);
    CHECK(seen_wait(1) && !strcmp(seen.id, "life") && seen.info.state == VMPROC_EXITED &&
          seen.info.exit_known && seen.info.exit_status == 0);
    /* Reported once; the entry is gone, and the shim (our child) reaped. */
    CHECK(vmsup_unwatch(sup, "life") == -ENOENT);
    for (int i = 0; i < 250 && kill(info.shim_pid, 0) == 0; i++)
        usleep(20000);
    CHECK(kill(info.shim_pid, 0) < 0 && errno == ESRCH);
}

/* A VMM that no longer answers (stopped with SIGSTOP): stop kills it after its timeout and
 * says so. */
static void test_stop_hung(struct vmsup *sup)
{
    char dir[DIR_LEN], config[PATH_MAX], err[VMPROC_ERR_LEN];
    struct vmproc_spec s;
    struct vmproc_info info;
    unsigned calls;

    vm_dir("hung", "", dir, config);
    s = spec_of("hung", dir, config);
    CHECK(vmproc_start(&s, &info, err) == 0);
    if (info.state != VMPROC_RUNNING)
        return;
    pthread_mutex_lock(&seen.lock);
    calls = seen.calls;
    pthread_mutex_unlock(&seen.lock);
    CHECK(vmsup_watch(sup, "hung", dir, err) == 0);
    kill(info.pid, SIGSTOP);
    CHECK(vmproc_action(dir, "stop", 1, err) == 1 && strstr(err, "SIGKILL"));
    CHECK(vmproc_probe(dir, &info, err) == 0 && info.state == VMPROC_EXITED &&
          info.exit_signal == SIGKILL);
    CHECK(seen_wait(calls + 1) && !strcmp(seen.id, "hung") && seen.info.exit_signal == SIGKILL);
}

/* A "daemon" (a child process) starts a VM and is killed with SIGKILL: the VM runs on under
 * its shim, and a new daemon (this process, knowing nothing but DIR) finds and controls it. */
static pid_t daemon_start_then_die(const char *id, const char *dir, const char *config)
{
    struct vmproc_spec s = spec_of(id, dir, config);
    struct vmproc_info info;
    char err[VMPROC_ERR_LEN], c = 0;
    int fds[2], st;
    pid_t child;

    if (pipe(fds))
        return -1;
    child = fork();
    if (child == 0) {
        close(fds[0]);
        if (vmproc_start(&s, &info, err))
            fprintf(stderr, "daemon: %s\n", err);
        else
            c = 1;
        if (write(fds[1], &c, 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    close(fds[1]);
    if (child < 0 || read(fds[0], &c, 1) != 1)
        c = 0;
    close(fds[0]);
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, &st, 0);
    }
    return c ? 0 : -1;
}

static void test_adoption(void)
{
    char dir[DIR_LEN], config[PATH_MAX], err[VMPROC_ERR_LEN];
    struct vmproc_info info;

    vm_dir("adopt", "", dir, config);
    CHECK(daemon_start_then_die("adopt", dir, config) == 0);
    CHECK(vmproc_probe(dir, &info, err) == 0 && info.state == VMPROC_RUNNING &&
          !strcmp(info.vm_state, "running"));
    /* Its shim is no child of ours now: its parent died. */
    CHECK(info.shim_pid > 0 && waitpid(info.shim_pid, NULL, WNOHANG) < 0 && errno == ECHILD);
    CHECK(vmproc_action(dir, "stop", 10, err) == 0);
    CHECK(vmproc_probe(dir, &info, err) == 0 && info.state == VMPROC_EXITED && info.exit_known &&
          info.exit_signal == 0);
}

/* The VMM dies while no daemon runs: DIR/exit says how, for the next daemon and its
 * supervisor, which reports a VM that had already exited at once. */
static void test_exit_unwatched(struct vmsup *sup)
{
    char dir[DIR_LEN], config[PATH_MAX], err[VMPROC_ERR_LEN];
    struct vmproc_info info;
    unsigned calls;

    vm_dir("orphan", "", dir, config);
    CHECK(daemon_start_then_die("orphan", dir, config) == 0);
    CHECK(vmproc_probe(dir, &info, err) == 0 && info.state == VMPROC_RUNNING);
    if (info.state != VMPROC_RUNNING)
        return;
    kill(info.pid, SIGKILL);
    for (int i = 0; i < 500 && !exists(dir, "exit"); i++)
        usleep(20000);
    CHECK(vmproc_probe(dir, &info, err) == 0 && info.state == VMPROC_EXITED && info.exit_known &&
          info.exit_signal == SIGKILL);
    pthread_mutex_lock(&seen.lock);
    calls = seen.calls;
    pthread_mutex_unlock(&seen.lock);
    CHECK(vmsup_watch(sup, "orphan", dir, err) == 0);
    CHECK(seen_wait(calls + 1) && !strcmp(seen.id, "orphan") && seen.info.exit_signal == SIGKILL);
}

/* Record files that lie are refused naming the file, and never lead to a signal. */
static void test_hostile_files(void)
{
    static const char *const bad_pid[] = {
        "garbage",
        "[1, 2]",
        "{\"shim_pid\": 1, \"shim_start\": 1, \"vmm_pid\": 1, \"vmm_start\": 1}",
        "{\"shim_pid\": 5, \"shim_start\": 1, \"vmm_pid\": -1, \"vmm_start\": 1}",
        "{\"shim_pid\": 5, \"shim_start\": 1, \"vmm_pid\": 6}",
        "{\"shim_pid\": 5, \"shim_start\": 1, \"vmm_pid\": 6, \"vmm_start\": 1, \"x\": 1}",
        "{\"shim_pid\": 5, \"shim_start\": 1, \"vmm_pid\": 6, \"vmm_start\": 1.5}",
        "{\"shim_pid\": 5, \"shim_pid\": 5, \"shim_start\": 1, \"vmm_pid\": 6, \"vmm_start\": 1}",
    };
    static const char *const bad_exit[] = {
        "{\"status\": 256}", "{\"status\": 0, \"signal\": 9}", "{}", "{\"signal\": \"9\"}", "null",
    };
    char dir[DIR_LEN], config[PATH_MAX], err[VMPROC_ERR_LEN], path[PATH_MAX], text[256];
    char *big;
    struct vmproc_info info;
    unsigned long long start = 0;
    pid_t sid = getsid(0);
    FILE *f;

    vm_dir("hostile", "", dir, config);
    snprintf(path, sizeof(path), "%s/pid", dir);
    CHECK(vmproc_probe(dir, &info, err) == 0 && info.state == VMPROC_GONE);
    for (size_t i = 0; i < sizeof(bad_pid) / sizeof(bad_pid[0]); i++) {
        write_file(dir, "pid", bad_pid[i]);
        CHECK(vmproc_probe(dir, &info, err) == -EINVAL && strstr(err, path));
        CHECK(vmproc_action(dir, "stop", 1, err) == -EINVAL);
    }
    unlink(path);
    CHECK(symlink("/etc/passwd", path) == 0);
    CHECK(vmproc_probe(dir, &info, err) == -EINVAL && strstr(err, "regular file"));
    unlink(path);
    CHECK(mkfifo(path, 0600) == 0); /* must not block */
    CHECK(vmproc_probe(dir, &info, err) == -EINVAL && strstr(err, path));
    unlink(path);
    big = calloc(1, 5000);
    if (big) {
        memset(big, ' ', 4999);
        big[0] = '{', big[4998] = '}';
        write_file(dir, "pid", big);
        CHECK(vmproc_probe(dir, &info, err) == -EINVAL && strstr(err, "4096 bytes"));
        free(big);
    }

    /* A record naming a live process that is not this VM's (this test, with its real start
     * time, then a wrong one: a reused pid): not running, and stop sends nothing. */
    f = fopen("/proc/self/stat", "r");
    if (f) {
        char buf[1024], *p;
        if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
            for (int field = 2; p && field < 22; field++)
                p = strchr(p + 1, ' ');
        else
            p = NULL;
        if (p)
            start = strtoull(p + 1, NULL, 10);
        fclose(f);
    }
    CHECK(start > 0);
    if (sid < 2 || sid == getpid())
        sid = 2;
    for (int wrong = 0; wrong < 2; wrong++) {
        snprintf(text, sizeof(text),
                 "{\"shim_pid\": %d, \"shim_start\": %llu, \"vmm_pid\": %d, \"vmm_start\": %llu}",
                 (int)sid, start, (int)getpid(), start + (unsigned)wrong);
        write_file(dir, "pid", text);
        CHECK(vmproc_probe(dir, &info, err) == 0 && info.state == VMPROC_EXITED &&
              !info.exit_known);
        CHECK(vmproc_action(dir, "stop", 1, err) == -ESRCH);
    }
    unlink(path);

    snprintf(path, sizeof(path), "%s/exit", dir);
    for (size_t i = 0; i < sizeof(bad_exit) / sizeof(bad_exit[0]); i++) {
        write_file(dir, "exit", bad_exit[i]);
        CHECK(vmproc_probe(dir, &info, err) == -EINVAL && strstr(err, path));
    }
    write_file(dir, "exit", "{\"signal\": 9}");
    CHECK(vmproc_probe(dir, &info, err) == 0 && info.state == VMPROC_EXITED && info.exit_known &&
          info.exit_signal == 9 && info.exit_status == -1);
    CHECK(vmproc_probe("relative/dir", &info, err) == -EINVAL && strstr(err, "absolute"));
}

int main(int argc, char **argv)
{
    struct vmsup *sup = NULL;
    char cmd[PATH_MAX + 16];
    ssize_t n;

    if (argc > 1 && !strcmp(argv[1], VMPROC_SHIM_ARG))
        return vmproc_shim_main(argc, argv);
    /* This program is build/tests/test_vmproc (or tests-asan/): the VMM is build/tessera. */
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0 || !mkdtemp(base))
        return 1;
    self[n] = '\0';
    snprintf(cmd, sizeof(cmd), "%s", self);
    snprintf(tessera, sizeof(tessera), "%s/tessera", dirname(dirname(cmd)));

    test_spec_refused();
    test_hostile_files();
    test_start_fails();
    /* Before any thread exists here: the "daemons" are forked. */
    test_adoption();
    CHECK(vmsup_create(on_exit_cb, NULL, &sup) == 0);
    if (sup) {
        test_lifecycle(sup);
        test_stop_hung(sup);
        test_exit_unwatched(sup);
        vmsup_destroy(sup);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
    if (system(cmd))
        fprintf(stderr, "could not remove %s\n", base);
    return test_finish("vmproc");
}
