/* hostfs and its broker: the calls act like the system calls they replace (direct and through
 * the broker), the broker refuses malformed messages and what it must not hand out, a process
 * that dropped root still creates, renames and removes files in a folder only root may enter,
 * and the broker dies with its parent. The privilege cases need root; without it they print
 * why they skip. */
#include "test.h"

#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/hostfs.h"
#include "base/hostfs_msg.h"

static char dir[64]; /* /tmp/test_hostfs.XXXXXX */

static void path_in(char *out, const char *name)
{
    snprintf(out, PATH_MAX, "%s/%s", dir, name);
}

/* The calls with no broker: results, -errno and errno as the system calls give them. */
static void test_direct(void)
{
    char a[PATH_MAX], b[PATH_MAX], sub[PATH_MAX], real[PATH_MAX];
    struct stat st;
    int fd;

    path_in(a, "a");
    path_in(b, "b");
    path_in(sub, "sub");
    fd = hostfs_open(a, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    CHECK(write(fd, "x", 1) == 1);
    close(fd);
    CHECK(hostfs_open(a, O_RDWR | O_CREAT | O_EXCL, 0600) == -EEXIST && errno == EEXIST);
    CHECK(hostfs_stat(a, &st) == 0 && st.st_size == 1 && (st.st_mode & 0777) == 0600);
    CHECK(hostfs_rename(a, b) == 0);
    CHECK(hostfs_lstat(a, &st) == -ENOENT && errno == ENOENT);
    CHECK(hostfs_mkdir(sub, 0700) == 0);
    CHECK(hostfs_mkdir(sub, 0700) == -EEXIST);
    CHECK(hostfs_realpath(sub, real) == 0 && !strcmp(real, sub));
    CHECK(hostfs_unlink(b) == 0);
    CHECK(hostfs_unlink(b) == -ENOENT && errno == ENOENT);
    CHECK(rmdir(sub) == 0);
}

/* One raw message of len bytes to the broker at fd; its result and any descriptor. */
static int raw_call(int fd, const void *msg, size_t len, int *fd_out)
{
    struct hostfs_rep rep;
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct iovec iov = {&rep, sizeof(rep)};
    struct msghdr m = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = ctl.buf,
                       .msg_controllen = sizeof(ctl.buf)};
    struct cmsghdr *c;

    *fd_out = -1;
    if (send(fd, msg, len, 0) != (ssize_t)len || recvmsg(fd, &m, 0) != (ssize_t)sizeof(rep))
        return INT_MIN;
    c = CMSG_FIRSTHDR(&m);
    if (c && c->cmsg_type == SCM_RIGHTS)
        memcpy(fd_out, CMSG_DATA(c), sizeof(int));
    return rep.result;
}

static struct hostfs_req *req_new(uint32_t op, const char *path)
{
    struct hostfs_req *q = calloc(1, sizeof(*q));

    q->op = op;
    snprintf(q->path, sizeof(q->path), "%s", path);
    return q;
}

/* The broker's door: every malformed message is refused and the broker serves on. */
static void test_broker_refuses(void)
{
    char a[PATH_MAX];
    struct hostfs_req *q;
    int sv[2], fd, status;
    pid_t pid;

    path_in(a, "refuse");
    CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    pid = fork();
    if (pid == 0) {
        close(sv[0]);
        _exit(hostfs_broker_serve(sv[1]) ? 1 : 0);
    }
    close(sv[1]);

    q = req_new(HOSTFS_OP_OPEN, a);
    q->flags = O_RDWR | O_CREAT;
    q->mode = 0600;
    CHECK(raw_call(sv[0], q, 10, &fd) == -EPROTO);             /* short */
    CHECK(raw_call(sv[0], q, sizeof(*q) - 1, &fd) == -EPROTO); /* one byte short */
    {
        char *big = calloc(1, sizeof(*q) + 64);

        memcpy(big, q, sizeof(*q));
        CHECK(raw_call(sv[0], big, sizeof(*q) + 64, &fd) == -EPROTO); /* too long */
        free(big);
    }
    q->op = HOSTFS_OP_END;
    CHECK(raw_call(sv[0], q, sizeof(*q), &fd) == -EPROTO); /* unknown op */
    q->op = 0;
    CHECK(raw_call(sv[0], q, sizeof(*q), &fd) == -EPROTO);
    q->op = HOSTFS_OP_OPEN;
    q->reserved = 1;
    CHECK(raw_call(sv[0], q, sizeof(*q), &fd) == -EPROTO); /* reserved field set */
    q->reserved = 0;
    memset(q->path, 'a', sizeof(q->path));
    CHECK(raw_call(sv[0], q, sizeof(*q), &fd) == -EPROTO); /* path without its NUL */
    snprintf(q->path, sizeof(q->path), "%s", a);
    q->path2[0] = 'x';
    CHECK(raw_call(sv[0], q, sizeof(*q), &fd) == -EPROTO); /* stray second path */
    q->path2[0] = 0;
    q->flags = O_PATH | O_RDONLY;
    CHECK(raw_call(sv[0], q, sizeof(*q), &fd) == -EINVAL); /* a flag outside the list */
    q->flags = O_RDWR | O_CREAT;
    q->mode = 010000;
    CHECK(raw_call(sv[0], q, sizeof(*q), &fd) == -EINVAL); /* a mode outside 07777 */
    CHECK(access(a, F_OK) != 0);                           /* nothing refused was made */
    free(q);

    q = req_new(HOSTFS_OP_OPEN, "/dev/null");
    q->flags = O_RDWR;
    CHECK(raw_call(sv[0], q, sizeof(*q), &fd) == -EPERM); /* a device is not handed out */
    CHECK(fd < 0);
    free(q);

    q = req_new(HOSTFS_OP_RENAME, a);
    CHECK(raw_call(sv[0], q, sizeof(*q), &fd) == -EPROTO); /* rename with no target */
    free(q);
    q = req_new(HOSTFS_OP_UNLINK, a);
    q->mode = 0600;
    CHECK(raw_call(sv[0], q, sizeof(*q), &fd) == -EINVAL); /* a mode where none belongs */
    free(q);

    /* After all that, a good request still works. */
    q = req_new(HOSTFS_OP_OPEN, a);
    q->flags = O_RDWR | O_CREAT;
    q->mode = 0600;
    CHECK(raw_call(sv[0], q, sizeof(*q), &fd) == 0);
    CHECK(fd >= 0 && write(fd, "ok", 2) == 2);
    if (fd >= 0)
        close(fd);
    free(q);
    CHECK(unlink(a) == 0);

    close(sv[0]); /* EOF: the broker's loop ends cleanly */
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* In a child: start the broker, become `nobody`, and use a folder only root may enter. The
 * exit status is the number of failed steps. */
static int child_unprivileged(const struct passwd *pw)
{
    char a[PATH_MAX], b[PATH_MAX], sub[PATH_MAX], sock[PATH_MAX], real[PATH_MAX];
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    int fails = 0, fd, lfd;
    pid_t broker;

    path_in(a, "a");
    path_in(b, "b");
    path_in(sub, "sub");
    path_in(sock, "s.sock");
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (strlen(sock) >= sizeof(sa.sun_path))
        return 103;
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 1))
        return 100;
    if (hostfs_broker_start(NULL, &broker))
        return 101;
    if (setgroups(0, NULL) || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) ||
        setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid))
        return 102;
    fails += open(a, O_RDWR | O_CREAT, 0600) >= 0 || errno != EACCES; /* the folder is closed */
    fd = hostfs_open(a, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    fails += fd < 0;
    fails += fd >= 0 && (fstat(fd, &st) || st.st_uid != 0 || (st.st_mode & 0777) != 0640);
    fails += fd >= 0 && pwrite(fd, "data", 4, 0) != 4;
    if (fd >= 0)
        close(fd);
    fails += hostfs_stat(a, &st) != 0 || st.st_size != 4;
    fails += hostfs_rename(a, b) != 0;
    fails += hostfs_lstat(a, &st) != -ENOENT;
    fails += hostfs_mkdir(sub, 0700) != 0;
    fails += hostfs_realpath(sub, real) != 0 || strcmp(real, sub);
    fails += hostfs_opendir(dir) == NULL;
    fd = hostfs_connect_unix(sock);
    fails += fd < 0;
    fails += hostfs_unlink(b) != 0;
    fails += hostfs_unlink(b) != -ENOENT || errno != ENOENT;
    return fails;
}

static void test_unprivileged(void)
{
    struct passwd *pw = getpwnam("nobody");
    char path[PATH_MAX];
    struct stat st;
    int status;
    pid_t pid;

    if (geteuid() != 0 || !pw) {
        printf("hostfs: unprivileged case skipped: %s\n", pw ? "not root" : "no nobody");
        return;
    }
    CHECK(chmod(dir, 0700) == 0);
    pid = fork();
    if (pid == 0)
        _exit(child_unprivileged(pw));
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (WIFEXITED(status) && WEXITSTATUS(status))
        fprintf(stderr, "hostfs: unprivileged child: %d failures\n", WEXITSTATUS(status));
    path_in(path, "sub");
    CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == 0);
    rmdir(path);
    path_in(path, "s.sock");
    unlink(path);
}

/* The broker dies with the process that started it, even one killed by SIGKILL. */
static void test_broker_dies(void)
{
    int pfd[2], status;
    pid_t child, broker = -1;

    CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0); /* the orphaned broker comes to us */
    CHECK(pipe(pfd) == 0);
    child = fork();
    if (child == 0) {
        pid_t b;

        close(pfd[0]);
        if (hostfs_broker_start(NULL, &b) || write(pfd[1], &b, sizeof(b)) != sizeof(b))
            _exit(1);
        pause();
        _exit(0);
    }
    close(pfd[1]);
    CHECK(read(pfd[0], &broker, sizeof(broker)) == sizeof(broker));
    close(pfd[0]);
    CHECK(kill(child, 0) == 0 && broker > 0 && kill(broker, 0) == 0);
    kill(child, SIGKILL);
    CHECK(waitpid(child, &status, 0) == child);
    alarm(20); /* a broker that outlived its parent would hang the test: fail it instead */
    CHECK(broker > 0 && waitpid(broker, &status, 0) == broker);
    alarm(0);
    CHECK(WIFSIGNALED(status) || WIFEXITED(status));
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/test_hostfs.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_direct();
    test_broker_refuses();
    test_unprivileged();
    test_broker_dies();
    rmdir(dir);
    return test_finish("hostfs");
}
