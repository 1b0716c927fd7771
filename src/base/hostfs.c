/* Path operations, direct or through the privileged broker (hostfs.h). The broker is OpenBSD
 * vmd's privilege separation in small: a process that keeps the starting user's rights, does
 * only these few typed operations, and checks each message's size and fields before use. */
#include "base/hostfs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/hostfs_msg.h"

/* What a caller may ask the broker to open with: no O_PATH, O_TMPFILE or anything else that
 * would hand out more than a plain descriptor to a file or folder. */
#define HOSTFS_OPEN_FLAGS                                                                      \
    (O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | \
     O_NOCTTY | O_DIRECTORY | O_DSYNC | O_SYNC | O_DIRECT | O_NOATIME)

/* The client's end of the broker's socket, -1 while none is installed. broker_lock serializes
 * the request/reply pairs of all threads. */
static int broker_fd = -1;
static pthread_mutex_t broker_lock = PTHREAD_MUTEX_INITIALIZER;

static int fail(int neg_errno)
{
    errno = -neg_errno;
    return neg_errno;
}

/* Copies s into a request field of PATH_MAX bytes. -ENAMETOOLONG when it does not fit. */
static int put_path(char *field, const char *s)
{
    size_t n = strlen(s);

    if (n >= PATH_MAX)
        return -ENAMETOOLONG;
    memcpy(field, s, n + 1);
    return 0;
}

/* One request and its reply; *fd_out gets a descriptor when the reply carries one (else -1).
 * Returns the broker's result, or -EIO when the broker is gone. */
static int broker_call(struct hostfs_req *req, struct hostfs_rep *rep, int *fd_out)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct iovec iov = {rep, sizeof(*rep)};
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = ctl.buf,
                         .msg_controllen = sizeof(ctl.buf)};
    struct cmsghdr *c;
    ssize_t n;

    *fd_out = -1;
    pthread_mutex_lock(&broker_lock);
    do
        n = send(broker_fd, req, sizeof(*req), MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof(*req)) {
        do
            n = recvmsg(broker_fd, &msg, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
    } else {
        n = -1;
    }
    pthread_mutex_unlock(&broker_lock);
    for (c = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL; c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len == CMSG_LEN(sizeof(int)) && *fd_out < 0)
            memcpy(fd_out, CMSG_DATA(c), sizeof(int));
    }
    if (n != (ssize_t)sizeof(*rep) || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
        if (*fd_out >= 0)
            close(*fd_out);
        *fd_out = -1;
        return -EIO;
    }
    return rep->result;
}

/* A request with one path (and path2 when given): the result, with errno set on failure. */
static int broker_path_op(enum hostfs_op op, const char *path, const char *path2, int flags,
                          mode_t mode, struct hostfs_rep *rep, int *fd_out)
{
    struct hostfs_req *req = calloc(1, sizeof(*req));
    int ret;

    *fd_out = -1;
    if (!req)
        return fail(-ENOMEM);
    req->op = op;
    req->flags = flags;
    req->mode = (uint32_t)mode;
    ret = put_path(req->path, path);
    if (!ret && path2)
        ret = put_path(req->path2, path2);
    if (!ret)
        ret = broker_call(req, rep, fd_out);
    free(req);
    return ret < 0 ? fail(ret) : ret;
}

static bool broker_on(void)
{
    return __atomic_load_n(&broker_fd, __ATOMIC_ACQUIRE) >= 0;
}

/* An op whose answer is only the result (and maybe a descriptor). */
static int broker_simple(enum hostfs_op op, const char *path, const char *path2, int flags,
                         mode_t mode)
{
    struct hostfs_rep *rep = malloc(sizeof(*rep));
    int ret, fd;

    if (!rep)
        return fail(-ENOMEM);
    ret = broker_path_op(op, path, path2, flags, mode, rep, &fd);
    free(rep);
    if (ret == 0 && fd >= 0)
        return fd;
    if (fd >= 0)
        close(fd);
    if (ret == 0 && (op == HOSTFS_OP_OPEN || op == HOSTFS_OP_CONNECT))
        return fail(-EIO); /* a success that lost its descriptor */
    return ret;
}

static int sys_result(int r)
{
    return r < 0 ? -errno : r;
}

int hostfs_open(const char *path, int flags, ...)
{
    mode_t mode = 0;

    if (flags & O_CREAT) {
        va_list ap;

        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    if (broker_on())
        return broker_simple(HOSTFS_OP_OPEN, path, NULL, flags, mode);
    return sys_result(open(path, flags, mode));
}

DIR *hostfs_opendir(const char *path)
{
    int fd = hostfs_open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
    DIR *d;

    if (fd < 0)
        return NULL;
    d = fdopendir(fd);
    if (!d) {
        int e = errno;

        close(fd);
        errno = e;
    }
    return d;
}

int hostfs_rename(const char *from, const char *to)
{
    if (broker_on())
        return broker_simple(HOSTFS_OP_RENAME, from, to, 0, 0);
    return sys_result(rename(from, to));
}

int hostfs_rename_noreplace(const char *from, const char *to)
{
    if (broker_on())
        return broker_simple(HOSTFS_OP_RENAME, from, to, RENAME_NOREPLACE, 0);
    return sys_result(renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE));
}

int hostfs_unlink(const char *path)
{
    if (broker_on())
        return broker_simple(HOSTFS_OP_UNLINK, path, NULL, 0, 0);
    return sys_result(unlink(path));
}

int hostfs_mkdir(const char *path, mode_t mode)
{
    if (broker_on())
        return broker_simple(HOSTFS_OP_MKDIR, path, NULL, 0, mode);
    return sys_result(mkdir(path, mode));
}

/* STAT, LSTAT, REALPATH: answers that travel in the reply. */
static int broker_query(enum hostfs_op op, const char *path, struct stat *st, char *out)
{
    struct hostfs_rep *rep = malloc(sizeof(*rep));
    int ret, fd;

    if (!rep)
        return fail(-ENOMEM);
    ret = broker_path_op(op, path, NULL, 0, 0, rep, &fd);
    if (fd >= 0)
        close(fd);
    if (ret == 0 && st)
        *st = rep->st;
    if (ret == 0 && out) {
        if (!memchr(rep->out, 0, sizeof(rep->out)))
            ret = fail(-EIO);
        else
            memcpy(out, rep->out, strlen(rep->out) + 1);
    }
    free(rep);
    return ret;
}

int hostfs_stat(const char *path, struct stat *st)
{
    if (broker_on())
        return broker_query(HOSTFS_OP_STAT, path, st, NULL);
    return sys_result(stat(path, st));
}

int hostfs_lstat(const char *path, struct stat *st)
{
    if (broker_on())
        return broker_query(HOSTFS_OP_LSTAT, path, st, NULL);
    return sys_result(lstat(path, st));
}

int hostfs_realpath(const char *path, char *out)
{
    if (broker_on())
        return broker_query(HOSTFS_OP_REALPATH, path, NULL, out);
    return realpath(path, out) ? 0 : -errno;
}

/* The connect itself, shared by the direct path and the broker. */
static int connect_unix(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd, flags, ret;

    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0) {
        ret = -errno;
        goto close_fd;
    }
    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        ret = -errno;
        goto close_fd;
    }
    return fd;
close_fd:
    close(fd);
    return ret;
}

int hostfs_connect_unix(const char *path)
{
    int ret;

    if (broker_on())
        return broker_simple(HOSTFS_OP_CONNECT, path, NULL, 0, 0);
    ret = connect_unix(path);
    return ret < 0 ? fail(ret) : ret;
}

/* ---- the broker ---- */

/* A string field: NUL-terminated inside the field, and nonempty when `need` says so (an
 * optional field must be entirely empty, so no stale bytes ride along). */
static bool field_ok(const char *f, bool need)
{
    if (!memchr(f, 0, PATH_MAX))
        return false;
    return need ? f[0] != 0 : f[0] == 0;
}

/* The checks every request passes before any field is used: -EPROTO or -EINVAL on failure. */
static int req_check(const struct hostfs_req *q)
{
    if (q->op < HOSTFS_OP_OPEN || q->op >= HOSTFS_OP_END || q->reserved)
        return -EPROTO;
    if (!field_ok(q->path, true) || !field_ok(q->path2, q->op == HOSTFS_OP_RENAME))
        return -EPROTO;
    if (q->op == HOSTFS_OP_OPEN)
        return (q->flags & ~HOSTFS_OPEN_FLAGS) || (q->mode & ~07777u) ? -EINVAL : 0;
    if (q->op == HOSTFS_OP_RENAME && q->flags == RENAME_NOREPLACE)
        return q->mode ? -EINVAL : 0;
    if (q->flags)
        return -EINVAL;
    if (q->op == HOSTFS_OP_MKDIR)
        return q->mode & ~07777u ? -EINVAL : 0;
    return q->mode ? -EINVAL : 0;
}

/* OPEN: never blocks on a FIFO (O_NONBLOCK until the type is checked), never gains a
 * controlling terminal, and hands out only regular files, folders and FIFOs: no device, so a
 * VMM that lost root cannot reach raw disks or memory through it. (A FIFO is let through so
 * that the callers' own type checks still name it; it gives nothing a file would not.) */
static int broker_open(const struct hostfs_req *q, int *fd_out)
{
    struct stat st;
    int fd = open(q->path, q->flags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, (mode_t)q->mode);
    int ret;

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        ret = -errno;
        goto close_fd;
    }
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISFIFO(st.st_mode)) {
        ret = -EPERM;
        goto close_fd;
    }
    if (!(q->flags & O_NONBLOCK) && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
        ret = -errno;
        goto close_fd;
    }
    *fd_out = fd;
    return 0;
close_fd:
    close(fd);
    return ret;
}

static int broker_do(const struct hostfs_req *q, struct hostfs_rep *r, int *fd_out)
{
    int ret = req_check(q);

    if (ret)
        return ret;
    switch ((enum hostfs_op)q->op) {
    case HOSTFS_OP_OPEN: return broker_open(q, fd_out);
    case HOSTFS_OP_RENAME:
        return renameat2(AT_FDCWD, q->path, AT_FDCWD, q->path2, (unsigned)q->flags) < 0 ? -errno
                                                                                        : 0;
    case HOSTFS_OP_UNLINK: return unlink(q->path) < 0 ? -errno : 0;
    case HOSTFS_OP_MKDIR: return mkdir(q->path, (mode_t)q->mode) < 0 ? -errno : 0;
    case HOSTFS_OP_STAT: return stat(q->path, &r->st) < 0 ? -errno : 0;
    case HOSTFS_OP_LSTAT: return lstat(q->path, &r->st) < 0 ? -errno : 0;
    case HOSTFS_OP_REALPATH: return realpath(q->path, r->out) ? 0 : -errno;
    case HOSTFS_OP_CONNECT:
        ret = connect_unix(q->path);
        if (ret >= 0) {
            *fd_out = ret;
            ret = 0;
        }
        return ret;
    case HOSTFS_OP_END: break;
    }
    return -EPROTO;
}

int hostfs_broker_serve(int sock)
{
    struct hostfs_req *q = malloc(sizeof(*q));
    struct hostfs_rep *r = malloc(sizeof(*r));
    int ret = 0;

    if (!q || !r) {
        ret = -ENOMEM;
        goto free_bufs;
    }
    for (;;) {
        union {
            struct cmsghdr h;
            char buf[CMSG_SPACE(sizeof(int))];
        } ctl;
        struct iovec iov = {q, sizeof(*q)};
        /* No control buffer: a descriptor sent to the broker is dropped by the kernel. */
        struct msghdr in = {.msg_iov = &iov, .msg_iovlen = 1};
        struct iovec oiov = {r, sizeof(*r)};
        struct msghdr out = {.msg_iov = &oiov, .msg_iovlen = 1};
        int fd = -1;
        ssize_t n = recvmsg(sock, &in, MSG_TRUNC);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ret = -errno;
            break;
        }
        if (n == 0)
            break; /* EOF: the VMM is gone */
        memset(r, 0, sizeof(*r));
        if (n != (ssize_t)sizeof(*q) || (in.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
            r->result = -EPROTO;
        else
            r->result = broker_do(q, r, &fd);
        if (fd >= 0) {
            memset(&ctl, 0, sizeof(ctl));
            out.msg_control = ctl.buf;
            out.msg_controllen = sizeof(ctl.buf);
            ctl.h.cmsg_level = SOL_SOCKET;
            ctl.h.cmsg_type = SCM_RIGHTS;
            ctl.h.cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(&ctl.h), &fd, sizeof(int));
        }
        n = sendmsg(sock, &out, MSG_NOSIGNAL);
        if (fd >= 0)
            close(fd);
        if (n != (ssize_t)sizeof(*r)) {
            ret = n < 0 ? -errno : -EIO;
            break;
        }
    }
free_bufs:
    free(q);
    free(r);
    return ret;
}

/* The broker child: keeps only its socket (and stderr), dies with its parent, serves. */
static void broker_main(int sock, pid_t parent, int (*confine)(void))
{
    int null_fd;

    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        _exit(1);
    /* None of the VMM's handlers (the console's terminal restore) belongs here: they would
     * make calls outside the broker's filter. A terminal's ^C is for the VMM, whose death
     * ends us anyway. */
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL);
    signal(SIGINT, SIG_IGN);
    if (sock != 3) {
        if (dup2(sock, 3) < 0)
            _exit(1);
        sock = 3;
    }
    null_fd = open("/dev/null", O_RDWR);
    if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(null_fd, 1) < 0)
        _exit(1);
    /* Disk images, the API socket, tap and migration descriptors stay with the VMM only. */
    if (close_range(4, ~0u, 0) < 0)
        _exit(1);
    prctl(PR_SET_NAME, "tessera-broker");
    if (confine && confine())
        _exit(1);
    _exit(hostfs_broker_serve(sock) ? 1 : 0);
}

int hostfs_broker_start(int (*confine)(void), pid_t *pid_out)
{
    pid_t parent = getpid(), pid;
    int sv[2];

    if (broker_on())
        return -EBUSY;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    pid = fork();
    if (pid < 0) {
        int ret = -errno;

        close(sv[0]);
        close(sv[1]);
        return ret;
    }
    if (pid == 0) {
        close(sv[0]);
        broker_main(sv[1], parent, confine);
    }
    close(sv[1]);
    __atomic_store_n(&broker_fd, sv[0], __ATOMIC_RELEASE);
    *pid_out = pid;
    return 0;
}
