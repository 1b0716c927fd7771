/* The VMM's sandbox: user switch, no-new-privs and the seccomp allow-list (sandbox.h,
 * docs/sandbox.md). The list names every system call the VMM makes after set-up and why;
 * adding one means adding its reason here and in the document. */
#include "vmm/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/if_tun.h>
#include <linux/sched.h>
#include <pwd.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "base/hostfs.h"
#include "base/log.h"

#define SANDBOX_DEFAULT_USER "nobody"

static void set_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(char *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, SANDBOX_ERR_LEN, fmt, ap);
    va_end(ap);
}

/* Allowed with any arguments. One line each: who makes the call after set-up. Calls marked
 * "fallback" are not made on a usual host but would be on some (the vDSO's clock falling
 * back to the kernel), and killing a VM for them would help no one. */
static const int sandbox_allow[] = {
    /* memory */
    SCMP_SYS(brk),      /* malloc's heap */
    SCMP_SYS(mmap),     /* malloc's large blocks, thread stacks, qcow2 caches */
    SCMP_SYS(munmap),   /* their release */
    SCMP_SYS(mprotect), /* thread-stack guard pages; the JIT's code cache: RW, then RX */
    SCMP_SYS(mremap),   /* realloc of large blocks (qcow2 tables, API buffers) */
    SCMP_SYS(madvise),  /* MADV_DONTNEED of guest RAM (balloon, reporting, reset); stacks;
                           MADV_POPULATE_* of the JIT's code cache */
    /* threads and their synchronization */
    SCMP_SYS(futex),           /* every mutex and condition variable */
    SCMP_SYS(set_robust_list), /* glibc, at the start of each new thread */
    SCMP_SYS(rseq),            /* glibc >= 2.35 registers restartable sequences per thread */
    SCMP_SYS(gettid),          /* glibc (mutex owners, pthread_kill) */
    SCMP_SYS(sched_yield),     /* a hart spinning on PAUSE gives its CPU away (exec.c) */
    SCMP_SYS(getpid),          /* glibc (raise, pthread_kill) */
    SCMP_SYS(exit),            /* a thread's end */
    SCMP_SYS(exit_group),      /* the process's end */
    /* signals */
    SCMP_SYS(rt_sigaction),    /* glibc and libmicrohttpd (SIGPIPE) */
    SCMP_SYS(rt_sigprocmask),  /* glibc blocks signals around thread creation */
    SCMP_SYS(rt_sigreturn),    /* returning from any handler */
    SCMP_SYS(restart_syscall), /* a sleep interrupted by SIGSTOP/SIGCONT (^Z, fg) resumes */
    /* time */
    SCMP_SYS(clock_nanosleep), /* usleep()/nanosleep() in pause, shutdown and migration waits */
    SCMP_SYS(clock_gettime),   /* fallback: time_now_ns() when the vDSO cannot answer */
    SCMP_SYS(gettimeofday),    /* fallback: time() in libslirp and libmicrohttpd, the same */
    /* I/O on descriptors opened before the sandbox or passed by the broker */
    SCMP_SYS(read),       /* console, sockets, eventfds, state streams */
    SCMP_SYS(write),      /* console, sockets, eventfds, logging */
    SCMP_SYS(readv),      /* tap and socket backends */
    SCMP_SYS(writev),     /* tap and socket backends, stdio */
    SCMP_SYS(pread64),    /* disk images, /proc/self/pagemap, statm and ksm_* (memstats.c) */
    SCMP_SYS(pwrite64),   /* disk images */
    SCMP_SYS(lseek),      /* image size (SEEK_END), stdio */
    SCMP_SYS(close),      /* any descriptor */
    SCMP_SYS(fsync),      /* snapshot files and folders */
    SCMP_SYS(fdatasync),  /* a guest's flush reaching the disk */
    SCMP_SYS(fallocate),  /* raw discard (punching holes) */
    SCMP_SYS(ftruncate),  /* qcow2 growth and shrink, images made by snapshots and clones */
    SCMP_SYS(fstat),      /* size and type of an image (libraries other than glibc) */
    SCMP_SYS(newfstatat), /* glibc's fstat() (AT_EMPTY_PATH) */
    SCMP_SYS(fcntl),      /* O_NONBLOCK, FD_CLOEXEC */
    SCMP_SYS(flock),      /* image locks: shared read-only, exclusive writable */
    SCMP_SYS(getdents64), /* listing a snapshot's folder (opened by the broker) */
    SCMP_SYS(getcwd),     /* resolving a relative backing-file name */
    SCMP_SYS(getrandom),  /* virtio-rng, clone identities; TLS migration (GnuTLS) needs it too */
    /* the event loop and its threads */
    SCMP_SYS(epoll_create1),   /* a loop created after set-up (workers) */
    SCMP_SYS(epoll_ctl),       /* watching and unwatching descriptors */
    SCMP_SYS(epoll_wait),      /* every loop */
    SCMP_SYS(eventfd2),        /* wake-ups of loops and virtqueue kicks made after set-up */
    SCMP_SYS(timerfd_create),  /* a loop's timer made after set-up */
    SCMP_SYS(timerfd_settime), /* loop timers */
    SCMP_SYS(poll),            /* libmicrohttpd, the agent client, migration waits */
    /* sockets (socket() itself is below, by family) */
    SCMP_SYS(connect),     /* slirp (guest TCP/UDP), migration source, the agent socket */
    SCMP_SYS(accept4),     /* API (libmicrohttpd), agent and console sockets */
    SCMP_SYS(accept),      /* slirp's port forwards (hostfwd) */
    SCMP_SYS(bind),        /* slirp's protocol helpers (FTP, IRC) listening for the guest */
    SCMP_SYS(listen),      /* the same */
    SCMP_SYS(getsockname), /* slirp, libmicrohttpd */
    SCMP_SYS(getpeername), /* slirp, on each connection a port forward accepts */
    SCMP_SYS(getsockopt),  /* slirp (SO_ERROR after a connect), libmicrohttpd */
    SCMP_SYS(setsockopt),  /* slirp, libmicrohttpd, migration (TCP_NODELAY) */
    SCMP_SYS(shutdown),    /* slirp, libmicrohttpd, migration */
    SCMP_SYS(sendto),      /* slirp (UDP, ICMP), send() */
    SCMP_SYS(recvfrom),    /* slirp, recv() */
    SCMP_SYS(sendmsg),     /* socket backend, libmicrohttpd, the broker's requests */
    SCMP_SYS(recvmsg),     /* slirp, the broker's replies with descriptors */
    SCMP_SYS(sendmmsg),    /* glibc's DNS resolver, for a migration URI with a host name */
    /* identity reads made by libraries */
    SCMP_SYS(getuid),  /* libmicrohttpd, glibc */
    SCMP_SYS(geteuid), /* glibc */
};

/* ioctl requests, each allowed alone. */
static const unsigned long sandbox_ioctls[] = {
    FIONREAD,      /* slirp: bytes waiting on a UDP socket */
    SIOCGIFINDEX,  /* slirp re-reading /etc/resolv.conf: a nameserver's %iface (if_nametoindex) */
    TCGETS,        /* console: isatty() */
    TCSETS,        /* console: the terminal's mode restored at exit (tcsetattr TCSANOW) */
    TUNSETOFFLOAD, /* tap backend: the offloads the guest's driver took, at each (re)start */
};

/* Path calls made directly (no broker: the VMM did not start as root, so there are no rights
 * to keep apart, and hostfs makes the calls itself). */
static const int sandbox_allow_direct[] = {
    SCMP_SYS(openat),     /* hostfs_open: images, snapshot files, their folders */
    SCMP_SYS(rename),     /* hostfs_rename: snapshot commit (glibc's rename() on x86-64) */
    SCMP_SYS(renameat),   /* the same where the architecture has no rename (arm64) */
    SCMP_SYS(renameat2),  /* the same, newer glibc */
    SCMP_SYS(unlink),     /* hostfs_unlink: snapshot clean-up, socket removal (x86-64) */
    SCMP_SYS(unlinkat),   /* the same (arm64) */
    SCMP_SYS(mkdir),      /* hostfs_mkdir (x86-64) */
    SCMP_SYS(mkdirat),    /* the same (arm64) */
    SCMP_SYS(readlink),   /* hostfs_realpath: glibc's realpath, each component (x86-64) */
    SCMP_SYS(readlinkat), /* the same (arm64) */
    SCMP_SYS(faccessat2), /* the same: glibc checks a folder before a ".." */
    SCMP_SYS(faccessat),  /* the same, on kernels before 5.8 */
};

static int add_rule(scmp_filter_ctx ctx, int nr, unsigned n, ...)
{
    struct scmp_arg_cmp cmp[2];
    va_list ap;

    va_start(ap, n);
    for (unsigned i = 0; i < n && i < 2; i++)
        cmp[i] = va_arg(ap, struct scmp_arg_cmp);
    va_end(ap);
    return seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, n, cmp);
}

/* The whole filter. broker: path calls go to the broker, so the VMM may open files only for
 * reading (/proc/self/statm) and may not create, rename or remove anything itself. */
static int filter_build(scmp_filter_ctx ctx, bool broker)
{
    int r = 0;

    for (size_t i = 0; !r && i < sizeof(sandbox_allow) / sizeof(sandbox_allow[0]); i++)
        r = add_rule(ctx, sandbox_allow[i], 0);
    for (size_t i = 0; !r && i < sizeof(sandbox_ioctls) / sizeof(sandbox_ioctls[0]); i++)
        r = add_rule(ctx, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, sandbox_ioctls[i]));
    /* New threads only (snapshot and migration workers): CLONE_THREAD must be set, so the
     * VMM can never fork or spawn a process. glibc tries clone3 first and falls back to clone
     * on ENOSYS; clone3's flags live in memory a filter cannot read, so it gets ENOSYS. */
    if (!r)
        r = add_rule(ctx, SCMP_SYS(clone), 1,
                     SCMP_A0(SCMP_CMP_MASKED_EQ, (scmp_datum_t)CLONE_THREAD, CLONE_THREAD));
    if (!r)
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    /* Signals to this process's own threads only (pthread_kill, raise, abort). */
    if (!r)
        r = add_rule(ctx, SCMP_SYS(tgkill), 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));
    /* Names of our own threads (pthread_setname_np of self). */
    if (!r)
        r = add_rule(ctx, SCMP_SYS(prctl), 1, SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
    /* Sockets of the families slirp and migration use: unix, IPv4, IPv6. No netlink, no
     * packet sockets. */
    for (int fam = 0; !r && fam < 3; fam++) {
        static const int fams[] = {AF_UNIX, AF_INET, AF_INET6};

        r = add_rule(ctx, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)fams[fam]));
    }
    if (!r && broker) {
        /* Read-only opens only (glibc, /etc files for a resolver; the stats' /proc/self files
         * are opened before the sandbox, vmm/memstats.h):
         * no O_WRONLY, O_RDWR, O_CREAT or O_TRUNC. Everything else goes through the broker. */
        r = add_rule(ctx, SCMP_SYS(openat), 1,
                     SCMP_A2(SCMP_CMP_MASKED_EQ, O_WRONLY | O_RDWR | O_CREAT | O_TRUNC, 0));
    }
    for (size_t i = 0; !r && !broker && i < sizeof(sandbox_allow_direct) / sizeof(int); i++)
        r = add_rule(ctx, sandbox_allow_direct[i], 0);
    return r;
}

/* The broker's own filter (hostfs_broker_start's confine hook): it keeps root's file access,
 * so it gets the fewest calls of all: its socket, the path calls it serves, and malloc. It
 * runs single-threaded and never forks or executes anything. 0 or -errno. */
static const int broker_allow[] = {
    SCMP_SYS(recvmsg),    /* a request */
    SCMP_SYS(sendmsg),    /* its reply, with a descriptor */
    SCMP_SYS(openat),     /* OPEN */
    SCMP_SYS(fstat),      /* OPEN's type check */
    SCMP_SYS(newfstatat), /* OPEN's type check (glibc's fstat), STAT, LSTAT */
    SCMP_SYS(fcntl),      /* OPEN and CONNECT: clearing O_NONBLOCK */
    SCMP_SYS(close),      /* the descriptor once sent */
    SCMP_SYS(rename),     /* RENAME (glibc's rename() on x86-64) */
    SCMP_SYS(renameat),   /* RENAME where the architecture has no rename (arm64) */
    SCMP_SYS(renameat2),  /* the same, newer glibc */
    SCMP_SYS(unlink),     /* UNLINK (x86-64) */
    SCMP_SYS(unlinkat),   /* UNLINK (arm64) */
    SCMP_SYS(mkdir),      /* MKDIR (x86-64) */
    SCMP_SYS(mkdirat),    /* MKDIR (arm64) */
    SCMP_SYS(readlink),   /* REALPATH: each component (x86-64) */
    SCMP_SYS(readlinkat), /* REALPATH (arm64) */
    SCMP_SYS(getcwd),     /* REALPATH of a relative path */
    SCMP_SYS(faccessat2), /* REALPATH: glibc checks a folder before a ".." */
    SCMP_SYS(faccessat),  /* the same, on kernels before 5.8 */
    SCMP_SYS(connect),    /* CONNECT */
    SCMP_SYS(brk),        /* malloc */
    SCMP_SYS(mmap),       /* malloc */
    SCMP_SYS(munmap),     /* free */
    SCMP_SYS(exit_group), /* EOF: the VMM is gone (no handler runs: all are reset) */
};

/* A sanitizer's runtime (ASan, LSan, TSan) makes system calls of its own from any thread:
 * sched_getaffinity when a thread starts, a ptrace-based stop-the-world for the leak check at
 * exit. The allow-list rightly refuses them. Sanitized builds are test builds (make
 * tessera-asan): they keep the user switch, the broker and no-new-privs, and install no
 * filter; the filter is tested with the ordinary build. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANDBOX_FILTER 0
#else
#define SANDBOX_FILTER 1
#endif

static int broker_confine(void)
{
    scmp_filter_ctx ctx;
    int r = 0;

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;
    if (!SANDBOX_FILTER)
        return 0;
    ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (!ctx)
        return -ENOMEM;
    r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    for (size_t i = 0; !r && i < sizeof(broker_allow) / sizeof(broker_allow[0]); i++)
        r = add_rule(ctx, broker_allow[i], 0);
    /* CONNECT's socket: unix only. */
    if (!r)
        r = add_rule(ctx, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
    if (!r)
        r = seccomp_load(ctx);
    seccomp_release(ctx);
    return r;
}

/* The user to become: 0 and its ids, or -EINVAL with err. */
static int user_lookup(const char *name, uid_t *uid, gid_t *gid, char *err)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    int e = getpwnam_r(name, &pw, buf, sizeof(buf), &res);

    if (e || !res) {
        set_err(err, "--user %s: no such user%s%s", name, e ? ": " : "", e ? strerror(e) : "");
        return -EINVAL;
    }
    if (pw.pw_uid == 0) {
        set_err(err, "--user %s: is root; the sandbox needs an unprivileged user", name);
        return -EINVAL;
    }
    *uid = pw.pw_uid;
    *gid = pw.pw_gid;
    return 0;
}

int sandbox_check(const struct sandbox_opts *o, char *err)
{
    uid_t uid;
    gid_t gid;

    if (o->off && o->selftest) {
        set_err(err, "--sandbox: give one of on, off, selftest");
        return -EINVAL;
    }
    if (o->off)
        return 0;
    if (geteuid() != 0) {
        if (o->user) {
            set_err(err, "--user %s: only root can switch users (running as uid %u)", o->user,
                    (unsigned)geteuid());
            return -EINVAL;
        }
        return 0;
    }
    return user_lookup(o->user ? o->user : SANDBOX_DEFAULT_USER, &uid, &gid, err);
}

/* Becomes uid/gid for good: every group, real, effective and saved id. Afterwards root cannot
 * be regained (checked). */
static int drop_user(uid_t uid, gid_t gid, char *err)
{
    if (setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
        int ret = -errno;

        set_err(err, "cannot switch to uid %u: %s", (unsigned)uid, strerror(errno));
        return ret;
    }
    if (setuid(0) == 0 || geteuid() == 0) {
        set_err(err, "uid %u could become root again", (unsigned)uid);
        return -EPERM;
    }
    return 0;
}

int sandbox_enter(const struct sandbox_opts *o, char *err)
{
    scmp_filter_ctx ctx;
    bool broker = false;
    int ret;

    if (o->off) {
        log_info("sandbox: off (--sandbox off)");
        return 0;
    }
    if (geteuid() == 0) {
        uid_t uid;
        gid_t gid;
        pid_t pid;

        ret = user_lookup(o->user ? o->user : SANDBOX_DEFAULT_USER, &uid, &gid, err);
        if (ret)
            return ret;
        ret = hostfs_broker_start(broker_confine, &pid);
        if (ret) {
            set_err(err, "cannot start the file broker: %s", strerror(-ret));
            return ret;
        }
        broker = true;
        ret = drop_user(uid, gid, err);
        if (ret)
            return ret;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        ret = -errno;
        set_err(err, "no-new-privs: %s", strerror(errno));
        return ret;
    }
    if (!SANDBOX_FILTER) {
        log_info("sandbox: a sanitizer build: uid %u, no-new-privs, no seccomp filter",
                 (unsigned)getuid());
        return 0;
    }
    ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (!ctx) {
        set_err(err, "seccomp: cannot create a filter");
        return -ENOMEM;
    }
    /* Synchronize onto every thread that exists (API, console, loop, block workers); threads
     * started later inherit the filter. */
    ret = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    /* A call through another ABI (32-bit int 0x80, x32) ends the process like any other. */
    if (!ret)
        ret = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (!ret)
        ret = filter_build(ctx, broker);
    if (!ret)
        ret = seccomp_load(ctx);
    seccomp_release(ctx);
    if (ret) {
        set_err(err, "seccomp: cannot install the filter: %s", strerror(-ret));
        return ret < 0 ? ret : -EIO;
    }
    log_info("sandbox: uid %u, no-new-privs, seccomp filter%s", (unsigned)getuid(),
             broker ? ", file broker" : "");
    return 0;
}

void sandbox_selftest(void)
{
    static char *const argv[] = {"/nonexistent/tessera-sandbox-selftest", NULL};

    log_info("sandbox: self-test: calling execve, which the filter forbids");
    execve(argv[0], argv, argv + 1);
    log_error("sandbox: self-test: execve was not stopped (%s)", strerror(errno));
}
