/* netcmd.h: fork, exec, collect stderr, wait. */
#include "daemon/net/netcmd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int netcmd_have(const char *name)
{
    const char *path = getenv("PATH");
    char buf[4096], *dir, *save = NULL, file[4200];
    struct stat st;

    snprintf(buf, sizeof(buf), "%s", path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
    for (dir = strtok_r(buf, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        snprintf(file, sizeof(file), "%s/%s", dir, name);
        if (!stat(file, &st) && S_ISREG(st.st_mode) && !access(file, X_OK))
            return 1;
    }
    return 0;
}

ssize_t netcmd_read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -errno;
    n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -errno;
    buf[n] = '\0';
    return n;
}

int netcmd_nft_apply(const char *ns, const char *path, const char *text, char *err)
{
    const char *argv[] = {"ip", "netns", "exec", ns, "nft", "-f", path, NULL};
    size_t len = strlen(text);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    ssize_t w = fd >= 0 ? write(fd, text, len) : -1;

    if (fd < 0 || w != (ssize_t)len || close(fd)) {
        snprintf(err, NETCMD_ERR_LEN, "%.400s: %s", path,
                 fd >= 0 && w >= 0 && w != (ssize_t)len ? "short write" : strerror(errno));
        if (fd >= 0 && w != (ssize_t)len)
            close(fd);
        return -EIO;
    }
    return netcmd_run(argv, err);
}

pid_t netcmd_pidfile_pid(const char *pidfile, const char *prog, const char *arg)
{
    char path[64], buf[8192], *end;
    ssize_t n;
    long v;

    if (netcmd_read_small(pidfile, buf, 32) <= 0)
        return 0;
    errno = 0;
    v = strtol(buf, &end, 10);
    if (errno || v <= 1 || v > INT_MAX || (*end && *end != '\n'))
        return 0;
    /* cmdline's arguments are NUL-separated. */
    snprintf(path, sizeof(path), "/proc/%ld/cmdline", v);
    n = netcmd_read_small(path, buf, sizeof(buf));
    if (n <= 0 || strcmp(buf, prog))
        return 0;
    for (const char *a = buf + strlen(buf) + 1; a < buf + n; a += strlen(a) + 1)
        if (!strcmp(a, arg))
            return (pid_t)v;
    return 0;
}

/* The command as one line for messages: its first few words. */
static void netcmd_describe(const char *const argv[], char *out, size_t len)
{
    size_t n = 0, i;

    out[0] = '\0';
    for (i = 0; argv[i] && i < 8 && n < len; i++)
        n += (size_t)snprintf(out + n, len - n, "%s%s", i ? " " : "", argv[i]);
}

/* Runs argv; with out, collects its stdout (up to NETCMD_OUT_MAX) there. Both pipes are read
 * together (poll) so a program that fills one while we wait on the other never stalls. */
static int netcmd_exec(const char *const argv[], char **out, char *err)
{
    char what[160], msg[256], chunk[4096];
    int errp[2] = {-1, -1}, outp[2] = {-1, -1}, status, devnull;
    size_t got = 0, olen = 0, ocap = 0;
    char *obuf = NULL;
    struct pollfd pf[2];
    pid_t pid;

    if (!netcmd_have(argv[0])) {
        snprintf(err, NETCMD_ERR_LEN, "%s is not installed (scripts/install-deps.sh)", argv[0]);
        return -ENOENT;
    }
    if (pipe2(errp, O_CLOEXEC) || (out && pipe2(outp, O_CLOEXEC)))
        goto fail_errno;
    pid = fork();
    if (pid < 0)
        goto fail_errno;
    if (pid == 0) {
        sigset_t none;

        /* tesserad's threads block the signals its main thread waits for; a program inherits
         * the mask through exec, and a dnsmasq that blocks SIGTERM would ignore its stop. */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < NSIG; sig++)
            if (sig != SIGKILL && sig != SIGSTOP)
                signal(sig, SIG_DFL);
        devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out ? outp[1] : devnull, 1) < 0 ||
            dup2(errp[1], 2) < 0)
            _exit(127);
        /* Every other descriptor of the daemon is O_CLOEXEC: the exec drops them. */
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(errp[1]);
    errp[1] = -1;
    if (out) {
        close(outp[1]);
        outp[1] = -1;
    }
    pf[0] = (struct pollfd){.fd = errp[0], .events = POLLIN};
    pf[1] = (struct pollfd){.fd = out ? outp[0] : -1, .events = POLLIN};
    while (pf[0].fd >= 0 || pf[1].fd >= 0) {
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            ssize_t r;

            if (pf[i].fd < 0 || !pf[i].revents)
                continue;
            r = read(pf[i].fd, chunk, sizeof(chunk));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                pf[i].fd = -1;
                continue;
            }
            if (i == 0) {
                /* The first line is what a message quotes; the rest is drained. */
                size_t take = (size_t)r < sizeof(msg) - 1 - got ? (size_t)r : sizeof(msg) - 1 - got;

                memcpy(msg + got, chunk, take);
                got += take;
            } else if (olen + (size_t)r <= NETCMD_OUT_MAX) {
                if (olen + (size_t)r + 1 > ocap) {
                    size_t cap = ocap ? 2 * ocap : 8192;
                    char *nb;

                    while (cap < olen + (size_t)r + 1)
                        cap *= 2;
                    nb = realloc(obuf, cap);
                    if (!nb) {
                        pf[i].fd = -1; /* counted as too long below */
                        olen = NETCMD_OUT_MAX + 1;
                        continue;
                    }
                    obuf = nb;
                    ocap = cap;
                }
                memcpy(obuf + olen, chunk, (size_t)r);
                olen += (size_t)r;
            } else {
                olen = NETCMD_OUT_MAX + 1; /* drained, then refused */
            }
        }
    }
    msg[got] = '\0';
    close(errp[0]);
    if (out)
        close(outp[0]);
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            free(obuf);
            errp[0] = outp[0] = -1;
            goto fail_errno;
        }
    netcmd_describe(argv, what, sizeof(what));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        if (!out)
            return 0;
        if (olen > NETCMD_OUT_MAX) {
            free(obuf);
            snprintf(err, NETCMD_ERR_LEN, "'%s' printed more than %d bytes", what, NETCMD_OUT_MAX);
            return -E2BIG;
        }
        if (!obuf && !(obuf = malloc(1))) {
            snprintf(err, NETCMD_ERR_LEN, "'%s': out of memory", what);
            return -ENOMEM;
        }
        obuf[olen] = '\0';
        *out = obuf;
        return 0;
    }
    free(obuf);
    msg[strcspn(msg, "\n")] = '\0';
    snprintf(err, NETCMD_ERR_LEN, "'%s' failed (%s %d): %s", what,
             WIFEXITED(status) ? "status" : "signal",
             WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
             msg[0] ? msg : "no message");
    return -EIO;
fail_errno:
    status = errno;
    for (int i = 0; i < 2; i++) {
        if (errp[i] >= 0)
            close(errp[i]);
        if (outp[i] >= 0)
            close(outp[i]);
    }
    snprintf(err, NETCMD_ERR_LEN, "running %s: %s", argv[0], strerror(status));
    return -status;
}

int netcmd_run(const char *const argv[], char *err)
{
    return netcmd_exec(argv, NULL, err);
}

int netcmd_output(const char *const argv[], char **out, char *err)
{
    return netcmd_exec(argv, out, err);
}
